// The backup on shutdown, as a person gets it: with app.db protected and backed up,
// a change to the database and `Developer: Reload Window` (which stops the extension host,
// so VS Code calls `deactivate`) leave one verified `shutdown` archive and its `backup.ok`
// line in the backup log; a second reload with nothing changed leaves no second one.
// Runs after panel.ui.ts and leaves the workspace as it found it (app.db included).
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import type { Page } from 'playwright-core';
import { REPO_ROOT, openPaletteAt, openViewContainer, paletteRow, readChannelLog, readTreeRows, until, waitForTree, type RunDirs, type UiCheck } from '../../scripts/vscode/harness';
import { backupIds, snapshotIds } from '../fixtures/backupFiles';
import { sqlite } from '../fixtures/sqlite';

const VIEW = 'Backups';
const EXITED = /Extension Host Process exited/g;

/** The ids of the shutdown backups in backups/, of either format. */
function shutdownArchives(ws: string): string[] {
  return backupIds(path.join(ws, 'backups')).filter((id) => id.endsWith('-shutdown'));
}

/** The backup log's `backup.ok` lines of kind `shutdown`. */
function shutdownLogEntries(ws: string): { backup?: string }[] {
  const f = path.join(ws, 'backups', '.lifeboat', 'log.jsonl');
  if (!existsSync(f)) return [];
  return readFileSync(f, 'utf8')
    .split('\n')
    .filter(Boolean)
    .map((l) => JSON.parse(l) as { op: string; backup?: string; detail?: { kind?: string } })
    .filter((e) => e.op === 'backup.ok' && e.detail?.kind === 'shutdown');
}

/** How many extension hosts code-server has seen exit (its log says so for each). */
function hostExits(dirs: RunDirs): number {
  return existsSync(dirs.serverLog) ? (readFileSync(dirs.serverLog, 'utf8').match(EXITED) ?? []).length : 0;
}


/**
 * Runs `Developer: Reload Window` from the palette and resolves once the old extension
 * host has exited (so its `deactivate` finished or was cut off) and the workbench is back.
 */
async function reloadWindow(page: Page, dirs: RunDirs): Promise<void> {
  const exits = hostExits(dirs);
  await openPaletteAt(page, 'Developer: Reload Window');
  const row = paletteRow(page, 'Developer: Reload Window');
  await Promise.all([page.waitForEvent('load', { timeout: 30_000 }), row.click()]);
  await page.locator('.monaco-workbench .part.statusbar').waitFor({ state: 'visible', timeout: 60_000 });
  await until(page, () => hostExits(dirs), (n) => n > exits, 'the old extension host did not exit after Reload Window');
}

function backupRows(rows: Awaited<ReturnType<typeof readTreeRows>>): number {
  return rows.filter((r) => r.level === 3).length;
}

const saved = (dirs: RunDirs): string => path.join(dirs.tmp, 'app.db.before-shutdown-checks');

export const checks: UiCheck[] = [
  {
    name: 'Lifeboat shutdown: a changed database gets a shutdown backup when the window reloads',
    timeoutMs: 90_000,
    async run({ page, dirs, log }) {
      const ws = dirs.workspace;
      const db = path.join(ws, 'app.db');
      copyFileSync(db, saved(dirs));
      // The verified backup the change is measured against, made by the real CLI.
      execFileSync(process.execPath, [path.join(REPO_ROOT, 'dist', 'cli.js'), 'backup', db, '--dir', path.join(ws, 'backups')], { stdio: 'pipe', timeout: 60_000 });
      mkdirSync(path.join(ws, '.vscode'), { recursive: true });
      // No daily schedule: only the shutdown backup may write an archive during this check.
      writeFileSync(path.join(ws, '.vscode', 'settings.json'), JSON.stringify({ 'lifeboat.databases': ['app.db'], 'lifeboat.schedule.daily': false }, null, 2));
      // The tree listing the backup proves the running extension has the engine loaded.
      await waitForTree(page, (rows) => rows[0]?.label === 'app.db' && backupRows(rows) === 1, 'the tree does not show app.db and its one backup', 30_000, VIEW);
      assert.deepEqual(shutdownArchives(ws), []);
      // A trusted window runs the scheduler (trust.ui.ts asserts this line's absence).
      await until(page, () => readChannelLog(dirs, 'Lifeboat'), (t) => /schedule of workspace/.test(t), 'the Lifeboat log has no "schedule of workspace" line');
      sqlite(db, 'CREATE TABLE shutdown_probe(x INTEGER); INSERT INTO shutdown_probe VALUES (1);');

      const t0 = Date.now();
      await reloadWindow(page, dirs);
      log(`reload and old host exit: ${((Date.now() - t0) / 1000).toFixed(1)} s`);
      const archives = shutdownArchives(ws);
      assert.equal(archives.length, 1, `one *-shutdown backup after the reload; backups/ has ${backupIds(path.join(ws, 'backups')).join(', ')}`);
      // Format v2, the default: the CLI's backup and the shutdown backup are snapshots.
      assert.deepEqual(snapshotIds(path.join(ws, 'backups')), backupIds(path.join(ws, 'backups')));
      const entries = shutdownLogEntries(ws);
      assert.equal(entries.length, 1, 'one backup.ok line of kind shutdown in the backup log');
      assert.ok(entries[0].backup && archives[0].startsWith(entries[0].backup), `the log's ${entries[0].backup} is the backup ${archives[0]}`);
      assert.ok(!readdirSync(path.join(ws, 'backups')).some((n) => /\.(tmp|partial)$|^\.tmp/.test(n)), 'no partial file left in backups/');
    },
  },
  {
    name: 'Lifeboat shutdown: an unchanged database gets no second shutdown backup',
    timeoutMs: 90_000,
    async run({ page, dirs, screenshot }) {
      const ws = dirs.workspace;
      const before = shutdownArchives(ws);
      assert.equal(before.length, 1);
      // The new extension host lists both backups: its engine is loaded, so its deactivate
      // does make the change check (an unloaded engine would skip for another reason).
      // After the reload the workbench restores its side bar on its own time (and may
      // restore another view first), so the view is opened explicitly and kept open until
      // the tree has that state.
      await waitForTree(page, (rows) => rows[0]?.label === 'app.db' && backupRows(rows) === 2, 'the tree does not show the manual and the shutdown backup', 45_000, VIEW);
      await screenshot('lifeboat-shutdown-tree', page.locator('.part.sidebar'));
      await reloadWindow(page, dirs);
      assert.deepEqual(shutdownArchives(ws), before, 'no second shutdown archive');
      assert.equal(shutdownLogEntries(ws).length, 1, 'no second backup.ok of kind shutdown');
    },
  },
  {
    name: 'Lifeboat shutdown: cleanup (the workspace as the other checks expect it)',
    async run({ page, dirs }) {
      rmSync(path.join(dirs.workspace, '.vscode'), { recursive: true, force: true });
      // The backups go once the extension has seen that no database is configured (the
      // welcome view is back), so its next shutdown backup cannot write into them again.
      await openViewContainer(page, 'Lifeboat');
      await page.locator('.pane-body .welcome-view-content .monaco-button', { hasText: 'Protect a Database' }).waitFor({ state: 'visible', timeout: 20_000 });
      rmSync(path.join(dirs.workspace, 'backups'), { recursive: true, force: true });
      if (existsSync(saved(dirs))) copyFileSync(saved(dirs), path.join(dirs.workspace, 'app.db'));
      rmSync(saved(dirs), { force: true });
      await openViewContainer(page, 'Explorer');
    },
  },
];

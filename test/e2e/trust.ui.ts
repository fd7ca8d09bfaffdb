// Lifeboat in Restricted Mode, as a person who opened a folder they have not trusted sees
// it: the Backups tree still lists the database and its backup (read-only works), the
// scheduler does not start (no automatic or catch-up backup), Restore is not offered, and
// a migration task whose dependsOn names Lifeboat's backup task runs neither.
// Runs only in the runner's Restricted Mode phase: its own code-server with workspace trust
// on, on a fresh copy of the fixture that `prepare` gives one backup made by the real CLI.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import type { Page } from 'playwright-core';
import { REPO_ROOT, animationsDone, dismissToasts, openPalette, openViewContainer, paletteLabels, quickInput, readChannelLog, readStatusBar, readTreeRows, runCommand, treeRowLocator, until, waitForTree, type RunDirs, type TreeRow, type UiCheck } from '../../scripts/vscode/harness';
import { backupIds } from '../fixtures/backupFiles';
import { query } from '../fixtures/sqlite';

/** Selects this file for the Restricted Mode phase only (see UiModule in runner.ts). */
export const phase = 'restricted';

/**
 * `lifeboat.databases` is one of the extension's `restrictedConfigurations`: VS Code drops
 * its workspace value in Restricted Mode, so the database is configured in user settings,
 * which apply whatever the trust. A daily slot every day at 00:00 and the backup made
 * before the server starts: a trusted workspace would schedule it (logged as
 * "schedule of workspace").
 */
export const userSettings: Record<string, unknown> = {
  'lifeboat.databases': ['app.db'],
  'lifeboat.schedule.daily': true,
};

/** Written by the migration task when it runs; a refused chain leaves no such file. */
const MIGRATION_MARK = 'migration-ran.txt';

/** A migration task that backs up app.db first, as `Add Backup Step to Migration Task...` writes it. */
const MIGRATION_TASKS = {
  version: '2.0.0',
  tasks: [
    {
      label: 'migrate',
      type: 'shell',
      command: `echo migrated > ${MIGRATION_MARK}`,
      dependsOn: ['lifeboat: Back up app.db'],
      problemMatcher: [],
    },
  ],
};

/**
 * One verified backup of app.db in backups/, made by the real CLI before code-server
 * starts, and a .vscode/tasks.json with a migration task that backs up app.db first.
 */
export function prepare(dirs: RunDirs): void {
  const db = path.join(dirs.workspace, 'app.db');
  execFileSync(process.execPath, [path.join(REPO_ROOT, 'dist', 'cli.js'), 'backup', db, '--dir', backupDir(dirs)], { stdio: 'pipe', timeout: 60_000 });
  if (archives(dirs).length !== 1) throw new Error(`the CLI did not leave one archive in ${backupDir(dirs)}`);
  mkdirSync(path.join(dirs.workspace, '.vscode'), { recursive: true });
  writeFileSync(path.join(dirs.workspace, '.vscode', 'tasks.json'), JSON.stringify(MIGRATION_TASKS, null, 2));
}

function backupDir(dirs: RunDirs): string {
  return path.join(dirs.workspace, 'backups');
}

/** How many `backup.start` lines the backup log has. */
function backupStarts(dirs: RunDirs): number {
  const f = path.join(backupDir(dirs), '.lifeboat', 'log.jsonl');
  return existsSync(f) ? readFileSync(f, 'utf8').split('\n').filter((l) => l.includes('"backup.start"')).length : 0;
}

/** The ids of the backups in backups/, of either format (the CLI's is format v2, the default). */
function archives(dirs: RunDirs): string[] {
  return backupIds(backupDir(dirs));
}

/**
 * A later state to wait on before asserting that something did NOT happen, instead of a
 * fixed grace time: runs `Lifeboat: Verify All Backups` (allowed in Restricted Mode) and
 * waits until its `verify.ok` line, which the extension mirrors from the backup log into
 * its log channel, is in that channel's file. The extension host did everything it
 * started before (and its file logger wrote every earlier line) by then.
 */
async function extensionRoundTrip(page: Page, dirs: RunDirs): Promise<string> {
  const seen = (readChannelLog(dirs, 'Lifeboat').match(/verify\.ok/g) ?? []).length;
  await runCommand(page, 'Lifeboat: Verify All Backups');
  const text = await until(page, () => readChannelLog(dirs, 'Lifeboat'), (t) => (t.match(/verify\.ok/g) ?? []).length > seen, 'no new verify.ok line in the Lifeboat log after Verify All Backups', 30_000);
  await dismissToasts(page);
  return text;
}


export const checks: UiCheck[] = [
  {
    name: 'Lifeboat Restricted Mode: the workbench says Restricted Mode and the tree lists the backup',
    timeoutMs: 60_000,
    async run({ page, screenshot }) {
      await until(page, () => readStatusBar(page), (items) => items.some((i) => /Restricted Mode/.test(i.text)), 'no "Restricted Mode" in the status bar');
      // The whole expected tree is waited for, not asserted on the first read that has a
      // backup row: the first render after start-up can be a partial one (a CI run read a
      // backup row with no database row above it), and the tree is refreshed after it.
      const labelsAt = (rows: TreeRow[], level: number): string => rows.filter((r) => r.level === level).map((r) => r.label).join(',');
      const rows = await waitForTree(
        page,
        (r) => labelsAt(r, 1) === 'app.db' && labelsAt(r, 2) === 'Manual' && r.filter((x) => x.level === 3).length === 1,
        'the tree does not show app.db > Manual > one backup',
      );
      assert.match(rows.find((r) => r.level === 3)!.description, /verified · manual$/);
      await screenshot('lifeboat-restricted');
    },
  },
  {
    name: 'Lifeboat Restricted Mode: no scheduler starts, so no automatic backup is written',
    timeoutMs: 60_000,
    async run({ page, dirs }) {
      // The status bar item comes from the same deferred start-up step that starts (or, here,
      // does not start) the scheduler, right before it.
      await until(page, () => readStatusBar(page), (items) => items.some((i) => i.ariaLabel.startsWith('Lifeboat:')), 'no Lifeboat status bar item');
      await runCommand(page, 'Lifeboat: Show Backup Log');
      await page.locator('.part.panel .output-view, .part.panel .monaco-editor').first().waitFor({ state: 'visible' });
      const text = await until(page, () => readChannelLog(dirs, 'Lifeboat'), (t) => /activated in/.test(t), 'the Lifeboat log channel has no "activated in" line');
      // A scheduler that would start logs "schedule of workspace" (shutdown.ui.ts sees that
      // line in a trusted window) once the engine is loaded; Verify All loads it too and
      // logs after it, so its line in the file means that one would be there as well.
      const later = await extensionRoundTrip(page, dirs);
      assert.doesNotMatch(later, /schedule of /, `the scheduler started in Restricted Mode:\n${later}`);
      assert.ok(text.length > 0);
      assert.deepEqual(archives(dirs).length, 1, 'still only the seeded archive');
    },
  },
  {
    name: 'Lifeboat Restricted Mode: Restore Backup... is not offered and does nothing',
    timeoutMs: 60_000,
    async run({ page, dirs, screenshot }) {
      await openPalette(page, 'Lifeboat: ');
      await until(page, () => paletteLabels(page), (l) => l.includes('Lifeboat: Show Backup Log'), 'the palette does not list Lifeboat: Show Backup Log');
      const labels = await paletteLabels(page);
      assert.ok(!labels.includes('Lifeboat: Restore Backup...'), `the palette offers Restore: ${labels.join(' | ')}`);
      assert.ok(!labels.includes('Lifeboat: Back Up Now'), `the palette offers Back Up Now: ${labels.join(' | ')}`);
      await page.keyboard.press('Escape');
      await quickInput(page).waitFor({ state: 'hidden' });

      const db = path.join(dirs.workspace, 'app.db');
      const before = query<{ n: number }>(db, 'SELECT count(*) AS n FROM items;')[0].n;
      const rows = await waitForTree(page, (r) => r.some((x) => x.level === 3), 'the tree shows no backup row');
      await treeRowLocator(page, 'Backups', rows.find((r) => r.level === 3)!).click({ button: 'right' });
      const item = page.locator('.context-view .action-item', { hasText: 'Restore Backup...' }).first();
      await item.waitFor({ state: 'visible' });
      await screenshot('lifeboat-restricted-context-menu');
      assert.match((await item.getAttribute('class')) ?? '', /\bdisabled\b/, 'Restore Backup... is enabled in the context menu');
      await item.click({ force: true });
      await page.keyboard.press('Escape');
      await page.locator('.context-view .action-item').first().waitFor({ state: 'hidden' });
      // A restore that did start would ask in a dialog before the extension host does
      // anything else; a round trip through it comes after that.
      await extensionRoundTrip(page, dirs);
      assert.equal(await page.locator('.monaco-dialog-box').count(), 0, 'a restore dialog opened');
      assert.equal(query<{ n: number }>(db, 'SELECT count(*) AS n FROM items;')[0].n, before);
      assert.deepEqual(archives(dirs).filter((n) => n.endsWith('-pre-restore')), []);
    },
  },
  {
    name: 'Lifeboat Restricted Mode: a migration task that depends on "lifeboat: Back up app.db" does not run a backup',
    timeoutMs: 60_000,
    async run({ page, dirs, screenshot, log }) {
      const before = archives(dirs);
      const starts = backupStarts(dirs);
      const dialog = page.locator('.monaco-dialog-box');
      await runCommand(page, 'Tasks: Run Task');
      // VS Code itself asks for trust before it lists or runs any task in Restricted Mode;
      // Lifeboat's own guard (the task's terminal refuses when the workspace is untrusted)
      // is the second layer and is not reached from the workbench.
      await dialog.waitFor({ state: 'visible', timeout: 15_000 });
      const text = (await dialog.textContent()) ?? '';
      assert.match(text, /Do you trust the authors of the files in this folder\?/);
      assert.match(text, /running tasks requires/);
      const buttons = (await dialog.locator('.monaco-button').allTextContents()).map((b) => b.trim());
      assert.ok(buttons.includes('Cancel'), `the trust dialog's buttons: ${buttons.join(' | ')}`);
      log(`VS Code refused: "${text.slice(text.indexOf('Do you trust'), text.indexOf('If you'))}" [${buttons.join(' | ')}]`);
      await animationsDone(dialog);
      await screenshot('lifeboat-restricted-task-trust', dialog);
      await dialog.locator('.monaco-button', { hasText: /^Cancel$/ }).click();
      await dialog.waitFor({ state: 'hidden' });
      // A task that would start anyway (no task list, no terminal, no backup) would do so
      // as the dialog closes; a round trip through the extension host comes after that.
      await extensionRoundTrip(page, dirs);
      assert.equal(await page.locator('.quick-input-widget .quick-input-list .monaco-list-row', { hasText: 'migrate' }).count(), 0, 'a task list opened after Cancel');
      assert.equal(await page.locator('.part.panel .terminal-wrapper').count(), 0, 'a task terminal opened');
      assert.deepEqual(archives(dirs), before, 'a backup archive appeared');
      assert.equal(backupStarts(dirs), starts, 'a backup started (backup.start in the backup log)');
      assert.ok(!existsSync(path.join(dirs.workspace, MIGRATION_MARK)), 'the migration task ran');
    },
  },
];

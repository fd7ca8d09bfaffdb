// Cancelling a long backup, as a person does it: with a database big enough that a backup
// takes seconds, `Lifeboat: Back Up Now` shows its progress in a notification with Cancel;
// pressing Cancel says the backup was cancelled, and leaves no archive, no temporary file
// and a `backup.failed` line with reason `cancelled` in the backup log.
// Runs first of the UI checks (file-name order) and leaves the workspace as it found it
// (no Lifeboat settings, so lifeboat.ui.ts still sees the welcome view). Its backups go to
// a directory of their own: backups/ may already hold the shutdown backup that the in-host
// suite's extension host makes as it closes, while these checks start.
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { animationsDone, dismissToasts, openViewContainer, readNotifications, readTreeRows, runCommand, until, waitForNotification, waitForTree, type RunDirs, type UiCheck } from '../../scripts/vscode/harness';
import { backupIds } from '../fixtures/backupFiles';
import { query, sqlite } from '../fixtures/sqlite';

const VIEW = 'Backups';
const BIG = 'big.db';
/** MiB of random (incompressible) blobs: a backup of it takes a few seconds here. */
const BIG_MIB = 200;
/** `lifeboat.directory` of this check, relative to the workspace folder. */
const DIR = 'backups-cancel';

function backupDir(dirs: RunDirs): string {
  return path.join(dirs.workspace, DIR);
}

function settingsFile(dirs: RunDirs): string {
  return path.join(dirs.workspace, '.vscode', 'settings.json');
}

/** Where the workspace settings found before the check are kept until cleanup. */
function savedSettings(dirs: RunDirs): string {
  return path.join(dirs.tmp, 'settings.json.before-cancel-checks');
}

/** The ids of the backups in the check's directory, of either format (format v2 is the default). */
function archives(dirs: RunDirs): string[] {
  return backupIds(backupDir(dirs));
}

/** The backup log's lines, parsed (empty when there is no log yet). */
function logEntries(dirs: RunDirs): { op: string; backup?: string; message?: string; detail?: { reason?: string; kind?: string } }[] {
  const f = path.join(backupDir(dirs), '.lifeboat', 'log.jsonl');
  if (!existsSync(f)) return [];
  return readFileSync(f, 'utf8')
    .split('\n')
    .filter(Boolean)
    .map((l) => JSON.parse(l));
}



export const checks: UiCheck[] = [
  {
    name: 'Lifeboat cancel: Cancel on the progress notification of a long backup leaves nothing partial',
    timeoutMs: 90_000,
    async run({ page, dirs, screenshot, log }) {
      const ws = dirs.workspace;
      const db = path.join(ws, BIG);
      const t0 = Date.now();
      sqlite(db, `CREATE TABLE blobs(id INTEGER PRIMARY KEY, b BLOB);
        WITH RECURSIVE c(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM c WHERE i < ${BIG_MIB}) INSERT INTO blobs(b) SELECT randomblob(1048576) FROM c;`);
      assert.equal(query<{ n: number }>(db, 'SELECT count(*) AS n FROM blobs;')[0].n, BIG_MIB);
      log(`${BIG} (${BIG_MIB} MiB) made in ${((Date.now() - t0) / 1000).toFixed(1)} s`);
      const had = existsSync(settingsFile(dirs)) ? readFileSync(settingsFile(dirs), 'utf8') : undefined;
      if (had !== undefined) writeFileSync(savedSettings(dirs), had);
      mkdirSync(path.dirname(settingsFile(dirs)), { recursive: true });
      // No daily schedule: nothing but the user's Back Up Now may start a backup here.
      writeFileSync(settingsFile(dirs), JSON.stringify({ 'lifeboat.databases': [BIG], 'lifeboat.directory': DIR, 'lifeboat.schedule.daily': false }, null, 2));
      await waitForTree(page, (rows) => rows[0]?.label === BIG, `the tree does not show ${BIG}`);
      assert.deepEqual(archives(dirs), []);

      await runCommand(page, 'Lifeboat: Back Up Now');
      const started = Date.now();
      const toast = page.locator('.notifications-toasts .notification-toast').filter({ hasText: `backing up ${BIG}` }).first();
      await toast.waitFor({ state: 'visible', timeout: 20_000 });
      const cancel = toast.locator('.monaco-button', { hasText: /^Cancel$/ });
      await cancel.waitFor({ state: 'visible', timeout: 5_000 });
      // A progress message (the phase) shows the engine is at work, and the picture has it.
      await until(page, () => readNotifications(page), (ns) => ns.some((n) => n.message.includes(`backing up ${BIG}:`)), 'the progress notification shows no phase', 10_000).catch(() => undefined);
      const seen = (await readNotifications(page)).find((n) => n.message.includes(`backing up ${BIG}`));
      await screenshot('lifeboat-progress', toast);
      assert.deepEqual(seen?.buttons, ['Cancel'], `the progress notification's buttons: ${JSON.stringify(seen)}`);
      log(`progress notification: "${seen?.message}" after ${((Date.now() - started) / 1000).toFixed(1)} s`);
      assert.deepEqual(archives(dirs), [], 'the backup finished before Cancel could be pressed: make the database bigger');
      await cancel.click();

      const n = await waitForNotification(page, /cancelled/, 30_000);
      log(`after Cancel: "${n.message}" ${((Date.now() - started) / 1000).toFixed(1)} s after Back Up Now`);
      assert.match(n.message, new RegExp(`backup of ${BIG.replace('.', '\\.')} was cancelled`));
      // The pointer left on Cancel would hover the new toast and cover it with a tooltip.
      await page.mouse.move(5, 5);
      await page.locator('.monaco-hover, .workbench-hover').first().waitFor({ state: 'hidden', timeout: 10_000 });
      const cancelled = page.locator('.notifications-toasts .notification-toast').filter({ hasText: /cancelled/ }).first();
      await animationsDone(cancelled);
      await screenshot('lifeboat-notification-cancelled', cancelled);
      assert.equal((await readNotifications(page)).filter((x) => /failed/.test(x.message)).length, 0, 'a failure notification was shown for a cancel');
      // The notification comes after the engine gave up: the log line is written by then.
      const failed = await until(page, () => logEntries(dirs).filter((e) => e.op === 'backup.failed'), (f) => f.length > 0, 'no backup.failed line in the backup log', 10_000);
      assert.equal(failed.length, 1);
      assert.equal(failed[0].detail?.reason, 'cancelled', `backup.failed: ${JSON.stringify(failed[0])}`);
      assert.equal(failed[0].detail?.kind, 'manual');
      assert.equal(logEntries(dirs).filter((e) => e.op === 'backup.ok').length, 0, 'a backup.ok line after Cancel');
      assert.deepEqual(archives(dirs), [], 'a backup appeared in the backup directory after Cancel');
      const tmp = path.join(backupDir(dirs), '.lifeboat', 'tmp');
      assert.deepEqual(existsSync(tmp) ? readdirSync(tmp) : [], [], `files left in ${tmp}`);
      // Nothing beside the archives either: a partial never sits at the top level.
      assert.deepEqual(readdirSync(backupDir(dirs)).filter((x) => x !== '.lifeboat'), [], `files left in ${DIR}/`);
      // The tree after the cancel: big.db with its placeholder row, and no backup row.
      const rows = await waitForTree(page, (r) => r[0]?.label === BIG && r.some((x) => x.label === 'No backups yet'), `the tree does not show ${BIG} without backups`, 15_000);
      assert.equal(rows.filter((r) => r.level === 3).length, 0, `the tree shows a backup row: ${rows.map((r) => r.label).join(' | ')}`);
      await dismissToasts(page);
    },
  },
  {
    name: 'Lifeboat cancel: cleanup (the workspace as the other checks expect it)',
    async run({ page, dirs }) {
      await dismissToasts(page);
      if (existsSync(savedSettings(dirs))) {
        writeFileSync(settingsFile(dirs), readFileSync(savedSettings(dirs), 'utf8'));
        rmSync(savedSettings(dirs), { force: true });
      } else {
        rmSync(settingsFile(dirs), { force: true });
        const vscodeDir = path.dirname(settingsFile(dirs));
        if (existsSync(vscodeDir) && readdirSync(vscodeDir).length === 0) rmSync(vscodeDir, { recursive: true });
      }
      try {
        // The extension drops big.db once it sees the settings change; then its files go.
        await until(page, () => readTreeRows(page, VIEW), (rows) => !rows.some((r) => r.label === BIG), `the tree still shows ${BIG}`, 15_000);
      } finally {
        rmSync(backupDir(dirs), { recursive: true, force: true });
        for (const f of [BIG, `${BIG}-journal`, `${BIG}-wal`, `${BIG}-shm`]) rmSync(path.join(dirs.workspace, f), { force: true });
      }
      await openViewContainer(page, 'Explorer');
    },
  },
];

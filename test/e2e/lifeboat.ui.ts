// What a new user sees of Lifeboat in the workbench: the welcome view, protecting the
// database from its button, the first backup, the status bar, a restore from a row's
// context menu, and the failure notification. Screenshots go to test-results/.
import assert from 'node:assert/strict';
import { existsSync, readFileSync, rmSync, writeFileSync, mkdirSync } from 'node:fs';
import path from 'node:path';
import type { Page } from 'playwright-core';
import { animationsDone, dismissToasts, openViewContainer, readStatusBar, readTreeRows, runCommand, treeRowLocator, until, waitForNotification, waitForTree, type UiCheck } from '../../scripts/vscode/harness';
import { backupIds, snapshotIds } from '../fixtures/backupFiles';
import { query, sqlite } from '../fixtures/sqlite';

const VIEW = 'Backups';

function rowsWhen(page: Page, ok: (labels: string[]) => boolean, what: string, ms = 40_000): Promise<Awaited<ReturnType<typeof readTreeRows>>> {
  return waitForTree(page, (rows) => ok(rows.map((r) => r.label)), what, ms, VIEW);
}

/** The welcome view's button, which shows while no database is configured. */
function protectButton(page: Page) {
  return page.locator('.pane-body .welcome-view-content .monaco-button', { hasText: 'Protect a Database' });
}

function settingsFile(ws: string): string {
  return path.join(ws, '.vscode', 'settings.json');
}

function editSettings(ws: string, change: Record<string, unknown>): void {
  const f = settingsFile(ws);
  const cur = existsSync(f) ? (JSON.parse(readFileSync(f, 'utf8')) as Record<string, unknown>) : {};
  for (const [k, v] of Object.entries(change)) {
    if (v === undefined) delete cur[k];
    else cur[k] = v;
  }
  mkdirSync(path.dirname(f), { recursive: true });
  writeFileSync(f, JSON.stringify(cur, null, 2));
}


export const checks: UiCheck[] = [
  {
    name: 'Lifeboat: the Backups view welcomes a new user with "Protect a Database"',
    async run({ page, screenshot }) {
      await openViewContainer(page, 'Lifeboat');
      await protectButton(page).waitFor({ state: 'visible' });
      await screenshot('lifeboat-welcome');
    },
  },
  {
    name: 'Lifeboat: protecting app.db from the button and making the first backup',
    timeoutMs: 90_000,
    async run({ page, screenshot }) {
      await protectButton(page).click();
      const row = page.locator('.quick-input-list .monaco-list-row', { hasText: 'app.db' }).first();
      await row.waitFor({ state: 'visible' });
      await row.click();
      await page.keyboard.press('Enter');
      const offer = await waitForNotification(page, 'Make the first backup now?');
      assert.deepEqual(offer.buttons, ['Back Up Now']);
      await page.locator('.notifications-toasts .notification-toast', { hasText: 'Make the first backup now?' }).locator('.monaco-button', { hasText: 'Back Up Now' }).click();
      const rows = await rowsWhen(page, (l) => l.includes('Manual'), 'no Manual tier after the first backup');
      const manual = rows.findIndex((r) => r.label === 'Manual');
      const backup = rows[manual + 1];
      assert.match(backup.description, /verified · manual$/);
      assert.equal(rows[0].label, 'app.db');
      await screenshot('lifeboat-tree', page.locator('.part.sidebar'));
    },
  },
  {
    name: 'Lifeboat: the status bar shows the age of the newest verified backup',
    async run({ page, screenshot }) {
      const item = (await until(page, () => readStatusBar(page), (items) => items.some((i) => i.ariaLabel.startsWith('Lifeboat:')), 'no Lifeboat status bar item', 20_000)).find((i) => i.ariaLabel.startsWith('Lifeboat:'));
      assert.ok(item, 'no Lifeboat status bar item');
      assert.match(item.text, /^(just now|\d+ min ago)$/);
      await screenshot('lifeboat-status-bar', page.locator('.part.statusbar'));
    },
  },
  {
    name: 'Lifeboat: restoring from a backup row\'s context menu brings the data back',
    timeoutMs: 90_000,
    async run({ page, dirs, screenshot }) {
      const db = path.join(dirs.workspace, 'app.db');
      const before = query<{ n: number }>(db, 'SELECT count(*) AS n FROM items;')[0].n;
      sqlite(db, 'DELETE FROM items;');
      assert.equal(query<{ n: number }>(db, 'SELECT count(*) AS n FROM items;')[0].n, 0);
      await dismissToasts(page);
      const rows = await rowsWhen(page, (l) => l.includes('Manual'), 'no Manual tier');
      const idx = rows.findIndex((r) => r.label === 'Manual') + 1;
      assert.ok(rows[idx]?.level === 3, `no backup row under Manual: ${JSON.stringify(rows)}`);
      const row = treeRowLocator(page, VIEW, rows[idx]);
      await row.click({ button: 'right' });
      const item = page.locator('.context-view .action-item', { hasText: 'Restore Backup...' }).first();
      await item.waitFor({ state: 'visible' });
      await screenshot('lifeboat-context-menu');
      await item.click();
      const dialog = page.locator('.monaco-dialog-box');
      await dialog.waitFor({ state: 'visible' });
      assert.match((await dialog.textContent()) ?? '', /Restore app\.db from the manual backup/);
      await dialog.locator('.monaco-button', { hasText: /^Restore$/ }).click();
      await waitForNotification(page, /restored app\.db/, 60_000);
      await screenshot('lifeboat-notification-restored');
      assert.equal(query<{ n: number }>(db, 'SELECT count(*) AS n FROM items;')[0].n, before);
      // Format v2, the default: the first backup and the pre-restore backup are snapshots.
      const backups = path.join(dirs.workspace, 'backups');
      const pre = snapshotIds(backups).filter((id) => id.endsWith('-pre-restore'));
      assert.equal(pre.length, 1, 'one pre-restore backup');
      assert.deepEqual(backupIds(backups), snapshotIds(backups), 'every backup is a v2 snapshot');
      await rowsWhen(page, (l) => l.includes('Migrations'), 'the pre-restore backup is not under Migrations');
    },
  },
  {
    name: 'Lifeboat: a backup into an unwritable directory shows the failure with Show Log and Retry',
    timeoutMs: 60_000,
    async run({ page, dirs, screenshot }) {
      await dismissToasts(page);
      // README.md is a file: nothing can be created under it, even as root.
      editSettings(dirs.workspace, { 'lifeboat.directory': 'README.md/backups' });
      // The extension has read the new directory once the tree no longer lists the backups
      // of the old one.
      await waitForTree(page, (rows) => rows[0]?.label === 'app.db' && !rows.some((r) => r.level === 3), 'the tree still lists backups after lifeboat.directory changed', 20_000, VIEW);
      await runCommand(page, 'Lifeboat: Back Up Now');
      const n = await waitForNotification(page, /backup of app\.db failed/, 40_000);
      assert.deepEqual(n.buttons, ['Show Log', 'Retry']);
      assert.match(n.message, /README\.md/);
      const toast = page.locator('.notifications-toasts .notification-toast').filter({ hasText: /backup of app\.db failed/ }).first();
      // Let the toast's fade-in finish, so the picture shows it and its buttons.
      await animationsDone(toast);
      await screenshot('lifeboat-notification-failure', toast);
      const item = (await readStatusBar(page)).find((i) => i.ariaLabel.startsWith('Lifeboat:'));
      assert.match(item?.ariaLabel ?? '', /failed/);
      await screenshot('lifeboat-status-bar-failed', page.locator('.part.statusbar'));
      await dismissToasts(page);
    },
  },
  {
    name: 'Lifeboat: cleanup (the workspace as the other checks expect it)',
    async run({ page, dirs }) {
      rmSync(path.join(dirs.workspace, '.vscode'), { recursive: true, force: true });
      rmSync(path.join(dirs.workspace, 'backups'), { recursive: true, force: true });
      // No database configured any more: the welcome view is back.
      await openViewContainer(page, 'Lifeboat');
      await protectButton(page).waitFor({ state: 'visible', timeout: 20_000 });
      await openViewContainer(page, 'Explorer');
    },
  },
];

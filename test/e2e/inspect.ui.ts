// Looking inside a backup as a person does it in the workbench: a backup row's context menu
// "Open Backup" shows the backup's tables, row counts, rows page by page and schema; after
// known changes to the database, the view's "Compare with Current Database" shows exactly
// those changes and the changed rows side by side; "Restore This Table" asks in a modal
// dialog, then puts the backup's table back, saying which pre-restore backup was made and
// what the foreign key check found; a table defined differently is refused with one clear
// error; rows picked with checkboxes come back with "Restore Selected Rows", after the same
// kind of dialog. Screenshots go to test-results/inspect-*.png.
// Runs after cancel.ui.ts and leaves the workspace as it found it: its database, settings
// and backup directory are its own and go at the end.
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import type { Frame, Page } from 'playwright-core';
import { animationsDone, dismissToasts, openViewContainer, readTreeRows, runCommand, treeRowLocator, until, waitForNotification, waitForTree, type RunDirs, type UiCheck } from '../../scripts/vscode/harness';
import { backupIds } from '../fixtures/backupFiles';
import { query } from '../fixtures/sqlite';
import { changeShopDb, makeShopDb, SHOP_DIFF, SHOP_ROWS, tableHash } from '../vscode/shopDb';

const VIEW = 'Backups';
const DB = 'shop.db';
/** `lifeboat.directory` of these checks, relative to the workspace folder. */
const DIR = 'backups-inspect-ui';

const settingsFile = (dirs: RunDirs) => path.join(dirs.workspace, '.vscode', 'settings.json');
const savedSettings = (dirs: RunDirs) => path.join(dirs.tmp, 'settings.json.before-inspect-checks');
const dbFile = (dirs: RunDirs) => path.join(dirs.workspace, DB);
const backupDir = (dirs: RunDirs) => path.join(dirs.workspace, DIR);
/** orders as the backup holds it (sqlite3's hash). */
const ordersAtBackup = (dirs: RunDirs) => path.join(dirs.tmp, 'orders-at-backup.sha3');

/**
 * The document of the webview that shows `selector` (a Lifeboat view's app runs two iframes
 * deep; several webviews can exist at once, so the one is found by what it shows).
 */
async function appFrame(page: Page, selector: string, timeoutMs = 30_000): Promise<Frame> {
  const found = await until(
    page,
    async () => {
      for (const f of page.frames()) {
        if (f.isDetached()) continue;
        const n = await f
          .locator(selector)
          .count()
          .catch(() => 0);
        if (n > 0) return f;
      }
      return undefined;
    },
    (f) => f !== undefined,
    `no webview shows ${selector}`,
    timeoutMs,
  );
  return found!;
}

/** The text of each row of a table in the app, cells joined by " | " (the checkbox cells of picked rows left out). */
async function tableText(frame: Frame, selector: string): Promise<string[]> {
  return frame.locator(`${selector} tbody tr`).evaluateAll((rows) =>
    rows.map((r) =>
      Array.from(r.children)
        .filter((c) => !c.classList.contains('pick'))
        .map((c) => (c.textContent ?? '').trim())
        .join(' | '),
    ),
  );
}

export const checks: UiCheck[] = [
  {
    name: 'Lifeboat inspect: "Open Backup" from a backup row shows its tables, row counts, rows and schema',
    timeoutMs: 120_000,
    async run({ page, dirs, screenshot }) {
      const had = existsSync(settingsFile(dirs)) ? readFileSync(settingsFile(dirs), 'utf8') : undefined;
      if (had !== undefined) writeFileSync(savedSettings(dirs), had);
      rmSync(backupDir(dirs), { recursive: true, force: true });
      makeShopDb(dbFile(dirs));
      mkdirSync(path.dirname(settingsFile(dirs)), { recursive: true });
      writeFileSync(settingsFile(dirs), JSON.stringify({ 'lifeboat.databases': [DB], 'lifeboat.directory': DIR, 'lifeboat.schedule.daily': false, 'lifeboat.backupOnShutdown': false }, null, 2));
      await waitForTree(page, (rows) => rows[0]?.label === DB, `the tree does not show ${DB}`);
      await runCommand(page, 'Lifeboat: Back Up Now');
      const rows = await waitForTree(page, (r) => r.some((x) => x.level === 3), 'no backup row after Back Up Now', 60_000);
      assert.equal(backupIds(backupDir(dirs)).length, 1);
      writeFileSync(ordersAtBackup(dirs), tableHash(dbFile(dirs), 'orders'));
      await dismissToasts(page);

      const row = treeRowLocator(page, VIEW, rows.find((r) => r.level === 3)!);
      await row.click({ button: 'right' });
      const item = page.locator('.context-view .action-item', { hasText: /^Open Backup/ }).first();
      await item.waitFor({ state: 'visible' });
      const menu = (await page.locator('.context-view .action-item .action-label').allTextContents()).map((t) => t.trim()).filter(Boolean);
      assert.deepEqual(menu.slice(0, 3), ['Open Backup', 'Compare with Current Database', 'Compare Two Backups'], `the context menu: ${menu.join(' | ')}`);
      await screenshot('inspect-context-menu');
      await item.click();

      const app = await appFrame(page, '#tables');
      assert.match(await app.locator('h1').innerText(), new RegExp(`^${DB.replace('.', '\\.')}\\s+read-only$`));
      const tables = await tableText(app, '#tables');
      assert.deepEqual(
        tables.map((t) => t.split(' | ').slice(0, 2).join(' ')),
        Object.entries(SHOP_ROWS)
          .sort(([x], [y]) => (x < y ? -1 : 1))
          .map(([n, c]) => `${n} ${c}`),
      );
      assert.match(await app.locator('#summary').innerText(), /^5 tables, 1 index, 1 view, 1 trigger/);
      // The first table with rows is shown: customers, 100 a page.
      await app.locator('#rows-page').getByText('Rows 1–100 of 250').waitFor();
      await app.locator('#rows-next').click();
      await app.locator('#rows-page').getByText('Rows 101–200 of 250').waitFor();
      assert.equal(await app.locator('#rows-table tbody tr').first().locator('td').first().innerText(), '101');
      const schema = await app.locator('#schema').innerText();
      assert.match(schema, /Triggers \(1\)\s+orders_log on orders\s+CREATE TRIGGER orders_log AFTER INSERT ON orders/);
      assert.match(schema, /Views \(1\)\s+big_orders\s+CREATE VIEW big_orders/);
      await screenshot('inspect-open-backup');
      await app.locator('#tables button.link', { hasText: /^orders$/ }).click();
      await app.locator('#rows-page').getByText('Rows 1–100 of 100').waitFor();
      await app.locator('#schema').scrollIntoViewIfNeeded();
      await screenshot('inspect-open-backup-schema');
    },
  },
  {
    name: 'Lifeboat inspect: "Compare with Current Database" shows exactly the changes, the rows side by side',
    timeoutMs: 90_000,
    async run({ page, dirs, screenshot }) {
      changeShopDb(dbFile(dirs));
      const backup = await appFrame(page, '#compare-current');
      await backup.locator('#compare-current').click();
      const app = await appFrame(page, '#changes');
      const rows = await tableText(app, '#changes');
      const expected = Object.entries(SHOP_DIFF.tables)
        .sort(([x], [y]) => (x < y ? -1 : 1))
        .map(([n, t]) => `${n} | ${t.added} | ${t.removed} | ${t.changed} | ${t.key}`);
      assert.deepEqual(
        rows.map((r) => r.split(' | ').slice(0, 5).join(' | ')),
        expected,
      );
      const schema = await app.locator('#schema-changes').innerText();
      for (const line of ['Added table extra_t', 'Added index idx_customers_name', 'Removed index idx_orders_customer', 'Changed table kv: columns added: extra']) assert.ok(schema.includes(line), `${line} in ${schema}`);
      assert.match(await app.locator('#sides').innerText(), /^From the backup of .* \(manual\) to the current database \(as of .*\)$/);
      await app.locator('#changes tr[data-table="orders"] button', { hasText: 'Show Rows' }).click();
      await app.locator('#h-rows').getByText('orders').waitFor();
      const diff = await tableText(app, '#diff-table');
      assert.equal(diff.filter((r) => r.startsWith('removed')).length, 6);
      assert.equal(diff.filter((r) => r.startsWith('added')).length, 1);
      assert.deepEqual(
        diff.filter((r) => r.startsWith('changed')),
        SHOP_DIFF.changedOrders.map((id) => `changed | ${id} | ${id} | ${id} | ${id} | ${id} | ${id + 1000}`),
      );
      assert.equal(await app.locator('#diff-table td.diff').count(), 6, 'the changed totals are marked on both sides');
      await screenshot('inspect-compare');
    },
  },
  {
    name: 'Lifeboat inspect: "Restore This Table" asks, restores orders after a pre-restore backup, and reports the foreign key check',
    timeoutMs: 90_000,
    async run({ page, dirs, screenshot }) {
      const app = await appFrame(page, '#changes');
      await app.locator('button[data-restore="orders"]').click();
      const dialog = page.locator('.monaco-dialog-box');
      await dialog.waitFor({ state: 'visible' });
      assert.match((await dialog.textContent()) ?? '', /Restore table orders of shop\.db from the backup of/);
      await animationsDone(dialog);
      await screenshot('inspect-restore-confirm');
      await dialog.locator('.monaco-button', { hasText: /^Restore Table$/ }).click();
      const notice = app.locator('#notice');
      await notice.getByText(/^Restored table orders of shop\.db/).waitFor({ timeout: 60_000 });
      const text = await notice.innerText();
      assert.match(text, /it holds the backup's 100 rows now \(it had 95\)/);
      const pre = backupIds(backupDir(dirs)).filter((id) => id.endsWith('-pre-restore'));
      assert.equal(pre.length, 1, 'one pre-restore backup');
      assert.ok(text.includes(`Pre-restore backup: ${pre[0]}`), text);
      assert.match(text, /Foreign key check: 6 violations: orders row 5 has no parent in customers/);
      assert.equal(tableHash(dbFile(dirs), 'orders'), readFileSync(ordersAtBackup(dirs), 'utf8'), 'orders is the backup\'s');
      // Compared again: orders matches the backup now.
      await until(page, () => tableText(app, '#changes'), (r) => r.some((x) => x.startsWith('orders | 0 | 0 | 0 |')), 'orders still shows changes after the restore', 30_000);
      await waitForNotification(page, /restored table orders of shop\.db/);
      await page.mouse.move(5, 5);
      await screenshot('inspect-restored');
      await dismissToasts(page);
    },
  },
  {
    name: 'Lifeboat inspect: a table defined differently is refused with one clear error',
    timeoutMs: 60_000,
    async run({ page, dirs, screenshot }) {
      const app = await appFrame(page, '#changes');
      const before = tableHash(dbFile(dirs), 'kv');
      const restoredToast = page.locator('.notifications-toasts .notification-toast', { hasText: /restored table orders/ });
      await dismissToasts(page);
      await restoredToast.waitFor({ state: 'hidden', timeout: 10_000 }).catch(() => undefined);
      await app.locator('button[data-restore="kv"]').click();
      const dialog = page.locator('.monaco-dialog-box');
      await dialog.waitFor({ state: 'visible' });
      await dialog.locator('.monaco-button', { hasText: /^Restore Table$/ }).click();
      const notice = app.locator('#notice');
      await notice.getByText(/table kv of shop\.db was not restored/).waitFor({ timeout: 30_000 });
      assert.match(await notice.innerText(), /table kv is defined differently in the backup and in .*shop\.db \(columns only the live table has: extra\); restoring it could lose or misplace data, so nothing was changed/);
      const toast = await waitForNotification(page, /table kv of shop\.db was not restored/);
      assert.deepEqual(toast.buttons, ['Show Log'], 'no Retry for a refusal');
      assert.equal(tableHash(dbFile(dirs), 'kv'), before);
      await page.mouse.move(5, 5);
      // The progress notification closes a moment after the refusal; the picture shows the error alone.
      await page.locator('.notifications-toasts .notification-toast', { hasText: /restoring table kv/ }).waitFor({ state: 'hidden', timeout: 10_000 });
      await animationsDone(page.locator('.notifications-toasts .notification-toast').first());
      await screenshot('inspect-refused');
      await dismissToasts(page);
    },
  },
  {
    name: 'Lifeboat inspect: "Restore Selected Rows" asks, then puts back the picked rows of customers and reports the foreign key check',
    timeoutMs: 90_000,
    async run({ page, dirs, screenshot }) {
      const app = await appFrame(page, '#changes');
      await dismissToasts(page);
      await app.locator('#changes tr[data-table="customers"] button', { hasText: 'Show Rows' }).click();
      await app.locator('#h-rows').getByText('customers').waitFor();
      const before = query<{ id: number; name: string }>(dbFile(dirs), 'SELECT id, name FROM customers ORDER BY id');
      assert.equal(await app.locator('#restore-rows').isDisabled(), true, 'nothing picked yet');
      // Customer 5 was deleted since the backup, customer 10 renamed.
      await app.locator('#diff-table input.pick[data-key="[5]"]').check();
      await app.locator('#diff-table input.pick[data-key="[10]"]').check();
      await app.locator('#selected-count').getByText('2 rows selected').waitFor();
      await page.mouse.move(5, 5);
      await screenshot('inspect-rows-selected');
      await app.locator('#restore-rows').click();
      const dialog = page.locator('.monaco-dialog-box');
      await dialog.waitFor({ state: 'visible' });
      const asked = (await dialog.textContent()) ?? '';
      assert.match(asked, /Restore 2 rows of table customers of shop\.db from the backup of/);
      assert.match(asked, /1 row changed since the backup reverted, 1 row removed since put back/);
      await animationsDone(dialog);
      await screenshot('inspect-rows-confirm');
      const pres = backupIds(backupDir(dirs)).filter((id) => id.endsWith('-pre-restore')).length;
      await dialog.locator('.monaco-button', { hasText: /^Restore Rows$/ }).click();
      const notice = app.locator('#notice');
      await notice.getByText(/^Restored 2 rows of table customers of shop\.db/).waitFor({ timeout: 60_000 });
      const text = await notice.innerText();
      assert.match(text, /1 row reverted, 1 row put back/);
      const pre = backupIds(backupDir(dirs)).filter((id) => id.endsWith('-pre-restore'));
      assert.equal(pre.length, pres + 1, 'one more pre-restore backup');
      assert.ok(text.includes(`Pre-restore backup: ${pre.at(-1)}`), text);
      assert.match(text, /Foreign key check: 4 violations: orders row 6 has no parent in customers/);
      const after = query<{ id: number; name: string }>(dbFile(dirs), 'SELECT id, name FROM customers ORDER BY id');
      assert.deepEqual(after.find((r) => r.id === 5), { id: 5, name: 'customer 5' });
      assert.deepEqual(after.find((r) => r.id === 10), { id: 10, name: 'customer 10' });
      assert.deepEqual(after.filter((r) => r.id !== 5 && r.id !== 10), before.filter((r) => r.id !== 10), 'every other customer as it was');
      // Compared again: customers shows the rows left (2 added, 2 removed, 1 changed).
      await until(page, () => tableText(app, '#changes'), (r) => r.some((x) => x.startsWith('customers | 3 | 2 | 1 |')), 'customers does not show the rows left after the restore', 30_000);
      await app.locator('#selected-count').getByText(/Select rows/).waitFor();
      await waitForNotification(page, /restored 2 rows of table customers of shop\.db/);
      await page.mouse.move(5, 5);
      await screenshot('inspect-rows-restored');
      await dismissToasts(page);
    },
  },
  {
    name: 'Lifeboat inspect: cleanup (the workspace as the other checks expect it)',
    async run({ page, dirs }) {
      await runCommand(page, 'View: Close All Editors').catch(() => undefined);
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
        await openViewContainer(page, 'Lifeboat');
        await until(page, () => readTreeRows(page, VIEW), (rows) => !rows.some((r) => r.label === DB), `the tree still shows ${DB}`, 20_000);
      } finally {
        rmSync(backupDir(dirs), { recursive: true, force: true });
        rmSync(ordersAtBackup(dirs), { force: true });
        for (const f of [DB, `${DB}-journal`, `${DB}-wal`, `${DB}-shm`]) rmSync(path.join(dirs.workspace, f), { force: true });
      }
      await openViewContainer(page, 'Explorer');
    },
  },
];

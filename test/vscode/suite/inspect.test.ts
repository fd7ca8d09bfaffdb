// Looking inside backups in a real VS Code: "Open Backup" on a backup the extension made
// shows its schema, row counts and rows page by page; "Compare with Current Database"
// after known inserts, deletes and updates counts exactly those; "Restore This Table" puts
// back exactly the backup's table, leaves every other table as it was, makes a pre-restore
// backup and reports the foreign key check; a table defined differently is refused and
// nothing changes; "Compare Two Backups", the history's "Compare with Current", closing a
// view (its images go) and a runtime without node:sqlite (one clear message, no view).
//
// The views' webviews are real (the app says ready and gets the state); their messages are
// sent through the view's `handle`, as the app sends them. VS Code refuses modal dialogs to
// an extension under test, so the confirmation of Restore This Table is answered through
// the host's replaceable `confirm` here (test/e2e/inspect.ui.ts clicks the real dialog).
// Uses a database and a backup directory of its own; leaves the settings as it found them.
import assert from 'node:assert/strict';
import { existsSync, rmSync } from 'node:fs';
import path from 'node:path';
import * as vscode from 'vscode';
import type { LifeboatApi } from '../../../src/extension/container';
import type { BackupView, CompareView, InspectView } from '../../../src/extension/inspectHost';
import type { BackupNode, Node } from '../../../src/extension/tree';
import type { BrowseState, CompareState, DiffRowsPage, InspectRequestResults, ReplyMessage, RowsPage } from '../../../webview/protocol';
import { backupIds } from '../../fixtures/backupFiles';
import { query } from '../../fixtures/sqlite';
import { changeShopDb, makeShopDb, SHOP_DIFF, SHOP_ROWS, tableHash } from '../shopDb';
import { channelText, linesWith, SettleRecorder, until } from './settled';

const EXTENSION_ID = 'lifeboat.lifeboat';
const DIR = 'backups-inspect';
const DB = 'shop.db';
const KEYS = ['databases', 'directory', 'schedule.daily', 'backupOnShutdown'] as const;

const ws = () => vscode.workspace.workspaceFolders![0].uri.fsPath;
const dbPath = () => path.join(ws(), DB);
const backupsDir = () => path.join(ws(), DIR);

async function api(): Promise<LifeboatApi> {
  const a = await vscode.extensions.getExtension<LifeboatApi>(EXTENSION_ID)!.activate();
  await a.ready;
  return a;
}

async function configure(values: Record<string, unknown>): Promise<void> {
  const cfg = vscode.workspace.getConfiguration('lifeboat');
  for (const [k, v] of Object.entries(values)) await cfg.update(k, v, vscode.ConfigurationTarget.Workspace);
}

/** The tree's row of backup `id`. */
async function backupNode(a: LifeboatApi, id: string): Promise<BackupNode | undefined> {
  const walk = async (node?: Node): Promise<BackupNode | undefined> => {
    for (const k of (await a.tree.getChildren(node)) ?? []) {
      if (k.type === 'backup' && k.record.id === id) return k;
      const found = await walk(k);
      if (found) return found;
    }
    return undefined;
  };
  return walk();
}

let seq = 5000;
async function ask<M extends keyof InspectRequestResults>(view: InspectView, method: M, params: unknown): Promise<InspectRequestResults[M]> {
  const r = await view.handle({ kind: 'request', id: ++seq, method, params });
  assert.ok(r, `${method} got a reply`);
  assert.ok(r.ok, r.ok ? '' : r.error);
  return r.result as InspectRequestResults[M];
}

/** The view `run` opens (the host fires onDidOpen before the command resolves). */
async function opened<V extends InspectView>(a: LifeboatApi, run: () => Thenable<unknown>): Promise<V> {
  const views: InspectView[] = [];
  const sub = a.inspect.onDidOpen((v) => views.push(v));
  try {
    await run();
  } finally {
    sub.dispose();
  }
  assert.equal(views.length, 1, 'one view opened');
  return views[0] as V;
}

/** Waits until the view's webview app said ready and was sent the state. */
function delivered<S>(view: InspectView, ok: (s: S) => boolean = () => true): Promise<S> {
  return until(`the state delivered to view ${view.id}`, () => (view.lastPosted && ok(view.lastPosted as S) ? (view.lastPosted as S) : undefined), 30_000);
}

suite('Lifeboat: Open Backup, Compare, Restore This Table', () => {
  const saved: Record<string, unknown> = {};
  let rec: SettleRecorder;
  let backupId = '';
  /** sqlite3's hash of every table when the backup was made. */
  const atBackup: Record<string, string> = {};

  suiteSetup(async function () {
    this.timeout(120_000);
    const a = await api();
    rec = new SettleRecorder(a);
    const cfg = vscode.workspace.getConfiguration('lifeboat');
    for (const k of KEYS) saved[k] = cfg.inspect(k)?.workspaceValue;
    rmSync(dbPath(), { force: true });
    rmSync(backupsDir(), { recursive: true, force: true });
    makeShopDb(dbPath());
    await configure({ databases: [DB], directory: DIR, 'schedule.daily': false, backupOnShutdown: false });
    await until('shop.db configured', async () => (await a.folders())[0]?.databases.includes(dbPath()));
    const mark = rec.mark();
    await vscode.commands.executeCommand('lifeboat.backupNow');
    const s = rec.since(mark, { op: 'backup' });
    assert.equal(s.length, 1, JSON.stringify(rec.since(mark)));
    assert.equal(s[0].outcome, 'ok', s[0].message);
    backupId = s[0].backup!;
    for (const t of Object.keys(SHOP_ROWS)) atBackup[t] = tableHash(dbPath(), t);
    await until('the backup in the tree', () => backupNode(a, backupId));
  });

  suiteTeardown(async function () {
    this.timeout(60_000);
    const a = await api();
    for (const v of a.inspect.open) v.dispose();
    rec?.dispose();
    await configure(saved);
    await until('shop.db no longer configured', async () => !(await a.folders()).some((f) => f.databases.includes(dbPath())));
    rmSync(dbPath(), { force: true });
    for (const side of ['-wal', '-shm']) rmSync(dbPath() + side, { force: true });
    rmSync(backupsDir(), { recursive: true, force: true });
  });

  test('Open Backup shows the schema, the row counts and the rows page by page, read from an image removed when the view closes', async function () {
    this.timeout(60_000);
    const a = await api();
    const node = (await backupNode(a, backupId))!;
    const view = await opened<BackupView>(a, () => vscode.commands.executeCommand('lifeboat.openBackup', node));
    const state = await delivered<BrowseState>(view);
    assert.equal(state.view, 'browse');
    assert.equal(state.backup.id, backupId);
    assert.equal(state.backup.db, dbPath());
    assert.equal(state.canCompare, true);
    assert.deepEqual(Object.fromEntries(state.tables.map((t) => [t.name, t.rows])), SHOP_ROWS);
    assert.equal(state.tables.find((t) => t.name === 'kv')?.order, 'primary key (k)');
    assert.equal(state.tables.find((t) => t.name === 'customers')?.order, 'rowid');
    // SQLite's own objects (sqlite_autoindex_tags_1) are left out.
    assert.deepEqual(state.objects.map((o) => `${o.type} ${o.name}`).sort(), [
      'index idx_orders_customer',
      'table customers',
      'table kv',
      'table log',
      'table orders',
      'table tags',
      'trigger orders_log',
      'view big_orders',
    ]);
    assert.match(state.objects.find((o) => o.name === 'orders_log')!.sql!, /AFTER INSERT ON orders/);
    assert.match(state.objects.find((o) => o.name === 'big_orders')!.sql!, /total > 50/);
    // Rows by rowid, 100 a page; the last page holds the rest.
    const p1 = await ask(view, 'inspect/table/rows', { table: 'customers', offset: 0 });
    assert.deepEqual([p1.rows.length, p1.total, p1.order, p1.columns], [100, 250, 'rowid', ['id', 'name']]);
    assert.deepEqual(p1.rows[0], [1, 'customer 1']);
    const p3: RowsPage = await ask(view, 'inspect/table/rows', { table: 'customers', offset: 200 });
    assert.deepEqual([p3.rows.length, p3.rows[0][0], p3.rows[49][0]], [50, 201, 250]);
    const kv = await ask(view, 'inspect/table/rows', { table: 'kv', offset: 0 });
    assert.deepEqual(kv.rows.slice(0, 3).map((r) => r[0]), ['k1', 'k10', 'k11'], 'a WITHOUT ROWID table by its key');
    // Only the backup's tables; nothing that writes.
    const unknown = await view.handle({ kind: 'request', id: ++seq, method: 'inspect/table/rows', params: { table: 'sqlite_master; DROP TABLE x', offset: 0 } });
    assert.equal(unknown?.ok, false);
    assert.equal(await view.handle({ kind: 'request', id: ++seq, method: 'inspect/table/restore', params: { table: 'orders' } }).then((r) => r?.ok), false);
    assert.equal(await view.handle({ kind: 'request', id: ++seq, method: 'inspect/table/rows', params: { table: 'kv', offset: -1 } }), undefined, 'a malformed message is ignored');
    assert.equal(await view.handle({ kind: 'command', method: 'backups/database/backUp', params: { db: dbPath() } }), undefined, 'the panel\'s messages are refused');
    const images = view.imagePaths;
    assert.equal(images.length, 1);
    assert.ok(existsSync(images[0]), 'the image is kept while the view is open');
    assert.ok(!images[0].startsWith(ws()), 'the image is not in the workspace');
    view.dispose();
    await until('the image removed after the view closed', () => !existsSync(images[0]) && !existsSync(path.dirname(images[0])));
    assert.equal(a.inspect.open.includes(view), false);
  });

  test('Compare with Current Database counts exactly the inserts, deletes and updates made since the backup', async function () {
    this.timeout(60_000);
    const a = await api();
    changeShopDb(dbPath());
    const node = (await backupNode(a, backupId))!;
    const view = await opened<CompareView>(a, () => vscode.commands.executeCommand('lifeboat.compareWithCurrent', node));
    const state = await delivered<CompareState>(view);
    assert.equal(state.view, 'compare');
    assert.equal(state.older.id, backupId);
    assert.equal(state.newer.kind, 'live');
    assert.deepEqual(Object.fromEntries(state.tables.map(({ name, ...t }) => [name, t])), SHOP_DIFF.tables);
    assert.deepEqual(state.tables.map((t) => t.name), ['customers', 'kv', 'log', 'orders', 'tags'], 'by name');
    assert.deepEqual(state.schema.added.map((o) => `${o.type} ${o.name}`).sort(), SHOP_DIFF.schema.added);
    assert.deepEqual(state.schema.removed.map((o) => `${o.type} ${o.name}`).sort(), SHOP_DIFF.schema.removed);
    assert.deepEqual(state.schema.changed.map((o) => `${o.type} ${o.name}`), SHOP_DIFF.schema.changed);
    assert.deepEqual(state.schema.changed[0].columns?.added, ['extra']);
    assert.equal(state.restore.offered, true);
    const rows: DiffRowsPage = await ask(view, 'inspect/diff/rows', { table: 'orders', offset: 0 });
    assert.deepEqual(rows.counts, { added: 1, removed: 6, changed: 3 });
    assert.deepEqual(rows.removed.map((r) => r.values[0]), SHOP_DIFF.removedOrders);
    assert.deepEqual(rows.added.map((r) => r.values), [[101, 1, 999]]);
    assert.deepEqual(rows.changed.map((c) => [c.old.values, c.new.values]), SHOP_DIFF.changedOrders.map((id) => [[id, id, id], [id, id, id + 1000]]));
    assert.deepEqual([rows.olderColumns, rows.newerColumns], [['id', 'customer_id', 'total'], ['id', 'customer_id', 'total']]);
    const log = await ask(view, 'inspect/diff/rows', { table: 'log', offset: 0 });
    assert.deepEqual(log.added.map((r) => r.values[0]).sort(), ['order 101', 'x']);
    assert.deepEqual(log.removed.map((r) => [r.values[0], r.count]), [['b', 1]]);
    const kv = await ask(view, 'inspect/diff/rows', { table: 'kv', offset: 0 });
    assert.deepEqual([kv.olderColumns, kv.newerColumns], [['k', 'v'], ['k', 'v', 'extra']], 'each side with its own columns');
  });

  test('Restore This Table replaces exactly that table after a pre-restore backup and reports the foreign key check', async function () {
    this.timeout(90_000);
    const a = await api();
    const view = a.inspect.open.find((v): v is CompareView => 'diff' in v && (v as CompareView).state.newer.kind === 'live')!;
    assert.ok(view, 'the comparison is open');
    const before = Object.fromEntries(Object.keys(SHOP_ROWS).map((t) => [t, tableHash(dbPath(), t)]));
    assert.notEqual(before.orders, atBackup.orders);
    const asked: string[] = [];
    const original = a.inspect.confirm;
    try {
      // Declined: nothing happens.
      a.inspect.confirm = async (message) => {
        asked.push(message);
        return false;
      };
      const no = await ask(view, 'inspect/table/restore', { table: 'orders' });
      assert.equal(no.outcome, 'declined');
      assert.equal(tableHash(dbPath(), 'orders'), before.orders);
      assert.match(asked[0], /^Restore table orders of shop\.db from the backup of /);

      a.inspect.confirm = async (message) => {
        asked.push(message);
        return true;
      };
      const mark = rec.mark();
      const yes = await ask(view, 'inspect/table/restore', { table: 'orders' });
      assert.equal(yes.outcome, 'restored', yes.message);
      assert.equal(tableHash(dbPath(), 'orders'), atBackup.orders, 'orders is the backup\'s');
      for (const t of ['customers', 'tags', 'kv', 'log']) assert.equal(tableHash(dbPath(), t), before[t], `${t} is as it was`);
      const settled = rec.since(mark, { op: 'restoreTable' });
      assert.equal(settled.length, 1, JSON.stringify(rec.since(mark)));
      assert.deepEqual([settled[0].outcome, settled[0].route, settled[0].db], ['ok', 'panel', dbPath()]);
      const pre = backupIds(backupsDir()).filter((id) => id.endsWith('-pre-restore'));
      assert.equal(pre.length, 1, 'one pre-restore backup');
      assert.match(settled[0].message, new RegExp(`kept as backup ${pre[0]}`));
      assert.match(settled[0].message, /found 6 violations/);
      // The comparison is made again: orders matches the backup now, the rest is unchanged.
      const after = await delivered<CompareState>(view, (s) => !s.busy && !!s.notice);
      assert.equal(after.notice?.ok, true, after.notice?.message);
      assert.match(after.notice!.message, /^Restored table orders of shop\.db: it holds the backup's 100 rows now \(it had 95\)\.$/);
      assert.deepEqual(after.notice!.details.slice(0, 2), [`Pre-restore backup: ${pre[0]}`, after.notice!.details[1]]);
      assert.match(after.notice!.details[1], /^Foreign key check: 6 violations: orders row 5 has no parent in customers/);
      const tables = Object.fromEntries(after.tables.map(({ name, ...t }) => [name, t]));
      assert.deepEqual(tables.orders, { added: 0, removed: 0, changed: 0, key: 'rowid (id)' });
      assert.deepEqual(tables.customers, SHOP_DIFF.tables.customers);
      assert.deepEqual(tables.log, SHOP_DIFF.tables.log, 'the restore fired no trigger');
      await until('the pre-restore backup in the tree', () => backupNode(a, pre[0]));
    } finally {
      a.inspect.confirm = original;
    }
  });

  test('a table defined differently is refused with one clear message, and nothing changes', async function () {
    this.timeout(60_000);
    const a = await api();
    const view = a.inspect.open.find((v): v is CompareView => 'diff' in v && (v as CompareView).state.newer.kind === 'live')!;
    const original = a.inspect.confirm;
    const before = tableHash(dbPath(), 'kv');
    const pre = backupIds(backupsDir()).length;
    const mark = rec.mark();
    try {
      a.inspect.confirm = async () => true;
      const r = await ask(view, 'inspect/table/restore', { table: 'kv' });
      assert.equal(r.outcome, 'failed');
      assert.match(r.message, /^table kv of shop\.db was not restored: table kv is defined differently in the backup and in .*shop\.db \(columns only the live table has: extra\); restoring it could lose or misplace data, so nothing was changed$/);
    } finally {
      a.inspect.confirm = original;
    }
    assert.equal(tableHash(dbPath(), 'kv'), before);
    assert.equal(backupIds(backupsDir()).length, pre, 'no pre-restore backup for a refused restore');
    const settled = rec.since(mark, { op: 'restoreTable' });
    assert.deepEqual(settled.map((s) => s.outcome), ['failed']);
    const state = await delivered<CompareState>(view, (s) => !s.busy && s.notice?.ok === false);
    assert.match(state.notice!.message, /defined differently/);
  });

  test('Restore Selected Rows: the picked removed, changed and added rows become the backup\'s, nothing else changes; a key that matches nothing is refused', async function () {
    this.timeout(90_000);
    const a = await api();
    const view = a.inspect.open.find((v): v is CompareView => 'diff' in v && (v as CompareView).state.newer.kind === 'live')!;
    assert.ok(view, 'the comparison is open');
    // Rows of keyed tables carry their keys whole; a multiset table's do not.
    const page: DiffRowsPage = await ask(view, 'inspect/diff/rows', { table: 'customers', offset: 0 });
    assert.deepEqual(page.removed.map((r) => r.key), [[5], [6], [7]]);
    assert.deepEqual(page.changed.map((c) => [c.old.key, c.new.key]), [[[10], [10]], [[20], [20]]]);
    assert.deepEqual(page.added.map((r) => r.key), [[251], [252], [253]]);
    const tags: DiffRowsPage = await ask(view, 'inspect/diff/rows', { table: 'tags', offset: 0 });
    assert.deepEqual(tags.removed.map((r) => r.key), [['a1', 1]]);
    const log: DiffRowsPage = await ask(view, 'inspect/diff/rows', { table: 'log', offset: 0 });
    assert.ok([...log.added, ...log.removed].every((r) => r.key === undefined), 'no keys for a table compared as a multiset');

    const allRows = (t: string) => query<Record<string, unknown>>(dbPath(), `SELECT * FROM ${t} ORDER BY 1, 2`);
    const before = Object.fromEntries(Object.keys(SHOP_ROWS).map((t) => [t, tableHash(dbPath(), t)]));
    const customers = allRows('customers');
    const preCount = backupIds(backupsDir()).filter((id) => id.endsWith('-pre-restore')).length;
    const asked: { message: string; detail: string; button: string }[] = [];
    const original = a.inspect.confirm;
    const rows = [
      { key: [5], kind: 'removed' },
      { key: [10], kind: 'changed' },
      { key: [251], kind: 'added' },
    ];
    try {
      a.inspect.confirm = async (message, detail, button) => {
        asked.push({ message, detail, button });
        return false;
      };
      const no = await ask(view, 'inspect/rows/restore', { table: 'customers', rows });
      assert.equal(no.outcome, 'declined');
      assert.equal(tableHash(dbPath(), 'customers'), before.customers);
      assert.match(asked[0].message, /^Restore 3 rows of table customers of shop\.db from the backup of /);
      assert.match(asked[0].detail, /1 row changed since the backup reverted, 1 row removed since put back, 1 row added since deleted, in one transaction; .*pre-restore backup/);
      assert.equal(asked[0].button, 'Restore Rows');

      a.inspect.confirm = async () => true;
      const mark = rec.mark();
      const yes = await ask(view, 'inspect/rows/restore', { table: 'customers', rows });
      assert.equal(yes.outcome, 'restored', yes.message);
      const now = allRows('customers');
      const byId = (xs: Record<string, unknown>[]) => new Map(xs.map((r) => [r.id, r]));
      assert.deepEqual(byId(now).get(5), { id: 5, name: 'customer 5' }, 'row 5 is back as the backup has it');
      assert.deepEqual(byId(now).get(10), { id: 10, name: 'customer 10' }, 'row 10 reverted');
      assert.equal(byId(now).has(251), false, 'row 251 (added since) deleted');
      const others = (xs: Record<string, unknown>[]) => xs.filter((r) => ![5, 10, 251].includes(r.id as number));
      assert.deepEqual(others(now), others(customers), 'every other customer as it was');
      for (const t of ['orders', 'tags', 'kv', 'log']) assert.equal(tableHash(dbPath(), t), before[t], `${t} is as it was`);
      const settled = rec.since(mark, { op: 'restoreRows' });
      assert.equal(settled.length, 1, JSON.stringify(rec.since(mark)));
      assert.deepEqual([settled[0].outcome, settled[0].route, settled[0].db], ['ok', 'panel', dbPath()]);
      const pre = backupIds(backupsDir()).filter((id) => id.endsWith('-pre-restore'));
      assert.equal(pre.length, preCount + 1, 'one more pre-restore backup');
      const newest = pre.sort().at(-1)!;
      assert.match(settled[0].message, new RegExp(`kept as backup ${newest}`));
      // Customer 5 is back: orders 5 and 55 have their parent again; 6, 7, 56, 57 do not.
      assert.match(settled[0].message, /found 4 violations/);
      const after = await delivered<CompareState>(view, (s) => !s.busy && !!s.notice && s.notice.message.startsWith('Restored 3 rows'));
      assert.equal(after.notice?.ok, true);
      assert.equal(after.notice!.message, 'Restored 3 rows of table customers of shop.db from the backup: 1 row reverted, 1 row put back, 1 row deleted.');
      assert.equal(after.notice!.details[0], `Pre-restore backup: ${newest}`);
      assert.match(after.notice!.details[1], /^Foreign key check: 4 violations: orders row 6 has no parent in customers/);
      assert.deepEqual(after.tables.find((t) => t.name === 'customers'), { name: 'customers', added: 2, removed: 2, changed: 1, key: 'rowid (id)' });

      // A composite key, from the comparison's own rows.
      const tagsMark = rec.mark();
      const t = await ask(view, 'inspect/rows/restore', { table: 'tags', rows: [{ key: tags.removed[0].key, kind: 'removed' }] });
      assert.equal(t.outcome, 'restored', t.message);
      assert.deepEqual(query(dbPath(), "SELECT a, b, note FROM tags WHERE a = 'a1' AND b = 1"), [{ a: 'a1', b: 1, note: 'note 1' }]);
      assert.deepEqual(rec.since(tagsMark, { op: 'restoreRows' }).map((x) => x.outcome), ['ok']);

      // A key that matches nothing: refused, naming it; nothing changes, no pre-restore backup.
      const whole = Object.fromEntries(Object.keys(SHOP_ROWS).map((n) => [n, tableHash(dbPath(), n)]));
      const count = backupIds(backupsDir()).length;
      const bad = await ask(view, 'inspect/rows/restore', { table: 'customers', rows: [{ key: [6], kind: 'removed' }, { key: [999], kind: 'removed' }] });
      assert.equal(bad.outcome, 'failed');
      assert.match(bad.message, /^rows of table customers of shop\.db were not restored: table customers has no row with key 999 \(id\) in the backup or in .*shop\.db; nothing was changed$/);
      assert.deepEqual(Object.fromEntries(Object.keys(SHOP_ROWS).map((n) => [n, tableHash(dbPath(), n)])), whole);
      assert.equal(backupIds(backupsDir()).length, count);
      // A table without a key: its rows cannot be picked.
      const multiset = await view.handle({ kind: 'request', id: ++seq, method: 'inspect/rows/restore', params: { table: 'log', rows: [{ key: ['x'], kind: 'added' }] } });
      assert.equal(multiset?.ok, false);
      assert.match(multiset!.ok ? '' : multiset!.error, /rows of table log cannot be restored one by one: it has no primary key/);
    } finally {
      a.inspect.confirm = original;
    }
  });

  test('Compare Two Backups: the backup and the pre-restore backup differ by exactly the changes', async function () {
    this.timeout(60_000);
    const a = await api();
    const pre = backupIds(backupsDir()).find((id) => id.endsWith('-pre-restore'))!;
    const first = (await backupNode(a, backupId))!;
    const second = (await until('the pre-restore row', () => backupNode(a, pre)))!;
    // Given newest first: the view still compares the older to the newer.
    const view = await opened<CompareView>(a, () => vscode.commands.executeCommand('lifeboat.compareBackups', second, first));
    const state = await delivered<CompareState>(view);
    assert.deepEqual([state.older.id, state.newer.id, state.newer.kind], [backupId, pre, 'backup']);
    assert.deepEqual(Object.fromEntries(state.tables.map(({ name, ...t }) => [name, t])), SHOP_DIFF.tables);
    assert.equal(state.restore.offered, false);
    const refused = await view.handle({ kind: 'request', id: ++seq, method: 'inspect/table/restore', params: { table: 'orders' } });
    assert.equal(refused?.ok, false);
    view.dispose();
  });

  test('the panel\'s history row "Compare with Current" opens the comparison', async function () {
    this.timeout(60_000);
    const a = await api();
    const view = await opened<CompareView>(a, () => a.panel.handle({ kind: 'command', method: 'backups/backup/act', params: { db: dbPath(), id: backupId, action: 'compare' } }));
    const state = await delivered<CompareState>(view);
    assert.deepEqual([state.older.id, state.newer.kind], [backupId, 'live']);
    assert.deepEqual(state.tables.find((t) => t.name === 'orders'), { name: 'orders', added: 0, removed: 0, changed: 0, key: 'rowid (id)' });
    const images = view.imagePaths;
    assert.equal(images.length, 2);
    view.dispose();
    await until('both images removed', () => images.every((p) => !existsSync(p)));
  });

  test('without node:sqlite, Open Backup shows one clear message and opens no view', async function () {
    this.timeout(60_000);
    const a = await api();
    const node = (await backupNode(a, backupId))!;
    const open = a.inspect.open.length;
    const needle = 'looking inside a backup needs SQLite in the runtime';
    const lines = linesWith(channelText(a), needle);
    // The SQLite worker reads the environment when it starts: it behaves as the fallback runtime.
    process.env.LIFEBOAT_SQLITE = 'fallback';
    try {
      await vscode.commands.executeCommand('lifeboat.openBackup', node);
    } finally {
      delete process.env.LIFEBOAT_SQLITE;
    }
    assert.equal(a.inspect.open.length, open, 'no view opened');
    const text = await until('the message in the log', () => {
      const t = channelText(a);
      return linesWith(t, needle) > lines ? t : undefined;
    });
    assert.equal(linesWith(text, needle) - lines, 1, 'one message');
    assert.match(text.split('\n').find((l) => l.includes(needle))!, /Lifeboat: opening .* failed: looking inside a backup needs SQLite in the runtime \(node:sqlite: Node 22\.13 or later, VS Code 1\.101 or later\)/);
    // And it works again with SQLite.
    const view = await opened<BackupView>(a, () => vscode.commands.executeCommand('lifeboat.openBackup', node));
    await delivered<BrowseState>(view);
    view.dispose();
  });
});

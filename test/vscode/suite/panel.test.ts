// The Settings and Statistics panel's host inside a real VS Code: the real webview app says
// ready and gets the statistics of the backups on disk, Requests are answered by the core
// (validate, slots, planRotation), a saved setting lands in .vscode/settings.json, row
// actions and Back Up Now run through the BackupService (one onDidSettle each, route
// `panel`; the tree and the panel's state show the result), progress of a backup reaches
// the panel, and a malformed message is ignored. Runs after lifeboat.test.ts.
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import * as vscode from 'vscode';
import type { LifeboatApi } from '../../../src/extension/container';
import type { Node } from '../../../src/extension/tree';
import type { HostMessage, PanelState, ProgressState, ReplyMessage } from '../../../webview/protocol';
import { Engine } from '../../../src/core/engine';
import { backupIds, snapshotIds } from '../../fixtures/backupFiles';
import { seedBackups } from '../../fixtures/seedBackups';
import { backupLogged, linesWith, SettleRecorder } from './settled';

const EXTENSION_ID = 'lifeboat.lifeboat';
const ws = () => vscode.workspace.workspaceFolders![0].uri.fsPath;
const dbPath = () => path.join(ws(), 'app.db');
const backupsDir = () => path.join(ws(), 'backups');

async function api(): Promise<LifeboatApi> {
  const a = await vscode.extensions.getExtension<LifeboatApi>(EXTENSION_ID)!.activate();
  await a.ready;
  return a;
}

/** Polls `fn` until truthy; fails with `what` after `ms` (a deadline, not a speed check). */
async function until<T>(what: string, fn: () => T | Promise<T>, ms = 30_000): Promise<NonNullable<T>> {
  const end = Date.now() + ms;
  for (;;) {
    const v = await fn();
    if (v) return v as NonNullable<T>;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

/** The tree's row of backup `id`: its contextValue, or undefined when the tree does not show it. */
async function treeRow(a: LifeboatApi, id: string): Promise<string | undefined> {
  const walk = async (node?: Node): Promise<string | undefined> => {
    for (const k of (await a.tree.getChildren(node)) ?? []) {
      if (k.type === 'backup' && k.record.id === id) return a.tree.getTreeItem(k).contextValue ?? '';
      const found = await walk(k);
      if (found !== undefined) return found;
    }
    return undefined;
  };
  return walk();
}

let seq = 1000;
async function request(a: LifeboatApi, method: string, params: unknown): Promise<ReplyMessage> {
  const r = await a.panel.handle({ kind: 'request', id: ++seq, method, params });
  assert.ok(r, `${method} got a reply`);
  return r;
}
function ok<T>(r: ReplyMessage): T {
  assert.ok(r.ok, r.ok ? '' : r.error);
  return r.result as T;
}

suite('Lifeboat: the Settings and Statistics panel', () => {
  const posted: HostMessage[] = [];
  let sub: vscode.Disposable | undefined;
  let rec: SettleRecorder;

  suiteSetup(async () => {
    const a = await api();
    sub = a.panel.onDidPost((m) => posted.push(m));
    rec = new SettleRecorder(a);
    const cfg = vscode.workspace.getConfiguration('lifeboat');
    await cfg.update('databases', ['app.db'], vscode.ConfigurationTarget.Workspace);
    await cfg.update('schedule.daily', true, vscode.ConfigurationTarget.Workspace);
    await cfg.update('schedule.time', '02:00', vscode.ConfigurationTarget.Workspace);
    // Backups of several days, made by the real engine with its clock set back.
    const day = 86_400_000;
    const now = Date.now();
    await seedBackups(dbPath(), backupsDir(), [
      { at: new Date(now - 9 * day), kind: 'scheduled' },
      { at: new Date(now - 5 * day), kind: 'scheduled' },
      { at: new Date(now - 3 * day), kind: 'migration' },
      { at: new Date(now - 1 * day), kind: 'scheduled' },
    ]);
    await a.refresh();
  });

  suiteTeardown(() => {
    sub?.dispose();
    rec.dispose();
  });

  test('opens; the app says ready and gets the statistics of the backups on disk', async () => {
    const a = await api();
    await vscode.commands.executeCommand('lifeboat.openPanel');
    assert.equal(a.panel.isOpen, true);
    // Format v2, the default: every backup is a snapshot manifest.
    const onDisk = backupIds(backupsDir()).filter((id) => id.startsWith('app-'));
    assert.deepEqual(snapshotIds(backupsDir()).filter((id) => id.startsWith('app-')), onDisk);
    // The host posts nothing before the real webview app says ready; then the whole state.
    const state = await until('a state notification', () => {
      const m = [...posted].reverse().find((x) => x.kind === 'notification' && x.method === 'panel/state/didChange');
      const s = m && (m.params as PanelState);
      return s && s.databases[0]?.stats.count === onDisk.length ? s : undefined;
    });
    const db = state.databases[0];
    assert.equal(db.id, dbPath());
    assert.equal(db.label, 'app.db');
    assert.equal(db.history.length, onDisk.length);
    assert.deepEqual(db.history.map((r) => r.id).sort(), onDisk);
    const tierTotal = Object.values(db.stats.perTier).reduce((n, t) => n + (t?.count ?? 0), 0);
    assert.equal(tierTotal, onDisk.length, 'every backup is in one tier');
    const events = (await new Engine().list(backupsDir())).records.filter((r) => r.manifest.source.path === dbPath() && (r.manifest.kind === 'migration' || r.manifest.kind === 'pre-restore'));
    assert.equal(db.stats.perTier.migrations?.count ?? 0, events.length, 'migration and pre-restore backups are under Migrations');
    assert.equal(db.stats.verifiedShare, 1);
    assert.equal(db.stats.sourceHealth.state, 'healthy');
    assert.match(db.stats.schedule, /^daily 02:00$/);
    assert.ok(db.stats.nextRun && Date.parse(db.stats.nextRun) > Date.now(), 'the next scheduled run is in the future');
    assert.equal(db.settings['schedule.time'], '02:00');
    assert.equal(db.settings['retention.daily'], (await a.folders())[0].settings.retention.daily, 'the form shows the settings in force');
  });

  test('a malformed or unknown message is ignored (no reply, nothing run)', async () => {
    const a = await api();
    const before = posted.length;
    assert.equal(await a.panel.handle({ kind: 'command', method: 'backups/database/backUp' }), undefined);
    assert.equal(await a.panel.handle({ kind: 'request', id: 1, method: 'settings/values/save', params: { db: dbPath(), scope: 'everywhere', values: {} } }), undefined);
    assert.equal(await a.panel.handle({ kind: 'request', id: 2, method: 'settings/values/validate', params: { db: dbPath(), values: { 'no.such.key': 1 } } }), undefined);
    assert.equal(await a.panel.handle('hello'), undefined);
    assert.equal(await a.panel.handle({ kind: 'command', method: 'system/shell/run', params: { cmd: 'rm -rf /' } }), undefined);
    assert.equal(posted.slice(before).filter((m) => m.kind === 'reply').length, 0);
  });

  test('validation, schedule preview and rotation preview come from the core', async () => {
    const a = await api();
    const v = ok<{ issues: { field: string; reason: string }[] }>(await request(a, 'settings/values/validate', { db: dbPath(), values: { 'schedule.time': '25:00', 'retention.daily': 'x' } }));
    assert.deepEqual(v.issues.map((i) => i.field).sort(), ['lifeboat.retention.daily', 'lifeboat.schedule.time']);
    const s = ok<{ label: string; runs: string[] }>(await request(a, 'settings/schedule/preview', { db: dbPath(), values: { enabled: true, 'schedule.daily': true, 'schedule.cron': '0 */4 * * *' } }));
    assert.equal(s.label, 'cron 0 */4 * * *');
    assert.equal(s.runs.length, 3);
    assert.equal(Date.parse(s.runs[1]) - Date.parse(s.runs[0]), 4 * 3_600_000);
    const bad = ok<{ issues: { field: string }[] }>(await request(a, 'settings/schedule/preview', { db: dbPath(), values: { 'schedule.cron': '99 * * * *' } }));
    assert.equal(bad.issues[0]?.field, 'lifeboat.schedule.cron');
    const all = backupIds(backupsDir()).length;
    const tight = ok<{ keep: { id: string }[]; remove: { id: string; reasons: string[] }[] }>(
      await request(a, 'settings/retention/preview', { db: dbPath(), values: { 'retention.daily': 1, 'retention.weekly': 0, 'retention.monthly': 0, 'retention.keepWithin': '', 'retention.keepEventBackups': 10 } }),
    );
    assert.equal(tight.keep.length + tight.remove.length, all, 'every backup is kept or removed');
    assert.ok(tight.remove.length >= 2, `the tight policy deletes older scheduled backups: ${JSON.stringify(tight.remove)}`);
    assert.equal(backupIds(backupsDir()).length, all, 'a preview deletes nothing');
    const unknownDb = await request(a, 'settings/values/validate', { db: path.join(ws(), 'nope.db'), values: {} });
    assert.equal(unknownDb.ok, false, 'a request about an unprotected database is rejected');
  });

  test('Save validates first, then writes only the changed settings to .vscode/settings.json', async () => {
    const a = await api();
    const file = path.join(ws(), '.vscode', 'settings.json');
    const cfg = vscode.workspace.getConfiguration('lifeboat');
    const previous = { daily: cfg.inspect('retention.daily')?.workspaceValue, notifications: cfg.inspect('notifications')?.workspaceValue };
    const before = readFileSync(file, 'utf8');
    const refused = ok<{ saved: string[]; issues: unknown[] }>(await request(a, 'settings/values/save', { db: dbPath(), scope: 'workspace', values: { 'retention.daily': 7, 'schedule.time': '7am' } }));
    assert.deepEqual(refused.saved, []);
    assert.equal(refused.issues.length, 1);
    assert.equal(readFileSync(file, 'utf8'), before, 'nothing written when a value is invalid');
    const [state] = await a.folders();
    const other = state.settings.notifications === 'all' ? 'none' : 'all';
    const daily = state.settings.retention.daily === 7 ? 8 : 7;
    const r = ok<{ saved: string[] }>(await request(a, 'settings/values/save', { db: dbPath(), scope: 'workspace', values: { 'retention.daily': daily, 'schedule.time': state.settings.backupTime, notifications: other } }));
    assert.deepEqual(r.saved.sort(), ['notifications', 'retention.daily'], 'the unchanged time is not written');
    const json = JSON.parse(readFileSync(file, 'utf8')) as Record<string, unknown>;
    assert.equal(json['lifeboat.retention.daily'], daily);
    assert.equal(json['lifeboat.notifications'], other);
    await until('the new settings in force', async () => (await a.folders())[0].settings.retention.daily === daily);
    await cfg.update('retention.daily', previous.daily, vscode.ConfigurationTarget.Workspace);
    await cfg.update('notifications', previous.notifications, vscode.ConfigurationTarget.Workspace);
  });

  test('Save writes the off-site rotation as one object with only the keys set, {} when cleared; an unknown key is refused, not dropped', async () => {
    const a = await api();
    const file = path.join(ws(), '.vscode', 'settings.json');
    const cfg = vscode.workspace.getConfiguration('lifeboat');
    const previous = cfg.inspect('offsite.retention')?.workspaceValue;
    const rotation = (o: Record<string, unknown>) => Object.fromEntries(Object.entries(o).map(([k, v]) => [`offsite.retention.${k}`, v]));
    const empty = { daily: '', weekly: '', monthly: '', keepWithin: '', keepEventBackups: '' };
    const written = () => (JSON.parse(readFileSync(file, 'utf8')) as Record<string, unknown>)['lifeboat.offsite.retention'];
    const inForce = async () => JSON.stringify((await a.folders())[0].settings.offsite.retention);
    try {
      const r = ok<{ saved: string[] }>(await request(a, 'settings/values/save', { db: dbPath(), scope: 'workspace', values: rotation({ ...empty, daily: 7, monthly: 24 }) }));
      assert.deepEqual(r.saved, ['offsite.retention']);
      assert.deepEqual(written(), { daily: 7, monthly: 24 });
      await until('the off-site rotation in force', async () => (await inForce()) === JSON.stringify({ daily: 7, monthly: 24 }));
      const shown = (await a.panel.buildState()).databases.find((d) => d.id === dbPath())!.settings;
      assert.deepEqual(Object.keys(empty).map((k) => shown[`offsite.retention.${k}`]), [7, '', 24, '', ''], 'the form shows the keys set and empty fields for the rest');

      const cleared = ok<{ saved: string[] }>(await request(a, 'settings/values/save', { db: dbPath(), scope: 'workspace', values: rotation(empty) }));
      assert.deepEqual(cleared.saved, ['offsite.retention']);
      assert.deepEqual(written(), {});
      await until('no off-site rotation of its own', async () => (await inForce()) === '{}');

      const bad = ok<{ saved: string[]; issues: { field: string }[] }>(await request(a, 'settings/values/save', { db: dbPath(), scope: 'workspace', values: rotation({ daily: -1, keepWithin: 'abc' }) }));
      assert.deepEqual([bad.saved, bad.issues.map((i) => i.field).sort()], [[], ['lifeboat.offsite.retention.daily', 'lifeboat.offsite.retention.keepWithin']]);
      assert.deepEqual(written(), {}, 'nothing written when a value is invalid');

      // VS Code merges an object setting's scopes key by key: a key the User settings set cannot be cleared from the Workspace settings.
      const previousUser = cfg.inspect('offsite.retention')?.globalValue;
      try {
        await cfg.update('offsite.retention', { monthly: 24 }, vscode.ConfigurationTarget.Global);
        await until('the User settings\' monthly in force', async () => (await inForce()) === JSON.stringify({ monthly: 24 }));
        const held = ok<{ saved: string[]; issues: { field: string; reason: string }[] }>(await request(a, 'settings/values/save', { db: dbPath(), scope: 'workspace', values: rotation({ ...empty, daily: 7 }) }));
        assert.deepEqual([held.saved, held.issues.map((i) => i.field)], [[], ['lifeboat.offsite.retention.monthly']]);
        assert.match(held.issues[0].reason, /the User settings set it to 24/);
        assert.deepEqual(written(), {}, 'nothing written');
        const user = ok<{ saved: string[]; issues: unknown[] }>(await request(a, 'settings/values/save', { db: dbPath(), scope: 'user', values: rotation({ ...empty, daily: 7 }) }));
        assert.deepEqual([user.saved, user.issues], [['offsite.retention'], []]);
        assert.deepEqual(cfg.inspect('offsite.retention')?.globalValue, { daily: 7 }, 'cleared where it was set');
      } finally {
        await cfg.update('offsite.retention', previousUser, vscode.ConfigurationTarget.Global);
      }

      // A key settings.json holds that the panel has no field for is kept, so the save is refused as the reader refuses it.
      await cfg.update('offsite.retention', { monthly: 24, hourly: 48 }, vscode.ConfigurationTarget.Workspace);
      const before = readFileSync(file, 'utf8');
      const refused = ok<{ saved: string[]; issues: { field: string; reason: string }[] }>(await request(a, 'settings/values/save', { db: dbPath(), scope: 'workspace', values: rotation({ daily: 7 }) }));
      assert.deepEqual(refused.saved, []);
      assert.deepEqual(refused.issues.map((i) => i.field), ['lifeboat.offsite.retention']);
      assert.match(refused.issues[0].reason, /unknown key hourly/);
      assert.equal(readFileSync(file, 'utf8'), before, 'the object with its unknown key is left as it was');
    } finally {
      await cfg.update('offsite.retention', previous, vscode.ConfigurationTarget.Workspace);
    }
  });

  test('row actions run through the BackupService: Pin and Unpin change the catalog and the tree', async () => {
    const a = await api();
    const list = async () => new Engine().list(backupsDir());
    const target = (await list()).records.find((r) => r.manifest.kind === 'scheduled')!;
    assert.ok(target);
    const pinned = async () => (await list()).records.find((r) => r.id === target.id)?.state.pinned === true;
    for (const action of ['pin', 'unpin'] as const) {
      const mark = rec.mark();
      await a.panel.handle({ kind: 'command', method: 'backups/backup/act', params: { db: dbPath(), id: target.id, action } });
      assert.equal(await pinned(), action === 'pin');
      const settled = rec.since(mark, { op: action });
      assert.equal(settled.length, 1, JSON.stringify(rec.since(mark)));
      assert.deepEqual([settled[0].route, settled[0].outcome, settled[0].backup, settled[0].db], ['panel', 'ok', target.id, dbPath()]);
      // The real tree was refreshed by the service: the row's menu offers Unpin or Pin now.
      const ctx = await treeRow(a, target.id);
      assert.ok(ctx, `the tree shows ${target.id}`);
      assert.equal(ctx.endsWith('.pinned'), action === 'pin', ctx);
    }
  });

  test('Verify from a row runs through the BackupService and refreshes the panel', async () => {
    const a = await api();
    const target = (await new Engine().list(backupsDir())).records.find((r) => r.manifest.kind === 'migration')!;
    assert.ok(target);
    const mark = rec.mark();
    const from = posted.length;
    await a.panel.handle({ kind: 'command', method: 'backups/backup/act', params: { db: dbPath(), id: target.id, action: 'verify' } });
    // Only the verification: a catch-up of the daily schedule may settle meanwhile.
    const settled = rec.since(mark, { op: 'verify' });
    assert.equal(settled.length, 1, JSON.stringify(rec.since(mark)));
    assert.deepEqual([settled[0].route, settled[0].outcome, settled[0].backup], ['panel', 'ok', target.id]);
    assert.ok((await new Engine().list(backupsDir())).records.find((r) => r.id === target.id)?.state.lastVerify, 'the verification is recorded on the backup');
    await until('a state notification after the verification', () => posted.slice(from).find((m) => m.kind === 'notification' && m.method === 'panel/state/didChange'));
  });

  test('Back Up Now from the panel makes a backup through the BackupService; progress, tree and state show it', async () => {
    const a = await api();
    const before = backupIds(backupsDir()).filter((id) => id.endsWith('-manual'));
    const from = posted.length;
    const mark = rec.mark();
    await a.panel.handle({ kind: 'command', method: 'backups/database/backUp', params: { db: dbPath() } });
    const made = backupIds(backupsDir()).filter((id) => id.endsWith('-manual') && !before.includes(id));
    assert.equal(made.length, 1);
    const settled = rec.since(mark, { op: 'backup', route: 'panel' });
    assert.equal(settled.length, 1, JSON.stringify(rec.since(mark)));
    const [s] = settled;
    assert.deepEqual([s.kind, s.outcome, s.backup], ['manual', 'ok', made[0]]);
    assert.equal(rec.since(mark, { backup: s.backup }).length, 1, 'no other route settled the same backup');
    const progress = posted.slice(from).filter((m) => m.kind === 'notification' && m.method === 'panel/progress/didChange').map((m) => m.params as ProgressState);
    assert.ok(progress.some((p) => p.running.some((o) => /backing up app\.db/.test(o.title))), 'a running backup was shown');
    await until('the result', () => [...posted].reverse().find((m) => m.kind === 'notification' && m.method === 'panel/progress/didChange' && (m.params as ProgressState).last?.result?.ok === true));
    await until('the new backup in the panel', () =>
      [...posted].reverse().find((m) => m.kind === 'notification' && m.method === 'panel/state/didChange' && (m.params as PanelState).databases[0]?.history.some((r) => r.id === s.backup)),
    );
    assert.ok(await treeRow(a, s.backup!), 'the tree shows the new backup');
    const log = await backupLogged(a, s.backup!);
    assert.equal(linesWith(log, ` as ${s.backup} (`), 1, 'one line about the backup');
    assert.ok(existsSync(backupsDir()));
  });
});

// Scheduled runs in the Settings and Statistics panel, inside a real VS Code: a backup the
// scheduler starts (not a command) shows its progress and result in the panel and is
// settled once by the BackupService (route `schedule`: the tree shows it, its log line is
// written once), and a scheduled backup that fails because its directory cannot be made
// shows as the panel's last failure although no backup log could record it. Runs after
// panel.test.ts (the database, its backups and the open panel are there); leaves the
// settings as it found them.
import assert from 'node:assert/strict';
import { copyFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import * as vscode from 'vscode';
import type { LifeboatApi } from '../../../src/extension/container';
import type { Node } from '../../../src/extension/tree';
import type { HostMessage, OperationView, PanelState, ProgressState } from '../../../webview/protocol';
import { backupIds, snapshotIds } from '../../fixtures/backupFiles';
import { sqlite } from '../../fixtures/sqlite';
import { backupLogged, linesWith, SettleRecorder } from './settled';

const EXTENSION_ID = 'lifeboat.lifeboat';
const ws = () => vscode.workspace.workspaceFolders![0].uri.fsPath;
const dbPath = () => path.join(ws(), 'app.db');
const backupsDir = () => path.join(ws(), 'backups');
const SCHEDULED = /^Lifeboat: (scheduled|catch-up) backup of app\.db$/;

async function api(): Promise<LifeboatApi> {
  const a = await vscode.extensions.getExtension<LifeboatApi>(EXTENSION_ID)!.activate();
  await a.ready;
  return a;
}

/** Polls `fn` until truthy; fails with `what` after `ms` (a deadline, not a speed check). */
async function until<T>(what: string, fn: () => T | Promise<T>, ms: number): Promise<NonNullable<T>> {
  const end = Date.now() + ms;
  for (;;) {
    const v = await fn();
    if (v) return v as NonNullable<T>;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

async function configure(values: Record<string, unknown>): Promise<void> {
  const cfg = vscode.workspace.getConfiguration('lifeboat');
  for (const [k, v] of Object.entries(values)) await cfg.update(k, v, vscode.ConfigurationTarget.Workspace);
}

/** True when the tree shows backup `id`. */
async function treeHas(a: LifeboatApi, id: string, node?: Node): Promise<boolean> {
  for (const k of (await a.tree.getChildren(node)) ?? []) {
    if ((k.type === 'backup' && k.record.id === id) || (await treeHas(a, id, k))) return true;
  }
  return false;
}

/** The ids of the scheduled backups on disk, of either format. */
const scheduledZips = () => backupIds(backupsDir()).filter((id) => id.endsWith('-scheduled'));

suite('Lifeboat: scheduled runs in the panel', () => {
  const posted: HostMessage[] = [];
  let sub: vscode.Disposable | undefined;
  let rec: SettleRecorder;
  const progressFrom = (from: number) =>
    posted
      .slice(from)
      .filter((m) => m.kind === 'notification' && m.method === 'panel/progress/didChange')
      .map((m) => m.params as ProgressState);
  /** The largest operation id posted so far; ids increase, so a larger one is of a run that began after now. */
  const newestOpId = () => Math.max(0, ...progressFrom(0).flatMap((p) => [...p.running.map((o) => o.id), p.last?.id ?? 0]));
  const statesFrom = (from: number) =>
    posted
      .slice(from)
      .filter((m) => m.kind === 'notification' && m.method === 'panel/state/didChange')
      .map((m) => m.params as PanelState);

  const dbCopy = path.join(os.tmpdir(), `app.db.before-panel-progress-${process.pid}`);

  suiteSetup(async () => {
    const a = await api();
    copyFileSync(dbPath(), dbCopy);
    sub = a.panel.onDidPost((m) => posted.push(m));
    rec = new SettleRecorder(a);
    await configure({ databases: ['app.db'] });
    await vscode.commands.executeCommand('lifeboat.openPanel');
    // As the webview app does when it (re)loads: from now on the host posts to it.
    await a.panel.handle({ kind: 'command', method: 'panel/app/ready' });
    await until('a state notification', () => statesFrom(0).length > 0, 30_000);
  });

  suiteTeardown(async () => {
    sub?.dispose();
    rec.dispose();
    await configure({ 'schedule.cron': undefined, 'schedule.skipUnchanged': undefined, directory: undefined });
    copyFileSync(dbCopy, dbPath());
    rmSync(dbCopy, { force: true });
  });

  test('a backup the scheduler runs shows its progress and result in the panel', async function () {
    // Every minute: the current minute's slot is due unless a scheduled backup was made in it,
    // in which case the next minute's is; the settings change wakes the scheduler at once.
    this.timeout(150_000);
    const a = await api();
    // A change since the newest backup: format v2 (the default) repeats an unchanged
    // database as a new manifest over the same pages, with no snapshot and no engine phase.
    sqlite(dbPath(), 'CREATE TABLE IF NOT EXISTS panel_progress_probe(x INTEGER); INSERT INTO panel_progress_probe VALUES (1);');
    const before = scheduledZips().length;
    const from = posted.length;
    const oldId = newestOpId();
    const mark = rec.mark();
    await configure({ 'schedule.cron': '* * * * *', 'schedule.skipUnchanged': false });
    const last = await until(
      'the scheduled backup\'s result in the panel',
      () => progressFrom(from).find((p) => p.last && p.last.id > oldId && SCHEDULED.test(p.last.title))?.last,
      120_000,
    );
    assert.equal(last.result?.ok, true, JSON.stringify(last));
    assert.match(last.result!.message, /^backed up app\.db \(app-.*\), verified$/);
    const running = progressFrom(from).flatMap((p) => p.running).filter((o: OperationView) => SCHEDULED.test(o.title));
    assert.ok(running.length > 0, 'the running scheduled backup was shown');
    // The host samples progress a few times a second, so which phase shows depends on speed
    // (the unit test checks every phase and its bytes); any engine phase shows it flowed.
    assert.ok(running.some((o) => o.phase !== 'starting'), `the engine's progress was shown: ${JSON.stringify(running.map((o) => [o.phase, o.done, o.total]))}`);
    assert.ok(scheduledZips().length > before, 'the scheduled backup is on disk');
    // The scheduler's run was settled by the BackupService, once.
    const id = /\((app-[^)]*)\)/.exec(last.result!.message)![1];
    const s = await until('the scheduled backup settled', () => rec.since(mark, { backup: id }).find((e) => e.route === 'schedule'), 30_000);
    assert.deepEqual([s.op, s.kind, s.outcome, s.db], ['backup', 'scheduled', 'ok', dbPath()]);
    assert.ok(scheduledZips().includes(id));
    assert.ok(snapshotIds(backupsDir()).includes(id), 'a v2 snapshot, the default');
    const log = await backupLogged(a, id);
    assert.equal(linesWith(log, ` as ${id} (`), 1, 'one line about the backup');
    assert.equal(rec.since(mark, { backup: id }).length, 1, 'settled once');
    await until('the scheduled backup in the tree', () => treeHas(a, id), 30_000);
  });

  test('a scheduled backup into a directory that cannot be made is the panel\'s last failure', async function () {
    this.timeout(150_000);
    const a = await api();
    const from = posted.length;
    const oldId = newestOpId();
    const mark = rec.mark();
    // README.md is a file, so no directory can be made under it, and no backup log either.
    await configure({ directory: 'README.md/backups' });
    const state = await until(
      'the failure as the panel\'s last failure',
      () => statesFrom(from).find((s) => s.databases[0]?.backupDir.endsWith(path.join('README.md', 'backups')) && s.databases[0].stats.lastFailure),
      60_000,
    );
    const db = state.databases[0];
    assert.equal(db.id, dbPath());
    assert.match(db.stats.lastFailure!.reason, /README\.md/);
    assert.ok(Date.parse(db.stats.lastFailure!.time) > Date.now() - 10 * 60_000, 'the failure is from this session');
    assert.equal(db.history.length, 0, 'no backups are listed from the unusable directory');
    const failed = await until(
      'the failed scheduled backup\'s result in the panel',
      () => progressFrom(from).find((p) => p.last && p.last.id > oldId && SCHEDULED.test(p.last.title) && p.last.result?.ok === false)?.last,
      30_000,
    );
    assert.match(failed.result!.message, /README\.md/);
    assert.equal((await a.status()).background, 'error', 'the status bar shows the failure');
    const settled = await until('the failure settled', () => rec.since(mark, { route: 'schedule', op: 'backup', outcome: 'failed' })[0], 30_000);
    assert.equal(settled.db, dbPath());
    assert.match(settled.message, /^Lifeboat: the scheduled backup of app\.db failed: .*README\.md/);
  });
});

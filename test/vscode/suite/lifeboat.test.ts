// Lifeboat inside a real VS Code (code-server's extension host): activation, Back Up Now,
// the tiers, the status bar, a failing backup, the task hook, the shutdown backup and
// re-scheduling. Every route that backs up is checked to go through the BackupService
// once: one onDidSettle event of op `backup` (the scheduler's weekly restore test may
// settle at any time, so only backups are counted), the new backup in the tree, its log
// line once. Runs after activation.test.ts; each suite leaves the workspace as the next
// one expects.
import assert from 'node:assert/strict';
import { copyFileSync, existsSync, mkdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import os from 'node:os';
import path from 'node:path';
import * as vscode from 'vscode';
import type { LifeboatApi } from '../../../src/extension/container';
import type { Node } from '../../../src/extension/tree';
import { backupIds, snapshotIds, snapshotPath } from '../../fixtures/backupFiles';
import { seedBackups } from '../../fixtures/seedBackups';
import { sqlite } from '../../fixtures/sqlite';
import { DEFAULT_SETTINGS } from '../../../src/core/config';
import { backupLogged, channelText, linesWith, SettleRecorder, until } from './settled';

const EXTENSION_ID = 'lifeboat.lifeboat';

function ws(): string {
  return vscode.workspace.workspaceFolders![0].uri.fsPath;
}

async function api(): Promise<LifeboatApi> {
  const ext = vscode.extensions.getExtension<LifeboatApi>(EXTENSION_ID)!;
  const a = await ext.activate();
  await a.ready;
  return a;
}

let recorder: SettleRecorder | undefined;
/** One recorder of the extension's onDidSettle events for this file's tests. */
async function settles(): Promise<SettleRecorder> {
  return (recorder ??= new SettleRecorder(await api()));
}

interface Row {
  label: string;
  description: string;
  contextValue?: string;
  node: Node;
  children: Row[];
}

async function readTree(a: LifeboatApi, node?: Node): Promise<Row[]> {
  const kids = await a.tree.getChildren(node);
  const out: Row[] = [];
  for (const k of kids ?? []) {
    const item = a.tree.getTreeItem(k);
    const label = typeof item.label === 'string' ? item.label : (item.label?.label ?? '');
    out.push({ label, description: String(item.description ?? ''), contextValue: item.contextValue, node: k, children: await readTree(a, k) });
  }
  return out;
}

async function configure(values: Record<string, unknown>): Promise<void> {
  const cfg = vscode.workspace.getConfiguration('lifeboat');
  for (const [k, v] of Object.entries(values)) await cfg.update(k, v, vscode.ConfigurationTarget.Workspace);
}

/** The backup rows of the tree (any tier), with their archive ids. */
async function backupRows(a: LifeboatApi): Promise<{ tier: string; id: string; row: Row }[]> {
  const out: { tier: string; id: string; row: Row }[] = [];
  for (const db of await readTree(a)) {
    for (const tier of db.children) {
      for (const row of tier.children) if (row.node.type === 'backup') out.push({ tier: tier.label, id: row.node.record.id, row });
    }
  }
  return out;
}

/** The ids of the backups in backups/, of either format (format v2 is the default). */
function onDisk(): string[] {
  return backupIds(path.join(ws(), 'backups'));
}

suite('Lifeboat: activation and Back Up Now', () => {
  test('activates and shows nothing before a database is configured', async () => {
    const a = await api();
    // Printed, not asserted: a busy machine makes any bound on it flaky.
    console.log(`activate() took ${a.activationMs.toFixed(2)} ms`);
    // Loading the bundle again (module evaluation only) is the rest of the activation cost.
    const ext = vscode.extensions.getExtension(EXTENSION_ID)!;
    const bundle = path.join(ext.extensionPath, 'dist', 'extension.js');
    const req = createRequire(bundle);
    delete req.cache[bundle];
    const t0 = performance.now();
    req(bundle);
    const loadMs = performance.now() - t0;
    console.log(`loading dist/extension.js took ${loadMs.toFixed(2)} ms`);
    const states = await a.folders();
    assert.equal(states.length, 1);
    assert.deepEqual(states[0].databases, []);
    assert.deepEqual(await readTree(a), [], 'the tree is empty, so the welcome content shows');
    assert.equal((await a.status()).visible, false);
    assert.equal(existsSync(path.join(ws(), 'backups')), false, 'nothing ran without a database');
  });

  test('a configured database appears in the tree and the status bar', async () => {
    const a = await api();
    await configure({ databases: ['app.db'], 'schedule.daily': false });
    await until('the database row', async () => (await readTree(a)).some((r) => r.label === 'app.db'));
    const [db] = await readTree(a);
    assert.equal(db.contextValue, 'lifeboat.database');
    assert.equal(db.children[0].label, 'No backups yet');
    const st = await until('the status bar', async () => ((await a.status()).visible ? a.status() : undefined));
    assert.equal(st.text, '$(database) no backup');
  });

  test('Back Up Now makes a verified backup (format v2, the default) and a row under Manual', async () => {
    const a = await api();
    const rec = await settles();
    const mark = rec.mark();
    const mirrored = linesWith(channelText(a), '[backup log] backup.ok');
    await vscode.commands.executeCommand('lifeboat.backupNow');
    const made = onDisk();
    assert.equal(made.length, 1, `backups: ${made.join(', ')}`);
    assert.match(made[0], /^app-\d{8}T\d{9}Z-manual$/);
    assert.deepEqual(snapshotIds(path.join(ws(), 'backups')), made, 'a v2 snapshot');
    // The command ran through the BackupService, whose after-effects ran once.
    const settled = rec.since(mark, { op: 'backup' });
    assert.equal(settled.length, 1, JSON.stringify(rec.since(mark)));
    const [s] = settled;
    assert.deepEqual([s.op, s.route, s.kind, s.outcome, s.backup], ['backup', 'command', 'manual', 'ok', made[0]]);
    assert.equal(s.message, 'Lifeboat: backed up app.db (manual, verified).');
    const log = await backupLogged(a, s.backup!);
    assert.equal(linesWith(log, ` as ${s.backup} (`), 1, 'one line about the backup');
    assert.equal(linesWith(log, '[backup log] backup.ok') - mirrored, 1, 'the backup log\'s backup.ok line is mirrored once');
    const tiers = await until('the Manual tier', async () => {
      const [db] = await readTree(a);
      return db?.children.some((t) => t.label === 'Manual') ? db.children : undefined;
    });
    const manual = tiers.find((t) => t.label === 'Manual')!;
    assert.equal(manual.children.length, 1);
    const row = manual.children[0];
    assert.equal(row.node.type === 'backup' && row.node.record.id, s.backup);
    assert.equal(row.node.type === 'backup' && row.node.record.format, 'repository');
    assert.match(row.description, /^[\d.]+ (B|KB|MB) · verified · manual$/);
    assert.equal(row.contextValue, 'lifeboat.backup.manual.verified');
    const item = a.tree.getTreeItem(row.node);
    const tip = (item.tooltip as vscode.MarkdownString).value;
    assert.match(tip, /integrity_check passed/);
    assert.match(tip, /Kept because:\*\* manual/);
    assert.match(tip, /Last restore test:\*\* never/);
    const st = await a.status();
    assert.equal(st.text, '$(database) just now');
    assert.equal(st.background, 'none');
  });
});

suite('Lifeboat: tiers', () => {
  test('dated backups of several kinds land in Daily, Weekly, Monthly (each under the shortest-lived rule that keeps it), Manual and Migrations', async () => {
    const a = await api();
    // daily 3 and weekly 2, so that each automatic tier holds one of the dated backups: with
    // daily 7 every one of them would be among the 7 newest days, and shown under Daily.
    await configure({ 'retention.daily': 3, 'retention.weekly': 2, 'retention.monthly': 12, 'retention.keepWithin': '' });
    const db = path.join(ws(), 'app.db');
    const dir = path.join(ws(), 'backups');
    // Fixed past dates (local time): Wed 12 Mar is the newest (daily, also its week's and
    // March's: shown under Daily, the shortest-lived rule that keeps it), Tue 11 and Mon 10
    // Mar are daily only, Mon 3 Mar is the newest of its ISO week (weekly #2), 15 Jan is
    // January's newest (monthly #2); 5 Mar is a migration backup.
    const at = (m: number, d: number) => new Date(2025, m - 1, d, 2, 0, 0);
    await seedBackups(db, dir, [
      { at: at(1, 15), kind: 'scheduled' },
      { at: at(3, 3), kind: 'scheduled' },
      { at: at(3, 5), kind: 'migration' },
      { at: at(3, 10), kind: 'scheduled' },
      { at: at(3, 11), kind: 'shutdown' },
      { at: at(3, 12), kind: 'scheduled' },
    ], { ...DEFAULT_SETTINGS, compressionLevel: 1 });
    await a.refresh();
    const tiers = await until('five tiers', async () => {
      const [row] = await readTree(a);
      return row && row.children.length === 5 ? row.children : undefined;
    });
    assert.deepEqual(
      tiers.map((t) => `${t.label} ${t.description}`),
      ['Daily 3', 'Weekly 1', 'Monthly 1', 'Manual 1', 'Migrations 1'],
    );
    const day = (t: string) => tiers.find((x) => x.label === t)!.children.map((r) => new Date(Date.parse((r.node as { record: { manifest: { created: string } } }).record.manifest.created)).getDate());
    assert.deepEqual(day('Daily'), [12, 11, 10]);
    assert.deepEqual(day('Weekly'), [3]);
    assert.deepEqual(day('Monthly'), [15]);
    assert.deepEqual(day('Migrations'), [5]);
    const monthly = tiers.find((x) => x.label === 'Monthly')!.children[0];
    assert.match((a.tree.getTreeItem(monthly.node).tooltip as vscode.MarkdownString).value, /monthly \\#2/);
    // The newest keeps every reason in its tooltip.
    const newest = tiers.find((x) => x.label === 'Daily')!.children[0];
    assert.match((a.tree.getTreeItem(newest.node).tooltip as vscode.MarkdownString).value, /daily \\#1; weekly \\#1; monthly \\#1/);
  });
});

suite('Lifeboat: failures', () => {
  test('a backup into an unwritable directory fails, leaves nothing, and turns the status bar red', async () => {
    const a = await api();
    // README.md is a file, so no directory can be made under it (root ignores permissions).
    await configure({ directory: 'README.md/backups' });
    await a.refresh();
    const rec = await settles();
    const mark = rec.mark();
    await vscode.commands.executeCommand('lifeboat.backupNow');
    const settled = rec.since(mark, { op: 'backup' });
    assert.equal(settled.length, 1, JSON.stringify(rec.since(mark)));
    assert.deepEqual([settled[0].op, settled[0].route, settled[0].kind, settled[0].outcome], ['backup', 'command', 'manual', 'failed']);
    assert.match(settled[0].message, /^Lifeboat: the manual backup of app\.db failed: .*README\.md/);
    const st = await until('the error colour', async () => {
      const s = await a.status();
      return s.background === 'error' ? s : undefined;
    });
    assert.match(st.tooltip, /FAILED/);
    assert.equal(statSync(path.join(ws(), 'README.md')).isFile(), true);
    await configure({ directory: undefined });
    await a.refresh();
  });
});

suite('Lifeboat: migration task hook', () => {
  const tasksFile = () => path.join(ws(), '.vscode', 'tasks.json');
  const marker = () => path.join(ws(), 'migrated.txt');

  async function runAndWait(label: string, endOf: string): Promise<number | undefined> {
    const task = await until(`task ${label}`, async () => (await vscode.tasks.fetchTasks()).find((t) => t.name === label));
    let sub: vscode.Disposable | undefined;
    const ended = new Promise<number | undefined>((resolve) => {
      sub = vscode.tasks.onDidEndTaskProcess((e) => {
        if (e.execution.task.name === endOf) resolve(e.exitCode);
      });
      // VS Code fires a task's process end (with its exit code) before the task's end, so
      // a task without a process (or whose code is unknown) resolves here, after it.
      const sub2 = vscode.tasks.onDidEndTask((e) => {
        if (e.execution.task.name === endOf) resolve(undefined);
      });
      const prev = sub;
      sub = { dispose: () => (prev!.dispose(), sub2.dispose()) };
    });
    await vscode.tasks.executeTask(task);
    const code = await Promise.race([ended, new Promise<'timeout'>((r) => setTimeout(() => r('timeout'), 60_000))]);
    sub?.dispose();
    if (code === 'timeout') throw new Error(`task ${endOf} did not end`);
    return code;
  }

  /** Runs a trivial shell task of the test's own and resolves when it has ended. */
  async function runProbeTask(): Promise<void> {
    const name = 'lifeboat-test-probe';
    const task = new vscode.Task({ type: 'shell' }, vscode.workspace.workspaceFolders![0], name, 'lifeboat-test', new vscode.ShellExecution('exit 0'), []);
    let sub: vscode.Disposable | undefined;
    const ended = new Promise<void>((resolve) => {
      sub = vscode.tasks.onDidEndTask((e) => {
        if (e.execution.task.name === name) resolve();
      });
    });
    try {
      await vscode.tasks.executeTask(task);
      await Promise.race([ended, new Promise<never>((_, reject) => setTimeout(() => reject(new Error(`task ${name} did not end`)), 60_000))]);
    } finally {
      sub?.dispose();
    }
  }

  test('Add Backup Step edits tasks.json, and the dependsOn chain backs up first', async function () {
    this.timeout(90_000);
    const a = await api();
    mkdirSync(path.dirname(tasksFile()), { recursive: true });
    writeFileSync(
      tasksFile(),
      `{
  // the app's tasks
  "version": "2.0.0",
  "tasks": [
    { "label": "migrate", "type": "shell", "command": "echo migrated > migrated.txt", "problemMatcher": [] }
  ]
}
`,
    );
    await vscode.commands.executeCommand('lifeboat.addBackupStep', 'migrate');
    const text = await until('the edited tasks.json', () => {
      const t = readFileSync(tasksFile(), 'utf8');
      return t.includes('lifeboat: Back up app.db') ? t : undefined;
    });
    assert.match(text, /\/\/ the app's tasks/);
    assert.match(text, /"dependsOrder": "sequence"/);
    // The task system reads tasks.json through the configuration, which follows the file
    // on its own time (late on a busy machine): until it has the edit, fetchTasks() still
    // returns migrate without its backup step.
    await until('the tasks configuration with the backup step', () =>
      (vscode.workspace.getConfiguration('tasks', vscode.workspace.workspaceFolders![0].uri).get<{ label?: string; dependsOn?: unknown }[]>('tasks') ?? []).find(
        (t) => t.label === 'migrate' && JSON.stringify(t.dependsOn ?? null).includes('lifeboat: Back up app.db'),
      ),
    );
    const before = new Set(onDisk());
    rmSync(marker(), { force: true });
    // The failure suite's Back Up Now left the status bar red; the task's backup clears it.
    assert.equal((await a.status()).background, 'error', 'precondition: the failed Back Up Now is still shown');
    const rec = await settles();
    const mark = rec.mark();
    await runAndWait('migrate', 'migrate');
    await until('the migration output', () => existsSync(marker()));
    const added = onDisk().filter((z) => !before.has(z));
    assert.equal(added.length, 1, `new backups: ${added.join(', ')}`);
    assert.match(added[0], /-migration$/);
    assert.ok(statSync(snapshotPath(path.join(ws(), 'backups'), added[0])).mtimeMs <= statSync(marker()).mtimeMs, 'the backup came first');
    assert.equal(a.migrationOffers.length, 0, 'no offer for a task that already backs up');
    // The task's backup ran through the BackupService, whose after-effects ran once.
    const settled = rec.since(mark, { op: 'backup' });
    assert.equal(settled.length, 1, JSON.stringify(rec.since(mark)));
    const [s] = settled;
    assert.deepEqual([s.op, s.route, s.kind, s.outcome, s.backup], ['backup', 'task', 'migration', 'ok', added[0]]);
    const log = await backupLogged(a, s.backup!);
    assert.equal(linesWith(log, ` as ${s.backup} (`), 1, 'one line about the backup');
    const row = await until('the task\'s backup in the tree', async () => (await backupRows(a)).find((r) => r.id === s.backup));
    assert.equal(row.tier, 'Migrations');
    assert.equal((await a.status()).background, 'none', 'the status bar heard of the task\'s backup');
  });

  test('a failing backup stops the migration', async function () {
    this.timeout(90_000);
    await api();
    rmSync(marker(), { force: true });
    await configure({ directory: 'README.md/backups' });
    await (await api()).refresh();
    let started = false;
    let endedMigrate = false;
    const subStart = vscode.tasks.onDidStartTask((e) => {
      if (e.execution.task.name === 'migrate') started = true;
    });
    const subEnd = vscode.tasks.onDidEndTask((e) => {
      if (e.execution.task.name === 'migrate') endedMigrate = true;
    });
    const sub = { dispose: () => (subStart.dispose(), subEnd.dispose()) };
    const before = onDisk().length;
    const rec = await settles();
    const mark = rec.mark();
    const code = await runAndWait('migrate', 'Back up app.db');
    assert.notEqual(code, 0, 'the backup task reported success');
    const settled = rec.since(mark, { op: 'backup' });
    assert.equal(settled.length, 1, JSON.stringify(rec.since(mark)));
    assert.deepEqual([settled[0].op, settled[0].route, settled[0].kind, settled[0].outcome], ['backup', 'task', 'migration', 'failed']);
    assert.match(settled[0].message, /README\.md.*The migration was stopped\.$/);
    assert.equal((await (await api()).status()).background, 'error', 'the status bar shows the failed backup');
    // A chained task that (wrongly) starts does so as its dependency ends; a task run after
    // that shows the task system has moved on. If migrate did start, wait for its end.
    await runProbeTask();
    if (started) await until('the migrate task to end', () => endedMigrate);
    sub.dispose();
    assert.equal(onDisk().length, before, 'no backup was written');
    assert.equal(existsSync(marker()), false, 'the migration ran after a failed backup');
    console.log(`migrate start event after the failed backup: ${started}`);
    await configure({ directory: undefined });
    await (await api()).refresh();
  });

  test('a migration task without a backup step is noticed', async () => {
    const a = await api();
    writeFileSync(
      tasksFile(),
      `{
  "version": "2.0.0",
  "tasks": [
    { "label": "migrate", "type": "shell", "command": "echo migrated > migrated.txt", "dependsOn": ["lifeboat: Back up app.db"], "dependsOrder": "sequence", "problemMatcher": [] },
    { "label": "db up", "type": "shell", "command": "echo prisma migrate deploy", "problemMatcher": [] }
  ]
}
`,
    );
    await runAndWait('db up', 'db up');
    await until('the offer', () => a.migrationOffers.find((o) => o.task === 'db up'));
  });
});

suite('Lifeboat: the shutdown backup', () => {
  const saved = () => path.join(os.tmpdir(), `app.db.before-shutdown-test-${process.pid}`);

  suiteSetup(() => copyFileSync(path.join(ws(), 'app.db'), saved()));
  suiteTeardown(() => {
    copyFileSync(saved(), path.join(ws(), 'app.db'));
    rmSync(saved(), { force: true });
  });

  test('a changed database gets one shutdown backup through the service; an unchanged one none', async function () {
    this.timeout(60_000);
    const a = await api();
    const rec = await settles();
    const shutdownZips = () => onDisk().filter((z) => z.endsWith('-shutdown'));
    const before = shutdownZips();
    // A write the newest verified backup (the task's) has not seen.
    sqlite(path.join(ws(), 'app.db'), 'CREATE TABLE shutdown_probe(x INTEGER); INSERT INTO shutdown_probe VALUES (1);');
    let mark = rec.mark();
    await a.shutdownBackup();
    let settled = rec.since(mark, { op: 'backup' });
    assert.equal(settled.length, 1, JSON.stringify(rec.since(mark)));
    const [s] = settled;
    assert.deepEqual([s.op, s.route, s.kind, s.outcome], ['backup', 'shutdown', 'shutdown', 'ok']);
    const added = shutdownZips().filter((z) => !before.includes(z));
    assert.deepEqual(added, [s.backup]);
    assert.ok(existsSync(snapshotPath(path.join(ws(), 'backups'), s.backup!)), 'a v2 snapshot');
    const log = await backupLogged(a, s.backup!);
    assert.equal(linesWith(log, ` as ${s.backup} (`), 1, 'one line about the backup');
    await until('the shutdown backup in the tree', async () => (await backupRows(a)).some((r) => r.id === s.backup));

    mark = rec.mark();
    await a.shutdownBackup();
    settled = rec.since(mark, { op: 'backup' });
    assert.equal(settled.length, 1, JSON.stringify(rec.since(mark)));
    assert.deepEqual([settled[0].route, settled[0].kind, settled[0].outcome], ['shutdown', 'shutdown', 'unchanged']);
    assert.deepEqual(shutdownZips(), [...before, ...added].sort(), 'no second shutdown backup');
  });
});

suite('Lifeboat: settings', () => {
  test('a changed backup time re-schedules; an invalid one keeps the last valid value', async () => {
    const a = await api();
    await configure({ 'schedule.daily': true, 'schedule.time': '03:30' });
    const first = await until('a schedule at 03:30', () => a.schedules().find((s) => s.next && new Date(s.next).getHours() === 3 && new Date(s.next).getMinutes() === 30));
    await configure({ 'schedule.time': '21:15' });
    const second = await until('a schedule at 21:15', () => a.schedules().find((s) => s.next && new Date(s.next).getHours() === 21 && new Date(s.next).getMinutes() === 15));
    assert.ok(second.updates > first.updates);
    await configure({ 'schedule.time': '25:00' });
    await a.refresh();
    const [state] = await a.folders();
    assert.equal(state.settings.backupTime, '21:15', 'the last valid value stays');
    await configure({ 'schedule.time': undefined, 'schedule.daily': false });
  });
});

suiteTeardown(async () => {
  // The UI checks start from the fixture as it was: no settings, no backups. The settings
  // go first, and the backups only once the extension has seen that no database is
  // configured any more (otherwise its shutdown backup would write into backups/ again).
  rmSync(path.join(ws(), '.vscode'), { recursive: true, force: true });
  const a = await api();
  for (let i = 0; i < 50; i++) {
    await a.refresh();
    if ((await a.folders()).every((s) => s.databases.length === 0)) break;
    await new Promise((r) => setTimeout(r, 100));
  }
  for (const p of ['backups', 'migrated.txt']) rmSync(path.join(ws(), p), { recursive: true, force: true });
});

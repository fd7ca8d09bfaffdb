// One backup directory that holds both formats of one database, inside a real VS Code:
// format v1 zips (`<dir>/<id>.zip`) and format v2 snapshots (`<dir>/snapshots/<id>.json`
// over `<dir>/packs/`), as a folder looks after `lifeboat.format` went from "zip" to the
// default. The tree lists both under their tiers, the panel's history shows both, a v2
// backup restores (its image rebuilt from packs) and a row's Verify rebuilds one of each,
// and the rotation after Back Up Now deletes across both formats (then prune keeps exactly
// the packs the survivors use). Runs after lifeboat.test.ts and before panel.test.ts, in a
// directory of its own; leaves the settings, app.db and backups/ as it found them.
//
// Restore runs through the engine here: the extension asks before restoring in a modal
// dialog, which VS Code refuses to show to an extension under test (a UI check,
// test/e2e/lifeboat.ui.ts, restores a v2 backup from a row's context menu).
import assert from 'node:assert/strict';
import { copyFileSync, existsSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import * as vscode from 'vscode';
import { DEFAULT_SETTINGS } from '../../../src/core/config';
import { Engine } from '../../../src/core/engine';
import type { BackupKind, BackupRecord } from '../../../src/core/model';
import type { LifeboatApi } from '../../../src/extension/container';
import type { Node } from '../../../src/extension/tree';
import type { HostMessage, PanelState } from '../../../webview/protocol';
import { backupIds, packFiles, snapshotIds, snapshotPath, zipIds, zipPath } from '../../fixtures/backupFiles';
import { seedBackups } from '../../fixtures/seedBackups';
import { dumpHash, sqlite } from '../../fixtures/sqlite';
import { SettleRecorder, until } from './settled';

const EXTENSION_ID = 'lifeboat.lifeboat';
/** `lifeboat.directory` of this file, relative to the workspace folder. */
const DIR = 'backups-mixed';
/** Every setting this file changes; each is put back as it was. */
const KEYS = [
  'databases',
  'directory',
  'format',
  'schedule.daily',
  'retention.daily',
  'retention.weekly',
  'retention.monthly',
  'retention.keepWithin',
  'retention.keepEventBackups',
] as const;

const ws = () => vscode.workspace.workspaceFolders![0].uri.fsPath;
const dbPath = () => path.join(ws(), 'app.db');
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

interface Row {
  label: string;
  description: string;
  node: Node;
  children: Row[];
}

async function readTree(a: LifeboatApi, node?: Node): Promise<Row[]> {
  const out: Row[] = [];
  for (const k of (await a.tree.getChildren(node)) ?? []) {
    const item = a.tree.getTreeItem(k);
    const label = typeof item.label === 'string' ? item.label : (item.label?.label ?? '');
    out.push({ label, description: String(item.description ?? ''), node: k, children: await readTree(a, k) });
  }
  return out;
}

/** The records behind the tree's backup rows, by tier label. */
async function tiersOf(a: LifeboatApi): Promise<Map<string, BackupRecord[]>> {
  const out = new Map<string, BackupRecord[]>();
  const [db] = await readTree(a);
  for (const tier of db?.children ?? []) {
    const records = tier.children.flatMap((r) => (r.node.type === 'backup' ? [r.node.record] : []));
    if (records.length) out.set(tier.label, records);
  }
  return out;
}

/** The file that makes `r` visible, where its format keeps it. */
function fileOf(r: BackupRecord): string {
  return r.format === 'zip' ? zipPath(backupsDir(), r.id) : snapshotPath(backupsDir(), r.id);
}

/** Local 02:00 of a day in 2025. */
const at = (m: number, d: number) => new Date(2025, m - 1, d, 2, 0, 0);

suite('Lifeboat: v1 zips and v2 snapshots in one backup directory', () => {
  const saved: Record<string, unknown> = {};
  const dbCopy = path.join(os.tmpdir(), `app.db.before-mixed-formats-${process.pid}`);
  const posted: HostMessage[] = [];
  let sub: vscode.Disposable | undefined;
  let rec: SettleRecorder;
  /** The seeded backups, by their local day in March (January's: 115). */
  const seeded = new Map<number, BackupRecord>();
  /** app.db's content when the v2 backup of 11 March was taken. */
  let contentOf11 = '';

  suiteSetup(async function () {
    this.timeout(120_000);
    const a = await api();
    copyFileSync(dbPath(), dbCopy);
    const cfg = vscode.workspace.getConfiguration('lifeboat');
    for (const k of KEYS) saved[k] = cfg.inspect(k)?.workspaceValue;
    rec = new SettleRecorder(a);
    sub = a.panel.onDidPost((m) => posted.push(m));
    // lifeboat.format unset: the default in force, which is format v2.
    await configure({
      databases: ['app.db'],
      directory: DIR,
      format: undefined,
      'schedule.daily': false,
      // Each automatic tier holds one of the dated backups (with daily 7 all would be Daily).
      'retention.daily': 3,
      'retention.weekly': 2,
      'retention.monthly': 12,
      'retention.keepWithin': '',
      'retention.keepEventBackups': 10,
    });
    rmSync(backupsDir(), { recursive: true, force: true });
    sqlite(dbPath(), 'CREATE TABLE mixed_probe(x INTEGER); INSERT INTO mixed_probe VALUES (1);');
    // Fixed past dates (local time), each in the format a folder that switched formats
    // would have: Wed 12 Mar is the newest (daily, also its week's and March's: shown under
    // Daily), Tue 11 and Mon 10 Mar are daily only, Mon 3 Mar is the newest of its ISO week (weekly), 15 Jan is January's newest
    // (monthly); 5 Mar is a migration backup, 6 Mar a manual one. The database changes
    // between some of them, so v2 backups store new pages as well as share old ones.
    const seed = async (m: number, d: number, kind: BackupKind, format: 'zip' | 'repository') => {
      const [r] = await seedBackups(dbPath(), backupsDir(), [{ at: at(m, d), kind, format }], DEFAULT_SETTINGS);
      assert.equal(r.format, format);
      seeded.set(m === 1 ? 100 + d : d, r);
    };
    await seed(1, 15, 'scheduled', 'repository');
    await seed(3, 3, 'scheduled', 'zip');
    await seed(3, 5, 'migration', 'zip');
    await seed(3, 6, 'manual', 'repository');
    sqlite(dbPath(), 'INSERT INTO mixed_probe VALUES (2);');
    await seed(3, 10, 'scheduled', 'zip');
    sqlite(dbPath(), 'INSERT INTO mixed_probe VALUES (3);');
    contentOf11 = dumpHash(dbPath());
    await seed(3, 11, 'shutdown', 'repository');
    sqlite(dbPath(), 'UPDATE mixed_probe SET x = x * 10;');
    await seed(3, 12, 'scheduled', 'repository');
    await a.refresh();
  });

  suiteTeardown(async function () {
    this.timeout(60_000);
    sub?.dispose();
    rec?.dispose();
    await vscode.commands.executeCommand('workbench.action.closeAllEditors');
    await configure(saved);
    const a = await api();
    // The backups go once the extension has left this directory (nothing it runs then writes into it).
    await until('the extension to leave ' + DIR, async () => {
      await a.refresh();
      return (await a.folders()).every((s) => !s.dir.endsWith(DIR));
    });
    rmSync(backupsDir(), { recursive: true, force: true });
    copyFileSync(dbCopy, dbPath());
    for (const side of ['-wal', '-shm', '-journal']) rmSync(dbPath() + side, { force: true });
    rmSync(dbCopy, { force: true });
  });

  test('the default format in force is v2; the directory holds both formats', async () => {
    const a = await api();
    const [state] = await a.folders();
    assert.equal(state.settings.format, 'repository', 'package.json\'s default for lifeboat.format');
    assert.equal(state.dir, backupsDir());
    const zips = [...seeded.values()].filter((r) => r.format === 'zip').map((r) => r.id).sort();
    const snaps = [...seeded.values()].filter((r) => r.format === 'repository').map((r) => r.id).sort();
    assert.equal(zips.length, 3);
    assert.equal(snaps.length, 4);
    assert.deepEqual(zipIds(backupsDir()), zips);
    assert.deepEqual(snapshotIds(backupsDir()), snaps);
    assert.ok(packFiles(backupsDir()).length > 0, 'the v2 backups\' pages are in packs');
  });

  test('the tree lists both formats under their tiers', async () => {
    const a = await api();
    const tiers = await until('five tiers', async () => {
      const [row] = await readTree(a);
      return row && row.label === 'app.db' && row.children.length === 5 ? row.children : undefined;
    });
    assert.deepEqual(
      tiers.map((t) => `${t.label} ${t.description}`),
      ['Daily 3', 'Weekly 1', 'Monthly 1', 'Manual 1', 'Migrations 1'],
    );
    const byTier = await tiersOf(a);
    const shown = (t: string) => byTier.get(t)!.map((r) => `${new Date(Date.parse(r.manifest.created)).getDate()} ${r.format}`);
    assert.deepEqual(shown('Daily'), ['12 repository', '11 repository', '10 zip'], 'one tier holds both formats, newest first');
    assert.deepEqual(shown('Weekly'), ['3 zip']);
    assert.deepEqual(shown('Monthly'), ['15 repository']);
    assert.deepEqual(shown('Manual'), ['6 repository']);
    assert.deepEqual(shown('Migrations'), ['5 zip']);
    for (const [, records] of byTier) {
      for (const r of records) {
        assert.equal(r.path, fileOf(r), `${r.id}: the record names its own file`);
        assert.ok(existsSync(r.path), r.path);
      }
    }
    for (const t of tiers) for (const row of t.children) assert.match(row.description, / · verified · /, `${t.label}: ${row.label}`);
  });

  test('the panel\'s history shows both formats', async () => {
    const a = await api();
    await vscode.commands.executeCommand('lifeboat.openPanel');
    // As the webview app does when it (re)loads: from now on the host posts to it.
    await a.panel.handle({ kind: 'command', method: 'panel/app/ready' });
    const ids = [...seeded.values()].map((r) => r.id).sort();
    const state = await until('a state with the seven backups', () => {
      const m = [...posted].reverse().find((x) => x.kind === 'notification' && x.method === 'panel/state/didChange');
      const s = m && (m.params as PanelState);
      return s && s.databases[0]?.history.length === ids.length ? s : undefined;
    });
    const db = state.databases[0];
    assert.equal(db.id, dbPath());
    assert.deepEqual(db.history.map((r) => r.id).sort(), ids);
    assert.equal(db.stats.count, ids.length);
    assert.equal(db.stats.verifiedShare, 1);
    const tierOf = (d: number) => db.history.find((r) => r.id === seeded.get(d)!.id)!.tier;
    assert.equal(tierOf(10), tierOf(11), 'a zip and a snapshot in one tier');
    assert.equal(tierOf(5), 'migrations');
    for (const r of db.history) assert.ok(r.size > 0, `${r.id}: a size`);
  });

  test('Verify from a row rebuilds and checks a v2 backup and a v1 zip', async function () {
    this.timeout(60_000);
    const a = await api();
    for (const d of [11, 10]) {
      const target = seeded.get(d)!;
      const mark = rec.mark();
      await a.panel.handle({ kind: 'command', method: 'backups/backup/act', params: { db: dbPath(), id: target.id, action: 'verify' } });
      const settled = rec.since(mark, { op: 'verify' });
      assert.equal(settled.length, 1, JSON.stringify(rec.since(mark)));
      assert.deepEqual([settled[0].route, settled[0].outcome, settled[0].backup], ['panel', 'ok', target.id], `${target.format}: ${settled[0].message}`);
      const listed = (await new Engine().list(backupsDir())).records.find((r) => r.id === target.id);
      assert.equal(listed?.state.lastVerify?.status, 'ok', `${target.format}: the verification is recorded on the backup`);
    }
  });

  test('a v2 backup restores over app.db; its pre-restore backup joins the directory', async function () {
    this.timeout(60_000);
    const a = await api();
    const target = seeded.get(11)!;
    assert.equal(target.format, 'repository');
    assert.notEqual(dumpHash(dbPath()), contentOf11, 'the database moved on since the backup');
    const [state] = await a.folders();
    const res = await new Engine().restore(target.path, { to: dbPath(), settings: state.settings, dir: state.dir });
    assert.equal(res.manifest.id, target.id);
    assert.equal(dumpHash(dbPath()), contentOf11, 'app.db holds what it held at the backup');
    assert.equal(sqlite(dbPath(), 'PRAGMA integrity_check;').trim(), 'ok');
    const pre = res.preRestore!;
    assert.ok(pre, 'a pre-restore backup was made');
    assert.equal(pre.format, 'repository', 'in the format in force');
    assert.equal(pre.path, snapshotPath(backupsDir(), pre.id));
    assert.ok(existsSync(pre.path));
    seeded.set(0, pre);
    await a.refresh();
    const byTier = await until('the pre-restore backup under Migrations', async () => {
      const t = await tiersOf(a);
      return t.get('Migrations')?.some((r) => r.id === pre.id) ? t : undefined;
    });
    assert.deepEqual(byTier.get('Migrations')!.map((r) => `${r.manifest.kind} ${r.format}`), ['pre-restore repository', 'migration zip']);
  });

  test('the rotation after Back Up Now deletes across both formats; prune keeps exactly the packs in use', async function () {
    this.timeout(120_000);
    const a = await api();
    // Three daily backups and one event backup: of the five automatic ones, 15 Jan (v2) and
    // 3 Mar (zip) go (two of five, within the guard against deleting more than half); of
    // the event backups the pre-restore one stays and the migration backup (zip) goes.
    await configure({ 'retention.daily': 3, 'retention.weekly': 0, 'retention.monthly': 0, 'retention.keepEventBackups': 1 });
    await until('the new retention in force', async () => {
      await a.refresh();
      const r = (await a.folders())[0].settings.retention;
      return r.daily === 3 && r.weekly === 0 && r.monthly === 0 && r.keepEventBackups === 1;
    });
    const removed = [seeded.get(115)!, seeded.get(3)!, seeded.get(5)!];
    assert.deepEqual(removed.map((r) => r.format), ['repository', 'zip', 'zip']);
    const mark = rec.mark();
    await vscode.commands.executeCommand('lifeboat.backupNow');
    const settled = rec.since(mark, { op: 'backup' });
    assert.equal(settled.length, 1, JSON.stringify(rec.since(mark)));
    assert.deepEqual([settled[0].route, settled[0].kind, settled[0].outcome], ['command', 'manual', 'ok'], settled[0].message);
    const made = settled[0].backup!;
    assert.ok(existsSync(snapshotPath(backupsDir(), made)), 'Back Up Now made a v2 snapshot');

    for (const r of removed) assert.equal(existsSync(fileOf(r)), false, `${r.format} ${r.id} was deleted`);
    const kept = [...seeded.values()].filter((r) => !removed.includes(r));
    for (const r of kept) assert.ok(existsSync(fileOf(r)), `${r.format} ${r.id} was kept`);
    const survivors = [...kept.map((r) => r.id), made].sort();
    assert.deepEqual(backupIds(backupsDir()), survivors);
    assert.deepEqual(zipIds(backupsDir()), [seeded.get(10)!.id], 'the zip that the daily rule keeps');

    const log = readFileSync(path.join(backupsDir(), '.lifeboat', 'log.jsonl'), 'utf8')
      .split('\n')
      .filter(Boolean)
      .map((l) => JSON.parse(l) as { op: string; backup?: string });
    assert.deepEqual(log.filter((e) => e.op === 'rotate.delete').map((e) => e.backup).sort(), removed.map((r) => r.id).sort());
    assert.deepEqual(log.filter((e) => e.op === 'rotate.refused'), []);

    // Every pack a surviving snapshot points at is there, and no other.
    const { records, broken } = await new Engine().list(backupsDir());
    assert.deepEqual(broken, []);
    const used = new Set(records.filter((r) => r.format === 'repository').flatMap((r) => r.manifest.repository!.packs.map((p) => path.basename(p))));
    assert.deepEqual(packFiles(backupsDir()), [...used].sort());
    for (const r of records) {
      const v = await new Engine().verifyArchive(r.path, (await a.folders())[0].settings);
      assert.ok(v.ok, `${r.format} ${r.id}: ${v.problems.join('; ')}`);
    }

    // The tree and the panel show exactly the survivors.
    await until('the tree without the deleted backups', async () => {
      const shown = [...(await tiersOf(a)).values()].flat().map((r) => r.id).sort();
      return JSON.stringify(shown) === JSON.stringify(survivors);
    });
    await until('the panel without the deleted backups', () => {
      const m = [...posted].reverse().find((x) => x.kind === 'notification' && x.method === 'panel/state/didChange');
      const ids = m ? (m.params as PanelState).databases[0]?.history.map((r) => r.id).sort() : undefined;
      return JSON.stringify(ids) === JSON.stringify(survivors);
    });
  });
});

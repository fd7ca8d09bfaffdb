/**
 * Crash tests of format v2 (the page repository) at every crash point (src/core/faults.ts):
 * a first backup, an incremental backup over a parent, and a rotation that deletes v2
 * backups and prunes their packs. The real CLI is run once with LIFEBOAT_CRASH_TRACE to
 * learn its points, then once per point k, each time from the same starting store, with
 * LIFEBOAT_CRASH_AT=k, which SIGKILLs it right before its k-th rename, unlink or fsync.
 * After each kill: nothing partial is visible (every manifest sealed, every pack whole), no
 * manifest references a missing pack, every listed backup verifies in full (every byte of
 * its packs, then the image through SQLite) and restores to its manifest's SHA-256, and a
 * rerun converges (it succeeds and leaves no temp file, lock, lease or unreferenced pack).
 * "Verifies in full" is BackupChecker's: the format's deep check of every listed backup
 * after every kill, and the engine's full verification and a restore of every backup whose
 * content (image, page map) was not seen before. The runs of different k are independent (each in its own
 * copy of the store), so a few run at once.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { cpSync, existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { loadSettings } from '../../src/cli/settings';
import { Catalog } from '../../src/core/catalog/catalog';
import type { Settings } from '../../src/core/config';
import { Engine } from '../../src/core/engine';
import { referencedPacks } from '../../src/core/format/repo/snapshotManifest';
import type { Manifest } from '../../src/core/model';
import { planRotation } from '../../src/core/retention/plan';
import { ensureBuilt, lifeboat } from '../fixtures/cli';
import {
  assertRepoSound,
  BackupChecker,
  inPool,
  leasesIn,
  manifestsIn,
  opCounts,
  packsIn,
  readTrace,
  runCli,
  snapshotOf,
  snapshotsIn,
  whereIs,
  type TracePoint,
} from '../fixtures/repoStore';
import { fixedClock } from '../fixtures/seedBackups';
import { makeDb, sqlite, tempDir } from '../fixtures/sqlite';

before(() => ensureBuilt());

/** Temp files, a lock, its drafts, leases: what a converged store holds none of. */
function assertNoLeftovers(dir: string, label: string): void {
  const meta = path.join(dir, '.lifeboat');
  assert.deepEqual(existsSync(path.join(meta, 'tmp')) ? readdirSync(path.join(meta, 'tmp')) : [], [], `${label}: temp files cleaned`);
  assert.equal(existsSync(path.join(meta, 'lock')), false, `${label}: no lock left`);
  assert.deepEqual(readdirSync(meta).filter((n) => n.startsWith('lock.')), [], `${label}: no lock drafts left`);
  assert.deepEqual(leasesIn(dir), [], `${label}: no lease left`);
}

/** The backup log still reads back, and so does the state file. */
async function assertBookkeepingReadable(dir: string, label: string): Promise<void> {
  const catalog = new Catalog(dir);
  assert.ok((await catalog.log.read()).length > 0, `${label}: the backup log reads back`);
  await catalog.readState();
}

/** Kill runs at once: each is mostly a process start and fsyncs, which overlap on two cores. */
const WIDTH = 3;

describe('crash tests of format v2: a kill at every crash point of a backup and of prune', () => {
  const t = tempDir();
  after(() => t.cleanup());
  const engine = new Engine();
  const scratch = path.join(t.dir, 'restored');
  mkdirSync(scratch);

  /** A database in its own folder beside a lifeboat.json that selects the repository format. */
  function repoDb(name: string, extra: object = {}): { db: string; settings: Settings } {
    const folder = path.join(t.dir, name);
    mkdirSync(folder);
    writeFileSync(path.join(folder, 'lifeboat.json'), JSON.stringify({ format: 'repository', ...extra }));
    const db = path.join(folder, `${name}.db`);
    makeDb(db, { rows: 30 });
    // The settings the CLI reads for this database, through the CLI's own loader.
    const { settings } = loadSettings(folder, db);
    assert.equal(settings.format, 'repository');
    return { db, settings };
  }

  /**
   * Backs up `db` with the CLI killed at each of its points, every run starting from a copy
   * of `template` (a backups folder; none: a first backup into a new folder).
   */
  async function crashBackupAtEveryPoint(name: string, db: string, settings: Settings, template: string | undefined): Promise<Manifest> {
    const fresh = (k: number) => {
      const dir = path.join(t.dir, `${name}-${k}`, 'backups');
      if (template) cpSync(template, dir, { recursive: true, preserveTimestamps: true });
      return dir;
    };
    const checker = new BackupChecker(engine, settings, scratch);
    const before = template ? await manifestsIn(template, 'template') : new Map<string, Manifest>();
    const templatePacks = new Set(template ? packsIn(template) : []);

    const dir0 = fresh(0);
    const trace0 = path.join(t.dir, `${name}-trace-0.txt`);
    const traced = await runCli(['backup', db, '--dir', dir0, '--json'], { LIFEBOAT_CRASH_TRACE: trace0 });
    assert.equal(traced.code, 0, traced.stderr);
    const made = JSON.parse(traced.stdout) as Manifest;
    assert.equal(made.formatVersion, 2, 'the CLI wrote a repository backup');
    const points = readTrace(trace0);
    points.forEach((p, i) => assert.equal(p.n, i + 1, 'one numbering for all threads'));
    const inFolder = (p: TracePoint, dir: string, folder: string) => p.op === 'rename' && path.dirname(p.file) === path.join(dir, folder);
    const packRenames = points.filter((p) => inFolder(p, dir0, 'packs'));
    const publish = points.filter((p) => inFolder(p, dir0, 'snapshots'));
    assert.equal(publish.length, 1, `one publishing rename of a manifest: ${opCounts(points)}`);
    assert.equal(packRenames.length, made.repository!.added.packs.length, 'one publishing rename per new pack');
    assert.ok(packRenames.length >= 1 && packRenames.every((p) => p.n < publish[0].n), 'packs are published before the manifest');
    await checker.check(dir0, `${name}: the traced run`);

    let kills = 0;
    let published = 0;
    await inPool(points, WIDTH, async (point) => {
      const k = point.n;
      const at = whereIs(point, dir0);
      const label = `${name}: kill at point ${k} of ${points.length} (${at})`;
      const dir = fresh(k);
      const trace = path.join(t.dir, `${name}-trace-${k}.txt`);
      const r = await runCli(['backup', db, '--dir', dir], { LIFEBOAT_CRASH_TRACE: trace, LIFEBOAT_CRASH_AT: String(k) });
      assert.equal(r.signal, 'SIGKILL', `${label}: the run was killed (exit ${r.code}: ${r.stderr})`);
      kills++;
      const seen = readTrace(trace);
      assert.equal(seen.at(-1)?.n, k, `${label}: died at its k-th point`);
      assert.equal(whereIs(seen.at(-1)!, dir), at, `${label}: the same point as in the traced run`);

      // Before the publishing rename no new backup is visible; after it, a whole one.
      const state = await assertRepoSound(dir, label);
      const added = [...state.manifests.keys()].filter((o) => !before.has(o));
      assert.equal(added.length, k > publish[0].n ? 1 : 0, `${label}: new manifests ${added.join(', ')}`);
      published += added.length;
      const newPacks = state.packs.filter((p) => !templatePacks.has(p));
      assert.equal(newPacks.length, packRenames.filter((p) => p.n < k).length, `${label}: new packs ${newPacks.join(', ')}`);
      for (const o of before.keys()) assert.ok(state.manifests.has(o), `${label}: ${o} is still there`);
      await checker.check(dir, label);
      await assertBookkeepingReadable(dir, label);

      // The rerun succeeds and leaves a converged store: no temp file, lock, lease, or pack nobody uses.
      const again = await engine.backup(db, { dir, kind: 'manual', settings, trigger: 'cli' });
      assert.equal(again.verified, true, `${label}: the rerun verified`);
      assert.equal(again.record.format, 'repository');
      assertNoLeftovers(dir, `${label}, after the rerun`);
      const converged = await assertRepoSound(dir, `${label}, after the rerun`);
      assert.deepEqual(converged.unreferenced, [], `${label}: after the rerun every pack is referenced`);
      await checker.check(dir, `${label}, after the rerun`);
    });
    assert.equal(kills, points.length);
    assert.equal(published, points.length - publish[0].n, 'the kills after the publishing rename each left a whole backup');
    console.log(
      `${name}: ${points.length} crash points (${opCounts(points)}); kills landed: ${kills} (${published} after the manifest was published); ` +
        `listed backups deep-checked and extracted to their SHA-256: ${checker.counts.deep}, of them verified through SQLite and restored: ${checker.counts.full}; 0 partial objects, 0 dangling packs`,
    );
    return made;
  }

  test('a first repository backup killed at every point: nothing partial, every listed backup verifies and restores, the rerun converges', async () => {
    const { db, settings } = repoDb('first');
    const made = await crashBackupAtEveryPoint('first', db, settings, undefined);
    assert.equal(made.repository!.parent, undefined, 'a first backup has no parent');
  });

  test('an incremental repository backup killed at every point: the parent stays whole, the child is all or nothing', async () => {
    const { db, settings } = repoDb('incr');
    const template = path.join(t.dir, 'incr-template', 'backups');
    const parent = await engine.backup(db, { dir: template, kind: 'manual', settings, trigger: 'cli' });
    assert.equal(parent.verified, true);
    // A few rows change: the child stores those pages and points at the parent's for the rest.
    sqlite(db, "UPDATE items SET name = name || ' changed' WHERE id <= 3;");
    const made = await crashBackupAtEveryPoint('incr', db, settings, template);
    const map = made.repository!;
    assert.equal(map.parent, parent.record.id, 'the traced backup is an incremental one over the parent');
    assert.ok(map.packs.some((p) => parent.record.manifest.repository!.packs.includes(p)), "it points at the parent's pages");
    assert.ok(map.added.pages < map.pageCount, `it stored only the changed pages (${map.added.pages} of ${map.pageCount})`);
  });

  test('rotate --force deleting repository backups killed at every point: kept backups stay whole, the rerun finishes the plan and the prune', async () => {
    const retention = { daily: 1, weekly: 0, monthly: 0, keepWithin: '', keepEventBackups: 10 };
    const { db, settings } = repoDb('rot', { retention });
    const template = path.join(t.dir, 'rot-template');
    mkdirSync(template);
    writeFileSync(path.join(template, 'lifeboat.json'), JSON.stringify({ format: 'repository', retention }));
    const tplBackups = path.join(template, 'backups');
    const day = (d: number) => new Date(Date.UTC(2026, 2, d, 2, 0, 0));
    // A manual base, then four daily backups; every day rewrites the rows' blobs (same
    // lengths, same pages), so each day's pack holds pages the next day replaces.
    for (const [d, kind] of [[1, 'manual'], [2, 'scheduled'], [3, 'scheduled'], [4, 'scheduled'], [5, 'scheduled']] as const) {
      if (d > 1) sqlite(db, 'UPDATE items SET data = randomblob(length(data));');
      const res = await new Engine({ clock: fixedClock(day(d)) }).backup(db, { dir: tplBackups, kind, settings, rotate: false });
      assert.equal(res.verified, true);
      assert.equal(res.record.format, 'repository');
    }
    const records = (await engine.list(tplBackups)).records;
    const plan = planRotation(records, retention, new Date(), { force: true });
    const keep = plan.keep.map((k) => snapshotOf(k.id)).sort();
    const remove = plan.remove.map((r) => snapshotOf(r.id)).sort();
    assert.equal(keep.length, 2, 'the manual base and the newest day are kept');
    assert.equal(remove.length, 3, 'three of four automatic backups go: more than half, so only with --force');
    const tpl = await manifestsIn(tplBackups, 'template');
    const keptPacks = referencedPacks(keep.map((o) => tpl.get(o)!));
    const pruned = [...referencedPacks(remove.map((o) => tpl.get(o)!))].filter((p) => !keptPacks.has(p)).sort();
    assert.ok(pruned.length >= 2, `the deleted backups own packs that prune must delete (${pruned.length})`);

    // Checked before any copy is made: verification records state in the store, which rotation then drops.
    const checker = new BackupChecker(engine, settings, scratch);
    await checker.check(tplBackups, 'rotate: the template');
    const copy = (k: number) => {
      const root = path.join(t.dir, `rot-${k}`);
      cpSync(template, root, { recursive: true, preserveTimestamps: true });
      return path.join(root, 'backups');
    };
    const dir0 = copy(0);
    const trace0 = path.join(t.dir, 'rot-trace-0.txt');
    const traced = await runCli(['rotate', '--dir', dir0, '--force', '--json'], { LIFEBOAT_CRASH_TRACE: trace0 });
    assert.equal(traced.code, 0, traced.stderr);
    const out = JSON.parse(traced.stdout) as { remove: { id: string }[]; prune?: { packs: number } };
    assert.deepEqual(out.remove.map((r) => snapshotOf(r.id)).sort(), remove, 'the CLI carries out the plan');
    assert.equal(out.prune?.packs, pruned.length, 'and prunes the packs only the deleted backups used');
    assert.deepEqual(snapshotsIn(dir0), keep);
    assert.deepEqual(packsIn(dir0), [...keptPacks].sort());
    const points = readTrace(trace0);
    points.forEach((p, i) => assert.equal(p.n, i + 1, 'one numbering for all threads'));
    const unlinks = (folder: string) => points.filter((p) => p.op === 'unlink' && path.dirname(p.file) === path.join(dir0, folder));
    assert.equal(unlinks('snapshots').length, remove.length, `one unlink point per deleted manifest: ${opCounts(points)}`);
    assert.equal(unlinks('packs').length, pruned.length, 'one unlink point per pruned pack');
    assert.ok(Math.max(...unlinks('snapshots').map((p) => p.n)) < Math.min(...unlinks('packs').map((p) => p.n)), 'manifests go before packs');

    let kills = 0;
    await inPool(points, WIDTH, async (point) => {
      const k = point.n;
      const at = whereIs(point, dir0);
      const label = `rotate: kill at point ${k} of ${points.length} (${at})`;
      const dir = copy(k);
      const trace = path.join(t.dir, `rot-trace-${k}.txt`);
      const r = await runCli(['rotate', '--dir', dir, '--force'], { LIFEBOAT_CRASH_TRACE: trace, LIFEBOAT_CRASH_AT: String(k) });
      assert.equal(r.signal, 'SIGKILL', `${label}: the run was killed (exit ${r.code}: ${r.stderr})`);
      kills++;
      assert.equal(whereIs(readTrace(trace).at(-1)!, dir), at, `${label}: the same point as in the traced run`);

      // Only planned deletions happened, manifests before packs: no manifest lost a pack.
      const state = await assertRepoSound(dir, label);
      const present = [...state.manifests.keys()];
      for (const o of keep) assert.ok(present.includes(o), `${label}: kept ${o} is there`);
      for (const o of present) assert.ok(tpl.has(o), `${label}: ${o} was in the store before`);
      for (const p of state.packs) assert.ok(keptPacks.has(p) || pruned.includes(p), `${label}: ${p} was in the store before`);
      await checker.check(dir, label);
      await assertBookkeepingReadable(dir, label);

      // The rerun finishes the plan: the same backups kept, no pack nobody uses, every deletion logged.
      const again = await engine.rotate(dir, settings, { force: true });
      assert.equal(again.refused, undefined);
      assert.deepEqual(snapshotsIn(dir), keep, `${label}: the rerun finished the plan`);
      const converged = await assertRepoSound(dir, `${label}, after the rerun`);
      assert.deepEqual(converged.unreferenced, [], `${label}: after the rerun no unreferenced pack remains`);
      assert.deepEqual(converged.packs, [...keptPacks].sort());
      const logged = (await new Catalog(dir).log.read()).filter((e) => e.op === 'rotate.delete').map((e) => snapshotOf(e.backup!));
      for (const o of remove) assert.ok(logged.includes(o), `${label}: the deletion of ${o} is logged`);
      assertNoLeftovers(dir, `${label}, after the rerun`);
      await checker.check(dir, `${label}, after the rerun`);
    });
    // Through the CLI at the end: every kept backup verifies and restores.
    const last = copy(points.length + 1);
    assert.equal((await lifeboat(['rotate', '--dir', last, '--force'])).code, 0);
    const all = await lifeboat(['verify', '--all', '--dir', last, '--json']);
    assert.equal(all.code, 0, all.stdout + all.stderr);
    assert.equal((JSON.parse(all.stdout) as { results: unknown[] }).results.length, keep.length);
    for (const o of keep) {
      const to = path.join(scratch, `cli-${path.basename(o, '.json')}.db`);
      const res = await lifeboat(['restore', path.join(last, o), '--to', to]);
      assert.equal(res.code, 0, res.stderr);
      assert.equal(createHash('sha256').update(readFileSync(to)).digest('hex'), tpl.get(o)!.image.sha256, `lifeboat restore of ${o}: its manifest's SHA-256`);
    }
    console.log(
      `rotate+prune: ${points.length} crash points (${opCounts(points)}); kills landed: ${kills}; ` +
        `${remove.length} backups and ${pruned.length} packs deleted each time, ${keep.length} kept; ` +
        `listed backups deep-checked and extracted to their SHA-256: ${checker.counts.deep}, of them verified through SQLite and restored: ${checker.counts.full}, and ${keep.length} more by lifeboat verify and restore`,
    );
    assert.equal(kills, points.length);
  });

  test('rotate with a repack killed at every point: every backup stays whole, pointing at the old pack or its copy; the rerun finishes the repack', async () => {
    const retention = { daily: 1, weekly: 0, monthly: 0, keepWithin: '', keepEventBackups: 10 };
    const { db, settings } = repoDb('rpk', { retention });
    // Some 30 pages of rows, so that the table's leaves are most of the first pack.
    sqlite(db, "INSERT INTO items(name, qty, data) SELECT 'more', 1, randomblob(400) FROM items AS a, items AS b LIMIT 300;");
    const template = path.join(t.dir, 'rpk-template');
    mkdirSync(template);
    writeFileSync(path.join(template, 'lifeboat.json'), JSON.stringify({ format: 'repository', retention }));
    const tplBackups = path.join(template, 'backups');
    const day = (d: number) => new Date(Date.UTC(2026, 2, d, 2, 0, 0));
    // Four daily backups; every day rewrites the rows' blobs, so that once the first
    // backup is rotated away its (full) pack is used by the newest for a few pages only.
    for (const d of [1, 2, 3, 4]) {
      if (d > 1) sqlite(db, 'UPDATE items SET data = randomblob(length(data));');
      const res = await new Engine({ clock: fixedClock(day(d)) }).backup(db, { dir: tplBackups, kind: 'scheduled', settings, rotate: false });
      assert.equal(res.verified, true);
    }
    const records = (await engine.list(tplBackups)).records;
    const plan = planRotation(records, retention, new Date(), { force: true });
    const keep = plan.keep.map((k) => snapshotOf(k.id)).sort();
    assert.equal(keep.length, 1, 'the newest day is kept');
    const tpl = await manifestsIn(tplBackups, 'template');
    const base = records.find((r) => !r.manifest.repository!.parent)!.manifest.repository!.packs[0];
    assert.ok(tpl.get(keep[0])!.repository!.packs.includes(base), 'the kept backup uses a few pages of the first pack');
    const root = tpl.get(keep[0])!.repository!.root;
    const checker = new BackupChecker(engine, settings, scratch);
    await checker.check(tplBackups, 'repack: the template');
    const copy = (k: number) => {
      const root = path.join(t.dir, `rpk-${k}`);
      cpSync(template, root, { recursive: true, preserveTimestamps: true });
      return path.join(root, 'backups');
    };
    const dir0 = copy(0);
    const trace0 = path.join(t.dir, 'rpk-trace-0.txt');
    const traced = await runCli(['rotate', '--dir', dir0, '--force', '--json'], { LIFEBOAT_CRASH_TRACE: trace0 });
    assert.equal(traced.code, 0, traced.stderr);
    const out = JSON.parse(traced.stdout) as { prune?: { repacked?: { packs: number } } };
    assert.equal(out.prune?.repacked?.packs, 1, `the first pack is repacked: ${traced.stdout}`);
    const done = await assertRepoSound(dir0, 'repack: the traced run');
    assert.ok(!done.packs.includes(base), 'the old pack is gone');
    assert.deepEqual(done.unreferenced, []);
    const points = readTrace(trace0);
    const rewrite = points.filter((p) => p.op === 'rename' && p.file === path.join(dir0, keep[0]));
    assert.equal(rewrite.length, 1, `one rewrite of the kept manifest: ${opCounts(points)}`);
    const baseGone = points.filter((p) => p.op === 'unlink' && p.file === path.join(dir0, base));
    assert.equal(baseGone.length, 1, 'one unlink of the old pack');
    assert.ok(rewrite[0].n < baseGone[0].n, 'the manifest points at the copy before the old pack goes');

    let kills = 0;
    await inPool(points, WIDTH, async (point) => {
      const k = point.n;
      const at = whereIs(point, dir0);
      const label = `repack: kill at point ${k} of ${points.length} (${at})`;
      const dir = copy(k);
      const trace = path.join(t.dir, `rpk-trace-${k}.txt`);
      const r = await runCli(['rotate', '--dir', dir, '--force'], { LIFEBOAT_CRASH_TRACE: trace, LIFEBOAT_CRASH_AT: String(k) });
      assert.equal(r.signal, 'SIGKILL', `${label}: the run was killed (exit ${r.code}: ${r.stderr})`);
      kills++;
      const state = await assertRepoSound(dir, label);
      assert.ok(state.manifests.has(keep[0]), `${label}: the kept backup is there`);
      assert.equal(state.manifests.get(keep[0])!.repository!.root, root, `${label}: the kept backup has the same root`);
      await checker.check(dir, label);
      await assertBookkeepingReadable(dir, label);
      const again = await engine.rotate(dir, settings, { force: true });
      assert.equal(again.refused, undefined);
      assert.deepEqual(snapshotsIn(dir), keep, `${label}: the rerun finished the plan`);
      const converged = await assertRepoSound(dir, `${label}, after the rerun`);
      assert.deepEqual(converged.unreferenced, [], `${label}: after the rerun no unreferenced pack remains`);
      assert.ok(!converged.packs.includes(base), `${label}: after the rerun the old pack is gone`);
      assert.equal(converged.manifests.get(keep[0])!.repository!.root, root);
      assertNoLeftovers(dir, `${label}, after the rerun`);
      await checker.check(dir, `${label}, after the rerun`);
    });
    console.log(`rotate+repack: ${points.length} crash points (${opCounts(points)}); kills landed: ${kills}; listed backups deep-checked: ${checker.counts.deep}, verified through SQLite and restored: ${checker.counts.full}`);
    assert.equal(kills, points.length);
  });
});

/**
 * Format v2 (the page repository) under concurrency, with real processes: a backup paused
 * (LIFEBOAT_PAUSE_AT, src/core/faults.ts) between taking its lease and publishing its
 * manifest while a rotation in another process deletes its parent and prunes, and the
 * reverse, a rotation paused inside its lock while a backup starts. Then v1 zips and v2
 * backups mixed in one store through list, a dry run and a real rotation. The backups
 * must come out published, whole, verified in full and restorable; prune must never take
 * a pack a backup references.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { cpSync, existsSync, mkdirSync, readFileSync, rmSync, utimesSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { loadSettings } from '../../src/cli/settings';
import type { Settings } from '../../src/core/config';
import { Engine } from '../../src/core/engine';
import { formatNamed } from '../../src/core/format/formats';
import { referencedPacks } from '../../src/core/format/repo/snapshotManifest';
import type { BackupRecord, Manifest } from '../../src/core/model';
import { LocalDirStore } from '../../src/core/store/localDirStore';
import { ensureBuilt, lifeboat } from '../fixtures/cli';
import {
  assertRepoSound,
  BackupChecker,
  leasesIn,
  manifestsIn,
  packsIn,
  readTrace,
  runCli,
  snapshotOf,
  snapshotsIn,
  startCli,
  waitForFile,
  waitUntil,
  whereIs,
  zipsIn,
  type TracePoint,
} from '../fixtures/repoStore';
import { fixedClock } from '../fixtures/seedBackups';
import { makeDb, sqlite, tempDir } from '../fixtures/sqlite';

before(() => ensureBuilt());

const day = (d: number) => new Date(Date.UTC(2026, 2, d, 2, 0, 0));
const sha256 = (f: string) => createHash('sha256').update(readFileSync(f)).digest('hex');

interface RotateJson {
  dryRun: boolean;
  keep: { id: string }[];
  remove: { id: string }[];
  refused?: string;
  prune?: { packs: number; bytes: number; refused?: string };
}

describe('format v2: a backup and a prune racing in two processes', () => {
  const t = tempDir();
  after(() => t.cleanup());
  const engine = new Engine();
  const scratch = path.join(t.dir, 'restored');
  mkdirSync(scratch);
  const retention = { daily: 1, weekly: 0, monthly: 0, keepWithin: '', keepEventBackups: 10 };
  const folder = path.join(t.dir, 'race');
  const db = path.join(folder, 'race.db');
  const template = path.join(t.dir, 'race-template');
  let settings: Settings;
  let parent: BackupRecord;
  let shared: BackupChecker | undefined;
  const checker = () => (shared ??= new BackupChecker(engine, settings, scratch));

  // The store every race starts from: P, a repository backup of day 1, and a newer zip of
  // day 2 of the same database. P is the newest repository backup, so the next backup
  // dedups against it; the zip is the newest verified backup, so rotation (daily: 1)
  // deletes P. Then a few rows change: the next backup stores a few pages and points at
  // P's packs for the rest.
  before(async () => {
    mkdirSync(folder);
    writeFileSync(path.join(folder, 'lifeboat.json'), JSON.stringify({ format: 'repository', retention }));
    makeDb(db, { rows: 30 });
    settings = loadSettings(folder, db).settings;
    assert.equal(settings.format, 'repository');
    mkdirSync(template);
    writeFileSync(path.join(template, 'lifeboat.json'), JSON.stringify({ format: 'repository', retention }));
    const backups = path.join(template, 'backups');
    const p = await new Engine({ clock: fixedClock(day(1)) }).backup(db, { dir: backups, kind: 'scheduled', settings, rotate: false });
    assert.equal(p.verified, true);
    assert.equal(p.record.format, 'repository');
    parent = p.record;
    sqlite(db, "UPDATE items SET qty = qty + 1 WHERE id <= 2;");
    const z = await new Engine({ clock: fixedClock(day(2)) }).backup(db, { dir: backups, kind: 'scheduled', settings: { ...settings, format: 'zip' }, rotate: false });
    assert.equal(z.verified, true);
    assert.equal(z.record.format, 'zip');
    sqlite(db, "UPDATE items SET name = name || ' changed' WHERE id <= 3;");
  });

  /**
   * A copy of the template store. Its packs are dated an hour back, so that prune's rule
   * "keep packs newer than a running backup" does not cover P's: only the lease does.
   */
  function copy(name: string): string {
    const root = path.join(t.dir, name);
    cpSync(template, root, { recursive: true, preserveTimestamps: true });
    const dir = path.join(root, 'backups');
    const old = new Date(Date.now() - 3600_000);
    for (const p of packsIn(dir)) utimesSync(path.join(dir, p), old, old);
    return dir;
  }

  /** P's packs that no manifest left in `dir` references: those prune would delete. */
  async function parentPacksNobodyUses(dir: string): Promise<string[]> {
    const used = referencedPacks((await manifestsIn(dir, dir)).values());
    return parent.manifest.repository!.packs.filter((p) => !used.has(p));
  }

  /**
   * After a race: the backup `made` is published and whole, the store converged, and every
   * listed backup passes BackupChecker (the format's deep check, and the full verification
   * and a restore of each content the first time it is seen).
   */
  async function assertRaceOutcome(dir: string, made: Manifest, label: string): Promise<void> {
    assert.ok(existsSync(path.join(dir, snapshotOf(made.id))), `${label}: the backup's manifest is published`);
    const state = await assertRepoSound(dir, label);
    assert.deepEqual(state.unreferenced, [], `${label}: no pack nobody uses is left`);
    assert.deepEqual(leasesIn(dir), [], `${label}: no lease left`);
    const listed = (await engine.list(dir)).records.map((r) => r.id);
    assert.ok(listed.includes(made.id), `${label}: the backup is listed`);
    await checker().check(dir, label);
  }

  test('a backup paused between its lease and its manifest while another process rotates its parent away: published, whole, restorable', async () => {
    const dir0 = copy('fwd-traced');
    const trace0 = path.join(t.dir, 'fwd-trace.txt');
    const traced = await runCli(['backup', db, '--dir', dir0, '--json'], { LIFEBOAT_CRASH_TRACE: trace0 });
    assert.equal(traced.code, 0, traced.stderr);
    assert.equal((JSON.parse(traced.stdout) as Manifest).repository!.parent, parent.id, 'the backup is an incremental one over P');
    const points = readTrace(trace0);
    const inDir = (p: TracePoint, sub: string) => path.dirname(p.file) === path.join(dir0, sub);
    const lease = points.find((p) => p.op === 'rename' && inDir(p, '.lifeboat/leases'));
    const packRename = points.find((p) => p.op === 'rename' && inDir(p, 'packs'));
    const publish = points.find((p) => p.op === 'rename' && inDir(p, 'snapshots'));
    assert.ok(lease && packRename && publish, 'the trace shows the lease, the pack and the manifest being published');
    const isLockDraft = (p: TracePoint) => p.op === 'fsync' && inDir(p, '.lifeboat') && /^lock\.\d+-.*\.draft$/.test(path.basename(p.file));
    const pauses = [
      { name: 'its new pack written, not yet published', at: points.find((p) => p.n > lease.n && p.op === 'fsync' && inDir(p, '.lifeboat/tmp') && p.file.endsWith('.pack')) },
      { name: 'its new pack just published', at: points.find((p) => p.n === packRename.n + 1) },
      { name: 'before taking the lock to publish its manifest', at: points.find((p) => p.n > packRename.n && p.n < publish.n && isLockDraft(p)) },
    ];
    let checked = 0;
    for (const { name, at } of pauses) {
      assert.ok(at && at.n > lease.n && at.n < publish.n, `${name}: a point between the lease and the manifest`);
      const label = `backup paused at point ${at.n} (${name})`;
      const dir = copy(`fwd-${at.n}`);
      const pauseFile = path.join(t.dir, `fwd-${at.n}.pause`);
      const backup = startCli(['backup', db, '--dir', dir, '--json'], { LIFEBOAT_PAUSE_AT: String(at.n), LIFEBOAT_PAUSE_FILE: pauseFile });
      try {
        await waitForFile(pauseFile, backup, label);
        const [n, op, file] = readFileSync(pauseFile, 'utf8').trim().split(' ');
        assert.equal(`${whereIs({ n: Number(n), op, file }, dir)}`, whereIs(at, dir0), `${label}: paused where the traced run passed`);
        assert.equal(leasesIn(dir).length, 1, `${label}: its lease is there`);

        // Another process rotates meanwhile: P goes, and P's packs are what prune would take.
        const rot = await runCli(['rotate', '--dir', dir, '--json']);
        assert.equal(rot.code, 0, `${label}: rotate: ${rot.stderr}`);
        assert.deepEqual((JSON.parse(rot.stdout) as RotateJson).remove.map((r) => r.id), [parent.id], `${label}: the rotation deletes P`);
        assert.equal(existsSync(path.join(dir, parent.object)), false, `${label}: P's manifest is gone`);
        const wanted = await parentPacksNobodyUses(dir);
        assert.ok(wanted.length > 0, `${label}: no manifest left uses P's packs`);
        for (const p of wanted) assert.ok(existsSync(path.join(dir, p)), `${label}: prune kept ${p}, which the running backup may point at`);
        assert.ok(backup.running(), `${label}: the backup is still paused`);
      } finally {
        rmSync(pauseFile, { force: true });
      }
      const done = await backup.ended;
      assert.equal(done.code, 0, `${label}: the backup finished: ${done.stderr}`);
      const made = JSON.parse(done.stdout) as Manifest;
      assert.equal(made.repository!.parent, parent.id, `${label}: it was stored over P`);
      assert.ok(made.repository!.packs.some((p) => parent.manifest.repository!.packs.includes(p)), `${label}: it points at P's pages`);
      await assertRaceOutcome(dir, made, label);
      checked++;
    }
    console.log(
      `repoRace: a backup paused at ${checked} points between its lease and its manifest while a rotation deleted its parent: all published; ` +
        `listed backups deep-checked so far: ${checker().counts.deep}, verified through SQLite and restored: ${checker().counts.full}`,
    );
    assert.equal(checked, pauses.length);
  });

  test('a rotation paused inside its lock while a backup starts: the backup waits, then stores without the deleted parent', async () => {
    const dir0 = copy('rev-traced');
    const trace0 = path.join(t.dir, 'rev-trace.txt');
    const traced = await runCli(['rotate', '--dir', dir0, '--json'], { LIFEBOAT_CRASH_TRACE: trace0 });
    assert.equal(traced.code, 0, traced.stderr);
    const plan = JSON.parse(traced.stdout) as RotateJson;
    assert.deepEqual(plan.remove.map((r) => r.id), [parent.id]);
    assert.equal(plan.prune?.packs, parent.manifest.repository!.packs.length, "P's packs are pruned when no backup runs");
    const points = readTrace(trace0);
    const pauses = [
      { name: "before it deletes P's manifest", at: points.find((p) => p.op === 'unlink' && p.file === path.join(dir0, parent.object)) },
      { name: 'inside prune, before its first pack deletion', at: points.find((p) => p.op === 'unlink' && path.dirname(p.file) === path.join(dir0, 'packs')) },
    ];
    let checked = 0;
    for (const { name, at } of pauses) {
      assert.ok(at, `${name}: a point of the traced rotation`);
      const label = `rotation paused at point ${at.n} (${name})`;
      const dir = copy(`rev-${at.n}`);
      const pauseFile = path.join(t.dir, `rev-${at.n}.pause`);
      const rot = startCli(['rotate', '--dir', dir, '--json'], { LIFEBOAT_PAUSE_AT: String(at.n), LIFEBOAT_PAUSE_FILE: pauseFile });
      const backupTrace = path.join(t.dir, `rev-${at.n}-backup.txt`);
      let backup;
      try {
        await waitForFile(pauseFile, rot, label);
        assert.ok(existsSync(path.join(dir, '.lifeboat', 'lock')), `${label}: the rotation holds the lock`);
        backup = startCli(['backup', db, '--dir', dir, '--json'], { LIFEBOAT_CRASH_TRACE: backupTrace });
        // The backup has listed the store and now waits for the lock it takes its lease under.
        const b = backup;
        const waiting = () => readTrace(backupTrace).some((p) => p.op === 'fsync' && /\/\.lifeboat\/lock\.\d+-.*\.draft$/.test(p.file));
        await waitUntil(() => waiting() || !b.running(), `${label}: the backup reaches the lock`);
        assert.ok(backup.running(), `${label}: the backup waits for the lock`);
        assert.deepEqual(leasesIn(dir), [], `${label}: no lease while the rotation holds the lock`);
        assert.equal(snapshotsIn(dir).length, name.startsWith('before') ? 1 : 0, `${label}: P's manifest is there until the rotation deletes it`);
      } finally {
        rmSync(pauseFile, { force: true });
      }
      const r = await rot.ended;
      assert.equal(r.code, 0, `${label}: the rotation finished: ${r.stderr}`);
      assert.deepEqual((JSON.parse(r.stdout) as RotateJson).remove.map((x) => x.id), [parent.id]);
      const done = await backup.ended;
      assert.equal(done.code, 0, `${label}: the backup finished: ${done.stderr}`);
      const made = JSON.parse(done.stdout) as Manifest;
      // P was gone by the time the backup could lease its packs: it stored every page.
      assert.equal(made.repository!.parent, undefined, `${label}: the backup did not use the deleted P`);
      assert.ok(made.repository!.packs.every((p) => !parent.manifest.repository!.packs.includes(p)), `${label}: it points at none of P's pruned packs`);
      for (const p of parent.manifest.repository!.packs) assert.equal(existsSync(path.join(dir, p)), false, `${label}: ${p} was pruned`);
      await assertRaceOutcome(dir, made, label);
      checked++;
    }
    console.log(
      `repoRace: a rotation paused at ${checked} points inside its lock while a backup started: the backup waited and stored on its own; ` +
        `listed backups deep-checked so far: ${checker().counts.deep}, verified through SQLite and restored: ${checker().counts.full}`,
    );
    assert.equal(checked, pauses.length);
  });
  test(
    'a backup that reuses a pack a killed backup left, while another process prunes: published, not failed',
    async () => {
      // A killed backup leaves its pack published and no manifest; the database does not
      // change, so the next backup writes a pack of the very same bytes and reuses that one.
      const leaveOrphan = async (name: string) => {
        const dir = copy(name);
        const trace0 = path.join(t.dir, `${name}-kill-trace.txt`);
        const traced = await runCli(['backup', db, '--dir', copy(`${name}-traced`)], { LIFEBOAT_CRASH_TRACE: trace0 });
        assert.equal(traced.code, 0, traced.stderr);
        const afterPack = readTrace(trace0).find((p) => p.op === 'rename' && path.basename(path.dirname(p.file)) === 'packs');
        assert.ok(afterPack, 'the backup publishes a pack');
        const killed = await runCli(['backup', db, '--dir', dir], { LIFEBOAT_CRASH_AT: String(afterPack.n + 1) });
        assert.equal(killed.signal, 'SIGKILL', killed.stderr);
        const { unreferenced } = await assertRepoSound(dir, `${name}: after the kill`);
        assert.equal(unreferenced.length, 1, `${name}: the killed backup left one pack no manifest uses`);
        // The crash was a while ago.
        const old = new Date(Date.now() - 3600_000);
        utimesSync(path.join(dir, unreferenced[0]), old, old);
        return { dir, orphan: unreferenced[0] };
      };
      // Where the next backup passes once it found its pack already there.
      const probe = await leaveOrphan('reuse-probe');
      const trace = path.join(t.dir, 'reuse-probe-trace.txt');
      const ran = await runCli(['backup', db, '--dir', probe.dir, '--json'], { LIFEBOAT_CRASH_TRACE: trace });
      assert.equal(ran.code, 0, ran.stderr);
      assert.ok((JSON.parse(ran.stdout) as Manifest).repository!.packs.includes(probe.orphan), 'the next backup reuses the pack the killed one left');
      const points = readTrace(trace);
      const packRename = points.find((p) => p.op === 'rename' && path.basename(path.dirname(p.file)) === 'packs');
      const publish = points.find((p) => p.op === 'rename' && path.basename(path.dirname(p.file)) === 'snapshots');
      assert.ok(packRename && publish);
      const pauseAt = points.find((p) => p.n > packRename.n && p.op === 'fsync' && /^lock\.\d+-.*\.draft$/.test(path.basename(p.file)) && p.n < publish.n);
      assert.ok(pauseAt, 'a point after the pack and before the manifest lock');

      const { dir, orphan } = await leaveOrphan('reuse');
      const pauseFile = path.join(t.dir, 'reuse.pause');
      const backup = startCli(['backup', db, '--dir', dir, '--json'], { LIFEBOAT_PAUSE_AT: String(pauseAt.n), LIFEBOAT_PAUSE_FILE: pauseFile });
      try {
        await waitForFile(pauseFile, backup, 'the backup that reuses the pack');
        assert.ok(existsSync(path.join(dir, orphan)), 'the reused pack is there');
        // Another process rotates meanwhile (any rotation prunes).
        const rot = await runCli(['rotate', '--dir', dir, '--json']);
        assert.equal(rot.code, 0, rot.stderr);
      } finally {
        rmSync(pauseFile, { force: true });
      }
      const done = await backup.ended;
      assert.equal(done.code, 0, `the backup that reused a pack failed: ${done.stderr}`);
      await assertRaceOutcome(dir, JSON.parse(done.stdout) as Manifest, 'the backup that reused a pack');
    },
  );
});

describe('format v2: zip and repository backups mixed in one store', () => {
  const t = tempDir();
  after(() => t.cleanup());

  test('list shows both, rotation plans across both, deletes zips and manifests, prunes the packs nobody uses; the rest verifies and restores', async () => {
    const retention = { daily: 3, weekly: 0, monthly: 0, keepWithin: '', keepEventBackups: 10 };
    const folder = path.join(t.dir, 'mixed');
    mkdirSync(folder);
    writeFileSync(path.join(folder, 'lifeboat.json'), JSON.stringify({ format: 'repository', retention }));
    const db = path.join(folder, 'mixed.db');
    makeDb(db, { rows: 30 });
    const settings = loadSettings(folder, db).settings;
    const dir = path.join(folder, 'backups');
    // Six days, repository and zip in turn; each day rewrites the rows' blobs (same pages).
    const seeded: BackupRecord[] = [];
    for (let d = 1; d <= 6; d++) {
      if (d > 1) sqlite(db, 'UPDATE items SET data = randomblob(length(data));');
      const format = d % 2 ? 'repository' : 'zip';
      const res = await new Engine({ clock: fixedClock(day(d)) }).backup(db, { dir, kind: 'scheduled', settings: { ...settings, format }, rotate: false });
      assert.equal(res.verified, true);
      assert.equal(res.record.format, format);
      seeded.push(res.record);
    }
    const removed = seeded.slice(0, 3);
    const kept = seeded.slice(3);
    const v2 = (rs: BackupRecord[]) => rs.filter((r) => r.format === 'repository');
    const keptPacks = referencedPacks(v2(kept).map((r) => r.manifest));
    const pruned = [...referencedPacks(v2(removed).map((r) => r.manifest))].filter((p) => !keptPacks.has(p)).sort();
    assert.ok(pruned.length >= 1, 'the deleted repository backups own packs nobody else uses');
    assert.ok(v2(removed).some((r) => r.manifest.repository!.packs.some((p) => keptPacks.has(p))), 'and share others with a kept one');

    const list = await lifeboat(['list', '--dir', dir, '--json']);
    assert.equal(list.code, 0, list.stderr);
    const listed = (JSON.parse(list.stdout) as { backups: { id: string; format: string }[] }).backups;
    assert.deepEqual(listed.map((b) => b.id).sort(), seeded.map((r) => r.id).sort(), 'list shows every backup');
    assert.deepEqual([...new Set(listed.map((b) => b.format))].sort(), ['repository', 'zip']);

    const everything = () => ({ zips: zipsIn(dir), snapshots: snapshotsIn(dir), packs: packsIn(dir) });
    const beforeRotation = everything();
    const dry = await lifeboat(['rotate', '--dir', dir, '--dry-run', '--json']);
    assert.equal(dry.code, 0, dry.stderr);
    const plan = JSON.parse(dry.stdout) as RotateJson;
    assert.equal(plan.dryRun, true);
    assert.equal(plan.refused, undefined);
    assert.deepEqual(plan.remove.map((r) => r.id).sort(), removed.map((r) => r.id).sort(), 'the plan removes the three oldest days, of both formats');
    assert.deepEqual(plan.keep.map((r) => r.id).sort(), kept.map((r) => r.id).sort());
    assert.equal(plan.prune?.packs, pruned.length, 'the dry run counts the packs prune would delete');
    assert.deepEqual(everything(), beforeRotation, 'a dry run deletes nothing');

    const real = await lifeboat(['rotate', '--dir', dir, '--json']);
    assert.equal(real.code, 0, real.stderr);
    const done = JSON.parse(real.stdout) as RotateJson;
    assert.deepEqual(done.remove.map((r) => r.id).sort(), plan.remove.map((r) => r.id).sort(), 'the rotation does what the dry run planned');
    assert.equal(done.prune?.packs, pruned.length);
    for (const r of removed) assert.equal(existsSync(r.path), false, `${r.id} (${r.format}) is deleted`);
    for (const p of pruned) assert.equal(existsSync(path.join(dir, p)), false, `${p} is pruned`);
    for (const r of kept) assert.ok(existsSync(r.path), `${r.id} (${r.format}) is kept`);
    const state = await assertRepoSound(dir, 'after rotation');
    assert.deepEqual(state.unreferenced, [], 'no pack nobody uses');
    assert.deepEqual(state.packs, [...keptPacks].sort(), 'the kept backups keep their packs, shared ones too');

    const after = JSON.parse((await lifeboat(['list', '--dir', dir, '--json'])).stdout) as { backups: { id: string; format: string }[] };
    assert.deepEqual(after.backups.map((b) => b.id).sort(), kept.map((r) => r.id).sort());
    assert.deepEqual([...new Set(after.backups.map((b) => b.format))].sort(), ['repository', 'zip']);
    const all = await lifeboat(['verify', '--all', '--dir', dir, '--json']);
    assert.equal(all.code, 0, all.stdout + all.stderr);
    assert.equal((JSON.parse(all.stdout) as { results: { ok: boolean }[] }).results.filter((r) => r.ok).length, kept.length);
    const store = new LocalDirStore(dir);
    for (const r of kept) {
      const c = await formatNamed(r.format).check(store, r.object, { deep: true });
      assert.ok(c.ok, `${r.id} (${r.format}) passes the format's deep check: ${c.problems.join('; ')}`);
    }
    for (const r of kept) {
      const to = path.join(t.dir, `cli-${r.id}.db`);
      const res = await lifeboat(['restore', r.path, '--to', to]);
      assert.equal(res.code, 0, res.stderr);
      assert.equal(sha256(to), r.manifest.image.sha256, `lifeboat restore of ${r.id} (${r.format}): its manifest's SHA-256`);
    }
    console.log(`repoRace: mixed store: ${seeded.length} backups (${v2(seeded).length} repository, ${seeded.length - v2(seeded).length} zip), rotation deleted ${removed.length} and pruned ${pruned.length} pack(s); ${kept.length} kept, verified and restored`);
  });
});

/**
 * Crash tests at every crash point (src/core/faults.ts) of a backup and of rotation's
 * deletions: the real CLI is run once with LIFEBOAT_CRASH_TRACE to learn its points, then
 * once per point k with LIFEBOAT_CRASH_AT=k, which SIGKILLs it right before the k-th
 * rename, unlink, fsync or truncate. After each kill the directory must hold only intact
 * archives that verify, a readable log and state, and a rerun must succeed and clean up.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { checkArchive } from '../../src/core/archive/archiveReader';
import { Catalog } from '../../src/core/catalog/catalog';
import { DEFAULT_SETTINGS, type Settings } from '../../src/core/config';
import { Engine } from '../../src/core/engine';
import { planRotation } from '../../src/core/retention/plan';
import { pinZip } from '../fixtures/backupFiles';
import { CLI, ensureBuilt, lifeboat } from '../fixtures/cli';
import { seedBackups } from '../fixtures/seedBackups';
import { makeDb, tempDir } from '../fixtures/sqlite';

interface Point {
  n: number;
  op: string;
  file: string;
}

/** The main thread's crash points in a trace file, in order (worker threads count their own). */
function mainPoints(trace: string): Point[] {
  if (!existsSync(trace)) return [];
  return readFileSync(trace, 'utf8')
    .split('\n')
    .filter(Boolean)
    .map((l) => {
      const m = /^(\d+) (\S+) (.*)$/.exec(l);
      assert.ok(m, `trace line: ${l}`);
      return { n: Number(m[1]), op: m[2], file: m[3] };
    })
    .filter((p) => !p.op.includes('@worker'));
}

/** Runs the CLI with crash-point variables; resolves with how it ended. */
function runCli(args: string[], env: Record<string, string>): Promise<{ code: number | null; signal: NodeJS.Signals | null; stderr: string }> {
  return new Promise((resolve) => {
    const p = spawn(process.execPath, [CLI, ...args], { env: { ...process.env, ...env }, stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    p.stderr.on('data', (d) => (stderr += d));
    p.on('close', (code, signal) => resolve({ code, signal, stderr }));
  });
}

const zipsIn = (dir: string) => (existsSync(dir) ? readdirSync(dir).filter((n) => n.endsWith('.zip')).sort() : []);
const idsIn = (dir: string) => zipsIn(dir).map((n) => n.slice(0, -'.zip'.length));

/** Every .zip at the top of `dir` is a complete, intact archive: nothing partial looks complete. */
async function assertIntact(dir: string, label: string): Promise<void> {
  for (const z of zipsIn(dir)) {
    const c = await checkArchive(path.join(dir, z));
    assert.ok(c.ok, `${label}: ${z} looks complete but is not: ${c.problems.join('; ')}`);
  }
}

/** The backup log and the state file read back after a kill. */
async function assertReadable(dir: string, label: string): Promise<void> {
  const catalog = new Catalog(dir);
  const entries = await catalog.log.read();
  assert.ok(entries.length > 0, `${label}: the backup log reads back`);
  await catalog.readState();
}

/** A per-kill summary of which operations the kills landed on. */
function opCounts(points: Point[]): string {
  const counts = new Map<string, number>();
  for (const p of points) counts.set(p.op, (counts.get(p.op) ?? 0) + 1);
  return [...counts].map(([op, n]) => `${n} ${op}`).join(', ');
}

before(() => ensureBuilt());

describe('crash tests: a kill at every crash point of backup and rotation', () => {
  const t = tempDir();
  after(() => t.cleanup());
  // Format v1: the crash points of a zip's publication and deletion (format v2's:
  // crashRepo.test.ts). The CLI reads the same from lifeboat.json beside the database.
  const settings: Settings = { ...DEFAULT_SETTINGS, format: 'zip' };
  before(() => pinZip(t.dir));

  test('backup: after a kill at each point, only intact archives that verify, a readable log, and a clean rerun', async () => {
    const db = path.join(t.dir, 'app.db');
    makeDb(db, { rows: 50 });
    const dir = path.join(t.dir, 'backups');
    const engine = new Engine();
    // A directory that already holds a backup, as the kill runs will find it.
    assert.equal((await engine.backup(db, { dir, kind: 'manual', settings })).verified, true);

    const trace0 = path.join(t.dir, 'backup-trace-0.txt');
    const traced = await runCli(['backup', db, '--dir', dir], { LIFEBOAT_CRASH_TRACE: trace0 });
    assert.equal(traced.code, 0, traced.stderr);
    const points = mainPoints(trace0);
    for (const op of ['truncate', 'fsync', 'rename', 'fsyncDir', 'unlink']) {
      assert.ok(points.some((p) => p.op === op), `a backup passes a ${op} point: ${opCounts(points)}`);
    }
    const publish = points.findIndex((p) => p.op === 'rename' && p.file.endsWith('.zip') && path.dirname(p.file) === dir);
    assert.ok(publish >= 0, 'the publishing rename is a crash point');

    const verified = new Set<string>();
    let landed = 0;
    for (let k = 1; k <= points.length; k++) {
      const label = `kill at point ${k} (${points[k - 1].op} ${path.basename(points[k - 1].file)})`;
      const trace = path.join(t.dir, `backup-trace-${k}.txt`);
      const before = new Set(idsIn(dir));
      const r = await runCli(['backup', db, '--dir', dir], { LIFEBOAT_CRASH_TRACE: trace, LIFEBOAT_CRASH_AT: String(k) });
      assert.equal(r.signal, 'SIGKILL', `${label}: the run was killed (exit ${r.code}: ${r.stderr})`);
      landed++;
      const seen = mainPoints(trace);
      assert.equal(seen.at(-1)?.n, k, `${label}: died at its k-th point`);
      assert.equal(seen.at(-1)?.op, points[k - 1].op, `${label}: the same point as in the traced run`);
      // Killed before the publishing rename: no new archive; after it: the new one is complete.
      const added = idsIn(dir).filter((id) => !before.has(id));
      assert.equal(added.length, k - 1 > publish ? 1 : 0, `${label}: new archives ${added.join(', ')}`);

      await assertIntact(dir, label);
      const { records, broken } = await engine.list(dir);
      assert.deepEqual(broken, [], `${label}: every archive lists`);
      for (const rec of records) {
        if (verified.has(rec.id)) continue;
        const v = await engine.verifyArchive(rec.path, settings);
        assert.ok(v.ok, `${label}: ${rec.id} verifies: ${v.problems.join('; ')}`);
        verified.add(rec.id);
      }
      await assertReadable(dir, label);

      // The rerun succeeds and removes what the killed run left in the temp folder, and its lock.
      const again = await engine.backup(db, { dir, kind: 'manual', settings });
      assert.equal(again.verified, true, `${label}: the rerun verified`);
      assert.deepEqual(readdirSync(path.join(dir, '.lifeboat', 'tmp')), [], `${label}: temp files cleaned by the rerun`);
      assert.equal(existsSync(path.join(dir, '.lifeboat', 'lock')), false, `${label}: no lock left`);
    }

    // Through the CLI at the end: every listed backup verifies.
    const all = await lifeboat(['verify', '--all', '--dir', dir]);
    assert.equal(all.code, 0, all.stdout + all.stderr);
    const listed = JSON.parse((await lifeboat(['list', '--dir', dir, '--json'])).stdout) as { backups: { verified: boolean }[] };
    assert.equal(listed.backups.length, zipsIn(dir).length);
    assert.ok(listed.backups.every((b) => b.verified));
    console.log(`backup crash points: ${points.length} (${opCounts(points)}); kills landed: ${landed}; ${listed.backups.length} archives, all verified, 0 partial`);
    assert.equal(landed, points.length);
  });

  test('rotation: after a kill at each point, the kept set is intact and verifies, and a rerun finishes the plan', async () => {
    const db = path.join(t.dir, 'rot.db');
    makeDb(db, { rows: 20 });
    // A template directory of real archives: a manual one and six daily scheduled ones.
    const template = path.join(t.dir, 'rot-template');
    const tplBackups = path.join(template, 'backups');
    const day = (d: number) => new Date(Date.UTC(2026, 2, d, 2, 0, 0));
    await seedBackups(db, tplBackups, [{ at: day(1), kind: 'manual' }, ...[2, 3, 4, 5, 6, 7].map((d) => ({ at: day(d), kind: 'scheduled' as const }))], settings);
    assert.equal(idsIn(tplBackups).length, 7, 'the template holds seven zips');
    const retention = { daily: 2, weekly: 0, monthly: 0, keepWithin: '', keepEventBackups: 10 };
    pinZip(template, { retention });
    const engine = new Engine();
    const plan = planRotation((await engine.list(tplBackups)).records, retention, new Date(), { force: true });
    const keep = plan.keep.map((k) => k.id).sort();
    const remove = plan.remove.map((r) => r.id).sort();
    assert.equal(keep.length, 3);
    assert.equal(remove.length, 4, 'four of six automatic backups go: more than half, so only with --force');

    const copy = (name: string) => {
      const root = path.join(t.dir, name);
      mkdirSync(root);
      cpSync(template, root, { recursive: true });
      return path.join(root, 'backups');
    };
    const dir0 = copy('rot-0');
    const trace0 = path.join(t.dir, 'rotate-trace-0.txt');
    const traced = await runCli(['rotate', '--dir', dir0, '--force'], { LIFEBOAT_CRASH_TRACE: trace0 });
    assert.equal(traced.code, 0, traced.stderr);
    assert.deepEqual(idsIn(dir0), keep, 'the traced run carries out the plan');
    const points = mainPoints(trace0);
    assert.equal(points.filter((p) => p.op === 'unlink' && p.file.endsWith('.zip')).length, remove.length, `one unlink point per deletion: ${opCounts(points)}`);

    const settingsFor: Settings = { ...settings, retention };
    let landed = 0;
    for (let k = 1; k <= points.length; k++) {
      const label = `kill at rotation point ${k} (${points[k - 1].op} ${path.basename(points[k - 1].file)})`;
      const dir = copy(`rot-${k}`);
      const trace = path.join(t.dir, `rotate-trace-${k}.txt`);
      const r = await runCli(['rotate', '--dir', dir, '--force'], { LIFEBOAT_CRASH_TRACE: trace, LIFEBOAT_CRASH_AT: String(k) });
      assert.equal(r.signal, 'SIGKILL', `${label}: the run was killed (exit ${r.code}: ${r.stderr})`);
      landed++;
      assert.equal(mainPoints(trace).at(-1)?.op, points[k - 1].op, `${label}: the same point as in the traced run`);

      // Only planned deletions happened; every kept backup is there, intact, and verifies.
      const present = idsIn(dir);
      assert.deepEqual(present.filter((id) => !remove.includes(id)), keep, `${label}: the kept set is intact`);
      await assertIntact(dir, label);
      for (const id of keep) {
        const v = await engine.verifyArchive(path.join(dir, `${id}.zip`), settingsFor);
        assert.ok(v.ok, `${label}: ${id} verifies: ${v.problems.join('; ')}`);
      }
      await assertReadable(dir, label);

      // A rerun finishes the plan; every deletion is in the log.
      const again = await engine.rotate(dir, settingsFor, { force: true });
      assert.deepEqual(again.refused, undefined);
      assert.deepEqual(idsIn(dir), keep, `${label}: the rerun finished the plan`);
      const logged = (await new Catalog(dir).log.read()).filter((e) => e.op === 'rotate.delete').map((e) => e.backup);
      for (const id of remove) assert.ok(logged.includes(id), `${label}: the deletion of ${id} is logged`);
      assert.equal(existsSync(path.join(dir, '.lifeboat', 'lock')), false, `${label}: no lock left`);
    }
    console.log(`rotation crash points: ${points.length} (${opCounts(points)}); kills landed: ${landed}; kept ${keep.length}, deleted ${remove.length} each time`);
    assert.equal(landed, points.length);
  });
});

// The scheduler's progress events (onDidProgress) with the real engine on a real small
// database: a scheduled backup and the restore test after it report a start, the engine's
// phases with bytes, and one result; a failed attempt and a failed restore test end failed.
import assert from 'node:assert/strict';
import { closeSync, mkdirSync, openSync, readSync, rmSync, statSync, writeFileSync, writeSync } from 'node:fs';
import path from 'node:path';
import { describe, it } from 'node:test';
import { DEFAULT_SETTINGS, cloneSettings, type Settings } from '../../src/core/config';
import { systemClock } from '../../src/core/context';
import { Engine } from '../../src/core/engine';
import { Scheduler, type ScheduleFailEvent, type ScheduleProgressEvent, type ScheduleRunEvent } from '../../src/core/schedule/scheduler';
import { backupIds, packFiles, snapshotIds } from '../fixtures/backupFiles';
import { makeDb, tempDir } from '../fixtures/sqlite';
import { VirtualClock } from '../fixtures/virtualClock';

const ZONE = 'Europe/Berlin';
// 01:59:30 in Berlin: the first check (30 s after start) falls on the 02:00 slot.
const START = '2026-06-09T23:59:30Z';

function settingsWith(p: Partial<Settings>): Settings {
  return { ...cloneSettings(DEFAULT_SETTINGS), skipUnchanged: false, restoreTest: false, ...p };
}

/** A scheduler over the real engine (its timestamps from the virtual clock), with every event collected. */
function setup(clock: VirtualClock, db: string, dir: string, settings: Settings) {
  // The engine's own waits (lock retries) are real; its timestamps come from the virtual clock.
  const engine = new Engine({ clock: { now: () => clock.now(), sleep: systemClock.sleep } });
  const s = new Scheduler({ engine, clock, settings, targets: [{ db, dir }], timeZone: ZONE });
  const progress: ScheduleProgressEvent[] = [];
  const runs: ScheduleRunEvent[] = [];
  const fails: ScheduleFailEvent[] = [];
  s.onDidProgress((e) => progress.push(e));
  s.onDidRun((e) => runs.push(e));
  s.onDidFail((e) => fails.push(e));
  const hook = clock.onSettle(() => s.whenIdle());
  return {
    s,
    progress,
    runs,
    fails,
    async stop() {
      await s.stop();
      hook.dispose();
    },
  };
}

/** The events grouped by run, in the order the runs started. */
function byRun(events: ScheduleProgressEvent[]): ScheduleProgressEvent[][] {
  const m = new Map<number, ScheduleProgressEvent[]>();
  for (const e of events) {
    if (!m.has(e.run)) m.set(e.run, []);
    m.get(e.run)!.push(e);
  }
  return [...m.values()];
}

/** Every run starts with `starting`, ends exactly once, last, and keeps its identity. */
function assertWellFormed(run: ScheduleProgressEvent[]): void {
  assert.equal(run[0].phase, 'starting');
  assert.equal(run[0].end, undefined);
  const ends = run.filter((e) => e.end);
  assert.equal(ends.length, 1, `one end in ${JSON.stringify(run.map((e) => e.phase))}`);
  assert.equal(run.at(-1), ends[0], 'the end is the last event');
  for (const e of run) {
    assert.equal(e.what, run[0].what);
    assert.equal(e.dir, run[0].dir);
    assert.equal(e.db, run[0].db);
  }
}

describe('scheduler progress events (real engine)', () => {
  // Format v2 (the default) and v1: the same phases, except that only v1's restore test
  // reports its format check ('check', the zip's bytes); v2 checks its pages as it rebuilds.
  for (const format of ['repository', 'zip'] as const)
  it(`a scheduled backup and the restore test after it report a start, the engine phases with bytes, and their result (${format})`, async () => {
    const t = tempDir();
    try {
      const db = path.join(t.dir, 'app.db');
      makeDb(db, { rows: 400 });
      const dir = path.join(t.dir, 'backups');
      const clock = new VirtualClock(START);
      const h = setup(clock, db, dir, settingsWith({ restoreTest: true, format }));
      h.s.start();
      await clock.runUntil('2026-06-10T00:01:00Z');
      await h.stop();
      assert.deepEqual(h.fails, []);
      assert.equal(h.runs.length, 1);
      assert.equal(h.runs[0].record.format, format);
      const runs = byRun(h.progress);
      assert.deepEqual(
        runs.map((r) => r[0].what),
        ['backup', 'restoreTest'],
      );
      runs.forEach(assertWellFormed);
      assert.notEqual(runs[0][0].run, runs[1][0].run);

      const [backup, test] = runs;
      assert.equal(backup[0].db, db);
      assert.equal(backup[0].dir, dir);
      assert.equal(backup[0].slot?.getTime(), h.runs[0].slot.getTime());
      assert.equal(backup[0].catchUp, false);
      const phases = new Set(backup.map((e) => e.phase));
      for (const p of ['snapshot', 'compress', 'verify', 'readback']) assert.ok(phases.has(p), `backup phase ${p} in ${[...phases].join(', ')}`);
      const bytes = backup.filter((e) => e.phase === 'compress' && e.total > 0);
      assert.ok(bytes.length > 0, 'compression reports bytes');
      assert.ok(bytes.every((e) => e.done <= e.total));
      assert.equal(bytes.at(-1)!.done, bytes.at(-1)!.total, 'compression reaches 100 %');
      const end = backup.at(-1)!.end!;
      assert.equal(end.ok, true);
      assert.ok(end.message.includes(h.runs[0].record.id), end.message);
      assert.match(end.message, /verified/);

      assert.equal(test[0].db, undefined);
      assert.equal(test[0].dir, dir);
      const testPhases = new Set(test.map((e) => e.phase));
      for (const p of [...(format === 'zip' ? ['check'] : []), 'extract', 'verify']) assert.ok(testPhases.has(p), `restore test phase ${p} in ${[...testPhases].join(', ')}`);
      assert.ok(test.some((e) => e.phase === 'extract' && e.total > 0 && e.done === e.total), 'extraction reports bytes to the end');
      assert.deepEqual(test.at(-1)!.end, { ok: true, message: `restore test of ${path.basename(h.runs[0].record.path)} passed` });
    } finally {
      t.cleanup();
    }
  });

  it('each failed attempt into an unusable directory gets a start and a failed end; a damaged archive fails its restore test', async () => {
    const t = tempDir();
    try {
      const db = path.join(t.dir, 'app.db');
      makeDb(db, { rows: 200 });
      const dir = path.join(t.dir, 'backups');
      writeFileSync(dir, 'not a directory');
      const clock = new VirtualClock(START);
      const h = setup(clock, db, dir, settingsWith({}));
      h.s.start();
      // The first attempt at 02:00 and the retry at 02:05.
      await clock.runUntil('2026-06-10T00:06:00Z');
      assert.equal(h.fails.length, 2);
      let runs = byRun(h.progress);
      assert.equal(runs.length, 2, 'one run per attempt');
      runs.forEach(assertWellFormed);
      for (const [i, r] of runs.entries()) {
        assert.equal(r[0].what, 'backup');
        assert.equal(r.length, 2, 'nothing between start and end: the engine never ran');
        assert.equal(r[1].end!.ok, false);
        assert.equal(r[1].end!.message, h.fails[i].error.message);
        assert.ok(r[1].end!.message.includes(dir), r[1].end!.message);
      }

      // Repaired: the 02:35 retry backs up; then the archive is damaged and the restore test runs.
      rmSync(dir);
      mkdirSync(dir);
      await clock.runUntil('2026-06-10T00:36:00Z');
      assert.equal(h.runs.length, 1);
      runs = byRun(h.progress);
      assert.equal(runs.length, 3);
      assert.equal(runs[2].at(-1)!.end!.ok, true);
      // Format v2, the default: the backup's pages are in one pack; damage it.
      assert.equal(snapshotIds(dir).length, 1);
      const packs = packFiles(dir);
      assert.equal(packs.length, 1, packs.join(', '));
      flipMiddleBytes(path.join(dir, 'packs', packs[0]));
      h.s.updateSettings(settingsWith({ restoreTest: true }));
      await clock.advance(1000);
      await h.stop();
      runs = byRun(h.progress);
      assert.equal(runs.length, 4);
      const test = runs[3];
      assertWellFormed(test);
      assert.equal(test[0].what, 'restoreTest');
      const end = test.at(-1)!.end!;
      assert.equal(end.ok, false);
      assert.match(end.message, /restore test of .* failed/);
      assert.equal(h.fails.at(-1)?.what, 'restoreTest');
      assert.equal(h.fails.at(-1)?.error.message, end.message);
    } finally {
      t.cleanup();
    }
  });

  it('a progress listener that throws does not fail the backup', async () => {
    const t = tempDir();
    try {
      const db = path.join(t.dir, 'app.db');
      makeDb(db, { rows: 50 });
      const dir = path.join(t.dir, 'backups');
      const clock = new VirtualClock(START);
      const h = setup(clock, db, dir, settingsWith({}));
      h.s.onDidProgress(() => {
        throw new Error('a broken listener');
      });
      h.s.start();
      await clock.runUntil('2026-06-10T00:01:00Z');
      await h.stop();
      assert.deepEqual(h.fails, []);
      assert.equal(h.runs.length, 1);
      assert.equal(h.runs[0].verified, true);
      assert.equal(backupIds(dir).length, 1);
    } finally {
      t.cleanup();
    }
  });
});

/** Inverts 64 bytes in the middle of `file` (inside a pack's compressed pages). */
function flipMiddleBytes(file: string): void {
  const at = Math.floor(statSync(file).size / 2);
  const fd = openSync(file, 'r+');
  try {
    const buf = Buffer.alloc(64);
    readSync(fd, buf, 0, buf.length, at);
    for (let i = 0; i < buf.length; i++) buf[i] ^= 0xff;
    writeSync(fd, buf, 0, buf.length, at);
  } finally {
    closeSync(fd);
  }
}

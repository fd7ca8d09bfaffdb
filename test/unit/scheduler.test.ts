import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readdirSync, rmSync, writeFileSync, mkdirSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, describe, it } from 'node:test';
import { Catalog } from '../../src/core/catalog/catalog';
import type { LogEntry } from '../../src/core/catalog/backupLog';
import { DEFAULT_SETTINGS, cloneSettings, type Settings } from '../../src/core/config';
import { systemClock, type Clock } from '../../src/core/context';
import { Engine, type BackupOptions, type BackupResult } from '../../src/core/engine';
import { BackupError } from '../../src/core/errors';
import type { BackupRecord, SourceStateRecord } from '../../src/core/model';
import { SlotClaims } from '../../src/core/schedule/claims';
import { Scheduler, type ScheduleFailEvent, type ScheduleRunEvent, type SchedulerEngine, type SchedulerOptions } from '../../src/core/schedule/scheduler';
import { dailySchedule, formatSlot, slotsBetween } from '../../src/core/schedule/slots';
import { backupIds, snapshotIds } from '../fixtures/backupFiles';
import { makeRecord } from '../fixtures/backupRecords';
import { makeDb, tempDir } from '../fixtures/sqlite';
import { VirtualClock } from '../fixtures/virtualClock';

const MIN = 60_000;
const HOUR = 60 * MIN;
const DAY = 24 * HOUR;

/** A temp folder; tmpfs when there is one, since the long simulations take the directory lock thousands of times. */
function scratch(): { dir: string; cleanup: () => void } {
  const base = existsSync('/dev/shm') ? '/dev/shm' : os.tmpdir();
  const dir = mkdtempSync(path.join(base, 'lifeboat-sched-'));
  return { dir, cleanup: () => rmSync(dir, { recursive: true, force: true }) };
}

const scratches: (() => void)[] = [];
after(() => scratches.forEach((c) => c()));
function newDir(): string {
  const s = scratch();
  scratches.push(s.cleanup);
  return s.dir;
}

interface Call {
  db: string;
  kind: string;
  at: Date;
  trigger?: string;
  settings: Settings;
}

/**
 * A fast engine port for long simulations: backups are records in memory (the schedule
 * logic is what these tests exercise). The catalog, its lock, log and claims are real.
 */
class MemoryEngine implements SchedulerEngine {
  records: BackupRecord[] = [];
  calls: Call[] = [];
  restoreTests: Date[] = [];
  /** Return an error to make the next backups fail. */
  failWith: ((call: Call) => BackupError | undefined) | undefined;
  /** When set, a backup waits for it (or for its abort signal). */
  gate: Promise<void> | undefined;
  state: SourceStateRecord | undefined;
  private catalogs = new Map<string, Catalog>();
  restoreTest?: (dir: string, settings: Settings) => Promise<unknown>;

  constructor(private readonly clock: Clock) {}

  async backup(db: string, o: BackupOptions): Promise<BackupResult> {
    const call: Call = { db, kind: o.kind, at: this.clock.now(), trigger: o.trigger, settings: o.settings };
    this.calls.push(call);
    const err = this.failWith?.(call);
    if (err) throw err;
    if (this.gate) {
      const signal = o.signal;
      await new Promise<void>((resolve, reject) => {
        const onAbort = () => reject(new BackupError('cancelled', `backup of ${db} cancelled`));
        if (signal?.aborted) return onAbort();
        signal?.addEventListener('abort', onAbort, { once: true });
        this.gate!.then(resolve);
      });
    }
    const created = this.clock.now();
    const id = `${path.basename(db)}-${created.getTime()}-${o.kind}-${this.records.length}`;
    const r = makeRecord(id, created.toISOString(), { kind: o.kind, db });
    if (this.state) r.manifest.source.state = { ...this.state };
    this.records.push(r);
    return { record: r, verified: true, sourceDamaged: false };
  }

  async list(_dir: string, db?: string): Promise<{ records: BackupRecord[] }> {
    return { records: this.records.filter((r) => !db || r.manifest.source.path === db) };
  }

  catalog(dir: string): Catalog {
    let c = this.catalogs.get(dir);
    if (!c) this.catalogs.set(dir, (c = new Catalog(dir, { clock: this.clock })));
    return c;
  }
}

function settingsWith(p: Partial<Settings>): Settings {
  return { ...cloneSettings(DEFAULT_SETTINGS), skipUnchanged: false, restoreTest: false, ...p };
}

/** Builds a scheduler on a virtual clock, with events collected and the clock settling on it. */
function harness(clock: VirtualClock, engine: SchedulerEngine, o: Partial<SchedulerOptions> & { settings: Settings; db: string; dir: string }) {
  const runs: ScheduleRunEvent[] = [];
  const fails: ScheduleFailEvent[] = [];
  const s = new Scheduler({ engine, clock, targets: [{ db: o.db, dir: o.dir }], sourceState: async () => ({ size: 1, mtimeMs: 1, changeCounter: 1, walSize: 0, walMtimeMs: 0 }), ...o });
  s.onDidRun((e) => runs.push(e));
  s.onDidFail((e) => fails.push(e));
  const hook = clock.onSettle(() => s.whenIdle());
  return {
    s,
    runs,
    fails,
    async stop() {
      await s.stop();
      hook.dispose();
    },
  };
}

async function logOf(dir: string): Promise<LogEntry[]> {
  return new Catalog(dir).log.read();
}

/** A seeded PRNG (LCG), so that a failing simulation can be replayed. */
function prng(seed: number): () => number {
  let x = seed >>> 0;
  return () => {
    x = (Math.imul(x, 1664525) + 1013904223) >>> 0;
    return x / 2 ** 32;
  };
}

describe('scheduler: 400 days with the process stopped and started', () => {
  for (const [zone, time, seed] of [
    ['Europe/Berlin', '02:00', 11],
    ['America/New_York', '01:30', 29],
  ] as const) {
    it(`${zone} at ${time}: one backup per slot the process was up for, one catch-up after each gap`, async () => {
      const dir = newDir();
      const db = path.join(dir, 'app.db');
      const start = Date.parse('2026-01-05T09:17:00Z');
      const end = start + 400 * DAY;
      const rnd = prng(seed);
      // Up for 1 h to 20 days, down for 1 h to 4 days, boundaries on whole minutes.
      const runsUp: [number, number][] = [];
      for (let t = start; t < end; ) {
        const up = Math.round((HOUR + rnd() * 20 * DAY) / MIN) * MIN;
        runsUp.push([t, Math.min(end, t + up)]);
        t += up + Math.round((HOUR + rnd() * 4 * DAY) / MIN) * MIN;
      }
      const clock = new VirtualClock(start);
      const engine = new MemoryEngine(clock);
      const settings = settingsWith({ backupTime: time });
      const events: ScheduleRunEvent[] = [];
      for (const [a, b] of runsUp) {
        await clock.runUntil(a);
        const h = harness(clock, engine, { settings, db, dir, timeZone: zone });
        h.s.start();
        await clock.runUntil(b);
        await h.stop();
        events.push(...h.runs);
        assert.equal(h.fails.length, 0, h.fails.map((f) => f.error.message).join('; '));
        assert.ok(h.runs.filter((r) => r.catchUp).length <= 1, 'more than one catch-up in one run of the process');
      }

      // The model: slot S is served when a check falls in [S, next slot) while the process
      // is up; the check happens at S itself, or 30 s after start for a slot already past.
      const sched = dailySchedule(time, zone);
      const slots = slotsBetween(sched, new Date(start - DAY), new Date(end + 2 * DAY), 1000).map((x) => x.getTime());
      const expected: { at: number; slot: number }[] = [];
      for (let i = 0; i < slots.length - 1; i++) {
        const [S, next] = [slots[i], slots[i + 1]];
        for (const [a, b] of runsUp) {
          const at = Math.max(a + 30_000, S);
          if (at <= b && at < next) {
            expected.push({ at, slot: S });
            break;
          }
        }
      }
      const got = engine.calls.map((c) => c.at.getTime());
      assert.equal(engine.calls.every((c) => c.kind === 'scheduled'), true);
      assert.deepEqual(
        got.map((t) => new Date(t).toISOString()),
        expected.map((e) => new Date(e.at).toISOString()),
      );
      // Each served local day appears once: no day twice, including both DST changes.
      const days = engine.calls.map((c) => formatSlot(c.at, zone).slice(0, 10));
      const slotDays = expected.map((e) => formatSlot(new Date(e.slot), zone).slice(0, 10));
      assert.equal(new Set(slotDays).size, slotDays.length);
      assert.ok(days.length > 250, `only ${days.length} backups`);
      const catchUps = expected.filter((e) => e.at - e.slot > 60_000);
      assert.equal(events.filter((e) => e.catchUp).length, catchUps.length);
      assert.ok(catchUps.length >= 10, `only ${catchUps.length} catch-ups: the simulation has too few gaps`);
      const missed = (await logOf(dir)).filter((e) => e.op === 'schedule.missed');
      assert.equal(missed.length, catchUps.length);
      process.stdout.write(`# ${zone} ${time}: ${runsUp.length} runs of the process, ${engine.calls.length} backups, ${catchUps.length} catch-ups\n`);
      // Every catch-up names the slots between the previous backup and itself.
      for (const [i, e] of expected.entries()) {
        if (e.at - e.slot <= 60_000) continue;
        const prev = i > 0 ? expected[i - 1].at : -Infinity;
        const count = slots.filter((s) => s > prev && s <= e.at).length;
        const ev = events.find((x) => x.slot.getTime() === e.slot)!;
        assert.equal(ev.missedCount, Number.isFinite(prev) ? count : 1, `catch-up at ${new Date(e.at).toISOString()}`);
      }
      // On-time backups run at the set time; only the spring-forward day's 02:00 moves to 03:00.
      const odd = expected.filter((e) => e.at === e.slot).map((e) => formatSlot(new Date(e.at), zone)).filter((x) => x.slice(11) !== time);
      assert.ok(odd.every((x) => time === '02:00' && x.slice(11) === '03:00'), odd.join(', '));
      assert.ok(odd.length <= 1, odd.join(', '));
    });
  }
});

describe('scheduler: sleep, clock jumps, retries, settings', () => {
  const zone = 'Europe/Berlin';

  it('a laptop asleep over 02:00 catches up once on wake, naming the missed slot', async () => {
    const dir = newDir();
    const db = path.join(dir, 'app.db');
    const clock = new VirtualClock('2026-06-10T18:00:00Z'); // 20:00 CEST
    const engine = new MemoryEngine(clock);
    const h = harness(clock, engine, { settings: settingsWith({}), db, dir, timeZone: zone });
    h.s.start();
    await clock.runUntil('2026-06-10T21:00:00Z'); // 23:00
    assert.equal(engine.calls.length, 1, 'the first start catches up on the 10th 02:00');
    // Suspend from 23:00 to 07:00: the wall clock jumps, no timer fires.
    clock.jump(8 * HOUR);
    assert.equal(engine.calls.length, 1);
    await clock.advance(5 * MIN);
    assert.equal(engine.calls.length, 2, 'one catch-up after waking');
    const wake = engine.calls[1].at.getTime();
    assert.ok(wake > Date.parse('2026-06-11T05:00:00Z') && wake <= Date.parse('2026-06-11T05:05:00Z'), engine.calls[1].at.toISOString());
    const ev = h.runs[1];
    assert.equal(ev.catchUp, true);
    assert.deepEqual(ev.missed.map((m) => formatSlot(m, zone)), ['2026-06-11 02:00']);
    await clock.runUntil('2026-06-12T06:00:00Z');
    assert.deepEqual(engine.calls.map((c) => c.at.toISOString()).slice(2), ['2026-06-12T00:00:00.000Z']);
    await h.stop();
    const missed = (await logOf(dir)).filter((e) => e.op === 'schedule.missed');
    assert.equal(missed.length, 2);
    assert.match(missed[1].message, /missed 1 daily 02:00 slot \(2026-06-11 02:00\); one catch-up backup now/);
  });

  it('a clock set backwards does not repeat a slot; set forwards, it catches up once', async () => {
    const dir = newDir();
    const db = path.join(dir, 'app.db');
    const clock = new VirtualClock('2026-06-09T22:00:00Z'); // 00:00 CEST on the 10th
    const engine = new MemoryEngine(clock);
    // Seed: yesterday's slot is served so that the start is not a catch-up.
    engine.records.push(makeRecord('seed', '2026-06-09T00:00:00.000Z', { db }));
    const h = harness(clock, engine, { settings: settingsWith({}), db, dir, timeZone: zone });
    h.s.start();
    await clock.runUntil('2026-06-10T01:00:00Z'); // 03:00
    assert.deepEqual(engine.calls.map((c) => c.at.toISOString()), ['2026-06-10T00:00:00.000Z']);
    clock.jump(-2 * HOUR); // back to 01:00: 02:00 comes round again
    await clock.advance(3 * HOUR);
    assert.equal(engine.calls.length, 1, 'the 02:00 slot ran twice after the clock went back');
    clock.jump(-3 * DAY); // far back: every slot in sight is older than the newest backup
    await clock.advance(2 * DAY);
    assert.equal(engine.calls.length, 1, 'slots before the newest backup must not run');
    await clock.advance(2 * DAY); // the wall clock passes the 10th again (done) and the 11th 02:00 (due)
    assert.deepEqual(engine.calls.map((c) => c.at.toISOString()).slice(1), ['2026-06-11T00:00:00.000Z']);
    const before = engine.calls.length;
    clock.jump(3 * DAY + 5 * HOUR); // forwards over three slots
    await clock.advance(5 * MIN);
    assert.equal(engine.calls.length, before + 1, 'one catch-up for three missed slots');
    assert.equal(h.runs.at(-1)!.missedCount, 3);
    await h.stop();
    assert.equal(h.fails.length, 0);
  });

  it('a failing backup retries after 5 min, 30 min and 2 h, then waits for the next slot', async () => {
    const dir = newDir();
    const db = path.join(dir, 'app.db');
    const clock = new VirtualClock('2026-06-09T23:00:00Z'); // 01:00 CEST
    const engine = new MemoryEngine(clock);
    engine.records.push(makeRecord('seed', '2026-06-09T00:00:00.000Z', { db }));
    let failing = true;
    engine.failWith = () => (failing ? new BackupError('diskFull', `${dir}: no space left on device`) : undefined);
    const h = harness(clock, engine, { settings: settingsWith({}), db, dir, timeZone: zone });
    h.s.start();
    await clock.runUntil('2026-06-10T23:00:00Z');
    const local = (d: Date) => formatSlot(d, zone).slice(11);
    assert.deepEqual(engine.calls.map((c) => local(c.at)), ['02:00', '02:05', '02:35', '04:35']);
    assert.deepEqual(h.fails.map((f) => [f.attempt, f.retryAt ? local(f.retryAt) : null, f.gaveUp]), [
      [1, '02:05', false],
      [2, '02:35', false],
      [3, '04:35', false],
      [4, null, true],
    ]);
    assert.ok(h.fails.every((f) => f.what === 'backup' && BackupError.is(f.error, 'diskFull')));
    failing = false;
    await clock.runUntil('2026-06-11T01:00:00Z');
    assert.equal(engine.calls.length, 5);
    assert.equal(local(engine.calls[4].at), '02:00');
    assert.equal(h.runs.length, 1);
    await h.stop();
    const retries = (await logOf(dir)).filter((e) => e.op === 'schedule.retry');
    assert.equal(retries.length, 4);
    assert.match(retries[0].message, /retry 1 of 3 at 2026-06-10 02:05/);
    assert.match(retries[3].message, /failed 4 times .*next try at the next slot, 2026-06-11 02:00/);
  });

  it('settings changed while a backup runs: the running one finishes with its settings, the new ones apply after it', async () => {
    const dir = newDir();
    const db = path.join(dir, 'app.db');
    const clock = new VirtualClock('2026-06-09T23:00:00Z');
    const engine = new MemoryEngine(clock);
    engine.records.push(makeRecord('seed', '2026-06-09T00:00:00.000Z', { db }));
    let open!: () => void;
    engine.gate = new Promise((r) => (open = r));
    const h = harness(clock, engine, { settings: settingsWith({ compressionLevel: 1 }), db, dir, timeZone: zone });
    h.s.start();
    await clock.runUntil('2026-06-09T23:59:00Z');
    // advance() settles on whenIdle(), which waits for the gated backup: don't await it yet.
    const pending = clock.advance(MIN);
    while (engine.calls.length === 0) await new Promise((r) => setImmediate(r));
    assert.equal(engine.calls.length, 1);
    h.s.updateSettings(settingsWith({ backupTime: '01:00', compressionLevel: 9 }));
    h.s.updateSettings(settingsWith({ backupTime: '01:00', compressionLevel: 9, cron: '' }));
    open();
    engine.gate = undefined;
    await pending;
    assert.equal(h.runs.length, 1, 'the running backup finished');
    assert.equal(engine.calls[0].settings.compressionLevel, 1, 'it kept the settings it started with');
    await clock.runUntil('2026-06-11T06:00:00Z');
    // The new time: 01:00 on the 11th; 02:00 on the 10th was the backup that ran.
    assert.deepEqual(engine.calls.map((c) => formatSlot(c.at, zone)), ['2026-06-10 02:00', '2026-06-11 01:00']);
    assert.equal(engine.calls[1].settings.compressionLevel, 9);
    // A change while idle applies at once: a cron whose latest slot is newer than the last backup.
    await clock.runUntil('2026-06-11T08:00:00Z'); // 10:00 CEST
    h.s.updateSettings(settingsWith({ cron: '0 */4 * * *' }));
    await clock.advance(0);
    assert.equal(formatSlot(engine.calls.at(-1)!.at, zone), '2026-06-11 10:00');
    // Disabled: nothing more, for days.
    h.s.updateSettings(settingsWith({ enabled: false }));
    const n = engine.calls.length;
    await clock.advance(3 * DAY);
    assert.equal(engine.calls.length, n);
    await h.stop();
    assert.equal(h.fails.length, 0);
  });

  it('an unchanged database settles the slot once, logged, and writes nothing; skipUnchanged off backs up anyway', async () => {
    const dir = newDir();
    const db = path.join(dir, 'app.db');
    const clock = new VirtualClock('2026-06-09T23:00:00Z');
    const engine = new MemoryEngine(clock);
    let state: SourceStateRecord = { size: 4096, mtimeMs: 5, changeCounter: 2, walSize: 0, walMtimeMs: 0 };
    engine.state = state;
    const h = harness(clock, engine, { settings: settingsWith({ skipUnchanged: true }), db, dir, timeZone: zone, sourceState: async () => state });
    h.s.start();
    await clock.runUntil('2026-06-10T01:00:00Z');
    assert.equal(engine.calls.length, 1, 'the first backup has nothing to compare with');
    await clock.runUntil('2026-06-11T23:00:00Z');
    assert.equal(engine.calls.length, 1, 'unchanged: no new backup');
    assert.deepEqual(h.runs.map((r) => r.outcome), ['backedUp', 'unchanged', 'unchanged'], 'one per slot (10th, 11th), not one per poll');
    state = { ...state, changeCounter: 3, mtimeMs: 6 };
    engine.state = state;
    await clock.runUntil('2026-06-12T01:00:00Z');
    assert.equal(engine.calls.length, 2, 'changed: backed up');
    h.s.updateSettings(settingsWith({ skipUnchanged: false }));
    await clock.runUntil('2026-06-13T01:00:00Z');
    assert.equal(engine.calls.length, 3, 'skipUnchanged off: backed up although unchanged');
    await h.stop();
    const unchanged = (await logOf(dir)).filter((e) => e.op === 'backup.unchanged');
    assert.equal(unchanged.length, 2, 'polls every 5 minutes must not log "unchanged" again');
    // A second process (a new scheduler) sees the mark and does not redo the check.
    const marks = await new SlotClaims(new Catalog(dir)).read();
    assert.equal(marks.marks[db]?.outcome, 'unchanged');
  });

  it('two schedulers on one directory make one backup per slot', async () => {
    const dir = newDir();
    const db = path.join(dir, 'app.db');
    const clock = new VirtualClock('2026-06-09T23:00:00Z');
    const engine = new MemoryEngine(clock);
    const a = harness(clock, engine, { settings: settingsWith({}), db, dir, timeZone: zone, claims: { pid: process.pid, host: 'a' } });
    const b = harness(clock, engine, { settings: settingsWith({}), db, dir, timeZone: zone, claims: { pid: process.pid, host: 'b' } });
    a.s.start();
    b.s.start();
    await clock.runUntil('2026-06-16T23:00:00Z');
    await a.stop();
    await b.stop();
    // The start's catch-up (for the 9th) and then each slot once, whichever process took it.
    const expected = ['2026-06-10 01:00', ...[10, 11, 12, 13, 14, 15, 16].map((d) => `2026-06-${d} 02:00`)];
    assert.deepEqual(engine.calls.map((c) => formatSlot(c.at, zone)), expected);
    assert.equal(a.runs.length + b.runs.length, 8);
    assert.deepEqual(await new SlotClaims(new Catalog(dir)).read().then((f) => f.claims), {});
  });

  it('stop() abandons a running backup through its signal and releases the claim', async () => {
    const dir = newDir();
    const db = path.join(dir, 'app.db');
    const clock = new VirtualClock('2026-06-09T23:59:00Z');
    const engine = new MemoryEngine(clock);
    engine.gate = new Promise(() => undefined);
    const s = new Scheduler({ engine, clock, settings: settingsWith({}), targets: [{ db, dir }], timeZone: zone, sourceState: async () => ({ size: 1, mtimeMs: 1, changeCounter: 1, walSize: 0, walMtimeMs: 0 }) });
    const fails: ScheduleFailEvent[] = [];
    s.onDidFail((e) => fails.push(e));
    const check = s.checkNow();
    while (engine.calls.length === 0) await new Promise((r) => setTimeout(r, 5));
    const claims = new SlotClaims(new Catalog(dir));
    assert.equal(Object.keys((await claims.read()).claims).length, 1, 'the slot is claimed while its backup runs');
    await s.stop();
    const [r] = await check;
    assert.equal(r.status, 'cancelled');
    assert.equal(fails.length, 0, 'a cancelled backup is not a failure to retry');
    assert.deepEqual((await claims.read()).claims, {});
    assert.deepEqual(await s.checkNow(), []);
  });

  it('restore tests run weekly, from the newest one recorded in the catalog state', async () => {
    const dir = newDir();
    const db = path.join(dir, 'app.db');
    const clock = new VirtualClock('2026-06-09T23:00:00Z');
    const engine = new MemoryEngine(clock);
    engine.restoreTest = async (d) => {
      engine.restoreTests.push(clock.now());
      const newest = engine.records.at(-1)!;
      await engine.catalog(d).updateState(newest.id, (s) => (s.lastRestoreTest = { at: clock.now().toISOString(), ok: true }));
      return { ok: true };
    };
    const h = harness(clock, engine, { settings: settingsWith({ restoreTest: true }), db, dir, timeZone: zone });
    h.s.start();
    await clock.runUntil('2026-07-09T23:00:00Z');
    await h.stop();
    // The first right after the start's catch-up backup; then each week at the first
    // check (the 5-minute polls line up on the 02:00 slot) at or after the due time.
    assert.deepEqual(
      engine.restoreTests.map((t) => formatSlot(t, zone)),
      ['2026-06-10 01:00', '2026-06-17 01:05', '2026-06-24 01:05', '2026-07-01 01:05', '2026-07-08 01:05'],
    );
    assert.equal(h.fails.length, 0);
  });

  it('invalid settings are reported once and schedule nothing; fixing them resumes', async () => {
    const dir = newDir();
    const db = path.join(dir, 'app.db');
    const clock = new VirtualClock('2026-06-09T23:00:00Z');
    const engine = new MemoryEngine(clock);
    const h = harness(clock, engine, { settings: settingsWith({ cron: '61 * * * *' }), db, dir, timeZone: zone });
    h.s.start();
    await clock.advance(2 * DAY);
    assert.equal(engine.calls.length, 0);
    assert.equal(h.fails.length, 1);
    assert.equal(h.fails[0].what, 'schedule');
    assert.ok(BackupError.is(h.fails[0].error, 'badConfig'));
    h.s.updateSettings(settingsWith({}));
    await clock.advance(0);
    assert.equal(engine.calls.length, 1);
    await h.stop();
  });
});

describe('scheduler with the real engine', () => {
  const zone = 'Europe/Berlin';
  it('retries at 5 and 30 minutes while the directory is a regular file, and succeeds at 2 h once it is fixed', async () => {
    const t = tempDir();
    try {
      const db = path.join(t.dir, 'app.db');
      makeDb(db, { rows: 50 });
      const dir = path.join(t.dir, 'backups');
      writeFileSync(dir, 'not a directory');
      // The first check (30 s after start) falls on the 02:00 slot itself.
      const clock = new VirtualClock('2026-06-09T23:59:30Z');
      // The engine's own waits (lock retries) are real; its timestamps come from the virtual clock.
      const engine = new Engine({ clock: { now: () => clock.now(), sleep: systemClock.sleep } });
      const h = harness(clock, engine, { settings: settingsWith({ skipUnchanged: true }), db, dir, timeZone: zone, sourceState: undefined });
      h.s.start();
      await clock.runUntil('2026-06-10T00:36:00Z');
      const local = (d: Date) => formatSlot(d, zone).slice(11);
      assert.deepEqual(h.fails.map((f) => [f.attempt, f.error.reason, f.retryAt && local(f.retryAt)]), [
        [1, 'unwritable', '02:05'],
        [2, 'unwritable', '02:35'],
        [3, 'unwritable', '04:35'],
      ]);
      assert.ok(h.fails.every((f) => f.error.message.includes(dir)), h.fails[0].error.message);
      rmSync(dir);
      mkdirSync(dir);
      await clock.runUntil('2026-06-10T02:34:00Z');
      assert.equal(h.runs.length, 0, 'no attempt between retries');
      await clock.runUntil('2026-06-10T02:36:00Z');
      assert.equal(h.runs.length, 1);
      assert.equal(local(h.runs[0].slot), '02:00');
      assert.equal(h.runs[0].verified, true);
      assert.equal(h.runs[0].record.manifest.kind, 'scheduled');
      assert.equal(formatSlot(new Date(h.runs[0].record.manifest.created), zone), '2026-06-10 04:35');
      // Format v2, the default: one snapshot manifest.
      assert.deepEqual(snapshotIds(dir), [h.runs[0].record.id]);
      assert.equal(backupIds(dir).length, 1);
      // The database is unchanged: the next day's slot is settled without a second backup.
      await clock.runUntil('2026-06-11T00:01:00Z');
      assert.equal(h.runs[1]?.outcome, 'unchanged');
      assert.equal(backupIds(dir).length, 1);
      await h.stop();
      assert.equal(h.fails.length, 3);
      assert.deepEqual(readdirSync(path.join(dir, '.lifeboat', 'tmp')), []);
    } finally {
      t.cleanup();
    }
  });
});

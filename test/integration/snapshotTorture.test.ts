/**
 * Torture: many snapshots of a database that another process (a real sqlite3 shell) is
 * committing to, and checkpointing, as fast as it can. Every image must be a committed
 * state: it passes integrity_check and its ledger row count equals counter.n, which each
 * transaction updates together with the ledger.
 *
 * Two paths, each test naming its own and failing if another one ran:
 * - node:sqlite (`backup()` under SQLite's read lock), where the runtime has it: against
 *   a writer that never pauses, every snapshot succeeds (none busy).
 * - the lock-free reader (the fallback: Node 20, LIFEBOAT_SQLITE=fallback): a read that
 *   overlapped a change is retried, and 'busy' is allowed where it loses every race.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { isDeepStrictEqual } from 'node:util';
import path from 'node:path';
import { after, test } from 'node:test';
import type { Clock } from '../../src/core/context';
import { BackupError } from '../../src/core/errors';
import { snapshotDatabase } from '../../src/core/snapshot/liveSnapshot';
import type { SnapshotStrategy } from '../../src/core/snapshot/snapshot';
import { nodeSqlite, nodeSqliteUnavailableReason } from '../../src/core/sqlite/nodeSqlite';
import { readSourceState } from '../../src/core/sqliteFile';
import { query, tempDir } from '../fixtures/sqlite';
import { type WriterOptions, createLedger, startWriter } from '../fixtures/writer';

const tmp = tempDir('lifeboat-torture-');
after(() => tmp.cleanup());

const rt = nodeSqlite();
/** The node:sqlite tortures run where the runtime has backup(); the reader's where it has no node:sqlite (the fallback run). */
const onNodeSqlite = rt?.hasBackup ? {} : { skip: `node:sqlite backup() is not in this runtime (${rt ? 'no backup()' : nodeSqliteUnavailableReason()})` };
const onFallback = rt ? { skip: `node:sqlite loads here (SQLite ${rt.version}); the reader's tortures run in the fallback run (LIFEBOAT_SQLITE=fallback)` } : {};

/** Back-off sleeps yield to the event loop instead of waiting on the wall clock. */
const clock: Clock & { sleeps: number } = {
  sleeps: 0,
  now: () => new Date(0),
  sleep(_ms, signal) {
    this.sleeps++;
    return new Promise((resolve, reject) => (signal?.aborted ? reject(signal.reason) : setImmediate(resolve)));
  },
};

interface RunStats {
  /** Snapshots tried: always exactly the count asked for. */
  tried: number;
  images: number;
  busy: number;
  retries: number;
  distinct: number;
  maxN: number;
  walFrames: number;
  /** The writer's commits during the run (ledger ids used). */
  commits: number;
}

/**
 * Tries exactly `count` snapshots through `strategy` while a writer runs, each after at
 * least one new commit, and checks every image (header, integrity, ledger invariant) and
 * that `strategy` made it. A 'busy' result is counted; any other error fails the test.
 */
async function torture(name: string, o: WriterOptions, count: number, strategy: SnapshotStrategy, maxAttempts?: number): Promise<RunStats> {
  const db = path.join(tmp.dir, `${name}.db`);
  createLedger(db, o);
  const writer = startWriter(db, o);
  const stats: RunStats = { tried: 0, images: 0, busy: 0, retries: 0, distinct: 0, maxN: 0, walFrames: 0, commits: 0 };
  const seen = new Set<number>();
  let firstTop = 0;
  let lastTop = 0;
  try {
    await writer.ready;
    const out = path.join(tmp.dir, `${name}.image`);
    let last = await readSourceState(db);
    for (let i = 0; i < count; i++) {
      // Each snapshot starts after at least one new commit, so the images are of many
      // states (a condition to wait for, not a time).
      for (let now = last; isDeepStrictEqual(now, last); now = await readSourceState(db)) {
        assert.ok(writer.alive(), 'the writer is still running');
        await new Promise((resolve) => setImmediate(resolve));
      }
      last = await readSourceState(db);
      stats.tried++;
      let r;
      try {
        r = await snapshotDatabase(db, out, { strategy, clock, maxAttempts });
      } catch (e) {
        if (!BackupError.is(e, 'busy')) throw e;
        assert.ok(e.message.includes(db), e.message);
        stats.busy++;
        continue;
      }
      assert.equal(r.strategy, strategy, `image ${i}: made by ${r.strategy}${r.fallback ? ` (${r.fallback})` : ''}, not ${strategy}`);
      stats.images++;
      stats.retries += r.attempts - 1;
      stats.walFrames += r.walFrames;
      const h = readFileSync(out).subarray(0, 100);
      assert.deepEqual([h[18], h[19], h.readUInt32BE(28)], [1, 1, r.pageCount], `image ${i}: header`);
      const [row] = query<{ ic: string; c: number; n: number; top: number }>(
        out,
        `SELECT (SELECT group_concat(integrity_check, '; ') FROM pragma_integrity_check) AS ic,
                (SELECT count(*) FROM ledger) AS c, (SELECT n FROM counter) AS n, (SELECT max(id) FROM ledger) AS top;`,
      );
      assert.equal(row.ic, 'ok', `image ${i} (attempts ${r.attempts}): integrity`);
      assert.equal(row.c, row.n, `image ${i} (attempts ${r.attempts}): ledger rows vs counter`);
      // Every transaction inserts the next ledger id, so max(id) names the committed state.
      seen.add(row.top);
      firstTop ||= row.top;
      lastTop = row.top;
      stats.maxN = Math.max(stats.maxN, row.n);
    }
    assert.ok(writer.alive(), 'the writer kept writing through every snapshot');
  } finally {
    const code = await writer.stop();
    // The writer's busy timeout outlasts any snapshot: a COMMIT that failed would end it non-zero.
    assert.equal(code, 0, 'the writer exited cleanly (no COMMIT failed while a snapshot held its lock)');
  }
  stats.distinct = seen.size;
  stats.commits = lastTop - firstTop;
  console.log(`[torture ${name} ${strategy}] ${JSON.stringify(stats)}`);
  assert.equal(stats.tried, count);
  assert.equal(stats.images + stats.busy, count);
  return stats;
}

// ---- node:sqlite: SQLite's own read lock; the writer never pauses ----

const BACKUP: SnapshotStrategy = 'node:sqlite backup';
const nonStop: WriterOptions = { journalMode: 'wal', autocheckpoint: 20, checkpointRate: 0.025, checkpointModes: ['TRUNCATE'] };

test('node:sqlite backup, WAL mode, a writer that never pauses (wal_autocheckpoint=20, TRUNCATE checkpoints now and then): every snapshot consistent, none busy', onNodeSqlite, async () => {
  const s = await torture('n-wal', nonStop, 60, BACKUP);
  assert.equal(s.busy, 0, JSON.stringify(s));
  assert.equal(s.images, 60);
  assert.ok(s.distinct > 50, `snapshots saw ${s.distinct} distinct states`);
});

test('node:sqlite backup, rollback mode, a writer that never pauses: every snapshot consistent, none busy', onNodeSqlite, async () => {
  const s = await torture('n-rollback', { journalMode: 'delete' }, 60, BACKUP);
  assert.equal(s.busy, 0, JSON.stringify(s));
  assert.equal(s.images, 60);
  assert.ok(s.distinct > 50, `snapshots saw ${s.distinct} distinct states`);
});

test('node:sqlite backup, the starving writer (TRUNCATE checkpoint after every commit): SQLite\'s lock is never starved', onNodeSqlite, async () => {
  const s = await torture('n-starve', { journalMode: 'wal', checkpointRate: 1, checkpointModes: ['TRUNCATE'] }, 30, BACKUP);
  assert.equal(s.busy, 0, JSON.stringify(s));
  assert.equal(s.images, 30);
});

// ---- the lock-free reader (fallback path) ----

// Pacing: commits come in bursts with short pauses, like a busy app. A lock-free reader
// cannot finish while every few hundred microseconds a commit (rollback mode) or a WAL
// restart (WAL mode) invalidates its read; the starvation cases below cover that.

// A 'busy' result is allowed where a lock-free reader can lose the race (rare below,
// under the shared machine's load); a torn image is never allowed.
const rare = (s: RunStats) => assert.ok(s.busy <= s.tried / 10, JSON.stringify(s));
const READER: SnapshotStrategy = 'reader';

test('reader, WAL mode near full speed: frames appended while the WAL is read, autocheckpoints, rare explicit ones', onFallback, async () => {
  const s = await torture('wal-fast', { journalMode: 'wal', checkpointRate: 0.002, burst: 40, pauseMs: 10 }, 70, READER);
  rare(s);
  assert.ok(s.distinct > 50, `snapshots saw ${s.distinct} distinct states`);
  assert.ok(s.walFrames > 0, 'some images folded WAL frames in');
});

test('reader, WAL mode under mixed PASSIVE/FULL/RESTART/TRUNCATE checkpoints', onFallback, async () => {
  const s = await torture('wal-mixed', { journalMode: 'wal', checkpointRate: 0.03, burst: 20, pauseMs: 30 }, 70, READER);
  rare(s);
  assert.ok(s.distinct > 50, `snapshots saw ${s.distinct} distinct states`);
  assert.ok(s.walFrames > 0, 'some images folded WAL frames in');
});

test('reader, WAL mode with wal_autocheckpoint=2 (a checkpoint and a WAL restart at nearly every commit)', onFallback, async () => {
  const s = await torture('wal-auto2', { journalMode: 'wal', autocheckpoint: 2, checkpointRate: 0.05, burst: 3, pauseMs: 30 }, 70, READER);
  rare(s);
  assert.ok(s.distinct > 50, `snapshots saw ${s.distinct} distinct states`);
});

test('reader, rollback (DELETE journal) mode', onFallback, async () => {
  const s = await torture('rollback', { journalMode: 'delete', burst: 3, pauseMs: 20 }, 200, READER);
  rare(s);
  assert.ok(s.distinct > 50, `snapshots saw ${s.distinct} distinct states`);
});

// Starvation: the reader may lose every one of its 3 reads; what it returns must still be
// a consistent image or 'busy', for exactly the snapshots tried (checked in torture()),
// and the writer must really have got in its way (how often it wins depends on the load).
test('reader, starvation: TRUNCATE checkpoint after every commit at full speed, 3 attempts: consistent image or busy, never torn', onFallback, async () => {
  const s = await torture('starve', { journalMode: 'wal', checkpointRate: 1, checkpointModes: ['TRUNCATE'] }, 50, READER, 3);
  assert.ok(s.busy + s.retries > 0, `the writer never got in the reader's way: ${JSON.stringify(s)}`);
});

test('reader, starvation in rollback mode: back-to-back commits, 3 attempts: consistent image or busy, never torn', onFallback, async () => {
  const s = await torture('starve-rollback', { journalMode: 'delete' }, 40, READER, 3);
  assert.ok(s.busy + s.retries > 0, `the writer never got in the reader's way: ${JSON.stringify(s)}`);
});

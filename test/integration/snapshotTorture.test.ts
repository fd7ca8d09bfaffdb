/**
 * Torture: hundreds of snapshots of a database that another process is committing to
 * (and checkpointing) as fast as it can. Every image must be a committed state: it passes
 * integrity_check and its ledger row count equals counter.n, which each transaction
 * updates together with the ledger.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { isDeepStrictEqual } from 'node:util';
import path from 'node:path';
import { after, test } from 'node:test';
import type { Clock } from '../../src/core/context';
import { BackupError } from '../../src/core/errors';
import { takeSnapshot } from '../../src/core/snapshot/snapshot';
import { readSourceState } from '../../src/core/sqliteFile';
import { query, tempDir } from '../fixtures/sqlite';
import { type WriterOptions, createLedger, startWriter } from '../fixtures/writer';

const tmp = tempDir('lifeboat-torture-');
after(() => tmp.cleanup());

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
  images: number;
  busy: number;
  retries: number;
  distinct: number;
  maxN: number;
  walFrames: number;
}

/**
 * Takes snapshots while a writer runs and checks every image, until `count` images were
 * made or `count` * 1.25 snapshots were tried (a 'busy' result is counted, not an error).
 */
async function torture(name: string, o: WriterOptions, count: number, maxAttempts?: number): Promise<RunStats> {
  const db = path.join(tmp.dir, `${name}.db`);
  createLedger(db, o);
  const writer = startWriter(db, o);
  const stats: RunStats = { images: 0, busy: 0, retries: 0, distinct: 0, maxN: 0, walFrames: 0 };
  const seen = new Set<number>();
  try {
    await writer.ready;
    const out = path.join(tmp.dir, `${name}.image`);
    let last = await readSourceState(db);
    for (let i = 0; stats.images < count && i < count * 1.25; i++) {
      // Each snapshot starts after at least one new commit, so the images are of many
      // states (a condition to wait for, not a time).
      for (let now = last; isDeepStrictEqual(now, last); now = await readSourceState(db)) {
        assert.ok(writer.alive(), 'the writer is still running');
        await new Promise((resolve) => setImmediate(resolve));
      }
      last = await readSourceState(db);
      let r;
      try {
        r = await takeSnapshot(db, out, { clock, maxAttempts });
      } catch (e) {
        if (!BackupError.is(e, 'busy')) throw e;
        stats.busy++;
        continue;
      }
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
      stats.maxN = Math.max(stats.maxN, row.n);
    }
    assert.ok(writer.alive(), 'the writer kept writing through every snapshot');
  } finally {
    const code = await writer.stop();
    assert.equal(code, 0, 'the writer exited cleanly');
  }
  stats.distinct = seen.size;
  console.log(`[torture ${name}] ${JSON.stringify(stats)}`);
  return stats;
}

// Pacing: commits come in bursts with short pauses, like a busy app. A lock-free reader
// cannot finish while every few hundred microseconds a commit (rollback mode) or a WAL
// restart (WAL mode) invalidates its read; the starvation case below covers that.

// A 'busy' result is allowed where a lock-free reader can lose the race (rare below,
// under the shared machine's load); a torn image is never allowed.
const rare = (s: RunStats, count: number) => assert.ok(s.images >= count && s.busy <= count / 10, JSON.stringify(s));

test('WAL mode near full speed: frames appended while the WAL is read, autocheckpoints, rare explicit ones', async () => {
  const s = await torture('wal-fast', { journalMode: 'wal', checkpointRate: 0.002, burst: 40, pauseMs: 10 }, 70);
  rare(s, 70);
  assert.ok(s.distinct > 50, `snapshots saw ${s.distinct} distinct states`);
  assert.ok(s.walFrames > 0, 'some images folded WAL frames in');
});

test('WAL mode under mixed PASSIVE/FULL/RESTART/TRUNCATE checkpoints', async () => {
  const s = await torture('wal-mixed', { journalMode: 'wal', checkpointRate: 0.03, burst: 20, pauseMs: 30 }, 70);
  rare(s, 70);
  assert.ok(s.distinct > 50, `snapshots saw ${s.distinct} distinct states`);
  assert.ok(s.walFrames > 0, 'some images folded WAL frames in');
});

test('WAL mode with wal_autocheckpoint=2 (a checkpoint and a WAL restart at nearly every commit)', async () => {
  const s = await torture('wal-auto2', { journalMode: 'wal', autocheckpoint: 2, checkpointRate: 0.05, burst: 3, pauseMs: 30 }, 70);
  rare(s, 70);
  assert.ok(s.distinct > 50, `snapshots saw ${s.distinct} distinct states`);
});

test('rollback (DELETE journal) mode', async () => {
  const s = await torture('rollback', { journalMode: 'delete', burst: 3, pauseMs: 20 }, 200);
  rare(s, 200);
  assert.ok(s.distinct > 50, `snapshots saw ${s.distinct} distinct states`);
});

test('starvation: TRUNCATE checkpoint after every commit at full speed, 3 attempts: consistent image or busy, never torn', async () => {
  const s = await torture('starve', { journalMode: 'wal', checkpointRate: 1, checkpointModes: ['TRUNCATE'] }, 50, 3);
  assert.ok(s.images + s.busy >= 50);
});

test('starvation in rollback mode: back-to-back commits, 3 attempts: consistent image or busy, never torn', async () => {
  const s = await torture('starve-rollback', { journalMode: 'delete' }, 40, 3);
  assert.ok(s.images + s.busy >= 40);
});

/**
 * Torture for the live-file gate (src/core/sqlite/liveGate.ts): node:sqlite snapshots of a
 * database that another process commits to without pause, while this same process reads
 * the database's files as fast as it can (readSourceState, readDbHeader, readWalHeader:
 * what the scheduler's due-check does).
 *
 * SQLite's locks are POSIX record locks, which the kernel drops for the whole process when
 * any descriptor of the file is closed, by any thread. Were those reads not held off while
 * the SQLite worker copies, the writer (rollback mode) or its checkpoints (WAL mode) would
 * change pages under backup() and the image would be torn. So every image must be a
 * committed state (integrity_check ok, ledger rows == counter.n, which each transaction
 * updates together), and no descriptor of the live files may be opened in this process
 * while SQLite holds its lock.
 *
 * The test proves its reads really ran into the copies: the database carries a large
 * ballast table so that one backup() takes a while, and the reads whose time overlapped a
 * copy (after the worker reported it had its lock, before it reported the copy done) are
 * counted and must be more than none. Through the gate such a read waits for the copy.
 *
 * Without the gate the same loop tears nearly every image: opening and closing the three
 * files with fs directly instead, 39 of 40 images failed these checks in rollback mode and
 * 37 of 40 in WAL mode (the other snapshots failed in SQLite with 'disk I/O error'); in WAL
 * mode it is the -shm, which holds the read mark's lock: closing only the database and
 * -wal tore none of 20.
 */
import assert from 'node:assert/strict';
import fs, { readFileSync } from 'node:fs';
import path from 'node:path';
import { after, test } from 'node:test';
import { isDeepStrictEqual } from 'node:util';
import type { Progress } from '../../src/core/context';
import { snapshotDatabase } from '../../src/core/snapshot/liveSnapshot';
import type { SnapshotStrategy } from '../../src/core/snapshot/snapshot';
import { nodeSqlite, nodeSqliteUnavailableReason } from '../../src/core/sqlite/nodeSqlite';
import { readDbHeader, readSourceState, readWalHeader } from '../../src/core/sqliteFile';
import { query, sqlite, tempDir } from '../fixtures/sqlite';
import { type WriterOptions, createLedger, startWriter } from '../fixtures/writer';

const tmp = tempDir('lifeboat-livegate-');
after(() => tmp.cleanup());

const rt = nodeSqlite();
const onBackup = rt?.hasBackup
  ? {}
  : { skip: `needs node:sqlite backup(): ${rt ? `node:sqlite in Node ${process.versions.node} has no backup()` : nodeSqliteUnavailableReason()}` };

const BACKUP: SnapshotStrategy = 'node:sqlite backup';
/** Snapshots per journal mode. */
const SNAPSHOTS = 30;
/** Ballast rows of 8000 random bytes (about 8 MiB): long copies for the reads to run into. */
const BALLAST_ROWS = 1024;

/** What the concurrent reads saw, and what the copies overlapped. */
interface Probe {
  /** True from the worker's first progress report (its lock taken) to its last (the copy written). */
  copying: boolean;
  /** How many times `copying` has turned true. */
  copies: number;
  /** Calls of readSourceState / readDbHeader / readWalHeader. */
  reads: number;
  /**
   * Of those, calls whose time overlapped a copy: made while `copying`, or pending when one
   * began. Through the gate they wait for the copy to end; without it they would run in it.
   */
  overlapping: number;
  /** Live files of the database opened in this process while `copying` (must stay empty). */
  openedWhileCopying: string[];
}

/**
 * Reads the live files until `stop()` says so, the three reads of one round at once, each
 * round after the last one settled (so the readers of the gate fall to none between rounds,
 * as they do between due-checks). Rejects with the first read that fails.
 */
async function readLoop(db: string, probe: Probe, stop: () => boolean): Promise<void> {
  const reads: Array<() => Promise<unknown>> = [() => readSourceState(db), () => readDbHeader(db), () => readWalHeader(`${db}-wal`)];
  while (!stop()) {
    await Promise.all(
      reads.map(async (read) => {
        const during = probe.copying;
        const copies = probe.copies;
        await read();
        probe.reads++;
        if (during || probe.copies !== copies) probe.overlapping++;
      }),
    );
  }
}

/**
 * Records, through the real fs.promises.open, every open of `db`, its -wal, -shm or
 * -journal made in this thread while `probe.copying`. The SQLite worker's own opens are in
 * its thread's copy of the module and are not seen. Returns the function that undoes it.
 */
function watchOpens(db: string, probe: Probe): () => void {
  const live = new Set(['', '-wal', '-shm', '-journal'].map((s) => path.resolve(db + s)));
  const open = fs.promises.open;
  fs.promises.open = function (this: unknown, file: fs.PathLike, ...rest: unknown[]) {
    if (probe.copying && typeof file === 'string' && live.has(path.resolve(file))) probe.openedWhileCopying.push(file);
    return (open as (...a: unknown[]) => ReturnType<typeof open>).call(this, file, ...rest);
  } as typeof open;
  return () => {
    fs.promises.open = open;
  };
}

/** Checks that the image at `out` is one committed state of the ledger; returns its newest ledger id. */
function checkImage(out: string, pageCount: number, label: string): number {
  const h = readFileSync(out).subarray(0, 100);
  assert.deepEqual([h[18], h[19], h.readUInt32BE(28)], [1, 1, pageCount], `${label}: a standalone rollback-mode header`);
  const [row] = query<{ ic: string; rows: number; n: number; top: number; ballast: number }>(
    out,
    `SELECT (SELECT group_concat(integrity_check, '; ') FROM pragma_integrity_check) AS ic,
            (SELECT count(*) FROM ledger) AS rows, (SELECT n FROM counter) AS n,
            (SELECT max(id) FROM ledger) AS top, (SELECT count(*) FROM ballast) AS ballast;`,
  );
  assert.equal(row.ic, 'ok', `${label}: integrity_check`);
  assert.equal(row.rows, row.n, `${label}: ledger rows vs counter.n`);
  assert.equal(row.ballast, BALLAST_ROWS, `${label}: the ballast is whole`);
  return row.top;
}

interface Stats {
  snapshots: number;
  consistent: number;
  reads: number;
  overlapping: number;
  distinct: number;
}

/**
 * Takes SNAPSHOTS node:sqlite snapshots of a ledger database (plus ballast) that a writer
 * process commits to without pause, each after a new commit, while readLoop() runs in this
 * process; checks every image and that backup() made it, and logs the counts.
 */
async function torture(name: string, o: WriterOptions): Promise<void> {
  const db = path.join(tmp.dir, `${name}.db`);
  createLedger(db, o);
  sqlite(
    db,
    `CREATE TABLE ballast(id INTEGER PRIMARY KEY, b BLOB NOT NULL);
WITH RECURSIVE k(i) AS (SELECT 1 UNION ALL SELECT i+1 FROM k WHERE i < ${BALLAST_ROWS})
INSERT INTO ballast SELECT i, randomblob(8000) FROM k;`,
  );
  const out = path.join(tmp.dir, `${name}.image`);
  const probe: Probe = { copying: false, copies: 0, reads: 0, overlapping: 0, openedWhileCopying: [] };
  const onProgress = (p: Progress) => {
    if (p.phase !== 'snapshot') return;
    if (!probe.copying && p.done < p.total) probe.copies++;
    probe.copying = p.done < p.total;
  };
  const stats: Stats = { snapshots: 0, consistent: 0, reads: 0, overlapping: 0, distinct: 0 };
  const tops = new Set<number>();
  const writer = startWriter(db, o);
  const unwatch = watchOpens(db, probe);
  let stopped = false;
  let loop: Promise<void> | undefined;
  try {
    await writer.ready;
    loop = readLoop(db, probe, () => stopped);
    // A failed read ends the loop at once; the snapshots stop at the next check.
    let loopError: unknown;
    loop.catch((e) => (loopError = e));
    let last = await readSourceState(db);
    for (let i = 0; i < SNAPSHOTS; i++) {
      // Each snapshot after at least one new commit (a condition, not a time).
      for (let now = last; isDeepStrictEqual(now, last); now = await readSourceState(db)) {
        assert.ok(writer.alive(), 'the writer is still running');
        if (loopError) throw loopError;
        await new Promise((resolve) => setImmediate(resolve));
      }
      stats.snapshots++;
      let r;
      try {
        // The image is only read back here: no fsync of 8 MiB per snapshot.
        r = await snapshotDatabase(db, out, { strategy: BACKUP, onProgress, fsync: false });
      } finally {
        probe.copying = false;
      }
      assert.equal(r.strategy, BACKUP, `image ${i}: made by ${r.strategy}${r.fallback ? ` (${r.fallback})` : ''}`);
      tops.add(checkImage(out, r.pageCount, `image ${i}`));
      stats.consistent++;
      last = await readSourceState(db);
    }
    assert.ok(writer.alive(), 'the writer kept writing through every snapshot');
  } finally {
    stopped = true;
    await loop?.catch(() => undefined);
    unwatch();
    const code = await writer.stop();
    assert.equal(code, 0, 'the writer exited cleanly (no COMMIT waited out its busy timeout)');
  }
  await loop;
  stats.reads = probe.reads;
  stats.overlapping = probe.overlapping;
  stats.distinct = tops.size;
  console.log(`[liveGateTorture ${name}] ${JSON.stringify(stats)}`);
  assert.deepEqual(probe.openedWhileCopying, [], 'no live file of the database was opened in this process while SQLite held its lock');
  assert.equal(stats.consistent, SNAPSHOTS);
  assert.ok(stats.overlapping > 0, `no read ran into a copy (${JSON.stringify(stats)}): the test proved nothing`);
  assert.ok(stats.distinct > SNAPSHOTS / 2, `the images saw only ${stats.distinct} distinct states`);
}

test('liveGateTorture: rollback mode, a writer that never pauses, this process reading the live files throughout: every node:sqlite snapshot consistent', onBackup, async () => {
  await torture('rollback', { journalMode: 'delete' });
});

test('liveGateTorture: WAL mode with checkpoints, a writer that never pauses, this process reading the live files throughout: every node:sqlite snapshot consistent', onBackup, async () => {
  await torture('wal', { journalMode: 'wal', autocheckpoint: 20, checkpointRate: 0.025, checkpointModes: ['TRUNCATE', 'RESTART'] });
});

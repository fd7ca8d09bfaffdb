/**
 * The snapshot job that runs inside the SQLite worker (src/core/sqlite/worker.ts): SQLite
 * itself (`node:sqlite`) copies a live database while holding its read lock, so the copy
 * is the database as of one committed transaction by SQLite's own locking, whatever the
 * writers and checkpointers do meanwhile.
 *
 * - 'backup' (Node >= 22.16): a read transaction is opened first (`BEGIN` and a read of
 *   sqlite_master, waiting up to the busy timeout for the lock), then `backup()` copies
 *   every page in one step inside that transaction. The image is page-identical to the
 *   source as of that transaction (what page-level hashing will want).
 * - 'vacuum' (node:sqlite without `backup()`, Node 22.13-22.15): `VACUUM INTO` the output,
 *   which takes its own read transaction (same busy timeout) and writes a fresh layout.
 *
 * SQLite's locks are POSIX record locks, which the kernel drops for the whole process as
 * soon as any descriptor of the same file is closed, by any thread. Hence not done here:
 * holding the transaction while Lifeboat's own reader copies the files (it opens and
 * closes the database, -wal and -shm as it goes, so the lock and the WAL read mark would
 * vanish after its first look; the torture tests saw readers retry and give up 'busy').
 * Hence also: nothing else in this process may open and close the live database or its
 * -wal/-shm while a job holds the lock (see liveSnapshot.ts).
 *
 * The connection is read-only: it never writes the live database, never rolls back a
 * crashed writer's journal, never checkpoints. Every call here is synchronous SQLite on
 * this worker's thread (or the libuv pool for `backup()`), never the caller's.
 */
import { closeSync, fstatSync, openSync, readSync, statSync, writeSync } from 'node:fs';
import type { DatabaseSync } from 'node:sqlite';
import { BackupError } from '../errors';
import { nodeSqlite, nodeSqliteUnavailableReason } from '../sqlite/nodeSqlite';
import type { JobBase, JobContext } from '../sqlite/jobs';

/** How SQLite makes the copy; see the file comment. */
export type NodeSnapshotMethod = 'backup' | 'vacuum';

export interface SnapshotJob extends JobBase {
  op: 'snapshot';
  /** The live database (absolute path). */
  dbPath: string;
  /** An empty file the caller created for this job alone; SQLite writes the image into it. */
  outPath: string;
  method: NodeSnapshotMethod;
  /** How long SQLite waits for its read lock before the job fails with 'busy'. */
  busyTimeoutMs: number;
}

export type SnapshotJobResult =
  | {
      ok: true;
      /** sqlite_version() of the library that made the copy. */
      sqliteVersion: string;
      size: number;
      pageSize: number;
      pageCount: number;
      /** The image's change counter (offset 24). */
      changeCounter: number;
      /** SQLITE_VERSION_NUMBER in the image's header (offset 96). */
      sqliteVersionNumber: number;
      /** Time spent waiting for the read lock ('backup'; 0 for 'vacuum'). */
      lockWaitMs: number;
      /** Time the copy itself took, lock held. */
      copyMs: number;
    }
  /**
   * SQLite could not open or read the database here (a read-only folder without the
   * sidecars it needs, a journal it may not roll back, ...): the caller falls back to the
   * pure TypeScript reader. Nothing was written.
   */
  | { ok: false; fallback: string };

/** `backup()` rate meaning "every page in one step" (Node rejects -1; any rate above the page count copies all). */
const ALL_PAGES = 0x7fffffff;

const SQLITE_BUSY = 5;
const SQLITE_LOCKED = 6;
const SQLITE_FULL = 13;

/**
 * Runs inside the worker thread only. Resolves with the image's facts, or `{ ok: false }`
 * when SQLite cannot read the database at all (the caller falls back). Throws BackupError:
 * busy (no read lock within the busy timeout), diskFull (the output), io (anything else
 * SQLite reports while copying). Leaves `outPath` for the caller to remove on failure.
 */
export async function runSnapshotJob(job: SnapshotJob, ctx: JobContext): Promise<SnapshotJobResult> {
  const rt = nodeSqlite();
  if (!rt) return { ok: false, fallback: nodeSqliteUnavailableReason() };
  if (job.method === 'backup' && !rt.hasBackup) {
    throw new BackupError('io', `${job.dbPath}: node:sqlite in Node ${process.versions.node} has no backup()`, { path: job.dbPath });
  }
  let db: DatabaseSync;
  try {
    db = new rt.sqlite.DatabaseSync(job.dbPath, { readOnly: true });
  } catch (e) {
    return { ok: false, fallback: `SQLite could not open ${job.dbPath}: ${messageOf(e)}` };
  }
  let lockWaitMs = 0;
  let copyMs = 0;
  let total = 0;
  try {
    total = statSync(job.dbPath).size;
    db.exec(`PRAGMA busy_timeout = ${Math.max(0, Math.round(job.busyTimeoutMs))}`);
    const asked = performance.now();
    try {
      if (job.method === 'backup') db.exec('BEGIN');
      // The first read takes the lock (waiting up to the busy timeout) and proves SQLite can read the file here.
      db.prepare('SELECT count(*) AS n FROM sqlite_master').get();
    } catch (e) {
      if (isBusy(e)) throw busy(job);
      return { ok: false, fallback: `SQLite could not read ${job.dbPath}: ${messageOf(e)}` };
    }
    if (job.method === 'backup') lockWaitMs = performance.now() - asked;
    const started = performance.now();
    ctx.progress({ phase: 'snapshot', done: 0, total });
    try {
      if (job.method === 'backup') {
        await rt.sqlite.backup(db, job.outPath, { rate: ALL_PAGES });
        db.exec('ROLLBACK');
      } else {
        db.exec(`VACUUM INTO '${job.outPath.replaceAll("'", "''")}'`);
      }
    } catch (e) {
      if (isBusy(e)) throw busy(job);
      if (codeOf(e) === SQLITE_FULL) {
        throw new BackupError('diskFull', `${job.outPath}: no space left on device (SQLite writing the snapshot)`, { path: job.outPath });
      }
      throw new BackupError('io', `${job.dbPath}: SQLite failed to copy the database into ${job.outPath}: ${messageOf(e)}`, { path: job.dbPath });
    }
    copyMs = performance.now() - started;
  } finally {
    db.close();
  }
  const image = makeStandalone(job.outPath);
  ctx.progress({ phase: 'snapshot', done: total, total });
  return { ok: true, sqliteVersion: rt.version, ...image, lockWaitMs, copyMs };
}

/**
 * Rewrites the image's header as a standalone rollback-mode database: bytes 18/19 = 1
 * (`backup()` of a WAL database keeps 2), and the page count at 28 matching the file with
 * "version-valid-for" (92) equal to the change counter (24), so SQLite trusts it.
 */
function makeStandalone(outPath: string): Omit<Extract<SnapshotJobResult, { ok: true }>, 'ok' | 'sqliteVersion' | 'lockWaitMs' | 'copyMs'> {
  const fd = openSync(outPath, 'r+');
  try {
    const h = Buffer.alloc(100);
    const size = fstatSync(fd).size;
    if (readSync(fd, h, 0, 100, 0) < 100) throw new BackupError('io', `${outPath}: SQLite wrote an image shorter than its header`, { path: outPath });
    const raw = h.readUInt16BE(16);
    const pageSize = raw === 1 ? 65536 : raw;
    if (pageSize < 512 || size % pageSize !== 0) {
      throw new BackupError('io', `${outPath}: SQLite wrote ${size} bytes, not a whole number of ${pageSize}-byte pages`, { path: outPath });
    }
    const pageCount = size / pageSize;
    h[18] = 1;
    h[19] = 1;
    h.writeUInt32BE(pageCount, 28);
    h.copy(h, 92, 24, 28);
    writeSync(fd, h, 0, 100, 0);
    return { size, pageSize, pageCount, changeCounter: h.readUInt32BE(24), sqliteVersionNumber: h.readUInt32BE(96) };
  } finally {
    closeSync(fd);
  }
}

function busy(job: SnapshotJob): BackupError {
  const secs = (job.busyTimeoutMs / 1000).toFixed(job.busyTimeoutMs % 1000 ? 1 : 0);
  return new BackupError(
    'busy',
    `${job.dbPath}: database too busy: SQLite could not get a read lock on it within ${secs} s (another connection kept it locked for writing)`,
    { path: job.dbPath },
  );
}

/** SQLite's primary result code of a node:sqlite error (`errcode` holds the extended code). */
function codeOf(e: unknown): number | undefined {
  const c = (e as { errcode?: unknown })?.errcode;
  return typeof c === 'number' ? c & 0xff : undefined;
}

function isBusy(e: unknown): boolean {
  const c = codeOf(e);
  return c === SQLITE_BUSY || c === SQLITE_LOCKED;
}

function messageOf(e: unknown): string {
  return (e as Error)?.message ?? String(e);
}

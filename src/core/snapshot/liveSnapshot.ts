/**
 * The one way the engine snapshots a live database. Two strategies, chosen at run time by
 * what `nodeSqlite()` finds (never by version number):
 *
 * - SQLite itself, in a worker thread (nodeSnapshot.ts), under its own read lock:
 *   `backup()` where the runtime has it (Node >= 22.16, 24), else `VACUUM INTO` (Node
 *   22.13-22.15). Writers never make it retry: in WAL
 *   mode they go on committing while it copies (only a blocking checkpoint waits); in
 *   rollback mode their COMMIT waits for the copy (their busy handler), and the copy waits
 *   up to `busyTimeoutMs` for its lock, then fails with 'busy'. The lock is a POSIX
 *   record lock: while the job runs, any close() of a descriptor of the database, -wal or
 *   -shm elsewhere in this process (another thread reading its header or state) releases
 *   it silently, and a writer or checkpointer could then change pages under the copy.
 *   So the job runs under `withSqliteLock`, and core's readers of live files
 *   (sqliteFile.ts, the reader) under `withLiveFiles` (sqlite/liveGate.ts).
 * - The pure TypeScript reader (snapshot.ts), which takes no lock and retries a read that
 *   overlapped a change: where `node:sqlite` does not load; for a database whose WAL
 *   sidecars are not both there (opening it with SQLite would create -wal/-shm that the
 *   read-only connection then leaves behind); and where SQLite cannot open or read the
 *   file (a read-only folder, a crashed writer's journal it may not roll back).
 */
import { promises as fsp } from 'node:fs';
import type { FileHandle } from 'node:fs/promises';
import { BackupError, fsError } from '../errors';
import { fsyncFile } from '../fsutil';
import { runSqliteJob } from '../sqlite/client';
import { withSqliteLock } from '../sqlite/liveGate';
import { nodeSqlite, nodeSqliteUnavailableReason } from '../sqlite/nodeSqlite';
import { readDbHeader } from '../sqliteFile';
import type { NodeSnapshotMethod, SnapshotJob, SnapshotJobResult } from './nodeSnapshot';
import { type SnapshotOptions, type SnapshotResult, type SnapshotStrategy, takeSnapshot } from './snapshot';

export interface LiveSnapshotOptions extends SnapshotOptions {
  /**
   * 'auto' (default): SQLite where the runtime has it, else the reader, as the file
   * comment says. A named node:sqlite strategy insists on that method (tests, benchmarks)
   * but still falls back to the reader where SQLite must not or cannot open the file;
   * 'reader' always uses the reader. `result.strategy` says what ran.
   */
  strategy?: 'auto' | SnapshotStrategy;
  /** How long SQLite waits for its read lock; default 10 s. */
  busyTimeoutMs?: number;
  /** Linux nice value for the SQLite worker's thread. */
  nice?: number;
}

export const DEFAULT_BUSY_TIMEOUT_MS = 10_000;

const STRATEGIES = { backup: 'node:sqlite backup', vacuum: 'node:sqlite vacuum' } as const satisfies Record<NodeSnapshotMethod, SnapshotStrategy>;
const METHODS: Record<Exclude<SnapshotStrategy, 'reader'>, NodeSnapshotMethod> = {
  'node:sqlite backup': 'backup',
  'node:sqlite vacuum': 'vacuum',
};

/**
 * Writes to `outPath` a standalone rollback-mode image of the database at `dbPath` as of
 * one committed transaction (header bytes 18/19 = 1, a trusted page count at 28), while
 * other processes write. Progress events have phase 'snapshot'; aborting `opts.signal`
 * stops the SQLite worker (releasing its lock) or the reader. fsyncs the image unless
 * `opts.fsync` is false.
 *
 * Throws BackupError: notFound, notSqlite, encrypted (the source); busy (SQLite waited
 * `busyTimeoutMs` for its lock, or every read of the reader overlapped a change);
 * unwritable / diskFull (the output); cancelled; io (including a named node:sqlite
 * strategy this runtime lacks). On any failure `outPath` is removed. Never writes to the
 * source; `outPath` is replaced.
 */
export async function snapshotDatabase(dbPath: string, outPath: string, opts: LiveSnapshotOptions = {}): Promise<SnapshotResult> {
  const requested = opts.strategy ?? 'auto';
  if (opts.signal?.aborted) throw new BackupError('cancelled', `${dbPath}: snapshot cancelled`, { path: dbPath });
  if (requested === 'reader') return takeSnapshot(dbPath, outPath, opts);
  const rt = nodeSqlite();
  let method: NodeSnapshotMethod;
  if (requested === 'auto') {
    if (!rt) return reader(dbPath, outPath, opts, nodeSqliteUnavailableReason());
    method = rt.hasBackup ? 'backup' : 'vacuum';
  } else {
    method = METHODS[requested];
    if (!rt || (method === 'backup' && !rt.hasBackup)) {
      throw new BackupError('io', `${dbPath}: snapshot strategy '${requested}' is not available in Node ${process.versions.node}${rt ? '' : `: ${nodeSqliteUnavailableReason()}`}`, { path: dbPath });
    }
  }

  const header = await readDbHeader(dbPath);
  const [hasWal, hasShm] = await Promise.all([exists(`${dbPath}-wal`), exists(`${dbPath}-shm`)]);
  if ((header.writeVersion === 2 || hasWal || hasShm) && !(hasWal && hasShm)) {
    // A read-only connection would create the missing sidecar(s) and leave them behind.
    const found = hasWal ? 'a -wal but no -shm' : hasShm ? 'a -shm but no -wal' : 'no -wal or -shm';
    return reader(dbPath, outPath, opts, `WAL database with ${found}: SQLite would create files beside it`);
  }

  let source: { size: number; mtimeMs: number };
  try {
    const st = await fsp.stat(dbPath);
    source = { size: st.size, mtimeMs: st.mtimeMs };
  } catch (e) {
    throw fsError(e, dbPath, 'reading the database');
  }
  await freshOutput(outPath);
  const job: SnapshotJob = {
    op: 'snapshot',
    dbPath,
    outPath,
    method,
    busyTimeoutMs: opts.busyTimeoutMs ?? DEFAULT_BUSY_TIMEOUT_MS,
    nice: opts.nice,
  };
  let r: SnapshotJobResult;
  try {
    // While the worker holds SQLite's read lock, nothing else in this process may open and
    // close the database's files: POSIX would drop the lock (see liveGate.ts).
    r = await withSqliteLock(dbPath, () => runSqliteJob<SnapshotJobResult>(job, { signal: opts.signal, onProgress: opts.onProgress, label: dbPath }));
    if (r.ok && opts.fsync !== false) await fsyncFile(outPath);
  } catch (e) {
    await removeOutput(outPath);
    throw e;
  }
  if (!r.ok) {
    await removeOutput(outPath);
    return reader(dbPath, outPath, opts, r.fallback);
  }
  return {
    imagePath: outPath,
    size: r.size,
    pageSize: r.pageSize,
    pageCount: r.pageCount,
    journalMode: header.writeVersion === 2 || hasWal ? 'wal' : 'rollback',
    // SQLite folded the WAL itself; how many frames that took is not reported.
    walFrames: 0,
    changeCounter: r.changeCounter,
    sqliteVersionNumber: r.sqliteVersionNumber,
    attempts: 1,
    source,
    strategy: STRATEGIES[method],
    sqliteVersion: r.sqliteVersion,
  };
}

async function reader(dbPath: string, outPath: string, opts: LiveSnapshotOptions, why: string): Promise<SnapshotResult> {
  const r = await takeSnapshot(dbPath, outPath, opts);
  return { ...r, fallback: why };
}

/** Replaces `outPath` (and a journal SQLite may have left beside it) with an empty file made for this snapshot. */
async function freshOutput(outPath: string): Promise<void> {
  await removeOutput(outPath);
  let fh: FileHandle;
  try {
    fh = await fsp.open(outPath, 'wx');
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'ENOTDIR' || code === 'EISDIR') {
      throw new BackupError('unwritable', `${outPath}: cannot create the snapshot file (${code})`, { cause: e, path: outPath });
    }
    throw fsError(e, outPath, 'creating the snapshot');
  }
  await fh.close();
}

async function removeOutput(outPath: string): Promise<void> {
  await Promise.all([outPath, `${outPath}-journal`].map((p) => fsp.rm(p, { force: true }).catch(() => undefined)));
}

async function exists(p: string): Promise<boolean> {
  try {
    await fsp.lstat(p);
    return true;
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return false;
    throw fsError(e, p, 'looking for the database sidecars');
  }
}

/**
 * Consistent hot snapshots of a live SQLite database, made without SQLite and without
 * taking its locks: the main file is streamed to the output, the committed part of the
 * WAL is folded in, and the result is checked against what a concurrent writer or
 * checkpointer could have done meanwhile. A read that may have overlapped a change is
 * thrown away and repeated (with back-off), so the image is always the database as of
 * exactly one committed transaction.
 *
 * Why the WAL-mode checks are enough. Within one WAL generation (same salts) frames are
 * only appended, and a checkpoint copies into the main file only frames that were
 * committed before it started, after announcing its target in the -shm's
 * nBackfillAttempted. The WAL is read after the main file, so every frame a checkpoint
 * could have copied while the main file was being read is in the WAL read too, and its
 * page is overwritten by the replay with the version of the snapshot's last commit. So
 * the image is consistent if: the WAL's salts are the same before, during and after the
 * reads (no restart, which is the only time frames are overwritten), the -shm's salts
 * are the same (no restart that has not reached the WAL file yet, no truncate), and
 * nBackfillAttempted after the reads does not exceed the snapshot's last commit frame
 * (a defence against a short WAL read; nBackfill alone would miss a checkpoint still
 * copying).
 *
 * Without a -shm (exclusive locking mode, or no connection open) the checkpointer is
 * invisible, so the main file must additionally be unchanged (inode, size, mtime and
 * ctime in nanoseconds) across the reads. Rollback-journal mode needs the change counter
 * unchanged, no hot journal before or after, and the same unchanged stat. Writers that
 * bypass both signals (journal_mode=OFF or MEMORY in exclusive locking mode) are only
 * caught by the mtime check, whose granularity is the kernel's clock tick.
 */
import { constants as fsConstants, promises as fsp, writeSync } from 'node:fs';
import type { BigIntStats } from 'node:fs';
import type { FileHandle } from 'node:fs/promises';
import { type Clock, type ProgressListener, systemClock } from '../context';
import { BackupError, fsError } from '../errors';
import { withLiveFiles } from '../sqlite/liveGate';
import type { Manifest } from '../model';
import {
  type DbHeader,
  DB_HEADER_SIZE,
  type ShmHeader,
  type WalHeader,
  type WalScan,
  WAL_FRAME_HEADER_SIZE,
  WAL_HEADER_SIZE,
  hasHotJournal,
  parseDbHeader,
  readFully,
  readShmHeader,
  readWalHeader,
  scanWal,
} from '../sqliteFile';

export interface SnapshotOptions {
  signal?: AbortSignal;
  /** For the back-off sleeps between attempts; default systemClock. */
  clock?: Clock;
  /** Reads attempted before giving up with 'busy'; default 10. */
  maxAttempts?: number;
  /** Bytes read so far (main file then WAL) of the current attempt, phase 'snapshot'. */
  onProgress?: ProgressListener;
  /**
   * fsync the image before returning (default true). A caller that only reads the image
   * back and makes something else durable (the archive) passes false and saves writing
   * the whole database to disk twice.
   */
  fsync?: boolean;
}

export interface SnapshotResult {
  imagePath: string;
  /** Bytes of the image (pageSize * pageCount). */
  size: number;
  pageSize: number;
  pageCount: number;
  journalMode: 'wal' | 'rollback';
  /** WAL frames folded into the image (up to and including the last commit frame read). */
  walFrames: number;
  /** The image's change counter (header offset 24); in rollback mode the main file's. */
  changeCounter: number;
  sqliteVersionNumber: number;
  /** Reads it took; 1 when nothing interfered. */
  attempts: number;
  /** The main file as observed at the start of the successful attempt. */
  source: { size: number; mtimeMs: number };
  /** What made the image: SQLite under its own lock, or this lock-free reader. */
  strategy: SnapshotStrategy;
  /** sqlite_version() of the SQLite that made the image; absent for the reader (no SQLite involved). */
  sqliteVersion?: string;
  /** Why the reader ran on a runtime where SQLite might have (see liveSnapshot.ts); absent otherwise. */
  fallback?: string;
}

/** The strategies, as manifests record them. */
export type SnapshotStrategy = NonNullable<Manifest['source']['snapshot']>['strategy'];

const CHUNK = 4 << 20;
const DEFAULT_ATTEMPTS = 10;
const BACKOFF_BASE_MS = 4;
const BACKOFF_CAP_MS = 1000;
const SNIFF = 4096;

/** What is visible of the database's state at one moment. */
interface Observation {
  stat: BigIntStats;
  header: DbHeader;
  hotJournal: boolean;
  wal: WalHeader | undefined;
  walSize: number;
  shm: ShmHeader | undefined;
}

type Attempt = { ok: true; result: Omit<SnapshotResult, 'attempts' | 'imagePath' | 'strategy'> } | { ok: false; why: string };

/**
 * Writes to `outPath` a standalone rollback-mode image of the database at `dbPath`
 * (header bytes 18/19 = 1, page count at 28 correct and trusted via offset 92) that
 * opens with no sidecar files and holds the database as of exactly one committed
 * transaction, even while other processes write and checkpoint. fsyncs `outPath` before
 * returning unless `opts.fsync` is false. Memory stays bounded (a 4 MiB buffer plus a page -> offset map of the WAL).
 *
 * Returns what it wrote. Throws BackupError: notFound, notSqlite, encrypted (the
 * source), busy (every one of `maxAttempts` reads overlapped a change, or a crashed
 * writer left a hot journal), unwritable / diskFull (the output), cancelled (the signal
 * aborted), io. On any failure `outPath` is removed. Only reads the source, so it is
 * safe to repeat and to run while the database is in use; `outPath` is overwritten.
 */
export async function takeSnapshot(dbPath: string, outPath: string, opts: SnapshotOptions = {}): Promise<SnapshotResult> {
  // Its opens and closes of the live files must not drop a lock a SQLite job of this process holds.
  return withLiveFiles(dbPath, () => readSnapshot(dbPath, outPath, opts));
}

async function readSnapshot(dbPath: string, outPath: string, opts: SnapshotOptions): Promise<SnapshotResult> {
  const clock = opts.clock ?? systemClock;
  const maxAttempts = Math.max(1, Math.floor(opts.maxAttempts ?? DEFAULT_ATTEMPTS));
  const signal = opts.signal;
  const cancelled = () => new BackupError('cancelled', `${dbPath}: snapshot cancelled`, { path: dbPath });
  let out: FileHandle | undefined;
  try {
    if (signal?.aborted) throw cancelled();
    const buf = Buffer.allocUnsafeSlow(CHUNK);
    let why = '';
    for (let attempt = 1; attempt <= maxAttempts; attempt++) {
      if (attempt > 1) {
        // Exponential back-off with jitter, so that a writer checkpointing in a tight
        // loop and this reader do not stay in lock-step.
        const ceiling = Math.min(BACKOFF_CAP_MS, BACKOFF_BASE_MS * 2 ** (attempt - 2));
        try {
          await clock.sleep(Math.round(ceiling * (0.5 + Math.random() / 2)), signal);
        } catch (e) {
          if (signal?.aborted) throw cancelled();
          throw e;
        }
      }
      if (signal?.aborted) throw cancelled();
      const before = await observe(dbPath);
      const mode: 'wal' | 'rollback' = before.header.writeVersion === 2 || before.wal ? 'wal' : 'rollback';
      // Not worth copying anything when the state is already known to be in flux.
      let early = '';
      if (mode === 'rollback' && before.hotJournal) early = 'a write transaction was in progress (hot journal)';
      if (mode === 'wal' && before.shm && !before.shm.stable) early = 'the wal-index was being updated';
      if (early) {
        why = early;
        continue;
      }
      out ??= await openOutput(outPath);
      const r = await attemptOnce(dbPath, outPath, out, buf, before, mode, opts);
      if (r.ok) {
        if (opts.fsync !== false) await sync(out, outPath);
        await out.close();
        out = undefined;
        return { ...r.result, imagePath: outPath, attempts: attempt, strategy: 'reader' };
      }
      why = r.why;
    }
    throw new BackupError('busy', `${dbPath}: database too busy: it changed under ${maxAttempts} attempts to read it (last: ${why})`, { path: dbPath });
  } catch (e) {
    await out?.close().catch(() => undefined);
    await fsp.rm(outPath, { force: true }).catch(() => undefined);
    if (signal?.aborted && !BackupError.is(e)) throw cancelled();
    if (BackupError.is(e)) throw e;
    throw fsError(e, dbPath, 'taking a snapshot');
  }
}

async function attemptOnce(
  dbPath: string,
  outPath: string,
  out: FileHandle,
  buf: Buffer,
  before: Observation,
  mode: 'wal' | 'rollback',
  opts: SnapshotOptions,
): Promise<Attempt> {
  const signal = opts.signal;
  const total = Number(before.stat.size) + before.walSize;
  const progress = (done: number) => opts.onProgress?.({ phase: 'snapshot', done, total });
  try {
    await out.truncate(0);
  } catch (e) {
    throw fsError(e, outPath, 'truncating the snapshot');
  }

  const copied = await copyMain(dbPath, outPath, out, buf, signal, progress);
  const pageSize = before.header.pageSize;
  const copiedPages = Math.floor(copied / pageSize);

  let scan: WalScan | undefined;
  if (mode === 'wal') {
    const replay = await replayWal(dbPath, outPath, out, buf, pageSize, copied, signal, progress);
    scan = replay.scan;
    if (!replay.intact || !sameSalts(scan.header, before.wal)) return { ok: false, why: 'the WAL was reset during the read' };
  }

  const page1 = Buffer.alloc(DB_HEADER_SIZE);
  await readOut(out, outPath, page1, 0);
  let img: DbHeader;
  try {
    img = parseDbHeader(page1, Math.max(copied, pageSize), dbPath);
  } catch {
    // The copied page 1 was torn by a concurrent write; the checks below decide whether
    // that was a change (retry) or the file really is damaged.
    img = { ...before.header, pageCount: 0 };
  }

  let dbSize: number;
  if (scan && scan.frames > 0) {
    dbSize = scan.dbSize;
  } else {
    const inHeader = page1.readUInt32BE(28);
    const trusted = inHeader !== 0 && page1.readUInt32BE(92) === page1.readUInt32BE(24);
    dbSize = trusted && inHeader <= copiedPages ? inHeader : copiedPages;
  }

  const after = await observe(dbPath, true);
  const why = judge(mode, before, after, scan, img);
  if (why) return { ok: false, why };
  if (img.pageSize !== pageSize || img.pageCount === 0) {
    throw new BackupError('notSqlite', `${dbPath}: page 1 of the database is damaged`, { path: dbPath });
  }
  if (dbSize === 0) throw new BackupError('notSqlite', `${dbPath}: not an SQLite database (shorter than one page)`, { path: dbPath });
  for (let p = copiedPages + 1; p <= dbSize; p++) {
    // Every committed page must come from the main file or the WAL; a hole means the
    // main file was truncated under the read.
    if (!scan?.pages.has(p)) return { ok: false, why: 'the database file was truncated during the read' };
  }

  // A rollback-mode header whose in-header size SQLite trusts: 92 equals 24.
  page1[18] = 1;
  page1[19] = 1;
  page1.writeUInt32BE(dbSize, 28);
  page1.copy(page1, 92, 24, 28);
  try {
    await writeFully(out, page1, DB_HEADER_SIZE, 0);
    await out.truncate(dbSize * pageSize);
  } catch (e) {
    throw fsError(e, outPath, 'writing the snapshot');
  }
  return {
    ok: true,
    result: {
      size: dbSize * pageSize,
      pageSize,
      pageCount: dbSize,
      journalMode: mode,
      walFrames: scan?.frames ?? 0,
      changeCounter: page1.readUInt32BE(24),
      sqliteVersionNumber: page1.readUInt32BE(96),
      source: { size: Number(before.stat.size), mtimeMs: msFromNs(before.stat.mtimeNs) },
    },
  };
}

/** Returns why the reads between `before` and `after` may be inconsistent, or '' when they are not. */
function judge(mode: 'wal' | 'rollback', before: Observation, after: Observation, scan: WalScan | undefined, img: DbHeader): string {
  if (after.stat.ino !== before.stat.ino || after.stat.dev !== before.stat.dev) return 'the database file was replaced';
  if (after.header.writeVersion !== before.header.writeVersion) return 'the journal mode changed';
  if (after.header.pageSize !== before.header.pageSize) return 'the page size changed';
  const statSame =
    after.stat.size === before.stat.size && after.stat.mtimeNs === before.stat.mtimeNs && after.stat.ctimeNs === before.stat.ctimeNs;
  if (mode === 'rollback') {
    if (after.hotJournal) return 'a write transaction was in progress (hot journal)';
    if (after.wal) return 'the database switched to WAL mode';
    if (after.header.changeCounter !== before.header.changeCounter || img.changeCounter !== before.header.changeCounter) {
      return 'a transaction committed during the read';
    }
    if (!statSame) return 'the database file was written during the read';
    return '';
  }
  if (!sameSalts(after.wal, before.wal)) return 'the WAL was reset during the read';
  if (!before.shm !== !after.shm) return 'the wal-index appeared or vanished';
  if (before.shm && after.shm) {
    if (!after.shm.stable) return 'the wal-index was being updated';
    if (after.shm.salt1 !== before.shm.salt1 || after.shm.salt2 !== before.shm.salt2) return 'the WAL was restarted';
    if (after.wal && after.shm.salt1 === after.wal.salt1 && after.shm.salt2 === after.wal.salt2) {
      if (after.shm.nBackfillAttempted > (scan?.frames ?? 0)) return 'a checkpoint went past the snapshot';
    }
  } else if (!statSame) {
    // No wal-index to say what a checkpointer did: the main file itself must be untouched.
    return 'the database file was written during the read';
  }
  return '';
}

/** Milliseconds exactly as a non-bigint fs.Stats computes mtimeMs, so that the two compare equal. */
function msFromNs(ns: bigint): number {
  return Number(ns / 1_000_000_000n) * 1000 + Number(ns % 1_000_000_000n) / 1e6;
}

function sameSalts(a: WalHeader | undefined, b: WalHeader | undefined): boolean {
  if (!a || !b) return a === b;
  return a.salt1 === b.salt1 && a.salt2 === b.salt2 && a.pageSize === b.pageSize;
}

/**
 * Reads the visible state. At the start (`late` false) the -shm goes first, then the
 * WAL header, then the main file; at the end the order is reversed so that every
 * change made during the reads is seen by at least one of the signals.
 */
async function observe(dbPath: string, late = false): Promise<Observation> {
  const shmPath = `${dbPath}-shm`;
  const walPath = `${dbPath}-wal`;
  let shm: ShmHeader | undefined;
  let wal: Awaited<ReturnType<typeof readWalHeader>>;
  if (!late) {
    shm = await readShmHeader(shmPath);
    wal = await readWalHeader(walPath);
  } else {
    wal = await readWalHeader(walPath);
    shm = await readShmHeader(shmPath);
  }
  let fh: FileHandle | undefined;
  try {
    fh = await fsp.open(dbPath, 'r');
    const stat = await fh.stat({ bigint: true });
    if (!stat.isFile()) throw new BackupError('notSqlite', `${dbPath}: not a regular file`, { path: dbPath });
    const head = Buffer.alloc(Math.min(Number(stat.size), SNIFF));
    const n = await readFully(fh, head, 0, head.length, 0);
    const header = parseDbHeader(head.subarray(0, n), Number(stat.size), dbPath);
    const hotJournal = await hasHotJournal(dbPath);
    return { stat, header, hotJournal, wal: wal.header, walSize: wal.size, shm };
  } catch (e) {
    throw fsError(e, dbPath, 'reading the database');
  } finally {
    await fh?.close().catch(() => undefined);
  }
}

async function openOutput(outPath: string): Promise<FileHandle> {
  try {
    return await fsp.open(outPath, 'w+');
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'ENOTDIR' || code === 'EISDIR') {
      throw new BackupError('unwritable', `${outPath}: cannot create the snapshot file (${code})`, { cause: e, path: outPath });
    }
    throw fsError(e, outPath, 'creating the snapshot');
  }
}

/**
 * Copies the main file into `outPath` from offset 0; returns the bytes copied. The copy is
 * done by the kernel (copy_file_range/sendfile through libuv's copyfile), about ten times
 * faster than reading and writing through a buffer; it writes into the same inode that
 * `out` has open. The consistency checks around it don't depend on how the bytes moved.
 */
async function copyMain(
  dbPath: string,
  outPath: string,
  _out: FileHandle,
  _buf: Buffer,
  signal: AbortSignal | undefined,
  progress: (done: number) => void,
): Promise<number> {
  if (signal?.aborted) throw signal.reason;
  try {
    await fsp.copyFile(dbPath, outPath);
  } catch (e) {
    if (BackupError.is(e)) throw e;
    // Which side failed: a source that vanished or can't be read, or the output.
    try {
      await fsp.access(dbPath, fsConstants.R_OK);
    } catch {
      throw fsError(e, dbPath, 'reading the database');
    }
    throw fsError(e, outPath, 'writing the snapshot');
  }
  const size = (await fsp.stat(outPath)).size;
  progress(size);
  // The kernel's copy can't be interrupted; a cancel during it takes effect here.
  if (signal?.aborted) throw signal.reason;
  return size;
}

/**
 * Scans the WAL and writes the newest committed version of each page into `out`.
 * Returns the scan (header undefined when there is no usable WAL) and whether every
 * frame read back was still the one scanned.
 */
async function replayWal(
  dbPath: string,
  outPath: string,
  out: FileHandle,
  buf: Buffer,
  pageSize: number,
  mainBytes: number,
  signal: AbortSignal | undefined,
  progress: (done: number) => void,
): Promise<{ scan: WalScan; intact: boolean }> {
  const walPath = `${dbPath}-wal`;
  let wal: FileHandle;
  try {
    wal = await fsp.open(walPath, 'r');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') {
      return { scan: { header: undefined, frames: 0, dbSize: 0, pages: new Map(), uncommittedFrames: 0, bytesRead: 0 }, intact: true };
    }
    throw fsError(e, walPath, 'reading the WAL');
  }
  try {
    const scan = await scanWal(wal, { signal, buffer: buf, onBytes: (n) => progress(mainBytes + n) });
    if (!scan.header || scan.frames === 0) return { scan, intact: true };
    if (scan.header.pageSize !== pageSize) {
      throw new BackupError('notSqlite', `${walPath}: WAL page size ${scan.header.pageSize} does not match the database's ${pageSize}`, { path: walPath });
    }
    // Second pass, sequential in big reads: write each page's newest committed frame.
    // Frames cannot change within one generation; if the WAL was restarted under us the
    // frames found differ from the scan's, and the salt checks make the caller retry.
    const frameSize = WAL_FRAME_HEADER_SIZE + pageSize;
    const perChunk = Math.floor(buf.length / frameSize);
    let expected = 0;
    for (const pgno of scan.pages.keys()) if (pgno <= scan.dbSize) expected++;
    let written = 0;
    for (let first = 0; first < scan.frames; first += perChunk) {
      if (signal?.aborted) throw signal.reason;
      const count = Math.min(perChunk, scan.frames - first);
      const base = WAL_HEADER_SIZE + first * frameSize;
      if ((await readFully(wal, buf, 0, count * frameSize, base)) < count * frameSize) return { scan, intact: false };
      for (let k = 0; k < count; k++) {
        const at = k * frameSize;
        const pgno = buf.readUInt32BE(at);
        if (pgno > scan.dbSize || scan.pages.get(pgno) !== base + at) continue;
        if (buf.readUInt32BE(at + 8) !== scan.header.salt1 || buf.readUInt32BE(at + 12) !== scan.header.salt2) return { scan, intact: false };
        // Synchronous writes into the page cache cost microseconds, where a thread-pool
        // round trip per page would dominate; the await above yields once per chunk.
        writeAllSync(out.fd, buf, at + WAL_FRAME_HEADER_SIZE, pageSize, (pgno - 1) * pageSize, outPath);
        written++;
      }
    }
    if (written !== expected) return { scan, intact: false };
    return { scan, intact: true };
  } catch (e) {
    if (signal?.aborted || BackupError.is(e)) throw e;
    throw fsError(e, walPath, 'reading the WAL');
  } finally {
    await wal.close().catch(() => undefined);
  }
}

async function writeFully(fh: FileHandle, buf: Buffer, length: number, position: number): Promise<void> {
  let done = 0;
  while (done < length) {
    const { bytesWritten } = await fh.write(buf, done, length - done, position + done);
    done += bytesWritten;
  }
}

function writeAllSync(fd: number, buf: Buffer, offset: number, length: number, position: number, outPath: string): void {
  try {
    let done = 0;
    while (done < length) done += writeSync(fd, buf, offset + done, length - done, position + done);
  } catch (e) {
    throw fsError(e, outPath, 'writing the snapshot');
  }
}

async function readOut(out: FileHandle, outPath: string, into: Buffer, position: number): Promise<void> {
  try {
    await readFully(out, into, 0, into.length, position);
  } catch (e) {
    throw fsError(e, outPath, 'reading back the snapshot');
  }
}

async function sync(out: FileHandle, outPath: string): Promise<void> {
  try {
    await out.sync();
  } catch (e) {
    throw fsError(e, outPath, 'flushing the snapshot');
  }
}

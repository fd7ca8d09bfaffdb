/**
 * Reading SQLite's on-disk structures without SQLite: the 100-byte database header,
 * the write-ahead log (-wal) and the wal-index header (-shm). Everything here only
 * reads; nothing takes SQLite's locks, so callers must treat what they read as a
 * possibly moving target (see src/core/snapshot/snapshot.ts).
 */
import { promises as fsp } from 'node:fs';
import type { FileHandle } from 'node:fs/promises';
import os from 'node:os';
import { BackupError, fsError } from './errors';
import { withLiveFiles } from './sqlite/liveGate';
import type { SourceStateRecord } from './model';

export const DB_HEADER_SIZE = 100;
export const WAL_HEADER_SIZE = 32;
export const WAL_FRAME_HEADER_SIZE = 24;
/** WAL magic with little-endian checksum words; the big-endian variant has the low bit set. */
export const WAL_MAGIC = 0x377f0682;
export const WAL_FORMAT_VERSION = 3007000;
/** The first 8 bytes of a rollback journal header that holds a live (or crashed) transaction. */
export const JOURNAL_MAGIC = Buffer.from([0xd9, 0xd5, 0x05, 0xf9, 0x20, 0xa1, 0x63, 0xd7]);
/** WalIndexHdr is 48 bytes and stored twice; WalCkptInfo follows at 96. */
export const SHM_HEADER_SIZE = 136;

const SQLITE_MAGIC = Buffer.from('SQLite format 3\0', 'latin1');
const HOST_LE = os.endianness() === 'LE';
/** How much of a file's start is sampled to tell encrypted from merely foreign. */
const SNIFF_BYTES = 4096;

/** The fields of the database header that backups care about. */
export interface DbHeader {
  pageSize: number;
  /**
   * Pages in the database: the header field at offset 28 when SQLite would trust it
   * (non-zero and "version-valid-for" equals the change counter), else file size / pageSize.
   */
  pageCount: number;
  /** File change counter, offset 24. */
  changeCounter: number;
  /** 1 rollback journal, 2 WAL (offset 18). */
  writeVersion: number;
  /** 1 rollback journal, 2 WAL (offset 19). */
  readVersion: number;
  /** 1 UTF-8, 2 UTF-16le, 3 UTF-16be (offset 56). */
  textEncoding: number;
  /** SQLITE_VERSION_NUMBER of the library that last wrote the file (offset 96). */
  sqliteVersionNumber: number;
  /** Unused bytes at the end of each page (offset 20). */
  reservedBytes: number;
}

/** True for the page sizes SQLite supports: powers of two from 512 to 65536. */
export function isValidPageSize(n: number): boolean {
  return n >= 512 && n <= 65536 && (n & (n - 1)) === 0;
}

/**
 * True when `bytes` look like ciphertext: their byte entropy is close to 8 bits. Text,
 * zeroes and structured binaries stay far below the 7.0 threshold.
 */
export function looksRandom(bytes: Uint8Array): boolean {
  if (bytes.length < 256) return false;
  const counts = new Uint32Array(256);
  for (const b of bytes) counts[b]++;
  let h = 0;
  for (const c of counts) {
    if (c === 0) continue;
    const p = c / bytes.length;
    h -= p * Math.log2(p);
  }
  return h > 7.0;
}

/**
 * Parses a database header from the first bytes of a file (`head`: at least its first
 * 100 bytes, ideally up to 4096 so that ciphertext can be recognised).
 * Returns the header. Throws BackupError 'notSqlite' (empty, short, wrong magic, bad
 * page size) or 'encrypted' (a page-multiple sized file that starts with random bytes).
 * Pure; safe to repeat.
 */
export function parseDbHeader(head: Uint8Array, fileSize: number, path: string): DbHeader {
  const b = Buffer.from(head.buffer, head.byteOffset, head.byteLength);
  if (fileSize === 0) throw new BackupError('notSqlite', `${path}: empty file, not an SQLite database`, { path });
  if (b.length < 16 || !b.subarray(0, 16).equals(SQLITE_MAGIC)) {
    // SQLCipher and friends keep the file a whole number of pages and encrypt page 1's
    // header too, so a page-sized file of noise is most likely an encrypted database.
    if (fileSize >= 512 && fileSize % 512 === 0 && looksRandom(b.subarray(0, SNIFF_BYTES))) {
      throw new BackupError('encrypted', `${path}: not a plain SQLite database (encrypted?)`, { path });
    }
    throw new BackupError('notSqlite', `${path}: not an SQLite database (no "SQLite format 3" header)`, { path });
  }
  if (b.length < DB_HEADER_SIZE) {
    throw new BackupError('notSqlite', `${path}: not an SQLite database (header cut short at ${b.length} bytes)`, { path });
  }
  const raw = b.readUInt16BE(16);
  const pageSize = raw === 1 ? 65536 : raw;
  if (!isValidPageSize(pageSize) || b[21] !== 64 || b[22] !== 32 || b[23] !== 32) {
    throw new BackupError('notSqlite', `${path}: not an SQLite database (invalid header fields)`, { path });
  }
  const changeCounter = b.readUInt32BE(24);
  const inHeader = b.readUInt32BE(28);
  const validFor = b.readUInt32BE(92);
  const pageCount = inHeader !== 0 && validFor === changeCounter ? inHeader : Math.floor(fileSize / pageSize);
  return {
    pageSize,
    pageCount,
    changeCounter,
    writeVersion: b[18],
    readVersion: b[19],
    textEncoding: b.readUInt32BE(56),
    sqliteVersionNumber: b.readUInt32BE(96),
    reservedBytes: b[20],
  };
}

/** Reads up to `length` bytes at `position`; returns how many were read (short only at end of file). */
export async function readFully(fh: FileHandle, buf: Buffer, offset: number, length: number, position: number): Promise<number> {
  let done = 0;
  while (done < length) {
    const { bytesRead } = await fh.read(buf, offset + done, length - done, position + done);
    if (bytesRead === 0) break;
    done += bytesRead;
  }
  return done;
}

/**
 * Reads and parses the header of the database file at `path`.
 * Throws BackupError 'notFound' (missing), 'notSqlite', 'encrypted', or another fs
 * reason. Read-only; safe to repeat.
 */
export async function readDbHeader(path: string): Promise<DbHeader> {
  return withLiveFiles(path, () => readDbHeaderUnguarded(path));
}

async function readDbHeaderUnguarded(path: string): Promise<DbHeader> {
  let fh: FileHandle | undefined;
  try {
    fh = await fsp.open(path, 'r');
    const st = await fh.stat();
    if (!st.isFile()) throw new BackupError('notSqlite', `${path}: not a regular file`, { path });
    const head = Buffer.alloc(Math.min(st.size, SNIFF_BYTES));
    const n = await readFully(fh, head, 0, head.length, 0);
    return parseDbHeader(head.subarray(0, n), st.size, path);
  } catch (e) {
    throw fsError(e, path, 'reading the database header');
  } finally {
    await fh?.close().catch(() => undefined);
  }
}

/** The 32-byte WAL header. */
export interface WalHeader {
  /** Checksum words are big-endian (magic 0x377f0683) rather than little-endian (0x377f0682). */
  bigEndianChecksums: boolean;
  formatVersion: number;
  pageSize: number;
  checkpointSequence: number;
  salt1: number;
  salt2: number;
  checksum1: number;
  checksum2: number;
}

/**
 * SQLite's WAL checksum over the 32-bit words of `buf[start, end)` (a multiple of 8
 * bytes), continuing from `s1`, `s2`. Returns the new pair. Pure.
 */
export function walChecksum(buf: Buffer, start: number, end: number, bigEndian: boolean, s1: number, s2: number): [number, number] {
  let a = s1;
  let b = s2;
  const abs = buf.byteOffset + start;
  if (bigEndian !== HOST_LE && abs % 4 === 0) {
    // Native word order: a typed-array view is several times faster than readUInt32.
    const w = new Uint32Array(buf.buffer, abs, (end - start) >>> 2);
    for (let i = 0; i < w.length; i += 2) {
      a = (a + w[i] + b) >>> 0;
      b = (b + w[i + 1] + a) >>> 0;
    }
  } else {
    for (let i = start; i < end; i += 8) {
      const x0 = bigEndian ? buf.readUInt32BE(i) : buf.readUInt32LE(i);
      const x1 = bigEndian ? buf.readUInt32BE(i + 4) : buf.readUInt32LE(i + 4);
      a = (a + x0 + b) >>> 0;
      b = (b + x1 + a) >>> 0;
    }
  }
  return [a, b];
}

/**
 * Parses and checks a WAL header. Returns undefined when the bytes are not a valid
 * header (short, wrong magic or version, bad page size, checksum mismatch): such a
 * WAL contributes nothing to the database. Pure.
 */
export function parseWalHeader(buf: Buffer): WalHeader | undefined {
  if (buf.length < WAL_HEADER_SIZE) return undefined;
  const magic = buf.readUInt32BE(0);
  if ((magic & 0xfffffffe) !== WAL_MAGIC) return undefined;
  const bigEndianChecksums = (magic & 1) === 1;
  const h: WalHeader = {
    bigEndianChecksums,
    formatVersion: buf.readUInt32BE(4),
    pageSize: buf.readUInt32BE(8),
    checkpointSequence: buf.readUInt32BE(12),
    salt1: buf.readUInt32BE(16),
    salt2: buf.readUInt32BE(20),
    checksum1: buf.readUInt32BE(24),
    checksum2: buf.readUInt32BE(28),
  };
  if (h.formatVersion !== WAL_FORMAT_VERSION || !isValidPageSize(h.pageSize)) return undefined;
  const [c1, c2] = walChecksum(buf, 0, 24, bigEndianChecksums, 0, 0);
  if (c1 !== h.checksum1 || c2 !== h.checksum2) return undefined;
  return h;
}

/** What a pass over a WAL found. */
export interface WalScan {
  /** The header; undefined when the WAL is missing, empty or its header is invalid. */
  header: WalHeader | undefined;
  /** Frames up to and including the last valid commit frame; 0 when there is none. */
  frames: number;
  /** Database size in pages after that commit; 0 when there is none. */
  dbSize: number;
  /** Newest committed version of each page: page number -> byte offset of its frame (header) in the WAL. */
  pages: Map<number, number>;
  /** Valid frames after the last commit frame (an open or abandoned transaction), ignored. */
  uncommittedFrames: number;
  /** Bytes of the WAL file read. */
  bytesRead: number;
}

export interface ScanWalOptions {
  signal?: AbortSignal;
  /** Reused read buffer; its size bounds memory (default 4 MiB). */
  buffer?: Buffer;
  onBytes?: (bytesRead: number) => void;
}

/**
 * Reads the WAL open in `fh` from the start, validating each frame as SQLite's recovery
 * does (salts equal the header's, cumulative checksum over header then frames, non-zero
 * page number) and stopping at the first invalid or torn frame. Holds only a page ->
 * offset map, never page contents. Returns the scan; throws on I/O errors (callers map
 * them) and the signal's reason when aborted. Read-only; safe to repeat.
 */
export async function scanWal(fh: FileHandle, opts: ScanWalOptions = {}): Promise<WalScan> {
  const result: WalScan = { header: undefined, frames: 0, dbSize: 0, pages: new Map(), uncommittedFrames: 0, bytesRead: 0 };
  const hb = Buffer.alloc(WAL_HEADER_SIZE);
  if ((await readFully(fh, hb, 0, WAL_HEADER_SIZE, 0)) < WAL_HEADER_SIZE) return result;
  const header = parseWalHeader(hb);
  if (!header) return result;
  result.header = header;
  result.bytesRead = WAL_HEADER_SIZE;
  const frameSize = WAL_FRAME_HEADER_SIZE + header.pageSize;
  const buf = opts.buffer ?? Buffer.allocUnsafeSlow(4 << 20);
  const perChunk = Math.floor(buf.length / frameSize);
  if (perChunk < 1) throw new RangeError(`scanWal buffer too small for ${header.pageSize}-byte pages`);
  let s1 = header.checksum1;
  let s2 = header.checksum2;
  let frame = 0; // frames validated so far
  // Frames since the last commit: applied to `pages` only when their commit frame arrives.
  let pending: number[] = [];
  for (;;) {
    if (opts.signal?.aborted) throw opts.signal.reason;
    const pos = WAL_HEADER_SIZE + frame * frameSize;
    const n = await readFully(fh, buf, 0, perChunk * frameSize, pos);
    result.bytesRead += n;
    opts.onBytes?.(result.bytesRead);
    const whole = Math.floor(n / frameSize);
    let k = 0;
    for (; k < whole; k++) {
      const at = k * frameSize;
      const pgno = buf.readUInt32BE(at);
      const commitSize = buf.readUInt32BE(at + 4);
      if (pgno === 0 || buf.readUInt32BE(at + 8) !== header.salt1 || buf.readUInt32BE(at + 12) !== header.salt2) break;
      let c = walChecksum(buf, at, at + 8, header.bigEndianChecksums, s1, s2);
      c = walChecksum(buf, at + WAL_FRAME_HEADER_SIZE, at + frameSize, header.bigEndianChecksums, c[0], c[1]);
      if (c[0] !== buf.readUInt32BE(at + 16) || c[1] !== buf.readUInt32BE(at + 20)) break;
      s1 = c[0];
      s2 = c[1];
      pending.push(pgno, pos + at);
      frame++;
      if (commitSize !== 0) {
        for (let i = 0; i < pending.length; i += 2) result.pages.set(pending[i], pending[i + 1]);
        pending = [];
        result.frames = frame;
        result.dbSize = commitSize;
      }
    }
    if (k < whole || whole < perChunk) break;
  }
  result.uncommittedFrames = pending.length / 2;
  return result;
}

/** Convenience for tests and tools: opens `walPath`, scans it, closes it. A missing file scans as empty. */
export async function scanWalFile(walPath: string, opts: ScanWalOptions = {}): Promise<WalScan> {
  return withLiveFiles(walPath, () => scanWalFileUnguarded(walPath, opts));
}

async function scanWalFileUnguarded(walPath: string, opts: ScanWalOptions = {}): Promise<WalScan> {
  let fh: FileHandle;
  try {
    fh = await fsp.open(walPath, 'r');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return { header: undefined, frames: 0, dbSize: 0, pages: new Map(), uncommittedFrames: 0, bytesRead: 0 };
    throw fsError(e, walPath, 'opening the WAL');
  }
  try {
    return await scanWal(fh, opts);
  } catch (e) {
    throw fsError(e, walPath, 'reading the WAL');
  } finally {
    await fh.close().catch(() => undefined);
  }
}

/** The wal-index header at the start of -shm (WalIndexHdr, then WalCkptInfo), in native byte order. */
export interface ShmHeader {
  /** Both 48-byte copies were byte-equal (a writer was not half-way through updating them). */
  stable: boolean;
  version: number;
  /** Counter bumped by every write transaction. */
  change: number;
  isInit: number;
  bigEndianChecksums: boolean;
  pageSize: number;
  /** Index of the last valid commit frame in the WAL. */
  mxFrame: number;
  /** Database size in pages as of mxFrame. */
  nPage: number;
  salt1: number;
  salt2: number;
  /** Frames copied back into the database by checkpoints. */
  nBackfill: number;
  readMarks: number[];
  /** The frame a checkpoint has set out to copy up to (set before it writes the database). */
  nBackfillAttempted: number;
}

/**
 * Parses the first 136 bytes of a -shm file. Returns undefined for fewer bytes. `stable`
 * is false when the two header copies differ. Pure.
 */
export function parseShmHeader(b: Buffer): ShmHeader | undefined {
  if (b.length < SHM_HEADER_SIZE) return undefined;
  const u32 = (o: number) => (HOST_LE ? b.readUInt32LE(o) : b.readUInt32BE(o));
  const u16 = (o: number) => (HOST_LE ? b.readUInt16LE(o) : b.readUInt16BE(o));
  const rawSize = u16(14);
  return {
    stable: b.subarray(0, 48).equals(b.subarray(48, 96)),
    version: u32(0),
    change: u32(8),
    isInit: b[12],
    bigEndianChecksums: b[13] !== 0,
    // 65536 does not fit in 16 bits; SQLite stores it as 1 (bit 16 moved to bit 0).
    pageSize: (rawSize & 0xfe00) | ((rawSize & 0x0001) << 16),
    mxFrame: u32(16),
    nPage: u32(20),
    // The salts are a byte copy of the WAL header's, so big-endian whatever the host.
    salt1: b.readUInt32BE(32),
    salt2: b.readUInt32BE(36),
    nBackfill: u32(96),
    readMarks: [0, 1, 2, 3, 4].map((i) => u32(100 + 4 * i)),
    nBackfillAttempted: u32(128),
  };
}

/**
 * Reads the -shm header at `shmPath`. Returns undefined when the file is missing or
 * shorter than the header. When the two copies differ it re-reads a few times and
 * returns the last read with `stable: false`. Throws BackupError on other fs errors.
 * Read-only; safe to repeat.
 */
export async function readShmHeader(shmPath: string): Promise<ShmHeader | undefined> {
  return withLiveFiles(shmPath, () => readShmHeaderUnguarded(shmPath));
}

async function readShmHeaderUnguarded(shmPath: string): Promise<ShmHeader | undefined> {
  let fh: FileHandle;
  try {
    fh = await fsp.open(shmPath, 'r');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw fsError(e, shmPath, 'reading the wal-index');
  }
  try {
    const b = Buffer.alloc(SHM_HEADER_SIZE);
    let h: ShmHeader | undefined;
    for (let i = 0; i < 4; i++) {
      const n = await readFully(fh, b, 0, SHM_HEADER_SIZE, 0);
      h = parseShmHeader(b.subarray(0, n));
      if (!h || h.stable) return h;
    }
    return h;
  } catch (e) {
    throw fsError(e, shmPath, 'reading the wal-index');
  } finally {
    await fh.close().catch(() => undefined);
  }
}

/** Reads and parses the header of the WAL at `walPath`; undefined when missing, empty or invalid. */
export async function readWalHeader(walPath: string): Promise<{ header: WalHeader | undefined; size: number; mtimeMs: number }> {
  return withLiveFiles(walPath, () => readWalHeaderUnguarded(walPath));
}

async function readWalHeaderUnguarded(walPath: string): Promise<{ header: WalHeader | undefined; size: number; mtimeMs: number }> {
  let fh: FileHandle;
  try {
    fh = await fsp.open(walPath, 'r');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return { header: undefined, size: 0, mtimeMs: 0 };
    throw fsError(e, walPath, 'reading the WAL header');
  }
  try {
    const st = await fh.stat();
    const b = Buffer.alloc(WAL_HEADER_SIZE);
    const n = await readFully(fh, b, 0, WAL_HEADER_SIZE, 0);
    return { header: parseWalHeader(b.subarray(0, n)), size: st.size, mtimeMs: st.mtimeMs };
  } catch (e) {
    throw fsError(e, walPath, 'reading the WAL header');
  } finally {
    await fh.close().catch(() => undefined);
  }
}

/**
 * True when `<db>-journal` holds a transaction: it exists, is non-empty and starts with
 * the journal magic (a committed PERSIST journal has a zeroed header, TRUNCATE leaves
 * it empty, DELETE removes it). Read-only.
 */
export async function hasHotJournal(dbPath: string): Promise<boolean> {
  return withLiveFiles(dbPath, () => hasHotJournalUnguarded(dbPath));
}

async function hasHotJournalUnguarded(dbPath: string): Promise<boolean> {
  const p = `${dbPath}-journal`;
  let fh: FileHandle;
  try {
    fh = await fsp.open(p, 'r');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return false;
    throw fsError(e, p, 'reading the rollback journal');
  }
  try {
    const b = Buffer.alloc(JOURNAL_MAGIC.length);
    const n = await readFully(fh, b, 0, b.length, 0);
    return n === b.length && b.equals(JOURNAL_MAGIC);
  } catch (e) {
    throw fsError(e, p, 'reading the rollback journal');
  } finally {
    await fh.close().catch(() => undefined);
  }
}

/** A cheap fingerprint of a database and its WAL, to tell "unchanged since the last backup" (the shape manifests record). */
export type SourceState = SourceStateRecord;

/**
 * Reads the fingerprint of `dbPath` (stat, header change counter, WAL header, -shm
 * mxFrame). Two equal states mean no commit landed in between, for writers that go
 * through SQLite. Throws BackupError notFound | notSqlite | encrypted. Read-only.
 */
export async function readSourceState(dbPath: string): Promise<SourceState> {
  return withLiveFiles(dbPath, () => readSourceStateUnguarded(dbPath));
}

async function readSourceStateUnguarded(dbPath: string): Promise<SourceState> {
  let st;
  try {
    st = await fsp.stat(dbPath);
  } catch (e) {
    throw fsError(e, dbPath, 'reading the database');
  }
  const header = await readDbHeader(dbPath);
  const wal = await readWalHeader(`${dbPath}-wal`);
  const state: SourceState = {
    size: st.size,
    mtimeMs: st.mtimeMs,
    changeCounter: header.changeCounter,
    walSize: wal.size,
    walMtimeMs: wal.mtimeMs,
  };
  if (wal.header) {
    state.walSalt1 = wal.header.salt1;
    state.walSalt2 = wal.header.salt2;
    const shm = await readShmHeader(`${dbPath}-shm`);
    if (shm?.isInit && shm.stable) state.walMxFrame = shm.mxFrame;
  }
  return state;
}

/**
 * Writes a zip file as a stream, with the compressor Lifeboat ships named here in the
 * source: deflate on several threads (ParallelDeflateRaw) and CRC32 in Node's native
 * `zlib.crc32`. The tests and the bundle run this same code; nothing is swapped at build
 * time. (yazl, which wrote the archives before, takes neither a compressor nor a CRC from
 * its caller: its deflate and CRC are fixed imports.)
 *
 * The layout is the one every v1 archive has had, yazl 3.3's (the unit test compares the
 * bytes with yazl's), so readers see no change:
 * - local header: version needed 2.0, UTF-8 names (flag bit 11), no extra field. A stream
 *   entry sets flag bit 3, leaves CRC and sizes zero, and is followed by a data descriptor
 *   with its signature (16 bytes; 24 with 8-byte sizes in ZIP64 form). A buffer entry has
 *   CRC and sizes in its header and no descriptor.
 * - central directory record: made by Unix, spec 6.3; the unix mode in the external
 *   attributes; an Info-ZIP "UT" extra field with the mtime in UTC seconds; ZIP64 extra
 *   field (sizes and offset) and version needed 4.5 when a size or the offset exceeds
 *   0xfffffffe.
 * - end of central directory with the archive comment, preceded by the ZIP64 end record and
 *   locator when the entry count, the directory's size or its offset do not fit.
 */
import { PassThrough, Transform, type Readable, type TransformCallback } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { promisify } from 'node:util';
import zlib from 'node:zlib';
import { ParallelDeflateRaw } from './parallelDeflate';

/** Describes one entry. */
export interface ZipEntryOptions {
  /** Relative, `/`-separated, stored as UTF-8 (at most 65535 bytes). */
  name: string;
  /** Stored as MS-DOS local time (clamped to 1980..2107) and as UTC seconds in the "UT" field. */
  mtime: Date;
  /** Unix file type and permission bits, e.g. 0o100644. */
  mode: number;
  /** 0 stores the data; 1..9 deflates it at that zlib level, on several threads. */
  level: number;
}

/** What an entry was written with: CRC32 and size of its data, and the bytes it took. */
export interface ZipEntryResult {
  crc32: number;
  size: number;
  compressedSize: number;
}

export type ZipWriterErrorReason =
  | 'sizeChanged' // a stream entry gave more or fewer bytes than its declared size
  | 'outputClosed'; // `output` was destroyed before the archive was complete

/** A failure of the zip itself; errors of the source or of zlib pass through unchanged. */
export class ZipWriterError extends Error {
  override readonly name = 'ZipWriterError';
  constructor(
    readonly reason: ZipWriterErrorReason,
    message: string,
  ) {
    super(message);
  }

  static is(e: unknown, reason?: ZipWriterErrorReason): e is ZipWriterError {
    return e instanceof ZipWriterError && (reason === undefined || e.reason === reason);
  }
}

const LOCAL_HEADER = 0x04034b50;
const DATA_DESCRIPTOR = 0x08074b50;
const CENTRAL_HEADER = 0x02014b50;
const ZIP64_END = 0x06064b50;
const ZIP64_LOCATOR = 0x07064b50;
const END = 0x06054b50;
const VERSION_NEEDED = 20;
const VERSION_NEEDED_ZIP64 = 45;
const VERSION_MADE_BY = (3 << 8) | 63;
const FLAG_DATA_DESCRIPTOR = 1 << 3;
const FLAG_UTF8 = 1 << 11;
const STORE = 0;
const DEFLATE = 8;
/** Sizes and offsets above this are written in ZIP64 form (0xffffffff itself marks "see ZIP64"). */
const MAX_32 = 0xfffffffe;
/** The largest buffer entry: its deflated size must fit the local header's 32-bit field. */
const MAX_BUFFER = 0x3fffffff;
const EARLIEST_DOS = new Date(1980, 0, 1);
const LATEST_DOS = new Date(2107, 11, 31, 23, 59, 58);

const deflateRaw = promisify(zlib.deflateRaw);

interface Written extends ZipEntryOptions {
  nameBytes: Buffer;
  crc32: number;
  size: number;
  compressedSize: number;
  offset: number;
  /** Whether CRC and sizes follow the data (stream entries) instead of leading it. */
  descriptor: boolean;
}

/**
 * A zip written to `output` one entry at a time, in the order the entries were added:
 * `addStream`/`addBuffer` may be called before the previous entry is written; `finish`
 * writes the central directory and ends `output`. Backpressure comes from `output`'s
 * consumers. Each method's promise resolves when its bytes were handed to `output`, and
 * rejects with the first failure: a ZipWriterError, the source's or zlib's error, or a
 * TypeError/RangeError for invalid options or a call after `finish` (the methods never
 * throw); every later entry and `finish` then reject with the same error. On failure
 * `output` is left as it is (not ended) and a stream entry's source may be unread: the
 * caller tears both down. One archive per instance.
 */
export class ZipWriter {
  /** The zip's bytes. */
  readonly output = new PassThrough();
  private offset = 0;
  private readonly entries: Written[] = [];
  private queue: Promise<unknown> = Promise.resolve();
  private finished = false;

  /**
   * Adds an entry whose data is read from `source`, which must give exactly `o.size` bytes
   * (else ZipWriterError 'sizeChanged' once the source ends). The data is checksummed and
   * compressed as it streams; nothing is buffered beyond the compressor's blocks.
   */
  addStream(source: Readable, o: ZipEntryOptions & { size: number }): Promise<ZipEntryResult> {
    return this.enqueue(() => {
      const nameBytes = checkEntry(o);
      if (!Number.isSafeInteger(o.size) || o.size < 0) throw new RangeError(`zip entry size ${String(o.size)} is not a byte count`);
      return this.writeStream(source, o, nameBytes);
    });
  }

  /**
   * Adds an entry holding `data` (at most 1 GiB), compressed with Node's one-shot deflate at
   * once, in parallel with the entries before it.
   */
  addBuffer(data: Buffer, o: ZipEntryOptions): Promise<ZipEntryResult> {
    let nameBytes: Buffer;
    let body: Promise<Buffer>;
    try {
      nameBytes = checkEntry(o);
      if (data.length > MAX_BUFFER) throw new RangeError(`zip buffer entry of ${data.length} bytes (limit ${MAX_BUFFER})`);
      body = o.level === 0 ? Promise.resolve(data) : deflateRaw(data, { level: o.level });
    } catch (e) {
      nameBytes = Buffer.alloc(0);
      body = Promise.reject(e);
    }
    body.catch(() => undefined);
    return this.enqueue(async () => {
      const compressed = await body;
      const e: Written = { ...o, nameBytes, crc32: zlib.crc32(data) >>> 0, size: data.length, compressedSize: compressed.length, offset: this.offset, descriptor: false };
      await this.put(localHeader(e));
      await this.put(compressed);
      this.entries.push(e);
      return { crc32: e.crc32, size: e.size, compressedSize: e.compressedSize };
    });
  }

  /**
   * Writes the central directory and the end records with `comment` (printable ASCII, at
   * most 65535 characters), then ends `output`.
   */
  finish(comment = ''): Promise<void> {
    const run = this.enqueue(async () => {
      if (!/^[\x20-\x7e]*$/.test(comment) || comment.length > 0xffff) throw new RangeError('a zip comment must be printable ASCII, at most 65535 characters');
      const start = this.offset;
      for (const e of this.entries) await this.put(centralRecord(e));
      await this.put(endRecords(this.entries.length, start, this.offset - start, this.offset, Buffer.from(comment, 'latin1')));
      this.output.end();
    });
    this.finished = true;
    return run;
  }

  private enqueue<T>(task: () => Promise<T>): Promise<T> {
    if (this.finished) return Promise.reject(new TypeError('ZipWriter: an entry or finish() after finish()'));
    const run = this.queue.then(task);
    this.queue = run;
    return run;
  }

  private async writeStream(source: Readable, o: ZipEntryOptions & { size: number }, nameBytes: Buffer): Promise<ZipEntryResult> {
    const e: Written = { ...o, nameBytes, crc32: 0, size: 0, compressedSize: 0, offset: this.offset, descriptor: true };
    await this.put(localHeader(e));
    const checksum = new Transform({
      transform(chunk: Buffer, _enc, cb: TransformCallback) {
        e.crc32 = zlib.crc32(chunk, e.crc32);
        e.size += chunk.length;
        cb(null, chunk);
      },
    });
    const compressor = o.level === 0 ? new PassThrough() : new ParallelDeflateRaw({ level: o.level });
    let putFailed: unknown;
    try {
      await pipeline(source, checksum, compressor, async (body: AsyncIterable<Buffer>) => {
        for await (const chunk of body) {
          e.compressedSize += chunk.length;
          await this.put(chunk).catch((err: unknown) => {
            putFailed = err;
            throw err;
          });
        }
      });
    } catch (err) {
      // Node 20's pipeline reports the AbortError of leaving the loop, not the sink's own error.
      throw putFailed ?? err;
    }
    e.crc32 >>>= 0;
    if (e.size !== o.size) {
      throw new ZipWriterError('sizeChanged', `zip entry ${JSON.stringify(o.name)}: the stream gave ${e.size} bytes, not the ${o.size} declared`);
    }
    await this.put(dataDescriptor(e));
    this.entries.push(e);
    return { crc32: e.crc32, size: e.size, compressedSize: e.compressedSize };
  }

  /** Hands `chunk` to `output`, waiting for it to drain when its buffer is full. */
  private async put(chunk: Buffer): Promise<void> {
    const out = this.output;
    if (out.destroyed || out.writableEnded) throw closed();
    if (chunk.length === 0) return;
    this.offset += chunk.length;
    if (out.write(chunk)) return;
    await new Promise<void>((resolve, reject) => {
      const settle = (e?: Error): void => {
        out.off('drain', onDrain);
        out.off('close', onClose);
        if (e) reject(e);
        else resolve();
      };
      const onDrain = (): void => settle();
      const onClose = (): void => settle(closed());
      out.on('drain', onDrain);
      out.on('close', onClose);
    });
  }
}

function closed(): ZipWriterError {
  return new ZipWriterError('outputClosed', 'the zip output was closed before the archive was complete');
}

/** Checks an entry's options; returns its name as UTF-8. */
function checkEntry(o: ZipEntryOptions): Buffer {
  const nameBytes = Buffer.from(o.name, 'utf8');
  if (nameBytes.length === 0 || nameBytes.length > 0xffff) throw new RangeError(`zip entry name of ${nameBytes.length} bytes`);
  if (!Number.isInteger(o.level) || o.level < 0 || o.level > 9) throw new RangeError(`zip compression level ${String(o.level)} is not 0..9`);
  if (!Number.isInteger(o.mode) || o.mode < 0 || o.mode > 0xffff) throw new RangeError(`zip entry mode ${String(o.mode)} is not 16 bits`);
  if (!(o.mtime instanceof Date) || Number.isNaN(o.mtime.getTime())) throw new TypeError(`zip entry ${JSON.stringify(o.name)}: mtime is not a valid Date`);
  return nameBytes;
}

function needsZip64(e: Written): boolean {
  return e.size > MAX_32 || e.compressedSize > MAX_32 || e.offset > MAX_32;
}

function flags(e: Written): number {
  return FLAG_UTF8 | (e.descriptor ? FLAG_DATA_DESCRIPTOR : 0);
}

/** MS-DOS date and time in local time, as zip headers store them (two-second steps). */
function dosDateTime(d: Date): { date: number; time: number } {
  const t = d < EARLIEST_DOS ? EARLIEST_DOS : d > LATEST_DOS ? LATEST_DOS : d;
  return {
    date: t.getDate() | ((t.getMonth() + 1) << 5) | ((t.getFullYear() - 1980) << 9),
    time: (t.getSeconds() >> 1) | (t.getMinutes() << 5) | (t.getHours() << 11),
  };
}

function localHeader(e: Written): Buffer {
  const b = Buffer.alloc(30 + e.nameBytes.length);
  const { date, time } = dosDateTime(e.mtime);
  b.writeUInt32LE(LOCAL_HEADER, 0);
  b.writeUInt16LE(VERSION_NEEDED, 4);
  b.writeUInt16LE(flags(e), 6);
  b.writeUInt16LE(e.level === 0 ? STORE : DEFLATE, 8);
  b.writeUInt16LE(time, 10);
  b.writeUInt16LE(date, 12);
  if (!e.descriptor) {
    b.writeUInt32LE(e.crc32, 14);
    b.writeUInt32LE(e.compressedSize, 18);
    b.writeUInt32LE(e.size, 22);
  }
  b.writeUInt16LE(e.nameBytes.length, 26);
  e.nameBytes.copy(b, 30);
  return b;
}

function dataDescriptor(e: Written): Buffer {
  if (!needsZip64(e)) {
    const b = Buffer.alloc(16);
    b.writeUInt32LE(DATA_DESCRIPTOR, 0);
    b.writeUInt32LE(e.crc32, 4);
    b.writeUInt32LE(e.compressedSize, 8);
    b.writeUInt32LE(e.size, 12);
    return b;
  }
  const b = Buffer.alloc(24);
  b.writeUInt32LE(DATA_DESCRIPTOR, 0);
  b.writeUInt32LE(e.crc32, 4);
  b.writeBigUInt64LE(BigInt(e.compressedSize), 8);
  b.writeBigUInt64LE(BigInt(e.size), 16);
  return b;
}

function centralRecord(e: Written): Buffer {
  const zip64 = needsZip64(e);
  const { date, time } = dosDateTime(e.mtime);
  // "UT" extended timestamp: flags say mtime and atime, but the central copy holds mtime only.
  const ut = Buffer.alloc(9);
  ut.writeUInt16LE(0x5455, 0);
  ut.writeUInt16LE(5, 2);
  ut.writeUInt8(0b11, 4);
  ut.writeInt32LE(Math.min(0x7fffffff, Math.max(-0x80000000, Math.floor(e.mtime.getTime() / 1000))), 5);
  const z64 = Buffer.alloc(zip64 ? 28 : 0);
  if (zip64) {
    z64.writeUInt16LE(0x0001, 0);
    z64.writeUInt16LE(24, 2);
    z64.writeBigUInt64LE(BigInt(e.size), 4);
    z64.writeBigUInt64LE(BigInt(e.compressedSize), 12);
    z64.writeBigUInt64LE(BigInt(e.offset), 20);
  }
  const b = Buffer.alloc(46);
  b.writeUInt32LE(CENTRAL_HEADER, 0);
  b.writeUInt16LE(VERSION_MADE_BY, 4);
  b.writeUInt16LE(zip64 ? VERSION_NEEDED_ZIP64 : VERSION_NEEDED, 6);
  b.writeUInt16LE(flags(e), 8);
  b.writeUInt16LE(e.level === 0 ? STORE : DEFLATE, 10);
  b.writeUInt16LE(time, 12);
  b.writeUInt16LE(date, 14);
  b.writeUInt32LE(e.crc32, 16);
  b.writeUInt32LE(zip64 ? 0xffffffff : e.compressedSize, 20);
  b.writeUInt32LE(zip64 ? 0xffffffff : e.size, 24);
  b.writeUInt16LE(e.nameBytes.length, 28);
  b.writeUInt16LE(ut.length + z64.length, 30);
  // comment length, disk number and internal attributes stay 0
  b.writeUInt32LE((e.mode << 16) >>> 0, 38);
  b.writeUInt32LE(zip64 ? 0xffffffff : e.offset, 42);
  return Buffer.concat([b, e.nameBytes, ut, z64]);
}

/** The end records: ZIP64 end record and locator when needed, then the classic end record. */
function endRecords(count: number, start: number, size: number, at: number, comment: Buffer): Buffer {
  const zip64 = count >= 0xffff || size > MAX_32 || start > MAX_32;
  const end = Buffer.alloc(22 + comment.length);
  end.writeUInt32LE(END, 0);
  end.writeUInt16LE(Math.min(count, 0xffff), 8);
  end.writeUInt16LE(Math.min(count, 0xffff), 10);
  end.writeUInt32LE(size > MAX_32 ? 0xffffffff : size, 12);
  end.writeUInt32LE(start > MAX_32 ? 0xffffffff : start, 16);
  end.writeUInt16LE(comment.length, 20);
  comment.copy(end, 22);
  if (!zip64) return end;
  const record = Buffer.alloc(56);
  record.writeUInt32LE(ZIP64_END, 0);
  record.writeBigUInt64LE(BigInt(56 - 12), 4);
  record.writeUInt16LE(VERSION_MADE_BY, 12);
  record.writeUInt16LE(VERSION_NEEDED_ZIP64, 14);
  record.writeBigUInt64LE(BigInt(count), 24);
  record.writeBigUInt64LE(BigInt(count), 32);
  record.writeBigUInt64LE(BigInt(size), 40);
  record.writeBigUInt64LE(BigInt(start), 48);
  const locator = Buffer.alloc(20);
  locator.writeUInt32LE(ZIP64_LOCATOR, 0);
  locator.writeBigUInt64LE(BigInt(at), 8);
  locator.writeUInt32LE(1, 16);
  return Buffer.concat([record, locator, end]);
}

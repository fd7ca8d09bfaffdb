import { Writable } from 'node:stream';
import zlib from 'node:zlib';

/** What the first entry of a zip byte stream decodes to. */
export interface DecodedEntry {
  size: number;
  crc32: number;
}

const LOCAL_HEADER = 0x04034b50;

/**
 * Reads a zip byte stream as it is being written (a second consumer of the writer's
 * output) and decodes the data of its first entry: deflate through Node's zlib (libuv's
 * pool), or stored bytes of `storedSize`. `result` resolves with the decoded bytes'
 * size and CRC32 (native zlib.crc32; the sha256 of the same bytes is taken on the input), so a backup is checked against its image while it is
 * compressed, not in a second pass afterwards. Bytes after the entry are ignored.
 */
export class EntryDecoder extends Writable {
  readonly result: Promise<DecodedEntry>;
  private header: Buffer[] = [];
  private headerBytes = 0;
  private state: 'header' | 'data' | 'done' = 'header';
  private inflate?: zlib.InflateRaw;
  private storedLeft = 0;
  private size = 0;
  private crc = 0;
  private resolve!: (d: DecodedEntry) => void;
  private reject!: (e: Error) => void;

  constructor(private readonly storedSize: number) {
    super();
    this.result = new Promise<DecodedEntry>((res, rej) => {
      this.resolve = res;
      this.reject = rej;
    });
    this.result.catch(() => undefined);
  }

  private take(chunk: Buffer): void {
    this.size += chunk.length;
    this.crc = zlib.crc32(chunk, this.crc);
  }

  private finish(): void {
    if (this.state === 'done') return;
    this.state = 'done';
    this.resolve({ size: this.size, crc32: this.crc >>> 0 });
  }

  private fail(e: Error): void {
    if (this.state === 'done') return;
    this.state = 'done';
    this.reject(e);
  }

  override _write(chunk: Buffer, _enc: BufferEncoding, cb: (e?: Error | null) => void): void {
    if (this.state === 'done') return cb();
    if (this.state === 'header') {
      this.header.push(chunk);
      this.headerBytes += chunk.length;
      if (this.headerBytes < 30) return cb();
      const all = Buffer.concat(this.header, this.headerBytes);
      if (all.readUInt32LE(0) !== LOCAL_HEADER) {
        this.fail(new Error('the archive does not start with a local file header'));
        return cb();
      }
      const start = 30 + all.readUInt16LE(26) + all.readUInt16LE(28);
      if (all.length < start) return cb();
      this.header = [];
      const method = all.readUInt16LE(8);
      this.state = 'data';
      if (method === 8) {
        this.inflate = zlib.createInflateRaw({ chunkSize: 1 << 20 });
        this.inflate.on('data', (d: Buffer) => this.take(d));
        this.inflate.on('end', () => this.finish());
        this.inflate.on('error', (e) => this.fail(new Error(`the compressed image does not decode: ${e.message}`)));
      } else if (method === 0) {
        this.storedLeft = this.storedSize;
      } else {
        this.fail(new Error(`unexpected compression method ${method}`));
        return cb();
      }
      return this.feed(all.subarray(start), cb);
    }
    this.feed(chunk, cb);
  }

  private feed(data: Buffer, cb: (e?: Error | null) => void): void {
    if (this.state !== 'data' || data.length === 0) return cb();
    if (this.inflate) {
      // Flow control: wait for the inflater when it is behind.
      if (this.inflate.write(data)) cb();
      else this.inflate.once('drain', () => cb());
      return;
    }
    const n = Math.min(this.storedLeft, data.length);
    this.take(data.subarray(0, n));
    this.storedLeft -= n;
    if (this.storedLeft === 0) this.finish();
    cb();
  }

  override _final(cb: (e?: Error | null) => void): void {
    if (this.inflate && this.state === 'data') {
      this.inflate.once('end', () => cb());
      this.inflate.end();
      return;
    }
    if (this.state !== 'done') this.fail(new Error('the archive ended before its image entry did'));
    cb();
  }
}

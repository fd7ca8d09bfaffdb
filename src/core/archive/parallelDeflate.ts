import os from 'node:os';
import { Transform, type TransformCallback } from 'node:stream';
import zlib from 'node:zlib';

const WINDOW = 32 * 1024;

/**
 * A raw-deflate Transform that compresses independent blocks on several threads (libuv's
 * pool) and emits one valid deflate stream, as pigz does: every block but the last ends
 * with a sync flush (byte-aligned, not final), and each block is primed with the last
 * 32 KiB of the input before it as its dictionary, so the ratio stays close to a single
 * stream's. Output order equals input order; memory is bounded by `concurrency` blocks.
 * The output depends only on the input, `level` and `blockSize` (not on how the input is
 * chunked, nor on `concurrency`). ZipWriter compresses every deflated stream entry with it.
 */
export class ParallelDeflateRaw extends Transform {
  private readonly level: number;
  private readonly blockSize: number;
  private readonly concurrency: number;
  private pending: Buffer[] = [];
  private pendingBytes = 0;
  private previousTail: Buffer | undefined;
  private inFlight: Promise<Buffer>[] = [];

  constructor(options: { level?: number; blockSize?: number; concurrency?: number } = {}) {
    super();
    this.level = options.level ?? zlib.constants.Z_DEFAULT_COMPRESSION;
    this.blockSize = options.blockSize ?? 1024 * 1024;
    this.concurrency = Math.max(1, options.concurrency ?? Math.min(4, os.availableParallelism?.() ?? os.cpus().length));
  }

  override _transform(chunk: Buffer, _enc: BufferEncoding, done: TransformCallback): void {
    this.pending.push(chunk);
    this.pendingBytes += chunk.length;
    this.drainFullBlocks()
      .then(() => done())
      .catch(done);
  }

  override _flush(done: TransformCallback): void {
    const rest = Buffer.concat(this.pending, this.pendingBytes);
    this.pending = [];
    this.pendingBytes = 0;
    this.start(rest, true);
    this.emitAll()
      .then(() => done())
      .catch(done);
  }

  private async drainFullBlocks(): Promise<void> {
    while (this.pendingBytes >= this.blockSize) {
      const all = Buffer.concat(this.pending, this.pendingBytes);
      const block = all.subarray(0, this.blockSize);
      const rest = all.subarray(this.blockSize);
      this.pending = rest.length ? [rest] : [];
      this.pendingBytes = rest.length;
      this.start(block, false);
      while (this.inFlight.length >= this.concurrency) await this.emitOldest();
    }
  }

  private start(block: Buffer, last: boolean): void {
    const dictionary = this.previousTail;
    // Copy the tail: `block` may be a view of a buffer the source reuses.
    this.previousTail = Buffer.from(block.subarray(Math.max(0, block.length - WINDOW)));
    if (dictionary && this.previousTail.length < WINDOW) {
      this.previousTail = Buffer.concat([dictionary, this.previousTail]).subarray(-WINDOW);
    }
    const opts: zlib.ZlibOptions = {
      level: this.level,
      // One round trip to the pool per block: with zlib's default 16 KiB output chunks the
      // main thread spent more time in callbacks than the pool spent compressing.
      chunkSize: block.length + (block.length >> 3) + 1024,
      finishFlush: last ? zlib.constants.Z_FINISH : zlib.constants.Z_SYNC_FLUSH,
      ...(dictionary && dictionary.length ? { dictionary } : {}),
    };
    const compressed = new Promise<Buffer>((resolve, reject) => zlib.deflateRaw(block, opts, (err, out) => (err ? reject(err) : resolve(out))));
    // Only the oldest block is awaited; a later one failing first must not be an unhandled rejection.
    compressed.catch(() => undefined);
    this.inFlight.push(compressed);
  }

  private async emitOldest(): Promise<void> {
    const next = this.inFlight[0];
    const out = await next;
    this.inFlight.shift();
    this.push(out);
  }

  private async emitAll(): Promise<void> {
    while (this.inFlight.length) await this.emitOldest();
  }
}

/**
 * The archive seal: the zip comment of every Lifeboat archive is
 * `lifeboat-seal sha256:<64 hex>`, the sha256 of every byte of the file before those 64
 * hex digits. Zip readers ignore many header bytes (timestamps, "version made by", the
 * data descriptors, the local copies of central-directory fields); the seal makes a
 * change to any byte of the archive detectable by `checkArchive`, not only changes to the
 * entries' data, which CRC32 and the manifest's sha256 already cover.
 */
import { createHash, type Hash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { Transform, type TransformCallback } from 'node:stream';

export const SEAL_PREFIX = 'lifeboat-seal sha256:';
/** Length of the hex digest that ends every sealed archive. */
export const SEAL_DIGEST_LENGTH = 64;
/** The comment handed to the zip writer; `SealingStream` replaces the zeros with the digest. */
export const SEAL_PLACEHOLDER = SEAL_PREFIX + '0'.repeat(SEAL_DIGEST_LENGTH);
const SEAL_PATTERN = /^lifeboat-seal sha256:[0-9a-f]{64}$/;

/** True when a zip comment has the shape of a seal (it does not check the digest). */
export function isSealComment(comment: string | Buffer): boolean {
  const text = typeof comment === 'string' ? comment : comment.toString('latin1');
  return SEAL_PATTERN.test(text);
}

/**
 * Keeps the hash of everything except the last `SEAL_DIGEST_LENGTH` bytes seen so far.
 * Both the writer and the checker use it, so they agree on what the seal covers.
 */
class TailHasher {
  private readonly hash: Hash = createHash('sha256');
  private tail = Buffer.alloc(0);
  total = 0;

  /** Feeds `chunk`; returns the bytes that are now known not to be in the tail. */
  push(chunk: Buffer): Buffer[] {
    this.total += chunk.length;
    const released: Buffer[] = [];
    if (chunk.length >= SEAL_DIGEST_LENGTH) {
      if (this.tail.length > 0) released.push(this.tail);
      released.push(chunk.subarray(0, chunk.length - SEAL_DIGEST_LENGTH));
      // A copy, so the kept tail does not pin the caller's (possibly large) chunk.
      this.tail = Buffer.from(chunk.subarray(chunk.length - SEAL_DIGEST_LENGTH));
    } else {
      const joined = Buffer.concat([this.tail, chunk]);
      const cut = Math.max(0, joined.length - SEAL_DIGEST_LENGTH);
      if (cut > 0) released.push(joined.subarray(0, cut));
      this.tail = joined.subarray(cut);
    }
    for (const b of released) this.hash.update(b);
    return released;
  }

  /** The held-back tail and the digest of everything before it. */
  finish(): { tail: Buffer; digest: string } {
    return { tail: this.tail, digest: this.hash.digest('hex') };
  }
}

/**
 * A pass-through for the zip bytes the zip writer (zipWriter.ts) writes. The zip must end with
 * `SEAL_PLACEHOLDER` (the comment); the stream writes the real digest in place of its
 * zeros. Errors when the input does not end with the placeholder. One use per archive.
 */
export class SealingStream extends Transform {
  private readonly hasher = new TailHasher();

  /** Bytes written out so far (the archive's size once the stream has ended). */
  get bytes(): number {
    return this.hasher.total;
  }

  override _transform(chunk: Buffer, _enc: BufferEncoding, cb: TransformCallback): void {
    for (const b of this.hasher.push(chunk)) this.push(b);
    cb();
  }

  override _flush(cb: TransformCallback): void {
    const { tail, digest } = this.hasher.finish();
    if (tail.toString('latin1') !== '0'.repeat(SEAL_DIGEST_LENGTH)) {
      cb(new Error('the zip does not end with the seal placeholder'));
      return;
    }
    this.push(Buffer.from(digest, 'latin1'));
    cb();
  }
}

/**
 * Reads `file` once, sequentially, and checks its seal. Returns undefined when the seal
 * matches, or a one-line problem. Rejects only with the signal's reason when aborted,
 * or with the fs error when the file cannot be read.
 */
export async function verifySeal(file: string, signal?: AbortSignal): Promise<string | undefined> {
  const hasher = new TailHasher();
  const stream = createReadStream(file, { highWaterMark: 1 << 20, signal });
  for await (const chunk of stream) hasher.push(chunk as Buffer);
  const { tail, digest } = hasher.finish();
  const found = tail.toString('latin1');
  if (tail.length < SEAL_DIGEST_LENGTH || !/^[0-9a-f]{64}$/.test(found)) return 'the archive has no seal at its end';
  if (found !== digest) return 'the archive seal does not match its content (bytes changed after it was written)';
  return undefined;
}

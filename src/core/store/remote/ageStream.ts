import { createCipheriv, createDecipheriv, createHash, createSecretKey, hkdfSync, type KeyObject } from 'node:crypto';
import { Transform } from 'node:stream';
import { loadAge } from './encryptedBackend';

/**
 * The age format's payload (STREAM: 64 KiB chunks of ChaCha20-Poly1305, a counter nonce and
 * a last-chunk flag) with Node's native cipher, about ten times the speed of the pure
 * JavaScript one in age-encryption, which makes the header (the recipient stanza and its
 * MAC) and opens it. The files are ordinary age files: `age -d` and age-encryption read
 * them, and each chunk is authenticated on its own, so a range of an object can be read
 * and checked without the rest.
 */
export const CHUNK = 64 * 1024;
const TAG = 16;
export const CIPHER_CHUNK = CHUNK + TAG;
const NONCE = 16;

function payloadKey(fileKey: Uint8Array, nonce: Uint8Array): Buffer {
  return Buffer.from(hkdfSync('sha256', fileKey, nonce, 'payload', 32));
}

function chunkNonce(index: number, last: boolean): Buffer {
  const n = Buffer.alloc(12);
  // 11-byte big-endian counter; objects here stay far below 2^48 chunks.
  n.writeUIntBE(index, 5, 6);
  n[11] = last ? 1 : 0;
  return n;
}

export function sealChunk(key: Buffer, index: number, last: boolean, plain: Buffer): Buffer {
  const c = createCipheriv('chacha20-poly1305', key, chunkNonce(index, last), { authTagLength: TAG });
  return Buffer.concat([c.update(plain), c.final(), c.getAuthTag()]);
}

export function openChunk(key: Buffer | KeyObject, index: number, last: boolean, sealed: Buffer): Buffer {
  if (sealed.length < TAG) throw new Error(`chunk ${index} is truncated`);
  const d = createDecipheriv('chacha20-poly1305', key, chunkNonce(index, last), { authTagLength: TAG });
  d.setAuthTag(sealed.subarray(sealed.length - TAG));
  try {
    const plain = d.update(sealed.subarray(0, sealed.length - TAG));
    d.final(); // authenticates (ChaCha20-Poly1305 adds no bytes here); nothing is returned before it
    return plain;
  } catch {
    throw new Error(`chunk ${index} fails authentication`);
  }
}

/** A new file's header and nonce for `recipient`, and the key of its payload. */
export async function newAgeFile(recipient: string): Promise<{ head: Buffer; key: Buffer }> {
  const age = await loadAge();
  const e = new age.Encrypter();
  e.addRecipient(recipient);
  let fileKey: Uint8Array | undefined;
  // A recipient that adds no stanza and only sees the file key, so that the payload can be
  // written natively: the header is age-encryption's own.
  e.addRecipient({
    wrapFileKey: (k: Uint8Array) => {
      fileKey = k;
      return [];
    },
  });
  const empty = Buffer.from(await e.encrypt(new Uint8Array(0)));
  const head = empty.subarray(0, empty.length - TAG);
  return { head, key: payloadKey(fileKey!, head.subarray(head.length - NONCE)) };
}

/** Where an age file's header ends (after the MAC line), or -1 when `b` does not hold all of it. */
export function headerEnd(b: Buffer): number {
  const mac = b.indexOf('\n--- ');
  if (mac < 0) return -1;
  const nl = b.indexOf('\n', mac + 1);
  return nl < 0 ? -1 : nl + 1;
}

/** Opens an age file's header with `identity`: the payload key and where the payload starts. */
export async function openAgeFile(identity: string, start: Buffer): Promise<{ key: Buffer; dataStart: number }> {
  const end = headerEnd(start);
  if (end < 0 || start.length < end + NONCE) throw new Error('not an age file (no header)');
  const age = await loadAge();
  const d = new age.Decrypter();
  d.addIdentity(identity);
  const fileKey = await d.decryptHeader(start.subarray(0, end));
  return { key: payloadKey(fileKey, start.subarray(end, end + NONCE)), dataStart: end + NONCE };
}

/** Plaintext bytes of a payload of `sealed` bytes. */
export function payloadPlainSize(sealed: number): number {
  if (sealed < TAG) return 0;
  return sealed - TAG * Math.ceil(sealed / CIPHER_CHUNK);
}

/** Encrypts a stream of plaintext into age chunks; the header is written first. Hashes what it emits. */
export function sealingStream(head: Buffer, key: Buffer, hash = createHash('sha256')): Transform & { sha256(): string } {
  let pending: Buffer = Buffer.alloc(0);
  let index = 0;
  let started = false;
  const t = new Transform({
    transform(chunk: Buffer, _enc, done) {
      if (!started) {
        started = true;
        hash.update(head);
        this.push(head);
      }
      pending = pending.length ? Buffer.concat([pending, chunk]) : chunk;
      // Keep at least one byte back: the final chunk must be known as final.
      while (pending.length > CHUNK) {
        const out = sealChunk(key, index++, false, pending.subarray(0, CHUNK));
        hash.update(out);
        this.push(out);
        pending = pending.subarray(CHUNK);
      }
      done();
    },
    flush(done) {
      if (!started) {
        hash.update(head);
        this.push(head);
      }
      const out = sealChunk(key, index, true, pending);
      hash.update(out);
      this.push(out);
      done();
    },
  });
  return Object.assign(t, { sha256: () => hash.digest('hex') });
}

/** Bytes of an age file whose header (with its nonce) is `headLength` bytes, for `plain` bytes of payload. */
export function sealedSize(headLength: number, plain: number): number {
  return headLength + plain + TAG * Math.max(1, Math.ceil(plain / CHUNK));
}

/** Plaintext chunks sealed per block that `sealedPieces` and `sealedBlocks` yield (1 MiB of plaintext). */
const BLOCK_CHUNKS = 16;

/**
 * The age file of a payload of known size, generated on demand, as the pieces that make it,
 * never copied: `[head]`, then for each block of up to 16 chunks each chunk's ciphertext and
 * tag (new Buffers). `read(at, length)` returns exactly those plaintext bytes (it may reuse
 * one buffer between calls: what it returns is consumed before the next call). The same
 * head, key and plaintext give the same bytes each time. The work per block (about a
 * millisecond) keeps the event loop responsive.
 */
export async function* sealedPieces(head: Buffer, key: Buffer, size: number, read: (at: number, length: number) => Promise<Buffer>): AsyncGenerator<Buffer[]> {
  yield [Buffer.from(head)];
  const chunks = Math.max(1, Math.ceil(size / CHUNK));
  // One key object for all chunks: a Buffer key is checked and imported again by every cipher.
  const secret = createSecretKey(key);
  for (let first = 0; first < chunks; first += BLOCK_CHUNKS) {
    const n = Math.min(BLOCK_CHUNKS, chunks - first);
    const start = first * CHUNK;
    const length = Math.min(size, start + n * CHUNK) - start;
    const plain = await read(start, length);
    if (plain.length !== length) throw new Error(`the payload ended after ${start + plain.length} of ${size} bytes`);
    const pieces: Buffer[] = [];
    for (let i = 0; i < n; i++) {
      const c = createCipheriv('chacha20-poly1305', secret, chunkNonce(first + i, first + i === chunks - 1), { authTagLength: TAG });
      pieces.push(c.update(plain.subarray(i * CHUNK, Math.min(length, (i + 1) * CHUNK))));
      c.final();
      pieces.push(c.getAuthTag());
    }
    yield pieces;
  }
}

/** The same age file as `sealedPieces`, each block as one Buffer (for a stream). */
export async function* sealedBlocks(head: Buffer, key: Buffer, size: number, read: (at: number, length: number) => Promise<Buffer>): AsyncGenerator<Buffer> {
  for await (const pieces of sealedPieces(head, key, size, read)) yield pieces.length === 1 ? pieces[0]! : Buffer.concat(pieces);
}

/** Decrypts a payload stream (everything after the header and nonce) of `sealed` bytes in all. */
export function openingStream(key: Buffer, sealed: number, firstIndex = 0): Transform {
  const chunks = Math.max(1, Math.ceil(sealed / CIPHER_CHUNK));
  // What has arrived and is not opened yet, as it came: a sealed chunk is copied out only
  // when it straddles two of the pieces a socket delivers (never the whole backlog again).
  const parts: Buffer[] = [];
  let have = 0;
  const take = (n: number): Buffer => {
    const first = parts[0]!;
    if (first.length >= n) {
      const out = first.subarray(0, n);
      if (first.length === n) parts.shift();
      else parts[0] = first.subarray(n);
      have -= n;
      return out;
    }
    const out = Buffer.allocUnsafe(n);
    let at = 0;
    while (at < n) {
      const p = parts[0]!;
      const k = Math.min(p.length, n - at);
      p.copy(out, at, 0, k);
      at += k;
      if (k === p.length) parts.shift();
      else parts[0] = p.subarray(k);
    }
    have -= n;
    return out;
  };
  let index = firstIndex;
  const secret = createSecretKey(key);
  return new Transform({
    transform(chunk: Buffer, _enc, done) {
      if (chunk.length) {
        parts.push(chunk);
        have += chunk.length;
      }
      try {
        while (have >= CIPHER_CHUNK && index < chunks - 1) {
          this.push(openChunk(secret, index, false, take(CIPHER_CHUNK)));
          index++;
        }
        done();
      } catch (e) {
        done(e as Error);
      }
    },
    flush(done) {
      try {
        if (index !== chunks - 1) throw new Error(`truncated: ${index + 1} of ${chunks} chunks`);
        const plain = openChunk(secret, index, true, have ? take(have) : Buffer.alloc(0));
        if (index > 0 && plain.length === 0) throw new Error('the final chunk is empty');
        this.push(plain);
        done();
      } catch (e) {
        done(e as Error);
      }
    },
  });
}

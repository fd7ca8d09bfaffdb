import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { test } from 'node:test';
import zlib from 'node:zlib';
import { ParallelDeflateRaw } from '../../src/core/archive/parallelDeflate';

async function compress(input: Buffer, o: ConstructorParameters<typeof ParallelDeflateRaw>[0], pieces = 7): Promise<Buffer> {
  const parts: Buffer[] = [];
  const step = Math.max(1, Math.ceil(input.length / pieces));
  const chunks = [];
  for (let i = 0; i < input.length; i += step) chunks.push(input.subarray(i, i + step));
  await pipeline(Readable.from(chunks), new ParallelDeflateRaw(o), async function* (src) {
    for await (const c of src) parts.push(c as Buffer);
  });
  return Buffer.concat(parts);
}

/** Data that compresses, with matches that cross block boundaries. */
function compressible(n: number): Buffer {
  const words = Array.from({ length: 200 }, (_, i) => `word${i * 7919}`);
  let s = '';
  while (s.length < n) s += words[(s.length * 31) % words.length] + ' ' + (s.length % 97 === 0 ? randomBytes(6).toString('hex') : '');
  return Buffer.from(s.slice(0, n));
}

test('blocks compressed in parallel inflate back to the input, at every size around block boundaries', async () => {
  const block = 64 * 1024;
  for (const n of [0, 1, block - 1, block, block + 1, 3 * block, 3 * block + 12345]) {
    for (const kind of ['text', 'random']) {
      const input = kind === 'text' ? compressible(n) : randomBytes(n);
      for (const level of [1, 6, 9]) {
        const out = await compress(input, { level, blockSize: block, concurrency: 3 });
        assert.ok(zlib.inflateRawSync(out).equals(input), `n=${n} ${kind} level ${level}`);
      }
    }
  }
});

test('the dictionary keeps the ratio close to a single stream', async () => {
  const input = compressible(2 * 1024 * 1024);
  const single = zlib.deflateRawSync(input, { level: 1 }).length;
  const parallel = (await compress(input, { level: 1, blockSize: 256 * 1024, concurrency: 2 }, 40)).length;
  assert.ok(parallel < single * 1.05, `parallel ${parallel} vs single ${single}`);
  const noDict = Buffer.concat(
    Array.from({ length: 8 }, (_, i) => zlib.deflateRawSync(input.subarray(i * 262144, (i + 1) * 262144), { level: 1 })),
  ).length;
  assert.ok(parallel <= noDict, 'priming with the previous 32 KiB helps');
});

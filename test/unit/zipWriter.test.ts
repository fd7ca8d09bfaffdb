import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { PassThrough, Readable, Writable } from 'node:stream';
import { buffer } from 'node:stream/consumers';
import { pipeline } from 'node:stream/promises';
import { after, describe, test } from 'node:test';
import zlib from 'node:zlib';
import * as yauzl from 'yauzl';
import { ZipFile } from 'yazl';
import { checkArchive, extractImage } from '../../src/core/archive/archiveReader';
import { SEAL_PLACEHOLDER } from '../../src/core/archive/archiveSeal';
import { writeArchive } from '../../src/core/archive/archiveWriter';
import { ParallelDeflateRaw } from '../../src/core/archive/parallelDeflate';
import { ZipWriter, ZipWriterError, type ZipEntryOptions } from '../../src/core/archive/zipWriter';
import { IMAGE_ENTRY, MANIFEST_ENTRY } from '../../src/core/model';
import { manifestFor } from '../fixtures/archive';
import { makeDb, tempDir } from '../fixtures/sqlite';

const tmp = tempDir('lifeboat-zipwriter-');
after(() => tmp.cleanup());

interface Spec extends ZipEntryOptions {
  data: Buffer;
  /** A stream entry (sizes in a data descriptor) or a buffer entry (sizes in its header). */
  kind: 'stream' | 'buffer';
}

/** `data` in pieces of `step` bytes, as a byte stream. */
function streamOf(data: Buffer, step = 100_000): Readable {
  const pieces: Buffer[] = [];
  for (let i = 0; i < data.length; i += step) pieces.push(data.subarray(i, i + step));
  return Readable.from(pieces, { objectMode: false });
}

async function ours(entries: Spec[], comment?: string): Promise<Buffer> {
  const zip = new ZipWriter();
  const bytes = buffer(zip.output);
  const added = entries.map((e) => (e.kind === 'stream' ? zip.addStream(streamOf(e.data), { ...e, size: e.data.length }) : zip.addBuffer(e.data, e)));
  await zip.finish(comment);
  await Promise.all(added);
  return bytes;
}

async function yazls(entries: Spec[], comment?: string): Promise<Buffer> {
  const zip = new ZipFile();
  const bytes = buffer(zip.outputStream);
  for (const e of entries) {
    const o = { mtime: e.mtime, mode: e.mode, compressionLevel: e.level };
    if (e.kind === 'stream') zip.addReadStream(streamOf(e.data), e.name, { ...o, size: e.data.length });
    else zip.addBuffer(e.data, e.name, o);
  }
  zip.end({ forceZip64Format: false, comment: comment ?? '' });
  return bytes;
}

async function entriesOf(zip: Buffer): Promise<{ entry: yauzl.Entry; raw: Buffer; data: Buffer }[]> {
  const z = await yauzl.fromBufferPromise(zip, { lazyEntries: true });
  const out = [];
  for await (const entry of z.eachEntry()) {
    const raw = await buffer(await z.openReadStreamPromise(entry, entry.compressionMethod === 0 ? {} : { decompress: false }));
    const data = await buffer(await z.openReadStreamPromise(entry));
    out.push({ entry, raw, data });
  }
  z.close();
  return out;
}

async function parallelDeflate(data: Buffer, level: number): Promise<Buffer> {
  return buffer(streamOf(data).pipe(new ParallelDeflateRaw({ level })));
}

/** Text-like bytes that compress, then random bytes that do not. */
function imageLike(n: number): Buffer {
  const words = Array.from({ length: 300 }, (_, i) => `w${(i * 7919).toString(36)}`);
  const parts: string[] = [];
  for (let i = 0, len = 0; len < n / 2; i++) {
    const w = words[(i * 31) % words.length]!;
    parts.push(w);
    len += w.length + 1;
  }
  return Buffer.concat([Buffer.from(parts.join(' ')), randomBytes(Math.ceil(n / 2))]).subarray(0, n);
}

const MANIFEST = Buffer.from(JSON.stringify({ format: 'lifeboat-archive', formatVersion: 1 }, null, 2) + '\n');
const WHEN = new Date('2026-11-26T08:07:13.500Z');

describe('the layout is the one yazl wrote', () => {
  const cases: { label: string; entries: Spec[]; comment?: string }[] = [
    {
      label: 'an image stream and a manifest buffer, stored, sealed',
      entries: [
        { kind: 'stream', name: IMAGE_ENTRY, data: imageLike(300_000), mtime: WHEN, mode: 0o100644, level: 0 },
        { kind: 'buffer', name: MANIFEST_ENTRY, data: MANIFEST, mtime: new Date('2026-11-26T08:07:12.345Z'), mode: 0o100644, level: 0 },
      ],
      comment: SEAL_PLACEHOLDER,
    },
    {
      label: 'empty entries, a UTF-8 name, times the DOS and UT fields clamp, no comment',
      entries: [
        { kind: 'stream', name: 'vide.bin', data: Buffer.alloc(0), mtime: new Date('1975-05-05T05:05:05Z'), mode: 0o100600, level: 0 },
        { kind: 'buffer', name: 'données/é.txt', data: Buffer.alloc(0), mtime: new Date('2050-01-02T03:04:05Z'), mode: 0o100644, level: 0 },
        { kind: 'buffer', name: 'late.txt', data: Buffer.from('x'), mtime: new Date('2200-06-07T08:09:10Z'), mode: 0o100444, level: 0 },
      ],
    },
    {
      label: 'buffer entries deflated (one-shot zlib, as yazl did)',
      entries: [
        { kind: 'buffer', name: MANIFEST_ENTRY, data: MANIFEST, mtime: WHEN, mode: 0o100644, level: 6 },
        { kind: 'buffer', name: 'b.txt', data: imageLike(70_000), mtime: WHEN, mode: 0o100644, level: 1 },
      ],
      comment: SEAL_PLACEHOLDER,
    },
  ];
  for (const c of cases) {
    test(`${c.label}: byte for byte`, async () => {
      const [mine, theirs] = await Promise.all([ours(c.entries, c.comment), yazls(c.entries, c.comment)]);
      assert.ok(mine.length > 0);
      assert.equal(mine.toString('hex'), theirs.toString('hex'));
    });
  }

  test('a deflated stream entry: every header field as yazl wrote it; the data is ParallelDeflateRaw output', async () => {
    for (const level of [1, 6]) {
      const data = imageLike(2 * 1024 * 1024 + 4321); // three parallel blocks
      const entries: Spec[] = [
        { kind: 'stream', name: IMAGE_ENTRY, data, mtime: WHEN, mode: 0o100644, level },
        { kind: 'buffer', name: MANIFEST_ENTRY, data: MANIFEST, mtime: WHEN, mode: 0o100644, level },
      ];
      const [mine, theirs] = await Promise.all([ours(entries, SEAL_PLACEHOLDER), yazls(entries, SEAL_PLACEHOLDER)]);
      const [a, b] = await Promise.all([entriesOf(mine), entriesOf(theirs)]);
      assert.equal(a.length, 2);
      for (let i = 0; i < a.length; i++) {
        const { compressedSize: _c1, relativeOffsetOfLocalHeader: _o1, ...mineFields } = a[i]!.entry;
        const { compressedSize: _c2, relativeOffsetOfLocalHeader: _o2, ...theirFields } = b[i]!.entry;
        assert.deepEqual(mineFields, theirFields, `level ${level} entry ${i}`);
        assert.ok(a[i]!.data.equals(b[i]!.data), 'the same content');
      }
      assert.ok(a[0]!.data.equals(data));
      assert.equal(a[0]!.entry.crc32, zlib.crc32(data) >>> 0);
      assert.ok(a[0]!.raw.equals(await parallelDeflate(data, level)), `level ${level}: the parallel deflate's bytes`);
      assert.ok(!a[0]!.raw.equals(b[0]!.raw), "not yazl's single zlib stream");
      assert.ok(a[1]!.raw.equals(b[1]!.raw), 'the manifest deflated as yazl did');
      // Everything before the image data (the local header) is the same too.
      const start = 30 + Buffer.byteLength(IMAGE_ENTRY);
      assert.ok(mine.subarray(0, start).equals(theirs.subarray(0, start)));
    }
  });
});

/**
 * Serves an archive whose middle (the stored image data, all zeros) was never kept: the
 * first `head` and last `tail` bytes are real, the rest reads as zeros.
 */
class HeadTailReader extends yauzl.RandomAccessReader {
  constructor(
    private readonly head: Buffer,
    private readonly tail: Buffer,
    private readonly total: number,
  ) {
    super();
  }

  override _readStreamForRange(start: number, end: number): Readable {
    const tailStart = this.total - this.tail.length;
    const parts: Buffer[] = [];
    for (let at = start; at < end; ) {
      if (at < this.head.length) {
        const n = Math.min(end, this.head.length) - at;
        parts.push(this.head.subarray(at, at + n));
        at += n;
      } else if (at >= tailStart) {
        parts.push(this.tail.subarray(at - tailStart, end - tailStart));
        at = end;
      } else {
        const n = Math.min(end, tailStart) - at;
        if (n > 64 << 20) throw new Error(`the test reads ${n} bytes of the middle`);
        parts.push(Buffer.alloc(n));
        at += n;
      }
    }
    return Readable.from(parts, { objectMode: false });
  }
}

describe('past 4 GiB', () => {
  test('ZIP64 data descriptor, extra fields and end records; yauzl reads it and the second entry back', async () => {
    const MiB = 1 << 20;
    const chunks = 4097; // one MiB over 4 GiB
    const size = chunks * MiB;
    const zeros = Buffer.alloc(MiB);
    let crc = 0;
    for (let i = 0; i < chunks; i++) crc = zlib.crc32(zeros, crc);
    crc >>>= 0;

    const keep = 64 * 1024;
    const head: Buffer[] = [];
    let headBytes = 0;
    let tail: Buffer[] = [];
    let tailBytes = 0;
    let total = 0;
    const sink = new Writable({
      write(chunk: Buffer, _enc, cb) {
        total += chunk.length;
        if (headBytes < keep) {
          head.push(chunk.subarray(0, keep - headBytes));
          headBytes += Math.min(chunk.length, keep - headBytes);
        }
        tail.push(chunk);
        tailBytes += chunk.length;
        while (tail.length > 1 && tailBytes - tail[0]!.length >= keep) tailBytes -= tail.shift()!.length;
        cb();
      },
    });
    const zip = new ZipWriter();
    const drained = pipeline(zip.output, sink);
    const image = zip.addStream(
      Readable.from((function* () {
        for (let i = 0; i < chunks; i++) yield zeros;
      })(), { objectMode: false }),
      { name: IMAGE_ENTRY, mtime: WHEN, mode: 0o100644, level: 0, size },
    );
    const manifest = zip.addBuffer(MANIFEST, { name: MANIFEST_ENTRY, mtime: WHEN, mode: 0o100644, level: 6 });
    await zip.finish(SEAL_PLACEHOLDER);
    assert.deepEqual(await image, { crc32: crc, size, compressedSize: size });
    await manifest;
    await drained;
    const tailBuf = Buffer.concat(tail);

    const nameEnd = 30 + Buffer.byteLength(IMAGE_ENTRY);
    const descriptorAt = nameEnd + size - (total - tailBuf.length);
    const descriptor = tailBuf.subarray(descriptorAt, descriptorAt + 24);
    assert.equal(descriptor.readUInt32LE(0), 0x08074b50);
    assert.equal(descriptor.readUInt32LE(4), crc);
    assert.equal(Number(descriptor.readBigUInt64LE(8)), size, '8-byte compressed size');
    assert.equal(Number(descriptor.readBigUInt64LE(16)), size, '8-byte size');
    const end = tailBuf.subarray(tailBuf.length - 22 - SEAL_PLACEHOLDER.length);
    assert.equal(end.readUInt32LE(0), 0x06054b50);
    assert.equal(end.readUInt32LE(16), 0xffffffff, 'the directory offset is in the ZIP64 end record');
    assert.equal(tailBuf.readUInt32LE(tailBuf.length - end.length - 20), 0x07064b50, 'ZIP64 locator');

    const reader = new HeadTailReader(Buffer.concat(head), tailBuf, total);
    const z = await yauzl.fromRandomAccessReaderPromise(reader, total, { lazyEntries: true, autoClose: false });
    const entries: yauzl.Entry[] = [];
    for await (const e of z.eachEntry()) entries.push(e);
    assert.deepEqual(entries.map((e) => e.fileName), [IMAGE_ENTRY, MANIFEST_ENTRY]);
    const [img, man] = entries as [yauzl.Entry, yauzl.Entry];
    assert.equal(img.uncompressedSize, size);
    assert.equal(img.compressedSize, size);
    assert.equal(img.crc32, crc);
    assert.equal(img.versionNeededToExtract, 45);
    assert.ok(man.relativeOffsetOfLocalHeader > 0xffffffff, `manifest at ${man.relativeOffsetOfLocalHeader}`);
    assert.equal(man.versionNeededToExtract, 45);
    assert.ok((await buffer(await z.openReadStreamPromise(man))).equals(MANIFEST));
    z.close();
  });
});

describe('failures', () => {
  test('a stream that gives more or fewer bytes than declared: sizeChanged, and finish fails the same way', async () => {
    for (const given of [999, 1001]) {
      const zip = new ZipWriter();
      zip.output.resume();
      const added = zip.addStream(streamOf(Buffer.alloc(given, 7)), { name: 'x', mtime: WHEN, mode: 0o100644, level: 1, size: 1000 });
      const finished = zip.finish();
      await assert.rejects(added, (e) => ZipWriterError.is(e, 'sizeChanged') && /999|1001/.test(e.message));
      await assert.rejects(finished, (e) => ZipWriterError.is(e, 'sizeChanged'));
      assert.equal(zip.output.writableEnded, false, 'no end records after a failure');
    }
  });

  test('invalid options and calls after finish reject (never throw), and nothing after them is written', async () => {
    const zip = new ZipWriter();
    const bytes = buffer(zip.output);
    const good = zip.addBuffer(Buffer.from('a'), { name: 'a', mtime: WHEN, mode: 0o100644, level: 0 });
    const badLevel = zip.addBuffer(Buffer.from('b'), { name: 'b', mtime: WHEN, mode: 0o100644, level: 10 });
    const badTime = zip.addStream(streamOf(Buffer.from('c')), { name: 'c', mtime: new Date(NaN), mode: 0o100644, level: 0, size: 1 });
    const finished = zip.finish('not ascii: é');
    const late = zip.addBuffer(Buffer.from('d'), { name: 'd', mtime: WHEN, mode: 0o100644, level: 0 });
    await good;
    await assert.rejects(badLevel, RangeError);
    await assert.rejects(badTime, RangeError, 'the first failure, passed on');
    await assert.rejects(finished, RangeError);
    await assert.rejects(late, TypeError);
    zip.output.end();
    const written = await bytes;
    assert.equal(written.length, 30 + 1 + 1, "only the first entry's local header and data");
  });

  test('output destroyed while an entry waits for it to drain: outputClosed, and the source is released', async () => {
    const zip = new ZipWriter();
    const source = new PassThrough();
    const added = zip.addStream(source, { name: 'x', mtime: WHEN, mode: 0o100644, level: 0, size: 10 * 1024 * 1024 });
    source.write(Buffer.alloc(1024 * 1024));
    // Nobody reads output: the writer waits for it to drain.
    while (!zip.output.writableNeedDrain) await new Promise(setImmediate);
    zip.output.destroy();
    await assert.rejects(added, (e) => ZipWriterError.is(e, 'outputClosed'));
    assert.equal(source.destroyed, true);
  });
});

describe('writeArchive, run from source as every test runs it', () => {
  test('deflates the image with ParallelDeflateRaw, the compressor the bundle ships, and it reads back byte for byte', async () => {
    const db = path.join(tmp.dir, 'parallel.sqlite');
    makeDb(db, { rows: 24000 });
    const image = readFileSync(db);
    assert.ok(image.length > 3 * 1024 * 1024, `${image.length} bytes: several 1 MiB blocks`);
    for (const level of [1, 6]) {
      const out = path.join(tmp.dir, `parallel-${level}.zip`);
      await writeArchive({ imagePath: db, outPath: out, level, manifest: async (i) => manifestFor(i) });
      const img = (await entriesOf(readFileSync(out)))[0]!;
      assert.equal(img.entry.fileName, IMAGE_ENTRY);
      assert.ok(img.raw.equals(await parallelDeflate(image, level)), `level ${level}: the parallel deflate's bytes`);
      assert.ok(!img.raw.equals(zlib.deflateRawSync(image, { level })), 'not a single zlib stream');
      assert.equal(img.entry.crc32, zlib.crc32(image) >>> 0);
      assert.deepEqual((await checkArchive(out)).problems, []);
      const restored = path.join(tmp.dir, `parallel-${level}.restored`);
      await extractImage(out, restored);
      assert.ok(readFileSync(restored).equals(image), 'identical bytes');
    }
  });
});

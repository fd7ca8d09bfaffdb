import assert from 'node:assert/strict';
import { appendFileSync, existsSync, lstatSync, readFileSync, readdirSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import * as yauzl from 'yauzl';
import { checkArchive, extractImage, readManifest } from '../../src/core/archive/archiveReader';
import { SEAL_PREFIX } from '../../src/core/archive/archiveSeal';
import { writeArchive } from '../../src/core/archive/archiveWriter';
import { BackupError, type BackupErrorReason } from '../../src/core/errors';
import { fsyncDir, fsyncFile, removeQuietly, writeFileAtomic } from '../../src/core/fsutil';
import { IMAGE_ENTRY, MANIFEST_ENTRY, type Manifest } from '../../src/core/model';
import { buildZip, CREATED, manifestFor, sha256Of, type RawEntry } from '../fixtures/archive';
import { dumpHash, makeDb, query, tempDir } from '../fixtures/sqlite';

const tmp = tempDir('lifeboat-archive-');
after(() => tmp.cleanup());
const at = (name: string) => path.join(tmp.dir, name);

/** A real SQLite file (~300 KB) made by the sqlite3 shell, and its identity. */
const image = { path: at('image.sqlite'), sha256: '', size: 0, bytes: Buffer.alloc(0) };
before(() => {
  makeDb(image.path, { rows: 2000 });
  image.bytes = readFileSync(image.path);
  image.sha256 = sha256Of(image.bytes);
  image.size = image.bytes.length;
});

async function rejectsWith(p: Promise<unknown>, reason: BackupErrorReason, mention?: string): Promise<BackupError> {
  let caught: unknown;
  try {
    await p;
  } catch (e) {
    caught = e;
  }
  assert.ok(BackupError.is(caught), `expected a BackupError '${reason}', got ${caught === undefined ? 'success' : String(caught)}`);
  assert.equal(caught.reason, reason, caught.message);
  assert.ok(!caught.message.includes('\n'), 'one-line message');
  if (mention) assert.ok(caught.message.includes(mention), `message names ${mention}: ${caught.message}`);
  return caught;
}

function isLink(p: string): boolean {
  try {
    return lstatSync(p).isSymbolicLink();
  } catch {
    return false;
  }
}

async function write(out: string, level = 6, over: Partial<Manifest> = {}) {
  return writeArchive({ imagePath: image.path, outPath: out, level, manifest: async (img) => manifestFor(img, over) });
}

async function listEntries(file: string): Promise<yauzl.Entry[]> {
  const zip = await yauzl.openPromise(file, { lazyEntries: true });
  const entries: yauzl.Entry[] = [];
  for await (const e of zip.eachEntry()) entries.push(e);
  zip.close();
  return entries;
}

describe('round trip', () => {
  for (const level of [0, 1, 6, 9]) {
    test(`level ${level}: the image comes back byte for byte`, async () => {
      const out = at(`rt-${level}.zip`);
      const res = await write(out, level);
      assert.equal(res.sha256, image.sha256);
      assert.equal(res.size, image.size);
      assert.equal(res.archiveSize, statSync(out).size);

      const m = await readManifest(out);
      assert.deepEqual(m, manifestFor(image));

      const check = await checkArchive(out);
      assert.deepEqual(check.problems, []);
      assert.equal(check.ok, true);

      const restored = at(`rt-${level}.sqlite`);
      const ex = await extractImage(out, restored);
      assert.equal(ex.sha256, image.sha256);
      assert.equal(ex.size, image.size);
      assert.ok(readFileSync(restored).equals(image.bytes), 'identical bytes');
      assert.equal(dumpHash(restored), dumpHash(image.path));
      assert.equal(query<{ n: number }>(restored, 'SELECT count(*) AS n FROM items')[0]?.n, 2000);

      const entries = await listEntries(out);
      assert.deepEqual(entries.map((e) => e.fileName), [IMAGE_ENTRY, MANIFEST_ENTRY]);
      for (const e of entries) {
        assert.equal(e.compressionMethod, level === 0 ? 0 : 8);
        assert.equal(e.externalFileAttributes >>> 16, 0o100644);
      }
      if (level === 0) assert.ok(res.archiveSize > image.size);
    });
  }

  test('a higher level makes a smaller archive than storing', async () => {
    const sizes = await Promise.all([0, 9].map(async (l) => (await write(at(`cmp-${l}.zip`), l)).archiveSize));
    assert.ok(sizes[1]! < sizes[0]!, `level 9 ${sizes[1]} < level 0 ${sizes[0]}`);
  });

  test('entries carry the manifest time, manifest.json is pretty JSON, the comment is the seal', async () => {
    const out = at('meta.zip');
    await writeArchive({
      imagePath: image.path,
      outPath: out,
      level: 6,
      mtime: new Date(Date.parse(CREATED)),
      manifest: async (img) => manifestFor(img),
    });
    const zip = await yauzl.openPromise(out, { lazyEntries: true });
    assert.ok(zip.comment.startsWith(SEAL_PREFIX) && zip.comment.length === SEAL_PREFIX.length + 64);
    const entries: yauzl.Entry[] = [];
    for await (const e of zip.eachEntry()) entries.push(e);
    for (const e of entries) assert.equal(e.getLastModDate().getTime(), Math.floor(Date.parse(CREATED) / 1000) * 1000);
    zip.close();
    const zip2 = await yauzl.openPromise(out, { lazyEntries: true });
    for await (const e of zip2.eachEntry()) {
      if (e.fileName !== MANIFEST_ENTRY) continue;
      const chunks: Buffer[] = [];
      for await (const c of await zip2.openReadStreamPromise(e)) chunks.push(c as Buffer);
      const text = Buffer.concat(chunks).toString('utf8');
      assert.equal(text, JSON.stringify(manifestFor(image), null, 2) + '\n');
    }
    zip2.close();
  });

  test('progress reports compress bytes up to the image size; check and extract report too', async () => {
    const out = at('progress.zip');
    const seen: number[] = [];
    await writeArchive({
      imagePath: image.path,
      outPath: out,
      level: 1,
      manifest: async (img) => manifestFor(img),
      onProgress: (p) => {
        assert.equal(p.phase, 'compress');
        assert.equal(p.total, image.size);
        seen.push(p.done);
      },
    });
    assert.equal(seen.at(-1), image.size);
    assert.deepEqual([...seen].sort((a, b) => a - b), seen, 'monotonic');
    const phases = new Set<string>();
    await checkArchive(out, { onProgress: (p) => phases.add(p.phase) });
    await extractImage(out, at('progress.sqlite'), { onProgress: (p) => phases.add(p.phase) });
    assert.deepEqual([...phases].sort(), ['check', 'extract']);
  });
});

describe('the manifest', () => {
  test('a future formatVersion is unsupportedFormat, naming the version', async () => {
    const out = at('future.zip');
    const m = { ...manifestFor(image), formatVersion: 99 };
    await buildZip(out, [
      { name: IMAGE_ENTRY, data: image.bytes },
      { name: MANIFEST_ENTRY, data: Buffer.from(JSON.stringify(m)) },
      // A newer format may add entries; the version still decides the error.
      { name: 'wal.bin', data: Buffer.from('x') },
    ]);
    await rejectsWith(readManifest(out), 'unsupportedFormat', 'version 99');
    await rejectsWith(extractImage(out, at('future.sqlite')), 'unsupportedFormat');
    assert.equal(existsSync(at('future.sqlite')), false);
    const c = await checkArchive(out);
    assert.equal(c.ok, false);
  });

  test('a zip without manifest.json is badArchive', async () => {
    const out = at('nomanifest.zip');
    await buildZip(out, [{ name: IMAGE_ENTRY, data: image.bytes }]);
    await rejectsWith(readManifest(out), 'badArchive', out);
  });

  test('a garbled manifest, a missing formatVersion and a foreign format are badArchive', async () => {
    const cases: Array<[string, Buffer]> = [
      ['garbled', Buffer.from('{"format": "lifeboat-archive", ')],
      ['noversion', Buffer.from(JSON.stringify({ ...manifestFor(image), formatVersion: undefined }))],
      ['foreign', Buffer.from(JSON.stringify({ ...manifestFor(image), format: 'other' }))],
      ['noimage', Buffer.from(JSON.stringify({ ...manifestFor(image), image: undefined }))],
    ];
    for (const [name, data] of cases) {
      const out = at(`m-${name}.zip`);
      await buildZip(out, [{ name: IMAGE_ENTRY, data: image.bytes }, { name: MANIFEST_ENTRY, data }]);
      await rejectsWith(readManifest(out), 'badArchive', out);
    }
  });

  test('a correct zip without the Lifeboat seal is badArchive', async () => {
    const out = at('unsealed.zip');
    await buildZip(out, [
      { name: IMAGE_ENTRY, data: image.bytes },
      { name: MANIFEST_ENTRY, data: Buffer.from(JSON.stringify(manifestFor(image))) },
    ]);
    await rejectsWith(readManifest(out), 'badArchive', 'seal');
  });

  test('an image size that differs from the manifest is refused', async () => {
    const out = at('size.zip');
    await buildZip(out, [
      { name: IMAGE_ENTRY, data: image.bytes },
      { name: MANIFEST_ENTRY, data: Buffer.from(JSON.stringify(manifestFor({ sha256: image.sha256, size: image.size + 4096 }))) },
    ]);
    await rejectsWith(readManifest(out), 'unsafeArchive', IMAGE_ENTRY);
  });
});

describe('files that are not archives', () => {
  test('random bytes, an empty file, a truncated archive, a missing file', async () => {
    const good = at('good.zip');
    await write(good);
    const bytes = readFileSync(good);
    const cases: Array<[string, Buffer]> = [
      ['random', Buffer.from(Array.from({ length: 5000 }, (_, i) => (i * 7919 + 13) & 0xff))],
      ['empty', Buffer.alloc(0)],
      ['half', bytes.subarray(0, bytes.length >> 1)],
      ['sqlite', image.bytes],
    ];
    for (const [name, data] of cases) {
      const f = at(`not-${name}.zip`);
      writeFileSync(f, data);
      await rejectsWith(readManifest(f), 'badArchive', f);
      await rejectsWith(extractImage(f, at(`not-${name}.out`)), 'badArchive', f);
      assert.equal(existsSync(at(`not-${name}.out`)), false);
      const c = await checkArchive(f);
      assert.equal(c.ok, false);
      assert.equal(c.problems.length, 1);
    }
    await rejectsWith(readManifest(at('does-not-exist.zip')), 'notFound', 'does-not-exist.zip');
  });
});

describe('unsafe archives are refused before anything is written', () => {
  const manifestData = () => Buffer.from(JSON.stringify(manifestFor(image)));
  const cases: Array<[string, () => RawEntry[], string]> = [
    ['dotdot', () => [{ name: IMAGE_ENTRY, data: image.bytes }, { name: MANIFEST_ENTRY, data: manifestData() }, { name: '../evil', data: Buffer.from('x') }], '..'],
    ['absolute', () => [{ name: '/abs', data: Buffer.from('x') }, { name: IMAGE_ENTRY, data: image.bytes }, { name: MANIFEST_ENTRY, data: manifestData() }], 'absolute'],
    ['drive', () => [{ name: 'C:/x', data: Buffer.from('x') }, { name: IMAGE_ENTRY, data: image.bytes }, { name: MANIFEST_ENTRY, data: manifestData() }], 'absolute'],
    ['backslash', () => [{ name: IMAGE_ENTRY, data: image.bytes }, { name: 'a\\b', data: Buffer.from('x') }, { name: MANIFEST_ENTRY, data: manifestData() }], 'backslash'],
    ['symlink', () => [{ name: IMAGE_ENTRY, data: Buffer.from('/etc/passwd'), mode: 0o120777 }, { name: MANIFEST_ENTRY, data: manifestData() }], 'symbolic link'],
    ['unknown', () => [{ name: IMAGE_ENTRY, data: image.bytes }, { name: MANIFEST_ENTRY, data: manifestData() }, { name: 'notes.txt', data: Buffer.from('hi') }], 'notes.txt'],
    ['duplicate', () => [{ name: IMAGE_ENTRY, data: image.bytes }, { name: IMAGE_ENTRY, data: image.bytes }, { name: MANIFEST_ENTRY, data: manifestData() }], 'more than once'],
    ['directory', () => [{ name: 'sub/', data: Buffer.alloc(0), directory: true }, { name: IMAGE_ENTRY, data: image.bytes }, { name: MANIFEST_ENTRY, data: manifestData() }], 'directory'],
    ['encrypted', () => [{ name: IMAGE_ENTRY, data: image.bytes, encrypted: true }, { name: MANIFEST_ENTRY, data: manifestData() }], 'encrypted'],
  ];
  for (const [label, entries, mention] of cases) {
    test(label, async () => {
      const out = at(`unsafe-${label}.zip`);
      // Stored encrypted entries carry a 12-byte header yauzl insists on; deflate avoids faking one.
      await buildZip(out, entries(), { level: label === 'encrypted' ? 6 : 0 });
      const target = at(`unsafe-${label}.sqlite`);
      await rejectsWith(extractImage(out, target), 'unsafeArchive', mention);
      assert.equal(existsSync(target), false, 'no output');
      await rejectsWith(readManifest(out), 'unsafeArchive', out);
      const c = await checkArchive(out);
      assert.equal(c.ok, false);
      assert.match(c.problems[0] ?? '', /entry/);
    });
  }

  test('an uncompressed size deflate could not produce', async () => {
    const out = at('bomb.zip');
    await buildZip(out, [{ name: IMAGE_ENTRY, data: image.bytes }, { name: MANIFEST_ENTRY, data: manifestData() }], { level: 6 });
    const buf = readFileSync(out);
    const central = buf.indexOf(Buffer.from([0x50, 0x4b, 0x01, 0x02]));
    buf.writeUInt32LE(0xfffffff0, central + 24);
    writeFileSync(out, buf);
    await rejectsWith(extractImage(out, at('bomb.sqlite')), 'unsafeArchive', IMAGE_ENTRY);
    assert.equal(existsSync(at('bomb.sqlite')), false);
  });
});

describe('damage found while extracting', () => {
  test('a changed byte in the stored image: badArchive, output removed', async () => {
    const out = at('flip.zip');
    await write(out, 0);
    const buf = readFileSync(out);
    buf[30 + IMAGE_ENTRY.length + 5000] ^= 0x01;
    writeFileSync(out, buf);
    const target = at('flip.sqlite');
    await rejectsWith(extractImage(out, target), 'badArchive', out);
    assert.equal(existsSync(target), false);
    const c = await checkArchive(out);
    assert.equal(c.ok, false);
    assert.ok(c.problems.some((p) => p.includes('CRC32')), c.problems.join(' | '));
    assert.ok(c.problems.some((p) => p.includes('sha256')), c.problems.join(' | '));
    assert.ok(c.problems.some((p) => p.includes('seal')), c.problems.join(' | '));
  });

  test('a target in a missing directory fails with notFound and writes nothing', async () => {
    const out = at('ok-for-extract.zip');
    await write(out);
    await rejectsWith(extractImage(out, at('no-such-dir/x.sqlite')), 'notFound', 'x.sqlite');
  });
});

describe('hand-built archives', () => {
  test('a sealed ZIP64 archive (forced) reads, checks and extracts', async () => {
    const out = at('zip64.zip');
    await buildZip(
      out,
      [
        { name: IMAGE_ENTRY, data: image.bytes },
        { name: MANIFEST_ENTRY, data: Buffer.from(JSON.stringify(manifestFor(image))) },
      ],
      { seal: true, zip64: true, level: 6 },
    );
    const entries = await listEntries(out);
    assert.equal(entries[0]?.versionNeededToExtract, 45, 'zip64 records');
    assert.deepEqual(await readManifest(out), manifestFor(image));
    assert.deepEqual((await checkArchive(out)).problems, []);
    const ex = await extractImage(out, at('zip64.sqlite'));
    assert.equal(ex.sha256, image.sha256);
  });

  test('a local header whose name differs from the central directory is refused', async () => {
    const out = at('localname.zip');
    await buildZip(out, [
      { name: IMAGE_ENTRY, data: image.bytes },
      { name: MANIFEST_ENTRY, data: Buffer.from(JSON.stringify(manifestFor(image))) },
    ], { seal: true });
    const buf = readFileSync(out);
    Buffer.from('../evil.sqlite.').copy(buf, 30); // the first local header's name
    writeFileSync(out, buf);
    await rejectsWith(extractImage(out, at('localname.sqlite')), 'badArchive', 'local header');
    assert.equal(existsSync(at('localname.sqlite')), false);
  });
});

describe('write failures leave nothing behind', () => {
  test('a full disk (a symlink to /dev/full): diskFull, partial output removed', async (t) => {
    if (!existsSync('/dev/full')) return t.skip('no /dev/full');
    const out = at('full.zip');
    symlinkSync('/dev/full', out);
    const e = await rejectsWith(write(out), 'diskFull', 'partial output removed');
    assert.ok(e.message.includes(out));
    assert.equal(existsSync(out) || isLink(out), false, 'the link is gone');
    const good = at('for-full.zip');
    await write(good);
    const target = at('full.sqlite');
    symlinkSync('/dev/full', target);
    await rejectsWith(extractImage(good, target), 'diskFull', target);
    assert.equal(isLink(target), false);
    assert.ok(existsSync('/dev/full'), 'the device itself is untouched');
  });

  test('an outPath under a regular file (ENOTDIR: root ignores chmod, so a file stands in for a read-only dir)', async () => {
    const blocker = at('blocker');
    writeFileSync(blocker, 'a file, not a directory');
    const out = path.join(blocker, 'x.zip');
    const e = await rejectsWith(write(out), 'io', out);
    assert.ok(['io', 'unwritable'].includes(e.reason));
    assert.equal(readFileSync(blocker, 'utf8'), 'a file, not a directory');
  });

  test('a missing image is notFound and creates no output', async () => {
    const out = at('noimage.zip');
    await rejectsWith(
      writeArchive({ imagePath: at('nope.sqlite'), outPath: out, level: 6, manifest: async (i) => manifestFor(i) }),
      'notFound',
      'nope.sqlite',
    );
    assert.equal(existsSync(out), false);
  });

  test('an invalid level is badConfig', async () => {
    await rejectsWith(write(at('lvl.zip'), 10), 'badConfig', '10');
    assert.equal(existsSync(at('lvl.zip')), false);
  });

  test('abort while the image streams: cancelled, outPath removed', async () => {
    const big = at('big.sqlite');
    makeDb(big, { rows: 12000 }); // several 1 MiB chunks
    assert.ok(statSync(big).size > 2 << 20);
    const out = at('abort1.zip');
    const ac = new AbortController();
    let calls = 0;
    await rejectsWith(
      writeArchive({
        imagePath: big,
        outPath: out,
        level: 6,
        signal: ac.signal,
        manifest: async (i) => manifestFor(i),
        onProgress: () => {
          if (++calls === 1) ac.abort();
        },
      }),
      'cancelled',
    );
    assert.equal(existsSync(out), false);
  });

  test('an image that grows while it is archived: io, outPath removed', async () => {
    const growing = at('growing.sqlite');
    makeDb(growing, { rows: 12000 });
    const out = at('grow.zip');
    let calls = 0;
    await rejectsWith(
      writeArchive({
        imagePath: growing,
        outPath: out,
        level: 1,
        manifest: async (i) => manifestFor(i),
        onProgress: () => {
          if (++calls === 1) appendFileSync(growing, Buffer.alloc(4096, 1));
        },
      }),
      'io',
      'changed size',
    );
    assert.equal(existsSync(out), false);
  });

  test('abort while the manifest is pending: cancelled, outPath removed', async () => {
    const out = at('abort2.zip');
    const ac = new AbortController();
    await rejectsWith(
      writeArchive({
        imagePath: image.path,
        outPath: out,
        level: 6,
        signal: ac.signal,
        manifest: (i) => {
          ac.abort();
          return new Promise<Manifest>(() => undefined).then(() => manifestFor(i));
        },
      }),
      'cancelled',
    );
    assert.equal(existsSync(out), false);
  });

  test('an already aborted signal writes nothing', async () => {
    const out = at('abort0.zip');
    await rejectsWith(
      writeArchive({ imagePath: image.path, outPath: out, level: 6, signal: AbortSignal.abort(), manifest: async (i) => manifestFor(i) }),
      'cancelled',
    );
    assert.equal(existsSync(out), false);
  });

  test('a failing manifest callback passes its error through and removes outPath', async () => {
    const out = at('mfail.zip');
    await rejectsWith(
      writeArchive({
        imagePath: image.path,
        outPath: out,
        level: 6,
        manifest: async () => {
          throw new BackupError('verifyFailed', 'image failed verification');
        },
      }),
      'verifyFailed',
    );
    assert.equal(existsSync(out), false);
  });

  test('a manifest that does not describe the image is refused and removes outPath', async () => {
    const out = at('mwrong.zip');
    await rejectsWith(
      writeArchive({ imagePath: image.path, outPath: out, level: 6, manifest: async (i) => manifestFor({ ...i, sha256: 'f'.repeat(64) }) }),
      'io',
      'image.sha256',
    );
    assert.equal(existsSync(out), false);
  });
});

describe('fsutil', () => {
  test('writeFileAtomic writes, replaces and leaves no temp file', async () => {
    const { dir, cleanup } = tempDir('lifeboat-fsutil-');
    try {
      const f = path.join(dir, 'state.json');
      await writeFileAtomic(f, '{"a":1}');
      await writeFileAtomic(f, Buffer.from('{"a":2}'));
      assert.equal(readFileSync(f, 'utf8'), '{"a":2}');
      assert.deepEqual(readdirSync(dir), ['state.json']);
      await fsyncFile(f);
      await fsyncDir(dir);
      const blocked = path.join(f, 'x.json');
      await rejectsWith(writeFileAtomic(blocked, 'x'), 'io', 'x.json');
      assert.deepEqual(readdirSync(dir), ['state.json']);
      await rejectsWith(fsyncFile(path.join(dir, 'missing')), 'notFound', 'missing');
      assert.equal(await removeQuietly(f), true);
      assert.equal(await removeQuietly(f), true);
      assert.deepEqual(readdirSync(dir), []);
    } finally {
      cleanup();
    }
  });
});

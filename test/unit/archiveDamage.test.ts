/**
 * Damage tests: one valid archive of a few hundred KB, damaged many ways (seeded, so any
 * failure reproduces from the printed seed). Every damaged copy must be detected by
 * checkArchive, and extraction must never produce bytes other than the original image.
 */
import assert from 'node:assert/strict';
import { existsSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { after, before, test } from 'node:test';
import * as yauzl from 'yauzl';
import { checkArchive, extractImage, readManifest } from '../../src/core/archive/archiveReader';
import { writeArchive } from '../../src/core/archive/archiveWriter';
import { BackupError } from '../../src/core/errors';
import { IMAGE_ENTRY } from '../../src/core/model';
import { CREATED, manifestFor, prng, sha256Of } from '../fixtures/archive';
import { sqlite, tempDir } from '../fixtures/sqlite';

const SEED = Number(process.env.LIFEBOAT_DAMAGE_SEED ?? 20261126);
const FLIPS = 240;
const TRUNCATIONS = 60;
const ALLOWED = new Set(['badArchive', 'unsafeArchive', 'unsupportedFormat']);

const tmp = tempDir('lifeboat-damage-');
after(() => tmp.cleanup());
const damaged = path.join(tmp.dir, 'damaged.zip');
const restored = path.join(tmp.dir, 'restored.sqlite');
let good: Buffer;
let original: Buffer;
/** Where the image's compressed bytes lie; everything else is zip structure and the manifest. */
let imageData: { start: number; end: number };

before(async () => {
  const img = path.join(tmp.dir, 'image.sqlite');
  // Deterministic content (sha3 blobs, not randomblob) and a fixed mtime make the archive
  // the same bytes on every run, so a seed names the same damage every time.
  sqlite(
    img,
    `CREATE TABLE t(id INTEGER PRIMARY KEY, a BLOB, b TEXT);
WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i+1 FROM n WHERE i < 3000)
INSERT INTO t SELECT i, sha3(i, 512) || sha3(i + 1000000, 512), 'row ' || i FROM n;
CREATE INDEX t_b ON t(b);`,
  );
  original = readFileSync(img);
  const zip = path.join(tmp.dir, 'good.zip');
  await writeArchive({ imagePath: img, outPath: zip, level: 6, mtime: new Date(Date.parse(CREATED)), manifest: async (i) => manifestFor(i) });
  good = readFileSync(zip);
  assert.ok(good.length > 200_000 && good.length < 1_000_000, `a few hundred KB: ${good.length}`);
  assert.equal((await checkArchive(zip)).ok, true);
  console.log(`damage base: ${good.length}-byte archive, sha256 ${sha256Of(good)}`);
  const z = await yauzl.openPromise(zip, { lazyEntries: true });
  for await (const e of z.eachEntry()) {
    if (e.fileName !== IMAGE_ENTRY) continue;
    const local = await z.readLocalFileHeaderPromise(e, { minimal: true });
    imageData = { start: local.fileDataStart, end: local.fileDataStart + e.compressedSize };
  }
  z.close();
  assert.ok(imageData, 'found the image entry');
});

interface Verdict {
  /** checkArchive said ok:false. */
  detected: boolean;
  /** readManifest (the cheap path) already refused it. */
  cheap: boolean;
  /** Only the seal's digest noticed: the change is in bytes zip readers ignore. */
  sealOnly: boolean;
  /** extractImage succeeded (always with the original bytes). */
  extracted: boolean;
  problems: string[];
}

async function judge(bytes: Buffer, what: string): Promise<Verdict> {
  writeFileSync(damaged, bytes);
  let cheap = false;
  try {
    await readManifest(damaged);
  } catch (e) {
    assert.ok(BackupError.is(e) && ALLOWED.has(e.reason), `${what}: readManifest threw ${String(e)}`);
    cheap = true;
  }
  const c = await checkArchive(damaged);
  if (cheap) assert.equal(c.ok, false, `${what}: readManifest refused but checkArchive passed`);
  let extracted = false;
  try {
    await extractImage(damaged, restored);
    // Damage that extraction does not notice must be damage that does not matter.
    assert.ok(readFileSync(restored).equals(original), `${what}: extracted bytes differ from the original`);
    rmSync(restored);
    extracted = true;
  } catch (e) {
    assert.ok(BackupError.is(e) && ALLOWED.has(e.reason), `${what}: extractImage threw ${String(e)}`);
    assert.equal(existsSync(restored), false, `${what}: a refused extraction left output`);
  }
  return {
    detected: !c.ok,
    cheap,
    sealOnly: !c.ok && c.problems.every((p) => p.includes('seal does not match')),
    extracted,
    problems: c.problems,
  };
}

function tally(label: string, verdicts: Array<Verdict & { what: string }>): void {
  const missed = verdicts.filter((v) => !v.detected);
  console.log(
    `${label}: ${verdicts.length} damaged copies, ${verdicts.length - missed.length} detected by checkArchive ` +
      `(${verdicts.filter((v) => v.cheap).length} already by readManifest, ` +
      `${verdicts.filter((v) => v.sealOnly).length} by the seal's digest alone), ` +
      `extractImage refused ${verdicts.filter((v) => !v.extracted).length} and restored the exact original from ` +
      `${verdicts.filter((v) => v.extracted).length}; seed ${SEED}`,
  );
  assert.deepEqual(missed.map((v) => v.what), [], 'every damaged copy is detected');
}

test(`${FLIPS} random single-bit flips anywhere in the archive are all detected`, async () => {
  const rand = prng(SEED);
  const verdicts = [];
  for (let i = 0; i < FLIPS; i++) {
    const offset = Math.floor(rand() * good.length);
    const bit = Math.floor(rand() * 8);
    const copy = Buffer.from(good);
    copy[offset]! ^= 1 << bit;
    const what = `flip offset ${offset} bit ${bit}`;
    verdicts.push({ what, ...(await judge(copy, what)) });
  }
  tally('random bit flips', verdicts);
});

test(`${TRUNCATIONS} random truncations (and the edges) are all detected`, async () => {
  const rand = prng(SEED ^ 0x5eed);
  const n = good.length;
  const lengths = [0, 1, 4, 22, n - 1, n - 2, n - 64, n - 65, n - 85, n - 86, n - 107, imageData.end, imageData.start];
  while (lengths.length < TRUNCATIONS) lengths.push(Math.floor(rand() * n));
  const verdicts = [];
  for (const len of lengths) {
    const what = `truncated to ${len} of ${n}`;
    verdicts.push({ what, ...(await judge(good.subarray(0, len), what)) });
  }
  tally('truncations', verdicts);
});

test('a flip in every byte outside the image data (headers, manifest, central directory, seal) is detected', async () => {
  const rand = prng(SEED ^ 0xc0ffee);
  const verdicts = [];
  for (let offset = 0; offset < good.length; offset++) {
    if (offset === imageData.start) offset = imageData.end;
    const bit = Math.floor(rand() * 8);
    const copy = Buffer.from(good);
    copy[offset]! ^= 1 << bit;
    const what = `flip offset ${offset} bit ${bit}`;
    verdicts.push({ what, ...(await judge(copy, what)) });
  }
  tally('structure bit flips', verdicts);
});

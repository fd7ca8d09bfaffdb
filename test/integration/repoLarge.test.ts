/**
 * A database over 1 GiB in format v2: the page at byte offset 1 GiB is SQLite's lock-byte
 * page, which SQLite never writes and page-by-page readers must still carry through. Built
 * quickly with 64 KiB pages and zeroblob()s (about 1.1 GiB, almost all of it compressible),
 * with random data on both sides of the lock-byte page. One v2 backup and one v1 zip of
 * the same state must rebuild to the same bytes. Needs about 4.5 GB of free disk in the
 * temp folder (the database, the snapshot while a backup runs, two rebuilt images); with
 * less the test fails, naming the shortfall, rather than skip.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { createReadStream, mkdirSync, openSync, readSync, closeSync, statSync, statfsSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, test } from 'node:test';
import { extractImage as extractZipImage } from '../../src/core/archive/archiveReader';
import { DEFAULT_SETTINGS, type Settings } from '../../src/core/config';
import { systemClock } from '../../src/core/context';
import { Engine } from '../../src/core/engine';
import { repoV2 } from '../../src/core/format/repoV2';
import { LocalDirStore } from '../../src/core/store/localDirStore';
import { query, sqlite, tempDir } from '../fixtures/sqlite';

const GiB = 1024 ** 3;
const PAGE = 65536;
/** The lock-byte page: the page holding byte offset 1 GiB (SQLite's PENDING_BYTE). */
const LOCK_PAGE = GiB / PAGE + 1;
const NEED_BYTES = 4.5 * GiB;

const tmp = tempDir('lifeboat-repolarge-');
after(() => tmp.cleanup());

async function fileSha(file: string): Promise<string> {
  const h = createHash('sha256');
  for await (const c of createReadStream(file, { highWaterMark: 4 * 1024 * 1024 })) h.update(c as Buffer);
  return h.digest('hex');
}

function pageAt(file: string, page: number): Buffer {
  const b = Buffer.alloc(PAGE);
  const fd = openSync(file, 'r');
  try {
    assert.equal(readSync(fd, b, 0, PAGE, (page - 1) * PAGE), PAGE);
  } finally {
    closeSync(fd);
  }
  return b;
}

test('a database over 1 GiB (the lock-byte page inside it) rebuilds from v2 byte for byte as its v1 zip', async () => {
  const fsStat = statfsSync(tmp.dir);
  const free = fsStat.bavail * fsStat.bsize;
  assert.ok(free >= NEED_BYTES, `${os.tmpdir()} has ${(free / GiB).toFixed(1)} GiB free; this test needs ${(NEED_BYTES / GiB).toFixed(1)} GiB`);
  const t0 = Date.now();
  const lap = (what: string) => console.log(`large: ${what} at ${((Date.now() - t0) / 1000).toFixed(1)} s`);
  const root = path.join(tmp.dir, 'large');
  mkdirSync(root);
  const db = path.join(root, 'big.db');
  // 16 blobs of 64 MiB make 1 GiB; random rows before and after put real data around the
  // lock-byte page, and a last blob carries the file past it.
  sqlite(
    db,
    `PRAGMA page_size=${PAGE};
PRAGMA journal_mode=OFF;
PRAGMA synchronous=OFF;
CREATE TABLE big(id INTEGER PRIMARY KEY, note TEXT, b BLOB);
INSERT INTO big(note, b) VALUES ('random before', randomblob(3 * 1024 * 1024));
INSERT INTO big(note, b) SELECT 'zero ' || i, zeroblob(64 * 1024 * 1024) FROM (WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 16) SELECT i FROM n);
INSERT INTO big(note, b) VALUES ('random after', randomblob(5 * 1024 * 1024));
INSERT INTO big(note, b) VALUES ('tail', zeroblob(32 * 1024 * 1024));
PRAGMA journal_mode=DELETE;
`,
  );
  lap('database built');
  const size = statSync(db).size;
  assert.ok(size > GiB + 32 * PAGE, `${size} bytes: past the lock-byte page`);
  assert.deepEqual(query(db, 'PRAGMA quick_check;'), [{ quick_check: 'ok' }]);

  const clock = { now: () => new Date(Date.UTC(2026, 10, 27, 3)), sleep: systemClock.sleep };
  const engine = new Engine({ clock });
  const settings: Settings = { ...DEFAULT_SETTINGS, format: 'repository', restoreTest: false };
  const dir = path.join(root, 'repo');
  const v2 = await engine.backup(db, { dir, kind: 'manual', settings });
  lap('v2 backup');
  assert.ok(v2.verified, JSON.stringify(v2.record.manifest.verification));
  const m = v2.record.manifest;
  assert.equal(m.image.pageSize, PAGE);
  assert.ok(m.image.pageCount > LOCK_PAGE, `${m.image.pageCount} pages`);
  assert.equal(m.repository!.pageCount, m.image.pageCount);

  const zipDir = path.join(root, 'zips');
  const v1 = await engine.backup(db, { dir: zipDir, kind: 'manual', settings: { ...settings, format: 'zip' } });
  lap('v1 backup');
  assert.equal(v1.record.format, 'zip');
  assert.equal(m.image.sha256, v1.record.manifest.image.sha256, 'both formats snapshot the same image');
  assert.equal(m.image.size, v1.record.manifest.image.size);

  const fromV2 = path.join(root, 'v2.img');
  const x2 = await repoV2.extractImage(new LocalDirStore(dir), v2.record.object, fromV2);
  lap('v2 rebuilt');
  assert.equal(x2.sha256, m.image.sha256);
  assert.equal(await fileSha(fromV2), m.image.sha256, 'the rebuilt file hashes to the manifest');
  const fromV1 = path.join(root, 'v1.img');
  await extractZipImage(v1.record.path, fromV1);
  lap('v1 extracted');
  assert.equal(await fileSha(fromV1), m.image.sha256);
  assert.equal(statSync(fromV2).size, statSync(fromV1).size);
  // The lock-byte page and its neighbours, byte for byte.
  for (const p of [LOCK_PAGE - 1, LOCK_PAGE, LOCK_PAGE + 1]) assert.ok(pageAt(fromV2, p).equals(pageAt(fromV1, p)), `page ${p}`);
  rmSync(fromV1);
  assert.deepEqual(query(fromV2, "SELECT count(*) AS n, sum(length(b)) AS bytes FROM big WHERE note LIKE 'zero %';"), [{ n: 16, bytes: 16 * 64 * 1024 * 1024 }]);
  // Zeros compress: the repository holds a small fraction of the image.
  assert.ok(m.repository!.added.bytes < m.image.size / 20, `${m.repository!.added.bytes} bytes stored for ${m.image.size}`);
  console.log(`large: ${m.image.pageCount} pages (${(m.image.size / GiB).toFixed(2)} GiB), v2 stored ${m.repository!.added.bytes} bytes in ${m.repository!.packs.length} pack(s), v1 zip ${v1.record.archiveSize} bytes`);
});

import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { copyFileSync, readFileSync, statSync, truncateSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { after, test } from 'node:test';
import { BackupError } from '../../src/core/errors';
import {
  JOURNAL_MAGIC,
  WAL_FRAME_HEADER_SIZE,
  WAL_HEADER_SIZE,
  hasHotJournal,
  looksRandom,
  parseWalHeader,
  readDbHeader,
  readShmHeader,
  readSourceState,
  scanWalFile,
  walChecksum,
} from '../../src/core/sqliteFile';
import { leaveWalFrames, makeDb, query, sqlite, tempDir } from '../fixtures/sqlite';

const tmp = tempDir('lifeboat-sqlitefile-');
after(() => tmp.cleanup());
let n = 0;
const fresh = (name = 'db') => path.join(tmp.dir, `${name}-${++n}.sqlite`);

/** A WAL database whose -wal holds two committed transactions: A (one row) then B (many pages). */
function twoTxnWal(pageSize = 4096): { db: string; afterA: string } {
  const db = fresh('wal');
  makeDb(db, { wal: true, pageSize, rows: 20 });
  leaveWalFrames(db, `INSERT INTO items(name, qty) VALUES ('txn A', 1);`);
  // Snapshot of the files right after A, for comparing what a reader should see.
  const afterA = fresh('afterA');
  copyFileSync(db, afterA);
  copyFileSync(`${db}-wal`, `${afterA}-wal`);
  leaveWalFrames(
    db,
    `BEGIN; WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i+1 FROM n WHERE i < 60)
     INSERT INTO items(name, qty, data) SELECT 'txn B ' || i, i, randomblob(900) FROM n; COMMIT;`,
  );
  return { db, afterA };
}

const frameCount = (walPath: string, pageSize: number) => (statSync(walPath).size - WAL_HEADER_SIZE) / (WAL_FRAME_HEADER_SIZE + pageSize);

test('readDbHeader reads page size, counts, versions and encoding from real files', async () => {
  for (const pageSize of [512, 4096, 65536]) {
    const db = fresh();
    makeDb(db, { pageSize, rows: 50 });
    const h = await readDbHeader(db);
    const [pc] = query<{ page_count: number }>(db, 'PRAGMA page_count;');
    assert.equal(h.pageSize, pageSize);
    assert.equal(h.pageCount, pc.page_count);
    assert.equal(h.pageCount * pageSize, statSync(db).size);
    assert.equal(h.writeVersion, 1);
    assert.equal(h.readVersion, 1);
    assert.equal(h.textEncoding, 1);
    assert.equal(h.reservedBytes, 0);
    assert.ok(h.changeCounter > 0);
    const [v] = query<{ v: string }>(db, 'SELECT sqlite_version() AS v;');
    const [maj, min, pat] = v.v.split('.').map(Number);
    assert.equal(h.sqliteVersionNumber, maj * 1_000_000 + min * 1000 + pat);
  }
  const wal = fresh();
  makeDb(wal, { wal: true, rows: 5 });
  const hw = await readDbHeader(wal);
  assert.deepEqual([hw.writeVersion, hw.readVersion], [2, 2]);
  const u16 = fresh();
  sqlite(u16, `PRAGMA encoding='UTF-16le'; CREATE TABLE t(x); INSERT INTO t VALUES('hé');`);
  assert.equal((await readDbHeader(u16)).textEncoding, 2);
});

test('a stale in-header page count falls back to file size / page size', async () => {
  const db = fresh();
  makeDb(db, { rows: 100 });
  const b = readFileSync(db);
  const pages = b.length / 4096;
  b.writeUInt32BE(pages + 7, 28);
  b.writeUInt32BE(b.readUInt32BE(24) - 1, 92); // "version-valid-for" no longer matches
  writeFileSync(db, b);
  assert.equal((await readDbHeader(db)).pageCount, pages);
  b.writeUInt32BE(b.readUInt32BE(24), 92); // now trusted, even though it is wrong
  writeFileSync(db, b);
  assert.equal((await readDbHeader(db)).pageCount, pages + 7);
});

test('missing, empty, foreign and random files each give their one error', async () => {
  const missing = path.join(tmp.dir, 'nope.db');
  await assert.rejects(readDbHeader(missing), (e) => BackupError.is(e, 'notFound') && e.message.includes('nope.db'));
  const empty = fresh();
  writeFileSync(empty, '');
  await assert.rejects(readDbHeader(empty), (e) => BackupError.is(e, 'notSqlite') && /empty/.test(e.message));
  const text = fresh();
  writeFileSync(text, 'hello, this is a text file\n'.repeat(400).slice(0, 8192));
  await assert.rejects(readDbHeader(text), (e) => BackupError.is(e, 'notSqlite') && /not an SQLite database/.test(e.message));
  const noise = fresh();
  writeFileSync(noise, randomBytes(8192));
  await assert.rejects(readDbHeader(noise), (e) => BackupError.is(e, 'encrypted') && /encrypted\?/.test(e.message));
  // Random but not a whole number of pages: not an encrypted database, just not SQLite.
  const odd = fresh();
  writeFileSync(odd, randomBytes(5000));
  await assert.rejects(readDbHeader(odd), (e) => BackupError.is(e, 'notSqlite'));
  const cut = fresh();
  writeFileSync(cut, Buffer.concat([Buffer.from('SQLite format 3\0', 'latin1'), Buffer.alloc(20)]));
  await assert.rejects(readDbHeader(cut), (e) => BackupError.is(e, 'notSqlite') && /cut short/.test(e.message));
  assert.equal(looksRandom(randomBytes(4096)), true);
  assert.equal(looksRandom(Buffer.alloc(4096, 7)), false);
});

test('scanWal finds every committed frame of a real WAL and the newest frame of each page', async () => {
  const { db } = twoTxnWal();
  const walPath = `${db}-wal`;
  const scan = await scanWalFile(walPath);
  assert.ok(scan.header);
  assert.equal(scan.header.pageSize, 4096);
  assert.equal(scan.header.bigEndianChecksums, readFileSync(walPath).readUInt32BE(0) === 0x377f0683);
  assert.equal(scan.frames, frameCount(walPath, 4096));
  assert.equal(scan.uncommittedFrames, 0);
  // The size after the last commit is what SQLite reports for the database.
  const copy = fresh();
  copyFileSync(db, copy);
  copyFileSync(walPath, `${copy}-wal`);
  assert.equal(scan.dbSize, query<{ page_count: number }>(copy, 'PRAGMA page_count;')[0].page_count);
  const wal = readFileSync(walPath);
  for (const [pgno, off] of scan.pages) {
    assert.equal(wal.readUInt32BE(off), pgno);
    // No later frame in the WAL holds the same page.
    for (let f = (off - WAL_HEADER_SIZE) / (WAL_FRAME_HEADER_SIZE + 4096) + 1; f < scan.frames; f++) {
      assert.notEqual(wal.readUInt32BE(WAL_HEADER_SIZE + f * (WAL_FRAME_HEADER_SIZE + 4096)), pgno);
    }
  }
});

test('the -shm header agrees with the WAL', async () => {
  for (const pageSize of [4096, 65536]) {
    const { db } = twoTxnWal(pageSize);
    const scan = await scanWalFile(`${db}-wal`);
    const shm = await readShmHeader(`${db}-shm`);
    assert.ok(shm && scan.header);
    assert.equal(shm.stable, true);
    assert.equal(shm.isInit, 1);
    assert.equal(shm.version, 3007000);
    assert.equal(shm.pageSize, pageSize);
    assert.equal(shm.mxFrame, scan.frames);
    assert.equal(shm.nPage, scan.dbSize);
    assert.deepEqual([shm.salt1, shm.salt2], [scan.header.salt1, scan.header.salt2]);
    assert.ok(shm.nBackfillAttempted <= shm.mxFrame);
  }
  assert.equal(await readShmHeader(path.join(tmp.dir, 'none-shm')), undefined);
});

test('a torn last frame, a bad checksum and a foreign salt each end the WAL at the commit before', async () => {
  const { db, afterA } = twoTxnWal();
  const walPath = `${db}-wal`;
  const commitA = frameCount(`${afterA}-wal`, 4096);
  const full = readFileSync(walPath);
  const frame = WAL_FRAME_HEADER_SIZE + 4096;
  const total = frameCount(walPath, 4096);
  assert.ok(total - commitA > 2, 'txn B spans several frames');
  const check = async (bytes: Buffer, label: string) => {
    const p = fresh('case') + '-wal';
    writeFileSync(p, bytes);
    const scan = await scanWalFile(p);
    assert.equal(scan.frames, commitA, label);
    const a = await scanWalFile(`${afterA}-wal`);
    assert.equal(scan.dbSize, a.dbSize, label);
    assert.deepEqual([...scan.pages].sort(), [...a.pages].sort(), label);
  };
  await check(full.subarray(0, full.length - 100), 'torn last frame');
  const bad = Buffer.from(full);
  bad[WAL_HEADER_SIZE + (total - 1) * frame + WAL_FRAME_HEADER_SIZE + 50] ^= 0xff;
  await check(bad, 'bad checksum in the commit frame');
  const salt = Buffer.from(full);
  salt.writeUInt32BE((salt.readUInt32BE(WAL_HEADER_SIZE + commitA * frame + 8) + 1) >>> 0, WAL_HEADER_SIZE + commitA * frame + 8);
  await check(salt, 'salt mismatch in the first frame of B');
  // Frames of B without its commit frame are valid but uncommitted: excluded.
  const p = fresh('open') + '-wal';
  writeFileSync(p, full.subarray(0, full.length - frame));
  const open = await scanWalFile(p);
  assert.equal(open.frames, commitA);
  assert.equal(open.uncommittedFrames, total - commitA - 1);
});

test('an empty, missing or invalid WAL contributes nothing', async () => {
  const p = fresh('empty') + '-wal';
  writeFileSync(p, '');
  for (const f of [p, path.join(tmp.dir, 'missing-wal')]) {
    const s = await scanWalFile(f);
    assert.equal(s.header, undefined);
    assert.equal(s.frames, 0);
  }
  const { db } = twoTxnWal();
  const wal = readFileSync(`${db}-wal`);
  assert.ok(parseWalHeader(wal));
  const badMagic = Buffer.from(wal);
  badMagic[0] ^= 0x10;
  assert.equal(parseWalHeader(badMagic), undefined);
  const badSum = Buffer.from(wal);
  badSum[27] ^= 1;
  assert.equal(parseWalHeader(badSum), undefined);
  writeFileSync(p, badSum);
  assert.equal((await scanWalFile(p)).frames, 0);
});

test('big-endian checksums: a WAL rewritten with magic 0x377f0683 is read by sqlite3 and by scanWal alike', async () => {
  const { db } = twoTxnWal();
  const wal = Buffer.from(readFileSync(`${db}-wal`));
  assert.equal(wal.readUInt32BE(0), 0x377f0682, 'this host writes little-endian checksums');
  wal.writeUInt32BE(0x377f0683, 0);
  let [s1, s2] = walChecksum(wal, 0, 24, true, 0, 0);
  wal.writeUInt32BE(s1, 24);
  wal.writeUInt32BE(s2, 28);
  const frame = WAL_FRAME_HEADER_SIZE + 4096;
  for (let at = WAL_HEADER_SIZE; at + frame <= wal.length; at += frame) {
    [s1, s2] = walChecksum(wal, at, at + 8, true, s1, s2);
    [s1, s2] = walChecksum(wal, at + WAL_FRAME_HEADER_SIZE, at + frame, true, s1, s2);
    wal.writeUInt32BE(s1, at + 16);
    wal.writeUInt32BE(s2, at + 20);
  }
  const copy = fresh('be');
  copyFileSync(db, copy);
  writeFileSync(`${copy}-wal`, wal);
  const scan = await scanWalFile(`${copy}-wal`);
  assert.equal(scan.header?.bigEndianChecksums, true);
  assert.equal(scan.frames, frameCount(`${copy}-wal`, 4096));
  // Real SQLite recovers every frame only if our big-endian checksums are right.
  const [r] = query<{ c: number }>(copy, `SELECT count(*) AS c FROM items WHERE name LIKE 'txn B %';`);
  assert.equal(r.c, 60);
});

test('hasHotJournal: only a journal that starts with the magic is hot', async () => {
  const db = fresh();
  makeDb(db, { rows: 5 });
  assert.equal(await hasHotJournal(db), false);
  writeFileSync(`${db}-journal`, Buffer.alloc(512));
  assert.equal(await hasHotJournal(db), false, 'a PERSIST journal after commit is zeroed');
  writeFileSync(`${db}-journal`, Buffer.concat([JOURNAL_MAGIC, Buffer.alloc(504)]));
  assert.equal(await hasHotJournal(db), true);
  writeFileSync(`${db}-journal`, '');
  assert.equal(await hasHotJournal(db), false);
});

test('readSourceState changes with a commit and not without one', async () => {
  const rb = fresh();
  makeDb(rb, { rows: 10 });
  const a = await readSourceState(rb);
  assert.deepEqual(await readSourceState(rb), a);
  assert.equal(a.walSize, 0);
  assert.equal(a.walSalt1, undefined);
  sqlite(rb, `INSERT INTO items(name) VALUES ('x');`);
  const b = await readSourceState(rb);
  assert.equal(b.changeCounter, a.changeCounter + 1);

  const { db } = twoTxnWal();
  const w1 = await readSourceState(db);
  assert.ok(w1.walSize > 0 && w1.walSalt1 !== undefined && w1.walMxFrame === frameCount(`${db}-wal`, 4096));
  leaveWalFrames(db, `INSERT INTO items(name) VALUES ('y');`);
  const w2 = await readSourceState(db);
  assert.equal(w2.walMxFrame, frameCount(`${db}-wal`, 4096));
  assert.ok(w2.walMxFrame! > w1.walMxFrame!);
  assert.ok(w2.walSize > w1.walSize);
  await assert.rejects(readSourceState(path.join(tmp.dir, 'gone.db')), (e) => BackupError.is(e, 'notFound'));
  truncateSync(rb, 0);
  await assert.rejects(readSourceState(rb), (e) => BackupError.is(e, 'notSqlite'));
});

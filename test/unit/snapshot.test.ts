import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { copyFileSync, existsSync, mkdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { after, test } from 'node:test';
import type { Clock } from '../../src/core/context';
import { BackupError } from '../../src/core/errors';
import { JOURNAL_MAGIC } from '../../src/core/sqliteFile';
import { type SnapshotResult, takeSnapshot } from '../../src/core/snapshot/snapshot';
import { dumpHash, leaveWalFrames, makeDb, query, sqlite, tempDir } from '../fixtures/sqlite';

const tmp = tempDir('lifeboat-snapshot-');
after(() => tmp.cleanup());
let n = 0;
const fresh = (name = 'db') => {
  const dir = path.join(tmp.dir, `${name}-${++n}`);
  mkdirSync(dir);
  return path.join(dir, `${name}.sqlite`);
};

/** A clock whose sleeps return at once and are recorded. */
function recordingClock(): Clock & { sleeps: number[] } {
  const sleeps: number[] = [];
  return { sleeps, now: () => new Date(0), sleep: async (ms) => void sleeps.push(ms) };
}

/** The dump hash of the source as SQLite sees it, computed on a copy (closing a connection checkpoints). */
function sourceHash(db: string): string {
  const copy = fresh('srccopy');
  copyFileSync(db, copy);
  if (existsSync(`${db}-wal`)) copyFileSync(`${db}-wal`, `${copy}-wal`);
  return dumpHash(copy);
}

/** Checks the image as a standalone file: alone in a fresh folder, no sidecars. */
function checkImage(image: string, r: SnapshotResult, expectedHash: string): void {
  const alone = fresh('alone');
  copyFileSync(image, alone);
  assert.deepEqual(query(alone, 'PRAGMA integrity_check;'), [{ integrity_check: 'ok' }]);
  assert.deepEqual(query(alone, 'PRAGMA journal_mode;'), [{ journal_mode: 'delete' }]);
  assert.equal(dumpHash(alone), expectedHash);
  const h = readFileSync(image).subarray(0, 100);
  assert.deepEqual([h[18], h[19]], [1, 1]);
  assert.equal(h.readUInt32BE(28), r.pageCount);
  assert.equal(h.readUInt32BE(92), h.readUInt32BE(24));
  assert.equal(statSync(image).size, r.size);
  assert.equal(r.size, r.pageCount * r.pageSize);
  const [pc] = query<{ page_count: number; }>(alone, 'PRAGMA page_count;');
  assert.equal(pc.page_count, r.pageCount);
  assert.equal(r.changeCounter, h.readUInt32BE(24));
  assert.equal(r.sqliteVersionNumber, h.readUInt32BE(96));
  for (const s of ['-wal', '-shm', '-journal']) assert.equal(existsSync(image + s), false);
}

test('rollback-mode databases round-trip at 512, 4096 and 65536-byte pages', async () => {
  for (const pageSize of [512, 4096, 65536]) {
    const db = fresh();
    makeDb(db, { pageSize, rows: 300 });
    const out = path.join(path.dirname(db), 'image.sqlite');
    const r = await takeSnapshot(db, out, { clock: recordingClock() });
    assert.equal(r.journalMode, 'rollback');
    assert.equal(r.walFrames, 0);
    assert.equal(r.pageSize, pageSize);
    assert.equal(r.attempts, 1);
    assert.equal(r.imagePath, out);
    assert.equal(r.source.size, statSync(db).size);
    assert.equal(r.source.mtimeMs, statSync(db).mtimeMs);
    checkImage(out, r, sourceHash(db));
  }
});

test('WAL mode: committed frames still in -wal are folded in, for every page size', async () => {
  for (const pageSize of [512, 4096, 65536]) {
    const db = fresh();
    makeDb(db, { wal: true, keepWal: true, pageSize, rows: 200 });
    leaveWalFrames(db, `UPDATE items SET qty = qty + 1000, data = randomblob(700) WHERE id % 3 = 0; DELETE FROM items WHERE id % 7 = 0;`);
    const walBefore = readFileSync(`${db}-wal`);
    const mainBefore = readFileSync(db);
    const expected = sourceHash(db);
    const out = path.join(path.dirname(db), 'image.sqlite');
    const r = await takeSnapshot(db, out);
    assert.equal(r.journalMode, 'wal');
    assert.ok(r.walFrames > 0);
    assert.equal(r.pageSize, pageSize);
    checkImage(out, r, expected);
    // The WAL content really was needed: the main file alone is an older state.
    const mainOnly = fresh('mainonly');
    copyFileSync(db, mainOnly);
    assert.notEqual(dumpHash(mainOnly), expected);
    // The source was only read.
    assert.deepEqual(readFileSync(`${db}-wal`), walBefore);
    assert.deepEqual(readFileSync(db), mainBefore);
  }
});

test('a rich schema round-trips: BLOBs, views, triggers, many indexes, FTS5, R-Tree, WITHOUT ROWID', async () => {
  for (const wal of [false, true]) {
    const db = fresh();
    makeDb(db, { wal, rows: 150 });
    const indexes = Array.from({ length: 12 }, (_, i) => `CREATE INDEX wide_${i} ON wide(c${i % 6}, c${(i + 1) % 6});`).join('\n');
    const schema = `
CREATE TABLE wide(id INTEGER PRIMARY KEY, c0, c1, c2, c3, c4, c5);
${indexes}
CREATE TABLE kv(k TEXT PRIMARY KEY, v BLOB) WITHOUT ROWID;
CREATE VIRTUAL TABLE docs USING fts5(title, body);
CREATE VIRTUAL TABLE boxes USING rtree(id, minX, maxX, minY, maxY);
CREATE VIEW wide_view AS SELECT id, c0 || c1 AS c FROM wide;
CREATE TRIGGER kv_touch AFTER UPDATE ON kv BEGIN INSERT INTO audit(item_id, at) VALUES (-1, new.k); END;
WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i+1 FROM n WHERE i < 400)
INSERT INTO wide SELECT i, i, 'x' || i, i * 1.5, randomblob(i % 40), NULL, hex(randomblob(8)) FROM n;
WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i+1 FROM n WHERE i < 300)
INSERT INTO kv SELECT 'key' || i, randomblob(i * 13) FROM n;
WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i+1 FROM n WHERE i < 200)
INSERT INTO docs SELECT 'title ' || i, 'the quick brown fox number ' || i || ' jumps over ' || hex(randomblob(20)) FROM n;
WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i+1 FROM n WHERE i < 200)
INSERT INTO boxes SELECT i, i, i + 5, -i, -i + 3 FROM n;
UPDATE kv SET v = randomblob(5000) WHERE k IN ('key1', 'key2');
`;
    if (wal) leaveWalFrames(db, schema);
    else sqlite(db, schema);
    const expected = sourceHash(db);
    const out = path.join(path.dirname(db), 'image.sqlite');
    const r = await takeSnapshot(db, out);
    assert.equal(r.journalMode, wal ? 'wal' : 'rollback');
    checkImage(out, r, expected);
    const alone = fresh('q');
    copyFileSync(out, alone);
    assert.deepEqual(query(alone, `SELECT count(*) AS c FROM docs WHERE docs MATCH 'fox';`), [{ c: 200 }]);
    assert.deepEqual(query(alone, `SELECT count(*) AS c FROM boxes WHERE minX >= 10 AND maxX <= 20;`), [{ c: 6 }]);
    assert.deepEqual(query(alone, `INSERT INTO docs(docs) VALUES ('integrity-check'); SELECT 1 AS ok;`), [{ ok: 1 }]);
  }
});

test('frames after the last commit and a torn frame are left out of the image', async () => {
  const db = fresh();
  makeDb(db, { wal: true, rows: 30 });
  leaveWalFrames(db, `INSERT INTO items(name) VALUES ('committed');`);
  const expected = sourceHash(db);
  const committedWal = statSync(`${db}-wal`).size;
  leaveWalFrames(db, `BEGIN; WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i+1 FROM n WHERE i < 40)
    INSERT INTO items(name, data) SELECT 'later ' || i, randomblob(1500) FROM n; COMMIT;`);
  const wal = readFileSync(`${db}-wal`);
  const frame = 24 + 4096;
  // Drop the commit frame and tear the one before it: what remains of the second
  // transaction must not reach the image.
  writeFileSync(`${db}-wal`, wal.subarray(0, wal.length - frame - 1000));
  assert.ok(statSync(`${db}-wal`).size > committedWal + frame);
  const out = path.join(path.dirname(db), 'image.sqlite');
  const r = await takeSnapshot(db, out);
  assert.equal(r.walFrames, (committedWal - 32) / frame);
  checkImage(out, r, expected);
});

test('an empty or invalid -wal contributes nothing, and a -wal without -shm still counts', async () => {
  const base = fresh();
  makeDb(base, { wal: true, keepWal: true, rows: 60 });
  const mainOnly = fresh('mainonly');
  copyFileSync(base, mainOnly);
  const mainHash = dumpHash(mainOnly);
  const fullHash = sourceHash(base);
  assert.notEqual(mainHash, fullHash);
  const cases: Array<[string, (db: string) => void, string, number | 'some']> = [
    ['empty -wal', (db) => writeFileSync(`${db}-wal`, ''), mainHash, 0],
    ['garbage -wal', (db) => writeFileSync(`${db}-wal`, randomBytes(5000)), mainHash, 0],
    // Exclusive locking mode keeps the wal-index in memory: there is a -wal but no -shm.
    ['-wal without -shm', (db) => copyFileSync(`${base}-wal`, `${db}-wal`), fullHash, 'some'],
  ];
  for (const [label, prepare, hash, frames] of cases) {
    const db = fresh('case');
    copyFileSync(base, db);
    prepare(db);
    const out = path.join(path.dirname(db), 'image.sqlite');
    const r = await takeSnapshot(db, out);
    assert.equal(r.journalMode, 'wal', label);
    if (frames === 'some') assert.ok(r.walFrames > 0, label);
    else assert.equal(r.walFrames, frames, label);
    checkImage(out, r, hash);
  }
});

test('bad sources each give one clear error and leave no output behind', async () => {
  const dir = path.dirname(fresh('errors'));
  const out = path.join(dir, 'image.sqlite');
  const cases: Array<[string, (p: string) => void, string, RegExp]> = [
    ['missing.db', () => undefined, 'notFound', /missing\.db/],
    ['empty.db', (p) => writeFileSync(p, ''), 'notSqlite', /empty file/],
    ['text.db', (p) => writeFileSync(p, 'id,name\n1,alice\n'.repeat(300)), 'notSqlite', /not an SQLite database/],
    ['random.db', (p) => writeFileSync(p, randomBytes(16384)), 'encrypted', /not a plain SQLite database \(encrypted\?\)/],
  ];
  for (const [name, make, reason, message] of cases) {
    const src = path.join(dir, name);
    make(src);
    writeFileSync(out, 'stale output from an earlier run');
    await assert.rejects(takeSnapshot(src, out), (e) => {
      assert.ok(BackupError.is(e), String(e));
      assert.equal(e.reason, reason, `${name}: ${e.message}`);
      assert.match(e.message, message);
      assert.ok(e.message.includes(name), e.message);
      return true;
    });
    assert.equal(existsSync(out), false, name);
  }
});

test('an output in a missing folder is unwritable; an aborted signal cancels; neither leaves a file', async () => {
  const db = fresh();
  makeDb(db, { rows: 20 });
  const missingDir = path.join(path.dirname(db), 'no', 'such', 'dir', 'image.sqlite');
  await assert.rejects(takeSnapshot(db, missingDir), (e) => BackupError.is(e, 'unwritable') && e.message.includes('image.sqlite'));
  const out = path.join(path.dirname(db), 'image.sqlite');
  const ac = new AbortController();
  ac.abort();
  await assert.rejects(takeSnapshot(db, out, { signal: ac.signal }), (e) => BackupError.is(e, 'cancelled'));
  assert.equal(existsSync(out), false);
  // Aborting mid-copy, from the progress callback.
  const big = fresh('big');
  makeDb(big, { rows: 20 });
  sqlite(big, `WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i+1 FROM n WHERE i < 3000) INSERT INTO items(name, data) SELECT 'b', randomblob(4000) FROM n;`);
  const ac2 = new AbortController();
  const out2 = path.join(path.dirname(big), 'image.sqlite');
  await assert.rejects(
    takeSnapshot(big, out2, { signal: ac2.signal, onProgress: (p) => p.done > 0 && ac2.abort() }),
    (e) => BackupError.is(e, 'cancelled'),
  );
  assert.equal(existsSync(out2), false);
});

test('a hot journal left by a crashed writer: every attempt backs off, then busy', async () => {
  const db = fresh();
  makeDb(db, { rows: 20 });
  writeFileSync(`${db}-journal`, Buffer.concat([JOURNAL_MAGIC, Buffer.alloc(1016)]));
  const clock = recordingClock();
  const out = path.join(path.dirname(db), 'image.sqlite');
  await assert.rejects(takeSnapshot(db, out, { clock, maxAttempts: 6 }), (e) => {
    assert.ok(BackupError.is(e, 'busy'), String(e));
    assert.match(e.message, /database too busy: it changed under 6 attempts to read it/);
    assert.match(e.message, /hot journal/);
    return true;
  });
  assert.equal(existsSync(out), false);
  assert.equal(clock.sleeps.length, 5);
  // Exponential with jitter in [ceiling/2, ceiling]: the last wait is longer than the first.
  assert.ok(clock.sleeps[4] > clock.sleeps[0], clock.sleeps.join(','));
  // Once the journal is gone (SQLite rolled it back), the snapshot succeeds.
  rmSync(`${db}-journal`);
  const r = await takeSnapshot(db, out, { clock });
  checkImage(out, r, sourceHash(db));
});

test('progress reaches the bytes read and the image is overwritten on a repeat', async () => {
  const db = fresh();
  makeDb(db, { wal: true, keepWal: true, rows: 500 });
  const seen: number[] = [];
  const out = path.join(path.dirname(db), 'image.sqlite');
  const total = statSync(db).size + statSync(`${db}-wal`).size;
  await takeSnapshot(db, out, { onProgress: (p) => (assert.equal(p.total, total), seen.push(p.done)) });
  assert.equal(seen.at(-1), total);
  leaveWalFrames(db, `DELETE FROM items WHERE id > 10;`);
  const r = await takeSnapshot(db, out);
  checkImage(out, r, sourceHash(db));
});

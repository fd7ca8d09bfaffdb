import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { spawnSync } from 'node:child_process';
import { chmodSync, copyFileSync, existsSync, mkdirSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { after, test } from 'node:test';
import type { Clock } from '../../src/core/context';
import { BackupError } from '../../src/core/errors';
import { JOURNAL_MAGIC } from '../../src/core/sqliteFile';
import { DEFAULT_SETTINGS } from '../../src/core/config';
import { Engine } from '../../src/core/engine';
import { snapshotDatabase } from '../../src/core/snapshot/liveSnapshot';
import { type SnapshotResult, type SnapshotStrategy, takeSnapshot } from '../../src/core/snapshot/snapshot';
import { nodeSqlite, nodeSqliteUnavailableReason } from '../../src/core/sqlite/nodeSqlite';
import { dumpHash, leaveWalFrames, makeDb, query, sqlite, startShell, tempDir } from '../fixtures/sqlite';

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

// ---------------------------------------------------------------------------------------
// The live-snapshot interface (liveSnapshot.ts): SQLite under its lock where node:sqlite
// loads, the reader above otherwise. Each test names the strategy it expects and checks
// the result says that strategy ran.

const rt = nodeSqlite();
const nodeMethods: SnapshotStrategy[] = rt ? (rt.hasBackup ? ['node:sqlite backup', 'node:sqlite vacuum'] : ['node:sqlite vacuum']) : [];
const autoStrategy: SnapshotStrategy = rt ? (rt.hasBackup ? 'node:sqlite backup' : 'node:sqlite vacuum') : 'reader';
/** Only where the runtime has no node:sqlite at all (Node 20, LIFEBOAT_SQLITE=fallback); the runtime check below fails a Node 24 run that lost it. */
const needsSqlite = rt ? {} : { skip: `node:sqlite is not in this runtime (${nodeSqliteUnavailableReason()})` };
const needsBackup = rt?.hasBackup ? {} : { skip: `node:sqlite backup() is not in this runtime (${rt ? 'no backup()' : nodeSqliteUnavailableReason()})` };

/** Names of the files in `db`'s folder, sorted. */
const filesBeside = (db: string) => readdirSync(path.dirname(db)).sort();

test('the runtime gets the strategy it should: node:sqlite on Node >= 24 unless switched off, the reader otherwise', async () => {
  const major = Number(process.versions.node.split('.')[0]);
  if (major >= 24 && process.env.LIFEBOAT_SQLITE !== 'fallback') assert.ok(rt?.hasBackup, `Node ${process.versions.node} must load node:sqlite with backup()`);
  if (major <= 20 || process.env.LIFEBOAT_SQLITE === 'fallback') assert.equal(rt, undefined);
  const db = fresh();
  makeDb(db, { rows: 50 });
  const out = path.join(path.dirname(db), 'image.sqlite');
  const r = await snapshotDatabase(db, out);
  assert.equal(r.strategy, autoStrategy);
  assert.equal(r.sqliteVersion, rt?.version);
  if (rt) assert.equal(r.fallback, undefined);
  else assert.match(r.fallback ?? '', /node:sqlite is not available|LIFEBOAT_SQLITE=fallback/);
  checkImage(out, r, sourceHash(db));
});

test('node:sqlite strategies: rollback and WAL databases (frames still in -wal) at 512, 4096 and 65536-byte pages', needsSqlite, async () => {
  for (const strategy of nodeMethods) {
    for (const pageSize of [512, 4096, 65536]) {
      for (const wal of [false, true]) {
        const label = `${strategy}, ${pageSize}, ${wal ? 'WAL' : 'rollback'}`;
        const db = fresh();
        makeDb(db, { wal, keepWal: wal, pageSize, rows: 200 });
        if (wal) leaveWalFrames(db, `UPDATE items SET qty = qty + 1000, data = randomblob(700) WHERE id % 3 = 0; DELETE FROM items WHERE id % 7 = 0;`);
        const sidecars = filesBeside(db);
        const mainBefore = readFileSync(db);
        const walBefore = wal ? readFileSync(`${db}-wal`) : undefined;
        const expected = sourceHash(db);
        const out = path.join(path.dirname(db), 'image.sqlite');
        const r = await snapshotDatabase(db, out, { strategy });
        assert.equal(r.strategy, strategy, label);
        assert.equal(r.sqliteVersion, rt?.version, label);
        assert.equal(r.journalMode, wal ? 'wal' : 'rollback', label);
        assert.equal(r.pageSize, pageSize, label);
        assert.equal(r.source.size, mainBefore.length, label);
        checkImage(out, r, expected);
        // Only read: the main file and WAL are untouched and no file appeared beside them but the image.
        assert.deepEqual(readFileSync(db), mainBefore, label);
        if (walBefore) assert.deepEqual(readFileSync(`${db}-wal`), walBefore, label);
        assert.deepEqual(filesBeside(db), [...sidecars, 'image.sqlite'].sort(), label);
      }
    }
  }
});

test('backup() output: header bytes 18/19 patched from 2 (WAL) to 1, page count at 28 trusted', needsBackup, async () => {
  const db = fresh();
  makeDb(db, { wal: true, keepWal: true, rows: 300 });
  const out = path.join(path.dirname(db), 'image.sqlite');
  const r = await snapshotDatabase(db, out, { strategy: 'node:sqlite backup' });
  assert.equal(r.strategy, 'node:sqlite backup');
  const h = readFileSync(out);
  assert.deepEqual([h[18], h[19]], [1, 1]);
  assert.equal(h.readUInt32BE(28) * r.pageSize, h.length);
  assert.equal(h.readUInt32BE(92), h.readUInt32BE(24));
  // SQLite opens it as a rollback-mode database with no sidecar.
  assert.deepEqual(query(out, 'PRAGMA journal_mode;'), [{ journal_mode: 'delete' }]);
  for (const s of ['-wal', '-shm', '-journal']) assert.equal(existsSync(out + s), false, s);
});

test('a WAL database without its sidecars goes to the reader and gets none left behind', needsSqlite, async () => {
  const base = fresh();
  makeDb(base, { wal: true, keepWal: true, rows: 80 });
  const cases: Array<[string, (db: string) => void, RegExp]> = [
    // A closed WAL database: SQLite removed both sidecars when the last connection closed.
    ['no -wal, no -shm', () => undefined, /no -wal or -shm/],
    // Exclusive locking mode, or a -shm deleted by hand: the WAL alone.
    ['-wal only', (db) => copyFileSync(`${base}-wal`, `${db}-wal`), /a -wal but no -shm/],
  ];
  for (const [label, prepare, why] of cases) {
    for (const strategy of nodeMethods) {
      const db = fresh('bare');
      copyFileSync(base, db);
      prepare(db);
      const before = filesBeside(db);
      const expected = sourceHash(db);
      const out = path.join(tmp.dir, `bare-${n}.image`);
      const r = await snapshotDatabase(db, out, { strategy });
      assert.equal(r.strategy, 'reader', `${label}: ${strategy}`);
      assert.match(r.fallback ?? '', why, label);
      assert.deepEqual(filesBeside(db), before, `${label}: no sidecar created`);
      checkImage(out, r, expected);
    }
  }
});

test('a read-only folder: SQLite reads where it can, the reader where it cannot, nothing is created', async () => {
  // Root ignores permissions, so the snapshots run in a child process as nobody when the tests run as root.
  const asRoot = process.getuid?.() === 0;
  const dir = path.join(tmp.dir, `ro-${++n}`);
  mkdirSync(dir);
  const outDir = path.join(tmp.dir, `ro-out-${n}`);
  mkdirSync(outDir);
  chmodSync(tmp.dir, 0o755);
  chmodSync(outDir, 0o777);
  const walDb = path.join(dir, 'wal.db');
  makeDb(walDb, { wal: true, keepWal: true, rows: 60 });
  const walOnly = path.join(dir, 'walonly.db');
  copyFileSync(walDb, walOnly);
  copyFileSync(`${walDb}-wal`, `${walOnly}-wal`);
  const rollback = path.join(dir, 'rollback.db');
  makeDb(rollback, { rows: 60 });
  const expected = { wal: sourceHash(walDb), walonly: sourceHash(walOnly), rollback: sourceHash(rollback) };
  const before = readdirSync(dir).sort();
  chmodSync(dir, 0o555);
  const script = `
const { snapshotDatabase } = require(${JSON.stringify(path.resolve(__dirname, '../../src/core/snapshot/liveSnapshot.js'))});
(async () => {
  const out = {};
  for (const name of ['wal', 'walonly', 'rollback']) {
    const r = await snapshotDatabase(${JSON.stringify(dir)} + '/' + name + '.db', ${JSON.stringify(outDir)} + '/' + name + '.image', { strategy: process.argv[1] });
    out[name] = { strategy: r.strategy, fallback: r.fallback };
  }
  process.stdout.write(JSON.stringify(out));
})().catch((e) => { process.stderr.write(String(e.stack)); process.exit(1); });`;
  try {
    for (const strategy of nodeMethods.length ? nodeMethods : ['reader']) {
      const res = spawnSync(process.execPath, ['-e', script, strategy], { encoding: 'utf8', ...(asRoot ? { uid: 65534, gid: 65534 } : {}) });
      assert.equal(res.status, 0, res.stderr);
      const got = JSON.parse(res.stdout) as Record<string, { strategy: string; fallback?: string }>;
      // With both sidecars there (a live app, or one that crashed), SQLite reads a read-only folder.
      assert.equal(got.wal.strategy, strategy);
      assert.equal(got.rollback.strategy, strategy);
      assert.equal(got.walonly.strategy, 'reader');
      if (strategy !== 'reader') assert.match(got.walonly.fallback ?? '', /-wal but no -shm/);
      for (const [name, hash] of Object.entries(expected)) {
        const image = path.join(outDir, `${name}.image`);
        const alone = fresh('roimage');
        copyFileSync(image, alone);
        assert.equal(dumpHash(alone), hash, `${strategy}: ${name}`);
      }
      assert.deepEqual(readdirSync(dir).sort(), before, `${strategy}: nothing created in the read-only folder`);
    }
  } finally {
    chmodSync(dir, 0o755);
  }
});

test('a crashed writer\'s hot journal: SQLite may not roll it back read-only, so the reader decides (busy, naming the journal)', needsSqlite, async () => {
  const db = fresh();
  makeDb(db, { rows: 20 });
  writeFileSync(`${db}-journal`, Buffer.concat([JOURNAL_MAGIC, Buffer.alloc(1016)]));
  const journal = readFileSync(`${db}-journal`);
  const out = path.join(path.dirname(db), 'image.sqlite');
  await assert.rejects(snapshotDatabase(db, out, { strategy: autoStrategy, clock: recordingClock(), maxAttempts: 3 }), (e) => {
    assert.ok(BackupError.is(e, 'busy'), String(e));
    assert.match(e.message, /hot journal/);
    assert.ok(e.message.includes(db), e.message);
    return true;
  });
  assert.deepEqual(readFileSync(`${db}-journal`), journal, 'the journal was left for the app to roll back');
  assert.equal(existsSync(out), false);
});

test('node:sqlite: a writer holding the lock past the busy timeout gives busy, naming the database; then it works', needsSqlite, async () => {
  const db = fresh();
  makeDb(db, { rows: 20 });
  const shell = startShell(db);
  const locked = new Promise<void>((resolve) => shell.proc.stdout.on('data', (d) => String(d).includes('locked') && resolve()));
  shell.send(`BEGIN EXCLUSIVE; INSERT INTO items(name) VALUES ('held'); SELECT 'locked';`);
  const out = path.join(path.dirname(db), 'image.sqlite');
  try {
    await locked;
    await assert.rejects(snapshotDatabase(db, out, { strategy: autoStrategy, busyTimeoutMs: 200 }), (e) => {
      assert.ok(BackupError.is(e, 'busy'), String(e));
      assert.ok(e.message.includes(db), e.message);
      assert.match(e.message, /could not get a read lock on it within 0\.2 s/);
      return true;
    });
    assert.equal(existsSync(out), false);
    shell.send('COMMIT;');
  } finally {
    assert.equal(await shell.close(), 0);
  }
  const r = await snapshotDatabase(db, out, { strategy: autoStrategy });
  assert.equal(r.strategy, autoStrategy);
  assert.deepEqual(query(out, `SELECT count(*) AS c FROM items WHERE name = 'held';`), [{ c: 1 }]);
});

test('node:sqlite: progress in phase snapshot; cancelling stops the worker, removes the output and releases the lock', needsSqlite, async () => {
  const db = fresh('big');
  makeDb(db, { rows: 20 });
  sqlite(db, `WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i+1 FROM n WHERE i < 4000) INSERT INTO items(name, data) SELECT 'b', randomblob(4000) FROM n;`);
  const out = path.join(path.dirname(db), 'image.sqlite');
  const seen: Array<{ phase: string; done: number; total: number }> = [];
  const r = await snapshotDatabase(db, out, { strategy: autoStrategy, onProgress: (p) => seen.push(p) });
  assert.equal(r.strategy, autoStrategy);
  assert.ok(seen.length >= 2 && seen.every((p) => p.phase === 'snapshot' && p.total === statSync(db).size), JSON.stringify(seen));
  assert.equal(seen.at(-1)?.done, statSync(db).size);

  for (const strategy of nodeMethods) {
    const ac = new AbortController();
    await assert.rejects(
      snapshotDatabase(db, out, { strategy, signal: ac.signal, onProgress: () => ac.abort() }),
      (e) => BackupError.is(e, 'cancelled'),
      strategy,
    );
    assert.equal(existsSync(out), false, strategy);
    assert.equal(existsSync(`${out}-journal`), false, strategy);
    // No busy timeout: this fails at once if the cancelled worker still held its read lock.
    sqlite(db, `PRAGMA busy_timeout = 0; BEGIN EXCLUSIVE; DELETE FROM items WHERE id = 1; COMMIT;`);
  }
});

test('the backup manifest records the strategy and the SQLite version', async () => {
  const db = fresh();
  makeDb(db, { wal: true, keepWal: true, rows: 40 });
  const dir = path.join(path.dirname(db), 'backups');
  const engine = new Engine();
  const res = await engine.backup(db, { dir, kind: 'manual', settings: DEFAULT_SETTINGS, rotate: false });
  // Format v2, the default: the manifest as stored, read back through its format.
  assert.equal(res.record.format, 'repository');
  const m = await engine.manifestOf(res.record.path);
  assert.equal(m.source.snapshot?.strategy, autoStrategy);
  assert.equal(m.source.snapshot?.sqliteVersion, rt?.version);
  if (rt) assert.equal(m.source.snapshot?.fallback, undefined);
  else assert.ok(m.source.snapshot?.fallback);
});

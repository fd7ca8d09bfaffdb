import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import {
  closeSync,
  copyFileSync,
  existsSync,
  mkdirSync,
  openSync,
  readdirSync,
  readFileSync,
  statSync,
  truncateSync,
  writeFileSync,
  writeSync,
} from 'node:fs';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import initSqlJs from 'sql.js';
import type { Clock } from '../../src/core/context';
import { BackupError } from '../../src/core/errors';
import type { VerifyReport } from '../../src/core/model';
import { isoLocal } from '../../src/core/time';
import { checkHeader, schemaFingerprint, verifyBytes, virtualTableModule } from '../../src/core/verify/checks';
import { compareWithManifest, locateDist, sqlJsVersion, verifyImage, type VerifyOptions } from '../../src/core/verify/verifier';
import { REPO } from '../fixtures/cli';
import { makeDb, query, sqlite, tempDir } from '../fixtures/sqlite';
import { corruptFts5, corruptRtree, expectedEngine, makeVirtualTablesDb } from './verifyFixtures';

const ROOT = REPO;
const FIXED = new Date('2026-11-26T08:07:12.345Z');
const fixedClock: Clock = { now: () => new Date(FIXED), sleep: async () => {} };
const FULL: VerifyOptions = { mode: 'full', quickCheckAboveBytes: 1 << 30, maxBytes: 1 << 30, clock: fixedClock };

/**
 * The engine this run must verify with, decided from the runtime and the environment
 * without asking the code under test: every test below asserts it on its reports.
 */
const ENGINE = expectedEngine();
const NODE = ENGINE === 'node:sqlite';

/** Rebuilds dist/ when a worker bundle is missing or older than its sources. */
function ensureBuilt(): void {
  const bundles = ['dist/verifyWorker.js', 'dist/sqliteWorker.js'].map((f) => path.join(ROOT, f));
  const sources = [
    ...['worker.ts', 'checks.ts', 'nodeVerify.ts'].map((f) => path.join(ROOT, 'src/core/verify', f)),
    ...['worker.ts', 'client.ts', 'nodeSqlite.ts'].map((f) => path.join(ROOT, 'src/core/sqlite', f)),
  ];
  const fresh = () =>
    bundles.every((b) => existsSync(b)) &&
    existsSync(path.join(ROOT, 'dist/sql-wasm.wasm')) &&
    sources.every((s) => bundles.every((b) => statSync(s).mtimeMs <= statSync(b).mtimeMs));
  if (fresh()) return;
  try {
    execFileSync(process.execPath, ['esbuild.mjs'], { cwd: ROOT, stdio: 'pipe' });
  } catch (e) {
    // Other bundles may be broken while their owners work; only the workers matter here.
    if (!fresh()) throw e;
  }
}

const threads = (): number => readdirSync('/proc/self/task').length;

/** Overwrites the middle half of page `pageno` (1-based) with a fixed garbage pattern. */
function smashPage(file: string, pageno: number, pageSize: number): void {
  const fd = openSync(file, 'r+');
  try {
    writeSync(fd, Buffer.alloc(pageSize / 2, 0xa5), 0, pageSize / 2, (pageno - 1) * pageSize + pageSize / 4);
  } finally {
    closeSync(fd);
  }
}

/** A leaf page of `name` (table or index), found with the shell's dbstat table. */
function leafPageOf(db: string, name: string): number {
  const rows = query<{ pageno: number }>(
    db,
    `SELECT pageno FROM dbstat WHERE name = '${name}' AND pagetype = 'leaf' ORDER BY pageno LIMIT 1 OFFSET 2`,
  );
  assert.ok(rows[0], `no leaf page for ${name}`);
  return rows[0].pageno;
}

function count(db: string, table: string): number {
  return Number(sqlite(db, `SELECT count(*) FROM ${table};`).trim());
}

let dir = '';
let cleanup = () => {};
let healthy = '';
let big = '';

before(() => {
  ensureBuilt();
  ({ dir, cleanup } = tempDir('lifeboat-verify-'));
  healthy = path.join(dir, 'healthy.db');
  makeDb(healthy, { rows: 3000 });
});

after(() => cleanup());

function copy(name: string, from = healthy): string {
  const p = path.join(dir, name);
  copyFileSync(from, p);
  return p;
}

/** A ~50 MB database, made once for the tests that need the worker to be busy for a while. */
function bigDb(): string {
  if (big) return big;
  big = path.join(dir, 'big.db');
  sqlite(
    big,
    `CREATE TABLE blobs(id INTEGER PRIMARY KEY, tag TEXT, data BLOB);
     CREATE INDEX blobs_tag ON blobs(tag);
     WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 120000)
     INSERT INTO blobs(tag, data) SELECT 'tag ' || (i % 977), randomblob(380) FROM n;`,
  );
  assert.ok(statSync(big).size > 45e6, 'the big database is at least ~50 MB');
  return big;
}

describe('healthy databases', () => {
  test('a healthy db is ok, with the row counts the sqlite3 shell sees', async () => {
    const r = await verifyImage(healthy, FULL);
    assert.equal(r.status, 'ok', r.problems.join('\n'));
    assert.equal(r.check, 'integrity_check');
    assert.deepEqual(r.problems, []);
    assert.deepEqual(r.rowCounts, { items: count(healthy, 'items'), audit: count(healthy, 'audit') });
    assert.equal(r.rowCounts.items, 3000);
    assert.deepEqual(r.notChecked, []);
    assert.equal(r.foreignKeyViolations, 0);
    assert.match(r.schemaFingerprint, /^[0-9a-f]{64}$/);
    assert.equal(r.engine.name, ENGINE);
    assert.match(r.engine.sqliteVersion, /^3\.\d+\.\d+$/);
    if (NODE) assert.equal(r.engine.sqliteVersion, process.versions.sqlite, "the runtime's own SQLite");
    assert.equal(r.checkedAt, isoLocal(FIXED));
    assert.equal(r.durationMs, 0);
    assert.equal(r.probe, undefined);
    assert.equal(r.skippedReason, undefined);
  });

  test('same schema gives the same fingerprint; an added index changes it; compareWithManifest says what differs', async () => {
    const other = path.join(dir, 'other.db');
    makeDb(other, { rows: 10 });
    const vacuumed = copy('vacuumed.db');
    sqlite(vacuumed, 'DELETE FROM audit WHERE id % 2 = 0; VACUUM;');
    const indexed = copy('indexed.db');
    sqlite(indexed, 'CREATE INDEX items_qty ON items(qty); DELETE FROM items WHERE id = 1;');

    const [a, b, c, d] = await Promise.all([healthy, other, vacuumed, indexed].map((p) => verifyImage(p, FULL)));
    assert.equal(b.schemaFingerprint, a.schemaFingerprint, 'different data, same schema');
    assert.equal(c.schemaFingerprint, a.schemaFingerprint, 'VACUUM changes the layout, not the schema');
    assert.notEqual(d.schemaFingerprint, a.schemaFingerprint, 'an added index is a schema change');

    assert.deepEqual(compareWithManifest(a, a), []);
    const diff = compareWithManifest(d, a);
    assert.equal(diff.length, 2, diff.join('\n'));
    assert.match(diff[0]!, /schema fingerprint differs/);
    assert.equal(diff[1], 'table items: 2999 rows, expected 3000');
    assert.deepEqual(compareWithManifest(a, { schemaFingerprint: a.schemaFingerprint, rowCounts: { items: 3000, gone: 4 } }), [
      'table audit: 3000 rows, not in the manifest',
      'table gone: missing (expected 4 rows)',
    ]);
  });

  test('an image still marked as WAL (header bytes 18-19 = 2) verifies without its -wal, and gets none', async () => {
    const sub = path.join(dir, 'walimage');
    mkdirSync(sub);
    const wal = path.join(sub, 'wal.db');
    makeDb(wal, { wal: true, rows: 50 });
    assert.ok(!existsSync(`${wal}-wal`), 'the shell checkpointed and removed the -wal on close');
    assert.equal(readFileSync(wal)[18], 2, 'the header says WAL');
    const before = readFileSync(wal);
    const r = await verifyImage(wal, FULL);
    assert.equal(r.engine.name, ENGINE);
    assert.equal(r.status, 'ok', r.problems.join('\n'));
    assert.equal(r.rowCounts.items, 50);
    // A read-only connection to a WAL file would create -wal and -shm and leave them.
    assert.deepEqual(readdirSync(sub), ['wal.db'], 'nothing is left beside the image');
    assert.ok(readFileSync(wal).equals(before), 'not a byte of the image changed');
  });

  test('a rollback-mode image is not written to and gets no sidecar either', async () => {
    const sub = path.join(dir, 'rollbackimage');
    mkdirSync(sub);
    const img = copy('rollbackimage/img.db');
    const before = readFileSync(img);
    const r = await verifyImage(img, { ...FULL, probeQuery: 'SELECT count(*) FROM items' });
    assert.equal(r.engine.name, ENGINE);
    assert.equal(r.status, 'ok', r.problems.join('\n'));
    assert.deepEqual(readdirSync(sub), ['img.db']);
    assert.ok(readFileSync(img).equals(before));
  });

  test('a file name with URI characters (space, #, %, ?, non-ASCII) is verified, not some other file', async () => {
    const odd = copy('a b#c%20d?e=1&f ünï.db');
    const r = await verifyImage(odd, FULL);
    assert.equal(r.engine.name, ENGINE);
    assert.equal(r.status, 'ok', r.problems.join('\n'));
    assert.equal(r.rowCounts.items, 3000);
    assert.ok(!existsSync(path.join(dir, 'a b')), 'nothing created under a truncated name');
  });

  test('the report names the engine and its version: sql.js\'s is cached', async () => {
    const v = await sqlJsVersion();
    assert.match(v, /^3\.\d+\.\d+$/);
    assert.equal(sqlJsVersion(), sqlJsVersion(), 'the same cached promise');
    const r = await verifyImage(healthy, { ...FULL, mode: 'quick' });
    assert.equal(r.engine.name, ENGINE);
    assert.equal(r.engine.sqliteVersion, NODE ? process.versions.sqlite : v);
  });
});

describe('damaged images', () => {
  test('garbage in the middle of a table b-tree page fails with problems', async () => {
    const bad = copy('bad-table.db');
    const pageSize = Number(sqlite(bad, 'PRAGMA page_size;').trim());
    smashPage(bad, leafPageOf(bad, 'items'), pageSize);
    const r = await verifyImage(bad, FULL);
    assert.equal(r.engine.name, ENGINE);
    assert.equal(r.status, 'failed');
    assert.equal(r.check, 'integrity_check');
    assert.ok(r.problems.length > 1, r.problems.join('\n'));
    assert.ok(r.problems.length <= 101, 'problems are capped');
    assert.ok(r.problems.every((p) => !p.includes('\n') && !/^\*\*\*/.test(p)), 'one finding per line');
    assert.ok(r.problems.some((p) => /^Tree \d+ page \d+/.test(p)), r.problems.join('\n'));
  });

  test('garbage in an index page fails with problems', async () => {
    const bad = copy('bad-index.db');
    const pageSize = Number(sqlite(bad, 'PRAGMA page_size;').trim());
    smashPage(bad, leafPageOf(bad, 'items_name'), pageSize);
    const r = await verifyImage(bad, FULL);
    assert.equal(r.status, 'failed');
    assert.ok(r.problems.length > 0);
  });

  test('a truncated file fails, whether cut at a page boundary or not', async () => {
    const size = statSync(healthy).size;
    const half = copy('half.db');
    truncateSync(half, Math.floor(size / 2 / 4096) * 4096);
    const r1 = await verifyImage(half, FULL);
    assert.equal(r1.status, 'failed');
    assert.ok(r1.problems.some((p) => /truncated: the header declares/.test(p)), r1.problems.join('\n'));

    const ragged = copy('ragged.db');
    truncateSync(ragged, size - 100);
    const r2 = await verifyImage(ragged, FULL);
    assert.equal(r2.status, 'failed');
    assert.ok(r2.problems.some((p) => /not a multiple of the page size/.test(p)), r2.problems.join('\n'));
  });

  test('a non-SQLite file, an empty file and a header-only impostor fail without crashing', async () => {
    const text = path.join(dir, 'notes.txt');
    writeFileSync(text, 'hello, this is not a database\n'.repeat(300));
    const r1 = await verifyImage(text, FULL);
    assert.equal(r1.status, 'failed');
    assert.equal(r1.check, 'none');
    assert.match(r1.problems[0]!, /not an SQLite database/);

    const empty = path.join(dir, 'empty.db');
    writeFileSync(empty, '');
    const r2 = await verifyImage(empty, FULL);
    assert.equal(r2.status, 'failed');
    assert.match(r2.problems[0]!, /empty file/);

    // The right magic and page size, then noise: SQLite itself must refuse it.
    const impostor = path.join(dir, 'impostor.db');
    const bytes = Buffer.alloc(8192, 0x5a);
    bytes.write('SQLite format 3\0', 0, 'latin1');
    bytes.writeUInt16BE(4096, 16);
    writeFileSync(impostor, bytes);
    const r3 = await verifyImage(impostor, FULL);
    assert.equal(r3.status, 'failed');
    assert.ok(r3.problems.length > 0);
  });

  test('a missing file rejects with notFound', async () => {
    await assert.rejects(verifyImage(path.join(dir, 'nope.db'), FULL), (e) => BackupError.is(e, 'notFound'));
  });
});

describe('what the checks report', () => {
  test(`FTS5 and R-Tree tables are ${NODE ? 'checked by node:sqlite' : 'listed as not checked by sql.js'}; FTS4 (which both have) is checked`, async () => {
    const db = path.join(dir, 'vtab.db');
    makeVirtualTablesDb(db);
    sqlite(db, "CREATE VIRTUAL TABLE old USING fts4(b); INSERT INTO old VALUES ('x');");
    const r = await verifyImage(db, FULL);
    assert.equal(r.engine.name, ENGINE);
    assert.equal(r.status, 'ok', r.problems.join('\n'));
    assert.deepEqual([...r.notChecked].sort(), NODE ? [] : ['docs (fts5)', 'shapes (rtree)']);
    for (const vt of ['docs', 'shapes', 'old']) assert.ok(!(vt in r.rowCounts), `${vt} is not counted`);
    assert.equal(r.rowCounts.notes, 2);
    // Shadow tables are ordinary tables and are counted.
    assert.equal(r.rowCounts.docs_content, count(db, 'docs_content'));
    assert.equal(r.rowCounts.shapes_rowid, count(db, 'shapes_rowid'));
    assert.equal(r.rowCounts.old_content, 1);
  });

  test(`a damaged FTS5 index is ${NODE ? 'damage' : 'not checked, never ok as checked'}`, async () => {
    const db = path.join(dir, 'fts-damaged.db');
    makeVirtualTablesDb(db);
    corruptFts5(db, 'docs');
    for (const mode of ['full', 'quick'] as const) {
      const r = await verifyImage(db, { ...FULL, mode });
      assert.equal(r.engine.name, ENGINE);
      if (NODE) {
        assert.equal(r.status, 'failed', `${mode}: ${r.problems.join('\n')}`);
        assert.ok(r.problems.some((p) => /fts5/.test(p) && /"docs"/.test(p)), r.problems.join('\n'));
        assert.ok(!r.notChecked.some((n) => n.startsWith('docs ')), r.notChecked.join('\n'));
      } else {
        assert.ok(r.notChecked.includes('docs (fts5)'), r.notChecked.join('\n'));
        assert.equal(r.status, 'ok', 'sql.js cannot see it: the b-trees are sound');
      }
    }
  });

  test(`a damaged R-Tree node is ${NODE ? 'damage' : 'not checked, never ok as checked'}`, async () => {
    const db = path.join(dir, 'rtree-damaged.db');
    makeVirtualTablesDb(db);
    corruptRtree(db, 'shapes');
    for (const mode of ['full', 'quick'] as const) {
      const r = await verifyImage(db, { ...FULL, mode });
      assert.equal(r.engine.name, ENGINE);
      if (NODE) {
        assert.equal(r.status, 'failed', `${mode}: ${r.problems.join('\n')}`);
        assert.ok(r.problems.includes('In RTree main.shapes:'), r.problems.slice(0, 5).join('\n'));
        assert.ok(r.problems.some((p) => /on node \d+ is corrupt/.test(p)), r.problems.slice(0, 5).join('\n'));
        assert.ok(!r.notChecked.some((n) => n.startsWith('shapes ')), r.notChecked.join('\n'));
      } else {
        assert.ok(r.notChecked.includes('shapes (rtree)'), r.notChecked.join('\n'));
        assert.equal(r.status, 'ok', 'sql.js cannot see it: the b-trees are sound');
      }
    }
  });

  test('tables with awkward names are counted', async () => {
    const db = path.join(dir, 'names.db');
    sqlite(db, `CREATE TABLE "__proto__"(a); INSERT INTO "__proto__" VALUES (1), (2);
                CREATE TABLE "say ""hi"""(a); INSERT INTO "say ""hi""" VALUES (1);`);
    const r = await verifyImage(db, FULL);
    assert.equal(r.status, 'ok', r.problems.join('\n'));
    assert.deepEqual(Object.entries(r.rowCounts).sort(), [['__proto__', 2], ['say "hi"', 1]]);
  });

  test('foreign key violations are counted, not a failure; a foreign key mismatch is listed as not checked', async () => {
    const db = path.join(dir, 'fk.db');
    sqlite(
      db,
      `CREATE TABLE parent(id INTEGER PRIMARY KEY);
       CREATE TABLE child(id INTEGER PRIMARY KEY, parent_id INTEGER REFERENCES parent(id));
       INSERT INTO parent VALUES (1);
       INSERT INTO child(parent_id) VALUES (1), (2), (3), (4);`,
    );
    const r = await verifyImage(db, FULL);
    assert.equal(r.status, 'ok', r.problems.join('\n'));
    assert.equal(r.foreignKeyViolations, 3);

    sqlite(db, 'CREATE TABLE p2(a, b); CREATE TABLE c2(x REFERENCES p2(a));');
    const r2 = await verifyImage(db, FULL);
    assert.equal(r2.status, 'ok', r2.problems.join('\n'));
    assert.ok(r2.notChecked.some((n) => /^foreign keys \(.*mismatch/.test(n)), r2.notChecked.join('\n'));
  });

  test('a probe query reports its rows; a failing or writing probe fails the verification', async () => {
    const sql = 'SELECT id FROM items WHERE qty > 50';
    const ok = await verifyImage(healthy, { ...FULL, probeQuery: sql });
    assert.equal(ok.status, 'ok');
    assert.deepEqual(ok.probe, { sql, ok: true, rows: query(healthy, `${sql};`).length });

    const bad = await verifyImage(healthy, { ...FULL, probeQuery: 'SELECT * FROM nosuchtable' });
    assert.equal(bad.status, 'failed');
    assert.equal(bad.probe?.ok, false);
    assert.match(bad.probe?.error ?? '', /no such table: nosuchtable/);
    assert.ok(bad.problems.some((p) => /probe query failed: .*nosuchtable/.test(p)));

    const writes = await verifyImage(healthy, { ...FULL, probeQuery: 'DELETE FROM items' });
    assert.equal(writes.status, 'failed', 'verification never writes, not even to its in-memory copy');
    assert.equal(count(healthy, 'items'), 3000);

    const two = await verifyImage(healthy, { ...FULL, probeQuery: 'SELECT 1; SELECT id FROM items LIMIT 5' });
    assert.equal(two.engine.name, ENGINE);
    assert.deepEqual(two.probe, { sql: 'SELECT 1; SELECT id FROM items LIMIT 5', ok: true, rows: 6 }, 'every statement runs');
  });

  test(`an image larger than maxBytes is ${NODE ? 'verified all the same by node:sqlite (the limit is sql.js\'s)' : 'skipped by sql.js, never ok'}`, async () => {
    const size = statSync(healthy).size;
    const r = await verifyImage(healthy, { ...FULL, maxBytes: size - 1 });
    assert.equal(r.engine.name, ENGINE);
    if (NODE) {
      assert.equal(r.status, 'ok', r.problems.join('\n'));
      assert.equal(r.rowCounts.items, 3000);
      return;
    }
    assert.equal(r.status, 'skipped');
    assert.equal(r.check, 'none');
    assert.match(r.skippedReason ?? '', new RegExp(`${size} bytes.*limit.*${size - 1} bytes`));
    assert.deepEqual(r.rowCounts, {});
    const atLimit = await verifyImage(healthy, { ...FULL, maxBytes: size });
    assert.equal(atLimit.status, 'ok');
  });

  test('the mode picks the check, and the check that ran is the one reported', async () => {
    // An index whose declared column is not the one it holds: quick_check does not compare
    // index entries with table rows, integrity_check does.
    const db = path.join(dir, 'stale-index.db');
    sqlite(
      db,
      `CREATE TABLE t(a, b); CREATE INDEX i ON t(a); INSERT INTO t VALUES (1, 10), (2, 20), (3, 30);
       PRAGMA writable_schema = ON; UPDATE sqlite_schema SET sql = 'CREATE INDEX i ON t(b)' WHERE name = 'i';`,
    );
    const size = statSync(db).size;
    const verify = (mode: VerifyOptions['mode'], quickCheckAboveBytes: number) =>
      verifyImage(db, { ...FULL, mode, quickCheckAboveBytes });

    const autoLarge = await verify('auto', size - 1);
    assert.equal(autoLarge.engine.name, ENGINE);
    assert.equal(autoLarge.check, 'quick_check');
    assert.equal(autoLarge.status, 'ok');
    const autoSmall = await verify('auto', size);
    assert.equal(autoSmall.check, 'integrity_check');
    assert.equal(autoSmall.status, 'failed');
    assert.match(autoSmall.problems[0]!, /missing from index i/);
    assert.equal((await verify('quick', 1 << 30)).check, 'quick_check');
    assert.equal((await verify('full', 0)).check, 'integrity_check');
  });
});

describe('the worker', () => {
  test('the checks run on another thread: the event loop takes turns while it works (~50 MB)', async () => {
    const db = bigDb();
    const SQL = await initSqlJs({ locateFile: () => locateDist('sql-wasm.wasm') });
    // The same checks on this thread, to compare results with the worker's.
    const inThread = verifyBytes(SQL, readFileSync(db), { check: 'integrity_check' });
    assert.equal(inThread.status, 'ok');

    // Counted, not timed: turns of this thread's event loop taken while the verification
    // is pending and its worker thread exists. Checks run on this thread would allow none
    // (they would hold it from start to end, and no thread would have been started).
    await verifyImage(healthy, FULL);
    const baseline = threads();
    let settled = false;
    const pending = verifyImage(db, FULL).finally(() => {
      settled = true;
    });
    let turns = 0;
    const WANTED = 20;
    await new Promise<void>((resolve) => {
      const turn = () => {
        if (settled || turns >= WANTED) return resolve();
        if (threads() > baseline) turns++;
        setImmediate(turn);
      };
      turn();
    });
    const r = await pending;
    assert.equal(turns, WANTED, `${turns} turns while the worker ran`);
    assert.equal(r.engine.name, ENGINE);
    assert.equal(r.status, 'ok', r.problems.join('\n'));
    assert.equal(r.rowCounts.blobs, 120000);
    assert.equal(r.schemaFingerprint, inThread.schemaFingerprint, 'the same fingerprint as sql.js on this thread');
    assert.deepEqual(r.rowCounts, inThread.rowCounts);
  });

  test('aborting terminates the worker and rejects with cancelled', async () => {
    const db = bigDb();
    // Warm up, so that lazily started threads (libuv's pool, V8 helpers) exist before the baseline.
    await verifyImage(healthy, FULL);
    const baseline = threads();
    const ac = new AbortController();
    const pending = verifyImage(db, { ...FULL, signal: ac.signal });
    // Abort as soon as the worker thread exists, long before a 50 MB verify can finish.
    await new Promise<void>((resolve) => {
      const poll = () => (threads() > baseline ? resolve() : setImmediate(poll));
      poll();
    });
    ac.abort();
    await assert.rejects(pending, (e) => BackupError.is(e, 'cancelled'));
    assert.equal(threads(), baseline, 'the worker thread is gone');

    await assert.rejects(verifyImage(db, { ...FULL, signal: AbortSignal.abort() }), (e) => BackupError.is(e, 'cancelled'));
  });

  test('locateDist finds the built files and names what is missing', () => {
    assert.ok(existsSync(locateDist('verifyWorker.js')));
    assert.ok(path.isAbsolute(locateDist('sql-wasm.wasm')));
    assert.throws(() => locateDist('noSuchFile.js'), (e) => BackupError.is(e, 'notFound') && /npm run build/.test(e.message));
  });
});

describe('pure helpers', () => {
  test('checkHeader reads page size and page count', () => {
    const h = Buffer.alloc(100);
    h.write('SQLite format 3\0', 0, 'latin1');
    h.writeUInt16BE(1, 16); // 65536
    h.writeUInt32BE(7, 24);
    h.writeUInt32BE(3, 28);
    h.writeUInt32BE(7, 92);
    assert.deepEqual(checkHeader(h, 3 * 65536), { problems: [], openable: true, pageSize: 65536, filePages: 3 });
    assert.match(checkHeader(h, 2 * 65536).problems[0]!, /truncated/);
    assert.match(checkHeader(h, 4 * 65536).problems[0]!, /header declares only 3/);
    h.writeUInt32BE(8, 92); // an old writer: the in-header count is not valid and not checked
    assert.deepEqual(checkHeader(h, 4 * 65536).problems, []);
    h.writeUInt16BE(1000, 16);
    assert.equal(checkHeader(h, 4000).openable, false);
    assert.equal(checkHeader(h.subarray(0, 50), 50).openable, false);
  });

  test('schemaFingerprint ignores row order and sqlite_ objects', () => {
    const a = [
      ['table', 't', 't', 'CREATE TABLE t(a)'],
      ['index', 'i', 't', 'CREATE INDEX i ON t(a)'],
    ] as const;
    const base = schemaFingerprint(a);
    assert.equal(schemaFingerprint([...a].reverse()), base);
    assert.equal(schemaFingerprint([...a, ['table', 'sqlite_stat1', 'sqlite_stat1', 'CREATE TABLE sqlite_stat1(tbl,idx,stat)']]), base);
    assert.notEqual(schemaFingerprint([a[0]]), base);
    assert.equal(virtualTableModule('CREATE VIRTUAL TABLE x USING FTS5(a)'), 'fts5');
    assert.equal(virtualTableModule('create virtual table "x y" using "rtree"(id, a, b)'), 'rtree');
    assert.equal(virtualTableModule('CREATE TABLE x(a)'), undefined);
  });

  test('compareWithManifest has nothing to compare for a skipped report or an empty record', () => {
    const skipped = { status: 'skipped', schemaFingerprint: '', rowCounts: {} } as unknown as VerifyReport;
    assert.deepEqual(compareWithManifest(skipped, { schemaFingerprint: 'abc', rowCounts: { t: 1 } }), []);
    const checked = { status: 'ok', schemaFingerprint: 'abc', rowCounts: { t: 1 } } as unknown as VerifyReport;
    assert.deepEqual(compareWithManifest(checked, { schemaFingerprint: '', rowCounts: {} }), [], 'nothing was recorded');
    assert.equal(compareWithManifest(checked, { schemaFingerprint: 'abd', rowCounts: { t: 1 } }).length, 1);
  });

  test('compareWithManifest compares only what no engine changes, and explains damage another engine could not see', () => {
    const base: VerifyReport = {
      status: 'ok',
      check: 'integrity_check',
      engine: { name: 'sql.js', sqliteVersion: '3.49.1' },
      problems: [],
      foreignKeyViolations: 0,
      schemaFingerprint: 'f'.repeat(64),
      rowCounts: { t: 1, docs_data: 4 },
      notChecked: ['docs (fts5)', 'foreign keys (foreign key mismatch)'],
      durationMs: 0,
      checkedAt: '',
    };
    const node = { ...base, engine: { name: 'node:sqlite', sqliteVersion: '3.53.4' }, notChecked: [] };
    assert.deepEqual(compareWithManifest(node, base), [], 'a different notChecked list is no finding');
    assert.deepEqual(compareWithManifest(base, node), []);
    assert.deepEqual(compareWithManifest({ ...node, rowCounts: { t: 2, docs_data: 4 } }, base), ['table t: 2 rows, expected 1'], 'row counts are compared across engines');

    const damaged = { ...node, status: 'failed' as const, problems: ['fts5: corruption found reading blob 1 from table "docs"'] };
    assert.deepEqual(compareWithManifest(damaged, base), [
      'when the backup was made, sql.js 3.49.1 found this image ok but could not check docs (fts5); node:sqlite 3.53.4 checked them now',
    ]);
    assert.deepEqual(compareWithManifest(damaged, { ...base, engine: damaged.engine }), [], 'the same engine: nothing to explain');
    assert.deepEqual(compareWithManifest({ ...damaged, notChecked: ['docs (fts5: no such tokenizer)'] }, base), [], 'not checked now either');
    assert.deepEqual(compareWithManifest(damaged, { ...base, notChecked: [] }), [], 'nothing was left unchecked then');
    assert.deepEqual(compareWithManifest(damaged, { ...base, status: 'failed' }), [], 'the source was already found damaged');
    const probeOnly = { ...node, status: 'failed' as const, problems: ['probe query failed: no such table: x'] };
    assert.deepEqual(compareWithManifest(probeOnly, base), [], 'a failing probe is no damage to explain');
  });

  test('isoLocal writes local time with its offset and round-trips', () => {
    const saved = process.env.TZ;
    try {
      const d = new Date('2026-11-26T08:07:12.345Z');
      process.env.TZ = 'Europe/Paris';
      assert.equal(isoLocal(d), '2026-11-26T09:07:12.345+01:00');
      assert.equal(isoLocal(new Date('2026-07-01T00:00:00.000Z')), '2026-07-01T02:00:00.000+02:00');
      process.env.TZ = 'America/St_Johns';
      assert.equal(isoLocal(d), '2026-11-26T04:37:12.345-03:30');
      process.env.TZ = 'UTC';
      assert.equal(isoLocal(d), '2026-11-26T08:07:12.345+00:00');
      process.env.TZ = 'Asia/Kolkata';
      assert.equal(new Date(isoLocal(d)).getTime(), d.getTime());
      assert.throws(() => isoLocal(new Date(NaN)), RangeError);
    } finally {
      if (saved === undefined) delete process.env.TZ;
      else process.env.TZ = saved;
    }
  });
});

/**
 * The verifier on the node:sqlite path, claimed explicitly: every report must name
 * node:sqlite. Runs under Node 24 (scripts/runTests.mjs's node24 run); under Node 20, which
 * has no node:sqlite, each test is a visible skip with the reason; anywhere else a test
 * fails when another engine verified.
 */
import assert from 'node:assert/strict';
import { closeSync, copyFileSync, mkdirSync, openSync, readdirSync, readFileSync, writeFileSync, writeSync } from 'node:fs';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import initSqlJs from 'sql.js';
import type { Clock } from '../../src/core/context';
import type { VerifyReport } from '../../src/core/model';
import { verifyBytes } from '../../src/core/verify/checks';
import { compareWithManifest, locateDist, verifyImage, type VerifyOptions } from '../../src/core/verify/verifier';
import { query, sqlite, tempDir } from '../fixtures/sqlite';
import { corruptFts5, corruptRtree, makeVirtualTablesDb, noNodeSqliteReason } from './verifyFixtures';

const fixedClock: Clock = { now: () => new Date('2026-11-26T08:07:12.345Z'), sleep: async () => {} };
const FULL: VerifyOptions = { mode: 'full', quickCheckAboveBytes: 1 << 30, maxBytes: 1 << 30, clock: fixedClock };
const skip = noNodeSqliteReason();

let dir = '';
let cleanup = () => {};
before(() => {
  ({ dir, cleanup } = tempDir('lifeboat-verify-engines-'));
});
after(() => cleanup());

/** The same checks with sql.js on this thread, for comparison (sql.js loads on every runtime). */
async function withSqlJs(db: string): Promise<VerifyReport> {
  const SQL = await initSqlJs({ locateFile: () => locateDist('sql-wasm.wasm') });
  const r = verifyBytes(SQL, readFileSync(db), { check: 'integrity_check' });
  return { ...r, engine: { name: 'sql.js', sqliteVersion: '3.x' }, durationMs: 0, checkedAt: '' };
}

describe('node:sqlite verifies what sql.js cannot', () => {
  test('damaged FTS5 and R-Tree tables fail the verification, naming the table', { skip }, async () => {
    const fts = path.join(dir, 'fts.db');
    makeVirtualTablesDb(fts);
    corruptFts5(fts, 'docs');
    const rtree = path.join(dir, 'rtree.db');
    makeVirtualTablesDb(rtree);
    corruptRtree(rtree, 'shapes');

    const a = await verifyImage(fts, FULL);
    assert.equal(a.engine.name, 'node:sqlite');
    assert.equal(a.engine.sqliteVersion, process.versions.sqlite);
    assert.equal(a.status, 'failed');
    assert.deepEqual(a.problems, ['fts5: corruption found reading blob ' + a.problems[0]!.split('blob ')[1]]);
    assert.match(a.problems[0]!, /from table "docs"$/);
    assert.deepEqual(a.notChecked, []);

    const b = await verifyImage(rtree, FULL);
    assert.equal(b.engine.name, 'node:sqlite');
    assert.equal(b.status, 'failed');
    assert.equal(b.problems[0], 'In RTree main.shapes:');
    assert.ok(b.problems.length > 2 && b.problems.length <= 101, `${b.problems.length} lines, capped`);
    assert.deepEqual(b.notChecked, []);
  });

  test('both engines agree on the fingerprint and row counts; a different notChecked is no finding', { skip }, async () => {
    const db = path.join(dir, 'vt.db');
    makeVirtualTablesDb(db);
    const node = await verifyImage(db, FULL);
    const wasm = await withSqlJs(db);
    assert.equal(node.engine.name, 'node:sqlite');
    assert.equal(node.status, 'ok', node.problems.join('\n'));
    assert.equal(wasm.status, 'ok');
    assert.deepEqual(wasm.notChecked.sort(), ['docs (fts5)', 'shapes (rtree)']);
    assert.deepEqual(node.notChecked, []);
    assert.equal(node.schemaFingerprint, wasm.schemaFingerprint);
    assert.deepEqual(node.rowCounts, wasm.rowCounts);
    assert.deepEqual(compareWithManifest(node, wasm), [], 'a manifest verified by sql.js, re-verified by node:sqlite');
    assert.deepEqual(compareWithManifest(wasm, node), [], 'and the other way round');
  });

  test('damage sql.js could not see at backup time is explained, once, beside the findings', { skip }, async () => {
    const db = path.join(dir, 'fts-late.db');
    makeVirtualTablesDb(db);
    corruptFts5(db, 'docs');
    const manifest = await withSqlJs(db);
    assert.equal(manifest.status, 'ok', 'sql.js passed it when the backup was made');
    const now = await verifyImage(db, FULL);
    assert.equal(now.status, 'failed');
    const lines = compareWithManifest(now, manifest);
    assert.equal(lines.length, 1, lines.join('\n'));
    assert.match(lines[0]!, /^when the backup was made, sql\.js 3\.x found this image ok but could not check docs \(fts5\), shapes \(rtree\); node:sqlite \d+\.\d+\.\d+ checked them now$/);
    // The same engine's verdicts need no explanation.
    assert.deepEqual(compareWithManifest(now, { ...manifest, engine: now.engine }), []);
  });

  test("an FTS5 table with the application's own tokenizer is not checked, not damage; damage elsewhere still is", { skip }, async () => {
    const db = path.join(dir, 'tokenizer.db');
    makeVirtualTablesDb(db);
    sqlite(
      db,
      `CREATE TABLE big(id INTEGER PRIMARY KEY, v BLOB);
       WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 400) INSERT INTO big(v) SELECT randomblob(200) FROM n;
       PRAGMA writable_schema = ON;
       UPDATE sqlite_schema SET sql = 'CREATE VIRTUAL TABLE docs USING fts5(body, tokenize = "myapp")' WHERE name = 'docs';`,
    );
    const r = await verifyImage(db, FULL);
    assert.equal(r.engine.name, 'node:sqlite');
    assert.equal(r.status, 'ok', r.problems.join('\n'));
    assert.equal(r.notChecked.length, 2, r.notChecked.join('\n'));
    assert.match(r.notChecked[0]!, /^docs \(fts5: .+\)$/);
    assert.match(r.notChecked[1]!, /^pages outside the tables \(integrity_check of the whole file failed: .+\)$/);
    assert.equal(r.rowCounts.big, 400);

    const bad = path.join(dir, 'tokenizer-bad.db');
    copyFileSync(db, bad);
    const page = query<{ pageno: number }>(bad, "SELECT pageno FROM dbstat WHERE name = 'big' AND pagetype = 'leaf' ORDER BY pageno LIMIT 1 OFFSET 3")[0]!.pageno;
    const fd = openSync(bad, 'r+');
    try {
      writeSync(fd, Buffer.alloc(2048, 0xa5), 0, 2048, (page - 1) * 4096 + 1024);
    } finally {
      closeSync(fd);
    }
    const r2 = await verifyImage(bad, FULL);
    assert.equal(r2.engine.name, 'node:sqlite');
    assert.equal(r2.status, 'failed');
    assert.ok(r2.problems.length > 0);
  });

  test('nothing is written into the image or left beside it, even with a -journal beside it', { skip }, async () => {
    const sub = path.join(dir, 'quiet');
    mkdirSync(sub);
    const db = path.join(sub, 'img.db');
    makeVirtualTablesDb(db);
    // A journal a crash might leave: a normal connection would treat it as hot and roll it back.
    writeFileSync(`${db}-journal`, Buffer.alloc(512, 0));
    const before = readFileSync(db);
    const r = await verifyImage(db, { ...FULL, probeQuery: "INSERT INTO notes(body) VALUES ('x')" });
    assert.equal(r.engine.name, 'node:sqlite');
    assert.equal(r.probe?.ok, false, 'a writing probe cannot write');
    assert.match(r.probe?.error ?? '', /readonly|read-only|query_only/i);
    assert.ok(readFileSync(db).equals(before), 'not a byte changed');
    assert.deepEqual(readdirSync(sub).sort(), ['img.db', 'img.db-journal']);
    assert.ok(readFileSync(`${db}-journal`).equals(Buffer.alloc(512, 0)), 'the journal was left alone');
  });
});

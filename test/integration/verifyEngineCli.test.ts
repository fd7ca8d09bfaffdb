/**
 * `lifeboat verify` names the engine that verified, and what that engine could not
 * check: node:sqlite under Node 24, sql.js under Node 20 or LIFEBOAT_SQLITE=fallback.
 */
import assert from 'node:assert/strict';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { snapshotIds, snapshotPath, zipIds } from '../fixtures/backupFiles';
import { ensureBuilt, lifeboat } from '../fixtures/cli';
import { tempDir } from '../fixtures/sqlite';
import { corruptFts5, expectedEngine, makeVirtualTablesDb } from '../unit/verifyFixtures';

const ENGINE = expectedEngine();
const NODE = ENGINE === 'node:sqlite';
let dir = '';
let cleanup = () => {};
before(() => {
  ensureBuilt();
  ({ dir, cleanup } = tempDir('lifeboat-verify-cli-'));
});
after(() => cleanup());

/** The one backup in `d`: a format v2 snapshot, the default. */
const backupIn = (d: string): string => {
  const ids = snapshotIds(d);
  assert.equal(ids.length, 1, ids.join(', '));
  assert.deepEqual(zipIds(d), []);
  return snapshotPath(d, ids[0]!);
};

describe(`lifeboat verify with ${ENGINE}`, () => {
  test('prints the engine and its SQLite version; --json carries it', async () => {
    const db = path.join(dir, 'vt.db');
    makeVirtualTablesDb(db);
    const out = path.join(dir, 'b1');
    const b = await lifeboat(['backup', db, '--dir', out]);
    assert.equal(b.code, 0, b.stderr);
    const archive = backupIn(out);
    assert.equal(b.stdout.trim(), archive);
    const v = await lifeboat(['verify', archive]);
    assert.equal(v.code, 0, v.stderr);
    const line = v.stdout.split('\n')[0]!;
    assert.ok(line.startsWith(`ok       ${archive}  [${ENGINE} 3.`), line);
    if (NODE) assert.ok(!/not checked/.test(line), line);
    else assert.ok(line.endsWith('(not checked: docs (fts5), shapes (rtree))'), line);
    const j = await lifeboat(['verify', archive, '--json']);
    const parsed = JSON.parse(j.stdout) as { results: { engine: { name: string; sqliteVersion: string } }[] };
    assert.equal(parsed.results[0]!.engine.name, ENGINE);
    assert.match(parsed.results[0]!.engine.sqliteVersion, /^3\.\d+\.\d+$/);
  });

  test(`a damaged FTS5 index is ${NODE ? 'found by the backup and by verify' : 'not checked: the backup and verify pass, saying so'}`, async () => {
    const db = path.join(dir, 'fts.db');
    makeVirtualTablesDb(db);
    corruptFts5(db, 'docs');
    const out = path.join(dir, 'b2');
    const b = await lifeboat(['backup', db, '--dir', out]);
    assert.equal(b.code, NODE ? 3 : 0, b.stderr);
    if (NODE) assert.match(b.stderr, /is damaged: fts5: .*"docs"/);
    const v = await lifeboat(['verify', backupIn(out)]);
    assert.equal(v.code, NODE ? 3 : 0, v.stdout);
    const [first, ...rest] = v.stdout.trim().split('\n');
    assert.match(first!, NODE ? /^DAMAGED .*\[node:sqlite 3\./ : /^ok .*\[sql\.js 3\..*\(not checked: docs \(fts5\), shapes \(rtree\)\)$/);
    if (NODE) assert.ok(rest.some((l) => /fts5: corruption found .* table "docs"/.test(l)), rest.join('\n'));
  });
});

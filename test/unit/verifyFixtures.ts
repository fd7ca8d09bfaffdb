/**
 * Shared by the verifier's tests: which engine a run must verify with, and databases with
 * FTS5 and R-Tree tables damaged on purpose, made with Debian's sqlite3 shell (it has
 * both modules; its own SQLite 3.40 predates xIntegrity, so it cannot see this damage).
 */
import assert from 'node:assert/strict';
import { query, sqlite } from '../fixtures/sqlite';

/**
 * 'node:sqlite' when this runtime loads node:sqlite and LIFEBOAT_SQLITE is not
 * 'fallback', else 'sql.js'. Decided here, without the code under test, so that a test
 * asserting it fails when the verifier picked the other engine.
 */
export function expectedEngine(): 'node:sqlite' | 'sql.js' {
  if (process.env.LIFEBOAT_SQLITE === 'fallback') return 'sql.js';
  return nodeSqliteLoads() ? 'node:sqlite' : 'sql.js';
}

/**
 * Why a test of the node:sqlite path cannot run here, or undefined when it can (and must).
 * The one reason is a runtime older than Node 22 without the module (this machine's
 * Node 20); anywhere else such a test runs, and fails if another engine verified.
 */
export function noNodeSqliteReason(): string | undefined {
  const major = Number(process.versions.node.split('.')[0]);
  if (major < 22 && !nodeSqliteLoads()) return `Node ${process.versions.node} has no node:sqlite; the node24 run of scripts/runTests.mjs covers this`;
  return undefined;
}

function nodeSqliteLoads(): boolean {
  try {
    require(['node', 'sqlite'].join(':'));
    return true;
  } catch {
    return false;
  }
}

/** A database with an ordinary table, an FTS5 table `docs` and a 2-D R-Tree `shapes`, large enough to have several segments and nodes. */
export function makeVirtualTablesDb(db: string): void {
  sqlite(
    db,
    `CREATE TABLE notes(id INTEGER PRIMARY KEY, body TEXT);
     INSERT INTO notes(body) VALUES ('alpha'), ('beta');
     CREATE VIRTUAL TABLE docs USING fts5(body);
     WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 2000)
     INSERT INTO docs SELECT 'word' || i || ' common text ' || (i % 37) FROM n;
     CREATE VIRTUAL TABLE shapes USING rtree(id, x0, x1, y0, y1);
     WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 500)
     INSERT INTO shapes SELECT i, i, i + 5, i, i + 3 FROM n;`,
  );
}

/**
 * Damages the FTS5 index of `table` through SQL on its shadow table: the newest segment
 * leaf (the largest id in <table>_data) keeps its 8-byte header and the rest is zeroed.
 * The b-trees stay sound, so only a check that reads the FTS5 index can see it.
 */
export function corruptFts5(db: string, table: string): void {
  const before = query<{ n: number }>(db, `SELECT count(*) AS n FROM ${table}_data WHERE length(block) > 100`)[0]?.n ?? 0;
  assert.ok(before > 0, `${table} has segment leaves to damage`);
  sqlite(db, `UPDATE ${table}_data SET block = substr(block, 1, 8) || zeroblob(length(block) - 8) WHERE id = (SELECT max(id) FROM ${table}_data);`);
  assert.equal(sqlite(db, 'PRAGMA integrity_check;').trim(), 'ok', 'the b-trees are sound: only FTS5 can tell');
}

/**
 * Damages node 2 of the R-Tree `table` through SQL on its shadow table: its cell count
 * (the first 4 bytes) is kept and every cell is zeroed. The b-trees stay sound.
 */
export function corruptRtree(db: string, table: string): void {
  assert.ok(query(db, `SELECT 1 FROM ${table}_node WHERE nodeno = 2`).length, `${table} has a node 2`);
  sqlite(db, `UPDATE ${table}_node SET data = substr(data, 1, 4) || zeroblob(length(data) - 4) WHERE nodeno = 2;`);
  assert.equal(sqlite(db, 'PRAGMA integrity_check;').trim(), 'ok', 'the b-trees are sound: only R-Tree can tell');
}

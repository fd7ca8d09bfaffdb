// cliRestoreRows: `lifeboat restore <backup> --table T --key K` (and --keys-from), run as
// users run it (the built dist/cli.js) on real databases the sqlite3 shell builds and
// changes, while an app (a sqlite3 shell process) holds the database open and writes to
// it. Selected changed rows must become exactly the backup's, selected removed rows come
// back exactly, and every other row and table stays as it was; refusals change nothing.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { nodeSqlite } from '../../src/core/sqlite/nodeSqlite';
import { startApp } from '../fixtures/appProcess';
import { CLI, ensureBuilt, lifeboat, type CliResult } from '../fixtures/cli';
import { query, sqlite, tempDir } from '../fixtures/sqlite';

before(() => ensureBuilt());

const t = tempDir('lifeboat-rows-');
after(() => t.cleanup());

const SCHEMA = `
PRAGMA journal_mode=WAL;
CREATE TABLE ipk(id INTEGER PRIMARY KEY, v TEXT, n REAL, b BLOB);
CREATE TABLE textpk(name TEXT PRIMARY KEY, v INT);
CREATE TABLE comp(a TEXT, b INT, v TEXT, PRIMARY KEY(a, b));
CREATE TABLE wr(k TEXT PRIMARY KEY, v INT) WITHOUT ROWID;
CREATE TABLE plain(a TEXT, b INT);
CREATE TABLE child(id INTEGER PRIMARY KEY, ipk_id INTEGER REFERENCES ipk(id) ON DELETE CASCADE ON UPDATE CASCADE);
CREATE TABLE audit(msg TEXT);
CREATE TRIGGER ipk_ins AFTER INSERT ON ipk BEGIN INSERT INTO audit VALUES ('inserted ' || new.id); END;
CREATE TRIGGER ipk_upd AFTER UPDATE ON ipk BEGIN INSERT INTO audit VALUES ('updated ' || new.id); END;
CREATE TRIGGER ipk_del AFTER DELETE ON ipk BEGIN INSERT INTO audit VALUES ('deleted ' || old.id); END;
WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i+1 FROM n WHERE i < 30)
INSERT INTO ipk(id, v, n, b) SELECT i, 'v' || i, i / 4.0, randomblob(8) FROM n;
WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i+1 FROM n WHERE i < 20)
INSERT INTO textpk(name, v) SELECT 'n' || i, i FROM n;
WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i+1 FROM n WHERE i < 12)
INSERT INTO comp(a, b, v) SELECT 'a' || (i % 3), i, 'c' || i FROM n;
WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i+1 FROM n WHERE i < 10)
INSERT INTO wr(k, v) SELECT 'k' || i, i FROM n;
INSERT INTO plain VALUES ('p', 1), ('q', 2);
INSERT INTO child VALUES (1, 5), (2, 6);
DELETE FROM audit;
`;

// What happens after the backup; the restores below undo parts of it.
const CHANGES = `
PRAGMA foreign_keys = ON;
DELETE FROM ipk WHERE id IN (3, 4);
INSERT INTO ipk(id, v) VALUES (31, 'new31'), (32, 'new32');
UPDATE ipk SET v = 'changed', n = NULL, b = x'00' WHERE id IN (10, 11, 12);
UPDATE ipk SET v = 7 WHERE id = 13;
INSERT INTO child VALUES (3, 31), (4, 10);
INSERT INTO textpk(name, v) VALUES ('zz', 99);
DELETE FROM textpk WHERE name IN ('n1', 'n3');
UPDATE textpk SET v = -5 WHERE name IN ('n2', 'n4');
INSERT INTO comp VALUES ('a9', 1, 'x');
DELETE FROM comp WHERE (a, b) IN (VALUES ('a1', 1), ('a1', 4));
UPDATE comp SET v = 'upd' WHERE b IN (2, 3, 5);
INSERT INTO wr VALUES ('k99', 99);
DELETE FROM wr WHERE k IN ('k1', 'k2');
UPDATE wr SET v = 0 WHERE k IN ('k3', 'k4');
DELETE FROM plain WHERE a = 'q';
DELETE FROM audit;
`;

const KEYS: Record<string, string[]> = { ipk: ['id'], textpk: ['name'], comp: ['a', 'b'], wr: ['k'], child: ['id'] };
const TABLES = ['ipk', 'textpk', 'comp', 'wr', 'plain', 'child', 'audit'];

/** Every row of a table, exactly (quote() keeps types: 1 and '1' and 1.0 differ), by key. */
function rowsOf(db: string, table: string): Map<string, string> {
  const cols = query<{ name: string }>(db, `SELECT name FROM pragma_table_info('${table}')`).map((c) => `"${c.name}"`);
  const key = (KEYS[table] ?? []).map((k) => `"${k}"`);
  const rows = query<{ k: string; r: string }>(db, `SELECT json_array(${key.length ? key.join(', ') : 'rowid'}) AS k, json_array(${cols.map((c) => `quote(${c})`).join(', ')}) AS r FROM "${table}" ORDER BY 1`);
  return new Map(rows.map((x) => [x.k, x.r]));
}

type Snapshot = Record<string, Map<string, string>>;
const snapshot = (db: string): Snapshot => Object.fromEntries(TABLES.map((n) => [n, rowsOf(db, n)]));

/**
 * Asserts that `table` in `after` has, for the keys in `restored`, exactly the backup's row
 * (or no row when the backup has none), and every other row as `before` had it; and that
 * every other table is exactly as before.
 */
function assertRestored(after: Snapshot, before: Snapshot, backup: Snapshot, table: string, restored: unknown[][]): void {
  const ids = new Set(restored.map((k) => JSON.stringify(k)));
  for (const id of ids) assert.equal(after[table].get(id), backup[table].get(id), `${table} ${id} is the backup's row`);
  const others = (s: Snapshot) => [...s[table]].filter(([k]) => !ids.has(k));
  assert.deepEqual(others(after), others(before), `the other rows of ${table} are as they were`);
  for (const n of TABLES) if (n !== table) assert.deepEqual([...after[n]], [...before[n]], `${n} is as it was`);
}

async function scenario(name: string) {
  const ws = path.join(t.dir, name);
  mkdirSync(ws);
  const db = path.join(ws, 'app.db');
  sqlite(db, SCHEMA);
  writeFileSync(path.join(ws, 'lifeboat.json'), JSON.stringify({ format: 'repository' }));
  const b1 = await lifeboat(['backup', db]);
  assert.equal(b1.code, 0, b1.stderr);
  const first = b1.stdout.trim().split('\n').at(-1)!;
  sqlite(db, CHANGES);
  // The backup's content, as an exported copy of it holds it.
  const exported = path.join(ws, 'backup-export.db');
  assert.equal((await lifeboat(['export', first, '--to', exported])).code, 0);
  return { ws, db, dir: path.join(ws, 'backups'), first, backup: snapshot(exported) };
}

const backupCount = async (dir: string) => (JSON.parse((await lifeboat(['list', '--dir', dir, '--json'])).stdout) as { backups: unknown[] }).backups.length;

/** `lifeboat <args>` with `input` on its stdin. */
function lifeboatStdin(args: string[], input: string): Promise<CliResult> {
  return new Promise((resolve) => {
    const p = spawn(process.execPath, [CLI, ...args]);
    let stdout = '';
    let stderr = '';
    p.stdout.on('data', (d) => (stdout += d));
    p.stderr.on('data', (d) => (stderr += d));
    p.on('close', (code) => resolve({ code, stdout, stderr }));
    p.stdin.end(input);
  });
}

interface RowsOut {
  table: string;
  key: string[];
  inserted: number;
  updated: number;
  unchanged: number;
  deleted: number;
  rows: { key: unknown[]; action: string }[];
  preRestore: string;
  foreignKeyViolations: number;
  firstViolations: { table: string; rowid: number; parent: string }[];
  triggers: number;
}

const hasSqlite = !!nodeSqlite() && process.env.LIFEBOAT_SQLITE !== 'fallback';

describe('lifeboat restore --table T --key K', () => {
  test(hasSqlite ? 'selected rows become exactly the backup\'s in every kind of keyed table, under an app that holds the database open and writes' : 'without node:sqlite: one clear error, nothing changed', async () => {
    const s = await scenario('rows');
    if (!hasSqlite) {
      const before = snapshot(s.db);
      const r = await lifeboat(['restore', s.first, '--table', 'ipk', '--key', '3']);
      assert.equal(r.code, 1, r.stdout + r.stderr);
      assert.match(r.stderr, /needs SQLite in the runtime/);
      assert.deepEqual(snapshot(s.db), before);
      return;
    }
    const app = await startApp(s.db);
    try {
      // The app writes while it holds the database open; the restores go through SQLite beside it.
      await app.run("INSERT INTO plain VALUES ('app', 1)");
      assert.deepEqual(await app.run('SELECT count(*) FROM ipk WHERE id = 3'), ['0']);

      // INTEGER PRIMARY KEY: a removed row back, two changed rows reverted (one of them
      // with a value of another type); triggers do not fire, no cascade reaches child.
      let before = snapshot(s.db);
      const ipk = await lifeboat(['restore', s.first, '--table', 'ipk', '--key', '3', '--key', '10', '--key', '13', '--json']);
      assert.equal(ipk.code, 0, ipk.stderr);
      const o = JSON.parse(ipk.stdout) as RowsOut;
      assert.deepEqual([o.inserted, o.updated, o.unchanged, o.deleted], [1, 2, 0, 0]);
      assert.deepEqual(o.key, ['id']);
      assert.deepEqual(o.rows, [{ key: [3], action: 'inserted' }, { key: [10], action: 'updated' }, { key: [13], action: 'updated' }]);
      assert.equal(o.triggers, 3);
      assert.equal(o.foreignKeyViolations, 0);
      assert.ok(existsSync(o.preRestore), o.preRestore);
      assertRestored(snapshot(s.db), before, s.backup, 'ipk', [[3], [10], [13]]);
      assert.equal(query<{ t: string }>(s.db, 'SELECT typeof(v) AS t FROM ipk WHERE id = 13')[0].t, 'text', "13's v is text again, as in the backup");
      assert.deepEqual(await app.run('SELECT v FROM ipk WHERE id IN (3, 10) ORDER BY id'), ['v3', 'v10'], "the app's open connection sees the restored rows");
      // The pre-restore backup holds the state before.
      const pre = path.join(s.ws, 'pre.db');
      assert.equal((await lifeboat(['export', o.preRestore, '--to', pre])).code, 0);
      assert.deepEqual([...rowsOf(pre, 'ipk')], [...before.ipk]);

      // A rowid table keyed by TEXT: a key that is not JSON is text; "n2" as JSON too.
      await app.run("INSERT INTO plain VALUES ('app', 2)");
      before = snapshot(s.db);
      const tp = await lifeboat(['restore', s.first, '--table', 'textpk', '--key', 'n1', '--key', '"n2"', '--key', 'n5', '--json']);
      assert.equal(tp.code, 0, tp.stderr);
      const tpo = JSON.parse(tp.stdout) as RowsOut;
      assert.deepEqual([tpo.inserted, tpo.updated, tpo.unchanged, tpo.deleted], [1, 1, 1, 0], 'n5 was unchanged');
      assertRestored(snapshot(s.db), before, s.backup, 'textpk', [['n1'], ['n2'], ['n5']]);

      // A composite key from a file of JSON lines: an array, and a row object as diff lists it.
      before = snapshot(s.db);
      const keysFile = path.join(s.ws, 'keys.jsonl');
      writeFileSync(keysFile, '["a1", 1]\n\n{"a": "a2", "b": 2, "v": "ignored"}\n');
      const cp = await lifeboat(['restore', s.first, '--table', 'comp', '--keys-from', keysFile, '--key', '["a0", 3]']);
      assert.equal(cp.code, 0, cp.stderr);
      assert.match(cp.stdout, /restored 3 row\(s\) of table comp of .* 1 inserted, 2 updated, 0 already as the backup has them, 0 deleted/);
      assert.match(cp.stdout, /the previous state is saved in /);
      assertRestored(snapshot(s.db), before, s.backup, 'comp', [['a1', 1], ['a2', 2], ['a0', 3]]);

      // WITHOUT ROWID, piped from diff: every removed, changed and (--delete-added) added row.
      before = snapshot(s.db);
      const diff = await lifeboat(['diff', s.first, '--live', s.db, '--table', 'wr', '--rows', '--json']);
      assert.equal(diff.code, 0, diff.stderr);
      const wr = await lifeboatStdin(['restore', s.first, '--table', 'wr', '--keys-from', '-', '--delete-added', '--json'], diff.stdout);
      assert.equal(wr.code, 0, wr.stderr);
      const wro = JSON.parse(wr.stdout) as RowsOut;
      assert.deepEqual([wro.inserted, wro.updated, wro.unchanged, wro.deleted], [2, 2, 0, 1]);
      assertRestored(snapshot(s.db), before, s.backup, 'wr', [['k1'], ['k2'], ['k3'], ['k4'], ['k99']]);
      assert.deepEqual([...snapshot(s.db).wr], [...s.backup.wr], 'wr is now the backup\'s, all of it');

      // Deleting a row added since: its child row stays (no cascade), reported as a violation.
      before = snapshot(s.db);
      const del = await lifeboat(['restore', s.first, '--table', 'ipk', '--key', '31', '--delete-added', '--json']);
      assert.equal(del.code, 0, del.stderr);
      const delo = JSON.parse(del.stdout) as RowsOut;
      assert.deepEqual([delo.inserted, delo.updated, delo.unchanged, delo.deleted], [0, 0, 0, 1]);
      assert.equal(delo.foreignKeyViolations, 1);
      assert.deepEqual(delo.firstViolations, [{ table: 'child', rowid: 3, parent: 'ipk' }]);
      assertRestored(snapshot(s.db), before, s.backup, 'ipk', [[31]]);
      assert.deepEqual(await app.run('SELECT count(*) FROM ipk WHERE id = 31'), ['0'], 'the app sees the row gone');
      const log = JSON.parse((await lifeboat(['log', '--dir', s.dir, '--json'])).stdout) as { op: string; message: string }[];
      assert.ok(log.some((e) => e.op === 'restore.table' && e.message.startsWith('restored 1 row(s) of table ipk of')), 'logged');
    } finally {
      await app.close();
    }
  });

  test(hasSqlite ? 'BLOB keys and integers beyond 2^53 round-trip from diff --rows --json and from --key' : 'without node:sqlite: a BLOB key is refused with the same clear error, nothing changed', async () => {
    const ws = path.join(t.dir, 'odd-keys');
    mkdirSync(ws);
    const db = path.join(ws, 'app.db');
    sqlite(db, `
      CREATE TABLE bin(k BLOB PRIMARY KEY, v TEXT) WITHOUT ROWID;
      CREATE TABLE big(id INTEGER PRIMARY KEY, v TEXT);
      INSERT INTO bin VALUES (x'00ff', 'a'), (x'', 'empty'), (x'0102', 'b');
      INSERT INTO big VALUES (4611686018427387903, 'huge'), (-9223372036854775808, 'min'), (1, 'one');`);
    writeFileSync(path.join(ws, 'lifeboat.json'), JSON.stringify({ format: 'repository' }));
    const b = await lifeboat(['backup', db]);
    assert.equal(b.code, 0, b.stderr);
    const first = b.stdout.trim().split('\n').at(-1)!;
    const all = (table: string) => sqlite(db, `SELECT quote(${table === 'bin' ? 'k' : 'id'}), quote(v) FROM ${table} ORDER BY 1;`);
    const want = { bin: all('bin'), big: all('big') };
    sqlite(db, "DELETE FROM bin WHERE k = x'00ff'; UPDATE bin SET v = 'E' WHERE k = x''; DELETE FROM big WHERE id = 4611686018427387903; UPDATE big SET v = 'MIN' WHERE id = -9223372036854775808;");
    if (!hasSqlite) {
      const changed = all('bin');
      const r = await lifeboat(['restore', first, '--table', 'bin', '--key', '{"$blob": "00ff"}']);
      assert.equal(r.code, 1, r.stdout + r.stderr);
      assert.match(r.stderr, /needs SQLite in the runtime/);
      assert.equal(all('bin'), changed);
      return;
    }
    const diff = await lifeboat(['diff', first, '--live', db, '--table', 'bin', '--rows', '--json']);
    const bin = await lifeboatStdin(['restore', first, '--table', 'bin', '--keys-from', '-', '--json'], diff.stdout);
    assert.equal(bin.code, 0, bin.stderr);
    assert.deepEqual((JSON.parse(bin.stdout) as RowsOut).rows, [{ key: [{ $blob: '00ff' }], action: 'inserted' }, { key: [{ $blob: '' }], action: 'updated' }]);
    assert.equal(all('bin'), want.bin);
    const big = await lifeboat(['restore', first, '--table', 'big', '--key', '4611686018427387903', '--key', '"-9223372036854775808"', '--json']);
    assert.equal(big.code, 0, big.stderr);
    assert.deepEqual([(JSON.parse(big.stdout) as RowsOut).inserted, (JSON.parse(big.stdout) as RowsOut).updated], [1, 1]);
    assert.equal(all('big'), want.big);
  });

  test(hasSqlite ? 'refusals name what is wrong and change nothing, with no pre-restore backup' : 'without node:sqlite: usage errors still come first', async () => {
    const s = await scenario('refusals');
    const whole = sqlite(s.db, '.sha3sum').trim();
    const count = await backupCount(s.dir);
    const refused = async (args: string[], code: number, re: RegExp) => {
      const r = await lifeboat(['restore', s.first, ...args]);
      assert.equal(r.code, code, `${args.join(' ')}: ${r.stdout}${r.stderr}`);
      assert.match(r.stderr, re);
      assert.equal(sqlite(s.db, '.sha3sum').trim(), whole, `${args.join(' ')} changed nothing`);
    };
    await refused(['--key', '3'], 2, /--key and --keys-from select rows of a table: give --table T too/);
    await refused(['--table', 'ipk', '--delete-added'], 2, /--delete-added applies to selected rows/);
    await refused(['--table', 'ipk', '--keys-from', path.join(s.ws, 'none.jsonl')], 1, /--keys-from .*none\.jsonl: no such file/);
    writeFileSync(path.join(s.ws, 'bad.jsonl'), '3\nnot json\n');
    await refused(['--table', 'ipk', '--keys-from', path.join(s.ws, 'bad.jsonl')], 2, /line 2 is not JSON: not json/);
    if (!hasSqlite) return;
    // A key on neither side: named; the other, good key is not restored either.
    await refused(['--table', 'ipk', '--key', '3', '--key', '999'], 2, /table ipk has no row with key 999 \(id\) in the backup or in .*; nothing was changed/);
    await refused(['--table', 'comp', '--key', '["a1", 1]', '--key', '["zz", 5]'], 2, /table comp has no row with key \["zz",5\] \(a, b\)/);
    // A row added since, without --delete-added.
    await refused(['--table', 'ipk', '--key', '32'], 2, /the backup has no row of table ipk with key 32 .*added to .* since; .*--delete-added/);
    // Keys that do not fit the table's.
    await refused(['--table', 'comp', '--key', '"a1"'], 2, /table comp is keyed by \(a, b\), so give a JSON array of 2 values/);
    await refused(['--table', 'comp', '--key', '{"a": "a1"}'], 2, /has no b: table comp is keyed by \(a, b\)/);
    await refused(['--table', 'comp', '--key', '["a1", {"x": 1}]'], 2, /\{"x":1\} is not a key value/);
    // No key at all: its rows cannot be addressed.
    await refused(['--table', 'plain', '--key', '1'], 2, /table plain has no primary key, so its rows cannot be addressed one by one.*restore the whole table instead; nothing was changed/);
    // A diff without rows of the table.
    const diff = await lifeboat(['diff', s.first, '--live', s.db, '--json']);
    writeFileSync(path.join(s.ws, 'diff.json'), diff.stdout);
    await refused(['--table', 'ipk', '--keys-from', path.join(s.ws, 'diff.json')], 2, /the diff lists no rows of table ipk \(run diff with --table ipk --rows --json\)/);
    // A table defined differently: refused, naming the column.
    sqlite(s.db, "ALTER TABLE textpk ADD COLUMN extra TEXT DEFAULT 'e';");
    const whole2 = sqlite(s.db, '.sha3sum').trim();
    const r = await lifeboat(['restore', s.first, '--table', 'textpk', '--key', 'n1']);
    assert.equal(r.code, 2, r.stdout + r.stderr);
    assert.match(r.stderr, /table textpk is defined differently .*columns only the live table has: extra.*nothing was changed/);
    assert.equal(sqlite(s.db, '.sha3sum').trim(), whole2);
    assert.equal(await backupCount(s.dir), count, 'no pre-restore backup for a refusal');
  });
});

// cliDiff: `lifeboat diff` and `lifeboat restore --table`, run as users run them (the built
// dist/cli.js) on real databases the sqlite3 shell builds and changes: known inserts,
// deletes and updates in a table with an INTEGER PRIMARY KEY, a rowid table with a TEXT
// primary key, a composite-key table, a WITHOUT ROWID table and a table with no key;
// tables, columns, indexes, views and triggers added, dropped and changed. The counts and
// the rows must be exactly those changes. A table restore must put back exactly the
// backup's table (sqlite3's .sha3sum of it) and leave every other table as it was.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { nodeSqlite } from '../../src/core/sqlite/nodeSqlite';
import { ensureBuilt, lifeboat } from '../fixtures/cli';
import { query, sqlite, tempDir } from '../fixtures/sqlite';

before(() => ensureBuilt());

const t = tempDir('lifeboat-diff-');
after(() => t.cleanup());

/** The SHA3 of one table's content, as the sqlite3 shell computes it. */
const sha3 = (db: string, table: string) => sqlite(db, `.sha3sum ${table}`).trim();

const SCHEMA = `
PRAGMA journal_mode=WAL;
CREATE TABLE ipk(id INTEGER PRIMARY KEY, v TEXT);
CREATE TABLE textpk(name TEXT PRIMARY KEY, v INT);
CREATE TABLE comp(a TEXT, b INT, v TEXT, PRIMARY KEY(a, b));
CREATE TABLE wr(k TEXT PRIMARY KEY, v INT) WITHOUT ROWID;
CREATE TABLE plain(a TEXT, b INT);
CREATE TABLE oldt(x);
CREATE TABLE audit(msg TEXT);
CREATE INDEX idx_old ON ipk(v);
CREATE TRIGGER ipk_audit AFTER DELETE ON ipk BEGIN INSERT INTO audit VALUES ('deleted ' || old.id); END;
WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i+1 FROM n WHERE i < 50)
INSERT INTO ipk(id, v) SELECT i, 'v' || i FROM n;
WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i+1 FROM n WHERE i < 20)
INSERT INTO textpk(name, v) SELECT 'n' || i, i FROM n;
WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i+1 FROM n WHERE i < 10)
INSERT INTO comp(a, b, v) SELECT 'a' || (i % 3), i, 'c' || i FROM n;
WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i+1 FROM n WHERE i < 10)
INSERT INTO wr(k, v) SELECT 'k' || i, i FROM n;
INSERT INTO plain VALUES ('p', 1), ('p', 1), ('q', 2), ('r', 3);
INSERT INTO oldt VALUES (1);
`;

// The changes between the two backups, and what diff must count for them.
const CHANGES = `
DELETE FROM ipk WHERE id IN (3, 4);
INSERT INTO ipk(id, v) VALUES (51, 'new51'), (52, 'new52'), (53, x'00ff');
UPDATE ipk SET v = 'changed' WHERE id IN (10, 11, 12, 13);
INSERT INTO textpk(name, v) VALUES ('zz', 99);
DELETE FROM textpk WHERE name = 'n1';
UPDATE textpk SET v = -5 WHERE name = 'n2';
INSERT INTO comp VALUES ('a9', 1, 'x'), ('a9', 2, 'y');
DELETE FROM comp WHERE a = 'a1' AND b = 1;
UPDATE comp SET v = 'upd' WHERE b IN (2, 3, 5);
INSERT INTO wr VALUES ('k99', 99);
DELETE FROM wr WHERE k IN ('k1', 'k2');
UPDATE wr SET v = 0 WHERE k IN ('k3', 'k4');
INSERT INTO plain VALUES ('s', 4), ('p', 1);
DELETE FROM plain WHERE a = 'q';
UPDATE plain SET b = 30 WHERE a = 'r';
DROP TABLE oldt;
CREATE TABLE newt(y);
DROP INDEX idx_old;
CREATE INDEX idx_new ON ipk(v, id);
CREATE VIEW big AS SELECT * FROM ipk WHERE id > 40;
DELETE FROM audit;
`;

const EXPECTED_TABLES = {
  ipk: { added: 3, removed: 2, changed: 4, key: 'rowid (id)' },
  textpk: { added: 1, removed: 1, changed: 1, key: 'primary key (name)' },
  comp: { added: 2, removed: 1, changed: 3, key: 'primary key (a, b)' },
  wr: { added: 1, removed: 2, changed: 2, key: 'primary key (k)' },
  // ('p', 1) once more, ('s', 4), and ('r', 30) for ('r', 3): as multisets, no "changed".
  plain: { added: 3, removed: 2, changed: 0, key: 'none (compared as multisets)' },
  audit: { added: 0, removed: 0, changed: 0, key: 'none (compared as multisets)' },
};

interface Diff {
  schema: { added: { type: string; name: string }[]; removed: { type: string; name: string }[]; changed: { type: string; name: string; columns?: { added: string[]; removed: string[]; changed: string[] } }[] };
  tables: Record<string, { added: number; removed: number; changed: number; key: string; rows?: { added: Record<string, unknown>[]; removed: Record<string, unknown>[]; changed: { old: Record<string, unknown>; new: Record<string, unknown> }[] } }>;
}

const counts = (d: Diff) => Object.fromEntries(Object.entries(d.tables).map(([n, x]) => [n, { added: x.added, removed: x.removed, changed: x.changed, key: x.key }]));
const names = (xs: { type: string; name: string }[]) => xs.map((x) => `${x.type} ${x.name}`).sort();

/** A workspace with app.db, two repository backups (before and after CHANGES) and a v1 zip of the first state. */
async function scenario(name: string) {
  const ws = path.join(t.dir, name);
  mkdirSync(ws);
  const db = path.join(ws, 'app.db');
  sqlite(db, SCHEMA);
  writeFileSync(path.join(ws, 'lifeboat.json'), JSON.stringify({ format: 'repository' }));
  const b1 = await lifeboat(['backup', db]);
  assert.equal(b1.code, 0, b1.stderr);
  sqlite(db, CHANGES);
  const b2 = await lifeboat(['backup', db]);
  assert.equal(b2.code, 0, b2.stderr);
  return { ws, db, dir: path.join(ws, 'backups'), first: b1.stdout.trim().split('\n').at(-1)!, second: b2.stdout.trim().split('\n').at(-1)! };
}

const hasSqlite = !!nodeSqlite() && process.env.LIFEBOAT_SQLITE !== 'fallback';

describe('lifeboat diff', () => {
  test(hasSqlite ? 'two backups, and a backup against the live database: the exact counts, schema changes and rows' : 'without node:sqlite: one clear error naming what it needs', async () => {
    const s = await scenario('diff');
    const r = await lifeboat(['diff', s.first, s.second, '--json']);
    if (!hasSqlite) {
      assert.equal(r.code, 1, r.stdout + r.stderr);
      assert.match(r.stderr, /needs SQLite in the runtime \(node:sqlite: Node 22\.13 or later, VS Code 1\.101 or later\)/);
      return;
    }
    assert.equal(r.code, 0, r.stderr);
    const d = JSON.parse(r.stdout) as Diff;
    assert.deepEqual(counts(d), EXPECTED_TABLES);
    assert.deepEqual(names(d.schema.added), ['index idx_new', 'table newt', 'view big']);
    assert.deepEqual(names(d.schema.removed), ['index idx_old', 'table oldt']);
    assert.deepEqual(d.schema.changed, []);

    // Against the live database (unchanged since the second backup): the same.
    const live = await lifeboat(['diff', s.first, '--live', s.db, '--json']);
    assert.equal(live.code, 0, live.stderr);
    assert.deepEqual(JSON.parse(live.stdout), d);
    const none = await lifeboat(['diff', s.second, '--live', s.db]);
    assert.equal(none.code, 0, none.stderr);
    assert.match(none.stdout, /no differences/);

    // --rows lists exactly those rows; --table one table only.
    const rows = await lifeboat(['diff', s.first, s.second, '--table', 'ipk', '--rows', '--json']);
    assert.equal(rows.code, 0, rows.stderr);
    const ipk = (JSON.parse(rows.stdout) as Diff).tables;
    assert.deepEqual(Object.keys(ipk), ['ipk']);
    assert.deepEqual(ipk.ipk.rows!.added, [{ id: 51, v: 'new51' }, { id: 52, v: 'new52' }, { id: 53, v: { $blob: '00ff' } }]);
    assert.deepEqual(ipk.ipk.rows!.removed, [{ id: 3, v: 'v3' }, { id: 4, v: 'v4' }]);
    assert.deepEqual(
      ipk.ipk.rows!.changed,
      [10, 11, 12, 13].map((id) => ({ old: { id, v: `v${id}` }, new: { id, v: 'changed' } })),
    );
    const plain = (JSON.parse((await lifeboat(['diff', s.first, s.second, '--table', 'plain', '--rows', '--json'])).stdout) as Diff).tables.plain.rows!;
    assert.deepEqual(plain.added, [{ a: 'p', b: 1, $count: 1 }, { a: 'r', b: 30, $count: 1 }, { a: 's', b: 4, $count: 1 }]);
    assert.deepEqual(plain.removed, [{ a: 'q', b: 2, $count: 1 }, { a: 'r', b: 3, $count: 1 }]);
    const comp = (JSON.parse((await lifeboat(['diff', s.first, s.second, '--table', 'comp', '--rows', '--limit', '2', '--json'])).stdout) as Diff).tables.comp;
    assert.equal(comp.changed, 3, 'the counts are not limited');
    assert.equal(comp.rows!.changed.length, 2, '--limit pages the rows');
    const page2 = (JSON.parse((await lifeboat(['diff', s.first, s.second, '--table', 'comp', '--rows', '--limit', '2', '--offset', '2', '--json'])).stdout) as Diff).tables.comp;
    assert.equal(page2.rows!.changed.length, 1);

    // A column added to a table: a changed table naming the column; the rows compared on the columns both have.
    sqlite(s.db, "ALTER TABLE textpk ADD COLUMN extra TEXT DEFAULT 'e';");
    const alt = JSON.parse((await lifeboat(['diff', s.second, '--live', s.db, '--json'])).stdout) as Diff;
    assert.deepEqual(alt.schema.changed, [{ type: 'table', name: 'textpk', columns: { added: ['extra'], removed: [], changed: [] } }]);
    assert.deepEqual(alt.tables.textpk, { added: 0, removed: 0, changed: 0, key: 'primary key (name)' });

    // The text form, and bad input: one clear error each, exit 2.
    const text = await lifeboat(['diff', s.first, s.second]);
    assert.match(text.stdout, /^ipk +\+3 -2 ~4 {2}by rowid \(id\)$/m);
    assert.match(text.stdout, /^\+ view big$/m);
    const missing = await lifeboat(['diff', s.first, s.second, '--table', 'nope']);
    assert.equal(missing.code, 2);
    assert.match(missing.stderr, /no table named nope/);
    assert.equal((await lifeboat(['diff', s.first])).code, 2);
    const badLimit = await lifeboat(['diff', s.first, s.second, '--limit', 'ten']);
    assert.equal(badLimit.code, 2);
    assert.match(badLimit.stderr, /--limit must be a whole number, not ten/);
    const noDb = await lifeboat(['diff', s.first, '--live', path.join(s.ws, 'nope.db')]);
    assert.equal(noDb.code, 1);
    assert.match(noDb.stderr, /nope\.db: no such database file/);
  });
});

describe('lifeboat restore --table', () => {
  test(hasSqlite ? "one table put back exactly, the others untouched, a pre-restore backup, the app's open connection sees it" : 'without node:sqlite: one clear error, nothing changed', async () => {
    const s = await scenario('table');
    const before = Object.fromEntries(['ipk', 'textpk', 'comp', 'wr', 'plain', 'audit'].map((n) => [n, sha3(s.db, n)]));
    if (!hasSqlite) {
      const r = await lifeboat(['restore', s.first, '--table', 'ipk']);
      assert.equal(r.code, 1, r.stdout + r.stderr);
      assert.match(r.stderr, /needs SQLite in the runtime/);
      assert.equal(sha3(s.db, 'ipk'), before.ipk);
      return;
    }
    // The backup's table, as an exported copy of the first backup holds it.
    const exported = path.join(s.ws, 'first-export.db');
    assert.equal((await lifeboat(['export', s.first, '--to', exported])).code, 0);
    const wanted = sha3(exported, 'ipk');
    assert.notEqual(wanted, before.ipk);

    // The app: a process holding the database open, reading ipk when asked.
    const app = spawn(process.execPath, ['-e', APP, s.db], { stdio: ['pipe', 'pipe', 'inherit'] });
    const ask = appReader(app);
    assert.equal(await ask('count'), '51', 'the app sees the changed table first');

    const r = await lifeboat(['restore', s.first, '--table', 'ipk', '--json']);
    assert.equal(r.code, 0, r.stderr);
    const out = JSON.parse(r.stdout) as { table: string; rows: number; before: number; preRestore: string; foreignKeyViolations: number; triggers: number };
    assert.equal(out.table, 'ipk');
    assert.equal(out.rows, 50);
    assert.equal(out.before, 51);
    assert.equal(out.triggers, 1);
    assert.equal(out.foreignKeyViolations, 0);
    assert.ok(existsSync(out.preRestore), out.preRestore);
    assert.equal(sha3(s.db, 'ipk'), wanted, 'ipk is exactly the backup\'s');
    for (const n of ['textpk', 'comp', 'wr', 'plain', 'audit']) assert.equal(sha3(s.db, n), before[n], `${n} is as it was (the delete trigger did not fire)`);
    assert.equal(await ask('count'), '50', "the app's open connection sees the restored table");
    app.stdin.end();
    // The pre-restore backup holds the state before: its ipk is the changed one.
    const preImage = path.join(s.ws, 'pre.db');
    assert.equal((await lifeboat(['export', out.preRestore, '--to', preImage])).code, 0);
    assert.equal(sha3(preImage, 'ipk'), before.ipk);
    const log = JSON.parse((await lifeboat(['log', '--dir', s.dir, '--json'])).stdout) as { op: string; message: string }[];
    assert.ok(log.some((e) => e.op === 'restore.table' && e.message.startsWith('restored table ipk of')), 'logged');

    // A table defined differently: refused, naming what differs; nothing changed, no backup made.
    sqlite(s.db, "ALTER TABLE textpk ADD COLUMN extra TEXT DEFAULT 'e';");
    const whole = sqlite(s.db, '.sha3sum').trim();
    const backupsBefore = (JSON.parse((await lifeboat(['list', '--dir', s.dir, '--json'])).stdout) as { backups: unknown[] }).backups.length;
    const refused = await lifeboat(['restore', s.first, '--table', 'textpk']);
    assert.equal(refused.code, 2, refused.stdout + refused.stderr);
    assert.match(refused.stderr, /table textpk is defined differently .*columns only the live table has: extra.*nothing was changed/);
    assert.equal(sqlite(s.db, '.sha3sum').trim(), whole);
    assert.equal((JSON.parse((await lifeboat(['list', '--dir', s.dir, '--json'])).stdout) as { backups: unknown[] }).backups.length, backupsBefore, 'no pre-restore backup for a refusal');
    // A table the backup does not have, and one the database does not have.
    const noTable = await lifeboat(['restore', s.first, '--table', 'newt']);
    assert.equal(noTable.code, 2);
    assert.match(noTable.stderr, /the backup has no table named newt; nothing was changed/);
    const gone = await lifeboat(['restore', s.first, '--table', 'oldt']);
    assert.equal(gone.code, 2);
    assert.match(gone.stderr, /has no table named oldt/);

    // A foreign key the restored rows break is reported, not hidden.
    sqlite(s.db, "INSERT INTO ipk(id, v) VALUES (52, 'again'); CREATE TABLE child(id INTEGER PRIMARY KEY, ipk_id INTEGER REFERENCES ipk(id)); INSERT INTO child VALUES (1, 52);");
    const fk = await lifeboat(['restore', s.first, '--table', 'ipk', '--json']);
    assert.equal(fk.code, 0, fk.stderr);
    const fkOut = JSON.parse(fk.stdout) as { foreignKeyViolations: number; firstViolations: { table: string; rowid: number; parent: string }[] };
    assert.equal(fkOut.foreignKeyViolations, 1);
    assert.deepEqual(fkOut.firstViolations, [{ table: 'child', rowid: 1, parent: 'ipk' }]);
    assert.equal(query<{ n: number }>(s.db, 'SELECT count(*) AS n FROM child')[0].n, 1, 'no cascade reached the child table');
  });
});

/** An app process: holds the database open with node:sqlite, answers "count" with ipk's rows. */
const APP = `
const { DatabaseSync } = require('node:sqlite');
const db = new DatabaseSync(process.argv[1]);
const rl = require('node:readline').createInterface({ input: process.stdin });
rl.on('line', () => process.stdout.write(String(db.prepare('SELECT count(*) AS n FROM ipk').get().n) + '\\n'));
rl.on('close', () => db.close());
`;

function appReader(app: ReturnType<typeof spawn>): (line: string) => Promise<string> {
  let buf = '';
  const waiting: ((s: string) => void)[] = [];
  app.stdout!.on('data', (d: Buffer) => {
    buf += d.toString();
    let i;
    while ((i = buf.indexOf('\n')) >= 0) {
      const line = buf.slice(0, i);
      buf = buf.slice(i + 1);
      waiting.shift()?.(line);
    }
  });
  return (line) =>
    new Promise((resolve) => {
      waiting.push(resolve);
      app.stdin!.write(`${line}\n`);
    });
}

// diffLiveWriter: `lifeboat diff <backup> --live <db>` while a real writer process keeps
// committing to the WAL database. The diff reads the live database where it lies, inside
// one read transaction, so its counts must be those of one committed state: the writer's
// transaction k updates two old rows, deletes one and inserts three in `acct` (which so
// grows), and adds one row to `log`, so any state shows acct's added, removed and changed
// at 3, 1 and 2 times log's added, and a read torn between two states would show a mix.
// The writer runs with busy_timeout 0: any lock the diff held in its way would fail one of
// its transactions with SQLITE_BUSY at once. A rollback-journal database is snapshotted
// instead (a reader's lock there makes commits wait): one state too, and a writer with a
// busy timeout, as apps on such databases have, never fails.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { nodeSqlite } from '../../src/core/sqlite/nodeSqlite';
import { ensureBuilt, lifeboat } from '../fixtures/cli';
import { sqlite, tempDir } from '../fixtures/sqlite';

before(() => ensureBuilt());

const t = tempDir('lifeboat-diff-live-');
after(() => t.cleanup());

const hasSqlite = !!nodeSqlite() && process.env.LIFEBOAT_SQLITE !== 'fallback';
const ROWS = 60_000;

/**
 * The writer: transaction k (from 1) updates acct rows 2k-1 and 2k, deletes row 30000 + k,
 * inserts rows 100000 + 3k - 2 to 100000 + 3k, and adds log row k. Answers each stdin line with the number of transactions committed; on stdin's
 * end it stops and prints "done <commits> <errors>" and the errors, one a line.
 */
const WRITER = `
const { DatabaseSync } = require('node:sqlite');
const db = new DatabaseSync(process.argv[1]);
db.exec('PRAGMA busy_timeout = ' + Number(process.argv[2]));
db.exec('PRAGMA synchronous = NORMAL');
let k = 0;
let stopped = false;
const errors = [];
const step = () => {
  if (stopped) return;
  const n = k + 1;
  try {
    db.exec('BEGIN IMMEDIATE');
    db.exec(\`UPDATE acct SET v = v + 1000000 WHERE id IN (\${2 * n - 1}, \${2 * n})\`);
    db.exec(\`DELETE FROM acct WHERE id = \${30000 + n}\`);
    db.exec(\`INSERT INTO acct(id, v, pad) VALUES (\${100000 + 3 * n - 2}, 1, 'new'), (\${100000 + 3 * n - 1}, 2, 'new'), (\${100000 + 3 * n}, 3, 'new')\`);
    db.exec(\`INSERT INTO log(id, k) VALUES (\${n}, \${n})\`);
    db.exec('COMMIT');
    k = n;
  } catch (e) {
    errors.push(String(e.message) + ' (errcode ' + e.errcode + ')');
    try { db.exec('ROLLBACK'); } catch {}
  }
  // Up to 14,000 transactions: the rows updated and deleted stay below 30,000 and 60,000.
  if (k < 14000) setImmediate(step);
};
const rl = require('node:readline').createInterface({ input: process.stdin });
rl.on('line', () => process.stdout.write(k + '\\n'));
rl.on('close', () => {
  stopped = true;
  db.close();
  process.stdout.write('done ' + k + ' ' + errors.length + '\\n' + errors.join('\\n') + '\\n');
});
step();
`;

interface TableCounts {
  added: number;
  removed: number;
  changed: number;
}

test(hasSqlite ? 'WAL: a diff against a database a writer commits to all along: the counts of one committed state, and the writer never waits' : 'without node:sqlite: one clear error naming what it needs', () => diffDuringWrites('wal', 0));

test(hasSqlite ? 'rollback journal: the same counts of one committed state; the writer, waiting up to 5 s for locks, never fails' : 'without node:sqlite (rollback journal): one clear error', () => diffDuringWrites('delete', 5000));

async function diffDuringWrites(mode: 'wal' | 'delete', writerBusyMs: number): Promise<void> {
  const ws = path.join(t.dir, mode);
  mkdirSync(ws);
  const db = path.join(ws, 'app.db');
  sqlite(
    db,
    `PRAGMA journal_mode=${mode};
CREATE TABLE acct(id INTEGER PRIMARY KEY, v INT, pad TEXT);
CREATE TABLE log(id INTEGER PRIMARY KEY, k INT);
WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i+1 FROM n WHERE i < ${ROWS})
INSERT INTO acct(id, v, pad) SELECT i, i, printf('%.200c', 'x') FROM n;`,
  );
  writeFileSync(path.join(ws, 'lifeboat.json'), JSON.stringify({ format: 'repository' }));
  const b = await lifeboat(['backup', db]);
  assert.equal(b.code, 0, b.stderr);
  const backup = b.stdout.trim().split('\n').at(-1)!;

  if (!hasSqlite) {
    const r = await lifeboat(['diff', backup, '--live', db, '--json']);
    assert.equal(r.code, 1, r.stdout + r.stderr);
    assert.match(r.stderr, /needs SQLite in the runtime/);
    return;
  }

  const writer = spawn(process.execPath, ['-e', WRITER, db, String(writerBusyMs)], { stdio: ['pipe', 'pipe', 'inherit'] });
  const lines: string[] = [];
  const waiting: ((s: string) => void)[] = [];
  let buf = '';
  writer.stdout.on('data', (d: Buffer) => {
    buf += d.toString();
    for (let i; (i = buf.indexOf('\n')) >= 0; ) {
      const line = buf.slice(0, i);
      buf = buf.slice(i + 1);
      const w = waiting.shift();
      if (w) w(line);
      else lines.push(line);
    }
  });
  const ask = () =>
    new Promise<number>((resolve) => {
      waiting.push((s) => resolve(Number(s)));
      writer.stdin.write('k\n');
    });
  const exited = new Promise<void>((resolve) => writer.once('exit', () => resolve()));
  try {
    // The writer is committing before the first diff starts.
    while ((await ask()) < 20) await new Promise((r) => setImmediate(r));
    let overlapped = 0;
    for (let run = 0; run < 3; run++) {
      const k0 = await ask();
      const r = await lifeboat(['diff', backup, '--live', db, '--json']);
      const k1 = await ask();
      assert.equal(r.code, 0, r.stderr);
      const d = JSON.parse(r.stdout) as { tables: Record<string, TableCounts> };
      const k = d.tables.log.added;
      assert.deepEqual(d.tables.log, { added: k, removed: 0, changed: 0, key: 'rowid (id)' });
      assert.deepEqual(d.tables.acct, { added: 3 * k, removed: k, changed: 2 * k, key: 'rowid (id)' }, `one committed state (log says ${k} transactions)`);
      assert.ok(k >= k0 && k <= k1, `the state read (${k}) is one the writer committed during the diff (${k0}..${k1})`);
      if (k1 > k0) overlapped++;
    }
    assert.ok(overlapped > 0, 'the writer committed while a diff ran');
  } finally {
    writer.stdin.end();
    await exited;
  }
  const done = lines.find((l) => l.startsWith('done '));
  assert.ok(done, lines.join('\n'));
  const [, commits, errors] = done.split(' ').map(Number);
  assert.ok(commits > 20, `${commits} commits`);
  assert.equal(errors, 0, `the writer's transactions failed: ${lines.slice(lines.indexOf(done) + 1).join('; ')}`);
}

// The app, for the benchmark: a process that commits to a database continuously, with no
// pause at all, through SQLite itself (node:sqlite, so run it with Node >= 22.13), and
// records when each commit returned. Each transaction inserts 3 ledger rows, rewrites 20
// random ones and adds 3 to counter.n (counter.n starts as the ledger's row count), so an image is consistent only
// if `SELECT count(*) FROM ledger` equals `SELECT n FROM counter`. In WAL mode it runs
// with wal_autocheckpoint=20 and a TRUNCATE checkpoint every 40 commits (a blocking
// checkpoint: it waits for readers), busy_timeout 10 s, synchronous OFF (so that the
// disk's flush latency does not hide what the locks cost).
//
//   node bench/writer.mjs <db> <wal|delete> <stopFile> <timesOut>
//
// Prints "ready" after the first 50 commits; stops when <stopFile> exists, writes the
// commit times (epoch ms, Float64 little-endian) to <timesOut>, exits 0. Any SQLite error
// (a COMMIT that waited 10 s in vain) ends it non-zero.
import { existsSync, writeFileSync } from 'node:fs';
import { DatabaseSync } from 'node:sqlite';

const [db, mode, stopFile, timesOut] = process.argv.slice(2);
const conn = new DatabaseSync(db);
conn.exec('PRAGMA busy_timeout = 10000');
conn.exec(`PRAGMA journal_mode = ${mode === 'wal' ? 'WAL' : 'DELETE'}`);
conn.exec('PRAGMA synchronous = OFF');
if (mode === 'wal') conn.exec('PRAGMA wal_autocheckpoint = 20');
conn.exec(`CREATE TABLE IF NOT EXISTS ledger(id INTEGER PRIMARY KEY, note BLOB);
CREATE TABLE IF NOT EXISTS counter(id INTEGER PRIMARY KEY CHECK (id = 1), n INTEGER NOT NULL);
INSERT OR IGNORE INTO counter SELECT 1, count(*) FROM ledger;`);
const insert = conn.prepare('INSERT INTO ledger(note) VALUES (randomblob(?))');
const rewrite = conn.prepare('UPDATE ledger SET note = randomblob(?) WHERE id = ?');
const count = conn.prepare('UPDATE counter SET n = n + 3');

let maxId = Number(conn.prepare('SELECT coalesce(max(id), 0) AS m FROM ledger').get().m);
let times = new Float64Array(1 << 16);
let commits = 0;
for (;;) {
  conn.exec('BEGIN IMMEDIATE');
  for (let i = 0; i < 3; i++) maxId = Number(insert.run(50 + Math.floor(Math.random() * 400)).lastInsertRowid);
  for (let i = 0; i < 20; i++) rewrite.run(50 + Math.floor(Math.random() * 400), 1 + Math.floor(Math.random() * maxId));
  count.run();
  conn.exec('COMMIT');
  if (commits === times.length) {
    const grown = new Float64Array(times.length * 2);
    grown.set(times);
    times = grown;
  }
  times[commits++] = performance.timeOrigin + performance.now();
  if (mode === 'wal' && commits % 40 === 0) conn.exec('PRAGMA wal_checkpoint(TRUNCATE)');
  if (commits === 50) process.stdout.write('ready\n');
  if (commits % 20 === 0 && existsSync(stopFile)) break;
}
conn.close();
writeFileSync(timesOut, Buffer.from(times.buffer, 0, commits * 8));

// Helpers shared by the benches (bench/incremental.mjs, bench/offsite.mjs): the cached
// base database, the 1% change, CLI backups under /usr/bin/time, and formatting.
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, readdirSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import path from 'node:path';

export const work = path.resolve('bench/data');
export const NODE24 = path.resolve('.cache/node24/node_modules/.bin/node');
export const CLI = path.resolve('dist/cli.js');
/** Share of the pages one change (between the two backups, or one simulated day) aims to rewrite. */
export const CHANGE = 0.01;

export function sql(file, text) {
  execFileSync('sqlite3', [file], { input: text, stdio: ['pipe', 'ignore', 'inherit'] });
}
export function query(file, text) {
  return execFileSync('sqlite3', [file, text], { encoding: 'utf8' }).trim();
}

/** Runs a command under /usr/bin/time; returns seconds, peak RSS in MB and stdout. */
export function timed(cmd, args, opts = {}) {
  const r = spawnSync('/usr/bin/time', ['-f', '%e %M', cmd, ...args], { encoding: 'utf8', maxBuffer: 1 << 26, ...opts });
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')} failed (${r.status}): ${r.stderr.trim().split('\n').slice(-4).join(' | ')}`);
  const [secs, kb] = r.stderr.trim().split('\n').at(-1).split(' ');
  return { s: Number(secs), rssMB: Number(kb) / 1024, stdout: r.stdout };
}

export const onDisk = (db) => statSync(db).size + (existsSync(`${db}-wal`) ? statSync(`${db}-wal`).size : 0);

/** Copies a database with its WAL (and no -shm: the copy rebuilds it). */
export function copyDb(from, to) {
  for (const s of ['', '-wal', '-shm']) rmSync(to + s, { force: true });
  execFileSync('cp', [from, to]);
  if (existsSync(`${from}-wal`)) execFileSync('cp', [`${from}-wal`, `${to}-wal`]);
}

/** The cached base database of `mb` MB in bench/data (git-ignored), built once: rows like app data, two indexes. */
export function baseDb(mb) {
  const db = path.join(work, `incr-${mb}.db`);
  if (existsSync(db) && onDisk(db) >= mb * 1024 * 1024 * 0.9) return db;
  const building = `${db}.building`;
  for (const s of ['', '-wal', '-shm']) rmSync(building + s, { force: true });
  console.log(`building ${path.relative(process.cwd(), db)} (${mb} MB, WAL mode) ...`);
  // The same rows as bench/backup.mjs: text that compresses, hex ids, some incompressible blobs.
  // About 560 bytes a row on disk, indexes included.
  const batches = Math.ceil((mb * 1024 * 1024) / (20000 * 560));
  let script = `PRAGMA journal_mode=WAL;
CREATE TABLE events(id INTEGER PRIMARY KEY, user TEXT, kind TEXT, body TEXT, payload BLOB, at TEXT);
CREATE INDEX events_user ON events(user);
CREATE INDEX events_at ON events(at);\n`;
  for (let i = 0; i < batches; i++) {
    script += `WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i+1 FROM n WHERE i < 20000)
INSERT INTO events(user, kind, body, payload, at) SELECT 'user' || (abs(random()) % 5000), 'kind' || (i % 17),
 'event ' || i || ' ' || hex(randomblob(60)) || ' lorem ipsum dolor sit amet consectetur adipiscing elit sed do eiusmod tempor',
 randomblob(250), datetime(1700000000 + i * 37, 'unixepoch') FROM n;\n`;
  }
  sql(building, script);
  renameSync(building, db);
  return db;
}

/** A PRNG with a seed, so that every run (and both runtimes) makes the same changes. */
export function mulberry32(seed) {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/**
 * Rewrites about CHANGE of `db`'s pages, the way an app's edits land: scattered rows get
 * a new kind and the tail of their body (same length: updated in place), and one in ten
 * also a new user, which moves its entry in the events_user index. Each updated row
 * rewrites its table page, an index move about two index pages; `seed` picks the rows.
 * `keepWal` leaves the commit in the WAL (no checkpoint, as a live app between checkpoints).
 */
export function change(db, seed, keepWal) {
  const [maxId, pages] = query(db, 'SELECT max(id), (SELECT page_count FROM pragma_page_count) FROM events').split('|').map(Number);
  const rows = Math.round((pages * CHANGE) / 1.2);
  const rnd = mulberry32(seed);
  const ids = new Set();
  while (ids.size < rows) ids.add(1 + Math.floor(rnd() * maxId));
  const all = [...ids];
  const movers = all.filter((_, i) => i % 10 === 0);
  const tag = String(seed % 1e8).padStart(8, '0');
  sql(
    db,
    `${keepWal ? '.dbconfig no_ckpt_on_close on\nPRAGMA wal_autocheckpoint=0;\n' : ''}BEGIN;
UPDATE events SET kind = 'edited', body = substr(body, 1, length(body) - 8) || '${tag}' WHERE id IN (${all.join(',')});
UPDATE events SET user = 'user' || ((CAST(substr(user, 5) AS INTEGER) + 1 + ${seed % 97}) % 5000) WHERE id IN (${movers.join(',')});
COMMIT;\n`,
  );
  return rows;
}

/** Bytes of every file under `dir`. */
export function dirBytes(dir) {
  let n = 0;
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = path.join(dir, e.name);
    n += e.isDirectory() ? dirBytes(p) : statSync(p).size;
  }
  return n;
}

/** What `lifeboat list --json` says of each backup in `dir`, by id. */
export function listed(rt, dir) {
  const out = JSON.parse(execFileSync(rt.exe, [CLI, 'list', '--dir', dir, '--json'], { encoding: 'utf8' }));
  return new Map(out.backups.map((b) => [b.id, b]));
}

/** One CLI backup under /usr/bin/time: its seconds, peak RSS, id and stored bytes. */
export function cliBackup(rt, db, dir) {
  const r = timed(rt.exe, [CLI, 'backup', db, '--dir', dir, '--json']);
  const m = JSON.parse(r.stdout);
  const b = listed(rt, dir).get(m.id);
  return { s: r.s, rssMB: r.rssMB, id: m.id, path: b.path, storedBytes: b.storedBytes, addedPages: m.repository?.added.pages, unchangedFrom: m.repository?.unchangedFrom };
}

export const setFormat = (db, format) => writeFileSync(path.join(path.dirname(db), 'lifeboat.json'), JSON.stringify({ format }) + '\n');

export const MB = (b) => `${(b / 1048576).toFixed(b < 10 * 1048576 ? 2 : 1)} MB`;
export const KB = (b) => (b < 1048576 ? `${(b / 1024).toFixed(1)} KB` : MB(b));
export const pct = (x) => `${(x * 100).toFixed(2)}%`;
export const secs = (s) => `${s.toFixed(2)} s`;

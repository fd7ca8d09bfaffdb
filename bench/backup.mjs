// `npm run bench [-- --large]`: builds a 256 MB WAL database (1 GB with --large), then
// measures, in one run, Lifeboat's backup against native tools doing the same work:
// cp (the copy limit), sqlite3 VACUUM INTO, gzip -1, sqlite3 PRAGMA integrity_check.
// Prints each step's time, peak RSS, and the ratios the issue sets targets for.
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, rmSync, statSync } from 'node:fs';
import path from 'node:path';

const large = process.argv.includes('--large');
const targetMB = large ? 1024 : 256;
const work = path.resolve('bench/data');
mkdirSync(work, { recursive: true });
const db = path.join(work, `bench-${targetMB}.db`);

for (const tool of ['sqlite3', 'gzip', 'cp', '/usr/bin/time']) {
  if (spawnSync('sh', ['-c', `command -v ${tool}`]).status !== 0) {
    console.error(`bench needs ${tool} (Debian: apt-get install sqlite3 gzip coreutils time)`);
    process.exit(1);
  }
}

// dist/bench-child.js is built by esbuild.mjs (`npm run bench` runs it first), bundled like the CLI.

function sql(file, text) {
  execFileSync('sqlite3', [file], { input: text, stdio: ['pipe', 'ignore', 'inherit'] });
}

if (!existsSync(db) || statSync(db).size < targetMB * 1024 * 1024 * 0.9) {
  rmSync(db, { force: true });
  console.log(`building ${path.relative(process.cwd(), db)} (${targetMB} MB, WAL mode) ...`);
  // Rows shaped like app data: text that compresses, hex ids, some incompressible blobs.
  const batches = Math.ceil((targetMB * 1024 * 1024) / (20000 * 700));
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
  sql(db, script);
}
// Leave committed frames in the WAL, as a live app would.
sql(db, `.dbconfig no_ckpt_on_close on\nPRAGMA wal_autocheckpoint=0;\nUPDATE events SET kind = 'touched' WHERE id % 50 = 0;\n`);

const dbMB = (statSync(db).size + (existsSync(`${db}-wal`) ? statSync(`${db}-wal`).size : 0)) / 1048576;

/** Runs a command under /usr/bin/time; returns seconds and peak RSS in MB. */
function timed(cmd, args, opts = {}) {
  const r = spawnSync('/usr/bin/time', ['-f', '%e %M', cmd, ...args], { encoding: 'utf8', maxBuffer: 1 << 26, ...opts });
  if (r.status !== 0) throw new Error(`${cmd} failed: ${r.stderr}`);
  const [secs, kb] = r.stderr.trim().split('\n').at(-1).split(' ');
  return { s: Number(secs), rssMB: Number(kb) / 1024, stdout: r.stdout };
}

const scratch = path.join(work, 'scratch');
rmSync(scratch, { recursive: true, force: true });
mkdirSync(scratch);
// Warm the page cache the same way for everyone.
timed('sh', ['-c', `cat '${db}' > /dev/null`]);

const cp = timed('cp', [db, path.join(scratch, 'copy.db')]);
const vacuumed = path.join(scratch, 'vacuum.db');
// VACUUM INTO on a copy, so that the sqlite3 shell's close does not checkpoint the bench database.
execFileSync('cp', [db, path.join(scratch, 'src.db')]);
if (existsSync(`${db}-wal`)) execFileSync('cp', [`${db}-wal`, path.join(scratch, 'src.db-wal')]);
const vac = timed('sqlite3', [path.join(scratch, 'src.db'), `VACUUM INTO '${vacuumed}'`]);
const gz = timed('sh', ['-c', `gzip -1 -c '${vacuumed}' > '${vacuumed}.gz'`]);
const ic = timed('sqlite3', [vacuumed, 'PRAGMA integrity_check']);
const native = vac.s + gz.s + ic.s;

function child(mode) {
  const dir = path.join(scratch, mode);
  mkdirSync(dir, { recursive: true });
  const r = timed(process.execPath, ['dist/bench-child.js', mode, db, dir]);
  return { ...JSON.parse(r.stdout.trim().split('\n').at(-1)), rssMB: r.rssMB };
}
const full = child('backup');
const nover = child('noverify');
rmSync(scratch, { recursive: true, force: true });

const row = (step, s, rss, ratio = '') => console.log(`| ${step.padEnd(44)} | ${s.toFixed(2).padStart(7)} | ${rss.toFixed(0).padStart(8)} | ${ratio.padStart(8)} |`);
console.log(`\nLifeboat backup benchmark: ${dbMB.toFixed(0)} MB WAL database, ${new Date().toISOString()}\n`);
console.log('| step                                         |  time s | peak MB  |   ratio  |');
console.log('|----------------------------------------------|---------|----------|----------|');
row('cp (the copy limit)', cp.s, cp.rssMB);
row('sqlite3 VACUUM INTO', vac.s, vac.rssMB);
row('gzip -1', gz.s, gz.rssMB);
row('sqlite3 PRAGMA integrity_check', ic.s, ic.rssMB);
row('native pipeline (VACUUM INTO + gzip -1 + check)', native, Math.max(vac.rssMB, gz.rssMB, ic.rssMB), '1.00x');
row('lifeboat backup (snapshot+compress+verify)', full.ms / 1000, full.rssMB, `${(full.ms / 1000 / native).toFixed(2)}x`);
row('lifeboat backup, verifier aside', nover.ms / 1000, nover.rssMB, `${(nover.ms / 1000 / cp.s).toFixed(1)}x cp`);
console.log(`\nphases of the backup (start times, ms): ${full.phases.map((p) => `${p.phase} ${p.atMs}`).join(', ')}, done ${Math.round(full.ms)}`);
console.log(`longest event-loop stall during the backup: ${full.maxStallMs.toFixed(1)} ms (target <= 50 ms)`);
console.log(`backup time / native pipeline: ${(full.ms / 1000 / native).toFixed(2)}x (target <= 0.8x)`);
console.log(`peak RSS, verifier aside: ${nover.rssMB.toFixed(0)} MB (target <= 150 MB); with the verifier: ${full.rssMB.toFixed(0)} MB`);

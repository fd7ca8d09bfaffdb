// `npm run bench [-- --large]`: builds a 256 MB WAL database (1 GB with --large), then
// measures, in one run, Lifeboat's backup against native tools doing the same work:
// cp (the copy limit), sqlite3 VACUUM INTO, gzip -1, sqlite3 PRAGMA integrity_check.
// Lifeboat runs under Node 24 (node:sqlite: SQLite's backup() under its read lock) and
// under this Node (20: the lock-free reader). Then, with an app committing continuously
// (bench/writer.mjs, no pause at all), it measures the app's longest gap between commits
// during a Lifeboat backup against the same during `sqlite3 VACUUM INTO`, and counts
// consistent and busy hot backups in WAL and rollback mode.
// Prints each step's time, peak RSS, and the ratios the issue sets targets for.
// `npm run bench -- --incremental` runs bench/incremental.mjs instead (format v2: a pair of
// backups 1% apart, an unchanged one, restores, simulated days of rotation).
// `npm run bench -- --offsite` runs bench/offsite.mjs (push to a real S3 server, restore from
// it, against rclone).
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import path from 'node:path';

if (process.argv.includes('--incremental')) {
  await import('./incremental.mjs');
  process.exit(0);
}
if (process.argv.includes('--offsite')) {
  await import('./offsite.mjs');
  process.exit(0);
}

const large = process.argv.includes('--large');
// `--mb N` sizes the database otherwise (a quick check of the bench itself).
const mbAt = process.argv.indexOf('--mb');
const targetMB = mbAt > 0 ? Number(process.argv[mbAt + 1]) : large ? 1024 : 256;
const work = path.resolve('bench/data');
mkdirSync(work, { recursive: true });
const db = path.join(work, `bench-${targetMB}.db`);
const NODE24 = path.resolve('.cache/node24/node_modules/.bin/node');
const has24 = existsSync(NODE24) && spawnSync(NODE24, ['-e', "if (typeof require('node:sqlite').backup !== 'function') process.exit(1)"]).status === 0;
if (!has24) console.error(`bench: ${NODE24} with node:sqlite backup() is missing (scripts/vscode/setup.sh installs it): node:sqlite rows and the writer runs are left out`);
const hotCount = 10;

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

// The main file plus its WAL: the bench leaves committed frames in the WAL.
const onDisk = () => statSync(db).size + (existsSync(`${db}-wal`) ? statSync(`${db}-wal`).size : 0);
if (!existsSync(db) || onDisk() < targetMB * 1024 * 1024 * 0.9) {
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

const runtimes = [
  ...(has24 ? [{ name: 'node24', exe: NODE24, label: `Node ${spawnSync(NODE24, ['-p', 'process.versions.node'], { encoding: 'utf8' }).stdout.trim()}` }] : []),
  { name: 'node20', exe: process.execPath, label: `Node ${process.versions.node}` },
];

/** Runs one bench-child operation; returns its measurements, or { error } when it failed. */
function child(rt, mode, source, extra = []) {
  const dir = path.join(scratch, `${rt.name}-${mode}`);
  rmSync(dir, { recursive: true, force: true });
  mkdirSync(dir, { recursive: true });
  try {
    const r = timed(rt.exe, ['dist/bench-child.js', mode, source, dir, ...extra]);
    return { ...JSON.parse(r.stdout.trim().split('\n').at(-1)), rssMB: r.rssMB };
  } catch (e) {
    return { error: String(e.message).split('\n').find((l) => /Error/.test(l)) ?? String(e.message).slice(0, 200) };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

const lifeboat = runtimes.map((rt) => ({ rt, full: child(rt, 'backup', db), nover: child(rt, 'noverify', db) }));

const epochNow = () => performance.timeOrigin + performance.now();

/**
 * Starts bench/writer.mjs on `file` (a copy: the writer changes it), runs the steps while
 * it commits, `rounds` times in turn (step 1, step 2, ..., step 1, ...: every step meets the
 * database at the same sizes, which grows while the writer runs), stops it, and returns per
 * step the writer's longest gap between commits that overlaps any of its runs, with the
 * steps' results merged; `quiet` is the longest gap in a stretch with no step running, as
 * long as the longest run.
 */
async function underWriter(file, mode, steps, rounds = 1) {
  const stop = `${file}.stop`;
  const times = `${file}.times`;
  rmSync(stop, { force: true });
  const w = spawn(NODE24, ['bench/writer.mjs', file, mode, stop, times], { stdio: ['ignore', 'pipe', 'inherit'] });
  const exited = new Promise((resolve) => w.once('exit', resolve));
  await new Promise((resolve, reject) => {
    w.stdout.on('data', (d) => String(d).includes('ready') && resolve());
    void exited.then((code) => reject(new Error(`the writer exited early (${code})`)));
  });
  const out = steps.map((s) => ({ label: s.label, windows: [], results: [] }));
  let longest = 0;
  for (let round = 0; round < rounds; round++) {
    for (const [i, step] of steps.entries()) {
      // The writer alone for a moment first, so that a pause one run caused is not counted for the next.
      await new Promise((resolve) => setTimeout(resolve, 500));
      const t0 = epochNow();
      const result = step.run();
      const t1 = epochNow();
      longest = Math.max(longest, t1 - t0);
      out[i].windows.push([t0, t1]);
      out[i].results.push(result);
    }
  }
  // The quiet stretch: the writer alone (a wait on the clock is what is measured here).
  const q0 = epochNow();
  await new Promise((resolve) => setTimeout(resolve, Math.min(longest, 20000)));
  const q1 = epochNow();
  writeFileSync(stop, '');
  const code = await exited;
  if (code !== 0) throw new Error(`the writer failed (exit ${code}): a COMMIT waited 10 s in vain`);
  const buf = readFileSync(times);
  const t = new Float64Array(buf.buffer, buf.byteOffset, buf.length / 8);
  const gap = (a, b) => {
    let max = 0;
    for (let i = 1; i < t.length; i++) if (t[i] > a && t[i - 1] < b) max = Math.max(max, t[i] - t[i - 1]);
    return max;
  };
  rmSync(stop, { force: true });
  rmSync(times, { force: true });
  const steps2 = out.map((s) => ({ label: s.label, gapMs: Math.max(...s.windows.map(([a, b]) => gap(a, b))), result: mergeResults(s.results) }));
  return { steps: steps2, quietMs: gap(q0, q1), commitsPerSec: t.length / ((t.at(-1) - t[0]) / 1000) };
}

/** One result for a step run several times: the first error, else the hot counts summed. */
function mergeResults(results) {
  const failed = results.find((r) => r.error);
  if (failed) return failed;
  const hot = results.filter((r) => r.hot);
  if (!hot.length) return results[0];
  const sum = { consistent: 0, inconsistent: 0, busy: 0, problems: [] };
  for (const { hot: h } of hot) {
    sum.consistent += h.consistent;
    sum.inconsistent += h.inconsistent;
    sum.busy += h.busy;
    sum.problems.push(...h.problems);
  }
  return { ...results[0], hot: sum };
}

/**
 * The steps run under the writer, each once per round: `sqlite3 VACUUM INTO`, then one
 * Lifeboat backup under each runtime; `n` is the number of rounds, only for the labels.
 */
function writerSteps(file, n, lifeboatMode) {
  const vac = path.join(scratch, 'writer-vacuum.db');
  const times = n > 1 ? ` x${n}` : '';
  return [
    {
      label: `sqlite3 VACUUM INTO${times}`,
      run: () => {
        rmSync(vac, { force: true });
        execFileSync('sqlite3', ['-cmd', '.timeout 10000', file, `VACUUM INTO '${vac}'`]);
        rmSync(vac, { force: true });
        return {};
      },
    },
    ...runtimes.map((rt) => ({ label: `lifeboat backup${times}, ${rt.label}`, run: () => child(rt, lifeboatMode, file, lifeboatMode === 'hot' ? ['1'] : []) })),
  ];
}

let live;
let hot = [];
if (has24) {
  // The 256 MB database itself (a copy), written to while it is backed up.
  const liveDb = path.join(scratch, 'live.db');
  execFileSync('cp', [db, liveDb]);
  if (existsSync(`${db}-wal`)) execFileSync('cp', [`${db}-wal`, `${liveDb}-wal`]);
  live = await underWriter(liveDb, 'wal', writerSteps(liveDb, 1, 'backup'));
  // Hot backups, both journal modes, a 32 MB database.
  for (const mode of ['wal', 'delete']) {
    const small = path.join(scratch, `hot-${mode}.db`);
    sql(small, `PRAGMA journal_mode=${mode === 'wal' ? 'WAL' : 'DELETE'};
CREATE TABLE ledger(id INTEGER PRIMARY KEY, note BLOB);
CREATE TABLE counter(id INTEGER PRIMARY KEY CHECK (id = 1), n INTEGER NOT NULL);
WITH RECURSIVE k(i) AS (SELECT 1 UNION ALL SELECT i+1 FROM k WHERE i < 100000) INSERT INTO ledger(note) SELECT randomblob(300) FROM k;
INSERT INTO counter SELECT 1, count(*) FROM ledger;\n`);
    hot.push({ mode, ...(await underWriter(small, mode, writerSteps(small, hotCount, 'hot'), hotCount)) });
  }
}
rmSync(scratch, { recursive: true, force: true });

const row = (step, s, rss, ratio = '') => console.log(`| ${step.padEnd(52)} | ${s.toFixed(2).padStart(7)} | ${rss.toFixed(0).padStart(8)} | ${ratio.padStart(9)} |`);
const load = readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).join(' ');
console.log(`\nLifeboat backup benchmark: ${dbMB.toFixed(0)} MB WAL database, ${new Date().toISOString()}, load average ${load}\n`);
console.log('| step                                                 |  time s | peak MB  |   ratio   |');
console.log('|------------------------------------------------------|---------|----------|-----------|');
row('cp (the copy limit)', cp.s, cp.rssMB);
row('sqlite3 VACUUM INTO', vac.s, vac.rssMB);
row('gzip -1', gz.s, gz.rssMB);
row('sqlite3 PRAGMA integrity_check', ic.s, ic.rssMB);
row('native pipeline (VACUUM INTO + gzip -1 + check)', native, Math.max(vac.rssMB, gz.rssMB, ic.rssMB), '1.00x');
for (const { rt, full, nover } of lifeboat) {
  if (full.error) console.log(`| lifeboat backup, ${rt.label}: FAILED ${full.error}`);
  else row(`lifeboat backup, ${rt.label} (${full.strategy})`, full.ms / 1000, full.rssMB, `${(full.ms / 1000 / native).toFixed(2)}x`);
  if (nover.error) console.log(`| lifeboat backup, verifier aside, ${rt.label}: FAILED ${nover.error}`);
  else row(`  verifier aside (${nover.strategy})`, nover.ms / 1000, nover.rssMB, `${(nover.ms / 1000 / cp.s).toFixed(1)}x cp`);
}
for (const { rt, full, nover } of lifeboat) {
  if (full.error || nover.error) continue;
  console.log(`\n${rt.label} (${full.strategy}):`);
  console.log(`  phases of the backup (start times, ms): ${full.phases.map((p) => `${p.phase} ${p.atMs}`).join(', ')}, done ${Math.round(full.ms)}`);
  console.log(`  longest event-loop stall during the backup: ${full.maxStallMs.toFixed(1)} ms (target <= 50 ms)`);
  console.log(`  backup time / native pipeline: ${(full.ms / 1000 / native).toFixed(2)}x (target <= 0.8x)`);
  console.log(`  peak RSS of the whole backup, verification included: ${full.rssMB.toFixed(0)} MB (target <= 200 MB on the node:sqlite path); verifier aside: ${nover.rssMB.toFixed(0)} MB`);
}

const gapTable = (title, run) => {
  const base = run.steps[0];
  console.log(`\n${title} (the app commits ${run.commitsPerSec.toFixed(0)}/s; its longest gap with nothing else running: ${run.quietMs.toFixed(0)} ms)\n`);
  console.log('| while                                                 | app\'s longest gap ms | vs VACUUM INTO | result                |');
  console.log('|-------------------------------------------------------|----------------------|----------------|-----------------------|');
  for (const s of run.steps) {
    const r = s.result;
    const what = r.error ? (/too busy/.test(r.error) ? 'busy (database too busy)' : `FAILED ${r.error}`.slice(0, 60)) : r.hot ? `${r.hot.consistent} consistent, ${r.hot.busy} busy${r.hot.inconsistent ? `, ${r.hot.inconsistent} INCONSISTENT` : ''}` : r.strategy ? `ok (${r.strategy})` : 'ok';
    console.log(`| ${s.label.padEnd(53)} | ${s.gapMs.toFixed(0).padStart(20)} | ${s === base ? '1.00x'.padStart(14) : `${(s.gapMs / base.gapMs).toFixed(2)}x`.padStart(14)} | ${what.padEnd(21)} |`);
    if (r.hot?.problems?.length) console.log(`    ${r.hot.problems.slice(0, 3).join('; ')}`);
  }
};
if (live) gapTable(`The app's longest pause during one backup of the ${dbMB.toFixed(0)} MB WAL database (target: Lifeboat on node:sqlite <= 1.5x VACUUM INTO)`, live);
for (const h of hot) gapTable(`Hot backups of a 32 MB ${h.mode === 'wal' ? 'WAL' : 'rollback-journal'} database, ${hotCount} of each in turn, the app never pausing`, h);

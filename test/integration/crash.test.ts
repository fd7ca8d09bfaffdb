import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { copyFileSync, existsSync, mkdirSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { checkArchive } from '../../src/core/archive/archiveReader';
import { prng } from '../fixtures/archive';
import { restoreInUseSupport } from '../../src/core/restore/inUse';
import { startApp } from '../fixtures/appProcess';
import { pinZip, snapshotPath, zipPath } from '../fixtures/backupFiles';
import { CLI, ensureBuilt, lifeboat } from '../fixtures/cli';
import { dumpHash, leaveWalFrames, makeDb, query, sqlite, tempDir } from '../fixtures/sqlite';

const support = restoreInUseSupport();
const SQLITE_PATH_SKIP = support.ok ? false : `needs node:sqlite with backup() (Node >= 22.16) in the runtime that runs the CLI: ${support.why}`;
if (SQLITE_PATH_SKIP) console.log(`crash: SKIPPING the restore crash test of the node:sqlite path: ${SQLITE_PATH_SKIP}`);


const sha = (f: string) => createHash('sha256').update(readFileSync(f)).digest('hex');

/** Runs the CLI and SIGKILLs it after `ms`; resolves with how it ended. */
function runAndKill(args: string[], ms: number): Promise<{ killed: boolean; code: number | null }> {
  return new Promise((resolve) => {
    const p = spawn(process.execPath, [CLI, ...args], { stdio: 'ignore' });
    const t = setTimeout(() => p.kill('SIGKILL'), ms);
    p.on('exit', (code, signal) => {
      clearTimeout(t);
      resolve({ killed: signal === 'SIGKILL', code });
    });
  });
}

async function timed(args: string[]): Promise<number> {
  const start = Date.now();
  const r = await lifeboat(args);
  assert.equal(r.code, 0, r.stderr);
  return Date.now() - start;
}

/** Every .zip in the directory must be a complete, intact archive. */
async function assertNoPartialArchives(dir: string): Promise<number> {
  const zips = existsSync(dir) ? readdirSync(dir).filter((n) => n.endsWith('.zip')) : [];
  for (const z of zips) {
    const c = await checkArchive(path.join(dir, z));
    assert.ok(c.ok, `${z} looks complete but is not: ${c.problems.join('; ')}`);
  }
  return zips.length;
}

before(() => ensureBuilt());

/** Kills that must land mid-run, per operation; runs that finish before their kill come on top. */
const KILLS = Number(process.env.LIFEBOAT_CRASH_KILLS ?? 30);
// Fewer kills than this would pass without exercising much: a typo or 0 must not silently weaken the test.
if (!Number.isInteger(KILLS) || KILLS < 5) throw new Error(`LIFEBOAT_CRASH_KILLS must be a whole number >= 5 (got ${process.env.LIFEBOAT_CRASH_KILLS})`);
const MAX_RUNS = KILLS * 3;

describe('crash tests: backup killed at random moments', () => {
  const t = tempDir();
  after(() => t.cleanup());

  test(`backup killed ${KILLS} times: no complete-looking partial archive, the next run succeeds`, async () => {
    const rnd = prng(0xb4c0);
    // Format v1: every .zip must be whole (format v2's kills: crashRepo.test.ts).
    pinZip(t.dir);
    const db = path.join(t.dir, 'app.db');
    makeDb(db, { wal: true, rows: 3000 });
    sqlite(db, 'UPDATE items SET data = randomblob(1500);');
    const dir = path.join(t.dir, 'backups');
    const full = await timed(['backup', db, '--dir', dir]);
    let killed = 0;
    let runs = 0;
    for (; killed < KILLS && runs < MAX_RUNS; runs++) {
      const r = await runAndKill(['backup', db, '--dir', dir], Math.floor(rnd() * full * 1.1));
      if (r.killed) killed++;
      await assertNoPartialArchives(dir);
    }
    const next = await lifeboat(['backup', db, '--dir', dir]);
    assert.equal(next.code, 0, next.stderr);
    const n = await assertNoPartialArchives(dir);
    assert.ok(n >= 2, `the first and the last run made archives (${n})`);
    // The temp files of killed runs are cleaned by the next run.
    const tmp = path.join(dir, '.lifeboat', 'tmp');
    assert.deepEqual(existsSync(tmp) ? readdirSync(tmp) : [], []);
    console.log(`backup crash test: ${runs} runs, ${killed} killed mid-run, ${n} intact archives, 0 partial`);
    assert.equal(killed, KILLS, `only ${killed} of ${runs} runs were killed before finishing`);
  });
});

/** How a CLI run ended. */
interface Ended {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

/** Runs the CLI with extra environment and resolves with how it ended. */
function runCli(args: string[], env: NodeJS.ProcessEnv = {}): Promise<Ended> {
  return new Promise((resolve) => {
    const p = spawn(process.execPath, [CLI, ...args], { env: { ...process.env, ...env } });
    let stdout = '';
    let stderr = '';
    p.stdout.on('data', (d) => (stdout += d));
    p.stderr.on('data', (d) => (stderr += d));
    p.on('close', (code, signal) => resolve({ code, signal, stdout, stderr }));
  });
}

/** One line of LIFEBOAT_CRASH_TRACE: `<n> <op> <path>`. */
interface TracePoint {
  n: number;
  op: string;
  file: string;
}

function readTrace(file: string): TracePoint[] {
  return readFileSync(file, 'utf8')
    .split('\n')
    .filter((l) => l.length > 0)
    .map((l) => {
      const m = /^(\d+) (\S+) (.*)$/.exec(l);
      assert.ok(m, `a trace line: ${l}`);
      return { n: Number(m[1]), op: m[2], file: m[3] };
    });
}

/**
 * The logical content of a database as SQLite would open it now, taken from copies of its
 * files (main, -wal, -journal; SQLite rebuilds the -shm), so that looking does not
 * checkpoint, recover or otherwise change the files the next run finds.
 */
function contentOf(db: string, scratch: string): string {
  rmSync(scratch, { recursive: true, force: true });
  mkdirSync(scratch);
  const probe = path.join(scratch, 'probe.db');
  for (const side of ['', '-wal', '-journal']) if (existsSync(db + side)) copyFileSync(db + side, probe + side);
  assert.equal(sqlite(probe, 'PRAGMA integrity_check;').trim(), 'ok', 'the database opens and is intact');
  return dumpHash(probe);
}

/**
 * After a kill: every backup `lifeboat list` shows in `dir` verifies with `lifeboat verify --all`.
 * Returns how many there were.
 */
async function assertListedBackupsVerify(dir: string): Promise<number> {
  const list = await runCli(['list', '--dir', dir, '--json']);
  assert.equal(list.code, 0, list.stderr);
  const listed = (JSON.parse(list.stdout).backups as { path: string }[]).map((b) => b.path);
  if (listed.length === 0) return 0;
  const v = await runCli(['verify', '--all', '--dir', dir, '--json']);
  assert.equal(v.code, 0, `verify --all ${dir}: ${v.stdout} ${v.stderr}`);
  const ok = new Set((JSON.parse(v.stdout).results as { archive: string; ok: boolean }[]).filter((r) => r.ok).map((r) => r.archive));
  for (const p of listed) assert.ok(ok.has(p), `${p} is listed but does not verify`);
  return listed.length;
}

interface RestoreCrashScenario {
  /** The target (its folder must hold nothing else of the test's). */
  db: string;
  archive: string;
  /** The backup directory that holds `archive`. */
  backups: string;
  /** Extra arguments for every restore run. */
  args: string[];
  /** Puts the target back into the old state; called before every run. */
  resetOld(): Promise<void> | void;
  /** The target's logical content now. */
  content(): Promise<string> | string;
  oldContent: string;
  newContent: string;
  method: 'rename' | 'sqlite';
}

/**
 * Deterministic crash points: a traced run counts the N points a restore passes; then
 * for every k in 1..N a run is SIGKILLed right before its k-th point. After each kill the
 * target holds the old or the new database by content, every listed backup verifies, and
 * a rerun succeeds (then the old state is put back). Returns counts for the report.
 */
async function crashRestoreAtEveryPoint(name: string, s: RestoreCrashScenario, work: string) {
  const targetDir = path.dirname(s.db);
  const leftovers = () => readdirSync(targetDir).filter((n) => n.includes('.lifeboat-restore-'));
  await s.resetOld();
  const trace = path.join(work, `${name}.trace`);
  const traced = await runCli(['restore', s.archive, ...s.args, '--dir', path.join(work, `${name}-pre-traced`), '--json'], { LIFEBOAT_CRASH_TRACE: trace });
  assert.equal(traced.code, 0, traced.stderr);
  assert.equal(JSON.parse(traced.stdout).method, s.method, `the ${s.method} path ran`);
  assert.equal(await s.content(), s.newContent, 'the traced run restored');
  const points = readTrace(trace);
  const N = points.length;
  points.forEach((p, i) => assert.equal(p.n, i + 1, 'one numbering for all threads'));
  // Extraction ends with the fsync of the extracted image; verification has no crash point.
  const extracted = points.find((p) => p.op.startsWith('fsync') && /\.lifeboat-restore-.*\.new$/.test(p.file));
  assert.ok(extracted, 'the trace shows the extracted image being fsynced');
  const touchesTarget = (p: TracePoint) => p.file === s.db || p.file.startsWith(`${s.db}-`) || p.op.startsWith('sqliteWrite');
  const firstSwap = points.find(touchesTarget);
  assert.ok(firstSwap, 'the trace reaches the swap/write phase');
  const swapPoints = points.filter((p) => p.n >= firstSwap.n).length;
  assert.ok(swapPoints >= 3, `enough points in the swap/write phase to be meaningful (${swapPoints})`);

  const outcome = { old: 0, new: 0 };
  let killed = 0;
  let afterVerify = 0;
  let inSwap = 0;
  let verified = 0;
  for (let k = 1; k <= N; k++) {
    await s.resetOld();
    assert.equal(await s.content(), s.oldContent, `k=${k}: the old state is back`);
    const pre = path.join(work, `${name}-pre-${k}`);
    const r = await runCli(['restore', s.archive, ...s.args, '--dir', pre], { LIFEBOAT_CRASH_AT: String(k) });
    assert.equal(r.signal, 'SIGKILL', `k=${k} (${points[k - 1].op} ${points[k - 1].file}): the run should have been killed; it ended with code ${r.code}: ${r.stderr}`);
    killed++;
    if (k > extracted.n) afterVerify++;
    if (k >= firstSwap.n) inSwap++;
    const now = await s.content();
    assert.ok(now === s.oldContent || now === s.newContent, `k=${k} (${points[k - 1].op} ${points[k - 1].file}): the target is neither the old nor the new database`);
    if (now === s.oldContent) outcome.old++;
    else outcome.new++;
    verified += await assertListedBackupsVerify(pre);
    const again = await runCli(['restore', s.archive, ...s.args, '--dir', pre, '--json']);
    assert.equal(again.code, 0, `k=${k}: the rerun failed: ${again.stderr}`);
    assert.equal(JSON.parse(again.stdout).method, s.method);
    assert.equal(await s.content(), s.newContent, `k=${k}: the rerun restored`);
    assert.deepEqual(leftovers(), [], `k=${k}: the rerun cleaned the killed run's temp files`);
  }
  const list = await runCli(['list', '--dir', s.backups, '--json']);
  assert.equal(list.code, 0, list.stderr);
  assert.ok(JSON.parse(list.stdout).backups.some((b: { path: string }) => b.path === s.archive), `${s.archive} is listed`);
  await assertListedBackupsVerify(s.backups);
  const report = { points: N, killed, afterVerify, inSwap, outcome, verified };
  console.log(
    `restore crash points (${name}): ${N} points (${swapPoints} in the swap/write phase), ${killed} kills, ` +
      `${afterVerify} after extraction+verification, ${inSwap} in the swap/write phase; target old ${outcome.old}, new ${outcome.new}; ` +
      `${verified} listed backups verified after kills`,
  );
  assert.equal(killed, N);
  return report;
}

describe('crash tests: restore killed at every crash point', () => {
  const t = tempDir();
  after(() => t.cleanup());

  // Both formats: the backup and every pre-restore backup are v1 zips, or v2 snapshots (the
  // default) whose image is rebuilt from packs (with a crash point before its fsync).
  for (const format of ['zip', 'repository'] as const)
  test(`over a WAL target with an un-checkpointed -wal (the rename path, the leftover WAL folded first), ${format}`, async () => {
    const work = path.join(t.dir, `wal-${format}`);
    const targetDir = path.join(work, 'target');
    mkdirSync(targetDir, { recursive: true });
    if (format === 'zip') pinZip(targetDir);
    const db = path.join(targetDir, 'app.db');
    makeDb(db, { wal: true, rows: 200 });
    const bdir = path.join(work, 'backups');
    const b = await lifeboat(['backup', db, '--dir', bdir, '--json']);
    assert.equal(b.code, 0, b.stderr);
    const id = JSON.parse(b.stdout).id;
    const archive = format === 'zip' ? zipPath(bdir, id) : snapshotPath(bdir, id);
    assert.ok(existsSync(archive), archive);
    const scratch = path.join(work, 'scratch');
    const newContent = contentOf(db, scratch);
    // The old state: a checkpointed change (so the main file alone is neither state), then
    // later commits that stay in -wal (no checkpoint), as an app that crashed leaves them.
    sqlite(db, "UPDATE items SET qty = qty + 1000 WHERE id % 2 = 0;");
    leaveWalFrames(db, "DELETE FROM items WHERE id % 3 = 0; UPDATE items SET name = 'old ' || id; INSERT INTO items(name, qty) VALUES ('only in the wal', 1);");
    assert.ok(statSync(`${db}-wal`).size > 0, 'the old state has committed frames in -wal');
    const old = { db: readFileSync(db), wal: readFileSync(`${db}-wal`) };
    const oldContent = contentOf(db, scratch);
    assert.notEqual(oldContent, newContent);
    const report = await crashRestoreAtEveryPoint(
      `wal-${format}`,
      {
        db,
        archive,
        backups: bdir,
        args: [],
        method: 'rename',
        resetOld: () => {
          for (const side of ['-shm', '-journal']) rmSync(db + side, { force: true });
          writeFileSync(db, old.db);
          writeFileSync(`${db}-wal`, old.wal);
        },
        content: () => contentOf(db, scratch),
        oldContent,
        newContent,
      },
      work,
    );
    assert.ok(report.outcome.old > 0 && report.outcome.new > 0, 'kills landed both before and after the swap');
  });

  test('over a WAL database an app holds open (the SQLite path)', { skip: SQLITE_PATH_SKIP }, async () => {
    const work = path.join(t.dir, 'live');
    const targetDir = path.join(work, 'target');
    mkdirSync(targetDir, { recursive: true });
    const db = path.join(targetDir, 'app.db');
    // Format v1 for this one: the backup and every pre-restore backup are zips.
    pinZip(targetDir);
    makeDb(db, { wal: true, rows: 1000 });
    // About 280 pages: the copy into the live database takes several backup steps.
    sqlite(db, 'UPDATE items SET data = randomblob(1000);');
    const bdir = path.join(work, 'backups');
    const b = await lifeboat(['backup', db, '--dir', bdir, '--json']);
    assert.equal(b.code, 0, b.stderr);
    const archive = zipPath(bdir, JSON.parse(b.stdout).id);
    assert.ok(existsSync(archive), archive);
    const newContent = dumpHash(db);
    const toOld = "DELETE FROM items WHERE id % 3 = 0; UPDATE items SET name = 'old ' || id;";
    const app = await startApp(db);
    const digest = 'SELECT count(*), total(id), max(name) FROM items';
    try {
      const newView = (await app.run(digest)).join();
      sqlite(db, toOld);
      const oldContent = dumpHash(db);
      const oldView = (await app.run(digest)).join();
      assert.notEqual(oldContent, newContent);
      const report = await crashRestoreAtEveryPoint(
        'live',
        {
          db,
          archive,
          backups: bdir,
          args: ['--force'],
          method: 'sqlite',
          // From the restored state, the same statements give the same old content every time.
          resetOld: () => void sqlite(db, toOld),
          // A second connection beside the app's (which keeps the database open): the committed state.
          content: async () => {
            const content = dumpHash(db);
            const view = (await app.run(digest)).join();
            assert.equal(view, content === oldContent ? oldView : newView, "the app's own connection sees the same state");
            return content;
          },
          oldContent,
          newContent,
        },
        work,
      );
      assert.ok(report.outcome.old > 0, 'kills during the write into the live database left the old state');
      await app.run("INSERT INTO items(name, qty) VALUES ('the app writes on', 1)");
      assert.equal((await app.run("SELECT count(*) FROM items WHERE name = 'the app writes on'")).join(), '1');
    } finally {
      assert.equal(await app.close(), 0);
    }
    assert.equal(query(db, "SELECT count(*) AS n FROM items WHERE name = 'the app writes on'")[0].n, 1);
    assert.equal(sqlite(db, 'PRAGMA integrity_check;').trim(), 'ok');
  });
});

import assert from 'node:assert/strict';
import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, it } from 'node:test';
import type { LogEntry } from '../../src/core/catalog/backupLog';
import { backupIds, snapshotIds } from '../fixtures/backupFiles';
import { makeDb, sqlite, tempDir } from '../fixtures/sqlite';

const CHILD = path.join(__dirname, '..', 'fixtures', 'scheduleChild.js');

/** A child process with a line reader on its stdout. */
function child(args: string[]) {
  const proc = spawn(process.execPath, [CHILD, ...args], { stdio: ['pipe', 'pipe', 'pipe'] }) as ChildProcessWithoutNullStreams;
  let out = '';
  let err = '';
  const lines: string[] = [];
  const waiters: (() => void)[] = [];
  proc.stdout.on('data', (d) => {
    out += d;
    const parts = out.split('\n');
    out = parts.pop()!;
    lines.push(...parts);
    waiters.splice(0).forEach((w) => w());
  });
  proc.stderr.on('data', (d) => (err += d));
  const exited = new Promise<number | null>((resolve) => proc.on('exit', (code) => resolve(code)));
  return {
    proc,
    lines,
    stderr: () => err,
    exited,
    /** Resolves with the first line (from `from` on) that matches, or rejects when the child exits first. */
    async line(match: RegExp, from = 0): Promise<string> {
      for (;;) {
        const hit = lines.slice(from).find((l) => match.test(l));
        if (hit) return hit;
        if (proc.exitCode !== null) throw new Error(`child exited (${proc.exitCode}) without a line matching ${match}: ${lines.join('\n')}\n${err}`);
        await Promise.race([new Promise<void>((r) => waiters.push(r)), exited]);
      }
    },
  };
}

function logOf(dir: string): LogEntry[] {
  const f = path.join(dir, '.lifeboat', 'log.jsonl');
  return existsSync(f) ? readFileSync(f, 'utf8').trim().split('\n').map((l) => JSON.parse(l) as LogEntry) : [];
}

// Every backup here is format v2, the default (a snapshot manifest in snapshots/, pages in packs/).
describe('schedule across processes (real engine, real processes)', () => {
  it('two scheduler processes racing for the same slot on one directory make exactly one backup', async () => {
    const t = tempDir();
    const a = child(['race']);
    const b = child(['race']);
    try {
      await Promise.all([a.line(/^ready$/), b.line(/^ready$/)]);
      const rounds = 4;
      const losers: string[] = [];
      for (let i = 0; i < rounds; i++) {
        const db = path.join(t.dir, `app${i}.db`);
        makeDb(db, { rows: 3000, wal: i % 2 === 1 });
        const dir = path.join(t.dir, `backups${i}`);
        // Both at once: each process reads the source, then takes the directory lock to claim.
        a.proc.stdin.write(`${db}\t${dir}\n`);
        b.proc.stdin.write(`${db}\t${dir}\n`);
        const [ra, rb] = await Promise.all([a.line(/^\[/, i + 1), b.line(/^\[/, i + 1)]);
        const results = [JSON.parse(ra)[0], JSON.parse(rb)[0]] as { status: string; error?: string }[];
        const statuses = results.map((r) => r.status).sort();
        assert.equal(statuses.filter((s) => s === 'backedUp').length, 1, `round ${i}: ${JSON.stringify(results)}`);
        const loser = statuses.find((s) => s !== 'backedUp')!;
        assert.ok(loser === 'busy' || loser === 'done', `round ${i}: ${JSON.stringify(results)}`);
        losers.push(loser);
        assert.equal(backupIds(dir).length, 1, `round ${i}: ${backupIds(dir).join(', ')}`);
        assert.equal(snapshotIds(dir).length, 1, `round ${i}: a v2 snapshot`);
        const claims = JSON.parse(readFileSync(path.join(dir, '.lifeboat', 'claims.json'), 'utf8'));
        assert.deepEqual(claims.claims, {}, 'the winner cleared its claim');
        assert.equal(logOf(dir).filter((e) => e.op === 'backup.start').length, 1);
      }
      // How the loser lost: "busy" means it met the winner's live claim (a true race).
      process.stdout.write(`# race losers: ${losers.join(', ')}\n`);
      a.proc.stdin.end();
      b.proc.stdin.end();
      assert.equal(await a.exited, 0, a.stderr());
      assert.equal(await b.exited, 0, b.stderr());
    } finally {
      a.proc.kill();
      b.proc.kill();
      t.cleanup();
    }
  });

  it('lifeboat schedule stopped by SIGTERM mid-backup leaves no partial archive and exits 0', async () => {
    const t = tempDir();
    try {
      const db = path.join(t.dir, 'big.db');
      // About 60 MB of incompressible pages: the backup takes seconds, time enough to cut it off.
      sqlite(db, `PRAGMA journal_mode=WAL; CREATE TABLE big(id INTEGER PRIMARY KEY, x BLOB);
WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i+1 FROM n WHERE i < 15000) INSERT INTO big(x) SELECT randomblob(4000) FROM n;`);
      const dir = path.join(t.dir, 'backups');
      const tmp = path.join(dir, '.lifeboat', 'tmp');
      const c = child(['cli', '--db', db, '--dir', dir, '--cron', '0 0 1 1 *']);
      try {
        // Wait until the backup is under way: its image, pack or partial archive exists.
        const inProgress = () => existsSync(tmp) && readdirSync(tmp).some((n) => n.endsWith('.image') || n.endsWith('.pack') || n.endsWith('.zip.partial'));
        while (!inProgress()) {
          assert.equal(c.proc.exitCode, null, c.stderr());
          await new Promise((r) => setTimeout(r, 10));
        }
        c.proc.kill('SIGTERM');
        assert.equal(await c.exited, 0, c.stderr());
      } finally {
        c.proc.kill('SIGKILL');
      }
      assert.match(c.stderr(), /SIGTERM: stopping/);
      assert.match(c.stderr(), /stopped/);
      assert.deepEqual(backupIds(dir), [], 'no backup: it was cut off');
      assert.deepEqual(readdirSync(tmp), [], 'no partial files left');
      const log = logOf(dir);
      const failed = log.filter((e) => e.op === 'backup.failed');
      assert.equal(failed.length, 1, JSON.stringify(log));
      assert.equal(failed[0].detail?.reason, 'cancelled');
      assert.equal(log.filter((e) => e.op === 'backup.ok' || e.op === 'schedule.retry').length, 0);
      assert.deepEqual(JSON.parse(readFileSync(path.join(dir, '.lifeboat', 'claims.json'), 'utf8')).claims, {});
      assert.equal(c.lines.filter((l) => / ok /.test(l)).length, 0);
    } finally {
      t.cleanup();
    }
  });

  it('lifeboat schedule runs the due catch-up once, prints one line for it, and stops on SIGINT', async () => {
    const t = tempDir();
    try {
      const db = path.join(t.dir, 'app.db');
      makeDb(db);
      const c = child(['cli', '--db', db, '--cron', '0 0 1 1 *']);
      try {
        const line = await c.line(/-scheduled\.json \(/);
        assert.match(line, /^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d {2}ok +\S+\/backups\/snapshots\/app-\S+-scheduled\.json \(catch-up for 1 missed slot: \d{4}-01-01 00:00\)$/);
        // Wait for the rest of the pass (the weekly restore test runs after the backup).
        await c.line(/restore test/);
        c.proc.kill('SIGINT');
        assert.equal(await c.exited, 0, c.stderr());
      } finally {
        c.proc.kill('SIGKILL');
      }
      const dir = path.join(t.dir, 'backups');
      assert.equal(backupIds(dir).length, 1);
      assert.equal(snapshotIds(dir).length, 1);
      assert.equal(c.lines.filter((l) => /-scheduled\.json \(/.test(l)).length, 1, c.lines.join('\n'));
      assert.match(c.lines.find((l) => /restore test/.test(l)) ?? '', /ok +restore test of \S+\/snapshots\/\S+-scheduled\.json passed \(local copy\)$/);
      assert.match(c.stderr(), /scheduling .*app\.db into .*backups, cron 0 0 1 1 \*/);
    } finally {
      t.cleanup();
    }
  });

  it('lifeboat schedule usage errors exit 2; a missing database is an error naming it', async () => {
    const t = tempDir();
    try {
      const db = path.join(t.dir, 'app.db');
      makeDb(db, { rows: 5 });
      for (const [args, msg] of [
        [[], /needs --db/],
        [['--db', db, '--time', '25:00'], /--time: must be a time HH:MM/],
        [['--db', db, '--time', '02:00', '--cron', '0 3 * * *'], /not both/],
        [['--db', db, '--cron', '0 3 * *'], /--cron: must be a cron expression of 5 or 6 fields/],
        [['--db', db, '--cron', '99 3 * * *'], /--cron: invalid cron expression/],
        [['--db', db, '--every', '5'], /Unknown option '--every'/],
      ] as const) {
        const c = child(['cli', ...args]);
        assert.equal(await c.exited, 2, `${args.join(' ')}: ${c.stderr()}`);
        assert.match(c.stderr(), msg);
        assert.equal(c.stderr().trim().split('\n').length, 1, c.stderr());
      }
      const missing = path.join(t.dir, 'nope.db');
      const c = child(['cli', '--db', missing]);
      assert.equal(await c.exited, 1);
      assert.match(c.stderr(), new RegExp(`${missing.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}: no such file`));
      assert.equal(existsSync(path.join(t.dir, 'backups')), false, 'no backup directory for a missing database');
    } finally {
      t.cleanup();
    }
  });
});

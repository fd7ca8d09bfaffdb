import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { checkArchive } from '../../src/core/archive/archiveReader';
import { prng } from '../fixtures/archive';
import { CLI, ensureBuilt, lifeboat } from '../fixtures/cli';
import { makeDb, sqlite, tempDir } from '../fixtures/sqlite';


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
const MAX_RUNS = KILLS * 3;

describe('crash tests: SIGKILL at random moments', () => {
  const t = tempDir();
  after(() => t.cleanup());

  test(`backup killed ${KILLS} times: no complete-looking partial archive, the next run succeeds`, async () => {
    const rnd = prng(0xb4c0);
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
    // The temp files of killed runs are cleaned by the next run.
    const tmp = path.join(dir, '.lifeboat', 'tmp');
    assert.deepEqual(existsSync(tmp) ? readdirSync(tmp) : [], []);
    console.log(`backup crash test: ${runs} runs, ${killed} killed mid-run, ${n} intact archives, 0 partial`);
    assert.equal(killed, KILLS, `only ${killed} of ${runs} runs were killed before finishing`);
  });

  test(`restore killed ${KILLS} times: the target is always the old or the new database`, async () => {
    const rnd = prng(0x5e5708e);
    const db = path.join(t.dir, 'target.db');
    makeDb(db, { rows: 3000 });
    sqlite(db, 'UPDATE items SET data = randomblob(1500);');
    const dir = path.join(t.dir, 'rbackups');
    const b = await lifeboat(['backup', db, '--dir', dir, '--json']);
    assert.equal(b.code, 0, b.stderr);
    const manifest = JSON.parse(b.stdout);
    const archive = path.join(dir, `${manifest.id}.zip`);
    const newSha = manifest.image.sha256;
    sqlite(db, "DELETE FROM items WHERE id % 2 = 0; UPDATE items SET name = 'changed';");
    // Calibrate on the same command (a pre-restore backup, then the swap), then put the old content back.
    const full = await timed(['restore', archive, '--dir', dir]);
    sqlite(db, "DELETE FROM items WHERE id % 2 = 0; UPDATE items SET name = 'changed';");
    const oldAgain = sha(db);
    let killed = 0;
    let sawNew = 0;
    let runs = 0;
    for (let i = 0; killed < KILLS && i < MAX_RUNS; i++, runs++) {
      const r = await runAndKill(['restore', archive, '--dir', dir], Math.floor(rnd() * full * 1.2));
      if (r.killed) killed++;
      const now = sha(db);
      assert.ok(now === oldAgain || now === newSha, `round ${i}: the target is neither the old nor the new database`);
      assert.ok(!existsSync(`${db}-journal`) && !existsSync(`${db}-wal`));
      if (now === newSha) {
        sawNew++;
        // Put the old one back for the next round, through the tool itself.
        sqlite(db, "DELETE FROM items WHERE id % 2 = 0; UPDATE items SET name = 'changed';");
        assert.equal(sha(db), oldAgain, 'the same old content, byte for byte');
      }
      await assertNoPartialArchives(dir);
    }
    const leftovers = readdirSync(t.dir).filter((n) => n.includes('.lifeboat-restore-'));
    const last = await lifeboat(['restore', archive, '--dir', dir]);
    assert.equal(last.code, 0, last.stderr);
    assert.equal(sha(db), newSha);
    assert.deepEqual(readdirSync(t.dir).filter((n) => n.includes('.lifeboat-restore-')), [], 'temp files of killed restores are cleaned');
    console.log(`restore crash test: ${runs} runs, ${killed} killed mid-run, ${sawNew} ended with the new database, ${leftovers.length} temp files left by kills (cleaned by the next run)`);
    assert.equal(killed, KILLS, `only ${killed} of ${runs} runs were killed before finishing`);
  });
});

import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdirSync, readFileSync, writeFileSync, existsSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, describe, test } from 'node:test';
import { BackupLog } from '../../src/core/catalog/backupLog';
import { acquireLock, withLock } from '../../src/core/catalog/lock';
import { BackupError } from '../../src/core/errors';
import { tempDir } from '../fixtures/sqlite';

const child = path.join(__dirname, '..', 'fixtures', 'lockChild.js');

function run(args: string[]): Promise<{ code: number | null; stderr: string }> {
  return new Promise((resolve) => {
    const p = spawn(process.execPath, [child, ...args]);
    let stderr = '';
    p.stderr.on('data', (d) => (stderr += d));
    p.on('close', (code) => resolve({ code, stderr }));
  });
}

describe('the backup directory lock', () => {
  const t = tempDir();
  after(() => t.cleanup());

  test('serialises four processes: no overlap, no lost update', async () => {
    const lock = path.join(t.dir, 'a', 'lock');
    const count = path.join(t.dir, 'count');
    const rs = await Promise.all([0, 1, 2, 3].map(() => run([lock, path.join(t.dir, 'marker'), count, '25'])));
    for (const r of rs) assert.equal(r.code, 0, r.stderr);
    assert.equal(readFileSync(count, 'utf8'), '100');
    assert.ok(!existsSync(lock), 'released');
  });

  test('a lock left by a dead process is broken', async () => {
    const lock = path.join(t.dir, 'b', 'lock');
    mkdirSync(path.dirname(lock), { recursive: true });
    // A pid that cannot be alive: above the kernel's pid_max.
    writeFileSync(lock, JSON.stringify({ pid: 4194304 + 7, host: os.hostname(), token: 'x', acquired: '2026-01-01T00:00:00Z' }));
    let ran = false;
    await withLock(lock, async () => {
      ran = true;
    }, { timeoutMs: 2000 });
    assert.ok(ran);
  });

  test('a live holder makes others wait, then time out with a clear error', async () => {
    const lock = path.join(t.dir, 'c', 'lock');
    const release = await acquireLock(lock);
    try {
      await assert.rejects(
        withLock(lock, async () => undefined, { timeoutMs: 300 }),
        (e) => BackupError.is(e, 'locked') && /held by pid \d+/.test(e.message),
      );
    } finally {
      await release();
    }
    await withLock(lock, async () => undefined, { timeoutMs: 300 });
  });
});

describe('the backup log', () => {
  const t = tempDir();
  after(() => t.cleanup());
  test('appends JSON lines, caps the size and rotates, skips a torn line', async () => {
    const log = new BackupLog(path.join(t.dir, '.lifeboat', 'log.jsonl'), { maxBytes: 2000, keep: 2 });
    for (let i = 0; i < 100; i++) {
      await log.append({ time: `2026-11-26T10:00:${String(i % 60).padStart(2, '0')}.000+01:00`, op: 'backup.ok', level: 'info', message: `entry ${i}` });
    }
    const files = ['log.jsonl', 'log.1.jsonl', 'log.2.jsonl', 'log.3.jsonl'].map((f) => path.join(t.dir, '.lifeboat', f));
    assert.ok(existsSync(files[0]) && existsSync(files[1]) && existsSync(files[2]));
    assert.ok(!existsSync(files[3]), 'only `keep` rotated files are kept');
    for (const f of files.slice(0, 3)) assert.ok(readFileSync(f).length <= 2000 + 200);
    writeFileSync(files[0], readFileSync(files[0], 'utf8') + '{"time": "torn');
    const entries = await log.read();
    assert.equal(entries.at(-1)?.message, 'entry 99');
    assert.ok(entries.length < 100 && entries.length > 10);
    assert.deepEqual((await log.read(3)).map((e) => e.message), ['entry 97', 'entry 98', 'entry 99']);
  });
});

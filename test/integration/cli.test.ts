import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { randomFillSync } from 'node:crypto';
import { copyFileSync, existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync, statSync } from 'node:fs';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { backupIds, pinZip, snapshotIds, zipIds } from '../fixtures/backupFiles';
import { ensureBuilt, lifeboat } from '../fixtures/cli';
import { dumpHash, leaveWalFrames, makeDb, makeShapesDb, query, sqlite, tempDir } from '../fixtures/sqlite';
import { nodeSqlite } from '../../src/core/sqlite/nodeSqlite';
import { startApp } from '../fixtures/appProcess';

/** The logical content of a live database (db + -wal), without letting sqlite3 checkpoint the original. */
function liveDumpHash(db: string, scratch: string): string {
  const copy = path.join(scratch, `copy-${Math.random().toString(36).slice(2)}.db`);
  copyFileSync(db, copy);
  if (existsSync(`${db}-wal`)) copyFileSync(`${db}-wal`, `${copy}-wal`);
  return dumpHash(copy);
}

before(() => ensureBuilt());

describe('CLI round trips on many shapes', () => {
  const t = tempDir();
  after(() => t.cleanup());
  const shapes: { name: string; wal: boolean; pageSize?: number; keepWal?: boolean }[] = [
    { name: 'rollback-4k', wal: false },
    { name: 'wal-unckpt', wal: true, keepWal: true },
    { name: 'wal-512', wal: true, pageSize: 512, keepWal: true },
    { name: 'rollback-64k', wal: false, pageSize: 65536 },
  ];
  // Format v2 (the default) and v1 (lifeboat.format "zip" in a lifeboat.json beside the database).
  for (const format of ['repository', 'zip'] as const)
  for (const s of shapes) {
    test(`${s.name}, ${format}: backup, verify, restore --to gives the same content`, async () => {
      const dir = path.join(t.dir, `${s.name}-${format}`);
      mkdirSync(dir);
      if (format === 'zip') pinZip(dir);
      const db = path.join(dir, 'app.db');
      makeShapesDb(db, { wal: s.wal, pageSize: s.pageSize });
      if (s.keepWal) leaveWalFrames(db, "INSERT INTO items(name, qty) VALUES ('only in the wal', 1); DELETE FROM items WHERE id = 3;");
      if (s.keepWal) assert.ok(statSync(`${db}-wal`).size > 0, 'the test must leave frames in the WAL');
      const expected = liveDumpHash(db, t.dir);

      const b = await lifeboat(['backup', db]);
      assert.equal(b.code, 0, b.stderr);
      const archive = b.stdout.trim();
      if (format === 'zip') {
        assert.match(path.basename(archive), /^app-\d{8}T\d{9}Z-manual\.zip$/);
        assert.equal(path.dirname(archive), path.join(dir, 'backups'));
      } else {
        assert.match(path.basename(archive), /^app-\d{8}T\d{9}Z-manual\.json$/);
        assert.equal(path.dirname(archive), path.join(dir, 'backups', 'snapshots'));
      }

      const v = await lifeboat(['verify', archive, '--json']);
      assert.equal(v.code, 0, v.stdout + v.stderr);
      const vr = JSON.parse(v.stdout);
      assert.equal(vr.ok, true);
      // The engine follows the runtime the CLI runs on: SQLite itself checks FTS5, sql.js cannot.
      const engine = nodeSqlite() ? 'node:sqlite' : 'sql.js';
      assert.equal(vr.results[0].engine.name, engine);
      if (engine === 'node:sqlite') assert.deepEqual(vr.results[0].notChecked, [], 'SQLite checks the FTS5 table');
      else assert.ok(vr.results[0].notChecked.some((n: string) => n.includes('docs')), 'FTS5 table is reported as not checked');

      const out = path.join(dir, 'restored.db');
      const r = await lifeboat(['restore', archive, '--to', out]);
      assert.equal(r.code, 0, r.stderr);
      assert.equal(dumpHash(out), expected);
      assert.equal(query<{ journal_mode: string }>(out, 'PRAGMA journal_mode')[0].journal_mode, 'delete');
      if (s.keepWal) assert.equal(query(out, "SELECT 1 FROM items WHERE name = 'only in the wal'").length, 1);
    });
  }
});

describe('CLI manifest, list, stats, log', () => {
  const t = tempDir();
  after(() => t.cleanup());
  test('the manifest carries what the issue lists', async () => {
    const db = path.join(t.dir, 'shop.sqlite');
    makeDb(db, { rows: 50 });
    const b = await lifeboat(['backup', db, '--json', '--kind', 'migration']);
    assert.equal(b.code, 0, b.stderr);
    const m = JSON.parse(b.stdout);
    // Format v2, the default: a snapshot manifest over the repository's pages.
    assert.equal(m.formatVersion, 2);
    assert.equal(m.repository.pageCount, m.image.pageCount);
    assert.equal(m.repository.pageSize, m.image.pageSize);
    assert.deepEqual(snapshotIds(path.join(t.dir, 'backups')), [m.id]);
    assert.equal(m.kind, 'migration');
    assert.equal(m.source.path, db);
    assert.match(m.created, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}([+-]\d\d:\d\d)$/);
    assert.match(m.image.sha256, /^[0-9a-f]{64}$/);
    assert.equal(m.image.pageSize, 4096);
    assert.ok(m.image.pageCount > 0);
    assert.ok(m.image.sqliteVersionNumber >= 3000000);
    assert.equal(m.verification.status, 'ok');
    assert.equal(m.verification.rowCounts.items, 50);
    assert.match(m.verification.schemaFingerprint, /^[0-9a-f]{64}$/);
    assert.ok(m.verification.engine.sqliteVersion);

    const l = await lifeboat(['list', db, '--json']);
    assert.equal(l.code, 0, l.stderr);
    assert.equal(JSON.parse(l.stdout).backups.length, 1);
    const s = await lifeboat(['stats', '--dir', path.join(t.dir, 'backups'), '--json']);
    assert.equal(s.code, 0, s.stderr);
    const st = JSON.parse(s.stdout);
    assert.equal(st.count, 1);
    assert.equal(st.perKind.migration.count, 1);
    assert.ok(st.lastSuccess);
    const log = await lifeboat(['log', '--dir', path.join(t.dir, 'backups'), '--json']);
    const ops = JSON.parse(log.stdout).map((e: { op: string }) => e.op);
    assert.deepEqual(ops, ['backup.start', 'backup.ok']);
    const human = await lifeboat(['log', '--dir', path.join(t.dir, 'backups')]);
    assert.match(human.stdout, /migration backup of shop\.sqlite/);
  });

  test('settings: lifeboat.json beside the database and .vscode/settings.json are read; bad values are named', async () => {
    const ws = path.join(t.dir, 'ws');
    mkdirSync(path.join(ws, '.vscode'), { recursive: true });
    mkdirSync(path.join(ws, 'data'));
    const db = path.join(ws, 'data', 'app.db');
    makeDb(db, { rows: 5 });
    writeFileSync(path.join(ws, '.vscode', 'settings.json'), '{\n  // comments are fine\n  "lifeboat.directory": "snapshots",\n  "lifeboat.format": "zip",\n}\n');
    const b = await lifeboat(['backup', db]);
    assert.equal(b.code, 0, b.stderr);
    assert.equal(path.dirname(b.stdout.trim()), path.join(ws, 'snapshots'));
    assert.match(path.basename(b.stdout.trim()), /\.zip$/, 'lifeboat.format from settings.json');
    writeFileSync(path.join(ws, '.vscode', 'settings.json'), '{ "lifeboat.schedule.time": "25:99" }');
    const bad = await lifeboat(['backup', db]);
    assert.equal(bad.code, 2);
    assert.match(bad.stderr, /settings\.json: lifeboat\.schedule\.time/);
    writeFileSync(path.join(ws, 'data', 'lifeboat.json'), JSON.stringify({ backup_directory: 'here' }));
    const legacy = await lifeboat(['backup', db]);
    assert.equal(legacy.code, 0, legacy.stderr);
    // lifeboat.json replaces settings.json entirely: its directory, and the default format (v2).
    assert.equal(path.dirname(legacy.stdout.trim()), path.join(ws, 'data', 'here', 'snapshots'));
    assert.deepEqual(snapshotIds(path.join(ws, 'data', 'here')).map((id) => `${id}.json`), [path.basename(legacy.stdout.trim())]);
  });
});

describe('CLI restore over the original', () => {
  const t = tempDir();
  after(() => t.cleanup());
  test('restores content, keeps a pre-restore backup, refuses while in use', async () => {
    const db = path.join(t.dir, 'app.db');
    makeDb(db, { wal: true, rows: 100 });
    const original = liveDumpHash(db, t.dir);
    const b = await lifeboat(['backup', db]);
    assert.equal(b.code, 0, b.stderr);
    sqlite(db, 'DELETE FROM items WHERE id > 10;');
    leaveWalFrames(db, "INSERT INTO items(name) VALUES ('after the backup');");
    const damaged = liveDumpHash(db, t.dir);

    // An app with the database open (its connection is open once it has answered).
    const app = await startApp(db);
    const refused = await lifeboat(['restore', b.stdout.trim()]);
    assert.equal(refused.code, 1);
    assert.match(refused.stderr, /in use|open/);
    assert.match(refused.stderr, /app\.db/);
    await app.close();
    assert.equal(liveDumpHash(db, t.dir), damaged, 'a refused restore changes nothing');

    const r = await lifeboat(['restore', b.stdout.trim(), '--json']);
    assert.equal(r.code, 0, r.stderr);
    const res = JSON.parse(r.stdout);
    assert.equal(dumpHash(db), original);
    assert.ok(!existsSync(`${db}-wal`) || statSync(`${db}-wal`).size === 0);
    assert.ok(res.preRestore && existsSync(res.preRestore));
    // The pre-restore backup holds the state that was replaced, WAL frames included.
    const back = path.join(t.dir, 'prev.db');
    const r2 = await lifeboat(['restore', res.preRestore, '--to', back]);
    assert.equal(r2.code, 0, r2.stderr);
    assert.equal(dumpHash(back), damaged);
  });
});

describe('CLI bad input: one clear error, nothing changed', () => {
  const t = tempDir();
  after(() => t.cleanup());
  const expectOneLine = (stderr: string) => assert.equal(stderr.trim().split('\n').length, 1, stderr);

  test('a missing database', async () => {
    const r = await lifeboat(['backup', path.join(t.dir, 'nope.db')]);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /nope\.db/);
    expectOneLine(r.stderr);
    assert.ok(!existsSync(path.join(t.dir, 'backups')), 'no backup directory is created');
  });

  test('a file that is not SQLite', async () => {
    const f = path.join(t.dir, 'notes.db');
    writeFileSync(f, 'these are my notes, not a database\n'.repeat(200));
    const r = await lifeboat(['backup', f]);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /notes\.db.*not an SQLite database/i);
    expectOneLine(r.stderr);
    assert.deepEqual(backupIds(path.join(t.dir, 'backups')), []);
  });

  test('an encrypted database (random bytes)', async () => {
    const f = path.join(t.dir, 'secret.db');
    writeFileSync(f, randomFillSync(Buffer.alloc(8192)));
    const r = await lifeboat(['backup', f]);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /secret\.db.*not a plain SQLite database/i);
    expectOneLine(r.stderr);
  });

  test('an unwritable backup directory', async () => {
    const db = path.join(t.dir, 'ok.db');
    makeDb(db, { rows: 5 });
    const file = path.join(t.dir, 'a-file');
    writeFileSync(file, 'x');
    const r = await lifeboat(['backup', db, '--dir', path.join(file, 'backups')]);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /a-file/);
    expectOneLine(r.stderr);
  });

  test('a full disk: the partial output is removed', async (ctx) => {
    const db = path.join(t.dir, 'big.db');
    makeDb(db, { rows: 4000 });
    sqlite(db, "UPDATE items SET data = randomblob(2000);");
    const mnt = path.join(t.dir, 'small-disk');
    mkdirSync(mnt);
    try {
      execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=512k', 'tmpfs', mnt], { stdio: 'ignore' });
    } catch {
      ctx.skip('cannot mount a small tmpfs here (needs root): the full-disk case was not run');
      return;
    }
    try {
      const r = await lifeboat(['backup', db, '--dir', mnt]);
      assert.equal(r.code, 1);
      assert.match(r.stderr, /no space left/i);
      expectOneLine(r.stderr);
      const left = readdirSync(mnt, { recursive: true }) as string[];
      assert.deepEqual(left.filter((n) => /\.zip|partial|image/.test(n)), [], `left behind: ${left.join(', ')}`);
      // Format v2 (the default): no backup became visible and nothing is left in the scratch folder.
      const tmp = path.join('.lifeboat', 'tmp') + path.sep;
      assert.deepEqual(left.filter((n) => n.startsWith(tmp) || n.startsWith(`snapshots${path.sep}`)), [], `left behind: ${left.join(', ')}`);
    } finally {
      execFileSync('umount', [mnt]);
    }
  });

  test('a malformed archive: verify and restore say damage (3), restore changes nothing', async () => {
    const db = path.join(t.dir, 'target.db');
    makeDb(db, { rows: 20 });
    const before = readFileSync(db);
    const bad = path.join(t.dir, 'bad.zip');
    writeFileSync(bad, randomFillSync(Buffer.alloc(5000)));
    const v = await lifeboat(['verify', bad]);
    assert.equal(v.code, 3);
    const r = await lifeboat(['restore', bad, '--to', db]);
    assert.equal(r.code, 3);
    assert.match(r.stderr, /bad\.zip/);
    expectOneLine(r.stderr);
    assert.ok(readFileSync(db).equals(before));
  });

  test('usage errors exit 2 and name the argument', async () => {
    const a = await lifeboat(['frobnicate']);
    assert.equal(a.code, 2);
    assert.match(a.stderr, /frobnicate/);
    const b = await lifeboat(['backup']);
    assert.equal(b.code, 2);
    const c = await lifeboat(['backup', path.join(t.dir, 'ok.db'), '--kind', 'weekly']);
    assert.equal(c.code, 2);
    assert.match(c.stderr, /--kind/);
    const d = await lifeboat(['list', '--bogus']);
    assert.equal(d.code, 2);
    assert.match(d.stderr, /bogus/);
  });
});

describe('lifeboat run: the backup-before-migration hook', () => {
  const t = tempDir();
  after(() => t.cleanup());
  test('backs up first, then runs the command and passes its status through', async () => {
    const db = path.join(t.dir, 'app.db');
    makeDb(db, { rows: 5 });
    const marker = path.join(t.dir, 'ran');
    const r = await lifeboat(['run', '--db', db, '--', process.execPath, '-e', `require('fs').writeFileSync(${JSON.stringify(marker)}, 'x'); process.exit(7)`]);
    assert.equal(r.code, 7, r.stderr);
    assert.ok(existsSync(marker));
    const made = backupIds(path.join(t.dir, 'backups'));
    assert.deepEqual(snapshotIds(path.join(t.dir, 'backups')), made, 'a v2 backup, the default');
    assert.equal(made.length, 1);
    assert.match(made[0], /-migration$/);
  });
  test('a failed backup stops the command', async () => {
    const marker = path.join(t.dir, 'ran2');
    const r = await lifeboat(['run', '--db', path.join(t.dir, 'missing.db'), '--', process.execPath, '-e', `require('fs').writeFileSync(${JSON.stringify(marker)}, 'x')`]);
    assert.equal(r.code, 1);
    assert.ok(!existsSync(marker), 'the command must not run');
  });
});

describe('concurrency: several processes share one backup directory', () => {
  const t = tempDir();
  after(() => t.cleanup());
  test('four CLI backups at once all land, with distinct archives and a consistent log', async () => {
    const db = path.join(t.dir, 'app.db');
    makeDb(db, { rows: 50 });
    const rs = await Promise.all([0, 1, 2, 3].map(() => lifeboat(['backup', db])));
    for (const r of rs) assert.equal(r.code, 0, r.stderr);
    assert.equal(new Set(rs.map((r) => r.stdout.trim())).size, 4);
    assert.equal(snapshotIds(path.join(t.dir, 'backups')).length, 4);
    assert.deepEqual(zipIds(path.join(t.dir, 'backups')), []);
    // Every one is a whole backup: each restores and verifies on its own.
    const all = await lifeboat(['verify', '--all', '--dir', path.join(t.dir, 'backups'), '--json']);
    assert.equal(all.code, 0, all.stdout + all.stderr);
    assert.equal(JSON.parse(all.stdout).results.length, 4);
    const log = await lifeboat(['log', '--dir', path.join(t.dir, 'backups'), '--json']);
    assert.equal(JSON.parse(log.stdout).filter((e: { op: string }) => e.op === 'backup.ok').length, 4);
  });
});

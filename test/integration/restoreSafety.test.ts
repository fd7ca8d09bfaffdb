import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { copyFileSync, existsSync, mkdirSync, readdirSync, readFileSync, statSync, symlinkSync, chmodSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { snapshotPath } from '../fixtures/backupFiles';
import { ensureBuilt, lifeboat } from '../fixtures/cli';
import { startApp } from '../fixtures/appProcess';
import { dumpHash, makeDb, sqlite, startShell, tempDir } from '../fixtures/sqlite';

before(() => ensureBuilt());

describe('restore safety', () => {
  const t = tempDir();
  after(() => t.cleanup());

  async function backupOf(db: string): Promise<string> {
    const b = await lifeboat(['backup', db]);
    assert.equal(b.code, 0, b.stderr);
    return b.stdout.trim();
  }

  test('a database open by an app is refused through a symlinked path too', async () => {
    const real = path.join(t.dir, 'real');
    mkdirSync(real);
    const db = path.join(real, 'app.db');
    makeDb(db, { wal: true, rows: 20 });
    const archive = await backupOf(db);
    symlinkSync(real, path.join(t.dir, 'link'));
    // startApp returns once the app has read the database: its connection is open.
    const app = await startApp(db);
    try {
      const r = await lifeboat(['restore', archive, '--to', path.join(t.dir, 'link', 'app.db')]);
      assert.equal(r.code, 1, r.stdout);
      assert.match(r.stderr, new RegExp(`real/app\\.db looks in use \\(pid ${app.pid} \\(sqlite3\\) has app\\.db open\\)`));
      assert.ok(existsSync(`${db}-wal`) || existsSync(`${db}-shm`), "the app's sidecars are untouched");
    } finally {
      await app.close();
    }
  });

  test("a database nothing has open is replaced by rename: page for page the backup's image, with the old file's permissions", async () => {
    const db = path.join(t.dir, 'private.db');
    makeDb(db, { rows: 10 });
    chmodSync(db, 0o600);
    const b = await lifeboat(['backup', db, '--json']);
    assert.equal(b.code, 0, b.stderr);
    const manifest = JSON.parse(b.stdout);
    sqlite(db, 'DELETE FROM items WHERE id > 3;');
    // A format v2 backup (the default): the image is rebuilt from the repository's pages.
    const r = await lifeboat(['restore', snapshotPath(path.join(t.dir, 'backups'), manifest.id), '--json']);
    assert.equal(r.code, 0, r.stderr);
    // Also where node:sqlite could write it through SQLite: the rename path is chosen.
    assert.equal(JSON.parse(r.stdout).method, 'rename');
    assert.equal(createHash('sha256').update(readFileSync(db)).digest('hex'), manifest.image.sha256);
    assert.equal(statSync(db).mode & 0o777, 0o600);
  });

  test('a damaged target: refused without --force; with it, its raw bytes are kept and the backup restored', async () => {
    const db = path.join(t.dir, 'dmg.db');
    makeDb(db, { rows: 30 });
    const good = dumpHash(db);
    const archive = await backupOf(db);
    const bytes = readFileSync(db);
    bytes.fill(0x41, 0, 100);
    writeFileSync(db, bytes);
    const refused = await lifeboat(['restore', archive]);
    assert.equal(refused.code, 1);
    assert.match(refused.stderr, /dmg\.db.*--force/);
    assert.ok(readFileSync(db).equals(bytes), 'nothing changed');
    const forced = await lifeboat(['restore', archive, '--force', '--json']);
    assert.equal(forced.code, 0, forced.stderr);
    const res = JSON.parse(forced.stdout);
    assert.equal(dumpHash(db), good);
    assert.ok(res.rawCopy && readFileSync(res.rawCopy).equals(bytes), 'the damaged file is kept as it was');
  });

  test('a hot journal beside the target is never restored over, not even with --force', async () => {
    const db = path.join(t.dir, 'hot.db');
    makeDb(db, { rows: 30 });
    const archive = await backupOf(db);
    // A real hot journal: copy db and journal while a transaction holds it.
    const live = path.join(t.dir, 'live.db');
    copyFileSync(db, live);
    const shell = startShell(live);
    shell.send('PRAGMA cache_size=1; BEGIN; UPDATE items SET name = name || randomblob(500);');
    let journal: Buffer | undefined;
    for (let i = 0; i < 50 && !journal; i++) {
      await new Promise((r) => setTimeout(r, 100));
      if (existsSync(`${live}-journal`) && statSync(`${live}-journal`).size > 512) journal = readFileSync(`${live}-journal`);
    }
    const dbBytes = readFileSync(live);
    shell.proc.kill('SIGKILL');
    await shell.close();
    assert.ok(journal, 'the writer left a journal');
    writeFileSync(db, dbBytes);
    writeFileSync(`${db}-journal`, journal);
    for (const args of [[], ['--force']]) {
      const r = await lifeboat(['restore', archive, ...args]);
      assert.equal(r.code, 1, r.stdout);
      assert.match(r.stderr, /hot journal/);
      assert.doesNotMatch(r.stderr, /--force/);
      assert.ok(readFileSync(db).equals(dbBytes) && existsSync(`${db}-journal`), 'nothing changed');
    }
    assert.deepEqual(readdirSync(t.dir).filter((n) => n.includes('.lifeboat-restore-')), []);
    void sqlite;
  });
});

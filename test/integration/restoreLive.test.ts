/**
 * Restoring a database that a running app holds open (issue 9): the app is a separate
 * process (the sqlite3 shell) whose connection stays open across the restore. Through
 * SQLite (node:sqlite with backup()) the app sees the restored rows and its next write
 * persists; without it the restore is refused, even with --force, and nothing changes.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { copyFileSync, existsSync, readFileSync, rmSync } from 'node:fs';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { restoreInUseSupport } from '../../src/core/restore/inUse';
import { startApp } from '../fixtures/appProcess';
import { snapshotPath } from '../fixtures/backupFiles';
import { ensureBuilt, lifeboat } from '../fixtures/cli';
import { makeDb, query, sqlite, tempDir } from '../fixtures/sqlite';

before(() => ensureBuilt());

const support = restoreInUseSupport();
/** The node:sqlite path needs a runtime with backup(); the test runs the CLI with this very runtime. */
const SQLITE_PATH_SKIP = support.ok ? false : `needs node:sqlite with backup() (Node >= 22.16) in the runtime that runs the CLI: ${support.why}`;
if (SQLITE_PATH_SKIP) console.log(`restoreLive: SKIPPING the node:sqlite path tests: ${SQLITE_PATH_SKIP}`);

const ROWS = 'SELECT id, name FROM items ORDER BY id';

/** The database's file bytes, main file and sidecars, as one hash. */
function filesHash(db: string): string {
  const h = createHash('sha256');
  for (const f of [db, `${db}-wal`, `${db}-journal`]) h.update(existsSync(f) ? readFileSync(f) : Buffer.alloc(0)).update('|');
  return h.digest('hex');
}

/** Polls `cond` until it holds; fails after a minute (a hang, not a timing assertion). */
async function waitFor(cond: () => boolean, what: string): Promise<void> {
  for (const deadline = Date.now() + 60_000; !cond(); ) {
    if (Date.now() > deadline) throw new Error(`gave up waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

function rowsOf(db: string): string[] {
  return sqlite(db, `${ROWS};`).split('\n').filter((l) => l.length > 0);
}

describe('restore into a running app', () => {
  const t = tempDir();
  after(() => t.cleanup());

  /** A database, its backup, and then changes made after the backup; returns the backup's rows. */
  async function setUp(name: string, o: { wal: boolean; pageSize?: number }): Promise<{ db: string; archive: string; restored: string[] }> {
    const db = path.join(t.dir, name);
    makeDb(db, { wal: o.wal, rows: 40, pageSize: o.pageSize });
    const b = await lifeboat(['backup', db, '--json']);
    assert.equal(b.code, 0, b.stderr);
    const restored = rowsOf(db);
    sqlite(db, "DELETE FROM items WHERE id > 20; UPDATE items SET name = 'changed after the backup' WHERE id <= 5;");
    // `backup --json` prints the manifest; the backup is a format v2 snapshot (the default)
    // in backups/ beside the database, so every restore here rebuilds its image from packs.
    return { db, archive: snapshotPath(path.join(t.dir, 'backups'), JSON.parse(b.stdout).id), restored };
  }

  test('through SQLite: the app keeps its WAL connection, sees the restored rows, and its next write persists', { skip: SQLITE_PATH_SKIP }, async () => {
    const { db, archive, restored } = await setUp('live.db', { wal: true });
    const app = await startApp(db);
    try {
      const appBefore = await app.run(ROWS);
      assert.equal(appBefore.length, 20, 'the app sees the changed database');
      const hash = filesHash(db);

      const plain = await lifeboat(['restore', archive]);
      assert.equal(plain.code, 1, plain.stdout);
      assert.match(plain.stderr, /looks in use \(pid \d+ \(sqlite3\) has live\.db/);
      assert.match(plain.stderr, /--force to restore through SQLite/);
      assert.equal(filesHash(db), hash, 'refused: nothing changed');

      const r = await lifeboat(['restore', archive, '--force', '--json']);
      assert.equal(r.code, 0, r.stderr);
      const res = JSON.parse(r.stdout);
      assert.equal(res.method, 'sqlite', 'the SQLite path ran');
      assert.ok(res.inUse.some((e: string) => e.startsWith(`pid ${app.pid} (sqlite3)`)), `the app is named: ${res.inUse}`);
      assert.ok(res.preRestore && existsSync(res.preRestore), 'a pre-restore backup was made first');

      await app.run("INSERT INTO items(name, qty) VALUES ('written by the app after the restore', 1)");
      const appAfter = await app.run(ROWS);
      const expected = [...restored, `${Number(restored.at(-1)!.split('|')[0]) + 1}|written by the app after the restore`];
      assert.deepEqual(appAfter, expected, 'the app sees the restored rows plus its own write');
      assert.deepEqual(rowsOf(db), expected, 'so does another connection while the app runs');
    } finally {
      assert.equal(await app.close(), 0);
    }
    assert.deepEqual(rowsOf(db).length, restored.length + 1, 'the write is in the file after the app closed');
    assert.equal(rowsOf(db).at(-1)?.endsWith('written by the app after the restore'), true);
    assert.equal(sqlite(db, 'PRAGMA integrity_check;').trim(), 'ok');
    assert.equal(sqlite(db, 'PRAGMA journal_mode;').trim(), 'wal', 'the database stays in WAL mode');
  });

  test('through SQLite: a rollback-journal database held open by the app', { skip: SQLITE_PATH_SKIP }, async () => {
    const { db, archive, restored } = await setUp('rollback.db', { wal: false });
    const app = await startApp(db);
    try {
      const r = await lifeboat(['restore', archive, '--force', '--json']);
      assert.equal(r.code, 0, r.stderr);
      assert.equal(JSON.parse(r.stdout).method, 'sqlite');
      await app.run("INSERT INTO items(name, qty) VALUES ('app write', 2)");
      assert.deepEqual(await app.run(ROWS), [...restored, `${restored.length + 1}|app write`]);
    } finally {
      await app.close();
    }
    assert.deepEqual(rowsOf(db), [...restored, `${restored.length + 1}|app write`]);
    assert.equal(sqlite(db, 'PRAGMA journal_mode;').trim(), 'delete');
  });

  test('through SQLite: a WAL database whose page size differs from the backup is refused clearly, unchanged', { skip: SQLITE_PATH_SKIP }, async () => {
    const { db, archive } = await setUp('pages.db', { wal: true, pageSize: 4096 });
    sqlite(db, 'PRAGMA journal_mode=DELETE; PRAGMA page_size=8192; VACUUM; PRAGMA journal_mode=WAL;');
    const app = await startApp(db);
    try {
      const view = await app.run(ROWS);
      const hash = filesHash(db);
      const r = await lifeboat(['restore', archive, '--force']);
      assert.equal(r.code, 1, r.stdout);
      assert.match(r.stderr, /pages\.db is open in WAL mode .* 8192-byte pages and the backup has 4096-byte pages/);
      assert.match(r.stderr, /Stop the app using it, then restore again/);
      assert.equal(filesHash(db), hash, 'nothing changed');
      assert.deepEqual(await app.run(ROWS), view);
    } finally {
      await app.close();
    }
  });

  test('through SQLite: an app that holds its write lock past the busy timeout makes the restore fail, unchanged', { skip: SQLITE_PATH_SKIP }, async () => {
    const { db, archive } = await setUp('busy.db', { wal: true });
    const before = rowsOf(db);
    const app = await startApp(db);
    try {
      await app.run("BEGIN IMMEDIATE; INSERT INTO items(name, qty) VALUES ('uncommitted', 3)");
      const r = await lifeboat(['restore', archive, '--force']);
      assert.equal(r.code, 1, r.stdout);
      assert.match(r.stderr, /busy\.db: another process held a lock on it for more than 10 s/);
      assert.deepEqual(rowsOf(db), before, 'nothing was restored');
      await app.run('COMMIT');
      assert.deepEqual(rowsOf(db), [...before, `${Number(before.at(-1)!.split('|')[0]) + 1}|uncommitted`], "the app's transaction committed");
    } finally {
      await app.close();
    }
  });

  test('an app that opens the database while the restore runs is noticed right before the swap', async () => {
    const { db, archive, restored } = await setUp('race.db', { wal: true });
    const changed = rowsOf(db);
    // Where to pause: a traced run against a copy finds the publishing rename of the pre-restore backup.
    const copy = path.join(t.dir, 'race-copy.db');
    copyFileSync(db, copy);
    const trace = path.join(t.dir, 'race.trace');
    const traced = await lifeboat(['restore', archive, '--to', copy], { env: { LIFEBOAT_CRASH_TRACE: trace } });
    assert.equal(traced.code, 0, traced.stderr);
    const at = readFileSync(trace, 'utf8').split('\n').find((l) => / rename .*\/snapshots\/[^/]*-pre-restore\.json$/.test(l));
    assert.ok(at, 'the trace shows the pre-restore backup being published');
    const pauseFile = path.join(t.dir, 'race.paused');
    let ended = false;
    const run = lifeboat(['restore', archive, '--force', '--json'], { env: { LIFEBOAT_PAUSE_AT: at.split(' ')[0], LIFEBOAT_PAUSE_FILE: pauseFile } }).finally(() => (ended = true));
    // Paused after the first look found nothing (no app yet) and before the last look.
    await waitFor(() => existsSync(pauseFile) || ended, 'the restore to pause');
    if (ended) assert.fail(`the restore ended before it paused: ${JSON.stringify(await run)}`);
    // Whatever happens next, the paused restore must be let go.
    const app = await startApp(db).finally(() => rmSync(pauseFile, { force: true }));
    try {
      const r = await run;
      if (support.ok) {
        assert.equal(r.code, 0, r.stderr);
        assert.equal(JSON.parse(r.stdout).method, 'sqlite', 'switched to the SQLite path');
        await app.run("INSERT INTO items(name, qty) VALUES ('app write', 5)");
        assert.deepEqual(await app.run(ROWS), [...restored, `${Number(restored.at(-1)!.split('|')[0]) + 1}|app write`]);
      } else {
        assert.equal(r.code, 1, r.stdout);
        assert.match(r.stderr, new RegExp(`race\\.db looks in use \\(pid ${app.pid} \\(sqlite3\\) has race\\.db open\\): stop the app`));
        assert.deepEqual(await app.run(ROWS), changed, "the app's database is unchanged");
        assert.deepEqual(rowsOf(db), changed);
      }
    } finally {
      await app.close();
    }
  });

  test('without node:sqlite: refused even with --force, naming the app; nothing changes and the app keeps writing', async () => {
    const { db, archive } = await setUp('fallback.db', { wal: true });
    const app = await startApp(db);
    try {
      const view = await app.run(ROWS);
      const hash = filesHash(db);
      for (const args of [['--force'], []]) {
        const r = await lifeboat(['restore', archive, ...args], { env: { LIFEBOAT_SQLITE: 'fallback' } });
        assert.equal(r.code, 1, r.stdout);
        assert.match(r.stderr, new RegExp(`fallback\\.db looks in use \\(pid ${app.pid} \\(sqlite3\\) has fallback\\.db open\\): stop the app using it, then restore again`));
        // The fallback path ran: the message says why SQLite cannot do it here.
        assert.match(r.stderr, /cannot restore into a database that another process has open on this runtime \((switched off by LIFEBOAT_SQLITE=fallback|node:sqlite is not available)/);
        assert.match(r.stderr, /--force does not change that/);
        assert.equal(filesHash(db), hash, 'nothing changed on disk');
        assert.deepEqual(await app.run(ROWS), view, "nor in the app's view");
      }
      const list = await lifeboat(['list', db, '--json']);
      assert.equal(JSON.parse(list.stdout).backups.length, 1, 'no pre-restore backup was made either');
      await app.run("INSERT INTO items(name, qty) VALUES ('still writing', 4)");
    } finally {
      await app.close();
    }
    assert.equal(rowsOf(db).at(-1)?.endsWith('still writing'), true, "the app's write is in the file");
    assert.equal(query(db, 'SELECT count(*) AS n FROM items')[0].n, 21);
  });
});

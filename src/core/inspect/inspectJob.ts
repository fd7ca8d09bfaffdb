/**
 * The jobs that look inside backups, run in the SQLite worker (src/core/sqlite/worker.ts):
 * a diff of two database images, and the restore of one table from an image into a live
 * database, through SQLite, in one transaction.
 */
import { pathToFileURL } from 'node:url';
import type { DatabaseSync } from 'node:sqlite';
import { BackupError } from '../errors';
import { crashPoint } from '../faults';
import type { JobBase } from '../sqlite/jobs';
import { nodeSqlite } from '../sqlite/nodeSqlite';
import { inspectUnavailable } from './browseJob';
import { columnChanges, diffDatabases, q, type DiffOptions, type DiffReport, type SqlConn } from './diffSql';

export interface DiffJob extends JobBase {
  op: 'diff';
  /** The older database and the newer one: private images nothing writes, except the side `live` names. */
  older: string;
  newer: string;
  options: DiffOptions;
  /**
   * The side that is a live database (WAL mode, its -wal and -shm present) others may be
   * writing: opened read-only (not immutable) and read inside one read transaction, so
   * that every count sees one committed state while writers go on.
   */
  live?: 'older' | 'newer';
  /** How long to wait for the live database's read lock; default 10 s. */
  busyTimeoutMs?: number;
}

export interface TableRestoreJob extends JobBase {
  op: 'restoreTable';
  /** The backup's image (private, nothing writes it). */
  imagePath: string;
  /** The live database to restore the table into. */
  targetPath: string;
  table: string;
  busyTimeoutMs: number;
  /** Only the checks: writes nothing. */
  checkOnly?: boolean;
}

export interface TableRestoreResult {
  /** Rows the table holds now (the backup's). */
  rows: number;
  /** Rows it held before. */
  before: number;
  /** PRAGMA foreign_key_check after the restore: the first violations, and how many in all. */
  foreignKeyViolations: { table: string; rowid: number | null; parent: string }[];
  foreignKeyViolationCount: number;
  /** Triggers on the table, dropped for the restore (so they do not fire) and created again. */
  triggers: number;
}

const uri = (p: string) => `${pathToFileURL(p).href}?immutable=1`;

/** node:sqlite for the inspect jobs; BackupError 'io' saying why when the runtime lacks it. */
export function inspectRuntime() {
  const rt = nodeSqlite();
  if (!rt) throw new BackupError('io', inspectUnavailable() ?? 'node:sqlite is not available');
  return rt;
}

/**
 * Runs inside the worker: the diff of `older` to `newer`, both opened read-only, images as
 * immutable. A live side is read inside one read transaction (BEGIN, then a read that takes
 * the WAL read mark, waiting up to the busy timeout), ended before the connection closes.
 * BackupError 'busy' when that read lock does not come in time, 'usage' for a bad table.
 */
export function runDiffJob(job: DiffJob): DiffReport {
  const rt = inspectRuntime();
  const name = (side: 'older' | 'newer') => (job.live === side ? `${pathToFileURL(job[side]).href}?mode=ro` : uri(job[side]));
  const db = new rt.sqlite.DatabaseSync(name('older'), { readOnly: true });
  let reading = false;
  try {
    db.prepare('ATTACH ? AS b').run(name('newer'));
    if (job.live) {
      const ms = job.busyTimeoutMs ?? 10_000;
      db.exec(`PRAGMA busy_timeout = ${Math.max(0, Math.floor(ms))}`);
      db.exec('BEGIN');
      reading = true;
      try {
        db.prepare(`SELECT count(*) AS n FROM ${job.live === 'older' ? 'main' : 'b'}.sqlite_schema`).get();
      } catch (e) {
        const code = ((e as { errcode?: number }).errcode ?? 0) & 0xff;
        if (code === 5 || code === 6) throw new BackupError('busy', `${job[job.live]}: database too busy: SQLite could not get a read lock on it within ${(ms / 1000).toFixed(ms % 1000 ? 1 : 0)} s`, { path: job[job.live] });
        throw new BackupError('io', `${job[job.live]}: SQLite could not read it: ${(e as Error).message}`, { path: job[job.live] });
      }
    }
    try {
      return diffDatabases(db as unknown as SqlConn, job.options);
    } catch (e) {
      if (e instanceof BackupError) throw e;
      throw new BackupError('usage', (e as Error).message);
    }
  } finally {
    if (reading) {
      try {
        db.exec('ROLLBACK');
      } catch {
        // no transaction left to end
      }
    }
    db.close();
  }
}

/**
 * Runs inside the worker: replaces table `table` of the live database with the image's, in
 * one IMMEDIATE transaction under the app's locks (the app sees it at commit; a kill
 * before the commit leaves the table as it was). Foreign keys are off for the connection
 * (no cascade reaches other tables) and the table's triggers are dropped and created again
 * inside the transaction (they do not fire); PRAGMA foreign_key_check runs afterwards and
 * is reported. Refused, writing nothing, when the table is missing on either side or its
 * definition differs (BackupError 'usage' saying what differs), or 'busy' when the app's
 * locks stay held past the timeout.
 */
export function runTableRestoreJob(job: TableRestoreJob): TableRestoreResult {
  const rt = inspectRuntime();
  let db: DatabaseSync;
  try {
    db = new rt.sqlite.DatabaseSync(job.targetPath);
  } catch (e) {
    throw new BackupError('io', `${job.targetPath}: cannot open (${(e as Error).message})`, { path: job.targetPath });
  }
  const T = q(job.table);
  try {
    db.exec(`PRAGMA busy_timeout = ${Math.max(0, Math.floor(job.busyTimeoutMs))}`);
    db.exec('PRAGMA foreign_keys = OFF');
    db.prepare('ATTACH ? AS bk').run(uri(job.imagePath));
    checkSameTable(db as unknown as SqlConn, job.targetPath, job.table);
    const info = db.prepare('SELECT name, type, pk FROM pragma_table_info(?, ?) ORDER BY cid').all(job.table, 'main') as { name: string; type: string; pk: number }[];
    const cols = info.map((r) => q(r.name));
    const wr = (db.prepare("SELECT wr FROM pragma_table_list WHERE schema = 'main' AND name = ?").get(job.table) as { wr: number }).wr === 1;
    const pks = info.filter((c) => c.pk > 0);
    const ipk = !wr && pks.length === 1 && pks[0].type.toUpperCase() === 'INTEGER';
    // Rowid tables keep their rowids (an INTEGER PRIMARY KEY is the rowid already).
    const list = wr || ipk ? cols.join(', ') : ['rowid', ...cols].join(', ');
    const triggers = db.prepare("SELECT name, sql FROM main.sqlite_schema WHERE type = 'trigger' AND tbl_name = ?").all(job.table) as { name: string; sql: string }[];
    const before = Number((db.prepare(`SELECT count(*) AS n FROM main.${T}`).get() as { n: number }).n);
    if (job.checkOnly) return { rows: before, before, foreignKeyViolations: [], foreignKeyViolationCount: 0, triggers: triggers.length };
    crashPoint('sqliteWrite', job.targetPath);
    try {
      db.exec('BEGIN IMMEDIATE');
    } catch (e) {
      throw new BackupError('busy', `${job.targetPath}: the app held its lock for more than ${job.busyTimeoutMs} ms; nothing was changed (${(e as Error).message})`, { path: job.targetPath });
    }
    try {
      for (const t of triggers) db.exec(`DROP TRIGGER main.${q(t.name)}`);
      db.exec(`DELETE FROM main.${T}`);
      db.exec(`INSERT INTO main.${T} (${list}) SELECT ${list} FROM bk.${T}`);
      for (const t of triggers) db.exec(t.sql);
      db.exec('COMMIT');
    } catch (e) {
      try {
        db.exec('ROLLBACK');
      } catch {
        // SQLite rolled it back already
      }
      throw new BackupError('io', `${job.targetPath}: restoring table ${job.table} failed, nothing was changed: ${(e as Error).message}`, { path: job.targetPath });
    }
    const rows = Number((db.prepare(`SELECT count(*) AS n FROM main.${T}`).get() as { n: number }).n);
    db.exec('DETACH bk');
    const fk = db.prepare('SELECT "table" AS t, rowid AS r, parent AS p FROM pragma_foreign_key_check').all() as { t: string; r: number | null; p: string }[];
    return {
      rows,
      before,
      foreignKeyViolations: fk.slice(0, 20).map((v) => ({ table: v.t, rowid: v.r, parent: v.p })),
      foreignKeyViolationCount: fk.length,
      triggers: triggers.length,
    };
  } finally {
    db.close();
  }
}

/**
 * Throws BackupError 'usage', saying what differs, unless `table` is in both `main` (the
 * live database at `targetPath`) and `bk` (the backup's image, attached) with the same
 * CREATE TABLE statement (whitespace aside). Reads only; shared by the table and the row restore.
 */
export function checkSameTable(db: SqlConn, targetPath: string, table: string): void {
  const def = (schema: string) => (db.prepare(`SELECT sql FROM ${schema}.sqlite_schema WHERE type = 'table' AND name = ?`).get(table) as { sql: string } | undefined)?.sql;
  const live = def('main');
  const backup = def('bk');
  if (!backup) throw new BackupError('usage', `the backup has no table named ${table}; nothing was changed`);
  if (!live) throw new BackupError('usage', `${targetPath} has no table named ${table} (restore the whole database, or create the table first); nothing was changed`, { path: targetPath });
  const norm = (s: string) => s.replace(/\s+/g, ' ').trim();
  if (norm(live) !== norm(backup)) {
    const info = (schema: string) => db.prepare('SELECT name, type, "notnull" AS "notnull", dflt_value AS dflt, pk FROM pragma_table_info(?, ?) ORDER BY cid').all(table, schema) as never[];
    const c = columnChanges(info('bk'), info('main'));
    const parts = [
      c.added.length ? `columns only the live table has: ${c.added.join(', ')}` : '',
      c.removed.length ? `columns only the backup has: ${c.removed.join(', ')}` : '',
      c.changed.length ? `columns defined differently: ${c.changed.join(', ')}` : '',
    ].filter(Boolean);
    throw new BackupError('usage', `table ${table} is defined differently in the backup and in ${targetPath} (${parts.join('; ') || 'the CREATE TABLE statements differ'}); restoring it could lose or misplace data, so nothing was changed`, { path: targetPath });
  }
}

/**
 * The restore of selected rows of one table, run in the SQLite worker
 * (src/core/sqlite/worker.ts): rows are addressed by the key the diff matches them by
 * (diffSql.ts: the INTEGER PRIMARY KEY, or the declared PRIMARY KEY of any other table,
 * WITHOUT ROWID ones included), and each selected row of the live database becomes the
 * backup's, through SQLite, in one transaction.
 */
import { pathToFileURL } from 'node:url';
import type { DatabaseSync } from 'node:sqlite';
import { BackupError } from '../errors';
import { crashPoint } from '../faults';
import type { JobBase } from '../sqlite/jobs';
import { q, type SqlConn } from './diffSql';
import { checkSameTable, inspectRuntime } from './inspectJob';

/**
 * One selected row: its key value (a table with a one-column key), an array of the key's
 * values in the key's column order, or an object holding at least the key's columns (a row
 * as `diff --rows --json` lists it). Values as the diff's JSON carries them: BLOBs as
 * `{ $blob: hex }`, integers beyond 2^53 as strings of digits.
 */
export type RowKeySpec = unknown;

export interface RowsRestoreJob extends JobBase {
  op: 'restoreRows';
  /** The backup's image (private, nothing writes it). */
  imagePath: string;
  /** The live database whose rows are restored. */
  targetPath: string;
  table: string;
  keys: RowKeySpec[];
  /** Delete the selected rows the backup does not have (added since); otherwise selecting one is refused. */
  deleteAdded: boolean;
  busyTimeoutMs: number;
  /** Only the checks: writes nothing. */
  checkOnly?: boolean;
}

/** What happened to one selected row. */
export type RowAction = 'inserted' | 'updated' | 'unchanged' | 'deleted';

export interface RowsRestoreResult {
  /** The key's columns, in order. */
  keyColumns: string[];
  /** Rows the backup had and the live table lacked, inserted. */
  inserted: number;
  /** Rows that differed, set to the backup's values. */
  updated: number;
  /** Rows selected that were already as the backup has them. */
  unchanged: number;
  /** Rows the backup lacks, deleted (only with deleteAdded). */
  deleted: number;
  /** Each selected row (the first 1000): its key (as JSON carries it) and what happened. */
  rows: { key: unknown[]; action: RowAction }[];
  /** PRAGMA foreign_key_check after the restore: the first violations, and how many in all. */
  foreignKeyViolations: { table: string; rowid: number | null; parent: string }[];
  foreignKeyViolationCount: number;
  /** Triggers on the table, dropped for the restore (so they do not fire) and created again. */
  triggers: number;
}

const uri = (p: string) => `${pathToFileURL(p).href}?immutable=1`;

/** A JSON value back as a value SQLite binds (the diff's JSON encoding reversed). */
function bindValue(v: unknown, what: string): unknown {
  if (v === null || typeof v === 'number' || typeof v === 'bigint') return v;
  if (typeof v === 'string') return /^-?\d{16,}$/.test(v) && BigInt.asIntN(64, BigInt(v)) === BigInt(v) ? BigInt(v) : v;
  if (typeof v === 'boolean') return v ? 1 : 0;
  if (v && typeof v === 'object' && typeof (v as { $blob?: unknown }).$blob === 'string' && /^([0-9a-f]{2})*$/i.test((v as { $blob: string }).$blob)) {
    return Buffer.from((v as { $blob: string }).$blob, 'hex');
  }
  throw new BackupError('usage', `${what}: ${JSON.stringify(v)} is not a key value (a number, a string, null, or { "$blob": "<hex>" })`);
}

const isBlob = (v: unknown) => !!v && typeof v === 'object' && !Array.isArray(v) && '$blob' in (v as object);

/** A key as people read it: its value, or its values as a JSON array for a key of several columns. */
export function showKey(key: unknown[]): string {
  return JSON.stringify(key.length === 1 ? key[0] : key);
}

/**
 * The key of one selected row as JSON values in `cols` order. BackupError 'usage' for a
 * key that does not fit the table's (naming it and the key's columns).
 */
export function keyValues(spec: RowKeySpec, cols: string[], table: string): unknown[] {
  const want = `table ${table} is keyed by ${cols.length === 1 ? cols[0] : `(${cols.join(', ')})`}`;
  let vals: unknown[];
  if (Array.isArray(spec)) vals = spec;
  else if (spec && typeof spec === 'object' && !isBlob(spec)) {
    const o = spec as Record<string, unknown>;
    const missing = cols.filter((c) => !(c in o));
    if (missing.length) throw new BackupError('usage', `the row ${JSON.stringify(spec)} has no ${missing.join(', ')}: ${want}`);
    vals = cols.map((c) => o[c]);
  } else vals = [spec];
  if (vals.length !== cols.length) throw new BackupError('usage', `the key ${JSON.stringify(spec)} has ${vals.length} value(s): ${want}, so give ${cols.length === 1 ? 'one value' : `a JSON array of ${cols.length} values`}`);
  for (const v of vals) bindValue(v, `the key ${JSON.stringify(spec)}`);
  return vals;
}

/**
 * Runs inside the worker: for each selected key, the live row becomes the backup's. A row
 * both have is UPDATEd to the backup's values (never REPLACEd: that deletes first, which
 * cascades to child rows and fires delete triggers); a row only the backup has is
 * INSERTed (a rowid table that is not keyed by its rowid gives it a new rowid); a row only
 * the live table has is DELETEd when `deleteAdded`. All in one IMMEDIATE transaction under
 * the app's locks, with foreign keys off for the connection (no cascades) and the table's
 * triggers dropped and created again inside it (they do not fire), as the table restore
 * does; PRAGMA foreign_key_check runs afterwards and is reported.
 *
 * Refused, writing nothing (BackupError 'usage'): the table is missing or defined
 * differently on either side (checkSameTable, saying what differs); it has no primary key
 * (its rows cannot be addressed); a key does not fit the table's; a key matches no row on
 * either side; a key matches only a live row and `deleteAdded` is off. 'busy' when the
 * app's locks stay held past the timeout.
 */
export function runRowsRestoreJob(job: RowsRestoreJob): RowsRestoreResult {
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
    const info = db.prepare('SELECT name, pk FROM pragma_table_info(?, ?) ORDER BY cid').all(job.table, 'main') as { name: string; pk: number }[];
    const keyCols = info
      .filter((c) => c.pk > 0)
      .sort((a, b) => a.pk - b.pk)
      .map((c) => c.name);
    if (!keyCols.length) {
      throw new BackupError('usage', `table ${job.table} has no primary key, so its rows cannot be addressed one by one (its rowids are not stable: VACUUM may renumber them); restore the whole table instead; nothing was changed`);
    }
    if (!job.keys.length) throw new BackupError('usage', `no rows of table ${job.table} were selected; nothing was changed`);
    const cols = info.map((c) => q(c.name));
    const values = info.filter((c) => !keyCols.includes(c.name)).map((c) => q(c.name));
    const where = (alias: string) => keyCols.map((k) => `${alias}${q(k)} IS ?`).join(' AND ');
    const seen = new Set<string>();
    const selected: { key: unknown[]; bind: unknown[] }[] = [];
    for (const spec of job.keys) {
      const key = keyValues(spec, keyCols, job.table);
      const id = JSON.stringify(key);
      if (seen.has(id)) continue;
      seen.add(id);
      selected.push({ key, bind: key.map((v) => bindValue(v, 'key')) });
    }
    const inLive = db.prepare(`SELECT 1 AS x FROM main.${T} WHERE ${where('')}`);
    const inBackup = db.prepare(`SELECT 1 AS x FROM bk.${T} WHERE ${where('')}`);
    const differs = values.length
      ? db.prepare(`SELECT 1 AS x FROM main.${T} AS x JOIN bk.${T} AS y ON ${keyCols.map((k) => `x.${q(k)} IS y.${q(k)}`).join(' AND ')} WHERE ${where('x.')} AND (${values.map((c) => `x.${c} IS NOT y.${c} OR typeof(x.${c}) IS NOT typeof(y.${c})`).join(' OR ')})`)
      : undefined;
    const plan = () =>
      selected.map((s) => {
        const live = inLive.get(...(s.bind as never[])) !== undefined;
        const backup = inBackup.get(...(s.bind as never[])) !== undefined;
        const action: RowAction | 'none' | 'added' = backup ? (live ? (differs?.get(...(s.bind as never[])) ? 'updated' : 'unchanged') : 'inserted') : live ? (job.deleteAdded ? 'deleted' : 'added') : 'none';
        return { ...s, action };
      });
    const refuse = (p: ReturnType<typeof plan>) => {
      const list = (xs: typeof p) => xs.slice(0, 10).map((x) => showKey(x.key)).join(', ') + (xs.length > 10 ? ` and ${xs.length - 10} more` : '');
      const none = p.filter((x) => x.action === 'none');
      if (none.length) throw new BackupError('usage', `table ${job.table} has no row with key ${list(none)} (${keyCols.join(', ')}) in the backup or in ${job.targetPath}; nothing was changed`, { path: job.targetPath });
      const added = p.filter((x) => x.action === 'added');
      if (added.length) throw new BackupError('usage', `the backup has no row of table ${job.table} with key ${list(added)} (${keyCols.join(', ')}): added to ${job.targetPath} since; ask to delete rows the backup lacks (--delete-added) to remove them; nothing was changed`, { path: job.targetPath });
    };
    const triggers = db.prepare("SELECT name, sql FROM main.sqlite_schema WHERE type = 'trigger' AND tbl_name = ?").all(job.table) as { name: string; sql: string }[];
    const result = (p: ReturnType<typeof plan>): Omit<RowsRestoreResult, 'foreignKeyViolations' | 'foreignKeyViolationCount'> => ({
      keyColumns: keyCols,
      inserted: p.filter((x) => x.action === 'inserted').length,
      updated: p.filter((x) => x.action === 'updated').length,
      unchanged: p.filter((x) => x.action === 'unchanged').length,
      deleted: p.filter((x) => x.action === 'deleted').length,
      rows: p.slice(0, 1000).map((x) => ({ key: x.key, action: x.action as RowAction })),
      triggers: triggers.length,
    });
    if (job.checkOnly) {
      const p = plan();
      refuse(p);
      return { ...result(p), foreignKeyViolations: [], foreignKeyViolationCount: 0 };
    }
    crashPoint('sqliteWrite', job.targetPath);
    try {
      db.exec('BEGIN IMMEDIATE');
    } catch (e) {
      throw new BackupError('busy', `${job.targetPath}: the app held its lock for more than ${job.busyTimeoutMs} ms; nothing was changed (${(e as Error).message})`, { path: job.targetPath });
    }
    let done: ReturnType<typeof plan>;
    try {
      // Planned again under the write lock: the app may have written since the check.
      done = plan();
      refuse(done);
      for (const t of triggers) db.exec(`DROP TRIGGER main.${q(t.name)}`);
      const update = values.length ? db.prepare(`UPDATE main.${T} SET (${values.join(', ')}) = (SELECT ${values.join(', ')} FROM bk.${T} WHERE ${where('')}) WHERE ${where('')}`) : undefined;
      const insert = db.prepare(`INSERT INTO main.${T} (${cols.join(', ')}) SELECT ${cols.join(', ')} FROM bk.${T} WHERE ${where('')}`);
      const del = db.prepare(`DELETE FROM main.${T} WHERE ${where('')}`);
      for (const x of done) {
        const b = x.bind as never[];
        if (x.action === 'updated') update?.run(...b, ...b);
        else if (x.action === 'inserted') insert.run(...b);
        else if (x.action === 'deleted') del.run(...b);
      }
      for (const t of triggers) db.exec(t.sql);
      db.exec('COMMIT');
    } catch (e) {
      try {
        db.exec('ROLLBACK');
      } catch {
        // SQLite rolled it back already
      }
      if (BackupError.is(e)) throw e;
      throw new BackupError('io', `${job.targetPath}: restoring rows of table ${job.table} failed, nothing was changed: ${(e as Error).message}`, { path: job.targetPath });
    }
    const fk = db.prepare('PRAGMA main.foreign_key_check').all() as { table: string; rowid: number | null; parent: string }[];
    return { ...result(done), foreignKeyViolations: fk.slice(0, 20).map((v) => ({ table: v.table, rowid: v.rowid, parent: v.parent })), foreignKeyViolationCount: fk.length };
  } finally {
    db.close();
  }
}

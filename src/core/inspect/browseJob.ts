/**
 * The jobs behind a read-only look at one database image, run in the SQLite worker
 * (src/core/sqlite/worker.ts): its schema with per-table row counts ('browse'), and one
 * page of one table's rows in a stable order ('rows'). The image is opened read-only and
 * immutable: nothing here can write, and no journal or lock file is made beside it.
 */
import { pathToFileURL } from 'node:url';
import type { DatabaseSync } from 'node:sqlite';
import { BackupError } from '../errors';
import type { JobBase } from '../sqlite/jobs';
import { nodeSqlite, nodeSqliteUnavailableReason } from '../sqlite/nodeSqlite';
import { q } from './diffSql';

export interface BrowseJob extends JobBase {
  op: 'browse';
  /** A private image nothing writes. */
  imagePath: string;
}

export interface RowsJob extends JobBase {
  op: 'rows';
  imagePath: string;
  /** As SQLite spells it; must be a table of the image. */
  table: string;
  limit: number;
  offset: number;
}

/** One object of sqlite_schema (internal sqlite_* objects left out). */
export interface SchemaEntry {
  type: 'table' | 'index' | 'view' | 'trigger';
  name: string;
  /** The table an index or trigger belongs to (a table's and a view's own name). */
  table: string;
  /** The CREATE statement; null for the indexes SQLite makes for UNIQUE and PRIMARY KEY constraints. */
  sql: string | null;
}

export interface ColumnSummary {
  name: string;
  type: string;
  notNull: boolean;
  /** Position in the primary key (1-based), 0 when not part of it. */
  pk: number;
}

export interface TableSummary {
  name: string;
  /** 'table', or 'virtual' / 'shadow' for virtual tables and the tables behind them. */
  kind: string;
  withoutRowid: boolean;
  columns: ColumnSummary[];
  /** count(*); null when it could not be counted (a virtual table whose module this SQLite lacks). */
  rows: number | null;
  /** How the rows are ordered when paged: 'rowid', 'primary key (a, b)', or 'none'. */
  order: string;
  /** Why the rows could not be counted. */
  error?: string;
}

export interface BrowseResult {
  objects: SchemaEntry[];
  tables: TableSummary[];
  pageSize: number;
  pageCount: number;
  userVersion: number;
}

/**
 * A value as a view shows it: numbers and short text as they are, NULL as null, a BLOB as
 * the hex of its first bytes and its size, long text cut with its full length, integers
 * beyond 2^53 as their decimal string.
 */
export type Cell = null | number | string | { blob: string; bytes: number } | { text: string; chars: number };

export interface RowsPage {
  table: string;
  columns: string[];
  rows: Cell[][];
  offset: number;
  limit: number;
  /** count(*) of the table. */
  total: number;
  order: string;
}

/** Bytes of a BLOB and characters of a text a Cell carries at most. */
export const CELL_BLOB_BYTES = 32;
export const CELL_TEXT_CHARS = 300;

/** A value as a Cell (see Cell). Pure. */
export function toCell(v: unknown): Cell {
  if (v === null || v === undefined) return null;
  if (v instanceof Uint8Array) {
    const b = Buffer.from(v.buffer, v.byteOffset, v.byteLength);
    return { blob: b.subarray(0, CELL_BLOB_BYTES).toString('hex'), bytes: b.byteLength };
  }
  if (typeof v === 'bigint') return v >= BigInt(Number.MIN_SAFE_INTEGER) && v <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(v) : v.toString();
  if (typeof v === 'number') return v;
  const s = String(v);
  return s.length > CELL_TEXT_CHARS ? { text: s.slice(0, CELL_TEXT_CHARS), chars: s.length } : s;
}

/** The message of every inspect job where the runtime has no node:sqlite; undefined where it has. */
export function inspectUnavailable(): string | undefined {
  if (nodeSqlite()) return undefined;
  return `looking inside a backup needs SQLite in the runtime (node:sqlite: Node 22.13 or later, VS Code 1.101 or later): ${nodeSqliteUnavailableReason()}`;
}

function open(imagePath: string): DatabaseSync {
  const rt = nodeSqlite();
  if (!rt) throw new BackupError('io', inspectUnavailable() ?? 'node:sqlite is not available');
  try {
    return new rt.sqlite.DatabaseSync(`${pathToFileURL(imagePath).href}?immutable=1`, { readOnly: true });
  } catch (e) {
    throw new BackupError('io', `${imagePath}: cannot open the image (${(e as Error).message})`, { path: imagePath });
  }
}

interface TableListRow {
  name: string;
  type: string;
  wr: number;
}

function tableInfo(db: DatabaseSync, name: string): ColumnSummary[] {
  return (db.prepare("SELECT name, type, \"notnull\" AS nn, pk FROM pragma_table_info(?, 'main') ORDER BY cid").all(name) as { name: string; type: string; nn: number; pk: number }[]).map((c) => ({
    name: c.name,
    type: c.type,
    notNull: c.nn === 1,
    pk: Number(c.pk),
  }));
}

/** The ORDER BY of a table's pages and its label. */
function orderOf(t: TableListRow, columns: ColumnSummary[]): { sql: string; label: string } {
  if (t.type === 'table' && !t.wr) return { sql: 'ORDER BY rowid', label: 'rowid' };
  const pk = columns.filter((c) => c.pk > 0).sort((a, b) => a.pk - b.pk);
  if (pk.length) return { sql: `ORDER BY ${pk.map((c) => q(c.name)).join(', ')}`, label: `primary key (${pk.map((c) => c.name).join(', ')})` };
  return { sql: '', label: 'none' };
}

function tables(db: DatabaseSync): TableListRow[] {
  return (db.prepare("SELECT name, type, wr FROM pragma_table_list WHERE schema = 'main' AND name NOT LIKE 'sqlite\\_%' ESCAPE '\\' ORDER BY name").all() as unknown as TableListRow[]).map((r) => ({
    name: r.name,
    type: r.type,
    wr: Number(r.wr),
  }));
}

/** Runs inside the worker: the image's schema, and per table its columns and row count. */
export function runBrowseJob(job: BrowseJob): BrowseResult {
  const db = open(job.imagePath);
  try {
    const objects = (db.prepare("SELECT type, name, tbl_name AS tbl, sql FROM sqlite_schema WHERE name NOT LIKE 'sqlite\\_%' ESCAPE '\\' ORDER BY type, name").all() as { type: SchemaEntry['type']; name: string; tbl: string; sql: string | null }[]).map((o) => ({
      type: o.type,
      name: o.name,
      table: o.tbl,
      sql: o.sql,
    }));
    const out: TableSummary[] = [];
    for (const t of tables(db)) {
      if (t.type === 'view') continue;
      const columns = tableInfo(db, t.name);
      const summary: TableSummary = { name: t.name, kind: t.type, withoutRowid: t.wr === 1, columns, rows: null, order: orderOf(t, columns).label };
      try {
        summary.rows = Number((db.prepare(`SELECT count(*) AS n FROM main.${q(t.name)}`).get() as { n: number }).n);
      } catch (e) {
        summary.error = (e as Error).message;
      }
      out.push(summary);
    }
    const pragma = (name: string) => Number((db.prepare(`PRAGMA ${name}`).get() as Record<string, number>)[name]);
    return { objects, tables: out, pageSize: pragma('page_size'), pageCount: pragma('page_count'), userVersion: pragma('user_version') };
  } finally {
    db.close();
  }
}

/**
 * Runs inside the worker: rows `offset` to `offset + limit` of one table, by rowid for a
 * rowid table, by primary key for a WITHOUT ROWID one (LIMIT/OFFSET: never the whole
 * table). BackupError 'usage' for a name that is not a table (or view) of the image.
 */
export function runRowsJob(job: RowsJob): RowsPage {
  const db = open(job.imagePath);
  try {
    const t = tables(db).find((x) => x.name === job.table);
    if (!t) throw new BackupError('usage', `the backup has no table named ${job.table}`);
    const columns = tableInfo(db, t.name);
    const order = t.type === 'view' ? { sql: '', label: 'none' } : orderOf(t, columns);
    const T = `main.${q(t.name)}`;
    const limit = Math.max(1, Math.min(10_000, Math.floor(job.limit)));
    const offset = Math.max(0, Math.floor(job.offset));
    const total = Number((db.prepare(`SELECT count(*) AS n FROM ${T}`).get() as { n: number }).n);
    const st = db.prepare(`SELECT ${columns.map((c) => q(c.name)).join(', ') || '*'} FROM ${T} ${order.sql} LIMIT ? OFFSET ?`);
    st.setReadBigInts(true);
    st.setReturnArrays?.(true);
    const raw = st.all(limit, offset) as unknown[];
    const names = columns.map((c) => c.name);
    const rows = raw.map((r) => (Array.isArray(r) ? r.map(toCell) : names.map((n) => toCell((r as Record<string, unknown>)[n]))));
    return { table: t.name, columns: names, rows, offset, limit, total, order: order.label };
  } finally {
    db.close();
  }
}

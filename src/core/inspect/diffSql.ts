/**
 * What changed between two SQLite databases, computed by SQLite itself on one connection
 * that has the older database as `main` and the newer attached as `b` (both read-only).
 * Runs inside the SQLite worker (inspectJob.ts); streams through SQLite's own b-trees and
 * sorters, so no table is held in memory.
 *
 * How rows are matched, per table present in both:
 * - by its INTEGER PRIMARY KEY (the rowid) when it has one;
 * - by its declared PRIMARY KEY columns otherwise (composite keys, WITHOUT ROWID tables);
 * - a table with no declared key is compared as a multiset of rows (its rowids are not
 *   stable: VACUUM may renumber them), which counts rows added and removed but cannot
 *   tell a changed row from a removed one plus an added one; the report says so.
 * Only the columns both versions have are compared; a key whose columns differ between
 * the two versions makes the table a multiset comparison too.
 */

/** The little of a connection this needs (node:sqlite's DatabaseSync fits it). */
export interface SqlConn {
  prepare(sql: string): {
    all(...params: unknown[]): unknown[];
    get(...params: unknown[]): unknown;
    setReadBigInts?(on: boolean): void;
  };
  exec(sql: string): void;
}

export interface SchemaObject {
  type: string;
  name: string;
}

export interface ChangedObject extends SchemaObject {
  /** Tables: the columns added, removed, or changed (type, NOT NULL, default, key). */
  columns?: { added: string[]; removed: string[]; changed: string[] };
}

export interface TableDiff {
  added: number;
  removed: number;
  changed: number;
  /** How rows were matched: 'rowid (id)', 'primary key (a, b)', or 'none (compared as multisets)'. */
  key: string;
  /** With rows: the columns of the table in the older and in the newer database (the keys of their rows). */
  columns?: { older: string[]; newer: string[] };
  /** With rows: the rows themselves (at most `limit` of each). */
  rows?: {
    added: Row[];
    removed: Row[];
    /** Keyed tables only: the row in the older and in the newer database. */
    changed: { old: Row; new: Row }[];
  };
}

/** A row as JSON can carry it: BLOBs as { $blob: hex }, integers beyond 2^53 as strings. */
export type Row = Record<string, unknown>;

export interface DiffReport {
  schema: { added: SchemaObject[]; removed: SchemaObject[]; changed: ChangedObject[] };
  tables: Record<string, TableDiff>;
  /** Tables present in both that were not compared (virtual tables and their shadow tables), with why. */
  notCompared: Record<string, string>;
}

export interface DiffOptions {
  /** Only this table (as SQLite spells it). */
  table?: string;
  /** List the rows too. */
  rows?: boolean;
  /** Rows of each kind listed per table at most; 0 = all. */
  limit?: number;
  offset?: number;
}

export const q = (name: string) => `"${name.replace(/"/g, '""')}"`;

interface ColumnInfo {
  name: string;
  type: string;
  notnull: number;
  dflt: unknown;
  pk: number;
}

function columns(db: SqlConn, schema: string, table: string): ColumnInfo[] {
  return (db.prepare('SELECT name, type, "notnull" AS "notnull", dflt_value AS dflt, pk FROM pragma_table_info(?, ?) ORDER BY cid').all(table, schema) as ColumnInfo[]).map((c) => ({ ...c }));
}

/** type and WITHOUT ROWID of every table of a schema (pragma table_list: 'table', 'virtual', 'shadow'). */
function tableList(db: SqlConn, schema: string): Map<string, { type: string; wr: boolean }> {
  const out = new Map<string, { type: string; wr: boolean }>();
  for (const r of db.prepare('SELECT name, type, wr FROM pragma_table_list WHERE schema = ?').all(schema) as { name: string; type: string; wr: number }[]) {
    if (!r.name.startsWith('sqlite_')) out.set(r.name, { type: r.type, wr: !!r.wr });
  }
  return out;
}

const norm = (sql: unknown) => String(sql ?? '').replace(/\s+/g, ' ').trim();

function objects(db: SqlConn, schema: string): Map<string, { type: string; name: string; sql: string }> {
  const out = new Map<string, { type: string; name: string; sql: string }>();
  for (const r of db.prepare(`SELECT type, name, sql FROM ${schema}.sqlite_schema WHERE name NOT LIKE 'sqlite\\_%' ESCAPE '\\'`).all() as { type: string; name: string; sql: string }[]) {
    out.set(`${r.type}\u0000${r.name}`, { type: r.type, name: r.name, sql: norm(r.sql) });
  }
  return out;
}

/** The columns of a table that differ between two versions. */
export function columnChanges(a: ColumnInfo[], b: ColumnInfo[]): { added: string[]; removed: string[]; changed: string[] } {
  const byName = (cs: ColumnInfo[]) => new Map(cs.map((c) => [c.name, c]));
  const A = byName(a);
  const B = byName(b);
  const same = (x: ColumnInfo, y: ColumnInfo) => x.type === y.type && x.notnull === y.notnull && String(x.dflt) === String(y.dflt) && x.pk === y.pk;
  return {
    added: b.filter((c) => !A.has(c.name)).map((c) => c.name),
    removed: a.filter((c) => !B.has(c.name)).map((c) => c.name),
    changed: a.filter((c) => B.has(c.name) && !same(c, B.get(c.name)!)).map((c) => c.name),
  };
}

function schemaDiff(db: SqlConn): DiffReport['schema'] {
  const a = objects(db, 'main');
  const b = objects(db, 'b');
  const added = [...b.values()].filter((o) => !a.has(`${o.type}\u0000${o.name}`)).map(({ type, name }) => ({ type, name }));
  const removed = [...a.values()].filter((o) => !b.has(`${o.type}\u0000${o.name}`)).map(({ type, name }) => ({ type, name }));
  const changed: ChangedObject[] = [];
  for (const [k, o] of a) {
    const n = b.get(k);
    if (!n || n.sql === o.sql) continue;
    changed.push(o.type === 'table' ? { type: o.type, name: o.name, columns: columnChanges(columns(db, 'main', o.name), columns(db, 'b', o.name)) } : { type: o.type, name: o.name });
  }
  return { added, removed, changed };
}

/** How a table's rows are matched in both versions: key columns (empty: multiset) and the label. */
export function keyOf(a: ColumnInfo[], b: ColumnInfo[], wrA: boolean, wrB: boolean): { cols: string[]; label: string } {
  const pk = (cs: ColumnInfo[]) =>
    cs
      .filter((c) => c.pk > 0)
      .sort((x, y) => x.pk - y.pk)
      .map((c) => c.name);
  const ka = pk(a);
  const kb = pk(b);
  if (!ka.length || ka.join('\u0000') !== kb.join('\u0000') || wrA !== wrB) return { cols: [], label: 'none (compared as multisets)' };
  const ipk = !wrA && ka.length === 1 && a.find((c) => c.name === ka[0])!.type.toUpperCase() === 'INTEGER';
  return { cols: ka, label: ipk ? `rowid (${ka[0]})` : `primary key (${ka.join(', ')})` };
}

/** A value as JSON carries it. */
function jsonValue(v: unknown): unknown {
  if (v instanceof Uint8Array) return { $blob: Buffer.from(v.buffer, v.byteOffset, v.byteLength).toString('hex') };
  if (typeof v === 'bigint') return v >= BigInt(Number.MIN_SAFE_INTEGER) && v <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(v) : v.toString();
  return v;
}

function jsonRow(r: unknown): Row {
  const out: Row = {};
  for (const [k, v] of Object.entries(r as Record<string, unknown>)) out[k] = jsonValue(v);
  return out;
}

function rowsOf(db: SqlConn, sql: string, params: unknown[]): Row[] {
  const st = db.prepare(sql);
  st.setReadBigInts?.(true);
  return st.all(...params).map(jsonRow);
}

function tableDiff(db: SqlConn, table: string, wrA: boolean, wrB: boolean, o: DiffOptions): TableDiff {
  const ca = columns(db, 'main', table);
  const cb = columns(db, 'b', table);
  const common = ca.map((c) => c.name).filter((n) => cb.some((c) => c.name === n));
  const key = keyOf(ca, cb, wrA, wrB);
  const T = q(table);
  const count = (sql: string) => Number((db.prepare(sql).get() as { n: number | bigint | null }).n ?? 0);
  const limit = o.limit ?? 1000;
  const page = limit > 0 ? ` LIMIT ${Math.floor(limit)} OFFSET ${Math.floor(o.offset ?? 0)}` : '';
  if (!key.cols.length) {
    if (!common.length) return { added: 0, removed: 0, changed: 0, key: key.label };
    const cols = common.map(q).join(', ');
    // Each distinct row with how many more times the newer version has it (negative: fewer).
    const deltas = `SELECT ${cols}, sum(s) AS d FROM (SELECT ${cols}, 1 AS s FROM b.${T} UNION ALL SELECT ${cols}, -1 AS s FROM main.${T}) GROUP BY ${cols}`;
    const r = db.prepare(`SELECT total(max(d, 0)) AS added, total(max(-d, 0)) AS removed FROM (${deltas})`).get() as { added: number; removed: number };
    const out: TableDiff = { added: Number(r.added), removed: Number(r.removed), changed: 0, key: key.label };
    if (o.rows) {
      out.columns = { older: common, newer: common };
      const list = (sign: 1 | -1) => rowsOf(db, `SELECT ${cols}, ${sign === 1 ? 'd' : '-d'} AS "$count" FROM (${deltas}) WHERE d ${sign === 1 ? '>' : '<'} 0 ORDER BY ${cols}${page}`, []);
      out.rows = { added: list(1), removed: list(-1), changed: [] };
    }
    return out;
  }
  const on = key.cols.map((k) => `x.${q(k)} IS y.${q(k)}`).join(' AND ');
  const values = common.filter((c) => !key.cols.includes(c));
  const differs = values.length ? values.map((c) => `x.${q(c)} IS NOT y.${q(c)}`).join(' OR ') : '0';
  const addedFrom = `FROM b.${T} AS y WHERE NOT EXISTS (SELECT 1 FROM main.${T} AS x WHERE ${on})`;
  const removedFrom = `FROM main.${T} AS x WHERE NOT EXISTS (SELECT 1 FROM b.${T} AS y WHERE ${on})`;
  const changedFrom = `FROM main.${T} AS x JOIN b.${T} AS y ON ${on} WHERE ${differs}`;
  const count3 = (): Pick<TableDiff, 'added' | 'removed' | 'changed'> => {
    if (!(wrA || key.label.startsWith('rowid'))) {
      return { added: count(`SELECT count(*) AS n ${addedFrom}`), removed: count(`SELECT count(*) AS n ${removedFrom}`), changed: count(`SELECT count(*) AS n ${changedFrom}`) };
    }
    // A key that holds no NULL (the rowid, a WITHOUT ROWID table's): one pass over the older
    // table, each row looked up by key in the newer one. No match: removed; a match that
    // differs: changed. Unique non-NULL keys match each newer row at most once, so the newer
    // rows nothing matched (added) are its count minus the matches.
    const hit = `y.${q(key.cols[0])} IS NOT NULL`;
    const r = db.prepare(`SELECT count(*) AS n, total(${hit}) AS pairs, total(${hit} AND (${differs})) AS changed FROM main.${T} AS x LEFT JOIN b.${T} AS y ON ${on}`).get() as { n: number | bigint; pairs: number; changed: number };
    const pairs = Number(r.pairs);
    return { added: count(`SELECT count(*) AS n FROM b.${T}`) - pairs, removed: Number(r.n) - pairs, changed: Number(r.changed) };
  };
  const out: TableDiff = { ...count3(), key: key.label };
  if (o.rows) {
    out.columns = { older: ca.map((c) => c.name), newer: cb.map((c) => c.name) };
    const byKey = (alias: string) => key.cols.map((k) => `${alias}.${q(k)}`).join(', ');
    const keys = rowsOf(db, `SELECT ${key.cols.map((k) => `x.${q(k)} AS ${q(k)}`).join(', ')} ${changedFrom} ORDER BY ${byKey('x')}${page}`, []);
    const where = key.cols.map((k) => `${q(k)} IS ?`).join(' AND ');
    const fetch = (schema: string, k: Row) => {
      const st = db.prepare(`SELECT * FROM ${schema}.${T} WHERE ${where}`);
      st.setReadBigInts?.(true);
      return jsonRow(st.get(...key.cols.map((c) => sqlValue(k[c]))));
    };
    out.rows = {
      added: rowsOf(db, `SELECT y.* ${addedFrom} ORDER BY ${byKey('y')}${page}`, []),
      removed: rowsOf(db, `SELECT x.* ${removedFrom} ORDER BY ${byKey('x')}${page}`, []),
      changed: keys.map((k) => ({ old: fetch('main', k), new: fetch('b', k) })),
    };
  }
  return out;
}

/** A JSON row value back as a value SQLite binds. */
function sqlValue(v: unknown): unknown {
  if (v && typeof v === 'object' && '$blob' in (v as Row)) return Buffer.from(String((v as Row).$blob), 'hex');
  if (typeof v === 'string' && /^-?\d{16,}$/.test(v)) return BigInt(v);
  return v;
}

/**
 * The difference from `main` (older) to `b` (newer) on an open connection. Throws an Error
 * naming the table when `o.table` is in neither database.
 */
export function diffDatabases(db: SqlConn, o: DiffOptions = {}): DiffReport {
  const report: DiffReport = { schema: schemaDiff(db), tables: {}, notCompared: {} };
  const la = tableList(db, 'main');
  const lb = tableList(db, 'b');
  if (o.table !== undefined && !la.has(o.table) && !lb.has(o.table)) throw new Error(`no table named ${o.table} in either database`);
  if (o.table !== undefined && (la.get(o.table)?.type === 'view' || lb.get(o.table)?.type === 'view')) throw new Error(`${o.table} is a view, which holds no rows of its own; compare the tables it reads`);
  for (const [name, a] of la) {
    if (o.table !== undefined && name !== o.table) continue;
    const b = lb.get(name);
    if (!b) continue;
    // A view holds no rows of its own (the schema diff covers its definition).
    if (a.type === 'view' || b.type === 'view') continue;
    if (a.type !== 'table' || b.type !== 'table') {
      report.notCompared[name] = `a ${a.type === 'table' ? b.type : a.type} table: compared through the table it belongs to`;
      continue;
    }
    report.tables[name] = tableDiff(db, name, a.wr, b.wr, o);
  }
  if (o.table !== undefined && !report.tables[o.table] && !report.notCompared[o.table]) {
    // In one database only: every row added or removed.
    const inA = la.has(o.table);
    const n = Number((db.prepare(`SELECT count(*) AS n FROM ${inA ? 'main' : 'b'}.${q(o.table)}`).get() as { n: number }).n);
    report.tables[o.table] = { added: inA ? 0 : n, removed: inA ? n : 0, changed: 0, key: inA ? 'removed table' : 'added table' };
  }
  return report;
}

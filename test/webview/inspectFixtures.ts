/**
 * States and pages for the inspect views in the headless tests: a backup of a small shop
 * database, and its comparison with the current database, shaped as
 * src/extension/inspectHost.ts sends them.
 */
import type { BrowseState, CompareState, DiffRowsPage, InspectRequestResults, RowsPage } from '../../webview/protocol';

const DB = '/home/dev/shop/data/shop.db';
const CREATED = '2026-03-15T06:00:00.000Z';
const BACKUP = { kind: 'backup' as const, id: 'shop-20260315T060000000Z-manual', created: CREATED, backupKind: 'manual' as const, db: DB, dbLabel: 'data/shop.db', takenAt: CREATED };

/** Rows of the fixture's tables. */
const ROWS: Record<string, number> = { customers: 250, kv: 20, log: 6, orders: 100 };

export function browseState(): BrowseState {
  return {
    view: 'browse',
    backup: BACKUP,
    objects: [
      { type: 'table', name: 'customers', table: 'customers', sql: 'CREATE TABLE customers(id INTEGER PRIMARY KEY, name TEXT NOT NULL, avatar BLOB)' },
      { type: 'table', name: 'kv', table: 'kv', sql: 'CREATE TABLE kv(k TEXT PRIMARY KEY, v) WITHOUT ROWID' },
      { type: 'table', name: 'log', table: 'log', sql: 'CREATE TABLE log(msg TEXT)' },
      { type: 'table', name: 'orders', table: 'orders', sql: 'CREATE TABLE orders(id INTEGER PRIMARY KEY, customer_id INTEGER NOT NULL REFERENCES customers(id), total INTEGER)' },
      { type: 'index', name: 'idx_orders_customer', table: 'orders', sql: 'CREATE INDEX idx_orders_customer ON orders(customer_id)' },
      { type: 'view', name: 'big_orders', table: 'big_orders', sql: 'CREATE VIEW big_orders AS SELECT * FROM orders WHERE total > 50' },
      { type: 'trigger', name: 'orders_log', table: 'orders', sql: "CREATE TRIGGER orders_log AFTER INSERT ON orders BEGIN INSERT INTO log VALUES ('order ' || new.id); END" },
    ],
    tables: [
      { name: 'customers', kind: 'table', withoutRowid: false, rows: ROWS.customers, order: 'rowid', columns: [{ name: 'id', type: 'INTEGER', notNull: false, pk: 1 }, { name: 'name', type: 'TEXT', notNull: true, pk: 0 }, { name: 'avatar', type: 'BLOB', notNull: false, pk: 0 }] },
      { name: 'kv', kind: 'table', withoutRowid: true, rows: ROWS.kv, order: 'primary key (k)', columns: [{ name: 'k', type: 'TEXT', notNull: true, pk: 1 }, { name: 'v', type: '', notNull: false, pk: 0 }] },
      { name: 'log', kind: 'table', withoutRowid: false, rows: ROWS.log, order: 'rowid', columns: [{ name: 'msg', type: 'TEXT', notNull: false, pk: 0 }] },
      { name: 'orders', kind: 'table', withoutRowid: false, rows: ROWS.orders, order: 'rowid', columns: [{ name: 'id', type: 'INTEGER', notNull: false, pk: 1 }, { name: 'customer_id', type: 'INTEGER', notNull: true, pk: 0 }, { name: 'total', type: 'INTEGER', notNull: false, pk: 0 }] },
    ],
    pageSize: 4096,
    pageCount: 10,
    pageRows: 100,
    canCompare: true,
  };
}

export function compareState(restoreOffered = true): CompareState {
  return {
    view: 'compare',
    older: BACKUP,
    newer: { kind: 'live', db: DB, dbLabel: 'data/shop.db', takenAt: '2026-03-15T12:00:00.000Z' },
    schema: {
      added: [{ type: 'table', name: 'extra_t' }],
      removed: [{ type: 'index', name: 'idx_orders_customer' }],
      changed: [{ type: 'table', name: 'kv', columns: { added: ['extra'], removed: [], changed: [] } }],
    },
    tables: [
      { name: 'customers', added: 3, removed: 3, changed: 2, key: 'rowid (id)' },
      { name: 'kv', added: 0, removed: 1, changed: 0, key: 'primary key (k)' },
      { name: 'log', added: 2, removed: 1, changed: 0, key: 'none (compared as multisets)' },
      { name: 'orders', added: 1, removed: 120, changed: 3, key: 'rowid (id)' },
    ],
    notCompared: {},
    pageRows: 50,
    restore: restoreOffered ? { offered: true } : { offered: false, why: 'only a comparison with the current database restores a table' },
  };
}

function rowsPage(table: string, offset: number): RowsPage {
  const total = ROWS[table] ?? 0;
  const n = Math.max(0, Math.min(100, total - offset));
  const rows = Array.from({ length: n }, (_, i) => {
    const id = offset + i + 1;
    if (table === 'customers') return [id, `customer ${id}`, id % 3 ? null : { blob: 'ffd8ffe000104a464946', bytes: 2048 }];
    if (table === 'orders') return [id, ((id - 1) % 50) + 1, id];
    if (table === 'kv') return [`k${id}`, id];
    return [`log line ${id}`];
  });
  const columns = browseState().tables.find((t) => t.name === table)!.columns.map((c) => c.name);
  return { table, columns, rows, offset, limit: 100, total, order: table === 'kv' ? 'primary key (k)' : 'rowid' };
}

function diffRowsPage(table: string, offset: number): DiffRowsPage {
  const t = compareState().tables.find((x) => x.name === table)!;
  const cols = ['id', 'customer_id', 'total'];
  // Keyed tables carry each row's key, as the host sends it for Restore Selected Rows.
  const keyed = t.key.startsWith('rowid') || t.key.startsWith('primary key');
  const row = (values: number[]) => (keyed ? { values, key: [values[0]] } : { values });
  const removed = Array.from({ length: Math.max(0, Math.min(50, t.removed - offset)) }, (_, i) => row([offset + i + 200, 5, offset + i + 200]));
  return {
    table,
    key: t.key,
    offset,
    limit: 50,
    counts: { added: t.added, removed: t.removed, changed: t.changed },
    olderColumns: cols,
    newerColumns: cols,
    added: offset ? [] : [row([301, 1, 999])],
    removed,
    changed: offset ? [] : [1, 2, 3].map((id) => ({ old: row([id, id, id]), new: row([id, id, id + 1000]) })),
  };
}

/** Answers an inspect view's Request like the real host (restoring "kv" is refused, as a table defined differently is). */
export function answerInspect(method: string, params: { table: string; offset?: number }): InspectRequestResults[keyof InspectRequestResults] {
  switch (method) {
    case 'inspect/table/rows':
      return rowsPage(params.table, params.offset ?? 0);
    case 'inspect/diff/rows':
      return diffRowsPage(params.table, params.offset ?? 0);
    case 'inspect/table/restore':
      if (params.table === 'kv') throw new Error('table kv is defined differently in the backup and in the database; nothing was changed');
      return { outcome: 'restored', message: `Restored table ${params.table}` };
    case 'inspect/rows/restore':
      if (params.table === 'kv') throw new Error('table kv is defined differently in the backup and in the database; nothing was changed');
      return { outcome: 'restored', message: `Restored rows of table ${params.table}` };
  }
  throw new Error(`unknown request ${method}`);
}

/**
 * The database the inspect checks build (in the extension host and in the workbench): a
 * small shop with a table of each kind of key, made and changed by Debian's sqlite3 shell.
 * SHOP_CHANGES are known inserts, deletes and updates (and schema changes); SHOP_DIFF is
 * exactly what a comparison of the database before and after them must count.
 */
import { sqlite } from '../fixtures/sqlite';

export const SHOP_SCHEMA = `
PRAGMA journal_mode=WAL;
CREATE TABLE customers(id INTEGER PRIMARY KEY, name TEXT NOT NULL);
CREATE TABLE orders(id INTEGER PRIMARY KEY, customer_id INTEGER NOT NULL REFERENCES customers(id), total INTEGER);
CREATE TABLE tags(a TEXT, b INT, note TEXT, PRIMARY KEY(a, b));
CREATE TABLE kv(k TEXT PRIMARY KEY, v) WITHOUT ROWID;
CREATE TABLE log(msg TEXT);
CREATE INDEX idx_orders_customer ON orders(customer_id);
CREATE VIEW big_orders AS SELECT * FROM orders WHERE total > 50;
WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i+1 FROM n WHERE i < 250)
INSERT INTO customers(id, name) SELECT i, 'customer ' || i FROM n;
WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i+1 FROM n WHERE i < 100)
INSERT INTO orders(id, customer_id, total) SELECT i, ((i - 1) % 50) + 1, i FROM n;
WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i+1 FROM n WHERE i < 30)
INSERT INTO tags(a, b, note) SELECT 'a' || (i % 3), i, 'note ' || i FROM n;
WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i+1 FROM n WHERE i < 20)
INSERT INTO kv(k, v) SELECT 'k' || i, i FROM n;
INSERT INTO log VALUES ('a'), ('a'), ('b'), ('c'), ('d'), ('e');
CREATE TRIGGER orders_log AFTER INSERT ON orders BEGIN INSERT INTO log VALUES ('order ' || new.id); END;
`;

/** Row counts of the tables SHOP_SCHEMA makes. */
export const SHOP_ROWS = { customers: 250, orders: 100, tags: 30, kv: 20, log: 6 };

export const SHOP_CHANGES = `
INSERT INTO customers(id, name) VALUES (251, 'new 251'), (252, 'new 252'), (253, 'new 253');
UPDATE customers SET name = 'renamed ' || id WHERE id IN (10, 20);
DELETE FROM orders WHERE customer_id IN (5, 6, 7);
DELETE FROM customers WHERE id IN (5, 6, 7);
INSERT INTO orders(id, customer_id, total) VALUES (101, 1, 999);
UPDATE orders SET total = total + 1000 WHERE id IN (1, 2, 3);
INSERT INTO tags VALUES ('z', 1, 'new');
DELETE FROM tags WHERE a = 'a1' AND b = 1;
UPDATE tags SET note = 'upd' WHERE b IN (2, 3);
ALTER TABLE kv ADD COLUMN extra;
DELETE FROM kv WHERE k = 'k1';
INSERT INTO log VALUES ('x');
DELETE FROM log WHERE msg = 'b';
CREATE TABLE extra_t(x);
DROP INDEX idx_orders_customer;
CREATE INDEX idx_customers_name ON customers(name);
`;

/**
 * What comparing the database before SHOP_CHANGES with it after must report. The order
 * insert fires orders_log, so log gains 'x' and 'order 101'. orders loses the 6 orders of
 * customers 5, 6 and 7 (ids 5, 6, 7, 55, 56, 57): restoring orders alone brings them back
 * without their customers, which the foreign key check reports.
 */
export const SHOP_DIFF = {
  tables: {
    customers: { added: 3, removed: 3, changed: 2, key: 'rowid (id)' },
    orders: { added: 1, removed: 6, changed: 3, key: 'rowid (id)' },
    tags: { added: 1, removed: 1, changed: 2, key: 'primary key (a, b)' },
    kv: { added: 0, removed: 1, changed: 0, key: 'primary key (k)' },
    log: { added: 2, removed: 1, changed: 0, key: 'none (compared as multisets)' },
  },
  schema: {
    added: ['index idx_customers_name', 'table extra_t'],
    removed: ['index idx_orders_customer'],
    changed: ['table kv'],
  },
  removedOrders: [5, 6, 7, 55, 56, 57],
  changedOrders: [1, 2, 3],
  fkViolationsAfterOrdersRestore: 6,
} as const;

/** Makes the shop database at `db` (which must not exist). Throws when sqlite3 fails. */
export function makeShopDb(db: string): void {
  sqlite(db, SHOP_SCHEMA);
}

/** Applies SHOP_CHANGES to `db`. */
export function changeShopDb(db: string): void {
  sqlite(db, SHOP_CHANGES);
}

/** sqlite3's SHA3 of one table's content. */
export function tableHash(db: string, table: string): string {
  return sqlite(db, `.sha3sum ${table}`).trim();
}

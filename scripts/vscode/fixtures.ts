/**
 * The workspace every real-VS-Code run starts from: a folder with a small SQLite
 * database made by Debian's sqlite3 shell. Each run copies it (see makeRunDirs), so
 * tests may change their copy freely.
 */
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { makeDb, query } from '../../test/fixtures/sqlite';

/** The database file inside the fixture workspace, relative to its root. */
export const FIXTURE_DB = 'app.db';
/** Rows in the fixture database's `items` table. */
export const FIXTURE_ROWS = 50;

/**
 * Makes the fixture workspace at `dir`, replacing whatever was there: `app.db` (tables
 * items and audit, FIXTURE_ROWS items, rollback journal) and a README. Returns `dir`.
 * Throws when sqlite3 fails or the database does not hold the expected rows.
 * Safe to repeat.
 */
export function makeWorkspaceFixture(dir: string): string {
  rmSync(dir, { recursive: true, force: true });
  mkdirSync(dir, { recursive: true });
  const db = path.join(dir, FIXTURE_DB);
  makeDb(db, { rows: FIXTURE_ROWS });
  const [{ n }] = query<{ n: number }>(db, 'SELECT count(*) AS n FROM items;');
  if (n !== FIXTURE_ROWS) throw new Error(`fixture ${db} has ${n} items, expected ${FIXTURE_ROWS}`);
  writeFileSync(path.join(dir, 'README.md'), '# Fixture workspace\n\nA small app with its SQLite database, `app.db`.\n');
  return dir;
}

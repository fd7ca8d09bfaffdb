import path from 'node:path';

/** `app.db` -> `app`; keeps names readable and safe for file names. */
export function databaseStem(dbPath: string): string {
  const base = path.basename(dbPath).replace(/\.(db|sqlite3?|db3)$/i, '');
  return base.replace(/[^A-Za-z0-9._-]+/g, '_').replace(/^[._-]+/, '') || 'database';
}

/** `20261126T080712345Z`: UTC, sortable, no characters that file systems dislike. */
export function compactUtc(d: Date): string {
  return d.toISOString().replace(/[-:]/g, '').replace('.', '');
}

/** The archive's base name (its id): `<db>-<UTC time>-<kind>`, e.g. `app-20261126T080712345Z-manual`. */
export function archiveId(dbPath: string, created: Date, kind: string): string {
  return `${databaseStem(dbPath)}-${compactUtc(created)}-${kind}`;
}

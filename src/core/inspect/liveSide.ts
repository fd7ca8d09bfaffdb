/**
 * Whether a diff may read a live database where it lies, inside one read transaction of
 * its own, instead of from a snapshot copy. Only a WAL database with its -wal and -shm
 * present qualifies: there a reader holds no lock writers wait for (they go on committing;
 * only a blocking checkpoint waits for the read to end) and every query of the read sees
 * one committed state. A rollback-journal database is snapshotted instead, as a backup
 * would (the app's commits then wait only for the copy, not for the whole diff); so is a
 * WAL database without its sidecars (a read-only connection would create them and leave
 * them behind), and any database when the runtime has no node:sqlite.
 */
import { promises as fs } from 'node:fs';
import { fsError } from '../errors';
import { readDbHeader } from '../sqliteFile';
import { nodeSqlite } from '../sqlite/nodeSqlite';

/**
 * True when the diff may read `dbPath` directly (see the file comment). BackupError as
 * readDbHeader for a missing, unreadable or non-SQLite file.
 */
export async function readsLiveDirectly(dbPath: string): Promise<boolean> {
  const header = await readDbHeader(dbPath);
  if (!nodeSqlite() || header.writeVersion !== 2 || header.readVersion !== 2) return false;
  const [wal, shm] = await Promise.all([exists(`${dbPath}-wal`), exists(`${dbPath}-shm`)]);
  return wal && shm;
}

async function exists(p: string): Promise<boolean> {
  try {
    await fs.lstat(p);
    return true;
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return false;
    throw fsError(e, p, 'looking for the database sidecars');
  }
}

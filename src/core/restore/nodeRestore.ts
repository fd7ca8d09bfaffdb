/**
 * The restore job that runs inside the SQLite worker (src/core/sqlite/worker.ts): copies
 * a verified image into a database that another process has open, through SQLite's
 * backup API, as the sqlite3 shell's `.restore` does (the image is the source, the live
 * database the destination). SQLite writes the pages inside one write transaction of the
 * live database, under its locks, so every connection the app holds sees the restored
 * state once it commits (the backup bumps the schema cookie, so they reload the schema
 * too), and the app's later writes land on it. A crash or kill at any moment leaves the
 * old database: the transaction either committed or SQLite rolls it back (a WAL without
 * its commit frame, or a hot journal) when the database is next opened.
 *
 * What cannot work is refused before anything is written: a live WAL database whose page
 * size differs from the image's (SQLite cannot change a WAL database's page size, and its
 * backup fails with "attempt to write a readonly database"), and locks the app holds for
 * longer than the busy timeout.
 */
import { pathToFileURL } from 'node:url';
import type { DatabaseSync } from 'node:sqlite';
import { BackupError } from '../errors';
import { crashPoint } from '../faults';
import type { JobBase, JobContext } from '../sqlite/jobs';
import { nodeSqlite, nodeSqliteUnavailableReason } from '../sqlite/nodeSqlite';

export interface RestoreJob extends JobBase {
  op: 'restore';
  /** The verified image: a private standalone file that nothing writes meanwhile. */
  imagePath: string;
  /** The live database to restore into; it must exist. */
  targetPath: string;
  /** How long to wait for the app's locks before giving up, in ms. */
  busyTimeoutMs: number;
}

export interface RestoreJobResult {
  /** `sqlite_version()` of the SQLite that wrote the database. */
  sqliteVersion: string;
  /** Pages copied. */
  pages: number;
  pageSize: number;
  /** The live database's journal mode, which the restore keeps ('wal', 'delete', ...). */
  journalMode: string;
}

/** Whole-database pages per backup step: at most about 16 steps, each a progress event. */
function pagesPerStep(pageCount: number): number {
  return Math.max(64, Math.ceil(pageCount / 16));
}

function one<T>(db: DatabaseSync, sql: string): T {
  return Object.values(db.prepare(sql).get() as Record<string, unknown>)[0] as T;
}

function isBusy(e: unknown): boolean {
  const code = (e as { errcode?: number }).errcode;
  // SQLITE_BUSY and SQLITE_LOCKED, with or without an extended code.
  return code !== undefined && ((code & 0xff) === 5 || (code & 0xff) === 6);
}

/**
 * Runs inside the worker thread only. Resolves with what was written. Throws
 * BackupError: 'inUse' (a WAL database with another page size: nothing written),
 * 'busy' (the app held a lock longer than `busyTimeoutMs`: nothing written),
 * 'notFound' / 'unwritable' / 'io' (SQLite's own failures; SQLite rolls back whatever
 * it had begun). Not safe to run twice at once on one target (callers hold its queue).
 */
export async function runRestoreJob(job: RestoreJob, ctx: JobContext): Promise<RestoreJobResult> {
  const rt = nodeSqlite();
  if (!rt?.hasBackup) {
    throw new BackupError('io', `${job.targetPath}: cannot restore through SQLite here (${rt ? `node:sqlite in Node ${process.versions.node} has no backup()` : nodeSqliteUnavailableReason()})`, { path: job.targetPath });
  }
  const target = job.targetPath;
  let live: DatabaseSync | undefined;
  let image: DatabaseSync | undefined;
  try {
    try {
      // mode=rw: never create the database if it vanished meanwhile.
      live = new rt.sqlite.DatabaseSync(`${pathToFileURL(target).href}?mode=rw`, { timeout: job.busyTimeoutMs });
    } catch (e) {
      throw new BackupError('notFound', `${target}: SQLite could not open it for the restore (${(e as Error).message})`, { path: target, cause: e });
    }
    // The image is private and nothing writes it: immutable takes no locks and leaves no sidecars.
    image = new rt.sqlite.DatabaseSync(`${pathToFileURL(job.imagePath).href}?immutable=1`, { readOnly: true });
    const imagePageSize = one<number>(image, 'PRAGMA page_size');
    const imagePages = one<number>(image, 'PRAGMA page_count');
    let journalMode: string;
    let livePageSize: number;
    try {
      journalMode = String(one<string>(live, 'PRAGMA journal_mode')).toLowerCase();
      livePageSize = one<number>(live, 'PRAGMA page_size');
    } catch (e) {
      if (isBusy(e)) throw busy(target, job.busyTimeoutMs, e);
      throw new BackupError('notSqlite', `${target}: SQLite cannot read it (${(e as Error).message}); nothing was restored`, { path: target, cause: e });
    }
    if (journalMode === 'wal' && livePageSize !== imagePageSize) throw walPageSizeMismatch(target, livePageSize, imagePageSize);
    // Wait (up to the busy timeout) until the app holds no lock that the copy needs: the
    // write lock, and in rollback mode no reader either (the commit needs EXCLUSIVE).
    // The backup's own connection, which node:sqlite opens without a busy handler, then
    // retries until it gets them; an app that takes its locks again at once delays it.
    try {
      live.exec('BEGIN EXCLUSIVE');
      live.exec('ROLLBACK');
    } catch (e) {
      if (isBusy(e)) throw busy(target, job.busyTimeoutMs, e);
      throw e;
    }
    const beat = (done: number, total: number) => ctx.progress({ phase: 'restore', done, total });
    beat(0, imagePages);
    crashPoint('sqliteWrite', target);
    let pages: number;
    try {
      pages = await rt.sqlite.backup(image, target, {
        rate: pagesPerStep(imagePages),
        // Between two steps: the next one writes into the live database again.
        progress: ({ totalPages, remainingPages }) => {
          crashPoint('sqliteWrite', target);
          beat(totalPages - remainingPages, totalPages);
        },
      });
    } catch (e) {
      const code = (e as { errcode?: number }).errcode;
      // Checked above; a page-size change between the check and the copy lands here.
      if (code !== undefined && (code & 0xff) === 8 && journalMode === 'wal') throw walPageSizeMismatch(target, livePageSize, imagePageSize);
      throw new BackupError(code !== undefined && (code & 0xff) === 8 ? 'unwritable' : 'io', `${target}: SQLite could not restore into it: ${(e as Error).message}; SQLite rolled back, nothing was restored`, { path: target, cause: e });
    }
    beat(pages, pages);
    return { sqliteVersion: rt.version, pages, pageSize: imagePageSize, journalMode };
  } finally {
    image?.close();
    // If the app has closed meanwhile this is the last connection, and SQLite checkpoints
    // and removes the WAL as it closes: the restored content stays.
    live?.close();
  }
}

function walPageSizeMismatch(target: string, live: number, image: number): BackupError {
  return new BackupError(
    'inUse',
    `${target} is open in WAL mode with ${live}-byte pages and the backup has ${image}-byte pages: SQLite cannot change the page size of a WAL database while it is in use. Stop the app using it, then restore again (the file is then replaced); nothing was changed`,
    { path: target },
  );
}

function busy(target: string, ms: number, cause: unknown): BackupError {
  return new BackupError(
    'busy',
    `${target}: another process held a lock on it for more than ${Math.round(ms / 1000)} s, so SQLite could not restore into it; nothing was changed. Try again when the app is idle, or stop it`,
    { path: target, cause },
  );
}

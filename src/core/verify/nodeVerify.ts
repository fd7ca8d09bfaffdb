/**
 * The verify job that runs inside the SQLite worker (src/core/sqlite/worker.ts): the
 * checks of checks.ts with the runtime's own SQLite (node:sqlite), which reads the image
 * from disk through its page cache (never the whole image in memory) and has FTS5 and
 * R-Tree, so those tables are checked rather than listed as not checked.
 *
 * The image is opened read-only as `file:<path>?immutable=1`: SQLite then takes no locks,
 * ignores any journal and never creates a -wal or -shm, even for an image whose header
 * still says WAL (a plain read-only open of such a file creates both and leaves them
 * behind); on top of that the connection is query_only. Images are private temporary
 * files that nothing writes while they are verified, which is what immutable requires.
 */
import { closeSync, fstatSync, openSync, readSync } from 'node:fs';
import { pathToFileURL } from 'node:url';
import type { DatabaseSync } from 'node:sqlite';
import { BackupError } from '../errors';
import type { JobBase, JobContext } from '../sqlite/jobs';
import { nodeSqlite, nodeSqliteUnavailableReason, type SqliteRuntime } from '../sqlite/nodeSqlite';
import { type CheckOptions, type CheckResult, checkHeader, checkImage, type OpenedDb, rethrowIfOutOfMemory } from './checks';

export interface VerifyJob extends JobBase, CheckOptions {
  op: 'verify';
  /** The image: a standalone file that nothing writes while it is verified. */
  imagePath: string;
}

export interface VerifyJobResult {
  /** `sqlite_version()` of the SQLite that ran the checks. */
  sqliteVersion: string;
  result: CheckResult;
}

/**
 * Runs inside the worker thread only. Resolves with the checks' result for anything
 * about the image (see checkImage). Throws an errno error when the file cannot be read,
 * BackupError 'tooLarge' when SQLite runs out of memory, BackupError 'io' when
 * node:sqlite does not load in this thread. Only reads the image.
 */
export async function runVerifyJob(job: VerifyJob, _ctx: JobContext): Promise<VerifyJobResult> {
  const rt = nodeSqlite();
  if (!rt) throw new BackupError('io', `cannot verify ${job.imagePath} with node:sqlite: ${nodeSqliteUnavailableReason()}`, { path: job.imagePath });
  const { head, size } = readHead(job.imagePath);
  try {
    const result = checkImage(checkHeader(head, size), () => openImage(rt, job.imagePath, head), {
      check: job.check,
      probeQuery: job.probeQuery,
    });
    return { sqliteVersion: rt.version, result };
  } catch (e) {
    // checkImage lets only out-of-memory errors through.
    throw new BackupError('tooLarge', `${job.imagePath}: out of memory in the verifier (${(e as Error).message})`, { path: job.imagePath });
  }
}

/** The first 100 bytes (fewer if the file is shorter) and the file's size. */
function readHead(file: string): { head: Buffer; size: number } {
  const fd = openSync(file, 'r');
  try {
    const size = fstatSync(fd).size;
    const head = Buffer.alloc(Math.min(size, 100));
    let off = 0;
    while (off < head.length) {
      const n = readSync(fd, head, off, head.length - off, off);
      if (n === 0) break;
      off += n;
    }
    return { head: head.subarray(0, off), size };
  } finally {
    closeSync(fd);
  }
}

/**
 * Opens the image read-only and immutable. A runtime that does not take `file:` URIs
 * (not seen; URL paths are documented from Node 22.15) fails to open the URI read-only;
 * then a rollback-mode image (header bytes 18 and 19 are 1), which a read-only
 * connection leaves no file beside, is opened by its plain path instead.
 */
function openImage(rt: SqliteRuntime, imagePath: string, head: Buffer): OpenedDb {
  let db: DatabaseSync;
  try {
    db = new rt.sqlite.DatabaseSync(`${pathToFileURL(imagePath).href}?immutable=1`, { readOnly: true });
  } catch (e) {
    if (head[18] !== 1 || head[19] !== 1) throw e;
    db = new rt.sqlite.DatabaseSync(imagePath, { readOnly: true });
  }
  return nodeDb(db);
}

/** A node:sqlite database as a CheckDb. */
function nodeDb(db: DatabaseSync): OpenedDb {
  return {
    exec: (sql) => db.exec(sql),
    rows: (sql) => {
      const stmt = db.prepare(sql);
      stmt.setReturnArrays(true);
      return stmt.all() as unknown as unknown[][];
    },
    countRows: (sql) => {
      // prepare() compiles the first statement only; sourceSQL is its text, so the rest follows it.
      let n = 0;
      let rest = sql;
      for (let first = true; ; first = false) {
        let stmt;
        try {
          stmt = db.prepare(rest);
        } catch (e) {
          rethrowIfOutOfMemory(e);
          if (!first && /contains no statements/i.test((e as Error).message)) break;
          throw e;
        }
        for (const _ of stmt.iterate()) n++;
        const src = stmt.sourceSQL;
        if (!rest.startsWith(src) || src === '') break;
        rest = rest.slice(src.length).replace(/^[\s;]+/, '');
        if (rest === '') break;
      }
      return n;
    },
    close: () => db.close(),
  };
}

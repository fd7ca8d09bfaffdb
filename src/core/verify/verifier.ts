/**
 * Verifies SQLite images in a worker thread, so that seconds of synchronous checking
 * never stall the caller's thread (the extension host). One worker per call. The engine
 * is the runtime's own SQLite (node:sqlite, in the SQLite worker) where it loads, else
 * sql.js (WASM, in the verifier worker); each report names the one that ran.
 */
import { existsSync, readFileSync } from 'node:fs';
import { stat } from 'node:fs/promises';
import path from 'node:path';
import { Worker } from 'node:worker_threads';
import type { VerifyMode } from '../config';
import { type Clock, systemClock } from '../context';
import { BackupError, fsError } from '../errors';
import type { VerifyReport } from '../model';
import { runSqliteJob } from '../sqlite/client';
import { nodeSqlite } from '../sqlite/nodeSqlite';
import { isoLocal } from '../time';
import type { VerifyJobResult } from './nodeVerify';
import type { WorkerReply, WorkerRequest } from './worker';

/** VerifyReport.engine.name of the in-memory WASM engine, the fallback. */
export const SQLJS_ENGINE = 'sql.js';
/** VerifyReport.engine.name of the runtime's own SQLite. */
export const NODE_SQLITE_ENGINE = 'node:sqlite';
const ENGINE_NAME = SQLJS_ENGINE;
/**
 * The verifying thread's Linux nice value, for both engines: it runs while the archive is
 * compressed, and must not compete on equal terms with the extension host's event loop.
 * 4, not more: at 10 the sql.js verifier starved while the archive was compressed and
 * then ran alone on one core (the 1 GB benchmark went from 0.76x to 0.84x of native).
 */
const VERIFY_NICE = 4;

export interface VerifyOptions {
  /** full: integrity_check; quick: quick_check; auto: quick_check when the image is larger than quickCheckAboveBytes. */
  mode: VerifyMode;
  quickCheckAboveBytes: number;
  /**
   * sql.js only, which holds the whole image in memory: larger images are not loaded
   * (status 'skipped', skippedReason names the size and the limit). node:sqlite reads the
   * image from disk through a page cache of bounded size, so it verifies any size.
   */
  maxBytes: number;
  /** Must run without error; its row count is reported. Empty means none. */
  probeQuery?: string;
  /** Aborting terminates the worker; verifyImage then rejects with BackupError 'cancelled'. */
  signal?: AbortSignal;
  /** For checkedAt and durationMs; the system clock by default. */
  clock?: Clock;
}

/**
 * Verifies the SQLite image at `imagePath` (see checks.ts for what is checked) in a fresh
 * worker thread that reads the file itself, and terminates the worker before settling:
 * with node:sqlite where it loads (nodeSqlite()), which also checks FTS5 and R-Tree
 * tables; else with sql.js, which lists those as not checked. `imagePath` must be a
 * private, standalone image that nothing writes meanwhile (node:sqlite opens it
 * immutable); nothing is written into it or beside it.
 *
 * Resolves with a report for anything about the image: 'ok'; 'failed' with problems for a
 * bad header, a non-database, a truncated or malformed file, or a failing probe query;
 * 'skipped' (never 'ok') when sql.js verifies and the file is larger than `maxBytes`.
 * Rejects with BackupError: 'notFound' / 'unwritable' / 'io' when the file cannot be read
 * (or dist/ is missing), 'cancelled' when `signal` aborts (the worker has exited by then),
 * 'tooLarge' when the engine runs out of memory, 'io' when the worker crashes.
 * Safe to repeat and to run concurrently; it only reads the image.
 */
export async function verifyImage(imagePath: string, opts: VerifyOptions): Promise<VerifyReport> {
  const clock = opts.clock ?? systemClock;
  if (opts.signal?.aborted) throw cancelled(imagePath);
  const started = clock.now();
  let size: number;
  try {
    const st = await stat(imagePath);
    if (!st.isFile()) throw new BackupError('io', `${imagePath}: not a regular file (verifying)`, { path: imagePath });
    size = st.size;
  } catch (e) {
    throw fsError(e, imagePath, 'verifying');
  }
  const finish = (): Pick<VerifyReport, 'durationMs' | 'checkedAt'> => {
    const now = clock.now();
    return { durationMs: Math.max(0, now.getTime() - started.getTime()), checkedAt: isoLocal(now) };
  };

  const check =
    opts.mode === 'full' || (opts.mode === 'auto' && size <= opts.quickCheckAboveBytes) ? 'integrity_check' : 'quick_check';
  const rt = nodeSqlite();
  if (rt) {
    const r = await runSqliteJob<VerifyJobResult>(
      { op: 'verify', imagePath, check, probeQuery: opts.probeQuery, nice: VERIFY_NICE },
      { signal: opts.signal, label: imagePath },
    ).catch((e: unknown) => {
      throw BackupError.is(e, 'cancelled') ? cancelled(imagePath) : e;
    });
    return { ...r.result, engine: { name: NODE_SQLITE_ENGINE, sqliteVersion: r.sqliteVersion }, ...finish() };
  }

  if (size > opts.maxBytes) {
    const sqliteVersion = await sqlJsVersion();
    return {
      status: 'skipped',
      check: 'none',
      engine: { name: ENGINE_NAME, sqliteVersion },
      problems: [],
      foreignKeyViolations: 0,
      schemaFingerprint: '',
      rowCounts: {},
      notChecked: [],
      skippedReason: `${path.basename(imagePath)} is ${sizeWithBytes(size)}, larger than the in-memory verifier's limit of ${sizeWithBytes(opts.maxBytes)}`,
      ...finish(),
    };
  }

  const reply = await runWorker(
    { kind: 'verify', wasmPath: locateDist('sql-wasm.wasm'), imagePath, check, probeQuery: opts.probeQuery },
    imagePath,
    opts.signal,
  );
  if (reply.kind === 'error') throw workerFailure(reply, imagePath);
  if (reply.kind !== 'result') throw new BackupError('io', `verifier worker sent an unexpected reply for ${imagePath}`);
  cachedVersion ??= Promise.resolve(reply.sqliteVersion);
  return { ...reply.result, engine: { name: ENGINE_NAME, sqliteVersion: reply.sqliteVersion }, ...finish() };
}

let cachedVersion: Promise<string> | undefined;

/**
 * The SQLite version compiled into sql.js, e.g. "3.49.1". The first call asks a worker;
 * later calls return the cached value (a failure is not cached). Rejects with
 * BackupError 'notFound' when dist/ is missing, 'io' if the worker fails.
 */
export function sqlJsVersion(): Promise<string> {
  cachedVersion ??= runWorker({ kind: 'version', wasmPath: locateDist('sql-wasm.wasm') }, 'sql.js version').then((r) => {
    if (r.kind === 'version') return r.sqliteVersion;
    throw r.kind === 'error' ? workerFailure(r, 'sql.js version') : new BackupError('io', 'verifier worker sent an unexpected reply');
  });
  const p = cachedVersion;
  p.catch(() => {
    if (cachedVersion === p) cachedVersion = undefined;
  });
  return p;
}

/**
 * The absolute path of `file` (verifyWorker.js, sql-wasm.wasm) among the built files:
 * next to the running bundle (__dirname) first, else in dist/ of the nearest folder above
 * __dirname whose package.json is named "lifeboat" (how tests running from out/ find it).
 * Throws BackupError 'notFound' naming the file and telling to run `npm run build`.
 * Only reads the file system; safe to repeat.
 */
export function locateDist(file: string): string {
  const beside = path.join(__dirname, file);
  if (existsSync(beside)) return beside;
  for (let dir = __dirname; ; dir = path.dirname(dir)) {
    if (packageName(path.join(dir, 'package.json')) === 'lifeboat') {
      const inDist = path.join(dir, 'dist', file);
      if (existsSync(inDist)) return inDist;
      throw new BackupError('notFound', `${inDist} is missing: run \`npm run build\``, { path: inDist });
    }
    if (path.dirname(dir) === dir) break;
  }
  throw new BackupError('notFound', `${file} not found beside ${__dirname} nor in lifeboat's dist/: run \`npm run build\``, {
    path: beside,
  });
}

/**
 * Compares a re-verification of a backup's image with the verification its manifest
 * recorded when the backup was made. Returns one line per finding, tables in name order;
 * empty when they agree.
 *
 * Only what does not depend on the engine is compared, whichever engines ran: the schema
 * fingerprint and the row count of every table on either side (both engines read the same
 * sqlite_schema rows and count the same ordinary tables). The verdict, its problem lines
 * and notChecked depend on what an engine can check (sql.js has no FTS5 or R-Tree), so a
 * source's verdict is only comparable with the same engine's: they are never compared,
 * and a notChecked list that differs is not a finding. One line explains a difference
 * that does come from the engines: when `report` found damage (a problem other than the
 * probe query's) but the manifest recorded 'ok' from another engine that did not check
 * some virtual tables, a line says so (the image is the one verified then, so the damage
 * was in the database already).
 *
 * A skipped report, or an `expected` with an empty fingerprint (the manifest's own
 * verification was skipped or could not read the schema), has nothing to compare and
 * yields no lines. Pure.
 */
export function compareWithManifest(
  report: VerifyReport,
  expected: Pick<VerifyReport, 'schemaFingerprint' | 'rowCounts'> & Partial<Pick<VerifyReport, 'status' | 'engine' | 'notChecked'>>,
): string[] {
  const out: string[] = [];
  const e = expected.engine;
  const otherEngine = expected.status === 'ok' && e !== undefined && e.name !== report.engine.name;
  // Only damage is explained: a failing probe query says nothing about what an engine checks.
  if (otherEngine && report.status === 'failed' && expected.notChecked?.length && report.problems.some((p) => !/^probe\b/.test(p))) {
    const table = (n: string) => n.slice(0, n.lastIndexOf(' ('));
    // Virtual tables then, that this engine did check now.
    const virtual = expected.notChecked.filter((n) => !/^foreign keys \(/.test(n) && !report.notChecked.some((m) => table(m) === table(n)));
    if (virtual.length) {
      out.push(
        `when the backup was made, ${e!.name} ${e!.sqliteVersion} found this image ok but could not check ${virtual.join(', ')}; ${report.engine.name} ${report.engine.sqliteVersion} checked them now`,
      );
    }
  }
  if (report.status === 'skipped' || expected.schemaFingerprint === '') return out;
  if (report.schemaFingerprint !== expected.schemaFingerprint) {
    out.push(
      `schema fingerprint differs: expected ${expected.schemaFingerprint.slice(0, 12) || '(none)'}, found ${report.schemaFingerprint.slice(0, 12) || '(none)'}`,
    );
  }
  const has = (o: Record<string, number>, k: string) => Object.prototype.hasOwnProperty.call(o, k);
  const names = [...new Set([...Object.keys(expected.rowCounts), ...Object.keys(report.rowCounts)])].sort();
  for (const name of names) {
    const want = expected.rowCounts[name];
    const got = report.rowCounts[name];
    if (!has(report.rowCounts, name)) out.push(`table ${name}: missing (expected ${want} rows)`);
    else if (!has(expected.rowCounts, name)) out.push(`table ${name}: ${got} rows, not in the manifest`);
    else if (want !== got) out.push(`table ${name}: ${got} rows, expected ${want}`);
  }
  return out;
}

/**
 * Runs one request in a new worker and settles after the worker has exited, so that a
 * settled promise never leaves a thread behind.
 */
function runWorker(request: WorkerRequest, label: string, signal?: AbortSignal): Promise<WorkerReply> {
  const script = locateDist('verifyWorker.js');
  return new Promise((resolve, reject) => {
    let outcome: { reply: WorkerReply } | { error: unknown } | undefined;
    const worker = new Worker(script, { workerData: request });
    const onAbort = () => {
      outcome ??= { error: cancelled(label) };
      void worker.terminate();
    };
    signal?.addEventListener('abort', onAbort, { once: true });
    worker.once('message', (reply: WorkerReply) => {
      outcome ??= { reply };
      void worker.terminate();
    });
    worker.once('error', (e) => {
      outcome ??= { error: new BackupError('io', `verifier worker failed on ${label}: ${e.message}`, { cause: e }) };
    });
    worker.once('exit', (code) => {
      signal?.removeEventListener('abort', onAbort);
      if (!outcome) reject(new BackupError('io', `verifier worker exited (code ${code}) without a result for ${label}`));
      else if ('reply' in outcome) resolve(outcome.reply);
      else reject(outcome.error);
    });
    // An abort that raced with the listener being added.
    if (signal?.aborted) onAbort();
  });
}

function workerFailure(reply: Extract<WorkerReply, { kind: 'error' }>, imagePath: string): BackupError {
  if (reply.failure === 'io') {
    return fsError(Object.assign(new Error(reply.message), { code: reply.code }), imagePath, 'reading for verification');
  }
  if (reply.failure === 'memory') {
    return new BackupError('tooLarge', `${imagePath}: out of memory in the verifier (${reply.message})`, { path: imagePath });
  }
  return new BackupError('io', `verifier crashed on ${imagePath}: ${reply.message}`, {
    path: imagePath,
    cause: Object.assign(new Error(reply.message), { stack: reply.stack }),
  });
}

function cancelled(imagePath: string): BackupError {
  return new BackupError('cancelled', `verification of ${imagePath} cancelled`, { path: imagePath });
}

function packageName(file: string): string | undefined {
  try {
    return (JSON.parse(readFileSync(file, 'utf8')) as { name?: unknown }).name as string | undefined;
  } catch {
    return undefined;
  }
}

/** Exact bytes as well as MB: a size compared with a limit must show which side it is on. */
function sizeWithBytes(n: number): string {
  if (n < 1024 * 1024) return `${n} bytes`;
  const mb = n / (1024 * 1024);
  return `${mb < 10 ? mb.toFixed(1) : Math.round(mb)} MB (${n} bytes)`;
}

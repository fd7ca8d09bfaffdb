/**
 * Runs one SQLite job in a fresh worker thread (dist/sqliteWorker.js) and settles after
 * the worker has exited, so that a settled promise never leaves a thread or an open
 * SQLite connection behind. Aborting terminates the worker, which closes its
 * connections (and so releases SQLite's locks) as the thread ends.
 */
import { Worker } from 'node:worker_threads';
import type { ProgressListener } from '../context';
import { BackupError, fsError } from '../errors';
import { locateDist } from '../verify/verifier';
import type { SqliteJob, WorkerMessage } from './jobs';

export interface RunJobOptions {
  signal?: AbortSignal;
  onProgress?: ProgressListener;
  /** Names the file or database in error messages. */
  label: string;
}

/**
 * Resolves with the job's result value. Rejects with the BackupError the job threw
 * (same reason and message), BackupError 'cancelled' when `signal` aborts (after the
 * worker has exited), or BackupError 'io' when the worker crashes or exits silently.
 */
export function runSqliteJob<R>(job: SqliteJob, o: RunJobOptions): Promise<R> {
  const script = locateDist('sqliteWorker.js');
  return new Promise<R>((resolve, reject) => {
    let outcome: { value: R } | { error: unknown } | undefined;
    if (o.signal?.aborted) {
      reject(cancelled(o.label));
      return;
    }
    const worker = new Worker(script, { workerData: job });
    const onAbort = () => {
      outcome ??= { error: cancelled(o.label) };
      void worker.terminate();
    };
    o.signal?.addEventListener('abort', onAbort, { once: true });
    worker.on('message', (m: WorkerMessage) => {
      if (m.type === 'progress') {
        if (!outcome) o.onProgress?.(m.progress);
        return;
      }
      if (m.type === 'result') outcome ??= { value: m.value as R };
      else outcome ??= { error: errorOf(m, o.label) };
      void worker.terminate();
    });
    worker.once('error', (e) => {
      outcome ??= { error: new BackupError('io', `SQLite worker failed on ${o.label}: ${e.message}`, { cause: e }) };
    });
    worker.once('exit', (code) => {
      o.signal?.removeEventListener('abort', onAbort);
      if (!outcome) reject(new BackupError('io', `SQLite worker exited (code ${code}) without a result for ${o.label}`));
      else if ('value' in outcome) resolve(outcome.value);
      else reject(outcome.error);
    });
  });
}

function errorOf(m: Extract<WorkerMessage, { type: 'error' }>, label: string): BackupError {
  if (m.reason) return new BackupError(m.reason, m.message, { path: m.path });
  if (m.code) return fsError(Object.assign(new Error(m.message), { code: m.code }), m.path ?? label, 'in the SQLite worker');
  return new BackupError('io', `SQLite worker failed on ${label}: ${m.message}`, { cause: Object.assign(new Error(m.message), { stack: m.stack }) });
}

function cancelled(label: string): BackupError {
  return new BackupError('cancelled', `${label}: cancelled`, { path: label });
}

/**
 * The worker thread that runs SQLite itself (`node:sqlite`), bundled to
 * dist/sqliteWorker.js. Every synchronous SQLite call (opening, waiting on a lock with
 * busy_timeout, VACUUM INTO, integrity_check, a restore) happens here, never on the
 * caller's thread, so the extension host's event loop never blocks on SQLite.
 *
 * One job per worker: the job arrives as workerData, progress goes out as
 * `{ type: 'progress' }` messages, and exactly one `{ type: 'result' }` or
 * `{ type: 'error' }` message ends it. client.ts is its only client.
 */
import { setPriority } from 'node:os';
import { isMainThread, parentPort, workerData } from 'node:worker_threads';
import { BackupError } from '../errors';
import { runBrowseJob, runRowsJob } from '../inspect/browseJob';
import { runDiffJob, runTableRestoreJob } from '../inspect/inspectJob';
import { runRowsRestoreJob } from '../inspect/rowsRestoreJob';
import { runRestoreJob } from '../restore/nodeRestore';
import { runSnapshotJob } from '../snapshot/nodeSnapshot';
import { runVerifyJob } from '../verify/nodeVerify';
import type { JobContext, SqliteJob, WorkerMessage } from './jobs';

async function dispatch(job: SqliteJob, ctx: JobContext): Promise<unknown> {
  switch (job.op) {
    case 'snapshot':
      return runSnapshotJob(job, ctx);
    case 'verify':
      return runVerifyJob(job, ctx);
    case 'restore':
      return runRestoreJob(job, ctx);
    case 'diff':
      return runDiffJob(job);
    case 'restoreTable':
      return runTableRestoreJob(job);
    case 'restoreRows':
      return runRowsRestoreJob(job);
    case 'browse':
      return runBrowseJob(job);
    case 'rows':
      return runRowsJob(job);
  }
}

if (!isMainThread && parentPort) {
  const port = parentPort;
  const job = workerData as SqliteJob;
  if (process.platform === 'linux' && job.nice) {
    // Per thread on Linux: lowers only this worker, never the caller's event loop.
    try {
      setPriority(0, job.nice);
    } catch {
      // not permitted: run at normal priority
    }
  }
  const post = (m: WorkerMessage) => port.postMessage(m);
  const ctx: JobContext = { progress: (p) => post({ type: 'progress', progress: p }) };
  dispatch(job, ctx).then(
    (value) => post({ type: 'result', value }),
    (e: unknown) => {
      if (BackupError.is(e)) post({ type: 'error', reason: e.reason, message: e.message, path: e.path });
      else {
        const err = e as NodeJS.ErrnoException;
        post({ type: 'error', message: err?.message ?? String(e), code: err?.code, stack: err?.stack });
      }
    },
  );
}

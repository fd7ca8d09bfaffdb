/**
 * The restore job that runs inside the SQLite worker (src/core/sqlite/worker.ts).
 * STUB: to be implemented.
 */
import { BackupError } from '../errors';
import type { JobBase, JobContext } from '../sqlite/jobs';

export interface RestoreJob extends JobBase {
  op: 'restore';
}

export type RestoreJobResult = never;

/** Runs inside the worker thread only. */
export async function runRestoreJob(job: RestoreJob, _ctx: JobContext): Promise<RestoreJobResult> {
  throw new BackupError('io', `restore through node:sqlite is not implemented (${job.op})`);
}

/**
 * The verify job that runs inside the SQLite worker (src/core/sqlite/worker.ts).
 * STUB: to be implemented.
 */
import { BackupError } from '../errors';
import type { JobBase, JobContext } from '../sqlite/jobs';

export interface VerifyJob extends JobBase {
  op: 'verify';
}

export type VerifyJobResult = never;

/** Runs inside the worker thread only. */
export async function runVerifyJob(job: VerifyJob, _ctx: JobContext): Promise<VerifyJobResult> {
  throw new BackupError('io', `verify through node:sqlite is not implemented (${job.op})`);
}

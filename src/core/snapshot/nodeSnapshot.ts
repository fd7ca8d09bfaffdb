/**
 * The snapshot job that runs inside the SQLite worker (src/core/sqlite/worker.ts).
 * STUB: to be implemented.
 */
import { BackupError } from '../errors';
import type { JobBase, JobContext } from '../sqlite/jobs';

export interface SnapshotJob extends JobBase {
  op: 'snapshot';
}

export type SnapshotJobResult = never;

/** Runs inside the worker thread only. */
export async function runSnapshotJob(job: SnapshotJob, _ctx: JobContext): Promise<SnapshotJobResult> {
  throw new BackupError('io', `snapshot through node:sqlite is not implemented (${job.op})`);
}

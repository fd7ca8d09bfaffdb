/**
 * The messages between client.ts and the SQLite worker (worker.ts). Each job type is
 * declared beside the code that runs it.
 */
import type { BackupErrorReason } from '../errors';
import type { Progress } from '../context';
import type { BrowseJob, RowsJob } from '../inspect/browseJob';
import type { DiffJob, TableRestoreJob } from '../inspect/inspectJob';
import type { RowsRestoreJob } from '../inspect/rowsRestoreJob';
import type { RestoreJob } from '../restore/nodeRestore';
import type { SnapshotJob } from '../snapshot/nodeSnapshot';
import type { VerifyJob } from '../verify/nodeVerify';

/** Fields every job has. */
export interface JobBase {
  /** Linux nice value for the worker's thread (0 or absent: normal priority). */
  nice?: number;
}

export type SqliteJob = SnapshotJob | VerifyJob | RestoreJob | DiffJob | TableRestoreJob | RowsRestoreJob | BrowseJob | RowsJob;

/** What a job's code is given inside the worker. */
export interface JobContext {
  /** Posts a progress event to the caller's `onProgress`. */
  progress(p: Progress): void;
}

export type WorkerMessage =
  | { type: 'progress'; progress: Progress }
  | { type: 'result'; value: unknown }
  /** `reason` is set when the job threw a BackupError; otherwise `code` may carry an errno code. */
  | { type: 'error'; reason?: BackupErrorReason; message: string; path?: string; code?: string; stack?: string };

/**
 * Runs work on an off-site store in a worker thread (dist/offsiteWorker.js), so that none
 * of it runs on the caller's thread: not the S3, SFTP and age libraries loading (a tenth
 * of a second and more of parsing), not the sealing, hashing and decrypting of every byte
 * sent or received, not the garbage they leave. The extension host and the CLI both copy
 * this way (`runPushJob`); the extension host also lists, verifies, restores from and
 * restore-tests a remote this way (`runRemoteJob`). The caller's event loop only passes
 * progress on.
 *
 * Cancelling asks the worker to stop (a copy aborts its uploads, removes what it left
 * unfinished and releases the remote's lock, as `signal` does in process) and settles when
 * the worker has exited. A worker that has not stopped 30 s after being asked is
 * terminated, except a restore's: it is waited for (it may be past the point where a
 * file is replaced, and it stops at its own checks of the signal).
 */
import { Worker } from 'node:worker_threads';
import type { Settings } from '../config';
import type { LogFields, Logger, ProgressListener } from '../context';
import { BackupError } from '../errors';
import type { RotationPlan } from '../retention/plan';
import { HostKeyError, type HostKeyFacts, type HostKeyPolicy } from '../store/remote/knownHosts';
import type { RemoteSecrets, RemoteSettings } from '../store/remote/openRemote';
import type { PreparedKey } from '../store/remote/remoteStore';
import type { S3Credentials } from '../store/remote/s3Backend';
import { locateDist } from '../verify/verifier';
import type { Engine } from '../engine';
import type { RestoreResult } from '../restore/restore';
import type { OffsiteTestOutcome } from '../verify/offsiteSource';
import type { PushResult } from './push';

/**
 * The secrets of a copy, as data (a worker cannot be handed functions): the CLI's
 * environment, read by the worker as the CLI reads it (`secretsFromEnv`), or values a
 * front end resolved (VS Code's SecretStorage).
 */
export type PushSecrets =
  | { from: 'env' }
  | {
      from: 'values';
      s3?: { credentials: S3Credentials; source: string };
      sftp?: { password?: string; privateKeyFile?: string; passphrase?: string; source: string; hostKeySha256?: string; knownHosts?: HostKeyPolicy };
      passphrase?: { value: string; source: string };
    };

/** What every job on a remote carries: the remote, its secrets and the settings. */
export interface RemoteJobBase {
  remote: RemoteSettings;
  secrets: PushSecrets;
  settings: Settings;
  scryptLogN?: number;
  /**
   * The passphrase's key, derived by the caller before the worker starts (RemoteStore
   * prepareKey): scrypt's 128 MiB then come and go while the process is small, before the
   * worker and the S3 client add theirs.
   */
  key?: PreparedKey;
  /** Collect the worker's garbage when its buffers reach this many MiB (pushWorker.ts; only where the process is the caller's own). */
  collectGarbageAtMiB?: number;
}

export interface PushJob extends RemoteJobBase {
  /** The local backup folder. */
  dir: string;
  /** Only the backups of this database. */
  db?: string;
  /** The remote's retention, when it has its own. */
  retention?: Settings['retention'];
}

/**
 * Work on a remote other than a copy, for `runRemoteJob`:
 * - 'list': the remote's backups (its listing alone), newest first;
 * - 'verify': every backup on the remote verified (`Engine.verifyArchive`), one at a time;
 * - 'restore': one backup restored to `to` (`Engine.restore`), the current file first
 *   backed up into the local folder `dir`;
 * - 'restoreTest': the off-site half of the rolling restore test (`Engine.offsiteRestoreTest`):
 *   the remote's backup due for it restored and verified when the remote's newest test is
 *   at least `afterMs` old, recorded on the remote. The worker's clock runs on from `now`,
 *   the caller's clock at the start. The local bookkeeping stays with the caller's `restoreTest`.
 */
export type RemoteJob = RemoteJobBase &
  ({ op: 'list' } | { op: 'verify' } | { op: 'restore'; object: string; to: string; dir: string; force?: boolean } | { op: 'restoreTest'; now: number; afterMs: number });

/** A remote's listing: what `Engine.listStore` resolves. */
export type RemoteListResult = Awaited<ReturnType<Engine['listStore']>>;

/** A remote's verification: how many backups it holds (broken ones included), how many failed, and their problems. */
export interface RemoteVerifyResult {
  total: number;
  bad: number;
  problems: string[];
}

/** What the worker answers, per operation. */
export interface RemoteJobResults {
  list: RemoteListResult;
  verify: RemoteVerifyResult;
  restore: RestoreResult;
  restoreTest: OffsiteTestOutcome;
}

/** What the worker is given: a copy or another job on the remote. */
export type OffsiteWorkerJob = ({ op: 'push' } & PushJob) | RemoteJob;

export type PushJobResult = PushResult & { rotation?: RotationPlan; rotationError?: string };

/** Messages from the worker. */
export type PushWorkerMessage =
  | { type: 'progress'; progress: { phase: string; done: number; total: number } }
  | { type: 'log'; level: keyof Logger; message: string; fields?: LogFields }
  | { type: 'result'; value: PushJobResult | RemoteJobResults[keyof RemoteJobResults] }
  | { type: 'error'; reason?: BackupError['reason']; message: string; path?: string; hostKey?: HostKeyFacts; stack?: string };

/** Messages to the worker. */
export type PushWorkerCommand = { type: 'cancel' };

/** How long a cancelled copy may take to stop (abort its uploads, release the lock) before its worker is terminated. */
const STOP_GRACE_MS = 30_000;

/** The secrets a `PushSecrets` of values stands for (the worker's side; `from: 'env'` is resolved there). */
export function secretsOfValues(s: Extract<PushSecrets, { from: 'values' }>): RemoteSecrets {
  const out: RemoteSecrets = {};
  if (s.s3) out.s3 = { credentials: { ...s.s3.credentials }, source: s.s3.source };
  if (s.sftp) out.sftp = { ...s.sftp };
  if (s.passphrase) {
    const { value, source } = s.passphrase;
    out.passphrase = { source, get: async () => value };
  }
  return out;
}

/**
 * Resolves with what `Engine.push` returns. Rejects with the error the copy failed with
 * (a BackupError of the same reason and message; an SFTP host key refusal keeps its
 * `hostKey` facts for "Trust and Retry"), BackupError 'cancelled' when `signal` aborted
 * it, or BackupError 'io' when the worker crashed or exited without an answer.
 */
export function runPushJob(job: PushJob, o: JobOptions = {}): Promise<PushJobResult> {
  return runWorker<PushJobResult>({ op: 'push', ...job }, { noun: 'copy', phrase: 'copy to' }, o);
}

/**
 * Lists, verifies, restores from or restore-tests a remote in the worker (see
 * `RemoteJob`); resolves with what the engine returns there, rejects as `runPushJob` does.
 *
 * A restore's caller holds what the engine's restore would hold in its own thread: the
 * target's place in the per-database queue, and the target's SQLite gate (a worker's
 * SQLite locks are this process's POSIX locks, which an open and close of the file on
 * the caller's thread would drop; see sqlite/liveGate.ts). A restore test needs neither:
 * its SQLite opens only an image in a scratch file of its own.
 */
export function runRemoteJob(job: RemoteJobBase & { op: 'list' }, o?: JobOptions): Promise<RemoteListResult>;
export function runRemoteJob(job: RemoteJobBase & { op: 'verify' }, o?: JobOptions): Promise<RemoteVerifyResult>;
export function runRemoteJob(job: Extract<RemoteJob, { op: 'restore' }>, o?: JobOptions): Promise<RestoreResult>;
export function runRemoteJob(job: Extract<RemoteJob, { op: 'restoreTest' }>, o?: JobOptions): Promise<OffsiteTestOutcome>;
export function runRemoteJob(job: RemoteJob, o: JobOptions = {}): Promise<RemoteJobResults[RemoteJob['op']]> {
  return runWorker(job, JOB_WORDS[job.op], o);
}

/** Each remote job, in errors. */
const JOB_WORDS: Record<RemoteJob['op'], JobWords> = {
  list: { noun: 'listing', phrase: 'listing of' },
  verify: { noun: 'verification', phrase: 'verification of' },
  restore: { noun: 'restore', phrase: 'restore from' },
  restoreTest: { noun: 'restore test', phrase: 'restore test of' },
};

interface JobOptions {
  signal?: AbortSignal;
  onProgress?: ProgressListener;
  /** Where the engine's log lines in the worker go (a pre-restore backup's "backup started", ...). */
  logger?: Logger;
}

/** What the job is, in errors: "copy" and "the off-site copy to <url>". */
interface JobWords {
  noun: string;
  phrase: string;
}

function runWorker<T>(job: OffsiteWorkerJob, what: JobWords, o: JobOptions): Promise<T> {
  const label = job.remote.url;
  if (o.signal?.aborted) return Promise.reject(new BackupError('cancelled', `${label}: ${what.noun} cancelled`));
  let script: string;
  try {
    script = locateDist('offsiteWorker.js');
  } catch (e) {
    return Promise.reject(e);
  }
  return new Promise<T>((resolve, reject) => {
    let outcome: { value: T } | { error: unknown } | undefined;
    let killer: NodeJS.Timeout | undefined;
    const worker = new Worker(script, { workerData: job });
    const onAbort = (): void => {
      worker.postMessage({ type: 'cancel' } satisfies PushWorkerCommand);
      // A restore is waited for: ending it could leave its temp files, or end it mid-swap.
      if (job.op === 'restore') return;
      killer ??= setTimeout(() => {
        outcome ??= { error: new BackupError('cancelled', `${label}: ${what.noun} cancelled (it did not stop within ${STOP_GRACE_MS / 1000} s and was ended)`) };
        void worker.terminate();
      }, STOP_GRACE_MS);
    };
    o.signal?.addEventListener('abort', onAbort, { once: true });
    worker.on('message', (m: PushWorkerMessage) => {
      if (m.type === 'progress') {
        if (!outcome) o.onProgress?.(m.progress);
      } else if (m.type === 'log') {
        o.logger?.[m.level](m.message, m.fields);
      } else if (m.type === 'result') {
        outcome ??= { value: m.value as T };
      } else {
        outcome ??= { error: errorOf(m, label, what) };
      }
    });
    worker.once('error', (e) => {
      outcome ??= { error: new BackupError('io', `the off-site ${what.phrase} ${label} failed: ${e.message}`, { cause: e }) };
    });
    worker.once('exit', (code) => {
      o.signal?.removeEventListener('abort', onAbort);
      if (killer) clearTimeout(killer);
      if (!outcome) reject(new BackupError('io', `the off-site ${what.phrase} ${label} ended (worker exit code ${code}) without a result`));
      else if ('value' in outcome) resolve(outcome.value);
      else reject(outcome.error);
    });
  });
}

function errorOf(m: Extract<PushWorkerMessage, { type: 'error' }>, label: string, what: JobWords): Error {
  if (m.hostKey) return new HostKeyError(m.hostKey, m.message);
  if (m.reason) return new BackupError(m.reason, m.message, { path: m.path });
  return new BackupError('io', `the off-site ${what.phrase} ${label} failed: ${m.message}`, { cause: Object.assign(new Error(m.message), { stack: m.stack }) });
}

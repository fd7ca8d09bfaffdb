/**
 * Runs an off-site copy (`Engine.push`) in a worker thread (dist/offsiteWorker.js), so that
 * none of its work runs on the caller's thread: not the S3, SFTP and age libraries loading
 * (a tenth of a second and more of parsing), not the sealing and hashing of every byte
 * sent, not the garbage they leave. The extension host and the CLI both copy this way; the
 * caller's event loop only passes progress on.
 *
 * Cancelling asks the worker to stop (the copy aborts its uploads, removes what it left
 * unfinished and releases the remote's lock, as `signal` does in process) and settles when
 * the worker has exited. A worker that has not stopped 30 s after being asked is terminated.
 */
import { Worker } from 'node:worker_threads';
import type { Settings } from '../config';
import type { ProgressListener } from '../context';
import { BackupError } from '../errors';
import type { RotationPlan } from '../retention/plan';
import { HostKeyError, type HostKeyFacts, type HostKeyPolicy } from '../store/remote/knownHosts';
import type { RemoteSecrets, RemoteSettings } from '../store/remote/openRemote';
import type { PreparedKey } from '../store/remote/remoteStore';
import type { S3Credentials } from '../store/remote/s3Backend';
import { locateDist } from '../verify/verifier';
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

export interface PushJob {
  /** The local backup folder. */
  dir: string;
  remote: RemoteSettings;
  secrets: PushSecrets;
  settings: Settings;
  /** Only the backups of this database. */
  db?: string;
  /** The remote's retention, when it has its own. */
  retention?: Settings['retention'];
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

export type PushJobResult = PushResult & { rotation?: RotationPlan; rotationError?: string };

/** Messages from the worker. */
export type PushWorkerMessage =
  | { type: 'progress'; progress: { phase: string; done: number; total: number } }
  | { type: 'result'; value: PushJobResult }
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
export function runPushJob(job: PushJob, o: { signal?: AbortSignal; onProgress?: ProgressListener } = {}): Promise<PushJobResult> {
  const label = job.remote.url;
  if (o.signal?.aborted) return Promise.reject(new BackupError('cancelled', `${label}: copy cancelled`));
  let script: string;
  try {
    script = locateDist('offsiteWorker.js');
  } catch (e) {
    return Promise.reject(e);
  }
  return new Promise<PushJobResult>((resolve, reject) => {
    let outcome: { value: PushJobResult } | { error: unknown } | undefined;
    let killer: NodeJS.Timeout | undefined;
    const worker = new Worker(script, { workerData: job });
    const onAbort = (): void => {
      worker.postMessage({ type: 'cancel' } satisfies PushWorkerCommand);
      killer ??= setTimeout(() => {
        outcome ??= { error: new BackupError('cancelled', `${label}: copy cancelled (it did not stop within ${STOP_GRACE_MS / 1000} s and was ended)`) };
        void worker.terminate();
      }, STOP_GRACE_MS);
    };
    o.signal?.addEventListener('abort', onAbort, { once: true });
    worker.on('message', (m: PushWorkerMessage) => {
      if (m.type === 'progress') {
        if (!outcome) o.onProgress?.(m.progress);
      } else if (m.type === 'result') {
        outcome ??= { value: m.value };
      } else {
        outcome ??= { error: errorOf(m, label) };
      }
    });
    worker.once('error', (e) => {
      outcome ??= { error: new BackupError('io', `the off-site copy to ${label} failed: ${e.message}`, { cause: e }) };
    });
    worker.once('exit', (code) => {
      o.signal?.removeEventListener('abort', onAbort);
      if (killer) clearTimeout(killer);
      if (!outcome) reject(new BackupError('io', `the off-site copy to ${label} ended (worker exit code ${code}) without a result`));
      else if ('value' in outcome) resolve(outcome.value);
      else reject(outcome.error);
    });
  });
}

function errorOf(m: Extract<PushWorkerMessage, { type: 'error' }>, label: string): Error {
  if (m.hostKey) return new HostKeyError(m.hostKey, m.message);
  if (m.reason) return new BackupError(m.reason, m.message, { path: m.path });
  return new BackupError('io', `the off-site copy to ${label} failed: ${m.message}`, { cause: Object.assign(new Error(m.message), { stack: m.stack }) });
}

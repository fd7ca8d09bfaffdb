/**
 * The worker thread of `runPushJob` and `runRemoteJob` (dist/offsiteWorker.js): one job on
 * a remote (a copy, a listing, a verification, a restore or a restore test), then it
 * exits. Its progress, its result or its error go to the parent as messages; a 'cancel'
 * message aborts the job the way an AbortSignal does in process.
 */
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { parentPort, workerData } from 'node:worker_threads';
import { systemClock, type Clock, type LogFields, type Logger } from '../context';
import { Engine } from '../engine';
import { BackupError } from '../errors';
import { hostKeyFactsOf } from '../store/remote/knownHosts';
import { runPasswordCommand, secretsFromEnv } from '../store/remote/openRemote';
import type { RemoteStore } from '../store/remote/remoteStore';
import { secretsOfValues, type OffsiteWorkerJob, type PushWorkerCommand, type PushWorkerMessage, type RemoteVerifyResult } from './pushJob';

/** Progress is passed on at most this often (the last of a burst, and every phase change, still go). */
const PROGRESS_EVERY_MS = 100;

/**
 * With `job.collectGarbageAtMiB` (the CLI, a process of its own): a full collection
 * whenever this thread's buffers reach that many MiB. Every byte sent leaves about three
 * in dead buffers (the sealed chunks of the hashing pass, those of the sending pass and
 * the blocks they are copied into), and V8 lets some 80 MB of them wait before it
 * collects: measured on a 1 GB push, the upload phase peaked at 192-199 MB RSS without,
 * 163-165 MB with a collection at 32 MiB, for about half a second of CPU on this thread
 * (not the caller's). `gc` comes from V8's --expose-gc, which is
 * process-wide; VS Code's extension host is not ours to set flags in, so there it is off.
 */
function collectGarbage(atMiB: number | undefined): void {
  if (!atMiB) return;
  setFlagsFromString('--expose-gc');
  const gc = runInNewContext('gc') as (() => void) | undefined;
  if (typeof gc !== 'function') return;
  const limit = atMiB * 1024 * 1024;
  setInterval(() => {
    if (process.memoryUsage().arrayBuffers > limit) gc();
  }, 50).unref();
}

async function main(job: OffsiteWorkerJob): Promise<PushWorkerMessage> {
  collectGarbage(job.collectGarbageAtMiB);
  const port = parentPort!;
  const abort = new AbortController();
  port.on('message', (m: PushWorkerCommand) => {
    if (m.type === 'cancel') abort.abort(new BackupError('cancelled', 'cancelled'));
  });
  const log =
    (level: keyof Logger) =>
    (message: string, fields?: LogFields): void =>
      port.postMessage({ type: 'log', level, message, fields } satisfies PushWorkerMessage);
  // The engine's log lines go to the caller's logger (VS Code's output channel).
  const engine = new Engine({ clock: job.op === 'restoreTest' ? clockFrom(job.now) : systemClock, logger: { debug: log('debug'), info: log('info'), warn: log('warn'), error: log('error') } });
  const secrets = job.secrets.from === 'env' ? secretsFromEnv(process.env, runPasswordCommand) : secretsOfValues(job.secrets);
  const remote = engine.remote(job.remote, secrets, { scryptLogN: job.scryptLogN, prepared: job.key });
  let sentAt = 0;
  let lastPhase = '';
  let held: PushWorkerMessage | undefined;
  let timer: NodeJS.Timeout | undefined;
  const send = (m: PushWorkerMessage): void => port.postMessage(m);
  const onProgress = (p: { phase: string; done: number; total: number }): void => {
    const m: PushWorkerMessage = { type: 'progress', progress: { phase: p.phase, done: p.done, total: p.total } };
    const now = Date.now();
    if (p.phase !== lastPhase || now - sentAt >= PROGRESS_EVERY_MS) {
      lastPhase = p.phase;
      sentAt = now;
      held = undefined;
      send(m);
      return;
    }
    held = m;
    timer ??= setTimeout(() => {
      timer = undefined;
      if (held) {
        sentAt = Date.now();
        send(held);
        held = undefined;
      }
    }, PROGRESS_EVERY_MS);
  };
  const signal = abort.signal;
  try {
    switch (job.op) {
      case 'push':
        return { type: 'result', value: await engine.push(job.dir, remote, job.settings, { db: job.db, signal, onProgress, retention: job.retention }) };
      case 'list':
        return { type: 'result', value: await engine.listStore(remote) };
      case 'verify':
        return { type: 'result', value: await verifyAll(engine, remote, job.settings, signal, onProgress) };
      case 'restore':
        return { type: 'result', value: await engine.restore({ store: remote, object: job.object }, { to: job.to, dir: job.dir, force: job.force, settings: job.settings, signal, onProgress }) };
      case 'restoreTest':
        return { type: 'result', value: await engine.offsiteRestoreTest(remote, job.settings, { afterMs: job.afterMs, signal, onProgress }) };
      default:
        throw new BackupError('badConfig', `unknown off-site job ${(job as { op: string }).op}`);
    }
  } catch (e) {
    // A cancel is one line naming the remote, whatever the job was doing when it stopped.
    const cancelled =
      job.op === 'push'
        ? `${job.remote.url}: copy cancelled (the next push goes on from what is there)`
        : job.op === 'restore'
          ? `${job.remote.url}: restore cancelled; nothing was changed`
          : `${job.remote.url}: ${job.op === 'list' ? 'listing' : job.op === 'verify' ? 'verification' : 'restore test'} cancelled`;
    // A restore cancelled after its file was replaced resolves (the restore is done); one that rejects changed nothing.
    const err = signal.aborted ? new BackupError('cancelled', cancelled, { cause: e }) : e;
    const hostKey = hostKeyFactsOf(err);
    if (err instanceof BackupError) return { type: 'error', reason: err.reason, message: err.message, path: err.path, hostKey };
    return { type: 'error', message: (err as Error)?.message ?? String(err), stack: (err as Error)?.stack, hostKey };
  } finally {
    if (timer) clearTimeout(timer);
    await remote.close().catch(() => undefined);
    port.removeAllListeners('message');
  }
}

/** The caller's clock carried into this thread: `now` (epoch ms) at the job's start, then running on in real time. */
function clockFrom(now: number): Clock {
  const offset = now - Date.now();
  return { now: () => new Date(Date.now() + offset), sleep: systemClock.sleep };
}

/** Every backup on the remote verified, one at a time, with its listing's broken objects counted as failed. */
async function verifyAll(
  engine: Engine,
  remote: RemoteStore,
  settings: OffsiteWorkerJob['settings'],
  signal: AbortSignal,
  onProgress: (p: { phase: string; done: number; total: number }) => void,
): Promise<RemoteVerifyResult> {
  const { records, broken } = await engine.listStore(remote);
  const problems: string[] = broken.map((b) => `${b.object}: ${b.error}`);
  let bad = broken.length;
  let done = 0;
  for (const rec of records) {
    if (signal.aborted) throw new BackupError('cancelled', 'cancelled');
    onProgress({ phase: `verifying ${rec.id}`, done: done++, total: records.length });
    const v = await engine.verifyArchive({ store: remote, object: rec.object }, settings, { signal });
    if (!v.ok) {
      bad++;
      problems.push(`${rec.id}: ${v.problems.slice(0, 2).join('; ')}`);
    }
  }
  return { total: records.length + broken.length, bad, problems };
}

void main(workerData as OffsiteWorkerJob).then(
  (m) => {
    parentPort!.postMessage(m);
    parentPort!.close();
  },
  (e: unknown) => {
    parentPort!.postMessage({ type: 'error', message: (e as Error)?.message ?? String(e), stack: (e as Error)?.stack } satisfies PushWorkerMessage);
    parentPort!.close();
  },
);

/**
 * Crash points for the crash tests: every durable file operation the engine makes
 * (rename, unlink, fsync, truncate, and SQLite writes into a live database) first calls
 * `crashPoint(op, path)`. In normal use that is one environment lookup and nothing else.
 *
 * - `LIFEBOAT_CRASH_TRACE=<file>` appends one line per crash point, `<n> <op> <path>`,
 *   so a test learns how many points a command passes and which they are.
 * - `LIFEBOAT_CRASH_AT=<n>` kills the process with SIGKILL right before the n-th point
 *   (1-based), as a power cut or `kill -9` would at that moment.
 *
 * One counter per process, shared by every thread: the main thread puts a
 * SharedArrayBuffer in the worker environment data (`setEnvironmentData`), which every
 * worker started afterwards (the SQLite and verifier workers) receives as the same
 * memory. So the numbers in a trace are the numbers `LIFEBOAT_CRASH_AT` takes, whatever
 * thread passes the point; points passed in a worker are traced as `<op>@worker`.
 * `LIFEBOAT_CRASH_THREAD` (main | worker), when set, limits the kill to points passed in
 * that thread; the numbering stays the shared one.
 *
 * For race tests, `LIFEBOAT_PAUSE_AT=<n>` with `LIFEBOAT_PAUSE_FILE=<file>` pauses the
 * thread right before the n-th point instead: it writes the trace line to the file and
 * waits until the test deletes it (the test acts meanwhile, e.g. starts an app).
 */
import { appendFileSync, existsSync, writeFileSync } from 'node:fs';
import { getEnvironmentData, isMainThread, setEnvironmentData } from 'node:worker_threads';

export type CrashOp = 'rename' | 'unlink' | 'fsync' | 'fsyncDir' | 'truncate' | 'sqliteWrite' | 'upload';

const SHARED_KEY = 'lifeboat.crashCounter';

/** The process-wide counter, created on first use when crash testing is switched on. */
let shared: Int32Array | undefined;

function counterCell(): Int32Array {
  if (shared) return shared;
  const inherited = getEnvironmentData(SHARED_KEY);
  if (inherited instanceof SharedArrayBuffer) shared = new Int32Array(inherited);
  else {
    const buf = new SharedArrayBuffer(4);
    shared = new Int32Array(buf);
    // Workers started from now on share it; a worker that found none counts on its own.
    if (isMainThread) setEnvironmentData(SHARED_KEY, buf);
  }
  return shared;
}

function enabled(): boolean {
  return !!(process.env.LIFEBOAT_CRASH_TRACE || process.env.LIFEBOAT_CRASH_AT || process.env.LIFEBOAT_PAUSE_AT);
}

if (isMainThread && enabled()) {
  // Before any worker starts, so that every worker shares the main thread's counter.
  counterCell();
}

/** Points passed so far in this process, all threads together (for tests of the hook itself). */
export function crashPointsPassed(): number {
  return shared ? Atomics.load(shared, 0) : 0;
}

/** See the file comment. Never throws; may not return (SIGKILL). */
export function crashPoint(op: CrashOp, file: string): void {
  if (!enabled()) return;
  const trace = process.env.LIFEBOAT_CRASH_TRACE;
  const at = process.env.LIFEBOAT_CRASH_AT;
  const n = Atomics.add(counterCell(), 0, 1) + 1;
  const name = isMainThread ? op : `${op}@worker`;
  if (trace) {
    try {
      appendFileSync(trace, `${n} ${name} ${file}\n`);
    } catch {
      // tracing is best effort
    }
  }
  const pauseFile = process.env.LIFEBOAT_PAUSE_FILE;
  if (pauseFile && Number(process.env.LIFEBOAT_PAUSE_AT) === n) {
    try {
      writeFileSync(pauseFile, `${n} ${name} ${file}\n`);
      const nap = new Int32Array(new SharedArrayBuffer(4));
      while (existsSync(pauseFile)) Atomics.wait(nap, 0, 0, 10);
    } catch {
      // no pause without the file
    }
  }
  const thread = process.env.LIFEBOAT_CRASH_THREAD;
  if (at && Number(at) === n && (!thread || thread === (isMainThread ? 'main' : 'worker'))) {
    process.kill(process.pid, 'SIGKILL');
  }
}

/**
 * Crash points for the crash tests: every durable file operation the engine makes
 * (rename, unlink, fsync, truncate, and SQLite writes into a live database) first calls
 * `crashPoint(op, path)`. In normal use that is one environment lookup and nothing else.
 *
 * - `LIFEBOAT_CRASH_TRACE=<file>` appends one line per crash point, `<n> <op> <path>`,
 *   so a test learns how many points a command passes and which they are.
 * - `LIFEBOAT_CRASH_AT=<n>` kills the process with SIGKILL right before the n-th point
 *   (1-based, counted per process across all threads that share the file lock-free
 *   counter below), as a power cut or `kill -9` would at that moment.
 *
 * Worker threads count with their own counter, so jobs run in a worker report
 * `<op>@worker`; tests that kill inside a worker select points by their trace line.
 */
import { appendFileSync } from 'node:fs';
import { isMainThread } from 'node:worker_threads';

export type CrashOp = 'rename' | 'unlink' | 'fsync' | 'fsyncDir' | 'truncate' | 'sqliteWrite';

let counter = 0;

/** Calls made so far in this thread (for tests of the hook itself). */
export function crashPointsPassed(): number {
  return counter;
}

/** See the file comment. Never throws; may not return (SIGKILL). */
export function crashPoint(op: CrashOp, file: string): void {
  const trace = process.env.LIFEBOAT_CRASH_TRACE;
  const at = process.env.LIFEBOAT_CRASH_AT;
  if (!trace && !at) return;
  counter++;
  const name = isMainThread ? op : `${op}@worker`;
  if (trace) {
    try {
      appendFileSync(trace, `${counter} ${name} ${file}\n`);
    } catch {
      // tracing is best effort
    }
  }
  if (at && Number(at) === counter && (process.env.LIFEBOAT_CRASH_THREAD ?? 'main') === (isMainThread ? 'main' : 'worker')) {
    process.kill(process.pid, 'SIGKILL');
  }
}

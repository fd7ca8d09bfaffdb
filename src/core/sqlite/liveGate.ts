/**
 * Keeps this process from silently dropping SQLite's own locks.
 *
 * SQLite's locks on a database are POSIX record locks, and POSIX releases every lock a
 * process holds on a file as soon as the process closes *any* descriptor of that file,
 * from any thread. So while a node:sqlite job in a worker holds its read lock on a live
 * database (a snapshot) or its write lock (a restore), a plain `fs.open` + `close` of the
 * same database, its -wal or its -shm anywhere in this process (a due-check reading the
 * header, the fallback reader) would release that lock behind SQLite's back, and a
 * writer or checkpointer could then change pages under the copy.
 *
 * So every piece of core that opens a live database's files does it inside
 * `withLiveFiles(path, ...)`, and every SQLite job on a live database runs inside
 * `withSqliteLock(path, ...)`: a readers-writer gate per database in this process, where
 * file readers share and a SQLite job excludes them. The key is the database's resolved
 * path with any -wal, -shm or -journal suffix removed.
 */
import { AsyncLocalStorage } from 'node:async_hooks';
import path from 'node:path';

interface Gate {
  readers: number;
  /** SQLite jobs waiting for the readers to finish; new readers queue behind them. */
  waiting: number;
  /** Settles when the SQLite job holding this database ends. */
  sqlite: Promise<void> | undefined;
  /** Called when `readers` drops to 0. */
  idle: Array<() => void>;
}

const gates = new Map<string, Gate>();
/** The databases whose files the current async context already reads (nested calls pass straight through). */
const reading = new AsyncLocalStorage<ReadonlySet<string>>();

function keyOf(file: string): string {
  return path.resolve(file).replace(/-(wal|shm|journal)$/, '');
}

function gateOf(key: string): Gate {
  let g = gates.get(key);
  if (!g) {
    g = { readers: 0, waiting: 0, sqlite: undefined, idle: [] };
    gates.set(key, g);
  }
  return g;
}

function release(key: string, g: Gate): void {
  if (g.readers === 0 && g.waiting === 0 && !g.sqlite && g.idle.length === 0) gates.delete(key);
}

/**
 * Runs `fn`, which opens and closes files of the live database `file` (or of its -wal,
 * -shm or -journal), after any SQLite job on that database in this process has ended,
 * and keeps new SQLite jobs on it waiting until `fn` settles. Returns what `fn` returns.
 */
export async function withLiveFiles<T>(file: string, fn: () => Promise<T>): Promise<T> {
  const key = keyOf(file);
  const held = reading.getStore();
  // A nested read (readSourceState reading the header) already holds the gate.
  if (held?.has(key)) return fn();
  // A waiting SQLite job goes first, so that readers that keep overlapping cannot starve it.
  for (let g = gates.get(key); g && (g.sqlite || g.waiting > 0); g = gates.get(key)) {
    if (g.sqlite) await g.sqlite;
    else await new Promise<void>((resolve) => g.idle.push(resolve));
  }
  const g = gateOf(key);
  g.readers++;
  try {
    return await reading.run(new Set([...(held ?? []), key]), fn);
  } finally {
    g.readers--;
    if (g.readers === 0) for (const wake of g.idle.splice(0)) wake();
    release(key, g);
  }
}

/**
 * Runs `fn`, a SQLite job that holds locks on the live database `dbPath`, alone: after
 * the file readers and any other SQLite job on that database in this process have
 * finished, and with new file readers waiting until it settles. Returns what `fn` returns.
 */
export async function withSqliteLock<T>(dbPath: string, fn: () => Promise<T>): Promise<T> {
  const key = keyOf(dbPath);
  const waiter = gateOf(key);
  waiter.waiting++;
  try {
    for (;;) {
      const g = gateOf(key);
      if (g.sqlite) await g.sqlite;
      else if (g.readers > 0) await new Promise<void>((resolve) => g.idle.push(resolve));
      else break;
    }
  } finally {
    waiter.waiting--;
  }
  const g = gateOf(key);
  let done!: () => void;
  g.sqlite = new Promise<void>((resolve) => (done = resolve));
  try {
    return await fn();
  } finally {
    g.sqlite = undefined;
    done();
    // Readers that queued behind this job while it waited.
    if (g.waiting === 0) for (const wake of g.idle.splice(0)) wake();
    release(key, g);
  }
}

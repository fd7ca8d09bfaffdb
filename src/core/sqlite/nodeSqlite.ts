/**
 * Whether this runtime has SQLite itself (`node:sqlite`), and what it can do. Decided by
 * trying to load the module, never by version number: Node 20 and VS Code <= 1.100 have
 * none, Node 22.13-22.15 (VS Code 1.101-1.102) have `DatabaseSync` without `backup()`,
 * Node 22.16+ and 24 have both, and some Electron builds shipped without the binding.
 *
 * `LIFEBOAT_SQLITE=fallback` in the environment makes Lifeboat behave as if the module
 * were absent (the pure TypeScript reader and sql.js): for tests of the fallback path
 * on a runtime that has it, and as an escape hatch for users.
 */
import type * as NodeSqliteModule from 'node:sqlite';

export type NodeSqlite = typeof NodeSqliteModule;

export interface SqliteRuntime {
  /** The loaded module. */
  sqlite: NodeSqlite;
  /** `sqlite_version()` of the library compiled into this runtime, e.g. "3.51.3". */
  version: string;
  /** Whether `backup(db, path, options)` exists (Node >= 22.16). */
  hasBackup: boolean;
}

let probed: { runtime: SqliteRuntime | undefined; why: string } | undefined;

/**
 * The runtime's SQLite, or undefined where `node:sqlite` does not load (or is switched
 * off by LIFEBOAT_SQLITE=fallback). The probe runs once per thread and is cached; it
 * never throws. Loading the module on Node 22 prints an ExperimentalWarning once, which
 * is suppressed here.
 */
export function nodeSqlite(): SqliteRuntime | undefined {
  return probe().runtime;
}

/** Why `nodeSqlite()` is undefined ("" when it is not): for logs and `lifeboat --version`. */
export function nodeSqliteUnavailableReason(): string {
  return probe().why;
}

function probe(): { runtime: SqliteRuntime | undefined; why: string } {
  if (probed) return probed;
  if (process.env.LIFEBOAT_SQLITE === 'fallback') {
    probed = { runtime: undefined, why: 'switched off by LIFEBOAT_SQLITE=fallback' };
    return probed;
  }
  try {
    const sqlite = quietly(() => loadModule());
    const db = new sqlite.DatabaseSync(':memory:');
    let version: string;
    try {
      version = String((db.prepare('SELECT sqlite_version() AS v').get() as { v: unknown }).v);
    } finally {
      db.close();
    }
    probed = { runtime: { sqlite, version, hasBackup: typeof sqlite.backup === 'function' }, why: '' };
  } catch (e) {
    probed = { runtime: undefined, why: `node:sqlite is not available in Node ${process.versions.node}: ${(e as Error).message}` };
  }
  return probed;
}

function loadModule(): NodeSqlite {
  // A computed specifier: bundlers must leave it to the runtime, and Node 20 must not fail at load time.
  const specifier = ['node', 'sqlite'].join(':');
  return require(specifier) as NodeSqlite;
}

/**
 * Runs `f` with Node's one-time "SQLite is an experimental feature" warning filtered
 * out of this thread's warning listeners (Node emits it on a later tick, so the filter
 * stays; every other warning still reaches the listeners that were there).
 */
function quietly<T>(f: () => T): T {
  if (!filterInstalled) {
    filterInstalled = true;
    const listeners = process.listeners('warning');
    process.removeAllListeners('warning');
    process.on('warning', (w: Error) => {
      if (w.name === 'ExperimentalWarning' && /SQLite/i.test(w.message)) return;
      for (const l of listeners) l(w);
    });
  }
  return f();
}

let filterInstalled = false;

import { randomBytes } from 'node:crypto';
import path from 'node:path';
import type { Readable } from 'node:stream';
import type { LogEntry } from '../catalog/backupLog';
import type { LockOptions } from '../catalog/lock';

/** One object in a store. `name` is relative to the store's root, `/`-separated. */
export interface StoredObject {
  name: string;
  size: number;
  mtimeMs: number;
}

/** A byte range of an object: `length` bytes from `offset` (to the end when absent). */
export interface ByteRange {
  offset?: number;
  length?: number;
}

/** The backup log of a store: one entry per operation, oldest first. */
export interface StoreLog {
  /** Appends one entry. Throws on I/O failure (callers that must not fail catch it). */
  append(entry: LogEntry): Promise<void>;
  /** The newest `limit` entries (all when absent), oldest first; torn entries skipped. */
  read(limit?: number): Promise<LogEntry[]>;
}

/**
 * Where backups live: a store knows objects, not backups (restic's `Backend`,
 * Litestream's `ReplicaClient`). What a backup is in a store is the business of its
 * format (src/core/format); which backups to keep is the business of rotation.
 *
 * Rules every store keeps:
 * - `publishFile` and `writeBytes` are atomic: a reader sees the whole object or none,
 *   and the object is durable when they resolve. A crash mid-write leaves no object
 *   under the name, only temp data that `open()` sweeps away later.
 * - `publishFile` never replaces an existing object unless asked to.
 * - `delete` of a missing object succeeds (deletes are repeatable after a crash).
 * - Names are relative and `/`-separated; `..`, absolute names and empty segments are
 *   refused.
 *
 * Only src/core/store knows whether a store is a local folder: everything else goes
 * through this interface (`localPath` is an optional fast path, never a requirement).
 */
export interface BackupStore {
  /** Names the store: `file:///abs/dir` for a folder. Equal URLs are the same store. */
  readonly url: string;
  /** The store for people: a folder's path, a remote's URL without credentials. */
  readonly label: string;

  /**
   * Makes the store ready for writing: creates it when missing and sweeps temp data left
   * by writers that died. BackupError 'unwritable' naming the store when it can't.
   */
  open(): Promise<void>;

  /**
   * The objects directly in `folder` (`''`: the top level; `'packs'`: that folder),
   * with names relative to the root. Sub-folders and temp data are not listed. A store
   * or folder that does not exist lists as empty.
   */
  list(folder?: string): Promise<StoredObject[]>;

  /** The object's size and time, or undefined when it does not exist. */
  stat(name: string): Promise<StoredObject | undefined>;

  /** Streams the object's bytes (a range of them). BackupError 'notFound' naming it when missing. */
  read(name: string, range?: ByteRange): Promise<Readable>;

  /** The object's bytes (a range of them) in memory: for small objects. */
  readBytes(name: string, range?: ByteRange): Promise<Buffer>;

  /**
   * The object as a local file, for readers that need random access (zip): the object
   * itself for a folder store (release does nothing), a downloaded copy otherwise
   * (release removes it).
   */
  localCopy(name: string, o?: { signal?: AbortSignal }): Promise<{ path: string; release(): Promise<void> }>;

  /**
   * A local folder for building objects before publishing them, on the same file system
   * as the store where the store is a folder (so publishing is a rename). Temp files made
   * there carry the writer's pid (`<stem>.<pid>.<hex>.<suffix>`) so that `open()` can
   * sweep those of dead writers.
   */
  scratchDir(): Promise<string>;

  /**
   * Publishes a finished local file as object `name`: atomically and durably, consuming
   * the file. BackupError 'exists' when `name` exists and `overwrite` is not set.
   */
  publishFile(file: string, name: string, o?: { overwrite?: boolean }): Promise<StoredObject>;

  /** Writes `data` as object `name`, atomically and durably, replacing any old one. */
  writeBytes(name: string, data: string | Uint8Array): Promise<void>;

  /** Deletes an object, durably; a missing one is not an error. */
  delete(name: string): Promise<void>;

  /**
   * Runs `fn` while holding the store's lock (or lease): one writer at a time across
   * processes and machines. BackupError 'locked' when another holder keeps it too long.
   */
  withLock<T>(fn: () => Promise<T>, o?: LockOptions): Promise<T>;

  /** The store's backup log. */
  readonly log: StoreLog;

  /** The object's local path where the store is a folder; undefined for other stores. */
  localPath(name: string): string | undefined;

  /**
   * Tells a remote store that these objects are about to be read, in ranges and in any
   * order (a backup's packs, while its image is rebuilt): it may fetch each whole, once,
   * into a local cache that later reads use, instead of thousands of ranged requests.
   * Resolves to a release. Local stores need not have it.
   */
  prepareRead?(objects: string[], o?: { signal?: AbortSignal }): Promise<() => void>;
}

/** Throws unless `name` is a relative, `/`-separated object name with no `.`/`..` or empty segment. */
export function assertObjectName(name: string): void {
  const segments = name.split('/');
  if (!name || name.startsWith('/') || name.includes('\\') || segments.some((s) => s === '' || s === '.' || s === '..')) {
    throw new Error(`not a valid object name: ${JSON.stringify(name)}`);
  }
}

/**
 * A temp file name in a scratch folder (see `BackupStore.scratchDir`) that carries this
 * process's pid, so that a store sweeps those of dead writers: `<stem>.<pid>.<hex><suffix>`.
 */
export function scratchFile(dir: string, stem: string, suffix: string): string {
  return path.join(dir, `${stem}.${process.pid}.${randomBytes(4).toString('hex')}${suffix}`);
}

import type { Readable } from 'node:stream';
import type { ByteRange, StoredObject } from '../store';

/** What to upload: a local file (streamed, never read whole into memory) or bytes. */
export type PutBody = { file: string; size: number } | { bytes: Buffer };

/**
 * A body made on the fly rather than read from a file: each call of `open` starts a new
 * stream of the same `size` bytes (an encrypted file, sealed as it is sent), so an upload
 * can be repeated without any copy of the body kept on disk or in memory.
 */
export interface PutSource {
  size: number;
  open(): Readable;
}

export interface PutOptions {
  /**
   * SHA-256 (hex) of the body's bytes: kept with the object (metadata) and checked after
   * upload. '' when the caller does not know it: a backend that needs it computes it.
   */
  sha256: string;
  signal?: AbortSignal;
  /** Called with bytes sent so far. */
  onProgress?: (sent: number) => void;
}

/**
 * The raw objects of one remote place: an S3 bucket and prefix, an SFTP folder. This is the
 * layer restic calls `Backend` and Litestream `ReplicaClient`: no locks, no logs, no
 * backups, no retries of its own beyond what its client library does; `RemoteStore`
 * (remoteStore.ts) builds a `BackupStore` on top of it, and `EncryptedBackend` wraps one.
 *
 * Rules every backend keeps:
 * - Names are relative to the backend's root, `/`-separated, checked by `assertObjectName`.
 * - `put` is atomic: a reader sees the whole object or none (S3: a single PUT or a
 *   completed multipart upload; SFTP: a temp name, then rename). It replaces an existing
 *   object of the same name. After it resolves, the object is there with the given size,
 *   and the backend has checked that (S3: HEAD for size and the SHA-256 in metadata).
 * - `delete` of a missing object succeeds.
 * - Errors are `BackupError`s whose one-line message names the URL (without credentials)
 *   and what failed: reason 'notFound' for a missing object or bucket/folder, 'unwritable'
 *   for refused credentials or permissions, 'io' for refused connections, timeouts and
 *   anything else, 'cancelled' when the signal aborted.
 */
export interface ObjectBackend {
  /** `s3://bucket/prefix`, `sftp://user@host:port/path`: no secrets, ever. */
  readonly url: string;
  /** The same, for people. */
  readonly label: string;

  /**
   * Checks that the remote answers, the credentials work and the bucket/folder exists.
   * `create` makes the folder (SFTP) or the bucket (S3) when missing.
   */
  connect(o?: { create?: boolean }): Promise<void>;

  /** Every object whose name starts with `prefix` (`''`: all), at any depth, names relative to the root. */
  list(prefix: string): Promise<StoredObject[]>;

  /** The object's size and time, or undefined when it does not exist. */
  stat(name: string): Promise<StoredObject | undefined>;

  /** The SHA-256 (hex) recorded for the object at upload, when the backend keeps one (S3 metadata). */
  recordedSha256?(name: string): Promise<string | undefined>;

  /** Streams the object's bytes (a range of them). BackupError 'notFound' naming it when missing. */
  get(name: string, range?: ByteRange, o?: { signal?: AbortSignal }): Promise<Readable>;

  /** Uploads atomically (see above), replacing any object of that name. */
  put(name: string, body: PutBody, o: PutOptions): Promise<void>;

  /**
   * As `put`, for a body made on the fly (see PutSource), read once per attempt. Optional: a
   * backend without it is given a file or bytes instead.
   */
  putSource?(name: string, body: PutSource, o: PutOptions): Promise<void>;

  /** Deletes; a missing object is not an error. */
  delete(name: string): Promise<void>;

  /**
   * Removes what writers that died left behind and that no reader can see: S3's incomplete
   * multipart uploads, SFTP's temp files, when older than `olderThanMs` (by the server's
   * clock where it has one). Returns how many it removed.
   */
  sweep(olderThanMs: number): Promise<number>;

  /** Closes connections. The backend may be connected again. */
  close(): Promise<void>;
}

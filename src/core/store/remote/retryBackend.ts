import type { Readable } from 'node:stream';
import { BackupError } from '../../errors';
import type { ByteRange, StoredObject } from '../store';
import type { ObjectBackend, PutBody, PutOptions, PutSource } from './objectBackend';

const TRANSIENT = Symbol('transient');

/** Marks an error as worth retrying (a refused or reset connection, a timeout, HTTP 408, 429 or 5xx). */
export function transient<E extends Error>(e: E): E {
  (e as unknown as Record<symbol, boolean>)[TRANSIENT] = true;
  return e;
}

export function isTransient(e: unknown): boolean {
  return !!e && typeof e === 'object' && (e as Record<symbol, boolean>)[TRANSIENT] === true;
}

export interface RetryOptions {
  /** Attempts in all, default 5. */
  attempts?: number;
  /** First back-off, doubled each time with jitter, default 500 ms (capped at 20 s). */
  baseMs?: number;
  /** Told of each retry, for the log. */
  onRetry?: (doing: string, attempt: number, e: Error) => void;
  sleep?: (ms: number, signal?: AbortSignal) => Promise<void>;
}

/**
 * Retries a backend's transient failures with exponential back-off and jitter, for every
 * backend alike (restic's RetryBackend): wrong credentials, a missing bucket or object and
 * cancellation fail at once. Every operation is safe to repeat: uploads are atomic
 * replacements, deletes of missing objects succeed.
 */
export class RetryBackend implements ObjectBackend {
  readonly url: string;
  readonly label: string;
  recordedSha256?: (name: string) => Promise<string | undefined>;
  putSource?: (name: string, body: PutSource, o: PutOptions) => Promise<void>;

  constructor(
    readonly inner: ObjectBackend,
    private readonly o: RetryOptions = {},
  ) {
    this.url = inner.url;
    this.label = inner.label;
    if (inner.recordedSha256) this.recordedSha256 = (name) => this.retry(`reading ${name}`, () => inner.recordedSha256!(name));
    if (inner.putSource) this.putSource = (name, body, o) => this.retry(`uploading ${name}`, () => inner.putSource!(name, body, o), o.signal);
  }

  private async retry<T>(doing: string, fn: () => Promise<T>, signal?: AbortSignal): Promise<T> {
    const attempts = this.o.attempts ?? 5;
    const sleep = this.o.sleep ?? defaultSleep;
    for (let attempt = 1; ; attempt++) {
      try {
        return await fn();
      } catch (e) {
        if (attempt >= attempts || !isTransient(e) || signal?.aborted) throw e;
        this.o.onRetry?.(doing, attempt, e as Error);
        const base = Math.min(20_000, (this.o.baseMs ?? 500) * 2 ** (attempt - 1));
        await sleep(base / 2 + Math.random() * base, signal);
      }
    }
  }

  connect(o?: { create?: boolean }): Promise<void> {
    return this.retry('connecting', () => this.inner.connect(o));
  }
  list(prefix: string): Promise<StoredObject[]> {
    return this.retry('listing', () => this.inner.list(prefix));
  }
  stat(name: string): Promise<StoredObject | undefined> {
    return this.retry(`reading ${name}`, () => this.inner.stat(name));
  }
  get(name: string, range?: ByteRange, o?: { signal?: AbortSignal }): Promise<Readable> {
    return this.retry(`downloading ${name}`, () => this.inner.get(name, range, o), o?.signal);
  }
  put(name: string, body: PutBody, o: PutOptions): Promise<void> {
    return this.retry(`uploading ${name}`, () => this.inner.put(name, body, o), o.signal);
  }
  delete(name: string): Promise<void> {
    return this.retry(`deleting ${name}`, () => this.inner.delete(name));
  }
  sweep(olderThanMs: number): Promise<number> {
    return this.retry('sweeping', () => this.inner.sweep(olderThanMs));
  }
  close(): Promise<void> {
    return this.inner.close();
  }
}

function defaultSleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    const t = setTimeout(done, ms);
    function done(): void {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    }
    function onAbort(): void {
      clearTimeout(t);
      reject(new BackupError('cancelled', 'cancelled'));
    }
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}

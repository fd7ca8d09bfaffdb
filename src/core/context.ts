/**
 * The small structural types the engine needs from its host. They match VS Code's
 * shapes so core objects fit into `context.subscriptions` without importing `vscode`.
 */

export interface Disposable {
  dispose(): void;
}

/** A subscription function, shaped like `vscode.Event<T>`. */
export type Event<T> = (listener: (e: T) => void) => Disposable;

/** A minimal event emitter whose `event` property fits `Event<T>`. */
export class Emitter<T> implements Disposable {
  private listeners = new Set<(e: T) => void>();
  readonly event: Event<T> = (listener) => {
    this.listeners.add(listener);
    return { dispose: () => this.listeners.delete(listener) };
  };
  fire(e: T): void {
    for (const l of [...this.listeners]) l(e);
  }
  dispose(): void {
    this.listeners.clear();
  }
}

/** Time, injected so that tests never read or wait for the real clock. */
export interface Clock {
  now(): Date;
  /** Waits `ms` of this clock's time; rejects with the signal's reason when aborted. */
  sleep(ms: number, signal?: AbortSignal): Promise<void>;
}

export const systemClock: Clock = {
  now: () => new Date(),
  sleep: (ms, signal) =>
    new Promise<void>((resolve, reject) => {
      if (signal?.aborted) return reject(signal.reason);
      const t = setTimeout(() => {
        signal?.removeEventListener('abort', onAbort);
        resolve();
      }, ms);
      const onAbort = () => {
        clearTimeout(t);
        reject(signal!.reason);
      };
      signal?.addEventListener('abort', onAbort, { once: true });
    }),
};

/** Fixed field keys for structured log lines. */
export interface LogFields {
  db?: string;
  backup?: string;
  phase?: string;
  [key: string]: unknown;
}

export interface Logger {
  debug(message: string, fields?: LogFields): void;
  info(message: string, fields?: LogFields): void;
  warn(message: string, fields?: LogFields): void;
  error(message: string, fields?: LogFields): void;
}

export const nullLogger: Logger = {
  debug() {},
  info() {},
  warn() {},
  error() {},
};

/** Progress of a long operation, for progress bars. `total` is 0 when unknown. */
export interface Progress {
  phase: string;
  done: number;
  total: number;
}

export type ProgressListener = (p: Progress) => void;

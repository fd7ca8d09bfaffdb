import type { Disposable } from '../core/context';

/**
 * Owns disposables and disposes them in reverse order of registration, so a service
 * goes before the services it was built on. A registration made after disposal is
 * disposed at once. `dispose` is safe to repeat; one failing disposer does not stop
 * the others.
 */
export class DisposableStore implements Disposable {
  private items: Disposable[] = [];
  private disposed = false;

  /** Registers `d` (and returns it); disposes it at once when the store is already disposed. */
  add<T extends Disposable>(d: T): T {
    if (this.disposed) {
      safeDispose(d);
    } else {
      this.items.push(d);
    }
    return d;
  }

  get isDisposed(): boolean {
    return this.disposed;
  }

  dispose(): void {
    if (this.disposed) return;
    this.disposed = true;
    while (this.items.length) safeDispose(this.items.pop()!);
  }
}

function safeDispose(d: Disposable): void {
  try {
    d.dispose();
  } catch {
    // Shutdown continues; one bad disposer must not leak the rest.
  }
}

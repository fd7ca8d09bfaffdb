/**
 * One queue per key (a database path): jobs with the same key run one after another,
 * never overlapping; different keys run independently. `join` lets a caller share a
 * job of the same kind that is already waiting or running instead of queueing another.
 */
export class KeyedQueue {
  private tails = new Map<string, Promise<unknown>>();
  private running = new Map<string, { tag: string; promise: Promise<unknown> }[]>();

  /**
   * Runs `job` after every earlier job of `key`. With `joinTag`, a job of the same key and
   * tag that has not finished yet is returned instead of starting a new one.
   */
  run<T>(key: string, job: () => Promise<T>, joinTag?: string): Promise<T> {
    if (joinTag) {
      const same = this.running.get(key)?.find((r) => r.tag === joinTag);
      if (same) return same.promise as Promise<T>;
    }
    const prev = this.tails.get(key) ?? Promise.resolve();
    const promise = prev.then(job, job);
    const entry = { tag: joinTag ?? '', promise };
    const list = this.running.get(key) ?? [];
    list.push(entry);
    this.running.set(key, list);
    const tail = promise.then(
      () => undefined,
      () => undefined,
    );
    this.tails.set(key, tail);
    void tail.then(() => {
      const l = this.running.get(key);
      if (l) {
        const i = l.indexOf(entry);
        if (i >= 0) l.splice(i, 1);
        if (l.length === 0) this.running.delete(key);
      }
      if (this.tails.get(key) === tail) this.tails.delete(key);
    });
    return promise;
  }

  /** True while any job of `key` is waiting or running. */
  busy(key: string): boolean {
    return (this.running.get(key)?.length ?? 0) > 0;
  }

  /** Resolves when every job queued so far has finished. */
  async idle(): Promise<void> {
    await Promise.all([...this.tails.values()]);
  }
}

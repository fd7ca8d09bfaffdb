import { Transform } from 'node:stream';

/**
 * A bandwidth limit of `kiBps` KiB per second shared by every stream made with `stream()`
 * (a token bucket of one second's worth): the limit of off-site copies holds for the sum of
 * the uploads running at once, not for each.
 */
export class Bandwidth {
  private readonly rate: number;
  private tokens: number;
  private last = Date.now();

  constructor(kiBps: number) {
    this.rate = Math.max(1, kiBps) * 1024;
    this.tokens = this.rate;
  }

  /** Bytes that may pass now (at most `want`), taken from the bucket; 0 when it is empty. */
  private take(want: number): number {
    const now = Date.now();
    this.tokens = Math.min(this.rate, this.tokens + ((now - this.last) / 1000) * this.rate);
    this.last = now;
    const n = Math.min(want, Math.floor(this.tokens));
    this.tokens -= n;
    return n;
  }

  /** Milliseconds until at least one byte may pass. */
  private wait(): number {
    return Math.ceil(((1 - this.tokens) / this.rate) * 1000) + 1;
  }

  /** A pass-through stream that lets bytes through as the shared budget allows. */
  stream(): Transform {
    const take = (want: number): number => this.take(want);
    const wait = (): number => this.wait();
    return new Transform({
      transform(chunk: Buffer, _enc, done) {
        const send = (offset: number): void => {
          if (offset >= chunk.length) return done();
          const n = take(chunk.length - offset);
          if (n === 0) {
            setTimeout(() => send(offset), wait());
            return;
          }
          this.push(chunk.subarray(offset, offset + n));
          send(offset + n);
        };
        send(0);
      },
    });
  }
}

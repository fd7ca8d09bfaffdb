import { Transform } from 'node:stream';

/**
 * A pass-through stream that lets at most `kiBps` KiB through per second (a token bucket
 * of one second's worth): the bandwidth limit of off-site copies.
 */
export function throttled(kiBps: number): Transform {
  const rate = Math.max(1, kiBps) * 1024;
  let tokens = rate;
  let last = Date.now();
  return new Transform({
    transform(chunk: Buffer, _enc, done) {
      const send = (offset: number): void => {
        const now = Date.now();
        tokens = Math.min(rate, tokens + ((now - last) / 1000) * rate);
        last = now;
        if (offset >= chunk.length) return done();
        if (tokens < 1) {
          setTimeout(() => send(offset), Math.ceil(((1 - tokens) / rate) * 1000) + 1);
          return;
        }
        const n = Math.min(chunk.length - offset, Math.floor(tokens));
        tokens -= n;
        this.push(chunk.subarray(offset, offset + n));
        send(offset + n);
      };
      send(0);
    },
  });
}

// Preloaded into a CLI run by bench/offsite.mjs (`node -r bench/stallProbe.cjs dist/cli.js ...`):
// a 5 ms interval timer measures the longest gap between its ticks (as bench/child.ts does in
// process), and every gap over 50 ms with its time since the first tick; written as JSON to
// $LIFEBOAT_BENCH_STALL_OUT when the process exits. Counting starts at the first tick, so the
// synchronous load of the bundle itself is reported apart (`loadMs`), not as a stall.
//
// Each gap is also split by the kernel's account of the main thread (Linux:
// /proc/thread-self/schedstat): how long the thread was runnable but waiting for a core
// (`waitMs`: the machine's other processes had both cores, such as the S3 server the bench
// runs beside it), and so how long the gap was the process's own doing (`ownMs` = gap -
// waitMs: running JavaScript, collecting garbage, or blocked in a system call). The longest
// own gap is `maxOwnMs`; where schedstat cannot be read, it is the gap itself.
'use strict';
const { readFileSync, writeFileSync } = require('node:fs');
const { performance } = require('node:perf_hooks');

const out = process.env.LIFEBOAT_BENCH_STALL_OUT;
if (out) {
  const TICK = 5;
  let first = 0;
  let last = 0;
  let lastWait = 0;
  let maxMs = 0;
  let maxOwnMs = 0;
  const stalls = [];
  let schedstat = true;
  /** Nanoseconds the main thread has spent runnable and waiting for a core, or undefined. */
  const waited = () => {
    if (!schedstat) return undefined;
    try {
      return Number(readFileSync('/proc/thread-self/schedstat', 'latin1').split(' ')[1]) / 1e6;
    } catch {
      schedstat = false;
      return undefined;
    }
  };
  const iv = setInterval(() => {
    const now = performance.now();
    const wait = waited();
    if (!first) {
      first = now;
    } else {
      const gap = now - last;
      const waitMs = wait === undefined ? 0 : Math.max(0, wait - lastWait);
      const own = Math.max(0, gap - waitMs);
      if (gap > maxMs) maxMs = gap;
      if (own > maxOwnMs) maxOwnMs = own;
      if (gap > 50) stalls.push({ atMs: Math.round(last - first), gapMs: Math.round(gap), waitMs: Math.round(waitMs) });
    }
    last = now;
    lastWait = wait ?? 0;
  }, TICK);
  iv.unref();
  const loadStart = performance.now();
  process.on('exit', () => {
    writeFileSync(out, JSON.stringify({ maxMs, maxOwnMs, schedstat, stalls, loadMs: Math.round((first || performance.now()) - loadStart), runMs: Math.round(last - first) }));
  });
}

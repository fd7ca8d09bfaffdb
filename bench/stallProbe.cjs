// Preloaded into a CLI run by bench/offsite.mjs (`node -r bench/stallProbe.cjs dist/cli.js ...`):
// a 5 ms interval timer measures the longest gap between its ticks (as bench/child.ts does in
// process), and every gap over 50 ms with its time since the first tick; written as JSON to
// $LIFEBOAT_BENCH_STALL_OUT when the process exits. Counting starts at the first tick, so the
// synchronous load of the bundle itself is reported apart (`loadMs`), not as a stall.
'use strict';
const { writeFileSync } = require('node:fs');
const { performance } = require('node:perf_hooks');

const out = process.env.LIFEBOAT_BENCH_STALL_OUT;
if (out) {
  const TICK = 5;
  let first = 0;
  let last = 0;
  let maxMs = 0;
  const stalls = [];
  const iv = setInterval(() => {
    const now = performance.now();
    if (!first) {
      first = now;
    } else {
      const gap = now - last;
      if (gap > maxMs) maxMs = gap;
      if (gap > 50) stalls.push({ atMs: Math.round(last - first), gapMs: Math.round(gap) });
    }
    last = now;
  }, TICK);
  iv.unref();
  const loadStart = performance.now();
  process.on('exit', () => {
    writeFileSync(out, JSON.stringify({ maxMs, stalls, loadMs: Math.round((first || performance.now()) - loadStart), runMs: Math.round(last - first) }));
  });
}

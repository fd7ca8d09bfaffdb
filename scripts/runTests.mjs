// Transpiles src/, webview/ and test/ with esbuild into out/ (no type check: `npm run
// typecheck` does that) and runs the chosen suites with node's test runner:
// `node scripts/runTests.mjs unit integration [--grep pattern] [--typecheck]`.
import { spawnSync } from 'node:child_process';
import { build } from 'esbuild';
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import path from 'node:path';

const args = process.argv.slice(2);
const grepAt = args.indexOf('--grep');
const grep = grepAt >= 0 ? new RegExp(args[grepAt + 1]) : undefined;
const suites = args.filter((a, i) => !a.startsWith('--') && (grepAt < 0 || i !== grepAt + 1));

if (args.includes('--typecheck')) {
  for (const project of ['tsconfig.json', 'src/core/tsconfig.json']) {
    const tsc = spawnSync(process.execPath, ['node_modules/typescript/bin/tsc', '-p', project, '--noEmit'], { stdio: 'inherit' });
    if (tsc.status !== 0) {
      console.error(`type check failed: ${project}`);
      process.exit(tsc.status ?? 1);
    }
  }
}

rmSync('out', { recursive: true, force: true });
const sources = [];
const collect = (dir) => {
  if (!existsSync(dir)) return;
  for (const name of readdirSync(dir)) {
    const p = path.join(dir, name);
    if (statSync(p).isDirectory()) collect(p);
    else if (name.endsWith('.ts') && !name.endsWith('.d.ts')) sources.push(p);
  }
};
for (const d of ['src', 'test', 'webview']) collect(d);
await build({
  entryPoints: sources,
  outdir: 'out',
  outbase: '.',
  platform: 'node',
  target: 'node20',
  format: 'cjs',
  sourcemap: 'inline',
  logLevel: 'warning',
});

const files = [];
const walk = (dir) => {
  for (const name of readdirSync(dir)) {
    const p = path.join(dir, name);
    if (statSync(p).isDirectory()) walk(p);
    else if (name.endsWith('.test.js') && (!grep || grep.test(p))) files.push(p);
  }
};
for (const s of suites) if (existsSync(`out/test/${s}`)) walk(`out/test/${s}`);
files.sort();
if (files.length === 0) {
  console.error(`no test files found for: ${suites.join(' ')}`);
  process.exit(1);
}
mkdirSync('test-results', { recursive: true });
const tap = path.join('out', 'results.tap');
const run = spawnSync(
  process.execPath,
  ['--test', '--test-reporter=spec', '--test-reporter-destination=stdout', '--test-reporter=tap', `--test-reporter-destination=${tap}`, ...files],
  { stdio: 'inherit' },
);
// The counts, for scripts/test.sh's closing line over every test suite.
const text = existsSync(tap) ? readFileSync(tap, 'utf8') : '';
const count = (k) => Number(new RegExp(`^# ${k} (\\d+)$`, 'm').exec(text)?.[1] ?? 0);
writeFileSync('test-results/summary-node.json', JSON.stringify({ suite: `node (${suites.join(', ')})`, passed: count('pass'), failed: count('fail') + count('cancelled') }));
process.exit(run.status ?? 1);

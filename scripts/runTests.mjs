// Compiles the TypeScript tests with tsc into out/ and runs the chosen suites with
// node's test runner: `node scripts/runTests.mjs unit integration [--grep pattern]`.
import { spawnSync } from 'node:child_process';
import { readdirSync, statSync, existsSync, rmSync } from 'node:fs';
import path from 'node:path';

const args = process.argv.slice(2);
const grepAt = args.indexOf('--grep');
const grep = grepAt >= 0 ? new RegExp(args[grepAt + 1]) : undefined;
const suites = args.filter((a, i) => !a.startsWith('--') && i !== grepAt + 1);

rmSync('out', { recursive: true, force: true });
const tsc = spawnSync(process.execPath, ['node_modules/typescript/bin/tsc', '-p', 'tsconfig.json'], { stdio: 'inherit' });
if (tsc.status !== 0) process.exit(tsc.status ?? 1);
const core = spawnSync(process.execPath, ['node_modules/typescript/bin/tsc', '-p', 'src/core/tsconfig.json'], { stdio: 'inherit' });
if (core.status !== 0) {
  console.error('src/core must compile without vscode or DOM types');
  process.exit(core.status ?? 1);
}

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
const run = spawnSync(process.execPath, ['--test', '--test-reporter=spec', ...files], { stdio: 'inherit' });
process.exit(run.status ?? 1);

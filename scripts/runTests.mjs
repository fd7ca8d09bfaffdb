// Transpiles src/, webview/ and test/ with esbuild into out/ (no type check: `npm run
// typecheck` does that) and runs the chosen suites with node's test runner, twice:
//   node24    under Node 24 (.cache/node24/node_modules/.bin/node): the node:sqlite path;
//   fallback  under the Node running this script (the machine's Node 20), with
//             LIFEBOAT_SQLITE=fallback: the pure-TypeScript reader and sql.js.
// `node scripts/runTests.mjs unit integration [--grep pattern] [--typecheck] [--runtime node24|fallback|both]`
// Each run writes test-results/summary-<runtime>.json ({suite, passed, failed, skipped}) for
// scripts/test.sh's closing line. Exits non-zero when a run fails, when a run ends without
// its counts, and when the Node 24 binary is missing (it names the file).
import { spawnSync } from 'node:child_process';
import { build } from 'esbuild';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const REPO = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
process.chdir(REPO);
/** The contract with scripts/vscode/setup.sh, which installs it there. */
const NODE24 = path.join(REPO, '.cache', 'node24', 'node_modules', '.bin', 'node');

const args = process.argv.slice(2);
const valueOf = (flag) => {
  const at = args.indexOf(flag);
  if (at < 0) return undefined;
  const v = args[at + 1];
  if (v === undefined || v.startsWith('--')) {
    console.error(`runTests: ${flag} needs a value`);
    process.exit(2);
  }
  return v;
};
const grepSource = valueOf('--grep');
const grep = grepSource !== undefined ? new RegExp(grepSource) : undefined;
const runtimeArg = valueOf('--runtime') ?? 'both';
const valued = new Set(['--grep', '--runtime']);
const suites = args.filter((a, i) => !a.startsWith('--') && !valued.has(args[i - 1]));
const RUNTIMES = { both: ['node24', 'fallback'], node24: ['node24'], fallback: ['fallback'] };
if (!RUNTIMES[runtimeArg]) {
  console.error(`runTests: --runtime must be node24, fallback or both (got ${runtimeArg})`);
  process.exit(2);
}
if (suites.length === 0) {
  console.error('runTests: name the suites to run, e.g. unit integration');
  process.exit(2);
}

/** How each run starts node, and what it is called in the summary. */
function runtime(name) {
  if (name === 'node24') {
    if (!existsSync(NODE24)) {
      console.error(`runTests: Node 24 is missing: ${NODE24} does not exist; scripts/vscode/setup.sh installs it (npm test runs it first)`);
      process.exit(1);
    }
    const probe = spawnSync(NODE24, ['-e', "require('node:sqlite'); process.stdout.write(process.versions.node)"], { encoding: 'utf8' });
    if (probe.status !== 0) {
      console.error(`runTests: ${NODE24} cannot load node:sqlite (exit ${probe.status}): ${probe.stderr.trim()}`);
      process.exit(1);
    }
    const env = { ...process.env };
    // The node:sqlite path must not be switched off by the caller's environment.
    delete env.LIFEBOAT_SQLITE;
    return { name, exe: NODE24, env, label: `node ${probe.stdout} node:sqlite` };
  }
  return { name, exe: process.execPath, env: { ...process.env, LIFEBOAT_SQLITE: 'fallback' }, label: `node ${process.versions.node} fallback` };
}
// Check every runtime before building, so a missing binary fails at once.
const runs = RUNTIMES[runtimeArg].map(runtime);

if (args.includes('--typecheck')) {
  for (const project of ['tsconfig.json', 'src/core/tsconfig.json']) {
    const tsc = spawnSync(process.execPath, ['node_modules/typescript/bin/tsc', '-p', project, '--noEmit'], { stdio: 'inherit' });
    if (tsc.status !== 0) {
      console.error(`type check failed: ${project}`);
      process.exit(tsc.status ?? 1);
    }
  }
}

// Tests find the repository by their depth under out/ (out/test/unit/x.test.js). out/ is
// built over, never removed: engineers sharing a working tree run this at the same time, and
// the same sources give the same files; a test whose source is gone is not run (below).
const OUT = 'out';
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
  outdir: OUT,
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
    else if (name.endsWith('.test.js') && (!grep || grep.test(p)) && existsSync(path.relative(OUT, p).replace(/\.js$/, '.ts'))) files.push(p);
  }
};
for (const s of suites) if (existsSync(path.join(OUT, 'test', s))) walk(path.join(OUT, 'test', s));
files.sort();
if (files.length === 0) {
  console.error(`no test files found for: ${suites.join(' ')}${grep ? ` matching ${grep}` : ''}`);
  process.exit(1);
}

/** The runner's closing counts in a TAP file; undefined when the run ended without them. */
function tapCounts(text) {
  const count = (k) => {
    const m = new RegExp(`^# ${k} (\\d+)$`, 'm').exec(text);
    return m ? Number(m[1]) : undefined;
  };
  const pass = count('pass');
  const fail = count('fail');
  if (pass === undefined || fail === undefined) return undefined;
  // Todo counts as skipped: neither ran to a verdict.
  return { passed: pass, failed: fail + (count('cancelled') ?? 0), skipped: (count('skipped') ?? 0) + (count('todo') ?? 0) };
}

mkdirSync('test-results', { recursive: true });
rmSync('test-results/summary-node.json', { force: true });
/** True while process `pid` exists (EPERM: it exists, as another user's). */
function alive(pid) {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return e.code === 'EPERM';
  }
}

// The temp folders of earlier runs that were killed before they could remove them: each
// folder's name carries its runner's pid, and a folder whose runner is gone is removed.
for (const n of readdirSync(os.tmpdir())) {
  const m = /^lifeboat-tests-[a-z0-9]+-(\d+)-/.exec(n);
  if (m && Number(m[1]) !== process.pid && !alive(Number(m[1]))) rmSync(path.join(os.tmpdir(), n), { recursive: true, force: true });
}

let failedRuns = 0;
const lines = [];
for (const r of runs) {
  const summaryFile = `test-results/summary-${r.name}.json`;
  rmSync(summaryFile, { force: true });
  const tap = path.join(OUT, `results-${process.pid}-${r.name}.tap`);
  console.log(`\n== ${r.label}: ${files.length} test file(s) of ${suites.join(', ')}${grep ? ` matching ${grep}` : ''}`);
  // A temp folder of the run's own, removed after it: what the code under test keeps in
  // the system's temp folder by design (a remote's scratch folder, one per URL, and the
  // description it remembers there) would otherwise pile up there, one per test remote.
  // Open to all like /tmp itself (sticky, world-writable): some tests run a process as
  // another user on files under it (mkdtemp makes it 0700). Named with this runner's pid,
  // so that a later run removes it if this one is killed first (above).
  const tmp = mkdtempSync(path.join(os.tmpdir(), `lifeboat-tests-${r.name}-${process.pid}-`));
  chmodSync(tmp, 0o1777);
  const run = spawnSync(
    r.exe,
    ['--test', '--test-reporter=spec', '--test-reporter-destination=stdout', '--test-reporter=tap', `--test-reporter-destination=${tap}`, ...files],
    { stdio: 'inherit', env: { ...r.env, TMPDIR: tmp } },
  );
  rmSync(tmp, { recursive: true, force: true });
  const counts = tapCounts(existsSync(tap) ? readFileSync(tap, 'utf8') : '');
  rmSync(tap, { force: true });
  if (!counts) {
    // No summary file: scripts/test.sh counts a missing summary as a failed suite.
    console.error(`runTests: the ${r.label} run ended without its counts (exit ${run.status}, signal ${run.signal})`);
    failedRuns++;
    lines.push(`  ${r.label}: no counts`);
    continue;
  }
  const suite = `${r.label} (${suites.join(', ')})`;
  writeFileSync(summaryFile, JSON.stringify({ suite, ...counts }));
  lines.push(`  ${suite}: ${counts.passed} passed, ${counts.failed} failed, ${counts.skipped} skipped`);
  if (run.status !== 0 || counts.failed > 0) failedRuns++;
}
console.log(['', ...lines].join('\n'));
process.exit(failedRuns ? 1 : 0);

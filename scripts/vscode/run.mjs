#!/usr/bin/env node
// Runs Lifeboat's tests inside a real VS Code (code-server 4.139.1 from npm, VS Code 1.139,
// run on Node 24 from .cache/node24)
// driven by playwright-core and Debian's Chromium:
//   node scripts/vscode/run.mjs [--grep PATTERN] [--only host|ui] [--keep] [--no-build]
// 1. builds dist/ (node esbuild.mjs) and packages a VSIX with vsce;
// 2. bundles test/vscode/suite/*.ts (mocha, run inside the extension host) and the runner
//    with every test/e2e/*.ts (Playwright UI checks);
// 3. scripts/vscode/runner.ts does the run: fresh folders, VSIX installed, code-server on
//    127.0.0.1, the in-host suite, the UI checks, then the other phases, each in a
//    code-server of its own: Restricted Mode (workspace trust on, files exporting
//    `phase = 'restricted'`) and a multi-root workspace (`phase = 'multiroot'`), then
//    stops everything it started.
// Prints `N passed, N failed, N skipped` last; exits 0 only when nothing failed. Run
// scripts/vscode/setup.sh once first (it installs code-server and Chromium).
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { build, stop as stopEsbuild } from 'esbuild';

const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
process.chdir(repoRoot);
const require = createRequire(import.meta.url);

const args = process.argv.slice(2);
const opt = (name) => {
  const i = args.indexOf(name);
  return i >= 0 ? args[i + 1] : undefined;
};
const grep = opt('--grep');
const only = opt('--only');
if (only && only !== 'host' && only !== 'ui') fail(`--only must be host or ui, not ${only}`);
const keep = args.includes('--keep');
const noBuild = args.includes('--no-build');

const node24 = path.join(repoRoot, '.cache/node24/node_modules/.bin/node');
const codeServer = path.join(repoRoot, '.cache/code-server/node_modules/code-server/out/node/entry.js');
if (!existsSync(node24) || !existsSync(codeServer) || !existsSync('/usr/bin/chromium')) {
  fail('Node 24, code-server or Chromium is missing: run `bash scripts/vscode/setup.sh` first', 2);
}

const t0 = Date.now();
const since = () => `${((Date.now() - t0) / 1000).toFixed(1)} s`;
// A folder of this process's own, so two runs at once do not share bundles or the VSIX.
const work = path.join(repoRoot, '.cache', `vscode-run-${process.pid}`);
rmSync(work, { recursive: true, force: true });
mkdirSync(work, { recursive: true });
let removeWork = () => rmSync(work, { recursive: true, force: true });
process.on('exit', () => removeWork());

const pkg = JSON.parse(readFileSync('package.json', 'utf8'));
const extensionId = `${pkg.publisher}.${pkg.name}`;
const vsix = path.join(work, `${pkg.name}-${pkg.version}.vsix`);

function step(label, cmd, cmdArgs, timeoutMs) {
  const r = spawnSync(cmd, cmdArgs, { stdio: ['ignore', 'pipe', 'pipe'], encoding: 'utf8', timeout: timeoutMs, killSignal: 'SIGKILL' });
  if (r.status !== 0) {
    process.stdout.write(r.stdout ?? '');
    process.stderr.write(r.stderr ?? '');
    fail(`${label} failed (${r.error?.message ?? `exit ${r.status ?? r.signal}`})`);
  }
  return r.stdout;
}

function fail(message, code = 1) {
  console.error(`vscode tests: ${message}`);
  console.log('0 passed, 1 failed, 0 skipped');
  process.exit(code);
}

try {
  if (!noBuild) step('node esbuild.mjs', process.execPath, ['esbuild.mjs'], 180_000);
  // The lead removed the placeholder repository on purpose; vsce would only warn. Without
  // a repository vsce cannot rewrite README's relative image links and stops; the test
  // VSIX never shows the README, so they stay relative.
  step('vsce package', process.execPath, [require.resolve('@vscode/vsce/vsce'), 'package', '--no-dependencies', '--allow-missing-repository', '--no-rewrite-relative-links', '--out', vsix], 180_000);
  console.log(`[${since()}] built ${path.relative(repoRoot, vsix)}`);

  const suiteSrc = 'test/vscode/suite';
  const suiteDir = path.join(work, 'suite');
  await build({
    entryPoints: readdirSync(suiteSrc).filter((f) => f.endsWith('.ts')).map((f) => path.join(suiteSrc, f)),
    outdir: suiteDir,
    outbase: suiteSrc,
    bundle: true,
    platform: 'node',
    target: 'node20',
    format: 'cjs',
    sourcemap: 'inline',
    // `vscode` is the extension host's; mocha resolves from the repo's node_modules,
    // which is above .cache/ and so on the suite's module path.
    // ssh2's optional native addons stay out, as in esbuild.mjs (it falls back to JavaScript).
    external: ['vscode', 'mocha', 'cpu-features', '*.node'],
    logLevel: 'warning',
  });

  const e2eFiles = existsSync('test/e2e')
    ? readdirSync('test/e2e').filter((f) => /\.(ts|mjs)$/.test(f) && !f.endsWith('.d.ts')).sort()
    : [];
  const entry = [
    `export { main } from './scripts/vscode/runner.ts';`,
    ...e2eFiles.map((f, i) => `import * as m${i} from './test/e2e/${f}';`),
    // A file may export `phase` (e.g. 'restricted': run only in the Restricted Mode phase),
    // `prepare(dirs)`, `userSettings` and `workspaceFile` for that phase (see UiModule in runner.ts).
    // `checks` is passed as exported: the runner fails the run for a file without them.
    `export const uiModules = [${e2eFiles.map((f, i) => `{ ...m${i}, file: 'test/e2e/${f}' }`).join(', ')}];`,
  ].join('\n');
  const runnerFile = path.join(work, 'runner.cjs');
  await build({
    stdin: { contents: entry, resolveDir: repoRoot, sourcefile: 'vscode-run-entry.ts', loader: 'ts' },
    outfile: runnerFile,
    bundle: true,
    platform: 'node',
    target: 'node20',
    format: 'cjs',
    sourcemap: 'inline',
    external: ['playwright-core', 'cpu-features', '*.node'],
    logLevel: 'warning',
  });
  // End esbuild's service process now, while this process can still reap it.
  await stopEsbuild();
  console.log(`[${since()}] bundled the suite and ${e2eFiles.length} UI check file(s)`);

  const runner = require(runnerFile);
  const totals = await runner.main({
    repoRoot,
    vsix,
    extensionId,
    suiteDir,
    fixtureDir: path.join(work, 'fixture-workspace'),
    uiModules: runner.uiModules,
    grep,
    only,
    keep,
    // Limits that catch a hang, not measures: a shared machine under load runs the host
    // suite (about 2 minutes when quiet) two or three times slower.
    phaseTimeoutMs: { install: 90_000, server: 60_000, host: 480_000, ui: 600_000, restricted: 240_000, multiroot: 240_000 },
    startedAt: t0,
  });
  removeWork();
  removeWork = () => {};
  console.log(`[${since()}] total`);
  mkdirSync(path.join(repoRoot, 'test-results'), { recursive: true });
  writeFileSync(path.join(repoRoot, 'test-results', 'summary-vscode.json'), JSON.stringify({ suite: 'real VS Code', ...totals }));
  console.log(`${totals.passed} passed, ${totals.failed} failed, ${totals.skipped} skipped`);
  process.exit(totals.failed === 0 && totals.passed > 0 ? 0 : 1);
} catch (e) {
  fail(e?.stack ?? String(e));
}

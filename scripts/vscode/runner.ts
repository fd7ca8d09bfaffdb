/**
 * One real-VS-Code test run, after scripts/vscode/run.mjs has built the VSIX and bundled
 * the suite: fresh folders, VSIX installed into code-server, the in-extension-host mocha
 * suite, then the Playwright UI checks, then each other phase's checks (Restricted Mode, a
 * multi-root workspace) in a code-server of its own, then everything started is stopped.
 */
import { copyFileSync, existsSync, mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import type { BrowserContext, Page } from 'playwright-core';
import { makeWorkspaceFixture } from './fixtures';
import {
  RESTRICTED_USER_SETTINGS,
  RESULTS_DIR,
  closeBrowser,
  disposeRunDirs,
  installExtension,
  launchBrowser,
  makeRunDirs,
  openWorkbench,
  runHostTests,
  screenshot,
  startCodeServer,
  writeUserSettings,
  type CodeServer,
  type RunDirs,
  type UiCheck,
  type WorkbenchTarget,
} from './harness';
import { SUITE_ENV } from './suiteResult';

/**
 * The checks exported by one test/e2e file. A file that exports `phase` (other than
 * 'main') runs only in that phase: a code-server of its own, on a fresh copy of the
 * fixture that the phase's modules' `prepare(dirs)` may change (and their `userSettings`
 * add to) before that server starts. In the 'restricted' phase workspace trust is on and
 * the workspace untrusted (Restricted Mode). A module's `workspaceFile` (relative to the
 * run's workspace folder, written by its `prepare`) makes the phase's workbench open that
 * `.code-workspace` file, e.g. a multi-root workspace, instead of the folder.
 */
export interface UiModule {
  file: string;
  checks: UiCheck[];
  phase?: string;
  prepare?: (dirs: RunDirs) => void | Promise<void>;
  userSettings?: Record<string, unknown>;
  workspaceFile?: string;
}

/** How a phase other than 'main' differs from it. */
interface PhaseKind {
  /** Shown in the run's output. */
  label: string;
  /** Workspace trust on (see startCodeServer), with these user settings. */
  trust: boolean;
  userSettings: Record<string, unknown>;
}

function phaseKind(phase: string): PhaseKind {
  if (phase === 'restricted') return { label: 'Restricted Mode', trust: true, userSettings: RESTRICTED_USER_SETTINGS };
  return { label: phase, trust: false, userSettings: {} };
}

/** What run.mjs hands the runner. */
export interface RunOptions {
  repoRoot: string;
  /** The packaged extension. */
  vsix: string;
  extensionId: string;
  /** Folder of the bundled mocha suite (index.js + *.test.js). */
  suiteDir: string;
  /** Where the workspace fixture is made (then copied per run). */
  fixtureDir: string;
  uiModules: UiModule[];
  /** Only tests/checks whose title matches. */
  grep?: string;
  only?: 'host' | 'ui';
  /** Keep the run's folders (printed) instead of removing them. */
  keep?: boolean;
  /** Per phase; a phase other than main, host and ui without its own entry gets `ui`'s. */
  phaseTimeoutMs: { install: number; server: number; host: number; ui: number; [phase: string]: number | undefined };
  /** When the whole run started (Date.now()), for the elapsed times printed. */
  startedAt?: number;
}

/** Counts of a whole run. */
export interface RunTotals {
  passed: number;
  failed: number;
  /** Tests that did not run to a verdict (mocha's pending tests in the host suite). */
  skipped: number;
}

class PhaseTimeout extends Error {}

/**
 * Workbench log lines that say nothing about the suite (connections, start-up timings,
 * chat and agent-host services): left out of the run's output, kept in
 * test-results/host-suite.log with everything else.
 */
const WORKBENCH_CHATTER = /^\[(info|warn|debug|trace)\] (\[[^\]]+\]|Creating a socket|Resolving connection token|Resolved connection token|Creation of workbench contribution|Updating additional builtin)/;

async function withTimeout<T>(label: string, ms: number, work: Promise<T>): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const limit = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new PhaseTimeout(`${label} did not finish within ${Math.round(ms / 1000)} s`)), ms);
  });
  try {
    return await Promise.race([work, limit]);
  } finally {
    clearTimeout(timer);
  }
}

function slug(s: string): string {
  return s.toLowerCase().replace(/[^a-z0-9]+/g, '-').replace(/^-|-$/g, '').slice(0, 60);
}

/** Runs `chosen` in order in `page`, adding each outcome to `totals`; never throws. */
async function runChecks(
  page: Page | undefined,
  server: CodeServer,
  dirs: RunDirs,
  chosen: { file: string; check: UiCheck }[],
  uiDeadline: number,
  totals: RunTotals,
  repoRoot: string,
): Promise<void> {
  for (const { file, check } of chosen) {
    const p = page!;
    const left = uiDeadline - Date.now();
    if (left <= 0) {
      totals.failed += 1;
      console.log(`  FAIL ${check.name} (${file}): the UI phase ran out of time`);
      continue;
    }
    const started = Date.now();
    try {
      p.setDefaultTimeout(Math.min(check.timeoutMs ?? 60_000, left));
      await withTimeout(
        check.name,
        Math.min(check.timeoutMs ?? 60_000, left),
        check.run({
          page: p,
          server,
          dirs,
          screenshot: (name, target) => screenshot(p, name, target),
          log: (line) => console.log(`    ${line}`),
        }),
      );
      totals.passed += 1;
      console.log(`  ok   ${check.name} (${((Date.now() - started) / 1000).toFixed(1)} s)`);
    } catch (e) {
      totals.failed += 1;
      console.log(`  FAIL ${check.name} (${file}): ${(e as Error).message.split('\n').slice(0, 6).join('\n       ')}`);
      const shot = await screenshot(p, `fail-${slug(check.name)}`).catch(() => undefined);
      if (shot) console.log(`       screenshot: ${path.relative(repoRoot, shot)}`);
      // A check that left a picker or dialog open must not break the next one.
      await p.keyboard.press('Escape').catch(() => undefined);
    }
  }
}

/**
 * A phase other than 'main' (see UiModule): a fresh copy of the fixture (changed by each
 * chosen module's `prepare`), the VSIX installed, a code-server of its own (workspace
 * trust on for 'restricted'), the workbench opened on the folder or on a module's
 * `workspaceFile`, and the checks in one page. Uses `context` when the main phase launched
 * Chromium, else launches its own. Adds outcomes to `totals`; throws only when the phase
 * could not start (the caller counts its checks as failed).
 */
async function runPhase(
  o: RunOptions,
  phase: string,
  context: BrowserContext | undefined,
  chosen: { file: string; check: UiCheck }[],
  totals: RunTotals,
  since: () => string,
): Promise<void> {
  const kind = phaseKind(phase);
  const dirs = makeRunDirs(o.fixtureDir, `lifeboat-vscode-${phase}-`);
  cleanups.push(async () => {
    if (existsSync(dirs.serverLog)) {
      mkdirSync(RESULTS_DIR, { recursive: true });
      copyFileSync(dirs.serverLog, path.join(RESULTS_DIR, `code-server-${phase}.log`));
    }
    if (o.keep) console.log(`${kind.label} run folders kept: ${dirs.root}`);
    else disposeRunDirs(dirs);
  });
  const modules = o.uiModules.filter((m) => m.phase === phase && chosen.some((c) => c.file === m.file));
  let extra: Record<string, unknown> = { ...kind.userSettings };
  let workspaceFile: string | undefined;
  for (const m of modules) {
    await m.prepare?.(dirs);
    extra = { ...extra, ...m.userSettings };
    if (m.workspaceFile) {
      if (workspaceFile && workspaceFile !== m.workspaceFile) throw new Error(`phase ${phase}: ${m.file} opens ${m.workspaceFile}, another file ${workspaceFile}`);
      workspaceFile = m.workspaceFile;
    }
  }
  writeUserSettings(dirs, extra);
  await withTimeout(`installing the VSIX (${kind.label})`, o.phaseTimeoutMs.install, installExtension(dirs, o.vsix, o.extensionId));
  const limit = o.phaseTimeoutMs.server;
  const server = await withTimeout(`starting code-server (${kind.label})`, limit, startCodeServer(dirs, { timeoutMs: limit, trust: kind.trust }));
  cleanups.push(() => server.stop());
  console.log(`[${since()}] code-server pid ${server.pid}${kind.trust ? ' (workspace trust on)' : ''} healthy on ${server.origin}`);
  if (!context) {
    const ctx = await launchBrowser(dirs);
    cleanups.push(() => closeBrowser(ctx));
    context = ctx;
  }
  const page = await context.newPage();
  const target: WorkbenchTarget = workspaceFile ? { workspaceFile: path.join(dirs.workspace, workspaceFile) } : dirs.workspace;
  try {
    await withTimeout(`opening the workbench (${kind.label})`, o.phaseTimeoutMs.ui, openWorkbench(page, server, target));
  } catch (e) {
    await screenshot(page, `fail-workbench-${phase}`).catch(() => undefined);
    throw e;
  }
  await runChecks(page, server, dirs, chosen, Date.now() + (o.phaseTimeoutMs[phase] ?? o.phaseTimeoutMs.ui), totals, o.repoRoot);
  await page.close().catch(() => undefined);
}

const cleanups: (() => Promise<void>)[] = [];
let cleaning: Promise<void> | undefined;

/** Runs every registered cleanup once, newest first. Safe to call from a signal handler. */
function cleanupAll(): Promise<void> {
  cleaning ??= (async () => {
    while (cleanups.length) await cleanups.pop()!().catch(() => undefined);
  })();
  return cleaning;
}

for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
  process.once(sig, () => {
    console.error(`\nvscode tests: ${sig}, stopping code-server and Chromium`);
    void cleanupAll().then(() => process.exit(130));
  });
}

/**
 * Runs the in-host suite and the UI checks against the VSIX. Resolves with the totals
 * (every failure, including a phase that times out or a server that will not start,
 * counts as at least one failed test); always stops what it started.
 */
export async function main(o: RunOptions): Promise<RunTotals> {
  const totals: RunTotals = { passed: 0, failed: 0, skipped: 0 };
  const t0 = o.startedAt ?? Date.now();
  const since = (): string => `${((Date.now() - t0) / 1000).toFixed(1)} s`;
  const grep = o.grep ? new RegExp(o.grep) : undefined;
  const pick = (phase: string): { file: string; check: UiCheck }[] =>
    o.uiModules
      .filter((m) => (m.phase ?? 'main') === phase)
      .flatMap((m) => (Array.isArray(m.checks) ? m.checks : []).map((c) => ({ file: m.file, check: c })))
      .filter(({ check }) => !grep || grep.test(check.name));
  const mainChosen = o.only === 'host' ? [] : pick('main');
  // The other phases in the order their files come (run.mjs sorts them by name).
  const phases = [...new Set(o.uiModules.map((m) => m.phase ?? 'main'))]
    .filter((p) => p !== 'main')
    .map((p) => ({ phase: p, chosen: o.only === 'host' ? [] : pick(p) }))
    .filter((p) => p.chosen.length > 0);
  // Only UI checks of other phases asked for: the main server is not needed.
  const runMain = !(o.only === 'ui' && mainChosen.length === 0 && phases.length > 0);
  let dirs: RunDirs | undefined;
  let context: BrowserContext | undefined;
  // A check file that exports no checks (a typo in `checks`, a default export) would
  // otherwise add nothing to the run and pass unseen.
  for (const m of o.uiModules) {
    if (!Array.isArray(m.checks) || m.checks.length === 0) {
      totals.failed += 1;
      console.log(`  FAIL ${m.file}: exports no \`checks\` (a non-empty UiCheck[] is required of every file in test/e2e)`);
    }
  }
  try {
    makeWorkspaceFixture(o.fixtureDir);
    if (runMain) {
      dirs = makeRunDirs(o.fixtureDir);
      const runDirs = dirs;
      cleanups.push(async () => {
        if (existsSync(runDirs.serverLog)) {
          mkdirSync(RESULTS_DIR, { recursive: true });
          copyFileSync(runDirs.serverLog, path.join(RESULTS_DIR, 'code-server.log'));
        }
        if (o.keep) console.log(`run folders kept: ${runDirs.root}`);
        else disposeRunDirs(runDirs);
      });
      writeUserSettings(dirs);
      await withTimeout('installing the VSIX', o.phaseTimeoutMs.install, installExtension(dirs, o.vsix, o.extensionId));
      console.log(`[${since()}] installed ${path.basename(o.vsix)} into code-server`);

      // Two code-servers in turn on the same folders: the in-host suite needs VS Code's
      // smoke-test driver (see startCodeServer), which also turns off notification toasts,
      // dialogs and modal editors, so the UI checks get a server without it.
      const startMain = async (extensionTests: boolean): Promise<CodeServer> => {
        const srv = await withTimeout(
          'starting code-server',
          o.phaseTimeoutMs.server,
          startCodeServer(runDirs, {
            timeoutMs: o.phaseTimeoutMs.server,
            extensionTests,
            env: { [SUITE_ENV.workspace]: runDirs.workspace, ...(o.grep ? { [SUITE_ENV.grep]: o.grep } : {}) },
          }),
        );
        cleanups.push(() => srv.stop());
        console.log(`[${since()}] code-server pid ${srv.pid}${extensionTests ? ' (for the in-host suite)' : ''} healthy on ${srv.origin}`);
        return srv;
      };

      context = await launchBrowser(dirs);
      const ctx = context;
      cleanups.push(() => closeBrowser(ctx));

      if (o.only !== 'ui') {
        const hostServer = await startMain(true);
        console.log(`[${since()}] in-extension-host suite`);
        try {
          const host = await withTimeout(
            'the in-extension-host suite',
            o.phaseTimeoutMs.host + 5_000,
            runHostTests(context, hostServer, {
              folder: dirs.workspace,
              extensionDevelopmentPath: o.repoRoot,
              extensionTestsPath: o.suiteDir,
              timeoutMs: o.phaseTimeoutMs.host,
              echo: (line) => {
                if (!WORKBENCH_CHATTER.test(line)) console.log(`  host | ${line}`);
              },
            }),
          );
          mkdirSync(RESULTS_DIR, { recursive: true });
          writeFileSync(path.join(RESULTS_DIR, 'host-suite.log'), host.log.join('\n') + '\n');
          totals.passed += host.passed;
          totals.failed += host.failed;
          totals.skipped += host.skipped;
          if (host.exitCode === undefined) console.log('  host suite: no exit code from the workbench (timed out)');
          for (const f of host.failures) console.log(`  FAIL host: ${f}`);
          console.log(`[${since()}] host suite: ${host.passed} passed, ${host.failed} failed, ${host.skipped} skipped (exit ${host.exitCode})`);
        } catch (e) {
          totals.failed += 1;
          console.log(`  FAIL host suite: ${(e as Error).message}`);
        }
        // Its extension host's deactivate (the shutdown backup) ends with the server.
        await hostServer.stop();
      }

      if (o.only !== 'host') {
        const chosen = mainChosen;
        const server = await startMain(false);
        console.log(`[${since()}] UI checks (${chosen.length})`);
        let page: Page | undefined;
        try {
          page = await context.newPage();
          await withTimeout('opening the workbench', o.phaseTimeoutMs.ui, openWorkbench(page, server, dirs.workspace));
          console.log(`[${since()}] workbench ready`);
        } catch (e) {
          totals.failed += chosen.length || 1;
          console.log(`  FAIL workbench did not open: ${(e as Error).message}`);
          if (page) await screenshot(page, 'fail-workbench').catch(() => undefined);
          chosen.length = 0;
        }
        await runChecks(page, server, dirs, chosen, Date.now() + o.phaseTimeoutMs.ui, totals, o.repoRoot);
        console.log(`[${since()}] UI checks done`);
      }
    }

    for (const { phase, chosen } of phases) {
      const { label } = phaseKind(phase);
      console.log(`[${since()}] ${label} phase: UI checks (${chosen.length})`);
      try {
        await runPhase(o, phase, context, chosen, totals, since);
      } catch (e) {
        totals.failed += chosen.length;
        console.log(`  FAIL ${label} phase: ${(e as Error).message}`);
      }
      console.log(`[${since()}] ${label} phase done`);
    }
  } catch (e) {
    totals.failed += 1;
    console.log(`FAIL ${(e as Error).message}`);
    if (dirs && existsSync(dirs.serverLog)) console.log(`(code-server log: test-results/code-server.log)`);
  } finally {
    await cleanupAll();
  }
  console.log(`[${since()}] run finished`);
  return totals;
}

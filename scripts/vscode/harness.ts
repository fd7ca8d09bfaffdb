/**
 * Helpers to run Lifeboat inside a real VS Code: code-server 4.139.1 (VS Code 1.139 from
 * npm, run on Node 24 from .cache/node24) on loopback, its workbench opened in Debian's
 * Chromium through playwright-core.
 * See ../shared/docs/real-vscode-tests.md (beside the repository) for the recipe these follow.
 *
 * A UI check is a small file under test/e2e/ exporting `checks: UiCheck[]`; the runner
 * (scripts/vscode/run.mjs) gives each one a page with the workbench open.
 */
import { spawn, execFile, type ChildProcess } from 'node:child_process';
import { cpSync, mkdirSync, mkdtempSync, openSync, closeSync, readdirSync, readFileSync, rmSync, writeFileSync, existsSync } from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { format } from 'node:util';
import { chromium, type BrowserContext, type Locator, type Page } from 'playwright-core';
import { SUITE_RESULT_MARK, type SuiteResult } from './suiteResult';

/** The repository root (this file lives in scripts/vscode/ or is bundled under .cache/). */
export const REPO_ROOT = findRepoRoot();
/** Node 24 as installed by scripts/vscode/setup.sh (npm package node@24); code-server 4.139 needs it. */
export const NODE24 = path.join(REPO_ROOT, '.cache/node24/node_modules/.bin/node');
/**
 * code-server's entry script as installed by scripts/vscode/setup.sh. It is always run as
 * `NODE24 CODE_SERVER_ENTRY ...`: its bin link's `#!/usr/bin/env node` would take whatever
 * `node` comes first on PATH (Node 20 here), and code-server, its extension host and its
 * native modules are built for Node 24.
 */
export const CODE_SERVER_ENTRY = path.join(REPO_ROOT, '.cache/code-server/node_modules/code-server/out/node/entry.js');
/** Debian's Chromium. */
export const CHROMIUM = '/usr/bin/chromium';
/** Where screenshots go. */
export const RESULTS_DIR = path.join(REPO_ROOT, 'test-results');

function findRepoRoot(): string {
  // Bundled, this module runs from .cache/vscode-run/; either way the root is the first
  // folder above that holds both package.json and scripts/vscode.
  let dir = typeof __dirname === 'string' ? __dirname : process.cwd();
  for (;;) {
    if (existsSync(path.join(dir, 'package.json')) && existsSync(path.join(dir, 'scripts/vscode'))) return dir;
    const up = path.dirname(dir);
    if (up === dir) return process.cwd();
    dir = up;
  }
}

/** The folders of one run; every program the run starts writes only below `root`. */
export interface RunDirs {
  root: string;
  userData: string;
  extensions: string;
  workspace: string;
  chromiumProfile: string;
  home: string;
  tmp: string;
  /** code-server's config.yaml. */
  config: string;
  /** code-server's stdout and stderr. */
  serverLog: string;
}

/**
 * Makes a fresh set of run folders in a new temporary folder and copies `fixture` (a
 * folder) into the run's workspace. Returns the paths; `disposeRunDirs` removes them.
 * Throws when the fixture is missing.
 */
export function makeRunDirs(fixture: string, prefix = 'lifeboat-vscode-'): RunDirs {
  if (!existsSync(fixture)) throw new Error(`workspace fixture not found: ${fixture}`);
  const root = mkdtempSync(path.join(os.tmpdir(), prefix));
  const d = (name: string): string => {
    const p = path.join(root, name);
    mkdirSync(p, { recursive: true });
    return p;
  };
  const dirs: RunDirs = {
    root,
    userData: d('user-data'),
    extensions: d('extensions'),
    workspace: path.join(root, 'workspace'),
    chromiumProfile: d('chromium-profile'),
    home: d('home'),
    tmp: d('tmp'),
    config: path.join(root, 'code-server.yaml'),
    serverLog: path.join(root, 'code-server.log'),
  };
  cpSync(fixture, dirs.workspace, { recursive: true });
  for (const x of ['config', 'data', 'cache']) mkdirSync(path.join(dirs.home, `.${x}`), { recursive: true });
  return dirs;
}

/** Removes a run's folders. Safe to repeat. */
export function disposeRunDirs(dirs: RunDirs): void {
  rmSync(dirs.root, { recursive: true, force: true });
}

/**
 * The environment for code-server and Chromium in a run: HOME, XDG_* and TMPDIR inside
 * the run folder so neither writes under the real home or the shared /tmp, and the
 * extension gallery pointed at a closed loopback port so nothing leaves the machine.
 */
export function runEnv(dirs: RunDirs, extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  return {
    // Node 24 first: anything code-server or a task starts as `node` gets the same runtime.
    PATH: `${path.dirname(NODE24)}:${process.env.PATH ?? '/usr/bin:/bin'}`,
    LANG: 'C.UTF-8',
    HOME: dirs.home,
    XDG_CONFIG_HOME: path.join(dirs.home, '.config'),
    XDG_DATA_HOME: path.join(dirs.home, '.data'),
    XDG_CACHE_HOME: path.join(dirs.home, '.cache'),
    XDG_RUNTIME_DIR: dirs.tmp,
    TMPDIR: dirs.tmp,
    EXTENSIONS_GALLERY: JSON.stringify({
      serviceUrl: 'http://127.0.0.1:9/gallery',
      itemUrl: 'http://127.0.0.1:9/item',
      resourceUrlTemplate: 'http://127.0.0.1:9/resource',
    }),
    ...extra,
  };
}

/** Settings every run starts with: quiet, offline, and a terminal readable from the DOM. */
export const BASE_USER_SETTINGS: Record<string, unknown> = {
  'workbench.startupEditor': 'none',
  'workbench.tips.enabled': false,
  'workbench.enableExperiments': false,
  'telemetry.telemetryLevel': 'off',
  'update.mode': 'none',
  'extensions.autoCheckUpdates': false,
  'extensions.autoUpdate': false,
  'extensions.ignoreRecommendations': true,
  'terminal.integrated.gpuAcceleration': 'off',
  'security.workspace.trust.enabled': false,
  'npm.fetchOnlinePackageInfo': false,
  'typescript.disableAutomaticTypeAcquisition': true,
  'git.enabled': false,
  // VS Code 1.13x opens a Chat view in the secondary side bar on first start and focuses its
  // input; these checks are about Lifeboat, so the AI features and that bar stay off.
  'chat.disableAIFeatures': true,
  'workbench.secondarySideBar.defaultVisibility': 'hidden',
};

/**
 * Settings of a Restricted Mode run (with `startCodeServer(dirs, { trust: true })`): trust
 * enabled and no startup dialog, so a folder not in the trusted list stays untrusted.
 */
export const RESTRICTED_USER_SETTINGS: Record<string, unknown> = {
  'security.workspace.trust.enabled': true,
  'security.workspace.trust.startupPrompt': 'never',
  'security.workspace.trust.untrustedFiles': 'open',
};

/** Writes the user settings.json of a run (BASE_USER_SETTINGS plus `extra`). Safe to repeat. */
export function writeUserSettings(dirs: RunDirs, extra: Record<string, unknown> = {}): void {
  const user = path.join(dirs.userData, 'User');
  mkdirSync(user, { recursive: true });
  writeFileSync(path.join(user, 'settings.json'), JSON.stringify({ ...BASE_USER_SETTINGS, ...extra }, null, 2));
}

/** A free TCP port on 127.0.0.1 (asked of the kernel; only loopback is ever used). */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const addr = srv.address();
      const port = typeof addr === 'object' && addr ? addr.port : 0;
      srv.close(() => (port ? resolve(port) : reject(new Error('no free port on 127.0.0.1'))));
    });
  });
}

function writeServerConfig(dirs: RunDirs, port: number): void {
  writeFileSync(dirs.config, `bind-addr: 127.0.0.1:${port}\nauth: none\ncert: false\n`);
}

/**
 * Installs a .vsix into the run's extensions folder with `code-server --install-extension`.
 * Resolves with code-server's output; rejects (naming the file) when it exits non-zero or
 * the extension folder did not appear.
 */
export function installExtension(dirs: RunDirs, vsix: string, extensionId: string, timeoutMs = 90_000): Promise<string> {
  if (!existsSync(dirs.config)) writeServerConfig(dirs, 0);
  const args = ['--config', dirs.config, '--user-data-dir', dirs.userData, '--extensions-dir', dirs.extensions, '--install-extension', vsix];
  return new Promise((resolve, reject) => {
    execFile(NODE24, [CODE_SERVER_ENTRY, ...args], { env: runEnv(dirs), timeout: timeoutMs, killSignal: 'SIGKILL' }, (err, stdout, stderr) => {
      const out = `${stdout}${stderr}`;
      if (err) return reject(new Error(`code-server --install-extension ${vsix} failed: ${err.message}\n${out}`));
      const installed = readdirSync(dirs.extensions).some((n) => n.toLowerCase().startsWith(`${extensionId.toLowerCase()}-`));
      if (!installed) return reject(new Error(`${extensionId} not found in ${dirs.extensions} after installing ${vsix}\n${out}`));
      resolve(out);
    });
  });
}

/** A running code-server; `stop()` ends its whole process group. */
export interface CodeServer {
  port: number;
  pid: number;
  /** http://127.0.0.1:PORT */
  origin: string;
  /** The remote authority the workbench uses for vscode-remote:// URIs. */
  authority: string;
  process: ChildProcess;
  /** Ends the process group (SIGTERM, then SIGKILL). Safe to repeat; never throws. */
  stop(): Promise<void>;
}

/**
 * Starts code-server detached (its own process group) on 127.0.0.1 with a free port
 * (`--disable-workspace-trust` unless `trust`), and
 * resolves once GET /healthz answers 200. Rejects, after stopping what it started, when the
 * server exits first or is not healthy within `timeoutMs`. With `extensionTests`, the
 * workbench honours a URL `payload` (see runHostTests): since VS Code 1.10x a built
 * workbench reads `extensionDevelopmentPath`/`extensionTestsPath` from it only when the
 * server was started with VS Code's `enable-smoke-test-driver` (passed through code-server's
 * `--vscode-option`).
 */
export async function startCodeServer(
  dirs: RunDirs,
  opts: { env?: Record<string, string>; timeoutMs?: number; trust?: boolean; extensionTests?: boolean } = {},
): Promise<CodeServer> {
  const port = await freePort();
  writeServerConfig(dirs, port);
  const log = openSync(dirs.serverLog, 'a');
  const args = [
    '--config', dirs.config,
    '--bind-addr', `127.0.0.1:${port}`,
    '--auth', 'none',
    '--user-data-dir', dirs.userData,
    '--extensions-dir', dirs.extensions,
    '--disable-telemetry',
    '--disable-update-check',
    // With `trust`, workspace trust stays on (see RESTRICTED_USER_SETTINGS) and the
    // workspace, which nobody has trusted, opens in Restricted Mode.
    ...(opts.trust ? [] : ['--disable-workspace-trust']),
    '--disable-getting-started-override',
    ...(opts.extensionTests ? ['--vscode-option', 'enable-smoke-test-driver'] : []),
    dirs.workspace,
  ];
  const child = spawn(NODE24, [CODE_SERVER_ENTRY, ...args], {
    detached: true,
    stdio: ['ignore', log, log],
    env: runEnv(dirs, opts.env),
    cwd: dirs.workspace,
  });
  closeSync(log);
  const pid = child.pid;
  if (pid === undefined) throw new Error(`code-server did not start (${NODE24} ${CODE_SERVER_ENTRY})`);
  liveServers.add(pid);
  let exited = child.exitCode !== null;
  const exitedP = new Promise<void>((resolve) => child.once('exit', () => ((exited = true), resolve())));
  const stop = async (): Promise<void> => {
    if (!exited) {
      // A file watcher child outlives a plain SIGTERM of the parent; signal the group.
      killGroup(pid, 'SIGTERM');
      await Promise.race([exitedP, delay(5000)]);
      killGroup(pid, 'SIGKILL');
    } else {
      killGroup(pid, 'SIGKILL');
    }
    liveServers.delete(pid);
  };
  const server: CodeServer = {
    port,
    pid,
    origin: `http://127.0.0.1:${port}`,
    authority: `127.0.0.1:${port}`,
    process: child,
    stop,
  };
  const deadline = Date.now() + (opts.timeoutMs ?? 30_000);
  while (!(await healthy(port))) {
    if (exited || Date.now() > deadline) {
      await stop();
      throw new Error(`code-server on 127.0.0.1:${port} ${exited ? 'exited' : 'was not healthy'} (log: ${dirs.serverLog})`);
    }
    await delay(200);
  }
  return server;
}

/** Process groups of the code-servers this process started and has not seen exit. */
const liveServers = new Set<number>();
// A server whose start finished while the run was being stopped (Ctrl-C) must not outlive it.
process.on('exit', () => {
  for (const pid of liveServers) killGroup(pid, 'SIGKILL');
});

function killGroup(pid: number, signal: NodeJS.Signals): void {
  try {
    process.kill(-pid, signal);
  } catch {
    // Already gone: nothing left in the group.
  }
}

function healthy(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const req = http.get({ host: '127.0.0.1', port, path: '/healthz', timeout: 2000 }, (res) => {
      res.resume();
      resolve(res.statusCode === 200);
    });
    req.on('error', () => resolve(false));
    req.on('timeout', () => (req.destroy(), resolve(false)));
  });
}

/** Waits `ms` (used only for polling and grace periods, never as a test's assertion). */
export function delay(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

/**
 * Launches Debian's Chromium headless with the run's own profile and environment.
 * The caller closes the returned context (which ends Chromium).
 */
export async function launchBrowser(dirs: RunDirs): Promise<BrowserContext> {
  return chromium.launchPersistentContext(dirs.chromiumProfile, {
    executablePath: CHROMIUM,
    headless: true,
    env: runEnv(dirs),
    viewport: { width: 1400, height: 900 },
    args: [
      '--headless',
      '--no-sandbox',
      '--disable-gpu',
      '--disable-quic',
      '--no-first-run',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
      '--disable-dev-shm-usage',
    ],
  });
}

/** Closes Chromium; never throws, and gives up after `timeoutMs`. */
export async function closeBrowser(context: BrowserContext, timeoutMs = 10_000): Promise<void> {
  await Promise.race([context.close().catch(() => undefined), delay(timeoutMs)]);
}

/**
 * What the workbench opens: a folder (its absolute path), or a `.code-workspace` file
 * (`{ workspaceFile }`, an absolute path), which opens as a (multi-root) workspace.
 */
export type WorkbenchTarget = string | { workspaceFile: string };

/**
 * The workbench URL for `target`, with an optional `payload` (extension development/tests).
 * code-server takes a folder as `?folder=` and a `.code-workspace` file as `?workspace=`.
 */
export function workbenchUrl(server: CodeServer, target: WorkbenchTarget, payload?: [string, string][]): string {
  let url = typeof target === 'string'
    ? `${server.origin}/?folder=${encodeURIComponent(target)}`
    : `${server.origin}/?workspace=${encodeURIComponent(target.workspaceFile)}`;
  if (payload) url += `&payload=${encodeURIComponent(JSON.stringify(payload))}`;
  return url;
}

/** A `vscode-remote://` URI for a path on the server's machine. */
export function remoteUri(server: CodeServer, absPath: string): string {
  return `vscode-remote://${server.authority}${absPath}`;
}

/**
 * Opens the workbench on `target` (a folder, or a `.code-workspace` file) in `page` and
 * resolves once `.monaco-workbench` exists. Throws on timeout.
 */
export async function openWorkbench(page: Page, server: CodeServer, target: WorkbenchTarget, timeoutMs = 60_000): Promise<void> {
  await page.goto(workbenchUrl(server, target), { timeout: timeoutMs });
  await page.locator('.monaco-workbench').waitFor({ state: 'attached', timeout: timeoutMs });
}

/** The outcome of the extension's mocha suite run inside the extension host. */
export interface HostTestResult {
  /** The code the workbench reported through codeAutomationExit, or undefined on timeout. */
  exitCode: number | undefined;
  passed: number;
  failed: number;
  /** Pending tests (skipped); 0 when the suite did not say. */
  skipped: number;
  failures: string[];
  /** Every line the workbench sent to codeAutomationLog, and the page's console. */
  log: string[];
}


/**
 * Runs the compiled mocha suite at `extensionTestsPath` (a folder whose index.js exports
 * `run()`) inside code-server's extension host, with the extension loaded from
 * `extensionDevelopmentPath`, and resolves when the workbench reports the exit code or
 * after `timeoutMs`. Never throws for a failing suite; the counts say what happened
 * (a suite that never reported counts as failed).
 */
export async function runHostTests(
  context: BrowserContext,
  server: CodeServer,
  opts: { folder: string; extensionDevelopmentPath: string; extensionTestsPath: string; timeoutMs?: number; echo?: (line: string) => void },
): Promise<HostTestResult> {
  const page = await context.newPage();
  const log: string[] = [];
  let result: SuiteResult | undefined;
  const take = (line: string): void => {
    log.push(line);
    opts.echo?.(line);
    const at = line.indexOf(SUITE_RESULT_MARK);
    if (at >= 0) {
      try {
        result = JSON.parse(line.slice(at + SUITE_RESULT_MARK.length)) as SuiteResult;
      } catch {
        // A truncated mark leaves the result unknown; the exit code still decides.
      }
    }
  };
  let onExit!: (code: number) => void;
  const exited = new Promise<number>((resolve) => (onExit = resolve));
  await page.exposeFunction('codeAutomationLog', (type: unknown, args: unknown) => {
    // The workbench forwards console calls as (level, [format, ...values]).
    const text = Array.isArray(args) ? format(...(args as unknown[])) : String(args);
    for (const line of text.split('\n')) take(`[${String(type)}] ${line}`);
  });
  await page.exposeFunction('codeAutomationExit', (code: number) => onExit(Number(code)));
  try {
    const payload: [string, string][] = [
      ['extensionDevelopmentPath', remoteUri(server, opts.extensionDevelopmentPath)],
      ['extensionTestsPath', remoteUri(server, opts.extensionTestsPath)],
    ];
    await page.goto(workbenchUrl(server, opts.folder, payload), { timeout: opts.timeoutMs ?? 120_000 });
    const exitCode = await Promise.race([exited, delay(opts.timeoutMs ?? 120_000).then(() => undefined)]);
    const counts: SuiteResult = result ?? { passed: 0, failed: 1, failures: ['the suite reported no result'] };
    // An exit code that disagrees with the counts (e.g. run() threw before mocha) is a failure.
    const failed = exitCode === 0 ? counts.failed : Math.max(1, counts.failed);
    return { exitCode, passed: counts.passed, failed, skipped: counts.skipped ?? 0, failures: counts.failures, log };
  } finally {
    await page.close().catch(() => undefined);
  }
}

function escapeRegExp(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

/** The quick input (command palette) widget. */
export function quickInput(page: Page): Locator {
  return page.locator('.quick-input-widget');
}

/**
 * Opens the command palette with F1 and types `>` + `text`. Resolves when the input shows it.
 * Throws on timeout.
 */
export async function openPalette(page: Page, text: string, timeoutMs = 15_000): Promise<Locator> {
  await page.keyboard.press('F1');
  const input = page.locator('.quick-input-widget input.input');
  await input.waitFor({ state: 'visible', timeout: timeoutMs });
  await input.fill(`>${text}`);
  return input;
}

/** The palette row whose label is exactly `title` (e.g. "Lifeboat: Back Up Now"). */
export function paletteRow(page: Page, title: string): Locator {
  return page
    .locator('.quick-input-list .monaco-list-row')
    .filter({ has: page.locator('.label-name', { hasText: new RegExp(`^\\s*${escapeRegExp(title)}\\s*$`) }) })
    .first();
}

/** The labels of the palette's visible rows, in order. */
export async function paletteLabels(page: Page): Promise<string[]> {
  return page
    .locator('.quick-input-list .monaco-list-row .label-name')
    .evaluateAll((els) => els.map((e) => (e.textContent ?? '').trim()));
}

/**
 * Runs a command from the palette by its exact title ("Category: Title"). Clicks the exact
 * row, since Enter runs the focused row, which is not always the exact match. Resolves once
 * the palette has closed; throws when no row has that title.
 */
export async function runCommand(page: Page, title: string, timeoutMs = 15_000): Promise<void> {
  await openPaletteAt(page, title, timeoutMs);
  await paletteRow(page, title).click();
  await quickInput(page).waitFor({ state: 'hidden', timeout: timeoutMs });
}

/**
 * Opens the palette on `>` + `title` and resolves once the row titled exactly `title` is
 * visible (then it is left open). VS Code 1.139's palette leaves out a command whose
 * enablement is false (e.g. `isWorkspaceTrusted` for Back Up Now) and was seen not to add
 * it to a palette already open when it becomes true; so while the row is missing it closes
 * the palette and opens it again. Throws, naming what it saw, after `timeoutMs`.
 */
export async function openPaletteAt(page: Page, title: string, timeoutMs = 15_000): Promise<void> {
  const end = Date.now() + timeoutMs;
  const row = paletteRow(page, title);
  for (;;) {
    await openPalette(page, title, Math.max(1_000, end - Date.now()));
    try {
      await row.waitFor({ state: 'visible', timeout: Math.max(500, Math.min(3_000, end - Date.now())) });
      return;
    } catch {
      const seen = await paletteLabels(page).catch(() => []);
      await page.keyboard.press('Escape');
      await quickInput(page).waitFor({ state: 'hidden', timeout: 5_000 }).catch(() => undefined);
      if (Date.now() > end) throw new Error(`no command titled "${title}" in the palette (saw: ${seen.slice(0, 8).join(' | ') || 'nothing'})`);
    }
  }
}

/** One row of a tree view as a person sees it. */
export interface TreeRow {
  label: string;
  description: string;
  /** 1 for top-level rows. */
  level: number;
  expanded: boolean | undefined;
  ariaLabel: string;
  /** The row's place on screen (its `data-index`), which is not its place in the DOM. */
  index: number;
}

/** The tree view list named `viewName` (the view's title, e.g. "Backups"). */
export function treeList(page: Page, viewName: string): Locator {
  return page.locator(`.pane-body .monaco-list[aria-label="${viewName.replace(/"/g, '\\"')}"]`);
}

/**
 * Reads the rendered rows of a tree view (only rows the list has rendered: scroll or
 * enlarge the view for long trees). Empty when the view is not open.
 */
export async function readTreeRows(page: Page, viewName: string): Promise<TreeRow[]> {
  // The list renders rows in whatever DOM order it inserted them (a row added by a later
  // refresh can come first in the DOM); `data-index` is each row's place on screen.
  return treeList(page, viewName)
    .locator('.monaco-list-row')
    .evaluateAll((rows) =>
      rows
        .map((r, i) => ({ r, at: Number(r.getAttribute('data-index') ?? i) }))
        .sort((a, b) => a.at - b.at)
        .map(({ r, at }) => {
          const text = (sel: string): string => (r.querySelector(sel)?.textContent ?? '').trim();
          const exp = r.getAttribute('aria-expanded');
          return {
            label: text('.label-name'),
            description: text('.label-description'),
            level: Number(r.getAttribute('aria-level') ?? '1'),
            expanded: exp === null ? undefined : exp === 'true',
            ariaLabel: r.getAttribute('aria-label') ?? '',
            index: at,
          };
        }),
    );
}

/**
 * The rendered row `row` of a tree view, found by its place on screen: `nth` on the rows
 * would count in DOM order, which a refresh can make differ from it.
 */
export function treeRowLocator(page: Page, viewName: string, row: TreeRow): Locator {
  return treeList(page, viewName).locator(`.monaco-list-row[data-index="${row.index}"]`);
}

/**
 * Shows the view container whose activity-bar entry's label starts with `title` (e.g.
 * "Lifeboat", "Explorer") and resolves once that entry is the checked one and the side bar
 * is visible. Clicks the entry only while it is not checked (a click on the checked one
 * would hide the side bar), and reads that state again after each click, since during a
 * window's restore it can change under it. Safe to repeat. Throws on timeout.
 */
export async function openViewContainer(page: Page, title: string, timeoutMs = 15_000): Promise<void> {
  const label = title.replace(/"/g, '\\"');
  const item = page.locator(`.activitybar .action-item a[aria-label^="${label}"]`).first();
  const sidebar = page.locator('.part.sidebar');
  await item.waitFor({ state: 'visible', timeout: timeoutMs });
  const shown = async (): Promise<boolean> => {
    const parent = item.locator('xpath=..');
    const checked =
      (await parent.getAttribute('aria-checked')) === 'true' ||
      (await item.getAttribute('aria-checked')) === 'true' ||
      ((await parent.getAttribute('class')) ?? '').split(/\s+/).includes('checked');
    return checked && (await sidebar.isVisible());
  };
  await until(
    page,
    async () => {
      if (await shown()) return true;
      await item.click();
      return shown();
    },
    (ok) => ok,
    `the ${title} view container does not show`,
    timeoutMs,
    500,
  );
}

/** One status bar entry as a person sees it (an extension's entry has an id from its extension id). */
export interface StatusBarItem {
  id: string;
  text: string;
  ariaLabel: string;
  /** 'left' or 'right'. */
  side: string;
}

/** The status bar's visible entries, left side first. */
export async function readStatusBar(page: Page): Promise<StatusBarItem[]> {
  return page.locator('.part.statusbar .statusbar-item').evaluateAll((els) =>
    els
      .filter((e) => (e as HTMLElement).offsetParent !== null)
      .map((e) => ({
        id: e.id,
        text: (e.textContent ?? '').trim(),
        ariaLabel: e.getAttribute('aria-label') ?? '',
        side: e.classList.contains('right') ? 'right' : 'left',
      })),
  );
}

/** A notification toast as a person sees it. */
export interface Notification {
  message: string;
  source: string;
  buttons: string[];
}

/** The notification toasts showing now (newest last). */
export async function readNotifications(page: Page): Promise<Notification[]> {
  return page.locator('.notifications-toasts .notification-toast').evaluateAll((toasts) =>
    toasts.map((t) => ({
      message: (t.querySelector('.notification-list-item-message')?.textContent ?? '').trim(),
      source: (t.querySelector('.notification-list-item-source')?.textContent ?? '').trim(),
      buttons: Array.from(t.querySelectorAll('.notification-list-item-buttons-container .monaco-button')).map((b) =>
        (b.textContent ?? '').trim(),
      ),
    })),
  );
}

/** Waits for a notification toast whose message contains `text`, and returns it. */
export async function waitForNotification(page: Page, text: string | RegExp, timeoutMs = 30_000): Promise<Notification> {
  const toast = page.locator('.notifications-toasts .notification-toast').filter({ hasText: text }).first();
  await toast.waitFor({ state: 'visible', timeout: timeoutMs });
  const all = await readNotifications(page);
  const want = typeof text === 'string' ? (m: string) => m.includes(text) : (m: string) => text.test(m);
  return all.find((n) => want(n.message)) ?? { message: (await toast.textContent()) ?? '', source: '', buttons: [] };
}

/**
 * Polls `get` until `ok` accepts its value (every `stepMs`), or throws after `ms` with
 * `what` and the last value seen. For conditions the workbench reaches asynchronously (a
 * tree row, a file the extension writes). `ms` is a deadline, never a speed check; `page`
 * is unused and kept so every call site reads alike.
 */
export async function until<T>(_page: Page | undefined, get: () => T | Promise<T>, ok: (v: T) => boolean, what: string, ms = 30_000, stepMs = 250): Promise<T> {
  const end = Date.now() + ms;
  for (;;) {
    const v = await get();
    if (ok(v)) return v;
    if (Date.now() > end) throw new Error(`${what} (last seen: ${JSON.stringify(v)})`);
    await delay(stepMs);
  }
}

/**
 * Shows the Lifeboat view container and waits until the Backups tree satisfies `ok`
 * (e.g. lists app.db and one backup). Opens it explicitly every time: after a window
 * reload the workbench restores whichever side bar it had, and a tree that is not
 * rendered reads as empty. Throws with `what` and the rows last seen.
 */
export async function waitForTree(page: Page, ok: (rows: TreeRow[]) => boolean, what: string, ms = 30_000, viewName = 'Backups'): Promise<TreeRow[]> {
  const list = treeList(page, viewName);
  await openViewContainer(page, 'Lifeboat', ms);
  return until(
    page,
    async () => {
      // A restore that finishes late may still switch the side bar away: show it again.
      if (!(await list.isVisible())) await openViewContainer(page, 'Lifeboat', ms);
      return readTreeRows(page, viewName);
    },
    ok,
    what,
    ms,
  );
}

/**
 * Waits until the finite animations in `target` and below (a toast's or a dialog's
 * entrance) have finished, so a screenshot shows it as a person sees it, instead of
 * waiting a fixed time. Endless ones (a progress bar) are left alone. Throws on timeout.
 */
export async function animationsDone(target: Locator, timeoutMs = 10_000): Promise<void> {
  await target.evaluate(
    (el) =>
      Promise.all(
        el
          .getAnimations({ subtree: true })
          .filter((a) => Number.isFinite(Number(a.effect?.getComputedTiming().iterations ?? 1)))
          .map((a) => a.finished.catch(() => undefined)),
      ).then(() => undefined),
    undefined,
    { timeout: timeoutMs },
  );
}

/** Closes every notification toast on screen (best effort: one may fade out meanwhile). */
export async function dismissToasts(page: Page): Promise<void> {
  for (const close of await page.locator('.notifications-toasts .notification-toast .codicon-notifications-clear').all()) {
    await close.click({ timeout: 2000 }).catch(() => undefined);
  }
}

/** Saves a PNG of the page (or of `target`) as test-results/<name>.png and returns its path. */
export async function screenshot(page: Page, name: string, target?: Locator): Promise<string> {
  mkdirSync(RESULTS_DIR, { recursive: true });
  const file = path.join(RESULTS_DIR, name.endsWith('.png') ? name : `${name}.png`);
  if (target) await target.screenshot({ path: file });
  else await page.screenshot({ path: file });
  return file;
}

/**
 * The text an extension wrote to its log output channel `channel` (e.g. "Lifeboat") in this
 * run, read from the channel's files under the run's user data (one per extension host,
 * oldest first). Empty when there is none yet.
 */
export function readChannelLog(dirs: RunDirs, channel: string): string {
  const found: string[] = [];
  const walk = (d: string): void => {
    for (const e of readdirSync(d, { withFileTypes: true })) {
      const p = path.join(d, e.name);
      if (e.isDirectory()) walk(p);
      else if (e.name === `${channel}.log`) found.push(p);
    }
  };
  const logs = path.join(dirs.userData, 'logs');
  if (existsSync(logs)) walk(logs);
  return found
    .sort()
    .map((f) => readFileSync(f, 'utf8'))
    .join('\n');
}

/** What a UI check gets: a page with the workbench open on the run's workspace. */
export interface UiContext {
  page: Page;
  server: CodeServer;
  dirs: RunDirs;
  /** Saves test-results/<name>.png (see `screenshot`). */
  screenshot(name: string, target?: Locator): Promise<string>;
  /** Prints a line in the run's output. */
  log(line: string): void;
}

/**
 * One Playwright UI check. `run` throws (e.g. an assert) to fail. Checks of one file run
 * in order in the same page, after the workbench is ready.
 */
export interface UiCheck {
  name: string;
  run(ctx: UiContext): Promise<void>;
  /** Default 60 s. */
  timeoutMs?: number;
}

// Lifeboat in a multi-root workspace, as a person sees it: a `.code-workspace` file with two
// folders, shop/ and blog/, each with its own SQLite database (made by the sqlite3 shell) and
// its own .vscode/settings.json (a different backup directory, schedule, retention and
// notifications). The Backups tree shows both databases, Back Up Now writes each database's
// archive into its own folder's directory only, the status bar covers both, and a setting
// saved for one folder leaves the other's alone, and Restore from Off-site... asks which
// folder's remote when both have one. Runs in a code-server of its own
// (`phase = 'multiroot'`, see UiModule in scripts/vscode/runner.ts).
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, readdirSync, realpathSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import type { FrameLocator, Page } from 'playwright-core';
import { REPO_ROOT, openPaletteAt, openViewContainer, paletteRow, quickInput, readChannelLog, readNotifications, readStatusBar, readTreeRows, runCommand, until, waitForNotification, type RunDirs, type TreeRow, type UiCheck } from '../../scripts/vscode/harness';
import { makeDb, query } from '../fixtures/sqlite';

/** Runs only in the multi-root phase (see UiModule in runner.ts). */
export const phase = 'multiroot';
/** The workspace file the phase's workbench opens, relative to the run's workspace folder. */
export const workspaceFile = 'lifeboat.code-workspace';

/** Each folder's database, its rows, and the `lifeboat.*` settings in its .vscode/settings.json. */
const FOLDERS = {
  // No schedule, so nothing but the checks writes into shop/backups; every success notifies.
  shop: {
    rows: 30,
    settings: {
      'lifeboat.databases': ['app.db'],
      'lifeboat.directory': 'backups',
      'lifeboat.schedule.daily': false,
      'lifeboat.retention.daily': 7,
      'lifeboat.notifications': 'all',
    },
  },
  // A daily slot whose backup prepare() makes before the server starts, so the scheduler
  // finds it done and writes nothing during the checks; only failures notify. Format v1
  // zips here, while shop has the default, format v2: each folder's own format.
  blog: {
    rows: 70,
    settings: {
      'lifeboat.databases': ['app.db'],
      'lifeboat.directory': 'snapshots',
      'lifeboat.format': 'zip',
      'lifeboat.schedule.daily': true,
      'lifeboat.schedule.time': '03:30',
      'lifeboat.retention.daily': 3,
      'lifeboat.notifications': 'failures',
    },
  },
} as const;
type FolderName = keyof typeof FOLDERS;
const DIR: Record<FolderName, string> = { shop: 'backups', blog: 'snapshots' };
const OTHER: Record<FolderName, FolderName> = { shop: 'blog', blog: 'shop' };
/** A workspace-level setting (in the .code-workspace file) that both folders inherit. */
const WORKSPACE_SETTINGS = { 'lifeboat.retention.monthly': 6 };
const VIEW = 'Backups';

function folder(dirs: RunDirs, name: FolderName): string {
  return path.join(dirs.workspace, name);
}

function settingsFile(dirs: RunDirs, name: FolderName): string {
  return path.join(folder(dirs, name), '.vscode', 'settings.json');
}

function cli(...args: string[]): string {
  return runCli(args);
}

/** The CLI with the run's own temp folder: what it keeps there for a remote (its scratch folder) goes with the run. */
function cliIn(dirs: RunDirs, ...args: string[]): string {
  return runCli(args, { ...process.env, TMPDIR: dirs.tmp });
}

function runCli(args: string[], env?: NodeJS.ProcessEnv): string {
  return execFileSync(process.execPath, [path.join(REPO_ROOT, 'dist', 'cli.js'), ...args], { encoding: 'utf8', stdio: 'pipe', timeout: 60_000, env });
}

interface Listed {
  kind: string;
  source: string;
  verified: boolean;
  path: string;
}

/** The backups in `dir` as the real CLI lists them ([] when the directory does not exist). */
function listed(dir: string): Listed[] {
  if (!existsSync(dir)) return [];
  return (JSON.parse(cli('list', '--dir', dir, '--json')) as { backups: Listed[] }).backups;
}

/**
 * shop/ and blog/ with their databases and settings, one verified scheduled backup of
 * blog/app.db in blog/snapshots (made by the real CLI), and the .code-workspace file.
 * The fixture's own app.db is removed: the run's folder itself is not a workspace folder.
 */
export function prepare(dirs: RunDirs): void {
  rmSync(path.join(dirs.workspace, 'app.db'), { force: true });
  for (const name of Object.keys(FOLDERS) as FolderName[]) {
    const f = FOLDERS[name];
    mkdirSync(path.join(folder(dirs, name), '.vscode'), { recursive: true });
    const db = path.join(folder(dirs, name), 'app.db');
    makeDb(db, { rows: f.rows });
    if (query<{ n: number }>(db, 'SELECT count(*) AS n FROM items;')[0].n !== f.rows) throw new Error(`${db} does not hold ${f.rows} items`);
    writeFileSync(settingsFile(dirs, name), JSON.stringify(f.settings, null, 2));
  }
  const blogDir = path.join(folder(dirs, 'blog'), DIR.blog);
  cli('backup', path.join(folder(dirs, 'blog'), 'app.db'), '--dir', blogDir, '--kind', 'scheduled');
  if (listed(blogDir).length !== 1) throw new Error(`the CLI did not leave one backup in ${blogDir}`);
  writeFileSync(
    path.join(dirs.workspace, workspaceFile),
    JSON.stringify({ folders: [{ path: 'shop' }, { path: 'blog' }], settings: WORKSPACE_SETTINGS }, null, 2),
  );
}


/** The tree's rows grouped under each top-level (database) row, keyed by its description (the folder's name). */
function byFolder(rows: TreeRow[]): Map<string, TreeRow[]> {
  const out = new Map<string, TreeRow[]>();
  let cur: TreeRow[] | undefined;
  for (const r of rows) {
    if (r.level === 1) out.set(r.description, (cur = [r]));
    else cur?.push(r);
  }
  return out;
}

function showTree(rows: TreeRow[]): string {
  return rows.map((r) => `${'  '.repeat(r.level - 1)}${r.label} [${r.description}]`).join(' | ');
}

/** The manual backups in `name`'s own backup directory, and asserts none went anywhere else. */
function manualBackups(dirs: RunDirs, name: FolderName): Listed[] {
  const own = listed(path.join(folder(dirs, name), DIR[name])).filter((b) => b.kind === 'manual');
  // Never in the other folder's directory, and no directory of the other folder's name here.
  const db = realpathSync(path.join(folder(dirs, name), 'app.db'));
  const other = OTHER[name];
  const strays = [
    ...listed(path.join(folder(dirs, other), DIR[other])).filter((b) => b.source === db),
    ...listed(path.join(folder(dirs, name), DIR[other])),
    ...listed(path.join(folder(dirs, other), DIR[name])),
    ...listed(path.join(dirs.workspace, 'backups')),
  ];
  assert.deepEqual(strays.map((b) => b.path), [], `backups of ${name}/app.db outside ${name}/${DIR[name]}`);
  return own;
}

/**
 * Runs `Lifeboat: Back Up Now` from the palette and picks `name`'s database in the quick
 * pick that the command opens in the palette's place (so harness.runCommand, which waits
 * for the palette to close, does not fit).
 */
async function backUpNow(page: Page, name: FolderName): Promise<void> {
  await openPaletteAt(page, 'Lifeboat: Back Up Now');
  await paletteRow(page, 'Lifeboat: Back Up Now').click();
  const rows = page.locator('.quick-input-list .monaco-list-row');
  // Label and description apart: a recycled row keeps the palette's hidden separator text.
  const seen = await until(
    page,
    () =>
      rows.evaluateAll((els) =>
        els.map((e) => `${(e.querySelector('.label-name')?.textContent ?? '').trim()} | ${(e.querySelector('.label-description')?.textContent ?? '').trim()}`),
      ),
    (t) => t.length === 3 && t.every((x) => !x.startsWith('Lifeboat:')),
    'the Back Up Now quick pick does not offer All databases and the two databases',
  );
  assert.deepEqual(seen, ['All databases | 2 databases', 'app.db | shop · app.db', 'app.db | blog · app.db']);
  await rows.filter({ has: page.locator('.label-description', { hasText: `${name} · app.db` }) }).first().click();
  await quickInput(page).waitFor({ state: 'hidden' });
}

function statusItem(page: Page): Promise<{ text: string; ariaLabel: string } | undefined> {
  return readStatusBar(page).then((items) => items.find((i) => i.ariaLabel.startsWith('Lifeboat:')));
}

/** The panel app's document: the webview's outer iframe, then its active frame. */
function panelFrame(page: Page): FrameLocator {
  return page.frameLocator('iframe.webview.ready').last().frameLocator('iframe#active-frame');
}

/** The value shown in the panel form's text field for `key` (e.g. "retention-daily"). */
function fieldValue(app: FrameLocator, key: string): Promise<string> {
  return app.locator(`#f-${key}`).evaluate((e) => String((e as HTMLElement & { value: unknown }).value));
}

/** Chooses `label` (e.g. "blog: app.db") in the panel's Database select, as a person does. */
async function selectDatabase(app: FrameLocator, label: string): Promise<void> {
  await app.locator('#db-select').click();
  await app.locator('#db-select').getByRole('option', { name: label }).click();
}

export const checks: UiCheck[] = [
  {
    name: 'Lifeboat multi-root: the Backups tree lists the database of each folder with its own backups and schedule',
    timeoutMs: 60_000,
    async run({ page, dirs, screenshot, log }) {
      await openViewContainer(page, 'Lifeboat');
      const rows = await until(
        page,
        () => readTreeRows(page, VIEW),
        (r) => byFolder(r).get('blog')?.some((x) => x.level === 3) === true && byFolder(r).get('shop')?.some((x) => x.label === 'No backups yet') === true,
        'the tree does not show shop/app.db without backups and blog/app.db with its scheduled backup',
      );
      log(`tree: ${showTree(rows)}`);
      assert.deepEqual(rows.filter((r) => r.level === 1).map((r) => `${r.label} [${r.description}]`), ['app.db [shop]', 'app.db [blog]']);
      const blog = byFolder(rows).get('blog')!;
      assert.equal(blog.filter((r) => r.level === 3).length, 1, showTree(blog));
      assert.match(blog.find((r) => r.level === 3)!.description, /verified · scheduled$/);
      assert.equal(byFolder(rows).get('shop')!.length, 2, showTree(rows));
      // One scheduler per folder, each with its own folder's schedule.
      const text = await until(page, () => readChannelLog(dirs, 'Lifeboat'), (t) => /schedule of blog:/.test(t) && /schedule of shop:/.test(t), 'the log names no schedule of each folder', 20_000);
      assert.match(text, /schedule of shop: off\b/);
      assert.match(text, /schedule of blog: daily 03:30\b/);
      // shop has no backup at all yet, so the status bar says so although blog has one.
      const item = await until(page, () => statusItem(page), (i) => !!i, 'no Lifeboat status bar item');
      assert.match(item!.text, /no backup$/);
    },
  },
  {
    name: 'Lifeboat multi-root: Back Up Now on shop writes a verified archive into shop/backups only',
    timeoutMs: 60_000,
    async run({ page, dirs }) {
      await backUpNow(page, 'shop');
      // shop's `lifeboat.notifications` is "all": its success is a notification.
      await waitForNotification(page, 'Lifeboat: backed up app.db in shop (manual, verified).');
      const own = await until(page, () => manualBackups(dirs, 'shop'), (b) => b.length === 1, 'no manual backup in shop/backups');
      assert.equal(own[0].source, realpathSync(path.join(folder(dirs, 'shop'), 'app.db')));
      assert.equal(own[0].verified, true, 'the archive is not verified');
      // Format v2, the default: shop/backups/snapshots/<id>.json.
      assert.match(path.relative(realpathSync(path.join(folder(dirs, 'shop'), 'backups')), own[0].path), /^snapshots\/[^/]+-manual\.json$/);
      assert.deepEqual(listed(path.join(folder(dirs, 'blog'), 'snapshots')).map((b) => b.kind), ['scheduled'], 'blog/snapshots changed');
      const rows = await until(page, () => readTreeRows(page, VIEW), (r) => byFolder(r).get('shop')?.some((x) => x.label === 'Manual') === true, 'no Manual tier under shop/app.db');
      const shop = byFolder(rows).get('shop')!;
      assert.match(shop.find((r) => r.level === 3)!.description, /verified · manual$/);
      assert.ok(!byFolder(rows).get('blog')!.some((r) => r.label === 'Manual'), `a Manual tier under blog/app.db: ${showTree(rows)}`);
    },
  },
  {
    name: 'Lifeboat multi-root: Back Up Now on blog writes into blog/snapshots only, and blog\'s notifications setting holds',
    timeoutMs: 60_000,
    async run({ page, dirs, screenshot }) {
      await backUpNow(page, 'blog');
      // blog's `lifeboat.notifications` is "failures": the success shows in the status bar only.
      await until(page, () => readStatusBar(page), (items) => items.some((i) => i.text.includes('Lifeboat: backed up app.db in blog (manual, verified).')), 'no "backed up app.db in blog" message in the status bar');
      const toasts = (await readNotifications(page)).filter((n) => n.message.includes('backed up app.db in blog'));
      assert.deepEqual(toasts, [], 'blog\'s success showed a notification');
      const own = await until(page, () => manualBackups(dirs, 'blog'), (b) => b.length === 1, 'no manual backup in blog/snapshots');
      assert.equal(own[0].source, realpathSync(path.join(folder(dirs, 'blog'), 'app.db')));
      assert.equal(own[0].verified, true, 'the archive is not verified');
      // blog's `lifeboat.format` is "zip": a v1 archive at the top of blog/snapshots.
      assert.equal(path.dirname(own[0].path), realpathSync(path.join(folder(dirs, 'blog'), 'snapshots')));
      assert.match(path.basename(own[0].path), /-manual\.zip$/);
      assert.equal(manualBackups(dirs, 'shop').length, 1, 'shop/backups changed');
      const rows = await until(
        page,
        () => readTreeRows(page, VIEW),
        (r) => byFolder(r).get('blog')?.some((x) => x.label === 'Manual') === true && byFolder(r).get('shop')?.some((x) => x.label === 'Manual') === true,
        'no Manual tier under each database',
      );
      for (const name of ['shop', 'blog'] as const) {
        const manual = byFolder(rows).get(name)!.filter((r) => r.level === 3 && /· manual$/.test(r.description));
        assert.equal(manual.length, 1, `${name}: ${showTree(rows)}`);
      }
      await screenshot('lifeboat-multiroot', page.locator('.part.sidebar'));
    },
  },
  {
    name: 'Lifeboat multi-root: the status bar reflects the backups of both folders',
    timeoutMs: 30_000,
    async run({ page, screenshot }) {
      const item = await until(page, () => statusItem(page), (i) => !!i && /(just now|\d+ min ago)$/.test(i.text), 'the status bar does not show a recent backup');
      assert.match(item!.ariaLabel, /^Lifeboat: newest verified backup (just now|\d+ min ago)$/);
      await page.locator('.part.statusbar .statusbar-item', { hasText: item!.text }).first().hover();
      const hover = page.locator('.monaco-hover, .workbench-hover').filter({ hasText: 'Lifeboat' }).first();
      await hover.waitFor({ state: 'visible', timeout: 10_000 });
      const text = (await hover.innerText()).replace(/\s+/g, ' ');
      assert.match(text, /app\.db in shop: verified backup (just now|\d+ min ago)/, text);
      assert.match(text, /app\.db in blog: verified backup (just now|\d+ min ago)/, text);
      await screenshot('lifeboat-multiroot-status-bar');
      await page.mouse.move(700, 300);
    },
  },
  {
    name: 'Lifeboat multi-root: a setting saved for shop in the panel leaves blog\'s settings alone',
    timeoutMs: 60_000,
    async run({ page, dirs, screenshot }) {
      await runCommand(page, 'Notifications: Clear All Notifications');
      const blogBefore = readFileSync(settingsFile(dirs, 'blog'), 'utf8');
      await runCommand(page, 'Lifeboat: Open Settings and Statistics');
      const app = panelFrame(page);
      await app.locator('#f-retention-daily').waitFor({ timeout: 30_000 });
      const shown = async (): Promise<Record<string, string>> => ({
        directory: await fieldValue(app, 'directory'),
        daily: await fieldValue(app, 'retention-daily'),
        monthly: await fieldValue(app, 'retention-monthly'),
      });
      await selectDatabase(app, 'shop: app.db');
      assert.deepEqual(await until(page, shown, (v) => v.directory === 'backups', 'the panel does not show shop\'s settings'), { directory: 'backups', daily: '7', monthly: '6' });
      await selectDatabase(app, 'blog: app.db');
      assert.deepEqual(await until(page, shown, (v) => v.directory === 'snapshots', 'the panel does not show blog\'s settings'), { directory: 'snapshots', daily: '3', monthly: '6' });

      await selectDatabase(app, 'shop: app.db');
      await until(page, shown, (v) => v.directory === 'backups', 'the panel does not show shop\'s settings again');
      const input = app.locator('#f-retention-daily input');
      await input.fill('');
      await input.pressSequentially('5');
      await app.locator('#settings-save').click();
      await app.locator('.form-status').getByText('Saved 1 setting to Workspace folder settings.').waitFor();
      const shopJson = await until(
        page,
        () => JSON.parse(readFileSync(settingsFile(dirs, 'shop'), 'utf8')) as Record<string, unknown>,
        (j) => j['lifeboat.retention.daily'] === 5,
        'shop/.vscode/settings.json has no lifeboat.retention.daily 5',
        15_000,
      );
      assert.equal(shopJson['lifeboat.directory'], 'backups');
      assert.equal(readFileSync(settingsFile(dirs, 'blog'), 'utf8'), blogBefore, 'blog/.vscode/settings.json changed');
      const ws = JSON.parse(readFileSync(path.join(dirs.workspace, workspaceFile), 'utf8')) as { settings: Record<string, unknown> };
      assert.deepEqual(ws.settings, WORKSPACE_SETTINGS, 'the .code-workspace settings changed');
      // The extension's effective settings of each folder, as the panel shows them.
      assert.deepEqual(await until(page, shown, (v) => v.daily === '5', 'the panel does not show shop\'s new value'), { directory: 'backups', daily: '5', monthly: '6' });
      await selectDatabase(app, 'blog: app.db');
      assert.deepEqual(await until(page, shown, (v) => v.directory === 'snapshots', 'the panel does not show blog\'s settings'), { directory: 'snapshots', daily: '3', monthly: '6' });
      await screenshot('lifeboat-multiroot-panel');
      await runCommand(page, 'View: Close All Editors').catch(() => undefined);
    },
  },
  {
    name: 'Lifeboat multi-root: Restore from Off-site... asks which folder\'s remote, then restores blog/app.db from blog\'s own',
    timeoutMs: 120_000,
    async run({ page, dirs, screenshot, log }) {
      const remote = (name: FolderName): string => path.join(dirs.workspace, 'remotes', name);
      const urlOf = (name: FolderName): string => pathToFileURL(remote(name)).href;
      const blogDb = path.join(folder(dirs, 'blog'), 'app.db');
      const blogDir = path.join(folder(dirs, 'blog'), DIR.blog);
      // Each folder gets a remote of its own: an unencrypted folder, so nothing asks for credentials.
      for (const name of ['shop', 'blog'] as const) {
        const file = settingsFile(dirs, name);
        const j = JSON.parse(readFileSync(file, 'utf8')) as Record<string, unknown>;
        writeFileSync(file, JSON.stringify({ ...j, 'lifeboat.offsite.url': urlOf(name), 'lifeboat.offsite.encrypt': false }, null, 2));
      }
      // blog's two backups copied to blog's remote by the real CLI; shop's remote stays empty.
      cliIn(dirs, 'push', blogDb, '--dir', blogDir, '--to', urlOf('blog'), '--no-encrypt');
      const copied = readdirSync(remote('blog')).filter((n) => n.endsWith('.zip'));
      assert.equal(copied.length, 2, copied.join(', '));
      // The tree has read the new settings once blog's rows say off-site.
      await until(
        page,
        () => readTreeRows(page, VIEW),
        (r) => {
          const backups = byFolder(r).get('blog')?.filter((x) => x.level === 3) ?? [];
          return backups.length === 2 && backups.every((x) => / · off-site$/.test(x.description));
        },
        'blog\'s backups are not shown as off-site',
      );
      // The mistake to undo: most of blog's rows deleted.
      query(blogDb, 'DELETE FROM items WHERE id > 10;');
      assert.equal(query<{ n: number }>(blogDb, 'SELECT count(*) AS n FROM items;')[0].n, 10);

      await openPaletteAt(page, 'Lifeboat: Restore from Off-site...');
      await paletteRow(page, 'Lifeboat: Restore from Off-site...').click();
      const rows = page.locator('.quick-input-list .monaco-list-row');
      const shown = (): Promise<string[]> =>
        rows.evaluateAll((els) =>
          els.map((e) => `${(e.querySelector('.label-name')?.textContent ?? '').trim()} | ${(e.querySelector('.label-description')?.textContent ?? '').trim()}`),
        );
      const folders = await until(page, shown, (t) => t.length === 2 && t.every((x) => !x.startsWith('Lifeboat:')), 'no quick pick of the two folders');
      assert.deepEqual(folders, [`shop | ${urlOf('shop')}`, `blog | ${urlOf('blog')}`]);
      await screenshot('lifeboat-multiroot-restore-offsite-folder', quickInput(page));
      await rows.filter({ has: page.locator('.label-name', { hasText: /^\s*blog\s*$/ }) }).first().click();
      // blog's remote listed: its two backups, newest (the manual one) first.
      const listedRows = await until(page, shown, (t) => t.length === 2 && t.every((x) => x.startsWith('app.db: ')), 'no quick pick of blog\'s off-site backups');
      log(`offered: ${listedRows.join(' || ')}`);
      assert.match(listedRows[0], /\| manual · .* · verified$/);
      assert.match(listedRows[1], /\| scheduled · .* · verified$/);
      await rows.first().click();
      // Where to: blog's database, as proposed.
      await quickInput(page).getByText(/Restore to which file\?/).waitFor({ state: 'visible', timeout: 15_000 });
      assert.equal(await quickInput(page).locator('input.input').inputValue(), realpathSync(blogDb));
      await page.keyboard.press('Enter');
      const dialog = page.locator('.monaco-dialog-box');
      await dialog.waitFor({ state: 'visible', timeout: 15_000 });
      assert.match((await dialog.textContent()) ?? '', /Restore app\.db from the off-site manual backup of/);
      await dialog.locator('.monaco-button', { hasText: /^Restore$/ }).click();
      await waitForNotification(page, /Lifeboat: restored app\.db from the off-site backup of .*The previous file is kept as backup app-.*-pre-restore\./, 60_000);
      assert.equal(query<{ n: number }>(blogDb, 'SELECT count(*) AS n FROM items;')[0].n, FOLDERS.blog.rows);
      // The pre-restore backup went into blog's own folder, with the 10 rows the restore replaced.
      const pre = listed(blogDir).filter((b) => b.kind === 'pre-restore');
      assert.equal(pre.length, 1, JSON.stringify(listed(blogDir)));
      assert.deepEqual(listed(path.join(folder(dirs, 'shop'), DIR.shop)).filter((b) => b.kind === 'pre-restore'), []);
      const back = path.join(dirs.tmp, 'pre-restore-check.db');
      cliIn(dirs, 'restore', pre[0].path, '--to', back);
      assert.equal(query<{ n: number }>(back, 'SELECT count(*) AS n FROM items;')[0].n, 10);
      await page.mouse.move(5, 5);
      await screenshot('lifeboat-multiroot-restored-offsite');
    },
  },
];

#!/usr/bin/env node
// The panel app alone in headless Chromium with a fake host:
//   node test/webview/run.mjs [--grep PATTERN]
// Bundles webview/main.ts (as esbuild.mjs does) and test/webview/fakeHost.ts into a
// temporary folder, serves a test page with the panel's strict CSP on 127.0.0.1, drives it
// with playwright-core and Debian's Chromium, writes test-results/panel-{light,dark,high-contrast}.png,
// measures the render time of 2,000 history rows, and prints `N passed, N failed` last
// (exit code 1 when anything failed).
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { gzipSync } from 'node:zlib';
import { build } from 'esbuild';
import { chromium } from 'playwright-core';
import { NOW, panelState, historyRows, SETTINGS } from './fixtures.mjs';
import { THEMES, themeCss } from './themes.mjs';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
process.chdir(root);
const args = process.argv.slice(2);
const grep = args.includes('--grep') ? new RegExp(args[args.indexOf('--grep') + 1], 'i') : undefined;
const results = path.join(root, 'test-results');
mkdirSync(results, { recursive: true });
const tmp = mkdtempSync(path.join(os.tmpdir(), 'lifeboat-webview-'));
let server;
let browser;
let passed = 0;
let failed = 0;

async function cleanup() {
  await browser?.close().catch(() => undefined);
  server?.close();
  rmSync(tmp, { recursive: true, force: true });
}

try {
  const t0 = Date.now();
  await build({ entryPoints: ['webview/main.ts'], outfile: path.join(tmp, 'webview.js'), bundle: true, platform: 'browser', format: 'esm', target: 'es2022', minify: true, logLevel: 'warning' });
  await build({ entryPoints: ['test/webview/fakeHost.ts'], outfile: path.join(tmp, 'fakeHost.mjs'), bundle: true, platform: 'node', format: 'esm', target: 'node20', logLevel: 'warning' });
  const bundle = readFileSync(path.join(tmp, 'webview.js'));
  console.log(`bundle: webview.js ${(bundle.length / 1024).toFixed(1)} KB minified, ${(gzipSync(bundle).length / 1024).toFixed(1)} KB gzipped (built in ${Date.now() - t0} ms)`);
  const fakeHost = await import(pathToFileURL(path.join(tmp, 'fakeHost.mjs')).href);

  // The page: the host's CSP (script and style only by nonce), the theme's variables, the fake VS Code API, the app.
  const pageHtml = (theme, nonce, view = 'panel') => `<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; img-src 'self' data:; style-src 'self' 'nonce-${nonce}'; font-src 'self'; script-src 'nonce-${nonce}'">
<style nonce="${nonce}">${themeCss(theme)}</style><title>Lifeboat panel test</title></head>
<body class="${THEMES[theme].bodyClass}"><div id="app" data-view="${view === 'inspect' ? 'inspect' : 'panel'}"></div>
<script nonce="${nonce}" src="/fakeApi.js"></script>
<script type="module" nonce="${nonce}" src="/webview.js"></script></body></html>`;
  const fakeApi = `
window.__sent = []; window.__violations = []; window.__failNext = {};
document.addEventListener('securitypolicyviolation', (e) => window.__violations.push(e.violatedDirective + ' ' + e.blockedURI));
let saved = null;
window.acquireVsCodeApi = () => ({
  postMessage(m) {
    window.__sent.push(JSON.parse(JSON.stringify(m)));
    if (m.kind !== 'request') return;
    const fail = window.__failNext[m.method];
    if (fail) { delete window.__failNext[m.method]; setTimeout(() => window.postMessage({ kind: 'reply', id: m.id, ok: false, error: fail }, '*')); return; }
    window.__hostRequest(m.method, m.params).then(
      (result) => window.postMessage({ kind: 'reply', id: m.id, ok: true, result }, '*'),
      (e) => window.postMessage({ kind: 'reply', id: m.id, ok: false, error: String(e && e.message || e) }, '*'));
  },
  getState() { return saved; },
  setState(s) { saved = s; },
});`;
  server = http.createServer((req, res) => {
    const url = new URL(req.url, 'http://127.0.0.1');
    if (url.pathname === '/') {
      res.writeHead(200, { 'content-type': 'text/html' }).end(pageHtml(url.searchParams.get('theme') ?? 'dark', randomBytes(12).toString('base64'), url.searchParams.get('view') ?? 'panel'));
    } else if (url.pathname === '/webview.js') {
      res.writeHead(200, { 'content-type': 'text/javascript' }).end(bundle);
    } else if (url.pathname === '/fakeApi.js') {
      res.writeHead(200, { 'content-type': 'text/javascript' }).end(fakeApi);
    } else if (url.pathname === '/favicon.ico') {
      res.writeHead(204).end();
    } else res.writeHead(404).end();
  });
  await new Promise((r) => server.listen(0, '127.0.0.1', r));
  const base = `http://127.0.0.1:${server.address().port}`;
  browser = await chromium.launch({ executablePath: '/usr/bin/chromium', headless: true, args: ['--no-sandbox', '--disable-gpu'] });

  let state = panelState(40);
  async function openPage(theme = 'dark', viewport = { width: 1200, height: 900 }, view = 'panel') {
    const context = await browser.newContext({ viewport, deviceScaleFactor: 1, locale: 'en-US', timezoneId: 'UTC' });
    const page = await context.newPage();
    page.setDefaultTimeout(10_000);
    const errors = [];
    page.on('pageerror', (e) => errors.push(e.message));
    page.on('console', (m) => m.type() === 'error' && errors.push(m.text()));
    await page.exposeFunction('__hostRequest', (method, params) => (method.startsWith('inspect/') ? fakeHost.answerInspect(method, params) : fakeHost.answer(method, params, state, new Date(NOW))));
    await page.goto(`${base}/?theme=${theme}&view=${view}`);
    await page.waitForFunction(() => window.__sent.length > 0);
    return { page, errors, close: () => context.close() };
  }
  const notify = (page, method, params) => page.evaluate(([m, p]) => window.dispatchEvent(new MessageEvent('message', { data: { kind: 'notification', method: m, params: p } })), [method, params]);
  const sent = (page) => page.evaluate(() => window.__sent);
  const clearSent = (page) => page.evaluate(() => (window.__sent.length = 0));
  const waitSent = async (page, pred, what) => {
    const end = Date.now() + 10_000;
    for (;;) {
      const found = (await sent(page)).find(pred);
      if (found) return found;
      if (Date.now() > end) throw new Error(`no message: ${what}; sent: ${JSON.stringify((await sent(page)).map((m) => m.method))}`);
      await page.waitForTimeout(50);
    }
  };
  const field = (page, key) => page.locator(`#f-${key.replace(/\./g, '-')}`);
  async function typeInto(page, key, text) {
    const input = field(page, key).locator('input');
    await input.fill('');
    await input.pressSequentially(text);
  }

  const tests = [];
  const test = (name, fn) => tests.push({ name, fn });

  test('sends ready first and nothing else before state arrives', async () => {
    const { page, errors, close } = await openPage();
    await page.waitForTimeout(100);
    const msgs = await sent(page);
    assert.deepEqual(msgs, [{ kind: 'command', method: 'panel/app/ready' }]);
    assert.match(await page.locator('#empty').innerText(), /Loading/);
    assert.deepEqual(errors, []);
    await close();
  });

  test('renders the given state: statistics, tiers, chart, history, selector', async () => {
    const { page, errors, close } = await openPage();
    await notify(page, 'panel/state/didChange', state);
    const stats = await page.locator('#stats').innerText();
    assert.match(stats, /BACKUPS\s+40\b/i);
    assert.match(stats, /Daily/);
    assert.match(stats, /Migrations/);
    assert.match(stats, /disk full \(ENOSPC\)/, 'the last failure and its reason');
    assert.match(stats, /Next scheduled run\s+Mar 16, 2026/i);
    assert.match(stats, /daily 02:00/);
    assert.match(stats, /Verified\s+\d+%/i);
    assert.match(stats, /Restore-tested\s+25%/i);
    assert.match(stats, /healthy/);
    assert.equal(await page.locator('table.history').getAttribute('aria-rowcount'), '41');
    assert.equal(await page.locator('table.history tbody tr[data-id]').first().getAttribute('data-id'), state.databases[0].history[0].id);
    assert.equal(await page.locator('svg.chart .fail-mark').count(), 2, 'log failures are marked');
    assert.ok((await page.locator('svg.chart circle.fail').count()) >= 2, 'failed verifications are marked');
    assert.match((await page.locator('svg.chart').getAttribute('aria-label')) ?? '', /40 backups/);
    const options = await page.locator('#db-select vscode-option').allInnerTexts();
    assert.deepEqual(options, ['data/app.db', 'analytics.sqlite']);
    assert.equal(await field(page, 'retention.daily').evaluate((e) => e.value), '30');
    assert.equal(await field(page, 'schedule.daily').evaluate((e) => e.checked), true);
    assert.deepEqual(errors, []);
    await close();
  });

  test('Back Up Now, Verify All and Rotate Now send their commands for the selected database', async () => {
    const { page, close } = await openPage();
    await notify(page, 'panel/state/didChange', state);
    await clearSent(page);
    await page.locator('#backup-now').click();
    await page.locator('#verify-all').click();
    await page.locator('#rotate-now').click();
    const db = state.databases[0].id;
    const cmds = (await sent(page)).filter((m) => m.kind === 'command');
    assert.deepEqual(cmds, [
      { kind: 'command', method: 'backups/database/backUp', params: { db } },
      { kind: 'command', method: 'backups/database/verifyAll', params: { db } },
      { kind: 'command', method: 'backups/database/rotate', params: { db } },
    ]);
    await close();
  });

  test('row actions send Restore, Verify, Pin, Unpin and Reveal with the backup id', async () => {
    const { page, close } = await openPage();
    await notify(page, 'panel/state/didChange', state);
    await clearSent(page);
    const rows = state.databases[0].history;
    const row = (i) => page.locator('table.history tbody tr[data-id]').nth(i);
    await row(0).getByRole('button', { name: /^Restore/ }).click();
    await row(1).getByRole('button', { name: /^Verify/ }).click();
    await row(2).getByRole('button', { name: /^Pin/ }).click();
    await row(4).getByRole('button', { name: /^Unpin/ }).click();
    await row(3).getByRole('button', { name: /^Reveal/ }).click();
    const got = (await sent(page)).map((m) => [m.params.action, m.params.id]);
    assert.deepEqual(got, [
      ['restore', rows[0].id],
      ['verify', rows[1].id],
      ['pin', rows[2].id],
      ['unpin', rows[4].id],
      ['reveal', rows[3].id],
    ]);
    await close();
  });

  test('reachable by keyboard: Tab reaches Back Up Now and a row action, Enter activates them', async () => {
    const { page, close } = await openPage();
    await notify(page, 'panel/state/didChange', state);
    await clearSent(page);
    let reached = false;
    for (let i = 0; i < 10 && !reached; i++) {
      await page.keyboard.press('Tab');
      reached = await page.evaluate(() => document.activeElement?.id === 'backup-now');
    }
    assert.ok(reached, 'Back Up Now is reachable with Tab');
    await page.keyboard.press('Enter');
    await waitSent(page, (m) => m.method === 'backups/database/backUp', 'Back Up Now by keyboard');
    reached = false;
    for (let i = 0; i < 40 && !reached; i++) {
      await page.keyboard.press('Tab');
      reached = await page.evaluate(() => document.activeElement?.dataset?.act === 'restore');
    }
    assert.ok(reached, 'a row\'s Restore button is reachable with Tab');
    await page.keyboard.press('Enter');
    await waitSent(page, (m) => m.params?.action === 'restore', 'Restore by keyboard');
    const names = await page.locator('table.history tbody tr[data-id]').first().getByRole('button').evaluateAll((bs) => bs.map((b) => b.getAttribute('aria-label')));
    assert.ok(names.every((n) => /backup of/.test(n)), `row buttons are labelled for screen readers: ${names}`);
    await close();
  });

  test('ArrowDown walks the rows\' buttons past the rendered window', async () => {
    const { page, close } = await openPage();
    state = panelState(300);
    await notify(page, 'panel/state/didChange', state);
    await page.locator('table.history tbody tr[data-id] button[data-act="verify"]').first().focus();
    for (let i = 0; i < 120; i++) await page.keyboard.press('ArrowDown');
    const focused = await page.evaluate(() => ({ id: document.activeElement?.dataset.id, act: document.activeElement?.dataset.act }));
    assert.deepEqual(focused, { id: state.databases[0].history[120].id, act: 'verify' });
    assert.ok((await page.locator('table.history tbody tr[data-id]').count()) < 100, 'only a window of rows is in the DOM');
    await page.keyboard.press('Enter');
    await waitSent(page, (m) => m.params?.action === 'verify' && m.params.id === state.databases[0].history[120].id, 'Verify of row 121 by keyboard');
    await close();
  });

  test('sorting by a column reorders the rows and sets aria-sort', async () => {
    const { page, close } = await openPage();
    await notify(page, 'panel/state/didChange', state);
    const sizeHeader = page.locator('button.sort[data-sort="size"]');
    await sizeHeader.click();
    const ids = async () => page.locator('table.history tbody tr[data-id]').evaluateAll((rs) => rs.map((r) => r.dataset.id));
    const bySize = [...state.databases[0].history].sort((a, b) => b.size - a.size).map((r) => r.id);
    const shown = await ids();
    assert.ok(shown.length >= 10, `rows in view: ${shown.length}`);
    assert.deepEqual(shown, bySize.slice(0, shown.length));
    assert.equal(await page.locator('th[data-key="size"]').getAttribute('aria-sort'), 'descending');
    await sizeHeader.click();
    const asc = await ids();
    assert.deepEqual(asc, [...bySize].reverse().slice(0, asc.length));
    assert.equal(await page.locator('th[data-key="size"]').getAttribute('aria-sort'), 'ascending');
    assert.equal(await page.locator('th[data-key="created"]').getAttribute('aria-sort'), 'none');
    await page.locator('button.sort[data-sort="kind"]').click();
    const kinds = await page.locator('table.history tbody tr[data-id] td:nth-child(2)').allInnerTexts();
    assert.deepEqual(kinds, [...kinds].sort());
    await close();
  });

  test('editing retention sends a preview Request and shows what rotation would keep and delete', async () => {
    const { page, close } = await openPage();
    await notify(page, 'panel/state/didChange', state);
    await page.locator('#retention-preview').getByText(/Keeps 30 and deletes 10 of the 40 backups/).waitFor();
    await clearSent(page);
    await typeInto(page, 'retention.daily', '7');
    const req = await waitSent(page, (m) => m.method === 'settings/retention/preview', 'a retention preview request');
    assert.equal(req.kind, 'request');
    assert.equal(typeof req.id, 'number');
    assert.equal(req.params.db, state.databases[0].id);
    assert.equal(req.params.values['retention.daily'], 7, 'a whole number is sent as a number');
    await page.locator('#retention-preview').getByText(/Keeps 7 and deletes 33 of the 40 backups/).waitFor();
    assert.match(await page.locator('#retention-preview').innerText(), /not among the 7 newest days/);
    await close();
  });

  test('an invalid time shows the error beside the field, and saving is refused', async () => {
    const { page, close } = await openPage();
    await notify(page, 'panel/state/didChange', state);
    await clearSent(page);
    await typeInto(page, 'schedule.time', '25:00');
    await waitSent(page, (m) => m.method === 'settings/values/validate' && m.params.values['schedule.time'] === '25:00', 'a validate request');
    const err = page.locator('#f-schedule-time-error');
    await err.getByText(/must be a time HH:MM/).waitFor();
    // Beside the field: inside the same row, right under the input.
    const row = page.locator('.row', { has: field(page, 'schedule.time') });
    assert.equal(await row.locator('.error').innerText(), await err.innerText());
    assert.equal(await field(page, 'schedule.time').evaluate((e) => e.invalid), true);
    assert.match(await page.locator('#schedule-preview').innerText(), /Fix the schedule/);
    await typeInto(page, 'retention.weekly', 'x');
    await page.locator('#f-retention-weekly-error').getByText(/whole number/).waitFor();
    await page.locator('#settings-save').click();
    const save = await waitSent(page, (m) => m.method === 'settings/values/save', 'a save request');
    assert.equal(save.params.values['schedule.time'], '25:00');
    await page.locator('.form-status').getByText(/Not saved: 2 settings need fixing/).waitFor();
    await close();
  });

  test('the cron field previews the next three runs (computed by the host)', async () => {
    const { page, close } = await openPage();
    await notify(page, 'panel/state/didChange', state);
    await page.locator('#schedule-preview li').first().waitFor();
    assert.equal(await page.locator('#schedule-preview li').count(), 3);
    assert.match(await page.locator('#schedule-preview').innerText(), /daily 02:00/);
    await typeInto(page, 'schedule.cron', '0 */4 * * *');
    await page.locator('#schedule-preview').getByText(/cron 0 \*\/4 \* \* \*/).waitFor();
    const runs = await page.locator('#schedule-preview li').allInnerTexts();
    assert.deepEqual(runs, ['Mar 15, 2026, 04:00 PM', 'Mar 15, 2026, 08:00 PM', 'Mar 16, 2026, 12:00 AM']);
    await typeInto(page, 'schedule.cron', '0 * *');
    await page.locator('#f-schedule-cron-error').getByText(/5 or 6 fields/).waitFor();
    await close();
  });

  test('Save sends the values and the chosen scope, and reports what was written', async () => {
    const { page, close } = await openPage();
    await notify(page, 'panel/state/didChange', state);
    await typeInto(page, 'retention.daily', '14');
    await field(page, 'backupOnShutdown').click();
    await page.locator('#settings-scope').evaluate((e) => {
      e.value = 'user';
    });
    await clearSent(page);
    await page.locator('#settings-save').click();
    const save = await waitSent(page, (m) => m.method === 'settings/values/save', 'a save request');
    assert.equal(save.params.scope, 'user');
    assert.equal(save.params.values['retention.daily'], 14);
    assert.equal(save.params.values.backupOnShutdown, false);
    assert.deepEqual(Object.keys(save.params.values).sort(), Object.keys(SETTINGS).sort());
    await page.locator('.form-status').getByText('Saved 2 settings to User settings.').waitFor();
    await close();
  });

  test('the off-site section: a URL of another scheme is refused beside its field; a valid one is saved with the rest', async () => {
    const { page, close } = await openPage();
    await notify(page, 'panel/state/didChange', state);
    await page.locator('fieldset', { hasText: 'Off-site copy' }).waitFor();
    assert.equal(await field(page, 'offsite.encrypt').evaluate((e) => e.checked), true);
    await typeInto(page, 'offsite.url', 'ftp://nas/backups');
    await page.locator('#f-offsite-url-error').getByText(/must be an s3:\/\/bucket\/prefix, sftp:\/\/user@host\/path or file:\/\/\/folder URL/).waitFor();
    await typeInto(page, 'offsite.url', 's3://my-bucket/app');
    await typeInto(page, 'offsite.endpoint', 'http://127.0.0.1:9000');
    await page.waitForFunction(() => document.querySelector('#f-offsite-url-error')?.textContent === '');
    assert.equal(await field(page, 'offsite.url').evaluate((e) => e.invalid), false);
    await clearSent(page);
    await page.locator('#settings-save').click();
    const save = await waitSent(page, (m) => m.method === 'settings/values/save', 'a save request');
    assert.equal(save.params.values['offsite.url'], 's3://my-bucket/app');
    assert.equal(save.params.values['offsite.endpoint'], 'http://127.0.0.1:9000');
    assert.equal(save.params.values['offsite.encrypt'], true);
    await page.locator('.form-status').getByText('Saved 2 settings to Workspace settings.').waitFor();
    await close();
  });

  const rotationKeys = ['daily', 'weekly', 'monthly', 'keepWithin', 'keepEventBackups'].map((k) => `offsite.retention.${k}`);
  const placeholder = (page, key) => field(page, key).evaluate((e) => e.getAttribute('placeholder'));

  test('the off-site rotation: empty fields show the local value; daily 7 and monthly 24 save exactly {daily: 7, monthly: 24}', async () => {
    const { page, errors, close } = await openPage();
    await notify(page, 'panel/state/didChange', state);
    const group = page.locator('fieldset', { hasText: 'Off-site copy' }).getByRole('group', { name: 'Off-site rotation' });
    await group.waitFor();
    for (const key of rotationKeys) assert.equal(await field(page, key).evaluate((e) => e.value), '', `${key} is empty: the local policy's`);
    assert.deepEqual(await Promise.all(rotationKeys.map((k) => placeholder(page, k))), ['same as local: 30', 'same as local: 12', 'same as local: 12', 'same as local: 2d', 'same as local: 10']);
    await typeInto(page, 'offsite.retention.daily', '7');
    await typeInto(page, 'offsite.retention.monthly', '24');
    await clearSent(page);
    fakeHost.written.length = 0;
    await page.locator('#settings-save').click();
    await page.locator('.form-status').getByText('Saved 1 setting to Workspace settings.').waitFor();
    const save = (await sent(page)).find((m) => m.method === 'settings/values/save');
    assert.deepEqual(rotationKeys.map((k) => save.params.values[k]), [7, '', 24, '', ''], 'an empty field is sent as empty');
    assert.deepEqual(fakeHost.written, [{ db: state.databases[0].id, scope: 'workspace', key: 'offsite.retention', value: { daily: 7, monthly: 24 } }]);
    assert.deepEqual(errors, []);
    await close();
  });

  test('the off-site rotation: -1 and keepWithin abc are refused beside their fields, and nothing is saved', async () => {
    const { page, close } = await openPage();
    await notify(page, 'panel/state/didChange', state);
    await typeInto(page, 'offsite.retention.daily', '-1');
    await page.locator('#f-offsite-retention-daily-error').getByText('Daily copies kept must be a whole number from 0 to 10000.').waitFor();
    await typeInto(page, 'offsite.retention.keepWithin', 'abc');
    await page.locator('#f-offsite-retention-keepWithin-error').getByText(/^Keep every copy within must be a duration such as 2d/).waitFor();
    for (const key of ['offsite.retention.daily', 'offsite.retention.keepWithin']) {
      const row = page.locator('.row', { has: field(page, key) });
      assert.match(await row.locator('.error').innerText(), /must be/, `the error of ${key} is in its own row`);
      assert.equal(await field(page, key).evaluate((e) => e.invalid), true);
    }
    assert.equal(await page.locator('#f-offsite-retention-weekly-error').innerText(), '', 'an empty field is valid');
    fakeHost.written.length = 0;
    await page.locator('#settings-save').click();
    await page.locator('.form-status').getByText('Not saved: 2 settings need fixing.').waitFor();
    assert.deepEqual(fakeHost.written, []);
    await page.locator('fieldset', { hasText: 'Off-site copy' }).screenshot({ path: path.join(results, 'panel-offsite-refused.png') });
    await close();
  });

  test('the off-site rotation: set keys are shown, a local edit updates the placeholders, clearing every field saves {}', async () => {
    const { page, close } = await openPage();
    const db = state.databases[0];
    Object.assign(db.settings, { 'offsite.retention.daily': 7, 'offsite.retention.weekly': 4, 'offsite.retention.keepWithin': '1d' });
    await notify(page, 'panel/state/didChange', state);
    assert.deepEqual(await Promise.all(rotationKeys.map((k) => field(page, k).evaluate((e) => e.value))), ['7', '4', '', '1d', '']);
    await typeInto(page, 'retention.monthly', '6');
    await page.waitForFunction(() => document.querySelector('#f-offsite-retention-monthly')?.getAttribute('placeholder') === 'same as local: 6');
    for (const key of rotationKeys) await field(page, key).locator('input').fill('');
    fakeHost.written.length = 0;
    await page.locator('#settings-save').click();
    await page.locator('.form-status').getByText('Saved 2 settings to Workspace settings.').waitFor();
    assert.deepEqual(fakeHost.written.map((w) => [w.key, w.value]), [['retention.monthly', 6], ['offsite.retention', {}]]);
    await close();
  });

  test('the off-site rotation: a key the panel does not know is never dropped: the save is refused and says why', async () => {
    const { page, close } = await openPage();
    const db = state.databases[0];
    fakeHost.ownRetention.set(db.id, { monthly: 24, hourly: 48 });
    try {
      await notify(page, 'panel/state/didChange', state);
      await typeInto(page, 'offsite.retention.daily', '7');
      fakeHost.written.length = 0;
      await page.locator('#settings-save').click();
      await page.locator('#f-offsite-retention-error').getByText(/^Off-site rotation has an unknown key hourly .*remove it in settings\.json first/).waitFor();
      assert.match(await page.locator('.form-status').innerText(), /Not saved: 1 setting needs fixing/);
      assert.deepEqual(fakeHost.written, []);
      await page.locator('fieldset', { hasText: 'Off-site copy' }).screenshot({ path: path.join(results, 'panel-offsite-unknown-key.png') });
    } finally {
      fakeHost.ownRetention.clear();
    }
    await close();
  });

  test('a failed Request rejects the caller: the preview says why', async () => {
    const { page, close } = await openPage();
    await page.evaluate(() => (window.__failNext['settings/retention/preview'] = 'the backups could not be listed'));
    await notify(page, 'panel/state/didChange', state);
    await page.locator('#retention-preview').getByText('Preview unavailable: the backups could not be listed').waitFor();
    await close();
  });

  test('live progress shows phase, bytes and percent, then the result', async () => {
    const { page, close } = await openPage();
    await notify(page, 'panel/state/didChange', state);
    await notify(page, 'panel/progress/didChange', { running: [{ id: 1, title: 'Lifeboat: backing up app.db', phase: 'compressing', done: 3 * 1048576, total: 12 * 1048576 }] });
    const text = await page.locator('#progress').innerText();
    assert.match(text, /backing up app\.db: compressing · 3\.0 MB of 12 MB · 25%/);
    assert.equal(await page.locator('#progress [role=progressbar]').getAttribute('aria-valuenow'), '25');
    await notify(page, 'panel/progress/didChange', { running: [], last: { id: 1, title: 'Lifeboat: backing up app.db', phase: 'stopped', done: 0, total: 0, result: { ok: false, message: 'disk full' } } });
    assert.match(await page.locator('#progress').innerText(), /backing up app\.db: failed: disk full/);
    await close();
  });

  test('the database selector switches every section to the other database', async () => {
    const { page, close } = await openPage();
    await notify(page, 'panel/state/didChange', state);
    await page.locator('#db-select').evaluate((e) => {
      e.value = '/home/dev/shop/analytics.sqlite';
      e.dispatchEvent(new Event('change'));
    });
    assert.match(await page.locator('#stats').innerText(), /BACKUPS\s+0\b/i);
    assert.match(await page.locator('table.history').innerText(), /No backups yet/);
    assert.match((await page.locator('svg.chart').textContent()) ?? '', /No backups yet/);
    await clearSent(page);
    await page.locator('#backup-now').click();
    assert.equal((await sent(page))[0].params.db, '/home/dev/shop/analytics.sqlite');
    await close();
  });

  test('no database configured: the panel says how to protect one', async () => {
    const { page, close } = await openPage();
    await notify(page, 'panel/state/didChange', { databases: [], trusted: false, scopes: ['workspace', 'user'], now: NOW });
    assert.match(await page.locator('#empty').innerText(), /No database is protected/);
    assert.match(await page.locator('#banner').innerText(), /Restricted Mode/);
    await close();
  });

  let renderMs;
  test('2,000 history rows: render time measured', async () => {
    const { page, close } = await openPage();
    const big = panelState(2000);
    const samples = [];
    for (let i = 0; i < 5; i++) {
      // Alternate the row count so every sample really rebuilds the table.
      const s = i % 2 ? panelState(40) : big;
      await notify(page, 'panel/state/didChange', s);
      await page.waitForTimeout(50);
      const ms = await page.evaluate(async (data) => {
        const t0 = performance.now();
        window.dispatchEvent(new MessageEvent('message', { data: { kind: 'notification', method: 'panel/state/didChange', params: data } }));
        document.body.getBoundingClientRect();
        void document.querySelector('table.history tbody tr:last-child')?.getBoundingClientRect();
        await new Promise((r) => requestAnimationFrame(() => setTimeout(r, 0)));
        return performance.now() - t0;
      }, big);
      samples.push(ms);
      assert.equal(await page.locator('table.history').getAttribute('aria-rowcount'), '2001');
    }
    // Every row is reachable: scrolled to the end, the oldest backup is in the DOM and in view.
    const oldest = big.databases[0].history.at(-1).id;
    await page.locator('.table-wrap').evaluate((e) => (e.scrollTop = e.scrollHeight));
    const last = page.locator(`table.history tr[data-id="${oldest}"]`);
    await last.waitFor();
    assert.ok(await last.isVisible());
    assert.equal(await last.getAttribute('aria-rowindex'), '2001');
    const rowBox = await last.boundingBox();
    const wrapBox = await page.locator('.table-wrap').boundingBox();
    assert.ok(rowBox.y + rowBox.height <= wrapBox.y + wrapBox.height + 1 && rowBox.y >= wrapBox.y, 'the last row sits inside the scroll box');
    samples.sort((a, b) => a - b);
    renderMs = samples[Math.floor(samples.length / 2)];
    console.log(`  2,000 rows: state notification to painted frame, median of ${samples.length}: ${renderMs.toFixed(1)} ms (samples ${samples.map((x) => x.toFixed(0)).join(', ')} ms; budget 200 ms)`);
    await close();
  });

  for (const theme of ['light', 'dark', 'high-contrast']) {
    test(`screenshot in the ${theme} theme`, async () => {
      const { page, errors, close } = await openPage(theme, { width: 1280, height: 1000 });
      state = panelState(60);
      await notify(page, 'panel/state/didChange', state);
      await notify(page, 'panel/progress/didChange', { running: [{ id: 3, title: 'Lifeboat: verifying app-20260315T0600Z-scheduled.zip', phase: 'verifying', done: 7 * 1048576, total: 11 * 1048576 }] });
      await page.locator('#schedule-preview li').first().waitFor();
      await page.locator('#retention-preview p').first().waitFor();
      await typeInto(page, 'offsite.retention.monthly', '24');
      await typeInto(page, 'retention.keepWithin', '2x');
      await page.locator('#f-retention-keepWithin-error').getByText(/duration/).waitFor();
      await page.waitForFunction(() => document.querySelector('#f-offsite-retention-keepWithin')?.getAttribute('placeholder') === 'same as local: 2x');
      // The typing scrolled the form into view; the picture starts at the top.
      await page.evaluate(() => window.scrollTo(0, 0));
      await page.evaluate(() => document.fonts.ready);
      const file = path.join(results, `panel-${theme}.png`);
      await page.screenshot({ path: file, fullPage: true });
      assert.ok(statSync(file).size > 10_000, 'a real picture');
      await page.locator('fieldset', { hasText: 'Off-site copy' }).screenshot({ path: path.join(results, `panel-offsite-${theme}.png`) });
      assert.deepEqual(errors, []);
      assert.deepEqual(await page.evaluate(() => window.__violations), [], 'no CSP violations');
      await close();
    });
  }

  // The backup and comparison views (webview/inspect.ts), the other app of the same bundle.
  const openInspect = (theme = 'dark', viewport = { width: 1200, height: 900 }) => openPage(theme, viewport, 'inspect');
  const rowsRequests = async (page, method) => (await sent(page)).filter((m) => m.method === method).map((m) => m.params);

  test('inspect: says inspect/app/ready first, then draws a backup: tables, counts, schema, the first rows', async () => {
    const { page, errors, close } = await openInspect();
    await page.waitForTimeout(100);
    assert.deepEqual(await sent(page), [{ kind: 'command', method: 'inspect/app/ready' }]);
    await notify(page, 'inspect/state/didChange', fakeHost.browseState());
    await page.locator('#rows-page').getByText('Rows 1–100 of 250').waitFor();
    assert.deepEqual(await rowsRequests(page, 'inspect/table/rows'), [{ table: 'customers', offset: 0 }]);
    const tables = await page.locator('#tables tbody tr').allInnerTexts();
    assert.deepEqual(tables.map((t) => t.split('\t').slice(0, 2).join(' ')), ['customers 250', 'kv 20', 'log 6', 'orders 100']);
    assert.match(await page.locator('h1').innerText(), /data\/shop\.db\s+read-only/);
    assert.match(await page.locator('#schema').innerText(), /Triggers \(1\)\s+orders_log on orders/);
    // NULL and BLOBs read apart from text.
    assert.equal(await page.locator('#rows-table tbody tr').nth(0).locator('td').nth(2).innerText(), 'NULL');
    assert.match(await page.locator('#rows-table tbody tr').nth(2).locator('td').nth(2).innerText(), /^x'ffd8ffe000104a464946…' 2,048 bytes$/);
    assert.equal(await page.locator('#rows-prev').isDisabled(), true);
    await page.locator('#rows-next').click();
    await page.locator('#rows-page').getByText('Rows 101–200 of 250').waitFor();
    await page.locator('#tables button.link', { hasText: /^kv$/ }).click();
    await page.locator('#rows-page').getByText('Rows 1–20 of 20').waitFor();
    assert.deepEqual((await rowsRequests(page, 'inspect/table/rows')).slice(1), [{ table: 'customers', offset: 100 }, { table: 'kv', offset: 0 }]);
    assert.equal(await page.locator('#rows-next').isDisabled(), true);
    await page.locator('#compare-current').click();
    await waitSent(page, (m) => m.method === 'inspect/backup/compareCurrent', 'Compare with Current Database');
    assert.deepEqual(errors, []);
    assert.deepEqual(await page.evaluate(() => window.__violations), [], 'no CSP violations');
    await close();
  });

  test('inspect: a comparison shows the counts, the schema changes and the changed rows side by side; Restore This Table asks the host', async () => {
    const { page, errors, close } = await openInspect();
    await notify(page, 'inspect/state/didChange', fakeHost.compareState());
    // The first changed table is shown; Show Rows switches.
    await page.locator('#diff-page').getByText('Page 1 of 1').waitFor();
    const rows = await page.locator('#changes tbody tr').allInnerTexts();
    assert.deepEqual(rows.map((r) => r.split('\t').slice(0, 5).join(' | ')), [
      'customers | 3 | 3 | 2 | rowid (id)',
      'kv | 0 | 1 | 0 | primary key (k)',
      'log | 2 | 1 | 0 | none (compared as multisets)',
      'orders | 1 | 120 | 3 | rowid (id)',
    ]);
    const schema = await page.locator('#schema-changes').innerText();
    assert.match(schema, /Added table extra_t/);
    assert.match(schema, /Removed index idx_orders_customer/);
    assert.match(schema, /Changed table kv: columns added: extra/);
    await page.locator('#changes tr[data-table="orders"] button', { hasText: 'Show Rows' }).click();
    await page.locator('#diff-page').getByText('Page 1 of 3').waitFor();
    assert.equal(await page.locator('#diff-table tbody tr.removed').count(), 50);
    assert.equal(await page.locator('#diff-table tbody tr.changed').count(), 3);
    assert.equal(await page.locator('#diff-table td.diff.old').count(), 3, 'the old totals are marked');
    assert.equal(await page.locator('#diff-table td.diff.new').count(), 3, 'the new totals are marked');
    await page.locator('#diff-next').click();
    await page.locator('#diff-page').getByText('Page 2 of 3').waitFor();
    assert.deepEqual((await rowsRequests(page, 'inspect/diff/rows')).map((p) => `${p.table}@${p.offset}`), ['customers@0', 'orders@0', 'orders@50']);
    await page.locator('button[data-restore="orders"]').click();
    await waitSent(page, (m) => m.method === 'inspect/table/restore' && m.params.table === 'orders', 'Restore This Table');
    // A refused restore shows the host's reason.
    await page.locator('button[data-restore="kv"]').click();
    await page.locator('#notice').getByText(/defined differently/).waitFor();
    assert.equal(await page.locator('#notice').getAttribute('role'), 'alert');
    assert.deepEqual(errors, []);
    assert.deepEqual(await page.evaluate(() => window.__violations), [], 'no CSP violations');
    await close();
  });

  test('inspect: rows picked with checkboxes across pages go to the host as one Restore Selected Rows, with their keys and kinds', async () => {
    const { page, errors, close } = await openInspect();
    await notify(page, 'inspect/state/didChange', fakeHost.compareState());
    await page.locator('#changes tr[data-table="orders"] button', { hasText: 'Show Rows' }).click();
    await page.locator('#diff-page').getByText('Page 1 of 3').waitFor();
    assert.equal(await page.locator('#restore-rows').isDisabled(), true, 'nothing selected: nothing to restore');
    assert.match(await page.locator('#selected-count').innerText(), /Select rows to restore them/);
    await page.locator('#diff-table tr.changed input.pick').nth(1).check();
    await page.locator('#diff-table tr.removed input.pick').first().check();
    await page.locator('#diff-table tr.added input.pick').first().check();
    await page.locator('#selected-count').getByText('3 rows selected').waitFor();
    await page.locator('#diff-table tr.added input.pick').first().uncheck();
    await page.locator('#selected-count').getByText('2 rows selected').waitFor();
    // The selection lasts across pages of the same table.
    await page.locator('#diff-next').click();
    await page.locator('#diff-page').getByText('Page 2 of 3').waitFor();
    await page.locator('#diff-table tr.removed input.pick').nth(2).check();
    await page.locator('#selected-count').getByText('3 rows selected').waitFor();
    await page.locator('#diff-prev').click();
    await page.locator('#diff-page').getByText('Page 1 of 3').waitFor();
    assert.equal(await page.locator('#diff-table tr.changed input.pick').nth(1).isChecked(), true, 'still checked on the way back');
    assert.equal(await page.locator('#pick-page').isChecked(), false);
    await page.locator('#restore-rows').click();
    const req = await waitSent(page, (m) => m.method === 'inspect/rows/restore', 'Restore Selected Rows');
    assert.deepEqual(req.params, { table: 'orders', rows: [{ key: [2], kind: 'changed' }, { key: [200], kind: 'removed' }, { key: [252], kind: 'removed' }] });
    // Restored: the selection is cleared.
    await page.locator('#selected-count').getByText(/Select rows to restore them/).waitFor();
    assert.equal(await page.locator('#diff-table input.pick:checked').count(), 0);
    // Select every row of the page at once.
    await page.locator('#pick-page').check();
    await page.locator('#selected-count').getByText('54 rows selected').waitFor();
    await page.locator('#clear-selection').click();
    await page.locator('#selected-count').getByText(/Select rows/).waitFor();
    // A table compared as a multiset has no keys: no checkboxes.
    await page.locator('#changes tr[data-table="log"] button', { hasText: 'Show Rows' }).click();
    await page.locator('#h-rows').getByText(/log/).waitFor();
    await page.locator('#diff-table').waitFor();
    assert.equal(await page.locator('#diff-table input.pick').count(), 0);
    assert.equal(await page.locator('#restore-rows').count(), 0);
    // A refusal shows the host's reason.
    await page.locator('#changes tr[data-table="kv"] button', { hasText: 'Show Rows' }).click();
    await page.locator('#h-rows').getByText(/kv/).waitFor();
    await page.locator('#diff-table tr.removed input.pick').first().check();
    await page.locator('#restore-rows').click();
    await page.locator('#notice').getByText(/defined differently/).waitFor();
    assert.equal(await page.locator('#diff-table input.pick:checked').count(), 1, 'a refused restore keeps the selection');
    assert.deepEqual(errors, []);
    assert.deepEqual(await page.evaluate(() => window.__violations), [], 'no CSP violations');
    await page.screenshot({ path: path.join(results, 'inspect-rows-headless.png') });
    await close();
  });

  test('inspect: a comparison of two backups offers no Restore This Table and says why', async () => {
    const { page, close } = await openInspect();
    await notify(page, 'inspect/state/didChange', fakeHost.compareState(false));
    await page.locator('#no-restore').getByText(/only a comparison with the current database restores a table/).waitFor();
    assert.equal(await page.locator('button[data-restore]').count(), 0);
    await page.locator('#diff-table').waitFor();
    assert.equal(await page.locator('#diff-table input.pick').count(), 0, 'no rows to pick either');
    assert.equal(await page.locator('#restore-rows').count(), 0);
    await close();
  });

  for (const theme of ['light', 'dark', 'high-contrast']) {
    test(`inspect: screenshots in the ${theme} theme`, async () => {
      const { page, errors, close } = await openInspect(theme, { width: 1100, height: 800 });
      await notify(page, 'inspect/state/didChange', fakeHost.browseState());
      await page.locator('#rows-page').getByText('Rows 1–100 of 250').waitFor();
      await page.evaluate(() => document.fonts.ready);
      await page.screenshot({ path: path.join(results, `inspect-backup-${theme}.png`) });
      const done = fakeHost.compareState();
      done.notice = { ok: true, table: 'orders', message: "Restored table orders of data/shop.db: it holds the backup's 100 rows now (it had 95).", details: ['Pre-restore backup: shop-20260315T120000000Z-pre-restore', 'Foreign key check: no violations.'] };
      await notify(page, 'inspect/state/didChange', done);
      await page.locator('#diff-page').getByText('Page 1 of 1').waitFor();
      await page.screenshot({ path: path.join(results, `inspect-compare-${theme}.png`) });
      assert.deepEqual(errors, []);
      assert.deepEqual(await page.evaluate(() => window.__violations), [], 'no CSP violations');
      await close();
    });
  }

  for (const t of tests) {
    if (grep && !grep.test(t.name)) continue;
    state = panelState(40);
    const started = Date.now();
    try {
      await t.fn();
      passed++;
      console.log(`ok   ${t.name} (${Date.now() - started} ms)`);
    } catch (e) {
      failed++;
      console.log(`FAIL ${t.name}\n     ${String(e?.stack ?? e).split('\n').slice(0, 6).join('\n     ')}`);
    }
  }
  if (renderMs !== undefined) console.log(`render time of 2,000 history rows: ${renderMs.toFixed(1)} ms`);
} catch (e) {
  failed++;
  console.log(`FAIL setup: ${e?.stack ?? e}`);
} finally {
  await cleanup();
}
mkdirSync(results, { recursive: true });
writeFileSync(path.join(results, 'summary-webview.json'), JSON.stringify({ suite: 'panel in headless Chromium', passed, failed }));
console.log(`${passed} passed, ${failed} failed`);
process.exit(failed ? 1 : 0);

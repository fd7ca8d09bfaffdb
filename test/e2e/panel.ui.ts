// The Settings and Statistics panel as a person sees it in the workbench: opened from the
// Command Palette, it shows the statistics of the backups on disk, and a retention count
// changed in its form and saved lands in .vscode/settings.json, as does the off-site
// rotation (one object setting with only the keys set). Runs after lifeboat.ui.ts
// (which leaves the fixture clean) and leaves it clean again.
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import type { FrameLocator, Page } from 'playwright-core';
import { openViewContainer, runCommand, until, waitForTree, type UiCheck } from '../../scripts/vscode/harness';
import { backupIds, snapshotIds } from '../fixtures/backupFiles';
import { seedBackups } from '../fixtures/seedBackups';

/** The panel app's document: the webview's outer iframe, then its active frame. */
function panelFrame(page: Page): FrameLocator {
  return page.frameLocator('iframe.webview.ready').last().frameLocator('iframe#active-frame');
}

function settingsFile(ws: string): string {
  return path.join(ws, '.vscode', 'settings.json');
}

export const checks: UiCheck[] = [
  {
    name: 'Lifeboat panel: shows the statistics of the backups on disk',
    timeoutMs: 90_000,
    async run({ page, dirs, screenshot }) {
      const ws = dirs.workspace;
      mkdirSync(path.join(ws, '.vscode'), { recursive: true });
      writeFileSync(settingsFile(ws), JSON.stringify({ 'lifeboat.databases': ['app.db'], 'lifeboat.schedule.daily': true, 'lifeboat.schedule.time': '02:00' }, null, 2));
      const day = 86_400_000;
      const now = Date.now();
      await seedBackups(path.join(ws, 'app.db'), path.join(ws, 'backups'), [
        { at: new Date(now - 6 * day), kind: 'scheduled' },
        { at: new Date(now - 2 * day), kind: 'migration' },
        { at: new Date(now - 1 * day), kind: 'scheduled' },
      ]);
      // Format v2, the default: three snapshot manifests.
      const onDisk = backupIds(path.join(ws, 'backups'));
      assert.equal(onDisk.length, 3);
      assert.deepEqual(snapshotIds(path.join(ws, 'backups')), onDisk);
      // The extension has read the settings and the backups once its tree lists all three.
      await waitForTree(page, (rows) => rows[0]?.label === 'app.db' && rows.filter((r) => r.level === 3).length === 3, 'the tree does not list app.db and its 3 backups', 30_000);
      await runCommand(page, 'Lifeboat: Open Settings and Statistics');
      const app = panelFrame(page);
      const stats = app.locator('#stats');
      await stats.getByText(/^3$/).first().waitFor({ timeout: 45_000 });
      const text = await stats.innerText();
      assert.match(text, /BACKUPS\s+3\b/i);
      // The tiers are the core's (tiersOf): the migration backup under Migrations, the two scheduled ones in some automatic tier.
      assert.match(text, /Migrations\s+1\b/);
      const automatic = [...text.matchAll(/\b(Daily|Weekly|Monthly)\s+(\d+)/g)].reduce((n, m) => n + Number(m[2]), 0);
      assert.equal(automatic, 2, text);
      assert.match(text, /daily 02:00/);
      assert.match(text, /healthy/);
      assert.equal(await app.locator('table.history').getAttribute('aria-rowcount'), '4');
      assert.equal(await app.locator('table.history tbody tr[data-id]').count(), 3);
      assert.match((await app.locator('svg.chart').getAttribute('aria-label')) ?? '', /3 backups/);
      assert.equal(await app.locator('#db-select').evaluate((e) => (e as HTMLElement & { value: string }).value), path.join(ws, 'app.db'));
      await screenshot('panel-vscode');
    },
  },
  {
    name: 'Lifeboat panel: a retention count saved in the form lands in .vscode/settings.json',
    timeoutMs: 60_000,
    async run({ page, dirs, screenshot }) {
      const app = panelFrame(page);
      const input = app.locator('#f-retention-daily input');
      await input.fill('');
      await input.pressSequentially('9');
      // The live preview answers from the real backups under the edited policy.
      await app.locator('#retention-preview').getByText(/Keeps (all )?\d+/).waitFor();
      await app.locator('#settings-save').click();
      await app.locator('.form-status').getByText(/Saved 1 setting to Workspace settings/).waitFor();
      const json = await until(
        page,
        () => (existsSync(settingsFile(dirs.workspace)) ? (JSON.parse(readFileSync(settingsFile(dirs.workspace), 'utf8')) as Record<string, unknown>) : {}),
        (j) => j['lifeboat.retention.daily'] === 9,
        'lifeboat.retention.daily is not 9 in .vscode/settings.json',
        15_000,
      );
      assert.deepEqual(json['lifeboat.databases'], ['app.db'], 'the other settings are untouched');
      await screenshot('panel-vscode-saved');
    },
  },
  {
    name: 'Lifeboat panel: the off-site rotation saved in the form lands in .vscode/settings.json as one object, {} when cleared',
    timeoutMs: 60_000,
    async run({ page, dirs, screenshot }) {
      const app = panelFrame(page);
      const section = app.locator('fieldset', { hasText: 'Off-site copy' });
      const daily = app.locator('#f-offsite-retention-daily');
      await section.scrollIntoViewIfNeeded();
      // Empty fields take the local value, which the placeholder names (9, saved by the check before).
      assert.equal(await daily.getAttribute('placeholder'), 'same as local: 9');
      assert.equal(await app.locator('#f-offsite-retention-keepWithin').getAttribute('placeholder'), 'same as local: 2d');
      const settings = () => (existsSync(settingsFile(dirs.workspace)) ? (JSON.parse(readFileSync(settingsFile(dirs.workspace), 'utf8')) as Record<string, unknown>) : {});
      const same = (a: unknown, b: unknown) => JSON.stringify(a) === JSON.stringify(b);
      for (const [key, text] of [['daily', '7'], ['monthly', '24']]) {
        const input = app.locator(`#f-offsite-retention-${key} input`);
        await input.fill('');
        await input.pressSequentially(text);
      }
      await app.locator('#settings-save').click();
      await app.locator('.form-status').getByText('Saved 1 setting to Workspace settings.').waitFor();
      await until(page, settings, (j) => same(j['lifeboat.offsite.retention'], { daily: 7, monthly: 24 }), 'lifeboat.offsite.retention is not {daily: 7, monthly: 24}', 15_000);
      await section.scrollIntoViewIfNeeded();
      await screenshot('panel-vscode-offsite-rotation');
      for (const key of ['daily', 'monthly']) await app.locator(`#f-offsite-retention-${key} input`).fill('');
      await app.locator('#settings-save').click();
      await app.locator('.form-status').getByText('Saved 1 setting to Workspace settings.').waitFor();
      const json = await until(page, settings, (j) => same(j['lifeboat.offsite.retention'], {}), 'lifeboat.offsite.retention is not {} once cleared', 15_000);
      assert.equal(json['lifeboat.retention.daily'], 9, 'the other settings are untouched');
    },
  },
  {
    name: 'Lifeboat panel: cleanup',
    async run({ page, dirs }) {
      await runCommand(page, 'View: Close All Editors').catch(() => undefined);
      rmSync(path.join(dirs.workspace, '.vscode'), { recursive: true, force: true });
      // The backups go once the extension has seen that no database is configured (the
      // welcome view is back), so nothing it still runs writes into them again.
      await openViewContainer(page, 'Lifeboat');
      await page.locator('.pane-body .welcome-view-content .monaco-button', { hasText: 'Protect a Database' }).waitFor({ state: 'visible', timeout: 20_000 });
      rmSync(path.join(dirs.workspace, 'backups'), { recursive: true, force: true });
      await openViewContainer(page, 'Explorer');
    },
  },
];

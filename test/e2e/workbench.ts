// Playwright checks of what a person sees in the workbench (run by scripts/vscode/run.mjs).
import assert from 'node:assert/strict';
import {
  openPalette,
  openViewContainer,
  paletteLabels,
  paletteRow,
  quickInput,
  readStatusBar,
  readTreeRows,
  runCommand,
  until,
  type UiCheck,
} from '../../scripts/vscode/harness';

const SETTINGS_TITLE = 'Preferences: Open Settings (UI)';

export const checks: UiCheck[] = [
  {
    name: 'the workbench loads with the fixture workspace in the Explorer',
    async run({ page, screenshot }) {
      await page.locator('.monaco-workbench .part.activitybar').waitFor({ state: 'visible' });
      await openViewContainer(page, 'Explorer');
      const appDb = page.locator('.explorer-folders-view .monaco-list-row', { hasText: 'app.db' });
      await appDb.waitFor({ state: 'visible' });
      const rows = await page.locator('.explorer-folders-view .monaco-list-row .label-name').allTextContents();
      assert.deepEqual(rows.map((r) => r.trim()).sort(), ['README.md', 'app.db']);
      await screenshot('workbench');
    },
  },
  {
    name: 'F1 opens the command palette and it lists a built-in command',
    async run({ page }) {
      await openPalette(page, 'Open Settings (UI)');
      await paletteRow(page, SETTINGS_TITLE).waitFor({ state: 'visible' });
      const labels = await paletteLabels(page);
      assert.ok(labels.includes(SETTINGS_TITLE), `palette rows: ${labels.join(' | ')}`);
      await page.keyboard.press('Escape');
      await quickInput(page).waitFor({ state: 'hidden' });
    },
  },
  {
    name: 'a palette command runs by its exact title (Settings editor opens)',
    async run({ page }) {
      await runCommand(page, SETTINGS_TITLE);
      await page.locator('.settings-editor').waitFor({ state: 'visible' });
      // VS Code 1.13x opens the Settings editor in a modal editor (workbench.editor.useModal
      // "some") titled like its tab; older ones open it as the active tab.
      const modal = page.locator('.modal-editor-part[role="dialog"]');
      const titles = async (): Promise<string[]> =>
        (await page.locator('.modal-editor-part #modal-editor-title .label-name, .tabs-container .tab.active .label-name').allTextContents()).map((t) => t.trim());
      await until(page, titles, (t) => t.includes('Settings'), 'no editor titled "Settings" (modal or active tab)', 15_000);
      if (await modal.isVisible()) {
        await modal.locator('.action-label.codicon-close').first().click();
        await modal.waitFor({ state: 'hidden' });
      }
    },
  },
  {
    name: 'tree rows of the Explorer read as label and description',
    async run({ page }) {
      // readTreeRows is written for the Lifeboat tree; the Explorer's list is the same widget.
      await openViewContainer(page, 'Explorer');
      const label = await page.locator('.explorer-folders-view .monaco-list').first().getAttribute('aria-label');
      assert.ok(label, 'the Explorer list has no aria-label');
      const rows = await readTreeRows(page, label);
      assert.deepEqual(rows.map((r) => r.label).sort(), ['README.md', 'app.db']);
      assert.ok(rows.every((r) => r.level === 1));
    },
  },
  {
    name: 'the status bar reads as entries with ids and text',
    async run({ page }) {
      const items = await readStatusBar(page);
      const notifications = items.find((i) => i.id === 'status.notifications');
      assert.ok(notifications, `status bar ids: ${items.map((i) => i.id).join(', ')}`);
      assert.equal(notifications.side, 'right');
      assert.equal(notifications.ariaLabel, 'Notifications');
    },
  },
];

import * as path from 'node:path';
import * as vscode from 'vscode';
import type { BackupsModel } from './backupsModel';
import type { CoreHost } from './coreLoader';
import type { Folders } from './folders';
import { formatLocal, formatSize } from './format';

/**
 * The "Settings and Statistics" panel host. For now a read-only webview (no scripts)
 * with each database's statistics and a link to the settings; the panel app of issue 6
 * replaces this file. `show` reveals the one panel, creating it when needed; safe to repeat.
 */
export class PanelHost implements vscode.Disposable {
  private panel: vscode.WebviewPanel | undefined;
  private readonly subs: vscode.Disposable[] = [];

  constructor(
    private readonly extensionUri: vscode.Uri,
    private readonly core: CoreHost,
    private readonly folders: Folders,
    private readonly model: BackupsModel,
  ) {
    this.subs.push(model.onDidChange(() => void this.render()));
  }

  async show(): Promise<void> {
    if (this.panel) {
      this.panel.reveal();
    } else {
      this.panel = vscode.window.createWebviewPanel('lifeboat.panel', 'Lifeboat: Settings and Statistics', vscode.ViewColumn.Active, {
        enableScripts: false,
        enableCommandUris: ['workbench.action.openSettings'],
        localResourceRoots: [vscode.Uri.joinPath(this.extensionUri, 'dist')],
      });
      this.panel.iconPath = vscode.Uri.joinPath(this.extensionUri, 'media', 'icon.png');
      this.panel.onDidDispose(() => (this.panel = undefined));
    }
    await this.render();
  }

  private async render(): Promise<void> {
    const panel = this.panel;
    if (!panel) return;
    const { core } = await this.core.get();
    const sections: string[] = [];
    for (const state of await this.folders.resolve()) {
      if (!state.databases.length) continue;
      const listing = await this.model.listing(state);
      const log = await new core.Catalog(state.dir).log.read(500).catch(() => []);
      for (const db of state.databases) {
        const records = listing.records.filter((r) => r.manifest.source.path === db);
        const s = core.computeStats(records, log.filter((e) => e.db === db), new Date());
        const row = (k: string, v: string) => `<tr><th>${esc(k)}</th><td>${esc(v)}</td></tr>`;
        sections.push(`<h2>${esc(path.basename(db))}</h2><table>
${row('Database', db)}
${row('Backup directory', state.dir)}
${row('Backups', `${s.count} (${s.verified} verified), ${formatSize(s.totalSize)}`)}
${row('Newest verified', s.newestVerified ? formatLocal(s.newestVerified) : 'none')}
${row('Oldest', s.oldest ? formatLocal(s.oldest) : 'none')}
${row('Last success', s.lastSuccess ? formatLocal(s.lastSuccess.time) : 'none')}
${row('Last failure', s.lastFailure ? `${formatLocal(s.lastFailure.time)}: ${s.lastFailure.reason}` : 'none')}
${row('Restore-tested in the last 30 days', `${Math.round(s.restoreTestCoverage * 100)}%`)}
${row('Schedule', state.settings.cron ? `cron ${state.settings.cron}` : state.settings.scheduleDaily ? `daily at ${state.settings.backupTime}` : 'off')}
${row('Retention', `${state.settings.retention.daily} daily, ${state.settings.retention.weekly} weekly, ${state.settings.retention.monthly} monthly, everything within ${state.settings.retention.keepWithin || '—'}, ${state.settings.retention.keepEventBackups} event backups`)}
</table>`);
      }
    }
    const settingsLink = `command:workbench.action.openSettings?${encodeURIComponent(JSON.stringify(['lifeboat.']))}`;
    panel.webview.html = `<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; style-src 'unsafe-inline'; img-src ${panel.webview.cspSource};">
<style>body{font-family:var(--vscode-font-family);color:var(--vscode-foreground);padding:0 16px}th{text-align:left;padding-right:16px;font-weight:600;vertical-align:top}td,th{padding-bottom:4px}a{color:var(--vscode-textLink-foreground)}</style>
<title>Lifeboat</title></head><body><h1>Lifeboat</h1>
<p><a href="${settingsLink}">Open Lifeboat's settings</a></p>
${sections.join('\n') || '<p>No database is protected yet. Run <b>Lifeboat: Protect Database...</b>.</p>'}
</body></html>`;
  }

  dispose(): void {
    for (const s of this.subs) s.dispose();
    this.panel?.dispose();
  }
}

function esc(s: string): string {
  return s.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

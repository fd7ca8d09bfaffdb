/**
 * The Settings and Statistics panel app (runs in the webview; bundled to dist/webview.js,
 * which also holds the backup and comparison views' app, webview/inspect.ts).
 * Waits for nothing: it says `panel/app/ready`, then renders each StateNotification and
 * ProgressNotification it receives. Everything the user does goes to the host as a
 * Command or a Request (webview/protocol.ts).
 */
import '@vscode-elements/elements/dist/vscode-button/index.js';
import '@vscode-elements/elements/dist/vscode-checkbox/index.js';
import '@vscode-elements/elements/dist/vscode-option/index.js';
import '@vscode-elements/elements/dist/vscode-single-select/index.js';
import '@vscode-elements/elements/dist/vscode-textfield/index.js';
import type { DatabaseView, OperationView, PanelState, ProgressState } from './protocol';
import type { Tier } from '../src/core/model';
import { HostConnection } from './host';
import { h } from './dom';
import { formatRelative, formatShare, formatSize, formatWhen } from './format';
import { sizeChart } from './chart';
import { HistoryTable, type Sort } from './history';
import { SettingsForm } from './settingsForm';
import { InspectApp } from './inspect';
import { CSS } from './styles';

interface SavedState {
  selected?: string;
  sort?: Sort;
}

const TIER_ORDER: Tier[] = ['daily', 'weekly', 'monthly', 'manual', 'migrations'];
const TIER_LABEL: Record<Tier, string> = { daily: 'Daily', weekly: 'Weekly', monthly: 'Monthly', manual: 'Manual', migrations: 'Migrations' };

class App {
  private state: PanelState | undefined;
  private progressState: ProgressState = { running: [] };
  private saved: SavedState;
  private readonly dbSelect: HTMLElement & { value: string };
  private readonly banner = h('div', { id: 'banner' });
  private readonly progress = h('section', { class: 'progress', id: 'progress', 'aria-live': 'polite', 'aria-label': 'Running operations' });
  private readonly stats = h('div', { class: 'cards', id: 'stats' });
  private readonly chart = h('div', { id: 'chart' });
  private readonly table: HistoryTable;
  private readonly form: SettingsForm;
  private readonly main: HTMLElement;
  private readonly empty = h('div', { class: 'empty-state', id: 'empty' });
  private dbKeys = '';

  constructor(private readonly host: HostConnection) {
    this.saved = (host.api.getState() as SavedState | undefined) ?? {};
    this.dbSelect = h('vscode-single-select', { id: 'db-select', 'aria-label': 'Database', onchange: () => this.select(this.dbSelect.value) }) as unknown as HTMLElement & { value: string };
    const button = (id: string, label: string, method: 'backups/database/backUp' | 'backups/database/verifyAll' | 'backups/database/rotate', secondary = false) =>
      h('vscode-button', { id, secondary, onclick: () => this.selected && host.command({ kind: 'command', method, params: { db: this.selected.id } }) }, label);
    const header = h(
      'header',
      { class: 'top' },
      h('h1', {}, 'Lifeboat'),
      h('div', { class: 'db' }, h('label', { for: 'db-select' }, 'Database'), this.dbSelect),
      h(
        'div',
        { class: 'buttons', role: 'group', 'aria-label': 'Actions' },
        button('backup-now', 'Back Up Now', 'backups/database/backUp'),
        button('verify-all', 'Verify All', 'backups/database/verifyAll', true),
        button('rotate-now', 'Rotate Now', 'backups/database/rotate', true),
      ),
    );
    this.table = new HistoryTable(
      this.saved.sort ?? { key: 'created', dir: 'desc' },
      (id, action) => this.selected && host.command({ kind: 'command', method: 'backups/backup/act', params: { db: this.selected.id, id, action } }),
      (sort) => this.persist({ sort }),
    );
    this.table.el.tabIndex = 0;
    this.table.el.setAttribute('aria-label', 'Backup history, scrollable');
    this.form = new SettingsForm(host, ['workspace', 'user']);
    this.main = h(
      'main',
      {},
      h('section', { 'aria-labelledby': 'h-stats' }, h('h2', { id: 'h-stats' }, 'Statistics'), this.stats),
      h(
        'section',
        { 'aria-labelledby': 'h-chart' },
        h('h2', { id: 'h-chart' }, 'Backup size over time'),
        this.chart,
        h('div', { class: 'legend', 'aria-hidden': 'true' }, h('span', {}, h('span', { class: 'sw ok' }), 'backup'), h('span', {}, h('span', { class: 'sw failed' }), 'failed backup or verification')),
      ),
      h('section', { 'aria-labelledby': 'h-history' }, h('h2', { id: 'h-history' }, 'History'), this.table.el),
      h('section', { 'aria-labelledby': 'h-settings' }, h('h2', { id: 'h-settings' }, 'Settings'), this.form.el),
    );
    this.main.hidden = true;
    this.empty.append(h('p', { class: 'muted' }, 'Loading…'));
    document.body.append(header, this.banner, this.progress, this.main, this.empty);
    host.on('panel/state/didChange', (s) => this.onState(s));
    host.on('panel/progress/didChange', (p) => this.onProgress(p));
    host.command({ kind: 'command', method: 'panel/app/ready' });
  }

  private get selected(): DatabaseView | undefined {
    const dbs = this.state?.databases ?? [];
    return dbs.find((d) => d.id === this.saved.selected) ?? dbs[0];
  }

  private persist(change: Partial<SavedState>): void {
    this.saved = { ...this.saved, ...change };
    this.host.api.setState(this.saved);
  }

  private select(id: string): void {
    if (id === this.selected?.id) return;
    this.persist({ selected: id });
    this.render();
  }

  private onState(s: PanelState): void {
    this.state = s;
    const keys = s.databases.map((d) => `${d.id}\u0000${d.label}`).join('\u0001');
    if (keys !== this.dbKeys) {
      this.dbKeys = keys;
      const multiFolder = new Set(s.databases.map((d) => d.folder)).size > 1;
      this.dbSelect.replaceChildren(...s.databases.map((d) => h('vscode-option', { value: d.id, description: d.id }, multiFolder ? `${d.folder}: ${d.label}` : d.label)));
    }
    this.form.setScopes(s.scopes);
    this.render();
  }

  private render(): void {
    const s = this.state;
    const db = this.selected;
    this.banner.replaceChildren();
    if (s && !s.trusted) this.banner.append(h('div', { class: 'banner', role: 'note' }, 'Restricted Mode: Lifeboat is read-only until you trust this workspace.'));
    if (!s || !db) {
      this.main.hidden = true;
      this.empty.hidden = false;
      this.empty.replaceChildren(
        h('p', {}, s ? 'No database is protected in this workspace yet.' : 'Loading…'),
        s ? h('p', { class: 'muted' }, 'Run “Lifeboat: Protect Database...” or add a path to the lifeboat.databases setting.') : '',
      );
      return;
    }
    this.empty.hidden = true;
    this.main.hidden = false;
    if (this.dbSelect.value !== db.id) this.dbSelect.value = db.id;
    if (db.error) this.banner.append(h('div', { class: 'banner error', role: 'alert' }, `Listing the backups failed: ${db.error}`));
    this.renderStats(db, Date.parse(s.now));
    this.chart.replaceChildren(sizeChart(db.history, db.failures));
    this.table.update(db.history);
    this.form.load(db.id, db.settings);
    this.renderProgress();
  }

  private renderStats(db: DatabaseView, now: number): void {
    const st = db.stats;
    const card = (k: string, v: string | Node, d?: string | Node, cls = '', vcls = '') =>
      h('div', { class: `card ${cls}`, role: 'group', 'aria-label': k }, h('div', { class: 'k' }, k), h('div', { class: `v ${vcls}` }, v), d ? h('div', { class: 'd' }, d) : '');
    const tiers = h(
      'table',
      { class: 'tiers', 'aria-label': 'Backups per tier' },
      h('tbody', {}, ...TIER_ORDER.filter((t) => st.perTier[t]).map((t) => h('tr', {}, h('th', { scope: 'row' }, TIER_LABEL[t]), h('td', { class: 'num' }, String(st.perTier[t]!.count)), h('td', { class: 'num' }, formatSize(st.perTier[t]!.size))))),
    );
    const health = st.sourceHealth;
    const off = db.offsite;
    const offsite = off
      ? [
          card(
            'Off-site copy',
            off.lastCopyAt ? formatWhen(off.lastCopyAt) : 'not copied yet',
            [
              `${off.copied} backup${off.copied === 1 ? '' : 's'}, ${formatSize(off.bytes)} in ${off.url}`,
              off.pending ? `${off.pending} pending, behind by ${formatRelative(new Date(now - off.lagMs).toISOString(), now).replace(/ ago$/, '')}` : 'up to date with the local backups',
              off.failure ? `last copy failed: ${off.failure.replace(/^Lifeboat: /, '')}` : '',
              off.lastVerify ? `verified ${formatRelative(off.lastVerify.at, now)}: ${off.lastVerify.ok ? 'all passed' : 'FAILED'}` : '',
            ]
              .filter(Boolean)
              .join(' · '),
            'wide',
            off.failure || off.lastVerify?.ok === false ? 'bad' : off.pending ? 'warn' : 'good',
          ),
        ]
      : [];
    this.stats.replaceChildren(
      card('Backups', `${st.count}`, `${formatSize(st.totalSize)} in ${db.backupDir}`),
      card('Per tier', st.count ? tiers : 'none'),
      card('Newest', formatWhen(st.newest), st.newest ? formatRelative(st.newest, now) : undefined),
      card('Oldest', formatWhen(st.oldest), st.oldest ? formatRelative(st.oldest, now) : undefined),
      card('Last success', formatWhen(st.lastSuccess), st.lastSuccess ? formatRelative(st.lastSuccess, now) : 'no successful backup logged'),
      card('Last failure', st.lastFailure ? formatWhen(st.lastFailure.time) : 'none', st.lastFailure?.reason, st.lastFailure ? 'wide' : '', st.lastFailure ? 'bad' : 'good'),
      card('Next scheduled run', st.nextRun ? formatWhen(st.nextRun) : 'none', st.nextRun ? `${formatRelative(st.nextRun, now)} · ${st.schedule}` : st.schedule),
      card('Verified', formatShare(st.verifiedShare), 'of the kept backups', '', st.verifiedShare < 1 && st.count ? 'warn' : ''),
      card('Restore-tested', formatShare(st.restoreTestedShare), 'of the kept backups, in the last 30 days'),
      card(
        'Source health',
        health.state === 'healthy' ? 'healthy' : health.state === 'damaged' ? 'DAMAGED' : 'unknown',
        health.at ? `${health.detail ?? ''}${health.detail ? ', ' : ''}checked ${formatWhen(health.at)}` : 'not checked yet',
        '',
        health.state === 'healthy' ? 'good' : health.state === 'damaged' ? 'bad' : '',
      ),
      ...offsite,
    );
  }

  private onProgress(p: ProgressState): void {
    this.progressState = p;
    this.renderProgress();
  }

  private renderProgress(): void {
    const p = this.progressState;
    const line = (op: OperationView) => {
      const pct = op.total > 0 ? Math.min(100, Math.floor((100 * op.done) / op.total)) : undefined;
      const amount = op.total > 0 ? (/\bof\b/.test(op.phase) ? '' : ` · ${formatSize(op.done)} of ${formatSize(op.total)}`) : '';
      const fill = h('div', { class: 'fill' });
      // CSSOM, not a style attribute: the CSP forbids inline styles.
      fill.style.width = pct === undefined ? '100%' : `${pct}%`;
      if (pct === undefined) fill.style.opacity = '0.35';
      return h(
        'div',
        { class: 'op', role: 'group', 'aria-label': op.title },
        h('span', {}, `${op.title.replace(/^Lifeboat: /, '')}: ${op.phase}${amount}${pct === undefined ? '' : ` · ${pct}%`}`),
        h('div', { class: 'bar-wrap', role: 'progressbar', 'aria-label': op.title, 'aria-valuemin': 0, 'aria-valuemax': 100, 'aria-valuenow': pct }, h('div', { class: 'track' }), fill),
      );
    };
    const parts: Node[] = p.running.map(line);
    if (!p.running.length && p.last?.result) {
      const r = p.last.result;
      parts.push(h('div', { class: `result ${r.ok ? 'ok' : 'fail'}` }, `${p.last.title.replace(/^Lifeboat: /, '')}: ${r.ok ? 'finished' : `failed: ${r.message}`}`));
    }
    this.progress.replaceChildren(...parts);
  }
}

const sheet = new CSSStyleSheet();
sheet.replaceSync(CSS);
document.adoptedStyleSheets = [...document.adoptedStyleSheets, sheet];
// One bundle, two kinds of panel: the host's page says which app it hosts.
if (document.getElementById('app')?.dataset.view === 'inspect') new InspectApp(new HostConnection());
else new App(new HostConnection());

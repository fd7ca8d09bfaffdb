import * as vscode from 'vscode';
import { normalize, validate } from '../core/config';
import type { LogEntry } from '../core/catalog/backupLog';
import type { BackupRecord } from '../core/model';
import type {
  HostMessage,
  OffsiteView,
  OperationView,
  PanelState,
  ProgressState,
  ReplyMessage,
  RequestResults,
  SettingsScope,
  WebviewCommand,
  WebviewRequest,
} from '../../webview/protocol';
import { parseWebviewMessage, SCOPE_LABELS } from '../../webview/protocol';
import type { BackupService } from './backupService';
import type { BackupsModel } from './backupsModel';
import type { CoreHost } from './coreLoader';
import type { FolderState, Folders } from './folders';
import { relativeDb } from './folders';
import type { OperationEvent, Operations } from './operations';
import { databaseView, formValues, onlyFormKeys, planSave, toFieldIssues } from './panelHostState';
import type { StatusBar } from './statusBar';
import { appHtml } from './webviewHtml';
import type { ChosenBackup } from './picks';

const TARGET: Record<SettingsScope, vscode.ConfigurationTarget> = {
  workspace: vscode.ConfigurationTarget.Workspace,
  workspaceFolder: vscode.ConfigurationTarget.WorkspaceFolder,
  user: vscode.ConfigurationTarget.Global,
};
/** Where `inspect()` reports the value a scope holds itself. */
const SCOPE_VALUE = { workspace: 'workspaceValue', workspaceFolder: 'workspaceFolderValue', user: 'globalValue' } as const satisfies Record<SettingsScope, string>;

/** Log entries read per backup directory for the statistics (failures, last success). */
const LOG_LIMIT = 2000;
/** Progress updates to the panel: at most one per this many ms (an operation's start and end go at once). */
const PROGRESS_EVERY_MS = 100;

/**
 * The "Settings and Statistics" panel host: one webview panel running the app in
 * dist/webview.js, spoken to through webview/protocol.ts. It sends nothing until the app
 * says `panel/app/ready`; after that every change (backups, settings, trust, progress)
 * posts a Notification with the whole state of its topic, only while the panel is visible
 * (a hidden panel is rebuilt and says ready again, and then gets the newest state).
 * Commands run through the BackupService (as the extension's commands do, with the same
 * confirmations and after-effects); Requests are answered with the core's
 * validate(), slots and planRotation. Every incoming message is checked; a malformed or
 * unknown one is ignored and logged. `show` is safe to repeat.
 */
export class PanelHost implements vscode.Disposable {
  private panel: vscode.WebviewPanel | undefined;
  private ready = false;
  private readonly subs: vscode.Disposable[] = [];
  private stateTimer: NodeJS.Timeout | undefined;
  private progressTimer: NodeJS.Timeout | undefined;
  /** When progress was last posted (Date.now()). */
  private progressPostedAt = 0;
  private readonly running = new Map<number, OperationView>();
  private lastOperation: OperationView | undefined;
  private readonly posted = new vscode.EventEmitter<HostMessage>();
  /** Fires with every message posted to the webview (for tests). */
  readonly onDidPost = this.posted.event;

  constructor(
    private readonly extensionUri: vscode.Uri,
    private readonly core: CoreHost,
    private readonly folders: Folders,
    private readonly model: BackupsModel,
    private readonly log: vscode.LogOutputChannel,
    private readonly backups: BackupService,
    ops?: Pick<Operations, 'onDidProgress'>,
    private readonly status?: Pick<StatusBar, 'lastFailureOf' | 'onDidReportFailure'>,
    /** Opens a backup's comparison with the current database (the history's "Compare with Current"). */
    private readonly compare?: (chosen: ChosenBackup) => Promise<unknown>,
  ) {
    this.subs.push(
      model.onDidChange(() => this.stateChanged()),
      folders.onDidChange(() => this.stateChanged()),
      vscode.workspace.onDidGrantWorkspaceTrust(() => this.stateChanged()),
      this.posted,
    );
    if (ops) this.subs.push(ops.onDidProgress((e) => this.onProgress(e)));
    // A failure may never reach the backup log (an unwritable directory): the status bar's count too.
    if (status) this.subs.push(status.onDidReportFailure(() => this.stateChanged()));
  }

  /** The off-site state of a database's backups (set by the container); undefined without a remote. */
  offsiteOf?: (state: FolderState, records: BackupRecord[]) => OffsiteView | undefined;

  /** Rebuilds and sends the state (after a change the panel does not watch itself: an off-site copy). */
  notifyChanged(): void {
    this.stateChanged();
  }

  /** Reveals the one panel, creating it when needed. Safe to repeat. */
  async show(): Promise<void> {
    if (this.panel) {
      this.panel.reveal();
      return;
    }
    const dist = vscode.Uri.joinPath(this.extensionUri, 'dist');
    const panel = vscode.window.createWebviewPanel('lifeboat.panel', 'Lifeboat: Settings and Statistics', vscode.ViewColumn.Active, {
      enableScripts: true,
      localResourceRoots: [dist],
    });
    this.panel = panel;
    this.ready = false;
    panel.iconPath = vscode.Uri.joinPath(this.extensionUri, 'media', 'icon.png');
    const subs = [
      panel.webview.onDidReceiveMessage((m) => void this.handle(m)),
      panel.onDidChangeViewState(() => {
        // A hidden webview is torn down; it says ready again when shown.
        if (!panel.visible) this.ready = false;
      }),
    ];
    panel.onDidDispose(() => {
      subs.forEach((s) => s.dispose());
      if (this.panel === panel) {
        this.panel = undefined;
        this.ready = false;
      }
    });
    panel.webview.html = appHtml(panel.webview, this.extensionUri, 'Lifeboat: Settings and Statistics', 'panel');
  }

  /** True while the panel exists. */
  get isOpen(): boolean {
    return this.panel !== undefined;
  }

  /**
   * Handles one message as if the webview had sent it: checks it, runs a Command, answers
   * a Request (the Reply is posted and also returned). A refused message is logged and
   * ignored (resolves undefined). Never rejects.
   */
  async handle(raw: unknown): Promise<ReplyMessage | undefined> {
    const parsed = parseWebviewMessage(raw);
    if (!parsed.ok) {
      this.log.warn(`panel: ignored a message from the webview: ${parsed.reason}`);
      return undefined;
    }
    const m = parsed.message;
    if (m.kind === 'command') {
      try {
        await this.command(m);
      } catch (e) {
        this.log.error(`panel: ${m.method} failed: ${(e as Error).message}`);
      }
      return undefined;
    }
    let reply: ReplyMessage;
    try {
      reply = { kind: 'reply', id: m.id, ok: true, result: await this.request(m) };
    } catch (e) {
      this.log.warn(`panel: ${m.method} failed: ${(e as Error).message}`);
      reply = { kind: 'reply', id: m.id, ok: false, error: (e as Error).message };
    }
    this.post(reply);
    return reply;
  }

  private async command(m: WebviewCommand): Promise<void> {
    if (m.method === 'panel/app/ready') {
      this.ready = true;
      await this.postState();
      this.postProgress();
      return;
    }
    if (m.method === 'settings/editor/open') {
      await vscode.commands.executeCommand('workbench.action.openSettings', 'lifeboat.');
      return;
    }
    const target = await this.target(m.params.db);
    const route = 'panel' as const;
    switch (m.method) {
      case 'backups/database/backUp':
        await this.backups.backup(target, 'manual', { route, trigger: 'Back Up Now' });
        return;
      case 'backups/database/verifyAll':
        await this.backups.verifyAll([target], { route });
        return;
      case 'backups/database/rotate':
        await this.backups.rotate([target.state], { route });
        return;
      case 'backups/backup/act': {
        const { records } = await this.model.ofDatabase(target.state, target.db);
        const record = records.find((r) => r.id === m.params.id);
        if (!record) throw new Error(`no backup ${m.params.id} of ${target.db}`);
        const chosen = { record, archive: record.path, target };
        switch (m.params.action) {
          case 'restore':
            await this.backups.restore(chosen, { route });
            return;
          case 'verify':
            await this.backups.verify(chosen, { route });
            return;
          case 'pin':
          case 'unpin':
            await this.backups.setPinned(chosen, m.params.action === 'pin', { route });
            return;
          case 'reveal':
            await this.backups.reveal(record.path);
            return;
          case 'compare':
            await this.compare?.(chosen);
            return;
        }
      }
    }
  }

  private async request(m: WebviewRequest): Promise<RequestResults[WebviewRequest['method']]> {
    const { state } = await this.target(m.params.db);
    const values = onlyFormKeys(m.params.values);
    const issues = toFieldIssues(validate(values));
    switch (m.method) {
      case 'settings/values/validate':
        return { issues };
      case 'settings/schedule/preview': {
        const own = issues.filter((i) => /^lifeboat\.(enabled|schedule\.)/.test(i.field));
        if (own.length) return { label: '', runs: [], issues: own };
        const settings = normalize(Object.fromEntries(values), state.settings).settings;
        const slots = await import('../core/schedule/slots.js');
        try {
          const schedule = slots.scheduleFromSettings(settings);
          if (!schedule) return { label: settings.enabled ? 'off' : 'off (Lifeboat is disabled)', runs: [], issues: [] };
          const now = new Date();
          const runs = slots.slotsBetween(schedule, now, new Date(now.getTime() + 400 * 86_400_000), 3).map((d) => d.toISOString());
          return { label: schedule.label, runs, issues: [] };
        } catch (e) {
          const msg = (e as Error).message;
          const field = /^(lifeboat\.[\w.]+):\s*/.exec(msg);
          return { label: '', runs: [], issues: [{ field: field?.[1] ?? 'lifeboat.schedule.cron', reason: field ? msg.slice(field[0].length) : msg }] };
        }
      }
      case 'settings/retention/preview': {
        const own = issues.filter((i) => i.field.startsWith('lifeboat.retention.'));
        if (own.length) return { keep: [], remove: [], issues: own };
        const settings = normalize(Object.fromEntries(values), state.settings).settings;
        const { core } = await this.core.get();
        const { records } = await this.model.ofDatabase(state, m.params.db);
        const plan = core.planRotation(records, settings.retention, new Date());
        return { keep: plan.keep, remove: plan.remove, refused: plan.refused, issues: [] };
      }
      case 'settings/values/save': {
        if (issues.length) return { saved: [], issues };
        const scope = m.params.scope;
        const cfg = vscode.workspace.getConfiguration('lifeboat', state.folder.uri);
        const held = cfg.inspect('offsite.retention');
        // A single folder's own settings are the workspace's: only the scopes the form offers are apart.
        const others = this.scopes().filter((sc) => sc !== scope).map((sc) => ({ label: SCOPE_LABELS[sc], value: held?.[SCOPE_VALUE[sc]] }));
        const plan = planSave(values, formValues(state.settings), { own: held?.[SCOPE_VALUE[scope]], others });
        if (plan.issues.length) return { saved: [], issues: plan.issues };
        const saved: string[] = [];
        for (const [key, value] of plan.writes) {
          await cfg.update(key, value, TARGET[scope]);
          saved.push(key);
        }
        if (saved.length) {
          this.log.info(`panel: wrote ${saved.map((k) => `lifeboat.${k}`).join(', ')} to the ${scope} settings`);
          this.folders.invalidate();
        }
        return { saved, issues: [] };
      }
    }
  }

  private async target(db: string): Promise<{ state: FolderState; db: string }> {
    const state = (await this.folders.resolve()).find((s) => s.databases.includes(db));
    if (!state) throw new Error(`${db} is not a protected database`);
    return { state, db };
  }

  /** The whole state the panel shows. Reads the backups through the shared model. */
  async buildState(): Promise<PanelState> {
    const { core } = await this.core.get();
    const slots = await import('../core/schedule/slots.js');
    const now = new Date();
    const states = await this.folders.resolve();
    const databases = [];
    for (const state of states) {
      if (!state.databases.length) continue;
      const listing = await this.model.listing(state);
      const log: LogEntry[] = await new core.Catalog(state.dir).log.read(LOG_LIMIT).catch(() => []);
      let schedule: { label: string; next?: Date };
      try {
        const s = slots.scheduleFromSettings(state.settings);
        schedule = s ? { label: s.label, next: slots.nextSlotAfter(s, now) } : { label: state.settings.enabled ? 'off' : 'off (Lifeboat is disabled)' };
      } catch (e) {
        schedule = { label: `invalid: ${(e as Error).message}` };
      }
      for (const db of state.databases) {
        const records = listing.records.filter((r) => r.manifest.source.path === db);
        const dbLog = log.filter((e) => e.db === db);
        databases.push(
          databaseView({
            db,
            label: relativeDb(state.folder, db),
            folder: state.folder.name,
            dir: state.dir,
            settings: state.settings,
            records,
            tiers: listing.tiers,
            log: dbLog,
            stats: core.computeStats(records, dbLog, now),
            schedule,
            error: listing.error,
            sessionFailure: this.status?.lastFailureOf(db),
            offsite: this.offsiteOf?.(state, records),
          }),
        );
      }
    }
    return {
      databases,
      trusted: vscode.workspace.isTrusted,
      scopes: this.scopes(),
      now: now.toISOString(),
    };
  }

  /** The scopes the form may save to (workspaceFolder only in a multi-root workspace). */
  private scopes(): SettingsScope[] {
    const multi = (vscode.workspace.workspaceFolders?.length ?? 0) > 1;
    return multi ? ['workspaceFolder', 'workspace', 'user'] : ['workspace', 'user'];
  }

  private stateChanged(): void {
    if (!this.panel) return;
    // A backup touches several files; one rebuild after the burst.
    if (this.stateTimer) clearTimeout(this.stateTimer);
    this.stateTimer = setTimeout(() => {
      this.stateTimer = undefined;
      void this.postState();
    }, 150);
  }

  private async postState(): Promise<void> {
    if (!this.canPost()) return;
    try {
      const state = await this.buildState();
      this.post({ kind: 'notification', method: 'panel/state/didChange', params: state });
    } catch (e) {
      this.log.error(`panel: building the state failed: ${(e as Error).message}`);
    }
  }

  private onProgress(e: OperationEvent): void {
    const op: OperationView = { id: e.id, title: e.title, phase: e.phase, done: e.done, total: e.total, result: e.end };
    const started = !e.end && !this.running.has(e.id);
    if (e.end) {
      this.running.delete(e.id);
      this.lastOperation = op;
    } else {
      this.running.set(e.id, op);
    }
    // Progress can fire per chunk; a few updates a second are plenty. An operation's start
    // and its end are sent at once, so that a short operation is seen running, not only ended.
    if (e.end || started) this.postProgress();
    else if (!this.progressTimer) {
      const wait = this.progressPostedAt + PROGRESS_EVERY_MS - Date.now();
      if (wait <= 0) this.postProgress();
      else this.progressTimer = setTimeout(() => this.postProgress(), wait);
    }
  }

  private postProgress(): void {
    if (this.progressTimer) clearTimeout(this.progressTimer);
    this.progressTimer = undefined;
    this.progressPostedAt = Date.now();
    if (!this.canPost()) return;
    const params: ProgressState = { running: [...this.running.values()], last: this.lastOperation };
    this.post({ kind: 'notification', method: 'panel/progress/didChange', params });
  }

  private canPost(): boolean {
    return !!this.panel && this.ready && this.panel.visible;
  }

  private post(m: HostMessage): void {
    this.posted.fire(m);
    void this.panel?.webview.postMessage(m);
  }

  dispose(): void {
    if (this.stateTimer) clearTimeout(this.stateTimer);
    if (this.progressTimer) clearTimeout(this.progressTimer);
    for (const s of this.subs) s.dispose();
    this.panel?.dispose();
  }
}

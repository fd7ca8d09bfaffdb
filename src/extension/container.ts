import * as vscode from 'vscode';
import { BackupError } from '../core/errors';
import { BackupService, type Settled } from './backupService';
import { BackupsModel } from './backupsModel';
import { commandHandlers, registerCommands } from './commands';
import { CoreHost } from './coreLoader';
import { Folders, type FolderState } from './folders';
import { DisposableStore } from './lifecycle';
import { channelLogger, LogMirror } from './log';
import { Operations } from './operations';
import { InspectHost } from './inspectHost';
import { OffsiteHost } from './offsite';
import { PanelHost } from './panel';
import type { SchedulerHostLike } from './schedulerHost';
import { StatusBar, type StatusSnapshot } from './statusBar';
import { BackupsTree } from './tree';
import { TaskHook, type MigrationOffer } from './tasks';

/** The view id of the "Backups" tree (package.json `contributes.views`). */
export const VIEW_ID = 'lifeboat.backups';
/** Context key: true when some folder has a configured database. */
export const HAS_DATABASES_KEY = 'lifeboat.hasDatabases';
/** How long the shutdown backup may take before it is abandoned (VS Code gives about 5 s). */
export const SHUTDOWN_BUDGET_MS = 4000;

/** What `activate` returns: a small surface for the extension's own tests and for other extensions. */
export interface LifeboatApi {
  /** Milliseconds spent in `activate` (building the container, no I/O). */
  readonly activationMs: number;
  /** Resolves when the work deferred after activation (settings, listing, scheduler) has run. */
  readonly ready: Promise<void>;
  /** The folders as Lifeboat sees them now (settings after validation, resolved databases). */
  folders(): Promise<FolderState[]>;
  /** The tree's data provider (getChildren/getTreeItem), for tests. */
  readonly tree: BackupsTree;
  /** The status bar item's state after pending updates. */
  status(): Promise<StatusSnapshot>;
  /** Migration tasks the task hook noticed without a backup step. */
  readonly migrationOffers: readonly MigrationOffer[];
  /** Per folder: the scheduler's next slot and how many updates it took. */
  schedules(): { folder: string; next?: string; updates: number }[];
  /** Re-reads settings and backups; resolves when the tree and status bar are current. */
  refresh(): Promise<void>;
  /** The Settings and Statistics panel's host (its message handling, for tests). */
  readonly panel: PanelHost;
  /** The host of the backup and comparison views (their views and message handling, for tests). */
  readonly inspect: InspectHost;
  /** Off-site copies: credentials, copies, verification, restore (its prompts are replaceable, for tests). */
  readonly offsite: OffsiteHost;
  /**
   * Fires once per backup, restore, verification, deletion, pin, rotation or scheduled run,
   * after its after-effects (tree, status bar, panel, log) ran, whichever route started it.
   */
  readonly onDidSettle: vscode.Event<Settled>;
  /** The extension's log folder; the "Lifeboat" output channel writes `Lifeboat.log` there. */
  readonly logUri: vscode.Uri;
  /** Runs the shutdown backup as `deactivate` does (for tests); never rejects. */
  shutdownBackup(): Promise<void>;
}

/**
 * Builds and owns every service of the extension. Construction is cheap (no file I/O,
 * no engine): the engine loads on first need, and the deferred `init` runs after
 * activation. One disposer for everything, in reverse order of construction.
 */
export class Container implements vscode.Disposable {
  private readonly store = new DisposableStore();
  readonly channel: vscode.LogOutputChannel;
  readonly core: CoreHost;
  readonly folders: Folders;
  readonly model: BackupsModel;
  readonly tree: BackupsTree;
  readonly status: StatusBar;
  readonly ops: Operations;
  /** The one way to back up, restore, verify, delete, pin and rotate; every route uses it. */
  readonly backups: BackupService;
  readonly tasks: TaskHook;
  readonly panel: PanelHost;
  /** The read-only views of backups and comparisons. */
  readonly inspect: InspectHost;
  /** Off-site copies. */
  readonly offsite: OffsiteHost;
  private scheduler: SchedulerHostLike | undefined;
  readonly ready: Promise<void>;

  constructor(
    private readonly context: vscode.ExtensionContext,
    makeScheduler: (c: Container) => SchedulerHostLike,
  ) {
    const add = <T extends vscode.Disposable>(d: T) => this.store.add(d);
    this.channel = add(vscode.window.createOutputChannel('Lifeboat', { log: true }));
    this.core = new CoreHost(channelLogger(this.channel));
    this.folders = add(new Folders((m) => void vscode.window.showWarningMessage(m, 'Open Settings').then((p) => p && vscode.commands.executeCommand('workbench.action.openSettings', 'lifeboat.'))));
    this.model = add(new BackupsModel(this.core));
    this.tree = add(new BackupsTree(this.folders, this.model));
    add(vscode.window.createTreeView(VIEW_ID, { treeDataProvider: this.tree, showCollapseAll: true }));
    this.status = add(new StatusBar(this.folders, this.model));
    const mirror = new LogMirror(this.channel, async (dir) => {
      const { core } = await this.core.get();
      return new core.Catalog(dir).log.read(200);
    });
    this.ops = add(new Operations(this.channel));
    this.backups = add(new BackupService(this.core, this.folders, this.model, this.status, mirror, this.ops, this.channel));
    this.offsite = add(new OffsiteHost(context.secrets, this.core, this.folders, this.model, this.ops, this.channel));
    this.inspect = add(new InspectHost(context.extensionUri, this.core, this.folders, this.backups, this.ops, this.channel));
    this.panel = add(new PanelHost(context.extensionUri, this.core, this.folders, this.model, this.channel, this.backups, this.ops, this.status, (chosen) => this.inspect.compareWithCurrent(chosen)));
    this.tree.offsiteFailureOf = (url) => this.offsite.failureOf(url);
    this.status.offsiteOf = (state, records) => this.offsite.summarize(state, records);
    this.panel.offsiteOf = (state, records) => this.offsite.summarize(state, records);
    add(
      this.offsite.onDidChange(() => {
        this.tree.refresh();
        void this.status.update();
        this.panel.notifyChanged();
      }),
    );
    this.tasks = add(new TaskHook(this.folders, this.backups, this.ops, this.channel));
    const handlers = commandHandlers({
      folders: this.folders,
      model: this.model,
      backups: this.backups,
      channel: this.channel,
      panel: this.panel,
      inspect: this.inspect,
      offsite: this.offsite,
      tasks: this.tasks,
      refresh: () => void this.refresh(),
    });
    for (const d of registerCommands(handlers, (title, e) => this.ops.failure(`Lifeboat: ${title} failed: ${(e as Error)?.message ?? String(e)}`))) add(d);
    add(this.model.onDidChangeDir((dir) => void mirror.sync(dir)));
    // After a verified local backup, the off-site copy runs on its own: the backup has settled already.
    add(
      this.backups.onDidSettle((s) => {
        if (s.op !== 'backup' || s.outcome !== 'ok' || s.route === 'shutdown') return;
        void this.folders.resolve().then((states) => {
          const state = states.find((x) => s.dirs.includes(x.dir));
          if (state) return this.offsite.afterBackup(state);
        });
      }),
    );
    add(this.folders.onDidChange(() => void this.onFoldersChanged()));
    this.scheduler = add(makeScheduler(this));
    // Everything that reads files waits until activation has returned.
    this.ready = new Promise<void>((resolve) => {
      const t = setTimeout(() => void this.onFoldersChanged().finally(resolve), 0);
      add({ dispose: () => clearTimeout(t) });
    });
  }

  /** Rereads folders and settings, updates the context key, the status bar, the log mirror and the schedulers. Never rejects. */
  private foldersChanging: Promise<void> = Promise.resolve();
  private onFoldersChanged(): Promise<void> {
    this.foldersChanging = this.foldersChanging.then(async () => {
      if (this.store.isDisposed) return;
      try {
        const states = await this.folders.resolve();
        const any = states.some((s) => s.databases.length > 0);
        await vscode.commands.executeCommand('setContext', HAS_DATABASES_KEY, any);
        if (!any) {
          await this.status.update();
          await this.scheduler?.sync([]);
          return;
        }
        this.model.invalidate();
        await this.status.update();
        await this.scheduler?.sync(vscode.workspace.isTrusted ? states : []);
      } catch (e) {
        this.channel.error(`refresh failed: ${(e as Error).message}`);
      }
    });
    return this.foldersChanging;
  }

  /** Rereads settings and backups (the view's Refresh). */
  refresh(): Promise<void> {
    this.folders.invalidate();
    return this.onFoldersChanged();
  }

  /**
   * The shutdown backup: for every database of a trusted folder with `enabled` and
   * `backupOnShutdown`, a `shutdown` backup through the BackupService when it changed
   * since its newest verified backup (route `shutdown`: logged, never a notification or a
   * dialog). Abandoned after SHUTDOWN_BUDGET_MS (the engine removes the partial archive).
   * Never rejects.
   */
  async shutdown(budgetMs = SHUTDOWN_BUDGET_MS): Promise<void> {
    if (!this.core.started || !vscode.workspace.isTrusted) return;
    const ac = new AbortController();
    const timer = setTimeout(() => ac.abort(new BackupError('cancelled', `shutdown backup abandoned after ${budgetMs} ms`)), budgetMs);
    try {
      // Settings as they are now: a database removed just before closing is not backed up.
      this.folders.invalidate();
      const states = await this.folders.resolve();
      await Promise.all(
        states
          .filter((s) => s.settings.enabled && s.settings.backupOnShutdown)
          .flatMap((state) =>
            state.databases.map((db) =>
              this.backups.backup({ state, db }, 'shutdown', { route: 'shutdown', trigger: 'VS Code shutdown', signal: ac.signal, rotate: false, onlyIfChanged: true }),
            ),
          ),
      );
    } catch (e) {
      // The channel is already closed while the extension host terminates: best effort.
      channelLogger(this.channel).warn(`shutdown backup skipped: ${(e as Error).message}`);
    } finally {
      clearTimeout(timer);
    }
  }

  /** The API handed back from activate. */
  api(activationMs: number): LifeboatApi {
    return {
      activationMs,
      ready: this.ready,
      folders: () => this.folders.resolve(),
      tree: this.tree,
      status: () => this.status.current(),
      migrationOffers: this.tasks.offers,
      schedules: () => this.scheduler?.describe() ?? [],
      refresh: () => this.refresh().then(() => this.status.update()),
      panel: this.panel,
      inspect: this.inspect,
      offsite: this.offsite,
      onDidSettle: this.backups.onDidSettle,
      logUri: this.context.logUri,
      shutdownBackup: () => this.shutdown(),
    };
  }

  dispose(): void {
    this.store.dispose();
  }
}

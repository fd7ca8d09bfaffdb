import * as vscode from 'vscode';
import { BackupError } from '../core/errors';
import type { BackupKind } from '../core/model';
import type { Progress as CoreProgress } from '../core/context';
import type { BackupResult } from '../core/engine';
import type { BackupsModel } from './backupsModel';
import { COMMANDS } from './commandIds';
import type { CoreHost } from './coreLoader';
import { displayName, type FolderState } from './folders';
import type { LogMirror } from './log';
import type { StatusBar } from './statusBar';

/** A long operation's start, progress (`done` of `total` bytes or items; total 0 when unknown) or `end`. */
export interface OperationEvent {
  id: number;
  title: string;
  phase: string;
  done: number;
  total: number;
  end?: { ok: boolean; message: string };
}

/** Feeds one operation run outside `withProgress` (the scheduler's, the shutdown backup) into `onDidProgress`. */
export interface OperationTracker {
  /** The engine's progress; ignored after `end`. */
  report(p: CoreProgress): void;
  /** The result; only the first call counts. */
  end(ok: boolean, message: string): void;
}

/** Runs work with a cancellable progress notification; `signal` aborts when the user presses Cancel. */
export type ProgressRunner = <T>(title: string, work: (signal: AbortSignal, report: (p: CoreProgress) => void) => Promise<T>) => Promise<T>;

const PHASE: Record<string, string> = {
  snapshot: 'taking a consistent snapshot',
  compress: 'compressing',
  verify: 'verifying',
  readback: 'reading the archive back',
  check: 'checking the archive',
  extract: 'extracting',
  restore: 'restoring',
};

/**
 * The edge between commands (or the scheduler, the task hook, shutdown) and the engine:
 * every operation here shows progress, refreshes the tree, status bar and log mirror
 * afterwards, logs a failure once and shows one notification for it (with "Show Log"
 * and "Retry"), and successes as `lifeboat.notifications` says.
 */
export class Operations {
  private readonly progressEmitter = new vscode.EventEmitter<OperationEvent>();
  /** Fires as long operations start, report progress and end (the panel shows them). */
  readonly onDidProgress = this.progressEmitter.event;
  private nextOperation = 1;

  constructor(
    private readonly core: CoreHost,
    private readonly model: BackupsModel,
    private readonly status: StatusBar,
    private readonly mirror: LogMirror,
    private readonly channel: vscode.LogOutputChannel,
  ) {}

  /** Progress in a notification with Cancel, as the engine reports it. */
  readonly withProgress: ProgressRunner = (title, work) =>
    Promise.resolve(
      vscode.window.withProgress({ location: vscode.ProgressLocation.Notification, title, cancellable: true }, async (progress, token) => {
        const ac = new AbortController();
        const sub = token.onCancellationRequested(() => ac.abort(new BackupError('cancelled', `${title}: cancelled`)));
        let last = '';
        const id = this.nextOperation++;
        this.progressEmitter.fire({ id, title, phase: 'starting', done: 0, total: 0 });
        try {
          const result = await work(ac.signal, (p) => {
            this.progressEmitter.fire({ id, title, phase: PHASE[p.phase] ?? p.phase, done: p.done, total: p.total });
            const phase = PHASE[p.phase] ?? p.phase;
            const pct = p.total > 0 ? ` ${Math.floor((100 * p.done) / p.total)}%` : '';
            const msg = `${phase}${pct}`;
            if (msg !== last) {
              last = msg;
              progress.report({ message: msg });
            }
          });
          this.progressEmitter.fire({ id, title, phase: 'done', done: 0, total: 0, end: { ok: true, message: 'finished' } });
          return result;
        } catch (e) {
          this.progressEmitter.fire({ id, title, phase: 'stopped', done: 0, total: 0, end: { ok: false, message: (e as Error)?.message ?? String(e) } });
          throw e;
        } finally {
          sub.dispose();
        }
      }),
    );

  /**
   * Announces an operation that runs elsewhere (a scheduled backup, a restore test, the
   * shutdown backup): fires its start on `onDidProgress` now, its progress as `report` is
   * called, and its result once `end` is. The panel shows it like one run through
   * `withProgress`; nothing else (no notification) is shown.
   */
  track(title: string): OperationTracker {
    const id = this.nextOperation++;
    let ended = false;
    this.progressEmitter.fire({ id, title, phase: 'starting', done: 0, total: 0 });
    return {
      report: (p) => {
        if (!ended) this.progressEmitter.fire({ id, title, phase: PHASE[p.phase] ?? p.phase, done: p.done, total: p.total });
      },
      end: (ok, message) => {
        if (ended) return;
        ended = true;
        this.progressEmitter.fire({ id, title, phase: ok ? 'done' : 'stopped', done: 0, total: 0, end: { ok, message } });
      },
    };
  }

  /**
   * Backs up `db` of `state` as `kind`. Interactive runs show progress with Cancel.
   * Resolves with the result, or undefined after a failure or cancellation (already
   * reported). Never rejects.
   */
  async backup(state: FolderState, db: string, kind: BackupKind, o: { trigger?: string; interactive?: boolean; signal?: AbortSignal } = {}): Promise<BackupResult | undefined> {
    const name = displayName(state.folder, db);
    const run = async (signal: AbortSignal | undefined, onProgress?: (p: CoreProgress) => void) => {
      const { engine } = await this.core.get();
      return engine.backup(db, { dir: state.dir, kind, settings: state.settings, trigger: o.trigger, signal, onProgress });
    };
    try {
      const res = o.interactive ? await this.withProgress(`Lifeboat: backing up ${name}`, (signal, report) => run(signal, report)) : await run(o.signal);
      this.afterChange(state.dir);
      if (res.sourceDamaged) {
        this.status.reportFailure(db, `${name} is damaged`);
        this.failure(`Lifeboat: ${name} is damaged: its backup failed verification (${res.record.manifest.verification.problems.slice(0, 2).join('; ')}). The backup was kept for inspection.`, () => this.backup(state, db, kind, { ...o, interactive: true }));
      } else {
        this.status.reportSuccess(db);
        const note = res.verified ? 'verified' : `NOT verified (${res.record.manifest.verification.skippedReason ?? 'skipped'})`;
        this.success(state, `Lifeboat: backed up ${name} (${kind}, ${note}).`, !!o.interactive);
      }
      return res;
    } catch (e) {
      this.afterChange(state.dir);
      if (BackupError.is(e, 'cancelled')) {
        this.channel.info(`backup of ${db} cancelled; nothing was written`);
        if (o.interactive) void vscode.window.showInformationMessage(`Lifeboat: the backup of ${name} was cancelled; nothing was written.`);
        return undefined;
      }
      const msg = (e as Error).message;
      this.status.reportFailure(db, msg);
      this.failure(`Lifeboat: the ${kind} backup of ${name} failed: ${msg}`, () => this.backup(state, db, kind, { ...o, interactive: true }));
      return undefined;
    }
  }

  /**
   * Reports a failure: logged once, then an error notification with "Show Log" and
   * "Retry" (which calls `retry`). Always shown, whatever `lifeboat.notifications` says.
   */
  failure(message: string, retry?: () => unknown): void {
    this.channel.error(message);
    const buttons = retry ? ['Show Log', 'Retry'] : ['Show Log'];
    void vscode.window.showErrorMessage(message, ...buttons).then((pick) => {
      if (pick === 'Show Log') void vscode.commands.executeCommand(COMMANDS.showLog.id);
      else if (pick === 'Retry') void retry?.();
    });
  }

  /** A success: a notification when `lifeboat.notifications` is `all`, else a short status bar message for interactive work. */
  success(state: FolderState | undefined, message: string, interactive: boolean): void {
    this.channel.info(message);
    if (state?.settings.notifications === 'all') void vscode.window.showInformationMessage(message);
    else if (interactive) vscode.window.setStatusBarMessage(`$(check) ${message}`, 5000);
  }

  /** Refreshes what shows a directory's backups: the tree, status bar and log mirror. */
  afterChange(dir: string): void {
    this.model.invalidate(dir);
    void this.mirror.sync(dir);
  }
}

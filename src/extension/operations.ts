import * as vscode from 'vscode';
import { BackupError } from '../core/errors';
import type { Progress as CoreProgress } from '../core/context';
import { COMMANDS } from './commandIds';
import type { FolderState } from './folders';

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

/** How a finished run reads where progress is shown: whether it went well, in one line. */
export type RunVerdict<T> = (result: T) => { ok: boolean; message: string };

/** The work of one run: it gets an AbortSignal (Cancel, or the caller's) and a progress listener. */
export type RunWork<T> = (signal: AbortSignal | undefined, report: (p: CoreProgress) => void) => Promise<T>;

const PHASE: Record<string, string> = {
  snapshot: 'taking a consistent snapshot',
  compress: 'compressing',
  verify: 'verifying',
  readback: 'reading the archive back',
  check: 'checking the archive',
  extract: 'extracting',
  restore: 'restoring',
};

const finished: RunVerdict<unknown> = () => ({ ok: true, message: 'finished' });

/**
 * How work is shown to the user, and nothing else: progress (a notification with Cancel,
 * or only the panel's stream for work nobody asked for just now), failures (logged once,
 * a notification with "Show Log" and "Retry") and successes (as `lifeboat.notifications`
 * says). It never calls the engine and never refreshes anything; BackupService does that.
 */
export class Operations implements vscode.Disposable {
  private readonly progressEmitter = new vscode.EventEmitter<OperationEvent>();
  /** Fires as long operations start, report progress and end (the panel shows them). */
  readonly onDidProgress = this.progressEmitter.event;
  private nextOperation = 1;

  constructor(private readonly channel: vscode.LogOutputChannel) {}

  /**
   * Runs `work` with a progress notification with Cancel (the signal aborts when the user
   * presses it) and on `onDidProgress`. Resolves or rejects as `work` does; `verdict`
   * says how a result reads in the panel (default: ok, "finished").
   */
  withProgress<T>(title: string, work: RunWork<T>, verdict: RunVerdict<T> = finished): Promise<T> {
    return Promise.resolve(
      vscode.window.withProgress({ location: vscode.ProgressLocation.Notification, title, cancellable: true }, async (progress, token) => {
        const ac = new AbortController();
        const sub = token.onCancellationRequested(() => ac.abort(new BackupError('cancelled', `${title}: cancelled`)));
        let last = '';
        const run = this.track(title);
        try {
          const result = await work(ac.signal, (p) => {
            run.report(p);
            const phase = PHASE[p.phase] ?? p.phase;
            const pct = p.total > 0 ? ` ${Math.floor((100 * p.done) / p.total)}%` : '';
            const msg = `${phase}${pct}`;
            if (msg !== last) {
              last = msg;
              progress.report({ message: msg });
            }
          });
          const v = verdict(result);
          run.end(v.ok, v.message);
          return result;
        } catch (e) {
          run.end(false, (e as Error)?.message ?? String(e));
          throw e;
        } finally {
          sub.dispose();
        }
      }),
    );
  }

  /**
   * Runs `work` shown only on `onDidProgress` (the panel), not in a notification: for work
   * that runs on its own (a task's backup, the shutdown backup). `signal` is handed to it.
   */
  async tracked<T>(title: string, signal: AbortSignal | undefined, work: RunWork<T>, verdict: RunVerdict<T> = finished): Promise<T> {
    const run = this.track(title);
    try {
      const result = await work(signal, run.report);
      const v = verdict(result);
      run.end(v.ok, v.message);
      return result;
    } catch (e) {
      const msg = (e as Error)?.message ?? String(e);
      run.end(false, BackupError.is(e, 'cancelled') ? `cancelled: ${msg}` : msg);
      throw e;
    }
  }

  /**
   * Announces an operation that runs elsewhere (a scheduled backup, a restore test): fires
   * its start on `onDidProgress` now, its progress as `report` is called, and its result
   * once `end` is. The panel shows it like one run through `withProgress`; nothing else
   * (no notification) is shown.
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
   * Reports a failure: logged once, then shown as `showFailure` does. Always shown,
   * whatever `lifeboat.notifications` says.
   */
  failure(message: string, retry?: () => unknown): void {
    this.channel.error(message);
    this.showFailure(message, retry);
  }

  /** An error notification with "Show Log" and "Retry" (which calls `retry`); logs nothing. */
  showFailure(message: string, retry?: () => unknown): void {
    const buttons = retry ? ['Show Log', 'Retry'] : ['Show Log'];
    void vscode.window.showErrorMessage(message, ...buttons).then((pick) => {
      if (pick === 'Show Log') void vscode.commands.executeCommand(COMMANDS.showLog.id);
      else if (pick === 'Retry') void retry?.();
    });
  }

  /**
   * A success: a notification when `lifeboat.notifications` is `all`, else a short status
   * bar message for work the user just asked for. Logs nothing.
   */
  showSuccess(state: FolderState | undefined, message: string, interactive: boolean): void {
    if (state?.settings.notifications === 'all') void vscode.window.showInformationMessage(message);
    else if (interactive) vscode.window.setStatusBarMessage(`$(check) ${message}`, 5000);
  }

  dispose(): void {
    this.progressEmitter.dispose();
  }
}

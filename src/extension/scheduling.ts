import * as path from 'node:path';
import * as vscode from 'vscode';
import { systemClock } from '../core/context';
import type { Scheduler, ScheduleProgressEvent, ScheduleTarget } from '../core/schedule/scheduler';
import { channelLogger } from './log';
import type { Container } from './container';
import { displayName, type FolderState } from './folders';
import type { OperationTracker } from './operations';
import type { SchedulerHostLike } from './schedulerHost';

interface Entry {
  folder: string;
  scheduler: Scheduler;
  updates: number;
  /** The folder's newest state (its notifications setting decides success messages). */
  state: FolderState;
  subs: vscode.Disposable[];
  /** Runs of this scheduler that started and have not ended, by the scheduler's run id. */
  runs: Map<number, OperationTracker>;
}

/** The title a scheduled run shows under in the panel. */
export function scheduledRunTitle(ev: Pick<ScheduleProgressEvent, 'what' | 'db' | 'dir' | 'catchUp'>): string {
  if (ev.what === 'restoreTest') return `Lifeboat: weekly restore test in ${path.basename(ev.dir)}`;
  return `Lifeboat: ${ev.catchUp ? 'catch-up' : 'scheduled'} backup of ${path.basename(ev.db ?? '')}`;
}

/**
 * Hosts one core Scheduler (issue 4) per workspace folder with databases: created on the
 * first sync that has databases (which loads the engine and the scheduler module), told
 * about every settings or folder change through `updateSettings`, and stopped when its
 * folder has no database any more, in Restricted Mode, or on dispose (a running backup
 * is abandoned and leaves nothing partial). Its runs and failures reach the tree, the
 * status bar and notifications.
 */
export class SchedulerHost implements SchedulerHostLike {
  private readonly entries = new Map<string, Entry>();
  private syncing: Promise<void> = Promise.resolve();
  private disposed = false;

  constructor(private readonly c: Container) {}

  sync(states: FolderState[]): Promise<void> {
    this.syncing = this.syncing.then(() => this.syncNow(states)).catch((e) => this.c.channel.error(`scheduler: ${(e as Error).message}`));
    return this.syncing;
  }

  private async syncNow(states: FolderState[]): Promise<void> {
    if (this.disposed) return;
    const wanted = states.filter((s) => s.databases.length > 0);
    for (const [key, e] of this.entries) {
      if (!wanted.some((s) => s.folder.uri.toString() === key)) this.drop(key, e);
    }
    if (!wanted.length) return;
    const [{ Scheduler }, { engine }] = await Promise.all([import('../core/schedule/scheduler.js'), this.c.core.get()]);
    if (this.disposed) return;
    for (const state of wanted) {
      const key = state.folder.uri.toString();
      const targets: ScheduleTarget[] = state.databases.map((db) => ({ db, dir: state.dir }));
      const existing = this.entries.get(key);
      if (existing) {
        existing.scheduler.updateSettings(state.settings, targets);
        existing.updates++;
        existing.state = state;
        continue;
      }
      const scheduler = new Scheduler({ engine, clock: systemClock, settings: state.settings, targets, logger: channelLogger(this.c.channel) });
      const runs = new Map<number, OperationTracker>();
      const subs = [
        // The panel listens to Operations' progress; scheduled runs join that one stream.
        scheduler.onDidProgress((ev) => {
          let run = runs.get(ev.run);
          if (!run) runs.set(ev.run, (run = this.c.ops.track(scheduledRunTitle(ev))));
          if (ev.end) {
            runs.delete(ev.run);
            run.end(ev.end.ok, ev.end.message);
          } else if (ev.phase !== 'starting') {
            run.report(ev);
          }
        }),
        scheduler.onDidRun((ev) => {
          this.c.ops.afterChange(ev.dir);
          this.c.status.reportSuccess(ev.db);
          if (ev.outcome === 'backedUp') {
            const what = ev.catchUp ? `catch-up backup (${ev.missedCount} missed slot${ev.missedCount === 1 ? '' : 's'})` : 'scheduled backup';
            this.c.ops.success(this.entries.get(key)?.state ?? state, `Lifeboat: ${what} of ${displayName(state.folder, ev.db)} done.`, false);
          }
        }),
        scheduler.onDidFail((ev) => {
          if (ev.dir) this.c.ops.afterChange(ev.dir);
          if (ev.db) this.c.status.reportFailure(ev.db, ev.error.message);
          const when = ev.retryAt ? ` Retrying at ${ev.retryAt.toLocaleTimeString()}.` : ev.gaveUp ? ' Lifeboat tries again at the next slot.' : '';
          const what = ev.what === 'restoreTest' ? 'The restore test' : ev.what === 'schedule' ? 'The schedule' : `The scheduled backup of ${ev.db ? displayName(state.folder, ev.db) : ''}`;
          this.c.ops.failure(`Lifeboat: ${what} failed: ${ev.error.message}.${when}`, () => void scheduler.checkNow());
        }),
        scheduler.onDidRestoreTest((ev) => this.c.ops.afterChange(ev.dir)),
      ];
      scheduler.start();
      this.entries.set(key, { folder: state.folder.name, scheduler, updates: 0, state, subs, runs });
      this.c.channel.info(`schedule of ${state.folder.name}: ${scheduler.describe() ?? 'off'}; next ${scheduler.nextSlot()?.toString() ?? 'none'}`);
    }
  }

  private drop(key: string, e: Entry): void {
    for (const s of e.subs) s.dispose();
    // The scheduler abandons a running backup; its end no longer reaches us, so say it here.
    for (const run of e.runs.values()) run.end(false, 'cancelled: the schedule of this folder stopped');
    e.runs.clear();
    e.scheduler.dispose();
    this.entries.delete(key);
  }

  describe(): { folder: string; next?: string; updates: number }[] {
    return [...this.entries.values()].map((e) => ({ folder: e.folder, next: e.scheduler.nextSlot()?.toISOString(), updates: e.updates }));
  }

  dispose(): void {
    this.disposed = true;
    for (const [k, e] of [...this.entries]) this.drop(k, e);
  }
}

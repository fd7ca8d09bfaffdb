import type * as vscode from 'vscode';
import { systemClock } from '../core/context';
import type { Scheduler, ScheduleTarget } from '../core/schedule/scheduler';
import { channelLogger } from './log';
import type { Container } from './container';
import type { FolderState } from './folders';
import type { SchedulerHostLike } from './schedulerHost';

interface Entry {
  folder: string;
  scheduler: Scheduler;
  updates: number;
  /** The folder's newest state (its notifications setting decides success messages). */
  state: FolderState;
  /** The BackupService's watch of this scheduler's events. */
  watch: vscode.Disposable;
}

/**
 * Hosts one core Scheduler (issue 4) per workspace folder with databases: created on the
 * first sync that has databases (which loads the engine and the scheduler module), told
 * about every settings or folder change through `updateSettings`, and stopped when its
 * folder has no database any more, in Restricted Mode, or on dispose (a running backup
 * is abandoned and leaves nothing partial). The scheduler runs the engine itself; its
 * events (progress, runs, failures, restore tests) are settled by the BackupService.
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
      const watch = this.c.backups.watchScheduler(scheduler, () => this.entries.get(key)?.state ?? state);
      scheduler.start();
      this.entries.set(key, { folder: state.folder.name, scheduler, updates: 0, state, watch });
      this.c.channel.info(`schedule of ${state.folder.name}: ${scheduler.describe() ?? 'off'}; next ${scheduler.nextSlot()?.toString() ?? 'none'}`);
    }
  }

  private drop(key: string, e: Entry): void {
    e.watch.dispose();
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

import * as vscode from 'vscode';
import { isVerified } from '../core/model';
import { isoLocal } from '../core/time';
import type { Settings } from '../core/config';
import type { BackupsModel } from './backupsModel';
import { COMMANDS } from './commandIds';
import { displayName, type FolderState, type Folders } from './folders';
import type { BackupRecord } from '../core/model';
import { formatAge } from './format';

/** What the status bar shows, exposed for tests. */
export interface StatusSnapshot {
  visible: boolean;
  text: string;
  background: 'none' | 'warning' | 'error';
  tooltip: string;
}

/**
 * The interval between scheduled backups: the gap between the next two cron slots, 24 h
 * for the daily time, undefined when nothing is scheduled. Croner loads on first use.
 */
export async function scheduleIntervalMs(s: Settings, now: Date): Promise<number | undefined> {
  if (!s.enabled) return undefined;
  if (s.cron.trim()) {
    try {
      const { Cron } = await import('croner');
      const runs = new Cron(s.cron.trim(), { paused: true }).nextRuns(2, now);
      return runs.length === 2 ? runs[1].getTime() - runs[0].getTime() : undefined;
    } catch {
      return undefined;
    }
  }
  return s.scheduleDaily ? 86_400_000 : undefined;
}

/** The status bar warns when a verified backup older than this is not off-site yet (nor any newer one). */
export const OFFSITE_LAG_WARN_MS = 86_400_000;

/**
 * The status bar item: the age of the newest verified backup of the least recently
 * backed-up database ("$(database) 3 h ago"), the warning colour when that is older
 * than twice the schedule's interval, the error colour after a failure (until the next
 * success of that database); the warning colour too when a database's off-site copy lags
 * its newest verified backup by more than a day. Hidden when no database is configured.
 * Click opens the panel.
 */
export class StatusBar implements vscode.Disposable {
  private readonly item: vscode.StatusBarItem;
  private readonly failures = new Map<string, string>();
  /** The newest failure of each database seen in this session; a later success does not clear it. */
  private readonly seen = new Map<string, { time: string; reason: string }>();
  private readonly failureEmitter = new vscode.EventEmitter<string>();
  /** Fires with the database after each `reportFailure`. */
  readonly onDidReportFailure = this.failureEmitter.event;
  private readonly subs: vscode.Disposable[];
  private snapshot: StatusSnapshot = { visible: false, text: '', background: 'none', tooltip: '' };
  private timer: NodeJS.Timeout;
  private updating: Promise<void> = Promise.resolve();
  /** The off-site state of a database's backups (set by the container); undefined without a remote. */
  offsiteOf: (state: FolderState, records: BackupRecord[]) => { url: string; lagMs: number; failure?: string } | undefined = () => undefined;

  constructor(
    private readonly folders: Folders,
    private readonly model: BackupsModel,
  ) {
    this.item = vscode.window.createStatusBarItem('lifeboat.status', vscode.StatusBarAlignment.Left, 50);
    this.item.name = 'Lifeboat Backups';
    this.item.command = COMMANDS.openPanel.id;
    this.subs = [folders.onDidChange(() => void this.update()), model.onDidChange(() => void this.update())];
    // The age text goes stale as time passes; once a minute is enough for "min ago".
    this.timer = setInterval(() => void this.update(), 60_000);
  }

  /** Marks `db` failed (error colour) with the one-line reason. */
  reportFailure(db: string, message: string): void {
    this.failures.set(db, message);
    this.seen.set(db, { time: isoLocal(new Date()), reason: message });
    void this.update();
    this.failureEmitter.fire(db);
  }

  /**
   * The newest failure of `db` reported in this session (time as ISO 8601 with offset),
   * kept after a later success: it may never have reached the backup log (a directory
   * that cannot be written). Undefined when none.
   */
  lastFailureOf(db: string): { time: string; reason: string } | undefined {
    return this.seen.get(db);
  }

  /** Clears `db`'s failure. */
  reportSuccess(db: string): void {
    if (this.failures.delete(db)) void this.update();
  }

  /** The current state, after any pending update. */
  async current(): Promise<StatusSnapshot> {
    await this.updating;
    return this.snapshot;
  }

  /** Recomputes the item; serialised, never rejects. */
  update(): Promise<void> {
    this.updating = this.updating.then(() => this.compute()).catch(() => undefined);
    return this.updating;
  }

  private async compute(): Promise<void> {
    const states = await this.folders.resolve();
    const withDbs = states.filter((s) => s.databases.length);
    if (!withDbs.length) {
      this.item.hide();
      this.snapshot = { visible: false, text: '', background: 'none', tooltip: '' };
      return;
    }
    const now = Date.now();
    let worst: { age: number; db: string } | undefined;
    let late = false;
    let offsiteLate = false;
    const lines: string[] = [];
    for (const state of withDbs) {
      const interval = await scheduleIntervalMs(state.settings, new Date(now));
      for (const db of state.databases) {
        const { records } = await this.model.ofDatabase(state, db);
        const newest = records.find(isVerified);
        const age = newest ? now - Date.parse(newest.manifest.created) : Infinity;
        if (!worst || age > worst.age) worst = { age, db };
        if (interval !== undefined && age > 2 * interval) late = true;
        const fail = this.failures.get(db);
        lines.push(`- ${displayName(state.folder, db)}: ${newest ? `verified backup ${formatAge(age)}` : 'no verified backup'}${fail ? ` — last attempt FAILED: ${fail}` : ''}`);
        const off = this.offsiteOf(state, records);
        if (off && off.lagMs > OFFSITE_LAG_WARN_MS) {
          offsiteLate = true;
          const behind = `a verified backup of ${formatAge(off.lagMs)} is not copied yet`;
          lines.push(`  - off-site copy in ${off.url}: ${behind}${off.failure ? ` (${off.failure.replace(/^Lifeboat: /, '')})` : ''}`);
        }
      }
    }
    const failed = this.failures.size > 0;
    const text = `$(database) ${worst && worst.age !== Infinity ? formatAge(worst.age) : 'no backup'}${offsiteLate ? ' $(cloud) off-site behind' : ''}`;
    const background = failed ? 'error' : late || offsiteLate ? 'warning' : 'none';
    this.item.text = text;
    this.item.backgroundColor = background === 'none' ? undefined : new vscode.ThemeColor(`statusBarItem.${background}Background`);
    const tooltip = `**Lifeboat**\n\n${lines.join('\n')}\n\nClick to open settings and statistics.`;
    this.item.tooltip = new vscode.MarkdownString(tooltip);
    this.item.accessibilityInformation = { label: `Lifeboat: newest verified backup ${text.replace('$(database) ', '').replace(' $(cloud) off-site behind', '')}${failed ? ', last backup failed' : ''}${offsiteLate ? ', the off-site copy lags more than a day' : ''}` };
    this.item.show();
    this.snapshot = { visible: true, text, background, tooltip };
  }

  dispose(): void {
    clearInterval(this.timer);
    for (const s of this.subs) s.dispose();
    this.failureEmitter.dispose();
    this.item.dispose();
  }
}

import type * as vscode from 'vscode';
import type { FolderState } from './folders';

/** What the container needs from the scheduler host (tests read `describe`). */
export interface SchedulerHostLike extends vscode.Disposable {
  /** Creates, updates or stops one scheduler per folder with databases; called on every settings or folder change. */
  sync(states: FolderState[]): Promise<void>;
  /** Per folder: the next slot (ISO) and how many settings updates the scheduler has taken. */
  describe(): { folder: string; next?: string; updates: number }[];
}

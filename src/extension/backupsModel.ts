import * as vscode from 'vscode';
import type { BackupRecord, Tier } from '../core/model';
import type { CoreHost } from './coreLoader';
import type { FolderState } from './folders';

/** One backup directory's listing with each record's display tier and keep reasons. */
export interface DirListing {
  records: BackupRecord[];
  broken: { path: string; error: string }[];
  tiers: Map<string, { tier: Tier; reasons: string[] }>;
  /** Set when listing or planning failed; the tree shows it as a row. */
  error?: string;
}

/**
 * The backups of every folder, read through the engine on first need and cached per
 * directory until a file watcher, a setting or an operation invalidates it. Watches each
 * backup directory (archives, state and log) and fires onDidChange after a change.
 */
export class BackupsModel implements vscode.Disposable {
  private readonly cache = new Map<string, Promise<DirListing>>();
  private readonly watchers = new Map<string, vscode.Disposable>();
  private readonly changed = new vscode.EventEmitter<void>();
  readonly onDidChange = this.changed.event;
  private timer: NodeJS.Timeout | undefined;
  private readonly dirChanged = new vscode.EventEmitter<string>();
  /** Fires with a directory whose files changed (debounced with the rest). */
  readonly onDidChangeDir = this.dirChanged.event;
  private readonly pendingDirs = new Set<string>();

  constructor(private readonly core: CoreHost) {}

  /** The listing of `state.dir`; never rejects (failures are in `error`). */
  listing(state: FolderState): Promise<DirListing> {
    this.watch(state);
    let p = this.cache.get(state.dir);
    if (!p) {
      p = this.load(state);
      this.cache.set(state.dir, p);
    }
    return p;
  }

  /** The records of one database, newest first, with their tiers. */
  async ofDatabase(state: FolderState, db: string): Promise<{ records: BackupRecord[]; tiers: DirListing['tiers']; error?: string }> {
    const l = await this.listing(state);
    return { records: l.records.filter((r) => r.manifest.source.path === db), tiers: l.tiers, error: l.error };
  }

  /** Drops the cached listing of `dir` (or all) and fires onDidChange. */
  invalidate(dir?: string): void {
    if (dir) this.cache.delete(dir);
    else this.cache.clear();
    this.changed.fire();
  }

  private async load(state: FolderState): Promise<DirListing> {
    try {
      const { core, engine } = await this.core.get();
      const { records, broken } = await engine.list(state.dir);
      let tiers = new Map<string, { tier: Tier; reasons: string[] }>();
      let error: string | undefined;
      try {
        tiers = core.tiersOf(records, state.settings.retention, engine.clock.now());
      } catch (e) {
        error = (e as Error).message;
      }
      return { records, broken, tiers, error };
    } catch (e) {
      return { records: [], broken: [], tiers: new Map(), error: (e as Error).message };
    }
  }

  private watch(state: FolderState): void {
    if (this.watchers.has(state.dir)) return;
    // The objects that make backups visible in either format (a zip; a repository's snapshot manifest), the state and the log.
    const w = vscode.workspace.createFileSystemWatcher(new vscode.RelativePattern(vscode.Uri.file(state.dir), '{*.zip,snapshots/*.json,.lifeboat/state.json,.lifeboat/log.jsonl}'));
    const poke = () => {
      this.pendingDirs.add(state.dir);
      // Several files change per backup; one refresh after the burst is enough.
      if (this.timer) clearTimeout(this.timer);
      this.timer = setTimeout(() => {
        this.timer = undefined;
        const dirs = [...this.pendingDirs];
        this.pendingDirs.clear();
        for (const d of dirs) this.cache.delete(d);
        this.changed.fire();
        for (const d of dirs) this.dirChanged.fire(d);
      }, 300);
    };
    const subs = [w.onDidCreate(poke), w.onDidChange(poke), w.onDidDelete(poke), w];
    this.watchers.set(state.dir, { dispose: () => subs.forEach((s) => s.dispose()) });
  }

  /** Stops watching directories no folder uses any more. */
  prune(dirs: string[]): void {
    for (const [d, w] of this.watchers) {
      if (!dirs.includes(d)) {
        w.dispose();
        this.watchers.delete(d);
        this.cache.delete(d);
      }
    }
  }

  dispose(): void {
    if (this.timer) clearTimeout(this.timer);
    for (const w of this.watchers.values()) w.dispose();
    this.watchers.clear();
    this.changed.dispose();
    this.dirChanged.dispose();
  }
}

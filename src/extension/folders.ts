import * as path from 'node:path';
import { realpathSync } from 'node:fs';
import * as vscode from 'vscode';
import { DEFAULT_SETTINGS, FIELDS, describeIssue, normalize, type Settings } from '../core/config';
import { canonicalPath } from '../core/fsutil';

/** One workspace folder as Lifeboat sees it: its settings, backup directory and databases. */
export interface FolderState {
  folder: vscode.WorkspaceFolder;
  settings: Settings;
  /** Absolute backup directory (`lifeboat.directory` resolved against the folder). */
  dir: string;
  /** Absolute paths of the databases (globs expanded), sorted. */
  databases: string[];
}

const GLOB_CHARS = /[*?[\]{}]/;

/**
 * Reads every folder's `lifeboat.*` settings through the core's `normalize()`, keeping
 * the last valid value of an invalid setting (and warning once per distinct invalid
 * value, naming the setting), and resolves the databases. `resolve()` is cached until
 * the configuration or the folders change; `onDidChange` fires then.
 */
export class Folders implements vscode.Disposable {
  private readonly lastValid = new Map<string, Settings>();
  private readonly warned = new Set<string>();
  private cache: Promise<FolderState[]> | undefined;
  private readonly changed = new vscode.EventEmitter<void>();
  readonly onDidChange = this.changed.event;
  private readonly subs: vscode.Disposable[] = [];

  constructor(private readonly warn: (message: string) => void) {
    this.subs.push(
      vscode.workspace.onDidChangeConfiguration((e) => {
        if (e.affectsConfiguration('lifeboat')) this.invalidate();
      }),
      vscode.workspace.onDidChangeWorkspaceFolders(() => this.invalidate()),
      vscode.workspace.onDidGrantWorkspaceTrust(() => this.invalidate()),
    );
  }

  /** Drops the cache and fires onDidChange. */
  invalidate(): void {
    this.cache = undefined;
    this.changed.fire();
  }

  /**
   * The settings of `folder`: valid values taken, invalid ones replaced by the last valid
   * value (the default at first) with a warning naming the setting. Never throws.
   */
  settingsOf(folder: vscode.WorkspaceFolder): Settings {
    const cfg = vscode.workspace.getConfiguration('lifeboat', folder.uri);
    const raw: Record<string, unknown> = {};
    for (const f of FIELDS) {
      const v = cfg.get(f.key);
      if (v !== undefined) raw[`lifeboat.${f.key}`] = v;
    }
    const key = folder.uri.toString();
    const base = this.lastValid.get(key) ?? DEFAULT_SETTINGS;
    const { settings, issues } = normalize(raw, base);
    for (const i of issues) {
      const kept = FIELDS.find((f) => `lifeboat.${f.key}` === i.field)?.get(base);
      const msg = `Lifeboat: ${describeIssue(i)}; keeping the last valid value ${JSON.stringify(kept)}.`;
      if (!this.warned.has(key + msg)) {
        this.warned.add(key + msg);
        this.warn(msg);
      }
    }
    this.lastValid.set(key, settings);
    return settings;
  }

  /** Every folder's state; folders without a configured database are included with `databases: []`. */
  resolve(): Promise<FolderState[]> {
    this.cache ??= this.load();
    return this.cache;
  }

  /** The folder state that owns `db` (an absolute path), if any. */
  async folderOfDatabase(db: string): Promise<FolderState | undefined> {
    return (await this.resolve()).find((f) => f.databases.includes(db));
  }

  private async load(): Promise<FolderState[]> {
    const out: FolderState[] = [];
    for (const folder of vscode.workspace.workspaceFolders ?? []) {
      if (folder.uri.scheme !== 'file') continue;
      const settings = this.settingsOf(folder);
      // Canonical paths (symlinks resolved), as the engine records them in manifests.
      const root = await canonicalPath(folder.uri.fsPath);
      const dir = path.resolve(root, settings.directory);
      const dbs = new Set<string>();
      for (const entry of settings.databases) {
        if (!entry.trim()) continue;
        if (GLOB_CHARS.test(entry)) {
          const found = await vscode.workspace.findFiles(new vscode.RelativePattern(folder, entry), '**/node_modules/**', 200);
          for (const u of found) {
            const db = await canonicalPath(u.fsPath);
            if (!isInside(db, dir)) dbs.add(db);
          }
        } else {
          dbs.add(await canonicalPath(path.resolve(root, entry)));
        }
      }
      out.push({ folder, settings, dir, databases: [...dbs].sort() });
    }
    return out;
  }

  dispose(): void {
    for (const s of this.subs) s.dispose();
    this.changed.dispose();
  }
}

/** True when `p` is `dir` or inside it. */
export function isInside(p: string, dir: string): boolean {
  const rel = path.relative(dir, p);
  return rel === '' || (!rel.startsWith('..') && !path.isAbsolute(rel));
}

/** The database's path relative to its folder, with forward slashes (how settings and task names show it). */
export function relativeDb(folder: vscode.WorkspaceFolder, db: string): string {
  let rel = path.relative(folder.uri.fsPath, db);
  if (rel.startsWith('..')) {
    // The database path is canonical; the folder's may go through a symlink.
    try {
      rel = path.relative(realpathSync(folder.uri.fsPath), db);
    } catch {
      // keep the first answer
    }
  }
  return (rel.startsWith('..') || path.isAbsolute(rel) ? db : rel).split(path.sep).join('/');
}

/**
 * How messages name a database: its file name, and in a multi-root workspace (where two
 * folders may each hold an `app.db`) its path in the folder and the folder's name too,
 * e.g. "app.db in shop". Never throws.
 */
export function displayName(folder: vscode.WorkspaceFolder, db: string): string {
  const multi = (vscode.workspace.workspaceFolders?.length ?? 0) > 1;
  return multi ? `${relativeDb(folder, db)} in ${folder.name}` : path.basename(db);
}

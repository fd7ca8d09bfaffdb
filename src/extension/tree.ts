import * as path from 'node:path';
import * as vscode from 'vscode';
import { TIERS, type BackupRecord, type Tier } from '../core/model';
import type { BackupsModel } from './backupsModel';
import { backupContext, NodeContext } from './contextValues';
import type { FolderState, Folders } from './folders';
import { relativeDb } from './folders';
import { backupTooltip, formatLocal, formatRowLabel, mdEscape, rowDescription, rowState, TIER_LABEL } from './format';
import { offsiteState } from './offsite';

/** A database row. */
export interface DatabaseNode {
  type: 'database';
  state: FolderState;
  db: string;
}
/** A tier row under a database. */
export interface TierNode {
  type: 'tier';
  parent: DatabaseNode;
  tier: Tier;
  records: BackupRecord[];
}
/** A backup row: what commands receive from a tree row's context menu or inline action. */
export interface BackupNode {
  type: 'backup';
  parent: TierNode;
  record: BackupRecord;
  keep?: { tier: Tier; reasons: string[] };
}
/** A row that only shows a message (a listing error, no backups yet). */
export interface MessageNode {
  type: 'message';
  id: string;
  text: string;
  detail?: string;
}
export type Node = DatabaseNode | TierNode | BackupNode | MessageNode;

/**
 * The "Backups" tree: database, then tier (Daily, Weekly, Monthly, Manual, Migrations
 * from the core's tiersOf), then backup rows. Empty when no database is configured, so
 * that the view's welcome content shows. Refreshes when the folders or the backups change.
 */
export class BackupsTree implements vscode.TreeDataProvider<Node>, vscode.Disposable {
  private readonly changed = new vscode.EventEmitter<Node | undefined>();
  readonly onDidChangeTreeData = this.changed.event;
  private readonly subs: vscode.Disposable[];
  /** The last off-site copy failure of a remote URL (set by the container; rows then read "off-site failed"). */
  offsiteFailureOf: (url: string) => string | undefined = () => undefined;

  constructor(
    private readonly folders: Folders,
    private readonly model: BackupsModel,
  ) {
    this.subs = [folders.onDidChange(() => this.refresh()), model.onDidChange(() => this.refresh())];
  }

  refresh(): void {
    this.changed.fire(undefined);
  }

  async getChildren(node?: Node): Promise<Node[]> {
    if (!node) {
      const states = await this.folders.resolve();
      this.model.prune(states.map((s) => s.dir));
      return states.flatMap((state) => state.databases.map((db): DatabaseNode => ({ type: 'database', state, db })));
    }
    if (node.type === 'database') {
      const { records, tiers, error } = await this.model.ofDatabase(node.state, node.db);
      const out: Node[] = [];
      if (error) out.push({ type: 'message', id: `${node.db}#error`, text: 'Could not read the backups', detail: error });
      for (const tier of TIERS) {
        const rs = records.filter((r) => (tiers.get(r.id)?.tier ?? fallbackTier(r)) === tier);
        if (rs.length) out.push({ type: 'tier', parent: node, tier, records: rs });
      }
      if (!records.length && !error) out.push({ type: 'message', id: `${node.db}#empty`, text: 'No backups yet', detail: 'Run "Back Up Now" to make the first one.' });
      return out;
    }
    if (node.type === 'tier') {
      const { tiers } = await this.model.ofDatabase(node.parent.state, node.parent.db);
      return node.records.map((record): BackupNode => ({ type: 'backup', parent: node, record, keep: tiers.get(record.id) }));
    }
    return [];
  }

  getParent(node: Node): Node | undefined {
    if (node.type === 'backup') return node.parent;
    if (node.type === 'tier') return node.parent;
    return undefined;
  }

  getTreeItem(node: Node): vscode.TreeItem {
    switch (node.type) {
      case 'database': {
        const item = new vscode.TreeItem(path.basename(node.db), vscode.TreeItemCollapsibleState.Expanded);
        item.id = `db:${node.db}`;
        const rel = relativeDb(node.state.folder, node.db);
        const multi = (vscode.workspace.workspaceFolders?.length ?? 0) > 1;
        const where = rel === path.basename(node.db) ? '' : rel;
        item.description = multi ? [node.state.folder.name, where].filter(Boolean).join(' · ') : where;
        item.tooltip = new vscode.MarkdownString(`**${node.db}**\n\nBackups in ${node.state.dir}`);
        item.iconPath = new vscode.ThemeIcon('database');
        item.contextValue = NodeContext.Database;
        item.resourceUri = vscode.Uri.file(node.db);
        return item;
      }
      case 'tier': {
        const item = new vscode.TreeItem(TIER_LABEL[node.tier], vscode.TreeItemCollapsibleState.Expanded);
        item.id = `tier:${node.parent.db}:${node.tier}`;
        item.description = `${node.records.length}`;
        item.iconPath = new vscode.ThemeIcon(node.tier === 'manual' ? 'person' : node.tier === 'migrations' ? 'git-merge' : 'calendar');
        item.contextValue = NodeContext.Tier;
        return item;
      }
      case 'backup': {
        const r = node.record;
        const state = rowState(r);
        const item = new vscode.TreeItem(formatRowLabel(r.manifest.created), vscode.TreeItemCollapsibleState.None);
        item.id = `backup:${r.path}`;
        const url = node.parent.parent.state.settings.offsite.url;
        const off = url ? offsiteState(r, url, this.offsiteFailureOf(url)) : undefined;
        item.description = rowDescription(r) + (off ? ` · ${OFFSITE_WORD[off.state]}` : '');
        let tip = backupTooltip(r, node.keep);
        if (off) {
          const where = mdEscape(url);
          tip += `\n\n**Off-site:** ${
            off.state === 'copied'
              ? `copied to ${where} ${mdEscape(formatLocal(off.at!))}`
              : off.state === 'failed'
                ? `not copied to ${where}: ${mdEscape(off.detail ?? 'failed')}`
                : off.state === 'pending'
                  ? `pending (not in ${where} yet)`
                  : `not copied (only verified backups go off-site)`
          }`;
        }
        const md = new vscode.MarkdownString(tip);
        md.supportThemeIcons = false;
        item.tooltip = md;
        item.iconPath = r.state.pinned
          ? new vscode.ThemeIcon('pinned')
          : state === 'verified'
            ? new vscode.ThemeIcon('pass', new vscode.ThemeColor('testing.iconPassed'))
            : state === 'failed'
              ? new vscode.ThemeIcon('error', new vscode.ThemeColor('testing.iconFailed'))
              : new vscode.ThemeIcon('warning', new vscode.ThemeColor('list.warningForeground'));
        item.contextValue = backupContext(r.manifest.kind, state, !!r.state.pinned);
        item.accessibilityInformation = { label: `${r.manifest.kind} backup of ${r.manifest.source.name}, ${formatLocal(r.manifest.created)}, ${item.description}` };
        return item;
      }
      case 'message': {
        const item = new vscode.TreeItem(node.text, vscode.TreeItemCollapsibleState.None);
        item.id = `msg:${node.id}`;
        item.description = node.detail;
        item.tooltip = node.detail;
        item.iconPath = new vscode.ThemeIcon('info');
        item.contextValue = NodeContext.Message;
        return item;
      }
    }
  }

  dispose(): void {
    for (const s of this.subs) s.dispose();
    this.changed.dispose();
  }
}

const OFFSITE_WORD = { copied: 'off-site', pending: 'off-site pending', failed: 'off-site failed', unverified: 'not off-site' } as const;

function fallbackTier(r: BackupRecord): Tier {
  if (r.state.pinned || r.manifest.kind === 'manual') return 'manual';
  if (r.manifest.kind === 'migration' || r.manifest.kind === 'pre-restore') return 'migrations';
  return 'daily';
}

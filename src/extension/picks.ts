import * as path from 'node:path';
import * as vscode from 'vscode';
import type { BackupRecord } from '../core/model';
import type { BackupsModel } from './backupsModel';
import { COMMANDS } from './commandIds';
import type { FolderState, Folders } from './folders';
import { relativeDb } from './folders';
import { formatLocal, rowDescription } from './format';
import type { Node } from './tree';

/** A database chosen by the user (or implied by a tree row). */
export interface DbTarget {
  state: FolderState;
  db: string;
}

/** A backup to act on: its archive, and its record and database when known (a tree row, a listing). */
export interface ChosenBackup {
  record?: BackupRecord;
  archive: string;
  target?: DbTarget;
}

/** Every configured database of every folder. */
export async function allDatabases(folders: Folders): Promise<DbTarget[]> {
  return (await folders.resolve()).flatMap((state) => state.databases.map((db) => ({ state, db })));
}

/** True when `x` is one of the tree's nodes (VS Code passes the node to row commands). */
export function isNode(x: unknown): x is Node {
  return !!x && typeof x === 'object' && typeof (x as { type?: unknown }).type === 'string' && ['database', 'tier', 'backup', 'message'].includes((x as { type: string }).type);
}

/** The database a tree node belongs to, if any. */
export function dbOfNode(n: Node): DbTarget | undefined {
  if (n.type === 'database') return { state: n.state, db: n.db };
  if (n.type === 'tier') return { state: n.parent.state, db: n.parent.db };
  if (n.type === 'backup') return { state: n.parent.parent.state, db: n.parent.parent.db };
  return undefined;
}

/**
 * The database to act on: the row's, the only one, or the user's pick (with an "All
 * databases" entry when `allowAll`). Undefined when the user cancels, or when none is
 * configured (the user is offered "Protect Database..." then).
 */
export async function pickDatabases(folders: Folders, arg: unknown, o: { allowAll?: boolean; title: string }): Promise<DbTarget[] | undefined> {
  if (isNode(arg)) {
    const t = dbOfNode(arg);
    return t ? [t] : undefined;
  }
  const all = await allDatabases(folders);
  if (!all.length) {
    const pick = await vscode.window.showInformationMessage('Lifeboat: no database is protected in this workspace yet.', COMMANDS.protectDatabase.title);
    if (pick) void vscode.commands.executeCommand(COMMANDS.protectDatabase.id);
    return undefined;
  }
  if (all.length === 1) return all;
  type Item = vscode.QuickPickItem & { targets: DbTarget[] };
  const items: Item[] = all.map((t) => ({ label: path.basename(t.db), description: `${t.state.folder.name} · ${relativeDb(t.state.folder, t.db)}`, targets: [t] }));
  if (o.allowAll) items.unshift({ label: 'All databases', description: `${all.length} databases`, targets: all });
  const pick = await vscode.window.showQuickPick(items, { title: o.title, placeHolder: 'Choose a database' });
  return pick?.targets;
}

/** A backup to act on: the row's, or picked from a database's backups (newest first); `browse` adds "Browse...". */
export async function pickBackup(
  folders: Folders,
  model: BackupsModel,
  arg: unknown,
  o: { title: string; browse?: boolean },
): Promise<ChosenBackup | undefined> {
  if (isNode(arg) && arg.type === 'backup') return { record: arg.record, archive: arg.record.path, target: dbOfNode(arg) };
  if (arg instanceof vscode.Uri) return { archive: arg.fsPath };
  const targets = await pickDatabases(folders, arg, { title: o.title });
  if (!targets?.length) return undefined;
  const target = targets[0];
  const { records } = await model.ofDatabase(target.state, target.db);
  type Item = vscode.QuickPickItem & { record?: BackupRecord; browse?: boolean };
  const items: Item[] = records.map((r) => ({ label: formatLocal(r.manifest.created), description: rowDescription(r), detail: r.id, record: r }));
  if (o.browse) items.push({ label: '$(folder-opened) Browse...', description: 'Pick a Lifeboat archive (.zip) or a snapshot (snapshots/*.json) from disk', browse: true, alwaysShow: true });
  if (!items.length) {
    void vscode.window.showInformationMessage(`Lifeboat: ${path.basename(target.db)} has no backups yet.`);
    return undefined;
  }
  const pick = await vscode.window.showQuickPick(items, { title: o.title, placeHolder: `Backups of ${path.basename(target.db)}, newest first`, matchOnDetail: true });
  if (!pick) return undefined;
  if (pick.browse) {
    const uris = await vscode.window.showOpenDialog({
      canSelectMany: false,
      openLabel: 'Restore',
      title: 'Choose a Lifeboat archive or repository snapshot',
      filters: { 'Lifeboat backups': ['zip', 'json'] },
      defaultUri: vscode.Uri.file(target.state.dir),
    });
    return uris?.[0] ? { archive: uris[0].fsPath, target } : undefined;
  }
  return { record: pick.record, archive: pick.record!.path, target };
}

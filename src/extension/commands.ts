import * as path from 'node:path';
import * as vscode from 'vscode';
import { requireTrust, type BackupService } from './backupService';
import type { BackupsModel } from './backupsModel';
import { COMMANDS, type CommandHandlers } from './commandIds';
import type { Folders } from './folders';
import { isInside, relativeDb } from './folders';
import { backupDirOf, backupIdOf, SAVE_AS_FILTERS, saveAsName } from './backupFiles';
import { allDatabases, isNode, pickBackup, pickDatabases } from './picks';
import type { PanelHost } from './panel';
import type { TaskHook } from './tasks';

/** What command handlers need; one object so the container wires it once. */
export interface CommandDeps {
  folders: Folders;
  model: BackupsModel;
  backups: BackupService;
  channel: vscode.LogOutputChannel;
  panel: PanelHost;
  tasks: TaskHook;
  refresh(): void;
}

/**
 * The handler of every command in COMMANDS. A handler turns what VS Code passes (a row of
 * the real tree, a Uri, nothing) into targets, asking the user where needed, and hands
 * them to the BackupService, which runs the operation and its after-effects. Handlers
 * never throw: failures are shown once.
 */
export function commandHandlers(d: CommandDeps): CommandHandlers {
  const { folders, model, backups } = d;
  const route = 'command' as const;

  const backupNow = async (arg?: unknown) => {
    if (!(await requireTrust('back up'))) return;
    const targets = await pickDatabases(folders, arg, { allowAll: true, title: COMMANDS.backupNow.title });
    for (const t of targets ?? []) await backups.backup(t, 'manual', { route, trigger: 'Back Up Now' });
  };

  const restore = async (arg?: unknown) => {
    if (!(await requireTrust('restore'))) return;
    const chosen = await pickBackup(folders, model, arg, { title: COMMANDS.restoreBackup.title, browse: true });
    if (chosen) await backups.restore(chosen, { route });
  };

  const verify = async (arg?: unknown) => {
    const chosen = await pickBackup(folders, model, arg, { title: COMMANDS.verifyBackup.title });
    if (chosen) await backups.verify(chosen, { route });
  };

  const verifyAll = async (arg?: unknown) => {
    const targets = isNode(arg) ? await pickDatabases(folders, arg, { title: COMMANDS.verifyAll.title }) : await allDatabases(folders);
    if (targets?.length) await backups.verifyAll(targets, { route });
  };

  const saveAs = async (arg?: unknown) => {
    if (!(await requireTrust('save backups'))) return;
    const chosen = await pickBackup(folders, model, arg, { title: COMMANDS.saveBackupAs.title });
    if (!chosen) return;
    // Proposed beside the database (where people look for it), never over it: the name is the backup's id.
    const near = chosen.target ? path.dirname(chosen.target.db) : path.dirname(backupDirOf(chosen.archive));
    const name = chosen.record ? saveAsName(chosen.record) : `${backupIdOf(chosen.archive)}.sqlite`;
    const uri = await vscode.window.showSaveDialog({
      title: COMMANDS.saveBackupAs.title,
      saveLabel: 'Save',
      defaultUri: vscode.Uri.file(path.join(near, name)),
      filters: SAVE_AS_FILTERS,
    });
    if (!uri) return;
    if (uri.scheme !== 'file') {
      void vscode.window.showErrorMessage(`Lifeboat: backups can be saved to local files only (got ${uri.toString()}).`);
      return;
    }
    await backups.exportBackup(chosen, uri.fsPath, { route });
  };

  const del = async (arg?: unknown) => {
    if (!(await requireTrust('delete backups'))) return;
    const chosen = await pickBackup(folders, model, arg, { title: COMMANDS.deleteBackup.title });
    if (chosen) await backups.delete(chosen, { route });
  };

  const pin = (pinned: boolean) => async (arg?: unknown) => {
    if (!(await requireTrust(pinned ? 'pin backups' : 'unpin backups'))) return;
    const chosen = await pickBackup(folders, model, arg, { title: pinned ? COMMANDS.pinBackup.title : COMMANDS.unpinBackup.title });
    if (chosen) await backups.setPinned(chosen, pinned, { route });
  };

  const rotate = async (arg?: unknown) => {
    if (!(await requireTrust('rotate backups'))) return;
    const targets = isNode(arg) ? await pickDatabases(folders, arg, { title: COMMANDS.rotateNow.title }) : await allDatabases(folders);
    if (targets?.length) await backups.rotate(targets.map((t) => t.state), { route });
  };

  const protect = async () => {
    if (!(await requireTrust('protect a database'))) return;
    const states = await folders.resolve();
    if (!states.length) {
      void vscode.window.showInformationMessage('Lifeboat: open a folder that holds a SQLite database first.');
      return;
    }
    const found = await vscode.workspace.findFiles('**/*.{db,sqlite,sqlite3}', '**/{node_modules,.git}/**', 500);
    type Item = vscode.QuickPickItem & { state: (typeof states)[number]; file: string };
    const items: Item[] = [];
    for (const u of found.sort((a, b) => a.fsPath.localeCompare(b.fsPath))) {
      const state = states.find((s) => isInside(u.fsPath, s.folder.uri.fsPath));
      if (!state || isInside(u.fsPath, state.dir) || state.databases.includes(u.fsPath)) continue;
      items.push({ label: relativeDb(state.folder, u.fsPath), description: states.length > 1 ? state.folder.name : undefined, state, file: u.fsPath });
    }
    if (!items.length) {
      void vscode.window.showInformationMessage('Lifeboat: no unprotected *.db, *.sqlite or *.sqlite3 file was found in this workspace. Add a path to the "lifeboat.databases" setting instead.');
      return;
    }
    const picks = await vscode.window.showQuickPick(items, { canPickMany: true, title: COMMANDS.protectDatabase.title, placeHolder: 'Choose the databases Lifeboat should back up' });
    if (!picks?.length) return;
    const multi = (vscode.workspace.workspaceFolders?.length ?? 0) > 1;
    for (const state of new Set(picks.map((p) => p.state))) {
      const cfg = vscode.workspace.getConfiguration('lifeboat', state.folder.uri);
      const add = picks.filter((p) => p.state === state).map((p) => p.label);
      const current = cfg.get<string[]>('databases') ?? [];
      await cfg.update('databases', [...current, ...add.filter((a) => !current.includes(a))], multi ? vscode.ConfigurationTarget.WorkspaceFolder : vscode.ConfigurationTarget.Workspace);
    }
    folders.invalidate();
    const names = picks.map((p) => p.label).join(', ');
    const go = await vscode.window.showInformationMessage(`Lifeboat now protects ${names}. Make the first backup now?`, COMMANDS.backupNow.title);
    if (go) {
      const all = await allDatabases(folders);
      for (const p of picks) {
        const t = all.find((x) => x.db === p.file);
        if (t) await backups.backup(t, 'manual', { route, trigger: 'first backup' });
      }
    }
  };

  const reveal = async (arg?: unknown) => {
    const chosen = await pickBackup(folders, model, arg, { title: COMMANDS.revealBackup.title });
    if (chosen) await backups.reveal(chosen.archive);
  };

  return {
    backupNow,
    restoreBackup: restore,
    verifyBackup: verify,
    verifyAll,
    saveBackupAs: saveAs,
    deleteBackup: del,
    pinBackup: pin(true),
    unpinBackup: pin(false),
    rotateNow: rotate,
    protectDatabase: protect,
    openPanel: () => d.panel.show(),
    showLog: () => d.channel.show(true),
    revealBackup: reveal,
    addBackupStep: (arg?: unknown) => d.tasks.addBackupStepCommand(arg),
    refresh: () => d.refresh(),
  };
}

/** Registers every command of COMMANDS with its handler; a handler's unexpected error is logged and shown once. */
export function registerCommands(handlers: CommandHandlers, onError: (title: string, e: unknown) => void): vscode.Disposable[] {
  return (Object.keys(COMMANDS) as (keyof typeof COMMANDS)[]).map((k) =>
    vscode.commands.registerCommand(COMMANDS[k].id, async (...args: unknown[]) => {
      try {
        return await handlers[k](...args);
      } catch (e) {
        onError(COMMANDS[k].title, e);
      }
    }),
  );
}

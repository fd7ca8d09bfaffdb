import * as path from 'node:path';
import * as vscode from 'vscode';
import { requireTrust, type BackupService } from './backupService';
import type { BackupsModel } from './backupsModel';
import { COMMANDS, type CommandHandlers } from './commandIds';
import type { Folders } from './folders';
import { isInside, relativeDb } from './folders';
import { backupDirOf, backupIdOf, SAVE_AS_FILTERS, saveAsName } from './backupFiles';
import { formatLocal, rowDescription } from './format';
import { allDatabases, dbOfNode, isNode, pickBackup, pickDatabases, type ChosenBackup } from './picks';
import type { InspectHost } from './inspectHost';
import type { OffsiteHost } from './offsite';
import type { PanelHost } from './panel';
import type { TaskHook } from './tasks';

/** What command handlers need; one object so the container wires it once. */
export interface CommandDeps {
  folders: Folders;
  model: BackupsModel;
  backups: BackupService;
  channel: vscode.LogOutputChannel;
  panel: PanelHost;
  inspect: InspectHost;
  offsite: OffsiteHost;
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

  const openBackup = async (arg?: unknown) => {
    const chosen = await pickBackup(folders, model, arg, { title: COMMANDS.openBackup.title });
    if (chosen) await d.inspect.openBackup(chosen);
  };

  const compareWithCurrent = async (arg?: unknown) => {
    const chosen = await pickBackup(folders, model, arg, { title: COMMANDS.compareWithCurrent.title });
    if (chosen) await d.inspect.compareWithCurrent(chosen);
  };

  /** Two backup rows (a test, another extension), one row (the other is picked), or both picked. */
  const compareBackups = async (arg?: unknown, arg2?: unknown) => {
    const title = COMMANDS.compareBackups.title;
    const asChosen = (x: unknown): ChosenBackup | undefined =>
      isNode(x) && x.type === 'backup' ? { record: x.record, archive: x.record.path, target: dbOfNode(x) } : x instanceof vscode.Uri ? { archive: x.fsPath } : undefined;
    const first = asChosen(arg);
    const second = asChosen(arg2);
    if (first && second) {
      await d.inspect.compareBackups(first, second);
      return;
    }
    const targets = first?.target ? [first.target] : await pickDatabases(folders, arg, { title });
    const target = targets?.[0];
    if (!target) return;
    const { records } = await model.ofDatabase(target.state, target.db);
    const others = records.filter((r) => r.id !== first?.record?.id);
    if (others.length < (first ? 1 : 2)) {
      void vscode.window.showInformationMessage(`Lifeboat: ${path.basename(target.db)} needs two backups to compare; it has ${records.length}.`);
      return;
    }
    const items = others.map((r) => ({ label: formatLocal(r.manifest.created), description: rowDescription(r), detail: r.id, record: r }));
    let picked: typeof items;
    if (first) {
      const one = await vscode.window.showQuickPick(items, { title, placeHolder: `Compare the backup of ${formatLocal(first.record?.manifest.created ?? '')} with which backup?`, matchOnDetail: true });
      picked = one ? [one] : [];
    } else {
      picked = (await vscode.window.showQuickPick(items, { title, placeHolder: `Choose two backups of ${path.basename(target.db)}`, canPickMany: true, matchOnDetail: true })) ?? [];
      if (picked.length && picked.length !== 2) {
        void vscode.window.showInformationMessage(`Lifeboat: choose exactly two backups to compare (${picked.length} were chosen).`);
        return;
      }
    }
    const chosen = picked.map((p): ChosenBackup => ({ record: p.record, archive: p.record.path, target }));
    if (first) chosen.unshift(first);
    if (chosen.length === 2) await d.inspect.compareBackups(chosen[0], chosen[1]);
  };

  const reveal = async (arg?: unknown) => {
    const chosen = await pickBackup(folders, model, arg, { title: COMMANDS.revealBackup.title });
    if (chosen) await backups.reveal(chosen.archive);
  };

  return {
    backupNow,
    restoreBackup: restore,
    verifyBackup: verify,
    openBackup,
    compareWithCurrent,
    compareBackups,
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
    setOffsiteCredentials: async () => {
      if (await requireTrust('set off-site credentials')) await d.offsite.setCredentials();
    },
    copyOffsiteNow: async () => {
      if (await requireTrust('copy backups off-site')) return d.offsite.copyNowCommand();
      return undefined;
    },
    verifyOffsite: () => d.offsite.verifyCommand(),
    restoreFromOffsite: async () => {
      if (await requireTrust('restore')) return d.offsite.restoreCommand();
      return undefined;
    },
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

import * as path from 'node:path';
import * as vscode from 'vscode';
import { BackupError } from '../core/errors';
import { restoreInUseSupport } from '../core/restore/inUse';
import type { BackupsModel } from './backupsModel';
import { COMMANDS, type CommandHandlers } from './commandIds';
import type { CoreHost } from './coreLoader';
import type { Folders } from './folders';
import { isInside, relativeDb } from './folders';
import { formatLocal } from './format';
import type { Operations } from './operations';
import { allDatabases, isNode, pickBackup, pickDatabases, type DbTarget } from './picks';
import type { PanelHost } from './panel';
import type { TaskHook } from './tasks';

/** What command handlers need; one object so the container wires it once. */
export interface CommandDeps {
  core: CoreHost;
  folders: Folders;
  model: BackupsModel;
  ops: Operations;
  channel: vscode.LogOutputChannel;
  panel: PanelHost;
  tasks: TaskHook;
  refresh(): void;
}

/**
 * In Restricted Mode Lifeboat is read-only: returns false (after telling the user how to
 * trust the workspace) when the workspace is not trusted.
 */
export async function requireTrust(action: string): Promise<boolean> {
  if (vscode.workspace.isTrusted) return true;
  const pick = await vscode.window.showWarningMessage(`Lifeboat is read-only in Restricted Mode: trust this workspace to ${action}.`, 'Manage Workspace Trust');
  if (pick) void vscode.commands.executeCommand('workbench.trust.manage');
  return false;
}

/** The handler of every command in COMMANDS. Handlers never throw: failures are shown once. */
export function commandHandlers(d: CommandDeps): CommandHandlers {
  const { core, folders, model, ops } = d;

  const backupNow = async (arg?: unknown) => {
    if (!(await requireTrust('back up'))) return;
    const targets = await pickDatabases(folders, arg, { allowAll: true, title: COMMANDS.backupNow.title });
    for (const t of targets ?? []) await ops.backup(t.state, t.db, 'manual', { trigger: 'Back Up Now', interactive: true });
  };

  const restore = async (arg?: unknown) => {
    if (!(await requireTrust('restore'))) return;
    const chosen = await pickBackup(folders, model, arg, { title: COMMANDS.restoreBackup.title, browse: true });
    if (!chosen) return;
    const { engine } = await core.get();
    let manifest;
    try {
      manifest = chosen.record?.manifest ?? (await engine.manifestOf(chosen.archive));
    } catch (e) {
      ops.failure(`Lifeboat: ${chosen.archive} is not a Lifeboat archive: ${(e as Error).message}`);
      return;
    }
    let target: DbTarget | undefined = chosen.target;
    if (!target || (chosen.record && chosen.record.manifest.source.path !== target.db)) {
      const owner = await folders.folderOfDatabase(manifest.source.path);
      target = owner ? { state: owner, db: manifest.source.path } : target;
    }
    if (!target) {
      const picked = await pickDatabases(folders, undefined, { title: 'Restore over which database?' });
      target = picked?.[0];
    }
    if (!target) return;
    const name = path.basename(target.db);
    const ok = await vscode.window.showWarningMessage(
      `Restore ${name} from the ${manifest.kind} backup of ${formatLocal(manifest.created)}?`,
      {
        modal: true,
        detail: `${target.db} will be replaced by the backup. Lifeboat first backs up the current file (a pre-restore backup), so this can be undone. Stop apps that use the database first.`,
      },
      'Restore',
    );
    if (ok !== 'Restore') return;
    const state = target.state;
    const db = target.db;
    const run = (force: boolean) =>
      ops.withProgress(`Lifeboat: restoring ${name}`, (signal, onProgress) => engine.restore(chosen.archive, { to: db, force, settings: state.settings, dir: state.dir, signal, onProgress }));
    try {
      let res;
      try {
        res = await run(false);
      } catch (e) {
        // Without SQLite's backup API forcing cannot help: an open file is never replaced.
        if (!BackupError.is(e, 'inUse') || !restoreInUseSupport().ok) throw e;
        const again = await vscode.window.showWarningMessage(
          `${name} looks in use by another process.`,
          { modal: true, detail: `${(e as Error).message}\n\nRestore Anyway writes the backup into the database through SQLite while the app runs: the app sees the restored data and keeps its later writes.` },
          'Restore Anyway',
        );
        if (again !== 'Restore Anyway') return;
        res = await run(true);
      }
      ops.afterChange(state.dir);
      const pre = res.preRestore ? ` The previous file is kept as backup ${res.preRestore.id}.` : '';
      void vscode.window.showInformationMessage(`Lifeboat: restored ${name} from the backup of ${formatLocal(manifest.created)}.${pre}`);
    } catch (e) {
      ops.afterChange(state.dir);
      if (BackupError.is(e, 'cancelled')) {
        void vscode.window.showInformationMessage(`Lifeboat: the restore of ${name} was cancelled; ${name} is unchanged.`);
        return;
      }
      ops.failure(`Lifeboat: restoring ${name} failed: ${(e as Error).message}`, () => restore(arg));
    }
  };

  const verify = async (arg?: unknown) => {
    const chosen = await pickBackup(folders, model, arg, { title: COMMANDS.verifyBackup.title });
    if (!chosen) return;
    const { engine } = await core.get();
    const settings = chosen.target?.state.settings ?? (await folders.resolve())[0]?.settings;
    if (!settings) return;
    try {
      const res = await ops.withProgress(`Lifeboat: verifying ${path.basename(chosen.archive)}`, (signal, onProgress) => engine.verifyArchive(chosen.archive, settings, { signal, onProgress }));
      ops.afterChange(path.dirname(chosen.archive));
      if (res.ok) void vscode.window.showInformationMessage(`Lifeboat: ${path.basename(chosen.archive)} verified: ${res.report?.check ?? 'checked'} passed.`);
      else ops.failure(`Lifeboat: ${path.basename(chosen.archive)} failed verification: ${res.problems.slice(0, 3).join('; ')}`, () => verify(arg));
    } catch (e) {
      if (BackupError.is(e, 'cancelled')) return;
      ops.failure(`Lifeboat: verifying ${path.basename(chosen.archive)} failed: ${(e as Error).message}`, () => verify(arg));
    }
  };

  const verifyAll = async (arg?: unknown) => {
    const targets = isNode(arg) ? await pickDatabases(folders, arg, { title: COMMANDS.verifyAll.title }) : await allDatabases(folders);
    if (!targets?.length) return;
    const { engine } = await core.get();
    const jobs: { t: DbTarget; archive: string }[] = [];
    for (const t of targets) for (const r of (await model.ofDatabase(t.state, t.db)).records) jobs.push({ t, archive: r.path });
    if (!jobs.length) {
      void vscode.window.showInformationMessage('Lifeboat: there are no backups to verify.');
      return;
    }
    const failed: string[] = [];
    let done = 0;
    try {
      await ops.withProgress(`Lifeboat: verifying ${jobs.length} backups`, async (signal, report) => {
        for (const j of jobs) {
          report({ phase: `${path.basename(j.archive)} (${done + 1} of ${jobs.length})`, done, total: jobs.length });
          const res = await engine.verifyArchive(j.archive, j.t.state.settings, { signal });
          if (!res.ok) failed.push(`${path.basename(j.archive)}: ${res.problems[0] ?? 'failed'}`);
          done++;
        }
      });
    } catch (e) {
      if (!BackupError.is(e, 'cancelled')) ops.failure(`Lifeboat: verifying backups failed: ${(e as Error).message}`, () => verifyAll(arg));
    }
    for (const t of new Set(targets.map((x) => x.state.dir))) ops.afterChange(t);
    if (failed.length) ops.failure(`Lifeboat: ${failed.length} of ${done} backups failed verification: ${failed.slice(0, 3).join('; ')}`, () => verifyAll(arg));
    else if (done) void vscode.window.showInformationMessage(`Lifeboat: verified ${done} of ${jobs.length} backups; all passed.`);
  };

  const del = async (arg?: unknown) => {
    if (!(await requireTrust('delete backups'))) return;
    const chosen = await pickBackup(folders, model, arg, { title: COMMANDS.deleteBackup.title });
    if (!chosen) return;
    const label = chosen.record ? `the ${chosen.record.manifest.kind} backup of ${formatLocal(chosen.record.manifest.created)}` : path.basename(chosen.archive);
    const ok = await vscode.window.showWarningMessage(`Delete ${label}?`, { modal: true, detail: `${chosen.archive} will be deleted. This cannot be undone.` }, 'Delete');
    if (ok !== 'Delete') return;
    const { engine } = await core.get();
    try {
      await engine.deleteBackup(chosen.archive);
    } catch (e) {
      ops.failure(`Lifeboat: deleting ${path.basename(chosen.archive)} failed: ${(e as Error).message}`);
    }
    ops.afterChange(path.dirname(chosen.archive));
  };

  const pin = (pinned: boolean) => async (arg?: unknown) => {
    if (!(await requireTrust(pinned ? 'pin backups' : 'unpin backups'))) return;
    const chosen = await pickBackup(folders, model, arg, { title: pinned ? COMMANDS.pinBackup.title : COMMANDS.unpinBackup.title });
    if (!chosen) return;
    const { engine } = await core.get();
    try {
      await engine.setPinned(chosen.archive, pinned);
    } catch (e) {
      ops.failure(`Lifeboat: ${pinned ? 'pinning' : 'unpinning'} ${path.basename(chosen.archive)} failed: ${(e as Error).message}`);
    }
    ops.afterChange(path.dirname(chosen.archive));
  };

  const rotate = async (arg?: unknown) => {
    if (!(await requireTrust('rotate backups'))) return;
    const targets = isNode(arg) ? await pickDatabases(folders, arg, { title: COMMANDS.rotateNow.title }) : await allDatabases(folders);
    if (!targets?.length) return;
    const { engine } = await core.get();
    const states = [...new Map(targets.map((t) => [t.state.dir, t.state])).values()];
    for (const state of states) {
      try {
        const plan = await engine.rotate(state.dir, state.settings, { dryRun: true });
        if (!plan.remove.length) {
          void vscode.window.showInformationMessage(`Lifeboat: nothing to delete in ${state.dir}; all ${plan.keep.length} backups are kept by the retention rules.`);
          continue;
        }
        const lines = plan.remove.slice(0, 12).map((r) => `• ${r.id}: ${r.reasons.join('; ')}`);
        if (plan.remove.length > 12) lines.push(`… and ${plan.remove.length - 12} more`);
        const detail = `${plan.refused ? `Refused by the safety guard: ${plan.refused}\n\n` : ''}Keeps ${plan.keep.length}, deletes ${plan.remove.length}:\n${lines.join('\n')}`;
        const button = plan.refused ? 'Delete Anyway' : `Delete ${plan.remove.length} Backup${plan.remove.length === 1 ? '' : 's'}`;
        const ok = await vscode.window.showWarningMessage(`Rotate the backups in ${state.dir}?`, { modal: true, detail }, button);
        if (ok !== button) continue;
        const done = await engine.rotate(state.dir, state.settings, { force: !!plan.refused });
        ops.afterChange(state.dir);
        ops.success(state, `Lifeboat: rotation deleted ${done.remove.length} backups and kept ${done.keep.length}.`, true);
      } catch (e) {
        ops.afterChange(state.dir);
        ops.failure(`Lifeboat: rotating ${state.dir} failed: ${(e as Error).message}`, () => rotate(arg));
      }
    }
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
        if (t) await ops.backup(t.state, t.db, 'manual', { trigger: 'first backup', interactive: true });
      }
    }
  };

  const reveal = async (arg?: unknown) => {
    const chosen = await pickBackup(folders, model, arg, { title: COMMANDS.revealBackup.title });
    if (!chosen) return;
    const uri = vscode.Uri.file(chosen.archive);
    const inWorkspace = (vscode.workspace.workspaceFolders ?? []).some((f) => isInside(chosen.archive, f.uri.fsPath));
    await vscode.commands.executeCommand(inWorkspace ? 'revealInExplorer' : 'revealFileInOS', uri);
  };

  return {
    backupNow,
    restoreBackup: restore,
    verifyBackup: verify,
    verifyAll,
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

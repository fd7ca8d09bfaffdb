import * as path from 'node:path';
import * as vscode from 'vscode';
import { BackupError } from '../core/errors';
import type { BackupService } from './backupService';
import { COMMANDS } from './commandIds';
import type { FolderState, Folders } from './folders';
import { relativeDb } from './folders';
import { backupTaskLabel, backupTaskName, looksLikeMigration, TASK_SOURCE } from './migrations';
import type { Operations } from './operations';
import { addBackupDependency, hasBackupStep, listTasks } from './tasksJson';

/** The `lifeboat` task definition (package.json `taskDefinitions`). */
export interface LifeboatTaskDefinition extends vscode.TaskDefinition {
  type: 'lifeboat';
  /** The database, relative to the workspace folder as in `lifeboat.databases`. */
  database: string;
}

/** A migration task the hook noticed without a backup step (kept for tests and the log). */
export interface MigrationOffer {
  task: string;
  folder: string;
}

/**
 * The backup-before-migration task hook: a TaskProvider of type `lifeboat` whose "Back
 * up <database>" tasks (CustomExecution + Pseudoterminal) run a `migration` backup through
 * the BackupService (the engine's backupBeforeMigration, which fails unless the backup
 * verified) and exit 1 when it fails, so a `dependsOn` chain stops; the
 * `Add Backup Step to Migration Task...` command; and a listener on started tasks that
 * offers to add the step to a migration task that has none.
 */
export class TaskHook implements vscode.Disposable {
  private readonly subs: vscode.Disposable[] = [];
  private readonly offered = new Set<string>();
  /** Every offer made in this session, oldest first. */
  readonly offers: MigrationOffer[] = [];

  constructor(
    private readonly folders: Folders,
    private readonly backups: BackupService,
    private readonly ops: Operations,
    private readonly channel: vscode.LogOutputChannel,
  ) {
    this.subs.push(
      vscode.tasks.registerTaskProvider(TASK_SOURCE, {
        provideTasks: () => this.provideTasks(),
        resolveTask: (task) => this.resolveTask(task),
      }),
      vscode.tasks.onDidStartTask((e) => void this.onStart(e.execution.task)),
    );
  }

  private async provideTasks(): Promise<vscode.Task[]> {
    const out: vscode.Task[] = [];
    for (const state of await this.folders.resolve()) {
      for (const db of state.databases) out.push(this.makeTask(state.folder, relativeDb(state.folder, db)));
    }
    return out;
  }

  private resolveTask(task: vscode.Task): vscode.Task | undefined {
    const def = task.definition as LifeboatTaskDefinition;
    if (def.type !== TASK_SOURCE || typeof def.database !== 'string' || !def.database) return undefined;
    const folder = typeof task.scope === 'object' ? (task.scope as vscode.WorkspaceFolder) : vscode.workspace.workspaceFolders?.[0];
    if (!folder) return undefined;
    return this.makeTask(folder, def.database, def);
  }

  private makeTask(folder: vscode.WorkspaceFolder, database: string, def?: LifeboatTaskDefinition): vscode.Task {
    const definition: LifeboatTaskDefinition = def ?? { type: 'lifeboat', database };
    const task = new vscode.Task(
      definition,
      folder,
      backupTaskName(database),
      TASK_SOURCE,
      new vscode.CustomExecution(async () => this.terminal(folder, database)),
      [],
    );
    task.detail = `Verified backup of ${database} before a migration (Lifeboat)`;
    task.group = undefined;
    task.presentationOptions = { reveal: vscode.TaskRevealKind.Silent, clear: true };
    return task;
  }

  private terminal(folder: vscode.WorkspaceFolder, database: string): vscode.Pseudoterminal {
    const write = new vscode.EventEmitter<string>();
    const close = new vscode.EventEmitter<number>();
    const ac = new AbortController();
    const line = (s: string) => write.fire(`${s.replace(/\n/g, '\r\n')}\r\n`);
    const run = async (): Promise<number> => {
      if (!vscode.workspace.isTrusted) {
        line('Lifeboat does not run tasks in Restricted Mode.');
        return 1;
      }
      const state = (await this.folders.resolve()).find((s) => s.folder.uri.toString() === folder.uri.toString());
      if (!state) {
        line(`Lifeboat: ${folder.name} is not open in this window.`);
        return 1;
      }
      // The folder's own (canonical) path of the database, so the status bar hears of the one it shows.
      const db = state.databases.find((d) => relativeDb(folder, d) === database) ?? path.resolve(folder.uri.fsPath, database);
      line(`Lifeboat: backing up ${database} before the migration...`);
      const out = await this.backups.backup({ state, db }, 'migration', {
        route: 'task',
        trigger: `task: ${backupTaskName(database)}`,
        signal: ac.signal,
        retry: () => vscode.tasks.executeTask(this.makeTask(folder, database)),
      });
      if (!out) {
        line('Lifeboat does not run tasks in Restricted Mode.');
        return 1;
      }
      if (out.outcome === 'ok' && out.result) {
        line(`\x1b[32mVerified backup ${out.result.record.id} (${out.result.record.path}).\x1b[0m`);
        return 0;
      }
      line(out.outcome === 'cancelled' ? '\x1b[31mThe backup was cancelled.\x1b[0m' : `\x1b[31mThe backup failed: ${out.error?.message ?? out.message}\x1b[0m`);
      line('The migration does not run.');
      return 1;
    };
    return {
      onDidWrite: write.event,
      onDidClose: close.event,
      open: () => {
        void run().then(
          (code) => close.fire(code),
          (e) => {
            line(`Lifeboat: ${(e as Error).message}`);
            close.fire(1);
          },
        );
      },
      // Closing the terminal cancels the backup; the engine leaves nothing partial.
      close: () => ac.abort(new BackupError('cancelled', 'the task\'s terminal was closed')),
    };
  }

  private async onStart(task: vscode.Task): Promise<void> {
    try {
      if (task.definition.type === TASK_SOURCE || !vscode.workspace.isTrusted) return;
      const folder = typeof task.scope === 'object' ? (task.scope as vscode.WorkspaceFolder) : vscode.workspace.workspaceFolders?.[0];
      if (!folder) return;
      const state = (await this.folders.resolve()).find((s) => s.folder.uri.toString() === folder.uri.toString());
      if (!state || !state.databases.length || !state.settings.enabled || !state.settings.backupBeforeMigrations) return;
      if (!looksLikeMigration([task.name, commandLineOf(task)], state.settings.migrationTaskPatterns)) return;
      const entry = listTasks(await readTasksJson(folder)).find((t) => t.label === task.name);
      if (entry && hasBackupStep(entry)) return;
      const key = `${folder.uri.toString()}#${task.name}`;
      if (this.offered.has(key)) return;
      this.offered.add(key);
      this.offers.push({ task: task.name, folder: folder.name });
      this.channel.warn(`task "${task.name}" looks like a migration and runs without a backup step`);
      const canAdd = !!entry;
      const pick = await vscode.window.showWarningMessage(
        `Lifeboat: the task "${task.name}" looks like a database migration and runs without a backup first.${canAdd ? ' Add a backup step to it?' : ' Define it in tasks.json to add a backup step.'}`,
        ...(canAdd ? ['Add Backup Step'] : []),
      );
      if (pick === 'Add Backup Step') await this.addBackupStep(state, task.name);
    } catch (e) {
      this.channel.warn(`task hook: ${(e as Error).message}`);
    }
  }

  /** The command: choose a folder, a task from its tasks.json (migrations first) and a database; edits tasks.json. */
  async addBackupStepCommand(arg?: unknown): Promise<void> {
    if (!vscode.workspace.isTrusted) {
      void vscode.window.showWarningMessage('Lifeboat is read-only in Restricted Mode: trust this workspace to edit tasks.');
      return;
    }
    const states = (await this.folders.resolve()).filter((s) => s.databases.length);
    if (!states.length) {
      const pick = await vscode.window.showInformationMessage('Lifeboat: protect a database first; the backup step backs it up.', COMMANDS.protectDatabase.title);
      if (pick) void vscode.commands.executeCommand(COMMANDS.protectDatabase.id);
      return;
    }
    let state = states[0];
    if (states.length > 1) {
      const pick = await vscode.window.showWorkspaceFolderPick({ placeHolder: 'The folder whose task to change' });
      const s = states.find((x) => x.folder.uri.toString() === pick?.uri.toString());
      if (!s) return;
      state = s;
    }
    let label = typeof arg === 'string' ? arg : undefined;
    if (!label) {
      const tasks = listTasks(await readTasksJson(state.folder));
      if (!tasks.length) {
        void vscode.window.showInformationMessage(`Lifeboat: ${state.folder.name}/.vscode/tasks.json has no labelled task. Add your migration task there first.`);
        return;
      }
      const items = tasks
        .map((t) => ({ t, migration: looksLikeMigration([t.label, t.command], state.settings.migrationTaskPatterns) }))
        .sort((a, b) => Number(b.migration) - Number(a.migration))
        .map(({ t, migration }) => ({
          label: t.label,
          description: hasBackupStep(t) ? 'already backs up first' : migration ? 'looks like a migration' : undefined,
          detail: t.command || undefined,
        }));
      const pick = await vscode.window.showQuickPick(items, { title: COMMANDS.addBackupStep.title, placeHolder: 'The task that should back up the database first' });
      if (!pick) return;
      label = pick.label;
    }
    await this.addBackupStep(state, label);
  }

  private async addBackupStep(state: FolderState, taskLabel: string): Promise<void> {
    let db = state.databases[0];
    if (state.databases.length > 1) {
      const pick = await vscode.window.showQuickPick(
        state.databases.map((d) => ({ label: relativeDb(state.folder, d), d })),
        { title: COMMANDS.addBackupStep.title, placeHolder: `The database "${taskLabel}" changes` },
      );
      if (!pick) return;
      db = pick.d;
    }
    const dep = backupTaskLabel(relativeDb(state.folder, db));
    const uri = vscode.Uri.joinPath(state.folder.uri, '.vscode', 'tasks.json');
    try {
      const doc = await vscode.workspace.openTextDocument(uri);
      const text = doc.getText();
      const next = addBackupDependency(text, taskLabel, dep, { insertSpaces: true, tabSize: 2, eol: doc.eol === vscode.EndOfLine.CRLF ? '\r\n' : '\n' });
      if (next !== text) {
        const edit = new vscode.WorkspaceEdit();
        edit.replace(uri, new vscode.Range(doc.positionAt(0), doc.positionAt(text.length)), next);
        if (!(await vscode.workspace.applyEdit(edit))) throw new Error('VS Code refused the edit');
        await doc.save();
      }
      this.channel.info(`tasks.json: "${taskLabel}" now depends on "${dep}"`);
      void vscode.window.showInformationMessage(`Lifeboat: the task "${taskLabel}" now backs up ${path.basename(db)} first ("${dep}" in dependsOn).`);
    } catch (e) {
      this.ops.failure(`Lifeboat: could not add the backup step to "${taskLabel}" in ${uri.fsPath}: ${(e as Error).message}`);
    }
  }

  dispose(): void {
    for (const s of this.subs) s.dispose();
  }
}

function commandLineOf(task: vscode.Task): string {
  const ex = task.execution;
  if (ex instanceof vscode.ShellExecution) {
    if (ex.commandLine) return ex.commandLine;
    const str = (x: string | vscode.ShellQuotedString | undefined) => (typeof x === 'string' ? x : (x?.value ?? ''));
    return [str(ex.command), ...(ex.args ?? []).map(str)].join(' ');
  }
  if (ex instanceof vscode.ProcessExecution) return [ex.process, ...ex.args].join(' ');
  return '';
}

async function readTasksJson(folder: vscode.WorkspaceFolder): Promise<string> {
  try {
    const doc = vscode.workspace.textDocuments.find((d) => d.uri.fsPath === path.join(folder.uri.fsPath, '.vscode', 'tasks.json'));
    if (doc) return doc.getText();
    return new TextDecoder().decode(await vscode.workspace.fs.readFile(vscode.Uri.joinPath(folder.uri, '.vscode', 'tasks.json')));
  } catch {
    return '';
  }
}

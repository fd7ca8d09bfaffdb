import * as path from 'node:path';
import * as vscode from 'vscode';
import type { Logger } from '../core/context';
import type { BackupResult, RowsRestoreOutcome, TableRestoreOutcome } from '../core/engine';
import { BackupError } from '../core/errors';
import type { BackupKind, Manifest } from '../core/model';
import { restoreInUseSupport } from '../core/restore/inUse';
import type { RestoreTestEvent, ScheduleFailEvent, ScheduleProgressEvent, ScheduleRunEvent, Scheduler } from '../core/schedule/scheduler';
import { backupDirOf, backupIdOf, backupName, isSnapshotPath } from './backupFiles';
import type { BackupsModel } from './backupsModel';
import type { CoreHost } from './coreLoader';
import { displayName, isInside, type FolderState, type Folders } from './folders';
import { formatLocal } from './format';
import { channelLogger, type LogMirror } from './log';
import type { OperationTracker, Operations, RunVerdict, RunWork } from './operations';
import { pickDatabases, type ChosenBackup, type DbTarget } from './picks';
import type { StatusBar } from './statusBar';

/**
 * Where a request came from. The route decides how the outcome is shown, never what is
 * refreshed: `command` and `panel` are a person waiting (a progress notification with
 * Cancel, confirmations, a message when done); `schedule` and `task` run on their own
 * (progress only in the panel, failures as notifications); `shutdown` shows nothing at
 * all (VS Code is closing: no notification, no dialog), it only logs.
 */
export type Route = 'command' | 'panel' | 'schedule' | 'task' | 'shutdown';

/** The operations the service runs and settles. */
export type Operation = 'backup' | 'restore' | 'restoreTable' | 'restoreRows' | 'verify' | 'verifyAll' | 'export' | 'delete' | 'pin' | 'unpin' | 'rotate' | 'restoreTest' | 'schedule';

/**
 * How an operation ended: `ok`; `unverified` (a backup whose verification was skipped);
 * `damaged` (a backup whose image failed verification: the live database is damaged);
 * `unchanged` (no backup was needed); `failed`; `cancelled`.
 */
export type Outcome = 'ok' | 'unverified' | 'damaged' | 'unchanged' | 'failed' | 'cancelled';

/** One operation after its after-effects ran (see `BackupService.onDidSettle`). */
export interface Settled {
  op: Operation;
  route: Route;
  outcome: Outcome;
  /** The backup directories that were refreshed (tree, status bar, panel, log mirror). */
  dirs: string[];
  db?: string;
  /** The backup's kind (op `backup`). */
  kind?: BackupKind;
  /** The archive's id, when one was made or acted on. */
  backup?: string;
  /** What the user reads (or would read, on a route that shows nothing). */
  message: string;
}

/** The result of `backup`: the settled outcome, with the engine's result or error. */
export interface BackupOutcome extends Settled {
  result?: BackupResult;
  error?: Error;
}

/** The result of `restoreRows`: the settled outcome, with the engine's result or error. */
export interface RowsRestoreSettled extends Settled {
  result?: RowsRestoreOutcome;
  error?: Error;
}

/** The result of `restoreTable`: the settled outcome, with the engine's result or error. */
export interface TableRestoreSettled extends Settled {
  result?: TableRestoreOutcome;
  error?: Error;
}

/** The backup kinds a route asks for; `pre-restore` backups are the engine's own, made inside a restore. */
export type RequestedKind = Exclude<BackupKind, 'pre-restore'>;

/** One backup request. */
export interface BackupRequest {
  route: Route;
  /** Recorded in the manifest ("Back Up Now", "task: Back up app.db", ...). */
  trigger?: string;
  /** Aborts the backup (non-interactive routes; interactive ones get the Cancel button's). */
  signal?: AbortSignal;
  /** Back up only when the database changed since its newest verified backup (else `unchanged`). */
  onlyIfChanged?: boolean;
  /** Rotate the directory after a verified backup (the engine's default: true). */
  rotate?: boolean;
  /** What "Retry" on the failure notification does; default: the same request, from a command. */
  retry?: () => unknown;
}

/** What `finish` is given: a Settled plus how to show it. */
interface Finish extends Settled {
  /** The folder whose `lifeboat.notifications` decides success messages. */
  state?: FolderState;
  /** The log line, when it should say more than the message (an archive id, the route). */
  log?: string;
  /** The status bar's one-line reason of a failed backup. */
  reason?: string;
  /** How an ok outcome is shown: an information message, or as `lifeboat.notifications` says. Default: only logged. */
  notify?: 'info' | 'success';
  /** False: log only (the user just declined, nothing is worth a message). */
  show?: boolean;
  retry?: () => unknown;
}

const INTERACTIVE: ReadonlySet<Route> = new Set(['command', 'panel']);

/** How log lines name a route. */
const VIA: Record<Route, string> = { command: 'a command', panel: 'the panel', schedule: 'the schedule', task: 'a task', shutdown: 'VS Code shutdown' };

/** What a failed backup stopped, per route. */
const CONSEQUENCE: Partial<Record<Route, string>> = { task: 'The migration was stopped.' };

/** The title a scheduled run shows under in the panel. */
export function scheduledRunTitle(ev: Pick<ScheduleProgressEvent, 'what' | 'db' | 'dir' | 'catchUp'>): string {
  if (ev.what === 'restoreTest') return `Lifeboat: weekly restore test in ${path.basename(ev.dir)}`;
  return `Lifeboat: ${ev.catchUp ? 'catch-up' : 'scheduled'} backup of ${path.basename(ev.db ?? '')}`;
}

/** How a backup's result reads in the panel's progress (the scheduler's words). */
function backupVerdict(name: string): RunVerdict<BackupResult> {
  return (r) => ({
    ok: !r.sourceDamaged,
    message: r.sourceDamaged
      ? `${name} is damaged: its backup ${r.record.id} failed verification`
      : `backed up ${name} (${r.record.id})${r.verified ? ', verified' : `, NOT verified (${r.record.manifest.verification.skippedReason ?? 'skipped'})`}`,
  });
}

function messageOf(e: unknown): string {
  return (e as Error)?.message ?? String(e);
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

/**
 * The one way the extension backs up, restores, verifies, deletes, pins and rotates:
 * every route (commands, the panel, the scheduler's events, the task hook, the shutdown
 * backup) comes here, and every operation ends in `finish`, which does the after-effects
 * exactly once: the backup directory's listing is refreshed (so the tree, the status bar
 * and the panel update), the backup log is mirrored into the output channel, the status
 * bar learns a backup's success or failure, one line is logged, the user is told as the
 * route wants (see `Route`), and `onDidSettle` fires. A failed operation does not reject:
 * it is settled (logged and shown once) and resolved; `backup` never rejects.
 */
export class BackupService implements vscode.Disposable {
  private readonly settledEmitter = new vscode.EventEmitter<Settled>();
  /** Fires once per operation, after its after-effects. */
  readonly onDidSettle = this.settledEmitter.event;
  /** Never throws, also while the extension host terminates (the shutdown backup runs then). */
  private readonly log: Logger;

  constructor(
    private readonly core: CoreHost,
    private readonly folders: Folders,
    private readonly model: BackupsModel,
    private readonly status: StatusBar,
    private readonly mirror: LogMirror,
    private readonly ops: Operations,
    channel: vscode.LogOutputChannel,
  ) {
    this.log = channelLogger(channel);
  }

  /**
   * Backs up `target` as `kind` (`migration` through the engine's backupBeforeMigration,
   * which fails unless the backup verified). Resolves with the outcome, or undefined when
   * the workspace is not trusted (nothing ran; an interactive route was told why).
   */
  async backup(target: DbTarget, kind: RequestedKind, o: BackupRequest): Promise<BackupOutcome | undefined> {
    if (!(await this.trusted(o.route, 'back up'))) return undefined;
    const { state, db } = target;
    const name = displayName(state.folder, db);
    const retry = o.retry ?? (() => this.backup(target, kind, { ...o, route: INTERACTIVE.has(o.route) ? o.route : 'command', signal: undefined }));
    const base = { op: 'backup' as const, route: o.route, db, kind, dirs: [state.dir], state };
    try {
      const { engine } = await this.core.get();
      if (o.onlyIfChanged && !(await engine.changedSinceLastBackup(db, state.dir))) {
        return await this.finish({ ...base, outcome: 'unchanged', message: `no ${kind} backup of ${name} needed: unchanged since its last verified backup` });
      }
      const opts = { dir: state.dir, settings: state.settings, trigger: o.trigger, rotate: o.rotate };
      const work: RunWork<BackupResult> = (signal, onProgress) =>
        kind === 'migration' ? engine.backupBeforeMigration(db, { ...opts, signal, onProgress }) : engine.backup(db, { ...opts, kind, signal, onProgress });
      const title = INTERACTIVE.has(o.route) ? `Lifeboat: backing up ${name}` : `Lifeboat: ${kind} backup of ${name}`;
      const result = await this.run(o.route, title, o.signal, work, backupVerdict(path.basename(db)));
      return { ...(await this.finish(this.backupDone(base, name, result, retry))), result };
    } catch (e) {
      return { ...(await this.finish(this.backupFailed(base, name, e, retry))), error: e as Error };
    }
  }

  /**
   * Restores `chosen` over its database (the record's, the folder that owns the manifest's
   * source, or one the user picks), after a modal confirmation; when the database is in
   * use and SQLite can write into it, asks again before doing so. Resolves undefined when
   * nothing ran (not trusted, declined, no database).
   */
  async restore(chosen: ChosenBackup, o: { route: Route }): Promise<Settled | undefined> {
    if (!(await this.trusted(o.route, 'restore'))) return undefined;
    const base = { op: 'restore' as const, route: o.route, backup: chosen.record?.id };
    const { engine } = await this.core.get();
    let manifest: Manifest;
    try {
      manifest = chosen.record?.manifest ?? (await engine.manifestOf(chosen.archive));
    } catch (e) {
      return this.finish({ ...base, dirs: [], outcome: 'failed', message: `Lifeboat: ${chosen.archive} is not a Lifeboat archive: ${messageOf(e)}` });
    }
    let target = chosen.target;
    if (!target || (chosen.record && chosen.record.manifest.source.path !== target.db)) {
      const owner = await this.folders.folderOfDatabase(manifest.source.path);
      target = owner ? { state: owner, db: manifest.source.path } : target;
    }
    target ??= (await pickDatabases(this.folders, undefined, { title: 'Restore over which database?' }))?.[0];
    if (!target) return undefined;
    const { state, db } = target;
    const name = path.basename(db);
    const ok = await vscode.window.showWarningMessage(
      `Restore ${name} from the ${manifest.kind} backup of ${formatLocal(manifest.created)}?`,
      {
        modal: true,
        detail: `${db} will be replaced by the backup. Lifeboat first backs up the current file (a pre-restore backup), so this can be undone. Stop apps that use the database first.`,
      },
      'Restore',
    );
    if (ok !== 'Restore') return undefined;
    const at = { ...base, db, dirs: [state.dir], state };
    const run = (force: boolean) =>
      this.run(o.route, `Lifeboat: restoring ${name}`, undefined, (signal, onProgress) => engine.restore(chosen.archive, { to: db, force, settings: state.settings, dir: state.dir, signal, onProgress }));
    try {
      let res;
      try {
        res = await run(false);
      } catch (e) {
        // Without SQLite's backup API forcing cannot help: an open file is never replaced.
        if (!BackupError.is(e, 'inUse') || !restoreInUseSupport().ok) throw e;
        const again = await vscode.window.showWarningMessage(
          `${name} looks in use by another process.`,
          { modal: true, detail: `${messageOf(e)}\n\nRestore Anyway writes the backup into the database through SQLite while the app runs: the app sees the restored data and keeps its later writes.` },
          'Restore Anyway',
        );
        if (again !== 'Restore Anyway') return await this.finish({ ...at, outcome: 'cancelled', message: `the restore of ${name} was declined: ${messageOf(e)}`, show: false });
        res = await run(true);
      }
      const pre = res.preRestore ? ` The previous file is kept as backup ${res.preRestore.id}.` : '';
      return await this.finish({
        ...at,
        outcome: 'ok',
        message: `Lifeboat: restored ${name} from the backup of ${formatLocal(manifest.created)}.${pre}`,
        log: `restored ${db} from ${chosen.archive} (${res.method})${res.preRestore ? `; the previous file is backup ${res.preRestore.id}` : ''}`,
        notify: 'info',
      });
    } catch (e) {
      if (BackupError.is(e, 'cancelled')) return this.finish({ ...at, outcome: 'cancelled', message: `Lifeboat: the restore of ${name} was cancelled; ${name} is unchanged.` });
      return this.finish({ ...at, outcome: 'failed', message: `Lifeboat: restoring ${name} failed: ${messageOf(e)}`, retry: () => this.restore(chosen, o) });
    }
  }

  /**
   * Replaces table `table` of `target`'s database with the backup's, through SQLite in one
   * transaction, after a `pre-restore` backup (the engine's restoreTable); the caller has
   * asked the user already. The message says how many rows the table holds now, which
   * pre-restore backup was made and what the foreign key check found; a refusal (the
   * table is defined differently, missing) says what differs and that nothing changed.
   * Resolves undefined when the workspace is not trusted; never rejects.
   */
  async restoreTable(chosen: ChosenBackup, target: DbTarget, table: string, o: { route: Route }): Promise<TableRestoreSettled | undefined> {
    if (!(await this.trusted(o.route, 'restore a table'))) return undefined;
    const { state, db } = target;
    const name = path.basename(db);
    const dirs = [...new Set([backupDirOf(chosen.archive), state.dir])];
    const base = { op: 'restoreTable' as const, route: o.route, db, dirs, state, backup: chosen.record?.id ?? backupIdOf(chosen.archive) };
    try {
      const { engine } = await this.core.get();
      const r = await this.run(
        o.route,
        `Lifeboat: restoring table ${table} of ${name}`,
        undefined,
        (signal, onProgress) => engine.restoreTable(chosen.archive, { table, to: db, settings: state.settings, signal, onProgress }),
        (x) => ({ ok: true, message: `restored table ${table} of ${name} (${x.rows} rows)` }),
      );
      const fk = r.foreignKeyViolationCount
        ? `the foreign key check found ${r.foreignKeyViolationCount} violation${r.foreignKeyViolationCount === 1 ? '' : 's'} (first: ${r.foreignKeyViolations
            .slice(0, 3)
            .map((v) => `${v.table} row ${v.rowid ?? '?'} → ${v.parent}`)
            .join('; ')})`
        : 'the foreign key check found no violations';
      const message = `Lifeboat: restored table ${table} of ${name} from the backup of ${formatLocal(r.manifest.created)}: ${r.rows} row${r.rows === 1 ? '' : 's'} (it had ${r.before}). The previous state is kept as backup ${r.preRestore.id}; ${fk}.`;
      return { ...(await this.finish({ ...base, outcome: 'ok', message, log: `restored table ${table} of ${db} from ${chosen.archive}: ${r.before} rows replaced by ${r.rows}; pre-restore backup ${r.preRestore.id}; ${fk}`, notify: 'info' })), result: r };
    } catch (e) {
      if (BackupError.is(e, 'cancelled')) return { ...(await this.finish({ ...base, outcome: 'cancelled', message: `Lifeboat: restoring table ${table} of ${name} was cancelled; ${name} is unchanged.` })), error: e as Error };
      // A refusal (the table differs, is missing) is not worth a Retry: the same request fails the same way.
      const retry = BackupError.is(e, 'usage') ? undefined : () => this.restoreTable(chosen, target, table, o);
      return { ...(await this.finish({ ...base, outcome: 'failed', message: `Lifeboat: table ${table} of ${name} was not restored: ${messageOf(e)}`, retry })), error: e as Error };
    }
  }

  /**
   * Makes the selected rows of table `table` of `target`'s database the backup's (a changed
   * row reverted, a removed row put back, an added row deleted), through SQLite in one
   * transaction, after a `pre-restore` backup (the engine's restoreRows); the caller has
   * asked the user already. The message says what happened to the rows, which pre-restore
   * backup was made and what the foreign key check found; a refusal (a key that matches
   * nothing, the table defined differently) says why and that nothing changed. Resolves
   * undefined when the workspace is not trusted; never rejects.
   */
  async restoreRows(chosen: ChosenBackup, target: DbTarget, table: string, rows: { key: unknown[]; kind: 'added' | 'removed' | 'changed' }[], o: { route: Route }): Promise<RowsRestoreSettled | undefined> {
    if (!(await this.trusted(o.route, 'restore rows of a table'))) return undefined;
    const { state, db } = target;
    const name = path.basename(db);
    const dirs = [...new Set([backupDirOf(chosen.archive), state.dir])];
    const base = { op: 'restoreRows' as const, route: o.route, db, dirs, state, backup: chosen.record?.id ?? backupIdOf(chosen.archive) };
    const n = `${rows.length} row${rows.length === 1 ? '' : 's'}`;
    try {
      const { engine } = await this.core.get();
      const r = await this.run(
        o.route,
        `Lifeboat: restoring ${n} of table ${table} of ${name}`,
        undefined,
        (signal, onProgress) => engine.restoreRows(chosen.archive, { table, keys: rows.map((x) => x.key), deleteAdded: rows.some((x) => x.kind === 'added'), to: db, settings: state.settings, signal, onProgress }),
        () => ({ ok: true, message: `restored ${n} of table ${table} of ${name}` }),
      );
      const fk = r.foreignKeyViolationCount
        ? `the foreign key check found ${r.foreignKeyViolationCount} violation${r.foreignKeyViolationCount === 1 ? '' : 's'} (first: ${r.foreignKeyViolations
            .slice(0, 3)
            .map((v) => `${v.table} row ${v.rowid ?? '?'} → ${v.parent}`)
            .join('; ')})`
        : 'the foreign key check found no violations';
      const counts = `${r.updated} reverted, ${r.inserted} put back, ${r.deleted} deleted, ${r.unchanged} already as in the backup`;
      const message = `Lifeboat: restored ${n} of table ${table} of ${name} from the backup of ${formatLocal(r.manifest.created)} (${counts}). The previous state is kept as backup ${r.preRestore.id}; ${fk}.`;
      return { ...(await this.finish({ ...base, outcome: 'ok', message, log: `restored ${n} of table ${table} of ${db} from ${chosen.archive}: ${counts}; pre-restore backup ${r.preRestore.id}; ${fk}`, notify: 'info' })), result: r };
    } catch (e) {
      if (BackupError.is(e, 'cancelled')) return { ...(await this.finish({ ...base, outcome: 'cancelled', message: `Lifeboat: restoring rows of table ${table} of ${name} was cancelled; ${name} is unchanged.` })), error: e as Error };
      const retry = BackupError.is(e, 'usage') ? undefined : () => this.restoreRows(chosen, target, table, rows, o);
      return { ...(await this.finish({ ...base, outcome: 'failed', message: `Lifeboat: rows of table ${table} of ${name} were not restored: ${messageOf(e)}`, retry })), error: e as Error };
    }
  }

  /** Verifies one archive fully with its folder's settings. Resolves undefined when no folder is open. */
  async verify(chosen: ChosenBackup, o: { route: Route }): Promise<Settled | undefined> {
    const state = chosen.target?.state ?? (await this.folders.resolve())[0];
    if (!state) return undefined;
    const file = backupName(chosen.archive);
    const base = { op: 'verify' as const, route: o.route, dirs: [backupDirOf(chosen.archive)], db: chosen.target?.db, backup: chosen.record?.id ?? backupIdOf(chosen.archive), state };
    const retry = () => this.verify(chosen, o);
    try {
      const { engine } = await this.core.get();
      const res = await this.run(
        o.route,
        `Lifeboat: verifying ${file}`,
        undefined,
        (signal, onProgress) => engine.verifyArchive(chosen.archive, state.settings, { signal, onProgress }),
        (r) => ({ ok: r.ok, message: r.ok ? `${file} verified` : `${file} failed verification` }),
      );
      if (res.ok) return await this.finish({ ...base, outcome: 'ok', message: `Lifeboat: ${file} verified: ${res.report?.check ?? 'checked'} passed.`, notify: 'info' });
      return await this.finish({ ...base, outcome: 'failed', message: `Lifeboat: ${file} failed verification: ${res.problems.slice(0, 3).join('; ')}`, retry });
    } catch (e) {
      if (BackupError.is(e, 'cancelled')) return this.finish({ ...base, outcome: 'cancelled', message: `Lifeboat: verifying ${file} was cancelled.` });
      return this.finish({ ...base, outcome: 'failed', message: `Lifeboat: verifying ${file} failed: ${messageOf(e)}`, retry });
    }
  }

  /** Verifies every backup of `targets`, one progress for all. Resolves undefined when there is none. */
  async verifyAll(targets: DbTarget[], o: { route: Route }): Promise<Settled | undefined> {
    const jobs: { t: DbTarget; archive: string }[] = [];
    for (const t of targets) for (const r of (await this.model.ofDatabase(t.state, t.db)).records) jobs.push({ t, archive: r.path });
    if (!jobs.length) {
      void vscode.window.showInformationMessage('Lifeboat: there are no backups to verify.');
      return undefined;
    }
    const failed: string[] = [];
    let done = 0;
    let error: unknown;
    try {
      const { engine } = await this.core.get();
      await this.run(
        o.route,
        `Lifeboat: verifying ${jobs.length} backups`,
        undefined,
        async (signal, report) => {
          for (const j of jobs) {
            report({ phase: `${backupName(j.archive)} (${done + 1} of ${jobs.length})`, done, total: jobs.length });
            const res = await engine.verifyArchive(j.archive, j.t.state.settings, { signal });
            if (!res.ok) failed.push(`${backupName(j.archive)}: ${res.problems[0] ?? 'failed'}`);
            done++;
          }
        },
        () => ({ ok: failed.length === 0, message: failed.length ? `${failed.length} of ${done} backups failed verification` : `verified ${done} backups` }),
      );
    } catch (e) {
      error = e;
    }
    const base = {
      op: 'verifyAll' as const,
      route: o.route,
      dirs: [...new Set(targets.map((t) => t.state.dir))],
      db: targets.length === 1 ? targets[0].db : undefined,
      state: targets[0]?.state,
      retry: () => this.verifyAll(targets, o),
    };
    const cancelled = BackupError.is(error, 'cancelled');
    if (error && !cancelled) {
      const before = failed.length ? ` (${failed.length} had failed verification before: ${failed.slice(0, 3).join('; ')})` : '';
      return this.finish({ ...base, outcome: 'failed', message: `Lifeboat: verifying backups failed: ${messageOf(error)}${before}` });
    }
    if (failed.length) return this.finish({ ...base, outcome: 'failed', message: `Lifeboat: ${failed.length} of ${done} backups failed verification: ${failed.slice(0, 3).join('; ')}` });
    if (cancelled) return this.finish({ ...base, outcome: 'cancelled', message: `Lifeboat: verification cancelled after ${done} of ${jobs.length} backups; all of those passed.` });
    return this.finish({ ...base, outcome: 'ok', message: `Lifeboat: verified ${done} of ${jobs.length} backups; all passed.`, notify: 'info' });
  }

  /**
   * Saves `chosen` as `to`, a file that needs no Lifeboat: the database itself, or a
   * self-contained zip archive when `to` ends in .zip (the engine's exportBackup), with
   * progress. Replaces `to`: the save dialog that named it asked already. A failure or
   * Cancel leaves `to` as it was. Resolves undefined when the workspace is not trusted.
   */
  async exportBackup(chosen: ChosenBackup, to: string, o: { route: Route }): Promise<Settled | undefined> {
    if (!(await this.trusted(o.route, 'save backups'))) return undefined;
    const name = backupName(chosen.archive);
    const file = path.basename(to);
    const base = { op: 'export' as const, route: o.route, dirs: [backupDirOf(chosen.archive)], db: chosen.target?.db, backup: chosen.record?.id ?? backupIdOf(chosen.archive), state: chosen.target?.state };
    const retry = () => this.exportBackup(chosen, to, o);
    try {
      const { core, engine } = await this.core.get();
      // Never over a live database: that is a restore, which refuses while the file is open and keeps a pre-restore backup.
      const source = chosen.record?.manifest.source.path ?? (await engine.manifestOf(chosen.archive)).source.path;
      const live = [source, ...(await this.folders.resolve()).flatMap((s) => s.databases)];
      const dest = await core.canonicalPath(to);
      for (const db of live) {
        if (dest === (await core.canonicalPath(db))) {
          return await this.finish({ ...base, outcome: 'failed', message: `Lifeboat: ${file} is a live database Lifeboat protects; saving a backup over it was refused. Use Restore Backup... to put a backup back.` });
        }
      }
      const level = chosen.target?.state.settings.compressionLevel;
      const res = await this.run(
        o.route,
        `Lifeboat: saving ${name} as ${file}`,
        undefined,
        (signal, onProgress) => engine.exportBackup(chosen.archive, { to, force: true, compressionLevel: level, signal, onProgress }),
        (r) => ({ ok: true, message: `saved as ${r.path}` }),
      );
      const as = res.as === 'zip' ? 'a zip archive' : 'an SQLite database';
      return await this.finish({ ...base, outcome: 'ok', message: `Lifeboat: saved ${name} as ${as}: ${res.path}`, log: `saved ${chosen.archive} as ${as} (${res.size} bytes): ${res.path}`, notify: 'info' });
    } catch (e) {
      if (BackupError.is(e, 'cancelled')) return this.finish({ ...base, outcome: 'cancelled', message: `Lifeboat: saving ${name} was cancelled; nothing was written to ${file}.` });
      return this.finish({ ...base, outcome: 'failed', message: `Lifeboat: saving ${name} as ${file} failed: ${messageOf(e)}`, retry });
    }
  }

  /** Deletes one backup after a modal confirmation (pinned ones too: a person's choice). */
  async delete(chosen: ChosenBackup, o: { route: Route }): Promise<Settled | undefined> {
    if (!(await this.trusted(o.route, 'delete backups'))) return undefined;
    const file = backupName(chosen.archive);
    const label = chosen.record ? `the ${chosen.record.manifest.kind} backup of ${formatLocal(chosen.record.manifest.created)}` : file;
    const what = isSnapshotPath(chosen.archive) ? `${chosen.archive} and the pages no other backup uses` : chosen.archive;
    const ok = await vscode.window.showWarningMessage(`Delete ${label}?`, { modal: true, detail: `${what} will be deleted. This cannot be undone.` }, 'Delete');
    if (ok !== 'Delete') return undefined;
    const base = { op: 'delete' as const, route: o.route, dirs: [backupDirOf(chosen.archive)], db: chosen.target?.db, backup: chosen.record?.id ?? backupIdOf(chosen.archive), state: chosen.target?.state };
    try {
      const { engine } = await this.core.get();
      await engine.deleteBackup(chosen.archive);
      return await this.finish({ ...base, outcome: 'ok', message: `Lifeboat: deleted ${file}.`, log: `deleted ${chosen.archive}` });
    } catch (e) {
      return this.finish({ ...base, outcome: 'failed', message: `Lifeboat: deleting ${file} failed: ${messageOf(e)}` });
    }
  }

  /** Pins (never deleted automatically) or unpins one backup. */
  async setPinned(chosen: ChosenBackup, pinned: boolean, o: { route: Route }): Promise<Settled | undefined> {
    if (!(await this.trusted(o.route, pinned ? 'pin backups' : 'unpin backups'))) return undefined;
    const file = backupName(chosen.archive);
    const base = { op: pinned ? ('pin' as const) : ('unpin' as const), route: o.route, dirs: [backupDirOf(chosen.archive)], db: chosen.target?.db, backup: chosen.record?.id ?? backupIdOf(chosen.archive), state: chosen.target?.state };
    try {
      const { engine } = await this.core.get();
      await engine.setPinned(chosen.archive, pinned);
      return await this.finish({ ...base, outcome: 'ok', message: `Lifeboat: ${pinned ? 'pinned' : 'unpinned'} ${file}.`, log: `${pinned ? 'pinned' : 'unpinned'} ${chosen.archive}` });
    } catch (e) {
      return this.finish({ ...base, outcome: 'failed', message: `Lifeboat: ${pinned ? 'pinning' : 'unpinning'} ${file} failed: ${messageOf(e)}` });
    }
  }

  /**
   * Rotates each folder's backup directory: shows the plan (what is deleted and why) in a
   * modal confirmation first, and forces a plan the safety guard refused only when the
   * user chose "Delete Anyway". Resolves with one Settled per directory that was rotated
   * or failed.
   */
  async rotate(states: FolderState[], o: { route: Route }): Promise<Settled[]> {
    if (!(await this.trusted(o.route, 'rotate backups'))) return [];
    const out: Settled[] = [];
    for (const state of [...new Map(states.map((s) => [s.dir, s])).values()]) {
      const base = { op: 'rotate' as const, route: o.route, dirs: [state.dir], state };
      try {
        const { engine } = await this.core.get();
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
        out.push(await this.finish({ ...base, outcome: 'ok', message: `Lifeboat: rotation deleted ${done.remove.length} backups and kept ${done.keep.length}.`, notify: 'success' }));
      } catch (e) {
        out.push(await this.finish({ ...base, outcome: 'failed', message: `Lifeboat: rotating ${state.dir} failed: ${messageOf(e)}`, retry: () => this.rotate([state], o) }));
      }
    }
    return out;
  }

  /** Shows an archive in the Explorer (inside the workspace) or the system's file manager. */
  async reveal(archive: string): Promise<void> {
    const inWorkspace = (vscode.workspace.workspaceFolders ?? []).some((f) => isInside(archive, f.uri.fsPath));
    await vscode.commands.executeCommand(inWorkspace ? 'revealInExplorer' : 'revealFileInOS', vscode.Uri.file(archive));
  }

  /**
   * Settles what one folder's core Scheduler does (it runs the engine itself): its progress
   * goes to the panel, each scheduled backup, restore test and failure ends in `finish`
   * (route `schedule`; Retry checks the schedule again). `stateOf` gives the folder's
   * newest state. Disposing stops listening and ends the runs still shown as running.
   */
  watchScheduler(scheduler: Pick<Scheduler, 'onDidProgress' | 'onDidRun' | 'onDidFail' | 'onDidRestoreTest' | 'checkNow'>, stateOf: () => FolderState): vscode.Disposable {
    const runs = new Map<number, OperationTracker>();
    const retry = () => void scheduler.checkNow();
    const subs = [
      scheduler.onDidProgress((ev) => {
        let run = runs.get(ev.run);
        if (!run) runs.set(ev.run, (run = this.ops.track(scheduledRunTitle(ev))));
        if (ev.end) {
          runs.delete(ev.run);
          run.end(ev.end.ok, ev.end.message);
        } else if (ev.phase !== 'starting') {
          run.report(ev);
        }
      }),
      scheduler.onDidRun((ev) => void this.scheduledRun(ev, stateOf())),
      scheduler.onDidFail((ev) => void this.scheduleFailed(ev, stateOf(), retry)),
      scheduler.onDidRestoreTest((ev) => void this.restoreTested(ev)),
    ];
    return {
      dispose: () => {
        for (const s of subs) s.dispose();
        // The scheduler abandons a running backup; its end no longer reaches us, so say it here.
        for (const run of runs.values()) run.end(false, 'cancelled: the schedule of this folder stopped');
        runs.clear();
      },
    };
  }

  private scheduledRun(ev: ScheduleRunEvent, state: FolderState): Promise<Settled> {
    const name = displayName(state.folder, ev.db);
    const base = { op: 'backup' as const, route: 'schedule' as const, db: ev.db, kind: 'scheduled' as const, dirs: [ev.dir], state };
    if (ev.outcome === 'unchanged') {
      return this.finish({ ...base, outcome: 'unchanged', backup: ev.record.id, message: `no scheduled backup of ${name} needed: unchanged since ${ev.record.id}` });
    }
    const catchUp = ev.catchUp ? `catch-up for ${ev.missedCount} missed slot${ev.missedCount === 1 ? '' : 's'}` : undefined;
    return this.finish(this.backupDone(base, name, { record: ev.record, verified: ev.verified, sourceDamaged: ev.sourceDamaged }, undefined, catchUp));
  }

  private scheduleFailed(ev: ScheduleFailEvent, state: FolderState, retry: () => void): Promise<Settled> {
    const when = ev.retryAt ? ` Retrying at ${ev.retryAt.toLocaleTimeString()}.` : ev.gaveUp ? ' Lifeboat tries again at the next slot.' : '';
    if (ev.what === 'backup' && ev.db) {
      const name = displayName(state.folder, ev.db);
      const base = { op: 'backup' as const, route: 'schedule' as const, db: ev.db, kind: 'scheduled' as const, dirs: ev.dir ? [ev.dir] : [], state };
      const f = this.backupFailed(base, name, ev.error, retry);
      return this.finish({ ...f, message: `${f.message}.${when}` });
    }
    const what = ev.what === 'restoreTest' ? 'the restore test' : 'the schedule';
    return this.finish({
      op: ev.what === 'restoreTest' ? 'restoreTest' : 'schedule',
      route: 'schedule',
      dirs: ev.dir ? [ev.dir] : [],
      state,
      outcome: 'failed',
      message: `Lifeboat: ${what} of ${state.folder.name} failed: ${ev.error.message}.${when}`,
      retry,
    });
  }

  private async restoreTested(ev: RestoreTestEvent): Promise<Settled | undefined> {
    const r = ev.result as { ok?: unknown; path?: unknown; from?: unknown } | undefined;
    // A failed test is also reported on onDidFail, which settles it.
    if (r && r.ok === false) return undefined;
    const tested = r && typeof r.path === 'string' ? backupName(r.path) : undefined;
    const where = r && typeof r.from === 'string' ? ` (its off-site copy in ${r.from})` : '';
    return this.finish({ op: 'restoreTest', route: 'schedule', dirs: [ev.dir], outcome: 'ok', message: tested ? `restore test of ${tested}${where} passed` : `no backup to restore-test in ${ev.dir}` });
  }

  /** The Finish of a backup that produced an archive. */
  private backupDone(
    base: Omit<Finish, 'outcome' | 'message'> & { db: string; kind: BackupKind },
    name: string,
    res: Pick<BackupResult, 'record' | 'verified' | 'sourceDamaged'>,
    retry: (() => unknown) | undefined,
    note?: string,
  ): Finish {
    const r = res.record;
    const v = r.manifest.verification;
    if (res.sourceDamaged) {
      const message = `Lifeboat: ${name} is damaged: its backup failed verification (${v.problems.slice(0, 2).join('; ')}). The backup was kept for inspection.`;
      return { ...base, outcome: 'damaged', backup: r.id, reason: `${name} is damaged`, message, log: `${message} (${r.id})`, retry };
    }
    const verdict = res.verified ? 'verified' : `NOT verified (${v.skippedReason ?? 'skipped'})`;
    const what = note ? `${base.kind}, ${note}` : base.kind;
    return {
      ...base,
      outcome: res.verified ? 'ok' : 'unverified',
      backup: r.id,
      message: `Lifeboat: backed up ${name} (${what}, ${verdict}).`,
      log: `backed up ${base.db} as ${r.id} (${what}, ${verdict}; from ${VIA[base.route]})`,
      notify: 'success',
    };
  }

  /** The Finish of a backup that threw (or was cancelled). */
  private backupFailed(base: Omit<Finish, 'outcome' | 'message'> & { db: string; kind: BackupKind }, name: string, e: unknown, retry: (() => unknown) | undefined): Finish {
    const msg = messageOf(e);
    if (BackupError.is(e, 'cancelled')) {
      return { ...base, outcome: 'cancelled', message: `Lifeboat: the backup of ${name} was cancelled; nothing was written.`, log: `${base.kind} backup of ${base.db} cancelled (${msg}); nothing was written` };
    }
    const consequence = CONSEQUENCE[base.route];
    return { ...base, outcome: 'failed', reason: msg, message: `Lifeboat: the ${base.kind} backup of ${name} failed: ${msg}${consequence ? `. ${consequence}` : ''}`, retry };
  }

  /** Runs work with a progress notification (a person is waiting) or only in the panel. */
  private run<T>(route: Route, title: string, signal: AbortSignal | undefined, work: RunWork<T>, verdict?: RunVerdict<T>): Promise<T> {
    return INTERACTIVE.has(route) ? this.ops.withProgress(title, work, verdict) : this.ops.tracked(title, signal, work, verdict);
  }

  private async trusted(route: Route, action: string): Promise<boolean> {
    if (vscode.workspace.isTrusted) return true;
    if (INTERACTIVE.has(route)) await requireTrust(action);
    else this.log.warn(`Restricted Mode: did not ${action} (from ${VIA[route]})`);
    return false;
  }

  /**
   * The after-effects of one operation, once: refresh the directories' listings and the
   * log mirror, tell the status bar about a backup, log one line, show the outcome as the
   * route wants, fire onDidSettle. Never rejects.
   */
  private async finish(f: Finish): Promise<Settled> {
    const settled: Settled = { op: f.op, route: f.route, outcome: f.outcome, dirs: f.dirs, db: f.db, kind: f.kind, backup: f.backup, message: f.message };
    const failed = f.outcome === 'failed' || f.outcome === 'damaged';
    try {
      for (const d of f.dirs) this.model.invalidate(d);
      // The backup log's lines of this operation reach the channel before the line that sums it up.
      await Promise.all(f.dirs.map((d) => this.mirror.sync(d)));
      if (f.op === 'backup' && f.db) {
        if (failed) this.status.reportFailure(f.db, f.reason ?? f.message);
        else if (f.outcome !== 'cancelled') this.status.reportSuccess(f.db);
      }
      const line = f.log ?? f.message;
      if (failed) this.log.error(line);
      else if (f.outcome === 'unverified') this.log.warn(line);
      else this.log.info(line);
      if (f.route !== 'shutdown' && f.show !== false) {
        const interactive = INTERACTIVE.has(f.route);
        if (failed) this.ops.showFailure(f.message, f.retry);
        else if (f.outcome === 'cancelled') {
          if (interactive) void vscode.window.showInformationMessage(f.message);
        } else if (f.notify === 'info') void vscode.window.showInformationMessage(f.message);
        else if (f.notify === 'success') this.ops.showSuccess(f.state, f.message, interactive);
      }
    } catch (e) {
      // Late in a shutdown the services behind the after-effects may be gone already.
      this.log.warn(`after ${f.op}: ${messageOf(e)}`);
    }
    this.settledEmitter.fire(settled);
    return settled;
  }

  dispose(): void {
    this.settledEmitter.dispose();
  }
}

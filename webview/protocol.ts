/**
 * The typed protocol between the Settings and Statistics panel (the app in webview/) and
 * its host (src/extension/panel.ts). Three kinds of message:
 * - Command: webview -> host, no reply;
 * - Request: webview -> host, answered by exactly one Reply with the same `id` (a failed
 *   Reply rejects the caller's promise);
 * - Notification: host -> webview, each one carrying the whole state of its topic, so a
 *   hidden panel only ever needs the newest.
 * The host sends nothing until the app sends `panel/app/ready`, and checks every incoming
 * message with `parseWebviewMessage` (a malformed or unknown one is ignored and logged).
 * Message names end in Command, Request or Notification; methods read `scope/noun/verb`.
 *
 * Imported by the webview bundle and the extension: no runtime dependency beyond itself,
 * type-only imports of the core's models.
 */
import type { BackupKind, Tier } from '../src/core/model';

// ---------------------------------------------------------------------------- state

/** How a backup's verification stands (a later re-verification wins). */
export type VerificationState = 'verified' | 'failed' | 'unverified';

/** One row of the history table. Times are ISO 8601 strings. */
export interface HistoryRow {
  /** The archive id (unique in its directory). */
  id: string;
  created: string;
  kind: BackupKind;
  tier: Tier;
  /** Archive size in bytes. */
  size: number;
  durationMs: number;
  verification: VerificationState;
  trigger: string;
  pinned: boolean;
  /** Why rotation keeps it (or 'to be removed: ...'), for a tooltip. */
  reasons: string[];
}

/** A failed backup from the log (it left no archive), for the chart and the history. */
export interface FailureMark {
  time: string;
  reason: string;
}

/** Statistics of one database, computed on the host from the core's computeStats and tiers. */
export interface DatabaseStats {
  count: number;
  totalSize: number;
  perTier: Partial<Record<Tier, { count: number; size: number }>>;
  oldest?: string;
  newest?: string;
  lastSuccess?: string;
  lastFailure?: FailureMark;
  /** The next scheduled run, or undefined when the schedule is off. */
  nextRun?: string;
  /** Schedule label for people: "daily 02:00", "cron 0 *\/4 * * *", "off". */
  schedule: string;
  /** Share of the kept backups that are verified, 0..1. */
  verifiedShare: number;
  /** Share of the kept backups restore-tested in the last 30 days, 0..1. */
  restoreTestedShare: number;
  /** Whether the database itself last checked healthy (its newest backup's verification). */
  sourceHealth: { state: 'healthy' | 'damaged' | 'unknown'; at?: string; detail?: string };
}

/**
 * The values of the settings form, keyed by setting name relative to `lifeboat.`
 * (`retention.daily`, `schedule.time`...). Values are what VS Code holds.
 */
export type SettingsValues = Record<string, unknown>;

/** The keys the form edits, in the order it shows them. */
export const FORM_KEYS = [
  'enabled',
  'schedule.daily',
  'schedule.time',
  'schedule.cron',
  'backupOnShutdown',
  'migrations.backupBefore',
  'retention.daily',
  'retention.weekly',
  'retention.monthly',
  'retention.keepWithin',
  'retention.keepEventBackups',
  'directory',
  'verification.mode',
  'verification.restoreTest',
  'verification.probeQuery',
  'notifications',
] as const;
export type FormKey = (typeof FORM_KEYS)[number];

/** Where the form writes: VS Code's ConfigurationTarget Workspace, WorkspaceFolder or Global. */
export type SettingsScope = 'workspace' | 'workspaceFolder' | 'user';
export const SETTINGS_SCOPES: readonly SettingsScope[] = ['workspace', 'workspaceFolder', 'user'];

/** One protected database and everything the panel shows about it. */
export interface DatabaseView {
  /** Absolute path; the database's identity in every message. */
  id: string;
  /** Path relative to its workspace folder, for people. */
  label: string;
  folder: string;
  backupDir: string;
  stats: DatabaseStats;
  /** Newest first. */
  history: HistoryRow[];
  failures: FailureMark[];
  /** The settings in force for this database's folder. */
  settings: SettingsValues;
  /** Set when listing the backups failed. */
  error?: string;
}

/** Everything the panel shows except progress: the body of StateNotification. */
export interface PanelState {
  databases: DatabaseView[];
  /** Whether the workspace is trusted (actions that write are refused otherwise). */
  trusted: boolean;
  /** Scopes the user may write to here (workspaceFolder only in a multi-root workspace). */
  scopes: SettingsScope[];
  /** ISO time the state was built (for "x ago" texts). */
  now: string;
}

/** One long operation the extension runs (backup, verification, restore). */
export interface OperationView {
  id: number;
  title: string;
  phase: string;
  done: number;
  total: number;
  /** Set once the operation ended. */
  result?: { ok: boolean; message: string };
}

/** Body of ProgressNotification: the running operation(s) and the latest finished one. */
export interface ProgressState {
  running: OperationView[];
  last?: OperationView;
}

// ---------------------------------------------------------------------------- messages

export type BackupAction = 'restore' | 'verify' | 'pin' | 'unpin' | 'reveal';
export const BACKUP_ACTIONS: readonly BackupAction[] = ['restore', 'verify', 'pin', 'unpin', 'reveal'];

export interface ReadyCommand {
  kind: 'command';
  method: 'panel/app/ready';
}
export interface BackUpNowCommand {
  kind: 'command';
  method: 'backups/database/backUp';
  params: { db: string };
}
export interface VerifyAllCommand {
  kind: 'command';
  method: 'backups/database/verifyAll';
  params: { db: string };
}
export interface RotateNowCommand {
  kind: 'command';
  method: 'backups/database/rotate';
  params: { db: string };
}
export interface BackupActionCommand {
  kind: 'command';
  method: 'backups/backup/act';
  params: { db: string; id: string; action: BackupAction };
}
export interface OpenSettingsCommand {
  kind: 'command';
  method: 'settings/editor/open';
}
export type WebviewCommand = ReadyCommand | BackUpNowCommand | VerifyAllCommand | RotateNowCommand | BackupActionCommand | OpenSettingsCommand;

/** A settings problem, as the core's validate() reports it (`field` is `lifeboat.<key>`). */
export interface FieldIssue {
  field: string;
  reason: string;
}

export interface ValidateSettingsRequest {
  kind: 'request';
  id: number;
  method: 'settings/values/validate';
  params: { db: string; values: SettingsValues };
}
export interface SchedulePreviewRequest {
  kind: 'request';
  id: number;
  method: 'settings/schedule/preview';
  params: { db: string; values: SettingsValues };
}
export interface RetentionPreviewRequest {
  kind: 'request';
  id: number;
  method: 'settings/retention/preview';
  params: { db: string; values: SettingsValues };
}
export interface SaveSettingsRequest {
  kind: 'request';
  id: number;
  method: 'settings/values/save';
  params: { db: string; scope: SettingsScope; values: SettingsValues };
}
export type WebviewRequest = ValidateSettingsRequest | SchedulePreviewRequest | RetentionPreviewRequest | SaveSettingsRequest;

/** What each request resolves with. */
export interface RequestResults {
  'settings/values/validate': { issues: FieldIssue[] };
  /** The next three runs (ISO) or why there are none; `issues` when a value is invalid. */
  'settings/schedule/preview': { label: string; runs: string[]; issues: FieldIssue[] };
  /** What rotation would keep and delete under the edited policy, newest first. */
  'settings/retention/preview': {
    keep: { id: string; tier: Tier; reasons: string[] }[];
    remove: { id: string; reasons: string[] }[];
    refused?: string;
    issues: FieldIssue[];
  };
  /** `saved` lists the keys written; nothing is written when `issues` is not empty. */
  'settings/values/save': { saved: string[]; issues: FieldIssue[] };
}

export interface StateNotification {
  kind: 'notification';
  method: 'panel/state/didChange';
  params: PanelState;
}
export interface ProgressNotification {
  kind: 'notification';
  method: 'panel/progress/didChange';
  params: ProgressState;
}
export type HostNotification = StateNotification | ProgressNotification;

/** The host's answer to a Request: `ok` with the result, or the error message (rejects the caller). */
export type ReplyMessage =
  | { kind: 'reply'; id: number; ok: true; result: unknown }
  | { kind: 'reply'; id: number; ok: false; error: string };

export type WebviewMessage = WebviewCommand | WebviewRequest;
export type HostMessage = HostNotification | ReplyMessage;

// ---------------------------------------------------------------------------- validation

const isObj = (x: unknown): x is Record<string, unknown> => typeof x === 'object' && x !== null && !Array.isArray(x);
const isStr = (x: unknown): x is string => typeof x === 'string' && x.length > 0 && x.length < 4096;
const isValues = (x: unknown): x is SettingsValues =>
  isObj(x) && Object.keys(x).length <= 64 && Object.keys(x).every((k) => (FORM_KEYS as readonly string[]).includes(k));

/**
 * Checks a message from the webview. Returns the typed message, or a one-line reason why
 * it is refused (unknown kind or method, missing or ill-typed params, unknown setting
 * keys). Pure; never throws.
 */
export function parseWebviewMessage(x: unknown): { ok: true; message: WebviewMessage } | { ok: false; reason: string } {
  if (!isObj(x)) return { ok: false, reason: 'not an object' };
  const m = x.method;
  const p = x.params;
  if (typeof m !== 'string') return { ok: false, reason: 'no method' };
  if (x.kind === 'command') {
    switch (m) {
      case 'panel/app/ready':
      case 'settings/editor/open':
        return { ok: true, message: { kind: 'command', method: m } };
      case 'backups/database/backUp':
      case 'backups/database/verifyAll':
      case 'backups/database/rotate':
        if (!isObj(p) || !isStr(p.db)) return { ok: false, reason: `${m}: params.db must be a path` };
        return { ok: true, message: { kind: 'command', method: m, params: { db: p.db } } };
      case 'backups/backup/act':
        if (!isObj(p) || !isStr(p.db) || !isStr(p.id) || !BACKUP_ACTIONS.includes(p.action as BackupAction)) {
          return { ok: false, reason: `${m}: params must be {db, id, action}` };
        }
        return { ok: true, message: { kind: 'command', method: m, params: { db: p.db, id: p.id, action: p.action as BackupAction } } };
      default:
        return { ok: false, reason: `unknown command ${JSON.stringify(m).slice(0, 80)}` };
    }
  }
  if (x.kind === 'request') {
    const id = x.id;
    if (typeof id !== 'number' || !Number.isSafeInteger(id) || id < 0) return { ok: false, reason: 'request without a valid id' };
    switch (m) {
      case 'settings/values/validate':
      case 'settings/schedule/preview':
      case 'settings/retention/preview':
        if (!isObj(p) || !isStr(p.db) || !isValues(p.values)) return { ok: false, reason: `${m}: params must be {db, values} with known setting keys` };
        return { ok: true, message: { kind: 'request', id, method: m, params: { db: p.db, values: p.values } } };
      case 'settings/values/save':
        if (!isObj(p) || !isStr(p.db) || !isValues(p.values) || !SETTINGS_SCOPES.includes(p.scope as SettingsScope)) {
          return { ok: false, reason: `${m}: params must be {db, scope, values} with known setting keys` };
        }
        return { ok: true, message: { kind: 'request', id, method: m, params: { db: p.db, scope: p.scope as SettingsScope, values: p.values } } };
      default:
        return { ok: false, reason: `unknown request ${JSON.stringify(m).slice(0, 80)}` };
    }
  }
  return { ok: false, reason: `unknown message kind ${JSON.stringify(x.kind)?.slice(0, 40)}` };
}

/** The params of the Request with method `M`. */
export type RequestParams<M extends WebviewRequest['method']> = Extract<WebviewRequest, { method: M }>['params'];

/**
 * The typed protocol between the Settings and Statistics panel (the app in webview/) and
 * its host (src/extension/panel.ts). Three kinds of message:
 * - Command: webview -> host, no reply;
 * - Request: webview -> host, answered by exactly one Reply with the same `id` (a failed
 *   Reply rejects the caller's promise);
 * - Notification: host -> webview, each one carrying the whole state of its topic, so a
 *   hidden panel only ever needs the newest.
 * The host sends nothing until the app sends `panel/app/ready`, and checks every incoming
 * message with `parseWebviewMessage`, a valibot schema (a malformed or unknown one is
 * ignored and logged).
 * Message names end in Command, Request or Notification; methods read `scope/noun/verb`.
 *
 * Imported by the webview bundle and the extension: type-only imports of the core's models;
 * valibot only inside `parseWebviewMessage`, which the host alone calls, so the webview's
 * bundle (tree-shaken) does not carry it.
 */
import * as v from 'valibot';
import type { BackupKind, Tier } from '../src/core/model';
import type { Cell, RowsPage, SchemaEntry, TableSummary } from '../src/core/inspect/browseJob';
import type { ChangedObject, SchemaObject } from '../src/core/inspect/diffSql';

export type { Cell, ChangedObject, RowsPage, SchemaEntry, SchemaObject, TableSummary };

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
 * (`retention.daily`, `schedule.time`...). Values are what VS Code holds, except the
 * sub-keys `offsite.retention.<key>`: one key each of the object setting
 * `lifeboat.offsite.retention`, '' when the key is left out.
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
  'offsite.url',
  'offsite.endpoint',
  'offsite.region',
  'offsite.encrypt',
  'offsite.bandwidthKiBps',
  // One key each of the object setting lifeboat.offsite.retention; '' = left out (the local policy's).
  'offsite.retention.daily',
  'offsite.retention.weekly',
  'offsite.retention.monthly',
  'offsite.retention.keepWithin',
  'offsite.retention.keepEventBackups',
  'notifications',
] as const;
export type FormKey = (typeof FORM_KEYS)[number];

/** Where the form writes: VS Code's ConfigurationTarget Workspace, WorkspaceFolder or Global. */
export type SettingsScope = 'workspace' | 'workspaceFolder' | 'user';
export const SETTINGS_SCOPES: readonly SettingsScope[] = ['workspace', 'workspaceFolder', 'user'];
/** Each scope as people read it ("Saved 2 settings to Workspace settings"). */
export const SCOPE_LABELS: Readonly<Record<SettingsScope, string>> = { workspace: 'Workspace settings', workspaceFolder: 'Workspace folder settings', user: 'User settings' };

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
  /** The off-site copy of these backups, when lifeboat.offsite.url is set. */
  offsite?: OffsiteView;
}

/** The off-site copy of one database's backups, as the panel shows it. */
export interface OffsiteView {
  url: string;
  /** When the newest copy was made (ISO), if any. */
  lastCopyAt?: string;
  /** Bytes of the backups copied (their local size). */
  bytes: number;
  copied: number;
  /** Verified backups not copied yet. */
  pending: number;
  /** How long the remote has been behind the local backups, in ms (0: up to date). */
  lagMs: number;
  /** The last copy's failure, when none succeeded since. */
  failure?: string;
  /** The last verification of the remote in this session. */
  lastVerify?: { at: string; ok: boolean; message: string };
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

export type BackupAction = 'restore' | 'verify' | 'pin' | 'unpin' | 'reveal' | 'compare';
export const BACKUP_ACTIONS: readonly BackupAction[] = ['restore', 'verify', 'pin', 'unpin', 'reveal', 'compare'];

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

const isPlainObject = (x: unknown): x is Record<string, unknown> => typeof x === 'object' && x !== null && !Array.isArray(x);

/**
 * The schema of every message the webview may send. Built on first use, so that the
 * webview's bundle, which imports this file for its types and FORM_KEYS, leaves valibot out.
 */
function buildMessageSchema() {
  /** A database path or a backup id. */
  const name = v.pipe(
    v.string('expected a string'),
    v.minLength(1, 'expected a non-empty string'),
    v.maxLength(4095, 'expected fewer than 4096 characters'),
  );
  const values = v.pipe(
    v.unknown(),
    v.check(isPlainObject, 'expected an object of settings'),
    v.record(v.picklist(FORM_KEYS, 'is not a setting the panel edits'), v.unknown()),
  );
  const params = <E extends v.ObjectEntries>(entries: E) => v.object(entries, 'expected an object');
  const command = <const M extends readonly string[]>(methods: M) => ({ kind: v.literal('command'), method: v.picklist(methods) });
  const request = <const M extends readonly string[]>(methods: M) => ({
    kind: v.literal('request'),
    id: v.pipe(v.number('expected a number'), v.safeInteger('expected a whole number'), v.minValue(0, 'expected a number >= 0')),
    method: v.picklist(methods),
  });
  return v.variant('kind', [
    v.variant('method', [
      v.object(command(['panel/app/ready', 'settings/editor/open'])),
      v.object({ ...command(['backups/database/backUp', 'backups/database/verifyAll', 'backups/database/rotate']), params: params({ db: name }) }),
      v.object({
        ...command(['backups/backup/act']),
        params: params({ db: name, id: name, action: v.picklist(BACKUP_ACTIONS, `expected one of ${BACKUP_ACTIONS.join(', ')}`) }),
      }),
    ]),
    v.variant('method', [
      v.object({ ...request(['settings/values/validate', 'settings/schedule/preview', 'settings/retention/preview']), params: params({ db: name, values }) }),
      v.object({
        ...request(['settings/values/save']),
        params: params({ db: name, scope: v.picklist(SETTINGS_SCOPES, `expected one of ${SETTINGS_SCOPES.join(', ')}`), values }),
      }),
    ]),
  ]) satisfies v.GenericSchema<unknown, WebviewMessage>;
}
let messageSchema: ReturnType<typeof buildMessageSchema> | undefined;

/**
 * Checks a message from the webview. Returns the typed message (a fresh object holding only
 * the fields of its type), or a one-line reason why it is refused that names the offending
 * field: "kind: unknown message kind", "method: unknown command", "backups/backup/act:
 * params.action: expected one of restore, ...", "settings/values/save: params.values.x: is
 * not a setting the panel edits". Pure; never throws.
 */
export function parseWebviewMessage(x: unknown): { ok: true; message: WebviewMessage } | { ok: false; reason: string } {
  if (!isPlainObject(x)) return { ok: false, reason: 'not an object' };
  messageSchema ??= buildMessageSchema();
  const r = v.safeParse(messageSchema, x, { abortEarly: true });
  if (r.success) return { ok: true, message: r.output };
  return { ok: false, reason: explain(r.issues[0], x) };
}

/** The one-line reason of a refused message, from the first issue valibot found. */
function explain(issue: v.BaseIssue<unknown>, x: Record<string, unknown>): string {
  const at = v.getDotPath(issue) ?? 'message';
  // A variant reports an unknown discriminator: the kind, or the method of a known kind.
  if (issue.type === 'variant') {
    return `${at}: unknown ${at === 'method' ? String(x.kind) : 'message kind'} (got ${clip(issue.received)})`;
  }
  // Once the method is known, the reason says which message had the bad field.
  const scope = typeof x.method === 'string' ? `${clip(x.method)}: ` : '';
  // An object schema reports an absent key as its own issue, expecting the key's name
  // (valibot's types leave object issues out of a variant's, so widen to compare).
  const type: string = issue.type;
  if (issue.received === 'undefined' && type === 'object') return `${scope}${at}: missing`;
  // A length check receives the length; the value itself says more.
  const got = typeof issue.input === 'string' ? JSON.stringify(issue.input) : issue.received;
  return `${scope}${at}: ${issue.message} (got ${clip(got)})`;
}

function clip(s: string): string {
  return s.length > 80 ? `${s.slice(0, 77)}...` : s;
}

/** The params of the Request with method `M` (either protocol). */
export type RequestParams<M extends WebviewRequest['method'] | InspectRequest['method']> = Extract<WebviewRequest | InspectRequest, { method: M }>['params'];

// ---------------------------------------------------------------------------- inspect views
//
// The read-only views of a backup ("Open Backup") and of a comparison ("Compare with
// Current Database", "Compare Two Backups"), hosted by src/extension/inspectHost.ts and
// drawn by webview/inspect.ts. The same kinds and habits: the app says
// `inspect/app/ready`, the host answers with the whole InspectState, rows come page by
// page through Requests, and `parseInspectMessage` checks everything the app sends.

/** One side of a view: a backup, or the current (live) database as snapshotted at `takenAt`. */
export interface InspectSide {
  kind: 'backup' | 'live';
  /** The backup's id (kind backup). */
  id?: string;
  /** ISO time the backup was made (kind backup). */
  created?: string;
  backupKind?: BackupKind;
  /** The database's absolute path, and as people read it (relative to its folder). */
  db: string;
  dbLabel: string;
  /** ISO time of the image: the backup's creation, or the live snapshot's. */
  takenAt: string;
}

/** Body of the state of an "Open Backup" view. */
export interface BrowseState {
  view: 'browse';
  backup: InspectSide;
  /** sqlite_schema, internal objects left out. */
  objects: SchemaEntry[];
  tables: TableSummary[];
  pageSize: number;
  pageCount: number;
  /** Rows per page of `inspect/table/rows`. */
  pageRows: number;
  /** Whether "Compare with Current Database" is offered (the backup's database exists). */
  canCompare: boolean;
}

/** One table of a comparison: rows added, removed and changed from older to newer, and how rows were matched. */
export interface TableChange {
  name: string;
  added: number;
  removed: number;
  changed: number;
  key: string;
}

/** What the last "Restore This Table" of a comparison did. */
export interface RestoreNotice {
  ok: boolean;
  table: string;
  message: string;
  /** More lines: the pre-restore backup, the rows, the foreign key check. */
  details: string[];
}

/** Body of the state of a comparison view. */
export interface CompareState {
  view: 'compare';
  older: InspectSide;
  newer: InspectSide;
  schema: { added: SchemaObject[]; removed: SchemaObject[]; changed: ChangedObject[] };
  tables: TableChange[];
  /** Tables present in both that were not compared, with why. */
  notCompared: Record<string, string>;
  /** Rows of each kind per page of `inspect/diff/rows`. */
  pageRows: number;
  /** Whether "Restore This Table" is offered (newer is the live database, the workspace trusted), else why not. */
  restore: { offered: boolean; why?: string };
  /** What the view is doing now ("restoring table items", "comparing again"), if anything. */
  busy?: string;
  notice?: RestoreNotice;
}

export type InspectState = BrowseState | CompareState;

/** One value of a row's key as the comparison carries it: BLOBs as { $blob: hex }, integers beyond 2^53 as strings. */
export type KeyValue = null | number | string | { $blob: string };

/** A row of a comparison: its values in the column order of its side; `count` for tables compared as multisets. */
export interface DiffRow {
  values: Cell[];
  count?: number;
  /** Keyed tables: the row's key, whole (never cut as a Cell may be), in the key's column order; what "Restore Selected Rows" sends back. */
  key?: KeyValue[];
}

/** One page of the changed rows of one table, side by side. */
export interface DiffRowsPage {
  table: string;
  key: string;
  offset: number;
  limit: number;
  counts: { added: number; removed: number; changed: number };
  /** The columns of the older side (removed rows, the old half of changed ones) and of the newer side. */
  olderColumns: string[];
  newerColumns: string[];
  added: DiffRow[];
  removed: DiffRow[];
  changed: { old: DiffRow; new: DiffRow }[];
}

export interface InspectReadyCommand {
  kind: 'command';
  method: 'inspect/app/ready';
}
/** From a backup's view: open its comparison with the current database. */
export interface CompareWithCurrentCommand {
  kind: 'command';
  method: 'inspect/backup/compareCurrent';
}
/** From a comparison with the live database: snapshot it again and compare again. */
export interface RefreshCompareCommand {
  kind: 'command';
  method: 'inspect/compare/refresh';
}
export type InspectCommand = InspectReadyCommand | CompareWithCurrentCommand | RefreshCompareCommand;

export interface TableRowsRequest {
  kind: 'request';
  id: number;
  method: 'inspect/table/rows';
  params: { table: string; offset: number };
}
export interface DiffRowsRequest {
  kind: 'request';
  id: number;
  method: 'inspect/diff/rows';
  params: { table: string; offset: number };
}
/** Asks for "Restore This Table"; the host confirms with the user first. */
export interface RestoreTableRequest {
  kind: 'request';
  id: number;
  method: 'inspect/table/restore';
  params: { table: string };
}
/** A row picked for "Restore Selected Rows": its key and the kind of change it shows (added rows are deleted). */
export interface SelectedRow {
  key: KeyValue[];
  kind: 'added' | 'removed' | 'changed';
}
/**
 * Asks for "Restore Selected Rows": each selected row of `table` becomes the backup's (a
 * removed row inserted, a changed row reverted, an added row deleted); the host confirms
 * with the user first.
 */
export interface RestoreRowsRequest {
  kind: 'request';
  id: number;
  method: 'inspect/rows/restore';
  params: { table: string; rows: SelectedRow[] };
}
/** Rows "Restore Selected Rows" takes at once at most. */
export const MAX_SELECTED_ROWS = 10_000;
export type InspectRequest = TableRowsRequest | DiffRowsRequest | RestoreTableRequest | RestoreRowsRequest;

export interface InspectRequestResults {
  'inspect/table/rows': RowsPage;
  'inspect/diff/rows': DiffRowsPage;
  /** `declined`: the user said no; `failed`: refused or failed (message says why). */
  'inspect/table/restore': { outcome: 'restored' | 'declined' | 'failed'; message: string };
  /** As inspect/table/restore. */
  'inspect/rows/restore': { outcome: 'restored' | 'declined' | 'failed'; message: string };
}

export interface InspectStateNotification {
  kind: 'notification';
  method: 'inspect/state/didChange';
  params: InspectState;
}

export type InspectMessage = InspectCommand | InspectRequest;
export type InspectHostMessage = InspectStateNotification | ReplyMessage;

function buildInspectSchema() {
  const table = v.pipe(v.string('expected a string'), v.minLength(1, 'expected a non-empty string'), v.maxLength(4095, 'expected fewer than 4096 characters'));
  const offset = v.pipe(v.number('expected a number'), v.safeInteger('expected a whole number'), v.minValue(0, 'expected a number >= 0'));
  const params = <E extends v.ObjectEntries>(entries: E) => v.object(entries, 'expected an object');
  const keyValue = v.union(
    [
      v.null(),
      v.pipe(v.number(), v.finite('expected a finite number')),
      v.pipe(v.string(), v.maxLength(1 << 20)),
      v.object({ $blob: v.pipe(v.string(), v.maxLength(1 << 21), v.regex(/^(?:[0-9a-f]{2})*$/i)) }),
    ],
    'expected a key value (null, a number, a string or { $blob: hex })',
  );
  const request = <const M extends readonly string[]>(methods: M) => ({
    kind: v.literal('request'),
    id: offset,
    method: v.picklist(methods),
  });
  return v.variant('kind', [
    v.object({ kind: v.literal('command'), method: v.picklist(['inspect/app/ready', 'inspect/backup/compareCurrent', 'inspect/compare/refresh']) }),
    v.variant('method', [
      v.object({ ...request(['inspect/table/rows', 'inspect/diff/rows']), params: params({ table, offset }) }),
      v.object({ ...request(['inspect/table/restore']), params: params({ table }) }),
      v.object({
        ...request(['inspect/rows/restore']),
        params: params({
          table,
          rows: v.pipe(
            v.array(v.object({ key: v.pipe(v.array(keyValue, 'expected an array of key values'), v.minLength(1, 'expected at least one key value'), v.maxLength(64, 'expected at most 64 key values')), kind: v.picklist(['added', 'removed', 'changed']) }, 'expected an object'), 'expected an array'),
            v.minLength(1, 'expected at least one row'),
            v.maxLength(MAX_SELECTED_ROWS, `expected at most ${MAX_SELECTED_ROWS} rows`),
          ),
        }),
      }),
    ]),
  ]) satisfies v.GenericSchema<unknown, InspectMessage>;
}
let inspectSchema: ReturnType<typeof buildInspectSchema> | undefined;

/**
 * Checks a message from an inspect view's app, as parseWebviewMessage does for the
 * panel's (a message of the other protocol is refused). Pure; never throws.
 */
export function parseInspectMessage(x: unknown): { ok: true; message: InspectMessage } | { ok: false; reason: string } {
  if (!isPlainObject(x)) return { ok: false, reason: 'not an object' };
  inspectSchema ??= buildInspectSchema();
  const r = v.safeParse(inspectSchema, x, { abortEarly: true });
  if (r.success) return { ok: true, message: r.output };
  return { ok: false, reason: explain(r.issues[0], x) };
}

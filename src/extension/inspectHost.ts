import { promises as fs } from 'node:fs';
import * as path from 'node:path';
import * as vscode from 'vscode';
import type { DatabaseImage, DiffReport } from '../core/engine';
import { BackupError } from '../core/errors';
import type { Manifest } from '../core/model';
import type {
  BrowseState,
  Cell,
  CompareState,
  DiffRow,
  DiffRowsPage,
  InspectCommand,
  InspectHostMessage,
  InspectRequest,
  InspectRequestResults,
  InspectSide,
  InspectState,
  KeyValue,
  ReplyMessage,
  SelectedRow,
} from '../../webview/protocol';
import { parseInspectMessage } from '../../webview/protocol';
import { backupName } from './backupFiles';
import type { BackupService } from './backupService';
import { COMMANDS } from './commandIds';
import type { CoreHost, EngineInstance } from './coreLoader';
import type { Folders } from './folders';
import { relativeDb } from './folders';
import { formatLocal } from './format';
import type { Operations, RunWork } from './operations';
import type { ChosenBackup, DbTarget } from './picks';
import { appHtml } from './webviewHtml';

/** Rows per page of a backup's table. */
export const BROWSE_PAGE_ROWS = 100;
/** Rows of each kind (added, removed, changed) per page of a comparison. */
export const DIFF_PAGE_ROWS = 50;
/** Bytes of a BLOB and characters of a text a comparison's cell carries (as the core's Cell). */
const BLOB_BYTES = 32;
const TEXT_CHARS = 300;

/** Asks the user to confirm; resolves true only for `button`. */
export type Confirm = (message: string, detail: string, button: string) => Promise<boolean>;

const modalConfirm: Confirm = async (message, detail, button) => (await vscode.window.showWarningMessage(message, { modal: true, detail }, button)) === button;

function messageOf(e: unknown): string {
  return (e as Error)?.message ?? String(e);
}

/** A comparison's JSON value as a Cell (BLOBs arrive as { $blob: hex }). Pure. */
export function diffCell(v: unknown): Cell {
  if (v === null || v === undefined) return null;
  if (typeof v === 'object' && '$blob' in (v as Record<string, unknown>)) {
    const hex = String((v as { $blob: unknown }).$blob);
    return { blob: hex.slice(0, 2 * BLOB_BYTES), bytes: hex.length / 2 };
  }
  if (typeof v === 'number') return v;
  const s = String(v);
  return s.length > TEXT_CHARS ? { text: s.slice(0, TEXT_CHARS), chars: s.length } : s;
}

/** The column names of rows, in the order they first appear. Pure. */
function columnsOf(rows: Record<string, unknown>[]): string[] {
  const out: string[] = [];
  for (const r of rows) for (const k of Object.keys(r)) if (k !== '$count' && !out.includes(k)) out.push(k);
  return out;
}

/**
 * The key columns a comparison's label names ('rowid (id)', 'primary key (a, b)'), read
 * against the table's column names (a name may hold ', ' itself); undefined for a table
 * matched as a multiset, or a label that does not parse. Pure.
 */
export function keyColumnsOf(label: string, columns: string[]): string[] | undefined {
  const m = /^(?:rowid|primary key) \((.*)\)$/s.exec(label);
  if (!m) return undefined;
  const inner = m[1];
  const from = (i: number): string[] | undefined => {
    for (const c of columns) {
      if (!c || !inner.startsWith(c, i)) continue;
      const end = i + c.length;
      if (end === inner.length) return [c];
      if (inner.startsWith(', ', end)) {
        const rest = from(end + 2);
        if (rest) return [c, ...rest];
      }
    }
    return undefined;
  };
  return from(0);
}

function diffRow(r: Record<string, unknown>, columns: string[], key?: string[]): DiffRow {
  const row: DiffRow = { values: columns.map((c) => diffCell(r[c])) };
  if (typeof r.$count === 'number') row.count = r.$count;
  if (key && key.every((k) => k in r)) row.key = key.map((k) => r[k] as KeyValue);
  return row;
}

/** A page of the engine's rows of one table as the view lays it out side by side. Pure. */
export function diffRowsPage(report: DiffReport, table: string, offset: number, limit: number): DiffRowsPage {
  const t = report.tables[table];
  if (!t) throw new Error(`no table named ${table} was compared`);
  const rows = t.rows ?? { added: [], removed: [], changed: [] };
  // The engine names each side's columns; rows carry them as keys too (a report without them).
  let older = t.columns?.older ?? columnsOf([...rows.removed, ...rows.changed.map((c) => c.old)]);
  let newer = t.columns?.newer ?? columnsOf([...rows.added, ...rows.changed.map((c) => c.new)]);
  if (!older.length) older = newer;
  if (!newer.length) newer = older;
  const key = keyColumnsOf(t.key, older.filter((c) => newer.includes(c)));
  return {
    table,
    key: t.key,
    offset,
    limit,
    counts: { added: t.added, removed: t.removed, changed: t.changed },
    olderColumns: older,
    newerColumns: newer,
    added: rows.added.map((r) => diffRow(r, newer, key)),
    removed: rows.removed.map((r) => diffRow(r, older, key)),
    changed: rows.changed.map((c) => ({ old: diffRow(c.old, older, key), new: diffRow(c.new, newer, key) })),
  };
}

/**
 * One read-only view in a webview panel: a backup's ("Open Backup") or a comparison's.
 * It owns its images (kept while it is open, removed when it closes) and speaks
 * webview/protocol.ts's inspect messages: it sends nothing until the app says ready, then
 * the whole state; rows come page by page through Requests; every incoming message is
 * checked, and one that is malformed or names a table the view does not show is refused.
 */
export abstract class InspectView implements vscode.Disposable {
  private static next = 1;
  /** Unique per extension host (for tests and logs). */
  readonly id = InspectView.next++;
  protected readonly ac = new AbortController();
  private ready = false;
  private readonly posted = new vscode.EventEmitter<InspectHostMessage>();
  /** Fires with every message posted to the webview (for tests). */
  readonly onDidPost = this.posted.event;
  private readonly disposed = new vscode.EventEmitter<void>();
  readonly onDidDispose = this.disposed.event;
  private readonly inflight = new Set<Promise<unknown>>();
  private closed = false;
  /** The state last posted to a ready app (undefined until the app said ready). */
  lastPosted: InspectState | undefined;

  constructor(
    readonly panel: vscode.WebviewPanel,
    protected images: DatabaseImage[],
    protected readonly log: vscode.LogOutputChannel,
  ) {
    const subs = [
      panel.webview.onDidReceiveMessage((m) => void this.handle(m)),
      panel.onDidChangeViewState(() => {
        // A hidden webview is torn down; it says ready again when shown.
        if (!panel.visible) this.ready = false;
      }),
    ];
    panel.onDidDispose(() => {
      subs.forEach((s) => s.dispose());
      void this.close();
    });
  }

  /** The whole state the view shows. */
  abstract get state(): InspectState;

  /** The image files the view holds open (for tests: they are gone once it closes). */
  get imagePaths(): string[] {
    return this.images.map((i) => i.path);
  }

  /** True once the panel closed (its images are being or have been removed). */
  get isClosed(): boolean {
    return this.closed;
  }

  /**
   * Handles one message as if the app had sent it: checks it, runs a Command, answers a
   * Request (the Reply is posted and also returned). A refused message is logged and
   * ignored (resolves undefined). Never rejects.
   */
  async handle(raw: unknown): Promise<ReplyMessage | undefined> {
    const parsed = parseInspectMessage(raw);
    if (!parsed.ok) {
      this.log.warn(`inspect view: ignored a message from the webview: ${parsed.reason}`);
      return undefined;
    }
    const m = parsed.message;
    if (m.kind === 'command') {
      if (m.method === 'inspect/app/ready') {
        this.ready = true;
        this.postState();
        return undefined;
      }
      try {
        await this.track(this.command(m));
      } catch (e) {
        this.log.error(`inspect view: ${m.method} failed: ${messageOf(e)}`);
      }
      return undefined;
    }
    let reply: ReplyMessage;
    try {
      reply = { kind: 'reply', id: m.id, ok: true, result: await this.track(this.request(m)) };
    } catch (e) {
      this.log.warn(`inspect view: ${m.method} failed: ${messageOf(e)}`);
      reply = { kind: 'reply', id: m.id, ok: false, error: BackupError.is(e, 'cancelled') && this.closed ? 'the view was closed' : messageOf(e) };
    }
    this.post(reply);
    return reply;
  }

  protected abstract command(m: Exclude<InspectCommand, { method: 'inspect/app/ready' }>): Promise<void>;
  protected abstract request(m: InspectRequest): Promise<InspectRequestResults[InspectRequest['method']]>;

  /** Posts the whole state when the app is ready and visible (else it gets it when it says ready). */
  protected postState(): void {
    if (!this.ready || !this.panel.visible || this.closed) return;
    const state = this.state;
    this.lastPosted = state;
    this.post({ kind: 'notification', method: 'inspect/state/didChange', params: state });
  }

  private post(m: InspectHostMessage): void {
    if (this.closed) return;
    this.posted.fire(m);
    void this.panel.webview.postMessage(m);
  }

  /** Work the view waits for before it removes its images. */
  protected track<T>(p: Promise<T>): Promise<T> {
    this.inflight.add(p);
    const done = () => this.inflight.delete(p);
    p.then(done, done);
    return p;
  }

  /** Swaps the images the view holds (a comparison made again); the old ones are removed once unused. */
  protected replaceImages(images: DatabaseImage[]): void {
    const old = this.images.filter((i) => !images.includes(i));
    this.images = images;
    for (const i of old) void i.close();
  }

  /** Stops its jobs, waits for them, then removes its images. Safe to repeat. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.ac.abort(new BackupError('cancelled', 'the view was closed'));
    await Promise.allSettled([...this.inflight]);
    await Promise.all(this.images.map((i) => i.close()));
    this.posted.dispose();
    this.disposed.fire();
    this.disposed.dispose();
  }

  dispose(): void {
    // Disposing the panel runs close() through onDidDispose.
    this.panel.dispose();
  }
}

/** "Open Backup": the backup's schema, row counts and rows, read from its image. */
export class BackupView extends InspectView {
  constructor(
    panel: vscode.WebviewPanel,
    private readonly image: DatabaseImage,
    private readonly browse: BrowseState,
    private readonly engine: EngineInstance,
    log: vscode.LogOutputChannel,
    private readonly compareCurrent: () => Promise<unknown>,
  ) {
    super(panel, [image], log);
  }

  get state(): BrowseState {
    return this.browse;
  }

  protected async command(m: Exclude<InspectCommand, { method: 'inspect/app/ready' }>): Promise<void> {
    if (m.method === 'inspect/backup/compareCurrent' && this.browse.canCompare) await this.compareCurrent();
  }

  protected async request(m: InspectRequest): Promise<InspectRequestResults[InspectRequest['method']]> {
    if (m.method !== 'inspect/table/rows') throw new Error(`${m.method} is not offered by a backup's view`);
    const t = this.browse.tables.find((x) => x.name === m.params.table);
    if (!t) throw new Error(`the backup has no table named ${m.params.table}`);
    return this.engine.imageRows(this.image, t.name, { limit: BROWSE_PAGE_ROWS, offset: m.params.offset, signal: this.ac.signal });
  }
}

/** What a comparison needs to restore a table: the backup (older side) and the live database it came from. */
interface RestoreTarget {
  backup: ChosenBackup;
  target: DbTarget;
}

/** A comparison: older backup to newer backup, or backup to the current database. */
export class CompareView extends InspectView {
  private report: DiffReport;
  private busy: string | undefined;
  private notice: CompareState['notice'];

  constructor(
    panel: vscode.WebviewPanel,
    private older: DatabaseImage,
    private newer: DatabaseImage,
    report: DiffReport,
    private readonly sides: { older: InspectSide; newer: InspectSide },
    private readonly engine: EngineInstance,
    log: vscode.LogOutputChannel,
    private readonly deps: {
      live?: string;
      restore?: RestoreTarget;
      /** Why Restore This Table is not offered, when it is not. */
      whyNoRestore?: string;
      confirm: () => Confirm;
      backups: BackupService;
    },
  ) {
    super(panel, [older, newer], log);
    this.report = report;
  }

  get state(): CompareState {
    const r = this.report;
    const offered = !!this.deps.restore && !this.deps.whyNoRestore && vscode.workspace.isTrusted;
    return {
      view: 'compare',
      older: this.sides.older,
      newer: { ...this.sides.newer, takenAt: this.sides.newer.kind === 'live' ? this.newer.takenAt.toISOString() : this.sides.newer.takenAt },
      schema: r.schema,
      tables: Object.entries(r.tables)
        .map(([name, t]) => ({ name, added: t.added, removed: t.removed, changed: t.changed, key: t.key }))
        .sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0)),
      notCompared: r.notCompared,
      pageRows: DIFF_PAGE_ROWS,
      restore: offered ? { offered } : { offered: false, why: this.deps.whyNoRestore ?? (vscode.workspace.isTrusted ? 'only a comparison with the current database restores a table' : 'Lifeboat is read-only in Restricted Mode') },
      busy: this.busy,
      notice: this.notice,
    };
  }

  /** The comparison's report now (for tests). */
  get diff(): DiffReport {
    return this.report;
  }

  protected async command(m: Exclude<InspectCommand, { method: 'inspect/app/ready' }>): Promise<void> {
    if (m.method === 'inspect/compare/refresh' && this.deps.live && !this.busy) await this.compareAgain('comparing again');
  }

  protected async request(m: InspectRequest): Promise<InspectRequestResults[InspectRequest['method']]> {
    if (m.method === 'inspect/table/rows') throw new Error('inspect/table/rows is not offered by a comparison');
    const table = m.params.table;
    if (!this.report.tables[table]) throw new Error(`no table named ${table} was compared`);
    if (m.method === 'inspect/diff/rows') {
      const older = this.older;
      const newer = this.newer;
      const r = await this.engine.diffImages(older, newer, { table, rows: true, limit: DIFF_PAGE_ROWS, offset: m.params.offset, signal: this.ac.signal });
      return diffRowsPage(r, table, m.params.offset, DIFF_PAGE_ROWS);
    }
    if (m.method === 'inspect/rows/restore') return this.restoreRows(table, m.params.rows);
    return this.restoreTable(table);
  }

  /** Snapshots the live database again and compares again; posts the new state. Throws what the engine threw. */
  private async compareAgain(why: string): Promise<void> {
    if (!this.deps.live) return;
    this.busy = why;
    this.postState();
    try {
      const img = await this.engine.openImage({ live: this.deps.live }, { signal: this.ac.signal });
      try {
        this.report = await this.engine.diffImages(this.older, img, { signal: this.ac.signal });
      } catch (e) {
        await img.close();
        throw e;
      }
      this.newer = img;
      this.replaceImages([this.older, img]);
    } finally {
      this.busy = undefined;
      this.postState();
    }
  }

  /** The foreign key check of a restore as the notice says it. */
  private static fkLine(res: { foreignKeyViolationCount: number; foreignKeyViolations: { table: string; rowid: number | null; parent: string }[] }): string {
    return res.foreignKeyViolationCount
      ? `Foreign key check: ${res.foreignKeyViolationCount} violation${res.foreignKeyViolationCount === 1 ? '' : 's'}: ${res.foreignKeyViolations
          .slice(0, 5)
          .map((v) => `${v.table} row ${v.rowid ?? '?'} has no parent in ${v.parent}`)
          .join('; ')}${res.foreignKeyViolationCount > 5 ? `; and ${res.foreignKeyViolationCount - 5} more` : ''}.`
      : 'Foreign key check: no violations.';
  }

  /**
   * "Restore Selected Rows": asks the user (naming the table, how many rows of each kind,
   * and the pre-restore backup), then has the backup service make those rows the backup's;
   * the notice says what happened and the comparison is made again.
   */
  private async restoreRows(table: string, rows: SelectedRow[]): Promise<InspectRequestResults['inspect/rows/restore']> {
    const r = this.deps.restore;
    if (!r || !this.state.restore.offered) throw new Error(`Restore Selected Rows is not offered here: ${this.state.restore.why ?? 'no live database'}`);
    if (this.busy) throw new Error(`the view is busy ${this.busy}`);
    const key = this.report.tables[table].key;
    if (!/^(rowid|primary key) \(/.test(key)) throw new Error(`rows of table ${table} cannot be restored one by one: it has no primary key (matched by ${key}); restore the whole table instead`);
    const n = (kind: SelectedRow['kind']) => rows.filter((x) => x.kind === kind).length;
    const rowsWord = (k: number) => `${k} row${k === 1 ? '' : 's'}`;
    const what = [n('changed') ? `${rowsWord(n('changed'))} changed since the backup reverted` : '', n('removed') ? `${rowsWord(n('removed'))} removed since put back` : '', n('added') ? `${rowsWord(n('added'))} added since deleted` : '']
      .filter(Boolean)
      .join(', ');
    const name = path.basename(r.target.db);
    const when = this.sides.older.created ? formatLocal(this.sides.older.created) : this.sides.older.id ?? 'the backup';
    const ok = await this.deps.confirm()(
      `Restore ${rowsWord(rows.length)} of table ${table} of ${name} from the backup of ${when}?`,
      `In table ${table} of ${r.target.db}: ${what}, in one transaction; every other row and table stays as it is, and triggers do not fire. Lifeboat first backs up the current database (a pre-restore backup), so this can be undone.`,
      'Restore Rows',
    );
    if (!ok) return { outcome: 'declined', message: `no rows of table ${table} were restored` };
    this.busy = `restoring ${rowsWord(rows.length)} of table ${table}`;
    this.notice = undefined;
    this.postState();
    let settled;
    try {
      settled = await this.deps.backups.restoreRows(r.backup, r.target, table, rows, { route: 'panel' });
    } finally {
      this.busy = undefined;
    }
    if (!settled) {
      this.postState();
      return { outcome: 'failed', message: 'Lifeboat is read-only in Restricted Mode' };
    }
    const res = settled.result;
    if (settled.outcome === 'ok' && res) {
      const done = [res.updated ? `${rowsWord(res.updated)} reverted` : '', res.inserted ? `${rowsWord(res.inserted)} put back` : '', res.deleted ? `${rowsWord(res.deleted)} deleted` : '', res.unchanged ? `${rowsWord(res.unchanged)} already as in the backup` : '']
        .filter(Boolean)
        .join(', ');
      this.notice = {
        ok: true,
        table,
        message: `Restored ${rowsWord(rows.length)} of table ${table} of ${name} from the backup: ${done}.`,
        details: [`Pre-restore backup: ${res.preRestore.id}`, CompareView.fkLine(res), ...(res.triggers ? [`${res.triggers} trigger${res.triggers === 1 ? '' : 's'} on the table did not fire.`] : [])],
      };
    } else {
      this.notice = { ok: false, table, message: settled.message.replace(/^Lifeboat: /, ''), details: [] };
    }
    await this.compareAgain('comparing again').catch((e) => {
      this.notice = { ok: false, table, message: `comparing again failed: ${messageOf(e)}`, details: [] };
      this.postState();
    });
    return { outcome: settled.outcome === 'ok' ? 'restored' : 'failed', message: this.notice.message };
  }

  private async restoreTable(table: string): Promise<InspectRequestResults['inspect/table/restore']> {
    const r = this.deps.restore;
    if (!r || !this.state.restore.offered) throw new Error(`Restore This Table is not offered here: ${this.state.restore.why ?? 'no live database'}`);
    if (this.busy) throw new Error(`the view is busy ${this.busy}`);
    const name = path.basename(r.target.db);
    const when = this.sides.older.created ? formatLocal(this.sides.older.created) : this.sides.older.id ?? 'the backup';
    const ok = await this.deps.confirm()(
      `Restore table ${table} of ${name} from the backup of ${when}?`,
      `Table ${table} of ${r.target.db} will be replaced by the backup's, in one transaction; every other table stays as it is. Lifeboat first backs up the current database (a pre-restore backup), so this can be undone.`,
      'Restore Table',
    );
    if (!ok) return { outcome: 'declined', message: `table ${table} was not restored` };
    this.busy = `restoring table ${table}`;
    this.notice = undefined;
    this.postState();
    let settled;
    try {
      settled = await this.deps.backups.restoreTable(r.backup, r.target, table, { route: 'panel' });
    } finally {
      this.busy = undefined;
    }
    if (!settled) {
      this.postState();
      return { outcome: 'failed', message: 'Lifeboat is read-only in Restricted Mode' };
    }
    const res = settled.result;
    if (settled.outcome === 'ok' && res) {
      const fk = res.foreignKeyViolationCount
        ? `Foreign key check: ${res.foreignKeyViolationCount} violation${res.foreignKeyViolationCount === 1 ? '' : 's'}: ${res.foreignKeyViolations
            .slice(0, 5)
            .map((v) => `${v.table} row ${v.rowid ?? '?'} has no parent in ${v.parent}`)
            .join('; ')}${res.foreignKeyViolationCount > 5 ? `; and ${res.foreignKeyViolationCount - 5} more` : ''}.`
        : 'Foreign key check: no violations.';
      this.notice = {
        ok: true,
        table,
        message: `Restored table ${table} of ${name}: it holds the backup's ${res.rows} row${res.rows === 1 ? '' : 's'} now (it had ${res.before}).`,
        details: [`Pre-restore backup: ${res.preRestore.id}`, fk, ...(res.triggers ? [`${res.triggers} trigger${res.triggers === 1 ? '' : 's'} on the table did not fire.`] : [])],
      };
    } else {
      this.notice = { ok: false, table, message: settled.message.replace(/^Lifeboat: /, ''), details: [] };
    }
    // The comparison shows the database as it is after the restore.
    await this.compareAgain('comparing again').catch((e) => {
      this.notice = { ok: false, table, message: `comparing again failed: ${messageOf(e)}`, details: [] };
      this.postState();
    });
    return { outcome: settled.outcome === 'ok' ? 'restored' : 'failed', message: this.notice.message };
  }
}

/**
 * Opens and owns the read-only views of backups and comparisons ("Open Backup", "Compare
 * with Current Database", "Compare Two Backups"). The images are made, and the first
 * reading done, under a progress notification with Cancel before a view opens, so that a
 * failure (a damaged backup, a runtime without node:sqlite) is one error message and no
 * empty view. Every SQLite read runs in the engine's worker threads.
 */
export class InspectHost implements vscode.Disposable {
  private readonly views = new Set<InspectView>();
  private readonly opened = new vscode.EventEmitter<InspectView>();
  /** Fires when a view opened (for tests). */
  readonly onDidOpen = this.opened.event;
  /**
   * How "Restore This Table" asks the user: a modal warning. Replaceable by tests, since
   * VS Code refuses modal dialogs to an extension under test.
   */
  confirm: Confirm = modalConfirm;

  constructor(
    private readonly extensionUri: vscode.Uri,
    private readonly core: CoreHost,
    private readonly folders: Folders,
    private readonly backups: BackupService,
    private readonly ops: Operations,
    private readonly log: vscode.LogOutputChannel,
  ) {}

  /** The views open now, oldest first. */
  get open(): readonly InspectView[] {
    return [...this.views];
  }

  /** "Open Backup": a view of `chosen`'s schema, row counts and rows. Resolves undefined when it could not open (shown once). */
  async openBackup(chosen: ChosenBackup): Promise<BackupView | undefined> {
    const name = backupName(chosen.archive);
    const engine = await this.engineFor(`opening ${name}`);
    if (!engine) return undefined;
    const opened = await this.work(`opening ${name}`, async (signal, report) => {
      const image = await engine.openImage(chosen.archive, { signal, onProgress: report });
      try {
        report({ phase: 'reading the schema', done: 0, total: 0 });
        return { image, browse: await engine.browseImage(image, { signal }) };
      } catch (e) {
        await image.close();
        throw e;
      }
    });
    if (!opened) return undefined;
    const manifest = opened.image.manifest!;
    const target = await this.targetOf(chosen, manifest);
    const side = this.side(manifest, target);
    const exists = await fs.stat(side.db).then(
      (s) => s.isFile(),
      () => false,
    );
    const state: BrowseState = {
      view: 'browse',
      backup: side,
      objects: opened.browse.objects,
      tables: opened.browse.tables,
      pageSize: opened.browse.pageSize,
      pageCount: opened.browse.pageCount,
      pageRows: BROWSE_PAGE_ROWS,
      canCompare: exists,
    };
    const panel = this.panel(`Backup: ${side.dbLabel}, ${formatLocal(manifest.created)}`);
    const view = new BackupView(panel, opened.image, state, engine, this.log, () => this.compareWithCurrent({ ...chosen, target: target ?? chosen.target }));
    return this.adopt(view);
  }

  /**
   * "Compare with Current Database": what changed from `chosen` to its database as it is
   * now (snapshotted; "Refresh" snapshots again), with "Restore This Table" when the
   * database is one this workspace protects. Resolves undefined when it could not open.
   */
  async compareWithCurrent(chosen: ChosenBackup): Promise<CompareView | undefined> {
    const name = backupName(chosen.archive);
    const engine = await this.engineFor(`comparing ${name} with the current database`);
    if (!engine) return undefined;
    let manifest: Manifest;
    try {
      manifest = chosen.record?.manifest ?? (await engine.manifestOf(chosen.archive));
    } catch (e) {
      this.ops.failure(`Lifeboat: ${chosen.archive} is not a Lifeboat backup: ${messageOf(e)}`);
      return undefined;
    }
    const target = await this.targetOf(chosen, manifest);
    const live = target?.db ?? manifest.source.path;
    const made = await this.work(`comparing ${name} with the current database`, async (signal, report) => {
      // A repository backup's image takes the pages the live database still holds unchanged.
      const older = await engine.openImage(chosen.archive, { signal, onProgress: report, seedFrom: live });
      let newer: DatabaseImage | undefined;
      try {
        report({ phase: 'taking a consistent snapshot', done: 0, total: 0 });
        newer = await engine.openImage({ live }, { signal });
        report({ phase: 'comparing', done: 0, total: 0 });
        return { older, newer, report: await engine.diffImages(older, newer, { signal }) };
      } catch (e) {
        await Promise.all([older.close(), newer?.close()]);
        throw e;
      }
    });
    if (!made) return undefined;
    const older = this.side(made.older.manifest!, target);
    const newer: InspectSide = { kind: 'live', db: live, dbLabel: older.dbLabel, takenAt: made.newer.takenAt.toISOString() };
    const panel = this.panel(`Compare: ${older.dbLabel}, backup of ${formatLocal(manifest.created)} ↔ current`);
    const view = new CompareView(panel, made.older, made.newer, made.report, { older, newer }, engine, this.log, {
      live,
      restore: target?.state ? { backup: { ...chosen, target }, target } : undefined,
      whyNoRestore: target?.state ? undefined : `${live} is not a database Lifeboat protects in this workspace`,
      confirm: () => this.confirm,
      backups: this.backups,
    });
    return this.adopt(view);
  }

  /** "Compare Two Backups": what changed from the older of `a` and `b` to the newer. Resolves undefined when it could not open. */
  async compareBackups(a: ChosenBackup, b: ChosenBackup): Promise<CompareView | undefined> {
    const engine = await this.engineFor('comparing two backups');
    if (!engine) return undefined;
    const made = await this.work(`comparing ${backupName(a.archive)} and ${backupName(b.archive)}`, async (signal, report) => {
      const x = await engine.openImage(a.archive, { signal, onProgress: report });
      let y: DatabaseImage | undefined;
      try {
        y = await engine.openImage(b.archive, { signal, onProgress: report });
        // Older first, whichever order they were picked in.
        const [older, newer] = Date.parse(x.manifest!.created) <= Date.parse(y.manifest!.created) ? [x, y] : [y, x];
        report({ phase: 'comparing', done: 0, total: 0 });
        return { older, newer, report: await engine.diffImages(older, newer, { signal }) };
      } catch (e) {
        await Promise.all([x.close(), y?.close()]);
        throw e;
      }
    });
    if (!made) return undefined;
    const older = this.side(made.older.manifest!, await this.targetOf(a, made.older.manifest!));
    const newer = this.side(made.newer.manifest!, await this.targetOf(b, made.newer.manifest!));
    const panel = this.panel(`Compare: ${older.dbLabel}, ${formatLocal(older.created!)} ↔ ${formatLocal(newer.created!)}`);
    const view = new CompareView(panel, made.older, made.newer, made.report, { older, newer }, engine, this.log, {
      whyNoRestore: 'only a comparison with the current database restores a table',
      confirm: () => this.confirm,
      backups: this.backups,
    });
    return this.adopt(view);
  }

  /** The engine, or undefined (after one clear message) where this runtime cannot look inside backups. */
  private async engineFor(what: string): Promise<EngineInstance | undefined> {
    try {
      const { engine } = await this.core.get();
      const why = engine.inspectUnavailable();
      if (why) {
        this.ops.failure(`Lifeboat: ${what} failed: ${why}`);
        return undefined;
      }
      return engine;
    } catch (e) {
      this.ops.failure(`Lifeboat: ${what} failed: ${messageOf(e)}`);
      return undefined;
    }
  }

  /** Runs `work` under a progress notification with Cancel; a failure is shown once and resolves undefined. */
  private async work<T>(what: string, work: RunWork<T>): Promise<T | undefined> {
    try {
      return await this.ops.withProgress(`Lifeboat: ${what}`, work);
    } catch (e) {
      if (BackupError.is(e, 'cancelled')) {
        void vscode.window.showInformationMessage(`Lifeboat: ${what} was cancelled.`);
        return undefined;
      }
      this.ops.failure(`Lifeboat: ${what} failed: ${messageOf(e)}`);
      return undefined;
    }
  }

  /** The protected database a backup belongs to, as the restore finds it. */
  private async targetOf(chosen: ChosenBackup, manifest: Manifest): Promise<DbTarget | undefined> {
    if (chosen.target && chosen.target.db === manifest.source.path) return chosen.target;
    const owner = await this.folders.folderOfDatabase(manifest.source.path);
    return owner ? { state: owner, db: manifest.source.path } : undefined;
  }

  private side(manifest: Manifest, target: DbTarget | undefined): InspectSide {
    const db = manifest.source.path;
    return {
      kind: 'backup',
      id: manifest.id,
      created: manifest.created,
      backupKind: manifest.kind,
      db,
      dbLabel: target ? relativeDb(target.state.folder, db) : path.basename(db),
      takenAt: manifest.created,
    };
  }

  private panel(title: string): vscode.WebviewPanel {
    const dist = vscode.Uri.joinPath(this.extensionUri, 'dist');
    const panel = vscode.window.createWebviewPanel('lifeboat.inspect', title, vscode.ViewColumn.Active, { enableScripts: true, localResourceRoots: [dist] });
    panel.iconPath = vscode.Uri.joinPath(this.extensionUri, 'media', 'icon.png');
    panel.webview.html = appHtml(panel.webview, this.extensionUri, title, 'inspect');
    return panel;
  }

  private adopt<V extends InspectView>(view: V): V {
    this.views.add(view);
    view.onDidDispose(() => this.views.delete(view));
    this.log.info(`${view instanceof BackupView ? COMMANDS.openBackup.title : 'Compare'}: opened view ${view.id} (${view.imagePaths.length} image${view.imagePaths.length === 1 ? '' : 's'})`);
    this.opened.fire(view);
    return view;
  }

  dispose(): void {
    for (const v of this.views) v.dispose();
    this.views.clear();
    this.opened.dispose();
  }
}

/**
 * Looking inside backups: the difference between a backup and another backup or a live
 * database, and the restore of one table. Both work on images in a private temporary
 * folder (a backup's image rebuilt or extracted and checked against its SHA-256; a live
 * database snapshotted as a backup would, or, for a diff, read where it lies inside one
 * read transaction: liveSide.ts), removed afterwards: nothing is restored into the
 * workspace to look at it, and SQLite itself (in its worker thread) does the work.
 */
import { promises as fs } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { BackupResult, BackupOptions } from '../backup/backup';
import type { Catalog } from '../catalog/catalog';
import type { Clock, Logger, ProgressListener } from '../context';
import type { Settings } from '../config';
import { BackupError, fsError } from '../errors';
import { canonicalPath } from '../fsutil';
import type { BackupFormat } from '../format/format';
import type { BackupRecord, Manifest } from '../model';
import type { KeyedQueue } from '../schedule/queue';
import { runSqliteJob } from '../sqlite/client';
import { withSqliteLock } from '../sqlite/liveGate';
import { snapshotDatabase } from '../snapshot/liveSnapshot';
import type { BrowseResult, RowsPage } from './browseJob';
import type { DiffOptions, DiffReport } from './diffSql';
import { readsLiveDirectly } from './liveSide';
import { seedImage } from './seedImage';
import type { DiffJob, TableRestoreResult } from './inspectJob';
import type { RowKeySpec, RowsRestoreResult } from './rowsRestoreJob';

/** A backup as the engine located it. */
export interface LocatedBackup {
  catalog: Catalog;
  object: string;
  format: BackupFormat;
}

/** One side of a comparison: a backup, or a live database (snapshotted first). */
export type DiffSide = { backup: LocatedBackup } | { live: string };

export interface InspectDeps {
  clock: Clock;
  logger: Logger;
  queue: KeyedQueue;
  /** The pre-restore backup of the table restore's target, without rotation. */
  preRestoreBackup(db: string, catalog: Catalog, o: Omit<BackupOptions, 'dir' | 'store'>): Promise<BackupResult>;
}

const BUSY_TIMEOUT_MS = 10_000;

async function withScratch<T>(fn: (dir: string) => Promise<T>): Promise<T> {
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'lifeboat-inspect-'));
  try {
    return await fn(dir);
  } finally {
    await fs.rm(dir, { recursive: true, force: true }).catch(() => undefined);
  }
}

/**
 * An image of one side in `dir`; for a backup, its manifest too. A v2 backup compared with
 * the live database `seedFrom` takes the pages that database still holds unchanged from
 * it (each checked against the backup's page hash) and decodes only the rest.
 */
async function imageOf(deps: InspectDeps, side: DiffSide, dir: string, name: string, o: { signal?: AbortSignal; onProgress?: ProgressListener }, seedFrom?: string): Promise<{ path: string; manifest?: Manifest }> {
  const out = path.join(dir, `${name}.db`);
  if ('live' in side) {
    await snapshotDatabase(side.live, out, { signal: o.signal, clock: deps.clock, onProgress: o.onProgress, fsync: false });
    return { path: out };
  }
  const { catalog, object, format } = side.backup;
  if (seedFrom !== undefined && format.label === 'repository') {
    const seeded = await seedImage(catalog.store, object, seedFrom, out, o);
    if (seeded) return { path: out, manifest: seeded.manifest };
  }
  const { manifest } = await format.extractImage(catalog.store, object, out, { signal: o.signal, onProgress: o.onProgress });
  return { path: out, manifest };
}

/**
 * What changed from `older` to `newer` (see diffSql.ts for how rows are matched). Reads
 * only. A live WAL database is read in place inside one read transaction (its writers go
 * on; the counts are those of one committed state); other live databases are snapshotted.
 * A v2 backup compared with a live database is rebuilt from the live file's unchanged
 * pages (seedImage.ts). BackupError: 'usage' for a table in neither database; 'busy' when
 * no read lock comes within 10 s; as extractImage, seedImage and snapshotDatabase for the
 * sides; 'io' where the runtime has no node:sqlite.
 */
export async function diffSides(deps: InspectDeps, older: DiffSide, newer: DiffSide, o: DiffOptions & { signal?: AbortSignal; onProgress?: ProgressListener } = {}): Promise<DiffReport> {
  return withScratch(async (dir) => {
    // A backup against a live database: the live one read where it lies when it can be
    // (liveSide.ts), and the backup's image seeded from it.
    const liveOf = (s: DiffSide) => ('live' in s ? path.resolve(s.live) : undefined);
    const liveSide: 'older' | 'newer' | undefined = liveOf(older) !== undefined ? (liveOf(newer) !== undefined ? undefined : 'older') : liveOf(newer) !== undefined ? 'newer' : undefined;
    const live = liveSide && liveOf(liveSide === 'older' ? older : newer)!;
    const direct = live !== undefined && (await readsLiveDirectly(live));
    const sideOf = (s: DiffSide, name: 'older' | 'newer') => (direct && name === liveSide ? Promise.resolve({ path: live }) : imageOf(deps, s, dir, name, o, live));
    const a = await sideOf(older, 'older');
    const b = await sideOf(newer, 'newer');
    o.onProgress?.({ phase: 'compare', done: 0, total: 0 });
    const { table, rows, limit, offset } = o;
    const job: DiffJob = { op: 'diff', older: a.path, newer: b.path, options: { table, rows, limit, offset }, ...(direct ? { live: liveSide, busyTimeoutMs: BUSY_TIMEOUT_MS } : {}) };
    const run = () => runSqliteJob<DiffReport>(job, { signal: o.signal, label: 'diff' });
    // While the job holds its read lock nothing else in this process may open and close the live files (liveGate.ts).
    return direct ? withSqliteLock(live, run) : run();
  });
}

/**
 * A private image of one side (a backup's database rebuilt or extracted and checked, or a
 * snapshot of a live database) in a temporary folder of its own, kept until `close`:
 * a view that reads it page by page does not rebuild it per page.
 */
export interface DatabaseImage {
  /** The image file; nothing writes it (jobs open it read-only and immutable). */
  readonly path: string;
  /** The backup's manifest; undefined for a live database's snapshot. */
  readonly manifest?: Manifest;
  /** When the image was taken (a live snapshot) or the backup was made. */
  readonly takenAt: Date;
  /** Removes the image and its folder. Safe to repeat; never rejects. */
  close(): Promise<void>;
}

/**
 * Makes a DatabaseImage of `side`. BackupError as extractImage (a backup: 'badArchive',
 * 'verifyFailed', ...) and snapshotDatabase (a live database: 'notFound', 'busy', ...);
 * nothing is left behind when it throws.
 */
export async function openImage(deps: InspectDeps, side: DiffSide, o: { signal?: AbortSignal; onProgress?: ProgressListener; seedFrom?: string } = {}): Promise<DatabaseImage> {
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'lifeboat-inspect-'));
  const remove = () => fs.rm(dir, { recursive: true, force: true }).catch(() => undefined);
  try {
    const img = await imageOf(deps, side, dir, 'image', o, o.seedFrom);
    let closing: Promise<void> | undefined;
    return {
      path: img.path,
      manifest: img.manifest,
      takenAt: img.manifest ? new Date(img.manifest.created) : deps.clock.now(),
      close: () => (closing ??= remove()),
    };
  } catch (e) {
    await remove();
    throw e;
  }
}

/** The schema of an image and the row count of each table, read by SQLite in its worker. BackupError 'io' where the runtime has no node:sqlite. */
export function browseImage(image: DatabaseImage, o: { signal?: AbortSignal } = {}): Promise<BrowseResult> {
  return runSqliteJob<BrowseResult>({ op: 'browse', imagePath: image.path }, { signal: o.signal, label: image.manifest?.id ?? image.path });
}

/** One page of one table of an image (see runRowsJob). BackupError 'usage' for an unknown table. */
export function imageRows(image: DatabaseImage, table: string, o: { limit: number; offset: number; signal?: AbortSignal }): Promise<RowsPage> {
  return runSqliteJob<RowsPage>({ op: 'rows', imagePath: image.path, table, limit: o.limit, offset: o.offset }, { signal: o.signal, label: image.manifest?.id ?? image.path });
}

/** The diff of two open images (as diffSides, without making them again): reads only. */
export function diffImages(older: DatabaseImage, newer: DatabaseImage, o: DiffOptions & { signal?: AbortSignal } = {}): Promise<DiffReport> {
  const { table, rows, limit, offset } = o;
  return runSqliteJob<DiffReport>({ op: 'diff', older: older.path, newer: newer.path, options: { table, rows, limit, offset } }, { signal: o.signal, label: 'diff' });
}

export interface TableRestoreOptions {
  table: string;
  /** The database to restore the table into; default the backup's source. */
  to?: string;
  settings: Settings;
  signal?: AbortSignal;
  onProgress?: ProgressListener;
}

export interface TableRestoreOutcome extends TableRestoreResult {
  target: string;
  table: string;
  manifest: Manifest;
  preRestore: BackupRecord;
}

/**
 * Replaces one table of a live database with the backup's, through SQLite in one
 * transaction (the app sees it at commit), after a `pre-restore` backup of the database
 * into the backup's store; every other table stays as it was. Runs in the target's queue.
 * Refused, changing nothing, when the table is missing or defined differently (saying
 * what differs), when the target is missing, or when the pre-restore backup fails.
 */
export async function restoreTable(deps: InspectDeps, backup: LocatedBackup, o: TableRestoreOptions): Promise<TableRestoreOutcome> {
  const manifest0 = await backup.format.readManifest(backup.catalog.store, backup.object);
  const given = path.resolve(o.to ?? manifest0.source.path);
  try {
    const st = await fs.stat(given);
    if (!st.isFile()) throw new BackupError('usage', `${given}: not a database file`, { path: given });
  } catch (e) {
    throw fsError(e, given, 'restoring a table');
  }
  // The queue's key, as backups of it use.
  const target = await canonicalPath(given);
  return withScratch(async (dir) => {
    const image = await imageOf(deps, { backup }, dir, 'backup', o);
    return deps.queue.run(target, async () => {
      // The backup's table must be there and defined as the live one is before anything is written.
      const job = { op: 'restoreTable', imagePath: image.path, targetPath: target, table: o.table, busyTimeoutMs: BUSY_TIMEOUT_MS } as const;
      await runSqliteJob<TableRestoreResult>({ ...job, checkOnly: true }, { signal: o.signal, label: target });
      o.onProgress?.({ phase: 'pre-restore backup', done: 0, total: 0 });
      const pre = await deps.preRestoreBackup(target, backup.catalog, { kind: 'pre-restore', settings: o.settings, trigger: `before restoring table ${o.table} of ${manifest0.id}`, signal: o.signal, rotate: false });
      if (!pre.verified) throw new BackupError('verifyFailed', `${target}: the pre-restore backup did not verify; table ${o.table} was not restored`, { path: target });
      o.onProgress?.({ phase: 'restore table', done: 0, total: 0 });
      const r = await runSqliteJob<TableRestoreResult>(job, { signal: o.signal, label: target });
      await backup.catalog.record({
        op: 'restore.table',
        level: r.foreignKeyViolationCount ? 'warn' : 'info',
        db: target,
        backup: manifest0.id,
        message: `restored table ${o.table} of ${target} from ${manifest0.id}: ${r.before} rows replaced by ${r.rows}${r.foreignKeyViolationCount ? `; ${r.foreignKeyViolationCount} foreign key violation(s) now` : ''}`,
        detail: { table: o.table, rows: r.rows, before: r.before, foreignKeyViolations: r.foreignKeyViolationCount, preRestore: pre.record.id },
      });
      return { ...r, target, table: o.table, manifest: image.manifest ?? manifest0, preRestore: pre.record };
    });
  });
}

export interface RowsRestoreOptions {
  table: string;
  /** The selected rows: keys or rows (see RowKeySpec); at least one. */
  keys: RowKeySpec[];
  /** Delete selected rows the backup does not have (added since); without it selecting one is refused. */
  deleteAdded?: boolean;
  /** The database to restore the rows into; default the backup's source. */
  to?: string;
  settings: Settings;
  signal?: AbortSignal;
  onProgress?: ProgressListener;
}

export interface RowsRestoreOutcome extends RowsRestoreResult {
  target: string;
  table: string;
  manifest: Manifest;
  preRestore: BackupRecord;
}

/**
 * Makes the selected rows of one table of a live database the backup's (see
 * runRowsRestoreJob: UPDATE a row both have, INSERT one only the backup has, DELETE one
 * only the live table has when `deleteAdded`), through SQLite in one transaction (the app
 * sees it at commit), after a `pre-restore` backup of the database into the backup's
 * store; every other row and table stays as it was. Runs in the target's queue. Refused,
 * changing nothing and making no pre-restore backup, when the table is missing or defined
 * differently (saying what differs), has no primary key, or a key matches nothing (naming
 * it); as restoreTable for the target and the pre-restore backup.
 */
export async function restoreRows(deps: InspectDeps, backup: LocatedBackup, o: RowsRestoreOptions): Promise<RowsRestoreOutcome> {
  const manifest0 = await backup.format.readManifest(backup.catalog.store, backup.object);
  const given = path.resolve(o.to ?? manifest0.source.path);
  try {
    const st = await fs.stat(given);
    if (!st.isFile()) throw new BackupError('usage', `${given}: not a database file`, { path: given });
  } catch (e) {
    throw fsError(e, given, 'restoring rows');
  }
  if (!o.keys.length) throw new BackupError('usage', `no rows of table ${o.table} were selected; nothing was changed`);
  const target = await canonicalPath(given);
  return withScratch(async (dir) => {
    const image = await imageOf(deps, { backup }, dir, 'backup', o);
    return deps.queue.run(target, async () => {
      const job = { op: 'restoreRows', imagePath: image.path, targetPath: target, table: o.table, keys: o.keys, deleteAdded: !!o.deleteAdded, busyTimeoutMs: BUSY_TIMEOUT_MS } as const;
      const planned = await runSqliteJob<RowsRestoreResult>({ ...job, checkOnly: true }, { signal: o.signal, label: target });
      const n = planned.inserted + planned.updated + planned.unchanged + planned.deleted;
      o.onProgress?.({ phase: 'pre-restore backup', done: 0, total: 0 });
      const pre = await deps.preRestoreBackup(target, backup.catalog, { kind: 'pre-restore', settings: o.settings, trigger: `before restoring ${n} row(s) of table ${o.table} of ${manifest0.id}`, signal: o.signal, rotate: false });
      if (!pre.verified) throw new BackupError('verifyFailed', `${target}: the pre-restore backup did not verify; no rows of table ${o.table} were restored`, { path: target });
      o.onProgress?.({ phase: 'restore rows', done: 0, total: 0 });
      const r = await runSqliteJob<RowsRestoreResult>(job, { signal: o.signal, label: target });
      await backup.catalog.record({
        op: 'restore.table',
        level: r.foreignKeyViolationCount ? 'warn' : 'info',
        db: target,
        backup: manifest0.id,
        message: `restored ${n} row(s) of table ${o.table} of ${target} from ${manifest0.id}: ${r.inserted} inserted, ${r.updated} updated, ${r.unchanged} unchanged, ${r.deleted} deleted${r.foreignKeyViolationCount ? `; ${r.foreignKeyViolationCount} foreign key violation(s) now` : ''}`,
        detail: { table: o.table, selected: n, inserted: r.inserted, updated: r.updated, unchanged: r.unchanged, deleted: r.deleted, foreignKeyViolations: r.foreignKeyViolationCount, preRestore: pre.record.id },
      });
      return { ...r, target, table: o.table, manifest: image.manifest ?? manifest0, preRestore: pre.record };
    });
  });
}

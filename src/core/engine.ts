import path from 'node:path';
import { LIFEBOAT_VERSION, runBackup, type BackupOptions, type BackupResult } from './backup/backup';
import { Catalog } from './catalog/catalog';
import type { Settings } from './config';
import { nullLogger, systemClock, type Clock, type Logger, type ProgressListener } from './context';
import { BackupError } from './errors';
import type { BackupFormat } from './format/format';
import { formatNamed, formatOfObject } from './format/formats';
import { repoV2 } from './format/repoV2';
import { SNAPSHOT_FOLDER } from './format/repo/snapshotManifest';
import { zipV1 } from './format/zipV1';
import { canonicalPath } from './fsutil';
import type { DiffOptions, DiffReport } from './inspect/diffSql';
import { inspectUnavailable, type BrowseResult, type RowsPage } from './inspect/browseJob';
import { browseImage, diffImages, diffSides, imageRows, openImage, restoreRows, restoreTable, type DatabaseImage, type DiffSide, type InspectDeps, type RowsRestoreOptions, type RowsRestoreOutcome, type TableRestoreOptions, type TableRestoreOutcome } from './inspect/inspect';
import { isVerified, type BackupRecord, type Manifest } from './model';
import { exportBackup, type ExportOptions, type ExportResult } from './restore/export';
import { restoreBackup, type RestoreOptions, type RestoreResult } from './restore/restore';
import type { RotationPlan } from './retention/plan';
import { deleteBackup, rotateStore } from './rotate/rotate';
import { sameSourceState } from './schedule/due';
import { KeyedQueue } from './schedule/queue';
import { readSourceState } from './sqliteFile';
import { LocalDirStore } from './store/localDirStore';
import { openRemote, type RemoteSecrets, type RemoteSettings } from './store/remote/openRemote';
import type { PreparedKey, RemoteStore } from './store/remote/remoteStore';
import type { BackupStore } from './store/store';
import { pushBackups, type PushOptions, type PushResult } from './offsite/push';
import { offsiteRestoreTestIn, restoreTest, verifyBackup, type VerifyResult } from './verify/backupCheck';
import type { OffsiteTestOutcome } from './verify/offsiteSource';

export { LIFEBOAT_VERSION };
export type { BackupOptions, BackupResult, BrowseResult, DatabaseImage, DiffOptions, DiffReport, ExportOptions, ExportResult, RestoreOptions, RestoreResult, RowsPage, RowsRestoreOptions, RowsRestoreOutcome, TableRestoreOptions, TableRestoreOutcome, VerifyResult };

/** A backup: its local path (a zip, or a snapshot manifest in a repository folder), or an object in a store. */
export type BackupRef = string | { store: BackupStore; object: string };

/** What the engine needs from its host: one object instead of globals. */
export interface EngineContext {
  clock?: Clock;
  logger?: Logger;
}

/**
 * The one entry point both front ends call: a thin facade over the jobs (backup/,
 * restore/, verify/, rotate/), each given a narrow dependency object. It turns what the
 * front ends name (a database path, a backup directory, a backup's path or id) into
 * stores and objects, and keeps one queue per database so that its backups and restores
 * never overlap.
 */
export class Engine {
  readonly clock: Clock;
  readonly logger: Logger;
  readonly queue = new KeyedQueue();

  constructor(ctx: EngineContext = {}) {
    this.clock = ctx.clock ?? systemClock;
    this.logger = ctx.logger ?? nullLogger;
  }

  /** The catalog of a backup directory (a local folder store). */
  catalog(dir: string): Catalog {
    return new Catalog(dir, { clock: this.clock });
  }

  /**
   * Backs up `dbPath` into `o.store` (or the folder `o.dir`): see `runBackup`. Then,
   * when the backup verified and `o.rotate` is not false, rotates the store; rotation
   * failing (or refusing) never turns a good backup into a failed one.
   */
  async backup(dbPath: string, o: BackupOptions): Promise<BackupResult> {
    // One database seen through two paths (a symlink) is one database: one queue, one name.
    const db = await canonicalPath(dbPath);
    const catalog = o.store ? new Catalog(o.store, { clock: this.clock }) : this.catalog(o.dir);
    return this.queue.run(db, async () => {
      const result = await runBackup(this, db, catalog, o);
      if (result.verified && o.rotate !== false) {
        await rotateStore(this, catalog, o.settings).catch(async (e) => {
          this.logger.warn(`rotation after the backup failed: ${(e as Error).message}`, { db, phase: 'backup' });
          await catalog.record({ op: 'rotate.refused', level: 'warn', db, message: `rotation after the backup failed: ${(e as Error).message}` });
        });
      }
      return result;
    });
  }

  /**
   * Verifies a backup fully: every byte of it (structure, checksums, seal), then its image
   * (integrity, foreign keys, schema and row counts against the manifest, probe). Damage
   * is reported in the result (ok false), never thrown. The result is recorded on the
   * backup and in its store's log where that can be written.
   */
  async verifyArchive(archivePath: BackupRef, settings: Settings, o: { signal?: AbortSignal; onProgress?: ProgressListener; deep?: boolean } = {}): Promise<VerifyResult> {
    const { catalog, object, format } = this.locate(archivePath);
    return verifyBackup(this, catalog, format, object, settings, o);
  }

  /**
   * The rolling restore test of a backup directory: see `restoreTest`. Now and then it
   * takes the backup from the directory's off-site store (`o.offsite`, else the one a front
   * end registered with `provideOffsiteRestoreSource`); the result's `from` names it.
   * Resolves undefined when it has no backup. Never deletes anything.
   */
  restoreTest(dir: string, settings: Settings, o: Parameters<typeof restoreTest>[4] = {}): Promise<VerifyResult | undefined> {
    return restoreTest(this, this.catalog(dir), (r) => formatNamed(r.format), settings, o);
  }

  /**
   * The off-site half of the rolling restore test on an open off-site store, when its
   * newest restore test is at least `o.afterMs` old: see `offsiteRestoreTestIn` (the
   * off-site worker runs it; the local bookkeeping stays with `restoreTest`). Does not
   * close the store.
   */
  offsiteRestoreTest(store: BackupStore, settings: Settings, o: { afterMs: number; signal?: AbortSignal; onProgress?: ProgressListener }): Promise<OffsiteTestOutcome> {
    return offsiteRestoreTestIn(this, store, (r) => formatNamed(r.format), settings, o);
  }

  /**
   * True when `db` changed after its newest verified backup in `dir` (or has none):
   * the test for a shutdown backup, which is skipped otherwise.
   */
  async changedSinceLastBackup(db: string, dir: string): Promise<boolean> {
    const d = await canonicalPath(db);
    const { records } = await this.list(dir, d);
    const newest = records.find((r) => isVerified(r));
    if (!newest) return true;
    const st = await readSourceState(d);
    const prev = newest.manifest.source.state;
    // Any difference in the fingerprint is a change: mtimes are too coarse to order a write
    // that landed right after a fast snapshot.
    if (prev) return !sameSourceState(prev, st);
    return Math.max(st.mtimeMs, st.walMtimeMs || 0) > Date.parse(newest.manifest.created);
  }
  /**
   * The backup before a migration, shared by `lifeboat run` and the VS Code task hook:
   * a `migration` backup through the database's queue. Throws BackupError
   * 'verifyFailed' when the backup did not verify, so that the operation does not go.
   */
  async backupBeforeMigration(db: string, o: Omit<BackupOptions, 'kind'>): Promise<BackupResult> {
    const res = await this.backup(db, { ...o, kind: 'migration' });
    if (res.sourceDamaged) {
      throw new BackupError('verifyFailed', `${db} is damaged (its backup failed verification); the migration was not run`, { path: db });
    }
    if (!res.verified) {
      throw new BackupError(
        'tooLarge',
        `the backup of ${db} before the migration was not verified (${res.record.manifest.verification.skippedReason ?? 'verification skipped'}); the migration was not run`,
        { path: db },
      );
    }
    return res;
  }
  /**
   * Restores a backup over its original database or `o.to` (see `restoreBackup`): the
   * image is extracted and verified first, a `pre-restore` backup of the current file is
   * taken, and the file is replaced only when no other process has it open; with `force`
   * and node:sqlite's `backup()`, SQLite writes the image into the live database instead.
   */
  restore(archivePath: BackupRef, o: RestoreOptions): Promise<RestoreResult> {
    const { catalog, object, format } = this.locate(archivePath);
    return restoreBackup(
      {
        clock: this.clock,
        queue: this.queue,
        preRestoreBackup: (db, preCatalog, bo) => runBackup(this, db, preCatalog, { ...bo, dir: preCatalog.dir, store: preCatalog.store }),
      },
      catalog,
      format,
      object,
      o,
    );
  }

  /**
   * Writes a backup out as a file that needs no Lifeboat: the database itself, or a v1
   * `.zip` archive when `o.to` ends in .zip (see `exportBackup`). Logged in the store.
   */
  async exportBackup(archivePath: BackupRef, o: ExportOptions): Promise<ExportResult> {
    const { catalog, object, format } = this.locate(archivePath);
    const res = await exportBackup(catalog, format, object, o);
    await catalog.record({ op: 'export', level: 'info', db: res.manifest.source.path, backup: res.manifest.id, message: `exported ${res.manifest.id} to ${res.path} (${res.as})` });
    return res;
  }

  /**
   * What changed from backup `older` to backup `newer`, or to the live database
   * `{ live: path }` (read in place in one read transaction when it is a WAL database with
   * its files, else snapshotted first): schema objects added, removed and changed, and
   * per table the rows added, removed and changed (see inspect/diffSql.ts).
   */
  diff(older: string, newer: string | { live: string }, o: DiffOptions & { signal?: AbortSignal; onProgress?: ProgressListener } = {}): Promise<DiffReport> {
    const side = (s: string | { live: string }): DiffSide => (typeof s === 'string' ? { backup: this.locate(s) } : { live: s.live });
    return diffSides(this.inspectDeps(), side(older), side(newer), o);
  }

  /** Replaces one table of the live database (or `o.to`) with the backup's, through SQLite, after a pre-restore backup: see `restoreTable`. */
  restoreTable(backupPath: string, o: TableRestoreOptions): Promise<TableRestoreOutcome> {
    return restoreTable(this.inspectDeps(), this.locate(backupPath), o);
  }

  /** Makes the selected rows of one table of the live database (or `o.to`) the backup's, through SQLite, after a pre-restore backup: see `restoreRows`. */
  restoreRows(backupPath: string, o: RowsRestoreOptions): Promise<RowsRestoreOutcome> {
    return restoreRows(this.inspectDeps(), this.locate(backupPath), o);
  }

  /** Why this runtime cannot look inside backups (no node:sqlite), or undefined when it can. Never throws. */
  inspectUnavailable(): string | undefined {
    return inspectUnavailable();
  }

  /**
   * A private image of a backup, or of the live database `{ live: path }` (snapshotted),
   * kept until its `close()`: see `openImage`. `seedFrom`: a live database whose unchanged
   * pages a repository backup's image may take (each checked against its page hash).
   */
  openImage(side: string | { live: string }, o: { signal?: AbortSignal; onProgress?: ProgressListener; seedFrom?: string } = {}): Promise<DatabaseImage> {
    return openImage(this.inspectDeps(), typeof side === 'string' ? { backup: this.locate(side) } : { live: side.live }, o);
  }

  /** An image's schema and per-table row counts: see `browseImage`. */
  browseImage(image: DatabaseImage, o: { signal?: AbortSignal } = {}): Promise<BrowseResult> {
    return browseImage(image, o);
  }

  /** One page of one table of an image: see `imageRows`. */
  imageRows(image: DatabaseImage, table: string, o: { limit: number; offset: number; signal?: AbortSignal }): Promise<RowsPage> {
    return imageRows(image, table, o);
  }

  /** What changed from image `older` to image `newer`: see `diffImages`. */
  diffImages(older: DatabaseImage, newer: DatabaseImage, o: DiffOptions & { signal?: AbortSignal } = {}): Promise<DiffReport> {
    return diffImages(older, newer, o);
  }

  private inspectDeps(): InspectDeps {
    return {
      clock: this.clock,
      logger: this.logger,
      queue: this.queue,
      preRestoreBackup: (db, preCatalog, bo) => runBackup(this, db, preCatalog, { ...bo, dir: preCatalog.dir, store: preCatalog.store }),
    };
  }

  /** Plans rotation of a directory's backups and, unless `dryRun`, applies it: see `rotateStore`. */
  rotate(dir: string, settings: Settings, o: { dryRun?: boolean; force?: boolean } = {}): Promise<RotationPlan> {
    return rotateStore(this, this.catalog(dir), settings, o);
  }

  /** Pins or unpins a backup: a pinned backup is never deleted automatically and shows under Manual. */
  async setPinned(archivePath: string, pinned: boolean): Promise<BackupRecord> {
    const { catalog, object } = this.locate(archivePath);
    const r = await catalog.getObject(object);
    const state = await catalog.updateState(r.id, (s) => {
      if (pinned) s.pinned = true;
      else delete s.pinned;
    });
    await catalog.record({ op: pinned ? 'pin' : 'unpin', level: 'info', db: r.manifest.source.path, backup: r.id, message: `${pinned ? 'pinned' : 'unpinned'} ${r.id}` });
    return { ...r, state };
  }

  /** Deletes one backup on request (a person's choice, so pinned ones too), logged. */
  async deleteBackup(archivePath: string): Promise<void> {
    const { catalog, object } = this.locate(archivePath);
    await deleteBackup(catalog, await catalog.getObject(object));
  }

  /** Lists a directory's backups; `db` filters to one database. */
  async list(dir: string, db?: string): Promise<{ records: BackupRecord[]; broken: { path: string; object: string; error: string }[] }> {
    const l = await this.catalog(dir).list();
    if (!db) return l;
    const d = await canonicalPath(db);
    return { records: l.records.filter((r) => r.manifest.source.path === d), broken: l.broken };
  }

  /** Reads a backup's manifest (fast; no image decode). */
  manifestOf(archivePath: BackupRef): Promise<Manifest> {
    const { catalog, object, format } = this.locate(archivePath);
    return format.readManifest(catalog.store, object);
  }

  /**
   * The store, object and format a front end's backup path names. A path is a local
   * folder store and an object in it: `<dir>/snapshots/<id>.json` is a v2 backup in
   * `<dir>`, anything else a v1 archive in its folder (so that a stray file is reported
   * as no valid archive).
   */
  private locate(ref: BackupRef): { catalog: Catalog; object: string; format: BackupFormat } {
    if (typeof ref !== 'string') {
      const format = formatOfObject(ref.object);
      return { catalog: new Catalog(ref.store, { clock: this.clock }), object: ref.object, format };
    }
    const backupPath = ref;
    const p = path.resolve(backupPath);
    const parent = path.dirname(p);
    if (path.basename(parent) === SNAPSHOT_FOLDER && p.endsWith('.json')) {
      const store = new LocalDirStore(path.dirname(parent), { clock: this.clock });
      return { catalog: new Catalog(store, { clock: this.clock }), object: `${SNAPSHOT_FOLDER}/${path.basename(p)}`, format: repoV2 };
    }
    const { store, object } = LocalDirStore.forFile(p, { clock: this.clock });
    return { catalog: new Catalog(store, { clock: this.clock }), object, format: zipV1 };
  }

  /**
   * An off-site store (S3, SFTP, a folder) from its settings and the secrets the front end
   * resolved. Nothing is contacted until it is used.
   */
  remote(settings: RemoteSettings, secrets: RemoteSecrets, o: { scryptLogN?: number; prepared?: PreparedKey } = {}): RemoteStore {
    return openRemote(settings, secrets, { clock: this.clock, scryptLogN: o.scryptLogN, prepared: o.prepared });
  }

  /**
   * Copies the verified backups of `dir` that `remote` lacks (see `pushBackups`), then
   * rotates the remote under `retention` (the local policy unless the remote has its own).
   * Rotation failing never fails the copy; it is logged and returned.
   */
  async push(dir: string, remote: RemoteStore, settings: Settings, o: PushOptions & { retention?: Settings['retention'] } = {}): Promise<PushResult & { rotation?: RotationPlan; rotationError?: string }> {
    const res: PushResult & { rotation?: RotationPlan; rotationError?: string } = await pushBackups(this, this.catalog(dir), remote, o);
    try {
      res.rotation = await rotateStore(this, new Catalog(remote, { clock: this.clock }), { ...settings, retention: o.retention ?? settings.retention });
    } catch (e) {
      res.rotationError = (e as Error).message;
    }
    return res;
  }

  /** The backups in any store (an off-site one: `engine.remote(...)`), newest first. */
  listStore(store: BackupStore): Promise<{ records: BackupRecord[]; broken: { path: string; object: string; error: string }[] }> {
    return new Catalog(store, { clock: this.clock }).list();
  }

}

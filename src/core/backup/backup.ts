import path from 'node:path';
import { checkWrittenArchive } from '../archive/archiveReader';
import { writeArchive } from '../archive/archiveWriter';
import type { Catalog } from '../catalog/catalog';
import type { Settings } from '../config';
import type { Clock, Logger, ProgressListener } from '../context';
import { BackupError, fsError } from '../errors';
import { repoV2 } from '../format/repoV2';
import { zipV1 } from '../format/zipV1';
import { removeQuietly } from '../fsutil';
import { ARCHIVE_FORMAT, ARCHIVE_FORMAT_VERSION, IMAGE_ENTRY, type BackupKind, type BackupRecord, type Manifest, type SourceStateRecord } from '../model';
import { snapshotDatabase } from '../snapshot/liveSnapshot';
import { readDbHeader, readSourceState } from '../sqliteFile';
import { scratchFile, type BackupStore, type StoredObject } from '../store/store';
import { isoLocal } from '../time';
import { formatBytes } from '../units';
import { verifyOptions } from '../verify/fromSettings';
import { verifyImage } from '../verify/verifier';
import { LIFEBOAT_VERSION } from '../version';
import { manifestSource } from './manifestSource';
import { archiveId } from './naming';
import { runRepoBackup } from './repoBackup';

export { LIFEBOAT_VERSION };

export interface BackupOptions {
  /** Absolute backup directory: a local folder store (used when `store` is absent). */
  dir: string;
  /** The store to back up into; overrides `dir`. */
  store?: BackupStore;
  kind: BackupKind;
  settings: Settings;
  /** The format of this backup; `settings.format` when absent. */
  format?: Settings['format'];
  trigger?: string;
  signal?: AbortSignal;
  onProgress?: ProgressListener;
  /** Rotate the store after a verified backup (default true). */
  rotate?: boolean;
}

export interface BackupResult {
  record: BackupRecord;
  /** True when the image failed verification: the live database itself is damaged. */
  sourceDamaged: boolean;
  /** True when every check ran and passed. */
  verified: boolean;
}

/** What one backup needs from its host. */
export interface BackupDeps {
  clock: Clock;
  logger: Logger;
}

/**
 * One backup of `db` (a canonical path) into `catalog`'s store, in format v1: a
 * consistent snapshot, verified while it is compressed, written to the store's scratch
 * folder, read back (CRCs, seal), then published under the store's lock as the object
 * that makes it visible. A backup whose image fails verification is kept, marked
 * `sourceDamaged` (the live database is damaged). Throws BackupError on any failure,
 * leaving no partial object. The caller holds the database's queue and rotates after.
 */
export async function runBackup(deps: BackupDeps, db: string, catalog: Catalog, o: BackupOptions): Promise<BackupResult> {
  const started = Date.now();
  const store = catalog.store;
  const fields = { db, phase: 'backup' };
  // The source first: a missing or non-SQLite file must not create a backup store.
  await readDbHeader(db);
  const sourceState = await readSourceState(db);
  await catalog.ensure();
  const created = deps.clock.now();
  const id = archiveId(db, created, o.kind);
  deps.logger.info(`backup started: ${db}`, { ...fields, backup: id });
  await catalog.record({ op: 'backup.start', level: 'info', db, backup: id, message: `${o.kind} backup of ${db} started`, detail: { kind: o.kind, trigger: o.trigger } });
  try {
    const repo = (o.format ?? o.settings.format) === 'repository';
    const made = repo
      ? await runRepoBackup(deps, db, catalog, o, { id, sourceState, created, started })
      : await writeZipBackup(deps, db, catalog, o, { id, sourceState, created, started });
    const { manifest, published } = made;
    const format = repo ? repoV2 : zipV1;
    const record = catalog.recordOf(format, published, manifest, {});
    const verified = manifest.verification.status === 'ok';
    const secs = ((Date.now() - started) / 1000).toFixed(1);
    if (manifest.sourceDamaged) {
      const msg = `${db} is damaged: its backup ${record.id} failed verification (${manifest.verification.problems.slice(0, 3).join('; ')})`;
      deps.logger.error(msg, { ...fields, backup: record.id });
      await catalog.record({ op: 'backup.sourceDamaged', level: 'error', db, backup: record.id, message: msg, detail: { problems: manifest.verification.problems } });
    } else {
      const note = verified ? '' : manifest.verification.status === 'skipped' ? ', NOT verified: ' + (manifest.verification.skippedReason ?? '') : '';
      const what = repo
        ? manifest.repository?.unchangedFrom
          ? `unchanged since ${manifest.repository.unchangedFrom}, nothing stored`
          : `${formatBytes(made.addedBytes)} stored for ${formatBytes(manifest.image.size)}`
        : formatBytes(made.addedBytes);
      await catalog.record({
        op: 'backup.ok',
        level: verified ? 'info' : 'warn',
        db,
        backup: record.id,
        message: `${o.kind} backup of ${path.basename(db)}: ${what} in ${secs} s${note}`,
        detail: { kind: o.kind, size: made.addedBytes, imageSize: manifest.image.size, durationMs: Date.now() - started, verification: manifest.verification.status, notChecked: manifest.verification.notChecked, format: format.label },
      });
      deps.logger.info(`backup ok: ${record.path}`, { ...fields, backup: record.id });
    }
    return { record, sourceDamaged: manifest.sourceDamaged, verified: verified && !manifest.sourceDamaged };
  } catch (e) {
    const err = e instanceof BackupError ? e : fsError(e, catalog.dir, 'writing the backup');
    deps.logger.error(`backup failed: ${err.message}`, { ...fields, backup: id });
    await catalog.record({ op: 'backup.failed', level: 'error', db, backup: id, message: err.message, detail: { reason: err.reason, kind: o.kind } });
    throw err;
  }
}

/**
 * Format v1: the snapshot, verified while it is compressed into a zip in the store's
 * scratch folder, read back (CRCs, seal), then published under the store's lock.
 */
async function writeZipBackup(
  deps: BackupDeps,
  db: string,
  catalog: Catalog,
  o: BackupOptions,
  ctx: { id: string; sourceState: SourceStateRecord; created: Date; started: number },
): Promise<{ manifest: Manifest; published: StoredObject; addedBytes: number }> {
  const { id, sourceState, created, started } = ctx;
  const store = catalog.store;
  const scratch = await store.scratchDir();
  const image = scratchFile(scratch, id, '.image');
  const partial = scratchFile(scratch, id, '.zip.partial');
  try {
    o.onProgress?.({ phase: 'snapshot', done: 0, total: 0 });
    const snap = await snapshotDatabase(db, image, { signal: o.signal, clock: deps.clock, onProgress: o.onProgress, fsync: false });
    deps.logger.debug(`snapshot by ${snap.strategy}${snap.fallback ? ` (${snap.fallback})` : ''}`, { db, phase: 'backup', backup: id });
    const verifying = verifyImage(image, verifyOptions(o.settings, deps.clock, o.signal));
    // Keep the rejection handled while compression runs; it is awaited below.
    verifying.catch(() => undefined);
    const written = await writeArchive({
      imagePath: image,
      outPath: partial,
      level: o.settings.compressionLevel,
      mtime: created,
      signal: o.signal,
      onProgress: o.onProgress,
      manifest: async (img) => {
        o.onProgress?.({ phase: 'verify', done: 0, total: 0 });
        const report = await verifying;
        return {
          format: ARCHIVE_FORMAT,
          formatVersion: ARCHIVE_FORMAT_VERSION,
          id,
          kind: o.kind,
          created: isoLocal(created),
          source: manifestSource(db, snap, sourceState),
          image: {
            entry: IMAGE_ENTRY,
            size: img.size,
            sha256: img.sha256,
            pageSize: snap.pageSize,
            pageCount: snap.pageCount,
            sqliteVersionNumber: snap.sqliteVersionNumber,
          },
          verification: report,
          sourceDamaged: report.status === 'failed',
          durationMs: Date.now() - started,
          trigger: o.trigger,
          lifeboatVersion: LIFEBOAT_VERSION,
        };
      },
    });
    await removeQuietly(image);
    o.onProgress?.({ phase: 'readback', done: 0, total: written.archiveSize });
    const check = await checkWrittenArchive(partial, written.decoded, { signal: o.signal });
    if (!check.ok || !check.manifest) {
      throw new BackupError('verifyFailed', `the archive written for ${db} did not read back intact: ${check.problems.join('; ')}`);
    }
    const manifest = check.manifest;
    // The object that makes the backup visible, last; never over another backup.
    const published = await catalog.withLock(async () => {
      for (let n = 1; ; n++) {
        const object = zipV1.objectFor(id, n);
        if (await store.stat(object)) continue;
        try {
          return await store.publishFile(partial, object);
        } catch (e) {
          if (!BackupError.is(e, 'exists')) throw e;
        }
      }
    });
    return { manifest, published, addedBytes: published.size };
  } finally {
    await removeQuietly(image);
    await removeQuietly(partial);
  }
}

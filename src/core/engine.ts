import { randomBytes } from 'node:crypto';
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { checkArchive, checkWrittenArchive, extractImage, readManifest } from './archive/archiveReader';
import { writeArchive } from './archive/archiveWriter';
import { Catalog } from './catalog/catalog';
import { archiveId } from './catalog/layout';
import { nullLogger, systemClock, type Clock, type Logger, type ProgressListener } from './context';
import type { Settings } from './config';
import { BackupError, fsError } from './errors';
import { crashPoint } from './faults';
import { canonicalPath, fsyncDir, removeQuietly } from './fsutil';
import { sameSourceState } from './schedule/due';
import {
  ARCHIVE_FORMAT,
  ARCHIVE_FORMAT_VERSION,
  IMAGE_ENTRY,
  type BackupKind,
  isVerified,
  onlyProbeFailed,
  type BackupRecord,
  type Manifest,
  type VerifyReport,
} from './model';
import { KeyedQueue } from './schedule/queue';
import { formatBytes } from './units';
import { readDbHeader, readSourceState } from './sqliteFile';
import { snapshotDatabase } from './snapshot/liveSnapshot';
import { isoLocal } from './time';
import { compareWithManifest, verifyImage } from './verify/verifier';
import { verifyOptions } from './verify/fromSettings';
import { restoreArchive } from './restore/restore';
import { planRotation, type RotationPlan } from './retention/plan';

export const LIFEBOAT_VERSION = '0.1.0';

/** What the engine needs from its host: one object instead of globals. */
export interface EngineContext {
  clock?: Clock;
  logger?: Logger;
}

export interface BackupOptions {
  /** Absolute backup directory. */
  dir: string;
  kind: BackupKind;
  settings: Settings;
  trigger?: string;
  signal?: AbortSignal;
  onProgress?: ProgressListener;
  /** Rotate the directory after a verified backup (default true). */
  rotate?: boolean;
}

export interface BackupResult {
  record: BackupRecord;
  /** True when the image failed verification: the live database itself is damaged. */
  sourceDamaged: boolean;
  /** True when every check ran and passed. */
  verified: boolean;
}

export interface VerifyResult {
  record?: BackupRecord;
  path: string;
  ok: boolean;
  /** Archive-level problems (CRC, sha256, structure) and image-level ones. */
  problems: string[];
  report?: VerifyReport;
}

export interface RestoreOptions {
  /** Where to restore; default the manifest's source path. */
  to?: string;
  force?: boolean;
  settings: Settings;
  /** Directory for the pre-restore backup of the current file; default the archive's directory. */
  dir?: string;
  signal?: AbortSignal;
  onProgress?: ProgressListener;
}

export interface RestoreResult {
  target: string;
  preRestore?: BackupRecord;
  /** When the replaced file was not readable SQLite (restored with force): where its raw bytes were kept. */
  rawCopy?: string;
  manifest: Manifest;
  /**
   * How the image was put in place: 'rename' replaced the file (nothing had it open);
   * 'sqlite' wrote it into the database through SQLite's backup API while another
   * process had it open (with `force`, where node:sqlite has `backup()`).
   */
  method: 'rename' | 'sqlite';
  /** With method 'sqlite': what showed the database open, e.g. "pid 1234 (app) has app.db open". */
  inUse?: string[];
}

function tmpName(dir: string, stem: string, suffix: string): string {
  return path.join(dir, `${stem}.${process.pid}.${randomBytes(4).toString('hex')}${suffix}`);
}

/**
 * The one entry point both front ends call: backup -> verify -> record (-> rotate), verify,
 * restore. Backups of one database never overlap (one queue per database).
 */
export class Engine {
  readonly clock: Clock;
  readonly logger: Logger;
  readonly queue = new KeyedQueue();

  constructor(ctx: EngineContext = {}) {
    this.clock = ctx.clock ?? systemClock;
    this.logger = ctx.logger ?? nullLogger;
  }

  catalog(dir: string): Catalog {
    return new Catalog(dir, { clock: this.clock });
  }

  /**
   * Backs up `dbPath` into `o.dir`: a consistent snapshot, verified with sql.js while it
   * is compressed, written under a temporary name, read back (CRCs and sha256), fsynced
   * and renamed into place. Resolves with the new record; a backup whose image fails
   * verification is kept, marked `sourceDamaged` (the live database is damaged). Throws
   * BackupError on any failure, leaving no partial archive.
   */
  async backup(dbPath: string, o: BackupOptions): Promise<BackupResult> {
    // One database seen through two paths (a symlink) is one database: one queue, one name.
    const db = await canonicalPath(dbPath);
    return this.queue.run(db, () => this.backupUnqueued(db, o));
  }

  /** `backup` without the queue: only for a caller that already holds `dbPath`'s queue. */
  async backupUnqueued(dbPath: string, o: BackupOptions): Promise<BackupResult> {
    const db = await canonicalPath(dbPath);
    const started = Date.now();
    const catalog = this.catalog(o.dir);
    const fields = { db, phase: 'backup' };
    // The source first: a missing or non-SQLite file must not create a backup directory.
    await readDbHeader(db);
    const sourceState = await readSourceState(db);
    await catalog.ensure();
    const created = this.clock.now();
    const id = archiveId(db, created, o.kind);
    const image = tmpName(catalog.paths.tmp, id, '.image');
    const partial = tmpName(catalog.paths.tmp, id, '.zip.partial');
    this.logger.info(`backup started: ${db}`, { ...fields, backup: id });
    await catalog.record({ op: 'backup.start', level: 'info', db, backup: id, message: `${o.kind} backup of ${db} started`, detail: { kind: o.kind, trigger: o.trigger } });
    try {
      o.onProgress?.({ phase: 'snapshot', done: 0, total: 0 });
      const snap = await snapshotDatabase(db, image, { signal: o.signal, clock: this.clock, onProgress: o.onProgress, fsync: false });
      this.logger.debug(`snapshot by ${snap.strategy}${snap.fallback ? ` (${snap.fallback})` : ''}`, { ...fields, backup: id });
      const verifying = verifyImage(image, verifyOptions(o.settings, this.clock, o.signal));
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
            source: {
              path: db,
              name: path.basename(db),
              size: snap.source.size,
              mtimeMs: snap.source.mtimeMs,
              journalMode: snap.journalMode,
              changeCounter: snap.changeCounter,
              walFrames: snap.walFrames,
              state: { ...sourceState },
              snapshot: { strategy: snap.strategy, sqliteVersion: snap.sqliteVersion, fallback: snap.fallback },
            },
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
      const finalPath = await catalog.withLock(async () => {
        let target = path.join(catalog.dir, `${id}.zip`);
        for (let n = 2; await exists(target); n++) target = path.join(catalog.dir, `${id}-${n}.zip`);
        crashPoint('rename', target);
        await fs.rename(partial, target);
        await fsyncDir(catalog.dir);
        return target;
      });
      const record: BackupRecord = {
        id: path.basename(finalPath, '.zip'),
        path: finalPath,
        archiveSize: written.archiveSize,
        manifest,
        state: {},
      };
      const verified = manifest.verification.status === 'ok';
      const secs = ((Date.now() - started) / 1000).toFixed(1);
      if (manifest.sourceDamaged) {
        const msg = `${db} is damaged: its backup ${record.id} failed verification (${manifest.verification.problems.slice(0, 3).join('; ')})`;
        this.logger.error(msg, { ...fields, backup: record.id });
        await catalog.record({ op: 'backup.sourceDamaged', level: 'error', db, backup: record.id, message: msg, detail: { problems: manifest.verification.problems } });
      } else {
        const note = verified ? '' : manifest.verification.status === 'skipped' ? ', NOT verified: ' + (manifest.verification.skippedReason ?? '') : '';
        await catalog.record({
          op: 'backup.ok',
          level: verified ? 'info' : 'warn',
          db,
          backup: record.id,
          message: `${o.kind} backup of ${path.basename(db)}: ${formatBytes(written.archiveSize)} in ${secs} s${note}`,
          detail: { kind: o.kind, size: written.archiveSize, imageSize: written.size, durationMs: Date.now() - started, verification: manifest.verification.status, notChecked: manifest.verification.notChecked },
        });
        this.logger.info(`backup ok: ${record.path}`, { ...fields, backup: record.id });
      }
      const result = { record, sourceDamaged: manifest.sourceDamaged, verified: verified && !manifest.sourceDamaged };
      if (result.verified && o.rotate !== false) {
        // Rotation failing (or refusing) must not turn a good backup into a failed one.
        await this.rotate(o.dir, o.settings).catch(async (e) => {
          this.logger.warn(`rotation after the backup failed: ${(e as Error).message}`, fields);
          await catalog.record({ op: 'rotate.refused', level: 'warn', db, message: `rotation after the backup failed: ${(e as Error).message}` });
        });
      }
      return result;
    } catch (e) {
      const err = e instanceof BackupError ? e : fsError(e, o.dir, 'writing the backup');
      await removeQuietly(image);
      await removeQuietly(partial);
      this.logger.error(`backup failed: ${err.message}`, { ...fields, backup: id });
      await catalog.record({ op: 'backup.failed', level: 'error', db, backup: id, message: err.message, detail: { reason: err.reason, kind: o.kind } });
      throw err;
    }
  }

  /**
   * Verifies an archive fully: structure, CRCs, sha256, then the image with verifyImage's
   * engine (integrity, foreign keys, schema and row counts against the manifest, probe).
   * Damage is reported in the result (ok false), never thrown; a malformed archive
   * throws BackupError 'badArchive'. When the archive sits in a catalog, the result is
   * recorded on it and in the log.
   */
  async verifyArchive(archivePath: string, settings: Settings, o: { signal?: AbortSignal; onProgress?: ProgressListener } = {}): Promise<VerifyResult> {
    const p = path.resolve(archivePath);
    const catalog = this.catalog(path.dirname(p));
    const { check, problems, report, ok } = await this.inspect(p, settings, settings.verifyMode, o);
    let record: BackupRecord | undefined;
    if (check.manifest) {
      try {
        const id = path.basename(p, '.zip');
        const st = await catalog.updateState(id, (s) => {
          s.lastVerify = { ...(report ?? failedReport(problems, this.clock)), archiveOk: check.ok };
        });
        record = { id, path: p, archiveSize: (await fs.stat(p)).size, manifest: check.manifest, state: st };
        // A probe query that no longer runs (the schema moved on) says nothing about the archive.
        const probeOnly = !ok && check.ok && report?.status === 'failed' && onlyProbeFailed(problems);
        await catalog.record({
          op: ok ? 'verify.ok' : probeOnly ? 'verify.probeFailed' : 'verify.failed',
          level: ok ? 'info' : probeOnly ? 'warn' : 'error',
          db: check.manifest.source.path,
          backup: id,
          message: ok
            ? `verified ${id}`
            : probeOnly
              ? `verified ${id}, but the probe query failed: ${problems.slice(0, 3).join('; ')}`
              : `verification of ${id} found damage: ${problems.slice(0, 3).join('; ')}`,
          detail: { problems: problems.slice(0, 20) },
        });
      } catch {
        // A read-only location (an archive picked from anywhere): the result is still returned.
      }
    }
    return { record, path: p, ok, problems, report };
  }

  /**
   * The rolling restore test: restores the kept backup whose last restore test is the
   * oldest (never-tested ones first, newest of those first) to a temporary file, runs
   * the full verification, and records the result on the backup and in the log.
   * Resolves undefined when the directory has no backup. Never deletes anything.
   * `o.onProgress` hears the archive check, the extraction and the verification of the
   * picked backup (phases `check`, `extract`, `verify`).
   */
  async restoreTest(dir: string, settings: Settings, o: { signal?: AbortSignal; onProgress?: ProgressListener } = {}): Promise<VerifyResult | undefined> {
    const catalog = this.catalog(dir);
    const { records } = await catalog.list();
    if (!records.length) return undefined;
    const at = (r: BackupRecord) => (r.state.lastRestoreTest ? Date.parse(r.state.lastRestoreTest.at) : -Infinity);
    const pick = [...records].sort((a, b) => at(a) - at(b) || Date.parse(b.manifest.created) - Date.parse(a.manifest.created))[0];
    const { check, problems, report, ok } = await this.inspect(pick.path, settings, 'full', o);
    const when = isoLocal(this.clock.now());
    const state = await catalog.updateState(pick.id, (s) => {
      s.lastRestoreTest = { at: when, ok, detail: ok ? `restored and verified (${report?.check})` : problems.slice(0, 3).join('; ') };
    });
    await catalog.record({
      op: ok ? 'restoreTest.ok' : 'restoreTest.failed',
      level: ok ? 'info' : 'error',
      db: pick.manifest.source.path,
      backup: pick.id,
      message: ok ? `restore test of ${pick.id} passed` : `restore test of ${pick.id} FAILED: ${problems.slice(0, 3).join('; ')}`,
      detail: { problems: problems.slice(0, 20) },
    });
    return { record: { ...pick, manifest: check.manifest ?? pick.manifest, state }, path: pick.path, ok, problems, report };
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
   * Archive check + extraction + verification against the manifest. Damage is in
   * `problems`. The manifest's verdict may come from another engine (sql.js then,
   * node:sqlite now): compareWithManifest compares only what no engine changes.
   */
  private async inspect(p: string, settings: Settings, mode: Settings['verifyMode'], o: { signal?: AbortSignal; onProgress?: ProgressListener }) {
    const catalog = this.catalog(path.dirname(p));
    const check = await checkArchive(p, o);
    const problems = [...check.problems];
    let report: VerifyReport | undefined;
    if (check.ok && check.manifest) {
      const tmpDir = path.join(catalog.paths.tmp);
      await fs.mkdir(tmpDir, { recursive: true }).catch(() => undefined);
      const tmp = tmpName(await writableTmp(tmpDir), check.manifest.id, '.verify');
      try {
        await extractImage(p, tmp, o);
        o.onProgress?.({ phase: 'verify', done: 0, total: 0 });
        report = await verifyImage(tmp, { ...verifyOptions(settings, this.clock, o.signal), mode });
        if (report.status === 'failed') problems.push(...report.problems);
        if (report.status === 'skipped') problems.push(`not verified: ${report.skippedReason ?? 'skipped'}`);
        problems.push(...compareWithManifest(report, check.manifest.verification));
      } catch (e) {
        if (BackupError.is(e, 'cancelled')) throw e;
        problems.push((e as Error).message);
      } finally {
        await removeQuietly(tmp);
      }
    }
    const ok = problems.length === 0 && report?.status === 'ok';
    return { check, problems, report, ok };
  }

  /**
   * Restores an archive over its original database or `o.to`. Extracts and verifies the
   * image beside the target and takes a `pre-restore` backup of the current file first
   * (through the same queue). When no other process has the target open, it folds a
   * leftover WAL of the old file so that every crash point leaves the old database or the
   * new one, removes stale -wal/-shm, and renames over the target. When one has it open
   * it refuses, unless `force` and the runtime has node:sqlite with `backup()`: then
   * SQLite writes the image into the live database under its locks, so the app sees the
   * restored data and keeps its later writes (`result.method` says which ran). It never
   * replaces a file another process has open, not even with `force`.
   */
  restore(archivePath: string, o: RestoreOptions): Promise<RestoreResult> {
    return restoreArchive(this, path.resolve(archivePath), o);
  }

  /**
   * Plans rotation of a directory's backups under `settings.retention` and, unless
   * `dryRun`, deletes what the plan removes, under the directory's lock, logging each
   * deletion. A plan the guards refuse (more than half of a database's automatic
   * backups at once) deletes nothing unless `force`. Safe to repeat.
   */
  async rotate(dir: string, settings: Settings, o: { dryRun?: boolean; force?: boolean } = {}): Promise<RotationPlan> {
    const catalog = this.catalog(dir);
    const run = async () => {
      const { records } = await catalog.list();
      const plan = planRotation(records, settings.retention, this.clock.now(), { force: o.force });
      if (o.dryRun) return plan;
      if (plan.refused) {
        await catalog.record({ op: 'rotate.refused', level: 'warn', message: plan.refused, detail: { wouldRemove: plan.remove.map((r) => r.id) } });
        return plan;
      }
      const byId = new Map(records.map((r) => [r.id, r]));
      for (const rm of plan.remove) {
        const r = byId.get(rm.id);
        if (!r) continue;
        crashPoint('unlink', r.path);
        await fs.unlink(r.path).catch((e) => {
          if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw fsError(e, r.path, 'deleting an expired backup');
        });
        await catalog.record({ op: 'rotate.delete', level: 'info', db: r.manifest.source.path, backup: r.id, message: `deleted ${r.id}: ${rm.reasons.join('; ')}`, detail: { reasons: rm.reasons } });
      }
      if (plan.remove.length) {
        await fsyncDir(catalog.dir);
        await catalog.forgetState(plan.remove.map((r) => r.id));
      }
      return plan;
    };
    return o.dryRun ? run() : catalog.withLock(run);
  }

  /** Pins or unpins a backup: a pinned backup is never deleted automatically and shows under Manual. */
  async setPinned(archivePath: string, pinned: boolean): Promise<BackupRecord> {
    const p = path.resolve(archivePath);
    const catalog = this.catalog(path.dirname(p));
    const r = await catalog.get(p);
    const state = await catalog.updateState(r.id, (s) => {
      if (pinned) s.pinned = true;
      else delete s.pinned;
    });
    await catalog.record({ op: pinned ? 'pin' : 'unpin', level: 'info', db: r.manifest.source.path, backup: r.id, message: `${pinned ? 'pinned' : 'unpinned'} ${r.id}` });
    return { ...r, state };
  }

  /** Deletes one backup on request (a person's choice, so pinned ones too), logged. */
  async deleteBackup(archivePath: string): Promise<void> {
    const p = path.resolve(archivePath);
    const catalog = this.catalog(path.dirname(p));
    const r = await catalog.get(p);
    await catalog.withLock(async () => {
      crashPoint('unlink', p);
      await fs.unlink(p).catch((e) => {
        throw fsError(e, p, 'deleting a backup');
      });
      await fsyncDir(catalog.dir);
      await catalog.forgetState([r.id]);
    });
    await catalog.record({ op: 'delete', level: 'info', db: r.manifest.source.path, backup: r.id, message: `deleted ${r.id} on request` });
  }

  /** Lists a directory's backups; `db` filters to one database. */
  async list(dir: string, db?: string): Promise<{ records: BackupRecord[]; broken: { path: string; error: string }[] }> {
    const l = await this.catalog(dir).list();
    if (!db) return l;
    const d = await canonicalPath(db);
    return { records: l.records.filter((r) => r.manifest.source.path === d), broken: l.broken };
  }

  /** Reads an archive's manifest (fast; no decompression). */
  manifestOf(archivePath: string): Promise<Manifest> {
    return readManifest(path.resolve(archivePath));
  }
}

async function writableTmp(dir: string): Promise<string> {
  try {
    await fs.access(dir, 2);
    return dir;
  } catch {
    const os = await import('node:os');
    return os.tmpdir();
  }
}

function failedReport(problems: string[], clock: Clock): VerifyReport {
  return {
    status: 'failed',
    check: 'none',
    engine: { name: 'lifeboat', sqliteVersion: '' },
    problems,
    foreignKeyViolations: 0,
    schemaFingerprint: '',
    rowCounts: {},
    notChecked: [],
    durationMs: 0,
    checkedAt: isoLocal(clock.now()),
  };
}

async function exists(p: string): Promise<boolean> {
  try {
    await fs.access(p);
    return true;
  } catch {
    return false;
  }
}


import { randomBytes } from 'node:crypto';
import { promises as fs } from 'node:fs';
import path from 'node:path';
import type { BackupOptions, BackupResult } from '../backup/backup';
import { archiveId } from '../backup/naming';
import { Catalog } from '../catalog/catalog';
import type { Settings } from '../config';
import type { Clock, ProgressListener } from '../context';
import type { BackupFormat } from '../format/format';
import type { KeyedQueue } from '../schedule/queue';
import { scratchFile } from '../store/store';
import { BackupError, fsError } from '../errors';
import { crashPoint } from '../faults';
import { canonicalPath, fsyncDir, removeQuietly } from '../fsutil';
import { REPOSITORY_FORMAT_VERSION, type BackupRecord, type BackupState, type Manifest, type VerifyReport } from '../model';
import { processAlive } from '../processInfo';
import { takeSnapshot } from '../snapshot/snapshot';
import { runSqliteJob } from '../sqlite/client';
import { withSqliteLock } from '../sqlite/liveGate';
import { nodeSqlite } from '../sqlite/nodeSqlite';
import { hasHotJournal, readDbHeader } from '../sqliteFile';
import { verifyOptions } from '../verify/fromSettings';
import { NODE_SQLITE_ENGINE, SQLJS_ENGINE, verifyImage } from '../verify/verifier';
import { databaseInUse, restoreInUseSupport, type InUse } from './inUse';
import type { RestoreJobResult } from './nodeRestore';

export interface RestoreOptions {
  /** Where to restore; default the manifest's source path. */
  to?: string;
  force?: boolean;
  settings: Settings;
  /** Directory for the pre-restore backup of the current file; default the backup's own store. */
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
  /** How the image was checked before it was put in place (see `RestoreCheck`). */
  checked: RestoreCheck;
}

/**
 * How a restore checked the image it put in place:
 * - 'integrity_check': SQLite's integrity_check ran on the extracted image now (`report`);
 * - 'sha256': the extracted image's SHA-256 and size equal the sealed manifest's, and the
 *   manifest records that exactly those bytes passed integrity_check when the backup was
 *   made (`backupCheck`), so the bytes restored are the bytes verified then (see
 *   `verifiedAtBackup`).
 */
export type RestoreCheck =
  | { by: 'integrity_check'; report: VerifyReport }
  | { by: 'sha256'; sha256: string; backupCheck: Pick<VerifyReport, 'check' | 'engine' | 'checkedAt'> };

/** One line for people and logs: what a restore's check was. */
export function describeRestoreCheck(c: RestoreCheck): string {
  if (c.by === 'integrity_check') return `${c.report.check} ${c.report.status} now (${c.report.engine.name} ${c.report.engine.sqliteVersion})`;
  return `verified by hash against the backup-time integrity_check (${c.backupCheck.engine.name} ${c.backupCheck.engine.sqliteVersion}, ${c.backupCheck.checkedAt})`;
}

/**
 * Whether integrity_check on an extracted image may be skipped because it would only
 * repeat one the manifest records on the very same bytes; returns that check, else
 * undefined (and the restore runs integrity_check).
 *
 * Why it is safe, for format v2 only: a v2 backup (repoBackup.ts) writes its snapshot to
 * a private image file that nothing writes afterwards; verifyImage reads that file
 * (node:sqlite opens it immutable) while storePages reads the same file and hashes every
 * byte of it into `image.sha256` and `image.size`; the manifest that records both is
 * sealed, and a backup repeated from an unchanged parent copies the parent's image hash
 * together with its verification. rebuildImage refuses an image whose SHA-256 or size
 * differs from the manifest's. So when `extracted` matches the manifest, these are the
 * bytes that passed the recorded check, and SQLite would find on them what it found then.
 * The check is run again when:
 * - the format is not v2 (a zip may come from an older Lifeboat, whose backup is not known
 *   to have hashed exactly the file it verified);
 * - the backup-time check was not a passing integrity_check (quick_check, skipped, failed,
 *   or the source was damaged);
 * - it could not check everything (`notChecked`: virtual tables, foreign keys) and the
 *   engine that would check now is another one (node:sqlite checks FTS5 and R-Tree, sql.js not);
 * - the settings ask for a probe query other than the one that passed then;
 * - a later verification of this backup failed (`later`, from the store's state).
 */
export function verifiedAtBackup(
  manifest: Manifest,
  extracted: { sha256: string; size: number },
  settings: Pick<Settings, 'probeQuery'>,
  later: BackupState['lastVerify'] | undefined,
): RestoreCheck | undefined {
  const v = manifest.verification;
  if (manifest.formatVersion !== REPOSITORY_FORMAT_VERSION || !manifest.repository) return undefined;
  if (extracted.sha256 !== manifest.image.sha256 || extracted.size !== manifest.image.size) return undefined;
  if (manifest.sourceDamaged || v.status !== 'ok' || v.check !== 'integrity_check' || v.problems.length) return undefined;
  const engineNow = nodeSqlite() ? NODE_SQLITE_ENGINE : SQLJS_ENGINE;
  if (v.notChecked.length && v.engine.name !== engineNow) return undefined;
  if (settings.probeQuery && !(v.probe?.ok && v.probe.sql === settings.probeQuery)) return undefined;
  if (later && (later.status === 'failed' || later.archiveOk === false)) return undefined;
  return { by: 'sha256', sha256: extracted.sha256, backupCheck: { check: v.check, engine: v.engine, checkedAt: v.checkedAt } };
}

/** What a restore needs from its host. */
export interface RestoreDeps {
  clock: Clock;
  /** The per-database queue: a restore and the backups of its target never overlap. */
  queue: KeyedQueue;
  /** The pre-restore backup, run inside the target's queue (which the restore holds), without rotation. */
  preRestoreBackup(db: string, catalog: Catalog, o: Omit<BackupOptions, 'dir' | 'store'>): Promise<BackupResult>;
}

/** How long the SQLite path waits for the app's locks. */
const BUSY_TIMEOUT_MS = 10_000;

async function sizeOf(p: string): Promise<number | undefined> {
  try {
    return (await fs.stat(p)).size;
  } catch {
    return undefined;
  }
}

/** Temp files beside the target carry this marker and the writer's pid. */
const RESTORE_MARK = '.lifeboat-restore-';

/**
 * Throws unless a database that `use` found open may be restored now: only with `force`,
 * and only through SQLite. Replacing the file under a running app would lose its writes
 * (it keeps writing to the old file), so `force` never means that.
 */
function assertMayRestoreInUse(target: string, use: InUse, force: boolean | undefined): void {
  const support = restoreInUseSupport();
  const who = use.evidence.join('; ');
  if (!support.ok) {
    // Only sidecars (other users' processes could not be looked into): they may be left by a crash.
    const leftovers = use.byProcess
      ? ''
      : `. If no app has it open (files left by a crash), open it once with SQLite (e.g. sqlite3 ${path.basename(target)} "PRAGMA quick_check") so that it recovers and removes them`;
    throw new BackupError(
      'inUse',
      `${target} looks in use (${who}): stop the app using it, then restore again. Lifeboat cannot restore into a database that another process has open on this runtime (${support.why}), and replacing the file under a running app would lose the app's next writes; --force does not change that${leftovers}`,
      { path: target },
    );
  }
  if (!force) {
    throw new BackupError(
      'inUse',
      `${target} looks in use (${who}): stop the app using it, or use --force to restore through SQLite while it runs (its connections then see the restored data and keep their later writes)`,
      { path: target },
    );
  }
}

/**
 * Before anything is written: what the SQLite path cannot do with this target. A target
 * that is not readable SQLite cannot be written through SQLite, and a WAL database cannot
 * change its page size.
 */
async function assertSqlitePathFits(target: string, manifest: Manifest, use: InUse): Promise<void> {
  let header;
  try {
    header = await readDbHeader(target);
  } catch (e) {
    if (!BackupError.is(e, 'notSqlite') && !BackupError.is(e, 'encrypted')) throw e;
    throw new BackupError(
      e.reason,
      `${e.message}, and it is open in another process (${use.evidence.join('; ')}): stop the app using it, then restore again with --force (its raw bytes are then kept)`,
      { path: target },
    );
  }
  if (header.writeVersion === 2 && header.pageSize !== manifest.image.pageSize) {
    throw new BackupError(
      'inUse',
      `${target} is open in WAL mode (${use.evidence.join('; ')}) with ${header.pageSize}-byte pages and the backup has ${manifest.image.pageSize}-byte pages: SQLite cannot change the page size of a WAL database while it is in use. Stop the app using it, then restore again (the file is then replaced); nothing was changed`,
      { path: target },
    );
  }
}

async function refuseIfHotJournal(target: string): Promise<void> {
  if (await hasHotJournal(target)) {
    // Never put a new file beside a hot journal: SQLite would roll the journal back into it.
    throw new BackupError(
      'inUse',
      `${target} has a hot journal (an interrupted transaction): open it once with SQLite (e.g. sqlite3 ${path.basename(target)} "PRAGMA integrity_check") so that it recovers, then restore`,
      { path: target },
    );
  }
}

/** Removes a sidecar if it is there: a stale WAL beside the new file would be replayed into it. */
async function removeSidecar(p: string): Promise<void> {
  if ((await sizeOf(p)) === undefined) return;
  try {
    crashPoint('unlink', p);
    await fs.unlink(p);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw fsError(e, p, 'removing the old database\'s sidecar file');
  }
}

/**
 * See `Engine.restore`. Two ways to put the image in place:
 *
 * - 'rename' (no other process has the target open): every step before the final rename
 *   leaves the target as it was (logically: a leftover WAL is folded into an equivalent
 *   standalone file first), and the rename happens only with no -wal, -shm or hot
 *   journal beside the target. The result is page for page the verified image.
 * - 'sqlite' (another process has it open, `force`, and the runtime has node:sqlite with
 *   `backup()`): SQLite's backup API copies the image into the live database in one
 *   transaction under its locks (nodeRestore.ts), so the app sees the restored data and
 *   its later writes persist. The file, its inode and its journal mode stay.
 *
 * The rename path is used whenever the target is not in use, also where SQLite is
 * available: it is page-identical to what was verified, writes the database once instead
 * of twice (journal or WAL, then the file), and works for any page size. Whether the
 * target is in use is checked again right before each rename over it; if an app opened
 * it meanwhile, the restore switches to the SQLite path (or refuses).
 */
export async function restoreBackup(deps: RestoreDeps, catalog: Catalog, format: BackupFormat, object: string, o: RestoreOptions): Promise<RestoreResult> {
  const archive = catalog.locate(object);
  const manifest = await format.readManifest(catalog.store, object);
  const target = await canonicalPath(o.to ?? manifest.source.path);
  const targetDir = path.dirname(target);
  const archiveCatalog = catalog;
  try {
    const st = await fs.stat(targetDir);
    if (!st.isDirectory()) throw new BackupError('unwritable', `${targetDir}: not a directory (restore target)`, { path: targetDir });
    await fs.access(targetDir, 2);
  } catch (e) {
    throw fsError(e, targetDir, 'checking the restore target folder');
  }
  const targetExists = (await sizeOf(target)) !== undefined;
  const firstLook: InUse = targetExists ? await databaseInUse(target) : { inUse: false, evidence: [], byProcess: false };
  if (firstLook.inUse) {
    assertMayRestoreInUse(target, firstLook, o.force);
    await assertSqlitePathFits(target, manifest, firstLook);
  } else {
    await refuseIfHotJournal(target);
  }
  await cleanStaleRestoreTemps(targetDir, path.basename(target));
  return deps.queue.run(target, async () => {
    const started = Date.now();
    await archiveCatalog.record({ op: 'restore.start', level: 'info', db: target, backup: manifest.id, message: `restore of ${manifest.id} to ${target} started` });
    const stem = `.${path.basename(target)}${RESTORE_MARK}${process.pid}-${randomBytes(4).toString('hex')}`;
    const tmpNew = path.join(targetDir, `${stem}.new`);
    const tmpOld = path.join(targetDir, `${stem}.old`);
    let preRestore: BackupRecord | undefined;
    let rawCopy: string | undefined;
    let use = firstLook;
    let written: RestoreJobResult | undefined;
    try {
      o.onProgress?.({ phase: 'extract', done: 0, total: manifest.image.size });
      const extracted = await format.extractImage(catalog.store, object, tmpNew, { signal: o.signal, onProgress: o.onProgress });
      // A later verification that failed (kept in the store's state) means checking again.
      const later = await catalog.readState().then(
        (s) => s.backups[format.idOf(object)]?.lastVerify,
        () => ({ status: 'failed' }) as BackupState['lastVerify'],
      );
      let checked = verifiedAtBackup(extracted.manifest, extracted, o.settings, later);
      if (!checked) {
        o.onProgress?.({ phase: 'verify', done: 0, total: 0 });
        const report = await verifyImage(tmpNew, { ...verifyOptions(o.settings, deps.clock, o.signal), mode: 'full' });
        if (report.status === 'failed' && !o.force) {
          throw new BackupError('verifyFailed', `${archive}: the backup's image fails verification (${report.problems.slice(0, 3).join('; ')}); nothing was restored (--force restores it anyway)`, { path: archive });
        }
        checked = { by: 'integrity_check', report };
      }
      const previous = targetExists ? await fs.stat(target) : undefined;
      if (previous) {
        o.onProgress?.({ phase: 'pre-restore backup', done: 0, total: 0 });
        const preCatalog = o.dir ? new Catalog(o.dir, { clock: deps.clock }) : catalog;
        try {
          // This job already holds the target's queue; no rotation here: a restore never
          // deletes backups.
          preRestore = (
            await deps.preRestoreBackup(target, preCatalog, { kind: 'pre-restore', settings: o.settings, trigger: `before restoring ${manifest.id}`, signal: o.signal, rotate: false })
          ).record;
        } catch (e) {
          if (!BackupError.is(e, 'notSqlite') && !BackupError.is(e, 'encrypted')) throw e;
          // The file being replaced is not readable SQLite (often why one restores): keep
          // its raw bytes instead of a backup, but only when asked to, and only when no
          // app has it open (then it cannot be written through SQLite either).
          if (use.inUse) await assertSqlitePathFits(target, manifest, use);
          if (!o.force) {
            throw new BackupError(e.reason, `${e.message}; no pre-restore backup can be made of it: use --force to keep a raw copy of it in ${preCatalog.dir} and restore over it`, { path: target });
          }
          rawCopy = await keepRawCopy(preCatalog, target, `${archiveId(target, deps.clock.now(), 'pre-restore')}.damaged${path.extname(target) || '.db'}`);
          await archiveCatalog.record({ op: 'restore.start', level: 'warn', db: target, message: `${target} is not readable SQLite; its raw bytes are kept in ${rawCopy}` });
        }
        // The rename path prepares the swap; the SQLite path (chosen at the first look,
        // and fine also if the app has closed since) needs nothing more.
        if (!use.inUse) {
          await refuseIfHotJournal(target);
          const wal = await sizeOf(`${target}-wal`);
          if (wal && wal > 0 && !rawCopy) {
            // The old database's committed frames live in its WAL; fold them into a standalone
            // copy before the WAL goes, so that a crash from here on leaves the old content.
            await takeSnapshot(target, tmpOld, { signal: o.signal, clock: deps.clock });
            await fs.chmod(tmpOld, previous.mode & 0o7777);
            // Right before the first rename over the target: has an app opened it meanwhile?
            use = await lookAgain(target, manifest, o);
            if (use.inUse) await removeQuietly(tmpOld);
            else {
              crashPoint('rename', target);
              await fs.rename(tmpOld, target);
              await fsyncDir(targetDir);
            }
          }
        }
        if (!use.inUse) {
          // The restored file keeps the old one's permissions and owner.
          await fs.chmod(tmpNew, previous.mode & 0o7777);
          if (process.getuid?.() === 0) await fs.chown(tmpNew, previous.uid, previous.gid).catch(() => undefined);
        }
      }
      if (o.signal?.aborted) throw new BackupError('cancelled', 'restore cancelled; nothing was changed');
      // Right before the swap, the last chance to notice an app that opened the database.
      if (previous && !use.inUse) use = await lookAgain(target, manifest, o);
      if (use.inUse) {
        // No open and close of the target's files elsewhere in this process while SQLite
        // holds its locks on it: POSIX would drop them (see sqlite/liveGate.ts).
        written = await withSqliteLock(target, () =>
          runSqliteJob<RestoreJobResult>(
            { op: 'restore', imagePath: tmpNew, targetPath: target, busyTimeoutMs: BUSY_TIMEOUT_MS },
            { signal: o.signal, onProgress: o.onProgress, label: target },
          ),
        );
        await removeQuietly(tmpNew);
      } else {
        for (const side of ['-wal', '-shm', '-journal']) await removeSidecar(`${target}${side}`);
        await fsyncDir(targetDir);
        crashPoint('rename', target);
        await fs.rename(tmpNew, target);
        await fsyncDir(targetDir);
      }
      const method = written ? 'sqlite' : 'rename';
      const saved = preRestore ? ` (previous state saved as ${preRestore.id})` : rawCopy ? ` (previous file kept raw as ${path.basename(rawCopy)})` : '';
      const how = written ? ` through SQLite while it was open (${use.evidence.join('; ')})` : '';
      await archiveCatalog.record({
        op: 'restore.ok',
        level: 'info',
        db: target,
        backup: manifest.id,
        message: `restored ${manifest.id} to ${target}${how} in ${((Date.now() - started) / 1000).toFixed(1)} s${saved}; ${describeRestoreCheck(checked)}`,
        detail: { preRestore: preRestore?.id, rawCopy, method, inUse: written ? use.evidence : undefined, checkedBy: checked.by },
      });
      return { target, preRestore, manifest, rawCopy, method, inUse: written ? use.evidence : undefined, checked };
    } catch (e) {
      await removeQuietly(tmpNew);
      await removeQuietly(tmpOld);
      const err = e instanceof BackupError ? e : fsError(e, target, 'restoring');
      await archiveCatalog.record({ op: 'restore.failed', level: 'error', db: target, backup: manifest.id, message: err.message, detail: { reason: err.reason } });
      throw err;
    }
  });
}

/**
 * Keeps the raw bytes of a file that is not readable SQLite (and of its -wal) as objects
 * in the store, before a forced restore replaces it. Returns where the copy is.
 */
async function keepRawCopy(catalog: Catalog, target: string, name: string): Promise<string> {
  await catalog.ensure();
  const scratch = await catalog.store.scratchDir();
  for (const [from, object] of [[`${target}-wal`, `${name}-wal`], [target, name]]) {
    if (from !== target && !(await sizeOf(from))) continue;
    const tmp = scratchFile(scratch, 'raw', '.copy');
    try {
      await fs.copyFile(from, tmp);
      await catalog.store.publishFile(tmp, object);
    } finally {
      await removeQuietly(tmp);
    }
  }
  return catalog.locate(name);
}

/**
 * Whether the target is in use now, right before a step that would replace its file;
 * throws when it is and that may not be restored through SQLite (see
 * `assertMayRestoreInUse` and `assertSqlitePathFits`).
 */
async function lookAgain(target: string, manifest: Manifest, o: RestoreOptions): Promise<InUse> {
  const use = await databaseInUse(target);
  if (use.inUse) {
    assertMayRestoreInUse(target, use, o.force);
    await assertSqlitePathFits(target, manifest, use);
  }
  return use;
}

/** Removes restore temp files left beside the target by processes that are gone. */
async function cleanStaleRestoreTemps(dir: string, base: string): Promise<void> {
  let names: string[];
  try {
    names = await fs.readdir(dir);
  } catch {
    return;
  }
  const prefix = `.${base}${RESTORE_MARK}`;
  for (const n of names) {
    if (!n.startsWith(prefix)) continue;
    const pid = Number(n.slice(prefix.length).split('-')[0]);
    if (!processAlive(pid)) await removeQuietly(path.join(dir, n));
  }
}

import { randomBytes } from 'node:crypto';
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { extractImage, readManifest } from '../archive/archiveReader';
import { Catalog } from '../catalog/catalog';
import { archiveId } from '../catalog/layout';
import type { Engine, RestoreOptions, RestoreResult } from '../engine';
import { BackupError, fsError } from '../errors';
import { canonicalPath, fsyncDir, fsyncFile, removeQuietly } from '../fsutil';
import type { BackupRecord } from '../model';
import { processAlive } from '../processInfo';
import { takeSnapshot } from '../snapshot/snapshot';
import { hasHotJournal } from '../sqliteFile';
import { verifyOptions } from '../verify/fromSettings';
import { verifyImage } from '../verify/verifier';
import { databaseInUse } from './inUse';

async function sizeOf(p: string): Promise<number | undefined> {
  try {
    return (await fs.stat(p)).size;
  } catch {
    return undefined;
  }
}

/** Temp files beside the target carry this marker and the writer's pid. */
const RESTORE_MARK = '.lifeboat-restore-';

async function refuseIfInUse(target: string): Promise<void> {
  const use = await databaseInUse(target);
  if (use.inUse) {
    throw new BackupError('inUse', `${target} looks in use (${use.evidence.join('; ')}); close the app using it, or use --force`, { path: target });
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

/** Removes a sidecar and proves it is gone: a stale WAL beside the new file would be replayed into it. */
async function removeSidecar(p: string): Promise<void> {
  try {
    await fs.unlink(p);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw fsError(e, p, 'removing the old database\'s sidecar file');
  }
}

/**
 * See `Engine.restore`. Every step before the final rename leaves the target as it was
 * (logically: a leftover WAL is folded into an equivalent standalone file first), and
 * the rename happens only with no -wal, -shm or hot journal beside the target.
 */
export async function restoreArchive(engine: Engine, archive: string, o: RestoreOptions): Promise<RestoreResult> {
  const manifest = await readManifest(archive);
  const target = await canonicalPath(o.to ?? manifest.source.path);
  const targetDir = path.dirname(target);
  const archiveCatalog = new Catalog(path.dirname(archive), { clock: engine.clock });
  try {
    const st = await fs.stat(targetDir);
    if (!st.isDirectory()) throw new BackupError('unwritable', `${targetDir}: not a directory (restore target)`, { path: targetDir });
    await fs.access(targetDir, 2);
  } catch (e) {
    throw fsError(e, targetDir, 'checking the restore target folder');
  }
  const targetExists = (await sizeOf(target)) !== undefined;
  if (targetExists && !o.force) await refuseIfInUse(target);
  await refuseIfHotJournal(target);
  await cleanStaleRestoreTemps(targetDir, path.basename(target));
  return engine.queue.run(target, async () => {
    const started = Date.now();
    await archiveCatalog.record({ op: 'restore.start', level: 'info', db: target, backup: manifest.id, message: `restore of ${manifest.id} to ${target} started` });
    const stem = `.${path.basename(target)}${RESTORE_MARK}${process.pid}-${randomBytes(4).toString('hex')}`;
    const tmpNew = path.join(targetDir, `${stem}.new`);
    const tmpOld = path.join(targetDir, `${stem}.old`);
    let preRestore: BackupRecord | undefined;
    let rawCopy: string | undefined;
    try {
      o.onProgress?.({ phase: 'extract', done: 0, total: manifest.image.size });
      await extractImage(archive, tmpNew, { signal: o.signal, onProgress: o.onProgress });
      o.onProgress?.({ phase: 'verify', done: 0, total: 0 });
      const report = await verifyImage(tmpNew, { ...verifyOptions(o.settings, engine.clock, o.signal), mode: 'full' });
      if (report.status === 'failed' && !o.force) {
        throw new BackupError('verifyFailed', `${archive}: the backup's image fails verification (${report.problems.slice(0, 3).join('; ')}); nothing was restored (--force restores it anyway)`, { path: archive });
      }
      const previous = targetExists ? await fs.stat(target) : undefined;
      if (previous) {
        o.onProgress?.({ phase: 'pre-restore backup', done: 0, total: 0 });
        const dir = o.dir ?? path.dirname(archive);
        try {
          // This job already holds the target's queue, so the backup runs unqueued; no
          // rotation here: a restore never deletes backups.
          preRestore = (
            await engine.backupUnqueued(target, { dir, kind: 'pre-restore', settings: o.settings, trigger: `before restoring ${manifest.id}`, signal: o.signal, rotate: false })
          ).record;
        } catch (e) {
          if (!BackupError.is(e, 'notSqlite') && !BackupError.is(e, 'encrypted')) throw e;
          // The file being replaced is not readable SQLite (often why one restores): keep
          // its raw bytes instead of a backup, but only when asked to.
          if (!o.force) {
            throw new BackupError(e.reason, `${e.message}; no pre-restore backup can be made of it: use --force to keep a raw copy of it in ${dir} and restore over it`, { path: target });
          }
          rawCopy = path.join(dir, `${archiveId(target, engine.clock.now(), 'pre-restore')}.damaged${path.extname(target) || '.db'}`);
          await fs.mkdir(dir, { recursive: true });
          await fs.copyFile(target, rawCopy);
          await fsyncFile(rawCopy);
          if (await sizeOf(`${target}-wal`)) await fs.copyFile(`${target}-wal`, `${rawCopy}-wal`);
          await archiveCatalog.record({ op: 'restore.start', level: 'warn', db: target, message: `${target} is not readable SQLite; its raw bytes are kept in ${rawCopy}` });
        }
        // The app may have opened the database while the backup ran.
        if (!o.force) await refuseIfInUse(target);
        await refuseIfHotJournal(target);
        const wal = await sizeOf(`${target}-wal`);
        if (wal && wal > 0 && !rawCopy) {
          // The old database's committed frames live in its WAL; fold them into a standalone
          // copy before the WAL goes, so that a crash from here on leaves the old content.
          await takeSnapshot(target, tmpOld, { signal: o.signal, clock: engine.clock });
          await fs.chmod(tmpOld, previous.mode & 0o7777);
          await fs.rename(tmpOld, target);
          await fsyncDir(targetDir);
        }
        // The restored file keeps the old one's permissions and owner.
        await fs.chmod(tmpNew, previous.mode & 0o7777);
        if (process.getuid?.() === 0) await fs.chown(tmpNew, previous.uid, previous.gid).catch(() => undefined);
      }
      if (o.signal?.aborted) throw new BackupError('cancelled', 'restore cancelled; nothing was changed');
      for (const side of ['-wal', '-shm', '-journal']) await removeSidecar(`${target}${side}`);
      await fsyncDir(targetDir);
      await fs.rename(tmpNew, target);
      await fsyncDir(targetDir);
      const saved = preRestore ? ` (previous state saved as ${preRestore.id})` : rawCopy ? ` (previous file kept raw as ${path.basename(rawCopy)})` : '';
      await archiveCatalog.record({
        op: 'restore.ok',
        level: 'info',
        db: target,
        backup: manifest.id,
        message: `restored ${manifest.id} to ${target} in ${((Date.now() - started) / 1000).toFixed(1)} s${saved}`,
        detail: { preRestore: preRestore?.id, rawCopy },
      });
      return { target, preRestore, manifest, rawCopy };
    } catch (e) {
      await removeQuietly(tmpNew);
      await removeQuietly(tmpOld);
      const err = e instanceof BackupError ? e : fsError(e, target, 'restoring');
      await archiveCatalog.record({ op: 'restore.failed', level: 'error', db: target, backup: manifest.id, message: err.message, detail: { reason: err.reason } });
      throw err;
    }
  });
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

import { randomBytes } from 'node:crypto';
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { extractImage, readManifest } from '../archive/archiveReader';
import type { Engine, RestoreOptions, RestoreResult } from '../engine';
import { verifyOptions } from '../verify/fromSettings';
import { BackupError, fsError } from '../errors';
import { fsyncDir, removeQuietly } from '../fsutil';
import type { BackupRecord } from '../model';
import { takeSnapshot } from '../snapshot/snapshot';
import { verifyImage } from '../verify/verifier';
import { Catalog } from '../catalog/catalog';
import { databaseInUse } from './inUse';

const JOURNAL_MAGIC = Buffer.from([0xd9, 0xd5, 0x05, 0xf9, 0x20, 0xa1, 0x63, 0xd7]);

async function sizeOf(p: string): Promise<number | undefined> {
  try {
    return (await fs.stat(p)).size;
  } catch {
    return undefined;
  }
}

async function hotJournal(db: string): Promise<boolean> {
  const j = `${db}-journal`;
  try {
    const fh = await fs.open(j, 'r');
    try {
      const b = Buffer.alloc(8);
      const { bytesRead } = await fh.read(b, 0, 8, 0);
      return bytesRead === 8 && b.equals(JOURNAL_MAGIC);
    } finally {
      await fh.close();
    }
  } catch {
    return false;
  }
}

/** Temp files beside the target carry this marker and the writer's pid. */
const RESTORE_MARK = '.lifeboat-restore-';

/**
 * See `Engine.restore`. Every step before the final rename leaves the target as it was
 * (logically: a leftover WAL is folded into an equivalent standalone file first).
 */
export async function restoreArchive(engine: Engine, archive: string, o: RestoreOptions): Promise<RestoreResult> {
  const manifest = await readManifest(archive);
  const target = path.resolve(o.to ?? manifest.source.path);
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
  if (targetExists && !o.force) {
    const use = await databaseInUse(target);
    if (use.inUse) {
      throw new BackupError('inUse', `${target} looks in use (${use.evidence.join('; ')}); close the app using it, or use --force`, { path: target });
    }
    if (await hotJournal(target)) {
      throw new BackupError('inUse', `${target} has a hot journal (an interrupted transaction); open it once with SQLite to recover it, or use --force`, { path: target });
    }
  }
  await cleanStaleRestoreTemps(targetDir, path.basename(target));
  return engine.queue.run(target, async () => {
    const started = Date.now();
    await archiveCatalog.record({ op: 'restore.start', level: 'info', db: target, backup: manifest.id, message: `restore of ${manifest.id} to ${target} started` });
    const stem = `.${path.basename(target)}${RESTORE_MARK}${process.pid}-${randomBytes(4).toString('hex')}`;
    const tmpNew = path.join(targetDir, `${stem}.new`);
    const tmpOld = path.join(targetDir, `${stem}.old`);
    let preRestore: BackupRecord | undefined;
    try {
      o.onProgress?.({ phase: 'extract', done: 0, total: manifest.image.size });
      await extractImage(archive, tmpNew, { signal: o.signal, onProgress: o.onProgress });
      o.onProgress?.({ phase: 'verify', done: 0, total: 0 });
      const report = await verifyImage(tmpNew, { ...verifyOptions(o.settings, engine.clock, o.signal), mode: 'full' });
      if (report.status === 'failed' && !o.force) {
        throw new BackupError('verifyFailed', `${archive}: the backup's image fails verification (${report.problems.slice(0, 3).join('; ')}); nothing was restored`, { path: archive });
      }
      if (targetExists) {
        o.onProgress?.({ phase: 'pre-restore backup', done: 0, total: 0 });
        const dir = o.dir ?? path.dirname(archive);
        // This job already holds the target's queue, so the backup runs unqueued.
        preRestore = (await engine.backupUnqueued(target, { dir, kind: 'pre-restore', settings: o.settings, trigger: `before restoring ${manifest.id}`, signal: o.signal })).record;
        const wal = await sizeOf(`${target}-wal`);
        if (wal && wal > 0) {
          // The old database's committed frames live in its WAL; fold them into a standalone
          // copy before the WAL goes, so that a crash from here on leaves the old content.
          await takeSnapshot(target, tmpOld, { signal: o.signal, clock: engine.clock });
          await fs.rename(tmpOld, target);
          await fsyncDir(targetDir);
        }
      }
      if (o.signal?.aborted) throw new BackupError('cancelled', 'restore cancelled; nothing was changed');
      for (const side of ['-wal', '-shm']) await removeQuietly(`${target}${side}`);
      if (!(await hotJournal(target))) await removeQuietly(`${target}-journal`);
      await fs.rename(tmpNew, target);
      await fsyncDir(targetDir);
      await archiveCatalog.record({
        op: 'restore.ok',
        level: 'info',
        db: target,
        backup: manifest.id,
        message: `restored ${manifest.id} to ${target} in ${((Date.now() - started) / 1000).toFixed(1)} s${preRestore ? ` (previous state saved as ${preRestore.id})` : ''}`,
        detail: { preRestore: preRestore?.id },
      });
      return { target, preRestore, manifest };
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
    let alive = false;
    try {
      process.kill(pid, 0);
      alive = true;
    } catch (e) {
      alive = (e as NodeJS.ErrnoException).code === 'EPERM';
    }
    if (!alive) await removeQuietly(path.join(dir, n));
  }
}

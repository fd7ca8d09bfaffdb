import { promises as fs } from 'node:fs';
import path from 'node:path';
import { checkWrittenArchive } from '../archive/archiveReader';
import { writeArchive } from '../archive/archiveWriter';
import type { Catalog } from '../catalog/catalog';
import type { ProgressListener } from '../context';
import { BackupError, fsError } from '../errors';
import type { BackupFormat } from '../format/format';
import { canonicalPath, fsyncDir, removeQuietly } from '../fsutil';
import { ARCHIVE_FORMAT_VERSION, type Manifest } from '../model';

export interface ExportOptions {
  /** The file to write: a `.zip` gets a v1 archive, anything else the plain database. */
  to: string;
  /** Replace `to` when it exists. */
  force?: boolean;
  compressionLevel?: number;
  signal?: AbortSignal;
  onProgress?: ProgressListener;
}

export interface ExportResult {
  path: string;
  /** 'sqlite': the database file itself; 'zip': a self-contained v1 archive. */
  as: 'sqlite' | 'zip';
  size: number;
  manifest: Manifest;
}

/**
 * Writes one backup out as a file that needs no Lifeboat: the database itself (checked
 * page by page and against the manifest's SHA-256 as it is rebuilt), or, for a `.zip`
 * target, a v1 archive of it (read back before it is kept). Built beside the target and
 * renamed into place: a failure leaves no partial file and the old target as it was.
 * BackupError 'exists' when the target exists and `force` is not set; 'unwritable' naming
 * the target's folder when it cannot be written.
 */
export async function exportBackup(catalog: Catalog, format: BackupFormat, object: string, o: ExportOptions): Promise<ExportResult> {
  const target = path.resolve(o.to);
  const as = target.toLowerCase().endsWith('.zip') ? 'zip' : 'sqlite';
  const exists = await fs.stat(target).then(
    (st) => st,
    () => undefined,
  );
  if (exists?.isDirectory()) throw new BackupError('usage', `${target}: is a folder; --to names the file to write`, { path: target });
  if (exists && !o.force) throw new BackupError('exists', `${target}: already exists; choose another name, or ask to replace it`, { path: target });
  const dir = path.dirname(target);
  // Replacing a live database is a restore (in-use checks, a pre-restore backup, its -wal): never an export.
  const manifest0 = await format.readManifest(catalog.store, object);
  const canonical = await canonicalPath(target);
  if (canonical === manifest0.source.path || (await fs.stat(`${target}-wal`).then(() => true, () => false))) {
    throw new BackupError('usage', `${target}: is a live database (${canonical === manifest0.source.path ? 'the one this backup was made of' : 'it has a -wal file beside it'}); restore it instead of exporting over it`, { path: target });
  }
  const tmpImage = path.join(dir, `.${path.basename(target)}.${process.pid}.image.partial`);
  const tmpZip = path.join(dir, `.${path.basename(target)}.${process.pid}.zip.partial`);
  try {
    const { manifest, size } = await format.extractImage(catalog.store, object, tmpImage, { signal: o.signal, onProgress: o.onProgress });
    let out = tmpImage;
    let outSize = size;
    if (as === 'zip') {
      const v1 = asV1Manifest(manifest);
      const written = await writeArchive({
        imagePath: tmpImage,
        outPath: tmpZip,
        level: o.compressionLevel ?? 1,
        mtime: new Date(Date.parse(manifest.created)),
        signal: o.signal,
        onProgress: o.onProgress,
        manifest: async () => v1,
      });
      const check = await checkWrittenArchive(tmpZip, written.decoded, { signal: o.signal });
      if (!check.ok) throw new BackupError('verifyFailed', `${target}: the archive did not read back intact: ${check.problems.join('; ')}`, { path: target });
      await removeQuietly(tmpImage);
      out = tmpZip;
      outSize = written.archiveSize;
    }
    try {
      await fs.rename(out, target);
      await fsyncDir(dir);
    } catch (e) {
      throw fsError(e, target, 'writing the export');
    }
    return { path: target, as, size: outSize, manifest };
  } catch (e) {
    await removeQuietly(tmpImage);
    await removeQuietly(tmpZip);
    const ours = e instanceof BackupError && e.path !== undefined && [tmpImage, tmpZip, target, dir].includes(path.resolve(e.path));
    if (ours && (e.reason === 'notFound' || e.reason === 'unwritable')) {
      throw new BackupError('unwritable', `${dir}: cannot write the export there (${e.message})`, { cause: e, path: dir });
    }
    throw e;
  }
}

/** A manifest as a v1 archive carries it: the same facts without the repository's map and seal. */
function asV1Manifest(m: Manifest): Manifest {
  const { repository: _map, seal: _seal, ...rest } = m;
  return { ...rest, formatVersion: ARCHIVE_FORMAT_VERSION };
}

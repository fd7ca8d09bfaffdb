/**
 * Writes a Lifeboat archive: a zip holding `database.sqlite` (the snapshot image) and then
 * `manifest.json`, sealed by its comment (see archiveSeal.ts). Everything streams: the
 * image is read in 1 MiB chunks, hashed on the same stream, checksummed by the native
 * zlib.crc32 and deflated on several threads (ZipWriter, ParallelDeflateRaw), so memory
 * stays bounded and the event loop stays free.
 */
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { open, stat, type FileHandle } from 'node:fs/promises';
import { Transform, pipeline, type TransformCallback } from 'node:stream';
import { pipeline as pipelinePromise } from 'node:stream/promises';
import type { ProgressListener } from '../context';
import { BackupError, fsError } from '../errors';
import { crashPoint } from '../faults';
import { destroyStream, fsyncFile, removeQuietly } from '../fsutil';
import { ARCHIVE_FORMAT, ARCHIVE_FORMAT_VERSION, IMAGE_ENTRY, MANIFEST_ENTRY, type Manifest } from '../model';
import { SEAL_PLACEHOLDER, SealingStream } from './archiveSeal';
import { EntryDecoder, type DecodedEntry } from './entryDecoder';
import { ZipWriter, ZipWriterError } from './zipWriter';

/** The largest manifest.json the writer produces and the reader accepts. */
export const MANIFEST_MAX_BYTES = 4 * 1024 * 1024;
/** Regular file, rw-r--r--, as stored in the entries' external attributes. */
const ENTRY_MODE = 0o100644;
const CHUNK = 1 << 20;

export interface WriteArchiveOptions {
  /** The snapshot image file to store. */
  imagePath: string;
  /** A temporary path (the caller renames it into place afterwards). A file already there is replaced. */
  outPath: string;
  /** zlib level 0..9 (0 = store). */
  level: number;
  /**
   * Called once the image is fully streamed and hashed; resolves to the manifest to store
   * (the caller verifies in parallel and fills verification in). Its `image.sha256`,
   * `image.size` and `image.entry` must describe what was streamed.
   */
  manifest: (image: { sha256: string; size: number }) => Promise<Manifest>;
  /**
   * Modification time stored for the image entry, whose header is written before the
   * manifest exists: pass the instant you put in `manifest.created`. Default: the image
   * file's mtime. The manifest entry always gets `manifest.created`.
   */
  mtime?: Date;
  signal?: AbortSignal;
  /** Phase 'compress', done/total bytes of the image. */
  onProgress?: ProgressListener;
}

/**
 * Writes the archive to `o.outPath` and fsyncs it. While it writes, a second reader of the
 * output decodes the image entry (EntryDecoder), so the compressed data is proven to
 * decode to the image without a second pass; 'verifyFailed' when it does not.
 * Returns the image's sha256 and size, the archive's size in bytes, and what the entry
 * decoded to (size, CRC32) for `checkWrittenArchive`, which compares that CRC32 with the
 * one the writer computed on the input.
 * Throws BackupError: 'notFound' (no image), 'unwritable', 'diskFull' (partial output
 * removed), 'cancelled', 'badConfig' (level outside 0..9), 'io' (anything else, including
 * a manifest that does not describe the image, or the image changing size while read), or
 * passes through a BackupError thrown by `o.manifest`. On any failure `outPath` is removed.
 * Safe to repeat with the same arguments (each call rewrites `outPath` from scratch).
 */
export async function writeArchive(
  o: WriteArchiveOptions,
): Promise<{ sha256: string; size: number; archiveSize: number; decoded: DecodedEntry }> {
  if (!Number.isInteger(o.level) || o.level < 0 || o.level > 9) {
    throw new BackupError('badConfig', `compression level ${String(o.level)} is not an integer from 0 to 9`);
  }
  throwIfCancelled(o.signal, o.outPath);
  let imageStat;
  try {
    imageStat = await stat(o.imagePath);
  } catch (e) {
    throw fsError(e, o.imagePath, 'read image');
  }
  if (!imageStat.isFile()) throw new BackupError('io', `${o.imagePath}: not a regular file (read image)`, { path: o.imagePath });
  const imageSize = imageStat.size;
  const imageMtime = o.mtime ?? imageStat.mtime;

  let fh: FileHandle;
  try {
    // 'w' truncates a file left at outPath. The fsync and the removal on failure pass their points in fsutil.
    crashPoint('truncate', o.outPath);
    fh = await open(o.outPath, 'w', 0o644);
  } catch (e) {
    throw writeError(e, o.outPath);
  }

  // The first failure wins; everything else is torn down by aborting `stop`.
  const stop = new AbortController();
  let failure: unknown;
  const fail = (e: unknown): void => {
    if (failure !== undefined) return;
    failure = e;
    stop.abort(e);
  };
  const stopped = new Promise<never>((_, reject) => {
    stop.signal.addEventListener('abort', () => reject(failure), { once: true });
  });
  stopped.catch(() => undefined);
  const onCallerAbort = (): void => fail(new BackupError('cancelled', `${o.outPath}: cancelled; partial output removed`, { path: o.outPath }));
  o.signal?.addEventListener('abort', onCallerAbort, { once: true });
  // An abort during the awaits above fired no event.
  if (o.signal?.aborted) onCallerAbort();

  const zip = new ZipWriter();
  const zipFailed = (e: unknown): void => {
    // The zip's only data check: the `size` we declared versus the bytes actually read.
    if (ZipWriterError.is(e, 'sizeChanged')) {
      fail(new BackupError('io', `${o.imagePath}: the image changed size while being archived`, { cause: e, path: o.imagePath }));
    } else {
      fail(new BackupError('io', `${o.outPath}: ${(e as Error)?.message ?? String(e)} (write archive)`, { cause: e, path: o.outPath }));
    }
  };

  const hash = createHash('sha256');
  let done = 0;
  let resolveImage!: (v: { sha256: string; size: number }) => void;
  const imageStreamed = new Promise<{ sha256: string; size: number }>((resolve) => (resolveImage = resolve));
  const tap = new Transform({
    transform(chunk: Buffer, _enc, cb: TransformCallback) {
      hash.update(chunk);
      done += chunk.length;
      o.onProgress?.({ phase: 'compress', done, total: imageSize });
      cb(null, chunk);
    },
    flush(cb: TransformCallback) {
      resolveImage({ sha256: hash.digest('hex'), size: done });
      cb();
    },
  });
  const imageStream = createReadStream(o.imagePath, { highWaterMark: CHUNK, signal: stop.signal });
  imageStream.on('error', (e) => fail(fsError(e, o.imagePath, 'read image')));
  pipeline(imageStream, tap, (e) => {
    if (e) fail(fsError(e, o.imagePath, 'read image'));
  });
  // `size` makes the zip fail when the image grows or shrinks while it is being read.
  zip.addStream(tap, { name: IMAGE_ENTRY, mtime: imageMtime, mode: ENTRY_MODE, level: o.level, size: imageSize }).catch(zipFailed);

  const sealer = new SealingStream();
  // The stream owns and closes the handle; the file is fsynced through a new descriptor.
  const out = fh.createWriteStream({ highWaterMark: CHUNK });
  out.on('error', (e) => fail(writeError(e, o.outPath)));
  sealer.on('error', (e) => fail(new BackupError('io', `${o.outPath}: ${e.message} (sealing archive)`, { cause: e, path: o.outPath })));
  // A second reader of the output decodes the image entry while it is written.
  const decoder = new EntryDecoder(imageSize);
  zip.output.pipe(decoder);
  const written = pipelinePromise(zip.output, sealer, out, { signal: stop.signal }).catch((e: unknown) =>
    fail(writeError(e, o.outPath)),
  );

  try {
    const image = await Promise.race([imageStreamed, stopped]);
    const pending = Promise.resolve().then(() => o.manifest(image));
    pending.catch(() => undefined);
    const manifest = await Promise.race([pending, stopped]);
    checkManifest(manifest, image, o.outPath);
    const json = Buffer.from(JSON.stringify(manifest, null, 2) + '\n', 'utf8');
    if (json.length > MANIFEST_MAX_BYTES) {
      throw new BackupError('io', `${o.outPath}: manifest.json would be ${json.length} bytes (limit ${MANIFEST_MAX_BYTES})`, { path: o.outPath });
    }
    const created = new Date(manifest.created);
    zip.addBuffer(json, { name: MANIFEST_ENTRY, mtime: Number.isNaN(created.getTime()) ? imageMtime : created, mode: ENTRY_MODE, level: o.level }).catch(zipFailed);
    zip.finish(SEAL_PLACEHOLDER).catch(zipFailed);
    await Promise.race([written, stopped]);
    if (failure !== undefined) throw failure;
    let decoded: DecodedEntry;
    try {
      decoded = await Promise.race([decoder.result, stopped]);
    } catch (e) {
      if (failure !== undefined) throw failure;
      throw new BackupError('verifyFailed', `${o.outPath}: ${(e as Error).message}`, { cause: e, path: o.outPath });
    }
    if (decoded.size !== image.size) {
      throw new BackupError('verifyFailed', `${o.outPath}: the archive's image entry decodes to ${decoded.size} bytes, not ${image.size}`, { path: o.outPath });
    }
    await fsyncFile(o.outPath);
    return { sha256: image.sha256, size: image.size, archiveSize: sealer.bytes, decoded };
  } catch (e) {
    fail(e);
    imageStream.destroy();
    await destroyStream(out);
    await removeQuietly(o.outPath);
    throw asBackupError(failure, o.outPath);
  } finally {
    o.signal?.removeEventListener('abort', onCallerAbort);
  }
}

function throwIfCancelled(signal: AbortSignal | undefined, outPath: string): void {
  if (signal?.aborted) throw new BackupError('cancelled', `${outPath}: cancelled before writing`, { path: outPath });
}

/** Maps a failure writing the archive; disk-full says the partial output is gone. */
function writeError(e: unknown, outPath: string): BackupError {
  const be = fsError(e, outPath, 'write archive');
  if (be.reason === 'diskFull') {
    return new BackupError('diskFull', `${outPath}: no space left on device; partial output removed`, { cause: e, path: outPath });
  }
  return be;
}

function asBackupError(e: unknown, outPath: string): BackupError {
  if (e instanceof BackupError) return e;
  return new BackupError('io', `${outPath}: ${(e as Error)?.message ?? String(e)} (write archive)`, { cause: e, path: outPath });
}

/** The manifest must describe exactly the image streamed, or the archive would not read back. */
function checkManifest(m: Manifest, image: { sha256: string; size: number }, outPath: string): void {
  const wrong: string[] = [];
  if (m?.format !== ARCHIVE_FORMAT) wrong.push('format');
  if (m?.formatVersion !== ARCHIVE_FORMAT_VERSION) wrong.push('formatVersion');
  if (m?.image?.entry !== IMAGE_ENTRY) wrong.push('image.entry');
  if (m?.image?.sha256 !== image.sha256) wrong.push('image.sha256');
  if (m?.image?.size !== image.size) wrong.push('image.size');
  if (wrong.length > 0) {
    throw new BackupError('io', `${outPath}: the manifest does not describe the image written (${wrong.join(', ')})`, { path: outPath });
  }
}

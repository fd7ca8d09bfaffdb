/**
 * Reads Lifeboat archives: the manifest alone (fast, for listing), a full check (every
 * byte), and safe extraction of the image. Nothing here trusts the archive: entry names,
 * types, flags and sizes are checked before any data is read into memory or written out,
 * and every byte written is checked against CRC32, the manifest's sha256 and size.
 */
import { createHash } from 'node:crypto';
import { open, type FileHandle } from 'node:fs/promises';
import { Transform, Writable, type Readable, type TransformCallback } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { crc32 } from 'node:zlib';
import * as yauzl from 'yauzl';
import type { ProgressListener } from '../context';
import { BackupError, fsError } from '../errors';
import { destroyStream, fsyncFile, removeQuietly } from '../fsutil';
import { parseManifest } from '../format/manifestSchema';
import { IMAGE_ENTRY, MANIFEST_ENTRY, type Manifest } from '../model';
import { isSealComment, verifySeal } from './archiveSeal';
import { MANIFEST_MAX_BYTES } from './archiveWriter';

/** More entries than a Lifeboat archive could have; beyond this we do not even list them. */
const MAX_ENTRIES = 16;
/**
 * Deflate cannot expand data more than about 1032:1; a larger claimed ratio is a lie
 * (a zip bomb or a damaged size field).
 */
const MAX_DEFLATE_RATIO = 1100;
const KNOWN_ENTRIES = new Set([IMAGE_ENTRY, MANIFEST_ENTRY]);
const S_IFMT = 0o170000;
const S_IFREG = 0o100000;
const S_IFLNK = 0o120000;
const S_IFDIR = 0o040000;
/** "version made by" host systems whose external attributes carry a unix mode. */
const UNIX_HOSTS = new Set([3 /* unix */, 19 /* OS X */]);
const DOS_DIRECTORY = 0x10;
const FLAG_ENCRYPTED = 0x1;
const FLAG_DATA_DESCRIPTOR = 0x8;
const FLAG_STRONG_ENCRYPTION = 0x40;
const utf8 = new TextDecoder('utf-8', { fatal: true });

/** Context for entry checks: the archive's path (for messages) and its size in bytes. */
export interface EntryContext {
  archivePath: string;
  fileSize: number;
}

/**
 * Refuses an entry that a Lifeboat archive could not contain or that would be unsafe to
 * extract: names with `..` segments, absolute names (leading / or \ or a drive letter),
 * backslashes, control characters or invalid UTF-8; symlinks, directories and other
 * non-regular files; encrypted entries; names other than database.sqlite and
 * manifest.json; a compressed size larger than the archive; an uncompressed size that
 * deflate could not produce from the compressed size; a manifest.json over 4 MiB.
 * Throws BackupError 'unsafeArchive' naming the archive and the entry, or 'badArchive'
 * for a compression method other than store/deflate. Pure; safe to repeat.
 */
export function assertSafeEntry(entry: yauzl.Entry, ctx: EntryContext): void {
  const name = checkEntryShape(entry, ctx);
  if (!KNOWN_ENTRIES.has(name)) throw unsafe(ctx, name, 'is not an entry a Lifeboat archive contains');
  if (name === MANIFEST_ENTRY && entry.uncompressedSize > MANIFEST_MAX_BYTES) {
    throw unsafe(ctx, name, `declares ${entry.uncompressedSize} bytes (limit ${MANIFEST_MAX_BYTES})`);
  }
}

/** Everything `assertSafeEntry` checks except the list of known names. Returns the decoded name. */
function checkEntryShape(entry: yauzl.Entry, ctx: EntryContext): string {
  const name = entryName(entry, ctx);
  if (name === '') throw unsafe(ctx, name, 'has an empty name');
  if (/[\u0000-\u001f\u007f]/.test(name)) throw unsafe(ctx, name, 'has control characters in its name');
  if (name.includes('\\')) throw unsafe(ctx, name, 'has a backslash in its name');
  if (name.startsWith('/') || /^[A-Za-z]:/.test(name)) throw unsafe(ctx, name, 'has an absolute path');
  if (name.split('/').includes('..')) throw unsafe(ctx, name, "has a '..' segment");
  if (name.endsWith('/')) throw unsafe(ctx, name, 'is a directory');
  const host = entry.versionMadeBy >>> 8;
  const mode = entry.externalFileAttributes >>> 16;
  if (UNIX_HOSTS.has(host) && (mode & S_IFMT) !== 0 && (mode & S_IFMT) !== S_IFREG) {
    const type = mode & S_IFMT;
    throw unsafe(ctx, name, type === S_IFLNK ? 'is a symbolic link' : type === S_IFDIR ? 'is a directory' : 'is not a regular file');
  }
  if (entry.externalFileAttributes & DOS_DIRECTORY) throw unsafe(ctx, name, 'is a directory');
  if (entry.generalPurposeBitFlag & (FLAG_ENCRYPTED | FLAG_STRONG_ENCRYPTION)) throw unsafe(ctx, name, 'is encrypted');
  if (entry.compressionMethod !== 0 && entry.compressionMethod !== 8) {
    throw new BackupError('badArchive', `${ctx.archivePath}: entry ${JSON.stringify(name)} uses unsupported compression method ${entry.compressionMethod}`, { path: ctx.archivePath });
  }
  if (entry.compressedSize > ctx.fileSize) {
    throw unsafe(ctx, name, `declares ${entry.compressedSize} compressed bytes in a ${ctx.fileSize}-byte archive`);
  }
  const limit = entry.compressionMethod === 0 ? entry.compressedSize : entry.compressedSize * MAX_DEFLATE_RATIO + 65536;
  if (entry.uncompressedSize > limit) {
    throw unsafe(ctx, name, `declares ${entry.uncompressedSize} bytes from ${entry.compressedSize} compressed bytes`);
  }
  return name;
}

function entryName(entry: yauzl.Entry, ctx: EntryContext): string {
  try {
    return utf8.decode(entry.fileNameRaw);
  } catch {
    throw new BackupError('unsafeArchive', `${ctx.archivePath}: an entry name is not valid UTF-8`, { path: ctx.archivePath });
  }
}

function unsafe(ctx: EntryContext, name: string, what: string): BackupError {
  return new BackupError('unsafeArchive', `${ctx.archivePath}: entry ${JSON.stringify(name)} ${what}`, { path: ctx.archivePath });
}

function bad(archivePath: string, what: string, cause?: unknown): BackupError {
  return new BackupError('badArchive', `${archivePath}: ${what}`, { cause, path: archivePath });
}

/** Maps an error from yauzl: fs errors keep their meaning, anything else is a malformed zip. */
function zipError(e: unknown, archivePath: string): BackupError {
  if (e instanceof BackupError) return e;
  const code = (e as NodeJS.ErrnoException | undefined)?.code;
  if (typeof code === 'string' && /^E[A-Z]+$/.test(code)) return fsError(e, archivePath, 'read archive');
  const msg = ((e as Error)?.message ?? String(e)).split('\n')[0];
  return bad(archivePath, `not a readable zip archive (${msg})`, e);
}

/** An open archive whose entry list, manifest and sizes passed every check. */
interface Inspected {
  zip: yauzl.ZipFile;
  ctx: EntryContext;
  image: yauzl.Entry;
  manifestEntry: yauzl.Entry;
  manifest: Manifest;
}

/**
 * Opens and checks everything short of decompressing the image. `deep` also compares each
 * local header with its central-directory record. On failure the zip is closed.
 */
async function inspect(archivePath: string, deep: boolean): Promise<Inspected> {
  let zip: yauzl.ZipFile;
  try {
    // Names are decoded and judged here, not by yauzl, so that every refusal is ours.
    zip = await yauzl.openPromise(archivePath, {
      lazyEntries: true,
      autoClose: false,
      decodeStrings: false,
      validateEntrySizes: true,
    });
  } catch (e) {
    throw zipError(e, archivePath);
  }
  try {
    const ctx: EntryContext = { archivePath, fileSize: zip.fileSize };
    if (zip.entryCount > MAX_ENTRIES) {
      throw new BackupError('unsafeArchive', `${archivePath}: ${zip.entryCount} entries (a Lifeboat archive has 2)`, { path: archivePath });
    }
    const entries = await listEntries(zip, archivePath);
    const seen = new Set<string>();
    for (const entry of entries) {
      const name = checkEntryShape(entry, ctx);
      if (seen.has(name)) throw unsafe(ctx, name, 'appears more than once');
      seen.add(name);
    }
    const byName = (n: string) => entries.find((e) => utf8.decode(e.fileNameRaw) === n);
    const manifestEntry = byName(MANIFEST_ENTRY);
    if (!manifestEntry) throw bad(archivePath, 'no manifest.json (not a Lifeboat archive)');
    assertSafeEntry(manifestEntry, ctx);
    if (deep) await checkLocalHeader(zip, manifestEntry, ctx);
    // The version is judged before the rest of the layout, which a newer format may change.
    const manifest = readManifestJson(await readSmallEntry(zip, manifestEntry, ctx), archivePath);
    for (const entry of entries) assertSafeEntry(entry, ctx);
    const image = byName(IMAGE_ENTRY);
    if (!image) throw bad(archivePath, 'no database.sqlite entry');
    if (image.uncompressedSize !== manifest.image.size) {
      throw unsafe(ctx, IMAGE_ENTRY, `declares ${image.uncompressedSize} bytes but the manifest says ${manifest.image.size}`);
    }
    if (deep) await checkLocalHeader(zip, image, ctx);
    if (!isSealComment(zip.comment as unknown as Buffer)) throw bad(archivePath, 'no Lifeboat seal in the zip comment');
    return { zip, ctx, image, manifestEntry, manifest };
  } catch (e) {
    zip.close();
    throw zipError(e, archivePath);
  }
}

async function listEntries(zip: yauzl.ZipFile, archivePath: string): Promise<yauzl.Entry[]> {
  const entries: yauzl.Entry[] = [];
  await new Promise<void>((resolve, reject) => {
    zip.on('entry', (entry: yauzl.Entry) => {
      entries.push(entry);
      if (entries.length > MAX_ENTRIES) {
        reject(new BackupError('unsafeArchive', `${archivePath}: more than ${MAX_ENTRIES} entries`, { path: archivePath }));
        return;
      }
      zip.readEntry();
    });
    zip.once('end', () => resolve());
    zip.once('error', reject);
    zip.readEntry();
  });
  return entries;
}

/** The local header repeats the name and flags; a reader that trusts it must see the same entry. */
async function checkLocalHeader(zip: yauzl.ZipFile, entry: yauzl.Entry, ctx: EntryContext): Promise<void> {
  const local = await zip.readLocalFileHeaderPromise(entry);
  const name = utf8.decode(entry.fileNameRaw);
  const differs: string[] = [];
  if (!local.fileName.equals(entry.fileNameRaw)) differs.push('name');
  if (local.compressionMethod !== entry.compressionMethod) differs.push('compression method');
  if (local.generalPurposeBitFlag !== entry.generalPurposeBitFlag) differs.push('flags');
  if (local.lastModFileDate !== entry.lastModFileDate || local.lastModFileTime !== entry.lastModFileTime) differs.push('time');
  if (!(local.generalPurposeBitFlag & FLAG_DATA_DESCRIPTOR)) {
    if (local.crc32 !== entry.crc32) differs.push('crc32');
    // 0xffffffff defers to a zip64 extra field; the central record's value is the one used.
    if (local.compressedSize !== 0xffffffff && local.compressedSize !== entry.compressedSize) differs.push('compressed size');
    if (local.uncompressedSize !== 0xffffffff && local.uncompressedSize !== entry.uncompressedSize) differs.push('size');
  }
  if (differs.length > 0) {
    throw bad(ctx.archivePath, `the local header of ${JSON.stringify(name)} disagrees with the central directory (${differs.join(', ')})`);
  }
}

/** Reads a small entry (already size-checked) into memory and checks its CRC32. */
async function readSmallEntry(zip: yauzl.ZipFile, entry: yauzl.Entry, ctx: EntryContext): Promise<Buffer> {
  const name = utf8.decode(entry.fileNameRaw);
  let stream: Readable;
  try {
    stream = await zip.openReadStreamPromise(entry);
  } catch (e) {
    throw bad(ctx.archivePath, `${name}: ${(e as Error).message}`, e);
  }
  const chunks: Buffer[] = [];
  let size = 0;
  let crc = 0;
  try {
    for await (const chunk of stream) {
      const b = chunk as Buffer;
      size += b.length;
      // validateEntrySizes caps the stream at the declared size, itself capped; this is a backstop.
      if (size > MANIFEST_MAX_BYTES) throw unsafe(ctx, name, `is larger than ${MANIFEST_MAX_BYTES} bytes`);
      crc = crc32(b, crc);
      chunks.push(b);
    }
  } catch (e) {
    stream.destroy();
    if (e instanceof BackupError) throw e;
    throw bad(ctx.archivePath, `${name}: ${(e as Error).message}`, e);
  }
  if (crc >>> 0 !== entry.crc32) throw bad(ctx.archivePath, `${name}: CRC32 mismatch (damaged)`);
  return Buffer.concat(chunks);
}

/** Decodes manifest.json and checks it against the schema of the version it declares (see manifestSchema.ts). */
function readManifestJson(bytes: Buffer, archivePath: string): Manifest {
  let json: unknown;
  try {
    json = JSON.parse(utf8.decode(bytes));
  } catch (e) {
    throw bad(archivePath, 'manifest.json is not valid UTF-8 JSON', e);
  }
  return parseManifest(json, archivePath, [1]);
}

/**
 * Reads and checks an archive's manifest without decompressing the image: the entry list
 * is safe and exactly database.sqlite + manifest.json, manifest.json (at most 4 MiB)
 * matches its CRC32 and parses, its format and version are known, its image size equals
 * the image entry's, and the zip carries a Lifeboat seal (its digest is checked only by
 * `checkArchive`). A handful of small reads: fit for listing thousands of archives.
 * Throws BackupError: 'badArchive' (not a zip, truncated, empty, no or garbled manifest),
 * 'unsafeArchive', 'unsupportedFormat' (a newer formatVersion, named), 'notFound' or
 * other fs reasons for the file itself. Read-only; safe to repeat.
 */
export async function readManifest(archivePath: string): Promise<Manifest> {
  const a = await inspect(archivePath, false);
  a.zip.close();
  return a.manifest;
}

/** What `checkArchive` found. `ok` is true only when `problems` is empty. */
export interface CheckResult {
  /** The manifest, when it could be read. */
  manifest?: Manifest;
  ok: boolean;
  /** One line each, naming the archive or entry. */
  problems: string[];
}

/**
 * Reads every byte of the archive: the checks of `readManifest` plus the local headers,
 * every entry decompressed with its CRC32 compared, the image's sha256 and size compared
 * with the manifest, and the seal over the whole file. Damage of any kind is reported in
 * `problems` (ok false), never thrown. Rejects only with BackupError 'cancelled' when
 * `signal` aborts. Progress: phase 'check', bytes of the image. Read-only; safe to repeat.
 */
export async function checkArchive(
  archivePath: string,
  opts: { signal?: AbortSignal; onProgress?: ProgressListener } = {},
): Promise<CheckResult> {
  const a = await inspectForCheck(archivePath, opts.signal);
  if ('problems' in a) return a;
  const problems: string[] = [];
  // The entry's data and the seal over the whole file are independent reads: run them
  // together, so that inflating (libuv's pool) overlaps hashing (the main thread).
  const imageCheck = (async () => {
    try {
      const got = await streamImage(a, undefined, opts.signal, (done, total) => opts.onProgress?.({ phase: 'check', done, total }));
      return imageProblems(a, got).map((p) => `${archivePath}: ${p}`);
    } catch (e) {
      throwIfCancelled(opts.signal, archivePath);
      return [messageOf(e)];
    } finally {
      a.zip.close();
    }
  })();
  const sealCheck = (async () => {
    try {
      const sealProblem = await verifySeal(archivePath, opts.signal);
      return sealProblem ? [`${archivePath}: ${sealProblem}`] : [];
    } catch (e) {
      throwIfCancelled(opts.signal, archivePath);
      return [messageOf(fsError(e, archivePath, 'read archive'))];
    }
  })();
  const [imageProblemsFound, sealProblems] = await Promise.all([imageCheck, sealCheck]);
  problems.push(...imageProblemsFound, ...sealProblems);
  return { manifest: a.manifest, ok: problems.length === 0, problems };
}

/** `inspect` for the checks: damage becomes a failed CheckResult; only cancellation throws. */
async function inspectForCheck(archivePath: string, signal: AbortSignal | undefined): Promise<Inspected | CheckResult> {
  throwIfCancelled(signal, archivePath);
  try {
    return await inspect(archivePath, true);
  } catch (e) {
    throwIfCancelled(signal, archivePath);
    return { ok: false, problems: [messageOf(e)] };
  }
}

/**
 * The read-back of an archive just written by `writeArchive`, whose image entry was
 * decoded while it was written (`decoded`): the structure as `readManifest` checks it,
 * the local headers against the central directory, the seal over every byte of the file
 * (so the file holds exactly the bytes that were decoded), the entry's CRC32 (taken on
 * the image as it was read) and the manifest's size against what was decoded. Together these prove what a full
 * `checkArchive` proves, without inflating the image a second time. Damage is reported
 * in problems, never thrown; only cancellation rejects.
 */
export async function checkWrittenArchive(
  archivePath: string,
  decoded: { size: number; crc32: number },
  opts: { signal?: AbortSignal } = {},
): Promise<CheckResult> {
  const a = await inspectForCheck(archivePath, opts.signal);
  if ('problems' in a) return a;
  a.zip.close();
  const problems: string[] = [];
  // The entry's CRC32 was computed by the writer on the image as it was read (whose
  // sha256 the manifest carries); the decoded CRC32 is of what the stored data inflates to.
  if (a.image.crc32 >>> 0 !== decoded.crc32 >>> 0) problems.push(`${archivePath}: the image entry's data does not decode to the image (CRC32)`);
  if (a.manifest.image.size !== decoded.size || a.image.uncompressedSize !== decoded.size) {
    problems.push(`${archivePath}: the image entry decodes to ${decoded.size} bytes, not ${a.manifest.image.size}`);
  }
  try {
    const sealProblem = await verifySeal(archivePath, opts.signal);
    if (sealProblem) problems.push(`${archivePath}: ${sealProblem}`);
  } catch (e) {
    throwIfCancelled(opts.signal, archivePath);
    problems.push(messageOf(fsError(e, archivePath, 'read archive')));
  }
  return { manifest: a.manifest, ok: problems.length === 0, problems };
}

/**
 * Writes the image to `outPath` (a temp path chosen by the caller; a file there is
 * replaced) and fsyncs it. All archive checks of `readManifest` plus the local headers run
 * before anything is written; the bytes written are checked against the entry's CRC32 and
 * the manifest's sha256 and size. Returns the manifest and the image's sha256 and size.
 * Throws BackupError: 'badArchive' naming the archive for any mismatch or damage,
 * 'unsafeArchive', 'unsupportedFormat', 'cancelled', or fs reasons ('unwritable',
 * 'diskFull', 'io') for `outPath`. On any failure `outPath` is removed. Safe to repeat.
 */
export async function extractImage(
  archivePath: string,
  outPath: string,
  opts: { signal?: AbortSignal; onProgress?: ProgressListener } = {},
): Promise<{ manifest: Manifest; sha256: string; size: number }> {
  throwIfCancelled(opts.signal, archivePath);
  const a = await inspect(archivePath, true);
  try {
    let fh: FileHandle;
    try {
      fh = await open(outPath, 'w', 0o644);
    } catch (e) {
      throw fsError(e, outPath, 'write image');
    }
    const got = await streamImage(a, { fh, path: outPath }, opts.signal, (done, total) =>
      opts.onProgress?.({ phase: 'extract', done, total }),
    );
    const problems = imageProblems(a, got);
    if (problems.length > 0) throw bad(archivePath, `${problems.join('; ')}; nothing restored`);
    await fsyncFile(outPath);
    return { manifest: a.manifest, sha256: got.sha256, size: got.size };
  } catch (e) {
    await removeQuietly(outPath);
    if (opts.signal?.aborted) throw cancelled(archivePath);
    throw e;
  } finally {
    a.zip.close();
  }
}

interface Streamed {
  crc: number;
  sha256: string;
  size: number;
}

/**
 * Decompresses the image entry through CRC32 + sha256 + a byte count into `sink` (or
 * nowhere). Damage (inflate errors, wrong length) rejects with 'badArchive'; a failing
 * sink with its fs reason; an abort with 'cancelled'.
 */
async function streamImage(
  a: Inspected,
  sink: { fh: FileHandle; path: string } | undefined,
  signal: AbortSignal | undefined,
  progress: (done: number, total: number) => void,
): Promise<Streamed> {
  const total = a.image.uncompressedSize;
  // The pipeline passes an upstream error on to the sink too; only the sink's own errors are fs errors.
  let upstreamError: unknown;
  let sinkError: unknown;
  // A file stream owns and closes the handle, on success and on failure alike.
  const out: Writable = sink
    ? sink.fh.createWriteStream({ highWaterMark: 1 << 20 })
    : new Writable({ write: (_c, _e, cb) => cb() });
  out.on('error', (e) => {
    if (e !== upstreamError) sinkError ??= e;
  });
  let source: Readable;
  try {
    source = await a.zip.openReadStreamPromise(a.image);
  } catch (e) {
    await destroyStream(out);
    throw bad(a.ctx.archivePath, `${IMAGE_ENTRY}: ${(e as Error).message}`, e);
  }
  let crc = 0;
  let size = 0;
  const hash = createHash('sha256');
  const tap = new Transform({
    transform(chunk: Buffer, _enc, cb: TransformCallback) {
      crc = crc32(chunk, crc);
      hash.update(chunk);
      size += chunk.length;
      progress(size, total);
      cb(null, chunk);
    },
  });
  source.on('error', (e) => (upstreamError ??= e));
  tap.on('error', (e) => (upstreamError ??= e));
  try {
    await pipeline(source, tap, out, { signal });
  } catch (e) {
    await destroyStream(out);
    if (signal?.aborted) throw cancelled(a.ctx.archivePath);
    if (sink && sinkError !== undefined) throw fsError(sinkError, sink.path, 'write image');
    throw bad(a.ctx.archivePath, `${IMAGE_ENTRY} is damaged (${(e as Error).message})`, e);
  }
  return { crc: crc >>> 0, sha256: hash.digest('hex'), size };
}

/** Mismatches between what was decompressed and what the entry and manifest promise. */
function imageProblems(a: Inspected, got: Streamed): string[] {
  const p: string[] = [];
  if (got.crc !== a.image.crc32) p.push(`${IMAGE_ENTRY}: CRC32 mismatch`);
  if (got.size !== a.manifest.image.size) p.push(`${IMAGE_ENTRY}: ${got.size} bytes, the manifest says ${a.manifest.image.size}`);
  if (got.sha256 !== a.manifest.image.sha256) p.push(`${IMAGE_ENTRY}: sha256 differs from the manifest`);
  return p;
}

function cancelled(archivePath: string): BackupError {
  return new BackupError('cancelled', `${archivePath}: cancelled`, { path: archivePath });
}

function throwIfCancelled(signal: AbortSignal | undefined, archivePath: string): void {
  if (signal?.aborted) throw cancelled(archivePath);
}

function messageOf(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}

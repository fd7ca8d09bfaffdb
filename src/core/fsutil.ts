/**
 * Small file-system helpers for durable writes, shared across the engine. They take
 * plain paths, use only `node:fs`, and map failures to `BackupError` through `fsError`.
 * Every rename, unlink and fsync here passes a crash point first (see faults.ts).
 */
import { randomBytes } from 'node:crypto';
import type { Stream } from 'node:stream';
import { open, realpath, rename, rm, type FileHandle } from 'node:fs/promises';
import path from 'node:path';
import { fsError } from './errors';
import { crashPoint } from './faults';

/**
 * Flushes a file's data and metadata to stable storage (fsync), through a new descriptor:
 * fsync flushes the file, not the descriptor, so this works after a stream closed it.
 * Throws BackupError (via `fsError`) when the file cannot be opened or synced.
 * Safe to repeat.
 */
export async function fsyncFile(file: string): Promise<void> {
  let fh;
  try {
    // Read-write: Windows' FlushFileBuffers needs write access; 'r+' never creates or truncates.
    fh = await open(file, 'r+');
    crashPoint('fsync', file);
    await fh.sync();
  } catch (e) {
    throw fsError(e, file, 'fsync');
  } finally {
    await fh?.close().catch(() => undefined);
  }
}

/**
 * Flushes a directory's entries (a create, rename or unlink inside it) to stable storage.
 * On Windows, where directories cannot be opened for syncing, it does nothing.
 * Throws BackupError when the directory cannot be opened or synced. Safe to repeat.
 */
export async function fsyncDir(dir: string): Promise<void> {
  if (process.platform === 'win32') return;
  let fh;
  try {
    fh = await open(dir, 'r');
    crashPoint('fsyncDir', dir);
    await fh.sync();
  } catch (e) {
    // Some file systems (certain network and FUSE mounts) refuse fsync on a directory;
    // the data itself is already synced, so there is nothing more we can do there.
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'EINVAL' || code === 'ENOTSUP' || code === 'EISDIR') return;
    throw fsError(e, dir, 'fsync directory');
  } finally {
    await fh?.close().catch(() => undefined);
  }
}

/**
 * Writes `data` to `file` so that readers see either the old content or the whole new
 * content, never a part: a temp file beside it, fsync, rename over `file`, fsync of the
 * directory. `mode` applies to a newly created file (default 0o644).
 * Throws BackupError ('unwritable', 'diskFull', 'notFound' for a missing directory, 'io');
 * on failure the temp file is removed and `file` is left as it was. Safe to repeat.
 */
export async function writeFileAtomic(
  file: string,
  data: string | Uint8Array,
  opts: { mode?: number } = {},
): Promise<void> {
  const dir = path.dirname(file);
  const tmp = path.join(dir, `.${path.basename(file)}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`);
  let fh;
  try {
    fh = await open(tmp, 'wx', opts.mode ?? 0o644);
    await fh.writeFile(data);
    crashPoint('fsync', tmp);
    await fh.sync();
    await fh.close();
    fh = undefined;
    crashPoint('rename', file);
    await rename(tmp, file);
  } catch (e) {
    await fh?.close().catch(() => undefined);
    await removeQuietly(tmp);
    throw fsError(e, file, 'write');
  }
  await fsyncDir(dir);
}

/**
 * Removes a file or a directory tree if it exists. Never throws: it is meant for
 * cleanup paths where the original error matters more. Returns true when nothing is
 * left at `target` afterwards. Safe to repeat.
 */
export async function removeQuietly(target: string): Promise<boolean> {
  try {
    crashPoint('unlink', target);
    await rm(target, { force: true, recursive: true, maxRetries: 2 });
    return true;
  } catch {
    return false;
  }
}

/**
 * Destroys a stream (if not already) and resolves once it has closed, so that a file
 * stream's descriptor is released before the caller removes or reopens the file.
 * Never rejects. Safe to repeat.
 */
export async function destroyStream(stream: Stream & { destroy(): unknown; closed?: boolean }): Promise<void> {
  if (stream.closed) return;
  await new Promise<void>((resolve) => {
    stream.once('close', () => resolve());
    stream.on('error', () => undefined);
    stream.destroy();
  });
}

/**
 * The canonical absolute path of a file that may not exist yet: symlinks resolved (the
 * file's own, or its folder's), so that one database seen through two paths is one
 * database, and a restore over a symlink replaces the real file. Never throws.
 */
export async function canonicalPath(p: string): Promise<string> {
  const abs = path.resolve(p);
  try {
    return await realpath(abs);
  } catch {
    try {
      return path.join(await realpath(path.dirname(abs)), path.basename(abs));
    } catch {
      return abs;
    }
  }
}

/** Writes every byte of `bufs` to `fh` from `position` on, going on after a short write. */
export async function writevAll(fh: FileHandle, bufs: Buffer[], position: number): Promise<void> {
  let rest = bufs;
  let at = position;
  const total = bufs.reduce((n, b) => n + b.length, 0);
  for (let done = 0; done < total; ) {
    const wrote = (await fh.writev(rest, at)).bytesWritten;
    done += wrote;
    at += wrote;
    let skip = wrote;
    const next: Buffer[] = [];
    for (const b of rest) {
      if (skip >= b.length) skip -= b.length;
      else {
        next.push(skip ? b.subarray(skip) : b);
        skip = 0;
      }
    }
    rest = next;
  }
}

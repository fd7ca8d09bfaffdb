import { randomBytes } from 'node:crypto';
import { createReadStream, createWriteStream, promises as fs } from 'node:fs';
import path from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { pathToFileURL } from 'node:url';
import { BackupError, fsError } from '../../errors';
import { crashPoint } from '../../faults';
import { fsyncDir, fsyncFile } from '../../fsutil';
import { assertObjectName, type ByteRange, type StoredObject } from '../store';
import type { ObjectBackend, PutBody, PutOptions, PutSource } from './objectBackend';

/** Temp files of uploads in progress: `<name>.tmp-<pid>-<hex>`, beside their target. */
const TEMP = /\.tmp-\d+-[0-9a-f]{8}$/;

/**
 * The objects of an off-site folder (`file:///mnt/nas/backups`: a NAS mount, a synced
 * folder, a second disk). As for local backups: a temp file beside the target, fsynced,
 * renamed into place, and the folder fsynced.
 */
export class FolderBackend implements ObjectBackend {
  readonly url: string;
  readonly label: string;

  constructor(readonly root: string) {
    this.root = path.resolve(root);
    this.url = pathToFileURL(this.root).href;
    this.label = this.root;
  }

  private file(name: string): string {
    assertObjectName(name);
    return path.join(this.root, ...name.split('/'));
  }

  async connect(o: { create?: boolean } = {}): Promise<void> {
    try {
      const st = await fs.stat(this.root);
      if (!st.isDirectory()) throw new BackupError('unwritable', `${this.url}: not a folder`);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw fsError(e, this.root, 'opening the off-site folder');
      if (!o.create) throw new BackupError('notFound', `${this.url}: no such folder`, { cause: e, path: this.root });
      try {
        await fs.mkdir(this.root, { recursive: true });
      } catch (e2) {
        throw fsError(e2, this.root, 'creating the off-site folder');
      }
    }
  }

  async list(prefix: string): Promise<StoredObject[]> {
    const out: StoredObject[] = [];
    const walk = async (dir: string, rel: string): Promise<void> => {
      let entries;
      try {
        entries = await fs.readdir(dir, { withFileTypes: true });
      } catch (e) {
        const code = (e as NodeJS.ErrnoException).code;
        if (code === 'ENOENT' || code === 'ENOTDIR') return;
        throw fsError(e, dir, 'listing the off-site folder');
      }
      for (const ent of entries) {
        const name = rel ? `${rel}/${ent.name}` : ent.name;
        if (ent.isDirectory()) {
          if (prefix.startsWith(`${name}/`) || name.startsWith(prefix) || `${name}/`.startsWith(prefix)) await walk(path.join(dir, ent.name), name);
        } else if (ent.isFile() && name.startsWith(prefix) && !TEMP.test(name)) {
          const st = await fs.stat(path.join(dir, ent.name)).catch(() => undefined);
          if (st) out.push({ name, size: st.size, mtimeMs: st.mtimeMs });
        }
      }
    };
    await walk(this.root, '');
    return out;
  }

  async stat(name: string): Promise<StoredObject | undefined> {
    try {
      const st = await fs.stat(this.file(name));
      return st.isFile() ? { name, size: st.size, mtimeMs: st.mtimeMs } : undefined;
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
      throw fsError(e, this.file(name), 'reading the off-site folder');
    }
  }

  async get(name: string, range: ByteRange = {}): Promise<Readable> {
    const p = this.file(name);
    let fh;
    try {
      fh = await fs.open(p, 'r');
    } catch (e) {
      throw fsError(e, p, 'reading the off-site folder');
    }
    if (range.length === 0) {
      await fh.close();
      return Readable.from([]);
    }
    const start = range.offset ?? 0;
    return createReadStream(p, { fd: fh, start, end: range.length === undefined ? undefined : start + range.length - 1 });
  }

  put(name: string, body: PutBody, o: PutOptions): Promise<void> {
    if ('file' in body) return this.write(name, body.size, (tmp) => fs.copyFile(body.file, tmp), o);
    return this.write(name, body.bytes.length, (tmp) => fs.writeFile(tmp, body.bytes), o);
  }

  putSource(name: string, body: PutSource, o: PutOptions): Promise<void> {
    return this.write(name, body.size, (tmp) => pipeline(body.open(), createWriteStream(tmp), { signal: o.signal }), o);
  }

  /** Writes the temp file with `fill`, then fsync, rename, fsync of the folder; checks the size. */
  private async write(name: string, size: number, fill: (tmp: string) => Promise<void>, o: PutOptions): Promise<void> {
    const target = this.file(name);
    const tmp = `${target}.tmp-${process.pid}-${randomBytes(4).toString('hex')}`;
    try {
      await fs.mkdir(path.dirname(target), { recursive: true });
      await fill(tmp);
      if (o.signal?.aborted) throw new BackupError('cancelled', 'cancelled');
      crashPoint('fsync', tmp);
      await fsyncFile(tmp);
      crashPoint('rename', target);
      await fs.rename(tmp, target);
      await fsyncDir(path.dirname(target));
    } catch (e) {
      await fs.rm(tmp, { force: true });
      throw fsError(e, target, 'writing to the off-site folder');
    }
    o.onProgress?.(size);
    const st = await this.stat(name);
    if (st?.size !== size) throw new BackupError('io', `${target}: the copy did not arrive whole (size ${st?.size ?? 'none'}, expected ${size})`);
  }

  async delete(name: string): Promise<void> {
    const p = this.file(name);
    try {
      await fs.unlink(p);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') return;
      throw fsError(e, p, 'deleting from the off-site folder');
    }
    await fsyncDir(path.dirname(p));
  }

  async sweep(olderThanMs: number): Promise<number> {
    let removed = 0;
    const now = Date.now();
    const walk = async (dir: string): Promise<void> => {
      for (const ent of await fs.readdir(dir, { withFileTypes: true }).catch(() => [])) {
        const p = path.join(dir, ent.name);
        if (ent.isDirectory()) await walk(p);
        else if (TEMP.test(ent.name)) {
          const st = await fs.stat(p).catch(() => undefined);
          if (st && now - st.mtimeMs >= olderThanMs) {
            await fs.rm(p, { force: true });
            removed++;
          }
        }
      }
    };
    await walk(this.root);
    return removed;
  }

  async close(): Promise<void> {}
}

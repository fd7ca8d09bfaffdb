import { createReadStream, promises as fs } from 'node:fs';
import path from 'node:path';
import { Readable } from 'node:stream';
import { pathToFileURL } from 'node:url';
import { BackupLog } from '../catalog/backupLog';
import { withLock, type LockOptions } from '../catalog/lock';
import { systemClock, type Clock } from '../context';
import { BackupError, fsError } from '../errors';
import { crashPoint } from '../faults';
import { fsyncDir, fsyncFile, writeFileAtomic } from '../fsutil';
import { processAlive } from '../processInfo';
import { assertObjectName, type BackupStore, type ByteRange, type StoredObject, type StoreLog } from './store';

/** Lifeboat's own bookkeeping inside a store; never listed as backups. */
export const META_FOLDER = '.lifeboat';
/** Partial files in progress: never at the top level, never named like a backup. */
const TMP_FOLDER = `${META_FOLDER}/tmp`;
/** Folders of bookkeeping written atomically, where a dead writer's temp file may be left. */
const SWEPT_FOLDERS = [META_FOLDER, `${META_FOLDER}/cache`, `${META_FOLDER}/leases`];

/**
 * A backup store in a local folder (also a NAS mount or a synced folder): objects are
 * files under the root. Crash safety as for the database itself: objects are built in
 * `.lifeboat/tmp` (the same file system), fsynced, then linked or renamed into place,
 * and the folder is fsynced; a crash leaves the old state or the new one, plus temp
 * files that `open()` removes once their writer is dead.
 */
export class LocalDirStore implements BackupStore {
  readonly root: string;
  readonly url: string;
  readonly label: string;
  readonly log: StoreLog;
  private readonly clock: Clock;
  private readonly lockOptions: LockOptions;

  constructor(root: string, o: { clock?: Clock; lock?: LockOptions } = {}) {
    this.root = path.resolve(root);
    this.url = pathToFileURL(this.root).href;
    this.label = this.root;
    this.log = new BackupLog(this.file(`${META_FOLDER}/log.jsonl`));
    this.clock = o.clock ?? systemClock;
    this.lockOptions = { clock: this.clock, ...o.lock };
  }

  /** The folder store holding a local file, and the file's object name in it. */
  static forFile(file: string, o: { clock?: Clock; lock?: LockOptions } = {}): { store: LocalDirStore; object: string } {
    const p = path.resolve(file);
    return { store: new LocalDirStore(path.dirname(p), o), object: path.basename(p) };
  }

  /** The local path of an object name. */
  file(name: string): string {
    assertObjectName(name);
    return path.join(this.root, ...name.split('/'));
  }

  localPath(name: string): string {
    return this.file(name);
  }

  async open(): Promise<void> {
    const tmp = this.file(TMP_FOLDER);
    try {
      await fs.mkdir(tmp, { recursive: true });
      await fs.access(this.root, fs.constants?.W_OK ?? 2);
      for (const n of await fs.readdir(tmp)) {
        const pid = Number(/\.(\d+)\.[0-9a-f]{8}\./.exec(n)?.[1]);
        if (Number.isInteger(pid) && pid > 0 && !processAlive(pid)) {
          crashPoint('unlink', path.join(tmp, n));
          await fs.rm(path.join(tmp, n), { force: true });
        }
      }
      // The temp files of atomic writes (`.<name>.<pid>.<hex>.tmp`) a dead writer left beside
      // the bookkeeping it was replacing.
      for (const folder of SWEPT_FOLDERS) {
        const dir = this.file(folder);
        for (const n of await fs.readdir(dir).catch(() => [] as string[])) {
          const pid = Number(/^\..*\.(\d+)\.[0-9a-f]{8}\.tmp$/.exec(n)?.[1]);
          if (Number.isInteger(pid) && pid > 0 && !processAlive(pid)) {
            crashPoint('unlink', path.join(dir, n));
            await fs.rm(path.join(dir, n), { force: true });
          }
        }
      }
    } catch (e) {
      const err = fsError(e, this.root, 'preparing the backup directory');
      if (err.reason === 'notFound' || err.reason === 'io') {
        throw new BackupError('unwritable', `${this.root}: the backup directory cannot be created (${(e as Error).message})`, { cause: e, path: this.root });
      }
      throw err;
    }
  }

  async list(folder = ''): Promise<StoredObject[]> {
    const dir = folder ? this.file(folder) : this.root;
    let entries;
    try {
      entries = await fs.readdir(dir, { withFileTypes: true });
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      if (code === 'ENOENT' || code === 'ENOTDIR') return [];
      throw fsError(e, dir, 'listing backups');
    }
    const out: StoredObject[] = [];
    for (const ent of entries) {
      if (!ent.isFile() && !ent.isSymbolicLink()) continue;
      const name = folder ? `${folder}/${ent.name}` : ent.name;
      // A file that vanished between readdir and stat (deleted by another process) is simply gone.
      const st = await this.stat(name).catch(() => undefined);
      if (st) out.push(st);
    }
    return out;
  }

  async stat(name: string): Promise<StoredObject | undefined> {
    try {
      const st = await fs.stat(this.file(name));
      return st.isFile() ? { name, size: st.size, mtimeMs: st.mtimeMs } : undefined;
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
      throw fsError(e, this.file(name), 'reading a backup');
    }
  }

  async read(name: string, range: ByteRange = {}): Promise<Readable> {
    const p = this.file(name);
    // Open first, so that a missing object fails here and not in the consumer's stream.
    let fh;
    try {
      fh = await fs.open(p, 'r');
    } catch (e) {
      throw fsError(e, p, 'reading a backup');
    }
    const start = range.offset ?? 0;
    const end = range.length === undefined ? undefined : start + range.length - 1;
    if (range.length === 0) {
      await fh.close();
      return Readable.from([]);
    }
    return createReadStream(p, { fd: fh, start, end, autoClose: true });
  }

  async readBytes(name: string, range: ByteRange = {}): Promise<Buffer> {
    const p = this.file(name);
    let fh;
    try {
      fh = await fs.open(p, 'r');
      if (range.offset === undefined && range.length === undefined) return await fh.readFile();
      const size = (await fh.stat()).size;
      const offset = Math.min(range.offset ?? 0, size);
      const length = Math.min(range.length ?? size - offset, size - offset);
      // Unfilled bytes are never returned (a short read returns only what was read).
      const buf = Buffer.allocUnsafe(length);
      let done = 0;
      while (done < length) {
        const { bytesRead } = await fh.read(buf, done, length - done, offset + done);
        if (bytesRead === 0) break;
        done += bytesRead;
      }
      return done === length ? buf : buf.subarray(0, done);
    } catch (e) {
      throw fsError(e, p, 'reading a backup');
    } finally {
      await fh?.close();
    }
  }

  async localCopy(name: string): Promise<{ path: string; release(): Promise<void> }> {
    const p = this.file(name);
    if (!(await this.stat(name))) throw new BackupError('notFound', `${p}: no such file or directory (reading a backup)`, { path: p });
    return { path: p, release: async () => undefined };
  }

  async scratchDir(): Promise<string> {
    const tmp = this.file(TMP_FOLDER);
    try {
      await fs.mkdir(tmp, { recursive: true });
      return tmp;
    } catch (e) {
      throw fsError(e, tmp, 'preparing the backup directory');
    }
  }

  async publishFile(file: string, name: string, o: { overwrite?: boolean } = {}): Promise<StoredObject> {
    const target = this.file(name);
    const dir = path.dirname(target);
    try {
      await fs.mkdir(dir, { recursive: true });
      // The caller wrote the file; it must be on disk before its name is.
      await fsyncFile(file);
      if (o.overwrite) {
        crashPoint('rename', target);
        await fs.rename(file, target);
      } else {
        // link fails with EEXIST instead of replacing: no check-then-rename race.
        crashPoint('rename', target);
        try {
          await fs.link(file, target);
        } catch (e) {
          if ((e as NodeJS.ErrnoException).code === 'EEXIST') {
            throw new BackupError('exists', `${target}: already exists; not replaced`, { path: target });
          }
          throw e;
        }
        await fsyncDir(dir);
        crashPoint('unlink', file);
        await fs.unlink(file);
      }
      await fsyncDir(dir);
    } catch (e) {
      throw fsError(e, target, 'writing the backup');
    }
    const st = await this.stat(name);
    if (!st) throw new BackupError('io', `${target}: vanished right after it was written`, { path: target });
    return st;
  }

  async writeBytes(name: string, data: string | Uint8Array): Promise<void> {
    const target = this.file(name);
    try {
      await fs.mkdir(path.dirname(target), { recursive: true });
    } catch (e) {
      throw fsError(e, path.dirname(target), 'writing the backup directory');
    }
    await writeFileAtomic(target, data);
  }

  async delete(name: string): Promise<void> {
    const target = this.file(name);
    crashPoint('unlink', target);
    try {
      await fs.unlink(target);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') return;
      throw fsError(e, target, 'deleting a backup');
    }
    await fsyncDir(path.dirname(target));
  }

  withLock<T>(fn: () => Promise<T>, o: LockOptions = {}): Promise<T> {
    return withLock(this.file(`${META_FOLDER}/lock`), fn, { ...this.lockOptions, ...o });
  }
}

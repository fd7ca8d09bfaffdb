import { promises as fs } from 'node:fs';
import path from 'node:path';
import { readManifest } from '../archive/archiveReader';
import { systemClock, type Clock } from '../context';
import { BackupError, fsError } from '../errors';
import { crashPoint } from '../faults';
import { writeFileAtomic } from '../fsutil';
import { isoLocal } from '../time';
import { processAlive } from '../processInfo';
import type { BackupRecord, BackupState, Manifest } from '../model';
import { BackupLog, type LogEntry } from './backupLog';
import { layout, type Layout } from './layout';
import { withLock, type LockOptions } from './lock';

interface IndexFile {
  version: 1;
  entries: Record<string, { size: number; mtimeMs: number; manifest: Manifest }>;
}

interface StateFile {
  version: 1;
  backups: Record<string, BackupState>;
}

/** An archive in the directory whose manifest could not be read. */
export interface BrokenArchive {
  path: string;
  error: string;
}

export interface Listing {
  /** Newest first. */
  records: BackupRecord[];
  broken: BrokenArchive[];
}

/**
 * The backup set in one directory: the archives at its top level (the truth), an index
 * that caches their manifests, the mutable per-backup state (pins, later verifications,
 * restore tests), the lock and the backup log. Safe to use from several processes.
 */
export class Catalog {
  readonly paths: Layout;
  readonly log: BackupLog;
  private readonly clock: Clock;
  private readonly lockOptions: LockOptions;

  constructor(
    readonly dir: string,
    o: { clock?: Clock; lock?: LockOptions } = {},
  ) {
    this.dir = path.resolve(dir);
    this.paths = layout(this.dir);
    this.log = new BackupLog(this.paths.log);
    this.clock = o.clock ?? systemClock;
    this.lockOptions = { clock: this.clock, ...o.lock };
  }

  /**
   * Creates the directory and its `.lifeboat/tmp`, and removes temp files left there by
   * processes that died (their names carry the writer's pid). BackupError 'unwritable'
   * naming the directory when it can't be created or written.
   */
  async ensure(): Promise<void> {
    try {
      await fs.mkdir(this.paths.tmp, { recursive: true });
      await fs.access(this.dir, fs.constants?.W_OK ?? 2);
      for (const n of await fs.readdir(this.paths.tmp)) {
        const pid = Number(/\.(\d+)\.[0-9a-f]{8}\./.exec(n)?.[1]);
        if (Number.isInteger(pid) && pid > 0 && !processAlive(pid)) {
          crashPoint('unlink', path.join(this.paths.tmp, n));
          await fs.rm(path.join(this.paths.tmp, n), { force: true });
        }
      }
    } catch (e) {
      const err = fsError(e, this.dir, 'preparing the backup directory');
      if (err.reason === 'notFound' || err.reason === 'io') {
        throw new BackupError('unwritable', `${this.dir}: the backup directory cannot be created (${(e as Error).message})`, {
          cause: e,
          path: this.dir,
        });
      }
      throw err;
    }
  }

  /** Runs `fn` under the directory's lock. See `withLock`. */
  withLock<T>(fn: () => Promise<T>, o: LockOptions = {}): Promise<T> {
    return withLock(this.paths.lock, fn, { ...this.lockOptions, ...o });
  }

  /** Appends to the backup log, stamping the time. Never throws: a log failure must not fail a backup. */
  async record(entry: Omit<LogEntry, 'time'> & { time?: string }): Promise<void> {
    try {
      await this.log.append({ time: entry.time ?? isoNow(this.clock), ...entry } as LogEntry);
    } catch {
      // The directory may be the very thing that's broken; the caller reports that error.
    }
  }

  /**
   * Lists the archives, newest first, with their manifests and state. Manifests are read
   * once and cached in the index by name, size and mtime. Archives that can't be read are
   * returned in `broken`, never dropped silently. A missing directory lists as empty.
   */
  async list(): Promise<Listing> {
    let names: string[];
    try {
      names = (await fs.readdir(this.dir)).filter((n) => n.endsWith('.zip'));
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') return { records: [], broken: [] };
      throw fsError(e, this.dir, 'listing backups');
    }
    const index = await this.readIndex();
    const state = await this.readState();
    const fresh: IndexFile = { version: 1, entries: {} };
    let changed = false;
    const records: BackupRecord[] = [];
    const broken: BrokenArchive[] = [];
    for (const name of names) {
      const p = path.join(this.dir, name);
      let st;
      try {
        st = await fs.stat(p);
      } catch {
        continue;
      }
      if (!st.isFile()) continue;
      let manifest: Manifest;
      const cached = index.entries[name];
      if (cached && cached.size === st.size && cached.mtimeMs === st.mtimeMs) {
        manifest = cached.manifest;
      } else {
        try {
          manifest = await readManifest(p);
        } catch (e) {
          broken.push({ path: p, error: (e as Error).message });
          continue;
        }
        changed = true;
      }
      fresh.entries[name] = { size: st.size, mtimeMs: st.mtimeMs, manifest };
      const id = name.slice(0, -'.zip'.length);
      records.push({ id, path: p, archiveSize: st.size, manifest, state: state.backups[id] ?? {} });
    }
    if (changed || Object.keys(index.entries).length !== Object.keys(fresh.entries).length) {
      // A cache: a lost race with another writer only costs a re-read later.
      await writeFileAtomic(this.paths.index, JSON.stringify(fresh)).catch(() => undefined);
    }
    records.sort((a, b) => Date.parse(b.manifest.created) - Date.parse(a.manifest.created) || b.id.localeCompare(a.id));
    return { records, broken };
  }

  /** The record of one archive, by id or path; BackupError 'notFound' naming it. */
  async get(idOrPath: string): Promise<BackupRecord> {
    const id = path.basename(idOrPath).replace(/\.zip$/, '');
    const { records } = await this.list();
    const r = records.find((x) => x.id === id);
    if (!r) throw new BackupError('notFound', `${idOrPath}: no such backup in ${this.dir}`, { path: idOrPath });
    return r;
  }

  /**
   * The per-backup state (pins, later verifications, restore tests). A missing file is
   * empty; an unreadable or garbled one throws BackupError 'io' naming it, because
   * reading it as empty would silently drop pins (and let rotation delete pinned backups).
   */
  async readState(): Promise<StateFile> {
    let text: string;
    try {
      text = await fs.readFile(this.paths.state, 'utf8');
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') return { version: 1, backups: {} };
      throw fsError(e, this.paths.state, 'reading the backup state (pins)');
    }
    try {
      const s = JSON.parse(text) as StateFile;
      if (s && s.version === 1 && s.backups && typeof s.backups === 'object') return s;
    } catch {
      // reported below
    }
    throw new BackupError('io', `${this.paths.state}: the backup state (pins, verifications) is damaged; fix or remove it`, { path: this.paths.state });
  }

  /** Changes one backup's state under the lock; writes atomically. Safe to repeat. */
  async updateState(id: string, mutate: (s: BackupState) => void): Promise<BackupState> {
    return this.withLock(async () => {
      const s = await this.readState();
      const cur = s.backups[id] ?? {};
      mutate(cur);
      s.backups[id] = cur;
      await writeFileAtomic(this.paths.state, JSON.stringify(s, null, 1));
      return cur;
    });
  }

  /** Drops state of archives that no longer exist. Call under the lock. */
  async forgetState(ids: string[]): Promise<void> {
    const s = await this.readState();
    let changed = false;
    for (const id of ids) {
      if (s.backups[id]) {
        delete s.backups[id];
        changed = true;
      }
    }
    if (changed) await writeFileAtomic(this.paths.state, JSON.stringify(s, null, 1));
  }

  private async readIndex(): Promise<IndexFile> {
    try {
      const i = JSON.parse(await fs.readFile(this.paths.index, 'utf8')) as IndexFile;
      if (i && i.version === 1 && i.entries) return i;
    } catch {
      // rebuilt from the archives
    }
    return { version: 1, entries: {} };
  }
}


function isoNow(clock: Clock): string {
  return isoLocal(clock.now());
}

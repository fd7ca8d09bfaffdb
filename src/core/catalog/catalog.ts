import { systemClock, type Clock } from '../context';
import { BackupError } from '../errors';
import { FORMATS } from '../format/formats';
import type { BackupFormat } from '../format/format';
import { isoLocal } from '../time';
import type { BackupRecord, BackupState, Manifest } from '../model';
import { LocalDirStore, META_FOLDER } from '../store/localDirStore';
import type { BackupStore, StoredObject } from '../store/store';
import type { LogEntry } from './backupLog';
import type { LockOptions } from './lock';
import { withoutPageMap } from '../format/repo/snapshotManifest';

const INDEX = `${META_FOLDER}/index.json`;
const STATE = `${META_FOLDER}/state.json`;

interface IndexFile {
  version: 1;
  /** By object name: a manifest is re-read only when its object's size or mtime changed. */
  entries: Record<string, { size: number; mtimeMs: number; manifest: Manifest }>;
}

interface StateFile {
  version: 1;
  backups: Record<string, BackupState>;
}

/** A backup object in the store whose manifest could not be read. */
export interface BrokenArchive {
  /** Where it is, for people: a local path or the store's URL and the object's name. */
  path: string;
  /** Its object name in the store. */
  object: string;
  error: string;
}

export interface Listing {
  /** Newest first. */
  records: BackupRecord[];
  broken: BrokenArchive[];
}

/**
 * The backup set in one store: the backups its objects make visible (the truth), an
 * index that caches their manifests, the mutable per-backup state (pins, later
 * verifications, restore tests), the lock and the backup log. Safe to use from several
 * processes. Built on a `BackupStore`; a directory path means a local folder store.
 */
export class Catalog {
  readonly store: BackupStore;
  private readonly clock: Clock;

  constructor(store: BackupStore | string, o: { clock?: Clock; lock?: LockOptions } = {}) {
    this.clock = o.clock ?? systemClock;
    this.store = typeof store === 'string' ? new LocalDirStore(store, { clock: this.clock, lock: o.lock }) : store;
  }

  /** The store for people (a folder's path). Kept as `dir` for the front ends. */
  get dir(): string {
    return this.store.label;
  }

  get log() {
    return this.store.log;
  }

  /**
   * Creates the store when missing and sweeps temp data left by dead writers.
   * BackupError 'unwritable' naming the store when it can't be created or written.
   */
  ensure(): Promise<void> {
    return this.store.open();
  }

  /** Runs `fn` under the store's lock. See `withLock`. */
  withLock<T>(fn: () => Promise<T>, o: LockOptions = {}): Promise<T> {
    return this.store.withLock(fn, o);
  }

  /** Appends to the backup log, stamping the time. Never throws: a log failure must not fail a backup. */
  async record(entry: Omit<LogEntry, 'time'> & { time?: string }): Promise<void> {
    try {
      await this.store.log.append({ time: entry.time ?? isoLocal(this.clock.now()), ...entry } as LogEntry);
    } catch {
      // The store may be the very thing that's broken; the caller reports that error.
    }
  }

  /** Where an object is, for people and for the front ends' `path` fields. */
  locate(object: string): string {
    return this.store.localPath(object) ?? `${this.store.url.replace(/\/$/, '')}/${object}`;
  }

  /** The record of a listed backup object. */
  recordOf(format: BackupFormat, obj: StoredObject, manifest: Manifest, state: BackupState): BackupRecord {
    const id = format.idOf(obj.name);
    // What this backup put in the store: v1 its zip; v2 its manifest and the packs it added.
    const size = obj.size + (manifest.repository?.added.bytes ?? 0);
    return { id, path: this.locate(obj.name), store: this.store.url, object: obj.name, format: format.label, archiveSize: size, manifest, state };
  }

  /**
   * Lists the backups, newest first, with their manifests and state. Manifests are read
   * once and cached in the index by object name, size and mtime. Backups whose manifest
   * can't be read are returned in `broken`, never dropped silently. A missing store lists
   * as empty.
   */
  async list(): Promise<Listing> {
    const folders = new Map<string, StoredObject[]>();
    for (const f of FORMATS) if (!folders.has(f.folder)) folders.set(f.folder, await this.store.list(f.folder));
    const index = await this.readIndex();
    const state = await this.readState();
    const fresh: IndexFile = { version: 1, entries: {} };
    let changed = false;
    const records: BackupRecord[] = [];
    const broken: BrokenArchive[] = [];
    for (const format of FORMATS) {
      for (const obj of format.visibleObjects(folders.get(format.folder) ?? [])) {
        let manifest: Manifest;
        const cached = index.entries[obj.name];
        if (cached && cached.size === obj.size && cached.mtimeMs === obj.mtimeMs) {
          manifest = withoutPageMap(cached.manifest);
        } else {
          try {
            manifest = withoutPageMap(await format.readManifest(this.store, obj.name));
          } catch (e) {
            if (BackupError.is(e, 'notFound')) continue; // deleted meanwhile
            broken.push({ path: this.locate(obj.name), object: obj.name, error: (e as Error).message });
            continue;
          }
          changed = true;
        }
        fresh.entries[obj.name] = { size: obj.size, mtimeMs: obj.mtimeMs, manifest };
        records.push(this.recordOf(format, obj, manifest, state.backups[format.idOf(obj.name)] ?? {}));
      }
    }
    if (changed || Object.keys(index.entries).length !== Object.keys(fresh.entries).length) {
      // A cache: a lost race with another writer only costs a re-read later. Only in a
      // store Lifeboat has written to: listing a folder of zips picked from elsewhere
      // (verifying a download) must not leave bookkeeping in it.
      if ((await this.store.list(META_FOLDER).catch(() => [])).length) await this.store.writeBytes(INDEX, JSON.stringify(fresh)).catch(() => undefined);
    }
    records.sort((a, b) => Date.parse(b.manifest.created) - Date.parse(a.manifest.created) || b.id.localeCompare(a.id));
    return { records, broken };
  }

  /**
   * The record of one backup, by id, object name, or local path of its object;
   * BackupError 'notFound' naming it.
   */
  async get(idOrPath: string): Promise<BackupRecord> {
    const base = idOrPath.split(/[\\/]/).pop() ?? idOrPath;
    const { records } = await this.list();
    const r =
      records.find((x) => x.id === idOrPath || x.object === idOrPath || x.object === base || x.path === idOrPath) ??
      records.find((x) => x.id === base || x.object.split('/').pop() === base);
    if (!r) throw new BackupError('notFound', `${idOrPath}: no such backup in ${this.dir}`, { path: idOrPath });
    return r;
  }

  /**
   * The record of the backup one object makes visible, without listing the store (a zip
   * picked from anywhere). BackupError 'notFound' when the object does not exist or is no
   * backup of a known format; the manifest reader's errors otherwise.
   */
  async getObject(object: string): Promise<BackupRecord> {
    const obj = await this.store.stat(object);
    const format = obj && FORMATS.find((f) => f.visibleObjects([obj]).length === 1);
    if (!obj || !format) throw new BackupError('notFound', `${this.locate(object)}: no such backup`, { path: this.locate(object) });
    const manifest = await format.readManifest(this.store, object);
    const state = await this.readState().catch(() => ({ version: 1 as const, backups: {} as Record<string, BackupState> }));
    return this.recordOf(format, obj, manifest, state.backups[format.idOf(object)] ?? {});
  }

  /**
   * The per-backup state (pins, later verifications, restore tests). A missing file is
   * empty; an unreadable or garbled one throws BackupError 'io' naming it, because
   * reading it as empty would silently drop pins (and let rotation delete pinned backups).
   */
  async readState(): Promise<StateFile> {
    let text: string;
    try {
      text = (await this.store.readBytes(STATE)).toString('utf8');
    } catch (e) {
      if (BackupError.is(e, 'notFound')) return { version: 1, backups: {} };
      throw new BackupError('io', `${this.locate(STATE)}: the backup state (pins) cannot be read: ${(e as Error).message}`, { cause: e, path: this.locate(STATE) });
    }
    try {
      const s = JSON.parse(text) as StateFile;
      if (s && s.version === 1 && s.backups && typeof s.backups === 'object') return s;
    } catch {
      // reported below
    }
    throw new BackupError('io', `${this.locate(STATE)}: the backup state (pins, verifications) is damaged; fix or remove it`, { path: this.locate(STATE) });
  }

  /** Changes one backup's state under the lock; writes atomically. Safe to repeat. */
  async updateState(id: string, mutate: (s: BackupState) => void): Promise<BackupState> {
    return this.withLock(async () => {
      const s = await this.readState();
      const cur = s.backups[id] ?? {};
      mutate(cur);
      s.backups[id] = cur;
      await this.store.writeBytes(STATE, JSON.stringify(s, null, 1));
      return cur;
    });
  }

  /** Drops state of backups that no longer exist. Call under the lock. */
  async forgetState(ids: string[]): Promise<void> {
    const s = await this.readState();
    let changed = false;
    for (const id of ids) {
      if (s.backups[id]) {
        delete s.backups[id];
        changed = true;
      }
    }
    if (changed) await this.store.writeBytes(STATE, JSON.stringify(s, null, 1));
  }

  private async readIndex(): Promise<IndexFile> {
    try {
      const i = JSON.parse((await this.store.readBytes(INDEX)).toString('utf8')) as IndexFile;
      if (i && i.version === 1 && i.entries) return i;
    } catch {
      // rebuilt from the backups
    }
    return { version: 1, entries: {} };
  }
}

import { checkArchive, extractImage, readManifest } from '../archive/archiveReader';
import { ARCHIVE_FORMAT } from '../model';
import type { BackupStore, StoredObject } from '../store/store';
import type { BackupFormat } from './format';

const EXT = '.zip';

/**
 * Format v1: one sealed zip per backup (`<id>.zip` at the store's top level) holding
 * `manifest.json` and the image; self-contained, readable with any unzip tool. The zip
 * is read with random access, so stores without local files hand over a local copy.
 */
export const zipV1: BackupFormat = {
  format: ARCHIVE_FORMAT,
  versions: [1],
  label: 'zip',
  folder: '',

  visibleObjects(objects: StoredObject[]): StoredObject[] {
    return objects.filter((o) => !o.name.includes('/') && o.name.endsWith(EXT) && o.name.length > EXT.length);
  },
  idOf(object: string): string {
    return object.endsWith(EXT) ? object.slice(0, -EXT.length) : object;
  },
  objectFor(id: string, n = 1): string {
    return n > 1 ? `${id}-${n}${EXT}` : `${id}${EXT}`;
  },

  async readManifest(store: BackupStore, object: string) {
    const f = await store.localCopy(object);
    try {
      return await readManifest(f.path);
    } finally {
      await f.release();
    }
  },
  async check(store: BackupStore, object: string, o = {}) {
    const f = await store.localCopy(object, { signal: o.signal });
    try {
      return await checkArchive(f.path, o);
    } finally {
      await f.release();
    }
  },
  async extractImage(store: BackupStore, object: string, outPath: string, o = {}) {
    const f = await store.localCopy(object, { signal: o.signal });
    try {
      return await extractImage(f.path, outPath, o);
    } finally {
      await f.release();
    }
  },
  async remove(store: BackupStore, object: string): Promise<void> {
    await store.delete(object);
  },
};

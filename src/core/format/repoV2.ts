import type { ProgressListener } from '../context';
import { BackupError } from '../errors';
import { ARCHIVE_FORMAT, type Manifest } from '../model';
import type { BackupStore, StoredObject } from '../store/store';
import type { BackupFormat, FormatCheck } from './format';
import { checkPack } from './repo/pack';
import { withReadLease } from './repo/leases';
import { rebuildImage } from './repo/rebuild';
import { isSnapshotObject, PackIndexes, pageHashesOf, readSnapshotManifest, SNAPSHOT_FOLDER, snapshotIdOf, snapshotObject } from './repo/snapshotManifest';

/**
 * Format v2: a content-addressed page repository. A backup is a sealed snapshot manifest
 * (`snapshots/<id>.json`) whose page map points into packs (`packs/<sha256>.pack`) that
 * many backups share. Deleting a backup deletes its manifest; prune deletes the packs no
 * manifest uses any more (src/core/format/repo/prune.ts).
 */
export const repoV2: BackupFormat = {
  format: ARCHIVE_FORMAT,
  versions: [2],
  label: 'repository',
  folder: SNAPSHOT_FOLDER,

  visibleObjects(objects: StoredObject[]): StoredObject[] {
    return objects.filter((o) => isSnapshotObject(o.name));
  },
  idOf: snapshotIdOf,
  objectFor: snapshotObject,

  readManifest: readSnapshotManifest,

  /**
   * The manifest (seal, schema, map), every pack it uses present with an index that holds
   * the entries the map points at, and the hashes of those entries adding up to the root.
   * `deep` also reads every byte of those packs (each block decoded, each page against
   * its hash). The image itself is checked page by page when it is rebuilt.
   */
  async check(store: BackupStore, object: string, o = {}): Promise<FormatCheck> {
    (o as { onProgress?: ProgressListener }).onProgress?.({ phase: 'check', done: 0, total: 0 });
    // A manifest that does not read is a finding; the store's own failures while checking are not.
    let checking = false;
    try {
      return await withReadLease(store, object, (manifest) => {
        checking = true;
        return checkManifest(store, manifest, o);
      });
    } catch (e) {
      if (checking || !(e instanceof BackupError) || e.reason === 'cancelled') throw e;
      return { ok: false, problems: [e.message] };
    }
  },

  async extractImage(store: BackupStore, object: string, outPath: string, o = {}) {
    return withReadLease(store, object, async (manifest) => {
      const { sha256, size } = await rebuildImage(store, manifest, outPath, o);
      return { manifest, sha256, size };
    });
  },

  async remove(store: BackupStore, object: string): Promise<void> {
    await store.delete(object);
  },
};

/** repoV2.check on a manifest read (and its packs leased). */
async function checkManifest(store: BackupStore, manifest: Manifest, o: { deep?: boolean; signal?: AbortSignal }): Promise<FormatCheck> {
  const problems: string[] = [];
  const indexes = new PackIndexes(store);
  try {
    await pageHashesOf(store, manifest, indexes);
  } catch (e) {
    if (!(e instanceof BackupError)) throw e;
    problems.push(e.reason === 'notFound' ? `backup ${manifest.id}: ${e.message}` : e.message);
  }
  if (o.deep && !problems.length) {
    for (const pack of manifest.repository!.packs) {
      if (o.signal?.aborted) throw new BackupError('cancelled', 'cancelled');
      for (const p of await checkPack(store, pack)) problems.push(`backup ${manifest.id}: ${p}`);
    }
  }
  return { manifest, ok: problems.length === 0, problems };
}

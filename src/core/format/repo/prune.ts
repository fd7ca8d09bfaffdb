import { BackupError } from '../../errors';
import type { Manifest } from '../../model';
import type { BackupStore } from '../../store/store';
import { liveLeases } from './leases';
import { isSnapshotObject, PACK_FOLDER, readSnapshotManifest, referencedPacks, SNAPSHOT_FOLDER } from './snapshotManifest';

export interface PrunePlan {
  /** Packs no remaining backup uses, to delete. */
  packs: { name: string; size: number }[];
  /** Their bytes. */
  bytes: number;
  /** Packs kept although unused because a running backup may point at them. */
  heldByRunningBackups: number;
  /** Set when the sweep stopped: nothing is deleted. */
  refused?: string;
}

/**
 * Which packs no backup needs: those no snapshot manifest references (besides the
 * manifests in `removing`, about to be deleted), that no running backup holds (its
 * parent's packs) and that are older than the start of every running backup (a running
 * backup's new packs are not referenced yet). When any manifest cannot be read the sweep
 * stops: a damaged manifest might reference any pack. Reads only.
 */
export async function planPrune(store: BackupStore, o: { removing?: ReadonlySet<string> } = {}): Promise<PrunePlan> {
  const packs = await store.list(PACK_FOLDER);
  const plan: PrunePlan = { packs: [], bytes: 0, heldByRunningBackups: 0 };
  if (!packs.length) return plan;
  const manifests: Manifest[] = [];
  for (const obj of await store.list(SNAPSHOT_FOLDER)) {
    if (!isSnapshotObject(obj.name) || o.removing?.has(obj.name)) continue;
    try {
      manifests.push(await readSnapshotManifest(store, obj.name));
    } catch (e) {
      if (BackupError.is(e, 'notFound')) continue;
      return { ...plan, refused: `no pack was deleted: ${(e as Error).message}` };
    }
  }
  const used = referencedPacks(manifests);
  const leases = await liveLeases(store);
  const held = new Set(leases.flatMap((l) => l.packs));
  const since = Math.min(...leases.map((l) => l.startedMs));
  for (const p of packs) {
    if (!p.name.endsWith('.pack') || used.has(p.name)) continue;
    // A second of slack for file systems whose times are coarser than the clock's.
    if (held.has(p.name) || (leases.length && p.mtimeMs >= since - 1000)) {
      plan.heldByRunningBackups++;
      continue;
    }
    plan.packs.push({ name: p.name, size: p.size });
    plan.bytes += p.size;
  }
  return plan;
}

/**
 * Deletes the packs no backup needs (see `planPrune`). Call under the store's lock, after
 * the forgotten backups' manifests are deleted. A crash midway leaves packs nobody uses,
 * which the next prune deletes.
 */
export async function prune(store: BackupStore, onDelete?: (plan: PrunePlan) => Promise<void>): Promise<PrunePlan> {
  const plan = await planPrune(store);
  if (plan.refused || !plan.packs.length) return plan;
  await onDelete?.(plan);
  for (const p of plan.packs) await store.delete(p.name);
  return plan;
}

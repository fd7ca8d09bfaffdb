import { BackupError } from '../../errors';
import type { Manifest } from '../../model';
import type { BackupStore } from '../../store/store';
import { liveLeases } from './leases';
import { repack, repackCandidates, type ManifestAt, type RepackCandidate, type RepackResult } from './repack';
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
  /** With `repack`: packs still used but mostly by nothing, whose used pages are to be copied before they are deleted. */
  repack: RepackCandidate[];
}

/**
 * Which packs no backup needs: those no snapshot manifest references (besides the
 * manifests in `removing`, about to be deleted), that no running backup holds (its
 * parent's packs) and that are older than the start of every running backup (a running
 * backup's new packs are not referenced yet). When any manifest cannot be read the sweep
 * stops: a damaged manifest might reference any pack. Reads only.
 */
export async function planPrune(store: BackupStore, o: { removing?: ReadonlySet<string>; repack?: boolean } = {}): Promise<PrunePlan> {
  return (await survey(store, o)).plan;
}

async function survey(store: BackupStore, o: { removing?: ReadonlySet<string>; repack?: boolean }): Promise<{ plan: PrunePlan; manifests: ManifestAt[] }> {
  const packs = await store.list(PACK_FOLDER);
  const plan: PrunePlan = { packs: [], bytes: 0, heldByRunningBackups: 0, repack: [] };
  const manifests: ManifestAt[] = [];
  if (!packs.length) return { plan, manifests };
  for (const obj of await store.list(SNAPSHOT_FOLDER)) {
    if (!isSnapshotObject(obj.name) || o.removing?.has(obj.name)) continue;
    try {
      manifests.push({ object: obj.name, manifest: await readSnapshotManifest(store, obj.name) });
    } catch (e) {
      if (BackupError.is(e, 'notFound')) continue;
      return { plan: { ...plan, refused: `no pack was deleted: ${(e as Error).message}` }, manifests: [] };
    }
  }
  const used = referencedPacks(manifests.map((m) => m.manifest));
  const leases = await liveLeases(store);
  const held = new Set(leases.flatMap((l) => l.packs));
  const since = Math.min(...leases.map((l) => l.startedMs));
  const free: { name: string; size: number }[] = [];
  for (const p of packs) {
    if (!p.name.endsWith('.pack')) continue;
    // A second of slack for file systems whose times are coarser than the clock's.
    if (held.has(p.name) || (leases.length && p.mtimeMs >= since - 1000)) {
      if (!used.has(p.name)) plan.heldByRunningBackups++;
      continue;
    }
    if (used.has(p.name)) {
      free.push({ name: p.name, size: p.size });
      continue;
    }
    plan.packs.push({ name: p.name, size: p.size });
    plan.bytes += p.size;
  }
  if (o.repack) plan.repack = await repackCandidates(store, manifests, free);
  return { plan, manifests };
}

/**
 * Deletes the packs no backup needs (see `planPrune`); with `repack`, then copies the used
 * pages of mostly unused packs into new ones, points the manifests at the copies and
 * deletes the old packs (repack.ts). Call under the store's lock, after the forgotten
 * backups' manifests are deleted. A crash midway leaves packs nobody uses, which the next
 * prune deletes, or packs still mostly unused, which it repacks.
 */
export async function prune(
  store: BackupStore,
  onDelete?: (plan: PrunePlan) => Promise<void>,
  o: { repack?: boolean; onRepack?: (r: RepackResult) => Promise<void>; signal?: AbortSignal } = {},
): Promise<PrunePlan> {
  const { plan, manifests } = await survey(store, { repack: o.repack });
  if (plan.refused) return plan;
  if (plan.packs.length) {
    await onDelete?.(plan);
    for (const p of plan.packs) await store.delete(p.name);
  }
  if (!plan.repack.length) return plan;
  // Sweeps what a repack killed midway left in the scratch folder.
  await store.open();
  const done = await repack(store, manifests, plan.repack, o.signal);
  await o.onRepack?.(done);
  // The repacked packs are used by nothing now.
  const after = await survey(store, {});
  if (after.plan.refused || !after.plan.packs.length) return plan;
  await onDelete?.(after.plan);
  for (const p of after.plan.packs) await store.delete(p.name);
  return { ...plan, packs: [...plan.packs, ...after.plan.packs], bytes: plan.bytes + after.plan.bytes };
}

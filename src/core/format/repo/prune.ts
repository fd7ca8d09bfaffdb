import { BackupError } from '../../errors';
import type { BackupStore } from '../../store/store';
import { liveLeases } from './leases';
import { PackUsage, repack, repackCandidates, type RepackCandidate, type RepackResult } from './repack';
import { isSnapshotObject, PACK_FOLDER, readSnapshotManifest, SNAPSHOT_FOLDER } from './snapshotManifest';

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

/**
 * One pass over the manifests, one at a time (a store's maps together can be far larger
 * than memory should hold): the packs they use and, for repacking, which entries of each
 * pack they use and which manifests use each pack.
 */
async function survey(store: BackupStore, o: { removing?: ReadonlySet<string>; repack?: boolean }): Promise<{ plan: PrunePlan; usage: PackUsage }> {
  const packs = await store.list(PACK_FOLDER);
  const plan: PrunePlan = { packs: [], bytes: 0, heldByRunningBackups: 0, repack: [] };
  const usage = new PackUsage();
  if (!packs.length) return { plan, usage };
  const used = new Set<string>();
  for (const obj of await store.list(SNAPSHOT_FOLDER)) {
    if (!isSnapshotObject(obj.name) || o.removing?.has(obj.name)) continue;
    let m;
    try {
      m = await readSnapshotManifest(store, obj.name);
    } catch (e) {
      if (BackupError.is(e, 'notFound')) continue;
      return { plan: { ...plan, refused: `no pack was deleted: ${(e as Error).message}` }, usage: new PackUsage() };
    }
    for (const p of m.repository?.packs ?? []) used.add(p);
    if (o.repack) usage.add(obj.name, m);
  }
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
  if (o.repack) plan.repack = await repackCandidates(store, usage, free);
  return { plan, usage };
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
  const { plan, usage } = await survey(store, { repack: o.repack });
  if (plan.refused) return plan;
  if (plan.packs.length) {
    await onDelete?.(plan);
    for (const p of plan.packs) await store.delete(p.name);
  }
  if (!plan.repack.length) return plan;
  // Sweeps what a repack killed midway left in the scratch folder.
  await store.open();
  const done = await repack(store, usage, plan.repack, o.signal);
  await o.onRepack?.(done);
  // The repacked packs are used by nothing now.
  const after = await survey(store, {});
  if (after.plan.refused || !after.plan.packs.length) return plan;
  await onDelete?.(after.plan);
  for (const p of after.plan.packs) await store.delete(p.name);
  return { ...plan, packs: [...plan.packs, ...after.plan.packs], bytes: plan.bytes + after.plan.bytes };
}

import type { Catalog } from '../catalog/catalog';
import type { Settings } from '../config';
import type { Clock } from '../context';
import { formatNamed } from '../format/formats';
import type { BackupRecord } from '../model';
import { planPrune, prune } from '../format/repo/prune';
import { planRotation, type RotationPlan } from '../retention/plan';

/** What rotation needs from its host. */
export interface RotateDeps {
  clock: Clock;
}

/**
 * Plans rotation of a store's backups under `settings.retention` and, unless `dryRun`,
 * deletes what the plan removes, under the store's lock, logging each deletion. A plan
 * the guards refuse (more than half of a database's automatic backups at once) deletes
 * nothing unless `force`. Safe to repeat: a crash midway leaves some backups deleted and
 * the rest for the next run.
 */
export async function rotateStore(deps: RotateDeps, catalog: Catalog, settings: Settings, o: { dryRun?: boolean; force?: boolean } = {}): Promise<RotationPlan> {
  const run = async () => {
    const { records } = await catalog.list();
    const plan: RotationPlan = planRotation(records, settings.retention, deps.clock.now(), { force: o.force });
    if (o.dryRun) {
      const removing = new Set(plan.refused ? [] : plan.remove.flatMap((rm) => records.filter((r) => r.id === rm.id).map((r) => r.object)));
      const p = await planPrune(catalog.store, { removing, repack: true });
      const repackBytes = p.repack.reduce((n, c) => n + c.size, 0);
      // What the copies would take: each pack's used share of its size.
      const writtenBytes = Math.round(p.repack.reduce((n, c) => n + (c.size * c.liveBytes) / Math.max(1, c.rawBytes), 0));
      if (p.bytes || p.refused || p.repack.length) {
        plan.prune = { packs: p.packs.length + p.repack.length, bytes: p.bytes + repackBytes, refused: p.refused };
        if (p.repack.length) plan.prune.repacked = { packs: p.repack.length, writtenBytes };
      }
      return plan;
    }
    if (plan.refused) {
      await catalog.record({ op: 'rotate.refused', level: 'warn', message: plan.refused, detail: { wouldRemove: plan.remove.map((r) => r.id) } });
      plan.prune = await pruneStore(catalog);
      return plan;
    }
    const byId = new Map(records.map((r) => [r.id, r]));
    for (const rm of plan.remove) {
      const r = byId.get(rm.id);
      if (!r) continue;
      // Logged first: a crash right after the delete must not leave a deletion nobody can
      // trace (the rerun would find nothing left to delete, and to log). A crash before it
      // leaves the backup, which the rerun deletes, logging it again.
      await catalog.record({ op: 'rotate.delete', level: 'info', db: r.manifest.source.path, backup: r.id, message: `deleting ${r.id}: ${rm.reasons.join('; ')}`, detail: { reasons: rm.reasons } });
      await formatNamed(r.format).remove(catalog.store, r.object);
    }
    if (plan.remove.length) await catalog.forgetState(plan.remove.map((r) => r.id));
    plan.prune = await pruneStore(catalog);
    return plan;
  };
  return o.dryRun ? run() : catalog.withLock(run);
}

/** Deletes one backup on request (a person's choice, so pinned ones too), under the lock, logged. */
export async function deleteBackup(catalog: Catalog, r: BackupRecord): Promise<void> {
  await catalog.withLock(async () => {
    await formatNamed(r.format).remove(catalog.store, r.object);
    await catalog.forgetState([r.id]);
    await pruneStore(catalog);
  });
  await catalog.record({ op: 'delete', level: 'info', db: r.manifest.source.path, backup: r.id, message: `deleted ${r.id} on request` });
}

/**
 * Deletes the repository packs no backup uses any more and repacks the mostly unused ones
 * (call under the lock, after the manifests): logged before each deletion and after a
 * repack; a sweep that stops (a manifest it cannot read) is logged as a warning and deletes
 * nothing. Undefined when nothing was to do.
 */
export async function pruneStore(catalog: Catalog): Promise<RotationPlan['prune']> {
  // Repacking reads every pack's index and rewrites packs: cheap in a folder, a download of
  // the whole repository (and an upload) off-site. Remotes delete unused packs only.
  const local = catalog.store.localPath('packs') !== undefined;
  let repacked: { packs: number; writtenBytes: number } | undefined;
  const done = await prune(
    catalog.store,
    (p) => catalog.record({ op: 'prune', level: 'info', message: `deleting ${p.packs.length} pack(s) no backup uses (${p.bytes} bytes)`, detail: { packs: p.packs.map((x) => x.name), bytes: p.bytes } }),
    {
      repack: local,
      onRepack: async (r) => {
        const writtenBytes = r.written.reduce((n, w) => n + w.size, 0);
        if (r.repacked.length) repacked = { packs: r.repacked.length, writtenBytes };
        const old = r.repacked.reduce((n, c) => n + c.size, 0);
        if (r.repacked.length) {
          await catalog.record({
            op: 'repack',
            level: 'info',
            message: `repacked ${r.repacked.length} pack(s) mostly unused (${old} bytes) into ${r.written.length} (${writtenBytes} bytes); ${r.manifests} backup manifest(s) now point at the copies`,
            detail: { from: r.repacked.map((c) => c.name), to: r.written.map((w) => w.name), manifests: r.manifests },
          });
        }
        if (r.damaged.length) await catalog.record({ op: 'repack.skipped', level: 'warn', message: `not repacked, damaged: ${r.damaged.join(', ')}` });
      },
    },
  );
  if (done.refused) await catalog.record({ op: 'prune.refused', level: 'warn', message: done.refused });
  if (!done.packs.length && !done.refused) return undefined;
  return { packs: done.packs.length, bytes: done.bytes, refused: done.refused, ...(repacked ? { repacked } : {}) };
}

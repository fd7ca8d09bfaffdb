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
      const p = await planPrune(catalog.store, { removing });
      if (p.bytes || p.refused) plan.prune = { packs: p.packs.length, bytes: p.bytes, refused: p.refused };
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
 * Deletes the repository packs no backup uses any more (call under the lock, after the
 * manifests): logged before the deletion; a sweep that stops (a manifest it cannot read)
 * is logged as a warning and deletes nothing. Undefined when nothing was to do.
 */
export async function pruneStore(catalog: Catalog): Promise<RotationPlan['prune']> {
  const done = await prune(catalog.store, (p) =>
    catalog.record({ op: 'prune', level: 'info', message: `deleting ${p.packs.length} pack(s) no backup uses (${p.bytes} bytes)`, detail: { packs: p.packs.map((x) => x.name), bytes: p.bytes } }),
  );
  if (done.refused) await catalog.record({ op: 'prune.refused', level: 'warn', message: done.refused });
  return done.packs.length || done.refused ? { packs: done.packs.length, bytes: done.bytes, refused: done.refused } : undefined;
}

import type { Catalog } from '../catalog/catalog';
import type { Clock, Logger } from '../context';
import { packIntact } from '../format/repo/packIntegrity';
import type { BackupRecord, VerifyReport } from '../model';
import type { BackupStore } from '../store/store';
import { isoLocal } from '../time';

/** The packs of `packs` whose bytes no longer hash to their name. */
export async function damagedPacks(store: BackupStore, packs: string[], signal?: AbortSignal): Promise<string[]> {
  const bad: string[] = [];
  for (const p of packs) if (!(await packIntact(store, p, signal))) bad.push(p);
  return bad;
}

/**
 * Marks every backup that uses one of the damaged packs as failed (a later check found
 * its stored pages damaged), naming the pack, and logs one error naming the backups; the
 * other backups stay as they are. Rotation never counts a failed backup toward its rules.
 */
export async function markDamaged(clock: Clock, logger: Logger | undefined, catalog: Catalog, packs: string[]): Promise<BackupRecord[]> {
  const { records } = await catalog.list();
  const hit = records.filter((r) => r.manifest.repository?.packs.some((p) => packs.includes(p)));
  const problem = `damaged pack: ${packs.map((p) => catalog.locate(p)).join(', ')} no longer hash${packs.length > 1 ? '' : 'es'} to ${packs.length > 1 ? 'their names' : 'its name'}`;
  for (const r of hit) {
    await catalog.updateState(r.id, (s) => {
      s.lastVerify = { ...failedReport([problem], clock), archiveOk: false };
    });
  }
  const msg = `${problem}; ${hit.length} backup(s) use it and cannot be restored: ${hit.map((r) => r.id).join(', ')}`;
  logger?.error(msg, { phase: 'verify' });
  await catalog.record({ op: 'verify.failed', level: 'error', message: msg, detail: { packs, backups: hit.map((r) => r.id) } });
  return hit;
}

/** What a check that found damage before SQLite could look (the stored backup itself) records. */
export function failedReport(problems: string[], clock: Clock): VerifyReport {
  return {
    status: 'failed',
    check: 'none',
    engine: { name: 'lifeboat', sqliteVersion: '' },
    problems,
    foreignKeyViolations: 0,
    schemaFingerprint: '',
    rowCounts: {},
    notChecked: [],
    durationMs: 0,
    checkedAt: isoLocal(clock.now()),
  };
}

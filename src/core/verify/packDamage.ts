import type { Catalog } from '../catalog/catalog';
import type { Clock, Logger } from '../context';
import { packIntact } from '../format/repo/packIntegrity';
import type { BackupRecord, VerifyReport } from '../model';
import type { BackupStore } from '../store/store';
import { isoLocal } from '../time';

/** When each pack last hashed intact (ms), kept in the store's local cache. */
const CHECKED = '.lifeboat/cache/packs-checked.json';
/** Entries older than this are dropped from the cache. */
const CHECKED_KEEP_MS = 30 * 24 * 3600 * 1000;

async function readChecked(store: BackupStore): Promise<Record<string, number>> {
  try {
    const v = JSON.parse((await store.readBytes(CHECKED)).toString('utf8')) as unknown;
    return v && typeof v === 'object' && !Array.isArray(v) ? (v as Record<string, number>) : {};
  } catch {
    return {};
  }
}

/**
 * The packs of `packs` whose bytes no longer hash to their name. Every pack is hashed,
 * except, with `skipCheckedWithinMs`, those that hashed intact less than that long before
 * `now` (a cache in the store; losing it costs hashing again). Packs found intact are
 * noted in the cache, damaged ones dropped from it.
 */
export async function damagedPacks(store: BackupStore, packs: string[], signal?: AbortSignal, o: { skipCheckedWithinMs?: number; now?: number } = {}): Promise<string[]> {
  const now = o.now ?? Date.now();
  const checked = await readChecked(store);
  const bad: string[] = [];
  let changed = false;
  for (const p of packs) {
    const at = checked[p];
    if (o.skipCheckedWithinMs && typeof at === 'number' && now - at >= 0 && now - at < o.skipCheckedWithinMs) continue;
    const intact = await packIntact(store, p, signal);
    if (intact) checked[p] = now;
    else {
      bad.push(p);
      delete checked[p];
    }
    changed = true;
  }
  if (changed) {
    for (const [k, at] of Object.entries(checked)) if (typeof at !== 'number' || now - at > CHECKED_KEEP_MS) delete checked[k];
    // A cache: a failure to write it costs hashing again next time.
    await store.writeBytes(CHECKED, JSON.stringify(checked)).catch(() => undefined);
  }
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

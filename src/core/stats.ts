import type { LogEntry } from './catalog/backupLog';
import { isVerified, type BackupKind, type BackupRecord } from './model';

export interface Stats {
  count: number;
  totalSize: number;
  oldest?: string;
  newest?: string;
  newestVerified?: string;
  perKind: Partial<Record<BackupKind, { count: number; size: number }>>;
  verified: number;
  sourceDamaged: number;
  lastSuccess?: { time: string; backup?: string; db?: string };
  lastFailure?: { time: string; db?: string; reason: string };
  /** Share of backups restore-tested in the 30 days before `now`, 0..1. */
  restoreTestCoverage: number;
}

/** Statistics of a set of backups and its log. Pure. */
export function computeStats(records: BackupRecord[], log: LogEntry[], now: Date): Stats {
  const s: Stats = { count: records.length, totalSize: 0, perKind: {}, verified: 0, sourceDamaged: 0, restoreTestCoverage: 0 };
  let tested = 0;
  for (const r of records) {
    s.totalSize += r.archiveSize;
    const k = (s.perKind[r.manifest.kind] ??= { count: 0, size: 0 });
    k.count++;
    k.size += r.archiveSize;
    if (isVerified(r)) {
      s.verified++;
      if (!s.newestVerified || Date.parse(r.manifest.created) > Date.parse(s.newestVerified)) s.newestVerified = r.manifest.created;
    }
    if (r.manifest.sourceDamaged) s.sourceDamaged++;
    const t = r.state.lastRestoreTest;
    if (t?.ok && now.getTime() - Date.parse(t.at) <= 30 * 86_400_000) tested++;
    if (!s.oldest || Date.parse(r.manifest.created) < Date.parse(s.oldest)) s.oldest = r.manifest.created;
    if (!s.newest || Date.parse(r.manifest.created) > Date.parse(s.newest)) s.newest = r.manifest.created;
  }
  s.restoreTestCoverage = records.length ? tested / records.length : 0;
  for (const e of log) {
    if (e.op === 'backup.ok') s.lastSuccess = { time: e.time, backup: e.backup, db: e.db };
    if (e.op === 'backup.failed' || e.op === 'backup.sourceDamaged') {
      s.lastFailure = { time: e.time, db: e.db, reason: e.message };
    }
  }
  return s;
}

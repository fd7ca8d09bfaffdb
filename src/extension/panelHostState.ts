/**
 * Builds the panel's state from what the engine lists: pure, no `vscode` import, so the
 * numbers the panel shows come from one place (the core's computeStats and tiersOf).
 */
import type { LogEntry } from '../core/catalog/backupLog';
import { FIELDS, type Settings, type ValidationIssue } from '../core/config';
import type { BackupRecord, Tier } from '../core/model';
import type { Stats } from '../core/stats';
import type { DatabaseStats, DatabaseView, FailureMark, FieldIssue, FormKey, HistoryRow, OffsiteView, SettingsValues } from '../../webview/protocol';
import { FORM_KEYS } from '../../webview/protocol';
import { rowState } from './format';

/** What one database's view is made from. */
export interface DatabaseInput {
  db: string;
  label: string;
  folder: string;
  dir: string;
  settings: Settings;
  /** This database's records (any order). */
  records: BackupRecord[];
  tiers: Map<string, { tier: Tier; reasons: string[] }>;
  /** This database's log entries, oldest first. */
  log: LogEntry[];
  stats: Stats;
  schedule: { label: string; next?: Date };
  error?: string;
  /** The newest failure the extension saw in this session (the status bar's), which may be missing from the log. */
  sessionFailure?: FailureMark;
  /** The off-site copy's state, when a remote is set. */
  offsite?: OffsiteView;
}

/** The form's values of `settings`, keyed by FORM_KEYS. Pure. */
export function formValues(settings: Settings): SettingsValues {
  const out: SettingsValues = {};
  for (const key of FORM_KEYS) {
    const f = FIELDS.find((x) => x.key === key);
    if (f) out[key] = f.get(settings);
  }
  return out;
}

/** Issues in the protocol's shape (the core's `{field, value, reason}` minus the value). Pure. */
export function toFieldIssues(issues: ValidationIssue[]): FieldIssue[] {
  return issues.map((i) => ({ field: i.field, reason: i.reason }));
}

/** Restricts `values` to FORM_KEYS (the protocol checked the keys already; this keeps the type honest). */
export function onlyFormKeys(values: SettingsValues): Map<string, unknown> {
  const m = new Map<string, unknown>();
  for (const k of FORM_KEYS as readonly FormKey[]) if (k in values) m.set(k, values[k]);
  return m;
}

/** The newer of two failures (by time); the logged one when equal or unparsable. Pure. */
export function newerFailure(logged: FailureMark | undefined, session: FailureMark | undefined): FailureMark | undefined {
  if (!session) return logged;
  if (!logged) return session;
  return Date.parse(session.time) > Date.parse(logged.time) ? session : logged;
}

/**
 * One database's view: statistics (per tier from `tiers`, coverage from `stats`), the
 * history newest first, failures from the log, the settings in force. The last failure
 * is the newer of the log's and `sessionFailure`. Pure.
 */
export function databaseView(i: DatabaseInput): DatabaseView {
  const history: HistoryRow[] = i.records
    .map((r) => {
      const t = i.tiers.get(r.id);
      return {
        id: r.id,
        created: r.manifest.created,
        kind: r.manifest.kind,
        tier: t?.tier ?? 'daily',
        size: r.archiveSize,
        durationMs: r.manifest.durationMs,
        verification: rowState(r),
        trigger: r.manifest.trigger ?? r.manifest.kind,
        pinned: r.state.pinned === true,
        reasons: t?.reasons ?? [],
      };
    })
    .sort((a, b) => Date.parse(b.created) - Date.parse(a.created));
  const failures: FailureMark[] = i.log.filter((e) => e.op === 'backup.failed' || e.op === 'backup.sourceDamaged').map((e) => ({ time: e.time, reason: e.message }));
  const perTier: DatabaseStats['perTier'] = {};
  for (const r of history) {
    const t = (perTier[r.tier] ??= { count: 0, size: 0 });
    t.count++;
    t.size += r.size;
  }
  const newest = [...i.records].sort((a, b) => Date.parse(b.manifest.created) - Date.parse(a.manifest.created))[0];
  let sourceHealth: DatabaseStats['sourceHealth'] = { state: 'unknown' };
  if (newest) {
    const v = newest.manifest.verification;
    if (newest.manifest.sourceDamaged) sourceHealth = { state: 'damaged', at: newest.manifest.created, detail: v.problems.slice(0, 2).join('; ') };
    else if (v.status === 'ok') sourceHealth = { state: 'healthy', at: newest.manifest.created, detail: `${v.check} passed` };
    else sourceHealth = { state: 'unknown', at: newest.manifest.created, detail: v.skippedReason ?? v.status };
  }
  const lastDamage = [...i.log].reverse().find((e) => e.op === 'backup.sourceDamaged');
  if (lastDamage && (!sourceHealth.at || Date.parse(lastDamage.time) > Date.parse(sourceHealth.at))) {
    sourceHealth = { state: 'damaged', at: lastDamage.time, detail: lastDamage.message };
  }
  const s = i.stats;
  return {
    id: i.db,
    label: i.label,
    folder: i.folder,
    backupDir: i.dir,
    stats: {
      count: s.count,
      totalSize: s.totalSize,
      perTier,
      oldest: s.oldest,
      newest: s.newest,
      lastSuccess: s.lastSuccess?.time,
      lastFailure: newerFailure(s.lastFailure ? { time: s.lastFailure.time, reason: s.lastFailure.reason } : undefined, i.sessionFailure),
      nextRun: i.schedule.next?.toISOString(),
      schedule: i.schedule.label,
      verifiedShare: s.count ? s.verified / s.count : 0,
      restoreTestedShare: s.restoreTestCoverage,
      sourceHealth,
    },
    history,
    failures,
    settings: formValues(i.settings),
    error: i.error,
    offsite: i.offsite,
  };
}

/**
 * Builds the panel's state from what the engine lists: pure, no `vscode` import, so the
 * numbers the panel shows come from one place (the core's computeStats and tiersOf).
 */
import type { LogEntry } from '../core/catalog/backupLog';
import { checkOffsiteRetention, FIELDS, offsiteRetentionFrom, SUB_FIELDS, validate, type Settings, type ValidationIssue } from '../core/config';
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

/** The form's values of `settings`, keyed by FORM_KEYS (off-site rotation sub-keys: '' when left out). Pure. */
export function formValues(settings: Settings): SettingsValues {
  const out: SettingsValues = {};
  for (const key of FORM_KEYS) {
    const f = FIELDS.find((x) => x.key === key) ?? SUB_FIELDS.find((x) => x.key === key);
    if (f) out[key] = f.get(settings);
  }
  return out;
}

/** What a Save writes (setting keys relative to `lifeboat.`, in form order), or why it writes nothing. */
export interface SavePlan {
  writes: [key: string, value: unknown][];
  issues: FieldIssue[];
}

/** What the configuration scopes hold for `offsite.retention` (raw, as settings.json has it). */
export interface RetentionScopes {
  /** The scope the form saves to. */
  own: unknown;
  /** The other scopes VS Code merges with it (an object setting merges key by key), named for people. */
  others?: { label: string; value: unknown }[];
}

const isObject = (v: unknown): v is Record<string, unknown> => v !== null && typeof v === 'object' && !Array.isArray(v);

/**
 * What saving the form's `values` writes. Every value is checked by the core first; any
 * issue means no write at all. Then each setting whose value differs from `current` (the
 * form's values of the settings in force, see formValues) is written, and the off-site
 * rotation sub-keys, when one of them changed, become one write of the object
 * `offsite.retention` holding only the keys set ({} when none). Keys the scope written to
 * holds (`scopes.own`) that the form does not know are carried over rather than dropped,
 * and the object is checked as the settings reader checks it, so such a key is refused
 * (issue `lifeboat.offsite.retention`) as the reader refuses it, never lost. A field left
 * empty whose key another scope sets is refused beside the field: VS Code merges the
 * scopes' objects, so clearing it here would not make it follow the local policy. Pure.
 */
export function planSave(values: ReadonlyMap<string, unknown>, current: SettingsValues, scopes: RetentionScopes = { own: undefined }): SavePlan {
  const issues = toFieldIssues(validate(new Map(values)));
  if (issues.length) return { writes: [], issues };
  const same = (key: string) => JSON.stringify(values.get(key)) === JSON.stringify(current[key]);
  const writes: SavePlan['writes'] = [];
  const sub = new Set(SUB_FIELDS.map((f) => f.key));
  for (const [key, value] of values) {
    // Only what the user changed is written, so the chosen scope doesn't fill up with defaults.
    if (!sub.has(key) && !same(key)) writes.push([key, value]);
  }
  if (SUB_FIELDS.some((f) => values.has(f.key) && !same(f.key))) {
    const merged = new Map<string, unknown>(SUB_FIELDS.map((f) => [f.key, values.has(f.key) ? values.get(f.key) : current[f.key]]));
    const object: Record<string, unknown> = { ...offsiteRetentionFrom(merged) };
    const known = new Set<string>(SUB_FIELDS.map((f) => f.prop));
    if (isObject(scopes.own)) {
      for (const [k, v] of Object.entries(scopes.own)) if (!known.has(k)) object[k] = v;
    }
    const reason = checkOffsiteRetention(object);
    if (reason) return { writes: [], issues: [{ field: 'lifeboat.offsite.retention', reason: `${reason}: remove it in settings.json first (the panel keeps what it does not show)` }] };
    const held: FieldIssue[] = [];
    for (const f of SUB_FIELDS) {
      if (f.prop in object) continue;
      const other = scopes.others?.find((o) => isObject(o.value) && o.value[f.prop] !== undefined);
      if (other) {
        const v = JSON.stringify((other.value as Record<string, unknown>)[f.prop]);
        held.push({ field: `lifeboat.${f.key}`, reason: `cannot follow the local policy from here: the ${other.label} set it to ${v} and VS Code merges the two; clear it there, or save to the ${other.label}` });
      }
    }
    if (held.length) return { writes: [], issues: held };
    writes.push(['offsite.retention', object]);
  }
  return { writes, issues: [] };
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

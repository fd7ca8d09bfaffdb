/**
 * Lifeboat's rotation plan: restic's policy (policy.ts) over each database's verified
 * automatic backups, wrapped in Lifeboat's guards, with a display tier and reasons for
 * people on every backup. Pure: deciding only; the caller deletes and logs.
 *
 * The guards, per database (grouped by databaseKey):
 * - manual and pinned backups are never removed (tier 'manual') and never counted by a rule;
 * - migration and pre-restore backups: the newest `keepEventBackups` verified ones are
 *   kept (tier 'migrations'), older verified ones removed; 0 means no limit (none removed);
 * - scheduled and shutdown backups that are verified go through the policy
 *   {daily, weekly, monthly, within: keepWithin}; when all of those are zero/empty no
 *   automatic backup is removed at all (restic refuses an empty policy);
 * - a backup that is not verified (failed, skipped, source damaged) never counts toward a
 *   rule. It is kept while it is newer than the newest verified backup of its database
 *   minus keepWithin (so failures after the last good backup stay for inspection); an
 *   older one is removed, with its verification result as the reason, but only when its
 *   group (automatic or event) has an active rule;
 * - the newest verified backup of the database is never removed;
 * - a plan that removes more than half of a database's automatic (scheduled + shutdown)
 *   backups is refused unless forced.
 */
import type { BackupKind, BackupRecord, Tier } from '../model';
import { isVerified } from '../model';
import type { RetentionSettings } from '../config';
import { BackupError } from '../errors';
import { type Duration, type OffsetTime, compareTimes, formatDuration, isZeroDuration, parseDuration, parseTimestamp, subtractDuration } from './duration';
import { type Policy, applyPolicy, isEmptyPolicy, periodLabel } from './policy';

/** A backup the plan keeps, why (for people: 'daily #3', 'oldest monthly', 'pinned', ...) and its display tier. */
export interface PlannedKeep {
  id: string;
  reasons: string[];
  tier: Tier;
}

/** A backup the plan removes and why ('not among the 30 newest days', 'event backups beyond 10', ...). */
export interface PlannedRemove {
  id: string;
  reasons: string[];
}

/**
 * What rotation would do, newest first. When `refused` is set the plan would remove
 * more than half of some database's automatic backups without force: `remove` is still
 * listed for inspection but must not be executed.
 */
export interface RotationPlan {
  keep: PlannedKeep[];
  remove: PlannedRemove[];
  refused?: string;
  /**
   * Repository stores: the packs no kept backup uses, deleted after the backups (or, in a
   * dry run, that would be), and their bytes; `refused` when the sweep stopped.
   * `repacked`: of those, the packs still used but mostly by nothing, whose used pages were
   * (would be) copied into new packs first, and the bytes those new packs take (in a dry
   * run, an estimate from the packs' compression).
   */
  prune?: { packs: number; bytes: number; refused?: string; repacked?: { packs: number; writtenBytes: number } };
}

/** The key backups are grouped by: the policy applies to each database separately (its source path). */
export function databaseKey(r: BackupRecord): string {
  return r.manifest.source.path;
}

const AUTOMATIC: ReadonlySet<BackupKind> = new Set(['scheduled', 'shutdown']);
const EVENT: ReadonlySet<BackupKind> = new Set(['migration', 'pre-restore']);
const COUNT_RULES = [
  { rule: 'daily', unit: 'days' },
  { rule: 'weekly', unit: 'ISO weeks' },
  { rule: 'monthly', unit: 'months' },
] as const;

interface Entry {
  rec: BackupRecord;
  time: OffsetTime;
  index: number;
}

type Decision = { keep: true; reasons: string[] } | { keep: false; reasons: string[] };

interface Rules {
  counts: Record<'daily' | 'weekly' | 'monthly', number>;
  within: Duration | undefined;
  events: number;
}

function readRules(retention: RetentionSettings): Rules {
  const count = (field: 'daily' | 'weekly' | 'monthly' | 'keepEventBackups') => {
    const v = retention[field];
    if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < 0) {
      throw new BackupError('badConfig', `lifeboat.retention.${field} must be a whole number >= 0 (got ${JSON.stringify(v)})`);
    }
    return v;
  };
  let within: Duration | undefined;
  if (retention.keepWithin !== '' && retention.keepWithin !== undefined) {
    try {
      within = parseDuration(retention.keepWithin);
    } catch (e) {
      throw new BackupError('badConfig', `lifeboat.retention.keepWithin: ${(e as Error).message}`, { cause: e });
    }
    if (isZeroDuration(within)) within = undefined;
  }
  return {
    counts: { daily: count('daily'), weekly: count('weekly'), monthly: count('monthly') },
    within,
    events: count('keepEventBackups'),
  };
}

function notVerifiedReason(r: BackupRecord): string {
  if (r.manifest.sourceDamaged) return 'failed verification (source damaged)';
  const v = r.state.lastVerify ?? r.manifest.verification;
  return v.status === 'skipped' ? 'not verified (verification skipped)' : 'failed verification';
}

/** Decides the verified automatic backups of one database (given newest first) through restic's policy. */
function decideAutomatic(newestFirst: Entry[], rules: Rules, now: Date, out: Map<number, Decision>): void {
  const policy: Policy = {};
  for (const { rule } of COUNT_RULES) if (rules.counts[rule] > 0) policy[rule] = rules.counts[rule];
  if (rules.within) policy.within = formatDuration(rules.within);
  if (isEmptyPolicy(policy)) {
    for (const e of newestFirst) out.set(e.index, { keep: true, reasons: ['no retention rule: kept'] });
    return;
  }
  const result = applyPolicy(
    newestFirst.map((e) => ({ id: String(e.index), time: e.rec.manifest.created })),
    policy,
    now,
  );
  const used = { daily: 0, weekly: 0, monthly: 0 };
  // applyPolicy walks in this same order (ties keep input order), so ordinals line up with its counters.
  for (const e of newestFirst) {
    const why = result.reasons[String(e.index)];
    if (why) {
      const reasons = why.matches.map((m) => {
        const rule = COUNT_RULES.find((c) => m === `${c.rule} snapshot` || m === `oldest ${c.rule} snapshot`)?.rule;
        if (!rule) return m;
        used[rule]++;
        return m.startsWith('oldest ') ? `oldest ${rule}` : `${rule} #${used[rule]}`;
      });
      out.set(e.index, { keep: true, reasons });
    } else {
      const reasons: string[] = [];
      for (const { rule, unit } of COUNT_RULES) {
        const n = rules.counts[rule];
        if (n === 0) continue;
        // A rule with count left passes over a backup only when a newer one of the same period was kept.
        reasons.push(used[rule] >= n ? `not among the ${n} newest ${unit}` : `a newer backup of ${periodLabel(rule, e.time)} is kept`);
      }
      if (rules.within) reasons.push(`outside keepWithin ${formatDuration(rules.within)} of the newest backup`);
      out.set(e.index, { keep: false, reasons });
    }
  }
}

function decideDatabase(entries: Entry[], rules: Rules, now: Date, out: Map<number, Decision>): void {
  const newestFirst = [...entries].sort((a, b) => compareTimes(b.time, a.time) || a.index - b.index);
  const newestVerified = newestFirst.find((e) => isVerified(e.rec));
  const autoActive = rules.counts.daily > 0 || rules.counts.weekly > 0 || rules.counts.monthly > 0 || rules.within !== undefined;
  const failedBound = newestVerified && (rules.within ? subtractDuration(newestVerified.time, rules.within) : newestVerified.time);

  const autoVerified: Entry[] = [];
  let events = 0;
  for (const e of newestFirst) {
    const { kind } = e.rec.manifest;
    const pinned = e.rec.state.pinned === true;
    if (kind === 'manual' || pinned) {
      out.set(e.index, { keep: true, reasons: [...(kind === 'manual' ? ['manual'] : []), ...(pinned ? ['pinned'] : [])] });
    } else if (!isVerified(e.rec)) {
      const groupActive = EVENT.has(kind) ? rules.events > 0 : autoActive;
      const superseded = failedBound !== undefined && compareTimes(e.time, failedBound) <= 0;
      out.set(
        e.index,
        groupActive && superseded
          ? { keep: false, reasons: [notVerifiedReason(e.rec), 'older than the newest verified backup'] }
          : { keep: true, reasons: ['not verified: kept, never counted'] },
      );
    } else if (EVENT.has(kind)) {
      if (rules.events === 0) out.set(e.index, { keep: true, reasons: ['no limit on event backups: kept'] });
      else if (events < rules.events) out.set(e.index, { keep: true, reasons: [`event backup #${++events}`] });
      else out.set(e.index, { keep: false, reasons: [`event backups beyond ${rules.events}`] });
    } else {
      autoVerified.push(e);
    }
  }
  decideAutomatic(autoVerified, rules, now, out);

  if (newestVerified) {
    const d = out.get(newestVerified.index)!;
    out.set(newestVerified.index, { keep: true, reasons: d.keep ? [...d.reasons, 'newest verified'] : ['newest verified'] });
  }
}

/**
 * The tier a kept backup is shown under: manual and pinned ones under Manual, migration
 * and pre-restore ones under Migrations, the others under the shortest-lived rule that
 * keeps them, as people read backups by age (Time Machine, Duplicati): Daily while the
 * daily rule keeps one (the newest is also this week's and this month's), then Weekly,
 * then Monthly as the shorter rules let it go. Kept by no count rule (keepWithin, newest
 * verified): Daily.
 */
function tierOf(r: BackupRecord, reasons: string[]): Tier {
  if (r.manifest.kind === 'manual' || r.state.pinned === true) return 'manual';
  if (EVENT.has(r.manifest.kind)) return 'migrations';
  const by = (rule: string) => reasons.some((s) => s.startsWith(`${rule} #`) || s === `oldest ${rule}`);
  if (by('daily')) return 'daily';
  if (by('weekly')) return 'weekly';
  if (by('monthly')) return 'monthly';
  return 'daily';
}

/**
 * Plans a rotation of `records` (any number of databases, grouped by databaseKey) under
 * `retention` with the guards described at the top of this file. `now` only decides
 * which backups lie in the future (they do not anchor keepWithin). Returns every record
 * exactly once, in `keep` (with reasons and tier) or `remove` (with reasons), newest
 * first; `refused` names each database whose automatic backups would lose more than
 * half, unless `opts.force`. Throws BackupError 'badConfig' naming the setting when
 * retention is invalid, 'badArchive' naming the backup when its manifest.created is not
 * an RFC 3339 time. Pure; safe to repeat, and planning again after executing a plan
 * removes nothing.
 */
export function planRotation(
  records: BackupRecord[],
  retention: RetentionSettings,
  now: Date,
  opts: { force?: boolean } = {},
): RotationPlan {
  const rules = readRules(retention);
  const entries: Entry[] = records.map((rec, index) => {
    let time: OffsetTime;
    try {
      time = parseTimestamp(rec.manifest.created, `backup ${rec.id}: manifest.created`);
    } catch (e) {
      throw new BackupError('badArchive', (e as Error).message, { cause: e, path: rec.path });
    }
    return { rec, time, index };
  });
  const groups = new Map<string, Entry[]>();
  for (const e of entries) {
    const key = databaseKey(e.rec);
    const group = groups.get(key);
    if (group) group.push(e);
    else groups.set(key, [e]);
  }
  const decisions = new Map<number, Decision>();
  const refusals: string[] = [];
  for (const [db, group] of groups) {
    decideDatabase(group, rules, now, decisions);
    const automatic = group.filter((e) => AUTOMATIC.has(e.rec.manifest.kind));
    const removed = automatic.filter((e) => !decisions.get(e.index)!.keep).length;
    if (removed * 2 > automatic.length) {
      refusals.push(`would remove ${removed} of the ${automatic.length} automatic backups of ${db} (more than half)`);
    }
  }
  const plan: RotationPlan = { keep: [], remove: [] };
  const newestFirst = [...entries].sort((a, b) => compareTimes(b.time, a.time) || a.index - b.index);
  for (const e of newestFirst) {
    const d = decisions.get(e.index)!;
    if (d.keep) plan.keep.push({ id: e.rec.id, reasons: d.reasons, tier: tierOf(e.rec, d.reasons) });
    else plan.remove.push({ id: e.rec.id, reasons: d.reasons });
  }
  if (refusals.length > 0 && !opts.force) plan.refused = `${refusals.join('; ')}; rotate with force to proceed`;
  return plan;
}

/**
 * The display tier of every record and the reasons behind it, keyed by record id: the
 * tier and reasons of planRotation's keep list; a record the plan would remove shows
 * its removal reasons prefixed 'to be removed: ', under 'migrations' for migration and
 * pre-restore backups and 'daily' otherwise. Throws like planRotation. Pure.
 */
export function tiersOf(records: BackupRecord[], retention: RetentionSettings, now: Date): Map<string, { tier: Tier; reasons: string[] }> {
  const plan = planRotation(records, retention, now, { force: true });
  const kindOf = new Map(records.map((r) => [r.id, r.manifest.kind]));
  const out = new Map<string, { tier: Tier; reasons: string[] }>();
  for (const k of plan.keep) out.set(k.id, { tier: k.tier, reasons: k.reasons });
  for (const r of plan.remove) {
    out.set(r.id, {
      tier: EVENT.has(kindOf.get(r.id)!) ? 'migrations' : 'daily',
      reasons: r.reasons.map((s) => `to be removed: ${s}`),
    });
  }
  return out;
}

/**
 * restic's `forget --keep-*` policy as a pure function: same keep/remove sets, same
 * reason strings, same counters (checked against restic's own golden vectors).
 */
import * as v from 'valibot';
import { BackupError } from '../errors';
import {
  type Duration,
  type OffsetTime,
  compareTimes,
  formatDuration,
  isZeroDuration,
  parseDuration,
  parseTimestamp,
  subtractDuration,
  wallFields,
} from './duration';

/** One snapshot as the policy sees it. `time` is RFC 3339 with its offset, e.g. 2016-01-18T12:02:03+01:00. */
export interface PolicySnapshot {
  id: string;
  time: string;
  tags?: string[];
}

/**
 * restic's ExpirePolicy with its JSON field names. Counts: 0 or absent = rule off,
 * -1 = unlimited. Windows: restic durations (`7d`, `1y2m3d3h`). tags: a snapshot that
 * has every tag of any one list is kept.
 */
export interface Policy {
  last?: number;
  hourly?: number;
  daily?: number;
  weekly?: number;
  monthly?: number;
  yearly?: number;
  within?: string;
  withinHourly?: string;
  withinDaily?: string;
  withinWeekly?: string;
  withinMonthly?: string;
  withinYearly?: string;
  tags?: string[][];
}

/**
 * Why a snapshot was kept: restic's match strings in evaluation order ("daily snapshot",
 * "oldest monthly snapshot", "within 7d", "has tags [foo]") and the count each rule had
 * left after it (keys last..yearly; zeros omitted, -1 = unlimited).
 */
export interface KeepReason {
  matches: string[];
  counters: Record<string, number>;
}

/** keep and remove are ids, newest first; reasons has one entry per kept id. */
export interface PolicyResult {
  keep: string[];
  remove: string[];
  reasons: Record<string, KeepReason>;
}

/** The periods a count or window rule buckets by. */
export type PeriodRule = 'hourly' | 'daily' | 'weekly' | 'monthly' | 'yearly';

const COUNT_FIELDS = ['last', 'hourly', 'daily', 'weekly', 'monthly', 'yearly'] as const;
const WITHIN_FIELDS = ['withinHourly', 'withinDaily', 'withinWeekly', 'withinMonthly', 'withinYearly'] as const;
const WITHIN_RULES: Record<(typeof WITHIN_FIELDS)[number], PeriodRule> = {
  withinHourly: 'hourly',
  withinDaily: 'daily',
  withinWeekly: 'weekly',
  withinMonthly: 'monthly',
  withinYearly: 'yearly',
};

const pad = (n: number, w: number) => (n < 0 ? '-' + String(-n).padStart(w, '0') : String(n).padStart(w, '0'));

/** ISO 8601 week-year and week (Monday first; week 1 holds the year's first Thursday) of a civil date. */
export function isoWeek(year: number, month: number, day: number): { year: number; week: number } {
  const d = new Date(0);
  d.setUTCFullYear(year, month - 1, day);
  const dow = d.getUTCDay() || 7;
  // The Thursday of the same Monday-based week decides the week-year.
  d.setUTCDate(d.getUTCDate() + 4 - dow);
  const thursdayYear = d.getUTCFullYear();
  const jan1 = new Date(0);
  jan1.setUTCFullYear(thursdayYear, 0, 1);
  const dayOfYear = Math.round((d.getTime() - jan1.getTime()) / 86_400_000);
  return { year: thursdayYear, week: Math.floor(dayOfYear / 7) + 1 };
}

/**
 * The period `t` falls in for `rule`, on t's own wall clock and offset, as a label for
 * people that is also a key: 'hour 2016-01-18T12', 'day 2016-01-18', 'ISO week 2016-W03',
 * 'month 2016-01', 'year 2016'. Labels of different rules never collide. Pure.
 */
export function periodLabel(rule: PeriodRule, t: OffsetTime): string {
  const w = wallFields(t);
  switch (rule) {
    case 'hourly':
      return `hour ${pad(w.year, 4)}-${pad(w.month, 2)}-${pad(w.day, 2)}T${pad(w.hour, 2)}`;
    case 'daily':
      return `day ${pad(w.year, 4)}-${pad(w.month, 2)}-${pad(w.day, 2)}`;
    case 'weekly': {
      const iw = isoWeek(w.year, w.month, w.day);
      return `ISO week ${pad(iw.year, 4)}-W${pad(iw.week, 2)}`;
    }
    case 'monthly':
      return `month ${pad(w.year, 4)}-${pad(w.month, 2)}`;
    case 'yearly':
      return `year ${pad(w.year, 4)}`;
  }
}

function parseWindow(p: Policy, field: 'within' | (typeof WITHIN_FIELDS)[number]): Duration | undefined {
  const raw = p[field];
  if (raw === undefined) return undefined;
  let d: Duration;
  try {
    d = parseDuration(raw);
  } catch (e) {
    throw new BackupError('badConfig', `policy field "${field}": ${(e as Error).message}`, { cause: e });
  }
  return isZeroDuration(d) ? undefined : d;
}

/**
 * True when the policy has no rule at all (restic's `ExpirePolicy.Empty`): every count
 * 0 or absent, every window absent or zero, no tag lists. restic keeps nothing under an
 * empty policy, so callers must refuse to apply one. Throws BackupError 'badConfig'
 * naming the field when a window is not a valid duration. Pure.
 */
export function isEmptyPolicy(p: Policy): boolean {
  if (p.tags && p.tags.length > 0) return false;
  if (COUNT_FIELDS.some((f) => (p[f] ?? 0) !== 0)) return false;
  return parseWindow(p, 'within') === undefined && WITHIN_FIELDS.every((f) => parseWindow(p, f) === undefined);
}

/** restic's `HasTags`: every tag of the list is present; an empty tag matches an untagged snapshot. */
function hasTags(tags: string[], list: string[]): boolean {
  for (const tag of list) {
    if (tag === '' && tags.length === 0) return true;
    if (!tags.includes(tag)) return false;
  }
  return true;
}

interface Parsed {
  snap: PolicySnapshot;
  time: OffsetTime;
}

/**
 * Sorts snapshots newest first, ties in input order (Go's sort.Stable on Time.After).
 * Throws BackupError 'badConfig' naming the id when a time is not RFC 3339.
 */
function sortNewestFirst(snapshots: PolicySnapshot[]): Parsed[] {
  const parsed = snapshots.map((snap) => ({ snap, time: parseTimestamp(snap.time, `snapshot ${snap.id}`) }));
  // Array.prototype.sort is stable (ES2019), so equal times keep their input order.
  return parsed.sort((a, b) => compareTimes(b.time, a.time));
}

/**
 * Applies restic's `forget --keep-*` policy (restic's `ApplyPolicy`). Walking newest to
 * oldest, a count rule keeps a snapshot whose period differs from the last period it
 * kept while it has count left (-1 = unlimited), and keeps the oldest snapshot too when
 * count is left ("oldest ..."); `within` windows keep snapshots strictly newer than the
 * newest snapshot not after `now`, minus the duration (calendar arithmetic on that
 * snapshot's offset). Periods use each snapshot's own wall clock and offset.
 *
 * `now` only decides which snapshots are in the future (ignored as the window's anchor);
 * when omitted no snapshot is treated as future (restic itself uses the wall clock).
 * Like restic, an empty policy keeps nothing: use isEmptyPolicy to refuse it first.
 *
 * Returns ids newest first (ties in input order) and a reason for every kept id.
 * Throws BackupError 'badConfig' naming the snapshot or field when a time or window is
 * invalid or an id repeats. Pure; safe to repeat.
 */
export function applyPolicy(snapshots: PolicySnapshot[], policy: Policy, now?: Date): PolicyResult {
  const seen = new Set<string>();
  for (const s of snapshots) {
    if (seen.has(s.id)) throw new BackupError('badConfig', `snapshot id "${s.id}" appears more than once`);
    seen.add(s.id);
  }
  const list = sortNewestFirst(snapshots);
  const result: PolicyResult = { keep: [], remove: [], reasons: {} };
  if (list.length === 0) return result;

  const buckets = COUNT_FIELDS.map((field) => ({
    field,
    count: policy[field] ?? 0,
    last: undefined as string | undefined,
    reason: `${field} snapshot`,
    key: (p: Parsed, nr: number) => (field === 'last' ? `#${nr}` : periodLabel(field, p.time)),
  }));

  const nowMs = now?.getTime();
  let latest: OffsetTime | undefined;
  for (const p of list) {
    // restic's anchor: the newest snapshot that is not in the future (strictly before now).
    if (nowMs !== undefined && !(p.time.epochMs < nowMs)) continue;
    if (!latest || compareTimes(p.time, latest) > 0) latest = p.time;
  }
  // With every snapshot in the future restic anchors at Go's zero time; any window then reaches back past them all.
  const boundOf = (d: Duration): OffsetTime =>
    latest ? subtractDuration(latest, d) : { epochMs: Number.NEGATIVE_INFINITY, nanos: 0, offsetMinutes: 0 };

  const within = parseWindow(policy, 'within');
  const withinBound = within && boundOf(within);
  const windows = WITHIN_FIELDS.flatMap((field) => {
    const d = parseWindow(policy, field);
    if (!d) return [];
    const rule = WITHIN_RULES[field];
    return [{ rule, bound: boundOf(d), last: undefined as string | undefined, reason: `${rule} within ${formatDuration(d)}` }];
  });

  list.forEach((cur, nr) => {
    const isOldest = nr === list.length - 1;
    const matches: string[] = [];
    for (const l of policy.tags ?? []) {
      if (hasTags(cur.snap.tags ?? [], l)) matches.push(`has tags [${l.join(', ')}]`);
    }
    if (within && withinBound && compareTimes(cur.time, withinBound) > 0) matches.push(`within ${formatDuration(within)}`);
    for (const b of buckets) {
      if (!(b.count > 0 || b.count === -1)) continue;
      const val = b.key(cur, nr);
      if (val !== b.last || isOldest) {
        const fresh = val !== b.last;
        b.last = val;
        if (b.count > 0) b.count--;
        matches.push(fresh ? b.reason : `oldest ${b.reason}`);
      }
    }
    for (const w of windows) {
      if (compareTimes(cur.time, w.bound) <= 0) continue;
      const val = periodLabel(w.rule, cur.time);
      if (val !== w.last || isOldest) {
        const fresh = val !== w.last;
        w.last = val;
        matches.push(fresh ? w.reason : `oldest ${w.reason}`);
      }
    }
    if (matches.length === 0) {
      result.remove.push(cur.snap.id);
      return;
    }
    const counters: Record<string, number> = {};
    for (const b of buckets) if (b.count !== 0) counters[b.field] = b.count;
    result.keep.push(cur.snap.id);
    result.reasons[cur.snap.id] = { matches, counters };
  });
  return result;
}

const COUNT_RULE = 'must be a whole number >= -1';
const WINDOW_RULE = 'must be a duration string such as "7d"';
const TAGS_RULE = 'must be a list of lists of strings';
const keepCount = v.optional(v.pipe(v.number(COUNT_RULE), v.safeInteger(COUNT_RULE), v.minValue(-1, COUNT_RULE)));
const keepWindow = v.optional(
  v.pipe(
    v.string(WINDOW_RULE),
    v.rawCheck<string>(({ dataset, addIssue }) => {
      if (!dataset.typed) return;
      try {
        parseDuration(dataset.value);
      } catch (e) {
        addIssue({ message: (e as Error).message });
      }
    }),
  ),
);

/** One schema per Policy field; `satisfies` makes a field missing here (or extra) a compile error. */
const POLICY_ENTRIES = {
  last: keepCount,
  hourly: keepCount,
  daily: keepCount,
  weekly: keepCount,
  monthly: keepCount,
  yearly: keepCount,
  within: keepWindow,
  withinHourly: keepWindow,
  withinDaily: keepWindow,
  withinWeekly: keepWindow,
  withinMonthly: keepWindow,
  withinYearly: keepWindow,
  tags: v.optional(v.array(v.array(v.string(TAGS_RULE), TAGS_RULE), TAGS_RULE)),
} satisfies { [K in keyof Policy]-?: v.GenericSchema<unknown, Policy[K]> };

/** restic's JSON policy: every field optional, no other field allowed. */
const POLICY_SCHEMA = v.pipe(
  v.unknown(),
  // valibot's object schemas take a list too; a policy is a JSON object.
  v.check((x) => typeof x === 'object' && x !== null && !Array.isArray(x)),
  v.strictObject(POLICY_ENTRIES),
) satisfies v.GenericSchema<unknown, Policy>;

/**
 * Reads a policy in restic's JSON field names (`last hourly daily weekly monthly yearly`
 * as integers >= -1, `within withinHourly .. withinYearly` as duration strings, `tags`
 * as a list of string lists). Returns a new Policy with only the fields given. Throws
 * BackupError 'badConfig' naming the field for an unknown field, a wrong type, or an
 * invalid duration. Pure.
 */
export function parsePolicyJson(raw: unknown): Policy {
  const r = v.safeParse(POLICY_SCHEMA, raw, { abortEarly: true });
  if (r.success) return r.output;
  const issue = r.issues[0];
  const path = v.getDotPath(issue);
  if (path === null) throw new BackupError('badConfig', 'policy: expected a JSON object such as {"daily": 7, "within": "2d"}');
  const field = path.split('.')[0];
  // A strict object reports a key it does not know as expecting none.
  if (issue.expected === 'never') {
    throw new BackupError('badConfig', `policy field "${field}" is unknown (known: ${Object.keys(POLICY_ENTRIES).join(', ')})`);
  }
  if (issue.type === 'raw_check') throw new BackupError('badConfig', `policy field "${field}": ${issue.message}`);
  const at = path === field ? '' : ` at ${path}`;
  const got = String(JSON.stringify((raw as Record<string, unknown>)[field]));
  throw new BackupError('badConfig', `policy field "${field}" ${issue.message}${at} (got ${got.length > 80 ? `${got.slice(0, 77)}...` : got})`);
}

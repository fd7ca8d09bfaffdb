/**
 * Schedule slots: the instants at which an automatic backup is due, computed with croner
 * in a time zone (the machine's local zone unless one is given). Pure apart from reading
 * the local zone; never reads the clock (`now` is always a parameter).
 *
 * Daylight saving time follows Vixie cron, which croner implements for fixed-time jobs:
 * a daily time that does not exist (02:00 on the spring-forward day in Europe/Berlin)
 * runs at the first valid time after the gap (03:00); a time that occurs twice (the
 * fall-back hour) runs once, at its first occurrence.
 */
import { Cron } from 'croner';
import type { Settings } from '../config';
import { BackupError } from '../errors';

const TIME_RE = /^([01]\d|2[0-3]):([0-5]\d)$/;

/** A compiled schedule. Create with `dailySchedule`, `cronSchedule` or `scheduleFromSettings`. */
export interface Schedule {
  /** For people and the `trigger` of the backups it makes: `daily 02:00` or `cron 0 *\/4 * * *`. */
  readonly label: string;
  /** The cron pattern actually used (5 or 6 fields). */
  readonly pattern: string;
  /** IANA zone, or undefined for the machine's local zone. */
  readonly timeZone: string | undefined;
  /** @internal croner's job (never started: it has no callback). */
  readonly cron: Cron;
  /** @internal The last interval [prev, next) known to hold no slot strictly inside it. */
  window?: { prev: number | undefined; next: number | undefined };
}

function checkTimeZone(timeZone: string | undefined, field: string): void {
  if (timeZone === undefined) return;
  try {
    new Intl.DateTimeFormat('en-US', { timeZone });
  } catch {
    throw new BackupError('badConfig', `${field}: unknown time zone ${JSON.stringify(timeZone)}`);
  }
}

function compile(pattern: string, label: string, timeZone: string | undefined, field: string): Schedule {
  checkTimeZone(timeZone, field);
  let cron: Cron;
  try {
    // "no-wildcard": a list such as `0 2,14 * * *` is a fixed-time job too (as in Vixie
    // cron), so its 02:00 still runs at 03:00 on the spring-forward day instead of vanishing.
    cron = new Cron(pattern, { timezone: timeZone, mode: '5-or-6-parts', fixedTimeRule: 'no-wildcard' });
  } catch (e) {
    throw new BackupError('badConfig', `${field}: invalid cron expression ${JSON.stringify(pattern)} (${(e as Error).message})`, { cause: e });
  }
  return { label, pattern, timeZone, cron };
}

/**
 * A schedule that fires once a day at `time` (HH:MM, 24 h) in `timeZone` (default: the
 * machine's local zone). Throws BackupError 'badConfig' naming `lifeboat.schedule.time`
 * for a malformed time or an unknown zone.
 */
export function dailySchedule(time: string, timeZone?: string): Schedule {
  const m = TIME_RE.exec(time);
  if (!m) throw new BackupError('badConfig', `lifeboat.schedule.time: must be a time HH:MM, 00:00 to 23:59 (got ${JSON.stringify(time)})`);
  return compile(`${Number(m[2])} ${Number(m[1])} * * *`, `daily ${time}`, timeZone, 'lifeboat.schedule.time');
}

/**
 * A schedule from a cron expression of 5 fields (minute first) or 6 (second first).
 * Throws BackupError 'badConfig' naming `lifeboat.schedule.cron` when croner refuses it.
 */
export function cronSchedule(expression: string, timeZone?: string): Schedule {
  const expr = expression.trim().replace(/\s+/g, ' ');
  const n = expr === '' ? 0 : expr.split(' ').length;
  if (n !== 5 && n !== 6) {
    throw new BackupError('badConfig', `lifeboat.schedule.cron: must be a cron expression of 5 or 6 fields (got ${JSON.stringify(expression)})`);
  }
  return compile(expr, `cron ${expr}`, timeZone, 'lifeboat.schedule.cron');
}

/**
 * The schedule the settings ask for: `cron` when it is not empty, else daily at
 * `backupTime`. Returns undefined when automatic backups are off (`enabled` or
 * `scheduleDaily` false). Throws BackupError 'badConfig' for an invalid time or cron.
 */
export function scheduleFromSettings(settings: Settings, timeZone?: string): Schedule | undefined {
  if (!settings.enabled || !settings.scheduleDaily) return undefined;
  return settings.cron.trim() ? cronSchedule(settings.cron, timeZone) : dailySchedule(settings.backupTime, timeZone);
}

/** Fills the cached window around `t`; croner costs about half a millisecond per call. */
function windowAt(s: Schedule, t: number): { prev: number | undefined; next: number | undefined } {
  const w = s.window;
  if (w && (w.prev === undefined ? false : w.prev <= t) && (w.next === undefined || t < w.next)) return w;
  // Slots fall on whole seconds, so t + 1 ms makes croner's exclusive bound inclusive.
  const prevDate = s.cron.previousRuns(1, new Date(t + 1))[0];
  const prev = prevDate && prevDate.getTime() <= t ? prevDate.getTime() : undefined;
  const nextDate = s.cron.nextRun(new Date(t));
  const next = nextDate ? nextDate.getTime() : undefined;
  const fresh = { prev, next: next !== undefined && next > t ? next : undefined };
  s.window = fresh;
  return fresh;
}

/** The latest slot at or before `now`, or undefined when the schedule has none. Pure. */
export function latestSlotAtOrBefore(schedule: Schedule, now: Date): Date | undefined {
  const { prev } = windowAt(schedule, now.getTime());
  return prev === undefined ? undefined : new Date(prev);
}

/** The first slot strictly after `now`, or undefined when the schedule has no more. Pure. */
export function nextSlotAfter(schedule: Schedule, now: Date): Date | undefined {
  const { next } = windowAt(schedule, now.getTime());
  return next === undefined ? undefined : new Date(next);
}

/**
 * The slots `s` with `from < s <= to`, oldest first, at most `max` of them (ask for
 * `max + 1` to learn whether there were more). Pure.
 */
export function slotsBetween(schedule: Schedule, from: Date, to: Date, max: number): Date[] {
  const out: Date[] = [];
  let t = from.getTime();
  const end = to.getTime();
  while (out.length < max) {
    const next = schedule.cron.nextRun(new Date(t));
    if (!next || next.getTime() > end) break;
    out.push(next);
    t = next.getTime();
  }
  return out;
}

/**
 * `date` as `YYYY-MM-DD HH:MM` on the schedule's wall clock (its zone, or the machine's),
 * for log lines and messages. Pure.
 */
export function formatSlot(date: Date, timeZone?: string): string {
  const parts = new Intl.DateTimeFormat('en-CA', {
    timeZone,
    year: 'numeric',
    month: '2-digit',
    day: '2-digit',
    hour: '2-digit',
    minute: '2-digit',
    hourCycle: 'h23',
  }).formatToParts(date);
  const get = (t: string) => parts.find((p) => p.type === t)?.value ?? '';
  return `${get('year')}-${get('month')}-${get('day')} ${get('hour')}:${get('minute')}`;
}

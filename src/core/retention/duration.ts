/**
 * Durations and timestamps for retention, with the calendar arithmetic restic uses
 * (Go's `time.AddDate` on a time with a fixed UTC offset). Pure; never reads the clock
 * or the machine's time zone.
 */
import { BackupError } from '../errors';

/** A calendar duration as restic writes it: `1y2m3d3h` (m = months). */
export interface Duration {
  years: number;
  months: number;
  days: number;
  hours: number;
}

/**
 * An instant together with the UTC offset it was recorded with, so periods (day, ISO
 * week, month) are taken on the wall clock of the machine that made the backup.
 * `epochMs` is whole milliseconds since the epoch; `nanos` (0..999999) is the rest, so
 * RFC 3339 times with up to nine fractional digits order exactly as Go orders them.
 */
export interface OffsetTime {
  epochMs: number;
  nanos: number;
  offsetMinutes: number;
}

/** The wall-clock fields of an OffsetTime at its own offset. month is 1..12. */
export interface WallFields {
  year: number;
  month: number;
  day: number;
  hour: number;
  minute: number;
  second: number;
  millisecond: number;
}

const MS_PER_MINUTE = 60_000;
const MS_PER_HOUR = 3_600_000;
const MS_PER_DAY = 86_400_000;

/**
 * Parses restic's duration syntax: one or more `<digits><unit>` with unit y (years),
 * m (months), d (days) or h (hours), e.g. `2d`, `1y2m3d3h`; a unit given twice adds up.
 * Also accepts what Lifeboat's settings accept: upper-case units and w (7 days).
 * Returns a new Duration. Throws BackupError 'badConfig' naming the value when it is
 * empty, has no unit after a number, an unknown unit, or a number too large. Pure.
 */
export function parseDuration(s: string): Duration {
  if (typeof s !== 'string' || s === '') {
    throw new BackupError('badConfig', `invalid duration ${JSON.stringify(s)}: empty (expected e.g. 2d or 1y2m3d3h)`);
  }
  const d: Duration = { years: 0, months: 0, days: 0, hours: 0 };
  const re = /(\d+)([a-zA-Z]?)/y;
  let at = 0;
  while (at < s.length) {
    re.lastIndex = at;
    const m = re.exec(s);
    if (!m) {
      throw new BackupError('badConfig', `invalid duration ${JSON.stringify(s)}: expected a number at position ${at + 1}`);
    }
    const n = Number(m[1]);
    if (!Number.isSafeInteger(n)) {
      throw new BackupError('badConfig', `invalid duration ${JSON.stringify(s)}: ${m[1]} is too large`);
    }
    switch (m[2].toLowerCase()) {
      case 'y':
        d.years += n;
        break;
      case 'm':
        d.months += n;
        break;
      case 'w':
        d.days += 7 * n;
        break;
      case 'd':
        d.days += n;
        break;
      case 'h':
        d.hours += n;
        break;
      case '':
        throw new BackupError('badConfig', `invalid duration ${JSON.stringify(s)}: no unit after ${m[1]} (use y, m, d or h)`);
      default:
        throw new BackupError('badConfig', `invalid duration ${JSON.stringify(s)}: unknown unit "${m[2]}" (use y, m, d or h)`);
    }
    at = re.lastIndex;
  }
  return d;
}

/** restic's rendering of a duration: non-zero parts in the order y, m, d, h (`1y1m1d`); '' for zero. */
export function formatDuration(d: Duration): string {
  return (
    (d.years ? `${d.years}y` : '') + (d.months ? `${d.months}m` : '') + (d.days ? `${d.days}d` : '') + (d.hours ? `${d.hours}h` : '')
  );
}

/** True when every part is zero; restic treats such a window as not set. */
export function isZeroDuration(d: Duration): boolean {
  return d.years === 0 && d.months === 0 && d.days === 0 && d.hours === 0;
}

const RFC3339_RE = /^(\d{4})-(\d{2})-(\d{2})[Tt](\d{2}):(\d{2}):(\d{2})(?:\.(\d{1,9}))?(?:([Zz])|([+-])(\d{2}):(\d{2}))$/;

/** Whole days from 1970-01-01 to the given proleptic Gregorian date; month may overflow (Go's normalisation). */
function daysFromCivil(year: number, month0: number, day: number): number {
  const d = new Date(0);
  d.setUTCFullYear(year, month0, day);
  return Math.round(d.getTime() / MS_PER_DAY);
}

/**
 * Parses an RFC 3339 timestamp (`2016-01-18T12:02:03+01:00`, `2014-08-13T10:20:30.1Z`)
 * and keeps its UTC offset. `what` names the value in the error. Throws BackupError
 * 'badConfig' naming `what` and the value when the text is not a valid RFC 3339 time. Pure.
 */
export function parseTimestamp(s: string, what = 'time'): OffsetTime {
  const m = typeof s === 'string' ? RFC3339_RE.exec(s) : null;
  const bad = (why: string) => new BackupError('badConfig', `${what}: ${JSON.stringify(s)} is not an RFC 3339 time (${why})`);
  if (!m) throw bad('expected e.g. 2016-01-18T12:02:03+01:00');
  const [year, month, day, hour, minute, second] = m.slice(1, 7).map(Number);
  if (month < 1 || month > 12) throw bad('month out of range');
  const dim = daysFromCivil(year, month, 1) - daysFromCivil(year, month - 1, 1);
  if (day < 1 || day > dim) throw bad('day out of range');
  if (hour > 23 || minute > 59 || second > 59) throw bad('time of day out of range');
  let offsetMinutes = 0;
  if (!m[8]) {
    const oh = Number(m[10]);
    const om = Number(m[11]);
    if (oh > 23 || om > 59) throw bad('offset out of range');
    offsetMinutes = (m[9] === '-' ? -1 : 1) * (oh * 60 + om);
  }
  const frac = (m[7] ?? '').padEnd(9, '0');
  const ms = Number(frac.slice(0, 3));
  const nanos = Number(frac.slice(3));
  const wallMs = daysFromCivil(year, month - 1, day) * MS_PER_DAY + hour * MS_PER_HOUR + minute * MS_PER_MINUTE + second * 1000 + ms;
  return { epochMs: wallMs - offsetMinutes * MS_PER_MINUTE, nanos, offsetMinutes };
}

/** Orders two instants (offsets ignored): negative when a is earlier, 0 when equal. */
export function compareTimes(a: OffsetTime, b: OffsetTime): number {
  return a.epochMs !== b.epochMs ? (a.epochMs < b.epochMs ? -1 : 1) : a.nanos - b.nanos;
}

/** The wall-clock fields of `t` at its own recorded offset (never the machine's zone). */
export function wallFields(t: OffsetTime): WallFields {
  const w = new Date(t.epochMs + t.offsetMinutes * MS_PER_MINUTE);
  return {
    year: w.getUTCFullYear(),
    month: w.getUTCMonth() + 1,
    day: w.getUTCDate(),
    hour: w.getUTCHours(),
    minute: w.getUTCMinutes(),
    second: w.getUTCSeconds(),
    millisecond: w.getUTCMilliseconds(),
  };
}

/**
 * `t` minus `d` as restic computes a window's lower bound: Go's
 * `t.AddDate(-years, -months, -days).Add(-hours)` in t's fixed offset. Calendar
 * arithmetic on the wall clock with Go's normalisation (March 31 minus 1m is
 * "February 31", i.e. March 3, or March 2 in a leap year), then whole hours. The
 * result keeps t's offset and sub-millisecond part. A bound before the earliest time a
 * Date can hold comes back as epochMs -Infinity (before every backup). Pure.
 */
export function subtractDuration(t: OffsetTime, d: Duration): OffsetTime {
  const wall = t.epochMs + t.offsetMinutes * MS_PER_MINUTE;
  const w = new Date(wall);
  const timeOfDay = wall - Math.floor(wall / MS_PER_DAY) * MS_PER_DAY;
  const day = new Date(0);
  day.setUTCFullYear(w.getUTCFullYear() - d.years, w.getUTCMonth() - d.months, w.getUTCDate() - d.days);
  let epochMs = day.getTime() + timeOfDay - t.offsetMinutes * MS_PER_MINUTE - d.hours * MS_PER_HOUR;
  if (!Number.isFinite(epochMs)) epochMs = Number.NEGATIVE_INFINITY;
  return { epochMs, nanos: t.nanos, offsetMinutes: t.offsetMinutes };
}

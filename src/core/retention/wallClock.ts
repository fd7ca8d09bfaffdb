/**
 * The wall clock of a named IANA time zone at an instant, through Intl only (no tz
 * database of our own). Used to render backup times the way a machine in that zone
 * would record them, e.g. for tests across DST changes.
 */
import { BackupError } from '../errors';
import type { WallFields } from './duration';

/** Wall-clock fields in a zone at an instant, and that zone's UTC offset then (minutes east of UTC). */
export interface ZonedWallClock extends WallFields {
  offsetMinutes: number;
}

const formatters = new Map<string, Intl.DateTimeFormat>();

function formatterFor(zone: string): Intl.DateTimeFormat {
  let f = formatters.get(zone);
  if (!f) {
    try {
      f = new Intl.DateTimeFormat('en-US', {
        timeZone: zone,
        hourCycle: 'h23',
        year: 'numeric',
        month: '2-digit',
        day: '2-digit',
        hour: '2-digit',
        minute: '2-digit',
        second: '2-digit',
        era: 'short',
      });
    } catch (e) {
      throw new BackupError('badConfig', `time zone ${JSON.stringify(zone)} is not known to this Node's Intl`, { cause: e });
    }
    formatters.set(zone, f);
  }
  return f;
}

/**
 * The wall clock of `zone` (an IANA name such as Europe/Berlin, or UTC) at `epochMs`,
 * with the zone's offset at that instant. Throws BackupError 'badConfig' naming the zone
 * when Intl does not know it. Pure apart from a formatter cache; safe to repeat.
 */
export function wallClockIn(zone: string, epochMs: number): ZonedWallClock {
  const parts: Record<string, string> = {};
  for (const p of formatterFor(zone).formatToParts(new Date(epochMs))) parts[p.type] = p.value;
  const yearOfEra = Number(parts.year);
  const year = parts.era === 'BC' || parts.era === 'B' ? 1 - yearOfEra : yearOfEra;
  const millisecond = ((epochMs % 1000) + 1000) % 1000;
  const w = {
    year,
    month: Number(parts.month),
    day: Number(parts.day),
    hour: Number(parts.hour),
    minute: Number(parts.minute),
    second: Number(parts.second),
    millisecond,
  };
  const asUtc = new Date(0);
  asUtc.setUTCFullYear(w.year, w.month - 1, w.day);
  asUtc.setUTCHours(w.hour, w.minute, w.second, w.millisecond);
  return { ...w, offsetMinutes: Math.round((asUtc.getTime() - epochMs) / 60_000) };
}

const p2 = (n: number) => String(n).padStart(2, '0');

/**
 * `epochMs` as RFC 3339 on `zone`'s wall clock with its offset at that instant and
 * milliseconds, e.g. 2026-03-29T03:30:00.000+02:00 (Europe/Berlin just after the
 * spring change). Throws like wallClockIn. Safe to repeat.
 */
export function rfc3339InZone(zone: string, epochMs: number): string {
  const w = wallClockIn(zone, epochMs);
  const sign = w.offsetMinutes < 0 ? '-' : '+';
  const off = Math.abs(w.offsetMinutes);
  return (
    `${String(w.year).padStart(4, '0')}-${p2(w.month)}-${p2(w.day)}T${p2(w.hour)}:${p2(w.minute)}:${p2(w.second)}` +
    `.${String(w.millisecond).padStart(3, '0')}${sign}${p2(Math.floor(off / 60))}:${p2(off % 60)}`
  );
}

/**
 * `epochMs` as RFC 3339 at a fixed offset (minutes east of UTC), e.g. +05:30 or -12:00.
 * Pure.
 */
export function rfc3339AtOffset(offsetMinutes: number, epochMs: number): string {
  const w = new Date(epochMs + offsetMinutes * 60_000);
  const sign = offsetMinutes < 0 ? '-' : '+';
  const off = Math.abs(offsetMinutes);
  return (
    `${String(w.getUTCFullYear()).padStart(4, '0')}-${p2(w.getUTCMonth() + 1)}-${p2(w.getUTCDate())}T` +
    `${p2(w.getUTCHours())}:${p2(w.getUTCMinutes())}:${p2(w.getUTCSeconds())}.${String(w.getUTCMilliseconds()).padStart(3, '0')}` +
    `${sign}${p2(Math.floor(off / 60))}:${p2(off % 60)}`
  );
}

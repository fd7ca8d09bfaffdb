/** Time formatting shared by the engine: manifests, reports and logs. */

const pad = (n: number, width = 2): string => String(n).padStart(width, '0');

/**
 * Formats `date` as ISO 8601 in the machine's local time with its UTC offset, to the
 * millisecond, e.g. `2026-11-26T09:07:12.345+01:00` (`+00:00` for UTC, never `Z`).
 * `new Date(isoLocal(d))` is the same instant as `d`. Pure apart from reading the local
 * time zone; safe to call repeatedly. Throws RangeError for an invalid date.
 */
export function isoLocal(date: Date): string {
  if (Number.isNaN(date.getTime())) throw new RangeError('isoLocal: invalid date');
  const offsetMin = -date.getTimezoneOffset();
  const sign = offsetMin < 0 ? '-' : '+';
  const abs = Math.abs(offsetMin);
  const year = date.getFullYear();
  // Years outside 0..9999 need ISO 8601's expanded form so that Date can parse them back.
  const y = year >= 0 && year <= 9999 ? pad(year, 4) : (year < 0 ? '-' : '+') + pad(Math.abs(year), 6);
  return (
    `${y}-${pad(date.getMonth() + 1)}-${pad(date.getDate())}` +
    `T${pad(date.getHours())}:${pad(date.getMinutes())}:${pad(date.getSeconds())}.${pad(date.getMilliseconds(), 3)}` +
    `${sign}${pad(Math.floor(abs / 60))}:${pad(abs % 60)}`
  );
}

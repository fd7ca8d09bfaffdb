/** Formatting for people, in the webview's locale. Pure. */

/** 1536 -> "1.5 KB". */
export function formatSize(n: number): string {
  if (!Number.isFinite(n)) return '—';
  if (n < 1024) return `${n} B`;
  const units = ['KB', 'MB', 'GB', 'TB'];
  let v = n / 1024;
  let i = 0;
  while (v >= 1024 && i < units.length - 1) {
    v /= 1024;
    i++;
  }
  return `${v < 10 ? v.toFixed(1) : Math.round(v)} ${units[i]}`;
}

const dateTime = new Intl.DateTimeFormat(undefined, { year: 'numeric', month: 'short', day: 'numeric', hour: '2-digit', minute: '2-digit' });
const dateOnly = new Intl.DateTimeFormat(undefined, { year: 'numeric', month: 'short', day: 'numeric' });

/** Local date and time, e.g. "Nov 26, 2025, 09:07". */
export function formatWhen(iso: string | undefined): string {
  if (!iso) return '—';
  const t = Date.parse(iso);
  return Number.isNaN(t) ? iso : dateTime.format(t);
}

/** Local date, e.g. "Nov 26, 2025". */
export function formatDay(t: number): string {
  return dateOnly.format(t);
}

/** 1234 -> "1.2 s"; 65000 -> "1 min 5 s". */
export function formatDuration(ms: number): string {
  if (!Number.isFinite(ms) || ms < 0) return '—';
  if (ms < 1000) return `${Math.round(ms)} ms`;
  if (ms < 60_000) return `${(ms / 1000).toFixed(1)} s`;
  const s = Math.round(ms / 1000);
  return `${Math.floor(s / 60)} min ${s % 60} s`;
}

/** 0.456 -> "46%". */
export function formatShare(x: number): string {
  return `${Math.round(x * 100)}%`;
}

/** "in 3 h", "in 12 min", "3 d ago", relative to `now`. */
export function formatRelative(iso: string | undefined, now: number): string {
  if (!iso) return '';
  const d = Date.parse(iso) - now;
  const a = Math.abs(d);
  const text = a < 60_000 ? 'under a minute' : a < 3_600_000 ? `${Math.round(a / 60_000)} min` : a < 172_800_000 ? `${Math.round(a / 3_600_000)} h` : `${Math.round(a / 86_400_000)} d`;
  return d >= 0 ? `in ${text}` : `${text} ago`;
}

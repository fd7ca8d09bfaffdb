/** The SVG chart of backup size over time, failures marked. No library: a line, dots and ticks. */
import type { FailureMark, HistoryRow } from './protocol';
import { s } from './dom';
import { formatDay, formatSize, formatWhen } from './format';

const W = 720;
const H = 180;
const PAD = { l: 56, r: 12, t: 12, b: 28 };

/**
 * Draws `rows` (any order) as size over time and `failures` as red marks at the bottom;
 * a backup that failed verification is a red dot on the line. Returns the <svg> with an
 * aria-label summarising what it shows.
 */
export function sizeChart(rows: readonly HistoryRow[], failures: readonly FailureMark[]): SVGSVGElement {
  const pts = rows.map((r) => ({ t: Date.parse(r.created), size: r.size, row: r })).filter((p) => !Number.isNaN(p.t)).sort((a, b) => a.t - b.t);
  const fails = failures.map((f) => ({ t: Date.parse(f.time), f })).filter((p) => !Number.isNaN(p.t));
  const badRows = pts.filter((p) => p.row.verification === 'failed');
  const times = [...pts.map((p) => p.t), ...fails.map((p) => p.t)];
  const maxSize = Math.max(1, ...pts.map((p) => p.size));
  const label = pts.length
    ? `Backup size over time: ${pts.length} backups from ${formatWhen(rows.length ? new Date(pts[0].t).toISOString() : undefined)} to ${formatWhen(new Date(pts[pts.length - 1].t).toISOString())}, largest ${formatSize(maxSize)}; ${fails.length + badRows.length} failures marked.`
    : `Backup size over time: no backups yet${fails.length ? `; ${fails.length} failures marked` : ''}.`;
  const svg = s('svg', { viewBox: `0 0 ${W} ${H}`, class: 'chart', role: 'img', 'aria-label': label });
  svg.append(s('title', {}, label));
  const x0 = PAD.l;
  const x1 = W - PAD.r;
  const y0 = H - PAD.b;
  const y1 = PAD.t;
  svg.append(s('line', { x1: x0, y1: y0, x2: x1, y2: y0, class: 'axis' }), s('line', { x1: x0, y1: y0, x2: x0, y2: y1, class: 'axis' }));
  svg.append(s('text', { x: x0 - 6, y: y1 + 4, class: 'tick', 'text-anchor': 'end' }, formatSize(maxSize)));
  svg.append(s('text', { x: x0 - 6, y: y0, class: 'tick', 'text-anchor': 'end' }, '0'));
  if (!times.length) {
    svg.append(s('text', { x: (x0 + x1) / 2, y: (y0 + y1) / 2, class: 'empty', 'text-anchor': 'middle' }, 'No backups yet'));
    return svg;
  }
  const tMin = Math.min(...times);
  const tMax = Math.max(...times);
  const span = Math.max(1, tMax - tMin);
  const x = (t: number) => (tMax === tMin ? (x0 + x1) / 2 : x0 + ((t - tMin) / span) * (x1 - x0));
  const y = (v: number) => y0 - (v / maxSize) * (y0 - y1);
  svg.append(s('text', { x: x0, y: H - 8, class: 'tick', 'text-anchor': 'start' }, formatDay(tMin)));
  if (tMax !== tMin) svg.append(s('text', { x: x1, y: H - 8, class: 'tick', 'text-anchor': 'end' }, formatDay(tMax)));
  if (pts.length) {
    const d = pts.map((p, i) => `${i ? 'L' : 'M'}${x(p.t).toFixed(1)},${y(p.size).toFixed(1)}`).join('');
    svg.append(s('path', { d: `${d}L${x(pts[pts.length - 1].t).toFixed(1)},${y0}L${x(pts[0].t).toFixed(1)},${y0}Z`, class: 'area' }));
    svg.append(s('path', { d, class: 'line' }));
    // Dots only while they stay apart; the line alone reads better for thousands of backups.
    if (pts.length <= 120) {
      for (const p of pts) {
        if (p.row.verification === 'failed') continue;
        svg.append(s('circle', { cx: x(p.t).toFixed(1), cy: y(p.size).toFixed(1), r: 2.5, class: 'dot' }, s('title', {}, `${formatWhen(p.row.created)}: ${formatSize(p.size)} (${p.row.kind})`)));
      }
    }
  }
  for (const p of badRows) {
    svg.append(s('circle', { cx: x(p.t).toFixed(1), cy: y(p.size).toFixed(1), r: 4, class: 'fail' }, s('title', {}, `${formatWhen(p.row.created)}: failed verification`)));
  }
  for (const p of fails) {
    const cx = x(p.t);
    svg.append(s('path', { d: `M${cx - 4},${y0 - 10}L${cx + 4},${y0 - 2}M${cx + 4},${y0 - 10}L${cx - 4},${y0 - 2}`, class: 'fail-mark' }, s('title', {}, `${formatWhen(p.f.time)}: backup failed: ${p.f.reason}`)));
  }
  return svg;
}

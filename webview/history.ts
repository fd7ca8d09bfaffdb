/**
 * The history table: sortable by every column, row actions Restore, Verify, Pin/Unpin,
 * Compare with Current and Reveal as real buttons (keyboard and screen readers).
 * Virtualised: only the rows in view (plus a margin) exist in the DOM, between two spacer
 * rows, so thousands of backups cost what a screenful costs. aria-rowcount/aria-rowindex tell screen readers the real size;
 * ArrowUp/ArrowDown move between rows' buttons and scroll the window along.
 */
import type { BackupAction, HistoryRow } from './protocol';
import { esc } from './dom';
import { formatDuration, formatSize, formatWhen } from './format';

export type SortKey = 'created' | 'kind' | 'tier' | 'size' | 'durationMs' | 'verification' | 'trigger';
export interface Sort {
  key: SortKey;
  dir: 'asc' | 'desc';
}

const COLUMNS: { key: SortKey; label: string; numeric?: boolean }[] = [
  { key: 'created', label: 'Date' },
  { key: 'kind', label: 'Kind' },
  { key: 'tier', label: 'Tier' },
  { key: 'size', label: 'Size', numeric: true },
  { key: 'durationMs', label: 'Duration', numeric: true },
  { key: 'verification', label: 'Verification' },
  { key: 'trigger', label: 'Trigger' },
];

const VERIFICATION_TEXT: Record<HistoryRow['verification'], string> = { verified: 'verified', failed: 'FAILED', unverified: 'not verified' };

/** `rows` sorted by `sort` (stable; ties newest first). Pure. */
export function sortRows(rows: readonly HistoryRow[], sort: Sort): HistoryRow[] {
  const sign = sort.dir === 'asc' ? 1 : -1;
  const key = sort.key;
  const val = (r: HistoryRow): number | string => (key === 'created' ? Date.parse(r.created) : r[key]);
  return rows
    .map((r, i) => ({ r, i, v: val(r) }))
    .sort((a, b) => (a.v < b.v ? -sign : a.v > b.v ? sign : a.i - b.i))
    .map((x) => x.r);
}

/** Every body row is exactly this tall (CSS pins it), which is what makes windowing exact. */
export const ROW_HEIGHT = 26;
/** The scroll box's height limit; set here (not in CSS) so windowing uses the same number before the box has content. */
const VIEW_MAX = 480;
const OVERSCAN = 12;

/** The scrolling table with its header buttons and a delegated click handler; `update` re-renders the body. */
export class HistoryTable {
  /** The scroll container (holds the table). */
  readonly el: HTMLElement;
  private readonly table: HTMLTableElement;
  private readonly body: HTMLTableSectionElement;
  private rows: readonly HistoryRow[] = [];
  private sorted: HistoryRow[] = [];
  private sort: Sort;
  private window = { start: -1, end: -1 };

  constructor(
    sort: Sort,
    private readonly onAction: (id: string, action: BackupAction) => void,
    private readonly onSort: (sort: Sort) => void,
  ) {
    this.sort = sort;
    this.table = document.createElement('table');
    this.table.className = 'history';
    this.table.setAttribute('aria-label', 'Backup history');
    this.el = document.createElement('div');
    this.el.className = 'table-wrap';
    this.el.append(this.table);
    this.el.style.maxHeight = `${VIEW_MAX}px`;
    const head = this.table.createTHead().insertRow();
    head.setAttribute('aria-rowindex', '1');
    for (const c of COLUMNS) {
      const th = document.createElement('th');
      th.scope = 'col';
      th.dataset.key = c.key;
      if (c.numeric) th.className = 'num';
      const b = document.createElement('button');
      b.type = 'button';
      b.className = 'sort';
      b.dataset.sort = c.key;
      b.textContent = c.label;
      th.append(b);
      head.append(th);
    }
    const act = document.createElement('th');
    act.scope = 'col';
    act.textContent = 'Actions';
    head.append(act);
    this.body = this.table.createTBody();
    this.table.addEventListener('click', (e) => this.click(e));
    this.table.addEventListener('keydown', (e) => this.key(e));
    this.el.addEventListener('scroll', () => this.paintWindow(), { passive: true });
    // A taller box (a resized panel) needs more rows.
    new ResizeObserver(() => this.sorted.length && this.paintWindow()).observe(this.el);
    this.paintHeader();
  }

  /** Shows `rows` under the current sort. */
  update(rows: readonly HistoryRow[]): void {
    this.rows = rows;
    this.sorted = sortRows(rows, this.sort);
    this.paint();
  }

  /** Renders the rows in view; cheap when the window did not move. */
  private paintWindow(force = false): void {
    const n = this.sorted.length;
    // The box may still be sized by the previous (shorter) content: window for its full height.
    const view = Math.max(this.el.clientHeight, VIEW_MAX);
    const first = Math.floor(this.el.scrollTop / ROW_HEIGHT);
    const start = Math.max(0, first - OVERSCAN);
    const end = Math.min(n, first + Math.ceil(view / ROW_HEIGHT) + OVERSCAN);
    if (!force && start === this.window.start && end === this.window.end) return;
    this.window = { start, end };
    const out: string[] = [`<tr class="spacer" aria-hidden="true"><td colspan="${COLUMNS.length + 1}"></td></tr>`];
    for (let i = start; i < end; i++) out.push(rowHtml(this.sorted[i], i + 2));
    out.push(`<tr class="spacer" aria-hidden="true"><td colspan="${COLUMNS.length + 1}"></td></tr>`);
    const focused = (document.activeElement as HTMLElement | null)?.closest?.('tr')?.parentElement === this.body ? (document.activeElement as HTMLElement) : undefined;
    const keep = focused && { id: focused.dataset.id, act: focused.dataset.act };
    this.body.innerHTML = out.join('');
    // CSSOM heights, not style attributes: the CSP forbids inline styles.
    (this.body.firstElementChild!.firstElementChild as HTMLElement).style.height = `${start * ROW_HEIGHT}px`;
    (this.body.lastElementChild!.firstElementChild as HTMLElement).style.height = `${(n - end) * ROW_HEIGHT}px`;
    if (keep?.id) this.buttonOf(keep.id, keep.act)?.focus({ preventScroll: true });
  }

  private buttonOf(id: string, act: string | undefined): HTMLButtonElement | null {
    const row = Array.from(this.body.rows).find((r) => r.dataset.id === id);
    return (row?.querySelector(`button[data-act="${act}"]`) ?? row?.querySelector('button')) as HTMLButtonElement | null;
  }

  /** ArrowUp/ArrowDown on a row's button: the same button one row up or down, scrolled into view. */
  private key(e: KeyboardEvent): void {
    if (e.key !== 'ArrowDown' && e.key !== 'ArrowUp') return;
    const b = e.target as HTMLElement;
    const id = b.dataset.id;
    if (!id || !b.dataset.act) return;
    const i = this.sorted.findIndex((r) => r.id === id) + (e.key === 'ArrowDown' ? 1 : -1);
    if (i < 0 || i >= this.sorted.length) return;
    e.preventDefault();
    const top = i * ROW_HEIGHT;
    const headH = this.table.tHead?.offsetHeight ?? 0;
    if (top < this.el.scrollTop) this.el.scrollTop = top;
    else if (top + ROW_HEIGHT > this.el.scrollTop + this.el.clientHeight - headH) this.el.scrollTop = top + ROW_HEIGHT - this.el.clientHeight + headH;
    this.paintWindow();
    this.buttonOf(this.sorted[i].id, b.dataset.act)?.focus({ preventScroll: true });
  }

  private click(e: Event): void {
    const b = (e.target as HTMLElement).closest('button');
    if (!b) return;
    if (b.dataset.sort) {
      const key = b.dataset.sort as SortKey;
      this.sort = { key, dir: this.sort.key === key && this.sort.dir === 'desc' ? 'asc' : this.sort.key === key ? 'desc' : key === 'created' || key === 'size' || key === 'durationMs' ? 'desc' : 'asc' };
      this.paintHeader();
      this.sorted = sortRows(this.rows, this.sort);
      this.paint();
      this.onSort(this.sort);
      (this.table.querySelector(`button[data-sort="${key}"]`) as HTMLButtonElement | null)?.focus();
    } else if (b.dataset.act && b.dataset.id) {
      this.onAction(b.dataset.id, b.dataset.act as BackupAction);
    }
  }

  private paintHeader(): void {
    for (const th of Array.from(this.table.tHead!.rows[0].cells)) {
      const k = th.dataset.key;
      if (!k) continue;
      th.setAttribute('aria-sort', k === this.sort.key ? (this.sort.dir === 'asc' ? 'ascending' : 'descending') : 'none');
      const b = th.querySelector('button')!;
      b.dataset.arrow = k === this.sort.key ? (this.sort.dir === 'asc' ? '▲' : '▼') : '';
    }
  }

  private paint(): void {
    this.table.setAttribute('aria-rowcount', String(this.sorted.length + 1));
    if (!this.sorted.length) {
      this.window = { start: -1, end: -1 };
      this.body.innerHTML = `<tr><td colspan="${COLUMNS.length + 1}" class="empty">No backups yet.</td></tr>`;
      return;
    }
    this.paintWindow(true);
  }
}

function rowHtml(r: HistoryRow, rowIndex: number): string {
  const when = esc(formatWhen(r.created));
  const id = esc(r.id);
  const what = `the ${esc(r.kind)} backup of ${when}`;
  const title = r.reasons.length ? ` title="${esc(r.reasons.join('; '))}"` : '';
  const button = (act: BackupAction, label: string, aria: string) => `<button type="button" data-act="${act}" data-id="${id}" aria-label="${aria}">${label}</button>`;
  return (
    `<tr data-id="${id}" aria-rowindex="${rowIndex}"${r.verification === 'failed' ? ' class="bad"' : ''}>` +
    `<td${title}>${when}${r.pinned ? ' <span class="badge">pinned</span>' : ''}</td>` +
    `<td>${esc(r.kind)}</td><td>${esc(r.tier)}</td>` +
    `<td class="num">${formatSize(r.size)}</td><td class="num">${formatDuration(r.durationMs)}</td>` +
    `<td class="v-${r.verification}">${VERIFICATION_TEXT[r.verification]}</td><td class="trigger">${esc(r.trigger)}</td>` +
    `<td class="actions">` +
    button('restore', 'Restore', `Restore ${what}`) +
    button('verify', 'Verify', `Verify ${what}`) +
    (r.pinned ? button('unpin', 'Unpin', `Unpin ${what}`) : button('pin', 'Pin', `Pin ${what}`)) +
    button('compare', 'Compare with Current', `Compare ${what} with the current database`) +
    button('reveal', 'Reveal', `Reveal ${what} in the file explorer`) +
    `</td></tr>`
  );
}

/**
 * The read-only views of a backup and of a comparison (the app of the `inspect` webview
 * panels; bundled into dist/webview.js with the Settings and Statistics app). It says
 * `inspect/app/ready`, draws each `inspect/state/didChange` it gets, and asks for rows
 * page by page (`inspect/table/rows`, `inspect/diff/rows`). Nothing here writes: the
 * actions that do, "Restore This Table" and "Restore Selected Rows" (rows picked with
 * checkboxes, across pages), are Requests the host confirms with the user.
 */
import type { BrowseState, Cell, CompareState, DiffRow, DiffRowsPage, InspectSide, InspectState, KeyValue, RowsPage, SchemaEntry, SelectedRow, TableChange } from './protocol';
import { MAX_SELECTED_ROWS } from './protocol';
import type { HostConnection } from './host';
import { h } from './dom';
import { formatWhen } from './format';

/** What the view remembers while its panel is hidden (the webview is rebuilt when shown again). */
interface Saved {
  table?: string;
  offset?: number;
}

const count = (n: number | null | undefined): string => (n === null || n === undefined ? '—' : n.toLocaleString());
const plural = (n: number, one: string, many = `${one}s`): string => `${count(n)} ${n === 1 ? one : many}`;

/** A cell as text and markup: NULL, BLOBs and cut text marked so they read apart from plain text. */
function cellNode(c: Cell): Node | string {
  if (c === null) return h('span', { class: 'null' }, 'NULL');
  if (typeof c === 'number') return String(c);
  if (typeof c === 'string') return c;
  if ('blob' in c) return h('span', { class: 'blob', title: `${c.bytes} bytes` }, `x'${c.blob}${c.bytes * 2 > c.blob.length ? '…' : ''}'`, h('span', { class: 'muted' }, ` ${plural(c.bytes, 'byte')}`));
  return h('span', { title: `${c.chars} characters` }, c.text, h('span', { class: 'muted' }, `… (${count(c.chars)} chars)`));
}

const sameCell = (a: Cell | undefined, b: Cell | undefined) => JSON.stringify(a ?? null) === JSON.stringify(b ?? null);

/** A key as people read it: its value, or its values in brackets. */
function keyText(key: KeyValue[]): string {
  const one = (v: KeyValue) => (v === null ? 'NULL' : typeof v === 'object' ? `x'${v.$blob.slice(0, 16)}${v.$blob.length > 16 ? '…' : ''}'` : String(v));
  return key.length === 1 ? one(key[0]) : `(${key.map(one).join(', ')})`;
}

function sideLabel(s: InspectSide): string {
  return s.kind === 'live' ? `current database (as of ${formatWhen(s.takenAt)})` : `backup of ${formatWhen(s.created)}${s.backupKind ? ` (${s.backupKind})` : ''}`;
}

function button(label: string, attrs: Record<string, string | boolean | undefined | ((e: Event) => void)> = {}): HTMLButtonElement {
  return h('button', { type: 'button', class: 'act', ...attrs }, label);
}

/** Prev/Next for a paged table: "Rows 101–200 of 1,234", or "Page 2 of 3" when a page holds several kinds of rows. */
function pager(id: string, offset: number, limit: number, total: number, shown: number, go: (offset: number) => void, pages = false): HTMLElement {
  const first = total === 0 ? 0 : offset + 1;
  const last = offset + shown;
  const text = pages ? `Page ${count(Math.floor(offset / limit) + 1)} of ${count(Math.max(1, Math.ceil(total / limit)))}` : `Rows ${count(first)}–${count(last)} of ${count(total)}`;
  return h(
    'div',
    { class: 'pager', role: 'group', 'aria-label': `${id} pages` },
    button('‹ Previous', { id: `${id}-prev`, disabled: offset === 0, onclick: () => go(Math.max(0, offset - limit)), 'aria-label': 'Previous page' }),
    h('span', { class: 'page-text', id: `${id}-page` }, text),
    button('Next ›', { id: `${id}-next`, disabled: offset + limit >= total, onclick: () => go(offset + limit), 'aria-label': 'Next page' }),
  );
}

const TYPE_ORDER: SchemaEntry['type'][] = ['table', 'index', 'view', 'trigger'];
const TYPE_TITLE: Record<SchemaEntry['type'], string> = { table: 'Tables', index: 'Indexes', view: 'Views', trigger: 'Triggers' };

export class InspectApp {
  private state: InspectState | undefined;
  private saved: Saved;
  private readonly root = h('div', { id: 'inspect' });
  private readonly rows = h('section', { id: 'rows', 'aria-live': 'polite' });
  /** What the rows on screen were read from, so a new state that changes nothing does not read them again. */
  private rowsKey = '';
  /** Rows picked for "Restore Selected Rows" (one table's, across its pages), by their key's JSON. */
  private picked: { table: string; rows: Map<string, SelectedRow> } = { table: '', rows: new Map() };
  /** The page on screen (redrawn when the selection changes). */
  private page: DiffRowsPage | undefined;
  private seq = 0;

  constructor(private readonly host: HostConnection) {
    this.saved = (host.api.getState() as Saved | undefined) ?? {};
    this.root.append(h('p', { class: 'muted' }, 'Loading…'));
    document.body.append(this.root);
    host.on('inspect/state/didChange', (s) => this.onState(s));
    host.command({ kind: 'command', method: 'inspect/app/ready' });
  }

  private persist(change: Partial<Saved>): void {
    this.saved = { ...this.saved, ...change };
    this.host.api.setState(this.saved);
  }

  private onState(s: InspectState): void {
    this.state = s;
    document.body.dataset.view = s.view;
    if (s.view === 'browse') this.renderBrowse(s);
    else this.renderCompare(s);
  }

  // ------------------------------------------------------------------ a backup

  private renderBrowse(s: BrowseState): void {
    const b = s.backup;
    const header = h(
      'header',
      { class: 'top' },
      h('div', { class: 'titles' }, h('h1', {}, b.dbLabel, ' ', h('span', { class: 'badge' }, 'read-only')), h('p', { class: 'sub' }, `Backup of ${formatWhen(b.created)} (${b.backupKind ?? 'backup'}) · ${b.id ?? ''}`)),
      s.canCompare
        ? h('div', { class: 'buttons' }, h('vscode-button', { id: 'compare-current', onclick: () => this.host.command({ kind: 'command', method: 'inspect/backup/compareCurrent' }) }, 'Compare with Current Database'))
        : '',
    );
    const pages = s.pageCount;
    const summary = h('p', { class: 'muted', id: 'summary' }, `${plural(s.tables.length, 'table')}, ${plural(s.objects.filter((o) => o.type === 'index').length, 'index', 'indexes')}, ${plural(s.objects.filter((o) => o.type === 'view').length, 'view')}, ${plural(s.objects.filter((o) => o.type === 'trigger').length, 'trigger')} · ${count(pages)} pages of ${count(s.pageSize)} bytes`);
    const selected = s.tables.find((t) => t.name === this.saved.table) ?? s.tables.find((t) => (t.rows ?? 0) > 0) ?? s.tables[0];
    const tables = h(
      'table',
      { class: 'grid', id: 'tables', 'aria-label': 'Tables and their row counts' },
      h('thead', {}, h('tr', {}, h('th', { scope: 'col' }, 'Table'), h('th', { scope: 'col', class: 'num' }, 'Rows'), h('th', { scope: 'col', class: 'num' }, 'Columns'), h('th', { scope: 'col' }, 'Rows ordered by'))),
      h(
        'tbody',
        {},
        ...s.tables.map((t) =>
          h(
            'tr',
            { 'data-table': t.name, class: t.name === selected?.name ? 'selected' : '' },
            h('td', {}, button(t.name, { class: 'link', 'data-table': t.name, 'aria-label': `Show the rows of ${t.name}`, onclick: () => this.selectTable(t.name) }), t.kind !== 'table' ? h('span', { class: 'muted' }, ` (${t.kind})`) : ''),
            h('td', { class: 'num', title: t.error ?? '' }, count(t.rows)),
            h('td', { class: 'num' }, String(t.columns.length)),
            h('td', { class: 'muted' }, t.order),
          ),
        ),
      ),
    );
    const schema = h('section', { 'aria-labelledby': 'h-schema', id: 'schema' }, h('h2', { id: 'h-schema' }, 'Schema'));
    for (const type of TYPE_ORDER) {
      const objs = s.objects.filter((o) => o.type === type);
      if (!objs.length) continue;
      schema.append(
        h('h3', {}, `${TYPE_TITLE[type]} (${objs.length})`),
        ...objs.map((o) =>
          h(
            'div',
            { class: 'obj', 'data-type': o.type, 'data-name': o.name },
            h('div', { class: 'obj-name' }, h('code', {}, o.name), o.type === 'index' || o.type === 'trigger' ? h('span', { class: 'muted' }, ` on ${o.table}`) : ''),
            h('pre', { class: 'sql' }, o.sql ?? '(made by SQLite for a UNIQUE or PRIMARY KEY constraint)'),
          ),
        ),
      );
    }
    this.root.replaceChildren(
      header,
      summary,
      h('section', { 'aria-labelledby': 'h-tables' }, h('h2', { id: 'h-tables' }, 'Tables'), s.tables.length ? tables : h('p', { class: 'muted' }, 'The backup has no tables.')),
      this.rows,
      schema,
    );
    if (selected) {
      const offset = selected.name === this.saved.table ? (this.saved.offset ?? 0) : 0;
      if (`browse\u0000${selected.name}\u0000${offset}` !== this.rowsKey) void this.loadRows(selected.name, offset);
    } else {
      this.rows.replaceChildren();
    }
  }

  private selectTable(table: string): void {
    const s = this.state;
    if (s?.view === 'browse') {
      for (const tr of Array.from(this.root.querySelectorAll('#tables tbody tr'))) tr.classList.toggle('selected', (tr as HTMLElement).dataset.table === table);
      void this.loadRows(table, 0);
    } else if (s?.view === 'compare') {
      for (const tr of Array.from(this.root.querySelectorAll('#changes tbody tr'))) tr.classList.toggle('selected', (tr as HTMLElement).dataset.table === table);
      void this.loadDiffRows(table, 0);
    }
  }

  private async loadRows(table: string, offset: number): Promise<void> {
    const seq = ++this.seq;
    this.persist({ table, offset });
    this.rowsKey = `browse\u0000${table}\u0000${offset}`;
    this.rows.setAttribute('aria-busy', 'true');
    let page: RowsPage;
    try {
      page = await this.host.request('inspect/table/rows', { table, offset });
    } catch (e) {
      if (seq === this.seq) this.rows.replaceChildren(h('h2', {}, `Rows of ${table}`), h('div', { class: 'banner error', role: 'alert' }, `Reading the rows failed: ${(e as Error).message}`));
      return;
    } finally {
      if (seq === this.seq) this.rows.removeAttribute('aria-busy');
    }
    if (seq !== this.seq) return;
    const body = page.rows.length
      ? h(
          'div',
          { class: 'table-wrap fit rows-wrap', tabindex: 0, 'aria-label': `Rows of ${table}, scrollable` },
          h(
            'table',
            { class: 'grid data', id: 'rows-table', 'aria-label': `Rows of ${table}` },
            h('thead', {}, h('tr', {}, ...page.columns.map((c) => h('th', { scope: 'col' }, c)))),
            h('tbody', {}, ...page.rows.map((r) => h('tr', {}, ...r.map((c) => h('td', { class: typeof c === 'number' ? 'num' : '' }, cellNode(c)))))),
          ),
        )
      : h('p', { class: 'muted' }, 'The table is empty.');
    this.rows.replaceChildren(
      h('h2', { id: 'h-rows' }, 'Rows of ', h('code', {}, table), h('span', { class: 'muted' }, ` · ordered by ${page.order}`)),
      pager('rows', page.offset, page.limit, page.total, page.rows.length, (o) => void this.loadRows(table, o)),
      body,
    );
  }

  // ------------------------------------------------------------------ a comparison

  private renderCompare(s: CompareState): void {
    const live = s.newer.kind === 'live';
    const header = h(
      'header',
      { class: 'top' },
      h(
        'div',
        { class: 'titles' },
        h('h1', {}, s.older.dbLabel, ' ', h('span', { class: 'badge' }, 'comparison')),
        h('p', { class: 'sub', id: 'sides' }, `From the ${sideLabel(s.older)} to the ${sideLabel(s.newer)}`),
      ),
      live ? h('div', { class: 'buttons' }, h('vscode-button', { id: 'refresh', secondary: true, disabled: !!s.busy, onclick: () => this.host.command({ kind: 'command', method: 'inspect/compare/refresh' }) }, 'Compare Again')) : '',
    );
    const notice = s.notice
      ? h(
          'div',
          { class: `banner ${s.notice.ok ? 'ok' : 'error'}`, id: 'notice', role: s.notice.ok ? 'status' : 'alert' },
          h('div', {}, s.notice.message),
          s.notice.details.length ? h('ul', {}, ...s.notice.details.map((d) => h('li', {}, d))) : '',
        )
      : '';
    const busy = s.busy ? h('p', { class: 'busy', id: 'busy', role: 'status' }, `${s.busy[0].toUpperCase()}${s.busy.slice(1)}…`) : '';
    const totalRows = s.tables.reduce((n, t) => n + t.added + t.removed + t.changed, 0);
    const summary = h(
      'p',
      { class: 'muted', id: 'summary' },
      `${plural(s.tables.filter((t) => t.added + t.removed + t.changed > 0).length, 'table')} with changed rows (${plural(totalRows, 'row')} in all), ${plural(s.schema.added.length + s.schema.removed.length + s.schema.changed.length, 'schema change')}.`,
    );
    const selected = s.tables.find((t) => t.name === this.saved.table) ?? s.tables.find((t) => t.added + t.removed + t.changed > 0);
    this.root.replaceChildren(header, notice, busy, summary, this.schemaChanges(s), this.changesTable(s, selected), this.rows);
    if (selected && selected.added + selected.removed + selected.changed > 0) {
      // A new comparison (after a restore, Compare Again) reads the rows again.
      const most = Math.max(selected.added, selected.removed, selected.changed);
      const kept = selected.name === this.saved.table ? (this.saved.offset ?? 0) : 0;
      const offset = kept < most ? kept : 0;
      if (this.diffKey(s, selected, offset) !== this.rowsKey) void this.loadDiffRows(selected.name, offset);
    } else {
      this.rowsKey = '';
      this.rows.replaceChildren(selected ? h('p', { class: 'muted' }, `No rows of ${selected.name} changed.`) : '');
    }
  }

  private diffKey(s: CompareState, t: TableChange | undefined, offset: number): string {
    return ['diff', t?.name, s.newer.takenAt, t?.added, t?.removed, t?.changed, offset].join('\u0000');
  }

  private schemaChanges(s: CompareState): HTMLElement {
    const items: HTMLElement[] = [
      ...s.schema.added.map((o) => h('li', { class: 'added' }, `Added ${o.type} `, h('code', {}, o.name))),
      ...s.schema.removed.map((o) => h('li', { class: 'removed' }, `Removed ${o.type} `, h('code', {}, o.name))),
      ...s.schema.changed.map((o) => {
        const c = o.columns;
        const parts = c ? [c.added.length ? `columns added: ${c.added.join(', ')}` : '', c.removed.length ? `columns removed: ${c.removed.join(', ')}` : '', c.changed.length ? `columns changed: ${c.changed.join(', ')}` : ''].filter(Boolean) : [];
        return h('li', { class: 'changed' }, `Changed ${o.type} `, h('code', {}, o.name), parts.length ? `: ${parts.join('; ')}` : '');
      }),
    ];
    return h(
      'section',
      { 'aria-labelledby': 'h-schema-changes', id: 'schema-changes' },
      h('h2', { id: 'h-schema-changes' }, 'Schema changes'),
      items.length ? h('ul', { class: 'schema-list' }, ...items) : h('p', { class: 'muted' }, 'No schema changes.'),
    );
  }

  private changesTable(s: CompareState, selected: TableChange | undefined): HTMLElement {
    const restore = (t: TableChange) =>
      s.restore.offered
        ? button('Restore This Table', {
            class: 'act restore',
            'data-restore': t.name,
            disabled: !!s.busy,
            'aria-label': `Restore table ${t.name} from the backup`,
            onclick: (e: Event) => void this.restoreTable(t.name, e.currentTarget as HTMLButtonElement),
          })
        : '';
    const changed = (t: TableChange) => t.added + t.removed + t.changed > 0;
    const table = h(
      'table',
      { class: 'grid', id: 'changes', 'aria-label': 'Rows added, removed and changed per table' },
      h(
        'thead',
        {},
        h('tr', {}, h('th', { scope: 'col' }, 'Table'), h('th', { scope: 'col', class: 'num' }, 'Added'), h('th', { scope: 'col', class: 'num' }, 'Removed'), h('th', { scope: 'col', class: 'num' }, 'Changed'), h('th', { scope: 'col' }, 'Rows matched by'), h('th', { scope: 'col' }, 'Actions')),
      ),
      h(
        'tbody',
        {},
        ...s.tables.map((t) =>
          h(
            'tr',
            { 'data-table': t.name, class: `${t.name === selected?.name ? 'selected' : ''} ${changed(t) ? '' : 'same'}` },
            h('td', {}, h('code', {}, t.name)),
            h('td', { class: `num ${t.added ? 'added' : ''}` }, count(t.added)),
            h('td', { class: `num ${t.removed ? 'removed' : ''}` }, count(t.removed)),
            h('td', { class: `num ${t.changed ? 'changed' : ''}` }, count(t.changed)),
            h('td', { class: 'muted key' }, t.key),
            h('td', { class: 'actions' }, changed(t) ? button('Show Rows', { 'data-rows': t.name, 'aria-label': `Show the changed rows of ${t.name}`, onclick: () => this.selectTable(t.name) }) : h('span', { class: 'muted' }, 'no changes'), restore(t)),
          ),
        ),
      ),
    );
    const skipped = Object.entries(s.notCompared);
    return h(
      'section',
      { 'aria-labelledby': 'h-changes' },
      h('h2', { id: 'h-changes' }, 'Tables'),
      s.tables.length ? h('div', { class: 'table-wrap fit' }, table) : h('p', { class: 'muted' }, 'No table is in both databases.'),
      skipped.length ? h('p', { class: 'muted' }, `Not compared: ${skipped.map(([n, why]) => `${n} (${why})`).join('; ')}`) : '',
      s.restore.offered ? '' : h('p', { class: 'muted', id: 'no-restore' }, `Restore This Table is not offered: ${s.restore.why ?? ''}.`),
    );
  }

  private async restoreTable(table: string, b: HTMLButtonElement): Promise<void> {
    b.disabled = true;
    const label = b.textContent;
    b.textContent = 'Restoring…';
    try {
      await this.host.request('inspect/table/restore', { table });
    } catch (e) {
      this.root.querySelector('#notice')?.remove();
      this.root.querySelector('header.top')?.after(h('div', { class: 'banner error', id: 'notice', role: 'alert' }, (e as Error).message));
    } finally {
      // A new state redraws the table; until then the button is usable again.
      b.disabled = false;
      b.textContent = label;
    }
  }

  private async loadDiffRows(table: string, offset: number): Promise<void> {
    const s = this.state;
    if (s?.view !== 'compare') return;
    const seq = ++this.seq;
    this.persist({ table, offset });
    this.rowsKey = this.diffKey(s, s.tables.find((x) => x.name === table), offset);
    this.rows.setAttribute('aria-busy', 'true');
    let page: DiffRowsPage;
    try {
      page = await this.host.request('inspect/diff/rows', { table, offset });
    } catch (e) {
      if (seq === this.seq) this.rows.replaceChildren(h('h2', {}, `Changed rows of ${table}`), h('div', { class: 'banner error', role: 'alert' }, `Reading the rows failed: ${(e as Error).message}`));
      return;
    } finally {
      if (seq === this.seq) this.rows.removeAttribute('aria-busy');
    }
    if (seq !== this.seq) return;
    this.page = page;
    this.rows.replaceChildren(...this.sideBySide(s, page));
  }

  /** Draws the page on screen again (the selection changed). */
  private redrawPage(): void {
    const s = this.state;
    if (s?.view !== 'compare' || !this.page) return;
    const focused = (document.activeElement as HTMLElement | null)?.id || (document.activeElement as HTMLElement | null)?.dataset?.key;
    this.rows.replaceChildren(...this.sideBySide(s, this.page));
    if (focused) ((this.rows.querySelector(`#${CSS.escape(focused)}`) ?? this.rows.querySelector(`input[data-key="${CSS.escape(focused)}"]`)) as HTMLElement | null)?.focus();
  }

  private pickRow(row: SelectedRow, on: boolean, redraw = true): void {
    const id = JSON.stringify(row.key);
    if (on && this.picked.rows.size < MAX_SELECTED_ROWS) this.picked.rows.set(id, row);
    else if (!on) this.picked.rows.delete(id);
    if (redraw) this.redrawPage();
  }

  private clearPicked(): void {
    this.picked.rows.clear();
    this.redrawPage();
  }

  private async restoreRows(table: string, b: HTMLButtonElement): Promise<void> {
    const rows = [...this.picked.rows.values()];
    if (!rows.length) return;
    b.disabled = true;
    const label = b.textContent;
    b.textContent = 'Restoring…';
    try {
      const r = await this.host.request('inspect/rows/restore', { table, rows });
      // Restored: the rows are the backup's now, and the comparison made again lists them no more.
      if (r.outcome === 'restored' && this.picked.table === table) this.clearPicked();
    } catch (e) {
      this.root.querySelector('#notice')?.remove();
      this.root.querySelector('header.top')?.after(h('div', { class: 'banner error', id: 'notice', role: 'alert' }, (e as Error).message));
    } finally {
      b.disabled = false;
      b.textContent = label;
    }
  }

  private sideBySide(s: CompareState, page: DiffRowsPage): Node[] {
    const oc = page.olderColumns;
    const nc = page.newerColumns;
    const most = Math.max(page.counts.added, page.counts.removed, page.counts.changed);
    const shown = Math.max(page.added.length, page.removed.length, page.changed.length);
    const absent = (n: number, side: 'old' | 'new') => h('td', { class: `absent ${side === 'new' ? 'split' : ''}`, colspan: Math.max(1, n) }, '—');
    const cells = (row: DiffRow, cols: string[], side: 'old' | 'new', other?: { row: DiffRow; cols: string[] }) =>
      cols.map((c, i) => {
        const v = row.values[i];
        const j = other ? other.cols.indexOf(c) : -1;
        const differs = other !== undefined && (j < 0 || !sameCell(v, other.row.values[j]));
        const cls = [typeof v === 'number' ? 'num' : '', differs ? `diff ${side}` : '', side === 'new' && i === 0 ? 'split' : ''].filter(Boolean).join(' ');
        return h('td', { class: cls, 'data-col': c }, cellNode(v));
      });
    const times = (r: DiffRow) => (r.count !== undefined && r.count > 1 ? ` ×${r.count}` : '');
    // Rows can be picked where the host restores rows: a comparison with the current database, a keyed table.
    const pickable = s.restore.offered && [...page.changed.map((c) => c.old), ...page.removed, ...page.added].some((r) => r.key);
    if (this.picked.table !== page.table) this.picked = { table: page.table, rows: new Map() };
    const onPage: SelectedRow[] = [...page.changed.map((c) => ({ key: c.old.key, kind: 'changed' as const })), ...page.removed.map((r) => ({ key: r.key, kind: 'removed' as const })), ...page.added.map((r) => ({ key: r.key, kind: 'added' as const }))].filter(
      (x): x is SelectedRow => !!x.key,
    );
    const pick = (row: DiffRow, kind: SelectedRow['kind']) => {
      if (!pickable) return '';
      const key = row.key;
      if (!key) return h('td', { class: 'pick' }, '');
      const id = JSON.stringify(key);
      return h(
        'td',
        { class: 'pick' },
        h('input', {
          type: 'checkbox',
          class: 'pick',
          'data-key': id,
          'data-kind': kind,
          checked: this.picked.rows.has(id),
          disabled: !!s.busy,
          'aria-label': `Select the ${kind} row ${keyText(key)}`,
          onchange: (e: Event) => this.pickRow({ key, kind }, (e.currentTarget as HTMLInputElement).checked),
        }),
      );
    };
    const allOnPage = onPage.length > 0 && onPage.every((x) => this.picked.rows.has(JSON.stringify(x.key)));
    const body: HTMLElement[] = [
      ...page.changed.map((c) => h('tr', { class: 'changed' }, pick(c.old, 'changed'), h('th', { scope: 'row' }, 'changed'), ...cells(c.old, oc, 'old', { row: c.new, cols: nc }), ...cells(c.new, nc, 'new', { row: c.old, cols: oc }))),
      ...page.removed.map((r) => h('tr', { class: 'removed' }, pick(r, 'removed'), h('th', { scope: 'row' }, `removed${times(r)}`), ...cells(r, oc, 'old'), absent(nc.length, 'new'))),
      ...page.added.map((r) => h('tr', { class: 'added' }, pick(r, 'added'), h('th', { scope: 'row' }, `added${times(r)}`), absent(oc.length, 'old'), ...cells(r, nc, 'new'))),
    ];
    const n = this.picked.rows.size;
    const selection = pickable
      ? h(
          'div',
          { class: 'pager', id: 'selection', role: 'group', 'aria-label': 'Selected rows' },
          h('span', { class: 'page-text', id: 'selected-count', 'aria-live': 'polite' }, n ? `${plural(n, 'row')} selected` : 'Select rows to restore them from the backup'),
          button('Clear', { id: 'clear-selection', disabled: !n || !!s.busy, onclick: () => this.clearPicked() }),
          button('Restore Selected Rows', {
            id: 'restore-rows',
            class: 'act restore',
            disabled: !n || !!s.busy,
            'aria-label': `Restore the ${plural(n, 'selected row')} of ${page.table} from the backup`,
            onclick: (e: Event) => void this.restoreRows(page.table, e.currentTarget as HTMLButtonElement),
          }),
        )
      : '';
    const pickAll = pickable
      ? h(
          'th',
          { scope: 'col', class: 'pick' },
          h('input', {
            type: 'checkbox',
            class: 'pick',
            id: 'pick-page',
            checked: allOnPage,
            disabled: !onPage.length || !!s.busy,
            'aria-label': 'Select every row on this page',
            onchange: (e: Event) => {
              for (const x of onPage) this.pickRow(x, (e.currentTarget as HTMLInputElement).checked, false);
              this.redrawPage();
            },
          }),
        )
      : '';
    return [
      h('h2', { id: 'h-rows' }, 'Changed rows of ', h('code', {}, page.table), h('span', { class: 'muted' }, ` · matched by ${page.key}`)),
      h('p', { class: 'muted', id: 'diff-counts' }, `${plural(page.counts.added, 'row')} added, ${count(page.counts.removed)} removed, ${count(page.counts.changed)} changed; up to ${page.limit} of each kind per page.`),
      pager('diff', page.offset, page.limit, most, shown, (o) => void this.loadDiffRows(page.table, o), true),
      ...(selection ? [selection] : []),
      h(
        'div',
        { class: 'table-wrap fit rows-wrap', tabindex: 0, 'aria-label': `Changed rows of ${page.table}, scrollable` },
        h(
          'table',
          { class: 'grid data side-by-side', id: 'diff-table', 'aria-label': `Changed rows of ${page.table}, the older version on the left, the newer on the right` },
          h(
            'thead',
            {},
            h('tr', {}, pickable ? h('th', {}, '') : '', h('th', {}, ''), h('th', { colspan: Math.max(1, oc.length), class: 'side older' }, `In the ${sideLabel(s.older)}`), h('th', { colspan: Math.max(1, nc.length), class: 'side newer split' }, `In the ${sideLabel(s.newer)}`)),
            h('tr', {}, pickAll, h('th', { scope: 'col' }, 'Change'), ...oc.map((c) => h('th', { scope: 'col', class: 'older' }, c)), ...nc.map((c, i) => h('th', { scope: 'col', class: `newer ${i === 0 ? 'split' : ''}` }, c))),
          ),
          h('tbody', {}, ...body),
        ),
      ),
    ];
  }
}

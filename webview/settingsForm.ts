/**
 * The settings form: schedule (with the next three runs), shutdown and migration backups,
 * retention (with a live preview of what rotation would keep and delete, planned by the
 * host with the core's planRotation), directory, verification and notifications. Every
 * check and preview is a Request to the host (the core's validate(), slots and plan);
 * the webview holds no copy of those rules. Problems show beside their field.
 */
import type { FieldIssue, FormKey, HostConnectionLike, RequestResultsOf, SettingsScope, SettingsValues } from './formTypes';
import { FORM_KEYS, SCOPE_LABELS } from './protocol';
import { h } from './dom';
import { formatWhen } from './format';

type FieldKind = 'bool' | 'text' | 'int' | 'select';
interface FieldDef {
  key: FormKey;
  label: string;
  kind: FieldKind;
  help?: string;
  options?: [string, string][];
  placeholder?: string;
  /** Left empty, the field takes this field's value: its placeholder says which ("same as local: 30"). */
  inherits?: FormKey;
}

/** Fields that edit the keys of one object setting (`parent`), shown together under a title of their own. */
interface FieldGroup {
  parent: string;
  title: string;
  note: string;
  fields: FieldDef[];
}

const SECTIONS: { title: string; fields: FieldDef[]; group?: FieldGroup; preview?: 'schedule' | 'retention' }[] = [
  {
    title: 'Schedule',
    preview: 'schedule',
    fields: [
      { key: 'enabled', label: 'Automatic backups (schedule, shutdown, migrations)', kind: 'bool' },
      { key: 'schedule.daily', label: 'Daily scheduled backup', kind: 'bool' },
      { key: 'schedule.time', label: 'Time (HH:MM, 24 h)', kind: 'text', placeholder: '02:00' },
      { key: 'schedule.cron', label: 'Advanced: cron expression (replaces the time)', kind: 'text', placeholder: 'e.g. 0 */4 * * *' },
    ],
  },
  {
    title: 'Events',
    fields: [
      { key: 'backupOnShutdown', label: 'Back up when VS Code closes', kind: 'bool' },
      { key: 'migrations.backupBefore', label: 'Back up before migrations', kind: 'bool' },
    ],
  },
  {
    title: 'Retention',
    preview: 'retention',
    fields: [
      { key: 'retention.daily', label: 'Daily backups kept', kind: 'int' },
      { key: 'retention.weekly', label: 'Weekly backups kept', kind: 'int' },
      { key: 'retention.monthly', label: 'Monthly backups kept', kind: 'int' },
      { key: 'retention.keepWithin', label: 'Keep everything within (e.g. 2d, 12h)', kind: 'text' },
      { key: 'retention.keepEventBackups', label: 'Migration and pre-restore backups kept (0 = all)', kind: 'int' },
    ],
  },
  {
    title: 'Storage and verification',
    fields: [
      { key: 'directory', label: 'Backup directory', kind: 'text' },
      {
        key: 'verification.mode',
        label: 'Verification',
        kind: 'select',
        options: [
          ['auto', 'auto: integrity_check, quick_check for large databases'],
          ['full', 'full: always integrity_check'],
          ['quick', 'quick: always quick_check'],
        ],
      },
      { key: 'verification.restoreTest', label: 'Weekly restore test', kind: 'bool' },
      { key: 'verification.probeQuery', label: 'Probe query (optional)', kind: 'text', placeholder: 'SELECT * FROM users LIMIT 1' },
    ],
  },
  {
    // Secrets are never settings: keys and passphrases go through "Set Off-site Credentials...".
    title: 'Off-site copy',
    fields: [
      { key: 'offsite.url', label: 'Remote URL (s3://, sftp:// or file://; empty: none)', kind: 'text', placeholder: 's3://my-bucket/backups' },
      { key: 'offsite.endpoint', label: 'S3 endpoint other than AWS', kind: 'text', placeholder: 'https://<account>.r2.cloudflarestorage.com' },
      { key: 'offsite.region', label: 'S3 region (empty: AWS_REGION or us-east-1)', kind: 'text', placeholder: 'eu-central-1' },
      { key: 'offsite.encrypt', label: 'Encrypt a new remote (age, with a passphrase)', kind: 'bool' },
      { key: 'offsite.bandwidthKiBps', label: 'Upload limit, KiB/s (0 = none)', kind: 'int' },
    ],
    // lifeboat.offsite.retention: one field per key of the object; an empty field leaves the key out.
    group: {
      parent: 'offsite.retention',
      title: 'Off-site rotation',
      note: 'Empty: same as the local retention.',
      fields: [
        { key: 'offsite.retention.daily', label: 'Daily copies kept', kind: 'int', inherits: 'retention.daily' },
        { key: 'offsite.retention.weekly', label: 'Weekly copies kept', kind: 'int', inherits: 'retention.weekly' },
        { key: 'offsite.retention.monthly', label: 'Monthly copies kept', kind: 'int', inherits: 'retention.monthly' },
        { key: 'offsite.retention.keepWithin', label: 'Keep every copy within (0d = none)', kind: 'text', inherits: 'retention.keepWithin' },
        { key: 'offsite.retention.keepEventBackups', label: 'Migration and pre-restore copies kept (0 = all)', kind: 'int', inherits: 'retention.keepEventBackups' },
      ],
    },
  },
  {
    title: 'Notifications',
    fields: [
      {
        key: 'notifications',
        label: 'Notify on',
        kind: 'select',
        options: [
          ['all', 'every backup'],
          ['failures', 'failures only'],
          ['none', 'nothing but failures that need you'],
        ],
      },
    ],
  },
];


interface Control {
  def: FieldDef;
  input: HTMLElement & { value?: string; checked?: boolean; invalid?: boolean };
  error: HTMLElement;
}

const domId = (key: string) => `f-${key.replace(/\./g, '-')}`;

/** The form for one database; `load` replaces the values unless the user has unsaved edits. */
export class SettingsForm {
  readonly el: HTMLElement;
  private readonly controls = new Map<FormKey, Control>();
  /** The error line of each group, for an issue about its object setting as a whole. */
  private readonly groupErrors = new Map<string, { title: string; el: HTMLElement }>();
  private db = '';
  private base: SettingsValues = {};
  private dirty = false;
  private timer: ReturnType<typeof setTimeout> | undefined;
  /** The previews the pending round (`timer`) refreshes: every edit since the last round adds its own. */
  private readonly pending = { schedule: false, retention: false };
  private readonly seq = { validate: 0, schedule: 0, retention: 0 };
  private readonly schedulePreview: HTMLElement;
  private readonly retentionPreview: HTMLElement;
  private readonly status: HTMLElement;
  private readonly scope: HTMLElement & { value: string };
  private readonly saveButton: HTMLElement & { disabled: boolean };

  constructor(
    private readonly host: HostConnectionLike,
    scopes: SettingsScope[],
  ) {
    this.schedulePreview = h('div', { class: 'preview', id: 'schedule-preview', 'aria-live': 'polite' });
    this.retentionPreview = h('div', { class: 'preview', id: 'retention-preview', 'aria-live': 'polite' });
    this.status = h('span', { class: 'form-status', role: 'status' });
    this.scope = h('vscode-single-select', { id: 'settings-scope', 'aria-label': 'Save to' }) as unknown as HTMLElement & { value: string };
    this.setScopes(scopes);
    this.saveButton = h('vscode-button', { id: 'settings-save', onclick: () => void this.save() }, 'Save Settings') as unknown as HTMLElement & { disabled: boolean };
    const form = h('form', { class: 'settings', 'aria-label': 'Settings', onsubmit: (e: Event) => e.preventDefault() });
    for (const sec of SECTIONS) {
      const fs = h('fieldset', {}, h('legend', {}, sec.title));
      for (const def of sec.fields) fs.append(this.field(def));
      if (sec.group) fs.append(this.group(sec.group));
      if (sec.preview === 'schedule') fs.append(h('div', { class: 'preview-label' }, 'Next runs'), this.schedulePreview);
      if (sec.preview === 'retention') fs.append(h('div', { class: 'preview-label' }, 'What rotation would do now'), this.retentionPreview);
      form.append(fs);
    }
    form.append(
      h(
        'div',
        { class: 'form-actions' },
        h('label', { for: 'settings-scope', class: 'inline' }, 'Save to'),
        this.scope,
        this.saveButton,
        h('vscode-button', { secondary: true, id: 'settings-revert', onclick: () => this.revert() }, 'Revert'),
        h('vscode-button', { secondary: true, id: 'settings-open', onclick: () => this.host.command({ kind: 'command', method: 'settings/editor/open' }) }, 'Open Settings Editor'),
        this.status,
      ),
    );
    this.el = form;
  }

  /** The scopes offered; keeps the current choice when still offered. */
  setScopes(scopes: SettingsScope[]): void {
    const cur = this.scope.value;
    this.scope.replaceChildren(...scopes.map((sc) => h('vscode-option', { value: sc }, SCOPE_LABELS[sc])));
    this.scope.value = scopes.includes(cur as SettingsScope) ? cur : scopes[0];
  }

  private group(g: FieldGroup): HTMLElement {
    const id = domId(g.parent);
    const error = h('div', { class: 'error', id: `${id}-error`, role: 'alert' });
    this.groupErrors.set(g.parent, { title: g.title, el: error });
    return h(
      'div',
      { class: 'group', id, role: 'group', 'aria-labelledby': `${id}-title`, 'aria-describedby': `${id}-note` },
      h('div', { class: 'group-title', id: `${id}-title` }, g.title),
      h('div', { class: 'muted group-note', id: `${id}-note` }, g.note),
      error,
      ...g.fields.map((def) => this.field(def)),
    );
  }

  /** Each inheriting field's placeholder: the value it takes while empty, as the form holds it now. */
  private showInherited(): void {
    for (const c of this.controls.values()) {
      if (!c.def.inherits) continue;
      const from = this.controls.get(c.def.inherits);
      const v = String(from?.input.value ?? '').trim();
      c.input.setAttribute('placeholder', `same as local: ${v === '' ? 'none' : v}`);
    }
  }

  private field(def: FieldDef): HTMLElement {
    const id = domId(def.key);
    const error = h('div', { class: 'error', id: `${id}-error`, role: 'alert' });
    let input: Control['input'];
    const onEdit = () => this.edited(def.key);
    if (def.kind === 'bool') {
      input = h('vscode-checkbox', { id, label: def.label, 'data-key': def.key, onchange: onEdit }, def.label);
      this.controls.set(def.key, { def, input, error });
      return h('div', { class: 'row bool' }, input, error);
    }
    if (def.kind === 'select') {
      input = h('vscode-single-select', { id, 'aria-label': def.label, 'data-key': def.key, onchange: onEdit }, ...def.options!.map(([v, l]) => h('vscode-option', { value: v }, l)));
    } else {
      const size = def.inherits ? 'inherits' : def.kind === 'int' || def.key === 'schedule.time' ? 'short' : 'wide';
      input = h('vscode-textfield', { id, label: def.label, 'data-key': def.key, placeholder: def.placeholder, oninput: onEdit, class: size });
    }
    this.controls.set(def.key, { def, input, error });
    return h('div', { class: 'row' }, h('label', { for: id }, def.label), h('div', { class: 'control' }, input, error));
  }

  /** Shows `values` of database `db`. Unsaved edits of the same database are kept. */
  load(db: string, values: SettingsValues): void {
    const same = db === this.db;
    this.base = values;
    if (same && this.dirty) return;
    this.db = db;
    this.dirty = false;
    for (const [key, c] of this.controls) {
      const v = values[key];
      if (c.def.kind === 'bool') c.input.checked = v === true;
      else c.input.value = v === undefined || v === null ? '' : String(v);
    }
    this.showInherited();
    this.showIssues([]);
    if (!same) this.status.textContent = '';
    void this.refreshPreviews(true, true);
  }

  /** The form's values; whole numbers in number fields become numbers, anything else is sent as typed (the host validates). */
  values(): SettingsValues {
    const out: SettingsValues = {};
    for (const [key, c] of this.controls) {
      if (c.def.kind === 'bool') out[key] = c.input.checked === true;
      else if (c.def.kind === 'int') {
        const t = String(c.input.value ?? '').trim();
        out[key] = /^-?\d+$/.test(t) ? Number(t) : t;
      } else out[key] = String(c.input.value ?? '');
    }
    return out;
  }

  private edited(key: FormKey): void {
    this.dirty = true;
    this.status.textContent = '';
    const schedule = key === 'enabled' || key.startsWith('schedule.');
    const retention = key.startsWith('retention.');
    if (retention) this.showInherited();
    if (this.timer) clearTimeout(this.timer);
    this.pending.schedule ||= schedule;
    this.pending.retention ||= retention;
    // One round of requests per pause in typing.
    this.timer = setTimeout(() => void this.flushEdits(), 200);
  }

  /** Runs the pending round of checks and previews now, if any. */
  private flushEdits(): Promise<void> {
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    const { schedule, retention } = this.pending;
    this.pending.schedule = this.pending.retention = false;
    return this.refreshPreviews(schedule, retention, true);
  }

  private async refreshPreviews(schedule: boolean, retention: boolean, validate = false): Promise<void> {
    const db = this.db;
    const values = this.values();
    const jobs: Promise<void>[] = [];
    if (validate) {
      const n = ++this.seq.validate;
      jobs.push(
        this.host.request('settings/values/validate', { db, values }).then(
          (r) => void (n === this.seq.validate && this.showIssues(r.issues)),
          (e: Error) => void (this.status.textContent = `Could not check the settings: ${e.message}`),
        ),
      );
    }
    if (schedule) {
      const n = ++this.seq.schedule;
      jobs.push(
        this.host.request('settings/schedule/preview', { db, values }).then(
          (r) => void (n === this.seq.schedule && this.paintSchedule(r)),
          (e: Error) => void this.schedulePreview.replaceChildren(`Preview unavailable: ${e.message}`),
        ),
      );
    }
    if (retention) {
      const n = ++this.seq.retention;
      jobs.push(
        this.host.request('settings/retention/preview', { db, values }).then(
          (r) => void (n === this.seq.retention && this.paintRetention(r)),
          (e: Error) => void this.retentionPreview.replaceChildren(`Preview unavailable: ${e.message}`),
        ),
      );
    }
    await Promise.all(jobs);
  }

  private paintSchedule(r: RequestResultsOf<'settings/schedule/preview'>): void {
    if (r.issues.length) {
      this.schedulePreview.replaceChildren(h('span', { class: 'muted' }, 'Fix the schedule to see its next runs.'));
      this.showIssues(r.issues, true);
      return;
    }
    if (!r.runs.length) {
      this.schedulePreview.replaceChildren(h('span', { class: 'muted' }, `No scheduled backups (${r.label}).`));
      return;
    }
    this.schedulePreview.replaceChildren(h('span', { class: 'muted' }, `${r.label}: `), h('ol', { class: 'runs' }, ...r.runs.map((t) => h('li', {}, formatWhen(t)))));
  }

  private paintRetention(r: RequestResultsOf<'settings/retention/preview'>): void {
    if (r.issues.length) {
      this.retentionPreview.replaceChildren(h('span', { class: 'muted' }, 'Fix the retention counts to see the preview.'));
      this.showIssues(r.issues, true);
      return;
    }
    const total = r.keep.length + r.remove.length;
    const head = h(
      'p',
      { class: r.remove.length ? 'warn' : '' },
      total === 0
        ? 'No backups yet: nothing to keep or delete.'
        : r.remove.length
          ? `Keeps ${r.keep.length} and deletes ${r.remove.length} of the ${total} backups.`
          : `Keeps all ${total} backups; deletes nothing.`,
    );
    const parts: Node[] = [head];
    if (r.refused) parts.push(h('p', { class: 'error-text' }, `Refused by the safety guard: ${r.refused}`));
    if (r.remove.length) {
      const list = h('ul', { class: 'removals' }, ...r.remove.slice(0, 8).map((x) => h('li', {}, h('code', {}, x.id), `: ${x.reasons.join('; ')}`)));
      if (r.remove.length > 8) list.append(h('li', {}, `… and ${r.remove.length - 8} more`));
      parts.push(list);
    }
    this.retentionPreview.replaceChildren(...parts);
  }

  /**
   * Shows each issue beside its field (`lifeboat.<key>`), or above its group's fields when it
   * is about a group's object setting as a whole; clears the others unless `add`.
   */
  showIssues(issues: FieldIssue[], add = false): void {
    const byKey = new Map(issues.map((i) => [i.field.replace(/^lifeboat\./, ''), i.reason]));
    for (const [key, c] of this.controls) {
      const reason = byKey.get(key);
      if (!reason && add) continue;
      c.error.textContent = reason ? `${c.def.label.replace(/ \(.*\)$/, '')} ${reason}.` : '';
      c.input.invalid = !!reason;
      c.input.toggleAttribute('invalid', !!reason);
    }
    for (const [key, g] of this.groupErrors) {
      const reason = byKey.get(key);
      if (!reason && add) continue;
      g.el.textContent = reason ? `${g.title} ${reason}.` : '';
    }
  }

  private async save(): Promise<void> {
    const scope = this.scope.value as SettingsScope;
    this.saveButton.disabled = true;
    this.status.textContent = 'Saving…';
    try {
      // An edit's check still to come would answer after the save and clear what the save
      // reports (a problem only the save sees: a key another scope holds): check first.
      if (this.timer) await this.flushEdits();
      this.seq.validate++;
      const r = await this.host.request('settings/values/save', { db: this.db, scope, values: this.values() });
      this.showIssues(r.issues);
      if (r.issues.length) this.status.textContent = `Not saved: ${r.issues.length} setting${r.issues.length === 1 ? ' needs' : 's need'} fixing.`;
      else {
        this.dirty = false;
        this.status.textContent = r.saved.length ? `Saved ${r.saved.length} setting${r.saved.length === 1 ? '' : 's'} to ${SCOPE_LABELS[scope]}.` : 'Nothing changed.';
      }
    } catch (e) {
      this.status.textContent = `Not saved: ${(e as Error).message}`;
    } finally {
      this.saveButton.disabled = false;
    }
  }

  private revert(): void {
    this.dirty = false;
    const db = this.db;
    this.db = '';
    this.load(db, this.base);
    this.status.textContent = 'Reverted.';
  }
}


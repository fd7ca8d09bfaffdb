/**
 * The headless tests' host: answers the panel's Requests the way src/extension/panel.ts
 * does, with the core's real validate() and schedule slots, and a rotation preview over
 * the fixture's rows. Bundled for Node by run.mjs; no VS Code.
 */
import { DEFAULT_SETTINGS, normalize, validate } from '../../src/core/config';
import { scheduleFromSettings, slotsBetween } from '../../src/core/schedule/slots';
import { planSave } from '../../src/extension/panelHostState';
import type { PanelState, RequestResults, SettingsValues } from '../../webview/protocol';

export { answerInspect, browseState, compareState } from './inspectFixtures';

const issuesOf = (values: SettingsValues) => validate(new Map(Object.entries(values))).map((i) => ({ field: i.field, reason: i.reason }));

/** What each Save wrote, in order (the real host's cfg.update calls). Tests clear and read it. */
export const written: { db: string; scope: string; key: string; value: unknown }[] = [];
/** What the scope written to holds for lifeboat.offsite.retention, per database (raw, as in settings.json). */
export const ownRetention = new Map<string, unknown>();

/** Answers one Request like the real host (the retention preview keeps the newest `retention.daily` rows). */
export function answer(method: string, params: { db: string; values: SettingsValues; scope?: string }, state: PanelState, now: Date): RequestResults[keyof RequestResults] {
  const issues = issuesOf(params.values);
  const db = state.databases.find((d) => d.id === params.db);
  if (!db) throw new Error(`${params.db} is not a protected database`);
  switch (method) {
    case 'settings/values/validate':
      return { issues };
    case 'settings/schedule/preview': {
      const own = issues.filter((i) => /^lifeboat\.(enabled|schedule\.)/.test(i.field));
      if (own.length) return { label: '', runs: [], issues: own };
      const settings = normalize(params.values, DEFAULT_SETTINGS).settings;
      const s = scheduleFromSettings(settings, 'UTC');
      if (!s) return { label: 'off', runs: [], issues: [] };
      return { label: s.label, runs: slotsBetween(s, now, new Date(now.getTime() + 400 * 86_400_000), 3).map((d) => d.toISOString()), issues: [] };
    }
    case 'settings/retention/preview': {
      const own = issues.filter((i) => i.field.startsWith('lifeboat.retention.'));
      if (own.length) return { keep: [], remove: [], issues: own };
      const n = Number(params.values['retention.daily']);
      const rows = db.history;
      return {
        keep: rows.slice(0, n).map((r) => ({ id: r.id, tier: r.tier, reasons: [`daily #${rows.indexOf(r) + 1}`] })),
        remove: rows.slice(n).map((r) => ({ id: r.id, reasons: [`not among the ${n} newest days`] })),
        issues: [],
      };
    }
    case 'settings/values/save': {
      // The real host's plan (src/extension/panelHostState.ts); only the writing is faked.
      const plan = planSave(new Map(Object.entries(params.values)), db.settings, { own: ownRetention.get(db.id) });
      if (plan.issues.length) return { saved: [], issues: plan.issues };
      for (const [key, value] of plan.writes) written.push({ db: db.id, scope: params.scope ?? '', key, value });
      return { saved: plan.writes.map(([k]) => k), issues: [] };
    }
  }
  throw new Error(`unknown request ${method}`);
}


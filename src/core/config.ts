/**
 * Lifeboat's settings: one shape for both front ends. The extension reads them from
 * VS Code's `lifeboat.*` configuration, the CLI from the nearest `.vscode/settings.json`
 * or a `lifeboat.json` beside the database; both go through `normalize()` and `validate()`.
 *
 * Adding a setting touches four places, in this order: `contributes.configuration` in
 * package.json; the field on `Settings`; its entry in `FIELDS` (coercion and check);
 * the reader that uses it.
 */

export type NotificationLevel = 'all' | 'failures' | 'none';
export type VerifyMode = 'auto' | 'full' | 'quick';
export type BackupFormatSetting = 'repository' | 'zip';

export interface RetentionSettings {
  /** Newest backup of each of the N most recent days that have one. */
  daily: number;
  /** Newest backup of each of the N most recent ISO weeks that have one. */
  weekly: number;
  /** Newest backup of each of the N most recent months that have one. */
  monthly: number;
  /** Keep everything newer than this duration (restic syntax: 2d, 1y2m3d3h; m = months). */
  keepWithin: string;
  /** Migration and pre-restore backups kept per database, outside the rules above. */
  keepEventBackups: number;
}

export interface Settings {
  /** Master switch for automatic work (schedule, shutdown and migration backups). */
  enabled: boolean;
  /** Databases to protect: paths or globs relative to the workspace folder. */
  databases: string[];
  /** Backup directory, relative to the workspace folder (or the database, for the CLI). */
  directory: string;
  /** Daily scheduled backups on or off. */
  scheduleDaily: boolean;
  /** Local time of the daily backup, HH:MM (24 h). */
  backupTime: string;
  /** Advanced: a cron expression that replaces backupTime when set (5 or 6 fields). */
  cron: string;
  /** Skip a scheduled backup when the database is unchanged since its last verified backup. */
  skipUnchanged: boolean;
  /** Back up when VS Code shuts down. */
  backupOnShutdown: boolean;
  /** Back up before tasks that look like migrations. */
  backupBeforeMigrations: boolean;
  /** Extra regular expressions (matched against a task's name and command) that mark migrations. */
  migrationTaskPatterns: string[];
  retention: RetentionSettings;
  /** full: integrity_check always; quick: quick_check always; auto: quick_check above quickCheckAboveMB. */
  verifyMode: VerifyMode;
  quickCheckAboveMB: number;
  /**
   * auto, repository only: an incremental backup (one with a parent) gets quick_check when
   * a backup of the same database passed integrity_check less than this many days before;
   * 0 = integrity_check every time (as for full copies).
   */
  fullCheckDays: number;
  /** Largest database the in-memory verifier (sql.js, the fallback) accepts; larger ones are reported as not verified. node:sqlite has no limit. */
  verifyMaxMB: number;
  /** An optional query that must run without error on every backup, e.g. SELECT * FROM employees LIMIT 1. */
  probeQuery: string;
  /** Weekly rolling restore test of the kept backups. */
  restoreTest: boolean;
  /** zlib level of the archives, 0 (store) to 9. */
  compressionLevel: number;
  /**
   * How new backups are stored: 'repository' (format v2: pages stored once and shared by
   * every later backup that has them) or 'zip' (format v1: one self-contained zip each).
   */
  format: BackupFormatSetting;
  /** Repository: start a fresh full copy (sharing no pages) when the newest one is this many days old; 0 = never. */
  freshBaseDays: number;
  notifications: NotificationLevel;
  offsite: OffsiteSettings;
}

/** Off-site copies (src/core/offsite): where, and how. Secrets are never settings. */
export interface OffsiteSettings {
  /** s3://bucket/prefix, sftp://user@host[:port]/path or file:///folder; '' = no off-site copies. */
  url: string;
  /** S3: a custom endpoint (R2, B2, MinIO, Swift); '' = AWS. */
  endpoint: string;
  /** S3: the region; '' = AWS_REGION or us-east-1. */
  region: string;
  /** Encrypt a new remote (age, with a passphrase). An existing remote keeps what it records. */
  encrypt: boolean;
  /** Upload limit in KiB/s; 0 = none. */
  bandwidthKiBps: number;
  /** The remote's own retention, over the local one: keys left out are the local policy's. */
  retention: Partial<RetentionSettings>;
}

export const DEFAULT_SETTINGS: Readonly<Settings> = Object.freeze({
  enabled: true,
  databases: [],
  directory: 'backups',
  scheduleDaily: true,
  backupTime: '02:00',
  cron: '',
  skipUnchanged: true,
  backupOnShutdown: true,
  backupBeforeMigrations: true,
  migrationTaskPatterns: [],
  retention: Object.freeze({ daily: 30, weekly: 12, monthly: 12, keepWithin: '2d', keepEventBackups: 10 }),
  verifyMode: 'auto',
  quickCheckAboveMB: 1024,
  fullCheckDays: 7,
  verifyMaxMB: 1536,
  probeQuery: '',
  restoreTest: true,
  compressionLevel: 1,
  format: 'repository',
  freshBaseDays: 0,
  notifications: 'failures',
  offsite: Object.freeze({ url: '', endpoint: '', region: '', encrypt: true, bandwidthKiBps: 0, retention: Object.freeze({}) }),
}) as Settings;

/** One invalid value: the setting's full key, the value seen, and why it was refused. */
export interface ValidationIssue {
  field: string;
  value: unknown;
  reason: string;
}

const DURATION_RE = /^(\d+[yYmMwWdDhH])+$/;
const TIME_RE = /^([01]\d|2[0-3]):[0-5]\d$/;

type Check = (v: unknown) => string | undefined;
const isBool: Check = (v) => (typeof v === 'boolean' ? undefined : 'must be true or false');
const isInt =
  (min: number, max: number): Check =>
  (v) =>
    typeof v === 'number' && Number.isInteger(v) && v >= min && v <= max
      ? undefined
      : `must be a whole number from ${min} to ${max}`;
const isStringArray: Check = (v) =>
  Array.isArray(v) && v.every((s) => typeof s === 'string') ? undefined : 'must be a list of strings';
const isOneOf =
  (...xs: string[]): Check =>
  (v) =>
    typeof v === 'string' && xs.includes(v) ? undefined : `must be one of ${xs.join(', ')}`;
const isString: Check = (v) => (typeof v === 'string' ? undefined : 'must be a string');

/**
 * Every setting: its key under `lifeboat.`, how to read and write it on `Settings`, and
 * its check. The keys are the VS Code setting names (`lifeboat.retention.daily`).
 */
export const FIELDS: ReadonlyArray<{
  key: string;
  get: (s: Settings) => unknown;
  set: (s: Settings, v: never) => void;
  check: Check;
}> = [
  { key: 'enabled', get: (s) => s.enabled, set: (s, v) => (s.enabled = v), check: isBool },
  { key: 'databases', get: (s) => s.databases, set: (s, v) => (s.databases = v), check: isStringArray },
  {
    key: 'directory',
    get: (s) => s.directory,
    set: (s, v) => (s.directory = v),
    check: (v) => (typeof v === 'string' && v.trim() !== '' ? undefined : 'must be a non-empty path'),
  },
  { key: 'schedule.daily', get: (s) => s.scheduleDaily, set: (s, v) => (s.scheduleDaily = v), check: isBool },
  {
    key: 'schedule.time',
    get: (s) => s.backupTime,
    set: (s, v) => (s.backupTime = v),
    check: (v) => (typeof v === 'string' && TIME_RE.test(v) ? undefined : 'must be a time HH:MM, 00:00 to 23:59'),
  },
  {
    key: 'schedule.cron',
    get: (s) => s.cron,
    set: (s, v) => (s.cron = v),
    check: (v) => {
      if (typeof v !== 'string') return 'must be a string';
      const n = v.trim() === '' ? 5 : v.trim().split(/\s+/).length;
      return n === 5 || n === 6 ? undefined : 'must be a cron expression of 5 or 6 fields, or empty';
    },
  },
  { key: 'schedule.skipUnchanged', get: (s) => s.skipUnchanged, set: (s, v) => (s.skipUnchanged = v), check: isBool },
  { key: 'backupOnShutdown', get: (s) => s.backupOnShutdown, set: (s, v) => (s.backupOnShutdown = v), check: isBool },
  {
    key: 'migrations.backupBefore',
    get: (s) => s.backupBeforeMigrations,
    set: (s, v) => (s.backupBeforeMigrations = v),
    check: isBool,
  },
  {
    key: 'migrations.taskPatterns',
    get: (s) => s.migrationTaskPatterns,
    set: (s, v) => (s.migrationTaskPatterns = v),
    check: (v) => {
      const e = isStringArray(v);
      if (e) return e;
      for (const p of v as string[]) {
        try {
          new RegExp(p);
        } catch {
          return `has an invalid regular expression: ${p}`;
        }
      }
      return undefined;
    },
  },
  { key: 'retention.daily', get: (s) => s.retention.daily, set: (s, v) => (s.retention.daily = v), check: isInt(0, 10000) },
  { key: 'retention.weekly', get: (s) => s.retention.weekly, set: (s, v) => (s.retention.weekly = v), check: isInt(0, 10000) },
  {
    key: 'retention.monthly',
    get: (s) => s.retention.monthly,
    set: (s, v) => (s.retention.monthly = v),
    check: isInt(0, 10000),
  },
  {
    key: 'retention.keepWithin',
    get: (s) => s.retention.keepWithin,
    set: (s, v) => (s.retention.keepWithin = v),
    check: (v) =>
      typeof v === 'string' && (v === '' || DURATION_RE.test(v))
        ? undefined
        : 'must be a duration such as 2d, 12h or 1y2m3d (m = months), or empty',
  },
  {
    key: 'retention.keepEventBackups',
    get: (s) => s.retention.keepEventBackups,
    set: (s, v) => (s.retention.keepEventBackups = v),
    check: isInt(0, 10000),
  },
  {
    key: 'verification.mode',
    get: (s) => s.verifyMode,
    set: (s, v) => (s.verifyMode = v),
    check: isOneOf('auto', 'full', 'quick'),
  },
  {
    key: 'verification.quickCheckAboveMB',
    get: (s) => s.quickCheckAboveMB,
    set: (s, v) => (s.quickCheckAboveMB = v),
    check: isInt(1, 1_000_000),
  },
  {
    key: 'verification.fullCheckDays',
    get: (s) => s.fullCheckDays,
    set: (s, v) => (s.fullCheckDays = v),
    check: isInt(0, 3650),
  },
  {
    key: 'verification.maxSizeMB',
    get: (s) => s.verifyMaxMB,
    set: (s, v) => (s.verifyMaxMB = v),
    check: isInt(1, 3072),
  },
  { key: 'verification.probeQuery', get: (s) => s.probeQuery, set: (s, v) => (s.probeQuery = v), check: isString },
  {
    key: 'verification.restoreTest',
    get: (s) => s.restoreTest,
    set: (s, v) => (s.restoreTest = v),
    check: isBool,
  },
  {
    key: 'compressionLevel',
    get: (s) => s.compressionLevel,
    set: (s, v) => (s.compressionLevel = v),
    check: isInt(0, 9),
  },
  { key: 'format', get: (s) => s.format, set: (s, v) => (s.format = v), check: isOneOf('repository', 'zip') },
  {
    key: 'repository.freshBaseDays',
    get: (s) => s.freshBaseDays,
    set: (s, v) => (s.freshBaseDays = v),
    check: isInt(0, 3650),
  },
  {
    key: 'notifications',
    get: (s) => s.notifications,
    set: (s, v) => (s.notifications = v),
    check: isOneOf('all', 'failures', 'none'),
  },
  {
    key: 'offsite.url',
    get: (s) => s.offsite.url,
    set: (s, v) => (s.offsite.url = v),
    check: (v) => (typeof v !== 'string' ? 'must be a string' : v === '' || /^(s3|sftp|file):\/\/./.test(v) ? undefined : 'must be an s3://bucket/prefix, sftp://user@host/path or file:///folder URL, or empty'),
  },
  {
    key: 'offsite.endpoint',
    get: (s) => s.offsite.endpoint,
    set: (s, v) => (s.offsite.endpoint = v),
    check: (v) => (typeof v !== 'string' ? 'must be a string' : v === '' || /^https?:\/\/[^/\s]+/.test(v) ? undefined : 'must be an http(s):// URL, or empty for AWS'),
  },
  { key: 'offsite.region', get: (s) => s.offsite.region, set: (s, v) => (s.offsite.region = v), check: (v) => (typeof v === 'string' && /^[a-z0-9-]*$/.test(v) ? undefined : 'must be a region name such as us-east-1, or empty') },
  { key: 'offsite.encrypt', get: (s) => s.offsite.encrypt, set: (s, v) => (s.offsite.encrypt = v), check: isBool },
  { key: 'offsite.bandwidthKiBps', get: (s) => s.offsite.bandwidthKiBps, set: (s, v) => (s.offsite.bandwidthKiBps = v), check: isInt(0, 10_000_000) },
  {
    key: 'offsite.retention',
    get: (s) => s.offsite.retention,
    set: (s, v) => (s.offsite.retention = { ...(v as object) }),
    check: (v) => {
      if (v === null || typeof v !== 'object' || Array.isArray(v)) return 'must be an object such as {"daily": 7, "weekly": 4, "monthly": 12}';
      for (const [k, x] of Object.entries(v as Record<string, unknown>)) {
        if (k === 'keepWithin') {
          if (typeof x !== 'string' || (x !== '' && !DURATION_RE.test(x))) return `keepWithin must be a duration such as 2d (got ${JSON.stringify(x)})`;
        } else if (['daily', 'weekly', 'monthly', 'keepEventBackups'].includes(k)) {
          if (typeof x !== 'number' || !Number.isInteger(x) || x < 0 || x > 10000) return `${k} must be a whole number from 0 to 10000 (got ${JSON.stringify(x)})`;
        } else return `has an unknown key ${k} (daily, weekly, monthly, keepWithin, keepEventBackups)`;
      }
      return undefined;
    },
  },
];

/** The keys of `lifeboat.offsite.retention`, each the counterpart of `lifeboat.retention.<key>`. */
export const OFFSITE_RETENTION_KEYS = ['daily', 'weekly', 'monthly', 'keepWithin', 'keepEventBackups'] as const;
export type OffsiteRetentionKey = (typeof OFFSITE_RETENTION_KEYS)[number];

const localField = (k: OffsiteRetentionKey) => FIELDS.find((f) => f.key === `retention.${k}`)!;

/**
 * Form keys that edit one key each of the object setting `offsite.retention`
 * (`offsite.retention.daily` ...), for a settings form that shows one field per key. They
 * are not settings of their own: `flattenRaw` and `normalize` never read them, `validate`
 * checks them only when given a Map that holds them. A value is '' (or absent) when the key
 * is left out (the local policy applies); otherwise it is checked as `retention.<key>` is,
 * with the same limits and duration syntax. `get` reads the key off `Settings` ('' when
 * left out; an explicit keepWithin '' is '0d', the same rule, so the form shows no window
 * rather than "same as local").
 */
export const SUB_FIELDS: ReadonlyArray<{ key: string; parent: 'offsite.retention'; prop: OffsiteRetentionKey; get: (s: Settings) => unknown; check: Check }> =
  OFFSITE_RETENTION_KEYS.map((prop) => ({
    key: `offsite.retention.${prop}`,
    parent: 'offsite.retention' as const,
    prop,
    get: (s: Settings) => {
      const v = s.offsite.retention[prop];
      return v === undefined ? '' : prop === 'keepWithin' && v === '' ? '0d' : v;
    },
    check: (v: unknown) => (v === '' ? undefined : localField(prop).check(v)),
  }));

/**
 * The object `offsite.retention` that form values (a Map of `offsite.retention.<key>`,
 * see SUB_FIELDS) describe: only the keys whose value is set (not '', null or absent), in
 * OFFSITE_RETENTION_KEYS order. Values are not checked (see validate). Pure.
 */
export function offsiteRetentionFrom(values: ReadonlyMap<string, unknown>): Partial<RetentionSettings> {
  const out: Record<string, unknown> = {};
  for (const f of SUB_FIELDS) {
    const v = values.get(f.key);
    if (v !== undefined && v !== null && v !== '') out[f.prop] = v;
  }
  return out as Partial<RetentionSettings>;
}

/**
 * Why `value`, an `offsite.retention` object, is refused (the check the settings reader
 * applies: unknown keys, counts, durations), or undefined when valid.
 */
export function checkOffsiteRetention(value: unknown): string | undefined {
  return FIELDS.find((f) => f.key === 'offsite.retention')!.check(value);
}

/** The design's original JSON configuration keys, mapped onto settings keys. */
const LEGACY_KEYS: Record<string, (v: unknown) => [string, unknown]> = {
  enabled: (v) => ['enabled', v],
  automatic_daily: (v) => ['schedule.daily', v],
  backup_time: (v) => ['schedule.time', v],
  backup_on_shutdown: (v) => ['backupOnShutdown', v],
  backup_directory: (v) => ['directory', v],
  retention_days: (v) => ['retention.daily', v],
};

export function cloneSettings(s: Readonly<Settings>): Settings {
  return {
    ...s,
    databases: [...s.databases],
    migrationTaskPatterns: [...s.migrationTaskPatterns],
    retention: { ...s.retention },
    offsite: { ...s.offsite, retention: { ...s.offsite.retention } },
  };
}

/**
 * Flattens a raw configuration object into `key -> value` with keys relative to `lifeboat.`.
 * Accepts `{"lifeboat.retention.daily": 7}` (settings.json), nested `{lifeboat: {retention: {daily: 7}}}`,
 * a bare `{retention: {daily: 7}}` (lifeboat.json), and the design's legacy keys (`retention_days`).
 */
export function flattenRaw(raw: unknown): Map<string, unknown> {
  const out = new Map<string, unknown>();
  if (raw === null || typeof raw !== 'object' || Array.isArray(raw)) return out;
  const known = new Set(FIELDS.map((f) => f.key));
  // `"lifeboat.offsite.retention.daily": 7` is one key of the object setting, as VS Code
  // reads it: folded into that object (given both ways, the later in the file wins, as in VS Code).
  const partOfObject = (key: string, v: unknown): boolean => {
    const sub = SUB_FIELDS.find((f) => f.key === key);
    if (!sub) return false;
    const cur = out.get(sub.parent);
    out.set(sub.parent, { ...(cur !== null && typeof cur === 'object' && !Array.isArray(cur) ? cur : {}), [sub.prop]: v });
    return true;
  };
  const walk = (obj: Record<string, unknown>, prefix: string) => {
    for (const [k, v] of Object.entries(obj)) {
      const key = prefix ? `${prefix}.${k}` : k;
      if (known.has(key)) out.set(key, v);
      else if (v !== null && typeof v === 'object' && !Array.isArray(v)) walk(v as Record<string, unknown>, key);
      else partOfObject(key, v);
    }
  };
  for (const [k, v] of Object.entries(raw as Record<string, unknown>)) {
    if (k === 'lifeboat' && v && typeof v === 'object') walk(v as Record<string, unknown>, '');
    else if (k.startsWith('lifeboat.')) {
      const rest = k.slice('lifeboat.'.length);
      if (known.has(rest)) out.set(rest, v);
      else if (v && typeof v === 'object' && !Array.isArray(v)) walk(v as Record<string, unknown>, rest);
      else partOfObject(rest, v);
    } else if (LEGACY_KEYS[k]) {
      const [nk, nv] = LEGACY_KEYS[k](v);
      if (!out.has(nk)) out.set(nk, nv);
    } else if (known.has(k)) out.set(k, v);
    else if (v && typeof v === 'object' && !Array.isArray(v)) walk({ [k]: v } as Record<string, unknown>, '');
  }
  return out;
}

/**
 * Checks raw values (keys relative to `lifeboat.`, see `flattenRaw`) and returns one issue
 * per invalid value, naming the setting as `lifeboat.<key>`. Unknown keys are ignored. A Map
 * may also hold form sub-keys (SUB_FIELDS, `offsite.retention.daily`), checked likewise.
 */
export function validate(raw: unknown): ValidationIssue[] {
  const values = raw instanceof Map ? (raw as Map<string, unknown>) : flattenRaw(raw);
  const issues: ValidationIssue[] = [];
  for (const f of [...FIELDS, ...SUB_FIELDS]) {
    if (!values.has(f.key)) continue;
    const v = values.get(f.key);
    if (v === undefined || v === null) continue;
    const reason = f.check(v);
    if (reason) issues.push({ field: `lifeboat.${f.key}`, value: v, reason });
  }
  return issues;
}

/**
 * Builds settings from raw values: a valid value is taken, a missing one keeps `base`'s
 * (the defaults, or the last valid settings), an invalid one keeps `base`'s and is
 * reported. Never throws.
 */
export function normalize(raw: unknown, base: Readonly<Settings> = DEFAULT_SETTINGS): { settings: Settings; issues: ValidationIssue[] } {
  const values = flattenRaw(raw);
  const settings = cloneSettings(base);
  const issues = validate(values);
  const bad = new Set(issues.map((i) => i.field));
  for (const f of FIELDS) {
    if (!values.has(f.key) || bad.has(`lifeboat.${f.key}`)) continue;
    const v = values.get(f.key);
    if (v === undefined || v === null) continue;
    f.set(settings, (Array.isArray(v) ? [...v] : v) as never);
  }
  return { settings, issues };
}

/** A one-line description of an issue for people: `lifeboat.schedule.time: must be a time HH:MM (got "25:00")`. */
export function describeIssue(i: ValidationIssue): string {
  return `${i.field}: ${i.reason} (got ${JSON.stringify(i.value)})`;
}

/**
 * The manifest.json of a Lifeboat archive, one schema per format version (valibot). A
 * manifest is read by the version it declares, so an archive stays readable for as long
 * as its version's schema is kept here: a new format version gets a schema of its own
 * beside the old ones, never an edit of them.
 *
 * Within a version, a field that a later Lifeboat began to write is optional: archives
 * written before it existed lack it. For version 1 that is `source.snapshot` (first
 * written by the node:sqlite release); `source.state` is optional in the model and
 * optional here too. `verification.probe`, `verification.skippedReason`, `trigger`,
 * `snapshot.sqliteVersion`, `snapshot.fallback` and the WAL fields of `source.state` are
 * optional by nature. Every other field was written by the first archive writer (the
 * verifier's `engine` and `notChecked` included) and is required. Unknown fields are kept,
 * not refused: an older reader must accept what a newer writer of the same version adds.
 */
import * as v from 'valibot';
import { BackupError } from '../errors';
import { ARCHIVE_FORMAT, ARCHIVE_FORMAT_VERSION, BACKUP_KINDS, IMAGE_ENTRY, type Manifest } from '../model';

/** How many problems one error message lists before "and N more". */
const MAX_LISTED = 5;

const isPlainObject = (x: unknown): x is Record<string, unknown> => typeof x === 'object' && x !== null && !Array.isArray(x);

const count = v.pipe(v.number(), v.safeInteger('expected a whole number'), v.minValue(0, 'expected a number >= 0'));
const num = v.number();
const str = v.string();
const when = v.pipe(v.string(), v.check((s) => !Number.isNaN(Date.parse(s)), 'expected an ISO 8601 date and time'));
/** A JSON object whose keys are free (valibot's record alone would take a list for an empty object). */
const countsByName = v.pipe(v.unknown(), v.check(isPlainObject, 'expected an object'), v.record(v.string(), count));

const sourceStateV1 = v.looseObject({
  size: count,
  mtimeMs: num,
  changeCounter: count,
  walSize: count,
  walMtimeMs: num,
  walSalt1: v.optional(count),
  walSalt2: v.optional(count),
  walMxFrame: v.optional(count),
});

const verifyReportV1 = v.looseObject({
  status: v.picklist(['ok', 'failed', 'skipped']),
  check: v.picklist(['integrity_check', 'quick_check', 'none']),
  engine: v.looseObject({ name: str, sqliteVersion: str }),
  problems: v.array(str),
  foreignKeyViolations: count,
  schemaFingerprint: str,
  rowCounts: countsByName,
  notChecked: v.array(str),
  probe: v.optional(v.looseObject({ sql: str, ok: v.boolean(), rows: v.optional(count), error: v.optional(str) })),
  skippedReason: v.optional(str),
  durationMs: num,
  checkedAt: str,
});

/** formatVersion 1: a sealed zip holding database.sqlite and this manifest. */
const manifestV1 = v.looseObject({
  format: v.literal(ARCHIVE_FORMAT),
  formatVersion: v.literal(1),
  id: v.pipe(v.string(), v.nonEmpty('expected a non-empty string')),
  kind: v.picklist(BACKUP_KINDS),
  created: when,
  source: v.looseObject({
    path: str,
    name: str,
    size: count,
    mtimeMs: num,
    journalMode: v.picklist(['wal', 'rollback']),
    changeCounter: count,
    walFrames: count,
    state: v.optional(sourceStateV1),
    // Absent in manifests written before Lifeboat recorded how the snapshot was taken.
    snapshot: v.optional(
      v.looseObject({
        strategy: v.picklist(['node:sqlite backup', 'node:sqlite vacuum', 'reader']),
        sqliteVersion: v.optional(str),
        fallback: v.optional(str),
      }),
    ),
  }),
  image: v.looseObject({
    entry: v.literal(IMAGE_ENTRY),
    size: count,
    sha256: v.pipe(v.string(), v.regex(/^[0-9a-f]{64}$/, 'expected a sha256 as 64 lowercase hex digits')),
    pageSize: count,
    pageCount: count,
    sqliteVersionNumber: count,
  }),
  verification: verifyReportV1,
  sourceDamaged: v.boolean(),
  durationMs: num,
  trigger: v.optional(str),
  lifeboatVersion: str,
});

const sha256Hex = v.pipe(v.string(), v.regex(/^[0-9a-f]{64}$/, 'expected a sha256 as 64 lowercase hex digits'));
const extent = v.pipe(
  v.tuple([count, count, count, count]),
  v.check((e) => e[0] >= 1 && e[1] >= 1, 'expected [firstPage >= 1, count >= 1, pack, entry]'),
);

/**
 * formatVersion 2: the sealed snapshot manifest of a page repository (`snapshots/<id>.json`),
 * the fields of version 1 (the image is not in the object: `image.entry` is the name an
 * export gives it) plus the page map and the seal.
 */
const manifestV2 = v.looseObject({
  ...manifestV1.entries,
  formatVersion: v.literal(2),
  image: v.looseObject({ ...manifestV1.entries.image.entries, entry: str }),
  repository: v.looseObject({
    pageSize: v.pipe(count, v.minValue(512, 'expected a page size of 512 or more')),
    pageCount: count,
    root: sha256Hex,
    packs: v.array(v.pipe(v.string(), v.regex(/^packs\/[0-9a-f]{64}\.pack$/, 'expected packs/<sha256>.pack'))),
    extents: v.array(extent),
    parent: v.optional(str),
    unchangedFrom: v.optional(str),
    added: v.looseObject({ packs: v.array(str), pages: count, bytes: count }),
  }),
  seal: sha256Hex,
});

/**
 * The schema of each format version this Lifeboat reads, keyed by the formatVersion that
 * selects it. `satisfies` is the compile-time check that each one's output is a Manifest
 * of src/core/model.ts: a schema that drifts from the model does not build.
 */
const MANIFEST_SCHEMAS = {
  1: manifestV1,
  2: manifestV2,
} as const satisfies Record<number, v.GenericSchema<unknown, Manifest>>;

// Compile-time: the version the writer stamps (model.ts) has a schema here.
ARCHIVE_FORMAT_VERSION satisfies keyof typeof MANIFEST_SCHEMAS;

/** The format versions this Lifeboat reads, oldest first. */
export const MANIFEST_VERSIONS: readonly number[] = Object.keys(MANIFEST_SCHEMAS).map(Number);
const NEWEST = Math.max(...MANIFEST_VERSIONS);

/** What identifies a Lifeboat manifest in every version: the format and its version. */
const header = v.looseObject({
  format: v.literal(ARCHIVE_FORMAT),
  formatVersion: v.pipe(v.number(), v.safeInteger(), v.minValue(1)),
});

/**
 * Checks the parsed JSON of an archive's manifest.json against the schema of the version
 * it declares and returns it as a Manifest (unknown fields kept). Throws BackupError,
 * naming `archivePath`:
 * - 'badArchive': not a JSON object, not a Lifeboat manifest (format), no valid
 *   formatVersion, a version no Lifeboat wrote, or fields missing or of the wrong type
 *   (each named by its path, e.g. `image.sha256`, `source.size`);
 * - 'unsupportedFormat': a formatVersion newer than this Lifeboat reads, named.
 * Pure; safe to repeat.
 */
export function parseManifest(json: unknown, archivePath: string, versions: readonly number[] = MANIFEST_VERSIONS): Manifest {
  const bad = (what: string) => new BackupError('badArchive', `${archivePath}: ${what}`, { path: archivePath });
  if (!isPlainObject(json)) throw bad('manifest.json is not a JSON object');
  const head = v.safeParse(header, json);
  if (!head.success) {
    if (json.format !== ARCHIVE_FORMAT) throw bad(`not a Lifeboat archive (manifest format ${clip(JSON.stringify(json.format) ?? 'missing')})`);
    throw bad(`manifest.json has no valid formatVersion (${clip(JSON.stringify(json.formatVersion) ?? 'missing')})`);
  }
  const version = head.output.formatVersion;
  if (version > NEWEST) {
    throw new BackupError(
      'unsupportedFormat',
      `${archivePath}: archive format version ${version} is newer than this Lifeboat reads (up to ${NEWEST}); update Lifeboat`,
      { path: archivePath },
    );
  }
  if (!versions.includes(version) && MANIFEST_VERSIONS.includes(version)) {
    throw bad(`manifest.json declares format version ${version}, which this kind of object does not hold (expected ${versions.join(' or ')})`);
  }
  const schema = (MANIFEST_SCHEMAS as Record<number, v.GenericSchema<unknown, Manifest> | undefined>)[version];
  if (!schema) throw bad(`manifest.json declares format version ${version}, which no Lifeboat wrote (known: ${MANIFEST_VERSIONS.join(', ')})`);
  const r = v.safeParse(schema, json);
  if (r.success) return r.output;
  const listed = r.issues.slice(0, MAX_LISTED).map(describeIssue);
  const more = r.issues.length > MAX_LISTED ? `, and ${r.issues.length - MAX_LISTED} more` : '';
  throw bad(`manifest.json (format version ${version}) has missing or invalid fields: ${listed.join(', ')}${more}`);
}

/** One problem as "path (what)": "source.size (expected number, got "12")", "id (missing)". */
function describeIssue(issue: v.BaseIssue<unknown>): string {
  const at = v.getDotPath(issue) ?? '(the manifest)';
  // An object schema reports an absent key as its own issue, expecting the key's name.
  if (issue.kind === 'schema' && issue.received === 'undefined' && issue.type.endsWith('object')) return `${at} (missing)`;
  // A length check receives the length; the value itself says more.
  const got = clip(typeof issue.input === 'string' ? JSON.stringify(issue.input) : issue.received);
  // Our validation actions carry their own "expected ..." text; schemas state the type.
  return issue.kind === 'validation' ? `${at} (${issue.message}, got ${got})` : `${at} (expected ${issue.expected}, got ${got})`;
}

function clip(s: string): string {
  return s.length > 60 ? `${s.slice(0, 57)}...` : s;
}

// The manifest schema: what each format version requires, what it leaves optional for
// archives written before a field existed, and how a refusal names the field and archive.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { readManifest } from '../../src/core/archive/archiveReader';
import { BackupError, type BackupErrorReason } from '../../src/core/errors';
import { MANIFEST_VERSIONS, parseManifest } from '../../src/core/format/manifestSchema';
import { ARCHIVE_FORMAT_VERSION, IMAGE_ENTRY, MANIFEST_ENTRY } from '../../src/core/model';
import { buildZip, sha256Of } from '../fixtures/archive';
import { makeDb, tempDir } from '../fixtures/sqlite';

const ARCHIVE = '/srv/backups/app-20261127T163139145Z-manual.zip';

/** manifest.json as today's writer makes it (a `lifeboat backup` on Node 20: the reader and sql.js). */
const CURRENT = `{
  "format": "lifeboat-archive",
  "formatVersion": 1,
  "id": "app-20261127T163139145Z-manual",
  "kind": "manual",
  "created": "2026-11-27T16:31:39.145+00:00",
  "source": {
    "path": "/projects/app/app.db",
    "name": "app.db",
    "size": 45056,
    "mtimeMs": 1795797098814.98,
    "journalMode": "wal",
    "changeCounter": 2,
    "walFrames": 0,
    "state": { "size": 45056, "mtimeMs": 1795797098814.98, "changeCounter": 2, "walSize": 0, "walMtimeMs": 0 },
    "snapshot": { "strategy": "reader", "fallback": "node:sqlite is not available in Node 20.20.2: No such built-in module: node:sqlite" }
  },
  "image": {
    "entry": "database.sqlite",
    "size": 45056,
    "sha256": "23049c769b06874faefdfc0e9b3f234432a515482ec3da58d9c58581c83475de",
    "pageSize": 4096,
    "pageCount": 11,
    "sqliteVersionNumber": 3040001
  },
  "verification": {
    "status": "ok",
    "check": "integrity_check",
    "problems": [],
    "foreignKeyViolations": 0,
    "schemaFingerprint": "d09ccc83744dc7a23fc1a4679cd55117a00a95812e9edf351c0e0ed4ab080c1d",
    "rowCounts": { "items": 2000 },
    "notChecked": [],
    "engine": { "name": "sql.js", "sqliteVersion": "3.54.1" },
    "durationMs": 581,
    "checkedAt": "2026-11-27T16:31:39.739+00:00"
  },
  "sourceDamaged": false,
  "durationMs": 602,
  "trigger": "cli",
  "lifeboatVersion": "0.1.0"
}`;

/**
 * manifest.json as the first archive writer made it, before Lifeboat recorded how the
 * snapshot was taken (no source.snapshot); a WAL source with its salts and mxFrame, a
 * probe query, and no trigger.
 */
const BEFORE_SNAPSHOT = `{
  "format": "lifeboat-archive",
  "formatVersion": 1,
  "id": "shop.db-2026-11-26T09-07-12-scheduled",
  "kind": "scheduled",
  "created": "2026-11-26T09:07:12.345+01:00",
  "source": {
    "path": "/srv/shop/shop.db",
    "name": "shop.db",
    "size": 8192,
    "mtimeMs": 1795680000000,
    "journalMode": "wal",
    "changeCounter": 7,
    "walFrames": 3,
    "state": { "size": 8192, "mtimeMs": 1795680000000, "changeCounter": 7, "walSize": 12392, "walMtimeMs": 1795680001000, "walSalt1": 2749283910, "walSalt2": 1192837465, "walMxFrame": 3 }
  },
  "image": { "entry": "database.sqlite", "size": 8192, "sha256": "${'ab'.repeat(32)}", "pageSize": 4096, "pageCount": 2, "sqliteVersionNumber": 3040001 },
  "verification": {
    "status": "ok",
    "check": "integrity_check",
    "engine": { "name": "sql.js", "sqliteVersion": "3.49.1" },
    "problems": [],
    "foreignKeyViolations": 0,
    "schemaFingerprint": "${'0'.repeat(64)}",
    "rowCounts": { "orders": 12, "customers": 3 },
    "notChecked": ["docs_fts (fts5)"],
    "probe": { "sql": "SELECT * FROM orders LIMIT 1", "ok": true, "rows": 1 },
    "durationMs": 9,
    "checkedAt": "2026-11-26T09:07:12.401+01:00"
  },
  "sourceDamaged": false,
  "durationMs": 40,
  "lifeboatVersion": "0.1.0"
}`;

type Json = Record<string, unknown>;
const current = (): Json => JSON.parse(CURRENT) as Json;
const beforeSnapshot = (): Json => JSON.parse(BEFORE_SNAPSHOT) as Json;

/** A copy of `m` with the field at the dot path `at` set to `value`, or removed when `value` is `remove`. */
const remove = Symbol('remove');
function withField(m: Json, at: string, value: unknown): Json {
  const copy = structuredClone(m);
  const keys = at.split('.');
  let o = copy;
  for (const k of keys.slice(0, -1)) o = o[k] as Json;
  const last = keys[keys.length - 1];
  if (value === remove) delete o[last];
  else o[last] = value;
  return copy;
}

function refused(m: unknown, reason: BackupErrorReason, ...mentions: string[]): BackupError {
  let caught: unknown;
  try {
    parseManifest(m, ARCHIVE);
  } catch (e) {
    caught = e;
  }
  assert.ok(BackupError.is(caught), `expected a BackupError '${reason}', got ${caught === undefined ? 'success' : String(caught)}`);
  assert.equal(caught.reason, reason, caught.message);
  assert.equal(caught.path, ARCHIVE);
  assert.ok(caught.message.startsWith(`${ARCHIVE}: `), `names the archive first: ${caught.message}`);
  assert.ok(!caught.message.includes('\n'), `one line: ${caught.message}`);
  for (const mention of mentions) assert.ok(caught.message.includes(mention), `names ${mention}: ${caught.message}`);
  return caught;
}

describe('manifests that are read', () => {
  test("today's manifest comes back field for field", () => {
    assert.deepEqual(parseManifest(current(), ARCHIVE), current());
  });

  test('a manifest from before source.snapshot existed is read, and nothing is added to it', () => {
    const m = beforeSnapshot();
    assert.deepEqual(parseManifest(m, ARCHIVE), beforeSnapshot());
    assert.equal('snapshot' in (parseManifest(m, ARCHIVE).source as object), false);
  });

  // Fields later writers added, or that only some backups have: each may be absent.
  const OPTIONAL = [
    'source.snapshot',
    'source.snapshot.sqliteVersion',
    'source.snapshot.fallback',
    'source.state',
    'source.state.walSalt1',
    'source.state.walSalt2',
    'source.state.walMxFrame',
    'verification.probe',
    'verification.probe.rows',
    'verification.skippedReason',
    'trigger',
  ];
  /** Today's manifest with every optional field present, so that removing one changes something. */
  function full(): Json {
    const m = current();
    const source = m.source as Json;
    const verification = m.verification as Json;
    source.state = (beforeSnapshot().source as Json).state;
    source.snapshot = { strategy: 'node:sqlite backup', sqliteVersion: '3.53.4', fallback: 'a WAL database without -shm' };
    verification.probe = { sql: 'SELECT * FROM items LIMIT 1', ok: true, rows: 1 };
    verification.skippedReason = 'image.sqlite is 2.0 GB, larger than the in-memory verifier\'s limit of 1.5 GB';
    return m;
  }
  for (const at of OPTIONAL) {
    test(`without ${at}`, () => {
      assert.deepEqual(parseManifest(full(), ARCHIVE), full());
      const m = withField(full(), at, remove);
      assert.notDeepEqual(m, full());
      assert.deepEqual(parseManifest(m, ARCHIVE), m);
    });
  }

  test('fields this Lifeboat does not know are kept (a newer writer of the same version may add some)', () => {
    const m = withField(withField(current(), 'source.inode', 1234), 'uploadedTo', 's3://bucket/app');
    const got = parseManifest(m, ARCHIVE) as unknown as Json;
    assert.equal(got.uploadedTo, 's3://bucket/app');
    assert.equal((got.source as Json).inode, 1234);
  });

  test('every version the writer stamps has a schema', () => {
    assert.ok(MANIFEST_VERSIONS.includes(ARCHIVE_FORMAT_VERSION));
    assert.deepEqual(MANIFEST_VERSIONS, [...MANIFEST_VERSIONS].sort((a, b) => a - b));
  });
});

describe('manifests that are refused, naming the field', () => {
  // Written by every Lifeboat since the first archive: each one missing is damage.
  const REQUIRED = [
    'id',
    'kind',
    'created',
    'source',
    'source.path',
    'source.name',
    'source.size',
    'source.mtimeMs',
    'source.journalMode',
    'source.changeCounter',
    'source.walFrames',
    'source.state.size',
    'source.state.walMtimeMs',
    'source.snapshot.strategy',
    'image',
    'image.entry',
    'image.size',
    'image.sha256',
    'image.pageSize',
    'image.pageCount',
    'image.sqliteVersionNumber',
    'verification',
    'verification.status',
    'verification.check',
    'verification.engine',
    'verification.engine.name',
    'verification.problems',
    'verification.foreignKeyViolations',
    'verification.schemaFingerprint',
    'verification.rowCounts',
    'verification.notChecked',
    'verification.durationMs',
    'verification.checkedAt',
    'sourceDamaged',
    'durationMs',
    'lifeboatVersion',
  ];
  for (const at of REQUIRED) {
    test(`without ${at}`, () => {
      const e = refused(withField(current(), at, remove), 'badArchive', `${at} (missing)`, 'format version 1');
      assert.match(e.message, /missing or invalid fields/);
    });
  }

  const WRONG: Array<[string, unknown, string]> = [
    ['id', '', 'non-empty'],
    ['id', 42, 'string'],
    ['kind', 'hourly', '"hourly"'],
    ['created', 'yesterday', 'date'],
    ['source.size', '45056', '"45056"'],
    ['source.size', -1, '-1'],
    ['source.journalMode', 'delete', '"delete"'],
    ['source.snapshot.strategy', 'rsync', '"rsync"'],
    ['source.state.changeCounter', 1.5, '1.5'],
    ['image.entry', 'other.sqlite', '"other.sqlite"'],
    ['image.sha256', 'AB'.repeat(32), 'lowercase hex'],
    ['image.pageCount', null, 'null'],
    ['verification.status', 'passed', '"passed"'],
    ['verification.engine.sqliteVersion', 3, '3'],
    ['verification.problems', 'none', '"none"'],
    ['verification.problems', [1], '1'],
    ['verification.rowCounts', [], 'Array'],
    ['verification.probe', { sql: 'SELECT 1', ok: 'yes' }, '"yes"'],
    ['sourceDamaged', 'false', '"false"'],
  ];
  for (const [at, value, shown] of WRONG) {
    test(`${at} = ${JSON.stringify(value)}`, () => {
      const e = refused(withField(current(), at, value), 'badArchive', 'missing or invalid fields', shown);
      // Nested failures name the deepest path (verification.problems.0), which starts with the field's.
      assert.match(e.message, new RegExp(`fields: ${at.replace(/\./g, '\\.')}[. ]`));
    });
  }

  test('several problems are listed together, at most five and a count of the rest', () => {
    const m = withField(withField(withField(current(), 'id', 1), 'image.size', 'x'), 'kind', 'x');
    refused(m, 'badArchive', 'id (', 'image.size (', 'kind (');
    const e = refused({ ...current(), source: {} }, 'badArchive', 'source.path (missing)', 'and 2 more');
    assert.equal(e.message.match(/\(missing\)/g)?.length, 5);
  });

  test('not an object, another format, no valid formatVersion', () => {
    for (const m of [null, [], 'lifeboat-archive', 1]) refused(m, 'badArchive', 'not a JSON object');
    refused({ ...current(), format: 'restic' }, 'badArchive', 'not a Lifeboat archive', '"restic"');
    refused(withField(current(), 'format', remove), 'badArchive', 'not a Lifeboat archive');
    for (const v of [0, -1, 1.5, '1', null]) refused({ ...current(), formatVersion: v }, 'badArchive', 'formatVersion', JSON.stringify(v));
    refused(withField(current(), 'formatVersion', remove), 'badArchive', 'formatVersion');
  });

  test('a formatVersion newer than this Lifeboat reads is unsupportedFormat, naming it', () => {
    const newest = Math.max(...MANIFEST_VERSIONS);
    for (const v of [newest + 1, 99]) refused({ ...current(), formatVersion: v }, 'unsupportedFormat', `version ${v}`, `up to ${newest}`);
  });
});

describe('through readManifest, from a real archive', () => {
  const tmp = tempDir('lifeboat-manifest-');
  after(() => tmp.cleanup());
  const image = { path: path.join(tmp.dir, 'image.sqlite'), bytes: Buffer.alloc(0), sha256: '' };
  before(() => {
    makeDb(image.path, { rows: 50 });
    image.bytes = readFileSync(image.path);
    image.sha256 = sha256Of(image.bytes);
  });
  /** A sealed archive of the real image with `manifest` as its manifest.json. */
  async function archiveWith(name: string, manifest: Json): Promise<string> {
    const out = path.join(tmp.dir, name);
    const m = withField(withField(manifest, 'image.size', image.bytes.length), 'image.sha256', image.sha256);
    await buildZip(out, [{ name: IMAGE_ENTRY, data: image.bytes }, { name: MANIFEST_ENTRY, data: Buffer.from(JSON.stringify(m, null, 2)) }], { seal: true, level: 6 });
    return out;
  }

  test('an old manifest is read; a wrong-typed field is refused naming the field and the archive', async () => {
    const old = await archiveWith('old.zip', beforeSnapshot());
    const m = await readManifest(old);
    assert.equal(m.source.snapshot, undefined);
    assert.equal(m.source.state?.walMxFrame, 3);

    const broken = await archiveWith('broken.zip', withField(beforeSnapshot(), 'source.walFrames', 'three'));
    await assert.rejects(readManifest(broken), (e) => {
      assert.ok(BackupError.is(e, 'badArchive'), String(e));
      assert.ok(e.message.includes(broken) && e.message.includes('source.walFrames'), e.message);
      return true;
    });
  });
});

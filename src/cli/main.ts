import { spawn } from 'node:child_process';
import { promises as fs } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseArgs, type ParseArgsConfig } from 'node:util';
import { formatLogEntry } from '../core/catalog/backupLog';
import { canonicalPath } from '../core/fsutil';
import { FORMATS } from '../core/format/formats';
import { PACK_FOLDER, SNAPSHOT_FOLDER } from '../core/format/repo/snapshotManifest';
import { BACKUP_KINDS, isVerified, onlyProbeFailed, probeOnlyFailure, verificationState, type BackupKind, type BackupRecord, type VerifyReport } from '../core/model';
import { Engine } from '../core/engine';
import { formatBytes } from '../core/units';
import { BackupError } from '../core/errors';
import { computeStats } from '../core/stats';
import { newestRestoreTestOf } from '../core/verify/backupCheck';
import { applyPolicy, isEmptyPolicy, parsePolicyJson, type PolicySnapshot } from '../core/retention/policy';
import { tiersOf } from '../core/retention/plan';
import { loadSettings, type CliSettings } from './settings';
import { stderrLogger } from './logger';
import { cmdSchedule } from './schedule';
import { cliRemote, cliRemoteSettings, cliRemoteWith, closeRemotes, remoteBackup } from './offsite';
import { exportAge } from '../core/offsite/ageExport';
import { runPushJob } from '../core/offsite/pushJob';
import { describeRestoreCheck } from '../core/restore/restore';
import type { BackupRef } from '../core/engine';

const EXIT = { ok: 0, failed: 1, usage: 2, damage: 3 } as const;

const USAGE = `lifeboat: verified backups of SQLite databases

Usage:
  lifeboat backup <db> [--dir D] [--kind K] [--json]
  lifeboat list [<db>] [--dir D] [--json]
  lifeboat stats [--dir D] [--json]
  lifeboat verify <backup> | --all [--dir D] [--deep] [--json]
  lifeboat restore <backup> [--to PATH] [--dir D] [--force] [--json]
  lifeboat restore <backup> --table T [--to DB] [--dir D] [--json]
  lifeboat restore <backup> --table T --key K [--key K ...] | --keys-from FILE
                [--delete-added] [--to DB] [--dir D] [--json]
  lifeboat diff <backup> [<backup2> | --live DB] [--table T] [--rows] [--limit N]
                [--offset N] [--dir D] [--json]
  lifeboat export <backup> --to FILE [--dir D] [--force] [--json]
  lifeboat log [--dir D] [--json] [--limit N]
  lifeboat push [<db>] [--dir D] [--to URL] [--no-encrypt] [--endpoint URL] [--json]
  lifeboat list --from URL [--json]
  lifeboat verify <backup> | --all --from URL [--deep] [--json]
  lifeboat restore <backup | latest> --from URL [--db NAME] --to PATH [--json]
  lifeboat export <backup | latest> --from URL [--db NAME] --to FILE [--json]
  lifeboat run [--db DB] [--dir D] -- <command...>
  lifeboat rotate [--dir D] [--dry-run] [--force] [--json]
  lifeboat pin <backup> [--dir D] | unpin <backup> [--dir D]
  lifeboat policy --snapshots S.json --policy P.json
  lifeboat schedule --db DB [--dir D] [--time HH:MM | --cron EXPR]

<backup> is the path backup printed (a .zip archive, or a repository's
snapshots/<id>.json), or a backup's id as list shows it, looked up in --dir
(default: the settings' directory).

backup prints, last, the path of the file that makes the new backup visible.
verify --deep also reads every byte of every pack a repository backup uses.
export writes a backup as a plain SQLite database that needs no Lifeboat, or as a
self-contained .zip archive when FILE ends in .zip; an existing FILE is replaced only
with --force, and never when it is the database the backup was made of (that is restore).
rotate deletes the backups the retention settings no longer keep, then the repository
packs no kept backup uses; --dry-run deletes nothing and shows the plan and the bytes
it would free.
stats shows the bytes the directory holds, the bytes full copies of its backups would
take, and the ratio of the two (deduplication).

restore refuses while another process has the database open; --force then restores
through SQLite under the app's locks (needs node:sqlite with backup(), Node >= 22.16), so
the app sees the restored data. --force never replaces a file that is open. restore
--dir D also puts the pre-restore backup in D (default: the backup's own directory).
restore --table T replaces only table T of the database (or --to DB) with the backup's,
through SQLite in one transaction while the app may have it open, after a pre-restore
backup; the table's triggers do not fire, foreign keys are checked afterwards and
reported. It refuses, changing nothing, when T is defined differently in the two.
restore --table T --key K restores only the rows with those keys (T's INTEGER PRIMARY
KEY or declared primary key, as diff matches rows; K is JSON: 5, '"a"', '[1,"a"]' for
a key of several columns; text that is not JSON is a text key): a row the backup has is
updated to (or inserted as) the backup's, a row only the database has is deleted with
--delete-added and refused otherwise; one transaction, after a pre-restore backup,
triggers not fired, foreign keys checked and reported. --keys-from FILE (- for stdin)
reads keys or rows as JSON lines, a JSON array, or the output of diff --table T --rows
--json (its removed and changed rows, and added ones with --delete-added). A key that
matches no row, or a table without a primary key, is refused, changing nothing.

diff shows what changed from a backup to a second backup or to a live database:
schema objects added (+), removed (-) and changed (~), and per table the rows added,
removed and changed, matched by the table's INTEGER PRIMARY KEY, its declared primary
key, or, for a table with neither, compared as multisets of rows. --rows lists the rows
(--limit per kind and table, default 1000, 0 for all; --offset pages).

push copies the verified backups of --dir that the off-site store lacks (URL: --to,
else the setting lifeboat.offsite.url): s3://bucket/prefix, sftp://user@host[:port]/path
or file:///folder. Packs go first and each backup's manifest last, each checked there;
an interrupted push resumes. A new remote is encrypted (age) unless --no-encrypt; the
passphrase comes from LIFEBOAT_PASSWORD, LIFEBOAT_PASSWORD_FILE or
LIFEBOAT_PASSWORD_COMMAND, never from settings. S3 credentials: AWS_ACCESS_KEY_ID and
AWS_SECRET_ACCESS_KEY (AWS_SESSION_TOKEN), or AWS_PROFILE; --endpoint, the setting
lifeboat.offsite.endpoint or AWS_ENDPOINT_URL for S3-compatible stores. SFTP:
LIFEBOAT_SFTP_PASSWORD or LIFEBOAT_SFTP_KEY (default ~/.ssh/id_ed25519...).
--from URL lists, verifies, restores and exports straight from the remote, with no
local backup folder. export --to FILE.age writes an age file (LIFEBOAT_PASSWORD, or
LIFEBOAT_AGE_RECIPIENTS) that the age tool decrypts: age -d FILE.age > app.db.

Exit codes: 0 ok, 1 failed, 2 usage error, 3 damage found.
Settings: the lifeboat.* keys of the nearest .vscode/settings.json, or a lifeboat.json
beside the database; flags override. Without them --dir defaults to backups/ beside the database.`;

class UsageError extends Error {}

type Options = Record<string, string | boolean | undefined>;

function parse(argv: string[], options: ParseArgsConfig['options']): { opts: Options; pos: string[] } {
  try {
    const r = parseArgs({ args: argv, options, allowPositionals: true, strict: true });
    return { opts: r.values as Options, pos: r.positionals };
  } catch (e) {
    throw new UsageError((e as Error).message.replace(/\. To specify a positional.*$/s, ''));
  }
}

function print(s: string): void {
  process.stdout.write(s.endsWith('\n') ? s : s + '\n');
}

function json(v: unknown): void {
  print(JSON.stringify(v, null, 2));
}

/** The backup directory: --dir, else the settings' directory, else backups/ beside the database. */
function resolveDir(opts: Options, cfg: CliSettings, db?: string): string {
  if (typeof opts.dir === 'string') return path.resolve(opts.dir);
  if (cfg.source) return path.resolve(cfg.base, cfg.settings.directory);
  if (db) return path.join(path.dirname(path.resolve(db)), 'backups');
  return path.resolve(cfg.base, cfg.settings.directory);
}

/**
 * Settings for a command that works on a backup directory: read from the folder that
 * holds `--dir` (where the default layout keeps the database and its lifeboat.json),
 * else from the current folder.
 */
function dirSettings(opts: Options): CliSettings {
  return loadSettings(typeof opts.dir === 'string' ? path.dirname(path.resolve(opts.dir)) : process.cwd());
}

/** True when `p` is a file (not a folder, not missing). */
async function isFile(p: string): Promise<boolean> {
  return fs.stat(p).then(
    (st) => st.isFile(),
    () => false,
  );
}

/**
 * The path of the backup a command names: `ref` itself when it is a file, or when it
 * looks like a path (a folder separator, or .zip/.json at the end) and no --dir is given;
 * otherwise the backup in --dir (default: the settings' directory) whose id, object name
 * or file name is `ref`, found through the directory's catalog. BackupError 'notFound'
 * naming `ref` and the directory when there is none.
 */
async function resolveBackup(ref: string, opts: Options, engine: Engine): Promise<string> {
  const asPath = path.resolve(ref);
  if (await isFile(asPath)) return asPath;
  const looksLikePath = /[\\/]/.test(ref) || /\.(zip|json)$/i.test(ref);
  if (looksLikePath && typeof opts.dir !== 'string') return asPath;
  const dir = resolveDir(opts, dirSettings(opts));
  const exists = await fs.stat(dir).then(
    (st) => st.isDirectory(),
    () => false,
  );
  if (!exists) throw new BackupError('notFound', `${ref}: no such backup: the backup directory ${dir} does not exist`, { path: dir });
  if (ref === 'latest') {
    const { records } = await engine.list(dir);
    const dbs = new Set(records.map((r) => r.manifest.source.path));
    if (dbs.size > 1) throw new BackupError('badConfig', `latest: ${dir} holds backups of ${dbs.size} databases; name the backup by its id (lifeboat list)`);
    const newest = records.find((r) => isVerified(r));
    if (!newest) throw new BackupError('notFound', `latest: no verified backup in ${dir}`, { path: dir });
    return newest.path;
  }
  return (await engine.catalog(dir).get(ref)).path;
}

/**
 * The folder of settings for a backup given by path when its manifest cannot name its
 * database: a zip's folder, or the repository that holds a snapshot manifest.
 */
function backupFolderOf(backupPath: string): string {
  const parent = path.dirname(backupPath);
  return path.basename(parent) === SNAPSHOT_FOLDER && backupPath.endsWith('.json') ? path.dirname(parent) : parent;
}

function localTime(iso: string): string {
  return iso.replace('T', ' ').replace(/\.\d+/, '');
}

/** The list's verification word, from core's `verificationState` (the one rotation counts by). */
function verificationLabel(r: BackupRecord): string {
  if (r.manifest.sourceDamaged) return 'SOURCE DAMAGED';
  if (r.state.lastVerify && !r.state.lastVerify.archiveOk) return 'DAMAGED';
  const state = verificationState(r);
  if (state === 'failed') return 'FAILED';
  if (state === 'unverified') return 'not verified';
  if (probeOnlyFailure(r)) return 'verified (probe query failed)';
  const v = r.state.lastVerify?.status === 'ok' ? r.state.lastVerify : r.manifest.verification;
  return v.notChecked.length ? `verified (${v.notChecked.length} virtual not checked)` : 'verified';
}

async function cmdBackup(argv: string[], engine: Engine): Promise<number> {
  const { opts, pos } = parse(argv, { dir: { type: 'string' }, kind: { type: 'string' }, json: { type: 'boolean' } });
  if (pos.length !== 1) throw new UsageError('backup needs exactly one database path');
  const db = path.resolve(pos[0]);
  const kind = (opts.kind ?? 'manual') as BackupKind;
  if (!BACKUP_KINDS.includes(kind)) throw new UsageError(`--kind must be one of ${BACKUP_KINDS.join(', ')} (got ${opts.kind})`);
  const cfg = loadSettings(path.dirname(db), db);
  const dir = resolveDir(opts, cfg, db);
  const res = await engine.backup(db, { dir, kind, settings: cfg.settings, trigger: 'cli' });
  if (opts.json) json(res.record.manifest);
  else print(res.record.path);
  if (res.sourceDamaged) {
    process.stderr.write(`lifeboat: ${db} is damaged: ${res.record.manifest.verification.problems.slice(0, 3).join('; ')} (the backup was kept: ${res.record.path})\n`);
    return EXIT.damage;
  }
  if (!res.verified) {
    process.stderr.write(`lifeboat: ${res.record.path} was written but not verified: ${res.record.manifest.verification.skippedReason ?? 'verification skipped'}\n`);
    return EXIT.failed;
  }
  return EXIT.ok;
}

async function cmdList(argv: string[], engine: Engine): Promise<number> {
  const { opts, pos } = parse(argv, { dir: { type: 'string' }, json: { type: 'boolean' }, from: { type: 'string' } });
  if (pos.length > 1) throw new UsageError('list takes at most one database path');
  if (typeof opts.from === 'string' && typeof opts.dir === 'string') throw new UsageError('list takes --dir or --from, not both');
  const db = pos[0] ? path.resolve(pos[0]) : undefined;
  const cfg = loadSettings(db ? path.dirname(db) : process.cwd(), db);
  let dir: string;
  let listing: Awaited<ReturnType<Engine['list']>>;
  if (typeof opts.from === 'string') {
    const remote = cliRemote(engine, opts.from, '--from', cfg.settings);
    await remote.attachExisting();
    dir = remote.label;
    const l = await engine.listStore(remote);
    listing = { records: db ? l.records.filter((r) => r.manifest.source.path === db) : l.records, broken: l.broken };
  } else {
    dir = resolveDir(opts, cfg, db);
    listing = await engine.list(dir, db);
  }
  const { records, broken } = listing;
  if (opts.json) {
    // The tier the tree and the panel show each backup under, and why it is kept (the same
    // tiersOf); left out when the retention settings cannot be applied.
    let tiers: ReturnType<typeof tiersOf> | undefined;
    try {
      tiers = tiersOf(records, cfg.settings.retention, engine.clock.now());
    } catch {
      tiers = undefined;
    }
    json({ dir, backups: records.map((r) => ({ id: r.id, path: r.path, store: r.store, object: r.object, format: r.format, size: r.archiveSize, storedBytes: r.archiveSize, kind: r.manifest.kind, created: r.manifest.created, source: r.manifest.source.path, verified: isVerified(r), verification: verificationState(r), probeFailed: probeOnlyFailure(r), pinned: !!r.state.pinned, sourceDamaged: r.manifest.sourceDamaged, tier: tiers?.get(r.id)?.tier, keptBecause: tiers?.get(r.id)?.reasons, restoreTest: r.state.lastRestoreTest })), broken });
    return EXIT.ok;
  }
  if (!records.length) print(`no backups in ${dir}`);
  for (const r of records) {
    print(`${localTime(r.manifest.created)}  ${r.manifest.kind.padEnd(11)} ${formatBytes(r.archiveSize).padStart(8)}  ${verificationLabel(r).padEnd(10)}${r.state.pinned ? ' pinned' : ''}  ${r.id}`);
  }
  for (const b of broken) process.stderr.write(`lifeboat: unreadable archive ${b.path}: ${b.error}\n`);
  return EXIT.ok;
}

async function cmdStats(argv: string[], engine: Engine): Promise<number> {
  const { opts, pos } = parse(argv, { dir: { type: 'string' }, json: { type: 'boolean' } });
  if (pos.length) throw new UsageError('stats takes no positional arguments');
  const cfg = dirSettings(opts);
  const dir = resolveDir(opts, cfg);
  const catalog = engine.catalog(dir);
  const { records } = await catalog.list();
  const s = computeStats(records, await catalog.log.read(), engine.clock.now());
  // Bytes on disk: the objects backups are made of (zips, snapshot manifests, packs), not the bookkeeping in .lifeboat/.
  let repositoryBytes = 0;
  for (const folder of ['', SNAPSHOT_FOLDER, PACK_FOLDER]) for (const o of await catalog.store.list(folder)) repositoryBytes += o.size;
  const fullCopyBytes = records.reduce((n, r) => n + r.manifest.image.size, 0);
  const dedupRatio = repositoryBytes ? fullCopyBytes / repositoryBytes : null;
  const tested = newestRestoreTestOf(records);
  if (opts.json) {
    json({ dir, ...s, repositoryBytes, fullCopyBytes, dedupRatio, lastRestoreTest: tested ?? null });
    return EXIT.ok;
  }
  print(`directory      ${dir}`);
  print(`backups        ${s.count} (${formatBytes(s.totalSize)}), ${s.verified} verified`);
  print(`on disk        ${formatBytes(repositoryBytes)} (archives, snapshots/ and packs/)`);
  print(`full copies    ${formatBytes(fullCopyBytes)} (every backup's database at its full size)`);
  print(`dedup ratio    ${dedupRatio === null ? '-' : `${dedupRatio.toFixed(2)}x`}`);
  print(`oldest         ${s.oldest ? localTime(s.oldest) : '-'}`);
  print(`newest         ${s.newest ? localTime(s.newest) : '-'}`);
  for (const [k, v] of Object.entries(s.perKind)) print(`  ${k.padEnd(12)} ${v.count} (${formatBytes(v.size)})`);
  print(`restore-tested ${Math.round(s.restoreTestCoverage * 100)}% of the backups in the last 30 days`);
  print(`restore test   ${tested ? `${localTime(tested.at)} ${tested.id} (${tested.from ? `off-site copy in ${tested.from}` : 'local copy'}) ${tested.ok ? 'passed' : 'FAILED'}` : '-'}`);
  if (s.sourceDamaged) print(`SOURCE DAMAGED ${s.sourceDamaged} backup(s) found the live database damaged`);
  print(`last success   ${s.lastSuccess ? localTime(s.lastSuccess.time) : '-'}`);
  print(`last failure   ${s.lastFailure ? `${localTime(s.lastFailure.time)}: ${s.lastFailure.reason}` : '-'}`);
  return EXIT.ok;
}

async function cmdVerify(argv: string[], engine: Engine): Promise<number> {
  const { opts, pos } = parse(argv, { dir: { type: 'string' }, all: { type: 'boolean' }, deep: { type: 'boolean' }, json: { type: 'boolean' }, from: { type: 'string' } });
  if (opts.all ? pos.length !== 0 : pos.length !== 1) throw new UsageError('verify needs one backup (its path or id), or --all');
  let archives: BackupRef[];
  let settingsFrom: string;
  if (typeof opts.from === 'string') {
    const remote = cliRemote(engine, opts.from, '--from', loadSettings(process.cwd()).settings);
    if (opts.all) {
      const { records, broken } = await engine.listStore(remote);
      archives = [...records.map((r) => ({ store: remote, object: r.object })), ...broken.map((b) => ({ store: remote, object: b.object }))];
    } else archives = [{ store: remote, object: (await remoteBackup(engine, remote, pos[0])).object }];
    settingsFrom = process.cwd();
  } else if (opts.all) {
    const cfg = dirSettings(opts);
    const dir = resolveDir(opts, cfg);
    const { records, broken } = await engine.list(dir);
    archives = [...records.map((r) => r.path), ...broken.map((b) => b.path)];
    settingsFrom = dir;
  } else {
    const one = await resolveBackup(pos[0], opts, engine);
    archives = [one];
    settingsFrom = backupFolderOf(one);
  }
  let damaged = 0;
  const results = [];
  for (const a of archives) {
    let ok = false;
    let problems: string[] = [];
    let notChecked: string[] = [];
    let probeFailed = false;
    let verifiedBy: VerifyReport['engine'] | undefined;
    try {
      // Each backup is checked with its own database's settings (probe query, limits).
      const source = await engine.manifestOf(a).then((m) => m.source.path, () => undefined);
      const cfg = source ? loadSettings(path.dirname(source), source) : loadSettings(settingsFrom);
      const r = await engine.verifyArchive(a, cfg.settings, { deep: !!opts.deep });
      // Only the probe query failed: the archive is intact and stays verified (core's verificationState), with a warning.
      probeFailed = !r.ok && r.report?.status === 'failed' && onlyProbeFailed(r.problems);
      ok = r.ok || probeFailed;
      problems = r.problems;
      notChecked = r.report?.notChecked ?? [];
      verifiedBy = r.report?.engine;
    } catch (e) {
      if (!BackupError.is(e) || e.reason === 'cancelled' || e.reason === 'notFound') throw e;
      problems = [e.message];
    }
    if (!ok) damaged++;
    const shown = typeof a === 'string' ? a : `${a.store.url}/${a.object}`;
    results.push({ archive: shown, ok, probeFailed, problems, notChecked, engine: verifiedBy });
    if (!opts.json) {
      // What could be checked depends on the engine (sql.js has no FTS5 or R-Tree): always named.
      const by = verifiedBy ? `  [${verifiedBy.name} ${verifiedBy.sqliteVersion}]` : '';
      print(`${probeFailed ? 'ok, probe query failed' : ok ? 'ok     ' : 'DAMAGED'}  ${shown}${by}${notChecked.length ? `  (not checked: ${notChecked.join(', ')})` : ''}`);
      for (const p of problems.slice(0, 10)) print(`         ${p}`);
    }
  }
  if (opts.json) json({ ok: damaged === 0, results });
  else if (opts.all) print(`${archives.length - damaged} ok, ${damaged} damaged`);
  return damaged ? EXIT.damage : EXIT.ok;
}

async function cmdRestore(argv: string[], engine: Engine): Promise<number> {
  const { opts, pos } = parse(argv, {
    to: { type: 'string' },
    force: { type: 'boolean' },
    json: { type: 'boolean' },
    dir: { type: 'string' },
    table: { type: 'string' },
    from: { type: 'string' },
    db: { type: 'string' },
    key: { type: 'string', multiple: true },
    'keys-from': { type: 'string' },
    'delete-added': { type: 'boolean' },
  });
  if (pos.length !== 1) throw new UsageError('restore needs exactly one backup (its path or id)');
  const keyed = opts.key !== undefined || opts['keys-from'] !== undefined;
  if (keyed && typeof opts.table !== 'string') throw new UsageError('--key and --keys-from select rows of a table: give --table T too');
  if (opts['delete-added'] && !keyed) throw new UsageError('--delete-added applies to selected rows (--key or --keys-from)');
  if (typeof opts.db === 'string' && typeof opts.from !== 'string') throw new UsageError('--db names a database among the backups of --from URL');
  let archive: BackupRef;
  if (typeof opts.from === 'string') {
    if (typeof opts.table === 'string') throw new UsageError('--table restores from a local backup; copy the backup back first (lifeboat export --from URL)');
    const remote = cliRemote(engine, opts.from, '--from', loadSettings(process.cwd()).settings);
    const r = await remoteBackup(engine, remote, pos[0], typeof opts.db === 'string' ? opts.db : undefined);
    archive = { store: remote, object: r.object };
    if (typeof opts.to !== 'string') throw new UsageError('restore --from URL needs --to PATH: where to put the database');
    const target = path.resolve(opts.to);
    const cfg = loadSettings(path.dirname(target), target);
    // The pre-restore backup of what is at --to goes to the local backup folder, never to the remote.
    const res = await engine.restore(archive, { to: target, force: !!opts.force, settings: cfg.settings, dir: resolveDir(opts, cfg, target) });
    if (opts.json) json({ target: res.target, restored: res.manifest.id, from: remote.url, preRestore: res.preRestore?.path ?? null, rawCopy: res.rawCopy ?? null, method: res.method, inUse: res.inUse ?? null, checked: res.checked.by });
    else {
      print(`restored ${res.manifest.id} from ${remote.label} to ${res.target}`);
      print(`checked: ${describeRestoreCheck(res.checked)}`);
      if (res.preRestore) print(`the previous state is saved in ${res.preRestore.path}`);
    }
    return EXIT.ok;
  }
  archive = await resolveBackup(pos[0], opts, engine);
  if (typeof opts.table === 'string') {
    if (!opts.table) throw new UsageError('--table needs the name of a table');
    if (opts.force) throw new UsageError('--force does not apply to --table: one table is always restored through SQLite, in one transaction');
    const target = typeof opts.to === 'string' ? path.resolve(opts.to) : (await engine.manifestOf(archive)).source.path;
    const cfg = loadSettings(path.dirname(target), target);
    if (keyed) return restoreRows(engine, archive, opts.table, target, opts);
    const r = await engine.restoreTable(archive, { table: opts.table, to: target, settings: cfg.settings });
    if (opts.json) {
      json({ target: r.target, table: r.table, restored: r.manifest.id, rows: r.rows, before: r.before, preRestore: r.preRestore.path, foreignKeyViolations: r.foreignKeyViolationCount, firstViolations: r.foreignKeyViolations, triggers: r.triggers });
    } else {
      print(`restored table ${r.table} of ${r.target} from ${r.manifest.id}: ${r.before} rows replaced by ${r.rows}`);
      print(`the previous state is saved in ${r.preRestore.path}`);
      if (r.foreignKeyViolationCount) {
        print(`foreign keys: ${r.foreignKeyViolationCount} violation(s) now, e.g. ${r.foreignKeyViolations.slice(0, 3).map((v) => `${v.table} rowid ${v.rowid} -> ${v.parent}`).join('; ')}`);
      }
    }
    return EXIT.ok;
  }
  // The settings of the database being restored (its lifeboat.json or workspace settings).
  const target = typeof opts.to === 'string' ? path.resolve(opts.to) : (await engine.manifestOf(archive)).source.path;
  const cfg = loadSettings(path.dirname(target), target);
  const res = await engine.restore(archive, {
    to: typeof opts.to === 'string' ? opts.to : undefined,
    force: !!opts.force,
    settings: cfg.settings,
    dir: typeof opts.dir === 'string' ? path.resolve(opts.dir) : undefined,
  });
  if (opts.json) json({ target: res.target, restored: res.manifest.id, preRestore: res.preRestore?.path ?? null, rawCopy: res.rawCopy ?? null, method: res.method, inUse: res.inUse ?? null, checked: res.checked.by });
  else {
    print(`restored ${res.manifest.id} to ${res.target}${res.method === 'sqlite' ? ` through SQLite while it was open (${(res.inUse ?? []).join('; ')})` : ''}`);
    print(`checked: ${describeRestoreCheck(res.checked)}`);
    if (res.preRestore) print(`the previous state is saved in ${res.preRestore.path}`);
    if (res.rawCopy) print(`the previous file was not readable SQLite; its raw bytes are kept in ${res.rawCopy}`);
  }
  return EXIT.ok;
}

/** A --key value: JSON when it parses (5, "5", [1,"a"], {"$blob":"ff"}), else the text itself; an integer beyond 2^53 keeps its digits. */
function keyArg(v: string): unknown {
  if (/^-?\d+$/.test(v.trim()) && !Number.isSafeInteger(Number(v))) return v.trim();
  try {
    return JSON.parse(v);
  } catch {
    return v;
  }
}

/**
 * The rows --keys-from names: a `diff --rows --json` report (the table's removed and
 * changed rows, and its added ones with --delete-added), a JSON array of keys (arrays) or
 * rows (objects), or JSON lines, one key or row each.
 */
function keysFromText(text: string, from: string, table: string, deleteAdded: boolean): unknown[] {
  const fromReport = (r: { tables?: Record<string, { added?: number; removed?: number; changed?: number; rows?: { added: unknown[]; removed: unknown[]; changed: { old: unknown; new: unknown }[] } }> }) => {
    const t = r.tables?.[table];
    if (!t?.rows) throw new UsageError(`--keys-from ${from}: the diff lists no rows of table ${table} (run diff with --table ${table} --rows --json)`);
    const listed = t.rows.removed.length + t.rows.changed.length + (deleteAdded ? t.rows.added.length : 0);
    const counted = (t.removed ?? 0) + (t.changed ?? 0) + (deleteAdded ? (t.added ?? 0) : 0);
    if (listed < counted) process.stderr.write(`lifeboat: --keys-from ${from} lists ${listed} of the ${counted} rows the diff counted (diff --limit); only those are restored\n`);
    return [...t.rows.removed, ...t.rows.changed.map((c) => c.new), ...(deleteAdded ? t.rows.added : [])];
  };
  const isReport = (v: unknown): v is Parameters<typeof fromReport>[0] => !!v && typeof v === 'object' && !Array.isArray(v) && 'tables' in v && 'schema' in v;
  const trimmed = text.trim();
  if (!trimmed) throw new UsageError(`--keys-from ${from}: empty; give a diff --rows --json report, a JSON array of keys, or one key per line`);
  try {
    const whole: unknown = JSON.parse(trimmed);
    if (isReport(whole)) return fromReport(whole);
    // A list of keys or rows; an array of plain values is one key of several columns.
    if (Array.isArray(whole) && whole.length && whole.every((x) => x !== null && typeof x === 'object' && !('$blob' in x))) return whole;
    return [whole];
  } catch (e) {
    if (e instanceof UsageError) throw e;
  }
  const out: unknown[] = [];
  trimmed.split(/\r?\n/).forEach((line, i) => {
    if (!line.trim()) return;
    try {
      out.push(JSON.parse(line));
    } catch {
      throw new UsageError(`--keys-from ${from}: line ${i + 1} is not JSON: ${line.slice(0, 80)}`);
    }
  });
  return out;
}

async function restoreRows(engine: Engine, archive: string, table: string, target: string, opts: Options): Promise<number> {
  const deleteAdded = !!opts['delete-added'];
  const keys = ((opts.key as unknown as string[] | undefined) ?? []).map(keyArg);
  const from = opts['keys-from'];
  if (typeof from === 'string') {
    let text: string;
    if (from === '-') {
      const chunks: Buffer[] = [];
      for await (const c of process.stdin) chunks.push(c as Buffer);
      text = Buffer.concat(chunks).toString('utf8');
    } else {
      text = await fs.readFile(path.resolve(from), 'utf8').catch((e: NodeJS.ErrnoException) => {
        throw new BackupError(e.code === 'ENOENT' ? 'notFound' : 'io', `--keys-from ${path.resolve(from)}: ${e.code === 'ENOENT' ? 'no such file' : e.message}`, { path: path.resolve(from) });
      });
    }
    keys.push(...keysFromText(text, from === '-' ? 'stdin' : from, table, deleteAdded));
  }
  if (!keys.length) throw new UsageError(`no rows selected: --keys-from ${String(from)} names none`);
  const cfg = loadSettings(path.dirname(target), target);
  const r = await engine.restoreRows(archive, { table, keys, deleteAdded, to: target, settings: cfg.settings });
  if (opts.json) {
    json({ target: r.target, table: r.table, restored: r.manifest.id, key: r.keyColumns, inserted: r.inserted, updated: r.updated, unchanged: r.unchanged, deleted: r.deleted, rows: r.rows, preRestore: r.preRestore.path, foreignKeyViolations: r.foreignKeyViolationCount, firstViolations: r.foreignKeyViolations, triggers: r.triggers });
  } else {
    const n = r.inserted + r.updated + r.unchanged + r.deleted;
    print(`restored ${n} row(s) of table ${r.table} of ${r.target} from ${r.manifest.id}: ${r.inserted} inserted, ${r.updated} updated, ${r.unchanged} already as the backup has them, ${r.deleted} deleted`);
    print(`the previous state is saved in ${r.preRestore.path}`);
    if (r.foreignKeyViolationCount) {
      print(`foreign keys: ${r.foreignKeyViolationCount} violation(s) now, e.g. ${r.foreignKeyViolations.slice(0, 3).map((v) => `${v.table} rowid ${v.rowid} -> ${v.parent}`).join('; ')}`);
    }
  }
  return EXIT.ok;
}

async function cmdDiff(argv: string[], engine: Engine): Promise<number> {
  const { opts, pos } = parse(argv, {
    live: { type: 'string' },
    table: { type: 'string' },
    rows: { type: 'boolean' },
    limit: { type: 'string' },
    offset: { type: 'string' },
    json: { type: 'boolean' },
    dir: { type: 'string' },
  });
  if (pos.length < 1 || pos.length > 2) throw new UsageError('diff needs a backup, and a second backup or --live <db>');
  if (pos.length === 2 && typeof opts.live === 'string') throw new UsageError('diff compares a backup with a second backup or with --live <db>, not both');
  if (pos.length === 1 && typeof opts.live !== 'string') throw new UsageError('diff needs a second backup or --live <db>');
  const count = (flag: 'limit' | 'offset', dflt: number) => {
    const v = opts[flag];
    if (v === undefined) return dflt;
    if (typeof v !== 'string' || !/^\d+$/.test(v)) throw new UsageError(`--${flag} must be a whole number, not ${String(v)}`);
    return Number(v);
  };
  const older = await resolveBackup(pos[0], opts, engine);
  let newer: string | { live: string };
  if (typeof opts.live === 'string') {
    const live = path.resolve(opts.live);
    if (!(await fs.stat(live).then((st) => st.isFile(), () => false))) throw new BackupError('notFound', `--live ${live}: no such database file`, { path: live });
    newer = { live };
  } else newer = await resolveBackup(pos[1], opts, engine);
  const r = await engine.diff(older, newer, { table: typeof opts.table === 'string' ? opts.table : undefined, rows: !!opts.rows, limit: count('limit', 1000), offset: count('offset', 0) });
  if (opts.json) {
    json(r);
    return EXIT.ok;
  }
  const sch = r.schema;
  for (const o of sch.added) print(`+ ${o.type} ${o.name}`);
  for (const o of sch.removed) print(`- ${o.type} ${o.name}`);
  for (const o of sch.changed) {
    const c = o.columns;
    const cols = c ? [...c.added.map((x) => `+${x}`), ...c.removed.map((x) => `-${x}`), ...c.changed.map((x) => `~${x}`)].join(' ') : '';
    print(`~ ${o.type} ${o.name}${cols ? ` (columns ${cols})` : ''}`);
  }
  const names = Object.keys(r.tables);
  const width = Math.max(5, ...names.map((n) => n.length));
  for (const n of names) {
    const t = r.tables[n];
    print(`${n.padEnd(width)}  +${t.added} -${t.removed} ~${t.changed}  by ${t.key}`);
    if (t.rows) {
      for (const x of t.rows.added) print(`  + ${JSON.stringify(x)}`);
      for (const x of t.rows.removed) print(`  - ${JSON.stringify(x)}`);
      for (const x of t.rows.changed) print(`  ~ ${JSON.stringify(x.old)} -> ${JSON.stringify(x.new)}`);
    }
  }
  for (const [n, why] of Object.entries(r.notCompared)) print(`${n.padEnd(width)}  not compared: ${why}`);
  if (!sch.added.length && !sch.removed.length && !sch.changed.length && names.every((n) => !r.tables[n].added && !r.tables[n].removed && !r.tables[n].changed)) print('no differences');
  return EXIT.ok;
}

async function cmdPush(argv: string[], engine: Engine): Promise<number> {
  const { opts, pos } = parse(argv, { dir: { type: 'string' }, to: { type: 'string' }, 'no-encrypt': { type: 'boolean' }, endpoint: { type: 'string' }, json: { type: 'boolean' } });
  if (pos.length > 1) throw new UsageError('push takes at most one database path');
  const db = pos[0] ? await canonicalPath(path.resolve(pos[0])) : undefined;
  const cfg = db ? loadSettings(path.dirname(db), db) : dirSettings(opts);
  const dir = resolveDir(opts, cfg, db);
  if (!(await fs.stat(dir).then((st) => st.isDirectory(), () => false))) throw new BackupError('notFound', `${dir}: no such backup directory (--dir)`, { path: dir });
  const to = typeof opts.to === 'string' ? opts.to : undefined;
  const ro = { encrypt: opts['no-encrypt'] ? false : undefined, endpoint: typeof opts.endpoint === 'string' ? opts.endpoint : undefined };
  // Built here only to check the URL and name the remote; the copy runs in a worker thread.
  const { remote: rs, scryptLogN } = cliRemoteSettings(to, '--to', cfg.settings, ro);
  const remote = cliRemoteWith(engine, { remote: rs, scryptLogN });
  const progress = !opts.json && process.stderr.isTTY ? (p: { phase: string; done: number; total: number }) => process.stderr.write(`\r${p.phase} (${p.done}/${p.total})\x1b[K`) : undefined;
  // Ctrl-C stops the copy cleanly (unfinished uploads aborted, the remote's lock released); a second one ends the process.
  const stop = new AbortController();
  const onInt = (): void => {
    if (stop.signal.aborted) process.exit(130);
    process.stderr.write('\nlifeboat: stopping the copy (Ctrl-C again to quit now)\n');
    stop.abort();
  };
  process.on('SIGINT', onInt);
  try {
    const res = await runPushJob(
      { dir, remote: rs, secrets: { from: 'env' }, settings: cfg.settings, db, scryptLogN, key: await remote.prepareKey(true), collectGarbageAtMiB: 32, retention: { ...cfg.settings.retention, ...cfg.settings.offsite.retention } },
      { onProgress: progress, signal: stop.signal },
    );
    if (progress) process.stderr.write('\r\x1b[K');
    if (opts.json) json({ ...res, rotation: res.rotation ? { kept: res.rotation.keep.length, removed: res.rotation.remove.map((r) => r.id), refused: res.rotation.refused ?? null } : null });
    else {
      print(`${remote.label}${res.encrypted ? ' (encrypted)' : ' (NOT encrypted)'}: copied ${res.copied.length} backup(s), ${formatBytes(res.bytes)}; ${res.present} already there${res.unverified ? `; ${res.unverified} unverified not copied` : ''}`);
      for (const c of res.copied) print(`  copied ${c.id} (${c.objects} object(s), ${formatBytes(c.bytes)})`);
      for (const f of res.failed) print(`  FAILED ${f.id}: ${f.error}`);
      if (res.rotation?.remove.length) print(`  rotated off-site: ${res.rotation.remove.map((r) => r.id).join(', ')}`);
    }
    if (res.rotationError) process.stderr.write(`lifeboat: rotation of ${remote.label} failed: ${res.rotationError}\n`);
    return res.failed.length ? EXIT.failed : EXIT.ok;
  } finally {
    process.off('SIGINT', onInt);
    await remote.close();
  }
}

async function cmdExport(argv: string[], engine: Engine): Promise<number> {
  const { opts, pos } = parse(argv, { to: { type: 'string' }, dir: { type: 'string' }, force: { type: 'boolean' }, json: { type: 'boolean' }, from: { type: 'string' }, db: { type: 'string' } });
  if (pos.length !== 1) throw new UsageError('export needs exactly one backup (its path or id)');
  if (typeof opts.to !== 'string' || !opts.to) throw new UsageError('export needs --to FILE: the database (or .zip archive) to write');
  let archive: BackupRef;
  if (typeof opts.from === 'string') {
    const remote = cliRemote(engine, opts.from, '--from', loadSettings(process.cwd()).settings);
    archive = { store: remote, object: (await remoteBackup(engine, remote, pos[0], typeof opts.db === 'string' ? opts.db : undefined)).object };
  } else archive = await resolveBackup(pos[0], opts, engine);
  const to = path.resolve(opts.to);
  if (to.toLowerCase().endsWith('.age')) {
    const res = await exportAge(engine, archive, { to, force: !!opts.force, passphrase: process.env.LIFEBOAT_PASSWORD, recipients: process.env.LIFEBOAT_AGE_RECIPIENTS });
    if (opts.json) json({ exported: res.manifest.id, path: res.path, as: `${res.as}.age`, size: res.size, imageSha256: res.manifest.image.sha256 });
    else print(`exported ${res.manifest.id} as an age-encrypted ${res.as === 'zip' ? 'zip archive' : 'SQLite database'} (${formatBytes(res.size)}) to ${res.path}`);
    return EXIT.ok;
  }
  const source = await engine.manifestOf(archive).then((m) => m.source.path, () => undefined);
  // Over the live database that is a restore, which refuses while the file is open and keeps a pre-restore backup.
  if (source && (await canonicalPath(to)) === source) {
    throw new UsageError(`--to ${to}: is the database this backup was made of; use lifeboat restore to put a backup back`);
  }
  // The compression level of the backup's own database, for a .zip target.
  let compressionLevel: number | undefined;
  try {
    compressionLevel = (source ? loadSettings(path.dirname(source), source) : loadSettings(typeof archive === 'string' ? backupFolderOf(archive) : process.cwd())).settings.compressionLevel;
  } catch {
    // Settings that do not parse must not stop a copy of a backup going out: the default level then.
  }
  const res = await engine.exportBackup(archive, { to, force: !!opts.force, compressionLevel }).catch((e: unknown) => {
    if (BackupError.is(e, 'exists')) throw new BackupError('exists', `${e.message} (--force replaces it)`, { path: e.path });
    throw e;
  });
  if (opts.json) json({ exported: res.manifest.id, path: res.path, as: res.as, size: res.size, imageSha256: res.manifest.image.sha256 });
  else print(`exported ${res.manifest.id} as ${res.as === 'zip' ? 'a zip archive' : 'an SQLite database'} (${formatBytes(res.size)}) to ${res.path}`);
  return EXIT.ok;
}

async function cmdLog(argv: string[], engine: Engine): Promise<number> {
  const { opts, pos } = parse(argv, { dir: { type: 'string' }, json: { type: 'boolean' }, limit: { type: 'string' } });
  if (pos.length) throw new UsageError('log takes no positional arguments');
  const limit = opts.limit === undefined ? undefined : Number(opts.limit);
  if (limit !== undefined && !(Number.isInteger(limit) && limit > 0)) throw new UsageError(`--limit must be a positive whole number (got ${opts.limit})`);
  const cfg = dirSettings(opts);
  const dir = resolveDir(opts, cfg);
  const entries = await engine.catalog(dir).log.read(limit);
  if (opts.json) json(entries);
  else if (!entries.length) print(`the backup log in ${dir} is empty`);
  else for (const e of entries) print(formatLogEntry(e));
  return EXIT.ok;
}

async function cmdRun(argv: string[], engine: Engine): Promise<number> {
  const sep = argv.indexOf('--');
  if (sep < 0 || sep === argv.length - 1) throw new UsageError('run needs a command after --, e.g. lifeboat run --db app.db -- npx prisma migrate deploy');
  const { opts, pos } = parse(argv.slice(0, sep), { db: { type: 'string' }, dir: { type: 'string' } });
  if (pos.length) throw new UsageError(`unexpected argument before --: ${pos[0]}`);
  const command = argv.slice(sep + 1);
  const cfg = loadSettings(process.cwd(), typeof opts.db === 'string' ? opts.db : undefined);
  const dbs = typeof opts.db === 'string' ? [path.resolve(opts.db)] : cfg.settings.databases.map((d) => path.resolve(cfg.base, d));
  if (!dbs.length) throw new UsageError('run needs --db, or lifeboat.databases in the settings');
  for (const db of dbs) {
    const res = await engine.backupBeforeMigration(db, { dir: resolveDir(opts, cfg, db), settings: cfg.settings, trigger: `before: ${command.join(' ')}` });
    process.stderr.write(`lifeboat: backed up ${db} to ${res.record.path}\n`);
  }
  return new Promise((resolve) => {
    const child = spawn(command[0], command.slice(1), { stdio: 'inherit', shell: process.platform === 'win32' });
    // Stopping lifeboat stops the command it runs, rather than orphaning it.
    const forward = (sig: NodeJS.Signals) => () => child.kill(sig);
    for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) process.on(sig, forward(sig));
    child.on('error', (e) => {
      process.stderr.write(`lifeboat: cannot run ${command[0]}: ${e.message}\n`);
      resolve(127);
    });
    child.on('exit', (code, signal) => resolve(code ?? (signal ? 128 + (os.constants.signals[signal] ?? 15) : 1)));
  });
}

async function cmdRotate(argv: string[], engine: Engine): Promise<number> {
  const { opts, pos } = parse(argv, { dir: { type: 'string' }, 'dry-run': { type: 'boolean' }, force: { type: 'boolean' }, json: { type: 'boolean' } });
  if (pos.length) throw new UsageError('rotate takes no positional arguments');
  const cfg = dirSettings(opts);
  const dir = resolveDir(opts, cfg);
  const dryRun = !!opts['dry-run'];
  // What deleting each backup frees by itself: its zip, or its snapshot manifest (packs are prune's). Read
  // before the rotation deletes them; a plain listing of the store, which writes nothing.
  const store = engine.catalog(dir).store;
  const ownBytes = new Map<string, number>();
  for (const f of FORMATS) for (const o of f.visibleObjects(await store.list(f.folder))) ownBytes.set(f.idOf(o.name), o.size);
  const plan = await engine.rotate(dir, cfg.settings, { dryRun, force: !!opts.force });
  const remove = plan.remove.map((r) => ({ ...r, bytes: ownBytes.get(r.id) ?? 0 }));
  const prune = plan.prune ?? { packs: 0, bytes: 0 };
  const freedBytes = prune.bytes - (prune.repacked?.writtenBytes ?? 0) + (plan.refused ? 0 : remove.reduce((n, r) => n + r.bytes, 0));
  if (opts.json) json({ dir, dryRun, ...plan, remove, prune, freedBytes });
  else {
    for (const k of plan.keep) print(`keep          ${k.id}  (${k.reasons.join(', ')})`);
    for (const r of remove) print(`${dryRun || plan.refused ? 'would delete' : 'deleted     '}  ${r.id}  (${r.reasons.join(', ')})  ${formatBytes(r.bytes)}`);
    if (prune.packs) print(`${dryRun ? 'would prune ' : 'pruned      '}  ${prune.packs} pack(s) no kept backup uses  ${formatBytes(prune.bytes)}`);
    if (prune.repacked) print(`${dryRun ? 'would repack' : 'repacked    '}  ${prune.repacked.packs} of them mostly unused: their used pages ${dryRun ? 'copied to about' : 'copied to'} ${formatBytes(prune.repacked.writtenBytes)}`);
    print(`${dryRun ? 'would free  ' : 'freed       '}  ${formatBytes(freedBytes)}`);
  }
  if (prune.refused) process.stderr.write(`lifeboat: ${prune.refused}\n`);
  if (plan.refused) {
    process.stderr.write(`lifeboat: rotation refused: ${plan.refused}; run with --force to delete anyway\n`);
    return EXIT.failed;
  }
  return EXIT.ok;
}

async function cmdPin(argv: string[], engine: Engine, pinned: boolean): Promise<number> {
  const { opts, pos } = parse(argv, { dir: { type: 'string' } });
  if (pos.length !== 1) throw new UsageError(`${pinned ? 'pin' : 'unpin'} needs exactly one backup (its path or id)`);
  const r = await engine.setPinned(await resolveBackup(pos[0], opts, engine), pinned);
  print(`${pinned ? 'pinned' : 'unpinned'} ${r.path}`);
  return EXIT.ok;
}

async function readJsonFile(file: string, flag: string): Promise<unknown> {
  let text: string;
  try {
    text = await fs.readFile(file, 'utf8');
  } catch (e) {
    throw new UsageError(`${flag} ${file}: ${(e as NodeJS.ErrnoException).code === 'ENOENT' ? 'no such file' : (e as Error).message}`);
  }
  try {
    return JSON.parse(text);
  } catch (e) {
    throw new UsageError(`${flag} ${file}: not valid JSON (${(e as Error).message})`);
  }
}

async function cmdPolicy(argv: string[]): Promise<number> {
  const { opts, pos } = parse(argv, { snapshots: { type: 'string' }, policy: { type: 'string' } });
  if (pos.length || typeof opts.snapshots !== 'string' || typeof opts.policy !== 'string') {
    throw new UsageError('policy needs --snapshots S.json and --policy P.json');
  }
  const snaps = await readJsonFile(opts.snapshots, '--snapshots');
  if (!Array.isArray(snaps) || !snaps.every((s) => s && typeof s.id === 'string' && typeof s.time === 'string' && !Number.isNaN(Date.parse(s.time)))) {
    throw new UsageError(`--snapshots ${opts.snapshots}: must be a list of {"id", "time"} with RFC 3339 times`);
  }
  let policy;
  try {
    policy = parsePolicyJson(await readJsonFile(opts.policy, '--policy'));
  } catch (e) {
    if (BackupError.is(e)) throw new UsageError(`--policy ${opts.policy}: ${e.message}`);
    throw e;
  }
  if (isEmptyPolicy(policy)) throw new UsageError(`--policy ${opts.policy}: the policy is empty; it would remove every snapshot, so it is refused`);
  const r = applyPolicy(snaps as PolicySnapshot[], policy, new Date());
  const reasons: Record<string, string[]> = {};
  for (const [id, k] of Object.entries(r.reasons)) reasons[id] = k.matches;
  json({ keep: r.keep, remove: r.remove, reasons });
  return EXIT.ok;
}

/** Runs the CLI; resolves to the exit code. Errors are printed once, on one line. */
export async function main(argv: string[]): Promise<number> {
  const [cmd, ...rest] = argv;
  const engine = new Engine({ logger: stderrLogger(!!process.env.LIFEBOAT_DEBUG) });
  try {
    switch (cmd) {
      case 'backup':
        return await cmdBackup(rest, engine);
      case 'list':
        return await cmdList(rest, engine);
      case 'stats':
        return await cmdStats(rest, engine);
      case 'verify':
        return await cmdVerify(rest, engine);
      case 'restore':
        return await cmdRestore(rest, engine);
      case 'export':
        return await cmdExport(rest, engine);
      case 'diff':
        return await cmdDiff(rest, engine);
      case 'push':
        return await cmdPush(rest, engine);
      case 'log':
        return await cmdLog(rest, engine);
      case 'run':
        return await cmdRun(rest, engine);
      case 'rotate':
        return await cmdRotate(rest, engine);
      case 'pin':
        return await cmdPin(rest, engine, true);
      case 'unpin':
        return await cmdPin(rest, engine, false);
      case 'policy':
        return await cmdPolicy(rest);
      case 'schedule':
        return await cmdSchedule(rest, engine);
      case undefined:
      case 'help':
      case '--help':
      case '-h':
        print(USAGE);
        return cmd === undefined ? EXIT.usage : EXIT.ok;
      default:
        throw new UsageError(`unknown command: ${cmd}`);
    }
  } catch (e) {
    if (e instanceof UsageError) {
      process.stderr.write(`lifeboat: ${e.message} (see lifeboat --help)\n`);
      return EXIT.usage;
    }
    if (BackupError.is(e)) {
      process.stderr.write(`lifeboat: ${e.message}\n`);
      if (e.reason === 'badConfig' || e.reason === 'usage') return EXIT.usage;
      if (e.reason === 'verifyFailed' || e.reason === 'badArchive' || e.reason === 'unsafeArchive') return EXIT.damage;
      return EXIT.failed;
    }
    process.stderr.write(`lifeboat: unexpected error: ${(e as Error)?.stack ?? String(e)}\n`);
    return EXIT.failed;
  } finally {
    await closeRemotes();
  }
}

if (require.main === module) {
  void main(process.argv.slice(2)).then((code) => {
    process.exitCode = code;
  });
}

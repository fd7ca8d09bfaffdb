import { promises as fs } from 'node:fs';
import os from 'node:os';
import { Catalog } from '../catalog/catalog';
import type { Settings } from '../config';
import type { Clock, ProgressListener } from '../context';
import { BackupError } from '../errors';
import type { BackupFormat, FormatCheck } from '../format/format';
import { removeQuietly } from '../fsutil';
import { onlyProbeFailed, type BackupRecord, type BackupState, type VerifyReport } from '../model';
import { META_FOLDER } from '../store/localDirStore';
import { scratchFile } from '../store/store';
import { isoLocal } from '../time';
import { verifyOptions } from './fromSettings';
import type { BackupStore } from '../store/store';
import { isOffsiteTester, offsiteRestoreSource, type OffsiteRestoreSource, type OffsiteTestOutcome } from './offsiteSource';
import { damagedPacks, failedReport, markDamaged } from './packDamage';
import { compareWithManifest, verifyImage } from './verifier';

/** What verification needs from its host. */
export interface VerifyDeps {
  clock: Clock;
}

export interface VerifyResult {
  record?: BackupRecord;
  path: string;
  ok: boolean;
  /** Backup-level problems (CRC, sha256, structure) and image-level ones. */
  problems: string[];
  report?: VerifyReport;
  /** Restore tests: the off-site store's URL when the backup was taken from there; absent for the local folder. */
  from?: string;
  /** Restore tests: why the off-site store could not be tested this time (the local folder was tested instead). */
  offsiteError?: string;
}

/** A restore test's state on a backup; `from` names the off-site store it was restored from. */
export type RestoreTestState = NonNullable<BackupState['lastRestoreTest']>;

/** The restore test takes its backup from the off-site store when that store's newest restore test is older than this: every other weekly test. */
export const OFFSITE_RESTORE_TEST_AFTER_MS = 10 * 24 * 60 * 60 * 1000;

export interface RestoreTestOptions {
  signal?: AbortSignal;
  onProgress?: ProgressListener;
  /**
   * The directory's off-site copy (undefined: none, or no secrets for it): an open store,
   * tested in this thread (`offsiteRestoreTestIn`) and closed, or a tester that runs that
   * half elsewhere (VS Code: the off-site worker). Default: what a front end registered
   * with `provideOffsiteRestoreSource`.
   */
  offsite?: () => Promise<OffsiteRestoreSource | undefined>;
  /** Default OFFSITE_RESTORE_TEST_AFTER_MS. */
  offsiteAfterMs?: number;
}

/** `deep`: v2 also reads every byte of every pack the backup uses (v1 always reads every byte). */
type Opts = { signal?: AbortSignal; onProgress?: ProgressListener; deep?: boolean };

/**
 * The format's check of every byte, then the image extracted to scratch space and
 * verified (integrity, foreign keys, schema and row counts against the manifest, probe).
 * Damage is in `problems`. The manifest's verdict may come from another engine (sql.js
 * then, node:sqlite now): compareWithManifest compares only what no engine changes.
 */
export async function inspectBackup(deps: VerifyDeps, catalog: Catalog, format: BackupFormat, object: string, settings: Settings, mode: Settings['verifyMode'], o: Opts) {
  let check: FormatCheck;
  try {
    check = await format.check(catalog.store, object, o);
  } catch (e) {
    // An object that cannot be read as stored (an altered encrypted pack) is damage found,
    // reported like any other; a missing object or a lost connection is still thrown.
    if (!BackupError.is(e, 'badArchive') && !BackupError.is(e, 'unsafeArchive')) throw e;
    check = { ok: false, problems: [e.message] };
  }
  const problems = [...check.problems];
  let report: VerifyReport | undefined;
  let archiveOk = check.ok;
  if (check.ok && check.manifest) {
    const tmp = scratchFile(await scratch(catalog), check.manifest.id, '.verify');
    try {
      await format.extractImage(catalog.store, object, tmp, o);
      o.onProgress?.({ phase: 'verify', done: 0, total: 0 });
      report = await verifyImage(tmp, { ...verifyOptions(settings, deps.clock, o.signal), mode });
      if (report.status === 'failed') problems.push(...report.problems);
      if (report.status === 'skipped') problems.push(`not verified: ${report.skippedReason ?? 'skipped'}`);
      problems.push(...compareWithManifest(report, check.manifest.verification));
    } catch (e) {
      if (BackupError.is(e, 'cancelled')) throw e;
      problems.push((e as Error).message);
      // The stored backup could not be rebuilt (a damaged or missing pack, a bad block): the
      // backup itself is damaged, not merely unchecked.
      if (e instanceof BackupError && (e.reason === 'badArchive' || e.reason === 'notFound' || e.reason === 'unsafeArchive')) archiveOk = false;
    } finally {
      await removeQuietly(tmp);
    }
  }
  const ok = problems.length === 0 && report?.status === 'ok';
  return { check, problems, report, ok, archiveOk };
}

/** True for a store Lifeboat keeps (it has a log or state), not a folder an archive was picked from. */
async function keptStore(catalog: Catalog): Promise<boolean> {
  return catalog.store.list(META_FOLDER).then(
    (l) => l.length > 0,
    () => false,
  );
}

/** The store's scratch folder, or the system's temp folder where the store is read-only (an archive picked from anywhere). */
async function scratch(catalog: Catalog): Promise<string> {
  if (!(await keptStore(catalog))) return os.tmpdir();
  try {
    const dir = await catalog.store.scratchDir();
    await fs.access(dir, 2);
    return dir;
  } catch {
    return os.tmpdir();
  }
}

/**
 * Verifies one backup fully (see `inspectBackup`). Damage is reported in the result (ok
 * false), never thrown. When the store can record it, the result is stored on the backup
 * and in the log.
 */
export async function verifyBackup(deps: VerifyDeps, catalog: Catalog, format: BackupFormat, object: string, settings: Settings, o: Opts = {}): Promise<VerifyResult> {
  const where = catalog.locate(object);
  const { check, problems, report, ok, archiveOk } = await inspectBackup(deps, catalog, format, object, settings, settings.verifyMode, o);
  let record: BackupRecord | undefined;
  // Only in a store Lifeboat keeps: verifying an exported zip in any folder leaves nothing there.
  if (check.manifest && (await keptStore(catalog))) {
    try {
      const id = format.idOf(object);
      const st = await catalog.updateState(id, (s) => {
        s.lastVerify = { ...(report ?? failedReport(problems, deps.clock)), archiveOk };
      });
      const obj = await catalog.store.stat(object);
      if (obj) record = catalog.recordOf(format, obj, check.manifest, st);
      // A probe query that no longer runs (the schema moved on) says nothing about the backup.
      const probeOnly = !ok && archiveOk && report?.status === 'failed' && onlyProbeFailed(problems);
      await catalog.record({
        op: ok ? 'verify.ok' : probeOnly ? 'verify.probeFailed' : 'verify.failed',
        level: ok ? 'info' : probeOnly ? 'warn' : 'error',
        db: check.manifest.source.path,
        backup: id,
        message: ok
          ? `verified ${id}`
          : probeOnly
            ? `verified ${id}, but the probe query failed: ${problems.slice(0, 3).join('; ')}`
            : `verification of ${id} found damage: ${problems.slice(0, 3).join('; ')}`,
        detail: { problems: problems.slice(0, 20) },
      });
    } catch {
      // A read-only location (an archive picked from anywhere): the result is still returned.
    }
  }
  return { record, path: where, ok, problems, report };
}

/** The newest restore test recorded in a store's state, as epoch ms (-Infinity: never). */
async function newestRestoreTest(catalog: Catalog): Promise<number> {
  let newest = -Infinity;
  for (const s of Object.values((await catalog.readState()).backups)) {
    const at = s.lastRestoreTest ? Date.parse(s.lastRestoreTest.at) : NaN;
    if (at > newest) newest = at;
  }
  return newest;
}

/**
 * The rolling restore test of a backup directory (`local`). Now and then the backup comes
 * from the directory's off-site store instead, so that the off-site copy is proven
 * restorable, not assumed: when one is configured and its secrets are at hand (`o.offsite`,
 * or a registered provider) and its newest restore test is older than `offsiteAfterMs`
 * (10 days: every other weekly test). The result is recorded on the tested store (its state
 * and log) and, for an off-site test, in the local state and log too (`from`: the URL), so
 * that the schedule sees a test was done. An off-site store that cannot be reached is
 * logged (warn) and the local folder is tested instead (`offsiteError`). Resolves
 * undefined when there is no backup to test; rejects with BackupError 'cancelled' (nothing
 * recorded as failed) when `o.signal` aborts. Never deletes anything.
 */
export async function restoreTest(deps: VerifyDeps, local: Catalog, formatOf: (r: BackupRecord) => BackupFormat, settings: Settings, o: RestoreTestOptions = {}): Promise<VerifyResult | undefined> {
  const opts: Opts = { signal: o.signal, onProgress: o.onProgress };
  let url: string | undefined;
  let offsiteError: string | undefined;
  try {
    const source = await (o.offsite ? o.offsite() : offsiteRestoreSource(local.dir, settings));
    if (source) {
      url = source.url;
      const afterMs = o.offsiteAfterMs ?? OFFSITE_RESTORE_TEST_AFTER_MS;
      const outcome = await offsiteHalf(deps, source, formatOf, settings, { ...opts, afterMs });
      const res = 'tested' in outcome ? outcome.tested : undefined;
      if (res?.record) {
        const from = url;
        const t = res.record.state.lastRestoreTest!;
        const mine: RestoreTestState = { ...t, detail: `from ${from}: ${t.detail ?? ''}`.replace(/: $/, ''), from };
        await local.updateState(res.record.id, (s) => {
          s.lastRestoreTest = mine;
        });
        await local.record({
          op: res.ok ? 'restoreTest.ok' : 'restoreTest.failed',
          level: res.ok ? 'info' : 'error',
          db: res.record.manifest.source.path,
          backup: res.record.id,
          message: res.ok ? `restore test of ${res.record.id} from ${from} passed` : `restore test of ${res.record.id} from ${from} FAILED: ${res.problems.slice(0, 3).join('; ')}`,
          detail: { from, problems: res.problems.slice(0, 20) },
        });
        return { ...res, from };
      }
    }
  } catch (e) {
    if (BackupError.is(e, 'cancelled') || o.signal?.aborted) throw e;
    offsiteError = (e as Error)?.message ?? String(e);
    await local.record({ op: 'restoreTest.failed', level: 'warn', message: `the off-site copy could not be restore-tested, testing the local folder instead: ${offsiteError}`, detail: { from: url } });
  }
  const res = await restoreTestIn(deps, local, formatOf, settings, opts);
  return res && offsiteError ? { ...res, offsiteError } : res;
}

/** The off-site half of a restore test: the source's own (a tester), or `offsiteRestoreTestIn` on the open store here, which is closed after. */
async function offsiteHalf(deps: VerifyDeps, source: OffsiteRestoreSource, formatOf: (r: BackupRecord) => BackupFormat, settings: Settings, o: Opts & { afterMs: number }): Promise<OffsiteTestOutcome> {
  if (isOffsiteTester(source)) return source.restoreTest({ settings, now: deps.clock.now().getTime(), afterMs: o.afterMs, signal: o.signal, onProgress: o.onProgress });
  try {
    return await offsiteRestoreTestIn(deps, source, formatOf, settings, o);
  } finally {
    await source.close().catch(() => undefined);
  }
}

/**
 * The off-site half of the rolling restore test, on an open off-site store (in the
 * caller's thread, or in the off-site worker): when the store's newest restore test is at
 * least `afterMs` old (or it has none), `restoreTestIn` on it, which records the result in
 * the store's own state and log. Its reads take what any read of a backup there takes (the
 * store's lock while a manifest is read and its packs leased; the lock again to write its
 * state). Resolves what it found (plain data); throws what reading the store throws, and
 * BackupError 'cancelled' when `o.signal` aborts. Does not close the store.
 */
export async function offsiteRestoreTestIn(deps: VerifyDeps, store: BackupStore, formatOf: (r: BackupRecord) => BackupFormat, settings: Settings, o: Opts & { afterMs: number }): Promise<OffsiteTestOutcome> {
  const rc = new Catalog(store, { clock: deps.clock });
  if ((await newestRestoreTest(rc)) > deps.clock.now().getTime() - o.afterMs) return { skipped: 'notDue' };
  const res = await restoreTestIn(deps, rc, formatOf, settings, { signal: o.signal, onProgress: o.onProgress });
  return res ? { tested: res } : { skipped: 'empty' };
}

/**
 * The restore test of one store: restores the kept backup whose last restore test is the
 * oldest (never-tested ones first, newest of those first) to a temporary file, runs the
 * full verification, and records the result on the backup and in the store's log.
 * Resolves undefined when the store has no backup. Never deletes anything.
 */
export async function restoreTestIn(deps: VerifyDeps, catalog: Catalog, formatOf: (r: BackupRecord) => BackupFormat, settings: Settings, o: Opts = {}): Promise<VerifyResult | undefined> {
  const { records } = await catalog.list();
  if (!records.length) return undefined;
  const at = (r: BackupRecord) => (r.state.lastRestoreTest ? Date.parse(r.state.lastRestoreTest.at) : -Infinity);
  const pick = [...records].sort((a, b) => at(a) - at(b) || Date.parse(b.manifest.created) - Date.parse(a.manifest.created))[0];
  // Deep: a repository backup's packs are read in full, so over weeks every pack is read once.
  const { check, problems, report, ok, archiveOk } = await inspectBackup(deps, catalog, formatOf(pick), pick.object, settings, 'full', { ...o, deep: true });
  const when = isoLocal(deps.clock.now());
  // A damaged pack fails every backup that uses it, not only this one: each is marked.
  const packs = check.manifest?.repository?.packs ?? pick.manifest.repository?.packs ?? [];
  const bad = archiveOk || !packs.length ? [] : await damagedPacks(catalog.store, packs, o.signal).catch(() => []);
  if (bad.length) await markDamaged(deps.clock, undefined, catalog, bad);
  const state = await catalog.updateState(pick.id, (s) => {
    s.lastRestoreTest = { at: when, ok, detail: ok ? `restored and verified (${report?.check})` : problems.slice(0, 3).join('; ') };
    if (!archiveOk) s.lastVerify = { ...failedReport(problems, deps.clock), archiveOk: false };
  });
  await catalog.record({
    op: ok ? 'restoreTest.ok' : 'restoreTest.failed',
    level: ok ? 'info' : 'error',
    db: pick.manifest.source.path,
    backup: pick.id,
    message: ok ? `restore test of ${pick.id} passed` : `restore test of ${pick.id} FAILED: ${problems.slice(0, 3).join('; ')}`,
    detail: { problems: problems.slice(0, 20) },
  });
  return { record: { ...pick, manifest: check.manifest ?? pick.manifest, state }, path: pick.path, ok, problems, report };
}

/**
 * The newest restore test among `records` (their state), with the backup it tested and
 * which copy (`from`: the off-site URL; absent: the local folder). Undefined when none ran.
 * Pure; for `lifeboat stats` and the panel.
 */
export function newestRestoreTestOf(records: readonly BackupRecord[]): (RestoreTestState & { id: string }) | undefined {
  let best: (RestoreTestState & { id: string }) | undefined;
  for (const r of records) {
    const t = r.state.lastRestoreTest as RestoreTestState | undefined;
    if (t && (!best || Date.parse(t.at) > Date.parse(best.at))) best = { ...t, id: r.id };
  }
  return best;
}

import { promises as fs } from 'node:fs';
import os from 'node:os';
import type { Catalog } from '../catalog/catalog';
import type { Settings } from '../config';
import type { Clock, ProgressListener } from '../context';
import { BackupError } from '../errors';
import type { BackupFormat, FormatCheck } from '../format/format';
import { removeQuietly } from '../fsutil';
import { onlyProbeFailed, type BackupRecord, type VerifyReport } from '../model';
import { META_FOLDER } from '../store/localDirStore';
import { scratchFile } from '../store/store';
import { isoLocal } from '../time';
import { verifyOptions } from './fromSettings';
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
  const check: FormatCheck = await format.check(catalog.store, object, o);
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

/**
 * The rolling restore test: restores the kept backup whose last restore test is the
 * oldest (never-tested ones first, newest of those first) to a temporary file, runs the
 * full verification, and records the result on the backup and in the log. Resolves
 * undefined when the store has no backup. Never deletes anything.
 */
export async function restoreTest(deps: VerifyDeps, catalog: Catalog, formatOf: (r: BackupRecord) => BackupFormat, settings: Settings, o: Opts = {}): Promise<VerifyResult | undefined> {
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

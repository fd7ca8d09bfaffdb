import { createHash } from 'node:crypto';
import { promises as fs } from 'node:fs';
import path from 'node:path';
import type { Catalog } from '../catalog/catalog';
import { BackupError } from '../errors';
import { repoV2 } from '../format/repoV2';
import { takeLease } from '../format/repo/leases';
import { prune } from '../format/repo/prune';
import { pageHashesOf, readSnapshotManifest, rootOf, sealManifest } from '../format/repo/snapshotManifest';
import { damagedPacks, markDamaged } from '../verify/packDamage';
import { KnownPages, storePages } from '../format/repo/writer';
import { removeQuietly } from '../fsutil';
import { ARCHIVE_FORMAT, IMAGE_ENTRY, isVerified, probeOnlyFailure, REPOSITORY_FORMAT_VERSION, verificationState, type BackupRecord, type Manifest, type RepositoryMap, type SourceStateRecord } from '../model';
import { sameSourceState } from '../schedule/due';
import { snapshotDatabase } from '../snapshot/liveSnapshot';
import { scratchFile, type BackupStore, type StoredObject } from '../store/store';
import { isoLocal } from '../time';
import { verifyOptions } from '../verify/fromSettings';
import { LIFEBOAT_VERSION } from '../version';
import { manifestSource } from './manifestSource';
import { verifyImage } from '../verify/verifier';
import type { BackupDeps, BackupOptions } from './backup';

const DAY_MS = 24 * 3600 * 1000;

/** What a repository backup produced, for runBackup's log and result. */
export interface RepoBackupOutcome {
  manifest: Manifest;
  published: StoredObject;
  /** Bytes this backup added to the store. */
  addedBytes: number;
}

/**
 * One backup of `db` in format v2 (see runBackup for the contract). The parent is the
 * newest readable v2 backup of the same database that no check found damaged: when the
 * database's fingerprint equals the parent's, no snapshot is taken and only a new manifest
 * is written (pointing at the parent's pages); otherwise the snapshot's pages are hashed and only those the parent
 * does not hold are stored. The parent's page hashes come from a local cache when its
 * recomputed root equals the parent's root, else from the packs' indexes (checked the same
 * way); a parent that fails this is not used (the backup stores every page), and an
 * unchanged database whose parent fails it is backed up in full instead of repeated.
 */
export async function runRepoBackup(
  deps: BackupDeps,
  db: string,
  catalog: Catalog,
  o: BackupOptions,
  ctx: { id: string; sourceState: SourceStateRecord; created: Date; started: number },
): Promise<RepoBackupOutcome> {
  const store = catalog.store;
  const { records } = await catalog.list();
  // Not a backup a check found damaged (or of a damaged source): its pages, from the hash
  // cache, would be taken as stored without reading its packs. A later check that failed
  // for any reason but the probe query counts, also one that could not rebuild the image.
  const damaged = (r: BackupRecord) => verificationState(r) === 'failed' || (r.state.lastVerify?.status === 'failed' && !probeOnlyFailure(r));
  const mine = records.filter((r) => r.format === repoV2.label && r.manifest.source.path === db && !damaged(r));
  let parent: BackupRecord | undefined = mine[0];
  if (parent && o.settings.freshBaseDays > 0) {
    const base = mine.find((r) => !r.manifest.repository?.parent);
    if (!base || ctx.created.getTime() - Date.parse(base.manifest.created) >= o.settings.freshBaseDays * DAY_MS) parent = undefined;
  }

  /** Packs found damaged: never pointed at again by this backup. */
  const excluded = new Set<string>();

  // Unchanged since the parent: a new manifest over the same pages, no snapshot.
  if (parent && isVerified(parent) && parent.manifest.source.state && sameSourceState(parent.manifest.source.state, ctx.sourceState)) {
    o.onProgress?.({ phase: 'check', done: 0, total: 0 });
    let damagedParentPacks: string[] = [];
    const done = await catalog.withLock(async () => {
      // Read again under the lock: a repack may have pointed it at other packs meanwhile.
      const p = await reread(store, parent!);
      if (!p) return undefined;
      parent = p;
      // The pages it points at are still there and add up to its root; a parent that fails
      // this is not repeated (the backup below then stores every page).
      const sound = await pageHashesOf(store, p.manifest).then(
        async () => {
          // A manifest-only backup shares the parent's packs as they are: those hashed
          // intact within the last day are not read again (the next changed backup, the
          // restore test and verify --deep read them).
          damagedParentPacks = await damagedPacks(store, p.manifest.repository!.packs, o.signal, { skipCheckedWithinMs: DAY_MS, now: deps.clock.now().getTime() });
          return !damagedParentPacks.length;
        },
        (e: unknown) => {
          if (!(e instanceof BackupError) || e.reason === 'cancelled') throw e;
          deps.logger.warn(`backup ${p.id} cannot be repeated (${e.message}); storing every page`, { db, phase: 'backup' });
          return false;
        },
      );
      if (!sound) return undefined;
      const repository: RepositoryMap = { ...p.manifest.repository!, parent: p.id, unchangedFrom: p.id, added: { packs: [], pages: 0, bytes: 0 } };
      const manifest: Manifest = {
        ...p.manifest,
        id: ctx.id,
        kind: o.kind,
        created: isoLocal(ctx.created),
        source: { ...p.manifest.source, state: { ...ctx.sourceState } },
        durationMs: Date.now() - ctx.started,
        trigger: o.trigger,
        repository,
        seal: undefined,
      };
      return publishManifest(catalog, manifest);
    });
    if (done) return { ...done, addedBytes: 0 };
    // Outside the lock: marking takes it. The parent's sound packs still serve below.
    if (damagedParentPacks.length) {
      await markDamaged(deps.clock, deps.logger, catalog, damagedParentPacks);
      for (const b of damagedParentPacks) excluded.add(b);
    } else parent = undefined;
  }

  // Announce the backup to prune, with the packs it may point at, under the lock, and only
  // with a parent whose manifest is still there.
  const lease = await catalog.withLock(async () => {
    if (parent) parent = await reread(store, parent);
    return takeLease(store, parent?.manifest.repository?.packs ?? []);
  });
  let image: string | undefined;
  let parentReady: Promise<KnownPages | undefined> | undefined;
  try {
    image = scratchFile(await store.scratchDir(), ctx.id, '.image');
    // The parent's pages, read while the snapshot is taken: its packs hashed against their
    // names (a page is reused on its hash alone, so damage in an old pack would otherwise
    // pass into this backup unseen; a damaged pack marks the backups that use it, and this
    // backup stores those pages again), then its page hashes.
    const p = parent;
    parentReady = p ? knownPagesOf(deps, catalog, db, p, excluded, o.signal) : undefined;
    parentReady?.catch(() => undefined);
    o.onProgress?.({ phase: 'snapshot', done: 0, total: 0 });
    const snap = await snapshotDatabase(db, image, { signal: o.signal, clock: deps.clock, onProgress: o.onProgress, fsync: false });
    deps.logger.debug(`snapshot by ${snap.strategy}${snap.fallback ? ` (${snap.fallback})` : ''}`, { db, phase: 'backup', backup: ctx.id });
    let known = await parentReady;
    if (known && p!.manifest.repository!.pageSize !== snap.pageSize) known = undefined;
    const opts = verifyOptions(o.settings, deps.clock, o.signal);
    if (known && o.settings.verifyMode === 'auto' && recentFullCheck(records, db, ctx.created, o.settings.fullCheckDays)) opts.mode = 'quick';
    const verifying = verifyImage(image, opts);
    verifying.catch(() => undefined);

    const hold = (pack: string) =>
      catalog.withLock(async () => {
        if (!(await store.stat(pack))) return false;
        await lease.hold(pack);
        return true;
      });
    const stored = await storePages({ store, image, pageSize: snap.pageSize, known, stem: ctx.id, hold, signal: o.signal, onProgress: o.onProgress });
    deps.logger.debug(`pages hashed: ${stored.map.added.pages} of ${stored.map.pageCount} stored (${stored.map.added.bytes} bytes)`, { db, phase: 'backup', backup: ctx.id });
    o.onProgress?.({ phase: 'verify', done: 0, total: 0 });
    const report = await verifying;
    deps.logger.debug(`image verified: ${report.status} (${report.check})`, { db, phase: 'backup', backup: ctx.id });
    await removeQuietly(image);
    const manifest: Manifest = {
      format: ARCHIVE_FORMAT,
      formatVersion: REPOSITORY_FORMAT_VERSION,
      id: ctx.id,
      kind: o.kind,
      created: isoLocal(ctx.created),
      source: manifestSource(db, snap, ctx.sourceState),
      image: {
        entry: IMAGE_ENTRY,
        size: stored.size,
        sha256: stored.sha256,
        pageSize: snap.pageSize,
        pageCount: stored.map.pageCount,
        sqliteVersionNumber: snap.sqliteVersionNumber,
      },
      verification: report,
      sourceDamaged: report.status === 'failed',
      durationMs: Date.now() - ctx.started,
      trigger: o.trigger,
      lifeboatVersion: LIFEBOAT_VERSION,
      repository: { ...stored.map, parent: known ? parent!.id : undefined },
    };
    const done = await catalog.withLock(() => publishManifest(catalog, manifest));
    await writeHashCache(catalog, db, stored.hashes);
    return { ...done, addedBytes: stored.map.added.bytes };
  } catch (e) {
    await parentReady?.catch(() => undefined);
    if (image) await removeQuietly(image);
    await lease.release();
    // Packs this backup published are used by nothing now: gone at once, not at the next
    // rotation (prune keeps those of other running backups).
    await catalog.withLock(() => prune(store)).catch(() => undefined);
    throw e;
  } finally {
    if (image) await removeQuietly(image);
    await lease.release();
  }
}

/**
 * The pages of `parent` a new backup may point at: every page of its packs that hash to
 * their names (damaged ones are marked, and added to `excluded`), found by the parent's
 * page hashes; undefined when those cannot be had (the backup then stores every page).
 */
async function knownPagesOf(
  deps: BackupDeps,
  catalog: Catalog,
  db: string,
  parent: BackupRecord,
  excluded: Set<string>,
  signal?: AbortSignal,
): Promise<KnownPages | undefined> {
  const r = parent.manifest.repository!;
  const bad = await damagedPacks(catalog.store, r.packs.filter((x) => !excluded.has(x)), signal, { now: deps.clock.now().getTime() });
  if (bad.length) {
    await markDamaged(deps.clock, deps.logger, catalog, bad);
    for (const b of bad) excluded.add(b);
  }
  const hashes = await parentHashes(catalog, db, parent.manifest).catch((e: unknown) => {
    if (BackupError.is(e, 'cancelled')) throw e;
    deps.logger.warn(`backup ${parent.id} cannot be used as the parent (${(e as Error).message}); storing every page`, { db, phase: 'backup' });
    return undefined;
  });
  deps.logger.debug(`parent ${parent.id}: ${hashes ? `page hashes loaded, ${r.packs.length} packs checked, ${bad.length} damaged` : 'not used'}`, { db, phase: 'backup' });
  return hashes ? KnownPages.fromSnapshot(r, hashes, excluded) : undefined;
}

/**
 * Whether a backup of `db` passed integrity_check less than `days` days before `now`
 * (days 0: never, so every backup gets it).
 */
function recentFullCheck(records: BackupRecord[], db: string, now: Date, days: number): boolean {
  if (days <= 0) return false;
  return records.some((r) => {
    if (r.manifest.source.path !== db) return false;
    const checks = [r.manifest.verification, r.state.lastVerify];
    return checks.some((v) => v?.status === 'ok' && v.check === 'integrity_check' && now.getTime() - Date.parse(v.checkedAt) < days * DAY_MS);
  });
}

/** `r` with its manifest read again (a repack may have rewritten it); undefined when it is gone or does not read. */
async function reread(store: BackupStore, r: BackupRecord): Promise<BackupRecord | undefined> {
  const manifest = await readSnapshotManifest(store, r.object).catch(() => undefined);
  return manifest && manifest.id === r.id ? { ...r, manifest } : undefined;
}

/**
 * Publishes a sealed manifest, the object that makes the backup visible, under a name no
 * other backup has, after checking (under the lock the caller holds) that every pack it
 * points at is in the store: prune may never have taken one it needs.
 */
async function publishManifest(catalog: Catalog, m: Manifest): Promise<{ manifest: Manifest; published: StoredObject }> {
  const store = catalog.store;
  for (const pack of m.repository!.packs) {
    if (!(await store.stat(pack))) throw new BackupError('io', `${catalog.locate(pack)}: a pack this backup needs is missing; the backup was not published`);
  }
  const scratch = await store.scratchDir();
  for (let n = 1; ; n++) {
    const object = repoV2.objectFor(m.id, n);
    if (await store.stat(object)) continue;
    const file = scratchFile(scratch, m.id, '.json');
    const sealed = sealManifest(m);
    await fs.writeFile(file, sealed);
    try {
      const published = await store.publishFile(file, object);
      return { manifest: JSON.parse(sealed.toString('utf8')) as Manifest, published };
    } catch (e) {
      await removeQuietly(file);
      if (!BackupError.is(e, 'exists')) throw e;
    }
  }
}

/** The local cache of a database's newest page hashes in this store. */
function cacheObject(db: string): string {
  return `.lifeboat/cache/pages-${createHash('sha256').update(db).digest('hex').slice(0, 16)}.bin`;
}

/**
 * The parent's page hashes: from the cache when their root is the parent's root (a stale
 * or damaged cache is never trusted), else from the indexes of its packs (checked against
 * the root too).
 */
async function parentHashes(catalog: Catalog, db: string, parent: Manifest): Promise<Buffer> {
  const r = parent.repository!;
  const cached = await catalog.store.readBytes(cacheObject(db)).catch(() => undefined);
  if (cached && cached.length === r.pageCount * 32 && rootOf(cached) === r.root) return cached;
  return pageHashesOf(catalog.store, parent);
}

async function writeHashCache(catalog: Catalog, db: string, hashes: Buffer): Promise<void> {
  // A cache: losing it costs reading the packs' indexes next time.
  await catalog.store.writeBytes(cacheObject(db), hashes).catch(() => undefined);
}


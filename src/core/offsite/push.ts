import { createHash } from 'node:crypto';
import type { Catalog } from '../catalog/catalog';
import type { Clock, ProgressListener } from '../context';
import { BackupError } from '../errors';
import { withReadLease } from '../format/repo/leases';
import { isoLocal } from '../time';
import { isVerified, type BackupRecord, type Manifest } from '../model';
import type { RemoteStore } from '../store/remote/remoteStore';

export interface PushOptions {
  /** Only the backups of this database (its path as the manifests record it). */
  db?: string;
  signal?: AbortSignal;
  onProgress?: ProgressListener;
  /** Packs uploaded at once (default: 3 to S3, 1 to SFTP and folders). */
  uploads?: number;
}

export interface PushedBackup {
  id: string;
  object: string;
  /** Objects uploaded for it (packs it shares with backups already there are not sent again). */
  objects: number;
  bytes: number;
}

export interface PushResult {
  url: string;
  encrypted: boolean;
  copied: PushedBackup[];
  /** Verified local backups the remote already had. */
  present: number;
  /** Local backups not copied because they are not verified. */
  unverified: number;
  failed: { id: string; error: string }[];
  bytes: number;
  durationMs: number;
}

export interface PushDeps {
  clock: Clock;
}

/**
 * Copies every verified local backup the remote lacks: for a repository backup the packs
 * it uses that the remote lacks (several at once to S3), then its sealed manifest, last,
 * once all of those are there, so that a backup is visible off-site only when it is whole
 * there; for a zip, the zip. Each copy is checked
 * on the remote (the manifest read back byte for byte, every pack present at its size;
 * S3 uploads are also checked by HEAD for size and SHA-256). A copy that an interruption
 * cut short resumes: what is already there is not sent again. Runs under the remote's
 * lock; reads local packs under a read lease, so a local repack cannot delete them
 * meanwhile. One backup failing does not stop the others; the result lists it.
 */
export async function pushBackups(deps: PushDeps, local: Catalog, remote: RemoteStore, o: PushOptions = {}): Promise<PushResult> {
  const started = Date.now();
  const { records } = await local.list();
  const wanted = records.filter((r) => !o.db || r.manifest.source.path === o.db).reverse(); // oldest first
  const verified = wanted.filter((r) => isVerified(r));
  await remote.open();
  const result: PushResult = { url: remote.url, encrypted: remote.encrypted, copied: [], present: 0, unverified: wanted.length - verified.length, failed: [], bytes: 0, durationMs: 0 };
  await remote.withLock(async () => {
    const there = new Map<string, number>();
    for (const folder of ['', 'snapshots', 'packs']) for (const obj of await remote.list(folder)) there.set(obj.name, obj.size);
    const missing = verified.filter((r) => !there.has(r.object));
    result.present = verified.length - missing.length;
    let done = 0;
    for (const r of missing) {
      if (o.signal?.aborted) throw new BackupError('cancelled', 'cancelled');
      o.onProgress?.({ phase: `copying ${r.id} to ${remote.label}`, done, total: missing.length });
      try {
        const pushed = r.format === 'repository' ? await pushRepositoryBackup(local, remote, r, there, o) : await pushFile(local, remote, r, o);
        result.copied.push(pushed);
        result.bytes += pushed.bytes;
        there.set(r.object, 0);
        await local.updateState(r.id, (s) => {
          s.offsite = { ...s.offsite, [remote.url]: { at: isoLocal(deps.clock.now()) } };
        });
      } catch (e) {
        if (BackupError.is(e, 'cancelled')) throw e;
        // The remote refusing us (credentials, a missing bucket) fails every backup alike: stop.
        if (BackupError.is(e, 'unwritable') || BackupError.is(e, 'badConfig')) throw e;
        result.failed.push({ id: r.id, error: (e as Error).message });
      }
      done++;
    }
    o.onProgress?.({ phase: `copied to ${remote.label}`, done, total: missing.length });
  });
  result.durationMs = Date.now() - started;
  const entry = {
    op: result.failed.length ? ('push.failed' as const) : ('push.ok' as const),
    level: result.failed.length ? ('error' as const) : ('info' as const),
    message: result.failed.length
      ? `copy to ${remote.label}: ${result.failed.length} of ${result.copied.length + result.failed.length} backups failed (${result.failed[0]!.error})`
      : `copied ${result.copied.length} backups (${result.bytes} bytes) to ${remote.label}; ${result.present} were there`,
    detail: { url: remote.url, copied: result.copied.map((c) => c.id), failed: result.failed, bytes: result.bytes, durationMs: result.durationMs },
  };
  await local.record(entry);
  await remote.log.append({ time: isoLocal(deps.clock.now()), ...entry }).catch(() => undefined);
  return result;
}

/**
 * A repository backup: the packs the remote lacks, `o.uploads` at once, then the manifest;
 * then both checked there. When a pack fails, no more are started, those under way finish
 * (they count for the next push), and the backup fails with the first error: its manifest
 * is never sent without all its packs.
 */
async function pushRepositoryBackup(local: Catalog, remote: RemoteStore, r: BackupRecord, there: Map<string, number>, o: PushOptions): Promise<PushedBackup> {
  return withReadLease(local.store, r.object, async (manifest: Manifest) => {
    let objects = 0;
    let bytes = 0;
    const packs = manifest.repository?.packs ?? [];
    const sizes = new Map<string, number>();
    const todo: string[] = [];
    for (const pack of packs) {
      const st = await local.store.stat(pack);
      if (!st) throw new BackupError('notFound', `${local.locate(pack)}: missing; backup ${r.id} cannot be copied`);
      sizes.set(pack, st.size);
      if (there.get(pack) !== st.size && !todo.includes(pack)) todo.push(pack);
    }
    await eachAtOnce(todo, uploadsAt(remote, o), async (pack) => {
      await remote.upload(localFile(local, pack), pack, { signal: o.signal });
      there.set(pack, sizes.get(pack)!);
      objects++;
      bytes += sizes.get(pack)!;
    });
    const file = localFile(local, r.object);
    await remote.upload(file, r.object, { signal: o.signal });
    objects++;
    bytes += (await local.store.stat(r.object))?.size ?? 0;
    // Read back: the manifest byte for byte (its seal comes along), every pack at its size.
    const want = sha(await local.store.readBytes(r.object));
    const got = sha(await remote.readBytes(r.object));
    if (want !== got) throw new BackupError('io', `${remote.url}/${r.object}: differs from the local manifest after the copy`);
    await eachAtOnce([...sizes.keys()], uploadsAt(remote, o), async (pack) => {
      const b = await remote.stat(pack);
      if (!b || b.size !== sizes.get(pack)) throw new BackupError('io', `${remote.url}/${pack}: ${b ? `size ${b.size}, expected ${sizes.get(pack)}` : 'missing'} after the copy`);
    });
    return { id: r.id, object: r.object, objects, bytes };
  });
}

/**
 * Uploads at once to this remote: `o.uploads` when given, else 3 to S3 (each streams its
 * body; measured on a 1 GB push to a server on the same two cores, a fourth made it no
 * faster and added some 15 MB of buffers in flight) and 1 to an SFTP session or a folder.
 */
function uploadsAt(remote: RemoteStore, o: PushOptions): number {
  if (o.uploads !== undefined) return Math.max(1, Math.floor(o.uploads));
  return remote.url.startsWith('s3://') ? 3 : 1;
}

/**
 * Runs `fn` on every item, at most `limit` at once, in order of the list. After the first
 * failure no new item starts; the call waits for those under way, then throws that failure
 * (cancellation before any other).
 */
async function eachAtOnce<T>(items: T[], limit: number, fn: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  const errors: unknown[] = [];
  const worker = async (): Promise<void> => {
    while (next < items.length && errors.length === 0) {
      const item = items[next++]!;
      try {
        await fn(item);
      } catch (e) {
        errors.push(e);
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
  if (errors.length) throw errors.find((e) => BackupError.is(e, 'cancelled')) ?? errors[0];
}

/** A zip backup: the zip, then its size checked there. */
async function pushFile(local: Catalog, remote: RemoteStore, r: BackupRecord, o: PushOptions): Promise<PushedBackup> {
  const st = await local.store.stat(r.object);
  if (!st) throw new BackupError('notFound', `${local.locate(r.object)}: missing`);
  await remote.upload(localFile(local, r.object), r.object, { signal: o.signal });
  const b = await remote.stat(r.object);
  if (b?.size !== st.size) throw new BackupError('io', `${remote.url}/${r.object}: ${b ? `size ${b.size}, expected ${st.size}` : 'missing'} after the copy`);
  return { id: r.id, object: r.object, objects: 1, bytes: st.size };
}

function localFile(local: Catalog, object: string): string {
  const p = local.store.localPath(object);
  if (!p) throw new Error(`internal: off-site copies are made from a local folder store, not ${local.store.url}`);
  return p;
}

function sha(b: Buffer): string {
  return createHash('sha256').update(b).digest('hex');
}

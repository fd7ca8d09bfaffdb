import { randomBytes } from 'node:crypto';
import os from 'node:os';
import { processAlive, processStartId } from '../../processInfo';
import type { Manifest } from '../../model';
import type { BackupStore } from '../../store/store';
import { readSnapshotManifest } from './snapshotManifest';

/** Where running v2 backups announce themselves to prune. */
export const LEASE_FOLDER = '.lifeboat/leases';
/** A lease from another machine is taken as live for this long after it began. */
const FOREIGN_LEASE_MS = 24 * 3600 * 1000;
/** `<pid>.<8 hex>.json`: anything else in the folder (an atomic write's temp file) is not a lease. */
const LEASE_NAME = /^(\d+)\.[0-9a-f]{8}\.json$/;

export interface Lease {
  pid: number;
  /** When the process started (see processStartId), so that a reused pid is not taken for it. */
  startId?: string;
  host: string;
  /** Wall-clock time (ms) the backup began: prune keeps every pack newer than this. */
  startedMs: number;
  /** Packs the backup may point at that no manifest may hold by the time it publishes (its parent's, packs it found already stored). */
  packs: string[];
}

export interface HeldLease {
  lease: Lease;
  /** Adds a pack to the lease. Call under the store's lock, after checking the pack is there. */
  hold(pack: string): Promise<void>;
  /** Removes the lease; never throws. */
  release(): Promise<void>;
}

/**
 * Announces a running backup to prune: written under the store's lock, after the backup
 * chose its parent, so that a prune either sees the parent's manifest or this lease, and
 * keeps the packs the backup is about to point at.
 */
export async function takeLease(store: BackupStore, packs: string[]): Promise<HeldLease> {
  const lease: Lease = { pid: process.pid, startId: processStartId(process.pid), host: os.hostname(), startedMs: Date.now(), packs: [...packs] };
  const name = `${LEASE_FOLDER}/${process.pid}.${randomBytes(4).toString('hex')}.json`;
  await store.writeBytes(name, JSON.stringify(lease));
  return {
    lease,
    hold: async (pack) => {
      if (lease.packs.includes(pack)) return;
      lease.packs.push(pack);
      await store.writeBytes(name, JSON.stringify(lease));
    },
    release: () => store.delete(name).catch(() => undefined),
  };
}

/**
 * The leases of backups still running; the dead ones (their process is gone on this
 * machine, or older than a day elsewhere) are removed. A lease that cannot be read (a
 * torn write) is judged by the pid in its name: live while a process of that pid runs
 * here, so prune errs on keeping packs.
 */
export async function liveLeases(store: BackupStore): Promise<Lease[]> {
  const out: Lease[] = [];
  const host = os.hostname();
  for (const obj of await store.list(LEASE_FOLDER)) {
    const base = obj.name.slice(LEASE_FOLDER.length + 1);
    const named = LEASE_NAME.exec(base);
    if (!named) continue;
    let l: Lease | undefined;
    try {
      l = JSON.parse((await store.readBytes(obj.name)).toString('utf8')) as Lease;
      if (!l || typeof l.pid !== 'number' || typeof l.startedMs !== 'number' || !Array.isArray(l.packs)) l = undefined;
    } catch {
      l = undefined;
    }
    const dead = l
      ? l.host === host
        ? !processAlive(l.pid, l.startId)
        : Date.now() - l.startedMs > FOREIGN_LEASE_MS
      : !processAlive(Number(named[1]));
    if (dead) await store.delete(obj.name).catch(() => undefined);
    else out.push(l ?? { pid: Number(named[1]), host: '?', startedMs: obj.mtimeMs, packs: [] });
  }
  return out;
}

/**
 * Runs `fn` on the snapshot manifest at `object`, read under the store's lock with its
 * packs leased, so that no prune or repack deletes a pack it reads meanwhile (a repack
 * points the manifest at copies and then deletes the old packs). Where the store cannot
 * be locked or leased (a read-only folder, or the lock stays busy), reads it without.
 * BackupError from reading the manifest as readSnapshotManifest.
 */
export async function withReadLease<T>(store: BackupStore, object: string, fn: (m: Manifest) => Promise<T>): Promise<T> {
  let manifest: Manifest | undefined;
  let lease: HeldLease | undefined;
  let readError: unknown;
  try {
    await store.withLock(async () => {
      try {
        manifest = await readSnapshotManifest(store, object);
      } catch (e) {
        readError = e;
        return;
      }
      lease = await takeLease(store, manifest.repository?.packs ?? []);
    });
  } catch {
    // No lock or no lease here: read as it is.
  }
  let unprepare: (() => void) | undefined;
  try {
    if (readError) throw readError;
    const m = manifest ?? (await readSnapshotManifest(store, object));
    // A remote store fetches the packs whole, once, rather than block by block.
    unprepare = await store.prepareRead?.(m.repository?.packs ?? []);
    return await fn(m);
  } finally {
    unprepare?.();
    await lease?.release();
  }
}

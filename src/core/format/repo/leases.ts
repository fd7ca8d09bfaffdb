import { randomBytes } from 'node:crypto';
import os from 'node:os';
import { processAlive } from '../../processInfo';
import type { BackupStore } from '../../store/store';

/** Where running v2 backups announce themselves to prune. */
export const LEASE_FOLDER = '.lifeboat/leases';
/** A lease from another machine is taken as live for this long after it began. */
const FOREIGN_LEASE_MS = 24 * 3600 * 1000;

export interface Lease {
  pid: number;
  host: string;
  /** Wall-clock time (ms) the backup began: prune keeps every pack newer than this. */
  startedMs: number;
  /** Packs the backup may point at that no manifest may hold by the time it publishes (its parent's). */
  packs: string[];
}

/**
 * Announces a running backup to prune: written under the store's lock, after the backup
 * chose its parent, so that a prune either sees the parent's manifest or this lease, and
 * keeps the packs the backup is about to point at. Release removes it (never throws).
 */
export async function takeLease(store: BackupStore, packs: string[]): Promise<{ lease: Lease; release(): Promise<void> }> {
  const lease: Lease = { pid: process.pid, host: os.hostname(), startedMs: Date.now(), packs };
  const name = `${LEASE_FOLDER}/${process.pid}.${randomBytes(4).toString('hex')}.json`;
  await store.writeBytes(name, JSON.stringify(lease));
  return { lease, release: () => store.delete(name).catch(() => undefined) };
}

/**
 * The leases of backups still running; the dead ones (their process is gone on this
 * machine, or older than a day elsewhere) are removed. A lease that cannot be read is
 * taken as live from its file's time, so prune errs on keeping packs.
 */
export async function liveLeases(store: BackupStore): Promise<Lease[]> {
  const out: Lease[] = [];
  const host = os.hostname();
  for (const obj of await store.list(LEASE_FOLDER)) {
    let l: Lease;
    try {
      l = JSON.parse((await store.readBytes(obj.name)).toString('utf8')) as Lease;
      if (!l || typeof l.pid !== 'number' || typeof l.startedMs !== 'number' || !Array.isArray(l.packs)) throw new Error('not a lease');
    } catch {
      out.push({ pid: 0, host: '?', startedMs: obj.mtimeMs, packs: [] });
      continue;
    }
    const dead = l.host === host ? !processAlive(l.pid) : Date.now() - l.startedMs > FOREIGN_LEASE_MS;
    if (dead) await store.delete(obj.name).catch(() => undefined);
    else out.push(l);
  }
  return out;
}

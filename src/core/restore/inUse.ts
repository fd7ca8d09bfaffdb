import { promises as fs, readdirSync, readlinkSync } from 'node:fs';
import path from 'node:path';
import { canonicalPath } from '../fsutil';
import { nodeSqlite, nodeSqliteUnavailableReason } from '../sqlite/nodeSqlite';

/** What makes a database look in use: processes that hold it open, or sidecar evidence. */
export interface InUse {
  inUse: boolean;
  /** For people: "pid 1234 (sqlite3) has app.db open", "app.db-shm exists". */
  evidence: string[];
  /** True when a process was seen holding the files; false when only sidecars suggest it. */
  byProcess: boolean;
}

async function sidecarEvidence(target: string): Promise<string[]> {
  const found: string[] = [];
  for (const side of ['-shm', '-wal']) {
    try {
      if ((await fs.stat(target + side)).size > 0) found.push(`${path.basename(target)}${side} exists`);
    } catch {
      // absent
    }
  }
  return found;
}

/**
 * Tells whether a database looks open by another process. The path is made canonical
 * first (symlinks resolved), because /proc shows real paths. On Linux it reads
 * /proc/<pid>/fd of every process for the database, its -wal, -shm and -journal; when
 * some process's descriptors could not be read (another user's, another namespace),
 * a non-empty -shm or -wal also counts as evidence. Elsewhere the sidecars are the only
 * evidence. The current process is ignored. Never throws.
 */
export async function databaseInUse(dbPath: string): Promise<InUse> {
  const target = await canonicalPath(dbPath);
  const names = new Set([target, `${target}-wal`, `${target}-shm`, `${target}-journal`]);
  const evidence: string[] = [];
  if (process.platform !== 'linux') {
    const side = await sidecarEvidence(target);
    return { inUse: side.length > 0, evidence: side, byProcess: false };
  }
  let unreadable = 0;
  let pids: string[] = [];
  try {
    pids = (await fs.readdir('/proc')).filter((n) => /^\d+$/.test(n) && Number(n) !== process.pid);
  } catch {
    unreadable++;
  }
  // Synchronous reads of /proc, one process at a time with a turn of the event loop in
  // between: about 10x faster than a promise per descriptor (some 2,000 descriptors on
  // a desktop), and no single stretch blocks the loop for more than a fraction of a ms.
  for (let i = 0; i < pids.length; i++) {
    if (i % 16 === 15) await new Promise((r) => setImmediate(r));
    const pid = pids[i];
    let fds: string[];
    try {
      fds = readdirSync(`/proc/${pid}/fd`);
    } catch (e) {
      // A process that just ended is not evidence; one we may not look into might be.
      if ((e as NodeJS.ErrnoException).code !== 'ENOENT') unreadable++;
      continue;
    }
    for (const fd of fds) {
      let link: string;
      try {
        link = readlinkSync(`/proc/${pid}/fd/${fd}`);
      } catch {
        continue;
      }
      if (names.has(link)) {
        const comm = await fs.readFile(`/proc/${pid}/comm`, 'utf8').catch(() => '?');
        evidence.push(`pid ${pid} (${comm.trim()}) has ${path.basename(link)} open`);
        break;
      }
    }
  }
  const byProcess = evidence.length > 0;
  if (!byProcess && unreadable > 0) evidence.push(...(await sidecarEvidence(target)));
  return { inUse: evidence.length > 0, evidence, byProcess };
}

/**
 * Whether this runtime can restore into a database that another process has open: that
 * takes SQLite's backup API (`node:sqlite` with `backup()`, Node >= 22.16), and `force`.
 * `why` says what is missing when it cannot. Never throws.
 */
export function restoreInUseSupport(): { ok: boolean; why: string } {
  const rt = nodeSqlite();
  if (rt?.hasBackup) return { ok: true, why: '' };
  return { ok: false, why: rt ? `node:sqlite in Node ${process.versions.node} has no backup()` : nodeSqliteUnavailableReason() };
}

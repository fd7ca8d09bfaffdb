import { promises as fs } from 'node:fs';
import path from 'node:path';

/** What makes a database look in use: processes that hold it open, or sidecar evidence. */
export interface InUse {
  inUse: boolean;
  /** For people: "pid 1234 (sqlite3) has it open", "a -shm file exists". */
  evidence: string[];
}

/**
 * Tells whether a database looks open by another process. On Linux it reads
 * /proc/<pid>/fd of every process this user can see, for the database, its -wal, -shm
 * and -journal; elsewhere it falls back to sidecar files (a -shm or a hot journal).
 * The current process is ignored. Never throws.
 */
export async function databaseInUse(dbPath: string): Promise<InUse> {
  const target = path.resolve(dbPath);
  const names = new Set([target, `${target}-wal`, `${target}-shm`, `${target}-journal`]);
  const evidence: string[] = [];
  if (process.platform === 'linux') {
    let pids: string[] = [];
    try {
      pids = (await fs.readdir('/proc')).filter((n) => /^\d+$/.test(n) && Number(n) !== process.pid);
    } catch {
      pids = [];
    }
    for (const pid of pids) {
      let fds: string[];
      try {
        fds = await fs.readdir(`/proc/${pid}/fd`);
      } catch {
        continue;
      }
      for (const fd of fds) {
        let link: string;
        try {
          link = await fs.readlink(`/proc/${pid}/fd/${fd}`);
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
    return { inUse: evidence.length > 0, evidence };
  }
  for (const side of ['-shm', '-wal']) {
    try {
      await fs.access(target + side);
      evidence.push(`${path.basename(target)}${side} exists`);
    } catch {
      // absent
    }
  }
  return { inUse: evidence.length > 0, evidence };
}

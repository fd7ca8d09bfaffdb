import { readFileSync } from 'node:fs';

let bootId: string | undefined | null = null;

/**
 * Who a pid is, beyond its number: on Linux the boot id plus the process's start time
 * (field 22 of /proc/<pid>/stat), so that a pid reused after a restart (common in
 * containers, where a restarted tool often gets the same pid) is not mistaken for the
 * process that wrote a lock or a claim. Undefined where /proc is not available.
 */
export function processStartId(pid: number): string | undefined {
  if (process.platform !== 'linux') return undefined;
  try {
    if (bootId === null) {
      try {
        bootId = readFileSync('/proc/sys/kernel/random/boot_id', 'utf8').trim();
      } catch {
        bootId = undefined;
      }
    }
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // The command name (field 2) may hold spaces and parentheses: count from the last ')'.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return `${bootId ?? ''}:${fields[19]}`;
  } catch {
    return undefined;
  }
}

/**
 * True when the process that recorded (`pid`, `startId`) on this host still runs: the pid
 * exists and, when both start ids are known, it is the same process.
 */
export function processAlive(pid: number, startId?: string): boolean {
  try {
    process.kill(pid, 0);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'EPERM') return false;
  }
  if (!startId) return true;
  const now = processStartId(pid);
  return now === undefined || now === startId;
}

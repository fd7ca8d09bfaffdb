import { randomUUID } from 'node:crypto';
import { promises as fs } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { systemClock, type Clock } from '../context';
import { BackupError, fsError } from '../errors';
import { crashPoint } from '../faults';
import { processAlive, processStartId } from '../processInfo';

interface LockInfo {
  pid: number;
  host: string;
  token: string;
  acquired: string;
  /** The holder's start identity: a reused pid does not keep a dead holder's lock. */
  started?: string;
}

export interface LockOptions {
  /** How long to wait for another holder, default 30 s. Then BackupError 'locked'. */
  timeoutMs?: number;
  /** A lock whose holder has not refreshed it for this long is stale, default 120 s. */
  staleMs?: number;
  clock?: Clock;
  signal?: AbortSignal;
}


/**
 * Runs `fn` while holding the backup directory's lock file (`.lifeboat/lock`, created
 * with O_EXCL). Serialises writers across processes: VS Code windows and the CLI.
 * A lock left by a dead process on this host, or not refreshed within `staleMs`, is
 * broken. The lock is refreshed while `fn` runs and released afterwards, also when
 * `fn` throws. Throws BackupError 'locked' after `timeoutMs`.
 */
export async function withLock<T>(lockPath: string, fn: () => Promise<T>, o: LockOptions = {}): Promise<T> {
  const release = await acquireLock(lockPath, o);
  try {
    return await fn();
  } finally {
    await release();
  }
}

/** Takes the lock; resolves to a function that releases it. See `withLock`. */
export async function acquireLock(lockPath: string, o: LockOptions = {}): Promise<() => Promise<void>> {
  const clock = o.clock ?? systemClock;
  const timeoutMs = o.timeoutMs ?? 30_000;
  const staleMs = o.staleMs ?? 120_000;
  const info: LockInfo = { pid: process.pid, host: os.hostname(), token: randomUUID(), acquired: clock.now().toISOString(), started: processStartId(process.pid) };
  const text = JSON.stringify(info);
  try {
    await fs.mkdir(path.dirname(lockPath), { recursive: true });
  } catch (e) {
    throw fsError(e, path.dirname(lockPath), 'creating the backup directory');
  }
  // The lock appears whole or not at all: its content is written and synced under a
  // private name first and then hard-linked into place (link fails with EEXIST while
  // another holder has it). A holder killed between creating the lock and writing it
  // would otherwise leave an empty lock that nobody could prove dead for `staleMs`.
  const draft = `${lockPath}.${process.pid}-${info.token}.draft`;
  try {
    await fs.writeFile(draft, text, { flag: 'wx' });
    const fh = await fs.open(draft, 'r+');
    try {
      crashPoint('fsync', draft);
      await fh.sync();
    } finally {
      await fh.close();
    }
  } catch (e) {
    await fs.rm(draft, { force: true }).catch(() => undefined);
    throw fsError(e, lockPath, 'taking the backup directory lock');
  }
  try {
    await takeLock(lockPath, draft, staleMs, timeoutMs, o.signal);
  } finally {
    crashPoint('unlink', draft);
    await fs.rm(draft, { force: true }).catch(() => undefined);
  }
  await removeDeadDrafts(lockPath);
  const heartbeat = setInterval(() => {
    const now = new Date();
    fs.utimes(lockPath, now, now).catch(() => undefined);
  }, Math.max(1000, staleMs / 4));
  heartbeat.unref();
  return async () => {
    clearInterval(heartbeat);
    try {
      const current = JSON.parse(await fs.readFile(lockPath, 'utf8')) as LockInfo;
      if (current.token === info.token) {
        crashPoint('unlink', lockPath);
        await fs.unlink(lockPath);
      }
    } catch {
      // already gone or broken by another process after we went stale: nothing to release
    }
  };
}

async function takeLock(lockPath: string, draft: string, staleMs: number, timeoutMs: number, signal: AbortSignal | undefined): Promise<void> {
  const start = Date.now();
  let delay = 5;
  for (;;) {
    if (signal?.aborted) throw new BackupError('cancelled', 'cancelled while waiting for the backup directory lock');
    try {
      await fs.link(draft, lockPath);
      return;
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw fsError(e, lockPath, 'taking the backup directory lock');
    }
    await breakIfStale(lockPath, staleMs);
    if (Date.now() - start > timeoutMs) {
      let holder = '';
      try {
        const h = JSON.parse(await fs.readFile(lockPath, 'utf8')) as LockInfo;
        holder = ` (held by pid ${h.pid} on ${h.host} since ${h.acquired})`;
      } catch {
        // unreadable holder info: the message goes without it
      }
      throw new BackupError('locked', `${lockPath}: the backup directory is locked by another Lifeboat${holder}`, { path: lockPath });
    }
    // Real time, not the injected clock: this waits for other processes.
    await new Promise((r) => setTimeout(r, delay + Math.random() * delay));
    delay = Math.min(delay * 2, 250);
  }
}

/** Removes drafts of the lock left by processes of this host that died before removing theirs. */
async function removeDeadDrafts(lockPath: string): Promise<void> {
  const dir = path.dirname(lockPath);
  const prefix = `${path.basename(lockPath)}.`;
  let names: string[];
  try {
    names = await fs.readdir(dir);
  } catch {
    return;
  }
  for (const name of names) {
    const m = name.startsWith(prefix) ? /^(\d+)-[0-9a-f-]+\.draft$/.exec(name.slice(prefix.length)) : null;
    if (!m || Number(m[1]) === process.pid || processAlive(Number(m[1]))) continue;
    crashPoint('unlink', path.join(dir, name));
    await fs.rm(path.join(dir, name), { force: true }).catch(() => undefined);
  }
}

async function breakIfStale(lockPath: string, staleMs: number): Promise<void> {
  let raw: string;
  let mtimeMs: number;
  try {
    raw = await fs.readFile(lockPath, 'utf8');
    mtimeMs = (await fs.stat(lockPath)).mtimeMs;
  } catch {
    return;
  }
  let holder: LockInfo | undefined;
  try {
    holder = JSON.parse(raw) as LockInfo;
  } catch {
    // A holder that died between create and write leaves an empty file: judged by age.
  }
  const dead = holder && holder.host === os.hostname() && !processAlive(holder.pid, holder.started);
  const old = Date.now() - mtimeMs > staleMs;
  if (!dead && !old) return;
  // Move it aside first, so that of two processes breaking the same stale lock only
  // one succeeds, and a fresh lock taken meanwhile by a third is put back untouched.
  const aside = `${lockPath}.stale-${randomUUID()}`;
  try {
    crashPoint('rename', aside);
    await fs.rename(lockPath, aside);
  } catch {
    return;
  }
  const moved = await fs.readFile(aside, 'utf8').catch(() => '');
  if (moved !== raw) {
    await fs.link(aside, lockPath).catch(() => undefined);
  }
  crashPoint('unlink', aside);
  await fs.unlink(aside).catch(() => undefined);
}

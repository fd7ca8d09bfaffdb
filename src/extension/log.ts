import type * as vscode from 'vscode';
import type { LogFields, Logger } from '../core/context';
import type { LogEntry } from '../core/catalog/backupLog';

/**
 * The core's Logger backed by the "Lifeboat" LogOutputChannel; fields follow the message as
 * `key=value`. Never throws: a line the channel refuses (it is closed while the extension
 * host terminates) is dropped.
 */
export function channelLogger(channel: vscode.LogOutputChannel): Logger {
  const fmt = (m: string, f?: LogFields) => {
    if (!f) return m;
    const extra = Object.entries(f)
      .filter(([, v]) => v !== undefined)
      .map(([k, v]) => `${k}=${typeof v === 'string' ? v : JSON.stringify(v)}`);
    return extra.length ? `${m} (${extra.join(' ')})` : m;
  };
  const safe =
    (write: (line: string) => void): Logger['info'] =>
    (m, f) => {
      try {
        write(fmt(m, f));
      } catch {
        // The channel throws once the extension host is terminating (the shutdown backup
        // runs then): a lost log line must not fail the work it describes.
      }
    };
  return {
    debug: safe((l) => channel.debug(l)),
    info: safe((l) => channel.info(l)),
    warn: safe((l) => channel.warn(l)),
    error: safe((l) => channel.error(l)),
  };
}

/**
 * Mirrors each backup directory's backup log (`.lifeboat/log.jsonl`, written by this
 * window, other windows and the CLI) into the output channel: the newest `initial`
 * entries the first time a directory is synced, then every entry newer than the last one
 * shown. Safe to call repeatedly; concurrent syncs of one directory are serialised.
 */
export class LogMirror {
  private readonly seen = new Map<string, string>();
  private readonly running = new Map<string, Promise<void>>();

  constructor(
    private readonly channel: vscode.LogOutputChannel,
    private readonly read: (dir: string) => Promise<LogEntry[]>,
    private readonly initial = 20,
  ) {}

  sync(dir: string): Promise<void> {
    const prev = this.running.get(dir) ?? Promise.resolve();
    const next = prev.then(() => this.syncNow(dir)).catch(() => undefined);
    this.running.set(dir, next);
    return next;
  }

  private async syncNow(dir: string): Promise<void> {
    const entries = await this.read(dir);
    const last = this.seen.get(dir);
    const fresh = last === undefined ? entries.slice(-this.initial) : entries.filter((e) => Date.parse(e.time) > Date.parse(last));
    for (const e of fresh) {
      const line = `[backup log] ${formatEntry(e, Date.now())}`;
      if (e.level === 'error') this.channel.error(line);
      else if (e.level === 'warn') this.channel.warn(line);
      else this.channel.info(line);
    }
    if (entries.length) this.seen.set(dir, entries[entries.length - 1].time);
    else if (last === undefined) this.seen.set(dir, new Date(0).toISOString());
  }
}

/** A backup-log entry as one line: op and message, prefixed with its own time when it is not recent (backfilled entries). */
export function formatEntry(e: LogEntry, nowMs: number): string {
  const old = nowMs - Date.parse(e.time) > 60_000;
  return `${old ? `${e.time}  ` : ''}${e.op}  ${e.message}`;
}

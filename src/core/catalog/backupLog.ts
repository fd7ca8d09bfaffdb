import { promises as fs } from 'node:fs';
import path from 'node:path';
import { crashPoint } from '../faults';

export type LogOp =
  | 'backup.start'
  | 'backup.ok'
  | 'backup.failed'
  | 'backup.unchanged'
  | 'backup.sourceDamaged'
  | 'verify.ok'
  | 'verify.failed'
  | 'verify.probeFailed'
  | 'restore.start'
  | 'restore.ok'
  | 'restore.failed'
  | 'restore.table'
  | 'restoreTest.ok'
  | 'restoreTest.failed'
  | 'rotate.delete'
  | 'rotate.refused'
  | 'prune'
  | 'prune.refused'
  | 'repack'
  | 'repack.skipped'
  | 'export'
  | 'delete'
  | 'pin'
  | 'unpin'
  | 'push.ok'
  | 'push.failed'
  | 'schedule.missed'
  | 'schedule.retry';

/** One line of the backup log. Fixed keys; `detail` carries the rest. */
export interface LogEntry {
  /** ISO 8601 with offset. */
  time: string;
  op: LogOp;
  level: 'info' | 'warn' | 'error';
  /** Database path. */
  db?: string;
  /** Archive id. */
  backup?: string;
  message: string;
  /** Machine-readable extras: size, durationMs, reason, kind... */
  detail?: Record<string, unknown>;
}

export interface BackupLogOptions {
  /** Rotate when the current file exceeds this, default 1 MiB. */
  maxBytes?: number;
  /** Rotated files kept (log.1.jsonl ...), default 3. */
  keep?: number;
}

/**
 * The backup log: one JSON line per operation in `<dir>/.lifeboat/log.jsonl`, apart from
 * any application log, size-capped and rotated. Appends are single `O_APPEND` writes of
 * one line, so concurrent writers from several processes don't interleave within a line.
 */
export class BackupLog {
  private readonly maxBytes: number;
  private readonly keep: number;
  constructor(
    readonly file: string,
    o: BackupLogOptions = {},
  ) {
    this.maxBytes = o.maxBytes ?? 1 << 20;
    this.keep = o.keep ?? 3;
  }

  /** Appends an entry; rotates first when the file is over its cap. Throws on I/O failure. */
  async append(entry: LogEntry): Promise<void> {
    await fs.mkdir(path.dirname(this.file), { recursive: true });
    await this.rotateIfNeeded();
    await fs.appendFile(this.file, JSON.stringify(entry) + '\n');
  }

  private async rotateIfNeeded(): Promise<void> {
    let size = 0;
    try {
      size = (await fs.stat(this.file)).size;
    } catch {
      return;
    }
    if (size < this.maxBytes) return;
    for (let i = this.keep - 1; i >= 1; i--) {
      crashPoint('rename', this.rotated(i + 1));
      await fs.rename(this.rotated(i), this.rotated(i + 1)).catch(() => undefined);
    }
    // Another process may have rotated at the same moment; losing that race is harmless.
    crashPoint('rename', this.rotated(1));
    await fs.rename(this.file, this.rotated(1)).catch(() => undefined);
    crashPoint('unlink', this.rotated(this.keep + 1));
    await fs.unlink(this.rotated(this.keep + 1)).catch(() => undefined);
  }

  private rotated(i: number): string {
    return this.file.replace(/\.jsonl$/, `.${i}.jsonl`);
  }

  /**
   * Reads entries, oldest first, across rotated files; `limit` keeps the newest N.
   * Lines that don't parse (a torn last line after a crash) are skipped.
   */
  async read(limit?: number): Promise<LogEntry[]> {
    const files = [];
    for (let i = this.keep; i >= 1; i--) files.push(this.rotated(i));
    files.push(this.file);
    const out: LogEntry[] = [];
    for (const f of files) {
      let text: string;
      try {
        text = await fs.readFile(f, 'utf8');
      } catch {
        continue;
      }
      for (const line of text.split('\n')) {
        if (!line.trim()) continue;
        try {
          out.push(JSON.parse(line) as LogEntry);
        } catch {
          // skip a torn line
        }
      }
    }
    return limit !== undefined ? out.slice(-limit) : out;
  }
}

/** One log entry for people: `2026-11-26 09:07:12  ok     app-...-manual  backed up app.db (1.2 MB, 0.4 s)`. */
export function formatLogEntry(e: LogEntry): string {
  const t = e.time.replace('T', ' ').replace(/\.\d+/, '').replace(/([+-]\d\d:\d\d|Z)$/, '');
  const tag = e.level === 'error' ? 'FAIL ' : e.level === 'warn' ? 'WARN ' : 'ok   ';
  return `${t}  ${tag} ${e.op.padEnd(18)} ${e.message}`;
}

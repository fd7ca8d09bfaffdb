// What the in-host tests observe of an operation's after-effects, whichever route started
// it: the extension's onDidSettle events (fired once per operation, after the refresh), and
// the text of the "Lifeboat" output channel as VS Code wrote it to its log file.
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import type * as vscode from 'vscode';
import type { Settled } from '../../../src/extension/backupService';
import type { LifeboatApi } from '../../../src/extension/container';

/** Records every Settled the extension fires while it is not disposed. */
export class SettleRecorder implements vscode.Disposable {
  private readonly events: Settled[] = [];
  private readonly sub: vscode.Disposable;

  constructor(a: LifeboatApi) {
    this.sub = a.onDidSettle((e) => this.events.push(e));
  }

  /** A position to read from later (see `since`). */
  mark(): number {
    return this.events.length;
  }

  /** The events fired after `mark` whose fields equal those of `match`. */
  since(mark: number, match: Partial<Settled> = {}): Settled[] {
    return this.events.slice(mark).filter((e) => (Object.keys(match) as (keyof Settled)[]).every((k) => e[k] === match[k]));
  }

  dispose(): void {
    this.sub.dispose();
  }
}

/**
 * The "Lifeboat" output channel's text so far: VS Code writes a log channel to
 * `Lifeboat.log` in the extension's log folder. Empty while the file does not exist yet.
 */
export function channelText(a: LifeboatApi): string {
  const found: string[] = [];
  const walk = (d: string): void => {
    for (const e of readdirSync(d, { withFileTypes: true })) {
      const p = path.join(d, e.name);
      if (e.isDirectory()) walk(p);
      else if (e.name === 'Lifeboat.log') found.push(p);
    }
  };
  // The extension host's log folder: the extension's own folder is one of its children.
  const root = path.dirname(a.logUri.fsPath);
  if (existsSync(root)) walk(root);
  return found
    .sort()
    .map((f) => readFileSync(f, 'utf8'))
    .join('\n');
}

/** How many lines of `text` contain `needle`. */
export function linesWith(text: string, needle: string): number {
  return text.split('\n').filter((l) => l.includes(needle)).length;
}

/** Polls `fn` until it returns a truthy value; fails with `what` after `ms` (a deadline, not a speed check). */
export async function until<T>(what: string, fn: () => T | Promise<T>, ms = 20_000): Promise<NonNullable<T>> {
  const end = Date.now() + ms;
  let last: unknown;
  for (;;) {
    try {
      const v = await fn();
      if (v) return v as NonNullable<T>;
    } catch (e) {
      last = e;
    }
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}${last ? `: ${(last as Error).message}` : ''}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

/**
 * Waits until the channel has the service's line about backup `id` ("backed up <db> as
 * <id> (...)") and returns the channel's text then. The backup log's own lines of the
 * backup are mirrored before that line, so both are in the text returned.
 */
export function backupLogged(a: LifeboatApi, id: string): Promise<string> {
  return until(`the log line of ${id}`, () => {
    const t = channelText(a);
    return linesWith(t, ` as ${id} (`) > 0 ? t : undefined;
  });
}

/**
 * Cross-process slot claims: several VS Code windows on one workspace and `lifeboat
 * schedule` may all decide at the same moment that the same slot is due. Under the
 * backup directory's lock, a process checks that the slot is still due and that no live
 * claim exists, writes its claim to `.lifeboat/claims.json`, and releases the lock; it
 * then runs the backup without the lock and clears its claim afterwards. So exactly one
 * process backs up each slot, and the lock is never held for the length of a backup.
 *
 * The file also keeps each key's latest `SlotMark` (a slot settled without a verified
 * automatic backup, such as "unchanged"), so other processes don't redo that check.
 */
import { randomUUID } from 'node:crypto';
import os from 'node:os';
import type { Catalog } from '../catalog/catalog';
import { systemClock, type Clock } from '../context';
import { processAlive, processStartId } from '../processInfo';
import type { SlotMark } from './due';

/** One process's claim on one key's slot. */
export interface Claim {
  /** What is claimed: a database path, or `restoreTest`. */
  key: string;
  /** ISO time of the slot. */
  slot: string;
  pid: number;
  host: string;
  /** ISO time the claim was made (the claiming process's clock). */
  at: string;
  /** Tells this claim from a later one of the same process. */
  token: string;
  /** The holder's start identity (see processStartId), so a reused pid does not keep the claim alive. */
  started?: string;
}

export interface ClaimsFile {
  version: 1;
  claims: Record<string, Claim>;
  marks: Record<string, SlotMark>;
}

export interface SlotClaimsOptions {
  clock?: Clock;
  /** A claim older than this is void (its holder hung or sits on another host), default 12 h. */
  staleMs?: number;
  /** Identity written into claims; tests override it. */
  pid?: number;
  host?: string;
}

/** What `claim` found. */
export type ClaimResult<T> =
  | { status: 'claimed'; claim: Claim; decision: T }
  | { status: 'notDue'; decision: T }
  | { status: 'busy'; holder: Claim };

/** The part of a Catalog claims need. */
/** The claims' object in the store. */
const CLAIMS = '.lifeboat/claims.json';

export type ClaimsCatalog = Pick<Catalog, 'withLock' | 'store'>;


const empty = (): ClaimsFile => ({ version: 1, claims: {}, marks: {} });

/** Slot claims in one backup directory. Safe to use from several processes at once. */
export class SlotClaims {
  readonly file: string;
  private readonly clock: Clock;
  private readonly staleMs: number;
  private readonly pid: number;
  private readonly host: string;

  constructor(
    private readonly catalog: ClaimsCatalog,
    o: SlotClaimsOptions = {},
  ) {
    this.file = CLAIMS;
    this.clock = o.clock ?? systemClock;
    this.staleMs = o.staleMs ?? 12 * 3600_000;
    this.pid = o.pid ?? process.pid;
    this.host = o.host ?? os.hostname();
  }

  /** Reads the file without the lock. A missing or unreadable file reads as empty. Never throws. */
  async read(): Promise<ClaimsFile> {
    try {
      const f = JSON.parse((await this.catalog.store.readBytes(this.file)).toString('utf8')) as ClaimsFile;
      if (f && f.version === 1 && typeof f.claims === 'object' && typeof f.marks === 'object' && f.claims && f.marks) return f;
    } catch {
      // missing, or torn by a crash between write and rename: claims are only advisory
    }
    return empty();
  }

  /**
   * True while `c` binds other processes: its holder is alive (checked by pid and start
   * identity on this host; another host's claim is trusted) and the claim is younger than
   * `staleMs`.
   */
  isLive(c: Claim): boolean {
    const age = this.clock.now().getTime() - Date.parse(c.at);
    if (!(age < this.staleMs)) return false;
    if (c.host === this.host && !processAlive(c.pid, c.started)) return false;
    return true;
  }

  /**
   * Under the directory's lock: when another live claim holds `key`, returns 'busy';
   * else runs `decide(file)` and, when it says due, writes this process's claim on
   * `key`/`slot` and returns 'claimed'; when not due, returns 'notDue' and writes
   * nothing. The caller must `release` a claim it got, also when its backup fails.
   * Throws BackupError when the lock can't be taken or the file can't be written
   * (the directory is unwritable: that is the backup's failure too).
   */
  async claim<T extends { due: boolean }>(key: string, slot: Date, decide: (file: ClaimsFile) => Promise<T> | T): Promise<ClaimResult<T>> {
    return this.catalog.withLock(async () => {
      const f = await this.read();
      const held = f.claims[key];
      if (held && this.isLive(held)) return { status: 'busy', holder: held };
      const decision = await decide(f);
      if (!decision.due) return { status: 'notDue', decision };
      const claim: Claim = {
        key,
        slot: slot.toISOString(),
        pid: this.pid,
        host: this.host,
        at: this.clock.now().toISOString(),
        token: randomUUID(),
        started: processStartId(this.pid),
      };
      f.claims[key] = claim;
      await this.write(f);
      return { status: 'claimed', claim, decision };
    });
  }

  /**
   * Under the lock: removes `claim` (only if it is still this one: a claim judged void
   * and replaced by another process stays) and, when given, records `mark` as the key's
   * latest mark. Throws BackupError when the lock or the file fails; safe to repeat.
   */
  async release(claim: Claim, mark?: SlotMark): Promise<void> {
    await this.catalog.withLock(async () => {
      const f = await this.read();
      let changed = false;
      if (f.claims[claim.key]?.token === claim.token) {
        delete f.claims[claim.key];
        changed = true;
      }
      if (mark) {
        f.marks[claim.key] = mark;
        changed = true;
      }
      if (changed) await this.write(f);
    });
  }

  /** Replaces the file atomically (readers see the old or the new content). */
  private async write(f: ClaimsFile): Promise<void> {
    await this.catalog.store.writeBytes(this.file, JSON.stringify(f, null, 1));
  }
}

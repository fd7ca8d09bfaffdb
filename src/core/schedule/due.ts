/**
 * The due-check: pure decisions about whether a database needs its automatic backup for
 * the current slot. Nothing here touches the disk or reads the clock.
 *
 * "Automatic" means the kinds the scheduler and the shutdown hook make: `scheduled` and
 * `shutdown`. A verified shutdown backup taken after the slot satisfies it (the database
 * was backed up after the slot, which is all the slot asks for); manual, migration and
 * pre-restore backups do not, because people pin, move and delete those at will.
 */
import type { BackupKind, BackupRecord, SourceStateRecord } from '../model';
import { isVerified } from '../model';
import { latestSlotAtOrBefore, slotsBetween, type Schedule } from './slots';

export const AUTOMATIC_KINDS: readonly BackupKind[] = ['scheduled', 'shutdown'];

/** How many missed slots a decision names at most (the first ones and the latest). */
export const MISSED_NAMED_MAX = 20;
/** Missed slots are counted up to this many (a long gap under an hourly cron). */
export const MISSED_COUNTED_MAX = 1000;

/** True for the kinds that satisfy a slot (see the file comment). */
export function isAutomatic(r: BackupRecord): boolean {
  return AUTOMATIC_KINDS.includes(r.manifest.kind);
}

/** When a backup was made, in ms since the epoch (from its manifest). */
export function createdMs(r: BackupRecord): number {
  return Date.parse(r.manifest.created);
}

/** The newest record of `records` that passes `pick`, or undefined. */
function newest(records: readonly BackupRecord[], pick: (r: BackupRecord) => boolean): BackupRecord | undefined {
  let best: BackupRecord | undefined;
  for (const r of records) if (pick(r) && (!best || createdMs(r) > createdMs(best))) best = r;
  return best;
}

/** The newest verified backup of any kind, or undefined. */
export function newestVerified(records: readonly BackupRecord[]): BackupRecord | undefined {
  return newest(records, isVerified);
}

/** The newest verified automatic backup made at or after `slot`, or undefined. */
export function verifiedAutomaticSince(records: readonly BackupRecord[], slot: Date): BackupRecord | undefined {
  return newest(records, (r) => isAutomatic(r) && isVerified(r) && createdMs(r) >= slot.getTime());
}

/**
 * True when two fingerprints of a database describe the same content: size, mtime,
 * change counter and the WAL's size, mtime, salts and last commit frame all equal.
 */
export function sameSourceState(a: SourceStateRecord, b: SourceStateRecord): boolean {
  return (
    a.size === b.size &&
    a.mtimeMs === b.mtimeMs &&
    a.changeCounter === b.changeCounter &&
    a.walSize === b.walSize &&
    a.walMtimeMs === b.walMtimeMs &&
    a.walSalt1 === b.walSalt1 &&
    a.walSalt2 === b.walSalt2 &&
    a.walMxFrame === b.walMxFrame
  );
}

/**
 * The newest verified backup when the database's `current` fingerprint equals the one
 * recorded in it (the database is unchanged since that backup), else undefined. A backup
 * made before fingerprints were recorded never matches.
 */
export function unchangedSince(current: SourceStateRecord, records: readonly BackupRecord[]): BackupRecord | undefined {
  const last = newestVerified(records);
  const recorded = last?.manifest.source.state;
  return last && recorded && sameSourceState(current, recorded) ? last : undefined;
}

/**
 * A slot that was settled without a verified automatic backup: the database was
 * unchanged, or the backup was written but could not be verified (too large) or showed
 * the source damaged. Retrying would not change those, so they satisfy the slot.
 */
export interface SlotMark {
  /** ISO time of the check that settled it. */
  at: string;
  outcome: 'unchanged' | 'unverified' | 'sourceDamaged';
  /** The backup it refers to (the unchanged one's base, or the unverified one). */
  backup?: string;
}

export type DueDecision =
  | { due: false; why: 'noSlot' }
  | { due: false; why: 'backedUp'; slot: Date; backup: BackupRecord }
  | { due: false; why: 'marked'; slot: Date; mark: SlotMark }
  | {
      due: true;
      slot: Date;
      /** True when the check runs later than `lateAfterMs` after the slot. */
      catchUp: boolean;
      /** For a catch-up: the slots that passed without their backup, oldest first, at most MISSED_NAMED_MAX. */
      missed: Date[];
      /** How many slots were missed in all, counted up to MISSED_COUNTED_MAX. */
      missedCount: number;
    };

export interface DueInput {
  schedule: Schedule;
  now: Date;
  /** The database's backups in its backup directory (any kinds). */
  records: readonly BackupRecord[];
  /** The latest mark of the database, if any. */
  mark?: SlotMark;
  /** A check this long after its slot counts as a catch-up, default 60 s. */
  lateAfterMs?: number;
}

/**
 * Decides whether the automatic backup of one database is due at `now`: due when no
 * verified automatic backup exists since the latest slot at or before `now` and no mark
 * made since that slot settled it. Pure; safe to repeat.
 */
export function decideDue(input: DueInput): DueDecision {
  const { schedule, now, records, mark } = input;
  const slot = latestSlotAtOrBefore(schedule, now);
  if (!slot) return { due: false, why: 'noSlot' };
  const done = verifiedAutomaticSince(records, slot);
  if (done) return { due: false, why: 'backedUp', slot, backup: done };
  if (mark && Date.parse(mark.at) >= slot.getTime()) return { due: false, why: 'marked', slot, mark };
  const catchUp = now.getTime() - slot.getTime() > (input.lateAfterMs ?? 60_000);
  if (!catchUp) return { due: true, slot, catchUp, missed: [], missedCount: 0 };
  // Missed: every slot since the last time this database was served automatically.
  const lastAuto = newest(records, isAutomatic);
  const since = Math.max(lastAuto ? createdMs(lastAuto) : -Infinity, mark ? Date.parse(mark.at) : -Infinity);
  if (!Number.isFinite(since)) return { due: true, slot, catchUp, missed: [slot], missedCount: 1 };
  const seen = slotsBetween(schedule, new Date(since), now, MISSED_COUNTED_MAX);
  const missed = seen.length ? seen : [slot];
  const named = missed.length > MISSED_NAMED_MAX ? [...missed.slice(0, MISSED_NAMED_MAX - 1), slot] : missed;
  return { due: true, slot, catchUp, missed: named, missedCount: missed.length };
}

/** Data shapes shared across the engine and both front ends. Plain JSON, no behaviour. */

export const BACKUP_KINDS = ['scheduled', 'manual', 'migration', 'shutdown', 'pre-restore'] as const;
export type BackupKind = (typeof BACKUP_KINDS)[number];

/** Display tiers, in the order the tree shows them. */
export const TIERS = ['daily', 'weekly', 'monthly', 'manual', 'migrations'] as const;
export type Tier = (typeof TIERS)[number];

/** What verifying an SQLite image found. Produced by the sql.js worker (src/core/verify). */
export interface VerifyReport {
  /**
   * ok: every check ran and passed. failed: damage found. skipped: not checked
   * (too large for the in-memory verifier); skipped is never treated as ok.
   */
  status: 'ok' | 'failed' | 'skipped';
  /** The structural check that ran. */
  check: 'integrity_check' | 'quick_check' | 'none';
  /** The engine that produced this result, e.g. { name: 'sql.js', sqliteVersion: '3.49.1' }. */
  engine: { name: string; sqliteVersion: string };
  /** Problems found (integrity_check lines, header errors, mismatches), capped. */
  problems: string[];
  /** Rows reported by PRAGMA foreign_key_check (reported, not a failure). */
  foreignKeyViolations: number;
  /** sha256 over the normalised schema (type, name, tbl_name, sql of sqlite_schema). */
  schemaFingerprint: string;
  /** Row count per ordinary table (virtual tables excluded). */
  rowCounts: Record<string, number>;
  /** Virtual tables the verifying engine cannot check (e.g. fts5, rtree), named with their module. */
  notChecked: string[];
  /** The user's probe query, when configured. */
  probe?: { sql: string; ok: boolean; rows?: number; error?: string };
  /** Why it was skipped, when status is 'skipped'. */
  skippedReason?: string;
  durationMs: number;
  /** ISO 8601 with offset. */
  checkedAt: string;
}

/** The archive format's identity. Readers refuse versions they don't know. */
export const ARCHIVE_FORMAT = 'lifeboat-archive';
export const ARCHIVE_FORMAT_VERSION = 1;
/** The image's entry name inside the zip. */
export const IMAGE_ENTRY = 'database.sqlite';
export const MANIFEST_ENTRY = 'manifest.json';

/** A cheap fingerprint of a live database: size, mtime, change counter, WAL state. */
export interface SourceStateRecord {
  size: number;
  mtimeMs: number;
  changeCounter: number;
  walSize: number;
  walMtimeMs: number;
  walSalt1?: number;
  walSalt2?: number;
  walMxFrame?: number;
}

/** manifest.json: everything known about a backup when it was made. Immutable once written. */
export interface Manifest {
  format: typeof ARCHIVE_FORMAT;
  formatVersion: number;
  /** The archive's base name without `.zip`; unique in its directory. */
  id: string;
  kind: BackupKind;
  /** ISO 8601 with the local UTC offset of the machine that made it, e.g. 2026-11-26T09:07:12.345+01:00. */
  created: string;
  source: {
    /** Absolute path of the database when the backup was made. */
    path: string;
    /** Base name, e.g. app.db. */
    name: string;
    size: number;
    mtimeMs: number;
    journalMode: 'wal' | 'rollback';
    /** File change counter (header offset 24) of the main file. */
    changeCounter: number;
    /** WAL frames folded into the image. */
    walFrames: number;
    /**
     * The source's state read just before the snapshot (see `readSourceState`): a later
     * state equal to it means the database is unchanged since this backup.
     */
    state?: SourceStateRecord;
  };
  image: {
    entry: string;
    size: number;
    sha256: string;
    pageSize: number;
    pageCount: number;
    /** SQLITE_VERSION_NUMBER stored in the header (offset 96): the library that last wrote the file, e.g. 3040001. */
    sqliteVersionNumber: number;
  };
  /** The verification of the image made at backup time. */
  verification: VerifyReport;
  /** True when the live source itself failed verification: the user is told loudly. */
  sourceDamaged: boolean;
  durationMs: number;
  /** The trigger, free text for people ("daily 02:00", "task: prisma migrate", "cli"). */
  trigger?: string;
  lifeboatVersion: string;
}

/** Mutable state kept about a backup in the catalog (not in the archive). */
export interface BackupState {
  pinned?: boolean;
  /** The latest on-demand verification, when one ran after the backup. */
  lastVerify?: VerifyReport & { archiveOk: boolean };
  /** The latest restore test. */
  lastRestoreTest?: { at: string; ok: boolean; detail?: string };
}

/** One backup as listed: its manifest, where it is, and the catalog's state for it. */
export interface BackupRecord {
  id: string;
  /** Absolute path of the .zip. */
  path: string;
  /** Size of the .zip in bytes. */
  archiveSize: number;
  manifest: Manifest;
  state: BackupState;
}

/**
 * A verified backup counts toward retention; a failed, unverified or source-damaged one
 * does not. A backup verified when it was made stays verified unless a later check proved
 * the archive itself damaged (CRC, sha256 or seal): a later probe query that fails (the
 * schema moved on), a size limit lowered, or a verifier that could not run say nothing
 * about the archive, and must never make rotation delete a good backup.
 */
export function isVerified(r: BackupRecord): boolean {
  if (r.manifest.sourceDamaged) return false;
  if (r.state.lastVerify && r.state.lastVerify.archiveOk === false) return false;
  return r.manifest.verification.status === 'ok';
}

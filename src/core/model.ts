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
   * (too large for the in-memory verifier, sql.js; node:sqlite never skips); skipped is
   * never treated as ok.
   */
  status: 'ok' | 'failed' | 'skipped';
  /** The structural check that ran. */
  check: 'integrity_check' | 'quick_check' | 'none';
  /**
   * The engine that produced this result: { name: 'node:sqlite', sqliteVersion: '3.53.4' }
   * (the runtime's own SQLite, where it loads) or { name: 'sql.js', ... } (the fallback).
   * What an engine can check differs (sql.js has no FTS5 or R-Tree), so a verdict is only
   * comparable with the same engine's.
   */
  engine: { name: string; sqliteVersion: string };
  /** Problems found (integrity_check lines, header errors, mismatches), capped. */
  problems: string[];
  /** Rows reported by PRAGMA foreign_key_check (reported, not a failure). */
  foreignKeyViolations: number;
  /** sha256 over the normalised schema (type, name, tbl_name, sql of sqlite_schema). */
  schemaFingerprint: string;
  /** Row count per ordinary table (virtual tables excluded). */
  rowCounts: Record<string, number>;
  /**
   * What the verifying engine could not check, never counted as ok: virtual tables as
   * "name (module)" (fts5 and rtree under sql.js), foreign keys it could not check.
   */
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
/** Format version 2: a snapshot manifest in a content-addressed page repository. */
export const REPOSITORY_FORMAT_VERSION = 2;
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
    /**
     * How the snapshot was taken: by SQLite itself under its read lock (`node:sqlite`'s
     * `backup()`, or `VACUUM INTO` where the runtime has no `backup()`), or by Lifeboat's
     * lock-free reader. Absent in manifests written before Lifeboat recorded it.
     */
    snapshot?: {
      strategy: 'node:sqlite backup' | 'node:sqlite vacuum' | 'reader';
      /** sqlite_version() of the SQLite that made the image; absent for the reader. */
      sqliteVersion?: string;
      /** Why the reader ran where SQLite might have, e.g. a WAL database without -wal/-shm. */
      fallback?: string;
    };
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
  /** Format v2 only: where the image's pages are stored in the repository. */
  repository?: RepositoryMap;
  /** Format v2 only: SHA-256 of the manifest's JSON without this field (the zip carries its own seal). */
  seal?: string;
}

/**
 * Format v2: the page map of one snapshot. Page i (1-based) of the image is entry
 * `extents`-given of pack `packs[k]`; see src/core/format/repo/pageMap.ts.
 */
export interface RepositoryMap {
  pageSize: number;
  pageCount: number;
  /** SHA-256 over the SHA-256 of every page, in page order. */
  root: string;
  /** Object names of the packs the map points into (`packs/<sha256>.pack`). */
  packs: string[];
  /** [firstPage, count, pack index, first entry] runs. */
  extents: [number, number, number, number][];
  /** The backup whose pages this one was compared with, when there was one. */
  parent?: string;
  /** The backup this one repeats because the database had not changed (no snapshot taken). */
  unchangedFrom?: string;
  /** What this backup stored: its new packs, pages and bytes (0 when everything was there). */
  added: { packs: string[]; pages: number; bytes: number };
}

/** Mutable state kept about a backup in the catalog (not in the archive). */
export interface BackupState {
  pinned?: boolean;
  /** The latest on-demand verification, when one ran after the backup. */
  lastVerify?: VerifyReport & { archiveOk: boolean };
  /** The latest restore test of this backup; `from`: the off-site URL it was fetched from (else the local copy). */
  lastRestoreTest?: { at: string; ok: boolean; detail?: string; from?: string };
  /** Off-site copies, by remote URL: when the copy was made and checked there. */
  offsite?: Record<string, { at: string }>;
}

/** One backup as listed: its manifest, where it is, and the catalog's state for it. */
export interface BackupRecord {
  /** Unique in its store; with `store`, the backup's identity. */
  id: string;
  /** The URL of the store that holds it (`file:///...` for a folder). */
  store: string;
  /** The store object that makes it visible (v1: `<id>.zip`; v2: `snapshots/<id>.json`). */
  object: string;
  /** Its format's short name: 'zip' (v1), 'repository' (v2). */
  format: string;
  /** Where that object is, for people and scripts: a local path for a folder store, a URL otherwise. */
  path: string;
  /**
   * Bytes this backup put in its store: v1 the whole zip; v2 its manifest plus the packs
   * it added (pages it shares with older backups are counted where they were first stored).
   */
  archiveSize: number;
  manifest: Manifest;
  state: BackupState;
}

/** How a backup's verification stands: the one definition rotation, the tree, the panel and the CLI share. */
export type VerificationState = 'verified' | 'failed' | 'unverified';

/**
 * True when the latest re-verification failed only because of the probe query (the
 * user's query no longer runs on this image: the schema moved on, or the query changed).
 * Such a backup stays verified; front ends show this as a warning beside it.
 */
export function probeOnlyFailure(r: BackupRecord): boolean {
  const v = r.state.lastVerify;
  if (!v || v.archiveOk === false || v.status !== 'failed' || v.probe?.ok === true) return false;
  return onlyProbeFailed(v.problems);
}

/** True when a verification's problem lines are all the probe query's (non-empty). Pure. */
export function onlyProbeFailed(problems: string[]): boolean {
  // The verifier reports the probe as "probe query failed: <error>"; any other line is damage.
  return problems.length > 0 && problems.every((p) => /^probe\b/.test(p));
}

/**
 * A backup's verification state, newest evidence first:
 * - failed: the live source was damaged when it was made, a later check found the archive
 *   itself damaged (CRC, sha256 or seal), or a verification found the image damaged
 *   (integrity, schema or row counts; for a later one, any problem besides the probe query);
 * - verified: a full verification of these exact bytes passed (at creation, or in a later
 *   re-verification) and nothing above applies; a later probe-query failure, a lowered
 *   size limit or a verifier that could not run say nothing about the archive and leave it
 *   verified (see `probeOnlyFailure` for the warning);
 * - unverified: never fully verified (too large for the in-memory verifier).
 * Pure.
 */
export function verificationState(r: BackupRecord): VerificationState {
  if (r.manifest.sourceDamaged) return 'failed';
  const later = r.state.lastVerify;
  if (later && later.archiveOk === false) return 'failed';
  // check 'none': the verifier itself could not run (archiveOk is true), which proves nothing.
  if (later && later.status === 'failed' && later.check !== 'none' && !probeOnlyFailure(r)) return 'failed';
  if (r.manifest.verification.status === 'failed') return 'failed';
  if (r.manifest.verification.status === 'ok' || later?.status === 'ok' || probeOnlyFailure(r)) return 'verified';
  return 'unverified';
}

/**
 * A verified backup counts toward retention; a failed, unverified or source-damaged one
 * does not (see `verificationState`). A backup verified when it was made stays verified
 * unless a later check proved the archive or its image damaged: a later probe query that
 * fails (the schema moved on), a size limit lowered, or a verifier that could not run say
 * nothing about the archive, and must never make rotation delete a good backup.
 */
export function isVerified(r: BackupRecord): boolean {
  return verificationState(r) === 'verified';
}

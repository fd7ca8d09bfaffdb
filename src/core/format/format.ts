import type { ProgressListener } from '../context';
import type { Manifest } from '../model';
import type { BackupStore, StoredObject } from '../store/store';

/** What an archive-level check of a stored backup found (before SQLite looks at the image). */
export interface FormatCheck {
  /** The manifest, when it could be read. */
  manifest?: Manifest;
  ok: boolean;
  /** One line each, naming the backup's object. */
  problems: string[];
}

/**
 * What a backup is in a store: which objects make one visible, how its manifest, its
 * image and its integrity are read, and which objects deleting it removes. Formats are
 * told apart by the format and version their manifest declares (readers refuse versions
 * they do not know), so backups of every format ever written stay readable.
 */
export interface BackupFormat {
  /** The manifest's `format` value this reader understands. */
  readonly format: string;
  /** The manifest versions it reads. */
  readonly versions: readonly number[];
  /** Short name for people and `list --json`: 'zip' (v1), 'repository' (v2). */
  readonly label: string;
  /** The store folder its visible objects are listed from ('' for the top level). */
  readonly folder: string;

  /** The objects of a listing that each make one backup visible (v1: top-level `*.zip`). */
  visibleObjects(objects: StoredObject[]): StoredObject[];
  /** The backup id an object makes visible. */
  idOf(object: string): string;
  /** The object name a new backup with `id` gets (`n` > 1: a second backup with the same id). */
  objectFor(id: string, n?: number): string;

  /** The manifest, cheaply (no image decode). Throws BackupError 'badArchive', 'unsupportedFormat', 'notFound'... */
  readManifest(store: BackupStore, object: string): Promise<Manifest>;
  /** Every byte checked: structure, checksums, the seal. Damage in `problems`; only cancellation throws. */
  check(store: BackupStore, object: string, o?: { signal?: AbortSignal; onProgress?: ProgressListener; deep?: boolean }): Promise<FormatCheck>;
  /** Writes the image to a local file (replaced if present), fsynced and checked against the manifest. */
  extractImage(
    store: BackupStore,
    object: string,
    outPath: string,
    o?: { signal?: AbortSignal; onProgress?: ProgressListener },
  ): Promise<{ manifest: Manifest; sha256: string; size: number }>;
  /** Deletes the backup's objects from the store, the one that makes it visible first. */
  remove(store: BackupStore, object: string): Promise<void>;
}

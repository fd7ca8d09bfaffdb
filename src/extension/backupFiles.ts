/**
 * What the extension reads off a backup's path, for either format: the folder it is in
 * (the backup directory), its id, a name for messages, and which file a "Save Backup As"
 * writes. Pure; no `vscode` import (tested under plain Node). Which format a backup is,
 * is the engine's business: this only names things for people and for refreshing.
 */
import * as path from 'node:path';
import type { BackupRecord } from '../core/model';

/**
 * Core's SNAPSHOT_FOLDER (src/core/format/repo/snapshotManifest.ts), repeated so that the
 * tree does not load the repository's readers at activation (see coreLoader.ts).
 */
const SNAPSHOT_FOLDER = 'snapshots';

/** True when `p` is a repository snapshot manifest (`<dir>/snapshots/<id>.json`). */
export function isSnapshotPath(p: string): boolean {
  return path.basename(path.dirname(p)) === SNAPSHOT_FOLDER && p.toLowerCase().endsWith('.json');
}

/** The backup directory that holds the backup at `p`: a zip's folder, or the repository of a snapshot manifest. */
export function backupDirOf(p: string): string {
  const parent = path.dirname(p);
  return isSnapshotPath(p) ? path.dirname(parent) : parent;
}

/** The backup's id from its path: the file name without `.zip` or `.json`. */
export function backupIdOf(p: string): string {
  const base = path.basename(p);
  return base.replace(/\.(zip|json)$/i, '');
}

/** How messages name a backup: a zip by its file name, a repository backup by its id. */
export function backupName(p: string): string {
  return isSnapshotPath(p) ? backupIdOf(p) : path.basename(p);
}

/** What the tooltip calls a backup's format. */
export function formatLabel(r: Pick<BackupRecord, 'format'>): string {
  return r.format === 'repository' ? 'repository snapshot' : r.format === 'zip' ? 'zip archive' : `${r.format} backup`;
}

/** The file filters of the "Save Backup As" dialog; the first one is the default. */
export const SAVE_AS_FILTERS: Record<string, string[]> = {
  'SQLite database': ['sqlite', 'db', 'sqlite3'],
  'Zip archive': ['zip'],
};

/**
 * The file name "Save Backup As" proposes: the backup's id with its database's extension
 * (app-20261127T193443128Z-manual.db), so a copy never takes the database's own name.
 */
export function saveAsName(r: Pick<BackupRecord, 'id' | 'manifest'>): string {
  return `${r.id}${path.extname(r.manifest.source.name) || '.sqlite'}`;
}

import path from 'node:path';
import type { Manifest, SourceStateRecord } from '../model';
import type { SnapshotResult } from '../snapshot/snapshot';

/** What a manifest records about the live database a snapshot was taken of (both formats). */
export function manifestSource(db: string, snap: SnapshotResult, state: SourceStateRecord): Manifest['source'] {
  return {
    path: db,
    name: path.basename(db),
    size: snap.source.size,
    mtimeMs: snap.source.mtimeMs,
    journalMode: snap.journalMode,
    changeCounter: snap.changeCounter,
    walFrames: snap.walFrames,
    state: { ...state },
    snapshot: { strategy: snap.strategy, sqliteVersion: snap.sqliteVersion, fallback: snap.fallback },
  };
}

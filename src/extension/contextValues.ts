import type { BackupKind } from '../core/model';

/** `contextValue`s of the tree rows that are not backups. */
export enum NodeContext {
  Database = 'lifeboat.database',
  Tier = 'lifeboat.tier',
  Message = 'lifeboat.message',
}

/** A backup's verification state as the tree shows it. */
export type BackupRowState = 'verified' | 'failed' | 'unverified';

/**
 * The `contextValue` of a backup row: `lifeboat.backup.<kind>.<state>`, plus `.pinned`
 * when pinned. Menus in package.json match these with `viewItem =~ /^lifeboat\.backup\./`
 * (any backup), `/\.pinned$/` (unpin) and `/^lifeboat\.backup\.[^.]+\.[^.]+$/` (pin).
 */
export type BackupContext = `lifeboat.backup.${BackupKind}.${BackupRowState}${'' | '.pinned'}`;

/** The row's contextValue from its kind, state and pin. Pure. */
export function backupContext(kind: BackupKind, state: BackupRowState, pinned: boolean): BackupContext {
  return `lifeboat.backup.${kind}.${state}${pinned ? '.pinned' : ''}`;
}

/** The `when`/`viewItem` regular expressions package.json's menus use, kept beside the values they match. */
export const VIEW_ITEM = {
  anyBackup: '/^lifeboat\\.backup\\./',
  pinned: '/\\.pinned$/',
  unpinned: '/^lifeboat\\.backup\\.[^.]+\\.[^.]+$/',
  database: NodeContext.Database,
} as const;

import { BackupError } from '../errors';
import type { BackupFormat } from './format';
import { repoV2 } from './repoV2';
import { zipV1 } from './zipV1';

/** Every format Lifeboat reads. */
export const FORMATS: readonly BackupFormat[] = [zipV1, repoV2];

/** The format that reads a record's backup, by its listed format label. */
export function formatNamed(label: string): BackupFormat {
  const f = FORMATS.find((x) => x.label === label);
  if (!f) throw new Error(`unknown backup format ${label}`);
  return f;
}

/** The format whose objects look like `object` (a zip, a snapshot manifest): BackupError 'notFound' when none. */
export function formatOfObject(object: string): BackupFormat {
  const f = FORMATS.find((x) => x.visibleObjects([{ name: object, size: 0, mtimeMs: 0 }]).length === 1);
  if (!f) throw new BackupError('notFound', `${object}: not a backup of a known format`);
  return f;
}

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

import type { BackupFormat } from './format';
import { zipV1 } from './zipV1';

/** Every format Lifeboat reads. */
export const FORMATS: readonly BackupFormat[] = [zipV1];

/** The format that reads a record's backup, by its listed format label. */
export function formatNamed(label: string): BackupFormat {
  const f = FORMATS.find((x) => x.label === label);
  if (!f) throw new Error(`unknown backup format ${label}`);
  return f;
}

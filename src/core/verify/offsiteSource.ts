import type { Settings } from '../config';
import type { BackupStore } from '../store/store';

/** An open off-site store the restore test may take its backup from; closed by the test. */
export interface OffsiteRestoreStore extends BackupStore {
  close(): Promise<void>;
}

/**
 * Opens the off-site store of a backup directory for the rolling restore test, or resolves
 * undefined when there is none or its secrets are not at hand (nothing is contacted then).
 */
export type OffsiteRestoreProvider = (dir: string, settings: Settings) => Promise<OffsiteRestoreStore | undefined>;

const providers = new Set<OffsiteRestoreProvider>();

/**
 * Registers where the restore test finds a directory's off-site store when its caller
 * passes none (the scheduler calls `engine.restoreTest` with its own options). The VS Code
 * front end registers one that reads the folder's settings and SecretStorage. Dispose to
 * remove it. Imports nothing at run time, so registering costs a front end nothing.
 */
export function provideOffsiteRestoreStore(p: OffsiteRestoreProvider): { dispose(): void } {
  providers.add(p);
  return { dispose: () => void providers.delete(p) };
}

/** The first off-site store a registered provider opens for `dir`; undefined when none does. Throws what the provider throws. */
export async function offsiteRestoreStore(dir: string, settings: Settings): Promise<OffsiteRestoreStore | undefined> {
  for (const p of [...providers]) {
    const s = await p(dir, settings);
    if (s) return s;
  }
  return undefined;
}

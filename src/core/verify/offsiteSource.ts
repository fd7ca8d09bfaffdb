import type { Settings } from '../config';
import type { ProgressListener } from '../context';
import type { BackupStore } from '../store/store';
import type { VerifyResult } from './backupCheck';

/** An open off-site store the restore test may take its backup from; closed by the test. */
export interface OffsiteRestoreStore extends BackupStore {
  close(): Promise<void>;
}

/**
 * What the off-site half of a restore test found: the off-site store's own test (recorded
 * in its state and log), or why none ran ('notDue': its newest test is recent enough;
 * 'empty': it holds no backup). Plain data: it may come back from a worker thread.
 */
export type OffsiteTestOutcome = { tested: VerifyResult } | { skipped: 'notDue' | 'empty' };

/** What the off-site half of a restore test is run with. */
export interface OffsiteTestOptions {
  settings: Settings;
  /** The caller's clock (epoch ms) when the test began: the due check and the times recorded go by it. */
  now: number;
  /** The off-site store is tested when its newest restore test is at least this old (ms). */
  afterMs: number;
  signal?: AbortSignal;
  onProgress?: ProgressListener;
}

/**
 * The off-site half of a restore test run elsewhere: VS Code runs it in the off-site worker
 * (pushJob.ts, op 'restoreTest'), so that none of the remote's work (its libraries, the
 * decrypting and hashing of every byte) runs on the extension host's thread.
 * `restoreTest` opens the store, tests it when due, closes it, and resolves what it found;
 * it rejects as reading the store does, and with BackupError 'cancelled' when `signal` aborts.
 */
export interface OffsiteRestoreTester {
  /** The off-site store's URL, for the local log (also when the test fails). */
  readonly url: string;
  restoreTest(o: OffsiteTestOptions): Promise<OffsiteTestOutcome>;
}

/**
 * Where a restore test finds a directory's off-site copy: an open store (the test runs on
 * it in the caller's thread, then closes it), or a tester that runs the off-site half itself.
 */
export type OffsiteRestoreSource = OffsiteRestoreStore | OffsiteRestoreTester;

/** True for a tester (it runs the off-site half itself); false for an open store. */
export function isOffsiteTester(s: OffsiteRestoreSource): s is OffsiteRestoreTester {
  return typeof (s as Partial<OffsiteRestoreTester>).restoreTest === 'function';
}

/**
 * The off-site copy of a backup directory for the rolling restore test, or undefined when
 * there is none or its secrets are not at hand (nothing is contacted then).
 */
export type OffsiteRestoreProvider = (dir: string, settings: Settings) => Promise<OffsiteRestoreSource | undefined>;

const providers = new Set<OffsiteRestoreProvider>();

/**
 * Registers where the restore test finds a directory's off-site copy when its caller
 * passes none (the scheduler calls `engine.restoreTest` with its own options). The VS Code
 * front end registers one that reads the folder's settings and SecretStorage and runs the
 * off-site half in its worker. Dispose to remove it. Imports nothing at run time, so
 * registering costs a front end nothing.
 */
export function provideOffsiteRestoreSource(p: OffsiteRestoreProvider): { dispose(): void } {
  providers.add(p);
  return { dispose: () => void providers.delete(p) };
}

/** The first off-site copy a registered provider offers for `dir`; undefined when none does. Throws what the provider throws. */
export async function offsiteRestoreSource(dir: string, settings: Settings): Promise<OffsiteRestoreSource | undefined> {
  for (const p of [...providers]) {
    const s = await p(dir, settings);
    if (s) return s;
  }
  return undefined;
}

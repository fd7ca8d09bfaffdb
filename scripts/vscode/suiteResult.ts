/**
 * The one line the in-extension-host mocha suite prints when it ends, so the runner can
 * count its tests from the workbench's log: SUITE_RESULT_MARK + JSON of SuiteResult.
 */
export const SUITE_RESULT_MARK = 'LIFEBOAT_SUITE_RESULT ';

/** Counts of one mocha run inside the extension host. */
export interface SuiteResult {
  passed: number;
  failed: number;
  /**
   * Tests that did not run to a verdict (mocha's pending: `it.skip`, `this.skip()`, no body).
   * Optional so older writers stay valid; scripts/test.sh reads a missing count as 0.
   */
  skipped?: number;
  /** Full titles of the failed tests. */
  failures: string[];
}

/** Environment variables the runner hands the extension host (through code-server's env). */
export const SUITE_ENV = {
  /** Absolute path of the workspace folder the window opened. */
  workspace: 'LIFEBOAT_TEST_WORKSPACE',
  /** Optional mocha grep pattern. */
  grep: 'LIFEBOAT_SUITE_GREP',
} as const;

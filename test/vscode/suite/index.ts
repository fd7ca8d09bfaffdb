/**
 * Entry point of the extension's own tests inside a real VS Code's extension host (the
 * equivalent of `--extensionTestsPath`). scripts/vscode/run.mjs bundles this file and every
 * `*.test.ts` beside it into one folder; `run()` loads those `*.test.js` files into mocha
 * (TDD interface: suite/test) and resolves when they all pass.
 */
import { readdirSync } from 'node:fs';
import path from 'node:path';
import Mocha from 'mocha';
import { SUITE_ENV, SUITE_RESULT_MARK, type SuiteResult } from '../../../scripts/vscode/suiteResult';

/**
 * Runs every `*.test.js` in this folder. Prints one SUITE_RESULT_MARK line with the counts
 * (the runner reads it from the workbench log), then resolves, or rejects when any test
 * failed or none was found. Not meant to be called twice in one extension host.
 */
export function run(): Promise<void> {
  const mocha = new Mocha({
    ui: 'tdd',
    color: false,
    timeout: 30_000,
    reporter: 'spec',
    grep: process.env[SUITE_ENV.grep] || undefined,
  });
  const files = readdirSync(__dirname)
    .filter((f) => f.endsWith('.test.js'))
    .sort();
  for (const f of files) mocha.addFile(path.join(__dirname, f));
  return new Promise((resolve, reject) => {
    const result: SuiteResult = { passed: 0, failed: 0, skipped: 0, failures: [] };
    try {
      const runner = mocha.run(() => {
        console.log(SUITE_RESULT_MARK + JSON.stringify(result));
        if (files.length === 0) reject(new Error(`no *.test.js files in ${__dirname}`));
        else if (result.failed > 0) reject(new Error(`${result.failed} of ${result.passed + result.failed} tests failed`));
        else resolve();
      });
      runner.on('pass', () => void result.passed++);
      runner.on('pending', () => void (result.skipped = (result.skipped ?? 0) + 1));
      runner.on('fail', (t, err: unknown) => {
        result.failed++;
        const message = err instanceof Error ? err.message : String(err);
        result.failures.push(`${t.fullTitle()}: ${message.split('\n')[0]}`);
      });
    } catch (e) {
      // A test file that throws while loading never reaches mocha's callback.
      console.log(SUITE_RESULT_MARK + JSON.stringify({ passed: 0, failed: 1, skipped: 0, failures: [String(e)] }));
      reject(e);
    }
  });
}

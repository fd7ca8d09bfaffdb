import type { Logger, LogFields } from '../core/context';

/** The CLI's logger: warnings and errors are the CLI's own one-line messages, so only debug output goes to stderr. */
export function stderrLogger(debug: boolean): Logger {
  const start = performance.now();
  const write = (level: string) => (message: string, fields?: LogFields) => {
    if (!debug) return;
    process.stderr.write(`[${level} +${Math.round(performance.now() - start)}ms] ${message}${fields ? ' ' + JSON.stringify(fields) : ''}\n`);
  };
  return { debug: write('debug'), info: write('info'), warn: write('warn'), error: write('error') };
}

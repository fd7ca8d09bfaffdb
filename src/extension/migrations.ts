/** Recognising migration tasks. Pure; no `vscode` import. */

/** Commands that change a database's schema, from the tools named in the design. Case-insensitive. */
export const MIGRATION_PATTERNS: readonly RegExp[] = [
  /\bprisma\s+migrate\b/i,
  /\bprisma\s+db\s+push\b/i,
  /\bdrizzle-kit\s+(migrate|push)\b/i,
  /\bknex\s+migrate(:|\b)/i,
  /\bsequelize(-cli)?\s+db:migrate\b/i,
  /\btypeorm(-ts-node-\w+)?\s+migration:run\b/i,
  /\balembic\s+upgrade\b/i,
  /\b(rails|rake)\s+db:migrate\b/i,
  /\bmanage\.py\s+migrate\b/i,
];

/**
 * True when any of `texts` (a task's name, its command line) matches a built-in pattern
 * or one of `userPatterns` (regular expressions, case-insensitive). An invalid user
 * pattern is skipped (settings validation reports it). Pure.
 */
export function looksLikeMigration(texts: readonly string[], userPatterns: readonly string[] = []): boolean {
  const user: RegExp[] = [];
  for (const p of userPatterns) {
    try {
      user.push(new RegExp(p, 'i'));
    } catch {
      // reported by settings validation
    }
  }
  return texts.some((t) => MIGRATION_PATTERNS.some((re) => re.test(t)) || user.some((re) => re.test(t)));
}

/** The task source Lifeboat's tasks carry; VS Code labels a contributed task `<source>: <name>`. */
export const TASK_SOURCE = 'lifeboat';

/** The name of the backup task of a database, given its path relative to the workspace folder ("data/app.db"). */
export function backupTaskName(relativeDb: string): string {
  return `Back up ${relativeDb}`;
}

/** The label to put in `dependsOn`: "lifeboat: Back up data/app.db". */
export function backupTaskLabel(relativeDb: string): string {
  return `${TASK_SOURCE}: ${backupTaskName(relativeDb)}`;
}

import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { parse, type ParseError } from 'jsonc-parser';
import { normalize, describeIssue, type Settings } from '../core/config';
import { BackupError } from '../core/errors';

/** Settings as the CLI found them, and where. */
export interface CliSettings {
  settings: Settings;
  /** The file they came from, or undefined for the defaults. */
  source?: string;
  /** The folder relative paths in the settings are resolved against. */
  base: string;
}

/**
 * Finds the configuration the extension would use: a `lifeboat.json` beside the
 * database (or in `start` when no database is given), else the nearest
 * `.vscode/settings.json` walking up from `start`. Invalid
 * values are a usage error naming the file and the setting (the CLI has no "last valid
 * value" to fall back on). Without a file: the defaults, relative to `start`.
 */
export function loadSettings(start: string, dbPath?: string): CliSettings {
  // Beside the database; without one (a command given only a backup directory), in the
  // folder that holds the directory, where the default layout keeps the database.
  const besideDir = dbPath ? path.dirname(path.resolve(dbPath)) : path.resolve(start);
  const beside = path.join(besideDir, 'lifeboat.json');
  if (existsSync(beside)) return fromFile(beside, besideDir);
  let dir = path.resolve(start);
  for (;;) {
    const f = path.join(dir, '.vscode', 'settings.json');
    if (existsSync(f)) return fromFile(f, dir);
    const up = path.dirname(dir);
    if (up === dir) break;
    dir = up;
  }
  return { settings: normalize({}).settings, base: path.resolve(start) };
}

function fromFile(file: string, base: string): CliSettings {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (e) {
    throw new BackupError('badConfig', `${file}: cannot be read (${(e as Error).message})`, { path: file });
  }
  const errors: ParseError[] = [];
  const raw = parse(text, errors, { allowTrailingComma: true, disallowComments: false });
  if (errors.length || raw === null || typeof raw !== 'object') {
    throw new BackupError('badConfig', `${file}: not valid JSON (at offset ${errors[0]?.offset ?? 0})`, { path: file });
  }
  const { settings, issues } = normalize(raw);
  if (issues.length) {
    throw new BackupError('badConfig', `${file}: ${describeIssue(issues[0])}`, { path: file });
  }
  return { settings, source: file, base };
}

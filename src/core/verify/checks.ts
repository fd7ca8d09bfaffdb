/**
 * The checks the verifier runs on an SQLite image, written once against a small database
 * interface (CheckDb) so that both engines share them: sql.js in memory (worker.ts) and
 * the runtime's own SQLite, node:sqlite, reading the file (nodeVerify.ts). Synchronous and
 * CPU-bound: workers run them off the main thread; tests may call them directly.
 */
import { createHash } from 'node:crypto';
import type { Database, SqlJsStatic } from 'sql.js';
import type { VerifyReport } from '../model';

/** Most problem lines a report carries; integrity_check is asked for no more than this. */
export const MAX_PROBLEMS = 100;

const MAGIC = 'SQLite format 3\0';
const HEADER_SIZE = 100;

/** What the 100-byte database header says, and what is wrong with it. */
export interface HeaderCheck {
  /** One line per defect; empty when the header is sound. */
  problems: string[];
  /** False when SQLite should not even be asked to open the file (no magic, impossible page size). */
  openable: boolean;
  /** Page size in bytes, when the header has a valid one. */
  pageSize?: number;
  /** Pages the file holds (file size / page size), when the page size is valid. */
  filePages?: number;
}

/**
 * Checks an image's header: the magic string, a power-of-two page size in 512..65536, a
 * file size that is a multiple of the page size, and the in-header page count (offset 28)
 * against the file size when that count is valid (change counter at 24 equals the
 * version-valid-for number at 92, as every SQLite since 3.7.0 writes). `head` is at least
 * the first 100 bytes of the file (fewer only if the file is shorter); `fileSize` is the
 * whole file's size. Pure; never throws.
 */
export function checkHeader(head: Uint8Array, fileSize: number): HeaderCheck {
  if (fileSize === 0) return { problems: ['empty file (0 bytes): not an SQLite database'], openable: false };
  const magic = Buffer.from(head.buffer, head.byteOffset, Math.min(head.length, MAGIC.length)).toString('latin1');
  if (magic !== MAGIC.slice(0, magic.length) || head.length < MAGIC.length) {
    return {
      problems: ['not an SQLite database: the file does not start with "SQLite format 3\\0" (or it is encrypted)'],
      openable: false,
    };
  }
  if (fileSize < HEADER_SIZE || head.length < HEADER_SIZE) {
    return { problems: [`truncated: ${fileSize} bytes is shorter than the ${HEADER_SIZE}-byte database header`], openable: false };
  }
  const view = new DataView(head.buffer, head.byteOffset, HEADER_SIZE);
  const raw = view.getUint16(16);
  // The header stores 65536 as 1 because it does not fit in 16 bits.
  const pageSize = raw === 1 ? 65536 : raw;
  if (pageSize < 512 || pageSize > 65536 || (pageSize & (pageSize - 1)) !== 0) {
    return { problems: [`invalid page size ${raw} in the header (must be a power of two from 512 to 65536)`], openable: false };
  }
  const problems: string[] = [];
  const filePages = Math.floor(fileSize / pageSize);
  if (fileSize % pageSize !== 0) {
    problems.push(`file size ${fileSize} is not a multiple of the page size ${pageSize} (truncated or padded)`);
  }
  const headerPages = view.getUint32(28);
  const countValid = headerPages > 0 && view.getUint32(24) === view.getUint32(92);
  if (countValid && headerPages !== filePages) {
    problems.push(
      headerPages > filePages
        ? `truncated: the header declares ${headerPages} pages of ${pageSize} bytes but the file holds ${filePages}`
        : `the file holds ${filePages} pages of ${pageSize} bytes but the header declares only ${headerPages}`,
    );
  }
  return { problems, openable: true, pageSize, filePages };
}

/** One row of sqlite_schema: type, name, tbl_name, sql (null for automatic indexes). */
export type SchemaRow = readonly [type: string, name: string, tblName: string, sql: string | null];

/**
 * The schema fingerprint: sha256 (hex) over the user's schema objects. Rows whose name
 * starts with `sqlite_` (case-insensitive: sqlite_sequence, sqlite_stat1, automatic
 * indexes) are left out, because SQLite creates them itself (ANALYZE, PRAGMA optimize)
 * and they would change the fingerprint without a schema change. Each remaining row is
 * written as `JSON.stringify([type, name, tbl_name, sql])`, the lines are sorted by
 * JavaScript string order and joined with "\n", and the UTF-8 of that is hashed. Any
 * engine that reads the same rows gets the same value. Pure; order of `rows` is irrelevant.
 */
export function schemaFingerprint(rows: readonly SchemaRow[]): string {
  const lines = rows
    .filter(([, name]) => !/^sqlite_/i.test(name))
    .map(([type, name, tblName, sql]) => JSON.stringify([type, name, tblName, sql ?? null]))
    .sort();
  return createHash('sha256').update(lines.join('\n'), 'utf8').digest('hex');
}

/** The module of a `CREATE VIRTUAL TABLE ... USING module(...)` statement, lower-cased; undefined for other SQL. */
export function virtualTableModule(sql: string | null): string | undefined {
  if (!sql || !/^\s*CREATE\s+VIRTUAL\s+TABLE\b/i.test(sql)) return undefined;
  const m = /\bUSING\s+["'`[]?([A-Za-z0-9_$]+)/i.exec(sql);
  return m ? m[1]!.toLowerCase() : '?';
}

/** What the checks decide; the worker adds the engine, timing and checkedAt. */
export type CheckResult = Omit<VerifyReport, 'engine' | 'durationMs' | 'checkedAt' | 'skippedReason'>;

export interface CheckOptions {
  /** The structural check to run. */
  check: 'integrity_check' | 'quick_check';
  /** Run after the other checks; empty or undefined means none. */
  probeQuery?: string;
}

const quoteIdent = (name: string): string => `"${name.replace(/"/g, '""')}"`;
const quoteString = (s: string): string => `'${s.replace(/'/g, "''")}'`;
const messageOf = (e: unknown): string => (e instanceof Error ? e.message : String(e));

/**
 * What the checks need from an open database, whichever engine it is. Every method
 * throws the engine's error ("database disk image is malformed", "no such table") for
 * the checks to turn into problem lines.
 */
export interface CheckDb {
  /** Runs SQL that returns no rows. */
  exec(sql: string): void;
  /** All rows of the first statement of `sql`, each as an array of column values. */
  rows(sql: string): unknown[][];
  /** Runs every statement in `sql` to completion and returns how many rows they produced, without keeping them. */
  countRows(sql: string): number;
}

/** A CheckDb that the caller closes once the checks are done. */
export interface OpenedDb extends CheckDb {
  close(): void;
}

/**
 * Verifies an image: `header` (checkHeader of its first bytes) first; when the header
 * allows, `open()` the image and run runChecks. Damage of any kind (bad header, "file is
 * not a database", "database disk image is malformed" from any query, failing to open)
 * becomes status 'failed' with the message in `problems`; nothing about the image makes
 * it throw. Throws only for an engine failure unrelated to the image (out of memory).
 * The database is closed before this returns; a close error changes nothing in the result.
 */
export function checkImage(header: HeaderCheck, open: () => OpenedDb, opts: CheckOptions): CheckResult {
  if (!header.openable) return emptyResult('none', header.problems);
  let db: OpenedDb;
  try {
    db = open();
  } catch (e) {
    rethrowIfOutOfMemory(e);
    return emptyResult(opts.check, [...header.problems, `cannot open: ${messageOf(e)}`]);
  }
  try {
    const result = runChecks(db, opts);
    result.problems = capProblems([...header.problems, ...result.problems]);
    result.status = result.problems.length === 0 ? 'ok' : 'failed';
    return result;
  } finally {
    try {
      db.close();
    } catch {
      // A close error after the checks have run changes nothing in the result.
    }
  }
}

/**
 * Verifies an image held in memory with sql.js: checkImage over an sql.js database.
 *
 * `bytes` is handed to sql.js's in-memory file system, which keeps a Node Buffer without
 * copying it (Buffer#slice is a view), so the image is in memory once. The caller must
 * not use `bytes` afterwards; it is released when this returns (sql.js's close() unlinks
 * the image from its file system).
 */
export function verifyBytes(SQL: SqlJsStatic, bytes: Uint8Array, opts: CheckOptions): CheckResult {
  const header = checkHeader(bytes.subarray(0, HEADER_SIZE), bytes.length);
  return checkImage(header, () => sqlJsDb(new SQL.Database(bytes)), opts);
}

/** An sql.js database as a CheckDb. */
export function sqlJsDb(db: Database): OpenedDb {
  return {
    exec: (sql) => void db.exec(sql),
    rows: (sql) => {
      const stmt = db.prepare(sql);
      try {
        const out: unknown[][] = [];
        while (stmt.step()) out.push(stmt.get());
        return out;
      } finally {
        stmt.free();
      }
    },
    countRows: (sql) => {
      let n = 0;
      for (const stmt of db.iterateStatements(sql)) {
        try {
          while (stmt.step()) n++;
        } finally {
          stmt.free();
        }
      }
      return n;
    },
    close: () => db.close(),
  };
}

/**
 * The first SQLite version whose integrity_check and quick_check also run the xIntegrity
 * method of virtual tables (FTS3/4, FTS5, R-Tree): 3.44.0. Measured on 3.53: both pragmas
 * report a damaged FTS5 segment or R-Tree node.
 */
const XINTEGRITY_SINCE = [3, 44, 0];

function versionAtLeast(version: string, min: number[]): boolean {
  const v = version.split('.').map((n) => Number.parseInt(n, 10) || 0);
  for (let i = 0; i < min.length; i++) if ((v[i] ?? 0) !== min[i]) return (v[i] ?? 0) > min[i]!;
  return true;
}

/**
 * Runs the checks on an open database: the structural check (integrity_check or
 * quick_check, at most MAX_PROBLEMS lines), the schema fingerprint, row counts of every
 * ordinary table (including shadow tables of virtual tables and sqlite_sequence /
 * sqlite_stat1, which are ordinary tables too; virtual tables themselves are never
 * counted), PRAGMA foreign_key_check (counted, not a failure), virtual tables the
 * structural check does not cover (listed in notChecked as "name (module)", not a
 * failure: a module this engine lacks, or any module before SQLite 3.44, which added
 * xIntegrity), and the probe query (an error fails the result). The database is put into
 * query_only mode first: a verification never writes. Throws only when out of memory;
 * every other error becomes a problem line.
 *
 * When the structural check of the whole file fails with an error that is not damage
 * ("malformed", "corrupt") and a virtual table is why (an FTS5 table with an
 * application's own tokenizer makes integrity_check fail with "SQL logic error"), each
 * table is checked on its own instead: the virtual tables that fail are listed as not
 * checked, findings and errors of ordinary tables are problems, and the whole-file
 * accounting (pages in no b-tree) is listed as not checked. Otherwise the error is a problem.
 */
export function runChecks(db: CheckDb, opts: CheckOptions): CheckResult {
  const problems: string[] = [];
  const notChecked: string[] = [];
  const guard = <T>(what: string, f: () => T): T | undefined => {
    try {
      return f();
    } catch (e) {
      rethrowIfOutOfMemory(e);
      problems.push(`${what}: ${messageOf(e)}`);
      return undefined;
    }
  };

  guard('query_only', () => db.exec('PRAGMA query_only = 1'));
  // Reading the schema is the first access to the file; if this fails nothing else can run.
  const schema = guard('reading the schema', () =>
    db
      .rows('SELECT type, name, tbl_name, sql FROM sqlite_schema')
      .map((r) => [String(r[0]), String(r[1]), String(r[2]), r[3] === null ? null : String(r[3])] as SchemaRow),
  );
  if (!schema) return { ...emptyResult(opts.check, problems), notChecked };

  const version = guard('reading the SQLite version', () => String(db.rows('SELECT sqlite_version()')[0]?.[0])) ?? '0';
  const modules = new Set(
    guard('listing modules', () => db.rows('SELECT name FROM pragma_module_list').map((r) => String(r[0]).toLowerCase())) ?? [],
  );
  const checksVirtual = versionAtLeast(version, XINTEGRITY_SINCE);
  const tables = schema.filter(([type]) => type === 'table').map(([, name, , sql]) => ({ name, module: virtualTableModule(sql) }));

  // Newer SQLite returns all findings as one newline-separated row, under a
  // "*** in database main ***" heading that names nothing wrong.
  const findings = (sql: string): string[] => {
    const lines = db
      .rows(sql)
      .flatMap((r) => String(r[0]).split('\n'))
      .filter((l) => l !== '' && !/^\*\*\* in database \S+ \*\*\*$/.test(l));
    return lines.length === 1 && lines[0] === 'ok' ? [] : lines;
  };
  try {
    problems.push(...findings(`PRAGMA ${opts.check}(${MAX_PROBLEMS})`));
  } catch (e) {
    rethrowIfOutOfMemory(e);
    const whole = messageOf(e);
    const perTable: string[] = [];
    const unopened: string[] = [];
    // Damage reported as an error is never explained away by a virtual table.
    if (checksVirtual && !/malformed|corrupt|not a database/i.test(whole)) {
      for (const t of tables) {
        if (t.module !== undefined && !modules.has(t.module)) continue;
        try {
          perTable.push(...findings(`PRAGMA ${opts.check}(${quoteString(t.name)})`));
        } catch (te) {
          rethrowIfOutOfMemory(te);
          if (t.module !== undefined) unopened.push(`${t.name} (${t.module}: ${messageOf(te)})`);
          else perTable.push(`${opts.check} of ${t.name}: ${messageOf(te)}`);
        }
      }
    }
    if (unopened.length === 0) problems.push(`${opts.check}: ${whole}`);
    else {
      problems.push(...perTable);
      notChecked.push(...unopened, `pages outside the tables (${opts.check} of the whole file failed: ${whole})`);
    }
  }

  // Entries, not assignment: a table may be called __proto__.
  const counted: [string, number][] = [];
  for (const { name, module } of tables) {
    if (module !== undefined) {
      // A module this engine has is covered by the structural check (xIntegrity); one it lacks is not.
      if (!(checksVirtual && modules.has(module))) notChecked.push(`${name} (${module})`);
      continue;
    }
    const n = guard(`counting rows of ${name}`, () => Number(db.rows(`SELECT count(*) FROM ${quoteIdent(name)}`)[0]?.[0]));
    if (n !== undefined) counted.push([name, n]);
  }

  let foreignKeyViolations = 0;
  try {
    foreignKeyViolations = db.countRows('PRAGMA foreign_key_check');
  } catch (e) {
    rethrowIfOutOfMemory(e);
    // A schema error here ("foreign key mismatch") is the application's design, not damage
    // to the image: it must not fail every backup, so it is reported as not checked.
    notChecked.push(`foreign keys (${messageOf(e)})`);
  }

  let probe: VerifyReport['probe'];
  const probeSql = opts.probeQuery?.trim();
  if (probeSql) {
    try {
      probe = { sql: probeSql, ok: true, rows: db.countRows(probeSql) };
    } catch (e) {
      rethrowIfOutOfMemory(e);
      probe = { sql: probeSql, ok: false, error: messageOf(e) };
      problems.push(`probe query failed: ${messageOf(e)}`);
    }
  }

  const capped = capProblems(problems);
  return {
    status: capped.length === 0 ? 'ok' : 'failed',
    check: opts.check,
    problems: capped,
    foreignKeyViolations,
    schemaFingerprint: schemaFingerprint(schema),
    rowCounts: Object.fromEntries(counted),
    notChecked,
    ...(probe ? { probe } : {}),
  };
}

function emptyResult(check: CheckResult['check'], problems: string[]): CheckResult {
  return {
    status: 'failed',
    check,
    problems: capProblems(problems),
    foreignKeyViolations: 0,
    schemaFingerprint: '',
    rowCounts: {},
    notChecked: [],
  };
}

function capProblems(problems: string[]): string[] {
  if (problems.length <= MAX_PROBLEMS) return problems;
  return [...problems.slice(0, MAX_PROBLEMS), `... and ${problems.length - MAX_PROBLEMS} more`];
}

/**
 * An exhausted heap (WASM or SQLite's own) says nothing about the image; reporting it as
 * damage would mark a good backup failed, so it propagates and the verifier reports it
 * as an error.
 */
export function rethrowIfOutOfMemory(e: unknown): void {
  const m = messageOf(e);
  if (e instanceof RangeError || /out of memory|Cannot enlarge memory|Aborted\(OOM\)|memory access out of bounds/i.test(m)) throw e;
}

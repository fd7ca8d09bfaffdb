/** Why an engine operation failed; stable strings that front ends and tests switch on. */
export type BackupErrorReason =
  | 'notFound' // the database, archive or directory does not exist
  | 'notSqlite' // the file is not an SQLite database
  | 'encrypted' // the file looks like an encrypted database (not a plain SQLite database)
  | 'unwritable' // the backup directory or restore target cannot be written
  | 'diskFull' // ENOSPC or EDQUOT while writing
  | 'busy' // the database changed under every attempt to read it consistently
  | 'badArchive' // the archive is malformed, damaged, or not a Lifeboat archive
  | 'unsafeArchive' // the archive has `..`, absolute or symlink entries, or sizes that don't add up
  | 'unsupportedFormat' // an archive written by a newer Lifeboat
  | 'verifyFailed' // a verification found damage
  | 'inUse' // the restore target looks open by another process
  | 'locked' // the backup directory's lock could not be taken in time
  | 'cancelled' // the caller cancelled
  | 'tooLarge' // too large for the in-memory verifier
  | 'badConfig' // a setting is invalid
  | 'usage' // a command-line usage error
  | 'exists' // a store object that must not be replaced already exists
  | 'io'; // any other I/O failure

/**
 * The one error type the engine throws. `reason` is machine-readable; `message` is a
 * single line for people that names the file, setting or argument involved.
 */
export class BackupError extends Error {
  override readonly name = 'BackupError';
  constructor(
    readonly reason: BackupErrorReason,
    message: string,
    options?: { cause?: unknown; path?: string },
  ) {
    super(message, options?.cause === undefined ? undefined : { cause: options.cause });
    this.path = options?.path;
  }
  readonly path: string | undefined;

  static is(e: unknown, reason?: BackupErrorReason): e is BackupError {
    return e instanceof BackupError && (reason === undefined || e.reason === reason);
  }
}

/** Maps a Node fs error to a BackupError naming `path`; passes BackupErrors through. */
export function fsError(e: unknown, path: string, doing: string): BackupError {
  if (e instanceof BackupError) return e;
  const code = (e as NodeJS.ErrnoException | undefined)?.code;
  switch (code) {
    case 'ENOENT':
      return new BackupError('notFound', `${path}: no such file or directory (${doing})`, { cause: e, path });
    case 'EACCES':
    case 'EPERM':
    case 'EROFS':
      return new BackupError('unwritable', `${path}: permission denied (${doing})`, { cause: e, path });
    case 'ENOSPC':
    case 'EDQUOT':
      return new BackupError('diskFull', `${path}: no space left on device (${doing})`, { cause: e, path });
    default:
      return new BackupError('io', `${path}: ${(e as Error)?.message ?? String(e)} (${doing})`, { cause: e, path });
  }
}

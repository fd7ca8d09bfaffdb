import { randomBytes } from 'node:crypto';
import { createReadStream, createWriteStream, promises as fs } from 'node:fs';
import path from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { ReadableStream as WebReadableStream } from 'node:stream/web';
import type { BackupRef, Engine, ExportResult } from '../engine';
import { BackupError, fsError } from '../errors';
import { fsyncDir, fsyncFile } from '../fsutil';
import { NodeScryptRecipient } from '../store/remote/ageScrypt';
import { loadAge } from '../store/remote/encryptedBackend';

export interface AgeExportOptions {
  /** The `.age` file to write: `x.zip.age` holds a zip archive, anything else the database. */
  to: string;
  force?: boolean;
  /** Encrypt with this passphrase (scrypt), as `age -p` does. */
  passphrase?: string;
  /** Or to these age recipients (`age1...`), separated by commas or spaces. */
  recipients?: string;
  /** scrypt work factor (log2), default 18 as `age -p`. */
  scryptLogN?: number;
}

/**
 * Exports a backup as an age file that the stock `age` tool decrypts (`age -d`), so that
 * the data can be had back with no Lifeboat at all: the plain export (the database, or a
 * zip for `x.zip.age`), encrypted to a passphrase or to age recipients. Built beside the
 * target and renamed into place; the plain file never stays on disk.
 */
export async function exportAge(engine: Engine, ref: BackupRef, o: AgeExportOptions): Promise<ExportResult> {
  const target = path.resolve(o.to);
  const recipients = (o.recipients ?? '').split(/[\s,]+/).filter(Boolean);
  if (!o.passphrase && !recipients.length) {
    throw new BackupError('badConfig', `${target}: an .age export needs a passphrase (LIFEBOAT_PASSWORD) or recipients (LIFEBOAT_AGE_RECIPIENTS)`);
  }
  for (const r of recipients) if (!/^age1[0-9a-z]+$/.test(r)) throw new BackupError('badConfig', `LIFEBOAT_AGE_RECIPIENTS: "${r}" is not an age recipient (age1...)`);
  if (!o.force && (await fs.stat(target).then(() => true, () => false))) throw new BackupError('exists', `${target}: already exists; not replaced (--force replaces it)`, { path: target });
  const dir = path.dirname(target);
  const stem = `.${path.basename(target)}.${process.pid}.${randomBytes(4).toString('hex')}`;
  const inner = target.slice(0, -4).toLowerCase().endsWith('.zip') ? '.zip' : '.sqlite';
  const plain = path.join(dir, `${stem}${inner}`);
  const sealed = path.join(dir, `${stem}.age`);
  try {
    const res = await engine.exportBackup(ref, { to: plain, force: true });
    const age = await loadAge();
    const e = new age.Encrypter();
    if (o.passphrase) e.addRecipient(new NodeScryptRecipient(o.passphrase, o.scryptLogN ?? 18));
    else for (const r of recipients) e.addRecipient(r);
    const enc = await e.encrypt(Readable.toWeb(createReadStream(plain, { highWaterMark: 1 << 20 })) as unknown as ReadableStream<Uint8Array>);
    await pipeline(Readable.fromWeb(enc as unknown as WebReadableStream<Uint8Array>), createWriteStream(sealed));
    await fsyncFile(sealed);
    await fs.rename(sealed, target);
    await fsyncDir(dir);
    return { ...res, path: target, size: (await fs.stat(target)).size };
  } catch (err) {
    throw fsError(err, target, 'writing the encrypted export');
  } finally {
    await fs.rm(plain, { force: true });
    await fs.rm(sealed, { force: true });
  }
}

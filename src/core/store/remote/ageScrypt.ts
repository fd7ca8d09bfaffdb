import { createCipheriv, createDecipheriv, createHash, randomBytes, scrypt } from 'node:crypto';
import type { Identity, Recipient, Stanza } from 'age-encryption' with { 'resolution-mode': 'import' };
import { loadAge } from './encryptedBackend';

/**
 * age's passphrase stanza (`-> scrypt <salt> <logN>`, the age specification's "scrypt
 * recipient type") with Node's own scrypt and ChaCha20-Poly1305 instead of the pure
 * JavaScript ones in age-encryption: the key derivation (a second and 256 MiB at the
 * work factor `age -p` uses) runs on libuv's thread pool, so it never stalls the event
 * loop (the extension host's, or a progress bar's). Files stay what `age -d` reads.
 */
const LABEL = Buffer.from('age-encryption.org/v1/scrypt', 'latin1');
const NONCE = Buffer.alloc(12);

let derivations = 0;

function deriveKey(passphrase: string, salt: Buffer, logN: number): Promise<Buffer> {
  const N = 2 ** logN;
  derivations++;
  return new Promise((resolve, reject) => {
    scrypt(Buffer.from(passphrase, 'utf8'), Buffer.concat([LABEL, salt]), 32, { N, r: 8, p: 1, maxmem: 128 * N * 8 + (32 << 20) }, (err, key) => (err ? reject(err) : resolve(key)));
  });
}

/** How many keys this process has derived with scrypt (for diagnostics and tests). */
export function scryptDerivations(): number {
  return derivations;
}

/**
 * Keys of remotes' key files, by passphrase, salt and work factor, kept for the life of the
 * process (the last few). VS Code copies off-site after every backup and lists, verifies and
 * restores from the same remote: each would otherwise take scrypt's 128 MiB and most of a
 * second of a core again, in the extension host's process, for the same key. A kept key
 * opens only what the passphrase, which the process holds anyway, opens. Files made for
 * other uses (`.age` exports, each with a salt of its own) do not go through here.
 */
const remoteKeys = new Map<string, Promise<Buffer>>();
const REMOTE_KEYS_KEPT = 8;

function remoteKey(passphrase: string, salt: Buffer, logN: number): Promise<Buffer> {
  const id = createHash('sha256').update(passphrase, 'utf8').update('\0').update(salt).update(`\0${logN}`).digest('hex');
  const hit = remoteKeys.get(id);
  if (hit) {
    remoteKeys.delete(id);
    remoteKeys.set(id, hit); // the most recently used last
    return hit;
  }
  const key = deriveKey(passphrase, salt, logN);
  remoteKeys.set(id, key);
  key.catch(() => remoteKeys.delete(id));
  if (remoteKeys.size > REMOTE_KEYS_KEPT) remoteKeys.delete(remoteKeys.keys().next().value!);
  return key;
}

/**
 * A key derived ahead of its use, for one salt and work factor: RemoteStore derives it before
 * the backend connects (see RemoteStore.deriveAhead); a stanza with this salt and work
 * factor takes it instead of deriving again.
 */
export interface DerivedKey {
  salt: Buffer;
  logN: number;
  key: Promise<Buffer>;
  /**
   * A new random salt, never in any stanza yet: only such a key may wrap a new file key
   * (the stanza's cipher has a fixed nonce, so a salt, and so a key, wraps one file key).
   */
  fresh: boolean;
}

/** Starts deriving the key for `salt` (a stanza's), or for a new random salt. */
export function deriveAhead(passphrase: string, logN: number, salt?: Buffer): DerivedKey {
  const s = salt ?? randomBytes(16);
  const key = remoteKey(passphrase, s, logN);
  key.catch(() => undefined); // awaited (and its error seen) where it is used
  return { salt: s, logN, key, fresh: !salt };
}

/** The salt and work factor of an age file's passphrase stanza (`-> scrypt <salt> <logN>`), if its header has one. */
export function scryptStanza(file: Buffer): { salt: Buffer; logN: number } | undefined {
  const m = /^-> scrypt ([A-Za-z0-9+/]{22}) ([1-9][0-9]?)$/m.exec(file.subarray(0, 512).toString('latin1'));
  return m ? { salt: Buffer.from(m[1]!, 'base64'), logN: Number(m[2]) } : undefined;
}

const matches = (d: DerivedKey | undefined, salt: Buffer, logN: number): d is DerivedKey => !!d && d.logN === logN && d.salt.equals(salt);

function b64(b: Buffer): string {
  return b.toString('base64').replace(/=+$/, '');
}

export class NodeScryptRecipient implements Recipient {
  constructor(
    private readonly passphrase: string,
    private readonly logN: number,
    /** A key derived ahead for a fresh salt: used once, for this one stanza, instead of deriving again. */
    private ahead?: DerivedKey,
  ) {}

  async wrapFileKey(fileKey: Uint8Array): Promise<Stanza[]> {
    const age = await loadAge();
    const own = this.ahead?.fresh && this.ahead.logN === this.logN ? this.ahead : undefined;
    this.ahead = undefined;
    const salt = own?.salt ?? randomBytes(16);
    const key = own ? await own.key : await deriveKey(this.passphrase, salt, this.logN);
    const c = createCipheriv('chacha20-poly1305', key, NONCE, { authTagLength: 16 });
    const body = Buffer.concat([c.update(fileKey), c.final(), c.getAuthTag()]);
    return [new age.Stanza(['scrypt', b64(salt), String(this.logN)], body)];
  }
}

export class NodeScryptIdentity implements Identity {
  constructor(
    private readonly passphrase: string,
    /** Used when the stanza has its salt and work factor. */
    private readonly ahead?: DerivedKey,
  ) {}

  async unwrapFileKey(stanzas: Stanza[]): Promise<Uint8Array | null> {
    for (const s of stanzas) {
      if (s.args[0] !== 'scrypt') continue;
      if (stanzas.length !== 1) throw new Error('scrypt recipient is not the only one in the header');
      if (s.args.length !== 3 || !/^[1-9][0-9]*$/.test(s.args[2]!)) throw new Error('invalid scrypt stanza');
      const salt = Buffer.from(s.args[1]!, 'base64');
      const logN = Number(s.args[2]);
      if (salt.length !== 16) throw new Error('invalid scrypt stanza');
      if (logN > 20) throw new Error('scrypt work factor is too high');
      if (s.body.length !== 32) throw new Error('invalid scrypt stanza');
      const key = matches(this.ahead, salt, logN) ? await this.ahead.key : await remoteKey(this.passphrase, salt, logN);
      const d = createDecipheriv('chacha20-poly1305', key, NONCE, { authTagLength: 16 });
      d.setAuthTag(Buffer.from(s.body.subarray(16)));
      try {
        return Buffer.concat([d.update(s.body.subarray(0, 16)), d.final()]);
      } catch {
        return null; // a wrong passphrase
      }
    }
    return null;
  }
}

import { createCipheriv, createDecipheriv, randomBytes, scrypt } from 'node:crypto';
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

function deriveKey(passphrase: string, salt: Buffer, logN: number): Promise<Buffer> {
  const N = 2 ** logN;
  return new Promise((resolve, reject) => {
    scrypt(Buffer.from(passphrase, 'utf8'), Buffer.concat([LABEL, salt]), 32, { N, r: 8, p: 1, maxmem: 128 * N * 8 + (32 << 20) }, (err, key) => (err ? reject(err) : resolve(key)));
  });
}

function b64(b: Buffer): string {
  return b.toString('base64').replace(/=+$/, '');
}

export class NodeScryptRecipient implements Recipient {
  constructor(
    private readonly passphrase: string,
    private readonly logN: number,
  ) {}

  async wrapFileKey(fileKey: Uint8Array): Promise<Stanza[]> {
    const age = await loadAge();
    const salt = randomBytes(16);
    const key = await deriveKey(this.passphrase, salt, this.logN);
    const c = createCipheriv('chacha20-poly1305', key, NONCE, { authTagLength: 16 });
    const body = Buffer.concat([c.update(fileKey), c.final(), c.getAuthTag()]);
    return [new age.Stanza(['scrypt', b64(salt), String(this.logN)], body)];
  }
}

export class NodeScryptIdentity implements Identity {
  constructor(private readonly passphrase: string) {}

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
      const key = await deriveKey(this.passphrase, salt, logN);
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

import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { Readable } from 'node:stream';
import { text } from 'node:stream/consumers';
import { pipeline } from 'node:stream/promises';
import { after, describe, test } from 'node:test';
import { newAgeFile, openAgeFile, openingStream, sealingStream } from '../../src/core/store/remote/ageStream';
import { ageSize, EncryptedBackend, loadAge } from '../../src/core/store/remote/encryptedBackend';
import { FolderBackend } from '../../src/core/store/remote/folderBackend';
import { tempDir } from '../fixtures/sqlite';

async function seal(recipient: string, plain: Buffer): Promise<Buffer> {
  const { head, key } = await newAgeFile(recipient);
  const out: Buffer[] = [];
  const s = sealingStream(head, key);
  s.on('data', (c: Buffer) => out.push(c));
  await pipeline(Readable.from(plain.length ? [plain] : []), s);
  return Buffer.concat(out);
}

/** Opens `sealed`, its payload fed in pieces of the sizes `cut` gives (whole by default), as a socket would. */
async function open(identity: string, sealed: Buffer, cut: () => number = () => Infinity, payloadSize?: number): Promise<Buffer> {
  const { key, dataStart } = await openAgeFile(identity, sealed.subarray(0, 1024));
  const out: Buffer[] = [];
  const s = openingStream(key, payloadSize ?? sealed.length - dataStart);
  s.on('data', (c: Buffer) => out.push(c));
  const pieces: Buffer[] = [];
  for (let at = dataStart; at < sealed.length; ) {
    const n = Math.min(sealed.length - at, cut());
    pieces.push(sealed.subarray(at, at + n));
    at += n;
  }
  await pipeline(Readable.from(pieces), s);
  return Buffer.concat(out);
}

const SIZES = [0, 1, 65_535, 65_536, 65_537, 131_072, 200_001];

describe('age payloads sealed with the native cipher are age files', () => {
  const t = tempDir();
  after(() => t.cleanup());

  test('age-encryption opens what ageStream seals, ageStream opens what age-encryption seals, at every chunk boundary', async () => {
    const age = await loadAge();
    const identity = await age.generateX25519Identity();
    const recipient = await age.identityToRecipient(identity);
    for (const n of SIZES) {
      const plain = randomBytes(n);
      const sealed = await seal(recipient, plain);
      assert.equal(sealed.length, ageSize(n), `size of ${n}`);
      const d = new age.Decrypter();
      d.addIdentity(identity);
      assert.ok(Buffer.from(await d.decrypt(sealed)).equals(plain), `age-encryption opens ${n}`);
      const e = new age.Encrypter();
      e.addRecipient(recipient);
      const theirs = Buffer.from(await e.encrypt(plain));
      assert.ok((await open(identity, theirs)).equals(plain), `ageStream opens ${n}`);
    }
  });

  test("Debian's age decrypts a natively sealed file", async () => {
    const age = await loadAge();
    const identity = await age.generateX25519Identity();
    const key = path.join(t.dir, 'key.txt');
    writeFileSync(key, `${identity}\n`);
    const plain = randomBytes(300_000);
    const file = path.join(t.dir, 'x.age');
    writeFileSync(file, await seal(await age.identityToRecipient(identity), plain));
    const r = spawnSync('age', ['-d', '-i', key, '-o', path.join(t.dir, 'x'), file], { encoding: 'utf8' });
    assert.equal(r.status, 0, `age -d (Debian's age package, installed by scripts/servers/setup.sh): ${r.stderr}`);
    assert.ok(readFileSync(path.join(t.dir, 'x')).equals(plain));
  });

  test('a payload opens the same however it is split on the way (pieces straddling chunks, small pieces)', async () => {
    const age = await loadAge();
    const identity = await age.generateX25519Identity();
    const plain = randomBytes(400_000);
    const sealed = await seal(await age.identityToRecipient(identity), plain);
    let seed = 7;
    const rnd = () => (seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31;
    const cuts: Array<[string, () => number]> = [
      ['random pieces up to 100 KB', () => 1 + Math.floor(rnd() * 100_000)],
      ['pieces of 65,551 bytes (one short of a sealed chunk)', () => 65_551],
      ['pieces of 65,553 bytes (one over)', () => 65_553],
      ['pieces of 1,000 bytes', () => 1_000],
    ];
    for (const [what, cut] of cuts) assert.ok((await open(identity, sealed, cut)).equals(plain), what);
    // One byte too many or too few in the stream, split anywhere: refused.
    const sealedPayload = sealed.length - (await openAgeFile(identity, sealed.subarray(0, 1024))).dataStart;
    await assert.rejects(open(identity, Buffer.concat([sealed, Buffer.from([0])]), () => 40_000, sealedPayload), /authentication/);
    await assert.rejects(open(identity, sealed.subarray(0, sealed.length - 1), () => 40_000, sealedPayload), /authentication/);
  });

  test('an altered chunk, a dropped last chunk and a wrong key are refused', async () => {
    const age = await loadAge();
    const identity = await age.generateX25519Identity();
    const sealed = await seal(await age.identityToRecipient(identity), randomBytes(200_000));
    const flipped = Buffer.from(sealed);
    flipped[sealed.length - 70_000] ^= 1;
    await assert.rejects(open(identity, flipped), /fails authentication/);
    const truncated = sealed.subarray(0, sealed.length - (sealed.length - 184) % 65_552);
    await assert.rejects(open(identity, truncated), /authentication|truncated/);
    await assert.rejects(open(await age.generateX25519Identity(), sealed));
  });

  test('EncryptedBackend: ranged reads fetch only their chunks and return exactly the bytes asked for', async () => {
    const age = await loadAge();
    const identity = await age.generateX25519Identity();
    const folder = new FolderBackend(path.join(t.dir, 'remote'));
    await folder.connect({ create: true });
    const enc = new EncryptedBackend(folder, identity, await age.identityToRecipient(identity), async () => t.dir);
    const plain = randomBytes(400_000);
    await enc.put('packs/a.pack', { bytes: plain }, { sha256: '' });
    assert.equal((await enc.stat('packs/a.pack'))?.size, plain.length, 'stat gives the plaintext size');
    assert.equal((await enc.list('packs/'))[0]?.size, plain.length, 'so does a listing');
    assert.ok(Buffer.from(await (await enc.get('packs/a.pack')).toArray().then((c) => Buffer.concat(c as Buffer[]))).equals(plain));
    for (const [offset, length] of [[0, 10], [65_530, 20], [131_072, 65_536], [399_990, 10], [399_990, 100], [12_345, 300_000]] as const) {
      const got = Buffer.concat((await (await enc.get('packs/a.pack', { offset, length })).toArray()) as Buffer[]);
      assert.ok(got.equals(plain.subarray(offset, offset + length)), `range ${offset}+${length}`);
    }
    const raw = readFileSync(path.join(t.dir, 'remote', 'packs', 'a.pack'));
    raw[raw.length - 10] ^= 1;
    writeFileSync(path.join(t.dir, 'remote', 'packs', 'a.pack'), raw);
    await assert.rejects(async () => text(await enc.get('packs/a.pack', { offset: 399_000, length: 10 })), /cannot be decrypted/);
  });
});

/**
 * SftpBackend against a real SFTP server (Debian's rclone `serve sftp` on 127.0.0.1):
 * uploads, ranged downloads, listings, errors, cancellation, sweeping and reconnection,
 * each checked through the backend and, where it matters, on the server's disk.
 */
import assert from 'node:assert/strict';
import { createHash, generateKeyPairSync, randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, openSync, readdirSync, readFileSync, utimesSync, writeFileSync, writeSync, closeSync } from 'node:fs';
import path from 'node:path';
import type { Readable } from 'node:stream';
import { after, before, describe, test } from 'node:test';
import { BackupError } from '../../src/core/errors';
import { SftpBackend, type SftpBackendOptions } from '../../src/core/store/remote/sftpBackend';
import { freePort, startSftp, type SftpServer } from '../fixtures/sftpServer';
import { tempDir } from '../fixtures/sqlite';

async function readAll(s: Readable): Promise<Buffer> {
  const parts: Buffer[] = [];
  for await (const c of s) parts.push(c as Buffer);
  return Buffer.concat(parts);
}

const sha256 = (b: Buffer): string => createHash('sha256').update(b).digest('hex');

/** Every file under `dir`, relative, `/`-separated. */
function filesUnder(dir: string, rel = ''): string[] {
  if (!existsSync(dir)) return [];
  const out: string[] = [];
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const name = rel ? `${rel}/${e.name}` : e.name;
    if (e.isDirectory()) out.push(...filesUnder(path.join(dir, e.name), name));
    else out.push(name);
  }
  return out.sort();
}

/** An RSA client key (PKCS#1 PEM, as ssh2 reads it) and its authorized_keys line. */
function clientKey(passphrase?: string): { pem: string; line: string } {
  const { privateKey, publicKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
  const jwk = publicKey.export({ format: 'jwk' });
  const mpint = (b64: string): Buffer => {
    let b = Buffer.from(b64, 'base64url');
    if (b[0]! & 0x80) b = Buffer.concat([Buffer.from([0]), b]);
    return b;
  };
  const str = (b: Buffer): Buffer => Buffer.concat([Buffer.from([0, 0, 0, 0].map((_, i) => (b.length >>> (24 - 8 * i)) & 0xff)), b]);
  const blob = Buffer.concat([str(Buffer.from('ssh-rsa')), str(mpint(jwk.e!)), str(mpint(jwk.n!))]);
  const pem = privateKey.export(passphrase ? { type: 'pkcs1', format: 'pem', cipher: 'aes-256-cbc', passphrase } : { type: 'pkcs1', format: 'pem' }) as string;
  return { pem, line: `ssh-rsa ${blob.toString('base64')} lifeboat-test` };
}

describe('SftpBackend against rclone serve sftp', () => {
  const t = tempDir('lifeboat-sftp-');
  const serverDir = path.join(t.dir, 'server');
  const key = clientKey();
  const lockedKey = clientKey('open sesame');
  let server: SftpServer;
  const open: SftpBackend[] = [];
  const backend = (o: Partial<SftpBackendOptions> = {}): SftpBackend => {
    const b = new SftpBackend({ host: server.host, port: server.port, username: server.user, password: server.password, root: '/store', knownHosts: { files: [server.knownHosts] }, ...o });
    open.push(b);
    return b;
  };
  /** The server's disk copy of object `name` under the SFTP folder `/store`. */
  const onDisk = (name: string): string => path.join(server.root, 'store', name);

  before(async () => {
    server = await startSftp(serverDir, { authorizedKeys: [key.line, lockedKey.line] });
  });
  after(async () => {
    for (const b of open) await b.close();
    await server?.stop();
    t.cleanup();
  });

  test('a missing folder is notFound naming the URL; connect({create}) makes it, with parents', async () => {
    const b = backend({ root: '/store/deeper/still' });
    await assert.rejects(b.connect(), (e) => {
      assert.ok(BackupError.is(e, 'notFound'), String(e));
      assert.match(e.message, new RegExp(`^sftp://lifeboat@127\\.0\\.0\\.1:${server.port}/store/deeper/still: `));
      return true;
    });
    assert.equal(existsSync(path.join(server.root, 'store')), false, 'a plain connect makes nothing');
    await b.connect({ create: true });
    assert.ok(existsSync(path.join(server.root, 'store', 'deeper', 'still')));
    await b.connect();
    await b.connect({ create: true });
    assert.equal(b.url, `sftp://lifeboat@127.0.0.1:${server.port}/store/deeper/still`);
    assert.doesNotMatch(b.url, /sftp-test-password/);
  });

  test('a 20 MB file goes up and comes back byte-identical, sequentially, with progress', async () => {
    const b = backend();
    await b.connect({ create: true });
    const src = path.join(t.dir, 'big.bin');
    const fd = openSync(src, 'w');
    const hash = createHash('sha256');
    for (let i = 0; i < 20; i++) {
      const chunk = randomBytes(1 << 20);
      hash.update(chunk);
      writeSync(fd, chunk);
    }
    closeSync(fd);
    const digest = hash.digest('hex');
    const size = 20 << 20;
    const seen: number[] = [];
    const t0 = performance.now();
    await b.put('packs/big.bin', { file: src, size }, { sha256: digest, onProgress: (n) => seen.push(n) });
    const upMs = performance.now() - t0;
    assert.equal(seen.at(-1), size, 'progress ends at the size');
    assert.ok(seen.every((n, i) => i === 0 || n > seen[i - 1]!), 'progress only grows');
    assert.equal(sha256(readFileSync(onDisk('packs/big.bin'))), digest, 'the server holds the same bytes');
    const t1 = performance.now();
    const back = await readAll(await b.get('packs/big.bin'));
    const downMs = performance.now() - t1;
    assert.equal(back.length, size);
    assert.equal(sha256(back), digest);
    const st = await b.stat('packs/big.bin');
    assert.equal(st?.name, 'packs/big.bin');
    assert.equal(st?.size, size);
    console.log(`sftp 20 MiB (node ${process.versions.node}): upload ${(upMs / 1000).toFixed(2)} s, download ${(downMs / 1000).toFixed(2)} s (without setNoDelay an upload took 34-50 s)`);
  });

  test('ranged gets return exactly the bytes asked for', async () => {
    const b = backend();
    await b.connect({ create: true });
    const data = randomBytes(300_000);
    await b.put('ranged.bin', { bytes: data }, { sha256: sha256(data) });
    const cases: [number | undefined, number | undefined][] = [
      [0, 10],
      [5, 1],
      [12_345, 100_000],
      [299_990, undefined],
      [100_000, 0],
      [undefined, 65_537],
      [299_999, 1],
    ];
    for (const [offset, length] of cases) {
      const got = await readAll(await b.get('ranged.bin', { offset, length }));
      const from = offset ?? 0;
      const want = data.subarray(from, length === undefined ? undefined : from + length);
      assert.ok(got.equals(want), `offset ${offset} length ${length}: ${got.length} bytes, want ${want.length}`);
    }
    assert.ok((await readAll(await b.get('ranged.bin'))).equals(data));
  });

  test('list finds nested objects by prefix, sorted, and never shows temp files', async () => {
    const b = backend({ root: '/listing' });
    await b.connect({ create: true });
    const names = ['a.json', 'packs/ab/1.pack', 'packs/ab/2.pack', 'packs/cd/3.pack', 'snapshots/s1', 'snapshots/sub/deep/s2'];
    for (const n of names) await b.put(n, { bytes: Buffer.from(n) }, { sha256: sha256(Buffer.from(n)) });
    // What a writer that died leaves behind: only sweep() may see it.
    writeFileSync(path.join(server.root, 'listing', 'packs', 'ab', '3.pack.tmp-4242-0badcafe'), 'partial');
    const all = await b.list('');
    assert.deepEqual(all.map((o) => o.name), names);
    for (const o of all) assert.equal(o.size, Buffer.byteLength(o.name));
    assert.deepEqual((await b.list('packs/')).map((o) => o.name), ['packs/ab/1.pack', 'packs/ab/2.pack', 'packs/cd/3.pack']);
    assert.deepEqual((await b.list('packs/a')).map((o) => o.name), ['packs/ab/1.pack', 'packs/ab/2.pack']);
    assert.deepEqual((await b.list('snapshots/s')).map((o) => o.name), ['snapshots/s1', 'snapshots/sub/deep/s2']);
    assert.deepEqual(await b.list('nothing/here/'), []);
    assert.deepEqual(await b.list('a'), [all[0]]);
  });

  test('put replaces an object and leaves no temp file; stat and delete of a missing object are fine', async () => {
    const b = backend();
    await b.connect({ create: true });
    const one = Buffer.from('one');
    const two = Buffer.from('two, longer');
    await b.put('dir/obj', { bytes: one }, { sha256: sha256(one) });
    await b.put('dir/obj', { bytes: two }, { sha256: sha256(two) });
    assert.ok((await readAll(await b.get('dir/obj'))).equals(two));
    assert.equal((await b.stat('dir/obj'))?.size, two.length);
    assert.deepEqual(readdirSync(path.dirname(onDisk('dir/obj'))), ['obj']);
    const empty = Buffer.alloc(0);
    await b.put('dir/empty', { bytes: empty }, { sha256: sha256(empty) });
    assert.equal((await b.stat('dir/empty'))?.size, 0);
    assert.equal((await readAll(await b.get('dir/empty'))).length, 0);

    assert.equal(await b.stat('dir/missing'), undefined);
    assert.equal(await b.stat('no/such/folder/x'), undefined);
    await b.delete('dir/missing');
    await b.delete('no/such/folder/x');
    await b.delete('dir/obj');
    assert.equal(await b.stat('dir/obj'), undefined);
    assert.equal(existsSync(onDisk('dir/obj')), false);
    await assert.rejects(b.get('dir/obj'), (e) => {
      assert.ok(BackupError.is(e, 'notFound'), String(e));
      assert.match(e.message, new RegExp(`sftp://lifeboat@127\\.0\\.0\\.1:${server.port}/store/dir/obj`));
      return true;
    });
    await assert.rejects(b.stat('../escape'), /not a valid object name/);
  });

  test('a wrong password is unwritable and names the URL; a refused port is io naming host:port', async () => {
    const wrong = backend({ password: 'not-the-password' });
    await assert.rejects(wrong.connect(), (e) => {
      assert.ok(BackupError.is(e, 'unwritable'), String(e));
      assert.equal(e.message, `sftp://lifeboat@127.0.0.1:${server.port}/store: authentication failed (check LIFEBOAT_SFTP_PASSWORD or the key file)`);
      return true;
    });
    const port = await freePort();
    const refused = backend({ port });
    await assert.rejects(refused.stat('x'), (e) => {
      assert.ok(BackupError.is(e, 'io'), String(e));
      assert.ok(e.message.startsWith(`sftp://lifeboat@127.0.0.1:${port}/store: `), e.message);
      assert.match(e.message, new RegExp(`127\\.0\\.0\\.1:${port}`));
      assert.match(e.message, /refused/);
      return true;
    });
  });

  test('key files and host keys: a key authenticates, a wrong passphrase is unwritable, a wrong host key is refused', async () => {
    const keyFile = path.join(t.dir, 'id_rsa');
    writeFileSync(keyFile, key.pem, { mode: 0o600 });
    const byKey = backend({ password: undefined, privateKeyPath: keyFile, hostKeySha256: server.hostKeySha256 });
    await byKey.connect({ create: true });
    const locked = backend({ password: undefined, privateKey: Buffer.from(lockedKey.pem), passphrase: 'open sesame' });
    await locked.connect();
    const badPhrase = backend({ password: undefined, privateKey: Buffer.from(lockedKey.pem), passphrase: 'wrong' });
    await assert.rejects(badPhrase.connect(), (e) => BackupError.is(e, 'unwritable') && e.message.startsWith(`sftp://lifeboat@127.0.0.1:${server.port}/store: `));
    const missingKey = backend({ password: undefined, privateKeyPath: path.join(t.dir, 'no-such-key') });
    await assert.rejects(missingKey.connect(), (e) => BackupError.is(e, 'notFound') && e.message.includes('no-such-key'));
    const otherHost = backend({ hostKeySha256: 'SHA256:' + Buffer.alloc(32, 7).toString('base64').replace(/=+$/, '') });
    await assert.rejects(otherHost.connect(), (e) => {
      assert.ok(BackupError.is(e, 'io'), String(e));
      assert.match(e.message, /host key/);
      assert.ok(e.message.includes(server.hostKeySha256), e.message);
      return true;
    });
  });

  test('bandwidthKiBps limits uploads: 2 MiB at 512 KiB/s takes at least ~3 s, and no more than the limit goes in any stretch', async () => {
    const data = randomBytes(2 << 20);
    const free = backend();
    await free.connect({ create: true });
    const t0 = performance.now();
    await free.put('packs/free.bin', { bytes: data }, { sha256: sha256(data) });
    const freeMs = performance.now() - t0;
    const slow = backend({ bandwidthKiBps: 512 });
    await slow.connect();
    const seen: [number, number][] = [];
    const t1 = performance.now();
    await slow.put('packs/slow.bin', { bytes: data }, { sha256: sha256(data), onProgress: (n) => seen.push([performance.now() - t1, n]) });
    const slowMs = performance.now() - t1;
    assert.equal(sha256(readFileSync(onDisk('packs/slow.bin'))), sha256(data), 'the limited upload arrives intact');
    // One second's worth may go at once; the other 1.5 MiB take 3 s at 512 KiB/s.
    // Only lower bounds: a loaded machine makes any upload slower, never faster than the limit.
    assert.ok(slowMs >= 2700, `2 MiB at 512 KiB/s took only ${Math.round(slowMs)} ms (unlimited: ${Math.round(freeMs)} ms)`);
    // The rate holds throughout, not only on average: by 2 s at most ~1.5 MiB (1 s burst + 1 s) went.
    const at2s = seen.filter(([ms]) => ms <= 2000).pop()?.[1] ?? 0;
    assert.ok(at2s <= 1.6 * (1 << 20), `${at2s} bytes sent within 2 s`);
  });

  test('an upload aborted midway is cancelled, publishes nothing, and sweep(0) leaves no temp file', async () => {
    const b = backend();
    await b.connect({ create: true });
    const data = randomBytes(8 << 20);
    const ac = new AbortController();
    let last = 0;
    await assert.rejects(
      b.put('cancel/me.bin', { bytes: data }, {
        sha256: sha256(data),
        signal: ac.signal,
        onProgress: (n) => {
          last = n;
          if (n >= 1 << 20) ac.abort();
        },
      }),
      (e) => BackupError.is(e, 'cancelled'),
    );
    assert.ok(last >= 1 << 20 && last < data.length, `aborted midway (at ${last})`);
    assert.equal(await b.stat('cancel/me.bin'), undefined);
    assert.deepEqual(await b.list('cancel/'), []);
    await b.sweep(0);
    assert.deepEqual(filesUnder(path.join(server.root, 'store', 'cancel')), [], 'no object and no temp file on the server');
    // Aborted before it starts: nothing is even opened.
    await assert.rejects(b.put('cancel/early', { bytes: data }, { sha256: '', signal: AbortSignal.abort() }), (e) => BackupError.is(e, 'cancelled'));
    assert.deepEqual(filesUnder(path.join(server.root, 'store', 'cancel')), []);
  });

  test('sweep removes stale temp files only, by their age', async () => {
    const b = backend({ root: '/sweeping' });
    await b.connect({ create: true });
    const keep = Buffer.from('kept');
    await b.put('x/real.bin', { bytes: keep }, { sha256: sha256(keep) });
    const dir = path.join(server.root, 'sweeping', 'x');
    mkdirSync(path.join(dir, 'deeper'), { recursive: true });
    const stale = path.join(dir, 'deeper', 'old.bin.tmp-999-0123abcd');
    const fresh = path.join(dir, 'new.bin.tmp-998-89abcdef');
    writeFileSync(stale, 'left by a writer that died');
    writeFileSync(fresh, 'being written');
    const twoHoursAgo = new Date(Date.now() - 2 * 3600_000);
    utimesSync(stale, twoHoursAgo, twoHoursAgo);
    assert.equal(await b.sweep(3600_000), 1);
    assert.equal(existsSync(stale), false);
    assert.equal(existsSync(fresh), true);
    assert.equal(await b.sweep(0), 1);
    assert.deepEqual(filesUnder(path.join(server.root, 'sweeping')), ['x/real.bin']);
    assert.equal(await b.sweep(0), 0);
  });

  test('a connection the server dropped between calls is opened again', async () => {
    const b = backend();
    await b.connect({ create: true });
    const data = Buffer.from('survives a restart');
    await b.put('restart.txt', { bytes: data }, { sha256: sha256(data) });
    const port = server.port;
    await server.stop();
    server = await startSftp(serverDir, { port, authorizedKeys: [key.line, lockedKey.line] });
    assert.equal((await b.stat('restart.txt'))?.size, data.length);
    assert.ok((await readAll(await b.get('restart.txt'))).equals(data));
  });
});

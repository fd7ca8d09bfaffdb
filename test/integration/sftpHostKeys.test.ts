/**
 * SFTP host key checking against a real server (rclone `serve sftp` on 127.0.0.1) and real
 * known_hosts files, some written by OpenSSH's own ssh-keyscan (plain and hashed), and the
 * line that accept-new records read back by OpenSSH's ssh-keygen. Every known_hosts file
 * lives in the test's temp folder: the user's ~/.ssh is never read or written.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { createHash, generateKeyPairSync } from 'node:crypto';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { BackupError } from '../../src/core/errors';
import { HostKeyError, hostKeyFactsOf, hostMatches, parseKnownHosts } from '../../src/core/store/remote/knownHosts';
import { knownHostsFromEnv } from '../../src/core/store/remote/openRemote';
import { SftpBackend, type SftpBackendOptions } from '../../src/core/store/remote/sftpBackend';
import { ensureBuilt, lifeboat } from '../fixtures/cli';
import { startSftp, type SftpServer } from '../fixtures/sftpServer';
import { tempDir } from '../fixtures/sqlite';

/** OpenSSH's tools; the test fails (never skips) without them. */
function openssh(tool: 'ssh-keyscan' | 'ssh-keygen', args: string[]): string {
  const r = spawnSync(tool, args, { encoding: 'utf8' });
  if (r.error) throw new Error(`${tool} is needed by this test (Debian's openssh-client): ${r.error.message}`);
  assert.equal(r.status, 0, `${tool} ${args.join(' ')}: ${r.stderr}`);
  return r.stdout;
}

/** A fresh ed25519 public key blob (SSH wire format), base64: some other server's key. */
function otherEd25519(): string {
  const { publicKey } = generateKeyPairSync('ed25519');
  const raw = Buffer.from(publicKey.export({ format: 'jwk' }).x!, 'base64url');
  const str = (b: Buffer): Buffer => Buffer.concat([Buffer.from([0, 0, 0, b.length]), b]);
  return Buffer.concat([str(Buffer.from('ssh-ed25519')), str(raw)]).toString('base64');
}

describe('SFTP host keys are checked like OpenSSH (known_hosts)', () => {
  const t = tempDir('lifeboat-hostkeys-');
  let server: SftpServer;
  let n = 0;
  const open: SftpBackend[] = [];
  /** A known_hosts file of its own with `text` in it. */
  const hostsFile = (text: string): string => {
    const f = path.join(t.dir, `known_hosts_${++n}`);
    writeFileSync(f, text);
    return f;
  };
  const backend = (files: string[], o: Partial<SftpBackendOptions> = {}): SftpBackend => {
    const b = new SftpBackend({ host: server.host, port: server.port, username: server.user, password: server.password, root: '/store', knownHosts: { files }, ...o });
    open.push(b);
    return b;
  };
  const hostId = (): string => `[127.0.0.1]:${server.port}`;
  const url = (): string => `sftp://lifeboat@127.0.0.1:${server.port}/store`;

  before(async () => {
    server = await startSftp(path.join(t.dir, 'server'));
  });
  after(async () => {
    for (const b of open) await b.close();
    await server?.stop();
    t.cleanup();
  });

  test('a host that ssh-keyscan recorded, plain or hashed, connects', async () => {
    const plain = openssh('ssh-keyscan', ['-p', String(server.port), '-t', 'ed25519', '127.0.0.1']);
    const hashed = openssh('ssh-keyscan', ['-H', '-p', String(server.port), '-t', 'ed25519', '127.0.0.1']);
    assert.match(plain, new RegExp(`^\\[127\\.0\\.0\\.1\\]:${server.port} ssh-ed25519 `, 'm'));
    assert.match(hashed, /^\|1\|/m);
    await backend([hostsFile(`# made by ssh-keyscan\n${plain}`)]).connect({ create: true });
    await backend([path.join(t.dir, 'missing'), hostsFile(hashed)]).connect();
    // Patterns: a wildcard, in a list with other names.
    await backend([hostsFile(`other.example,[127.0.0.?]:${server.port} ssh-ed25519 ${server.hostKeyBase64}\n`)]).connect();
  });

  test('an unknown host is refused in one line with its fingerprint and how to trust it; nothing is written', async () => {
    const empty = hostsFile('');
    const elsewhere = hostsFile(`127.0.0.1 ssh-ed25519 ${server.hostKeyBase64}\n![127.0.0.1]:*,* ssh-ed25519 ${server.hostKeyBase64}\n`);
    for (const f of [empty, elsewhere]) {
      await assert.rejects(backend([f]).connect(), (e) => {
        assert.ok(e instanceof HostKeyError && BackupError.is(e, 'badConfig'), String(e));
        assert.equal(e.hostKey.kind, 'unknown');
        assert.ok(e.message.startsWith(`${url()}: the host ${hostId()} is not known`), e.message);
        assert.ok(e.message.includes(`ssh-ed25519 ${server.hostKeySha256}`), e.message);
        assert.ok(e.message.includes(`ssh-keyscan -p ${server.port} 127.0.0.1 >> ${f}`), e.message);
        assert.ok(e.message.includes(`LIFEBOAT_SFTP_HOST_KEY=${server.hostKeySha256}`), e.message);
        assert.ok(e.message.includes('LIFEBOAT_SFTP_ACCEPT_NEW=1'), e.message);
        assert.doesNotMatch(e.message, /\n/);
        return true;
      });
    }
    assert.equal(readFileSync(empty, 'utf8'), '');
    assert.equal(existsSync(path.join(server.root, 'store2')), false);
  });

  test('a known host offering a different key is refused loudly, naming both fingerprints and the line', async () => {
    const other = otherEd25519();
    const f = hostsFile(`# first line\n[127.0.0.1]:${server.port} ssh-ed25519 ${other}\n`);
    await assert.rejects(backend([f], { root: '/mitm' }).connect({ create: true }), (e) => {
      assert.ok(e instanceof HostKeyError, String(e));
      assert.equal(e.hostKey.kind, 'changed');
      assert.match(e.message, /HOST KEY MISMATCH/);
      assert.match(e.message, /man-in-the-middle/);
      assert.ok(e.message.includes(server.hostKeySha256), e.message);
      assert.ok(e.message.includes(`${f}:2`), e.message);
      const old = parseKnownHosts(readFileSync(f, 'utf8'), f)[0]!;
      assert.ok(e.message.includes(`SHA256:${createHash('sha256').update(old.key).digest('base64').replace(/=+$/, '')}`), e.message);
      return true;
    });
    assert.equal(existsSync(path.join(server.root, 'mitm')), false, 'nothing was done on that server');
    // Even accept-new does not replace a changed key.
    await assert.rejects(backend([f], { knownHosts: { files: [f], acceptNew: true } }).connect(), (e) => hostKeyFactsOf(e)?.kind === 'changed');
  });

  test('a host known only by a key type the server does not offer is a mismatch too', async () => {
    const { publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
    const jwk = publicKey.export({ format: 'jwk' });
    const str = (b: Buffer): Buffer => Buffer.concat([Buffer.from([0, 0, 0, b.length]), b]);
    const point = Buffer.concat([Buffer.from([4]), Buffer.from(jwk.x!, 'base64url'), Buffer.from(jwk.y!, 'base64url')]);
    const blob = Buffer.concat([str(Buffer.from('ecdsa-sha2-nistp256')), str(Buffer.from('nistp256')), str(point)]).toString('base64');
    const f = hostsFile(`[127.0.0.1]:${server.port} ecdsa-sha2-nistp256 ${blob}\n`);
    await assert.rejects(backend([f]).connect(), (e) => {
      assert.equal(hostKeyFactsOf(e)?.kind, 'changed', String(e));
      assert.match((e as Error).message, /HOST KEY MISMATCH.*ecdsa-sha2-nistp256/);
      return true;
    });
  });

  test('a key marked @revoked is refused; a host known only through @cert-authority is refused, saying why', async () => {
    const revoked = hostsFile(`[127.0.0.1]:${server.port} ssh-ed25519 ${server.hostKeyBase64}\n@revoked * ssh-ed25519 ${server.hostKeyBase64}\n`);
    await assert.rejects(backend([revoked]).connect(), (e) => {
      assert.equal(hostKeyFactsOf(e)?.kind, 'revoked', String(e));
      assert.match((e as Error).message, /@revoked/);
      return true;
    });
    const ca = hostsFile(`@cert-authority *.example,[127.0.0.1]:* ssh-ed25519 ${otherEd25519()}\n`);
    await assert.rejects(backend([ca]).connect(), (e) => {
      assert.equal(hostKeyFactsOf(e)?.kind, 'certAuthority', String(e));
      assert.match((e as Error).message, /@cert-authority.*does not check host certificates/);
      return true;
    });
  });

  test('accept-new records a new host (hashed, as ssh-keygen -F finds it) and then holds it to that key', async () => {
    const f = path.join(t.dir, 'fresh', '.ssh', 'known_hosts');
    const policy = knownHostsFromEnv({ LIFEBOAT_SFTP_KNOWN_HOSTS: f, LIFEBOAT_SFTP_ACCEPT_NEW: '1' });
    assert.deepEqual(policy.files, [f]);
    await backend([f], { knownHosts: policy }).connect({ create: true });
    const text = readFileSync(f, 'utf8');
    assert.equal(text.split('\n').filter(Boolean).length, 1);
    assert.match(text, /^\|1\|[^ ]+ ssh-ed25519 /);
    assert.ok(hostMatches(text.split(' ')[0]!, hostId()));
    assert.match(openssh('ssh-keygen', ['-F', hostId(), '-f', f]), /ssh-ed25519/);
    await backend([f], { knownHosts: policy }).connect();
    assert.equal(readFileSync(f, 'utf8'), text, 'a known host is not recorded again');
    // Strict again: the recorded key is what the host is held to.
    await backend([f]).connect();
  });

  test('the environment: LIFEBOAT_SFTP_KNOWN_HOSTS replaces the default files; bad values name the variable', () => {
    assert.deepEqual(knownHostsFromEnv({}).files.slice(1), ['/etc/ssh/ssh_known_hosts']);
    assert.match(knownHostsFromEnv({}).files[0]!, /\.ssh[\\/]known_hosts$/);
    assert.equal(knownHostsFromEnv({}).acceptNew, false);
    assert.throws(() => knownHostsFromEnv({ LIFEBOAT_SFTP_ACCEPT_NEW: 'maybe' }), (e) => BackupError.is(e, 'badConfig') && /^LIFEBOAT_SFTP_ACCEPT_NEW: "maybe"/.test(e.message));
    assert.throws(() => knownHostsFromEnv({ LIFEBOAT_SFTP_KNOWN_HOSTS: 'relative/known_hosts' }), (e) => BackupError.is(e, 'badConfig') && /^LIFEBOAT_SFTP_KNOWN_HOSTS: /.test(e.message));
  });

  test('the CLI refuses an unknown host in one line, and trusts it once LIFEBOAT_SFTP_ACCEPT_NEW=1 recorded it', async () => {
    ensureBuilt();
    const f = path.join(t.dir, 'cli_known_hosts');
    const env = { LIFEBOAT_SFTP_PASSWORD: server.password, LIFEBOAT_SFTP_KNOWN_HOSTS: f, LIFEBOAT_PASSWORD: 'x', LIFEBOAT_SCRYPT_LOG_N: '12' };
    const from = `${url().replace('/store', '/cli')}`;
    const r = await lifeboat(['list', '--from', from], { env });
    assert.equal(r.code, 2, `a setting to make, exit 2: ${r.stderr}`);
    const lines = r.stderr.trim().split('\n');
    assert.equal(lines.length, 1, JSON.stringify(r.stderr));
    assert.match(lines[0]!, new RegExp(`is not known.*${server.hostKeySha256.replace(/[+/]/g, '\\$&')}.*LIFEBOAT_SFTP_HOST_KEY=`));
    assert.equal(existsSync(f), false, 'a refusal writes no known_hosts file');
    const accepted = await lifeboat(['list', '--from', from], { env: { ...env, LIFEBOAT_SFTP_ACCEPT_NEW: '1' } });
    assert.doesNotMatch(accepted.stderr, /not known/);
    assert.match(openssh('ssh-keygen', ['-F', hostId(), '-f', f]), /ssh-ed25519/);
    const strict = await lifeboat(['list', '--from', from], { env });
    assert.doesNotMatch(strict.stderr, /not known|MISMATCH/, strict.stderr);
  });
});

/** known_hosts parsing and matching (the SFTP host key check), on lines written the way OpenSSH writes them. */
import assert from 'node:assert/strict';
import { createHmac, generateKeyPairSync } from 'node:crypto';
import { describe, test } from 'node:test';
import { checkHostKey, fingerprintOf, hostIdOf, hostMatches, offeredAlgorithms, parseKnownHosts } from '../../src/core/store/remote/knownHosts';

function ed25519(): Buffer {
  const raw = Buffer.from(generateKeyPairSync('ed25519').publicKey.export({ format: 'jwk' }).x!, 'base64url');
  const str = (b: Buffer): Buffer => Buffer.concat([Buffer.from([0, 0, 0, b.length]), b]);
  return Buffer.concat([str(Buffer.from('ssh-ed25519')), str(raw)]);
}

describe('known_hosts', () => {
  test('host ids: plain on port 22, [host]:port otherwise, lower-case', () => {
    assert.equal(hostIdOf('NAS.local', 22), 'nas.local');
    assert.equal(hostIdOf('nas.local', 2222), '[nas.local]:2222');
    assert.equal(hostIdOf('::1', 2222), '[::1]:2222');
  });

  test('patterns: lists, * and ?, negation excludes; hashed names match only their host', () => {
    assert.ok(hostMatches('a.example,nas.local', 'nas.local'));
    assert.ok(hostMatches('*.local', 'nas.local'));
    assert.ok(hostMatches('nas.loca?', 'nas.local'));
    assert.ok(!hostMatches('nas.local', '[nas.local]:2222'));
    assert.ok(hostMatches('[nas.local]:2222', '[nas.local]:2222'));
    assert.ok(!hostMatches('*.local,!nas.local', 'nas.local'));
    assert.ok(hostMatches('*.local,!nas.local', 'pi.local'));
    const salt = Buffer.alloc(20, 3);
    const hashed = `|1|${salt.toString('base64')}|${createHmac('sha1', salt).update('[nas.local]:2222').digest('base64')}`;
    assert.ok(hostMatches(hashed, '[nas.local]:2222'));
    assert.ok(!hostMatches(hashed, 'nas.local'));
    assert.ok(!hostMatches('|1|garbage', 'nas.local'));
  });

  test('lines: comments, markers, a key whose type does not match its blob and unknown markers are skipped', () => {
    const k = ed25519().toString('base64');
    const lines = parseKnownHosts(
      ['# comment', '', `nas.local ssh-ed25519 ${k} me@laptop`, `@revoked * ssh-ed25519 ${k}`, `@cert-authority *.local ssh-ed25519 ${k}`, `bad.local ssh-rsa ${k}`, `@weird x ssh-ed25519 ${k}`, 'truncated.local ssh-ed25519', `x ssh-ed25519 not*base64`].join('\r\n'),
      'kh',
    );
    assert.deepEqual(
      lines.map((l) => [l.line, l.marker, l.hosts]),
      [
        [3, undefined, 'nas.local'],
        [4, 'revoked', '*'],
        [5, 'cert-authority', '*.local'],
      ],
    );
  });

  test('decisions: match, mismatch, unknown, accept-new; only recorded key types are offered', () => {
    const key = ed25519();
    const other = ed25519();
    const lines = parseKnownHosts(`[nas.local]:2222 ssh-ed25519 ${key.toString('base64')}\n`, '/h/kh');
    const policy = { files: ['/h/kh'] };
    assert.equal(checkHostKey('sftp://x', 'nas.local', 2222, key, lines, policy).ok, true);
    const changed = checkHostKey('sftp://x', 'nas.local', 2222, other, lines, policy);
    assert.ok(!changed.ok && changed.error.hostKey.kind === 'changed' && changed.error.message.includes(fingerprintOf(other)) && changed.error.message.includes(fingerprintOf(key)));
    const unknown = checkHostKey('sftp://x', 'nas.local', 22, key, lines, policy);
    assert.ok(!unknown.ok && unknown.error.hostKey.kind === 'unknown' && unknown.error.message.includes('ssh-keyscan nas.local >> /h/kh'));
    const added = checkHostKey('sftp://x', 'nas.local', 22, key, lines, { ...policy, acceptNew: true });
    assert.deepEqual(added, { ok: true, added: '/h/kh', keyType: 'ssh-ed25519' });
    assert.deepEqual(offeredAlgorithms(lines), ['ssh-ed25519']);
    assert.equal(offeredAlgorithms([]), undefined);
  });
});

import assert from 'node:assert/strict';
import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { after, describe, test } from 'node:test';
import { BackupError } from '../../src/core/errors';
import { scryptDerivations, scryptStanza } from '../../src/core/store/remote/ageScrypt';
import { FolderBackend } from '../../src/core/store/remote/folderBackend';
import { REMOTE_CONFIG, RemoteStore, type RemoteConfig } from '../../src/core/store/remote/remoteStore';
import { tempDir } from '../fixtures/sqlite';

/**
 * The passphrase's key is derived before the backend connects (remoteStore.ts deriveAhead),
 * with the salt of the key file this machine last saw, or a fresh one for a remote a push
 * creates. What must hold: the ordering (the reason for it: scrypt's 128 MiB is not added to
 * a connected client's memory), that a stale or wrong guess never opens anything it should
 * not and never stops the right passphrase, and that a new key file never reuses a salt.
 */
describe('remote key derived ahead of connecting', () => {
  const t = tempDir();
  const stores: RemoteStore[] = [];
  after(async () => {
    for (const s of stores) rmSync(await s.scratchDir(), { recursive: true, force: true });
    t.cleanup();
  });

  /** A folder remote whose backend records when it connects, and a passphrase that records when it is asked. */
  function remote(root: string, pass: string, events: string[] = []): RemoteStore {
    class Recording extends FolderBackend {
      override connect(o?: { create?: boolean }): Promise<void> {
        events.push('connect');
        return super.connect(o);
      }
    }
    const s = new RemoteStore(new Recording(root), {
      passphrase: {
        source: 'the test',
        get: async () => {
          events.push('passphrase');
          return pass;
        },
      },
      scryptLogN: 10,
      retry: { attempts: 1 },
    });
    stores.push(s);
    return s;
  }
  const config = (root: string) => JSON.parse(readFileSync(path.join(root, ...REMOTE_CONFIG.split('/')), 'utf8')) as RemoteConfig;
  const saltOf = (c: RemoteConfig) => scryptStanza(Buffer.from(c.identity!, 'base64'))!.salt.toString('hex');
  const seenFile = async (s: RemoteStore) => path.join(await s.scratchDir(), 'remote.json');

  test('a push creating a remote derives first; later stores use the salt they saw, before connecting', async () => {
    const root = path.join(t.dir, 'a');
    const events: string[] = [];
    const first = remote(root, 'right', events);
    await first.open();
    await first.writeBytes('note', 'hello');
    assert.deepEqual(events.slice(0, 2), ['passphrase', 'connect'], 'the key of a new remote is derived before connecting');
    assert.equal(events.filter((e) => e === 'passphrase').length, 1, 'the passphrase is asked once');
    assert.deepEqual(JSON.parse(readFileSync(await seenFile(first), 'utf8')), config(root), 'the description is remembered');

    const later: string[] = [];
    const second = remote(root, 'right', later);
    assert.equal((await second.readBytes('note')).toString(), 'hello');
    assert.deepEqual(later, ['passphrase', 'connect']);

    // A wrong passphrase, with the right salt remembered: still one clear error.
    const wrong = remote(root, 'wrong');
    await assert.rejects(wrong.readBytes('note'), (e: unknown) => BackupError.is(e, 'badConfig') && /wrong passphrase \(from the test\)/.test((e as Error).message));
  });

  test('a stale remembered description (the remote made again elsewhere) neither opens nor blocks it', async () => {
    const root = path.join(t.dir, 'b');
    const made = remote(root, 'right');
    await made.open();
    const oldSalt = saltOf(config(root));
    // The remote is wiped and made again with another passphrase, by another machine.
    rmSync(root, { recursive: true, force: true });
    const other = new RemoteStore(new FolderBackend(root), { passphrase: { source: 'elsewhere', get: async () => 'other' }, scryptLogN: 10, retry: { attempts: 1 } });
    const seen = readFileSync(await seenFile(made), 'utf8');
    await other.open();
    writeFileSync(await seenFile(made), seen); // this machine still remembers the old one
    await other.writeBytes('note', 'from elsewhere');
    assert.notEqual(saltOf(config(root)), oldSalt);

    await assert.rejects(remote(root, 'right').readBytes('note'), /wrong passphrase/);
    const ok = remote(root, 'other');
    assert.equal((await ok.readBytes('note')).toString(), 'from elsewhere');
    assert.deepEqual(JSON.parse(readFileSync(await seenFile(ok), 'utf8')), config(root), 'the remembered description is brought up to date');
  });

  test('a remote made again at the same URL gets a new salt, never the remembered one', async () => {
    const root = path.join(t.dir, 'c');
    const salts = new Set<string>();
    for (let i = 0; i < 3; i++) {
      rmSync(root, { recursive: true, force: true });
      const s = remote(root, 'right');
      await s.open();
      salts.add(saltOf(config(root)));
    }
    assert.equal(salts.size, 3, 'each key file has its own salt (its stanza has a fixed nonce)');
  });

  test('a plain remote, once seen, derives no key ahead (its passphrase is never asked)', async () => {
    const root = path.join(t.dir, 'plain');
    const make = new RemoteStore(new FolderBackend(root), { encrypt: false, retry: { attempts: 1 } });
    stores.push(make);
    await make.open();
    await make.writeBytes('note', 'plain');
    const events: string[] = [];
    const again = remote(root, 'unused', events);
    await again.open();
    assert.equal((await again.readBytes('note')).toString(), 'plain');
    assert.deepEqual(events, ['connect'], 'no passphrase asked, no key derived for a plain remote seen before');
  });

  test('a process derives the key of a remote once: later stores opening it (VS Code copies after every backup) derive nothing', async () => {
    const root = path.join(t.dir, 'once');
    const before = scryptDerivations();
    const make = remote(root, 'right');
    await make.open();
    await make.writeBytes('note', 'once');
    assert.equal(scryptDerivations() - before, 1, 'the new remote: one key, for its new key file');
    for (let i = 0; i < 3; i++) assert.equal((await remote(root, 'right').readBytes('note')).toString(), 'once');
    // Forgetting what this machine saw: the store now learns the salt by connecting, and still derives nothing new.
    rmSync(await seenFile(make), { force: true });
    assert.equal((await remote(root, 'right').readBytes('note')).toString(), 'once');
    assert.equal(scryptDerivations() - before, 1, 'four more stores opened it with no derivation');
    // Another passphrase is another key: derived (once), and refused.
    for (let i = 0; i < 2; i++) await assert.rejects(remote(root, 'wrong').readBytes('note'), (e: unknown) => BackupError.is(e, 'badConfig'));
    assert.equal(scryptDerivations() - before, 2, 'the wrong passphrase derived once, refused twice');
  });

  test('a damaged remembered description is ignored', async () => {
    const root = path.join(t.dir, 'd');
    const s = remote(root, 'right');
    await s.open();
    await s.writeBytes('note', 'kept');
    writeFileSync(await seenFile(s), '{"format":"lifeboat-remote","encryption":"age","identity":"not base64 of an age file"}');
    assert.equal((await remote(root, 'right').readBytes('note')).toString(), 'kept');
    writeFileSync(await seenFile(s), 'not json');
    assert.equal((await remote(root, 'right').readBytes('note')).toString(), 'kept');
  });
});

/**
 * Restores from a remote (a folder remote, file://, encrypted and plain): the packs are
 * fetched whole while the image is rebuilt from them, so damage met mid-stream must still
 * refuse the restore, name the pack, and leave nothing at the target nor in the remote's
 * scratch folder. Real databases, real backups and pushes through the engine.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { after, describe, test } from 'node:test';
import { cloneSettings, DEFAULT_SETTINGS, type Settings } from '../../src/core/config';
import { systemClock } from '../../src/core/context';
import { Engine } from '../../src/core/engine';
import { BackupError } from '../../src/core/errors';
import { openRemote, type RemoteSecrets } from '../../src/core/store/remote/openRemote';
import type { RemoteStore } from '../../src/core/store/remote/remoteStore';
import { sqlite, tempDir } from '../fixtures/sqlite';

const t = tempDir('lifeboat-offsite-restore-');
after(() => t.cleanup());

function settings(): Settings {
  return { ...cloneSettings(DEFAULT_SETTINGS), format: 'repository', verifyMode: 'full' };
}
const secrets: RemoteSecrets = { passphrase: { source: 'test', get: async () => 'correct horse' } };
const sha = (b: Uint8Array) => createHash('sha256').update(b).digest('hex');

/** The remote's private scratch folder (remoteStore.ts scratchDir), where fetched copies live. */
const scratchOf = (url: string) => path.join(os.tmpdir(), `lifeboat-remote-${createHash('sha256').update(url).digest('hex').slice(0, 12)}`);
const fetched = (url: string) => (existsSync(scratchOf(url)) ? readdirSync(scratchOf(url)).filter((f) => f.startsWith('fetch.')) : []);

/**
 * A database of a few MB (packs of many 64 KiB chunks) backed up once and pushed to a new
 * folder remote; returns the engine, the remote's URL and folder, and the backup's image hash.
 */
async function pushed(name: string, encrypt: boolean) {
  const dir = path.join(t.dir, name);
  mkdirSync(dir, { recursive: true });
  const engine = new Engine({ clock: systemClock });
  const db = path.join(dir, 'app.db');
  sqlite(db, 'CREATE TABLE b(id INTEGER PRIMARY KEY, x BLOB, s TEXT); WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i+1 FROM n WHERE i < 2500) INSERT INTO b(x, s) SELECT randomblob(900), hex(randomblob(200)) FROM n;');
  const backups = path.join(dir, 'backups');
  const b = await engine.backup(db, { dir: backups, kind: 'manual', settings: settings(), rotate: false });
  assert.equal(b.verified, true);
  const remoteDir = path.join(dir, 'remote');
  const url = pathToFileURL(remoteDir).href;
  const open = (): RemoteStore => openRemote({ url, urlSource: 'test', encrypt }, secrets, { clock: systemClock, scryptLogN: 10 });
  const remote = open();
  try {
    const res = await engine.push(backups, remote, settings());
    assert.equal(res.copied.length, 1, JSON.stringify(res.failed));
  } finally {
    await remote.close();
  }
  return { dir, engine, url, remoteDir, open, manifest: b.record.manifest };
}

/** Restores the remote's only backup to `to` through the engine; closes the remote. */
async function restoreFrom(s: Awaited<ReturnType<typeof pushed>>, to: string) {
  const remote = s.open();
  try {
    const object = (await remote.list('snapshots'))[0]!.name;
    return await s.engine.restore({ store: remote, object }, { to, settings: settings() });
  } finally {
    await remote.close();
  }
}

describe('restore --from a remote while its packs stream in', () => {
  for (const encrypt of [true, false]) {
    test(`${encrypt ? 'encrypted' : 'plain'}: an intact remote restores the image byte for byte; a byte damaged mid-pack is refused, named, and leaves nothing`, async () => {
      const s = await pushed(encrypt ? 'enc' : 'plain', encrypt);
      const to = path.join(s.dir, 'restored.db');
      const ok = await restoreFrom(s, to);
      assert.equal(sha(readFileSync(to)), s.manifest.image.sha256);
      assert.equal(ok.checked.by, 'sha256', 'the backup-time integrity_check covers these bytes');
      assert.deepEqual(fetched(s.url), [], 'no fetched copy left after the remote is closed');

      // The biggest pack, damaged in its middle: met while it streams in, not at its start.
      const packs = readdirSync(path.join(s.remoteDir, 'packs')).map((f) => path.join(s.remoteDir, 'packs', f));
      const pack = packs.reduce((a, b) => (statSync(b).size > statSync(a).size ? b : a));
      assert.ok(statSync(pack).size > 1024 * 1024, `a pack of ${statSync(pack).size} bytes spans many chunks`);
      const bytes = readFileSync(pack);
      bytes[Math.floor(bytes.length * 0.6)] ^= 0x55;
      writeFileSync(pack, bytes);
      const to2 = path.join(s.dir, 'restored-again.db');
      await assert.rejects(restoreFrom(s, to2), (e) => {
        assert.ok(BackupError.is(e, 'badArchive'), String(e));
        assert.ok(e.message.includes(path.basename(pack)), `names the pack: ${e.message}`);
        return true;
      });
      assert.equal(existsSync(to2), false, 'nothing at the target');
      assert.deepEqual(readdirSync(s.dir).filter((f) => f.includes('.lifeboat-restore-')), [], 'no temp file beside the target');
      assert.deepEqual(fetched(s.url), [], 'no fetched copy left');
    });
  }
});

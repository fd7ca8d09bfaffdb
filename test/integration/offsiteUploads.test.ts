import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { Catalog } from '../../src/core/catalog/catalog';
import { systemClock } from '../../src/core/context';
import { DEFAULT_SETTINGS } from '../../src/core/config';
import { BackupError } from '../../src/core/errors';
import { pushBackups } from '../../src/core/offsite/push';
import { runPushJob, type PushJob } from '../../src/core/offsite/pushJob';
import { FolderBackend } from '../../src/core/store/remote/folderBackend';
import type { ObjectBackend } from '../../src/core/store/remote/objectBackend';
import { RemoteStore } from '../../src/core/store/remote/remoteStore';
import { S3Backend } from '../../src/core/store/remote/s3Backend';
import { ensureBuilt, lifeboat } from '../fixtures/cli';
import { makeDb, sqlite, tempDir } from '../fixtures/sqlite';
import { s3Client, startSwift, swiftAvailable, type S3Server } from '../fixtures/swiftServer';

before(() => ensureBuilt());

const ENV = { LIFEBOAT_SCRYPT_LOG_N: '12', LIFEBOAT_PASSWORD: 'correct horse', AWS_CA_BUNDLE: '' } as const;
const passphrase = { get: async () => 'correct horse', source: 'the test' };

/**
 * A local backup folder holding one verified backup that uses `n` packs: a chain of `n`
 * backups (each adds a pack of the pages it changed), then every manifest but the newest
 * removed, so that one push of it uploads all `n` packs.
 */
async function manyPacks(dir: string, n: number): Promise<{ backups: string; packs: string[]; id: string }> {
  mkdirSync(dir, { recursive: true });
  const db = path.join(dir, 'app.db');
  makeDb(db, { rows: 2000, wal: true });
  const backups = path.join(dir, 'backups');
  for (let i = 0; i < n; i++) {
    // Rows of their own each time: every pack keeps pages that the newest backup still uses.
    if (i) sqlite(db, `UPDATE items SET qty = qty + 1 WHERE id BETWEEN ${i * 400 + 1} AND ${i * 400 + 40};`);
    const r = await lifeboat(['backup', db, '--dir', backups], { env: ENV });
    assert.equal(r.code, 0, r.stderr);
  }
  const snaps = readdirSync(path.join(backups, 'snapshots')).filter((f) => f.endsWith('.json')).sort();
  for (const s of snaps.slice(0, -1)) rmSync(path.join(backups, 'snapshots', s));
  const newest = JSON.parse(readFileSync(path.join(backups, 'snapshots', snaps.at(-1)!), 'utf8')) as { id: string; repository: { packs: string[] } };
  assert.equal(newest.repository.packs.length, n, `the newest backup uses ${n} packs`);
  return { backups, packs: newest.repository.packs, id: newest.id };
}

function remoteOn(backend: ObjectBackend): RemoteStore {
  return new RemoteStore(backend, { passphrase, scryptLogN: 10, retry: { attempts: 1 } });
}

describe('off-site copies: packs uploaded several at once', () => {
  const t = tempDir();
  after(() => t.cleanup());

  test('a pack failing with others in flight leaves no manifest on the remote; the next push sends only what is missing', async () => {
    const { backups, packs, id } = await manyPacks(path.join(t.dir, 'folder'), 4);
    const root = path.join(t.dir, 'remote');
    // A folder where the third pack belongs: its upload fails at the rename, whatever runs beside it.
    const blocked = path.join(root, ...packs[2]!.split('/'));
    mkdirSync(path.join(blocked, 'in-the-way'), { recursive: true });
    const local = new Catalog(backups, { clock: systemClock });

    const remote = remoteOn(new FolderBackend(root));
    const first = await pushBackups({ clock: systemClock }, local, remote, { uploads: 3 });
    await remote.close();
    assert.deepEqual(first.copied, []);
    assert.equal(first.failed.length, 1, JSON.stringify(first));
    assert.equal(first.failed[0]!.id, id);
    assert.ok(!existsSync(path.join(root, 'snapshots')) || readdirSync(path.join(root, 'snapshots')).length === 0, 'no manifest without all its packs');
    const there = (p: string): boolean => statSync(path.join(root, ...p.split('/')), { throwIfNoEntry: false })?.isFile() === true;
    // The first three started together; the fourth starts only if one of the others ended before the failure.
    assert.ok(there(packs[0]!) && there(packs[1]!), 'the packs under way beside the failing one were finished, not abandoned');
    const missing = packs.filter((p) => !there(p));
    const listed = JSON.parse((await lifeboat(['list', '--from', `file://${root}`, '--json'], { env: ENV })).stdout) as { backups: unknown[] };
    assert.deepEqual(listed.backups, [], 'the remote lists no backup');

    rmSync(blocked, { recursive: true });
    const again = remoteOn(new FolderBackend(root));
    const second = await pushBackups({ clock: systemClock }, local, again, { uploads: 3 });
    await again.close();
    assert.deepEqual(second.failed, []);
    assert.equal(second.copied.length, 1);
    assert.equal(second.copied[0]!.objects, missing.length + 1, `the ${missing.length} missing packs and the manifest, nothing sent twice`);
    const v = await lifeboat(['verify', '--all', '--from', `file://${root}`], { env: ENV });
    assert.equal(v.code, 0, v.stderr + v.stdout);
    assert.match(v.stdout, /1 ok, 0 damaged/);
  });
});

describe('off-site uploads to S3 (OpenStack Swift with s3api on loopback)', () => {
  const t = tempDir();
  let server: S3Server | undefined;
  before(async () => {
    const why = swiftAvailable();
    if (why) throw new Error(`the S3 tests need Swift: ${why}`);
    server = await startSwift(path.join(t.dir, 'swift'));
    await server.createBucket('uploads');
  });
  after(async () => {
    await server?.stop();
    t.cleanup();
  });
  const backend = (prefix: string): S3Backend =>
    new S3Backend({ bucket: 'uploads', prefix, region: server!.region, endpoint: server!.endpoint, credentials: { accessKeyId: server!.accessKeyId, secretAccessKey: server!.secretAccessKey }, credentialSource: 'the test' });
  const raw = async (key: string): Promise<Buffer> => {
    const { GetObjectCommand } = await import('@aws-sdk/client-s3');
    const c = s3Client(server!);
    try {
      const r = await c.send(new GetObjectCommand({ Bucket: 'uploads', Key: key }));
      return Buffer.from(await r.Body!.transformToByteArray());
    } finally {
      c.destroy();
    }
  };

  test('a streamed body is refused unless it hashes to the SHA-256 it is sent with, and nothing is stored', async () => {
    const b = backend('refused');
    const body = Buffer.alloc(3 << 20, 7);
    const file = path.join(t.dir, 'refused.bin');
    writeFileSync(file, body);
    const sha = createHash('sha256').update(body).digest('hex');
    const wrong = createHash('sha256').update('something else').digest('hex');
    await assert.rejects(b.put('x.bin', { file, size: body.length }, { sha256: wrong }), /^BackupError: s3:\/\/uploads\/refused: uploading failed .*\(HTTP 400\)$/);
    assert.equal(await b.stat('x.bin'), undefined, 'nothing stored');
    await b.put('x.bin', { file, size: body.length }, { sha256: sha });
    assert.equal(await b.recordedSha256('x.bin'), sha);
    assert.ok((await raw('refused/x.bin')).equals(body));
    await b.close();
  });

  test('a copy runs in a worker thread (as VS Code and the CLI run it): errors keep their reason, a cancel stops it with no backup listed, a rerun completes it', async () => {
    const { backups, id } = await manyPacks(path.join(t.dir, 'worker'), 4);
    const url = 's3://uploads/worker';
    const job = (passphrase: string, bandwidthKiBps?: number): PushJob => ({
      dir: backups,
      remote: { url, urlSource: 'the test', endpoint: server!.endpoint, region: server!.region, encrypt: true, bandwidthKiBps },
      secrets: { from: 'values', s3: { credentials: { accessKeyId: server!.accessKeyId, secretAccessKey: server!.secretAccessKey }, source: 'the test' }, passphrase: { value: passphrase, source: 'the test' } },
      settings: DEFAULT_SETTINGS,
      scryptLogN: 10,
    });
    const listed = async (): Promise<string[]> => {
      const b = backend('worker');
      try {
        return (await b.list('')).map((o) => o.name).sort();
      } finally {
        await b.close();
      }
    };

    // Cancelled at its first progress, while its packs upload at 64 KiB/s: rejected as
    // cancelled once the worker has stopped, and no backup is on the remote.
    const stop = new AbortController();
    const phases: string[] = [];
    await assert.rejects(
      runPushJob(job('correct horse', 64), {
        signal: stop.signal,
        onProgress: (p) => {
          phases.push(p.phase);
          stop.abort();
        },
      }),
      (e: unknown) => BackupError.is(e, 'cancelled') && /^s3:\/\/uploads\/worker: copy cancelled/.test((e as Error).message),
    );
    assert.ok(phases.length > 0, 'progress came through from the worker');
    const after = await listed();
    assert.ok(after.includes('.lifeboat/remote.json'), 'the remote was created before the cancel');
    assert.deepEqual(after.filter((n) => n.startsWith('snapshots/')), [], 'no backup listed after a cancelled copy');

    // A wrong passphrase: the worker's BackupError, same reason and message.
    await assert.rejects(runPushJob(job('wrong')), (e: unknown) => BackupError.is(e, 'badConfig') && /^s3:\/\/uploads\/worker: wrong passphrase \(from the test\)/.test((e as Error).message));

    const res = await runPushJob(job('correct horse'));
    assert.deepEqual(res.failed, []);
    assert.deepEqual(res.copied.map((c) => c.id), [id]);
    assert.ok((await listed()).includes(`snapshots/${id}.json`));
  });

  test('an encrypted push sends packs several at once, each object holding the SHA-256 of its bytes', async () => {
    const { backups, packs, id } = await manyPacks(path.join(t.dir, 's3'), 4);
    const remote = remoteOn(backend('enc'));
    const res = await pushBackups({ clock: systemClock }, new Catalog(backups, { clock: systemClock }), remote, {});
    await remote.close();
    assert.deepEqual(res.failed, []);
    assert.deepEqual(res.copied.map((c) => [c.id, c.objects]), [[id, 5]]);
    const b = backend('enc');
    for (const name of [...packs, `snapshots/${id}.json`]) {
      const bytes = await raw(`enc/${name}`);
      assert.equal(await b.recordedSha256(name), createHash('sha256').update(bytes).digest('hex'), `${name}: the recorded SHA-256 is that of the stored bytes`);
      assert.ok(bytes.subarray(0, 22).toString('latin1').startsWith('age-encryption.org/v1'), `${name} is an age file`);
    }
    await b.close();
    const env = { ...ENV, AWS_ACCESS_KEY_ID: server!.accessKeyId, AWS_SECRET_ACCESS_KEY: server!.secretAccessKey, AWS_ENDPOINT_URL: server!.endpoint, AWS_REGION: server!.region };
    const restored = path.join(t.dir, 'restored.db');
    const r = await lifeboat(['restore', 'latest', '--from', 's3://uploads/enc', '--to', restored], { env });
    assert.equal(r.code, 0, r.stderr);
    assert.equal(sqlite(restored, 'PRAGMA integrity_check;').trim(), 'ok');
  });
});

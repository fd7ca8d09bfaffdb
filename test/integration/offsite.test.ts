import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { ensureBuilt, lifeboat, type CliResult } from '../fixtures/cli';
import { dumpHash, makeDb, sqlite, tempDir } from '../fixtures/sqlite';
import { startSftp, type SftpServer } from '../fixtures/sftpServer';
import { s3Client, startSwift, swiftAvailable, type S3Server } from '../fixtures/swiftServer';

before(() => ensureBuilt());

// A cheap scrypt for the remote's key file in tests (the default, 18, costs 1.4 s a time).
const BASE_ENV = { LIFEBOAT_SCRYPT_LOG_N: '12', LIFEBOAT_PASSWORD: 'correct horse', AWS_CA_BUNDLE: '' } as const;

function ok(r: CliResult, what: string): CliResult {
  assert.equal(r.code, 0, `${what}: exit ${r.code}\n${r.stderr}\n${r.stdout}`);
  return r;
}

/** Every file under `dir`, relative, `/`-separated. */
function files(dir: string): string[] {
  const out: string[] = [];
  const walk = (d: string, rel: string): void => {
    for (const e of readdirSync(d, { withFileTypes: true })) {
      const r = rel ? `${rel}/${e.name}` : e.name;
      if (e.isDirectory()) walk(path.join(d, e.name), r);
      else out.push(r);
    }
  };
  if (existsSync(dir)) walk(dir, '');
  return out.sort();
}

/** A database with two verified backups in `dir/backups`: the second after known changes. */
async function twoBackups(dir: string, env: NodeJS.ProcessEnv): Promise<{ db: string; backups: string; hashes: string[] }> {
  mkdirSync(dir, { recursive: true });
  const db = path.join(dir, 'app.db');
  makeDb(db, { rows: 3000, wal: true });
  const backups = path.join(dir, 'backups');
  const hashes: string[] = [];
  ok(await lifeboat(['backup', db, '--dir', backups], { env }), 'first backup');
  hashes.push(dumpHash(db));
  sqlite(db, "UPDATE items SET qty = qty + 1 WHERE id % 50 = 0; DELETE FROM items WHERE id > 2900; INSERT INTO items(name, qty) VALUES ('after', 1);");
  ok(await lifeboat(['backup', db, '--dir', backups], { env }), 'second backup');
  hashes.push(dumpHash(db));
  return { db, backups, hashes };
}

/**
 * The same contract on every kind of remote: push copies what is missing and checks it,
 * a second push sends nothing, the remote alone lists, verifies, restores and exports
 * with no local backup folder, and a wrong passphrase is one clear error that writes nothing.
 */
async function remoteContract(t: { dir: string }, url: string, env: NodeJS.ProcessEnv, raw: () => Promise<string[]>): Promise<void> {
  const { db, backups, hashes } = await twoBackups(t.dir, env);
  const first = JSON.parse(ok(await lifeboat(['push', '--dir', backups, '--to', url, '--json'], { env }), 'push').stdout);
  assert.equal(first.copied.length, 2, 'both verified backups copied');
  assert.equal(first.failed.length, 0);
  assert.equal(first.encrypted, true, 'a new remote is encrypted by default');
  assert.ok(first.copied[1].bytes < first.copied[0].bytes / 2, `the second backup sends only the pages the first did not: ${first.copied[1].bytes} vs ${first.copied[0].bytes} bytes`);
  const objects = await raw();
  assert.ok(objects.includes('.lifeboat/remote.json'), `the remote describes itself: ${objects.join(', ')}`);
  assert.equal(objects.filter((o) => o.startsWith('snapshots/')).length, 2);
  assert.ok(objects.some((o) => o.startsWith('packs/')));

  const again = JSON.parse(ok(await lifeboat(['push', '--dir', backups, '--to', url, '--json'], { env }), 'second push').stdout);
  assert.equal(again.copied.length, 0, 'nothing is sent twice');
  assert.equal(again.present, 2);

  // A disaster: the database and the local backups gone; the remote alone brings it back.
  rmSync(backups, { recursive: true, force: true });
  for (const f of [db, `${db}-wal`, `${db}-shm`]) rmSync(f, { force: true });
  const listed = JSON.parse(ok(await lifeboat(['list', '--from', url, '--json'], { env }), 'list --from').stdout);
  assert.equal(listed.backups.length, 2);
  assert.ok(listed.backups.every((b: { verified: boolean }) => b.verified));
  const v = ok(await lifeboat(['verify', '--all', '--from', url], { env }), 'verify --from');
  assert.match(v.stdout, /2 ok, 0 damaged/);
  ok(await lifeboat(['restore', 'latest', '--from', url, '--to', db], { env }), 'restore --from');
  assert.equal(dumpHash(db), hashes[1], 'the newest backup restored from the remote is the database as it was');
  const older = listed.backups[1].id as string;
  const exported = path.join(t.dir, 'older.db');
  ok(await lifeboat(['export', older, '--from', url, '--to', exported], { env }), 'export --from');
  assert.equal(dumpHash(exported), hashes[0]);

  // A wrong passphrase: one line naming the remote and where the passphrase came from; nothing written.
  const before = await raw();
  const wrong = await lifeboat(['list', '--from', url], { env: { ...env, LIFEBOAT_PASSWORD: 'wrong' } });
  assert.equal(wrong.code, 2);
  assert.match(wrong.stderr, /wrong passphrase \(from LIFEBOAT_PASSWORD\)/);
  assert.ok(wrong.stderr.includes(url), `names ${url}: ${wrong.stderr}`);
  assert.equal(wrong.stderr.trim().split('\n').length, 1, 'one line');
  const db2 = path.join(t.dir, 'other.db');
  makeDb(db2, { rows: 10 });
  ok(await lifeboat(['backup', db2, '--dir', path.join(t.dir, 'b2')], { env }), 'backup of another db');
  const wrongPush = await lifeboat(['push', '--dir', path.join(t.dir, 'b2'), '--to', url], { env: { ...env, LIFEBOAT_PASSWORD: 'wrong' } });
  assert.equal(wrongPush.code, 2, wrongPush.stderr);
  assert.deepEqual(await raw(), before, 'a wrong passphrase writes nothing');
}

const SQLITE_HEADER = Buffer.from('SQLite format 3\0', 'latin1');

describe('off-site copies to a folder (file://)', () => {
  const t = tempDir();
  after(() => t.cleanup());

  test('push, list, verify, restore and export from the remote alone; wrong passphrase changes nothing', async () => {
    const remote = path.join(t.dir, 'remote');
    await remoteContract(t, `file://${remote}`, { ...BASE_ENV }, async () => files(remote));
    // Encrypted at rest: no pack or manifest is readable without the key.
    for (const f of files(remote).filter((x) => x.startsWith('packs/') || x.startsWith('snapshots/'))) {
      const head = readFileSync(path.join(remote, f)).subarray(0, 21).toString('latin1');
      assert.equal(head, 'age-encryption.org/v1', `${f} is an age file`);
    }
    assert.ok(!readFileSync(path.join(remote, '.lifeboat', 'remote.json'), 'utf8').includes('AGE-SECRET-KEY'), 'the key is stored encrypted');
    const all = files(remote);
    assert.ok(all.length > 5);
    for (const f of all) assert.equal(readFileSync(path.join(remote, f)).indexOf(SQLITE_HEADER), -1, `${f} holds no plain SQLite page`);
  });

  test('an interrupted push resumes without sending the packs again; damage on the remote is found', async () => {
    const d = path.join(t.dir, 'resume');
    const env = { ...BASE_ENV };
    const { backups } = await twoBackups(d, env);
    const remote = path.join(d, 'remote');
    ok(await lifeboat(['push', '--dir', backups, '--to', `file://${remote}`], { env }), 'push');
    // A push cut off after the packs and before the manifest: the manifest is missing there.
    const manifests = files(remote).filter((f) => f.startsWith('snapshots/'));
    rmSync(path.join(remote, manifests[1]!));
    const res = JSON.parse(ok(await lifeboat(['push', '--dir', backups, '--to', `file://${remote}`, '--json'], { env }), 'resumed push').stdout);
    assert.equal(res.copied.length, 1);
    assert.equal(res.copied[0].objects, 1, 'only the manifest is sent again');
    // A flipped byte in a pack on the remote: verify --from reports damage (exit 3).
    const pack = files(remote).find((f) => f.startsWith('packs/'))!;
    const p = path.join(remote, pack);
    const bytes = readFileSync(p);
    bytes[Math.floor(bytes.length / 2)] ^= 0xff;
    writeFileSync(p, bytes);
    const v = await lifeboat(['verify', '--all', '--from', `file://${remote}`], { env });
    assert.equal(v.code, 3, v.stdout + v.stderr);
    assert.match(v.stdout, /DAMAGED/);
  });

  test('--no-encrypt makes a plain remote; an .age export opens with the stock age tool', async () => {
    const d = path.join(t.dir, 'plain');
    const env = { ...BASE_ENV, LIFEBOAT_PASSWORD: '' };
    const { backups, hashes } = await twoBackups(d, env);
    const remote = path.join(d, 'remote');
    const noPass = await lifeboat(['push', '--dir', backups, '--to', `file://${remote}`], { env });
    assert.equal(noPass.code, 2, 'a new remote is encrypted unless told otherwise, so without a passphrase push refuses');
    assert.match(noPass.stderr, /no passphrase was given \(set LIFEBOAT_PASSWORD/);
    assert.deepEqual(files(remote).filter((f) => !f.startsWith('.lifeboat/locks')), [], 'and writes nothing');
    ok(await lifeboat(['push', '--dir', backups, '--to', `file://${remote}`, '--no-encrypt'], { env }), 'push --no-encrypt');
    const cfg = JSON.parse(readFileSync(path.join(remote, '.lifeboat', 'remote.json'), 'utf8'));
    assert.equal(cfg.encryption, 'none');
    const pack = files(remote).find((f) => f.startsWith('packs/'))!;
    assert.equal(readFileSync(path.join(remote, pack)).subarray(0, 6).toString('latin1'), 'LBPACK');

    const key = path.join(d, 'key.txt');
    const kg = spawnSync('age-keygen', ['-o', key], { encoding: 'utf8' });
    assert.equal(kg.status, 0, `age-keygen (Debian's age package; scripts/servers/setup.sh installs it): ${kg.stderr}`);
    const recipient = /age1[0-9a-z]+/.exec(readFileSync(key, 'utf8'))![0];
    const out = path.join(d, 'app.db.age');
    ok(await lifeboat(['export', 'latest', '--from', `file://${remote}`, '--to', out], { env: { ...env, LIFEBOAT_AGE_RECIPIENTS: recipient } }), 'export .age');
    const plain = path.join(d, 'decrypted.db');
    const dec = spawnSync('age', ['-d', '-i', key, '-o', plain, out], { encoding: 'utf8' });
    assert.equal(dec.status, 0, dec.stderr);
    assert.equal(dumpHash(plain), hashes[1], 'the stock age tool gives back the database');
  });

  test("two pushes at once to one remote take turns under the remote's lock", async () => {
    const d = path.join(t.dir, 'race');
    const env = { ...BASE_ENV };
    const { backups } = await twoBackups(d, env);
    const url = `file://${path.join(d, 'remote')}`;
    // Both find no remote there and race to create it: one key, one description.
    const [a, b] = await Promise.all([lifeboat(['push', '--dir', backups, '--to', url, '--json'], { env }), lifeboat(['push', '--dir', backups, '--to', url, '--json'], { env })]);
    ok(a, 'first push');
    ok(b, 'second push');
    const copied = JSON.parse(a.stdout).copied.length + JSON.parse(b.stdout).copied.length;
    assert.equal(copied, 2, 'each backup was copied once, by one of the two');
    const l = JSON.parse(ok(await lifeboat(['list', '--from', url, '--json'], { env }), 'list').stdout);
    assert.equal(l.backups.length, 2);
    assert.deepEqual(l.broken, []);
    assert.deepEqual(files(path.join(d, 'remote', '.lifeboat', 'locks')), [], 'both locks released');
    ok(await lifeboat(['verify', '--all', '--from', url], { env }), 'every object opens with the one key');
  });

  test('bad URLs and settings are one clear error naming them', async () => {
    const env = { ...BASE_ENV };
    for (const [url, re] of [
      ['ftp://host/x', /--from: "ftp:\/\/host\/x" is not a supported off-site URL/],
      ['sftp://me:secret@host/x', /has a password in it/],
      ['s3://Bad_Bucket/x', /not a valid bucket name/],
      [`file://${path.join(t.dir, 'nothing-here')}`, /no such folder/],
    ] as const) {
      const r = await lifeboat(['list', '--from', url], { env });
      assert.notEqual(r.code, 0, url);
      assert.match(r.stderr, re);
      assert.equal(r.stderr.trim().split('\n').length, 1, `one line: ${r.stderr}`);
      assert.ok(!r.stderr.includes('secret'), 'a secret in a URL is never echoed');
    }
  });
});

describe('off-site copies: a push killed at every crash point leaves the remote good and resumes', () => {
  const t = tempDir();
  after(() => t.cleanup());

  test('kill -9 before each upload, rename, fsync and delete of a push with remote rotation; the next push finishes the job', async () => {
    const env = { ...BASE_ENV };
    const { db, backups } = await twoBackups(t.dir, env);
    // Remote rotation keeps one backup a day: the push deletes the older backup there, and prune its pack.
    writeFileSync(path.join(t.dir, 'lifeboat.json'), JSON.stringify({ offsite: { retention: { keepWithin: '', daily: 1, weekly: 0, monthly: 0, keepEventBackups: 0 } } }));
    ok(await lifeboat(['backup', db, '--dir', backups, '--kind', 'scheduled'], { env }), 'scheduled backup');
    sqlite(db, "INSERT INTO items(name, qty) VALUES ('third', 3);");
    ok(await lifeboat(['backup', db, '--dir', backups, '--kind', 'scheduled'], { env }), 'second scheduled backup');
    const trace = path.join(t.dir, 'trace.txt');
    const full = path.join(t.dir, 'full');
    ok(await lifeboat(['push', db, '--dir', backups, '--to', `file://${full}`], { env: { ...env, LIFEBOAT_CRASH_TRACE: trace } }), 'traced push');
    const points = readFileSync(trace, 'utf8').trim().split('\n');
    // The copy runs in a worker thread (pushJob.ts): its points are traced as `<op>@worker`.
    const uploads = points.filter((l) => / upload(@worker)? /.test(l)).length;
    assert.ok(uploads >= 5 && points.length > uploads, `the push passes uploads and file operations: ${points.length} points, ${uploads} uploads`);
    const want = JSON.parse(ok(await lifeboat(['list', '--from', `file://${full}`, '--json'], { env }), 'list').stdout).backups.map((b: { id: string }) => b.id).sort();
    assert.equal(want.length, 3, 'rotation on the remote removed one of the two scheduled backups of the day');
    // Every point on the remote (uploads, and the folder's fsyncs, renames and deletes), and
    // every fifth of the local ones (leases, state), which the local crash tests cover.
    const chosen = points.map((l, i) => (l.includes(full) || i % 5 === 0 ? i + 1 : 0)).filter((n) => n > 0);
    assert.ok(chosen.length >= uploads + 5, `${chosen.length} points chosen`);
    let killed = 0;
    for (const n of chosen) {
      const remote = path.join(t.dir, `crash-${n}`);
      const r = await lifeboat(['push', db, '--dir', backups, '--to', `file://${remote}`], { env: { ...env, LIFEBOAT_CRASH_AT: String(n) } });
      if (r.code === null) killed++;
      // Whatever was visible after the crash is whole: every listed backup verifies.
      if (existsSync(path.join(remote, '.lifeboat', 'remote.json'))) {
        const l = JSON.parse(ok(await lifeboat(['list', '--from', `file://${remote}`, '--json'], { env }), `list after crash ${n}`).stdout);
        assert.deepEqual(l.broken, [], `crash ${n}: nothing half-written is listed`);
        if (l.backups.length) ok(await lifeboat(['verify', '--all', '--from', `file://${remote}`], { env }), `verify after crash ${n} (${points[n - 1]})`);
      }
      ok(await lifeboat(['push', db, '--dir', backups, '--to', `file://${remote}`], { env }), `push after crash ${n}`);
      const got = JSON.parse(ok(await lifeboat(['list', '--from', `file://${remote}`, '--json'], { env }), 'list').stdout).backups.map((b: { id: string }) => b.id).sort();
      assert.deepEqual(got, want, `crash ${n} (${points[n - 1]}): the resumed push ends where an uninterrupted one does`);
      rmSync(remote, { recursive: true, force: true });
    }
    assert.equal(killed, chosen.length, 'every chosen crash point was reached and killed the push');
    console.log(`off-site crash test: ${chosen.length} of ${points.length} crash points (${uploads} uploads, every one on the remote), each killed and resumed`);
  });
});

describe('off-site copies to S3 (OpenStack Swift with s3api on loopback)', () => {
  const t = tempDir();
  let server: S3Server | undefined;
  before(async () => {
    const why = swiftAvailable();
    if (why) throw new Error(`the S3 tests need Swift: ${why}`);
    server = await startSwift(path.join(t.dir, 'swift'));
  });
  after(async () => {
    await server?.stop();
    t.cleanup();
  });
  const env = (): NodeJS.ProcessEnv => ({
    ...BASE_ENV,
    AWS_ACCESS_KEY_ID: server!.accessKeyId,
    AWS_SECRET_ACCESS_KEY: server!.secretAccessKey,
    AWS_ENDPOINT_URL: server!.endpoint,
    AWS_REGION: server!.region,
  });
  const keys = async (bucket: string, prefix: string): Promise<string[]> => {
    const { ListObjectsV2Command } = await import('@aws-sdk/client-s3');
    const c = s3Client(server!);
    const out: string[] = [];
    let token: string | undefined;
    do {
      const r = await c.send(new ListObjectsV2Command({ Bucket: bucket, Prefix: `${prefix}/`, ContinuationToken: token }));
      for (const o of r.Contents ?? []) out.push(o.Key!.slice(prefix.length + 1));
      token = r.IsTruncated ? r.NextContinuationToken : undefined;
    } while (token);
    c.destroy();
    return out.filter((k) => !k.startsWith('.lifeboat/locks/')).sort();
  };

  test('the contract, against a strict S3 server', async () => {
    await server!.createBucket('lifeboat-test');
    await remoteContract({ dir: path.join(t.dir, 'contract') }, 's3://lifeboat-test/team/app', env(), () => keys('lifeboat-test', 'team/app'));
  });

  test('wrong credentials, a missing bucket and a refused connection: one line naming the URL and the cause', async () => {
    const wrong = await lifeboat(['list', '--from', 's3://lifeboat-test/team/app'], { env: { ...env(), AWS_SECRET_ACCESS_KEY: 'nope' } });
    assert.equal(wrong.code, 1);
    assert.match(wrong.stderr, /^lifeboat: s3:\/\/lifeboat-test\/team\/app: access denied .*check the credentials \(AWS_ACCESS_KEY_ID\)\n$/);
    const missing = await lifeboat(['list', '--from', 's3://no-such-bucket/x'], { env: env() });
    assert.equal(missing.code, 1);
    assert.match(missing.stderr, /the bucket no-such-bucket does not exist/);
    const refused = await lifeboat(['list', '--from', 's3://lifeboat-test/x'], { env: { ...env(), AWS_ENDPOINT_URL: 'http://127.0.0.1:9' } });
    assert.equal(refused.code, 1);
    assert.match(refused.stderr, /connection refused by http:\/\/127\.0\.0\.1:9/);
    assert.equal(refused.stderr.trim().split('\n').length, 1, refused.stderr);
    // A server that accepts the connection and never answers.
    const silent = net.createServer(() => undefined);
    await new Promise<void>((r) => silent.listen(0, '127.0.0.1', r));
    const port = (silent.address() as net.AddressInfo).port;
    try {
      const slow = await lifeboat(['list', '--from', 's3://lifeboat-test/x'], { env: { ...env(), AWS_ENDPOINT_URL: `http://127.0.0.1:${port}`, LIFEBOAT_OFFSITE_TIMEOUT_MS: '500' } });
      assert.equal(slow.code, 1);
      assert.match(slow.stderr, new RegExp(`^lifeboat: s3://lifeboat-test/x: http://127\\.0\\.0\\.1:${port} timed out while checking the bucket\\n$`));
    } finally {
      silent.close();
    }
  });

  test('no object in the encrypted bucket holds a plain SQLite page', async () => {
    const { GetObjectCommand } = await import('@aws-sdk/client-s3');
    const c = s3Client(server!);
    const names = await keys('lifeboat-test', 'team/app');
    assert.ok(names.length > 5);
    for (const k of names) {
      const r = await c.send(new GetObjectCommand({ Bucket: 'lifeboat-test', Key: `team/app/${k}` }));
      const body = Buffer.from(await r.Body!.transformToByteArray());
      assert.equal(body.indexOf(SQLITE_HEADER), -1, k);
    }
    c.destroy();
  });
});

describe('off-site copies over SFTP (rclone serve sftp on loopback)', () => {
  const t = tempDir();
  let server: SftpServer | undefined;
  before(async () => {
    server = await startSftp(path.join(t.dir, 'sftp'));
  });
  after(async () => {
    await server?.stop();
    t.cleanup();
  });

  test('the contract, over SFTP', async () => {
    const env = { ...BASE_ENV, ...server!.env, LIFEBOAT_SFTP_PASSWORD: server!.password };
    const url = `sftp://${server!.user}@${server!.host}:${server!.port}/offsite/app`;
    const root = path.join(server!.root, 'offsite', 'app');
    await remoteContract({ dir: path.join(t.dir, 'contract') }, url, env, async () => files(root).filter((f) => !f.startsWith('.lifeboat/locks/')));
  });

  test('a push cut by stopping the server mid-upload lists nothing partial and resumes without resending', async () => {
    const d = path.join(t.dir, 'cut');
    const env = { ...BASE_ENV, ...server!.env, LIFEBOAT_SFTP_PASSWORD: server!.password, LIFEBOAT_OFFSITE_TIMEOUT_MS: '2000' };
    mkdirSync(d, { recursive: true });
    const db = path.join(d, 'app.db');
    makeDb(db, { rows: 100 });
    const backups = path.join(d, 'backups');
    ok(await lifeboat(['backup', db, '--dir', backups], { env }), 'small backup');
    const url = `sftp://${server!.user}@${server!.host}:${server!.port}/cut`;
    ok(await lifeboat(['push', '--dir', backups, '--to', url], { env }), 'first push');
    // 40 MB of incompressible rows: a pack that takes a while to upload.
    sqlite(db, 'CREATE TABLE bulk(b BLOB); WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i+1 FROM n WHERE i < 10000) INSERT INTO bulk SELECT randomblob(4000) FROM n;');
    ok(await lifeboat(['backup', db, '--dir', backups], { env }), 'big backup');
    const root = path.join(server!.root, 'cut');
    const push = lifeboat(['push', '--dir', backups, '--to', url, '--json'], { env });
    // Wait on state: a temp file of the pack upload on the server, with bytes in it.
    const deadline = Date.now() + 60_000;
    for (;;) {
      const tmp = files(root).find((f) => /\.tmp-\d+-[0-9a-f]{8}$/.test(f));
      if (tmp && readFileSync(path.join(root, tmp)).length > 0) break;
      assert.ok(Date.now() < deadline, 'the upload never started');
      await new Promise((r) => setTimeout(r, 20));
    }
    const port = server!.port;
    await server!.stop();
    const cut = await push;
    assert.equal(cut.code, 1, `the cut push fails: ${cut.stderr}`);
    assert.match(cut.stderr, new RegExp(`sftp://${server!.user}@127\\.0\\.0\\.1:${port}/cut`));
    server = await startSftp(path.join(t.dir, 'sftp'), { port });
    const listed = JSON.parse(ok(await lifeboat(['list', '--from', url, '--json'], { env }), 'list after the cut').stdout);
    assert.equal(listed.backups.length, 1, 'the cut backup is not listed on the remote');
    const again = JSON.parse(ok(await lifeboat(['push', '--dir', backups, '--to', url, '--json'], { env }), 'resumed push').stdout);
    assert.equal(again.present, 1, 'the first backup is not sent again');
    assert.equal(again.copied.length, 1);
    ok(await lifeboat(['verify', '--all', '--from', url], { env }), 'verify after the resumed push');
  });

  test('a wrong password names the URL and the variable', async () => {
    const r = await lifeboat(['list', '--from', `sftp://${server!.user}@${server!.host}:${server!.port}/offsite/app`], { env: { ...BASE_ENV, ...server!.env, LIFEBOAT_SFTP_PASSWORD: 'nope' } });
    assert.equal(r.code, 1, r.stderr);
    assert.match(r.stderr, /authentication failed.*LIFEBOAT_SFTP_PASSWORD/);
  });
});

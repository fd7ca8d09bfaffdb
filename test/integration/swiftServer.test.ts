/**
 * The real S3 server fixture (test/fixtures/swiftServer.ts) checked against itself: it must
 * behave like S3 where emulators do not (signatures, multipart ETags, unfinished uploads),
 * run beside another instance, and end every process it started. Fails, not skips, when
 * scripts/servers/setup.sh has not been run: the tests that use this server need it.
 */
import {
  AbortMultipartUploadCommand,
  CompleteMultipartUploadCommand,
  CreateMultipartUploadCommand,
  GetObjectCommand,
  HeadBucketCommand,
  ListBucketsCommand,
  ListMultipartUploadsCommand,
  ListPartsCommand,
  PutObjectCommand,
  S3Client,
  S3ServiceException,
  UploadPartCommand,
  type UploadPartCommandOutput,
} from '@aws-sdk/client-s3';
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { s3Client, startSwift, swiftAvailable, SwiftStartError, type S3Server } from '../fixtures/swiftServer';
import { tempDir } from '../fixtures/sqlite';

const md5 = (b: Uint8Array) => createHash('md5').update(b).digest();

/** Resolves with the S3 error a send rejected with; fails when it did not reject. */
async function s3Error(p: Promise<unknown>): Promise<S3ServiceException> {
  try {
    await p;
  } catch (e) {
    assert.ok(e instanceof S3ServiceException, `expected an S3 error, got ${String(e)}`);
    return e;
  }
  assert.fail('the request succeeded; an S3 error was expected');
}

const alive = (pid: number) => {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code !== 'ESRCH';
  }
};

const refused = (endpoint: string) =>
  new Promise<boolean>((resolve) => {
    const u = new URL(endpoint);
    const s = net.connect({ host: u.hostname, port: Number(u.port) });
    s.on('connect', () => {
      s.destroy();
      resolve(false);
    });
    s.on('error', (e: NodeJS.ErrnoException) => resolve(e.code === 'ECONNREFUSED'));
  });

describe('swiftServer: Swift with s3api, a real S3 server for the tests', () => {
  const t = tempDir('lifeboat-swift-');
  let server: S3Server;
  let client: S3Client;
  const bucket = 'lifeboat-selftest';

  before(async () => {
    const missing = swiftAvailable();
    assert.equal(missing, undefined, `the S3 tests need Swift unpacked by scripts/servers/setup.sh: ${missing}`);
    const started = Date.now();
    server = await startSwift(path.join(t.dir, 'a'));
    console.log(`swiftServer: started in ${Date.now() - started} ms at ${server.endpoint}`);
    client = s3Client(server);
    await server.createBucket(bucket);
  });
  after(async () => {
    client?.destroy();
    await server?.stop();
    t.cleanup();
  });

  test('an object put with the SDK reads back byte-identical, its ETag the MD5 of the bytes', async () => {
    const body = randomBytes(1024 * 1024 + 17);
    const put = await client.send(new PutObjectCommand({ Bucket: bucket, Key: 'dir/one.bin', Body: body }));
    assert.equal(put.ETag, `"${md5(body).toString('hex')}"`);
    const got = await client.send(new GetObjectCommand({ Bucket: bucket, Key: 'dir/one.bin' }));
    const bytes = Buffer.from(await got.Body!.transformToByteArray());
    assert.equal(bytes.length, body.length);
    assert.ok(bytes.equals(body), 'the object read back differs from what was put');
    const listed = await client.send(new ListBucketsCommand({}));
    assert.ok(listed.Buckets?.some((b) => b.Name === bucket), 'createBucket made the bucket');
  });

  test('a wrong secret and an unknown access key are refused with 403', async () => {
    const wrongSecret = s3Client(server, { credentials: { accessKeyId: server.accessKeyId, secretAccessKey: 'not-the-secret' } });
    const unknownKey = s3Client(server, { credentials: { accessKeyId: 'lifeboat:nobody', secretAccessKey: server.secretAccessKey } });
    try {
      const e1 = await s3Error(wrongSecret.send(new PutObjectCommand({ Bucket: bucket, Key: 'denied', Body: 'x' })));
      assert.equal(e1.$metadata.httpStatusCode, 403);
      assert.equal(e1.name, 'SignatureDoesNotMatch');
      const e2 = await s3Error(unknownKey.send(new GetObjectCommand({ Bucket: bucket, Key: 'dir/one.bin' })));
      assert.equal(e2.$metadata.httpStatusCode, 403);
      // tempauth answers an unknown user as it answers a wrong secret (S3 says InvalidAccessKeyId).
      assert.equal(e2.name, 'SignatureDoesNotMatch');
      const e3 = await s3Error(client.send(new GetObjectCommand({ Bucket: bucket, Key: 'denied' })));
      assert.equal(e3.name, 'NoSuchKey', 'the refused put stored nothing');
    } finally {
      wrongSecret.destroy();
      unknownKey.destroy();
    }
  });

  test('a multipart upload gets the md5-of-md5s-N ETag and reads back whole; a small part is refused', async () => {
    const parts = [randomBytes(5 * 1024 * 1024), randomBytes(100 * 1024 + 3)];
    const key = 'multi/two-parts.bin';
    const { UploadId } = await client.send(new CreateMultipartUploadCommand({ Bucket: bucket, Key: key }));
    assert.ok(UploadId);
    const done: { ETag: string; PartNumber: number }[] = [];
    for (const [i, body] of parts.entries()) {
      const r: UploadPartCommandOutput = await client.send(new UploadPartCommand({ Bucket: bucket, Key: key, UploadId, PartNumber: i + 1, Body: body }));
      assert.equal(r.ETag, `"${md5(body).toString('hex')}"`);
      done.push({ ETag: r.ETag!, PartNumber: i + 1 });
    }
    const c = await client.send(new CompleteMultipartUploadCommand({ Bucket: bucket, Key: key, UploadId, MultipartUpload: { Parts: done } }));
    const expected = `${md5(Buffer.concat(parts.map(md5))).toString('hex')}-2`;
    assert.equal(c.ETag?.replace(/"/g, ''), expected);
    const got = await client.send(new GetObjectCommand({ Bucket: bucket, Key: key }));
    assert.equal(got.ETag?.replace(/"/g, ''), expected);
    assert.ok(Buffer.from(await got.Body!.transformToByteArray()).equals(Buffer.concat(parts)));

    // Real S3 refuses a part under 5 MiB that is not the last one, at completion.
    const small = await client.send(new CreateMultipartUploadCommand({ Bucket: bucket, Key: 'multi/small.bin' }));
    const smallParts: { ETag: string; PartNumber: number }[] = [];
    for (const n of [1, 2]) {
      const r: UploadPartCommandOutput = await client.send(new UploadPartCommand({ Bucket: bucket, Key: 'multi/small.bin', UploadId: small.UploadId, PartNumber: n, Body: randomBytes(1024) }));
      smallParts.push({ ETag: r.ETag!, PartNumber: n });
    }
    const e = await s3Error(
      client.send(new CompleteMultipartUploadCommand({ Bucket: bucket, Key: 'multi/small.bin', UploadId: small.UploadId, MultipartUpload: { Parts: smallParts } })),
    );
    assert.equal(e.name, 'EntityTooSmall');
    await client.send(new AbortMultipartUploadCommand({ Bucket: bucket, Key: 'multi/small.bin', UploadId: small.UploadId }));
  });

  test('ListMultipartUploads shows an unfinished upload; AbortMultipartUpload removes it', async () => {
    const key = 'multi/unfinished.bin';
    const { UploadId } = await client.send(new CreateMultipartUploadCommand({ Bucket: bucket, Key: key }));
    await client.send(new UploadPartCommand({ Bucket: bucket, Key: key, UploadId, PartNumber: 1, Body: randomBytes(64 * 1024) }));
    const listed = await client.send(new ListMultipartUploadsCommand({ Bucket: bucket }));
    assert.deepEqual(
      (listed.Uploads ?? []).map((u) => [u.Key, u.UploadId]),
      [[key, UploadId]],
    );
    const partsBefore = await client.send(new ListPartsCommand({ Bucket: bucket, Key: key, UploadId }));
    assert.deepEqual(partsBefore.Parts?.map((p) => [p.PartNumber, p.Size]), [[1, 64 * 1024]]);

    await client.send(new AbortMultipartUploadCommand({ Bucket: bucket, Key: key, UploadId }));
    const after = await client.send(new ListMultipartUploadsCommand({ Bucket: bucket }));
    assert.deepEqual(after.Uploads ?? [], []);
    const e = await s3Error(client.send(new ListPartsCommand({ Bucket: bucket, Key: key, UploadId })));
    assert.equal(e.name, 'NoSuchUpload');
    assert.equal((await s3Error(client.send(new GetObjectCommand({ Bucket: bucket, Key: key })))).name, 'NoSuchKey');
  });

  test("AWS_CA_BUNDLE pointing nowhere does not break the SDK's client on this endpoint", async () => {
    const saved = process.env.AWS_CA_BUNDLE;
    process.env.AWS_CA_BUNDLE = path.join(t.dir, 'no-such-bundle.pem');
    const c = s3Client(server);
    try {
      const r = await c.send(new HeadBucketCommand({ Bucket: bucket }));
      assert.equal(r.$metadata.httpStatusCode, 200);
    } finally {
      c.destroy();
      if (saved === undefined) delete process.env.AWS_CA_BUNDLE;
      else process.env.AWS_CA_BUNDLE = saved;
    }
  });

  test('a second server runs beside the first with its own buckets; stop() ends exactly its processes', async () => {
    const second = await startSwift(path.join(t.dir, 'b'));
    let stopped = false;
    try {
      assert.notEqual(second.endpoint, server.endpoint);
      assert.deepEqual(Object.keys(second.pids).sort(), ['account', 'container', 'launcher', 'memcached', 'object', 'proxy']);
      for (const pid of Object.values(second.pids)) assert.ok(alive(pid), `pid ${pid} runs`);
      const c2 = s3Client(second);
      try {
        assert.equal((await s3Error(c2.send(new HeadBucketCommand({ Bucket: bucket })))).$metadata.httpStatusCode, 404);
        await second.createBucket('only-in-second');
        assert.equal((await s3Error(client.send(new HeadBucketCommand({ Bucket: 'only-in-second' })))).$metadata.httpStatusCode, 404);
      } finally {
        c2.destroy();
      }
      await Promise.all([second.stop(), second.stop()]);
      stopped = true;
      for (const [name, pid] of Object.entries(second.pids)) assert.ok(!alive(pid), `${name} (pid ${pid}) still runs after stop()`);
      assert.ok(await refused(second.endpoint), 'the stopped proxy still accepts connections');
      await second.stop();
      // The first server is untouched.
      for (const pid of Object.values(server.pids)) assert.ok(alive(pid), `pid ${pid} of the first server ended`);
      assert.equal((await client.send(new HeadBucketCommand({ Bucket: bucket }))).$metadata.httpStatusCode, 200);
      assert.match(readFileSync(path.join(second.dir, 'logs', 'proxy.log'), 'utf8'), /PUT \/only-in-second/);
    } finally {
      if (!stopped) await second.stop();
    }
  });

  test('a start that cannot finish fails with the tail of every log and leaves nothing running', async () => {
    const dir = path.join(t.dir, 'late');
    let pids: Record<string, number> = {};
    await assert.rejects(startSwift(dir, { deadlineMs: 300 }), (e: Error) => {
      assert.ok(e instanceof SwiftStartError, String(e));
      assert.match(e.message, /Swift did not start in .*late: not ready by the deadline/);
      assert.match(e.message, /--- .*launcher\.log \(last lines\)/);
      pids = e.pids;
      return true;
    });
    assert.ok(pids.launcher > 0, 'the launcher ran');
    for (const [name, pid] of Object.entries(pids)) assert.ok(!alive(pid), `${name} (pid ${pid}) still runs after the failed start`);
    assert.ok(existsSync(path.join(dir, 'logs', 'launcher.log')));
  });
});

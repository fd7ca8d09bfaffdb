import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { Readable } from 'node:stream';
import type { S3Client as S3ClientType } from '@aws-sdk/client-s3';
import { BackupError } from '../../errors';
import { assertObjectName, type ByteRange, type StoredObject } from '../store';
import type { ObjectBackend, PutBody, PutOptions } from './objectBackend';
import { Bandwidth } from './throttle';
import { transient } from './retryBackend';

/** Metadata key of the SHA-256 Lifeboat keeps with every object (multipart ETags are no content hash). */
const SHA_META = 'lifeboat-sha256';
/**
 * Bodies up to this size go in one streamed PUT; larger ones in multipart uploads. Packs hold
 * at most about 64 MiB, so each goes in one request (as rclone sends files below 200 MiB),
 * and a failed one is sent again whole.
 */
const SINGLE_PUT_MAX = 128 * 1024 * 1024;
const PART_SIZE = 8 * 1024 * 1024;

export interface S3Credentials {
  accessKeyId: string;
  secretAccessKey: string;
  sessionToken?: string;
}

export interface S3BackendOptions {
  bucket: string;
  /** Folder inside the bucket, without leading or trailing `/` ('' for the top). */
  prefix: string;
  region: string;
  /** A custom endpoint (MinIO, R2, B2, Swift): path-style addressing, checksums only when required. */
  endpoint?: string;
  /** Resolved by the caller (the CLI's environment, VS Code's SecretStorage); never read here from the instance metadata service. */
  credentials: S3Credentials | (() => Promise<S3Credentials>);
  /** Where the credentials came from, for error messages: "AWS_ACCESS_KEY_ID", "profile default". */
  credentialSource: string;
  bandwidthKiBps?: number;
  /** Per-request timeout, default 120 s (a part of 8 MiB at 1 Mbit/s takes 67 s). */
  requestTimeoutMs?: number;
}

type S3Module = typeof import('./s3Sdk.js');

let sdkModule: Promise<S3Module> | undefined;

/**
 * The SDK, loaded once. Evaluating it takes some 90 ms of one thread here when imported in
 * one piece: a stall of the extension host's event loop as a copy starts. So the packages it
 * is built on are evaluated first, one per turn of the event loop (each import runs only the
 * modules it needs that have not run yet), and the S3 client itself last (about 60 ms of
 * that remains one piece).
 */
function loadSdk(): Promise<S3Module> {
  sdkModule ??= (async () => {
    const stages = [
      () => import('@smithy/core/serde'),
      () => import('@smithy/core/schema'),
      () => import('@smithy/core/protocols'),
      () => import('@smithy/core/client'),
      () => import('@smithy/core/endpoints'),
      () => import('@smithy/core'),
      () => import('@aws-sdk/core/client'),
      () => import('@aws-sdk/checksums/flexible-checksums'),
      () => import('@aws-sdk/middleware-sdk-s3/s3'),
      () => import('@smithy/node-http-handler'),
    ];
    for (const stage of stages) {
      await stage();
      await new Promise((resolve) => setImmediate(resolve));
    }
    return import('./s3Sdk.js');
  })().catch((e: unknown) => {
    sdkModule = undefined;
    throw e;
  });
  return sdkModule;
}

/**
 * Objects in an S3-compatible bucket (AWS, R2, B2, MinIO, Wasabi, Swift's s3api). The SDK is
 * loaded on first use, so the extension's activation does not pay for it. Every upload is
 * checked by the server against a hash (a single PUT against the body's SHA-256, signed as
 * its payload hash; a multipart upload through lib-storage, which aborts what it started
 * when it fails, part by part against each part's), keeps the body's SHA-256 in metadata,
 * and is checked by a HEAD for size and that hash afterwards. The SDK does not retry
 * (`maxAttempts: 1`): `RetryBackend` above it does, for every backend alike.
 */
export class S3Backend implements ObjectBackend {
  readonly url: string;
  readonly label: string;
  private client: S3ClientType | undefined;
  private sdk: S3Module | undefined;
  private loading: Promise<{ client: S3ClientType; sdk: S3Module }> | undefined;
  /** The bandwidth limit, shared by every upload and download at once. */
  private readonly bandwidth: Bandwidth | undefined;

  constructor(private readonly o: S3BackendOptions) {
    this.url = `s3://${o.bucket}${o.prefix ? `/${o.prefix}` : ''}`;
    this.label = o.endpoint ? `${this.url} at ${o.endpoint}` : this.url;
    this.bandwidth = o.bandwidthKiBps ? new Bandwidth(o.bandwidthKiBps) : undefined;
  }

  private key(name: string): string {
    assertObjectName(name);
    return this.o.prefix ? `${this.o.prefix}/${name}` : name;
  }

  private s3(): Promise<{ client: S3ClientType; sdk: S3Module }> {
    if (this.client && this.sdk) return Promise.resolve({ client: this.client, sdk: this.sdk });
    this.loading ??= this.load().finally(() => {
      this.loading = undefined;
    });
    return this.loading;
  }

  private async load(): Promise<{ client: S3ClientType; sdk: S3Module }> {
    // The SDK warns on Node 20 about its releases after January 2027; the version in
    // package-lock.json runs on Node 20, and the warning would land in the CLI's output.
    process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';
    const sdk = await loadSdk();
    const custom = this.o.endpoint !== undefined;
    const client = new sdk.S3Client({
      region: this.o.region,
      endpoint: this.o.endpoint,
      forcePathStyle: custom,
      credentials: this.o.credentials,
      // The CRC32 trailers the SDK adds by default since 3.729 (aws-chunked bodies) get 501
      // from R2, B2 and Swift; AWS itself does not require them.
      requestChecksumCalculation: 'WHEN_REQUIRED',
      responseChecksumValidation: 'WHEN_REQUIRED',
      maxAttempts: 1,
      // Silent: with none the SDK writes a warning of its own to the console when a streamed upload fails.
      logger: { debug: () => undefined, info: () => undefined, warn: () => undefined, error: () => undefined },
      requestHandler: { connectionTimeout: Math.min(10_000, this.o.requestTimeoutMs ?? 10_000), requestTimeout: this.o.requestTimeoutMs ?? 120_000, throwOnRequestTimeout: true },
    });
    this.client = client;
    this.sdk = sdk;
    return { client, sdk };
  }

  /** A BackupError for a failed request, naming the URL, the bucket or the credentials at fault. */
  private fail(e: unknown, doing: string, name?: string): BackupError {
    if (e instanceof BackupError) return e.message.startsWith(this.url) ? e : new BackupError(e.reason, `${this.url}: ${e.message}`, { cause: e });
    const err = e as { name?: string; code?: string; message?: string; $metadata?: { httpStatusCode?: number } };
    const status = err.$metadata?.httpStatusCode;
    const code = err.name ?? err.code ?? '';
    const where = name ? `${this.url}/${name}` : this.url;
    const at = this.o.endpoint ?? `region ${this.o.region}`;
    if (code === 'AbortError' || code === 'RequestAbortedError') return new BackupError('cancelled', 'cancelled', { cause: e });
    if (code === 'NoSuchBucket') return new BackupError('notFound', `${this.url}: the bucket ${this.o.bucket} does not exist (${at})`, { cause: e });
    if (code === 'NoSuchKey' || code === 'NotFound' || status === 404) return new BackupError('notFound', `${where}: no such object (${doing})`, { cause: e });
    if (code === 'InvalidAccessKeyId' || code === 'SignatureDoesNotMatch' || code === 'AccessDenied' || code === 'InvalidToken' || code === 'ExpiredToken' || status === 403 || status === 401) {
      return new BackupError('unwritable', `${this.url}: access denied by ${at} (${code && code !== 'Unknown' ? code : `HTTP ${status}`}) while ${doing}: check the credentials (${this.o.credentialSource})`, { cause: e });
    }
    const net = err.code ?? (e as { cause?: { code?: string } }).cause?.code;
    let msg: string;
    if (net === 'ECONNREFUSED') msg = `${this.url}: connection refused by ${at} while ${doing}`;
    else if (net === 'ENOTFOUND' || net === 'EAI_AGAIN') msg = `${this.url}: the host of ${at} was not found while ${doing}`;
    else if (code === 'TimeoutError' || net === 'ETIMEDOUT' || code === 'RequestTimeout') msg = `${this.url}: ${at} timed out while ${doing}`;
    else msg = `${this.url}: ${doing} failed (${at}): ${code && code !== 'Error' ? `${code}: ` : ''}${err.message ?? String(e)}${status ? ` (HTTP ${status})` : ''}`;
    const out = new BackupError('io', msg, { cause: e });
    if (net || status === undefined || status === 408 || status === 429 || status >= 500 || code === 'RequestTimeout' || code === 'TimeoutError') transient(out);
    return out;
  }

  async connect(o: { create?: boolean } = {}): Promise<void> {
    const { client, sdk } = await this.s3();
    try {
      await client.send(new sdk.HeadBucketCommand({ Bucket: this.o.bucket }));
      return;
    } catch (e) {
      const status = (e as { $metadata?: { httpStatusCode?: number } }).$metadata?.httpStatusCode;
      if (status !== 404 && (e as Error).name !== 'NotFound' && (e as Error).name !== 'NoSuchBucket') throw this.fail(e, 'checking the bucket');
      if (!o.create) throw new BackupError('notFound', `${this.url}: the bucket ${this.o.bucket} does not exist (${this.o.endpoint ?? `region ${this.o.region}`})`, { cause: e });
    }
    try {
      await client.send(new sdk.CreateBucketCommand({ Bucket: this.o.bucket }));
    } catch (e) {
      if ((e as Error).name !== 'BucketAlreadyOwnedByYou') throw this.fail(e, `creating the bucket ${this.o.bucket}`);
    }
  }

  async list(prefix: string): Promise<StoredObject[]> {
    const { client, sdk } = await this.s3();
    const root = this.o.prefix ? `${this.o.prefix}/` : '';
    const out: StoredObject[] = [];
    let token: string | undefined;
    do {
      let page;
      try {
        page = await client.send(new sdk.ListObjectsV2Command({ Bucket: this.o.bucket, Prefix: root + prefix, ContinuationToken: token }));
      } catch (e) {
        throw this.fail(e, 'listing');
      }
      for (const c of page.Contents ?? []) {
        if (!c.Key || !c.Key.startsWith(root)) continue;
        out.push({ name: c.Key.slice(root.length), size: c.Size ?? 0, mtimeMs: c.LastModified?.getTime() ?? 0 });
      }
      token = page.IsTruncated ? page.NextContinuationToken : undefined;
    } while (token);
    return out;
  }

  private async head(name: string): Promise<{ size: number; mtimeMs: number; sha256?: string } | undefined> {
    const { client, sdk } = await this.s3();
    try {
      const h = await client.send(new sdk.HeadObjectCommand({ Bucket: this.o.bucket, Key: this.key(name) }));
      return { size: h.ContentLength ?? 0, mtimeMs: h.LastModified?.getTime() ?? 0, sha256: h.Metadata?.[SHA_META] };
    } catch (e) {
      const f = this.fail(e, 'reading its size', name);
      if (f.reason === 'notFound') return undefined;
      throw f;
    }
  }

  async stat(name: string): Promise<StoredObject | undefined> {
    const h = await this.head(name);
    return h && { name, size: h.size, mtimeMs: h.mtimeMs };
  }

  async recordedSha256(name: string): Promise<string | undefined> {
    return (await this.head(name))?.sha256;
  }

  async get(name: string, range?: ByteRange, o: { signal?: AbortSignal } = {}): Promise<Readable> {
    const { client, sdk } = await this.s3();
    let Range: string | undefined;
    if (range && (range.offset || range.length !== undefined)) {
      const start = range.offset ?? 0;
      if (range.length === 0) return Readable.from([]);
      Range = `bytes=${start}-${range.length !== undefined ? start + range.length - 1 : ''}`;
    }
    try {
      const r = await client.send(new sdk.GetObjectCommand({ Bucket: this.o.bucket, Key: this.key(name), Range }), { abortSignal: o.signal });
      const body = r.Body as Readable | undefined;
      if (!body) return Readable.from([]);
      return this.bandwidth ? body.pipe(this.bandwidth.stream()) : body;
    } catch (e) {
      if (o.signal?.aborted) throw new BackupError('cancelled', 'cancelled', { cause: e });
      const status = (e as { $metadata?: { httpStatusCode?: number } }).$metadata?.httpStatusCode;
      if (status === 416) return Readable.from([]);
      throw this.fail(e, 'downloading', name);
    }
  }

  async put(name: string, body: PutBody, o: PutOptions): Promise<void> {
    if ('bytes' in body) return this.upload(name, body.bytes.length, () => Readable.from([body.bytes]), o, body.bytes);
    return this.upload(name, body.size, () => createReadStream(body.file, { highWaterMark: 1 << 20 }), o);
  }

  /**
   * One upload: a single PUT up to SINGLE_PUT_MAX, streamed, whose signed payload hash is the
   * body's SHA-256 (the server refuses the body unless it hashes to it: Swift, AWS and R2 check
   * `x-amz-content-sha256`), with Content-MD5 too for bodies in memory; larger bodies in a
   * multipart upload whose parts are each signed with their own hash. Then a HEAD for the
   * size and the SHA-256 kept in metadata.
   */
  private async upload(name: string, size: number, open: () => Readable, o: PutOptions, bytes?: Buffer): Promise<void> {
    const { client, sdk } = await this.s3();
    const Key = this.key(name);
    const stream = (): Readable => {
      const s = open();
      return this.bandwidth ? s.pipe(this.bandwidth.stream()) : s;
    };
    const sha256 = o.sha256 || (bytes ? createHash('sha256').update(bytes).digest('hex') : await streamSha256(open()));
    const Metadata = { [SHA_META]: sha256 };
    let body: Readable | undefined;
    try {
      if (size <= SINGLE_PUT_MAX) {
        body = bytes && !this.bandwidth ? undefined : stream();
        const ContentMD5 = bytes ? createHash('md5').update(bytes).digest('base64') : undefined;
        const put = new sdk.PutObjectCommand({ Bucket: this.o.bucket, Key, Body: body ?? bytes, ContentLength: size, ContentMD5, Metadata });
        put.middlewareStack.add(
          (next) => (args) => {
            (args.request as { headers: Record<string, string> }).headers['x-amz-content-sha256'] = sha256;
            return next(args);
          },
          { step: 'build', name: 'lifeboatPayloadSha256' },
        );
        await client.send(put, { abortSignal: o.signal });
        o.onProgress?.(size);
      } else {
        const { Upload } = await import('@aws-sdk/lib-storage');
        body = stream();
        const up = new Upload({
          client,
          params: { Bucket: this.o.bucket, Key, Body: body, Metadata },
          partSize: PART_SIZE,
          queueSize: 2,
          leavePartsOnError: false,
        });
        up.on('httpUploadProgress', (p) => o.onProgress?.(p.loaded ?? 0));
        const abort = () => void up.abort().catch(() => undefined);
        o.signal?.addEventListener('abort', abort, { once: true });
        try {
          await up.done();
        } finally {
          o.signal?.removeEventListener('abort', abort);
        }
      }
    } catch (e) {
      if (o.signal?.aborted) throw new BackupError('cancelled', 'cancelled', { cause: e });
      throw this.fail(e, 'uploading', name);
    } finally {
      // A failed request leaves its body unread: close the file (or end the generator) behind it.
      body?.destroy();
    }
    const h = await this.head(name);
    if (!h) throw transient(new BackupError('io', `${this.url}/${name}: missing right after its upload`));
    if (h.size !== size || h.sha256 !== sha256) {
      throw transient(new BackupError('io', `${this.url}/${name}: the upload did not arrive intact (size ${h.size}, expected ${size}${h.sha256 !== sha256 ? '; SHA-256 differs' : ''})`));
    }
  }

  async delete(name: string): Promise<void> {
    const { client, sdk } = await this.s3();
    try {
      await client.send(new sdk.DeleteObjectCommand({ Bucket: this.o.bucket, Key: this.key(name) }));
    } catch (e) {
      const f = this.fail(e, 'deleting', name);
      if (f.reason !== 'notFound') throw f;
    }
  }

  async sweep(olderThanMs: number): Promise<number> {
    const { client, sdk } = await this.s3();
    const root = this.o.prefix ? `${this.o.prefix}/` : '';
    let removed = 0;
    let KeyMarker: string | undefined;
    let UploadIdMarker: string | undefined;
    const now = Date.now();
    do {
      let page;
      try {
        page = await client.send(new sdk.ListMultipartUploadsCommand({ Bucket: this.o.bucket, Prefix: root, KeyMarker, UploadIdMarker }));
      } catch (e) {
        throw this.fail(e, 'listing unfinished uploads');
      }
      for (const u of page.Uploads ?? []) {
        if (!u.Key || !u.UploadId) continue;
        if (now - (u.Initiated?.getTime() ?? now) < olderThanMs) continue;
        try {
          await client.send(new sdk.AbortMultipartUploadCommand({ Bucket: this.o.bucket, Key: u.Key, UploadId: u.UploadId }));
          removed++;
        } catch (e) {
          const f = this.fail(e, 'aborting an unfinished upload', u.Key);
          if (f.reason !== 'notFound') throw f;
        }
      }
      KeyMarker = page.IsTruncated ? page.NextKeyMarker : undefined;
      UploadIdMarker = page.IsTruncated ? page.NextUploadIdMarker : undefined;
    } while (KeyMarker);
    return removed;
  }

  async close(): Promise<void> {
    this.client?.destroy();
    this.client = undefined;
  }
}

async function streamSha256(s: Readable): Promise<string> {
  const h = createHash('sha256');
  for await (const c of s) h.update(c as Buffer);
  return h.digest('hex');
}

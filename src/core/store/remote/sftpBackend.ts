import { createHash, randomBytes } from 'node:crypto';
import { open as openFile, readFile } from 'node:fs/promises';
import net from 'node:net';
import path from 'node:path';
import { Readable } from 'node:stream';
import type { ServerHostKeyAlgorithm, SFTPWrapper, Stats } from 'ssh2';
import type SftpClientType from 'ssh2-sftp-client';
import { BackupError, fsError } from '../../errors';
import { assertObjectName, type ByteRange, type StoredObject } from '../store';
import type { ObjectBackend, PutBody, PutOptions } from './objectBackend';
import { checkHostKey, defaultKnownHostsFiles, hostIdOf, keyTypeNotOffered, linesFor, offeredAlgorithms, readKnownHosts, recordHostKey, type HostKeyPolicy, type HostKeyVerdict, type KnownHostLine } from './knownHosts';
import { transient } from './retryBackend';

export interface SftpBackendOptions {
  host: string;
  /** Default 22. */
  port?: number;
  username: string;
  /** Absolute path of the backend's folder on the server. */
  root: string;
  password?: string;
  /** A private key file (OpenSSH or PEM), read at each connect. */
  privateKeyPath?: string;
  privateKey?: Buffer;
  passphrase?: string;
  /** Limit for the TCP connect and for the SSH handshake each, default 20 s. */
  readyTimeoutMs?: number;
  /** The server's host key as OpenSSH prints it (`SHA256:base64`, the prefix optional): only that key is accepted, whatever known_hosts says. */
  hostKeySha256?: string;
  /** Without a pinned key: the known_hosts files and whether a new host is recorded; default OpenSSH's files, strict. */
  knownHosts?: HostKeyPolicy;
  /** Upload limit in KiB/s across this backend's uploads (`lifeboat.offsite.bandwidthKiBps`); none when absent or 0. */
  bandwidthKiBps?: number;
}

/** SFTP status codes (draft-ietf-secsh-filexfer-02) that ssh2 puts in `err.code`. */
const NO_SUCH_FILE = 2;
const PERMISSION_DENIED = 3;
/** Bytes read from the body per write request chain; ssh2 sends them as ~32 KiB packets, one after the other. */
const CHUNK = 256 * 1024;
/** The suffix of upload temp files: `<name>.tmp-<pid>-<8 hex>`. */
const TEMP = /\.tmp-\d+-[0-9a-f]{8}$/;

interface Session {
  client: SftpClientType;
  sftp: SFTPWrapper;
  sock: net.Socket;
  closed: boolean;
}

type Callback<T> = (err: Error | null | undefined, value: T) => void;

/** Runs one callback-style SFTP request as a promise. */
function call<T = void>(fn: (cb: Callback<T>) => void): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    try {
      fn((err, value) => (err ? reject(err) : resolve(value)));
    } catch (e) {
      reject(e);
    }
  });
}

/**
 * The bandwidth limit of uploads: a token bucket holding at most one second's worth of
 * bytes, shared by every upload of one backend. `take(n)` waits until `n` bytes fit; a
 * chunk larger than the bucket leaves it in debt, so the average rate holds either way.
 */
class Pace {
  private tokens: number;
  private last = Date.now();
  private queue: Promise<void> = Promise.resolve();

  constructor(private readonly bytesPerSecond: number) {
    this.tokens = bytesPerSecond;
  }

  take(n: number): Promise<void> {
    const turn = this.queue.then(async () => {
      const now = Date.now();
      this.tokens = Math.min(this.bytesPerSecond, this.tokens + ((now - this.last) / 1000) * this.bytesPerSecond);
      this.last = now;
      this.tokens -= n;
      if (this.tokens >= 0) return;
      // Asleep until the debt is paid: the bucket is empty, not refilled by the wait, when it wakes.
      await new Promise((r) => setTimeout(r, Math.ceil((-this.tokens / this.bytesPerSecond) * 1000)));
      this.tokens = 0;
      this.last = Date.now();
    });
    this.queue = turn.catch(() => undefined);
    return turn;
  }
}

function statusCode(e: unknown): unknown {
  return (e as { code?: unknown } | undefined)?.code;
}

/**
 * Objects in a folder on an SFTP server, one file per object. Uploads go to a temp name
 * beside the target (`<name>.tmp-<pid>-<8 hex>`) written strictly in order (servers that
 * stream writes, such as rclone's, refuse out-of-order ones), then take the target's name
 * with posix-rename where the server offers it. SFTP keeps no metadata, so there is no
 * `recordedSha256`; a size check follows every upload.
 *
 * `ssh2-sftp-client` is loaded on the first connect. The TCP socket is made here with
 * Nagle's algorithm off: ssh2's pure-JS path (as in a bundle, without its native addons)
 * otherwise stalls on delayed ACKs (a 23 MB upload took 34 to 50 s instead of 0.8 s). A
 * connection found closed when a call starts is opened again; a call that fails midway is
 * not repeated here (`RetryBackend` does that; its errors are marked transient).
 *
 * The server's host key is checked as ssh checks it (see `knownHosts.ts`): a pinned
 * fingerprint, else known_hosts; a refusal is a `HostKeyError`, never retried. Uploads keep
 * to `bandwidthKiBps` when it is set.
 */
export class SftpBackend implements ObjectBackend {
  readonly url: string;
  readonly label: string;
  private readonly port: number;
  private readonly root: string;
  private session: Session | undefined;
  private opening: Promise<Session> | undefined;
  private readonly pace: Pace | undefined;

  constructor(private readonly o: SftpBackendOptions) {
    if (!o.root.startsWith('/')) throw new BackupError('badConfig', `SFTP folder must be an absolute path: ${JSON.stringify(o.root)}`);
    this.port = o.port ?? 22;
    const root = path.posix.normalize(o.root);
    this.root = root.length > 1 && root.endsWith('/') ? root.slice(0, -1) : root;
    const host = o.host.includes(':') ? `[${o.host}]` : o.host;
    this.url = `sftp://${encodeURIComponent(o.username)}@${host}:${this.port}${this.root}`;
    this.label = this.url;
    if (o.bandwidthKiBps && o.bandwidthKiBps > 0) this.pace = new Pace(o.bandwidthKiBps * 1024);
  }

  private get where(): string {
    return `${this.o.host}:${this.port}`;
  }

  private remote(name: string): string {
    assertObjectName(name);
    return this.root === '/' ? `/${name}` : `${this.root}/${name}`;
  }

  /** A BackupError for a failed request, naming the URL (and the object, when there is one). */
  private fail(e: unknown, doing: string, name?: string): BackupError {
    if (e instanceof BackupError) return e;
    const where = name ? `${this.url}/${name}` : this.url;
    const code = statusCode(e);
    if (code === NO_SUCH_FILE) return new BackupError('notFound', `${where}: no such file (${doing})`, { cause: e });
    if (code === PERMISSION_DENIED) return new BackupError('unwritable', `${where}: permission denied by the server (${doing})`, { cause: e });
    const msg = (e as Error | undefined)?.message ?? String(e);
    const err = new BackupError('io', `${where}: ${doing} failed: ${msg}`, { cause: e });
    // A status from the server is its considered answer; anything else (a dropped or reset
    // connection, "No response from server") is worth another try on a new connection.
    return typeof code === 'number' ? err : transient(err);
  }

  private alive(s: Session | undefined): boolean {
    return !!s && !s.closed && !s.sock.destroyed && s.sock.writable;
  }

  /** The open session, connecting (again) when there is none or the last one was closed. */
  private async sftp(): Promise<SFTPWrapper> {
    if (this.session && this.alive(this.session)) return this.session.sftp;
    if (this.session) {
      const dead = this.session;
      this.session = undefined;
      dead.sock.destroy();
    }
    this.opening ??= this.open().finally(() => (this.opening = undefined));
    this.session = await this.opening;
    return this.session.sftp;
  }

  private async open(): Promise<Session> {
    const timeout = this.o.readyTimeoutMs ?? 20_000;
    let privateKey = this.o.privateKey;
    if (!privateKey && this.o.privateKeyPath) {
      try {
        privateKey = await readFile(this.o.privateKeyPath);
      } catch (e) {
        const f = fsError(e, this.o.privateKeyPath, `reading the private key for ${this.url}`);
        throw new BackupError(f.reason, f.message, { cause: e, path: this.o.privateKeyPath });
      }
    }
    const sock = await this.tcp(timeout);
    const { default: SftpClient } = await import('ssh2-sftp-client');
    const session = { sock, closed: false } as Session;
    const gone = (): void => {
      session.closed = true;
    };
    // The library's default handlers print to the console; core never logs.
    const client = new SftpClient('lifeboat', { error: gone, end: gone, close: gone });
    let lastError: (Error & { level?: string }) | undefined;
    // Prepended, so it sees the original error (with its `level`) before the library rewraps it.
    client.on('error', (e: Error) => (lastError = e));
    let hostKey: string | undefined;
    const expected = this.o.hostKeySha256?.replace(/^SHA256:/i, '').replace(/=+$/, '');
    // Read before connecting: the verifier answers synchronously, and only the key types
    // recorded for this host are offered (as OpenSSH orders them), so that a server with
    // several keys shows the one known_hosts has, not another that would read as a change.
    const policy: HostKeyPolicy = this.o.knownHosts ?? { files: defaultKnownHostsFiles() };
    let known: KnownHostLine[] = [];
    if (!expected) {
      try {
        known = await readKnownHosts(policy.files);
      } catch (e) {
        sock.destroy();
        throw e;
      }
    }
    const serverHostKey = expected ? undefined : offeredAlgorithms(linesFor(known, hostIdOf(this.o.host, this.port)));
    let verdict: HostKeyVerdict | undefined;
    let offered: Buffer | undefined;
    try {
      session.sftp = await client.connect({
        sock,
        host: this.o.host,
        port: this.port,
        username: this.o.username,
        password: this.o.password,
        privateKey,
        passphrase: this.o.passphrase,
        readyTimeout: timeout,
        // Finds a connection that died without a FIN within ~1 min, failing what waits on it.
        keepaliveInterval: 15_000,
        keepaliveCountMax: 4,
        algorithms: serverHostKey ? { serverHostKey: serverHostKey as ServerHostKeyAlgorithm[] } : undefined,
        hostVerifier: (key: Buffer): boolean => {
          hostKey = createHash('sha256').update(key).digest('base64').replace(/=+$/, '');
          if (expected) return hostKey === expected;
          offered = Buffer.from(key);
          verdict = checkHostKey(this.url, this.o.host, this.port, offered, known, policy);
          return verdict.ok;
        },
      });
    } catch (e) {
      sock.destroy();
      void client.end().catch(() => undefined);
      if (verdict && !verdict.ok) throw verdict.error;
      if (!verdict && serverHostKey && /no matching host key/i.test((lastError ?? (e as Error))?.message ?? '')) {
        throw keyTypeNotOffered(this.url, this.o.host, this.port, known, policy);
      }
      throw this.connectError(lastError ?? e, e, hostKey, expected);
    }
    session.client = client;
    if (verdict && 'added' in verdict && offered) {
      // accept-new: recorded only once the server has also let us in, so a failed login leaves nothing behind.
      try {
        await recordHostKey(verdict.added, { hostId: hostIdOf(this.o.host, this.port), keyType: verdict.keyType, key: offered.toString('base64') });
      } catch (e) {
        await client.end().catch(() => undefined);
        sock.destroy();
        throw e;
      }
    }
    return session;
  }

  /** A connected TCP socket with Nagle's algorithm off. */
  private tcp(timeout: number): Promise<net.Socket> {
    return new Promise((resolve, reject) => {
      const sock = net.connect({ host: this.o.host, port: this.port, noDelay: true });
      const timer = setTimeout(() => {
        sock.destroy();
        reject(transient(new BackupError('io', `${this.url}: connecting to ${this.where} timed out after ${timeout} ms`)));
      }, timeout);
      const onError = (e: NodeJS.ErrnoException): void => {
        clearTimeout(timer);
        const why =
          e.code === 'ECONNREFUSED'
            ? `connection refused by ${this.where}`
            : e.code === 'ENOTFOUND' || e.code === 'EAI_AGAIN'
              ? `host ${this.o.host} not found`
              : `cannot connect to ${this.where}: ${e.message}`;
        reject(transient(new BackupError('io', `${this.url}: ${why}`, { cause: e })));
      };
      sock.once('error', onError);
      sock.once('connect', () => {
        clearTimeout(timer);
        sock.off('error', onError);
        sock.setNoDelay(true);
        resolve(sock);
      });
    });
  }

  private connectError(e: unknown, wrapped: unknown, hostKey: string | undefined, expected: string | undefined): BackupError {
    if (e instanceof BackupError) return e;
    const err = e as Error & { level?: string; code?: string };
    if (expected && hostKey !== undefined && hostKey !== expected) {
      return new BackupError('io', `${this.url}: the server's host key is SHA256:${hostKey}, not the expected SHA256:${expected}`, { cause: wrapped });
    }
    if (err.level === 'client-authentication') {
      return new BackupError('unwritable', `${this.url}: authentication failed (check LIFEBOAT_SFTP_PASSWORD or the key file)`, { cause: wrapped });
    }
    if (/privateKey|passphrase/i.test(err.message ?? '')) {
      return new BackupError('unwritable', `${this.url}: cannot use the private key: ${err.message}`, { cause: wrapped });
    }
    if (err.level === 'client-timeout') {
      return transient(new BackupError('io', `${this.url}: ${this.where} did not complete the SSH handshake in time`, { cause: wrapped }));
    }
    return transient(new BackupError('io', `${this.url}: SSH connection to ${this.where} failed: ${err.message ?? String(e)}`, { cause: wrapped }));
  }

  async connect(o: { create?: boolean } = {}): Promise<void> {
    const sftp = await this.sftp();
    let st: Stats | undefined;
    try {
      st = await call<Stats>((cb) => sftp.stat(this.root, cb));
    } catch (e) {
      if (statusCode(e) !== NO_SUCH_FILE) throw this.fail(e, 'checking the folder');
    }
    if (st && !st.isDirectory()) throw new BackupError('notFound', `${this.url}: ${this.root} on ${this.where} is not a folder`);
    if (st) return;
    if (!o.create) throw new BackupError('notFound', `${this.url}: the folder ${this.root} does not exist on ${this.where}`);
    await this.mkdirs(sftp, this.root);
  }

  /** mkdir -p: makes `dir` and any missing parents; an existing folder is fine. */
  private async mkdirs(sftp: SFTPWrapper, dir: string): Promise<void> {
    try {
      await call((cb) => sftp.mkdir(dir, cb));
      return;
    } catch (e) {
      const st = await call<Stats>((cb) => sftp.stat(dir, cb)).catch(() => undefined);
      if (st?.isDirectory()) return;
      const parent = path.posix.dirname(dir);
      if (st || statusCode(e) !== NO_SUCH_FILE || parent === dir) throw this.fail(e, `making the folder ${dir}`);
    }
    await this.mkdirs(sftp, path.posix.dirname(dir));
    try {
      await call((cb) => sftp.mkdir(dir, cb));
    } catch (e) {
      const st = await call<Stats>((cb) => sftp.stat(dir, cb)).catch(() => undefined);
      if (!st?.isDirectory()) throw this.fail(e, `making the folder ${dir}`);
    }
  }

  /** Every regular file under `dir` (relative to the root, `rel` being `dir`'s own name), temp files included. */
  private async walk(sftp: SFTPWrapper, rel: string, out: StoredObject[]): Promise<void> {
    const dir = rel ? this.remote(rel) : this.root;
    let entries: { filename: string; attrs: Stats }[];
    try {
      entries = await call((cb) => sftp.readdir(dir, cb));
    } catch (e) {
      if (statusCode(e) === NO_SUCH_FILE) return;
      throw this.fail(e, `listing ${dir}`);
    }
    const subs: string[] = [];
    for (const { filename, attrs } of entries) {
      if (filename === '.' || filename === '..') continue;
      const name = rel ? `${rel}/${filename}` : filename;
      if (attrs.isDirectory()) subs.push(name);
      else if (attrs.isFile()) out.push({ name, size: attrs.size, mtimeMs: attrs.mtime * 1000 });
    }
    // A few folders at a time: SFTP pipelines requests on one channel.
    for (let i = 0; i < subs.length; i += 8) await Promise.all(subs.slice(i, i + 8).map((s) => this.walk(sftp, s, out)));
  }

  async list(prefix: string): Promise<StoredObject[]> {
    const sftp = await this.sftp();
    const cut = prefix.lastIndexOf('/');
    const start = cut < 0 ? '' : prefix.slice(0, cut);
    if (start) assertObjectName(start);
    const out: StoredObject[] = [];
    await this.walk(sftp, start, out);
    return out.filter((f) => f.name.startsWith(prefix) && !TEMP.test(f.name)).sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  }

  async stat(name: string): Promise<StoredObject | undefined> {
    const file = this.remote(name);
    const sftp = await this.sftp();
    try {
      const st = await call<Stats>((cb) => sftp.stat(file, cb));
      return st.isFile() ? { name, size: st.size, mtimeMs: st.mtime * 1000 } : undefined;
    } catch (e) {
      if (statusCode(e) === NO_SUCH_FILE) return undefined;
      throw this.fail(e, 'reading its size', name);
    }
  }

  async get(name: string, range?: ByteRange, o: { signal?: AbortSignal } = {}): Promise<Readable> {
    const file = this.remote(name);
    if (o.signal?.aborted) throw new BackupError('cancelled', 'cancelled');
    const sftp = await this.sftp();
    // Opened here, so that a missing object fails this call rather than the stream.
    let handle: Buffer;
    try {
      handle = await call<Buffer>((cb) => sftp.open(file, 'r', cb));
    } catch (e) {
      throw this.fail(e, 'downloading', name);
    }
    const start = range?.offset ?? 0;
    if (range?.length === 0) {
      sftp.close(handle, () => undefined);
      return Readable.from([]);
    }
    const end = range?.length !== undefined ? start + range.length - 1 : undefined;
    const src = sftp.createReadStream(file, { handle, start, end, autoClose: true, highWaterMark: CHUNK });
    // The iteration below sees read errors through its own listener. This one catches what
    // comes after it: closing the handle fails when the connection goes first, and an
    // 'error' without a listener would throw from ssh2's callback.
    src.on('error', () => undefined);
    const signal = o.signal;
    const fail = (e: unknown): BackupError => (signal?.aborted ? new BackupError('cancelled', 'cancelled', { cause: e }) : this.fail(e, 'downloading', name));
    async function* chunks(): AsyncGenerator<Buffer> {
      try {
        for await (const c of src) {
          if (signal?.aborted) throw new BackupError('cancelled', 'cancelled');
          yield c as Buffer;
        }
      } catch (e) {
        throw fail(e);
      } finally {
        src.destroy();
      }
    }
    const out = Readable.from(chunks(), { objectMode: false });
    if (signal) {
      const onAbort = (): void => void out.destroy(new BackupError('cancelled', 'cancelled'));
      signal.addEventListener('abort', onAbort, { once: true });
      out.once('close', () => signal.removeEventListener('abort', onAbort));
    }
    return out;
  }

  async put(name: string, body: PutBody, o: PutOptions): Promise<void> {
    const target = this.remote(name);
    const size = 'file' in body ? body.size : body.bytes.length;
    const signal = o.signal;
    const cancelled = (cause?: unknown): BackupError => new BackupError('cancelled', 'cancelled', cause === undefined ? undefined : { cause });
    if (signal?.aborted) throw cancelled();
    const sftp = await this.sftp();
    const temp = `${target}.tmp-${process.pid}-${randomBytes(4).toString('hex')}`;
    let handle: Buffer | undefined;
    let source: Awaited<ReturnType<typeof openFile>> | undefined;
    // Settles when the signal fires, so that a stalled server cannot hold up cancellation.
    let onAbort: (() => void) | undefined;
    const aborted = new Promise<never>((_, reject) => {
      onAbort = () => reject(cancelled());
      signal?.addEventListener('abort', onAbort, { once: true });
    });
    aborted.catch(() => undefined);
    const step = <T>(p: Promise<T>): Promise<T> => (signal ? Promise.race([p, aborted]) : p);
    try {
      try {
        handle = await step(call<Buffer>((cb) => sftp.open(temp, 'w', cb)));
      } catch (e) {
        if (statusCode(e) !== NO_SUCH_FILE) throw e;
        await step(this.mkdirs(sftp, path.posix.dirname(target)));
        handle = await step(call<Buffer>((cb) => sftp.open(temp, 'w', cb)));
      }
      const h = handle;
      const pace = this.pace;
      const write = async (buf: Buffer, len: number, at: number): Promise<void> => {
        if (pace) await step(pace.take(len));
        await step(call<void>((cb) => sftp.write(h, buf, 0, len, at, (err) => cb(err, undefined))));
      };
      let sent = 0;
      if ('bytes' in body) {
        while (sent < size) {
          const n = Math.min(CHUNK, size - sent);
          await write(body.bytes.subarray(sent, sent + n), n, sent);
          sent += n;
          o.onProgress?.(sent);
        }
      } else {
        try {
          source = await openFile(body.file, 'r');
        } catch (e) {
          throw fsError(e, body.file, `reading it to upload as ${this.url}/${name}`);
        }
        const buf = Buffer.allocUnsafe(CHUNK);
        for (;;) {
          const { bytesRead } = await source.read(buf, 0, CHUNK, sent);
          if (bytesRead === 0) break;
          await write(buf, bytesRead, sent);
          sent += bytesRead;
          o.onProgress?.(sent);
        }
      }
      if (signal?.aborted) throw cancelled();
      const written = await step(call<Stats>((cb) => sftp.fstat(h, cb)));
      if (written.size !== size) throw transient(new BackupError('io', `${this.url}/${name}: ${written.size} bytes arrived of ${size}`));
      // Durable before it is published, where the server offers fsync@openssh.com (rclone does not).
      await step(
        new Promise<void>((resolve) => {
          try {
            sftp.ext_openssh_fsync(h, () => resolve());
          } catch {
            resolve();
          }
        }),
      );
      handle = undefined;
      await step(call((cb) => sftp.close(h, cb)));
      await step(this.rename(sftp, temp, target));
    } catch (e) {
      if (handle) sftp.close(handle, () => undefined);
      // Best effort, and briefly: what stays behind (a dead or stalled server) is for sweep().
      if (this.alive(this.session)) {
        let timer: NodeJS.Timeout | undefined;
        await Promise.race([
          call((cb) => sftp.unlink(temp, cb)).catch(() => undefined),
          new Promise((resolve) => (timer = setTimeout(resolve, 5000))),
        ]);
        clearTimeout(timer);
      }
      if (signal?.aborted || BackupError.is(e, 'cancelled')) throw cancelled(e);
      throw this.fail(e, 'uploading', name);
    } finally {
      if (onAbort) signal?.removeEventListener('abort', onAbort);
      await source?.close();
    }
    const st = await this.stat(name);
    if (!st) throw transient(new BackupError('io', `${this.url}/${name}: missing right after its upload`));
    if (st.size !== size) throw transient(new BackupError('io', `${this.url}/${name}: the upload did not arrive intact (size ${st.size}, expected ${size})`));
  }

  /** Gives `temp` the name `target`, replacing it: atomically where the server offers posix-rename. */
  private async rename(sftp: SFTPWrapper, temp: string, target: string): Promise<void> {
    let posix: Promise<void> | undefined;
    try {
      posix = call((cb) => sftp.ext_openssh_rename(temp, target, (err) => cb(err, undefined)));
    } catch {
      // Thrown at once when the server did not announce posix-rename@openssh.com.
    }
    if (posix) return posix;
    try {
      await call((cb) => sftp.rename(temp, target, cb));
    } catch {
      // Plain SFTP rename refuses an existing target: not atomic, a reader may find nothing for a moment.
      await call((cb) => sftp.unlink(target, cb)).catch((e) => {
        if (statusCode(e) !== NO_SUCH_FILE) throw e;
      });
      await call((cb) => sftp.rename(temp, target, cb));
    }
  }

  async delete(name: string): Promise<void> {
    const file = this.remote(name);
    const sftp = await this.sftp();
    try {
      await call((cb) => sftp.unlink(file, cb));
    } catch (e) {
      if (statusCode(e) !== NO_SUCH_FILE) throw this.fail(e, 'deleting', name);
    }
  }

  /**
   * Removes upload temp files whose modification time (the server's clock) is at least
   * `olderThanMs` before now (this machine's clock): a skew between the two shifts every
   * age by that much, so keep `olderThanMs` well above it. A temp file being written has a
   * fresh time (each write touches it), so a generous age never removes a live upload.
   */
  async sweep(olderThanMs: number): Promise<number> {
    const sftp = await this.sftp();
    const all: StoredObject[] = [];
    await this.walk(sftp, '', all);
    const now = Date.now();
    let removed = 0;
    for (const f of all) {
      if (!TEMP.test(f.name) || now - f.mtimeMs < olderThanMs) continue;
      try {
        await call((cb) => sftp.unlink(this.remote(f.name), cb));
        removed++;
      } catch (e) {
        if (statusCode(e) !== NO_SUCH_FILE) throw this.fail(e, 'removing a stale upload', f.name);
      }
    }
    return removed;
  }

  async close(): Promise<void> {
    const pending = this.opening;
    if (pending) await pending.catch(() => undefined);
    const s = this.session;
    this.session = undefined;
    if (!s) return;
    try {
      if (this.alive(s)) await s.client.end();
    } catch {
      // Closing a connection that is going away anyway.
    } finally {
      s.sock.destroy();
    }
  }
}

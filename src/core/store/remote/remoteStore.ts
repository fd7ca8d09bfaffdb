import { createHash, randomBytes, randomUUID } from 'node:crypto';
import { createReadStream, createWriteStream, promises as fs, readFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { LogEntry } from '../../catalog/backupLog';
import type { LockOptions } from '../../catalog/lock';
import { systemClock, type Clock } from '../../context';
import { BackupError } from '../../errors';
import { crashPoint } from '../../faults';
import { processAlive, processStartId } from '../../processInfo';
import { assertObjectName, type BackupStore, type ByteRange, type StoredObject, type StoreLog } from '../store';
import { NodeScryptIdentity, NodeScryptRecipient } from './ageScrypt';
import { EncryptedBackend, loadAge } from './encryptedBackend';
import type { ObjectBackend } from './objectBackend';
import { RetryBackend, type RetryOptions } from './retryBackend';

/** The remote's description, always in plain text: what it is and how it is encrypted. */
export const REMOTE_CONFIG = '.lifeboat/remote.json';
const LOCKS = '.lifeboat/locks';
const LOG = '.lifeboat/log';
/**
 * This machine, for telling whether a lock's holder ran here: systemd's machine id where
 * there is one (host names repeat: every dev container may be called the same), else the
 * host name with the user's home folder.
 */
const MACHINE = ((): string => {
  for (const f of ['/etc/machine-id', '/var/lib/dbus/machine-id']) {
    try {
      const id = readFileSync(f, 'utf8').trim();
      if (id) return createHash('sha256').update(id).digest('hex').slice(0, 16);
    } catch {
      // not Linux, or no id
    }
  }
  return createHash('sha256').update(`${os.hostname()}\0${os.homedir()}`).digest('hex').slice(0, 16);
})();

/** Bytes of fetched objects kept after their readers are done (see prepareRead). */
const FETCH_KEEP_BYTES = 2 * 1024 * 1024 * 1024;

export interface RemoteConfig {
  format: 'lifeboat-remote';
  version: 1;
  created: string;
  encryption: 'none' | 'age';
  /** age: the remote's X25519 recipient, and its secret key as an age file (base64) encrypted with the passphrase. */
  recipient?: string;
  identity?: string;
}

/** Where the passphrase comes from, asked only when the remote is (or will be) encrypted. */
export interface Passphrase {
  get(): Promise<string>;
  /** Names the source in errors: "LIFEBOAT_PASSWORD", "the passphrase in VS Code's secret storage". */
  source: string;
}

export interface RemoteStoreOptions {
  clock?: Clock;
  passphrase?: Passphrase;
  /** For a remote that does not exist yet: encrypt it (default true). */
  encrypt?: boolean;
  retry?: RetryOptions;
  lock?: LockOptions;
  /** scrypt work factor (log2) for the key file, default 17 (128 MiB, about 0.6 s here). */
  scryptLogN?: number;
  /** Unfinished uploads older than this are a dead writer's and are removed by `open()`; default a day. */
  sweepAfterMs?: number;
}

/**
 * A `BackupStore` on an off-site `ObjectBackend` (S3, SFTP, a folder): the same objects as a
 * local store (`snapshots/`, `packs/`, zips, `.lifeboat/`), so that the same formats, the
 * same catalog and the same verification read it. It adds what a bare object store lacks:
 * - a description (`.lifeboat/remote.json`, plain) saying whether the remote is encrypted,
 *   and with what key; every other object is an age file when it is;
 * - a lock made of lock objects (restic's design: write yours, list, back off when another
 *   live one is there); staleness is judged by the server's clock (object times), so a
 *   laptop's skewed clock does not break another machine's lock; a lock of a process of
 *   this machine that is gone is broken at once. Lock objects are not encrypted (a host
 *   name, a pid and a time), so that the lock also guards the creation of the remote;
 * - a log of one object per entry (an object store cannot append);
 * - retries of transient failures (RetryBackend), and a local scratch folder.
 */
export class RemoteStore implements BackupStore {
  readonly url: string;
  readonly label: string;
  readonly log: StoreLog;
  private readonly clock: Clock;
  private readonly raw: ObjectBackend;
  private objects: ObjectBackend | undefined;
  private config: RemoteConfig | undefined;
  private attaching: Promise<void> | undefined;
  private scratch: string | undefined;
  /** Unfinished uploads the last `open()` removed. */
  swept = 0;
  /** Objects fetched whole for reading (prepareRead): local plain copies, pinned while in use. */
  private readonly fetched = new Map<string, { file: string; size: number; pins: number; ready: Promise<void> }>();

  constructor(
    backend: ObjectBackend,
    private readonly o: RemoteStoreOptions = {},
  ) {
    this.raw = new RetryBackend(backend, o.retry);
    this.url = backend.url;
    this.label = backend.label;
    this.clock = o.clock ?? systemClock;
    this.log = new RemoteLog(this);
  }

  /** The remote's description once attached. */
  get description(): RemoteConfig | undefined {
    return this.config;
  }

  get encrypted(): boolean {
    return this.config?.encryption === 'age';
  }

  /** Connects to an existing remote and reads its description; BackupError 'notFound' when there is none. */
  private attach(create: boolean): Promise<void> {
    if (this.objects) return Promise.resolve();
    this.attaching ??= this.doAttach(create).finally(() => {
      this.attaching = undefined;
    });
    return this.attaching;
  }

  private async doAttach(create: boolean): Promise<void> {
    await this.raw.connect({ create });
    let config = await this.readConfig();
    let identity: string | undefined;
    if (!config) {
      if (!create) throw new BackupError('notFound', `${this.url}: no Lifeboat backups here (${REMOTE_CONFIG} is missing)`);
      // Under the lock: two writers creating one remote at once must not make two keys.
      const release = await this.acquire(this.o.lock ?? {});
      try {
        config = await this.readConfig();
        if (!config) ({ config, identity } = await this.createConfig());
      } finally {
        await release();
      }
    }
    if (config.encryption === 'age') {
      identity ??= await this.unlock(config);
      this.objects = new EncryptedBackend(this.raw, identity, config.recipient!, () => this.scratchDir());
    } else {
      this.objects = this.raw;
    }
    this.config = config;
  }

  private async readConfig(): Promise<RemoteConfig | undefined> {
    if (!(await this.raw.stat(REMOTE_CONFIG))) return undefined;
    const text = (await streamBytes(await this.raw.get(REMOTE_CONFIG))).toString('utf8');
    let c: RemoteConfig;
    try {
      c = JSON.parse(text) as RemoteConfig;
    } catch {
      throw new BackupError('badArchive', `${this.url}/${REMOTE_CONFIG}: damaged (not JSON)`);
    }
    if (c?.format !== 'lifeboat-remote') throw new BackupError('badArchive', `${this.url}/${REMOTE_CONFIG}: not a Lifeboat remote description`);
    if (c.version !== 1) throw new BackupError('unsupportedFormat', `${this.url}: written by a newer Lifeboat (remote version ${c.version})`);
    if (c.encryption === 'age' && (!c.recipient || !c.identity)) throw new BackupError('badArchive', `${this.url}/${REMOTE_CONFIG}: encrypted, but its key is missing`);
    return c;
  }

  private async createConfig(): Promise<{ config: RemoteConfig; identity?: string }> {
    const encrypt = this.o.encrypt ?? true;
    const config: RemoteConfig = { format: 'lifeboat-remote', version: 1, created: this.clock.now().toISOString(), encryption: encrypt ? 'age' : 'none' };
    let identity: string | undefined;
    if (encrypt) {
      const pass = await this.passphrase();
      const age = await loadAge();
      identity = await age.generateX25519Identity();
      config.recipient = await age.identityToRecipient(identity);
      const e = new age.Encrypter();
      e.addRecipient(new NodeScryptRecipient(pass, this.o.scryptLogN ?? 17));
      config.identity = Buffer.from(await e.encrypt(identity)).toString('base64');
    }
    const bytes = Buffer.from(JSON.stringify(config, null, 1));
    await this.raw.put(REMOTE_CONFIG, { bytes }, { sha256: sha256(bytes) });
    return { config, identity };
  }

  private async passphrase(): Promise<string> {
    if (!this.o.passphrase) {
      throw new BackupError('badConfig', `${this.url}: the remote is encrypted and no passphrase was given (set LIFEBOAT_PASSWORD, LIFEBOAT_PASSWORD_FILE or LIFEBOAT_PASSWORD_COMMAND)`);
    }
    const p = await this.o.passphrase.get();
    if (!p) throw new BackupError('badConfig', `${this.url}: the passphrase from ${this.o.passphrase.source} is empty`);
    return p;
  }

  /** The remote's secret key, decrypted with the passphrase. A wrong one is one clear error. */
  private async unlock(config: RemoteConfig): Promise<string> {
    const pass = await this.passphrase();
    const age = await loadAge();
    const d = new age.Decrypter();
    d.addIdentity(new NodeScryptIdentity(pass));
    try {
      return await d.decrypt(Buffer.from(config.identity!, 'base64'), 'text');
    } catch (e) {
      throw new BackupError('badConfig', `${this.url}: wrong passphrase (from ${this.o.passphrase!.source}): it does not open this remote's key`, { cause: e });
    }
  }

  /**
   * Connects to the remote and reads its description: BackupError 'notFound' naming the
   * URL when there is no bucket, folder or Lifeboat remote there (where `list` would list
   * nothing), and the backend's errors (credentials, connection) as they are.
   */
  attachExisting(): Promise<void> {
    return this.attach(false);
  }

  private async backend(): Promise<ObjectBackend> {
    await this.attach(false);
    return this.objects!;
  }

  async open(): Promise<void> {
    await this.attach(true);
    // Uploads that writers killed mid-way left: a day is far longer than any upload runs.
    this.swept = await this.raw.sweep(this.o.sweepAfterMs ?? 24 * 3600_000).catch(() => 0);
    await this.sweepScratch();
  }

  async list(folder = ''): Promise<StoredObject[]> {
    let b: ObjectBackend;
    try {
      b = await this.backend();
    } catch (e) {
      // As for a folder: a store that does not exist (yet) lists as empty.
      if (BackupError.is(e, 'notFound')) return [];
      throw e;
    }
    const prefix = folder ? `${folder}/` : '';
    return (await b.list(prefix)).filter((o) => !o.name.slice(prefix.length).includes('/'));
  }

  async stat(name: string): Promise<StoredObject | undefined> {
    assertObjectName(name);
    return (await this.backend()).stat(name);
  }

  async read(name: string, range?: ByteRange): Promise<Readable> {
    assertObjectName(name);
    const f = this.fetched.get(name);
    if (f) {
      await f.ready;
      const start = range?.offset ?? 0;
      const end = range?.length !== undefined ? Math.min(f.size, start + range.length) : f.size;
      if (end <= start) return Readable.from([]);
      return createReadStream(f.file, { start, end: end - 1 });
    }
    return (await this.backend()).get(name, range);
  }

  /**
   * Fetches the objects whole (decrypted) into a local folder, two at a time, and serves
   * reads of them from there until released; copies no reader holds are removed then.
   */
  async prepareRead(objects: string[], o: { signal?: AbortSignal } = {}): Promise<() => void> {
    const b = await this.backend();
    const dir = await this.scratchDir();
    const mine: string[] = [];
    const queue = [...new Set(objects)];
    const fetchOne = async (name: string): Promise<void> => {
      let f = this.fetched.get(name);
      if (!f) {
        const file = path.join(dir, `fetch.${process.pid}.${randomBytes(4).toString('hex')}.obj`);
        const entry = { file, size: 0, pins: 0, ready: Promise.resolve() };
        entry.ready = (async () => {
          const src = await b.get(name, undefined, o);
          await pipeline(src, createWriteStream(file), { signal: o.signal });
          entry.size = (await fs.stat(file)).size;
        })();
        f = entry;
        this.fetched.set(name, f);
        f.ready.catch(() => {
          if (this.fetched.get(name) === entry) this.fetched.delete(name);
          void fs.rm(file, { force: true });
        });
      }
      f.pins++;
      mine.push(name);
      await f.ready;
    };
    // Released copies stay for the next reader (a verification reads a backup's packs
    // twice: the check, then the rebuild), within a budget; close() removes them all.
    const release = (): void => {
      for (const name of mine.splice(0)) {
        const f = this.fetched.get(name);
        if (f) f.pins--;
      }
      let unpinned = 0;
      for (const f of this.fetched.values()) if (f.pins <= 0) unpinned += f.size;
      for (const [name, f] of this.fetched) {
        if (unpinned <= FETCH_KEEP_BYTES) break;
        if (f.pins > 0) continue;
        this.fetched.delete(name);
        unpinned -= f.size;
        void fs.rm(f.file, { force: true });
      }
    };
    try {
      const workers = Array.from({ length: Math.min(2, queue.length) }, async () => {
        for (let n = queue.shift(); n !== undefined; n = queue.shift()) await fetchOne(n);
      });
      await Promise.all(workers);
    } catch (e) {
      release();
      if (o.signal?.aborted) throw new BackupError('cancelled', 'cancelled', { cause: e });
      throw e;
    }
    return release;
  }

  async readBytes(name: string, range?: ByteRange): Promise<Buffer> {
    return streamBytes(await this.read(name, range));
  }

  async localCopy(name: string, o: { signal?: AbortSignal } = {}): Promise<{ path: string; release(): Promise<void> }> {
    const dir = await this.scratchDir();
    const file = path.join(dir, `copy.${process.pid}.${randomBytes(4).toString('hex')}.${path.basename(name)}`);
    try {
      const src = await (await this.backend()).get(name, undefined, o);
      await pipeline(src, createWriteStream(file), { signal: o.signal });
    } catch (e) {
      await fs.rm(file, { force: true });
      if (o.signal?.aborted) throw new BackupError('cancelled', 'cancelled', { cause: e });
      throw e;
    }
    return { path: file, release: () => fs.rm(file, { force: true }) };
  }

  /** A private folder under the system's temp folder, named by the remote, swept of dead writers' files. */
  async scratchDir(): Promise<string> {
    if (!this.scratch) {
      const dir = path.join(os.tmpdir(), `lifeboat-remote-${createHash('sha256').update(this.url).digest('hex').slice(0, 12)}`);
      await fs.mkdir(dir, { recursive: true, mode: 0o700 });
      this.scratch = dir;
    }
    return this.scratch;
  }

  private async sweepScratch(): Promise<void> {
    const dir = await this.scratchDir();
    for (const n of await fs.readdir(dir).catch(() => [] as string[])) {
      const pid = Number(/\.(\d+)\.[0-9a-f]{8}\./.exec(n)?.[1]);
      if (Number.isInteger(pid) && pid > 0 && !processAlive(pid)) await fs.rm(path.join(dir, n), { force: true });
    }
  }

  async publishFile(file: string, name: string, o: { overwrite?: boolean; signal?: AbortSignal; onProgress?: (sent: number) => void } = {}): Promise<StoredObject> {
    assertObjectName(name);
    const b = await this.backend();
    if (!o.overwrite && (await b.stat(name))) throw new BackupError('exists', `${this.url}/${name}: already exists; not replaced`);
    const size = (await fs.stat(file)).size;
    await b.put(name, { file, size }, { sha256: await fileSha256(file), signal: o.signal, onProgress: o.onProgress });
    await fs.rm(file, { force: true });
    const st = await b.stat(name);
    if (!st) throw new BackupError('io', `${this.url}/${name}: missing right after its upload`);
    return st;
  }

  /** Uploads a local file as object `name`, keeping the file (an off-site copy of a local object). */
  async upload(file: string, name: string, o: { signal?: AbortSignal; onProgress?: (sent: number) => void } = {}): Promise<void> {
    assertObjectName(name);
    crashPoint('upload', `${this.url}/${name}`);
    const size = (await fs.stat(file)).size;
    const b = await this.backend();
    // An encrypted remote hashes what it uploads (the ciphertext) itself.
    const sha256 = this.encrypted ? '' : await fileSha256(file);
    await b.put(name, { file, size }, { sha256, signal: o.signal, onProgress: o.onProgress });
  }

  async writeBytes(name: string, data: string | Uint8Array): Promise<void> {
    assertObjectName(name);
    const bytes = Buffer.from(data);
    await (await this.backend()).put(name, { bytes }, { sha256: sha256(bytes) });
  }

  async delete(name: string): Promise<void> {
    assertObjectName(name);
    await (await this.backend()).delete(name);
  }

  localPath(): string | undefined {
    return undefined;
  }

  /** The SHA-256 the backend recorded for an object at upload (S3), if it keeps one. */
  async recordedSha256(name: string): Promise<string | undefined> {
    await this.attach(false);
    return this.raw.recordedSha256?.(name);
  }

  /** The raw (still encrypted) objects, for checks that every stored object is intact. */
  async rawObjects(prefix = ''): Promise<StoredObject[]> {
    await this.attach(false);
    return this.raw.list(prefix);
  }

  async withLock<T>(fn: () => Promise<T>, o: LockOptions = {}): Promise<T> {
    const opts = { ...this.o.lock, ...o };
    await this.attach(false);
    const release = await this.acquire(opts);
    try {
      return await fn();
    } finally {
      await release();
    }
  }

  /**
   * Takes the remote's lock: writes a lock object of its own, lists the locks, and when
   * another live one is there removes its own and tries again after a random pause. A lock
   * is stale when it is older than `staleMs` next to the newest lock object (both times by
   * the server's clock); the holder rewrites it every `staleMs / 4`.
   */
  private async acquire(o: LockOptions): Promise<() => Promise<void>> {
    const b = this.raw;
    const timeoutMs = o.timeoutMs ?? 60_000;
    const staleMs = o.staleMs ?? 300_000;
    const token = randomUUID();
    const name = `${LOCKS}/${token}.json`;
    const started = processStartId(process.pid);
    const body = (): Buffer => Buffer.from(JSON.stringify({ host: os.hostname(), machine: MACHINE, pid: process.pid, started, token, time: new Date().toISOString() }));
    const put = async (): Promise<void> => {
      const bytes = body();
      await b.put(name, { bytes }, { sha256: sha256(bytes) });
    };
    const since = Date.now();
    for (let attempt = 0; ; attempt++) {
      if (o.signal?.aborted) throw new BackupError('cancelled', 'cancelled');
      await put();
      const locks = await b.list(`${LOCKS}/`);
      const mine = locks.find((l) => l.name === name);
      const newest = Math.max(...locks.map((l) => l.mtimeMs), mine?.mtimeMs ?? 0);
      const others: StoredObject[] = [];
      for (const l of locks) {
        if (l.name === name) continue;
        // Stale: not refreshed for staleMs by the server's clock, or held by a process of
        // this machine that is gone (killed mid-push); the next push need not wait for it.
        let dead = newest - l.mtimeMs > staleMs;
        if (!dead) {
          const h = await streamBytes(await b.get(l.name))
            .then((x) => JSON.parse(x.toString('utf8')) as { machine?: string; pid?: number; started?: string })
            .catch(() => undefined);
          dead = !!h && h.machine === MACHINE && typeof h.pid === 'number' && !processAlive(h.pid, h.started);
        }
        if (dead) await b.delete(l.name).catch(() => undefined);
        else others.push(l);
      }
      if (mine && others.length === 0) break;
      await b.delete(name);
      if (Date.now() - since > timeoutMs) {
        let holder = 'another writer';
        try {
          const h = JSON.parse((await streamBytes(await b.get(others[0]!.name))).toString('utf8')) as { host: string; pid: number };
          holder = `process ${h.pid} on ${h.host}`;
        } catch {
          // the holder's lock went away or is unreadable
        }
        throw new BackupError('locked', `${this.url}: locked by ${holder}; try again later`);
      }
      await sleep(250 + Math.random() * Math.min(4000, 250 * 2 ** attempt), o.signal);
    }
    let released = false;
    let refreshing: Promise<void> = Promise.resolve();
    const timer = setInterval(() => {
      refreshing = refreshing.then(() => (released ? undefined : put().catch(() => undefined)));
    }, Math.max(1000, staleMs / 4));
    timer.unref?.();
    return async () => {
      released = true;
      clearInterval(timer);
      await refreshing;
      await b.delete(name).catch(() => undefined);
    };
  }

  async close(): Promise<void> {
    for (const f of this.fetched.values()) await fs.rm(f.file, { force: true });
    this.fetched.clear();
    await this.objects?.close();
    await this.raw.close();
    this.objects = undefined;
  }
}

/** The backup log of a remote: one small object per entry, named so that names sort by time. */
class RemoteLog implements StoreLog {
  constructor(private readonly store: RemoteStore) {}

  async append(entry: LogEntry): Promise<void> {
    const stamp = new Date().toISOString().replace(/[-:.]/g, '');
    await this.store.writeBytes(`${LOG}/${stamp}-${randomBytes(4).toString('hex')}.json`, JSON.stringify(entry));
  }

  async read(limit = 500): Promise<LogEntry[]> {
    const names = (await this.store.list(LOG)).map((o) => o.name).sort();
    const out: LogEntry[] = [];
    for (const n of names.slice(-limit)) {
      try {
        out.push(JSON.parse((await this.store.readBytes(n)).toString('utf8')) as LogEntry);
      } catch {
        // a torn or vanished entry is skipped, as in the local log
      }
    }
    return out;
  }
}

function sha256(b: Uint8Array): string {
  return createHash('sha256').update(b).digest('hex');
}

async function fileSha256(file: string): Promise<string> {
  const h = createHash('sha256');
  for await (const c of createReadStream(file, { highWaterMark: 1 << 20 })) h.update(c as Buffer);
  return h.digest('hex');
}

async function streamBytes(s: Readable): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const c of s) chunks.push(c as Buffer);
  return Buffer.concat(chunks);
}

function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    const t = setTimeout(() => {
      signal?.removeEventListener('abort', abort);
      resolve();
    }, ms);
    const abort = (): void => {
      clearTimeout(t);
      reject(new BackupError('cancelled', 'cancelled'));
    };
    signal?.addEventListener('abort', abort, { once: true });
  });
}

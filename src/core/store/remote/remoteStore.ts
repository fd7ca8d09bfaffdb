import { createHash, randomBytes, randomUUID } from 'node:crypto';
import { createReadStream, createWriteStream, promises as fs, readFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { LogEntry } from '../../catalog/backupLog';
import type { LockOptions } from '../../catalog/lock';
import { systemClock, type Clock } from '../../context';
import { BackupError, fsError } from '../../errors';
import { crashPoint } from '../../faults';
import { writevAll } from '../../fsutil';
import { processAlive, processStartId } from '../../processInfo';
import { assertObjectName, type BackupStore, type ByteRange, type StoredObject, type StoreLog } from '../store';
import { deriveAhead, type DerivedKey, NodeScryptIdentity, NodeScryptRecipient, scryptStanza } from './ageScrypt';
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
/** Objects fetched whole at once (rclone's default number of transfers). */
const FETCH_CONCURRENCY = 4;
/** A fetch writes what it received in pieces of about this size. */
const FETCH_WRITE_BYTES = 1024 * 1024;
/**
 * A ranged read that starts this far beyond what its object's fetch holds goes to the
 * remote by range rather than waiting (a pack's index, at its end, is wanted first).
 */
const FETCH_WAIT_AHEAD = 8 * 1024 * 1024;
/** Local copies kept open for reading at once (a backup may use hundreds of packs). */
const FETCH_READERS = 32;

/** An object being fetched whole into a local plain copy (see prepareRead). */
interface Fetch {
  name: string;
  file: string;
  /** Bytes written to `file` so far, from the start; all of them once `done`. */
  have: number;
  started: boolean;
  done: boolean;
  /** The fetch failed or was abandoned: readers go to the remote. */
  dropped: boolean;
  pins: number;
  abort: AbortController;
  /** Woken when `have` grows and when the fetch ends. */
  waiters: Set<() => void>;
  /** Settles (never rejects) when the fetch has ended and its file is closed. */
  ended: Promise<void>;
  /** A handle for reading the copy, shared by readers, and how many use it now. */
  reader?: Promise<fs.FileHandle>;
  readers: number;
}

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
  /** The passphrase and its key, derived by another thread (`prepareKey`); used once, for the first attach. */
  prepared?: PreparedKey;
}

/**
 * The passphrase's key for one key-file salt, derived in one thread for a store in another:
 * a copy in a worker (pushJob.ts) gets the key its caller derived while the process was
 * still small. Plain data, for a worker's message.
 */
export interface PreparedKey {
  passphrase: string;
  salt: string;
  logN: number;
  key: Uint8Array;
  /** See DerivedKey.fresh. */
  fresh: boolean;
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
  private pass: Promise<string> | undefined;
  private prepared: PreparedKey | undefined;
  private scratch: string | undefined;
  /** Unfinished uploads the last `open()` removed. */
  swept = 0;
  /** Objects fetched whole for reading (prepareRead): local plain copies, pinned while in use. */
  private readonly fetched = new Map<string, Fetch>();
  /** Fetches not started yet, in the order their readers need them; and how many run. */
  private fetchQueue: Fetch[] = [];
  private fetching = 0;
  /** Copies with a reading handle open, least recently read first. */
  private readonly openReaders = new Set<Fetch>();

  constructor(
    backend: ObjectBackend,
    private readonly o: RemoteStoreOptions = {},
  ) {
    this.raw = new RetryBackend(backend, o.retry);
    this.url = backend.url;
    this.label = backend.label;
    this.clock = o.clock ?? systemClock;
    this.log = new RemoteLog(this);
    this.prepared = o.prepared;
    if (o.prepared) this.pass = Promise.resolve(o.prepared.passphrase);
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
    const ahead = await this.deriveAhead(create);
    await this.raw.connect({ create });
    let config = await this.readConfig();
    let identity: string | undefined;
    if (!config) {
      if (!create) throw new BackupError('notFound', `${this.url}: no Lifeboat backups here (${REMOTE_CONFIG} is missing)`);
      // Under the lock: two writers creating one remote at once must not make two keys.
      const release = await this.acquire(this.o.lock ?? {});
      try {
        config = await this.readConfig();
        if (!config) ({ config, identity } = await this.createConfig(ahead));
      } finally {
        await release();
      }
    }
    if (config.encryption === 'age') {
      identity ??= await this.unlock(config, ahead);
      this.objects = new EncryptedBackend(this.raw, identity, config.recipient!, () => this.scratchDir());
    } else {
      this.objects = this.raw;
    }
    // Plain remotes too: the next push to one then derives no key it will not use.
    await this.rememberConfig(config);
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

  /**
   * The passphrase's key, derived before the backend connects: scrypt takes 128 MiB for most
   * of a second, and done first, while the process is small (before an S3 client library
   * loads and uploads hold their buffers), a push's peak memory is the larger of the two,
   * not their sum. The salt is the one of the remote's key file as this machine last saw it
   * (a copy of its description in the scratch folder: not secret, and only a guess that
   * `unlock` checks), or, for a remote a push is about to create, the new key file's own.
   * Undefined when there is nothing to derive ahead (no passphrase, a plain remote, a read
   * of a remote not seen before).
   */
  private async deriveAhead(create: boolean): Promise<DerivedKey | undefined> {
    const p = this.prepared;
    if (p) {
      this.prepared = undefined;
      return { salt: Buffer.from(p.salt, 'hex'), logN: p.logN, key: Promise.resolve(Buffer.from(p.key)), fresh: p.fresh };
    }
    if (!this.o.passphrase) return undefined;
    const seen = await this.seenConfig();
    let stanza: { salt: Buffer; logN: number } | undefined;
    if (seen) {
      if (seen.encryption !== 'age' || !seen.identity) return undefined;
      stanza = scryptStanza(Buffer.from(seen.identity, 'base64'));
      if (!stanza || stanza.logN > 20) return undefined;
    } else if (!create || this.o.encrypt === false) {
      return undefined;
    }
    let pass: string;
    try {
      pass = await this.passphrase();
    } catch {
      return undefined; // the same error comes again where the passphrase is needed
    }
    const d = deriveAhead(pass, stanza?.logN ?? this.scryptLogN, stanza?.salt);
    await d.key.catch(() => undefined);
    return d;
  }

  /**
   * Derives the key `attach` would derive first (see deriveAhead), for a store in another
   * thread (`RemoteStoreOptions.prepared`). Contacts nothing. Undefined when there is
   * nothing to derive ahead or the passphrase cannot be had (the other store then reports it).
   */
  async prepareKey(create: boolean): Promise<PreparedKey | undefined> {
    const d = await this.deriveAhead(create);
    if (!d) return undefined;
    try {
      return { passphrase: await this.passphrase(), salt: d.salt.toString('hex'), logN: d.logN, key: await d.key, fresh: d.fresh };
    } catch {
      return undefined;
    }
  }

  private get scryptLogN(): number {
    return this.o.scryptLogN ?? 17;
  }

  private async seenFile(): Promise<string> {
    return path.join(await this.scratchDir(), 'remote.json');
  }

  /** The remote's description as this machine last read it, if it did. */
  private async seenConfig(): Promise<RemoteConfig | undefined> {
    try {
      const c = JSON.parse(await fs.readFile(await this.seenFile(), 'utf8')) as RemoteConfig;
      return c?.format === 'lifeboat-remote' ? c : undefined;
    } catch {
      return undefined;
    }
  }

  private async rememberConfig(config: RemoteConfig): Promise<void> {
    const text = JSON.stringify(config);
    try {
      const file = await this.seenFile();
      if ((await fs.readFile(file, 'utf8').catch(() => '')) === text) return;
      const tmp = `${file}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`;
      await fs.writeFile(tmp, text, { mode: 0o600 });
      await fs.rename(tmp, file);
    } catch {
      // a cache: the next attach derives after connecting instead
    }
  }

  private async createConfig(ahead?: DerivedKey): Promise<{ config: RemoteConfig; identity?: string }> {
    const encrypt = this.o.encrypt ?? true;
    const config: RemoteConfig = { format: 'lifeboat-remote', version: 1, created: this.clock.now().toISOString(), encryption: encrypt ? 'age' : 'none' };
    let identity: string | undefined;
    if (encrypt) {
      const pass = await this.passphrase();
      const age = await loadAge();
      identity = await age.generateX25519Identity();
      config.recipient = await age.identityToRecipient(identity);
      const e = new age.Encrypter();
      e.addRecipient(new NodeScryptRecipient(pass, this.scryptLogN, ahead));
      config.identity = Buffer.from(await e.encrypt(identity)).toString('base64');
    }
    const bytes = Buffer.from(JSON.stringify(config, null, 1));
    await this.raw.put(REMOTE_CONFIG, { bytes }, { sha256: sha256(bytes) });
    return { config, identity };
  }

  /** The passphrase, asked once per store (a LIFEBOAT_PASSWORD_COMMAND runs once). */
  private passphrase(): Promise<string> {
    this.pass ??= this.askPassphrase();
    return this.pass;
  }

  private async askPassphrase(): Promise<string> {
    if (!this.o.passphrase) {
      throw new BackupError('badConfig', `${this.url}: the remote is encrypted and no passphrase was given (set LIFEBOAT_PASSWORD, LIFEBOAT_PASSWORD_FILE or LIFEBOAT_PASSWORD_COMMAND)`);
    }
    const p = await this.o.passphrase.get();
    if (!p) throw new BackupError('badConfig', `${this.url}: the passphrase from ${this.o.passphrase.source} is empty`);
    return p;
  }

  /** The remote's secret key, decrypted with the passphrase. A wrong one is one clear error. */
  private async unlock(config: RemoteConfig, ahead?: DerivedKey): Promise<string> {
    const pass = await this.passphrase();
    const age = await loadAge();
    const d = new age.Decrypter();
    d.addIdentity(new NodeScryptIdentity(pass, ahead));
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
    const at = f && (await this.fetchedRange(f, range));
    if (at) {
      if (at.end <= at.start) return Readable.from([]);
      return createReadStream(f.file, { start: at.start, end: at.end - 1 });
    }
    return (await this.backend()).get(name, range);
  }

  async readBytes(name: string, range?: ByteRange): Promise<Buffer> {
    assertObjectName(name);
    const f = this.fetched.get(name);
    const at = f && (await this.fetchedRange(f, range));
    if (at) return this.readFetched(f, at.start, at.end);
    return streamBytes(await (await this.backend()).get(name, range));
  }

  /**
   * Waits until the local copy `f` holds `range` and returns its bounds there; undefined
   * when the read should go to the remote instead: the fetch failed or was dropped, or the
   * range starts far beyond what has arrived (a pack's index, read before its blocks).
   */
  private async fetchedRange(f: Fetch, range?: ByteRange): Promise<{ start: number; end: number } | undefined> {
    const start = range?.offset ?? 0;
    for (;;) {
      if (f.dropped) return undefined;
      if (f.done) return { start: Math.min(start, f.have), end: range?.length !== undefined ? Math.min(f.have, start + range.length) : f.have };
      if (range?.length !== undefined && start + range.length <= f.have) return { start, end: start + range.length };
      if (start > f.have + FETCH_WAIT_AHEAD) return undefined;
      // A reader waits for it: it starts now, beside those running.
      if (!f.started) this.startFetch(f);
      await new Promise<void>((resolve) => f.waiters.add(resolve));
    }
  }

  /** Bytes `start` to `end` of the local copy `f` (which holds them). */
  private async readFetched(f: Fetch, start: number, end: number): Promise<Buffer> {
    const buf = Buffer.allocUnsafe(end - start);
    f.readers++;
    this.openReaders.delete(f);
    this.openReaders.add(f);
    for (const old of this.openReaders) {
      if (this.openReaders.size <= FETCH_READERS) break;
      if (old.readers === 0) this.closeReader(old);
    }
    const opening = (f.reader ??= fs.open(f.file, 'r'));
    const where = `reading the local copy of ${this.url}/${f.name}`;
    try {
      const fh = await opening.catch((e: unknown) => {
        // Not kept: the next reader tries again.
        if (f.reader === opening) f.reader = undefined;
        throw fsError(e, f.file, where);
      });
      let done = 0;
      while (done < buf.length) {
        const { bytesRead } = await fh.read(buf, done, buf.length - done, start + done);
        if (bytesRead === 0) throw new BackupError('io', `${f.file}: the local copy of ${this.url}/${f.name} ended early`);
        done += bytesRead;
      }
      return buf;
    } catch (e) {
      throw e instanceof BackupError ? e : fsError(e, f.file, where);
    } finally {
      f.readers--;
      if (f.dropped) this.closeReader(f);
    }
  }

  private closeReader(f: Fetch): void {
    if (f.readers > 0) return;
    this.openReaders.delete(f);
    if (!f.reader) return;
    const r = f.reader;
    f.reader = undefined;
    void r.then((fh) => fh.close()).catch(() => undefined);
  }

  /** Stops (if running) and forgets a fetch, and removes its copy. */
  private dropFetch(f: Fetch): void {
    if (this.fetched.get(f.name) === f) this.fetched.delete(f.name);
    const q = this.fetchQueue.indexOf(f);
    if (q >= 0) this.fetchQueue.splice(q, 1);
    f.dropped = true;
    f.abort.abort();
    for (const w of f.waiters) w();
    f.waiters.clear();
    this.closeReader(f);
    void f.ended.then(() => fs.rm(f.file, { force: true })).catch(() => undefined);
  }

  /** Starts queued fetches while fewer than FETCH_CONCURRENCY run. */
  private pumpFetches(): void {
    while (this.fetching < FETCH_CONCURRENCY && this.fetchQueue.length) this.startFetch(this.fetchQueue[0]);
  }

  private startFetch(f: Fetch): void {
    const q = this.fetchQueue.indexOf(f);
    if (q >= 0) this.fetchQueue.splice(q, 1);
    this.fetching++;
    f.started = true;
    void this.runFetch(f).finally(() => {
      this.fetching--;
      this.pumpFetches();
    });
  }

  /**
   * Fetches `f`'s object whole (decrypted, each chunk authenticated before it is written)
   * into its file, in pieces, waking its readers as bytes arrive. A failure drops the copy
   * (its readers then read from the remote, which reports the failure again if it lasts).
   */
  private async runFetch(f: Fetch): Promise<void> {
    let fh: fs.FileHandle | undefined;
    let endFetch!: () => void;
    f.ended = new Promise<void>((resolve) => (endFetch = resolve));
    try {
      fh = await fs.open(f.file, 'wx', 0o600);
      const src = await (await this.backend()).get(f.name, undefined, { signal: f.abort.signal });
      const stop = (): void => void src.destroy(new BackupError('cancelled', 'cancelled'));
      f.abort.signal.addEventListener('abort', stop, { once: true });
      if (f.abort.signal.aborted) stop();
      let pending: Buffer[] = [];
      let pendingBytes = 0;
      const flush = async (): Promise<void> => {
        const bufs = pending;
        const n = pendingBytes;
        pending = [];
        pendingBytes = 0;
        await writevAll(fh!, bufs, f.have);
        f.have += n;
        for (const w of f.waiters) w();
        f.waiters.clear();
      };
      try {
        for await (const c of src) {
          pending.push(c as Buffer);
          pendingBytes += (c as Buffer).length;
          if (pendingBytes >= FETCH_WRITE_BYTES) await flush();
        }
        await flush();
      } finally {
        f.abort.signal.removeEventListener('abort', stop);
      }
      f.done = true;
    } catch {
      if (!f.dropped) this.dropFetch(f);
    } finally {
      await fh?.close().catch(() => undefined);
      for (const w of f.waiters) w();
      f.waiters.clear();
      endFetch();
    }
  }

  /**
   * Starts fetching the objects whole (decrypted) into a local folder, FETCH_CONCURRENCY at
   * a time in the order given (the order a rebuild first needs them), and serves reads of
   * them from there as their bytes arrive: a read waits for its range only, and one far
   * ahead of the fetch (a pack's index) goes to the remote by range. Resolves to a release
   * once the fetches are queued. A failed fetch is dropped and its reads go to the remote,
   * which reports the failure (a damaged object, a lost connection) to the reader.
   * Released copies stay for the next reader within FETCH_KEEP_BYTES; close() stops every
   * fetch and removes every copy.
   */
  async prepareRead(objects: string[], o: { signal?: AbortSignal } = {}): Promise<() => void> {
    await this.backend();
    const dir = await this.scratchDir();
    const mine: Fetch[] = [];
    for (const name of new Set(objects)) {
      assertObjectName(name);
      let f = this.fetched.get(name);
      if (!f) {
        f = {
          name,
          file: path.join(dir, `fetch.${process.pid}.${randomBytes(4).toString('hex')}.obj`),
          have: 0,
          started: false,
          done: false,
          dropped: false,
          pins: 0,
          abort: new AbortController(),
          waiters: new Set(),
          ended: Promise.resolve(),
          readers: 0,
        };
        this.fetched.set(name, f);
        this.fetchQueue.push(f);
      }
      f.pins++;
      mine.push(f);
    }
    const cancel = (): void => {
      for (const f of mine) if (!f.done) this.dropFetch(f);
    };
    o.signal?.addEventListener('abort', cancel, { once: true });
    if (o.signal?.aborted) cancel();
    this.pumpFetches();
    // Released copies stay for the next reader (a verification reads a backup's packs
    // twice: the check, then the rebuild), within a budget; close() removes them all.
    return () => {
      o.signal?.removeEventListener('abort', cancel);
      for (const f of mine.splice(0)) f.pins--;
      let unpinned = 0;
      for (const f of this.fetched.values()) if (f.pins <= 0 && f.done) unpinned += f.have;
      for (const f of [...this.fetched.values()]) {
        if (unpinned <= FETCH_KEEP_BYTES) break;
        if (f.pins > 0 || !f.done) continue;
        this.dropFetch(f);
        unpinned -= f.have;
      }
    };
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
    const fetches = [...this.fetched.values()];
    for (const f of fetches) this.dropFetch(f);
    for (const f of fetches) await f.ended;
    for (const f of fetches) await fs.rm(f.file, { force: true });
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

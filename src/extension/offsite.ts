import { existsSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as vscode from 'vscode';
import { BackupError } from '../core/errors';
import { isVerified, type BackupRecord } from '../core/model';
import type { PushResult } from '../core/offsite/push';
import { defaultKnownHostsFiles, hostKeyFactsOf, recordHostKey, type HostKeyPolicy } from '../core/store/remote/knownHosts';
import type { RemoteSettings } from '../core/store/remote/openRemote';
import type { PushJob, PushSecrets, RemoteJobBase } from '../core/offsite/pushJob';
import type { BackupsModel } from './backupsModel';
import { COMMANDS } from './commandIds';
import type { CoreHost } from './coreLoader';
import type { FolderState, Folders } from './folders';
import { formatBytes as formatSize } from '../core/units';
import { provideOffsiteRestoreSource, type OffsiteRestoreTester, type OffsiteTestOptions, type OffsiteTestOutcome } from '../core/verify/offsiteSource';
import { formatLocal } from './format';
import type { Operations } from './operations';

/** What "Set Off-site Credentials..." keeps for one remote URL. Never in settings or logs. */
export interface OffsiteCredentials {
  s3?: { accessKeyId: string; secretAccessKey: string; sessionToken?: string };
  sftpPassword?: string;
  /** The encryption passphrase of the remote. */
  passphrase?: string;
}

/**
 * How the off-site commands ask the user. Replaceable (tests answer through it: VS Code
 * refuses modal dialogs and input boxes cannot be typed into from an extension under test).
 */
export interface OffsitePrompts {
  input(o: vscode.InputBoxOptions): Promise<string | undefined>;
  pick<T extends vscode.QuickPickItem>(items: T[], o: vscode.QuickPickOptions): Promise<T | undefined>;
  /** A modal warning; resolves true only for `button`. */
  confirm(message: string, detail: string, button: string): Promise<boolean>;
  /** A non-modal warning with buttons; resolves the button pressed. */
  warn(message: string, ...buttons: string[]): Promise<string | undefined>;
}

const vscodePrompts: OffsitePrompts = {
  input: async (o) => vscode.window.showInputBox({ ignoreFocusOut: true, ...o }),
  pick: async (items, o) => vscode.window.showQuickPick(items, { ignoreFocusOut: true, ...o }),
  confirm: async (message, detail, button) => (await vscode.window.showWarningMessage(message, { modal: true, detail }, button)) === button,
  warn: async (message, ...buttons) => vscode.window.showWarningMessage(message, ...buttons),
};

/** A `file:` remote that is not encrypted needs no secret at all. */
function plainFolder(state: FolderState): boolean {
  return state.settings.offsite.url.startsWith('file:') && !state.settings.offsite.encrypt;
}

/** The SecretStorage key of a remote's credentials. */
export function secretKey(url: string): string {
  return `lifeboat.offsite:${url}`;
}

/** Where a remote's credentials live: the OS keychain (SecretStorage), this session only, or nowhere. */
export type CredentialPlace = 'keychain' | 'session' | undefined;

/** The last copy of one database's backups to its remote, as the panel and status bar show it. */
export interface OffsiteSummary {
  url: string;
  /** Newest local time a verified backup was copied there (local ISO), if any. */
  lastCopyAt?: string;
  /** Bytes the copied backups hold locally (what the remote holds of them). */
  bytes: number;
  copied: number;
  /** Verified local backups not copied yet. */
  pending: number;
  /** How long the remote has been behind: since the oldest verified backup newer than its newest copy was made (0: up to date). */
  lagMs: number;
  /** The last failure of an automatic or requested copy, if it has not succeeded since. */
  failure?: string;
  /** The last verification of the remote: when, and whether every backup passed. */
  lastVerify?: { at: string; ok: boolean; message: string };
}

/** A row's off-site state for `url`: copied (when), failed (why), pending, or none when no remote is set. */
export function offsiteState(r: BackupRecord, url: string, failure?: string): { state: 'copied' | 'pending' | 'failed' | 'unverified'; at?: string; detail?: string } {
  const at = r.state.offsite?.[url]?.at;
  if (at) return { state: 'copied', at };
  if (!isVerified(r)) return { state: 'unverified' };
  if (failure) return { state: 'failed', detail: failure };
  return { state: 'pending' };
}

/**
 * Off-site copies in VS Code: the credentials (SecretStorage, or this session only when the
 * OS keychain cannot be used), "Copy Off-site Now", "Verify Off-site Copies", "Restore from
 * Off-site..." and the automatic copy after each verified local backup (queued per remote, in
 * the background; it never delays a local backup). Everything runs through the engine's
 * async I/O; failures are logged once and shown with Show Log and Retry.
 */
export class OffsiteHost implements vscode.Disposable {
  /** Replaceable for tests. */
  prompts: OffsitePrompts = vscodePrompts;
  /**
   * SFTP host key checking: the known_hosts files, as the CLI reads them (LIFEBOAT_SFTP_KNOWN_HOSTS
   * in the extension host's environment, else ~/.ssh/known_hosts and /etc/ssh/ssh_known_hosts).
   * Replaceable for tests. An unknown host is never trusted silently: the user is shown its
   * fingerprint and asked.
   */
  knownHosts: HostKeyPolicy | undefined;
  private readonly restoreSource: { dispose(): void };
  private readonly session = new Map<string, OffsiteCredentials>();
  /** Per remote URL: the copy running or queued, so copies of one remote never overlap. */
  private readonly queues = new Map<string, Promise<unknown>>();
  private readonly failures = new Map<string, string>();
  private readonly verifies = new Map<string, { at: string; ok: boolean; message: string }>();
  private readonly changed = new vscode.EventEmitter<void>();
  /** Fires when a copy, a verification or the credentials changed something shown. */
  readonly onDidChange = this.changed.event;
  private disposed = false;
  /** Aborted at dispose: copies still running stop cleanly (their uploads aborted, the remote's lock released). */
  private readonly stopAll = new AbortController();

  constructor(
    /** VS Code's SecretStorage (replaceable for tests: one that fails as on Linux without a keyring). */
    public secrets: Pick<vscode.SecretStorage, 'get' | 'store'>,
    private readonly core: CoreHost,
    private readonly folders: Folders,
    private readonly model: BackupsModel,
    private readonly ops: Operations,
    private readonly channel: vscode.LogOutputChannel,
  ) {
    // The weekly restore test takes every other backup from the folder's off-site store,
    // when it has one and its credentials are stored.
    this.restoreSource = provideOffsiteRestoreSource((dir) => this.restoreTestSource(dir));
  }

  /**
   * How the weekly restore test of backup folder `dir` tests its off-site store: the
   * folder's remote when it has a URL and stored credentials (or needs none), tested in the
   * off-site worker (the local bookkeeping stays with the engine's `restoreTest`);
   * undefined otherwise. Contacts nothing until its `restoreTest` runs.
   */
  async restoreTestSource(dir: string): Promise<OffsiteRestoreTester | undefined> {
    const state = (await this.folders.resolve()).find((s) => s.dir === dir);
    if (!state?.settings.offsite.url || !(await this.configured(state))) return undefined;
    return { url: state.settings.offsite.url, restoreTest: (o) => this.restoreTestRemote(state, o) };
  }

  /**
   * The off-site half of a restore test of `state`'s remote, in a worker: opening the
   * remote, restoring and verifying its backup, recording the result there. Unlike a
   * restore it holds nothing here (no queue place, no SQLite gate): its SQLite opens only
   * an image in a scratch file of its own. Dispose cancels it.
   */
  private async restoreTestRemote(state: FolderState, o: OffsiteTestOptions): Promise<OffsiteTestOutcome> {
    const base = await this.remoteJobOf(state, false);
    const { core } = await this.core.get();
    return core.runRemoteJob({ ...base, settings: o.settings, op: 'restoreTest', now: o.now, afterMs: o.afterMs }, { signal: this.stopping(o.signal), onProgress: o.onProgress, logger: this.core.logger });
  }

  /** The known_hosts policy in force (see `knownHosts`). */
  private hostKeyPolicy(): HostKeyPolicy {
    if (this.knownHosts) return this.knownHosts;
    const files = (process.env.LIFEBOAT_SFTP_KNOWN_HOSTS ?? '').split(path.delimiter).filter((f) => path.isAbsolute(f));
    return files.length ? { files, source: `LIFEBOAT_SFTP_KNOWN_HOSTS (${files.join(path.delimiter)})` } : { files: defaultKnownHostsFiles() };
  }

  /**
   * When `e` is an SFTP host key refusal: a changed or revoked key is shown as the loud error
   * it is (no way to accept it from here); an unknown host is shown with its fingerprint and
   * "Trust and Retry", which records the key in the first known_hosts file (as ssh does on
   * "yes") and runs `retry`. Resolves false for any other error (not shown).
   */
  async hostKeyRefused(e: unknown, url: string, retry: () => unknown): Promise<boolean> {
    const f = hostKeyFactsOf(e);
    if (!f) return false;
    const message = `Lifeboat: ${(e as Error).message}`;
    this.failures.set(url, message);
    this.changed.fire();
    if (f.kind !== 'unknown') {
      this.ops.failure(message);
      return true;
    }
    this.channel.warn(message);
    const trust = 'Trust and Retry';
    const pick = await this.prompts.warn(
      `Lifeboat: the SFTP server ${f.hostId} (${url}) is not a known host. Its ${f.keyType} key has the fingerprint ${f.fingerprint}. Trust it only if that is the server's fingerprint (ask its administrator, or compare with \`ssh-keyscan\` from a network you trust).`,
      trust,
      'Show Log',
    );
    if (pick === 'Show Log') this.channel.show(true);
    if (pick !== trust) return true;
    try {
      await recordHostKey(f.file, f);
    } catch (err) {
      this.ops.failure(`Lifeboat: ${(err as Error).message}`);
      return true;
    }
    this.channel.info(`recorded the SFTP host key of ${f.hostId} (${f.keyType} ${f.fingerprint}) in ${f.file}`);
    this.failures.delete(url);
    void retry();
    return true;
  }

  /** The last copy failure of `url`, if no copy succeeded since. */
  failureOf(url: string): string | undefined {
    return this.failures.get(url);
  }

  /** The credentials of `url`: this session's first, then SecretStorage's. Never throws (a keychain error reads as none). */
  async credentials(url: string): Promise<{ creds?: OffsiteCredentials; place: CredentialPlace }> {
    const s = this.session.get(url);
    if (s) return { creds: s, place: 'session' };
    try {
      const raw = await this.secrets.get(secretKey(url));
      if (raw) return { creds: JSON.parse(raw) as OffsiteCredentials, place: 'keychain' };
    } catch (e) {
      this.channel.warn(`off-site credentials of ${url} could not be read from the OS keychain: ${(e as Error).message}`);
    }
    return { place: undefined };
  }

  /**
   * "Set Off-site Credentials...": asks per the URL's kind (S3: access key id, secret, an
   * optional session token; SFTP: a password, empty for the key in ~/.ssh), then the
   * encryption passphrase (empty when the remote is not encrypted), and stores them in
   * SecretStorage under the URL. When SecretStorage fails, says so and offers to keep them
   * for this session only. Resolves where they went (undefined: cancelled).
   */
  async setCredentials(state?: FolderState): Promise<CredentialPlace> {
    state ??= await this.folderWithRemote();
    const url = state?.settings.offsite.url;
    if (!url) {
      const go = await this.prompts.warn('Lifeboat: set "lifeboat.offsite.url" first (s3://bucket/prefix, sftp://user@host/path or file:///folder).', 'Open Settings');
      if (go) void vscode.commands.executeCommand('workbench.action.openSettings', 'lifeboat.offsite');
      return undefined;
    }
    const title = `${COMMANDS.setOffsiteCredentials.title.replace(/\.\.\.$/, '')} for ${url}`;
    const creds: OffsiteCredentials = {};
    if (url.startsWith('s3:')) {
      const id = await this.prompts.input({ title, prompt: 'S3 access key ID', placeHolder: 'AKIA...', validateInput: (v) => (v.trim() ? undefined : 'An access key ID is needed') });
      if (id === undefined) return undefined;
      const secret = await this.prompts.input({ title, prompt: 'S3 secret access key', password: true, validateInput: (v) => (v ? undefined : 'A secret access key is needed') });
      if (secret === undefined) return undefined;
      const token = await this.prompts.input({ title, prompt: 'S3 session token (optional: leave empty unless your keys are temporary)', password: true });
      if (token === undefined) return undefined;
      creds.s3 = { accessKeyId: id.trim(), secretAccessKey: secret, sessionToken: token || undefined };
    } else if (url.startsWith('sftp:')) {
      const pw = await this.prompts.input({ title, prompt: 'SFTP password (leave empty to use your key in ~/.ssh)', password: true });
      if (pw === undefined) return undefined;
      if (pw) creds.sftpPassword = pw;
    }
    const pass = await this.prompts.input({
      title,
      prompt: state!.settings.offsite.encrypt ? 'Encryption passphrase of the off-site copies (keep it somewhere else too: without it they cannot be restored)' : 'Encryption passphrase (lifeboat.offsite.encrypt is off: leave empty)',
      password: true,
      validateInput: (v) => (state!.settings.offsite.encrypt && !v ? 'An encrypted remote needs a passphrase' : undefined),
    });
    if (pass === undefined) return undefined;
    if (pass) creds.passphrase = pass;
    let place: CredentialPlace;
    try {
      await this.secrets.store(secretKey(url), JSON.stringify(creds));
      this.session.delete(url);
      place = 'keychain';
    } catch (e) {
      const msg = (e as Error)?.message ?? String(e);
      this.channel.warn(`off-site credentials of ${url} could not be stored in the OS keychain: ${msg}`);
      const keep = await this.prompts.warn(
        `Lifeboat could not store the off-site credentials in the OS keychain (${msg}); on Linux this needs a keyring such as gnome-keyring. Keep them for this session only?`,
        'Keep for This Session',
      );
      if (keep !== 'Keep for This Session') return undefined;
      this.session.set(url, creds);
      place = 'session';
    }
    this.failures.delete(url);
    this.channel.info(`off-site credentials of ${url} saved (${place === 'keychain' ? 'OS keychain' : 'this session only'})`);
    this.ops.showSuccess(state, `Lifeboat: off-site credentials for ${url} saved${place === 'session' ? ' for this session' : ''}.`, true);
    this.changed.fire();
    return place;
  }

  /**
   * What a job on `state`'s remote (a copy, a listing, a verification, a restore or a
   * restore test) runs with, as data for its worker (pushJob.ts): none of the remote's work
   * runs on the extension host's thread. The passphrase's key is derived here, on libuv's
   * pool, before the worker starts; only a copy (`createKey`) may create the remote's key.
   * BackupError 'badConfig' when there is no URL or no credentials.
   */
  private async remoteJobOf(state: FolderState, createKey: boolean): Promise<RemoteJobBase> {
    const { remote, secrets } = await this.remoteSpec(state);
    const { core, engine } = await this.core.get();
    const key = await engine.remote(remote, core.secretsOfValues(secrets)).prepareKey(createKey);
    return { remote, secrets, settings: state.settings, key };
  }

  /** A signal that also stops at dispose. */
  private stopping(signal: AbortSignal | undefined): AbortSignal {
    return signal ? AbortSignal.any([signal, this.stopAll.signal]) : this.stopAll.signal;
  }

  /** What a copy of `state`'s backups runs with, as data for its worker. */
  private async pushJobOf(state: FolderState, db: string | undefined): Promise<PushJob> {
    return { ...(await this.remoteJobOf(state, true)), dir: state.dir, db, retention: { ...state.settings.retention, ...state.settings.offsite.retention } };
  }

  /** The remote's settings and secrets (as values) for `state`. BackupError 'badConfig' when there is no URL or no credentials. */
  private async remoteSpec(state: FolderState): Promise<{ remote: RemoteSettings; secrets: Extract<PushSecrets, { from: 'values' }> }> {
    const s = state.settings.offsite;
    if (!s.url) throw new BackupError('badConfig', 'lifeboat.offsite.url is empty: set it to s3://bucket/prefix, sftp://user@host/path or file:///folder');
    const { creds, place } = await this.credentials(s.url);
    if (!creds && !plainFolder(state)) {
      throw new BackupError('badConfig', `${s.url}: no off-site credentials${s.encrypt ? ' or passphrase' : ''}; run "Lifeboat: ${COMMANDS.setOffsiteCredentials.title}"`);
    }
    const source = `Lifeboat's off-site credentials (${place === 'session' ? 'this session' : 'OS keychain'})`;
    const secrets: Extract<PushSecrets, { from: 'values' }> = { from: 'values' };
    if (creds?.s3) secrets.s3 = { credentials: { ...creds.s3 }, source };
    if (s.url.startsWith('sftp:')) {
      // No password: the user's key in ~/.ssh, as the CLI finds it.
      const key = creds?.sftpPassword ? undefined : ['id_ed25519', 'id_ecdsa', 'id_rsa'].map((k) => path.join(os.homedir(), '.ssh', k)).find((k) => existsSync(k));
      secrets.sftp = { password: creds?.sftpPassword, privateKeyFile: key, source, knownHosts: this.hostKeyPolicy() };
    }
    if (creds?.passphrase) secrets.passphrase = { value: creds.passphrase, source };
    const remote: RemoteSettings = {
      url: s.url,
      urlSource: 'lifeboat.offsite.url',
      endpoint: s.endpoint || undefined,
      region: s.region || undefined,
      bandwidthKiBps: s.bandwidthKiBps || undefined,
      encrypt: s.encrypt,
    };
    return { remote, secrets };
  }

  /** True when `state` has an off-site URL and credentials for it (or needs none: an unencrypted folder). */
  async configured(state: FolderState): Promise<boolean> {
    const url = state.settings.offsite.url;
    if (!url) return false;
    return plainFolder(state) || (await this.credentials(url)).creds !== undefined;
  }

  /**
   * Copies the verified backups of `state` the remote lacks, queued behind any copy to the
   * same remote. `interactive`: a progress notification with Cancel; otherwise only the
   * panel's progress. Failures are logged once and shown with Show Log and Retry. Never rejects.
   */
  push(state: FolderState, o: { interactive: boolean; db?: string }): Promise<PushResult | undefined> {
    const url = state.settings.offsite.url;
    const prev = this.queues.get(url) ?? Promise.resolve();
    const next = prev.then(() => this.pushNow(state, o));
    const tail = next.catch(() => undefined);
    this.queues.set(url, tail);
    void tail.then(() => {
      if (this.queues.get(url) === tail) this.queues.delete(url);
    });
    return next;
  }

  /** Resolves when every queued copy has finished (for tests and shutdown). */
  async idle(): Promise<void> {
    while (this.queues.size) await Promise.all([...this.queues.values()]);
  }

  private async pushNow(state: FolderState, o: { interactive: boolean; db?: string }): Promise<PushResult | undefined> {
    if (this.disposed) return undefined;
    const url = state.settings.offsite.url;
    const retry = () => void this.push(state, { ...o, interactive: true });
    try {
      const job = await this.pushJobOf(state, o.db);
      const { core } = await this.core.get();
      const title = `Lifeboat: copying backups off-site to ${url}`;
      // In a worker thread: the off-site libraries, the sealing and hashing of every byte sent
      // and their garbage never touch the extension host's thread (pushJob.ts).
      const work = (signal: AbortSignal | undefined, onProgress: (p: { phase: string; done: number; total: number }) => void) =>
        core.runPushJob(job, { signal: this.stopping(signal), onProgress, logger: this.core.logger });
      const verdict = (x: PushResult) => ({ ok: !x.failed.length, message: `copied ${x.copied.length} backup(s), ${formatSize(x.bytes)}; ${x.present} already there` });
      const res = o.interactive ? await this.ops.withProgress(title, work, verdict) : await this.ops.tracked(title, undefined, work, verdict);
      this.model.invalidate(state.dir);
      if (res.failed.length) {
        const msg = `Lifeboat: ${res.failed.length} backup(s) could not be copied to ${url}: ${res.failed[0]!.error}`;
        this.failures.set(url, msg);
        this.ops.failure(msg, retry);
      } else {
        this.failures.delete(url);
        const message = `Lifeboat: ${res.copied.length ? `copied ${res.copied.length} backup(s) (${formatSize(res.bytes)}) to ${url}` : `${url} already has every verified backup`}${res.encrypted ? ', encrypted' : ''}.`;
        this.channel.info(message.replace(/^Lifeboat: /, 'off-site: '));
        this.ops.showSuccess(state, message, o.interactive);
      }
      if (res.rotationError) this.channel.warn(`rotation of ${url} failed: ${res.rotationError}`);
      this.changed.fire();
      return res;
    } catch (e) {
      if (BackupError.is(e, 'cancelled')) {
        this.channel.info(`off-site copy to ${url} cancelled`);
        return undefined;
      }
      if (await this.hostKeyRefused(e, url, retry)) {
        this.model.invalidate(state.dir);
        return undefined;
      }
      const msg = `Lifeboat: copying backups to ${url || 'the off-site store'} failed: ${(e as Error)?.message ?? String(e)}`;
      this.failures.set(url, msg);
      this.model.invalidate(state.dir);
      this.ops.failure(msg, retry);
      this.changed.fire();
      return undefined;
    }
  }

  /**
   * "Copy Off-site Now": every folder with a remote (asking for credentials first where there
   * are none), each with progress and Cancel. Each copy runs in a worker thread (pushJob.ts): the extension
   * host keeps running meanwhile. Resolves the results (undefined: failed or cancelled, shown).
   */
  async copyNowCommand(): Promise<(PushResult | undefined)[]> {
    const states = await this.withRemote();
    const runs: Promise<PushResult | undefined>[] = [];
    for (const state of states ?? []) {
      if (!(await this.configured(state)) && !(await this.setCredentials(state))) break;
      runs.push(this.push(state, { interactive: true }));
    }
    return Promise.all(runs);
  }

  /** The backups in `state`'s remote, newest first (its listing alone; no local catalog). Throws as the remote does. */
  async listRemote(state: FolderState): Promise<BackupRecord[]> {
    const base = await this.remoteJobOf(state, false);
    const { core } = await this.core.get();
    return (await core.runRemoteJob({ ...base, op: 'list' }, { signal: this.stopping(undefined), logger: this.core.logger })).records;
  }

  /** After a verified local backup: a background copy when a remote and its credentials are set. */
  async afterBackup(state: FolderState): Promise<void> {
    if (!state.settings.offsite.url || !(await this.configured(state))) return;
    // Every pending backup of the folder, not only this one: a copy that failed earlier catches up.
    void this.push(state, { interactive: false });
  }

  /**
   * "Verify Off-site Copies": every backup on every folder's remote verified (read back,
   * checksums, image), one remote after the other (folders sharing a URL verify it once).
   * Resolves the number that failed, or undefined when nothing ran.
   */
  async verifyCommand(): Promise<number | undefined> {
    const seen = new Set<string>();
    let bad: number | undefined;
    for (const state of (await this.withRemote()) ?? []) {
      if (seen.has(state.settings.offsite.url)) continue;
      seen.add(state.settings.offsite.url);
      const n = await this.verifyRemote(state);
      if (n !== undefined) bad = (bad ?? 0) + n;
    }
    return bad;
  }

  /** Verifies every backup on `state`'s remote; resolves the number that failed, or undefined when it could not run (shown). */
  private async verifyRemote(state: FolderState): Promise<number | undefined> {
    const url = state.settings.offsite.url;
    try {
      const base = await this.remoteJobOf(state, false);
      const { core } = await this.core.get();
      const { bad, total, problems } = await this.ops.withProgress(`Lifeboat: verifying the off-site copies in ${url}`, (signal, onProgress) =>
        core.runRemoteJob({ ...base, op: 'verify' }, { signal: this.stopping(signal), onProgress, logger: this.core.logger }),
      );
      const at = new Date().toISOString();
      if (bad) {
        const message = `Lifeboat: ${bad} of ${total} off-site backups in ${url} failed verification: ${problems.slice(0, 3).join('; ')}`;
        this.verifies.set(url, { at, ok: false, message });
        this.ops.failure(message, () => void this.verifyRemote(state));
      } else {
        const message = `Lifeboat: all ${total} off-site backups in ${url} verified.`;
        this.verifies.set(url, { at, ok: true, message });
        this.channel.info(message.replace(/^Lifeboat: /, 'off-site: '));
        void vscode.window.showInformationMessage(message);
      }
      this.changed.fire();
      return bad;
    } catch (e) {
      if (BackupError.is(e, 'cancelled')) return undefined;
      if (await this.hostKeyRefused(e, url, () => void this.verifyRemote(state))) return undefined;
      this.ops.failure(`Lifeboat: verifying the off-site copies in ${url} failed: ${(e as Error)?.message ?? String(e)}`, () => void this.verifyRemote(state));
      return undefined;
    }
  }

  /**
   * "Restore from Off-site...": lists the remote's backups (no local backup folder needed),
   * asks which one and where to (default: the database it was made of), confirms, and
   * restores; the current file, if any, is backed up first into the local backup folder.
   * With several folders that have a remote, asks which folder's first. Resolves the
   * restored path, or undefined when nothing was restored.
   */
  async restoreCommand(): Promise<string | undefined> {
    const states = await this.withRemote();
    if (!states) return undefined;
    const state = await this.pickFolder(states, COMMANDS.restoreFromOffsite.title, 'Restore from the off-site store of which folder?');
    return state ? this.restoreFrom(state) : undefined;
  }

  private async restoreFrom(state: FolderState): Promise<string | undefined> {
    const url = state.settings.offsite.url;
    try {
      const base = await this.remoteJobOf(state, false);
      const { core, engine } = await this.core.get();
      const { records } = await this.ops.withProgress(`Lifeboat: listing the backups in ${url}`, (signal) => core.runRemoteJob({ ...base, op: 'list' }, { signal: this.stopping(signal), logger: this.core.logger }));
      if (!records.length) {
        void vscode.window.showInformationMessage(`Lifeboat: ${url} holds no backups.`);
        return undefined;
      }
      type Item = vscode.QuickPickItem & { record: BackupRecord };
      const items: Item[] = records.map((rec) => ({
        label: `${rec.manifest.source.name}: ${formatLocal(rec.manifest.created)}`,
        description: `${rec.manifest.kind} · ${formatSize(rec.manifest.image.size)}${isVerified(rec) ? ' · verified' : ' · not verified'}`,
        detail: rec.id,
        record: rec,
      }));
      const chosen = await this.prompts.pick(items, { title: COMMANDS.restoreFromOffsite.title, placeHolder: `Which backup in ${url}?`, matchOnDetail: true });
      if (!chosen) return undefined;
      const m = chosen.record.manifest;
      const to = await this.prompts.input({
        title: COMMANDS.restoreFromOffsite.title,
        prompt: 'Restore to which file? (default: the database the backup was made of)',
        value: m.source.path,
        validateInput: (v) => (path.isAbsolute(v.trim()) ? undefined : 'An absolute path is needed'),
      });
      if (!to?.trim()) return undefined;
      const target = path.resolve(to.trim());
      const name = path.basename(target);
      const ok = await this.prompts.confirm(
        `Restore ${name} from the off-site ${m.kind} backup of ${formatLocal(m.created)}?`,
        `${target} will be replaced by the backup from ${url}. If the file exists, Lifeboat first backs it up into ${state.dir} (a pre-restore backup), so this can be undone. Stop apps that use the database first.`,
        'Restore',
      );
      if (!ok) return undefined;
      // In a worker, while this thread holds what the restore would hold here: the target's
      // place in the database's queue (no backup of it meanwhile) and its SQLite gate (no
      // open and close of its files here while the worker's SQLite has it locked).
      const key = await core.canonicalPath(target);
      const res = await this.ops.withProgress(`Lifeboat: restoring ${name} from ${url}`, (signal, onProgress) =>
        engine.queue.run(key, () =>
          core.withSqliteLock(key, () =>
            core.runRemoteJob({ ...base, op: 'restore', object: chosen.record.object, to: target, dir: state.dir }, { signal: this.stopping(signal), onProgress, logger: this.core.logger }),
          ),
        ),
      );
      this.model.invalidate(state.dir);
      const pre = res.preRestore ? ` The previous file is kept as backup ${res.preRestore.id}.` : '';
      const message = `Lifeboat: restored ${name} from the off-site backup of ${formatLocal(m.created)}.${pre}`;
      this.channel.info(`restored ${res.target} from ${url}/${chosen.record.object}${res.preRestore ? `; the previous file is backup ${res.preRestore.id}` : ''}`);
      void vscode.window.showInformationMessage(message);
      return res.target;
    } catch (e) {
      if (BackupError.is(e, 'cancelled')) return undefined;
      if (await this.hostKeyRefused(e, url, () => void this.restoreFrom(state))) return undefined;
      this.ops.failure(`Lifeboat: restoring from ${url} failed: ${(e as Error)?.message ?? String(e)}`, () => void this.restoreFrom(state));
      return undefined;
    }
  }

  /**
   * The off-site summary of `records` (backups in `state`'s folder): last copy, bytes, how
   * long the remote has been behind the local backups, the last failure and verification.
   * Undefined without a URL. Pure but for the failures and verifications seen this session.
   */
  summarize(state: FolderState, records: BackupRecord[], now = Date.now()): OffsiteSummary | undefined {
    const url = state.settings.offsite.url;
    if (!url) return undefined;
    const verified = records.filter((r) => isVerified(r));
    const copied = verified.filter((r) => r.state.offsite?.[url]);
    const at = copied.map((r) => r.state.offsite![url]!.at).sort().pop();
    const newestCopied = copied.map((r) => Date.parse(r.manifest.created)).reduce((a, b) => Math.max(a, b), 0);
    // Behind since the oldest verified backup newer than the newest copy was made.
    const behind = verified.map((r) => Date.parse(r.manifest.created)).filter((t) => t > newestCopied);
    const lagMs = behind.length ? Math.max(0, now - Math.min(...behind)) : 0;
    return {
      url,
      lastCopyAt: at,
      bytes: copied.reduce((n, r) => n + r.archiveSize, 0),
      copied: copied.length,
      pending: verified.length - copied.length,
      lagMs,
      failure: this.failures.get(url),
      lastVerify: this.verifies.get(url),
    };
  }

  /** The folders with an off-site URL; when none, says how to set one and resolves undefined. */
  private async withRemote(): Promise<FolderState[] | undefined> {
    const states = (await this.folders.resolve()).filter((s) => s.settings.offsite.url);
    if (states.length) return states;
    const go = await this.prompts.warn('Lifeboat: no off-site store is set. Set "lifeboat.offsite.url" (s3://bucket/prefix, sftp://user@host/path or file:///folder) first.', 'Open Settings');
    if (go) void vscode.commands.executeCommand('workbench.action.openSettings', 'lifeboat.offsite');
    return undefined;
  }

  private async folderWithRemote(): Promise<FolderState | undefined> {
    const states = (await this.folders.resolve()).filter((s) => s.settings.offsite.url);
    return this.pickFolder(states, COMMANDS.setOffsiteCredentials.title, 'Credentials for the off-site store of which folder?');
  }

  /** The only one of `states`, or the one the user picks (by folder name, with its remote's URL); undefined when none or dismissed. */
  private async pickFolder(states: FolderState[], title: string, placeHolder: string): Promise<FolderState | undefined> {
    if (states.length <= 1) return states[0];
    const pick = await this.prompts.pick(
      states.map((s) => ({ label: s.folder.name, description: s.settings.offsite.url, state: s })),
      { title, placeHolder },
    );
    return pick?.state;
  }

  dispose(): void {
    this.disposed = true;
    this.stopAll.abort();
    this.restoreSource.dispose();
    this.changed.dispose();
  }
}

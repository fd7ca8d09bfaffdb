import { exec } from 'node:child_process';
import { promises as fs, statSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Clock } from '../../context';
import { BackupError } from '../../errors';
import { FolderBackend } from './folderBackend';
import { defaultKnownHostsFiles, type HostKeyPolicy } from './knownHosts';
import type { ObjectBackend } from './objectBackend';
import { RemoteStore, type Passphrase, type PreparedKey } from './remoteStore';
import type { RetryOptions } from './retryBackend';
import { S3Backend, type S3Credentials } from './s3Backend';
import { SftpBackend } from './sftpBackend';

export type RemoteLocation =
  | { kind: 's3'; bucket: string; prefix: string }
  | { kind: 'sftp'; user: string; host: string; port: number; path: string }
  | { kind: 'file'; path: string };

/**
 * Parses an off-site URL: `s3://bucket/prefix`, `sftp://user@host[:port]/path`,
 * `file:///abs/folder`. BackupError 'badConfig' naming `what` (the setting or argument) and
 * the URL when it is none of them, or carries a secret (a password in the URL).
 */
export function parseRemoteUrl(url: string, what: string): RemoteLocation {
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    throw new BackupError('badConfig', `${what}: "${url}" is not a URL (expected s3://bucket/prefix, sftp://user@host/path or file:///folder)`);
  }
  if (u.password) throw new BackupError('badConfig', `${what}: "${u.protocol}//${u.username}:***@${u.host}${u.pathname}" has a password in it; put it in LIFEBOAT_SFTP_PASSWORD (or the credentials command), never in a URL`);
  const clean = (p: string): string => decodeURIComponent(p).replace(/^\/+|\/+$/g, '');
  switch (u.protocol) {
    case 's3:': {
      const bucket = u.hostname;
      if (!/^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/.test(bucket)) throw new BackupError('badConfig', `${what}: "${bucket}" in ${url} is not a valid bucket name (3 to 63 lower-case letters, digits, dots and hyphens)`);
      return { kind: 's3', bucket, prefix: clean(u.pathname) };
    }
    case 'sftp:': {
      if (!u.hostname) throw new BackupError('badConfig', `${what}: ${url} names no host`);
      const user = decodeURIComponent(u.username) || os.userInfo().username;
      const p = decodeURIComponent(u.pathname);
      if (!p || p === '/') throw new BackupError('badConfig', `${what}: ${url} names no folder (sftp://user@host/path)`);
      return { kind: 'sftp', user, host: u.hostname.replace(/^\[|\]$/g, ''), port: u.port ? Number(u.port) : 22, path: p };
    }
    case 'file:': {
      if (u.host && u.host !== 'localhost') throw new BackupError('badConfig', `${what}: ${url}: a file URL names no host (file:///abs/folder)`);
      return { kind: 'file', path: fileURLToPath(u) };
    }
    default:
      throw new BackupError('badConfig', `${what}: "${url}" is not a supported off-site URL (s3://, sftp:// or file://)`);
  }
}

/** Settings of a remote (the same in VS Code's settings and the CLI's flags). */
export interface RemoteSettings {
  url: string;
  /** What named the URL, for errors: "lifeboat.offsite.url", "--to". */
  urlSource: string;
  /** S3: a custom endpoint (R2, B2, MinIO...). */
  endpoint?: string;
  region?: string;
  bandwidthKiBps?: number;
  /** For a new remote: encrypt it (default true). */
  encrypt?: boolean;
  /** How long one request (S3) or connecting (SFTP) may take before it is a timeout. */
  timeoutMs?: number;
}

/** Secrets, resolved by the front end (the CLI's environment, VS Code's SecretStorage). */
export interface RemoteSecrets {
  s3?: { credentials: S3Credentials | (() => Promise<S3Credentials>); source: string };
  sftp?: {
    password?: string;
    privateKeyFile?: string;
    passphrase?: string;
    source: string;
    hostKeySha256?: string;
    /** known_hosts checking (files, accept-new); default OpenSSH's files, strict. */
    knownHosts?: HostKeyPolicy;
  };
  passphrase?: Passphrase;
}

export function remoteBackend(s: RemoteSettings, secrets: RemoteSecrets): ObjectBackend {
  const loc = parseRemoteUrl(s.url, s.urlSource);
  switch (loc.kind) {
    case 's3':
      if (!secrets.s3) throw new BackupError('badConfig', `${s.url}: no S3 credentials (set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or AWS_PROFILE)`);
      return new S3Backend({
        bucket: loc.bucket,
        prefix: loc.prefix,
        region: s.region || 'us-east-1',
        endpoint: s.endpoint || undefined,
        credentials: secrets.s3.credentials,
        credentialSource: secrets.s3.source,
        bandwidthKiBps: s.bandwidthKiBps || undefined,
        requestTimeoutMs: s.timeoutMs,
      });
    case 'sftp':
      return new SftpBackend({
        host: loc.host,
        port: loc.port,
        username: loc.user,
        root: loc.path,
        password: secrets.sftp?.password,
        privateKeyPath: secrets.sftp?.privateKeyFile,
        passphrase: secrets.sftp?.passphrase,
        readyTimeoutMs: s.timeoutMs,
        hostKeySha256: secrets.sftp?.hostKeySha256,
        knownHosts: secrets.sftp?.knownHosts,
        bandwidthKiBps: s.bandwidthKiBps || undefined,
      });
    case 'file':
      return new FolderBackend(loc.path);
  }
}

export function openRemote(s: RemoteSettings, secrets: RemoteSecrets, o: { clock?: Clock; retry?: RetryOptions; scryptLogN?: number; prepared?: PreparedKey } = {}): RemoteStore {
  return new RemoteStore(remoteBackend(s, secrets), { clock: o.clock, passphrase: secrets.passphrase, encrypt: s.encrypt, retry: o.retry, scryptLogN: o.scryptLogN, prepared: o.prepared });
}

/** Runs LIFEBOAT_PASSWORD_COMMAND through the shell; its standard output is the passphrase. */
export function runPasswordCommand(cmd: string): Promise<string> {
  return new Promise((resolve, reject) => {
    exec(cmd, { timeout: 60_000, maxBuffer: 1 << 16 }, (err, stdout, stderr) => {
      if (err) reject(new Error(`${cmd}: ${stderr.trim() || err.message}`));
      else resolve(stdout);
    });
  });
}

/**
 * The CLI's secrets, from its environment: the standard AWS variables (or a profile of the
 * shared credentials file; never the instance metadata service, whose probe would delay a
 * laptop), LIFEBOAT_SFTP_PASSWORD / LIFEBOAT_SFTP_KEY, and the passphrase from
 * LIFEBOAT_PASSWORD, LIFEBOAT_PASSWORD_FILE or LIFEBOAT_PASSWORD_COMMAND.
 */
export function secretsFromEnv(env: NodeJS.ProcessEnv, run: (cmd: string) => Promise<string>): RemoteSecrets {
  const out: RemoteSecrets = {};
  if (env.AWS_ACCESS_KEY_ID || env.AWS_SECRET_ACCESS_KEY) {
    if (!env.AWS_ACCESS_KEY_ID || !env.AWS_SECRET_ACCESS_KEY) {
      const missing = env.AWS_ACCESS_KEY_ID ? 'AWS_SECRET_ACCESS_KEY' : 'AWS_ACCESS_KEY_ID';
      out.s3 = { source: missing, credentials: () => Promise.reject(new BackupError('badConfig', `${missing} is not set (both AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY are needed)`)) };
    } else {
      out.s3 = { source: 'AWS_ACCESS_KEY_ID', credentials: { accessKeyId: env.AWS_ACCESS_KEY_ID, secretAccessKey: env.AWS_SECRET_ACCESS_KEY, sessionToken: env.AWS_SESSION_TOKEN || undefined } };
    }
  } else {
    const profile = env.AWS_PROFILE || 'default';
    const file = env.AWS_SHARED_CREDENTIALS_FILE || path.join(os.homedir(), '.aws', 'credentials');
    out.s3 = {
      source: `AWS_PROFILE ${profile} in ${file}`,
      credentials: async () => {
        const { fromIni } = await import('@aws-sdk/credential-provider-ini');
        try {
          return await fromIni({ profile, filepath: file, configFilepath: env.AWS_CONFIG_FILE })();
        } catch (e) {
          throw new BackupError('badConfig', `no S3 credentials: AWS_ACCESS_KEY_ID is not set and profile "${profile}" is not in ${file} (${(e as Error).message})`, { cause: e });
        }
      },
    };
  }
  if (env.LIFEBOAT_SFTP_PASSWORD || env.LIFEBOAT_SFTP_KEY) {
    out.sftp = { password: env.LIFEBOAT_SFTP_PASSWORD || undefined, privateKeyFile: env.LIFEBOAT_SFTP_KEY || undefined, passphrase: env.LIFEBOAT_SFTP_KEY_PASSPHRASE || undefined, source: env.LIFEBOAT_SFTP_KEY ? 'LIFEBOAT_SFTP_KEY' : 'LIFEBOAT_SFTP_PASSWORD' };
  } else {
    const key = ['id_ed25519', 'id_ecdsa', 'id_rsa'].map((k) => path.join(os.homedir(), '.ssh', k));
    out.sftp = { source: `~/.ssh keys`, privateKeyFile: key.find((k) => existsSyncQuiet(k)) };
  }
  if (env.LIFEBOAT_SFTP_HOST_KEY) out.sftp.hostKeySha256 = env.LIFEBOAT_SFTP_HOST_KEY;
  out.sftp.knownHosts = knownHostsFromEnv(env);
  if (env.LIFEBOAT_PASSWORD) out.passphrase = { source: 'LIFEBOAT_PASSWORD', get: async () => env.LIFEBOAT_PASSWORD! };
  else if (env.LIFEBOAT_PASSWORD_FILE) {
    const f = env.LIFEBOAT_PASSWORD_FILE;
    out.passphrase = {
      source: `LIFEBOAT_PASSWORD_FILE (${f})`,
      get: async () => {
        try {
          return (await fs.readFile(f, 'utf8')).replace(/\r?\n$/, '');
        } catch (e) {
          throw new BackupError('badConfig', `LIFEBOAT_PASSWORD_FILE: ${f} cannot be read (${(e as Error).message})`, { cause: e });
        }
      },
    };
  } else if (env.LIFEBOAT_PASSWORD_COMMAND) {
    const cmd = env.LIFEBOAT_PASSWORD_COMMAND;
    out.passphrase = {
      source: 'LIFEBOAT_PASSWORD_COMMAND',
      get: async () => {
        try {
          return (await run(cmd)).replace(/\r?\n$/, '');
        } catch (e) {
          throw new BackupError('badConfig', `LIFEBOAT_PASSWORD_COMMAND failed: ${(e as Error).message}`, { cause: e });
        }
      },
    };
  }
  return out;
}

/**
 * What the CLI's environment lacks to open `url` without asking anyone, or undefined when
 * it has the secrets a scheduled job needs: a passphrase (LIFEBOAT_PASSWORD, _FILE or
 * _COMMAND) unless `encrypt` is false; S3 keys or a profile's credentials file; an SFTP
 * password or key file. Reads no file but checks that the defaults exist. For a scheduled
 * off-site restore test, which is skipped (not failed) without them.
 */
export function missingSecrets(url: string, encrypt: boolean, env: NodeJS.ProcessEnv): string | undefined {
  let kind: RemoteLocation['kind'];
  try {
    kind = parseRemoteUrl(url, 'lifeboat.offsite.url').kind;
  } catch (e) {
    return (e as Error).message;
  }
  if (encrypt && !env.LIFEBOAT_PASSWORD && !env.LIFEBOAT_PASSWORD_FILE && !env.LIFEBOAT_PASSWORD_COMMAND) return 'no passphrase (LIFEBOAT_PASSWORD, LIFEBOAT_PASSWORD_FILE or LIFEBOAT_PASSWORD_COMMAND)';
  if (kind === 's3' && !env.AWS_ACCESS_KEY_ID && !env.AWS_PROFILE && !existsSyncQuiet(env.AWS_SHARED_CREDENTIALS_FILE || path.join(os.homedir(), '.aws', 'credentials'))) return 'no S3 credentials (AWS_ACCESS_KEY_ID, AWS_PROFILE)';
  if (kind === 'sftp' && !env.LIFEBOAT_SFTP_PASSWORD && !env.LIFEBOAT_SFTP_KEY && !['id_ed25519', 'id_ecdsa', 'id_rsa'].some((k) => existsSyncQuiet(path.join(os.homedir(), '.ssh', k)))) return 'no SFTP password or key (LIFEBOAT_SFTP_PASSWORD, LIFEBOAT_SFTP_KEY)';
  return undefined;
}

/**
 * SFTP host key checking from the environment: `LIFEBOAT_SFTP_KNOWN_HOSTS` (one file, or
 * several separated by the path delimiter) replaces OpenSSH's `~/.ssh/known_hosts` and
 * `/etc/ssh/ssh_known_hosts`; `LIFEBOAT_SFTP_ACCEPT_NEW=1` records an unknown host's key in
 * the first file and connects (OpenSSH's `StrictHostKeyChecking=accept-new`). BackupError
 * 'badConfig' naming the variable for a value that is not a yes or a no.
 */
export function knownHostsFromEnv(env: NodeJS.ProcessEnv): HostKeyPolicy {
  const raw = env.LIFEBOAT_SFTP_ACCEPT_NEW?.trim().toLowerCase() ?? '';
  let acceptNew: boolean;
  if (['1', 'true', 'yes', 'on'].includes(raw)) acceptNew = true;
  else if (['', '0', 'false', 'no', 'off'].includes(raw)) acceptNew = false;
  else throw new BackupError('badConfig', `LIFEBOAT_SFTP_ACCEPT_NEW: "${env.LIFEBOAT_SFTP_ACCEPT_NEW}" is neither 1 (record an unknown SFTP host's key on first use) nor 0`);
  const files = (env.LIFEBOAT_SFTP_KNOWN_HOSTS ?? '').split(path.delimiter).filter(Boolean);
  if (files.some((f) => !path.isAbsolute(f))) throw new BackupError('badConfig', `LIFEBOAT_SFTP_KNOWN_HOSTS: "${env.LIFEBOAT_SFTP_KNOWN_HOSTS}" must be absolute paths of known_hosts files`);
  return files.length ? { files, acceptNew, source: `LIFEBOAT_SFTP_KNOWN_HOSTS (${files.join(path.delimiter)})` } : { files: defaultKnownHostsFiles(), acceptNew };
}

function existsSyncQuiet(p: string): boolean {
  try {
    return statSync(p).isFile();
  } catch {
    return false;
  }
}

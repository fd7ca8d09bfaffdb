import { createHash, createHmac, randomBytes } from 'node:crypto';
import { promises as fs } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { BackupError } from '../../errors';

/**
 * SSH host key checking as OpenSSH does it with `StrictHostKeyChecking=yes` (or
 * `accept-new` when asked): the server's key must be recorded for its name in a
 * known_hosts file. Reads the OpenSSH format: plain and hashed (`|1|salt|hash`) host
 * names, patterns with `*`, `?` and `!`, `[host]:port` for ports other than 22, and the
 * `@revoked` marker. `@cert-authority` lines are recognised but not supported (host
 * certificates are not checked): a host known only through one is refused, saying so.
 */

/** One usable line of a known_hosts file. */
export interface KnownHostLine {
  file: string;
  line: number;
  marker?: 'revoked' | 'cert-authority';
  /** The host field as written: comma-separated patterns, or one `|1|salt|hash`. */
  hosts: string;
  keyType: string;
  /** The key blob (SSH wire format), decoded from the base64 field. */
  key: Buffer;
}

/** How `checkHostKey` decides. */
export interface HostKeyPolicy {
  /** The known_hosts files read, in order; missing ones are skipped. */
  files: string[];
  /** Record an unknown host's key in `files[0]` and connect (OpenSSH's `accept-new`). */
  acceptNew?: boolean;
  /** What named the files, for messages: `LIFEBOAT_SFTP_KNOWN_HOSTS`, or undefined for OpenSSH's defaults. */
  source?: string;
}

/** What a refusal is about; on `HostKeyError`, so that a front end can offer to trust a new host. */
export interface HostKeyFacts {
  kind: 'unknown' | 'changed' | 'revoked' | 'certAuthority';
  /** `host`, or `[host]:port` for a port other than 22: the name known_hosts records. */
  hostId: string;
  host: string;
  port: number;
  keyType: string;
  /** The offered key, base64 (as in a known_hosts line). */
  key: string;
  /** `SHA256:...` of the offered key, as `ssh-keygen -l` prints it. */
  fingerprint: string;
  /** Where a trusted key would be recorded: the first known_hosts file. */
  file: string;
}

/** A refused host key. `reason` is 'badConfig': not retried, the user has to decide. */
export class HostKeyError extends BackupError {
  constructor(
    readonly hostKey: HostKeyFacts,
    message: string,
  ) {
    super('badConfig', message);
  }
}

/** OpenSSH's default files: the user's, then the system's. */
export function defaultKnownHostsFiles(): string[] {
  return [path.join(os.homedir(), '.ssh', 'known_hosts'), '/etc/ssh/ssh_known_hosts'];
}

/** The name known_hosts records for a host: `host` on port 22, `[host]:port` otherwise (lower-case). */
export function hostIdOf(host: string, port: number): string {
  const h = host.toLowerCase();
  return port === 22 ? h : `[${h}]:${port}`;
}

/** `SHA256:<base64, no padding>` of a key blob, as `ssh-keygen -l` prints it. */
export function fingerprintOf(key: Buffer): string {
  return `SHA256:${createHash('sha256').update(key).digest('base64').replace(/=+$/, '')}`;
}

/** The key type a blob names (its first SSH string), or undefined when it is not one. */
export function keyTypeOf(key: Buffer): string | undefined {
  if (key.length < 4) return undefined;
  const n = key.readUInt32BE(0);
  if (n === 0 || n > 64 || 4 + n > key.length) return undefined;
  return key.subarray(4, 4 + n).toString('latin1');
}

/** ssh2's host key algorithms that present a key of `keyType` (none for types it cannot check). */
export function algorithmsFor(keyType: string): string[] {
  if (keyType === 'ssh-rsa') return ['rsa-sha2-512', 'rsa-sha2-256', 'ssh-rsa'];
  if (keyType === 'ssh-ed25519' || keyType === 'ssh-dss' || /^ecdsa-sha2-nistp(256|384|521)$/.test(keyType)) return [keyType];
  return [];
}

/** Parses a known_hosts file's text. Lines that are not valid entries are ignored, as OpenSSH does. */
export function parseKnownHosts(text: string, file: string): KnownHostLine[] {
  const out: KnownHostLine[] = [];
  const lines = text.split(/\r?\n/);
  for (let i = 0; i < lines.length; i++) {
    const raw = lines[i]!.trim();
    if (!raw || raw.startsWith('#')) continue;
    const f = raw.split(/\s+/);
    let marker: KnownHostLine['marker'];
    if (f[0]!.startsWith('@')) {
      const m = f.shift()!;
      if (m === '@revoked') marker = 'revoked';
      else if (m === '@cert-authority') marker = 'cert-authority';
      else continue;
    }
    const [hosts, keyType, b64] = f;
    if (!hosts || !keyType || !b64 || !/^[A-Za-z0-9+/]+={0,2}$/.test(b64)) continue;
    const key = Buffer.from(b64, 'base64');
    if (keyTypeOf(key) !== keyType) continue;
    out.push({ file, line: i + 1, marker, hosts, keyType, key });
  }
  return out;
}

/** OpenSSH's wildcard match: `*` any run, `?` one character; case-insensitive. */
function wildcard(pattern: string, s: string): boolean {
  const re = new RegExp(`^${pattern.replace(/[.+^${}()|[\]\\]/g, '\\$&').replace(/\*/g, '.*').replace(/\?/g, '.')}$`, 'i');
  return re.test(s);
}

/** True when a line's host field names `hostId` (hashed, or patterns where any `!` match excludes). */
export function hostMatches(hosts: string, hostId: string): boolean {
  if (hosts.startsWith('|1|')) {
    const [, , salt, hash] = hosts.split('|');
    if (!salt || !hash) return false;
    return createHmac('sha1', Buffer.from(salt, 'base64')).update(hostId).digest('base64') === hash;
  }
  let hit = false;
  for (const p of hosts.split(',')) {
    if (!p) continue;
    if (p.startsWith('!')) {
      if (wildcard(p.slice(1), hostId)) return false;
    } else if (wildcard(p, hostId)) hit = true;
  }
  return hit;
}

/** Every entry of `files` (missing files are none); BackupError 'badConfig' naming a file that exists but cannot be read. */
export async function readKnownHosts(files: string[]): Promise<KnownHostLine[]> {
  const out: KnownHostLine[] = [];
  for (const file of files) {
    let text: string;
    try {
      text = await fs.readFile(file, 'utf8');
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      if (code === 'ENOENT' || code === 'ENOTDIR') continue;
      throw new BackupError('badConfig', `${file}: the known hosts file cannot be read (${(e as Error).message})`, { cause: e, path: file });
    }
    out.push(...parseKnownHosts(text, file));
  }
  return out;
}

/** The lines of `all` that concern `hostId`. */
export function linesFor(all: KnownHostLine[], hostId: string): KnownHostLine[] {
  return all.filter((l) => hostMatches(l.hosts, hostId));
}

/** The host key algorithms to offer for a host with these lines: only the types recorded for it (none recorded: undefined, ssh2's defaults). */
export function offeredAlgorithms(lines: KnownHostLine[]): string[] | undefined {
  const algos = [...new Set(lines.filter((l) => !l.marker).flatMap((l) => algorithmsFor(l.keyType)))];
  return algos.length ? algos : undefined;
}

export type HostKeyVerdict = { ok: true; known: KnownHostLine } | { ok: true; added: string; keyType: string } | { ok: false; error: HostKeyError };

/** How to trust a host, for the "unknown host" message. */
function howToTrust(host: string, port: number, fingerprint: string, file: string): string {
  const scan = `ssh-keyscan${port === 22 ? '' : ` -p ${port}`} ${host} >> ${file.replace(os.homedir(), '~')}`;
  return `if that is the server's key, trust it with \`${scan}\` (or connect once with ssh), or set LIFEBOAT_SFTP_HOST_KEY=${fingerprint}, or LIFEBOAT_SFTP_ACCEPT_NEW=1 to record a new host's key on first use`;
}

/**
 * Decides on the key `key` that `host:port` offered, given `lines` (read from `policy.files`
 * before connecting). Never throws: a refusal is `{ ok: false, error }`, one line for `where`
 * (the URL): a key marked `@revoked`; a host known with other keys (possible
 * man-in-the-middle, naming both fingerprints and the line); a host known only through
 * `@cert-authority` (not supported); an unknown host (with its fingerprint and how to trust
 * it), unless `acceptNew`, when the caller is to record it with `recordHostKey`.
 */
export function checkHostKey(where: string, host: string, port: number, key: Buffer, lines: KnownHostLine[], policy: HostKeyPolicy): HostKeyVerdict {
  const hostId = hostIdOf(host, port);
  const keyType = keyTypeOf(key) ?? 'unknown';
  const fingerprint = fingerprintOf(key);
  const file = policy.files[0] ?? defaultKnownHostsFiles()[0]!;
  const facts = (kind: HostKeyFacts['kind']): HostKeyFacts => ({ kind, hostId, host, port, keyType, key: key.toString('base64'), fingerprint, file });
  const at = (l: KnownHostLine): string => `${l.file.replace(os.homedir(), '~')}:${l.line}`;
  const mine = linesFor(lines, hostId);
  const revoked = lines.find((l) => l.marker === 'revoked' && l.key.equals(key));
  if (revoked) return { ok: false, error: new HostKeyError(facts('revoked'), `${where}: the host key of ${hostId} (${keyType} ${fingerprint}) is marked @revoked in ${at(revoked)}; refusing to connect`) };
  const plain = mine.filter((l) => !l.marker);
  const match = plain.find((l) => l.key.equals(key));
  if (match) return { ok: true, known: match };
  if (plain.length) {
    const old = plain.find((l) => l.keyType === keyType) ?? plain[0]!;
    return {
      ok: false,
      error: new HostKeyError(
        facts('changed'),
        `${where}: HOST KEY MISMATCH for ${hostId}: the server offered ${keyType} ${fingerprint}, but ${at(old)} records ${old.keyType} ${fingerprintOf(old.key)}; someone may be intercepting the connection (man-in-the-middle), so Lifeboat refuses to connect. If the server's key really changed, remove the old entry (\`ssh-keygen -R '${hostId}'\`) and trust the new one`,
      ),
    };
  }
  if (mine.some((l) => l.marker === 'cert-authority')) {
    return {
      ok: false,
      error: new HostKeyError(
        facts('certAuthority'),
        `${where}: ${hostId} is known only through a @cert-authority line, and Lifeboat does not check host certificates; record the host's own key (${keyType} ${fingerprint}): ${howToTrust(host, port, fingerprint, file)}`,
      ),
    };
  }
  if (policy.acceptNew) return { ok: true, added: file, keyType };
  const checked = policy.source ?? policy.files.map((f) => f.replace(os.homedir(), '~')).join(' or ');
  return {
    ok: false,
    error: new HostKeyError(facts('unknown'), `${where}: the host ${hostId} is not known (not in ${checked}); it offered ${keyType} ${fingerprint}: ${howToTrust(host, port, fingerprint, file)}`),
  };
}

/**
 * The refusal when a host is recorded only with key types the server does not offer (the
 * handshake found no common host key format): a changed key as far as anyone can tell.
 */
export function keyTypeNotOffered(where: string, host: string, port: number, lines: KnownHostLine[], policy: HostKeyPolicy): HostKeyError {
  const hostId = hostIdOf(host, port);
  const old = linesFor(lines, hostId).find((l) => !l.marker);
  const file = policy.files[0] ?? defaultKnownHostsFiles()[0]!;
  const recorded = old ? `${old.file.replace(os.homedir(), '~')}:${old.line} records ${old.keyType} ${fingerprintOf(old.key)}` : 'known_hosts records it';
  return new HostKeyError(
    { kind: 'changed', hostId, host, port, keyType: '', key: '', fingerprint: '', file },
    `${where}: HOST KEY MISMATCH for ${hostId}: ${recorded}, a key type the server no longer offers; someone may be intercepting the connection (man-in-the-middle), so Lifeboat refuses to connect. If the server's key really changed, remove the old entry (\`ssh-keygen -R '${hostId}'\`) and trust the new one`,
  );
}

/**
 * Appends `hostId keyType base64` to `file` (making it, and its folder with mode 0700,
 * when missing), the host name hashed as OpenSSH's `HashKnownHosts yes` writes it.
 * BackupError naming the file when it cannot be written. Safe to repeat (a second line
 * for the same key is harmless).
 */
export async function recordHostKey(file: string, facts: Pick<HostKeyFacts, 'hostId' | 'keyType' | 'key'>, o: { hash?: boolean } = {}): Promise<void> {
  let name = facts.hostId;
  if (o.hash !== false) {
    const salt = randomBytes(20);
    name = `|1|${salt.toString('base64')}|${createHmac('sha1', salt).update(facts.hostId).digest('base64')}`;
  }
  try {
    await fs.mkdir(path.dirname(file), { recursive: true, mode: 0o700 });
    let sep = '';
    try {
      const text = await fs.readFile(file, 'utf8');
      if (text && !text.endsWith('\n')) sep = '\n';
    } catch {
      // a new file
    }
    await fs.appendFile(file, `${sep}${name} ${facts.keyType} ${facts.key}\n`, { mode: 0o644 });
  } catch (e) {
    throw new BackupError('badConfig', `${file}: cannot record the host key of ${facts.hostId} (${(e as Error).message})`, { cause: e, path: file });
  }
}

/** The `HostKeyFacts` of an error or of any error in its `cause` chain (a host key refusal), else undefined. */
export function hostKeyFactsOf(e: unknown): HostKeyFacts | undefined {
  for (let x = e, i = 0; x && typeof x === 'object' && i < 8; x = (x as { cause?: unknown }).cause, i++) {
    const f = (x as { hostKey?: HostKeyFacts }).hostKey;
    if (f && typeof f === 'object' && typeof f.kind === 'string') return f;
  }
  return undefined;
}

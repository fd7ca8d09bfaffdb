import path from 'node:path';
import type { Settings } from '../core/config';
import type { Engine } from '../core/engine';
import { BackupError } from '../core/errors';
import { isVerified, type BackupRecord } from '../core/model';
import { runPasswordCommand, secretsFromEnv, type RemoteSettings } from '../core/store/remote/openRemote';
import type { RemoteStore } from '../core/store/remote/remoteStore';

function positiveInt(v: string | undefined): number | undefined {
  const n = Number(v);
  return v && Number.isInteger(n) && n > 0 ? n : undefined;
}

/** Remotes a command opened: closed when it ends, so that no connection keeps the process alive. */
const opened = new Set<RemoteStore>();

export async function closeRemotes(): Promise<void> {
  for (const r of opened) await r.close().catch(() => undefined);
  opened.clear();
}


/**
 * The remote a command names: `url` from --to/--from, else the setting lifeboat.offsite.url;
 * endpoint and region from the settings, else AWS_ENDPOINT_URL(_S3) and AWS_REGION.
 * BackupError 'badConfig' naming the flag or setting when there is none.
 */
export function cliRemote(engine: Engine, url: string | undefined, flag: string, settings: Settings, o: { encrypt?: boolean; endpoint?: string } = {}): RemoteStore {
  return cliRemoteWith(engine, cliRemoteSettings(url, flag, settings, o));
}

/** `cliRemote` for settings already resolved (a push also hands them to its worker). */
export function cliRemoteWith(engine: Engine, spec: { remote: RemoteSettings; scryptLogN?: number }): RemoteStore {
  const remote = engine.remote(spec.remote, secretsFromEnv(process.env, runPasswordCommand), { scryptLogN: spec.scryptLogN });
  opened.add(remote);
  return remote;
}

/** What `cliRemote` opens, as data (for a copy run in a worker, which reads the secrets from the same environment). */
export function cliRemoteSettings(url: string | undefined, flag: string, settings: Settings, o: { encrypt?: boolean; endpoint?: string } = {}): { remote: RemoteSettings; scryptLogN?: number } {
  const env = process.env;
  const u = url || settings.offsite.url;
  if (!u) throw new BackupError('badConfig', `${flag}: no off-site URL given, and the setting lifeboat.offsite.url is empty`);
  const rs: RemoteSettings = {
    url: u,
    urlSource: url ? flag : 'lifeboat.offsite.url',
    endpoint: o.endpoint || settings.offsite.endpoint || env.AWS_ENDPOINT_URL_S3 || env.AWS_ENDPOINT_URL || undefined,
    region: settings.offsite.region || env.AWS_REGION || env.AWS_DEFAULT_REGION || undefined,
    bandwidthKiBps: settings.offsite.bandwidthKiBps || undefined,
    encrypt: o.encrypt ?? settings.offsite.encrypt,
    timeoutMs: positiveInt(env.LIFEBOAT_OFFSITE_TIMEOUT_MS),
  };
  const scrypt = Number(env.LIFEBOAT_SCRYPT_LOG_N);
  return { remote: rs, scryptLogN: Number.isInteger(scrypt) && scrypt >= 10 && scrypt <= 22 ? scrypt : undefined };
}

/**
 * A backup on a remote by id, object name or `latest` (the newest verified backup; of the
 * database `db` names, by path or file name, when given). BackupError 'notFound' naming the
 * remote when there is none.
 */
export async function remoteBackup(engine: Engine, remote: RemoteStore, ref: string, db?: string): Promise<BackupRecord> {
  const { records } = await engine.listStore(remote);
  const ofDb = db ? records.filter((r) => r.manifest.source.path === path.resolve(db) || path.basename(r.manifest.source.path) === db) : records;
  if (db && !ofDb.length) throw new BackupError('notFound', `--db ${db}: no backups of that database on ${remote.label}`);
  if (ref === 'latest') {
    const dbs = new Set(ofDb.map((r) => r.manifest.source.path));
    if (dbs.size > 1) throw new BackupError('badConfig', `latest: ${remote.label} holds backups of ${dbs.size} databases (${[...dbs].map((d) => path.basename(d)).join(', ')}); name one with --db`);
    const r = ofDb.find((x) => isVerified(x));
    if (!r) throw new BackupError('notFound', `latest: no verified backup on ${remote.label}`);
    return r;
  }
  const base = ref.split('/').pop()!;
  const r = ofDb.find((x) => x.id === ref || x.object === ref || x.id === base || x.object.split('/').pop() === base);
  if (!r) throw new BackupError('notFound', `${ref}: no such backup on ${remote.label}`);
  return r;
}

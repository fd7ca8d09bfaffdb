import { createHash } from 'node:crypto';
import { BackupError } from '../../errors';
import type { Manifest, RepositoryMap } from '../../model';
import type { BackupStore } from '../../store/store';
import { parseManifest } from '../manifestSchema';
import { readPackIndex, type PackIndex } from './pack';
import { extentProblems } from './pageMap';

/** Where format v2 keeps its objects in a store. */
export const SNAPSHOT_FOLDER = 'snapshots';
export const PACK_FOLDER = 'packs';
const SNAPSHOT_EXT = '.json';
/** A manifest bigger than this is not one Lifeboat wrote (a 1 GiB database's map is tens of KiB). */
const MANIFEST_MAX_BYTES = 64 * 1024 * 1024;
const HASH = 32;
/** How a sealed manifest's text ends (sealManifest puts the seal last). */
const SEAL_TAIL = /,"seal":"([0-9a-f]{64})"\}$/;

export function snapshotObject(id: string, n = 1): string {
  return `${SNAPSHOT_FOLDER}/${n > 1 ? `${id}-${n}` : id}${SNAPSHOT_EXT}`;
}

export function isSnapshotObject(name: string): boolean {
  const rest = name.startsWith(`${SNAPSHOT_FOLDER}/`) ? name.slice(SNAPSHOT_FOLDER.length + 1) : '';
  return rest.length > SNAPSHOT_EXT.length && rest.endsWith(SNAPSHOT_EXT) && !rest.includes('/');
}

export function snapshotIdOf(object: string): string {
  const base = object.split('/').pop() ?? object;
  return base.endsWith(SNAPSHOT_EXT) ? base.slice(0, -SNAPSHOT_EXT.length) : base;
}

export function packObject(sha256: string): string {
  return `${PACK_FOLDER}/${sha256}.pack`;
}

/** SHA-256 over the page hashes (each 32 bytes, page order): a snapshot's root. */
export function rootOf(hashes: Uint8Array): string {
  return createHash('sha256').update(hashes).digest('hex');
}

/**
 * The bytes of a sealed snapshot manifest: its JSON with `seal`, the SHA-256 of the same
 * JSON without it. JSON written by JSON.stringify reads back to the same text, so the seal
 * is checked by serialising the parsed manifest again.
 */
export function sealManifest(m: Manifest): Buffer {
  const { seal: _drop, ...body } = m;
  const seal = createHash('sha256').update(JSON.stringify(body)).digest('hex');
  return Buffer.from(JSON.stringify({ ...body, seal }));
}

/**
 * Reads and checks a snapshot manifest: JSON, the seal, the schema of version 2, and a page
 * map that covers every page once. BackupError 'badArchive' naming the object when any of
 * that fails; 'notFound' when it is missing; 'unsupportedFormat' for a newer version.
 */
export async function readSnapshotManifest(store: BackupStore, object: string): Promise<Manifest> {
  const where = locate(store, object);
  const bad = (why: string) => new BackupError('badArchive', `${where}: ${why}`, { path: where });
  const st = await store.stat(object);
  if (!st) throw new BackupError('notFound', `${where}: no such backup`, { path: where });
  if (st.size > MANIFEST_MAX_BYTES) throw bad(`a snapshot manifest of ${st.size} bytes is not one Lifeboat wrote`);
  const bytes = await store.readBytes(object);
  let json: unknown;
  let text: string;
  try {
    text = new TextDecoder('utf-8', { fatal: true }).decode(bytes);
    json = JSON.parse(text);
  } catch {
    throw bad('the snapshot manifest is not valid UTF-8 JSON (damaged or cut short)');
  }
  const m = parseManifest(json, where, [2]);
  // The seal covers the JSON as written (the schema's output may order keys differently).
  // sealManifest writes it last, so the text before it is that JSON: hashed as it is,
  // without serialising a large page map again.
  const { seal, ...body } = json as Record<string, unknown>;
  const tail = SEAL_TAIL.exec(text.slice(-80));
  const hashOf = (t: string) => createHash('sha256').update(t).digest('hex');
  const asWritten = tail && tail[1] === seal && hashOf(`${text.slice(0, text.length - tail[0].length)}}`) === seal;
  if (!asWritten && hashOf(JSON.stringify(body)) !== seal) throw bad('the snapshot manifest does not match its seal (damaged or edited)');
  const r = m.repository!;
  if (r.pageSize !== m.image.pageSize || r.pageCount !== m.image.pageCount || r.pageSize * r.pageCount !== m.image.size) {
    throw bad(`the page map (${r.pageCount} pages of ${r.pageSize} bytes) does not match the image (${m.image.size} bytes)`);
  }
  const problems = extentProblems(r.extents, r.pageCount, r.packs.length);
  if (problems.length) throw bad(problems.slice(0, 3).join('; '));
  return m;
}

/**
 * A manifest as listings keep it: without its page map, which grows with the database's
 * history (a fragmented 1 GiB map is some 100,000 extents) and which only the code that
 * reads pages needs; that code reads the manifest from the store (readSnapshotManifest).
 */
export function withoutPageMap(m: Manifest): Manifest {
  return m.repository?.extents.length ? { ...m, repository: { ...m.repository, extents: [] } } : m;
}

/** Throws when `r` is a listed manifest's map (withoutPageMap): a bug, never a finding about a backup. */
export function requirePageMap(r: RepositoryMap): void {
  if (!r.extents.length && r.pageCount > 0) throw new Error('internal: a listed manifest has no page map; read the manifest from the store');
}

function locate(store: BackupStore, object: string): string {
  return store.localPath(object) ?? `${store.url.replace(/\/$/, '')}/${object}`;
}

/** Pack indexes read once per use (ranged reads of footer and index). */
export class PackIndexes {
  private readonly cache = new Map<string, Promise<PackIndex>>();
  constructor(private readonly store: BackupStore) {}
  get(pack: string): Promise<PackIndex> {
    let p = this.cache.get(pack);
    if (!p) {
      p = readPackIndex(this.store, pack);
      this.cache.set(pack, p);
    }
    return p;
  }
}

/**
 * The hash of every page of a snapshot, in page order, read from the indexes of its packs,
 * and checked against the map's root. BackupError 'badArchive' naming the backup and the
 * pack when an entry is missing or the hashes do not add up to the root; 'notFound' when a
 * pack is missing.
 */
export async function pageHashesOf(store: BackupStore, m: Manifest, indexes = new PackIndexes(store)): Promise<Buffer> {
  const r = m.repository!;
  requirePageMap(r);
  const out = Buffer.alloc(r.pageCount * HASH);
  for (const [first, count, packNo, entry] of r.extents) {
    const pack = r.packs[packNo];
    const ix = await indexes.get(pack);
    const where = `${store.label}/${pack}`;
    if (entry + count > ix.count) throw new BackupError('badArchive', `backup ${m.id}: pages ${first}-${first + count - 1} point at entries up to ${entry + count - 1} of ${where}, which has ${ix.count}`, { path: where });
    for (let k = 0; k < count; k++) {
      if (ix.lengths[entry + k] !== r.pageSize) throw new BackupError('badArchive', `backup ${m.id}: page ${first + k} is stored with ${ix.lengths[entry + k]} bytes in ${where}, not ${r.pageSize}`, { path: where });
    }
    ix.hashes.copy(out, (first - 1) * HASH, entry * HASH, (entry + count) * HASH);
  }
  if (rootOf(out) !== r.root) throw new BackupError('badArchive', `backup ${m.id}: the page hashes in its packs do not add up to its root (a pack was replaced or damaged)`);
  return out;
}

/** The repository map's packs a set of manifests references. */
export function referencedPacks(manifests: Iterable<Manifest>): Set<string> {
  const s = new Set<string>();
  for (const m of manifests) for (const p of m.repository?.packs ?? []) s.add(p);
  return s;
}

export type { RepositoryMap };

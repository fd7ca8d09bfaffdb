import { createHash } from 'node:crypto';
import { promises as fs } from 'node:fs';
import type { ProgressListener } from '../../context';
import { BackupError, fsError } from '../../errors';
import { crashPoint } from '../../faults';
import { writevAll } from '../../fsutil';
import type { Manifest } from '../../model';
import type { BackupStore } from '../../store/store';
import { readPackBlockRaw, type PackIndex } from './pack';
import { PackIndexes, rootOf, requirePageMap } from './snapshotManifest';

const HASH = 32;
/** Decoded blocks kept while rebuilding, in bytes (a block is up to 64 pages). */
const CACHE_BYTES = 16 * 1024 * 1024;
/** Blocks decoded ahead of the one being written (Brotli runs on libuv's pool, so on both cores). */
const AHEAD = 4;
/** Bytes gathered before one write. */
const WRITE_CHUNK = 4 * 1024 * 1024;
/** Pack indexes read at once (from a remote, each is a ranged request or two). */
const INDEX_READS = 8;
/**
 * Written bytes after which their flush to disk is started while the rebuild goes on, so
 * that the closing fsync finds little left to write.
 */
const SYNC_EVERY = 64 * 1024 * 1024;

/** Consecutive pages of the image held by consecutive entries of one block. */
interface Visit {
  pack: string;
  block: number;
  key: string;
  /** The first entry and how many. */
  entry: number;
  count: number;
}

/**
 * Rebuilds a v2 snapshot's image into `outPath` (replaced if present) from its packs, in
 * page order. Before anything is written, the page hashes in the packs' indexes must add
 * up to the map's root and every entry the map points at must be a whole page. Blocks are
 * decoded a few ahead, every page of a block checked against its hash (also pages this
 * image does not use: damage in a pack is found by every backup that reads the block),
 * and written as they come; the file's SHA-256 and size must equal the manifest's
 * (sealed) `image.sha256` and `image.size`, which is what proves the rebuilt bytes are
 * the image the backup made and verified. The file is fsynced.
 *
 * BackupError 'badArchive' naming the pack (and backup) at the damage, 'notFound' for a
 * missing pack; the partial file is removed.
 */
export async function rebuildImage(
  store: BackupStore,
  m: Manifest,
  outPath: string,
  o: { signal?: AbortSignal; onProgress?: ProgressListener } = {},
): Promise<{ sha256: string; size: number }> {
  const r = m.repository!;
  requirePageMap(r);
  const indexes = new PackIndexes(store);
  const whole = createHash('sha256');
  const named = (err: unknown): never => {
    if (err instanceof BackupError) throw new BackupError(err.reason, `backup ${m.id}: ${err.message}`, { cause: err, path: err.path });
    throw err;
  };

  // Every index first, a few at a time, in the order the map first uses the packs.
  const ixOf = new Map<string, PackIndex>();
  {
    let next = 0;
    const reader = async (): Promise<void> => {
      while (next < r.packs.length) {
        if (o.signal?.aborted) throw new BackupError('cancelled', 'cancelled');
        const pack = r.packs[next++];
        ixOf.set(pack, await indexes.get(pack));
      }
    };
    const readers = Array.from({ length: Math.min(INDEX_READS, r.packs.length) }, reader);
    // Wait for all, so that none is left running after the first failure.
    const settled = await Promise.allSettled(readers);
    for (const s of settled) if (s.status === 'rejected') named(s.reason);
  }

  // The blocks in the order the pages need them, and the pages' hashes from the indexes.
  const hashes = Buffer.alloc(r.pageCount * HASH);
  const visits: Visit[] = [];
  for (const [first, count, packNo, entry] of r.extents) {
    const pack = r.packs[packNo];
    const ix = ixOf.get(pack)!;
    const where = `${store.label}/${pack}`;
    if (entry + count > ix.count) throw new BackupError('badArchive', `backup ${m.id}: pages ${first}-${first + count - 1} point past the ${ix.count} entries of ${where}`, { path: where });
    ix.hashes.copy(hashes, (first - 1) * HASH, entry * HASH, (entry + count) * HASH);
    for (let k = 0; k < count; k++) {
      const e = entry + k;
      if (ix.lengths[e] !== r.pageSize) throw new BackupError('badArchive', `backup ${m.id}: page ${first + k} is stored with ${ix.lengths[e]} bytes in ${where}, not ${r.pageSize}`, { path: where });
      const block = ix.blockOf[e];
      const last = visits.at(-1);
      if (last && last.pack === pack && last.block === block && last.entry + last.count === e) last.count++;
      else visits.push({ pack, block, key: `${pack}#${block}`, entry: e, count: 1 });
    }
  }
  if (rootOf(hashes) !== r.root) throw new BackupError('badArchive', `backup ${m.id}: the page hashes in its packs do not add up to its root hash`);

  // Decoded blocks: in flight or done, least recently used first.
  const cache = new Map<string, { raw: Promise<Buffer>; bytes: number }>();
  let cached = 0;
  const decode = (v: Visit): Promise<Buffer> => {
    const hit = cache.get(v.key);
    if (hit) {
      cache.delete(v.key);
      cache.set(v.key, hit);
      return hit.raw;
    }
    const raw = readPackBlockRaw(store, v.pack, ixOf.get(v.pack)!, v.block).catch(named);
    raw.catch(() => undefined);
    const slot = { raw, bytes: 0 };
    void raw.then((b) => {
      if (cache.get(v.key) !== slot) return; // evicted before it was decoded
      slot.bytes = b.length;
      cached += slot.bytes;
    }, () => undefined);
    cache.set(v.key, slot);
    while (cached > CACHE_BYTES && cache.size > AHEAD + 1) {
      const [k, old] = cache.entries().next().value!;
      cache.delete(k);
      cached -= old.bytes;
    }
    return raw;
  };

  let fh: fs.FileHandle | undefined;
  let pending: Buffer[] = [];
  let pendingBytes = 0;
  let written = 0;
  let queued = 0;
  /** The write in flight (one at a time, in order), and the background flush to disk. */
  let writing: Promise<void> = Promise.resolve();
  let syncing: Promise<void> | undefined;
  let syncedAt = 0;
  const writeFailed = (e: unknown): never => {
    throw e instanceof BackupError ? e : fsError(e, outPath, 'writing the restored image');
  };
  const flush = async (): Promise<void> => {
    if (!pendingBytes) return;
    const bufs = pending;
    const n = pendingBytes;
    const at = queued;
    pending = [];
    pendingBytes = 0;
    queued += n;
    // The previous write must be done (and its failure seen) before this one is queued.
    await writing;
    writing = (async () => {
      await writevAll(fh!, bufs, at);
      written += n;
      o.onProgress?.({ phase: 'extract', done: written, total: m.image.size });
      if (!syncing && written - syncedAt >= SYNC_EVERY) {
        syncedAt = written;
        syncing = fh!.datasync().finally(() => (syncing = undefined));
        syncing.catch(() => undefined);
      }
    })().catch(writeFailed);
    writing.catch(() => undefined);
  };
  try {
    try {
      fh = await fs.open(outPath, 'w');
    } catch (e) {
      throw fsError(e, outPath, 'writing the restored image');
    }
    for (let v = 0; v < visits.length; v++) {
      if (o.signal?.aborted) throw new BackupError('cancelled', 'cancelled');
      for (let a = 1; a <= AHEAD && v + a < visits.length; a++) void decode(visits[v + a]);
      const visit = visits[v];
      const raw = await decode(visit);
      const ix = ixOf.get(visit.pack)!;
      const from = ix.offsets[visit.entry];
      const pages = raw.subarray(from, from + visit.count * r.pageSize);
      whole.update(pages);
      pending.push(pages);
      pendingBytes += pages.length;
      if (pendingBytes >= WRITE_CHUNK) await flush();
    }
    await flush();
    await writing;
    await syncing?.catch(() => undefined);
    const sha256 = whole.digest('hex');
    if (sha256 !== m.image.sha256 || written !== m.image.size) {
      throw new BackupError('badArchive', `backup ${m.id}: the rebuilt image (${written} bytes) does not match the manifest's SHA-256 and size (${m.image.size} bytes)`);
    }
    try {
      crashPoint('fsync', outPath);
      await fh.sync();
      await fh.close();
    } catch (e) {
      throw fsError(e, outPath, 'writing the restored image');
    }
    fh = undefined;
    return { sha256, size: written };
  } catch (e) {
    await writing.catch(() => undefined);
    await syncing?.catch(() => undefined);
    await fh?.close().catch(() => undefined);
    await fs.rm(outPath, { force: true }).catch(() => undefined);
    throw e;
  }
}

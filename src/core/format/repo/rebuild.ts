import { createHash } from 'node:crypto';
import { promises as fs } from 'node:fs';
import type { ProgressListener } from '../../context';
import { BackupError, fsError } from '../../errors';
import { crashPoint } from '../../faults';
import type { Manifest } from '../../model';
import type { BackupStore } from '../../store/store';
import { readPackBlock } from './pack';
import { PackIndexes, rootOf, requirePageMap } from './snapshotManifest';

const HASH = 32;
/** Decoded blocks kept while rebuilding, in bytes (a block is up to 64 pages). */
const CACHE_BYTES = 16 * 1024 * 1024;
/** Blocks decoded ahead of the one being written (Brotli runs on libuv's pool, so on both cores). */
const AHEAD = 4;
/** Bytes gathered before one write. */
const WRITE_CHUNK = 4 * 1024 * 1024;

/** One block, in the order the image needs them (a block needed again later is a new visit). */
interface Visit {
  pack: string;
  block: number;
  key: string;
}

/**
 * Rebuilds a v2 snapshot's image into `outPath` (replaced if present) from its packs, in
 * page order: blocks are decoded a few ahead, every page is checked against its hash as it
 * is read, the hashes must add up to the map's root and the file to the manifest's SHA-256
 * and size. The file is fsynced. BackupError 'badArchive' naming the pack (and backup) at
 * the first damage, 'notFound' for a missing pack; the partial file is removed.
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
  const hashes = Buffer.alloc(r.pageCount * HASH);
  const named = (err: unknown): never => {
    if (err instanceof BackupError) throw new BackupError(err.reason, `backup ${m.id}: ${err.message}`, { cause: err, path: err.path });
    throw err;
  };

  // The blocks in the order the pages need them, and the pages' hashes from the indexes.
  const visits: Visit[] = [];
  for (const [first, count, packNo, entry] of r.extents) {
    const pack = r.packs[packNo];
    const ix = await indexes.get(pack).catch(named);
    if (entry + count > ix.count) throw new BackupError('badArchive', `backup ${m.id}: pages ${first}-${first + count - 1} point past the ${ix.count} entries of ${store.label}/${pack}`);
    ix.hashes.copy(hashes, (first - 1) * HASH, entry * HASH, (entry + count) * HASH);
    for (let k = 0; k < count; k++) {
      const block = ix.blockOf[entry + k];
      const last = visits.at(-1);
      if (!last || last.pack !== pack || last.block !== block) visits.push({ pack, block, key: `${pack}#${block}` });
    }
  }
  if (rootOf(hashes) !== r.root) throw new BackupError('badArchive', `backup ${m.id}: the page hashes in its packs do not add up to its root hash`);

  // Decoded blocks: in flight or done, least recently used first.
  const cache = new Map<string, { pages: Promise<Buffer[]>; bytes: number }>();
  let cached = 0;
  const decode = (v: Visit) => {
    const hit = cache.get(v.key);
    if (hit) {
      cache.delete(v.key);
      cache.set(v.key, hit);
      return hit.pages;
    }
    const pages = indexes.get(v.pack).then((ix) => readPackBlock(store, v.pack, ix, v.block)).catch(named);
    pages.catch(() => undefined);
    const slot = { pages, bytes: 0 };
    void pages.then((p) => {
      if (cache.get(v.key) !== slot) return; // evicted before it was decoded
      slot.bytes = p.reduce((n, b) => n + b.length, 0);
      cached += slot.bytes;
    }, () => undefined);
    cache.set(v.key, slot);
    while (cached > CACHE_BYTES && cache.size > AHEAD + 1) {
      const [k, old] = cache.entries().next().value!;
      cache.delete(k);
      cached -= old.bytes;
    }
    return pages;
  };

  let fh: fs.FileHandle | undefined;
  let pending: Buffer[] = [];
  let pendingBytes = 0;
  let written = 0;
  const flush = async () => {
    if (!pendingBytes) return;
    const b = Buffer.concat(pending, pendingBytes);
    pending = [];
    pendingBytes = 0;
    let done = 0;
    while (done < b.length) done += (await fh!.write(b, done, b.length - done, written + done)).bytesWritten;
    written += b.length;
    o.onProgress?.({ phase: 'extract', done: written, total: m.image.size });
  };
  try {
    try {
      fh = await fs.open(outPath, 'w');
    } catch (e) {
      throw fsError(e, outPath, 'writing the restored image');
    }
    let v = 0;
    for (const [first, count, packNo, entry] of r.extents) {
      const pack = r.packs[packNo];
      const ix = await indexes.get(pack);
      for (let k = 0; k < count; k++) {
        const block = ix.blockOf[entry + k];
        if (visits[v].pack !== pack || visits[v].block !== block) v++;
        if (o.signal?.aborted) throw new BackupError('cancelled', 'cancelled');
        for (let a = 1; a <= AHEAD && v + a < visits.length; a++) void decode(visits[v + a]);
        const pages = await decode(visits[v]);
        const page = pages[entry + k - ix.blocks[block].firstEntry];
        if (page.length !== r.pageSize) throw new BackupError('badArchive', `backup ${m.id}: page ${first + k} is stored with ${page.length} bytes, not ${r.pageSize}`);
        whole.update(page);
        pending.push(page);
        pendingBytes += page.length;
        if (pendingBytes >= WRITE_CHUNK) await flush();
      }
    }
    await flush();
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
    await fh?.close().catch(() => undefined);
    await fs.rm(outPath, { force: true }).catch(() => undefined);
    throw e;
  }
}

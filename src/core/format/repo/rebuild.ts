import { createHash } from 'node:crypto';
import { promises as fs } from 'node:fs';
import type { ProgressListener } from '../../context';
import { BackupError, fsError } from '../../errors';
import type { Manifest } from '../../model';
import type { BackupStore } from '../../store/store';
import { readPackBlock } from './pack';
import { pagesOf } from './pageMap';
import { PackIndexes, rootOf } from './snapshotManifest';

const HASH = 32;
/** Decoded blocks kept while rebuilding (each up to 64 pages). */
const BLOCK_CACHE = 48;
/** Bytes gathered before one write. */
const WRITE_CHUNK = 4 * 1024 * 1024;

/**
 * Rebuilds a v2 snapshot's image into `outPath` (replaced if present) from its packs, in
 * page order: each block is decompressed and every page checked against its hash as it is
 * read, the hashes must add up to the map's root and the file to the manifest's SHA-256
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
  const indexes = new PackIndexes(store);
  const blocks = new Map<string, Buffer[]>();
  const whole = createHash('sha256');
  const hashes = Buffer.alloc(r.pageCount * HASH);
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
    for (const ref of pagesOf(r.extents)) {
      if (o.signal?.aborted) throw new BackupError('cancelled', 'cancelled');
      const pack = r.packs[ref.pack];
      const ix = await indexes.get(pack);
      const e = ix.entries[ref.entry];
      if (!e) throw new BackupError('badArchive', `backup ${m.id}: page ${ref.page} points at entry ${ref.entry} of ${store.label}/${pack}, which has ${ix.entries.length}`);
      const key = `${pack}#${e.block}`;
      let pages = blocks.get(key);
      if (pages) {
        blocks.delete(key);
      } else {
        pages = await readPackBlock(store, pack, ix, e.block).catch((err: unknown) => {
          if (err instanceof BackupError) throw new BackupError(err.reason, `backup ${m.id}: ${err.message}`, { cause: err, path: err.path });
          throw err;
        });
        if (blocks.size >= BLOCK_CACHE) blocks.delete(blocks.keys().next().value!);
      }
      blocks.set(key, pages);
      const page = pages[ref.entry - ix.blocks[e.block].firstEntry];
      if (page.length !== r.pageSize) throw new BackupError('badArchive', `backup ${m.id}: page ${ref.page} is stored with ${page.length} bytes, not ${r.pageSize}`);
      e.hash.copy(hashes, (ref.page - 1) * HASH);
      whole.update(page);
      pending.push(page);
      pendingBytes += page.length;
      if (pendingBytes >= WRITE_CHUNK) await flush();
    }
    await flush();
    if (rootOf(hashes) !== r.root) throw new BackupError('badArchive', `backup ${m.id}: the rebuilt pages do not add up to its root hash`);
    const sha256 = whole.digest('hex');
    if (sha256 !== m.image.sha256 || written !== m.image.size) {
      throw new BackupError('badArchive', `backup ${m.id}: the rebuilt image (${written} bytes) does not match the manifest's SHA-256 and size (${m.image.size} bytes)`);
    }
    try {
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

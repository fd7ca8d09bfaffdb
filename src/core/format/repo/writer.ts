import { createHash } from 'node:crypto';
import { promises as fs } from 'node:fs';
import type { ProgressListener } from '../../context';
import { BackupError, fsError } from '../../errors';
import { removeQuietly } from '../../fsutil';
import type { RepositoryMap } from '../../model';
import { scratchFile, type BackupStore } from '../../store/store';
import { checkPack, PackWriter, pageHash } from './pack';
import { packIntact } from './packIntegrity';
import type { Extent } from './pageMap';
import { packObject, requirePageMap, rootOf } from './snapshotManifest';

const HASH = 32;
/** Raw bytes of pages one pack holds at most (about 64 MiB): small enough to upload and resume. */
const PACK_RAW_BYTES = 64 * 1024 * 1024;
/** Bytes read from the image at once. */
const READ_CHUNK = 1024 * 1024;
/** slot * SLOT + entry: where a known page is (slot: a pack of `slots`). */
const SLOT = 2 ** 32;
/** Most cells of KnownPages' table in use (linear probing stays short below this). */
const LOAD = 0.7;

/**
 * Pages already in the repository, by their hash: where to point instead of storing them
 * again. An open-addressing table in flat arrays that holds no hash itself: a cell names
 * where its hash already is, in the parent's page hashes or in this image's (a 1 GiB
 * database has some 260,000 pages; a Map keyed by strings cost about 80 bytes a page and a
 * string per lookup, this about 17 bytes, none per lookup).
 */
export class KnownPages {
  /** Pack names (or '' for a pack still being written), by slot. */
  readonly slots: string[] = [];
  /** This image's page hashes, page order, as storePages fills them in. */
  private image: Buffer = Buffer.alloc(0);
  /** 0: empty cell; else 1 + where its hash is (the parent's pages first, then this image's). */
  private refs: Uint32Array;
  /** slot * SLOT + entry, by cell. */
  private vals: Float64Array;
  private count = 0;

  /**
   * Room for `expected` pages before the table grows (growing holds two tables at once);
   * `parent`: the parent's page hashes, page order.
   */
  constructor(
    expected = 1024,
    private readonly parent: Buffer = Buffer.alloc(0),
  ) {
    const cap = Math.max(1024, Math.ceil(expected / LOAD));
    this.refs = new Uint32Array(cap);
    this.vals = new Float64Array(cap);
  }

  /** The pages of a snapshot: its page hashes (page order) and its map; none from the packs in `exclude`. */
  static fromSnapshot(map: RepositoryMap, hashes: Buffer, exclude?: ReadonlySet<string>): KnownPages {
    // Room for the parent's pages and for a new image that grew a little or changed a lot.
    requirePageMap(map);
    const k = new KnownPages(Math.ceil(map.pageCount * 1.1) + 1024, hashes);
    k.slots.push(...map.packs);
    for (const [first, count, pack, entry] of map.extents) {
      if (exclude?.has(map.packs[pack])) continue;
      for (let i = 0; i < count; i++) k.addAt(first - 1 + i, pack, entry + i);
    }
    return k;
  }

  get size(): number {
    return this.count;
  }

  /** Where this image's page hashes are written (page order) before its pages are added. */
  useImageHashes(hashes: Buffer): void {
    this.image = hashes;
  }

  find(hash: Buffer): { slot: number; entry: number } | undefined {
    const at = this.probe(hash);
    if (!this.refs[at]) return undefined;
    const v = this.vals[at];
    return { slot: Math.floor(v / SLOT), entry: v % SLOT };
  }

  /** Adds page `page` of this image, whose hash is in the image hashes (the first place a hash was seen stays). */
  addImagePage(page: number, slot: number, entry: number): void {
    this.addAt(this.parent.length / HASH + page, slot, entry);
  }

  private addAt(where: number, slot: number, entry: number): void {
    if (this.count + 1 > this.refs.length * LOAD) this.grow();
    const at = this.probe(this.hashAt(where));
    if (this.refs[at]) return;
    this.refs[at] = where + 1;
    this.vals[at] = slot * SLOT + entry;
    this.count++;
  }

  private hashAt(where: number): Buffer {
    const inParent = this.parent.length / HASH;
    const [b, i] = where < inParent ? [this.parent, where] : [this.image, where - inParent];
    return b.subarray(i * HASH, i * HASH + HASH);
  }

  /** The cell holding `hash`, or the empty cell where it would go. */
  private probe(hash: Buffer): number {
    const cap = this.refs.length;
    let at = hash.readUInt32LE(0) % cap;
    const inParent = this.parent.length / HASH;
    for (;;) {
      const ref = this.refs[at];
      if (!ref) return at;
      const where = ref - 1;
      const [b, i] = where < inParent ? [this.parent, where] : [this.image, where - inParent];
      if (hash.compare(b, i * HASH, i * HASH + HASH) === 0) return at;
      at = at + 1 === cap ? 0 : at + 1;
    }
  }

  private grow(): void {
    const { refs, vals } = this;
    const cap = Math.ceil(refs.length * 1.5);
    this.refs = new Uint32Array(cap);
    this.vals = new Float64Array(cap);
    this.count = 0;
    for (let i = 0; i < refs.length; i++) {
      if (!refs[i]) continue;
      const v = vals[i];
      this.addAt(refs[i] - 1, Math.floor(v / SLOT), v % SLOT);
    }
  }
}

/**
 * Publishes a finished pack file (PackWriter.finish named it `sha256`) into the store.
 * Content-addressed: a pack already there under that name should hold these very bytes
 * (left by a backup that died before its manifest, or shared with an identical image). It
 * is kept when it is intact and `hold` keeps it from prune (prune may have found it unused,
 * and older than the running backup); otherwise ours replaces it, which also mends the
 * backups using a damaged one.
 */
export async function publishPack(store: BackupStore, file: string, sha256: string, hold?: (pack: string) => Promise<boolean>, signal?: AbortSignal): Promise<string> {
  const obj = packObject(sha256);
  try {
    await store.publishFile(file, obj);
  } catch (e) {
    if (!BackupError.is(e, 'exists')) throw e;
    if ((await packIntact(store, obj, signal)) && (await (hold?.(obj) ?? true))) await removeQuietly(file);
    else await store.publishFile(file, obj, { overwrite: true });
  }
  return obj;
}

export interface StoredPages {
  map: Omit<RepositoryMap, 'parent' | 'unchangedFrom'>;
  /** Every page's SHA-256, page order (the snapshot's root is the SHA-256 of these bytes). */
  hashes: Buffer;
  /** SHA-256 and size of the whole image. */
  sha256: string;
  size: number;
}

/**
 * Stores an image's pages in the repository: every page is hashed as the image streams;
 * a page whose hash `known` holds (the parent backup's pages, checked against its root by
 * the caller) or that this image already stored is pointed at; the others go into new
 * packs, written in the store's scratch folder, fsynced, read back in full (every block
 * decoded and every page checked against its hash) and published under their SHA-256.
 * Nothing refers to the new packs until the caller publishes a manifest; a failure leaves
 * at most packs no manifest references, which prune removes.
 */
export async function storePages(o: {
  store: BackupStore;
  image: string;
  pageSize: number;
  known?: KnownPages;
  /** Stem for temp names. */
  stem: string;
  /**
   * Makes a pack that was already in the store safe from prune until the manifest is
   * published (adds it to the backup's lease under the lock); false when it is gone.
   */
  hold?: (pack: string) => Promise<boolean>;
  signal?: AbortSignal;
  onProgress?: ProgressListener;
}): Promise<StoredPages> {
  const { store, pageSize } = o;
  const scratch = await store.scratchDir();
  let fh: fs.FileHandle | undefined;
  let writer: PackWriter | undefined;
  let writerSlot = -1;
  const newPacks: { slot: number; name: string; size: number }[] = [];
  const whole = createHash('sha256');
  try {
    try {
      fh = await fs.open(o.image, 'r');
    } catch (e) {
      throw fsError(e, o.image, 'reading the snapshot');
    }
    const size = (await fh.stat()).size;
    if (size % pageSize !== 0 || size === 0) throw new BackupError('io', `${o.image}: the snapshot's ${size} bytes are not whole pages of ${pageSize}`);
    const pageCount = size / pageSize;
    // Sized once for every page: growing the table would hold two copies at once.
    const pages = o.known ?? new KnownPages(pageCount);
    const hashes = Buffer.alloc(pageCount * HASH);
    pages.useImageHashes(hashes);
    const slotOf = new Uint32Array(pageCount);
    const entryOf = new Uint32Array(pageCount);
    const perPack = Math.max(1, Math.floor(PACK_RAW_BYTES / pageSize));
    const chunk = Buffer.alloc(Math.max(pageSize, Math.floor(READ_CHUNK / pageSize) * pageSize));
    let storedPages = 0;

    const closePack = async () => {
      if (!writer) return;
      const w = writer;
      // Until it is published the writer stays set, so that a failure removes its file.
      const done = await w.finish();
      newPacks.push({ slot: writerSlot, name: done.name, size: done.size });
      await publishPack(store, w.file, done.name, o.hold, o.signal);
      writer = undefined;
      pages.slots[writerSlot] = packObject(done.name);
    };

    let page = 0;
    while (page < pageCount) {
      if (o.signal?.aborted) throw new BackupError('cancelled', 'cancelled');
      const want = Math.min(chunk.length, (pageCount - page) * pageSize);
      let got = 0;
      while (got < want) {
        const { bytesRead } = await fh.read(chunk, got, want - got, page * pageSize + got);
        if (bytesRead === 0) throw new BackupError('io', `${o.image}: the snapshot ended early`);
        got += bytesRead;
      }
      whole.update(chunk.subarray(0, want));
      for (let at = 0; at < want; at += pageSize, page++) {
        const bytes = chunk.subarray(at, at + pageSize);
        const h = pageHash(bytes);
        h.copy(hashes, page * HASH);
        let ref = pages.find(h);
        if (!ref) {
          if (writer && writer.count >= perPack) await closePack();
          if (!writer) {
            writerSlot = pages.slots.length;
            pages.slots.push('');
            writer = new PackWriter(scratchFile(scratch, o.stem, '.pack'));
          }
          ref = { slot: writerSlot, entry: await writer.add(bytes, h) };
          pages.addImagePage(page, ref.slot, ref.entry);
          storedPages++;
        }
        slotOf[page] = ref.slot;
        entryOf[page] = ref.entry;
      }
      o.onProgress?.({ phase: 'compress', done: page * pageSize, total: size });
    }
    await closePack();
    await fh.close();
    fh = undefined;

    // Read back what was written: every block decoded, every page against its hash.
    for (const p of newPacks) {
      o.onProgress?.({ phase: 'readback', done: 0, total: p.size });
      const problems = await checkPack(store, packObject(p.name));
      if (problems.length) throw new BackupError('verifyFailed', `a pack written for this backup did not read back intact: ${problems.slice(0, 3).join('; ')}`);
    }

    // The map: only the packs it uses, numbered in order of first use.
    const finalIndex = new Map<number, number>();
    const packs: string[] = [];
    const extents: Extent[] = [];
    for (let i = 0; i < pageCount; i++) {
      let k = finalIndex.get(slotOf[i]);
      if (k === undefined) {
        k = packs.length;
        finalIndex.set(slotOf[i], k);
        packs.push(pages.slots[slotOf[i]]);
      }
      const last = extents.at(-1);
      if (last && last[2] === k && last[3] + last[1] === entryOf[i]) last[1]++;
      else extents.push([i + 1, 1, k, entryOf[i]]);
    }
    return {
      map: {
        pageSize,
        pageCount,
        root: rootOf(hashes),
        packs,
        extents,
        added: { packs: newPacks.map((p) => packObject(p.name)), pages: storedPages, bytes: newPacks.reduce((n, p) => n + p.size, 0) },
      },
      hashes,
      sha256: whole.digest('hex'),
      size,
    };
  } catch (e) {
    await fh?.close().catch(() => undefined);
    await writer?.abandon();
    throw e;
  }
}

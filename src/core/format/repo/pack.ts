import crypto, { createHash } from 'node:crypto';
import { promises as fs } from 'node:fs';
import { promisify } from 'node:util';
import zlib from 'node:zlib';
import { BackupError, fsError } from '../../errors';
import { crashPoint } from '../../faults';
import type { BackupStore } from '../../store/store';

/**
 * A pack of format v2: an immutable file of pages, named by the SHA-256 of its bytes.
 *
 *   magic        8 bytes  "LBPACK" 0x00 0x01
 *   blocks       each the Brotli-compressed concatenation of up to `blockPages` pages
 *   index        u32 blockCount, then per block: u64 offset, u32 compressed length,
 *                u32 raw length, u32 entry count; u32 entryCount, then per entry (page,
 *                in block order): 32-byte SHA-256 of the page, u32 length
 *   footer       48 bytes: u64 index offset, u32 index length, u32 0, and the SHA-256 of
 *                every byte before the footer (the seal)
 *
 * All integers little-endian. Brotli quality 1 on 64-page blocks measured here 122 to 265
 * MiB/s at a ratio of 0.56 to 0.69, deflate level 1 40 to 53 MiB/s at the same ratio
 * (shared/docs/page-repository.md). A reader needs the footer, the index and the blocks it
 * wants: ranged reads, never the whole pack.
 */
export const PACK_MAGIC = Buffer.from('LBPACK\x00\x01', 'latin1');
const FOOTER = 48;
const HASH = 32;

const brotli = promisify(zlib.brotliCompress);
const unbrotli = promisify(zlib.brotliDecompress);

export interface PackBlock {
  offset: number;
  compressedLength: number;
  rawLength: number;
  /** Index of the block's first entry in the pack. */
  firstEntry: number;
  entryCount: number;
}

export interface PackEntry {
  /** SHA-256 of the page's bytes. */
  hash: Buffer;
  length: number;
  /** Its block, and where it starts in the block's raw bytes. */
  block: number;
  at: number;
}

/**
 * A pack's index, compact: a 1 GiB database's packs hold some 260,000 entries, which as
 * one object each cost about 200 bytes apiece and seconds to build; here they cost 44.
 */
export class PackIndex {
  constructor(
    readonly blocks: PackBlock[],
    /** Entry i's SHA-256 at bytes 32i .. 32i + 32. */
    readonly hashes: Buffer,
    readonly lengths: Uint32Array,
    readonly blockOf: Uint32Array,
    readonly offsets: Uint32Array,
    /** Size of the pack in bytes. */
    readonly size: number,
  ) {}

  get count(): number {
    return this.lengths.length;
  }

  /** Entry i's hash (a view into `hashes`). */
  hashOf(i: number): Buffer {
    return this.hashes.subarray(i * HASH, i * HASH + HASH);
  }

  /** Entry i, or undefined when the pack has fewer. */
  entry(i: number): PackEntry | undefined {
    if (!Number.isInteger(i) || i < 0 || i >= this.count) return undefined;
    return { hash: this.hashOf(i), length: this.lengths[i], block: this.blockOf[i], at: this.offsets[i] };
  }
}

/** SHA-256 of a page (the key pages are stored and looked up by). */
export const pageHash: (page: Uint8Array) => Buffer =
  // The one-shot `crypto.hash` (Node 20.12+) makes no hasher object per page.
  typeof (crypto as { hash?: unknown }).hash === 'function'
    ? (page) => (crypto as unknown as { hash(alg: string, data: Uint8Array, enc: 'buffer'): Buffer }).hash('sha256', page, 'buffer')
    : (page) => createHash('sha256').update(page).digest();

/**
 * Writes one pack to a local file, page by page. Blocks are compressed on libuv's pool
 * (several at once, written in order). `finish` fsyncs the file and returns its name
 * (the SHA-256 of its bytes); the caller publishes it into a store.
 */
export class PackWriter {
  private fh: fs.FileHandle | undefined;
  private readonly digest = createHash('sha256');
  private offset = 0;
  private readonly blocks: Omit<PackBlock, 'firstEntry'>[] = [];
  /** The entries' hashes, back to back (one growing buffer, not one object per page), and lengths. */
  private hashes = Buffer.alloc(1024 * HASH);
  private readonly lengths: number[] = [];
  /** The block being filled: pages copied in, one allocation per block rather than per page. */
  private pending: Buffer | undefined;
  /** Block buffers whose compression finished, for the next blocks (fewer buffers for the GC to find). */
  private readonly spare: Buffer[] = [];
  private pendingCount = 0;
  private pendingBytes = 0;
  /** Compressions in flight, in block order. */
  private inFlight: Promise<void> = Promise.resolve();
  private flights = 0;
  private failed: unknown;

  constructor(
    readonly file: string,
    private readonly o: { blockPages?: number; maxInFlight?: number } = {},
  ) {}

  /** Entries added so far. */
  get count(): number {
    return this.lengths.length;
  }

  /** Adds a page; resolves to its entry number in this pack. */
  async add(page: Uint8Array, hash: Buffer = pageHash(page)): Promise<number> {
    if (this.failed) throw this.failed;
    if (!this.fh) await this.open();
    const n = this.lengths.length;
    if ((n + 1) * HASH > this.hashes.length) {
      const grown = Buffer.alloc(this.hashes.length * 2);
      this.hashes.copy(grown);
      this.hashes = grown;
    }
    hash.copy(this.hashes, n * HASH, 0, HASH);
    this.lengths.push(page.length);
    const blockPages = this.o.blockPages ?? 64;
    if (!this.pending || this.pendingBytes + page.length > this.pending.length) {
      const want = Math.max(blockPages * page.length, this.pendingBytes + page.length);
      const spare = this.pendingBytes === 0 ? this.spare.pop() : undefined;
      const grown = spare && spare.length >= want ? spare : Buffer.allocUnsafe(want);
      this.pending?.copy(grown, 0, 0, this.pendingBytes);
      this.pending = grown;
    }
    this.pending.set(page, this.pendingBytes);
    this.pendingBytes += page.length;
    this.pendingCount++;
    if (this.pendingCount >= blockPages) await this.cutBlock();
    return n;
  }

  /** Closes the pack: the last block, the index, the footer, fsync. Returns its name and size. */
  async finish(): Promise<{ name: string; size: number; entries: number }> {
    if (!this.fh) await this.open();
    if (this.pendingCount) await this.cutBlock();
    await this.inFlight;
    if (this.failed) throw this.failed;
    const index = encodeIndex(this.blocks, this.hashes, this.lengths);
    const indexOffset = this.offset;
    await this.write(index);
    const footer = Buffer.alloc(FOOTER);
    footer.writeBigUInt64LE(BigInt(indexOffset), 0);
    footer.writeUInt32LE(index.length, 8);
    this.digest.copy().digest().copy(footer, 16);
    // The seal is the SHA-256 of everything before the footer; the name covers the footer too.
    await this.write(footer);
    try {
      crashPoint('fsync', this.file);
      await this.fh!.sync();
      await this.fh!.close();
    } catch (e) {
      throw fsError(e, this.file, 'writing a pack');
    }
    this.fh = undefined;
    return { name: this.digest.digest('hex'), size: this.offset, entries: this.lengths.length };
  }

  /** Closes and removes the file after a failure. Never throws. */
  async abandon(): Promise<void> {
    await this.inFlight.catch(() => undefined);
    await this.fh?.close().catch(() => undefined);
    this.fh = undefined;
    await fs.rm(this.file, { force: true }).catch(() => undefined);
  }

  private async open(): Promise<void> {
    try {
      this.fh = await fs.open(this.file, 'wx');
    } catch (e) {
      throw fsError(e, this.file, 'writing a pack');
    }
    await this.write(PACK_MAGIC);
  }

  private async cutBlock(): Promise<void> {
    const buffer = this.pending!;
    const raw = buffer.subarray(0, this.pendingBytes);
    const count = this.pendingCount;
    this.pending = undefined;
    this.pendingCount = 0;
    this.pendingBytes = 0;
    const compressing = brotli(raw, { params: { [zlib.constants.BROTLI_PARAM_QUALITY]: 1, [zlib.constants.BROTLI_PARAM_SIZE_HINT]: raw.length } });
    compressing.catch(() => undefined);
    this.flights++;
    this.inFlight = this.inFlight.then(async () => {
      try {
        const c = await compressing;
        this.blocks.push({ offset: this.offset, compressedLength: c.length, rawLength: raw.length, entryCount: count });
        await this.write(c);
      } catch (e) {
        this.failed ??= e;
      } finally {
        this.flights--;
        // The compressor is done with it (settled either way).
        if (this.spare.length < 2) this.spare.push(buffer);
      }
    });
    // Back-pressure: at most a few blocks in memory at once.
    if (this.flights >= (this.o.maxInFlight ?? 4)) await this.inFlight;
    if (this.failed) throw this.failed;
  }

  private async write(b: Buffer): Promise<void> {
    this.digest.update(b);
    try {
      let done = 0;
      while (done < b.length) done += (await this.fh!.write(b, done, b.length - done, this.offset + done)).bytesWritten;
    } catch (e) {
      throw fsError(e, this.file, 'writing a pack');
    }
    this.offset += b.length;
  }
}

function encodeIndex(blocks: Omit<PackBlock, 'firstEntry'>[], hashes: Buffer, lengths: number[]): Buffer {
  const b = Buffer.alloc(4 + blocks.length * 20 + 4 + lengths.length * (HASH + 4));
  let at = b.writeUInt32LE(blocks.length, 0);
  for (const k of blocks) {
    b.writeBigUInt64LE(BigInt(k.offset), at);
    b.writeUInt32LE(k.compressedLength, at + 8);
    b.writeUInt32LE(k.rawLength, at + 12);
    b.writeUInt32LE(k.entryCount, at + 16);
    at += 20;
  }
  at = b.writeUInt32LE(lengths.length, at);
  for (let i = 0; i < lengths.length; i++) {
    hashes.copy(b, at, i * HASH, i * HASH + HASH);
    b.writeUInt32LE(lengths[i], at + HASH);
    at += HASH + 4;
  }
  return b;
}

/**
 * Bytes read from a pack's end at once: the footer and, in one request from a remote, the
 * index of a pack of 4 KiB pages (36 bytes an entry: about 600 KB for 64 MiB of pages).
 */
const INDEX_TAIL = 1024 * 1024;

/**
 * Reads a pack's footer and index (one ranged read of its tail, a second one when the
 * index is longer) and checks their structure. BackupError 'badArchive' naming the pack
 * when anything does not add up.
 */
export async function readPackIndex(store: BackupStore, name: string): Promise<PackIndex> {
  const where = `${store.label}/${name}`;
  const bad = (why: string) => new BackupError('badArchive', `${where}: damaged pack: ${why}`, { path: where });
  const st = await store.stat(name);
  if (!st) throw new BackupError('notFound', `${where}: the pack is missing`, { path: where });
  if (st.size < PACK_MAGIC.length + 8 + FOOTER) throw bad(`only ${st.size} bytes`);
  const tailLength = Math.min(st.size, INDEX_TAIL);
  const tail = await store.readBytes(name, { offset: st.size - tailLength, length: tailLength });
  if (tail.length !== tailLength) throw bad('it is shorter than its size');
  const footer = tail.subarray(tailLength - FOOTER);
  const indexOffset = Number(footer.readBigUInt64LE(0));
  const indexLength = footer.readUInt32LE(8);
  if (indexOffset < PACK_MAGIC.length || indexOffset + indexLength !== st.size - FOOTER) throw bad('the footer does not point at an index');
  const ix = indexLength + FOOTER <= tailLength ? tail.subarray(tailLength - FOOTER - indexLength, tailLength - FOOTER) : await store.readBytes(name, { offset: indexOffset, length: indexLength });
  if (ix.length !== indexLength || indexLength < 8) throw bad('the index is cut short');
  let at = 0;
  const blockCount = ix.readUInt32LE(at);
  at += 4;
  if (4 + blockCount * 20 + 4 > indexLength) throw bad('the index is cut short');
  const blocks: PackBlock[] = [];
  let firstEntry = 0;
  let expectOffset = PACK_MAGIC.length;
  for (let i = 0; i < blockCount; i++) {
    const blk: PackBlock = {
      offset: Number(ix.readBigUInt64LE(at)),
      compressedLength: ix.readUInt32LE(at + 8),
      rawLength: ix.readUInt32LE(at + 12),
      entryCount: ix.readUInt32LE(at + 16),
      firstEntry,
    };
    if (blk.offset !== expectOffset) throw bad(`block ${i} is not where the previous one ends`);
    expectOffset = blk.offset + blk.compressedLength;
    firstEntry += blk.entryCount;
    blocks.push(blk);
    at += 20;
  }
  if (expectOffset !== indexOffset) throw bad('the blocks do not end where the index starts');
  const entryCount = ix.readUInt32LE(at);
  at += 4;
  if (entryCount !== firstEntry || at + entryCount * (HASH + 4) !== indexLength) throw bad('the index entries do not match its blocks');
  const hashes = Buffer.alloc(entryCount * HASH);
  const lengths = new Uint32Array(entryCount);
  const blockOf = new Uint32Array(entryCount);
  const offsets = new Uint32Array(entryCount);
  let i = 0;
  for (const [bi, blk] of blocks.entries()) {
    let pos = 0;
    for (let k = 0; k < blk.entryCount; k++, i++) {
      ix.copy(hashes, i * HASH, at, at + HASH);
      const length = ix.readUInt32LE(at + HASH);
      lengths[i] = length;
      blockOf[i] = bi;
      offsets[i] = pos;
      pos += length;
      at += HASH + 4;
    }
    if (pos !== blk.rawLength) throw bad(`block ${bi}'s entries do not add up to its length`);
  }
  return new PackIndex(blocks, hashes, lengths, blockOf, offsets, st.size);
}

/**
 * One block's pages, decompressed and each checked against its hash. BackupError
 * 'badArchive' naming the pack and block when the block does not decode to its pages.
 */
export async function readPackBlock(store: BackupStore, name: string, index: PackIndex, block: number): Promise<Buffer[]> {
  const blk = index.blocks[block];
  return decodeBlock(`${store.label}/${name}`, index, block, await store.readBytes(name, { offset: blk.offset, length: blk.compressedLength }));
}

/**
 * One block's raw bytes (its pages back to back, entry i at `index.offsets[i]`), each page
 * checked against its hash: readPackBlock without splitting the pages apart. BackupError
 * 'badArchive' naming the pack and block when the block does not decode to its pages.
 */
export async function readPackBlockRaw(store: BackupStore, name: string, index: PackIndex, block: number): Promise<Buffer> {
  const blk = index.blocks[block];
  const where = `${store.label}/${name}`;
  const raw = await inflateBlock(where, index, block, await store.readBytes(name, { offset: blk.offset, length: blk.compressedLength }));
  for (let k = 0; k < blk.entryCount; k++) {
    const i = blk.firstEntry + k;
    if (!pageHash(raw.subarray(index.offsets[i], index.offsets[i] + index.lengths[i])).equals(index.hashOf(i))) {
      throw new BackupError('badArchive', `${where}: damaged pack: entry ${i} (block ${block}) does not match its hash`, { path: where });
    }
  }
  return raw;
}

async function inflateBlock(where: string, index: PackIndex, block: number, c: Buffer): Promise<Buffer> {
  const blk = index.blocks[block];
  let raw: Buffer;
  try {
    // One output buffer of the block's size: the default 16 KiB pieces cost a trip to the
    // thread pool and back each, and a copy to join them.
    raw = await unbrotli(c, { chunkSize: Math.max(64, blk.rawLength), maxOutputLength: Math.max(1, blk.rawLength) });
  } catch (e) {
    throw new BackupError('badArchive', `${where}: damaged pack: block ${block} does not decompress (${(e as Error).message})`, { path: where });
  }
  if (raw.length !== blk.rawLength) throw new BackupError('badArchive', `${where}: damaged pack: block ${block} decompresses to ${raw.length} bytes, not ${blk.rawLength}`, { path: where });
  return raw;
}

/** Block `block` of a pack (`where` names it), from its compressed bytes `c`: its pages, each checked against its hash. */
async function decodeBlock(where: string, index: PackIndex, block: number, c: Buffer): Promise<Buffer[]> {
  const blk = index.blocks[block];
  const raw = await inflateBlock(where, index, block, c);
  const pages: Buffer[] = [];
  for (let k = 0; k < blk.entryCount; k++) {
    const i = blk.firstEntry + k;
    const page = raw.subarray(index.offsets[i], index.offsets[i] + index.lengths[i]);
    if (!pageHash(page).equals(index.hashOf(i))) {
      throw new BackupError('badArchive', `${where}: damaged pack: entry ${blk.firstEntry + k} (block ${block}) does not match its hash`, { path: where });
    }
    pages.push(page);
  }
  return pages;
}

/**
 * Every byte of a pack checked: its name is the SHA-256 of its bytes, its seal, its index,
 * and every block decodes to pages matching their hashes. Returns the problems (empty:
 * sound); only the store's own failures (missing pack, I/O) throw.
 */
export async function checkPack(store: BackupStore, name: string): Promise<string[]> {
  const where = `${store.label}/${name}`;
  const problems: string[] = [];
  const whole = createHash('sha256');
  const sealed = createHash('sha256');
  const st = await store.stat(name);
  if (!st) return [`${where}: the pack is missing`];
  const base = name.split('/').pop()!.replace(/\.pack$/, '');
  // With an index that reads: every byte read once, in order, the blocks decoded from the
  // bytes just hashed.
  const index = await readPackIndex(store, name).catch((e: unknown) => {
    if (BackupError.is(e, 'badArchive')) return undefined;
    throw e;
  });
  // (readPackIndex found the blocks back to back between the magic and the index.)
  if (!index) return checkPackByStream(store, name, st.size);
  const blockProblems: string[] = [];
  let pos = 0;
  const take = (b: Buffer) => {
    whole.update(b);
    const keep = Math.max(0, Math.min(b.length, st.size - FOOTER - pos));
    if (keep) sealed.update(b.subarray(0, keep));
    pos += b.length;
  };
  // The bytes no block holds (the magic, the index, the footer), in pieces.
  const upTo = async (end: number) => {
    while (pos < end) {
      const b = await store.readBytes(name, { offset: pos, length: Math.min(end - pos, 1 << 20) });
      if (!b.length) throw new BackupError('io', `${where}: the pack ended at ${pos} bytes, short of ${st.size}`, { path: where });
      take(b);
    }
  };
  for (let b = 0; b < index.blocks.length; b++) {
    const blk = index.blocks[b];
    await upTo(blk.offset);
    const c = await store.readBytes(name, { offset: blk.offset, length: blk.compressedLength });
    take(c);
    await decodeBlock(where, index, b, c).catch((e: unknown) => blockProblems.push((e as Error).message));
  }
  await upTo(st.size);
  if (whole.digest('hex') !== base) problems.push(`${where}: damaged pack: its bytes do not hash to its name`);
  const footer = await store.readBytes(name, { offset: st.size - FOOTER, length: FOOTER });
  if (!footer.subarray(16, 48).equals(sealed.digest())) problems.push(`${where}: damaged pack: the seal does not match its bytes`);
  return [...problems, ...blockProblems];
}

/** checkPack for a pack whose index does not read: the whole file, then what its index allows. */
async function checkPackByStream(store: BackupStore, name: string, size: number): Promise<string[]> {
  const where = `${store.label}/${name}`;
  const problems: string[] = [];
  const whole = createHash('sha256');
  const sealed = createHash('sha256');
  let seen = 0;
  for await (const chunk of await store.read(name)) {
    const b = chunk as Buffer;
    whole.update(b);
    const keep = Math.max(0, Math.min(b.length, size - FOOTER - seen));
    if (keep) sealed.update(b.subarray(0, keep));
    seen += b.length;
  }
  const base = name.split('/').pop()!.replace(/\.pack$/, '');
  if (whole.digest('hex') !== base) problems.push(`${where}: damaged pack: its bytes do not hash to its name`);
  try {
    const footer = await store.readBytes(name, { offset: size - FOOTER, length: FOOTER });
    if (!footer.subarray(16, 48).equals(sealed.digest())) problems.push(`${where}: damaged pack: the seal does not match its bytes`);
    const index = await readPackIndex(store, name);
    for (let b = 0; b < index.blocks.length; b++) {
      try {
        await readPackBlock(store, name, index, b);
      } catch (e) {
        problems.push((e as Error).message);
      }
    }
  } catch (e) {
    if (!BackupError.is(e, 'badArchive')) throw e;
    problems.push(e.message);
  }
  return problems;
}

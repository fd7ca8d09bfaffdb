/**
 * A format v2 backup's image rebuilt with the help of a live database: the pages the live
 * file (or a frame of its WAL) still holds unchanged since the backup are taken from it,
 * and only the others are decoded from the backup's packs. A diff against the live database (a day's 1% of
 * changed pages) then reads the packs for a few percent of the pages instead of all.
 *
 * No lock and no consistent state of the live file is needed: every page taken from it is
 * hashed and must equal the page hash the backup's packs hold for that page (hashes that
 * add up to the root its sealed manifest names), and every other page comes from a block
 * whose pages are checked against those same hashes as they are decoded. A page the app
 * rewrote while it was read is simply decoded instead.
 */
import { promises as fs } from 'node:fs';
import type { ProgressListener } from '../context';
import { BackupError, fsError } from '../errors';
import { withReadLease } from '../format/repo/leases';
import { pageHash, readPackBlock } from '../format/repo/pack';
import { PackIndexes, pageHashesOf } from '../format/repo/snapshotManifest';
import type { Manifest } from '../model';
import { withLiveFiles } from '../sqlite/liveGate';
import type { BackupStore } from '../store/store';

const HASH = 32;
/** Bytes read from the live file at a time. */
const CHUNK = 4 * 1024 * 1024;
/** Blocks decoded at once (Brotli runs on libuv's pool). */
const IN_FLIGHT = 4;
/** Above this share of pages to decode, a plain rebuild (decoded in order) is as good. */
const MOST = 0.5;

export interface SeededImage {
  manifest: Manifest;
  /** Pages taken from the live file or its WAL. */
  seeded: number;
  /** Pages decoded from the packs. */
  decoded: number;
}

/**
 * Writes the image of the v2 backup `object` of `store` into `outPath` (replaced), taking
 * every page the live database file `livePath` holds with the same hash from that file.
 * Returns undefined, having written nothing useful, when the live file shares too few
 * pages with the backup (another page size, a fresh layout): the caller rebuilds the
 * image the ordinary way. The image is not fsynced (a private temporary file).
 *
 * BackupError as pageHashesOf and readPackBlock ('badArchive' naming the pack, 'notFound'
 * for a missing pack), 'cancelled', and fsError for the files; `outPath` is removed on
 * failure.
 */
export async function seedImage(store: BackupStore, object: string, livePath: string, outPath: string, o: { signal?: AbortSignal; onProgress?: ProgressListener } = {}): Promise<SeededImage | undefined> {
  return withReadLease(store, object, async (m) => {
    const r = m.repository!;
    const named = (err: unknown): never => {
      if (err instanceof BackupError) throw new BackupError(err.reason, `backup ${m.id}: ${err.message}`, { cause: err, path: err.path });
      throw err;
    };
    const indexes = new PackIndexes(store);
    const hashes = await pageHashesOf(store, m, indexes).catch(named);
    const { pageSize, pageCount } = r;
    const total = pageSize * pageCount;
    let out: fs.FileHandle | undefined;
    try {
      try {
        out = await fs.open(outPath, 'w');
      } catch (e) {
        throw fsError(e, outPath, 'writing the image of the backup');
      }
      const todo = await copyMatching(livePath, out, hashes, pageSize, pageCount, o);
      await out.truncate(total);
      // Pages the app changed since its last checkpoint are in its WAL.
      if (todo.length) await copyFromWal(`${livePath}-wal`, out, hashes, pageSize, todo, o);
      if (todo.length > MOST * pageCount) {
        await out.close();
        out = undefined;
        return undefined;
      }
      await decodeInto(store, m, indexes, todo, out, o).catch(named);
      await out.close();
      out = undefined;
      return { manifest: m, seeded: pageCount - todo.length, decoded: todo.length };
    } catch (e) {
      await out?.close().catch(() => undefined);
      await fs.rm(outPath, { force: true }).catch(() => undefined);
      throw e;
    }
  });
}

/**
 * Copies the live file's pages into `out` and returns the pages (1-based, ascending) whose
 * bytes there are not the backup's: those the live file differs in, or lacks.
 */
async function copyMatching(livePath: string, out: fs.FileHandle, hashes: Buffer, pageSize: number, pageCount: number, o: { signal?: AbortSignal; onProgress?: ProgressListener }): Promise<number[]> {
  const todo: number[] = [];
  let next = 1;
  // Opened and closed inside the gate: no SQLite job of this process holds a lock on it meanwhile.
  await withLiveFiles(livePath, async () => {
    let fh: fs.FileHandle;
    try {
      fh = await fs.open(livePath, 'r');
    } catch (e) {
      throw fsError(e, livePath, 'reading the live database');
    }
    try {
      const per = Math.max(1, Math.floor(CHUNK / pageSize));
      const bufs = [Buffer.allocUnsafe(per * pageSize), Buffer.allocUnsafe(per * pageSize)];
      const read = (page: number, buf: Buffer) => fh.read(buf, 0, Math.min(per, pageCount - page + 1) * pageSize, (page - 1) * pageSize);
      let reading = next <= pageCount ? read(next, bufs[0]) : undefined;
      let writing: Promise<unknown> | undefined;
      for (let turn = 0; reading; turn++) {
        if (o.signal?.aborted) throw new BackupError('cancelled', 'cancelled');
        const buf = bufs[turn % 2];
        const { bytesRead } = await reading;
        const whole = Math.floor(bytesRead / pageSize);
        if (next === 1 && whole > 0 && livePageSize(buf) !== pageSize) {
          // Another page size: no page can match.
          next = 1;
          break;
        }
        const first = next;
        next += whole;
        // The buffer the next read fills was last written out one turn ago.
        await writing;
        reading = whole > 0 && next <= pageCount ? read(next, bufs[(turn + 1) % 2]) : undefined;
        for (let k = 0; k < whole; k++) {
          const page = first + k;
          const at = (page - 1) * HASH;
          if (!pageHash(buf.subarray(k * pageSize, (k + 1) * pageSize)).equals(hashes.subarray(at, at + HASH))) todo.push(page);
        }
        if (whole > 0) writing = writeAll(out, buf.subarray(0, whole * pageSize), (first - 1) * pageSize);
        o.onProgress?.({ phase: 'extract', done: (next - 1) * pageSize, total: pageCount * pageSize });
      }
      await writing;
    } finally {
      await fh.close();
    }
  });
  for (let page = next; page <= pageCount; page++) todo.push(page);
  return todo;
}

/**
 * Writes into `out` the pages of `todo` that some frame of the live database's WAL holds
 * with the backup's hash (which frame, committed or not, does not matter: the hash says
 * the bytes are right) and removes them from `todo`. Returns how many; 0 without a WAL or
 * with a WAL of another page size.
 */
async function copyFromWal(walPath: string, out: fs.FileHandle, hashes: Buffer, pageSize: number, todo: number[], o: { signal?: AbortSignal }): Promise<number> {
  const wanted = new Set(todo);
  let found = 0;
  await withLiveFiles(walPath, async () => {
    let fh: fs.FileHandle;
    try {
      fh = await fs.open(walPath, 'r');
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') return;
      throw fsError(e, walPath, 'reading the live database\'s WAL');
    }
    try {
      const head = Buffer.alloc(32);
      if ((await fh.read(head, 0, 32, 0)).bytesRead < 32 || head.readUInt32BE(8) !== pageSize) return;
      const frame = 24 + pageSize;
      const per = Math.max(1, Math.floor(CHUNK / frame));
      const buf = Buffer.allocUnsafe(per * frame);
      for (let at = 32; wanted.size > 0; ) {
        if (o.signal?.aborted) throw new BackupError('cancelled', 'cancelled');
        const { bytesRead } = await fh.read(buf, 0, buf.length, at);
        const frames = Math.floor(bytesRead / frame);
        if (frames === 0) break;
        for (let f = 0; f < frames; f++) {
          const page = buf.readUInt32BE(f * frame);
          if (!wanted.has(page)) continue;
          const data = buf.subarray(f * frame + 24, (f + 1) * frame);
          if (!pageHash(data).equals(hashes.subarray((page - 1) * HASH, page * HASH))) continue;
          await writeAll(out, data, (page - 1) * pageSize);
          wanted.delete(page);
          found++;
        }
        at += frames * frame;
      }
    } finally {
      await fh.close();
    }
  });
  if (found) {
    // In place, in order (no spread: todo may hold every page).
    let n = 0;
    for (const p of todo) if (wanted.has(p)) todo[n++] = p;
    todo.length = n;
  }
  return found;
}

/** The page size a database header states (offset 16; 1 means 65536). */
function livePageSize(head: Buffer): number {
  const raw = head.readUInt16BE(16);
  return raw === 1 ? 65536 : raw;
}

async function writeAll(fh: fs.FileHandle, b: Buffer, position: number): Promise<void> {
  for (let done = 0; done < b.length; ) done += (await fh.write(b, done, b.length - done, position + done)).bytesWritten;
}

/** Decodes the blocks that hold pages `todo` (each block once) and writes those pages into `out`. */
async function decodeInto(store: BackupStore, m: Manifest, indexes: PackIndexes, todo: number[], out: fs.FileHandle, o: { signal?: AbortSignal }): Promise<void> {
  const r = m.repository!;
  const extents = [...r.extents].sort((a, b) => a[0] - b[0]);
  // Pages to write, by block, in the order the pages first need them.
  const blocks = new Map<string, { pack: string; block: number; pages: { page: number; entry: number }[] }>();
  let e = 0;
  for (const page of todo) {
    while (extents[e][0] + extents[e][1] <= page) e++;
    const [first, , packNo, entry0] = extents[e];
    const pack = r.packs[packNo];
    const ix = await indexes.get(pack);
    const entry = entry0 + (page - first);
    const block = ix.blockOf[entry];
    const key = `${pack}#${block}`;
    let b = blocks.get(key);
    if (!b) blocks.set(key, (b = { pack, block, pages: [] }));
    b.pages.push({ page, entry });
  }
  const queue = [...blocks.values()];
  let failed = false;
  const worker = async () => {
    for (let b = queue.shift(); b && !failed; b = queue.shift()) {
      if (o.signal?.aborted) throw new BackupError('cancelled', 'cancelled');
      const ix = await indexes.get(b.pack);
      // Each page checked against its hash as the block decodes.
      const pages = await readPackBlock(store, b.pack, ix, b.block);
      const first = ix.blocks[b.block].firstEntry;
      for (const { page, entry } of b.pages) await writeAll(out, pages[entry - first], (page - 1) * r.pageSize);
    }
  };
  await Promise.all(
    Array.from({ length: IN_FLIGHT }, () =>
      worker().catch((err: unknown) => {
        failed = true;
        throw err;
      }),
    ),
  );
}

/**
 * Repacking: a pack whose pages the remaining backups mostly no longer use (rotation let
 * the backups that needed them go) is copied, its used pages only, into a new pack; the
 * manifests that point into it are rewritten to point at the copy; then prune deletes it.
 *
 * Crash safety: the new pack is published (fsynced, read back in full) before any manifest
 * names it; each manifest is replaced atomically, only after its new map was checked to add
 * up to the same root; the old pack is deleted only when no manifest names it. A crash at
 * any step leaves every backup whole (pointing at the old pack or at the copy, both
 * there); the next prune finishes the job.
 */
import { promises as fs } from 'node:fs';
import { BackupError, fsError } from '../../errors';
import { removeQuietly } from '../../fsutil';
import type { Manifest } from '../../model';
import { scratchFile, type BackupStore } from '../../store/store';
import { checkPack, PackWriter, readPackBlock, readPackIndex, type PackIndex } from './pack';
import { pagesOf, toExtents, type PageRef } from './pageMap';
import { PackIndexes, pageHashesOf, readSnapshotManifest, sealManifest } from './snapshotManifest';
import { publishPack } from './writer';

/** A pack is repacked when less than this share of its pages' bytes is still used. */
export const REPACK_BELOW = 0.5;
/** Packs repacked by one prune at most (the rest wait for the next). */
export const REPACK_MAX_PACKS = 4;
/** Raw bytes of pages one new pack holds at most (as a backup's packs). */
const PACK_RAW_BYTES = 64 * 1024 * 1024;

/**
 * Which entries of each pack the manifests use (a growing bitmap per pack), and which
 * manifests use each pack: gathered one manifest at a time.
 */
export class PackUsage {
  private readonly bits = new Map<string, Uint8Array>();
  private readonly users = new Map<string, string[]>();

  add(object: string, m: Manifest): void {
    const r = m.repository!;
    for (const p of r.packs) {
      let u = this.users.get(p);
      if (!u) this.users.set(p, (u = []));
      u.push(object);
    }
    for (const [, count, pack, entry] of r.extents) {
      const name = r.packs[pack];
      let b = this.bits.get(name) ?? new Uint8Array(0);
      if (entry + count > b.length) {
        const grown = new Uint8Array(Math.max(entry + count, b.length * 2, 64));
        grown.set(b);
        b = grown;
      }
      b.fill(1, entry, entry + count);
      this.bits.set(name, b);
    }
  }

  used(pack: string, entry: number): boolean {
    return this.bits.get(pack)?.[entry] === 1;
  }

  /** The manifests (objects) that use `pack`. */
  usersOf(pack: string): string[] {
    return this.users.get(pack) ?? [];
  }
}

export interface RepackCandidate {
  name: string;
  /** Bytes of the pack on disk. */
  size: number;
  /** Raw bytes of the pages any backup still uses, and of all its pages. */
  liveBytes: number;
  rawBytes: number;
}

export interface RepackResult {
  /** Packs copied (deleted by the prune that follows) and their bytes. */
  repacked: RepackCandidate[];
  /** The new packs and their bytes. */
  written: { name: string; size: number }[];
  /** Manifests rewritten. */
  manifests: number;
  /** Packs left as they were because reading them found damage. */
  damaged: string[];
}

/**
 * The packs among `packs` (used, and free to change: no running backup holds them) whose
 * used pages come to less than REPACK_BELOW of their pages' bytes, the most unused
 * REPACK_MAX_PACKS of them. Reads their indexes; a
 * pack whose index cannot be read is not a candidate (checks report it). Reads only.
 */
export async function repackCandidates(store: BackupStore, usage: PackUsage, packs: { name: string; size: number }[]): Promise<RepackCandidate[]> {
  const out: RepackCandidate[] = [];
  for (const p of packs) {
    if (!usage.usersOf(p.name).length) continue;
    let index: PackIndex;
    try {
      index = await readPackIndex(store, p.name);
    } catch (e) {
      if (BackupError.is(e, 'badArchive')) continue;
      throw e;
    }
    let rawBytes = 0;
    let liveBytes = 0;
    for (let i = 0; i < index.count; i++) {
      rawBytes += index.lengths[i];
      if (usage.used(p.name, i)) liveBytes += index.lengths[i];
    }
    if (liveBytes < REPACK_BELOW * rawBytes) out.push({ name: p.name, size: p.size, liveBytes, rawBytes });
  }
  // The most unused first, a few per run: a repack holds the store's lock, which backups wait for.
  return out.sort((a, b) => b.rawBytes - b.liveBytes - (a.rawBytes - a.liveBytes)).slice(0, REPACK_MAX_PACKS);
}

/**
 * Copies the used pages of `candidates` into new packs and rewrites every manifest that
 * points into them (see the file comment). Call under the store's lock, with `usage`
 * gathered from every snapshot manifest in the store under that lock. Leaves the old
 * packs for prune to delete. A pack that reads back damaged is left as it is (listed in
 * `damaged`).
 */
export async function repack(store: BackupStore, usage: PackUsage, candidates: RepackCandidate[], signal?: AbortSignal): Promise<RepackResult> {
  const result: RepackResult = { repacked: [], written: [], manifests: 0, damaged: [] };
  if (!candidates.length) return result;
  const scratch = await store.scratchDir();
  /** Old pack -> (old entry -> [new pack slot, new entry]). */
  const moved = new Map<string, Map<number, [number, number]>>();
  const newPacks: string[] = [];
  let writer: PackWriter | undefined;
  let writerRaw = 0;
  const files: string[] = [];
  const close = async () => {
    if (!writer) return;
    const w = writer;
    writer = undefined;
    const done = await w.finish();
    const name = await publishPack(store, w.file, done.name, undefined, signal);
    const problems = await checkPack(store, name);
    if (problems.length) throw new BackupError('verifyFailed', `a pack written by repacking did not read back intact: ${problems.slice(0, 3).join('; ')}`);
    newPacks.push(name);
    result.written.push({ name, size: done.size });
  };
  try {
    for (const c of candidates) {
      if (signal?.aborted) throw new BackupError('cancelled', 'cancelled');
      if (!usage.usersOf(c.name).length) continue;
      const map = new Map<number, [number, number]>();
      try {
        const index = await readPackIndex(store, c.name);
        for (let b = 0; b < index.blocks.length; b++) {
          const blk = index.blocks[b];
          const wanted: number[] = [];
          for (let k = 0; k < blk.entryCount; k++) if (usage.used(c.name, blk.firstEntry + k)) wanted.push(blk.firstEntry + k);
          if (!wanted.length) continue;
          // Every page of the block is checked against its hash as it is read.
          const pages = await readPackBlock(store, c.name, index, b);
          for (const i of wanted) {
            const page = pages[i - blk.firstEntry];
            if (writer && writerRaw + page.length > PACK_RAW_BYTES) await close();
            if (!writer) {
              writer = new PackWriter(scratchFile(scratch, 'repack', '.pack'));
              files.push(writer.file);
              writerRaw = 0;
            }
            map.set(i, [newPacks.length, await writer.add(page, index.hashOf(i))]);
            writerRaw += page.length;
          }
        }
      } catch (e) {
        if (!BackupError.is(e, 'badArchive')) throw e;
        // Damaged: left as it is, for the checks to report. Pages of it already copied stay
        // in the new pack unused (the next repack drops them).
        result.damaged.push(c.name);
        continue;
      }
      moved.set(c.name, map);
      result.repacked.push(c);
    }
    await close();
  } catch (e) {
    await writer?.abandon();
    for (const f of files) await removeQuietly(f);
    throw e;
  }
  if (!moved.size) return result;

  // Every manifest that points into a repacked pack, rewritten to point at the copies.
  const indexes = new PackIndexes(store);
  const objects = [...new Set([...moved.keys()].flatMap((p) => usage.usersOf(p)))].sort();
  for (const object of objects) {
    // Read again, one at a time (the lock holds them as they were surveyed).
    const m0 = await readSnapshotManifest(store, object);
    const r = m0.repository!;
    if (!r.packs.some((p) => moved.has(p))) continue;
    const packs: string[] = [];
    const slotOf = new Map<string, number>();
    const slot = (name: string) => {
      let n = slotOf.get(name);
      if (n === undefined) {
        slotOf.set(name, (n = packs.length));
        packs.push(name);
      }
      return n;
    };
    const refs: PageRef[] = [];
    for (const { pack, entry } of pagesOf(r.extents)) {
      const old = r.packs[pack];
      const to = moved.get(old)?.get(entry);
      refs.push(to ? { pack: slot(newPacks[to[0]]), entry: to[1] } : { pack: slot(old), entry });
    }
    const manifest: Manifest = { ...m0, repository: { ...r, packs, extents: toExtents(refs) }, seal: undefined };
    // The new map must add up to the same root (pageHashesOf checks it) before it replaces the old.
    await pageHashesOf(store, manifest, indexes);
    // Written in the scratch folder (swept after a crash), then renamed over the old one.
    const file = scratchFile(scratch, 'repack', '.json');
    try {
      await fs.writeFile(file, sealManifest(manifest));
      await store.publishFile(file, object, { overwrite: true });
    } catch (e) {
      await removeQuietly(file);
      throw fsError(e, file, 'rewriting a backup manifest');
    }
    result.manifests++;
  }
  return result;
}

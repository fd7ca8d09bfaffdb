/**
 * The page map of a format v2 snapshot: for every page of the image, where its bytes
 * are stored (a pack and an entry in it). Stored as extents, runs of consecutive pages
 * whose entries are consecutive in one pack, so that a 1 GiB database backed up daily
 * with scattered changes keeps a map of a few thousand runs, not 262,144 hashes.
 *
 * An extent `[firstPage, count, pack, firstEntry]` says: pages firstPage .. firstPage +
 * count - 1 (1-based page numbers, as SQLite counts) are entries firstEntry .. firstEntry
 * + count - 1 of pack number `pack` (an index into the snapshot's list of packs).
 */
export type Extent = [firstPage: number, count: number, pack: number, firstEntry: number];

/** Where one page is stored. */
export interface PageRef {
  pack: number;
  entry: number;
}

/**
 * Encodes a page map (element i: where page i + 1 is) as extents, merging every run it
 * can. Pure.
 */
export function toExtents(refs: readonly PageRef[]): Extent[] {
  const out: Extent[] = [];
  for (let i = 0; i < refs.length; i++) {
    const r = refs[i];
    const last = out.at(-1);
    if (last && last[2] === r.pack && last[3] + last[1] === r.entry && last[0] + last[1] === i + 1) last[1]++;
    else out.push([i + 1, 1, r.pack, r.entry]);
  }
  return out;
}

/**
 * Checks that extents describe pages 1 .. pageCount exactly once, in order, with packs
 * below `packCount`; returns the problems (empty when the map is sound). Pure.
 */
export function extentProblems(extents: readonly Extent[], pageCount: number, packCount: number): string[] {
  const problems: string[] = [];
  let next = 1;
  for (const [i, e] of extents.entries()) {
    const [first, count, pack, entry] = e;
    if (![first, count, pack, entry].every((n) => Number.isSafeInteger(n) && n >= 0) || count < 1 || first < 1) {
      problems.push(`page map extent ${i} is malformed: ${JSON.stringify(e)}`);
      return problems;
    }
    if (first !== next) problems.push(`page map extent ${i} starts at page ${first}, expected ${next}`);
    if (pack >= packCount) problems.push(`page map extent ${i} names pack ${pack}, but the snapshot lists ${packCount}`);
    next = first + count;
  }
  if (next !== pageCount + 1) problems.push(`the page map covers ${next - 1} pages, the image has ${pageCount}`);
  return problems;
}

/** Where each page is, page 1 first, from extents that `extentProblems` found sound. Pure. */
export function* pagesOf(extents: readonly Extent[]): Generator<PageRef & { page: number }> {
  for (const [first, count, pack, entry] of extents) {
    for (let k = 0; k < count; k++) yield { page: first + k, pack, entry: entry + k };
  }
}

import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { after, describe, test } from 'node:test';
import { BackupError } from '../../src/core/errors';
import { extentProblems, pagesOf, toExtents, type PageRef } from '../../src/core/format/repo/pageMap';
import { checkPack, pageHash, PackWriter, readPackBlock, readPackIndex } from '../../src/core/format/repo/pack';
import { LocalDirStore } from '../../src/core/store/localDirStore';
import { scratchFile } from '../../src/core/store/store';
import { tempDir } from '../fixtures/sqlite';

describe('format v2 page map: extents', () => {
  test('runs of consecutive pages in consecutive entries of one pack merge; anything else starts a new extent', () => {
    const refs: PageRef[] = [
      { pack: 0, entry: 0 },
      { pack: 0, entry: 1 },
      { pack: 0, entry: 2 },
      { pack: 1, entry: 0 }, // another pack
      { pack: 0, entry: 3 }, // back to pack 0, but not after entry 2's page
      { pack: 0, entry: 4 },
      { pack: 0, entry: 9 }, // a gap in entries
    ];
    const ex = toExtents(refs);
    assert.deepEqual(ex, [
      [1, 3, 0, 0],
      [4, 1, 1, 0],
      [5, 2, 0, 3],
      [7, 1, 0, 9],
    ]);
    assert.deepEqual(extentProblems(ex, 7, 2), []);
    assert.deepEqual([...pagesOf(ex)], refs.map((r, i) => ({ page: i + 1, ...r })));
  });

  test('a map that skips, repeats or overruns pages, or names a pack the snapshot lacks, is reported', () => {
    assert.match(extentProblems([[1, 2, 0, 0], [4, 1, 0, 2]], 4, 1).join(), /starts at page 4, expected 3/);
    assert.match(extentProblems([[1, 2, 0, 0], [2, 2, 0, 2]], 3, 1).join(), /starts at page 2, expected 3/);
    assert.match(extentProblems([[1, 5, 0, 0]], 4, 1).join(), /covers 5 pages, the image has 4/);
    assert.match(extentProblems([[1, 4, 2, 0]], 4, 2).join(), /names pack 2/);
    assert.match(extentProblems([[1, 0, 0, 0]], 0, 1).join(), /malformed/);
    assert.match(extentProblems([[1, 1.5, 0, 0] as never], 1, 1).join(), /malformed/);
  });

  test('a 1 GiB database with 1% of its pages changed in scattered places keeps a small map', () => {
    const pages = 262_144;
    const refs: PageRef[] = [];
    let fresh = 0;
    // The parent stored every page in order in pack 0; about 1% of pages, scattered, now live in pack 1.
    let seed = 7;
    const rnd = () => ((seed = (seed * 1103515245 + 12345) & 0x7fffffff) / 0x7fffffff);
    for (let p = 0; p < pages; p++) refs.push(rnd() < 0.01 ? { pack: 1, entry: fresh++ } : { pack: 0, entry: p });
    const ex = toExtents(refs);
    assert.ok(ex.length < 2 * fresh + 2, `${ex.length} extents for ${fresh} changed pages`);
    assert.ok(JSON.stringify(ex).length < 200_000, `${JSON.stringify(ex).length} bytes of JSON`);
    assert.deepEqual(extentProblems(ex, pages, 2), []);
  });
});

describe('format v2 packs', () => {
  const t = tempDir();
  after(() => t.cleanup());
  const store = new LocalDirStore(path.join(t.dir, 'repo'));

  async function writePack(pages: Buffer[], blockPages = 4): Promise<string> {
    await store.open();
    const file = scratchFile(await store.scratchDir(), 'pack', '.partial');
    const w = new PackWriter(file, { blockPages });
    for (const [i, p] of pages.entries()) assert.equal(await w.add(p), i);
    const done = await w.finish();
    assert.equal(done.entries, pages.length);
    assert.equal(done.name, createHash('sha256').update(readFileSync(file)).digest('hex'), 'the name is the hash of the bytes');
    const name = `packs/${done.name}.pack`;
    await store.publishFile(file, name);
    return name;
  }

  test('pages come back from their blocks byte for byte, found by ranged reads of footer, index and block', async () => {
    // Compressible and incompressible pages, of two sizes (a page size can change between backups).
    const pages = [...Array.from({ length: 9 }, (_, i) => Buffer.alloc(4096, i)), randomBytes(4096), randomBytes(512), Buffer.alloc(512, 7)];
    const name = await writePack(pages);
    const ix = await readPackIndex(store, name);
    assert.equal(ix.blocks.length, 3);
    assert.equal(ix.count, pages.length);
    const back: Buffer[] = [];
    for (let b = 0; b < ix.blocks.length; b++) back.push(...(await readPackBlock(store, name, ix, b)));
    assert.deepEqual(back.map((p) => p.toString('hex')), pages.map((p) => p.toString('hex')));
    assert.ok(pages.every((pg, i) => ix.hashOf(i).equals(pageHash(pg))));
    assert.deepEqual(await checkPack(store, name), []);
    assert.ok(ix.size < 4096 * 3 + 512 * 2 + 4096, `compressed: ${ix.size} bytes`);
  });

  test('one flipped byte anywhere is found by the full check; in a block it names that block', async () => {
    const pages = Array.from({ length: 8 }, (_, i) => Buffer.alloc(1024, i + 1));
    const name = await writePack(pages, 4);
    const file = store.file(name);
    const clean = readFileSync(file);
    const ix = await readPackIndex(store, name);
    // In the second block's compressed bytes, in the index, and in the seal.
    const spots = [ix.blocks[1].offset + 2, clean.length - 48 - 10, clean.length - 5];
    for (const at of spots) {
      const bad = Buffer.from(clean);
      bad[at] ^= 0x40;
      writeFileSync(file, bad);
      const problems = await checkPack(store, name);
      assert.ok(problems.length > 0, `a flip at byte ${at} of ${clean.length} is found`);
      assert.ok(problems.some((p) => p.includes('do not hash to its name')), problems.join('; '));
      if (at === spots[0]) {
        const got = await readPackIndex(store, name);
        await readPackBlock(store, name, got, 0);
        await assert.rejects(readPackBlock(store, name, got, 1), (e) => BackupError.is(e, 'badArchive') && /block 1/.test(e.message));
      }
    }
    writeFileSync(file, clean);
    assert.deepEqual(await checkPack(store, name), []);
  });

  test('a truncated pack is refused with one clear error naming it', async () => {
    const name = await writePack([Buffer.alloc(4096, 1), Buffer.alloc(4096, 2)]);
    const file = store.file(name);
    writeFileSync(file, readFileSync(file).subarray(0, 100));
    await assert.rejects(readPackIndex(store, name), (e) => BackupError.is(e, 'badArchive') && e.message.includes(name));
    assert.ok((await checkPack(store, name)).length > 0);
  });
});

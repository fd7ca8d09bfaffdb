/**
 * seedImage: a v2 backup's image made from a live database file's pages where they hash as
 * the backup's do, the rest decoded from the packs. Whatever the live file holds (changed
 * pages, garbage, too few pages), the image must be byte for byte the one the format's own
 * extractImage rebuilds; a live file that shares nothing is declined; damage in a block it
 * needs is found and names the pack.
 */
import assert from 'node:assert/strict';
import { copyFileSync, existsSync, mkdirSync, readFileSync, truncateSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { after, describe, test } from 'node:test';
import { DEFAULT_SETTINGS } from '../../src/core/config';
import { systemClock } from '../../src/core/context';
import { Engine } from '../../src/core/engine';
import { BackupError } from '../../src/core/errors';
import { readPackIndex } from '../../src/core/format/repo/pack';
import { pagesOf } from '../../src/core/format/repo/pageMap';
import { readSnapshotManifest } from '../../src/core/format/repo/snapshotManifest';
import { repoV2 } from '../../src/core/format/repoV2';
import { seedImage } from '../../src/core/inspect/seedImage';
import { LocalDirStore } from '../../src/core/store/localDirStore';
import { leaveWalFrames, makeDb, sqlite, tempDir } from '../fixtures/sqlite';

const tmp = tempDir('lifeboat-seed-');
after(() => tmp.cleanup());
let seq = 0;

const PAGE = 1024;

/** A database, a v2 backup of it, the backup's image as extractImage rebuilds it, and then changes to the database. */
async function scenario() {
  const root = path.join(tmp.dir, `s${++seq}`);
  mkdirSync(root);
  const db = path.join(root, 'app.db');
  const dir = path.join(root, 'repo');
  makeDb(db, { pageSize: PAGE, rows: 1200 });
  const engine = new Engine({ clock: { now: () => new Date(Date.UTC(2026, 5, 1, 9)), sleep: systemClock.sleep } });
  const r = await engine.backup(db, { dir, kind: 'manual', settings: { ...DEFAULT_SETTINGS, format: 'repository', restoreTest: false } });
  assert.equal(r.record.format, 'repository');
  const store = new LocalDirStore(dir);
  const refPath = path.join(root, 'reference.img');
  await repoV2.extractImage(store, r.record.object, refPath);
  const reference = readFileSync(refPath);
  // Scattered updates and new rows: some pages differ, the file grows.
  sqlite(db, "UPDATE items SET qty = qty + 1 WHERE id % 97 = 0; INSERT INTO items(name, qty, data) SELECT 'more ' || id, id, randomblob(300) FROM items WHERE id <= 200;");
  return { root, db, store, object: r.record.object, reference, pages: reference.length / PAGE, out: (n: string) => path.join(root, `${n}.img`) };
}

describe('seedImage', () => {
  test('from a changed live file: the backup image byte for byte, most pages taken from the file', async () => {
    const s = await scenario();
    const out = s.out('seeded');
    const r = await seedImage(s.store, s.object, s.db, out);
    assert.ok(r, 'seeded');
    assert.ok(readFileSync(out).equals(s.reference), 'the same bytes as extractImage');
    assert.equal(r.seeded + r.decoded, s.pages);
    assert.ok(r.decoded >= 1 && r.decoded < s.pages / 4, `${r.decoded} of ${s.pages} pages decoded`);
  });

  test('from a file with garbage pages and too few pages: still the backup image; those pages decoded', async () => {
    const s = await scenario();
    const live = path.join(s.root, 'damaged.db');
    copyFileSync(s.db, live);
    const bytes = readFileSync(live);
    for (const page of [3, 10, 11]) bytes.fill(0x5a, (page - 1) * PAGE, page * PAGE);
    writeFileSync(live, bytes);
    const keep = Math.floor(s.pages * 0.8);
    truncateSync(live, keep * PAGE + 100);
    const out = s.out('garbage');
    const r = await seedImage(s.store, s.object, live, out);
    assert.ok(r, 'seeded');
    assert.ok(readFileSync(out).equals(s.reference));
    assert.ok(r.decoded >= s.pages - keep + 3, `${r.decoded} pages decoded`);
  });

  test('pages the live file has only in its WAL are taken from the WAL, not decoded', async () => {
    const root = path.join(tmp.dir, `wal${++seq}`);
    mkdirSync(root);
    const db = path.join(root, 'app.db');
    const dir = path.join(root, 'repo');
    makeDb(db, { pageSize: PAGE, rows: 1200, wal: true });
    leaveWalFrames(db, 'UPDATE items SET qty = qty + 1 WHERE id % 20 = 0;');
    const engine = new Engine({ clock: { now: () => new Date(Date.UTC(2026, 5, 1, 9)), sleep: systemClock.sleep } });
    const b = await engine.backup(db, { dir, kind: 'manual', settings: { ...DEFAULT_SETTINGS, format: 'repository', restoreTest: false } });
    const store = new LocalDirStore(dir);
    const refPath = path.join(root, 'reference.img');
    await repoV2.extractImage(store, b.record.object, refPath);
    const reference = readFileSync(refPath);
    // The backup holds the WAL's pages; the main file still holds their older versions.
    const main = readFileSync(db);
    let stale = 0;
    for (let at = 0; at < reference.length; at += PAGE) if (!main.subarray(at, at + PAGE).equals(reference.subarray(at, at + PAGE))) stale++;
    assert.ok(stale >= 10, `${stale} pages of the main file are older than the backup's`);
    const out = path.join(root, 'seeded.img');
    const r = await seedImage(store, b.record.object, db, out);
    assert.ok(r, 'seeded');
    assert.ok(readFileSync(out).equals(reference));
    assert.ok(r.decoded < stale / 2, `${r.decoded} pages decoded, ${stale} stale in the main file`);
  });

  test('a file with another page size shares no page: declined, for a plain rebuild', async () => {
    const s = await scenario();
    const other = path.join(s.root, 'other.db');
    makeDb(other, { pageSize: 4096, rows: 1200 });
    assert.equal(await seedImage(s.store, s.object, other, s.out('other')), undefined);
  });

  test('damage in a block a decoded page needs: badArchive naming the pack, no image left', async () => {
    const s = await scenario();
    const m = await readSnapshotManifest(s.store, s.object);
    const r = m.repository!;
    // The block that holds page 3, which the live file below does not have right.
    const ref = [...pagesOf(r.extents)].find((p) => p.page === 3)!;
    const pack = r.packs[ref.pack];
    const ix = await readPackIndex(s.store, pack);
    const blk = ix.blocks[ix.blockOf[ref.entry]];
    const packFile = path.join(s.store.localPath(pack)!);
    const clean = readFileSync(packFile);
    const bad = Buffer.from(clean);
    bad[blk.offset + Math.floor(blk.compressedLength / 2)] ^= 0xff;
    writeFileSync(packFile, bad);
    try {
      const live = path.join(s.root, 'page3.db');
      copyFileSync(s.db, live);
      const bytes = readFileSync(live);
      bytes.fill(0, 2 * PAGE, 3 * PAGE);
      writeFileSync(live, bytes);
      const out = s.out('damaged');
      await assert.rejects(seedImage(s.store, s.object, live, out), (e) => BackupError.is(e, 'badArchive') && e.message.includes(pack));
      assert.equal(existsSync(out), false, 'no image left behind');
    } finally {
      writeFileSync(packFile, clean);
    }
  });

  test('cancelled: rejects, no image left', async () => {
    const s = await scenario();
    const out = s.out('cancelled');
    const ac = new AbortController();
    ac.abort();
    await assert.rejects(seedImage(s.store, s.object, s.db, out, { signal: ac.signal }), (e) => BackupError.is(e, 'cancelled'));
    assert.equal(existsSync(out), false);
  });
});

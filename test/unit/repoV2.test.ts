/**
 * Format v2, the page repository, end to end through the engine on real SQLite files:
 * every backup rebuilds byte for byte to the image a v1 zip of the same state holds, in
 * both journal modes and at every page size; dedup stores only what changed; a damaged
 * pack fails exactly the backups that use it; prune deletes only what no backup (and no
 * running backup) needs.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readdirSync, readFileSync, statSync, utimesSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { after, describe, test } from 'node:test';
import { extractImage as extractZipImage } from '../../src/core/archive/archiveReader';
import { DEFAULT_SETTINGS, type Settings } from '../../src/core/config';
import { systemClock, type Clock } from '../../src/core/context';
import { Engine } from '../../src/core/engine';
import { BackupError } from '../../src/core/errors';
import { repoV2 } from '../../src/core/format/repoV2';
import { takeLease } from '../../src/core/format/repo/leases';
import { PackWriter, readPackIndex } from '../../src/core/format/repo/pack';
import { pagesOf } from '../../src/core/format/repo/pageMap';
import { planPrune } from '../../src/core/format/repo/prune';
import { readSnapshotManifest } from '../../src/core/format/repo/snapshotManifest';
import type { BackupKind, BackupRecord, Manifest } from '../../src/core/model';
import { LocalDirStore } from '../../src/core/store/localDirStore';
import { scratchFile } from '../../src/core/store/store';
import { leaveWalFrames, makeDb, query, sqlite, tempDir } from '../fixtures/sqlite';

const tmp = tempDir('lifeboat-repo-');
after(() => tmp.cleanup());
let seq = 0;
/** A fresh folder under the test's temp folder. */
const fresh = (name: string) => {
  const d = path.join(tmp.dir, `${name}-${++seq}`);
  mkdirSync(d, { recursive: true });
  return d;
};

const MINUTE = 60_000;
const HOUR = 60 * MINUTE;
const DAY = 24 * HOUR;

/** A clock the test moves; sleeps (none on a quiet database) wait real time. */
function settableClock(start: number): Clock & { advance(ms: number): void } {
  let t = start;
  return { now: () => new Date(t), sleep: systemClock.sleep, advance: (ms) => void (t += ms) };
}

function settings(p: Partial<Settings> = {}): Settings {
  return { ...DEFAULT_SETTINGS, format: 'repository', restoreTest: false, ...p };
}
const zipSettings = settings({ format: 'zip' });

const sha = (b: Uint8Array) => createHash('sha256').update(b).digest('hex');

/** A database folder with an engine on a settable clock, a v2 store and a v1 store. */
function harness(name: string, start = Date.UTC(2026, 5, 1, 9)) {
  const root = fresh(name);
  const clock = settableClock(start);
  const engine = new Engine({ clock });
  const db = path.join(root, 'app.db');
  const dir = path.join(root, 'repo');
  const zipDir = path.join(root, 'zips');
  let n = 0;
  const out = (what: string) => path.join(root, `${what}-${++n}.img`);
  return {
    root,
    clock,
    engine,
    db,
    dir,
    store: () => new LocalDirStore(dir),
    out,
    /** A v2 backup; the clock moves a minute first so that ids differ. */
    async backup(kind: BackupKind = 'manual', s: Settings = settings()): Promise<BackupRecord> {
      clock.advance(MINUTE);
      const r = await engine.backup(db, { dir, kind, settings: s });
      assert.equal(r.record.format, 'repository');
      assert.ok(r.verified, `backup ${r.record.id} verified: ${JSON.stringify(r.record.manifest.verification.problems)}`);
      return r.record;
    },
    /** A v1 zip of the same (unchanged) database, and its image bytes: the reference. */
    async v1(): Promise<{ record: BackupRecord; image: Buffer }> {
      const r = await engine.backup(db, { dir: zipDir, kind: 'manual', settings: zipSettings });
      assert.equal(r.record.format, 'zip');
      const file = out('v1');
      const x = await extractZipImage(r.record.path, file);
      const image = readFileSync(file);
      assert.equal(x.sha256, r.record.manifest.image.sha256);
      return { record: r.record, image };
    },
    /** A v2 backup rebuilt with the format's extractImage: its bytes. */
    async rebuild(r: BackupRecord): Promise<Buffer> {
      const file = out('v2');
      const x = await repoV2.extractImage(new LocalDirStore(dir), r.object, file);
      const image = readFileSync(file);
      assert.equal(sha(image), x.sha256);
      assert.equal(x.sha256, r.manifest.image.sha256, `backup ${r.id} rebuilds to its manifest's image`);
      return image;
    },
  };
}

/** The packs in a store's folder, as object names. */
function packsOnDisk(dir: string): string[] {
  const p = path.join(dir, 'packs');
  return existsSync(p) ? readdirSync(p).filter((f) => f.endsWith('.pack')).map((f) => `packs/${f}`).sort() : [];
}

/** Every snapshot manifest in a store, read as plain JSON (not through the code under test). */
function manifestsOnDisk(dir: string): Manifest[] {
  const p = path.join(dir, 'snapshots');
  return readdirSync(p)
    .filter((f) => f.endsWith('.json'))
    .map((f) => JSON.parse(readFileSync(path.join(p, f), 'utf8')) as Manifest);
}

function splitPages(image: Buffer, pageSize: number): Buffer[] {
  assert.equal(image.length % pageSize, 0);
  return Array.from({ length: image.length / pageSize }, (_, i) => image.subarray(i * pageSize, (i + 1) * pageSize));
}

/** Pages of `next` whose bytes are not one of the pages of `prev` (what a dedup against prev must store, counted once). */
function newPageContents(prev: Buffer, next: Buffer, pageSize: number): number {
  const had = new Set(splitPages(prev, pageSize).map((p) => sha(p)));
  return new Set(splitPages(next, pageSize).map((p) => sha(p)).filter((h) => !had.has(h))).size;
}

/** Pages that differ at the same position (or exist in only one image). */
function changedPositions(prev: Buffer, next: Buffer, pageSize: number): number {
  const a = splitPages(prev, pageSize);
  const b = splitPages(next, pageSize);
  let n = Math.abs(a.length - b.length);
  for (let i = 0; i < Math.min(a.length, b.length); i++) if (!a[i].equals(b[i])) n++;
  return n;
}

/** The (pack, block) pairs a backup's rebuild reads, from the packs' indexes. */
async function blocksUsed(store: LocalDirStore, m: Manifest): Promise<Set<string>> {
  const r = m.repository!;
  const used = new Set<string>();
  for (const ref of pagesOf(r.extents)) {
    const ix = await readPackIndex(store, r.packs[ref.pack]);
    used.add(`${r.packs[ref.pack]}#${ix.blockOf[ref.entry]}`);
  }
  return used;
}

/** Flips one byte of a file; returns a function that puts it back. */
function flip(file: string, at: number): () => void {
  const clean = readFileSync(file);
  assert.ok(at >= 0 && at < clean.length, `byte ${at} of ${clean.length}`);
  const bad = Buffer.from(clean);
  bad[at] ^= 0xff;
  writeFileSync(file, bad);
  return () => writeFileSync(file, clean);
}

// ---------------------------------------------------------------------------------------

interface Step {
  name: string;
  sql: string;
  /** Checked on the v1 image of the state after the step (a copy, so the live WAL stays). */
  expect(image: string, prev: { pageCount: number }): void;
}

const pragma = (db: string, p: string) => Number(Object.values(query(db, `PRAGMA ${p};`)[0] ?? {})[0]);

const STEPS: Step[] = [
  {
    name: 'rows deleted without VACUUM (a freelist)',
    sql: 'DELETE FROM items WHERE id > (SELECT max(id) FROM items) / 2; DELETE FROM audit WHERE id % 3 = 0;',
    expect: (img) => assert.ok(pragma(img, 'freelist_count') > 0, 'the image has free pages'),
  },
  {
    name: 'grown, then shrunk: most rows deleted, VACUUM',
    sql: "INSERT INTO items(name, qty, data) SELECT 'more ' || id, id, randomblob(180 + id % 90) FROM items; DELETE FROM items WHERE id % 10 <> 0; DELETE FROM audit; VACUUM;",
    expect: (img, prev) => {
      assert.ok(pragma(img, 'page_count') < prev.pageCount, `${pragma(img, 'page_count')} pages < ${prev.pageCount}`);
      assert.equal(pragma(img, 'freelist_count'), 0);
    },
  },
  {
    name: 'auto_vacuum=FULL',
    sql: "PRAGMA auto_vacuum=FULL; VACUUM; INSERT INTO items(name, qty, data) SELECT 'full ' || id, id, randomblob(300) FROM items; DELETE FROM items WHERE id % 3 = 1;",
    expect: (img) => {
      assert.equal(pragma(img, 'auto_vacuum'), 1);
      assert.equal(pragma(img, 'freelist_count'), 0, 'FULL leaves no free pages');
    },
  },
  {
    name: 'auto_vacuum=INCREMENTAL, partly vacuumed',
    sql: "PRAGMA auto_vacuum=INCREMENTAL; VACUUM; INSERT INTO items(name, qty, data) SELECT 'inc ' || id, id, randomblob(400) FROM items; DELETE FROM items WHERE name LIKE 'inc %' AND id % 2 = 0; PRAGMA incremental_vacuum(2);",
    expect: (img) => assert.equal(pragma(img, 'auto_vacuum'), 2),
  },
];

// Two chains at a time: a backup waits on fsyncs and on the verifier's worker as much as on the CPU.
describe('v2 backups rebuild byte for byte to the v1 image of the same state', { concurrency: 2 }, () => {
  for (const wal of [false, true]) {
    for (const pageSize of [512, 1024, 4096, 16384, 65536]) {
      test(`${wal ? 'WAL' : 'rollback'} mode, ${pageSize}-byte pages: a chain of ${STEPS.length} backups (${STEPS.map((s) => s.name).join(', ')})`, async () => {
        const h = harness(`eq-${wal ? 'wal' : 'rb'}-${pageSize}`);
        makeDb(h.db, { pageSize, wal, keepWal: wal, rows: pageSize >= 16384 ? 1500 : 400 });
        const made: { record: BackupRecord; image: Buffer }[] = [];
        let prevPages = 0;
        for (const step of STEPS) {
          // In WAL mode the change stays in -wal: the snapshot must fold it in.
          if (wal) leaveWalFrames(h.db, step.sql);
          else sqlite(h.db, step.sql);
          if (wal) assert.ok(statSync(`${h.db}-wal`).size > 0, `${step.name}: frames wait in -wal`);
          const record = await h.backup();
          const v1 = await h.v1();
          const m = record.manifest;
          assert.equal(m.image.pageSize, pageSize);
          assert.equal(m.image.sha256, v1.record.manifest.image.sha256, `${step.name}: v2 and v1 snapshots of one state are the same image`);
          assert.equal(m.image.size, v1.image.length);
          const image = await h.rebuild(record);
          assert.ok(image.equals(v1.image), `${step.name}: the rebuilt image equals the v1 image byte for byte`);
          const copy = h.out('check');
          writeFileSync(copy, v1.image);
          step.expect(copy, { pageCount: prevPages });
          prevPages = m.image.pageCount;
          made.push({ record, image: v1.image });
        }
        // Later backups share pages with earlier ones; each still rebuilds to its own image.
        assert.equal(made[0].record.manifest.repository!.parent, undefined);
        for (const [i, x] of made.entries()) if (i) assert.equal(x.record.manifest.repository!.parent, made[i - 1].record.id, 'each deduplicated against the one before');
        for (const x of made) assert.ok((await h.rebuild(x.record)).equals(x.image), `${x.record.id} still rebuilds to its image`);
        // And restores through the engine, to a new file, to the same bytes (in two of the
        // chains: a restore verifies the image again, which the rebuilds above made moot).
        if ((wal && pageSize === 65536) || (!wal && pageSize === 4096)) {
          const last = made.at(-1)!;
          const to = path.join(h.root, 'restored.db');
          const res = await h.engine.restore(last.record.path, { to, settings: settings() });
          assert.equal(res.manifest.id, last.record.id);
          assert.ok(readFileSync(to).equals(last.image), 'engine.restore --to writes the image byte for byte');
        }
      });
    }
  }
});

describe('dedup', () => {
  test('a small change stores about the changed pages: exactly the page contents the parent does not hold', async () => {
    const h = harness('dedup-small');
    makeDb(h.db, { pageSize: 4096, rows: 3000 });
    const first = await h.backup();
    const before = await h.v1();
    assert.equal(first.manifest.repository!.parent, undefined);
    assert.equal(first.manifest.repository!.added.pages, new Set(splitPages(before.image, 4096).map((p) => sha(p))).size);
    sqlite(h.db, "UPDATE items SET qty = qty + 1 WHERE id IN (7, 1500, 2999); INSERT INTO items(name, qty) VALUES ('late', 1);");
    const second = await h.backup();
    const afterChange = await h.v1();
    const r = second.manifest.repository!;
    const changed = changedPositions(before.image, afterChange.image, 4096);
    const expected = newPageContents(before.image, afterChange.image, 4096);
    console.log(`dedup: ${second.manifest.image.pageCount} pages, ${changed} changed by position, ${expected} new contents, ${r.added.pages} stored (${r.added.bytes} bytes)`);
    assert.equal(r.parent, first.id);
    assert.ok(changed > 0 && changed < 20, `${changed} changed pages`);
    assert.equal(r.added.pages, expected, 'stores exactly the page contents the parent lacks');
    assert.ok(r.added.pages <= changed);
    assert.ok(r.added.bytes < first.manifest.repository!.added.bytes / 10, `${r.added.bytes} bytes added vs ${first.manifest.repository!.added.bytes} for the full copy`);
    assert.equal(r.added.packs.length, 1);
    assert.deepEqual(packsOnDisk(h.dir), [...new Set([...first.manifest.repository!.packs, ...r.added.packs])].sort());
    assert.ok(r.packs.includes(first.manifest.repository!.packs[0]), "it points into the parent's pack");
    assert.ok((await h.rebuild(second)).equals(afterChange.image));
    assert.ok((await h.rebuild(first)).equals(before.image));
  });

  test('an unchanged database: the second backup writes only a manifest and still rebuilds', async () => {
    const h = harness('dedup-unchanged');
    makeDb(h.db, { pageSize: 4096, rows: 500 });
    const first = await h.backup();
    const packs = packsOnDisk(h.dir);
    const second = await h.backup('scheduled');
    const r = second.manifest.repository!;
    assert.equal(r.unchangedFrom, first.id);
    assert.equal(r.parent, first.id);
    assert.deepEqual(r.added, { packs: [], pages: 0, bytes: 0 });
    assert.equal(second.manifest.kind, 'scheduled');
    assert.deepEqual(r.packs, first.manifest.repository!.packs);
    assert.deepEqual(packsOnDisk(h.dir), packs, 'no pack written');
    const v1 = await h.v1();
    assert.ok((await h.rebuild(second)).equals(v1.image));
    const check = await h.engine.verifyArchive(second.path, settings());
    assert.deepEqual(check.problems, []);
    assert.ok(check.ok);
  });

  test("an unchanged database whose parent's pack is damaged gets a full backup, which mends the pack", async () => {
    const h = harness('dedup-unchanged-damaged');
    makeDb(h.db, { pageSize: 4096, rows: 500 });
    const first = await h.backup();
    const [pack] = first.manifest.repository!.packs;
    const file = path.join(h.dir, pack);
    const clean = readFileSync(file);
    // The footer's index offset: the pack's index can no longer be found. No check has run
    // since, so the first backup still counts as verified: only the backup can notice.
    flip(file, statSync(file).size - 48);
    const second = await h.backup();
    const r = second.manifest.repository!;
    assert.equal(r.unchangedFrom, undefined, 'the damaged backup is not repeated');
    assert.equal(r.parent, undefined, 'nor used as a parent');
    assert.equal(r.added.pages, second.manifest.image.pageCount, 'every page stored');
    // The same pages in the same order make the same pack: its name is its content, so the
    // damaged copy is replaced by the sound one, and the first backup is whole again.
    assert.deepEqual(r.packs, [pack]);
    assert.ok(readFileSync(file).equals(clean), 'the pack is mended');
    assert.ok((await h.rebuild(second)).equals((await h.v1()).image));
    assert.ok((await h.engine.verifyArchive(second.path, settings())).ok);
    assert.ok((await h.engine.verifyArchive(first.path, settings())).ok);
  });

  test('an unchanged database: packs hashed intact within the last day are not hashed again; a day later they are, and damage is found', async () => {
    const h = harness('dedup-unchanged-recent');
    makeDb(h.db, { pageSize: 4096, rows: 500 });
    await h.backup();
    sqlite(h.db, 'UPDATE items SET qty = qty + 1 WHERE id = 7;');
    const changed = await h.backup(); // hashes its parent's packs: noted in the cache
    const [pack] = changed.manifest.repository!.packs.filter((p) => !changed.manifest.repository!.added.packs.includes(p));
    assert.ok(pack, 'the changed backup reuses a pack of its parent');
    const file = path.join(h.dir, pack);
    const ix = await readPackIndex(h.store(), pack);
    // A flipped byte inside a block: the index still reads, only hashing the pack finds it.
    flip(file, ix.blocks[0].offset + Math.floor(ix.blocks[0].compressedLength / 2));
    const soon = await h.backup();
    assert.equal(soon.manifest.repository!.unchangedFrom, changed.id, 'within a day: a manifest over the same packs, not hashed again');
    h.clock.advance(DAY);
    const later = await h.backup();
    const r = later.manifest.repository!;
    assert.equal(r.unchangedFrom, undefined, 'a day later the pack is hashed again: the damage is found, no manifest-only backup');
    assert.ok(!r.packs.includes(pack), 'it does not point at the damaged pack: those pages are stored again');
    assert.ok((await h.rebuild(later)).equals((await h.v1()).image));
    // The backups that used the damaged pack were marked when it was found.
    const state = (await h.engine.list(h.dir)).records.find((x) => x.id === soon.id)!.state;
    assert.equal(state.lastVerify?.status, 'failed');
    assert.match(state.lastVerify!.problems.join('; '), /damaged pack/);
  });

  test('a backup a check found damaged is not a parent: its hashes (cached) would point at the damage', async () => {
    const h = harness('dedup-damaged-parent');
    makeDb(h.db, { pageSize: 4096, rows: 500 });
    // Damage the footer (the format check fails), then a block (only the rebuild fails).
    const spots: [string, (file: string, pack: string) => Promise<number>][] = [
      ['the footer', async (file) => statSync(file).size - 48],
      ['a block', async (_file, pack) => (await readPackIndex(h.store(), pack)).blocks[0].offset + 20],
    ];
    for (const [i, [what, where]] of spots.entries()) {
      sqlite(h.db, `INSERT INTO items(name, qty, data) VALUES ('round ${i}', ${i}, randomblob(3000));`);
      const first = await h.backup();
      const [pack] = first.manifest.repository!.added.packs;
      const file = path.join(h.dir, pack);
      flip(file, await where(file, pack));
      const found = await h.engine.verifyArchive(first.path, settings());
      assert.equal(found.ok, false, what);
      sqlite(h.db, `UPDATE items SET qty = 0, data = randomblob(10) WHERE id % 50 = ${i};`);
      const second = await h.backup();
      const r = second.manifest.repository!;
      assert.notEqual(r.parent, first.id, `${what}: the damaged backup is not the parent`);
      assert.ok(!r.packs.includes(pack), `${what}: nothing points into the damaged pack`);
      assert.ok((await h.engine.verifyArchive(second.path, settings())).ok, what);
      assert.ok((await h.rebuild(second)).equals((await h.v1()).image), what);
    }
  });

  test('a new page size (VACUUM in rollback mode) stores a full copy that rebuilds', async () => {
    const h = harness('dedup-pagesize');
    makeDb(h.db, { pageSize: 4096, rows: 600 });
    const first = await h.backup();
    sqlite(h.db, 'PRAGMA page_size=8192; VACUUM;');
    const second = await h.backup();
    assert.equal(second.manifest.image.pageSize, 8192);
    assert.equal(second.manifest.repository!.parent, undefined);
    assert.ok((await h.rebuild(second)).equals((await h.v1()).image));
    sqlite(h.db, 'UPDATE items SET qty = 1 WHERE id = 3;');
    const third = await h.backup();
    assert.equal(third.manifest.repository!.parent, second.id);
    assert.ok(third.manifest.repository!.added.pages < 5, `${third.manifest.repository!.added.pages} pages stored`);
    assert.ok((await h.rebuild(third)).equals((await h.v1()).image));
    assert.ok((await h.rebuild(first)).length > 0);
  });

  test('a stale or damaged page-hash cache is never trusted', async () => {
    const h = harness('dedup-cache');
    makeDb(h.db, { pageSize: 1024, rows: 1500 });
    await h.backup();
    const cacheDir = path.join(h.dir, '.lifeboat', 'cache');
    const [cacheName] = readdirSync(cacheDir).filter((f) => /^pages-[0-9a-f]+\.bin$/.test(f));
    assert.ok(cacheName, 'the backup left a page-hash cache');
    const cache = path.join(cacheDir, cacheName);
    let stale = readFileSync(cache);
    /** What each damage does to the cache left by the previous backup. */
    const damages: [string, (c: Buffer) => Buffer][] = [
      // Right length, two page hashes swapped: trusted, it would point pages at each other's bytes.
      ['two entries swapped', (c) => Buffer.concat([c.subarray(32, 64), c.subarray(0, 32), c.subarray(64)])],
      ['every hash one bit off', (c) => Buffer.from(c.map((b, i) => (i % 32 === 0 ? b ^ 1 : b)))],
      ['cut short', (c) => c.subarray(0, c.length - 32)],
      ['the cache of an older backup', () => stale],
      ['not hashes at all', (c) => Buffer.alloc(c.length, 0x5a)],
    ];
    for (const [what, damage] of damages) {
      const current = readFileSync(cache);
      assert.equal(current.length % 32, 0);
      writeFileSync(cache, damage(current));
      stale = current;
      // Scattered updates: page contents move around, so a wrong hash would point at the wrong bytes.
      sqlite(h.db, `UPDATE items SET qty = qty + 1, data = randomblob(40) WHERE id % 97 = ${damages.findIndex((d) => d[0] === what)};`);
      const r = await h.backup();
      const v1 = await h.v1();
      assert.equal(r.manifest.repository!.unchangedFrom, undefined);
      assert.ok(r.manifest.repository!.parent, `${what}: still deduplicated against the parent (from its packs' indexes)`);
      assert.ok((await h.rebuild(r)).equals(v1.image), `${what}: the backup rebuilds to the image`);
      const check = await h.engine.verifyArchive(r.path, settings());
      assert.ok(check.ok, `${what}: ${check.problems.join('; ')}`);
      assert.equal(readFileSync(cache).length, r.manifest.image.pageCount * 32, `${what}: the cache is rewritten`);
    }
  });

  test('freshBaseDays: a backup with no parent when the newest full copy is that old', async () => {
    const h = harness('dedup-fresh');
    const s = settings({ freshBaseDays: 7 });
    makeDb(h.db, { pageSize: 4096, rows: 800 });
    const base = await h.backup('manual', s);
    assert.equal(base.manifest.repository!.parent, undefined);
    const made = [base];
    for (let day = 1; day <= 9; day++) {
      h.clock.advance(DAY);
      sqlite(h.db, `UPDATE items SET qty = ${day} WHERE id = ${day * 50};`);
      made.push(await h.backup('manual', s));
    }
    const parentless = made.filter((r) => !r.manifest.repository!.parent).map((r) => r.id);
    // Day 0 base; the backup of day 7 is 7 days + a few minutes after it, so it starts afresh.
    assert.deepEqual(parentless, [made[0].id, made[7].id]);
    const fullCopy = made[7].manifest.repository!;
    const olderPacks = new Set(made.slice(0, 7).flatMap((r) => r.manifest.repository!.packs));
    assert.ok(fullCopy.packs.every((p) => !olderPacks.has(p)), 'the fresh copy shares no pack with older backups');
    assert.equal(fullCopy.added.pages, new Set(splitPages(await h.rebuild(made[7]), 4096).map((p) => sha(p))).size);
    assert.equal(made[8].manifest.repository!.parent, made[7].id);
    assert.equal(made[6].manifest.repository!.parent, made[5].id);
  });

  test('auto verification: integrity_check for a full copy and once per fullCheckDays, quick_check for the incremental backups between', async () => {
    const h = harness('verify-auto');
    makeDb(h.db, { pageSize: 4096, rows: 800 });
    const checks: string[] = [];
    const step = async (s: Settings = settings()) => {
      sqlite(h.db, `UPDATE items SET qty = qty + 1 WHERE id = ${checks.length + 1};`);
      const r = await h.backup('manual', s);
      checks.push(`${r.manifest.repository!.parent ? 'incremental' : 'full'}:${r.manifest.verification.check}`);
    };
    await step(); // day 0: the first backup, a full copy
    h.clock.advance(3 * DAY);
    await step(); // day 3: incremental, integrity_check 3 days before
    h.clock.advance(4 * DAY);
    await step(); // day 7: incremental, the last integrity_check 7 days and 2 minutes before
    await step(); // day 7 again: one a minute before
    await step(settings({ fullCheckDays: 0 })); // 0: integrity_check every time
    await step(settings({ verifyMode: 'full' }));
    await step(settings({ freshBaseDays: 1 })); // a fresh full copy
    await step(settings({ verifyMode: 'quick' }));
    assert.deepEqual(checks, [
      'full:integrity_check',
      'incremental:quick_check',
      'incremental:integrity_check',
      'incremental:quick_check',
      'incremental:integrity_check',
      'incremental:integrity_check',
      'full:integrity_check',
      'incremental:quick_check',
    ]);
  });
});

describe('damage', () => {
  /** Three backups with changes between them; a fourth database state never backed up. */
  async function chain() {
    const h = harness('damage');
    makeDb(h.db, { pageSize: 1024, rows: 1200 });
    const records = [await h.backup()];
    sqlite(h.db, "INSERT INTO items(name, qty, data) SELECT 'b2 ' || id, id, randomblob(500) FROM items WHERE id <= 300;");
    records.push(await h.backup());
    sqlite(h.db, 'UPDATE items SET qty = -qty WHERE id % 50 = 0;');
    records.push(await h.backup());
    const images = [];
    for (const r of records) images.push(await h.rebuild(r));
    const store = h.store();
    const used = [];
    for (const r of records) used.push(await blocksUsed(store, r.manifest));
    return { h, records, images, store, used };
  }

  test('one flipped byte in a block fails exactly the backups that read that block; restore names the pack', async () => {
    const { h, records, images, store, used } = await chain();
    // A block of the second backup's own pack: the first backup never uses it.
    const pack = records[1].manifest.repository!.added.packs[0];
    const ix = await readPackIndex(store, pack);
    assert.ok(ix.blocks.length >= 2, `${ix.blocks.length} blocks`);
    let tried = 0;
    for (const [b, blk] of ix.blocks.entries()) {
      const key = `${pack}#${b}`;
      const hit = new Set(records.filter((_, i) => used[i].has(key)).map((r) => r.id));
      const restore = flip(path.join(h.dir, pack), blk.offset + Math.floor(blk.compressedLength / 2));
      try {
        for (const [i, r] of records.entries()) {
          const v = await h.engine.verifyArchive(r.path, settings());
          assert.equal(v.ok, !hit.has(r.id), `block ${b}: ${r.id} ${hit.has(r.id) ? 'reads it and fails' : 'does not read it and verifies'}: ${v.problems.join('; ')}`);
          const to = path.join(h.root, `restore-${b}-${i}.db`);
          if (hit.has(r.id)) {
            assert.ok(v.problems.some((p) => p.includes(pack)), v.problems.join('; '));
            await assert.rejects(h.engine.restore(r.path, { to, settings: settings() }), (e) => BackupError.is(e, 'badArchive') && e.message.includes(pack));
            assert.equal(existsSync(to), false, 'nothing restored');
          } else {
            await h.engine.restore(r.path, { to, settings: settings() });
            assert.ok(readFileSync(to).equals(images[i]));
          }
        }
      } finally {
        restore();
      }
      tried++;
      // Two blocks are enough; the second backup reads every block of its own pack.
      if (tried === 2) break;
    }
    assert.equal(tried, 2);
    assert.ok(![...used[0]].some((k) => k.startsWith(`${pack}#`)), 'the first backup never read the damaged pack');
  });

  test("one flipped byte in a pack's index or footer fails the backups that use the pack, and only those", async () => {
    const { h, records, store, used } = await chain();
    const pack = records[1].manifest.repository!.added.packs[0];
    const file = path.join(h.dir, pack);
    const ix = await readPackIndex(store, pack);
    const size = statSync(file).size;
    const indexOffset = ix.blocks.at(-1)!.offset + ix.blocks.at(-1)!.compressedLength;
    const users = new Set(records.filter((_, i) => [...used[i]].some((k) => k.startsWith(`${pack}#`))).map((r) => r.id));
    assert.ok(users.size >= 1 && users.size < records.length, `${users.size} of ${records.length} backups use the pack`);
    const spots: [string, number][] = [
      ['the footer: index offset', size - 48],
      ['the footer: index length', size - 40],
      ['the index: block count', indexOffset],
      ['the index: first block offset', indexOffset + 4],
      ['the index: entry count', indexOffset + 4 + ix.blocks.length * 20],
    ];
    for (const [what, at] of spots) {
      const restore = flip(file, at);
      try {
        for (const r of records) {
          if (users.has(r.id)) {
            const v = await h.engine.verifyArchive(r.path, settings());
            assert.equal(v.ok, false, `${what}: ${r.id} uses the pack and fails`);
            assert.ok(v.problems.some((p) => p.includes(pack)), `${what}: names the pack: ${v.problems.join('; ')}`);
          } else {
            // The format's part of the verification (the rest, SQLite on the image, does not
            // look at packs): the check passes and the image rebuilds.
            const c = await repoV2.check(store, r.object);
            assert.ok(c.ok, `${what}: ${r.id}: ${c.problems.join('; ')}`);
            await h.rebuild(r);
          }
        }
      } finally {
        restore();
      }
    }
    // A flipped hash in the index: the block holding that entry no longer checks out.
    const entry = ix.count - 1;
    const hashAt = indexOffset + 4 + ix.blocks.length * 20 + 4 + entry * 36;
    const key = `${pack}#${ix.blockOf[entry]}`;
    const readers = new Set(records.filter((_, i) => used[i].has(key)).map((r) => r.id));
    assert.ok(readers.size >= 1);
    const restore = flip(file, hashAt + 5);
    try {
      for (const r of records) {
        const v = await h.engine.verifyArchive(r.path, settings());
        assert.equal(v.ok, !readers.has(r.id), `a hash in the index: ${r.id}: ${v.problems.join('; ')}`);
      }
    } finally {
      restore();
    }
    // The seal (the footer's last 32 bytes) guards bytes no rebuild reads: a deep check finds it.
    const unseal = flip(file, size - 10);
    try {
      for (const r of records) {
        const v = await h.engine.verifyArchive(r.path, settings(), { deep: true });
        assert.equal(v.ok, !users.has(r.id), `the seal, deep: ${r.id}: ${v.problems.join('; ')}`);
      }
    } finally {
      unseal();
    }
    for (const r of records) assert.ok((await h.engine.verifyArchive(r.path, settings(), { deep: true })).ok, `${r.id} verifies once the pack is whole again`);
  });

  test('an edited snapshot manifest fails its seal', async () => {
    const { h, records } = await chain();
    const target = records[1];
    const file = target.path;
    const clean = readFileSync(file, 'utf8');
    // Each edit keeps the manifest valid for the schema: only the seal can tell.
    const edits: [string, (m: Record<string, unknown>) => void][] = [
      ['kind', (m) => (m.kind = m.kind === 'manual' ? 'scheduled' : 'manual')],
      ['image.size', (m) => ((m.image as { size: number }).size += 1024)],
      ['created', (m) => (m.created = '2020-01-01T00:00:00.000+00:00')],
      ['the page map', (m) => ((m.repository as { extents: number[][] }).extents[0][3] += 1)],
    ];
    let failed = 0;
    for (const [what, edit] of edits) {
      const m = JSON.parse(clean) as Record<string, unknown>;
      edit(m);
      writeFileSync(file, JSON.stringify(m));
      try {
        await assert.rejects(readSnapshotManifest(h.store(), target.object), (e) => BackupError.is(e, 'badArchive') && /does not match its seal/.test(e.message));
        const v = await h.engine.verifyArchive(file, settings());
        assert.equal(v.ok, false, what);
        assert.ok(v.problems.some((p) => /seal/.test(p)), `${what}: ${v.problems.join('; ')}`);
        failed++;
      } finally {
        writeFileSync(file, clean);
      }
    }
    assert.equal(failed, edits.length);
    // Whitespace is not content: the same JSON pretty-printed still verifies.
    writeFileSync(file, JSON.stringify(JSON.parse(clean), null, 2));
    assert.ok((await h.engine.verifyArchive(file, settings())).ok);
    for (const r of records) assert.ok((await h.engine.verifyArchive(r.path, settings())).ok);
  });
});

describe('prune', () => {
  /**
   * Six daily scheduled backups (the default retention after each keeps them all). Every
   * day rewrites every row's data in place: the table's leaves change, its interior pages
   * and the index do not, so each day's pack is used by that day's backup alone while the
   * first (full) pack stays in use by all.
   */
  async function sixDays() {
    const h = harness('prune');
    makeDb(h.db, { pageSize: 1024, rows: 1000 });
    const records: BackupRecord[] = [];
    for (let day = 0; day < 6; day++) {
      sqlite(h.db, 'UPDATE items SET data = randomblob(300);');
      records.push(await h.backup('scheduled'));
      h.clock.advance(DAY);
    }
    return { h, records };
  }
  const tight = settings({ retention: { daily: 2, weekly: 0, monthly: 0, keepWithin: '', keepEventBackups: 10 } });

  test('after rotation no pack remains that no manifest uses; packs kept backups use remain', async () => {
    const { h, records } = await sixDays();
    const before = packsOnDisk(h.dir);
    const plan = await h.engine.rotate(h.dir, tight, { force: true });
    const kept = (await h.engine.list(h.dir)).records;
    assert.deepEqual(kept.map((r) => r.id).sort(), records.slice(-2).map((r) => r.id).sort());
    assert.equal(plan.remove.length, 4);
    const referenced = new Set(manifestsOnDisk(h.dir).flatMap((m) => m.repository!.packs));
    assert.deepEqual(packsOnDisk(h.dir), [...referenced].sort(), 'the packs left are exactly those the kept manifests use');
    // The first (full) backup's pack is still used by the kept backups, for a few pages
    // only: those were copied into a new pack, and it went too.
    const firstPack = records[0].manifest.repository!.packs[0];
    assert.ok(!referenced.has(firstPack), "the first backup's pack, mostly unused, was repacked");
    assert.equal(plan.prune?.repacked?.packs, 1, JSON.stringify(plan.prune));
    assert.ok(plan.prune && plan.prune.packs === before.length - referenced.size + 1, JSON.stringify(plan.prune));
    for (const r of kept) assert.ok((await h.engine.verifyArchive(r.path, settings())).ok, r.id);
    const log = await h.engine.catalog(h.dir).log.read();
    // Two deletions: the packs no backup used, then the repacked one.
    const logged = log.filter((e) => e.op === 'prune').map((e) => Number(/^deleting (\d+) pack/.exec(e.message)?.[1]));
    assert.deepEqual(logged, [plan.prune!.packs - 1, 1], 'the deletions are logged');
  });

  test('a mostly unused pack is repacked: its used pages copied, the manifests pointed at the copy, every kept backup rebuilds the same', async () => {
    const { h, records } = await sixDays();
    const firstPack = records[0].manifest.repository!.packs[0];
    const kept = records.slice(-2);
    const before = new Map(manifestsOnDisk(h.dir).map((m) => [m.id, m]));
    const sizeOf = (p: string) => statSync(path.join(h.dir, p)).size;
    const firstSize = sizeOf(firstPack);
    // What is still used of it: the pages of the kept backups that point into it.
    const usedOfFirst = new Set(
      kept.flatMap((r) => {
        const m = r.manifest.repository!;
        return [...pagesOf(m.extents)].filter((x) => m.packs[x.pack] === firstPack).map((x) => x.entry);
      }),
    );
    const firstEntries = (await readPackIndex(h.store(), firstPack)).count;
    assert.ok(usedOfFirst.size > 0 && usedOfFirst.size < firstEntries / 2, `${usedOfFirst.size} of ${firstEntries} entries used: mostly unused`);

    // A dry run names it and changes nothing.
    const onDisk0 = packsOnDisk(h.dir);
    const dry = await h.engine.rotate(h.dir, tight, { force: true, dryRun: true });
    assert.equal(dry.prune?.repacked?.packs, 1, JSON.stringify(dry.prune));
    assert.deepEqual(packsOnDisk(h.dir), onDisk0);

    const plan = await h.engine.rotate(h.dir, tight, { force: true });
    assert.equal(plan.prune?.repacked?.packs, 1, JSON.stringify(plan.prune));
    const after = manifestsOnDisk(h.dir);
    assert.deepEqual(after.map((m) => m.id).sort(), kept.map((r) => r.id).sort());
    const newPacks = packsOnDisk(h.dir).filter((p) => !onDisk0.includes(p));
    assert.equal(newPacks.length, 1, 'one new pack');
    const copy = await readPackIndex(h.store(), newPacks[0]);
    assert.equal(copy.count, usedOfFirst.size, 'the copy holds exactly the used pages');
    assert.ok(sizeOf(newPacks[0]) < firstSize / 2, `the copy (${sizeOf(newPacks[0])} bytes) is less than half the old pack (${firstSize})`);
    for (const m of after) {
      const was = before.get(m.id)!;
      assert.equal(m.repository!.root, was.repository!.root, `${m.id}: same root`);
      assert.equal(m.image.sha256, was.image.sha256);
      assert.ok(!m.repository!.packs.includes(firstPack) && m.repository!.packs.includes(newPacks[0]), `${m.id} points at the copy`);
    }
    assert.deepEqual(packsOnDisk(h.dir), [...new Set(after.flatMap((m) => m.repository!.packs))].sort(), 'every pack left is used');
    for (const r of (await h.engine.list(h.dir)).records) {
      await h.rebuild(r);
      const v = await h.engine.verifyArchive(r.path, settings(), { deep: true });
      assert.ok(v.ok, `${r.id}: ${v.problems.join('; ')}`);
    }
    const log = await h.engine.catalog(h.dir).log.read();
    assert.ok(log.some((e) => e.op === 'repack' && e.message.startsWith('repacked 1 pack(s) mostly unused')), 'the repack is logged');
    // Nothing left to do: a second run changes nothing.
    const again = await h.engine.rotate(h.dir, tight, { force: true });
    assert.equal(again.prune, undefined);
    // The next backup points at the copy like the others.
    sqlite(h.db, 'UPDATE items SET qty = qty + 1 WHERE id = 1;');
    const next = await h.backup('manual');
    assert.equal(next.manifest.repository!.parent, kept[1].id);
    await h.rebuild(next);
  });

  test('a pack a running backup or a reader holds is not repacked; one found damaged is left as it is', async () => {
    const { h, records } = await sixDays();
    const firstPack = records[0].manifest.repository!.packs[0];
    const store = h.store();
    const lease = await takeLease(store, [firstPack]);
    try {
      const plan = await h.engine.rotate(h.dir, tight, { force: true });
      assert.equal(plan.prune?.repacked, undefined, JSON.stringify(plan.prune));
      assert.ok(packsOnDisk(h.dir).includes(firstPack));
    } finally {
      await lease.release();
    }
    // A flipped byte in a block that holds a page the kept backups use.
    const file = path.join(h.dir, firstPack);
    const bytes = readFileSync(file);
    const ix = await readPackIndex(store, firstPack);
    const last = records.at(-1)!.manifest.repository!;
    const used = [...pagesOf(last.extents)].find((x) => last.packs[x.pack] === firstPack);
    assert.ok(used, 'the newest backup uses a page of the first pack');
    const blk = ix.blocks[ix.blockOf[used.entry]];
    bytes[blk.offset + Math.floor(blk.compressedLength / 2)] ^= 0xff;
    writeFileSync(file, bytes);
    const plan = await h.engine.rotate(h.dir, tight, { force: true });
    assert.equal(plan.prune?.repacked, undefined, JSON.stringify(plan.prune));
    assert.ok(packsOnDisk(h.dir).includes(firstPack), 'the damaged pack stays for the checks to report');
    assert.ok(manifestsOnDisk(h.dir).every((m) => m.repository!.packs.includes(firstPack)), 'no manifest was rewritten');
    const log = await h.engine.catalog(h.dir).log.read();
    assert.ok(log.some((e) => e.op === 'repack.skipped' && e.message.includes(firstPack)), 'the skip is logged');
  });

  test("a live lease keeps its packs and packs newer than its start; released, they go", async () => {
    const { h, records } = await sixDays();
    const store = h.store();
    // Age every pack by an hour: only the lease can keep an unused one now.
    const old = Date.now() / 1000 - 3600;
    for (const p of packsOnDisk(h.dir)) utimesSync(path.join(h.dir, p), old, old);
    const heldPack = records[1].manifest.repository!.added.packs[0];
    assert.ok(records.slice(-2).every((r) => !r.manifest.repository!.packs.includes(heldPack)), 'the kept backups do not use it');
    const lease = await takeLease(store, [heldPack]);
    // A pack a running backup wrote after its lease began (no manifest names it yet).
    const file = scratchFile(await store.scratchDir(), 'running', '.pack');
    const w = new PackWriter(file);
    await w.add(Buffer.alloc(1024, 9));
    const done = await w.finish();
    const newPack = `packs/${done.name}.pack`;
    await store.publishFile(file, newPack);
    try {
      await h.engine.rotate(h.dir, tight, { force: true });
      const referenced = new Set(manifestsOnDisk(h.dir).flatMap((m) => m.repository!.packs));
      assert.ok(!referenced.has(heldPack) && !referenced.has(newPack), 'neither pack is used by a kept backup');
      const onDisk = packsOnDisk(h.dir);
      assert.ok(onDisk.includes(heldPack), 'the leased pack stays');
      assert.ok(onDisk.includes(newPack), 'the pack newer than the lease stays');
      const unused = onDisk.filter((p) => !referenced.has(p));
      assert.deepEqual(unused.sort(), [heldPack, newPack].sort(), 'every other unused pack was deleted');
      assert.equal((await planPrune(store)).heldByRunningBackups, 2);
    } finally {
      await lease.release();
    }
    const plan = await planPrune(store);
    assert.deepEqual(plan.packs.map((p) => p.name).sort(), [heldPack, newPack].sort());
    await h.engine.rotate(h.dir, tight, { force: true });
    const referenced = new Set(manifestsOnDisk(h.dir).flatMap((m) => m.repository!.packs));
    assert.deepEqual(packsOnDisk(h.dir), [...referenced].sort());
  });

  test('a manifest that cannot be read stops the sweep: nothing deleted, a refusal logged', async () => {
    const { h, records } = await sixDays();
    const damaged = records[4];
    const clean = readFileSync(damaged.path);
    writeFileSync(damaged.path, clean.subarray(0, clean.length - 20));
    const before = packsOnDisk(h.dir);
    await h.engine.deleteBackup(records[0].path);
    await h.engine.deleteBackup(records[1].path);
    assert.deepEqual(packsOnDisk(h.dir), before, 'no pack deleted while a manifest cannot be read');
    const plan = await planPrune(h.store());
    assert.match(plan.refused ?? '', /^no pack was deleted: .*snapshot manifest is not valid UTF-8 JSON/);
    assert.deepEqual(plan.packs, []);
    const log = await h.engine.catalog(h.dir).log.read();
    assert.ok(log.some((e) => e.op === 'prune.refused' && e.message.startsWith('no pack was deleted')), 'the refusal is logged');
    // Repaired, the next sweep deletes what the two deleted backups alone used.
    writeFileSync(damaged.path, clean);
    const rot = await h.engine.rotate(h.dir, settings(), { force: true });
    assert.ok(rot.prune && rot.prune.packs > 0, JSON.stringify(rot.prune));
    const referenced = new Set(manifestsOnDisk(h.dir).flatMap((m) => m.repository!.packs));
    assert.deepEqual(packsOnDisk(h.dir), [...referenced].sort());
  });
});

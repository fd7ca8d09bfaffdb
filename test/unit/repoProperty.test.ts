/**
 * Format v2 under random histories: a real database changed at random (inserts, updates,
 * deletes, VACUUM), backed up (manual and scheduled), the injected clock moved by hours or
 * days, rotated with a tight retention, backups deleted by hand. After every operation the
 * store holds exactly the packs its manifests use; every backup stored exactly the page
 * contents its parent lacked (nothing when unchanged); after every history each kept
 * backup passes the format's check and rebuilds to the image it was made from (the newest
 * also through the engine's full verification), and the pages stored stay within a bound
 * (below).
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { after, test } from 'node:test';
import fc from 'fast-check';
import { DEFAULT_SETTINGS, type Settings } from '../../src/core/config';
import { systemClock, type Clock } from '../../src/core/context';
import { Engine } from '../../src/core/engine';
import { repoV2 } from '../../src/core/format/repoV2';
import { readPackIndex } from '../../src/core/format/repo/pack';
import { pagesOf } from '../../src/core/format/repo/pageMap';
import type { BackupRecord, Manifest } from '../../src/core/model';
import { LocalDirStore } from '../../src/core/store/localDirStore';
import { leaveWalFrames, makeDb, sqlite, tempDir } from '../fixtures/sqlite';

/** Runs per property: each run is a few real backups, so few; LIFEBOAT_REPO_FC_RUNS raises it for a longer hunt. */
const NUM_RUNS = (() => {
  const raw = process.env.LIFEBOAT_REPO_FC_RUNS;
  if (raw === undefined) return 8;
  const n = Number(raw);
  if (!Number.isSafeInteger(n) || n < 1) throw new RangeError(`LIFEBOAT_REPO_FC_RUNS must be a whole number >= 1 (got ${JSON.stringify(raw)})`);
  return n;
})();

const tmp = tempDir('lifeboat-repoprop-');
after(() => tmp.cleanup());

const HOUR = 3_600_000;
const sha = (b: Uint8Array) => createHash('sha256').update(b).digest('hex');

type Op =
  | { t: 'insert'; rows: number; size: number; seed: number }
  | { t: 'update'; mod: number; rem: number; size: number; seed: number }
  | { t: 'delete'; mod: number; rem: number }
  | { t: 'vacuum' }
  | { t: 'backup'; kind: 'manual' | 'scheduled' }
  | { t: 'advance'; hours: number }
  | { t: 'rotate' }
  | { t: 'deleteBackup'; pick: number };

const opArb: fc.Arbitrary<Op> = fc.oneof(
  { weight: 3, arbitrary: fc.record({ t: fc.constant('insert' as const), rows: fc.integer({ min: 1, max: 60 }), size: fc.integer({ min: 0, max: 900 }), seed: fc.integer({ min: 1, max: 1000 }) }) },
  { weight: 3, arbitrary: fc.record({ t: fc.constant('update' as const), mod: fc.integer({ min: 1, max: 40 }), rem: fc.integer({ min: 0, max: 39 }), size: fc.integer({ min: 0, max: 900 }), seed: fc.integer({ min: 1, max: 1000 }) }) },
  { weight: 2, arbitrary: fc.record({ t: fc.constant('delete' as const), mod: fc.integer({ min: 2, max: 12 }), rem: fc.integer({ min: 0, max: 11 }) }) },
  { weight: 1, arbitrary: fc.constant({ t: 'vacuum' as const }) },
  { weight: 5, arbitrary: fc.record({ t: fc.constant('backup' as const), kind: fc.constantFrom('manual' as const, 'scheduled' as const, 'scheduled' as const) }) },
  { weight: 3, arbitrary: fc.record({ t: fc.constant('advance' as const), hours: fc.oneof(fc.integer({ min: 1, max: 12 }), fc.integer({ min: 24, max: 24 * 9 })) }) },
  { weight: 1, arbitrary: fc.constant({ t: 'rotate' as const }) },
  { weight: 1, arbitrary: fc.record({ t: fc.constant('deleteBackup' as const), pick: fc.nat() }) },
);

const historyArb = fc.record({
  wal: fc.boolean(),
  pageSize: fc.constantFrom(1024, 4096),
  freshBaseDays: fc.constantFrom(0, 0, 3),
  ops: fc.array(opArb, { minLength: 4, maxLength: 10 }),
});

/** Deterministic row data (a replay of a failing history changes the same bytes). */
const blob = (size: number, seed: number) => `CAST(replace(hex(zeroblob(${size})), '0', char(65 + (id * ${seed}) % 26)) AS BLOB)`;

function sqlOf(op: Op): string {
  switch (op.t) {
    case 'insert':
      return `INSERT INTO items(name, qty, data) SELECT 'row ' || (i * ${op.seed}), i % 100, NULL FROM (WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < ${op.rows}) SELECT i FROM n);
UPDATE items SET data = ${blob(op.size, op.seed)} WHERE data IS NULL;`;
    case 'update':
      return `UPDATE items SET qty = qty + 1, data = ${blob(op.size, op.seed)} WHERE id % ${op.mod} = ${op.rem % op.mod};`;
    case 'delete':
      return `DELETE FROM items WHERE id % ${op.mod} = ${op.rem % op.mod};`;
    case 'vacuum':
      return 'VACUUM;';
    default:
      throw new Error(`not a change: ${op.t}`);
  }
}

function settableClock(start: number): Clock & { advance(ms: number): void } {
  let t = start;
  return { now: () => new Date(t), sleep: systemClock.sleep, advance: (ms) => void (t += ms) };
}

function packsOnDisk(dir: string): string[] {
  const p = path.join(dir, 'packs');
  return existsSync(p) ? readdirSync(p).filter((f) => f.endsWith('.pack')).map((f) => `packs/${f}`).sort() : [];
}

function manifestsOnDisk(dir: string): Manifest[] {
  const p = path.join(dir, 'snapshots');
  return existsSync(p) ? readdirSync(p).filter((f) => f.endsWith('.json')).map((f) => JSON.parse(readFileSync(path.join(p, f), 'utf8')) as Manifest) : [];
}

/** Distinct page hashes of an image. */
function pageHashes(image: Buffer, pageSize: number): string[] {
  return Array.from({ length: image.length / pageSize }, (_, i) => sha(image.subarray(i * pageSize, (i + 1) * pageSize)));
}

const totals = { runs: 0, ops: 0, backups: 0, unchanged: 0, fresh: 0, rotations: 0, deleted: 0, kept: 0, verified: 0, rebuilt: 0, storedPages: 0, bound: 0, livePages: 0 };

test(`format v2 under random histories of changes, backups, clock moves, rotations and deletions (${NUM_RUNS} runs)`, async () => {
  let n = 0;
  await fc.assert(
    fc.asyncProperty(historyArb, async (h) => {
      const root = path.join(tmp.dir, `run-${++n}`);
      mkdirSync(root);
      const db = path.join(root, 'app.db');
      const dir = path.join(root, 'repo');
      const clock = settableClock(Date.UTC(2026, 2, 2, 8));
      const engine = new Engine({ clock });
      const s: Settings = {
        ...DEFAULT_SETTINGS,
        format: 'repository',
        restoreTest: false,
        freshBaseDays: h.freshBaseDays,
        retention: { daily: 2, weekly: 1, monthly: 1, keepWithin: '', keepEventBackups: 2 },
      };
      makeDb(db, { pageSize: h.pageSize, wal: h.wal, rows: 150 });
      /** Every backup ever made: its manifest and its image's page hashes (page order). */
      const made = new Map<string, { manifest: Manifest; hashes: string[] }>();
      const store = new LocalDirStore(dir);
      let rebuilt = 0;

      const backup = async (kind: 'manual' | 'scheduled') => {
        clock.advance(1000);
        const r = await engine.backup(db, { dir, kind, settings: s });
        assert.ok(r.verified, `${r.record.id}: ${r.record.manifest.verification.problems.join('; ')}`);
        const m = r.record.manifest;
        const out = path.join(root, `image-${++rebuilt}`);
        await repoV2.extractImage(store, r.record.object, out);
        const image = readFileSync(out);
        assert.equal(sha(image), m.image.sha256);
        const hashes = pageHashes(image, m.image.pageSize);
        const rep = m.repository!;
        // Dedup, exactly: the page contents the parent lacks, each once; nothing when unchanged.
        const parent = rep.parent ? made.get(rep.parent) : undefined;
        if (rep.parent) assert.ok(parent, `${r.record.id}: its parent ${rep.parent} is one of this history's backups`);
        const had = new Set(parent?.hashes ?? []);
        if (rep.unchangedFrom) {
          assert.equal(rep.unchangedFrom, rep.parent);
          assert.deepEqual(hashes, parent!.hashes, 'an unchanged backup has its parent\'s image');
          assert.deepEqual(rep.added, { packs: [], pages: 0, bytes: 0 });
          totals.unchanged++;
        } else {
          assert.equal(rep.added.pages, new Set(hashes.filter((x) => !had.has(x))).size, `${r.record.id}: pages stored`);
        }
        if (!rep.parent) totals.fresh++;
        made.set(r.record.id, { manifest: m, hashes });
        totals.backups++;
        return r.record;
      };
      const kept = async (): Promise<BackupRecord[]> => {
        const l = await engine.list(dir);
        assert.deepEqual(l.broken, []);
        return l.records;
      };
      /** The store holds exactly the packs its manifests use, and every one of them. */
      const noGarbage = (after: string) => {
        const used = new Set(manifestsOnDisk(dir).flatMap((m) => m.repository!.packs));
        assert.deepEqual(packsOnDisk(dir), [...used].sort(), `after ${after}: packs on disk are exactly the packs the manifests use`);
      };

      const ops: Op[] = [{ t: 'backup', kind: 'scheduled' }, ...h.ops, { t: 'backup', kind: 'scheduled' }];
      for (const op of ops) {
        totals.ops++;
        switch (op.t) {
          case 'backup':
            await backup(op.kind);
            break;
          case 'advance':
            clock.advance(op.hours * HOUR);
            break;
          case 'rotate':
            await engine.rotate(dir, s, { force: true });
            totals.rotations++;
            break;
          case 'deleteBackup': {
            const all = await kept();
            // The history always starts with a backup; deletions may have taken them all.
            if (all.length) {
              await engine.deleteBackup(all[op.pick % all.length].path);
              totals.deleted++;
            }
            break;
          }
          default:
            if (h.wal) leaveWalFrames(db, sqlOf(op));
            else sqlite(db, sqlOf(op));
        }
        noGarbage(JSON.stringify(op));
      }

      const records = await kept();
      assert.ok(records.length >= 1, 'the closing backup is kept');
      const ids = new Set(records.map((r) => r.id));
      // Manifests deleted by rotation are gone; those kept are the ones made here.
      for (const r of records) assert.ok(made.has(r.id), `${r.id} was made by this history`);
      const live = new Set<string>();
      // The engine's full verification (the image through SQLite too) of the newest; the
      // format's own check and a rebuild compared page by page with the image of each.
      const v = await engine.verifyArchive(records[0].path, s);
      assert.ok(v.ok, `${records[0].id}: ${v.problems.join('; ')}`);
      totals.verified++;
      for (const r of records) {
        const c = await repoV2.check(store, r.object);
        assert.ok(c.ok, `${r.id}: ${c.problems.join('; ')}`);
        const out = path.join(root, `final-${r.id}`);
        const x = await repoV2.extractImage(store, r.object, out);
        assert.equal(x.sha256, made.get(r.id)!.manifest.image.sha256);
        assert.deepEqual(pageHashes(readFileSync(out), r.manifest.image.pageSize), made.get(r.id)!.hashes, `${r.id} rebuilds to the image it was made from`);
        // The page map from the manifest as read from the store (listings leave it out).
        for (const ref of pagesOf(x.manifest.repository!.extents)) live.add(`${x.manifest.repository!.packs[ref.pack]}#${ref.entry}`);
        totals.rebuilt++;
      }
      // Stored pages: entries in the packs left. Each pack was written by a kept backup or
      // by an ancestor of one (a backup points only at its parent's packs and its own), and
      // holds pages that backup added: so the stored pages are at most the pages added by
      // the kept backups and their ancestors (deleted ones included). The brief's "at most
      // the kept backups' page counts" is not sound: a kept backup may use one page of a
      // deleted backup's pack, which keeps the whole pack.
      let stored = 0;
      for (const p of packsOnDisk(dir)) stored += (await readPackIndex(store, p)).count;
      const closure = new Set<string>();
      for (const id of ids) {
        for (let at: string | undefined = id; at && !closure.has(at); at = made.get(at)?.manifest.repository!.parent) closure.add(at);
      }
      const bound = [...closure].reduce((sum, id) => sum + made.get(id)!.manifest.repository!.added.pages, 0);
      assert.ok(stored >= live.size, `${stored} stored pages hold the ${live.size} the kept backups use`);
      assert.ok(stored <= bound, `${stored} stored pages <= ${bound} added by the kept backups and their ancestors`);
      totals.runs++;
      totals.kept += records.length;
      totals.storedPages += stored;
      totals.bound += bound;
      totals.livePages += live.size;
    }),
    { numRuns: NUM_RUNS, endOnFailure: true },
  );
  assert.equal(totals.runs, NUM_RUNS);
  console.log(
    `repo property: ${totals.runs} runs, ${totals.ops} operations, ${totals.backups} backups (${totals.unchanged} unchanged, ${totals.fresh} without a parent), ` +
      `${totals.rotations} rotations, ${totals.backups - totals.kept - totals.deleted} deleted by rotation, ${totals.deleted} by hand, ${totals.kept} kept at the end (each rebuilt and compared, ${totals.verified} verified through SQLite); ` +
      `pages stored ${totals.storedPages}, used by kept backups ${totals.livePages}, bound ${totals.bound}`,
  );
});

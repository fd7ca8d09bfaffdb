/**
 * Rotation for real: archives made by the real engine over months of an injected clock,
 * rotated by the engine after every backup, checked against restic's pure policy; and one
 * definition of "verified" shared by rotation, the tree and the CLI.
 */
import assert from 'node:assert/strict';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { Catalog } from '../../src/core/catalog/catalog';
import { DEFAULT_SETTINGS, type Settings } from '../../src/core/config';
import { systemClock, type Clock } from '../../src/core/context';
import { Engine } from '../../src/core/engine';
import type { BackupKind, BackupRecord } from '../../src/core/model';
import { planRotation } from '../../src/core/retention/plan';
import { applyPolicy } from '../../src/core/retention/policy';
import { rowDescription, rowState } from '../../src/extension/format';
import { packFiles, snapshotIds, zipIds } from '../fixtures/backupFiles';
import { ensureBuilt, lifeboat } from '../fixtures/cli';
import { makeDb, sqlite, tempDir } from '../fixtures/sqlite';

const HOUR = 3_600_000;
const DAY = 24 * HOUR;

/** A clock the test sets; sleeps (none on a quiet database) wait real time. */
function settableClock(start: number): Clock & { set(ms: number): void } {
  let t = start;
  return { now: () => new Date(t), sleep: systemClock.sleep, set: (ms) => void (t = ms) };
}

interface Made {
  id: string;
  path: string;
  created: string;
  kind: BackupKind;
  pinned: boolean;
}

const EVENT = new Set<BackupKind>(['migration', 'pre-restore']);
const AUTOMATIC = new Set<BackupKind>(['scheduled', 'shutdown']);

/**
 * What must survive, from restic's pure policy and the documented guards only (not the
 * plan code under test): manual and pinned always; the newest `keepEventBackups` event
 * backups; the automatic ones restic's policy keeps; and the newest backup. Every backup
 * here verified, so no verification guard applies.
 */
function expectedSurvivors(all: Made[], s: Settings, now: Date): Set<string> {
  const keep = new Set<string>();
  const newestFirst = [...all].sort((a, b) => Date.parse(b.created) - Date.parse(a.created));
  for (const m of newestFirst) if (m.kind === 'manual' || m.pinned) keep.add(m.id);
  newestFirst
    .filter((m) => EVENT.has(m.kind) && !m.pinned)
    .slice(0, s.retention.keepEventBackups)
    .forEach((m) => keep.add(m.id));
  const autos = newestFirst.filter((m) => AUTOMATIC.has(m.kind) && !m.pinned);
  const r = s.retention;
  const policy = applyPolicy(
    autos.map((m) => ({ id: m.id, time: m.created })),
    { daily: r.daily, weekly: r.weekly, monthly: r.monthly, within: r.keepWithin },
    now,
  );
  for (const id of policy.keep) keep.add(id);
  if (newestFirst[0]) keep.add(newestFirst[0].id);
  return keep;
}

before(() => ensureBuilt());

// Format v2, the default: most backups here repeat an unchanged database (a manifest over
// its parent's pages), so rotation deletes manifests and prune the packs none uses any more.
describe('rotation for real: engine-made archives over four months of an injected clock', () => {
  const t = tempDir();
  after(() => t.cleanup());

  test('after every backup the survivors are what the policy says; deletions are logged and gone from disk', async () => {
    const db = path.join(t.dir, 'app.db');
    makeDb(db, { rows: 3 });
    const dir = path.join(t.dir, 'backups');
    const settings: Settings = {
      ...DEFAULT_SETTINGS,
      retention: { daily: 7, weekly: 4, monthly: 3, keepWithin: '1d', keepEventBackups: 2 },
    };
    assert.equal(settings.format, 'repository');
    const start = Date.UTC(2026, 0, 5, 2, 0, 0);
    const clock = settableClock(start);
    const engine = new Engine({ clock });
    // January 5 to mid-April: four calendar months, so the monthly rule (3) lets the oldest go.
    const DAYS = 100;
    const times: { at: number; kind: BackupKind }[] = [];
    for (let d = 0; d < DAYS; d++) {
      // A scheduled backup at 02:00 UTC every day (a migration every 15th day, one manual),
      // and a shutdown backup at 18:00 every 4th day; the 12th backup is pinned once made.
      times.push({ at: start + d * DAY, kind: d === 6 ? 'manual' : d % 15 === 14 ? 'migration' : 'scheduled' });
      if (d % 4 === 1) times.push({ at: start + d * DAY + 16 * HOUR, kind: 'shutdown' });
    }
    const made: Made[] = [];
    let survivors = new Set<string>();
    let pinnedId = '';
    let manualId = '';
    for (let i = 0; i < times.length; i++) {
      const { at, kind } = times[i];
      clock.set(at);
      if (i % 5 === 0) sqlite(db, `INSERT INTO items(name) VALUES ('step ${i}');`);
      // The backup to pin is rotated once pinned (engine.rotate below); every other one by the engine's automatic rotation.
      const res = await engine.backup(db, { dir, kind, settings, trigger: 'rotationReal', rotate: i !== 11 });
      assert.equal(res.verified, true, `backup ${i} verified`);
      const m: Made = { id: res.record.id, path: res.record.path, created: res.record.manifest.created, kind, pinned: false };
      made.push(m);
      if (i === 11) {
        assert.equal(kind, 'scheduled');
        await engine.setPinned(m.path, true);
        m.pinned = true;
        pinnedId = m.id;
        await engine.rotate(dir, settings);
      }
      if (kind === 'manual') manualId = m.id;
      const expected = expectedSurvivors(
        made.filter((x) => survivors.has(x.id) || x === m),
        settings,
        clock.now(),
      );
      assert.deepEqual(snapshotIds(dir), [...expected].sort(), `after backup ${i} (${m.created}, ${kind})`);
      survivors = expected;
    }

    const deleted = made.filter((m) => !survivors.has(m.id));
    assert.ok(deleted.length > DAYS, `months of backups were rotated away (${deleted.length} deleted)`);
    for (const m of deleted) assert.equal(existsSync(m.path), false, `${m.id} is gone from disk`);
    assert.ok(survivors.has(pinnedId), 'the pinned backup survives');
    assert.ok(survivors.has(manualId), 'the manual backup survives');

    // Each deletion is in the backup log exactly once, with its reasons; nothing was refused.
    const log = await new Catalog(dir).log.read();
    const deletions = log.filter((e) => e.op === 'rotate.delete');
    assert.deepEqual(deletions.map((e) => e.backup).sort(), deleted.map((m) => m.id).sort());
    for (const e of deletions) assert.ok(Array.isArray(e.detail?.reasons) && (e.detail.reasons as unknown[]).length > 0, `${e.backup}: reasons logged`);
    assert.deepEqual(log.filter((e) => e.op === 'rotate.refused'), []);

    // The survivors are intact, the catalog lists exactly them, and planning again removes nothing.
    const { records, broken } = await engine.list(dir);
    assert.deepEqual(broken, []);
    assert.deepEqual(records.map((r) => r.id).sort(), [...survivors].sort());
    assert.deepEqual(zipIds(dir), []);
    for (const r of records) {
      assert.equal(r.format, 'repository');
      const v = await engine.verifyArchive(r.path, settings, { deep: true });
      assert.ok(v.ok, `${r.id}: ${v.problems.join('; ')}`);
    }
    // Prune kept exactly the packs the survivors use: none lost, none left behind.
    const used = new Set(records.flatMap((r) => r.manifest.repository!.packs.map((p) => path.basename(p))));
    assert.deepEqual(packFiles(dir), [...used].sort());
    assert.ok(log.some((e) => e.op === 'prune'), 'packs no backup used were pruned');
    assert.deepEqual(planRotation(records, settings.retention, clock.now()).remove, []);
    const kinds = (k: BackupKind) => records.filter((r) => r.manifest.kind === k).length;
    console.log(
      `rotation for real: ${made.length} backups over ${DAYS} days, ${deleted.length} deleted (all logged, gone from disk), ` +
        `${records.length} kept (${kinds('scheduled')} scheduled, ${kinds('shutdown')} shutdown, ${kinds('migration')} migration, ${kinds('manual')} manual, 1 pinned)`,
    );
  });
});

describe('one definition of verified: rotation, the tree and the CLI agree', () => {
  const t = tempDir();
  after(() => t.cleanup());

  test('a later probe-query failure keeps a backup verified (with a warning); a damaged archive is failed everywhere', async () => {
    const db = path.join(t.dir, 'app.db');
    makeDb(db, { rows: 20 });
    const dir = path.join(t.dir, 'backups');
    const config = path.join(t.dir, 'lifeboat.json');
    // keepWithin keeps both backups (made seconds apart, the same day) through the automatic rotation after each.
    const RETENTION = { daily: 1, weekly: 0, monthly: 0, keepWithin: '1d', keepEventBackups: 10 };
    // Format v1: the damage below is a flipped byte inside a zip.
    const configure = (probeQuery: string) =>
      writeFileSync(config, JSON.stringify({ verification: { probeQuery }, retention: RETENTION, format: 'zip' }));

    configure('SELECT * FROM items LIMIT 1');
    const a = await lifeboat(['backup', db, '--kind', 'scheduled', '--json']);
    assert.equal(a.code, 0, a.stderr);
    const good = JSON.parse(a.stdout) as { id: string; verification: { status: string; probe?: { ok: boolean } } };
    assert.equal(good.verification.status, 'ok');
    assert.equal(good.verification.probe?.ok, true, 'the probe ran at backup time');

    // The schema moves on: the probe no longer runs on the old image.
    configure('SELECT * FROM items_renamed LIMIT 1');
    const v = await lifeboat(['verify', path.join(dir, `${good.id}.zip`)]);
    assert.equal(v.code, 0, `a probe failure is not damage: ${v.stdout}${v.stderr}`);
    assert.match(v.stdout, /ok, probe query failed/);
    assert.match(v.stdout, /probe query failed: .*items_renamed/);

    // A second backup whose archive is then damaged on disk.
    configure('SELECT * FROM items LIMIT 1');
    const b = await lifeboat(['backup', db, '--kind', 'scheduled', '--json']);
    assert.equal(b.code, 0, b.stderr);
    const bad = JSON.parse(b.stdout) as { id: string };
    const badPath = path.join(dir, `${bad.id}.zip`);
    const bytes = readFileSync(badPath);
    // Inside the compressed image, after its local header (30 bytes + the entry name): the manifest stays readable.
    bytes[64] ^= 0xff;
    writeFileSync(badPath, bytes);
    const vb = await lifeboat(['verify', badPath]);
    assert.equal(vb.code, 3, `damage found: ${vb.stdout}${vb.stderr}`);

    // The CLI, as JSON and for people.
    const listed = JSON.parse((await lifeboat(['list', '--dir', dir, '--json'])).stdout) as {
      backups: { id: string; verified: boolean; verification: string; probeFailed: boolean }[];
    };
    const cliOf = (id: string) => listed.backups.find((x) => x.id === id)!;
    assert.deepEqual(
      { verified: cliOf(good.id).verified, verification: cliOf(good.id).verification, probeFailed: cliOf(good.id).probeFailed },
      { verified: true, verification: 'verified', probeFailed: true },
    );
    assert.deepEqual({ verified: cliOf(bad.id).verified, verification: cliOf(bad.id).verification }, { verified: false, verification: 'failed' });
    const text = (await lifeboat(['list', '--dir', dir])).stdout.split('\n');
    const lineOf = (id: string) => text.find((l) => l.includes(id)) ?? '';
    assert.match(lineOf(good.id), /verified \(probe query failed\)/);
    assert.doesNotMatch(lineOf(good.id), /FAILED|DAMAGED/);
    assert.match(lineOf(bad.id), /DAMAGED/);

    // The tree's format functions, on the same records the extension would list.
    const { records } = await new Engine().list(dir);
    const rec = (id: string): BackupRecord => records.find((r) => r.id === id)!;
    assert.equal(rowState(rec(good.id)), 'verified');
    assert.match(rowDescription(rec(good.id)), / · verified, probe query failed · scheduled/);
    assert.equal(rowState(rec(bad.id)), 'failed');
    assert.match(rowDescription(rec(bad.id)), /FAILED verification/);

    // Rotation counts the first as the newest verified backup (daily #1) and never counts the damaged one.
    const plan = await lifeboat(['rotate', '--dir', dir, '--dry-run', '--json']);
    assert.equal(plan.code, 0, plan.stderr);
    const p = JSON.parse(plan.stdout) as { keep: { id: string; reasons: string[] }[]; remove: { id: string }[] };
    const keepOf = (id: string) => p.keep.find((k) => k.id === id);
    assert.deepEqual(keepOf(good.id)?.reasons, ['within 1d', 'daily #1', 'newest verified']);
    assert.deepEqual(keepOf(bad.id)?.reasons, ['not verified: kept, never counted']);
    assert.deepEqual(p.remove, []);
    const inProcess = planRotation(records, RETENTION, new Date());
    assert.deepEqual(inProcess.keep.find((k) => k.id === good.id)?.reasons, ['within 1d', 'daily #1', 'newest verified']);
    assert.deepEqual(inProcess.keep.find((k) => k.id === bad.id)?.reasons, ['not verified: kept, never counted']);
  });
});

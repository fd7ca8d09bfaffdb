import assert from 'node:assert/strict';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { ensureBuilt, lifeboat, REPO } from '../fixtures/cli';
import { makeDb, tempDir } from '../fixtures/sqlite';

before(() => ensureBuilt());

const SHARED = path.resolve(REPO, '..', 'shared');
const VECTORS = path.join(SHARED, 'retention', 'restic-vectors');

describe('lifeboat policy: the pure policy through the CLI', () => {
  const t = tempDir();
  after(() => t.cleanup());
  test("restic's golden cases give the same keep and remove lists and reasons", async (ctx) => {
    // Only a checkout without ../shared beside it may skip; CI's clone has it, so there they run.
    if (!existsSync(SHARED)) {
      ctx.skip(`restic's vectors live in ${SHARED}, which is absent beside this checkout`);
      return;
    }
    for (const f of ['cases.json', 'input.json']) {
      assert.ok(existsSync(path.join(VECTORS, f)), `${path.join(VECTORS, f)} is missing: ../shared is present, so restic's vectors must be too`);
    }
    const cases = JSON.parse(readFileSync(path.join(VECTORS, 'cases.json'), 'utf8')) as {
      case: number;
      policy: Record<string, unknown>;
      expected: { keep: string[]; remove: string[]; reasons: { id: string; matches: string[] }[] };
    }[];
    const snaps = path.join(VECTORS, 'input.json');
    let ran = 0;
    for (const c of cases) {
      const p = path.join(t.dir, `policy-${c.case}.json`);
      writeFileSync(p, JSON.stringify(c.policy));
      const r = await lifeboat(['policy', '--snapshots', snaps, '--policy', p]);
      if (Object.keys(c.policy).length === 0) {
        assert.equal(r.code, 2, 'the empty policy is refused');
        assert.match(r.stderr, /empty/);
        continue;
      }
      assert.equal(r.code, 0, `case ${c.case}: ${r.stderr}`);
      const out = JSON.parse(r.stdout);
      assert.deepEqual(out.keep, c.expected.keep, `case ${c.case} keep`);
      assert.deepEqual(out.remove, c.expected.remove, `case ${c.case} remove`);
      for (const reason of c.expected.reasons) assert.deepEqual(out.reasons[reason.id], reason.matches, `case ${c.case} reasons of ${reason.id}`);
      ran++;
    }
    console.log(`lifeboat policy: ${ran} restic cases matched through the CLI, the empty policy refused`);
  });

  test('bad policy and snapshot files get one clear usage error naming the file', async () => {
    const snaps = path.join(t.dir, 's.json');
    writeFileSync(snaps, JSON.stringify([{ id: 'a', time: '2026-01-01T10:00:00+01:00' }]));
    const bad = path.join(t.dir, 'bad.json');
    writeFileSync(bad, JSON.stringify({ daily: 'seven' }));
    const r = await lifeboat(['policy', '--snapshots', snaps, '--policy', bad]);
    assert.equal(r.code, 2);
    assert.match(r.stderr, /bad\.json.*daily/);
    const r2 = await lifeboat(['policy', '--snapshots', path.join(t.dir, 'missing.json'), '--policy', bad]);
    assert.equal(r2.code, 2);
    assert.match(r2.stderr, /missing\.json/);
  });
});

describe('lifeboat pin, unpin and rotate', () => {
  const t = tempDir();
  after(() => t.cleanup());
  test('rotate --dry-run shows the plan; pinned and manual backups are never removed', async () => {
    const ws = path.join(t.dir, 'ws');
    mkdirSync(ws);
    const db = path.join(ws, 'app.db');
    makeDb(db, { rows: 10 });
    const dir = path.join(ws, 'backups');
    const made: string[] = [];
    for (let i = 0; i < 3; i++) {
      const b = await lifeboat(['backup', db, '--kind', i === 0 ? 'manual' : 'scheduled']);
      assert.equal(b.code, 0, b.stderr);
      made.push(b.stdout.trim());
    }
    const pin = await lifeboat(['pin', made[1]]);
    assert.equal(pin.code, 0, pin.stderr);
    const list = JSON.parse((await lifeboat(['list', '--dir', dir, '--json'])).stdout);
    assert.equal(list.backups.filter((b: { pinned: boolean }) => b.pinned).length, 1);
    // keepWithin keeps all three here (they are seconds old): nothing to delete, each with its reasons.
    const plan = await lifeboat(['rotate', '--dir', dir, '--dry-run', '--json']);
    assert.equal(plan.code, 0, plan.stderr);
    const p = JSON.parse(plan.stdout);
    assert.equal(p.remove.length, 0);
    assert.equal(p.keep.length, 3);
    // Format v2, the default: each backup is visible as backups/snapshots/<id>.json.
    assert.deepEqual(made.map((m) => path.relative(dir, path.dirname(m))), ['snapshots', 'snapshots', 'snapshots']);
    const pinnedKeep = p.keep.find((k: { id: string }) => made[1].endsWith(`${k.id}.json`));
    assert.ok(pinnedKeep.reasons.includes('pinned'), JSON.stringify(pinnedKeep));
    assert.equal(pinnedKeep.tier, 'manual');
    // list --json shows each backup under the tier the plan (and the tree) gives it: the
    // newest scheduled one under daily, not under monthly, with every reason kept.
    type Listed = { path: string; tier: string; keptBecause: string[] };
    const listed = new Map((list.backups as Listed[]).map((b) => [b.path, b]));
    assert.deepEqual(made.map((m) => listed.get(m)?.tier), ['manual', 'manual', 'daily']);
    assert.deepEqual(listed.get(made[2])!.keptBecause, ['within 2d', 'daily #1', 'weekly #1', 'monthly #1', 'newest verified']);
    for (const k of p.keep as { id: string; tier: string }[]) assert.equal([...listed.values()].find((b) => b.path.endsWith(`${k.id}.json`))?.tier, k.tier, k.id);
    const unpin = await lifeboat(['unpin', made[1]]);
    assert.equal(unpin.code, 0);
    const log = JSON.parse((await lifeboat(['log', '--dir', dir, '--json'])).stdout).map((e: { op: string }) => e.op);
    assert.ok(log.includes('pin') && log.includes('unpin'));
    const missing = await lifeboat(['pin', path.join(dir, 'nope.zip')]);
    assert.equal(missing.code, 1);
    assert.match(missing.stderr, /nope\.zip/);
  });
});

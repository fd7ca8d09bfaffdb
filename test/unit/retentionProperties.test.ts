import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import type { RetentionSettings } from '../../src/core/config';
import { type BackupRecord, TIERS, isVerified } from '../../src/core/model';
import { databaseKey, planRotation } from '../../src/core/retention/plan';
import { type Policy, type PolicySnapshot, applyPolicy } from '../../src/core/retention/policy';
import { rfc3339AtOffset, rfc3339InZone, wallClockIn } from '../../src/core/retention/wallClock';
import { makeRecord } from '../fixtures/backupRecords';

// LIFEBOAT_FC_RUNS raises the count for a longer local hunt; the suite's default stays quick.
const MIN_RUNS = 100;
/**
 * LIFEBOAT_FC_RUNS as a whole number of runs, at least MIN_RUNS: a property checked on
 * a handful of inputs (or none: "0", "", "abc") would pass without testing anything.
 * Throws naming the variable otherwise.
 */
function numRuns(raw: string | undefined): number {
  if (raw === undefined) return 1000;
  const n = Number(raw);
  if (raw.trim() === '' || !Number.isSafeInteger(n) || n < MIN_RUNS) {
    throw new RangeError(`LIFEBOAT_FC_RUNS must be a whole number >= ${MIN_RUNS} (got ${JSON.stringify(raw)})`);
  }
  return n;
}
const NUM_RUNS = numRuns(process.env.LIFEBOAT_FC_RUNS);
const runs: Array<[string, number]> = [];
/** Runs a property with NUM_RUNS and records the count for the summary the lead reports. */
function check<T>(name: string, prop: fc.IProperty<T>): void {
  fc.assert(prop, { numRuns: NUM_RUNS });
  runs.push([name, NUM_RUNS]);
}

const MIN = 60_000;
const HOUR = 3_600_000;
const DAY = 86_400_000;
const BASE = Date.UTC(2023, 9, 1);
// DST changes in both zones, and the new year (ISO week-years) on both sides of the Atlantic.
const EDGES = [
  Date.UTC(2023, 9, 29, 1), // Berlin back to CET
  Date.UTC(2023, 10, 5, 6), // New York back to EST
  Date.UTC(2024, 2, 10, 7), // New York to EDT
  Date.UTC(2024, 2, 31, 1), // Berlin to CEST
  Date.UTC(2024, 9, 27, 1),
  Date.UTC(2024, 10, 3, 6),
  Date.UTC(2024, 11, 31, 23), // midnight in Berlin
  Date.UTC(2025, 0, 1, 5), // midnight in New York
];
const ZONES = ['Europe/Berlin', 'America/New_York', 'UTC'];
const FIXED_OFFSETS = [330, -570, 840, -720, 60, -300];

type Where = { zone: string } | { offset: number };
const whereArb: fc.Arbitrary<Where> = fc.oneof(
  { weight: 3, arbitrary: fc.constantFrom(...ZONES).map((zone) => ({ zone })) },
  { weight: 1, arbitrary: fc.constantFrom(...FIXED_OFFSETS).map((offset) => ({ offset })) },
);
const render = (w: Where, ms: number) => ('zone' in w ? rfc3339InZone(w.zone, ms) : rfc3339AtOffset(w.offset, ms));
const instantArb: fc.Arbitrary<number> = fc.oneof(
  fc.integer({ min: 0, max: 600 * 24 * 60 }).map((m) => BASE + m * MIN),
  fc.tuple(fc.constantFrom(...EDGES), fc.integer({ min: -30 * 60, max: 30 * 60 })).map(([t, m]) => t + m * MIN),
  // A couple of fixed instants make equal timestamps (ties) common.
  fc.constantFrom(BASE + 300 * DAY, BASE + 300 * DAY + 2 * HOUR),
);

// ---- Intl wall clock ----

test('wall clock through Intl: DST changes in Europe/Berlin and America/New_York', () => {
  assert.equal(rfc3339InZone('Europe/Berlin', Date.UTC(2024, 2, 31, 0, 59, 59)), '2024-03-31T01:59:59.000+01:00');
  assert.equal(rfc3339InZone('Europe/Berlin', Date.UTC(2024, 2, 31, 1)), '2024-03-31T03:00:00.000+02:00');
  assert.equal(rfc3339InZone('Europe/Berlin', Date.UTC(2024, 9, 27, 0, 30)), '2024-10-27T02:30:00.000+02:00');
  assert.equal(rfc3339InZone('Europe/Berlin', Date.UTC(2024, 9, 27, 1, 30)), '2024-10-27T02:30:00.000+01:00');
  assert.equal(rfc3339InZone('America/New_York', Date.UTC(2024, 10, 3, 5, 59)), '2024-11-03T01:59:00.000-04:00');
  assert.equal(rfc3339InZone('America/New_York', Date.UTC(2024, 10, 3, 6)), '2024-11-03T01:00:00.000-05:00');
  assert.equal(rfc3339AtOffset(-570, Date.UTC(2024, 0, 1, 5, 0, 0, 7)), '2023-12-31T19:30:00.007-09:30');
  assert.equal(wallClockIn('UTC', Date.UTC(2024, 1, 29, 23)).offsetMinutes, 0);
  check(
    'Intl wall clock round-trips to the instant',
    fc.property(instantArb, whereArb, (ms, where) => Date.parse(render(where, ms)) === ms),
  );
});

// ---- The pure policy ----

const snapshotsArb: fc.Arbitrary<PolicySnapshot[]> = fc
  .array(fc.record({ at: instantArb, where: whereArb, tags: fc.subarray(['a', 'b']) }), { maxLength: 40 })
  .map((xs) => xs.map((x, i) => ({ id: `s${i}`, time: render(x.where, x.at), ...(x.tags.length ? { tags: x.tags } : {}) })));
const countArb = fc.oneof(fc.constant(undefined), fc.constant(-1), fc.integer({ min: 0, max: 6 }));
const windowArb = fc.oneof(fc.constant(undefined), fc.constantFrom('1d', '2d', '36h', '7d', '1m', '1m14d', '1y'));
const countsArb = fc.record({ last: countArb, hourly: countArb, daily: countArb, weekly: countArb, monthly: countArb, yearly: countArb });
const policyArb: fc.Arbitrary<Policy> = fc
  .record({
    counts: countsArb,
    within: windowArb,
    withinDaily: windowArb,
    withinWeekly: windowArb,
    tags: fc.option(fc.constantFrom([['a']], [['a', 'b']], [['b'], ['a']]), { nil: undefined }),
  })
  .map(({ counts, ...rest }) => {
    const p: Policy = {};
    for (const [k, v] of Object.entries({ ...counts, ...rest })) if (v !== undefined) (p as Record<string, unknown>)[k] = v;
    return p;
  });
const nowArb = fc.option(instantArb.map((ms) => new Date(ms)), { nil: undefined });

/** ISO week of a YYYY-MM-DD date string, from the Monday of the week holding January 4th. */
function isoWeekOf(date: string): string {
  const [y, m, d] = date.split('-').map(Number);
  const dayNo = (yy: number, mm: number, dd: number) => Date.UTC(yy, mm - 1, dd) / DAY;
  const week1 = (yy: number) => dayNo(yy, 1, 4) - ((new Date(Date.UTC(yy, 0, 4)).getUTCDay() + 6) % 7);
  const n = dayNo(y, m, d);
  let year = y + 1;
  while (n < week1(year)) year--;
  return `${year}-${Math.floor((n - week1(year)) / 7) + 1}`;
}

/**
 * A reference for the count rules alone, with periods read straight off the RFC 3339
 * text (its own wall clock): first characters for hour/day/month/year, isoWeekOf for weeks.
 */
function countRulesReference(snaps: PolicySnapshot[], p: Policy) {
  const rules = [
    { name: 'last', key: (_s: string, i: number) => String(i) },
    { name: 'hourly', key: (s: string) => s.slice(0, 13) },
    { name: 'daily', key: (s: string) => s.slice(0, 10) },
    { name: 'weekly', key: (s: string) => isoWeekOf(s.slice(0, 10)) },
    { name: 'monthly', key: (s: string) => s.slice(0, 7) },
    { name: 'yearly', key: (s: string) => s.slice(0, 4) },
  ] as const;
  const sorted = snaps.map((s, i) => ({ s, i })).sort((a, b) => Date.parse(b.s.time) - Date.parse(a.s.time) || a.i - b.i);
  const left = rules.map((r) => p[r.name] ?? 0);
  const lastKey: Array<string | undefined> = rules.map(() => undefined);
  const keep: string[] = [];
  const remove: string[] = [];
  const matches: Record<string, string[]> = {};
  sorted.forEach(({ s }, pos) => {
    const m: string[] = [];
    rules.forEach((r, j) => {
      if (left[j] === 0 || left[j] < -1) return;
      const k = r.key(s.time, pos);
      const oldest = pos === sorted.length - 1;
      if (k === lastKey[j] && !oldest) return;
      m.push(k === lastKey[j] ? `oldest ${r.name} snapshot` : `${r.name} snapshot`);
      lastKey[j] = k;
      if (left[j] > 0) left[j]--;
    });
    if (m.length) {
      keep.push(s.id);
      matches[s.id] = m;
    } else remove.push(s.id);
  });
  return { keep, remove, matches };
}

test('policy properties: partition, reasons, count rules on each wall clock, monotone counts', () => {
  check(
    'policy: keep and remove partition the input, newest first, a reason for every kept one',
    fc.property(snapshotsArb, policyArb, nowArb, (snaps, policy, now) => {
      const r = applyPolicy(snaps, policy, now);
      assert.deepEqual([...r.keep, ...r.remove].sort(), snaps.map((s) => s.id).sort());
      assert.deepEqual(Object.keys(r.reasons).sort(), [...r.keep].sort());
      for (const id of r.keep) assert.ok(r.reasons[id].matches.length > 0, id);
      const times = new Map(snaps.map((s) => [s.id, Date.parse(s.time)]));
      for (const list of [r.keep, r.remove]) {
        for (let i = 1; i < list.length; i++) assert.ok(times.get(list[i - 1])! >= times.get(list[i])!);
      }
    }),
  );
  check(
    'policy: count rules match a reference that reads periods off the local time text',
    fc.property(snapshotsArb, countsArb, (snaps, counts) => {
      const policy: Policy = {};
      for (const [k, v] of Object.entries(counts)) if (v !== undefined) (policy as Record<string, number>)[k] = v;
      const got = applyPolicy(snaps, policy);
      const want = countRulesReference(snaps, policy);
      assert.deepEqual(got.keep, want.keep);
      assert.deepEqual(got.remove, want.remove);
      for (const id of got.keep) assert.deepEqual(got.reasons[id].matches, want.matches[id], id);
    }),
  );
  const fields = ['last', 'hourly', 'daily', 'weekly', 'monthly', 'yearly'] as const;
  check(
    'policy: raising any count never removes more',
    fc.property(
      snapshotsArb,
      policyArb,
      fc.constantFrom(...fields),
      fc.oneof(fc.constant(-1), fc.integer({ min: 1, max: 5 })),
      (snaps, policy, field, raise) => {
        const before = policy[field] ?? 0;
        fc.pre(before !== -1);
        const after = raise === -1 ? -1 : before + raise;
        const a = new Set(applyPolicy(snaps, policy, undefined).remove);
        const b = applyPolicy(snaps, { ...policy, [field]: after }, undefined).remove;
        for (const id of b) assert.ok(a.has(id), `${id} removed only after raising ${field} ${before} -> ${after}`);
      },
    ),
  );
});

// ---- Lifeboat's plan ----

const KINDS = ['scheduled', 'scheduled', 'scheduled', 'shutdown', 'manual', 'migration', 'pre-restore'] as const;
const recordsArb: fc.Arbitrary<BackupRecord[]> = fc
  .array(
    fc.record({
      at: instantArb,
      where: whereArb,
      kind: fc.constantFrom(...KINDS),
      status: fc.constantFrom('ok', 'ok', 'ok', 'ok', 'failed', 'skipped'),
      sourceDamaged: fc.integer({ min: 0, max: 9 }).map((n) => n === 0),
      pinned: fc.integer({ min: 0, max: 9 }).map((n) => n === 0),
      db: fc.constantFrom('/w/a.db', '/w/b.db'),
    }),
    { maxLength: 40 },
  )
  .map((xs) =>
    xs.map((x, i) =>
      makeRecord(`r${i}`, render(x.where, x.at), {
        kind: x.kind,
        status: x.status as 'ok' | 'failed' | 'skipped',
        sourceDamaged: x.sourceDamaged,
        pinned: x.pinned,
        db: x.db,
      }),
    ),
  );
const retentionArb: fc.Arbitrary<RetentionSettings> = fc.record({
  daily: fc.integer({ min: 0, max: 8 }),
  weekly: fc.integer({ min: 0, max: 5 }),
  monthly: fc.integer({ min: 0, max: 5 }),
  keepWithin: fc.constantFrom('', '0d', '1d', '2d', '36h', '1m'),
  keepEventBackups: fc.integer({ min: 0, max: 4 }),
});
const planNowArb = instantArb.map((ms) => new Date(ms));
const at = (r: BackupRecord) => Date.parse(r.manifest.created);

/** The newest verified backup of each database (ties: first in input order). */
function newestVerifiedIds(records: BackupRecord[]): Set<string> {
  const best = new Map<string, BackupRecord>();
  for (const r of records) {
    if (!isVerified(r)) continue;
    const cur = best.get(databaseKey(r));
    if (!cur || at(r) > at(cur)) best.set(databaseKey(r), r);
  }
  return new Set([...best.values()].map((r) => r.id));
}

test('plan properties: partition, guards, idempotence, monotone counts, refusal', () => {
  check(
    'plan: keep and remove partition the input; every backup has reasons; tiers are known',
    fc.property(recordsArb, retentionArb, planNowArb, (records, retention, now) => {
      const plan = planRotation(records, retention, now);
      assert.deepEqual([...plan.keep.map((k) => k.id), ...plan.remove.map((k) => k.id)].sort(), records.map((r) => r.id).sort());
      for (const k of plan.keep) {
        assert.ok(k.reasons.length > 0, `kept ${k.id} has a reason`);
        assert.ok((TIERS as readonly string[]).includes(k.tier));
      }
      for (const k of plan.remove) assert.ok(k.reasons.length > 0, `removed ${k.id} has a reason`);
    }),
  );
  check(
    'plan: manual, pinned and the newest verified of each database are never removed',
    fc.property(recordsArb, retentionArb, planNowArb, (records, retention, now) => {
      const removed = new Set(planRotation(records, retention, now, { force: true }).remove.map((k) => k.id));
      for (const r of records) {
        if (r.manifest.kind === 'manual' || r.state.pinned) assert.ok(!removed.has(r.id), `${r.id} is manual or pinned`);
      }
      for (const id of newestVerifiedIds(records)) assert.ok(!removed.has(id), `${id} is the newest verified`);
    }),
  );
  check(
    'plan: idempotent (executing a plan, then planning again removes nothing)',
    fc.property(recordsArb, retentionArb, planNowArb, (records, retention, now) => {
      const removed = new Set(planRotation(records, retention, now, { force: true }).remove.map((k) => k.id));
      const again = planRotation(records.filter((r) => !removed.has(r.id)), retention, now, { force: true });
      assert.deepEqual(again.remove, []);
    }),
  );
  check(
    'plan: unverified backups never push a verified one out',
    fc.property(recordsArb, retentionArb, planNowArb, (records, retention, now) => {
      const verifiedOnly = records.filter(isVerified);
      const keptWith = new Set(planRotation(records, retention, now, { force: true }).keep.map((k) => k.id));
      const keptWithout = planRotation(verifiedOnly, retention, now, { force: true }).keep.map((k) => k.id);
      assert.deepEqual(verifiedOnly.map((r) => r.id).filter((id) => keptWith.has(id)).sort(), [...keptWithout].sort());
    }),
  );
  check(
    'plan: raising any count never removes more (once its group has a rule)',
    fc.property(
      recordsArb,
      retentionArb,
      planNowArb,
      fc.constantFrom('daily', 'weekly', 'monthly', 'keepEventBackups'),
      fc.integer({ min: 1, max: 5 }),
      (records, retention, now, field, raise) => {
        // A group with no rule at all deletes nothing by design, so 0 -> 1 there may delete; that is the one exception.
        const autoActive = retention.daily + retention.weekly + retention.monthly > 0 || !['', '0d'].includes(retention.keepWithin);
        fc.pre(field === 'keepEventBackups' ? retention.keepEventBackups > 0 : autoActive);
        const a = new Set(planRotation(records, retention, now, { force: true }).remove.map((k) => k.id));
        const raised = { ...retention, [field]: retention[field] + raise };
        for (const k of planRotation(records, raised, now, { force: true }).remove) {
          assert.ok(a.has(k.id), `${k.id} removed only after raising ${field}`);
        }
      },
    ),
  );
  check(
    'plan: refused exactly when a database would lose more than half of its automatic backups',
    fc.property(recordsArb, retentionArb, planNowArb, (records, retention, now) => {
      const plan = planRotation(records, retention, now);
      const removed = new Set(plan.remove.map((k) => k.id));
      const over = new Set<string>();
      for (const db of new Set(records.map(databaseKey))) {
        const auto = records.filter((r) => databaseKey(r) === db && ['scheduled', 'shutdown'].includes(r.manifest.kind));
        if (auto.filter((r) => removed.has(r.id)).length * 2 > auto.length) over.add(db);
      }
      assert.equal(plan.refused !== undefined, over.size > 0);
      for (const db of over) assert.ok(plan.refused!.includes(db));
      assert.equal(planRotation(records, retention, now, { force: true }).refused, undefined);
    }),
  );
  const total = runs.reduce((n, [, r]) => n + r, 0);
  console.log(`property tests: ${runs.length} properties, numRuns ${NUM_RUNS} each, ${total} runs in all`);
  for (const [name, r] of runs) console.log(`  ${r} runs: ${name}`);
});

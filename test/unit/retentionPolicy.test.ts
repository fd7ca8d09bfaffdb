import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { BackupError } from '../../src/core/errors';
import { formatDuration, parseDuration, parseTimestamp, subtractDuration } from '../../src/core/retention/duration';
import { type Policy, type PolicySnapshot, applyPolicy, isEmptyPolicy, isoWeek, parsePolicyJson } from '../../src/core/retention/policy';

/** Walks up from here to the package.json named "lifeboat" (tests run from out/test/unit/). */
function repoRoot(): string {
  for (let dir = __dirname; ; dir = path.dirname(dir)) {
    const pkg = path.join(dir, 'package.json');
    if (existsSync(pkg) && (JSON.parse(readFileSync(pkg, 'utf8')) as { name?: string }).name === 'lifeboat') return dir;
    if (path.dirname(dir) === dir) throw new Error(`no package.json named "lifeboat" above ${__dirname}`);
  }
}

const SHARED = path.resolve(repoRoot(), '..', 'shared');
const VECTORS = path.join(SHARED, 'retention', 'restic-vectors');
// Only a checkout without ../shared beside it (not CI, whose clone has it) may skip the
// vectors; when ../shared is there, a missing vector file fails the test that reads it.
const vectorsMissing = existsSync(SHARED)
  ? undefined
  : `restic's vectors live in ${SHARED}, which is absent beside this checkout (CI has it: there they run)`;

interface VectorCase {
  case: number;
  policy: Policy;
  expected: { keep: string[]; remove: string[]; reasons: Array<{ id: string; matches: string[]; counters: Record<string, number> }> };
}
interface DocExamples {
  snapshots: PolicySnapshot[];
  cases: Array<{ name: string; policy: Policy; expectedKeep: string[]; expectedReason: string }>;
}
const readJson = <T>(name: string): T => {
  const file = path.join(VECTORS, name);
  assert.ok(existsSync(file), `${file} is missing: ../shared is present, so restic's vectors must be too`);
  return JSON.parse(readFileSync(file, 'utf8')) as T;
};

// restic's test runs with the real clock, long after the vectors' 2014-2016 times; a fixed later instant does the same.
const NOW = new Date('2026-01-01T00:00:00Z');

test("restic's 40 golden cases: keep, remove and reasons match exactly", (t) => {
  if (vectorsMissing) return t.skip(vectorsMissing);
  const input = readJson<PolicySnapshot[]>('input.json');
  const cases = readJson<VectorCase[]>('cases.json');
  assert.equal(cases.length, 40, 'cases.json should hold restic\'s 40 cases');
  let checked = 0;
  for (const c of cases) {
    // Round-trip through the JSON reader too: the vectors use restic's field names.
    const policy = parsePolicyJson(JSON.parse(JSON.stringify(c.policy)));
    const got = applyPolicy(input, policy, NOW);
    const label = `case ${c.case} ${JSON.stringify(c.policy)}`;
    assert.deepEqual(got.keep, c.expected.keep, `${label}: keep`);
    assert.deepEqual(got.remove, c.expected.remove, `${label}: remove`);
    const reasons = got.keep.map((id) => ({ id, ...got.reasons[id] }));
    assert.deepEqual(reasons, c.expected.reasons, `${label}: reasons`);
    assert.equal(Object.keys(got.reasons).length, got.keep.length, `${label}: one reason per kept snapshot`);
    checked++;
  }
  console.log(`golden: ${checked} restic cases matched (keep, remove, reasons)`);
});

test("restic's documented examples (keep-daily 5, keep-within-daily 7d)", (t) => {
  if (vectorsMissing) return t.skip(vectorsMissing);
  const doc = readJson<DocExamples>('doc-examples.json');
  assert.equal(doc.cases.length, 2);
  for (const c of doc.cases) {
    const got = applyPolicy(doc.snapshots, parsePolicyJson(c.policy), NOW);
    const newestFirst = [...doc.snapshots].sort((a, b) => Date.parse(b.time) - Date.parse(a.time)).map((s) => s.id);
    assert.deepEqual(got.keep, newestFirst.filter((id) => c.expectedKeep.includes(id)), `${c.name}: keep`);
    assert.deepEqual(got.remove, newestFirst.filter((id) => !c.expectedKeep.includes(id)), `${c.name}: remove`);
    for (const id of got.keep) assert.deepEqual(got.reasons[id].matches, [c.expectedReason], `${c.name}: reason of ${id}`);
  }
  console.log(`golden: ${doc.cases.length} documented examples matched`);
});

test('periods follow each snapshot\'s own offset, not UTC and not the machine zone', () => {
  // Same instant-day in UTC, but 23:30-05:00 is the next UTC day; daily must use the wall clock.
  const snaps: PolicySnapshot[] = [
    { id: 'a', time: '2024-03-10T23:30:00-05:00' }, // 2024-03-11T04:30Z
    { id: 'b', time: '2024-03-10T08:00:00-05:00' },
    { id: 'c', time: '2024-03-11T01:00:00+00:00' }, // earlier instant than a, different wall day than a
  ];
  const got = applyPolicy(snaps, { daily: 2 });
  // Newest first by instant: a (04:30Z), c (01:00Z), b (13:00Z the day before).
  assert.deepEqual([...got.keep, ...got.remove], ['a', 'c', 'b']);
  assert.deepEqual(got.keep, ['a', 'c']);
  assert.deepEqual(got.remove, ['b']);
});

test('ISO weeks: Monday start and the ISO week-year at the new year', () => {
  assert.deepEqual(isoWeek(2020, 12, 31), { year: 2020, week: 53 });
  assert.deepEqual(isoWeek(2021, 1, 3), { year: 2020, week: 53 });
  assert.deepEqual(isoWeek(2021, 1, 4), { year: 2021, week: 1 });
  assert.deepEqual(isoWeek(2024, 12, 30), { year: 2025, week: 1 });
  assert.deepEqual(isoWeek(2026, 11, 22), { year: 2026, week: 47 }); // Sunday
  assert.deepEqual(isoWeek(2026, 11, 23), { year: 2026, week: 48 }); // Monday
  // Sunday 2024-12-29 and Monday 2024-12-30 fall in different weeks, and the Monday in the next week-year.
  const got = applyPolicy(
    [
      { id: 'mon', time: '2024-12-30T10:00:00+01:00' },
      { id: 'sun', time: '2024-12-29T10:00:00+01:00' },
      { id: 'sat', time: '2024-12-28T10:00:00+01:00' },
    ],
    { weekly: 2 },
  );
  assert.deepEqual(got.keep, ['mon', 'sun']);
  assert.deepEqual(got.reasons.sun.matches, ['weekly snapshot']);
});

test('ties keep input order; the oldest rule keeps the last of them', () => {
  const t0 = '2024-05-01T12:00:00Z';
  const got = applyPolicy(
    [
      { id: 'x', time: t0 },
      { id: 'y', time: t0 },
      { id: 'z', time: t0 },
    ],
    { daily: 3 },
  );
  assert.deepEqual(got.keep, ['x', 'z']);
  assert.deepEqual(got.remove, ['y']);
  assert.deepEqual(got.reasons.z, { matches: ['oldest daily snapshot'], counters: { daily: 1 } });
});

test('within: lower bound exclusive, measured from the newest snapshot not in the future', () => {
  const snaps: PolicySnapshot[] = [
    { id: 'future', time: '2030-01-01T00:00:00Z' },
    { id: 'latest', time: '2024-01-10T00:00:00Z' },
    { id: 'edge', time: '2024-01-08T00:00:00Z' },
    { id: 'inside', time: '2024-01-08T00:00:00.000000001Z' },
  ];
  const got = applyPolicy(snaps, { within: '2d' }, new Date('2025-01-01T00:00:00Z'));
  assert.deepEqual(got.keep, ['future', 'latest', 'inside']);
  assert.deepEqual(got.remove, ['edge']);
  // Without now, the future snapshot is the anchor and the window moves with it.
  assert.deepEqual(applyPolicy(snaps, { within: '2d' }).keep, ['future']);
});

test('durations: restic syntax, calendar arithmetic with Go normalisation', () => {
  assert.deepEqual(parseDuration('1y2m3d3h'), { years: 1, months: 2, days: 3, hours: 3 });
  assert.deepEqual(parseDuration('2d'), { years: 0, months: 0, days: 2, hours: 0 });
  assert.equal(formatDuration(parseDuration('1y1d1m')), '1y1m1d');
  assert.equal(formatDuration(parseDuration('2w')), '14d');
  for (const bad of ['', '2', 'd', '2x', '2 d', '-1d', '1.5d']) {
    assert.throws(
      () => parseDuration(bad),
      (e) => BackupError.is(e, 'badConfig') && e.message.includes(JSON.stringify(bad)),
      `should refuse ${JSON.stringify(bad)}`,
    );
  }
  const iso = (s: string, d: string) => {
    const r = subtractDuration(parseTimestamp(s), parseDuration(d));
    return new Date(r.epochMs).toISOString();
  };
  // Go: March 31 minus one month is "February 31": March 2 in a leap year, March 3 otherwise.
  assert.equal(iso('2024-03-31T10:00:00Z', '1m'), '2024-03-02T10:00:00.000Z');
  assert.equal(iso('2023-03-31T10:00:00Z', '1m'), '2023-03-03T10:00:00.000Z');
  assert.equal(iso('2024-02-29T10:00:00Z', '1y'), '2023-03-01T10:00:00.000Z');
  // Calendar arithmetic runs on the recorded offset's wall clock: 2024-04-01 00:30 -1m -1d is 02-29 00:30, -1h is 02-28 23:30+02:00.
  assert.equal(iso('2024-04-01T00:30:00+02:00', '1m1d1h'), '2024-02-28T21:30:00.000Z');
  assert.equal(iso('2024-04-01T00:30:00+02:00', '1m1d'), '2024-02-28T22:30:00.000Z');
});

test('timestamps: RFC 3339 with offsets and nanoseconds; invalid ones name the snapshot', () => {
  const a = parseTimestamp('2014-08-13T10:20:30.1Z');
  const b = parseTimestamp('2014-08-13T10:20:30.100000001Z');
  assert.equal(a.epochMs, b.epochMs);
  assert.ok(b.nanos > a.nanos);
  assert.equal(parseTimestamp('2016-01-18T12:02:03+01:00').offsetMinutes, 60);
  assert.equal(parseTimestamp('2016-01-18T12:02:03-09:30').offsetMinutes, -570);
  for (const bad of ['2016-01-18', '2016-02-30T00:00:00Z', '2016-01-18T24:00:00Z', '2016-01-18T12:02:03', 'yesterday']) {
    assert.throws(
      () => applyPolicy([{ id: 'snap7', time: bad }], { last: 1 }),
      (e) => BackupError.is(e, 'badConfig') && e.message.includes('snap7'),
      `should refuse ${bad}`,
    );
  }
  assert.throws(
    () => applyPolicy([{ id: 'd', time: '2016-01-18T12:02:03Z' }, { id: 'd', time: '2016-01-19T12:02:03Z' }], { last: 1 }),
    (e) => BackupError.is(e, 'badConfig') && e.message.includes('"d"'),
  );
});

test('parsePolicyJson: restic field names; unknown fields and wrong types name the field', () => {
  assert.deepEqual(parsePolicyJson({ daily: 7, within: '2d', tags: [['a', 'b']] }), { daily: 7, within: '2d', tags: [['a', 'b']] });
  const refuse = (raw: unknown, field: string) =>
    assert.throws(
      () => parsePolicyJson(raw),
      (e) => BackupError.is(e, 'badConfig') && e.message.includes(field),
      `should refuse ${JSON.stringify(raw)}`,
    );
  refuse({ keepDaily: 7 }, 'keepDaily');
  refuse({ daily: '7' }, 'daily');
  refuse({ daily: 1.5 }, 'daily');
  refuse({ weekly: -2 }, 'weekly');
  refuse({ within: 2 }, 'within');
  refuse({ withinDaily: '7 days' }, 'withinDaily');
  refuse({ tags: ['foo'] }, 'tags');
  refuse([], 'policy');
  refuse(null, 'policy');
});

test('parsePolicyJson: every field at its limits, only the fields given; each refusal says which field and why', () => {
  const all = { last: -1, hourly: 0, daily: 7, weekly: 4, monthly: 12, yearly: Number.MAX_SAFE_INTEGER, within: '1y2m3d4h', withinHourly: '0h', withinDaily: '7d', withinWeekly: '2w', withinMonthly: '6m', withinYearly: '10y', tags: [[], ['']] };
  assert.deepEqual(parsePolicyJson(all), all);
  assert.deepEqual(Object.keys(parsePolicyJson({ weekly: 2 })), ['weekly'], 'no keys for fields not given');
  const tags = [['a']];
  assert.notEqual(parsePolicyJson({ tags }).tags, tags, 'a new list, not the caller\'s');

  const message = (raw: unknown): string => {
    try {
      parsePolicyJson(raw);
    } catch (e) {
      assert.ok(BackupError.is(e, 'badConfig'), String(e));
      assert.ok(!e.message.includes('\n'), e.message);
      return e.message;
    }
    assert.fail(`accepted ${JSON.stringify(raw)}`);
  };
  assert.match(message({ daily: 7, keep_daily: 7 }), /^policy field "keep_daily" is unknown \(known: last, hourly, .*tags\)$/);
  assert.equal(message({ monthly: '12' }), 'policy field "monthly" must be a whole number >= -1 (got "12")');
  assert.equal(message({ last: null }), 'policy field "last" must be a whole number >= -1 (got null)');
  assert.equal(message({ hourly: 2 ** 53 }), `policy field "hourly" must be a whole number >= -1 (got ${2 ** 53})`);
  assert.equal(message({ withinWeekly: ['2w'] }), 'policy field "withinWeekly" must be a duration string such as "7d" (got ["2w"])');
  assert.match(message({ withinMonthly: '6 months' }), /^policy field "withinMonthly": .*6 months/);
  assert.match(message({ within: '' }), /^policy field "within": /);
  assert.equal(message({ tags: [['a'], ['b', 3]] }), 'policy field "tags" must be a list of lists of strings at tags.1.1 (got [["a"],["b",3]])');
  assert.equal(message({ tags: 'a' }), 'policy field "tags" must be a list of lists of strings (got "a")');
  for (const raw of ['daily', 7, undefined]) assert.match(message(raw), /^policy: expected a JSON object/);
});

test('an empty policy is recognised; restic keeps nothing under it', () => {
  assert.equal(isEmptyPolicy({}), true);
  assert.equal(isEmptyPolicy({ daily: 0, within: '0d', tags: [] }), true);
  assert.equal(isEmptyPolicy({ daily: -1 }), false);
  assert.equal(isEmptyPolicy({ withinWeekly: '1d' }), false);
  assert.equal(isEmptyPolicy({ tags: [['x']] }), false);
  const got = applyPolicy([{ id: 'a', time: '2016-01-18T12:02:03Z' }], {});
  assert.deepEqual(got, { keep: [], remove: ['a'], reasons: {} });
});

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { DEFAULT_SETTINGS, type RetentionSettings } from '../../src/core/config';
import { BackupError } from '../../src/core/errors';
import type { BackupRecord } from '../../src/core/model';
import { databaseKey, planRotation, tiersOf } from '../../src/core/retention/plan';
import { rfc3339InZone } from '../../src/core/retention/wallClock';
import { makeRecord } from '../fixtures/backupRecords';

const DAY = 86_400_000;
const HOUR = 3_600_000;
const R = (over: Partial<RetentionSettings> = {}): RetentionSettings => ({ ...DEFAULT_SETTINGS.retention, ...over });
const ONLY_DAILY = (n: number) => R({ daily: n, weekly: 0, monthly: 0, keepWithin: '' });
const keptIds = (p: ReturnType<typeof planRotation>) => p.keep.map((k) => k.id);
const removedIds = (p: ReturnType<typeof planRotation>) => p.remove.map((k) => k.id);
const reasonsOf = (p: ReturnType<typeof planRotation>, id: string) =>
  p.keep.find((k) => k.id === id)?.reasons ?? p.remove.find((k) => k.id === id)?.reasons;
/** 2026-06-<day>T02:00 at +02:00 (Berlin summer time). */
const june = (day: number, hour = 2) => `2026-06-${String(day).padStart(2, '0')}T${String(hour).padStart(2, '0')}:00:00+02:00`;
const NOW = new Date('2026-07-01T00:00:00Z');

test("the design's defaults: daily 30, weekly 12, monthly 12, keepWithin 2d, 10 event backups", () => {
  assert.deepEqual({ ...DEFAULT_SETTINGS.retention }, { daily: 30, weekly: 12, monthly: 12, keepWithin: '2d', keepEventBackups: 10 });
});

test('manual and pinned backups are never removed, never counted, and show under Manual', () => {
  const recs = [
    makeRecord('s5', june(5)),
    makeRecord('m4', june(4, 12), { kind: 'manual' }),
    makeRecord('s4', june(4)),
    makeRecord('p3', june(3), { pinned: true }),
    makeRecord('s3', june(3, 1)),
    makeRecord('mig2', june(2), { kind: 'migration', pinned: true }),
    makeRecord('s1', june(1)),
  ];
  const plan = planRotation(recs, ONLY_DAILY(2), NOW, { force: true });
  assert.deepEqual(keptIds(plan), ['s5', 'm4', 's4', 'p3', 'mig2']);
  assert.deepEqual(removedIds(plan), ['s3', 's1']);
  // The pinned p3 does not use a daily count: s4 is daily #2 and s3 is "not among the 2 newest days".
  assert.deepEqual(reasonsOf(plan, 's4'), ['daily #2']);
  assert.deepEqual(reasonsOf(plan, 's3'), ['not among the 2 newest days']);
  const tiers = tiersOf(recs, ONLY_DAILY(2), NOW);
  assert.deepEqual(tiers.get('m4'), { tier: 'manual', reasons: ['manual'] });
  assert.deepEqual(tiers.get('p3'), { tier: 'manual', reasons: ['pinned'] });
  assert.deepEqual(tiers.get('mig2'), { tier: 'manual', reasons: ['pinned'] });
  assert.deepEqual(tiers.get('s1'), { tier: 'daily', reasons: ['to be removed: not among the 2 newest days'] });
});

test('migration and pre-restore backups: their own count per database, outside the daily rules', () => {
  const recs = [
    makeRecord('s9', june(9)),
    makeRecord('e8', june(8), { kind: 'migration' }),
    makeRecord('e7', june(7), { kind: 'pre-restore' }),
    makeRecord('e6', june(6), { kind: 'migration' }),
    makeRecord('x6', june(6), { kind: 'migration', db: '/srv/shop/other.db' }),
    makeRecord('e5', june(5), { kind: 'migration' }),
    makeRecord('s4', june(4)),
  ];
  const retention = R({ daily: 2, weekly: 0, monthly: 0, keepWithin: '', keepEventBackups: 2 });
  const plan = planRotation(recs, retention, NOW, { force: true });
  assert.deepEqual(keptIds(plan), ['s9', 'e8', 'e7', 'x6', 's4']);
  assert.deepEqual(removedIds(plan), ['e6', 'e5']);
  assert.deepEqual(reasonsOf(plan, 'e8'), ['event backup #1']);
  assert.deepEqual(reasonsOf(plan, 'e7'), ['event backup #2']);
  assert.deepEqual(reasonsOf(plan, 'e6'), ['event backups beyond 2']);
  // x6 is the only (and newest verified) backup of its own database.
  assert.deepEqual(reasonsOf(plan, 'x6'), ['event backup #1', 'newest verified']);
  // Event backups did not use daily counts: s4 (five days older) is still daily #2.
  assert.deepEqual(reasonsOf(plan, 's4'), ['daily #2']);
  for (const k of plan.keep) assert.equal(k.tier, k.id.startsWith('s') ? 'daily' : 'migrations', k.id);
  // keepEventBackups 0 is "no limit": event backups are then never removed.
  assert.deepEqual(removedIds(planRotation(recs, { ...retention, keepEventBackups: 0 }, NOW, { force: true })), []);
});

test('unverified backups never count and never push a good one out; old failed ones go', () => {
  const recs = [
    makeRecord('f6', june(6), { status: 'failed' }),
    makeRecord('d5', june(5), { sourceDamaged: true }),
    makeRecord('ok4', june(4)),
    makeRecord('sk3', june(3, 12), { status: 'skipped' }),
    makeRecord('ok3', june(3)),
    makeRecord('lv2', june(2, 12), { lastVerify: { status: 'ok', archiveOk: false } }),
    makeRecord('ok2', june(2)),
    makeRecord('ok1', june(1)),
  ];
  const plan = planRotation(recs, ONLY_DAILY(3), NOW, { force: true });
  // Three verified days are kept: the failures newer than the newest verified stay, uncounted.
  assert.deepEqual(keptIds(plan), ['f6', 'd5', 'ok4', 'ok3', 'ok2']);
  assert.deepEqual(reasonsOf(plan, 'f6'), ['not verified: kept, never counted']);
  assert.deepEqual(reasonsOf(plan, 'd5'), ['not verified: kept, never counted']);
  assert.deepEqual(reasonsOf(plan, 'ok4'), ['daily #1', 'newest verified']);
  assert.deepEqual(reasonsOf(plan, 'ok2'), ['daily #3']);
  assert.deepEqual(reasonsOf(plan, 'sk3'), ['not verified (verification skipped)', 'older than the newest verified backup']);
  // A later verification of the archive that failed makes lv2 unverified, whatever the backup-time check said.
  assert.deepEqual(reasonsOf(plan, 'lv2'), ['failed verification', 'older than the newest verified backup']);
  assert.deepEqual(reasonsOf(plan, 'ok1'), ['not among the 3 newest days']);
  assert.deepEqual(
    tiersOf(recs, ONLY_DAILY(3), NOW).get('f6'),
    { tier: 'daily', reasons: ['not verified: kept, never counted'] },
  );

  // keepWithin also spares failures within that window before the newest verified backup.
  const within = planRotation(recs, R({ daily: 3, weekly: 0, monthly: 0, keepWithin: '36h' }), NOW, { force: true });
  assert.ok(keptIds(within).includes('sk3'), 'sk3 is 14 h before the newest verified backup');
  assert.ok(removedIds(within).includes('lv2'), 'lv2 is 38 h before the newest verified backup');

  // With no verified backup at all nothing is removed.
  const allFailed = recs.filter((r) => !r.id.startsWith('ok') && r.id !== 'lv2');
  assert.deepEqual(removedIds(planRotation(allFailed, ONLY_DAILY(1), NOW, { force: true })), []);
});

test('the newest verified backup is kept even when it lies in the future', () => {
  const recs = [makeRecord('future', '2030-01-01T00:00:00+01:00'), makeRecord('a', june(2)), makeRecord('b', june(1))];
  const plan = planRotation(recs, R({ daily: 0, weekly: 0, monthly: 0, keepWithin: '1d' }), NOW, { force: true });
  assert.deepEqual(keptIds(plan), ['future', 'a']);
  assert.deepEqual(reasonsOf(plan, 'future'), ['within 1d', 'newest verified']);
  assert.deepEqual(reasonsOf(plan, 'a'), ['within 1d']);
  assert.deepEqual(reasonsOf(plan, 'b'), ['outside keepWithin 1d of the newest backup']);
});

test('a plan removing more than half of the automatic backups is refused unless forced', () => {
  const recs = Array.from({ length: 10 }, (_, i) => makeRecord(`s${i}`, june(10 - i), { kind: i % 2 ? 'shutdown' : 'scheduled' }));
  const manual = [makeRecord('m', june(20), { kind: 'manual' }), makeRecord('e', june(20), { kind: 'migration' })];
  const refused = planRotation([...recs, ...manual], ONLY_DAILY(4), NOW);
  assert.match(refused.refused ?? '', /would remove 6 of the 10 automatic backups of \/srv\/shop\/app\.db/);
  assert.deepEqual(removedIds(refused), ['s4', 's5', 's6', 's7', 's8', 's9'], 'still listed for inspection');
  assert.equal(planRotation([...recs, ...manual], ONLY_DAILY(4), NOW, { force: true }).refused, undefined);
  // Exactly half is allowed.
  const half = planRotation(recs, ONLY_DAILY(5), NOW);
  assert.equal(half.refused, undefined);
  assert.equal(half.remove.length, 5);
  // The check is per database: another database's many kept backups do not dilute it.
  const other = Array.from({ length: 20 }, (_, i) => makeRecord(`o${i}`, june(10 - (i % 10), 3 + (i >> 1)), { db: '/srv/shop/b.db' }));
  const mixed = planRotation([...recs, ...other], ONLY_DAILY(4), NOW);
  assert.match(mixed.refused ?? '', /\/srv\/shop\/app\.db/);
  assert.match(mixed.refused ?? '', /\/srv\/shop\/b\.db/);
});

test('an all-zero retention deletes nothing at all', () => {
  const recs = [
    makeRecord('s3', june(3)),
    makeRecord('f2', june(2), { status: 'failed' }),
    makeRecord('e2', june(2, 5), { kind: 'migration' }),
    makeRecord('s1', june(1)),
  ];
  const zero: RetentionSettings = { daily: 0, weekly: 0, monthly: 0, keepWithin: '', keepEventBackups: 0 };
  const plan = planRotation(recs, zero, NOW);
  assert.deepEqual(removedIds(plan), []);
  assert.deepEqual(keptIds(plan), ['s3', 'e2', 'f2', 's1']);
  assert.equal(plan.refused, undefined);
  assert.deepEqual(reasonsOf(plan, 's1'), ['no retention rule: kept']);
  // '0d' is a zero window: still no rule.
  assert.deepEqual(removedIds(planRotation(recs, { ...zero, keepWithin: '0d' }, NOW)), []);
});

test('each database is rotated separately', () => {
  const recs = [
    makeRecord('a3', june(3), { db: '/w/a.db' }),
    makeRecord('b3', june(3, 3), { db: '/w/b.db' }),
    makeRecord('a2', june(2), { db: '/w/a.db' }),
    makeRecord('b1', june(1), { db: '/w/b.db' }),
  ];
  assert.equal(databaseKey(recs[0]), '/w/a.db');
  const plan = planRotation(recs, ONLY_DAILY(1), NOW, { force: true });
  assert.deepEqual(keptIds(plan), ['b3', 'a3']);
  assert.deepEqual(removedIds(plan), ['a2', 'b1']);
  assert.deepEqual(reasonsOf(plan, 'a3'), ['daily #1', 'newest verified']);
  assert.deepEqual(reasonsOf(plan, 'b3'), ['daily #1', 'newest verified']);
});

test('tiers: the shortest-lived rule that keeps a backup (the newest is daily, not monthly); keepWithin only shows as daily', () => {
  // Wednesday 2026-06-10 back to Sunday 2026-05-31 (ISO week 22), and April.
  const recs = [
    makeRecord('wed10', june(10, 9)),
    makeRecord('wed10early', june(10, 1)),
    makeRecord('tue9', june(9)),
    makeRecord('sun7', june(7)),
    makeRecord('sun31', '2026-05-31T02:00:00+02:00'),
    makeRecord('apr15', '2026-04-15T02:00:00+02:00'),
    makeRecord('apr10', '2026-04-10T02:00:00+02:00'),
  ];
  const retention = R({ daily: 2, weekly: 2, monthly: 4, keepWithin: '12h' });
  const plan = planRotation(recs, retention, NOW, { force: true });
  assert.deepEqual(
    plan.keep.map((k) => [k.id, k.tier, k.reasons]),
    [
      ['wed10', 'daily', ['within 12h', 'daily #1', 'weekly #1', 'monthly #1', 'newest verified']],
      ['wed10early', 'daily', ['within 12h']],
      ['tue9', 'daily', ['daily #2']],
      ['sun7', 'weekly', ['weekly #2']],
      ['sun31', 'monthly', ['monthly #2']],
      ['apr15', 'monthly', ['monthly #3']],
      ['apr10', 'monthly', ['oldest monthly']],
    ],
  );
  const tiers = tiersOf(recs, retention, NOW);
  assert.equal(tiers.size, recs.length);
  assert.equal(tiers.get('sun7')?.tier, 'weekly');
  assert.equal(tiers.get('wed10')?.tier, 'daily');
});

test('invalid settings and manifests are refused by name', () => {
  const recs = [makeRecord('a', june(1))];
  assert.throws(
    () => planRotation(recs, R({ keepWithin: '2 days' }), NOW),
    (e) => BackupError.is(e, 'badConfig') && e.message.includes('lifeboat.retention.keepWithin') && e.message.includes('2 days'),
  );
  assert.throws(
    () => planRotation(recs, R({ daily: -1 }), NOW),
    (e) => BackupError.is(e, 'badConfig') && e.message.includes('lifeboat.retention.daily'),
  );
  assert.throws(
    () => planRotation([makeRecord('broken', '2026-06-01 02:00')], R(), NOW),
    (e) => BackupError.is(e, 'badArchive') && e.message.includes('broken') && e.path === '/srv/shop/backups/broken.zip',
  );
});

// ---- The design's acceptance: 400 days of daily backups with gaps, plus manual ones ----

/** ISO week of a YYYY-MM-DD date, worked out from the weekday of January 4th (always in week 1). */
function isoWeekKey(date: string): string {
  const [y, m, d] = date.split('-').map(Number);
  const dayNo = (yy: number, mm: number, dd: number) => Date.UTC(yy, mm - 1, dd) / DAY;
  const mondayOfWeek1 = (yy: number) => dayNo(yy, 1, 4) - ((new Date(Date.UTC(yy, 0, 4)).getUTCDay() + 6) % 7);
  const n = dayNo(y, m, d);
  let year = y + 1;
  while (n < mondayOfWeek1(year)) year--;
  return `${year}-W${String(Math.floor((n - mondayOfWeek1(year)) / 7) + 1).padStart(2, '0')}`;
}

test('ISO week helper of the acceptance test agrees with known dates', () => {
  assert.equal(isoWeekKey('2026-01-01'), '2026-W01');
  assert.equal(isoWeekKey('2027-01-03'), '2026-W53');
  assert.equal(isoWeekKey('2025-12-29'), '2026-W01');
  assert.equal(isoWeekKey('2026-11-26'), '2026-W48');
});

test("acceptance: 400 days of daily backups with gaps keep exactly the design's set", () => {
  const zone = 'Europe/Berlin';
  const start = Date.UTC(2025, 9, 1); // 2025-10-01, so the run crosses two DST changes and a new year
  // Laptop closed: three weeks in winter, five weeks in summer, and eleven days shortly before the end.
  const closed = (day: number) => (day >= 70 && day < 91) || (day >= 240 && day < 275) || (day >= 380 && day < 391);
  const records: BackupRecord[] = [];
  let n = 0;
  const add = (ms: number, kind: BackupRecord['manifest']['kind']) => {
    records.push(makeRecord(`b${String(n++).padStart(4, '0')}`, rfc3339InZone(zone, ms), { kind }));
  };
  for (let day = 0; day < 400; day++) {
    if (closed(day)) continue;
    const midnightUtc = start + day * DAY;
    add(midnightUtc + 1 * HOUR, 'scheduled'); // 02:00 or 03:00 local
    if (day % 3 === 0) add(midnightUtc + 17 * HOUR + 30 * 60_000, 'shutdown');
    // A late shutdown lands on the next local day in summer (00:45 CEST) and the same day in winter (23:45 CET).
    if (day % 7 === 2) add(midnightUtc + 22 * HOUR + 45 * 60_000, 'shutdown');
    if (day % 45 === 10) add(midnightUtc + 11 * HOUR, 'manual');
  }
  const last = Math.max(...records.map((r) => Date.parse(r.manifest.created)));
  const now = new Date(last + 5 * HOUR);

  // The expected set, worked out directly from the rendered local times.
  const automatic = records
    .filter((r) => r.manifest.kind !== 'manual')
    .sort((a, b) => Date.parse(b.manifest.created) - Date.parse(a.manifest.created));
  const newestOfEach = (key: (created: string) => string, count: number) => {
    const seen = new Map<string, string>();
    for (const r of automatic) {
      const k = key(r.manifest.created);
      if (!seen.has(k) && seen.size < count) seen.set(k, r.id);
    }
    return { ids: [...seen.values()], periods: new Set(automatic.map((r) => key(r.manifest.created))).size };
  };
  const days = newestOfEach((c) => c.slice(0, 10), 30);
  const weeks = newestOfEach((c) => isoWeekKey(c.slice(0, 10)), 12);
  const months = newestOfEach((c) => c.slice(0, 7), 12);
  // More periods than counts, so no rule reaches the oldest backup with count left.
  assert.ok(days.periods > 30 && weeks.periods > 12 && months.periods > 12);
  const last48h = automatic.filter((r) => Date.parse(r.manifest.created) > last - 48 * HOUR).map((r) => r.id);
  const manual = records.filter((r) => r.manifest.kind === 'manual').map((r) => r.id);
  const expected = new Set([...days.ids, ...weeks.ids, ...months.ids, ...last48h, ...manual]);

  const plan = planRotation(records, DEFAULT_SETTINGS.retention, now, { force: true });
  assert.deepEqual(new Set(keptIds(plan)), expected);
  assert.equal(plan.keep.length + plan.remove.length, records.length);
  // The last 30 days that have a backup reach back past the 11-day gap: more than 30 calendar days.
  const oldestDaily = plan.keep.find((k) => k.reasons.includes('daily #30'))!;
  const oldestDailyMs = Date.parse(records.find((r) => r.id === oldestDaily.id)!.manifest.created);
  assert.ok(last - oldestDailyMs > 35 * DAY, 'daily 30 spans the gap');
  const byTier = (tier: string) => plan.keep.filter((k) => k.tier === tier).length;
  assert.equal(byTier('manual'), manual.length);
  // Each under the shortest-lived rule that keeps it.
  const weeklyOnly = weeks.ids.filter((id) => !days.ids.includes(id));
  const monthlyOnly = months.ids.filter((id) => !days.ids.includes(id) && !weeks.ids.includes(id));
  assert.equal(byTier('monthly'), monthlyOnly.length);
  assert.equal(byTier('weekly'), weeklyOnly.length);
  assert.equal(byTier('daily'), plan.keep.length - manual.length - weeklyOnly.length - monthlyOnly.length);
  assert.ok(monthlyOnly.length > 0 && weeklyOnly.length > 0, `${monthlyOnly.length} monthly, ${weeklyOnly.length} weekly`);
  // Run on the defaults without force, the first rotation of a long history is refused (it removes most of it).
  const unforced = planRotation(records, DEFAULT_SETTINGS.retention, now);
  assert.match(unforced.refused ?? '', /more than half/);
  assert.deepEqual(removedIds(unforced), removedIds(plan));
  console.log(
    `acceptance: ${records.length} backups over 400 days, kept ${plan.keep.length} ` +
      `(monthly ${byTier('monthly')}, weekly ${byTier('weekly')}, daily ${byTier('daily')}, manual ${byTier('manual')}), removed ${plan.remove.length}`,
  );
});

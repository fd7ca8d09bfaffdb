import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { DEFAULT_SETTINGS, cloneSettings } from '../../src/core/config';
import { BackupError } from '../../src/core/errors';
import type { SourceStateRecord } from '../../src/core/model';
import { decideDue, sameSourceState, unchangedSince, verifiedAutomaticSince, MISSED_NAMED_MAX } from '../../src/core/schedule/due';
import {
  cronSchedule,
  dailySchedule,
  formatSlot,
  latestSlotAtOrBefore,
  nextSlotAfter,
  scheduleFromSettings,
  slotsBetween,
  type Schedule,
} from '../../src/core/schedule/slots';
import { makeRecord } from '../fixtures/backupRecords';

const d = (s: string) => new Date(s);
const iso = (x: Date | undefined) => x?.toISOString();
const HOUR = 3600_000;
const DAY = 24 * HOUR;

/** Every slot in [from, from + days) as local `YYYY-MM-DD HH:MM` in `zone`. */
function localSlots(s: Schedule, from: string, days: number, zone: string): string[] {
  return slotsBetween(s, d(from), new Date(d(from).getTime() + days * DAY), 10_000).map((x) => formatSlot(x, zone));
}

describe('schedule slots (croner, DST)', () => {
  it('daily 02:00 in Europe/Berlin on an ordinary day: inclusive latest, exclusive next', () => {
    const s = dailySchedule('02:00', 'Europe/Berlin');
    const slot = d('2026-06-10T00:00:00Z'); // 02:00 CEST
    assert.equal(iso(latestSlotAtOrBefore(s, slot)), slot.toISOString());
    assert.equal(iso(latestSlotAtOrBefore(s, new Date(slot.getTime() - 1))), '2026-06-09T00:00:00.000Z');
    assert.equal(iso(nextSlotAfter(s, slot)), '2026-06-11T00:00:00.000Z');
    assert.equal(iso(nextSlotAfter(s, new Date(slot.getTime() - 1))), slot.toISOString());
    assert.equal(iso(latestSlotAtOrBefore(s, d('2026-06-10T23:59:59.999Z'))), slot.toISOString());
  });

  it('Europe/Berlin spring forward: 02:00 does not exist and runs at 03:00 CEST', () => {
    const s = dailySchedule('02:00', 'Europe/Berlin');
    assert.equal(iso(nextSlotAfter(s, d('2026-03-28T12:00:00Z'))), '2026-03-29T01:00:00.000Z');
    assert.equal(formatSlot(d('2026-03-29T01:00:00Z'), 'Europe/Berlin'), '2026-03-29 03:00');
    assert.equal(iso(latestSlotAtOrBefore(s, d('2026-03-29T00:59:59Z'))), '2026-03-28T01:00:00.000Z');
    assert.equal(iso(latestSlotAtOrBefore(s, d('2026-03-29T01:00:00Z'))), '2026-03-29T01:00:00.000Z');
    assert.deepEqual(localSlots(s, '2026-03-27T12:00:00Z', 3, 'Europe/Berlin'), ['2026-03-28 02:00', '2026-03-29 03:00', '2026-03-30 02:00']);
  });

  it('Europe/Berlin fall back: a 02:00 or 02:30 that occurs twice runs once, at its first occurrence', () => {
    for (const [time, first] of [
      ['02:00', '2026-10-25T00:00:00.000Z'],
      ['02:30', '2026-10-25T00:30:00.000Z'],
    ]) {
      const s = dailySchedule(time, 'Europe/Berlin');
      const day = slotsBetween(s, d('2026-10-24T12:00:00Z'), d('2026-10-25T12:00:00Z'), 10);
      assert.deepEqual(day.map(iso), [first], time);
      // During the repeated hour's second pass the latest slot is still the first pass.
      assert.equal(iso(latestSlotAtOrBefore(s, d('2026-10-25T01:45:00Z'))), first, time);
      assert.equal(iso(nextSlotAfter(s, d('2026-10-25T01:45:00Z'))), time === '02:00' ? '2026-10-26T01:00:00.000Z' : '2026-10-26T01:30:00.000Z');
    }
  });

  it('America/New_York: 02:00 on the spring day runs at 03:00 EDT; 01:30 on the fall day runs once', () => {
    const two = dailySchedule('02:00', 'America/New_York');
    assert.equal(iso(nextSlotAfter(two, d('2026-03-07T12:00:00Z'))), '2026-03-08T07:00:00.000Z');
    assert.deepEqual(localSlots(two, '2026-03-07T12:00:00Z', 2, 'America/New_York'), ['2026-03-08 03:00', '2026-03-09 02:00']);
    const half = dailySchedule('01:30', 'America/New_York');
    const fall = slotsBetween(half, d('2026-10-31T12:00:00Z'), d('2026-11-01T12:00:00Z'), 10);
    assert.deepEqual(fall.map(iso), ['2026-11-01T05:30:00.000Z']);
  });

  it('400 days of daily slots: one per local calendar day, at the set time except in a DST gap', () => {
    for (const zone of ['Europe/Berlin', 'America/New_York']) {
      for (const time of ['00:00', '01:30', '02:00', '02:30', '03:00', '23:59']) {
        const s = dailySchedule(time, zone);
        const slots = localSlots(s, '2026-01-01T12:00:00Z', 400, zone);
        assert.equal(slots.length, 400, `${zone} ${time}`);
        const days = slots.map((x) => x.slice(0, 10));
        assert.equal(new Set(days).size, 400, `${zone} ${time}: a day with two slots`);
        const off = slots.filter((x) => x.slice(11) !== time);
        // Only a time inside the spring gap moves (to 03:00): once in these 400 days.
        const inGap = time === '02:00' || time === '02:30';
        assert.deepEqual(off.map((x) => x.slice(11)), inGap ? ['03:00'] : [], `${zone} ${time}: ${off.join(', ')}`);
        for (let i = 1; i < days.length; i++) {
          assert.equal(Date.parse(days[i]) - Date.parse(days[i - 1]), DAY, `${zone} ${time}: gap before ${days[i]}`);
        }
      }
    }
  });

  it('cron expressions: every 4 hours, and a list that falls in the spring gap still runs', () => {
    const four = cronSchedule('0 */4 * * *', 'Europe/Berlin');
    assert.deepEqual(localSlots(four, '2026-03-28T22:30:00Z', 0.5, 'Europe/Berlin'), ['2026-03-29 00:00', '2026-03-29 04:00', '2026-03-29 08:00', '2026-03-29 12:00']);
    const list = cronSchedule('0 2,14 * * *', 'Europe/Berlin');
    assert.deepEqual(localSlots(list, '2026-03-28T12:00:00Z', 1, 'Europe/Berlin'), ['2026-03-28 14:00', '2026-03-29 03:00', '2026-03-29 14:00']);
    const sixFields = cronSchedule('30 0 2 * * *', 'UTC');
    assert.equal(iso(nextSlotAfter(sixFields, d('2026-06-01T00:00:00Z'))), '2026-06-01T02:00:30.000Z');
    assert.equal(cronSchedule('  0  3 * * 1-5 ').label, 'cron 0 3 * * 1-5');
  });

  it('the cached window agrees with a fresh schedule at random instants, forwards and backwards', () => {
    const cached = cronSchedule('15 */3 * * *', 'America/New_York');
    let seed = 7;
    const rnd = () => ((seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31);
    for (let i = 0; i < 150; i++) {
      const t = new Date(Date.parse('2026-03-01T00:00:00Z') + Math.floor(rnd() * 270 * DAY));
      const fresh = cronSchedule('15 */3 * * *', 'America/New_York');
      assert.equal(iso(latestSlotAtOrBefore(cached, t)), iso(latestSlotAtOrBefore(fresh, t)), t.toISOString());
      assert.equal(iso(nextSlotAfter(cached, t)), iso(nextSlotAfter(fresh, t)), t.toISOString());
    }
  });

  it('slotsBetween is exclusive of from, inclusive of to, capped at max', () => {
    const s = dailySchedule('02:00', 'UTC');
    const all = slotsBetween(s, d('2026-06-01T02:00:00Z'), d('2026-06-04T02:00:00Z'), 10);
    assert.deepEqual(all.map(iso), ['2026-06-02T02:00:00.000Z', '2026-06-03T02:00:00.000Z', '2026-06-04T02:00:00.000Z']);
    assert.equal(slotsBetween(s, d('2026-06-01T00:00:00Z'), d('2026-07-01T00:00:00Z'), 5).length, 5);
  });

  it('settings: cron replaces the time, off when disabled, invalid values are badConfig naming the setting', () => {
    const st = cloneSettings(DEFAULT_SETTINGS);
    assert.equal(scheduleFromSettings(st, 'UTC')?.label, 'daily 02:00');
    st.cron = '0 */6 * * *';
    assert.equal(scheduleFromSettings(st, 'UTC')?.label, 'cron 0 */6 * * *');
    assert.equal(scheduleFromSettings({ ...st, scheduleDaily: false }, 'UTC'), undefined);
    assert.equal(scheduleFromSettings({ ...st, enabled: false }, 'UTC'), undefined);
    const bad = (f: () => unknown, field: string) =>
      assert.throws(f, (e) => BackupError.is(e, 'badConfig') && e.message.startsWith(field) && !e.message.includes('\n'));
    bad(() => dailySchedule('25:00'), 'lifeboat.schedule.time');
    bad(() => dailySchedule('2:00'), 'lifeboat.schedule.time');
    bad(() => cronSchedule('61 * * * *'), 'lifeboat.schedule.cron');
    bad(() => cronSchedule('* * * *'), 'lifeboat.schedule.cron');
    bad(() => dailySchedule('02:00', 'Mars/Olympus_Mons'), 'lifeboat.schedule.time');
    bad(() => scheduleFromSettings({ ...st, cron: 'every day' }), 'lifeboat.schedule.cron');
  });
});

describe('due-check (pure)', () => {
  const zone = 'Europe/Berlin';
  const s = dailySchedule('02:00', zone);
  const slot = '2026-06-10T00:00:00.000Z'; // 02:00 CEST
  const rec = (id: string, created: string, spec: Parameters<typeof makeRecord>[2] = {}) => makeRecord(id, created, spec);

  it('due without backups; a catch-up with no history names the latest slot', () => {
    const r = decideDue({ schedule: s, now: d('2026-06-10T00:00:00Z'), records: [] });
    assert.deepEqual(r, { due: true, slot: d(slot), catchUp: false, missed: [], missedCount: 0 });
    const late = decideDue({ schedule: s, now: d('2026-06-10T07:00:00Z'), records: [] });
    assert.ok(late.due && late.catchUp);
    assert.deepEqual(late.due && late.missed.map(iso), [slot]);
  });

  it('a verified scheduled or shutdown backup at or after the slot settles it; others do not', () => {
    const now = d('2026-06-10T08:00:00Z');
    for (const kind of ['scheduled', 'shutdown'] as const) {
      const r = decideDue({ schedule: s, now, records: [rec('a', slot, { kind })] });
      assert.equal(r.due, false, kind);
      assert.equal(!r.due && r.why, 'backedUp');
    }
    const notSettling = [
      rec('before', '2026-06-09T23:59:59.999Z'),
      rec('manual', '2026-06-10T01:00:00Z', { kind: 'manual' }),
      rec('migration', '2026-06-10T01:00:00Z', { kind: 'migration' }),
      rec('unverified', '2026-06-10T01:00:00Z', { status: 'skipped' }),
      rec('failed', '2026-06-10T01:00:00Z', { status: 'failed' }),
      rec('damaged', '2026-06-10T01:00:00Z', { sourceDamaged: true }),
      rec('reverifiedBad', '2026-06-10T01:00:00Z', { lastVerify: { status: 'ok', archiveOk: false } }),
    ];
    assert.equal(decideDue({ schedule: s, now, records: notSettling }).due, true);
    assert.equal(verifiedAutomaticSince(notSettling, d(slot)), undefined);
  });

  it('a mark made since the slot settles it; an older mark does not', () => {
    const now = d('2026-06-10T08:00:00Z');
    const fresh = decideDue({ schedule: s, now, records: [], mark: { at: '2026-06-10T00:00:05Z', outcome: 'unchanged' } });
    assert.equal(!fresh.due && fresh.why, 'marked');
    assert.equal(decideDue({ schedule: s, now, records: [], mark: { at: '2026-06-09T22:00:00Z', outcome: 'unchanged' } }).due, true);
  });

  it('a catch-up names every slot since the last automatic backup; long gaps name the first ones and the latest', () => {
    const records = [rec('last', '2026-06-07T00:00:00Z'), rec('manual', '2026-06-09T10:00:00Z', { kind: 'manual' })];
    const r = decideDue({ schedule: s, now: d('2026-06-10T09:30:00Z'), records });
    assert.ok(r.due && r.catchUp);
    assert.deepEqual(r.missed.map((x) => formatSlot(x, zone)), ['2026-06-08 02:00', '2026-06-09 02:00', '2026-06-10 02:00']);
    assert.equal(r.missedCount, 3);
    const long = decideDue({ schedule: s, now: d('2026-09-10T09:30:00Z'), records });
    assert.ok(long.due);
    assert.equal(long.missedCount, 95);
    assert.equal(long.missed.length, MISSED_NAMED_MAX);
    assert.equal(formatSlot(long.missed[0], zone), '2026-06-08 02:00');
    assert.equal(formatSlot(long.missed[MISSED_NAMED_MAX - 1], zone), '2026-09-10 02:00');
    // Within a minute of the slot it is the slot's own run, not a catch-up.
    const onTime = decideDue({ schedule: s, now: d('2026-06-10T00:00:59Z'), records });
    assert.ok(onTime.due && !onTime.catchUp && onTime.missedCount === 0);
  });

  it('unchanged: equal fingerprints against the newest verified backup of any kind', () => {
    const st: SourceStateRecord = { size: 8192, mtimeMs: 1000.5, changeCounter: 4, walSize: 0, walMtimeMs: 0 };
    const withState = (r: ReturnType<typeof rec>, state?: SourceStateRecord) => {
      r.manifest.source.state = state;
      return r;
    };
    const older = withState(rec('older', '2026-06-08T00:00:00Z'), { ...st, changeCounter: 3 });
    const manual = withState(rec('manual', '2026-06-09T00:00:00Z', { kind: 'manual' }), st);
    assert.equal(unchangedSince(st, [older, manual])?.id, 'manual');
    const bad = withState(rec('bad', '2026-06-09T12:00:00Z', { status: 'failed' }), { ...st, size: 1 });
    assert.equal(unchangedSince(st, [older, manual, bad])?.id, 'manual');
    const newer = withState(rec('newer', '2026-06-09T13:00:00Z'), { ...st, walSize: 32, walSalt1: 1, walSalt2: 2, walMxFrame: 3 });
    assert.equal(unchangedSince(st, [older, manual, newer]), undefined);
    assert.equal(unchangedSince(st, [withState(rec('legacy', '2026-06-09T00:00:00Z'))]), undefined);
    for (const k of ['size', 'mtimeMs', 'changeCounter', 'walSize', 'walMtimeMs', 'walSalt1', 'walSalt2', 'walMxFrame'] as const) {
      assert.equal(sameSourceState(st, { ...st, [k]: 77 }), false, k);
    }
    assert.equal(sameSourceState(st, { ...st }), true);
  });
});

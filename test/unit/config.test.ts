import assert from 'node:assert/strict';
import { test } from 'node:test';
import { checkOffsiteRetention, DEFAULT_SETTINGS, normalize, OFFSITE_RETENTION_KEYS, offsiteRetentionFrom, SUB_FIELDS, validate } from '../../src/core/config';

test('normalize reads settings.json keys, nested keys and the legacy design keys', () => {
  const a = normalize({ 'lifeboat.retention.daily': 7, 'lifeboat.schedule.time': '03:30' }).settings;
  assert.equal(a.retention.daily, 7);
  assert.equal(a.backupTime, '03:30');
  const b = normalize({ lifeboat: { retention: { weekly: 4 } } }).settings;
  assert.equal(b.retention.weekly, 4);
  const c = normalize({ retention_days: 9, backup_time: '01:15', automatic_daily: false, backup_directory: 'bk' }).settings;
  assert.deepEqual([c.retention.daily, c.backupTime, c.scheduleDaily, c.directory], [9, '01:15', false, 'bk']);
});

test('an invalid value is reported by name and the last valid value stays', () => {
  const base = normalize({ 'lifeboat.schedule.time': '04:00' }).settings;
  const { settings, issues } = normalize({ 'lifeboat.schedule.time': '25:00', 'lifeboat.compressionLevel': 12 }, base);
  assert.equal(settings.backupTime, '04:00');
  assert.equal(settings.compressionLevel, DEFAULT_SETTINGS.compressionLevel);
  assert.deepEqual(
    issues.map((i) => i.field).sort(),
    ['lifeboat.compressionLevel', 'lifeboat.schedule.time'],
  );
});

test('validate checks durations, regexes and enums', () => {
  assert.equal(validate({ 'lifeboat.retention.keepWithin': '1y2m3d3h' }).length, 0);
  assert.equal(validate({ 'lifeboat.retention.keepWithin': '2 days' }).length, 1);
  assert.equal(validate({ 'lifeboat.migrations.taskPatterns': ['(unclosed'] }).length, 1);
  assert.equal(validate({ 'lifeboat.notifications': 'loud' })[0]?.field, 'lifeboat.notifications');
});

test('new backups are format v2 unless lifeboat.format says "zip"', () => {
  assert.equal(DEFAULT_SETTINGS.format, 'repository');
  assert.equal(normalize({}).settings.format, 'repository');
  assert.equal(normalize({ 'lifeboat.format': 'zip' }).settings.format, 'zip');
  assert.equal(normalize({ format: 'zip' }).settings.format, 'zip', 'a lifeboat.json key');
  assert.equal(validate({ 'lifeboat.format': 'tar' })[0]?.field, 'lifeboat.format');
});

test('lifeboat.offsite.retention: a valid object is taken; one with an unknown key or a bad value is refused whole', () => {
  assert.deepEqual(normalize({ 'lifeboat.offsite.retention': { daily: 7, monthly: 24 } }).settings.offsite.retention, { daily: 7, monthly: 24 });
  assert.deepEqual(normalize({ lifeboat: { offsite: { retention: {} } } }).settings.offsite.retention, {});
  const base = normalize({ 'lifeboat.offsite.retention': { weekly: 4 } }).settings;
  for (const bad of [{ daily: 7, hourly: 24 }, { daily: -1 }, { keepWithin: 'abc' }, [], 7]) {
    const { settings, issues } = normalize({ 'lifeboat.offsite.retention': bad }, base);
    assert.deepEqual(settings.offsite.retention, { weekly: 4 }, `${JSON.stringify(bad)}: the last valid object stays`);
    assert.deepEqual(issues.map((i) => i.field), ['lifeboat.offsite.retention'], JSON.stringify(bad));
  }
  assert.match(checkOffsiteRetention({ daily: 7, hourly: 24 }) ?? '', /unknown key hourly/);
  assert.equal(checkOffsiteRetention({ daily: 0, weekly: 10000, keepWithin: '', keepEventBackups: 3 }), undefined);
});

test('the off-site rotation sub-keys are checked as their local counterparts, with empty meaning "left out"', () => {
  const issue = (key: string, v: unknown) => validate(new Map([[key, v]]));
  for (const k of OFFSITE_RETENTION_KEYS) {
    const sub = `offsite.retention.${k}`;
    assert.deepEqual(issue(sub, ''), [], `${sub}: empty is valid`);
    for (const v of [0, 7, 10000, 10001, -1, 1.5, 'x', '2d', '1y2m3d', '0d', '2 days', 'abc', true]) {
      const local = issue(`retention.${k}`, v).map((i) => i.reason);
      const got = issue(sub, v);
      assert.deepEqual(got.map((i) => i.reason), local, `${sub} = ${JSON.stringify(v)} is judged as retention.${k}`);
      assert.ok(got.every((i) => i.field === `lifeboat.${sub}`), 'the issue names the sub-key, so the form shows it beside its field');
    }
  }
  assert.match(issue('offsite.retention.daily', -1)[0]?.reason ?? '', /whole number from 0 to 10000/);
  assert.match(issue('offsite.retention.keepWithin', 'abc')[0]?.reason ?? '', /duration/);
});

test('a dotted key of the object in settings.json is read as VS Code reads it: one key of lifeboat.offsite.retention', () => {
  assert.deepEqual(normalize({ 'lifeboat.offsite.retention.daily': 7 }).settings.offsite.retention, { daily: 7 });
  assert.deepEqual(normalize({ 'lifeboat.offsite.retention': { weekly: 4 }, 'lifeboat.offsite.retention.daily': 7 }).settings.offsite.retention, { weekly: 4, daily: 7 });
  assert.deepEqual(normalize({ 'lifeboat.offsite.retention.daily': 7, 'lifeboat.offsite.retention': { weekly: 4 } }).settings.offsite.retention, { weekly: 4 }, 'the later in the file wins');
  assert.deepEqual(normalize({ lifeboat: { offsite: { 'retention.monthly': 24 } } }).settings.offsite.retention, { monthly: 24 });
  const bad = normalize({ 'lifeboat.offsite.retention.daily': -1 });
  assert.deepEqual(bad.settings.offsite.retention, {}, 'a bad value changes nothing');
  assert.deepEqual(bad.issues.map((i) => i.field), ['lifeboat.offsite.retention']);
  assert.deepEqual(normalize({ 'lifeboat.offsite.retention.hourly': 1 }).issues.map((i) => i.field), [], 'a key the object does not have is not a setting of ours');
});

test('the sub-keys compose and read the one object', () => {
  const form = (o: Record<string, unknown>) => new Map(Object.entries(o).map(([k, v]) => [`offsite.retention.${k}`, v]));
  assert.deepEqual(offsiteRetentionFrom(form({ daily: 7, weekly: '', monthly: 24, keepWithin: '', keepEventBackups: '' })), { daily: 7, monthly: 24 });
  assert.deepEqual(offsiteRetentionFrom(form({ daily: '', weekly: '', monthly: '', keepWithin: '', keepEventBackups: '' })), {});
  assert.deepEqual(offsiteRetentionFrom(form({ keepWithin: '1d', keepEventBackups: 0 })), { keepWithin: '1d', keepEventBackups: 0 }, '0 is a value, not "left out"');
  const s = normalize({ 'lifeboat.offsite.retention': { daily: 7, keepWithin: '' } }).settings;
  assert.deepEqual(Object.fromEntries(SUB_FIELDS.map((f) => [f.prop, f.get(s)])), { daily: 7, weekly: '', monthly: '', keepWithin: '0d', keepEventBackups: '' }, 'an explicit "no window" reads 0d, not "same as local"');
});

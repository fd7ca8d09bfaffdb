import assert from 'node:assert/strict';
import { test } from 'node:test';
import { DEFAULT_SETTINGS, normalize, validate } from '../../src/core/config';

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

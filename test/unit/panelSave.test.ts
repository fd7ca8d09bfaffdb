// What the panel's Save writes (planSave, shared by the extension's host and the headless
// webview test's host): only changed settings, and the off-site rotation's fields as one
// object setting with only the keys set, never dropping a key the form does not show.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { normalize } from '../../src/core/config';
import { formValues, planSave } from '../../src/extension/panelHostState';

const inForce = (raw: Record<string, unknown> = {}) => formValues(normalize(raw).settings);
const rotation = (o: Record<string, unknown>) => Object.entries(o).map(([k, v]) => [`offsite.retention.${k}`, v] as [string, unknown]);
const emptyRotation = { daily: '', weekly: '', monthly: '', keepWithin: '', keepEventBackups: '' };

test('the form shows the off-site rotation keys set, and empty for the rest', () => {
  const v = inForce({ 'lifeboat.offsite.retention': { daily: 7, keepWithin: '1d' } });
  assert.deepEqual(rotation(emptyRotation).map(([k]) => v[k]), [7, '', '', '1d', '']);
});

test('the rotation fields become one write of the object with only the keys set', () => {
  const current = inForce();
  const values = new Map([...Object.entries(current), ...rotation({ ...emptyRotation, daily: 7, monthly: 24 })]);
  assert.deepEqual(planSave(values, current), { writes: [['offsite.retention', { daily: 7, monthly: 24 }]], issues: [] });
  // Untouched rotation fields write nothing; neither do the other unchanged settings.
  assert.deepEqual(planSave(new Map(Object.entries(current)), current), { writes: [], issues: [] });
  // A save that carries only some rotation fields keeps the others as they are in force.
  const set = inForce({ 'lifeboat.offsite.retention': { weekly: 4 } });
  assert.deepEqual(planSave(new Map(rotation({ daily: 7 })), set, { own: { weekly: 4 } }).writes, [['offsite.retention', { daily: 7, weekly: 4 }]]);
});

test('clearing every rotation field writes {}; clearing one removes its key', () => {
  const current = inForce({ 'lifeboat.offsite.retention': { daily: 7, weekly: 4, keepWithin: '1d' } });
  assert.deepEqual(planSave(new Map(rotation(emptyRotation)), current, { own: { daily: 7, weekly: 4, keepWithin: '1d' } }).writes, [['offsite.retention', {}]]);
  assert.deepEqual(planSave(new Map(rotation({ weekly: '' })), current).writes, [['offsite.retention', { daily: 7, keepWithin: '1d' }]]);
});

test('an invalid value anywhere means nothing is written, with the issue on its field', () => {
  const current = inForce();
  for (const [key, v] of [['offsite.retention.daily', -1], ['offsite.retention.keepWithin', 'abc'], ['schedule.time', '25:00']] as const) {
    const plan = planSave(new Map<string, unknown>([['retention.daily', 14], ['offsite.retention.monthly', 24], [key, v]]), current);
    assert.deepEqual(plan.writes, [], key);
    assert.deepEqual(plan.issues.map((i) => i.field), [`lifeboat.${key}`]);
  }
});

test('a key the form does not know, in the scope written to, is kept: the object is then refused as the settings reader refuses it', () => {
  const current = inForce();
  const plan = planSave(new Map(rotation({ daily: 7 })), current, { own: { monthly: 24, hourly: 48 } });
  assert.deepEqual(plan.writes, []);
  assert.equal(plan.issues.length, 1);
  assert.equal(plan.issues[0].field, 'lifeboat.offsite.retention');
  assert.match(plan.issues[0].reason, /unknown key hourly .*remove it in settings\.json first/);
  // Other settings alone still save: the object is not touched, so nothing of it is lost.
  assert.deepEqual(planSave(new Map([['retention.daily', 14]]), current, { own: { hourly: 48 } }).writes, [['retention.daily', 14]]);
  // A value that is no object at all (hand-edited settings.json) is replaced.
  assert.deepEqual(planSave(new Map(rotation({ daily: 7 })), current, { own: 'weekly' }).writes, [['offsite.retention', { daily: 7 }]]);
});

test('an explicit keepWithin "" (no window) reads as 0d and is not rewritten by an unrelated save', () => {
  const current = inForce({ 'lifeboat.offsite.retention': { keepWithin: '' } });
  assert.equal(current['offsite.retention.keepWithin'], '0d');
  assert.deepEqual(planSave(new Map(Object.entries(current)), current, { own: { keepWithin: '' } }).writes, []);
});

test('a field cleared here whose key another scope sets is refused beside it: VS Code merges the scopes\' objects', () => {
  // The User settings hold {monthly: 24}, the Workspace settings {daily: 7}: the form shows both.
  const current = inForce({ 'lifeboat.offsite.retention': { daily: 7, monthly: 24 } });
  const scopes = { own: { daily: 7 }, others: [{ label: 'User settings', value: { monthly: 24 } }, { label: 'Workspace folder settings', value: undefined }] };
  const plan = planSave(new Map(rotation({ ...emptyRotation, daily: 7 })), current, scopes);
  assert.deepEqual(plan.writes, []);
  assert.deepEqual(plan.issues.map((i) => i.field), ['lifeboat.offsite.retention.monthly']);
  assert.match(plan.issues[0].reason, /the User settings set it to 24 .*clear it there, or save to the User settings/);
  // Clearing a key only this scope holds is fine; so is changing one the other scope holds.
  assert.deepEqual(planSave(new Map(rotation({ daily: '' })), current, scopes).writes, [['offsite.retention', { monthly: 24 }]]);
  assert.deepEqual(planSave(new Map(rotation({ monthly: 6 })), current, scopes).writes, [['offsite.retention', { daily: 7, monthly: 6 }]]);
});

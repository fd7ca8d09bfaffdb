import assert from 'node:assert/strict';
import { test } from 'node:test';
import { isVerified, type BackupRecord } from '../../src/core/model';
import { processAlive, processStartId } from '../../src/core/processInfo';

function record(status: 'ok' | 'failed' | 'skipped', extra: Partial<BackupRecord['state']> = {}, sourceDamaged = false): BackupRecord {
  return {
    id: 'x',
    store: 'file:///',
    object: 'x.zip',
    format: 'zip',
    path: '/x.zip',
    archiveSize: 1,
    manifest: { sourceDamaged, verification: { status } } as BackupRecord['manifest'],
    state: extra,
  };
}

test('a backup verified when made stays verified unless the archive itself is proven damaged', () => {
  const later = { status: 'failed' as const, check: 'integrity_check' as const, engine: { name: 'sql.js', sqliteVersion: '' }, problems: ['probe: no such table'], foreignKeyViolations: 0, schemaFingerprint: '', rowCounts: {}, notChecked: [], durationMs: 0, checkedAt: '' };
  assert.equal(isVerified(record('ok')), true);
  assert.equal(isVerified(record('ok', { lastVerify: { ...later, archiveOk: true } })), true, 'a failing probe later says nothing about the archive');
  assert.equal(isVerified(record('ok', { lastVerify: { ...later, status: 'skipped', archiveOk: true } })), true);
  assert.equal(isVerified(record('ok', { lastVerify: { ...later, archiveOk: false } })), false, 'a damaged archive');
  assert.equal(isVerified(record('skipped')), false);
  assert.equal(isVerified(record('ok', {}, true)), false, 'source damaged');
});

test('a reused pid does not keep a dead holder alive', () => {
  const me = processStartId(process.pid);
  assert.equal(processAlive(process.pid, me), true);
  if (me) assert.equal(processAlive(process.pid, `${me}-older`), false);
  assert.equal(processAlive(4194304 + 11), false);
});

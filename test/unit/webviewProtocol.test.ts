// The host's check of every message from the panel (webview/protocol.ts): each method
// with good params comes back as exactly its typed message; anything else is refused
// with a one-line reason that names the field.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { BACKUP_ACTIONS, FORM_KEYS, SETTINGS_SCOPES, parseWebviewMessage, type WebviewMessage } from '../../webview/protocol';

const DB = '/home/dev/shop/data/app.db';

function accepted(raw: unknown): WebviewMessage {
  const r = parseWebviewMessage(raw);
  assert.ok(r.ok, `refused ${JSON.stringify(raw)}: ${r.ok ? '' : r.reason}`);
  return r.message;
}

function refused(raw: unknown, ...mentions: string[]): string {
  const r = parseWebviewMessage(raw);
  assert.equal(r.ok, false, `accepted ${JSON.stringify(raw)}`);
  const reason = (r as { reason: string }).reason;
  assert.ok(!reason.includes('\n'), `one line: ${reason}`);
  for (const m of mentions) assert.ok(reason.includes(m), `names ${m}: ${reason}`);
  return reason;
}

test('every command and request is accepted with its params, and only those', () => {
  assert.deepEqual(accepted({ kind: 'command', method: 'panel/app/ready' }), { kind: 'command', method: 'panel/app/ready' });
  // Fields a message does not have are dropped, not passed on to the host's handlers.
  assert.deepEqual(accepted({ kind: 'command', method: 'settings/editor/open', params: { db: DB }, extra: 1 }), { kind: 'command', method: 'settings/editor/open' });
  for (const method of ['backups/database/backUp', 'backups/database/verifyAll', 'backups/database/rotate'] as const) {
    assert.deepEqual(accepted({ kind: 'command', method, params: { db: DB, force: true } }), { kind: 'command', method, params: { db: DB } });
  }
  for (const action of BACKUP_ACTIONS) {
    const m = { kind: 'command', method: 'backups/backup/act', params: { db: DB, id: 'app-20261127T020000000Z-scheduled', action } };
    assert.deepEqual(accepted(m), m);
  }
  const values = { 'retention.daily': 30, 'schedule.time': '02:00', enabled: false };
  for (const method of ['settings/values/validate', 'settings/schedule/preview', 'settings/retention/preview'] as const) {
    assert.deepEqual(accepted({ kind: 'request', id: 7, method, params: { db: DB, values } }), { kind: 'request', id: 7, method, params: { db: DB, values } });
  }
  for (const scope of SETTINGS_SCOPES) {
    const m = { kind: 'request', id: 0, method: 'settings/values/save', params: { db: DB, scope, values: Object.fromEntries(FORM_KEYS.map((k) => [k, null])) } };
    assert.deepEqual(accepted(m), m);
  }
});

test('not an object, an unknown kind or method', () => {
  for (const raw of [null, undefined, 'panel/app/ready', 42, [], [{ kind: 'command', method: 'panel/app/ready' }]]) refused(raw, 'not an object');
  refused({}, 'kind', 'unknown message kind');
  refused({ kind: 'notification', method: 'panel/state/didChange' }, 'kind', 'unknown message kind', '"notification"');
  refused({ kind: 'command' }, 'method', 'unknown command');
  refused({ kind: 'command', method: 'backups/database/drop', params: { db: DB } }, 'method', 'unknown command', '"backups/database/drop"');
  // A request's method is not a command's, nor the other way round.
  refused({ kind: 'command', id: 1, method: 'settings/values/save', params: { db: DB, scope: 'user', values: {} } }, 'method', 'unknown command');
  refused({ kind: 'request', id: 1, method: 'panel/app/ready' }, 'method', 'unknown request');
});

test('bad params name the field and the message', () => {
  const act = (params: unknown) => ({ kind: 'command', method: 'backups/backup/act', params });
  refused({ kind: 'command', method: 'backups/database/backUp' }, 'backups/database/backUp', 'params', 'missing');
  refused({ kind: 'command', method: 'backups/database/backUp', params: 'app.db' }, 'backups/database/backUp', 'params', 'object');
  refused({ kind: 'command', method: 'backups/database/rotate', params: {} }, 'params.db', 'missing');
  refused({ kind: 'command', method: 'backups/database/verifyAll', params: { db: '' } }, 'params.db', 'non-empty', '""');
  refused({ kind: 'command', method: 'backups/database/backUp', params: { db: 'x'.repeat(4096) } }, 'params.db', '4096');
  refused({ kind: 'command', method: 'backups/database/backUp', params: { db: ['/a'] } }, 'params.db', 'string');
  refused(act({ db: DB, id: 'b', action: 'delete' }), 'backups/backup/act', 'params.action', 'restore, verify', '"delete"');
  refused(act({ db: DB, action: 'pin' }), 'params.id', 'missing');
  refused(act({ db: DB, id: 7, action: 'pin' }), 'params.id', 'string');
});

test('requests: the id, the scope and the setting keys are checked', () => {
  const save = (over: Record<string, unknown>) => ({ kind: 'request', id: 3, method: 'settings/values/save', params: { db: DB, scope: 'workspace', values: {} }, ...over });
  refused({ kind: 'request', method: 'settings/values/validate', params: { db: DB, values: {} } }, 'settings/values/validate', 'id', 'missing');
  for (const id of [-1, 1.5, '3', null]) refused(save({ id }), 'settings/values/save', 'id', JSON.stringify(id));
  refused(save({ params: { db: DB, scope: 'machine', values: {} } }), 'params.scope', 'workspace, workspaceFolder, user', '"machine"');
  refused(save({ params: { db: DB, values: {} } }), 'params.scope', 'missing');
  refused(save({ params: { db: DB, scope: 'user', values: { 'retention.daily': 3, 'lifeboat.directory': '/tmp' } } }), 'params.values.lifeboat.directory', 'not a setting');
  refused(save({ params: { db: DB, scope: 'user', values: { 'verification.probeQuery': 'x', runOnSave: 'rm -rf /' } } }), 'params.values.runOnSave');
  refused(save({ params: { db: DB, scope: 'user', values: [] } }), 'params.values', 'object');
  refused(save({ params: { db: DB, scope: 'user', values: 'retention.daily=3' } }), 'params.values', 'object');
  refused(save({ params: { db: DB, scope: 'user' } }), 'params.values', 'missing');
  refused({ kind: 'request', id: 1, method: 'settings/retention/preview', params: { db: DB, values: { retention: { daily: 3 } } } }, 'params.values.retention');
});

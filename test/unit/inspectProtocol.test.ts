// The inspect views' side of webview/protocol.ts (parseInspectMessage: what the backup and
// comparison views' app may send, and nothing of the panel's protocol), and how the core
// turns SQLite values into the cells those views show (toCell).
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { CELL_BLOB_BYTES, CELL_TEXT_CHARS, toCell } from '../../src/core/inspect/browseJob';
import { MAX_SELECTED_ROWS, parseInspectMessage, parseWebviewMessage } from '../../webview/protocol';

function refused(raw: unknown, ...mentions: string[]): void {
  const r = parseInspectMessage(raw);
  assert.equal(r.ok, false, `accepted ${JSON.stringify(raw)}`);
  const reason = (r as { reason: string }).reason;
  assert.ok(!reason.includes('\n'), `one line: ${reason}`);
  for (const m of mentions) assert.ok(reason.includes(m), `names ${m}: ${reason}`);
}

test('inspect messages: each command and request with its params is accepted, extra fields dropped', () => {
  for (const method of ['inspect/app/ready', 'inspect/backup/compareCurrent', 'inspect/compare/refresh'] as const) {
    assert.deepEqual(parseInspectMessage({ kind: 'command', method, params: { x: 1 } }), { ok: true, message: { kind: 'command', method } });
  }
  for (const method of ['inspect/table/rows', 'inspect/diff/rows'] as const) {
    assert.deepEqual(parseInspectMessage({ kind: 'request', id: 3, method, params: { table: 'orders', offset: 100, limit: 1e9 } }), {
      ok: true,
      message: { kind: 'request', id: 3, method, params: { table: 'orders', offset: 100 } },
    });
  }
  assert.deepEqual(parseInspectMessage({ kind: 'request', id: 4, method: 'inspect/table/restore', params: { table: 'orders', to: '/etc/passwd' } }), {
    ok: true,
    message: { kind: 'request', id: 4, method: 'inspect/table/restore', params: { table: 'orders' } },
  });
});

test('inspect messages: anything else is refused with a reason naming the field', () => {
  refused('ready', 'not an object');
  refused({ kind: 'notification', method: 'inspect/state/didChange' }, 'kind');
  refused({ kind: 'command', method: 'inspect/table/drop' }, 'method');
  refused({ kind: 'request', id: 1, method: 'inspect/table/rows', params: { table: 'orders', offset: -1 } }, 'inspect/table/rows', 'params.offset', '>= 0');
  refused({ kind: 'request', id: 1, method: 'inspect/table/rows', params: { table: 'orders', offset: 1.5 } }, 'params.offset', 'whole number');
  refused({ kind: 'request', id: 1, method: 'inspect/diff/rows', params: { offset: 0 } }, 'params.table', 'missing');
  refused({ kind: 'request', id: 1, method: 'inspect/table/restore', params: { table: '' } }, 'params.table', 'non-empty');
  refused({ kind: 'request', id: -2, method: 'inspect/table/restore', params: { table: 'orders' } }, 'id');
  // The two protocols do not mix: the panel's messages are not the views', nor the other way round.
  refused({ kind: 'command', method: 'panel/app/ready' }, 'method');
  refused({ kind: 'command', method: 'backups/backup/act', params: { db: '/x.db', id: 'b', action: 'restore' } }, 'method');
  assert.equal(parseWebviewMessage({ kind: 'command', method: 'inspect/app/ready' }).ok, false);
  assert.equal(parseWebviewMessage({ kind: 'request', id: 1, method: 'inspect/table/restore', params: { table: 'orders' } }).ok, false);
});

test('toCell: numbers, text and NULL as they are; BLOBs as their first bytes and size; long text cut with its length', () => {
  assert.equal(toCell(null), null);
  assert.equal(toCell(42), 42);
  assert.equal(toCell(1.5), 1.5);
  assert.equal(toCell('héllo'), 'héllo');
  assert.equal(toCell(2n ** 40n), 2 ** 40);
  assert.equal(toCell(2n ** 62n), (2n ** 62n).toString(), 'an integer beyond 2^53 keeps every digit');
  const blob = new Uint8Array(100).map((_, i) => i);
  assert.deepEqual(toCell(blob), { blob: Buffer.from(blob.subarray(0, CELL_BLOB_BYTES)).toString('hex'), bytes: 100 });
  assert.deepEqual(toCell(new Uint8Array([0, 255])), { blob: '00ff', bytes: 2 });
  const long = 'x'.repeat(CELL_TEXT_CHARS + 10);
  assert.deepEqual(toCell(long), { text: 'x'.repeat(CELL_TEXT_CHARS), chars: CELL_TEXT_CHARS + 10 });
  assert.equal(toCell('y'.repeat(CELL_TEXT_CHARS)), 'y'.repeat(CELL_TEXT_CHARS));
});

test('inspect/rows/restore: selected rows with whole keys and their kinds are accepted; anything else is refused naming the field', () => {
  const rows = [
    { key: [3], kind: 'removed' },
    { key: ['a', 2, null, { $blob: '00ff' }, '9007199254740993'], kind: 'changed' },
    { key: [1.5], kind: 'added', extra: 1 },
  ];
  assert.deepEqual(parseInspectMessage({ kind: 'request', id: 5, method: 'inspect/rows/restore', params: { table: 'orders', rows, to: '/etc/passwd' } }), {
    ok: true,
    message: { kind: 'request', id: 5, method: 'inspect/rows/restore', params: { table: 'orders', rows: rows.map(({ key, kind }) => ({ key, kind })) } },
  });
  const req = (params: unknown) => ({ kind: 'request', id: 1, method: 'inspect/rows/restore', params });
  refused(req({ table: 'orders', rows: [] }), 'params.rows', 'at least one row');
  refused(req({ table: 'orders' }), 'params.rows', 'missing');
  refused(req({ table: '', rows: [{ key: [1], kind: 'removed' }] }), 'params.table', 'non-empty');
  refused(req({ table: 'orders', rows: [{ key: [], kind: 'removed' }] }), 'key', 'at least one key value');
  refused(req({ table: 'orders', rows: [{ key: [1], kind: 'dropped' }] }), 'kind');
  refused(req({ table: 'orders', rows: [{ key: [{ x: 1 }], kind: 'removed' }] }), 'key value');
  refused(req({ table: 'orders', rows: [{ key: [{ $blob: 'xyz' }], kind: 'removed' }] }), 'key value');
  refused(req({ table: 'orders', rows: [{ key: [Infinity], kind: 'removed' }] }), 'key.0', 'finite number');
  refused(req({ table: 'orders', rows: [{ key: 1, kind: 'removed' }] }), 'array of key values');
  refused(req({ table: 'orders', rows: Array.from({ length: MAX_SELECTED_ROWS + 1 }, (_, i) => ({ key: [i], kind: 'removed' })) }), 'params.rows', `at most ${MAX_SELECTED_ROWS}`);
  assert.equal(parseWebviewMessage(req({ table: 'orders', rows: [{ key: [1], kind: 'removed' }] })).ok, false, 'not a panel message');
});

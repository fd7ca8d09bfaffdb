import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { text } from 'node:stream/consumers';
import { after, describe, test } from 'node:test';
import { BackupError } from '../../src/core/errors';
import { LocalDirStore } from '../../src/core/store/localDirStore';
import { scratchFile } from '../../src/core/store/store';
import { tempDir } from '../fixtures/sqlite';

/** A pid that belonged to a process that has exited. */
function deadPid(): number {
  const r = spawnSync(process.execPath, ['-e', 'process.stdout.write(String(process.pid))'], { encoding: 'utf8' });
  return Number(r.stdout);
}

describe('LocalDirStore: a backup store in a local folder', () => {
  const t = tempDir();
  after(() => t.cleanup());
  let n = 0;
  const fresh = () => new LocalDirStore(path.join(t.dir, `store-${++n}`));

  async function staged(store: LocalDirStore, content: string): Promise<string> {
    const f = scratchFile(await store.scratchDir(), 'obj', '.partial');
    writeFileSync(f, content);
    return f;
  }

  test('publishFile makes the whole object visible under its name and consumes the staged file', async () => {
    const store = fresh();
    await store.open();
    const f = await staged(store, 'hello backup');
    const obj = await store.publishFile(f, 'a.zip');
    assert.deepEqual({ name: obj.name, size: obj.size }, { name: 'a.zip', size: 12 });
    assert.equal(readFileSync(path.join(store.root, 'a.zip'), 'utf8'), 'hello backup');
    assert.equal(existsSync(f), false, 'the staged file is consumed');
    assert.deepEqual(readdirSync(path.join(store.root, '.lifeboat', 'tmp')), []);
  });

  test('publishFile never replaces an existing object unless asked, and leaves both files as they were', async () => {
    const store = fresh();
    await store.open();
    await store.publishFile(await staged(store, 'first'), 'a.zip');
    const second = await staged(store, 'second');
    await assert.rejects(store.publishFile(second, 'a.zip'), (e) => BackupError.is(e, 'exists') && e.message.includes(path.join(store.root, 'a.zip')));
    assert.equal(readFileSync(path.join(store.root, 'a.zip'), 'utf8'), 'first');
    assert.equal(readFileSync(second, 'utf8'), 'second', 'the refused file is not consumed');
    await store.publishFile(second, 'a.zip', { overwrite: true });
    assert.equal(readFileSync(path.join(store.root, 'a.zip'), 'utf8'), 'second');
  });

  test('list shows the objects of one folder only: no sub-folders, no bookkeeping, no temp files', async () => {
    const store = fresh();
    await store.open();
    await store.publishFile(await staged(store, 'x'), 'one.zip');
    await store.publishFile(await staged(store, 'yy'), 'packs/ab.pack');
    await store.writeBytes('.lifeboat/state.json', '{}');
    await staged(store, 'in progress');
    assert.deepEqual((await store.list()).map((o) => o.name), ['one.zip']);
    assert.deepEqual((await store.list('packs')).map((o) => [o.name, o.size]), [['packs/ab.pack', 2]]);
    assert.deepEqual(await store.list('nothing-here'), []);
    assert.deepEqual(await new LocalDirStore(path.join(t.dir, 'never-created')).list(), []);
  });

  test('read and readBytes return exactly the range asked for', async () => {
    const store = fresh();
    await store.open();
    const body = Array.from({ length: 1000 }, (_, i) => String.fromCharCode(65 + (i % 26))).join('');
    await store.writeBytes('big.bin', body);
    assert.equal(await text(await store.read('big.bin')), body);
    assert.equal(await text(await store.read('big.bin', { offset: 990 })), body.slice(990));
    assert.equal(await text(await store.read('big.bin', { offset: 10, length: 5 })), body.slice(10, 15));
    assert.equal(await text(await store.read('big.bin', { offset: 10, length: 0 })), '');
    assert.equal((await store.readBytes('big.bin', { offset: 500, length: 26 })).toString(), body.slice(500, 526));
    assert.equal((await store.readBytes('big.bin', { offset: 995, length: 100 })).toString(), body.slice(995), 'a range past the end is cut at the end');
    await assert.rejects(store.read('missing.bin'), (e) => BackupError.is(e, 'notFound') && e.message.includes('missing.bin'));
    await assert.rejects(store.readBytes('missing.bin'), (e) => BackupError.is(e, 'notFound'));
    assert.equal(await store.stat('missing.bin'), undefined);
  });

  test('delete removes an object and succeeds again when it is already gone', async () => {
    const store = fresh();
    await store.open();
    await store.writeBytes('gone.zip', 'x');
    await store.delete('gone.zip');
    assert.equal(await store.stat('gone.zip'), undefined);
    await store.delete('gone.zip');
  });

  test('open sweeps the temp files of dead writers and keeps those of live ones', async () => {
    const store = fresh();
    await store.open();
    const tmp = await store.scratchDir();
    const dead = path.join(tmp, `app-x.${deadPid()}.0badf00d.zip.partial`);
    const mine = scratchFile(tmp, 'app-y', '.zip.partial');
    writeFileSync(dead, 'left by a crash');
    writeFileSync(mine, 'still being written');
    await store.open();
    assert.equal(existsSync(dead), false);
    assert.equal(existsSync(mine), true);
  });

  test('object names that could leave the store are refused', async () => {
    const store = fresh();
    for (const bad of ['', '/etc/passwd', '../outside.zip', 'a/../../b', 'a//b', 'a\\b', './a']) {
      assert.throws(() => store.file(bad), /not a valid object name/, JSON.stringify(bad));
    }
  });

  test('open names the folder when it cannot be created', async () => {
    const blocker = path.join(t.dir, 'a-file');
    writeFileSync(blocker, 'not a folder');
    const store = new LocalDirStore(path.join(blocker, 'backups'));
    await assert.rejects(store.open(), (e) => BackupError.is(e, 'unwritable') && e.message.includes(path.join(blocker, 'backups')));
  });

  test('forFile names the folder store and the object of a local path', () => {
    const dir = path.join(t.dir, 'x');
    mkdirSync(dir, { recursive: true });
    const { store, object } = LocalDirStore.forFile(path.join(dir, 'app-1.zip'));
    assert.equal(store.root, dir);
    assert.equal(object, 'app-1.zip');
    assert.equal(store.url, new URL(`file://${dir}`).href);
  });
});

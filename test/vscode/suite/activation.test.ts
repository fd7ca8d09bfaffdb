// Runs inside code-server's extension host with the real `vscode` API.
import assert from 'node:assert/strict';
import { existsSync, realpathSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import * as vscode from 'vscode';
import { SUITE_ENV } from '../../../scripts/vscode/suiteResult';

const EXTENSION_ID = 'lifeboat.lifeboat';

suite('activation', () => {
  test('the extension is installed with the manifest the package declares', () => {
    const ext = vscode.extensions.getExtension(EXTENSION_ID);
    assert.ok(ext, `${EXTENSION_ID} is not among ${vscode.extensions.all.length} extensions`);
    const pkg = ext.packageJSON as { publisher: string; name: string; main: string; activationEvents?: string[] };
    assert.equal(`${pkg.publisher}.${pkg.name}`, EXTENSION_ID);
    assert.deepEqual(pkg.activationEvents, ['onStartupFinished']);
    assert.ok(existsSync(path.join(ext.extensionPath, pkg.main)), `missing ${pkg.main} in ${ext.extensionPath}`);
  });

  test('the extension activates without an error', async () => {
    const ext = vscode.extensions.getExtension(EXTENSION_ID);
    assert.ok(ext);
    await ext.activate();
    assert.equal(ext.isActive, true);
  });
});

suite('runtime', () => {
  test('the extension host runs Node 22 or later, where node:sqlite loads', () => {
    const major = Number(process.versions.node.split('.')[0]);
    console.log(`extension host: Node ${process.versions.node}, VS Code ${vscode.version}`);
    assert.ok(major >= 22, `the extension host runs Node ${process.versions.node}`);
    // The engine takes its node:sqlite path (snapshots, verification, restore) here.
    const req = createRequire(__filename);
    const sqlite = req('node:sqlite') as typeof import('node:sqlite');
    const db = new sqlite.DatabaseSync(':memory:');
    try {
      const row = db.prepare('SELECT sqlite_version() AS v').get() as { v: string };
      assert.match(row.v, /^3\.\d+\.\d+$/);
      console.log(`node:sqlite: SQLite ${row.v}`);
    } finally {
      db.close();
    }
  });
});

suite('workspace', () => {
  test('the fixture workspace folder is open', () => {
    const expected = process.env[SUITE_ENV.workspace];
    assert.ok(expected, `${SUITE_ENV.workspace} is not set in the extension host`);
    const folders = vscode.workspace.workspaceFolders ?? [];
    assert.equal(folders.length, 1, `folders: ${folders.map((f) => f.uri.toString()).join(', ')}`);
    assert.equal(folders[0].uri.scheme, 'file');
    assert.equal(realpathSync(folders[0].uri.fsPath), realpathSync(expected));
  });

  test('the fixture database is visible to the workspace API', async () => {
    const found = await vscode.workspace.findFiles('**/*.db');
    assert.deepEqual(
      found.map((u) => path.basename(u.fsPath)),
      ['app.db'],
    );
    const stat = await vscode.workspace.fs.stat(found[0]);
    // A SQLite file is a whole number of pages, and the first page holds the header.
    assert.ok(stat.size >= 4096 && stat.size % 512 === 0, `app.db is ${stat.size} bytes`);
  });
});

// Off-site copies over SFTP in a real VS Code, against a real server (rclone serve sftp on
// loopback): the host key is checked against known_hosts as ssh does. An unknown host is
// refused and shown with its fingerprint and "Trust and Retry", which records the key and
// copies; a known host offering another key is refused without any way to accept it. The
// weekly restore test finds the folder's remote through the off-site host and tests it in
// the off-site worker.
//
// known_hosts is a file in this suite's temp folder (the host's `knownHosts`), never ~/.ssh.
// The commands' questions are answered through the host's replaceable `prompts`.
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import * as vscode from 'vscode';
import type { LifeboatApi } from '../../../src/extension/container';
import type { OffsitePrompts } from '../../../src/extension/offsite';
import type { HostKeyPolicy } from '../../../src/core/store/remote/knownHosts';
import { startSftp, type SftpServer } from '../../fixtures/sftpServer';
import { makeShopDb } from '../shopDb';
import { SettleRecorder, until } from './settled';

const EXTENSION_ID = 'lifeboat.lifeboat';
const DIR = 'backups-offsite-sftp';
const DB = 'offsite-sftp.db';
const PASSPHRASE = 'correct horse battery staple';
const KEYS = ['databases', 'directory', 'schedule.daily', 'backupOnShutdown', 'offsite.url'] as const;

const ws = () => vscode.workspace.workspaceFolders![0].uri.fsPath;
const dbPath = () => path.join(ws(), DB);
const backupsDir = () => path.join(ws(), DIR);

async function api(): Promise<LifeboatApi> {
  const a = await vscode.extensions.getExtension<LifeboatApi>(EXTENSION_ID)!.activate();
  await a.ready;
  return a;
}

async function configure(values: Record<string, unknown>): Promise<void> {
  const cfg = vscode.workspace.getConfiguration('lifeboat');
  for (const [k, v] of Object.entries(values)) await cfg.update(k, v, vscode.ConfigurationTarget.Workspace);
}

/** Answers input boxes by their prompt; warnings with `onWarn`, recording them. */
class Answers implements OffsitePrompts {
  readonly warned: string[] = [];
  constructor(
    private readonly inputs: [RegExp, string][],
    private readonly onWarn: (message: string, buttons: string[]) => string | undefined = () => undefined,
  ) {}
  async input(o: vscode.InputBoxOptions): Promise<string | undefined> {
    return this.inputs.find(([re]) => re.test(o.prompt ?? ''))?.[1];
  }
  async pick<T extends vscode.QuickPickItem>(): Promise<T | undefined> {
    return undefined;
  }
  async confirm(): Promise<boolean> {
    return true;
  }
  async warn(message: string, ...buttons: string[]): Promise<string | undefined> {
    this.warned.push(message);
    return this.onWarn(message, buttons);
  }
}

suite('Lifeboat: off-site copies over SFTP, host keys checked like ssh', () => {
  const saved: Record<string, unknown> = {};
  let server: SftpServer | undefined;
  let tmp = '';
  let url = '';
  let knownHosts = '';
  let original: OffsitePrompts;
  let originalPolicy: HostKeyPolicy | undefined;
  let firstId = '';

  suiteSetup(async function () {
    this.timeout(120_000);
    const a = await api();
    original = a.offsite.prompts;
    originalPolicy = a.offsite.knownHosts;
    tmp = mkdtempSync(path.join(os.tmpdir(), 'lifeboat-offsite-sftp-'));
    server = await startSftp(path.join(tmp, 'sftp'));
    url = `sftp://${server.user}@${server.host}:${server.port}/ws`;
    knownHosts = path.join(tmp, 'ssh', 'known_hosts');
    a.offsite.knownHosts = { files: [knownHosts] };
    const cfg = vscode.workspace.getConfiguration('lifeboat');
    for (const k of KEYS) saved[k] = cfg.inspect(k)?.workspaceValue;
    rmSync(dbPath(), { force: true });
    rmSync(backupsDir(), { recursive: true, force: true });
    makeShopDb(dbPath());
    await configure({ databases: [DB], directory: DIR, 'schedule.daily': false, backupOnShutdown: false, 'offsite.url': url });
    await until('the database configured with its SFTP remote', async () => (await a.folders()).find((f) => f.databases.includes(dbPath()) && f.settings.offsite.url === url));
    const rec = new SettleRecorder(a);
    try {
      const mark = rec.mark();
      await vscode.commands.executeCommand('lifeboat.backupNow');
      const s = rec.since(mark, { op: 'backup' });
      assert.equal(s[0]?.outcome, 'ok', JSON.stringify(s));
      firstId = s[0].backup!;
    } finally {
      rec.dispose();
    }
    a.offsite.prompts = new Answers([
      [/SFTP password/, server.password],
      [/passphrase/i, PASSPHRASE],
    ]);
    await vscode.commands.executeCommand('lifeboat.setOffsiteCredentials');
    assert.equal((await a.offsite.credentials(url)).creds?.sftpPassword, server.password);
  });

  suiteTeardown(async function () {
    this.timeout(60_000);
    const a = await api();
    await a.offsite.idle();
    a.offsite.prompts = original;
    a.offsite.knownHosts = originalPolicy;
    await configure(saved);
    await until('the database no longer configured', async () => !(await a.folders()).some((f) => f.databases.includes(dbPath())));
    rmSync(dbPath(), { force: true });
    for (const side of ['-wal', '-shm']) rmSync(dbPath() + side, { force: true });
    rmSync(backupsDir(), { recursive: true, force: true });
    await server?.stop();
    if (tmp) rmSync(tmp, { recursive: true, force: true });
  });

  test('an unknown host is shown with its fingerprint; "Trust and Retry" records its key and copies', async function () {
    this.timeout(120_000);
    const a = await api();
    const answers = new Answers([], (_m, buttons) => buttons.find((b) => b === 'Trust and Retry'));
    a.offsite.prompts = answers;
    const first = (await vscode.commands.executeCommand('lifeboat.copyOffsiteNow')) as unknown[];
    assert.deepEqual(first, [undefined], 'the first copy is refused');
    assert.equal(answers.warned.length, 1, answers.warned.join(' | '));
    assert.ok(answers.warned[0].includes(server!.hostKeySha256), answers.warned[0]);
    assert.match(answers.warned[0], new RegExp(`\\[127\\.0\\.0\\.1\\]:${server!.port} .* is not a known host`));
    assert.ok(existsSync(knownHosts), 'the key was recorded');
    assert.match(readFileSync(knownHosts, 'utf8'), /^\|1\|\S+ ssh-ed25519 \S+\n$/);
    const state = (await a.folders()).find((f) => f.databases.includes(dbPath()))!;
    await until('the retried copy is on the server', async () => {
      await a.offsite.idle();
      return (await a.offsite.listRemote(state)).some((r) => r.id === firstId) || undefined;
    }, 60_000);
    assert.equal(a.offsite.failureOf(url), undefined);
    assert.equal(answers.warned.length, 1, 'asked once');
  });

  test('the weekly restore test tests the folder\'s SFTP remote in the off-site worker, recorded there', async function () {
    this.timeout(120_000);
    const a = await api();
    const state = (await a.folders()).find((f) => f.databases.includes(dbPath()))!;
    const source = await a.offsite.restoreTestSource(state.dir);
    assert.ok(source, 'a remote with stored credentials is offered');
    assert.equal(source.url, url);
    const outcome = await source.restoreTest({ settings: state.settings, now: Date.now(), afterMs: 0 });
    assert.ok('tested' in outcome, JSON.stringify(outcome));
    assert.equal(outcome.tested.ok, true, outcome.tested.problems.join('; '));
    assert.ok(outcome.tested.path.startsWith(url), outcome.tested.path);
    const id = outcome.tested.record!.id;
    const onRemote = (await a.offsite.listRemote(state)).find((r) => r.id === id);
    assert.equal(onRemote?.state.lastRestoreTest?.ok, true, 'recorded in the remote\'s state');
    assert.deepEqual(await source.restoreTest({ settings: state.settings, now: Date.now(), afterMs: 3_600_000 }), { skipped: 'notDue' }, 'not due again within the hour');
    assert.equal(await a.offsite.restoreTestSource(path.join(tmp, 'elsewhere')), undefined, 'no remote for a folder without one');
  });

  test('a known host offering another key is refused loudly, with no way to accept it', async function () {
    this.timeout(60_000);
    const a = await api();
    const other = Buffer.concat([Buffer.from([0, 0, 0, 11]), Buffer.from('ssh-ed25519'), Buffer.from([0, 0, 0, 32]), Buffer.alloc(32, 9)]).toString('base64');
    writeFileSync(knownHosts, `[127.0.0.1]:${server!.port} ssh-ed25519 ${other}\n`);
    const answers = new Answers([], () => 'Trust and Retry');
    a.offsite.prompts = answers;
    const res = (await vscode.commands.executeCommand('lifeboat.copyOffsiteNow')) as unknown[];
    assert.deepEqual(res, [undefined]);
    assert.deepEqual(answers.warned, [], 'no offer to trust a changed key');
    const failure = a.offsite.failureOf(url) ?? '';
    assert.match(failure, /HOST KEY MISMATCH/);
    assert.ok(failure.includes(server!.hostKeySha256), failure);
    assert.equal(readFileSync(knownHosts, 'utf8'), `[127.0.0.1]:${server!.port} ssh-ed25519 ${other}\n`, 'known_hosts untouched');
  });
});

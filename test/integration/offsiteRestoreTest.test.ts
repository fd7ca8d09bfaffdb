/**
 * The rolling restore test takes every other backup from the off-site copy: against a
 * folder remote (file://, encrypted) and a real SFTP server (rclone on loopback), the
 * off-site half run in the caller's thread (an open store, as the CLI does) or in the
 * off-site worker (a tester running `runRemoteJob` op 'restoreTest', as VS Code does).
 * Real databases, real backups, real pushes; the clock is the engine's injected one (the
 * worker's runs on from it).
 */
import assert from 'node:assert/strict';
import { mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { after, before, describe, test } from 'node:test';
import type { LogEntry } from '../../src/core/catalog/backupLog';
import { Catalog } from '../../src/core/catalog/catalog';
import { cloneSettings, DEFAULT_SETTINGS, type Settings } from '../../src/core/config';
import type { Clock } from '../../src/core/context';
import { Engine } from '../../src/core/engine';
import { BackupError } from '../../src/core/errors';
import { runRemoteJob, type PushSecrets } from '../../src/core/offsite/pushJob';
import { openRemote, type RemoteSecrets, type RemoteSettings } from '../../src/core/store/remote/openRemote';
import type { RemoteStore } from '../../src/core/store/remote/remoteStore';
import { newestRestoreTestOf, type RestoreTestState, type VerifyResult } from '../../src/core/verify/backupCheck';
import { provideOffsiteRestoreSource, type OffsiteRestoreSource, type OffsiteRestoreTester } from '../../src/core/verify/offsiteSource';
import { ensureBuilt } from '../fixtures/cli';
import { runCli } from '../fixtures/repoStore';
import { startSftp, type SftpServer } from '../fixtures/sftpServer';
import { makeDb, sqlite, tempDir } from '../fixtures/sqlite';

before(() => ensureBuilt());

const DAY = 24 * 60 * 60 * 1000;
const PASSPHRASE = 'correct horse';

/** A clock the test moves by hand. */
function handClock(start: string): Clock & { advance(ms: number): void } {
  let t = Date.parse(start);
  return {
    now: () => new Date(t),
    sleep: (ms) => new Promise((r) => setTimeout(r, Math.min(ms, 50))),
    advance(ms) {
      t += ms;
    },
  };
}

/** Where the off-site half of a restore test runs: on an open store in this thread, or in the off-site worker. */
type Via = 'thread' | 'worker';
const VIAS: Via[] = ['thread', 'worker'];

/** The off-site half of restore tests of a remote, run in the off-site worker (as VS Code runs it). */
function workerTester(remote: RemoteSettings, secrets: PushSecrets, scryptLogN?: number): OffsiteRestoreTester {
  return {
    url: remote.url,
    restoreTest: (o) => runRemoteJob({ op: 'restoreTest', remote, secrets, settings: o.settings, scryptLogN, now: o.now, afterMs: o.afterMs }, { signal: o.signal, onProgress: o.onProgress }),
  };
}

/** A loopback port nothing listens on. */
async function closedPort(): Promise<number> {
  const srv = createServer();
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
  const port = (srv.address() as { port: number }).port;
  await new Promise<void>((r) => srv.close(() => r()));
  return port;
}

function settings(): Settings {
  return { ...cloneSettings(DEFAULT_SETTINGS), format: 'repository' };
}

/** A database with two verified backups in `dir/backups`, all pushed to the remote `open()` opens. */
async function seeded(engine: Engine, dir: string, open: () => RemoteStore, rows = 2000): Promise<{ db: string; backups: string }> {
  mkdirSync(dir, { recursive: true });
  const db = path.join(dir, 'app.db');
  makeDb(db, { rows });
  const backups = path.join(dir, 'backups');
  const s = settings();
  assert.equal((await engine.backup(db, { dir: backups, kind: 'manual', settings: s, rotate: false })).verified, true);
  sqlite(db, "UPDATE items SET qty = qty + 1 WHERE id % 7 = 0; INSERT INTO items(name, qty) VALUES ('later', 1);");
  assert.equal((await engine.backup(db, { dir: backups, kind: 'manual', settings: s, rotate: false })).verified, true);
  const remote = open();
  try {
    const pushed = await engine.push(backups, remote, s);
    assert.equal(pushed.copied.length, 2, JSON.stringify(pushed.failed));
  } finally {
    await remote.close();
  }
  return { db, backups };
}

async function logOf(store: Catalog): Promise<LogEntry[]> {
  return (await store.log.read()).filter((e) => e.op.startsWith('restoreTest'));
}

/** The three weekly tests from `t0`: off-site, local, off-site; checked on both stores. `offsite`: where the tests find the remote (default: `open()`, in this thread). */
async function alternates(
  engine: Engine,
  clock: Clock & { advance(ms: number): void },
  backups: string,
  url: string,
  open: () => RemoteStore,
  offsite: () => Promise<OffsiteRestoreSource> = async () => open(),
): Promise<VerifyResult[]> {
  const s = settings();
  const run = () => engine.restoreTest(backups, s, { offsite });
  const first = (await run())!;
  assert.equal(first.ok, true, first.problems.join('; '));
  assert.equal(first.from, url, 'the first test takes its backup from the off-site copy');
  assert.ok(first.path.startsWith(url), first.path);
  clock.advance(7 * DAY);
  const second = (await run())!;
  assert.equal(second.ok, true, second.problems.join('; '));
  assert.equal(second.from, undefined, 'a week later, the local copy');
  assert.ok(second.path.startsWith(backups), second.path);
  clock.advance(7 * DAY + 60_000);
  const third = (await run())!;
  assert.equal(third.from, url, 'two weeks after the first, the off-site copy again');
  assert.equal(third.ok, true);
  assert.notEqual(third.record!.id, first.record!.id, 'the off-site copy rolls on to its other backup');

  // Recorded on the remote (its state and log) ...
  const remote = open();
  try {
    const rc = new Catalog(remote, { clock });
    const rstate = (await rc.readState()).backups;
    assert.ok(rstate[first.record!.id]?.lastRestoreTest?.ok);
    assert.ok(rstate[third.record!.id]?.lastRestoreTest?.ok);
    assert.deepEqual((await logOf(rc)).map((e) => e.op), ['restoreTest.ok', 'restoreTest.ok']);
  } finally {
    await remote.close();
  }
  // ... and locally, saying which copy was tested.
  const local = engine.catalog(backups);
  const lstate = (await local.readState()).backups;
  const t3 = lstate[third.record!.id]!.lastRestoreTest as RestoreTestState;
  assert.equal(t3.from, url);
  assert.ok(t3.detail?.startsWith(`from ${url}`), t3.detail);
  const entries = await logOf(local);
  assert.deepEqual(
    entries.map((e) => [e.op, e.detail?.from]),
    [
      ['restoreTest.ok', url],
      ['restoreTest.ok', undefined],
      ['restoreTest.ok', url],
    ],
  );
  assert.match(entries[0]!.message, new RegExp(`^restore test of \\S+ from ${url.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&')} passed$`));
  // `lifeboat stats` names the newest test and the copy it took.
  const stats = await runCli(['stats', '--dir', backups, '--json']);
  assert.equal(stats.code, 0, stats.stderr);
  const last = (JSON.parse(stats.stdout) as { lastRestoreTest: { id: string; from?: string; ok: boolean } }).lastRestoreTest;
  assert.deepEqual([last.id, last.from, last.ok], [third.record!.id, url, true]);
  const text = await runCli(['stats', '--dir', backups]);
  assert.match(text.stdout, new RegExp(`^restore test .* ${third.record!.id} \\(off-site copy in ${url.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&')}\\) passed$`, 'm'));
  return [first, second, third];
}

describe('the rolling restore test takes every other backup from the off-site copy', () => {
  const t = tempDir('lifeboat-remote-restoretest-');
  let server: SftpServer | undefined;
  after(async () => {
    await server?.stop();
    t.cleanup();
  });

  for (const via of VIAS) {
    test(`a folder remote (file://, encrypted), tested ${via === 'worker' ? 'in the off-site worker' : "in the caller's thread"}: off-site, local, off-site; damage there fails the test and is recorded on both sides`, async () => {
      const clock = handClock('2026-03-02T10:00:00Z');
      const engine = new Engine({ clock });
      const dir = path.join(t.dir, `folder-${via}`);
      const remoteDir = path.join(dir, 'remote');
      const url = pathToFileURL(remoteDir).href;
      const secrets: RemoteSecrets = { passphrase: { source: 'test', get: async () => PASSPHRASE } };
      const settingsOf: RemoteSettings = { url, urlSource: 'test', encrypt: true };
      const open = () => openRemote(settingsOf, secrets, { clock, scryptLogN: 10 });
      const offsite = async (): Promise<OffsiteRestoreSource> => (via === 'worker' ? workerTester(settingsOf, { from: 'values', passphrase: { value: PASSPHRASE, source: 'test' } }, 10) : open());
      const { backups } = await seeded(engine, dir, open);
      const [, , third] = await alternates(engine, clock, backups, url, open, offsite);
      const newest = newestRestoreTestOf((await engine.list(backups)).records);
      assert.deepEqual([newest?.id, newest?.from, newest?.ok], [third!.record!.id, url, true], 'what stats shows: the newest test, and which copy');

      // A damaged pack on the remote: the next off-site test fails, on the remote and locally.
      const packs = path.join(remoteDir, 'packs');
      const walk = (d: string): string[] => readdirSync(d, { withFileTypes: true }).flatMap((e) => (e.isDirectory() ? walk(path.join(d, e.name)) : [path.join(d, e.name)]));
      for (const f of walk(packs)) {
        const b = readFileSync(f);
        b[b.length >> 1] ^= 0xff;
        writeFileSync(f, b);
      }
      clock.advance(14 * DAY);
      const bad = (await engine.restoreTest(backups, settings(), { offsite }))!;
      assert.equal(bad.from, url, `fell back: ${bad.offsiteError}`);
      assert.equal(bad.ok, false);
      const last = (await logOf(engine.catalog(backups))).at(-1)!;
      assert.equal(last.op, 'restoreTest.failed');
      assert.equal(last.level, 'error');
      assert.match(last.message, / from file:.* FAILED: /);
      const remote = open();
      try {
        const rc = new Catalog(remote, { clock });
        assert.equal((await rc.readState()).backups[bad.record!.id]?.lastRestoreTest?.ok, false, "the failure is in the remote's state");
        const rlast = (await logOf(rc)).at(-1)!;
        assert.deepEqual([rlast.op, rlast.level, rlast.backup], ['restoreTest.failed', 'error', bad.record!.id], "and in the remote's log");
      } finally {
        await remote.close();
      }
      // The local copies are untouched: a local test still passes.
      clock.advance(7 * DAY);
      const local = (await engine.restoreTest(backups, settings(), { offsite }))!;
      assert.equal(local.from, undefined);
      assert.equal(local.ok, true, local.problems.join('; '));
    });
  }

  test('in the off-site worker: an unreachable remote is logged (warn) and the local copy tested instead', async () => {
    const clock = handClock('2026-03-02T10:00:00Z');
    const engine = new Engine({ clock });
    const dir = path.join(t.dir, 'unreachable');
    const url = pathToFileURL(path.join(dir, 'remote')).href;
    const { backups } = await seeded(engine, dir, () => openRemote({ url, urlSource: 'test', encrypt: false }, {}, { clock }));
    const knownHosts = path.join(dir, 'known_hosts');
    writeFileSync(knownHosts, '');
    const gone = `sftp://u@127.0.0.1:${await closedPort()}/offsite`;
    const tester = workerTester({ url: gone, urlSource: 'test', encrypt: false, timeoutMs: 3000 }, { from: 'values', sftp: { password: 'x', source: 'test', knownHosts: { files: [knownHosts] } } });
    const res = (await engine.restoreTest(backups, settings(), { offsite: async () => tester }))!;
    assert.equal(res.from, undefined);
    assert.equal(res.ok, true, res.problems.join('; '));
    assert.match(res.offsiteError ?? '', new RegExp(`${gone.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&')}.*refused`), res.offsiteError);
    const entries = await logOf(engine.catalog(backups));
    assert.deepEqual(
      entries.map((e) => [e.op, e.level, e.detail?.from]),
      [
        ['restoreTest.failed', 'warn', gone],
        ['restoreTest.ok', 'info', undefined],
      ],
    );
    assert.match(entries[0]!.message, /^the off-site copy could not be restore-tested, testing the local folder instead: /);
  });

  test('in the off-site worker: a cancelled test rejects as cancelled and is recorded as failed nowhere', async () => {
    const clock = handClock('2026-03-02T10:00:00Z');
    const engine = new Engine({ clock });
    const dir = path.join(t.dir, 'cancel');
    const url = pathToFileURL(path.join(dir, 'remote')).href;
    const settingsOf: RemoteSettings = { url, urlSource: 'test', encrypt: true };
    const open = () => openRemote(settingsOf, { passphrase: { source: 'test', get: async () => PASSPHRASE } }, { clock, scryptLogN: 10 });
    // Large enough that the worker is still at it when the cancel reaches it.
    const { backups } = await seeded(engine, dir, open, 40_000);
    const tester = workerTester(settingsOf, { from: 'values', passphrase: { value: PASSPHRASE, source: 'test' } }, 10);
    const abort = new AbortController();
    const phases: string[] = [];
    await assert.rejects(
      engine.restoreTest(backups, settings(), {
        offsite: async () => tester,
        signal: abort.signal,
        onProgress: (p) => {
          phases.push(p.phase);
          abort.abort(new BackupError('cancelled', 'the test cancels'));
        },
      }),
      (e: unknown) => BackupError.is(e, 'cancelled'),
    );
    assert.ok(phases.length > 0, 'cancelled while the worker was at work');
    assert.deepEqual(await logOf(engine.catalog(backups)), [], 'nothing in the local log');
    assert.deepEqual((await engine.list(backups)).records.map((r) => r.state.lastRestoreTest), [undefined, undefined], 'nor in the local state');
    const remote = open();
    try {
      const rc = new Catalog(remote, { clock });
      assert.deepEqual((await logOf(rc)).filter((e) => e.op === 'restoreTest.failed'), [], "no failure in the remote's log");
      assert.ok(Object.values((await rc.readState()).backups).every((b) => b.lastRestoreTest?.ok !== false), "nor in the remote's state");
    } finally {
      await remote.close();
    }
  });

  test('without secrets (no remote offered) it tests the local copy; a registered provider is used when the caller passes none', async () => {
    const clock = handClock('2026-03-02T10:00:00Z');
    const engine = new Engine({ clock });
    const dir = path.join(t.dir, 'provider');
    const url = pathToFileURL(path.join(dir, 'remote')).href;
    const open = () => openRemote({ url, urlSource: 'test', encrypt: false }, {}, { clock });
    const { backups } = await seeded(engine, dir, open);
    const none = (await engine.restoreTest(backups, settings(), { offsite: async () => undefined }))!;
    assert.equal(none.from, undefined);
    assert.equal(none.ok, true);
    const asked: string[] = [];
    const reg = provideOffsiteRestoreSource(async (d) => {
      asked.push(d);
      return d === backups ? open() : undefined;
    });
    try {
      const viaProvider = (await engine.restoreTest(backups, settings()))!;
      assert.deepEqual(asked, [backups]);
      assert.equal(viaProvider.from, url);
      assert.equal(viaProvider.ok, true);
    } finally {
      reg.dispose();
    }
    clock.advance(30 * DAY);
    assert.equal((await engine.restoreTest(backups, settings()))!.from, undefined, 'a disposed provider is not asked');
    assert.equal(asked.length, 1);
  });

  test('over SFTP: off-site, local, off-site; an unreachable server is logged and the local copy tested instead', async () => {
    server = await startSftp(path.join(t.dir, 'sftp'));
    const srv = server;
    const clock = handClock('2026-03-02T10:00:00Z');
    const engine = new Engine({ clock });
    const dir = path.join(t.dir, 'sftp-db');
    const url = `sftp://${srv.user}@${srv.host}:${srv.port}/offsite/app`;
    const secrets: RemoteSecrets = { sftp: { password: srv.password, source: 'test', knownHosts: { files: [srv.knownHosts] } }, passphrase: { source: 'test', get: async () => PASSPHRASE } };
    const open = () => openRemote({ url, urlSource: 'test', encrypt: true, timeoutMs: 3000 }, secrets, { clock, scryptLogN: 10, retry: { attempts: 1 } });
    const { backups } = await seeded(engine, dir, open);
    await alternates(engine, clock, backups, url, open);

    await srv.stop();
    clock.advance(14 * DAY);
    const fallback = (await engine.restoreTest(backups, settings(), { offsite: async () => open() }))!;
    assert.equal(fallback.from, undefined);
    assert.equal(fallback.ok, true, fallback.problems.join('; '));
    assert.match(fallback.offsiteError ?? '', new RegExp(`${url.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&')}.*refused`));
    const entries = await logOf(engine.catalog(backups));
    const warn = entries.at(-2)!;
    assert.equal(warn.level, 'warn');
    assert.match(warn.message, /off-site copy could not be restore-tested/);
    assert.equal(entries.at(-1)!.op, 'restoreTest.ok');
  });
});

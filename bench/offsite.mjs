// `npm run bench -- --offsite`: off-site copies (issue 11) against a real S3 server on this
// machine (OpenStack Swift with s3api: test/fixtures/swiftServer.ts, loopback only), in one run:
//   - a 1 GB WAL database (bench/incremental.mjs's, cached in bench/data), a first local
//     backup (format v2, the default), `lifeboat push` of it to s3://bench/offsite encrypted
//     (LIFEBOAT_PASSWORD, the default scrypt work factor); about 1% of the pages rewritten
//     (bench/incremental.mjs's change), a second backup, a second push;
//   - the bytes each push sent over the wire (the proxy's access log: request bodies of the
//     client-facing requests) against what that backup added locally (`list --json` storedBytes);
//   - the first push's time against `rclone copy` of the same local files (packs/, snapshots/)
//     to another prefix of the same server, alternating, fastest of `--rounds` each (the
//     earlier rounds' pushes go to throwaway prefixes), and, for context, rclone copying them
//     through its crypt remote (rclone encrypting too); each push's peak RSS (/usr/bin/time)
//     and longest event-loop stall (bench/stallProbe.cjs, preloaded: each gap with the time the main
//     thread waited for a core, judged on the rest);
//   - `lifeboat restore latest --from` to a new file against `rclone copy` downloading every
//     object of the remote, alternating, fastest of `--rounds` each; the restored database
//     checked against the source (sqlite3 .sha3sum, integrity_check, row count); for context,
//     the same backup restored from the local repository (the work of a restore with no
//     network: decompressing, checking every page, writing, and SQLite's check when the
//     backup-time one was not a full integrity_check).
// Prints one table of ratios and targets; asserts nothing. Stops the server (by PID, through
// its launcher) and removes its data at the end.
//
//   --mb N       size of the database (default 1024)
//   --rounds N   timed rounds of each upload and download comparison (default 2)
import { execFileSync, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, rmdirSync, rmSync, statSync } from 'node:fs';
import { createRequire } from 'node:module';
import os from 'node:os';
import path from 'node:path';
import { build } from 'esbuild';
import { baseDb, change, CLI, cliBackup, copyDb, dirBytes, MB, NODE24, query, secs, setFormat, sql, timed, work } from './lib.mjs';

const argv = process.argv.slice(2);
const num = (flag, dflt) => (argv.includes(flag) ? Number(argv[argv.indexOf(flag) + 1]) : dflt);
const dbMB = num('--mb', 1024);
const rounds = Math.max(1, num('--rounds', 2));
const scratch = path.join(work, 'offsite');
const PROBE = path.resolve('bench/stallProbe.cjs');
const BUCKET = 'bench';
const REMOTE = `s3://${BUCKET}/offsite`;

for (const tool of ['sqlite3', 'rclone', '/usr/bin/time']) {
  if (spawnSync('sh', ['-c', `command -v ${tool}`]).status !== 0) {
    console.error(`bench --offsite needs ${tool} (Debian: apt-get install sqlite3 rclone time)`);
    process.exit(1);
  }
}
const has24 = existsSync(NODE24) && spawnSync(NODE24, ['-e', "if (typeof require('node:sqlite').backup !== 'function') process.exit(1)"]).status === 0;
const rt = has24 ? { name: 'node24', exe: NODE24 } : { name: 'node20', exe: process.execPath };
rt.label = `Node ${spawnSync(rt.exe, ['-p', 'process.versions.node'], { encoding: 'utf8' }).stdout.trim()}`;

const loads = [];
const sampleLoad = (at) => loads.push({ at, load: os.loadavg() });
const startedAt = new Date();
sampleLoad('start');
console.log(`off-site bench, ${startedAt.toISOString()}: ${os.cpus().length} cores, load average ${os.loadavg().map((l) => l.toFixed(2)).join(' ')}; the CLI under ${rt.label}`);

rmSync(scratch, { recursive: true, force: true });
mkdirSync(scratch, { recursive: true });

// The server fixture is TypeScript: bundled here (its dependencies stay in node_modules).
const fixture = path.join(scratch, 'swiftServer.cjs');
await build({ entryPoints: ['test/fixtures/swiftServer.ts'], outfile: fixture, bundle: true, platform: 'node', format: 'cjs', target: 'node20', packages: 'external', logLevel: 'warning' });
// The fixture's createBucket loads the AWS SDK here, which warns about Node 20's end of support.
process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';
const { startSwift, swiftAvailable } = createRequire(import.meta.url)(fixture);
const why = swiftAvailable();
if (why) {
  console.error(`bench --offsite: ${why}`);
  process.exit(1);
}
const t0 = performance.now();
const server = await startSwift(path.join(scratch, 'swift'));
console.log(`Swift with s3api at ${server.endpoint}, ready in ${((performance.now() - t0) / 1000).toFixed(1)} s (pids ${Object.values(server.pids).join(' ')})`);
try {
  await run(server);
} finally {
  await server.stop();
  rmSync(path.join(scratch, 'swift'), { recursive: true, force: true });
  rmSync(scratch, { recursive: true, force: true });
  // The CLI's scratch folders for these remotes (remoteStore.ts scratchDir), when nothing else is left in them.
  for (let i = 0; i < rounds; i++) {
    const url = i === rounds - 1 ? REMOTE : `${REMOTE}-trial${i}`;
    const dir = path.join(os.tmpdir(), `lifeboat-remote-${createHash('sha256').update(url).digest('hex').slice(0, 12)}`);
    rmSync(path.join(dir, 'remote.json'), { force: true }); // the remote's description as last seen (remoteStore.ts seenConfig)
    try {
      rmdirSync(dir);
    } catch {
      // missing, or holds another run's files
    }
  }
}

async function run(server) {
  await server.createBucket(BUCKET);
  const proxyLog = path.join(server.dir, 'logs', 'proxy.log');
  const lbEnv = { ...process.env, AWS_ACCESS_KEY_ID: server.accessKeyId, AWS_SECRET_ACCESS_KEY: server.secretAccessKey, AWS_ENDPOINT_URL: server.endpoint, AWS_REGION: server.region, LIFEBOAT_PASSWORD: 'bench passphrase, not a secret' };
  for (const k of ['LIFEBOAT_SCRYPT_LOG_N', 'LIFEBOAT_PASSWORD_FILE', 'LIFEBOAT_PASSWORD_COMMAND', 'AWS_ENDPOINT_URL_S3', 'AWS_PROFILE', 'AWS_SESSION_TOKEN']) delete lbEnv[k];
  // rclone refuses to start with AWS_CA_BUNDLE set on a plain-HTTP endpoint.
  const rcEnv = { ...process.env };
  delete rcEnv.AWS_CA_BUNDLE;
  Object.assign(rcEnv, {
    RCLONE_CONFIG_SWIFTS3_TYPE: 's3',
    RCLONE_CONFIG_SWIFTS3_PROVIDER: 'Other',
    RCLONE_CONFIG_SWIFTS3_ACCESS_KEY_ID: server.accessKeyId,
    RCLONE_CONFIG_SWIFTS3_SECRET_ACCESS_KEY: server.secretAccessKey,
    RCLONE_CONFIG_SWIFTS3_ENDPOINT: server.endpoint,
    RCLONE_CONFIG_SWIFTS3_REGION: server.region,
    RCLONE_CONFIG_SWIFTS3_FORCE_PATH_STYLE: 'true',
    RCLONE_CONFIG: '/dev/null',
  });
  const rclone = (args) => execFileSync('rclone', args, { env: rcEnv, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
  // rclone's own encryption (its crypt remote over the same bucket), for a comparison that
  // encrypts too: a password made up for the run, in rclone's obscured form.
  const cryptEnv = (dest) => ({ ...rcEnv, RCLONE_CONFIG_SWIFTCRYPT_TYPE: 'crypt', RCLONE_CONFIG_SWIFTCRYPT_REMOTE: `swifts3:${BUCKET}/${dest}`, RCLONE_CONFIG_SWIFTCRYPT_PASSWORD: rclone(['obscure', 'bench crypt password']).trim() });

  /**
   * What the clients sent and received in the proxy's access log since `from` (a byte
   * offset): request and response bodies of the client-facing requests (s3api's own
   * subrequests to Swift, source "S3", left out), and the number of requests.
   */
  const logAt = () => (existsSync(proxyLog) ? statSync(proxyLog).size : 0);
  function traffic(from) {
    const text = readFileSync(proxyLog, 'utf8').slice(from);
    let recvd = 0;
    let sent = 0;
    let requests = 0;
    for (const line of text.split('\n')) {
      const f = line.split(' ');
      if (f[0] !== 'proxy-server:' || f.length < 18 || f[5].startsWith('/v1/') || f[17] === 'S3') continue;
      requests++;
      if (/^\d+$/.test(f[11])) recvd += Number(f[11]);
      if (/^\d+$/.test(f[12])) sent += Number(f[12]);
    }
    return { recvd, sent, requests };
  }
  /** Bytes of the objects under `prefix` of the bucket, as the server lists them. */
  const remoteBytes = (prefix) => JSON.parse(rclone(['lsjson', '-R', '--files-only', `swifts3:${BUCKET}/${prefix}`])).reduce((n, o) => n + o.Size, 0);

  /** One CLI run under /usr/bin/time with the stall probe preloaded: seconds, peak RSS, stdout, stalls, traffic. */
  function cli(args, label) {
    const out = path.join(scratch, `stall-${label}.json`);
    const from = logAt();
    const r = timed(rt.exe, ['-r', PROBE, CLI, ...args], { env: { ...lbEnv, LIFEBOAT_BENCH_STALL_OUT: out } });
    const stall = JSON.parse(readFileSync(out, 'utf8'));
    rmSync(out);
    return { ...r, stall, wire: traffic(from) };
  }
  const push = (url, label) => {
    const r = cli(['push', '--dir', backups, '--to', url, '--json'], label);
    const res = JSON.parse(r.stdout);
    if (res.failed.length || !res.copied.length) throw new Error(`push to ${url}: ${JSON.stringify(res.failed)} (${res.copied.length} copied)`);
    return { ...r, res };
  };
  const rcloneUp = (dest) => {
    const from = logAt();
    const r = timed('rclone', ['copy', backups, `swifts3:${BUCKET}/${dest}`, '--include', '/packs/**', '--include', '/snapshots/**'], { env: rcEnv });
    return { ...r, wire: traffic(from) };
  };

  // --- The database and the first backup ------------------------------------------------
  const db = path.join(scratch, 'app.db');
  const backups = path.join(scratch, 'backups');
  copyDb(baseDb(dbMB), db);
  // Committed frames left in the WAL, as a live app would (the same update as the other benches).
  sql(db, `.dbconfig no_ckpt_on_close on\nPRAGMA wal_autocheckpoint=0;\nUPDATE events SET kind = 'touched' WHERE id % 50 = 0;\n`);
  setFormat(db, 'repository');
  execFileSync('sh', ['-c', `cat '${db}' '${db}-wal' > /dev/null`]);
  const first = cliBackup(rt, db, backups);
  const localFiles = () => ['packs', 'snapshots'].reduce((n, d) => n + (existsSync(path.join(backups, d)) ? dirBytes(path.join(backups, d)) : 0), 0);
  const firstFiles = localFiles();
  console.log(`${(statSync(db).size / 1048576 + statSync(`${db}-wal`).size / 1048576).toFixed(0)} MB WAL database; first backup ${secs(first.s)}, ${MB(first.storedBytes)} stored (packs/ + snapshots/: ${MB(firstFiles)})`);
  sampleLoad('first backup');

  // --- First push against rclone copy, alternating ----------------------------------------
  const up = { push: [], rclone: [], crypt: [] };
  for (let i = 0; i < rounds; i++) {
    const url = i === rounds - 1 ? REMOTE : `${REMOTE}-trial${i}`;
    const steps = [
      () => up.push.push({ round: i, url, ...push(url, `push1-${i}`) }),
      () => up.rclone.push({ round: i, dest: `rclone-up-${i}`, ...rcloneUp(`rclone-up-${i}`) }),
      () => up.crypt.push({ round: i, dest: `rclone-crypt-${i}`, ...timed('rclone', ['copy', backups, 'swiftcrypt:', '--include', '/packs/**', '--include', '/snapshots/**'], { env: cryptEnv(`rclone-crypt-${i}`) }) }),
    ];
    if (i % 2) steps.reverse();
    for (const s of steps) s();
    const p = up.push.at(-1);
    const c = up.rclone.at(-1);
    console.log(`  round ${i + 1}: push ${secs(p.s)} (${MB(p.wire.recvd)} sent, ${p.rssMB.toFixed(0)} MB RSS, longest stall ${p.stall.maxOwnMs.toFixed(0)} ms own, ${p.stall.maxMs.toFixed(0)} ms gap), rclone copy ${secs(c.s)} (${MB(c.wire.recvd)} sent, ${c.rssMB.toFixed(0)} MB RSS), rclone copy through crypt ${secs(up.crypt.at(-1).s)}`);
    sampleLoad(`upload round ${i + 1}`);
  }
  const push1 = up.push.at(-1);
  const fastest = (xs) => xs.reduce((a, b) => (b.s < a.s ? b : a));
  const push1Fast = fastest(up.push);
  const rcloneUpFast = fastest(up.rclone);
  // The throwaway copies go; the last rclone copy stays, for an incremental rclone copy below.
  for (const p of up.push.slice(0, -1)) rclone(['purge', `swifts3:${BUCKET}/${p.url.slice(`s3://${BUCKET}/`.length)}`]);
  for (const c of up.rclone.slice(0, -1)) rclone(['purge', `swifts3:${BUCKET}/${c.dest}`]);
  for (const c of up.crypt) rclone(['purge', `swifts3:${BUCKET}/${c.dest}`]);

  // --- About 1% changed, the second backup and push ---------------------------------------
  const rows = change(db, 1, true);
  const second = cliBackup(rt, db, backups);
  const addedFiles = localFiles() - firstFiles;
  console.log(`changed ${rows} rows; second backup ${secs(second.s)}, ${MB(second.storedBytes)} stored (${second.addedPages} pages; packs/ + snapshots/ grew ${MB(addedFiles)})`);
  const remoteBefore = remoteBytes('offsite');
  const push2 = push(REMOTE, 'push2');
  const remoteAdded = remoteBytes('offsite') - remoteBefore;
  const rcloneIncr = rcloneUp(up.rclone.at(-1).dest);
  console.log(`  second push ${secs(push2.s)}: ${MB(push2.wire.recvd)} sent in ${push2.wire.requests} requests (push says ${MB(push2.res.bytes)}), the remote grew ${MB(remoteAdded)}; rclone copy of the changed folder ${secs(rcloneIncr.s)} (${MB(rcloneIncr.wire.recvd)} sent)`);
  sampleLoad('second push');

  // --- Disaster restore against rclone copy down, alternating -------------------------------
  const restoreDir = path.join(scratch, 'restore');
  const restored = path.join(restoreDir, 'app.db');
  const down = path.join(scratch, 'rclone-down');
  const dl = { restore: [], rclone: [], local: [] };
  for (let i = 0; i < rounds; i++) {
    const steps = [
      () => {
        // The same backup restored from the local repository: the work a restore does with no network.
        const localDir = path.join(scratch, 'restore-local');
        rmSync(localDir, { recursive: true, force: true });
        mkdirSync(localDir);
        const r = timed(rt.exe, [CLI, 'restore', second.id, '--dir', backups, '--to', path.join(localDir, 'app.db'), '--json'], { env: lbEnv });
        dl.local.push({ round: i, ...r, res: JSON.parse(r.stdout) });
        rmSync(localDir, { recursive: true, force: true });
      },
      () => {
        rmSync(restoreDir, { recursive: true, force: true });
        mkdirSync(restoreDir);
        const r = cli(['restore', 'latest', '--from', REMOTE, '--to', restored, '--json'], `restore-${i}`);
        dl.restore.push({ round: i, ...r, res: JSON.parse(r.stdout) });
      },
      () => {
        rmSync(down, { recursive: true, force: true });
        const from = logAt();
        const r = timed('rclone', ['copy', `swifts3:${BUCKET}/offsite`, down], { env: rcEnv });
        dl.rclone.push({ round: i, ...r, wire: traffic(from), bytes: dirBytes(down) });
      },
    ];
    if (i % 2) steps.reverse();
    for (const s of steps) s();
    const r = dl.restore.at(-1);
    const c = dl.rclone.at(-1);
    console.log(`  round ${i + 1}: local restore ${secs(dl.local.at(-1).s)} (checked: ${dl.local.at(-1).res.checked}); restore ${secs(r.s)} (${MB(r.wire.sent)} received, ${r.rssMB.toFixed(0)} MB RSS, longest stall ${r.stall.maxOwnMs.toFixed(0)} ms own, ${r.stall.maxMs.toFixed(0)} ms gap), rclone copy ${secs(c.s)} (${MB(c.wire.sent)} received)`);
    sampleLoad(`download round ${i + 1}`);
  }
  const restoreFast = fastest(dl.restore);
  const rcloneDownFast = fastest(dl.rclone);
  if (dl.restore.at(-1).res.restored !== second.id) throw new Error(`restore latest restored ${dl.restore.at(-1).res.restored}, not the second backup ${second.id}`);

  // The restored database against the source's state (a checkpointed copy: sqlite3's close would checkpoint the source).
  const src = path.join(scratch, 'check-src.db');
  copyDb(db, src);
  sql(src, 'PRAGMA wal_checkpoint(TRUNCATE);');
  const sha = (f) => query(f, '.sha3sum');
  const same = { sha: sha(src) === sha(restored), integrity: query(restored, 'PRAGMA integrity_check'), rows: [query(src, 'SELECT count(*) FROM events'), query(restored, 'SELECT count(*) FROM events')] };
  sampleLoad('end');

  // --- The table ---------------------------------------------------------------------------
  const ok = (good) => (good ? 'met' : 'MISSED');
  const x = (a, b) => `${(a / b).toFixed(2)}x`;
  const pushes = [...up.push, push2];
  const peakPush = Math.max(...pushes.map((p) => p.rssMB));
  // Judged on the longest gap of the process's own doing (stallProbe.cjs: the gap less the time the
  // main thread waited for a core, which the S3 server beside it on two cores takes); both printed.
  const stallOf = (runs) => runs.reduce((a, b) => (b.stall.maxOwnMs > a.stall.maxOwnMs ? b : a));
  const worst = stallOf(pushes);
  const stallNote = (r) => (r.stall.stalls.length ? `; gaps over 50 ms: ${r.stall.stalls.slice(0, 6).map((s) => `${s.gapMs} ms (${s.waitMs} waiting for a core) at ${(s.atMs / 1000).toFixed(1)} s`).join(', ')}${r.stall.stalls.length > 6 ? `, +${r.stall.stalls.length - 6} more` : ''} (of ${(r.stall.runMs / 1000).toFixed(1)} s)` : '');
  const restoreStall = stallOf(dl.restore);
  const fmtLoad = (l) => l.map((v) => v.toFixed(2)).join(' ');
  console.log(`\nOff-site copy to ${REMOTE} (Swift 2.30 s3api on 127.0.0.1, age-encrypted), ${(onDiskMB(db)).toFixed(0)} MB WAL database, CLI under ${rt.label}; ${rows} rows rewritten between the backups`);
  console.log(`started ${startedAt.toISOString()}, ${os.cpus().length} cores; load average (1/5/15 min) ${loads.map((l) => `${l.at} ${fmtLoad(l.load)}`).join('; ')}`);
  console.log(`times are the fastest of ${rounds} alternating rounds each (wall time of the process, /usr/bin/time)\n`);
  console.log('| measure | target | result |');
  console.log('| --- | --- | --- |');
  const row = (m, t, r) => console.log(`| ${m} | ${t} | ${r} |`);
  row('second push: bytes sent / bytes the second backup added locally', '<= 1.1x', `${x(push2.wire.recvd, second.storedBytes)} (${MB(push2.wire.recvd)} / ${MB(second.storedBytes)}) ${ok(push2.wire.recvd <= 1.1 * second.storedBytes)}`);
  row('  push JSON bytes; remote grew by; requests', '', `${MB(push2.res.bytes)}; ${MB(remoteAdded)}; ${push2.wire.requests}`);
  row('  bytes the second push downloaded (rotation after the copy)', '', `${MB(push2.wire.sent)} (the remote holds ${MB(remoteBefore + remoteAdded)})`);
  row('first push: bytes sent / bytes the first backup stored', '<= 1.1x', `${x(push1.wire.recvd, first.storedBytes)} (${MB(push1.wire.recvd)} / ${MB(first.storedBytes)}) ${ok(push1.wire.recvd <= 1.1 * first.storedBytes)}`);
  row('first push: time / rclone copy of packs/ + snapshots/', '<= 1.3x', `${x(push1Fast.s, rcloneUpFast.s)} (${secs(push1Fast.s)} / ${secs(rcloneUpFast.s)}) ${ok(push1Fast.s <= 1.3 * rcloneUpFast.s)}`);
  row('  every round: push / rclone', '', up.push.map((p, i) => `${secs(p.s)} / ${secs(up.rclone[i].s)}`).join('; '));
  const cryptFast = fastest(up.crypt);
  row('  first push / rclone copy through its crypt remote (rclone encrypting too)', '', `${x(push1Fast.s, cryptFast.s)} (${secs(push1Fast.s)} / ${secs(cryptFast.s)})`);
  row('  push JSON durationMs (copy only, no rotation; fastest round); bytes the first push downloaded', '', `${secs(push1Fast.res.durationMs / 1000)}; ${MB(push1Fast.wire.sent)}`);
  row('second push: time / rclone copy of the changed folder onto its first copy', '', `${x(push2.s, rcloneIncr.s)} (${secs(push2.s)} / ${secs(rcloneIncr.s)})`);
  row('peak RSS of the push processes', '<= 200 MB', `${peakPush.toFixed(0)} MB ${ok(peakPush <= 200)} (${pushes.map((p) => p.rssMB.toFixed(0)).join(' / ')}; rclone ${rcloneUpFast.rssMB.toFixed(0)} MB)`);
  const stallText = (r) => `${r.stall.maxOwnMs.toFixed(0)} ms of its own (longest gap ${r.stall.maxMs.toFixed(0)} ms${r.stall.schedstat ? '' : '; no schedstat: gaps counted whole'})`;
  row('longest event-loop stall during a push (the gap less the wait for a core)', '<= 50 ms', `${stallText(worst)} ${ok(worst.stall.maxOwnMs <= 50)}${stallNote(worst)}`);
  row('disaster restore: restore latest --from / rclone copy of the remote', '<= 1.5x', `${x(restoreFast.s, rcloneDownFast.s)} (${secs(restoreFast.s)} / ${secs(rcloneDownFast.s)}) ${ok(restoreFast.s <= 1.5 * rcloneDownFast.s)}`);
  row('  every round: restore / rclone', '', dl.restore.map((r, i) => `${secs(r.s)} / ${secs(dl.rclone[i].s)}`).join('; '));
  const localFast = fastest(dl.local);
  row('  the same backup restored from the local repository (no network) / rclone copy of the remote', '', `${x(localFast.s, rcloneDownFast.s)} (${secs(localFast.s)}; how the restore checked: ${localFast.res.checked}, from the remote: ${restoreFast.res.checked})`);
  row('  disaster restore / the local restore', '', `${x(restoreFast.s, localFast.s)}`);
  row('  bytes received: restore / rclone', '', `${MB(restoreFast.wire.sent)} / ${MB(rcloneDownFast.wire.sent)} (${MB(rcloneDownFast.bytes)} on disk)`);
  row('  restore: peak RSS; longest stall', '', `${Math.max(...dl.restore.map((r) => r.rssMB)).toFixed(0)} MB; ${stallText(restoreStall)}${stallNote(restoreStall)}`);
  row('restored database equals the source', 'equal', `${same.sha && same.integrity === 'ok' && same.rows[0] === same.rows[1] ? 'equal' : 'DIFFERS'} (.sha3sum ${same.sha ? 'same' : 'DIFFERS'}, integrity_check ${same.integrity}, ${same.rows[1]} rows of ${same.rows[0]})`);
}

function onDiskMB(db) {
  return (statSync(db).size + (existsSync(`${db}-wal`) ? statSync(`${db}-wal`).size : 0)) / 1048576;
}

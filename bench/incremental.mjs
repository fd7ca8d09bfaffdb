// `npm run bench -- --incremental`: format v2 (the page repository) against a 1 GB WAL
// database, in one run:
//   - two backups with about 1% of the pages rewritten between them (scattered UPDATEs,
//     some of them moving index entries); the real share of changed pages is measured
//     independently of Lifeboat, by hashing the pages of a checkpointed copy of each state;
//   - what the second backup stores (its new packs and manifest: `list --json` storedBytes)
//     against the first, and its time against the native pipeline (`sqlite3 VACUUM INTO`,
//     `gzip -1`, `sqlite3 PRAGMA integrity_check`) run here on the same state;
//   - a backup of the unchanged database (time, bytes stored);
//   - `lifeboat restore --to` of the second backup against the same of a v1 zip of that state;
//   - `lifeboat diff` of the first backup against the live database, against sqlite3
//     computing the same counts on the two files (ATTACH, EXCEPT);
//   - each CLI process's peak RSS (/usr/bin/time), Node 24 (node:sqlite) and this Node (20:
//     the reader and sql.js);
//   - 200 simulated days of daily scheduled backups, the database changing about 1% a day,
//     default rotation: the backup directory against the database, v2 and v1 zips. The CLI
//     takes no clock, so each day runs `dist/bench-child.js day`: the engine with a clock
//     stopped at that day's 02:00, backing up and rotating as the scheduler would.
// Prints one table of ratios and the targets; asserts nothing.
//
//   --mb N          size of the database of the pair of backups (default 1024)
//   --days N        simulated days (default 200; 0 skips them)
//   --days-mb N     size of the database of the simulated days (default 128)
//   --no-zip-days   simulated days for v2 only
//   --days-only     the simulated days alone (no pair of backups)
//   --days-format F the simulated days in format F alone (repository or zip)
//   --node24-only   skip the runs under this Node
//   --only diff     the diff of the first backup against the live database alone (Node 24,
//                   no second backup, restores or simulated days)
import { execFileSync, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { closeSync, mkdirSync, openSync, readSync, rmSync, statSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { baseDb, change, CHANGE, CLI, cliBackup, copyDb, dirBytes, KB, listed, MB, NODE24, onDisk, pct, secs, setFormat, sql, timed, work } from './lib.mjs';

const argv = process.argv.slice(2);
const num = (flag, dflt) => (argv.includes(flag) ? Number(argv[argv.indexOf(flag) + 1]) : dflt);
const pairMB = num('--mb', 1024);
const days = num('--days', 200);
const daysMB = num('--days-mb', 128);
const dayFormats = argv.includes('--days-format') ? [argv[argv.indexOf('--days-format') + 1]] : argv.includes('--no-zip-days') ? ['repository'] : ['repository', 'zip'];
const pairRun = !argv.includes('--days-only');
const onlyDiff = argv.includes('--only') && argv[argv.indexOf('--only') + 1] === 'diff';
// Its own folder with --days-only, so that it can run beside a run of the pair.
const scratch = path.join(work, pairRun ? 'incremental' : `incremental-days-${dayFormats.join('-')}`);
const CHILD = path.resolve('dist/bench-child.js');

for (const tool of ['sqlite3', 'gzip', 'cp', 'cmp', '/usr/bin/time']) {
  if (spawnSync('sh', ['-c', `command -v ${tool}`]).status !== 0) {
    console.error(`bench needs ${tool} (Debian: apt-get install sqlite3 gzip coreutils diffutils time)`);
    process.exit(1);
  }
}
if (spawnSync(NODE24, ['-e', "if (typeof require('node:sqlite').backup !== 'function') process.exit(1)"]).status !== 0) {
  console.error(`bench: ${NODE24} with node:sqlite backup() is missing (scripts/vscode/setup.sh installs it)`);
  process.exit(1);
}
const version = (exe) => spawnSync(exe, ['-p', 'process.versions.node'], { encoding: 'utf8' }).stdout.trim();
const runtimes = [
  { name: 'node24', exe: NODE24, label: `Node ${version(NODE24)} (node:sqlite)` },
  ...(argv.includes('--node24-only') || onlyDiff ? [] : [{ name: 'node20', exe: process.execPath, label: `Node ${process.versions.node} (reader, sql.js)` }]),
];

const load = os.loadavg();
const startedAt = new Date();
console.log(`incremental bench, ${startedAt.toISOString()}: ${os.cpus().length} cores, load average ${load.map((l) => l.toFixed(2)).join(' ')}`);


/**
 * SHA-1 of every page of `db` as SQLite sees it (main file plus WAL): a copy is
 * checkpointed by sqlite3 and hashed, so the live file and its WAL stay as they are.
 */
function pageHashes(db) {
  const copy = path.join(scratch, 'hash-copy.db');
  copyDb(db, copy);
  sql(copy, 'PRAGMA wal_checkpoint(TRUNCATE);');
  const fd = openSync(copy, 'r');
  const head = Buffer.alloc(100);
  readSync(fd, head, 0, 100, 0);
  const pageSize = head.readUInt16BE(16) === 1 ? 65536 : head.readUInt16BE(16);
  const size = statSync(copy).size;
  const count = size / pageSize;
  const out = Buffer.alloc(count * 20);
  const chunk = Buffer.alloc(pageSize * 256);
  for (let page = 0; page < count; ) {
    const n = readSync(fd, chunk, 0, Math.min(chunk.length, (count - page) * pageSize), page * pageSize);
    for (let at = 0; at + pageSize <= n; at += pageSize, page++) createHash('sha1').update(chunk.subarray(at, at + pageSize)).digest().copy(out, page * 20);
  }
  closeSync(fd);
  for (const s of ['', '-wal', '-shm']) rmSync(copy + s, { force: true });
  return { count, hashes: out };
}

function changedPages(a, b) {
  let n = Math.abs(a.count - b.count);
  for (let i = 0; i < Math.min(a.count, b.count); i++) if (a.hashes.compare(b.hashes, i * 20, i * 20 + 20, i * 20, i * 20 + 20) !== 0) n++;
  return n;
}


rmSync(scratch, { recursive: true, force: true });
mkdirSync(scratch, { recursive: true });

// --- The pair of backups, 1 GB -------------------------------------------------------
const pair = [];
let native;
let changeInfo;
for (const rt of pairRun ? runtimes : []) {
  const base = baseDb(pairMB);
  const home = path.join(scratch, rt.name);
  mkdirSync(home, { recursive: true });
  const db = path.join(home, 'app.db');
  copyDb(base, db);
  // Committed frames left in the WAL, as a live app would (the same update as bench/backup.mjs).
  sql(db, `.dbconfig no_ckpt_on_close on\nPRAGMA wal_autocheckpoint=0;\nUPDATE events SET kind = 'touched' WHERE id % 50 = 0;\n`);
  const v2 = path.join(home, 'v2');
  const v1 = path.join(home, 'v1');
  const r = { rt, dbMB: onDisk(db) / 1048576 };
  console.log(`${rt.label}: ${r.dbMB.toFixed(0)} MB WAL database (${MB(statSync(`${db}-wal`).size)} of it in the WAL)`);
  execFileSync('sh', ['-c', `cat '${db}' '${db}-wal' > /dev/null`]);
  setFormat(db, 'repository');
  r.first = cliBackup(rt, db, v2);
  console.log(`  first v2 backup: ${secs(r.first.s)}, ${MB(r.first.storedBytes)} stored, ${r.first.rssMB.toFixed(0)} MB RSS`);
  const before = changeInfo ? undefined : pageHashes(db);
  const rows = change(db, 1, true);
  if (!changeInfo) {
    const after = pageHashes(db);
    changeInfo = { rows, changed: changedPages(before, after), pages: after.count };
    console.log(`  changed ${rows} rows: ${changeInfo.changed} of ${changeInfo.pages} pages differ (${pct(changeInfo.changed / changeInfo.pages)})`);
  }
  if (!native && !onlyDiff) {
    // The native pipeline on the same state: VACUUM INTO on a copy (sqlite3's close would checkpoint this one).
    const src = path.join(scratch, 'native-src.db');
    const vac = path.join(scratch, 'native-vacuum.db');
    copyDb(db, src);
    execFileSync('sh', ['-c', `cat '${src}' '${src}-wal' > /dev/null`]);
    const v = timed('sqlite3', [src, `VACUUM INTO '${vac}'`]);
    const g = timed('sh', ['-c', `gzip -1 -c '${vac}' > '${vac}.gz'`]);
    const ic = timed('sqlite3', [vac, 'PRAGMA integrity_check']);
    native = { vacuum: v.s, gzip: g.s, check: ic.s, total: v.s + g.s + ic.s, gzBytes: statSync(`${vac}.gz`).size };
    for (const f of [src, `${src}-wal`, `${src}-shm`, vac, `${vac}.gz`]) rmSync(f, { force: true });
    console.log(`  native pipeline: ${secs(native.total)} (VACUUM INTO ${secs(v.s)}, gzip -1 ${secs(g.s)}, integrity_check ${secs(ic.s)})`);
  }
  if (!onlyDiff) r.second = cliBackup(rt, db, v2);
  if (!onlyDiff) console.log(`  second v2 backup: ${secs(r.second.s)}, ${KB(r.second.storedBytes)} stored (${r.second.addedPages} pages), ${r.second.rssMB.toFixed(0)} MB RSS`);
  // diff of the first backup against the live database (about 1% of its rows changed),
  // against sqlite3 computing the same counts on the two files (the first backup's image,
  // exported untimed, and a checkpointed copy of the live database), ATTACH + EXCEPT.
  // Under node:sqlite only: diff needs it.
  if (rt.name === 'node24') {
    const old = path.join(scratch, 'diff-old.db');
    const now = path.join(scratch, 'diff-now.db');
    execFileSync(rt.exe, [CLI, 'export', r.first.path, '--to', old, '--force']);
    copyDb(db, now);
    sql(now, 'PRAGMA wal_checkpoint(TRUNCATE);');
    execFileSync('sh', ['-c', `cat '${db}' '${db}-wal' '${old}' > /dev/null`]);
    // Two rounds, alternating, the faster of each kept (the peak RSS of both): a shared
    // machine's load moves single runs a lot.
    let d;
    let n;
    for (let round = 0; round < 2; round++) {
      const dd = timed(rt.exe, [CLI, 'diff', r.first.path, '--live', db, '--json']);
      d = !d || dd.s < d.s ? { ...dd, rssMB: Math.max(dd.rssMB, d?.rssMB ?? 0) } : { ...d, rssMB: Math.max(d.rssMB, dd.rssMB) };
      const nn = timed('sqlite3', [
        old,
        `ATTACH '${now}' AS b;
SELECT count(*) FROM (SELECT id FROM b.events EXCEPT SELECT id FROM main.events);
SELECT count(*) FROM (SELECT id FROM main.events EXCEPT SELECT id FROM b.events);
SELECT count(*) FROM (SELECT * FROM b.events EXCEPT SELECT * FROM main.events) WHERE id IN (SELECT id FROM main.events);`,
      ]);
      n = !n || nn.s < n.s ? nn : n;
      console.log(`    round ${round + 1}: diff ${secs(dd.s)} (${dd.rssMB.toFixed(0)} MB RSS), sqlite3 ${secs(nn.s)}`);
    }
    const ours = JSON.parse(d.stdout).tables.events;
    const [added, removed, changed] = n.stdout.trim().split('\n').map(Number);
    r.diff = { s: d.s, rssMB: d.rssMB, native: n.s, same: ours.added === added && ours.removed === removed && ours.changed === changed, ours, theirs: { added, removed, changed } };
    console.log(`  diff of the first backup against the live database: ${secs(d.s)} (${d.rssMB.toFixed(0)} MB RSS), +${ours.added} -${ours.removed} ~${ours.changed}; sqlite3 EXCEPT on the two files ${secs(n.s)}: +${added} -${removed} ~${changed}${r.diff.same ? '' : ' (COUNTS DIFFER)'}`);
    for (const f of [old, now, `${now}-wal`, `${now}-shm`]) rmSync(f, { force: true });
  }
  if (onlyDiff) {
    pair.push(r);
    rmSync(home, { recursive: true, force: true });
    continue;
  }
  r.unchanged = cliBackup(rt, db, v2);
  console.log(`  unchanged: ${secs(r.unchanged.s)}, ${KB(r.unchanged.storedBytes)} stored${r.unchanged.unchangedFrom ? ' (a manifest only)' : ''}, ${r.unchanged.rssMB.toFixed(0)} MB RSS`);
  setFormat(db, 'zip');
  r.zip = cliBackup(rt, db, v1);
  console.log(`  v1 zip of the same state: ${secs(r.zip.s)}, ${MB(r.zip.storedBytes)}, ${r.zip.rssMB.toFixed(0)} MB RSS`);
  // Restores to new files, in a folder without settings (the defaults).
  const out = path.join(home, 'restored');
  mkdirSync(out);
  // Two rounds, alternating, the faster of each kept: one restore is 25-35 s of disk and
  // SQLite work, and a shared machine's load moves single runs by a fifth.
  const fastest = (a, b) => (!a || b.s < a.s ? { ...b, rssMB: Math.max(b.rssMB, a?.rssMB ?? 0) } : { ...a, rssMB: Math.max(a.rssMB, b.rssMB) });
  for (let round = 0; round < 2; round++) {
    for (const f of ['v2.db', 'v1.db']) for (const s of ['', '-wal', '-shm']) rmSync(path.join(out, f + s), { force: true });
    r.restoreV2 = fastest(r.restoreV2, timed(rt.exe, [CLI, 'restore', r.second.path, '--to', path.join(out, 'v2.db')]));
    r.restoreV1 = fastest(r.restoreV1, timed(rt.exe, [CLI, 'restore', r.zip.path, '--to', path.join(out, 'v1.db')]));
  }
  r.sameImage = spawnSync('cmp', ['-s', path.join(out, 'v2.db'), path.join(out, 'v1.db')]).status === 0;
  console.log(`  restore --to: v2 ${secs(r.restoreV2.s)} (${r.restoreV2.rssMB.toFixed(0)} MB RSS), v1 ${secs(r.restoreV1.s)} (${r.restoreV1.rssMB.toFixed(0)} MB RSS); images ${r.sameImage ? 'identical' : 'DIFFER'}`);
  r.peakV2 = Math.max(r.first.rssMB, r.second.rssMB, r.unchanged.rssMB, r.restoreV2.rssMB);
  pair.push(r);
  rmSync(home, { recursive: true, force: true });
}

const ok = (good) => (good ? 'met' : 'MISSED');

// --- The table of the pair ----------------------------------------------------------------
if (pair.length && onlyDiff) {
  const r = pair[0];
  console.log(`\ndiff, ${r.dbMB.toFixed(0)} MB WAL database, ${changeInfo.rows} rows rewritten (${changeInfo.changed} of ${changeInfo.pages} pages differ); load average at the end ${os.loadavg().map((l) => l.toFixed(2)).join(' ')}`);
  console.log(`| diff of the first backup against the live database / sqlite3 EXCEPT (faster of two rounds each) | <= 1.5x | ${(r.diff.s / r.diff.native).toFixed(2)}x (${secs(r.diff.s)} / ${secs(r.diff.native)}), counts ${r.diff.same ? 'equal' : 'DIFFER'} ${r.diff.s <= 1.5 * r.diff.native && r.diff.same ? 'met' : 'MISSED'} |`);
  console.log(`| peak RSS of the diff | <= 200 MB | ${r.diff.rssMB.toFixed(0)} MB ${r.diff.rssMB <= 200 ? 'met' : 'MISSED'} |`);
} else if (pair.length) {
  console.log(`\nFormat v2 (page repository), ${pair[0].dbMB.toFixed(0)} MB WAL database; ${changeInfo.rows} rows rewritten between the two backups: ${changeInfo.changed} of ${changeInfo.pages} pages differ (${pct(changeInfo.changed / changeInfo.pages)}, page hashes of checkpointed copies)`);
  console.log(`started ${startedAt.toISOString()}, ${os.cpus().length} cores, load average at the start ${load.map((l) => l.toFixed(2)).join(' ')}, at the end ${os.loadavg().map((l) => l.toFixed(2)).join(' ')}`);
  console.log(`native pipeline on the second state: ${secs(native.total)} = VACUUM INTO ${secs(native.vacuum)} + gzip -1 ${secs(native.gzip)} (${MB(native.gzBytes)}) + integrity_check ${secs(native.check)}\n`);
  const cols = pair.map((r) => r.rt.label);
  const rows = [
    ['first v2 backup (every page)', '', (r) => `${secs(r.first.s)}, ${MB(r.first.storedBytes)} stored`],
    ['second v2 backup: stored / first backup stored', '<= 2%', (r) => `${pct(r.second.storedBytes / r.first.storedBytes)} (${KB(r.second.storedBytes)}) ${ok(r.second.storedBytes <= 0.02 * r.first.storedBytes)}`],
    ['second v2 backup: time / native pipeline', '<= 0.25x', (r) => `${(r.second.s / native.total).toFixed(2)}x (${secs(r.second.s)}) ${ok(r.second.s <= 0.25 * native.total)}`],
    ['backup of the unchanged database: time', '<= 2 s', (r) => `${secs(r.unchanged.s)} ${ok(r.unchanged.s <= 2)}`],
    ['backup of the unchanged database: stored', '<= 1 MB', (r) => `${KB(r.unchanged.storedBytes)} ${ok(r.unchanged.storedBytes <= 1048576)}`],
    ['restore --to of the second backup / of a v1 zip (faster of two rounds each)', '<= 1.2x', (r) => `${(r.restoreV2.s / r.restoreV1.s).toFixed(2)}x (${secs(r.restoreV2.s)} / ${secs(r.restoreV1.s)}) ${ok(r.restoreV2.s <= 1.2 * r.restoreV1.s)}`],
    ['peak RSS of the v2 CLI runs (backups, restore)', '<= 200 MB', (r) => `${r.peakV2.toFixed(0)} MB ${ok(r.peakV2 <= 200)}`],
    ['  first / second / unchanged / restore', '', (r) => [r.first, r.second, r.unchanged, r.restoreV2].map((x) => x.rssMB.toFixed(0)).join(' / ') + ' MB'],
    ['diff of the first backup against the live database / sqlite3 EXCEPT (faster of two rounds each)', '<= 1.5x', (r) => !r.diff ? 'needs node:sqlite' : `${(r.diff.s / r.diff.native).toFixed(2)}x (${secs(r.diff.s)} / ${secs(r.diff.native)}), counts ${r.diff.same ? 'equal' : 'DIFFER'} ${ok(r.diff.s <= 1.5 * r.diff.native && r.diff.same)}`],
    ['peak RSS of the diff', '<= 200 MB', (r) => (!r.diff ? '-' : `${r.diff.rssMB.toFixed(0)} MB ${ok(r.diff.rssMB <= 200)}`)],
    ['v1 zip of the second state (for reference)', '', (r) => `${secs(r.zip.s)}, ${MB(r.zip.storedBytes)}, ${r.zip.rssMB.toFixed(0)} MB RSS`],
  ];
  console.log(`| measure | target | ${cols.join(' | ')} |`);
  console.log(`| --- | --- | ${cols.map(() => '---').join(' | ')} |`);
  for (const [label, target, f] of rows) console.log(`| ${label} | ${target} | ${pair.map(f).join(' | ')} |`);
}

// --- Simulated days ---------------------------------------------------------------------
const DAY_MS = 24 * 3600 * 1000;
const day0 = Date.parse('2026-01-01T02:00:00Z');
if (days > 0 && !onlyDiff) {
  const dbase = baseDb(daysMB);
  console.log(
    `\n${days} simulated days under ${runtimes[0].label}: the engine with a clock fixed at 02:00 UTC of each day from 2026-01-01 (dist/bench-child.js day), a scheduled backup a day, default rotation (30 daily, 12 weekly, 12 monthly, keep 2d); ${daysMB} MB database, about ${pct(CHANGE)} of its pages rewritten a day. Load average now ${os.loadavg().map((l) => l.toFixed(2)).join(' ')}.`,
  );
  for (const format of dayFormats) {
    const home = path.join(scratch, `days-${format}`);
    mkdirSync(home, { recursive: true });
    const db = path.join(home, 'app.db');
    copyDb(dbase, db);
    const dir = path.join(home, 'backups');
    const t0 = performance.now();
    const s = { format, days, secs: [], rssMB: 0, rssDay: 0, stored: [], changedPages: 0, pages: 0, maxRatio: 0 };
    for (let d = 0; d < days; d++) {
      if (d > 0) change(db, 1000 + d, false);
      const r = timed(NODE24, [CHILD, 'day', db, dir, new Date(day0 + d * DAY_MS).toISOString(), format]);
      const out = JSON.parse(r.stdout.trim().split('\n').at(-1));
      s.secs.push(r.s);
      if (r.rssMB > s.rssMB) [s.rssMB, s.rssDay] = [r.rssMB, d + 1];
      s.stored.push(out.day.storedBytes);
      if (d > 0 && out.day.addedPages !== undefined) {
        s.changedPages += out.day.addedPages;
        s.pages += out.day.pageCount;
      }
      s.maxRatio = Math.max(s.maxRatio, dirBytes(dir) / onDisk(db));
      if ((d + 1) % 25 === 0) console.log(`  ${format}, day ${d + 1}: backups ${(dirBytes(dir) / onDisk(db)).toFixed(2)}x the database, ${((performance.now() - t0) / 1000).toFixed(0)} s so far`);
    }
    s.dbBytes = onDisk(db);
    s.dirBytes = dirBytes(dir);
    s.kept = listed(runtimes[0], dir).size;
    s.wallS = (performance.now() - t0) / 1000;
    rmSync(home, { recursive: true, force: true });
    const ratio = s.dirBytes / s.dbBytes;
    const mean = s.secs.reduce((a, b) => a + b, 0) / s.secs.length;
    const daily = s.stored.slice(1).reduce((a, b) => a + b, 0) / Math.max(1, s.stored.length - 1);
    const v2 = format === 'repository';
    console.log(`| ${days} days, ${v2 ? 'v2' : 'v1 zips'}, ${MB(s.dbBytes)} database | target | result |`);
    console.log('| --- | --- | --- |');
    console.log(`| backup folder / database at the end | ${v2 ? '<= 6x' : '(20.9x before)'} | ${ratio.toFixed(2)}x (${MB(s.dirBytes)})${v2 ? ` ${ok(ratio <= 6)}` : ''} |`);
    console.log(`| largest on any day | | ${s.maxRatio.toFixed(2)}x |`);
    console.log(`| backups kept | | ${s.kept} |`);
    console.log(`| stored per day (after the first) | | ${KB(daily)}${s.pages ? ` (${pct(s.changedPages / s.pages)} of the pages new)` : ''} |`);
    console.log(`| backup time per day, mean (max); peak RSS | | ${secs(mean)} (${secs(Math.max(...s.secs))}); ${s.rssMB.toFixed(0)} MB (day ${s.rssDay}) |`);
    console.log(`| wall time of the ${days} days | | ${(s.wallS / 60).toFixed(1)} min, load average now ${os.loadavg().map((l) => l.toFixed(2)).join(' ')} |\n`);
  }
}


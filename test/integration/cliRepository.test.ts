// cliRepository: the CLI over format v2 (a page repository), run as users run it: the
// built dist/cli.js on real SQLite files made by the sqlite3 shell, in real folders.
// Backups are named by the path `backup` prints or by their id with --dir; export writes
// files that need no Lifeboat; stats and rotate report the repository's bytes.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, openSync, readdirSync, readFileSync, closeSync, writeSync, readSync, statSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { Engine } from '../../src/core/engine';
import { formatBytes } from '../../src/core/units';
import { backupDirOf, backupIdOf, backupName, isSnapshotPath, saveAsName } from '../../src/extension/backupFiles';
import { backupTooltip } from '../../src/extension/format';
import { ensureBuilt, lifeboat, type CliResult } from '../fixtures/cli';
import { dumpHash, makeDb, query, sqlite, tempDir } from '../fixtures/sqlite';

before(() => ensureBuilt());

interface Workspace {
  ws: string;
  db: string;
  dir: string;
}

/** A folder with app.db (made by sqlite3) and a lifeboat.json beside it. */
function workspace(root: string, name: string, settings: Record<string, unknown>, rows = 2000): Workspace {
  const ws = path.join(root, name);
  mkdirSync(ws);
  const db = path.join(ws, 'app.db');
  makeDb(db, { rows });
  writeFileSync(path.join(ws, 'lifeboat.json'), JSON.stringify(settings));
  return { ws, db, dir: path.join(ws, 'backups') };
}

function sha256File(f: string): string {
  return createHash('sha256').update(readFileSync(f)).digest('hex');
}

/** The files directly in `dir` (none when it is missing), with their sizes. */
function filesIn(dir: string): Map<string, number> {
  const out = new Map<string, number>();
  if (!existsSync(dir)) return out;
  for (const e of readdirSync(dir, { withFileTypes: true })) if (e.isFile()) out.set(e.name, statSync(path.join(dir, e.name)).size);
  return out;
}

/** Bytes of the store's backup objects on disk: the top level, snapshots/ and packs/ (not .lifeboat/). */
function storeBytes(dir: string): number {
  let n = 0;
  for (const sub of ['', 'snapshots', 'packs']) for (const size of filesIn(path.join(dir, sub)).values()) n += size;
  return n;
}

/** Every file of the store (bookkeeping in .lifeboat/ aside) with its size, for "nothing changed". */
function storeFiles(dir: string): Record<string, number> {
  const out: Record<string, number> = {};
  for (const sub of ['', 'snapshots', 'packs']) for (const [n, size] of filesIn(path.join(dir, sub))) out[path.join(sub, n)] = size;
  return out;
}

interface ListedBackup {
  id: string;
  path: string;
  object: string;
  format: string;
  size: number;
  storedBytes: number;
  pinned: boolean;
}

async function listed(dir: string): Promise<ListedBackup[]> {
  const l = await lifeboat(['list', '--dir', dir, '--json']);
  assert.equal(l.code, 0, l.stderr);
  return JSON.parse(l.stdout).backups as ListedBackup[];
}

async function backup(w: Workspace, ...args: string[]): Promise<string> {
  const b = await lifeboat(['backup', w.db, ...args]);
  assert.equal(b.code, 0, b.stderr);
  const lines = b.stdout.trim().split('\n');
  return lines[lines.length - 1];
}

function expectOneLine(r: CliResult): void {
  assert.equal(r.stderr.trim().split('\n').length, 1, r.stderr);
}

describe('cliRepository: backup prints the file that makes the backup visible', () => {
  const t = tempDir();
  after(() => t.cleanup());

  test('repository format: the snapshot manifest, last; storedBytes is what the backup added', async () => {
    const w = workspace(t.dir, 'repo', { format: 'repository' });
    const first = await backup(w);
    assert.equal(path.dirname(first), path.join(w.dir, 'snapshots'));
    assert.match(path.basename(first), /^app-\d{8}T\d{9}Z-manual\.json$/);
    const m = JSON.parse(readFileSync(first, 'utf8'));
    assert.equal(m.formatVersion, 2);
    assert.equal(m.id, path.basename(first, '.json'));
    sqlite(w.db, "UPDATE items SET name = 'changed' WHERE id = 7;");
    const second = await backup(w);
    assert.notEqual(second, first);
    const m2 = JSON.parse(readFileSync(second, 'utf8'));

    const backups = await listed(w.dir);
    assert.deepEqual(backups.map((b) => b.path), [second, first]);
    for (const [b, man] of [
      [backups[0], m2],
      [backups[1], m],
    ] as const) {
      assert.equal(b.format, 'repository');
      assert.equal(b.object, `snapshots/${man.id}.json`);
      // Its manifest plus the packs it added, as they are on disk.
      const added = (man.repository.added.packs as string[]).reduce((n, p) => n + statSync(path.join(w.dir, p)).size, 0);
      assert.equal(b.storedBytes, statSync(b.path).size + added, b.id);
      assert.equal(b.size, b.storedBytes);
    }
    assert.ok(backups[0].storedBytes * 4 < backups[1].storedBytes, `one changed row stores little: ${backups[0].storedBytes} vs ${backups[1].storedBytes}`);
  });

  test('--help names export, --deep and ids with --dir', async () => {
    const h = await lifeboat(['--help']);
    assert.equal(h.code, 0, h.stderr);
    for (const line of [
      'lifeboat verify <backup> | --all [--dir D] [--deep] [--json]',
      'lifeboat restore <backup> [--to PATH] [--dir D] [--force] [--json]',
      'lifeboat export <backup> --to FILE [--dir D] [--force] [--json]',
      'lifeboat pin <backup> [--dir D] | unpin <backup> [--dir D]',
    ]) {
      assert.ok(h.stdout.includes(line), line);
    }
  });

  test('zip format: the zip, last; storedBytes is its size', async () => {
    const w = workspace(t.dir, 'zip', { format: 'zip' });
    const zip = await backup(w);
    assert.equal(path.dirname(zip), w.dir);
    assert.match(path.basename(zip), /^app-\d{8}T\d{9}Z-manual\.zip$/);
    const [b] = await listed(w.dir);
    assert.equal(b.path, zip);
    assert.equal(b.format, 'zip');
    assert.equal(b.storedBytes, statSync(zip).size);
  });
});

describe('cliRepository: a backup named by its path or by its id with --dir', () => {
  const t = tempDir();
  after(() => t.cleanup());

  test('verify, restore, export, pin and unpin take either', async () => {
    const w = workspace(t.dir, 'ws', { format: 'repository' });
    const expected = dumpHash(w.db);
    const manifestPath = await backup(w);
    const id = path.basename(manifestPath, '.json');
    const manifest = JSON.parse(readFileSync(manifestPath, 'utf8'));
    sqlite(w.db, 'DELETE FROM items WHERE id > 100;');
    const ways: [string, string[]][] = [
      ['id', [id, '--dir', w.dir]],
      ['path', [manifestPath]],
    ];
    let ran = 0;
    for (const [way, ref] of ways) {
      const v = await lifeboat(['verify', ...ref, '--json']);
      assert.equal(v.code, 0, `${way}: ${v.stdout}${v.stderr}`);
      const vr = JSON.parse(v.stdout);
      assert.equal(vr.ok, true);
      assert.deepEqual(vr.results.map((r: { archive: string }) => r.archive), [manifestPath]);

      const deep = await lifeboat(['verify', ...ref, '--deep']);
      assert.equal(deep.code, 0, `${way}: ${deep.stdout}${deep.stderr}`);
      assert.match(deep.stdout, new RegExp(`^ok\\s+${manifestPath.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}`));

      const out = path.join(w.ws, `restored-by-${way}.db`);
      const r = await lifeboat(['restore', ...ref, '--to', out, '--json']);
      assert.equal(r.code, 0, `${way}: ${r.stderr}`);
      assert.equal(JSON.parse(r.stdout).restored, id);
      assert.equal(dumpHash(out), expected, `${way}: the restored file holds the backed-up content`);

      const exported = path.join(w.ws, `exported-by-${way}.sqlite`);
      const e = await lifeboat(['export', ...ref, '--to', exported]);
      assert.equal(e.code, 0, `${way}: ${e.stderr}`);
      assert.equal(e.stdout.trim(), `exported ${id} as an SQLite database (${formatBytes(manifest.image.size)}) to ${exported}`);
      assert.equal(sha256File(exported), manifest.image.sha256, `${way}: the export is the backed-up image, byte for byte`);

      const pin = await lifeboat(['pin', ...ref]);
      assert.equal(pin.code, 0, `${way}: ${pin.stderr}`);
      assert.equal(pin.stdout.trim(), `pinned ${manifestPath}`);
      assert.equal((await listed(w.dir))[0].pinned, true, `${way}: pinned`);
      const unpin = await lifeboat(['unpin', ...ref]);
      assert.equal(unpin.code, 0, `${way}: ${unpin.stderr}`);
      assert.equal((await listed(w.dir))[0].pinned, false, `${way}: unpinned`);
      ran++;
    }
    assert.equal(ran, ways.length);
    // The live database was not touched by any of it.
    assert.equal(query<{ n: number }>(w.db, 'SELECT count(*) AS n FROM items')[0].n, 100);
  });

  test('an id that is not there: one error naming the id and the directory, exit 1, nothing written', async () => {
    const w = workspace(t.dir, 'bad', { format: 'repository' });
    await backup(w);
    const before = storeFiles(w.dir);
    const target = path.join(w.ws, 'target.db');
    const commands: string[][] = [['verify'], ['verify', '--deep'], ['restore', '--to', target], ['export', '--to', target], ['pin'], ['unpin']];
    let ran = 0;
    for (const c of commands) {
      const r = await lifeboat([c[0], 'app-20990101T000000000Z-manual', ...c.slice(1), '--dir', w.dir]);
      assert.equal(r.code, 1, `${c.join(' ')}: ${r.stdout}${r.stderr}`);
      expectOneLine(r);
      assert.ok(r.stderr.includes('app-20990101T000000000Z-manual') && r.stderr.includes(w.dir), `${c.join(' ')}: ${r.stderr}`);
      assert.equal(r.stdout, '');
      assert.ok(!existsSync(target), `${c.join(' ')} wrote nothing`);
      ran++;
    }
    assert.equal(ran, commands.length);
    const missingDir = path.join(w.ws, 'nowhere');
    const r = await lifeboat(['verify', 'some-id', '--dir', missingDir]);
    assert.equal(r.code, 1, r.stderr);
    expectOneLine(r);
    assert.ok(r.stderr.includes('some-id') && r.stderr.includes(missingDir), r.stderr);
    assert.ok(!existsSync(missingDir), 'looking up an id creates no directory');
    assert.deepEqual(storeFiles(w.dir), before);
  });

  test('verify --deep reads every byte of the packs the backup uses', async () => {
    const w = workspace(t.dir, 'deep', { format: 'repository' });
    const manifestPath = await backup(w);
    const manifest = JSON.parse(readFileSync(manifestPath, 'utf8'));
    const pack = path.join(w.dir, manifest.repository.packs[0]);
    // Damage the pack's magic: no page lives there, so only a read of every byte sees it.
    const fd = openSync(pack, 'r+');
    const b = Buffer.alloc(1);
    readSync(fd, b, 0, 1, 0);
    writeSync(fd, Buffer.from([b[0] ^ 0xff]), 0, 1, 0);
    closeSync(fd);
    const shallow = await lifeboat(['verify', manifestPath, '--json']);
    assert.equal(shallow.code, 0, `without --deep only the pages the image needs are read: ${shallow.stdout}${shallow.stderr}`);
    const deep = await lifeboat(['verify', manifestPath, '--deep', '--json']);
    assert.equal(deep.code, 3, deep.stdout + deep.stderr);
    const dr = JSON.parse(deep.stdout);
    assert.equal(dr.ok, false);
    assert.ok(dr.results[0].problems.some((p: string) => p.includes(path.basename(pack))), JSON.stringify(dr.results[0].problems));
  });
});

describe('cliRepository: export writes files that need no Lifeboat', () => {
  const t = tempDir();
  after(() => t.cleanup());

  test('to .sqlite: the image itself, sqlite3 reads it; to .zip: an archive unzip lists and verify accepts', async () => {
    const w = workspace(t.dir, 'ws', { format: 'repository' });
    const manifestPath = await backup(w);
    const id = path.basename(manifestPath, '.json');
    const manifest = JSON.parse(readFileSync(manifestPath, 'utf8'));
    const expected = dumpHash(w.db);

    const out = path.join(t.dir, 'copy.sqlite');
    const e = await lifeboat(['export', id, '--dir', w.dir, '--to', out, '--json']);
    assert.equal(e.code, 0, e.stderr);
    const er = JSON.parse(e.stdout);
    assert.deepEqual([er.exported, er.path, er.as, er.size, er.imageSha256], [id, out, 'sqlite', manifest.image.size, manifest.image.sha256]);
    assert.equal(sha256File(out), manifest.image.sha256);
    assert.equal(statSync(out).size, manifest.image.size);
    assert.equal(sqlite(out, 'PRAGMA integrity_check;').trim(), 'ok');
    assert.equal(query<{ n: number }>(out, 'SELECT count(*) AS n FROM items')[0].n, 2000);
    assert.equal(dumpHash(out), expected);

    const zip = path.join(t.dir, 'copy.zip');
    const z = await lifeboat(['export', manifestPath, '--to', zip, '--json']);
    assert.equal(z.code, 0, z.stderr);
    const zr = JSON.parse(z.stdout);
    assert.deepEqual([zr.as, zr.path, zr.size], ['zip', zip, statSync(zip).size]);
    const names = execFileSync('unzip', ['-Z1', zip], { encoding: 'utf8' }).trim().split('\n').sort();
    assert.deepEqual(names, ['database.sqlite', 'manifest.json']);
    const listing = execFileSync('unzip', ['-l', zip], { encoding: 'utf8' });
    assert.match(listing, new RegExp(`\\b${manifest.image.size}\\s+\\S+\\s+\\S+\\s+database\\.sqlite`));
    const inner = JSON.parse(execFileSync('unzip', ['-p', zip, 'manifest.json'], { encoding: 'utf8' }));
    assert.deepEqual([inner.formatVersion, inner.id, inner.image.sha256, inner.repository], [1, id, manifest.image.sha256, undefined]);
    const v = await lifeboat(['verify', zip, '--json']);
    assert.equal(v.code, 0, v.stdout + v.stderr);
    assert.equal(JSON.parse(v.stdout).ok, true);
    const back = path.join(t.dir, 'from-zip.db');
    const r = await lifeboat(['restore', zip, '--to', back]);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(dumpHash(back), expected);
  });

  test('an existing target is refused without --force and left as it was; --force replaces it', async () => {
    const w = workspace(t.dir, 'force', { format: 'repository' });
    const manifestPath = await backup(w);
    const manifest = JSON.parse(readFileSync(manifestPath, 'utf8'));
    const folder = path.join(t.dir, 'out');
    mkdirSync(folder);
    const targets = [path.join(folder, 'keep.db'), path.join(folder, 'keep.zip')];
    let ran = 0;
    for (const target of targets) {
      writeFileSync(target, 'my own file, not to be lost\n');
      const r = await lifeboat(['export', manifestPath, '--to', target]);
      assert.equal(r.code, 1, r.stdout + r.stderr);
      expectOneLine(r);
      assert.ok(r.stderr.includes(target) && r.stderr.includes('--force'), r.stderr);
      assert.equal(readFileSync(target, 'utf8'), 'my own file, not to be lost\n');
      ran++;
    }
    assert.equal(ran, targets.length);
    assert.deepEqual(readdirSync(folder).sort(), ['keep.db', 'keep.zip'], 'no partial file is left');
    const f = await lifeboat(['export', manifestPath, '--to', targets[0], '--force']);
    assert.equal(f.code, 0, f.stderr);
    assert.equal(sha256File(targets[0]), manifest.image.sha256);
    assert.deepEqual(readdirSync(folder).sort(), ['keep.db', 'keep.zip']);
    const usage = await lifeboat(['export', manifestPath]);
    assert.equal(usage.code, 2, 'export without --to is a usage error');
    assert.match(usage.stderr, /--to/);
    // Over the live database, even with --force: that is a restore (in-use check, pre-restore backup).
    sqlite(w.db, 'DELETE FROM items WHERE id > 10;');
    const live = dumpHash(w.db);
    const liveBytes = sha256File(w.db);
    const over = await lifeboat(['export', manifestPath, '--to', w.db, '--force']);
    assert.equal(over.code, 2, over.stdout + over.stderr);
    expectOneLine(over);
    assert.ok(over.stderr.includes(w.db) && over.stderr.includes('restore'), over.stderr);
    assert.equal(sha256File(w.db), liveBytes, 'the live database is untouched');
    assert.equal(dumpHash(w.db), live);
  });
});

describe('cliRepository: stats and rotate report the repository in bytes', () => {
  const t = tempDir();
  after(() => t.cleanup());

  test('stats --json: repositoryBytes, fullCopyBytes and a dedup ratio above 1 after two backups with few changes', async () => {
    const w = workspace(t.dir, 'stats', { format: 'repository' });
    const first = await backup(w);
    sqlite(w.db, "UPDATE items SET qty = 1000 WHERE id = 3; INSERT INTO items(name, qty) VALUES ('one more', 1);");
    const second = await backup(w);
    const images = [first, second].map((p) => JSON.parse(readFileSync(p, 'utf8')).image.size as number);
    const s = await lifeboat(['stats', '--dir', w.dir, '--json']);
    assert.equal(s.code, 0, s.stderr);
    const st = JSON.parse(s.stdout);
    assert.equal(st.count, 2);
    assert.equal(st.repositoryBytes, storeBytes(w.dir));
    assert.equal(st.fullCopyBytes, images[0] + images[1]);
    assert.equal(st.dedupRatio, st.fullCopyBytes / st.repositoryBytes);
    assert.ok(st.dedupRatio > 1, `dedup ratio ${st.dedupRatio}`);
    // Each page is stored once: the two backups together take little more than the first.
    const backups = await listed(w.dir);
    assert.equal(st.repositoryBytes, backups.reduce((n, b) => n + b.storedBytes, 0));
    assert.ok(st.repositoryBytes < 1.25 * backups[1].storedBytes, `${st.repositoryBytes} on disk, the first backup alone ${backups[1].storedBytes}`);

    const human = await lifeboat(['stats', '--dir', w.dir]);
    assert.equal(human.code, 0, human.stderr);
    assert.match(human.stdout, new RegExp(`^on disk\\s+${formatBytes(st.repositoryBytes)} `, 'm'));
    assert.match(human.stdout, new RegExp(`^full copies\\s+${formatBytes(st.fullCopyBytes)} `, 'm'));
    assert.match(human.stdout, new RegExp(`^dedup ratio\\s+${st.dedupRatio.toFixed(2)}x$`, 'm'));

    const empty = await lifeboat(['stats', '--dir', path.join(t.dir, 'none'), '--json']);
    assert.equal(empty.code, 0, empty.stderr);
    const es = JSON.parse(empty.stdout);
    assert.deepEqual([es.repositoryBytes, es.fullCopyBytes, es.dedupRatio], [0, 0, null]);
  });

  test('rotate --dry-run --json shows the bytes it would free and deletes nothing; rotate then frees them', async () => {
    // Three migration backups kept without limit; then a limit of one: the two older go.
    const w = workspace(t.dir, 'rotate', { format: 'repository', retention: { keepEventBackups: 0 } });
    const made: string[] = [];
    for (let i = 0; i < 3; i++) {
      // The same row and page 1 change each time: the middle backup's pack holds only pages the newest replaced.
      sqlite(w.db, `UPDATE items SET qty = ${1000 + i} WHERE id = 1;`);
      made.push(await backup(w, '--kind', 'migration'));
    }
    assert.equal((await listed(w.dir)).length, 3, 'no limit: rotation after each backup kept all three');
    writeFileSync(path.join(w.ws, 'lifeboat.json'), JSON.stringify({ format: 'repository', retention: { keepEventBackups: 1 } }));
    const manifests = made.map((p) => JSON.parse(readFileSync(p, 'utf8')));
    const kept = new Set(manifests[2].repository.packs as string[]);
    const unused = [...filesIn(path.join(w.dir, 'packs'))].filter(([n]) => !kept.has(`packs/${n}`));
    assert.ok(unused.length >= 1, 'the older backups have packs the newest does not use');
    const unusedBytes = unused.reduce((n, [, size]) => n + size, 0);
    const removedManifestBytes = made.slice(0, 2).reduce((n, p) => n + statSync(p).size, 0);
    const before = storeFiles(w.dir);
    const bytesBefore = storeBytes(w.dir);

    const dry = await lifeboat(['rotate', '--dir', w.dir, '--dry-run', '--json']);
    assert.equal(dry.code, 0, dry.stderr);
    const plan = JSON.parse(dry.stdout);
    assert.equal(plan.dryRun, true);
    assert.deepEqual(plan.keep.map((k: { id: string }) => k.id), [manifests[2].id]);
    assert.deepEqual(plan.remove.map((r: { id: string }) => r.id), [manifests[1].id, manifests[0].id]);
    assert.deepEqual(
      plan.remove.map((r: { bytes: number }) => r.bytes),
      [made[1], made[0]].map((p) => statSync(p).size),
    );
    assert.deepEqual(plan.prune, { packs: unused.length, bytes: unusedBytes });
    assert.equal(plan.freedBytes, unusedBytes + removedManifestBytes);
    assert.deepEqual(storeFiles(w.dir), before, 'a dry run deletes nothing');
    assert.equal((await listed(w.dir)).length, 3);

    const human = await lifeboat(['rotate', '--dir', w.dir, '--dry-run']);
    assert.equal(human.code, 0, human.stderr);
    const lines = human.stdout.trim().split('\n');
    assert.equal(lines.filter((l) => l.startsWith('would delete')).length, 2, human.stdout);
    assert.ok(lines.includes(`would prune   ${unused.length} pack(s) no kept backup uses  ${formatBytes(unusedBytes)}`), human.stdout);
    assert.equal(lines[lines.length - 1], `would free    ${formatBytes(plan.freedBytes)}`);
    assert.deepEqual(storeFiles(w.dir), before, 'a dry run deletes nothing');

    const real = await lifeboat(['rotate', '--dir', w.dir, '--json']);
    assert.equal(real.code, 0, real.stderr);
    const done = JSON.parse(real.stdout);
    assert.equal(done.dryRun, false);
    assert.equal(done.freedBytes, plan.freedBytes);
    assert.equal(bytesBefore - storeBytes(w.dir), plan.freedBytes, 'what the plan said is what was freed');
    assert.deepEqual((await listed(w.dir)).map((b) => b.id), [manifests[2].id]);
    const exported = path.join(t.dir, 'kept.db');
    const e = await lifeboat(['export', manifests[2].id, '--dir', w.dir, '--to', exported]);
    assert.equal(e.code, 0, e.stderr);
    assert.equal(sha256File(exported), manifests[2].image.sha256, 'the kept backup is whole after the prune');
  });
});

describe('cliRepository: the extension names backups of both formats by what the CLI prints', () => {
  const t = tempDir();
  after(() => t.cleanup());

  test('directory, id, name and tooltip of a snapshot manifest and of a zip', async () => {
    const cases = [
      { w: workspace(t.dir, 'repo', { format: 'repository' }), format: 'repository', label: 'repository snapshot' },
      { w: workspace(t.dir, 'zip', { format: 'zip' }), format: 'zip', label: 'zip archive' },
    ];
    let ran = 0;
    for (const c of cases) {
      const printed = await backup(c.w);
      const [record] = (await new Engine().list(c.w.dir)).records;
      assert.equal(record.path, printed);
      assert.equal(record.format, c.format);
      assert.equal(isSnapshotPath(printed), c.format === 'repository');
      assert.equal(backupDirOf(printed), c.w.dir, 'the directory the tree refreshes');
      assert.equal(backupIdOf(printed), record.id);
      assert.equal(backupName(printed), c.format === 'repository' ? record.id : `${record.id}.zip`);
      assert.equal(saveAsName(record), `${record.id}.db`);
      const tip = backupTooltip(record, { tier: 'manual', reasons: ['manual'] });
      const unescape = (s: string) => s.replace(/\\(.)/g, '$1');
      assert.ok(unescape(tip).includes(`- Format: ${c.label}, ${record.object}`), tip);
      assert.ok(tip.includes(`- Stored: ${formatBytes(record.archiveSize)}`), tip);
      assert.ok(!unescape(tip).includes(c.format === 'repository' ? '.zip' : '.json'), tip);
      ran++;
    }
    assert.equal(ran, cases.length);
  });
});

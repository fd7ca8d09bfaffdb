/**
 * What a restore checks before it puts an image in place: SQLite's integrity_check on the
 * extracted image, unless the backup is format v2 and its sealed manifest records that
 * exactly these bytes passed integrity_check when the backup was made; then the image's
 * SHA-256 is the proof. A damaged pack is refused either way, by hash, and leaves nothing.
 * Real SQLite files, real backups through the engine.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { after, describe, test } from 'node:test';
import { Catalog } from '../../src/core/catalog/catalog';
import { DEFAULT_SETTINGS, type Settings } from '../../src/core/config';
import { systemClock, type Clock } from '../../src/core/context';
import { Engine } from '../../src/core/engine';
import { BackupError } from '../../src/core/errors';
import { PackWriter, readPackBlock, readPackIndex } from '../../src/core/format/repo/pack';
import type { BackupRecord } from '../../src/core/model';
import { verifiedAtBackup } from '../../src/core/restore/restore';
import { LocalDirStore } from '../../src/core/store/localDirStore';
import { makeDb, sqlite, tempDir } from '../fixtures/sqlite';

const tmp = tempDir('lifeboat-restorecheck-');
after(() => tmp.cleanup());
let seq = 0;
const fresh = (name: string) => {
  const d = path.join(tmp.dir, `${name}-${++seq}`);
  mkdirSync(d, { recursive: true });
  return d;
};

function settings(p: Partial<Settings> = {}): Settings {
  return { ...DEFAULT_SETTINGS, format: 'repository', restoreTest: false, ...p };
}

const sha = (b: Uint8Array) => createHash('sha256').update(b).digest('hex');

function harness(name: string) {
  const root = fresh(name);
  let t = Date.UTC(2026, 5, 1, 9);
  const clock: Clock = { now: () => new Date(t), sleep: systemClock.sleep };
  const engine = new Engine({ clock });
  const db = path.join(root, 'app.db');
  const dir = path.join(root, 'repo');
  return {
    root,
    engine,
    db,
    dir,
    async backup(s: Settings): Promise<BackupRecord> {
      t += 60_000;
      const r = await engine.backup(db, { dir, kind: 'manual', settings: s });
      assert.ok(r.verified, JSON.stringify(r.record.manifest.verification.problems));
      return r.record;
    },
  };
}

/** The files beside a restore target, other than the target itself. */
const leftovers = (dir: string, target: string) => readdirSync(dir).filter((f) => f.includes('.lifeboat-restore-') && f.startsWith(`.${path.basename(target)}`));

describe('restore: integrity_check, or the backup-time integrity_check proven by hash', () => {
  test('a backup that passed integrity_check when it was made restores verified by hash, to the same bytes; the log says so', async () => {
    const h = harness('byhash');
    makeDb(h.db, { rows: 800 });
    const r = await h.backup(settings({ verifyMode: 'full' }));
    assert.equal(r.manifest.verification.check, 'integrity_check');
    const to = path.join(h.root, 'restored.db');
    const res = await h.engine.restore(r.path, { to, settings: settings() });
    assert.equal(res.checked.by, 'sha256');
    assert.equal(res.checked.by === 'sha256' && res.checked.sha256, r.manifest.image.sha256);
    assert.equal(sha(readFileSync(to)), r.manifest.image.sha256, 'the restored file is the image the backup verified');
    const logged = (await new Catalog(h.dir).log.read()).filter((e) => e.op === 'restore.ok').at(-1);
    assert.match(logged?.message ?? '', /verified by hash against the backup-time integrity_check/);
    assert.equal((logged?.detail as { checkedBy?: string }).checkedBy, 'sha256');
  });

  test('after a quick_check at backup time, with another probe query, or after a later failed verification, integrity_check runs', async () => {
    const h = harness('recheck');
    makeDb(h.db, { rows: 500 });
    const quick = await h.backup(settings({ verifyMode: 'quick' }));
    assert.equal(quick.manifest.verification.check, 'quick_check');
    const to = path.join(h.root, 'restored.db');
    const a = await h.engine.restore(quick.path, { to, settings: settings() });
    assert.equal(a.checked.by, 'integrity_check');
    assert.equal(a.checked.by === 'integrity_check' && a.checked.report.check, 'integrity_check');
    assert.equal(a.checked.by === 'integrity_check' && a.checked.report.status, 'ok');

    sqlite(h.db, "INSERT INTO items(name, qty) VALUES ('later', 3);");
    const probe = 'SELECT count(*) FROM items';
    const full = await h.backup(settings({ verifyMode: 'full', probeQuery: probe }));
    assert.equal(full.manifest.verification.probe?.ok, true);
    // The probe that passed then: proven by hash. Another one: SQLite runs it now.
    assert.equal((await h.engine.restore(full.path, { to, settings: settings({ probeQuery: probe }) })).checked.by, 'sha256');
    const other = await h.engine.restore(full.path, { to, settings: settings({ probeQuery: 'SELECT count(*) FROM audit' }) });
    assert.equal(other.checked.by, 'integrity_check');
    assert.equal(other.checked.by === 'integrity_check' && other.checked.report.probe?.sql, 'SELECT count(*) FROM audit');

    // A later verification of this backup that failed (kept in the store's state).
    await new Catalog(h.dir).updateState(full.id, (s) => {
      s.lastVerify = { ...full.manifest.verification, status: 'failed', problems: ['row 3 missing from index items_name'], archiveOk: true };
    });
    assert.equal((await h.engine.restore(full.path, { to, settings: settings({ probeQuery: probe }) })).checked.by, 'integrity_check');
  });

  test('the decision: only a v2 image that matches its manifest, after a passing integrity_check that checked what the engine now would', () => {
    const base = {
      format: 'lifeboat-archive',
      formatVersion: 2,
      id: 'x',
      image: { entry: 'database.sqlite', size: 8192, sha256: 'a'.repeat(64), pageSize: 4096, pageCount: 2, sqliteVersionNumber: 3045000 },
      verification: {
        status: 'ok',
        check: 'integrity_check',
        engine: { name: 'node:sqlite', sqliteVersion: '3.50.0' },
        problems: [],
        foreignKeyViolations: 0,
        schemaFingerprint: 'f',
        rowCounts: {},
        notChecked: [],
        durationMs: 1,
        checkedAt: '2026-06-01T09:00:00.000+00:00',
      },
      sourceDamaged: false,
      repository: { pageSize: 4096, pageCount: 2, root: 'r', packs: [], extents: [], added: { packs: [], pages: 0, bytes: 0 } },
    } as unknown as Parameters<typeof verifiedAtBackup>[0];
    const same = { sha256: 'a'.repeat(64), size: 8192 };
    const none = { probeQuery: '' };
    const with_ = (p: Record<string, unknown>, v: Record<string, unknown> = {}) => ({ ...base, ...p, verification: { ...base.verification, ...v } }) as typeof base;
    assert.equal(verifiedAtBackup(base, same, none, undefined)?.by, 'sha256');
    assert.equal(verifiedAtBackup(base, { ...same, sha256: 'b'.repeat(64) }, none, undefined), undefined, 'other bytes');
    assert.equal(verifiedAtBackup(base, { ...same, size: 4096 }, none, undefined), undefined, 'another size');
    assert.equal(verifiedAtBackup(with_({ formatVersion: 1, repository: undefined }), same, none, undefined), undefined, 'a zip');
    assert.equal(verifiedAtBackup(with_({}, { check: 'quick_check' }), same, none, undefined), undefined, 'quick_check');
    assert.equal(verifiedAtBackup(with_({}, { status: 'skipped', check: 'none' }), same, none, undefined), undefined, 'skipped');
    assert.equal(verifiedAtBackup(with_({}, { status: 'failed', problems: ['x'] }), same, none, undefined), undefined, 'failed');
    assert.equal(verifiedAtBackup(with_({ sourceDamaged: true }), same, none, undefined), undefined, 'source damaged');
    assert.equal(verifiedAtBackup(base, same, { probeQuery: 'SELECT 1' }, undefined), undefined, 'a probe that did not run then');
    // What the backup's engine could not check: fine when the same engine would check now.
    const partial = with_({}, { notChecked: ['docs (fts5)'], engine: { name: 'sql.js', sqliteVersion: '3.49.1' } });
    const engineNow = verifiedAtBackup(with_({}, { notChecked: ['t (x)'], engine: { name: 'probe', sqliteVersion: '' } }), same, none, undefined);
    assert.equal(engineNow, undefined, 'another engine would check more');
    const r = verifiedAtBackup(partial, same, none, undefined);
    assert.equal(r?.by === 'sha256', process.env.LIFEBOAT_SQLITE === 'fallback', 'sql.js then: proven only where sql.js checks now');
  });

  test('a pack whose pages decode but differ from what was backed up is refused by hash, naming the pack; nothing is left', async () => {
    const h = harness('damage');
    makeDb(h.db, { rows: 1500 });
    const r = await h.backup(settings({ verifyMode: 'full' }));
    const pack = r.manifest.repository!.packs[0];
    const file = path.join(h.dir, pack);
    const store = new LocalDirStore(h.dir);
    // The same pack with one page changed and its recorded hash kept: every block still
    // decodes to its length and the indexes still add up to the root; only the image's
    // hash (and then that page's) can tell.
    const ix = await readPackIndex(store, pack);
    const w = new PackWriter(path.join(h.root, 'forged.pack'));
    for (let b = 0; b < ix.blocks.length; b++) {
      const pages = await readPackBlock(store, pack, ix, b);
      for (const [k, page] of pages.entries()) {
        const i = ix.blocks[b].firstEntry + k;
        const bytes = Buffer.from(page);
        if (b === ix.blocks.length - 1 && k === 0) bytes[100] ^= 0x01;
        await w.add(bytes, ix.hashOf(i));
      }
    }
    await w.finish();
    const good = readFileSync(file);
    writeFileSync(file, readFileSync(w.file));
    const to = path.join(h.root, 'restored.db');
    await assert.rejects(h.engine.restore(r.path, { to, settings: settings() }), (e) => {
      assert.ok(BackupError.is(e, 'badArchive'), String(e));
      assert.ok(e.message.includes(pack), e.message);
      assert.match(e.message, new RegExp(`entry ${ix.blocks.at(-1)!.firstEntry} \\(block ${ix.blocks.length - 1}\\) does not match its hash`));
      return true;
    });
    assert.equal(existsSync(to), false, 'nothing restored');
    assert.deepEqual(leftovers(h.root, to), [], 'no temp file left beside the target');
    writeFileSync(file, good);
    assert.equal((await h.engine.restore(r.path, { to, settings: settings() })).checked.by, 'sha256');
  });
});

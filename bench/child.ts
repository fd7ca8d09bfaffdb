// Runs one Lifeboat operation in this process and prints its measurements as JSON:
// wall time, peak RSS, and the longest event-loop stall seen while it ran.
//   node dist/bench-child.js backup <db> <dir>        the full backup (snapshot, compress, verify, read back)
//   node dist/bench-child.js noverify <db> <dir>      the same pipeline without the verifier (for RSS "verifier aside")
//   node dist/bench-child.js hot <db> <dir> <n>       n full backups of a database bench/writer.mjs is writing to; each
//                                                     image is extracted and checked with sqlite3 (integrity_check and
//                                                     the ledger invariant): prints the consistent / busy counts
//   node dist/bench-child.js day <db> <dir> <time> <repository|zip>
//                                                     one scheduled backup with the engine's clock fixed at <time>
//                                                     (ISO 8601), then rotation with the default policy, as on
//                                                     that day: prints what it stored (bench/incremental.mjs)
import { execFileSync } from 'node:child_process';
import { rmSync } from 'node:fs';
import path from 'node:path';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { writeArchive } from '../src/core/archive/archiveWriter';
import { checkWrittenArchive, extractImage } from '../src/core/archive/archiveReader';
import { DEFAULT_SETTINGS, type BackupFormatSetting } from '../src/core/config';
import { systemClock } from '../src/core/context';
import { Engine } from '../src/core/engine';
import { BackupError } from '../src/core/errors';
import { ARCHIVE_FORMAT, ARCHIVE_FORMAT_VERSION, IMAGE_ENTRY } from '../src/core/model';
import { snapshotDatabase } from '../src/core/snapshot/liveSnapshot';

async function main(): Promise<void> {
  const [mode, db, dir] = process.argv.slice(2);
  const h = monitorEventLoopDelay({ resolution: 5 });
  // A tick every 5 ms also measures stalls directly, independent of the histogram.
  let last = performance.now();
  let maxGap = 0;
  const iv = setInterval(() => {
    const now = performance.now();
    maxGap = Math.max(maxGap, now - last);
    last = now;
  }, 5);
  h.enable();
  const start = performance.now();
  const phases: { phase: string; atMs: number }[] = [];
  let strategy = '';
  const hot = { consistent: 0, inconsistent: 0, busy: 0, problems: [] as string[] };
  let day: Record<string, unknown> | undefined;
  if (mode === 'backup') {
    const engine = new Engine();
    let phase = '';
    const r = await engine.backup(db, {
      dir,
      kind: 'manual',
      // The full-copy bench measures the zip (v1), as its README table always has; the
      // repository is measured by `--incremental`.
      settings: { ...DEFAULT_SETTINGS, verifyMode: 'full', format: 'zip' },
      trigger: 'bench',
      onProgress: (p) => {
        if (p.phase !== phase) {
          phase = p.phase;
          phases.push({ phase, atMs: Math.round(performance.now() - start) });
        }
      },
    });
    if (!r.verified) throw new Error('the backup did not verify');
    strategy = r.record.manifest.source.snapshot?.strategy ?? '';
  } else if (mode === 'hot') {
    const engine = new Engine();
    const image = path.join(dir, 'hot.image');
    for (let i = 0; i < Number(process.argv[5]); i++) {
      let r;
      try {
        r = await engine.backup(db, { dir, kind: 'manual', settings: { ...DEFAULT_SETTINGS, format: 'zip' }, trigger: 'bench', rotate: false });
      } catch (e) {
        if (!BackupError.is(e, 'busy')) throw e;
        hot.busy++;
        continue;
      }
      strategy = r.record.manifest.source.snapshot?.strategy ?? '';
      await extractImage(r.record.path, image);
      const got = execFileSync(
        'sqlite3',
        [image, `SELECT (SELECT group_concat(integrity_check) FROM pragma_integrity_check) || ' ' || ((SELECT count(*) FROM ledger) = (SELECT n FROM counter));`],
        { encoding: 'utf8' },
      ).trim();
      if (got === 'ok 1' && r.verified) hot.consistent++;
      else {
        hot.inconsistent++;
        hot.problems.push(`${r.record.id}: ${got}, verified ${r.verified}`);
      }
      rmSync(image, { force: true });
      rmSync(r.record.path, { force: true });
    }
  } else if (mode === 'day') {
    const at = new Date(process.argv[5]);
    const format = process.argv[6] as BackupFormatSetting;
    if (Number.isNaN(at.getTime()) || (format !== 'repository' && format !== 'zip')) throw new Error('day needs <time> (ISO 8601) and <repository|zip>');
    // The CLI has no clock to inject: the engine with a clock stopped at that day's backup time.
    const engine = new Engine({ clock: { now: () => new Date(at), sleep: systemClock.sleep } });
    const r = await engine.backup(db, { dir, kind: 'scheduled', settings: { ...DEFAULT_SETTINGS, format }, trigger: 'bench' });
    if (!r.verified) throw new Error('the backup did not verify');
    const repo = r.record.manifest.repository;
    day = { id: r.record.id, storedBytes: r.record.archiveSize, imageSize: r.record.manifest.image.size, addedPages: repo?.added.pages, pageCount: repo?.pageCount };
  } else if (mode === 'noverify') {
    const img = path.join(dir, 'bench.image');
    const out = path.join(dir, 'bench.zip');
    strategy = (await snapshotDatabase(db, img, { fsync: false })).strategy;
    const w = await writeArchive({
      imagePath: img,
      outPath: out,
      level: DEFAULT_SETTINGS.compressionLevel,
      // The bench skips the verifier, so the manifest carries only what the writer checks.
      manifest: async (image) => ({
        format: ARCHIVE_FORMAT,
        formatVersion: ARCHIVE_FORMAT_VERSION,
        id: 'bench',
        kind: 'manual',
        created: new Date().toISOString(),
        source: { path: db, name: 'bench.db', size: 0, mtimeMs: 0, journalMode: 'wal', changeCounter: 0, walFrames: 0 },
        image: { entry: IMAGE_ENTRY, ...image, pageSize: 4096, pageCount: image.size / 4096, sqliteVersionNumber: 0 },
        verification: { status: 'skipped', check: 'none', engine: { name: 'none', sqliteVersion: '' }, problems: [], foreignKeyViolations: 0, schemaFingerprint: '', rowCounts: {}, notChecked: [], durationMs: 0, checkedAt: new Date().toISOString() },
        sourceDamaged: false,
        durationMs: 0,
        lifeboatVersion: 'bench',
      }),
    });
    const c = await checkWrittenArchive(out, w.decoded);
    if (!c.ok) throw new Error(c.problems.join('; '));
  } else {
    throw new Error(`unknown mode ${mode}`);
  }
  const ms = performance.now() - start;
  h.disable();
  clearInterval(iv);
  process.stdout.write(
    JSON.stringify({ ms, phases, strategy, hot: mode === 'hot' ? hot : undefined, day, maxRssMB: process.resourceUsage().maxRSS / 1024, maxStallMs: Math.max(h.max / 1e6, maxGap - 5) }) + '\n',
  );
}

main().catch((e) => {
  process.stderr.write(`${(e as Error).stack}\n`);
  process.exit(1);
});

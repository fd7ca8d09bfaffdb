// Runs one Lifeboat operation in this process and prints its measurements as JSON:
// wall time, peak RSS, and the longest event-loop stall seen while it ran.
//   node dist/bench-child.js backup <db> <dir>        the full backup (snapshot, compress, verify, read back)
//   node dist/bench-child.js noverify <db> <dir>      the same pipeline without the verifier (for RSS "verifier aside")
import path from 'node:path';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { writeArchive } from '../src/core/archive/archiveWriter';
import { checkWrittenArchive } from '../src/core/archive/archiveReader';
import { DEFAULT_SETTINGS } from '../src/core/config';
import { Engine } from '../src/core/engine';
import { ARCHIVE_FORMAT, ARCHIVE_FORMAT_VERSION, IMAGE_ENTRY } from '../src/core/model';
import { takeSnapshot } from '../src/core/snapshot/snapshot';

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
  if (mode === 'backup') {
    const engine = new Engine();
    let phase = '';
    const r = await engine.backup(db, {
      dir,
      kind: 'manual',
      settings: { ...DEFAULT_SETTINGS, verifyMode: 'full' },
      trigger: 'bench',
      onProgress: (p) => {
        if (p.phase !== phase) {
          phase = p.phase;
          phases.push({ phase, atMs: Math.round(performance.now() - start) });
        }
      },
    });
    if (!r.verified) throw new Error('the backup did not verify');
  } else if (mode === 'noverify') {
    const img = path.join(dir, 'bench.image');
    const out = path.join(dir, 'bench.zip');
    await takeSnapshot(db, img);
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
    JSON.stringify({ ms, phases, maxRssMB: process.resourceUsage().maxRSS / 1024, maxStallMs: Math.max(h.max / 1e6, maxGap - 5) }) + '\n',
  );
}

main().catch((e) => {
  process.stderr.write(`${(e as Error).stack}\n`);
  process.exit(1);
});

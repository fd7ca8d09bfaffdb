// Bundles the extension, the CLI, the verifier worker and the webview app into dist/,
// and copies sql.js's WASM beside them (the verifier locates it explicitly).
import { build } from 'esbuild';
import { copyFile, mkdir, chmod } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';

const require = createRequire(import.meta.url);
const production = process.argv.includes('--production');
const common = {
  bundle: true,
  platform: 'node',
  target: 'node20',
  format: 'cjs',
  sourcemap: !production,
  minify: production,
  logLevel: 'warning',
  // ESM entry points first: jsonc-parser's UMD build hides its requires from bundlers.
  mainFields: ['module', 'main'],
  // No aliases or plugins: the bundle holds the modules the tests load from source
  // (the archive compressor is src/core/archive/zipWriter.ts and parallelDeflate.ts).
  // ssh2's optional native addons stay out (no native addons: one VSIX everywhere); ssh2
  // requires both inside try/catch and falls back to its JavaScript ciphers.
  external: ['cpu-features', '*.node'],
};

await mkdir('dist', { recursive: true });
const jobs = [
  build({ ...common, entryPoints: ['src/extension/extension.ts'], outfile: 'dist/extension.js', external: [...common.external, 'vscode'] }),
  build({ ...common, entryPoints: ['src/cli/main.ts'], outfile: 'dist/cli.js', banner: { js: '#!/usr/bin/env node' } }),
  build({ ...common, entryPoints: ['src/core/verify/worker.ts'], outfile: 'dist/verifyWorker.js' }),
  // SQLite itself (node:sqlite) where the runtime has it: snapshots, verification, restores.
  build({ ...common, entryPoints: ['src/core/sqlite/worker.ts'], outfile: 'dist/sqliteWorker.js' }),
  // The benchmark's in-process runner, bundled exactly like the CLI (not shipped in the VSIX).
  build({ ...common, entryPoints: ['bench/child.ts'], outfile: 'dist/bench-child.js' }),
];
if (existsSync('webview/main.ts')) {
  jobs.push(
    build({
      ...common,
      platform: 'browser',
      format: 'esm',
      target: 'es2022',
      entryPoints: ['webview/main.ts'],
      outfile: 'dist/webview.js',
      minify: true,
    }),
  );
}
await Promise.all(jobs);
await copyFile(path.join(path.dirname(require.resolve('sql.js')), 'sql-wasm.wasm'), 'dist/sql-wasm.wasm');
await chmod('dist/cli.js', 0o755);

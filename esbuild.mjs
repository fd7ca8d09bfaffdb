// Bundles the extension, the CLI, the verifier worker and the webview app into dist/,
// with the off-site libraries apart in dist/offsite-*.js (below), and copies sql.js's WASM
// beside them (the verifier locates it explicitly).
import { build } from 'esbuild';
import { copyFile, mkdir, chmod, readFile } from 'node:fs/promises';
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
  // No aliases: the bundles hold the modules the tests load from source (the archive
  // compressor is src/core/archive/zipWriter.ts and parallelDeflate.ts). One plugin, for
  // the node bundles, moves the off-site libraries into dist/offsite-*.js (see offsiteLinks).
  // ssh2's optional native addons stay out (no native addons: one VSIX everywhere); ssh2
  // requires both inside try/catch and falls back to its JavaScript ciphers.
  external: ['cpu-features', '*.node'],
};

// The off-site libraries (S3, SFTP, age) are most of the CLI's JavaScript (some 2.7 of
// 3.3 MB) but only a command that touches a remote runs them; src loads them with
// `import()`. Inside the main bundles they still cost every process their parsing and
// memory (`lifeboat --help`: 72 MB peak RSS with them, 59 MB without, Node 24). So the
// node bundles hold, for each package name src imports from them ('@smithy/core/serde',
// 'ssh2-sftp-client', ...), a small module
// `module.exports = require('./offsite-s3.js')[name]()`, and the three bundles below, built
// after them from the names they asked for, hold the libraries: one function per name,
// which evaluates that package's modules (only those not run yet) the first time it is
// called. So an `import()` still evaluates nothing until it runs, and s3Backend.ts's staged
// loading of the SDK still runs one package per step. Three files, not one, because V8
// parses a whole file on its first require, in one piece (some 70 ms here for all of
// them, under 40 for the S3 part): a push to S3 never parses ssh2, an SFTP push never
// parses the SDK. They share no module (checked below). All bundles sit in dist/, where
// `require('./offsite-….js')` finds them at run time.
const OFFSITE_BUNDLES = {
  'offsite-s3.js': /^@(?:aws-sdk|smithy)\//,
  'offsite-sftp.js': /^ssh2(?:-sftp-client)?(?:\/|$)/,
  'offsite-age.js': /^(?:age-encryption(?:\/|$)|@noble\/)/,
};
const offsiteBundleOf = (pkg) => Object.keys(OFFSITE_BUNDLES).find((file) => OFFSITE_BUNDLES[file].test(pkg));
const OFFSITE_NAME = new RegExp(Object.values(OFFSITE_BUNDLES).map((r) => `(?:${r.source})`).join('|'));
const OFFSITE_FILE = /[\\/]node_modules[\\/](?:@aws-sdk|@smithy|@noble|ssh2|ssh2-sftp-client|age-encryption)[\\/]/;
const IN_NODE_MODULES = /[\\/]node_modules[\\/]/;
/** Package name -> the names imported from it, or 'all' (its whole namespace). */
const offsiteUses = new Map();

/**
 * The names a source file imports from `pkg` by `import { a, b as c } from` or
 * `export { a } from` ('all' for any other form). Only these are kept of a package that
 * is imported by name: src/core/store/remote/s3Sdk.ts names ten parts of the S3 client so
 * that its other hundred-odd commands stay out of the bundle.
 */
async function namedImports(file, pkg) {
  const text = await readFile(file, 'utf8');
  const quoted = pkg.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&');
  const names = new Set();
  for (const m of text.matchAll(new RegExp(String.raw`\b(?:import|export)\b([^;'"]*?)\bfrom\s*(['"])${quoted}\2`, 'g'))) {
    const clause = m[1].trim();
    if (/^type\b/.test(clause)) continue;
    const braces = /^\{([^}]*)\}$/.exec(clause);
    if (!braces) return 'all';
    for (const part of braces[1].split(',')) {
      const name = part.trim().split(/\s+as\s+/)[0];
      if (name && !/^type\s/.test(name)) names.add(name);
    }
  }
  return names.size > 0 ? names : 'all';
}

function noteUse(pkg, names) {
  const seen = offsiteUses.get(pkg);
  if (seen === 'all' || names === 'all') offsiteUses.set(pkg, 'all');
  else offsiteUses.set(pkg, new Set([...(seen ?? []), ...names]));
}

/** For the node bundles: off-site package names imported by src become links to dist/offsite-….js. */
const offsiteLinks = {
  name: 'offsite-links',
  setup(b) {
    b.onResolve({ filter: OFFSITE_NAME }, async (args) => {
      if (IN_NODE_MODULES.test(args.importer)) return undefined;
      noteUse(args.path, args.kind === 'import-statement' ? await namedImports(args.importer, args.path) : 'all');
      return { path: args.path, namespace: 'offsite' };
    });
    b.onLoad({ filter: /.*/, namespace: 'offsite' }, (args) => ({
      contents: `module.exports = require(${JSON.stringify(`./${offsiteBundleOf(args.path)}`)})[${JSON.stringify(args.path)}]();`,
      loader: 'js',
    }));
    b.onResolve({ filter: /^\.\/offsite-/, namespace: 'offsite' }, (args) => ({ path: args.path, external: true }));
  },
};

/** The entry of dist/<file>: one function per package name the node bundles link to there. */
const offsiteEntry = (file) => ({
  name: 'offsite-entry',
  setup(b) {
    b.onResolve({ filter: /^offsite-entry$/ }, () => ({ path: file, namespace: 'offsite-entry' }));
    b.onLoad({ filter: /.*/, namespace: 'offsite-entry' }, () => ({
      contents: [...offsiteUses.keys()]
        .filter((pkg) => offsiteBundleOf(pkg) === file)
        .sort()
        .map((pkg) => `exports[${JSON.stringify(pkg)}] = () => require(${JSON.stringify(`${offsiteUses.get(pkg) === 'all' ? 'whole' : 'named'}:${pkg}`)});`)
        .join('\n'),
      loader: 'js',
      resolveDir: process.cwd(),
    }));
    // The package as src imports it (the "import" condition of its exports map: a require()
    // here would pick the CommonJS builds, a second copy of what the ES builds share).
    b.onResolve({ filter: /^whole:/, namespace: 'offsite-entry' }, async (args) => {
      const r = await b.resolve(args.path.slice('whole:'.length), { kind: 'import-statement', resolveDir: args.resolveDir });
      return r.errors.length > 0 ? { errors: r.errors } : { path: r.path, namespace: r.namespace, sideEffects: r.sideEffects };
    });
    b.onResolve({ filter: /^named:/, namespace: 'offsite-entry' }, (args) => ({ path: args.path.slice('named:'.length), namespace: 'offsite-named' }));
    b.onLoad({ filter: /.*/, namespace: 'offsite-named' }, (args) => ({
      contents: `export { ${[...offsiteUses.get(args.path)].sort().join(', ')} } from ${JSON.stringify(args.path)};`,
      loader: 'js',
      resolveDir: process.cwd(),
    }));
  },
});

await mkdir('dist', { recursive: true });
const node = { ...common, plugins: [offsiteLinks], metafile: true };
const bundles = [
  build({ ...node, entryPoints: ['src/extension/extension.ts'], outfile: 'dist/extension.js', external: [...common.external, 'vscode'] }),
  build({ ...node, entryPoints: ['src/cli/main.ts'], outfile: 'dist/cli.js', banner: { js: '#!/usr/bin/env node' } }),
  build({ ...node, entryPoints: ['src/core/verify/worker.ts'], outfile: 'dist/verifyWorker.js' }),
  // SQLite itself (node:sqlite) where the runtime has it: snapshots, verification, restores.
  build({ ...node, entryPoints: ['src/core/sqlite/worker.ts'], outfile: 'dist/sqliteWorker.js' }),
  // Off-site copies (pushJob.ts), off the caller's thread: the extension host's or the CLI's.
  build({ ...node, entryPoints: ['src/core/offsite/pushWorker.ts'], outfile: 'dist/offsiteWorker.js' }),
  // The benchmark's in-process runner, bundled exactly like the CLI (not shipped in the VSIX).
  build({ ...node, entryPoints: ['bench/child.ts'], outfile: 'dist/bench-child.js' }),
];
const jobs = [
  Promise.all(bundles).then(async (results) => {
    for (const r of results) {
      const leaked = Object.keys(r.metafile.inputs).find((f) => OFFSITE_FILE.test(f));
      if (leaked) throw new Error(`esbuild.mjs: ${leaked} went into ${Object.keys(r.metafile.outputs).find((f) => f.endsWith('.js'))}, not dist/offsite-….js (imported from inside node_modules?)`);
    }
    const files = Object.keys(OFFSITE_BUNDLES).filter((file) => [...offsiteUses.keys()].some((pkg) => offsiteBundleOf(pkg) === file));
    const offsite = await Promise.all(
      files.map((file) => build({ ...common, entryPoints: ['offsite-entry'], outfile: `dist/${file}`, plugins: [offsiteEntry(file)], metafile: true })),
    );
    const owner = new Map();
    offsite.forEach((r, i) => {
      for (const input of Object.keys(r.metafile.inputs).filter((f) => IN_NODE_MODULES.test(f))) {
        if (owner.has(input)) throw new Error(`esbuild.mjs: ${input} went into both dist/${owner.get(input)} and dist/${files[i]}: put their packages in one bundle (OFFSITE_BUNDLES)`);
        owner.set(input, files[i]);
      }
    });
  }),
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

// Bundled in place of `zlib` for yazl only (esbuild plugin in esbuild.mjs): yazl's
// `new zlib.DeflateRaw({level})` then compresses on several threads. Everything else is
// Node's zlib unchanged.
import zlib from 'node:zlib';
import { ParallelDeflateRaw } from './parallelDeflate';

export = Object.assign({}, zlib, {
  DeflateRaw: ParallelDeflateRaw,
  createDeflateRaw: (o?: zlib.ZlibOptions) => new ParallelDeflateRaw({ level: o?.level }),
});

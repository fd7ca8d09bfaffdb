// Bundled in place of `buffer-crc32` (esbuild alias): yazl's CRC32 then runs in Node's
// native zlib.crc32 (about 15x faster than the JavaScript table), which keeps the main
// thread free while an archive is written. Same results, same API subset yazl uses.
import zlib from 'node:zlib';

function toBuffer(input: Buffer | string): Buffer {
  return typeof input === 'string' ? Buffer.from(input) : input;
}

function prevValue(previous?: Buffer | number): number {
  if (previous === undefined) return 0;
  return typeof previous === 'number' ? previous >>> 0 : previous.readUInt32BE(0);
}

/** CRC32 as a 4-byte big-endian Buffer, like buffer-crc32. */
function crc32(input: Buffer | string, previous?: Buffer | number): Buffer {
  const out = Buffer.alloc(4);
  out.writeUInt32BE(zlib.crc32(toBuffer(input), prevValue(previous)) >>> 0, 0);
  return out;
}
crc32.unsigned = (input: Buffer | string, previous?: Buffer | number): number => zlib.crc32(toBuffer(input), prevValue(previous)) >>> 0;
crc32.signed = (input: Buffer | string, previous?: Buffer | number): number => zlib.crc32(toBuffer(input), prevValue(previous)) | 0;

export = crc32;

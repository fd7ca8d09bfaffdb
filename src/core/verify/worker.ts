/**
 * The verifier's worker thread (bundled to dist/verifyWorker.js). It reads the image
 * itself, so the bytes never cross postMessage, runs the checks with sql.js, posts exactly
 * one WorkerReply and ends. verifier.ts is its only client.
 */
import { closeSync, fstatSync, openSync, readSync } from 'node:fs';
import { setPriority } from 'node:os';
import { isMainThread, parentPort, workerData } from 'node:worker_threads';
import initSqlJs from 'sql.js';
import { type CheckResult, verifyBytes } from './checks';

/** What the verifier asks; passed as workerData. */
export type WorkerRequest =
  | { kind: 'version'; wasmPath: string }
  | {
      kind: 'verify';
      wasmPath: string;
      imagePath: string;
      check: 'integrity_check' | 'quick_check';
      probeQuery?: string;
    };

/** The one message the worker posts back. */
export type WorkerReply =
  | { kind: 'version'; sqliteVersion: string }
  | { kind: 'result'; sqliteVersion: string; result: CheckResult }
  | {
      kind: 'error';
      /** io: reading the file failed (code is the errno code); memory: sql.js ran out of memory; crash: anything else. */
      failure: 'io' | 'memory' | 'crash';
      message: string;
      code?: string;
      stack?: string;
    };

/**
 * Reads a whole file into one Buffer of exactly its size. A Buffer (not a plain
 * Uint8Array) matters: sql.js then keeps it without copying (see verifyBytes).
 * Reads in a loop because readFileSync refuses files over 2 GiB.
 */
function readImage(imagePath: string): Buffer {
  const fd = openSync(imagePath, 'r');
  try {
    const size = fstatSync(fd).size;
    const buf = Buffer.allocUnsafeSlow(size);
    let off = 0;
    while (off < size) {
      const n = readSync(fd, buf, off, Math.min(size - off, 1 << 30), off);
      // The file shrank while being read; the header check reports the short image.
      if (n === 0) return buf.subarray(0, off);
      off += n;
    }
    return buf;
  } finally {
    closeSync(fd);
  }
}

async function handle(req: WorkerRequest): Promise<WorkerReply> {
  const SQL = await initSqlJs({ locateFile: () => req.wasmPath });
  const version = (): string => {
    const db = new SQL.Database();
    try {
      return String(db.exec('SELECT sqlite_version()')[0]!.values[0]![0]);
    } finally {
      db.close();
    }
  };
  if (req.kind === 'version') return { kind: 'version', sqliteVersion: version() };

  let bytes: Buffer;
  try {
    bytes = readImage(req.imagePath);
  } catch (e) {
    const err = e as NodeJS.ErrnoException;
    return { kind: 'error', failure: 'io', message: err.message, code: err.code };
  }
  const result = verifyBytes(SQL, bytes, { check: req.check, probeQuery: req.probeQuery });
  return { kind: 'result', sqliteVersion: version(), result };
}

function failureOf(e: unknown): WorkerReply {
  const message = e instanceof Error ? e.message : String(e);
  const memory = e instanceof RangeError || /out of memory|Cannot enlarge memory|Aborted\(OOM\)|Array buffer allocation failed/i.test(message);
  return { kind: 'error', failure: memory ? 'memory' : 'crash', message, stack: e instanceof Error ? e.stack : undefined };
}

if (!isMainThread && parentPort) {
  const port = parentPort;
  if (process.platform === 'linux') {
    // On Linux the nice value is per thread: this lowers only the verifier's thread, so
    // seconds of WASM never compete on equal terms with the extension host's event loop.
    // 4, not more: at 10 the verifier starved while the archive was compressed and then
    // ran alone on one core (the 1 GB benchmark went from 0.76x to 0.84x of native).
    try {
      setPriority(0, 4);
    } catch {
      // not permitted: run at normal priority
    }
  }
  handle(workerData as WorkerRequest).then(
    (reply) => port.postMessage(reply),
    (e: unknown) => port.postMessage(failureOf(e)),
  );
}

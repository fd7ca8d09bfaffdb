import assert from 'node:assert/strict';
import { test } from 'node:test';
import { withLiveFiles, withSqliteLock } from '../../src/core/sqlite/liveGate';

/** A promise and the function that settles it. */
function deferred(): { promise: Promise<void>; resolve: () => void } {
  let resolve!: () => void;
  const promise = new Promise<void>((r) => (resolve = r));
  return { promise, resolve };
}

const turns = async (n: number) => {
  for (let i = 0; i < n; i++) await new Promise((r) => setImmediate(r));
};

test('a SQLite job waits for the readers of its database, and new readers wait for the job', async () => {
  const order: string[] = [];
  const reader = deferred();
  const job = deferred();
  const r1 = withLiveFiles('/x/app.db-wal', async () => {
    order.push('reader 1 in');
    await reader.promise;
    order.push('reader 1 out');
  });
  await turns(2);
  const j = withSqliteLock('/x/app.db', async () => {
    order.push('job in');
    await job.promise;
    order.push('job out');
  });
  await turns(5);
  assert.deepEqual(order, ['reader 1 in'], 'the job must not start while a reader has the files open');
  reader.resolve();
  await r1;
  await turns(5);
  assert.deepEqual(order, ['reader 1 in', 'reader 1 out', 'job in']);
  const r2 = withLiveFiles('/x/app.db-shm', async () => {
    order.push('reader 2');
  });
  await turns(5);
  assert.equal(order.includes('reader 2'), false, 'a reader of the -shm must wait while the job holds the lock');
  job.resolve();
  await Promise.all([j, r2]);
  assert.deepEqual(order, ['reader 1 in', 'reader 1 out', 'job in', 'job out', 'reader 2']);
});

test('other databases are not held up, readers share, and a failing job releases the gate', async () => {
  const job = deferred();
  let otherRan = false;
  const j = withSqliteLock('/x/a.db', () => job.promise);
  await turns(1);
  await withLiveFiles('/x/b.db', async () => {
    otherRan = true;
  });
  assert.ok(otherRan);
  job.resolve();
  await j;

  const inside: number[] = [];
  let open = 0;
  await Promise.all(
    [1, 2, 3].map((i) =>
      withLiveFiles('/x/a.db', async () => {
        open++;
        inside.push(open);
        await turns(3);
        open--;
      }),
    ),
  );
  assert.equal(Math.max(...inside), 3, 'readers of one database run together');

  await assert.rejects(withSqliteLock('/x/a.db', async () => Promise.reject(new Error('boom'))), /boom/);
  let after = false;
  await withLiveFiles('/x/a.db', async () => {
    after = true;
  });
  assert.ok(after, 'a reader gets in after a failed job');
});

test('readers that keep overlapping cannot starve a waiting SQLite job, and nested reads pass through', async () => {
  let stop = false;
  let reads = 0;
  let readsBeforeJob: number | undefined;
  // Two loops whose reads always overlap: without a waiting job going first, the reader
  // count would never drop to zero.
  const loop = async () => {
    while (!stop) {
      await withLiveFiles('/y/app.db', async () => {
        reads++;
        // A nested read of the same database (readSourceState reads the header inside).
        await withLiveFiles('/y/app.db-wal', () => turns(2));
      });
    }
  };
  const loops = [loop(), loop()];
  await turns(10);
  await withSqliteLock('/y/app.db', async () => {
    readsBeforeJob = reads;
    const during = reads;
    await turns(10);
    assert.equal(reads, during, 'no read runs while the job holds the lock');
  });
  await turns(10);
  stop = true;
  await Promise.all(loops);
  assert.ok(readsBeforeJob !== undefined && readsBeforeJob > 0, 'the readers were running when the job asked');
  assert.ok(reads > readsBeforeJob, 'the readers went on after the job');
});

/**
 * `lifeboat schedule --db DB [--dir D] [--time HH:MM | --cron EXPR]`: the extension's
 * scheduler in the foreground, for a server or a CI box. Runs until SIGINT or SIGTERM,
 * which stop it cleanly: a running backup is abandoned and the engine removes its
 * partial files. One line per run or skip on stdout, one per failure on stderr.
 */
import path from 'node:path';
import { parseArgs } from 'node:util';
import { cloneSettings } from '../core/config';
import type { Engine } from '../core/engine';
import { BackupError } from '../core/errors';
import { Scheduler, type SchedulerEngine } from '../core/schedule/scheduler';
import { missingSecrets } from '../core/store/remote/openRemote';
import { cronSchedule, dailySchedule, formatSlot, scheduleFromSettings } from '../core/schedule/slots';
import { readDbHeader } from '../core/sqliteFile';
import { isoLocal } from '../core/time';
import { cliRemote } from './offsite';
import { loadSettings } from './settings';

const USAGE = 'schedule --db DB [--dir D] [--time HH:MM | --cron EXPR]';

function usage(message: string): number {
  process.stderr.write(`lifeboat: ${message} (usage: lifeboat ${USAGE})\n`);
  return 2;
}

/** `2026-11-26 09:07:12`, the machine's local time. */
function stamp(d: Date): string {
  return isoLocal(d).replace('T', ' ').slice(0, 19);
}

/**
 * Runs the scheduler for one database in the foreground until SIGINT or SIGTERM.
 * Resolves to 0 after a clean stop, 2 for a usage error (printed). Throws BackupError
 * for a missing or non-SQLite database and for invalid settings files (the CLI's main
 * prints it once and maps it to its exit code).
 */
export async function cmdSchedule(argv: string[], engine: Engine): Promise<number> {
  let values: { db?: string; dir?: string; time?: string; cron?: string };
  try {
    const r = parseArgs({
      args: argv,
      options: { db: { type: 'string' }, dir: { type: 'string' }, time: { type: 'string' }, cron: { type: 'string' } },
      allowPositionals: false,
      strict: true,
    });
    values = r.values;
  } catch (e) {
    return usage((e as Error).message.replace(/\. To specify a positional.*$/s, ''));
  }
  if (!values.db) return usage('schedule needs --db DB');
  if (values.time !== undefined && values.cron !== undefined) return usage('give --time or --cron, not both');

  const db = path.resolve(values.db);
  const cfg = loadSettings(path.dirname(db), db);
  const dir = values.dir ? path.resolve(values.dir) : cfg.source ? path.resolve(cfg.base, cfg.settings.directory) : path.join(path.dirname(db), 'backups');
  const settings = cloneSettings(cfg.settings);
  // Running this command is the opt-in: the extension's on/off switches don't apply to it.
  settings.enabled = true;
  settings.scheduleDaily = true;
  try {
    if (values.time !== undefined) {
      dailySchedule(values.time);
      settings.backupTime = values.time;
      settings.cron = '';
    } else if (values.cron !== undefined) {
      cronSchedule(values.cron);
      settings.cron = values.cron;
    } else {
      scheduleFromSettings(settings);
    }
  } catch (e) {
    if (BackupError.is(e, 'badConfig')) {
      const msg = e.message.replace(/^lifeboat\.schedule\.time:/, '--time:').replace(/^lifeboat\.schedule\.cron:/, values.cron !== undefined ? '--cron:' : 'lifeboat.schedule.cron:');
      return usage(msg);
    }
    throw e;
  }
  await readDbHeader(db);

  // Every other weekly restore test takes its backup from lifeboat.offsite.url, when this
  // environment has its secrets (the same variables as `lifeboat push`).
  const offsiteUrl = settings.offsite.url;
  const offsite = offsiteUrl && !missingSecrets(offsiteUrl, settings.offsite.encrypt, process.env) ? async () => cliRemote(engine, undefined, 'lifeboat.offsite.url', settings) : undefined;
  const scheduled: SchedulerEngine = {
    backup: (d, o) => engine.backup(d, o),
    list: (d, of) => engine.list(d, of),
    catalog: (d) => engine.catalog(d),
    restoreTest: (d, s, o) => engine.restoreTest(d, s, { ...o, offsite }),
  };
  const scheduler = new Scheduler({ engine: scheduled, clock: engine.clock, logger: engine.logger, settings, targets: [{ db, dir }], startDelayMs: 0 });
  const out = (s: string) => process.stdout.write(`${stamp(engine.clock.now())}  ${s}\n`);
  const name = path.basename(db);
  scheduler.onDidRun((e) => {
    const shown = e.missed.slice(-3).map((m) => formatSlot(m));
    const why = e.catchUp
      ? `catch-up for ${e.missedCount} missed slot${e.missedCount === 1 ? '' : 's'}: ${e.missedCount > shown.length ? '..., ' : ''}${shown.join(', ')}`
      : `slot ${formatSlot(e.slot)}`;
    if (e.outcome === 'unchanged') out(`skipped   ${name} is unchanged since ${e.record.id} (${why})`);
    else if (e.sourceDamaged) out(`DAMAGED   ${name}: the backup failed verification, the live database is damaged: ${e.record.path}`);
    else out(`${e.verified ? 'ok      ' : 'NOT VERIFIED'}  ${e.record.path} (${why})`);
  });
  scheduler.onDidFail((e) => {
    const next = e.gaveUp ? 'giving up until the next slot' : e.retryAt ? `retry at ${formatSlot(e.retryAt)}` : '';
    const what = e.what === 'restoreTest' ? `restore test in ${e.dir}` : e.what === 'schedule' ? 'schedule' : `scheduled backup of ${name}`;
    process.stderr.write(`lifeboat: ${stamp(engine.clock.now())}  ${what} failed: ${e.error.message}${next ? `; ${next}` : ''}\n`);
  });
  scheduler.onDidRestoreTest((e) => {
    const r = e.result as { ok?: boolean; path?: string; from?: string; offsiteError?: string } | undefined;
    if (r?.offsiteError) process.stderr.write(`lifeboat: ${stamp(engine.clock.now())}  the off-site copy could not be restore-tested (the local one was): ${r.offsiteError}\n`);
    // A failed test is reported on stderr by onDidFail.
    if (r?.ok) out(`ok        restore test of ${r.path ?? e.dir} passed (${r.from ? `off-site copy in ${r.from}` : 'local copy'})`);
  });

  return new Promise<number>((resolve) => {
    let stopping = false;
    const onSignal = (signal: NodeJS.Signals) => {
      if (stopping) return;
      stopping = true;
      process.stderr.write(`lifeboat: ${signal}: stopping (a running backup is abandoned, leaving no partial archive)\n`);
      void scheduler.stop().then(() => {
        process.off('SIGINT', onSignal);
        process.off('SIGTERM', onSignal);
        process.stderr.write('lifeboat: stopped\n');
        resolve(0);
      });
    };
    process.on('SIGINT', onSignal);
    process.on('SIGTERM', onSignal);
    const next = scheduler.nextSlot();
    process.stderr.write(`lifeboat: scheduling ${db} into ${dir}, ${scheduler.describe()}${next ? ` (next ${formatSlot(next)})` : ''}; SIGINT or SIGTERM stops\n`);
    scheduler.start();
  });
}

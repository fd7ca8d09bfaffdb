/**
 * The scheduler: keeps each database's automatic backup done for the current slot.
 * It is a due-check, not a bare timer: it checks shortly after start (one catch-up for
 * slots missed while nothing ran), at each slot, every few minutes (sleep, resume and
 * clock jumps in either direction are caught because each check asks "is a verified
 * automatic backup there since the latest slot?"), and when settings change. A failed
 * backup is retried with back-off, then left until the next slot. Exactly one process
 * backs up a slot (see claims.ts); backups of one database never overlap (the engine's
 * queue). The extension host and `lifeboat schedule` both run this class.
 */
import path from 'node:path';
import type { Catalog } from '../catalog/catalog';
import type { LogEntry } from '../catalog/backupLog';
import { cloneSettings, type Settings } from '../config';
import { Emitter, nullLogger, type Clock, type Disposable, type Event, type Logger, type Progress, type ProgressListener } from '../context';
import type { BackupOptions, BackupResult } from '../engine';
import { BackupError, fsError } from '../errors';
import type { BackupRecord, SourceStateRecord } from '../model';
import { readSourceState } from '../sqliteFile';
import { isoLocal } from '../time';
import { SlotClaims, type Claim, type SlotClaimsOptions } from './claims';
import { decideDue, unchangedSince, type DueDecision, type SlotMark } from './due';
import { formatSlot, latestSlotAtOrBefore, nextSlotAfter, scheduleFromSettings, type Schedule } from './slots';

/** One database and the directory its backups go to. */
export interface ScheduleTarget {
  db: string;
  dir: string;
}

/** What the scheduler needs from the engine; `Engine` fits it. */
export interface SchedulerEngine {
  backup(db: string, o: BackupOptions): Promise<BackupResult>;
  list(dir: string, db?: string): Promise<{ records: BackupRecord[] }>;
  catalog(dir: string): Catalog;
  /**
   * The rolling restore test of one directory's kept backups; optional. A result with
   * `ok: false` is a failed test (surfaced on onDidFail too).
   */
  restoreTest?(dir: string, settings: Settings, o?: { signal?: AbortSignal; onProgress?: ProgressListener }): Promise<unknown>;
}

export interface SchedulerOptions {
  engine: SchedulerEngine;
  /** The only way the scheduler reads or waits for time. */
  clock: Clock;
  settings: Settings;
  targets: ScheduleTarget[];
  logger?: Logger;
  /** IANA zone of the schedule; default the machine's local zone. */
  timeZone?: string;
  /** Wait before the first check, so that VS Code's startup stays fast. Default 30 s. */
  startDelayMs?: number;
  /** Longest wait between checks. Default 5 min. */
  pollMs?: number;
  /** Waits before the retries of a failed backup; then the slot is given up. Default 5 min, 30 min, 2 h. */
  retryDelaysMs?: readonly number[];
  /** A check this long after its slot is a catch-up (and names the missed slots). Default 60 s. */
  lateAfterMs?: number;
  /** Restore tests run when the newest one is older than this. Default 7 days. */
  restoreTestEveryMs?: number;
  /** Reads a database's fingerprint; default `readSourceState`. */
  sourceState?: (db: string) => Promise<SourceStateRecord>;
  /** Passed to each directory's SlotClaims (staleMs; pid and host for tests). */
  claims?: Omit<SlotClaimsOptions, 'clock'>;
}

/** A scheduled backup that ran, or a slot settled because the database was unchanged. */
export interface ScheduleRunEvent {
  db: string;
  dir: string;
  slot: Date;
  outcome: 'backedUp' | 'unchanged';
  /** The new backup, or (unchanged) the verified backup the database still matches. */
  record: BackupRecord;
  verified: boolean;
  sourceDamaged: boolean;
  catchUp: boolean;
  /** For a catch-up: slots that passed without their backup (see DueDecision). */
  missed: Date[];
  missedCount: number;
}

/** A failure: a scheduled backup, a restore test, or the schedule itself (invalid settings). */
export interface ScheduleFailEvent {
  what: 'backup' | 'restoreTest' | 'schedule';
  db?: string;
  dir?: string;
  slot?: Date;
  error: BackupError;
  /** 1 for the first attempt at this slot. */
  attempt: number;
  /** When the next attempt runs; undefined when given up until the next slot. */
  retryAt?: Date;
  gaveUp: boolean;
}

/**
 * Progress of one backup or restore test the scheduler runs: first an event with phase
 * `starting`, then the engine's own progress (phase, `done` of `total` bytes, total 0
 * when unknown), then exactly one event with `end` (ok, or failed or cancelled with the
 * reason). Every attempt that fails gets a start and an end, also when it failed before
 * the engine ran (an unusable backup directory). Events of one run share `run`.
 */
export interface ScheduleProgressEvent {
  /** Unique per run within one Scheduler. */
  run: number;
  what: 'backup' | 'restoreTest';
  dir: string;
  /** The database (backups only). */
  db?: string;
  /** The slot being backed up (backups only). */
  slot?: Date;
  /** True for a catch-up backup of missed slots. */
  catchUp?: boolean;
  phase: string;
  done: number;
  total: number;
  end?: { ok: boolean; message: string };
}

export interface RestoreTestEvent {
  dir: string;
  result: unknown;
}

/** The result of checking one target once (see `checkNow`). */
export interface CheckResult {
  db: string;
  dir: string;
  status: 'off' | 'noSlot' | 'done' | 'waiting' | 'gaveUp' | 'busy' | 'backedUp' | 'unchanged' | 'failed' | 'cancelled';
  slot?: Date;
  record?: BackupRecord;
  error?: BackupError;
  retryAt?: Date;
  holder?: Claim;
}

interface TargetState {
  /** The newest slot known to be settled; later checks of it need no I/O. */
  handled?: number;
  attempt?: { slot: number; failures: number; retryAt?: number; gaveUp: boolean };
}

const MIN = 60_000;
export const DEFAULT_RETRY_DELAYS_MS: readonly number[] = [5 * MIN, 30 * MIN, 120 * MIN];
/** A restore test that threw is tried again after this long. */
const RESTORE_TEST_RETRY_MS = 24 * 60 * MIN;

/**
 * Runs automatic backups on a schedule. Call `start()` once; `updateSettings()` when
 * settings or databases change; `stop()` (or `dispose()`) to end it, which abandons a
 * running backup (the engine removes its partial files). Never throws from its loop:
 * failures are logged to the backup log and fired on `onDidFail`.
 */
export class Scheduler implements Disposable {
  private readonly runEmitter = new Emitter<ScheduleRunEvent>();
  private readonly failEmitter = new Emitter<ScheduleFailEvent>();
  private readonly restoreTestEmitter = new Emitter<RestoreTestEvent>();
  private readonly progressEmitter = new Emitter<ScheduleProgressEvent>();
  /** Each scheduled backup made or slot settled as unchanged. */
  readonly onDidRun: Event<ScheduleRunEvent> = this.runEmitter.event;
  /** Each failed attempt, with when it is retried. */
  readonly onDidFail: Event<ScheduleFailEvent> = this.failEmitter.event;
  /** Each restore test that ran to the end (its result says whether it passed). */
  readonly onDidRestoreTest: Event<RestoreTestEvent> = this.restoreTestEmitter.event;
  /** Start, progress and end of each backup and restore test it runs (see ScheduleProgressEvent). */
  readonly onDidProgress: Event<ScheduleProgressEvent> = this.progressEmitter.event;
  private nextRun = 1;

  private readonly engine: SchedulerEngine;
  private readonly clock: Clock;
  private readonly logger: Logger;
  private readonly timeZone: string | undefined;
  private readonly startDelayMs: number;
  private readonly pollMs: number;
  private readonly retryDelaysMs: readonly number[];
  private readonly lateAfterMs: number;
  private readonly restoreTestEveryMs: number;
  private readonly sourceState: (db: string) => Promise<SourceStateRecord>;
  private readonly claimOptions: Omit<SlotClaimsOptions, 'clock'>;

  private settings: Settings;
  private targets: ScheduleTarget[];
  private schedule: { settings: Settings; value?: Schedule; error?: BackupError } | undefined;
  private lastConfigError: string | undefined;
  private readonly states = new Map<string, TargetState>();
  private readonly claimsByDir = new Map<string, SlotClaims>();
  private readonly restoreTestNotBefore = new Map<string, number>();

  private started = false;
  private stopped = false;
  private dirty = false;
  private parked = false;
  private wakeOnSettings = false;
  private busy = 0;
  private wake: AbortController | undefined;
  private running: AbortController | undefined;
  private loopDone: Promise<void> = Promise.resolve();
  private passChain: Promise<unknown> = Promise.resolve();
  private idleWaiters: (() => void)[] = [];

  constructor(o: SchedulerOptions) {
    this.engine = o.engine;
    this.clock = o.clock;
    this.logger = o.logger ?? nullLogger;
    this.timeZone = o.timeZone;
    this.startDelayMs = o.startDelayMs ?? 30_000;
    this.pollMs = o.pollMs ?? 5 * MIN;
    this.retryDelaysMs = o.retryDelaysMs ?? DEFAULT_RETRY_DELAYS_MS;
    this.lateAfterMs = o.lateAfterMs ?? MIN;
    this.restoreTestEveryMs = o.restoreTestEveryMs ?? 7 * 24 * 60 * MIN;
    this.sourceState = o.sourceState ?? readSourceState;
    this.claimOptions = o.claims ?? {};
    this.settings = cloneSettings(o.settings);
    this.targets = normalizeTargets(o.targets);
  }

  /** Starts the loop: the first check after `startDelayMs`. Safe to repeat; does nothing after stop. */
  start(): void {
    if (this.started || this.stopped) return;
    this.started = true;
    this.loopDone = this.loop();
  }

  /**
   * Takes new settings (and, when given, new targets). A backup already running keeps
   * the settings it started with; the new ones apply from the check that follows it,
   * which runs at once. Safe to repeat.
   */
  updateSettings(settings: Settings, targets?: ScheduleTarget[]): void {
    this.settings = cloneSettings(settings);
    if (targets) this.targets = normalizeTargets(targets);
    this.schedule = undefined;
    if (this.stopped) return;
    if (this.parked && this.wakeOnSettings && this.wake) this.wake.abort();
    else this.dirty = true;
  }

  /** The next slot of the current schedule after now, or undefined (off, or invalid settings). */
  nextSlot(): Date | undefined {
    const s = this.currentSchedule().value;
    return s ? nextSlotAfter(s, this.clock.now()) : undefined;
  }

  /** The current schedule's label (`daily 02:00`), or undefined when off or invalid. */
  describe(): string | undefined {
    return this.currentSchedule().value?.label;
  }

  /**
   * Checks every target now, after any check in progress, and resolves with what each
   * check did. Backs up what is due, exactly as the loop does. Returns [] once stopped.
   */
  checkNow(): Promise<CheckResult[]> {
    return this.pass();
  }

  /** Resolves when no check is running and the loop is waiting (or stopped, or not started). */
  whenIdle(): Promise<void> {
    if (this.isIdle()) return Promise.resolve();
    return new Promise((r) => this.idleWaiters.push(r));
  }

  /**
   * Stops the loop and abandons a running backup through its AbortSignal (the engine
   * removes its partial files). Resolves when everything has settled. Safe to repeat.
   */
  async stop(): Promise<void> {
    if (!this.stopped) {
      this.stopped = true;
      this.wake?.abort();
      this.running?.abort(new BackupError('cancelled', 'the scheduler stopped'));
    }
    await this.loopDone;
    await this.passChain;
    this.notifyIdle();
  }

  /** Stops (see `stop`) and drops listeners once stopped. */
  dispose(): void {
    void this.stop().finally(() => {
      this.runEmitter.dispose();
      this.failEmitter.dispose();
      this.restoreTestEmitter.dispose();
      this.progressEmitter.dispose();
    });
  }

  private async loop(): Promise<void> {
    // A settings change during the start delay must not cut the delay short.
    await this.park(this.startDelayMs, false);
    while (!this.stopped) {
      await this.pass();
      if (this.stopped) break;
      if (this.dirty) {
        this.dirty = false;
        continue;
      }
      await this.park(this.wakeDelay(), true);
    }
  }

  private async park(ms: number, wakeOnSettings: boolean): Promise<void> {
    if (this.stopped) return;
    const wake = new AbortController();
    this.wake = wake;
    this.wakeOnSettings = wakeOnSettings;
    this.parked = true;
    this.notifyIdle();
    try {
      await this.clock.sleep(ms, wake.signal);
    } catch {
      // woken early: stop() or updateSettings()
    } finally {
      this.parked = false;
      if (this.wake === wake) this.wake = undefined;
    }
  }

  /** How long to sleep: until the next slot, the earliest retry, or the next poll. */
  private wakeDelay(): number {
    const now = this.clock.now().getTime();
    let wake = now + this.pollMs;
    const s = this.currentSchedule().value;
    const next = s && nextSlotAfter(s, new Date(now));
    if (next) wake = Math.min(wake, next.getTime());
    for (const st of this.states.values()) {
      const r = st.attempt?.retryAt;
      // A retry time already past is retried by the next poll, not in a tight loop.
      if (r !== undefined && r > now) wake = Math.min(wake, r);
    }
    return Math.max(0, wake - now);
  }

  private isIdle(): boolean {
    return this.busy === 0 && (this.parked || this.stopped || !this.started);
  }

  private notifyIdle(): void {
    if (!this.isIdle()) return;
    const waiters = this.idleWaiters;
    this.idleWaiters = [];
    for (const w of waiters) w();
  }

  private currentSchedule(): { value?: Schedule; error?: BackupError } {
    if (!this.schedule || this.schedule.settings !== this.settings) {
      try {
        this.schedule = { settings: this.settings, value: scheduleFromSettings(this.settings, this.timeZone) };
      } catch (e) {
        this.schedule = { settings: this.settings, error: e instanceof BackupError ? e : new BackupError('badConfig', (e as Error).message) };
      }
    }
    return this.schedule;
  }

  private pass(): Promise<CheckResult[]> {
    const run = this.passChain.then(() => this.runPass());
    this.passChain = run.catch(() => undefined);
    return run;
  }

  private async runPass(): Promise<CheckResult[]> {
    if (this.stopped) return [];
    this.busy++;
    try {
      // One pass sees one version of the settings, whatever arrives meanwhile.
      const settings = this.settings;
      const targets = this.targets;
      const { value: schedule, error } = this.currentSchedule();
      if (error) {
        if (this.lastConfigError !== error.message) {
          this.lastConfigError = error.message;
          this.logger.error(`schedule: ${error.message}`, { phase: 'schedule' });
          this.failEmitter.fire({ what: 'schedule', error, attempt: 1, gaveUp: true });
        }
        return targets.map((t) => ({ ...t, status: 'off' }));
      }
      this.lastConfigError = undefined;
      const results: CheckResult[] = [];
      for (const t of targets) {
        if (this.stopped) break;
        results.push(schedule ? await this.checkTarget(t, settings, schedule) : { ...t, status: 'off' });
      }
      if (!this.stopped) await this.restoreTests(settings, targets);
      return results;
    } catch (e) {
      // A bug must not end the loop: report it and carry on at the next wake.
      const err = e instanceof BackupError ? e : new BackupError('io', `scheduler: ${(e as Error)?.message ?? String(e)}`, { cause: e });
      this.logger.error(err.message, { phase: 'schedule' });
      this.failEmitter.fire({ what: 'schedule', error: err, attempt: 1, gaveUp: false });
      return [];
    } finally {
      this.busy--;
      this.notifyIdle();
    }
  }

  private stateOf(t: ScheduleTarget): TargetState {
    const k = `${t.dir}\0${t.db}`;
    let s = this.states.get(k);
    if (!s) this.states.set(k, (s = {}));
    return s;
  }

  private claimsOf(catalog: Catalog): SlotClaims {
    let c = this.claimsByDir.get(catalog.dir);
    if (!c) this.claimsByDir.set(catalog.dir, (c = new SlotClaims(catalog, { ...this.claimOptions, clock: this.clock })));
    return c;
  }

  private async checkTarget(t: ScheduleTarget, settings: Settings, schedule: Schedule): Promise<CheckResult> {
    const now = this.clock.now();
    const slot = latestSlotAtOrBefore(schedule, now);
    if (!slot) return { ...t, status: 'noSlot' };
    const slotMs = slot.getTime();
    const st = this.stateOf(t);
    if (st.handled !== undefined && st.handled >= slotMs) return { ...t, status: 'done', slot };
    if (st.attempt && st.attempt.slot !== slotMs) st.attempt = undefined;
    if (st.attempt?.gaveUp) return { ...t, status: 'gaveUp', slot };
    if (st.attempt?.retryAt !== undefined && st.attempt.retryAt > now.getTime()) {
      return { ...t, status: 'waiting', slot, retryAt: new Date(st.attempt.retryAt) };
    }
    const catalog = this.engine.catalog(t.dir);
    const claims = this.claimsOf(catalog);
    const name = path.basename(t.db);
    const fields = { db: t.db, phase: 'schedule' };
    let claim: Claim | undefined;
    let run: RunProgress | undefined;
    const base = { what: 'backup' as const, dir: t.dir, db: t.db, slot };
    try {
      // The source first: a missing or non-SQLite database must not create a backup directory.
      const current = await this.sourceState(t.db);
      const got = await claims
        .claim(t.db, slot, async (file) => {
          const { records } = await this.engine.list(t.dir, t.db);
          return { ...decideDue({ schedule, now, records, mark: file.marks[t.db], lateAfterMs: this.lateAfterMs }), records };
        })
        .catch((e: unknown) => {
          const err = fsError(e, t.dir, 'claiming the slot');
          // Its lock and claims live inside the backup directory: failing there is the directory's fault.
          if (err.reason !== 'io' && err.reason !== 'notFound') throw err;
          throw new BackupError('unwritable', `${t.dir}: the backup directory cannot be used (${err.message})`, { cause: e, path: t.dir });
        });
      if (got.status === 'busy') return { ...t, status: 'busy', slot, holder: got.holder };
      if (got.status === 'notDue') {
        st.handled = slotMs;
        st.attempt = undefined;
        return { ...t, status: 'done', slot };
      }
      claim = got.claim;
      const decision = got.decision as Extract<DueDecision, { due: true }> & { records: BackupRecord[] };

      if (settings.skipUnchanged) {
        const base = unchangedSince(current, decision.records);
        if (base) {
          const mark: SlotMark = { at: this.clock.now().toISOString(), outcome: 'unchanged', backup: base.id };
          await claims.release(claim, mark);
          claim = undefined;
          st.handled = slotMs;
          st.attempt = undefined;
          const message = `${name} is unchanged since ${base.id}: no ${schedule.label} backup written`;
          await catalog.record({ op: 'backup.unchanged', level: 'info', db: t.db, backup: base.id, message, detail: { slot: isoLocal(slot) } });
          this.logger.info(message, fields);
          this.runEmitter.fire({ ...t, slot, outcome: 'unchanged', record: base, verified: true, sourceDamaged: false, catchUp: decision.catchUp, missed: decision.missed, missedCount: decision.missedCount });
          return { ...t, status: 'unchanged', slot, record: base };
        }
      }

      if (decision.catchUp && !st.attempt) {
        const shown = decision.missed.map((d) => formatSlot(d, this.timeZone));
        const more = decision.missedCount > shown.length ? ` and ${decision.missedCount - shown.length} more` : '';
        const message = `${name}: missed ${decision.missedCount} ${schedule.label} slot${decision.missedCount === 1 ? '' : 's'} (${shown.join(', ')}${more}); one catch-up backup now`;
        await catalog.record({ op: 'schedule.missed', level: 'warn', db: t.db, message, detail: { slots: decision.missed.map((d) => isoLocal(d)), count: decision.missedCount } });
        this.logger.warn(message, fields);
      }

      const abort = new AbortController();
      this.running = abort;
      if (this.stopped) abort.abort(new BackupError('cancelled', 'the scheduler stopped'));
      run = this.beginRun({ ...base, catchUp: decision.catchUp });
      let res: BackupResult;
      try {
        res = await this.engine.backup(t.db, {
          dir: t.dir,
          kind: 'scheduled',
          settings,
          trigger: decision.catchUp ? `${schedule.label}, catch-up` : schedule.label,
          signal: abort.signal,
          onProgress: run.report,
        });
      } finally {
        if (this.running === abort) this.running = undefined;
      }
      const mark: SlotMark | undefined = res.verified
        ? undefined
        : { at: this.clock.now().toISOString(), outcome: res.sourceDamaged ? 'sourceDamaged' : 'unverified', backup: res.record.id };
      const held = claim;
      claim = undefined;
      await claims.release(held, mark).catch((e) => this.logger.warn(`could not clear the schedule claim in ${t.dir}: ${(e as Error).message}`, fields));
      st.handled = slotMs;
      st.attempt = undefined;
      const verdict = res.sourceDamaged
        ? `${name} is damaged: its backup ${res.record.id} failed verification`
        : `backed up ${name} (${res.record.id})${res.verified ? ', verified' : `, NOT verified (${res.record.manifest.verification.skippedReason ?? 'skipped'})`}`;
      run.end(!res.sourceDamaged, verdict);
      this.runEmitter.fire({
        ...t,
        slot,
        outcome: 'backedUp',
        record: res.record,
        verified: res.verified,
        sourceDamaged: res.sourceDamaged,
        catchUp: decision.catchUp,
        missed: decision.missed,
        missedCount: decision.missedCount,
      });
      return { ...t, status: 'backedUp', slot, record: res.record };
    } catch (e) {
      const error = e instanceof BackupError ? e : fsError(e, t.dir, 'running a scheduled backup');
      if (claim) await claims.release(claim).catch(() => undefined);
      if (this.stopped || error.reason === 'cancelled') {
        run?.end(false, `cancelled: ${error.message}`);
        this.logger.info(`scheduled backup of ${t.db} abandoned: the scheduler stopped`, fields);
        return { ...t, status: 'cancelled', slot, error };
      }
      // An attempt that failed before the engine ran (the directory unusable) is still an attempt to show.
      (run ?? this.beginRun(base)).end(false, error.message);
      return this.failed(t, st, slot, schedule, catalog, error);
    }
  }

  private async failed(t: ScheduleTarget, st: TargetState, slot: Date, schedule: Schedule, catalog: Catalog, error: BackupError): Promise<CheckResult> {
    const failures = (st.attempt?.failures ?? 0) + 1;
    const delay = this.retryDelaysMs[failures - 1];
    const at = this.clock.now().getTime();
    const gaveUp = delay === undefined;
    const retryAt = gaveUp ? undefined : at + delay;
    st.attempt = { slot: slot.getTime(), failures, retryAt, gaveUp };
    const next = nextSlotAfter(schedule, new Date(at));
    const name = path.basename(t.db);
    const message = gaveUp
      ? `scheduled backup of ${name} failed ${failures} times (${error.message}); next try at the next slot${next ? `, ${formatSlot(next, this.timeZone)}` : ''}`
      : `scheduled backup of ${name} failed (${error.message}); retry ${failures} of ${this.retryDelaysMs.length} at ${formatSlot(new Date(retryAt!), this.timeZone)}`;
    const entry: Omit<LogEntry, 'time'> = {
      op: 'schedule.retry',
      level: gaveUp ? 'error' : 'warn',
      db: t.db,
      message,
      detail: { slot: isoLocal(slot), attempt: failures, reason: error.reason, retryAt: retryAt === undefined ? undefined : isoLocal(new Date(retryAt)), gaveUp },
    };
    await catalog.record(entry);
    this.logger.error(message, { db: t.db, phase: 'schedule' });
    this.failEmitter.fire({ what: 'backup', db: t.db, dir: t.dir, slot, error, attempt: failures, retryAt: retryAt === undefined ? undefined : new Date(retryAt), gaveUp });
    return { ...t, status: 'failed', slot, error, retryAt: retryAt === undefined ? undefined : new Date(retryAt) };
  }

  /**
   * Starts one run's progress: fires its `starting` event and returns the reporter the
   * engine is handed. A listener that throws is logged, never allowed to fail the run.
   */
  private beginRun(base: Omit<ScheduleProgressEvent, 'run' | 'phase' | 'done' | 'total' | 'end'>): RunProgress {
    const run = this.nextRun++;
    let ended = false;
    const fire = (e: ScheduleProgressEvent) => {
      try {
        this.progressEmitter.fire(e);
      } catch (err) {
        this.logger.warn(`a progress listener failed: ${(err as Error)?.message ?? String(err)}`, { phase: 'schedule' });
      }
    };
    fire({ ...base, run, phase: 'starting', done: 0, total: 0 });
    return {
      report: (p: Progress) => {
        if (!ended) fire({ ...base, run, phase: p.phase, done: p.done, total: p.total });
      },
      end: (ok, message) => {
        if (ended) return;
        ended = true;
        fire({ ...base, run, phase: ok ? 'done' : 'failed', done: 0, total: 0, end: { ok, message } });
      },
    };
  }

  /** Runs each directory's rolling restore test when the newest one is older than a week. */
  private async restoreTests(settings: Settings, targets: ScheduleTarget[]): Promise<void> {
    const run = this.engine.restoreTest?.bind(this.engine);
    if (!run || !settings.enabled || !settings.restoreTest) return;
    for (const dir of new Set(targets.map((t) => t.dir))) {
      if (this.stopped) return;
      const now = this.clock.now().getTime();
      const notBefore = this.restoreTestNotBefore.get(dir);
      // Trust the memo only while it lies less than a period ahead: a clock set backwards
      // by months must not postpone the test by months.
      if (notBefore !== undefined && now < notBefore && notBefore - now <= this.restoreTestEveryMs) continue;
      const catalog = this.engine.catalog(dir);
      let claim: Claim | undefined;
      let progress: RunProgress | undefined;
      const claims = this.claimsOf(catalog);
      try {
        if (!(await this.engine.list(dir)).records.length) {
          this.restoreTestNotBefore.set(dir, now + this.pollMs);
          continue;
        }
        const newestTest = async () => {
          const state = await catalog.readState();
          let newest = -Infinity;
          for (const s of Object.values(state.backups)) {
            const at = s.lastRestoreTest ? Date.parse(s.lastRestoreTest.at) : NaN;
            if (at > newest) newest = at;
          }
          return newest;
        };
        const newest = await newestTest();
        if (newest > now - this.restoreTestEveryMs) {
          this.restoreTestNotBefore.set(dir, newest + this.restoreTestEveryMs);
          continue;
        }
        const got = await claims.claim('restoreTest', new Date(now), async () => ({ due: (await newestTest()) <= now - this.restoreTestEveryMs }));
        if (got.status !== 'claimed') {
          this.restoreTestNotBefore.set(dir, now + this.pollMs);
          continue;
        }
        claim = got.claim;
        this.restoreTestNotBefore.set(dir, now + RESTORE_TEST_RETRY_MS);
        const abort = new AbortController();
        this.running = abort;
        if (this.stopped) abort.abort(new BackupError('cancelled', 'the scheduler stopped'));
        progress = this.beginRun({ what: 'restoreTest', dir });
        let result: unknown;
        try {
          result = await run(dir, cloneSettings(settings), { signal: abort.signal, onProgress: progress.report });
        } finally {
          if (this.running === abort) this.running = undefined;
        }
        const r = result as { ok?: unknown; problems?: unknown; path?: unknown } | undefined;
        const tested = r && typeof r.path === 'string' ? path.basename(r.path) : dir;
        if (r && r.ok === false) {
          const problems = Array.isArray(r.problems) ? r.problems.slice(0, 3).join('; ') : 'see the backup log';
          const error = new BackupError('verifyFailed', `restore test of ${typeof r.path === 'string' ? r.path : dir} failed: ${problems}`);
          progress.end(false, error.message);
          this.restoreTestEmitter.fire({ dir, result });
          this.logger.error(error.message, { phase: 'restoreTest' });
          this.failEmitter.fire({ what: 'restoreTest', dir, error, attempt: 1, gaveUp: false });
        } else {
          progress.end(true, r ? `restore test of ${tested} passed` : 'no backup to test');
          this.restoreTestEmitter.fire({ dir, result });
        }
      } catch (e) {
        const error = e instanceof BackupError ? e : fsError(e, dir, 'running the restore test');
        progress?.end(false, error.reason === 'cancelled' ? `cancelled: ${error.message}` : error.message);
        if (this.stopped || error.reason === 'cancelled') return;
        this.restoreTestNotBefore.set(dir, now + RESTORE_TEST_RETRY_MS);
        this.logger.error(`restore test in ${dir} failed: ${error.message}`, { phase: 'restoreTest' });
        this.failEmitter.fire({ what: 'restoreTest', dir, error, attempt: 1, retryAt: new Date(now + RESTORE_TEST_RETRY_MS), gaveUp: false });
      } finally {
        if (claim) await claims.release(claim).catch(() => undefined);
      }
    }
  }
}

/** Reports one run's progress; `end` after the first is ignored. */
interface RunProgress {
  report: ProgressListener;
  end(ok: boolean, message: string): void;
}

function normalizeTargets(targets: ScheduleTarget[]): ScheduleTarget[] {
  const seen = new Set<string>();
  const out: ScheduleTarget[] = [];
  for (const t of targets) {
    const n = { db: path.resolve(t.db), dir: path.resolve(t.dir) };
    const k = `${n.dir}\0${n.db}`;
    if (!seen.has(k)) {
      seen.add(k);
      out.push(n);
    }
  }
  return out;
}

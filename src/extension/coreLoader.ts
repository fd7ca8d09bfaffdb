import type { Logger } from '../core/context';

/**
 * The engine and the core modules the extension uses, loaded on first need so that
 * activation stays cheap (the bundle's core modules are only evaluated here).
 */
export async function loadCore() {
  const [engine, plan, stats, backupLog, catalog, fsutil, pushJob, liveGate] = await Promise.all([
    import('../core/engine.js'),
    import('../core/retention/plan.js'),
    import('../core/stats.js'),
    import('../core/catalog/backupLog.js'),
    import('../core/catalog/catalog.js'),
    import('../core/fsutil.js'),
    import('../core/offsite/pushJob.js'),
    import('../core/sqlite/liveGate.js'),
  ]);
  return {
    Engine: engine.Engine,
    planRotation: plan.planRotation,
    tiersOf: plan.tiersOf,
    computeStats: stats.computeStats,
    formatLogEntry: backupLog.formatLogEntry,
    Catalog: catalog.Catalog,
    canonicalPath: fsutil.canonicalPath,
    runPushJob: pushJob.runPushJob,
    runRemoteJob: pushJob.runRemoteJob,
    withSqliteLock: liveGate.withSqliteLock,
    secretsOfValues: pushJob.secretsOfValues,
  };
}

export type Core = Awaited<ReturnType<typeof loadCore>>;
export type EngineInstance = InstanceType<Core['Engine']>;

/** Loads the core once and builds one Engine with `logger`; every caller shares them. Safe to call repeatedly. */
export class CoreHost {
  private loading: Promise<{ core: Core; engine: EngineInstance }> | undefined;
  constructor(readonly logger: Logger) {}

  get(): Promise<{ core: Core; engine: EngineInstance }> {
    this.loading ??= loadCore().then((core) => ({ core, engine: new core.Engine({ logger: this.logger }) }));
    return this.loading;
  }

  /** True once `get` was called (the core is loaded or loading). */
  get started(): boolean {
    return this.loading !== undefined;
  }
}

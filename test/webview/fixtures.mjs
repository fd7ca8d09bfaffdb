// The panel state the headless tests render: deterministic backups, failures and settings.
const KINDS = ['scheduled', 'scheduled', 'scheduled', 'shutdown', 'manual', 'migration', 'pre-restore'];
const TIER_OF = { scheduled: 'daily', shutdown: 'daily', manual: 'manual', migration: 'migrations', 'pre-restore': 'migrations' };

export const NOW = '2026-03-15T12:00:00.000Z';

export const SETTINGS = {
  enabled: true,
  'schedule.daily': true,
  'schedule.time': '02:00',
  'schedule.cron': '',
  backupOnShutdown: true,
  'migrations.backupBefore': true,
  'retention.daily': 30,
  'retention.weekly': 12,
  'retention.monthly': 12,
  'retention.keepWithin': '2d',
  'retention.keepEventBackups': 10,
  directory: 'backups',
  'verification.mode': 'auto',
  'verification.restoreTest': true,
  'verification.probeQuery': '',
  'offsite.url': '',
  'offsite.endpoint': '',
  'offsite.region': '',
  'offsite.encrypt': true,
  'offsite.bandwidthKiBps': 0,
  'offsite.retention.daily': '',
  'offsite.retention.weekly': '',
  'offsite.retention.monthly': '',
  'offsite.retention.keepWithin': '',
  'offsite.retention.keepEventBackups': '',
  notifications: 'failures',
};

/** `n` history rows, newest first, one every 6 hours before NOW; every 17th failed verification. */
export function historyRows(n, name = 'app') {
  const end = Date.parse(NOW);
  const rows = [];
  for (let i = 0; i < n; i++) {
    const t = new Date(end - (i + 1) * 6 * 3600_000 - (i % 7) * 60_000);
    const kind = KINDS[i % KINDS.length];
    const tier = i % 29 === 3 ? 'weekly' : i % 61 === 5 ? 'monthly' : TIER_OF[kind];
    const stamp = t.toISOString().replace(/[-:]/g, '').replace('.', '');
    rows.push({
      id: `${name}-${stamp}-${kind}`,
      created: t.toISOString(),
      kind,
      tier,
      size: Math.round(2_000_000 + 1_500_000 * Math.sin(i / 40) + (n - i) * 900),
      durationMs: 300 + ((i * 137) % 2400),
      verification: i % 17 === 9 ? 'failed' : i % 23 === 11 ? 'unverified' : 'verified',
      trigger: kind === 'migration' ? 'task: prisma migrate dev' : kind === 'scheduled' ? 'daily 02:00' : kind === 'manual' ? 'Back Up Now' : kind,
      pinned: i === 4,
      reasons: [`daily #${i + 1}`],
    });
  }
  return rows;
}

function database(id, label, rows, failures) {
  const perTier = {};
  for (const r of rows) {
    const t = (perTier[r.tier] ??= { count: 0, size: 0 });
    t.count++;
    t.size += r.size;
  }
  const verified = rows.filter((r) => r.verification === 'verified').length;
  return {
    id,
    label,
    folder: 'shop',
    backupDir: '/home/dev/shop/backups',
    stats: {
      count: rows.length,
      totalSize: rows.reduce((a, r) => a + r.size, 0),
      perTier,
      oldest: rows.at(-1)?.created,
      newest: rows[0]?.created,
      lastSuccess: rows[0]?.created,
      lastFailure: failures.at(-1),
      nextRun: '2026-03-16T02:00:00.000Z',
      schedule: 'daily 02:00',
      verifiedShare: rows.length ? verified / rows.length : 0,
      restoreTestedShare: 0.25,
      sourceHealth: { state: 'healthy', at: rows[0]?.created, detail: 'integrity_check passed' },
    },
    history: rows,
    failures,
    settings: { ...SETTINGS },
  };
}

/** A workspace with two databases: app.db (`n` backups, two failures) and an empty analytics.sqlite. */
export function panelState(n = 40) {
  const failures = [
    { time: '2026-03-10T02:00:05.000Z', reason: 'EACCES: permission denied, open /home/dev/shop/backups/.tmp' },
    { time: '2026-03-13T02:00:04.000Z', reason: 'disk full (ENOSPC) while writing the archive' },
  ];
  return {
    databases: [database('/home/dev/shop/data/app.db', 'data/app.db', historyRows(n), failures), database('/home/dev/shop/analytics.sqlite', 'analytics.sqlite', [], [])],
    trusted: true,
    scopes: ['workspace', 'user'],
    now: NOW,
  };
}

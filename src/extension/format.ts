/** Pure formatting for the tree, the status bar and messages. No `vscode` import (tested under plain Node). */
import { probeOnlyFailure, verificationState, type BackupKind, type BackupRecord, type Tier } from '../core/model';
import { formatBytes } from '../core/units';
import { formatLabel } from './backupFiles';
import type { BackupRowState } from './contextValues';

/** 1536 -> "1.5 KB". */
export const formatSize = formatBytes;

/** Age for the status bar: "just now", "12 min ago", "3 h ago", "4 d ago". A negative age (clock skew) reads "just now". */
export function formatAge(ms: number): string {
  const min = Math.floor(ms / 60_000);
  if (min < 1) return 'just now';
  if (min < 60) return `${min} min ago`;
  const h = Math.floor(min / 60);
  if (h < 48) return `${h} h ago`;
  return `${Math.floor(h / 24)} d ago`;
}

/** Local date and time of an ISO timestamp, e.g. "Nov 26, 2025, 09:07:12 AM" (the user's locale). */
export function formatLocal(iso: string, locale?: string): string {
  const d = new Date(iso);
  if (Number.isNaN(d.getTime())) return iso;
  return d.toLocaleString(locale, { year: 'numeric', month: 'short', day: 'numeric', hour: '2-digit', minute: '2-digit', second: '2-digit' });
}

/** A short local date and time for a tree row, so the description fits a narrow sidebar: "Nov 26, 09:07" (the year only when not `now`'s). */
export function formatRowLabel(iso: string, now: Date = new Date(), locale?: string): string {
  const d = new Date(iso);
  if (Number.isNaN(d.getTime())) return iso;
  const year = d.getFullYear() === now.getFullYear() ? {} : { year: 'numeric' as const };
  return d.toLocaleString(locale, { ...year, month: 'short', day: 'numeric', hour: '2-digit', minute: '2-digit', hourCycle: 'h23' });
}

/** verified / failed / unverified, as the row shows it: core's `verificationState`, the one rotation counts by. */
export function rowState(r: BackupRecord): BackupRowState {
  return verificationState(r);
}

const STATE_WORD: Record<BackupRowState, string> = { verified: 'verified', failed: 'FAILED verification', unverified: 'not verified' };

/**
 * A row's description: "1.2 MB · verified · manual" (plus " · pinned"); a verified backup
 * whose later probe query failed reads "verified, probe query failed".
 */
export function rowDescription(r: BackupRecord): string {
  const state = STATE_WORD[rowState(r)] + (probeOnlyFailure(r) ? ', probe query failed' : '');
  const parts = [formatSize(r.archiveSize), state, r.manifest.kind];
  if (r.state.pinned) parts.push('pinned');
  return parts.join(' · ');
}

export const TIER_LABEL: Record<Tier, string> = {
  daily: 'Daily',
  weekly: 'Weekly',
  monthly: 'Monthly',
  manual: 'Manual',
  migrations: 'Migrations',
};

export const KIND_LABEL: Record<BackupKind, string> = {
  scheduled: 'scheduled',
  manual: 'manual',
  migration: 'before a migration',
  shutdown: 'on shutdown',
  'pre-restore': 'before a restore',
};

/** Escapes text for a MarkdownString so file names with `*` or `_` render literally. */
export function mdEscape(s: string): string {
  return s.replace(/[\\`*_{}[\]()#+\-.!|<>]/g, (c) => `\\${c}`);
}

/**
 * The Markdown of a backup row's tooltip: the manifest's details, why it is kept, and its
 * last restore test. Pure.
 */
export function backupTooltip(r: BackupRecord, keep: { tier: Tier; reasons: string[] } | undefined): string {
  const m = r.manifest;
  const v = r.state.lastVerify ?? m.verification;
  const lines: string[] = [];
  lines.push(`**${mdEscape(m.source.name)}**, ${KIND_LABEL[m.kind]} backup${r.state.pinned ? ' (pinned)' : ''}`, '');
  lines.push(`- Created: ${mdEscape(formatLocal(m.created))}`);
  if (m.trigger) lines.push(`- Trigger: ${mdEscape(m.trigger)}`);
  lines.push(`- Format: ${formatLabel(r)}, ${mdEscape(r.object)}`);
  lines.push(`- Stored: ${formatSize(r.archiveSize)}${m.repository ? ' (its manifest and the pages no older backup had; shared pages are stored once)' : ''}`);
  lines.push(`- Database image: ${formatSize(m.image.size)}, ${m.image.pageCount} pages of ${m.image.pageSize} B, journal ${m.source.journalMode}${m.source.walFrames ? `, ${m.source.walFrames} WAL frames folded in` : ''}`);
  lines.push(`- Source: ${mdEscape(m.source.path)}`);
  const tables = Object.keys(v.rowCounts ?? {});
  const rows = tables.reduce((n, t) => n + (v.rowCounts[t] ?? 0), 0);
  // A later probe-query failure says nothing about the archive: passed, with a warning (the probe line below).
  const verdict = v.status === 'ok' || probeOnlyFailure(r) ? 'passed' : v.status === 'skipped' ? `skipped (${v.skippedReason ?? 'not checked'})` : `FAILED: ${v.problems.slice(0, 3).join('; ')}`;
  lines.push(`- Verification${r.state.lastVerify ? ` (re-checked ${formatLocal(v.checkedAt)})` : ''}: ${v.check} ${mdEscape(verdict)} with ${mdEscape(`${v.engine.name} ${v.engine.sqliteVersion}`)}; ${tables.length} tables, ${rows} rows`);
  if (v.foreignKeyViolations) lines.push(`- Foreign key violations: ${v.foreignKeyViolations}`);
  if (v.notChecked?.length) lines.push(`- Not checked: ${mdEscape(v.notChecked.join(', '))}`);
  if (v.probe) lines.push(`- Probe query: ${v.probe.ok ? 'ran' : `failed (${mdEscape(v.probe.error ?? '')})`}`);
  if (m.sourceDamaged) lines.push('', '**The database itself was damaged when this backup was made.**');
  lines.push('', `**Kept because:** ${keep?.reasons.length ? mdEscape(keep.reasons.join('; ')) : 'unknown'}`);
  const t = r.state.lastRestoreTest;
  lines.push('', `**Last restore test:** ${t ? `${t.ok ? 'passed' : 'FAILED'} ${mdEscape(formatLocal(t.at))}${t.detail ? ` (${mdEscape(t.detail)})` : ''}` : 'never'}`);
  return lines.join('\n');
}

// The extension's pure parts, under plain Node: tasks.json editing, migration detection,
// formatting, and package.json's contributions against the command table and FIELDS.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { parse } from 'jsonc-parser';
import { DEFAULT_SETTINGS, FIELDS } from '../../src/core/config';
import { BackupError } from '../../src/core/errors';
import { COMMANDS, COMMAND_CATEGORY } from '../../src/extension/commandIds';
import { backupContext, VIEW_ITEM } from '../../src/extension/contextValues';
import { formatAge, formatSize } from '../../src/extension/format';
import { backupTaskLabel, looksLikeMigration } from '../../src/extension/migrations';
import { addBackupDependency, hasBackupStep, listTasks } from '../../src/extension/tasksJson';
import { DisposableStore } from '../../src/extension/lifecycle';

const root = path.resolve(__dirname, '../../..');
const pkg = JSON.parse(readFileSync(path.join(root, 'package.json'), 'utf8'));

const TASKS = `{
  // my tasks
  "version": "2.0.0",
  "tasks": [
    {
      "label": "build", // the build
      "type": "shell",
      "command": "npm run build"
    },
    {
      "label": "migrate",
      "type": "shell",
      "command": "npx prisma migrate deploy",
      "dependsOn": "build",
    },
  ]
}`;

test('addBackupDependency puts the backup first, sets sequence, keeps comments, and is safe to repeat', () => {
  const dep = backupTaskLabel('data/app.db');
  assert.equal(dep, 'lifeboat: Back up data/app.db');
  const out = addBackupDependency(TASKS, 'migrate', dep);
  assert.match(out, /\/\/ my tasks/);
  assert.match(out, /\/\/ the build/);
  const parsed = parse(out) as { tasks: { label: string; dependsOn?: unknown; dependsOrder?: string }[] };
  const migrate = parsed.tasks.find((t) => t.label === 'migrate')!;
  assert.deepEqual(migrate.dependsOn, [dep, 'build']);
  assert.equal(migrate.dependsOrder, 'sequence');
  assert.equal(parsed.tasks.find((t) => t.label === 'build')!.dependsOn, undefined);
  assert.equal(addBackupDependency(out, 'migrate', dep), out);
  const entry = listTasks(out).find((t) => t.label === 'migrate')!;
  assert.equal(hasBackupStep(entry), true);
  assert.equal(hasBackupStep(listTasks(TASKS).find((t) => t.label === 'migrate')!), false);
});

test('addBackupDependency names the missing task', () => {
  assert.throws(
    () => addBackupDependency(TASKS, 'seed', 'lifeboat: Back up app.db'),
    (e: unknown) => BackupError.is(e, 'notFound') && /seed/.test((e as Error).message),
  );
  assert.throws(() => addBackupDependency('{}', 'x', 'y'), (e: unknown) => BackupError.is(e, 'badConfig'));
});

test('listTasks reads labels and command lines', () => {
  const tasks = listTasks(TASKS);
  assert.deepEqual(
    tasks.map((t) => [t.label, t.command]),
    [
      ['build', 'npm run build'],
      ['migrate', 'npx prisma migrate deploy'],
    ],
  );
});

test('looksLikeMigration knows the tools and the user patterns', () => {
  for (const cmd of [
    'npx prisma migrate dev',
    'drizzle-kit push',
    'npx drizzle-kit migrate',
    'knex migrate:latest',
    'npx sequelize-cli db:migrate',
    'typeorm migration:run -d ds.ts',
    'alembic upgrade head',
    'bin/rails db:migrate',
    'python manage.py migrate',
  ]) {
    assert.equal(looksLikeMigration([cmd]), true, cmd);
  }
  for (const cmd of ['npm run build', 'prisma generate', 'python manage.py runserver', 'git merge']) {
    assert.equal(looksLikeMigration([cmd]), false, cmd);
  }
  assert.equal(looksLikeMigration(['npm run db:up'], ['db:up']), true);
  assert.equal(looksLikeMigration(['npm run db:up'], ['(unclosed']), false);
});

test('formatAge and formatSize read as people expect', () => {
  assert.equal(formatAge(-5000), 'just now');
  assert.equal(formatAge(59_000), 'just now');
  assert.equal(formatAge(12 * 60_000), '12 min ago');
  assert.equal(formatAge(3 * 3_600_000 + 5 * 60_000), '3 h ago');
  assert.equal(formatAge(5 * 86_400_000), '5 d ago');
  assert.equal(formatSize(1536), '1.5 KB');
  assert.equal(formatSize(500), '500 B');
});

test('backup context values match the menus regular expressions', () => {
  const re = (s: string) => new RegExp(s.slice(1, -1));
  const plain = backupContext('manual', 'verified', false);
  const pinned = backupContext('scheduled', 'failed', true);
  assert.equal(re(VIEW_ITEM.anyBackup).test(plain) && re(VIEW_ITEM.anyBackup).test(pinned), true);
  assert.equal(re(VIEW_ITEM.unpinned).test(plain), true);
  assert.equal(re(VIEW_ITEM.unpinned).test(pinned), false);
  assert.equal(re(VIEW_ITEM.pinned).test(pinned), true);
  assert.equal(re(VIEW_ITEM.pinned).test(plain), false);
  // pre-restore has a dash, not a dot: still one segment.
  assert.equal(re(VIEW_ITEM.unpinned).test(backupContext('pre-restore', 'unverified', false)), true);
  // package.json's menus use the same expressions.
  const whens = (pkg.contributes.menus['view/item/context'] as { when: string }[]).map((m) => m.when).join('\n');
  for (const v of [VIEW_ITEM.anyBackup, VIEW_ITEM.pinned, VIEW_ITEM.unpinned]) assert.ok(whens.includes(v), v);
});

test('package.json contributes exactly the command table, category Lifeboat', () => {
  const contributed = pkg.contributes.commands as { command: string; title: string; category: string }[];
  const table = Object.values(COMMANDS);
  assert.deepEqual(contributed.map((c) => [c.command, c.title]).sort(), table.map((c) => [c.id, c.title]).sort());
  for (const c of contributed) assert.equal(c.category, COMMAND_CATEGORY);
  const hidden = new Set((pkg.contributes.menus.commandPalette as { command: string; when: string }[]).filter((m) => m.when === 'false').map((m) => m.command));
  for (const c of table) assert.equal(hidden.has(c.id), !c.palette, c.id);
  // The 13 titles of the issue, Save Backup As, issue 12's Open Backup and two Compares, and issue 11's four off-site commands.
  const titles = table.filter((c) => c.id !== 'lifeboat.refresh').map((c) => c.title);
  assert.equal(titles.length, 21);
});

test('package.json has a setting for every FIELDS key, with the core default and a validating schema', () => {
  const props = pkg.contributes.configuration.properties as Record<string, { default: unknown; description?: string; markdownDescription?: string; enum?: unknown[]; minimum?: number; maximum?: number; pattern?: string; type: string }>;
  assert.deepEqual(Object.keys(props).sort(), FIELDS.map((f) => `lifeboat.${f.key}`).sort());
  for (const f of FIELDS) {
    const p = props[`lifeboat.${f.key}`];
    assert.deepEqual(p.default, f.get(DEFAULT_SETTINGS), f.key);
    assert.ok(p.description || p.markdownDescription, `${f.key} has no description`);
    if (p.type === 'integer') assert.ok(p.minimum !== undefined && p.maximum !== undefined, `${f.key} lacks bounds`);
    // Each schema accepts its default and the core's check agrees with a pattern's verdict.
    if (p.pattern) {
      const re = new RegExp(p.pattern);
      assert.ok(re.test(String(p.default)), `${f.key} pattern refuses its default`);
    }
  }
  const time = new RegExp(props['lifeboat.schedule.time'].pattern!);
  for (const [v, ok] of [['02:00', true], ['23:59', true], ['24:00', false], ['2:00', false], ['12:60', false]] as const) assert.equal(time.test(v), ok, v);
  const dur = new RegExp(props['lifeboat.retention.keepWithin'].pattern!);
  for (const [v, ok] of [['2d', true], ['1y2m3d', true], ['', true], ['2 days', false], ['d', false]] as const) assert.equal(dur.test(v), ok, v);
  assert.deepEqual(props['lifeboat.notifications'].enum, ['all', 'failures', 'none']);
});

test('package.json: trust, kind, activation, task type', () => {
  assert.deepEqual(pkg.activationEvents, ['onStartupFinished']);
  assert.deepEqual(pkg.extensionKind, ['workspace']);
  assert.equal(pkg.capabilities.untrustedWorkspaces.supported, 'limited');
  // The tree stays readable in Restricted Mode, so where the databases and backups are is not restricted;
  // what would change behaviour once trusted (a probe query, migration patterns) is.
  const restricted: string[] = pkg.capabilities.untrustedWorkspaces.restrictedConfigurations;
  assert.ok(!restricted.includes('lifeboat.databases') && !restricted.includes('lifeboat.directory'));
  assert.ok(restricted.includes('lifeboat.verification.probeQuery'));
  assert.equal(pkg.contributes.taskDefinitions[0].type, 'lifeboat');
  assert.ok(pkg.contributes.taskDefinitions[0].properties.database);
});

test('DisposableStore disposes in reverse order, once, and disposes late registrations at once', () => {
  const order: string[] = [];
  const s = new DisposableStore();
  s.add({ dispose: () => order.push('a') });
  s.add({
    dispose: () => {
      order.push('b');
      throw new Error('bad disposer');
    },
  });
  s.add({ dispose: () => order.push('c') });
  s.dispose();
  s.dispose();
  assert.deepEqual(order, ['c', 'b', 'a']);
  s.add({ dispose: () => order.push('late') });
  assert.deepEqual(order, ['c', 'b', 'a', 'late']);
});

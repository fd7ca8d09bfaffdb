/**
 * Editing `.vscode/tasks.json` with jsonc-parser so comments and formatting survive.
 * Pure (text in, text out); no `vscode` import.
 */
import { applyEdits, findNodeAtLocation, modify, parseTree, type FormattingOptions, type Node } from 'jsonc-parser';
import { BackupError } from '../core/errors';
import { TASK_SOURCE } from './migrations';

/** A task found in tasks.json: its label, its position in `tasks`, and its command line. */
export interface TaskEntry {
  label: string;
  index: number;
  command: string;
  dependsOn: string[];
}

function tasksNode(text: string): Node | undefined {
  const root = parseTree(text, [], { allowTrailingComma: true, disallowComments: false });
  if (!root) return undefined;
  const tasks = findNodeAtLocation(root, ['tasks']);
  return tasks?.type === 'array' ? tasks : undefined;
}

function valueOf(n: Node | undefined): unknown {
  if (!n) return undefined;
  if (n.type === 'array') return (n.children ?? []).map(valueOf);
  if (n.type === 'object') {
    const o: Record<string, unknown> = {};
    for (const p of n.children ?? []) if (p.children?.[0]) o[String(p.children[0].value)] = valueOf(p.children[1]);
    return o;
  }
  return n.value;
}

/**
 * The tasks of a tasks.json text that have a `label`, in file order. Tolerates comments
 * and trailing commas; returns [] when the text has no `tasks` array. Pure.
 */
export function listTasks(text: string): TaskEntry[] {
  const arr = tasksNode(text);
  const out: TaskEntry[] = [];
  (arr?.children ?? []).forEach((n, index) => {
    const t = valueOf(n) as Record<string, unknown>;
    if (!t || typeof t !== 'object' || typeof t.label !== 'string') return;
    const args = Array.isArray(t.args) ? t.args.map((a) => (typeof a === 'string' ? a : String((a as { value?: unknown })?.value ?? ''))) : [];
    const deps = t.dependsOn === undefined ? [] : Array.isArray(t.dependsOn) ? t.dependsOn : [t.dependsOn];
    out.push({
      label: t.label,
      index,
      command: [typeof t.command === 'string' ? t.command : '', ...args].join(' ').trim(),
      dependsOn: deps.map((d) => (typeof d === 'string' ? d : `${TASK_SOURCE === (d as { type?: unknown })?.type ? `${TASK_SOURCE}:` : ''}${JSON.stringify(d)}`)),
    });
  });
  return out;
}

/** True when the task already depends on one of Lifeboat's backup tasks. */
export function hasBackupStep(t: TaskEntry): boolean {
  return t.dependsOn.some((d) => d.startsWith(`${TASK_SOURCE}:`));
}

/**
 * Returns `text` with `depLabel` first in the `dependsOn` of the task labelled `taskLabel`
 * and `dependsOrder: "sequence"`, keeping comments and the rest of the formatting. An
 * existing string `dependsOn` becomes a list. Unchanged text when the dependency is
 * already there (safe to repeat). Throws BackupError 'notFound' naming the task when no
 * task has that label, 'badConfig' when the text has no `tasks` array.
 */
export function addBackupDependency(text: string, taskLabel: string, depLabel: string, formatting: FormattingOptions = { insertSpaces: true, tabSize: 2 }): string {
  if (!tasksNode(text)) throw new BackupError('badConfig', `tasks.json has no "tasks" list to add "${depLabel}" to`);
  const task = listTasks(text).find((t) => t.label === taskLabel);
  if (!task) throw new BackupError('notFound', `tasks.json has no task labelled "${taskLabel}"`);
  const root = parseTree(text, [], { allowTrailingComma: true })!;
  const node = findNodeAtLocation(root, ['tasks', task.index]);
  const raw = valueOf(node) as Record<string, unknown>;
  const current = raw.dependsOn === undefined ? [] : Array.isArray(raw.dependsOn) ? raw.dependsOn : [raw.dependsOn];
  let out = text;
  const opts = { formattingOptions: formatting };
  if (!current.includes(depLabel)) {
    out = applyEdits(out, modify(out, ['tasks', task.index, 'dependsOn'], [depLabel, ...current], opts));
  }
  if (raw.dependsOrder !== 'sequence') {
    out = applyEdits(out, modify(out, ['tasks', task.index, 'dependsOrder'], 'sequence', opts));
  }
  return out;
}

/** A new tasks.json text holding nothing but the version and an empty task list. */
export const EMPTY_TASKS_JSON = '{\n  // See https://go.microsoft.com/fwlink/?LinkId=733558\n  "version": "2.0.0",\n  "tasks": []\n}\n';

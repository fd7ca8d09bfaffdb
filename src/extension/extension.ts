import type * as vscode from 'vscode';
import { Container, type LifeboatApi } from './container';
import { SchedulerHost } from './scheduling';

let container: Container | undefined;

/**
 * Activation (onStartupFinished, or the view or a command): builds the container, which
 * registers everything and defers all file work; the engine loads on first need. Logs
 * its own duration. Returns the API the extension's tests use.
 */
export function activate(context: vscode.ExtensionContext): LifeboatApi {
  const t0 = performance.now();
  container = new Container(context, (c) => new SchedulerHost(c));
  context.subscriptions.push(container);
  const ms = performance.now() - t0;
  container.channel.info(`activated in ${ms.toFixed(1)} ms`);
  return container.api(ms);
}

/**
 * Runs the shutdown backup (skipped when nothing changed; abandoned cleanly after a few
 * seconds, leaving no partial archive). VS Code disposes the container afterwards.
 */
export function deactivate(): Promise<void> | undefined {
  const c = container;
  container = undefined;
  return c?.shutdown();
}

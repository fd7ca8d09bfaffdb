import type * as vscode from 'vscode';

export function activate(_context: vscode.ExtensionContext): void {
  // The container of services is built in a later step (issue 5).
}

export function deactivate(): void {}

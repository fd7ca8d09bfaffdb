import { randomBytes } from 'node:crypto';
import * as vscode from 'vscode';

/**
 * The page of a Lifeboat webview: dist/webview.js under a strict CSP (scripts and styles
 * only by a fresh nonce, nothing from elsewhere), with `view` telling the app which view
 * to draw ('panel': Settings and Statistics; 'inspect': a backup's or a comparison's view).
 * Pure apart from the nonce.
 */
export function appHtml(webview: vscode.Webview, extensionUri: vscode.Uri, title: string, view: 'panel' | 'inspect'): string {
  const nonce = randomBytes(16).toString('base64');
  const script = webview.asWebviewUri(vscode.Uri.joinPath(extensionUri, 'dist', 'webview.js'));
  const csp = [
    "default-src 'none'",
    `img-src ${webview.cspSource} data:`,
    `style-src ${webview.cspSource} 'nonce-${nonce}'`,
    `font-src ${webview.cspSource}`,
    `script-src 'nonce-${nonce}'`,
  ].join('; ');
  const esc = (s: string) => s.replace(/[&<>"]/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;' })[c]!);
  return `<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="${csp}">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>${esc(title)}</title>
</head>
<body>
<div id="app" data-nonce="${nonce}" data-view="${view}"></div>
<script type="module" nonce="${nonce}" src="${script.toString()}"></script>
</body>
</html>`;
}

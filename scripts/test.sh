#!/usr/bin/env bash
# `npm test`: installs what the tests lack (Debian's sqlite3 and chromium, code-server into
# .cache/), builds, type-checks, and runs every test: engine and CLI tests under node's
# test runner, then the extension inside a real VS Code (code-server + Chromium).
set -euo pipefail
cd "$(dirname "$0")/.."

[ -d node_modules ] || npm install

if [ -f scripts/vscode/setup.sh ]; then
  bash scripts/vscode/setup.sh
elif ! command -v sqlite3 >/dev/null; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    apt-get update -qq && apt-get install -y -qq sqlite3
  else
    echo "The tests need Debian's sqlite3 package: apt-get install sqlite3" >&2
    exit 1
  fi
fi

node esbuild.mjs
npx eslint src webview test scripts bench
node scripts/runTests.mjs unit integration --typecheck
if [ -f scripts/vscode/run.mjs ]; then
  node scripts/vscode/run.mjs
fi

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

rm -f test-results/summary-*.json
node esbuild.mjs
npx eslint src webview test scripts bench
node scripts/runTests.mjs unit integration --typecheck
node test/webview/run.mjs
node scripts/vscode/run.mjs

# One closing line over every suite.
node -e '
const fs = require("fs");
let p = 0, f = 0;
for (const n of fs.readdirSync("test-results").filter((n) => /^summary-.*\.json$/.test(n))) {
  const s = JSON.parse(fs.readFileSync("test-results/" + n, "utf8"));
  console.log(`  ${s.suite}: ${s.passed} passed, ${s.failed} failed`);
  p += s.passed; f += s.failed;
}
console.log(`${p} passed, ${f} failed`);
process.exit(f ? 1 : 0);
'

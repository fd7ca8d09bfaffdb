#!/usr/bin/env bash
# `npm test`: installs what the tests lack (Debian's sqlite3 and chromium, code-server and
# Node 24 into .cache/), builds, type-checks, and runs every test: the engine and CLI tests
# under node's test runner twice (Node 24: node:sqlite; the machine's Node: the fallback),
# then the panel in Chromium and the extension inside a real VS Code (code-server + Chromium).
# Every suite writes test-results/summary-<name>.json; the closing line counts them all.
set -euo pipefail
cd "$(dirname "$0")/.."
NODE24=.cache/node24/node_modules/.bin/node

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

if [ ! -x "$NODE24" ]; then
  echo "npm test needs Node 24 at $PWD/$NODE24 (node:sqlite); scripts/vscode/setup.sh installs it there" >&2
  exit 1
fi

# A real S3 server (OpenStack Swift, unpacked under .cache/swift), rclone (SFTP) and age.
bash scripts/servers/setup.sh

rm -f test-results/summary-*.json
node esbuild.mjs
npx eslint src webview test scripts bench
# Every suite runs even when one before it failed; the closing line decides the exit status.
node scripts/runTests.mjs unit integration --typecheck --runtime both || true
node test/webview/run.mjs || true
node scripts/vscode/run.mjs || true

# One closing line over every suite. A suite that wrote no summary counts as failed.
node -e '
const fs = require("fs");
const expected = ["node24", "fallback", "webview", "vscode"];
const others = fs.readdirSync("test-results").map((n) => /^summary-(.*)\.json$/.exec(n)?.[1]).filter((n) => n && !expected.includes(n));
let p = 0, f = 0, k = 0;
const missing = [];
for (const name of [...expected, ...others]) {
  const file = `test-results/summary-${name}.json`;
  if (!fs.existsSync(file)) {
    missing.push(name);
    console.log(`  ${name}: NO SUMMARY (the suite did not finish)`);
    continue;
  }
  const s = JSON.parse(fs.readFileSync(file, "utf8"));
  const skipped = Number(s.skipped ?? 0);
  console.log(`  ${s.suite}: ${s.passed} passed, ${s.failed} failed, ${skipped} skipped`);
  p += s.passed; f += s.failed; k += skipped;
}
console.log(`${p} passed, ${f} failed, ${k} skipped${missing.length ? ` (no summary from: ${missing.join(", ")})` : ""}`);
process.exit(f || missing.length ? 1 : 0);
'

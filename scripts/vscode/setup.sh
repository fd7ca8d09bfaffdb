#!/usr/bin/env bash
# Installs what the real-VS-Code tests need and is missing, and nothing else:
#   - Debian packages: chromium, sqlite3, ripgrep, and the headers code-server's native
#     modules build against (libkrb5-dev libxkbfile-dev libsecret-1-dev);
#   - code-server@4.100.3 (VS Code 1.100.3, Node 20) from npm into .cache/code-server/.
# Safe to repeat: a second run finds everything present and does no network work.
# Exits non-zero, naming what is missing, when it cannot install (no apt, not root,
# or the code-server install fails); a failed code-server install leaves no half tree.
set -euo pipefail

CODE_SERVER_VERSION=4.100.3
RIPGREP_PKG_VERSION=1.15.11             # the @vscode/ripgrep that VS Code 1.100 pins
RIPGREP_ASSET=ripgrep-v13.0.0-10-x86_64-unknown-linux-musl.tar.gz
# npm 11.19 warns about dependency install scripts no allowScripts entry covers (it still
# runs them unless strict-allow-scripts is set, and says that will change), and
# code-server needs them: its postinstall runs two nested `npm install`s (lib/vscode,
# lib/vscode/extensions) whose dependencies build native modules. So they are approved
# by name: the outer install through its package.json's allowScripts (code-server,
# argon2); each nested install, a project of its own, through a user .npmrc. npm exports
# an .npmrc's allow-scripts to lifecycle scripts as npm_config_allow_scripts, and a
# nested project-scoped install then refuses that as if it were the --allow-scripts flag
# (EALLOWSCRIPTS); so a small `npm` wrapper first in PATH drops the variable and points
# the nested npm at the .npmrc. The windows-* modules are left unapproved (no-ops here);
# code_server_ok below loads the native modules, so a skipped script cannot pass unseen.
OUTER_ALLOW='"code-server": true, "argon2": true'
VSCODE_ALLOW_SCRIPTS=@parcel/watcher,@vscode/deviceid,@vscode/ripgrep,@vscode/spdlog,kerberos,native-watchdog,node-pty

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
CS_DIR="$REPO/.cache/code-server"
CS_BIN="$CS_DIR/node_modules/.bin/code-server"
CS_PKG="$CS_DIR/node_modules/code-server"
START=$(date +%s)

log() { printf 'setup: %s\n' "$*"; }

# ---- Debian packages --------------------------------------------------------------
APT_PACKAGES=(chromium sqlite3 ripgrep libkrb5-dev libxkbfile-dev libsecret-1-dev)
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
for exe in /usr/bin/chromium sqlite3 rg; do
  command -v "$exe" >/dev/null || { echo "setup: $exe not found after install" >&2; exit 1; }
done

# ---- code-server -----------------------------------------------------------------
# "Works" means more than --version: the native modules built by the postinstall
# steps must exist too, or the server starts and then fails on the first terminal/watch.
code_server_ok() {
  [[ -x "$CS_BIN" ]] || return 1
  [[ "$("$CS_BIN" --version 2>/dev/null | head -n1)" == "$CODE_SERVER_VERSION "* ]] || return 1
  local v="$CS_PKG/lib/vscode/node_modules"
  # Loading the modules is the real test that their install scripts ran and built.
  (cd "$CS_PKG" && node -e 'require("argon2")') >/dev/null 2>&1 || return 1
  (cd "$CS_PKG/lib/vscode" && node -e '
    for (const m of ["node-pty", "@vscode/spdlog", "@parcel/watcher", "native-watchdog", "kerberos"]) require(m);
  ') >/dev/null 2>&1 || return 1
  [[ -x "$v/@vscode/ripgrep/bin/rg" ]] || return 1
  [[ -L "$CS_PKG/lib/vscode/node_modules.asar" ]] || return 1
  [[ -d "$CS_PKG/lib/vscode/extensions/node_modules/typescript" ]] || return 1
}

if code_server_ok; then
  log "code-server $CODE_SERVER_VERSION present ($CS_BIN)"
else
  log "installing code-server@$CODE_SERVER_VERSION into $CS_DIR"
  rm -rf "$CS_DIR"
  mkdir -p "$CS_DIR"
  # A private temporary folder: the ripgrep cache is looked up under os.tmpdir(), and
  # node-gyp's scratch files stay out of the shared /tmp.
  SETUP_TMP="$REPO/.cache/setup-tmp"
  rm -rf "$SETUP_TMP"
  mkdir -p "$SETUP_TMP/vscode-ripgrep-cache-$RIPGREP_PKG_VERSION" "$SETUP_TMP/rg"
  cleanup_tmp() { rm -rf "$SETUP_TMP"; }
  trap cleanup_tmp EXIT
  export TMPDIR="$SETUP_TMP"
  # @vscode/ripgrep's postinstall downloads rg from GitHub (unreachable here) unless a
  # tarball of that exact name is already in its cache; Debian's rg stands in for it.
  cp "$(command -v rg)" "$SETUP_TMP/rg/rg"
  tar -czf "$SETUP_TMP/vscode-ripgrep-cache-$RIPGREP_PKG_VERSION/$RIPGREP_ASSET" -C "$SETUP_TMP/rg" rg

  # The user's own npm settings (e.g. nodedir, so node-gyp uses local headers) plus the
  # install-script allow list for the nested installs (see the top of this file).
  NPMRC="$SETUP_TMP/npmrc"
  user_rc="$(npm config get userconfig 2>/dev/null || true)"
  if [[ -n "$user_rc" && -f "$user_rc" ]]; then
    grep -v -E '^[[:space:]]*(allow-scripts|ignore-scripts|yes)[[:space:]]*=' "$user_rc" >"$NPMRC" || true
  else
    : >"$NPMRC"
  fi
  printf 'allow-scripts=%s\n' "$VSCODE_ALLOW_SCRIPTS" >>"$NPMRC"
  real_npm="$(command -v npm)"
  mkdir -p "$SETUP_TMP/bin"
  printf '#!/bin/sh\nunset npm_config_allow_scripts\nexport npm_config_userconfig="%s"\nexec "%s" "$@"\n' \
    "$NPMRC" "$real_npm" >"$SETUP_TMP/bin/npm"
  chmod +x "$SETUP_TMP/bin/npm"

  cat >"$CS_DIR/package.json" <<EOF
{
  "name": "lifeboat-code-server",
  "private": true,
  "description": "code-server for Lifeboat's real-VS-Code tests (scripts/vscode/setup.sh)",
  "dependencies": { "code-server": "$CODE_SERVER_VERSION" },
  "allowScripts": { $OUTER_ALLOW }
}
EOF
  log "npm install (about a minute; builds native modules)"
  if ! (
    cd "$CS_DIR" &&
      PATH="$SETUP_TMP/bin:$PATH" \
      npm_config_unsafe_perm=true \
      npm_config_yes=true \
      npm_config_ignore_scripts=false \
      npm_config_strict_allow_scripts=false \
      npm_config_audit=false \
      npm_config_fund=false \
      npm_config_update_notifier=false \
      "$real_npm" install --no-package-lock --omit=dev --foreground-scripts </dev/null >"$REPO/.cache/code-server-install.log" 2>&1
  ); then
    tail -n 40 "$REPO/.cache/code-server-install.log" >&2
    rm -rf "$CS_DIR"
    echo "setup: npm install code-server@$CODE_SERVER_VERSION failed (full log: .cache/code-server-install.log)" >&2
    exit 1
  fi
  if ! code_server_ok; then
    tail -n 40 "$REPO/.cache/code-server-install.log" >&2
    rm -rf "$CS_DIR"
    echo "setup: code-server installed but its postinstall did not complete (native modules or rg missing; log: .cache/code-server-install.log)" >&2
    exit 1
  fi
  log "code-server $("$CS_BIN" --version | head -n1)"
fi

log "done in $(($(date +%s) - START)) s"

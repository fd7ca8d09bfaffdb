#!/usr/bin/env bash
# Installs what the tests against real remote servers need and is missing, and nothing else:
#   - Debian packages rclone (SFTP/WebDAV servers and an independent S3 client), age (decrypts
#     what the engine encrypts), python3 (runs Swift) and openssh-client (ssh-keyscan and
#     ssh-keygen, which the SFTP host key tests compare with), installed with apt-get as root;
#   - OpenStack Swift with its s3api middleware, and memcached: every .deb that
#     `apt-get install -s python3-swift memcached` would install is downloaded into
#     .cache/swift/debs/ and unpacked into .cache/swift/root/, nothing installed system-wide.
#     test/fixtures/swiftServer.ts runs it from there with the system python3.11 (its
#     PYTHON, and PYTHONPATH and LD_LIBRARY_PATH relative to the root, are key=value lines
#     in .cache/swift/root/.lifeboat-swift, written last).
# Safe to repeat: a second run finds the tree, checks that it imports and does no network
# work. Exits non-zero, naming what is missing, when it cannot install (not root for apt,
# no python3.11, a download fails); a failed run leaves no half tree (it builds in a
# temporary folder and renames it into place). Two runs at once take turns (flock).
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
SWIFT_DIR="$REPO/.cache/swift"
DEBS="$SWIFT_DIR/debs"
ROOT="$SWIFT_DIR/root"
# Written last into a finished tree; the fixture reads it (key=value lines) and so does
# the check below. Its presence alone proves nothing: swift_ok also imports.
STAMP_NAME=.lifeboat-swift
START=$(date +%s)

log() { printf 'setup: %s\n' "$*"; }
elapsed() { echo "$(($(date +%s) - $1)) s"; }
die() { printf 'setup: %s\n' "$*" >&2; exit 1; }

# ---- Debian packages ------------------------------------------------------------------
APT_PACKAGES=(rclone age python3 openssh-client)
missing=()
for p in "${APT_PACKAGES[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed'; then
    missing+=("$p")
  fi
done
if ((${#missing[@]})); then
  if [[ $(id -u) -ne 0 ]] || ! command -v apt-get >/dev/null; then
    die "missing Debian packages: ${missing[*]} (need root and apt-get to install them:" \
      "apt-get install -y ${missing[*]})"
  fi
  log "installing Debian packages: ${missing[*]}"
  t=$(date +%s)
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  log "Debian packages installed in $(elapsed "$t")"
else
  log "Debian packages present (${APT_PACKAGES[*]})"
fi
for exe in rclone age; do
  command -v "$exe" >/dev/null || die "$exe not found after install"
done

# ---- Python -------------------------------------------------------------------------
# Debian's python3-swift is built for, and its C extensions (liberasurecode via pyeclib,
# xattr, greenlet) compiled against, the system Python 3.11, whose sys.path also holds the
# system's dist-packages (Swift's dependencies already installed there are not downloaded
# again). A pyenv or other python3 first on PATH has neither, so the path is fixed here.
PYTHON=""
for cand in /usr/bin/python3 /usr/bin/python3.11; do
  if [[ -x "$cand" ]] && "$cand" -c 'import sys; sys.exit(sys.version_info[:2] != (3, 11))' 2>/dev/null; then
    PYTHON="$cand"
    break
  fi
done
[[ -n "$PYTHON" ]] || die "Swift needs Debian's Python 3.11 at /usr/bin/python3 or /usr/bin/python3.11 (Debian 12: apt-get install python3)"

# ---- Swift and memcached, unpacked ---------------------------------------------------
MULTIARCH="$(dpkg-architecture -qDEB_HOST_MULTIARCH 2>/dev/null || echo "$(uname -m)-linux-gnu")"

# "Works" means the pieces the fixture runs load: every server, the ring builder, s3api
# and tempauth with eventlet, and memcached's binary with its libraries.
swift_ok() {
  local root="$1"
  [[ -f "$root/$STAMP_NAME" ]] || return 1
  PYTHONPATH="$root/usr/lib/python3/dist-packages" LD_LIBRARY_PATH="$root/usr/lib/$MULTIARCH" \
    "$PYTHON" -c '
import swift, eventlet
import swift.common.wsgi, swift.common.utils, swift.common.storage_policy, swift.cli.ringbuilder
import swift.proxy.server, swift.obj.server, swift.container.server, swift.account.server
import swift.common.middleware.s3api.s3api, swift.common.middleware.tempauth, swift.common.middleware.memcache
import swift.common.middleware.slo, swift.common.middleware.dlo, swift.common.middleware.copy
assert swift.__version__.startswith("2."), swift.__version__
' >/dev/null 2>&1 || return 1
  LD_LIBRARY_PATH="$root/usr/lib/$MULTIARCH" "$root/usr/bin/memcached" -V >/dev/null 2>&1 || return 1
}

version_of() {
  PYTHONPATH="$ROOT/usr/lib/python3/dist-packages" "$PYTHON" -c 'import swift; print(swift.__version__)'
}

mkdir -p "$SWIFT_DIR"
exec 9>"$SWIFT_DIR/.lock"
flock 9

if swift_ok "$ROOT"; then
  log "Swift $(version_of) and memcached present ($ROOT)"
  log "done in $(elapsed "$START")"
  exit 0
fi

log "unpacking Swift (python3-swift) and memcached from Debian's packages into $ROOT"
t=$(date +%s)
TMP="$SWIFT_DIR/tmp.$$"
cleanup() { rm -rf "$TMP"; }
trap cleanup EXIT
rm -rf "$TMP"
mkdir -p "$TMP/root" "$TMP/debs" "$DEBS"

# What apt would install here, as name=version pairs, recommends included (as the recipe
# in docs measured). A machine that never ran `apt-get update` cannot resolve the names:
# update once, then retry.
simulate() {
  LC_ALL=C apt-get install -s -o Debug::NoLocking=1 python3-swift memcached 2>"$TMP/simulate.err" |
    awk '$1 == "Inst" { v = $3; gsub(/[()]/, "", v); print $2 "=" v }'
}
apt_update() {
  [[ $(id -u) -eq 0 ]] || die "apt's package lists are missing or stale and updating them needs root: apt-get update"
  log "apt-get update"
  apt-get update -qq || die "apt-get update failed"
}
mapfile -t PKGS < <(simulate)
if ((${#PKGS[@]} == 0)) && grep -q 'Unable to locate package' "$TMP/simulate.err"; then
  apt_update
  mapfile -t PKGS < <(simulate)
fi
((${#PKGS[@]})) || die "apt-get install -s python3-swift memcached lists nothing to install: $(tail -n 3 "$TMP/simulate.err")"

# The file name apt-get download gives name=version: name_version_arch.deb, the epoch's
# colon written %3a. Already there means fetched by an earlier run that failed later.
have_deb() {
  local name="${1%%=*}" version="${1#*=}"
  compgen -G "$DEBS/${name}_${version//:/%3a}_*.deb" >/dev/null
}
fetch=()
for p in "${PKGS[@]}"; do have_deb "$p" || fetch+=("$p"); done
if ((${#fetch[@]})); then
  log "downloading ${#fetch[@]} of ${#PKGS[@]} packages into $DEBS"
  download() { (cd "$TMP/debs" && apt-get download -qq "${fetch[@]}") >"$TMP/download.log" 2>&1; }
  if ! download; then
    # Lists older than the archive name versions it no longer has: update once and retry.
    apt_update
    mapfile -t PKGS < <(simulate)
    fetch=()
    for p in "${PKGS[@]}"; do have_deb "$p" || fetch+=("$p"); done
    rm -f "$TMP"/debs/*.deb
    if ((${#fetch[@]})) && ! download; then
      tail -n 20 "$TMP/download.log" >&2
      die "apt-get download failed (${#fetch[@]} packages)"
    fi
  fi
  # Only a download that succeeded gets here, so every file is whole.
  if compgen -G "$TMP/debs/*.deb" >/dev/null; then mv "$TMP"/debs/*.deb "$DEBS"/; fi
else
  log "all ${#PKGS[@]} packages already in $DEBS"
fi

for p in "${PKGS[@]}"; do
  name="${p%%=*}" version="${p#*=}"
  for deb in "$DEBS/${name}_${version//:/%3a}"_*.deb; do
    [[ -f "$deb" ]] || die "missing $deb after download"
    dpkg-deb -x "$deb" "$TMP/root" || die "dpkg-deb -x $deb failed"
  done
done
# Debian compiles the modules at install (py3compile), which an unpacked tree skips; without
# the .pyc files every server start compiles them again (about twice the import time).
# A .pyc names its source by path and mtime, both kept by the rename below.
"$PYTHON" -m compileall -q -j 0 "$TMP/root/usr/lib/python3/dist-packages" >/dev/null 2>&1 ||
  log "warning: compileall failed; the servers still run, only slower to start"
# Paths relative to the root, so the tree still works when the checkout moves.
printf 'PYTHON=%s\nPYTHONPATH=%s\nLD_LIBRARY_PATH=%s\nPACKAGES=%s\n' \
  "$PYTHON" usr/lib/python3/dist-packages "usr/lib/$MULTIARCH" "${PKGS[*]}" >"$TMP/root/$STAMP_NAME"

if ! swift_ok "$TMP/root"; then
  PYTHONPATH="$TMP/root/usr/lib/python3/dist-packages" LD_LIBRARY_PATH="$TMP/root/usr/lib/$MULTIARCH" \
    "$PYTHON" -c 'import swift.proxy.server, swift.common.middleware.s3api.s3api' 2>&1 | tail -n 5 >&2 || true
  die "Swift unpacked from ${#PKGS[@]} packages does not import with $PYTHON, or memcached does not run (see above)"
fi
rm -rf "$ROOT.old"
if [[ -e "$ROOT" ]]; then mv "$ROOT" "$ROOT.old"; fi
mv "$TMP/root" "$ROOT"
rm -rf "$ROOT.old"
log "Swift $(version_of) and memcached unpacked from ${#PKGS[@]} packages in $(elapsed "$t")"
log "done in $(elapsed "$START")"

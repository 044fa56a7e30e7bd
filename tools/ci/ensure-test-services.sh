#!/usr/bin/env bash
# `npm test` runs this first (the "pretest" script). Tests that need a service start it themselves
# and are never skipped: the batch-job tests start redis-server (free port, no persistence), the
# browser tests drive Debian's chromium through playwright-core (no browser download, ever).
# Installs the Debian packages that are missing when we may (root, or passwordless sudo);
# otherwise says what to do.
set -euo pipefail
missing=()
command -v redis-server >/dev/null 2>&1 || missing+=(redis-server)
command -v chromium >/dev/null 2>&1 || missing+=(chromium)
[ ${#missing[@]} -eq 0 ] && exit 0
if command -v apt-get >/dev/null 2>&1; then
  # (a flag, not "is as_root set": an empty array counts as unset in bash)
  can_install=0 as_root=()
  if [ "$(id -u)" = 0 ]; then
    can_install=1
  elif command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
    can_install=1 as_root=(sudo -n)
  fi
  if [ "$can_install" = 1 ]; then
    echo "installing ${missing[*]} (Debian packages) for the tests" >&2
    "${as_root[@]}" apt-get update -qq >/dev/null
    DEBIAN_FRONTEND=noninteractive "${as_root[@]}" apt-get install -y -qq "${missing[@]}" >/dev/null
    exit 0
  fi
fi
echo "the tests need ${missing[*]} on PATH: install them (Debian/Ubuntu: apt-get install" \
  "${missing[*]}; macOS: brew install redis and a Chromium, with CHROMIUM_PATH set) and run" \
  "npm test again" >&2
exit 1

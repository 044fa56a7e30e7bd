#!/usr/bin/env bash
# `npm test` runs this first (the "pretest" script): the batch-job tests start their own
# redis-server on a free port, without persistence, and are never skipped. Installs Debian's
# package when it is missing and we may (root, or passwordless sudo); otherwise says what to do.
set -euo pipefail
command -v redis-server >/dev/null 2>&1 && exit 0
if command -v apt-get >/dev/null 2>&1; then
  if [ "$(id -u)" = 0 ]; then
    as_root=()
  elif command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
    as_root=(sudo -n)
  fi
  if [ -n "${as_root+set}" ]; then
    echo "installing redis-server (Debian package) for the batch-job tests" >&2
    "${as_root[@]}" apt-get update -qq >/dev/null
    DEBIAN_FRONTEND=noninteractive "${as_root[@]}" apt-get install -y -qq redis-server >/dev/null
    exit 0
  fi
fi
echo "the batch-job tests need redis-server (7.x) on PATH: install it (Debian/Ubuntu:" \
  "apt-get install redis-server; macOS: brew install redis) and run npm test again" >&2
exit 1

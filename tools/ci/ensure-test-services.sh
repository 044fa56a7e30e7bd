#!/usr/bin/env bash
# `npm test` runs this first (the "pretest" script). Tests that need a service start it themselves
# and are never skipped: the batch-job tests start redis-server (free port, no persistence), the
# browser tests drive Debian's chromium through playwright-core (no browser download, ever), and
# the decoder tests hold the native JPEG and PNG decoders (packages/server/native) to sharp's
# pixels and the native resize to the JavaScript one's floats, so they are built here (a C
# compiler, libjpeg-turbo's and libpng's headers).
# Installs the Debian packages that are missing when we may (root, or passwordless sudo);
# otherwise says what to do.
set -euo pipefail
cd "$(dirname "$0")/../.."
build_image_decoders() {
  node packages/server/scripts/build-native.mjs
  for addon in jpeg-decode png-decode resize-normalize; do
    [ -f "packages/server/native/build/$addon.node" ] ||
      { echo "the native $addon addon did not build (see above)" >&2; exit 1; }
  done
}
missing=()
command -v redis-server >/dev/null 2>&1 || missing+=(redis-server)
command -v chromium >/dev/null 2>&1 || missing+=(chromium)
command -v "${CC:-cc}" >/dev/null 2>&1 || missing+=(gcc)
echo '#include <stdio.h>
#include <jpeglib.h>' | "${CC:-cc}" -E - >/dev/null 2>&1 || missing+=(libjpeg62-turbo-dev)
echo '#include <png.h>' | "${CC:-cc}" -E - >/dev/null 2>&1 || missing+=(libpng-dev)
[ ${#missing[@]} -eq 0 ] && { build_image_decoders; exit 0; }
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
    build_image_decoders
    exit 0
  fi
fi
echo "the tests need ${missing[*]} on PATH: install them (Debian/Ubuntu: apt-get install" \
  "${missing[*]}; macOS: brew install redis jpeg-turbo libpng and a Chromium, with CHROMIUM_PATH set) and run" \
  "npm test again" >&2
exit 1

#!/bin/sh
# SPDX-License-Identifier: GPL-2.0-or-later
# run-fuzz.sh SECONDS: builds the libFuzzer harnesses with clang in a build
# directory of their own and runs each for SECONDS on a scratch copy of its
# seed corpus. Exits non-zero if any harness crashes; the crashing inputs are
# kept in BUILDDIR/fuzz-artifacts/.
#
# Environment: PH_FUZZ_BUILDDIR (default: build-fuzz in the source tree).
set -eu

usage() {
  echo "usage: $0 SECONDS" >&2
  exit 2
}

[ $# -eq 1 ] || usage
seconds=$1
case $seconds in
  '' | *[!0-9]*) usage ;;
esac

srcdir=$(cd "$(dirname "$0")/../.." && pwd)
builddir=${PH_FUZZ_BUILDDIR:-$srcdir/build-fuzz}
harnesses="http-request body-scanner http-response host-list sniff socks"

command -v clang >/dev/null || { echo "run-fuzz.sh: clang is not installed" >&2; exit 1; }

if [ ! -f "$builddir/build.ninja" ]; then
  CC=clang meson setup "$builddir" "$srcdir" -Dfuzzing=true
else
  meson configure "$builddir" -Dfuzzing=true
fi
targets=
for h in $harnesses; do
  targets="$targets tests/fuzz/fuzz-$h"
done
# shellcheck disable=SC2086 # word splitting of the target list is wanted
ninja -C "$builddir" $targets

work=$(mktemp -d "${TMPDIR:-/tmp}/pinhole-fuzz.XXXXXX")
trap 'rm -rf "$work"' EXIT INT TERM
artifacts=$builddir/fuzz-artifacts
failed=

for h in $harnesses; do
  corpus=$work/$h
  mkdir -p "$corpus" "$artifacts/$h"
  if [ -d "$srcdir/tests/fuzz/corpus/$h" ]; then
    cp "$srcdir/tests/fuzz/corpus/$h"/* "$corpus/"
  fi
  # A harness's own dictionary (host-list.dict, sniff.dict), else the HTTP one.
  dict=$srcdir/tests/fuzz/$h.dict
  [ -f "$dict" ] || dict=$srcdir/tests/fuzz/http.dict
  echo "== fuzz-$h: $seconds s"
  if ! "$builddir/tests/fuzz/fuzz-$h" \
      -max_total_time="$seconds" \
      -dict="$dict" \
      -artifact_prefix="$artifacts/$h/" \
      -print_final_stats=1 \
      "$corpus"; then
    failed="$failed $h"
  fi
done

if [ -n "$failed" ]; then
  echo "run-fuzz.sh: crashes in:$failed (inputs in $artifacts/)" >&2
  exit 1
fi
echo "run-fuzz.sh: no crashes"

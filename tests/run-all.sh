#!/usr/bin/env bash
# run-all.sh: installs what is needed, builds, runs every test (unit and
# integration against real stunnel + Squid), then the fuzzers briefly.
# Under CI=true warnings are errors and a missing peer fails the run.
set -euo pipefail
cd "$(dirname "$0")/.."

bash tests/install-deps.sh

builddir=${PH_BUILDDIR:-build}
werror=false
[ "${CI:-}" = true ] && werror=true
if [ -f "$builddir/build.ninja" ]; then
  meson configure "$builddir" -Dwerror=$werror >/dev/null
else
  rm -rf "$builddir"
  meson setup "$builddir" -Dwerror=$werror
fi
ninja -C "$builddir"

status=0
meson test -C "$builddir" --print-errorlogs --num-processes 2 "$@" | tee "$builddir/test-summary.txt" || status=$?

fuzz_status=0
if [ -z "${PH_SKIP_FUZZ:-}" ]; then
  bash tests/fuzz/run-fuzz.sh "${PH_FUZZ_SECONDS:-30}" || fuzz_status=$?
fi

ok=$(sed -n 's/^Ok:[[:space:]]*\([0-9]*\).*/\1/p' "$builddir/test-summary.txt" | tail -1)
fail=$(sed -n 's/^Fail:[[:space:]]*\([0-9]*\).*/\1/p' "$builddir/test-summary.txt" | tail -1)
skip=$(sed -n 's/^Skipped:[[:space:]]*\([0-9]*\).*/\1/p' "$builddir/test-summary.txt" | tail -1)
[ "$fuzz_status" -eq 0 ] && ok=$(( ${ok:-0} + 1 )) || fail=$(( ${fail:-0} + 1 ))
echo "${ok:-0} passed, ${fail:-0} failed, ${skip:-0} skipped"
[ "$status" -eq 0 ] && [ "$fuzz_status" -eq 0 ]

#!/usr/bin/env bash
# run-all.sh: installs what is needed, builds, runs every test (unit and
# integration against real stunnel + Squid), then the fuzzers briefly, then the Windows build
# under Wine (tests/windows/run.sh; PH_SKIP_WINDOWS=1 leaves it out).
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

# The Windows build, cross-compiled here and tested under Wine (tests/windows/run.sh).
win_status=0
win_ok=0
win_fail=0
if [ -z "${PH_SKIP_WINDOWS:-}" ]; then
  bash tests/windows/run.sh "$builddir" | tee "$builddir/windows-summary.txt" || win_status=$?
  win_ok=$(sed -n 's/^windows: \([0-9]*\) passed.*/\1/p' "$builddir/windows-summary.txt" | tail -1)
  win_fail=$(sed -n 's/^windows: [0-9]* passed, \([0-9]*\) failed.*/\1/p' "$builddir/windows-summary.txt" | tail -1)
  [ "$win_status" -eq 0 ] || [ "${win_fail:-0}" -gt 0 ] || win_fail=1
fi

ok=$(sed -n 's/^Ok:[[:space:]]*\([0-9]*\).*/\1/p' "$builddir/test-summary.txt" | tail -1)
fail=$(sed -n 's/^Fail:[[:space:]]*\([0-9]*\).*/\1/p' "$builddir/test-summary.txt" | tail -1)
skip=$(sed -n 's/^Skipped:[[:space:]]*\([0-9]*\).*/\1/p' "$builddir/test-summary.txt" | tail -1)
[ "$fuzz_status" -eq 0 ] && ok=$(( ${ok:-0} + 1 )) || fail=$(( ${fail:-0} + 1 ))
ok=$(( ${ok:-0} + ${win_ok:-0} ))
fail=$(( ${fail:-0} + ${win_fail:-0} ))
echo "${ok:-0} passed, ${fail:-0} failed, ${skip:-0} skipped"
[ "$status" -eq 0 ] && [ "$fuzz_status" -eq 0 ] && [ "$win_status" -eq 0 ]

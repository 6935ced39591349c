#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
# run-all.sh: installs what is needed, builds, runs every test (unit and
# integration against real stunnel + Squid), then again in a build with ASan, UBSan and LSan
# (PH_SKIP_ASAN=1 leaves it out), then the fuzzers briefly, then the Windows build
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

# The same Linux tests in a second build with AddressSanitizer, UndefinedBehaviorSanitizer and
# LeakSanitizer ($PH_ASAN_BUILDDIR, default build-asan; PH_SKIP_ASAN=1 leaves it out, which is
# said and counted as a skip). Its default test setup runs each test under
# tests/sanitizers/run-test.sh, which fails a test when any process under it (the test, the
# agent, pinholectl, the tray) wrote a report, prints it, and keeps it in BUILD/sanitizer-logs/.
# Left out there: package (the .deb test builds its own package with dpkg-buildpackage and runs
# that, nothing of this build), fuzz (the fuzzers have their own ASan+libFuzzer build, below),
# i18n (gettext's tools and a Python script, no code of ours), soak (its RSS and fd budgets
# would measure ASan's quarantine and shadow memory, not the agent).
asan_status=0
asan_ok=0
asan_fail=0
asan_skip=0
if [ -z "${PH_SKIP_ASAN:-}" ]; then
  asan_builddir=${PH_ASAN_BUILDDIR:-build-asan}
  asan_opts=(-Dwerror=$werror -Db_sanitize=address,undefined -Db_lundef=false
    -Dc_args=-fno-omit-frame-pointer)
  asan_start=$(date +%s)
  if [ -f "$asan_builddir/build.ninja" ]; then
    meson configure "$asan_builddir" "${asan_opts[@]}" >/dev/null
  else
    rm -rf "$asan_builddir"
    meson setup "$asan_builddir" "${asan_opts[@]}"
  fi
  rm -f "$asan_builddir/test-summary.txt"
  ninja -C "$asan_builddir" || asan_status=$?
  if [ "$asan_status" -eq 0 ]; then
    meson test -C "$asan_builddir" --print-errorlogs --num-processes 2 --no-suite package \
      --no-suite fuzz --no-suite i18n --no-suite soak "$@" \
      | tee "$asan_builddir/test-summary.txt" || asan_status=$?
    asan_ok=$(sed -n 's/^Ok:[[:space:]]*\([0-9]*\).*/\1/p' "$asan_builddir/test-summary.txt" | tail -1)
    asan_fail=$(sed -n 's/^Fail:[[:space:]]*\([0-9]*\).*/\1/p' "$asan_builddir/test-summary.txt" | tail -1)
    asan_timeout=$(sed -n 's/^Timeout:[[:space:]]*\([0-9]*\).*/\1/p' "$asan_builddir/test-summary.txt" | tail -1)
    asan_skip=$(sed -n 's/^Skipped:[[:space:]]*\([0-9]*\).*/\1/p' "$asan_builddir/test-summary.txt" | tail -1)
    asan_fail=$(( ${asan_fail:-0} + ${asan_timeout:-0} ))
  fi
  [ "$asan_status" -eq 0 ] || [ "${asan_fail:-0}" -gt 0 ] || asan_fail=1
  echo "asan: ${asan_ok:-0} passed, ${asan_fail:-0} failed, ${asan_skip:-0} skipped" \
    "(build and tests: $(( $(date +%s) - asan_start ))s; reports: $asan_builddir/sanitizer-logs/)"
else
  echo "run-all: PH_SKIP_ASAN is set: the sanitizer build and its tests did NOT run (one skip)" >&2
  asan_skip=1
fi

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
timeout=$(sed -n 's/^Timeout:[[:space:]]*\([0-9]*\).*/\1/p' "$builddir/test-summary.txt" | tail -1)
fail=$(( ${fail:-0} + ${timeout:-0} ))
[ "$fuzz_status" -eq 0 ] && ok=$(( ${ok:-0} + 1 )) || fail=$(( ${fail:-0} + 1 ))
ok=$(( ${ok:-0} + ${asan_ok:-0} + ${win_ok:-0} ))
fail=$(( ${fail:-0} + ${asan_fail:-0} + ${win_fail:-0} ))
skip=$(( ${skip:-0} + ${asan_skip:-0} ))
# The names of what failed, last, so that the tail of the log says which test to read.
summaries=("$builddir/test-summary.txt")
[ -n "${PH_SKIP_ASAN:-}" ] || summaries+=("$asan_builddir/test-summary.txt")
[ -n "${PH_SKIP_WINDOWS:-}" ] || summaries+=("$builddir/windows-summary.txt")
for summary in "${summaries[@]}"; do
  [ -f "$summary" ] || continue
  grep -E '^[^0-9 ]* *[0-9]+/[0-9]+ .* (FAIL|TIMEOUT|ERROR) |^windows: [a-z0-9-]+ FAILED|^windows: 0 passed, 1 failed \(cross' "$summary" \
    | sed "s|^|failed ($summary): |" || true
done
[ "$fuzz_status" -eq 0 ] || echo "failed: the fuzzers (tests/fuzz/run-fuzz.sh, exit $fuzz_status)"
echo "${ok:-0} passed, ${fail:-0} failed, ${skip:-0} skipped"
[ "$status" -eq 0 ] && [ "$asan_status" -eq 0 ] && [ "$fuzz_status" -eq 0 ] && [ "$win_status" -eq 0 ]

#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
# run-test.sh CMD...: meson's exe_wrapper for the sanitizer build (the 'sanitize' test setup in
# tests/meson.build, the default when b_sanitize is set). It runs one test with the sanitizer
# options below and makes the test fail if any process under it -- the test binary, or the
# pinhole-agent, pinholectl and pinhole-tray it starts -- wrote a sanitizer report, even when the
# harness did not notice (a child killed later, a report at exit, a harness ignoring the status).
#
# ASan and LSan reports go to files (log_path) in a fresh directory per run under
# $PH_SANITIZER_LOG_DIR (the build dir's sanitizer-logs/), kept there, and are printed on stderr
# when there are any. UBSan's go to the process's stderr whatever log_path says (GCC's combined
# ASan+UBSan runtime), so for those the harnesses' checks of exit statuses are what counts:
# abort_on_error makes the process die of SIGABRT.
# Variables already set in the environment win, so a by-hand run can change them.
set -uo pipefail

here=$(cd "$(dirname "$0")" && pwd)
root=${PH_SANITIZER_LOG_DIR:-$PWD/sanitizer-logs}
mkdir -p "$root"
name=$(basename "${1:-test}")
for a in "${@:2}"; do
  case $a in -*) ;; *) name+="-$(basename "$a")" ;; esac
done
logdir=$(mktemp -d "$root/${name//[^A-Za-z0-9_.-]/_}.XXXXXX")
# Processes run as another user (pinholectl as nobody in test-ctl.sh) write here too.
chmod 1777 "$logdir"

# abort_on_error: a report kills the process with SIGABRT, which every harness sees as a crash.
# fast_unwind_on_malloc=0: leak stacks through GLib/GTK (built without frame pointers) are
# otherwise cut to one or two frames and cannot be suppressed or read.
# detect_leaks=1: LSan at every normal exit (the agent's SIGTERM path included).
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1:fast_unwind_on_malloc=0:malloc_context_size=40:print_suppressions=0:log_path=$logdir/asan}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-halt_on_error=1:abort_on_error=1:print_stacktrace=1:log_path=$logdir/ubsan}
export LSAN_OPTIONS=${LSAN_OPTIONS:-suppressions=$here/lsan.supp:print_suppressions=0}
# GLib's slice allocator and its lazily-cleared pointers hide and fake leaks; this makes every
# block a malloc LSan can follow and clears pointers on free.
export G_SLICE=${G_SLICE:-always-malloc}
case ",${G_DEBUG:-}," in *,gc-friendly,*) ;; *) export G_DEBUG=${G_DEBUG:+$G_DEBUG,}gc-friendly ;; esac

"$@"
status=$?

# meson starts each test in a session of its own: what the test left in it is killed, so that
# it cannot hold meson's output pipe open until the timeout. (A test that aborts leaves
# GTestDBus's dbus-daemon and its watcher so: GLib's watcher pipe is inherited by the next
# dbus-daemon, so the watcher never sees the test go and never kills the daemon.)
if [ "$(ps -o sid= -p $$ | tr -d ' ')" = "$$" ]; then
  pgrep -s $$ >"$logdir/.left" || true
  left=()
  while read -r pid; do [ "$pid" = $$ ] || left+=("$pid"); done <"$logdir/.left"
  rm -f "$logdir/.left"
  if [ ${#left[@]} -gt 0 ]; then
    echo "run-test.sh: killing what the test left running:" >&2
    ps -o pid=,args= -p "${left[@]}" >&2 || true
    kill -TERM "${left[@]}" 2>/dev/null
    sleep 1
    kill -KILL "${left[@]}" 2>/dev/null
  fi
fi

shopt -s nullglob
reports=()
for r in "$logdir"/*; do
  # GTestDBus's watcher (GLib's gtestdbus.c) is a fork of the test without exec that ends with
  # exit(): LSan then scans a copy whose other threads are gone, says "False leaks are
  # possible" and lists what only those threads' stacks held. Such a report, a leak report
  # only, is GLib's test harness and not a finding; it stays in the log directory.
  if grep -q 'False leaks are possible' "$r" && ! grep -q 'ERROR: AddressSanitizer\|runtime error' "$r"; then
    continue
  fi
  reports+=("$r")
done
if [ ${#reports[@]} -gt 0 ]; then
  for r in "${reports[@]}"; do
    printf '\n===== sanitizer report %s =====\n' "$r" >&2
    cat "$r" >&2
  done
  echo "run-test.sh: ${#reports[@]} sanitizer report(s) under $logdir" >&2
  [ "$status" -ne 0 ] || status=1
else
  rmdir "$logdir" 2>/dev/null
fi
exit "$status"

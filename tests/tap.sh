# SPDX-License-Identifier: GPL-2.0-or-later
# tap.sh: TAP output for the shell tests (sourced). Each script defines dump_logs (what to show
# when it bails out) and ends with tap_done.
#
#   pass DESC / fail DESC [DETAIL...]      one result; details are printed as # lines
#   verdict DESC [DETAIL...]               pass or fail by the status of the command just run;
#                                          no $(...) in its arguments: bash sets $? to the
#                                          status of the last command substitution
#   verdict_then DESC COMMAND...           the same, with COMMAND's output as the detail (run
#                                          after the status is taken)
#   check DESC COMMAND...                  runs COMMAND, passes when it succeeds (its output
#                                          is the detail when it fails)
#   skip DESC WHY / skip_all WHY           skip one, or all (a failure under CI=true)
#   begin TITLE                            a # heading; TAP_TIMED=1 times each result from here
#   bail WHY                               stop now
# shellcheck shell=bash

tests_run=0
tests_failed=0
tap_step_start=$(date +%s.%N)

tap_elapsed ()
{
  [[ ${TAP_TIMED:-0} == 1 ]] || return 0
  awk -v a="$tap_step_start" -v b="$(date +%s.%N)" 'BEGIN { printf " (%.1fs)", b - a }'
}

pass ()
{
  tests_run=$((tests_run + 1))
  echo "ok $tests_run - $1$(tap_elapsed)"
}

fail ()
{
  local what=$1 line
  shift
  tests_run=$((tests_run + 1))
  tests_failed=$((tests_failed + 1))
  echo "not ok $tests_run - $what$(tap_elapsed)"
  for line in "$@"; do
    printf '%s\n' "$line" | sed 's/^/#   /'
  done
}

verdict ()
{
  local status=$?
  if ((status == 0)); then
    pass "$1"
  else
    fail "$@"
  fi
}

verdict_then ()
{
  local status=$? what=$1 detail
  shift
  detail=$("$@" 2>&1)
  (exit "$status")
  verdict "$what" "$detail"
}

check ()
{
  local what=$1 out
  shift
  tap_step_start=$(date +%s.%N)
  if out=$("$@" 2>&1); then
    pass "$what"
  else
    fail "$what" "$out"
  fi
}

skip ()
{
  tests_run=$((tests_run + 1))
  echo "ok $tests_run - $1 # SKIP $2"
}

begin ()
{
  tap_step_start=$(date +%s.%N)
  echo "# $1"
}

# A whole-test skip, or a failure under CI where every peer must be there.
skip_all ()
{
  if [[ ${CI:-} == true ]]; then
    echo "Bail out! $1 (required under CI=true)"
    exit 1
  fi
  echo "1..0 # SKIP $1"
  exit 0
}

bail ()
{
  echo "Bail out! $1"
  declare -F dump_logs >/dev/null && dump_logs
  exit 1
}

# The plan, the logs when something failed, and the exit status.
tap_done ()
{
  echo "1..$tests_run"
  if ((tests_failed > 0)); then
    declare -F dump_logs >/dev/null && dump_logs
    exit 1
  fi
  exit 0
}

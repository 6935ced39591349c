#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-or-later
# bench-netchange.sh: time from a network change to the first successful tunnel, in network
# namespaces (tests/netns/netchange-lib.sh: the agent in one, stunnel + Squid in another, a veth
# between). Each repetition waits for a full warm pool, takes the agent's address and route away
# for --gap seconds, gives it a new address (the route comes back), and times one request through
# the agent from that moment, with no retry (curl -p, --max-time 10): a CONNECT tunnel through the
# agent and the cloud proxy to the origin, and "GET /hello" in it, to the last byte.
# Prints median and max in ms, and how many first requests failed. Before each break it waits
# --settle seconds once the pool is full: GNetworkMonitor tells a change a second time up to a
# second later, and a break inside the agent's 300 ms burst window after that call is told only
# at the window's end (see platform/ph-network-watch.c); --settle 0 measures that case too.
#
#   sudo tests/bench/bench-netchange.sh [--reps N (20)] [--gap SECONDS (1)] [--settle SECONDS (1.5)]
#                                       [--build DIR]
#
# Root only (namespaces, nftables). Environment: PH_AGENT, PINHOLECTL (default: in --build).

set -uo pipefail

SCRIPT_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
SRCDIR=$(cd "$SCRIPT_DIR/../.." && pwd)
BUILD_DIR=$SRCDIR/build
REPS=20
GAP=1
SETTLE=1.5

usage ()
{
  sed -n '/^#   sudo/,/--build DIR/s/^# \{0,1\}//p' "$0" >&2
  exit 2
}

while [[ $# -gt 0 ]]; do
  case $1 in
    --reps) REPS=$2; shift ;;
    --gap) GAP=$2; shift ;;
    --settle) SETTLE=$2; shift ;;
    --build) BUILD_DIR=$(cd "$2" && pwd); shift ;;
    *) usage ;;
  esac
  shift
done
[[ $REPS =~ ^[1-9][0-9]*$ ]] || usage

AGENT=${PH_AGENT:-$BUILD_DIR/agent/pinhole-agent}
CTL=${PINHOLECTL:-$BUILD_DIR/agent/pinholectl}
export PH_TEST_ORIGIN=${PH_TEST_ORIGIN:-$BUILD_DIR/tests/cloud/ph-test-origin}
[[ $(id -u) == 0 ]] || { echo "bench-netchange: needs root" >&2; exit 1; }
[[ -x $AGENT && -x $CTL ]] || { echo "bench-netchange: build first ($AGENT, $CTL)" >&2; exit 1; }

# shellcheck source=tests/tap.sh
source "$SRCDIR/tests/tap.sh"
# shellcheck source=tests/netns/netchange-lib.sh
source "$SRCDIR/tests/netns/netchange-lib.sh"

dump_logs ()
{
  [[ -n $tmp && -s $tmp/agent.log ]] && tail -n 30 "$tmp/agent.log" | sed 's/^/# /'
}

trap 'nc_cleanup; [[ -n $tmp ]] && rm -rf "$tmp"' EXIT
trap 'exit 130' INT TERM
ph_make_tmp bench-netchange

nc_setup_network
nc_start_agent || bail "pinhole-agent did not come up"
wait_field state on 20 >/dev/null || bail "the tunnel did not come on"

times=()
failed=0
for ((rep = 1; rep <= REPS; rep++)); do
  wait_field cloud_connections.warm_now 2 20 >/dev/null || bail "the warm pool did not fill"
  sleep "$SETTLE"
  nc_break
  sleep "$GAP"
  nc_restore
  start=$(date +%s%N)
  if body=$(nc_hello 10 -p 2>&1) && [[ $body == hello ]]; then
    ms=$((($(date +%s%N) - start) / 1000000))
  else
    failed=$((failed + 1))
    ms=$((($(date +%s%N) - start) / 1000000))
    echo "# repetition $rep: the first request failed after $ms ms: $body"
  fi
  times+=("$ms")
done

printf '%s\n' "${times[@]}" | sort -n | awk -v reps="$REPS" -v failed="$failed" -v gap="$GAP" -v settle="$SETTLE" '
  { t[NR] = $1 }
  END {
    median = (NR % 2) ? t[(NR + 1) / 2] : (t[NR / 2] + t[NR / 2 + 1]) / 2
    printf "route back -> first successful tunnel (no retry), %d repetitions, %s s without a route, settle %s s:\n", reps, gap, settle
    printf "  median %.0f ms, max %d ms, min %d ms; first requests failed: %d\n", median, t[NR], t[1], failed
  }'
echo "  network changes the agent logged: $(nc_count_log 'network changed (')"

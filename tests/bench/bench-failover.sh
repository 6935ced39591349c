#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-or-later
# bench-failover.sh: how the old chain (local Squid with two cache_peer parents, each through its
# own stunnel client) and pinhole-agent (two proxies in upstream.host, default settings) live
# through the loss of the active cloud end: two cloud ends (pinhole-cloud.sh, same credentials),
# load through the client side, SIGKILL of the first one's stunnel, and a table of the failover
# time, the requests failed and those a cloud Squid saw twice, side by side, PASS/MISS.
#
#   tests/bench/bench-failover.sh [--build DIR] [--out FILE] [--only chain|agent] [--keep]
#                                 [--debug] (the agent logs at level debug)
#
# Environment overrides: PH_AGENT, PH_TEST_ORIGIN (binary paths), PH_BENCH_FAILOVER_CLIENTS (32),
# PH_BENCH_FAILOVER_WARM (3 s of load before the kill), PH_BENCH_FAILOVER_AFTER (5 s after it),
# PH_BENCH_FAILOVER_TIMEOUT (10 s per request). All traffic stays on 127.0.0.1.

set -euo pipefail

SCRIPT_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
SRC_DIR=$(cd "$SCRIPT_DIR/../.." && pwd)
BUILD_DIR=$SRC_DIR/build
OUT=""
ONLY=""
KEEP=0
AGENT_LOG=info

usage ()
{
  sed -n '9,14s/^# \{0,1\}//p' "$0" >&2
  exit 2
}

while [[ $# -gt 0 ]]; do
  case $1 in
    --build) BUILD_DIR=$(cd "$2" && pwd); shift ;;
    --out) OUT=$2; shift ;;
    --only) ONLY=$2; shift ;;
    --keep) KEEP=1 ;;
    --debug) AGENT_LOG=debug ;;
    *) usage ;;
  esac
  shift
done
[[ -z $ONLY || $ONLY == chain || $ONLY == agent ]] || usage

CLIENTS=${PH_BENCH_FAILOVER_CLIENTS:-32}
WARM=${PH_BENCH_FAILOVER_WARM:-3}
AFTER=${PH_BENCH_FAILOVER_AFTER:-5}
TIMEOUT=${PH_BENCH_FAILOVER_TIMEOUT:-10}
AGENT=${PH_AGENT:-$BUILD_DIR/agent/pinhole-agent}
export PH_TEST_ORIGIN=${PH_TEST_ORIGIN:-$BUILD_DIR/tests/cloud/ph-test-origin}
OUT=${OUT:-$BUILD_DIR/bench-failover-results.txt}
LOAD=$SCRIPT_DIR/ph-failover-load.py
BENCH_TAG=bench-failover
# shellcheck source=tests/bench/bench-lib.sh
source "$SCRIPT_DIR/bench-lib.sh"

bench_require
bench_init ph-bench-failover

# --- the two cloud ends --------------------------------------------------------------------

log "starting cloud end A (with the origin) and cloud end B in $WORK"
start_cloud "$WORK/cloud-a" PH_CLOUD_ORIGIN=1
start_cloud "$WORK/cloud-b" PH_CLOUD_PASSWORD="$(<"$WORK/cloud-a/password")"
# shellcheck disable=SC1091
source "$WORK/cloud-b/cloud.env"
B_TLS=$PH_CLOUD_TLS_PORT
B_PIN=$PH_CLOUD_PIN
B_LOG=$PH_CLOUD_SQUID_ACCESS_LOG
# shellcheck disable=SC1091
source "$WORK/cloud-a/cloud.env" # PH_CLOUD_* (credentials, origin) are A's from here on
A_TLS=$PH_CLOUD_TLS_PORT
A_LOG=$PH_CLOUD_SQUID_ACCESS_LOG
ORIGIN_HTTP=127.0.0.1:$PH_ORIGIN_HTTP_PORT

a_stunnel_pid ()
{
  cat "$WORK/cloud-a/stunnel.pid" 2>/dev/null || true
}

# Cloud end A's stunnel again after the kill, where pinhole-cloud.sh's stop looks for it.
restart_cloud_a ()
{
  local pid
  pid=$(a_stunnel_pid)
  [[ -n $pid ]] && kill -0 "$pid" 2>/dev/null && return 0
  stunnel4 "$WORK/cloud-a/stunnel.conf" >>"$WORK/cloud-a/stunnel-restarted.log" 2>&1 </dev/null &
  pid=$!
  disown "$pid" # the load generator SIGKILLs it: no job notice
  echo "$pid" >"$WORK/cloud-a/stunnel.pid"
  wait_port "$A_TLS" "$pid" "cloud A's stunnel" || die "see $WORK/cloud-a/stunnel-restarted.log"
}

# The agent with both proxies (A first), its defaults otherwise: failover=priority, warm pool.
start_agent ()
{
  local dir=$1 port
  mkdir -p "$dir"
  port=$(free_port)
  "$CLOUD_SH" agent-config "$WORK/cloud-a" "$dir/agent.conf" "$port"
  sed -i -e "s|^host=.*|host=127.0.0.1:$A_TLS; 127.0.0.1:$B_TLS|" \
    -e "s|^pins=.*|pins=$PH_CLOUD_PIN;$B_PIN|" -e "s|^level=.*|level=$AGENT_LOG|" "$dir/agent.conf"
  launch_agent "$dir" "$port"
}

declare -A R=()
N_BASE=1000 # the plain GETs' /bytes/N: unique over the whole run

# run_case SIDE MODE: SIDE (chain or agent) started afresh against both cloud ends (A restarted
# if it is down), the load of MODE (load: CLIENTS clients back to back; seq: one client, a
# request every 20 ms), A's stunnel killed midway.
run_case ()
{
  local side=$1 mode=$2 clients=$CLIENTS interval=0 out skip_a skip_b key dir=$WORK/$1-$2
  [[ $mode == seq ]] && clients=1 interval=20
  restart_cloud_a
  if [[ $side == chain ]]; then
    start_chain "$A_TLS" "$B_TLS"
  else
    start_agent "$dir" || {
      R[$side.$mode.failed]=FAIL
      return 0
    }
  fi
  curl -sS --max-time 10 -x "http://$PROXY" "http://$ORIGIN_HTTP/hello" -o /dev/null 2>>"$RAW" ||
    log "$side: smoke request through $PROXY failed"
  sleep 1 # the agent fills its warm pool
  skip_a=$(wc -l <"$A_LOG")
  skip_b=$(wc -l <"$B_LOG")
  log "$side, $mode: $clients client(s) for ${WARM}s, then cloud A's stunnel is killed, ${AFTER}s more"
  echo "+ $side $mode" >>"$RAW"
  out=$(python3 "$LOAD" --proxy "$PROXY" --origin "$ORIGIN_HTTP" --clients "$clients" \
    --interval-ms "$interval" --warm "$WARM" --after "$AFTER" --timeout "$TIMEOUT" \
    --kill-pid "$(a_stunnel_pid)" --n-base "$N_BASE" --access-log "A=$A_LOG:$skip_a" \
    --access-log "B=$B_LOG:$skip_b" --csv "$WORK/$side-$mode.csv" 2>>"$RAW") || true
  echo "$out" | tee -a "$RAW"
  for key in requests ok failed failed_cut failed_other failover_ms first_tunnel_ms back_to_100_ms in_flight_at_kill \
    twice twice_n failed_kinds plain seen failed_before_kill; do
    R[$side.$mode.$key]=$(sed -n "s/.*\(^\| \)$key=\([^ ]*\).*/\2/p" <<<"$out")
  done
  N_BASE=$((N_BASE + ${R[$side.$mode.plain]:-0} + 1))
  if [[ $side == chain ]]; then
    stop_roots $CHAIN_ROOTS
    R[$side.$mode.note]="local Squid: $(grep -c 'Detected DEAD Parent' "$WORK/chain/logs/cache.log" ||
      true) 'Detected DEAD Parent' lines"
    mv "$WORK/chain" "$dir"
  else
    stop_roots $AGENT_ROOTS
    R[$side.$mode.note]="agent log: $(grep -m1 -o 'cloud proxy [^ ]* is down.*' "$dir/agent.log" ||
      echo 'no proxy marked down')"
  fi
}

START=$(date +%s)
LOAD_START=$(cut -d' ' -f1-3 /proc/loadavg)
for side in chain agent; do
  [[ -n $ONLY && $ONLY != "$side" ]] && continue
  run_case "$side" load
  run_case "$side" seq
done

# --- the table -----------------------------------------------------------------------------

# row LABEL KEY TARGET: TARGET "-" or a limit the agent's figure must not exceed.
row ()
{
  local label=$1 key=$2 target=$3 c a ratio="-" verdict="-"
  c=${R[chain.$key]:--}
  a=${R[agent.$key]:--}
  if [[ $c =~ ^[0-9.]+$ && $a =~ ^[0-9.]+$ ]] && awk "BEGIN { exit !($c > 0) }"; then
    ratio=$(awk "BEGIN { printf \"%.2f\", $a / $c }")
  fi
  if [[ $target != - && $ONLY != chain ]]; then
    verdict=MISS
    [[ $a =~ ^[0-9.]+$ ]] && awk "BEGIN { exit !($a <= $target) }" && verdict=PASS
    target="agent<=$target"
  fi
  printf '%-58s %9s %9s %8s  %-12s %s\n' "$label" "$c" "$a" "$ratio" "$target" "$verdict"
}

{
  echo "Pinhole failover benchmark, $(date -u +%Y-%m-%dT%H:%M:%SZ), $(nproc) CPUs, $(uname -r)"
  echo "two cloud ends (stunnel + Squid) on loopback; the first one's stunnel is SIGKILLed after" \
    "${WARM}s of load, ${AFTER}s more load; ${TIMEOUT}s per request, no client retry"
  echo "chain = local Squid, cache_peer A (default) and B, each through its stunnel client;" \
    "agent = host=A; B, failover=priority (default)"
  echo "times in ms from the kill; 'first ok' = the end of the first request started after the" \
    "kill that succeeded"
  echo
  printf '%-58s %9s %9s %8s  %-12s %s\n' metric chain agent agent/ch target result
  for mode in load seq; do
    if [[ $mode == load ]]; then
      m="$CLIENTS clients:"
    else
      m="1 client, every 20 ms:"
    fi
    row "$m requests (all)" $mode.requests -
    row "$m kill -> first ok request (ms)" $mode.failover_ms 1000
    row "$m kill -> first ok new tunnel (ms)" $mode.first_tunnel_ms 1000
    row "$m kill -> last failure ends (100% again) (ms)" $mode.back_to_100_ms -
    row "$m in flight at the kill" $mode.in_flight_at_kill -
    row "$m requests failed" $mode.failed 0
    row "$m   of them cut: the cloud end had answered" $mode.failed_cut -
    row "$m   of them others" $mode.failed_other 0
    row "$m plain GETs answered twice" $mode.twice 0
  done
  echo
  for side in chain agent; do
    [[ -n $ONLY && $ONLY != "$side" ]] && continue
    for mode in load seq; do
      echo "$side, $mode: failed by kind: ${R[$side.$mode.failed_kinds]:--};" \
        "answered twice: ${R[$side.$mode.twice_n]:--}; /bytes/ lines per cloud Squid:" \
        "${R[$side.$mode.seen]:--}; failed before the kill: ${R[$side.$mode.failed_before_kill]:--}"
      echo "  ${R[$side.$mode.note]:-}"
    done
  done
  echo "run took $(($(date +%s) - START)) s; load average at start $LOAD_START, at end" \
    "$(cut -d' ' -f1-3 /proc/loadavg)"
} >"$WORK/table.txt"

cat "$WORK/table.txt"
mkdir -p "$(dirname "$OUT")"
{
  cat "$WORK/table.txt"
  echo
  echo "---- raw output ----"
  cat "$RAW"
} >"$OUT"
log "results written to $OUT; per-request records in $WORK/*.csv (--keep keeps them)"

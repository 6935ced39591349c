#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-or-later
# run-soak.sh: a bounded soak of pinhole-agent against a real cloud end.
#
#   tests/soak/run-soak.sh SECONDS [--build DIR] [--keep]
#
# Brings up stunnel + Squid (Basic auth) + ph-test-origin on loopback (tests/cloud/pinhole-cloud.sh),
# starts the agent pinned to it with the default settings (warm=2, idle-timeout 300s,
# head-timeout 10s, max-tunnels 1024, log level info) and runs ph-soak-client (this directory)
# through it: 35 client connections at a time at most — tls-down 3, tunnel-down 2, http-get 5,
# http-up 2, tls-up 2, reset 3, provoke 2, idle 16 (what each does: ph-soak-client.c, top).
#
# Time line (SECONDS >= 15):
#   warm-up  W = max(5, SECONDS/10) s of that load; then load stopped, idle tunnels closed,
#            2 s quiet: agent RSS and fd count sampled ("warm")
#   run      SECONDS - W s of the same load, RSS and fds sampled every 2 s; then load stopped,
#            idle tunnels closed, 2 s quiet: sampled again ("end")
#
# Checks (any violation: exit 1):
#   1. responses: every response is the expected one — 200 with the right body (every byte of
#      /bytes and /chunked checked against the origin's pattern; /sha256's digest and length of
#      what was uploaded), or, for the provoking requests only, their known error answer
#      (405 method-not-allowed, 400 bad-request, 408 head-timeout with X-Pinhole-Error; Squid's
#      503 for a closed port and the origin's 404, without). Anything else — another status or
#      X-Pinhole-Error, a short or wrong body, a proxy that closes or resets, an idle tunnel that
#      dies, a stall of 30 s — is counted as an error and fails the run. Counts by kind and by
#      status/X-Pinhole-Error are printed.
#   2. RSS: VmRSS at "end" <= 1.10 x VmRSS at "warm" (same quiet state, same load before both).
#   3. fds: /proc/PID/fd count at "end" <= at "warm" + WARM (2), the agent's warm pool: it keeps
#      up to warm= verified upstream connections ready and refills them on its own schedule
#      (on use, on expiry after 240 s, when the server closes one), so one sample may catch the
#      pool short by up to that many. Everything else — clients, tunnels, upstream connections
#      of finished requests — must be closed in both samples.
#   4. the agent still runs (not a zombie) after the run, its log has no critical/error-level
#      line, no assertion, no sanitizer report; and on SIGTERM it exits 0 within 15 s.
# One summary line "soak: PASS|FAIL ..." with the figures; details above it.
#
# Skips (exit 77) without stunnel4, squid, its basic_ncsa_auth (PH_STUNNEL, PH_SQUID,
# PH_SQUID_AUTH_HELPER as for pinhole-cloud.sh), openssl, python3 or ss; under CI=true that is a
# failure. Binaries: PH_AGENT, PH_TEST_ORIGIN, PH_SOAK_CLIENT, else from
# --build DIR (default: build/). Everything runs on 127.0.0.1; every process started here is
# stopped on exit; the work dir (mktemp) is removed unless the run failed or --keep.
# Knobs: PH_SOAK_SEED (the client's random seed), PH_SOAK_CLIENT_ARGS (extra client options,
# e.g. "--idle 8 --reset 5"), PH_SOAK_MALLOC_STATS=1 (at both samples, gdb makes the agent call
# glibc's malloc_stats(); needs gdb and ptrace rights: heap "system" bytes that stay put while
# RSS grows point at the allocator, not at a leak; "in use" also counts blocks parked in glibc's
# tcache and GSlice's magazines, so it creeps by some 100 KiB without any leak).
# RSS growth, to tell a leak from the allocator: attach `heaptrack -p PID` to the agent after the
# warm-up, and SIGKILL it (not TERM, which frees everything) once the load is over: what
# heaptrack_print --print-leaks lists is exactly what the run allocated and still holds.

set -euo pipefail

SCRIPT_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
SRC_DIR=$(cd "$SCRIPT_DIR/../.." && pwd)
BUILD_DIR=$SRC_DIR/build
KEEP=0
DURATION=""
WARM=2            # the agent's warm= (its default, written into the config)
RSS_LIMIT_PCT=10  # check 2
QUIET_S=2         # quiet time before each sample

usage ()
{
  sed -n '4s/^# \{0,1\}//p' "$0" >&2
  exit 2
}

while [[ $# -gt 0 ]]; do
  case $1 in
    --build) BUILD_DIR=$(cd "$2" && pwd); shift ;;
    --keep) KEEP=1 ;;
    -h | --help) usage ;;
    -*) usage ;;
    *) [[ -z $DURATION ]] || usage; DURATION=$1 ;;
  esac
  shift
done
if ! [[ $DURATION =~ ^[0-9]+$ ]] || ((DURATION < 15)); then
  echo "run-soak: SECONDS must be a whole number >= 15" >&2
  usage
fi

AGENT=${PH_AGENT:-$BUILD_DIR/agent/pinhole-agent}
CLIENT=${PH_SOAK_CLIENT:-$BUILD_DIR/tests/soak/ph-soak-client}
export PH_TEST_ORIGIN=${PH_TEST_ORIGIN:-$BUILD_DIR/tests/cloud/ph-test-origin}
CLOUD_SH=$SRC_DIR/tests/cloud/pinhole-cloud.sh

log ()
{
  echo "run-soak: $*" >&2
}

die ()
{
  log "$*"
  exit 1
}

skip ()
{
  if [[ ${CI:-} == true ]]; then
    die "$* (a skip is a failure under CI=true)"
  fi
  log "SKIP: $*"
  exit 77
}

for f in "$AGENT" "$CLIENT" "$PH_TEST_ORIGIN"; do
  [[ -x $f ]] || die "not built: $f (ninja -C BUILD, or --build DIR, or PH_AGENT/PH_SOAK_CLIENT/PH_TEST_ORIGIN)"
done
for f in "${PH_STUNNEL:-/usr/bin/stunnel4}" "${PH_SQUID:-/usr/sbin/squid}" \
  "${PH_SQUID_AUTH_HELPER:-/usr/lib/squid/basic_ncsa_auth}"; do
  [[ -x $f ]] || skip "$f not installed"
done
for bin in openssl python3 ss; do
  command -v $bin >/dev/null || skip "$bin not installed"
done

# Children inherit this; the soak needs a few hundred fds per process at most.
ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)"

WORK=$(mktemp -d /tmp/ph-soak.XXXXXX)
chmod 0711 "$WORK" # squid runs as proxy when started as root and must traverse it
AGENT_PID=""
CLIENT_PID=""
CLOUD_UP=0
FAILED=0

cleanup ()
{
  local rc=$? i
  trap - EXIT INT TERM
  if [[ -n $CLIENT_PID ]]; then
    kill -TERM "$CLIENT_PID" 2>/dev/null || true
    wait "$CLIENT_PID" 2>/dev/null || true
  fi
  if [[ -n $AGENT_PID ]]; then
    kill -TERM "$AGENT_PID" 2>/dev/null || true
    for ((i = 0; i < 150; i++)); do
      kill -0 "$AGENT_PID" 2>/dev/null || break
      sleep 0.1
    done
    kill -KILL "$AGENT_PID" 2>/dev/null || true
    wait "$AGENT_PID" 2>/dev/null || true
  fi
  ((CLOUD_UP)) && "$CLOUD_SH" stop "$WORK/cloud" >/dev/null 2>&1
  if ((KEEP || rc != 0)); then
    log "work dir kept: $WORK"
  else
    rm -rf "$WORK"
  fi
  exit $rc
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# free_port
# shellcheck source=tests/ph-test-lib.sh
source "$SRC_DIR/tests/ph-test-lib.sh"

alive ()
{
  local stat
  kill -0 "$1" 2>/dev/null || return 1
  stat=$(cat "/proc/$1/stat" 2>/dev/null) || return 1
  stat=${stat##*) }
  [[ ${stat:0:1} != Z ]]
}

rss_kib ()
{
  awk '/^VmRSS:/ {print $2}' "/proc/$AGENT_PID/status" 2>/dev/null || echo 0
}

# VmRSS split: anonymous (heap, stacks) and file-backed (code and data of the binary and its
# libraries, faulted in as code paths run for the first time), KiB
rss_split ()
{
  awk '/^RssAnon:/ { a = $2 } /^RssFile:/ { f = $2 } END { print a "+" f }' \
    "/proc/$AGENT_PID/status" 2>/dev/null || echo "?"
}

fd_count ()
{
  find "/proc/$AGENT_PID/fd" -mindepth 1 -maxdepth 1 2>/dev/null | wc -l
}

# What the agent holds open, for the record (and the failure message).
fd_listing ()
{
  local f
  for f in /proc/"$AGENT_PID"/fd/*; do
    printf '%s -> %s\n' "${f##*/}" "$(readlink "$f" 2>/dev/null)"
  done
  echo "--- agent's TCP sockets (ss):"
  ss -Htanp 2>/dev/null | grep -F "pid=$AGENT_PID," || true
}

kv_sum ()
{
  # sums KEY=N lines over the client outputs (peaks: the larger)
  awk -F= '/^[a-z_.0-9-]+=[0-9]+$/ {
      if ($1 ~ /_peak$/) { if ($2 > s[$1]) s[$1] = $2 } else s[$1] += $2
    } END { for (k in s) printf "%s=%.0f\n", k, s[k] }' "$@" | sort
}

get ()
{
  local v
  v=$(sed -n "s/^$1=//p" "$WORK/totals" | head -n 1)
  echo "${v:-0}"
}

# --- cloud end and agent -----------------------------------------------------------------

log "cloud end (stunnel + squid + origin) in $WORK/cloud"
PH_CLOUD_ORIGIN=1 PH_CLOUD_OWNER_PID=$$ "$CLOUD_SH" start "$WORK/cloud" 2>"$WORK/cloud.log" || {
  cat "$WORK/cloud.log" >&2
  die "pinhole-cloud.sh start failed"
}
CLOUD_UP=1
# shellcheck disable=SC1091
source "$WORK/cloud/cloud.env"

PORT=$(free_port)
"$CLOUD_SH" agent-config "$WORK/cloud" "$WORK/agent.conf" "$PORT"
sed -i "/^\[upstream\]/a warm=$WARM" "$WORK/agent.conf"
"$AGENT" --config "$WORK/agent.conf" --check-config >/dev/null 2>"$WORK/check.log" || {
  cat "$WORK/check.log" >&2
  die "the agent refuses its config"
}
"$AGENT" --config "$WORK/agent.conf" </dev/null >"$WORK/agent.log" 2>&1 &
AGENT_PID=$!
for ((i = 0; i < 100; i++)); do
  ss -Hltn "sport = :$PORT" 2>/dev/null | grep -qF "127.0.0.1:$PORT " && break
  alive "$AGENT_PID" || {
    cat "$WORK/agent.log" >&2
    die "the agent exited at start"
  }
  sleep 0.1
done
((i < 100)) || die "the agent does not listen on 127.0.0.1:$PORT"
sleep 1 # its warm pool fills
CLOSED=127.0.0.1:$(free_port) # a port nothing listens on, for the provoked 503s

WARMUP=$((DURATION / 10 > 5 ? DURATION / 10 : 5))
MAIN=$((DURATION - WARMUP))
SEED=${PH_SOAK_SEED:-$(( (RANDOM << 15 | RANDOM) + 1 ))}
# shellcheck disable=SC2206
EXTRA=(${PH_SOAK_CLIENT_ARGS:-})
log "agent pid $AGENT_PID on 127.0.0.1:$PORT; load ${WARMUP}s warm-up + ${MAIN}s, seed $SEED"

# run_load NAME SECONDS: the client for that long; RSS/fds sampled every 2 s into NAME.samples
run_load ()
{
  local name=$1 secs=$2 rc=0 t0
  t0=$(date +%s)
  "$CLIENT" -x "127.0.0.1:$PORT" --http-port "$PH_ORIGIN_HTTP_PORT" \
    --https-port "$PH_ORIGIN_HTTPS_PORT" --ca-file "$PH_ORIGIN_CA" --closed-target "$CLOSED" \
    -d "$secs" --seed "$((SEED + ${#name}))" "${EXTRA[@]}" \
    >"$WORK/client-$name.out" 2>"$WORK/client-$name.err" &
  CLIENT_PID=$!
  while kill -0 "$CLIENT_PID" 2>/dev/null; do
    echo "$(($(date +%s) - t0)) $(rss_kib) $(fd_count) $(rss_split)" >>"$WORK/$name.samples"
    sleep 2
  done
  wait "$CLIENT_PID" || rc=$?
  CLIENT_PID=""
  if ((rc != 0)); then
    FAILED=1
    log "$name: load generator reported errors (exit $rc):"
    grep -v '^ph-soak-client: [0-9]*s against' "$WORK/client-$name.err" | head -n 30 >&2 || true
  fi
}

# quiet_sample NAME: after the load, idle tunnels closed: wait, then RSS and fds
quiet_sample ()
{
  local name=$1
  sleep "$QUIET_S"
  alive "$AGENT_PID" || return 0
  RSS[$name]=$(rss_kib)
  SPLIT[$name]=$(rss_split)
  FDS[$name]=$(fd_count)
  fd_listing >"$WORK/fds-$name.txt"
  [[ ${PH_SOAK_MALLOC_STATS:-0} == 1 ]] && HEAP[$name]=$(heap_in_use)
  return 0
}

# glibc's malloc_stats() in the agent (to its stderr, the log): "in use" and "system" bytes of
# the last "Total" block, in KiB.
heap_in_use ()
{
  local before
  before=$(wc -l <"$WORK/agent.log")
  gdb -p "$AGENT_PID" -batch -nx -ex 'call (void) malloc_stats()' >/dev/null 2>&1 || true
  sleep 0.2
  tail -n +"$((before + 1))" "$WORK/agent.log" | awk '/^Total/ { t = 1 } t && /system bytes/ { s = $NF }
    t && /in use bytes/ { u = $NF } END { if (u != "") printf "%d/%d", u / 1024, s / 1024; else print "?" }'
}

declare -A RSS=() FDS=() HEAP=() SPLIT=()
run_load warm "$WARMUP"
quiet_sample warm
if alive "$AGENT_PID"; then
  log "warm-up done: RSS ${RSS[warm]} KiB, ${FDS[warm]} fds"
  run_load main "$MAIN"
  quiet_sample end
else
  FAILED=1
fi

# --- checks ------------------------------------------------------------------------------

PROBLEMS=()
kv_sum "$WORK"/client-*.out >"$WORK/totals"

# 1. responses
ERRORS=$(get errors)
((ERRORS == 0)) || PROBLEMS+=("$ERRORS unexpected outcomes ($(grep '^error\.' "$WORK/totals" | sed 's/^error\.//' | tr '\n' ' '))")
# belt and braces: a non-200 outcome outside the provoking requests
UNEXPECTED=$(grep '^outcome\.' "$WORK/totals" | grep -v '^outcome\.provoke\.' | grep -v '\.200\.-=' || true)
[[ -z $UNEXPECTED ]] || PROBLEMS+=("error responses to ordinary requests: $(tr '\n' ' ' <<<"$UNEXPECTED")")
for f in "$WORK"/client-*.out; do
  grep -q '^errors=' "$f" || PROBLEMS+=("$(basename "$f"): the load generator did not finish")
done

# 4. the agent
AGENT_STATE=running
if ! alive "$AGENT_PID"; then
  AGENT_STATE=DEAD
  PROBLEMS+=("the agent is not running")
fi
BAD_LOG=$(grep -E '^[^ ]+ (critical|error) |CRITICAL|assertion|AddressSanitizer|LeakSanitizer|runtime error:|Segmentation|Aborted' "$WORK/agent.log" || true)
N_BAD=$(grep -c . <<<"$BAD_LOG" || true)
[[ -z $BAD_LOG ]] && N_BAD=0
((N_BAD == 0)) || PROBLEMS+=("$N_BAD critical/assertion lines in the agent's log")
N_WARN=$(grep -cE '^[^ ]+ warning ' "$WORK/agent.log" || true)

# 2. and 3. RSS and fds
RSS_W=${RSS[warm]:-0} RSS_E=${RSS[end]:-0} FD_W=${FDS[warm]:-0} FD_E=${FDS[end]:-0}
RSS_PCT=n/a
if ((RSS_W > 0 && RSS_E > 0)); then
  RSS_PCT=$(awk "BEGIN { printf \"%+.1f\", ($RSS_E - $RSS_W) * 100 / $RSS_W }")
  ((RSS_E * 100 <= RSS_W * (100 + RSS_LIMIT_PCT))) ||
    PROBLEMS+=("RSS grew from $RSS_W to $RSS_E KiB ($RSS_PCT%, limit +$RSS_LIMIT_PCT%)")
  ((FD_E <= FD_W + WARM)) ||
    PROBLEMS+=("fds grew from $FD_W to $FD_E (slack $WARM); see $WORK/fds-warm.txt and fds-end.txt")
elif [[ $AGENT_STATE == running ]]; then
  PROBLEMS+=("no RSS/fd samples")
fi

# 4b. a clean stop
if [[ $AGENT_STATE == running ]]; then
  kill -TERM "$AGENT_PID"
  STOP_RC=""
  for ((i = 0; i < 150; i++)); do
    alive "$AGENT_PID" || break
    sleep 0.1
  done
  if alive "$AGENT_PID"; then
    PROBLEMS+=("the agent did not exit within 15 s of SIGTERM")
  else
    wait "$AGENT_PID" && STOP_RC=0 || STOP_RC=$?
    AGENT_PID=""
    ((STOP_RC == 0)) || PROBLEMS+=("the agent exited $STOP_RC on SIGTERM")
  fi
fi

# --- report ------------------------------------------------------------------------------

KINDS="tls-down tunnel-down http-get http-up tls-up reset provoke idle"
REQS=""
TOTAL=0
for k in $KINDS; do
  n=$(get "requests.$k")
  REQS+=" $k=$n"
  TOTAL=$((TOTAL + n))
done
{
  echo "outcomes (kind.status.X-Pinhole-Error = count, CONNECT answers as kind.connect...):"
  grep '^outcome\.' "$WORK/totals" | sed 's/^outcome\./  /'
  echo "resets by point: $(grep '^reset\.' "$WORK/totals" | sed 's/^reset\.//' | tr '\n' ' ')"
  echo "bytes down $(get bytes_down), up $(get bytes_up); idle tunnels at once (peak) $(get idle_peak)"
  echo "agent access lines by error kind: $(grep -o ' error=[a-z-]*' "$WORK/agent.log" | sort | uniq -c |
    awk '{ printf "%s:%s ", substr($2, 7), $1 }')"
  if [[ -s $WORK/main.samples ]]; then
    echo "agent during the run, seconds:RSS KiB/fds (every 2 s, about 10 shown):"
    awk -v n="$(wc -l <"$WORK/main.samples")" \
      'BEGIN { step = int(n / 10); if (step < 1) step = 1 }
       (NR - 1) % step == 0 || NR == n { printf " %s:%s/%s", $1, $2, $3 } END { print "" }' \
      "$WORK/main.samples"
    awk 'NR == 1 || $2 < min { min = $2 } $2 > max { max = $2 }
      END { print "  under load: RSS min " min " max " max " KiB" }' "$WORK/main.samples"
  fi
  echo "agent RSS anon+file KiB: warm ${SPLIT[warm]:-?}, end ${SPLIT[end]:-?}"
  [[ -n ${HEAP[warm]:-} ]] &&
    echo "malloc_stats in use/system KiB: warm ${HEAP[warm]}, end ${HEAP[end]:-?}"
  if ((N_WARN > 0)); then
    echo "agent warnings: $N_WARN, first ones:"
    grep -E '^[^ ]+ warning ' "$WORK/agent.log" | head -n 5 | sed 's/^/  /'
  fi
  if ((N_BAD > 0)); then
    echo "agent critical/assertion lines, first ones:"
    head -n 10 <<<"$BAD_LOG" | sed 's/^/  /'
  fi
  for p in "${PROBLEMS[@]}"; do
    echo "FAIL: $p"
  done
} >&2

VERDICT=PASS
((${#PROBLEMS[@]} == 0 && FAILED == 0)) || VERDICT=FAIL
echo "soak: $VERDICT ${DURATION}s (warm-up ${WARMUP}s) requests=$TOTAL [$REQS ] errors=$ERRORS" \
  "provoked=[$(grep '^outcome\.provoke\.' "$WORK/totals" | grep -v '\.200\.-=' |
    sed 's/^outcome\.provoke\.//; s/\.-=/=/; s/\./\//' | tr '\n' ' ' | sed 's/ $//')]" \
  "rss_kib warm=$RSS_W end=$RSS_E ($RSS_PCT%, limit +$RSS_LIMIT_PCT%)" \
  "fds warm=$FD_W end=$FD_E (slack $WARM)" \
  "agent=$AGENT_STATE critical=$N_BAD warnings=$N_WARN stop_rc=${STOP_RC:--}"
[[ $VERDICT == PASS ]]

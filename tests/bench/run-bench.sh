#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-or-later
# run-bench.sh: measures the client side of the old chain (local Squid -> stunnel client) and
# pinhole-agent against one cloud end (pinhole-cloud.sh with the test origin), and pinhole-agent
# over HTTP/2 against a second one (PH_CLOUD_FRONT=nghttpx, the "h2" column), and prints a table
# of them with the ratios and PASS/MISS against the targets.
#
#   tests/bench/run-bench.sh [--quick] [--build DIR] [--out FILE] [--keep]
#                            [--only chain|agent|h2[,...]] (the columns to run; the floor always)
#                            [--perf]   (perf record the agent during each bulk run; keeps WORK)
#                            [--rounds N] (N interleaved rounds of floor, chain, agent, h2; medians)
#
# Environment overrides: PH_BENCH_CLIENT, PH_AGENT, PH_TEST_ORIGIN (binary paths),
# PH_BENCH_BULK_SIZE, PH_BENCH_SAMPLES, PH_BENCH_WARMUP, PH_BENCH_RATE_SECONDS,
# PH_BENCH_CONCURRENCY, PH_BENCH_HOLD (idle tunnels), PH_BENCH_WARM (agent warm= value).
# All traffic stays on 127.0.0.1; every process started here is stopped on exit.

set -euo pipefail

SCRIPT_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
SRC_DIR=$(cd "$SCRIPT_DIR/../.." && pwd)
BUILD_DIR=$SRC_DIR/build
OUT=""
QUICK=0
ONLY=""
KEEP=0
PERF=""
ROUNDS=1

usage ()
{
  sed -n '8,16s/^# \{0,1\}//p' "$0" >&2
  exit 2
}

while [[ $# -gt 0 ]]; do
  case $1 in
    --quick) QUICK=1 ;;
    --build) BUILD_DIR=$(cd "$2" && pwd); shift ;;
    --out) OUT=$2; shift ;;
    --only) ONLY=$2; shift ;;
    --keep) KEEP=1 ;;
    --perf) PERF=1; KEEP=1 ;;
    --rounds) ROUNDS=$2; shift ;;
    -h | --help) usage ;;
    *) usage ;;
  esac
  shift
done
[[ -z $ONLY || $ONLY =~ ^(chain|agent|h2)(,(chain|agent|h2))*$ ]] || usage
[[ $ROUNDS =~ ^[1-9][0-9]*$ ]] || usage

# want COLUMN: the column (chain, agent, h2) is run: no --only, or --only names it.
want ()
{
  [[ -z $ONLY || ,$ONLY, == *,$1,* ]]
}

if ((QUICK)); then
  BULK_SIZE=${PH_BENCH_BULK_SIZE:-256M}
  SAMPLES=${PH_BENCH_SAMPLES:-150}
  WARMUP=${PH_BENCH_WARMUP:-20}
  RATE_SECONDS=${PH_BENCH_RATE_SECONDS:-4}
  HOLD=${PH_BENCH_HOLD:-1000}
else
  BULK_SIZE=${PH_BENCH_BULK_SIZE:-1G}
  SAMPLES=${PH_BENCH_SAMPLES:-500}
  WARMUP=${PH_BENCH_WARMUP:-50}
  RATE_SECONDS=${PH_BENCH_RATE_SECONDS:-10}
  HOLD=${PH_BENCH_HOLD:-2000}
fi
CONCURRENCY=${PH_BENCH_CONCURRENCY:-32}

CLIENT=${PH_BENCH_CLIENT:-$BUILD_DIR/tests/bench/ph-bench-client}
AGENT=${PH_AGENT:-$BUILD_DIR/agent/pinhole-agent}
export PH_TEST_ORIGIN=${PH_TEST_ORIGIN:-$BUILD_DIR/tests/cloud/ph-test-origin}
OUT=${OUT:-$BUILD_DIR/bench-results.txt}
CLK_TCK=$(getconf CLK_TCK)
BENCH_TAG=run-bench
# shellcheck source=tests/bench/bench-lib.sh
source "$SCRIPT_DIR/bench-lib.sh"

[[ -x $CLIENT ]] || die "no load generator at $CLIENT (ninja -C build, or set PH_BENCH_CLIENT)"
bench_require
if want h2; then
  command -v "${PH_NGHTTPX:-nghttpx}" >/dev/null ||
    die "nghttpx not found (Debian package nghttp2-proxy), needed by the h2 column (or --only chain,agent)"
fi
(($(ulimit -n) >= 4 * HOLD + 512)) || log "warning: ulimit -n is $(ulimit -n), low for $HOLD tunnels"

bench_init ph-bench

# PIDs of the given processes and all their descendants.
tree_pids ()
{
  local roots=" $* "
  local changed=1 f rest ppid pid
  [[ $# -gt 0 ]] || return 0
  declare -A parent=()
  for f in /proc/[0-9]*/stat; do
    { rest=$(<"$f"); } 2>/dev/null || continue
    pid=${rest%% *}
    rest=${rest##*) }
    read -r _ ppid _ <<<"$rest"
    parent[$pid]=$ppid
  done
  while ((changed)); do
    changed=0
    for pid in "${!parent[@]}"; do
      if [[ $roots != *" $pid "* && $roots == *" ${parent[$pid]} "* ]]; then
        roots+="$pid "
        changed=1
      fi
    done
  done
  echo $roots
}

# utime+stime+cutime+cstime in clock ticks, summed over a process tree (threads included:
# /proc/PID/stat counts every thread, live or gone, and reaped children).
cpu_ticks ()
{
  local sum=0 pid s f
  for pid in $(tree_pids "$@"); do
    { s=$(<"/proc/$pid/stat"); } 2>/dev/null || continue
    s=${s##*) }
    read -r -a f <<<"$s"
    sum=$((sum + f[11] + f[12] + f[13] + f[14]))
  done
  echo $sum
}

# "BUSY TOTAL": the machine's CPU ticks (all CPUs, from /proc/stat) spent busy, and in all.
machine_ticks ()
{
  awk '/^cpu / { t = 0; for (i = 2; i <= NF; i++) t += $i; print t - $5 - $6, t; exit }' /proc/stat
}

# Sum of VmRSS (KiB) over a process tree.
rss_kib ()
{
  local sum=0 pid v
  for pid in $(tree_pids "$@"); do
    v=$(awk '/^VmRSS:/ {print $2}' "/proc/$pid/status" 2>/dev/null || true)
    sum=$((sum + ${v:-0}))
  done
  echo $sum
}

kv ()
{
  sed -n "s/.*\(^\| \)$2=\([^ ]*\).*/\2/p" <<<"$1" | head -n 1
}

calc ()
{
  awk "BEGIN { printf \"%.${2:-2}f\", $1 }"
}

declare -A R=()
AUTH_ARGS=()

client ()
{
  echo "+ ph-bench-client $*" >>"$RAW"
  "$CLIENT" "$@" 2>>"$RAW" | tee -a "$RAW"
}

# --- the cloud end -------------------------------------------------------------------------

log "starting the cloud end (stunnel + squid + origin) in $WORK/cloud"
start_cloud "$WORK/cloud" PH_CLOUD_ORIGIN=1
# The h2 column's cloud end: nghttpx --http2-proxy in front of a Squid of its own (the same
# config), no origin of its own: its Squid reaches the first one's. Its cloud.env is read in a
# subshell, so that the PH_CLOUD_* of the first one stay those of this shell.
H2_CLOUD_PORT=""
if want h2; then
  log "starting the h2 cloud end (nghttpx + squid) in $WORK/cloud-h2"
  start_cloud "$WORK/cloud-h2" PH_CLOUD_FRONT=nghttpx
  # shellcheck disable=SC1091
  H2_CLOUD_PORT=$(source "$WORK/cloud-h2/cloud.env" && echo "$PH_CLOUD_TLS_PORT")
fi
# shellcheck disable=SC1091
source "$WORK/cloud/cloud.env"
ORIGIN_TLS=127.0.0.1:$PH_ORIGIN_HTTPS_PORT
ORIGIN_HTTP=127.0.0.1:$PH_ORIGIN_HTTP_PORT

# --- the two client sides ------------------------------------------------------------------

# Squid 5.7 drops large plain-HTTP uploads at random (README.md, "Known problem"); a request
# buffer larger than what the upstream lags behind avoids it. The chain as deployed lacks it:
# PH_BENCH_CHAIN_AS_DEPLOYED=1 leaves it out (and the plain upload then fails).
BUFFER_LINE="client_request_buffer_max_size 64 MB"
[[ ${PH_BENCH_CHAIN_AS_DEPLOYED:-0} == 1 ]] && BUFFER_LINE=""

# The same workaround for this run's own cloud Squid, when the fixture does not set it.
patch_cloud_squid ()
{
  local conf=$WORK/cloud/squid.conf
  [[ -n $BUFFER_LINE && -f $conf ]] || return 0
  grep -q '^client_request_buffer_max_size' "$conf" && return 0
  echo "$BUFFER_LINE" >>"$conf"
  if squid -f "$conf" -k reconfigure 2>>"$RAW"; then
    sleep 1
    log "cloud squid: added '$BUFFER_LINE' (Squid 5.7 upload bug, see README.md)"
  else
    log "cloud squid: could not reconfigure; plain uploads may fail"
  fi
}

# The agent's work dir of column P (agent, h2) and the cloud end it talks to.
agent_dir ()
{
  [[ $1 == h2 ]] && echo "$WORK/agent-h2" || echo "$WORK/agent"
}

cloud_dir ()
{
  [[ $1 == h2 ]] && echo "$WORK/cloud-h2" || echo "$WORK/cloud"
}

# start_agent P [default]: the agent of column P (agent: the stunnel cloud end; h2: the nghttpx
# one, whose agent-config sets http2=auto). "default" leaves max-tunnels at the agent's default
# (the idle-tunnel count row); otherwise it is raised so that every held tunnel fits.
start_agent ()
{
  local dir port
  dir=$(agent_dir "$1")${2:+-$2}
  mkdir -p "$dir"
  port=$(free_port)
  "$CLOUD_SH" agent-config "$(cloud_dir "$1")" "$dir/agent.conf" "$port"
  # warm= stays at the agent's default unless asked
  if [[ ${2:-} != default ]]; then
    {
      echo
      echo "[tunnel]"
      echo "max-tunnels=$((HOLD + 1024))"
    } >>"$dir/agent.conf"
  fi
  if [[ -n ${PH_BENCH_WARM:-} ]]; then
    sed -i "s/^\[upstream\]$/[upstream]\nwarm=$PH_BENCH_WARM/" "$dir/agent.conf"
  fi
  launch_agent "$dir" "$port"
}

# --- measurements --------------------------------------------------------------------------

# Checks that the path carries both kinds of traffic before measuring anything.
smoke ()
{
  local p=$1
  curl -sS --max-time 10 -x "http://$PROXY" --cacert "$PH_ORIGIN_CA" \
    "https://$ORIGIN_TLS/hello" -o /dev/null 2>>"$RAW" || {
    log "$p: HTTPS through $PROXY failed"
    return 1
  }
  curl -sS --max-time 10 -x "http://$PROXY" "http://$ORIGIN_HTTP/hello" -o /dev/null 2>>"$RAW" || {
    log "$p: plain HTTP through $PROXY failed"
    return 1
  }
}

measure_hold ()
{
  local p=$1 before after line i flag=$WORK/release-$1 out=$WORK/hold-$1.out held
  # a short warm-up so one-time allocations are not charged to the tunnels
  client latency -x "$PROXY" -o "$ORIGIN_TLS" -n 20 -w 5 >/dev/null || true
  sleep 1
  before=$(rss_kib $ROOTS)
  echo "+ ph-bench-client hold -k $HOLD" >>"$RAW"
  rm -f "$flag" # left by the round before: the client would let go at once
  "$CLIENT" hold -x "$PROXY" -o "$ORIGIN_HTTP" -t connect-plain -k "$HOLD" --until-file "$flag" \
    --max-hold 300 --timeout 30 >"$out" 2>>"$RAW" &
  HOLD_PID=$!
  line=""
  for ((i = 0; i < 1200; i++)); do
    line=$(grep -m1 '^held=' "$out" 2>/dev/null || true)
    [[ -n $line ]] && break
    kill -0 "$HOLD_PID" 2>/dev/null || break
    sleep 0.1
  done
  if [[ -z $line ]]; then
    log "$p: hold client did not report"
    kill -TERM "$HOLD_PID" 2>/dev/null || true
    R[$p.rss]=FAIL
  else
    sleep 2 # let the proxies settle
    after=$(rss_kib $ROOTS)
    R[$p.conns_hold]=$(conn_count "$(cloud_port "$p")")
    held=$(kv "$line" held)
    R[$p.held]=$held
    R[$p.rss_before]=$before
    R[$p.rss_after]=$after
    ((held > 0)) && R[$p.rss]=$(calc "($after - $before) / $held" 1) || R[$p.rss]=FAIL
  fi
  touch "$flag"
  wait "$HOLD_PID" 2>/dev/null || true
  HOLD_PID=""
  cat "$out" >>"$RAW"
  # still open when released: the idle-tunnel count row
  line=$(grep -m1 '^released' "$out" 2>/dev/null || true)
  [[ -n $line ]] && R[$p.held_end]=$(kv "$line" still_open)
  log "$p: idle tunnels: ${R[$p.held]:-0} held, RSS ${before:-?} -> ${after:-?} KiB, ${R[$p.rss]} KiB/tunnel"
}

measure_latency ()
{
  local p=$1 out
  out=$(client latency -x "$PROXY" "${AUTH_ARGS[@]}" -o "$ORIGIN_TLS" -n "$SAMPLES" -w "$WARMUP") ||
    true
  R[$p.p50]=$(kv "$out" p50_ms)
  R[$p.p99]=$(kv "$out" p99_ms)
  R[$p.lat_err]=$(kv "$out" errors)
  R[$p.phases]=$(kv "$out" phases_p50_ms)
  R[$p.phases99]=$(kv "$out" phases_p99_ms)
  log "$p: latency p50 ${R[$p.p50]:-?} ms p99 ${R[$p.p99]:-?} ms (errors ${R[$p.lat_err]:-?})"
}

# The processes of the cloud end that column P talks to, for its CPU during the rate test:
# cloud_roots gives the whole cloud end (the front, Squid and its auth helpers), front_roots the
# front alone (stunnel; nghttpx with its worker). The floor talks to the stunnel cloud end's
# Squid without its front. cpu_ticks takes each one's descendants too.
cloud_roots ()
{
  local dir
  dir=$(cloud_dir "$1")
  [[ $1 == direct ]] && { cat "$dir/squid.pid" 2>/dev/null; return 0; }
  cat "$dir/squid.pid" "$dir/stunnel.pid" "$dir/nghttpx.pid" 2>/dev/null | tr '\n' ' '
}

front_roots ()
{
  local dir
  dir=$(cloud_dir "$1")
  [[ $1 == direct ]] && return 0
  cat "$dir/stunnel.pid" "$dir/nghttpx.pid" 2>/dev/null | tr '\n' ' '
}

# The port that column P's client side connects to on the cloud end (the floor: the cloud Squid).
cloud_port ()
{
  case $1 in
    h2) echo "$H2_CLOUD_PORT" ;;
    direct) echo "$PH_CLOUD_SQUID_PORT" ;;
    *) echo "$PH_CLOUD_TLS_PORT" ;;
  esac
}

# Established TCP connections to 127.0.0.1:PORT, i.e. from the client side (or, for the floor,
# the load generator) to the cloud end: the sockets whose far end is the cloud's port.
conn_count ()
{
  ss -Htn state established "( dport = :$1 )" 2>/dev/null | wc -l
}

# conn_bytes PORT: "LOCAL_PORT BYTES_RECEIVED" for each of those connections (ss -i).
conn_bytes ()
{
  ss -Htni state established "( dport = :$1 )" 2>/dev/null | awk '
    /^[0-9]/ { if (lp != "") print lp, b; split($3, a, ":"); lp = a[2]; b = 0; next }
    { for (i = 1; i <= NF; i++) if ($i ~ /^bytes_received:/) { sub(/.*:/, "", $i); b = $i } }
    END { if (lp != "") print lp, b }'
}

# sample_conns PORT FILE: conn_count every 0.5 s into FILE, until killed.
sample_conns ()
{
  while :; do
    conn_count "$1" >>"$2"
    sleep 0.5
  done
}

measure_rate ()
{
  local p=$1 out c0 c1 k0 k1 f0 f1 o0 o1 m0 m1 started origin_pid sampler
  local samples=$WORK/conns-rate-$1
  sleep 1
  origin_pid=$(cat "$WORK/cloud/origin.pid" 2>/dev/null || true)
  : >"$samples"
  sample_conns "$(cloud_port "$p")" "$samples" &
  sampler=$!
  PIDS+=("$sampler")
  c0=$(cpu_ticks $ROOTS)
  k0=$(cpu_ticks $(cloud_roots "$p"))
  f0=$(cpu_ticks $(front_roots "$p"))
  o0=$(cpu_ticks $origin_pid)
  m0=$(machine_ticks)
  out=$(client rate -x "$PROXY" "${AUTH_ARGS[@]}" -o "$ORIGIN_TLS" -c "$CONCURRENCY" \
    -d "$RATE_SECONDS") || true
  c1=$(cpu_ticks $ROOTS)
  k1=$(cpu_ticks $(cloud_roots "$p"))
  f1=$(cpu_ticks $(front_roots "$p"))
  o1=$(cpu_ticks $origin_pid)
  m1=$(machine_ticks)
  stop_roots "$sampler"
  R[$p.rate]=$(kv "$out" tunnels_per_s)
  R[$p.rate_err]=$(kv "$out" errors)
  R[$p.rate_p50]=$(kv "$out" p50_ms)
  R[$p.rate_p99]=$(kv "$out" p99_ms)
  # the most connections to the cloud end seen while the rate test ran
  R[$p.conns_rate]=$(sort -n "$samples" | tail -n 1)
  started=$(kv "$out" started)
  if [[ -n $started && $started -gt 0 ]]; then
    [[ -n $ROOTS ]] && R[$p.tcpu]=$(calc "($c1 - $c0) * 1000 / $CLK_TCK / $started" 2)
    R[$p.kcpu]=$(calc "($k1 - $k0) * 1000 / $CLK_TCK / $started" 2)
    [[ $p != direct ]] && R[$p.fcpu]=$(calc "($f1 - $f0) * 1000 / $CLK_TCK / $started" 2)
    R[$p.cpu_split]="client-side $(calc "($c1 - $c0) * 1000 / $CLK_TCK / $started" 2)"
    R[$p.cpu_split]+=", cloud end ${R[$p.kcpu]}"
    [[ $p != direct ]] && R[$p.cpu_split]+=" (front ${R[$p.fcpu]})"
    R[$p.cpu_split]+=", origin $(calc "($o1 - $o0) * 1000 / $CLK_TCK / $started" 2)"
    R[$p.cpu_split]+=", load generator $(calc "$(kv "$out" self_cpu_s) * 1000 / $started" 2)"
    # how busy the whole machine was meanwhile: near all CPUs busy, the rate is CPU-bound
    R[$p.cpu_split]+="; machine busy $(calc "(${m1% *} - ${m0% *}) / (${m1#* } - ${m0#* }) * $(nproc)" 2)"
    R[$p.cpu_split]+=" of $(nproc) CPUs"
  fi
  log "$p: ${R[$p.rate]:-?} tunnels/s at concurrency $CONCURRENCY (errors ${R[$p.rate_err]:-?});" \
    "CPU ms/tunnel: ${R[$p.cpu_split]:-?}; up to ${R[$p.conns_rate]:-?} connections to the cloud"
}

# Holds CONCURRENCY tunnels (CONNECT to the origin's plain port, one GET /hello each, then idle)
# and counts the client side's TCP connections to the cloud end while they are open.
measure_conns_held ()
{
  local p=$1 flag=$WORK/release-conns-$1 out=$WORK/conns-held-$1.out line i pid
  # what is open before: the client side's idle or warm connections (the smoke test's)
  R[$p.conns_before]=$(conn_count "$(cloud_port "$p")")
  conn_bytes "$(cloud_port "$p")" >"$WORK/conns-before-$p"
  echo "+ ph-bench-client hold -k $CONCURRENCY (connections to the cloud)" >>"$RAW"
  rm -f "$flag" # left by the round before: the client would let go at once
  "$CLIENT" hold -x "$PROXY" -o "$ORIGIN_HTTP" -t connect-plain -k "$CONCURRENCY" \
    --until-file "$flag" --max-hold 60 --timeout 15 >"$out" 2>>"$RAW" &
  pid=$!
  HOLD_PID=$pid
  line=""
  for ((i = 0; i < 300; i++)); do
    line=$(grep -m1 '^held=' "$out" 2>/dev/null || true)
    [[ -n $line ]] && break
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.1
  done
  if [[ -n $line && $(kv "$line" held) == "$CONCURRENCY" ]]; then
    sleep 0.5
    R[$p.conns32]=$(conn_count "$(cloud_port "$p")")
    # the ones that carried the tunnels: new, or with more bytes received than before
    R[$p.conns32_used]=$(conn_bytes "$(cloud_port "$p")" | awk '
      NR == FNR { before[$1] = $2; next }
      !($1 in before) || $2 > before[$1] { n++ }
      END { print n + 0 }' "$WORK/conns-before-$p" -)
  else
    R[$p.conns32]=FAIL
    R[$p.conns32_used]=FAIL
  fi
  touch "$flag"
  wait "$pid" 2>/dev/null || true
  HOLD_PID=""
  cat "$out" >>"$RAW"
  log "$p: ${R[$p.conns32]} TCP connections to the cloud end with $CONCURRENCY tunnels held," \
    "${R[$p.conns32_used]} of them carrying them, ${R[$p.conns_before]} before" \
    "(${line:-no report})"
}

# Plain http:// GETs of 1 KiB (absolute form), a new client connection per request (the load
# generator closes after each response), CONCURRENCY in flight: what a page of plain-HTTP
# objects costs when nothing reuses the connection to the proxy.
measure_plain_rate ()
{
  local p=$1 out
  sleep 1
  out=$(client rate -x "$PROXY" "${AUTH_ARGS[@]}" -o "$ORIGIN_HTTP" -t absolute \
    -c "$CONCURRENCY" -d "$RATE_SECONDS") || true
  R[$p.prate]=$(kv "$out" tunnels_per_s)
  R[$p.prate_p50]=$(kv "$out" p50_ms)
  R[$p.prate_p99]=$(kv "$out" p99_ms)
  R[$p.prate_err]=$(kv "$out" errors)
  log "$p: plain http:// ${R[$p.prate]:-?} requests/s on new connections at concurrency" \
    "$CONCURRENCY, p50 ${R[$p.prate_p50]:-?} ms p99 ${R[$p.prate_p99]:-?} ms" \
    "(errors ${R[$p.prate_err]:-?})"
}

# Idle tunnels the agent of column P (agent, h2) holds with its default config (no max-tunnels
# override): a second agent, started only for this, holds what it can of HOLD; the count is the
# figure.
measure_held_default ()
{
  local p=$1 flag=$WORK/release-$1-default out=$WORK/hold-$1-default.out line i
  if ! start_agent "$p" default; then
    R[$p.held_default]=FAIL
    return 0
  fi
  echo "+ ph-bench-client hold -k $HOLD ($p, default config)" >>"$RAW"
  rm -f "$flag" # left by the round before: the client would let go at once
  "$CLIENT" hold -x "$PROXY" -o "$ORIGIN_HTTP" -t connect-plain -k "$HOLD" --until-file "$flag" \
    --max-hold 120 --timeout 15 >"$out" 2>>"$RAW" &
  HOLD_PID=$!
  line=""
  for ((i = 0; i < 1200; i++)); do
    line=$(grep -m1 '^held=' "$out" 2>/dev/null || true)
    [[ -n $line ]] && break
    kill -0 "$HOLD_PID" 2>/dev/null || break
    sleep 0.1
  done
  if [[ -n $line ]]; then
    sleep 2 # tunnels the agent drops after accepting them show up as closed_early
    R[$p.held_default]=$(($(kv "$line" held)))
    R[$p.held_default_line]=$line
  else
    R[$p.held_default]=FAIL
  fi
  touch "$flag"
  wait "$HOLD_PID" 2>/dev/null || true
  HOLD_PID=""
  cat "$out" >>"$RAW"
  line=$(grep -m1 '^released' "$out" 2>/dev/null || true)
  # count what was still open when released, if the client said so
  [[ -n $line ]] && R[$p.held_default]=$(kv "$line" still_open)
  check_alive "$p" "hold (default config)"
  stop_roots $AGENT_ROOTS
  log "$p (default config): ${R[$p.held_default]} of $HOLD idle tunnels held"
}

# The floor: the load generator straight to the cloud Squid (Basic auth, no TLS to the cloud,
# no client side at all). Nothing on the user's machine can make a tunnel cheaper than this.
run_direct ()
{
  log "=== cloud-direct (floor) ==="
  PROXY=127.0.0.1:$PH_CLOUD_SQUID_PORT
  ROOTS=""
  AUTH_ARGS=(--proxy-user "$PH_CLOUD_USER" --proxy-password-file "$PH_CLOUD_PASSWORD_FILE")
  client latency -x "$PROXY" "${AUTH_ARGS[@]}" -o "$ORIGIN_TLS" -n 20 -w 5 >/dev/null || true
  measure_latency direct
  measure_rate direct
  measure_plain_rate direct
  AUTH_ARGS=()
}

# bulk PATH KEY TRANSPORT ORIGIN [--upload]
# Plain-HTTP uploads are tried up to 3 times: Squid 5.7 sometimes takes a full request-body
# buffer for end of stream (a read of size 0) and drops the upload; see README.md.
measure_bulk ()
{
  local p=$1 key=$2 transport=$3 origin=$4 before after out bytes attempt tries=1 perf_pid=""
  shift 4
  [[ $transport == absolute && " $* " == *" --upload "* ]] && tries=3
  for ((attempt = 1; attempt <= tries; attempt++)); do
    sleep 1
    if [[ -n $PERF && $p == agent ]]; then
      perf record -q -g -o "$WORK/perf-$p-$key.data" -p "${ROOTS// /,}" 2>>"$RAW" &
      perf_pid=$!
      sleep 0.5
    fi
    echo "client-side processes: $(tree_pids $ROOTS)" >>"$RAW"
    before=$(cpu_ticks $ROOTS)
    out=$(client bulk -x "$PROXY" -o "$origin" -t "$transport" -s "$BULK_SIZE" --timeout 30 "$@") ||
      true
    after=$(cpu_ticks $ROOTS)
    if [[ -n $perf_pid ]]; then
      kill -INT "$perf_pid" 2>/dev/null || true
      wait "$perf_pid" 2>/dev/null || true
      perf_pid=""
    fi
    bytes=$(kv "$out" bytes)
    [[ -n $bytes && $bytes != 0 && $(kv "$out" errors) == 0 ]] && break
    log "$p: bulk $key attempt $attempt failed: $(kv "$out" error_kinds)"
  done
  R[$p.$key.mbps]=$(kv "$out" mb_per_s)
  if [[ -n $bytes && $bytes != 0 && $(kv "$out" errors) == 0 ]]; then
    R[$p.$key.cpu]=$(calc "($after - $before) / $CLK_TCK / ($bytes / 1073741824)" 2)
  else
    R[$p.$key.mbps]=FAIL
    R[$p.$key.cpu]=FAIL
  fi
  log "$p: bulk $key ${R[$p.$key.mbps]} MB/s, ${R[$p.$key.cpu]} CPU-s/GiB"
}

# Notes a client side that died during a measurement, so its figures are not trusted silently.
check_alive ()
{
  local p=$1 what=$2 pid
  for pid in $ROOTS; do
    if ! kill -0 "$pid" 2>/dev/null; then
      log "$p: process $pid died during $what"
      R[$p.died]="${R[$p.died]:-}$what "
    fi
  done
}

# alpn_counts: the lines of the h2 cloud end's nghttpx access log by ALPN: "H2 HTTP11".
alpn_counts ()
{
  local log=$WORK/cloud-h2/nghttpx-access.log
  echo "$(grep -c ' alpn=h2 ' "$log" 2>/dev/null || true)" \
    "$(grep -c ' alpn=http/1.1 ' "$log" 2>/dev/null || true)"
}

run_path ()
{
  local p=$1 alpn0="" a b c d
  log "=== $p ==="
  [[ $p == h2 ]] && alpn0=$(alpn_counts)
  if [[ $p == chain ]]; then
    start_chain "$PH_CLOUD_TLS_PORT"
  elif ! start_agent "$p"; then
    R[$p.died]="start "
    return 0
  fi
  if ! smoke "$p"; then
    R[$p.died]="smoke-test "
    stop_roots $ROOTS
    return 0
  fi
  measure_conns_held "$p"
  check_alive "$p" "$CONCURRENCY tunnels held"
  measure_hold "$p"
  check_alive "$p" hold
  measure_latency "$p"
  check_alive "$p" latency
  measure_rate "$p"
  check_alive "$p" rate
  measure_plain_rate "$p"
  check_alive "$p" "plain rate"
  measure_bulk "$p" tls_down connect-tls "$ORIGIN_TLS"
  measure_bulk "$p" tls_up connect-tls "$ORIGIN_TLS" --upload
  measure_bulk "$p" http_down absolute "$ORIGIN_HTTP"
  measure_bulk "$p" http_up absolute "$ORIGIN_HTTP" --upload
  check_alive "$p" bulk
  if [[ $p == chain ]]; then
    stop_roots $CHAIN_ROOTS
  else
    stop_roots $AGENT_ROOTS
    # The agent's own account of its connection pools, logged as it stops.
    R[$p.pools]=$(sed -n 's/.*connections to [^ ]*: //p' "$(agent_dir "$p")/agent.log" | tail -1)
  fi
  if [[ $p == h2 ]]; then
    # what the agent sent nghttpx over h2 and over HTTP/1.1 in this column's run
    read -r a b <<<"$alpn0"
    read -r c d <<<"$(alpn_counts)"
    R[h2.alpn_h2]=$((c - a))
    R[h2.alpn_http11]=$((d - b))
  fi
}

# Rounds: each one floor, chain, agent, h2 in turn, so that a machine that slows down or speeds
# up weighs on all of them alike; every figure is then the median of the rounds (RR keeps each).
declare -A RR
snapshot_round ()
{
  local r=$1 k
  for k in "${!R[@]}"; do RR["$r|$k"]=${R[$k]}; done
}

median_rounds ()
{
  local k r v vals
  for k in "${!R[@]}"; do
    vals=()
    for ((r = 1; r <= ROUNDS; r++)); do
      v=${RR["$r|$k"]:-}
      [[ $v =~ ^[0-9]+(\.[0-9]+)?$ ]] && vals+=("$v")
    done
    ((${#vals[@]} > 1)) || continue
    R[$k]=$(printf '%s\n' "${vals[@]}" | sort -g |
      awk '{ a[NR] = $1 } END { if (NR % 2) print a[(NR + 1) / 2]; else print (a[NR / 2] + a[NR / 2 + 1]) / 2 }')
  done
}

# "a / b / c": a figure in each round.
per_round ()
{
  local key=$1 r out=""
  for ((r = 1; r <= ROUNDS; r++)); do out+="${out:+ / }${RR["$r|$key"]:--}"; done
  echo "$out"
}

START=$(date +%s)
LOAD_START=$(cut -d' ' -f1-3 /proc/loadavg)
patch_cloud_squid
for ((round = 1; round <= ROUNDS; round++)); do
  ((ROUNDS == 1)) || log "=== round $round of $ROUNDS ==="
  run_direct
  for p in chain agent h2; do
    want $p && run_path $p
  done
  snapshot_round "$round"
done
((ROUNDS == 1)) || median_rounds
for p in agent h2; do
  want $p && measure_held_default $p
done

# --- the table -----------------------------------------------------------------------------

# row LABEL KEY REF TARGET [AGENT_KEY [H2_TARGET]]; TARGET is "le:X" or "ge:X" on the
# agent/chain ratio, "abs:X" on the agent figure (at most X), or "-". AGENT_KEY, when the agent's
# (and h2's) figure is kept under another key than the chain's ("" for the same). H2_TARGET, on
# the h2 column: "fl-le:X" / "fl-ge:X" on the h2/floor ratio, "ag-le:X" on the h2/agent one,
# "abs:X" on the h2 figure (at most X), or "-". Every ratio comes from this run's figures only.
ROW_FORMAT='%-48s %9s %9s %8s %9s %8s %9s  %-12s %-6s %9s %7s %7s  %-12s %s\n'

# ratio_of A B: A / B, or "-" when either is not a number or B is 0.
ratio_of ()
{
  if [[ $1 =~ ^[0-9.]+$ && $2 =~ ^[0-9.]+$ ]] && awk "BEGIN { exit !($2 > 0) }"; then
    calc "$1 / $2" 2
  else
    echo -
  fi
}

row ()
{
  local label=$1 key=$2 ref=$3 target=$4 h2target=${6:--} c a f h ratio fratio hratio hfratio
  local verdict="-" hverdict="-" kind limit
  c=${R[chain.$key]:--}
  a=${R[agent.${5:-$key}]:--}
  f=${R[direct.$key]:--}
  h=${R[h2.${5:-$key}]:--}
  ratio=$(ratio_of "$a" "$c")
  fratio=$(ratio_of "$a" "$f")
  hratio=$(ratio_of "$h" "$a")
  hfratio=$(ratio_of "$h" "$f")
  if [[ $target != - ]]; then
    kind=${target%%:*}
    limit=${target#*:}
    verdict=MISS
    case $kind in
      le) [[ $ratio != - ]] && awk "BEGIN { exit !($ratio <= $limit) }" && verdict=PASS ;;
      ge) [[ $ratio != - ]] && awk "BEGIN { exit !($ratio >= $limit) }" && verdict=PASS ;;
      abs) [[ $a =~ ^[0-9.]+$ ]] && awk "BEGIN { exit !($a <= $limit) }" && verdict=PASS ;;
    esac
    want agent || verdict="-"
    [[ $kind != abs ]] && ! want chain && verdict="-"
    # a figure that could not be measured is not a miss of the agent
    [[ $kind != abs && ( $c == FAIL || $a == FAIL ) ]] && verdict="n/a"
    [[ $kind == abs && $a == FAIL ]] && verdict="n/a"
    target="${kind/le/ratio<=}"
    target="${target/ge/ratio>=}"
    target="${target/abs/agent<=}$limit"
  fi
  if [[ $h2target != - ]]; then
    kind=${h2target%%:*}
    limit=${h2target#*:}
    hverdict=MISS
    case $kind in
      fl-le) [[ $hfratio != - ]] && awk "BEGIN { exit !($hfratio <= $limit) }" && hverdict=PASS ;;
      fl-ge) [[ $hfratio != - ]] && awk "BEGIN { exit !($hfratio >= $limit) }" && hverdict=PASS ;;
      ag-le) [[ $hratio != - ]] && awk "BEGIN { exit !($hratio <= $limit) }" && hverdict=PASS ;;
      abs) [[ $h =~ ^[0-9.]+$ ]] && awk "BEGIN { exit !($h <= $limit) }" && hverdict=PASS ;;
    esac
    want h2 || hverdict="-"
    [[ $kind == ag-* ]] && ! want agent && hverdict="-"
    [[ $h == FAIL || ($kind == fl-* && $f == FAIL) || ($kind == ag-* && $a == FAIL) ]] &&
      hverdict="n/a"
    h2target="${kind/fl-le/h2/fl<=}"
    h2target="${h2target/fl-ge/h2/fl>=}"
    h2target="${h2target/ag-le/h2/ag<=}"
    h2target="${h2target/abs/h2<=}$limit"
  fi
  # shellcheck disable=SC2059
  printf "$ROW_FORMAT" "$label" "$c" "$a" "$ratio" "$f" "$fratio" "$ref" "$target" "$verdict" \
    "$h" "$hratio" "$hfratio" "$h2target" "$hverdict"
}

{
  echo "Pinhole benchmark, $(date -u +%Y-%m-%dT%H:%M:%SZ), $(nproc) CPUs, $(uname -r)"
  echo "bulk $BULK_SIZE per transfer; latency $SAMPLES samples after $WARMUP warm-up;" \
    "rate c=$CONCURRENCY for ${RATE_SECONDS}s; $HOLD idle tunnels"
  echo "chain = local squid (+kids) + stunnel client; agent = pinhole-agent; client side only"
  echo "h2 = pinhole-agent (http2=auto) against a second cloud end, nghttpx --http2-proxy in" \
    "front of its own Squid; h2/ag = h2 / agent, h2/fl = h2 / floor"
  ((ROUNDS == 1)) ||
    echo "$ROUNDS interleaved rounds (floor, chain, agent, h2 each round); every figure is the median"
  [[ -n $BUFFER_LINE ]] &&
    echo "both Squids run with '$BUFFER_LINE' (Squid 5.7 upload bug workaround, see README.md)"
  echo
  # shellcheck disable=SC2059
  printf "$ROW_FORMAT" metric chain agent agent/ch floor agent/fl chain-ref target result \
    h2 h2/ag h2/fl h2-target result
  row "bulk down, HTTPS in CONNECT (MB/s)" tls_down.mbps - -
  row "bulk up, HTTPS in CONNECT (MB/s)" tls_up.mbps - -
  row "bulk down, plain http:// (MB/s)" http_down.mbps - -
  row "bulk up, plain http:// (MB/s)" http_up.mbps - -
  row "CPU-s/GiB down, HTTPS in CONNECT" tls_down.cpu 2.6 le:0.4
  row "CPU-s/GiB up, HTTPS in CONNECT" tls_up.cpu - le:0.5
  row "CPU-s/GiB down, plain http://" http_down.cpu 5.8 le:0.5
  row "CPU-s/GiB up, plain http://" http_up.cpu - le:0.5
  row "new tunnel latency p50 (ms)" p50 8.8 le:0.7 "" fl-le:1.2
  row "new tunnel latency p99 (ms)" p99 - le:1.0 "" fl-le:1.5
  row "new tunnels/s at concurrency $CONCURRENCY" rate 200 ge:2 "" fl-ge:0.9
  row "new tunnel latency at c=$CONCURRENCY p50 (ms)" rate_p50 - -
  row "new tunnel latency at c=$CONCURRENCY p99 (ms)" rate_p99 - -
  row "plain http:// req/s, new conn each, c=$CONCURRENCY" prate - ge:1.2
  row "plain http:// latency, new conn, c=$CONCURRENCY p50 (ms)" prate_p50 - le:1.0
  row "plain http:// latency, new conn, c=$CONCURRENCY p99 (ms)" prate_p99 - le:1.0
  row "RSS per idle tunnel (KiB)" rss 182 abs:32
  row "idle tunnels held of $HOLD, default config" held_end - - held_default
  row "client-side CPU ms per new tunnel (rate)" tcpu - -
  row "cloud-end CPU ms per new tunnel (rate)" kcpu - - "" ag-le:0.3
  row "  of it the front (stunnel | nghttpx)" fcpu - -
  row "TCP conns to the cloud, $CONCURRENCY tunnels held" conns32 - - "" abs:1
  row "  of them carrying the tunnels" conns32_used - -
  row "TCP conns to the cloud, most in rate c=$CONCURRENCY" conns_rate - - "" abs:1
  row "TCP conns to the cloud, $HOLD tunnels held" conns_hold - -
  echo
  echo "floor = load generator straight to the cloud Squid (no TLS to the cloud, no client side);" \
    "agent/fl = agent / floor"
  echo "cloud end = its front (stunnel, or nghttpx and its worker) + Squid + its auth helpers," \
    "utime+stime from /proc; the floor's is its Squid alone"
  if want h2 && want chain; then
    echo "cloud-end CPU per new tunnel, h2 / chain's: $(ratio_of "${R[h2.kcpu]:--}" \
      "${R[chain.kcpu]:--}"); fronts alone, nghttpx / the chain's stunnel:" \
      "$(ratio_of "${R[h2.fcpu]:--}" "${R[chain.fcpu]:--}"), nghttpx / the agent's stunnel:" \
      "$(ratio_of "${R[h2.fcpu]:--}" "${R[agent.fcpu]:--}")"
  fi
  echo "new tunnel latency by step, ms from connect() (tcp, CONNECT 200, origin TLS done," \
    "response head), p50 | p99:"
  echo "  floor ${R[direct.phases]:--} | ${R[direct.phases99]:--}"
  echo "  chain ${R[chain.phases]:--} | ${R[chain.phases99]:--}"
  echo "  agent ${R[agent.phases]:--} | ${R[agent.phases99]:--}"
  echo "  h2    ${R[h2.phases]:--} | ${R[h2.phases99]:--}"
  echo "CPU ms per tunnel during the rate test (all tunnels started, incl. warm-up):"
  echo "  floor ${R[direct.cpu_split]:--}"
  echo "  chain ${R[chain.cpu_split]:--}"
  echo "  agent ${R[agent.cpu_split]:--}"
  echo "  h2    ${R[h2.cpu_split]:--}"
  echo "TCP connections to the cloud before the $CONCURRENCY tunnels were opened (idle, warm):" \
    "chain ${R[chain.conns_before]:--}, agent ${R[agent.conns_before]:--}," \
    "h2 ${R[h2.conns_before]:--}"
  if ((ROUNDS > 1)); then
    echo "each round (chain | agent | floor | h2), for the rows with a target of the performance issue:"
    for key in prate prate_p50 prate_p99 p50 p99 tls_down.cpu rate kcpu conns32 conns_rate; do
      printf '  %-14s %s | %s | %s | %s\n' "$key" "$(per_round "chain.$key")" \
        "$(per_round "agent.$key")" "$(per_round "direct.$key")" "$(per_round "h2.$key")"
    done
  fi
  for p in agent h2; do
    [[ -n ${R[$p.pools]:-} ]] || continue
    resumed=$(sed -n 's/.*handshakes \([0-9]*\) resumed of \([0-9]*\).*/\1 \2/p' <<<"${R[$p.pools]}")
    echo "$p's connections to the cloud over its run (its log at stop): ${R[$p.pools]}"
    [[ -n $resumed ]] && awk -v p="$p" -v r="${resumed% *}" -v n="${resumed#* }" \
      'n > 0 { printf "TLS handshakes of %s resumed: %.1f%% of %d\n", p, 100 * r / n, n }'
  done
  want h2 && echo "requests nghttpx logged in the h2 column's run: ${R[h2.alpn_h2]:--} over h2," \
    "${R[h2.alpn_http11]:--} over http/1.1 (by ALPN; a tunnel is one request)"
  echo "errors: latency chain=${R[chain.lat_err]:--} agent=${R[agent.lat_err]:--}" \
    "h2=${R[h2.lat_err]:--};" \
    "rate chain=${R[chain.rate_err]:--} agent=${R[agent.rate_err]:--} h2=${R[h2.rate_err]:--};" \
    "plain rate floor=${R[direct.prate_err]:--} chain=${R[chain.prate_err]:--}" \
    "agent=${R[agent.prate_err]:--} h2=${R[h2.prate_err]:--};" \
    "held chain=${R[chain.held]:--} agent=${R[agent.held]:--} h2=${R[h2.held]:--} of $HOLD" \
    "(agents with max-tunnels=$((HOLD + 1024)));" \
    "agent at default config: ${R[agent.held_default_line]:--};" \
    "h2 at default config: ${R[h2.held_default_line]:--}"
  [[ -n ${R[chain.died]:-} ]] && echo "WARNING: a chain process died during: ${R[chain.died]}"
  [[ -n ${R[agent.died]:-} ]] && echo "WARNING: pinhole-agent died during: ${R[agent.died]}"
  [[ -n ${R[h2.died]:-} ]] && echo "WARNING: pinhole-agent (h2) died during: ${R[h2.died]}"
  echo "RSS KiB before/with tunnels: chain ${R[chain.rss_before]:--}/${R[chain.rss_after]:--}," \
    "agent ${R[agent.rss_before]:--}/${R[agent.rss_after]:--}," \
    "h2 ${R[h2.rss_before]:--}/${R[h2.rss_after]:--}"
  echo "run took $(($(date +%s) - START)) s; load average at start $LOAD_START, at end" \
    "$(cut -d' ' -f1-3 /proc/loadavg) (anything else running on the machine skews every figure)"
} >"$WORK/table.txt"

cat "$WORK/table.txt"
mkdir -p "$(dirname "$OUT")"
{
  cat "$WORK/table.txt"
  echo
  echo "---- raw client output ----"
  cat "$RAW"
} >"$OUT"
log "results written to $OUT"

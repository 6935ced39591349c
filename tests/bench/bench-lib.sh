#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-or-later
# bench-lib.sh: what the benchmarks in tests/bench/ share, sourced by run-bench.sh and
# bench-failover.sh: the work dir and its clean-up on exit, the cloud ends (pinhole-cloud.sh),
# the old chain's client side (local Squid with one cache_peer per cloud end, each through its
# own stunnel client) and pinhole-agent.
#
# The sourcing script sets SRC_DIR, AGENT, KEEP (1 keeps the work dir) and BENCH_TAG (log
# prefix), then calls bench_init. It may set BUFFER_LINE (a line added to the chain's Squid
# config) and HOLD_PID (a client to stop on exit).

# free_port; start_cloud below, and the benchmarks' start_agent, are their own.
# shellcheck source=tests/ph-test-lib.sh
source "$SRC_DIR/tests/ph-test-lib.sh"

CLOUD_SH=$SRC_DIR/tests/cloud/pinhole-cloud.sh
PIDS=()       # our long-running processes, stopped in reverse order on exit
CLOUD_DIRS=() # cloud ends started with start_cloud, stopped on exit
HOLD_PID=""
CHAIN_ROOTS=""
AGENT_ROOTS=""

log ()
{
  echo "${BENCH_TAG:-bench}: $*" >&2
}

die ()
{
  log "$*"
  exit 1
}

# The origin, the agent (unless ONLY is chain) and the tools are there; the fd limit is raised
# (thousands of tunnels need fds in every hop; children inherit the limit).
bench_require ()
{
  local bin
  [[ -x $PH_TEST_ORIGIN ]] || die "no test origin at $PH_TEST_ORIGIN (ninja -C build, or set PH_TEST_ORIGIN)"
  [[ ${ONLY:-} == chain || -x $AGENT ]] || die "no agent at $AGENT (build it, set PH_AGENT, or --only chain)"
  for bin in squid stunnel4 python3 ss curl; do
    command -v $bin >/dev/null || die "$bin not found"
  done
  ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)"
}

# bench_init [PREFIX]: makes WORK, /tmp/PREFIX.XXXXXX (and RAW, where the raw output of every
# client run goes) and arms the clean-up.
bench_init ()
{
  WORK=$(mktemp -d "/tmp/${1:-bench}.XXXXXX")
  chmod 0711 "$WORK" # squid runs as proxy and must traverse it
  RAW=$WORK/raw.log
  trap bench_cleanup EXIT
  trap 'exit 130' INT
  trap 'exit 143' TERM
}

bench_cleanup ()
{
  local rc=$? i pid dir
  trap - EXIT INT TERM
  [[ -n $HOLD_PID ]] && kill -TERM "$HOLD_PID" 2>/dev/null
  for ((i = ${#PIDS[@]} - 1; i >= 0; i--)); do
    pid=${PIDS[i]}
    kill -TERM "$pid" 2>/dev/null || true
  done
  for pid in "${PIDS[@]}" $HOLD_PID; do
    for ((i = 0; i < 50; i++)); do
      kill -0 "$pid" 2>/dev/null || break
      sleep 0.1
    done
    kill -KILL "$pid" 2>/dev/null || true
  done
  for dir in "${CLOUD_DIRS[@]}"; do
    "$CLOUD_SH" stop "$dir" >/dev/null 2>&1
  done
  if ((${KEEP:-0} || rc != 0)); then
    log "work dir kept: $WORK"
  else
    rm -rf "$WORK"
  fi
  exit $rc
}

wait_port ()
{
  local port=$1 pid=$2 what=$3 i
  for ((i = 0; i < 200; i++)); do
    ss -Hltn "sport = :$port" 2>/dev/null | grep -qF "127.0.0.1:$port " && return 0
    kill -0 "$pid" 2>/dev/null || {
      log "$what exited before listening on $port"
      return 1
    }
    sleep 0.1
  done
  log "$what did not listen on 127.0.0.1:$port"
  return 1
}

# start_cloud DIR [VAR=VALUE...]: a cloud end (pinhole-cloud.sh) in DIR, stopped on exit (and by
# its watchdog should this shell die); the caller sources DIR/cloud.env.
start_cloud ()
{
  local dir=$1
  shift
  env "$@" PH_CLOUD_OWNER_PID=$$ "$CLOUD_SH" start "$dir" 2>>"$RAW" ||
    die "pinhole-cloud.sh start failed (see $RAW)"
  CLOUD_DIRS+=("$dir")
}

# start_chain CLOUD_TLS_PORT...: the chain's client side: one stunnel client (verify = 0, as
# deployed) per cloud end, and a local Squid with each of them as a cache_peer parent (the
# first one `default`, the others after it in Squid's own order), Basic login, never_direct.
# Every cloud end takes the credentials of PH_CLOUD_USER / PH_CLOUD_PASSWORD_FILE.
# shellcheck disable=SC2034 # PROXY and ROOTS are for the sourcing script
start_chain ()
{
  local dir=$WORK/chain squid_port stunnel_port user_line="" password pid i=0 cloud_port
  local peers="" default=default
  mkdir -p "$dir/logs"
  chmod 0711 "$dir"
  squid_port=$(free_port)
  password=$(<"$PH_CLOUD_PASSWORD_FILE")
  CHAIN_ROOTS=""
  for cloud_port in "$@"; do
    stunnel_port=$(free_port)
    cat >"$dir/stunnel-$i.conf" <<EOF
; the chain's stunnel client: TLS to the cloud stunnel, no verification (as deployed)
foreground = yes
pid =
debug = notice
socket = l:TCP_NODELAY=1
socket = r:TCP_NODELAY=1

[cloud]
client = yes
accept = 127.0.0.1:$stunnel_port
connect = 127.0.0.1:$cloud_port
verify = 0
EOF
    stunnel4 "$dir/stunnel-$i.conf" >"$dir/stunnel-$i.log" 2>&1 </dev/null &
    pid=$!
    PIDS+=("$pid")
    CHAIN_ROOTS+="$pid "
    wait_port "$stunnel_port" "$pid" "stunnel client" || die "see $dir/stunnel-$i.log"
    peers+="cache_peer 127.0.0.1 parent $stunnel_port 0 no-query no-digest $default"
    peers+=" name=cloud$i login=$PH_CLOUD_USER:$password"$'\n'
    default=""
    i=$((i + 1))
  done
  if [[ $(id -u) == 0 ]]; then
    user_line="cache_effective_user proxy"
    chown proxy: "$dir/logs"
  fi
  cat >"$dir/squid.conf" <<EOF
# the chain's local Squid: everything to the stunnel client(s) as parent, Basic login, no cache
http_port 127.0.0.1:$squid_port
visible_hostname pinhole-bench-chain
$user_line
max_filedescriptors 16384
acl localhost src 127.0.0.1/32 ::1
http_access allow localhost
http_access deny all
$peers
never_direct allow all
cache deny all
cache_mem 8 MB
${BUFFER_LINE:-}
pid_filename $dir/logs/squid.pid
access_log stdio:$dir/logs/access.log
cache_log $dir/logs/cache.log
cache_store_log none
netdb_filename none
coredump_dir $dir/logs
logfile_rotate 0
pinger_enable off
shutdown_lifetime 0 seconds
EOF
  [[ $(id -u) == 0 ]] && chgrp proxy "$dir/squid.conf" && chmod 0640 "$dir/squid.conf"

  # --foreground: the master stays our child, its worker (kid) is its child
  squid --foreground -f "$dir/squid.conf" >"$dir/squid.out" 2>&1 </dev/null &
  pid=$!
  PIDS+=("$pid")
  CHAIN_ROOTS+="$pid"
  wait_port "$squid_port" "$pid" "local squid" || die "see $dir/squid.out and $dir/logs/cache.log"
  PROXY=127.0.0.1:$squid_port
  ROOTS=$CHAIN_ROOTS
}

# launch_agent DIR PORT: pinhole-agent with DIR/agent.conf, listening on 127.0.0.1:PORT, its
# log in DIR/agent.log; sets PROXY and ROOTS.
# shellcheck disable=SC2034 # PROXY and ROOTS are for the sourcing script
launch_agent ()
{
  local dir=$1 port=$2 pid i
  "$AGENT" --config "$dir/agent.conf" >"$dir/agent.out" 2>"$dir/agent.log" </dev/null &
  pid=$!
  PIDS+=("$pid")
  AGENT_ROOTS=$pid
  for ((i = 0; i < 200; i++)); do
    grep -q "listening on" "$dir/agent.log" 2>/dev/null && break
    kill -0 "$pid" 2>/dev/null || {
      tail -n 20 "$dir/agent.log" >&2
      log "pinhole-agent exited at start"
      return 1
    }
    sleep 0.1
  done
  wait_port "$port" "$pid" pinhole-agent || return 1
  PROXY=127.0.0.1:$port
  ROOTS=$AGENT_ROOTS
}

stop_roots ()
{
  local pid i
  for pid in "$@"; do kill -TERM "$pid" 2>/dev/null || true; done
  for pid in "$@"; do
    for ((i = 0; i < 100; i++)); do
      kill -0 "$pid" 2>/dev/null || break
      sleep 0.1
    done
    kill -KILL "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
  done
  # forget them, so the exit trap never signals a recycled PID
  local keep=() p
  for p in "${PIDS[@]}"; do
    [[ " $* " == *" $p "* ]] || keep+=("$p")
  done
  PIDS=("${keep[@]}")
}

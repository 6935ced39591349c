# SPDX-License-Identifier: GPL-2.0-or-later
# ph-test-lib.sh: what the shell tests share (sourced after tap.sh): a free port, the test's
# private directory, the cloud end (tests/cloud/pinhole-cloud.sh), a private session bus, the
# real pinhole-agent in --session mode with a clean environment, pinholectl against that bus,
# polling the agent's status, stopping processes, and the clean-up of all of it.
#
# The caller sets AGENT and CTL (the binaries) and SRCDIR (the source tree) before it calls
# these. In a network namespace of the test's own it sets ph_in to the command that runs a
# command there (ph_in=(ip netns exec NS)); ctl and start_agent run through it. The functions
# set tmp (ph_make_tmp), bus_address and bus_pid (start_session_bus), system_bus_address (the
# agent's system bus: none unless the caller sets one), agent_pid and agent_status
# (start_agent, stop_agent), and out, err and rc (ctl). The benchmarks and the soak (no TAP)
# use free_port only.
# shellcheck shell=bash
# shellcheck disable=SC2034 # err, agent_status: for the caller

ph_in=()
tmp=${tmp:-}
bus_address=""
bus_pid=""
system_bus_address=""
agent_pid=""
agent_status=0
CLOUD_SCRIPT=${SRCDIR:-$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)}/tests/cloud/pinhole-cloud.sh

# free_port [COMMAND...]: a TCP port free on 127.0.0.1 (in COMMAND's network namespace).
free_port ()
{
  "$@" python3 -c 'import socket
s = socket.socket()
s.bind(("127.0.0.1", 0))
print(s.getsockname()[1])'
}

# dump_files FILE...: the last 40 lines of each of the test's files that is not empty (for
# dump_logs).
dump_files ()
{
  [[ -n $tmp ]] || return 0
  local f
  for f in "$@"; do
    [[ -s $tmp/$f ]] || continue
    echo "# ----- $f (last 40 lines) -----"
    tail -n 40 "$tmp/$f" | sed 's/^/#   /'
  done
}

# ph_require TOOL...: skips the test (a failure under CI=true) without a TOOL, stunnel or Squid;
# bails out without pinholectl or pinhole-agent.
ph_require ()
{
  local tool
  for tool in "$@"; do
    command -v "$tool" >/dev/null || skip_all "$tool not found"
  done
  [[ -x ${PH_STUNNEL:-/usr/bin/stunnel4} ]] || skip_all "stunnel4 not found"
  [[ -x ${PH_SQUID:-/usr/sbin/squid} ]] || skip_all "squid not found"
  [[ -x $CTL ]] || bail "pinholectl not found at $CTL"
  [[ -x $AGENT ]] || bail "pinhole-agent not found at $AGENT"
}

# ph_make_tmp NAME: the test's private directory, /tmp/pinhole-NAME.XXXXXX, with the agent's
# home, configuration, state, runtime and managed.d directories in it.
ph_make_tmp ()
{
  tmp=$(mktemp -d "${TMPDIR:-/tmp}/pinhole-$1.XXXXXX") || bail "mktemp failed"
  # Squid runs as proxy when we are root and must reach the cloud dir inside.
  chmod 0711 "$tmp"
  mkdir -p "$tmp/home" "$tmp/config/pinhole" "$tmp/state" "$tmp/runtime" "$tmp/managed.d"
  chmod 0700 "$tmp/runtime"
  system_bus_address="unix:path=$tmp/no-system-bus"
}

# ph_remove_tmp: removes the test's directory, or keeps it when a test failed or PH_KEEP_TMP is
# set (for the EXIT trap).
ph_remove_tmp ()
{
  [[ -n $tmp ]] || return 0
  # shellcheck disable=SC2154 # tests_failed: tap.sh
  if ((tests_failed == 0)) && [[ -z ${PH_KEEP_TMP:-} ]]; then
    rm -rf "$tmp"
  else
    echo "# files kept in $tmp"
  fi
}

# start_cloud [COMMAND...]: the cloud end with its origin in $tmp/cloud (started through
# COMMAND, in its network namespace), stopped when this shell dies; its cloud.env is sourced.
start_cloud ()
{
  if ! "$@" env PH_CLOUD_ORIGIN=1 PH_CLOUD_OWNER_PID=$$ bash "$CLOUD_SCRIPT" start "$tmp/cloud" \
    >"$tmp/cloud.out" 2>&1; then
    sed 's/^/# /' "$tmp/cloud.out"
    bail "the cloud end did not start"
  fi
  # shellcheck disable=SC1091
  source "$tmp/cloud/cloud.env"
}

# bus_config TYPE LISTEN: a bus configuration with the stock policy of a session bus but no
# service activation: nothing outside the test answers on it.
bus_config ()
{
  cat <<EOF
<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig>
  <type>$1</type>
  <listen>$2</listen>
  <auth>EXTERNAL</auth>
  <policy context="default">
    <allow user="*"/>
    <allow send_destination="*" eavesdrop="true"/>
    <allow eavesdrop="true"/>
    <allow own="*"/>
  </policy>
</busconfig>
EOF
}

# start_session_bus [COMMAND...]: a session bus of the test's own, listening in $tmp (started
# through COMMAND); sets bus_address and bus_pid.
start_session_bus ()
{
  bus_config session "unix:dir=$tmp" >"$tmp/bus.conf"
  "$@" dbus-daemon --config-file="$tmp/bus.conf" --fork --print-address=3 --print-pid=4 \
    3>"$tmp/bus.address" 4>"$tmp/bus.pid" || bail "dbus-daemon did not start"
  bus_address=$(head -n 1 "$tmp/bus.address")
  bus_pid=$(head -n 1 "$tmp/bus.pid")
  [[ -n $bus_address && -n $bus_pid ]] || bail "dbus-daemon printed no address"
}

# ctl ARGS...: runs pinholectl against the test's buses; sets $rc, $out and $err, returns $rc.
ctl ()
{
  out=$(DBUS_SESSION_BUS_ADDRESS=$bus_address DBUS_SYSTEM_BUS_ADDRESS=$system_bus_address \
    "${ph_in[@]}" "$CTL" "$@" 2>"$tmp/ctl.err")
  rc=$?
  err=$(<"$tmp/ctl.err")
  return "$rc"
}

# status_field FIELD: one field of pinholectl status --json (a.b for a field of a field); lists,
# objects and booleans as JSON.
status_field ()
{
  ctl --session status --json || return 1
  printf '%s' "$out" | python3 -c 'import json, sys; v = json.load(sys.stdin)
for k in sys.argv[1].split("."):
    v = v[k]
print(json.dumps(v) if isinstance(v, (list, dict, bool)) else v)' "$1"
}

# wait_field FIELD VALUE SECONDS: polls the agent until FIELD is VALUE; says what it was if not.
wait_field ()
{
  local field=$1 want=$2 seconds=$3 i value=""
  for ((i = 0; i < seconds * 10; i++)); do
    value=$(status_field "$field") && [[ $value == "$want" ]] && return 0
    sleep 0.1
  done
  echo "$field stayed '$value' (state $(status_field state): $(status_field last_error.message))"
  return 1
}

# wait_state STATE SECONDS: polls the agent until State is STATE.
wait_state ()
{
  wait_field state "$1" "$2"
}

# start_agent: pinhole-agent --session on the test's buses, its configuration $tmp/system.conf
# and $tmp/managed.d; sets agent_pid, returns 0 once it answers on the bus.
#
# The agent is started with this environment and nothing more, so that /proc/PID/environ shows
# exactly what it got; and, in the sanitizer build, the sanitizers' options
# (tests/sanitizers/run-test.sh), so that its reports land where the runner looks; and the
# caller's array agent_env (VAR=VALUE words), when it sets one.
start_agent ()
{
  local -a san=()
  local v i
  for v in ASAN_OPTIONS UBSAN_OPTIONS LSAN_OPTIONS G_SLICE; do
    [[ -n ${!v:-} ]] && san+=("$v=${!v}")
  done
  "${ph_in[@]}" env -i PATH="$PATH" HOME="$tmp/home" XDG_CONFIG_HOME="$tmp/config" \
    XDG_STATE_HOME="$tmp/state" XDG_RUNTIME_DIR="$tmp/runtime" \
    DBUS_SESSION_BUS_ADDRESS="$bus_address" DBUS_SYSTEM_BUS_ADDRESS="$system_bus_address" \
    PH_SECRET_STORE=file G_DEBUG="${G_DEBUG:-fatal-criticals}" "${san[@]}" \
    ${agent_env[@]+"${agent_env[@]}"} "$AGENT" --session --config "$tmp/system.conf" --managed-dir "$tmp/managed.d" \
    >"$tmp/agent.out" 2>>"$tmp/agent.log" </dev/null &
  agent_pid=$!
  for ((i = 0; i < 100; i++)); do
    ctl --session status && return 0
    kill -0 "$agent_pid" 2>/dev/null || break
    sleep 0.1
  done
  return 1
}

# stop_pid PID [TENTHS]: SIGTERM, then SIGKILL after TENTHS tenths of a second (100); returns
# PID's exit status.
stop_pid ()
{
  local pid=$1 tenths=${2:-100} i
  [[ -n $pid ]] || return 0
  kill -TERM "$pid" 2>/dev/null
  for ((i = 0; i < tenths; i++)); do
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.1
  done
  kill -KILL "$pid" 2>/dev/null
  wait "$pid" 2>/dev/null
}

# stop_agent: stops the agent; sets $agent_status, its exit status after SIGTERM (0 when it shut
# down cleanly; a crash or a sanitizer's report at exit is not 0).
stop_agent ()
{
  stop_pid "$agent_pid" 150
  agent_status=$?
  agent_pid=""
}

# ph_cleanup: stops the agent, the session bus and the cloud end (for the EXIT trap, before
# ph_remove_tmp).
ph_cleanup ()
{
  stop_agent
  [[ -n $bus_pid ]] && kill -TERM "$bus_pid" 2>/dev/null
  [[ -n $tmp && -e $tmp/cloud/cloud.env ]] && bash "$CLOUD_SCRIPT" stop "$tmp/cloud" >/dev/null 2>&1
  return 0
}

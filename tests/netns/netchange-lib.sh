# SPDX-License-Identifier: GPL-2.0-or-later
# netchange-lib.sh: the network of tests/netns/test-netchange.sh and
# tests/bench/bench-netchange.sh (sourced): an "agent" namespace and a "cloud" namespace joined
# by a veth pair. The cloud end (stunnel + Squid + ph-test-origin, tests/cloud/pinhole-cloud.sh)
# listens on the cloud namespace's loopback; nftables there forwards CLOUD_ADDR:443 to it, so
# the agent reaches it across the veth, and the test can take the path away and give it back.
#
# The caller sets AGENT, SRCDIR, CTL and tmp (a private directory), sources tap.sh, and calls
# nc_cleanup from its EXIT trap. Root only.
# shellcheck shell=bash

readonly NC_CLOUD_ADDR=10.232.0.1 NC_AGENT_ADDR=10.232.0.2 NC_AGENT_ADDR2=10.232.0.3
nc_a=ph-nc-a-$$
nc_b=ph-nc-b-$$
nc_made=0
nc_bus_pid=""
nc_agent_pid=""
nc_agent_addr=$NC_AGENT_ADDR
nc_proxy=""
nc_origin_port=""
nc_bus_address=""
nc_system_bus=""
CLOUD_SCRIPT=$SRCDIR/tests/cloud/pinhole-cloud.sh

# Runs a command in the agent's namespace.
ina ()
{
  ip netns exec "$nc_a" "$@"
}

ctl ()
{
  out=$(ina env DBUS_SESSION_BUS_ADDRESS="$nc_bus_address" DBUS_SYSTEM_BUS_ADDRESS="$nc_system_bus" \
    "$CTL" "$@" 2>"$tmp/ctl.err")
  rc=$?
  return "$rc"
}

status_field ()
{
  ctl --session status --json || return 1
  printf '%s' "$out" | python3 -c 'import json, sys; d = json.load(sys.stdin)
v = d
for k in sys.argv[1].split("."):
    v = v[k]
print(v)' "$1"
}

# nc_wait_field FIELD VALUE SECONDS
nc_wait_field ()
{
  local field=$1 want=$2 seconds=$3 i value=""
  for ((i = 0; i < seconds * 10; i++)); do
    value=$(status_field "$field") && [[ $value == "$want" ]] && return 0
    sleep 0.1
  done
  echo "$field stayed '$value' (state $(status_field state): $(status_field last_error.message))"
  return 1
}

# nc_wait_log PATTERN COUNT SECONDS: until the agent's log has COUNT lines with PATTERN.
nc_wait_log ()
{
  local pattern=$1 count=$2 seconds=$3 i
  for ((i = 0; i < seconds * 10; i++)); do
    (($(grep -c -- "$pattern" "$tmp/agent.log") >= count)) && return 0
    sleep 0.1
  done
  return 1
}

# nc_wait_made N SECONDS: until the agent has made N connections to the cloud proxy in all.
nc_wait_made ()
{
  local want=$1 seconds=$2 i made=0
  for ((i = 0; i < seconds * 10; i++)); do
    made=$(status_field cloud_connections.made) && ((made >= want)) && return 0
    sleep 0.1
  done
  echo "$made connections made, not $want"
  return 1
}

nc_count_log ()
{
  grep -c -- "$1" "$tmp/agent.log"
}

nc_stop_pid ()
{
  local pid=$1 i
  [[ -n $pid ]] || return 0
  kill -TERM "$pid" 2>/dev/null
  for ((i = 0; i < 100; i++)); do
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.1
  done
  kill -KILL "$pid" 2>/dev/null
  wait "$pid" 2>/dev/null
}

nc_cleanup ()
{
  nc_stop_pid "$nc_agent_pid"
  [[ -n $nc_bus_pid ]] && kill -TERM "$nc_bus_pid" 2>/dev/null
  [[ -n $tmp && -e $tmp/cloud/cloud.env ]] && bash "$CLOUD_SCRIPT" stop "$tmp/cloud" >/dev/null 2>&1
  if ((nc_made)); then
    ip netns del "$nc_a" 2>/dev/null
    ip netns del "$nc_b" 2>/dev/null
  fi
}

# The namespaces, the veth pair, and the cloud end behind CLOUD_ADDR:443.
nc_setup_network ()
{
  ip netns add "$nc_a" || bail "cannot make a network namespace"
  nc_made=1
  ip netns add "$nc_b" || bail "cannot make a network namespace"
  # IPv4 only: IPv6's own route changes after a link comes up (link-local, duplicate address
  # detection) would be network changes of their own, at times the test does not choose.
  local ns
  for ns in "$nc_a" "$nc_b"; do
    ip netns exec "$ns" sysctl -qw net.ipv6.conf.all.disable_ipv6=1 \
      net.ipv6.conf.default.disable_ipv6=1 || bail "cannot turn IPv6 off in the namespace"
    ip -n "$ns" link set lo up
  done
  ip -n "$nc_a" link add ph-a0 type veth peer name ph-b0 netns "$nc_b" || bail "veth failed"
  ip -n "$nc_a" addr add "$NC_AGENT_ADDR/24" dev ph-a0
  ip -n "$nc_b" addr add "$NC_CLOUD_ADDR/24" dev ph-b0
  ip -n "$nc_a" link set ph-a0 up
  ip -n "$nc_b" link set ph-b0 up

  if ! ip netns exec "$nc_b" env PH_CLOUD_ORIGIN=1 PH_CLOUD_OWNER_PID=$$ \
    bash "$CLOUD_SCRIPT" start "$tmp/cloud" >"$tmp/cloud.out" 2>&1; then
    sed 's/^/# /' "$tmp/cloud.out"
    bail "the cloud end did not start"
  fi
  # shellcheck disable=SC1091
  source "$tmp/cloud/cloud.env"
  nc_origin_port=${PH_ORIGIN_HTTP_PORT:-}
  [[ -n $nc_origin_port ]] || bail "the cloud end has no origin"
  # stunnel accepts on loopback only: a DNAT to 127.0.0.1 needs route_localnet.
  ip netns exec "$nc_b" sysctl -qw net.ipv4.conf.all.route_localnet=1 \
    net.ipv4.conf.ph-b0.route_localnet=1 || bail "route_localnet"
  ip netns exec "$nc_b" nft -f - <<NFT || bail "nft could not add the forward"
table ip ph_netchange {
  chain pre {
    type nat hook prerouting priority dstnat;
    ip daddr $NC_CLOUD_ADDR tcp dport 443 dnat to 127.0.0.1:$PH_CLOUD_TLS_PORT
  }
}
NFT
}

# nc_start_agent [SYSTEM_BUS_ADDRESS]: the agent (--session, on a private session bus) in the
# agent namespace, pinned to the cloud end at CLOUD_ADDR:443, warm=2.
nc_start_agent ()
{
  nc_system_bus=${1:-unix:path=$tmp/no-system-bus}
  mkdir -p "$tmp/home" "$tmp/config/pinhole" "$tmp/state" "$tmp/runtime" "$tmp/managed.d"
  chmod 0700 "$tmp/runtime"
  cat >"$tmp/bus.conf" <<BUS
<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig>
  <type>session</type>
  <listen>unix:dir=$tmp</listen>
  <auth>EXTERNAL</auth>
  <policy context="default">
    <allow user="*"/>
    <allow send_destination="*" eavesdrop="true"/>
    <allow eavesdrop="true"/>
    <allow own="*"/>
  </policy>
</busconfig>
BUS
  dbus-daemon --config-file="$tmp/bus.conf" --fork --print-address=3 --print-pid=4 \
    3>"$tmp/bus.address" 4>"$tmp/bus.pid" || bail "dbus-daemon did not start"
  nc_bus_address=$(head -n 1 "$tmp/bus.address")
  nc_bus_pid=$(head -n 1 "$tmp/bus.pid")

  local listen_port
  listen_port=$(ina python3 -c 'import socket
s = socket.socket()
s.bind(("127.0.0.1", 0))
print(s.getsockname()[1])')
  bash "$CLOUD_SCRIPT" agent-config "$tmp/cloud" "$tmp/system.conf" "$listen_port"
  sed -i -e "s/^host=.*/host=$NC_CLOUD_ADDR/" -e "s/^port=.*/port=443\nwarm=2/" \
    -e "s/^level=.*/level=${NC_LOG_LEVEL:-info}/" "$tmp/system.conf"
  nc_proxy=http://127.0.0.1:$listen_port

  local -a san=()
  local v
  for v in ASAN_OPTIONS UBSAN_OPTIONS LSAN_OPTIONS G_SLICE; do
    [[ -n ${!v:-} ]] && san+=("$v=${!v}")
  done
  ina env -i PATH="$PATH" HOME="$tmp/home" XDG_CONFIG_HOME="$tmp/config" \
    XDG_STATE_HOME="$tmp/state" XDG_RUNTIME_DIR="$tmp/runtime" \
    DBUS_SESSION_BUS_ADDRESS="$nc_bus_address" DBUS_SYSTEM_BUS_ADDRESS="$nc_system_bus" \
    PH_SECRET_STORE=file G_DEBUG="${G_DEBUG:-fatal-criticals}" "${san[@]}" \
    "$AGENT" --session --config "$tmp/system.conf" --managed-dir "$tmp/managed.d" \
    >"$tmp/agent.out" 2>>"$tmp/agent.log" </dev/null &
  nc_agent_pid=$!
  local i
  for ((i = 0; i < 100; i++)); do
    ctl --session status && return 0
    kill -0 "$nc_agent_pid" 2>/dev/null || break
    sleep 0.1
  done
  return 1
}

# nc_hello [SECONDS [CURL_OPTION...]]: one request through the agent, no retry: prints the body,
# fails when it does not arrive.
nc_hello ()
{
  local seconds=${1:-10}
  shift
  ina curl -sS --max-time "$seconds" "$@" -x "$nc_proxy" "http://127.0.0.1:$nc_origin_port/hello"
}

# Takes the agent's address away (its route to the cloud goes with it).
nc_break ()
{
  ip -n "$nc_a" addr del "$nc_agent_addr/24" dev ph-a0
}

# Gives the agent a new address on the same network (a new lease, another network): the route is
# back, the old connections' address is gone.
nc_restore ()
{
  if [[ $nc_agent_addr == "$NC_AGENT_ADDR" ]]; then
    nc_agent_addr=$NC_AGENT_ADDR2
  else
    nc_agent_addr=$NC_AGENT_ADDR
  fi
  ip -n "$nc_a" addr add "$nc_agent_addr/24" dev ph-a0
}

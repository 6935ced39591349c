#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-or-later
# test-portal.sh: captive portals, in network namespaces of the test's own, TAP output. The agent
# (--session, on a private bus), the cloud end (stunnel + Squid + ph-test-origin, on loopback)
# and pinholectl run in a "client" namespace whose nftables rule keeps the cloud proxy's port
# unreachable; a simulated portal (portal-server.py) runs in a "network" namespace across a veth
# pair, redirects everything to its /login page, and on POST /login removes that rule, as signing
# in to a real portal lets traffic out.
#
# Environment (set by tests/netns/meson.build): PH_AGENT, PINHOLECTL, PH_SRCDIR, PH_TEST_ORIGIN.
# Root only (namespaces, nftables). Without root, or a tool, it is skipped; under CI=true that is
# a failure.

set -uo pipefail

CTL=${PINHOLECTL:?PINHOLECTL must name the pinholectl binary}
AGENT=${PH_AGENT:?PH_AGENT must name the pinhole-agent binary}
SRCDIR=${PH_SRCDIR:-$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)}
CLOUD_SCRIPT=$SRCDIR/tests/cloud/pinhole-cloud.sh
PORTAL_SCRIPT=$SRCDIR/tests/netns/portal-server.py

# The two namespaces' addresses (a private range, only inside the test's namespaces).
readonly NET_ADDR=10.231.0.1 CLIENT_ADDR=10.231.0.2 PORTAL_PORT=8080
readonly CHECK_URL=http://$NET_ADDR:$PORTAL_PORT/generate_204
readonly LOGIN_URL=http://$NET_ADDR:$PORTAL_PORT/login

tmp=""
bus_pid=""
agent_pid=""
portal_pid=""
nsc=ph-portal-c-$$
nsn=ph-portal-n-$$
ns_made=0
# shellcheck source=tests/tap.sh
source "$(dirname "${BASH_SOURCE[0]}")/../tap.sh"

dump_logs ()
{
  [[ -n $tmp ]] || return 0
  local f
  for f in agent.log portal.log; do
    [[ -s $tmp/$f ]] || continue
    echo "# ----- $f (last 40 lines) -----"
    tail -n 40 "$tmp/$f" | sed 's/^/#   /'
  done
}

# Runs a command in the client namespace.
inc ()
{
  ip netns exec "$nsc" "$@"
}

ctl ()
{
  out=$(inc env DBUS_SESSION_BUS_ADDRESS="$bus_address" DBUS_SYSTEM_BUS_ADDRESS="$no_system_bus" \
    "$CTL" "$@" 2>"$tmp/ctl.err")
  rc=$?
  err=$(<"$tmp/ctl.err")
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

# wait_state STATE SECONDS
wait_state ()
{
  local want=$1 seconds=$2 i state=""
  for ((i = 0; i < seconds * 5; i++)); do
    state=$(status_field state) && [[ $state == "$want" ]] && return 0
    sleep 0.2
  done
  echo "state stayed '$state' (last error: $(status_field last_error.message))"
  return 1
}

# access_lines FIELD...: the agent's access lines with every FIELD.
access_lines ()
{
  local lines
  lines=$(grep '^.*access ' "$tmp/agent.log")
  for f in "$@"; do
    lines=$(printf '%s\n' "$lines" | grep -F -- "$f")
  done
  printf '%s\n' "$lines" | grep -c .
}

block_cloud ()
{
  inc nft -f - <<NFT
table inet ph_portal {
  chain out {
    type filter hook output priority 0;
    ip daddr 127.0.0.1 tcp dport $PH_CLOUD_TLS_PORT reject with tcp reset
  }
}
NFT
}

start_agent ()
{
  local -a san=() v
  for v in ASAN_OPTIONS UBSAN_OPTIONS LSAN_OPTIONS G_SLICE; do
    [[ -n ${!v:-} ]] && san+=("$v=${!v}")
  done
  inc env -i PATH="$PATH" HOME="$tmp/home" XDG_CONFIG_HOME="$tmp/config" \
    XDG_STATE_HOME="$tmp/state" XDG_RUNTIME_DIR="$tmp/runtime" \
    DBUS_SESSION_BUS_ADDRESS="$bus_address" DBUS_SYSTEM_BUS_ADDRESS="$no_system_bus" \
    PH_SECRET_STORE=file G_DEBUG="${G_DEBUG:-fatal-criticals}" "${san[@]}" \
    "$AGENT" --session --config "$tmp/system.conf" --managed-dir "$tmp/managed.d" \
    >"$tmp/agent.out" 2>>"$tmp/agent.log" </dev/null &
  agent_pid=$!
  local i
  for ((i = 0; i < 100; i++)); do
    ctl --session status && return 0
    kill -0 "$agent_pid" 2>/dev/null || break
    sleep 0.1
  done
  return 1
}

stop_pid ()
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

cleanup ()
{
  stop_pid "$agent_pid"
  stop_pid "$portal_pid"
  [[ -n $bus_pid ]] && kill -TERM "$bus_pid" 2>/dev/null
  [[ -n $tmp && -e $tmp/cloud/cloud.env ]] && bash "$CLOUD_SCRIPT" stop "$tmp/cloud" >/dev/null 2>&1
  if ((ns_made)); then
    ip netns del "$nsc" 2>/dev/null
    ip netns del "$nsn" 2>/dev/null
  fi
  if [[ -n $tmp ]]; then
    if ((tests_failed == 0)) && [[ -z ${PH_KEEP_TMP:-} ]]; then
      rm -rf "$tmp"
    else
      echo "# files kept in $tmp"
    fi
  fi
}

# ---- prerequisites ----

[[ $(id -u) == 0 ]] || skip_all "needs root (network namespaces and nftables)"
for tool in ip nft dbus-daemon python3 curl openssl; do
  command -v "$tool" >/dev/null || skip_all "$tool not found"
done
[[ -x ${PH_STUNNEL:-/usr/bin/stunnel4} ]] || skip_all "stunnel4 not found"
[[ -x ${PH_SQUID:-/usr/sbin/squid} ]] || skip_all "squid not found"
[[ -x $CTL ]] || bail "pinholectl not found at $CTL"
[[ -x $AGENT ]] || bail "pinhole-agent not found at $AGENT"

trap cleanup EXIT
trap 'exit 130' INT TERM

tmp=$(mktemp -d "${TMPDIR:-/tmp}/pinhole-portal.XXXXXX") || bail "mktemp failed"
chmod 0711 "$tmp"
mkdir -p "$tmp/home" "$tmp/config/pinhole" "$tmp/state" "$tmp/runtime" "$tmp/managed.d"
chmod 0700 "$tmp/runtime"
no_system_bus="unix:path=$tmp/no-system-bus"

# ---- the network: client <-veth-> network (the portal) ----

ip netns add "$nsc" || bail "cannot make a network namespace"
ns_made=1
ip netns add "$nsn" || bail "cannot make a network namespace"
ip -n "$nsc" link set lo up
ip -n "$nsn" link set lo up
ip -n "$nsc" link add ph-c0 type veth peer name ph-n0 netns "$nsn" || bail "veth failed"
ip -n "$nsc" addr add "$CLIENT_ADDR/24" dev ph-c0
ip -n "$nsn" addr add "$NET_ADDR/24" dev ph-n0
ip -n "$nsc" link set ph-c0 up
ip -n "$nsn" link set ph-n0 up

# ---- the cloud end, in the client namespace, then out of reach ----

if ! inc env PH_CLOUD_ORIGIN=1 PH_CLOUD_OWNER_PID=$$ bash "$CLOUD_SCRIPT" start "$tmp/cloud" \
  >"$tmp/cloud.out" 2>&1; then
  sed 's/^/# /' "$tmp/cloud.out"
  bail "the cloud end did not start"
fi
# shellcheck disable=SC1091
source "$tmp/cloud/cloud.env"
origin_port=${PH_ORIGIN_HTTP_PORT:-}
[[ -n $origin_port ]] || bail "the cloud end has no origin"
block_cloud || bail "nft could not add the rule"
inc curl -sS -o /dev/null --max-time 3 --noproxy '*' -k "https://127.0.0.1:$PH_CLOUD_TLS_PORT/" \
  2>/dev/null
[[ $? == 7 ]]
verdict "the cloud proxy's port is unreachable from the client namespace before signing in"

# ---- the portal ----

ip netns exec "$nsn" python3 "$PORTAL_SCRIPT" "$NET_ADDR" "$PORTAL_PORT" \
  "ip netns exec $nsc nft delete table inet ph_portal" >"$tmp/portal.log" 2>&1 &
portal_pid=$!
for ((i = 0; i < 50; i++)); do
  code=$(inc curl -s -o /dev/null -w '%{http_code}' --noproxy '*' "$CHECK_URL") && [[ $code == 302 ]] && break
  sleep 0.1
done
[[ ${code:-} == 302 ]]
verdict "the portal redirects the check URL before signing in" "got ${code:-nothing}"

# ---- the agent, behind the portal ----

cat >"$tmp/bus.conf" <<EOF
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
EOF
inc dbus-daemon --config-file="$tmp/bus.conf" --fork --print-address=3 --print-pid=4 \
  3>"$tmp/bus.address" 4>"$tmp/bus.pid" || bail "dbus-daemon did not start"
bus_address=$(head -n 1 "$tmp/bus.address")
bus_pid=$(head -n 1 "$tmp/bus.pid")

listen_port=$(inc python3 -c 'import socket
s = socket.socket()
s.bind(("127.0.0.1", 0))
print(s.getsockname()[1])')
bash "$CLOUD_SCRIPT" agent-config "$tmp/cloud" "$tmp/system.conf" "$listen_port"
# In the user's file, where pinholectl set writes: an empty value there restores the default.
cat >"$tmp/config/pinhole/pinhole.conf" <<EOF
[route]
portal-check=$CHECK_URL
portal-minutes=1
EOF
proxy=http://127.0.0.1:$listen_port

start_agent || bail "pinhole-agent --session did not come up"
pass "pinhole-agent runs in the client namespace"

wait_state captive-portal 20
verdict "State is captive-portal while the cloud proxy cannot be reached and the portal answers"
portal_url=$(status_field portal_url)
[[ $portal_url == "$LOGIN_URL" ]]
verdict "PortalUrl is the portal's login page" "PortalUrl: '$portal_url'"
ctl --session status
[[ $out == *"$LOGIN_URL"* && $out == *captive-portal* ]]
verdict "pinholectl status shows the state and where to sign in" "$out"

page=$(inc curl -sS --max-time 10 -x "$proxy" "$LOGIN_URL" 2>&1)
[[ $page == *"Sign in"* ]]
verdict "the login page, asked through the agent, arrives" "$page"
[[ $(access_lines "$NET_ADDR:$PORTAL_PORT" "route=direct" "status=200") -ge 1 ]]
verdict "it went directly (access line route=direct)" "$(grep 'access ' "$tmp/agent.log")"
squid_before=$(grep -c /hello "$PH_CLOUD_SQUID_ACCESS_LOG")

# ---- signing in ----

answer=$(inc curl -sS --max-time 10 --noproxy '*' -X POST -d user=alice "$LOGIN_URL" 2>&1)
[[ $answer == welcome ]]
verdict "signing in at the portal" "$answer"
signed_in=$(date +%s)
wait_state on 30
verdict "State goes back to on once the cloud proxy can be reached" \
  "$(tail -n 20 "$tmp/agent.log")"
echo "# on again $(($(date +%s) - signed_in)) s after signing in"
portal_url=$(status_field portal_url)
[[ -z $portal_url ]]
verdict "PortalUrl is empty again" "PortalUrl: '$portal_url'"

hello=$(inc curl -sS --max-time 10 -x "$proxy" "http://127.0.0.1:$origin_port/hello" 2>&1)
[[ $hello == hello ]]
verdict "a request through the agent after signing in" "$hello"
[[ $(access_lines "/hello" "route=proxy" "status=200") -ge 1 ]]
verdict "it went through the cloud proxy (route=proxy)" "$(grep 'access ' "$tmp/agent.log")"
for ((i = 0; i < 50; i++)); do
  (($(grep -c /hello "$PH_CLOUD_SQUID_ACCESS_LOG") > squid_before)) && break
  sleep 0.1
done
(($(grep -c /hello "$PH_CLOUD_SQUID_ACCESS_LOG") > squid_before))
verdict "Squid's access log has it"

# ---- portal=block: the portal is seen, nothing goes around the tunnel ----

inc curl -sS -o /dev/null --max-time 5 --noproxy '*' -X POST "http://$NET_ADDR:$PORTAL_PORT/logout"
block_cloud
ctl --session set route.portal block
[[ $rc == 0 ]]
verdict "route.portal set to block" "$out $err"
direct_before=$(access_lines "route=direct")
code=$(inc curl -s -o /dev/null -w '%{http_code}' --max-time 10 -x "$proxy" "$LOGIN_URL")
[[ $code == 502 ]]
verdict "portal=block: the login page through the agent is refused (502)" "status $code"
wait_state captive-portal 20
verdict "portal=block: State is captive-portal"
error_name=$(status_field last_error.name)
[[ $error_name == org.pinhole.Error.Blocked ]]
verdict "portal=block: LastError is Blocked" "$error_name: $(status_field last_error.message)"
code=$(inc curl -s -o /dev/null -w '%{http_code}' --max-time 10 -x "$proxy" "$LOGIN_URL")
[[ $code == 502 && $(access_lines "route=direct") == "$direct_before" ]]
verdict "portal=block: nothing goes directly" "status $code"

# portal=block wins over when-unreachable=direct: behind a portal nothing goes around.
ctl --session set route.when-unreachable direct
verdict "when-unreachable set to direct" "$out $err"
code=$(inc curl -s -o /dev/null -w '%{http_code}' --max-time 10 -x "$proxy" "$LOGIN_URL")
[[ $code == 502 && $(access_lines "route=direct") == "$direct_before" ]]
verdict "portal=block and when-unreachable=direct: still nothing goes directly" "status $code"

# ---- no portal check, when-unreachable=direct ----

ctl --session set route.portal-check ""
verdict "portal-check unset" "$out $err"
page=$(inc curl -sS --max-time 10 -x "$proxy" "$LOGIN_URL" 2>&1)
[[ $page == *"Sign in"* ]]
verdict "when-unreachable=direct: a request through the agent arrives" "$page"
wait_state error 20
verdict "when-unreachable=direct: State is error"
error_name=$(status_field last_error.name)
[[ $error_name == org.pinhole.Error.UnreachableDirect ]]
verdict "when-unreachable=direct: LastError is UnreachableDirect" \
  "$error_name: $(status_field last_error.message)"
[[ -z $(status_field portal_url) ]]
verdict "when-unreachable=direct: PortalUrl is empty"
[[ $(access_lines "$NET_ADDR:$PORTAL_PORT" "route=direct" "status=200") -ge 2 ]]
verdict "when-unreachable=direct: it went directly" "$(grep 'access ' "$tmp/agent.log")"

kill -0 "$agent_pid" 2>/dev/null
verdict "the agent is still running"
tap_done

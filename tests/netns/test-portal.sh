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
PORTAL_SCRIPT=$SRCDIR/tests/netns/portal-server.py

# The two namespaces' addresses (a private range, only inside the test's namespaces).
readonly NET_ADDR=10.231.0.1 CLIENT_ADDR=10.231.0.2 PORTAL_PORT=8080
readonly CHECK_URL=http://$NET_ADDR:$PORTAL_PORT/generate_204
readonly LOGIN_URL=http://$NET_ADDR:$PORTAL_PORT/login

portal_pid=""
nsc=ph-portal-c-$$
nsn=ph-portal-n-$$
ns_made=0
# shellcheck source=tests/tap.sh
source "$(dirname "${BASH_SOURCE[0]}")/../tap.sh"
# shellcheck source=tests/ph-test-lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/../ph-test-lib.sh"
ph_in=(ip netns exec "$nsc")

dump_logs ()
{
  dump_files agent.log portal.log
}

# Runs a command in the client namespace.
inc ()
{
  ip netns exec "$nsc" "$@"
}

# last_error: the agent's LastError, name and message.
last_error ()
{
  echo "$(status_field last_error.name): $(status_field last_error.message)"
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

cleanup ()
{
  ph_cleanup
  stop_pid "$portal_pid"
  if ((ns_made)); then
    ip netns del "$nsc" 2>/dev/null
    ip netns del "$nsn" 2>/dev/null
  fi
  ph_remove_tmp
}

# ---- prerequisites ----

[[ $(id -u) == 0 ]] || skip_all "needs root (network namespaces and nftables)"
ph_require ip nft dbus-daemon python3 curl openssl

trap cleanup EXIT
trap 'exit 130' INT TERM

ph_make_tmp portal

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

start_cloud inc
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

start_session_bus inc

listen_port=$(free_port inc)
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
verdict_then "it went directly (access line route=direct)" grep 'access ' "$tmp/agent.log"
squid_before=$(grep -c /hello "$PH_CLOUD_SQUID_ACCESS_LOG")

# ---- signing in ----

answer=$(inc curl -sS --max-time 10 --noproxy '*' -X POST -d user=alice "$LOGIN_URL" 2>&1)
[[ $answer == welcome ]]
verdict "signing in at the portal" "$answer"
signed_in=$(date +%s)
wait_state on 30
verdict_then "State goes back to on once the cloud proxy can be reached" \
  tail -n 20 "$tmp/agent.log"
echo "# on again $(($(date +%s) - signed_in)) s after signing in"
portal_url=$(status_field portal_url)
[[ -z $portal_url ]]
verdict "PortalUrl is empty again" "PortalUrl: '$portal_url'"

hello=$(inc curl -sS --max-time 10 -x "$proxy" "http://127.0.0.1:$origin_port/hello" 2>&1)
[[ $hello == hello ]]
verdict "a request through the agent after signing in" "$hello"
[[ $(access_lines "/hello" "route=proxy" "status=200") -ge 1 ]]
verdict_then "it went through the cloud proxy (route=proxy)" grep 'access ' "$tmp/agent.log"
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
verdict_then "portal=block: LastError is Blocked" last_error
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
verdict_then "when-unreachable=direct: LastError is UnreachableDirect" last_error
[[ -z $(status_field portal_url) ]]
verdict "when-unreachable=direct: PortalUrl is empty"
[[ $(access_lines "$NET_ADDR:$PORTAL_PORT" "route=direct" "status=200") -ge 2 ]]
verdict_then "when-unreachable=direct: it went directly" grep 'access ' "$tmp/agent.log"

kill -0 "$agent_pid" 2>/dev/null
verdict "the agent is still running"
tap_done

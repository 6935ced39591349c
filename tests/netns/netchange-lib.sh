# SPDX-License-Identifier: GPL-2.0-or-later
# netchange-lib.sh: the network of tests/netns/test-netchange.sh and
# tests/bench/bench-netchange.sh (sourced): an "agent" namespace and a "cloud" namespace joined
# by a veth pair. The cloud end (stunnel + Squid + ph-test-origin, tests/cloud/pinhole-cloud.sh)
# listens on the cloud namespace's loopback; nftables there forwards CLOUD_ADDR:443 to it, so
# the agent reaches it across the veth, and the test can take the path away and give it back.
#
# The caller sets AGENT, SRCDIR and CTL, sources tap.sh, then this (which sources
# tests/ph-test-lib.sh: ctl, status_field, wait_field, stop_pid run in the agent's namespace),
# makes its directory with ph_make_tmp, and calls nc_cleanup from its EXIT trap. Root only.
# shellcheck shell=bash

# shellcheck source=tests/ph-test-lib.sh
source "$SRCDIR/tests/ph-test-lib.sh"

readonly NC_CLOUD_ADDR=10.232.0.1 NC_AGENT_ADDR=10.232.0.2 NC_AGENT_ADDR2=10.232.0.3
nc_a=ph-nc-a-$$
nc_b=ph-nc-b-$$
nc_made=0
nc_agent_addr=$NC_AGENT_ADDR
nc_proxy=""
nc_origin_port=""
ph_in=(ip netns exec "$nc_a")

# Runs a command in the agent's namespace.
ina ()
{
  ip netns exec "$nc_a" "$@"
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

nc_cleanup ()
{
  ph_cleanup
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

  start_cloud ip netns exec "$nc_b"
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
  system_bus_address=${1:-unix:path=$tmp/no-system-bus}
  start_session_bus

  local listen_port
  listen_port=$(free_port ina)
  bash "$CLOUD_SCRIPT" agent-config "$tmp/cloud" "$tmp/system.conf" "$listen_port"
  sed -i -e "s/^host=.*/host=$NC_CLOUD_ADDR/" -e "s/^port=.*/port=443\nwarm=2/" \
    -e "s/^level=.*/level=${NC_LOG_LEVEL:-info}/" "$tmp/system.conf"
  nc_proxy=http://127.0.0.1:$listen_port

  start_agent
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

#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-or-later
# test-capture.sh: [transparent] capture= and pinholectl capture, in a network namespace of the
# test's own, TAP output. The real agent (--session, as root, on a private bus) puts its nftables
# rules in the namespace's table "inet pinhole" and must take them out again: after capture off,
# when the tunnel is switched off, on SIGTERM, and at the next start after kill -9. Under
# capture=local another user's curl reaches the transparent listener and root's (the agent's user
# here) does not. A table of someone else's ("inet other", made by the test) stays byte for byte
# what it was throughout. An nft that fails (a stand-in first on the agent's PATH) leaves the
# agent serving, with nft's message in the Capture property and pinholectl capture status
# exiting 1. No cloud end: the upstream is a closed port, which leaves the listeners open (State
# "error").
#
# Environment (set by tests/netns/meson.build): PH_AGENT, PINHOLECTL, PH_SRCDIR.
# Root only (a namespace, nftables). Without root, or a tool, it is skipped; under CI=true that is
# a failure.

set -uo pipefail

CTL=${PINHOLECTL:?PINHOLECTL must name the pinholectl binary}
AGENT=${PH_AGENT:?PH_AGENT must name the pinhole-agent binary}
SRCDIR=${PH_SRCDIR:-$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)}

readonly LAN_IF=ph-lan0 LAN_PEER=10.232.0.99
ns=ph-capture-$$
ns_made=0
# shellcheck source=tests/tap.sh
source "$(dirname "${BASH_SOURCE[0]}")/../tap.sh"
# shellcheck source=tests/ph-test-lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/../ph-test-lib.sh"
ph_in=(ip netns exec "$ns")

dump_logs ()
{
  dump_files agent.log
  echo "# ----- nft list ruleset -----"
  inc nft list ruleset 2>&1 | sed 's/^/#   /'
}

inc ()
{
  ip netns exec "$ns" "$@"
}

cleanup ()
{
  ph_cleanup
  ((ns_made)) && ip netns del "$ns" 2>/dev/null
  ph_remove_tmp
}

# The namespace's tables, one "table FAMILY NAME" a line.
tables ()
{
  inc nft list tables
}

# Our table, as nft lists it ("" when it is not there).
pinhole_table ()
{
  inc nft list table inet pinhole 2>/dev/null
}

# The other table, with its handles, exactly as it was made.
check_other ()
{
  local now
  now=$(inc nft -a list table inet other 2>&1)
  [[ $now == "$other_table" ]]
  verdict "$1: table inet other is untouched" "was:" "$other_table" "now:" "$now"
}

# ---- prerequisites ----

[[ $(id -u) == 0 ]] || skip_all "needs root (a network namespace and nftables)"
for tool in ip nft dbus-daemon python3 curl setpriv; do
  command -v "$tool" >/dev/null || skip_all "$tool not found"
done
[[ -x $CTL ]] || bail "pinholectl not found at $CTL"
[[ -x $AGENT ]] || bail "pinhole-agent not found at $AGENT"

trap cleanup EXIT
trap 'exit 130' INT TERM

ph_make_tmp capture

ip netns add "$ns" || bail "cannot make a network namespace"
ns_made=1
inc ip link set lo up
# The "LAN" interface: one end of a veth pair inside the namespace.
inc ip link add "$LAN_IF" type veth peer name ph-lan1 || bail "cannot make a veth pair"
inc ip addr add 10.232.0.1/24 dev "$LAN_IF"
inc ip link set "$LAN_IF" up
inc ip link set ph-lan1 up

# Someone else's table, which Pinhole must never touch.
inc nft -f - <<'NFT' || bail "nft could not make table inet other"
table inet other {
  set keep {
    type ipv4_addr
    elements = { 192.0.2.7 }
  }
  chain out {
    type filter hook output priority 10; policy accept;
    ip daddr @keep tcp dport 9 accept
  }
}
NFT
other_table=$(inc nft -a list table inet other)

start_session_bus inc
listen_port=$(free_port inc)
transparent_port=$(free_port inc)
closed_port=$(free_port inc)
cat >"$tmp/system.conf" <<EOF
[listener]
address=127.0.0.1:$listen_port
allow=10.232.0.0/24

[transparent]
address=0.0.0.0:$transparent_port
capture=local

[upstream]
host=127.0.0.1
port=$closed_port
EOF

# ---- capture=local at start ----

start_agent || bail "pinhole-agent --session did not come up"
pass "the agent runs with [transparent] capture=local"

rules=$(pinhole_table)
[[ $rules == *"type nat hook output priority"* && $rules == *"meta skuid 0 return"* \
  && $rules == *"meta mark 0x00007068 return"* && $rules == *"ip daddr 127.0.0.0/8 return"* \
  && $rules == *"meta nfproto ipv4 tcp dport { 80, 443 } redirect to :$transparent_port"* ]]
verdict "capture=local: table inet pinhole has the output rules (IPv4 only: the listener's)" \
  "$rules"
[[ $(tables | grep -c .) == 2 ]]
verdict_then "only inet pinhole and inet other are there" tables
check_other "at start"
grep -qF "capture rules applied: local, ports 80 443 -> :$transparent_port" "$tmp/agent.log"
verdict_then "the log says what was applied" grep capture "$tmp/agent.log"
! grep -qF "left by a previous run" "$tmp/agent.log"
verdict "nothing was left by a previous run"

# Another user's connection is redirected to the transparent listener; the agent's own user's
# (root here) is not: it goes out on the LAN interface, where nothing answers.
inc setpriv --reuid=65534 --regid=65534 --clear-groups \
  curl -s -o /dev/null --max-time 5 --noproxy '*' "http://$LAN_PEER/capture-probe"
for ((i = 0; i < 50; i++)); do
  grep -q "proto=transparent.*original=$LAN_PEER:80" "$tmp/agent.log" && break
  sleep 0.1
done
grep -q "proto=transparent name=$LAN_PEER learned=host original=$LAN_PEER:80" "$tmp/agent.log"
verdict_then "capture=local: another user's connection to port 80 reaches the transparent listener" \
  grep 'access ' "$tmp/agent.log"
inc curl -s -o /dev/null --max-time 2 --noproxy '*' "http://$LAN_PEER/agent-user"
[[ $(grep -c "original=$LAN_PEER:80" "$tmp/agent.log") == 1 ]]
verdict "capture=local: the agent's own user's connection is not captured"

ctl --session capture status
[[ $rc == 0 && $out == *"local, ports 80 443 → :$transparent_port"* ]]
verdict "capture status: local, ports 80 443" "rc $rc: $out $err"
[[ $(status_field capture.active) == true && $(status_field capture.mode) == local \
  && $(status_field capture.ports) == "[80, 443]" \
  && $(status_field capture.listener_port) == "$transparent_port" ]]
verdict_then "status --json: the capture object" status_field capture

# ---- the tunnel off and on ----

ctl --session disable
[[ -z $(pinhole_table) ]]
verdict "disable: the rules are gone"
ctl --session capture status
[[ $rc == 0 && $out == *"not in force"* ]]
verdict "capture status while off says it is not in force" "rc $rc: $out"
ctl --session enable
[[ $(pinhole_table) == *"redirect to :$transparent_port"* ]]
verdict "enable: the rules are back"
check_other "after disable and enable"

# ---- pinholectl capture off, on --gateway ----

ctl --session capture off
[[ $rc == 0 && -z $(pinhole_table) ]]
verdict "capture off: the table is gone" "rc $rc: $err"
check_other "after capture off"
[[ $(status_field capture.mode) == off && $(status_field capture.active) == false ]]
verdict_then "capture off: the property says off" status_field capture
grep -qF "capture rules removed" "$tmp/agent.log"
verdict "the log says the rules were removed"
grep -qx 'capture=off' "$tmp/config/pinhole/pinhole.conf"
verdict_then "capture off is saved in the agent's file" cat "$tmp/config/pinhole/pinhole.conf"

ctl --session capture on --gateway "$LAN_IF"
rules=$(pinhole_table)
[[ $rc == 0 && $rules == *"type nat hook prerouting priority dstnat"* \
  && $rules == *"iifname \"$LAN_IF\" meta nfproto ipv4 tcp dport { 80, 443 } fib daddr type != local redirect to :$transparent_port"* \
  && $rules != *"chain output"* ]]
verdict "capture on --gateway: a prerouting rule for $LAN_IF" "rc $rc: $err" "$rules"
check_other "after capture on --gateway"
ctl --session status
[[ $out == *"Capture:"*"gateway $LAN_IF, ports 80 443 → :$transparent_port"* ]]
verdict "status shows the gateway capture" "$out"
grep -qF "capture rules applied: gateway $LAN_IF, ports 80 443" "$tmp/agent.log"
verdict "the log says the gateway rules were applied"

ctl --session capture on --local --gateway "$LAN_IF"
[[ $rc == 2 ]]
verdict "capture on with both --local and --gateway is a usage error" "rc $rc: $err"
ctl --session capture on
[[ $rc == 2 ]]
verdict "capture on with neither is a usage error" "rc $rc: $err"
ctl --session capture on --gateway 'eth0"; flush ruleset'
[[ $rc == 6 && $(pinhole_table) == *"iifname \"$LAN_IF\""* ]]
verdict "an interface name that is not one is refused; the rules stay" "rc $rc: $err"
check_other "after a refused interface name"

# ---- SIGTERM ----

stop_agent
[[ $agent_status == 0 ]]
verdict "SIGTERM: the agent stops cleanly" "status $agent_status"
[[ -z $(pinhole_table) ]]
verdict "SIGTERM: the table is gone"
check_other "after SIGTERM"

# ---- kill -9, then the next start ----

start_agent || bail "pinhole-agent did not come up again"
ctl --session capture on --local
[[ $rc == 0 && $(pinhole_table) == *"chain output"* ]]
verdict "capture on --local" "rc $rc: $err"
kill -KILL "$agent_pid"
wait "$agent_pid" 2>/dev/null
agent_pid=""
[[ $(pinhole_table) == *"chain output"* ]]
verdict "kill -9: the table is still there (nothing could remove it)"
: >"$tmp/agent.log"
start_agent || bail "pinhole-agent did not come up after kill -9"
grep -qF "removed capture rules left by a previous run" "$tmp/agent.log"
verdict_then "the next start says it removed the rules left behind" cat "$tmp/agent.log"
[[ $(tables | grep -cx 'table inet pinhole') == 1 \
  && $(pinhole_table) == *"redirect to :$transparent_port"* ]]
verdict_then "the table is back, exactly once" tables
[[ $(pinhole_table | grep -c 'chain output {') == 1 && $(pinhole_table | grep -c 'chain output-udp {') == 1 ]]
verdict "one output chain and one output-udp chain in it"
check_other "after kill -9 and a restart"
stop_agent
[[ -z $(pinhole_table) ]]
verdict "stopped again: the table is gone"

# ---- nft fails ----

mkdir -p "$tmp/bad-nft"
printf '%s\n' '#!/bin/sh' 'cat >/dev/null' 'echo "Error: simulated nft failure" >&2' 'exit 1' \
  >"$tmp/bad-nft/nft"
chmod +x "$tmp/bad-nft/nft"
: >"$tmp/agent.log"
PATH="$tmp/bad-nft:$PATH" start_agent || bail "pinhole-agent did not come up with a failing nft"
pass "the agent starts when nft fails"
ctl --session capture status
[[ $rc == 1 && $out == *"error: nft: Error: simulated nft failure"* ]]
verdict "capture status shows nft's error and exits 1" "rc $rc: $out $err"
[[ $(status_field capture.error) == "nft: Error: simulated nft failure" \
  && $(status_field capture.active) == false ]]
verdict_then "the Capture property has the error" status_field capture
ctl --session status
[[ $rc == 0 && $out == *"Capture:"*"error: nft: Error: simulated nft failure"* ]]
verdict "status shows the error in its Capture row" "rc $rc: $out"
ctl --session capture on --gateway "$LAN_IF"
[[ $rc == 1 && $err == *"simulated nft failure"* ]]
verdict "capture on fails with nft's message" "rc $rc: $err"
grep -qF "could not apply the capture rules" "$tmp/agent.log"
verdict "the log says the rules could not be applied"
ctl --session status
[[ $rc == 0 ]] && kill -0 "$agent_pid" 2>/dev/null
verdict "the agent keeps serving" "rc $rc: $err"
[[ -z $(pinhole_table) ]]
verdict "no table was made"
ctl --session capture off
[[ $rc == 0 && $(status_field capture.error) == "" ]]
verdict "capture off clears the error (nothing to remove)" "rc $rc: $err"
stop_agent
[[ $agent_status == 0 ]]
verdict "the agent stops cleanly" "status $agent_status"
check_other "at the end"
tap_done

#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-or-later
# test-netchange.sh change|resume: the agent after a network change or a wake-up, in network
# namespaces of the test's own (tests/netns/netchange-lib.sh), TAP output.
#
#   change: the agent's warm pool is full; its address goes away and a new one comes (the route
#           with it): the agent logs the change, and the first request once the route is back
#           arrives without a retry. An open CONNECT tunnel lives through an unrelated change
#           (another interface with an address and a route).
#   resume: a private system bus where a fake logind (fake-logind.py, the real name on a bus of
#           our own) sends PrepareForSleep(true) then (false): the agent logs that it woke up and
#           drops its pool, and the next request arrives.
#
# Environment (set by tests/netns/meson.build): PH_AGENT, PINHOLECTL, PH_SRCDIR; PH_PYTHON_GI (a
# python3 with PyGObject, /usr/bin/python3). Root only. Without root, or a tool, it is skipped;
# under CI=true that is a failure.

set -uo pipefail

MODE=${1:?usage: test-netchange.sh change|resume}
CTL=${PINHOLECTL:?PINHOLECTL must name the pinholectl binary}
AGENT=${PH_AGENT:?PH_AGENT must name the pinhole-agent binary}
SRCDIR=${PH_SRCDIR:-$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)}
PYTHON_GI=${PH_PYTHON_GI:-/usr/bin/python3}

system_bus_pid=""
logind_pid=""
holder_pid=""
# shellcheck source=tests/tap.sh
source "$(dirname "${BASH_SOURCE[0]}")/../tap.sh"
# shellcheck source=tests/netns/netchange-lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/netchange-lib.sh"

dump_logs ()
{
  dump_files agent.log holder.out logind.out
}

# wait_grep PATTERN FILE TENTHS: until FILE has a line with PATTERN (a grep pattern).
wait_grep ()
{
  local i
  for ((i = 0; i < $3; i++)); do
    grep -q -- "$1" "$2" && return 0
    sleep 0.1
  done
  return 1
}

cleanup ()
{
  stop_pid "$holder_pid"
  nc_cleanup
  stop_pid "$logind_pid"
  [[ -n $system_bus_pid ]] && kill -TERM "$system_bus_pid" 2>/dev/null
  ph_remove_tmp
}

# ---- prerequisites ----

[[ $MODE == change || $MODE == resume ]] || bail "unknown mode $MODE"
[[ $(id -u) == 0 ]] || skip_all "needs root (network namespaces and nftables)"
ph_require ip nft dbus-daemon python3 curl openssl
if [[ $MODE == resume ]]; then
  "$PYTHON_GI" -c 'import gi; gi.require_version("Gio", "2.0"); from gi.repository import Gio' \
    2>/dev/null || skip_all "$PYTHON_GI has no PyGObject (python3-gi)"
fi

trap cleanup EXIT
trap 'exit 130' INT TERM

ph_make_tmp netchange

nc_setup_network
code=$(ip netns exec "$nc_a" curl -sS -o /dev/null -w '%{http_code}' --max-time 3 -k \
  "https://$NC_CLOUD_ADDR/" 2>&1)
[[ $code =~ ^[1-5][0-9][0-9]$ && $code != 000 ]]
verdict "the cloud proxy answers at $NC_CLOUD_ADDR:443 across the veth" "got $code"

# ---- the agent, its pool full ----

start_system_bus ()
{
  bus_config system "unix:path=$tmp/system_bus_socket" >"$tmp/system-bus.conf"
  dbus-daemon --config-file="$tmp/system-bus.conf" --fork --print-pid=4 4>"$tmp/system-bus.pid" \
    || bail "the private system bus did not start"
  system_bus_pid=$(head -n 1 "$tmp/system-bus.pid")
}

if [[ $MODE == resume ]]; then
  start_system_bus
  NC_LOG_LEVEL=debug nc_start_agent "unix:path=$tmp/system_bus_socket" \
    || bail "pinhole-agent --session did not come up"
else
  nc_start_agent || bail "pinhole-agent --session did not come up"
fi
pass "pinhole-agent runs in the agent namespace"
wait_field state on 20
verdict "the tunnel is on"
wait_field cloud_connections.warm_now 2 20
verdict "the warm pool is full (2)"

# ---- resume ----

if [[ $MODE == resume ]]; then
  nc_wait_log "watching logind's PrepareForSleep" 1 10
  verdict_then "the agent watches logind on the system bus" grep -i 'logind' "$tmp/agent.log"

  mkfifo "$tmp/logind.in"
  env DBUS_SYSTEM_BUS_ADDRESS="unix:path=$tmp/system_bus_socket" \
    "$PYTHON_GI" "$SRCDIR/tests/netns/fake-logind.py" <"$tmp/logind.in" >"$tmp/logind.out" 2>&1 &
  logind_pid=$!
  exec 5>"$tmp/logind.in"
  wait_grep '^owned' "$tmp/logind.out" 50
  verdict_then "the fake logind owns org.freedesktop.login1" cat "$tmp/logind.out"

  echo sleep >&5
  sleep 0.6
  [[ $(nc_count_log "resumed from sleep") == 0 ]]
  verdict_then "PrepareForSleep(true) drops nothing" grep -i 'sleep' "$tmp/agent.log"
  made=$(status_field cloud_connections.made)
  echo wake >&5
  nc_wait_log "resumed from sleep (logind: woke from sleep)" 1 5
  verdict_then "PrepareForSleep(false): the agent logs that it woke up" grep -i 'sleep' "$tmp/agent.log"
  nc_wait_made $((made + 2)) 5
  verdict_then "and drops its pool: 2 new warm connections" grep -i 'dropping' "$tmp/agent.log"
  body=$(nc_hello 10 2>&1)
  [[ $body == hello ]]
  verdict "a request right after it arrives" "$body"
  wait_field cloud_connections.warm_now 2 10
  verdict "the warm pool fills again"
  exec 5>&-
  kill -0 "$agent_pid" 2>/dev/null
  verdict "the agent is still running"
  tap_done
fi

# ---- change: an open tunnel and an unrelated change ----

cat >"$tmp/holder.py" <<'HOLDER'
# Holds one CONNECT tunnel through the agent: a GET on it, then another once told to (a line on
# stdin), each printed as "ok N" or "fail N: why".
import socket, sys

proxy_port, origin_port = int(sys.argv[1]), sys.argv[2]
s = socket.create_connection(("127.0.0.1", proxy_port), timeout=10)
f = s.makefile("rb")
s.sendall(f"CONNECT 127.0.0.1:{origin_port} HTTP/1.1\r\nHost: 127.0.0.1:{origin_port}\r\n\r\n".encode())
status = f.readline()
while f.readline() not in (b"\r\n", b""):
    pass
if b" 200 " not in status:
    print("fail 0:", status, flush=True)
    sys.exit(1)

def get(n):
    try:
        s.sendall(b"GET /hello HTTP/1.1\r\nHost: origin\r\n\r\n")
        line = f.readline()
        length = 0
        while True:
            h = f.readline()
            if h in (b"\r\n", b""):
                break
            if h.lower().startswith(b"content-length:"):
                length = int(h.split(b":")[1])
        body = f.read(length)
        ok = b" 200 " in line and body == b"hello\n"
        print(f"ok {n}" if ok else f"fail {n}: {line!r} {body!r}", flush=True)
    except OSError as e:
        print(f"fail {n}: {e}", flush=True)

get(1)
sys.stdin.readline()
get(2)
HOLDER
mkfifo "$tmp/holder.in"
ina python3 "$tmp/holder.py" "${nc_proxy##*:}" "$nc_origin_port" <"$tmp/holder.in" \
  >"$tmp/holder.out" 2>&1 &
holder_pid=$!
exec 6>"$tmp/holder.in"
wait_grep '^\(ok\|fail\) 1' "$tmp/holder.out" 100
grep -q '^ok 1' "$tmp/holder.out"
verdict_then "a CONNECT tunnel through the agent carries a request" cat "$tmp/holder.out"

changes=$(nc_count_log "network changed (")
made=$(status_field cloud_connections.made)
# Another interface (a veth pair: the dummy driver may be missing), its address, a route on it.
{ ip -n "$nc_a" link add ph-u0 type veth peer name ph-u1 \
  && ip -n "$nc_a" addr add 10.233.0.1/24 dev ph-u0 \
  && ip -n "$nc_a" link set ph-u0 up && ip -n "$nc_a" link set ph-u1 up \
  && ip -n "$nc_a" route add 10.234.0.0/16 via 10.233.0.2; } 2>&1
verdict_then "an unrelated interface, address and route come up" ip -n "$nc_a" route
nc_wait_log "network changed (" $((changes + 1)) 5
verdict_then "the agent logs that change" grep -i 'network' "$tmp/agent.log"
nc_wait_made $((made + 2)) 5
verdict_then "and drops its pool: 2 new warm connections" grep -i 'dropping' "$tmp/agent.log"
echo go >&6
wait_grep '^\(ok\|fail\) 2' "$tmp/holder.out" 100
grep -q '^ok 2' "$tmp/holder.out"
verdict_then "the open tunnel still carries a request after it" cat "$tmp/holder.out"
exec 6>&-
wait_field cloud_connections.warm_now 2 10
verdict "the warm pool fills again"

# ---- change: the route goes, and comes back with another address ----

changes=$(nc_count_log "network changed (")
nc_break
nc_wait_log "network changed (" $((changes + 1)) 5
verdict_then "the address and the route go away: the agent logs it" grep -i 'network' "$tmp/agent.log"
sleep 1
changes=$(nc_count_log "network changed (")
nc_restore
start=$(date +%s%N)
body=$(nc_hello 10 2>&1)
[[ $body == hello ]]
verdict "the route is back (a new address): the first request arrives, no retry" "$body"
echo "# first request answered $((($(date +%s%N) - start) / 1000000)) ms after the route came back"
nc_wait_log "network changed (" $((changes + 1)) 5
verdict_then "the agent logged the new address" grep -i 'network' "$tmp/agent.log"
wait_field cloud_connections.warm_now 2 10
verdict "the warm pool fills again, from the new address"
body=$(nc_hello 10 2>&1)
[[ $body == hello ]]
verdict "and the next request arrives too" "$body"

kill -0 "$agent_pid" 2>/dev/null
verdict "the agent is still running"
tap_done

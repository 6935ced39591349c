#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-or-later
# test-transparent.sh: the transparent listener ([transparent] address=) with real stunnel + Squid,
# in a network namespace of the test's own, TAP output. Connections of user nobody to the
# origin's ports are redirected to the listener by an nftables rule the test writes (the capture
# rules of pinholectl capture have a test of their own, test-capture.sh; the office gateway,
# test-gateway.sh): what is checked here is what the agent does with a redirected connection.
#   - the name comes from the TLS ClientHello's SNI (also split over two segments), the HTTP
#     head's Host, or, without either, the original address: CONNECT name:port or ip:port, which
#     Squid's access log shows, and the bytes arrive untouched (TLS completes, bodies match);
#   - IPv4 and IPv6 (SO_ORIGINAL_DST and IP6T_SO_ORIGINAL_DST);
#   - a client that sends nothing goes as ip:port after the sniff wait;
#   - [route] direct= names are connected directly (never in Squid's log), block= names reset;
#   - a client connecting to the transparent listener itself is refused;
#   - each connection's access line: client, name, how it was learned, route, original address;
#   - pinholectl connections --json: a held transparent client with its name, how and original.
#
# Environment (set by tests/netns/meson.build): PH_AGENT, PINHOLECTL, PH_SRCDIR, PH_TEST_ORIGIN.
# Root only. Without root, or a tool, it is skipped; under CI=true that is a failure.

set -uo pipefail

CTL=${PINHOLECTL:?PINHOLECTL must name the pinholectl binary}
AGENT=${PH_AGENT:?PH_AGENT must name the pinhole-agent binary}
SRCDIR=${PH_SRCDIR:-$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)}

ns=ph-tp-$$
ns_made=0
# shellcheck source=tests/tap.sh
source "$(dirname "${BASH_SOURCE[0]}")/../tap.sh"
# shellcheck source=tests/ph-test-lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/../ph-test-lib.sh"
ph_in=(ip netns exec "$ns")

dump_logs ()
{
  dump_files agent.log cloud/squid/access.log
}

inns ()
{
  ip netns exec "$ns" "$@"
}

# As user nobody, whose connections the rule redirects.
asuser ()
{
  ip netns exec "$ns" setpriv --reuid=65534 --regid=65534 --clear-groups "$@"
}

# access_line FIELD...: the agent's last access line with every FIELD (waits up to 5 s).
access_line ()
{
  local i lines f
  for ((i = 0; i < 50; i++)); do
    lines=$(grep 'access ' "$tmp/agent.log")
    for f in "$@"; do
      lines=$(printf '%s\n' "$lines" | grep -F -- "$f")
    done
    if [[ -n $lines ]]; then
      printf '%s\n' "$lines" | tail -n 1
      return 0
    fi
    sleep 0.1
  done
  return 1
}

# squid_has TEXT: Squid's access log has TEXT (waits up to 5 s).
squid_has ()
{
  local i
  for ((i = 0; i < 50; i++)); do
    grep -qF -- "$1" "$PH_CLOUD_SQUID_ACCESS_LOG" && return 0
    sleep 0.1
  done
  return 1
}

cleanup ()
{
  ph_cleanup
  ((ns_made)) && ip netns del "$ns" 2>/dev/null
  ph_remove_tmp
}

[[ $(id -u) == 0 ]] || skip_all "needs root (network namespaces and nftables)"
ph_require ip nft dbus-daemon python3 curl setpriv /usr/bin/python3

trap cleanup EXIT
trap 'exit 130' INT TERM

ph_make_tmp transparent
ip netns add "$ns" || bail "cannot make a network namespace"
ns_made=1
ip -n "$ns" link set lo up

start_cloud inns
https=$PH_ORIGIN_HTTPS_PORT
http=$PH_ORIGIN_HTTP_PORT
start_session_bus inns
listen_port=$(free_port inns)
tport=$(free_port inns)
bash "$CLOUD_SCRIPT" agent-config "$tmp/cloud" "$tmp/system.conf" "$listen_port"
cat >>"$tmp/system.conf" <<EOF

[transparent]
address=127.0.0.1:$tport;[::1]:$tport

[route]
direct=direct.test
block=blocked.test
EOF
start_agent || bail "pinhole-agent did not come up"
grep -q "listening on 127.0.0.1:$tport (transparent)" "$tmp/agent.log"
verdict_then "the agent listens on the transparent address" cat "$tmp/agent.log"
ctl --session status
[[ $out =~ Transparent:\ +127\.0\.0\.1:$tport,\ \[::1\]:$tport ]]
verdict "pinholectl status shows the transparent listeners" "$out"
tl=$(status_field transparent_listeners)
[[ $tl == "[\"127.0.0.1:$tport\", \"[::1]:$tport\"]" ]]
verdict "and --json has transparent_listeners" "$tl"

inns nft -f - <<NFT || bail "nft could not add the test's redirect rule"
table inet ph_tp_test {
  chain out {
    type nat hook output priority -100;
    meta skuid 65534 tcp dport { $https, $http } redirect to :$tport
  }
  chain marks {
    type filter hook output priority 0;
    tcp dport $PH_CLOUD_TLS_PORT meta mark 28776 counter
  }
}
NFT

# ---- names from SNI and Host ----

body=$(asuser curl -sS --max-time 10 --cacert "$PH_ORIGIN_CA" "https://localhost:$https/hello" 2>&1)
[[ $body == hello ]]
verdict "HTTPS by name through the transparent listener: the TLS session completes" "$body"
line=$(access_line "proto=transparent" "learned=sni" "original=127.0.0.1:$https")
[[ $line =~ client=127\.0\.0\.1:[0-9]+\ method=CONNECT\ target=localhost:$https\ status=200\ .*route=proxy(\ error=client-closed)?\ proto=transparent\ name=localhost\ learned=sni\ original=127\.0\.0\.1:$https$ ]]
verdict "its access line: client, name=localhost, learned=sni, route=proxy, original address" \
  "$line"
squid_has "CONNECT localhost:$https "
verdict_then "Squid's log shows CONNECT localhost:$https (the name, not the address)" \
  cat "$PH_CLOUD_SQUID_ACCESS_LOG"

body=$(asuser curl -sS --max-time 10 "http://localhost:$http/hello" 2>&1)
[[ $body == hello ]]
verdict "plain HTTP by name: the answer arrives" "$body"
line=$(access_line "learned=host" "original=127.0.0.1:$http")
[[ $line == *"target=localhost:$http "*"name=localhost learned=host"* ]]
verdict "its access line says learned=host" "$line"
squid_has "CONNECT localhost:$http "
verdict "Squid's log shows CONNECT localhost:$http"

# The agent's connections to the cloud proxy carry [transparent] mark= (28776), which capture
# rules leave alone: the counter of marked packets to stunnel's port moved.
marked=$(inns nft list chain inet ph_tp_test marks | sed -n 's/.*counter packets \([0-9]*\).*/\1/p')
((${marked:-0} > 0))
verdict "the agent's connections to the cloud proxy carry its mark (28776)" "marked packets: ${marked:-none}"

# ---- no name: the address ----

body=$(asuser curl -sS -k --max-time 10 "https://127.0.0.1:$https/hello" 2>&1)
[[ $body == hello ]]
verdict "HTTPS to an address (no SNI): the answer arrives" "$body"
line=$(access_line "target=127.0.0.1:$https" "learned=ip")
[[ -n $line && $line != *name=* ]]
verdict "its access line says learned=ip and no name" "$line"
squid_has "CONNECT 127.0.0.1:$https "
verdict "Squid's log shows CONNECT 127.0.0.1:$https"

# ---- IPv6 ----

if inns python3 -c "import socket; s=socket.create_connection(('::1', $https), 2)" 2>/dev/null; then
  body=$(asuser curl -sS --max-time 10 --cacert "$PH_ORIGIN_CA" \
    --resolve "localhost:$https:[::1]" "https://localhost:$https/hello" 2>&1)
  [[ $body == hello ]]
  verdict "IPv6: HTTPS by name to [::1] through the transparent listener" "$body"
  line=$(access_line "learned=sni" "original=[::1]:$https")
  [[ $line == *"target=localhost:$https "*"name=localhost"* ]]
  verdict "its access line has the IPv6 original address (IP6T_SO_ORIGINAL_DST)" "$line"
else
  skip "IPv6" "the origin does not listen on [::1]"
fi

# ---- a ClientHello in two segments, 300 ms apart ----

sni_lines=$(grep -c "name=localhost learned=sni original=127.0.0.1:$https" "$tmp/agent.log")

asuser /usr/bin/python3 - "$https" >"$tmp/split.out" 2>&1 <<'PY'
import socket, ssl, sys, time
port = int(sys.argv[1])
ctx = ssl.create_default_context()
ctx.check_hostname = False
ctx.verify_mode = ssl.CERT_NONE
inc, out = ssl.MemoryBIO(), ssl.MemoryBIO()
obj = ctx.wrap_bio(inc, out, server_hostname="localhost")
try:
    obj.do_handshake()
except ssl.SSLWantReadError:
    pass
hello = out.read()
s = socket.create_connection(("127.0.0.1", port), 5)
s.sendall(hello[:40])
time.sleep(0.3)
s.sendall(hello[40:])
s.settimeout(5)
data = s.recv(5)
print("server answered" if data[:1] == b"\x16" else "no ServerHello: %r" % data)
PY
for ((i = 0; i < 50; i++)); do
  (($(grep -c "name=localhost learned=sni original=127.0.0.1:$https" "$tmp/agent.log") > sni_lines)) && break
  sleep 0.1
done
(($(grep -c "name=localhost learned=sni original=127.0.0.1:$https" "$tmp/agent.log") > sni_lines))
verdict_then "a ClientHello split over two segments still gives its SNI" cat "$tmp/split.out"
grep -q "server answered" "$tmp/split.out"
verdict_then "and the origin's ServerHello comes back through the tunnel" cat "$tmp/split.out"

# ---- a client that sends nothing at first ----

asuser /usr/bin/python3 - "$http" >"$tmp/silent.out" 2>&1 <<'PY'
import socket, sys, time
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])), 5)
time.sleep(2.5)
s.sendall(b"GET /hello HTTP/1.1\r\nHost: late\r\nConnection: close\r\n\r\n")
s.settimeout(5)
print(s.recv(4096).decode(errors="replace").splitlines()[0])
PY
grep -q " 200" "$tmp/silent.out"
verdict_then "a client silent for 2.5 s is carried all the same" cat "$tmp/silent.out"
line=$(access_line "target=127.0.0.1:$http" "learned=ip")
[[ -n $line ]]
verdict "after the sniff wait it went as CONNECT 127.0.0.1:$http (learned=ip)" "$line"

# ---- pinholectl connections shows a transparent client, its name and how it was learned ----

rm -f "$tmp/held.stop"
asuser /usr/bin/python3 - "$http" "$tmp/held.stop" >"$tmp/held.out" 2>&1 <<'PY' &
import os, socket, sys, time
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])), 5)
s.sendall(b"GET /hello HTTP/1.1\r\nHost: localhost\r\n\r\n")
s.settimeout(5)
got = b""
while not got.endswith(b"hello\n") and b"\r\n\r\nhello" not in got:
    chunk = s.recv(4096)
    if not chunk:
        break
    got += chunk
print("%s:%d answered" % s.getsockname(), flush=True)
while not os.path.exists(sys.argv[2]):
    time.sleep(0.1)
PY
held_pid=$!
for ((i = 0; i < 50; i++)); do
  grep -q answered "$tmp/held.out" && break
  sleep 0.1
done
held_client=$(awk '{print $1}' "$tmp/held.out")
ctl --session connections --json
printf '%s' "$out" | python3 -c '
import json, sys
d = [c for c in json.load(sys.stdin) if c["client"] == sys.argv[1]]
assert len(d) == 1, d
c = d[0]
assert c["proto"] == "transparent" and c["name"] == "localhost" and c["learned"] == "host", c
assert c["original"] == "127.0.0.1:" + sys.argv[2] and c["target"] == "localhost:" + sys.argv[2], c
assert c["route"] == "proxy" and c["proxy"] != "" and c["bytes_down"] > 0, c
' "$held_client" "$http" 2>"$tmp/held.check"
verdict_then "connections --json: the held transparent client, name=localhost, learned=host, original" \
  cat "$tmp/held.out" "$tmp/held.check" <(printf '%s\n' "$out")
touch "$tmp/held.stop"
wait "$held_pid"

# ---- routes ----

before=$(grep -c . "$PH_CLOUD_SQUID_ACCESS_LOG")
body=$(asuser curl -sS -k --max-time 10 --resolve "direct.test:$https:127.0.0.1" \
  "https://direct.test:$https/hello" 2>&1)
[[ $body == hello ]]
verdict "a [route] direct= name answers" "$body"
line=$(access_line "name=direct.test")
[[ $line == *"route=direct"* && $line == *learned=sni* ]]
verdict "its access line says route=direct" "$line"
sleep 0.3
after=$(grep -c . "$PH_CLOUD_SQUID_ACCESS_LOG")
! grep -q direct.test "$PH_CLOUD_SQUID_ACCESS_LOG" && ((after == before))
verdict_then "Squid never saw it" cat "$PH_CLOUD_SQUID_ACCESS_LOG"

asuser curl -sS -k --max-time 10 --resolve "blocked.test:$https:127.0.0.1" \
  "https://blocked.test:$https/hello" >"$tmp/blocked.out" 2>&1
code=$?
[[ $code == 35 || $code == 56 ]]
verdict_then "a [route] block= name is reset (curl exit $code)" cat "$tmp/blocked.out"
line=$(access_line "name=blocked.test")
[[ $line == *"route=block"* && $line == *"error=blocked"* ]]
verdict "its access line says route=block error=blocked" "$line"

# ---- the listener itself ----

inns curl -sS --max-time 5 "http://127.0.0.1:$tport/" >"$tmp/self.out" 2>&1
code=$?
((code != 0))
verdict_then "a client that connects to the transparent listener itself gets nothing (curl exit $code)" \
  cat "$tmp/self.out"
line=$(access_line "error=no-destination")
[[ -n $line ]]
verdict "its access line says error=no-destination" "$line"

ctl --session status
[[ $rc == 0 ]]
verdict "the agent still serves" "$out $err"

# ---- a new address, live ----

tport2=$(free_port inns)
ctl --session set transparent.address "127.0.0.1:$tport2"
[[ $rc == 0 ]]
verdict "transparent.address changed with pinholectl set" "$out $err"
wait_field transparent_listeners "[\"127.0.0.1:$tport2\"]" 10
verdict "the agent listens on the new address only"
inns python3 -c "import socket; socket.create_connection(('127.0.0.1', $tport), 2)" 2>/dev/null
(($? != 0))
verdict "the old port is closed"

stop_agent
((agent_status == 0))
verdict "the agent shuts down cleanly" "exit status $agent_status"

tap_done

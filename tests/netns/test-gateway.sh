#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-or-later
# test-gateway.sh: Pinhole as the office gateway (issue 15), in three network namespaces of the
# test's own, TAP output.
#
#   lan  a client, 10.77.1.2, whose default route is the gateway; it knows origin.test,
#        direct.test and blocked.test by its hosts file (/etc/netns/NAME/hosts, which
#        ip netns exec mounts over /etc/hosts), all at 10.77.2.2, an address behind the gateway.
#   gw   the gateway, 10.77.1.1 on the LAN (interface ph-lan) and 10.77.2.1 on the WAN; it
#        forwards, and runs the real pinhole-agent as root (--session, on a private bus) with a
#        transparent listener on 0.0.0.0 and the capture rules (pinholectl capture, or
#        [transparent] capture=); it knows the names too (the direct route, and --local).
#   wan  the internet: the origins (ph-test-origin, with a certificate for origin.test,
#        direct.test and 10.77.2.2) at 10.77.2.2:80 and :443, and the cloud end (stunnel +
#        Squid, tests/cloud/pinhole-cloud.sh) at 10.77.2.3:443. Both listen on wan's loopback;
#        nftables there forwards those addresses to them. Squid knows the names by its
#        hosts_file (PH_CLOUD_SQUID_HOSTS), so a CONNECT origin.test:443 is resolved there.
#
# The cloud end is in a namespace of its own, not on the gateway: it stands for a proxy on the
# internet, and on the gateway Squid's own connections to port 80 and 443 (as user proxy, not
# the agent's) would be captured by --local and sent back to the agent.
#
# What it shows (the "Done when" of issue 15): a LAN client's HTTPS connection to a name reaches
# Squid as CONNECT name:443 (the SNI), a plain HTTP one by its Host, a TLS client without SNI as
# CONNECT ip:port, a name of [route] direct= goes directly (one of block= is reset); the agent's
# access line of each names the client, the name, how it was learned and the route; the rules are
# gone after pinholectl capture off, after the agent stops, and after kill -9 and a restart, and
# another table is never touched; --local captures another user's curl on the gateway itself.
# Each of these is a function (assert_*).
#
# Environment (set by tests/netns/meson.build): PH_AGENT, PINHOLECTL, PH_SRCDIR, PH_TEST_ORIGIN.
# Root only (namespaces, nftables). Without root, or a tool, it is skipped; under CI=true that is
# a failure.

set -uo pipefail

CTL=${PINHOLECTL:?PINHOLECTL must name the pinholectl binary}
AGENT=${PH_AGENT:?PH_AGENT must name the pinhole-agent binary}
SRCDIR=${PH_SRCDIR:-$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)}
ORIGIN_BIN=${PH_TEST_ORIGIN:-$SRCDIR/build/tests/cloud/ph-test-origin}

readonly LAN_NET=10.77.1.0/24 GW_LAN=10.77.1.1 LAN_ADDR=10.77.1.2
readonly GW_WAN=10.77.2.1 ORIGIN_ADDR=10.77.2.2 CLOUD_ADDR=10.77.2.3
readonly NAME=origin.test DIRECT_NAME=direct.test BLOCKED_NAME=blocked.test LAN_IF=ph-lan
readonly OTHER_TABLE=phgw_other

# Unique per run: parallel runs cannot collide.
ns_lan=ph-gw-lan-$$
ns_gw=ph-gw-gw-$$
ns_wan=ph-gw-wan-$$
ns_made=0
etc_netns_made=0
origin_pid=""
tport=""
# shellcheck source=tests/tap.sh
source "$(dirname "${BASH_SOURCE[0]}")/../tap.sh"
# shellcheck source=tests/ph-test-lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/../ph-test-lib.sh"
ph_in=(ip netns exec "$ns_gw")

dump_logs ()
{
  dump_files agent.log origin.log cloud/squid/access.log cloud/squid/cache.log cloud/stunnel.log
  echo "# ----- nft list ruleset in gw -----"
  ing nft list ruleset 2>&1 | sed 's/^/#   /'
}

inl ()
{
  ip netns exec "$ns_lan" "$@"
}

ing ()
{
  ip netns exec "$ns_gw" "$@"
}

inw ()
{
  ip netns exec "$ns_wan" "$@"
}

cleanup ()
{
  ph_cleanup
  stop_pid "$origin_pid"
  stop_pid "${udp_echo_pid:-}" 10
  if ((ns_made)); then
    ip netns del "$ns_lan" 2>/dev/null
    ip netns del "$ns_gw" 2>/dev/null
    ip netns del "$ns_wan" 2>/dev/null
  fi
  rm -rf "/etc/netns/$ns_lan" "/etc/netns/$ns_gw"
  ((etc_netns_made)) && rmdir /etc/netns 2>/dev/null
  ph_remove_tmp
}

# ---- helpers ----

# access_lines FIELD...: how many of the agent's access lines have every FIELD.
access_lines ()
{
  local lines f
  lines=$(grep 'access ' "$tmp/agent.log")
  for f in "$@"; do
    lines=$(printf '%s\n' "$lines" | grep -F -- "$f")
  done
  printf '%s\n' "$lines" | grep -c .
}

# wait_access SECONDS FIELD...: until an access line has every FIELD.
wait_access ()
{
  local seconds=$1 i
  shift
  for ((i = 0; i < seconds * 10; i++)); do
    (($(access_lines "$@") > 0)) && return 0
    sleep 0.1
  done
  return 1
}

# squid_lines PATTERN: how many lines of Squid's access log match PATTERN (extended regex).
squid_lines ()
{
  grep -cE -- "$1" "$PH_CLOUD_SQUID_ACCESS_LOG"
}

# wait_squid PATTERN COUNT SECONDS: until Squid has logged COUNT lines with PATTERN (Squid writes
# a line when the connection ends).
wait_squid ()
{
  local i
  for ((i = 0; i < $3 * 10; i++)); do
    (($(squid_lines "$1") >= $2)) && return 0
    sleep 0.1
  done
  return 1
}

# table_exists TABLE: whether the gateway has the nftables table "inet TABLE".
table_exists ()
{
  ing nft list table inet "$1" >/dev/null 2>&1
}

# other_table: the test's own table as listed (its counters do not move: nothing goes to port 9).
other_table ()
{
  ing nft list table inet "$OTHER_TABLE" 2>&1
}

# wait_no_table TABLE SECONDS: until the table is gone.
wait_no_table ()
{
  local i
  for ((i = 0; i < $2 * 10; i++)); do
    table_exists "$1" || return 0
    sleep 0.1
  done
  return 1
}

# wait_table TABLE SECONDS: until the table is there.
wait_table ()
{
  local i
  for ((i = 0; i < $2 * 10; i++)); do
    table_exists "$1" && return 0
    sleep 0.1
  done
  return 1
}

# lan_get URL [CURL_OPTION...]: one request from the LAN client, with no proxy; prints the body.
lan_get ()
{
  local url=$1
  shift
  inl curl -sS --max-time 10 --noproxy '*' --cacert "$tmp/origin-ca.pem" "$@" "$url"
}

# write_config [CAPTURE]: the agent's configuration: the listener on the gateway's loopback, the
# transparent listener on every address, the LAN allowed, direct.test direct, the cloud end at
# CLOUD_ADDR:443; [transparent] capture=CAPTURE when given.
write_config ()
{
  cat >"$tmp/system.conf" <<EOF
[listener]
address=127.0.0.1:$listen_port
allow=$LAN_NET

[transparent]
address=0.0.0.0:$tport
ports=80,443
${1:+capture=$1}

[route]
direct=$DIRECT_NAME
block=$BLOCKED_NAME

[upstream]
host=$CLOUD_ADDR
port=443
server-name=$PH_CLOUD_SERVER_NAME
pins=$PH_CLOUD_PIN
verify=pin
username=$PH_CLOUD_USER
password-file=$PH_CLOUD_PASSWORD_FILE

[log]
level=info
EOF
}

# transparent_listening: whether something listens on the transparent port in the gateway.
transparent_listening ()
{
  ing ss -Hltn "sport = :$tport" | grep -q .
}

# capture on --gateway IFACE | on --local | off: pinholectl capture on the gateway (ctl runs in
# its namespace, as root; the agent runs nft).
capture ()
{
  ctl --session capture "$@"
}

# origin_certs: a small CA and the origins' certificate for origin.test, direct.test and
# ORIGIN_ADDR, so that clients verify the origin itself (the bytes go through untouched).
origin_certs ()
{
  local d=$tmp
  openssl req -x509 -new -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes \
    -keyout "$d/origin-ca-key.pem" -out "$d/origin-ca.pem" -days 2 -subj "/CN=gateway test CA" \
    -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign" \
    2>/dev/null || return 1
  openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes \
    -keyout "$d/origin-key.pem" -out "$d/origin.csr" -subj "/CN=$NAME" 2>/dev/null || return 1
  printf '%s\n' "subjectAltName=DNS:$NAME,DNS:$DIRECT_NAME,DNS:$BLOCKED_NAME,IP:$ORIGIN_ADDR" \
    "extendedKeyUsage=serverAuth" "basicConstraints=CA:FALSE" >"$d/origin.ext"
  openssl x509 -req -in "$d/origin.csr" -CA "$d/origin-ca.pem" -CAkey "$d/origin-ca-key.pem" \
    -CAcreateserial -out "$d/origin-cert.pem" -days 2 -extfile "$d/origin.ext" 2>/dev/null ||
    return 1
  # The CA for curl as nobody (--local).
  chmod 0644 "$d/origin-ca.pem"
}

# start_origin: ph-test-origin on wan's loopback; sets origin_http and origin_https.
start_origin ()
{
  local i line
  # Not through inw: a function in the background is a subshell, and $! would be its pid.
  ip netns exec "$ns_wan" "$ORIGIN_BIN" --http-port 0 --https-port 0 \
    --cert "$tmp/origin-cert.pem" --key "$tmp/origin-key.pem" >"$tmp/origin.out" \
    2>"$tmp/origin.log" </dev/null &
  origin_pid=$!
  for ((i = 0; i < 100; i++)); do
    line=$(head -n 1 "$tmp/origin.out" 2>/dev/null)
    if [[ $line =~ ^http=([0-9]+)\ https=([0-9]+) ]]; then
      origin_http=${BASH_REMATCH[1]}
      origin_https=${BASH_REMATCH[2]}
      return 0
    fi
    kill -0 "$origin_pid" 2>/dev/null || return 1
    sleep 0.1
  done
  return 1
}

# ---- prerequisites ----

[[ $(id -u) == 0 ]] || skip_all "needs root (network namespaces and nftables)"
ph_require ip nft ss dbus-daemon python3 curl openssl setpriv
[[ -x $ORIGIN_BIN ]] || bail "ph-test-origin not found at $ORIGIN_BIN"
id -u nobody >/dev/null 2>&1 || skip_all "no user nobody (the other user of --local)"

trap cleanup EXIT
trap 'exit 130' INT TERM

ph_make_tmp gateway

# ---- the network: lan <-> gw <-> wan ----

begin "the network"
ip netns add "$ns_lan" || bail "cannot make a network namespace"
ns_made=1
ip netns add "$ns_gw" || bail "cannot make a network namespace"
ip netns add "$ns_wan" || bail "cannot make a network namespace"
for ns in "$ns_lan" "$ns_gw" "$ns_wan"; do
  ip netns exec "$ns" sysctl -qw net.ipv6.conf.all.disable_ipv6=1 \
    net.ipv6.conf.default.disable_ipv6=1 || bail "cannot turn IPv6 off in $ns"
  ip -n "$ns" link set lo up
done
ip -n "$ns_gw" link add "$LAN_IF" type veth peer name eth0 netns "$ns_lan" || bail "veth lan failed"
ip -n "$ns_gw" link add ph-wan type veth peer name eth0 netns "$ns_wan" || bail "veth wan failed"
ip -n "$ns_gw" addr add "$GW_LAN/24" dev "$LAN_IF"
ip -n "$ns_gw" addr add "$GW_WAN/24" dev ph-wan
ip -n "$ns_lan" addr add "$LAN_ADDR/24" dev eth0
ip -n "$ns_wan" addr add "$ORIGIN_ADDR/24" dev eth0
ip -n "$ns_wan" addr add "$CLOUD_ADDR/24" dev eth0
for l in "$ns_gw $LAN_IF" "$ns_gw ph-wan" "$ns_lan eth0" "$ns_wan eth0"; do
  read -r ns dev <<<"$l"
  ip -n "$ns" link set "$dev" up || bail "cannot bring $dev up in $ns"
done
ip -n "$ns_lan" route add default via "$GW_LAN" || bail "lan: no default route"
ip -n "$ns_wan" route add default via "$GW_WAN" || bail "wan: no default route"
# A gateway routes: what is not captured goes out as it is.
ing sysctl -qw net.ipv4.ip_forward=1 || bail "gw: cannot turn forwarding on"

# Names: the LAN client and the gateway know them from their hosts files; Squid from its own.
[[ -d /etc/netns ]] || etc_netns_made=1
mkdir -p "/etc/netns/$ns_lan" "/etc/netns/$ns_gw" || bail "cannot make /etc/netns/*"
for f in "/etc/netns/$ns_lan/hosts" "/etc/netns/$ns_gw/hosts" "$tmp/squid-hosts"; do
  printf '127.0.0.1 localhost\n%s %s %s %s\n' "$ORIGIN_ADDR" "$NAME" "$DIRECT_NAME" \
    "$BLOCKED_NAME" >"$f"
done
chmod 0644 "$tmp/squid-hosts"
[[ $(inl getent hosts "$NAME") == "$ORIGIN_ADDR"* ]]
verdict_then "the LAN client resolves $NAME to $ORIGIN_ADDR (its hosts file)" inl getent hosts "$NAME"

# ---- wan: the origins and the cloud end ----

origin_certs || bail "openssl could not make the origin's certificates"
start_origin || bail "ph-test-origin did not start"
start_cloud inw env PH_CLOUD_SQUID_HOSTS="$tmp/squid-hosts"
# Both listen on wan's loopback; a DNAT to 127.0.0.1 from outside needs route_localnet. The
# output chain is Squid's way to the origins at ORIGIN_ADDR, its own address.
inw sysctl -qw net.ipv4.conf.all.route_localnet=1 net.ipv4.conf.eth0.route_localnet=1 ||
  bail "wan: route_localnet"
inw nft -f - <<NFT || bail "wan: nft could not add the forwards"
table ip phgw_wan {
  chain pre {
    type nat hook prerouting priority dstnat;
    ip daddr $CLOUD_ADDR tcp dport 443 dnat to 127.0.0.1:$PH_CLOUD_TLS_PORT
    ip daddr $ORIGIN_ADDR tcp dport 443 dnat to 127.0.0.1:$origin_https
    ip daddr $ORIGIN_ADDR tcp dport 80 dnat to 127.0.0.1:$origin_http
  }
  chain out {
    type nat hook output priority -100;
    ip daddr $ORIGIN_ADDR tcp dport 443 dnat to 127.0.0.1:$origin_https
    ip daddr $ORIGIN_ADDR tcp dport 80 dnat to 127.0.0.1:$origin_http
  }
}
NFT

# Without capture, the gateway only routes: the client reaches the origin, Squid sees nothing.
body=$(lan_get "https://$NAME/hello" 2>&1)
[[ $body == hello ]]
verdict "without capture the LAN client reaches https://$NAME/ routed (TLS verified)" "$body"
body=$(lan_get "http://$NAME/hello" 2>&1)
[[ $body == hello ]]
verdict "without capture the LAN client reaches http://$NAME/ routed" "$body"
body=$(inw curl -sS --max-time 10 --noproxy '*' --cacert "$tmp/origin-ca.pem" \
  --resolve "$NAME:443:$ORIGIN_ADDR" "https://$NAME/hello" 2>&1)
[[ $body == hello ]]
verdict "Squid's namespace reaches the origin at $ORIGIN_ADDR:443" "$body"
[[ $(squid_lines "$NAME") == 0 ]]
verdict_then "Squid has seen nothing of it" cat "$PH_CLOUD_SQUID_ACCESS_LOG"

# The test's own table in the gateway, which nothing of Pinhole's may touch.
ing nft -f - <<NFT || bail "gw: nft could not add the test's own table"
table inet $OTHER_TABLE {
  chain in {
    type filter hook input priority 10; policy accept;
    tcp dport 9 counter
  }
}
NFT
other_before=$(other_table)

# ---- gw: the agent ----

begin "the agent on the gateway"
start_session_bus ing
listen_port=$(free_port ing)
tport=$(free_port ing)
write_config
start_agent || bail "pinhole-agent --session did not come up in the gateway"
pass "pinhole-agent runs as root in the gateway"
wait_state on 20
verdict "the agent reaches the cloud end at $CLOUD_ADDR:443 (state on)"

# The path without capture: through the agent's ordinary listener, Squid resolves the name by
# its hosts file and reaches the origin; a direct name goes from the gateway itself.
proxy=http://127.0.0.1:$listen_port
before=$(squid_lines "CONNECT $NAME:443 ")
body=$(ing curl -sS --max-time 10 -x "$proxy" --cacert "$tmp/origin-ca.pem" "https://$NAME/hello" 2>&1)
[[ $body == hello ]]
verdict "a CONNECT $NAME:443 through the agent's listener reaches the origin" "$body"
wait_squid "CONNECT $NAME:443 " $((before + 1)) 10
verdict_then "Squid resolved $NAME itself (CONNECT $NAME:443 in its log)" \
  cat "$PH_CLOUD_SQUID_ACCESS_LOG"
body=$(ing curl -sS --max-time 10 -x "$proxy" --cacert "$tmp/origin-ca.pem" \
  "https://$DIRECT_NAME/hello" 2>&1)
[[ $body == hello && $(access_lines "$DIRECT_NAME:443" "route=direct") -ge 1 ]]
verdict_then "$DIRECT_NAME through the agent's listener goes directly (route=direct)" \
  grep 'access ' "$tmp/agent.log"

# assert_tproxy: TPROXY rules of the test's own instead of a redirect (no NAT: the transparent
# listener, IP_TRANSPARENT, takes the connection addressed to the origin and the agent reads the
# original destination from its local address).
assert_tproxy ()
{
  local before_squid before_lines body
  ing ip rule add fwmark 0x7a lookup 177 && ing ip route add local 0.0.0.0/0 dev lo table 177 &&
    ing nft -f - <<NFT
table ip phgw_tproxy {
  chain pre {
    type filter hook prerouting priority mangle; policy accept;
    iifname "$LAN_IF" tcp dport 443 fib daddr type != local meta mark set 0x7a tproxy to :$tport accept
  }
}
NFT
  verdict "TPROXY rules of the test's own (marked packets routed to lo)"
  before_squid=$(squid_lines "CONNECT $NAME:443 ")
  before_lines=$(access_lines "client=$LAN_ADDR" "name=$NAME" "learned=sni" "original=$ORIGIN_ADDR:443")
  body=$(lan_get "https://$NAME/hello" 2>&1)
  [[ $body == hello ]]
  verdict "TPROXY: curl in the LAN reaches https://$NAME/ (TLS verified)" "$body"
  wait_squid "CONNECT $NAME:443 " $((before_squid + 1)) 10
  verdict_then "TPROXY: Squid's access log has CONNECT $NAME:443" cat "$PH_CLOUD_SQUID_ACCESS_LOG"
  (($(access_lines "client=$LAN_ADDR" "name=$NAME" "learned=sni" "original=$ORIGIN_ADDR:443") > before_lines))
  verdict_then "TPROXY: the access line has the original destination $ORIGIN_ADDR:443" \
    grep 'access ' "$tmp/agent.log"
  ing nft delete table ip phgw_tproxy
  ing ip rule del fwmark 0x7a lookup 177
  ing ip route del local 0.0.0.0/0 dev lo table 177
}

# ---- the capture's assertions, each a function ----

# sni_via_squid: one HTTPS request of the LAN client to NAME, and Squid's line for it; no verdict.
sni_via_squid ()
{
  local before
  before=$(squid_lines "CONNECT $NAME:443 ")
  [[ $(lan_get "https://$NAME/hello" 2>&1) == hello ]] &&
    wait_squid "CONNECT $NAME:443 " $((before + 1)) 10
}

# capture_gateway_on: the gateway's rules, by pinholectl capture on --gateway.
capture_gateway_on ()
{
  capture on --gateway "$LAN_IF"
  verdict "pinholectl capture on --gateway $LAN_IF" "$out" "$err"
  table_exists pinhole
  verdict_then "the table inet pinhole is there" ing nft list ruleset
}

# assert_sni (a): the LAN client's HTTPS to a name: Squid sees CONNECT name:443.
assert_sni ()
{
  local body before
  before=$(squid_lines "CONNECT $NAME:443 ")
  body=$(lan_get "https://$NAME/hello" 2>&1)
  [[ $body == hello ]]
  verdict "(a) curl in the LAN reaches https://$NAME/ through the gateway (TLS verified)" "$body"
  wait_squid "CONNECT $NAME:443 " $((before + 1)) 10
  verdict_then "(a) Squid's access log has CONNECT $NAME:443, the name (the SNI)" \
    cat "$PH_CLOUD_SQUID_ACCESS_LOG"
  wait_access 5 "client=$LAN_ADDR" "proto=transparent" "name=$NAME" "learned=sni" "route=proxy" \
    "original=$ORIGIN_ADDR:443"
  verdict_then "(e) the agent's access line: client=$LAN_ADDR proto=transparent name=$NAME learned=sni route=proxy original=$ORIGIN_ADDR:443" \
    grep 'access ' "$tmp/agent.log"
}

# assert_host (b): a plain HTTP origin by its Host.
assert_host ()
{
  local body pattern before
  pattern="(CONNECT $NAME:80 |GET http://$NAME(:80)?/hello )"
  before=$(squid_lines "$pattern")
  body=$(lan_get "http://$NAME/hello" 2>&1)
  [[ $body == hello ]]
  verdict "(b) curl in the LAN reaches http://$NAME/ through the gateway" "$body"
  wait_squid "$pattern" $((before + 1)) 10
  verdict_then "(b) Squid's access log has $NAME:80, the name (the Host)" \
    cat "$PH_CLOUD_SQUID_ACCESS_LOG"
  wait_access 5 "client=$LAN_ADDR" "proto=transparent" "name=$NAME" "learned=host" "route=proxy"
  verdict_then "(e) the agent's access line: client=$LAN_ADDR proto=transparent name=$NAME learned=host route=proxy" \
    grep 'access ' "$tmp/agent.log"
}

# assert_no_sni (c): a TLS client that sends no SNI goes as CONNECT ip:port; once curl to the
# address (no SNI for an IP), once openssl s_client -noservername.
assert_no_sni ()
{
  local body before
  before=$(squid_lines "CONNECT $ORIGIN_ADDR:443 ")
  body=$(lan_get "https://$ORIGIN_ADDR/hello" 2>&1)
  [[ $body == hello ]]
  verdict "(c) curl in the LAN reaches https://$ORIGIN_ADDR/ (no SNI) through the gateway" "$body"
  body=$(printf 'GET /hello HTTP/1.1\r\nHost: %s\r\nConnection: close\r\n\r\n' "$NAME" |
    inl timeout 10 openssl s_client -quiet -noservername -connect "$ORIGIN_ADDR:443" \
      -CAfile "$tmp/origin-ca.pem" -verify_return_error 2>&1)
  [[ $body == *hello* ]]
  verdict "(c) openssl s_client -noservername in the LAN gets its answer" "$body"
  wait_squid "CONNECT $ORIGIN_ADDR:443 " $((before + 2)) 10
  verdict_then "(c) Squid's access log has CONNECT $ORIGIN_ADDR:443 for both" \
    cat "$PH_CLOUD_SQUID_ACCESS_LOG"
  wait_access 5 "client=$LAN_ADDR" "proto=transparent" "$ORIGIN_ADDR:443" "learned=ip" \
    "route=proxy"
  verdict_then "(e) the agent's access line: client=$LAN_ADDR proto=transparent $ORIGIN_ADDR:443 learned=ip route=proxy" \
    grep 'access ' "$tmp/agent.log"
}

# assert_direct (d): a name of [route] direct= is connected by the agent itself.
assert_direct ()
{
  local body
  body=$(lan_get "https://$DIRECT_NAME/hello" 2>&1)
  [[ $body == hello ]]
  verdict "(d) curl in the LAN reaches https://$DIRECT_NAME/ through the gateway" "$body"
  wait_access 5 "client=$LAN_ADDR" "proto=transparent" "name=$DIRECT_NAME" "learned=sni" \
    "route=direct"
  verdict_then "(e) the agent's access line: client=$LAN_ADDR proto=transparent name=$DIRECT_NAME learned=sni route=direct" \
    grep 'access ' "$tmp/agent.log"
  # Squid logs a connection when it ends: one through it after this one shows its log is current.
  sni_via_squid && [[ $(squid_lines "$DIRECT_NAME") == 0 ]]
  verdict_then "(d) $DIRECT_NAME is not in Squid's access log" cat "$PH_CLOUD_SQUID_ACCESS_LOG"
}

# assert_blocked: a name of [route] block= is reset, as the network would, and never leaves.
assert_blocked ()
{
  local answer
  answer=$(lan_get "https://$BLOCKED_NAME/hello" 2>&1)
  [[ $? != 0 && $answer == *reset* ]]
  verdict "a name of [route] block= is reset" "$answer"
  wait_access 5 "client=$LAN_ADDR" "proto=transparent" "name=$BLOCKED_NAME" "learned=sni" \
    "route=block"
  verdict_then "its access line: client=$LAN_ADDR proto=transparent name=$BLOCKED_NAME learned=sni route=block" \
    grep 'access ' "$tmp/agent.log"
  sni_via_squid && [[ $(squid_lines "$BLOCKED_NAME") == 0 ]]
  verdict_then "$BLOCKED_NAME is not in Squid's access log" cat "$PH_CLOUD_SQUID_ACCESS_LOG"
}

# udp_ask: the LAN client's UDP datagram to the origin's address, port 443 (QUIC's); prints
# "echo", "refused" (ICMP port unreachable) or "silence".
udp_ask ()
{
  inl /usr/bin/python3 - "$ORIGIN_ADDR" <<'PY'
import socket, sys
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.settimeout(2)
s.connect((sys.argv[1], 443))
try:
    s.send(b"quic?")
    print("echo" if s.recv(64) == b"quic?" else "other")
except ConnectionRefusedError:
    print("refused")
except socket.timeout:
    print("silence")
PY
}

# assert_quic: UDP to a captured port (HTTP/3) is refused at the gateway, so browsers use TCP,
# which is captured; a UDP echo server in the WAN on 443 shows it is the rule, not the origin.
assert_quic ()
{
  local got
  inw /usr/bin/python3 -c 'import socket
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind(("'"$ORIGIN_ADDR"'", 443))
while True:
    data, peer = s.recvfrom(64)
    s.sendto(data, peer)' >/dev/null 2>&1 &
  udp_echo_pid=$!
  sleep 0.3
  got=$(udp_ask)
  [[ $got == refused ]]
  verdict "UDP from the LAN to port 443 (QUIC) is refused while captured, so browsers use TCP" \
    "got: $got"
}

# assert_capture_off (f): pinholectl capture off removes the table, and only it; the LAN's
# connections go routed again, past the agent.
assert_capture_off ()
{
  local body before
  capture off
  verdict "pinholectl capture off" "$out" "$err"
  ! table_exists pinhole
  verdict_then "(f) after capture off the table inet pinhole is gone" ing nft list ruleset
  [[ $(other_table) == "$other_before" ]]
  verdict_then "(f) the test's own table is untouched" other_table
  before=$(access_lines "proto=transparent")
  body=$(lan_get "https://$NAME/hello" 2>&1)
  [[ $body == hello && $(access_lines "proto=transparent") == "$before" ]]
  verdict "(f) the LAN client reaches $NAME routed again, past the agent" "$body"
  body=$(udp_ask)
  [[ $body == echo ]]
  verdict "(f) and its UDP to port 443 reaches the WAN's echo server again" "got: $body"
  stop_pid "$udp_echo_pid" 10
  udp_echo_pid=""
}

# assert_local (g): --local captures another user's curl on the gateway itself; the agent's own
# connections (root) are not captured.
assert_local ()
{
  local body before
  capture on --local
  verdict "pinholectl capture on --local" "$out" "$err"
  before=$(squid_lines "CONNECT $NAME:443 ")
  body=$(ing setpriv --reuid=65534 --regid=65534 --clear-groups curl -sS --max-time 10 \
    --noproxy '*' --cacert "$tmp/origin-ca.pem" "https://$NAME/hello" 2>&1)
  [[ $body == hello ]]
  verdict "(g) curl as nobody on the gateway reaches https://$NAME/" "$body"
  wait_squid "CONNECT $NAME:443 " $((before + 1)) 10
  verdict_then "(g) Squid's access log has CONNECT $NAME:443 for it" \
    cat "$PH_CLOUD_SQUID_ACCESS_LOG"
  # The redirect keeps the source the route chose: the gateway's address toward the origin.
  wait_access 5 "client=$GW_WAN:" "proto=transparent" "name=$NAME" "learned=sni" "route=proxy"
  verdict_then "(g) the agent's access line: client=$GW_WAN proto=transparent name=$NAME learned=sni route=proxy" \
    grep 'access ' "$tmp/agent.log"
  capture off
  verdict "pinholectl capture off (--local)" "$out" "$err"
  ! table_exists pinhole && [[ $(other_table) == "$other_before" ]]
  verdict_then "(f) after capture off (--local) the table inet pinhole is gone, the test's own is untouched" \
    ing nft list ruleset
}

# assert_service_rules (f): [transparent] capture=gateway IFACE: applied when the agent starts,
# removed when it stops (SIGTERM); after kill -9 the stale table is removed and applied anew at
# the next start.
assert_service_rules ()
{
  local rules_before
  stop_agent
  # pinholectl capture on/off is kept in the agent's own file, which would win over the system
  # file's capture=.
  [[ -e $tmp/config/pinhole/pinhole.conf ]] && sed -i '/^capture=/d' "$tmp/config/pinhole/pinhole.conf"
  write_config "gateway $LAN_IF"
  start_agent || bail "pinhole-agent with capture=gateway did not come up"
  wait_table pinhole 10
  verdict_then "(f) capture=gateway $LAN_IF: the agent puts the table inet pinhole in" \
    ing nft list ruleset
  rules_before=$(ing nft list table inet pinhole 2>/dev/null | grep -c redirect)
  wait_state on 20 >/dev/null
  sni_via_squid
  verdict "(f) capture=gateway: the LAN's connections are captured"

  stop_agent
  [[ $agent_status == 0 ]]
  verdict "(f) the agent stops cleanly on SIGTERM" "exit status $agent_status"
  ! table_exists pinhole
  verdict_then "(f) after SIGTERM the table inet pinhole is gone" ing nft list ruleset
  [[ $(other_table) == "$other_before" ]]
  verdict_then "(f) the test's own table is untouched" other_table

  start_agent || bail "pinhole-agent with capture=gateway did not come up again"
  wait_table pinhole 10
  verdict "(f) a new start puts the table in again"
  kill -KILL "$agent_pid"
  wait "$agent_pid" 2>/dev/null
  agent_pid=""
  table_exists pinhole
  verdict "(f) after kill -9 the table is still there (nobody removed it)"
  # A mark of the stale table: the next start must remove the table, not just flush it.
  ing nft add chain inet pinhole phgw_stale
  start_agent || bail "pinhole-agent did not come up after kill -9"
  wait_table pinhole 10 && ! ing nft list chain inet pinhole phgw_stale >/dev/null 2>&1
  verdict_then "(f) the restart after kill -9 removed the stale table and applied a new one" \
    ing nft list ruleset
  grep -qF "removed capture rules left by a previous run" "$tmp/agent.log"
  verdict_then "(f) and says so in its log" grep capture "$tmp/agent.log"
  [[ $(ing nft list table inet pinhole 2>/dev/null | grep -c redirect) == "$rules_before" ]]
  verdict_then "(f) with the same rules, not twice" ing nft list table inet pinhole
  [[ $(other_table) == "$other_before" ]]
  verdict_then "(f) the test's own table is untouched" other_table
  wait_state on 20 >/dev/null
  sni_via_squid
  verdict "(f) after the restart the LAN's connections are captured again"
  stop_agent
  ! table_exists pinhole
  verdict_then "(f) and the last stop removes the table" ing nft list ruleset
}

if ! transparent_listening; then
  fail "the agent listens on the transparent port $tport ([transparent] address=0.0.0.0:$tport)"
  bail "no transparent listener in this agent: (a)-(g) cannot run"
fi
pass "the agent listens on the transparent port $tport"

begin "capture --gateway"
capture_gateway_on
assert_sni
assert_host
assert_no_sni
assert_direct
assert_blocked
assert_quic
begin "capture off"
assert_capture_off
begin "capture --local"
assert_local
begin "TPROXY"
assert_tproxy
begin "capture= in the configuration: stop, kill -9, restart"
assert_service_rules

tap_done

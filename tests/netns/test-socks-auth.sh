#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-or-later
# test-socks-auth.sh: SOCKS5 username/password (RFC 1929) for clients that are not on loopback,
# in network namespaces of the test's own, TAP output. The agent (--session, on a private bus,
# with the file secret store), the cloud end (stunnel + Squid + ph-test-origin, on loopback) and
# pinholectl run in a "gateway" namespace; the SOCKS clients (curl --socks5-hostname, PySocks,
# raw Python sockets) run in a "LAN" namespace across a veth pair, so that the agent sees them
# at a LAN address, as it sees an office's devices. Shown: pinholectl socks-user add (password
# from standard input), list and remove against the real agent; with no SOCKS user a LAN client
# is served as before; with one it must sign in (a right password is let through to Squid, a
# wrong one gets RFC 1929's failure and error=socks-auth, a SOCKS4 one, which has no password,
# is refused); a loopback client still needs none;
# malformed sub-negotiations get the failure reply and the agent keeps serving; the passwords
# are loaded again at a restart; and no password is in the agent's log or configuration.
#
# Environment (set by tests/netns/meson.build): PH_AGENT, PINHOLECTL, PH_SRCDIR, PH_TEST_ORIGIN;
# PH_PYTHON (default /usr/bin/python3, Debian's, which has python3-socks).
# Root only (namespaces). Without root, or a tool, it is skipped; under CI=true that is a
# failure.

set -uo pipefail

CTL=${PINHOLECTL:?PINHOLECTL must name the pinholectl binary}
AGENT=${PH_AGENT:?PH_AGENT must name the pinhole-agent binary}
SRCDIR=${PH_SRCDIR:-$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)}
PYTHON=${PH_PYTHON:-/usr/bin/python3}

# The two namespaces' addresses (a private range, only inside the test's namespaces).
readonly GW_ADDR=10.232.0.1 LAN_ADDR=10.232.0.2

nsg=ph-socks-g-$$
nsl=ph-socks-l-$$
ns_made=0
# shellcheck source=tests/tap.sh
source "$(dirname "${BASH_SOURCE[0]}")/../tap.sh"
# shellcheck source=tests/ph-test-lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/../ph-test-lib.sh"
ph_in=(ip netns exec "$nsg")

dump_logs ()
{
  dump_files agent.log agent.out
}

# Runs a command in the gateway namespace, or in the LAN one.
ing ()
{
  ip netns exec "$nsg" "$@"
}
inl ()
{
  ip netns exec "$nsl" "$@"
}

# access_lines FIELD...: the number of the agent's access lines with every FIELD.
access_lines ()
{
  local lines
  lines=$(grep 'access ' "$tmp/agent.log")
  for f in "$@"; do
    lines=$(printf '%s\n' "$lines" | grep -F -- "$f")
  done
  printf '%s\n' "$lines" | grep -c .
}

# wait_access N FIELD...: waits up to 5 s for N access lines with every FIELD.
wait_access ()
{
  local n=$1 i
  shift
  for ((i = 0; i < 50; i++)); do
    (($(access_lines "$@") >= n)) && return 0
    sleep 0.1
  done
  return 1
}

squid_connects ()
{
  grep -c "CONNECT localhost:$PH_ORIGIN_HTTPS_PORT " "$PH_CLOUD_SQUID_ACCESS_LOG"
}

# wait_squid N: waits up to 5 s for Squid's log to have N CONNECTs to the origin by name.
wait_squid ()
{
  local i
  for ((i = 0; i < 50; i++)); do
    (($(squid_connects) >= $1)) && return 0
    sleep 0.1
  done
  return 1
}

# socks_curl [IN] ADDRESS [USER:PASSWORD]: curl --socks5-hostname through the agent at ADDRESS to
# the origin's HTTPS by name, from the LAN namespace (IN=inl) or the gateway's (ing); sets
# curl_out and curl_rc. The credentials go in a curl config on standard input, not in argv.
socks_curl ()
{
  local in=$1 addr=$2 cred=${3:-}
  local -a args=(-sS --max-time 15 --socks5-hostname "$addr:$listen_port" --cacert "$PH_ORIGIN_CA"
    "https://localhost:$PH_ORIGIN_HTTPS_PORT/hello")
  if [[ -n $cred ]]; then
    curl_out=$(printf 'proxy-user = "%s"\n' "$cred" | "$in" curl -K - "${args[@]}" 2>&1)
  else
    curl_out=$("$in" curl "${args[@]}" 2>&1)
  fi
  curl_rc=$?
}

# pysocks [IN] ADDRESS [USER [PASSWORD]]: PySocks (socks5h: the name is resolved by the proxy)
# makes an HTTPS GET of /hello through the agent; prints the body, or "refused: …" and exits 3.
# The password is read from standard input.
pysocks ()
{
  local in=$1 addr=$2 user=${3:-} password=${4:-}
  py_out=$(printf '%s\n' "$password" | "$in" "$PYTHON" "$tmp/pysocks-get.py" "$addr" \
    "$listen_port" "$PH_ORIGIN_HTTPS_PORT" "$PH_ORIGIN_CA" "$user" 2>&1)
  py_rc=$?
}

# raw_socks IN HEX: sends the bytes HEX to the agent from IN (inl, ing) and prints, in hex,
# everything that comes back until the agent closes (or "timeout").
raw_socks ()
{
  local in=$1 addr=$2 hex=$3
  "$in" "$PYTHON" -c 'import socket, sys
s = socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=10)
s.sendall(bytes.fromhex(sys.argv[3]))
got = b""
try:
    while True:
        c = s.recv(4096)
        if not c:
            break
        got += c
except socket.timeout:
    print("timeout")
    sys.exit(1)
print(got.hex())' "$addr" "$listen_port" "$hex"
}

# hex_of TEXT: TEXT's bytes in hex.
hex_of ()
{
  printf '%s' "$1" | od -An -tx1 | tr -d ' \n'
}

# rfc1929 USER PASSWORD: the sub-negotiation's bytes in hex.
rfc1929 ()
{
  printf '01%02x%s%02x%s' "${#1}" "$(hex_of "$1")" "${#2}" "$(hex_of "$2")"
}

cleanup ()
{
  ph_cleanup
  if ((ns_made)); then
    ip netns del "$nsg" 2>/dev/null
    ip netns del "$nsl" 2>/dev/null
  fi
  ph_remove_tmp
}

# ---- prerequisites ----

[[ $(id -u) == 0 ]] || skip_all "needs root (network namespaces)"
ph_require ip dbus-daemon curl openssl od
[[ -x $PYTHON ]] || skip_all "$PYTHON not found"
"$PYTHON" -c 'import socks' 2>/dev/null || skip_all "PySocks (Debian's python3-socks) not found"

trap cleanup EXIT
trap 'exit 130' INT TERM

ph_make_tmp socks-auth
cat >"$tmp/pysocks-get.py" <<'EOF'
import socks, ssl, sys
host, port, origin, ca, user = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4], sys.argv[5]
password = sys.stdin.readline().rstrip("\n")
s = socks.socksocket()
s.settimeout(15)
s.set_proxy(socks.SOCKS5, host, port, rdns=True, username=user or None, password=password or None)
try:
    s.connect(("localhost", origin))
except socks.ProxyError as e:
    print("refused:", type(e).__name__, e)
    sys.exit(3)
t = ssl.create_default_context(cafile=ca).wrap_socket(s, server_hostname="localhost")
t.sendall(b"GET /hello HTTP/1.0\r\nHost: localhost\r\n\r\n")
data = b""
while True:
    chunk = t.recv(4096)
    if not chunk:
        break
    data += chunk
print(data.split(b"\r\n\r\n", 1)[1].decode(), end="")
EOF

# ---- the network: gateway <-veth-> LAN ----

ip netns add "$nsg" || bail "cannot make a network namespace"
ns_made=1
ip netns add "$nsl" || bail "cannot make a network namespace"
ip -n "$nsg" link set lo up
ip -n "$nsl" link set lo up
ip -n "$nsg" link add ph-g0 type veth peer name ph-l0 netns "$nsl" || bail "veth failed"
ip -n "$nsg" addr add "$GW_ADDR/24" dev ph-g0
ip -n "$nsl" addr add "$LAN_ADDR/24" dev ph-l0
ip -n "$nsg" link set ph-g0 up
ip -n "$nsl" link set ph-l0 up

# ---- the cloud end and the agent, in the gateway namespace ----

start_cloud ing
[[ -n ${PH_ORIGIN_HTTPS_PORT:-} ]] || bail "the cloud end has no origin"
start_session_bus ing
listen_port=$(free_port ing)
bash "$CLOUD_SCRIPT" agent-config "$tmp/cloud" "$tmp/system.conf" "$listen_port"
# In the user's file, where the agent writes socks-users: the LAN may use the listener.
cat >"$tmp/config/pinhole/pinhole.conf" <<EOF
[listener]
address=127.0.0.1:$listen_port;$GW_ADDR:$listen_port
allow=10.232.0.0/24
EOF
start_agent || bail "pinhole-agent --session did not come up"
pass "pinhole-agent runs in the gateway namespace, listening on loopback and $GW_ADDR"
wait_state on 20
verdict "the tunnel is on"

# ---- no SOCKS user: a LAN client is served as before ----

socks_curl inl "$GW_ADDR"
[[ $curl_rc == 0 && $curl_out == hello ]]
verdict "no socks-users: curl --socks5-hostname from the LAN without a password" \
  "exit $curl_rc: $curl_out"
wait_access 1 "client=$LAN_ADDR:" "status=200" "proto=socks5"
verdict_then "its access line names the LAN client" grep 'access ' "$tmp/agent.log"

# ---- pinholectl socks-user ----

alice_pw=$(openssl rand -hex 10)
bob_pw="b0b-$(openssl rand -hex 8)"
ctl --session socks-user add alice "$alice_pw"
[[ $rc == 2 ]]
verdict "socks-user add refuses a password on the command line (exit 2)" "exit $rc: $err"
ctl --session socks-user add alice --password-stdin <<<"$alice_pw"
[[ $rc == 0 ]]
verdict "socks-user add alice --password-stdin" "exit $rc: $out $err"
ctl --session socks-user add bob --password-stdin <<<"$bob_pw"
[[ $rc == 0 ]]
verdict "socks-user add bob --password-stdin" "exit $rc: $out $err"
ctl --session socks-user list
[[ $out == $'alice\nbob' ]]
verdict "socks-user list names alice and bob, nothing else" "$out"
ctl --session socks-user list --json
printf '%s' "$out" | "$PYTHON" -c 'import json, sys; assert json.load(sys.stdin) == ["alice", "bob"]'
verdict "socks-user list --json" "$out"
ctl --session get listener.socks-users
[[ $out == "alice;bob" ]]
verdict "listener.socks-users is alice;bob" "$out"
ctl --session socks-user add 'al ice' --password-stdin <<<"x"
[[ $rc != 0 ]]
verdict "a name with a space is refused" "exit $rc: $err"

# ---- a LAN client must sign in ----

before=$(squid_connects)
socks_curl inl "$GW_ADDR" "alice:$alice_pw"
[[ $curl_rc == 0 && $curl_out == hello ]]
verdict "curl --socks5-hostname alice:PASSWORD from the LAN" "exit $curl_rc: $curl_out"
wait_squid $((before + 1))
verdict_then "Squid's log shows CONNECT by name (localhost:PORT)" tail -n 3 \
  "$PH_CLOUD_SQUID_ACCESS_LOG"
socks_curl inl "$GW_ADDR" "bob:$bob_pw"
[[ $curl_rc == 0 && $curl_out == hello ]]
verdict "the second user signs in too" "exit $curl_rc: $curl_out"

no_method=$(access_lines "client=$LAN_ADDR:" "error=socks-no-method")
socks_curl inl "$GW_ADDR"
[[ $curl_rc != 0 ]]
verdict "curl from the LAN without a password is refused" "exit $curl_rc: $curl_out"
wait_access $((no_method + 1)) "client=$LAN_ADDR:" "error=socks-no-method"
verdict_then "access line error=socks-no-method" grep 'access ' "$tmp/agent.log"

auth_errors=$(access_lines "error=socks-auth")
socks_curl inl "$GW_ADDR" "alice:wrong-$alice_pw"
# curl 7.73 and later: 97 (CURLE_PROXY); before: 7.
[[ ($curl_rc == 97 || $curl_rc == 7) && $curl_out == *"rejected by the SOCKS5 server"* ]]
verdict "a wrong password: curl fails with the sign-in refused" "exit $curl_rc: $curl_out"
socks_curl inl "$GW_ADDR" "alice:$bob_pw"
[[ $curl_rc == 97 || $curl_rc == 7 ]]
verdict "another user's password is refused" "exit $curl_rc: $curl_out"
socks_curl inl "$GW_ADDR" "carol:$alice_pw"
[[ $curl_rc == 97 || $curl_rc == 7 ]]
verdict "an unknown user is refused" "exit $curl_rc: $curl_out"
wait_access $((auth_errors + 3)) "client=$LAN_ADDR:" "status=407" "error=socks-auth" "proto=socks5"
verdict_then "three access lines error=socks-auth" grep 'access ' "$tmp/agent.log"

got=$(raw_socks inl "$GW_ADDR" "050102$(rfc1929 alice "x$alice_pw")")
[[ $got == 05020101 ]]
verdict "a wrong password gets RFC 1929's failure (01 01), then the end" "got $got"
get_hello=$(hex_of $'GET /hello HTTP/1.0\r\nHost: localhost\r\n\r\n')
got=$(raw_socks inl "$GW_ADDR" "050102$(rfc1929 alice "$alice_pw")0501000309$(hex_of localhost)$(printf '%04x' "$PH_ORIGIN_HTTP_PORT")$get_hello")
[[ $got == 0502010005000001000000000000* && $got == *"$(hex_of $'\r\n\r\nhello\n')" ]]
verdict "the right one: 01 00, the request's 05 00, then the origin's answer" "got ${got:0:60}…"

# ---- PySocks ----

pysocks inl "$GW_ADDR" alice "$alice_pw"
[[ $py_rc == 0 && $py_out == hello ]]
verdict "PySocks with alice's password: an HTTPS GET through socks5h" "exit $py_rc: $py_out"
pysocks inl "$GW_ADDR"
[[ $py_rc == 3 && $py_out == refused:* ]]
verdict "PySocks without credentials is refused" "exit $py_rc: $py_out"
pysocks inl "$GW_ADDR" alice "nope"
[[ $py_rc == 3 && $py_out == *"SOCKS5 authentication failed"* ]]
verdict "PySocks with a wrong password: SOCKS5 authentication failed" "exit $py_rc: $py_out"

# ---- a loopback client needs no password ----

socks_curl ing 127.0.0.1
[[ $curl_rc == 0 && $curl_out == hello ]]
verdict "loopback: curl without a password" "exit $curl_rc: $curl_out"
pysocks ing 127.0.0.1
[[ $py_rc == 0 && $py_out == hello ]]
verdict "loopback: PySocks without credentials" "exit $py_rc: $py_out"
pysocks ing 127.0.0.1 alice "not-checked"
[[ $py_rc == 0 && $py_out == hello ]]
verdict "loopback: PySocks offering 00 and 02 is let in without the check" "exit $py_rc: $py_out"
# Offering 0x02 alone: the credentials are checked.
got=$(raw_socks ing 127.0.0.1 "050102$(rfc1929 bob "$bob_pw")0501000309$(hex_of localhost)$(printf '%04x' "$PH_ORIGIN_HTTP_PORT")$get_hello")
[[ $got == 0502010005000001000000000000* && $got == *"$(hex_of $'\r\n\r\nhello\n')" ]]
verdict "loopback offering only 02: bob's password accepted (01 00), then the tunnel" \
  "got ${got:0:60}…"
got=$(raw_socks ing 127.0.0.1 "050102$(rfc1929 bob "$alice_pw")")
[[ $got == 05020101 ]]
verdict "loopback offering only 02: a wrong password refused (01 01)" "got $got"

# ---- malformed sub-negotiations ----

for bad in 020161017a 0100017a 05010002 ff; do
  got=$(raw_socks inl "$GW_ADDR" "050102$bad")
  [[ $got == 05020101 ]]
  verdict "malformed sub-negotiation $bad: 01 01, then the end" "got $got"
done
got=$(raw_socks inl "$GW_ADDR" "050100")
[[ $got == 05ff ]]
verdict "a LAN client offering only 00 hears 05 ff" "got $got"
socks4a="0401$(printf '%04x' "$PH_ORIGIN_HTTP_PORT")00000001$(hex_of alice)00$(hex_of localhost)00"
socks4_refused=$(access_lines "client=$LAN_ADDR:" "error=socks-auth" "proto=socks4")
got=$(raw_socks inl "$GW_ADDR" "$socks4a")
[[ $got == 005b000000000000 ]]
verdict "a LAN SOCKS4a client, which has no password, is refused (00 5b)" "got $got"
wait_access $((socks4_refused + 1)) "client=$LAN_ADDR:" "error=socks-auth" "proto=socks4"
verdict_then "its access line says error=socks-auth proto=socks4" grep 'access ' "$tmp/agent.log"
got=$(raw_socks ing 127.0.0.1 "$socks4a$get_hello")
[[ $got == 005a000000000000* && $got == *"$(hex_of $'\r\n\r\nhello\n')" ]]
verdict "a loopback SOCKS4a client is served" "got ${got:0:40}…"
socks_curl inl "$GW_ADDR" "alice:$alice_pw"
[[ $curl_rc == 0 && $curl_out == hello ]]
verdict "the agent keeps serving after them" "exit $curl_rc: $curl_out"

# ---- the passwords are loaded again at a restart ----

stop_agent
((agent_status == 0))
verdict "the agent stops cleanly" "exit status $agent_status"
start_agent || bail "pinhole-agent --session did not come up again"
wait_state on 20
socks_curl inl "$GW_ADDR" "alice:$alice_pw"
[[ $curl_rc == 0 && $curl_out == hello ]]
verdict "after a restart: alice signs in with the stored password" "exit $curl_rc: $curl_out"

# ---- removing ----

ctl --session socks-user remove bob
[[ $rc == 0 ]]
verdict "socks-user remove bob" "exit $rc: $err"
ctl --session socks-user list
[[ $out == alice ]]
verdict "socks-user list: alice" "$out"
socks_curl inl "$GW_ADDR" "bob:$bob_pw"
[[ $curl_rc == 97 || $curl_rc == 7 ]]
verdict "bob cannot sign in any more" "exit $curl_rc: $curl_out"
ctl --session socks-user remove bob
[[ $rc != 0 && $err == *bob* ]]
verdict "removing bob again fails and says why" "exit $rc: $err"
ctl --session socks-user remove alice
[[ $rc == 0 ]]
verdict "socks-user remove alice" "exit $rc: $err"
ctl --session get listener.socks-users
[[ -z $out ]]
verdict "listener.socks-users is empty" "'$out'"
socks_curl inl "$GW_ADDR"
[[ $curl_rc == 0 && $curl_out == hello ]]
verdict "no socks-users again: the LAN client is served without a password" \
  "exit $curl_rc: $curl_out"

# ---- no password in a log or a configuration file ----

for pw in "$alice_pw" "$bob_pw"; do
  ! grep -rqF -- "$pw" "$tmp/agent.log" "$tmp/agent.out" "$tmp/config" "$tmp/system.conf" \
    "$tmp/managed.d"
  verdict "a SOCKS password is in neither the agent's log nor a configuration file"
done
! grep -qF -- "$(hex_of "$alice_pw")" "$tmp/agent.log"
verdict "nor in hex"

kill -0 "$agent_pid" 2>/dev/null
verdict "the agent is still running"
tap_done

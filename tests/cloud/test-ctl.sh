#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-or-later
# test-ctl.sh: pinholectl end to end, TAP output: the real pinhole-agent in --session mode on a
# private dbus-daemon, in front of the real cloud end (stunnel + Squid + ph-test-origin).
#
# Environment (set by tests/cloud/meson.build): PINHOLECTL, PH_AGENT, PH_SRCDIR, PH_TEST_ORIGIN.
# Under CI=true a missing dbus-daemon, stunnel or Squid fails the test; otherwise it is skipped.

set -uo pipefail

CTL=${PINHOLECTL:?PINHOLECTL must name the pinholectl binary}
AGENT=${PH_AGENT:?PH_AGENT must name the pinhole-agent binary}
SRCDIR=${PH_SRCDIR:-$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)}

# shellcheck source=tests/tap.sh
source "$(dirname "${BASH_SOURCE[0]}")/../tap.sh"
# shellcheck source=tests/ph-test-lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/../ph-test-lib.sh"

dump_logs ()
{
  dump_files agent.log
}

# ---- running pinholectl ----

# expect_rc WANT DESCRIPTION ARGS...: runs pinholectl and checks its exit status.
expect_rc ()
{
  local want=$1 what=$2
  shift 2
  ctl "$@"
  if [[ $rc == "$want" ]]; then
    pass "$what"
  else
    fail "$what" "pinholectl $* exited $rc, wanted $want" "stdout: $out" "stderr: $err"
  fi
}

# json_check DESCRIPTION PYTHON-EXPR: evaluates EXPR with d = the JSON in $out.
json_check ()
{
  local what=$1 expr=$2 result
  if result=$(printf '%s' "$out" | python3 -c '
import json, sys
d = json.load(sys.stdin)
env = dict(d=d, pin=sys.argv[2], port=sys.argv[3])
if not eval("(" + sys.argv[1] + ")", env):
    print("false: " + sys.argv[1])
    sys.exit(1)
' "$expr" "${PH_CLOUD_PIN:-}" "${listen_port:-}" 2>&1); then
    pass "$what"
  else
    fail "$what" "$result" "json: $out"
  fi
}

# Everything after a crash of the agent would fail for that one reason.
agent_alive ()
{
  kill -0 "$agent_pid" 2>/dev/null && return 0
  wait "$agent_pid" 2>/dev/null
  bail "pinhole-agent exited (status $?) before the '$1' tests"
}

# stop_agent, as a test: the agent exits 0 on SIGTERM.
stop_agent_ok ()
{
  stop_agent
  if ((agent_status == 0)); then
    pass "pinhole-agent exits 0 on SIGTERM ($1)"
  else
    fail "pinhole-agent exits 0 on SIGTERM ($1)" "exit status $agent_status" \
      "$(tail -n 40 "$tmp/agent.log")"
  fi
}

cleanup ()
{
  ph_cleanup
  ph_remove_tmp
}

port_refuses ()
{
  ! (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}

# ---- prerequisites ----

ph_require dbus-daemon python3 curl openssl setsid

trap cleanup EXIT
trap 'exit 130' INT TERM

ph_make_tmp ctl
# The system file and IT's drop-ins are the test's own, not the machine's; IT locks one key.
printf '# no system-wide settings\n' >"$tmp/system.conf"
printf '[tunnel]\nmax-tunnels=512\n' >"$tmp/managed.d/50-it.conf"
start_session_bus

start_cloud
password=$(<"$PH_CLOUD_PASSWORD_FILE")
listen_port=$(free_port)

# ---- without an agent ----

expect_rc 2 "an unknown command is a usage error (2)" frobnicate
[[ $err == "pinholectl: "* ]]
verdict "usage errors are reported as 'pinholectl: ...'" "stderr: $err"
expect_rc 2 "a missing argument is a usage error (2)" --session get
expect_rc 2 "a password on the command line is refused (2)" --session set-credentials alice secret
expect_rc 2 "an option of another command is a usage error (2)" --session enable --json
expect_rc 0 "--help exits 0" --help
[[ $out == *"Exit status"* ]]
verdict "--help documents the exit codes" "$out"
expect_rc 3 "no agent on the bus: not reachable (3)" --session status
[[ $err == *"not running"* ]]
verdict "no agent: the message says it is not running" "stderr: $err"
expect_rc 3 "no owner by default (no system bus, no agent on the session bus): 3" status
bus_address_saved=$bus_address
bus_address="unix:path=$tmp/no-such-bus"
expect_rc 3 "no bus at all: not reachable (3)" --session status
bus_address=$bus_address_saved
# A stand-in journalctl shows what pinholectl runs and that its status is passed on.
mkdir -p "$tmp/bin"
printf '#!/bin/sh\necho "$*"\nexit 3\n' >"$tmp/bin/journalctl"
chmod +x "$tmp/bin/journalctl"
PATH=$tmp/bin:$PATH expect_rc 3 "logs exits with journalctl's status" --session logs -n 7 -f
[[ $out == "--no-pager -o short-iso -n 7 --user-unit pinhole-agent.service -f" ]]
verdict "logs --session reads the user unit's journal" "ran: journalctl $out"
PATH=$tmp/bin:$PATH expect_rc 3 "logs --system" --system logs
[[ $out == "--no-pager -o short-iso -n 50 -u pinhole-agent.service" ]]
verdict "logs --system reads the system unit's journal" "ran: journalctl $out"
PATH=/nonexistent expect_rc 1 "logs without journalctl fails (1)" --session logs -n 5
[[ $err == *journalctl* ]]
verdict "logs without journalctl says so" "stderr: $err"

# ---- the agent, unconfigured ----

start_agent || bail "pinhole-agent --session did not come up on the bus"
pass "pinhole-agent --session owns org.pinhole.Agent"

expect_rc 0 "status" --session status
[[ $out == *State:* && $out == *Upstream:* ]]
verdict "status shows state and upstream" "$out"
expect_rc 0 "status --json" --session status --json
json_check "status --json has every property" 'all(k in d for k in ("version", "mode", "state",
  "enabled", "last_error", "upstream", "upstreams", "listeners", "active_tunnels", "bytes_up", "bytes_down",
  "seen_pin", "trusted_pins", "username", "credentials_stored", "locked_keys", "portal_url"))
  and set(d["last_error"]) == {"name", "message"}'
json_check "status --json: session mode, nothing configured" 'd["mode"] == "session"
  and d["upstream"] == "" and isinstance(d["bytes_up"], int) and isinstance(d["enabled"], bool)
  and (d["state"] == "off" or d["last_error"]["name"] == "org.pinhole.Error.NotConfigured")'
expect_rc 0 "the default bus is the session bus when no system agent runs" status --json
expect_rc 0 "--address reaches the agent through a bus address" --address "$bus_address" status

expect_rc 8 "enable without upstream.host: not configured (8)" --session enable
[[ $err == "pinholectl: "* && $err != *GDBus.Error* ]]
verdict "the agent's message, without the D-Bus error prefix" "stderr: $err"

agent_alive "settings"

# ---- settings ----

expect_rc 0 "set upstream.host" --session set upstream.host 127.0.0.1
expect_rc 0 "set upstream.port" --session set upstream.port "$PH_CLOUD_TLS_PORT"
expect_rc 0 "set upstream.server-name" --session set upstream.server-name "$PH_CLOUD_SERVER_NAME"
expect_rc 0 "set listener.address" --session set listener.address "127.0.0.1:$listen_port"
expect_rc 0 "get upstream.port" --session get upstream.port
[[ $out == "$PH_CLOUD_TLS_PORT" ]]
verdict "get prints just the value" "got '$out'"
expect_rc 0 "get --json" --session get upstream.host --json
json_check "get --json: key, value, locked" \
  'd == {"key": "upstream.host", "value": "127.0.0.1", "locked": False}'
expect_rc 0 "settings" --session settings
grep -Eq "^upstream\.server-name +$PH_CLOUD_SERVER_NAME( |\$)" <<<"$out"
verdict "settings shows a table row per key" "$out"
expect_rc 0 "settings --json" --session settings --json
json_check "settings --json: key, value, default, locked" 'any(s["key"] == "listener.address"
  and s["value"] == "127.0.0.1:" + port and s["locked"] is False and "default" in s for s in d)'
expect_rc 0 "status shows the upstream" --session status --json
json_check "Upstream is host:port" "d['upstream'] == '127.0.0.1:$PH_CLOUD_TLS_PORT'"
conf=$tmp/config/pinhole/pinhole.conf
conf_text=$(cat "$conf" 2>&1)
grep -q "^server-name=$PH_CLOUD_SERVER_NAME" <<<"$conf_text"
verdict "set saves to \$XDG_CONFIG_HOME/pinhole/pinhole.conf" "$conf_text"

expect_rc 6 "a bad value: invalid setting (6)" --session set upstream.port notaport
[[ $err == "pinholectl: "*upstream.port* && $err != *GDBus.Error* ]]
verdict "the bad value's message names the key" \
  "stderr: $err"
expect_rc 0 "the bad value was not applied" --session get upstream.port
[[ $out == "$PH_CLOUD_TLS_PORT" ]]
verdict "upstream.port unchanged" "got '$out'"
expect_rc 6 "get of an unknown key: 6" --session get no.such-key
expect_rc 6 "set of an unknown key: 6" --session set no.such-key 1
expect_rc 0 "set KEY '' resets to the default" --session set log.level ""

expect_rc 0 "get of a key IT locked" --session get tunnel.max-tunnels --json
json_check "get --json says it is locked" 'd["value"] == "512" and d["locked"] is True'
expect_rc 5 "set of a key IT locked: locked (5)" --session set tunnel.max-tunnels 100
expect_rc 0 "status lists the locked key" --session status --json
json_check "LockedKeys" 'd["locked_keys"] == ["tunnel.max-tunnels"]'

cp "$conf" "$tmp/pinhole.conf.good"
printf '[tunnel]\nidle-timeout=soon\n' >>"$conf"
expect_rc 6 "reload of a broken file: invalid config (6)" --session reload
[[ $err == *pinhole.conf:* ]]
verdict "the reload error names the file and line" "stderr: $err"
cp "$tmp/pinhole.conf.good" "$conf"
expect_rc 0 "reload of the repaired file" --session reload

agent_alive "the pin"

# ---- the pin ----

closed_port=$(free_port)
expect_rc 0 "point the upstream at a closed port" --session set upstream.port "$closed_port"
expect_rc 7 "pin show against a closed port: cloud proxy unreachable (7)" --session pin show
expect_rc 0 "point the upstream back" --session set upstream.port "$PH_CLOUD_TLS_PORT"

expect_rc 0 "pin show" --session pin show
[[ $out == *"$PH_CLOUD_PIN"* && $out == *"$PH_CLOUD_SERVER_NAME"* ]]
verdict "pin show prints the pin and the subject" \
  "$out"
expect_rc 0 "pin show --json" --session pin show --json
json_check "pin show --json: the cloud's pin, its certificate, not yet trusted" 'd["pin"] == pin
  and d["chain"][0]["pin"] == pin and "pinhole-cloud.test" in d["chain"][0]["subject"]
  and isinstance(d["chain"][0]["not_after"], int) and d["info"]["pin_trusted"] is False
  and d["info"]["server_name"] == "pinhole-cloud.test"'

ctl_no_tty ()
{
  out=$(DBUS_SESSION_BUS_ADDRESS=$bus_address setsid -w "$CTL" "$@" </dev/null 2>"$tmp/ctl.err")
  rc=$?
  err=$(<"$tmp/ctl.err")
  return "$rc"
}
ctl_no_tty --session pin trust
[[ $rc == 2 ]]
verdict "pin trust with no terminal and no --yes refuses (2)" "exit $rc" "stderr: $err"
[[ $err == *--yes* ]]
verdict "the refusal names --yes" "$err"
expect_rc 0 "the refusal trusted nothing" --session status --json
json_check "TrustedPins still empty" 'd["trusted_pins"] == []'

expect_rc 0 "pin trust --yes" --session pin trust --yes
[[ $out == *"$PH_CLOUD_PIN"* && $out == *"$PH_CLOUD_SERVER_NAME"* ]]
verdict "pin trust shows what it trusts" "$out"
expect_rc 0 "status after trusting" --session status --json
json_check "TrustedPins holds the cloud's pin" 'd["trusted_pins"] == [pin]'
expect_rc 0 "pin trust --yes again" --session pin trust --yes
[[ $out == *"already trusted"* ]]
verdict "a trusted pin is reported as such" "$out"
expect_rc 6 "pin trust of a malformed pin: 6" --session pin trust --yes sha256//nonsense

agent_alive "credentials"

# ---- credentials ----

out=$(printf '%s\n' "$password" | DBUS_SESSION_BUS_ADDRESS=$bus_address \
  "$CTL" --session set-credentials "$PH_CLOUD_USER" --password-stdin 2>"$tmp/ctl.err")
rc=$?
err=$(<"$tmp/ctl.err")
[[ $rc == 0 ]]
verdict "set-credentials --password-stdin" "exit $rc" "stderr: $err"
expect_rc 0 "status after set-credentials" --session status --json
json_check "credentials stored for the user" "d['credentials_stored'] is True
  and d['username'] == '$PH_CLOUD_USER'"

# Again through a fifo held open, to look at pinholectl while it waits for the password.
mkfifo "$tmp/password.fifo"
exec 7<>"$tmp/password.fifo"
DBUS_SESSION_BUS_ADDRESS=$bus_address "$CTL" --session set-credentials "$PH_CLOUD_USER" \
  --password-stdin <"$tmp/password.fifo" >"$tmp/ctl-fifo.out" 2>&1 &
ctl_pid=$!
sleep 0.5
if kill -0 "$ctl_pid" 2>/dev/null; then
  if grep -qF -- "$password" "/proc/$ctl_pid/cmdline" "/proc/$ctl_pid/environ" 2>/dev/null; then
    fail "the password is not in pinholectl's command line or environment"
  else
    pass "the password is not in pinholectl's command line or environment"
  fi
else
  fail "pinholectl waits for the password on stdin" "$(cat "$tmp/ctl-fifo.out")"
fi
printf '%s\r\n' "$password" >&7
exec 7>&-
wait "$ctl_pid"
rc=$?
fifo_out=$(<"$tmp/ctl-fifo.out")
[[ $rc == 0 ]]
verdict "set-credentials reads a CRLF line from a fifo" "exit $rc" "$fifo_out"

agent_alive "on and off"

# ---- on and off ----

expect_rc 0 "enable" --session enable
if msg=$(wait_state on 20); then
  pass "state becomes on"
else
  ctl --session status
  fail "state becomes on" "$msg" "$out"
fi
expect_rc 0 "status when on" --session status --json
json_check "listeners are open, the seen pin is the trusted one" 'd["enabled"] is True
  and d["listeners"] == ["127.0.0.1:" + port] and d["seen_pin"] == pin
  and d["last_error"]["name"] == ""'

body=$(curl -sS --max-time 20 --proxy "http://127.0.0.1:$listen_port" --cacert "$PH_ORIGIN_CA" \
  "https://127.0.0.1:$PH_ORIGIN_HTTPS_PORT/hello" 2>&1)
[[ $body == hello ]]
verdict "HTTPS through the agent after enable" "curl: $body"
body=$(curl -sS --max-time 20 --proxy "http://127.0.0.1:$listen_port" \
  "http://127.0.0.1:$PH_ORIGIN_HTTP_PORT/bytes/5000" 2>&1 | wc -c)
[[ $body == 5000 ]]
verdict "plain HTTP through the agent" "got $body bytes"
counted=false
for ((i = 0; i < 50; i++)); do
  down=$(status_field bytes_down) && [[ $down =~ ^[0-9]+$ ]] && ((down >= 5000)) && {
    counted=true
    break
  }
  sleep 0.1
done
$counted
verdict "BytesDown counts the traffic" "$down"
# A second plain request from another process rides the connection the first left idle.
body=$(curl -sS --max-time 20 --proxy "http://127.0.0.1:$listen_port" \
  "http://127.0.0.1:$PH_ORIGIN_HTTP_PORT/bytes/100" 2>&1 | wc -c)
[[ $body == 100 ]]
verdict "a second plain request" "got $body bytes"
expect_rc 0 "status --json with the pools' counters" --session status --json
json_check "status --json counts connections to the cloud and reuse" '
  set(d["cloud_connections"]) == {"made", "handshakes_resumed", "handshakes_full",
    "requests_on_idle", "requests_on_warm", "requests_waiting_for_new", "requests_sent_again",
    "idle_now", "warm_now", "h2_made", "h2_streams", "h2_streams_sent_again", "h2_now",
    "h2_streams_now"}
  and d["cloud_connections"]["h2_made"] == 0 and d["cloud_connections"]["h2_streams"] == 0
  and d["cloud_connections"]["made"] >= 2
  and d["cloud_connections"]["handshakes_resumed"] + d["cloud_connections"]["handshakes_full"]
    == d["cloud_connections"]["made"]
  and d["cloud_connections"]["requests_on_idle"] >= 1 and d["cloud_connections"]["idle_now"] >= 1'
expect_rc 0 "status with the pools' counters" --session status
[[ $out == *"Cloud connections:"*"resumed"*"requests on kept-alive ones"* ]]
verdict "status shows the cloud connections" "$out"

# ---- seeing what goes through: connections ----

expect_rc 0 "connections --json" --session connections --json
json_check "connections --json: an array" 'isinstance(d, list)'
# A client that holds a CONNECT tunnel to the origin open and asks for 2000 bytes through it
# every 0.2 s until $tmp/tunnel.stop appears; it prints its own address first.
rm -f "$tmp/tunnel.stop"
python3 -u - "$listen_port" "$PH_ORIGIN_HTTP_PORT" "$tmp/tunnel.stop" >"$tmp/tunnel.out" 2>&1 <<'PY' &
import os, socket, sys, time
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])))
print("%s:%d" % s.getsockname(), flush=True)
target = "127.0.0.1:" + sys.argv[2]
s.sendall(("CONNECT %s HTTP/1.1\r\nHost: %s\r\n\r\n" % (target, target)).encode())
head = b""
while b"\r\n\r\n" not in head:
    head += s.recv(1)
assert head.startswith(b"HTTP/1.1 200"), head
print("tunnel open", flush=True)
while not os.path.exists(sys.argv[3]):
    s.sendall(("GET /bytes/2000 HTTP/1.1\r\nHost: %s\r\n\r\n" % target).encode())
    got = b""
    while b"\r\n\r\n" not in got or len(got.split(b"\r\n\r\n", 1)[1]) < 2000:
        chunk = s.recv(65536)
        if not chunk:
            sys.exit("closed by the agent")
        got += chunk
    time.sleep(0.2)
s.close()
print("closed", flush=True)
PY
tunnel_pid=$!
for ((i = 0; i < 100; i++)); do
  grep -q "tunnel open" "$tmp/tunnel.out" && break
  sleep 0.1
done
tunnel_client=$(head -n 1 "$tmp/tunnel.out")
grep -q "tunnel open" "$tmp/tunnel.out"
verdict "a client holds a CONNECT tunnel through the agent" "$(cat "$tmp/tunnel.out")"
sleep 0.5
expect_rc 0 "connections --json with a tunnel open" --session connections --json
json_check "the tunnel is listed: its client, target, route=proxy, the cloud proxy, tunnel" "
  any(c['client'] == '$tunnel_client' and c['target'] == '127.0.0.1:$PH_ORIGIN_HTTP_PORT'
      and c['route'] == 'proxy' and c['proxy'] == '127.0.0.1:$PH_CLOUD_TLS_PORT'
      and c['proto'] == 'http' and c['state'] == 'tunnel' and c['bytes_down'] > 0
      and c['bytes_up'] > 0 for c in d)"
first_down=$(printf '%s' "$out" | python3 -c "
import json, sys
print(([c['bytes_down'] for c in json.load(sys.stdin) if c['client'] == '$tunnel_client'] + [0])[0])")
sleep 1.5
expect_rc 0 "connections --json a moment later" --session connections --json
json_check "its bytes grow while it is open, and it has an age" "
  [c['bytes_down'] > $first_down and c['bytes_up'] > 0 and c['age_seconds'] >= 1
   for c in d if c['client'] == '$tunnel_client'] == [True]"
expect_rc 0 "connections as a table" --session connections
[[ $out == *CLIENT*TARGET*ROUTE*"CLOUD PROXY"*UP*DOWN*AGE* &&
  $out == *"$tunnel_client"*"127.0.0.1:$PH_ORIGIN_HTTP_PORT"*proxy*"127.0.0.1:$PH_CLOUD_TLS_PORT"* ]]
verdict "the table shows the tunnel's client, target, route and cloud proxy" "$out"
touch "$tmp/tunnel.stop"
wait "$tunnel_pid"
gone=false
for ((i = 0; i < 50; i++)); do
  ctl --session connections --json
  [[ $rc == 0 ]] && ! printf '%s' "$out" | grep -qF "\"$tunnel_client\"" && {
    gone=true
    break
  }
  sleep 0.1
done
$gone
verdict "once the client closes, the tunnel is no longer listed" "$out"

# ---- the support report ----

# The journal as a stand-in journalctl serves it, with lines that carry credentials the way a
# debug log, a pasted header or a URL could.
basic=$(printf '%s:%s' "$PH_CLOUD_USER" "$password" | base64 -w0)
{
  printf '#!/bin/sh\necho "args: $*"\n'
  printf 'echo "2026-01-01T00:00:00+0000 host pinhole-agent[1]: Proxy-Authorization: Basic %s"\n' \
    "$basic"
  printf 'echo "2026-01-01T00:00:01+0000 host pinhole-agent[1]: token Basic %s seen"\n' "$basic"
  printf 'echo "2026-01-01T00:00:02+0000 host pinhole-agent[1]: url http://%s:%s@proxy.example/"\n' \
    "$PH_CLOUD_USER" "$password"
  printf 'echo "2026-01-01T00:00:03+0000 host pinhole-agent[1]: password=%s"\n' "$password"
} >"$tmp/bin/journalctl"
chmod +x "$tmp/bin/journalctl"
PATH=$tmp/bin:$PATH expect_rc 0 "report FILE" --session report "$tmp/report.txt"
report=$(cat "$tmp/report.txt" 2>/dev/null)
missing=""
for sec in status statistics settings connections doctor "log (last 500 lines)"; do
  [[ $report == *"== $sec =="* ]] || missing+="$sec; "
done
[[ -z $missing ]]
verdict "the report has each section" "missing: $missing"
[[ $report == *"args: --no-pager -o short-iso -n 500 --user-unit pinhole-agent.service"* ]]
verdict "the report's log is the session agent's journal, 500 lines" "$report"
[[ $report == *"State: on"* && $report == *"tunnel.max-tunnels = 512  [locked]"* &&
  $report == *"listener.address = 127.0.0.1:$listen_port  [set]"* &&
  $report == *"upstream.failover = priority  [default]"* ]]
verdict "the report has the status and each setting with its source and lock" "$report"
[[ $report == *$'\nok: true\n'* || $report == *$'\nok: false\n'* ]]
verdict "the report has the doctor's result" "$report"
if grep -qF -e "$password" -e "$basic" "$tmp/report.txt"; then
  fail "the report holds neither the password nor base64(user:password)" \
    "$(grep -nF -e "$password" -e "$basic" "$tmp/report.txt")"
else
  pass "the report holds neither the password nor base64(user:password)"
fi
[[ $report == *"Proxy-Authorization: [redacted]"* && $report == *"$PH_CLOUD_USER:[redacted]@"* ]]
verdict "the report says what it redacted" "$(grep -n redacted "$tmp/report.txt")"
[[ $(stat -c %a "$tmp/report.txt") == 600 ]]
verdict "the report is private to its owner (0600)" "$(stat -c %a "$tmp/report.txt")"
# An agent started by hand: its log file is named after the report's.
expect_rc 0 "report FILE LOGFILE" --session report "$tmp/report2.txt" "$tmp/agent.log"
grep -q "control interface ready" "$tmp/report2.txt" && ! grep -qF -- "$password" "$tmp/report2.txt"
verdict "report with LOGFILE carries that file's last lines" "$(tail -n 5 "$tmp/report2.txt")"

# ---- two cloud proxies, the first one's port closed: it is down, the second is in use ----

dead_port=$(free_port)
expect_rc 0 "set two cloud proxies" --session set upstream.host \
  "127.0.0.1:$dead_port; 127.0.0.1:$PH_CLOUD_TLS_PORT"
body=$(curl -sS --max-time 20 --proxy "http://127.0.0.1:$listen_port" \
  "http://127.0.0.1:$PH_ORIGIN_HTTP_PORT/bytes/300" 2>&1 | wc -c)
[[ $body == 300 ]]
verdict "a request fails over from the closed port to the second proxy" "got $body bytes"
expect_rc 0 "status --json with two proxies" --session status --json
json_check "Upstreams: the first down with its error and retry time, the second up and in use" "
  [u['name'] for u in d['upstreams']] == ['127.0.0.1:$dead_port', '127.0.0.1:$PH_CLOUD_TLS_PORT']
  and d['upstreams'][0]['state'] == 'down' and d['upstreams'][0]['in_use'] is False
  and d['upstreams'][0]['error'] == 'org.pinhole.Error.UpstreamUnreachable'
  and d['upstreams'][0]['retry_at'] > 0
  and d['upstreams'][1]['state'] == 'up' and d['upstreams'][1]['in_use'] is True
  and d['upstreams'][1]['addresses'] == ['127.0.0.1']
  and d['upstream'] == '127.0.0.1:$PH_CLOUD_TLS_PORT' and d['state'] == 'on'"
expect_rc 0 "status with two proxies" --session status
[[ $out == *"Cloud proxies:"*"127.0.0.1:$dead_port  down, retry at "*"127.0.0.1:$PH_CLOUD_TLS_PORT  up (in use)"* ]]
verdict "status shows each proxy's health" "$out"
expect_rc 0 "back to one cloud proxy" --session set upstream.host 127.0.0.1

expect_rc 6 "a bad value while on: 6" --session set listener.address "not an address"
expect_rc 0 "reload" --session reload
expect_rc 0 "still on after reload" --session status --json
json_check "reload keeps the state" 'd["enabled"] is True and d["state"] in ("on", "connecting")'

expect_rc 0 "disable" --session disable
expect_rc 0 "status when off" --session status --json
json_check "disable: state off, no listeners" 'd["state"] == "off" and d["enabled"] is False
  and d["listeners"] == []'
port_refuses "$listen_port"
verdict "the listener port refuses connections when off"

agent_alive "permissions"

# ---- permissions: on the session bus only the agent's own user may change things ----

if [[ $(id -u) == 0 ]] && command -v runuser >/dev/null && id nobody >/dev/null 2>&1 &&
  runuser -u nobody -- test -x "$CTL"; then
  out=$(runuser -u nobody -- env DBUS_SESSION_BUS_ADDRESS="$bus_address" "$CTL" --session \
    set upstream.port 1 2>&1)
  rc=$?
  [[ $rc == 4 ]]
verdict "another user's change: permission denied (4)" "exit $rc" "$out"
else
  skip "another user's change: permission denied (4)" "needs root, runuser and user nobody"
fi

agent_alive "SOCKS users"

# ---- SOCKS users: the password in the secret store, the name in listener.socks-users ----

socks_password=$(openssl rand -hex 12)
expect_rc 2 "socks-user add with a password on the command line is refused (2)" \
  --session socks-user add carol "$socks_password"
expect_rc 2 "socks-user without add, remove or list is a usage error (2)" --session socks-user
ctl --session socks-user add carol --password-stdin <<<"$socks_password"
[[ $rc == 0 && $out == *carol* ]]
verdict "socks-user add carol --password-stdin" "exit $rc" "$out" "stderr: $err"
expect_rc 0 "socks-user list" --session socks-user list
[[ $out == carol ]]
verdict "socks-user list names carol" "$out"
expect_rc 0 "socks-user list --json" --session socks-user list --json
json_check "socks-user list --json is the list of names" "d == ['carol']"
expect_rc 0 "get listener.socks-users" --session get listener.socks-users
[[ $out == carol ]]
verdict "listener.socks-users is carol" "$out"
grep -q '^socks-users=carol$' "$tmp/config/pinhole/pinhole.conf"
verdict_then "the name is in the user's configuration file" cat "$tmp/config/pinhole/pinhole.conf"
if grep -rqF -- "$socks_password" "$tmp/config" "$tmp/system.conf" "$tmp/agent.log" \
  "$tmp/agent.out"; then
  fail "the SOCKS password is neither in a configuration file nor in the agent's log"
else
  pass "the SOCKS password is neither in a configuration file nor in the agent's log"
fi
ctl --session socks-user add carol --password-stdin <<<""
[[ $rc == 2 && $err == *empty* ]]
verdict "an empty SOCKS password is refused (2)" "exit $rc" "stderr: $err"
expect_rc 6 "an invalid SOCKS user name: invalid setting (6)" \
  --session socks-user add 'carol;dave' --password-stdin <<<"$socks_password"
if [[ $(id -u) == 0 ]] && command -v runuser >/dev/null && id nobody >/dev/null 2>&1 &&
  runuser -u nobody -- test -x "$CTL"; then
  out=$(printf 'x\n' | runuser -u nobody -- env DBUS_SESSION_BUS_ADDRESS="$bus_address" "$CTL" \
    --session socks-user add eve --password-stdin 2>&1)
  rc=$?
  [[ $rc == 4 ]]
  verdict "another user's socks-user add: permission denied (4)" "exit $rc" "$out"
else
  skip "another user's socks-user add: permission denied (4)" "needs root, runuser and user nobody"
fi
# On a terminal: asked twice, not echoed (pinholectl on a pty of its own, as a person types).
tty_out=$(DBUS_SESSION_BUS_ADDRESS=$bus_address python3 - "$CTL" "$socks_password" <<'PY' 2>&1
import os, pty, select, sys, termios, time
ctl, password = sys.argv[1], sys.argv[2]
pid, fd = pty.fork()
if pid == 0:
    os.execv(ctl, [ctl, "--session", "socks-user", "add", "dave"])
seen = b""
def wait_for(text):
    global seen
    deadline = time.time() + 30
    while text not in seen:
        left = deadline - time.time()
        if left <= 0 or not select.select([fd], [], [], left)[0]:
            sys.exit("no %r in %r" % (text, seen))
        try:
            chunk = os.read(fd, 1024)
        except OSError:
            chunk = b""
        if not chunk:
            sys.exit("the end before %r in %r" % (text, seen))
        seen += chunk
# Typing only once echo is off: pinholectl turns it off after its prompt, and drops what was
# typed before (TCSAFLUSH), as getpass does.
def type_secret():
    deadline = time.time() + 30
    while termios.tcgetattr(fd)[3] & termios.ECHO:
        if time.time() > deadline:
            sys.exit("echo never turned off")
        time.sleep(0.01)
    os.write(fd, password.encode() + b"\n")
wait_for(b"Password for dave: ")
type_secret()
wait_for(b"Repeat the password: ")
type_secret()
wait_for(b"stored.")
_, status = os.waitpid(pid, 0)
print(seen.decode(errors="replace").replace("\r", ""))
print("exit", os.waitstatus_to_exitcode(status))
PY
)
[[ $tty_out == *"exit 0" && $tty_out == *"SOCKS user dave stored."* && $tty_out != *"$socks_password"* ]]
verdict "socks-user add on a terminal: asked twice, never echoed" "$tty_out"
expect_rc 0 "socks-user list after the terminal" --session socks-user list
[[ $out == $'carol\ndave' ]]
verdict "socks-user list names carol and dave" "$out"
expect_rc 0 "socks-user remove dave" --session socks-user remove dave
expect_rc 0 "socks-user remove carol" --session socks-user remove carol
expect_rc 0 "socks-user list after remove" --session socks-user list
[[ -z $out ]]
verdict "socks-user list is empty after remove" "'$out'"
expect_rc 6 "removing an unknown SOCKS user: invalid setting (6)" \
  --session socks-user remove carol

expect_rc 0 "clear-credentials" --session clear-credentials
expect_rc 0 "status after clear-credentials" --session status --json
json_check "credentials gone, user name kept" "d['credentials_stored'] is False
  and d['username'] == '$PH_CLOUD_USER'"

agent_alive "where the password must not be"

# ---- where the password must not be ----

if grep -qF -- "$password" "$tmp/agent.log" "$tmp/agent.out"; then
  fail "the password is not in the agent's log"
else
  pass "the password is not in the agent's log"
fi
if grep -qF -- "$password" "/proc/$agent_pid/cmdline" "/proc/$agent_pid/environ"; then
  fail "the password is not in the agent's command line or environment"
else
  pass "the password is not in the agent's command line or environment"
fi
if grep -rqF -- "$password" "$tmp/config"; then
  fail "the password is not in the configuration files"
else
  pass "the password is not in the configuration files"
fi

# ---- the agent gone ----

# ---- a restart keeps the switch and the settings ----

stop_agent_ok "before a restart"
expect_rc 3 "after the agent exits: not reachable (3)" --session status
start_agent || bail "pinhole-agent --session did not come back"
expect_rc 0 "status after a restart" --session status --json
json_check "a restart keeps Enabled off, the pin and the settings" "d['enabled'] is False
  and d['state'] == 'off' and d['trusted_pins'] == [pin] and d['username'] == '$PH_CLOUD_USER'
  and d['upstream'] == '127.0.0.1:$PH_CLOUD_TLS_PORT'"
stop_agent_ok "at the end"

tap_done

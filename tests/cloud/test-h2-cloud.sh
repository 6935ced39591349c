#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-or-later
# test-h2-cloud.sh: the h2 flavour of the cloud end (pinhole-cloud.sh with PH_CLOUD_FRONT=nghttpx:
# nghttpx --http2-proxy in front of Squid with Basic auth), TAP output. A real HTTP/2 client
# (tests/cloud/h2-connect.py, Debian's python3-h2) makes CONNECT tunnels and plain requests to
# ph-test-origin through it: bytes both ways intact, Squid's 407 as HTTP/2, the SETTINGS and
# ALPN, many tunnels to one target at once, the graceful shutdown's GOAWAY; curl and today's
# pinhole-agent (HTTP/1.1, no ALPN) still work through it; stop leaves no process behind.
#
# Environment (set by tests/cloud/meson.build): PH_TEST_ORIGIN, PH_AGENT, PH_SRCDIR; PH_PYTHON
# (/usr/bin/python3: Debian's, where python3-h2 is). Under CI=true a missing nghttpx, Squid,
# python3-h2, curl or openssl fails the test; otherwise it is skipped.

set -uo pipefail

SRCDIR=${PH_SRCDIR:-$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)}
PYTHON=${PH_PYTHON:-/usr/bin/python3}
H2=$SRCDIR/tests/cloud/h2-connect.py
AGENT=${PH_AGENT:-}
MB=$((8 * 1024 * 1024)) # bytes each way in a tunnel and in a plain request

# shellcheck source=tests/tap.sh
source "$(dirname "${BASH_SOURCE[0]}")/../tap.sh"
# shellcheck source=tests/ph-test-lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/../ph-test-lib.sh"

dump_logs ()
{
  dump_files cloud.out h2.err cloud/nghttpx.log cloud/nghttpx-access.log cloud/squid/access.log \
    cloud/squid/cache.log agent.log
}

cleanup ()
{
  stop_agent
  [[ -n $tmp && -e $tmp/cloud/cloud.env ]] && bash "$CLOUD_SCRIPT" stop "$tmp/cloud" >/dev/null 2>&1
  ph_remove_tmp
}

# h2 NAME ARGS...: h2-connect.py through the cloud end, its JSON in $tmp/NAME.json; the status
# is h2-connect's (0: an answer came).
h2 ()
{
  local name=$1
  shift
  "$PYTHON" "$H2" --proxy "127.0.0.1:$PH_CLOUD_TLS_PORT" --server-name "$PH_CLOUD_SERVER_NAME" \
    --pin "$PH_CLOUD_PIN" --timeout 60 "$@" >"$tmp/$name.json" 2>>"$tmp/h2.err"
}

# jcheck DESCRIPTION NAME PYTHON-EXPR: passes when EXPR holds for d, the JSON of $tmp/NAME.json
# (sha: the pattern's SHA-256 of a length, mb: $MB).
jcheck ()
{
  local what=$1 name=$2 expr=$3 result
  if result=$("$PYTHON" - "$tmp/$name.json" "$expr" "$MB" "$H2" 2>&1 <<'EOF'
import importlib.util, json, sys
spec = importlib.util.spec_from_file_location("h2c", sys.argv[4])
h2c = importlib.util.module_from_spec(spec)
spec.loader.exec_module(h2c)
d = json.load(open(sys.argv[1]))
env = dict(d=d, mb=int(sys.argv[3]), sha=h2c.pattern_sha256,
           hdr=lambda name: [v for k, v in d.get("headers", []) if k == name])
if not eval("(" + sys.argv[2] + ")", env):
    print("false: " + sys.argv[2])
    print(json.dumps({k: v for k, v in d.items() if k != "events"}, indent=1)[:3000])
    sys.exit(1)
EOF
  ); then
    pass "$what"
  else
    fail "$what" "$result"
  fi
}

# curl_proxy ARGS...: curl through the cloud end's TLS port as an HTTPS proxy (HTTP/1.1), the
# proxy's key pinned, the credentials from a file curl reads (not argv); prints the HTTP status.
curl_proxy ()
{
  curl -sS -o "$tmp/curl.body" -w '%{http_code}' --max-time 30 \
    --proxy "https://127.0.0.1:$PH_CLOUD_TLS_PORT" --proxy-cacert "$PH_CLOUD_CERT" --proxy-pinnedpubkey "$PH_CLOUD_PIN" \
    -K "$tmp/curl-credentials" "$@" 2>>"$tmp/curl.err"
}

# got_and_tail FILE: $got and the end of the test's FILE (a detail for verdict_then).
got_and_tail ()
{
  echo "status $got"
  tail -n 5 "$tmp/$1"
}

# alpn OFFER: the protocol the cloud end's TLS chooses when OFFER is offered.
alpn ()
{
  openssl s_client -connect "127.0.0.1:$PH_CLOUD_TLS_PORT" -servername "$PH_CLOUD_SERVER_NAME" \
    -alpn "$1" </dev/null 2>/dev/null | sed -n 's/^ALPN protocol: //p'
}

# alive PID: the process runs (a zombie does not count).
alive ()
{
  local stat
  kill -0 "$1" 2>/dev/null || return 1
  stat=$(cat "/proc/$1/stat" 2>/dev/null) || return 1
  stat=${stat##*) }
  [[ ${stat:0:1} != Z ]]
}

# cloud_pids: the processes of the cloud end (main processes and nghttpx's worker).
cloud_pids ()
{
  local f pid
  for f in "$tmp"/cloud/{squid,nghttpx,origin}.pid; do
    [[ -s $f ]] || continue
    pid=$(<"$f")
    echo "$pid"
    [[ $f == */nghttpx.pid ]] && pgrep -P "$pid"
  done
  return 0
}

# ---- prerequisites ----

[[ -x ${PH_NGHTTPX:-/usr/sbin/nghttpx} ]] || skip_all "nghttpx not found (Debian package nghttp2-proxy)"
[[ -x ${PH_SQUID:-/usr/sbin/squid} ]] || skip_all "squid not found"
"$PYTHON" -c 'import h2' 2>/dev/null || skip_all "python3-h2 not found for $PYTHON"
for tool in curl openssl pgrep; do
  command -v "$tool" >/dev/null || skip_all "$tool not found"
done

trap cleanup EXIT
trap 'exit 130' INT TERM

ph_make_tmp h2-cloud
begin "the h2 flavour starts"
start_cloud env PH_CLOUD_FRONT=nghttpx
[[ ${PH_CLOUD_FRONT:-} == nghttpx && -s $tmp/cloud/nghttpx.pid && ! -e $tmp/cloud/stunnel.pid ]]
verdict_then "cloud.env says PH_CLOUD_FRONT=nghttpx, and no stunnel runs" cat "$tmp/cloud/cloud.env"
status_out=$(bash "$CLOUD_SCRIPT" status "$tmp/cloud" 2>&1)
[[ $status_out == *"nghttpx: running (pid "*", worker "* && $status_out == *"squid: running"* ]]
verdict "status: nghttpx (its main process and worker) and Squid run" "$status_out"
printf 'proxy-user = "%s:%s"\n' "$PH_CLOUD_USER" "$(<"$PH_CLOUD_PASSWORD_FILE")" \
  >"$tmp/curl-credentials"
printf 'not-the-password' >"$tmp/wrong-password"
chmod 600 "$tmp/curl-credentials" "$tmp/wrong-password"
origin=127.0.0.1:$PH_ORIGIN_HTTP_PORT
auth=(--user "$PH_CLOUD_USER" --password-file "$PH_CLOUD_PASSWORD_FILE")
wrong=(--user "$PH_CLOUD_USER" --password-file "$tmp/wrong-password")

begin "TLS and ALPN"
got=$(alpn h2,http/1.1)
[[ $got == h2 ]]
verdict "ALPN h2,http/1.1 offered: h2 chosen" "chosen: '$got'"
got=$(alpn http/1.1)
[[ $got == http/1.1 ]]
verdict "ALPN http/1.1 alone: http/1.1 chosen" "chosen: '$got'"

begin "HTTP/2 CONNECT"
h2 tunnel-down "${auth[@]}" --connect "$origin" --path "/bytes/$MB?sha=1" \
  --window 16777216 --conn-window 16777216
verdict_then "an HTTP/2 CONNECT with the right credentials is answered" tail -n 3 "$tmp/h2.err"
jcheck "the proxy's key is the pinned one, over ALPN h2" tunnel-down \
  "d['alpn'] == 'h2' and d['status'] == 200"
jcheck "its SETTINGS: 100 streams, the recommended 16 MiB windows" tunnel-down \
  "d['server_settings']['MAX_CONCURRENT_STREAMS'] == 100 and
   d['server_settings']['INITIAL_WINDOW_SIZE'] == 16777216 and
   d['server_connection_window'] == 16777216"
jcheck "8 MiB down the tunnel, intact (origin's and local SHA-256)" tunnel-down \
  "d['inner_status'] == 200 and d['body_bytes'] == mb and
   d['body_sha256'] == d['inner_headers']['x-body-sha256'] == sha(mb)"
h2 tunnel-up "${auth[@]}" --connect "$origin" --path /sha256 --upload "$MB"
verdict_then "an upload through a tunnel is answered" tail -n 3 "$tmp/h2.err"
jcheck "8 MiB up the tunnel, intact (the origin's SHA-256)" tunnel-up \
  "d['inner_status'] == 200 and d['body'] == '%s %d\n' % (sha(mb), mb)"
grep -E "TCP_TUNNEL/200 .* CONNECT $origin $PH_CLOUD_USER " "$PH_CLOUD_SQUID_ACCESS_LOG" >/dev/null
verdict_then "Squid did the Basic auth (proxy-authorization passed on): the tunnel is $PH_CLOUD_USER's" \
  tail -n 5 "$PH_CLOUD_SQUID_ACCESS_LOG"
grep -E "\"CONNECT $origin HTTP/2\" 200 .* alpn=h2" "$PH_CLOUD_NGHTTPX_ACCESS_LOG" >/dev/null
verdict_then "nghttpx logged the tunnel as HTTP/2 over h2" tail -n 5 "$PH_CLOUD_NGHTTPX_ACCESS_LOG"
h2 many "${auth[@]}" --connect "$origin" --parallel 12 --timeout 10
jcheck "12 tunnels to one target at once on one connection are all answered" many \
  "d['answered'] == 12 and all(s['status'] == 200 for s in d['streams'])"

begin "plain requests over HTTP/2"
h2 get "${auth[@]}" --url "http://$origin/hello"
verdict_then "a plain GET is answered" tail -n 3 "$tmp/h2.err"
jcheck "GET http://origin/hello: 200 hello" get "d['status'] == 200 and d['body'] == 'hello\n'"
grep -E "TCP_MISS/200 .* GET http://$origin/hello $PH_CLOUD_USER " "$PH_CLOUD_SQUID_ACCESS_LOG" \
  >/dev/null
verdict_then "Squid saw it in absolute form, as $PH_CLOUD_USER's" tail -n 5 "$PH_CLOUD_SQUID_ACCESS_LOG"
h2 get-big "${auth[@]}" --url "http://$origin/bytes/$MB?sha=1" --window 16777216 \
  --conn-window 16777216
jcheck "8 MiB down a plain GET, intact" get-big \
  "d['status'] == 200 and d['body_bytes'] == mb and d['body_sha256'] == sha(mb) ==
   hdr('x-body-sha256')[0]"
h2 post "${auth[@]}" --url "http://$origin/sha256" --upload "$MB"
jcheck "8 MiB up a plain POST, intact" post \
  "d['status'] == 200 and d['body'] == '%s %d\n' % (sha(mb), mb)"

begin "credentials"
h2 wrong-connect "${wrong[@]}" --connect "$origin"
jcheck "CONNECT, wrong password: 407 with proxy-authenticate Basic" wrong-connect \
  "d['status'] == 407 and hdr('proxy-authenticate') == ['Basic realm=\"pinhole-cloud\"']"
h2 wrong-get "${wrong[@]}" --url "http://$origin/hello"
jcheck "plain GET, wrong password: 407 with proxy-authenticate Basic" wrong-get \
  "d['status'] == 407 and hdr('proxy-authenticate') == ['Basic realm=\"pinhole-cloud\"']"
h2 no-credentials --connect "$origin"
jcheck "CONNECT without credentials: 407" no-credentials "d['status'] == 407"

begin "HTTP/1.1 through the same front"
got=$(curl_proxy --cacert "$PH_ORIGIN_CA" "https://127.0.0.1:$PH_ORIGIN_HTTPS_PORT/hello")
[[ $got == 200 && $(<"$tmp/curl.body") == hello ]]
verdict_then "curl --proxy https:// (HTTP/1.1 CONNECT, the key pinned) reaches the HTTPS origin" \
  got_and_tail curl.err
grep -E "\"CONNECT 127.0.0.1:$PH_ORIGIN_HTTPS_PORT HTTP/1.1\" 200 .* alpn=http/1.1" \
  "$PH_CLOUD_NGHTTPX_ACCESS_LOG" >/dev/null
verdict_then "nghttpx logged it as HTTP/1.1" tail -n 5 "$PH_CLOUD_NGHTTPX_ACCESS_LOG"
got=$(curl_proxy "http://$origin/hello")
[[ $got == 200 && $(<"$tmp/curl.body") == hello ]]
verdict "curl: a plain GET over HTTP/1.1" "status $got"
printf 'proxy-user = "%s:wrong"\n' "$PH_CLOUD_USER" >"$tmp/curl-credentials"
got=$(curl_proxy "http://$origin/hello")
[[ $got == 407 ]]
verdict "curl, wrong password: 407" "status $got"

if [[ -x $AGENT ]]; then
  listen_port=$(free_port)
  bash "$CLOUD_SCRIPT" agent-config "$tmp/cloud" "$tmp/agent.conf" "$listen_port"
  "$AGENT" --config "$tmp/agent.conf" 2>"$tmp/agent.log" &
  # shellcheck disable=SC2034 # stop_agent's (ph-test-lib.sh)
  agent_pid=$!
  for ((i = 0; i < 100; i++)); do
    grep -q "listening on" "$tmp/agent.log" && break
    sleep 0.1
  done
  got=$(curl -sS -o "$tmp/curl.body" -w '%{http_code}' --max-time 30 -x "http://127.0.0.1:$listen_port" \
    --cacert "$PH_ORIGIN_CA" "https://127.0.0.1:$PH_ORIGIN_HTTPS_PORT/hello" 2>>"$tmp/curl.err")
  [[ $got == 200 && $(<"$tmp/curl.body") == hello ]]
  verdict_then "today's pinhole-agent (HTTP/1.1, no ALPN) tunnels through the nghttpx front" \
    got_and_tail agent.log
  stop_agent
else
  skip "today's pinhole-agent through the nghttpx front" "PH_AGENT not set"
fi

begin "graceful shutdown (SIGQUIT) and stop"
pids=$(cloud_pids | tr '\n' ' ')
h2 quit "${auth[@]}" --connect "$origin" --signal "$(<"$tmp/cloud/nghttpx.pid"):SIGQUIT" --observe 3
verdict_then "a tunnel open across nghttpx's SIGQUIT" tail -n 3 "$tmp/h2.err"
jcheck "SIGQUIT: GOAWAY(NO_ERROR) naming the open stream, which still works" quit \
  "d['goaway'] == {'error': 'NO_ERROR', 'last_stream_id': 1, 'data': ''} and
   d['after']['tunnel_still_works'] is True"
bash "$CLOUD_SCRIPT" stop "$tmp/cloud" >>"$tmp/cloud.out" 2>&1
verdict "stop succeeds"
left=""
for pid in $pids; do
  alive "$pid" && left+=" $pid"
done
# Squid's auth helper (its command line names the directory) ends once Squid has: allow it 3 s.
for ((i = 0; i < 30; i++)); do
  pgrep -f "$tmp/cloud" >/dev/null || break
  sleep 0.1
done
others=$(pgrep -af "$tmp/cloud")
[[ -z $left && -z $others && ! -e $tmp/cloud/cloud.env ]]
verdict "stop leaves no process of the cloud end (were: $pids)" "still running:$left" "$others"
bash "$CLOUD_SCRIPT" stop "$tmp/cloud" >>"$tmp/cloud.out" 2>&1
verdict "a second stop succeeds too"

tap_done

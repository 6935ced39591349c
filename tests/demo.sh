#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
# demo.sh: README's first command. Installs what is needed, builds, starts a
# local demo cloud end (real stunnel server + Squid with Basic auth, a
# self-signed certificate, loopback ports), writes an agent config pinned to
# it, starts pinhole-agent and sends requests through it. With a terminal it
# keeps running until Ctrl-C so you can point a client at it.
# PH_CLOUD_FRONT=nghttpx puts nghttpx (HTTP/2 and HTTP/1.1) in front of the
# cloud's Squid instead of stunnel (tests/cloud/README.md).
set -euo pipefail
cd "$(dirname "$0")/.."
top=$PWD

bash tests/install-deps.sh
[ -f build/build.ninja ] || { rm -rf build && meson setup build; }
ninja -C build agent/pinhole-agent tests/cloud/ph-test-origin

demo=${PH_DEMO_DIR:-$(mktemp -d /tmp/pinhole-demo.XXXXXX)}
port=${PH_DEMO_PORT:-3128}
# The Debian squid package may run its own service on 3128.
if ss -ltn "sport = :$port" 2>/dev/null | grep -q LISTEN; then
  port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
fi

cleanup ()
{
  [ -n "${agent_pid:-}" ] && kill "$agent_pid" 2>/dev/null && wait "$agent_pid" 2>/dev/null
  bash tests/cloud/pinhole-cloud.sh stop "$demo" >/dev/null 2>&1 || true
}
trap cleanup EXIT
trap 'exit 130' INT TERM

front=${PH_CLOUD_FRONT:-stunnel}
echo "== starting the demo cloud end ($front + Squid with Basic auth) in $demo"
PH_CLOUD_ORIGIN=1 PH_TEST_ORIGIN="$top/build/tests/cloud/ph-test-origin" \
  bash tests/cloud/pinhole-cloud.sh start "$demo"
# shellcheck disable=SC1091
. "$demo/cloud.env"
bash tests/cloud/pinhole-cloud.sh agent-config "$demo" "$demo/pinhole.conf" "$port"
echo "== agent configuration (pinned to the cloud end's key; the password stays in a 0600 file):"
sed 's/^/   /' "$demo/pinhole.conf"

build/agent/pinhole-agent --config "$demo/pinhole.conf" --check-config
build/agent/pinhole-agent --config "$demo/pinhole.conf" 2> "$demo/agent.log" &
agent_pid=$!
for _ in $(seq 50); do
  grep -q "listening on" "$demo/agent.log" && break
  sleep 0.1
done

echo
echo "== HTTPS through the tunnel: curl -x http://127.0.0.1:$port https://127.0.0.1:$PH_ORIGIN_HTTPS_PORT/hello"
curl -sS --fail -x "http://127.0.0.1:$port" --cacert "$PH_ORIGIN_CA" \
  "https://127.0.0.1:$PH_ORIGIN_HTTPS_PORT/hello"
echo "== plain HTTP through the tunnel: curl -x http://127.0.0.1:$port http://127.0.0.1:$PH_ORIGIN_HTTP_PORT/hello"
curl -sS --fail -x "http://127.0.0.1:$port" "http://127.0.0.1:$PH_ORIGIN_HTTP_PORT/hello"
echo
echo "== the cloud Squid saw these requests, authenticated as $PH_CLOUD_USER:"
tail -n 2 "$PH_CLOUD_SQUID_ACCESS_LOG" | sed 's/^/   /'
echo "== the agent's log:"
sed 's/^/   /' "$demo/agent.log"
if [ "$front" = nghttpx ]; then
  echo "== nghttpx took the agent's requests as HTTP/1.1 (the agent offers no ALPN):"
  tail -n 2 "$PH_CLOUD_NGHTTPX_ACCESS_LOG" | sed 's/^/   /'
  echo "== and speaks HTTP/2 too: tests/cloud/h2-connect.py, a CONNECT stream to the origin:"
  /usr/bin/python3 tests/cloud/h2-connect.py --proxy "127.0.0.1:$PH_CLOUD_TLS_PORT" \
    --server-name "$PH_CLOUD_SERVER_NAME" --pin "$PH_CLOUD_PIN" --user "$PH_CLOUD_USER" \
    --password-file "$PH_CLOUD_PASSWORD_FILE" --connect "127.0.0.1:$PH_ORIGIN_HTTP_PORT" |
    /usr/bin/python3 -c 'import json, sys
d = json.load(sys.stdin)
print("   ALPN %s, CONNECT answered %s, inside: %s %r" % (d["alpn"], d["status"], d["inner_status"], d["body"]))'
fi

if [ -t 0 ] && [ -z "${PH_DEMO_NO_WAIT:-}" ]; then
  echo
  echo "Pinhole is serving on 127.0.0.1:$port (cloud end on 127.0.0.1:$PH_CLOUD_TLS_PORT)."
  echo "Try: curl -x http://127.0.0.1:$port http://127.0.0.1:$PH_ORIGIN_HTTP_PORT/bytes/100 | wc -c"
  echo "Press Ctrl-C to stop everything."
  wait "$agent_pid"
fi

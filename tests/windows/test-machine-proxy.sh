#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
# test-machine-proxy.sh WINBUILD: [system-proxy] machine=winhttp under Wine. The console agent,
# with a configuration that also lists Linux's consumer (environment: shown as another
# system's), points WinHTTP's default proxy at itself while the tunnel is on, as WinHTTP's own
# call reads it back (tests/windows/ph-winhttp.exe, since Wine's netsh has no winhttp context),
# and copies it into the 32-bit registry view. Off puts back exactly what was there: a value of
# someone's in the 64-bit view (the same bytes), none in the 32-bit one (the value and the keys
# Pinhole made are gone). Also: kill -9 while on, then the next start puts it back before
# setting it again; kill -9, then `pinhole-agent --restore-machine-proxy` (what the uninstaller
# runs); a value someone set while on is left alone at off; Ctrl-C while on; pinholectl
# system-proxy status, restore and apply. No cloud end is needed: nothing is sent anywhere.
#
# Prints TAP. Under CI=true a missing tool fails instead of skipping.
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
winbuild=$(cd "${1:?usage: test-machine-proxy.sh WINBUILD}" && pwd)
# shellcheck source=tests/windows/env.sh
source "$here/env.sh" 2>/dev/null

# shellcheck source=tests/tap.sh
source "$root/tests/tap.sh"

for tool in wine wineserver python3; do
  command -v "$tool" >/dev/null || skip_all "$tool is missing"
done
[ -f "$winbuild/tests/ph-winhttp.exe" ] || skip_all "$winbuild/tests/ph-winhttp.exe is not built"

# Wine's WinHttpGetDefaultProxyConfiguration falls back to $http_proxy when the registry has
# no setting.
unset http_proxy https_proxy HTTP_PROXY HTTPS_PROXY

work=$(mktemp -d /tmp/pinhole-win-machine.XXXXXX)
connections='HKLM\Software\Microsoft\Windows\CurrentVersion\Internet Settings\Connections'
settings32='HKLM\Software\Wow6432Node\Microsoft\Windows\CurrentVersion\Internet Settings'
agent_exe=$winbuild/agent/pinhole-agent.exe
journal=$work/state/machine-proxy.journal
agent_pid=

ctl () { wine "$winbuild/agent/pinholectl.exe" "$@"; }
winhttp () { wine "$winbuild/tests/ph-winhttp.exe" "$@" | tr -d '\r'; }
# The value's bytes in hex in one registry view (64 or 32); empty when it is not there.
value () { wine reg query "$connections" /v WinHttpSettings "/reg:$1" 2>/dev/null | tr -d '\r' | awk '$1 == "WinHttpSettings" { print $3 }'; }
key_exists () { wine reg query "$1" "/reg:$2" >/dev/null 2>&1; }

ph_win_wine_init
wineserver -p 900 &

# The registry as it was before the test, put back at the end.
initial64=$(value 64)
initial32=$(value 32)
key_exists "$connections" 64 && had_connections64=1 || had_connections64=0
key_exists "$settings32" 32 && had_settings32=1 || had_settings32=0
put_back_view () # VIEW HEX
{
  if [ -n "$2" ]; then
    wine reg add "$connections" /v WinHttpSettings /t REG_BINARY /d "$2" /f "/reg:$1" >/dev/null 2>&1
  else
    wine reg delete "$connections" /v WinHttpSettings /f "/reg:$1" >/dev/null 2>&1
  fi
}
cleanup ()
{
  [ -n "$agent_pid" ] && kill -INT "$agent_pid" 2>/dev/null && wait "$agent_pid"
  put_back_view 64 "$initial64"
  put_back_view 32 "$initial32"
  ((had_connections64)) || wine reg delete "$connections" /f /reg:64 >/dev/null 2>&1
  ((had_settings32)) || wine reg delete "$settings32" /f /reg:32 >/dev/null 2>&1
  wineserver -k 2>/dev/null
  [ -n "${PH_TEST_KEEP:-}" ] || rm -rf "$work"
}
trap cleanup EXIT
dump_logs ()
{
  local f
  for f in "$work"/*.log; do
    [ -s "$f" ] || continue
    echo "# ----- $f (last 30 lines) -----"
    tail -n 30 "$f" | sed 's/^/# /'
  done
}

free_port () { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
until_true () # COMMAND...: up to 15 s
{
  for _ in $(seq 1 75); do
    "$@" >/dev/null 2>&1 && return 0
    sleep 0.2
  done
  return 1
}
shows () { winhttp show | grep -qF -- "$1"; }
same64 () { [ "$(value 64)" = "$1" ]; }
# No 32-bit value, and the keys Pinhole made for it gone (in a new 64-bit Wine prefix the 32-bit
# view has no Internet Settings key at all).
no32 ()
{
  [ -z "$(value 32)" ] || return 1
  ((had_settings32)) || ! key_exists "$settings32" 32
}
copied () { local v; v=$(value 64); [ -n "$v" ] && [ "$v" = "$(value 32)" ]; }
status_has () { ctl system-proxy status 2>/dev/null | tr -d '\r' | grep -q -- "$1"; }
# The tunnel (the server) on or off, whatever the cloud end (there is none: State is error).
tunnel_is () { ctl system-proxy status --json 2>/dev/null | tr -d '\r' | grep -Eq "\"tunnel_on\": *$1"; }

# Not inside check: $agent_pid is this shell's.
start_agent () # LOG
{
  wine "$agent_exe" --console --config "$work/agent.conf" --managed-dir "$work/md" \
    --state-dir "$work/state" >"$work/$1" 2>&1 &
  agent_pid=$!
}
# kill -9 of the agent (not inside check either), then its pipe free again.
kill_agent ()
{
  { kill -KILL "$agent_pid" && wait "$agent_pid"; } 2>/dev/null
  agent_pid=
  for _ in $(seq 1 75); do
    ctl status >/dev/null 2>&1
    [ $? -eq 3 ] && return 0
    sleep 0.2
  done
  return 1
}

port=$(free_port)
mkdir -p "$work/md" "$work/state"
cat >"$work/agent.conf" <<EOF
[listener]
address=127.0.0.1:$port

[upstream]
host=127.0.0.1
port=$(free_port)

[route]
direct=.corp.example 10.0.0.0/8 <local> fd00::/8

[system-proxy]
# One file for Linux and Windows: each system points its own consumers at the agent.
machine=environment, winhttp
EOF
agent="http://127.0.0.1:$port"
bypass='localhost;127.0.0.1;[::1];corp.example;*.corp.example;10.*;<local>'
theirs='proxy.corp.example:8080'
export PINHOLE_CONTROL_PIPE='\\.\pipe\pinhole-machine-'$$

begin "before: someone's WinHTTP proxy in the 64-bit view, none in the 32-bit one"
put_back_view 32 ""
check "ph-winhttp set stands in for netsh winhttp set proxy" winhttp set "$theirs" '<local>;*.corp.example'
out=$(wine netsh winhttp show proxy 2>&1 | tr -d '\r')
if grep -q "$theirs" <<<"$out"; then
  pass "Wine's netsh shows WinHTTP's proxy"
else
  echo "# Wine's netsh winhttp show proxy prints '${out//$'\n'/ }': ph-winhttp.exe reads it instead"
fi
before64=$(value 64)
check "WinHTTP reads someone's proxy" shows "Proxy Server(s) :  $theirs"
check "the 32-bit view has no setting" no32
check "the configuration with Linux's and Windows' consumers passes --check" \
  wine "$agent_exe" --check-config --config "$work/agent.conf"

begin "tunnel on"
start_agent console.log
check "the console agent answers" until_true ctl status
check "the tunnel is on" until_true tunnel_is true
check "WinHTTP's default proxy is the agent" until_true shows "Proxy Server(s) :  127.0.0.1:$port"
check "... with [route] direct as its bypass list" shows "Bypass List     :  $bypass"
check "the 32-bit view holds the same bytes" copied
check "the journal is in the state directory" test -s "$journal"
check "system-proxy status: winhttp applied" status_has "winhttp: *applied: $agent"
check "... environment is another system's" status_has "environment: *configured, not on this system"
out=$(ctl system-proxy status --json 2>&1 | tr -d '\r')
check "status --json: winhttp's registry values" grep -qF 'Internet Settings\\Connections\\WinHttpSettings' <<<"$out"
check "status --json: environment's note is other-system" grep -q '"note": *"other-system"' <<<"$out"
check "the log says the route it cannot write" grep -q 'fd00::/8 has no WinHTTP form' "$work/console.log"

begin "off, on"
ctl disable >/dev/null 2>&1
check "disable: WinHTTP reads someone's proxy again" until_true shows "Proxy Server(s) :  $theirs"
check "... the 64-bit view holds the same bytes as before" same64 "$before64"
check "... the 32-bit value and the keys Pinhole made are gone" no32
check "... the journal is gone" test ! -e "$journal"
check "system-proxy status: configured, off" status_has "winhttp: *configured, not applied: the tunnel is off"
ctl enable >/dev/null 2>&1
check "enable: the agent again" until_true shows "Proxy Server(s) :  127.0.0.1:$port"
ctl system-proxy restore >/dev/null 2>&1; rc=$?
check "system-proxy restore" bash -c "[ $rc -eq 0 ]"
check "... someone's bytes are back" same64 "$before64"
check "system-proxy status says put back by hand" status_has "winhttp: *configured, put back by hand"
ctl system-proxy apply >/dev/null 2>&1; rc=$?
check "system-proxy apply" bash -c "[ $rc -eq 0 ]"
check "... the agent again" shows "Proxy Server(s) :  127.0.0.1:$port"

begin "kill -9 while on"
kill_agent
verdict "kill -9 of the agent"
check "after kill -9 the agent's setting stays" shows "Proxy Server(s) :  127.0.0.1:$port"
check "... and the journal" test -s "$journal"
start_agent restart.log
check "the next start answers" until_true ctl status
check "... it put back what the journal lists" until_true grep -q 'put back the machine-wide proxy consumers left by a previous run' "$work/restart.log"
check "... and sets the agent again" until_true shows "Proxy Server(s) :  127.0.0.1:$port"
ctl disable >/dev/null 2>&1
check "disable after the restart: exactly someone's bytes (not Pinhole's left over)" \
  until_true same64 "$before64"
check "... and no 32-bit value" no32
ctl enable >/dev/null 2>&1
check "enable" until_true shows "Proxy Server(s) :  127.0.0.1:$port"
kill_agent
verdict "kill -9 again"
wine "$agent_exe" --restore-machine-proxy --state-dir "$work/state" >"$work/restore.log" 2>&1; rc=$?
check "pinhole-agent --restore-machine-proxy (the uninstaller's) exits 0" [ $rc -eq 0 ]
check "... WinHTTP reads someone's proxy, the same bytes" same64 "$before64"
check "... the 32-bit view as before" no32
check "... the journal is gone" test ! -e "$journal"
wine "$agent_exe" --restore-machine-proxy --state-dir "$work/state" >>"$work/restore.log" 2>&1; rc=$?
check "... again: nothing to put back, exit 0" bash -c "[ $rc -eq 0 ] && grep -q 'nothing to put back' '$work/restore.log'"

begin "someone else's change while on"
start_agent third.log
check "the agent starts" until_true ctl status
check "the agent's setting" until_true shows "Proxy Server(s) :  127.0.0.1:$port"
check "an admin sets another proxy meanwhile" winhttp set admin.example:3128 '<local>'
check "system-proxy status says someone changed it" status_has "winhttp:.*someone changed it since"
ctl disable >/dev/null 2>&1
check "disable leaves the admin's proxy" until_true tunnel_is false
check "... WinHTTP still reads it" shows "Proxy Server(s) :  admin.example:3128"
check "... and the log says so" grep -q 'WinHttpSettings was changed since Pinhole set it; left as it is' "$work/third.log"
check "... the 32-bit view, still Pinhole's, went back" no32

begin "Ctrl-C while on"
winhttp set "$theirs" '<local>;*.corp.example' >/dev/null
before64=$(value 64)
ctl enable >/dev/null 2>&1
check "enable: the agent's setting" until_true shows "Proxy Server(s) :  127.0.0.1:$port"
kill -INT "$agent_pid"; wait "$agent_pid"; rc=$?; agent_pid=
check "Ctrl-C stops the agent cleanly" [ $rc -eq 0 ]
check "... and puts back someone's bytes" same64 "$before64"
check "... the journal is gone" test ! -e "$journal"
check "the logs have no GLib criticals" bash -c "! grep -E 'CRITICAL|critical' '$work'/*.log"

tap_done

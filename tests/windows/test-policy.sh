#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
# test-policy.sh WINBUILD: Group Policy under Wine, through the registry. A policy in
# HKLM\Software\Policies\Pinhole\upstream sets upstream.port before the console agent starts:
# pinholectl shows the value locked and `set` is refused (exit 5). Then, with the agent running,
# a policy added, a bad one, and the key deleted are each applied live (RegNotifyChangeKeyValue,
# no `pinholectl reload`). No cloud end is needed: nothing is sent anywhere.
#
# Prints TAP. Under CI=true a missing tool fails instead of skipping.
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
winbuild=$(cd "${1:?usage: test-policy.sh WINBUILD}" && pwd)
# shellcheck source=tests/windows/env.sh
source "$here/env.sh" 2>/dev/null

# shellcheck source=tests/tap.sh
source "$root/tests/tap.sh"

for tool in wine wineserver; do
  command -v "$tool" >/dev/null || skip_all "$tool is missing"
done

work=$(mktemp -d /tmp/pinhole-win-policy.XXXXXX)
key='HKLM\Software\Policies\Pinhole'
agent_pid=
cleanup ()
{
  [ -n "$agent_pid" ] && kill -INT "$agent_pid" 2>/dev/null && wait "$agent_pid"
  wine reg delete "$key" /f /reg:64 >/dev/null 2>&1
  wineserver -k 2>/dev/null
  [ -n "${PH_TEST_KEEP:-}" ] || rm -rf "$work"
}
trap cleanup EXIT
dump_logs ()
{
  [ -s "$work/console.log" ] || return 0
  echo "# ----- $work/console.log (last 30 lines) -----"
  tail -n 30 "$work/console.log" | sed 's/^/# /'
}

agent_exe=$winbuild/agent/pinhole-agent.exe
ctl () { wine "$winbuild/agent/pinholectl.exe" "$@"; }
policy () { wine reg add "$key\\$1" /v "$2" /t "$3" /d "$4" /f /reg:64 >/dev/null 2>&1; }

ph_win_wine_init
wineserver -p 900 &
wine reg delete "$key" /f /reg:64 >/dev/null 2>&1

free_port () { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

until_true () # COMMAND...: up to 15 s
{
  for _ in $(seq 1 75); do
    "$@" >/dev/null 2>&1 && return 0
    sleep 0.2
  done
  return 1
}
status_has () { ctl status 2>/dev/null | grep -q "$1"; }
get_is () { [ "$(ctl get "$1" 2>/dev/null | tr -d '\r')" = "$2" ]; }

port=$(free_port)
mkdir -p "$work/md" "$work/state"
printf '[listener]\naddress=127.0.0.1:%s\n\n[upstream]\nhost=127.0.0.1\nport=443\n' "$port" \
  >"$work/agent.conf"
check "a policy is written to the registry" policy upstream port REG_SZ 8443
export PINHOLE_CONTROL_PIPE='\\.\pipe\pinhole-policy-'$$
wine "$agent_exe" --console --config "$work/agent.conf" --managed-dir "$work/md" \
  --state-dir "$work/state" >"$work/console.log" 2>&1 &
agent_pid=$!
check "the console agent answers" until_true ctl status

check "pinholectl get shows the policy's value" get_is upstream.port 8443
check "status lists upstream.port as locked" status_has 'Locked keys:.*upstream.port'
out=$(ctl get upstream.port --json 2>&1)
check "get --json says locked" grep -Eq '"locked": *true' <<<"$out"
ctl set upstream.port 9000 >/dev/null 2>&1; rc=$?
check "set of a key the policy sets is refused (exit 5)" [ $rc -eq 5 ]
check "... and the value stays" get_is upstream.port 8443

echo "# live: RegNotifyChangeKeyValue, no reload"
policy tunnel max-tunnels REG_DWORD 64
check "a REG_DWORD policy added while running is applied" until_true get_is tunnel.max-tunnels 64
check "... and locked" until_true status_has 'Locked keys:.*tunnel.max-tunnels'
policy upstream port REG_SZ 70000
check "a bad policy is reported under the registry key" \
  until_true grep -qF 'Policies\Pinhole:' "$work/console.log"
check "... and the last good settings stay" get_is upstream.port 8443
wine reg delete "$key" /f /reg:64 >/dev/null 2>&1
check "the policy key deleted: the file's value is back" until_true get_is upstream.port 443
check "... and nothing is locked" until_true bash -c \
  "! wine '$winbuild/agent/pinholectl.exe' status 2>/dev/null | grep -q 'Locked keys:.*upstream'"
ctl set upstream.port 9000 >/dev/null 2>&1; rc=$?
check "set is allowed again" [ $rc -eq 0 ]

kill -INT "$agent_pid"; wait "$agent_pid"; rc=$?; agent_pid=
check "the agent stops cleanly" [ $rc -eq 0 ]
check "the log has no GLib criticals" bash -c "! grep -E 'CRITICAL|critical' '$work/console.log'"

tap_done

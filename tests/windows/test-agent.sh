#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
# test-agent.sh WINBUILD LINUXBUILD: the Windows pinhole-agent.exe and pinholectl.exe under Wine,
# against a real stunnel + Squid cloud end and origin on loopback (tests/cloud/pinhole-cloud.sh).
#
#   console: the service's work in a console, controlled over a named pipe: status, stored
#            credentials (DPAPI, never in clear on disk or in the log), enable and disable, a
#            drop-in that locks a key, a second agent on the same pipe refused, no agent.
#   service: --install-service, --start-service (RUNNING only after setup), a request through
#            the service, pinholectl over the default pipe, --stop-service, --uninstall-service.
#
# Prints TAP. Under CI=true a missing tool fails instead of skipping.
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
winbuild=$(cd "${1:?usage: test-agent.sh WINBUILD LINUXBUILD}" && pwd)
linuxbuild=$(cd "${2:?usage: test-agent.sh WINBUILD LINUXBUILD}" && pwd)
# shellcheck source=tests/windows/env.sh
source "$here/env.sh" 2>/dev/null

# shellcheck source=tests/tap.sh
source "$root/tests/tap.sh"

for tool in wine wineserver curl stunnel4 squid; do
  command -v "$tool" >/dev/null || command -v "${tool%4}" >/dev/null || skip_all "$tool is missing"
done

work=$(mktemp -d /tmp/pinhole-win-agent.XXXXXX)
# Squid runs as its own user and must reach the cloud directory.
chmod 755 "$work"
cloud=$work/cloud
stage=$work/stage
pd="$WINEPREFIX/drive_c/ProgramData/Pinhole"
agent_pid=
cleanup ()
{
  [ -n "$agent_pid" ] && kill -INT "$agent_pid" 2>/dev/null
  wine "$stage/bin/pinhole-agent.exe" --uninstall-service >/dev/null 2>&1
  bash "$root/tests/cloud/pinhole-cloud.sh" stop "$cloud" >/dev/null 2>&1
  rm -rf "$pd"
  wineserver -k 2>/dev/null
  [ -n "${PH_TEST_KEEP:-}" ] || rm -rf "$work"
}
trap cleanup EXIT
dump_logs ()
{
  local f
  for f in "$work"/*.log "$pd/logs/pinhole-agent.log"; do
    [ -s "$f" ] || continue
    echo "# ----- $f (last 30 lines) -----"
    tail -n 30 "$f" | sed 's/^/# /'
  done
}

# The installed layout, with the libraries beside the programs as the installer puts them: the
# SCM starts the service with no WINEPATH.
meson install -C "$winbuild" --destdir "$stage" --no-rebuild >/dev/null || bail "meson install failed"
cp "$PH_WIN_PREFIX"/bin/*.dll "$stage/bin/"
agent_exe=$stage/bin/pinhole-agent.exe
ctl () { wine "$stage/bin/pinholectl.exe" "$@"; }

ph_win_wine_init
wineserver -p 900 &

PH_CLOUD_ORIGIN=1 PH_TEST_ORIGIN=$linuxbuild/tests/cloud/ph-test-origin \
  bash "$root/tests/cloud/pinhole-cloud.sh" start "$cloud" >"$work/cloud.log" 2>&1 \
  || { cat "$work/cloud.log"; bail "the cloud end did not start"; }
# shellcheck disable=SC1091
source "$cloud/cloud.env"
password=$(cat "$PH_CLOUD_PASSWORD_FILE")

free_port () { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

# A config without the password file: the password goes through pinholectl into the store.
write_config ()
{
  bash "$root/tests/cloud/pinhole-cloud.sh" agent-config "$cloud" "$1.tmp" "$2" >/dev/null
  grep -v '^password-file=' "$1.tmp" >"$1"
  rm -f "$1.tmp"
}

through () # PORT: a plain request and a CONNECT through the agent
{
  local body
  body=$(curl -sS --max-time 20 -x "http://127.0.0.1:$1" "http://127.0.0.1:$PH_ORIGIN_HTTP_PORT/hello") || return 1
  [ "$body" = "hello" ] || { echo "# body: $body"; return 1; }
  curl -sS --max-time 20 -o /dev/null -x "http://127.0.0.1:$1" --cacert "$PH_ORIGIN_CA" \
    "https://localhost:$PH_ORIGIN_HTTPS_PORT/bytes/100000" || return 1
}

wait_listening () # PORT
{
  for _ in $(seq 1 100); do
    curl -s -o /dev/null --max-time 1 "http://127.0.0.1:$1/" && return 0
    [ $? -eq 7 ] || return 0
    sleep 0.2
  done
  return 1
}

echo "# console mode"
port=$(free_port)
mkdir -p "$work/md" "$work/state"
write_config "$work/agent.conf" "$port"
export PINHOLE_CONTROL_PIPE='\\.\pipe\pinhole-test-'$$
wine "$agent_exe" --console --config "$work/agent.conf" --managed-dir "$work/md" \
  --state-dir "$work/state" >"$work/console.log" 2>&1 &
agent_pid=$!
check "the console agent listens" wait_listening "$port"

out=$(ctl status 2>&1); rc=$?
check "status answers over the pipe" [ $rc -eq 0 ]
check "status names the missing credentials" grep -q "NoCredentials" <<<"$out"
check "status says the mode is system" grep -q "^Mode: *system" <<<"$out"

out=$(printf '%s\n' "$password" | ctl set-credentials alice --password-stdin 2>&1); rc=$?
check "set-credentials over the pipe" [ $rc -eq 0 ]
ctl enable >/dev/null 2>&1
for _ in $(seq 1 50); do ctl status 2>/dev/null | grep -q "^State: *on" && break; sleep 0.2; done
check "the tunnel is on" bash -c "wine '$stage/bin/pinholectl.exe' status | grep -q '^State: *on'"
check "requests go through the tunnel" through "$port"
# (A missing file would pass a bare "! grep": the file must be there and hold an entry.)
check "the credentials file holds no clear password" \
  bash -c "grep -q alice '$work/state/credentials' && ! grep -qF -- '$password' '$work/state/credentials'"
check "the log holds no password" bash -c "! grep -qF -- '$password' '$work/console.log'"

ctl disable >/dev/null 2>&1; rc=$?
check "disable" [ $rc -eq 0 ]
curl -s -o /dev/null --max-time 5 -x "http://127.0.0.1:$port" "http://127.0.0.1:$PH_ORIGIN_HTTP_PORT/hello"
check "after disable the port refuses" [ $? -eq 7 ]
ctl enable >/dev/null 2>&1
check "enable again, no restart" bash -c "$(declare -f wait_listening); wait_listening $port"

# Wine's ReadDirectoryChangesW does not reach GLib's file monitor, so the drop-in is applied by
# a reload here (on Windows the monitor applies it by itself).
printf '[tunnel]\nmax-tunnels=64\n' >"$work/md/10-it.conf"
ctl reload >/dev/null 2>&1
check "status lists the locked key" bash -c "wine '$stage/bin/pinholectl.exe' status | grep -q 'Locked keys:.*tunnel.max-tunnels'"
ctl set tunnel.max-tunnels 10 >/dev/null 2>&1; rc=$?
check "a drop-in locks its key live (exit 5)" [ $rc -eq 5 ]

PINHOLE_CONTROL_PIPE=$PINHOLE_CONTROL_PIPE wine "$agent_exe" --console --config "$work/agent.conf" \
  --managed-dir "$work/md" --state-dir "$work/state2" >"$work/second.log" 2>&1; rc=$?
check "a second agent on the same pipe exits 1" [ $rc -eq 1 ]
check "... saying the pipe is in use" grep -q "in use" "$work/second.log"

kill -INT "$agent_pid"; wait "$agent_pid"; rc=$?; agent_pid=
check "Ctrl-C stops the console agent cleanly" [ $rc -eq 0 ]
ctl status >/dev/null 2>&1; rc=$?
check "no agent: pinholectl exits 3" [ $rc -eq 3 ]
unset PINHOLE_CONTROL_PIPE

echo "# service mode"
port=$(free_port)
rm -rf "$pd"
mkdir -p "$pd"
write_config "$pd/pinhole.conf" "$port"
check "--install-service" wine "$agent_exe" --install-service
check "--install-service again (an upgrade) is fine" wine "$agent_exe" --install-service
evkey='HKLM\SYSTEM\CurrentControlSet\Services\EventLog\Application\Pinhole Agent'
check "the Event Log source names the agent's message table" \
  bash -c "wine reg query '$evkey' /v EventMessageFile | grep -qi 'pinhole-agent.exe'"
check "--start-service waits for RUNNING" wine "$agent_exe" --start-service
check "sc query: RUNNING" bash -c "wine sc query pinhole-agent | grep -q 'STATE.*RUNNING'"
out=$(printf '%s\n' "$password" | ctl set-credentials alice --password-stdin 2>&1); rc=$?
check "set-credentials to the service" [ $rc -eq 0 ]
ctl enable >/dev/null 2>&1
for _ in $(seq 1 50); do ctl status 2>/dev/null | grep -q "^State: *on" && break; sleep 0.2; done
check "the service's tunnel is on" bash -c "wine '$stage/bin/pinholectl.exe' status | grep -q '^State: *on'"
check "requests go through the service" through "$port"
check "the service logs to ProgramData\\Pinhole\\logs" grep -q "access client=" "$pd/logs/pinhole-agent.log"
check "... with no password" bash -c "[ -s '$pd/logs/pinhole-agent.log' ] && ! grep -qF -- '$password' '$pd/logs/pinhole-agent.log'"
check "... and no GLib warnings or criticals" bash -c "! grep -E ' (critical|warning) GLib' '$pd/logs/pinhole-agent.log'"
out=$(ctl logs -n 3 2>&1); rc=$?
check "pinholectl logs -n 3 shows its last 3 lines" test "$rc:$(grep -c . <<<"$out")" = "0:3"
check "the service's credentials are not in clear" \
  bash -c "grep -q alice '$pd/state/credentials' && ! grep -qF -- '$password' '$pd/state/credentials'"
check "--stop-service" wine "$agent_exe" --stop-service
check "sc query: STOPPED" bash -c "wine sc query pinhole-agent | grep -q 'STATE.*STOPPED'"
check "--start-service again keeps the credentials" bash -c "wine '$agent_exe' --start-service >/dev/null && wine '$stage/bin/pinholectl.exe' status | grep -q 'Credentials stored: *yes'"
check "--uninstall-service (stops it first)" wine "$agent_exe" --uninstall-service
check "the Event Log source is gone" bash -c "! wine reg query '$evkey' >/dev/null 2>&1"
check "sc query: no such service" bash -c "! wine sc query pinhole-agent >/dev/null 2>&1"
check "--uninstall-service when absent is fine" wine "$agent_exe" --uninstall-service

tap_done

#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
# test-settings-wait.sh: runs test-settings-wait (the settings window while polkit asks) as a
# user of its own under Xvfb, against pinhole-agent --system on a private system bus whose
# polkit authority is fake-polkit.py (answers after 2 s). Root only: the agent must run as
# another user than the window, or it would not ask polkit. Its TAP is the test binary's.
set -uo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=../ph-test-lib.sh
source "$HERE/../ph-test-lib.sh" # bus_config
AGENT=${PH_AGENT:?}
TEST=${PH_SETTINGS_WAIT:?}
# An unprivileged user the system bus knows (it refuses a uid without a passwd entry).
TEST_UID=$(id -u nobody)
TEST_GID=$(id -g nobody)

skip_all ()
{
  if [[ ${CI:-} == true ]]; then
    echo "Bail out! $1 (required under CI=true)"
    exit 1
  fi
  echo "1..0 # SKIP $1"
  exit 0
}

[[ $(id -u) -eq 0 ]] || skip_all "needs root (the window runs as another user than the agent)"
for tool in Xvfb import setpriv dbus-daemon python3; do
  command -v "$tool" >/dev/null || skip_all "$tool not found"
done
/usr/bin/python3 -c 'from gi.repository import Gio' 2>/dev/null || skip_all "PyGObject not found (python3-gi)"

tmp=$(mktemp -d "${TMPDIR:-/tmp}/pinhole-settings-wait.XXXXXX") || exit 1
chmod 0755 "$tmp"
mkdir -p "$tmp/state" "$tmp/managed.d" "$tmp/home" "${PH_ARTIFACTS:?}"
chown "$TEST_UID:$TEST_GID" "$tmp/home"
pids=()
status=1
cleanup ()
{
  local p
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null; done
  wait 2>/dev/null
  if ((status == 0)) && [[ -z ${PH_KEEP_TMP:-} ]]; then rm -rf "$tmp"; else echo "# files kept in $tmp"; fi
}
trap cleanup EXIT
trap "exit 1" TERM INT

bus_config system "unix:path=$tmp/system_bus" >"$tmp/bus.conf"
dbus-daemon --config-file="$tmp/bus.conf" --fork --print-pid=4 4>"$tmp/bus.pid" || exit 1
pids+=("$(cat "$tmp/bus.pid")")
export DBUS_SYSTEM_BUS_ADDRESS=unix:path=$tmp/system_bus
# The authority's answer (polkit-mode, set by the test) and what it was asked (polkit-calls).
mkdir -p "$tmp/polkit"
echo allow >"$tmp/polkit/polkit-mode"
: >"$tmp/polkit/polkit-calls"
chown "$TEST_UID:$TEST_GID" "$tmp/polkit" "$tmp/polkit/polkit-mode"
/usr/bin/python3 "$HERE/fake-polkit.py" "$tmp/polkit" >"$tmp/polkit.log" 2>&1 &
pids+=($!)
# A listener and a cloud proxy port of its own, free now; nothing needs to answer there.
read -r listen_port cloud_port < <(/usr/bin/python3 -c 'import socket
a, b = socket.socket(), socket.socket()
a.bind(("127.0.0.1", 0)); b.bind(("127.0.0.1", 0))
print(a.getsockname()[1], b.getsockname()[1])')
printf '[listener]\naddress=127.0.0.1:%s\n[upstream]\nhost=127.0.0.1\nport=%s\n' \
  "$listen_port" "$cloud_port" >"$tmp/pinhole.conf"
"$AGENT" --system --config "$tmp/pinhole.conf" --managed-dir "$tmp/managed.d" \
  --state-dir "$tmp/state" >"$tmp/agent.out" 2>"$tmp/agent.log" </dev/null &
pids+=($!)
# Xvfb picks a free display and says which; -ac: the test's user may draw on it.
Xvfb -displayfd 5 -ac -screen 0 800x760x24 5>"$tmp/display" 2>"$tmp/xvfb.log" &
pids+=($!)
for ((i = 0; i < 100; i++)); do
  [[ -s $tmp/display ]] \
    && gdbus introspect --system -d org.freedesktop.PolicyKit1 \
      -o /org/freedesktop/PolicyKit1/Authority >/dev/null 2>&1 \
    && gdbus introspect --system -d org.pinhole.Agent -o /org/pinhole/Agent1 >/dev/null 2>&1 \
    && break
  sleep 0.1
done
((i < 100)) || { echo "Bail out! the agent, the authority or Xvfb did not come up"; exit 1; }

chmod 0777 "$PH_ARTIFACTS"
setpriv --reuid=$TEST_UID --regid=$TEST_GID --clear-groups \
  env -i PATH=/usr/bin:/bin HOME="$tmp/home" XDG_CONFIG_HOME="$tmp/home/.config" \
  XDG_RUNTIME_DIR="$tmp/home" DISPLAY=":$(head -n 1 "$tmp/display")" NO_AT_BRIDGE=1 \
  GSETTINGS_BACKEND=memory DBUS_SYSTEM_BUS_ADDRESS="$DBUS_SYSTEM_BUS_ADDRESS" \
  LANG=C.UTF-8 LANGUAGE="${LANGUAGE:-en}" PINHOLE_LOCALEDIR="${PINHOLE_LOCALEDIR:-}" \
  PH_WAIT_DIR="$tmp/polkit" PH_ARTIFACTS="$PH_ARTIFACTS" PH_LANG_TAG="${PH_LANG_TAG:-en}" \
  ${ASAN_OPTIONS:+ASAN_OPTIONS=$ASAN_OPTIONS} ${UBSAN_OPTIONS:+UBSAN_OPTIONS=$UBSAN_OPTIONS} \
  ${LSAN_OPTIONS:+LSAN_OPTIONS=$LSAN_OPTIONS} G_DEBUG="${G_DEBUG:-fatal-criticals}" "$TEST" --tap
status=$?
if ((status != 0)); then
  for f in agent.log polkit.log polkit/polkit-calls; do
    echo "# ----- $f"
    tail -n 20 "$tmp/$f" | sed 's/^/#   /'
  done
fi
exit "$status"

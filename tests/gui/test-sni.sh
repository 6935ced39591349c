#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
# test-sni.sh: the tray's AppIndicator path against a real StatusNotifierItem host under Xvfb:
# status-notifier-watcher and gtk-sni-tray-standalone (Debian: haskell-status-notifier-item-utils,
# haskell-gtk-sni-tray-utils) on a private session bus, the real pinhole-tray and pinhole-agent
# --session on it. The item registers with the watcher, the host shows it, its menu is read over
# com.canonical.dbusmenu, and "Tunnel On" clicked there switches the agent on and off again.
set -uo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=../tap.sh
source "$HERE/../tap.sh"
# shellcheck source=../ph-test-lib.sh
source "$HERE/../ph-test-lib.sh"

AGENT=${PH_AGENT:?}
CTL=${PINHOLECTL:?}
TRAY=${PH_TRAY:?}
PY=/usr/bin/python3

dump_logs ()
{
  dump_files agent.log tray.log watcher.log host.log xvfb.log
}

for tool in Xvfb status-notifier-watcher gtk-sni-tray-standalone dbus-daemon import; do
  command -v "$tool" >/dev/null || skip_all "$tool not found (tests/install-deps.sh)"
done
"$PY" -c 'from gi.repository import Gio' 2>/dev/null || skip_all "PyGObject not found (python3-gi)"
[[ -x $AGENT && -x $CTL && -x $TRAY ]] || bail "pinhole-agent, pinholectl or pinhole-tray missing"

ph_make_tmp sni
procs=()
cleanup ()
{
  local p
  for ((p = ${#procs[@]} - 1; p >= 0; p--)); do stop_pid "${procs[p]}" 30 2>/dev/null; done
  [[ -n $agent_pid ]] && stop_pid "$agent_pid" 30 2>/dev/null
  [[ -n $bus_pid ]] && kill "$bus_pid" 2>/dev/null
  ph_remove_tmp
}
trap cleanup EXIT
trap "exit 1" TERM INT

start_session_bus
Xvfb -displayfd 5 -ac -screen 0 640x200x24 5>"$tmp/display" 2>"$tmp/xvfb.log" &
procs+=($!)
for ((i = 0; i < 100; i++)); do [[ -s $tmp/display ]] && break; sleep 0.1; done
[[ -s $tmp/display ]] || bail "Xvfb did not start"
DISPLAY=":$(head -n 1 "$tmp/display")"
export DISPLAY DBUS_SESSION_BUS_ADDRESS=$bus_address NO_AT_BRIDGE=1

# wait_for SECONDS COMMAND...: polls COMMAND until it succeeds.
wait_for ()
{
  local seconds=$1 i
  shift
  for ((i = 0; i < seconds * 10; i++)); do
    "$@" >/dev/null 2>&1 && return 0
    sleep 0.1
  done
  return 1
}
watcher_prop ()
{
  gdbus call --session -d org.kde.StatusNotifierWatcher -o /StatusNotifierWatcher \
    -m org.freedesktop.DBus.Properties.Get org.kde.StatusNotifierWatcher "$1"
}

status-notifier-watcher >"$tmp/watcher.log" 2>&1 &
procs+=($!)
wait_for 10 watcher_prop ProtocolVersion
verdict_then "status-notifier-watcher owns org.kde.StatusNotifierWatcher" watcher_prop ProtocolVersion
# The host finds the item's icon by name in the icon theme: Pinhole's, as installed.
mkdir -p "$tmp/share/icons/hicolor/scalable/status"
cp "$PH_SRCDIR"/gui/icons/pinhole-*.svg "$tmp/share/icons/hicolor/scalable/status/"
cp /usr/share/icons/hicolor/index.theme "$tmp/share/icons/hicolor/" 2>/dev/null
XDG_DATA_DIRS="$tmp/share:/usr/share" gtk-sni-tray-standalone --top --size 32 --color '#dddddd' \
  >"$tmp/host.log" 2>&1 &
procs+=($!)
host_registered () { [[ $(watcher_prop IsStatusNotifierHostRegistered) == "(<true>,)" ]]; }
wait_for 20 host_registered
verdict_then "gtk-sni-tray-standalone registered as the host" watcher_prop IsStatusNotifierHostRegistered

# The agent: off, with a cloud proxy that does not answer (Enabled is what is checked).
listen_port=$(free_port)
cloud_port=$(free_port)
printf '[listener]\naddress=127.0.0.1:%s\n[upstream]\nhost=127.0.0.1\nport=%s\n' \
  "$listen_port" "$cloud_port" >"$tmp/system.conf"
start_agent || bail "the agent did not start"
ctl --session disable
wait_field enabled false 10 >/dev/null

env HOME="$tmp/home" XDG_CONFIG_HOME="$tmp/config" XDG_STATE_HOME="$tmp/state" \
  XDG_RUNTIME_DIR="$tmp/runtime" GSETTINGS_BACKEND=memory LANG=C.UTF-8 LANGUAGE=en \
  "$TRAY" --session >"$tmp/tray.log" 2>&1 &
procs+=($!)
item_registered () { [[ $(watcher_prop RegisteredStatusNotifierItems) != "(<@as []>,)" ]]; }
wait_for 20 item_registered
verdict_then "the tray registered its StatusNotifierItem with the watcher" \
  watcher_prop RegisteredStatusNotifierItems
wait_for 10 "$PY" "$HERE/sni-menu.py" list
menu=$("$PY" "$HERE/sni-menu.py" list 2>&1)
grep -qx "Tunnel On" <<<"$menu" && grep -qx "Settings…" <<<"$menu" && grep -qx "Quit" <<<"$menu"
verdict "the item's dbusmenu (GetLayout) has Tunnel On, Settings… and Quit" "$menu"

"$PY" "$HERE/sni-menu.py" click "Tunnel On" >"$tmp/click.out" 2>&1
verdict_then "Event \"clicked\" on Tunnel On was accepted" cat "$tmp/click.out"
detail=$(wait_field enabled true 10)
verdict "the agent's Enabled went to true" "$detail"
# The host's bar with the item's icon, now pinhole-connecting or pinhole-error.
sleep 1
if [[ -n ${PH_ARTIFACTS:-} ]]; then
  mkdir -p "$PH_ARTIFACTS" && import -window root -crop 640x32+0+0 "$PH_ARTIFACTS/sni-host.png"
fi
"$PY" "$HERE/sni-menu.py" click "Tunnel On" >"$tmp/click2.out" 2>&1
clicked=$?
detail=$(wait_field enabled false 10)
((clicked == 0)) && [[ -z $detail ]]
verdict "clicked again, Enabled went back to false" "$(cat "$tmp/click2.out")" "$detail"

tap_done

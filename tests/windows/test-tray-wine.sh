#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
# test-tray-wine.sh BUILDDIR: the Windows tray (pinhole-tray.exe of a cross-build made with
# PH_WIN_GTK=1) under Wine, on an Xvfb display of its own, in English and in Simplified Chinese.
# The real pinhole-agent.exe runs in the console against a real cloud end (stunnel + Squid on
# loopback, tests/cloud/pinhole-cloud.sh) on a private pipe, with the tunnel on, so that the
# window shows real values and the tray points WinINet's proxy at the agent.
#
# Checks what a machine can check: the settings window (--settings) appears with its title in
# the language asked for; the Diagnose window (--diagnose) shows the agent's report; the tray's log has no critical; it keeps running; it sets the system
# proxy (journal first) and puts it back when it quits as asked (WM_CLOSE, as taskkill and
# installers send) and when the session ends (WM_ENDSESSION); after a kill, --restore-proxy puts
# it back and exits 0; a second start exits at once and makes the first show its settings.
# Screenshots (PNG) and logs go to BUILDDIR/tests/windows/artifacts/: a person looks at them.
# Prints TAP (tests/tap.sh).
# The settings window is shot twice: without an agent, and with it (settings-*-agent.png: the
# agent's values, the pins in DejaVu Sans Mono, which wine-fonts.sh registers).
# Without stunnel or Squid (or with PH_TRAY_NO_AGENT=1) the tray runs without an agent.
# PH_TRAY_SETTLE: seconds given to a window to draw before its screenshot (3).
#
#   bash tests/windows/test-tray-wine.sh /tmp/bw     (after PH_WIN_GTK=1 cross-build.sh /tmp/bw)
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
builddir=$(cd "${1:?usage: test-tray-wine.sh BUILDDIR}" && pwd)
out="$builddir/tests/windows"
artifacts="$out/artifacts"
stage="$out/stage"
# A prefix of this test's own, whose fonts are exactly those of wine-fonts.sh; everything here
# (taskkill, wineserver -k) acts on it alone.
export WINEPREFIX="$out/wine-prefix"

say () { echo "# $*"; }
# shellcheck source=tests/tap.sh
source "$root/tests/tap.sh"
dump_logs ()
{
  local f
  for f in "$artifacts"/tray-*.log "$artifacts"/agent.log; do
    [ -f "$f" ] || continue
    echo "# --- $(basename "$f") (end)"
    grep -v '^$' "$f" | tail -n 15 | sed 's/^/#   /'
  done
}

# --- tools: installed from Debian when missing -------------------------------------------------
need=()
command -v Xvfb >/dev/null || need+=(xvfb)
command -v xwininfo >/dev/null || need+=(x11-utils)
command -v import >/dev/null || need+=(imagemagick)
command -v wine >/dev/null || need+=(wine wine64)
command -v fc-scan >/dev/null || need+=(fontconfig)
[ -f /usr/share/wine/fonts/tahoma.ttf ] || need+=(fonts-wine)
[ -f /usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc ] || need+=(fonts-noto-cjk)
if [ ${#need[@]} -gt 0 ]; then
  say "installing ${need[*]}"
  sudo=
  [ "$(id -u)" -eq 0 ] || sudo=sudo
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -q --no-install-recommends "${need[@]}" >&2
fi

# --- the Windows tree, as the installer lays it out: bin\ beside share\locale ------------------
[ -f "$builddir/gui/pinhole-tray.exe" ] || skip_all "no gui/pinhole-tray.exe in $builddir (PH_WIN_GTK=1)"
rm -rf "$stage" "$artifacts"
mkdir -p "$artifacts"
meson install -C "$builddir" --destdir "$stage" --no-rebuild >"$artifacts/install.log" 2>&1
tray="$stage/bin/pinhole-tray.exe"

# --- the display ------------------------------------------------------------------------------
# Xvfb picks a free display and writes its number to -displayfd.
rm -f "$out/display"
Xvfb -displayfd 3 -screen 0 1280x1024x24 -nolisten tcp 3>"$out/display" 2>"$artifacts/xvfb.log" &
xvfb_pid=$!
for ((i = 0; i < 100; i++)); do
  [ -s "$out/display" ] && break
  sleep 0.1
done
[ -s "$out/display" ] || bail "Xvfb did not start (see xvfb.log)"
sleep 0.2 # the number's newline
export DISPLAY=":$(head -1 "$out/display")"
cleanup ()
{
  wine taskkill /F /IM pinhole-tray.exe >/dev/null 2>&1 || true
  [ -n "${agent_pid:-}" ] && kill -INT "$agent_pid" 2>/dev/null
  [ -d "${work:-}/cloud" ] && bash "$root/tests/cloud/pinhole-cloud.sh" stop "$work/cloud" >/dev/null 2>&1
  wineserver -k 2>/dev/null || true
  kill "$xvfb_pid" 2>/dev/null || true
}
trap cleanup EXIT
export PH_WIN_GTK=1
# shellcheck source=tests/windows/env.sh
source "$root/tests/windows/env.sh" 2>/dev/null
# shellcheck source=tests/windows/wine-fonts.sh
source "$root/tests/windows/wine-fonts.sh"

# Wine's desktop process (explorer.exe) keeps the display it started with: one started above
# (wineboot, regedit) without the display would leave the tray with no windows at all.
wineserver -k 2>/dev/null || true
wineserver -w
# GDK loads Wine's wintab32 for tablets, whose hidden window answers FALSE to
# WM_QUERYENDSESSION and so cancels every end of session: no tablet input here.
export GDK_WIN32_TABLET_INPUT_API=none
say "Xvfb on $DISPLAY, Wine prefix $WINEPREFIX"

# --- helpers ----------------------------------------------------------------------------------
tray_pid=

# start_tray LOG ENV... -- ARGS...: the tray in the background, its stderr in LOG.
start_tray ()
{
  local log=$1
  shift
  local envs=()
  while [ "$1" != -- ]; do
    envs+=("$1")
    shift
  done
  shift
  env "${envs[@]}" wine "$tray" "$@" >"$log" 2>&1 &
  tray_pid=$!
}

# wait_window TITLE SECONDS: prints the id of a viewable window named TITLE once there is one.
# (xwininfo, not xdotool's regular expressions, which miss UTF-8 titles.)
wait_window ()
{
  local i id
  for ((i = 0; i < $2 * 4; i++)); do
    for id in $(xwininfo -root -tree 2>/dev/null | grep -F "\"$1\": (" | awk '{ print $1 }'); do
      if xwininfo -id "$id" 2>/dev/null | grep -q 'Map State: IsViewable'; then
        echo "$id"
        return 0
      fi
    done
    sleep 0.25
  done
  return 1
}

# tray_windows_gone SECONDS: no X window of pinhole-tray.exe is left.
tray_windows_gone ()
{
  local i
  for ((i = 0; i < $1 * 4; i++)); do
    xwininfo -root -tree 2>/dev/null | grep -q '"pinhole-tray.exe"' || return 0
    sleep 0.25
  done
  return 1
}

# The process started with wine is the Windows process itself.
tray_running () { kill -0 "$tray_pid" 2>/dev/null; }

wait_exit ()
{
  local i
  for ((i = 0; i < $1 * 4; i++)); do
    tray_running || { wait "$tray_pid" 2>/dev/null || true; return 0; }
    sleep 0.25
  done
  return 1
}

no_criticals ()
{
  if grep -n 'CRITICAL' "$1" >&2; then
    fail "$2: criticals in $(basename "$1")"
  else
    pass "$2: no critical in the log"
  fi
}

# --- the settings window, in each language ------------------------------------------------------
# The language: LC_ALL. libintl on Windows asks the C runtime's locale, which Wine derives from
# the Unix locale but also keeps in the prefix's registry from earlier processes, so LANG alone
# chose Chinese in some runs and not in others.
# The translated title, from the catalogue itself.
title_zh=$(awk '/^msgid "Pinhole Settings"$/ { getline; sub(/^msgstr "/, ""); sub(/"$/, ""); print }' \
  "$root/po/zh_CN.po")

settings_runs () # SUFFIX: of the artifacts' names
{
  local run name title lang log id
  for run in "en|Pinhole Settings|LC_ALL=en_US.UTF-8" "zh_CN|$title_zh|LC_ALL=zh_CN.UTF-8"; do
    IFS='|' read -r name title lang <<<"$run"
    name=$name$1
    log="$artifacts/tray-$name.log"
    start_tray "$log" "$lang" G_MESSAGES_DEBUG=pinhole-tray -- --settings
    if ! id=$(wait_window "$title" 60); then
      fail "$name: no window named '$title' (windows: $(xwininfo -root -tree | grep -c '"' || true))"
      xwininfo -root -tree >"$artifacts/windows-$name.txt" 2>&1 || true
      import -window root "$artifacts/screen-$name.png" || true
      wine taskkill /F /IM pinhole-tray.exe >/dev/null 2>&1 || true
      wait_exit 10 || true
      continue
    fi
    pass "$name: settings window '$title' ($id)"
    # Let it draw, then keep running a while: no crash, no exit.
    sleep "${PH_TRAY_SETTLE:-3}"
    import -window "$id" "$artifacts/settings-$name.png"
    import -window root "$artifacts/screen-$name.png"
    pass "$name: screenshot $artifacts/settings-$name.png"
    sleep 2
    if tray_running; then
      pass "$name: still running"
    else
      fail "$name: the tray exited"
    fi
    if [ -n "$agent" ]; then
      if wait_for 20 proxy_is_ours && [ -s "$journal" ]; then
        pass "$name: the system proxy points at the agent, journal written"
      else
        fail "$name: the system proxy was not set (ProxyServer '$(reg_value ProxyServer)')"
      fi
    fi
    # Closed as taskkill and installers do: WM_CLOSE to its windows.
    wine taskkill /IM pinhole-tray.exe >/dev/null 2>&1 || true
    if wait_exit 15 && grep -q 'asked to close' "$log"; then
      pass "$name: quit on WM_CLOSE"
      if [ -n "$agent" ]; then
        if proxy_is_back; then
          pass "$name: the system proxy is back, the journal gone"
        else
          fail "$name: the system proxy was not put back"
        fi
      fi
    else
      fail "$name: did not quit on WM_CLOSE"
      wine taskkill /F /IM pinhole-tray.exe >/dev/null 2>&1 || true
      wait_exit 10 || true
    fi
    # The Unix process ends before Wine has let go of the tray's windows and its one-tray-per-
    # session mutex: a tray started at once would find that one and only ask it for its
    # settings window.
    tray_windows_gone 15 || true
    no_criticals "$log" "$name"
  done
}

# The window without an agent first, then with it (its values in the window).
agent=
settings_runs ""

# --- Group Policy: a key IT set in the registry is locked in the tray -------------------------
policy_key='HKLM\Software\Policies\Pinhole'
wine reg add "$policy_key\route" /v block /t REG_SZ /d ads.example /f /reg:64 >/dev/null 2>&1

# --- the agent and the cloud end -----------------------------------------------------------------
export PINHOLE_CONTROL_PIPE='\\.\pipe\pinhole-tray-test-'$$
work="$out/work"
rm -rf "$work"
mkdir -p "$work/md" "$work/state"
chmod 755 "$work" # Squid runs as its own user and reads the cloud directory
agent=
agent_pid=
port=
if [ "${PH_TRAY_NO_AGENT:-0}" != 1 ] && [ -f "$stage/bin/pinhole-agent.exe" ] \
  && command -v stunnel4 >/dev/null && command -v squid >/dev/null; then
  if bash "$root/tests/cloud/pinhole-cloud.sh" start "$work/cloud" >"$artifacts/cloud.log" 2>&1; then
    port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
    bash "$root/tests/cloud/pinhole-cloud.sh" agent-config "$work/cloud" "$work/agent.conf" "$port"
    wine "$stage/bin/pinhole-agent.exe" --console --config "$work/agent.conf" \
      --managed-dir "$work/md" --state-dir "$work/state" >"$artifacts/agent.log" 2>&1 &
    agent_pid=$!
    for ((i = 0; i < 100; i++)); do
      wine "$stage/bin/pinholectl.exe" enable >/dev/null 2>&1 && break
      sleep 0.3
    done
    for ((i = 0; i < 100; i++)); do
      wine "$stage/bin/pinholectl.exe" status 2>/dev/null | tr -d '\r' >"$artifacts/agent-status.txt"
      grep -q '^State: *on' "$artifacts/agent-status.txt" && break
      sleep 0.3
    done
    if grep -q '^State: *on' "$artifacts/agent-status.txt"; then
      agent=1
      pass "agent: on, listening on 127.0.0.1:$port"
    else
      fail "agent: not on (see agent.log, agent-status.txt)"
    fi
  else
    fail "the cloud end did not start (see cloud.log)"
  fi
else
  say "no agent: stunnel, Squid or pinhole-agent.exe missing, or PH_TRAY_NO_AGENT=1"
fi

# --- the system proxy: WinINet's values in the registry, the tray's journal --------------------
inet='HKCU\Software\Microsoft\Windows\CurrentVersion\Internet Settings'
journal="$WINEPREFIX/drive_c/users/$(id -un)/AppData/Local/Pinhole/system-proxy.journal"
reg_value () # NAME: the value's data, or nothing
{
  wine reg query "$inet" /v "$1" 2>/dev/null | tr -d '\r' | awk -v n="$1" '$1 == n { print $3 }'
}
proxy_is_ours () { [ "$(reg_value ProxyEnable)" = 0x1 ] && reg_value ProxyServer | grep -q "127.0.0.1:$port"; }
proxy_is_back () { [ "$(reg_value ProxyEnable)" != 0x1 ] && [ ! -e "$journal" ]; }
wait_for () # SECONDS COMMAND...
{
  local i n=$(($1 * 2))
  shift
  for ((i = 0; i < n; i++)); do
    "$@" && return 0
    sleep 0.5
  done
  return 1
}
# Wine's default: no proxy.
wine reg add "$inet" /v ProxyEnable /t REG_DWORD /d 0 /f >/dev/null 2>&1
rm -f "$journal"

settings_runs "-agent"

if [ -n "$agent" ]; then
  if wine "$stage/bin/pinholectl.exe" status 2>/dev/null | grep -q 'Locked keys:.*route.block'; then
    pass "policy: pinholectl status lists route.block (set in $policy_key\route) as locked"
  else
    fail "policy: route.block is not locked in pinholectl status"
  fi
  for name in en zh_CN; do
    if grep -q 'route.block is set by the administrator' "$artifacts/tray-$name-agent.log"; then
      pass "policy: $name: the tray locks the route.block field (settings-$name-agent.png)"
    else
      fail "policy: $name: the tray did not lock route.block (tray-$name-agent.log)"
    fi
  done
fi

# --- the Diagnose window (--diagnose runs it at once), in each language ------------------------
title_diag_zh=$(awk '/^msgid "Diagnose Pinhole"$/ { getline; sub(/^msgstr "/, ""); sub(/"$/, ""); print }' \
  "$root/po/zh_CN.po")
if [ -n "$agent" ]; then
  for run in "en|Diagnose Pinhole|LC_ALL=en_US.UTF-8" "zh_CN|$title_diag_zh|LC_ALL=zh_CN.UTF-8"; do
    IFS='|' read -r name title lang <<<"$run"
    log="$artifacts/tray-diagnose-$name.log"
    start_tray "$log" "$lang" -- --diagnose
    if ! id=$(wait_window "$title" 60); then
      fail "diagnose $name: no window named '$title'"
      import -window root "$artifacts/screen-diagnose-$name.png" || true
    else
      pass "diagnose $name: window '$title' ($id)"
      if wait_for 60 grep -q 'diagnosis done: ' "$log"; then
        pass "diagnose $name: the agent's report is shown ($(grep -o 'diagnosis done: .*' "$log" | head -1 | tr -d '\r'))"
      else
        fail "diagnose $name: no report (see $(basename "$log"))"
      fi
      sleep "${PH_TRAY_SETTLE:-3}"
      import -window "$id" "$artifacts/diagnose-$name.png"
      pass "diagnose $name: screenshot $artifacts/diagnose-$name.png"
    fi
    wine taskkill /IM pinhole-tray.exe >/dev/null 2>&1 || true
    if ! wait_exit 15; then
      wine taskkill /F /IM pinhole-tray.exe >/dev/null 2>&1 || true
      wait_exit 10 || true
    fi
    tray_windows_gone 15 || true
    no_criticals "$log" "diagnose $name"
  done
fi

# --- the Connections window and the support report ----------------------------------------------
# A client's request through the agent to a loopback origin (through the cloud Squid) that
# sends the start of a long body and then waits: the window lists it while it is under way.
title_conn_zh=$(awk '/^msgid "Pinhole Connections"$/ { getline; sub(/^msgstr "/, ""); sub(/"$/, ""); print }' \
  "$root/po/zh_CN.po")
if [ -n "$agent" ]; then
  origin_port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
  python3 - "$origin_port" >"$artifacts/origin.log" 2>&1 <<'PYEOF' &
import socket, sys, threading, time
def serve(c):
    head = b""
    while b"\r\n\r\n" not in head:
        chunk = c.recv(4096)
        if not chunk:
            return
        head += chunk
    c.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 10000000\r\n\r\n" + b"hello from the origin\n" * 3000)
    time.sleep(180)
srv = socket.socket()
srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
srv.bind(("127.0.0.1", int(sys.argv[1])))
srv.listen(8)
while True:
    threading.Thread(target=serve, args=(srv.accept()[0],), daemon=True).start()
PYEOF
  origin_pid=$!
  python3 - "$port" "$origin_port" >"$artifacts/slow-client.log" 2>&1 <<'PYEOF' &
import socket, sys, time
agent, origin = int(sys.argv[1]), int(sys.argv[2])
for _ in range(50):
    try:
        socket.create_connection(("127.0.0.1", origin)).close()
        break
    except OSError:
        time.sleep(0.2)
s = socket.create_connection(("127.0.0.1", agent))
s.sendall(b"GET http://127.0.0.1:%d/ HTTP/1.1\r\nHost: 127.0.0.1:%d\r\n\r\n" % (origin, origin))
data = b""
while b"hello from the origin" not in data:
    chunk = s.recv(65536)
    if not chunk:
        break
    data += chunk
print(data.split(b"\r\n")[0].decode(), flush=True)
time.sleep(150)
PYEOF
  client_pid=$!
  if wait_for 30 grep -q '^HTTP/1.1 200' "$artifacts/slow-client.log"; then
    pass "connections: a client's request went through the agent, its body still coming"
  else
    fail "connections: the client's request failed ($(head -c 200 "$artifacts/slow-client.log"))"
  fi
  wine "$stage/bin/pinholectl.exe" connections 2>/dev/null | tr -d '\r' >"$artifacts/connections.txt"
  if grep -q "127.0.0.1:$origin_port" "$artifacts/connections.txt"; then
    pass "connections: pinholectl.exe connections lists it"
  else
    fail "connections: pinholectl.exe connections does not list 127.0.0.1:$origin_port"
  fi
  for run in "en|Pinhole Connections|LC_ALL=en_US.UTF-8" "zh_CN|$title_conn_zh|LC_ALL=zh_CN.UTF-8"; do
    IFS='|' read -r name title lang <<<"$run"
    log="$artifacts/tray-connections-$name.log"
    start_tray "$log" "$lang" G_MESSAGES_DEBUG=pinhole-tray -- --connections
    if ! id=$(wait_window "$title" 60); then
      fail "connections $name: no window named '$title'"
      import -window root "$artifacts/screen-connections-$name.png" || true
    else
      pass "connections $name: window '$title' ($id)"
      if wait_for 30 grep -q 'connections window: [1-9][0-9]* open' "$log"; then
        pass "connections $name: the window lists the open connection"
      else
        fail "connections $name: the window listed none (see $(basename "$log"))"
      fi
      sleep "${PH_TRAY_SETTLE:-3}"
      import -window "$id" "$artifacts/connections-$name.png"
      pass "connections $name: screenshot $artifacts/connections-$name.png"
    fi
    wine taskkill /IM pinhole-tray.exe >/dev/null 2>&1 || true
    if ! wait_exit 15; then
      wine taskkill /F /IM pinhole-tray.exe >/dev/null 2>&1 || true
      wait_exit 10 || true
    fi
    tray_windows_gone 15 || true
    no_criticals "$log" "connections $name"
  done

  # The support bundle, as a help desk gets it: every section, no secret.
  report="$work/report.txt"
  # The console agent's log is its stderr; the service's would be found by itself.
  if wine "$stage/bin/pinholectl.exe" report "$report" "$artifacts/agent.log" \
    >"$artifacts/report.log" 2>&1; then
    pass "report: pinholectl.exe report wrote $(wc -c <"$report") bytes"
    cp "$report" "$artifacts/report.txt"
  else
    fail "report: pinholectl.exe report failed ($(tr -d '\r' <"$artifacts/report.log" | head -3))"
  fi
  missing=
  for section in status statistics settings connections doctor log; do
    grep -q "^== $section" "$report" 2>/dev/null || missing="$missing $section"
  done
  if [ -z "$missing" ]; then
    pass "report: status, statistics, settings, connections, doctor and log sections"
  else
    fail "report: sections missing:$missing"
  fi
  if sed -n '/^== connections/,/^== doctor/p' "$report" | grep -q "127.0.0.1:$origin_port" \
    && grep -q '^route.block = ads.example' "$report"; then
    pass "report: it lists the open connection and the policy's setting"
  else
    fail "report: the connection or the policy's setting is missing"
  fi
  secret=$(cat "$work/cloud/password")
  secret_b64=$(printf '%s:%s' "$(sed -n 's/^PH_CLOUD_USER=//p' "$work/cloud/cloud.env")" "$secret" | base64)
  if [ -n "$secret" ] && ! grep -qF -e "$secret" -e "$secret_b64" "$report"; then
    pass "report: neither the password nor its base64 is in it"
  else
    fail "report: the password is in the report"
  fi
  kill "$client_pid" "$origin_pid" 2>/dev/null || true
fi

# --- one tray per session: a second start shows the first one's settings ------------------------
log="$artifacts/tray-single.log"
start_tray "$log" LANG=en_US.UTF-8 --
sleep 6
if wait_window 'Pinhole Settings' 0 >/dev/null || wait_window 'Pinhole Settings' 1 >/dev/null; then
  fail "single: the settings window opened without --settings"
fi
if LANG=en_US.UTF-8 timeout 60 wine "$tray" >"$artifacts/tray-second.log" 2>&1; then
  pass "second start: exited 0"
else
  fail "second start: exit status $?"
fi
if wait_window 'Pinhole Settings' 30 >/dev/null; then
  pass "second start: the first tray showed its settings window"
else
  fail "second start: no settings window"
fi
if tray_running; then pass "single: the first tray still runs"; else fail "single: the first tray is gone"; fi

# --- a problem is notified: a balloon (GLib has no Windows GNotification backend) --------------
if [ -n "$agent" ]; then
  ctl () { wine "$stage/bin/pinholectl.exe" "$@" 2>/dev/null | tr -d '\r'; }
  tls_port=$(sed -n 's/^PH_CLOUD_TLS_PORT=//p' "$work/cloud/cloud.env")
  ctl set upstream.port 9 >/dev/null
  if wait_for 30 grep -q 'notification: The cloud proxy cannot be reached' "$log"; then
    pass "notification: the balloon for an unreachable cloud proxy was posted (Shell_NotifyIcon; Wine does not draw it here)"
  else
    fail "notification: none for an unreachable cloud proxy"
  fi
  sleep 1
  import -window root "$artifacts/screen-notification.png" || true
  ctl set upstream.port "$tls_port" >/dev/null
  if wait_for 30 bash -c "wine '$stage/bin/pinholectl.exe' status 2>/dev/null | grep -q '^State: *on'"; then
    pass "notification: the tunnel is back on"
  else
    fail "notification: the tunnel did not come back"
  fi
fi

# --- the end of the session: WM_QUERYENDSESSION, WM_ENDSESSION ---------------------------------
if [ -n "$agent" ]; then
  if wait_for 20 proxy_is_ours; then
    pass "end of session: before it, the system proxy points at the agent"
  else
    fail "end of session: the system proxy was not set before it"
  fi
fi
wineboot --end-session >/dev/null 2>&1 || true
if wait_exit 20 && grep -q 'the session is ending' "$log"; then
  pass "end of session: the tray saw it and quit"
  if [ -n "$agent" ]; then
    if proxy_is_back; then
      pass "end of session: the system proxy is back, the journal gone"
    else
      fail "end of session: the system proxy was not put back"
    fi
  fi
else
  fail "end of session: not seen (see tray-single.log)"
  wine taskkill /F /IM pinhole-tray.exe >/dev/null 2>&1 || true
  wait_exit 10 || true
fi
no_criticals "$log" single

# --- --restore-proxy, as the uninstaller runs it ----------------------------------------------
if [ -n "$agent" ]; then
  # A tray killed outright (taskkill /F, as the installer does) leaves the proxy and its journal.
  start_tray "$artifacts/tray-killed.log" LANG=en_US.UTF-8 --
  if wait_for 30 proxy_is_ours && [ -s "$journal" ]; then
    wine taskkill /F /IM pinhole-tray.exe >/dev/null 2>&1 || true
    wait_exit 15 || true
    if proxy_is_ours && [ -s "$journal" ]; then
      pass "killed: the proxy and the journal are left"
    else
      fail "killed: expected the proxy and the journal to be left"
    fi
  else
    fail "killed: the tray did not set the system proxy"
  fi
fi
if wine "$tray" --restore-proxy >"$artifacts/restore-proxy.log" 2>&1; then
  pass "--restore-proxy: exit 0 ($(tr -d '\r' <"$artifacts/restore-proxy.log" | head -1))"
else
  fail "--restore-proxy: exit status $?"
fi
if [ -n "$agent" ]; then
  if proxy_is_back; then
    pass "--restore-proxy: the system proxy is back, the journal gone"
  else
    fail "--restore-proxy: the system proxy was not put back"
  fi
  if wine "$tray" --restore-proxy >"$artifacts/restore-proxy-again.log" 2>&1 \
    && grep -q 'Nothing to put back' "$artifacts/restore-proxy-again.log"; then
    pass "--restore-proxy again: nothing to do, exit 0"
  else
    fail "--restore-proxy again"
  fi
fi

# --- a standard user's tray: the path to an administrator --------------------------------------
# ph-run-limited.exe (a test program) runs a program with the filtered token that a standard
# user's programs, or an un-elevated administrator's, get. The agent lets such a client switch
# the tunnel, not change it. Two changes are refused to this tray, and each time it asks for an
# administrator: pinholectl.exe apply-from-tray \\.\pipe\pinhole-elevate-… through ShellExecuteEx
# "runas", handing it the change on that pipe: a setting changed in Settings (the choice "When
# the cloud proxy is unreachable", with the mouse: GTK under Wine has no keyboard layout to
# type with) and Apply; then "Trust This Key…" for a key the agent was not told to trust, and
# Trust. Windows would show UAC's consent prompt each time and run the helper elevated, and the
# change would be made (the helper's own path is tested to the end by test-control-pipe). Wine 8
# asks nobody and starts the helper with the tray's filtered token, so the agent refuses the
# helper too: what is seen here is the helper's invocation, its request reaching the agent, and
# the tray saying it was refused. The places clicked are those of elevate-*.png.
limited="$builddir/tests/ph-run-limited.exe"
if [ -n "$agent" ]; then
  rc=0
  wine "$limited" "$stage/bin/pinholectl.exe" set route.direct intranet.example \
    >"$artifacts/limited-set.log" 2>&1 || rc=$?
  if [ $rc -eq 4 ]; then
    pass "standard user: pinholectl.exe set is refused (exit 4: needs an administrator)"
  else
    fail "standard user: pinholectl.exe set exited $rc, not 4"
  fi
  # A key the agent does not trust: the window offers "Trust This Key…".
  wine "$stage/bin/pinholectl.exe" set upstream.pins \
    'sha256//AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=' >/dev/null 2>&1 || true
  refused () { grep -c "refused $1 from a pipe client" "$artifacts/agent.log" || true; }
  set_before=$(refused SetSetting)
  trust_before=$(refused TrustPin)
  log="$artifacts/tray-elevate.log"
  LC_ALL=en_US.UTF-8 G_MESSAGES_DEBUG=pinhole-tray \
    wine "$limited" "$tray" --settings >"$log" 2>&1 &
  tray_pid=$!
  if ! id=$(wait_window 'Pinhole Settings' 60); then
    fail "elevation: no settings window for the standard user's tray"
  else
    sleep "${PH_TRAY_SETTLE:-3}"
    import -window "$id" "$artifacts/elevate-before.png"
    # "When the cloud proxy is unreachable": open its list, take its second item, Apply.
    xdotool mousemove --window "$id" 309 538 click 1
    popup=
    for ((i = 0; i < 40; i++)); do
      popup=$(xwininfo -root -tree | awk '/"pinhole-tray.exe": \("pinhole-tray.exe"/ {
        split($5, g, /[x+]/); if (g[1] > 50 && g[2] > 30 && g[3] >= 0) print $1 }' | head -1)
      [ -n "$popup" ] && break
      sleep 0.25
    done
    sleep 0.5
    [ -n "$popup" ] && xdotool mousemove --window "$popup" 70 50 click 1
    sleep 1
    xdotool mousemove --window "$id" 556 702 click 1
    if wait_for 30 grep -q 'asking for an administrator: .*pinholectl.exe apply-from-tray \\\\.\\pipe\\pinhole-elevate-' "$log"; then
      pass "elevation: Settings asked for an administrator: $(grep -o 'asking for an administrator: .*' "$log" | head -1 | tr -d '\r')"
    else
      fail "elevation: Settings did not start the helper (see tray-elevate.log, elevate-settings.png)"
    fi
    if wait_for 30 bash -c "[ \$(grep -c 'refused SetSetting from a pipe client' '$artifacts/agent.log') -ge $((set_before + 2)) ]"; then
      pass "elevation: the agent refused the tray's SetSetting, then the helper's (Wine: not elevated)"
    else
      fail "elevation: the agent did not see the helper's SetSetting ($(($(refused SetSetting) - set_before)) refusals)"
    fi
    if wait_for 30 grep -q "the administrator's helper: not authorized" "$log"; then
      pass "elevation: the window shows the helper's answer (elevate-settings.png)"
    else
      fail "elevation: the window did not show the helper's answer"
    fi
    sleep 1
    import -window "$id" "$artifacts/elevate-settings.png"
    # "Trust This Key…", then Trust in its dialog.
    xdotool mousemove --window "$id" 298 222 click 1
    if did=$(wait_window 'Trust Server Key' 30); then
      sleep 1
      import -window "$did" "$artifacts/elevate-trust.png"
      w=$(xwininfo -id "$did" | awk '/Width:/ { print $2 }')
      h=$(xwininfo -id "$did" | awk '/Height:/ { print $2 }')
      xdotool mousemove --window "$did" $((w * 3 / 4)) $((h - 17)) click 1
      if wait_for 30 grep -q 'the agent needs an administrator to trust a key' "$log" \
        && wait_for 30 bash -c "[ \$(grep -c 'refused TrustPin from a pipe client' '$artifacts/agent.log') -ge $((trust_before + 2)) ] && [ \$(grep -c 'asking for an administrator' '$log') -ge 2 ]"; then
        pass "elevation: Trust asked for an administrator, whose TrustPin reached the agent"
      else
        fail "elevation: the trust of a key did not go to the helper ($(($(refused TrustPin) - trust_before)) refusals)"
      fi
    else
      fail "elevation: no 'Trust Server Key' dialog"
    fi
  fi
  wine taskkill /IM pinhole-tray.exe >/dev/null 2>&1 || true
  if ! wait_exit 15; then
    wine taskkill /F /IM pinhole-tray.exe >/dev/null 2>&1 || true
    wait_exit 10 || true
  fi
  no_criticals "$log" elevation
  # The spinner shown while the helper runs has its icon (the resource's, ph-tray-icons).
  if grep -q "Could not find the icon" "$log"; then
    fail "elevation: an icon is missing ($(grep -o "Could not find the icon '[^']*'" "$log" | head -1))"
  else
    pass "elevation: every icon the window asked for was found (the spinner's too)"
  fi
fi

say "artifacts: $artifacts"
tap_done

#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
# test-installer.sh [SETUP.exe]: the Windows installer end to end under Wine, TAP output. Without
# SETUP.exe it builds one with installer/nsis/build-installer.sh (PH_WIN_GTK=0: without the tray).
#
# In a fresh Wine prefix, against the real cloud end of tests/cloud/pinhole-cloud.sh (stunnel +
# Squid with Basic auth + ph-test-origin, on loopback): silent install with /CONFIG= (a managed
# drop-in naming the cloud end, its pin and the listener port; the Group Policy templates in
# PolicyDefinitions) -> the service pinhole-agent runs
# -> credentials through pinholectl.exe over the control pipe -> curl on Linux reaches the origin
# through the agent under Wine -> pinholectl.exe status -> an upgrade keeps the edited
# pinhole.conf, the drop-in and the credentials -> silent uninstall removes the service, Program
# Files\Pinhole, the registry entries and keeps %ProgramData%\Pinhole -> a reinstall finds the
# configuration again -> uninstall /PURGE removes it.
#
# Environment: CI=true turns a missing tool into a failure (else the test is skipped);
# PH_TEST_ORIGIN (a native ph-test-origin; else it is compiled here); PH_TEST_KEEP=1 keeps the
# temporary directory, Wine prefix included; PH_WIN_GTK=0 builds the installer without the tray;
# PH_WIN_BUILDDIR builds it from that (cross-build) directory instead of its own.

set -uo pipefail

top=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
cloud_script=$top/tests/cloud/pinhole-cloud.sh
tmp=""
TAP_TIMED=1
# shellcheck source=tests/tap.sh
source "$top/tests/tap.sh"

dump_logs ()
{
  local f
  [[ -n $tmp ]] || return 0
  for f in "$tmp/build.log" "$tmp/cloud/squid/access.log" "$tmp/cloud/stunnel.log" "$tmp/wine.log"; do
    [[ -s $f ]] || continue
    echo "# ----- $f (last 30 lines) -----"
    tail -n 30 "$f" | sed 's/^/#   /'
  done
}

cleanup ()
{
  [[ -n $tmp ]] || return 0
  if [[ -n ${WINEPREFIX:-} && -d $WINEPREFIX ]]; then
    wineserver -k >/dev/null 2>&1 || true
    wineserver -w >/dev/null 2>&1 || true
  fi
  bash "$cloud_script" stop "$tmp/cloud" >/dev/null 2>&1 || true
  if [[ ${PH_TEST_KEEP:-0} == 1 ]]; then
    echo "# kept $tmp"
  else
    rm -rf "$tmp"
  fi
}

# ---- Wine helpers ----

# w PROGRAM ARGS...: runs a Windows program and waits for it, its chatter to wine.log.
w ()
{
  wine "$@" 2>>"$tmp/wine.log"
}

service_state ()
{
  w sc query pinhole-agent | sed -n 's/^[[:space:]]*STATE[[:space:]]*:[[:space:]]*[0-9]*[[:space:]]*//p'
}

wait_running ()
{
  local i state
  for ((i = 0; i < 60; i++)); do
    state=$(service_state)
    [[ $state == RUNNING* ]] && return 0
    sleep 0.5
  done
  echo "pinhole-agent is '${state:-not there}' after 30 s"
  return 1
}

# Gone from the service manager: Wine's sc prints nothing for an unknown service and fails;
# Windows' prints "FAILED 1060".
service_absent ()
{
  local out
  if out=$(w sc query pinhole-agent); then
    echo "sc query still answers: $out"
    return 1
  fi
  [[ -z $out || $out == *1060* ]] || { echo "sc query: $out"; return 1; }
  if w reg query 'HKLM\System\CurrentControlSet\Services\pinhole-agent' >/dev/null 2>&1; then
    echo "the service's registry key is still there"
    return 1
  fi
}

reg_value ()
{
  w reg query "$1" /v "$2" | sed -n "s/^[[:space:]]*$2[[:space:]]*REG_[A-Z_]*[[:space:]]*//p" | tr -d '\r'
}

reg_absent ()
{
  if w reg query "$@" >/dev/null 2>&1; then
    echo "still in the registry: $*"
    return 1
  fi
}

# fetch URL EXPECTED [CURL-ARGS...]: through the agent, retried while the agent connects.
fetch ()
{
  local url=$1 expected=$2 body i
  shift 2
  for ((i = 0; i < 20; i++)); do
    body=$(curl -sS --max-time 10 -x "http://127.0.0.1:$listen_port" "$@" "$url" 2>&1) &&
      [[ $body == "$expected" ]] && return 0
    sleep 0.5
  done
  echo "curl $url via 127.0.0.1:$listen_port: $body"
  return 1
}

port_closed ()
{
  if ss -Hltn "sport = :$listen_port" | grep -q .; then
    echo "something still listens on $listen_port"
    return 1
  fi
}

same_file ()
{
  cmp "$1" "$2"
}

# The ADMX and ADML files (installer/windows/policy/) where an administrator copies them from.
policy_templates_installed ()
{
  local f
  for f in pinhole.admx en-US/pinhole.adml zh-CN/pinhole.adml; do
    cmp "$pf/PolicyDefinitions/$f" "$top/installer/windows/policy/$f" || return 1
  done
}

# The agent imports libnghttp2 (HTTP/2 to the cloud proxy, agent/core/ph-h2.c), whose DLL the
# installer takes along with the rest of the import closure; installer/windows/build-deps.sh always
# builds it, so an agent without it is a build that lost it.
agent_http2_dll ()
{
  local dll
  dll=$(x86_64-w64-mingw32-objdump -p "$pf/bin/pinhole-agent.exe" |
    sed -n 's/^[[:space:]]*DLL Name: \(libnghttp2[^[:space:]]*\)/\1/p' | tr -d '\r')
  [[ -n $dll ]] || { echo "pinhole-agent.exe does not import libnghttp2 (built without HTTP/2)"; return 1; }
  [[ -f $pf/bin/$dll ]] || { echo "$dll is not in Program Files\\Pinhole\\bin"; return 1; }
}

contains ()
{
  grep -qF -- "$2" "$1" || { echo "$1 does not contain '$2'"; return 1; }
}

absent ()
{
  if [[ -e $1 ]]; then
    echo "still there: $1"
    find "$1" | head -n 20
    return 1
  fi
}

# install ARGS...: the installer, silently; its exit status must be 0.
install ()
{
  local rc
  w "$setup" /S "$@"
  rc=$?
  [[ $rc == 0 ]] || { echo "the installer exited with $rc"; return 1; }
}

# install_cmd: the installer started from a batch file, with the path in quotes after /CONFIG=
# (the other form an administrator writes).
install_cmd ()
{
  local rc
  printf '@"%s" /S /CONFIG="%s"\r\n@exit /b %%ERRORLEVEL%%\r\n' \
    "$(winepath -w "$setup")" "$(winepath -w "$itconf")" >"$tmp/upgrade.bat"
  w cmd /c "$(winepath -w "$tmp/upgrade.bat")"
  rc=$?
  [[ $rc == 0 ]] || { echo "the installer exited with $rc"; return 1; }
}

# refused ARGS...: the installer must exit 2 and install nothing.
refused ()
{
  local rc
  w "$setup" /S "$@"
  rc=$?
  [[ $rc == 2 ]] || { echo "the installer exited with $rc, not 2"; return 1; }
  absent "$pf" && absent "$pd"
}

# uninstall ARGS...: the installed uninstaller, silently and waited for. Run in place it would
# copy itself to %TEMP% and return at once; a copy run with _?=DIR works on DIR directly. _?=
# must be last and unquoted, hence cmd /c.
uninstall ()
{
  local rc
  cp "$pf/uninstall.exe" "$tmp/un.exe"
  w cmd /c "$(winepath -w "$tmp/un.exe") /S $* _?=C:\\Program Files\\Pinhole"
  rc=$?
  [[ $rc == 0 ]] || { echo "the uninstaller exited with $rc"; return 1; }
}

ctl ()
{
  w "C:\\Program Files\\Pinhole\\bin\\pinholectl.exe" "$@"
}

status_ok ()
{
  local json
  json=$(ctl status --json) || { echo "pinholectl status failed: $json"; return 1; }
  python3 - "$json" "$listen_port" <<'EOF'
import json, sys
s = json.loads(sys.argv[1])
port = sys.argv[2]
problems = []
if s.get("state") != "on":
    problems.append("state is %r, not 'on' (last error: %r)" % (s.get("state"), s.get("last_error")))
if s.get("credentials_stored") is not True:
    problems.append("credentials_stored is not true")
if not any(l.endswith(":" + port) for l in s.get("listeners", [])):
    problems.append("no listener on port %s: %r" % (port, s.get("listeners")))
# The /CONFIG file is read as IT's drop-in: what it sets is locked.
for key in ("upstream.host", "upstream.pins", "listener.address"):
    if key not in s.get("locked_keys", []):
        problems.append("%s is not locked: %r" % (key, s.get("locked_keys")))
if problems:
    print("; ".join(problems))
    print(json.dumps(s, indent=1))
    sys.exit(1)
EOF
}

# ---- requirements ----

for tool in wine wineserver winepath curl python3 openssl ss cmp x86_64-w64-mingw32-objdump; do
  command -v "$tool" >/dev/null || skip_all "$tool not found (bash tests/install-deps.sh --windows)"
done
for bin in /usr/bin/stunnel4 /usr/sbin/squid /usr/lib/squid/basic_ncsa_auth; do
  [[ -x $bin ]] || skip_all "$bin not found (bash tests/install-deps.sh --windows)"
done

tmp=$(mktemp -d /tmp/pinhole-setup-test.XXXXXX)
# Squid runs as proxy when the test runs as root: it must get through to the cloud directory.
chmod 0711 "$tmp"
trap cleanup EXIT
trap 'exit 130' INT TERM

# A Wine prefix of its own: the test installs a service, and nothing else's DLLs are on the path
# (no WINEPATH), so a DLL the installer forgot makes a program fail here as on Windows.
export WINEPREFIX=$tmp/wine
export WINEDEBUG=-all
export WINEDLLOVERRIDES=mscoree,mshtml=
unset WINEPATH
pf="$WINEPREFIX/drive_c/Program Files/Pinhole"
pd="$WINEPREFIX/drive_c/ProgramData/Pinhole"
startmenu="$WINEPREFIX/drive_c/ProgramData/Microsoft/Windows/Start Menu/Programs"
uninst_key='HKLM\Software\Microsoft\Windows\CurrentVersion\Uninstall\Pinhole'
run_key='HKLM\Software\Microsoft\Windows\CurrentVersion\Run'

begin "Wine prefix"
wineboot --init >/dev/null 2>&1
wineserver -w
# A Wine service stops with the last non-service Wine process: a persistent wineserver keeps the
# agent up while the test probes it from Linux.
wineserver -p
[[ -f $WINEPREFIX/system.reg ]] || bail "wineboot did not create $WINEPREFIX"
pass "fresh Wine prefix"

begin "the installer"
if [[ $# -ge 1 ]]; then
  setup=$(cd "$(dirname "$1")" && pwd)/$(basename "$1")
  [[ -f $setup ]] || bail "$1 not found"
else
  build_args=()
  [[ ${PH_WIN_GTK:-1} == 0 ]] && build_args+=(--no-tray)
  [[ -n ${PH_WIN_BUILDDIR:-} ]] && build_args+=(--builddir "$PH_WIN_BUILDDIR")
  setup=$(bash "$top/installer/nsis/build-installer.sh" "${build_args[@]}" "$tmp/out" 2>"$tmp/build.log" |
    tail -n 1)
  [[ -f $setup ]] || bail "build-installer.sh failed"
fi
version=$(basename "$setup" .exe)
version=${version#pinhole-setup-}
pass "installer $(basename "$setup") ($(du -h "$setup" | cut -f1))"

begin "cloud end"
origin=${PH_TEST_ORIGIN:-}
if [[ -z $origin ]]; then
  if ! command -v gcc >/dev/null || ! command -v pkg-config >/dev/null; then
    skip_all "gcc or pkg-config not found to build ph-test-origin"
  fi
  origin=$tmp/ph-test-origin
  # shellcheck disable=SC2046
  gcc -O2 -I"$top/tests/cloud" "$top/tests/cloud/ph-test-origin.c" -o "$origin" \
    $(pkg-config --cflags --libs gio-2.0 gnutls) -pthread 2>"$tmp/origin-build.log" ||
    bail "could not build ph-test-origin: $(cat "$tmp/origin-build.log")"
fi
PH_CLOUD_ORIGIN=1 PH_TEST_ORIGIN=$origin PH_CLOUD_OWNER_PID=$$ \
  bash "$cloud_script" start "$tmp/cloud" 2>"$tmp/cloud.log" ||
  bail "the cloud end did not start: $(cat "$tmp/cloud.log")"
# shellcheck disable=SC1091
source "$tmp/cloud/cloud.env"
listen_port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
# IT's drop-in: the agent config the Linux tests use, less the password file (the password goes
# through pinholectl into the Windows store).
# It sits in a directory with a space, as IT shares often do.
mkdir -p "$tmp/IT config"
itconf="$tmp/IT config/it.conf"
bash "$cloud_script" agent-config "$tmp/cloud" "$tmp/it.conf.tmp" "$listen_port"
sed '/^password-file=/d' "$tmp/it.conf.tmp" >"$itconf"
pass "cloud end: stunnel 127.0.0.1:$PH_CLOUD_TLS_PORT, origin http $PH_ORIGIN_HTTP_PORT https $PH_ORIGIN_HTTPS_PORT"

# ---- install ----

begin "refusals"
check "/CONFIG= naming no file: exit 2, nothing installed" \
  refused "/CONFIG=$(winepath -w "$tmp/IT config/none.conf")"
cp "$itconf" "$tmp/IT config/it.txt"
check "/CONFIG= naming a file that is not *.conf: exit 2, nothing installed" \
  refused "/CONFIG=$(winepath -w "$tmp/IT config/it.txt")"

begin "silent install with /CONFIG="
# Wine quotes the whole argument, as most tools do with a path that has a space.
check "silent install /S \"/CONFIG=...\\IT config\\it.conf\" exits 0" \
  install "/CONFIG=$(winepath -w "$itconf")"
check "pinhole-agent.exe, pinholectl.exe and the uninstaller are in Program Files\\Pinhole" \
  test -f "$pf/bin/pinhole-agent.exe" -a -f "$pf/bin/pinholectl.exe" -a -f "$pf/uninstall.exe"
check "libnghttp2's DLL, which pinhole-agent.exe imports for HTTP/2, is installed next to it" \
  agent_http2_dll
check "the Group Policy templates are in Program Files\\Pinhole\\PolicyDefinitions, as committed" \
  policy_templates_installed
check "pinhole.conf is created from the example" \
  same_file "$pf/share/pinhole/pinhole.conf.example" "$pd/pinhole.conf"
check "the /CONFIG file is in managed.d" same_file "$itconf" "$pd/managed.d/it.conf"
check "Add/Remove Programs names version $version" \
  test "$(reg_value "$uninst_key" DisplayVersion)" = "$version"
check "Add/Remove Programs has a quiet uninstall" \
  test "$(reg_value "$uninst_key" QuietUninstallString)" = '"C:\Program Files\Pinhole\uninstall.exe" /S'
if [[ -f $pf/bin/pinhole-tray.exe ]]; then
  check "the tray starts at every user's logon (HKLM Run)" \
    test "$(reg_value "$run_key" Pinhole)" = '"C:\Program Files\Pinhole\bin\pinhole-tray.exe"'
  check "the tray has a Start-menu shortcut" test -f "$startmenu/Pinhole.lnk"
fi

begin "service"
check "sc query pinhole-agent: RUNNING" wait_running

begin "credentials"
check "pinholectl.exe set-credentials $PH_CLOUD_USER --password-stdin" \
  ctl set-credentials "$PH_CLOUD_USER" --password-stdin <"$PH_CLOUD_PASSWORD_FILE"

begin "requests through the agent"
check "http:// through the agent reaches the origin" \
  fetch "http://127.0.0.1:$PH_ORIGIN_HTTP_PORT/hello" hello
check "CONNECT through the agent reaches the origin" \
  fetch "https://127.0.0.1:$PH_ORIGIN_HTTPS_PORT/hello" hello --cacert "$PH_ORIGIN_CA"

begin "status"
check "pinholectl.exe status: on, credentials stored, our listener, the drop-in's keys locked" \
  status_ok

# ---- upgrade ----

begin "upgrade"
marker="# edited by test-installer.sh $$"
printf '\n%s\n' "$marker" >>"$pd/pinhole.conf"
printf '# revised by IT\n' >>"$itconf"
check "a second install (upgrade) with cmd's /CONFIG=\"...\" exits 0" install_cmd
check "the upgrade keeps the edited pinhole.conf" contains "$pd/pinhole.conf" "$marker"
check "the upgrade replaces the managed drop-in with IT's new one" \
  same_file "$itconf" "$pd/managed.d/it.conf"
check "the service runs again after the upgrade" wait_running
check "requests go through after the upgrade (credentials kept)" \
  fetch "http://127.0.0.1:$PH_ORIGIN_HTTP_PORT/hello" hello

# ---- uninstall ----

begin "silent uninstall"
check "silent uninstall exits 0" uninstall
check "sc query: the service does not exist" service_absent
check "the agent no longer listens" port_closed
check "no files left under Program Files\\Pinhole" absent "$pf"
check "the Add/Remove Programs entry is gone" reg_absent "$uninst_key"
check "the logon start is gone" reg_absent "$run_key" /v Pinhole
check "the Start-menu shortcut is gone" absent "$startmenu/Pinhole.lnk"
check "%ProgramData%\\Pinhole\\pinhole.conf is kept" contains "$pd/pinhole.conf" "$marker"

begin "reinstall, then uninstall /PURGE"
check "a reinstall exits 0" install
check "the reinstall finds the kept pinhole.conf" contains "$pd/pinhole.conf" "$marker"
check "the service runs after the reinstall" wait_running
check "requests go through after the reinstall (credentials kept in %ProgramData%)" \
  fetch "http://127.0.0.1:$PH_ORIGIN_HTTP_PORT/hello" hello
check "silent uninstall /PURGE exits 0" uninstall /PURGE
check "/PURGE removes %ProgramData%\\Pinhole" absent "$pd"
check "no files left under Program Files\\Pinhole after /PURGE" absent "$pf"
check "sc query: no service after /PURGE" service_absent

tap_done

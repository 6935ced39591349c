#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
# test-deb.sh [PH_TEST_ORIGIN]: the .deb as an administrator meets it. Builds it with
# installer/debian/build-deb.sh (lintian must report no error), verifies the units, installs it
# on this machine, checks what landed and with which owners, runs the INSTALLED agent as the
# pinhole user against a real loopback cloud end (stunnel + Squid + origin) and tunnels HTTPS
# through it, then (when the agent has --system) runs it as the system service would, on a
# private system bus with the installed D-Bus policy, and configures it with pinholectl.
# Finally reinstalls over an edited config and purges.
#
# Needs root (it installs and purges the package). Without root or a tool it skips (exit 77),
# except under CI=true, where that is a failure. It refuses to touch a pinhole-agent that was
# installed before it started, unless CI=true or PH_DEB_TEST_FORCE=1.
set -euo pipefail

top=${PH_SRCDIR:-$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)}
cloud_sh=$top/tests/cloud/pinhole-cloud.sh
origin=${1:-${PH_TEST_ORIGIN:-$top/build/tests/cloud/ph-test-origin}}
agent=/usr/sbin/pinhole-agent
ctl=/usr/bin/pinholectl
export DEBIAN_FRONTEND=noninteractive LC_ALL=C.UTF-8

step ()
{
  echo "== $*"
}

fail ()
{
  echo "FAIL: $*" >&2
  exit 1
}

skip ()
{
  if [[ ${CI:-} == true ]]; then
    fail "$* (a skip is a failure under CI=true)"
  fi
  echo "SKIP: $*"
  exit 77
}

# expect_eq WHAT GOT WANT
expect_eq ()
{
  [[ $2 == "$3" ]] || fail "$1: got '$2', want '$3'"
}

# A CI runner that is not root but may use sudo without a password runs this as root.
if [[ $(id -u) != 0 ]] && command -v sudo >/dev/null && sudo -n true 2>/dev/null; then
  exec sudo -n env CI="${CI:-}" PH_SRCDIR="${PH_SRCDIR:-}" PH_TEST_ORIGIN="${PH_TEST_ORIGIN:-}" \
    PH_DEB_TEST_FORCE="${PH_DEB_TEST_FORCE:-}" PATH="$PATH" bash "${BASH_SOURCE[0]}" "$@"
fi
[[ $(id -u) == 0 ]] || skip "needs root: it installs and purges the package"
for tool in dpkg-buildpackage dh lintian systemd-analyze apt-get dpkg setpriv runuser curl \
  xmllint openssl python3 dbus-daemon gdbus /usr/bin/stunnel4 /usr/sbin/squid; do
  command -v "$tool" >/dev/null || skip "$tool not found (bash tests/install-deps.sh installs it)"
done
[[ -x $origin ]] || skip "ph-test-origin not built at $origin"

if dpkg-query -W -f='${db:Status-Status}' pinhole-agent 2>/dev/null | grep -qv '^not-installed$'; then
  if [[ ${CI:-} == true || ${PH_DEB_TEST_FORCE:-0} == 1 ]]; then
    echo "pinhole-agent is installed already; purging it first"
    apt-get purge -y -q pinhole-agent >/dev/null
  else
    skip "pinhole-agent is installed on this machine and this test would purge it" \
      "(apt-get purge pinhole-agent, or PH_DEB_TEST_FORCE=1)"
  fi
fi

tmp=$(mktemp -d /tmp/pinhole-deb-test.XXXXXX)
# Squid (user proxy) and the agent (user pinhole) must traverse it.
chmod 0711 "$tmp"
installed=0
pids=()

cleanup ()
{
  local pid
  for pid in "${pids[@]}"; do
    kill -TERM "$pid" 2>/dev/null || true
  done
  for pid in "${pids[@]}"; do
    wait "$pid" 2>/dev/null || true
  done
  bash "$cloud_sh" stop "$tmp/cloud" >/dev/null 2>&1 || true
  if ((installed)); then
    apt-get purge -y -q pinhole-agent >/dev/null 2>&1 || dpkg --purge pinhole-agent >/dev/null 2>&1 || true
    rm -f /etc/pinhole/managed.d/50-test.conf
    rmdir /etc/pinhole/managed.d /etc/pinhole 2>/dev/null || true
  fi
  rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

free_port ()
{
  python3 -c 'import socket
s = socket.socket()
s.bind(("127.0.0.1", 0))
print(s.getsockname()[1])'
}

# wait_for FILE TEXT PID WHAT: until FILE contains TEXT, failing if PID exits first.
wait_for ()
{
  local file=$1 text=$2 pid=$3 what=$4 i
  for ((i = 0; i < 100; i++)); do
    grep -qF -- "$text" "$file" 2>/dev/null && return 0
    alive "$pid" || {
      cat "$file" >&2
      fail "$what exited before '$text'"
    }
    sleep 0.1
  done
  cat "$file" >&2
  fail "$what did not log '$text' within 10 s"
}

# alive PID: running, and not a zombie (our children stay zombies until waited for).
alive ()
{
  local stat
  stat=$(ps -o stat= -p "$1" 2>/dev/null) || return 1
  [[ -n $stat && $stat != Z* ]]
}

forget_pid ()
{
  local keep=() p
  for p in "${pids[@]}"; do
    [[ $p == "$1" ]] || keep+=("$p")
  done
  pids=("${keep[@]}")
}

# stop_pid PID WHAT: SIGTERM, and the exit status must be 0 (the agent drains and exits 0).
stop_pid ()
{
  local pid=$1 what=$2 status=0
  kill -TERM "$pid"
  wait "$pid" || status=$?
  forget_pid "$pid"
  expect_eq "$what exit status after SIGTERM" "$status" 0
}

# stat_is PATH "OWNER GROUP MODE"
stat_is ()
{
  expect_eq "owner, group and mode of $1" "$(stat -c '%U %G %a' "$1")" "$2"
}

# as USER CMD...: run CMD as USER with nothing of root's environment (but the bus address), the
# way systemd would. It execs, so "as pinhole AGENT &" leaves the agent's pid in $!.
as ()
{
  local user=$1 group
  shift
  group=$(id -gn "$user")
  exec env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin LC_ALL=C.UTF-8 \
    ${DBUS_SYSTEM_BUS_ADDRESS:+DBUS_SYSTEM_BUS_ADDRESS=$DBUS_SYSTEM_BUS_ADDRESS} \
    setpriv --reuid="$user" --regid="$group" --init-groups --no-new-privs --inh-caps=-all -- "$@"
}

# ---------------------------------------------------------------------------------------------
step "build the .deb (installer/debian/build-deb.sh) and lintian it"
bash "$top/installer/debian/build-deb.sh" "$tmp/debs" | tee "$tmp/build-deb.out"
deb=$(ls "$tmp"/debs/pinhole-agent_*.deb)
grep -q '^E: ' "$tmp/build-deb.out" && fail "lintian reported errors"
dpkg-deb -c "$deb" | awk '{print $6}' | sed 's|^\./|/|' >"$tmp/contents"
if grep -q "executable('pinholectl'" "$top/agent/meson.build"; then
  grep -qx /usr/bin/pinholectl "$tmp/contents" || fail "meson builds pinholectl but the package lacks it"
fi

step "install it (apt-get install ./$(basename "$deb"))"
installed=1
apt-get install -y -q --no-install-recommends "$deb" </dev/null >"$tmp/apt.log" 2>&1 || {
  cat "$tmp/apt.log" >&2
  fail "apt-get install failed"
}

step "the tray package: installs beside the agent, with its desktop files and translations"
tray_deb=$(ls "$tmp"/debs/pinhole-tray_*.deb)
apt-get install -y -q --no-install-recommends "$tray_deb" </dev/null >"$tmp/apt-tray.log" 2>&1 || {
  cat "$tmp/apt-tray.log" >&2
  fail "apt-get install of the tray failed"
}
for f in /usr/bin/pinhole-tray /usr/share/applications/org.pinhole.Tray.desktop \
  /etc/xdg/autostart/org.pinhole.Tray.desktop /usr/share/metainfo/org.pinhole.Tray.metainfo.xml \
  /usr/share/icons/hicolor/scalable/status/pinhole-on.svg \
  /usr/share/icons/hicolor/scalable/status/pinhole-error.svg \
  /usr/share/locale/zh_CN/LC_MESSAGES/pinhole.mo /usr/share/man/man1/pinhole-tray.1.gz; do
  [[ -e $f ]] || fail "$f is missing after installing the tray"
done
tray_version=$(dpkg-deb -f "$tray_deb" Version)
expect_eq "pinhole-tray --version" "$(DISPLAY= /usr/bin/pinhole-tray --version)" "pinhole-tray ${tray_version%-*}"

step "files, user and ownership"
unit=$(dpkg -L pinhole-agent | grep -E '/lib/systemd/system/pinhole-agent\.service$')
user_unit=$(dpkg -L pinhole-agent | grep -E '/lib/systemd/user/pinhole-agent\.service$')
for f in "$agent" "$unit" "$user_unit" \
  /usr/lib/sysusers.d/pinhole.conf \
  /usr/share/dbus-1/system.d/org.pinhole.Agent1.conf \
  /usr/share/dbus-1/system-services/org.pinhole.Agent.service \
  /usr/share/polkit-1/actions/org.pinhole.agent.policy \
  /usr/share/pinhole/pinhole.conf.example \
  /usr/share/man/man8/pinhole-agent.8.gz \
  /etc/pinhole/managed.d/README \
  /etc/pinhole/pinhole.conf; do
  [[ -e $f ]] || fail "$f is missing after install"
done
getent passwd pinhole >/dev/null || fail "no pinhole user"
expect_eq "pinhole's shell" "$(getent passwd pinhole | cut -d: -f7)" /usr/sbin/nologin
stat_is /etc/pinhole "root pinhole 1775"
stat_is /etc/pinhole/managed.d "root root 755"
stat_is /etc/pinhole/pinhole.conf "pinhole pinhole 644"
stat_is /var/lib/pinhole "pinhole pinhole 700"
cmp -s /etc/pinhole/pinhole.conf /usr/share/pinhole/pinhole.conf.example ||
  fail "/etc/pinhole/pinhole.conf is not the example"
grep -qx /etc/pinhole/managed.d/README /var/lib/dpkg/info/pinhole-agent.conffiles ||
  fail "managed.d/README is not a conffile"
grep -q /etc/pinhole/pinhole.conf /var/lib/dpkg/info/pinhole-agent.conffiles &&
  fail "pinhole.conf must not be a conffile (the agent rewrites it)"
# The example sets nothing, so the agent reports it unconfigured; with a host it must be clean.
sed 's/^#host=/host=/' /usr/share/pinhole/pinhole.conf.example >"$tmp/example.conf"
"$agent" --config "$tmp/example.conf" --check-config >/dev/null ||
  fail "the installed example config (with host= set) does not pass --check-config"

step "the ownership design holds: pinhole replaces pinhole.conf, cannot touch managed.d"
(as pinhole sh -c 'printf "# probe\n" >/etc/pinhole/.probe && mv /etc/pinhole/.probe /etc/pinhole/probe &&
  cp /etc/pinhole/pinhole.conf /etc/pinhole/pinhole.conf.new &&
  mv /etc/pinhole/pinhole.conf.new /etc/pinhole/pinhole.conf && rm /etc/pinhole/probe') ||
  fail "user pinhole cannot replace /etc/pinhole/pinhole.conf by rename"
(as pinhole sh -c ': >/etc/pinhole/managed.d/x.conf') 2>/dev/null &&
  fail "user pinhole can write to /etc/pinhole/managed.d"
(as pinhole mv /etc/pinhole/managed.d /etc/pinhole/gone) 2>/dev/null &&
  fail "user pinhole can rename /etc/pinhole/managed.d away"
(as nobody sh -c ': >/etc/pinhole/x') 2>/dev/null && fail "user nobody can write to /etc/pinhole"
stat_is /etc/pinhole/pinhole.conf "pinhole pinhole 644"

step "XML of the D-Bus and polkit policy"
# Resolve the polkit DTD locally (no network here); the D-Bus DTD is not shipped, so that file
# is checked for well-formedness here and for meaning by a real dbus-daemon below.
cat >"$tmp/catalog.xml" <<EOF
<?xml version="1.0"?>
<catalog xmlns="urn:oasis:names:tc:entity:xmlns:xml:catalog">
  <system systemId="http://www.freedesktop.org/software/polkit/policyconfig-1.dtd"
          uri="file:///usr/share/polkit-1/policyconfig-1.dtd"/>
  <system systemId="http://www.freedesktop.org/standards/PolicyKit/1/policyconfig.dtd"
          uri="file:///usr/share/polkit-1/policyconfig-1.dtd"/>
</catalog>
EOF
if [[ -r /usr/share/polkit-1/policyconfig-1.dtd ]]; then
  XML_CATALOG_FILES=$tmp/catalog.xml xmllint --noout --nonet --valid \
    /usr/share/polkit-1/actions/org.pinhole.agent.policy || fail "the polkit policy is not valid"
else
  xmllint --noout --nonet /usr/share/polkit-1/actions/org.pinhole.agent.policy 2>/dev/null ||
    fail "the polkit policy is not well-formed XML"
fi
xmllint --noout --nonet /usr/share/dbus-1/system.d/org.pinhole.Agent1.conf 2>/dev/null ||
  fail "the D-Bus policy is not well-formed XML"
for id in org.pinhole.agent.toggle org.pinhole.agent.configure; do
  grep -q "action id=\"$id\"" /usr/share/polkit-1/actions/org.pinhole.agent.policy ||
    fail "polkit action $id missing"
done

step "systemd-analyze verify"
systemd-analyze verify "$unit" || fail "systemd-analyze verify $unit"
mkdir -m 0700 "$tmp/xdg-runtime"
if XDG_RUNTIME_DIR=$tmp/xdg-runtime systemd-analyze --user verify "$user_unit" 2>"$tmp/verify-user.log"; then
  :
elif grep -q 'Failed to initialize manager' "$tmp/verify-user.log"; then
  echo "(the user unit cannot be verified without a user manager here)"
else
  cat "$tmp/verify-user.log" >&2
  fail "systemd-analyze --user verify $user_unit"
fi
if [[ -d /run/systemd/system ]]; then
  # systemd is PID 1: postinst enabled and started the service.
  systemctl is-enabled -q pinhole-agent.service || fail "pinhole-agent.service was not enabled"
  systemctl is-active -q pinhole-agent.service || {
    systemctl status --no-pager pinhole-agent.service >&2 || true
    fail "pinhole-agent.service is not active after install"
  }
fi

# ---------------------------------------------------------------------------------------------
step "a loopback cloud end: stunnel + Squid (Basic auth) + origin"
PH_CLOUD_OWNER_PID=$$ PH_CLOUD_ORIGIN=1 PH_TEST_ORIGIN=$origin bash "$cloud_sh" start "$tmp/cloud"
# shellcheck disable=SC1091
. "$tmp/cloud/cloud.env"

step "the installed agent, standalone (--config), as user pinhole"
# The agent's own files: readable by pinhole only; the password file must be 0600 and its own.
install -d -o pinhole -g pinhole -m 0700 "$tmp/agent"
install -o pinhole -g pinhole -m 0600 "$PH_CLOUD_PASSWORD_FILE" "$tmp/agent/password"
port=$(free_port)
bash "$cloud_sh" agent-config "$tmp/cloud" "$tmp/agent.conf" "$port"
sed "s|^password-file=.*|password-file=$tmp/agent/password|" "$tmp/agent.conf" |
  install -o pinhole -g pinhole -m 0600 /dev/stdin "$tmp/agent/pinhole.conf"
(as pinhole "$agent" --config "$tmp/agent/pinhole.conf" --check-config) >/dev/null ||
  fail "the test config does not pass --check-config"
(as pinhole "$agent" --config "$tmp/agent/pinhole.conf") 2>"$tmp/agent.log" &
agent_pid=$!
pids+=("$agent_pid")
wait_for "$tmp/agent.log" "listening on" "$agent_pid" "pinhole-agent --config"
expect_eq "the agent's user" "$(ps -o user= -p "$agent_pid" | tr -d ' ')" pinhole

body=$(curl -sS --fail --max-time 30 -x "http://127.0.0.1:$port" --cacert "$PH_ORIGIN_CA" \
  "https://127.0.0.1:$PH_ORIGIN_HTTPS_PORT/hello") || {
  cat "$tmp/agent.log" >&2
  fail "HTTPS through the installed agent failed"
}
expect_eq "HTTPS body through the tunnel" "$body" hello
body=$(curl -sS --fail --max-time 30 -x "http://127.0.0.1:$port" \
  "http://127.0.0.1:$PH_ORIGIN_HTTP_PORT/hello") || fail "plain HTTP through the installed agent failed"
expect_eq "plain HTTP body through the tunnel" "$body" hello
grep -q "access client=.* method=CONNECT target=127.0.0.1:$PH_ORIGIN_HTTPS_PORT status=200" \
  "$tmp/agent.log" || fail "no access log line for the tunnel"
grep -q "$PH_CLOUD_USER" "$PH_CLOUD_SQUID_ACCESS_LOG" || fail "Squid did not see user $PH_CLOUD_USER"
grep -qF "$(cat "$PH_CLOUD_PASSWORD_FILE")" "$tmp/agent.log" && fail "the password is in the agent's log"
stop_pid "$agent_pid" "pinhole-agent --config"

# ---------------------------------------------------------------------------------------------
if "$agent" --help 2>&1 | grep -q -- '--system' && [[ -x $ctl ]]; then
  step "the installed agent as the system service: --system on a private system bus"
  # A system bus of our own, with the default-deny policy of Debian's system.conf and the
  # installed org.pinhole.Agent1.conf, so that the policy file itself is what is tested.
  install -d -m 0755 "$tmp/bus"
  cat >"$tmp/bus.conf" <<EOF
<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig>
  <type>system</type>
  <listen>unix:path=$tmp/bus/socket</listen>
  <auth>EXTERNAL</auth>
  <policy context="default">
    <allow user="*"/>
    <deny own="*"/>
    <deny send_type="method_call"/>
    <allow send_type="signal"/>
    <allow send_requested_reply="true" send_type="method_return"/>
    <allow send_requested_reply="true" send_type="error"/>
    <allow receive_type="method_call"/>
    <allow receive_type="method_return"/>
    <allow receive_type="error"/>
    <allow receive_type="signal"/>
    <allow send_destination="org.freedesktop.DBus" send_interface="org.freedesktop.DBus"/>
    <allow send_destination="org.freedesktop.DBus" send_interface="org.freedesktop.DBus.Introspectable"/>
    <allow send_destination="org.freedesktop.DBus" send_interface="org.freedesktop.DBus.Properties"/>
  </policy>
  <include>/usr/share/dbus-1/system.d/org.pinhole.Agent1.conf</include>
</busconfig>
EOF
  dbus-daemon --config-file="$tmp/bus.conf" --nofork --nopidfile 2>"$tmp/bus.log" &
  pids+=($!)
  for ((i = 0; i < 50; i++)); do
    [[ -S $tmp/bus/socket ]] && break
    sleep 0.1
  done
  [[ -S $tmp/bus/socket ]] || fail "the private system bus did not start: $(cat "$tmp/bus.log")"
  chmod 0666 "$tmp/bus/socket"
  export DBUS_SYSTEM_BUS_ADDRESS=unix:path=$tmp/bus/socket

  # Only pinhole (and root) may own the name.
  if (as nobody gdbus call --system --dest org.freedesktop.DBus --object-path /org/freedesktop/DBus \
    --method org.freedesktop.DBus.RequestName org.pinhole.Agent 4) >/dev/null 2>"$tmp/own.err"; then
    fail "user nobody may own org.pinhole.Agent on the system bus"
  fi
  grep -q AccessDenied "$tmp/own.err" || fail "RequestName as nobody: $(cat "$tmp/own.err")"

  # The agent as its unit runs it: user pinhole, /etc/pinhole as installed, state in
  # /var/lib/pinhole.
  (as pinhole "$agent" --system) 2>"$tmp/agent-system.log" &
  agent_pid=$!
  pids+=("$agent_pid")
  wait_for "$tmp/agent-system.log" "control interface ready" "$agent_pid" "pinhole-agent --system"

  # Root configures it over the bus, the way an administrator would.
  sport=$(free_port)
  # The listener first: once upstream.host is set the agent opens it.
  for kv in "listener.address 127.0.0.1:$sport" "upstream.host 127.0.0.1" \
    "upstream.port $PH_CLOUD_TLS_PORT" "upstream.server-name $PH_CLOUD_SERVER_NAME" \
    "upstream.pins $PH_CLOUD_PIN" "upstream.verify pin"; do
    # shellcheck disable=SC2086
    "$ctl" --system set $kv || fail "pinholectl --system set $kv"
  done
  "$ctl" --system set-credentials "$PH_CLOUD_USER" --password-stdin <"$PH_CLOUD_PASSWORD_FILE" ||
    fail "pinholectl --system set-credentials"
  grep -qx "host=127.0.0.1" /etc/pinhole/pinhole.conf || fail "the agent did not write /etc/pinhole/pinhole.conf"
  grep -q "^# Where it is read from" /etc/pinhole/pinhole.conf || fail "the agent's rewrite lost the comments"
  expect_eq "owner of the rewritten pinhole.conf" "$(stat -c %U /etc/pinhole/pinhole.conf)" pinhole
  stat_is /etc/pinhole "root pinhole 1775"
  stat_is /var/lib/pinhole/credentials "pinhole pinhole 600"
  grep -qF "$(cat "$PH_CLOUD_PASSWORD_FILE")" /etc/pinhole/pinhole.conf &&
    fail "the password is in pinhole.conf"

  body=""
  for ((i = 0; i < 50; i++)); do
    body=$(curl -sS --fail --max-time 30 -x "http://127.0.0.1:$sport" --cacert "$PH_ORIGIN_CA" \
      "https://127.0.0.1:$PH_ORIGIN_HTTPS_PORT/hello" 2>/dev/null) && break
    sleep 0.2
  done
  expect_eq "HTTPS body through the system agent" "$body" hello

  # IT's drop-in locks its keys.
  printf '[tunnel]\nmax-tunnels=77\n' >/etc/pinhole/managed.d/50-test.conf
  "$ctl" --system reload || fail "pinholectl --system reload"
  status=0
  "$ctl" --system set tunnel.max-tunnels 10 >/dev/null 2>&1 || status=$?
  expect_eq "pinholectl set of a managed key (locked)" "$status" 5

  # Anyone may read; changing needs polkit, which this bus does not have: refused, and the
  # agent carries on.
  (as nobody "$ctl" --system status) >/dev/null || fail "user nobody cannot read the agent's status"
  status=0
  (as nobody "$ctl" --system set log.level debug) >/dev/null 2>"$tmp/nobody-set.err" || status=$?
  sleep 0.2
  alive "$agent_pid" || {
    cat "$tmp/agent-system.log" >&2
    fail "the system agent died when user nobody asked to change a setting (polkit unreachable)"
  }
  [[ $status == 4 ]] || fail "pinholectl set as nobody: exit $status, want 4 (permission denied): $(cat "$tmp/nobody-set.err")"

  stop_pid "$agent_pid" "pinhole-agent --system"
else
  echo "(the agent has no --system mode or pinholectl is missing: system-service phase skipped)"
fi

# ---------------------------------------------------------------------------------------------
step "upgrade: reinstalling keeps the edited /etc/pinhole/pinhole.conf, without a prompt"
echo "# edited by test-deb.sh" >>/etc/pinhole/pinhole.conf
cp -p /etc/pinhole/pinhole.conf "$tmp/pinhole.conf.before"
# dpkg itself, with no terminal: a conffile prompt would fail the install.
dpkg -i "$deb" </dev/null >"$tmp/dpkg.log" 2>&1 || {
  cat "$tmp/dpkg.log" >&2
  fail "reinstalling the package failed"
}
cmp -s /etc/pinhole/pinhole.conf "$tmp/pinhole.conf.before" || fail "the reinstall changed pinhole.conf"
stat_is /etc/pinhole "root pinhole 1775"
expect_eq "owner of pinhole.conf after the reinstall" "$(stat -c %U /etc/pinhole/pinhole.conf)" pinhole

step "purge removes config, state and credentials, keeps IT's drop-ins"
[[ -e /etc/pinhole/managed.d/50-test.conf ]] || printf '[log]\nlevel=info\n' >/etc/pinhole/managed.d/50-test.conf
# The machine-wide consumers a stopped (or killed) service left applied: prerm puts them back from
# the journal while the binary is there. Under a temporary root ($PINHOLE_MACHINE_ROOT, which
# apt-get and dpkg pass on to the maintainer scripts), so that this machine's files are not
# touched: an /etc/environment Pinhole edited and an apt.conf.d file it made.
mroot=$tmp/machine-root
mkdir -p "$mroot/etc/apt/apt.conf.d"
env_before=$'# site\nLANG=C.UTF-8'
env_pinhole=$'# site\nLANG=C.UTF-8\nhttp_proxy=http://127.0.0.1:3128\n'
apt_pinhole=$'Acquire::http::Proxy "http://127.0.0.1:3128/";\n'
printf '%s' "$env_pinhole" >"$mroot/etc/environment"
printf '%s' "$apt_pinhole" >"$mroot/etc/apt/apt.conf.d/80pinhole-proxy"
{
  printf '[journal]\nversion=1\n\n[file:/etc/environment]\nconsumer=environment\n'
  printf 'previous=%s\nset=%s;\n\n' "$(printf '%s' "$env_before" | base64 -w0)" \
    "$(printf '%s' "$env_pinhole" | base64 -w0)"
  printf '[file:/etc/apt/apt.conf.d/80pinhole-proxy]\nconsumer=apt\nset=%s;\n' \
    "$(printf '%s' "$apt_pinhole" | base64 -w0)"
} >/var/lib/pinhole/machine-proxy.journal
chmod 0600 /var/lib/pinhole/machine-proxy.journal
PINHOLE_MACHINE_ROOT=$mroot apt-get purge -y -q pinhole-agent </dev/null >"$tmp/purge.log" 2>&1 || {
  cat "$tmp/purge.log" >&2
  fail "apt-get purge failed"
}
[[ $(cat "$mroot/etc/environment"; echo x) == "${env_before}x" ]] \
  || fail "prerm did not put /etc/environment back: $(cat "$mroot/etc/environment")"
[[ ! -e $mroot/etc/apt/apt.conf.d/80pinhole-proxy ]] \
  || fail "prerm did not remove the apt.conf.d file Pinhole made"
installed=0
for f in /etc/pinhole/pinhole.conf /var/lib/pinhole "$agent" "$unit" /etc/pinhole/managed.d/README; do
  [[ ! -e $f ]] || fail "$f is still there after purge"
done
[[ -e /etc/pinhole/managed.d/50-test.conf ]] || fail "purge removed an IT drop-in it does not own"
rm -f /etc/pinhole/managed.d/50-test.conf
rmdir /etc/pinhole/managed.d /etc/pinhole

step "stop the cloud end"
bash "$cloud_sh" stop "$tmp/cloud"
echo "PASS: package built, lintian-clean, installed, tunnelled, upgraded and purged"

#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
# test-polkit.sh: pinholectl against the system service with a real polkitd (root only). In a
# mount namespace of its own, the test puts Pinhole's polkit policy in polkitd's actions folder,
# an admin rule naming a user of its own in rules.d, and that user in copies of passwd, shadow
# and group, all bind-mounted over the machine's for this namespace only; then it runs a
# private system bus, polkitd and pinhole-agent --system on it, and pinholectl as that user:
#   - with --no-ask-password, the call does not allow a question, polkit is asked without
#     AllowUserInteraction and the change is refused;
#   - on a pseudo-terminal, pinholectl starts pkttyagent for its own process, polkit's prompt
#     appears there, the admin password is typed, and the change is made (a wrong one refuses
#     it). polkit uses an agent registered with --fallback (as systemctl's is) only for a
#     subject in a login session, so these run in a cgroup named as logind names a session's
#     scope (user-UID.slice/session-ID.scope), which is what sd_pid_get_session reads; the
#     cgroup is removed at the end;
#   - without a terminal nothing is started, and the change is refused;
#   - a stand-in pkttyagent on PATH shows the exact arguments, the parent, and the SIGTERM
#     at the end; dbus-monitor shows ALLOW_INTERACTIVE_AUTHORIZATION on the call itself;
#   - GetConnections (pinholectl connections) needs org.pinhole.agent.monitor: refused to the
#     user without a question, allowed once the admin password is typed, and to root.
set -uo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=../tap.sh
source "$HERE/../tap.sh"
# shellcheck source=../ph-test-lib.sh
source "$HERE/../ph-test-lib.sh" # bus_config

AGENT=${PH_AGENT:?PH_AGENT: the pinhole-agent binary}
CTL=${PINHOLECTL:?PINHOLECTL: the pinholectl binary}
POLKITD=${PH_POLKITD:-/usr/lib/polkit-1/polkitd}
TEST_UID=4242

dump_logs ()
{
  local f
  for f in polkitd.log agent.log monitor.txt standin.log; do
    [[ -s $tmp/$f ]] && { echo "# ----- $f"; tail -n 30 "$tmp/$f" | sed 's/^/#   /'; }
  done
}

if [[ ${1:-} != --inside ]]; then
  [[ $(id -u) -eq 0 ]] || skip_all "needs root (a mount namespace and polkitd)"
  for tool in unshare setpriv dbus-daemon dbus-monitor pkttyagent openssl python3; do
    command -v "$tool" >/dev/null || skip_all "$tool not found (Debian: polkitd, dbus, openssl)"
  done
  [[ -x $POLKITD ]] || skip_all "polkitd not found at $POLKITD (Debian: polkitd)"
  [[ -d /usr/share/polkit-1/actions && -d /etc/polkit-1/rules.d ]] \
    || skip_all "polkit's folders are missing (Debian: polkitd)"
  exec unshare --mount --propagation private "$BASH" "${BASH_SOURCE[0]}" --inside
fi

tmp=$(mktemp -d "${TMPDIR:-/tmp}/pinhole-polkit.XXXXXX") || bail "mktemp failed"
chmod 0755 "$tmp"
pids=()
# The session's scope in each hierarchy that sd_pid_get_session may read: cgroup v2 alone, or
# the hybrid layout's unified and name=systemd ones.
scopes=()
if [[ $(stat -f -c %T /sys/fs/cgroup) == cgroup2fs ]]; then
  scopes=(/sys/fs/cgroup)
else
  for h in /sys/fs/cgroup/unified /sys/fs/cgroup/systemd; do [[ -d $h ]] && scopes+=("$h"); done
fi
for i in "${!scopes[@]}"; do
  scopes[i]=${scopes[i]}/user.slice/user-$TEST_UID.slice/session-phtest$$.scope
done
cleanup ()
{
  local p s
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null; done
  wait 2>/dev/null
  for s in "${scopes[@]}"; do
    rmdir "$s" "${s%/*}" "${s%/*/*}" 2>/dev/null
  done
  if ((tests_failed == 0)) && [[ -z ${PH_KEEP_TMP:-} ]]; then rm -rf "$tmp"; else echo "# files kept in $tmp"; fi
}
trap cleanup EXIT
trap "exit 1" TERM INT

# ---- polkit's view of this namespace: our action, our admin, our user ----
mkdir -p "$tmp/actions" "$tmp/rules" "$tmp/etc" "$tmp/state" "$tmp/managed.d" "$tmp/bin"
cp "$PH_SRCDIR/installer/polkit/org.pinhole.agent.policy" "$tmp/actions/"
echo "polkit.addAdminRule(function (action, subject) { return [\"unix-user:phtest\"]; });" \
  >"$tmp/rules/00-pinhole-test.rules"
cp /etc/passwd /etc/shadow /etc/group "$tmp/etc/"
umask 077
head -c 12 /dev/urandom | base64 | tr -d '/+=' >"$tmp/password"
printf 'not-%s\n' "$(cat "$tmp/password")" >"$tmp/wrong-password"
umask 022
chown $TEST_UID "$tmp/password" "$tmp/wrong-password"
echo "phtest:x:$TEST_UID:$TEST_UID:Pinhole test:/nonexistent:/bin/sh" >>"$tmp/etc/passwd"
echo "phtest:x:$TEST_UID:" >>"$tmp/etc/group"
echo "phtest:$(openssl passwd -6 -in "$tmp/password"):19000:0:99999:7:::" >>"$tmp/etc/shadow"
mount --bind "$tmp/actions" /usr/share/polkit-1/actions || bail "cannot bind-mount the actions"
mount --bind "$tmp/rules" /etc/polkit-1/rules.d || bail "cannot bind-mount rules.d"
for f in passwd shadow group; do
  mount --bind "$tmp/etc/$f" "/etc/$f" || bail "cannot bind-mount /etc/$f"
done
# polkit's setuid helper ignores DBUS_SYSTEM_BUS_ADDRESS: the private bus listens at the
# well-known path, in a /run/dbus of this namespace's own.
mkdir -p "$tmp/run-dbus" /run/dbus
mount --bind "$tmp/run-dbus" /run/dbus || bail "cannot bind-mount /run/dbus"
# The test user reaches the binaries and the scripts.
chmod o+rx "$tmp" "$tmp/bin"

# ---- the private system bus, polkitd, the agent ----
bus_config system "unix:path=/run/dbus/system_bus_socket" >"$tmp/bus.conf"
dbus-daemon --config-file="$tmp/bus.conf" --fork --print-pid=4 4>"$tmp/bus.pid" \
  || bail "dbus-daemon did not start"
pids+=("$(cat "$tmp/bus.pid")")
export DBUS_SYSTEM_BUS_ADDRESS=unix:path=/run/dbus/system_bus_socket
unset DBUS_SESSION_BUS_ADDRESS
G_MESSAGES_DEBUG=all "$POLKITD" >"$tmp/polkitd.log" 2>&1 &
pids+=($!)
printf '[log]\nlevel=debug\n' >"$tmp/pinhole.conf"
"$AGENT" --system --config "$tmp/pinhole.conf" --managed-dir "$tmp/managed.d" \
  --state-dir "$tmp/state" >"$tmp/agent.out" 2>"$tmp/agent.log" </dev/null &
pids+=($!)
dbus-monitor --system --binary "type='method_call',member='SetSetting'" >"$tmp/monitor.bin" &
pids+=($!)
for ((i = 0; i < 100; i++)); do
  "$CTL" --system get log.level >/dev/null 2>&1 \
    && gdbus introspect --system -d org.freedesktop.PolicyKit1 \
      -o /org/freedesktop/PolicyKit1/Authority >/dev/null 2>&1 && break
  sleep 0.1
done
((i < 100)) || bail "the agent or polkitd did not come up on the private system bus"

# as_user COMMAND...: COMMAND as the test user, with the private system bus.
as_user ()
{
  setpriv --reuid=$TEST_UID --regid=$TEST_UID --clear-groups \
    env -i PATH="${USER_PATH:-/usr/bin:/bin}" DBUS_SYSTEM_BUS_ADDRESS="$DBUS_SYSTEM_BUS_ADDRESS" \
    ${ASAN_OPTIONS:+ASAN_OPTIONS=$ASAN_OPTIONS} ${UBSAN_OPTIONS:+UBSAN_OPTIONS=$UBSAN_OPTIONS} \
    ${LSAN_OPTIONS:+LSAN_OPTIONS=$LSAN_OPTIONS} G_MESSAGES_DEBUG="${PH_DEBUG:-}" LANG=C.UTF-8 PH_STANDIN_LOG="$tmp/standin.log" "$@"
}
level () { "$CTL" --system get log.level 2>&1; }

# in_session COMMAND...: COMMAND in the test's login-session scope.
in_session ()
{
  local s
  for s in "${scopes[@]}"; do
    mkdir -p "$s" && echo "$BASHPID" >"$s/cgroup.procs" || return 1
  done
  "$@"
}

# ---- 1: --no-ask-password ----
out=$(as_user "$CTL" --system --no-ask-password set log.level info 2>&1 </dev/null)
rc=$?
[[ $rc -eq 4 && $out == *"did not allow asking"* ]]
verdict "--no-ask-password: refused without a question (exit 4)" "rc=$rc: $out"
[[ $(level) == debug ]]
verdict_then "--no-ask-password: the setting is unchanged" level

# ---- 2: no terminal: nothing started, refused ----
: >"$tmp/standin.log"
chmod 0666 "$tmp/standin.log"
cp "$HERE/stand-in-pkttyagent" "$tmp/bin/pkttyagent"
out=$(USER_PATH="$tmp/bin:/usr/bin:/bin" as_user "$CTL" --system set log.level info 2>&1 </dev/null)
rc=$?
[[ $rc -eq 4 && $out == *"authentication is required"* && $out != *"did not allow"* ]]
verdict "without a terminal: polkit found nobody to ask (exit 4)" "rc=$rc: $out"
[[ ! -s $tmp/standin.log ]]
verdict_then "without a terminal: no pkttyagent was started" cat "$tmp/standin.log"

# ---- 3: the stand-in on a terminal: arguments, parent, SIGTERM ----
out=$(USER_PATH="$tmp/bin:/usr/bin:/bin" as_user python3 "$HERE/pty-answer.py" '^$' \
  /dev/null "$CTL" --system set log.level info 2>&1)
ctl_pid=$(sed -n 's/^ppid: //p' "$tmp/standin.log")
grep -qx "args: --notify-fd 3 --fallback --process $ctl_pid" "$tmp/standin.log" \
  && grep -qx "ppid-comm: pinholectl" "$tmp/standin.log"
verdict_then "a terminal: pkttyagent --notify-fd 3 --fallback --process PID, PID pinholectl's" \
  cat "$tmp/standin.log"
grep -qx "stdin: tty" "$tmp/standin.log"
verdict_then "a terminal: pkttyagent reads the terminal" cat "$tmp/standin.log"
grep -qx "stopped: SIGTERM" "$tmp/standin.log"
verdict_then "pkttyagent is stopped when pinholectl is done" cat "$tmp/standin.log"

# ---- 4: the real pkttyagent and polkitd: a wrong password, then the right one ----
out=$(in_session as_user python3 "$HERE/pty-answer.py" '[Pp]assword' "$tmp/wrong-password" \
  "$CTL" --system set log.level info 2>&1)
rc=$?
[[ $rc -eq 4 && $out == *"AUTHENTICATION FAILED"* && $(level) == debug ]]
verdict "real polkit: a wrong admin password is refused (exit 4)" "rc=$rc" "$out"
out=$(in_session as_user python3 "$HERE/pty-answer.py" '[Pp]assword' "$tmp/password" \
  "$CTL" --system set log.level info 2>&1)
rc=$?
[[ $rc -eq 0 && $out == *"AUTHENTICATING FOR org.pinhole.agent.configure"* ]]
verdict "real polkit: pkttyagent asks on pinholectl's terminal, the password is accepted" \
  "rc=$rc" "$out"
[[ $(level) == info ]]
verdict_then "real polkit: the setting is changed" level
! grep -qF "$(cat "$tmp/password")" "$tmp/agent.log" "$tmp/polkitd.log"
verdict "the password is in neither the agent's nor polkitd's log"

# ---- 5: the open connections are a user at the machine's, or an administrator's ----
# polkit's org.pinhole.agent.monitor: this user is in no active session (no logind here), so
# it needs an administrator; root needs nobody. (allow_active=yes, a user at the machine, needs
# logind's active seat, which this test cannot make.)
out=$(as_user "$CTL" --system --no-ask-password connections 2>&1 </dev/null)
rc=$?
[[ $rc -eq 4 && $out == *"did not allow asking"* ]]
verdict "connections: refused to a user outside an active session, without asking (exit 4)" \
  "rc=$rc: $out"
out=$(in_session as_user python3 "$HERE/pty-answer.py" '[Pp]assword' "$tmp/password" \
  "$CTL" --system connections 2>&1)
rc=$?
[[ $rc -eq 0 && $out == *"AUTHENTICATING FOR org.pinhole.agent.monitor"* && $out == *"No open connections."* ]]
verdict "connections: allowed once an administrator authenticates (org.pinhole.agent.monitor)" \
  "rc=$rc" "$out"
out=$("$CTL" --system connections 2>&1)
rc=$?
[[ $rc -eq 0 && $out == "No open connections." ]]
verdict "connections: root sees them without a question" "rc=$rc: $out"

# ---- 6: the flag on the wire ----
sleep 0.5
python3 - "$tmp/monitor.bin" >"$tmp/monitor.txt" <<'EOP'
import struct, sys
data = open(sys.argv[1], "rb").read()
pos = 0
while pos + 16 <= len(data):
    end = "<" if data[pos:pos + 1] == b"l" else ">"
    flags = data[pos + 2]
    body_len, _serial, fields_len = struct.unpack(end + "III", data[pos + 4:pos + 16])
    head = 16 + fields_len
    head += -head % 8
    msg = data[pos:pos + head + body_len]
    if b"SetSetting" in msg:
        print("SetSetting interactive=%d" % (1 if flags & 0x4 else 0))
    pos += head + body_len
EOP
# The calls in order: --no-ask-password, no terminal, stand-in, wrong, right (and the agent's
# own replies are not method calls).
[[ $(tr '\n' ' ' <"$tmp/monitor.txt") == "SetSetting interactive=0 SetSetting interactive=1 "* ]]
verdict_then "on the bus: --no-ask-password leaves ALLOW_INTERACTIVE_AUTHORIZATION off, else on" \
  cat "$tmp/monitor.txt"

tap_done

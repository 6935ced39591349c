#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-or-later
# test-machine-proxy.sh: [system-proxy] machine= and pinholectl system-proxy, in a network
# namespace of the test's own, TAP output. The real agent (--session, as root, on a private bus,
# with a real stunnel+Squid cloud end) writes the machine-wide consumers under a temporary root
# ($PINHOLE_MACHINE_ROOT: /etc/environment, systemd's drop-ins, an apt.conf.d file, Docker's
# drop-in) and systemctl is a stand-in (tests/machine-proxy-systemctl.sh) that keeps the
# "manager's" environment in a file. Each consumer's own view is checked where one can run here:
#   - apt: a real apt-get update (its configuration root is the temporary root, through
#     APT_CONFIG, so that it reads the apt.conf.d file the agent wrote and the machine's apt is
#     untouched) against a loopback repository (python3 -m http.server, [trusted=yes]) on an
#     address of the namespace: its requests reach the repository through the agent (access
#     lines) and Squid;
#   - environment: env -i sh sourcing the written /etc/environment, then curl: through the agent;
#   - systemd: no private manager can run here (no systemd as PID 1), so the drop-ins' contents
#     and the stand-in's set-environment;
#   - docker: the drop-in's contents, and no daemon-reload nor restart with docker.service absent.
# Then: restore and apply by hand, disable and enable, kill -9 and the next start (which puts
# everything back before anything else), kill -9 and pinhole-agent --restore-machine-proxy (the
# package's removal with the service stopped), SIGTERM. After each restore the temporary root is
# byte for byte what it was (every file's checksum, every directory and mode).
#
# Environment (set by tests/netns/meson.build): PH_AGENT, PINHOLECTL, PH_SRCDIR.
# Root only (a namespace). Without root, or a tool, it is skipped; under CI=true that is a
# failure.

set -uo pipefail

CTL=${PINHOLECTL:?PINHOLECTL must name the pinholectl binary}
AGENT=${PH_AGENT:?PH_AGENT must name the pinhole-agent binary}
SRCDIR=${PH_SRCDIR:-$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)}
CLOUD_SCRIPT=$SRCDIR/tests/cloud/pinhole-cloud.sh
STANDIN=$SRCDIR/tests/machine-proxy-systemctl.sh

readonly REPO_ADDR=10.233.0.1
ns=ph-machine-$$
ns_made=0
repo_pid=
# shellcheck source=tests/tap.sh
source "$(dirname "${BASH_SOURCE[0]}")/../tap.sh"
# shellcheck source=tests/ph-test-lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/../ph-test-lib.sh"
ph_in=(ip netns exec "$ns")

dump_logs ()
{
  dump_files agent.log apt.log repo.log standin/systemctl.log
}

inc ()
{
  ip netns exec "$ns" "$@"
}

cleanup ()
{
  [[ -n $repo_pid ]] && kill "$repo_pid" 2>/dev/null
  ph_cleanup
  ((ns_made)) && ip netns del "$ns" 2>/dev/null
  ph_remove_tmp
}

# Every directory and file under the root with its mode, and each file's checksum.
tree_state ()
{
  (
    cd "$root" || exit 1
    find . -printf '%y %m %p\n' | LC_ALL=C sort
    find . -type f -exec sha256sum {} + | LC_ALL=C sort -k 2
  )
}

check_original ()
{
  local now manager
  now=$(tree_state)
  [[ $now == "$original_tree" ]]
  verdict "$1: the root is byte for byte what it was" \
    "$(diff <(printf '%s\n' "$original_tree") <(printf '%s\n' "$now"))"
  manager=$(cat "$tmp/standin/manager.env")
  [[ $manager == *"LANG=C.UTF-8"* && $manager == *"http_proxy=http://old.example:8080"* \
    && $manager != *127.0.0.1* ]]
  verdict "$1: the manager's environment is back" "$manager"
  [[ ! -e $journal ]]
  verdict "$1: the journal is gone"
}

# The agent's address in every consumer's file.
check_applied ()
{
  local url="http://127.0.0.1:$listen_port" env
  env=$(cat "$root/etc/environment" 2>&1)
  [[ $env == *"http_proxy=$url"* && $env == *"HTTPS_PROXY=$url"* \
    && $env == *"no_proxy=localhost,127.0.0.1,::1,.corp.example,10.99.0.0/16"* \
    && $env == *"# site environment"* && $env == *"LANG=C.UTF-8"* ]]
  verdict "$1: /etc/environment points at the agent and keeps its other lines" "$env"
  grep -qxF "Acquire::http::Proxy \"$url/\";" "$root/etc/apt/apt.conf.d/80pinhole-proxy" \
    && grep -qxF "Acquire::https::Proxy \"$url/\";" "$root/etc/apt/apt.conf.d/80pinhole-proxy"
  verdict_then "$1: the apt.conf.d file names the agent" cat "$root/etc/apt/apt.conf.d/80pinhole-proxy"
}

# ---- prerequisites ----

[[ $(id -u) == 0 ]] || skip_all "needs root (a network namespace)"
for tool in ip dbus-daemon python3 curl apt-get sha256sum stunnel4 squid; do
  command -v "$tool" >/dev/null || [[ -x /usr/sbin/$tool ]] || skip_all "$tool not found"
done
[[ -x $CTL ]] || bail "pinholectl not found at $CTL"
[[ -x $AGENT ]] || bail "pinhole-agent not found at $AGENT"

trap cleanup EXIT
trap 'exit 130' INT TERM

ph_make_tmp machine-proxy
root=$tmp/root
journal=$tmp/state/pinhole/machine-proxy.journal

ip netns add "$ns" || bail "cannot make a network namespace"
ns_made=1
inc ip link set lo up
inc ip addr add "$REPO_ADDR/32" dev lo || bail "cannot add $REPO_ADDR"

# ---- the machine's files, as someone left them ----

mkdir -p "$root/etc/apt/apt.conf.d" "$root/etc/apt/sources.list.d" \
  "$root/etc/apt/preferences.d" "$root/etc/apt/trusted.gpg.d" "$root/etc/systemd/system" \
  "$tmp/standin"
# No final newline, a comment, a proxy of someone else's: only the six lines may change.
printf '# site environment\nPATH="/usr/local/bin:/usr/bin:/bin"\nhttp_proxy=http://old.example:8080\nLANG=C.UTF-8' \
  >"$root/etc/environment"
printf 'APT::Install-Recommends "false";\n' >"$root/etc/apt/apt.conf.d/10norecommends"
printf '[Unit]\nDescription=someone else\n' >"$root/etc/systemd/system/other.service"
printf 'LANG=C.UTF-8\nhttp_proxy=http://old.example:8080\n' >"$tmp/standin/manager.env"

# ---- the loopback repository ----

repo_port=$(free_port inc)
mkdir -p "$tmp/repo"
cat >"$tmp/repo/Packages" <<'EOF'
Package: pinhole-test-package
Version: 1.0
Architecture: all
Maintainer: Pinhole tests <tests@pinhole.invalid>
Filename: ./pinhole-test-package_1.0_all.deb
Size: 1
SHA256: 0000000000000000000000000000000000000000000000000000000000000000
Description: a package the loopback repository lists

EOF
{
  echo "Origin: pinhole-test"
  echo "Label: pinhole-test"
  echo "Suite: stable"
  echo "Codename: stable"
  echo "Date: $(LC_ALL=C date -u '+%a, %d %b %Y %H:%M:%S UTC')"
  echo "Architectures: all amd64 arm64"
  echo "SHA256:"
  echo " $(sha256sum <"$tmp/repo/Packages" | cut -d' ' -f1) $(stat -c %s "$tmp/repo/Packages") Packages"
} >"$tmp/repo/Release"
echo "hello from the loopback origin" >"$tmp/repo/hello.txt"
printf 'deb [trusted=yes] http://%s:%s/ ./\n' "$REPO_ADDR" "$repo_port" \
  >"$root/etc/apt/sources.list"
inc python3 -m http.server --bind "$REPO_ADDR" --directory "$tmp/repo" "$repo_port" \
  >"$tmp/repo.log" 2>&1 &
repo_pid=$!
for ((i = 0; i < 50; i++)); do
  inc curl -s -o /dev/null --noproxy '*' "http://$REPO_ADDR:$repo_port/Release" && break
  sleep 0.1
done

# apt's own configuration root is the temporary root: it reads $root/etc/apt (sources.list and
# the agent's apt.conf.d file), keeps its lists and cache under $tmp, and runs as root (no
# sandbox user, which could not read $tmp).
mkdir -p "$tmp/apt-state/lists/partial" "$tmp/apt-cache/archives/partial" "$tmp/apt-log"
: >"$tmp/apt-status"
cat >"$tmp/apt.conf" <<EOF
Dir "$root/";
Dir::Etc "etc/apt/";
Dir::State "$tmp/apt-state/";
Dir::State::status "$tmp/apt-status";
Dir::Cache "$tmp/apt-cache/";
Dir::Log "$tmp/apt-log/";
APT::Sandbox::User "root";
Debug::NoLocking "true";
Acquire::Languages "none";
EOF
apt_update ()
{
  inc env -i PATH="$PATH" APT_CONFIG="$tmp/apt.conf" apt-get -q update >"$tmp/apt.log" 2>&1
}

original_tree=$(tree_state)

# ---- the agent, with every consumer ----

start_cloud inc
start_session_bus inc
listen_port=$(free_port inc)
bash "$CLOUD_SCRIPT" agent-config "$tmp/cloud" "$tmp/system.conf" "$listen_port"
mkdir -p "$tmp/config/pinhole"
cat >"$tmp/config/pinhole/pinhole.conf" <<EOF
[route]
direct=.corp.example,10.99.0.0/16

[system-proxy]
machine=environment,systemd,apt,docker
EOF
agent_env=(PINHOLE_MACHINE_ROOT="$root" PINHOLE_SYSTEMCTL="$STANDIN"
  PH_SYSTEMCTL_STATE="$tmp/standin")

start_agent || bail "pinhole-agent --session did not come up"
pass "the agent runs with [system-proxy] machine=environment,systemd,apt,docker"
wait_state on 20
verdict_then "the tunnel is on" tail -n 20 "$tmp/agent.log"
check_applied "at start"
[[ -e $journal ]]
verdict "the journal is in the state directory"

# apt's own view: a real apt-get update through the agent.
apt_update
verdict_then "apt-get update (APT_CONFIG: the temporary root) succeeds" cat "$tmp/apt.log"
ls "$tmp/apt-state/lists/" | grep -q "_Packages$"
verdict_then "apt fetched the repository's Packages" ls "$tmp/apt-state/lists/"
grep 'access ' "$tmp/agent.log" | grep -F "$REPO_ADDR:$repo_port" | grep -q 'Packages'
verdict_then "apt's requests went through the agent (access lines)" grep 'access ' "$tmp/agent.log"
grep -qF "$REPO_ADDR:$repo_port" "$PH_CLOUD_SQUID_ACCESS_LOG"
verdict_then "and through the cloud proxy (Squid's access log)" cat "$PH_CLOUD_SQUID_ACCESS_LOG"

# A login shell's view of /etc/environment: curl through the agent.
before=$(grep -c 'hello.txt' "$tmp/agent.log")
body=$(inc env -i PATH="$PATH" sh -c "set -a; . '$root/etc/environment'; set +a; \
  curl -sS --max-time 10 http://$REPO_ADDR:$repo_port/hello.txt" 2>&1)
[[ $body == "hello from the loopback origin" ]]
verdict "curl with only /etc/environment's variables gets the page" "$body"
[[ $(grep -c 'hello.txt' "$tmp/agent.log") -gt $before ]]
verdict_then "through the agent" grep 'access ' "$tmp/agent.log"

# systemd: the drop-ins and the running manager (the stand-in).
url="http://127.0.0.1:$listen_port"
for f in system user; do
  grep -qxF "DefaultEnvironment=\"http_proxy=$url\" \"https_proxy=$url\" \"no_proxy=localhost,127.0.0.1,::1,.corp.example,10.99.0.0/16\" \"HTTP_PROXY=$url\" \"HTTPS_PROXY=$url\" \"NO_PROXY=localhost,127.0.0.1,::1,.corp.example,10.99.0.0/16\"" \
    "$root/etc/systemd/$f.conf.d/pinhole-proxy.conf" \
    && grep -qx '\[Manager\]' "$root/etc/systemd/$f.conf.d/pinhole-proxy.conf"
  verdict_then "systemd: $f.conf.d/pinhole-proxy.conf sets DefaultEnvironment" \
    cat "$root/etc/systemd/$f.conf.d/pinhole-proxy.conf"
done
grep -qxF "http_proxy=$url" "$tmp/standin/manager.env" \
  && grep -qxF "NO_PROXY=localhost,127.0.0.1,::1,.corp.example,10.99.0.0/16" "$tmp/standin/manager.env"
verdict_then "systemd: the running manager got set-environment" cat "$tmp/standin/manager.env"
grep -q '^set-environment http_proxy=' "$tmp/standin/systemctl.log"
verdict_then "systemd: through systemctl set-environment" cat "$tmp/standin/systemctl.log"

# docker: the drop-in; docker.service is absent, so no reload and no restart.
grep -qxF "Environment=\"HTTP_PROXY=$url\" \"HTTPS_PROXY=$url\" \"NO_PROXY=localhost,127.0.0.1,::1,.corp.example,10.99.0.0/16\"" \
  "$root/etc/systemd/system/docker.service.d/pinhole-proxy.conf" \
  && grep -qx '\[Service\]' "$root/etc/systemd/system/docker.service.d/pinhole-proxy.conf"
verdict_then "docker: the drop-in sets HTTP_PROXY, HTTPS_PROXY, NO_PROXY" \
  cat "$root/etc/systemd/system/docker.service.d/pinhole-proxy.conf"
! grep -qE 'daemon-reload|restart' "$tmp/standin/systemctl.log"
verdict_then "docker: absent, so no daemon-reload and no restart" cat "$tmp/standin/systemctl.log"

# ---- pinholectl system-proxy ----

ctl --session system-proxy status
[[ $rc == 0 && $out == *"environment:"*"applied: $url"* && $out == *"apt:"*"applied: $url"* \
  && $out == *"docker.service is not installed"* ]]
verdict "system-proxy status: each consumer applied, pointing at the agent" "rc $rc: $out $err"
ctl --session system-proxy status --json
json_ok=$(printf '%s' "$out" | python3 -c '
import json, sys
v = json.load(sys.stdin)
c = {x["name"]: x for x in v["consumers"]}
ok = all(c[n]["configured"] and c[n]["applied"] and c[n]["points_at"] == sys.argv[1]
         for n in ("environment", "systemd", "apt", "docker"))
print("yes" if ok and v["tunnel_on"] and not v["held"] and v["error"] == "" else "no")' "$url" 2>&1)
[[ $json_ok == yes ]]
verdict "system-proxy status --json: configured, applied, points_at for all four" "$out"

ctl --session system-proxy restore
[[ $rc == 0 ]]
verdict "system-proxy restore succeeds" "$err"
check_original "system-proxy restore"
ctl --session system-proxy status
[[ $out == *"put back by hand"* ]]
verdict "status says they were put back by hand" "$out"
ctl --session system-proxy apply
[[ $rc == 0 ]]
verdict "system-proxy apply succeeds" "$err"
check_applied "system-proxy apply"

# ---- the tunnel off and on ----

ctl --session disable
check_original "disable"
ctl --session system-proxy apply
[[ $rc != 0 && $err == *"tunnel is off"* ]]
verdict "system-proxy apply while off fails and says why" "rc $rc: $err"
ctl --session enable
wait_state on 20
check_applied "enable"

# ---- an admin's change meanwhile ----

sed -i 's|^https_proxy=.*|https_proxy=http://admin.example:3128|' "$root/etc/environment"
echo "EDITOR=vi" >>"$root/etc/environment"
ctl --session system-proxy status
[[ $out == *"environment:"*"someone changed it since"* ]]
verdict "status: environment was changed by someone since" "$out"
ctl --session disable
env_now=$(cat "$root/etc/environment")
[[ $env_now == *"https_proxy=http://admin.example:3128"* && $env_now != *127.0.0.1* \
  && $env_now == *"http_proxy=http://old.example:8080"* && $env_now == *"EDITOR=vi"* ]]
verdict "disable after an admin's edit: their lines stay, Pinhole's go" "$env_now"
grep -q "https_proxy was changed since Pinhole set it; left as it is" "$tmp/agent.log"
verdict "the log says what was left"
admin_env=$env_now
ctl --session enable
wait_state on 20
sed -i 's|^https_proxy=.*|https_proxy=http://admin2.example:3128|' "$root/etc/environment"
ctl --session system-proxy apply
env_now=$(cat "$root/etc/environment")
[[ $rc == 0 && $env_now == *"https_proxy=$url"* && $env_now == *"EDITOR=vi"* ]]
verdict "system-proxy apply rewrites the line changed meanwhile, keeps the admin's others" \
  "rc $rc: $env_now"
ctl --session disable
env_now=$(cat "$root/etc/environment")
[[ $env_now == "${admin_env/admin.example/admin2.example}" ]]
verdict "then disable puts back the file as it was at that apply" "$env_now"
# Back to the original for the rest.
printf '# site environment\nPATH="/usr/local/bin:/usr/bin:/bin"\nhttp_proxy=http://old.example:8080\nLANG=C.UTF-8' \
  >"$root/etc/environment"
check_original "after the admin's edit is undone"
ctl --session enable
wait_state on 20
check_applied "enable again"

# ---- kill -9, then the next start ----

kill -KILL "$agent_pid"
wait "$agent_pid" 2>/dev/null
agent_pid=
[[ -e $journal ]] && grep -q "http_proxy=$url" "$root/etc/environment"
verdict "kill -9 leaves the files pointed at the agent and the journal"
# The next start without machine= (so that nothing is applied again): everything goes back.
sed -i '/^machine=/d' "$tmp/config/pinhole/pinhole.conf"
start_agent || bail "pinhole-agent did not come up again"
grep -q "put back the machine-wide proxy consumers left by a previous run" "$tmp/agent.log"
verdict_then "the next start puts back what the killed run left" tail -n 20 "$tmp/agent.log"
check_original "the start after kill -9"

# machine= set again live (pinholectl set): applied at once.
ctl --session set system-proxy.machine "apt environment systemd docker"
[[ $rc == 0 ]]
verdict "pinholectl set system-proxy.machine" "$err"
wait_state on 20
check_applied "set live"

# ---- kill -9, then the package's removal: pinhole-agent --restore-machine-proxy ----

kill -KILL "$agent_pid"
wait "$agent_pid" 2>/dev/null
agent_pid=
inc env -i PATH="$PATH" PINHOLE_MACHINE_ROOT="$root" PINHOLE_SYSTEMCTL="$STANDIN" \
  PH_SYSTEMCTL_STATE="$tmp/standin" "$AGENT" --restore-machine-proxy \
  --state-dir "$tmp/state/pinhole" >"$tmp/restore.out" 2>&1
verdict_then "pinhole-agent --restore-machine-proxy (the service stopped) succeeds" cat "$tmp/restore.out"
check_original "pinhole-agent --restore-machine-proxy"
inc env -i PATH="$PATH" PINHOLE_MACHINE_ROOT="$root" "$AGENT" --restore-machine-proxy \
  --state-dir "$tmp/state/pinhole" >"$tmp/restore.out" 2>&1
verdict_then "and again: nothing to put back, still exit 0" cat "$tmp/restore.out"

# ---- SIGTERM ----

start_agent || bail "pinhole-agent did not come up a third time"
wait_state on 20
check_applied "the third start"
stop_agent
[[ $agent_status == 0 ]]
verdict "SIGTERM: the agent ends cleanly" "exit status $agent_status"
check_original "SIGTERM"

tap_done

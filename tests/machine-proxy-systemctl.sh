#!/bin/sh
# SPDX-License-Identifier: GPL-2.0-or-later
# machine-proxy-systemctl.sh: a stand-in for systemctl, for the machine-proxy tests
# (tests/test-machine-proxy.c, tests/netns/test-machine-proxy.sh): the manager's environment is
# the file $PH_SYSTEMCTL_STATE/manager.env (one VAR=VALUE a line), docker.service is "loaded"
# when $PH_SYSTEMCTL_STATE/docker.present exists, and every call is appended to
# $PH_SYSTEMCTL_STATE/systemctl.log, so that a test sees what was asked (a restart would show).
set -u
state=${PH_SYSTEMCTL_STATE:?PH_SYSTEMCTL_STATE must name a directory}
env_file=$state/manager.env
echo "$*" >>"$state/systemctl.log"
touch "$env_file"

drop ()
{
  grep -v "^$1=" "$env_file" >"$env_file.tmp" || true
  mv "$env_file.tmp" "$env_file"
}

verb=$1
shift
case $verb in
show-environment) cat "$env_file" ;;
set-environment)
  for a in "$@"; do
    drop "${a%%=*}"
    printf '%s\n' "$a" >>"$env_file"
  done
  ;;
unset-environment) for k in "$@"; do drop "$k"; done ;;
show)
  if [ -e "$state/docker.present" ]; then echo loaded; else echo not-found; fi
  ;;
daemon-reload) ;;
*)
  echo "machine-proxy-systemctl.sh: $verb is not expected here" >&2
  exit 1
  ;;
esac

#!/usr/bin/env bash
# install-deps.sh: installs from Debian what Pinhole's build, demo and tests
# need. The one list; README's commands and .ci/run both use it.
set -euo pipefail

packages=(
  # build
  gcc meson ninja-build pkg-config libglib2.0-dev libgnutls28-dev clang-format
  # the real peers the tests run against, and their tools
  stunnel4 squid apache2-utils gnutls-bin openssl curl python3 iproute2 procps
  # fuzzing (libFuzzer) and sanitizers
  clang libclang-rt-14-dev
  # control plane: bus, secrets
  libsecret-1-dev gnome-keyring dbus-daemon
  # packaging: the .deb, lintian, unit and policy checks (tests/deb/)
  debhelper dpkg-dev fakeroot lintian help2man systemd libxml2-utils libglib2.0-bin
)

sudo=
[ "$(id -u)" -eq 0 ] || sudo=sudo
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "install-deps: installing ${missing[*]}" >&2
  export DEBIAN_FRONTEND=noninteractive
  $sudo apt-get update -q
  $sudo apt-get install -y -q --no-install-recommends "${missing[@]}"
fi

#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
# install-deps.sh [--windows]: installs from Debian what Pinhole's build, demo and tests
# need. The one list; README's commands and .ci/run both use it.
set -euo pipefail

packages=(
  # build (json-glib: pinholectl's --json)
  gcc meson ninja-build pkg-config libglib2.0-dev libgnutls28-dev libnghttp2-dev libjson-glib-dev clang-format
  # the real peers the tests run against, and their tools (git: a SOCKS5 client, socks5h://;
  # python3-socks: PySocks, a SOCKS5 client with username/password, tests/netns/test-socks-auth.sh)
  stunnel4 squid tinyproxy apache2-utils gnutls-bin openssl curl python3 iproute2 procps git
  python3-socks
  # the h2 cloud end: nghttpx in HTTP/2 proxy mode in front of Squid (PH_CLOUD_FRONT=nghttpx in
  # tests/cloud/pinhole-cloud.sh), and hyper-h2, the HTTP/2 client of tests/cloud/h2-connect.py
  nghttp2-proxy python3-h2
  # real PAC engines that read the agent's /proxy.pac (tests/cloud/test-pac.py)
  python3-pacparser chromium
  # real clients through the agent (tests/cloud/test-clients.py; git and chromium above too)
  python3-requests python3-websockets
  # nftables: tests/netns/ keeps the cloud proxy out of reach until the simulated portal lets it,
  # and forwards to a cloud end in another namespace, and its nft parses and applies the capture
  # rules (tests/test-capture.c, tests/netns/test-capture.sh); PyGObject: the fake logind of
  # tests/netns/test-netchange.sh (Debian's /usr/bin/python3)
  nftables python3-gi gir1.2-glib-2.0
  # fuzzing (libFuzzer) and sanitizers
  clang libclang-rt-14-dev
  # control plane: bus, secrets; polkitd and its pkttyagent, util-linux's unshare and setpriv
  # (tests/polkit/)
  libsecret-1-dev gnome-keyring dbus-daemon polkitd util-linux
  # packaging: the .deb, lintian, unit and policy checks (tests/deb/)
  debhelper dpkg-dev fakeroot lintian help2man systemd libxml2-utils libglib2.0-bin
  # desktop proxy settings: GNOME's org.gnome.system.proxy schema, KDE's kwriteconfig5/kreadconfig5
  gsettings-desktop-schemas libkf5config-bin
  # translations: the .mo files, and msgmerge/msgfmt/xgettext for tests/i18n/check-po.sh
  gettext
  # the tray: GTK 3, AppIndicator, and the real X server, tray host, notification server,
  # fonts (Latin and CJK), SVG icon loader, screenshot tool and window lister (xwininfo) its
  # tests use
  libgtk-3-dev libayatana-appindicator3-dev xvfb xauth trayer dunst imagemagick x11-utils
  fonts-dejavu-core fonts-noto-cjk librsvg2-common hicolor-icon-theme
  # a StatusNotifierItem watcher and host for the AppIndicator path (tests/gui/test-sni.sh)
  haskell-status-notifier-item-utils haskell-gtk-sni-tray-utils
  # desktop and AppStream files, validated in tests
  desktop-file-utils appstream
)
# --windows: also what the Windows build and its tests under Wine need (tests/windows/):
# mingw-w64 (the libraries themselves come from installer/windows/build-deps.sh), 64-bit Wine
# and its fonts, NSIS with rsvg-convert and icotool for the installer's icon
# (installer/nsis/build-installer.sh), and the X tools that find and shoot the tray's windows.
if [ "${1:-}" = --windows ]; then
  packages+=(mingw-w64 wine wine64 fonts-wine nsis librsvg2-bin icoutils x11-utils xdotool)
fi

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

#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
# cross-build.sh BUILDDIR [MESON-OPTION...]: builds Pinhole for 64-bit Windows with mingw-w64
# into BUILDDIR, against the prefix of installer/windows/build-deps.sh (built or reused from
# its cache). PH_WIN_GTK=1 includes the tray. The tests then run under Wine:
#   source tests/windows/env.sh; meson test -C BUILDDIR
set -euo pipefail
cd "$(dirname "$0")/../.."
builddir=${1:?usage: cross-build.sh BUILDDIR [MESON-OPTION...]}
shift
# shellcheck source=tests/windows/env.sh
source tests/windows/env.sh

gui=disabled
[ "${PH_WIN_GTK:-0}" = 1 ] && gui=enabled
mkdir -p "$builddir"
ph_win_cross_prefix_file "$builddir/prefix.ini"
if [ ! -f "$builddir/build.ninja" ]; then
  meson setup "$builddir" \
    --cross-file installer/windows/x86_64-w64-mingw32.ini \
    --cross-file "$builddir/prefix.ini" \
    --prefix / --bindir bin --sbindir bin --datadir share --localedir share/locale \
    -Dgui=$gui -Dlibsecret=disabled -Dsystemd=disabled -Dappindicator=disabled "$@"
fi
ninja -C "$builddir"

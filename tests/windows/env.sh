# SPDX-License-Identifier: GPL-2.0-or-later
# env.sh: sourced by the Windows build and test scripts. Sets PH_WIN_PREFIX (the cross-built
# libraries, from installer/windows/build-deps.sh) and a Wine environment in which the
# cross-built programs run: their DLLs on WINEPATH, a private WINEPREFIX, no Wine debug noise.
#
#   PH_WIN_GTK=1        the prefix with the GTK stage (the tray)
#   WINEPREFIX          default: ${XDG_CACHE_HOME:-~/.cache}/pinhole/wine-$USER
#   PH_WIN_PREFIX       skip build-deps.sh and use this prefix
# shellcheck shell=bash

ph_win_root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
if [ -z "${PH_WIN_PREFIX:-}" ]; then
  if [ "${PH_WIN_GTK:-0}" = 1 ]; then
    PH_WIN_PREFIX=$(bash "$ph_win_root/installer/windows/build-deps.sh" --gtk)
  else
    PH_WIN_PREFIX=$(bash "$ph_win_root/installer/windows/build-deps.sh")
  fi
fi
export PH_WIN_PREFIX
export PKG_CONFIG_LIBDIR="$PH_WIN_PREFIX/lib/pkgconfig"
export WINEPREFIX=${WINEPREFIX:-${XDG_CACHE_HOME:-$HOME/.cache}/pinhole/wine-$(id -un)}
export WINEDEBUG=${WINEDEBUG:--all}
export WINEDLLOVERRIDES=${WINEDLLOVERRIDES:-mscoree,mshtml=}
ph_win_gccdir=$(dirname "$(x86_64-w64-mingw32-gcc-win32 -print-libgcc-file-name)")
export WINEPATH="$PH_WIN_PREFIX/bin;$ph_win_gccdir"

# The cross file naming the prefix; meson reads it after installer/windows/x86_64-w64-mingw32.ini.
ph_win_cross_prefix_file ()
{
  local out=$1
  cat >"$out" <<INI
[built-in options]
c_args = ['-I$PH_WIN_PREFIX/include']
c_link_args = ['-L$PH_WIN_PREFIX/lib']

[properties]
pkg_config_libdir = ['$PH_WIN_PREFIX/lib/pkgconfig']

[binaries]
exe_wrapper = 'wine'
INI
}

# Creates the Wine prefix once (wineboot takes a while the first time).
ph_win_wine_init ()
{
  if [ ! -f "$WINEPREFIX/system.reg" ]; then
    mkdir -p "$WINEPREFIX"
    wineboot --init >/dev/null 2>&1 || true
    wineserver -w || true
  fi
}

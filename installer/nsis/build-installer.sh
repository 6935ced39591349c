#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
# build-installer.sh [--no-tray] [--builddir DIR] [OUTDIR]: builds the Windows installer
# pinhole-setup-VERSION.exe (VERSION: meson's project version) from this work tree, on Debian 12:
#
#   bash installer/nsis/build-installer.sh
#
# 1. installs the tools (tests/install-deps.sh --windows) and the cross-built libraries
#    (installer/windows/build-deps.sh, with --gtk unless --no-tray; cached);
# 2. cross-builds (tests/windows/cross-build.sh) and runs `meson install --strip --destdir`
#    into a staging tree;
# 3. adds what the programs need at run time and meson does not install: the DLLs they import,
#    followed through the prefix (x86_64-w64-mingw32-objdump -p), libgcc_s_seh-1.dll, GLib's
#    gspawn helpers, and for the tray GTK's compiled GSettings schemas and the GLib and GTK
#    catalogues of each language Pinhole ships;
# 4. writes the NSIS file list from the staging tree (nothing is listed by hand) and runs
#    makensis on installer/nsis/pinhole.nsi.
#
# --no-tray       build without pinhole-tray (PH_WIN_GTK=0): no GTK stage, no shortcuts
# --builddir DIR  the meson build directory (default: build-win-setup, or build-win-setup-notray);
#                 an existing one is reused, switched to the tray choice
# OUTDIR          where the .exe goes (default: the build directory)
#
# The staging tree and generated NSIS includes stay in BUILDDIR/nsis/ for inspection.
#
# NSIS's own variables ($INSTDIR, ...) go into the generated includes in single quotes:
# shellcheck disable=SC2016
set -euo pipefail

die ()
{
  echo "build-installer: $*" >&2
  exit 1
}

log ()
{
  echo "build-installer: $*" >&2
}

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
top=$(cd "$here/../.." && pwd)
cd "$top"

tray=1
[[ ${PH_WIN_GTK:-1} == 0 ]] && tray=0
builddir=""
outdir=""
while (($# > 0)); do
  case $1 in
    --no-tray) tray=0 ;;
    --builddir) [[ $# -ge 2 ]] || die "--builddir needs a directory"; builddir=$2; shift ;;
    --builddir=*) builddir=${1#--builddir=} ;;
    -h | --help) sed -n '2,/^# The staging tree/p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//' >&2; exit 0 ;;
    -*) die "unknown option $1 (try --help)" ;;
    *) [[ -z $outdir ]] || die "one OUTDIR only"; outdir=$1 ;;
  esac
  shift
done
if [[ -z $builddir ]]; then
  builddir=build-win-setup
  ((tray)) || builddir=build-win-setup-notray
fi

# --- tools, libraries, build ---------------------------------------------------------------
bash tests/install-deps.sh --windows >&2
export PH_WIN_GTK=$tray
# shellcheck source=tests/windows/env.sh
source tests/windows/env.sh
gui=disabled
((tray)) && gui=enabled
if [[ -f $builddir/build.ninja ]]; then
  meson configure "$builddir" -Dgui=$gui >/dev/null
fi
# No tests in the product build; the release build type (no assertions are compiled out: this
# project keeps b_ndebug at its default).
bash tests/windows/cross-build.sh "$builddir" --buildtype=release -Dtests=false >&2
builddir=$(cd "$builddir" && pwd)
outdir=${outdir:-$builddir}
mkdir -p "$outdir"
outdir=$(cd "$outdir" && pwd)

version=$(meson introspect --projectinfo "$builddir" |
  python3 -c 'import json, sys; print(json.load(sys.stdin)["version"])')
[[ $version =~ ^[0-9]+(\.[0-9]+){0,3}$ ]] || die "version '$version' is not N.N.N (NSIS needs numbers)"
# VIProductVersion wants exactly four numbers.
quad=$version
while [[ $(tr -cd . <<<"$quad" | wc -c) -lt 3 ]]; do quad=$quad.0; done

# --- staging: what meson installs --------------------------------------------------------
work=$builddir/nsis
stage=$work/stage
rm -rf "$work"
mkdir -p "$work"
meson install -C "$builddir" --no-rebuild --strip --destdir "$stage" >"$work/meson-install.log" ||
  die "meson install failed (see $work/meson-install.log)"

required=(pinhole-agent.exe pinholectl.exe)
((tray)) && required+=(pinhole-tray.exe)
for exe in "${required[@]}"; do
  [[ -f $stage/bin/$exe ]] || die "meson did not install bin/$exe (is the Windows build of it on this branch?)"
done
if ((!tray)) && [[ -f $stage/bin/pinhole-tray.exe ]]; then
  die "bin/pinhole-tray.exe is installed although --no-tray was given"
fi

# Configuration goes to %ProgramData%\Pinhole, not to Program Files: meson's sysconfdir
# (etc/pinhole) is set aside and installed there by the NSIS script.
programdata=$work/programdata
mkdir -p "$programdata"
if [[ -d $stage/etc/pinhole ]]; then
  cp -a "$stage/etc/pinhole/." "$programdata/"
  rm -rf "$stage/etc/pinhole"
  rmdir "$stage/etc" 2>/dev/null || true
fi
[[ -f $stage/share/pinhole/pinhole.conf.example ]] ||
  die "share/pinhole/pinhole.conf.example is not installed; the installer creates pinhole.conf from it"

# --- the DLLs the programs import -------------------------------------------------------
mingw_objdump=x86_64-w64-mingw32-objdump
mingw_strip=x86_64-w64-mingw32-strip
mingw_libdir=/usr/x86_64-w64-mingw32/lib
# Where a DLL may come from: the prefix's bin (GCC runtime DLLs are copied there by
# build-deps.sh) and the toolchain's own directory. Names compare without case, as on Windows.
declare -A dll_source=()
for dir in "$ph_win_gccdir" "$PH_WIN_PREFIX/bin"; do
  for f in "$dir"/*.dll; do
    [[ -e $f ]] || continue
    name=$(basename "$f")
    dll_source[${name,,}]=$f
  done
done

declare -A staged=()
queue=()
while IFS= read -r -d '' f; do
  staged[$(basename "${f,,}")]=1
  queue+=("$f")
done < <(find "$stage/bin" -maxdepth 1 -type f \( -iname '*.exe' -o -iname '*.dll' \) -print0)

# add_dll NAME: copies NAME from the prefix into bin/ once, stripped, and queues it.
add_dll ()
{
  local name=$1 src
  [[ -z ${staged[${name,,}]:-} ]] || return 0
  src=${dll_source[${name,,}]}
  cp "$src" "$stage/bin/$(basename "$src")"
  "$mingw_strip" --strip-unneeded "$stage/bin/$(basename "$src")"
  staged[${name,,}]=1
  queue+=("$stage/bin/$(basename "$src")")
}

# GLib runs these for g_spawn*() and GSubprocess, from libglib's own directory; nothing imports
# them, so the import closure cannot find them.
for helper in gspawn-win64-helper.exe gspawn-win64-helper-console.exe; do
  [[ -f $PH_WIN_PREFIX/bin/$helper ]] || die "$helper is missing from $PH_WIN_PREFIX/bin"
  cp "$PH_WIN_PREFIX/bin/$helper" "$stage/bin/"
  "$mingw_strip" --strip-unneeded "$stage/bin/$helper"
  staged[$helper]=1
  queue+=("$stage/bin/$helper")
done

unresolved=()
while ((${#queue[@]} > 0)); do
  f=${queue[0]}
  queue=("${queue[@]:1}")
  while IFS= read -r name; do
    lname=${name,,}
    if [[ -n ${staged[$lname]:-} ]]; then
      continue
    elif [[ -n ${dll_source[$lname]:-} ]]; then
      add_dll "$name"
    elif [[ -f $mingw_libdir/lib${lname%.*}.a ]]; then
      # A system DLL: mingw-w64 has its import library (kernel32.dll, msvcrt.dll, winspool.drv...).
      continue
    else
      unresolved+=("$name (imported by $(basename "$f"))")
    fi
  done < <("$mingw_objdump" -p "$f" | sed -n 's/^[[:space:]]*DLL Name: //p' | tr -d '\r')
done
((${#unresolved[@]} == 0)) || die "DLLs found neither in $PH_WIN_PREFIX/bin nor in Windows: ${unresolved[*]}"
# GnuTLS's thread-local storage goes through libgcc's emutls, so the closure brings it; shipped
# whether or not, as the toolchain notes ask (installer/windows/README.md).
[[ -n ${dll_source[libgcc_s_seh-1.dll]:-} ]] || die "libgcc_s_seh-1.dll not found in the prefix or toolchain"
add_dll libgcc_s_seh-1.dll

# --- run-time data ------------------------------------------------------------------------
# The catalogues of GLib (and GTK) for each language Pinhole itself is translated into.
catalogues=(glib20)
((tray)) && catalogues+=(gtk30)
for langdir in "$stage"/share/locale/*/; do
  [[ -d $langdir ]] || continue
  lang=$(basename "$langdir")
  for domain in "${catalogues[@]}"; do
    src=$PH_WIN_PREFIX/share/locale/$lang/LC_MESSAGES/$domain.mo
    [[ -f $src ]] && cp "$src" "$stage/share/locale/$lang/LC_MESSAGES/"
  done
done

if ((tray)); then
  # GTK's settings schemas (file and colour choosers), compiled; the sources are not needed at
  # run time. Schemas meson installed for Pinhole itself go in too.
  schemas=$stage/share/glib-2.0/schemas
  mkdir -p "$schemas"
  cp "$PH_WIN_PREFIX"/share/glib-2.0/schemas/*.gschema.xml "$schemas/"
  glib-compile-schemas --strict "$schemas"
  rm -f "$schemas"/*.gschema.xml "$schemas"/*.dtd

  # gdk-pixbuf in the prefix has its loaders built in (PNG, ICO, BMP...: -Dbuiltin_loaders=all),
  # so there are no loader DLLs and no loaders.cache to ship. Should that change, the loaders and
  # a loaders.cache made for the installed paths would have to come along: stop here.
  if compgen -G "$PH_WIN_PREFIX/lib/gdk-pixbuf-2.0/*/loaders/*.dll" >/dev/null; then
    die "gdk-pixbuf in $PH_WIN_PREFIX has loader modules; this script expects them built in"
  fi
fi

# The icon of the installer, the uninstaller, the Add/Remove Programs entry and the shortcuts.
icon_dir=$work/icon
mkdir -p "$icon_dir"
for size in 16 24 32 48 256; do
  rsvg-convert -w $size -h $size -o "$icon_dir/$size.png" gui/icons/org.pinhole.Tray.svg
done
icotool -c -o "$stage/share/pinhole/pinhole.ico" "$icon_dir"/{16,24,32,48}.png --raw="$icon_dir/256.png"

# --- the NSIS file lists ------------------------------------------------------------------
# NSIS reads the generated includes as UTF-8 but writes the manifest through the ANSI code
# page; ASCII names keep both sides the same.
if find "$stage" "$programdata" -name '*[! -~]*' | grep -q .; then
  die "a staged file name is not ASCII: $(find "$stage" "$programdata" -name '*[! -~]*' | head -n 1)"
fi

# files.nsh: SetOutPath + File for each directory of the staging tree.
# pinhole-files.txt: the installed files and directories relative to $INSTDIR ("F path",
# then "D path" deepest first), installed with them; the uninstaller, and an upgrade before
# it copies the new files, remove exactly these.
manifest=$stage/pinhole-files.txt
{
  (cd "$stage" && find . -type f ! -path ./pinhole-files.txt | sed 's|^\./||' | LC_ALL=C sort) |
    sed 's|/|\\|g; s|^|F |'
  echo 'F pinhole-files.txt'
  (cd "$stage" && find . -mindepth 1 -type d | sed 's|^\./||' | awk -F/ '{ print NF "\t" $0 }' |
    LC_ALL=C sort -k1,1nr -k2 | cut -f2-) | sed 's|/|\\|g; s|^|D |'
} | sed 's/$/\r/' >"$manifest"

# nsis_files TREE DEST: SetOutPath/File lines for every file of TREE, installed under DEST
# (an NSIS path such as $INSTDIR, written as it is).
nsis_files ()
{
  local tree=$1 dest=$2 dir rel
  (cd "$tree" && find . -type d | sed 's|^\.||; s|^/||' | LC_ALL=C sort) | while IFS= read -r rel; do
    dir=$tree${rel:+/$rel}
    find "$dir" -maxdepth 1 -type f | grep -q . || continue
    printf 'SetOutPath "%s%s"\n' "$dest" "${rel:+\\${rel//\//\\}}"
    find "$dir" -maxdepth 1 -type f | LC_ALL=C sort | while IFS= read -r f; do
      printf 'File "%s"\n' "$f"
    done
  done
}
{
  echo "; Generated by installer/nsis/build-installer.sh from $stage; do not edit."
  nsis_files "$stage" '$INSTDIR'
} >"$work/files.nsh"
# Shipped into %ProgramData%\Pinhole (documentation beside the user's configuration): installed
# over the previous version's, and removed by the uninstaller even when the configuration stays.
{
  echo "; Generated by installer/nsis/build-installer.sh from $programdata; do not edit."
  nsis_files "$programdata" '$PH_CONFIG_DIR'
} >"$work/programdata.nsh"
{
  echo "; Generated by installer/nsis/build-installer.sh from $programdata; do not edit."
  (cd "$programdata" && find . -type f | sed 's|^\./||' | LC_ALL=C sort) | while IFS= read -r f; do
    printf 'Delete "$PH_CONFIG_DIR\\%s"\n' "${f//\//\\}"
  done
} >"$work/programdata-uninstall.nsh"

size_kb=$(du -sk "$stage" | cut -f1)
defines=(
  -DPH_VERSION="$version"
  -DPH_VERSION_QUAD="$quad"
  -DPH_GENDIR="$work"
  -DPH_ICON="$stage/share/pinhole/pinhole.ico"
  -DPH_OUTFILE="$outdir/pinhole-setup-$version.exe"
)
((tray)) && defines+=(-DPH_HAVE_TRAY)

log "makensis: $(find "$stage" -type f | wc -l) files, ${size_kb} KiB staged"
makensis -V2 -INPUTCHARSET UTF8 "${defines[@]}" "$here/pinhole.nsi" >"$work/makensis.log" 2>&1 || {
  tail -n 30 "$work/makensis.log" >&2
  die "makensis failed (log: $work/makensis.log)"
}
setup=$outdir/pinhole-setup-$version.exe
log "$setup ($(du -h "$setup" | cut -f1), tray: $( ((tray)) && echo yes || echo no))"
echo "$setup"

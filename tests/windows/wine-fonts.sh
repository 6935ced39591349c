#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
# wine-fonts.sh: makes fonts visible to GTK's Pango in a Wine prefix, Latin and Chinese. Run it,
# or source it, with WINEPREFIX set (the prefix is created if needed); idempotent, a stamp in
# the prefix skips the work when nothing changed.
#
# Why: Pango 1.50 on Windows names fonts through DirectWrite, and Wine's DirectWrite knows only
# the fonts listed under HKLM\Software\Microsoft\Windows NT\CurrentVersion\Fonts. Wine's own
# Tahoma (Debian's fonts-wine, which GDI loads from Wine's data folder) is not listed there, and
# Wine's message font, which GTK takes as its font, is "MS Shell Dlg", a GDI alias that
# DirectWrite does not resolve: GTK then asks for the font "(null) 8" (Pango criticals
# "assertion 'desc != NULL' failed") and every glyph is a box. So this
#  1. lists fonts-wine's TrueType files and fonts-noto-cjk's Noto Sans CJK there, by their Z:\
#     paths, so that nothing is copied;
#  2. makes Noto Sans CJK SC 9 the message font, as Microsoft YaHei UI 9 is on a Chinese
#     Windows: one font with Latin and Chinese (Tahoma without fonts-noto-cjk). Linking a CJK
#     font to Tahoma, as Windows links Microsoft YaHei to Segoe UI, does not last: Wine rewrites
#     Tahoma's FontLink\SystemLink whenever the code page changes (LANG=zh_CN after en_US);
#  3. writes $WINEPREFIX/pinhole-fonts/fonts.conf, a fontconfig configuration with those fonts
#     only, and runs Wine with FONTCONFIG_FILE naming it; sourcing this exports it. Wine adds
#     every font fontconfig knows to the prefix, and its DirectWrite cannot name some of them
#     (DejaVu's Condensed and Light faces: one Pango critical each), so a prefix made without
#     this configuration depends on the machine's fonts. An empty configuration is no answer:
#     Wine's GDI then renders every font with Marlett's glyphs. Wine keeps the fonts that one
#     run without it added, so each run of this also removes, from the Fonts key and Wine's
#     "External Fonts", the fonts outside those folders.
#
#   PH_WINE_FONTS_EXTRA   more font files (space-separated) to register

ph_wine_fonts_main ()
{
  local wine_fonts=/usr/share/wine/fonts
  local cjk_dir=/usr/share/fonts/opentype/noto
  local files=() f name reg stamp sum
  local key='HKEY_LOCAL_MACHINE\Software\Microsoft\Windows NT\CurrentVersion\Fonts'

  : "${WINEPREFIX:?wine-fonts.sh: set WINEPREFIX}"
  export WINEPREFIX
  export WINEDEBUG=${WINEDEBUG:--all}
  export FONTCONFIG_FILE="$WINEPREFIX/pinhole-fonts/fonts.conf"
  # DejaVu Sans Mono for the pins (the tray asks for "monospace,DejaVu Sans Mono"), copied
  # alone: the rest of its directory (Condensed, ExtraLight) makes Pango critical.
  mkdir -p "$WINEPREFIX/pinhole-fonts/mono"
  [ -f /usr/share/fonts/truetype/dejavu/DejaVuSansMono.ttf ] \
    && cp -u /usr/share/fonts/truetype/dejavu/DejaVuSansMono.ttf "$WINEPREFIX/pinhole-fonts/mono/"
  for f in "$wine_fonts"/*.ttf "$cjk_dir"/NotoSansCJK-Regular.ttc "$cjk_dir"/NotoSansCJK-Bold.ttc \
    "$WINEPREFIX"/pinhole-fonts/mono/DejaVuSansMono.ttf ${PH_WINE_FONTS_EXTRA:-}; do
    [ -f "$f" ] && files+=("$f")
  done
  if [ ! -f "$wine_fonts/tahoma.ttf" ]; then
    echo "wine-fonts: $wine_fonts/tahoma.ttf is missing: install fonts-wine" >&2
    return 1
  fi
  if ! ls "$cjk_dir"/NotoSansCJK-Regular.ttc >/dev/null 2>&1; then
    echo "wine-fonts: no Noto Sans CJK: install fonts-noto-cjk (Chinese text shows as boxes)" >&2
  fi

  # 3
  mkdir -p "$WINEPREFIX/pinhole-fonts"
  {
    echo '<?xml version="1.0"?>'
    echo '<!DOCTYPE fontconfig SYSTEM "fonts.dtd">'
    echo '<!-- Written by tests/windows/wine-fonts.sh: the fonts this Wine prefix sees. -->'
    echo '<fontconfig>'
    for f in "${files[@]}"; do
      echo "  <dir>$(dirname "$f")</dir>"
    done | awk '!seen[$0]++'
    echo "  <cachedir>$WINEPREFIX/pinhole-fonts/cache</cachedir>"
    echo '</fontconfig>'
  } >"$FONTCONFIG_FILE.new"
  mv "$FONTCONFIG_FILE.new" "$FONTCONFIG_FILE"

  # One .reg file: one regedit run, not one wine start per font.
  reg=$(mktemp --suffix=.reg)
  {
    printf 'Windows Registry Editor Version 5.00\r\n\r\n[%s]\r\n' "$key"
    for f in "${files[@]}"; do
      # The value's name is the families' names, as Windows writes them ("A & B (TrueType)").
      name=
      if command -v fc-scan >/dev/null 2>&1; then
        name=$(fc-scan --format '%{family[0]}|%{style[0]}\n' "$f" 2>/dev/null \
          | awk -F'|' '{ n = ($2 == "" || $2 == "Regular") ? $1 : $1 " " $2 }
                       !seen[n]++ { out = out (out == "" ? "" : " & ") n }
                       END { print out }')
      fi
      [ -n "$name" ] || name=$(basename "${f%.*}")
      printf '"%s (TrueType)"="Z:%s"\r\n' "$name" "$(printf '%s' "$f" | sed 's|/|\\\\|g')"
    done
    printf '\r\n'
  } >"$reg"

  # 2: a LOGFONTW: height -12 (9 points at 96 dpi), weight 400, default pitch, Swiss family.
  local face=Tahoma hex
  [ -f "$cjk_dir"/NotoSansCJK-Regular.ttc ] && face='Noto Sans CJK SC'
  face=$(printf '%s' "$face" | iconv -t UTF-16LE | od -An -v -tx1 | tr -s ' \n' ' ')
  hex="f4 ff ff ff 00 00 00 00 00 00 00 00 00 00 00 00 90 01 00 00 00 00 00 00 00 00 00 22 $face"
  while [ "$(wc -w <<<"$hex")" -lt 92 ]; do hex="$hex 00"; done
  {
    printf '[HKEY_CURRENT_USER\\Control Panel\\Desktop\\WindowMetrics]\r\n'
    printf '"MessageFont"=hex:%s\r\n\r\n' "$(tr -s ' ' '\n' <<<"$hex" | grep . | paste -sd, -)"
    printf '\r\n'
  } >>"$reg"

  stamp="$WINEPREFIX/.pinhole-wine-fonts"
  sum=$(cat "$reg" "$FONTCONFIG_FILE" | sha256sum | cut -d' ' -f1)
  if [ -f "$WINEPREFIX/system.reg" ] && [ "$(cat "$stamp" 2>/dev/null)" = "$sum" ]; then
    rm -f "$reg"
    ph_wine_fonts_prune
    return 0
  fi
  if [ ! -f "$WINEPREFIX/system.reg" ]; then
    mkdir -p "$WINEPREFIX"
    wineboot --init >/dev/null 2>&1 || true
  fi
  wine regedit /S "$(winepath -w "$reg")" >/dev/null 2>&1
  rm -f "$reg"
  # wineserver holds the registry (system.reg is written when it exits): ask Wine itself.
  if ! wine reg query "$key" /v 'Tahoma (TrueType)' 2>/dev/null | grep -qi 'tahoma.ttf'; then
    echo "wine-fonts: the fonts did not reach $WINEPREFIX's registry" >&2
    return 1
  fi
  ph_wine_fonts_prune
  echo "$sum" >"$stamp"
  echo "wine-fonts: registered ${#files[@]} fonts in $WINEPREFIX" >&2
}

# Removes the fonts that Wine took from another fontconfig configuration (see 3 above).
ph_wine_fonts_prune ()
{
  local dirs k reg stale=0
  dirs=$(sed -n 's|.*<dir>\(.*\)</dir>.*|\1|p' "$FONTCONFIG_FILE" | sed 's|/|\\|g' | sed 's|^|Z:|')
  reg=$(mktemp --suffix=.reg)
  printf 'Windows Registry Editor Version 5.00\r\n\r\n' >"$reg"
  for k in 'HKEY_LOCAL_MACHINE\Software\Microsoft\Windows NT\CurrentVersion\Fonts' \
    'HKEY_CURRENT_USER\Software\Wine\Fonts\External Fonts'; do
    printf '[%s]\r\n' "$k" >>"$reg"
    # "    NAME    REG_SZ    Z:\PATH": a Z: path whose folder is not one of ours goes.
    wine reg query "$k" 2>/dev/null | tr -d '\r' | awk -F '    REG_SZ    ' -v dirs="$dirs" '
      BEGIN { n = split(dirs, keep, "\n") }
      NF == 2 && toupper(substr($2, 1, 3)) == "Z:\\" {
        path = $2; sub(/\\[^\\]*$/, "", path)
        for (i = 1; i <= n; i++) if (path == keep[i]) next
        name = $1; sub(/^    /, "", name); gsub(/"/, "\\\"", name)
        printf "\"%s\"=-\r\n", name
      }' >"$reg.part"
    stale=$((stale + $(wc -l <"$reg.part")))
    cat "$reg.part" >>"$reg"
    printf '\r\n' >>"$reg"
  done
  rm -f "$reg.part"
  if [ "$stale" -gt 0 ]; then
    wine regedit /S "$(winepath -w "$reg")" >/dev/null 2>&1
    echo "wine-fonts: removed $stale registry entries of fonts from elsewhere" >&2
  fi
  rm -f "$reg"
}

# In a subshell, so that a caller that sources this keeps its own shell options.
if (set -euo pipefail; ph_wine_fonts_main "$@"); then
  if [ "${BASH_SOURCE[0]}" != "$0" ]; then
    export FONTCONFIG_FILE="$WINEPREFIX/pinhole-fonts/fonts.conf"
  else
    echo "wine-fonts: run Wine with FONTCONFIG_FILE=$WINEPREFIX/pinhole-fonts/fonts.conf" >&2
  fi
else
  [ "${BASH_SOURCE[0]}" != "$0" ] && return 1
  exit 1
fi

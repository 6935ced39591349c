#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
# build-deb.sh OUTDIR: builds the pinhole-agent .deb from this work tree and
# checks it with lintian.
#
# debian/ lives in installer/debian, so the tree is copied to a temporary
# directory (tracked files plus untracked ones that are not ignored, so it
# works before a commit), installer/debian becomes debian/ there, and
# dpkg-buildpackage -us -uc -b builds it. The .deb files end up in OUTDIR.
# Exits non-zero when the build fails or lintian reports an error (E:);
# warnings are printed and allowed.
#
# Environment: PH_DEB_KEEP=1 keeps the temporary tree (its path is printed).
set -euo pipefail

die ()
{
  echo "build-deb: $*" >&2
  exit 1
}

[[ $# -eq 1 ]] || die "usage: build-deb.sh OUTDIR"
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
top=$(cd "$here/../.." && pwd)
for tool in dpkg-buildpackage dpkg-parsechangelog dh lintian; do
  command -v "$tool" >/dev/null || die "$tool not found (bash tests/install-deps.sh installs it)"
done

mkdir -p "$1"
out=$(cd "$1" && pwd)
work=$(mktemp -d "${TMPDIR:-/tmp}/pinhole-deb.XXXXXX")
if [[ ${PH_DEB_KEEP:-0} == 1 ]]; then
  echo "build-deb: keeping $work" >&2
else
  trap 'rm -rf "$work"' EXIT
fi

version=$(dpkg-parsechangelog -l "$here/changelog" -S Version)
upstream=${version%-*}
meson_version=$(sed -n "s/^ *version: *'\([^']*\)'.*/\1/p" "$top/meson.build" | head -n 1)
[[ $upstream == "$meson_version" ]] ||
  die "debian/changelog says $upstream but meson.build says $meson_version: add a changelog entry"

src=$work/pinhole-$upstream
mkdir -p "$src"
if git -C "$top" rev-parse --is-inside-work-tree >/dev/null 2>&1; then
  # Tracked and untracked-but-not-ignored files; a tracked file deleted in
  # the work tree is skipped.
  (
    cd "$top"
    git ls-files -z --cached --others --exclude-standard |
      while IFS= read -r -d '' f; do
        [[ -e $f || -L $f ]] && printf '%s\0' "$f"
      done | sort -zu | tar --null --no-recursion -T - -cf -
  ) | tar -C "$src" -xf -
else
  # A tree without git (e.g. an unpacked archive): everything but build dirs.
  tar -C "$top" --exclude='./build*' --exclude='./.git' -cf - . | tar -C "$src" -xf -
fi
rm -rf "$src/debian"
cp -a "$src/installer/debian" "$src/debian"
rm -f "$src/debian/build-deb.sh"

echo "build-deb: building pinhole $version in $src" >&2
log=$work/build.log
if ! (cd "$src" && dpkg-buildpackage -us -uc -b) >"$log" 2>&1; then
  # Compiler lines are long: the errors, then the end, cut to a readable width.
  grep -E '(error|FAILED)' "$log" | head -n 20 | cut -c1-400 >&2 || true
  echo "..." >&2
  tail -n 20 "$log" | cut -c1-400 >&2
  cp "$log" "$out/build.log"
  die "dpkg-buildpackage failed; full log in $out/build.log"
fi

shopt -s nullglob
debs=("$work"/*.deb)
((${#debs[@]} > 0)) || die "dpkg-buildpackage made no .deb"
for deb in "${debs[@]}"; do
  rm -f "$out/$(basename "$deb")"
  mv "$deb" "$out/"
  echo "build-deb: $out/$(basename "$deb")"
done

# Lintian on the packages as built (the .changes adds nothing for -b).
lintian_out=$work/lintian.txt
status=0
lintian --fail-on error --display-info "${debs[@]/#$work/$out}" >"$lintian_out" 2>&1 || status=$?
# Running as root only earns a note about it.
grep -v '^running with root privileges is not recommended!$' "$lintian_out" || true
errors=$(grep -c '^E: ' "$lintian_out" || true)
warnings=$(grep -c '^W: ' "$lintian_out" || true)
echo "build-deb: lintian: $errors error(s), $warnings warning(s)"
if ((status != 0 || errors > 0)); then
  die "lintian reported errors"
fi

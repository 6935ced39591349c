#!/usr/bin/env bash
# build-deps.sh [--gtk] [--jobs N] [--fetch-only | --print-prefix]: cross-builds the Windows
# (x86_64-w64-mingw32) libraries Pinhole links against from Debian's own
# source packages into one cached prefix, and prints that prefix's path on
# standard output (everything else goes to standard error).
#
#   stage agent (always): libffi zlib pcre2 libintl glib gmp nettle libtasn1 gnutls
#                         nghttp2
#   stage gtk   (--gtk):  pixman libpng cairo fribidi harfbuzz pango gdk-pixbuf
#                         libepoxy libxml2 atk gtk3
#
# The prefix is ${XDG_CACHE_HOME:-$HOME/.cache}/pinhole/mingw64-KEY, KEY being
# a hash of this script (which pins every version) and the cross file. Each
# package leaves a stamp there when it is installed, so an interrupted run
# resumes with the package that failed, and a complete prefix is reused in
# seconds. installer/windows/README.md says where each source comes from.
#
# Environment: PH_DEBIAN_MIRROR, PH_DEBIAN_SECURITY_MIRROR (archive URLs),
# PH_MINGW_KEEP_WORK=1 keeps the build trees after a successful run.
set -eEuo pipefail
# set -e alone would end the run without a word.
trap 'log "error: exit $? at line $LINENO: $BASH_COMMAND"' ERR

log ()
{
  printf 'build-deps %(%H:%M:%S)T %s\n' -1 "$*" >&2
}

die ()
{
  log "error: $*"
  exit 1
}

# --- What is built: source package=version, how it is fetched, stage ------
#
# dsc:  `apt-get source` (the .dsc, orig tarball and Debian's patches, which
#       dpkg-source applies, security fixes included).
# orig: only the upstream tarball, because the archive answers 404 for the
#       .dsc or the Debian part (see the comment on each such line).
#
# Where the archive offers several bookworm versions the newest one that
# downloads is pinned; bookworm-security is used when it is the newest.
PACKAGES=(
  # name      source=version                              fetch stage
  "libffi     libffi=3.4.4-1                               dsc  agent"
  "zlib       zlib=1:1.2.13.dfsg-1                         dsc  agent"
  # bookworm-security's 10.42-1+deb12u2 answers 404 for its .dsc and
  # .diff.gz, so this is bookworm's unpatched 10.42-1.
  "pcre2      pcre2=10.42-1                                dsc  agent"
  # Only gettext-runtime (libintl) is built; Debian has no proxy-libintl.
  "libintl    gettext=0.21-12                              dsc  agent"
  # bookworm (12.x point release) carries +deb12u9, newer than -security's u6.
  "glib       glib2.0=2.74.6-2+deb12u9                     dsc  agent"
  "gmp        gmp=2:6.2.1+dfsg1-1.1                        dsc  agent"
  "nettle     nettle=3.8.1-2                               dsc  agent"
  "libtasn1   libtasn1-6=4.19.0-2+deb12u1                  dsc  agent"
  "gnutls     gnutls28=3.7.9-2+deb12u7                     dsc  agent"
  # HTTP/2 to the cloud proxy (agent/core/ph-h2.c): the library only.
  "nghttp2    nghttp2=1.52.0-1+deb12u3                     dsc  agent"
  # bookworm's .diff.gz answers 404 (the Debian diff only adds packaging).
  "pixman     pixman=0.42.2-1                              orig gtk"
  # bookworm-security's 1.6.39-2+deb12u6 answers 404 for .dsc and Debian
  # part; bookworm's +deb12u5 downloads whole and is used instead.
  "libpng     libpng1.6=1.6.39-2+deb12u5                   dsc  gtk"
  "cairo      cairo=1.16.0-7                               dsc  gtk"
  "fribidi    fribidi=1.0.8-2.1                            dsc  gtk"
  "harfbuzz   harfbuzz=6.0.0+dfsg-3                        dsc  gtk"
  "pango      pango1.0=1.50.12+ds-1                        dsc  gtk"
  "gdk-pixbuf gdk-pixbuf=2.42.10+dfsg-1+deb12u4            dsc  gtk"
  # bookworm's .debian.tar.xz answers 404 (trixie's 1.5.10-2 too).
  "libepoxy   libepoxy=1.5.10-1                            orig gtk"
  # Only to satisfy at-spi2-core's configure, which asks for libxml-2.0
  # even when it builds ATK alone; ATK does not link it.
  "libxml2    libxml2=2.9.14+dfsg-1.3~deb12u6              dsc  gtk"
  # ATK lives in at-spi2-core. bookworm's 2.46.0-5 answers 404 for its orig
  # tarball and trixie's .dsc answers 404, so trixie's orig tarball it is.
  "atk        at-spi2-core=2.56.2-1+deb13u2                orig gtk"
  "gtk3       gtk+3.0=3.24.38-2~deb12u3                    dsc  gtk"
)

# Debian packages the build runs on. flex, bison and gperf are not needed:
# no package here regenerates a parser (fontconfig, which would, is skipped).
TOOLS=(
  mingw-w64 meson ninja-build pkg-config gcc libc6-dev make
  autoconf automake libtool autopoint gettext m4 python3
  libglib2.0-dev-bin dpkg-dev debian-archive-keyring xz-utils bzip2
)

HOST=x86_64-w64-mingw32

# --- Options ---------------------------------------------------------------
want_gtk=0
print_prefix_only=0
fetch_only=0
jobs=$(nproc)
while (($# > 0)); do
  case $1 in
    --gtk) want_gtk=1 ;;
    --jobs) [[ $# -ge 2 ]] || die "--jobs needs a number"; jobs=$2; shift ;;
    --jobs=*) jobs=${1#--jobs=} ;;
    --print-prefix) print_prefix_only=1 ;;
    --fetch-only) fetch_only=1 ;;
    -h | --help) sed -n '2,/^set -eEuo/p' "${BASH_SOURCE[0]}" | sed '$d; s/^# \{0,1\}//' >&2; exit 0 ;;
    *) die "unknown argument $1 (try --help)" ;;
  esac
  shift
done

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
self=$here/$(basename "${BASH_SOURCE[0]}")
cross=$here/$HOST.ini
[[ -f $cross ]] || die "$cross is missing"

cache_root=${XDG_CACHE_HOME:-$HOME/.cache}/pinhole
key=$(cat "$self" "$cross" | sha256sum | cut -c1-16)
prefix=$cache_root/mingw64-$key
stamps=$prefix/.stamps
work=$cache_root/mingw64-$key.work
srcdir=$cache_root/sources
aptdir=$cache_root/apt

if ((print_prefix_only)); then
  echo "$prefix"
  exit 0
fi

selected=()
for entry in "${PACKAGES[@]}"; do
  read -r _ _ _ stage <<<"$entry"
  if [[ $stage == agent ]] || ((want_gtk)); then
    selected+=("$entry")
  fi
done
stages=agent
((want_gtk)) && stages="agent+gtk"

mkdir -p "$cache_root"
exec 9>"$prefix.lock"
if ! flock -n 9; then
  log "another build of $prefix is running; waiting for it"
  flock 9
fi

# Per package: NAME SECONDS SPEC and whether it was built in this run.
print_times ()
{
  local entry name spec secs total=0 how
  log "time per package (unpack, configure, build, install):"
  for entry in "${selected[@]}"; do
    read -r name spec _ _ <<<"$entry"
    [[ -f $stamps/$name ]] || continue
    read -r secs _ <"$stamps/$name"
    how=cached
    [[ -f $work/built-now/$name ]] && how="built now"
    total=$((total + secs))
    log "$(printf '  %-11s %-40s %3dm%02ds  %s' "$name" "$spec" $((secs / 60)) $((secs % 60)) "$how")"
  done
  log "$(printf '  %-11s %-40s %3dm%02ds' total '' $((total / 60)) $((total % 60)))"
}

all_stamped ()
{
  local entry name
  for entry in "${selected[@]}"; do
    read -r name _ <<<"$entry"
    [[ -f $stamps/$name ]] || return 1
  done
}

finish ()
{
  print_times
  log "prefix ($stages, $(du -sh "$prefix" | cut -f1)): $prefix"
  local other
  for other in "$cache_root"/mingw64-*; do
    [[ -d $other && $other != "$prefix" && $other != *.work ]] &&
      log "note: $other is an older prefix (another version of this script); remove it when unused"
  done
  echo "$prefix"
}

if ((!fetch_only)) && all_stamped; then
  log "reusing the complete cache for $stages (key $key)"
  finish
  exit 0
fi

# --- Build machine tools -----------------------------------------------------
as_root ()
{
  if ((EUID == 0)); then
    "$@"
  else
    sudo "$@"
  fi
}

missing=()
for p in "${TOOLS[@]}"; do
  [[ $(dpkg-query -W -f='${Status}' "$p" 2>/dev/null) == 'install ok installed' ]] || missing+=("$p")
done
if ((${#missing[@]} > 0)); then
  log "installing from Debian: ${missing[*]}"
  as_root apt-get update -q >&2
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${missing[@]}" >&2
fi

# Tool names come from the cross file, so meson and autotools use the same.
cross_tool ()
{
  python3 - "$cross" "$1" <<'EOF'
import configparser, sys
c = configparser.ConfigParser()
c.read(sys.argv[1])
print(c["binaries"][sys.argv[2]].strip("'\""))
EOF
}
CC=$(cross_tool c)
CXX=$(cross_tool cpp)
command -v "$CC" >/dev/null || die "$CC not found (Debian package mingw-w64)"

# --- Debian sources: a private apt configuration ---------------------------
# The machine's own sources and lists are left alone: apt reads a sources
# file and keeps its lists under $aptdir. trixie is listed for the few
# sources bookworm's archive no longer serves (see PACKAGES).
mirror=${PH_DEBIAN_MIRROR:-http://deb.debian.org/debian}
security=${PH_DEBIAN_SECURITY_MIRROR:-http://deb.debian.org/debian-security}
keyring=/usr/share/keyrings/debian-archive-keyring.gpg
mkdir -p "$aptdir/lists/partial" "$aptdir/cache/archives/partial" "$aptdir/sources.list.d" "$srcdir/.fetched"
cat >"$aptdir/sources.list" <<EOF
deb-src [signed-by=$keyring] $mirror bookworm main
deb-src [signed-by=$keyring] $mirror bookworm-updates main
deb-src [signed-by=$keyring] $security bookworm-security main
deb-src [signed-by=$keyring] $mirror trixie main
EOF
APT_OPTS=(
  -o "Dir::Etc::sourcelist=$aptdir/sources.list"
  -o "Dir::Etc::sourceparts=$aptdir/sources.list.d"
  -o "Dir::State::Lists=$aptdir/lists"
  -o "Dir::Cache=$aptdir/cache"
  -o "Acquire::Languages=none"
)
# As root apt would hand downloads to the _apt user, who cannot write here.
((EUID == 0)) && APT_OPTS+=(-o "APT::Sandbox::User=root")

apt_updated=0
apt_update_once ()
{
  ((apt_updated)) && return 0
  log "updating the private source lists in $aptdir"
  apt-get "${APT_OPTS[@]}" update -q >"$aptdir/update.log" 2>&1 ||
    { tail -n 20 "$aptdir/update.log" >&2; die "apt-get update failed (log: $aptdir/update.log)"; }
  apt_updated=1
}

# fetch SPEC HOW: downloads into $srcdir and sets $fetched to the file to
# unpack (the .dsc, or the main orig tarball). Not run in a subshell, so the
# lists are updated once per run at most.
fetched=
fetch ()
{
  local spec=$1 how=$2 marker="$srcdir/.fetched/$1.$2" f ok=1
  if [[ -f $marker ]]; then
    while read -r f; do [[ -f $srcdir/$f ]] || ok=0; done < <(sed 1d "$marker")
    if ((ok)); then
      fetched=$(head -n 1 "$marker")
      return 0
    fi
  fi
  apt_update_once
  local tmp uris main="" files=()
  tmp=$(mktemp -d)
  # --print-uris skips files already in the current directory: ask in an empty one.
  if ! uris=$(cd "$tmp" && apt-get "${APT_OPTS[@]}" source --print-uris -q "$spec" 2>"$tmp/err"); then
    cat "$tmp/err" >&2
    rm -rf "$tmp"
    die "$spec is not in the source lists (superseded in the archive? update its pin in $self)"
  fi
  rm -rf "$tmp"
  local uri file hash
  while read -r uri file _ hash; do
    uri=${uri//\'/}
    case $how:$file in
      dsc:*.dsc) main=$file; files+=("$file") ;;
      dsc:*) files+=("$file") ;;
      orig:*.orig.tar.* | orig:*.orig-*.tar.*)
        [[ $file == *.asc ]] && continue
        [[ $file == *.orig.tar.* ]] && main=$file
        files+=("$file")
        if [[ ! -f $srcdir/$file ]]; then
          log "  downloading $file"
          /usr/lib/apt/apt-helper "${APT_OPTS[@]}" download-file "$uri" "$srcdir/$file" "$hash" \
            >"$aptdir/source.log" 2>&1 || { cat "$aptdir/source.log" >&2; die "could not download $uri"; }
        fi
        ;;
    esac
  done < <(grep "^'" <<<"$uris")
  [[ -n $main ]] || die "no ${how} file for $spec in: $uris"
  if [[ $how == dsc ]]; then
    log "  apt-get source --download-only $spec"
    if ! (cd "$srcdir" && apt-get "${APT_OPTS[@]}" source --download-only -q "$spec") >"$aptdir/source.log" 2>&1; then
      grep -E '^(E|Err):' "$aptdir/source.log" >&2 || tail -n 5 "$aptdir/source.log" >&2
      die "apt-get source $spec failed; if a part answers 404, fetch it as 'orig' and say so in PACKAGES"
    fi
  fi
  printf '%s\n' "$main" "${files[@]}" >"$marker"
  fetched=$main
}

# unpack NAME HOW FILE: a fresh source tree at $work/NAME/src.
unpack ()
{
  local name=$1 how=$2 file=$3
  rm -rf "${work:?}/$name"
  mkdir -p "$work/$name"
  if [[ $how == dsc ]]; then
    dpkg-source --no-check -x "$srcdir/$file" "$work/$name/src" >/dev/null
  else
    mkdir "$work/$name/src"
    tar -xf "$srcdir/$file" -C "$work/$name/src" --strip-components=1
  fi
}

if ((fetch_only)); then
  for entry in "${selected[@]}"; do
    read -r name spec how _ <<<"$entry"
    fetch "$spec" "$how"
    log "$name: $spec ($how: $fetched)"
  done
  log "sources are in $srcdir"
  exit 0
fi

# --- Build helpers (each runs in the package's source tree, in a subshell) --
mkdir -p "$work/built-now"
prefix_ini=$work/prefix.ini
cat >"$prefix_ini" <<EOF
# Written by build-deps.sh: the prefix half of the cross configuration.
[constants]
prefix = '$prefix'

[properties]
pkg_config_libdir = [prefix + '/lib/pkgconfig', prefix + '/share/pkgconfig']

[built-in options]
c_args = ['-I' + prefix + '/include']
cpp_args = ['-I' + prefix + '/include']
c_link_args = ['-L' + prefix + '/lib']
cpp_link_args = ['-L' + prefix + '/lib']
EOF

export PKG_CONFIG_LIBDIR=$prefix/lib/pkgconfig:$prefix/share/pkgconfig
unset PKG_CONFIG_PATH PKG_CONFIG_SYSROOT_DIR

meson_build ()
{
  meson setup _build . \
    --cross-file "$cross" --cross-file "$prefix_ini" \
    --prefix "$prefix" --libdir lib \
    -Doptimization=2 -Ddebug=false -Ddefault_library=shared \
    --wrap-mode nofallback "$@"
  ninja -C _build -j "$jobs"
  meson install -C _build --no-rebuild
}

# Meson takes CC and CFLAGS from the environment for the build machine, so
# these are set only for autotools, inside its subshell.
autotools_env ()
{
  AR=$(cross_tool ar) RANLIB=$(cross_tool ranlib) STRIP=$(cross_tool strip)
  NM=$(cross_tool nm) DLLTOOL=$(cross_tool dlltool) OBJDUMP=$(cross_tool objdump)
  WINDRES=$(cross_tool windres) RC=$WINDRES PKG_CONFIG=pkg-config
  export CC CXX AR RANLIB STRIP NM DLLTOOL OBJDUMP WINDRES RC PKG_CONFIG
  export CPPFLAGS="-I$prefix/include" CFLAGS="-O2 ${extra_cflags:-}" CXXFLAGS="-O2" LDFLAGS="-L$prefix/lib"
}

autotools_configure ()
{
  autotools_env
  [[ -z ${no_cxx:-} ]] || unset CXX CXXFLAGS
  ./configure --host="$HOST" --build="$(gcc -dumpmachine)" --prefix="$prefix" \
    --enable-shared --disable-static "$@"
}

configure_make ()
{
  autotools_configure "$@"
  make -j "$jobs"
  make install
}

build_libffi ()
{
  configure_make --disable-docs --disable-multi-os-directory
}

# Debian's zlib source has no win32/ directory (and configure refuses
# mingw), so this does what upstream's win32/Makefile.gcc does: zlib1.dll,
# its import library libz.dll.a, headers and zlib.pc.
build_zlib ()
{
  local f objs=()
  for f in adler32 compress crc32 deflate gzclose gzlib gzread gzwrite infback \
    inffast inflate inftrees trees uncompr zutil; do
    "$CC" -O2 -Wall -c "$f.c" -o "$f.o"
    objs+=("$f.o")
  done
  "$CC" -shared -o zlib1.dll "${objs[@]}" -Wl,--out-implib,libz.dll.a
  local version
  version=$(sed -n 's/^#define ZLIB_VERSION "\(.*\)"/\1/p' zlib.h)
  install -D -m 755 zlib1.dll "$prefix/bin/zlib1.dll"
  install -D -m 644 libz.dll.a "$prefix/lib/libz.dll.a"
  install -D -m 644 -t "$prefix/include" zlib.h zconf.h
  mkdir -p "$prefix/lib/pkgconfig"
  sed -e "s|@prefix@|$prefix|; s|@exec_prefix@|\${prefix}|; s|@libdir@|\${exec_prefix}/lib|" \
    -e "s|@sharedlibdir@|\${libdir}|; s|@includedir@|\${prefix}/include|; s|@VERSION@|$version|" \
    zlib.pc.in >"$prefix/lib/pkgconfig/zlib.pc"
}

build_pcre2 ()
{
  configure_make --enable-pcre2-8 --disable-pcre2-16 --disable-pcre2-32 --enable-jit \
    --disable-pcre2grep-libz --disable-pcre2grep-libbz2 --disable-pcre2test-libreadline
}

build_libintl ()
{
  cd gettext-runtime
  configure_make --disable-java --disable-csharp --disable-libasprintf --disable-openmp \
    --disable-c++ --enable-threads=windows --without-emacs
}

build_glib ()
{
  meson_build -Dtests=false -Dinstalled_tests=false -Dman=false -Dgtk_doc=false \
    -Dnls=enabled -Dselinux=disabled -Dxattr=false -Dlibmount=disabled \
    -Dsysprof=disabled -Dlibelf=disabled -Ddtrace=false -Dsystemtap=false
}

# Debian's orig tarball drops doc/ (GFDL) and its patch drops doc/Makefile
# from configure.ac, so configure has to be regenerated, as Debian does.
# With CXX set (and C++ off), GMP's configure leaves libtool thinking the
# compiler is not GCC, and libtool then makes an MSVC-style DLL that Windows
# refuses to load (libgmp.lib, no libgmp.dll.a).
build_gmp ()
{
  autoreconf -fi
  no_cxx=1 configure_make
}

build_nettle ()
{
  configure_make --disable-documentation --disable-openssl
}

build_libtasn1 ()
{
  configure_make --disable-doc --disable-valgrind-tests
}

build_gnutls ()
{
  configure_make --without-p11-kit --with-included-unistring --without-idn \
    --without-tpm --without-tpm2 --without-brotli --without-zstd \
    --disable-tools --disable-doc --disable-manpages --disable-tests \
    --disable-full-test-suite --disable-cxx --disable-guile --disable-nls \
    --disable-libdane --disable-valgrind-tests --enable-threads=windows
}

# The C library alone: lib/ holds libnghttp2-14.dll, its headers and
# libnghttp2.pc (the top level would add nghttpx's man pages and scripts).
# Debian's orig tarball is a git snapshot without configure: regenerate it,
# as Debian does.
build_nghttp2 ()
{
  autoreconf -fi
  autotools_configure --enable-lib-only --disable-python-bindings --disable-examples \
    --disable-hpack-tools --disable-failmalloc --without-libxml2 --without-jemalloc \
    --without-systemd --without-cunit
  make -C lib -j "$jobs"
  make -C lib install
}

build_pixman ()
{
  meson_build -Dgtk=disabled -Dlibpng=disabled -Dtests=disabled -Dopenmp=disabled
}

build_libpng ()
{
  configure_make
}

# Debian's patches change configure.ac and Makefile.am (generated with
# automake 1.15, which bookworm lacks): regenerate, as Debian does.
# Debian's 03_export-symbols.patch adds -export-symbols-regex, which libtool
# refuses next to the -export-symbols cairo.def that cairo uses on Windows,
# so that one Debian patch is taken back out. cairo ships its own gtk-doc
# macros and make fragment, so gtkdocize (gtk-doc-tools) is skipped.
build_cairo ()
{
  patch -R -p1 --no-backup-if-mismatch <debian/patches/03_export-symbols.patch
  GTKDOCIZE=true autoreconf -fi
  # cairo's configure adds -Wp,-D_FORTIFY_SOURCE=2, whose checked functions
  # mingw-w64 takes from GCC's libssp, which libtool does not find: it then
  # quietly builds a static libcairo only. CFLAGS come last on the compile
  # line, so the define is taken back there.
  extra_cflags=-Wp,-U_FORTIFY_SOURCE autotools_configure --enable-win32 --enable-win32-font --enable-png --enable-gobject \
    --disable-xlib --disable-xlib-xrender --disable-xcb --disable-quartz \
    --disable-ft --disable-fc --disable-trace --disable-interpreter \
    --disable-symbol-lookup --disable-full-testing --disable-gtk-doc --disable-valgrind
  # The library and cairo-gobject only: `make all` goes on to the test suite
  # and perf tools, which want FreeType.
  local d
  for d in src util/cairo-gobject; do
    make -C "$d" -j "$jobs"
    make -C "$d" install
  done
}

build_fribidi ()
{
  meson_build -Ddocs=false -Ddeprecated=false
}

build_harfbuzz ()
{
  meson_build -Dglib=enabled -Dgobject=disabled -Dcairo=disabled -Dfreetype=disabled \
    -Dicu=disabled -Dgraphite2=disabled -Dchafa=disabled -Dgdi=disabled \
    -Ddirectwrite=disabled -Dtests=disabled -Dintrospection=disabled -Ddocs=disabled \
    -Dbenchmark=disabled
}

build_pango ()
{
  meson_build -Dintrospection=disabled -Dgtk_doc=false -Dinstall-tests=false \
    -Dfontconfig=disabled -Dfreetype=disabled -Dlibthai=disabled -Dxft=disabled \
    -Dcairo=enabled -Dsysprof=disabled
}

# All loaders built in: no loaders.cache to generate on the Windows side.
build_gdk_pixbuf ()
{
  meson_build -Dpng=enabled -Djpeg=disabled -Dtiff=disabled -Dbuiltin_loaders=all \
    -Dgtk_doc=false -Ddocs=false -Dman=false -Dintrospection=disabled -Dtests=false \
    -Dinstalled_tests=false -Dgio_sniffing=false
}

build_libepoxy ()
{
  meson_build -Ddocs=false -Dtests=false -Dglx=no -Degl=no -Dx11=false
}

# Debian's patches change Makefile.am (new tests, doc install): regenerate.
build_libxml2 ()
{
  autoreconf -fi
  configure_make --without-python --without-lzma --without-iconv --without-icu \
    --without-http --without-ftp --without-debug
}

build_atk ()
{
  meson_build -Datk_only=true -Dintrospection=disabled -Ddocs=false -Dx11=disabled \
    -Duse_systemd=false -Dgtk2_atk_adaptor=false
}

build_gtk3 ()
{
  meson_build -Dwin32_backend=true -Dx11_backend=false -Dwayland_backend=false \
    -Dbroadway_backend=false -Dquartz_backend=false -Dxinerama=no -Dcloudproviders=false \
    -Dprofiler=false -Dtracker3=false -Dcolord=no -Dgtk_doc=false -Dman=false \
    -Dintrospection=false -Ddemos=false -Dexamples=false -Dtests=false \
    -Dinstalled_tests=false -Dbuiltin_immodules=yes
}

# GCC's own DLLs that anything in the prefix imports (libstdc++ for
# harfbuzz, for instance) are copied next to it, so bin/ runs as it is.
copy_gcc_runtime ()
{
  local dll path imports files
  shopt -s nullglob
  files=("$prefix"/bin/*.dll "$prefix"/bin/*.exe)
  shopt -u nullglob
  ((${#files[@]} > 0)) || return 0
  # Not `objdump | grep -q`: grep's early exit fails the pipe under pipefail.
  imports=$("$(cross_tool objdump)" -p "${files[@]}" | sed -n 's/^.*DLL Name: //p' | sort -u)
  for dll in libgcc_s_seh-1.dll libstdc++-6.dll libssp-0.dll libwinpthread-1.dll; do
    [[ -f $prefix/bin/$dll ]] && continue
    if grep -qxF "$dll" <<<"$imports"; then
      path=$("$CC" -print-file-name="$dll")
      [[ -f $path ]] || die "$dll is needed but $CC does not know where it is"
      cp "$path" "$prefix/bin/"
    fi
  done
}

# --- The build ---------------------------------------------------------------
log "prefix $prefix (key $key), stages $stages, $jobs jobs"
mkdir -p "$stamps" "$work/logs"
count=${#selected[@]}
i=0
for entry in "${selected[@]}"; do
  i=$((i + 1))
  read -r name spec how stage <<<"$entry"
  if [[ -f $stamps/$name ]]; then
    log "[$i/$count] $name: already installed ($spec)"
    continue
  fi
  fetch "$spec" "$how"
  file=$fetched
  log "[$i/$count] $name: building $spec ($how: $file)"
  start=$SECONDS
  buildlog=$work/logs/$name.log
  # Not an `if` condition: there bash would ignore set -e inside the build.
  set +e
  (
    set -e
    unpack "$name" "$how" "$file"
    cd "$work/$name/src"
    "build_${name//-/_}"
  ) >"$buildlog" 2>&1
  rc=$?
  set -e
  if ((rc != 0)); then
    grep -E '(error|Error|ERROR|FAILED)' "$buildlog" | head -n 15 | cut -c1-300 >&2 || true
    log "..."
    tail -n 25 "$buildlog" | cut -c1-300 >&2
    die "$name failed after $((SECONDS - start))s; full log: $buildlog (a new run resumes here)"
  fi
  rm -f "$prefix"/lib/*.la
  # libtool falls back to a static library, with only a warning, when it
  # cannot link a DLL: stop here rather than at the next package's link.
  for a in "$prefix"/lib/*.a; do
    [[ ! -e $a || $a == *.dll.a ]] || die "$name installed the static $a instead of a DLL; see $buildlog"
  done
  copy_gcc_runtime
  secs=$((SECONDS - start))
  echo "$secs $spec" >"$stamps/$name"
  touch "$work/built-now/$name"
  rm -rf "${work:?}/$name"
  log "[$i/$count] $name: done in $((secs / 60))m$((secs % 60))s"
done

finish
if [[ ${PH_MINGW_KEEP_WORK:-0} != 1 ]]; then
  rm -rf "$work"
fi

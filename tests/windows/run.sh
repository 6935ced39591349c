#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
# run.sh LINUXBUILD: the Windows part of the test run, called by tests/run-all.sh after the
# Linux tests (LINUXBUILD is their build directory: the integration tests and the origin server
# are Linux programs that drive the Windows ones).
#
#   1. the Windows tools (tests/install-deps.sh --windows) and the mingw-w64 libraries
#      (installer/windows/build-deps.sh --gtk: about 25 min on an empty cache, seconds after)
#   2. the cross-build into build-win (PH_WIN_BUILDDIR)
#   3. its unit tests under Wine (meson test, exe_wrapper wine)
#   4. test-tunnel.c against pinhole-agent.exe under Wine and real stunnel + Squid
#   5. tunnel-h2: test-tunnel.c --h2, its CONNECT cases against nghttpx --http2-proxy in front of
#      Squid (as meson test tunnel-h2 on Linux): the agent's tunnels as streams of one HTTP/2
#      connection (libnghttp2-14.dll), six of them on one TCP connection counted with ss
#   6. test-agent.sh: the console agent on its named pipe, the SCM service's lifecycle;
#      test-policy.sh: Group Policy in HKLM\Software\Policies\Pinhole, locked and applied live;
#      test-machine-proxy.sh: [system-proxy] machine=winhttp, WinHTTP's default proxy set while
#      the tunnel is on and put back exactly (off, kill -9, --restore-machine-proxy)
#   7. test-installer.sh: the NSIS installer built from that build, installed, used, upgraded
#      and removed under Wine
#   8. test-tray-wine.sh (unless PH_WIN_GTK=0): the tray in Xvfb, its settings window in English and
#      Chinese (screenshots in build-win/tests/windows/artifacts/), the system proxy set and put
#      back, the end of the session, one tray per session, --restore-proxy
#
# Prints one "windows: N passed, M failed" line, which run-all.sh adds to its count.
set -uo pipefail
cd "$(dirname "$0")/../.."
linuxbuild=$(cd "${1:?usage: run.sh LINUXBUILD}" && pwd)
winbuild=${PH_WIN_BUILDDIR:-build-win}
started=$(date +%s)

bash tests/install-deps.sh --windows || exit 1
# The tray too (the GTK stage: 11 more minutes on an empty cache); PH_WIN_GTK=0 leaves it out.
export PH_WIN_GTK=${PH_WIN_GTK:-1}
bash tests/windows/cross-build.sh "$winbuild" || { echo "windows: 0 passed, 1 failed (cross-build)"; exit 1; }
# shellcheck source=tests/windows/env.sh
source tests/windows/env.sh 2>/dev/null
ph_win_wine_init
winbuild=$(cd "$winbuild" && pwd)

passed=0
failed=0
step () # NAME COMMAND...: one step, its output kept in $winbuild/NAME.log
{
  local name=$1 t0=$SECONDS
  shift
  if "$@" >"$winbuild/$name.log" 2>&1; then
    passed=$((passed + 1))
    echo "windows: $name ok ($((SECONDS - t0))s)"
  else
    failed=$((failed + 1))
    echo "windows: $name FAILED ($((SECONDS - t0))s); its log:"
    tail -n 60 "$winbuild/$name.log" | sed 's/^/    /'
  fi
}

step unit meson test -C "$winbuild" --print-errorlogs --num-processes 1

tunnel () # [--h2]
{
  PH_AGENT_OS=windows PH_AGENT="$PWD/tests/windows/wine-agent.sh" \
    PH_WIN_AGENT="$winbuild/agent/pinhole-agent.exe" PH_SRCDIR="$PWD" \
    G_TEST_SRCDIR="$PWD/tests" G_TEST_BUILDDIR="$linuxbuild/tests" \
    "$linuxbuild/tests/cloud/test-tunnel" --tap "$@"
}
step tunnel tunnel
# The same binary's h2 flavour (PH_CLOUD_FRONT=nghttpx): Wine's sockets are the Linux sockets of
# the wine process, so ss counts the agent's connections to nghttpx as it does on Linux.
step tunnel-h2 tunnel --h2
step agent bash tests/windows/test-agent.sh "$winbuild" "$linuxbuild"
step policy bash tests/windows/test-policy.sh "$winbuild"
step machine-proxy bash tests/windows/test-machine-proxy.sh "$winbuild"
step installer env PH_WIN_BUILDDIR="$winbuild" PH_TEST_ORIGIN="$linuxbuild/tests/cloud/ph-test-origin" \
  bash tests/windows/test-installer.sh
if [ "$PH_WIN_GTK" = 1 ]; then
  step tray bash tests/windows/test-tray-wine.sh "$winbuild"
fi

wineserver -k 2>/dev/null
echo "windows: $passed passed, $failed failed in $(( $(date +%s) - started ))s"
[ "$failed" -eq 0 ]

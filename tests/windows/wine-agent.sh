#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
# wine-agent.sh: runs the Windows pinhole-agent.exe (PH_WIN_AGENT) under Wine in place of the
# Linux agent, so that the Linux integration tests (tests/cloud/test-tunnel.c) drive it:
#   PH_AGENT=tests/windows/wine-agent.sh PH_WIN_AGENT=build-win/agent/pinhole-agent.exe ...
# The Linux paths the tests pass resolve through Wine's Z: drive. Wine turns SIGINT into the
# console's CTRL_C_EVENT, which the agent handles as a stop (drain, exit 0): the tests' SIGTERM
# is passed on as that. Once in a clean-clone CI run Wine lost it (the agent logged no
# "stopping" and ran on until killed 15 s later), so it is said again after 11 s: by then an
# agent that heard the first has drained (10 s at most) and exited, and one that did not
# stops on the second.
wine "${PH_WIN_AGENT:?PH_WIN_AGENT names pinhole-agent.exe}" "$@" &
child=$!
trap 'kill -INT $child 2>/dev/null; (sleep 11; kill -INT $child 2>/dev/null) &' TERM INT
while :; do
  wait $child
  status=$?
  # wait returns early (above 128) when a trapped signal arrives; the child still runs.
  kill -0 $child 2>/dev/null || exit $status
done

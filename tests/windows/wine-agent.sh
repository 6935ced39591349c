#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
# wine-agent.sh: runs the Windows pinhole-agent.exe (PH_WIN_AGENT) under Wine in place of the
# Linux agent, so that the Linux integration tests (tests/cloud/test-tunnel.c) drive it:
#   PH_AGENT=tests/windows/wine-agent.sh PH_WIN_AGENT=build-win/agent/pinhole-agent.exe ...
# The Linux paths the tests pass resolve through Wine's Z: drive. Wine turns SIGINT into the
# console's CTRL_C_EVENT, which the agent handles as a stop (drain, exit 0): the tests' SIGTERM
# is passed on as that.
wine "${PH_WIN_AGENT:?PH_WIN_AGENT names pinhole-agent.exe}" "$@" &
child=$!
trap 'kill -INT $child 2>/dev/null' TERM INT
while :; do
  wait $child
  status=$?
  # wait returns early (above 128) when a trapped signal arrives; the child still runs.
  kill -0 $child 2>/dev/null || exit $status
done

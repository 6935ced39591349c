#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0-or-later
# pty-answer.py PROMPT SECRET-FILE COMMAND...: runs COMMAND on a new pseudo-terminal of its own,
# as a person at a terminal would (a textual polkit agent reads the answer there), types the
# first line of SECRET-FILE when PROMPT (a regular expression) appears, prints everything the
# terminal showed, and exits with COMMAND's status (99 when PROMPT never came).
import os, pty, re, select, signal, sys, termios, time

prompt, secret_file, argv = re.compile(sys.argv[1].encode()), sys.argv[2], sys.argv[3:]
pid, fd = pty.fork()
if pid == 0:
    os.execvp(argv[0], argv)
seen, answered, deadline = b"", False, time.monotonic() + 30
while time.monotonic() < deadline:
    ready, _, _ = select.select([fd], [], [], 0.2)
    if not ready:
        continue
    try:
        chunk = os.read(fd, 4096)
    except OSError:
        break
    if not chunk:
        break
    seen += chunk
    if not answered and prompt.search(seen):
        # A reader switches echo off with TCSAFLUSH, which drops what was typed before: the
        # answer goes once echo is off, as a person types after the prompt.
        wait_echo = time.monotonic() + 5
        while termios.tcgetattr(fd)[3] & termios.ECHO and time.monotonic() < wait_echo:
            time.sleep(0.02)
        with open(secret_file, "rb") as f:
            os.write(fd, f.readline().rstrip(b"\n") + b"\n")
        answered = True
sys.stdout.write(seen.decode(errors="replace"))
# Past the deadline the command is stopped, so that a hang fails instead of blocking.
done, status = os.waitpid(pid, os.WNOHANG)
if done == 0:
    if time.monotonic() >= deadline:
        os.kill(pid, signal.SIGKILL)
    _, status = os.waitpid(pid, 0)
sys.exit(os.waitstatus_to_exitcode(status) if answered else 99)

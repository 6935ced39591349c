# SPDX-License-Identifier: GPL-2.0-or-later
# ph_tap.py: what the Python integration tests here (test-pac.py, test-clients.py) share: TAP
# lines, the CI rule (under CI=true a missing tool is a failure, not a skip), a free port and
# the wait for a program's listener.
import os
import socket
import sys
import time

CI = os.environ.get("CI") == "true"

n_tests = 0
n_failed = 0


def ok(cond, what, *detail):
    """One TAP line; @detail goes under a failed one as comments."""
    global n_tests, n_failed
    n_tests += 1
    if cond:
        print(f"ok {n_tests} - {what}", flush=True)
    else:
        n_failed += 1
        print(f"not ok {n_tests} - {what}", flush=True)
        for d in detail:
            for line in str(d).splitlines():
                print(f"#   {line}", flush=True)
    return cond


def skip(what, why):
    """A check that cannot run here: a failure under CI=true, else a TAP skip."""
    global n_tests
    if CI:
        ok(False, f"{what} ({why}; CI=true: a missing tool is a failure)")
        return
    n_tests += 1
    print(f"ok {n_tests} - {what} # SKIP {why}", flush=True)


def bail(why):
    print(f"Bail out! {why}", flush=True)
    sys.exit(1)


def skip_all(why):
    if CI:
        bail(f"{why} (CI=true: a missing tool is a failure)")
    print(f"1..0 # SKIP {why}", flush=True)
    sys.exit(0)


def failed():
    return n_failed


def finish():
    """The plan line; the exit status."""
    print(f"1..{n_tests}", flush=True)
    return 1 if n_failed else 0


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_listening(proc, port):
    """Whether @proc (a subprocess.Popen) listens on 127.0.0.1:@port within 20 s."""
    for _ in range(200):
        if proc.poll() is not None:
            return False
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return True
        except OSError:
            time.sleep(0.1)
    return False

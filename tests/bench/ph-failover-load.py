#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0-or-later
# ph-failover-load.py: the load of bench-failover.sh. CLIENTS threads, each making sequential
# requests through PROXY, alternately a NEW tunnel (CONNECT to the origin's plain port, its 200,
# `GET /hello`, the answer, close) and a plain `GET http://origin/bytes/N` with an N of its own
# (so that the cloud Squids' access logs name each request); no retry, a deadline per request.
# After WARM seconds it SIGKILLs KILL_PID (the active cloud end's stunnel), keeps the load for
# AFTER seconds, stops, then reads the cloud Squids' access logs and prints one key=value line:
# the failover time, the failures by kind, and the requests a cloud Squid saw twice.
# Every request is written to --csv (kind, client, start and end in ms from the kill, outcome, N).

import argparse
import collections
import itertools
import os
import re
import signal
import socket
import sys
import threading
import time


class Failure(Exception):
    pass


def read_head(sock, buf, deadline):
    """Reads up to the end of a response head; returns (status, head, rest)."""
    while b"\r\n\r\n" not in buf:
        chunk = recv(sock, deadline)
        if not chunk:
            raise Failure("eof-before-answer" if not buf else "eof-in-head")
        buf += chunk
    head, rest = buf.split(b"\r\n\r\n", 1)
    try:
        status = int(head.split(b" ", 2)[1])
    except (IndexError, ValueError):
        raise Failure("bad-head")
    return status, head, rest


def recv(sock, deadline):
    left = deadline - time.monotonic()
    if left <= 0:
        raise Failure("timeout")
    sock.settimeout(left)
    try:
        return sock.recv(65536)
    except socket.timeout:
        raise Failure("timeout")
    except ConnectionResetError:
        raise Failure("reset")


def read_body(sock, head, rest, deadline):
    m = re.search(rb"(?im)^content-length:\s*(\d+)", head)
    if not m:
        raise Failure("no-length")
    want = int(m.group(1))
    body = rest
    while len(body) < want:
        chunk = recv(sock, deadline)
        if not chunk:
            raise Failure("short-body")
        body += chunk
    return want, body[:want]


def connect(proxy, deadline):
    try:
        return socket.create_connection(proxy, timeout=max(0.01, deadline - time.monotonic()))
    except ConnectionRefusedError:
        raise Failure("refused")
    except socket.timeout:
        raise Failure("timeout")


def tunnel(proxy, origin, deadline, answered):
    sock = connect(proxy, deadline)
    try:
        sock.sendall(b"CONNECT %s HTTP/1.1\r\nHost: %s\r\n\r\n" % (origin, origin))
        status, head, rest = read_head(sock, b"", deadline)
        if status != 200:
            raise Failure("connect-%d" % status)
        answered.append(time.monotonic())
        try:
            sock.sendall(b"GET /hello HTTP/1.1\r\nHost: %s\r\nConnection: close\r\n\r\n" % origin)
            status, head, rest = read_head(sock, rest, deadline)
            _, body = read_body(sock, head, rest, deadline)
        except Failure as e:
            # the tunnel was up (CONNECT answered 200) and then broke
            raise Failure("tunnel-broken-" + str(e))
        except OSError as e:
            raise Failure("tunnel-broken-" + type(e).__name__)
        if status != 200 or body != b"hello\n":
            raise Failure("inner-%d" % status)
    finally:
        sock.close()


def plain(proxy, origin, n, deadline):
    sock = connect(proxy, deadline)
    try:
        sock.sendall(b"GET http://%s/bytes/%d HTTP/1.1\r\nHost: %s\r\nConnection: close\r\n\r\n"
                     % (origin, n, origin))
        status, head, rest = read_head(sock, b"", deadline)
        if status != 200:
            raise Failure("status-%d" % status)
        got, _ = read_body(sock, head, rest, deadline)
        if got != n:
            raise Failure("wrong-length")
    finally:
        sock.close()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--proxy", required=True)
    ap.add_argument("--origin", required=True, help="host:port of the origin's plain HTTP")
    ap.add_argument("--clients", type=int, default=32)
    ap.add_argument("--warm", type=float, default=3.0)
    ap.add_argument("--after", type=float, default=5.0)
    ap.add_argument("--interval-ms", type=float, default=0.0, help="pause between requests")
    ap.add_argument("--timeout", type=float, default=10.0)
    ap.add_argument("--kill-pid", type=int, required=True)
    ap.add_argument("--n-base", type=int, default=1000, help="first N of /bytes/N")
    ap.add_argument("--access-log", action="append", default=[],
                    help="NAME=PATH:SKIP, a cloud Squid's access log and its lines to skip")
    ap.add_argument("--csv", required=True)
    a = ap.parse_args()

    host, port = a.proxy.rsplit(":", 1)
    proxy = (host, int(port))
    origin = a.origin.encode()
    counter = itertools.count(a.n_base)
    counter_lock = threading.Lock()
    stop = threading.Event()
    records = []  # (kind, client, start, end, outcome, n, CONNECT answered or None)
    rec_lock = threading.Lock()

    def client(cid):
        i = cid % 2  # half the clients start with a tunnel, half with a plain GET
        while not stop.is_set():
            kind = "tunnel" if i % 2 == 0 else "plain"
            i += 1
            n = 0
            answered = []  # when a CONNECT was answered 200
            start = time.monotonic()
            deadline = start + a.timeout
            outcome = "ok"
            try:
                if kind == "tunnel":
                    tunnel(proxy, origin, deadline, answered)
                else:
                    with counter_lock:
                        n = next(counter)
                    plain(proxy, origin, n, deadline)
            except Failure as e:
                outcome = str(e)
            except OSError as e:
                outcome = type(e).__name__
            end = time.monotonic()
            with rec_lock:
                records.append((kind, cid, start, end, outcome, n,
                                answered[0] if answered else None))
            if a.interval_ms > 0:
                time.sleep(a.interval_ms / 1000.0)

    threads = [threading.Thread(target=client, args=(c,), daemon=True) for c in range(a.clients)]
    t0 = time.monotonic()
    for t in threads:
        t.start()
    time.sleep(a.warm)
    t_kill = time.monotonic()
    os.kill(a.kill_pid, signal.SIGKILL)
    time.sleep(a.after)
    stop.set()
    for t in threads:
        t.join(a.timeout + 5)
    time.sleep(1.0)  # Squid logs a transaction as it ends

    def ms(t):
        return round((t - t_kill) * 1000.0, 1)

    records.sort(key=lambda r: r[2])
    with open(a.csv, "w") as f:
        f.write("kind,client,start_ms,end_ms,outcome,n,connect_answered_ms\n")
        for kind, cid, start, end, outcome, n, answered in records:
            f.write("%s,%d,%.1f,%.1f,%s,%d,%s\n" % (kind, cid, ms(start), ms(end), outcome, n,
                                                    "-" if answered is None else ms(answered)))

    failed = [r for r in records if r[4] != "ok"]
    # the failover window: failures that ended after the kill
    during = [r for r in failed if r[3] >= t_kill]
    before = [r for r in failed if r[3] < t_kill]
    after_ok = [r for r in records if r[2] > t_kill and r[4] == "ok"]
    first_ok_started = min(after_ok, key=lambda r: r[2], default=None)
    first_tunnel = min((r for r in after_ok if r[0] == "tunnel"), key=lambda r: r[2],
                       default=None)
    last_fail_end = max((r[3] for r in during), default=None)
    in_flight = [r for r in records if r[2] <= t_kill < r[3]]
    kinds = collections.Counter("%s:%s" % (r[0], r[4]) for r in during)

    # answered twice: a plain GET's unique path in both cloud Squids' logs, or twice in one
    sent = {r[5] for r in records if r[0] == "plain"}
    seen = collections.Counter()
    answered_n = set()  # plain GETs a cloud Squid answered 200
    per_log = {}
    for spec in a.access_log:
        name, rest = spec.split("=", 1)
        path, skip = rest.rsplit(":", 1)
        count = 0
        try:
            with open(path, errors="replace") as f:
                for lineno, line in enumerate(f):
                    if lineno < int(skip):
                        continue
                    m = re.search(r"/bytes/(\d+)\b", line)
                    if m and int(m.group(1)) in sent:
                        seen[int(m.group(1))] += 1
                        count += 1
                        if re.search(r" [A-Z_]+/200 ", line):
                            answered_n.add(int(m.group(1)))
        except OSError:
            pass
        per_log[name] = count
    twice = sorted(n for n, c in seen.items() if c > 1)
    # cut: the cloud end had answered (a tunnel's 200 reached the client; a plain GET is in a
    # cloud Squid's log with 200) and died while the answer was under way: no client side can
    # move those. The other failures are the ones a second proxy should have saved.
    cut = [r for r in during
           if r[4].startswith("tunnel-broken-") or (r[0] == "plain" and r[5] in answered_n)]
    unseen_ok = sum(1 for r in records if r[0] == "plain" and r[4] == "ok" and r[5] not in seen)

    def fmt(v):
        return "-" if v is None else "%.1f" % v

    out = {
        "requests": len(records),
        "ok": len(records) - len(failed),
        "tunnels": sum(1 for r in records if r[0] == "tunnel"),
        "plain": len(sent),
        "in_flight_at_kill": len(in_flight),
        # kill -> the end of the first request started after the kill that succeeded
        "failover_ms": fmt(ms(first_ok_started[3]) if first_ok_started else None),
        "first_tunnel_ms": fmt(ms(first_tunnel[3]) if first_tunnel else None),
        "back_to_100_ms": fmt(ms(last_fail_end) if last_fail_end is not None else 0.0),
        "failed": len(during),
        "failed_cut": len(cut),
        "failed_other": len(during) - len(cut),
        "failed_before_kill": len(before),
        "failed_kinds": ",".join("%s=%d" % kv for kv in sorted(kinds.items())) or "-",
        "twice": len(twice),
        "twice_n": ",".join(str(n) for n in twice[:20]) or "-",
        "plain_ok_not_logged": unseen_ok,
        "seen": ",".join("%s=%d" % kv for kv in per_log.items()) or "-",
        "duration_s": "%.1f" % (time.monotonic() - t0),
    }
    print(" ".join("%s=%s" % kv for kv in out.items()))
    return 0


if __name__ == "__main__":
    sys.exit(main())

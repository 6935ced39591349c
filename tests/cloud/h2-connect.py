#!/usr/bin/python3
# SPDX-License-Identifier: GPL-2.0-or-later
"""h2-connect.py: a small HTTP/2 client for an HTTP/2 forward proxy (the h2 cloud end of
pinhole-cloud.sh: nghttpx --http2-proxy in front of Squid), to test it and to learn what the
agent's own HTTP/2 client must do. Python's ssl and Debian's python3-h2 (hyper-h2).

One TLS connection to the proxy (ALPN h2, the proxy's key pinned or its certificate checked),
then one of:

  --connect HOST:PORT   an HTTP/2 CONNECT stream (RFC 9113 8.5: :method CONNECT and :authority
                        only) and, once it is answered 2xx, one HTTP/1.1 exchange inside the
                        tunnel with the origin (--path, --upload), unless --no-exchange
  --url http://H:P/PATH a plain request (:scheme http, :authority, :path), GET or, with
                        --upload, POST
  --parallel K          with --connect: K CONNECT streams at once, each answered or not within
                        --timeout (nghttpx queues the streams to one target beyond
                        backend-connections-per-host)

The credentials come from --user and --password-file (never from argv) and go in a
proxy-authorization header. --signal PID:SIG sends SIG to PID once the exchange is done, and
--observe S then watches the connection for S seconds (GOAWAY, resets, the tunnel's end) and
tries the tunnel and a new stream again. --window / --conn-window set the receive windows this
client grants (SETTINGS_INITIAL_WINDOW_SIZE, and a WINDOW_UPDATE on stream 0). A tunnel is
ended with END_STREAM, then RST_STREAM(CANCEL) unless the proxy ends it within 1 s (nghttpx does
not pass a client's END_STREAM on); "tunnel_end" says which.

Prints one JSON object on stdout: ALPN, the proxy's SETTINGS and windows, the answer's status
and headers, the body's length and SHA-256, the time taken, events seen. Exit status 0 when an
answer came (whatever its status), 1 on a transport or protocol failure, 2 on bad usage.

The origin's /bytes/N body and POST /sha256 are ph-test-origin's (tests/cloud/ph-test-origin.c);
the upload here is the same pattern as its /bytes/N (ph_test_pattern_byte in ph-test-cloud.h).
"""

import argparse
import base64
import hashlib
import json
import os
import select
import signal
import socket
import ssl
import sys
import time

try:
    import h2.config
    import h2.connection
    import h2.errors
    import h2.events
    import h2.exceptions
    import h2.settings
except ImportError:
    sys.stderr.write("h2-connect: python3-h2 is missing (apt-get install python3-h2)\n")
    sys.exit(3)

PERIOD = 65536
START = time.monotonic()


def pattern_block():
    """The first PERIOD bytes of ph-test-origin's pattern (ph_test_pattern_byte)."""
    return bytes(((((j * 2654435761) & 0xFFFFFFFF) >> 24) ^ j) & 0xFF for j in range(PERIOD))


def pattern_sha256(n):
    h = hashlib.sha256()
    block = pattern_block()
    while n > 0:
        h.update(block[: min(n, PERIOD)])
        n -= min(n, PERIOD)
    return h.hexdigest()


def spki_pin(der):
    """sha256//BASE64 of the SubjectPublicKeyInfo of a DER certificate."""

    def tlv(buf, off):
        length = buf[off + 1]
        start = off + 2
        if length & 0x80:
            n = length & 0x7F
            length = int.from_bytes(buf[start : start + n], "big")
            start += n
        return buf[off], start, start + length

    _, cert_body, _ = tlv(der, 0)
    _, off, _ = tlv(der, cert_body)  # tbsCertificate
    if der[off] == 0xA0:  # [0] version
        off = tlv(der, off)[2]
    for _ in range(5):  # serial, signature, issuer, validity, subject
        off = tlv(der, off)[2]
    end = tlv(der, off)[2]
    return "sha256//" + base64.b64encode(hashlib.sha256(der[off:end]).digest()).decode()


def setting_name(code):
    """hyper-h2 4.1 names the settings of RFC 9113; 9 is RFC 9218's."""
    if hasattr(code, "name"):
        return code.name
    return {9: "NO_RFC7540_PRIORITIES"}.get(int(code), str(int(code)))


def now():
    return round(time.monotonic() - START, 3)


class Failure(Exception):
    pass


class Client:
    def __init__(self, args):
        self.args = args
        self.events = []  # (time, what): GOAWAY, resets, settings, the connection's end
        self.streams = {}  # stream id -> state dict
        self.closed = False
        self.goaway = None
        self.pings_acked = 0
        host, _, port = args.proxy.rpartition(":")
        raw = socket.create_connection((host, int(port)), timeout=args.timeout)
        raw.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        if args.cafile:
            ctx = ssl.create_default_context(cafile=args.cafile)
        else:
            ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
            ctx.check_hostname = False
            ctx.verify_mode = ssl.CERT_NONE
        ctx.minimum_version = ssl.TLSVersion.TLSv1_2
        ctx.set_alpn_protocols(args.alpn.split(","))
        self.sock = ctx.wrap_socket(raw, server_hostname=args.server_name or host)
        der = self.sock.getpeercert(binary_form=True)
        self.pin = spki_pin(der)
        if args.pin and self.pin not in args.pin.split(","):
            raise Failure("the proxy's key %s is not pinned" % self.pin)
        self.alpn = self.sock.selected_alpn_protocol()
        self.tls_version = self.sock.version()
        if self.alpn != "h2":
            raise Failure("the proxy chose ALPN %r, not h2" % self.alpn)
        config = h2.config.H2Configuration(
            client_side=True, header_encoding="utf-8", validate_outbound_headers=False
        )
        self.conn = h2.connection.H2Connection(config=config)
        self.conn.local_settings = h2.settings.Settings(
            client=True,
            initial_values={
                h2.settings.SettingCodes.ENABLE_PUSH: 0,
                h2.settings.SettingCodes.INITIAL_WINDOW_SIZE: args.window,
                h2.settings.SettingCodes.MAX_FRAME_SIZE: args.max_frame,
                h2.settings.SettingCodes.MAX_CONCURRENT_STREAMS: 100,
            },
        )
        self.conn.initiate_connection()
        if args.conn_window > 65535:
            self.conn.increment_flow_control_window(args.conn_window - 65535)
        self.remote_settings = None
        self.flush()
        # The server's SETTINGS (and its connection WINDOW_UPDATE, if any) come first.
        self.pump(lambda: self.remote_settings is not None, args.timeout)
        self.pump(lambda: False, 0.05)
        self.server_conn_window = self.conn.outbound_flow_control_window

    def note(self, what):
        self.events.append([now(), what])

    def flush(self):
        data = self.conn.data_to_send()
        if data:
            try:
                self.sock.sendall(data)
            except OSError as e:
                self.closed = True
                self.note("send failed: %s" % e)

    def credentials(self):
        a = self.args
        if not a.user:
            return []
        with open(a.password_file, "rb") as f:
            password = f.read().rstrip(b"\r\n")
        token = base64.b64encode(a.user.encode() + b":" + password).decode()
        return [("proxy-authorization", "Basic " + token)]

    def open_stream(self, headers, end_stream=False):
        sid = self.conn.get_next_available_stream_id()
        self.streams[sid] = {
            "status": None,
            "headers": [],
            "data": bytearray(),
            "hash": None,
            "received": 0,
            "ended": False,
            "reset": None,
            "t_open": now(),
            "t_answer": None,
        }
        self.conn.send_headers(sid, headers, end_stream=end_stream)
        self.flush()
        return sid

    def handle(self, ev):
        st = self.streams.get(getattr(ev, "stream_id", None) or -1)
        if isinstance(ev, h2.events.RemoteSettingsChanged):
            settings = {setting_name(k): v.new_value for k, v in ev.changed_settings.items()}
            if self.remote_settings is None:
                self.remote_settings = settings
            else:
                self.note("SETTINGS %s" % settings)
        elif isinstance(ev, h2.events.ResponseReceived) and st is not None:
            st["headers"] = [[k, v] for k, v in ev.headers]
            st["status"] = int(dict(ev.headers)[":status"])
            st["t_answer"] = now()
        elif isinstance(ev, h2.events.DataReceived) and st is not None:
            st["received"] += len(ev.data)
            if st["hash"] is not None:
                st["hash"].update(ev.data)
                if len(st["data"]) < 512:
                    st["data"] += ev.data[: 512 - len(st["data"])]
            else:
                st["data"] += ev.data
            self.conn.acknowledge_received_data(ev.flow_controlled_length, ev.stream_id)
        elif isinstance(ev, h2.events.StreamEnded) and st is not None:
            st["ended"] = True
            self.note("stream %d ended by the proxy (END_STREAM)" % ev.stream_id)
        elif isinstance(ev, h2.events.StreamReset) and st is not None:
            st["reset"] = str(getattr(ev.error_code, "name", ev.error_code))
            self.note("stream %d reset by the proxy: %s" % (ev.stream_id, st["reset"]))
        elif isinstance(ev, h2.events.PingAckReceived):
            self.pings_acked += 1
        elif isinstance(ev, h2.events.ConnectionTerminated):
            self.goaway = {
                "error": str(getattr(ev.error_code, "name", ev.error_code)),
                "last_stream_id": ev.last_stream_id,
                "data": (ev.additional_data or b"").decode("utf-8", "replace"),
            }
            self.note("GOAWAY %s last_stream_id=%s" % (self.goaway["error"], ev.last_stream_id))
            # hyper-h2 takes any GOAWAY for the connection's end; RFC 9113 6.8 lets the streams up
            # to last_stream_id finish after a graceful one, which is what is to be observed here.
            if self.goaway["error"] == "NO_ERROR":
                self.conn.state_machine.state = h2.connection.ConnectionState.CLIENT_OPEN

    def pump(self, done, timeout):
        """Reads and handles frames until done() or timeout; False on a timeout."""
        deadline = time.monotonic() + timeout
        while not done():
            if self.closed:
                return False
            left = deadline - time.monotonic()
            if left <= 0:
                return False
            if not self.sock.pending():
                r, _, _ = select.select([self.sock], [], [], left)
                if not r:
                    continue
            try:
                data = self.sock.recv(1 << 18)
            except ssl.SSLWantReadError:
                continue
            except OSError as e:
                self.closed = True
                self.note("connection failed: %s" % e)
                return False
            if not data:
                self.closed = True
                self.note("connection closed by the proxy (TLS/TCP end)")
                return False
            try:
                for ev in self.conn.receive_data(data):
                    self.handle(ev)
            except h2.exceptions.ProtocolError as e:
                self.closed = True
                self.note("protocol error: %s" % e)
                return False
            self.flush()
        return True

    def send_body(self, sid, chunks, end_stream):
        """Sends the bytes of the iterable chunks on stream sid within the flow-control windows."""
        for chunk in chunks:
            view = memoryview(chunk)
            while view:
                window = self.conn.local_flow_control_window(sid)
                if window <= 0:
                    if not self.pump(lambda: self.conn.local_flow_control_window(sid) > 0
                                     or self.streams[sid]["reset"] is not None,
                                     self.args.timeout):
                        raise Failure("no window to send on stream %d" % sid)
                    if self.streams[sid]["reset"] is not None:
                        raise Failure("stream %d reset while sending" % sid)
                    continue
                n = min(len(view), window, self.conn.max_outbound_frame_size)
                self.conn.send_data(sid, view[:n].tobytes())
                view = view[n:]
                self.flush()
                # Take in the WINDOW_UPDATEs and answers that came meanwhile, without waiting.
                self.pump(lambda: True, 0)
                if self.sock.pending() or select.select([self.sock], [], [], 0)[0]:
                    self.pump(lambda: False, 0.0001)
        if end_stream:
            self.conn.end_stream(sid)
            self.flush()


def pattern_chunks(n):
    block = pattern_block()
    while n > 0:
        yield block[: min(n, PERIOD)]
        n -= min(n, PERIOD)


def split_head(buf):
    """(status, headers dict lower-case, head length) of an HTTP/1.1 response head in buf."""
    end = buf.find(b"\r\n\r\n")
    if end < 0:
        return None
    lines = bytes(buf[:end]).decode("latin-1").split("\r\n")
    headers = {}
    for line in lines[1:]:
        k, _, v = line.partition(":")
        headers[k.strip().lower()] = v.strip()
    return int(lines[0].split()[1]), headers, end + 4


def tunnel_exchange(c, sid, authority, out):
    """One HTTP/1.1 request to the origin inside the CONNECT tunnel sid (keep-alive)."""
    a = c.args
    method = "POST" if a.upload is not None else "GET"
    head = "%s %s HTTP/1.1\r\nHost: %s\r\nUser-Agent: h2-connect\r\n" % (method, a.path, authority)
    if a.upload is not None:
        head += "Content-Length: %d\r\n" % a.upload
    if a.close:
        head += "Connection: close\r\n"
    head += "\r\n"
    st = c.streams[sid]
    st["data"] = bytearray()
    t0 = time.monotonic()
    c.conn.send_data(sid, head.encode())
    c.flush()
    if a.upload is not None:
        c.send_body(sid, pattern_chunks(a.upload), end_stream=False)
    got_head = lambda: split_head(st["data"]) is not None
    if not c.pump(lambda: got_head() or st["ended"] or st["reset"] is not None, a.timeout):
        raise Failure("no answer from the origin inside the tunnel")
    parsed = split_head(st["data"])
    if parsed is None:
        raise Failure("the tunnel ended before the origin's answer")
    status, headers, head_len = parsed
    body = bytes(st["data"][head_len:])
    length = int(headers.get("content-length", "-1"))
    hasher = hashlib.sha256(body)
    st["hash"] = hasher
    st["received"] = len(body)
    st["data"] = bytearray(body[:512])
    if length >= 0:
        c.pump(lambda: st["received"] >= length or st["ended"] or st["reset"] is not None,
               a.timeout)
    else:
        c.pump(lambda: st["ended"] or st["reset"] is not None, a.timeout)
    secs = time.monotonic() - t0
    st["hash"] = None
    out.update({
        "inner_status": status,
        "inner_headers": headers,
        "body_bytes": st["received"],
        "body_sha256": hasher.hexdigest(),
        "body": bytes(st["data"]).decode("utf-8", "replace"),
        "seconds": round(secs, 4),
        "mbytes_per_s": round(max(st["received"], a.upload or 0) / secs / 1e6, 1),
    })
    if length < 0 or st["received"] < length:
        out["body_complete"] = False
    return out


def end_tunnel(c, sid, out):
    """Half-closes the tunnel (END_STREAM), reports how the proxy ends it, and resets the stream
    when it does not within a second: nghttpx does not pass a client's END_STREAM on to Squid,
    so a tunnel whose origin waits for more stays open."""
    st = c.streams[sid]
    if st["ended"] or st["reset"] is not None or c.closed:
        return
    c.conn.end_stream(sid)
    c.flush()
    c.pump(lambda: st["ended"] or st["reset"] is not None, 1)
    out["tunnel_end"] = ("END_STREAM" if st["ended"] else
                         "RST_STREAM " + st["reset"] if st["reset"] else "none within 1 s")
    if not (st["ended"] or st["reset"] is not None or c.closed):
        c.conn.reset_stream(sid, h2.errors.ErrorCodes.CANCEL)
        c.flush()


def answer(c, sid):
    st = c.streams[sid]
    return {"status": st["status"], "headers": st["headers"]}


def run(args):
    c = Client(args)
    out = {
        "alpn": c.alpn,
        "tls": c.tls_version,
        "pin": c.pin,
        "server_settings": c.remote_settings,
        "server_connection_window": c.server_conn_window,
    }
    auth = c.credentials()
    if args.url:
        scheme, _, rest = args.url.partition("://")
        authority, slash, path = rest.partition("/")
        headers = [(":method", "POST" if args.upload is not None else "GET"), (":scheme", scheme),
                   (":authority", authority), (":path", slash + path)] + auth
        headers.append(("user-agent", "h2-connect"))
        if args.upload is not None:
            headers.append(("content-length", str(args.upload)))
        t0 = time.monotonic()
        sid = c.open_stream(headers, end_stream=args.upload is None)
        if args.upload is not None:
            c.send_body(sid, pattern_chunks(args.upload), end_stream=True)
        st = c.streams[sid]
        st["hash"] = hashlib.sha256()
        c.pump(lambda: st["ended"] or st["reset"] is not None or c.goaway, args.timeout)
        if st["status"] is None:
            raise Failure("no answer to the request (%s)" % (st["reset"] or "timeout"))
        out.update(answer(c, sid))
        out["body_bytes"] = st["received"]
        out["body_sha256"] = st["hash"].hexdigest()
        out["body"] = bytes(st["data"]).decode("utf-8", "replace")
        out["seconds"] = round(time.monotonic() - t0, 4)
    elif args.parallel:
        sids = [c.open_stream([(":method", "CONNECT"), (":authority", args.connect)] + auth)
                for _ in range(args.parallel)]
        c.pump(lambda: all(c.streams[s]["status"] or c.streams[s]["reset"] for s in sids),
               args.timeout)
        out["streams"] = [{"stream": s, "status": c.streams[s]["status"],
                           "reset": c.streams[s]["reset"],
                           "seconds": c.streams[s]["t_answer"] and
                           round(c.streams[s]["t_answer"] - c.streams[s]["t_open"], 3)}
                          for s in sids]
        out["answered"] = sum(1 for s in sids if c.streams[s]["status"])
    else:
        sid = c.open_stream([(":method", "CONNECT"), (":authority", args.connect)] + auth)
        st = c.streams[sid]
        c.pump(lambda: st["status"] is not None or st["reset"] is not None or c.closed,
               args.timeout)
        if st["status"] is None:
            raise Failure("no answer to CONNECT (%s)" % (st["reset"] or "timeout"))
        out.update(answer(c, sid))
        if not 200 <= st["status"] < 300:
            st["hash"] = None
            c.pump(lambda: st["ended"] or st["reset"] is not None, 5)
            out["body"] = bytes(st["data"]).decode("utf-8", "replace")[:400]
        elif not args.no_exchange:
            tunnel_exchange(c, sid, args.connect, out)
        if args.signal:
            pid, _, sig = args.signal.partition(":")
            os.kill(int(pid), getattr(signal, sig if sig.startswith("SIG") else "SIG" + sig))
            c.note("sent %s to %s" % (sig, pid))
        if args.observe:
            end = time.monotonic() + args.observe
            while not c.closed and time.monotonic() < end:
                step = min(args.ping_every or args.observe, end - time.monotonic())
                c.pump(lambda: c.closed, step)
                if args.ping_every and not c.closed and time.monotonic() < end:
                    c.conn.ping(b"pinhole!")
                    c.flush()
            out["after"] = {}
            if 200 <= (st["status"] or 0) < 300 and not (st["ended"] or st["reset"] or c.closed):
                try:
                    tunnel_exchange(c, sid, args.connect, out["after"])
                    out["after"]["tunnel_still_works"] = True
                except (Failure, h2.exceptions.ProtocolError) as e:
                    out["after"]["tunnel_still_works"] = str(e)
            if not c.closed:
                try:
                    sid2 = c.open_stream([(":method", "CONNECT"), (":authority", args.connect)]
                                         + auth)
                    c.pump(lambda: c.streams[sid2]["status"] is not None
                           or c.streams[sid2]["reset"] is not None or c.closed, 2)
                    out["after"]["new_stream"] = {"status": c.streams[sid2]["status"],
                                                  "reset": c.streams[sid2]["reset"]}
                except h2.exceptions.ProtocolError as e:
                    out["after"]["new_stream"] = {"refused_locally": str(e)}
            out["after"]["connection_closed"] = c.closed
        if 200 <= (st["status"] or 0) < 300:
            end_tunnel(c, sid, out)
    out["goaway"] = c.goaway
    if c.pings_acked:
        out["pings_acked"] = c.pings_acked
    out["events"] = c.events
    if not c.closed:
        try:
            c.conn.close_connection()
            c.flush()
            c.sock.close()
        except OSError:
            pass
    return out


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--proxy", required=True, help="HOST:PORT of the HTTP/2 proxy (TLS)")
    p.add_argument("--server-name", help="SNI (and the name checked with --cafile)")
    p.add_argument("--pin", help="sha256//BASE64[,...]: the proxy's SPKI pins")
    p.add_argument("--cafile", help="verify the proxy's certificate against this file")
    p.add_argument("--insecure", action="store_true", help="neither pin nor certificate check")
    p.add_argument("--alpn", default="h2", help="ALPN list offered (default h2)")
    p.add_argument("--user")
    p.add_argument("--password-file")
    g = p.add_mutually_exclusive_group(required=True)
    g.add_argument("--connect", metavar="HOST:PORT")
    g.add_argument("--url", metavar="http://HOST:PORT/PATH")
    p.add_argument("--path", default="/hello", help="inside the tunnel (default /hello)")
    p.add_argument("--upload", type=int, metavar="N", help="POST N pattern bytes")
    p.add_argument("--close", action="store_true",
                   help="Connection: close inside the tunnel (the origin ends it)")
    p.add_argument("--no-exchange", action="store_true", help="only the CONNECT")
    p.add_argument("--parallel", type=int, metavar="K", help="K CONNECT streams at once")
    p.add_argument("--window", type=int, default=65535, help="SETTINGS_INITIAL_WINDOW_SIZE")
    p.add_argument("--conn-window", type=int, default=65535, help="connection receive window")
    p.add_argument("--max-frame", type=int, default=16384, help="SETTINGS_MAX_FRAME_SIZE")
    p.add_argument("--signal", metavar="PID:SIG", help="after the exchange, send SIG to PID")
    p.add_argument("--observe", type=float, metavar="S", help="then watch for S seconds")
    p.add_argument("--ping-every", type=float, metavar="S", help="PING every S s while watching")
    p.add_argument("--timeout", type=float, default=60)
    args = p.parse_args()
    if not (args.pin or args.cafile or args.insecure):
        p.error("one of --pin, --cafile, --insecure is needed")
    if bool(args.user) != bool(args.password_file):
        p.error("--user and --password-file go together")
    if args.parallel and not args.connect:
        p.error("--parallel needs --connect")
    try:
        out = run(args)
    except (Failure, OSError, ssl.SSLError, h2.exceptions.ProtocolError) as e:
        sys.stderr.write("h2-connect: %s\n" % e)
        return 1
    json.dump(out, sys.stdout, indent=1)
    sys.stdout.write("\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())

#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0-or-later
# test-clients.py: real clients through the real pinhole-agent, TAP output. The agent stands in
# front of a cloud end of tests/cloud/pinhole-cloud.sh (stunnel + Squid, or with
# PH_CLOUD_FRONT=nghttpx nghttpx --http2-proxy + Squid, where the agent carries CONNECT tunnels
# and plain http:// requests as HTTP/2 streams) and ph-test-origin; through it go Python
# requests (plain GETs, keep-alive, a chunked upload, HTTPS through CONNECT), websockets 10.4
# over a CONNECT the test makes itself (to its own echo server), git ls-remote over https:// and
# headless Chromium (an http:// and an https:// page). Against nghttpx every access line of
# theirs says upstream=h2 and the agent holds one TCP connection to the cloud end; against
# stunnel none does.
#
# Environment (tests/cloud/meson.build): PH_AGENT, PH_SRCDIR, PH_TEST_ORIGIN, PH_CLOUD_FRONT;
# PH_CLIENTS_LOG_LEVEL=debug (the agent's [log] level), PH_KEEP_TMP=1 (keep the files).
# Under CI=true a missing stunnel/nghttpx, Squid, requests, websockets, git, Chromium or ss is a
# failure. Nothing leaves loopback: Squid knows only the names the test gives it, and Chromium's
# own background requests are refused by the agent's block list.

import asyncio
import base64
import hashlib
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from ph_tap import CI, bail, failed, finish, free_port, ok, wait_listening, skip, skip_all  # noqa: E402

# Debian's python3-requests and python3-websockets are for Debian's python3; a python3 of
# another prefix first on PATH (pyenv) may have neither: run again under /usr/bin/python3 then.
try:
    import requests
    import websockets
    import websockets.server
except ImportError:
    requests = websockets = None
    if sys.executable != "/usr/bin/python3" and os.path.exists("/usr/bin/python3"):
        os.execv("/usr/bin/python3", ["/usr/bin/python3"] + sys.argv)

AGENT = os.environ.get("PH_AGENT", "")
SRCDIR = os.environ.get("PH_SRCDIR", os.path.join(os.path.dirname(__file__), "..", ".."))
CLOUD = os.path.join(SRCDIR, "tests", "cloud", "pinhole-cloud.sh")
FRONT = os.environ.get("PH_CLOUD_FRONT", "stunnel")
H2 = FRONT == "nghttpx"

# Chromium's own background requests (time, updates, safe browsing) take these names.
BLOCK = (".google.com .googleapis.com .gstatic.com .gvt1.com .googleusercontent.com "
         ".chromium.org .chrome.com")


def field(line, name):
    m = re.search(rf" {name}=(\S+)", line)
    return m.group(1) if m else None


class Agent:
    """pinhole-agent --config CONFIG (no bus needed), its log in a file."""

    def __init__(self, tmp):
        self.tmp = tmp
        self.proc = None
        self.log_path = os.path.join(tmp, "agent.log")

    def start(self, config):
        for d in ("home", "config", "state", "runtime"):
            os.makedirs(os.path.join(self.tmp, d), mode=0o700, exist_ok=True)
        env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "HOME": f"{self.tmp}/home", "XDG_CONFIG_HOME": f"{self.tmp}/config",
            "XDG_STATE_HOME": f"{self.tmp}/state", "XDG_RUNTIME_DIR": f"{self.tmp}/runtime",
            "DBUS_SESSION_BUS_ADDRESS": f"unix:path={self.tmp}/no-bus",
            "DBUS_SYSTEM_BUS_ADDRESS": f"unix:path={self.tmp}/no-bus",
            "G_DEBUG": os.environ.get("G_DEBUG", "fatal-criticals"),
        }
        for v in ("ASAN_OPTIONS", "UBSAN_OPTIONS", "LSAN_OPTIONS"):
            if v in os.environ:
                env[v] = os.environ[v]
        self.log = open(self.log_path, "ab")
        self.proc = subprocess.Popen([AGENT, "--config", config], env=env,
                                     stdin=subprocess.DEVNULL, stdout=self.log, stderr=self.log)

    def wait_listening(self, port):
        return wait_listening(self.proc, port)

    def lines(self):
        with open(self.log_path, errors="replace") as f:
            return f.read().splitlines()

    def access_lines(self, *needles):
        return [l for l in self.lines()
                if " access client=" in l and all(n in l for n in needles)]

    def wait_access(self, needle, count=1, timeout=10.0):
        """The access lines naming needle once there are count of them (or the timeout)."""
        deadline = time.monotonic() + timeout
        while True:
            got = self.access_lines(needle)
            if len(got) >= count or time.monotonic() > deadline:
                return got
            time.sleep(0.1)

    def stop(self):
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


# -- Python requests --------------------------------------------------------------------------

def check_requests(agent, cloud, proxy):
    origin = cloud["PH_ORIGIN_HTTP_PORT"]
    https = cloud["PH_ORIGIN_HTTPS_PORT"]
    proxies = {"http": proxy, "https": proxy}

    def session():
        s = requests.Session()
        s.trust_env = False  # no *_proxy / no_proxy of the environment: only ours
        s.proxies = proxies
        return s

    with session() as s:
        try:
            r = s.get(f"http://127.0.0.1:{origin}/hello?client=requests-get", timeout=30)
            good, detail = r.status_code == 200 and r.text == "hello\n", (r.status_code, r.text)
        except requests.RequestException as e:
            good, detail = False, repr(e)
        ok(good, "requests: a plain GET through the agent", detail)

    # One Session, five GETs: one TCP connection to the agent, kept alive between them.
    with session() as s:
        bodies = []
        try:
            for i in range(5):
                r = s.get(f"http://127.0.0.1:{origin}/hello?client=requests-ka{i}", timeout=30)
                bodies.append((r.status_code, r.text))
            error = None
        except requests.RequestException as e:
            error = repr(e)
    ok(error is None and bodies == [(200, "hello\n")] * 5,
       "requests: a Session's 5 GETs are answered", error, bodies)
    lines = [agent.wait_access(f"client=requests-ka{i}") for i in range(5)]
    clients = {field(l, "client") for ls in lines for l in ls}
    ok(all(len(ls) == 1 for ls in lines) and len(clients) == 1,
       "requests: the Session's 5 GETs came on one connection to the agent (keep-alive)",
       *[l for ls in lines for l in ls])

    # A body of unknown length: requests sends it chunked.
    chunks = [os.urandom(16 * 1024 + i) for i in range(64)]
    want = hashlib.sha256(b"".join(chunks)).hexdigest()
    total = sum(len(c) for c in chunks)

    def gen():
        yield from chunks

    with session() as s:
        try:
            r = s.post(f"http://127.0.0.1:{origin}/sha256?client=requests-post", data=gen(),
                       timeout=60)
            got, status = r.text, r.status_code
        except requests.RequestException as e:
            got, status = repr(e), None
    ok(status == 200 and got == f"{want} {total}\n",
       f"requests: a chunked POST of {total} bytes arrives whole (sha256 checked)",
       f"status {status}", f"got  {got.strip()}", f"want {want} {total}")
    post = agent.wait_access("client=requests-post")
    ok(len(post) == 1 and " method=POST " in post[0] and "status=200" in post[0]
       and int(field(post[0], "up") or 0) >= total,
       "requests: the agent logged the upload with its bytes", *post)

    with session() as s:
        try:
            r = s.get(f"https://localhost:{https}/hello", verify=cloud["PH_ORIGIN_CA"],
                      timeout=30)
            good, detail = r.status_code == 200 and r.text == "hello\n", (r.status_code, r.text)
        except requests.RequestException as e:
            good, detail = False, repr(e)
    ok(good, "requests: an HTTPS GET through a CONNECT tunnel, the origin's certificate verified",
       detail)


# -- websockets over a CONNECT tunnel ---------------------------------------------------------

class EchoServer:
    """A websockets echo server on 127.0.0.1 in a thread of its own (its own event loop)."""

    def __init__(self):
        self.port = None
        self.loop = None
        self.stop_event = None
        self.ready = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()
        self.ready.wait(10)

    def _run(self):
        async def echo(ws, path=None):
            async for msg in ws:
                await ws.send(msg)

        async def main():
            self.loop = asyncio.get_running_loop()
            self.stop_event = asyncio.Event()
            async with websockets.server.serve(echo, "127.0.0.1", 0, max_size=4 << 20) as srv:
                self.port = srv.sockets[0].getsockname()[1]
                self.ready.set()
                await self.stop_event.wait()

        asyncio.run(main())

    def stop(self):
        if self.loop is not None:
            self.loop.call_soon_threadsafe(self.stop_event.set)
        self.thread.join(10)


def connect_tunnel(agent_port, host, port):
    """A CONNECT through the agent; the socket once its answer is read, or an error string."""
    sock = socket.create_connection(("127.0.0.1", agent_port), timeout=30)
    sock.sendall(f"CONNECT {host}:{port} HTTP/1.1\r\nHost: {host}:{port}\r\n\r\n".encode())
    head = b""
    while b"\r\n\r\n" not in head:  # byte by byte: nothing of the tunnel is read here
        b = sock.recv(1)
        if not b:
            break
        head += b
    status = head.split(b"\r\n", 1)[0].decode(errors="replace")
    if not re.match(r"HTTP/1\.[01] 200 ", status):
        sock.close()
        return None, status or "(closed without an answer)"
    return sock, status


async def websocket_session(agent_port, echo_port, at_idle):
    """Returns a list of (ok, what, detail...) for the TAP lines; at_idle(): the checks made
    while the websocket is open (after its last message)."""
    results = []
    sock, status = connect_tunnel(agent_port, "127.0.0.1", echo_port)
    results.append((sock is not None, "websockets: the agent answers the CONNECT with 200",
                    status))
    if sock is None:
        return results
    sock.setblocking(False)
    uri = f"ws://127.0.0.1:{echo_port}/echo"
    try:
        async with websockets.connect(uri, sock=sock, max_size=4 << 20, open_timeout=30,
                                      ping_interval=None) as ws:
            big = os.urandom(1 << 20)
            msgs = ["hello through pinhole", b"\x00\x01binary\xff" * 100, big]
            echoes = []
            for m in msgs:
                await ws.send(m)
                echoes.append(await asyncio.wait_for(ws.recv(), 30))
            results.append((echoes == msgs, "websockets: 3 messages (text, binary, 1 MiB) "
                            "echoed through the tunnel", [len(e) for e in echoes]))
            await asyncio.sleep(3)
            await ws.send("after an idle pause")
            try:
                late = await asyncio.wait_for(ws.recv(), 30)
            except Exception as e:  # noqa: BLE001: whatever ended it is the detail
                late = repr(e)
            results.append((late == "after an idle pause",
                            "websockets: after 3 s idle the tunnel still carries a message",
                            late))
            results.extend(at_idle())
    except Exception as e:  # noqa: BLE001
        results.append((False, "websockets: the session ran to its end", repr(e)))
    return results


def check_websockets(agent, agent_port, cloud):
    echo = EchoServer()
    if echo.port is None:
        ok(False, "websockets: the echo server started")
        return
    try:
        def at_idle():
            if not H2:
                return []
            # Everything so far went on one HTTP/2 connection, which the open websocket's
            # stream still uses; the warm pool keeps none for a proxy that speaks HTTP/2.
            cmd = ["ss", "-Htn", "state", "established",
                   f"( dport = :{cloud['PH_CLOUD_TLS_PORT']} )"]
            out = subprocess.run(cmd, capture_output=True, text=True).stdout
            conns = [l for l in out.splitlines() if l.strip()]
            return [(len(conns) == 1,
                     "h2: the agent holds exactly 1 TCP connection to the cloud end "
                     "(websocket open)", *conns)]

        results = asyncio.run(websocket_session(agent_port, echo.port, at_idle))
        for r in results:
            ok(*r)
        lines = agent.wait_access(f"target=127.0.0.1:{echo.port} ")
        ok(len(lines) == 1 and "method=CONNECT" in lines[0] and "status=200" in lines[0]
           and int(field(lines[0], "up") or 0) > (1 << 20)
           and int(field(lines[0], "down") or 0) > (1 << 20),
           "websockets: the agent logged the tunnel with its bytes each way", *lines)
    finally:
        echo.stop()
    return echo.port


# -- git --------------------------------------------------------------------------------------

def check_git(agent, cloud, proxy):
    git = shutil.which("git")
    if git is None:
        skip("git ls-remote over https:// through the agent", "git not installed")
        return
    https = cloud["PH_ORIGIN_HTTPS_PORT"]
    env = dict(os.environ, GIT_SSL_CAINFO=cloud["PH_ORIGIN_CA"], GIT_TERMINAL_PROMPT="0",
               HOME=os.path.join(agent.tmp, "home"), GIT_CONFIG_NOSYSTEM="1")
    for v in ("http_proxy", "https_proxy", "HTTPS_PROXY", "all_proxy", "ALL_PROXY", "no_proxy",
              "NO_PROXY"):
        env.pop(v, None)
    # No git server here: the origin answers 404, and git says "not found", which it can only
    # say once the TLS exchange through the agent's tunnel went through, certificate verified.
    r = subprocess.run([git, "-c", f"http.proxy={proxy}", "-c",
                        f"http.sslCAInfo={cloud['PH_ORIGIN_CA']}", "ls-remote",
                        f"https://localhost:{https}/repo.git"],
                       capture_output=True, text=True, env=env, timeout=60,
                       stdin=subprocess.DEVNULL)
    ok("repo.git/' not found" in r.stderr,
       "git ls-remote https:// through the agent (http.proxy): the origin's 404 arrives",
       f"exit {r.returncode}", r.stderr)


# -- Chromium ---------------------------------------------------------------------------------

def spki_hash(cert_pem):
    """base64(SHA-256(SubjectPublicKeyInfo)) of a certificate, as Chromium's
    --ignore-certificate-errors-spki-list takes it."""
    pub = subprocess.run(["openssl", "x509", "-in", cert_pem, "-noout", "-pubkey"],
                         capture_output=True, check=True).stdout
    der = subprocess.run(["openssl", "pkey", "-pubin", "-outform", "DER"], input=pub,
                         capture_output=True, check=True).stdout
    return base64.b64encode(hashlib.sha256(der).digest()).decode()


def chromium_fetch(tmp, chromium, headless, agent_port, url, extra=()):
    profile = tempfile.mkdtemp(prefix="chromium-", dir=tmp)
    cmd = [chromium, headless, "--no-sandbox", "--disable-gpu", "--no-first-run",
           "--disable-background-networking", "--disable-component-update", "--disable-sync",
           "--disable-default-apps", "--disable-extensions", "--no-default-browser-check",
           f"--user-data-dir={profile}", f"--proxy-server=http://127.0.0.1:{agent_port}",
           # Chromium never proxies loopback targets unless told so.
           "--proxy-bypass-list=<-loopback>", *extra, "--dump-dom", url]
    env = dict(os.environ, HOME=profile)
    env.pop("DISPLAY", None)
    return subprocess.run(cmd, capture_output=True, text=True, timeout=90, env=env,
                          stdin=subprocess.DEVNULL)


def check_chromium(agent, tmp, cloud, agent_port):
    chromium = shutil.which("chromium")
    if chromium is None:
        skip("Chromium through the agent (--proxy-server)", "chromium not installed")
        return
    origin = cloud["PH_ORIGIN_HTTP_PORT"]
    https = cloud["PH_ORIGIN_HTTPS_PORT"]
    plain_url = f"http://127.0.0.1:{origin}/headers?client=chromium"
    headless = None
    for mode in ("--headless=new", "--headless"):
        r = chromium_fetch(tmp, chromium, mode, agent_port, plain_url)
        if r.returncode == 0 and "GET /headers" in r.stdout:
            headless = mode
            break
        print(f"# chromium {mode}: exit {r.returncode}", flush=True)
        for line in (r.stderr.splitlines()[-8:] + r.stdout.splitlines()[-4:]):
            print(f"#   {line}", flush=True)
    ok(headless is not None and "Via:" in r.stdout,
       "Chromium: an http:// page through the agent and the cloud proxy (Via)", r.stdout[-600:])
    if headless is None:
        return
    # The origin's certificate is signed by the test's CA, which Chromium cannot be handed on
    # the command line: its key alone is accepted instead.
    spki = spki_hash(os.path.join(cloud["PH_CLOUD_DIR"], "origin-cert.pem"))
    r = chromium_fetch(tmp, chromium, headless, agent_port, f"https://localhost:{https}/headers",
                       [f"--ignore-certificate-errors-spki-list={spki}"])
    ok(r.returncode == 0 and "GET /headers HTTP/1.1" in r.stdout
       and f"Host: localhost:{https}" in r.stdout and "Via:" not in r.stdout,
       "Chromium: an https:// page through the agent's CONNECT tunnel",
       f"exit {r.returncode}", r.stdout[-600:], *r.stderr.splitlines()[-8:])
    lines = agent.access_lines("client=chromium")
    ok(any(" method=GET " in l and "status=200" in l for l in lines),
       "Chromium: the agent logged the http:// page", *lines)
    lines = agent.wait_access(f"target=localhost:{https} ")
    ok(any("method=CONNECT" in l and "status=200" in l for l in lines),
       "Chromium: the agent logged the https:// page's tunnel", *lines)


# -- the whole run ----------------------------------------------------------------------------

def check_upstream_protocol(agent, cloud, echo_port):
    ports = [cloud["PH_ORIGIN_HTTP_PORT"], cloud["PH_ORIGIN_HTTPS_PORT"]]
    if echo_port:
        ports.append(str(echo_port))
    ours = [l for l in agent.access_lines()
            if any(f":{p}/" in l or f":{p} " in l for p in ports)]
    if H2:
        off = [l for l in ours if not l.endswith(" upstream=h2")]
        ok(ours and not off,
           f"h2: each of the clients' {len(ours)} access lines (plain GETs too) ends upstream=h2",
           *off[:10])
    else:
        h2 = [l for l in agent.lines() if "upstream=h2" in l]
        ok(ours and not h2, f"stunnel: none of the {len(ours)} access lines says upstream=h2",
           *h2[:10])


def main():
    if not AGENT or not os.access(AGENT, os.X_OK):
        bail("PH_AGENT must name the built pinhole-agent")
    front = (("nghttpx", os.environ.get("PH_NGHTTPX", "/usr/sbin/nghttpx")) if H2 else
             ("stunnel4", os.environ.get("PH_STUNNEL", "/usr/bin/stunnel4")))
    for tool, path in (front, ("squid", os.environ.get("PH_SQUID", "/usr/sbin/squid")),
                       ("openssl", shutil.which("openssl")), ("ss", shutil.which("ss"))):
        if not path or not os.access(path, os.X_OK):
            skip_all(f"{tool} not found")
    if requests is None or websockets is None:
        skip_all("python3-requests or python3-websockets not found")

    tmp = tempfile.mkdtemp(prefix="pinhole-clients.")
    os.chmod(tmp, 0o711)  # Squid runs as proxy when we are root
    agent = Agent(tmp)
    cloud_dir = os.path.join(tmp, "cloud")
    try:
        hosts = os.path.join(tmp, "squid-hosts")
        with open(hosts, "w") as f:
            f.write("127.0.0.1 localhost\n")
        os.chmod(hosts, 0o644)
        env = dict(os.environ, PH_CLOUD_ORIGIN="1", PH_CLOUD_OWNER_PID=str(os.getpid()),
                   PH_CLOUD_SQUID_HOSTS=hosts, PH_CLOUD_FRONT=FRONT)
        # To a file: the watcher that start leaves behind keeps its output open.
        with open(os.path.join(tmp, "cloud.out"), "w+") as out:
            r = subprocess.run(["bash", CLOUD, "start", cloud_dir], env=env, stdout=out,
                               stderr=out, stdin=subprocess.DEVNULL)
            if r.returncode != 0:
                out.seek(0)
                print("".join("# " + l for l in out))
                bail("the cloud end did not start")
        cloud = {}
        with open(os.path.join(cloud_dir, "cloud.env")) as f:
            for line in f:
                if not line.startswith("#"):
                    k, _, v = line.rstrip("\n").partition("=")
                    cloud[k] = v
        agent_port = free_port()
        config = os.path.join(tmp, "agent.conf")
        subprocess.run(["bash", CLOUD, "agent-config", cloud_dir, config, str(agent_port)],
                       check=True)
        with open(config, "a") as f:
            f.write(f"\n[route]\nblock={BLOCK}\n")
        if os.environ.get("PH_CLIENTS_LOG_LEVEL"):  # debug, to look into a failure
            with open(config) as f:
                text = f.read()
            with open(config, "w") as f:
                f.write(text.replace("level=info", "level=" + os.environ["PH_CLIENTS_LOG_LEVEL"]))
        agent.start(config)
        if not agent.wait_listening(agent_port):
            print("".join("# " + l for l in open(agent.log_path, errors="replace")))
            bail("the agent did not listen")
        print(f"# cloud front: {FRONT}, agent on 127.0.0.1:{agent_port}", flush=True)
        proxy = f"http://127.0.0.1:{agent_port}"

        check_requests(agent, cloud, proxy)
        check_git(agent, cloud, proxy)
        check_chromium(agent, tmp, cloud, agent_port)
        echo_port = check_websockets(agent, agent_port, cloud)
        check_upstream_protocol(agent, cloud, echo_port)
        bad = [l for l in agent.lines() if re.search(r"Z (error|critical|warning) ", l)]
        ok(agent.proc.poll() is None and not bad,
           "the agent is still running and logged no warning", *bad[:10])
    finally:
        agent.stop()
        for line in agent.lines():
            if "upstream: connections to" in line:  # the pools' counters, written at the end
                print(f"# {line}", flush=True)
        subprocess.run(["bash", CLOUD, "stop", cloud_dir], capture_output=True)
        if failed() == 0 and not os.environ.get("PH_KEEP_TMP"):
            shutil.rmtree(tmp, ignore_errors=True)
        else:
            print(f"# files kept in {tmp}", flush=True)
    return finish()


if __name__ == "__main__":
    sys.exit(main())

#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0-or-later
# test-pac.py: real PAC engines agree with the agent's router, TAP output. The real pinhole-agent
# (--session, on a private dbus-daemon, in front of the real stunnel + Squid + ph-test-origin)
# with a rich [route] direct= list serves /proxy.pac; pacparser evaluates FindProxyForURL for a
# table of URLs and each answer is compared with `pinholectl route URL` and with what the table
# expects. Then headless Chromium set to the PAC fetches one direct and one proxied page of the
# test origin, and the agent's access lines and Squid's access log show which way each went.
#
# Environment (tests/cloud/meson.build): PH_AGENT, PINHOLECTL, PH_SRCDIR, PH_TEST_ORIGIN.
# Under CI=true a missing dbus-daemon, stunnel, Squid, pacparser or Chromium is a failure.
# Nothing leaves loopback: Chromium's own background requests go to the agent by the PAC, and
# the block list refuses their names.

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from ph_tap import CI, bail, failed, finish, free_port, ok, wait_listening, skip_all  # noqa: E402
import urllib.request

# Debian's pacparser is for Debian's python3; a python3 of another prefix first on PATH (pyenv)
# has no such module: run again under /usr/bin/python3 then.
try:
    import pacparser
except ImportError:
    pacparser = None
    if sys.executable != "/usr/bin/python3" and os.path.exists("/usr/bin/python3"):
        os.execv("/usr/bin/python3", ["/usr/bin/python3"] + sys.argv)

AGENT = os.environ.get("PH_AGENT", "")
CTL = os.environ.get("PINHOLECTL", "")
SRCDIR = os.environ.get("PH_SRCDIR", os.path.join(os.path.dirname(__file__), "..", ".."))
CLOUD = os.path.join(SRCDIR, "tests", "cloud", "pinhole-cloud.sh")

DIRECT = ("intranet.example, *.dev.example; .corp.example 10.0.0.0/8,192.168.1.7 fd00::/8 "
          "[2001:db8::]/32 <local>")
# Chromium's own background requests (time, updates, safe browsing) take these names.
BLOCK = ("blocked.example *.ads.example .google.com .googleapis.com .gstatic.com .gvt1.com "
         ".googleusercontent.com .chromium.org")

# URL, the route the agent must give it. The PAC must say DIRECT for exactly the direct ones.
TABLE = [
    ("http://intranet.example/", "direct"),
    ("http://INTRANET.Example./x?y=1", "direct"),  # case and trailing dot
    ("http://www.intranet.example/", "proxy"),  # an exact name is not a suffix
    ("http://build.dev.example:8080/", "direct"),
    ("http://dev.example/", "proxy"),  # *.dev.example: names under it only
    ("https://a.b.dev.example/", "direct"),
    ("http://corp.example/", "direct"),  # .corp.example: itself too
    ("https://wiki.corp.example/page", "direct"),
    ("http://notcorp.example/", "proxy"),
    ("http://10.1.2.3/", "direct"),
    ("https://10.255.255.255:8443/", "direct"),
    ("http://11.0.0.1/", "proxy"),
    ("http://192.168.1.7/", "direct"),
    ("http://192.168.1.8/", "proxy"),
    ("http://[fd00::1]/", "direct"),
    ("https://[fd12:3456::7]:8443/", "direct"),
    ("http://[fe80::1]/", "proxy"),
    ("http://[2001:db8::5]/", "direct"),
    ("http://[2001:db9::5]/", "proxy"),
    ("http://[::ffff:10.1.2.3]/", "proxy"),  # a v6 literal is not in an IPv4 network
    ("http://wiki/", "direct"),  # <local>
    ("http://wiki.:8080/", "direct"),  # <local>, trailing dot
    ("http://example.com/", "proxy"),
    ("http://10.0.0.1.nip.example/", "proxy"),  # a name, not an address
    ("https://blocked.example/", "block"),
    ("http://tracker.ads.example/", "block"),
    ("http://ads.example/", "proxy"),
    ("http://intranet.example.evil.example/", "proxy"),
]


def url_host(url):
    """The host as the URL writes it (case kept, no brackets), as browsers hand it to the PAC."""
    rest = url.split("://", 1)[1]
    hostport = rest.split("/", 1)[0].split("?", 1)[0]
    if hostport.startswith("["):
        return hostport[1:hostport.index("]")]
    return hostport.rsplit(":", 1)[0] if ":" in hostport else hostport


class Agent:
    def __init__(self, tmp):
        self.tmp = tmp
        self.bus_pid = None
        self.proc = None
        self.no_system_bus = f"unix:path={tmp}/no-system-bus"
        self.log_path = os.path.join(tmp, "agent.log")

    def start_bus(self):
        conf = os.path.join(self.tmp, "bus.conf")
        with open(conf, "w") as f:
            f.write(f"""<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig>
  <type>session</type>
  <listen>unix:dir={self.tmp}</listen>
  <auth>EXTERNAL</auth>
  <policy context="default">
    <allow user="*"/>
    <allow send_destination="*" eavesdrop="true"/>
    <allow eavesdrop="true"/>
    <allow own="*"/>
  </policy>
</busconfig>
""")
        out = subprocess.run(["dbus-daemon", f"--config-file={conf}", "--fork",
                              "--print-address=1", "--print-pid=1"],
                             capture_output=True, text=True, check=True).stdout.split()
        self.bus_address, self.bus_pid = out[0], int(out[1])

    def ctl(self, *args):
        env = dict(os.environ, DBUS_SESSION_BUS_ADDRESS=self.bus_address,
                   DBUS_SYSTEM_BUS_ADDRESS=self.no_system_bus, LC_ALL="C")
        return subprocess.run([CTL, "--session", *args], capture_output=True, text=True, env=env)

    def start(self, config):
        for d in ("home", "config", "state", "runtime", "managed.d"):
            os.makedirs(os.path.join(self.tmp, d), mode=0o700, exist_ok=True)
        env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "HOME": f"{self.tmp}/home", "XDG_CONFIG_HOME": f"{self.tmp}/config",
            "XDG_STATE_HOME": f"{self.tmp}/state", "XDG_RUNTIME_DIR": f"{self.tmp}/runtime",
            "DBUS_SESSION_BUS_ADDRESS": self.bus_address,
            "DBUS_SYSTEM_BUS_ADDRESS": self.no_system_bus,
            "PH_SECRET_STORE": "file", "G_DEBUG": os.environ.get("G_DEBUG", "fatal-criticals"),
        }
        for v in ("ASAN_OPTIONS", "UBSAN_OPTIONS", "LSAN_OPTIONS"):
            if v in os.environ:
                env[v] = os.environ[v]
        self.log = open(self.log_path, "ab")
        self.proc = subprocess.Popen(
            [AGENT, "--session", "--config", config, "--managed-dir", f"{self.tmp}/managed.d"],
            env=env, stdin=subprocess.DEVNULL, stdout=self.log, stderr=self.log)

    def wait_listening(self, port):
        return wait_listening(self.proc, port)

    def access_lines(self):
        with open(self.log_path, errors="replace") as f:
            return [l for l in f if " access client=" in l]

    def stop(self):
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if self.bus_pid:
            try:
                os.kill(self.bus_pid, signal.SIGTERM)
            except ProcessLookupError:
                pass


def check_pac_table(agent, pac, listen_port):
    proxy = f"PROXY 127.0.0.1:{listen_port}"
    pacparser.init()
    try:
        pacparser.parse_pac_string(pac)
        for url, want in TABLE:
            engine = pacparser.find_proxy(url, url_host(url))
            r = agent.ctl("route", "--json", url)
            try:
                got = json.loads(r.stdout)
            except ValueError:
                got = {"route": f"(pinholectl exited {r.returncode}: {r.stderr.strip()})"}
            route = got.get("route")
            agree = (engine == "DIRECT") == (route == "direct") and engine in ("DIRECT", proxy)
            ok(agree and route == want,
               f"{url}: pacparser says {engine}, pinholectl route says {route} (want {want})",
               f"pinholectl: {r.stdout.strip()} {r.stderr.strip()}")
    finally:
        pacparser.cleanup()


def check_ctl_route(agent):
    r = agent.ctl("route", "https://wiki.corp.example/")
    ok(r.returncode == 0 and r.stdout == "direct  (direct list: .corp.example)\n",
       "pinholectl route prints the route and the rule that matched", repr(r.stdout), r.stderr)
    r = agent.ctl("route", "--json", "blocked.example:443")
    d = json.loads(r.stdout or "{}")
    ok(d.get("route") == "block" and d.get("reason") == "block-list"
       and d.get("rule") == "blocked.example" and "blocked.example" in d.get("description", ""),
       "host:port is a CONNECT; --json gives route, reason, rule and description", r.stdout)
    r = agent.ctl("route", "--json", "[fd00::7]:22")
    ok(json.loads(r.stdout or "{}").get("rule") == "fd00::/8",
       "[v6]:port is routed by its address", r.stdout, r.stderr)
    r = agent.ctl("route", "example.com:443")
    ok(r.returncode == 0 and r.stdout.startswith("proxy  (no rule matched"),
       "an unmatched name goes to the cloud proxy", r.stdout, r.stderr)
    r = agent.ctl("route", "ftp://example.com/")
    ok(r.returncode == 1 and "is not a target" in r.stderr and r.stdout == "",
       "a target of another form fails (exit 1) and says what it takes", r.returncode, r.stderr)


def chromium_fetch(tmp, chromium, headless, pac_url, url, extra=()):
    profile = tempfile.mkdtemp(prefix="chromium-", dir=tmp)
    cmd = [chromium, headless, "--no-sandbox", "--disable-gpu", "--no-first-run",
           "--disable-background-networking", "--disable-component-update", "--disable-sync",
           "--disable-default-apps", "--disable-extensions", "--no-default-browser-check",
           f"--user-data-dir={profile}", f"--proxy-pac-url={pac_url}", *extra,
           "--dump-dom", url]
    env = dict(os.environ, HOME=profile)
    env.pop("DISPLAY", None)
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=90, env=env,
                       stdin=subprocess.DEVNULL)
    return r


def check_chromium(agent, tmp, cloud, listen_port):
    chromium = shutil.which("chromium")
    if chromium is None:
        ok(not CI, "chromium found (CI=true: a missing tool is a failure) # SKIP not installed")
        return
    origin = cloud["PH_ORIGIN_HTTP_PORT"]
    pac_url = f"http://127.0.0.1:{listen_port}/proxy.pac"
    # Chromium never asks a PAC for loopback names and addresses, so the two pages carry names:
    # one under .corp.example that Chromium itself resolves to the origin (the mapping is
    # Chromium's own resolver), one that only Squid knows (its hosts_file).
    direct_url = f"http://app.corp.example:{origin}/headers"
    proxied_url = f"http://origin.pinhole.test:{origin}/headers"
    rules = ["--host-resolver-rules=MAP app.corp.example 127.0.0.1, "
             "MAP origin.pinhole.test ~NOTFOUND"]
    headless = None
    for mode in ("--headless=new", "--headless"):
        r = chromium_fetch(tmp, chromium, mode, pac_url, direct_url, rules)
        if r.returncode == 0 and "GET /headers" in r.stdout:
            headless = mode
            break
        print(f"# chromium {mode}: exit {r.returncode}", flush=True)
        for line in (r.stderr.splitlines()[-8:] + r.stdout.splitlines()[-4:]):
            print(f"#   {line}", flush=True)
    ok(headless is not None, "headless Chromium set to the agent's PAC loads the direct page")
    if headless is None:
        return
    lines = agent.access_lines()
    ok(not any("app.corp.example" in l for l in lines),
       "a direct target: Chromium does not ask the agent at all", *lines[-5:])
    ok("Via:" not in r.stdout and f"Host: app.corp.example:{origin}" in r.stdout,
       "the direct page came from the origin without a proxy (no Via)", r.stdout[-600:])
    with open(cloud["PH_CLOUD_SQUID_ACCESS_LOG"], errors="replace") as f:
        squid_before = f.read()
    ok("app.corp.example" not in squid_before, "Squid never saw the direct target")

    r = chromium_fetch(tmp, chromium, headless, pac_url, proxied_url, rules)
    ok(r.returncode == 0 and f"Host: origin.pinhole.test:{origin}" in r.stdout,
       "the proxied page loads through the agent and the cloud proxy",
       r.stdout[-600:], *r.stderr.splitlines()[-8:])
    ok("Via:" in r.stdout, "the proxied page came through Squid (Via)", r.stdout[-600:])
    lines = [l for l in agent.access_lines() if "origin.pinhole.test" in l]
    ok(any("route=proxy" in l and "status=200" in l for l in lines),
       "the agent logged the proxied page with route=proxy", *lines)
    with open(cloud["PH_CLOUD_SQUID_ACCESS_LOG"], errors="replace") as f:
        squid = f.read()
    ok(f"origin.pinhole.test:{origin}/headers" in squid, "Squid logged the proxied page",
       squid[-800:])
    # Everything else Chromium asked for went to the agent by name and was refused there; the
    # agent's warm connections that closed unused leave lines without a request.
    foreign = [l for l in squid.splitlines()
               if "origin.pinhole.test" not in l and "transaction-end-before-headers" not in l]
    ok(not foreign, "Squid carried nothing but the proxied page", *foreign[:5])


def main():
    if not AGENT or not os.access(AGENT, os.X_OK) or not CTL or not os.access(CTL, os.X_OK):
        bail("PH_AGENT and PINHOLECTL must name the built binaries")
    for tool, path in (("dbus-daemon", shutil.which("dbus-daemon")),
                       ("stunnel4", os.environ.get("PH_STUNNEL", "/usr/bin/stunnel4")),
                       ("squid", os.environ.get("PH_SQUID", "/usr/sbin/squid"))):
        if not path or not os.access(path, os.X_OK):
            skip_all(f"{tool} not found")
    if pacparser is None:
        skip_all("pacparser (python3-pacparser) not found")

    tmp = tempfile.mkdtemp(prefix="pinhole-pac.")
    os.chmod(tmp, 0o711)  # Squid runs as proxy when we are root
    agent = Agent(tmp)
    cloud_dir = os.path.join(tmp, "cloud")
    try:
        agent.start_bus()
        hosts = os.path.join(tmp, "squid-hosts")
        with open(hosts, "w") as f:
            f.write("127.0.0.1 origin.pinhole.test\n")
        os.chmod(hosts, 0o644)
        env = dict(os.environ, PH_CLOUD_ORIGIN="1", PH_CLOUD_OWNER_PID=str(os.getpid()),
                   PH_CLOUD_SQUID_HOSTS=hosts)
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
                k, _, v = line.rstrip("\n").partition("=")
                cloud[k] = v
        listen_port = free_port()
        config = os.path.join(tmp, "system.conf")
        subprocess.run(["bash", CLOUD, "agent-config", cloud_dir, config, str(listen_port)],
                       check=True)
        # Three listen addresses: the PAC must name the one each client reached (in gateway
        # mode, the address the other machines see).
        with open(config) as f:
            text = f.read()
        text = text.replace(f"address=127.0.0.1:{listen_port}",
                            f"address=127.0.0.1:{listen_port};127.0.0.2:{listen_port};"
                            f"[::1]:{listen_port}")
        with open(config, "w") as f:
            f.write(text + f"\n[route]\ndirect={DIRECT}\nblock={BLOCK}\n")
        agent.start(config)
        if not agent.wait_listening(listen_port):
            print("".join("# " + l for l in open(agent.log_path, errors="replace")))
            bail("the agent did not listen")

        with urllib.request.build_opener(urllib.request.ProxyHandler({})).open(
                f"http://127.0.0.1:{listen_port}/proxy.pac", timeout=10) as resp:
            ctype = resp.headers.get("Content-Type")
            pac = resp.read().decode()
        ok(ctype == "application/x-ns-proxy-autoconfig" and "FindProxyForURL" in pac,
           "the agent serves its PAC at /proxy.pac", ctype)
        check_pac_table(agent, pac, listen_port)
        for host, named in (("127.0.0.2", f"127.0.0.2:{listen_port}"),
                            ("[::1]", f"[::1]:{listen_port}")):
            req = urllib.request.Request(f"http://{host}:{listen_port}/wpad.dat", method="GET")
            with urllib.request.build_opener(urllib.request.ProxyHandler({})).open(
                    req, timeout=10) as resp:
                other = resp.read().decode()
            ok(f'return "PROXY {named}";' in other and f"127.0.0.1:{listen_port}" not in other,
               f"/wpad.dat fetched from {host} names the agent at {named}", other[-200:])
        check_ctl_route(agent)
        check_chromium(agent, tmp, cloud, listen_port)
        # Off, nothing listens, and the answer comes from the configuration in force.
        r = agent.ctl("disable")
        ok(r.returncode == 0, "pinholectl disable", r.stderr)
        r = agent.ctl("route", "--json", "http://build.dev.example/")
        d = json.loads(r.stdout or "{}")
        ok(d.get("route") == "direct" and d.get("rule") == "*.dev.example",
           "while off, pinholectl route answers from the configuration", r.stdout, r.stderr)
        ok(agent.proc.poll() is None, "the agent is still running")
    finally:
        agent.stop()
        subprocess.run(["bash", CLOUD, "stop", cloud_dir], capture_output=True)
        if failed() == 0 and not os.environ.get("PH_KEEP_TMP"):
            shutil.rmtree(tmp, ignore_errors=True)
        else:
            print(f"# files kept in {tmp}", flush=True)
    return finish()


if __name__ == "__main__":
    sys.exit(main())

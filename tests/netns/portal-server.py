#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0-or-later
# portal-server.py: a simulated captive portal for tests/netns/test-portal.sh. Until someone
# signs in (POST /login), every request but /login is redirected (302) to /login, the check URL
# included; once signed in, /generate_204 answers 204 and the command given as ON_LOGIN runs (the
# test's hook that makes the cloud proxy reachable). POST /logout starts over.
#
#   portal-server.py ADDRESS PORT ON_LOGIN

import http.server
import subprocess
import sys

address, port, on_login = sys.argv[1], int(sys.argv[2]), sys.argv[3]
state = {"signed_in": False}

LOGIN_PAGE = b"<html><body><form method=post action=/login>Sign in</form></body></html>\n"


class Portal(http.server.BaseHTTPRequestHandler):
    def answer(self, status, body=b"", headers=()):
        self.send_response(status)
        for name, value in headers:
            self.send_header(name, value)
        if status != 204:
            self.send_header("Content-Type", "text/html")
            self.send_header("Content-Length", str(len(body)))
        self.send_header("Connection", "close")
        self.end_headers()
        if status != 204:
            self.wfile.write(body)

    def do_GET(self):
        if self.path.startswith("/login"):
            self.answer(200, LOGIN_PAGE)
        elif not state["signed_in"]:
            self.answer(302, b"", [("Location", "/login")])
        elif self.path.startswith("/generate_204"):
            self.answer(204)
        else:
            self.answer(200, b"signed in\n")

    def do_POST(self):
        length = int(self.headers.get("Content-Length") or 0)
        self.rfile.read(length)
        if self.path.startswith("/login"):
            if not state["signed_in"]:
                subprocess.run(on_login, shell=True, check=True)
            state["signed_in"] = True
            self.answer(200, b"welcome\n")
        elif self.path.startswith("/logout"):
            state["signed_in"] = False
            self.answer(200, b"bye\n")
        else:
            self.answer(404, b"no\n")

    def log_message(self, fmt, *args):
        sys.stderr.write("portal: " + (fmt % args) + "\n")


http.server.ThreadingHTTPServer((address, port), Portal).serve_forever()

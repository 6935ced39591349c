#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0-or-later
# fake-polkit.py DIR: a stand-in for polkit's authority on the test's private system bus
# (test-settings-wait.sh): CheckAuthorization answers after 2 s, as if a person were typing an
# administrator's password, with what DIR/polkit-mode says ("allow" or "deny"), and appends
# the action and the AllowUserInteraction flag it was asked with to DIR/polkit-calls.
import os, sys
from gi.repository import Gio, GLib

DIR = sys.argv[1]
XML = """<node><interface name="org.freedesktop.PolicyKit1.Authority">
<method name="CheckAuthorization">
  <arg type="(sa{sv})" direction="in"/><arg type="s" direction="in"/>
  <arg type="a{ss}" direction="in"/><arg type="u" direction="in"/><arg type="s" direction="in"/>
  <arg type="(bba{ss})" direction="out"/>
</method></interface></node>"""


def answer(invocation, action, flags):
    with open(os.path.join(DIR, "polkit-mode")) as f:
        allow = f.read().strip() == "allow"
    with open(os.path.join(DIR, "polkit-calls"), "a") as f:
        f.write("%s interactive=%d\n" % (action, flags & 1))
    invocation.return_value(GLib.Variant("((bba{ss}))", ((allow, False, {}),)))
    return GLib.SOURCE_REMOVE


def on_call(conn, sender, path, iface, method, params, invocation):
    _subject, action, _details, flags, _cancel = params.unpack()
    GLib.timeout_add(2000, answer, invocation, action, flags)


def on_bus(conn, name):
    info = Gio.DBusNodeInfo.new_for_xml(XML).interfaces[0]
    conn.register_object("/org/freedesktop/PolicyKit1/Authority", info, on_call, None, None)


Gio.bus_own_name(Gio.BusType.SYSTEM, "org.freedesktop.PolicyKit1", Gio.BusNameOwnerFlags.NONE,
                 on_bus, None, lambda *a: sys.exit("could not own org.freedesktop.PolicyKit1"))
GLib.MainLoop().run()

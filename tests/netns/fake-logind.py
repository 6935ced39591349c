# SPDX-License-Identifier: GPL-2.0-or-later
# fake-logind.py: logind's PrepareForSleep for tests/netns/test-netchange.sh resume, on a private
# system bus (DBUS_SYSTEM_BUS_ADDRESS): owns org.freedesktop.login1, prints "owned", then for each
# line on stdin ("sleep" or "wake") emits PrepareForSleep(true or false) and prints "sent".
import sys

import gi

gi.require_version("Gio", "2.0")
from gi.repository import Gio, GLib  # noqa: E402

bus = Gio.bus_get_sync(Gio.BusType.SYSTEM, None)
(reply,) = bus.call_sync("org.freedesktop.DBus", "/org/freedesktop/DBus",
                         "org.freedesktop.DBus", "RequestName",
                         GLib.Variant("(su)", ("org.freedesktop.login1", 4)),
                         GLib.VariantType("(u)"), Gio.DBusCallFlags.NONE, -1, None).unpack()
if reply != 1:
    print("could not own org.freedesktop.login1:", reply, flush=True)
    sys.exit(1)
print("owned", flush=True)
for line in sys.stdin:
    going = line.strip() == "sleep"
    bus.emit_signal(None, "/org/freedesktop/login1", "org.freedesktop.login1.Manager",
                    "PrepareForSleep", GLib.Variant("(b)", (going,)))
    bus.flush_sync(None)
    print("sent", flush=True)

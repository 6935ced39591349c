#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0-or-later
# sni-menu.py list|click LABEL: what a StatusNotifierItem host does with Pinhole's item, on the
# session bus: asks the watcher (org.kde.StatusNotifierWatcher) for the registered items, finds
# the one whose Id is pinhole-tray, reads its Menu over com.canonical.dbusmenu (GetLayout), and
# either prints the menu's labels (list, one a line, mnemonics removed) or sends "clicked" to
# the item labelled LABEL (click), as a host does when the user picks it.
import sys
from gi.repository import Gio, GLib

bus = Gio.bus_get_sync(Gio.BusType.SESSION, None)


def call(name, path, iface, method, args, reply):
    return bus.call_sync(name, path, iface, method, args, GLib.VariantType(reply),
                         Gio.DBusCallFlags.NONE, 5000, None).unpack()


def prop(name, path, iface, key):
    return call(name, path, "org.freedesktop.DBus.Properties", "Get",
                GLib.Variant("(ss)", (iface, key)), "(v)")[0]


items = prop("org.kde.StatusNotifierWatcher", "/StatusNotifierWatcher",
             "org.kde.StatusNotifierWatcher", "RegisteredStatusNotifierItems")


def item_paths(name, path="/"):
    """The objects of NAME that implement org.kde.StatusNotifierItem, found by introspection
    as hosts do when the watcher lists a bare bus name (libayatana-appindicator registers its
    name, and its item is not at /StatusNotifierItem)."""
    xml = call(name, path, "org.freedesktop.DBus.Introspectable", "Introspect", None, "(s)")[0]
    node = Gio.DBusNodeInfo.new_for_xml(xml)
    if any(i.name == "org.kde.StatusNotifierItem" for i in node.interfaces):
        yield path
    for child in node.nodes:
        yield from item_paths(name, path.rstrip("/") + "/" + child.path)


found = None
for entry in items:
    # "NAME/PATH", or a bare NAME.
    name, slash, path = entry.partition("/")
    for path in (["/" + path] if slash else item_paths(name)):
        try:
            if prop(name, path, "org.kde.StatusNotifierItem", "Id") == "pinhole-tray":
                found = (name, path)
        except GLib.Error:
            pass
if found is None:
    sys.exit("no pinhole-tray item among %r" % (items,))
name, path = found
menu = prop(name, path, "org.kde.StatusNotifierItem", "Menu")
_revision, layout = call(name, menu, "com.canonical.dbusmenu", "GetLayout",
                         GLib.Variant("(iias)", (0, -1, [])), "(u(ia{sv}av))")


def walk(node):
    ident, props, children = node
    yield ident, props
    for child in children:
        yield from walk(child)


entries = [(i, p.get("label", "").replace("_", ""), p.get("visible", True))
           for i, p in walk(layout) if "label" in p]
if sys.argv[1] == "list":
    for _i, label, visible in entries:
        if visible:
            print(label)
    sys.exit(0)
want = sys.argv[2]
for ident, label, _visible in entries:
    if label == want:
        call(name, menu, "com.canonical.dbusmenu", "Event",
             GLib.Variant("(isvu)", (ident, "clicked", GLib.Variant("i", 0), 0)), "()")
        print("clicked %d %s" % (ident, label))
        sys.exit(0)
sys.exit("no item %r in %r" % (want, [l for _i, l, _v in entries]))

/* SPDX-License-Identifier: GPL-2.0-or-later */
/* ph-win-bypass.h: the one bypass syntax of Windows' two proxy settings, WinINet's (the desktop
 * proxy, ph-system-proxy-wininet.c) and WinHTTP's (the machine-wide one, ph-machine-proxy.c):
 * ';'-separated wildcard patterns matched, case-insensitively, against the host as the URL
 * writes it ("[v6]" in brackets). Portable, so that it is built and tested on Linux too. */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

/* What a plain name ("corp.example") covers in the list it comes from. */
typedef enum
{
  PH_WIN_BYPASS_NAME_EXACT,     /* the name alone: [route] direct's reading (ph-host-list.c) */
  PH_WIN_BYPASS_NAME_AND_BELOW, /* the name and every name under it: the desktop's (GNOME,
                                 * GLib's resolver) reading of "x", ".x" and "*.x" alike */
} PhWinBypassNames;

/* Appends the patterns that say @entry to @out (strings it frees; each pattern once, lower
 * case): "<local>" and wildcard patterns as they are; ".x" as "x" and "*.x"; "*.x" as it is, or
 * also "x" with PH_WIN_BYPASS_NAME_AND_BELOW; a plain name per @names; an address as the URL
 * writes it; an IPv4 network as one "a.b.*" per value of its last partial byte (172.16.0.0/12
 * is 172.16.* to 172.31.*). FALSE, and nothing appended, when the syntax cannot say it: an IPv6
 * network shorter than /128, /0 ("*" would take every name too), a name with a '/' or a ':'. */
gboolean ph_win_bypass_add (GPtrArray *out, const char *entry, PhWinBypassNames names);

G_END_DECLS

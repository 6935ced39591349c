/* SPDX-License-Identifier: GPL-2.0-or-later */
/* ph-system-proxy.h: the desktop's proxy setting pointed at Pinhole and always put back:
 * GNOME's org.gnome.system.proxy and KDE's kioslaverc on Linux, WinINet's per-user settings on
 * Windows, with a journal of the previous values written before any change. */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

typedef struct _PhSystemProxy PhSystemProxy;

/* @journal_path: e.g. $XDG_STATE_HOME/pinhole/system-proxy.journal. Backends in use are found
 * at run time: GNOME when the org.gnome.system.proxy schema is installed, KDE when kwriteconfig6
 * or kwriteconfig5 is in PATH (both may apply); on Windows always WinINet, for the LAN and every
 * dial-up/VPN connection. Nothing is read or changed yet. */
PhSystemProxy *ph_system_proxy_new (const char *journal_path);

/* Frees @sp without touching the setting: a caller that quits calls disable() first. */
void ph_system_proxy_free (PhSystemProxy *sp);

/* Names of the backends in use, e.g. "gnome", "kde"; empty when none. Owned by @sp. */
const char *const *ph_system_proxy_get_backends (PhSystemProxy *sp);

/* If a journal is left from a run that did not restore (crash, kill -9), restores from it and
 * removes it. TRUE with *restored = FALSE when there was none. A journal that cannot be read is
 * moved aside to @journal_path.corrupt (so that the next start is not blocked) and reported. */
gboolean ph_system_proxy_recover (PhSystemProxy *sp, gboolean *restored, GError **error);

/* Points the system proxy at @host:@port for http and https, with @bypass (hosts/CIDRs,
 * e.g. localhost, 127.0.0.0/8, ::1, intranet names) as the ignore list. Writes the journal
 * (previous values AND the values it sets) durably BEFORE changing anything. Calling it again
 * while enabled updates the values and keeps the original previous values.
 *
 * Fails, with nothing changed, when no backend is in use, when a key is locked by the
 * administrator, or when the journal cannot be written. If a write fails half-way, what was
 * already changed is put back before it returns. */
gboolean ph_system_proxy_enable (PhSystemProxy *sp, const char *host, guint port,
                                 const char *const *bypass, GError **error);

/* Like enable(), but points the system proxy at the PAC file at @pac_url (an http:// URL,
 * e.g. the agent's http://127.0.0.1:3128/proxy.pac): GNOME's mode 'auto' with autoconfig-url,
 * KDE's ProxyType 2 with "Proxy Config Script", WinINet's PROXY_TYPE_AUTO_PROXY_URL with
 * INTERNET_PER_CONN_AUTOCONFIG_URL. The journal records the mode and the same previous values:
 * switching between the two while enabled keeps the original ones, and disable() puts back
 * every key either mode set. */
gboolean ph_system_proxy_enable_pac (PhSystemProxy *sp, const char *pac_url,
                                     const char *const *bypass, GError **error);

/* Puts back the previous values of every key whose current value is still what Pinhole set;
 * keys changed by someone else meanwhile are left as they are. Removes the journal.
 * TRUE when there was nothing to put back. On failure the journal is kept, so that a later
 * disable() or recover() tries again. */
gboolean ph_system_proxy_disable (PhSystemProxy *sp, GError **error);

/* TRUE from a successful enable() until a successful disable() or recover(). */
gboolean ph_system_proxy_is_enabled (PhSystemProxy *sp);

G_DEFINE_AUTOPTR_CLEANUP_FUNC (PhSystemProxy, ph_system_proxy_free)

G_END_DECLS

/* SPDX-License-Identifier: GPL-2.0-or-later */
/* ph-tray-prefs.h: the tray's own preferences, in the user's tray.conf (never the agent's
 * configuration): whether the tray sets the system proxy while the tunnel is on, and the hosts
 * that bypass it. */
#pragma once

#include <gio/gio.h>

G_BEGIN_DECLS

typedef struct _PhTrayPrefs PhTrayPrefs;

/* The user's tray.conf, read once; missing or unreadable, the defaults. */
PhTrayPrefs *ph_tray_prefs_new (void);
void ph_tray_prefs_free (PhTrayPrefs *prefs);

/* "system-proxy" (default: TRUE). */
gboolean ph_tray_prefs_get_set_system_proxy (PhTrayPrefs *prefs);
/* "bypass": hosts and networks the system proxy leaves alone (default: none). */
GStrv ph_tray_prefs_dup_bypass (PhTrayPrefs *prefs);
/* Sets both and writes the file, keeping its comments. */
gboolean ph_tray_prefs_save (PhTrayPrefs *prefs, gboolean set_system_proxy,
                             const char *const *bypass, GError **error);

G_DEFINE_AUTOPTR_CLEANUP_FUNC (PhTrayPrefs, ph_tray_prefs_free)

G_END_DECLS

/* SPDX-License-Identifier: GPL-2.0-or-later */
/* ph-tray-prefs.h: the tray's own preferences, in the user's tray.conf (never the agent's
 * configuration): whether the tray sets the system proxy while the tunnel is on. The hosts
 * that go direct are the agent's [route] direct; an older tray.conf's bypass list is moved
 * there once (ph_tray_prefs_migrate_bypass()). */
#pragma once

#include <gio/gio.h>

#include "ph-agent1-generated.h"

G_BEGIN_DECLS

typedef struct _PhTrayPrefs PhTrayPrefs;

/* The user's tray.conf, read once; missing or unreadable, the defaults. */
PhTrayPrefs *ph_tray_prefs_new (void);
void ph_tray_prefs_free (PhTrayPrefs *prefs);

/* "system-proxy" (default: TRUE). */
gboolean ph_tray_prefs_get_set_system_proxy (PhTrayPrefs *prefs);
/* "bypass", the list older trays kept here: hosts and networks that go direct (default: none).
 * Still applied to the system proxy until it is moved to the agent's [route] direct. */
GStrv ph_tray_prefs_dup_bypass (PhTrayPrefs *prefs);
/* Sets "system-proxy" and writes the file, keeping its comments. */
gboolean ph_tray_prefs_save (PhTrayPrefs *prefs, gboolean set_system_proxy, GError **error);

/* Moves "bypass" to @agent's route.direct once: when tray.conf has one, and route.direct is
 * empty and not locked, sets route.direct to it and removes it from tray.conf. Left in
 * tray.conf (and still applied) when route.direct has a value or is locked (the agent's list
 * wins and is the administrator's business), or when the agent refuses the change. */
void ph_tray_prefs_migrate_bypass (PhTrayPrefs *prefs, PhAgent1 *agent);

G_DEFINE_AUTOPTR_CLEANUP_FUNC (PhTrayPrefs, ph_tray_prefs_free)

G_END_DECLS

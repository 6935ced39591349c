/* SPDX-License-Identifier: GPL-2.0-or-later */
/* ph-tray-icon.h: the icon in the panel: an Ayatana AppIndicator
 * (StatusNotifierItem) where a host is running, GtkStatusIcon otherwise. */
#pragma once

#include <gtk/gtk.h>

G_BEGIN_DECLS

typedef struct _PhTrayIcon PhTrayIcon;

/* @menu is shown on click (both kinds) and taken over. @prefer_indicator:
 * use the indicator when a StatusNotifierWatcher owns its name. */
PhTrayIcon *ph_tray_icon_new (GtkMenu *menu, gboolean prefer_indicator);
void ph_tray_icon_free (PhTrayIcon *icon);
void ph_tray_icon_set (PhTrayIcon *icon, const char *icon_name, const char *tooltip);
/* Opens the menu at the icon (status icon) or under the pointer. */
void ph_tray_icon_popup (PhTrayIcon *icon);
/* "appindicator" or "status-icon". */
const char *ph_tray_icon_get_kind (PhTrayIcon *icon);
const char *ph_tray_icon_get_icon_name (PhTrayIcon *icon);

G_END_DECLS

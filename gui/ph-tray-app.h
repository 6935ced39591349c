/* SPDX-License-Identifier: GPL-2.0-or-later */
/* ph-tray-app.h: pinhole-tray, a single-instance GtkApplication: the icon
 * and menu that follow the agent's state, notifications, the settings
 * window, and the system proxy that it sets and always puts back. */
#pragma once

#include <gtk/gtk.h>

#include "ph-agent1-generated.h"
#include "ph-tray-prefs.h"

G_BEGIN_DECLS

#define PH_TYPE_TRAY_APP (ph_tray_app_get_type ())
G_DECLARE_FINAL_TYPE (PhTrayApp, ph_tray_app, PH, TRAY_APP, GtkApplication)

PhTrayApp *ph_tray_app_new (void);
/* Talks to the agent on @bus_type only, as --session / --system do. */
PhTrayApp *ph_tray_app_new_for_bus (GBusType bus_type);

/* The agent, or NULL while it is not on the bus. */
PhAgent1 *ph_tray_app_get_agent (PhTrayApp *app);
/* The tray's own preferences (tray.conf). */
PhTrayPrefs *ph_tray_app_get_prefs (PhTrayApp *app);

/* For tests: the icon shown, the menu's status line, the settings window. */
const char *ph_tray_app_get_icon_name (PhTrayApp *app);
const char *ph_tray_app_get_status_text (PhTrayApp *app);
GtkWidget *ph_tray_app_get_menu (PhTrayApp *app);
GtkWindow *ph_tray_app_get_settings_window (PhTrayApp *app);
GtkWindow *ph_tray_app_get_diagnose_window (PhTrayApp *app);
GtkWindow *ph_tray_app_get_connections_window (PhTrayApp *app);
guint ph_tray_app_get_notification_count (PhTrayApp *app);

/* For tests: shows @state (and @portal_url, for "captive-portal") as if the agent said so, in
 * the icon, the status text and the notifications; NULL goes back to the agent's own state.
 * The agent's route to a captive portal cannot be made on a test machine's loopback. */
void ph_tray_app_show_state (PhTrayApp *app, const char *state, const char *portal_url);
/* How often the sign-in page was opened (app.open-portal). */
guint ph_tray_app_get_portal_opened (PhTrayApp *app);

/* One cloud proxy's health as the "Cloud proxies" submenu says it, from one dictionary of the
 * agent's Upstreams ("a.example:443 — down, retry at 10:42: ..."). */
char *ph_tray_app_format_upstream (GVariant *upstream);

G_END_DECLS

/* SPDX-License-Identifier: GPL-2.0-or-later */
/* ph-settings-window.h: the settings window (ph-settings-window.ui):
 * values read from the agent, changes sent through SetSetting and
 * SetCredentials, locked keys greyed out, the agent's own refusals shown
 * in place. */
#pragma once

#include <gtk/gtk.h>

#include "ph-agent1-generated.h"
#include "ph-tray-prefs.h"

G_BEGIN_DECLS

#define PH_TYPE_SETTINGS_WINDOW (ph_settings_window_get_type ())
G_DECLARE_FINAL_TYPE (PhSettingsWindow, ph_settings_window, PH, SETTINGS_WINDOW, GtkWindow)

/* @prefs: the tray's preferences, which outlive the window (the application owns both). */
PhSettingsWindow *ph_settings_window_new (GtkApplication *application, PhTrayPrefs *prefs);
/* The agent the window reads from and writes to; NULL while there is none. The application
 * sets it whenever the agent comes or goes, before it asks for a refresh. */
void ph_settings_window_set_agent (PhSettingsWindow *self, PhAgent1 *agent);
/* Reads every value from the agent again. */
void ph_settings_window_refresh (PhSettingsWindow *self);
/* Sends what changed, one asynchronous call after another, each allowed to have polkit ask
 * for a password; meanwhile the buttons are insensitive and, once a call takes a moment, a
 * spinner says that the window waits for authorization. Then "applied", or the agent's
 * message shown in place and the error in _finish. */
void ph_settings_window_apply (PhSettingsWindow *self, GAsyncReadyCallback callback,
                               gpointer user_data);
gboolean ph_settings_window_apply_finish (PhSettingsWindow *self, GAsyncResult *result,
                                          GError **error);
/* For tests: whether the spinner and "Waiting for authorization…" show. */
gboolean ph_settings_window_is_waiting (PhSettingsWindow *self);
/* For tests: the widget that edits @key ("upstream.host", ...), or NULL. */
GtkWidget *ph_settings_window_get_widget (PhSettingsWindow *self, const char *key);
const char *ph_settings_window_get_message (PhSettingsWindow *self);

G_END_DECLS

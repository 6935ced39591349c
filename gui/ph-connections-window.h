/* SPDX-License-Identifier: GPL-2.0-or-later */
/* ph-connections-window.h: the "Connections…" window (ph-connections-window.ui): what goes
 * through the agent now, one row per open client connection (client, target, route, cloud
 * proxy, bytes each way, age), asked of the agent once a second while the window is shown and
 * never while it is not. */
#pragma once

#include <gtk/gtk.h>

#include "ph-agent1-generated.h"

G_BEGIN_DECLS

#define PH_TYPE_CONNECTIONS_WINDOW (ph_connections_window_get_type ())
G_DECLARE_FINAL_TYPE (PhConnectionsWindow, ph_connections_window, PH, CONNECTIONS_WINDOW, GtkWindow)

PhConnectionsWindow *ph_connections_window_new (GtkApplication *application);
/* The agent to ask; NULL while there is none (the list is then empty and says why). */
void ph_connections_window_set_agent (PhConnectionsWindow *self, PhAgent1 *agent);

/* For tests, read from what is shown: the rows; the text of @column (0 client, 1 target, 2 route,
 * 3 cloud proxy, 4 sent, 5 received, 6 age) of row @row (NULL past the end); the line above the
 * list; whether the once-a-second refresh exists now; how many answers the list has shown. */
guint ph_connections_window_get_n_rows (PhConnectionsWindow *self);
char *ph_connections_window_dup_cell (PhConnectionsWindow *self, guint row, guint column);
const char *ph_connections_window_get_summary (PhConnectionsWindow *self);
gboolean ph_connections_window_is_refreshing (PhConnectionsWindow *self);
guint ph_connections_window_get_n_refreshes (PhConnectionsWindow *self);

G_END_DECLS

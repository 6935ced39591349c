/* SPDX-License-Identifier: GPL-2.0-or-later */
/* ph-client-private.h: between ph-client.c and its per-platform half (ph-client-bus.c on Linux,
 * ph-client-pipe-win32.c on Windows), which finds the agent where no address was given. */
#pragma once

#include "ph-client.h"

G_BEGIN_DECLS

/* Per platform: the agent where it runs by default (see ph_client_connect_sync). */
GDBusConnection *ph_client_connect_default (GBusType bus_type, const char **name,
                                            GCancellable *cancellable, GError **error);

/* PH_CLIENT_ERROR_UNREACHABLE: "WHAT: CAUSE", without CAUSE's D-Bus error name. */
void ph_client_set_unreachable (GError **error, GError *cause, const char *what);

/* Whether @connection's bus has the agent, or can start it (ListActivatableNames). Fails only
 * when the bus cannot be asked at all. */
gboolean ph_client_bus_has_agent (GDBusConnection *connection, int timeout_msec,
                                  gboolean *has_owner, GError **error);

G_END_DECLS

/* SPDX-License-Identifier: GPL-2.0-or-later */
/* ph-control-pipe-client.h: the client half of the control pipe (Windows): one private,
 * peer-to-peer GDBusConnection to the agent over its named pipe. There is no bus and no bus
 * name: the PhAgent1Proxy is made with a NULL name on it. The server half, with the pipe's DACL
 * and the clients' roles, is platform/ph-control-pipe.h. Defined on Windows only. */
#pragma once

#include <gio/gio.h>

#include "ph-names.h"

G_BEGIN_DECLS

/* The pipe's name: $PINHOLE_CONTROL_PIPE if set (tests run agents side by side), else
 * PH_CONTROL_PIPE_DEFAULT. */
const char *ph_control_pipe_name (void);

/* G_IO_ERROR_NOT_FOUND when no agent listens on @name. */
GDBusConnection *ph_control_pipe_connect_sync (const char *name, GCancellable *cancellable,
                                               GError **error);
void ph_control_pipe_connect_async (const char *name, GCancellable *cancellable,
                                    GAsyncReadyCallback callback, gpointer user_data);
GDBusConnection *ph_control_pipe_connect_finish (GAsyncResult *result, GError **error);

G_END_DECLS

/* SPDX-License-Identifier: GPL-2.0-or-later */
/* ph-client-pipe-win32.c: the agent on its named pipe (Windows), one private peer-to-peer
 * connection with no bus name. There is no bus to choose. */
#define G_LOG_DOMAIN "pinhole-client"

#include "ph-client-private.h"
#include "ph-control-pipe-client.h"

#include <glib/gi18n.h>

gboolean
ph_client_agent_on_bus (GBusType bus_type, int timeout_msec)
{
  return FALSE;
}

GDBusConnection *
ph_client_connect_default (GBusType bus_type, const char **name, GCancellable *cancellable,
                           GError **error)
{
  g_autoptr (GError) local_error = NULL;
  GDBusConnection *connection;

  *name = NULL;
  connection = ph_control_pipe_connect_sync (ph_control_pipe_name (), cancellable, &local_error);
  if (connection != NULL)
    return connection;
  if (g_error_matches (local_error, G_IO_ERROR, G_IO_ERROR_NOT_FOUND))
    g_set_error (error, PH_CLIENT_ERROR, PH_CLIENT_ERROR_UNREACHABLE,
                 /* TRANSLATORS: %s is the pipe's name, \\.\pipe\pinhole-agent */
                 _ ("the Pinhole agent is not running (nothing listens on %s)"),
                 ph_control_pipe_name ());
  else
    ph_client_set_unreachable (error, local_error, _ ("cannot reach the Pinhole agent"));
  return NULL;
}

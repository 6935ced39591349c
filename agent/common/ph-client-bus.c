/* SPDX-License-Identifier: GPL-2.0-or-later */
/* ph-client-bus.c: the agent on D-Bus (Linux): the system service on the system bus, where the
 * bus may also start it, or a per-user agent on the session bus. */
#define G_LOG_DOMAIN "pinhole-client"

#include "ph-client-private.h"

#include <glib/gi18n.h>

/* The bus of @type if the agent is (or can be started) there; NULL with no error when the bus
 * is up but the agent is not. */
static GDBusConnection *
bus_with_agent (GBusType type, int timeout_msec, GCancellable *cancellable, GError **error)
{
  g_autoptr (GDBusConnection) connection = NULL;
  gboolean has_owner = FALSE;

  connection = g_bus_get_sync (type, cancellable, error);
  if (connection == NULL)
    return NULL;
  if (!ph_client_bus_has_agent (connection, timeout_msec, &has_owner, error))
    return NULL;
  if (!has_owner)
    return NULL;
  return g_steal_pointer (&connection);
}

gboolean
ph_client_agent_on_bus (GBusType bus_type, int timeout_msec)
{
  g_autoptr (GDBusConnection) connection = bus_with_agent (bus_type, timeout_msec, NULL, NULL);

  return connection != NULL;
}

GDBusConnection *
ph_client_connect_default (GBusType bus_type, const char **name, GCancellable *cancellable,
                           GError **error)
{
  g_autoptr (GError) local_error = NULL;
  GDBusConnection *connection;

  *name = PH_AGENT_BUS_NAME;
  if (bus_type == G_BUS_TYPE_SYSTEM || bus_type == G_BUS_TYPE_SESSION)
    {
      gboolean system = bus_type == G_BUS_TYPE_SYSTEM;

      connection = bus_with_agent (bus_type, -1, cancellable, &local_error);
      if (connection != NULL)
        return connection;
      if (local_error != NULL)
        {
          ph_client_set_unreachable (error, local_error,
                                     system ? _ ("cannot connect to the system bus")
                                            : _ ("cannot connect to the session bus"));
          return NULL;
        }
      g_set_error (error, PH_CLIENT_ERROR, PH_CLIENT_ERROR_UNREACHABLE,
                   system ? _ ("the Pinhole agent is not running on the system bus "
                               "(nobody owns %s)")
                          : _ ("the Pinhole agent is not running on the session bus "
                               "(nobody owns %s)"),
                   PH_AGENT_BUS_NAME);
      return NULL;
    }

  /* No system bus at all is normal in containers: then only the session bus counts. */
  connection = bus_with_agent (G_BUS_TYPE_SYSTEM, -1, cancellable, NULL);
  if (connection != NULL)
    return connection;
  connection = bus_with_agent (G_BUS_TYPE_SESSION, -1, cancellable, &local_error);
  if (connection != NULL)
    return connection;
  if (local_error != NULL)
    {
      ph_client_set_unreachable (error, local_error,
                                 _ ("the Pinhole agent is not running on the system bus, "
                                    "and there is no session bus"));
      return NULL;
    }
  g_set_error (error, PH_CLIENT_ERROR, PH_CLIENT_ERROR_UNREACHABLE,
               _ ("the Pinhole agent is not running (nobody owns %s on the system bus or the "
                  "session bus)"),
               PH_AGENT_BUS_NAME);
  return NULL;
}

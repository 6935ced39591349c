/* SPDX-License-Identifier: GPL-2.0-or-later */
/* ph-client.c: what every platform's client does alike: a D-Bus address given by hand, the
 * proxy, the properties, and the errors. Finding the agent by default is per platform
 * (ph-client-bus.c, ph-client-pipe-win32.c). */
#define G_LOG_DOMAIN "pinhole-client"

#include "ph-client.h"
#include "ph-client-private.h"
#include "ph-error.h"

#include <glib/gi18n.h>

G_DEFINE_QUARK (ph - client - error - quark, ph_client_error)

void
ph_client_set_unreachable (GError **error, GError *cause, const char *what)
{
  g_dbus_error_strip_remote_error (cause);
  g_set_error (error, PH_CLIENT_ERROR, PH_CLIENT_ERROR_UNREACHABLE, "%s: %s", what, cause->message);
}

gboolean
ph_client_bus_has_agent (GDBusConnection *connection, int timeout_msec, gboolean *has_owner,
                         GError **error)
{
  g_autoptr (GVariant) reply = NULL;
  g_autoptr (GVariant) names = NULL;
  g_autofree const char **activatable = NULL;

  reply = g_dbus_connection_call_sync (
      connection, "org.freedesktop.DBus", "/org/freedesktop/DBus", "org.freedesktop.DBus",
      "NameHasOwner", g_variant_new ("(s)", PH_AGENT_BUS_NAME), G_VARIANT_TYPE ("(b)"),
      G_DBUS_CALL_FLAGS_NONE, timeout_msec, NULL, error);
  if (reply == NULL)
    return FALSE;
  g_variant_get (reply, "(b)", has_owner);
  if (*has_owner)
    return TRUE;

  /* A system service may be started by the bus on the first call. */
  g_clear_pointer (&reply, g_variant_unref);
  reply = g_dbus_connection_call_sync (connection, "org.freedesktop.DBus", "/org/freedesktop/DBus",
                                       "org.freedesktop.DBus", "ListActivatableNames", NULL,
                                       G_VARIANT_TYPE ("(as)"), G_DBUS_CALL_FLAGS_NONE,
                                       timeout_msec, NULL, NULL);
  if (reply == NULL)
    return TRUE;
  names = g_variant_get_child_value (reply, 0);
  activatable = g_variant_get_strv (names, NULL);
  *has_owner = g_strv_contains (activatable, PH_AGENT_BUS_NAME);
  return TRUE;
}

/* @address may name a bus (a private dbus-daemon) or the agent's own peer-to-peer server; a
 * peer answers the bus's Hello with an error. */
static GDBusConnection *
connect_address (const char *address, gboolean *is_bus, GCancellable *cancellable, GError **error)
{
  g_autoptr (GError) bus_error = NULL;
  GDBusConnection *connection;

  connection = g_dbus_connection_new_for_address_sync (
      address,
      G_DBUS_CONNECTION_FLAGS_AUTHENTICATION_CLIENT
          | G_DBUS_CONNECTION_FLAGS_MESSAGE_BUS_CONNECTION,
      NULL, cancellable, &bus_error);
  if (connection != NULL)
    {
      *is_bus = TRUE;
      return connection;
    }
  if (bus_error->domain != G_DBUS_ERROR && !g_dbus_error_is_remote_error (bus_error))
    {
      g_propagate_error (error, g_steal_pointer (&bus_error));
      return NULL;
    }
  *is_bus = FALSE;
  return g_dbus_connection_new_for_address_sync (
      address, G_DBUS_CONNECTION_FLAGS_AUTHENTICATION_CLIENT, NULL, cancellable, error);
}

static GDBusConnection *
connect_to_address (const char *address, const char **name, GCancellable *cancellable,
                    GError **error)
{
  g_autoptr (GError) local_error = NULL;
  g_autoptr (GDBusConnection) connection = NULL;
  gboolean is_bus = FALSE;
  gboolean has_owner = FALSE;

  connection = connect_address (address, &is_bus, cancellable, &local_error);
  if (connection == NULL)
    {
      g_autofree char *what = g_strdup_printf (_ ("cannot connect to %s"), address);

      ph_client_set_unreachable (error, local_error, what);
      return NULL;
    }
  if (!is_bus)
    {
      *name = NULL;
      return g_steal_pointer (&connection);
    }
  if (!ph_client_bus_has_agent (connection, -1, &has_owner, &local_error))
    {
      ph_client_set_unreachable (error, local_error, _ ("cannot ask the bus for the agent"));
      return NULL;
    }
  if (!has_owner)
    {
      g_set_error (error, PH_CLIENT_ERROR, PH_CLIENT_ERROR_UNREACHABLE,
                   _ ("the Pinhole agent is not running on the bus at %s (nobody owns %s)"),
                   address, PH_AGENT_BUS_NAME);
      return NULL;
    }
  *name = PH_AGENT_BUS_NAME;
  return g_steal_pointer (&connection);
}

GDBusConnection *
ph_client_connect_sync (GBusType bus_type, const char *address, const char **name,
                        GCancellable *cancellable, GError **error)
{
  const char *ignored = NULL;

  if (name == NULL)
    name = &ignored;
  if (address != NULL)
    return connect_to_address (address, name, cancellable, error);
  return ph_client_connect_default (bus_type, name, cancellable, error);
}

typedef struct
{
  GBusType bus_type;
  char *address;
  const char *name; /* static: PH_AGENT_BUS_NAME or NULL */
} ConnectData;

static void
connect_data_free (ConnectData *data)
{
  g_free (data->address);
  g_free (data);
}

static void
connect_thread (GTask *task, gpointer source, gpointer task_data, GCancellable *cancellable)
{
  ConnectData *data = task_data;
  GError *error = NULL;
  GDBusConnection *connection
      = ph_client_connect_sync (data->bus_type, data->address, &data->name, cancellable, &error);

  if (connection != NULL)
    g_task_return_pointer (task, connection, g_object_unref);
  else
    g_task_return_error (task, error);
}

void
ph_client_connect_async (GBusType bus_type, const char *address, GCancellable *cancellable,
                         GAsyncReadyCallback callback, gpointer user_data)
{
  g_autoptr (GTask) task = g_task_new (NULL, cancellable, callback, user_data);
  ConnectData *data = g_new0 (ConnectData, 1);

  data->bus_type = bus_type;
  data->address = g_strdup (address);
  g_task_set_source_tag (task, ph_client_connect_async);
  g_task_set_task_data (task, data, (GDestroyNotify) connect_data_free);
  g_task_run_in_thread (task, connect_thread);
}

GDBusConnection *
ph_client_connect_finish (GAsyncResult *result, const char **name, GError **error)
{
  GTask *task = G_TASK (result);
  GDBusConnection *connection = g_task_propagate_pointer (task, error);

  if (connection != NULL && name != NULL)
    *name = ((ConnectData *) g_task_get_task_data (task))->name;
  return connection;
}

PhAgent1 *
ph_client_proxy_new_sync (GDBusConnection *connection, const char *name, GDBusProxyFlags flags,
                          GCancellable *cancellable, GError **error)
{
  g_autoptr (GError) local_error = NULL;
  PhAgent1 *agent = ph_agent1_proxy_new_sync (connection, flags, name, PH_AGENT_OBJECT_PATH,
                                              cancellable, &local_error);

  if (agent == NULL)
    ph_client_set_unreachable (error, local_error, _ ("cannot reach the Pinhole agent"));
  return agent;
}

static void
proxy_ready (GObject *source, GAsyncResult *result, gpointer data)
{
  g_autoptr (GTask) task = data;
  GError *error = NULL;
  PhAgent1 *agent = ph_agent1_proxy_new_finish (result, &error);

  if (agent != NULL)
    {
      g_task_return_pointer (task, agent, g_object_unref);
      return;
    }
  /* Cancelled stays CANCELLED: the caller gave up, nothing was unreachable. */
  if (g_error_matches (error, G_IO_ERROR, G_IO_ERROR_CANCELLED))
    {
      g_task_return_error (task, error);
      return;
    }
  {
    g_autoptr (GError) cause = error;
    GError *unreachable = NULL;

    ph_client_set_unreachable (&unreachable, cause, _ ("cannot reach the Pinhole agent"));
    g_task_return_error (task, unreachable);
  }
}

void
ph_client_proxy_new (GDBusConnection *connection, const char *name, GDBusProxyFlags flags,
                     GCancellable *cancellable, GAsyncReadyCallback callback, gpointer user_data)
{
  GTask *task = g_task_new (NULL, cancellable, callback, user_data);

  g_task_set_source_tag (task, ph_client_proxy_new);
  ph_agent1_proxy_new (connection, flags, name, PH_AGENT_OBJECT_PATH, cancellable, proxy_ready,
                       task);
}

PhAgent1 *
ph_client_proxy_new_finish (GAsyncResult *result, GError **error)
{
  return g_task_propagate_pointer (G_TASK (result), error);
}

PhAgent1 *
ph_client_get_agent_sync (GBusType bus_type, const char *address, GDBusProxyFlags flags,
                          GCancellable *cancellable, GError **error)
{
  g_autoptr (GDBusConnection) connection = NULL;
  const char *name = NULL;

  connection = ph_client_connect_sync (bus_type, address, &name, cancellable, error);
  if (connection == NULL)
    return NULL;
  return ph_client_proxy_new_sync (connection, name, flags, cancellable, error);
}

gboolean
ph_client_load_properties_sync (PhAgent1 *agent, GCancellable *cancellable, GError **error)
{
  g_autoptr (GVariant) reply = NULL;
  g_autoptr (GVariant) props = NULL;
  GVariantIter iter;
  const char *prop;
  GVariant *value;

  reply = g_dbus_proxy_call_sync (G_DBUS_PROXY (agent), "org.freedesktop.DBus.Properties.GetAll",
                                  g_variant_new ("(s)", PH_AGENT_INTERFACE), G_DBUS_CALL_FLAGS_NONE,
                                  -1, cancellable, error);
  if (reply == NULL)
    return FALSE;
  props = g_variant_get_child_value (reply, 0);
  g_variant_iter_init (&iter, props);
  while (g_variant_iter_next (&iter, "{&sv}", &prop, &value))
    {
      g_dbus_proxy_set_cached_property (G_DBUS_PROXY (agent), prop, value);
      g_variant_unref (value);
    }
  return TRUE;
}

/* Runs in GDBus's worker thread, for every message of the connection. */
static GDBusMessage *
allow_interactive (GDBusConnection *connection, GDBusMessage *message, gboolean incoming,
                   gpointer user_data)
{
  GDBusMessage *copy;

  /* Not by the agent's name: the proxy sends to the name's unique owner. The bus itself never
   * asks anyone. */
  if (incoming || g_dbus_message_get_message_type (message) != G_DBUS_MESSAGE_TYPE_METHOD_CALL
      || g_strcmp0 (g_dbus_message_get_destination (message), "org.freedesktop.DBus") == 0)
    return message;
  /* An outgoing message is locked by now: the flag goes on a copy, serial and all. */
  copy = g_dbus_message_copy (message, NULL);
  g_object_unref (message);
  if (copy == NULL)
    return NULL;
  g_dbus_message_set_flags (copy, g_dbus_message_get_flags (copy)
                                      | G_DBUS_MESSAGE_FLAGS_ALLOW_INTERACTIVE_AUTHORIZATION);
  return copy;
}

void
ph_client_allow_interactive_authorization (PhAgent1 *agent, int timeout_msec)
{
  GDBusProxy *proxy = G_DBUS_PROXY (agent);

  g_dbus_connection_add_filter (g_dbus_proxy_get_connection (proxy), allow_interactive, NULL, NULL);
  g_dbus_proxy_set_default_timeout (proxy, timeout_msec);
}

static void
convert (GError *error, GQuark domain, int code)
{
  error->domain = domain;
  error->code = code;
}

void
ph_client_error_convert (GError *error)
{
  g_autofree char *remote = NULL;

  g_return_if_fail (error != NULL);

  /* The agent's own refusals arrive as PH_ERROR already (ph_error_quark registers the names). */
  if (error->domain == PH_ERROR)
    {
      g_dbus_error_strip_remote_error (error);
      return;
    }
  if (error->domain == G_DBUS_ERROR)
    {
      switch (error->code)
        {
          case G_DBUS_ERROR_ACCESS_DENIED:
          case G_DBUS_ERROR_AUTH_FAILED:
            convert (error, PH_ERROR, PH_ERROR_PERMISSION_DENIED);
            break;
          case G_DBUS_ERROR_SERVICE_UNKNOWN:
          case G_DBUS_ERROR_NAME_HAS_NO_OWNER:
          case G_DBUS_ERROR_NO_SERVER:
          case G_DBUS_ERROR_DISCONNECTED:
          case G_DBUS_ERROR_NO_REPLY:
          case G_DBUS_ERROR_TIMEOUT:
          case G_DBUS_ERROR_TIMED_OUT:
          case G_DBUS_ERROR_UNKNOWN_OBJECT:
          case G_DBUS_ERROR_UNKNOWN_INTERFACE:
          case G_DBUS_ERROR_SPAWN_EXEC_FAILED:
          case G_DBUS_ERROR_SPAWN_FORK_FAILED:
          case G_DBUS_ERROR_SPAWN_CHILD_EXITED:
          case G_DBUS_ERROR_SPAWN_CHILD_SIGNALED:
          case G_DBUS_ERROR_SPAWN_FAILED:
          case G_DBUS_ERROR_SPAWN_SERVICE_NOT_FOUND:
          case G_DBUS_ERROR_SPAWN_SERVICE_INVALID:
          case G_DBUS_ERROR_SPAWN_PERMISSIONS_INVALID:
          case G_DBUS_ERROR_SPAWN_NO_MEMORY:
            convert (error, PH_CLIENT_ERROR, PH_CLIENT_ERROR_UNREACHABLE);
            break;
          default:
            convert (error, PH_ERROR, PH_ERROR_FAILED);
            break;
        }
      g_dbus_error_strip_remote_error (error);
      return;
    }
  /* Remote errors GLib has no mapping for arrive as G_IO_ERROR_DBUS_ERROR; polkit's refusal is
   * the one that matters here. */
  remote = g_dbus_error_get_remote_error (error);
  if (remote != NULL)
    {
      if (g_str_equal (remote, "org.freedesktop.PolicyKit1.Error.NotAuthorized"))
        convert (error, PH_ERROR, PH_ERROR_PERMISSION_DENIED);
      else
        convert (error, PH_ERROR, PH_ERROR_FAILED);
      g_dbus_error_strip_remote_error (error);
      return;
    }
  /* Any other I/O error comes from the transport: the bus or the agent went away. A caller
   * that gave up (CANCELLED) was not refused anything. */
  if (error->domain == G_IO_ERROR && error->code != G_IO_ERROR_CANCELLED)
    convert (error, PH_CLIENT_ERROR, PH_CLIENT_ERROR_UNREACHABLE);
}

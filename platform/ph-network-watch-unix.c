/* SPDX-License-Identifier: GPL-2.0-or-later */
/* ph-network-watch-unix.c: the network watch on Linux: GNetworkMonitor's "network-changed"
 * (netlink routes, or NetworkManager) and logind's PrepareForSleep(false) on the system bus. */
#define G_LOG_DOMAIN "pinhole-platform"

#include "ph-network-watch-private.h"

#include <gio/gio.h>

#define LOGIND_NAME "org.freedesktop.login1"
#define LOGIND_PATH "/org/freedesktop/login1"
#define LOGIND_MANAGER "org.freedesktop.login1.Manager"

struct _PhNetworkSources
{
  PhNetworkWatch *watch;
  GNetworkMonitor *monitor;
  gulong changed_id;
  GCancellable *cancel; /* the system bus connection, while it is made */
  GDBusConnection *system;
  guint sleep_id;
};

static void
on_network_changed (GNetworkMonitor *monitor, gboolean available, gpointer data)
{
  PhNetworkSources *s = data;

  ph_network_watch_report (s->watch, PH_NETWORK_CHANGED,
                           available ? "the routes changed" : "no route to the internet");
}

static void
on_prepare_for_sleep (GDBusConnection *connection, const char *sender, const char *path,
                      const char *interface, const char *member, GVariant *parameters,
                      gpointer data)
{
  PhNetworkSources *s = data;
  gboolean going;

  if (!g_variant_is_of_type (parameters, G_VARIANT_TYPE ("(b)")))
    return;
  g_variant_get (parameters, "(b)", &going);
  if (going)
    {
      g_debug ("logind: going to sleep");
      return;
    }
  ph_network_watch_report (s->watch, PH_NETWORK_RESUMED, "logind: woke from sleep");
}

static void
system_bus_ready (GObject *source, GAsyncResult *result, gpointer data)
{
  g_autoptr (GCancellable) cancel = data; /* the reference the call held */
  g_autoptr (GError) error = NULL;
  GDBusConnection *connection = g_dbus_connection_new_for_address_finish (result, &error);
  PhNetworkSources *s;

  if (connection == NULL)
    {
      if (!g_error_matches (error, G_IO_ERROR, G_IO_ERROR_CANCELLED))
        g_debug ("no system bus, so no sleep and wake-up events: %s", error->message);
      return;
    }
  if (g_cancellable_is_cancelled (cancel))
    {
      g_object_unref (connection);
      return;
    }
  s = g_object_get_data (G_OBJECT (cancel), "ph-sources");
  s->system = connection;
  /* The sender is logind's well-known name: only logind can own it on the system bus, so no
   * other process can make the agent drop its pool. */
  s->sleep_id = g_dbus_connection_signal_subscribe (
      connection, LOGIND_NAME, LOGIND_MANAGER, "PrepareForSleep", LOGIND_PATH, NULL,
      G_DBUS_SIGNAL_FLAGS_NONE, on_prepare_for_sleep, s, NULL);
  g_debug ("watching logind's PrepareForSleep");
}

PhNetworkSources *
ph_network_sources_new (PhNetworkWatch *watch)
{
  PhNetworkSources *s = g_new0 (PhNetworkSources, 1);
  g_autoptr (GError) error = NULL;
  g_autofree char *address = NULL;

  s->watch = watch;
  s->monitor = g_object_ref (g_network_monitor_get_default ());
  s->changed_id
      = g_signal_connect (s->monitor, "network-changed", G_CALLBACK (on_network_changed), s);

  /* A connection of its own, not g_bus_get()'s shared one: that one ends the process when the
   * bus goes away (exit-on-close), and a system bus restarting must not stop the tunnel. */
  address = g_dbus_address_get_for_bus_sync (G_BUS_TYPE_SYSTEM, NULL, &error);
  if (address == NULL)
    {
      g_debug ("no system bus, so no sleep and wake-up events: %s", error->message);
      return s;
    }
  s->cancel = g_cancellable_new ();
  g_object_set_data (G_OBJECT (s->cancel), "ph-sources", s);
  g_dbus_connection_new_for_address (address,
                                     G_DBUS_CONNECTION_FLAGS_AUTHENTICATION_CLIENT
                                         | G_DBUS_CONNECTION_FLAGS_MESSAGE_BUS_CONNECTION,
                                     NULL, s->cancel, system_bus_ready, g_object_ref (s->cancel));
  return s;
}

void
ph_network_sources_free (PhNetworkSources *s)
{
  if (s == NULL)
    return;
  g_signal_handler_disconnect (s->monitor, s->changed_id);
  g_object_unref (s->monitor);
  if (s->cancel != NULL)
    {
      g_cancellable_cancel (s->cancel);
      g_object_set_data (G_OBJECT (s->cancel), "ph-sources", NULL);
      g_object_unref (s->cancel);
    }
  if (s->system != NULL)
    {
      if (s->sleep_id != 0)
        g_dbus_connection_signal_unsubscribe (s->system, s->sleep_id);
      g_dbus_connection_close (s->system, NULL, NULL, NULL);
      g_object_unref (s->system);
    }
  g_free (s);
}

/* ph-agent-watch-bus.c: the agent on D-Bus (Linux): its well-known name on the system bus
 * (the system service) or on the session bus (a per-user agent). */
#define G_LOG_DOMAIN "pinhole-tray"

#include "ph-agent-watch.h"

#define AGENT_NAME "org.pinhole.Agent"

struct _PhAgentWatch
{
  guint watch_id;
  PhAgentAppearedFunc appeared;
  PhAgentVanishedFunc vanished;
  gpointer user_data;
};

static void
on_appeared (GDBusConnection *connection, const char *name, const char *owner, gpointer data)
{
  PhAgentWatch *watch = data;

  watch->appeared (connection, name, watch->user_data);
}

static void
on_vanished (GDBusConnection *connection, const char *name, gpointer data)
{
  PhAgentWatch *watch = data;

  watch->vanished (watch->user_data);
}

/* The system service if it runs, else a per-user agent. */
static GBusType
pick_bus (void)
{
  g_autoptr (GDBusConnection) system = g_bus_get_sync (G_BUS_TYPE_SYSTEM, NULL, NULL);
  g_autoptr (GVariant) reply = NULL;
  gboolean owned = FALSE;

  if (system != NULL)
    reply = g_dbus_connection_call_sync (system, "org.freedesktop.DBus", "/org/freedesktop/DBus",
                                         "org.freedesktop.DBus", "NameHasOwner",
                                         g_variant_new ("(s)", AGENT_NAME), G_VARIANT_TYPE ("(b)"),
                                         G_DBUS_CALL_FLAGS_NONE, 1000, NULL, NULL);
  if (reply != NULL)
    g_variant_get (reply, "(b)", &owned);
  return owned ? G_BUS_TYPE_SYSTEM : G_BUS_TYPE_SESSION;
}

PhAgentWatch *
ph_agent_watch_new (GBusType bus_type, PhAgentAppearedFunc appeared, PhAgentVanishedFunc vanished,
                    gpointer user_data)
{
  PhAgentWatch *watch = g_new0 (PhAgentWatch, 1);

  watch->appeared = appeared;
  watch->vanished = vanished;
  watch->user_data = user_data;
  if (bus_type == G_BUS_TYPE_NONE)
    bus_type = pick_bus ();
  watch->watch_id = g_bus_watch_name (bus_type, AGENT_NAME, G_BUS_NAME_WATCHER_FLAGS_NONE,
                                      on_appeared, on_vanished, watch, NULL);
  return watch;
}

void
ph_agent_watch_free (PhAgentWatch *watch)
{
  if (watch == NULL)
    return;
  g_bus_unwatch_name (watch->watch_id);
  g_free (watch);
}

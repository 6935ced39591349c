/* SPDX-License-Identifier: GPL-2.0-or-later */
/* ph-agent-watch-bus.c: the agent on D-Bus (Linux): its well-known name on the system bus
 * (the system service) or on the session bus (a per-user agent), chosen as ph-client chooses. */
#define G_LOG_DOMAIN "pinhole-tray"

#include "ph-agent-watch.h"
#include "ph-client.h"

/* The bus may take this long to say whether the agent is there before the tray starts. */
#define PICK_TIMEOUT_MS 1000

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

PhAgentWatch *
ph_agent_watch_new (GBusType bus_type, PhAgentAppearedFunc appeared, PhAgentVanishedFunc vanished,
                    gpointer user_data)
{
  PhAgentWatch *watch = g_new0 (PhAgentWatch, 1);

  watch->appeared = appeared;
  watch->vanished = vanished;
  watch->user_data = user_data;
  /* The system service if it runs or the bus can start it (as pinholectl decides), else a
   * per-user agent. The name is watched, not started: the tray follows the agent's life. */
  if (bus_type == G_BUS_TYPE_NONE)
    bus_type = ph_client_agent_on_bus (G_BUS_TYPE_SYSTEM, PICK_TIMEOUT_MS) ? G_BUS_TYPE_SYSTEM
                                                                           : G_BUS_TYPE_SESSION;
  watch->watch_id = g_bus_watch_name (bus_type, PH_AGENT_BUS_NAME, G_BUS_NAME_WATCHER_FLAGS_NONE,
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

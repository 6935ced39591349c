/* SPDX-License-Identifier: GPL-2.0-or-later */
/* ph-agent-watch-pipe.c: the agent on its named pipe (Windows), reached through ph-client:
 * connect, and when nothing listens or the connection closes, try again every 2 seconds. */
#define G_LOG_DOMAIN "pinhole-tray"

#include "ph-agent-watch.h"
#include "ph-client.h"
#include "ph-control-pipe-client.h"

#define RETRY_SECONDS 2

struct _PhAgentWatch
{
  PhAgentAppearedFunc appeared;
  PhAgentVanishedFunc vanished;
  gpointer user_data;

  GCancellable *cancellable;
  GDBusConnection *connection;
  guint retry_id;
  gboolean told;   /* appeared or vanished said at least once */
  gboolean logged; /* the reason for not connecting, logged once per absence */
};

static void try_connect (PhAgentWatch *watch);

static gboolean
on_retry (gpointer data)
{
  PhAgentWatch *watch = data;

  watch->retry_id = 0;
  try_connect (watch);
  return G_SOURCE_REMOVE;
}

static void
retry_later (PhAgentWatch *watch)
{
  if (watch->retry_id == 0)
    watch->retry_id = g_timeout_add_seconds (RETRY_SECONDS, on_retry, watch);
}

static void
on_closed (GDBusConnection *connection, gboolean remote_peer_vanished, GError *error, gpointer data)
{
  PhAgentWatch *watch = data;

  g_message ("the agent closed the control connection%s%s", error ? ": " : "",
             error ? error->message : "");
  g_signal_handlers_disconnect_by_data (connection, watch);
  g_clear_object (&watch->connection);
  watch->vanished (watch->user_data);
  retry_later (watch);
}

/* @data: the attempt's cancellable, a reference of its own, which names the watch until the
 * watch is freed: a connection that completes after that is dropped. */
static void
on_connected (GObject *source, GAsyncResult *result, gpointer data)
{
  g_autoptr (GCancellable) cancellable = data;
  g_autoptr (GError) error = NULL;
  GDBusConnection *connection = ph_client_connect_finish (result, NULL, &error);
  PhAgentWatch *watch = g_object_get_data (G_OBJECT (cancellable), "ph-agent-watch");

  if (watch == NULL)
    {
      g_clear_object (&connection);
      return;
    }
  if (connection == NULL)
    {
      /* The agent not running is the usual case, not worth a line each time; the message names
       * the pipe. */
      if (!watch->logged)
        g_message ("no agent: %s", error->message);
      watch->logged = TRUE;
      if (!watch->told)
        watch->vanished (watch->user_data);
      watch->told = TRUE;
      retry_later (watch);
      return;
    }
  g_message ("connected to the agent on %s", ph_control_pipe_name ());
  watch->connection = connection;
  watch->told = TRUE;
  watch->logged = FALSE;
  /* A peer connection that closes is the agent gone, not a reason to exit. */
  g_dbus_connection_set_exit_on_close (connection, FALSE);
  g_signal_connect (connection, "closed", G_CALLBACK (on_closed), watch);
  watch->appeared (connection, NULL, watch->user_data);
  /* It may have closed before the handler was there. */
  if (g_dbus_connection_is_closed (connection) && watch->connection == connection)
    on_closed (connection, TRUE, NULL, watch);
}

static void
try_connect (PhAgentWatch *watch)
{
  /* On Windows the default place is the pipe; there is no bus to choose. */
  ph_client_connect_async (G_BUS_TYPE_NONE, NULL, watch->cancellable, on_connected,
                           g_object_ref (watch->cancellable));
}

PhAgentWatch *
ph_agent_watch_new (GBusType bus_type, PhAgentAppearedFunc appeared, PhAgentVanishedFunc vanished,
                    gpointer user_data)
{
  PhAgentWatch *watch = g_new0 (PhAgentWatch, 1);

  watch->appeared = appeared;
  watch->vanished = vanished;
  watch->user_data = user_data;
  watch->cancellable = g_cancellable_new ();
  g_object_set_data (G_OBJECT (watch->cancellable), "ph-agent-watch", watch);
  try_connect (watch);
  return watch;
}

void
ph_agent_watch_free (PhAgentWatch *watch)
{
  if (watch == NULL)
    return;
  /* An attempt under way finds no watch on its cancellable and drops what it got. */
  g_object_set_data (G_OBJECT (watch->cancellable), "ph-agent-watch", NULL);
  g_cancellable_cancel (watch->cancellable);
  g_clear_object (&watch->cancellable);
  g_clear_handle_id (&watch->retry_id, g_source_remove);
  if (watch->connection != NULL)
    {
      g_signal_handlers_disconnect_by_data (watch->connection, watch);
      g_dbus_connection_close (watch->connection, NULL, NULL, NULL);
      g_clear_object (&watch->connection);
    }
  g_free (watch);
}

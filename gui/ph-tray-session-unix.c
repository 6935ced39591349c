/* ph-tray-session-unix.c: the tray quits on SIGTERM, SIGINT and SIGHUP (the session's end on
 * X11 comes as the display going away, which the tray's atexit() handler covers). */
#define G_LOG_DOMAIN "pinhole-tray"

#include "ph-tray-session.h"

#include <signal.h>
#include <glib-unix.h>

struct _PhTraySession
{
  PhTraySessionHandlers handlers;
  gpointer user_data;
  guint signal_ids[3];
};

static gboolean
on_signal (gpointer data)
{
  PhTraySession *session = data;

  session->handlers.quit (session->user_data);
  return G_SOURCE_CONTINUE;
}

PhTraySession *
ph_tray_session_new (const PhTraySessionHandlers *handlers, gpointer user_data)
{
  static const int signals[] = { SIGTERM, SIGINT, SIGHUP };
  PhTraySession *session = g_new0 (PhTraySession, 1);

  session->handlers = *handlers;
  session->user_data = user_data;
  for (guint i = 0; i < G_N_ELEMENTS (signals); i++)
    session->signal_ids[i] = g_unix_signal_add (signals[i], on_signal, session);
  return session;
}

void
ph_tray_session_free (PhTraySession *session)
{
  if (session == NULL)
    return;
  for (guint i = 0; i < G_N_ELEMENTS (session->signal_ids); i++)
    g_clear_handle_id (&session->signal_ids[i], g_source_remove);
  g_free (session);
}

GApplicationFlags
ph_tray_session_get_app_flags (void)
{
  return G_APPLICATION_DEFAULT_FLAGS;
}

gboolean
ph_tray_session_claim_instance (void)
{
  return TRUE;
}

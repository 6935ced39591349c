/* SPDX-License-Identifier: GPL-2.0-or-later */
/* ph-tray-session-unix.c: the tray quits on SIGTERM, SIGINT and SIGHUP (the session's end on
 * X11 comes as the display going away, which the tray's atexit() handler covers); it tells the
 * user through the desktop's notification server (GNotification), keeps its state under
 * $XDG_STATE_HOME, and can be told which bus the agent is on. */
#define G_LOG_DOMAIN "pinhole-tray"

#include "ph-build-config.h"
#include "ph-tray-session.h"

#include <signal.h>
#include <glib-unix.h>
#include <glib/gi18n.h>

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

const GOptionEntry *
ph_tray_session_get_options (void)
{
  static const GOptionEntry options[] = {
    { "session", 0, 0, G_OPTION_ARG_NONE, NULL, N_ ("Use the per-user agent (session bus)"), NULL },
    { "system", 0, 0, G_OPTION_ARG_NONE, NULL, N_ ("Use the system service (system bus)"), NULL },
    { NULL },
  };

  return options;
}

char *
ph_tray_session_dup_state_dir (void)
{
  return g_build_filename (g_get_user_state_dir (), "pinhole", NULL);
}

void
ph_tray_session_notify (PhTraySession *session, GApplication *app, const char *id,
                        const char *title, const char *body, gboolean urgent,
                        const char *button_label, const char *button_action)
{
  g_autoptr (GNotification) n = g_notification_new (title);

  g_notification_set_body (n, body);
  if (urgent)
    g_notification_set_priority (n, G_NOTIFICATION_PRIORITY_HIGH);
  if (button_label != NULL)
    g_notification_add_button (n, button_label, button_action);
  g_application_send_notification (app, id, n);
}

void
ph_tray_session_withdraw (PhTraySession *session, GApplication *app, const char *id)
{
  g_application_withdraw_notification (app, id);
}

/* SPDX-License-Identifier: GPL-2.0-or-later */
/* ph-tray-proxy.c: the tray's system-proxy follower: platform/'s system proxy (GNOME, KDE,
 * WinINet, with its journal) driven by the agent's Enabled and Listeners and the tray's
 * preferences, with an atexit() safety net. */
#define G_LOG_DOMAIN "pinhole-tray"

#include "ph-build-config.h"
#include "ph-system-proxy.h"
#include "ph-tray-proxy.h"
#include "ph-tray-session.h"

#include <stdlib.h>
#include <string.h>
#include <glib/gi18n.h>

struct _PhTrayProxy
{
  PhSystemProxy *system_proxy;
  gboolean ending; /* the session ends: the system proxy is back and stays so */
};

static PhTrayProxy *exiting_proxy; /* for the atexit() safety net */

/* This user's journal, in the tray's state folder. */
static char *
journal_path (void)
{
  g_autofree char *dir = ph_tray_session_dup_state_dir ();

  return g_build_filename (dir, "system-proxy.journal", NULL);
}

void
ph_tray_proxy_restore (PhTrayProxy *proxy)
{
  g_autoptr (GError) error = NULL;

  if (proxy->system_proxy == NULL || !ph_system_proxy_is_enabled (proxy->system_proxy))
    return;
  if (!ph_system_proxy_disable (proxy->system_proxy, &error))
    g_warning ("could not restore the system proxy: %s", error->message);
  else
    g_message ("system proxy restored");
}

void
ph_tray_proxy_follow (PhTrayProxy *proxy, PhAgent1 *agent, PhTrayPrefs *prefs)
{
  const char *const *listeners;
  g_auto (GStrv) bypass = NULL;
  g_autoptr (GStrvBuilder) all = NULL;
  g_autoptr (GError) error = NULL;
  const char *colon;
  guint64 port = 0;

  if (proxy->system_proxy == NULL || proxy->ending)
    return;
  listeners = agent ? ph_agent1_get_listeners (agent) : NULL;
  if (agent == NULL || !ph_agent1_get_enabled (agent) || listeners == NULL || listeners[0] == NULL
      || !ph_tray_prefs_get_set_system_proxy (prefs))
    {
      ph_tray_proxy_restore (proxy);
      return;
    }
  colon = strrchr (listeners[0], ':');
  if (colon == NULL || !g_ascii_string_to_unsigned (colon + 1, 10, 1, 65535, &port, NULL))
    return;
  all = g_strv_builder_new ();
  g_strv_builder_add_many (all, "localhost", "127.0.0.0/8", "::1", NULL);
  bypass = ph_tray_prefs_dup_bypass (prefs);
  g_strv_builder_addv (all, (const char **) bypass);
  {
    g_auto (GStrv) list = g_strv_builder_end (all);
    if (!ph_system_proxy_enable (proxy->system_proxy, "127.0.0.1", (guint) port,
                                 (const char *const *) list, &error))
      g_warning ("could not set the system proxy: %s", error->message);
  }
}

void
ph_tray_proxy_end_session (PhTrayProxy *proxy)
{
  proxy->ending = TRUE;
  ph_tray_proxy_restore (proxy);
}

static void
restore_at_exit (void)
{
  /* GTK exits the process when the display goes away at session end. */
  if (exiting_proxy != NULL)
    ph_tray_proxy_restore (exiting_proxy);
}

PhTrayProxy *
ph_tray_proxy_new (void)
{
  static gboolean atexit_added;
  PhTrayProxy *proxy = g_new0 (PhTrayProxy, 1);
  g_autofree char *journal = journal_path ();
  g_autoptr (GError) error = NULL;
  gboolean restored = FALSE;

  /* A journal here means the last run did not put the proxy back. */
  proxy->system_proxy = ph_system_proxy_new (journal);
  if (!ph_system_proxy_recover (proxy->system_proxy, &restored, &error))
    g_warning ("could not restore the system proxy left by the last run: %s", error->message);
  else if (restored)
    g_message ("restored the system proxy left set by a previous run");
  exiting_proxy = proxy;
  if (!atexit_added)
    atexit (restore_at_exit);
  atexit_added = TRUE;
  return proxy;
}

void
ph_tray_proxy_free (PhTrayProxy *proxy)
{
  if (proxy == NULL)
    return;
  if (exiting_proxy == proxy)
    exiting_proxy = NULL;
  g_clear_pointer (&proxy->system_proxy, ph_system_proxy_free);
  g_free (proxy);
}

int
ph_tray_proxy_restore_left (void)
{
  g_autofree char *journal = journal_path ();
  g_autoptr (PhSystemProxy) system_proxy = ph_system_proxy_new (journal);
  g_autoptr (GError) error = NULL;
  gboolean restored = FALSE;

  if (!ph_system_proxy_recover (system_proxy, &restored, &error))
    {
      g_printerr ("%s\n", error->message);
      return 1;
    }
  if (restored)
    g_print ("%s\n", _ ("The system proxy setting left by a previous run was put back."));
  else
    g_print ("%s\n", _ ("Nothing to put back: the system proxy setting is not Pinhole's."));
  return 0;
}

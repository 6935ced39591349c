/* SPDX-License-Identifier: GPL-2.0-or-later */
/* ph-tray-proxy.c: the tray's system-proxy follower: platform/'s system proxy (GNOME, KDE,
 * WinINet, with its journal) driven by the agent's Enabled, Listeners, route.direct and
 * system-proxy.mode and the tray's preferences, with an atexit() safety net. */
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

GStrv
ph_tray_proxy_desktop_list (const char *direct)
{
  g_autoptr (GStrvBuilder) out = g_strv_builder_new ();
  g_auto (GStrv) items = g_strsplit_set (direct != NULL ? direct : "", ",; \t\r\n", -1);

  g_strv_builder_add_many (out, "localhost", "127.0.0.0/8", "::1", NULL);
  for (guint i = 0; items[i] != NULL; i++)
    {
      const char *item = items[i];
      g_autofree char *bare = NULL;
      const char *slash;

      if (*item == '\0')
        continue;
      /* ".suffix" is the suffix and every name under it for the agent, for GLib's resolver
       * (GNOME), KIO and (as "suffix;*.suffix") WinINet alike. */
      if (item[0] == '.' && item[1] != '\0')
        {
          g_strv_builder_add (out, item);
          continue;
        }
      /* Addresses and networks mean the same everywhere; IPv6 without brackets, as GNOME
       * and KDE write it (WinINet's backend adds them). */
      slash = strchr (item, '/');
      bare = g_strndup (item, slash != NULL ? (gsize) (slash - item) : strlen (item));
      if (bare[0] == '[' && g_str_has_suffix (bare, "]"))
        {
          g_autofree char *inner = g_strndup (bare + 1, strlen (bare) - 2);
          g_free (bare);
          bare = g_steal_pointer (&inner);
        }
      if (g_hostname_is_ip_address (bare))
        {
          if (slash != NULL)
            {
              g_autofree char *cidr = g_strconcat (bare, slash, NULL);
              g_strv_builder_add (out, cidr);
            }
          else
            g_strv_builder_add (out, bare);
          continue;
        }
      /* A plain name, "*.suffix" and "<local>" have no form that means no more than they do:
       * GLib reads "name" and "*.suffix" as the name and every name under it, and only
       * WinINet knows <local>. Left out, their requests reach the agent, which sends them
       * direct itself; the desktop never sends direct what the agent would not. */
      g_debug ("[route] direct %s is left to the agent, not written to the system proxy", item);
    }
  return g_strv_builder_end (out);
}

/* The first loopback listener of @listeners ("127.0.0.1:3128", "[::1]:3128") as ADDRESS:PORT,
 * else 127.0.0.1 with the first one's port; NULL when there is none with a port. */
static char *
loopback_listener (const char *const *listeners, guint *port_out)
{
  for (guint pass = 0; pass < 2; pass++)
    {
      for (guint i = 0; listeners[i] != NULL; i++)
        {
          const char *colon = strrchr (listeners[i], ':');
          g_autofree char *host = NULL;
          g_autoptr (GInetAddress) address = NULL;
          guint64 port = 0;

          if (colon == NULL || !g_ascii_string_to_unsigned (colon + 1, 10, 1, 65535, &port, NULL))
            continue;
          *port_out = (guint) port;
          if (pass == 1)
            return g_strdup_printf ("127.0.0.1:%u", (guint) port);
          host = g_strndup (listeners[i], (gsize) (colon - listeners[i]));
          if (host[0] == '[' && g_str_has_suffix (host, "]"))
            {
              g_autofree char *inner = g_strndup (host + 1, strlen (host) - 2);
              address = g_inet_address_new_from_string (inner);
            }
          else
            address = g_inet_address_new_from_string (host);
          if (address != NULL && g_inet_address_get_is_loopback (address))
            return g_strdup (listeners[i]);
        }
    }
  return NULL;
}

/* route.direct and system-proxy.mode from the agent; the defaults when it cannot say. */
static void
read_agent_settings (PhAgent1 *agent, char **direct, gboolean *pac)
{
  g_autoptr (GVariant) settings = NULL;
  g_autoptr (GError) error = NULL;
  GVariantIter iter;
  const char *key, *value, *fallback;
  gboolean locked;

  *direct = NULL;
  *pac = FALSE;
  if (!ph_agent1_call_list_settings_sync (agent, &settings, NULL, &error))
    {
      g_warning ("cannot read the agent's route.direct and system-proxy.mode: %s", error->message);
      return;
    }
  g_variant_iter_init (&iter, settings);
  while (g_variant_iter_next (&iter, "(&s&sb&s)", &key, &value, &locked, &fallback))
    {
      if (g_str_equal (key, "route.direct"))
        *direct = g_strdup (value);
      else if (g_str_equal (key, "system-proxy.mode"))
        *pac = g_str_equal (value, "pac");
    }
}

void
ph_tray_proxy_follow (PhTrayProxy *proxy, PhAgent1 *agent, PhTrayPrefs *prefs)
{
  const char *const *listeners;
  g_auto (GStrv) legacy = NULL;
  g_auto (GStrv) desktop = NULL;
  g_auto (GStrv) list = NULL;
  g_autoptr (GStrvBuilder) all = NULL;
  g_autoptr (GError) error = NULL;
  g_autofree char *direct = NULL;
  g_autofree char *address = NULL;
  gboolean pac = FALSE;
  guint port = 0;

  if (proxy->system_proxy == NULL || proxy->ending)
    return;
  listeners = agent ? ph_agent1_get_listeners (agent) : NULL;
  if (agent == NULL || !ph_agent1_get_enabled (agent) || listeners == NULL || listeners[0] == NULL
      || !ph_tray_prefs_get_set_system_proxy (prefs))
    {
      ph_tray_proxy_restore (proxy);
      return;
    }
  address = loopback_listener (listeners, &port);
  if (address == NULL)
    return;
  read_agent_settings (agent, &direct, &pac);
  all = g_strv_builder_new ();
  desktop = ph_tray_proxy_desktop_list (direct);
  g_strv_builder_addv (all, (const char **) desktop);
  /* An older tray.conf's list, until it is moved to route.direct (ph-tray-prefs.h). */
  legacy = ph_tray_prefs_dup_bypass (prefs);
  g_strv_builder_addv (all, (const char **) legacy);
  list = g_strv_builder_end (all);
  if (pac)
    {
      g_autofree char *url = g_strdup_printf ("http://%s/proxy.pac", address);

      if (!ph_system_proxy_enable_pac (proxy->system_proxy, url, (const char *const *) list,
                                       &error))
        g_warning ("could not set the system proxy: %s", error->message);
    }
  else if (!ph_system_proxy_enable (proxy->system_proxy, "127.0.0.1", port,
                                    (const char *const *) list, &error))
    g_warning ("could not set the system proxy: %s", error->message);
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

/* SPDX-License-Identifier: GPL-2.0-or-later */
/* ph-tray-app.c: the tray application: follows org.pinhole.Agent1 (on the
 * bus, or on the agent's pipe on Windows), shows its state in the icon and
 * menu, notifies once per problem, and has the system proxy follow the
 * tunnel (ph-tray-proxy.c) as its preferences (ph-tray-prefs.c) say. */
#define G_LOG_DOMAIN "pinhole-tray"

#include "ph-build-config.h"
#include "ph-agent-watch.h"
#include "ph-client.h"
#include "ph-connections-window.h"
#include "ph-diagnose-window.h"
#include "ph-elevate.h"
#include "ph-error.h"
#include "ph-paths.h"
#include "ph-settings-window.h"
#include "ph-tray-app.h"
#include "ph-tray-icon.h"
#include "ph-tray-proxy.h"
#include "ph-tray-report.h"
#include "ph-tray-session.h"

#include <glib/gi18n.h>

/* How long a change may wait for polkit's question to be answered. */
#define PH_TRAY_AUTH_TIMEOUT_MS (5 * 60 * 1000)

struct _PhTrayApp
{
  GtkApplication parent;

  GBusType bus_type; /* G_BUS_TYPE_NONE: the system service if it runs, else the session's */
  PhAgentWatch *watch;
  PhTraySession *session;
  gboolean open_settings; /* --settings */
  gboolean open_diagnose; /* --diagnose: runs once the agent is there */
  /* --connections */
  gboolean open_connections;
  PhAgent1 *agent;
  GCancellable *cancellable;

  PhTrayIcon *icon;
  GtkWidget *menu;
  GtkWidget *status_item;
  GtkWidget *trust_item;
  GtkWidget *upstream_item;  /* "Cloud proxy: NAME", the one in use */
  GtkWidget *upstreams_item; /* "Cloud proxies" ▸ each one's health, when there are several */
  GVariant *upstreams_shown; /* the Upstreams value the two show, to rebuild only on a change */
  char *status_text;
  PhSettingsWindow *settings;
  PhDiagnoseWindow *diagnose;
  PhConnectionsWindow *connections;

  PhTrayProxy *proxy; /* from startup to finalize */
  PhTrayPrefs *prefs;

  char *notified; /* the condition last notified, so each is said once */
  guint notifications;
  char *state_override; /* ph_tray_app_show_state(), for tests */
  char *portal_url_override;
  guint portal_opened;
};

G_DEFINE_TYPE (PhTrayApp, ph_tray_app, GTK_TYPE_APPLICATION)

/* ---- state ---- */

static const char *
last_error_name (PhTrayApp *app, const char **message)
{
  GVariant *v = app->agent ? ph_agent1_get_last_error (app->agent) : NULL;
  const char *name = "";

  *message = "";
  if (v != NULL)
    g_variant_get (v, "(&s&s)", &name, message);
  return name;
}

static gboolean
pin_needs_trust (PhTrayApp *app)
{
  const char *seen = app->agent ? ph_agent1_get_seen_pin (app->agent) : NULL;
  const char *const *trusted = app->agent ? ph_agent1_get_trusted_pins (app->agent) : NULL;
  const char *message = NULL;
  const char *name = last_error_name (app, &message);

  if (seen == NULL || *seen == '\0' || (trusted != NULL && g_strv_contains (trusted, seen)))
    return FALSE;
  return g_str_equal (name, "org.pinhole.Error.PinMismatch")
         || g_str_equal (name, "org.pinhole.Error.UpstreamTls")
         || g_str_equal (name, "org.pinhole.Error.CertUntrusted");
}

/* One notification per distinct condition that needs the user. */
static void
notify_problem (PhTrayApp *app, const char *name, const char *message)
{
  const char *title = NULL;
  g_autofree char *condition = NULL;

  if (g_str_equal (name, "org.pinhole.Error.PinMismatch"))
    /* TRANSLATORS: notification title; the body names the key presented. */
    title = _ ("The cloud proxy presented a different key");
  else if (g_str_equal (name, "org.pinhole.Error.AuthRejected")
           || g_str_equal (name, "org.pinhole.Error.NoCredentials"))
    title = _ ("The cloud proxy did not accept your sign-in");
  else if (g_str_equal (name, "org.pinhole.Error.UpstreamUnreachable")
           || g_str_equal (name, "org.pinhole.Error.Timeout"))
    title = _ ("The cloud proxy cannot be reached");
  else if (g_str_equal (name, "org.pinhole.Error.UnreachableDirect"))
    /* TRANSLATORS: notification title: [route] when-unreachable=direct is in force, so
     * requests leave without the tunnel until the cloud proxy answers again */
    title = _ ("The cloud proxy cannot be reached: requests go directly");
  else if (g_str_equal (name, "org.pinhole.Error.UpstreamTls")
           || g_str_equal (name, "org.pinhole.Error.CertUntrusted"))
    title = _ ("The cloud proxy's key is not trusted yet");
  if (title == NULL)
    return;
  condition = g_strconcat (name, "\n", message, NULL);
  if (g_strcmp0 (condition, app->notified) == 0)
    return;
  g_free (app->notified);
  app->notified = g_steal_pointer (&condition);
  /* Where notifications have no buttons (Windows), clicking one opens Settings, where the key
   * can be trusted too. */
  if (pin_needs_trust (app))
    ph_tray_session_notify (app->session, G_APPLICATION (app), "problem", title, message, TRUE,
                            _ ("Trust Key…"), "app.trust-key");
  else
    ph_tray_session_notify (app->session, G_APPLICATION (app), "problem", title, message, TRUE,
                            _ ("Settings…"), "app.settings");
  app->notifications++;
}

/* The network holds every connection until the user signs in on its page: said once per
 * page, with a button that opens it. */
static void
notify_portal (PhTrayApp *app, const char *portal_url)
{
  g_autofree char *condition = NULL;
  const char *body;
  /* TRANSLATORS: notification title, for a hotel or airport network's sign-in page */
  const char *title = _ ("Sign in to the network");

  condition = g_strconcat ("captive-portal\n", portal_url != NULL ? portal_url : "", NULL);
  if (g_strcmp0 (condition, app->notified) == 0)
    return;
  g_free (app->notified);
  app->notified = g_steal_pointer (&condition);
  body = portal_url != NULL && *portal_url != '\0'
             /* TRANSLATORS: notification body under "Sign in to the network" */
             ? _ ("This network shows a sign-in page before it lets anything through.")
             : _ ("This network shows a sign-in page before it lets anything through. Open any "
                  "web page in your browser to reach it.");
  if (portal_url != NULL && *portal_url != '\0')
    ph_tray_session_notify (app->session, G_APPLICATION (app), "problem", title, body, TRUE,
                            _ ("Open Sign-in Page"), "app.open-portal");
  else
    ph_tray_session_notify (app->session, G_APPLICATION (app), "problem", title, body, TRUE, NULL,
                            NULL);
  app->notifications++;
}

/* ---- the cloud proxies' health ---- */

char *
ph_tray_app_format_upstream (GVariant *upstream)
{
  const char *name = "", *state = "unknown", *message = "";
  gboolean in_use = FALSE;
  gint64 retry_at = 0;
  g_autofree char *when = NULL;

  g_variant_lookup (upstream, "name", "&s", &name);
  g_variant_lookup (upstream, "state", "&s", &state);
  g_variant_lookup (upstream, "in-use", "b", &in_use);
  g_variant_lookup (upstream, "retry-at", "x", &retry_at);
  g_variant_lookup (upstream, "error-message", "&s", &message);
  if (retry_at > 0)
    {
      g_autoptr (GDateTime) t = g_date_time_new_from_unix_local (retry_at);
      when = t ? g_date_time_format (t, "%H:%M") : NULL;
    }
  if (g_str_equal (state, "up"))
    return in_use
               /* TRANSLATORS: a cloud proxy's health in the tray menu; %s is host:port */
               ? g_strdup_printf (_ ("%s — up (in use)"), name)
               /* TRANSLATORS: a cloud proxy's health in the tray menu; %s is host:port */
               : g_strdup_printf (_ ("%s — up"), name);
  if (g_str_equal (state, "down") && when != NULL)
    /* TRANSLATORS: a cloud proxy's health in the tray menu: host:port, the time (HH:MM) it is
     * tried again, and the agent's description of its last failure */
    return g_strdup_printf (_ ("%s — down, retry at %s: %s"), name, when, message);
  if (g_str_equal (state, "down"))
    /* TRANSLATORS: a cloud proxy's health in the tray menu: host:port and the last failure */
    return g_strdup_printf (_ ("%s — down: %s"), name, message);
  if (g_str_equal (state, "refused"))
    /* TRANSLATORS: a cloud proxy's health in the tray menu: it answered but refused us (a key
     * that is not trusted, a rejected password): host:port and the agent's description */
    return g_strdup_printf (_ ("%s — refused: %s"), name, message);
  /* TRANSLATORS: a cloud proxy's health in the tray menu: no connection was tried yet */
  return g_strdup_printf (_ ("%s — not tried yet"), name);
}

/* "Cloud proxy: NAME" (the ones new tunnels go to: one under failover=priority, every healthy
 * one under round-robin), and with several, a submenu with each one's health. From Upstreams;
 * an agent that has no Upstreams names its one proxy in Upstream. Neither while the tunnel is
 * off: then no proxy is in use. */
static void
update_upstreams (PhTrayApp *app, const char *state)
{
  gboolean shown = state != NULL && !g_str_equal (state, "off");
  g_autoptr (GVariant) upstreams = app->agent ? ph_agent1_dup_upstreams (app->agent) : NULL;
  const char *upstream = app->agent ? ph_agent1_get_upstream (app->agent) : NULL;
  g_autoptr (GPtrArray) in_use = g_ptr_array_new ();
  g_autofree char *label = NULL;
  g_autofree char *joined = NULL;
  GtkWidget *submenu = gtk_menu_item_get_submenu (GTK_MENU_ITEM (app->upstreams_item));
  g_autoptr (GList) lines = submenu ? gtk_container_get_children (GTK_CONTAINER (submenu)) : NULL;
  gsize n = upstreams ? g_variant_n_children (upstreams) : 0;

  if (upstreams != NULL && app->upstreams_shown != NULL
      && g_variant_equal (upstreams, app->upstreams_shown)
      && g_strcmp0 (g_object_get_data (G_OBJECT (app->upstream_item), "upstream"), upstream) == 0)
    {
      gtk_widget_set_visible (app->upstream_item,
                              shown
                                  && *gtk_menu_item_get_label (GTK_MENU_ITEM (app->upstream_item)));
      gtk_widget_set_visible (app->upstreams_item, shown && n > 1);
      return;
    }
  g_clear_pointer (&app->upstreams_shown, g_variant_unref);
  if (upstreams != NULL)
    app->upstreams_shown = g_variant_ref (upstreams);
  g_object_set_data_full (G_OBJECT (app->upstream_item), "upstream", g_strdup (upstream), g_free);

  /* The same proxies: their lines change in place, so an open submenu stays open. */
  if (g_list_length (lines) != n)
    {
      submenu = gtk_menu_new ();
      g_clear_pointer (&lines, g_list_free);
      for (gsize i = 0; i < n; i++)
        {
          GtkWidget *item = gtk_menu_item_new_with_label ("");
          GtkLabel *text = GTK_LABEL (gtk_bin_get_child (GTK_BIN (item)));

          /* An error message can be long: wrapped, not a menu as wide as the screen. */
          gtk_label_set_line_wrap (text, TRUE);
          gtk_label_set_line_wrap_mode (text, PANGO_WRAP_WORD_CHAR);
          gtk_label_set_max_width_chars (text, 60);
          gtk_widget_set_sensitive (item, FALSE);
          gtk_menu_shell_append (GTK_MENU_SHELL (submenu), item);
          lines = g_list_append (lines, item);
        }
      gtk_widget_show_all (submenu);
      gtk_menu_item_set_submenu (GTK_MENU_ITEM (app->upstreams_item), submenu);
    }
  for (gsize i = 0; i < n; i++)
    {
      g_autoptr (GVariant) entry = g_variant_get_child_value (upstreams, i);
      g_autofree char *line = ph_tray_app_format_upstream (entry);
      const char *name = NULL;
      gboolean used = FALSE;

      gtk_menu_item_set_label (GTK_MENU_ITEM (g_list_nth_data (lines, i)), line);
      if (g_variant_lookup (entry, "in-use", "b", &used) && used
          && g_variant_lookup (entry, "name", "&s", &name))
        g_ptr_array_add (in_use, (gpointer) name);
    }
  gtk_widget_set_visible (app->upstreams_item, shown && n > 1);

  g_ptr_array_add (in_use, NULL);
  joined = g_strjoinv (", ", (char **) in_use->pdata);
  if (*joined != '\0')
    /* TRANSLATORS: tray menu: the cloud proxy (host:port) new tunnels go to; under round-robin
     * several, separated by commas */
    label = g_strdup_printf (_ ("Cloud proxy: %s"), joined);
  else if (n > 0)
    /* TRANSLATORS: tray menu: every cloud proxy is down or refused */
    label = g_strdup (_ ("Cloud proxy: none reachable now"));
  else if (upstream != NULL && *upstream != '\0')
    label = g_strdup_printf (_ ("Cloud proxy: %s"), upstream);
  gtk_menu_item_set_label (GTK_MENU_ITEM (app->upstream_item), label ? label : "");
  gtk_widget_set_visible (app->upstream_item, shown && label != NULL);
}

/* @counters_only: only ActiveTunnels or the byte counts moved, which happens
 * every second of a transfer: the status line, nothing else. */
static void diagnose_at_start (PhTrayApp *app);

static void
update_full (PhTrayApp *app, gboolean counters_only)
{
  const char *state = app->agent ? ph_agent1_get_state (app->agent) : NULL;
  const char *portal_url = app->agent ? ph_agent1_get_portal_url (app->agent) : NULL;
  const char *message = NULL;
  const char *name = last_error_name (app, &message);
  const char *icon_name = "pinhole-error";
  g_autofree char *text = NULL;
  GAction *toggle;

  if (app->state_override != NULL)
    {
      state = app->state_override;
      portal_url = app->portal_url_override;
    }

  if (state == NULL)
    text = g_strdup (_ ("Pinhole agent is not running"));
  else if (g_str_equal (state, "on"))
    {
      guint n = ph_agent1_get_active_tunnels (app->agent);
      icon_name = "pinhole-on";
      /* TRANSLATORS: %s is the cloud proxy, host:port; %u a count of connections. */
      text = g_strdup_printf (g_dngettext (GETTEXT_PACKAGE, "Tunnel on: %s, %u connection",
                                           "Tunnel on: %s, %u connections", n),
                              ph_agent1_get_upstream (app->agent), n);
    }
  else if (g_str_equal (state, "connecting"))
    {
      icon_name = "pinhole-connecting";
      /* TRANSLATORS: %s is the cloud proxy, host:port. */
      text = g_strdup_printf (_ ("Connecting to %s…"), ph_agent1_get_upstream (app->agent));
    }
  else if (g_str_equal (state, "off"))
    {
      icon_name = "pinhole-off";
      text = g_strdup (_ ("Tunnel off"));
    }
  else if (g_str_equal (state, "captive-portal"))
    /* The error look: nothing passes until the user acts, as with the other problems. */
    text = g_strdup (_ ("The network needs a sign-in before the tunnel can connect"));
  else
    /* TRANSLATORS: %s is the agent's own explanation. */
    text = g_strdup_printf (_ ("Tunnel error: %s"), message);

  g_free (app->status_text);
  app->status_text = g_strdup (text);
  if (app->icon != NULL)
    ph_tray_icon_set (app->icon, icon_name, text);
  gtk_menu_item_set_label (GTK_MENU_ITEM (app->status_item), text);
  gtk_widget_set_visible (app->trust_item, pin_needs_trust (app));

  toggle = g_action_map_lookup_action (G_ACTION_MAP (app), "toggle");
  g_simple_action_set_enabled (G_SIMPLE_ACTION (toggle), app->agent != NULL);
  g_simple_action_set_state (
      G_SIMPLE_ACTION (toggle),
      g_variant_new_boolean (app->agent != NULL && ph_agent1_get_enabled (app->agent)));

  if (state != NULL && g_str_equal (state, "error"))
    notify_problem (app, name, message);
  else if (state != NULL && g_str_equal (state, "captive-portal"))
    notify_portal (app, portal_url);
  else if (state != NULL && g_str_equal (state, "on"))
    {
      g_clear_pointer (&app->notified, g_free);
      ph_tray_session_withdraw (app->session, G_APPLICATION (app), "problem");
    }
  if (counters_only)
    return;
  update_upstreams (app, state);
  if (app->proxy != NULL)
    ph_tray_proxy_follow (app->proxy, app->agent, app->prefs);
  if (app->settings != NULL)
    {
      ph_settings_window_set_agent (app->settings, app->agent);
      ph_settings_window_refresh (app->settings);
    }
  if (app->diagnose != NULL)
    ph_diagnose_window_set_agent (app->diagnose, app->agent);
  if (app->connections != NULL)
    ph_connections_window_set_agent (app->connections, app->agent);
  diagnose_at_start (app);
}

/* --diagnose: the window's first diagnosis runs as soon as there is an agent to ask. */
static void
diagnose_at_start (PhTrayApp *app)
{
  if (app->diagnose == NULL || !app->open_diagnose || app->agent == NULL)
    return;
  app->open_diagnose = FALSE;
  ph_diagnose_window_run (app->diagnose, NULL);
}

static void
update (PhTrayApp *app)
{
  update_full (app, FALSE);
}

static void
on_agent_changed (GDBusProxy *proxy, GVariant *changed, GStrv invalidated, gpointer data)
{
  static const char *const counters[] = { "ActiveTunnels", "BytesUp", "BytesDown", NULL };
  gboolean counters_only = invalidated == NULL || invalidated[0] == NULL;
  GVariantIter iter;
  const char *key;

  g_variant_iter_init (&iter, changed);
  while (counters_only && g_variant_iter_next (&iter, "{&sv}", &key, NULL))
    counters_only = g_strv_contains (counters, key);
  update_full (data, counters_only);
}

static void
proxy_ready (GObject *source, GAsyncResult *result, gpointer data)
{
  PhTrayApp *app = data;
  g_autoptr (GError) error = NULL;
  PhAgent1 *agent = ph_client_proxy_new_finish (result, &error);

  if (agent == NULL)
    {
      if (!g_error_matches (error, G_IO_ERROR, G_IO_ERROR_CANCELLED))
        g_warning ("cannot talk to the agent: %s", error->message);
      g_application_release (G_APPLICATION (app));
      return;
    }
  g_clear_object (&app->agent);
  app->agent = agent;
  g_dbus_proxy_set_default_timeout (G_DBUS_PROXY (agent), G_MAXINT);
  /* After: the generated proxy's own handler (run last) drops its cached copies of the changed
   * properties, such as the TrustedPins array whose strings point into the value just replaced;
   * before it, ph_agent1_get_trusted_pins() returns freed memory. */
  g_signal_connect_after (agent, "g-properties-changed", G_CALLBACK (on_agent_changed), app);
  /* Before the system proxy is set from route.direct. */
  ph_tray_prefs_migrate_bypass (app->prefs, agent);
  update (app);
  g_application_release (G_APPLICATION (app));
}

/* @name: NULL on the agent's pipe (Windows), which is a peer-to-peer connection. */
static void
on_agent_appeared (GDBusConnection *connection, const char *name, gpointer data)
{
  PhTrayApp *app = data;

  g_application_hold (G_APPLICATION (app));
  ph_client_proxy_new (connection, name, G_DBUS_PROXY_FLAGS_NONE, app->cancellable, proxy_ready,
                       app);
}

static void
on_agent_vanished (gpointer data)
{
  PhTrayApp *app = data;

  if (app->agent != NULL)
    g_signal_handlers_disconnect_by_data (app->agent, app);
  g_clear_object (&app->agent);
  /* No agent, no proxy behind the setting: give the network back. */
  update (app);
}

/* ---- actions ---- */

static void
notify_error (PhTrayApp *app, GError *error)
{
  g_dbus_error_strip_remote_error (error);
  ph_tray_session_notify (app->session, G_APPLICATION (app), "call", _ ("Pinhole"), error->message,
                          FALSE, NULL, NULL);
  app->notifications++;
}

static void
call_done (GObject *source, GAsyncResult *result, gpointer data)
{
  g_autoptr (PhTrayApp) app = data;
  g_autoptr (GError) error = NULL;
  g_autoptr (GVariant) reply = g_dbus_proxy_call_finish (G_DBUS_PROXY (source), result, &error);

  if (reply == NULL)
    notify_error (app, error);
}

static void
action_toggle (GSimpleAction *action, GVariant *parameter, gpointer data)
{
  PhTrayApp *app = data;
  gboolean on;

  if (app->agent == NULL)
    return;
  on = !ph_agent1_get_enabled (app->agent);
  if (parameter != NULL)
    on = g_variant_get_boolean (parameter);
  /* polkit may ask for a password (the system service, a user outside the active session). */
  g_dbus_proxy_call (G_DBUS_PROXY (app->agent), on ? "Enable" : "Disable", NULL,
                     G_DBUS_CALL_FLAGS_ALLOW_INTERACTIVE_AUTHORIZATION, PH_TRAY_AUTH_TIMEOUT_MS,
                     NULL, call_done, g_object_ref (app));
}

static void
action_settings (GSimpleAction *action, GVariant *parameter, gpointer data)
{
  PhTrayApp *app = data;

  if (app->settings == NULL)
    {
      app->settings = ph_settings_window_new (GTK_APPLICATION (app), app->prefs);
      g_object_add_weak_pointer (G_OBJECT (app->settings), (gpointer *) &app->settings);
      g_signal_connect_swapped (app->settings, "applied", G_CALLBACK (update), app);
    }
  ph_settings_window_set_agent (app->settings, app->agent);
  ph_settings_window_refresh (app->settings);
  gtk_window_present (GTK_WINDOW (app->settings));
}

static void
action_diagnose (GSimpleAction *action, GVariant *parameter, gpointer data)
{
  PhTrayApp *app = data;

  if (app->diagnose == NULL)
    {
      app->diagnose = ph_diagnose_window_new (GTK_APPLICATION (app));
      /* On destroy, not finalize: a diagnosis in flight holds the window until its reply. */
      g_signal_connect (app->diagnose, "destroy", G_CALLBACK (gtk_widget_destroyed),
                        &app->diagnose);
    }
  ph_diagnose_window_set_agent (app->diagnose, app->agent);
  gtk_window_present (GTK_WINDOW (app->diagnose));
}

static void
action_connections (GSimpleAction *action, GVariant *parameter, gpointer data)
{
  PhTrayApp *app = data;

  if (app->connections == NULL)
    {
      app->connections = ph_connections_window_new (GTK_APPLICATION (app));
      g_signal_connect (app->connections, "destroy", G_CALLBACK (gtk_widget_destroyed),
                        &app->connections);
    }
  ph_connections_window_set_agent (app->connections, app->agent);
  gtk_window_present (GTK_WINDOW (app->connections));
}

static void
action_report (GSimpleAction *action, GVariant *parameter, gpointer data)
{
  PhTrayApp *app = data;

  ph_tray_report_choose (gtk_application_get_active_window (GTK_APPLICATION (app)), app->agent);
}

static char *
format_time (gint64 t)
{
  g_autoptr (GDateTime) dt = g_date_time_new_from_unix_local (t);
  return dt ? g_date_time_format (dt, "%x") : g_strdup ("?");
}

/* A TrustPin call: its pin, in case it goes to the administrator's helper. */
typedef struct
{
  PhTrayApp *app;
  char *pin;
} PhTrustCall;

static void
trust_call_free (PhTrustCall *trust)
{
  g_object_unref (trust->app);
  g_free (trust->pin);
  g_free (trust);
}

G_DEFINE_AUTOPTR_CLEANUP_FUNC (PhTrustCall, trust_call_free)

static void
trust_elevated (GObject *source, GAsyncResult *result, gpointer data)
{
  g_autoptr (PhTrustCall) trust = data;
  g_autoptr (GError) error = NULL;
  g_autoptr (GVariant) reply = ph_elevate_run_finish (result, &error);
  const char *message = "";
  guint made = 0;

  if (reply != NULL)
    g_variant_get (reply, "(u&s)", &made, &message);
  if (reply != NULL && made == 0)
    error = g_error_new_literal (PH_ERROR, PH_ERROR_PERMISSION_DENIED, message);
  if (error != NULL)
    notify_error (trust->app, error);
}

static void
trust_done (GObject *source, GAsyncResult *result, gpointer data)
{
  g_autoptr (PhTrustCall) trust = data;
  g_autoptr (GError) error = NULL;
  g_autoptr (GVariant) reply = g_dbus_proxy_call_finish (G_DBUS_PROXY (source), result, &error);
  g_autofree char *helper = NULL;
  GVariant *request;

  if (reply != NULL)
    return;
  if (!g_error_matches (error, PH_ERROR, PH_ERROR_PERMISSION_DENIED) || !ph_elevate_supported ())
    {
      notify_error (trust->app, error);
      return;
    }
  /* Windows, a user who is not the agent's administrator: the helper, through UAC. */
  g_message ("the agent needs an administrator to trust a key: %s", error->message);
  helper = ph_elevate_helper_path ();
  /* Made before the call, which takes @trust. */
  request = g_variant_new_parsed ("[(%s, %s, '')]", PH_ELEVATE_OP_TRUST_PIN, trust->pin);
  ph_elevate_run_async (helper, PH_ELEVATE_COMMAND, request, NULL, trust_elevated,
                        g_steal_pointer (&trust));
}

static void
trust_fetched (GObject *source, GAsyncResult *result, gpointer data)
{
  g_autoptr (PhTrayApp) app = data;
  g_autoptr (GError) error = NULL;
  g_autofree char *pin = NULL;
  g_autoptr (GVariant) chain = NULL;
  g_autoptr (GVariant) info = NULL;
  g_autoptr (GVariant) cert = NULL;
  const char *subject = "", *issuer = "", *host = "";
  gint64 not_after = 0;
  gboolean ca_trusted = FALSE;
  g_autofree char *until = NULL;
  GtkWidget *dialog;
  int response;
  PhTrustCall *trust;

  if (!ph_agent1_call_fetch_upstream_pin_finish (PH_AGENT1 (source), &pin, &chain, &info, result,
                                                 &error))
    {
      g_dbus_error_strip_remote_error (error);
      dialog = gtk_message_dialog_new (NULL, 0, GTK_MESSAGE_ERROR, GTK_BUTTONS_CLOSE,
                                       _ ("The cloud proxy's key could not be read"));
      gtk_message_dialog_format_secondary_text (GTK_MESSAGE_DIALOG (dialog), "%s", error->message);
      gtk_dialog_run (GTK_DIALOG (dialog));
      gtk_widget_destroy (dialog);
      return;
    }
  if (g_variant_n_children (chain) > 0)
    {
      cert = g_variant_get_child_value (chain, 0);
      g_variant_lookup (cert, "subject", "&s", &subject);
      g_variant_lookup (cert, "issuer", "&s", &issuer);
      g_variant_lookup (cert, "not-after", "x", &not_after);
    }
  g_variant_lookup (info, "host", "&s", &host);
  g_variant_lookup (info, "ca-trusted", "b", &ca_trusted);
  until = format_time (not_after);
  /* TRANSLATORS: %s is the cloud proxy's host name. */
  dialog = gtk_message_dialog_new (NULL, 0, GTK_MESSAGE_QUESTION, GTK_BUTTONS_NONE,
                                   _ ("Trust the key of %s?"), host);
  gtk_message_dialog_format_secondary_text (
      GTK_MESSAGE_DIALOG (dialog),
      /* TRANSLATORS: the key's pin, certificate subject, issuer and expiry date follow. */
      _ ("Trust this key only if your administrator gave you the same one.\n\n"
         "Key: %s\nCertificate: %s\nIssued by: %s\nValid until: %s\n%s"),
      pin, subject, issuer, until,
      ca_trusted ? _ ("A certificate authority on this computer also vouches for it.")
                 : _ ("No certificate authority on this computer vouches for it."));
  gtk_dialog_add_buttons (GTK_DIALOG (dialog), _ ("_Cancel"), GTK_RESPONSE_CANCEL, _ ("_Trust"),
                          GTK_RESPONSE_ACCEPT, NULL);
  gtk_window_set_title (GTK_WINDOW (dialog), _ ("Trust Server Key"));
  response = gtk_dialog_run (GTK_DIALOG (dialog));
  gtk_widget_destroy (dialog);
  if (response != GTK_RESPONSE_ACCEPT || app->agent == NULL)
    return;
  trust = g_new0 (PhTrustCall, 1);
  trust->app = g_object_ref (app);
  trust->pin = g_strdup (pin);
  g_dbus_proxy_call (G_DBUS_PROXY (app->agent), "TrustPin", g_variant_new ("(s)", pin),
                     G_DBUS_CALL_FLAGS_ALLOW_INTERACTIVE_AUTHORIZATION, PH_TRAY_AUTH_TIMEOUT_MS,
                     NULL, trust_done, trust);
}

static void
action_trust_key (GSimpleAction *action, GVariant *parameter, gpointer data)
{
  PhTrayApp *app = data;

  if (app->agent == NULL)
    return;
  ph_agent1_call_fetch_upstream_pin (app->agent, NULL, trust_fetched, g_object_ref (app));
}

static void
action_open_portal (GSimpleAction *action, GVariant *parameter, gpointer data)
{
  PhTrayApp *app = data;
  const char *url = app->agent ? ph_agent1_get_portal_url (app->agent) : NULL;
  g_autoptr (GError) error = NULL;

  if (app->state_override != NULL)
    url = app->portal_url_override;
  if (url == NULL || *url == '\0')
    return;
  app->portal_opened++;
  if (!g_app_info_launch_default_for_uri (url, NULL, &error))
    g_warning ("cannot open the network's sign-in page %s: %s", url, error->message);
}

static void
action_about (GSimpleAction *action, GVariant *parameter, gpointer data)
{
  const char *authors[] = { "The Pinhole developers", NULL };

  gtk_show_about_dialog (NULL, "program-name", "Pinhole", "version", PH_VERSION, "comments",
                         _ ("Every connection of this computer through one trusted cloud proxy."),
                         "logo-icon-name", "org.pinhole.Tray", "license-type", GTK_LICENSE_GPL_2_0,
                         "authors", authors, NULL);
}

static void
action_quit (GSimpleAction *action, GVariant *parameter, gpointer data)
{
  g_application_quit (G_APPLICATION (data));
}

static void
action_show_menu (GSimpleAction *action, GVariant *parameter, gpointer data)
{
  PhTrayApp *app = data;

  if (app->icon != NULL)
    ph_tray_icon_popup (app->icon);
}

static const GActionEntry actions[] = {
  { "toggle", action_toggle, NULL, "false", NULL },
  { "settings", action_settings },
  { "diagnose", action_diagnose },
  { "connections", action_connections },
  { "report", action_report },
  { "trust-key", action_trust_key },
  { "open-portal", action_open_portal },
  { "about", action_about },
  { "quit", action_quit },
  { "show-menu", action_show_menu },
};

/* ---- the application ---- */

static GtkWidget *
menu_item (const char *label, const char *action)
{
  GtkWidget *item = gtk_menu_item_new_with_mnemonic (label);

  gtk_actionable_set_action_name (GTK_ACTIONABLE (item), action);
  return item;
}

static void
build_menu (PhTrayApp *app)
{
  GtkWidget *toggle;

  app->menu = gtk_menu_new ();
  app->status_item = gtk_menu_item_new_with_label ("");
  gtk_widget_set_sensitive (app->status_item, FALSE);
  gtk_menu_shell_append (GTK_MENU_SHELL (app->menu), app->status_item);
  app->upstream_item = gtk_menu_item_new_with_label ("");
  gtk_widget_set_name (app->upstream_item, "cloud-proxy");
  gtk_widget_set_sensitive (app->upstream_item, FALSE);
  gtk_menu_shell_append (GTK_MENU_SHELL (app->menu), app->upstream_item);
  /* TRANSLATORS: tray menu: a submenu with the health of each cloud proxy */
  app->upstreams_item = gtk_menu_item_new_with_mnemonic (_ ("Cloud _Proxies"));
  gtk_widget_set_name (app->upstreams_item, "cloud-proxies");
  gtk_menu_shell_append (GTK_MENU_SHELL (app->menu), app->upstreams_item);
  gtk_menu_shell_append (GTK_MENU_SHELL (app->menu), gtk_separator_menu_item_new ());
  toggle = gtk_check_menu_item_new_with_mnemonic (_ ("_Tunnel On"));
  gtk_actionable_set_action_name (GTK_ACTIONABLE (toggle), "app.toggle");
  gtk_menu_shell_append (GTK_MENU_SHELL (app->menu), toggle);
  gtk_menu_shell_append (GTK_MENU_SHELL (app->menu), menu_item (_ ("_Settings…"), "app.settings"));
  app->trust_item = menu_item (_ ("Trust Server _Key…"), "app.trust-key");
  gtk_menu_shell_append (GTK_MENU_SHELL (app->menu), app->trust_item);
  gtk_menu_shell_append (GTK_MENU_SHELL (app->menu), menu_item (_ ("_Diagnose…"), "app.diagnose"));
  gtk_menu_shell_append (GTK_MENU_SHELL (app->menu),
                         menu_item (_ ("C_onnections…"), "app.connections"));
  gtk_menu_shell_append (GTK_MENU_SHELL (app->menu),
                         menu_item (_ ("Save Support _Report…"), "app.report"));
  gtk_menu_shell_append (GTK_MENU_SHELL (app->menu), gtk_separator_menu_item_new ());
  gtk_menu_shell_append (GTK_MENU_SHELL (app->menu), menu_item (_ ("_About"), "app.about"));
  gtk_menu_shell_append (GTK_MENU_SHELL (app->menu), menu_item (_ ("_Quit"), "app.quit"));
  /* The menu belongs to no window of the application: give it the actions. */
  gtk_widget_insert_action_group (app->menu, "app", G_ACTION_GROUP (app));
  gtk_widget_show_all (app->menu);
  gtk_widget_hide (app->trust_item);
  gtk_widget_hide (app->upstream_item);
  gtk_widget_hide (app->upstreams_item);
}

static void
session_quit (gpointer data)
{
  g_application_quit (G_APPLICATION (data));
}

static void
session_end (gpointer data)
{
  PhTrayApp *app = data;

  ph_tray_proxy_end_session (app->proxy);
  g_application_quit (G_APPLICATION (app));
}

static void
session_show (gpointer data)
{
  action_settings (NULL, NULL, data);
}

static const PhTraySessionHandlers session_handlers = {
  .quit = session_quit,
  .end_session = session_end,
  .show = session_show,
};

static void
ph_tray_app_startup (GApplication *gapp)
{
  PhTrayApp *app = PH_TRAY_APP (gapp);
  g_autofree char *icons = g_build_filename (ph_paths_datadir (), "icons", NULL);
  const char *kind = g_getenv ("PH_TRAY_ICON");

  G_APPLICATION_CLASS (ph_tray_app_parent_class)->startup (gapp);
  gtk_icon_theme_append_search_path (gtk_icon_theme_get_default (), icons);
  /* Where there is no SVG loader (Windows), the icons are PNGs in the resource. */
  gtk_icon_theme_add_resource_path (gtk_icon_theme_get_default (), "/org/pinhole/Tray/icons");

  /* What a previous run left set goes back first. */
  app->proxy = ph_tray_proxy_new ();

  g_action_map_add_action_entries (G_ACTION_MAP (app), actions, G_N_ELEMENTS (actions), app);
  build_menu (app);
  app->icon = ph_tray_icon_new (GTK_MENU (app->menu), g_strcmp0 (kind, "status-icon") != 0);
  g_message ("tray icon: %s", ph_tray_icon_get_kind (app->icon));
  update (app);

  app->session = ph_tray_session_new (&session_handlers, app);
  app->watch = ph_agent_watch_new (app->bus_type, on_agent_appeared, on_agent_vanished, app);
  /* The tray lives without windows. */
  g_application_hold (gapp);
}

static void
ph_tray_app_activate (GApplication *gapp)
{
  /* A second start: show where the user can act. */
  static gboolean first = TRUE;

  if (first && PH_TRAY_APP (gapp)->open_diagnose)
    {
      action_diagnose (NULL, NULL, gapp);
      diagnose_at_start (PH_TRAY_APP (gapp));
    }
  else if (first && PH_TRAY_APP (gapp)->open_connections)
    action_connections (NULL, NULL, gapp);
  else if (!first || PH_TRAY_APP (gapp)->open_settings)
    action_settings (NULL, NULL, gapp);
  first = FALSE;
}

static void
ph_tray_app_shutdown (GApplication *gapp)
{
  PhTrayApp *app = PH_TRAY_APP (gapp);

  if (app->proxy != NULL)
    ph_tray_proxy_restore (app->proxy);
  g_clear_pointer (&app->watch, ph_agent_watch_free);
  g_clear_pointer (&app->session, ph_tray_session_free);
  g_cancellable_cancel (app->cancellable);
  if (app->settings != NULL)
    gtk_widget_destroy (GTK_WIDGET (app->settings));
  if (app->diagnose != NULL)
    gtk_widget_destroy (GTK_WIDGET (app->diagnose));
  if (app->connections != NULL)
    gtk_widget_destroy (GTK_WIDGET (app->connections));
  g_clear_pointer (&app->icon, ph_tray_icon_free);
  G_APPLICATION_CLASS (ph_tray_app_parent_class)->shutdown (gapp);
}

static int
ph_tray_app_handle_local_options (GApplication *gapp, GVariantDict *options)
{
  PhTrayApp *app = PH_TRAY_APP (gapp);

  if (g_variant_dict_contains (options, "version"))
    {
      g_print ("pinhole-tray %s\n", PH_VERSION);
      return 0;
    }
  if (g_variant_dict_contains (options, "restore-proxy"))
    return ph_tray_proxy_restore_left ();
  if (g_variant_dict_contains (options, "session"))
    app->bus_type = G_BUS_TYPE_SESSION;
  if (g_variant_dict_contains (options, "system"))
    app->bus_type = G_BUS_TYPE_SYSTEM;
  app->open_settings = g_variant_dict_contains (options, "settings");
  app->open_diagnose = g_variant_dict_contains (options, "diagnose");
  app->open_connections = g_variant_dict_contains (options, "connections");
  if (!ph_tray_session_claim_instance ())
    {
      g_message ("a tray runs already in this session: asked it to show its settings");
      return 0;
    }
  return -1;
}

static void
ph_tray_app_finalize (GObject *object)
{
  PhTrayApp *app = PH_TRAY_APP (object);

  g_clear_object (&app->agent);
  g_clear_object (&app->cancellable);
  g_clear_pointer (&app->proxy, ph_tray_proxy_free);
  g_clear_pointer (&app->prefs, ph_tray_prefs_free);
  g_clear_pointer (&app->upstreams_shown, g_variant_unref);
  g_free (app->status_text);
  g_free (app->notified);
  g_free (app->state_override);
  g_free (app->portal_url_override);
  G_OBJECT_CLASS (ph_tray_app_parent_class)->finalize (object);
}

static void
ph_tray_app_class_init (PhTrayAppClass *klass)
{
  GApplicationClass *app_class = G_APPLICATION_CLASS (klass);

  G_OBJECT_CLASS (klass)->finalize = ph_tray_app_finalize;
  app_class->startup = ph_tray_app_startup;
  app_class->activate = ph_tray_app_activate;
  app_class->shutdown = ph_tray_app_shutdown;
  app_class->handle_local_options = ph_tray_app_handle_local_options;
}

static void
ph_tray_app_init (PhTrayApp *app)
{
  const GOptionEntry options[] = {
    { "settings", 0, 0, G_OPTION_ARG_NONE, NULL, N_ ("Open the settings window"), NULL },
    { "diagnose", 0, 0, G_OPTION_ARG_NONE, NULL,
      N_ ("Open the Diagnose window and diagnose the connection at once"), NULL },
    { "connections", 0, 0, G_OPTION_ARG_NONE, NULL,
      N_ ("Open the Connections window: what goes through the tunnel now"), NULL },
    { "restore-proxy", 0, 0, G_OPTION_ARG_NONE, NULL,
      N_ ("Put back the system proxy setting that a previous run left, and exit"), NULL },
    { "version", 0, 0, G_OPTION_ARG_NONE, NULL, N_ ("Print the version and exit"), NULL },
    { NULL },
  };

  app->bus_type = G_BUS_TYPE_NONE;
  app->cancellable = g_cancellable_new ();
  app->prefs = ph_tray_prefs_new ();
  /* --session and --system where there is a bus to choose. */
  g_application_add_main_option_entries (G_APPLICATION (app), ph_tray_session_get_options ());
  g_application_add_main_option_entries (G_APPLICATION (app), options);
}

PhTrayApp *
ph_tray_app_new (void)
{
  return g_object_new (PH_TYPE_TRAY_APP, "application-id", "org.pinhole.Tray", "flags",
                       ph_tray_session_get_app_flags (), "register-session", TRUE, NULL);
}

PhTrayApp *
ph_tray_app_new_for_bus (GBusType bus_type)
{
  PhTrayApp *app = ph_tray_app_new ();

  app->bus_type = bus_type;
  return app;
}

PhAgent1 *
ph_tray_app_get_agent (PhTrayApp *app)
{
  return app->agent;
}

PhTrayPrefs *
ph_tray_app_get_prefs (PhTrayApp *app)
{
  return app->prefs;
}

const char *
ph_tray_app_get_icon_name (PhTrayApp *app)
{
  return app->icon ? ph_tray_icon_get_icon_name (app->icon) : NULL;
}

const char *
ph_tray_app_get_status_text (PhTrayApp *app)
{
  return app->status_text;
}

GtkWidget *
ph_tray_app_get_menu (PhTrayApp *app)
{
  return app->menu;
}

GtkWindow *
ph_tray_app_get_settings_window (PhTrayApp *app)
{
  return app->settings ? GTK_WINDOW (app->settings) : NULL;
}

GtkWindow *
ph_tray_app_get_diagnose_window (PhTrayApp *app)
{
  return app->diagnose ? GTK_WINDOW (app->diagnose) : NULL;
}

GtkWindow *
ph_tray_app_get_connections_window (PhTrayApp *app)
{
  return app->connections ? GTK_WINDOW (app->connections) : NULL;
}

guint
ph_tray_app_get_notification_count (PhTrayApp *app)
{
  return app->notifications;
}

void
ph_tray_app_show_state (PhTrayApp *app, const char *state, const char *portal_url)
{
  g_free (app->state_override);
  g_free (app->portal_url_override);
  app->state_override = g_strdup (state);
  app->portal_url_override = g_strdup (portal_url);
  update_full (app, TRUE);
}

guint
ph_tray_app_get_portal_opened (PhTrayApp *app)
{
  return app->portal_opened;
}

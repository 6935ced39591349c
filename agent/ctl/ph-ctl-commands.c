/* SPDX-License-Identifier: GPL-2.0-or-later */
/* ph-ctl-commands.c: pinholectl's commands, each one call (or two) on org.pinhole.Agent1 through
 * ph-client, printed for people or as JSON. */
#define G_LOG_DOMAIN "pinhole-ctl"

#include "ph-ctl.h"
#include "ph-client.h"
#include "ph-ctl-json.h"
#include "ph-ctl-output.h"
#include "ph-elevate.h"
#include "ph-tty.h"
#include "ph-wipe.h"

#include <string.h>
#include <glib/gi18n.h>

/* FetchUpstreamPin waits for the agent's own connect and handshake timeouts (10 s each by
 * default), which D-Bus's 25 s default cuts close. */
#define CALL_TIMEOUT_MS (60 * 1000)

/* Long enough for any proxy password; the buffer lives on the stack so that it can be wiped,
 * which a growing heap string could not promise. */
#define PASSWORD_MAX 1024

void
ph_ctl_clear (PhCtl *ctl)
{
  g_clear_pointer (&ctl->auth_agent, ph_auth_agent_stop);
  g_clear_object (&ctl->agent);
  g_clear_pointer (&ctl->address, g_free);
  g_clear_pointer (&ctl->gateway, g_free);
}

gboolean
ph_ctl_connect (PhCtl *ctl, GError **error)
{
  GBusType bus_type = G_BUS_TYPE_NONE;

  if (ctl->agent != NULL)
    return TRUE;
  if (ctl->system)
    bus_type = G_BUS_TYPE_SYSTEM;
  else if (ctl->session)
    bus_type = G_BUS_TYPE_SESSION;
  /* Properties are fetched by "status" itself, so that a failure to read them is reported
   * instead of showing empty values. */
  ctl->agent = ph_client_get_agent_sync (bus_type, ctl->address,
                                         G_DBUS_PROXY_FLAGS_DO_NOT_LOAD_PROPERTIES
                                             | G_DBUS_PROXY_FLAGS_DO_NOT_CONNECT_SIGNALS,
                                         NULL, error);
  if (ctl->agent == NULL)
    return FALSE;
  g_dbus_proxy_set_default_timeout (G_DBUS_PROXY (ctl->agent), CALL_TIMEOUT_MS);
  if (ctl->changes)
    ph_ctl_allow_authorization (ctl);
  return TRUE;
}

gboolean
ph_ctl_load_properties (PhCtl *ctl, GError **error)
{
  return ph_client_load_properties_sync (ctl->agent, NULL, error);
}

/* ---- status ---- */

/* The connection pools' counters from GetStatistics, or all 0 when the
 * agent cannot say (an older agent). */
typedef struct
{
  guint64 made, resumed, full, idle_reused, warm_taken, waited, retried, idle_now, warm_now;
  guint64 h2_made, h2_streams, h2_retried, h2_now, h2_streams_now;
} PhPoolCounts;

/* Their names in status --json. */
static const struct
{
  const char *name;
  gsize offset;
} pool_fields[] = {
  { "made", G_STRUCT_OFFSET (PhPoolCounts, made) },
  { "handshakes_resumed", G_STRUCT_OFFSET (PhPoolCounts, resumed) },
  { "handshakes_full", G_STRUCT_OFFSET (PhPoolCounts, full) },
  { "requests_on_idle", G_STRUCT_OFFSET (PhPoolCounts, idle_reused) },
  { "requests_on_warm", G_STRUCT_OFFSET (PhPoolCounts, warm_taken) },
  { "requests_waiting_for_new", G_STRUCT_OFFSET (PhPoolCounts, waited) },
  { "requests_sent_again", G_STRUCT_OFFSET (PhPoolCounts, retried) },
  { "idle_now", G_STRUCT_OFFSET (PhPoolCounts, idle_now) },
  { "warm_now", G_STRUCT_OFFSET (PhPoolCounts, warm_now) },
  { "h2_made", G_STRUCT_OFFSET (PhPoolCounts, h2_made) },
  { "h2_streams", G_STRUCT_OFFSET (PhPoolCounts, h2_streams) },
  { "h2_streams_sent_again", G_STRUCT_OFFSET (PhPoolCounts, h2_retried) },
  { "h2_now", G_STRUCT_OFFSET (PhPoolCounts, h2_now) },
  { "h2_streams_now", G_STRUCT_OFFSET (PhPoolCounts, h2_streams_now) },
};

static void
get_pool_counts (PhAgent1 *agent, PhPoolCounts *c)
{
  g_autoptr (GVariant) stats = NULL;
  guint32 now = 0;

  memset (c, 0, sizeof *c);
  if (!ph_agent1_call_get_statistics_sync (agent, &stats, NULL, NULL))
    return;
  g_variant_lookup (stats, "pool-connects", "t", &c->made);
  g_variant_lookup (stats, "handshakes-resumed", "t", &c->resumed);
  g_variant_lookup (stats, "handshakes-full", "t", &c->full);
  g_variant_lookup (stats, "pool-idle-reused", "t", &c->idle_reused);
  g_variant_lookup (stats, "pool-warm-taken", "t", &c->warm_taken);
  g_variant_lookup (stats, "pool-warm-missed", "t", &c->waited);
  g_variant_lookup (stats, "pool-retries", "t", &c->retried);
  if (g_variant_lookup (stats, "idle-connections", "u", &now))
    c->idle_now = now;
  if (g_variant_lookup (stats, "warm-connections", "u", &now))
    c->warm_now = now;
  g_variant_lookup (stats, "h2-connections", "t", &c->h2_made);
  g_variant_lookup (stats, "h2-streams", "t", &c->h2_streams);
  g_variant_lookup (stats, "h2-streams-retried", "t", &c->h2_retried);
  if (g_variant_lookup (stats, "h2-sessions-open", "u", &now))
    c->h2_now = now;
  if (g_variant_lookup (stats, "h2-streams-open", "u", &now))
    c->h2_streams_now = now;
}

/* The Upstreams property: each cloud proxy's health, as JSON objects. */
static void
add_upstreams_json (PhJson *j, PhAgent1 *agent)
{
  GVariant *list = ph_agent1_get_upstreams (agent);
  GVariantIter iter;
  GVariant *entry;

  ph_json_begin_array (j);
  if (list != NULL)
    {
      g_variant_iter_init (&iter, list);
      while ((entry = g_variant_iter_next_value (&iter)) != NULL)
        {
          g_autofree const char **addresses = NULL;

          g_variant_lookup (entry, "addresses", "^a&s", &addresses);
          ph_json_begin_object (j);
          ph_json_set_member (j, "name");
          ph_json_add_string (j, ph_dict_string (entry, "name"));
          ph_json_set_member (j, "state");
          ph_json_add_string (j, ph_dict_string (entry, "state"));
          ph_json_set_member (j, "in_use");
          ph_json_add_boolean (j, ph_dict_boolean (entry, "in-use"));
          ph_json_set_member (j, "retry_at");
          ph_json_add_int64 (j, ph_dict_int64 (entry, "retry-at"));
          ph_json_set_member (j, "error");
          ph_json_add_string (j, ph_dict_string (entry, "error"));
          ph_json_set_member (j, "error_message");
          ph_json_add_string (j, ph_dict_string (entry, "error-message"));
          ph_json_set_member (j, "addresses");
          ph_json_add_strv (j, addresses);
          ph_json_end_object (j);
          g_variant_unref (entry);
        }
    }
  ph_json_end_array (j);
}

/* One line per cloud proxy: "NAME  up (in use)", "NAME  down, tried again at 10:42:03: why". */
static char *
format_upstreams (PhAgent1 *agent)
{
  GVariant *list = ph_agent1_get_upstreams (agent);
  g_autoptr (GString) out = g_string_new (NULL);
  GVariantIter iter;
  GVariant *entry;

  if (list == NULL)
    return NULL;
  g_variant_iter_init (&iter, list);
  while ((entry = g_variant_iter_next_value (&iter)) != NULL)
    {
      const char *state = ph_dict_string (entry, "state");
      const char *message = ph_dict_string (entry, "error-message");
      gint64 retry_at = ph_dict_int64 (entry, "retry-at");
      g_autofree char *when = NULL;

      if (out->len > 0)
        g_string_append_c (out, '\n');
      /* The state is the contract's word (up, down, refused, unknown). */
      g_string_append_printf (out, "%s  %s", ph_dict_string (entry, "name"), state);
      if (ph_dict_boolean (entry, "in-use"))
        /* TRANSLATORS: after a cloud proxy's state: new tunnels go to it */
        g_string_append (out, _ (" (in use)"));
      if (retry_at > 0)
        {
          g_autoptr (GDateTime) t = g_date_time_new_from_unix_local (retry_at);
          when = g_date_time_format (t, "%H:%M:%S");
          /* TRANSLATORS: when a cloud proxy that is down is tried again, e.g. ", retry at
           * 10:42:03" */
          g_string_append_printf (out, _ (", retry at %s"), when);
        }
      if (message != NULL && *message != '\0')
        g_string_append_printf (out, ": %s", message);
      g_variant_unref (entry);
    }
  return out->len > 0 ? g_strdup (out->str) : NULL;
}

/* The Capture property as a JSON object (snake_case keys); {} from an agent without it. */
static void
ph_json_add_capture (PhJson *j, GVariant *capture)
{
  if (capture != NULL && g_variant_is_of_type (capture, G_VARIANT_TYPE_VARDICT))
    ph_json_add_variant (j, capture);
  else
    {
      ph_json_begin_object (j);
      ph_json_end_object (j);
    }
}

/* The Capture property in words: "local, ports 80 443 → :3129", "off", "error: …". */
static char *
format_capture (GVariant *capture)
{
  const char *mode = ph_dict_string (capture, "mode");
  const char *iface = ph_dict_string (capture, "interface");
  const char *failure = ph_dict_string (capture, "error");
  g_autoptr (GVariant) ports = NULL;
  guint16 listener_port = 0;
  GString *out;

  if (*failure != '\0')
    /* TRANSLATORS: the capture rules could not be put in: nft's message follows */
    return g_strdup_printf (_ ("error: %s"), failure);
  if (*mode == '\0' || g_str_equal (mode, "off"))
    /* TRANSLATORS: no capture rules ([transparent] capture=off) */
    return g_strdup (_ ("off"));
  out = g_string_new (mode);
  if (*iface != '\0')
    g_string_append_printf (out, " %s", iface);
  /* TRANSLATORS: before the captured TCP ports, e.g. "local, ports 80 443 → :3129" */
  g_string_append (out, _ (", ports"));
  ports = g_variant_lookup_value (capture, "ports", G_VARIANT_TYPE ("aq"));
  if (ports != NULL)
    {
      gsize n = 0;
      const guint16 *p = g_variant_get_fixed_array (ports, &n, sizeof (guint16));

      for (gsize i = 0; i < n; i++)
        g_string_append_printf (out, " %u", p[i]);
    }
  g_variant_lookup (capture, "listener-port", "q", &listener_port);
  g_string_append_printf (out, " → :%u", listener_port);
  if (!ph_dict_boolean (capture, "active"))
    /* TRANSLATORS: after the capture's mode and ports: the rules are put in only while the
     * tunnel is on */
    g_string_append (out, _ (" (not in force: the tunnel is off)"));
  return g_string_free (out, FALSE);
}

static void
print_status_json (PhAgent1 *agent, const char *error_name, const char *error_message)
{
  PhPoolCounts pool;

  g_autoptr (PhJson) j = ph_json_new ();

  ph_json_begin_object (j);
  ph_json_set_member (j, "version");
  ph_json_add_string (j, ph_agent1_get_version (agent));
  ph_json_set_member (j, "mode");
  ph_json_add_string (j, ph_agent1_get_mode (agent));
  ph_json_set_member (j, "state");
  ph_json_add_string (j, ph_agent1_get_state (agent));
  ph_json_set_member (j, "enabled");
  ph_json_add_boolean (j, ph_agent1_get_enabled (agent));
  ph_json_set_member (j, "last_error");
  ph_json_begin_object (j);
  ph_json_set_member (j, "name");
  ph_json_add_string (j, error_name);
  ph_json_set_member (j, "message");
  ph_json_add_string (j, error_message);
  ph_json_end_object (j);
  ph_json_set_member (j, "portal_url");
  ph_json_add_string (j, ph_or_empty (ph_agent1_get_portal_url (agent)));
  ph_json_set_member (j, "upstream");
  ph_json_add_string (j, ph_agent1_get_upstream (agent));
  ph_json_set_member (j, "upstreams");
  add_upstreams_json (j, agent);
  ph_json_set_member (j, "listeners");
  ph_json_add_strv (j, ph_agent1_get_listeners (agent));
  ph_json_set_member (j, "transparent_listeners");
  ph_json_add_strv (j, ph_agent1_get_transparent_listeners (agent));
  ph_json_set_member (j, "active_tunnels");
  ph_json_add_int64 (j, ph_agent1_get_active_tunnels (agent));
  ph_json_set_member (j, "bytes_up");
  ph_json_add_uint64 (j, ph_agent1_get_bytes_up (agent));
  ph_json_set_member (j, "bytes_down");
  ph_json_add_uint64 (j, ph_agent1_get_bytes_down (agent));
  ph_json_set_member (j, "seen_pin");
  ph_json_add_string (j, ph_agent1_get_seen_pin (agent));
  ph_json_set_member (j, "trusted_pins");
  ph_json_add_strv (j, ph_agent1_get_trusted_pins (agent));
  ph_json_set_member (j, "username");
  ph_json_add_string (j, ph_agent1_get_username (agent));
  ph_json_set_member (j, "credentials_stored");
  ph_json_add_boolean (j, ph_agent1_get_credentials_stored (agent));
  ph_json_set_member (j, "locked_keys");
  ph_json_add_strv (j, ph_agent1_get_locked_keys (agent));
  ph_json_set_member (j, "capture");
  ph_json_add_capture (j, ph_agent1_get_capture (agent));
  get_pool_counts (agent, &pool);
  ph_json_set_member (j, "cloud_connections");
  ph_json_begin_object (j);
  for (gsize i = 0; i < G_N_ELEMENTS (pool_fields); i++)
    {
      ph_json_set_member (j, pool_fields[i].name);
      ph_json_add_uint64 (j, G_STRUCT_MEMBER (guint64, &pool, pool_fields[i].offset));
    }
  ph_json_end_object (j);
  ph_json_end_object (j);
  ph_json_print (j);
}

static void
print_status_human (PhAgent1 *agent, const char *error_name, const char *error_message)
{
  g_auto (PhRows) rows = { 0 };
  g_autoptr (GString) out = g_string_new (NULL);
  const char *seen_pin = ph_agent1_get_seen_pin (agent);
  const char *portal_url = ph_agent1_get_portal_url (agent);
  const char *const *trusted = ph_agent1_get_trusted_pins (agent);
  const char *upstream = ph_agent1_get_upstream (agent);
  const char *username = ph_agent1_get_username (agent);
  guint tunnels = ph_agent1_get_active_tunnels (agent);
  g_autofree char *listeners = ph_join_or_none (ph_agent1_get_listeners (agent), ", ");
  g_autofree char *locked = ph_join_or_none (ph_agent1_get_locked_keys (agent), ", ");
  g_autofree char *trusted_text = ph_join_or_none (trusted, "\n");
  g_autofree char *up = g_format_size (ph_agent1_get_bytes_up (agent));
  g_autofree char *down = g_format_size (ph_agent1_get_bytes_down (agent));
  g_autofree char *mode = NULL;
  g_autofree char *tunnels_text = NULL;
  g_autofree char *traffic = NULL;
  g_autofree char *seen = NULL;
  g_autofree char *pool_text = NULL;
  g_autofree char *h2_text = NULL;
  g_autofree char *upstreams = NULL;
  PhPoolCounts pool;

  ph_rows_init (&rows, 0);
  /* State names are the contract's own words (off, connecting, on, error, captive-portal). */
  ph_rows_add (&rows, _ ("State:"), ph_agent1_get_state (agent));
  if (portal_url != NULL && *portal_url != '\0')
    /* TRANSLATORS: the captive portal's page, where the user signs in to the network */
    ph_rows_add (&rows, _ ("Sign in at:"), portal_url);
  /* TRANSLATORS: "session (agent 0.1.0)": how the agent runs and its version */
  mode = g_strdup_printf (_ ("%s (agent %s)"), ph_or_empty (ph_agent1_get_mode (agent)),
                          ph_or_empty (ph_agent1_get_version (agent)));
  ph_rows_add (&rows, _ ("Mode:"), mode);
  ph_rows_add (&rows, _ ("Upstream:"),
               upstream != NULL && *upstream != '\0' ? upstream
                                                     /* TRANSLATORS: no cloud proxy set */
                                                     : _ ("not configured"));
  upstreams = format_upstreams (agent);
  if (upstreams != NULL)
    /* TRANSLATORS: a row label of pinholectl status: each cloud proxy and its health */
    ph_rows_add (&rows, _ ("Cloud proxies:"), upstreams);
  ph_rows_add (&rows, _ ("Listeners:"), listeners);
  if (ph_agent1_get_transparent_listeners (agent) != NULL
      && ph_agent1_get_transparent_listeners (agent)[0] != NULL)
    {
      g_autofree char *transparent
          = g_strjoinv (", ", (char **) ph_agent1_get_transparent_listeners (agent));
      /* TRANSLATORS: a row label of pinholectl status: the transparent listeners' addresses */
      ph_rows_add (&rows, _ ("Transparent:"), transparent);
    }
  if (ph_agent1_get_capture (agent) != NULL)
    {
      g_autofree char *capture = format_capture (ph_agent1_get_capture (agent));
      /* TRANSLATORS: a row label of pinholectl status: the transparent capture's rules */
      ph_rows_add (&rows, _ ("Capture:"), capture);
    }
  tunnels_text = g_strdup_printf (ngettext ("%u open", "%u open", tunnels), tunnels);
  ph_rows_add (&rows, _ ("Tunnels:"), tunnels_text);
  /* TRANSLATORS: bytes carried, e.g. "1.2 MB up, 35.0 MB down" */
  traffic = g_strdup_printf (_ ("%s up, %s down"), up, down);
  ph_rows_add (&rows, _ ("Traffic:"), traffic);
  if (seen_pin == NULL || *seen_pin == '\0')
    /* TRANSLATORS: no TLS handshake with the cloud proxy yet */
    seen = g_strdup (_ ("none yet"));
  else if (trusted != NULL && g_strv_contains (trusted, seen_pin))
    seen = g_strdup_printf (_ ("%s (trusted)"), seen_pin);
  else
    seen = g_strdup_printf (_ ("%s (NOT trusted)"), seen_pin);
  ph_rows_add (&rows, _ ("Seen pin:"), seen);
  ph_rows_add (&rows, _ ("Trusted pins:"), trusted_text);
  ph_rows_add (&rows, _ ("User:"),
               username != NULL && *username != '\0' ? username
                                                     /* TRANSLATORS: no proxy user name */
                                                     : _ ("none"));
  ph_rows_add (&rows, _ ("Credentials stored:"),
               ph_yes_no (ph_agent1_get_credentials_stored (agent)));
  ph_rows_add (&rows, _ ("Locked keys:"), locked);
  get_pool_counts (agent, &pool);
  if (pool.made > 0)
    {
      guint64 handshakes = pool.resumed + pool.full;
      guint percent = handshakes > 0 ? (guint) (100 * pool.resumed / handshakes) : 0;

      g_autofree char *made = g_strdup_printf ("%" G_GUINT64_FORMAT, pool.made);
      g_autofree char *reused = g_strdup_printf ("%" G_GUINT64_FORMAT, pool.idle_reused);

      /* TRANSLATORS: connections made to the cloud proxy, the share of their TLS handshakes
       * that resumed a session, and how many requests rode a kept-alive connection, e.g.
       * "12 made (91% resumed), 340 requests on kept-alive ones" */
      pool_text = g_strdup_printf (_ ("%s made (%u%% resumed), %s requests on kept-alive ones"),
                                   made, percent, reused);
      /* TRANSLATORS: a row label of pinholectl status: connections to the cloud proxy */
      ph_rows_add (&rows, _ ("Cloud connections:"), pool_text);
    }
  if (pool.h2_made > 0)
    {
      g_autofree char *now = g_strdup_printf ("%" G_GUINT64_FORMAT, pool.h2_now);
      g_autofree char *streams_now = g_strdup_printf ("%" G_GUINT64_FORMAT, pool.h2_streams_now);
      g_autofree char *streams = g_strdup_printf ("%" G_GUINT64_FORMAT, pool.h2_streams);

      /* TRANSLATORS: HTTP/2 connections to the cloud proxy open now, the streams (tunnels and
       * requests) they carry now, and streams so far, e.g. "1 open with 12 streams; 3400 streams
       * so far" */
      h2_text = g_strdup_printf (_ ("%s open with %s streams; %s streams so far"), now, streams_now,
                                 streams);
      /* TRANSLATORS: a row label of pinholectl status */
      ph_rows_add (&rows, _ ("HTTP/2 to the cloud:"), h2_text);
    }
  if (*error_name != '\0' || *error_message != '\0')
    {
      g_autofree char *message = g_strstrip (g_strdup (error_message));
      /* TRANSLATORS: the agent's error message, then the D-Bus error name */
      g_autofree char *text = g_strdup_printf (_ ("%s (%s)"), message, error_name);

      ph_rows_add (&rows, _ ("Last error:"), text);
    }
  ph_rows_print (&rows, out);
  g_print ("%s", out->str);
}

gboolean
ph_ctl_cmd_status (PhCtl *ctl, char **args, GError **error)
{
  const char *error_name = "";
  const char *error_message = "";
  GVariant *last_error;

  if (!ph_ctl_connect (ctl, error) || !ph_ctl_load_properties (ctl, error))
    return FALSE;
  last_error = ph_agent1_get_last_error (ctl->agent);
  if (last_error != NULL && g_variant_is_of_type (last_error, G_VARIANT_TYPE ("(ss)")))
    g_variant_get (last_error, "(&s&s)", &error_name, &error_message);
  if (ctl->json)
    print_status_json (ctl->agent, error_name, error_message);
  else
    print_status_human (ctl->agent, error_name, error_message);
  return TRUE;
}

/* ---- switches ---- */

gboolean
ph_ctl_cmd_enable (PhCtl *ctl, char **args, GError **error)
{
  return ph_ctl_connect (ctl, error) && ph_agent1_call_enable_sync (ctl->agent, NULL, error);
}

gboolean
ph_ctl_cmd_disable (PhCtl *ctl, char **args, GError **error)
{
  return ph_ctl_connect (ctl, error) && ph_agent1_call_disable_sync (ctl->agent, NULL, error);
}

gboolean
ph_ctl_cmd_reload (PhCtl *ctl, char **args, GError **error)
{
  return ph_ctl_connect (ctl, error) && ph_agent1_call_reload_sync (ctl->agent, NULL, error);
}

/* ---- capture ---- */

static gboolean
set_capture (PhCtl *ctl, const char *mode, GError **error)
{
  return ph_ctl_connect (ctl, error)
         && ph_agent1_call_set_capture_sync (ctl->agent, mode, NULL, error);
}

gboolean
ph_ctl_cmd_capture_on (PhCtl *ctl, char **args, GError **error)
{
  g_autofree char *mode
      = ctl->gateway != NULL ? g_strdup_printf ("gateway %s", ctl->gateway) : g_strdup ("local");

  return set_capture (ctl, mode, error);
}

gboolean
ph_ctl_cmd_capture_off (PhCtl *ctl, char **args, GError **error)
{
  return set_capture (ctl, "off", error);
}

gboolean
ph_ctl_cmd_capture_status (PhCtl *ctl, char **args, GError **error)
{
  GVariant *capture;

  if (!ph_ctl_connect (ctl, error) || !ph_ctl_load_properties (ctl, error))
    return FALSE;
  capture = ph_agent1_get_capture (ctl->agent);
  if (capture == NULL)
    {
      g_set_error_literal (error, PH_CTL_ERROR, PH_CTL_ERROR_FAILED,
                           _ ("the agent does not say what it captures (an older agent?)"));
      return FALSE;
    }
  if (ctl->json)
    {
      g_autoptr (PhJson) j = ph_json_new ();

      ph_json_add_capture (j, capture);
      ph_json_print (j);
    }
  else
    {
      g_auto (PhRows) rows = { 0 };
      g_autoptr (GString) out = g_string_new (NULL);
      g_autofree char *text = format_capture (capture);

      ph_rows_init (&rows, 0);
      ph_rows_add (&rows, _ ("Capture:"), text);
      ph_rows_print (&rows, out);
      g_print ("%s", out->str);
    }
  if (*ph_dict_string (capture, "error") != '\0')
    ctl->exit_status = PH_CTL_EXIT_FAILED;
  return TRUE;
}

/* ---- system-proxy (the machine-wide consumers) ---- */

/* One consumer of GetMachineProxy in words: "applied: http://127.0.0.1:3128 (/etc/environment)",
 * "not configured", "configured, not on this system", … */
static char *
format_machine_consumer (GVariant *consumer, gboolean tunnel_on, gboolean held)
{
  GString *out = g_string_new (NULL);
  const char *note = ph_dict_string (consumer, "note");
  g_autofree const char **files = NULL;
  g_autofree char *joined = NULL;

  g_variant_lookup (consumer, "files", "^a&s", &files);
  joined = files != NULL ? g_strjoinv (", ", (char **) files) : g_strdup ("");
  if (g_str_equal (note, "other-system"))
    /* TRANSLATORS: a consumer of [system-proxy] machine= that is another system's (winhttp on
     * Linux, environment on Windows): listed, and left alone here */
    g_string_append (out, _ ("configured, not on this system"));
  else if (ph_dict_boolean (consumer, "applied"))
    /* TRANSLATORS: a machine-wide consumer points at the agent: the proxy URL, then its files */
    g_string_append_printf (out, _ ("applied: %s (%s)"), ph_dict_string (consumer, "points-at"),
                            joined);
  else if (!ph_dict_boolean (consumer, "configured"))
    /* TRANSLATORS: a machine-wide consumer that [system-proxy] machine= does not list */
    g_string_append (out, _ ("not configured"));
  else if (held)
    /* TRANSLATORS: configured, but put back by "pinholectl system-proxy restore" */
    g_string_append (out, _ ("configured, put back by hand (system-proxy apply sets it again)"));
  else if (!tunnel_on)
    /* TRANSLATORS: configured; the files are set only while the tunnel is on */
    g_string_append (out, _ ("configured, not applied: the tunnel is off"));
  else
    /* TRANSLATORS: configured and the tunnel is on, yet the files do not hold the agent */
    g_string_append (out, _ ("configured, not applied"));
  if (g_str_equal (note, "changed"))
    /* TRANSLATORS: after a machine-wide consumer's state */
    g_string_append (out, _ (" — someone changed it since; Pinhole leaves it as it is"));
  else if (g_str_equal (note, "restart-docker"))
    /* TRANSLATORS: after docker's state; keep the command */
    g_string_append (out, _ (" — Docker uses it once restarted (systemctl restart docker); "
                             "Pinhole does not restart it, which would stop its containers"));
  else if (g_str_equal (note, "no-docker"))
    /* TRANSLATORS: after docker's state */
    g_string_append (out, _ (" — docker.service is not installed; the drop-in applies once it is"));
  return g_string_free (out, FALSE);
}

gboolean
ph_ctl_cmd_system_proxy_status (PhCtl *ctl, char **args, GError **error)
{
  g_autoptr (GVariant) status = NULL;
  g_autoptr (GVariant) consumers = NULL;
  gboolean tunnel_on, held;
  const char *failure;

  if (!ph_ctl_connect (ctl, error)
      || !ph_agent1_call_get_machine_proxy_sync (ctl->agent, &status, NULL, error))
    return FALSE;
  consumers = g_variant_lookup_value (status, "consumers", G_VARIANT_TYPE ("aa{sv}"));
  tunnel_on = ph_dict_boolean (status, "tunnel-on");
  held = ph_dict_boolean (status, "held");
  failure = ph_dict_string (status, "error");
  if (ctl->json)
    {
      g_autoptr (PhJson) j = ph_json_new ();

      ph_json_add_variant (j, status);
      ph_json_print (j);
    }
  else
    {
      g_auto (PhRows) rows = { 0 };
      g_autoptr (GString) out = g_string_new (NULL);
      GVariantIter iter;
      GVariant *one;

      ph_rows_init (&rows, 0);
      if (consumers != NULL)
        {
          g_variant_iter_init (&iter, consumers);
          while ((one = g_variant_iter_next_value (&iter)) != NULL)
            {
              g_autofree char *label = g_strconcat (ph_dict_string (one, "name"), ":", NULL);
              g_autofree char *text = format_machine_consumer (one, tunnel_on, held);

              ph_rows_add (&rows, label, text);
              g_variant_unref (one);
            }
        }
      if (*failure != '\0')
        /* TRANSLATORS: a row label of pinholectl system-proxy status */
        ph_rows_add (&rows, _ ("Error:"), failure);
      ph_rows_print (&rows, out);
      g_print ("%s", out->str);
    }
  if (*failure != '\0')
    ctl->exit_status = PH_CTL_EXIT_FAILED;
  return TRUE;
}

gboolean
ph_ctl_cmd_system_proxy_apply (PhCtl *ctl, char **args, GError **error)
{
  return ph_ctl_connect (ctl, error)
         && ph_agent1_call_apply_machine_proxy_sync (ctl->agent, NULL, error);
}

gboolean
ph_ctl_cmd_system_proxy_restore (PhCtl *ctl, char **args, GError **error)
{
  return ph_ctl_connect (ctl, error)
         && ph_agent1_call_restore_machine_proxy_sync (ctl->agent, NULL, error);
}

/* ---- pins ---- */

/* One certificate of FetchUpstreamPin's chain, as rows. */
static void
describe_certificate (PhRows *rows, GVariant *cert, gboolean full)
{
  g_autofree char *validity
      = ph_format_validity (ph_dict_int64 (cert, "not-before"), ph_dict_int64 (cert, "not-after"));

  ph_rows_add (rows, _ ("Subject:"), ph_dict_string (cert, "subject"));
  ph_rows_add (rows, _ ("Issuer:"), ph_dict_string (cert, "issuer"));
  ph_rows_add (rows, _ ("Valid:"), validity);
  if (full)
    {
      ph_rows_add (rows, _ ("Pin:"), ph_dict_string (cert, "pin"));
      ph_rows_add (rows, _ ("SHA-256:"), ph_dict_string (cert, "sha256-fingerprint"));
    }
}

static char *
describe_server (GVariant *info)
{
  const char *host = ph_dict_string (info, "host");
  const char *server_name = ph_dict_string (info, "server-name");
  const char *protocol = ph_dict_string (info, "protocol");

  /* TRANSLATORS: "127.0.0.1:443 (name proxy.example.com, TLS1.3)" */
  return g_strdup_printf (_ ("%s (name %s, %s)"), host, server_name, protocol);
}

static char *
describe_ca (GVariant *info)
{
  const char *problem = ph_dict_string (info, "ca-problem");

  g_autofree char *why = g_strstrip (g_strdup (problem));

  if (ph_dict_boolean (info, "ca-trusted"))
    return g_strdup (_ ("yes"));
  if (*why == '\0')
    return g_strdup (_ ("no"));
  /* TRANSLATORS: "no: " and why the CA store does not accept the certificate */
  return g_strdup_printf (_ ("no: %s"), why);
}

gboolean
ph_ctl_cmd_pin_show (PhCtl *ctl, char **args, GError **error)
{
  g_autofree char *pin = NULL;
  g_autoptr (GVariant) chain = NULL;
  g_autoptr (GVariant) info = NULL;

  if (!ph_ctl_connect (ctl, error)
      || !ph_agent1_call_fetch_upstream_pin_sync (ctl->agent, &pin, &chain, &info, NULL, error))
    return FALSE;

  if (ctl->json)
    {
      g_autoptr (PhJson) j = ph_json_new ();

      ph_json_begin_object (j);
      ph_json_set_member (j, "pin");
      ph_json_add_string (j, pin);
      ph_json_set_member (j, "chain");
      ph_json_add_variant (j, chain);
      ph_json_set_member (j, "info");
      ph_json_add_variant (j, info);
      ph_json_end_object (j);
      ph_json_print (j);
    }
  else
    {
      g_auto (PhRows) rows = { 0 };
      g_autoptr (GString) out = g_string_new (NULL);
      g_autofree char *server = describe_server (info);
      g_autofree char *ca = describe_ca (info);
      gsize n = g_variant_n_children (chain);
      gboolean pin_trusted = ph_dict_boolean (info, "pin-trusted");

      ph_rows_init (&rows, 0);
      ph_rows_add (&rows, _ ("Cloud proxy:"), server);
      ph_rows_add (&rows, _ ("Pin:"), pin);
      ph_rows_add (&rows, _ ("Already trusted:"), ph_yes_no (pin_trusted));
      ph_rows_add (&rows, _ ("CA-trusted:"), ca);
      ph_rows_print (&rows, out);
      for (gsize i = 0; i < n; i++)
        {
          g_autoptr (GVariant) cert = g_variant_get_child_value (chain, i);
          g_auto (PhRows) cert_rows = { 0 };

          g_string_append_c (out, '\n');
          if (i == 0)
            /* TRANSLATORS: the first certificate of the chain, the server's own */
            g_string_append_printf (out, _ ("Certificate %u (the server's own):\n"), (guint) i + 1);
          else
            g_string_append_printf (out, _ ("Certificate %u:\n"), (guint) i + 1);
          ph_rows_init (&cert_rows, 2);
          describe_certificate (&cert_rows, cert, TRUE);
          ph_rows_print (&cert_rows, out);
        }
      if (!pin_trusted)
        {
          g_string_append_c (out, '\n');
          g_string_append (out, _ ("To trust this key: pinholectl pin trust"));
          g_string_append_c (out, '\n');
        }
      g_print ("%s", out->str);
    }
  return TRUE;
}

/* The certificate in @chain whose key has @pin, if the server sent one. */
static GVariant *
chain_find_pin (GVariant *chain, const char *pin)
{
  gsize n = chain != NULL ? g_variant_n_children (chain) : 0;

  for (gsize i = 0; i < n; i++)
    {
      g_autoptr (GVariant) cert = g_variant_get_child_value (chain, i);

      if (g_strcmp0 (ph_dict_string (cert, "pin"), pin) == 0)
        return g_steal_pointer (&cert);
    }
  return NULL;
}

gboolean
ph_ctl_cmd_pin_trust (PhCtl *ctl, char **args, GError **error)
{
  const char *given = args[0];
  g_autofree char *fetched = NULL;
  g_autoptr (GVariant) chain = NULL;
  g_autoptr (GVariant) info = NULL;
  g_autoptr (GVariant) cert = NULL;
  g_autoptr (GError) fetch_error = NULL;
  g_autoptr (GString) details = g_string_new (NULL);
  g_autoptr (PhTty) tty = NULL;
  g_auto (PhRows) rows = { 0 };
  const char *pin;

  /* Refuse before contacting anyone: there is nobody to confirm with. */
  if (!ctl->yes)
    {
      g_autoptr (GError) tty_error = NULL;

      tty = ph_tty_open (&tty_error);
      if (tty == NULL)
        {
          g_set_error (error, PH_CTL_ERROR, PH_CTL_ERROR_USAGE,
                       _ ("%s; see the key with “pinholectl pin show” and trust it with "
                          "“pinholectl pin trust --yes”"),
                       tty_error->message);
          return FALSE;
        }
    }

  if (!ph_ctl_connect (ctl, error))
    return FALSE;

  /* With a pin given (say, the next key of a rotation) the server need not present it, or even
   * be reachable: then there is less to show. */
  if (!ph_agent1_call_fetch_upstream_pin_sync (ctl->agent, &fetched, &chain, &info, NULL,
                                               &fetch_error))
    {
      if (given == NULL)
        {
          g_propagate_error (error, g_steal_pointer (&fetch_error));
          return FALSE;
        }
      g_dbus_error_strip_remote_error (fetch_error);
    }
  pin = given != NULL ? given : fetched;
  cert = chain_find_pin (chain, pin);

  if (info != NULL)
    {
      g_autofree char *server = describe_server (info);

      /* TRANSLATORS: %s is "127.0.0.1:443 (name proxy.example.com, TLS1.3)" */
      g_string_append_printf (details, _ ("The cloud proxy %s presents this key:\n"), server);
    }
  else
    {
      g_string_append (details, _ ("This key will be trusted:"));
      g_string_append_c (details, '\n');
    }
  ph_rows_init (&rows, 2);
  ph_rows_add (&rows, _ ("Pin:"), pin);
  if (cert != NULL)
    describe_certificate (&rows, cert, FALSE);
  if (info != NULL)
    {
      g_autofree char *ca = describe_ca (info);

      ph_rows_add (&rows, _ ("CA-trusted:"), ca);
    }
  ph_rows_print (&rows, details);
  if (fetch_error != NULL)
    g_string_append_printf (details, _ ("The cloud proxy could not be asked for its key: %s\n"),
                            fetch_error->message);
  else if (cert == NULL)
    g_string_append (details, _ ("The cloud proxy does not present this key now.\n"));
  g_print ("%s", details->str);

  if (info != NULL && g_strcmp0 (pin, fetched) == 0 && ph_dict_boolean (info, "pin-trusted"))
    {
      g_print ("%s\n", _ ("This key is already trusted."));
      return TRUE;
    }

  if (!ctl->yes)
    {
      gboolean yes = FALSE;
      gboolean ok;

      /* The user must see what they confirm even when stdout goes elsewhere. */
      ok = (ph_tty_stdout_is_terminal () || ph_tty_write (tty, details->str, error))
           /* TRANSLATORS: keep "[y/N]": y accepts, anything else (or Enter) declines */
           && ph_tty_confirm (tty, _ ("Trust this key? [y/N]"), &yes, error);
      g_clear_pointer (&tty, ph_tty_close);
      if (!ok)
        return FALSE;
      if (!yes)
        {
          g_set_error_literal (error, PH_CTL_ERROR, PH_CTL_ERROR_FAILED,
                               _ ("not trusted: the question was not answered with yes"));
          return FALSE;
        }
    }

  if (!ph_agent1_call_trust_pin_sync (ctl->agent, pin, NULL, error))
    return FALSE;
  /* TRANSLATORS: %s is the pin, "sha256//…" */
  g_print (_ ("Trusted %s.\n"), pin);
  return TRUE;
}

/* ---- credentials ---- */

/* Reads a new password for @username into @buf (PASSWORD_MAX bytes, NUL-terminated) and
 * @confirm: one line of standard input with --password-stdin, else twice on the terminal without
 * echo. @empty_hint says what to do instead of an empty one. The caller wipes both whatever
 * happens. */
static gboolean
read_new_password (PhCtl *ctl, const char *username, char *buf, char *confirm,
                   const char *empty_hint, GError **error)
{
  gsize len = 0;

  if (ctl->password_stdin)
    {
      if (!ph_tty_read_stdin_line (buf, PASSWORD_MAX, &len, error))
        {
          g_prefix_error (error, _ ("reading the password from standard input: "));
          return FALSE;
        }
    }
  else
    {
      g_autoptr (PhTty) tty = NULL;
      g_autofree char *prompt = NULL;
      gsize confirm_len = 0;
      gboolean ok;

      tty = ph_tty_open (error);
      if (tty == NULL)
        {
          g_prefix_error (error, "%s",
                          _ ("use --password-stdin to read the password from a pipe: "));
          return FALSE;
        }
      /* TRANSLATORS: %s is the proxy user name */
      prompt = g_strdup_printf (_ ("Password for %s: "), username);
      ok = ph_tty_read_secret (tty, prompt, buf, PASSWORD_MAX, &len, error)
           && ph_tty_read_secret (tty, _ ("Repeat the password: "), confirm, PASSWORD_MAX,
                                  &confirm_len, error);
      g_clear_pointer (&tty, ph_tty_close);
      if (!ok)
        return FALSE;
      if (len != confirm_len || memcmp (buf, confirm, len) != 0)
        {
          g_set_error_literal (error, PH_CTL_ERROR, PH_CTL_ERROR_USAGE,
                               _ ("the passwords do not match"));
          return FALSE;
        }
    }
  if (len == 0)
    {
      g_set_error_literal (error, PH_CTL_ERROR, PH_CTL_ERROR_USAGE, empty_hint);
      return FALSE;
    }
  if (!g_utf8_validate (buf, (gssize) len, NULL))
    {
      g_set_error_literal (error, PH_CTL_ERROR, PH_CTL_ERROR_USAGE,
                           _ ("the password is not valid UTF-8"));
      return FALSE;
    }
  return TRUE;
}

typedef gboolean (*PhSendPassword) (PhAgent1 *agent, const char *name, const char *password,
                                    GError **error);

static gboolean
send_credentials (PhAgent1 *agent, const char *name, const char *password, GError **error)
{
  return ph_agent1_call_set_credentials_sync (agent, name, password, NULL, error);
}

static gboolean
send_socks_user (PhAgent1 *agent, const char *name, const char *password, GError **error)
{
  return ph_agent1_call_set_socks_user_sync (agent, name, password, NULL, error);
}

/* A new password for @name (the proxy's user, a SOCKS user): read it (ph_ctl_connect first, so
 * that nobody types a password for an agent that is not there), hand it to @send, wipe it. */
static gboolean
store_new_password (PhCtl *ctl, const char *name, const char *empty_hint, PhSendPassword send,
                    GError **error)
{
  char buf[PASSWORD_MAX];
  char confirm[PASSWORD_MAX];
  gboolean ok;

  if (*name == '\0')
    {
      g_set_error_literal (error, PH_CTL_ERROR, PH_CTL_ERROR_USAGE, _ ("the user name is empty"));
      return FALSE;
    }
  if (!ph_ctl_connect (ctl, error))
    return FALSE;
  ok = read_new_password (ctl, name, buf, confirm, empty_hint, error)
       && send (ctl->agent, name, buf, error);
  ph_wipe (buf, sizeof buf);
  ph_wipe (confirm, sizeof confirm);
  return ok;
}

gboolean
ph_ctl_cmd_set_credentials (PhCtl *ctl, char **args, GError **error)
{
  if (!store_new_password (ctl, args[0],
                           _ ("the password is empty; to remove the stored password use "
                              "“pinholectl clear-credentials”"),
                           send_credentials, error))
    return FALSE;
  /* TRANSLATORS: %s is the proxy user name */
  g_print (_ ("Credentials for %s stored.\n"), args[0]);
  return TRUE;
}

gboolean
ph_ctl_cmd_clear_credentials (PhCtl *ctl, char **args, GError **error)
{
  return ph_ctl_connect (ctl, error)
         && ph_agent1_call_clear_credentials_sync (ctl->agent, NULL, error);
}

/* ---- SOCKS users ---- */

gboolean
ph_ctl_cmd_socks_user_add (PhCtl *ctl, char **args, GError **error)
{
  if (!store_new_password (ctl, args[0],
                           _ ("the password is empty; to remove the SOCKS user use "
                              "“pinholectl socks-user remove”"),
                           send_socks_user, error))
    return FALSE;
  /* TRANSLATORS: %s is a SOCKS user name */
  g_print (_ ("SOCKS user %s stored.\n"), args[0]);
  return TRUE;
}

gboolean
ph_ctl_cmd_socks_user_remove (PhCtl *ctl, char **args, GError **error)
{
  return ph_ctl_connect (ctl, error)
         && ph_agent1_call_remove_socks_user_sync (ctl->agent, args[0], NULL, error);
}

/* The names of [listener] socks-users, one a line: never a password, which stays in the agent's
 * secret store. */
gboolean
ph_ctl_cmd_socks_user_list (PhCtl *ctl, char **args, GError **error)
{
  g_autofree char *value = NULL;
  g_auto (GStrv) names = NULL;
  gboolean locked = FALSE;

  if (!ph_ctl_connect (ctl, error)
      || !ph_agent1_call_get_setting_sync (ctl->agent, "listener.socks-users", &value, &locked,
                                           NULL, error))
    return FALSE;
  names = g_strsplit_set (value, ";,", -1);
  if (ctl->json)
    {
      g_autoptr (PhJson) j = ph_json_new ();

      ph_json_begin_array (j);
      for (guint i = 0; names[i] != NULL; i++)
        if (*g_strstrip (names[i]) != '\0')
          ph_json_add_string (j, names[i]);
      ph_json_end_array (j);
      ph_json_print (j);
      return TRUE;
    }
  for (guint i = 0; names[i] != NULL; i++)
    if (*g_strstrip (names[i]) != '\0')
      g_print ("%s\n", names[i]);
  return TRUE;
}

/* ---- settings ---- */

gboolean
ph_ctl_cmd_get (PhCtl *ctl, char **args, GError **error)
{
  g_autofree char *value = NULL;
  gboolean locked = FALSE;

  if (!ph_ctl_connect (ctl, error)
      || !ph_agent1_call_get_setting_sync (ctl->agent, args[0], &value, &locked, NULL, error))
    return FALSE;
  if (ctl->json)
    {
      g_autoptr (PhJson) j = ph_json_new ();

      ph_json_begin_object (j);
      ph_json_set_member (j, "key");
      ph_json_add_string (j, args[0]);
      ph_json_set_member (j, "value");
      ph_json_add_string (j, value);
      ph_json_set_member (j, "locked");
      ph_json_add_boolean (j, locked);
      ph_json_end_object (j);
      ph_json_print (j);
    }
  else
    {
      /* Only the value, so that scripts can use $(pinholectl get KEY). */
      g_print ("%s\n", value);
    }
  return TRUE;
}

gboolean
ph_ctl_cmd_set (PhCtl *ctl, char **args, GError **error)
{
  return ph_ctl_connect (ctl, error)
         && ph_agent1_call_set_setting_sync (ctl->agent, args[0], args[1], NULL, error);
}

/* ---- the tray's elevated helper (Windows) ---- */

/* One request of the tray's (ph-elevate.h), done in order until one is refused. */
static GVariant *
apply_from_tray (GVariant *request, gpointer data)
{
  PhCtl *ctl = data;
  g_autoptr (GError) error = NULL;
  GVariantIter iter;
  const char *op;
  const char *a;
  const char *b;
  guint done = 0;

  if (!ph_ctl_connect (ctl, &error))
    return g_variant_new ("(us)", 0, error->message);
  g_variant_iter_init (&iter, request);
  while (g_variant_iter_next (&iter, "(&s&s&s)", &op, &a, &b))
    {
      gboolean ok;

      if (g_str_equal (op, PH_ELEVATE_OP_SET))
        ok = ph_agent1_call_set_setting_sync (ctl->agent, a, b, NULL, &error);
      else if (g_str_equal (op, PH_ELEVATE_OP_CREDENTIALS))
        ok = ph_agent1_call_set_credentials_sync (ctl->agent, a, b, NULL, &error);
      else if (g_str_equal (op, PH_ELEVATE_OP_TRUST_PIN))
        ok = ph_agent1_call_trust_pin_sync (ctl->agent, a, NULL, &error);
      else
        {
          g_set_error (&error, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT,
                       /* TRANSLATORS: %s is a word the tray sent, not translated */
                       _ ("unknown operation %s"), op);
          ok = FALSE;
        }
      if (!ok)
        {
          g_dbus_error_strip_remote_error (error);
          break;
        }
      done++;
    }
  return g_variant_new ("(us)", done, error != NULL ? error->message : "");
}

gboolean
ph_ctl_cmd_apply_from_tray (PhCtl *ctl, char **args, GError **error)
{
  return ph_elevate_serve (args[0], apply_from_tray, ctl, error);
}

gboolean
ph_ctl_cmd_settings (PhCtl *ctl, char **args, GError **error)
{
  g_autoptr (GVariant) settings = NULL;
  GVariantIter iter;
  const char *key;
  const char *value;
  const char *default_value;
  gboolean locked;

  if (!ph_ctl_connect (ctl, error)
      || !ph_agent1_call_list_settings_sync (ctl->agent, &settings, NULL, error))
    return FALSE;

  if (ctl->json)
    {
      g_autoptr (PhJson) j = ph_json_new ();

      ph_json_begin_array (j);
      g_variant_iter_init (&iter, settings);
      while (g_variant_iter_next (&iter, "(&s&sb&s)", &key, &value, &locked, &default_value))
        {
          ph_json_begin_object (j);
          ph_json_set_member (j, "key");
          ph_json_add_string (j, key);
          ph_json_set_member (j, "value");
          ph_json_add_string (j, value);
          ph_json_set_member (j, "default");
          ph_json_add_string (j, default_value);
          ph_json_set_member (j, "locked");
          ph_json_add_boolean (j, locked);
          ph_json_end_object (j);
        }
      ph_json_end_array (j);
      ph_json_print (j);
    }
  else
    {
      g_autoptr (GString) out = g_string_new (NULL);
      /* TRANSLATORS: column headings of "pinholectl settings" */
      const char *heading[] = { _ ("KEY"), _ ("VALUE"), _ ("DEFAULT"), _ ("LOCKED") };
      glong width[3];

      for (guint c = 0; c < 3; c++)
        width[c] = ph_text_width (heading[c]);
      g_variant_iter_init (&iter, settings);
      while (g_variant_iter_next (&iter, "(&s&sb&s)", &key, &value, &locked, &default_value))
        {
          width[0] = MAX (width[0], ph_text_width (key));
          width[1] = MAX (width[1], ph_text_width (value));
          width[2] = MAX (width[2], ph_text_width (default_value));
        }
      for (guint c = 0; c < 4; c++)
        ph_table_cell (out, heading[c], c < 3 ? width[c] : 0, c == 3);
      ph_end_line (out, 0);
      g_variant_iter_init (&iter, settings);
      while (g_variant_iter_next (&iter, "(&s&sb&s)", &key, &value, &locked, &default_value))
        {
          gsize start = out->len;

          ph_table_cell (out, key, width[0], FALSE);
          ph_table_cell (out, value, width[1], FALSE);
          ph_table_cell (out, default_value, width[2], FALSE);
          /* TRANSLATORS: in the LOCKED column of a key set by IT; unlocked keys show nothing */
          ph_table_cell (out, locked ? _ ("locked") : "", 0, TRUE);
          ph_end_line (out, start);
        }
      g_print ("%s", out->str);
    }
  return TRUE;
}

/* ---- route ---- */

gboolean
ph_ctl_cmd_route (PhCtl *ctl, char **args, GError **error)
{
  g_autofree char *route = NULL;
  g_autofree char *reason = NULL;
  g_autofree char *rule = NULL;
  g_autofree char *description = NULL;
  g_autofree char *why = NULL;

  if (!ph_ctl_connect (ctl, error)
      || !ph_agent1_call_explain_route_sync (ctl->agent, args[0], &route, &reason, &rule,
                                             &description, NULL, error))
    return FALSE;
  if (ctl->json)
    {
      g_autoptr (PhJson) j = ph_json_new ();

      ph_json_begin_object (j);
      ph_json_set_member (j, "target");
      ph_json_add_string (j, args[0]);
      ph_json_set_member (j, "route");
      ph_json_add_string (j, route);
      ph_json_set_member (j, "reason");
      ph_json_add_string (j, reason);
      ph_json_set_member (j, "rule");
      ph_json_add_string (j, rule);
      ph_json_set_member (j, "description");
      ph_json_add_string (j, description);
      ph_json_end_object (j);
      ph_json_print (j);
      return TRUE;
    }
  /* The route's word stays as the access line writes it, for scripts: "direct  (…)". */
  why = ph_format_route_reason (reason, rule, description);
  g_print ("%s  (%s)\n", route, why);
  return TRUE;
}

/* ---- doctor ---- */

/* Every step runs with its own timeouts on the agent's side, the proxies side by side: a DNS
 * lookup (10 s), TCP to each address (5 s), TLS (10 s), and two exchanges of up to 30 s. */
#define DIAGNOSE_TIMEOUT_MS (150 * 1000)

static const char *
step_label (const char *step)
{
  if (g_strcmp0 (step, "dns") == 0)
    return _ ("DNS");
  if (g_strcmp0 (step, "tcp") == 0)
    return _ ("TCP");
  if (g_strcmp0 (step, "tls") == 0)
    return _ ("TLS");
  if (g_strcmp0 (step, "auth") == 0)
    /* TRANSLATORS: a step of "pinholectl doctor": signing in to the cloud proxy */
    return _ ("Sign-in");
  if (g_strcmp0 (step, "target") == 0)
    /* TRANSLATORS: a step of "pinholectl doctor": the URL given, fetched through the proxy */
    return _ ("Target");
  return step;
}

static const char *
step_status_word (const char *status)
{
  if (g_strcmp0 (status, "ok") == 0)
    /* TRANSLATORS: a step's result in "pinholectl doctor" */
    return _ ("ok");
  if (g_strcmp0 (status, "warning") == 0)
    /* TRANSLATORS: a step's result in "pinholectl doctor" */
    return _ ("warning");
  if (g_strcmp0 (status, "failed") == 0)
    /* TRANSLATORS: a step's result in "pinholectl doctor", in capitals to stand out */
    return _ ("FAILED");
  /* TRANSLATORS: a step's result in "pinholectl doctor" */
  return _ ("skipped");
}

static void
pad_to (GString *out, const char *text, glong width)
{
  g_string_append (out, text);
  for (glong w = ph_text_width (text); w < width; w++)
    g_string_append_c (out, ' ');
}

/* One block per cloud proxy: its name, then a line per step (what, result, verdict) with the
 * advice under the verdict; the summary last. */
static char *
format_diagnosis (GVariant *report)
{
  g_autoptr (GString) out = g_string_new (NULL);
  g_autoptr (GVariant) proxies
      = g_variant_lookup_value (report, "proxies", G_VARIANT_TYPE ("aa{sv}"));
  const char *steps_all[] = { "dns", "tcp", "tls", "auth", "target" };
  const char *words_all[] = { "ok", "warning", "failed", "skipped" };
  glong w_label = 0, w_word = 0;
  gsize n = proxies ? g_variant_n_children (proxies) : 0;

  for (guint i = 0; i < G_N_ELEMENTS (steps_all); i++)
    w_label = MAX (w_label, ph_text_width (step_label (steps_all[i])));
  for (guint i = 0; i < G_N_ELEMENTS (words_all); i++)
    w_word = MAX (w_word, ph_text_width (step_status_word (words_all[i])));
  for (gsize i = 0; i < n; i++)
    {
      g_autoptr (GVariant) proxy = g_variant_get_child_value (proxies, i);
      g_autoptr (GVariant) steps
          = g_variant_lookup_value (proxy, "steps", G_VARIANT_TYPE ("aa{sv}"));
      gsize n_steps = steps ? g_variant_n_children (steps) : 0;

      g_string_append_printf (out, "%s\n", ph_dict_string (proxy, "name"));
      for (gsize s = 0; s < n_steps; s++)
        {
          g_autoptr (GVariant) step = g_variant_get_child_value (steps, s);
          const char *advice = ph_dict_string (step, "advice");
          const char *status = ph_dict_string (step, "status");

          g_string_append (out, "  ");
          pad_to (out, step_label (ph_dict_string (step, "step")), w_label + 2);
          pad_to (out, step_status_word (status), w_word + 2);
          g_string_append (out, ph_dict_string (step, "verdict"));
          g_string_append_c (out, '\n');
          if (*advice != '\0')
            {
              for (glong w = 0; w < 2 + w_label + 2 + w_word + 2; w++)
                g_string_append_c (out, ' ');
              g_string_append_printf (out, "%s\n", advice);
            }
        }
      g_string_append_c (out, '\n');
    }
  g_string_append_printf (out, "%s\n", ph_dict_string (report, "summary"));
  return g_string_free (g_steal_pointer (&out), FALSE);
}

gboolean
ph_ctl_cmd_doctor (PhCtl *ctl, char **args, GError **error)
{
  g_autoptr (GVariant) report = NULL;

  if (!ph_ctl_connect (ctl, error))
    return FALSE;
  g_dbus_proxy_set_default_timeout (G_DBUS_PROXY (ctl->agent), DIAGNOSE_TIMEOUT_MS);
  if (!ph_agent1_call_diagnose_sync (ctl->agent, args[0] != NULL ? args[0] : "", &report, NULL,
                                     error))
    return FALSE;
  if (ctl->json)
    {
      g_autoptr (PhJson) j = ph_json_new ();

      ph_json_add_variant (j, report);
      ph_json_print (j);
    }
  else
    {
      g_autofree char *text = format_diagnosis (report);
      g_print ("%s", text);
    }
  ctl->exit_status = ph_ctl_exit_for_diagnosis (report);
  return TRUE;
}

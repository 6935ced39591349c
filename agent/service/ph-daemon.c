/* SPDX-License-Identifier: GPL-2.0-or-later */
/* ph-daemon.c: the service around the tunnel core: the on/off switch and
 * the state it shows, the configuration store's files applied live (watched,
 * or changed over the control interface), credentials from the secret store. */
#define G_LOG_DOMAIN "pinhole-daemon"

#include "ph-build-config.h"
#include "ph-capture.h"
#include "ph-machine-proxy.h"
#include "ph-config-store.h"
#include "ph-daemon.h"
#include "ph-doctor.h"
#include "ph-error.h"
#include "ph-network-watch.h"
#include "ph-portal.h"
#include "ph-server.h"
#include "ph-upstream.h"

#include <errno.h>
#include <string.h>
#include <glib/gstdio.h>
#include <glib/gi18n.h>

#define COUNTER_INTERVAL_MS 1000
#define DISABLE_DRAIN_US (5 * G_USEC_PER_SEC)
/* A captive-portal check that takes longer is taken for no network. */
#define PORTAL_CHECK_TIMEOUT_MS 5000
/* Once a check found no portal, the next failure checks again only this much later. */
#define PORTAL_RECHECK_US (30 * G_USEC_PER_SEC)
/* While requests go around the cloud proxy (or are refused behind a portal), nothing else may
 * try it (the warm pool may be off): it is tried from here, after 1 s, doubling up to 15 s, so a
 * proxy that is back (the user signed in to the portal) turns the state to "on" within 15 s. */
#define RETRY_MIN_MS 1000
#define RETRY_MAX_MS 15000

/* A server's counters at one moment, summed over servers. */
typedef struct
{
  guint connections;
  guint tunnels;
  guint64 requests;
  guint64 bytes_up;
  guint64 bytes_down;
} ServerCounts;

static void
server_counts_add (ServerCounts *counts, PhServer *server)
{
  counts->connections += ph_server_get_n_connections (server);
  counts->tunnels += ph_server_get_n_tunnels (server);
  counts->requests += ph_server_get_total_requests (server);
  counts->bytes_up += ph_server_get_bytes_up (server);
  counts->bytes_down += ph_server_get_bytes_down (server);
}

/* A set of capture rules: what the configuration asks for, or what is in nftables. */
typedef struct
{
  PhCaptureMode mode;
  char *iface;   /* gateway */
  GArray *ports; /* of guint16 */
  guint16 listener_port;
  PhCaptureFamilies families; /* those the transparent listeners take */
  guint32 mark;
} PhCaptureRules;

static void
capture_rules_free (PhCaptureRules *rules)
{
  g_free (rules->iface);
  g_clear_pointer (&rules->ports, g_array_unref);
  g_free (rules);
}

G_DEFINE_AUTOPTR_CLEANUP_FUNC (PhCaptureRules, capture_rules_free)

struct _PhDaemon
{
  GObject parent;

  PhDaemonMode mode;
  PhConfigStore *store;
  char *state_dir;
  PhSecretStore *secrets;

  PhConfig *config;        /* the last good one, password filled in */
  guint config_generation; /* configurations put in force, for ConfigGeneration */
  GError *config_error;    /* why the files on disk are not what runs */
  GError *start_error;     /* why the listeners are not open while enabled */
  gboolean enabled;
  PhServer *server;      /* NULL while off */
  GPtrArray *draining;   /* of PhServer, finishing their tunnels */
  gint64 drain_deadline; /* for @draining */
  GSource *drain_poll;

  PhState state;
  gint64 state_since, started;
  char *seen_pin;
  GError *problem;                           /* what the state "error" is about */
  guint64 base_requests, base_up, base_down; /* of servers gone */
  guint64 upstream_connects, upstream_failures;
  ServerCounts last_counts;

  /* The network, while the cloud proxy cannot be reached: a captive portal, and the route
   * fallback worked out from it by update_fallback(). */
  GCancellable *portal_cancel; /* a check under way */
  char *portal_url;            /* behind a captive portal: where to sign in */
  gint64 portal_checked_us;    /* when the last check started */
  GSource *portal_timer;       /* portal-minutes after a portal was seen: check again */
  GSource *retry_source;       /* tries the cloud proxy while requests go around it */
  guint retry_ms;
  PhNetworkWatch *network_watch; /* network changes and wake-ups, while a server runs */

  /* [transparent] capture: the rules in nftables (ph-capture.h), there while a server runs and
   * capture= is not off. @capture_in is what was last put in (OFF: no table of ours). */
  PhCaptureRules *capture_in;
  GError *capture_error; /* why the rules wanted are not in */

  /* [system-proxy] machine=: the machine-wide consumers (ph-machine-proxy.h), pointed at the
   * listener while a server runs; NULL without a state directory (standalone), where no journal
   * could be kept. @machine_held: put back by hand (RestoreMachineProxy) until the next
   * ApplyMachineProxy or tunnel on. */
  PhMachineProxy *machine;
  gboolean machine_held;
  GError *machine_error; /* why the consumers asked for are not pointed at the agent */

  GSource *counter_source;
};

enum
{
  SIGNAL_CHANGED,
  N_SIGNALS
};
static guint signals[N_SIGNALS];

G_DEFINE_TYPE (PhDaemon, ph_daemon, G_TYPE_OBJECT)

static const char *const state_names[] = { "off", "connecting", "on", "error", "captive-portal" };

const char *
ph_state_to_string (PhState state)
{
  return state_names[state];
}

const char *
ph_daemon_mode_to_string (PhDaemonMode mode)
{
  static const char *const names[] = { "standalone", "system", "session" };
  return names[mode];
}

/* ---- state ---- */

static void
emit_changed (PhDaemon *d)
{
  g_signal_emit (d, signals[SIGNAL_CHANGED], 0);
}

static const GError *
current_problem (PhDaemon *d, GError **owned)
{
  PhUpstream *up;
  const GError *err;

  if (!d->enabled)
    return NULL;
  if (d->server == NULL)
    {
      if (d->start_error != NULL)
        return d->start_error;
      *owned = g_error_new (PH_ERROR, PH_ERROR_NOT_CONFIGURED, "%s",
                            _ (ph_config_get_unready_reason (d->config)));
      return *owned;
    }
  up = ph_server_get_upstream (d->server);
  err = ph_upstream_get_last_error (up);
  if (err != NULL && d->portal_url != NULL)
    {
      if (ph_config_get_portal (d->config) != PH_PORTAL_BLOCK)
        return NULL;
      *owned = g_error_new (PH_ERROR, PH_ERROR_BLOCKED,
                            /* TRANSLATORS: %s is the captive portal's web page */
                            _ ("a captive portal is in the way (sign in at %s); requests are "
                               "refused ([route] portal=block)"),
                            d->portal_url);
      return *owned;
    }
  if (err != NULL && ph_server_get_route_fallback (d->server) == PH_ROUTE_FALLBACK_UNREACHABLE)
    {
      *owned = g_error_new (PH_ERROR, PH_ERROR_UNREACHABLE_DIRECT,
                            /* TRANSLATORS: %s says why the cloud proxy cannot be reached */
                            _ ("the cloud proxy cannot be reached (%s); requests go directly "
                               "([route] when-unreachable=direct)"),
                            err->message);
      return *owned;
    }
  if (err != NULL && ph_upstream_get_n_proxies (up) > 1)
    {
      /* Several proxies: say which one, and whether traffic goes on through the others. */
      for (guint i = 0; i < ph_upstream_get_n_proxies (up); i++)
        if (ph_upstream_get_proxy_error (up, i) == err)
          {
            gboolean others = FALSE;
            for (guint j = 0; j < ph_upstream_get_n_proxies (up); j++)
              others |= ph_upstream_get_proxy_health (up, j) == PH_PROXY_UP;
            *owned = g_error_new (err->domain, err->code,
                                  others
                                      /* TRANSLATORS: a cloud proxy's host:port, then what is
                                       * wrong with it */
                                      ? _ ("cloud proxy %s: %s; requests go through the others")
                                      /* TRANSLATORS: a cloud proxy's host:port, then what is
                                       * wrong with it */
                                      : _ ("cloud proxy %s: %s"),
                                  ph_upstream_get_proxy_name (up, i), err->message);
            return *owned;
          }
    }
  if (err != NULL)
    return err;
  if (ph_upstream_get_auth_rejected (up))
    {
      *owned = g_error_new (PH_ERROR, PH_ERROR_AUTH_REJECTED,
                            /* TRANSLATORS: %s is the proxy user name */
                            _ ("the cloud proxy rejected the password for “%s”"),
                            ph_config_get_username (d->config) ? ph_config_get_username (d->config)
                                                               : "");
      return *owned;
    }
  if (ph_config_get_username (d->config) != NULL && ph_config_get_password (d->config) == NULL)
    {
      *owned = g_error_new (PH_ERROR, PH_ERROR_NO_CREDENTIALS,
                            /* TRANSLATORS: %s is the proxy user name */
                            _ ("no password is stored for “%s”: set the credentials"),
                            ph_config_get_username (d->config));
      return *owned;
    }
  return NULL;
}

/* ---- the network: an unreachable cloud proxy, captive portals ---- */

static void update_state (PhDaemon *d);

static void
source_clear (GSource **source)
{
  if (*source == NULL)
    return;
  g_source_destroy (*source);
  g_clear_pointer (source, g_source_unref);
}

/* Whether the last attempt on the cloud proxy failed at TCP, TLS or a timeout: the only failure
 * that may send requests around it or make a portal check. */
static gboolean
cloud_unreachable (PhDaemon *d)
{
  return d->enabled && d->server != NULL
         && ph_upstream_error_is_unreachable (
             ph_upstream_get_last_error (ph_server_get_upstream (d->server)));
}

static void
portal_reset (PhDaemon *d)
{
  if (d->portal_cancel != NULL)
    g_cancellable_cancel (d->portal_cancel);
  g_clear_object (&d->portal_cancel);
  g_clear_pointer (&d->portal_url, g_free);
  d->portal_checked_us = 0;
  source_clear (&d->portal_timer);
}

static void
network_reset (PhDaemon *d)
{
  portal_reset (d);
  source_clear (&d->retry_source);
  d->retry_ms = RETRY_MIN_MS;
}

static void portal_check_start (PhDaemon *d);

static void probe_done (PhStream *stream, GError *error, gpointer data);

static gboolean
retry_cb (gpointer data)
{
  PhDaemon *d = data;

  g_clear_pointer (&d->retry_source, g_source_unref);
  d->retry_ms = MIN (d->retry_ms * 2, RETRY_MAX_MS);
  if (d->server != NULL)
    ph_upstream_connect_async (ph_server_get_upstream (d->server), NULL, probe_done, NULL);
  return G_SOURCE_REMOVE;
}

static gboolean
portal_timer_cb (gpointer data)
{
  PhDaemon *d = data;

  g_clear_pointer (&d->portal_timer, g_source_unref);
  portal_check_start (d);
  return G_SOURCE_REMOVE;
}

static void
portal_check_done (GObject *source, GAsyncResult *result, gpointer data)
{
  PhDaemon *d = data;
  g_autoptr (GError) error = NULL;
  g_autofree char *url = NULL;
  PhPortalResult found = ph_portal_check_finish (result, &url, &error);

  if (g_error_matches (error, G_IO_ERROR, G_IO_ERROR_CANCELLED))
    {
      g_object_unref (d);
      return;
    }
  g_clear_object (&d->portal_cancel);
  if (found == PH_PORTAL_FOUND)
    {
      guint minutes = ph_config_get_portal_minutes (d->config);

      if (g_strcmp0 (url, d->portal_url) != 0)
        g_message ("a captive portal is in the way: sign in at %s; requests %s", url,
                   ph_config_get_portal (d->config) == PH_PORTAL_BLOCK
                       ? "are refused ([route] portal=block)"
                       : "go directly meanwhile ([route] portal=allow)");
      g_free (d->portal_url);
      d->portal_url = g_steal_pointer (&url);
      source_clear (&d->portal_timer);
      d->portal_timer = g_timeout_source_new_seconds (MAX (minutes, 1) * 60);
      g_source_set_callback (d->portal_timer, portal_timer_cb, d, NULL);
      g_source_attach (d->portal_timer, NULL);
    }
  else
    {
      if (d->portal_url != NULL)
        g_message ("the captive portal is gone");
      if (error != NULL)
        g_message ("captive-portal check: %s", error->message);
      g_clear_pointer (&d->portal_url, g_free);
    }
  update_state (d);
  g_object_unref (d);
}

static void
portal_check_start (PhDaemon *d)
{
  const char *check = ph_config_get_portal_check (d->config);

  if (d->portal_cancel != NULL || check == NULL || *check == '\0')
    return;
  g_debug ("checking for a captive portal at %s", check);
  d->portal_checked_us = g_get_monotonic_time ();
  d->portal_cancel = g_cancellable_new ();
  ph_portal_check_async (check, PORTAL_CHECK_TIMEOUT_MS, d->portal_cancel, portal_check_done,
                         g_object_ref (d));
}

/* The cloud proxy failed: is a captive portal the reason? Checked once a portal is suspected,
 * then again portal-minutes after one was seen (its timer), or PORTAL_RECHECK_US after none was. */
static void
portal_maybe_check (PhDaemon *d)
{
  if (!cloud_unreachable (d) || d->portal_url != NULL)
    return;
  if (d->portal_checked_us != 0
      && g_get_monotonic_time () - d->portal_checked_us < PORTAL_RECHECK_US)
    return;
  portal_check_start (d);
}

/* Where requests no rule routes go, from the facts: around the cloud proxy only while it cannot
 * be reached, and then only behind a portal under portal=allow, or under when-unreachable=direct.
 * While they go around it, or a portal refuses them, the cloud proxy is retried from here. */
static void
update_fallback (PhDaemon *d)
{
  PhRouteFallback want = PH_ROUTE_FALLBACK_NONE;
  gboolean unreachable = cloud_unreachable (d);

  if (d->server == NULL)
    return;
  if (!unreachable && d->portal_url != NULL)
    g_message ("the cloud proxy answers again: the captive portal is behind us");
  else if (d->portal_url != NULL && ph_config_get_portal_check (d->config) == NULL)
    g_message ("[route] portal-check is unset: the captive portal is no longer watched");
  if (!unreachable || ph_config_get_portal_check (d->config) == NULL)
    portal_reset (d);
  if (!unreachable)
    want = PH_ROUTE_FALLBACK_NONE;
  else if (d->portal_url != NULL)
    want = ph_config_get_portal (d->config) == PH_PORTAL_BLOCK ? PH_ROUTE_FALLBACK_PORTAL_BLOCK
                                                               : PH_ROUTE_FALLBACK_PORTAL;
  else if (ph_config_get_when_unreachable (d->config) == PH_UNREACHABLE_DIRECT)
    want = PH_ROUTE_FALLBACK_UNREACHABLE;
  if (want != ph_server_get_route_fallback (d->server))
    {
      if (want == PH_ROUTE_FALLBACK_NONE)
        g_message ("requests go through the cloud proxy again");
      else if (want == PH_ROUTE_FALLBACK_PORTAL_BLOCK)
        g_message ("behind a captive portal nothing goes directly ([route] portal=block)");
      else
        g_message ("requests no rule routes go directly (%s)",
                   ph_route_reason_to_string (want == PH_ROUTE_FALLBACK_PORTAL
                                                  ? PH_ROUTE_BY_PORTAL
                                                  : PH_ROUTE_BY_UNREACHABLE));
      ph_server_set_route_fallback (d->server, want);
    }
  if (unreachable && (want != PH_ROUTE_FALLBACK_NONE || d->portal_url != NULL))
    {
      if (d->retry_source == NULL)
        {
          d->retry_source = g_timeout_source_new (d->retry_ms);
          g_source_set_callback (d->retry_source, retry_cb, d, NULL);
          g_source_attach (d->retry_source, NULL);
        }
    }
  else
    {
      source_clear (&d->retry_source);
      d->retry_ms = RETRY_MIN_MS;
    }
}

/* Works the state out from the facts; logs and signals a change. */
static void
update_state (PhDaemon *d)
{
  g_autoptr (GError) owned = NULL;
  const GError *problem;
  PhState state;

  update_fallback (d);
  problem = current_problem (d, &owned);
  if (!d->enabled)
    state = PH_STATE_OFF;
  else if (d->portal_url != NULL)
    state = PH_STATE_CAPTIVE_PORTAL;
  else if (problem != NULL)
    state = PH_STATE_ERROR;
  else if (!ph_upstream_has_connected (ph_server_get_upstream (d->server)))
    state = PH_STATE_CONNECTING;
  else
    state = PH_STATE_ON;

  if (problem != NULL
      && (d->problem == NULL || d->problem->code != problem->code
          || g_strcmp0 (d->problem->message, problem->message) != 0))
    {
      g_clear_error (&d->problem);
      d->problem = g_error_copy (problem);
      g_message ("tunnel error: %s", problem->message);
    }
  else if (problem == NULL)
    g_clear_error (&d->problem);

  if (state != d->state)
    {
      if (state != PH_STATE_ERROR)
        g_message ("tunnel %s", ph_state_to_string (state));
      d->state = state;
      d->state_since = g_get_monotonic_time ();
    }
  emit_changed (d);
}

static void
upstream_notify (PhUpstream *up, PhUpstreamEvent event, gpointer data)
{
  PhDaemon *d = data;
  g_autofree char *pin = ph_upstream_dup_seen_pin (up);

  if (event == PH_UPSTREAM_CONNECTED)
    d->upstream_connects++;
  else if (event == PH_UPSTREAM_FAILED)
    {
      d->upstream_failures++;
      portal_maybe_check (d);
    }
  if (pin != NULL && g_strcmp0 (pin, d->seen_pin) != 0)
    {
      g_free (d->seen_pin);
      d->seen_pin = g_steal_pointer (&pin);
    }
  /* Every new tunnel without a warm connection lands here: one that only
   * confirms "on" changes nothing worth telling (the counters go out once
   * a second anyway). */
  else if (event == PH_UPSTREAM_CONNECTED && d->state == PH_STATE_ON)
    return;
  update_state (d);
}

/* ---- the switch, persisted ---- */

static char *
state_file (PhDaemon *d)
{
  return d->state_dir ? g_build_filename (d->state_dir, "state", NULL) : NULL;
}

static gboolean
load_enabled (PhDaemon *d)
{
  g_autofree char *path = state_file (d);
  g_autoptr (GKeyFile) kf = g_key_file_new ();
  g_autoptr (GError) error = NULL;
  gboolean enabled;

  if (path == NULL || !g_key_file_load_from_file (kf, path, G_KEY_FILE_NONE, NULL))
    return TRUE;
  enabled = g_key_file_get_boolean (kf, "agent", "enabled", &error);
  return error != NULL ? TRUE : enabled;
}

static void
save_enabled (PhDaemon *d)
{
  g_autofree char *path = state_file (d);
  g_autofree char *text = NULL;
  g_autoptr (GError) error = NULL;

  if (path == NULL)
    return;
  text = g_strdup_printf ("# Written by pinhole-agent: whether the tunnel is on.\n"
                          "[agent]\nenabled=%s\n",
                          d->enabled ? "true" : "false");
  if (g_mkdir_with_parents (d->state_dir, 0700) != 0
      || !g_file_set_contents_full (path, text, -1, G_FILE_SET_CONTENTS_CONSISTENT, 0600, &error))
    g_warning ("could not save the on/off state in %s: %s", path,
               error ? error->message : g_strerror (errno));
}

/* ---- transparent capture ---- */

/* The rules the configuration asks for now: none while no server runs (nothing would answer on
 * the listener's port) or under capture=off. ph-config.c saw to a transparent address. */
static PhCaptureRules *
capture_wanted (PhDaemon *d)
{
  g_autoptr (PhCaptureRules) rules = g_new0 (PhCaptureRules, 1);
  GPtrArray *transparent = ph_config_get_transparent (d->config);
  const char *iface = NULL;
  const guint16 *ports;
  guint n_ports;

  rules->mode = ph_config_get_capture (d->config, &iface);
  if (d->server == NULL || rules->mode == PH_CAPTURE_OFF || transparent->len == 0)
    return NULL;
  rules->iface = g_strdup (iface);
  ports = ph_config_get_capture_ports (d->config, &n_ports);
  rules->ports = g_array_sized_new (FALSE, FALSE, sizeof (guint16), n_ports);
  g_array_append_vals (rules->ports, ports, n_ports);
  rules->listener_port
      = g_inet_socket_address_get_port (G_INET_SOCKET_ADDRESS (g_ptr_array_index (transparent, 0)));
  for (guint i = 0; i < transparent->len; i++)
    {
      GInetSocketAddress *sa = g_ptr_array_index (transparent, i);
      if (g_inet_socket_address_get_port (sa) == rules->listener_port)
        rules->families
            |= g_socket_address_get_family (G_SOCKET_ADDRESS (sa)) == G_SOCKET_FAMILY_IPV6
                   ? PH_CAPTURE_IPV6
                   : PH_CAPTURE_IPV4;
    }
  rules->mark = ph_config_get_mark (d->config);
  return g_steal_pointer (&rules);
}

static gboolean
capture_rules_equal (const PhCaptureRules *a, const PhCaptureRules *b)
{
  if (a == NULL || b == NULL)
    return a == b;
  return a->mode == b->mode && g_strcmp0 (a->iface, b->iface) == 0
         && a->listener_port == b->listener_port && a->families == b->families && a->mark == b->mark
         && a->ports->len == b->ports->len
         && memcmp (a->ports->data, b->ports->data, a->ports->len * sizeof (guint16)) == 0;
}

/* "local, ports 80 443 -> :3129" for the journal. */
static char *
capture_describe (const PhCaptureRules *rules)
{
  GString *out = g_string_new (ph_capture_mode_to_string (rules->mode));

  if (rules->iface != NULL)
    g_string_append_printf (out, " %s", rules->iface);
  g_string_append (out, ", ports");
  for (guint i = 0; i < rules->ports->len; i++)
    g_string_append_printf (out, " %u", g_array_index (rules->ports, guint16, i));
  g_string_append_printf (out, " -> :%u (table %s)", rules->listener_port, PH_CAPTURE_TABLE);
  return g_string_free (out, FALSE);
}

static void
capture_failed (PhDaemon *d, GError *error)
{
  g_clear_error (&d->capture_error);
  /* One domain on the wire: nft's message under org.pinhole.Error.Failed. */
  d->capture_error = g_error_new_literal (PH_ERROR, PH_ERROR_FAILED, error->message);
}

/* Puts in, replaces or removes the rules so that they are what the configuration and the server
 * ask for. A failure leaves the agent serving; it is kept for the Capture property. */
static void
capture_sync (PhDaemon *d)
{
  g_autoptr (PhCaptureRules) want = capture_wanted (d);
  g_autoptr (GError) error = NULL;
  g_autofree char *what = NULL;

  if (capture_rules_equal (want, d->capture_in))
    {
      if (d->capture_error != NULL)
        {
          g_clear_error (&d->capture_error);
          emit_changed (d);
        }
      return;
    }
  if (want == NULL)
    {
      what = capture_describe (d->capture_in);
      if (!ph_capture_remove (&error))
        {
          g_warning ("could not remove the capture rules (%s): %s", what, error->message);
          capture_failed (d, error);
        }
      else
        {
          g_message ("capture rules removed (were: %s)", what);
          g_clear_pointer (&d->capture_in, capture_rules_free);
          g_clear_error (&d->capture_error);
        }
      emit_changed (d);
      return;
    }
  what = capture_describe (want);
  if (!ph_capture_apply (want->iface, (const guint16 *) (gpointer) want->ports->data,
                         want->ports->len, want->listener_port, want->families, want->mark, &error))
    {
      g_warning ("could not apply the capture rules (%s): %s", what, error->message);
      capture_failed (d, error);
    }
  else
    {
      g_message ("capture rules applied: %s", what);
      g_clear_pointer (&d->capture_in, capture_rules_free);
      d->capture_in = g_steal_pointer (&want);
      g_clear_error (&d->capture_error);
    }
  emit_changed (d);
}

/* At start: a table that is there now was left by a run that could not remove it (a crash, a
 * kill -9). Only looked for where capture can be meant: the system service, or capture= set. */
static void
capture_remove_stale (PhDaemon *d)
{
  g_autoptr (GError) error = NULL;
  gboolean exists = FALSE;

  if (d->mode != PH_DAEMON_MODE_SYSTEM && ph_config_get_capture (d->config, NULL) == PH_CAPTURE_OFF)
    return;
  if (!ph_capture_exists (&exists, &error))
    {
      g_debug ("cannot look for capture rules left by a previous run: %s", error->message);
      return;
    }
  if (!exists)
    return;
  if (!ph_capture_remove (&error))
    g_warning ("could not remove the capture rules left by a previous run (table %s): %s",
               PH_CAPTURE_TABLE, error->message);
  else
    g_message ("removed capture rules left by a previous run (table %s)", PH_CAPTURE_TABLE);
}

/* ---- servers ---- */

/* ---- machine-wide consumers ---- */

/* The port that 127.0.0.1 reaches: a loopback or wildcard IPv4 listener's, 0 when none. */
static guint
machine_port (PhDaemon *d)
{
  GPtrArray *listen = ph_config_get_listen (d->config);

  for (guint i = 0; listen != NULL && i < listen->len; i++)
    {
      GInetSocketAddress *sa = g_ptr_array_index (listen, i);
      GInetAddress *address = g_inet_socket_address_get_address (sa);

      if (g_inet_address_get_family (address) == G_SOCKET_FAMILY_IPV4
          && (g_inet_address_get_is_loopback (address) || g_inet_address_get_is_any (address)))
        return g_inet_socket_address_get_port (sa);
    }
  return 0;
}

/* Whether [system-proxy] machine= lists a consumer of this system (one file may list Linux's
 * and Windows'; each system skips the other's). */
static gboolean
machine_wanted_here (PhDaemon *d)
{
  const char *const *wanted = ph_config_get_machine_proxy (d->config);
  const char *const *here = ph_machine_proxy_consumers ();

  for (guint i = 0; wanted[i] != NULL; i++)
    if (g_strv_contains (here, wanted[i]))
      return TRUE;
  return FALSE;
}

/* Points the consumers [system-proxy] machine= lists at the listener while a server runs (and
 * they are not held back by hand); puts them back otherwise. */
static void
machine_sync (PhDaemon *d)
{
  const char *const *wanted = ph_config_get_machine_proxy (d->config);
  g_autoptr (GError) error = NULL;
  guint port = machine_port (d);

  if (d->machine == NULL)
    return;
  if (d->server != NULL && machine_wanted_here (d) && !d->machine_held && port != 0)
    {
      if (!ph_machine_proxy_apply (d->machine, wanted, port,
                                   ph_config_get_value (d->config, "route.direct"), &error))
        g_warning ("could not point the machine-wide proxy consumers at the agent: %s",
                   error->message);
    }
  else if (ph_machine_proxy_is_applied (d->machine)
           && !ph_machine_proxy_restore (d->machine, &error))
    g_warning ("could not put back the machine-wide proxy consumers: %s", error->message);
  else if (d->server != NULL && machine_wanted_here (d) && port == 0)
    error = g_error_new_literal (PH_ERROR, PH_ERROR_INVALID_CONFIG,
                                 /* TRANSLATORS: [system-proxy] machine= and [listener] address=
                                  * are the file's words */
                                 _ ("[system-proxy] machine= needs a [listener] address on "
                                    "127.0.0.1 or 0.0.0.0"));
  g_clear_error (&d->machine_error);
  d->machine_error = g_steal_pointer (&error);
}

static void
server_retire (PhDaemon *d, PhServer *server)
{
  d->base_requests += ph_server_get_total_requests (server);
  d->base_up += ph_server_get_bytes_up (server);
  d->base_down += ph_server_get_bytes_down (server);
  ph_server_free (server);
}

static gboolean
drain_poll_cb (gpointer data)
{
  PhDaemon *d = data;
  gboolean late = g_get_monotonic_time () > d->drain_deadline;

  for (guint i = d->draining->len; i > 0; i--)
    {
      PhServer *server = g_ptr_array_index (d->draining, i - 1);
      guint connections = ph_server_get_n_connections (server);

      if (connections == 0 || late)
        {
          if (connections > 0)
            g_message ("closing %u tunnels still open after the drain period", connections);
          g_ptr_array_steal_index (d->draining, i - 1);
          server_retire (d, server);
        }
    }
  if (d->draining->len > 0)
    return G_SOURCE_CONTINUE;
  g_clear_pointer (&d->drain_poll, g_source_unref);
  emit_changed (d);
  return G_SOURCE_REMOVE;
}

static void
stop_server (PhDaemon *d, gint64 drain_us)
{
  if (d->server == NULL)
    return;
  network_reset (d);
  g_clear_pointer (&d->network_watch, ph_network_watch_free);
  ph_server_drain (d->server);
  g_ptr_array_add (d->draining, g_steal_pointer (&d->server));
  capture_sync (d);
  machine_sync (d);
  d->drain_deadline = g_get_monotonic_time () + drain_us;
  if (d->drain_poll == NULL)
    {
      d->drain_poll = g_timeout_source_new (100);
      g_source_set_callback (d->drain_poll, drain_poll_cb, d, NULL);
      g_source_attach (d->drain_poll, NULL);
    }
}

/* A probe when the pool keeps nothing warm, so the state is known before
 * the first request. */
static void
probe_done (PhStream *stream, GError *error, gpointer data)
{
  if (stream != NULL)
    ph_stream_free (stream);
  g_clear_error (&error);
}

/* The network changed under the agent, or the machine woke up: pooled connections may be dead
 * and the cloud proxy may be reachable again (or behind a portal now). Open tunnels are left
 * alone: a socket that still works keeps working. */
static void
on_network_event (PhNetworkEvent event, const char *detail, gpointer data)
{
  PhDaemon *d = data;

  if (d->server == NULL)
    return;
  g_message (event == PH_NETWORK_RESUMED ? "resumed from sleep (%s)" : "network changed (%s)",
             detail);
  ph_upstream_network_changed (ph_server_get_upstream (d->server), event == PH_NETWORK_RESUMED
                                                                       ? "resumed from sleep"
                                                                       : "network changed");
  /* A portal seen before may be gone, or a new one in the way: the next failure checks at once,
   * and one already seen is checked now. */
  d->portal_checked_us = 0;
  if (d->portal_url != NULL && d->portal_cancel == NULL)
    {
      source_clear (&d->portal_timer);
      portal_check_start (d);
    }
  /* While requests go around the cloud proxy, its next try is now, not after the back-off. */
  if (d->retry_source != NULL)
    {
      source_clear (&d->retry_source);
      d->retry_ms = RETRY_MIN_MS;
      ph_upstream_connect_async (ph_server_get_upstream (d->server), NULL, probe_done, NULL);
    }
  else if (ph_config_get_warm (d->config) == 0)
    ph_upstream_connect_async (ph_server_get_upstream (d->server), NULL, probe_done, NULL);
}

static gboolean
start_server (PhDaemon *d, GError **error)
{
  g_clear_error (&d->start_error);
  if (ph_config_get_unready_reason (d->config) != NULL)
    {
      g_set_error (error, PH_ERROR, PH_ERROR_NOT_CONFIGURED, "%s",
                   _ (ph_config_get_unready_reason (d->config)));
      return FALSE;
    }
  network_reset (d);
  d->server = ph_server_new (d->config, error);
  if (d->server == NULL)
    return FALSE;
  ph_server_set_upstream_notify (d->server, upstream_notify, d);
  if (d->network_watch == NULL)
    d->network_watch = ph_network_watch_new (on_network_event, d);
  if (ph_config_get_warm (d->config) == 0)
    ph_upstream_connect_async (ph_server_get_upstream (d->server), NULL, probe_done, NULL);
  capture_sync (d);
  machine_sync (d);
  return TRUE;
}

/* ---- configuration ---- */

static char *
upstream_key (const PhConfig *config)
{
  if (ph_config_get_host (config) == NULL)
    return NULL;
  return g_strdup_printf (strchr (ph_config_get_host (config), ':') ? "[%s]:%u" : "%s:%u",
                          ph_config_get_host (config), ph_config_get_port (config));
}

/* Where a SOCKS user's password is kept in the secret store: beside the proxy's (whose key is
 * "host:port"), under a key of the user's name. */
static char *
socks_user_key (const char *name)
{
  return g_strdup_printf ("socks-user:%s", name);
}

/* The stored passwords of [listener] socks-users, handed to the engine with @config. */
static void
load_socks_passwords (PhDaemon *d, PhConfig *config)
{
  const char *const *users = ph_config_get_socks_users (config);

  for (guint i = 0; users != NULL && users[i] != NULL; i++)
    {
      g_autofree char *key = socks_user_key (users[i]);
      g_autoptr (GError) local = NULL;
      char *password = NULL;

      if (d->secrets == NULL)
        {
          g_warning ("this agent has no secret store: the SOCKS users cannot sign in");
          return;
        }
      if (!ph_secret_store_lookup (d->secrets, key, users[i], &password, &local))
        g_warning ("cannot read the stored password of SOCKS user “%s”: %s", users[i],
                   local->message);
      else if (password == NULL)
        g_warning ("SOCKS user “%s” has no stored password and cannot sign in", users[i]);
      else
        ph_config_take_socks_password (config, users[i], password);
    }
}

/* The configuration on disk, with the stored password when no
 * password-file supplies one. */
static PhConfig *
load_config (PhDaemon *d, GError **error)
{
  g_autoptr (PhConfig) config = ph_config_store_load (d->store, error);
  g_autofree char *key = NULL;
  g_autoptr (GError) local = NULL;

  if (config == NULL)
    return NULL;
  key = upstream_key (config);
  if (ph_config_get_password (config) == NULL && ph_config_get_username (config) != NULL
      && key != NULL && d->secrets != NULL)
    {
      char *password = NULL;
      if (!ph_secret_store_lookup (d->secrets, key, ph_config_get_username (config), &password,
                                   &local))
        g_warning ("cannot read the stored password: %s", local->message);
      else if (password != NULL)
        ph_config_take_password (config, password);
    }
  load_socks_passwords (d, config);
  return g_steal_pointer (&config);
}

/* Makes @config the running configuration. */
static gboolean
apply_config (PhDaemon *d, PhConfig *config, GError **error)
{
  if (d->server != NULL && ph_config_get_unready_reason (config) != NULL)
    stop_server (d, DISABLE_DRAIN_US);
  if (d->server != NULL && !ph_server_reload (d->server, config, error))
    return FALSE;
  g_clear_pointer (&d->config, ph_config_unref);
  d->config = ph_config_ref (config);
  d->config_generation++;
  ph_log_set_level (ph_config_get_log_level (config));
  if (d->enabled && d->server == NULL && ph_config_get_unready_reason (config) == NULL)
    {
      g_autoptr (GError) local = NULL;
      if (!start_server (d, &local))
        d->start_error = g_steal_pointer (&local);
    }
  capture_sync (d);
  machine_sync (d);
  return TRUE;
}

static gboolean
reload_now (PhDaemon *d, GError **error)
{
  g_autoptr (GError) local = NULL;
  g_autoptr (PhConfig) config = load_config (d, &local);

  if (config == NULL || !apply_config (d, config, &local))
    {
      g_warning ("configuration not applied, the last good one keeps running:\n%s", local->message);
      g_clear_error (&d->config_error);
      d->config_error = g_error_copy (local);
      update_state (d);
      g_propagate_error (error, g_steal_pointer (&local));
      return FALSE;
    }
  if (d->config_error != NULL)
    g_message ("configuration applied again");
  g_clear_error (&d->config_error);
  update_state (d);
  return TRUE;
}

gboolean
ph_daemon_reload (PhDaemon *d, GError **error)
{
  g_debug ("reloading the configuration");
  return reload_now (d, error);
}

/* A watched file changed and settled. */
static void
on_store_changed (PhConfigStore *store, gpointer data)
{
  reload_now (data, NULL);
}

/* ---- counters ---- */

static gboolean
counter_cb (gpointer data)
{
  PhDaemon *d = data;
  ServerCounts counts = { 0 };

  if (d->server != NULL)
    server_counts_add (&counts, d->server);
  if (memcmp (&counts, &d->last_counts, sizeof counts) != 0)
    {
      d->last_counts = counts;
      emit_changed (d);
    }
  return G_SOURCE_CONTINUE;
}

/* ---- capture ---- */

gboolean
ph_daemon_set_capture (PhDaemon *d, const char *mode, GError **error)
{
  PhCaptureMode parsed;
  g_autofree char *iface = NULL;
  g_autofree char *value = NULL;

  if (!ph_capture_mode_parse (mode, &parsed, &iface))
    {
      g_set_error (error, PH_ERROR, PH_ERROR_INVALID_SETTING,
                   /* TRANSLATORS: %s is what was asked for; off, local and gateway are words of
                    * the configuration file: keep them */
                   _ ("“%s” is not a capture mode: off, local or gateway IFACE"), mode);
      return FALSE;
    }
  value = parsed == PH_CAPTURE_GATEWAY
              ? g_strdup_printf ("%s %s", ph_capture_mode_to_string (parsed), iface)
              : g_strdup (ph_capture_mode_to_string (parsed));
  if (!ph_daemon_set_setting (d, "transparent.capture", value, error))
    return FALSE;
  if (d->capture_error != NULL)
    {
      g_propagate_error (error, g_error_copy (d->capture_error));
      return FALSE;
    }
  return TRUE;
}

GVariant *
ph_daemon_dup_capture (PhDaemon *d)
{
  const char *iface = NULL;
  PhCaptureMode mode = ph_config_get_capture (d->config, &iface);
  GPtrArray *transparent = ph_config_get_transparent (d->config);
  const guint16 *ports;
  guint n_ports;
  GVariantDict dict;

  ports = ph_config_get_capture_ports (d->config, &n_ports);
  g_variant_dict_init (&dict, NULL);
  g_variant_dict_insert (&dict, "mode", "s", ph_capture_mode_to_string (mode));
  g_variant_dict_insert (&dict, "interface", "s", iface != NULL ? iface : "");
  g_variant_dict_insert_value (
      &dict, "ports",
      g_variant_new_fixed_array (G_VARIANT_TYPE_UINT16, ports, n_ports, sizeof (guint16)));
  g_variant_dict_insert (&dict, "listener-port", "q",
                         transparent->len > 0 ? g_inet_socket_address_get_port (
                             G_INET_SOCKET_ADDRESS (g_ptr_array_index (transparent, 0)))
                                              : (guint16) 0);
  g_variant_dict_insert (&dict, "active", "b", d->capture_in != NULL);
  g_variant_dict_insert (&dict, "error", "s",
                         d->capture_error != NULL ? d->capture_error->message : "");
  return g_variant_ref_sink (g_variant_dict_end (&dict));
}

/* ---- machine-wide consumers, by hand ---- */

gboolean
ph_daemon_apply_machine_proxy (PhDaemon *d, GError **error)
{
  if (d->machine == NULL || !machine_wanted_here (d))
    {
      g_set_error_literal (error, PH_ERROR, PH_ERROR_NOT_CONFIGURED,
                           /* TRANSLATORS: [system-proxy] machine= is the file's words */
                           _ ("no machine-wide consumer of this system is configured "
                              "([system-proxy] machine=)"));
      return FALSE;
    }
  if (d->server == NULL)
    {
      g_set_error_literal (error, PH_ERROR, PH_ERROR_FAILED,
                           _ ("the tunnel is off: the machine-wide consumers are pointed at the "
                              "agent only while it is on"));
      return FALSE;
    }
  /* Applied already: put back first (what someone changed meanwhile stays theirs), so that the
   * files are written again from what they hold now, which is then what goes back at off. */
  if (ph_machine_proxy_is_applied (d->machine) && !ph_machine_proxy_restore (d->machine, error))
    return FALSE;
  d->machine_held = FALSE;
  machine_sync (d);
  emit_changed (d);
  if (d->machine_error != NULL)
    {
      g_propagate_error (error, g_error_copy (d->machine_error));
      return FALSE;
    }
  return TRUE;
}

gboolean
ph_daemon_restore_machine_proxy (PhDaemon *d, GError **error)
{
  if (d->machine == NULL)
    return TRUE;
  d->machine_held = TRUE;
  machine_sync (d);
  emit_changed (d);
  if (d->machine_error != NULL)
    {
      g_propagate_error (error, g_error_copy (d->machine_error));
      return FALSE;
    }
  return TRUE;
}

GVariant *
ph_daemon_dup_machine_proxy (PhDaemon *d)
{
  GVariantDict dict;
  g_autoptr (GVariant) consumers = NULL;
  const char *const *wanted = ph_config_get_machine_proxy (d->config);

  if (d->machine != NULL)
    consumers = ph_machine_proxy_dup_status (d->machine, wanted);
  else
    consumers = g_variant_ref_sink (g_variant_new_array (G_VARIANT_TYPE_VARDICT, NULL, 0));
  g_variant_dict_init (&dict, NULL);
  g_variant_dict_insert_value (&dict, "consumers", consumers);
  g_variant_dict_insert (&dict, "held", "b", d->machine_held);
  g_variant_dict_insert (&dict, "tunnel-on", "b", d->server != NULL);
  g_variant_dict_insert (&dict, "error", "s",
                         d->machine_error != NULL ? d->machine_error->message : "");
  return g_variant_ref_sink (g_variant_dict_end (&dict));
}

/* ---- object ---- */

static void
ph_daemon_finalize (GObject *object)
{
  PhDaemon *d = PH_DAEMON (object);

  if (d->store != NULL)
    g_signal_handlers_disconnect_by_data (d->store, d);
  g_clear_object (&d->store);
  if (d->counter_source != NULL)
    g_source_destroy (d->counter_source);
  g_clear_pointer (&d->counter_source, g_source_unref);
  if (d->drain_poll != NULL)
    g_source_destroy (d->drain_poll);
  g_clear_pointer (&d->drain_poll, g_source_unref);
  network_reset (d);
  g_clear_pointer (&d->network_watch, ph_network_watch_free);
  if (d->server != NULL)
    ph_server_free (d->server);
  /* Freed without a shutdown (a test, a failed start): the rules go too. */
  if (d->capture_in != NULL)
    {
      g_autoptr (GError) error = NULL;
      if (!ph_capture_remove (&error))
        g_warning ("could not remove the capture rules: %s", error->message);
      else
        g_message ("capture rules removed");
      g_clear_pointer (&d->capture_in, capture_rules_free);
    }
  g_clear_error (&d->capture_error);
  /* The service stops (or a test frees it): the consumers go back. */
  if (d->machine != NULL && ph_machine_proxy_is_applied (d->machine))
    {
      g_autoptr (GError) error = NULL;
      if (!ph_machine_proxy_restore (d->machine, &error))
        g_warning ("could not put back the machine-wide proxy consumers: %s", error->message);
    }
  g_clear_pointer (&d->machine, ph_machine_proxy_free);
  g_clear_error (&d->machine_error);
  g_ptr_array_unref (d->draining);
  g_clear_pointer (&d->config, ph_config_unref);
  g_clear_error (&d->config_error);
  g_clear_error (&d->start_error);
  g_clear_error (&d->problem);
  g_clear_pointer (&d->secrets, ph_secret_store_free);
  g_free (d->state_dir);
  g_free (d->seen_pin);
  G_OBJECT_CLASS (ph_daemon_parent_class)->finalize (object);
}

static void
ph_daemon_class_init (PhDaemonClass *klass)
{
  GObjectClass *object_class = G_OBJECT_CLASS (klass);

  object_class->finalize = ph_daemon_finalize;
  /* State, errors, settings or counters changed; counters at most once a
   * second. */
  signals[SIGNAL_CHANGED] = g_signal_new ("changed", G_TYPE_FROM_CLASS (klass), G_SIGNAL_RUN_LAST,
                                          0, NULL, NULL, NULL, G_TYPE_NONE, 0);
}

static void
ph_daemon_init (PhDaemon *d)
{
  /* A daemon freed while servers drain frees them too (their sweeps would
   * run on otherwise). */
  d->draining = g_ptr_array_new_with_free_func ((GDestroyNotify) ph_server_free);
  d->started = d->state_since = g_get_monotonic_time ();
  d->retry_ms = RETRY_MIN_MS;
}

static PhConfig *
defaults_only (void)
{
  g_autoptr (GPtrArray) none = g_ptr_array_new ();
  return ph_config_load_layers (none, NULL);
}

PhDaemon *
ph_daemon_new (const PhDaemonSetup *setup, GError **error)
{
  g_autoptr (PhDaemon) d = g_object_new (PH_TYPE_DAEMON, NULL);
  g_autoptr (PhConfig) config = NULL;
  g_autoptr (GError) local = NULL;
  gboolean standalone = setup->mode == PH_DAEMON_MODE_STANDALONE;
  PhConfigStoreSetup store_setup = {
    .system_path = setup->system_path,
    .user_path = setup->user_path,
    .managed_dir = setup->managed_dir,
    /* A standalone agent never writes its --config file. */
    .writable_path = standalone                              ? NULL
                     : setup->mode == PH_DAEMON_MODE_SESSION ? setup->user_path
                                                             : setup->system_path,
    .system_required = standalone,
  };

  d->mode = setup->mode;
  d->store = ph_config_store_new (&store_setup);
  d->state_dir = g_strdup (setup->state_dir);
  d->secrets = setup->secrets;

  config = load_config (d, &local);
  if (config == NULL)
    {
      if (standalone)
        {
          g_propagate_error (error, g_steal_pointer (&local));
          return NULL;
        }
      g_warning ("configuration not loaded, running unconfigured:\n%s", local->message);
      d->config_error = g_steal_pointer (&local);
      config = defaults_only ();
    }
  if (standalone && ph_config_get_unready_reason (config) != NULL)
    {
      g_set_error (error, PH_ERROR, PH_ERROR_NOT_CONFIGURED, "%s: %s", setup->system_path,
                   _ (ph_config_get_unready_reason (config)));
      return NULL;
    }
  d->config = ph_config_ref (config);
  d->config_generation = 1;
  ph_log_set_level (ph_config_get_log_level (config));
  d->enabled = standalone ? TRUE : load_enabled (d);
  capture_remove_stale (d);
  if (d->state_dir != NULL)
    {
      g_autofree char *journal = g_build_filename (d->state_dir, "machine-proxy.journal", NULL);
      gboolean restored = FALSE;

      /* A journal here: the last run ended without putting them back (kill -9, a crash). */
      d->machine = ph_machine_proxy_new (journal);
      if (!ph_machine_proxy_recover (d->machine, &restored, &local))
        {
          g_warning ("could not put back the machine-wide proxy consumers left by a previous "
                     "run: %s",
                     local->message);
          g_clear_error (&local);
        }
      else if (restored)
        g_message ("put back the machine-wide proxy consumers left by a previous run");
    }
  if (d->enabled && ph_config_get_unready_reason (config) == NULL && !start_server (d, &local))
    {
      if (standalone)
        {
          g_propagate_error (error, g_steal_pointer (&local));
          return NULL;
        }
      d->start_error = g_steal_pointer (&local);
    }

  if (setup->watch)
    {
      g_signal_connect (d->store, "changed", G_CALLBACK (on_store_changed), d);
      ph_config_store_watch (d->store);
    }
  d->counter_source = g_timeout_source_new (COUNTER_INTERVAL_MS);
  g_source_set_callback (d->counter_source, counter_cb, d, NULL);
  g_source_attach (d->counter_source, NULL);
  update_state (d);
  return g_steal_pointer (&d);
}

/* ---- the switch ---- */

gboolean
ph_daemon_enable (PhDaemon *d, GError **error)
{
  if (d->server == NULL && !start_server (d, error))
    {
      update_state (d);
      return FALSE;
    }
  d->machine_held = FALSE;
  if (!d->enabled)
    {
      d->enabled = TRUE;
      save_enabled (d);
    }
  update_state (d);
  return TRUE;
}

void
ph_daemon_disable (PhDaemon *d)
{
  stop_server (d, DISABLE_DRAIN_US);
  g_clear_error (&d->start_error);
  if (d->enabled)
    {
      d->enabled = FALSE;
      save_enabled (d);
    }
  update_state (d);
}

typedef struct
{
  PhDaemon *d;
  GSourceFunc done;
  gpointer user_data;
} PhShutdown;

static gboolean
shutdown_poll_cb (gpointer data)
{
  PhShutdown *sd = data;

  if (sd->d->draining->len > 0)
    return G_SOURCE_CONTINUE;
  sd->done (sd->user_data);
  return G_SOURCE_REMOVE;
}

void
ph_daemon_shutdown (PhDaemon *d, guint timeout_ms, GSourceFunc done, gpointer user_data)
{
  PhShutdown *sd = g_new0 (PhShutdown, 1);

  sd->d = d;
  sd->done = done;
  sd->user_data = user_data;
  stop_server (d, (gint64) timeout_ms * 1000);
  g_timeout_add_full (G_PRIORITY_DEFAULT, 50, shutdown_poll_cb, sd, g_free);
}

/* ---- settings ---- */

static gboolean
check_unlocked (PhDaemon *d, const char *key, GError **error)
{
  const char *managed_dir = ph_config_store_get_managed_dir (d->store);

  if (!ph_config_is_locked (d->config, key))
    return TRUE;
  g_set_error (error, PH_ERROR, PH_ERROR_LOCKED,
               /* TRANSLATORS: a setting such as upstream.host, then the folder
                * of the administrator's drop-in files */
               _ ("%s is set by your administrator (in %s) and cannot be changed here"), key,
               managed_dir ? managed_dir : "managed.d");
  return FALSE;
}

gboolean
ph_daemon_set_setting (PhDaemon *d, const char *key, const char *value, GError **error)
{
  const char *path = ph_config_store_get_writable_path (d->store);

  if (!check_unlocked (d, key, error))
    return FALSE;
  /* The agent would read whatever file this names and send it to the
   * proxy: only someone who can edit the file itself may point it. */
  if (g_str_equal (key, "upstream.password-file"))
    {
      g_set_error (error, PH_ERROR, PH_ERROR_INVALID_SETTING,
                   /* TRANSLATORS: %s is the setting upstream.password-file;
                    * SetCredentials is a D-Bus method's name: keep it */
                   _ ("%s is set in the configuration file by hand; use SetCredentials instead"),
                   key);
      return FALSE;
    }
  if (path == NULL)
    {
      g_set_error (error, PH_ERROR, PH_ERROR_FAILED,
                   /* TRANSLATORS: %s is the path of the configuration file */
                   _ ("a standalone agent does not change its configuration file; edit %s"),
                   ph_config_store_get_system_path (d->store));
      return FALSE;
    }
  if (!ph_config_store_set_value (d->store, key, value, error))
    return FALSE;
  g_message ("%s set to “%s” in %s", key, value, path);
  return reload_now (d, error);
}

gboolean
ph_daemon_trust_pin (PhDaemon *d, const char *pin, GError **error)
{
  g_autoptr (PhPin) parsed = NULL;
  g_autoptr (GError) local = NULL;
  g_autofree char *canonical = NULL;
  g_autoptr (GString) value = NULL;

  parsed = ph_pin_parse (pin, &local);
  if (parsed == NULL)
    {
      g_set_error (error, PH_ERROR, PH_ERROR_INVALID_SETTING, "%s", local->message);
      return FALSE;
    }
  if (!check_unlocked (d, "upstream.pins", error))
    return FALSE;
  canonical = ph_pin_to_string (parsed);
  value = g_string_new (ph_config_get_value (d->config, "upstream.pins"));
  if (ph_config_has_pin (d->config, parsed))
    return TRUE;
  if (value->len > 0)
    g_string_append (value, ";");
  g_string_append (value, canonical);
  g_message ("trusting the cloud proxy key %s", canonical);
  return ph_daemon_set_setting (d, "upstream.pins", value->str, error);
}

/* ---- credentials ---- */

static gboolean
check_store (PhDaemon *d, char **key, GError **error)
{
  if (d->secrets == NULL)
    {
      g_set_error_literal (error, PH_ERROR, PH_ERROR_FAILED,
                           _ ("this agent has no secret store; use upstream.password-file"));
      return FALSE;
    }
  if (ph_config_get_password_file (d->config) != NULL)
    {
      g_set_error_literal (error, PH_ERROR, PH_ERROR_FAILED,
                           _ ("upstream.password-file is set and takes precedence; unset it "
                              "first"));
      return FALSE;
    }
  *key = upstream_key (d->config);
  if (*key == NULL)
    {
      g_set_error_literal (error, PH_ERROR, PH_ERROR_NOT_CONFIGURED,
                           _ ("set upstream.host before the credentials for it"));
      return FALSE;
    }
  return TRUE;
}

gboolean
ph_daemon_set_credentials (PhDaemon *d, const char *username, const char *password, GError **error)
{
  g_autofree char *key = NULL;

  if (*username == '\0' || strchr (username, ':') != NULL || strpbrk (username, "\r\n") != NULL)
    {
      g_set_error_literal (error, PH_ERROR, PH_ERROR_INVALID_SETTING,
                           _ ("a user name is not empty and has no “:” or line break"));
      return FALSE;
    }
  if (*password == '\0' || strpbrk (password, "\r\n") != NULL)
    {
      g_set_error_literal (error, PH_ERROR, PH_ERROR_INVALID_SETTING,
                           _ ("a password is not empty and has no line break"));
      return FALSE;
    }
  if (g_strcmp0 (ph_config_get_username (d->config), username) != 0
      && !check_unlocked (d, "upstream.username", error))
    return FALSE;
  if (!check_store (d, &key, error))
    return FALSE;
  if (!ph_secret_store_save (d->secrets, key, username, password, error))
    return FALSE;
  g_message ("credentials for “%s” stored in %s", username, ph_secret_store_describe (d->secrets));
  if (g_strcmp0 (ph_config_get_username (d->config), username) != 0)
    return ph_daemon_set_setting (d, "upstream.username", username, error);
  return reload_now (d, error);
}

gboolean
ph_daemon_clear_credentials (PhDaemon *d, GError **error)
{
  g_autofree char *key = NULL;

  if (!check_store (d, &key, error))
    return FALSE;
  if (!ph_secret_store_clear (d->secrets, key, error))
    return FALSE;
  g_message ("stored credentials for %s removed", key);
  return reload_now (d, error);
}

/* ---- SOCKS users ---- */

/* [listener] socks-users with @name added (@add) or taken out, as the list to store. */
static char *
socks_users_with (PhDaemon *d, const char *name, gboolean add)
{
  const char *const *users = ph_config_get_socks_users (d->config);
  g_autoptr (GStrvBuilder) out = g_strv_builder_new ();
  g_auto (GStrv) list = NULL;

  for (guint i = 0; users != NULL && users[i] != NULL; i++)
    if (!g_str_equal (users[i], name))
      g_strv_builder_add (out, users[i]);
  if (add)
    g_strv_builder_add (out, name);
  list = g_strv_builder_end (out);
  return g_strjoinv (";", list);
}

static gboolean
socks_user_listed (PhDaemon *d, const char *name)
{
  const char *const *users = ph_config_get_socks_users (d->config);

  return users != NULL && g_strv_contains (users, name);
}

static gboolean
check_socks_store (PhDaemon *d, GError **error)
{
  if (d->secrets != NULL)
    return TRUE;
  g_set_error_literal (error, PH_ERROR, PH_ERROR_FAILED,
                       _ ("this agent has no secret store for the SOCKS users' passwords"));
  return FALSE;
}

gboolean
ph_daemon_set_socks_user (PhDaemon *d, const char *name, const char *password, GError **error)
{
  g_autofree char *key = NULL;
  gboolean valid = *name != '\0' && strlen (name) <= 255;

  for (const char *c = name; valid && *c != '\0'; c++)
    valid = g_ascii_isalnum (*c) || strchr ("._-@", *c) != NULL;
  if (!valid)
    {
      g_set_error_literal (error, PH_ERROR, PH_ERROR_INVALID_SETTING,
                           _ ("a SOCKS user name is 1 to 255 letters, digits, “.”, “_”, “-” or "
                              "“@”"));
      return FALSE;
    }
  /* RFC 1929 carries at most 255 bytes of password. */
  if (*password == '\0' || strlen (password) > 255 || strpbrk (password, "\r\n") != NULL)
    {
      g_set_error_literal (error, PH_ERROR, PH_ERROR_INVALID_SETTING,
                           _ ("a SOCKS password is 1 to 255 bytes without a line break"));
      return FALSE;
    }
  if (!socks_user_listed (d, name) && !check_unlocked (d, "listener.socks-users", error))
    return FALSE;
  if (!check_socks_store (d, error))
    return FALSE;
  key = socks_user_key (name);
  if (!ph_secret_store_save (d->secrets, key, name, password, error))
    return FALSE;
  g_message ("password of SOCKS user “%s” stored in %s", name,
             ph_secret_store_describe (d->secrets));
  if (!socks_user_listed (d, name))
    {
      g_autofree char *users = socks_users_with (d, name, TRUE);
      return ph_daemon_set_setting (d, "listener.socks-users", users, error);
    }
  return reload_now (d, error);
}

gboolean
ph_daemon_remove_socks_user (PhDaemon *d, const char *name, GError **error)
{
  g_autofree char *key = socks_user_key (name);
  gboolean listed = socks_user_listed (d, name);

  if (listed && !check_unlocked (d, "listener.socks-users", error))
    return FALSE;
  if (!check_socks_store (d, error))
    return FALSE;
  /* A password left behind by a name no longer listed goes too. */
  if (!ph_secret_store_clear (d->secrets, key, error))
    return FALSE;
  if (!listed)
    {
      g_set_error (error, PH_ERROR, PH_ERROR_INVALID_SETTING,
                   /* TRANSLATORS: %s is a user name; socks-users is a setting's name */
                   _ ("“%s” is not in [listener] socks-users"), name);
      return FALSE;
    }
  g_message ("SOCKS user “%s” removed", name);
  {
    g_autofree char *users = socks_users_with (d, name, FALSE);
    return ph_daemon_set_setting (d, "listener.socks-users", users, error);
  }
}

/* ---- the first-use pin ---- */

static void
inspect_done (PhTlsInspection *inspection, GError *error, gpointer data)
{
  g_autoptr (GTask) task = data;
  PhDaemon *d = g_task_get_source_object (task);

  if (inspection == NULL)
    {
      g_task_return_error (task, error);
      return;
    }
  if (ph_tls_inspection_get_n_certs (inspection) > 0)
    {
      const char *pin = ph_cert_info_get_pin (ph_tls_inspection_get_cert (inspection, 0));
      if (g_strcmp0 (pin, d->seen_pin) != 0)
        {
          g_free (d->seen_pin);
          d->seen_pin = g_strdup (pin);
          emit_changed (d);
        }
    }
  g_task_return_pointer (task, inspection, (GDestroyNotify) ph_tls_inspection_free);
}

void
ph_daemon_inspect_async (PhDaemon *d, GCancellable *cancellable, GAsyncReadyCallback callback,
                         gpointer user_data)
{
  g_autoptr (GTask) task = g_task_new (d, cancellable, callback, user_data);
  g_autoptr (PhUpstream) up = NULL;
  GError *error = NULL;

  if (ph_config_get_unready_reason (d->config) != NULL)
    {
      g_task_return_new_error (task, PH_ERROR, PH_ERROR_NOT_CONFIGURED, "%s",
                               _ (ph_config_get_unready_reason (d->config)));
      return;
    }
  /* Its own upstream, idle: inspecting must not disturb the traffic one. */
  up = ph_upstream_new (d->config, &error);
  if (up == NULL)
    {
      g_task_return_error (task, error);
      return;
    }
  ph_upstream_shutdown (up);
  ph_upstream_inspect_async (up, cancellable, inspect_done, g_steal_pointer (&task));
}

PhTlsInspection *
ph_daemon_inspect_finish (PhDaemon *d, GAsyncResult *result, GError **error)
{
  return g_task_propagate_pointer (G_TASK (result), error);
}

/* ---- the doctor ---- */

static void
diagnose_done (GObject *source, GAsyncResult *result, gpointer data)
{
  g_autoptr (GTask) task = data;
  GError *error = NULL;
  GVariant *report = ph_doctor_run_finish (result, &error);

  if (report == NULL)
    g_task_return_error (task, error);
  else
    g_task_return_pointer (task, report, (GDestroyNotify) g_variant_unref);
}

void
ph_daemon_diagnose_async (PhDaemon *d, const char *url, GCancellable *cancellable,
                          GAsyncReadyCallback callback, gpointer user_data)
{
  g_autoptr (GTask) task = g_task_new (d, cancellable, callback, user_data);

  if (ph_config_get_unready_reason (d->config) != NULL)
    {
      g_task_return_new_error (task, PH_ERROR, PH_ERROR_NOT_CONFIGURED, "%s",
                               _ (ph_config_get_unready_reason (d->config)));
      return;
    }
  /* The configuration in force, with the stored password; connections of its own, so the
   * tunnel's pools and health are left as they are, on or off. */
  g_message ("diagnosing the cloud proxies");
  ph_doctor_run_async (d->config, url, cancellable, diagnose_done, g_steal_pointer (&task));
}

GVariant *
ph_daemon_diagnose_finish (PhDaemon *d, GAsyncResult *result, GError **error)
{
  return g_task_propagate_pointer (G_TASK (result), error);
}

/* ---- readers ---- */

PhDaemonMode
ph_daemon_get_mode (PhDaemon *d)
{
  return d->mode;
}

PhState
ph_daemon_get_state (PhDaemon *d)
{
  return d->state;
}

gboolean
ph_daemon_get_enabled (PhDaemon *d)
{
  return d->enabled;
}

const GError *
ph_daemon_get_last_error (PhDaemon *d)
{
  if ((d->state == PH_STATE_ERROR || d->state == PH_STATE_CAPTIVE_PORTAL) && d->problem != NULL)
    return d->problem;
  return d->config_error;
}

guint
ph_daemon_get_config_generation (PhDaemon *d)
{
  return d->config_generation;
}

const char *
ph_daemon_get_portal_url (PhDaemon *d)
{
  return d->state == PH_STATE_CAPTIVE_PORTAL && d->portal_url != NULL ? d->portal_url : "";
}

PhConfig *
ph_daemon_get_config (PhDaemon *d)
{
  return d->config;
}

/* @target as a request names it: @scheme "http" for a plain request, NULL for a tunnel. */
static gboolean
split_route_target (const char *target, const char **scheme, char **host, guint16 *port)
{
  g_autofree char *uri_scheme = NULL;
  g_autofree char *uri_host = NULL;
  g_autoptr (GSocketConnectable) address = NULL;
  const char *name;
  gint uri_port = -1;
  gboolean http;

  if (strstr (target, "://") != NULL)
    {
      if (!g_uri_split_network (target, G_URI_FLAGS_NONE, &uri_scheme, &uri_host, &uri_port, NULL)
          || uri_host == NULL || *uri_host == '\0')
        return FALSE;
      http = g_ascii_strcasecmp (uri_scheme, "http") == 0;
      if (!http && g_ascii_strcasecmp (uri_scheme, "https") != 0)
        return FALSE;
      *scheme = http ? "http" : NULL;
      *host = g_steal_pointer (&uri_host);
      *port = uri_port > 0 ? (guint16) uri_port : http ? 80 : 443;
      return TRUE;
    }
  address = g_network_address_parse (target, 443, NULL);
  if (address == NULL)
    return FALSE;
  name = g_network_address_get_hostname (G_NETWORK_ADDRESS (address));
  if (name == NULL || *name == '\0' || strchr (name, '/') != NULL)
    return FALSE;
  *scheme = NULL;
  *host = g_strdup (name);
  *port = g_network_address_get_port (G_NETWORK_ADDRESS (address));
  return TRUE;
}

PhRoute *
ph_daemon_explain_route (PhDaemon *d, const char *target, GError **error)
{
  g_autoptr (PhRouter) router = NULL;
  g_autofree char *host = NULL;
  const char *scheme = NULL;
  guint16 port = 0;

  if (!split_route_target (target, &scheme, &host, &port))
    {
      g_set_error (error, PH_ERROR, PH_ERROR_BAD_REQUEST,
                   /* TRANSLATORS: %s is what the user asked about; keep the examples as they are */
                   _ ("“%s” is not a target: give http://host/path, https://host/ or host:port"),
                   target);
      return NULL;
    }
  router = d->server != NULL ? ph_router_ref (ph_server_get_router (d->server))
                             : ph_router_new (d->config);
  return ph_router_route (router, scheme, host, port, NULL);
}

char *
ph_daemon_dup_upstream_name (PhDaemon *d)
{
  char *key;

  if (d->server != NULL)
    return g_strdup (ph_upstream_get_name (ph_server_get_upstream (d->server)));
  key = upstream_key (d->config);
  return key ? key : g_strdup ("");
}

static const char *
proxy_health_to_string (PhProxyHealth health)
{
  switch (health)
    {
      case PH_PROXY_UP:
        return "up";
      case PH_PROXY_DOWN:
        return "down";
      case PH_PROXY_REFUSED:
        return "refused";
      case PH_PROXY_UNKNOWN:
      default:
        return "unknown";
    }
}

GVariant *
ph_daemon_dup_upstreams (PhDaemon *d)
{
  GVariantBuilder list;
  PhUpstream *up = d->server != NULL ? ph_server_get_upstream (d->server) : NULL;
  guint n = up != NULL ? ph_upstream_get_n_proxies (up) : ph_config_get_n_proxies (d->config);

  g_variant_builder_init (&list, G_VARIANT_TYPE ("aa{sv}"));
  for (guint i = 0; i < n; i++)
    {
      GVariantDict entry;
      const GError *error = up != NULL ? ph_upstream_get_proxy_error (up, i) : NULL;
      const char *const *addresses = up != NULL ? ph_upstream_get_proxy_addresses (up, i) : NULL;
      g_autofree char *error_name = error != NULL ? g_dbus_error_encode_gerror (error) : NULL;
      g_autofree char *name = ph_config_dup_proxy_name (d->config, i);
      const char *none[] = { NULL };

      g_variant_dict_init (&entry, NULL);
      g_variant_dict_insert (&entry, "name", "s",
                             up != NULL ? ph_upstream_get_proxy_name (up, i) : name);
      g_variant_dict_insert (&entry, "state", "s",
                             proxy_health_to_string (up != NULL
                                                         ? ph_upstream_get_proxy_health (up, i)
                                                         : PH_PROXY_UNKNOWN));
      g_variant_dict_insert (&entry, "in-use", "b",
                             up != NULL && ph_upstream_get_proxy_in_use (up, i));
      g_variant_dict_insert (&entry, "retry-at", "x",
                             up != NULL ? ph_upstream_get_proxy_retry_at (up, i) / G_USEC_PER_SEC
                                        : 0);
      g_variant_dict_insert (&entry, "error", "s", error_name ? error_name : "");
      g_variant_dict_insert (&entry, "error-message", "s", error ? error->message : "");
      g_variant_dict_insert_value (&entry, "addresses",
                                   g_variant_new_strv (addresses ? addresses : none, -1));
      g_variant_builder_add_value (&list, g_variant_dict_end (&entry));
    }
  return g_variant_ref_sink (g_variant_builder_end (&list));
}

GStrv
ph_daemon_dup_listeners (PhDaemon *d)
{
  if (d->server == NULL)
    return g_new0 (char *, 1);
  return ph_server_dup_addresses (d->server);
}

GStrv
ph_daemon_dup_transparent_listeners (PhDaemon *d)
{
  if (d->server == NULL)
    return g_new0 (char *, 1);
  return ph_server_dup_transparent_addresses (d->server);
}

GStrv
ph_daemon_dup_trusted_pins (PhDaemon *d)
{
  g_autoptr (GStrvBuilder) out = g_strv_builder_new ();

  for (guint i = 0; i < ph_config_get_n_pins (d->config); i++)
    {
      g_autofree char *pin = ph_pin_to_string (ph_config_get_pin (d->config, i));
      g_strv_builder_add (out, pin);
    }
  return g_strv_builder_end (out);
}

GStrv
ph_daemon_dup_locked_keys (PhDaemon *d)
{
  g_autoptr (GStrvBuilder) out = g_strv_builder_new ();
  const char *const *keys = ph_config_list_keys ();

  for (guint i = 0; keys[i] != NULL; i++)
    if (ph_config_is_locked (d->config, keys[i]))
      g_strv_builder_add (out, keys[i]);
  return g_strv_builder_end (out);
}

const char *
ph_daemon_get_seen_pin (PhDaemon *d)
{
  return d->seen_pin ? d->seen_pin : "";
}

gboolean
ph_daemon_get_credentials_stored (PhDaemon *d)
{
  return ph_config_get_password (d->config) != NULL;
}

void
ph_daemon_get_stats (PhDaemon *d, PhDaemonStats *stats)
{
  ServerCounts now = { 0 };
  gint64 t = g_get_monotonic_time ();

  if (d->server != NULL)
    server_counts_add (&now, d->server);
  for (guint i = 0; i < d->draining->len; i++)
    server_counts_add (&now, g_ptr_array_index (d->draining, i));
  stats->connections = now.connections;
  stats->requests = d->base_requests + now.requests;
  stats->bytes_up = d->base_up + now.bytes_up;
  stats->bytes_down = d->base_down + now.bytes_down;
  stats->uptime_seconds = (t - d->started) / G_USEC_PER_SEC;
  stats->state_seconds = (t - d->state_since) / G_USEC_PER_SEC;
  stats->upstream_connects = d->upstream_connects;
  stats->upstream_failures = d->upstream_failures;
  memset (&stats->pool, 0, sizeof stats->pool);
  if (d->server != NULL)
    ph_upstream_get_stats (ph_server_get_upstream (d->server), &stats->pool);
}

GVariant *
ph_daemon_dup_connections (PhDaemon *d)
{
  GVariantBuilder b;

  g_variant_builder_init (&b, G_VARIANT_TYPE ("aa{sv}"));
  if (d->server != NULL)
    ph_server_add_connections (d->server, &b);
  for (guint i = 0; i < d->draining->len; i++)
    ph_server_add_connections (g_ptr_array_index (d->draining, i), &b);
  return g_variant_ref_sink (g_variant_builder_end (&b));
}

/* SPDX-License-Identifier: GPL-2.0-or-later */
/* ph-upstream.c: connections to the cloud proxies (one or several, with failover), the warm
 * and idle pools, each proxy's health, and the exchange with a proxy: its request heads (the
 * only place that writes Proxy-Authorization), its answers, and whether it takes our
 * credentials. */
#define G_LOG_DOMAIN "pinhole-upstream"

#include "ph-upstream.h"
#include "ph-ask.h"
#include "ph-error.h"
#include "ph-wipe.h"
#include "ph-log.h"
#include "ph-netfilter.h"
#include "ph-tls.h"
#include "ph-http.h"
#ifdef PH_HAVE_NGHTTP2
#include "ph-h2-exchange.h"
#include "ph-h2.h"
#endif

#include <string.h>
#include <glib/gi18n.h>

/* A warm connection older than this is not used: proxies close
 * connections that send no request (Squid's request_start_timeout, 5 min);
 * one that closes sooner is noticed by its watch. */
#define WARM_MAX_AGE_US (240 * G_USEC_PER_SEC)
#define BACKOFF_MIN_MS 500
/* Measured on loopback (tests/bench): 10 ms took new-tunnel p50 from
 * 5.2-5.9 ms to 3.5-3.7 ms; longer delays empty the pool under bursts. */
#define REFILL_DELAY_MS 10
#define BACKOFF_MAX_MS 30000
/* Warm connections kept when no tunnel is asked for: one for the next
 * click, one for the click after it. */
#define WARM_FLOOR 2
/* A warm connection over the target is closed once this old. */
#define WARM_TRIM_AGE_US (10 * G_USEC_PER_SEC)
/* A check that found the credentials taken holds this long: an origin
 * that answers 407 again and again costs the proxy one CONNECT. */
#define AUTH_CONFIRMED_US (30 * G_USEC_PER_SEC)

typedef struct
{
  PhStream *stream;
  gint64 born_us;
  GSource *watch;
  PhUpstream *up; /* unowned; the pool entry dies first */
} PhWarm;

struct _PhUpstream
{
  PhConfig *config;
  GPtrArray *proxies; /* of PhProxy*, upstream.host's order */
  GPtrArray *probes;  /* of PhProbe*, by a proxy's index: its probe's exchange, or NULL */
  guint64 probing;    /* proxies whose probe runs, a bit per index */
  guint rr_next;      /* round-robin: where the next turn starts */
  GSocketClient *client;
  char *proxy_auth;
  gboolean auth_rejected;
  gboolean shut;

  GQueue warm;        /* of PhWarm* */
  guint warm_pending; /* connects under way for the pool */
  /* Demand for new connections (warm taken or missed), for the warm pool's
   * size: a count in the current second and a moving average of earlier
   * seconds; and how long a connection takes to make (moving average). */
  gint64 demand_window_us;
  guint demand_count;
  double demand_rate;
  double connect_s;

  GQueue idle; /* of PhWarm*, kept-alive after a plain exchange; the most recent first */
  PhUpstreamStats stats;
  guint backoff_ms;
  GSource *refill_source;
  GCancellable *cancellable; /* for the pool's own connects */
  char *last_pool_error;

  PhUpstreamNotify notify;
  gpointer notify_data;
  GError *last_error;
  gboolean ever_connected;
  PhTlsContext *inspector;

  GQueue h2_waiting;     /* of PhTunnelOpen*, waiting for a proxy's HTTP/2 connection */
  guint64 h2_connecting; /* proxies (a bit per index) whose HTTP/2 connection is being made */

  GPtrArray *auth_waiters;  /* of PhAuthWaiter*, while a check runs */
  gint64 auth_confirmed_us; /* when the proxy last took the credentials */
};

typedef struct
{
  PhUpstreamCheckFunc func;
  gpointer user_data;
} PhAuthWaiter;

static void pool_refill (PhUpstream *up);
static void pool_refill_later (PhUpstream *up);
static gboolean warm_watch_cb (GSocket *socket, GIOCondition cond, gpointer data);
static guint warm_target (PhUpstream *up);
static void pool_connect_done (PhStream *stream, GError *error, gpointer data);
typedef struct _PhProbe PhProbe;
static void probe_free (PhProbe *pr);
static void proxy_changed (PhProxy *p, PhProxyHealth was, gpointer data);

PhUpstream *
ph_upstream_new (PhConfig *config, GError **error)
{
  g_autoptr (PhUpstream) up = g_atomic_rc_box_new0 (PhUpstream);

  up->config = ph_config_ref (config);
  g_queue_init (&up->warm);
  g_queue_init (&up->idle);
  up->demand_window_us = g_get_monotonic_time ();
  up->cancellable = g_cancellable_new ();
  up->client = g_socket_client_new ();
  g_socket_client_set_enable_proxy (up->client, FALSE);
  /* Kept out of the capture rules (ph-netfilter.h) even when the agent's user is not. */
  ph_netfilter_mark_client (up->client, ph_config_get_mark (config));
  up->proxies = g_ptr_array_new_with_free_func ((GDestroyNotify) ph_proxy_free);
  up->probes = g_ptr_array_new ();
  for (guint i = 0; i < ph_config_get_n_proxies (config); i++)
    {
      PhProxy *p = ph_proxy_new (config, i, proxy_changed, up, error);

      if (p == NULL)
        return NULL;
      g_ptr_array_add (up->proxies, p);
      g_ptr_array_add (up->probes, NULL);
    }
  if (up->proxies->len == 0)
    {
      g_set_error_literal (error, PH_ERROR, PH_ERROR_NOT_CONFIGURED,
                           _ ("no cloud proxy is configured: set upstream.host"));
      return NULL;
    }
  if (ph_config_get_username (config) != NULL && ph_config_get_password (config) != NULL)
    {
      g_autofree char *pair = g_strconcat (ph_config_get_username (config), ":",
                                           ph_config_get_password (config), NULL);
      g_autofree char *b64 = g_base64_encode ((const guchar *) pair, strlen (pair));
      up->proxy_auth = g_strconcat ("Basic ", b64, NULL);
      ph_log_add_secret (ph_config_get_password (config));
      ph_log_add_secret (b64);
      ph_wipe (pair, strlen (pair));
    }
  up->backoff_ms = BACKOFF_MIN_MS;
  if (up->proxies->len > 1)
    for (guint i = 0; i < up->proxies->len; i++)
      ph_proxy_resolve (g_ptr_array_index (up->proxies, i));
  pool_refill (up);
  return g_steal_pointer (&up);
}

PhUpstream *
ph_upstream_ref (PhUpstream *up)
{
  return g_atomic_rc_box_acquire (up);
}

/* An entry of the warm or the idle pool, watched by @watch_cb while it waits. */
static PhWarm *
pool_entry_new (PhUpstream *up, PhStream *stream, GSocketSourceFunc watch_cb)
{
  PhWarm *w = g_new0 (PhWarm, 1);

  w->stream = stream;
  w->born_us = g_get_monotonic_time ();
  w->up = up;
  w->watch = ph_stream_wait (stream, FALSE, watch_cb, w);
  return w;
}

static void
warm_free (PhWarm *w)
{
  if (w->watch != NULL)
    {
      g_source_destroy (w->watch);
      g_source_unref (w->watch);
    }
  ph_stream_free (w->stream);
  g_free (w);
}

static PhProxy *
stream_proxy (PhStream *stream)
{
  return ph_stream_get_origin (stream);
}

/* What the pools did, once, when the upstream is done with (a stop, a
 * reload that changed the cloud proxy): the figures to tune warm= and
 * idle-connections by, and the share of handshakes that resumed. */
static void
log_pool_summary (PhUpstream *up)
{
  g_autoptr (GString) names = NULL;
  PhUpstreamStats st;

  ph_upstream_get_stats (up, &st);
  if (st.connects == 0)
    return;
  /* The counts are of every proxy's connections. */
  names = g_string_new (NULL);
  for (guint i = 0; i < up->proxies->len; i++)
    g_string_append_printf (names, "%s%s", i > 0 ? ", " : "",
                            ph_proxy_get_name (g_ptr_array_index (up->proxies, i)));
  g_message (
      "connections to %s: %" G_GUINT64_FORMAT " made, handshakes %" G_GUINT64_FORMAT
      " resumed of %" G_GUINT64_FORMAT "; requests on an idle pooled connection %" G_GUINT64_FORMAT
      ", on a warm one %" G_GUINT64_FORMAT ", waiting for a new one %" G_GUINT64_FORMAT
      ", sent again %" G_GUINT64_FORMAT "; idle ones closed by the "
      "proxy %" G_GUINT64_FORMAT ", expired %" G_GUINT64_FORMAT,
      names->str, st.connects, st.handshakes_resumed, st.handshakes_resumed + st.handshakes_full,
      st.idle_reused, st.warm_taken, st.warm_missed, st.retries, st.idle_closed, st.idle_expired);
}

void
ph_upstream_shutdown (PhUpstream *up)
{
  if (!up->shut)
    log_pool_summary (up);
  up->shut = TRUE;
  g_cancellable_cancel (up->cancellable);
  for (guint i = 0; up->proxies != NULL && i < up->proxies->len; i++)
    {
      PhProxy *p = g_ptr_array_index (up->proxies, i);

      g_cancellable_cancel (ph_proxy_get_cancellable (p));
      if (g_ptr_array_index (up->probes, i) != NULL)
        probe_free (g_ptr_array_index (up->probes, i));
    }
  g_queue_clear_full (&up->warm, (GDestroyNotify) warm_free);
  g_queue_clear_full (&up->idle, (GDestroyNotify) warm_free);
  if (up->refill_source != NULL)
    {
      g_source_destroy (up->refill_source);
      g_clear_pointer (&up->refill_source, g_source_unref);
    }
}

static void
upstream_clear (PhUpstream *up)
{
  ph_upstream_shutdown (up);
  g_clear_object (&up->cancellable);
  g_clear_object (&up->client);
  g_clear_pointer (&up->proxies, g_ptr_array_unref);
  g_clear_pointer (&up->probes, g_ptr_array_unref);
  ph_config_unref (up->config);
  if (up->proxy_auth != NULL)
    ph_wipe (up->proxy_auth, strlen (up->proxy_auth));
  g_free (up->proxy_auth);
  g_free (up->last_pool_error);
  g_clear_error (&up->last_error);
  if (up->inspector != NULL)
    ph_tls_context_unref (up->inspector);
}

void
ph_upstream_unref (PhUpstream *up)
{
  g_atomic_rc_box_release_full (up, (GDestroyNotify) upstream_clear);
}

/* ---- the proxies' health, and which one a new connection goes to ---- */

static PhProxy *
proxy_at (PhUpstream *up, guint i)
{
  return g_ptr_array_index (up->proxies, i);
}

static gboolean
proxy_usable (PhProxy *p)
{
  return ph_proxy_is_usable (p);
}

/* The proxy new connections go to, skipping those in @tried (a bit per index): under priority
 * the first usable one, under round-robin the next usable one in turn. When none is usable (all
 * down or refused) and @tried is empty, the one whose retry comes first: with nothing to fail
 * over to, a request's own attempt is the quickest way to learn it is back (and a lone proxy
 * behaves as it would without failover). NULL when nothing is left to try. */
static PhProxy *
select_proxy (PhUpstream *up, guint64 tried, gboolean take_turn)
{
  guint n = up->proxies->len;
  PhProxy *best = NULL;

  for (guint k = 0; k < n; k++)
    {
      guint i = ph_config_get_failover (up->config) == PH_FAILOVER_ROUND_ROBIN
                    ? (up->rr_next + k) % n
                    : k;
      PhProxy *p = proxy_at (up, i);

      if ((tried & (G_GUINT64_CONSTANT (1) << i)) != 0 || !proxy_usable (p))
        continue;
      if (take_turn && ph_config_get_failover (up->config) == PH_FAILOVER_ROUND_ROBIN)
        up->rr_next = (i + 1) % n;
      return p;
    }
  if (tried != 0)
    return NULL;
  for (guint i = 0; i < n; i++)
    if (best == NULL || ph_proxy_get_retry_at (proxy_at (up, i)) < ph_proxy_get_retry_at (best))
      best = proxy_at (up, i);
  return best;
}

/* The proxy in use: the one a new connection would go to now (round-robin: the next). */
static PhProxy *
proxy_in_use (PhUpstream *up)
{
  return select_proxy (up, 0, FALSE);
}

const char *
ph_upstream_get_name (PhUpstream *up)
{
  return ph_proxy_get_name (proxy_in_use (up));
}

static void
upstream_notify (PhUpstream *up, PhUpstreamEvent event)
{
  if (up->notify != NULL)
    up->notify (up, event, up->notify_data);
}

/* Closes the pooled connections to @p (or, with @p NULL, to proxies after @first under
 * priority: the first one is back). */
static void
pool_drop_where (PhUpstream *up, GQueue *pool, PhProxy *p, guint after)
{
  for (GList *l = pool->head; l != NULL;)
    {
      PhWarm *w = l->data;
      PhProxy *wp = stream_proxy (w->stream);
      GList *next = l->next;

      if (p != NULL ? wp == p : ph_proxy_get_index (wp) > after)
        {
          g_queue_delete_link (pool, l);
          warm_free (w);
        }
      l = next;
    }
}

/* A proxy's health changed (or its addresses: @was is its health now): logged when there are
 * several, the pools follow, and the watcher is told. */
static void
proxy_changed (PhProxy *p, PhProxyHealth was, gpointer data)
{
  PhUpstream *up = data;
  PhProxyHealth health = ph_proxy_get_health (p);
  const GError *error = ph_proxy_get_error (p);

  if (was != health && up->proxies->len > 1)
    {
      if (health == PH_PROXY_UP && was != PH_PROXY_UNKNOWN)
        g_message ("cloud proxy %s is up again", ph_proxy_get_name (p));
      else if (health == PH_PROXY_DOWN)
        g_warning ("cloud proxy %s is down (%s); new connections go to the others, and it is "
                   "tried again in the background",
                   ph_proxy_get_name (p), error ? error->message : "?");
      else if (health == PH_PROXY_REFUSED)
        g_warning ("cloud proxy %s refused: %s", ph_proxy_get_name (p),
                   error ? error->message : "?");
    }
  if (was != health && (health == PH_PROXY_DOWN || health == PH_PROXY_REFUSED))
    {
      pool_drop_where (up, &up->warm, p, 0);
      pool_drop_where (up, &up->idle, p, 0);
    }
  else if (was != health && health == PH_PROXY_UP
           && ph_config_get_failover (up->config) == PH_FAILOVER_PRIORITY && proxy_in_use (up) == p)
    {
      /* The first healthy proxy is back: new tunnels go to it, not to what was kept warm for
       * the one that stood in for it. */
      pool_drop_where (up, &up->warm, NULL, ph_proxy_get_index (p));
      pool_drop_where (up, &up->idle, NULL, ph_proxy_get_index (p));
      pool_refill (up);
    }
  upstream_notify (up, PH_UPSTREAM_HEALTH_CHANGED);
}

/* Whether @error is the proxy failing (down) rather than refusing us (a configuration
 * problem), or neither (cancelled). */
static void
proxy_record (PhUpstream *up, PhProxy *p, const GError *error)
{
  /* A handshake is not a proxy that answers (stunnel up, Squid down): once marked down or
   * refused, only its probe brings it back; unless nothing else is usable, when a request's
   * own connection is the best news there is. */
  if (error == NULL && !proxy_usable (p) && select_proxy (up, 0, FALSE) != p)
    return;
  if (error == NULL)
    ph_proxy_set_health (p, PH_PROXY_UP, NULL);
  else if (g_error_matches (error, G_IO_ERROR, G_IO_ERROR_CANCELLED))
    return;
  else if (ph_upstream_error_is_unreachable (error))
    ph_proxy_set_health (p, PH_PROXY_DOWN, error);
  else
    ph_proxy_set_health (p, PH_PROXY_REFUSED, error);
}

guint
ph_upstream_get_n_proxies (PhUpstream *up)
{
  return up->proxies->len;
}

const char *
ph_upstream_get_proxy_name (PhUpstream *up, guint i)
{
  return ph_proxy_get_name (proxy_at (up, i));
}

PhProxyHealth
ph_upstream_get_proxy_health (PhUpstream *up, guint i)
{
  return ph_proxy_get_health (proxy_at (up, i));
}

gboolean
ph_upstream_get_proxy_in_use (PhUpstream *up, guint i)
{
  PhProxy *p = proxy_at (up, i);

  if (ph_config_get_failover (up->config) == PH_FAILOVER_ROUND_ROBIN && proxy_usable (p))
    return TRUE;
  return proxy_in_use (up) == p;
}

gint64
ph_upstream_get_proxy_retry_at (PhUpstream *up, guint i)
{
  gint64 at = ph_proxy_get_retry_at (proxy_at (up, i));

  if (at == 0)
    return 0;
  return g_get_real_time () + (at - g_get_monotonic_time ());
}

const GError *
ph_upstream_get_proxy_error (PhUpstream *up, guint i)
{
  return ph_proxy_get_error (proxy_at (up, i));
}

const char *const *
ph_upstream_get_proxy_addresses (PhUpstream *up, guint i)
{
  return ph_proxy_get_addresses (proxy_at (up, i));
}

/* "Basic …" or NULL when no username is configured, or once the proxy has
 * rejected these credentials. */
static const char *
upstream_get_proxy_auth (PhUpstream *up)
{
  return up->auth_rejected ? NULL : up->proxy_auth;
}

gboolean
ph_upstream_get_auth_rejected (PhUpstream *up)
{
  return up->auth_rejected;
}

void
ph_upstream_set_auth_rejected (PhUpstream *up)
{
  if (up->auth_rejected)
    return;
  up->auth_rejected = TRUE;
  upstream_notify (up, PH_UPSTREAM_AUTH_CHANGED);
  g_warning ("the cloud proxy %s rejected the credentials of user “%s”; they will not be "
             "sent again until the credentials or the configuration change",
             ph_upstream_get_name (up),
             ph_config_get_username (up->config) ? ph_config_get_username (up->config) : "");
}

void
ph_upstream_clear_auth_rejected (PhUpstream *up)
{
  if (up->auth_rejected)
    g_message ("credentials for %s will be sent again", ph_upstream_get_name (up));
  up->auth_rejected = FALSE;
  upstream_notify (up, PH_UPSTREAM_AUTH_CHANGED);
}

void
ph_upstream_save_session (PhUpstream *up, PhStream *stream)
{
  PhProxy *p = stream_proxy (stream);

#ifdef PH_HAVE_NGHTTP2
  {
    /* A stream of an HTTP/2 connection has no TLS session of its own: its connection's is
     * kept (its tickets have come by the time a stream is answered), so that the proxy's next
     * connection (past its stream limit, after its GOAWAY or idle end) resumes it. */
    PhH2Stream *h2 = ph_h2_stream_from_stream (stream);
    PhH2Session *session
        = h2 != NULL ? ph_h2_stream_get_session (h2) : ph_h2_exchange_get_session (stream);

    if (session != NULL)
      stream = ph_h2_session_get_stream (session);
  }
#endif
  if (p != NULL && ph_stream_get_session (stream) != NULL)
    ph_tls_context_save_session (ph_proxy_get_tls (p), stream);
}

void
ph_upstream_report_lost (PhUpstream *up, PhStream *stream)
{
  PhProxy *p = stream_proxy (stream);
  g_autoptr (GError) error = NULL;

  if (p == NULL || ph_proxy_get_index (p) >= up->proxies->len
      || proxy_at (up, ph_proxy_get_index (p)) != p)
    return;
  error = g_error_new (PH_ERROR, PH_ERROR_UPSTREAM_UNREACHABLE,
                       /* TRANSLATORS: the cloud proxy's host:port */
                       _ ("the cloud proxy %s closed a new connection without answering"),
                       ph_proxy_get_name (p));
  ph_proxy_set_health (p, PH_PROXY_DOWN, error);
}

const char *
ph_upstream_get_stream_proxy_name (PhUpstream *up, PhStream *stream)
{
  PhProxy *p = stream_proxy (stream);

  return p != NULL ? ph_proxy_get_name (p) : ph_upstream_get_name (up);
}

typedef struct
{
  PhUpstream *up;
  PhProxy *proxy;            /* the one this attempt goes to */
  guint64 tried;             /* proxies tried, a bit per index */
  gboolean fixed;            /* this proxy only: a probe, an inspection */
  gboolean probe;            /* the background probe: a success is not yet the proxy up */
  gboolean h2;               /* for tunnels: offer h2 by ALPN unless the proxy said no */
  gboolean offered;          /* this handshake offered h2 by ALPN */
  GCancellable *cancellable; /* the caller's, chained to our timeout */
  GCancellable *timeout_cancel;
  GSource *timeout_source;
  gulong chain_id;
  gboolean timed_out;
  PhUpstreamFunc func;
  PhUpstreamInspectFunc inspect_func;
  gpointer user_data;
  gint64 started_us;
} PhConnect;

static void
connect_reset (PhConnect *c)
{
  if (c->timeout_source != NULL)
    {
      g_source_destroy (c->timeout_source);
      g_clear_pointer (&c->timeout_source, g_source_unref);
    }
  if (c->chain_id != 0)
    g_cancellable_disconnect (c->cancellable, c->chain_id);
  c->chain_id = 0;
  g_clear_object (&c->timeout_cancel);
  c->timed_out = FALSE;
}

static void
connect_free (PhConnect *c)
{
  connect_reset (c);
  g_clear_object (&c->cancellable);
  ph_upstream_unref (c->up);
  g_free (c);
}

/* Keeps the result of a real attempt for the health watcher. A cancelled
 * attempt says nothing about the proxy. */
static void
record_attempt (PhUpstream *up, PhProxy *p, const GError *error)
{
  if (error != NULL && g_error_matches (error, G_IO_ERROR, G_IO_ERROR_CANCELLED))
    return;
  g_clear_error (&up->last_error);
  if (error != NULL)
    up->last_error = g_error_copy (error);
  else
    up->ever_connected = TRUE;
  proxy_record (up, p, error);
  upstream_notify (up, error ? PH_UPSTREAM_FAILED : PH_UPSTREAM_CONNECTED);
}

#ifdef PH_HAVE_NGHTTP2
/* The proxy's HTTP/2 connection sent GOAWAY or ended: new tunnels make another. */
static void
h2_session_notify (PhH2Session *session, gpointer data)
{
  PhProxy *p = data;

  if (ph_h2_session_got_goaway (session, NULL) || ph_h2_session_is_closed (session))
    {
      g_debug ("the HTTP/2 connection to %s %s", ph_proxy_get_name (p),
               ph_h2_session_is_closed (session) ? "ended" : "is going away (GOAWAY)");
      ph_proxy_remove_h2 (p, session);
    }
}

/* How a proxy lets go of its session: it no longer hears of it. */
static void
h2_session_release (gpointer data)
{
  PhH2Session *session = data;

  ph_h2_session_set_notify (session, NULL, NULL);
  ph_h2_session_unref (session);
}

/* A connection not meant for a tunnel on which the proxy chose h2 (the first one made, whatever
 * its use, offers it while the proxy's choice is unknown): it becomes the proxy's HTTP/2
 * connection, for the tunnels to come. */
static void
h2_adopt (PhUpstream *up, PhProxy *p, PhStream *stream)
{
  g_autoptr (GError) error = NULL;
  PhH2Session *session;

  if (ph_proxy_get_n_h2 (p) > 0)
    {
      ph_stream_free (stream);
      return;
    }
  session = ph_h2_session_new (stream, 0, &error);
  if (session == NULL)
    {
      g_debug ("%s: %s", ph_proxy_get_name (p), error->message);
      return;
    }
  ph_h2_session_set_notify (session, h2_session_notify, p);
  ph_proxy_add_h2 (p, session, h2_session_release);
  up->stats.h2_connections++;
}

/* The proxy's session a new stream goes on: of those that take one more, the one with the
 * fewest open, unless @may_grow, fewer than [upstream] h2-connections are open and that one is
 * in use (then NULL: a new connection). NULL too when none takes one more. */
static PhH2Session *
h2_pick (PhUpstream *up, PhProxy *p, gboolean may_grow)
{
  PhH2Session *best = NULL;

  for (guint i = 0; i < ph_proxy_get_n_h2 (p); i++)
    {
      PhH2Session *s = ph_proxy_get_h2 (p, i);

      if (ph_h2_session_get_available_streams (s) > 0
          && (best == NULL
              || ph_h2_session_get_open_streams (s) < ph_h2_session_get_open_streams (best)))
        best = s;
    }
  if (may_grow && best != NULL && ph_h2_session_get_open_streams (best) > 0
      && ph_proxy_get_n_h2 (p) < ph_config_get_h2_connections (up->config))
    return NULL;
  return best;
}

/* Room for a new session: at h2-connections, the ones that take no more streams (full, going
 * away) are let go of (their streams keep them until they end). */
static void
h2_make_room (PhUpstream *up, PhProxy *p)
{
  for (guint i = ph_proxy_get_n_h2 (p); i > 0; i--)
    {
      PhH2Session *s = ph_proxy_get_h2 (p, i - 1);

      if (ph_proxy_get_n_h2 (p) < ph_config_get_h2_connections (up->config))
        break;
      if (ph_h2_session_get_available_streams (s) == 0)
        ph_proxy_remove_h2 (p, s);
    }
}
#endif

static void connect_attempt (PhConnect *c);

static void
connect_finish (PhConnect *c, PhStream *stream, GError *error)
{
  PhProxy *next;

  if (c->inspect_func != NULL)
    {
      c->inspect_func (NULL, error, c->user_data);
      connect_free (c);
      return;
    }
  if (!c->probe || stream == NULL)
    record_attempt (c->up, c->proxy, error);
  if (stream != NULL)
    {
      double took_s = (double) (g_get_monotonic_time () - c->started_us) / G_USEC_PER_SEC;

      ph_stream_set_origin (stream, c->proxy);
      c->up->stats.connects++;
      c->up->connect_s = c->up->connect_s > 0 ? 0.75 * c->up->connect_s + 0.25 * took_s : took_s;
#ifdef PH_HAVE_NGHTTP2
      if (c->offered)
        {
          g_autofree char *alpn = ph_tls_dup_alpn (stream);
          gboolean h2 = g_strcmp0 (alpn, "h2") == 0;

          if (ph_proxy_get_h2_state (c->proxy) == PH_PROXY_H2_UNKNOWN)
            g_debug ("%s %s", ph_proxy_get_name (c->proxy),
                     h2 ? "chose HTTP/2: tunnels to it share one connection"
                        : "did not choose HTTP/2: its tunnels go over HTTP/1.1");
          ph_proxy_set_h2_state (c->proxy, h2 ? PH_PROXY_H2_YES : PH_PROXY_H2_NO);
          if (h2)
            pool_drop_where (c->up, &c->up->warm, c->proxy, 0);
          if (h2 && !c->h2)
            {
              /* Not for a tunnel: kept as the proxy's HTTP/2 connection, and this one's user
               * gets a connection without h2; but the warm pool, which such a proxy does not
               * need, gets none. */
              h2_adopt (c->up, c->proxy, stream);
              if (c->func == pool_connect_done)
                {
                  c->func (NULL,
                           g_error_new_literal (G_IO_ERROR, G_IO_ERROR_CANCELLED,
                                                "not needed: the proxy speaks HTTP/2"),
                           c->user_data);
                  connect_free (c);
                  return;
                }
              connect_reset (c);
              connect_attempt (c);
              return;
            }
        }
#endif
    }
  /* A proxy that cannot be reached hands the attempt to the next one: the caller sees one
   * answer. One that refused us (a pin mismatch, an untrusted certificate) does not: that is a
   * configuration problem, and failing over would hide it. */
  else if (!c->fixed && !c->up->shut && ph_upstream_error_is_unreachable (error)
           && (next = select_proxy (c->up, c->tried, TRUE)) != NULL)
    {
      g_debug ("%s; trying %s", error->message, ph_proxy_get_name (next));
      g_error_free (error);
      c->proxy = next;
      connect_reset (c);
      connect_attempt (c);
      return;
    }
  c->func (stream, error, c->user_data);
  connect_free (c);
}

static void
inspect_done (PhTlsInspection *inspection, GError *error, gpointer data)
{
  PhConnect *c = data;

  c->inspect_func (inspection, error, c->user_data);
  connect_free (c);
}

static void
handshake_done (PhStream *stream, GError *error, gpointer data)
{
  connect_finish (data, stream, error);
}

static gboolean
connect_timeout_cb (gpointer data)
{
  PhConnect *c = data;

  c->timed_out = TRUE;
  g_cancellable_cancel (c->timeout_cancel);
  return G_SOURCE_REMOVE;
}

static void
tcp_done (GObject *source, GAsyncResult *result, gpointer data)
{
  PhConnect *c = data;
  g_autoptr (GError) local = NULL;
  g_autoptr (GSocketConnection) conn
      = g_socket_client_connect_to_host_finish (G_SOCKET_CLIENT (source), result, &local);

  if (c->timeout_source != NULL)
    {
      g_source_destroy (c->timeout_source);
      g_clear_pointer (&c->timeout_source, g_source_unref);
    }
  if (conn == NULL)
    {
      GError *error;
      if (c->timed_out)
        error = g_error_new (PH_ERROR, PH_ERROR_TIMEOUT,
                             /* TRANSLATORS: the cloud proxy's host:port, then the time
                              * allowed in seconds ("s") */
                             _ ("the cloud proxy %s did not accept a TCP connection within %.1fs"),
                             ph_proxy_get_name (c->proxy),
                             ph_config_get_connect_timeout_ms (c->up->config) / 1000.0);
      else if (g_error_matches (local, G_IO_ERROR, G_IO_ERROR_CANCELLED))
        error = g_steal_pointer (&local);
      else
        error = g_error_new (PH_ERROR, PH_ERROR_UPSTREAM_UNREACHABLE,
                             /* TRANSLATORS: the cloud proxy's host:port, then why */
                             _ ("cannot reach the cloud proxy %s over TCP: %s"),
                             ph_proxy_get_name (c->proxy), local->message);
      connect_finish (c, NULL, error);
      return;
    }
  ph_socket_set_nodelay (g_socket_connection_get_socket (conn));
  if (c->inspect_func != NULL)
    {
      ph_tls_inspect_async (c->up->inspector, conn,
                            ph_config_get_handshake_timeout_ms (c->up->config), c->cancellable,
                            inspect_done, c);
      return;
    }
  /* h2 is offered while the proxy's answer to it is unknown (the first connection, whatever it
   * is for), and after a yes only on the connections meant for tunnels. */
  c->offered = FALSE;
#ifdef PH_HAVE_NGHTTP2
  if (ph_config_get_http2 (c->up->config) != PH_HTTP2_OFF)
    switch (ph_proxy_get_h2_state (c->proxy))
      {
        case PH_PROXY_H2_UNKNOWN:
          c->offered = TRUE;
          break;
        case PH_PROXY_H2_YES:
          c->offered = c->h2;
          break;
        case PH_PROXY_H2_NO:
          break;
      }
#endif
  ph_tls_handshake_async_alpn (ph_proxy_get_tls (c->proxy), conn,
                               ph_config_get_handshake_timeout_ms (c->up->config), c->offered,
                               c->cancellable, handshake_done, c);
}

static void
chain_cancel (GCancellable *cancellable, gpointer data)
{
  g_cancellable_cancel (G_CANCELLABLE (data));
}

static void
connect_attempt (PhConnect *c)
{
  c->tried |= G_GUINT64_CONSTANT (1) << ph_proxy_get_index (c->proxy);
  c->started_us = g_get_monotonic_time ();
  c->timeout_cancel = g_cancellable_new ();
  c->chain_id = g_cancellable_connect (c->cancellable, G_CALLBACK (chain_cancel),
                                       g_object_ref (c->timeout_cancel), g_object_unref);
  c->timeout_source = g_timeout_source_new (ph_config_get_connect_timeout_ms (c->up->config));
  g_source_set_callback (c->timeout_source, connect_timeout_cb, c, NULL);
  g_source_attach (c->timeout_source, NULL);
  g_socket_client_connect_to_host_async (c->up->client, ph_proxy_get_host (c->proxy),
                                         ph_proxy_get_port (c->proxy), c->timeout_cancel, tcp_done,
                                         c);
}

static void
connect_start (PhConnect *c, PhUpstream *up, PhProxy *proxy, GCancellable *cancellable)
{
  c->up = ph_upstream_ref (up);
  c->cancellable = cancellable ? g_object_ref (cancellable) : g_cancellable_new ();
  c->fixed = proxy != NULL;
  c->proxy = proxy != NULL ? proxy : select_proxy (up, 0, TRUE);
  connect_attempt (c);
}

void
ph_upstream_connect_async (PhUpstream *up, GCancellable *cancellable, PhUpstreamFunc func,
                           gpointer user_data)
{
  PhConnect *c = g_new0 (PhConnect, 1);

  c->func = func;
  c->user_data = user_data;
  connect_start (c, up, NULL, cancellable);
}

void
ph_upstream_inspect_async (PhUpstream *up, GCancellable *cancellable, PhUpstreamInspectFunc func,
                           gpointer user_data)
{
  PhConnect *c = g_new0 (PhConnect, 1);
  GError *error = NULL;

  if (up->inspector == NULL)
    up->inspector = ph_tls_context_new_inspector (up->config, NULL, &error);
  if (up->inspector == NULL)
    {
      func (NULL, error, user_data);
      g_free (c);
      return;
    }
  c->inspect_func = func;
  c->user_data = user_data;
  connect_start (c, up, proxy_at (up, 0), cancellable);
}

void
ph_upstream_set_notify (PhUpstream *up, PhUpstreamNotify notify, gpointer user_data)
{
  up->notify = notify;
  up->notify_data = user_data;
}

gboolean
ph_upstream_has_connected (PhUpstream *up)
{
  return up->ever_connected;
}

/* What the agent's state reports: a proxy that refused us (a configuration problem) even while
 * others carry the traffic; else, when no proxy is up, the last failure; else nothing. */
const GError *
ph_upstream_get_last_error (PhUpstream *up)
{
  gboolean any_up = FALSE;

  for (guint i = 0; i < up->proxies->len; i++)
    {
      PhProxy *p = proxy_at (up, i);
      if (ph_proxy_get_health (p) == PH_PROXY_REFUSED && ph_proxy_get_error (p) != NULL)
        return ph_proxy_get_error (p);
      any_up |= ph_proxy_get_health (p) == PH_PROXY_UP;
    }
  return any_up ? NULL : up->last_error;
}

gboolean
ph_upstream_error_is_unreachable (const GError *error)
{
  if (error == NULL || error->domain != PH_ERROR)
    return FALSE;
  switch ((PhError) error->code)
    {
      case PH_ERROR_UPSTREAM_UNREACHABLE:
      case PH_ERROR_TIMEOUT:
        return TRUE;
      case PH_ERROR_UPSTREAM_TLS:
        /* Not PH_ERROR_CERT_UNTRUSTED: a certificate no CA vouches for may be someone in the
         * way (a code, not the message, which is translated, says so). */
        return TRUE;
      default:
        return FALSE;
    }
}

char *
ph_upstream_dup_seen_pin (PhUpstream *up)
{
  /* The newer of the two is not known; the verified path is what
   * traffic uses, so it wins when both have seen one. */
  g_autoptr (PhPin) pin = NULL;

  for (guint i = 0; i < up->proxies->len && pin == NULL; i++)
    pin = ph_tls_context_dup_seen_pin (ph_proxy_get_tls (proxy_at (up, i)));
  if (pin == NULL && up->inspector != NULL)
    pin = ph_tls_context_dup_seen_pin (up->inspector);
  return pin != NULL ? ph_pin_to_string (pin) : NULL;
}

/* ---- the background probe of a proxy that is down or refused ---- */

/* A TLS end that takes connections may have nothing behind it (stunnel up, Squid down): a
 * proxy is up once it answers a request. The probe asks for a tunnel to its own name's port 443
 * without credentials; any answer (200, 403, 407, 503) says the proxy is there. */
struct _PhProbe
{
  PhProxy *p;
  PhUpstream *up; /* a reference */
  PhStream *stream;
  GString *out; /* the CONNECT, until it is asked */
  PhAsk *ask;
};

static void
probe_free (PhProbe *pr)
{
  guint i = ph_proxy_get_index (pr->p);

  g_clear_pointer (&pr->ask, ph_ask_free);
  g_clear_pointer (&pr->stream, ph_stream_free);
  if (pr->out != NULL)
    g_string_free (pr->out, TRUE);
  pr->up->probing &= ~(G_GUINT64_CONSTANT (1) << i);
  if (g_ptr_array_index (pr->up->probes, i) == pr)
    g_ptr_array_index (pr->up->probes, i) = NULL;
  ph_upstream_unref (pr->up);
  g_free (pr);
}

static void
probe_answered (PhHttpResponse *resp, const char *why, gpointer data)
{
  PhProbe *pr = data;
  PhProxy *p = pr->p;

  pr->ask = NULL; /* freed once this returns */
  if (!pr->up->shut && resp != NULL)
    {
      g_debug ("probe of %s: answered %u", ph_proxy_get_name (p),
               ph_http_response_get_status (resp));
      ph_proxy_set_health (p, PH_PROXY_UP, NULL);
    }
  else if (!pr->up->shut)
    {
      g_autoptr (GError) error
          = g_error_new (PH_ERROR, PH_ERROR_UPSTREAM_UNREACHABLE,
                         /* TRANSLATORS: the cloud proxy's host:port, then why */
                         _ ("the cloud proxy %s took a TLS connection but answered no "
                            "request (%s)"),
                         ph_proxy_get_name (p), why);
      g_debug ("probe of %s: %s", ph_proxy_get_name (p), error->message);
      ph_proxy_set_health (p, PH_PROXY_DOWN, error);
    }
  g_clear_pointer (&resp, ph_http_response_free);
  probe_free (pr);
}

static void
probe_connected (PhStream *stream, GError *error, gpointer data)
{
  PhProbe *pr = data;

  if (stream == NULL)
    {
      /* Recorded as any attempt is (down, or refused). */
      g_clear_error (&error);
      probe_free (pr);
      return;
    }
  pr->stream = stream;
  g_ptr_array_index (pr->up->probes, ph_proxy_get_index (pr->p)) = pr;
  pr->ask = ph_ask_new (stream, g_steal_pointer (&pr->out),
                        MIN (ph_config_get_response_timeout_ms (pr->up->config), 10000),
                        probe_answered, pr);
}

/* Tries each down or refused proxy whose time has come, outside any request. */
static void
probe_due (PhUpstream *up, gint64 now)
{
  for (guint i = 0; i < up->proxies->len; i++)
    {
      PhProxy *p = proxy_at (up, i);
      PhConnect *c;
      PhProbe *pr;

      const char *host = ph_proxy_get_host (p);
      guint64 bit = G_GUINT64_CONSTANT (1) << i;

      if ((up->probing & bit) != 0 || proxy_usable (p) || ph_proxy_get_retry_at (p) > now)
        continue;
      g_debug ("probing cloud proxy %s", ph_proxy_get_name (p));
      up->probing |= bit;
      pr = g_new0 (PhProbe, 1);
      pr->p = p;
      pr->up = ph_upstream_ref (up);
      pr->out = g_string_new (NULL);
      g_string_printf (pr->out,
                       strchr (host, ':') ? "CONNECT [%s]:443 HTTP/1.1\r\nHost: [%s]:443\r\n\r\n"
                                          : "CONNECT %s:443 HTTP/1.1\r\nHost: %s:443\r\n\r\n",
                       host, host);
      c = g_new0 (PhConnect, 1);
      c->func = probe_connected;
      c->user_data = pr;
      c->probe = TRUE;
      connect_start (c, up, p, ph_proxy_get_cancellable (p));
    }
}

/* Readable while idle: a TLS 1.3 session ticket (consumed: still good) or
 * the server closing it, or bytes nobody asked for (not good). */
static gboolean
warm_probe (PhWarm *w)
{
  return ph_stream_is_idle_open (w->stream);
}

static gboolean
warm_watch_cb (GSocket *socket, GIOCondition cond, gpointer data)
{
  PhWarm *w = data;
  PhUpstream *up = w->up;

  if (warm_probe (w))
    {
      ph_upstream_save_session (up, w->stream);
      g_source_unref (w->watch);
      w->watch = ph_stream_wait (w->stream, FALSE, warm_watch_cb, w);
      return G_SOURCE_REMOVE;
    }
  g_debug ("warm connection to %s closed by the server",
           ph_upstream_get_stream_proxy_name (up, w->stream));
  g_queue_remove (&up->warm, w);
  g_source_unref (g_steal_pointer (&w->watch));
  warm_free (w);
  pool_refill (up);
  return G_SOURCE_REMOVE;
}

static void
pool_connect_done (PhStream *stream, GError *error, gpointer data)
{
  PhUpstream *up = data;

  up->warm_pending--;
  if (up->shut)
    {
      if (stream != NULL)
        ph_stream_free (stream);
      g_clear_error (&error);
      ph_upstream_unref (up);
      return;
    }
  if (stream == NULL && g_error_matches (error, G_IO_ERROR, G_IO_ERROR_CANCELLED))
    {
      /* Not needed after all (the proxy speaks HTTP/2): no failure, no retry. */
      g_error_free (error);
      ph_upstream_unref (up);
      return;
    }
  if (stream == NULL)
    {
      /* Say it once per distinct problem, not once per retry. */
      if (g_strcmp0 (up->last_pool_error, error->message) != 0)
        {
          g_warning ("cloud proxy unavailable: %s", error->message);
          g_free (up->last_pool_error);
          up->last_pool_error = g_strdup (error->message);
        }
      g_error_free (error);
      up->backoff_ms = MIN (up->backoff_ms * 2, BACKOFF_MAX_MS);
      pool_refill (up);
      ph_upstream_unref (up);
      return;
    }
  if (up->last_pool_error != NULL)
    {
      g_message ("cloud proxy %s reachable again", ph_upstream_get_stream_proxy_name (up, stream));
      g_clear_pointer (&up->last_pool_error, g_free);
    }
  up->backoff_ms = BACKOFF_MIN_MS;
  if (!ph_upstream_get_proxy_in_use (up, ph_proxy_get_index (stream_proxy (stream))))
    {
      /* Its proxy went down (or another is first again) while it was made. */
      ph_stream_free (stream);
      pool_refill_later (up);
      ph_upstream_unref (up);
      return;
    }
  if (up->warm.length >= warm_target (up))
    {
      /* Not wanted any more: the proxy turned out to speak HTTP/2 while it was made. */
      ph_stream_free (stream);
      ph_upstream_unref (up);
      return;
    }
  g_queue_push_tail (&up->warm, pool_entry_new (up, stream, warm_watch_cb));
  ph_upstream_unref (up);
}

/* Demand is counted per second: a request that took a warm connection or
 * found none. The moving average halves for every second gone by. */
static void
demand_roll (PhUpstream *up, gint64 now)
{
  gint64 seconds = (now - up->demand_window_us) / G_USEC_PER_SEC;

  if (seconds <= 0)
    return;
  up->demand_rate = 0.5 * up->demand_rate + 0.5 * up->demand_count;
  for (gint64 i = 1; i < seconds && up->demand_rate > 0.01; i++)
    up->demand_rate *= 0.5;
  up->demand_count = 0;
  up->demand_window_us += seconds * G_USEC_PER_SEC;
}

/* How many warm connections to keep: what arrives while one is made (its
 * refill delay and connect + handshake time) at the recent rate, twice for
 * bursts, and WARM_FLOOR when quiet; `warm` is the ceiling. */
static guint
warm_target_at (PhUpstream *up, gint64 now)
{
  guint ceiling = ph_config_get_warm (up->config);
  PhProxy *p = proxy_in_use (up);
  double rate, need;

  demand_roll (up, now);
  /* A proxy that speaks HTTP/2 takes new tunnels on its connection without a handshake: warm
   * HTTP/1.1 connections would only be more sessions through the office firewall. */
  if (p != NULL && ph_proxy_get_h2_state (p) == PH_PROXY_H2_YES && ph_upstream_wants_h2 (up))
    return 0;
  rate = MAX (up->demand_rate, (double) up->demand_count);
  need = 2.0 * rate * (up->connect_s + REFILL_DELAY_MS / 1000.0);
  return MIN (ceiling, MAX (WARM_FLOOR, (guint) need + 1));
}

static guint
warm_target (PhUpstream *up)
{
  return warm_target_at (up, g_get_monotonic_time ());
}

guint
ph_upstream_get_warm_target (PhUpstream *up, gint64 now_us)
{
  return warm_target_at (up, now_us);
}

static void
pool_fill_now (PhUpstream *up)
{
  guint target = warm_target (up);

  while (!up->shut && up->warm.length + up->warm_pending < target)
    {
      up->warm_pending++;
      ph_upstream_connect_async (up, up->cancellable, pool_connect_done, ph_upstream_ref (up));
    }
}

static gboolean
refill_cb (gpointer data)
{
  PhUpstream *up = data;

  g_clear_pointer (&up->refill_source, g_source_unref);
  pool_fill_now (up);
  return G_SOURCE_REMOVE;
}

static void
pool_refill (PhUpstream *up)
{
  if (up->shut || up->refill_source != NULL)
    return;
  if (up->last_pool_error == NULL)
    {
      pool_fill_now (up);
      return;
    }
  /* The proxy is failing: retry with backoff, not in a loop. */
  up->refill_source = g_timeout_source_new (up->backoff_ms);
  g_source_set_callback (up->refill_source, refill_cb, up, NULL);
  g_source_attach (up->refill_source, NULL);
}

/* After a connection is taken, its replacement waits a moment: a
 * handshake now would compete for CPU (here and at the proxy) with the
 * tunnel that was just opened, on the path of its first round trips. */
static void
pool_refill_later (PhUpstream *up)
{
  if (up->shut || up->refill_source != NULL)
    return;
  if (up->last_pool_error != NULL)
    {
      pool_refill (up);
      return;
    }
  up->refill_source = g_timeout_source_new (REFILL_DELAY_MS);
  g_source_set_callback (up->refill_source, refill_cb, up, NULL);
  g_source_attach (up->refill_source, NULL);
}

/* The first entry of @pool younger than @max_age_us and still open; the
 * ones before it are closed. */
static PhStream *
pool_pop_live (GQueue *pool, gint64 now, gint64 max_age_us)
{
  PhStream *stream = NULL;
  PhWarm *w;

  while (stream == NULL && (w = g_queue_pop_head (pool)) != NULL)
    {
      if (now - w->born_us < max_age_us && warm_probe (w))
        stream = g_steal_pointer (&w->stream);
      warm_free (w);
    }
  return stream;
}

PhStream *
ph_upstream_take_warm (PhUpstream *up)
{
  gint64 now = g_get_monotonic_time ();
  PhStream *stream;

  demand_roll (up, now);
  up->demand_count++;
  stream = pool_pop_live (&up->warm, now, WARM_MAX_AGE_US);
  if (stream != NULL)
    up->stats.warm_taken++;
  else
    up->stats.warm_missed++;
  pool_refill_later (up);
  return stream;
}

/* ---- the idle pool: kept-alive connections, shared by every client ----
 *
 * As a forward proxy keeps its server connections (Squid's pconn): a
 * plain exchange that leaves its connection open gives it back here, and
 * the next request of any client takes it before a warm one. An entry is
 * watched while it waits (the proxy closing it takes it out at once) and
 * lives idle-lifetime at most, less than the proxies' own timeouts. */

static void
idle_remove (PhUpstream *up, PhWarm *w)
{
  g_queue_remove (&up->idle, w);
  warm_free (w);
}

static gboolean
idle_watch_cb (GSocket *socket, GIOCondition cond, gpointer data)
{
  PhWarm *w = data;
  PhUpstream *up = w->up;

  g_source_unref (g_steal_pointer (&w->watch));
  if (warm_probe (w))
    {
      /* A TLS 1.3 session ticket: keep it for the next handshake. */
      ph_upstream_save_session (up, w->stream);
      w->watch = ph_stream_wait (w->stream, FALSE, idle_watch_cb, w);
      return G_SOURCE_REMOVE;
    }
  g_debug ("idle connection to %s closed by the server",
           ph_upstream_get_stream_proxy_name (up, w->stream));
  up->stats.idle_closed++;
  idle_remove (up, w);
  return G_SOURCE_REMOVE;
}

gboolean
ph_upstream_put_idle (PhUpstream *up, PhStream *stream)
{
  if (up->shut || ph_config_get_idle_connections (up->config) == 0
      || !ph_stream_is_idle_open (stream))
    {
      ph_stream_free (stream);
      return FALSE;
    }
  ph_upstream_save_session (up, stream);
  while (up->idle.length >= ph_config_get_idle_connections (up->config))
    idle_remove (up, g_queue_peek_tail (&up->idle));
  g_queue_push_head (&up->idle, pool_entry_new (up, stream, idle_watch_cb));
  return TRUE;
}

PhStream *
ph_upstream_take_idle (PhUpstream *up)
{
  gint64 now = g_get_monotonic_time ();
  gint64 lifetime_us = (gint64) ph_config_get_idle_lifetime_ms (up->config) * 1000;
  PhStream *stream = pool_pop_live (&up->idle, now, lifetime_us);

  if (stream != NULL)
    up->stats.idle_reused++;
  return stream;
}

guint
ph_upstream_get_n_idle (PhUpstream *up)
{
  return up->idle.length;
}

gboolean
ph_upstream_drop_oldest_idle (PhUpstream *up)
{
  if (up->idle.length == 0)
    return FALSE;
  idle_remove (up, g_queue_peek_tail (&up->idle));
  return TRUE;
}

void
ph_upstream_drop_idle (PhUpstream *up)
{
  if (up->idle.length > 0)
    g_debug ("dropping %u idle connections", up->idle.length);
  g_queue_clear_full (&up->idle, (GDestroyNotify) warm_free);
}

void
ph_upstream_sweep (PhUpstream *up, gint64 now)
{
  gint64 lifetime_us = (gint64) ph_config_get_idle_lifetime_ms (up->config) * 1000;
  PhWarm *w;

  if (!up->shut)
    probe_due (up, now);
  while ((w = g_queue_peek_tail (&up->idle)) != NULL && now - w->born_us >= lifetime_us)
    {
      up->stats.idle_expired++;
      idle_remove (up, w);
    }
  /* Warm connections over the target (a burst is over) go once old enough
   * that the next burst is unlikely to be the same one. */
  while (up->warm.length > warm_target_at (up, now) && (w = g_queue_peek_head (&up->warm)) != NULL
         && now - w->born_us >= WARM_TRIM_AGE_US)
    {
      g_queue_pop_head (&up->warm);
      warm_free (w);
    }
}

void
ph_upstream_network_changed (PhUpstream *up, const char *why)
{
  if (up->shut)
    return;
  g_message ("%s: dropping %u idle and %u warm connections, forgetting what is known of the "
             "cloud proxies, resolving their names again",
             why, up->idle.length, up->warm.length);
  ph_upstream_drop_idle (up);
  g_queue_clear_full (&up->warm, (GDestroyNotify) warm_free);
  up->backoff_ms = BACKOFF_MIN_MS;
  g_clear_pointer (&up->last_pool_error, g_free);
  if (up->refill_source != NULL)
    {
      g_source_destroy (up->refill_source);
      g_clear_pointer (&up->refill_source, g_source_unref);
    }
  for (guint i = 0; i < up->proxies->len; i++)
    {
      if (g_ptr_array_index (up->probes, i) != NULL)
        probe_free (g_ptr_array_index (up->probes, i));
      ph_proxy_forget (proxy_at (up, i));
      /* Its addresses are only shown with several proxies (a lone one's connections resolve
       * its name themselves, and a lookup more would be work done twice). */
      if (up->proxies->len > 1)
        ph_proxy_resolve (proxy_at (up, i));
    }
  up->probing = 0;
  upstream_notify (up, PH_UPSTREAM_HEALTH_CHANGED);
  pool_refill (up);
}

void
ph_upstream_count_retry (PhUpstream *up)
{
  up->stats.retries++;
}

void
ph_upstream_get_stats (PhUpstream *up, PhUpstreamStats *stats)
{
  *stats = up->stats;
  stats->n_idle = up->idle.length;
  stats->n_warm = up->warm.length;
  stats->handshakes_full = stats->handshakes_resumed = 0;
  stats->n_h2_sessions = stats->n_h2_streams = 0;
  for (guint i = 0; i < up->proxies->len; i++)
    {
      PhProxy *p = proxy_at (up, i);
      guint64 full = 0, resumed = 0;

      ph_tls_context_get_handshakes (ph_proxy_get_tls (p), &full, &resumed);
      stats->handshakes_full += full;
      stats->handshakes_resumed += resumed;
#ifdef PH_HAVE_NGHTTP2
      for (guint k = 0; k < ph_proxy_get_n_h2 (p); k++)
        {
          stats->n_h2_sessions++;
          stats->n_h2_streams += ph_h2_session_get_open_streams (ph_proxy_get_h2 (p, k));
        }
#endif
    }
}

/* ---- the exchange ---- */

static void
append_credentials (PhUpstream *up, GString *out)
{
  const char *auth = upstream_get_proxy_auth (up);

  if (auth != NULL)
    g_string_append_printf (out, "Proxy-Authorization: %s\r\n", auth);
}

static GString *
build_connect (PhUpstream *up, const char *authority)
{
  GString *head = g_string_new (NULL);

  g_string_printf (head, "CONNECT %s HTTP/1.1\r\nHost: %s\r\n", authority, authority);
  append_credentials (up, head);
  g_string_append (head, "\r\n");
  return head;
}

GString *
ph_upstream_build_request (PhUpstream *up, const PhHttpRequest *req)
{
  g_autoptr (GString) fields = NULL;
  GString *head;

  if (ph_http_request_get_kind (req) == PH_HTTP_CONNECT)
    return build_connect (up, ph_http_request_get_authority (req));
  fields = g_string_new (NULL);
  append_credentials (up, fields);
  head = ph_http_request_build_forward (req, fields->len > 0 ? fields->str : NULL);
  ph_wipe (fields->str, fields->len);
  return head;
}

/* Only the proxy answers a CONNECT, so a 407 there is its own, and so is a
 * 401 (tinyproxy 1.11 answers wrong proxy credentials with 401 and
 * WWW-Authenticate). An http:// request's 407 may be the origin's: any web
 * page can send one, and taking it for the proxy's would let any web site
 * switch the tunnel off for every user; Squid answers a plain request's
 * failed sign-in with 407 too. So such a 407 is held while the proxy is
 * asked with a CONNECT of our own (ph_upstream_check_auth_async). */
gboolean
ph_upstream_answer_rejects_credentials (const PhHttpRequest *req, const PhHttpResponse *resp)
{
  return ph_http_request_get_kind (req) == PH_HTTP_CONNECT
         && (ph_http_response_get_status (resp) == 407
             || ph_http_response_get_status (resp) == 401);
}

gboolean
ph_upstream_answer_needs_auth_check (const PhHttpRequest *req, const PhHttpResponse *resp)
{
  return ph_http_request_get_kind (req) == PH_HTTP_ABSOLUTE
         && ph_http_response_get_status (resp) == 407;
}

/* ---- is a 407 to an http:// request the proxy's? ---- */

typedef struct
{
  PhUpstream *up;
  PhStream *stream;
  GString *out; /* the CONNECT, until it is asked */
  PhAsk *ask;
  GSource *timeout; /* of the whole check, the connect included */
  GCancellable *cancellable;
  gboolean connecting; /* the connect callback is still to come */
  gboolean done;       /* the waiters have their answer */
} PhAuthCheck;

static void
auth_check_free (PhAuthCheck *c)
{
  g_clear_pointer (&c->ask, ph_ask_free);
  g_clear_pointer (&c->stream, ph_stream_free);
  if (c->out != NULL)
    {
      ph_wipe (c->out->str, c->out->len);
      g_string_free (c->out, TRUE);
    }
  g_object_unref (c->cancellable);
  ph_upstream_unref (c->up);
  g_free (c);
}

static void
auth_check_finish (PhAuthCheck *c, gboolean rejected, const char *why)
{
  PhUpstream *up = c->up;
  g_autoptr (GPtrArray) waiters = g_steal_pointer (&up->auth_waiters);
  g_autoptr (PhUpstream) hold = ph_upstream_ref (up);

  g_debug ("credential check with %s: %s", ph_upstream_get_name (up), why);
  c->done = TRUE;
  if (c->timeout != NULL)
    {
      g_source_destroy (c->timeout);
      g_clear_pointer (&c->timeout, g_source_unref);
    }
  g_cancellable_cancel (c->cancellable);
  if (!c->connecting)
    auth_check_free (c);
  if (rejected)
    ph_upstream_set_auth_rejected (up);
  else if (g_str_has_prefix (why, "taken"))
    up->auth_confirmed_us = g_get_monotonic_time ();
  for (guint i = 0; waiters != NULL && i < waiters->len; i++)
    {
      PhAuthWaiter *w = g_ptr_array_index (waiters, i);
      w->func (rejected, w->user_data);
    }
}

static void
auth_check_answered (PhHttpResponse *resp, const char *why, gpointer data)
{
  PhAuthCheck *c = data;
  g_autofree char *what = NULL;
  gboolean rejected;

  c->ask = NULL; /* freed once this returns */
  if (resp == NULL)
    {
      what = g_strdup_printf ("no answer: %s", why);
      auth_check_finish (c, FALSE, what);
      return;
    }
  rejected = ph_http_response_get_status (resp) == 407 || ph_http_response_get_status (resp) == 401;
  what = g_strdup_printf ("%s (CONNECT answered %u)", rejected ? "rejected" : "taken",
                          ph_http_response_get_status (resp));
  ph_http_response_free (resp);
  auth_check_finish (c, rejected, what);
}

static gboolean
auth_check_timeout_cb (gpointer data)
{
  PhAuthCheck *c = data;

  g_clear_pointer (&c->timeout, g_source_unref);
  auth_check_finish (c, FALSE, "no answer in time");
  return G_SOURCE_REMOVE;
}

static void
auth_check_connected (PhStream *stream, GError *error, gpointer data)
{
  PhAuthCheck *c = data;

  c->connecting = FALSE;
  if (c->done)
    {
      /* Timed out or shut down meanwhile. */
      g_clear_pointer (&stream, ph_stream_free);
      g_clear_error (&error);
      auth_check_free (c);
      return;
    }
  if (stream == NULL)
    {
      g_autofree char *why = g_strdup_printf ("no connection: %s", error->message);
      g_error_free (error);
      auth_check_finish (c, FALSE, why);
      return;
    }
  c->stream = stream;
  c->ask = ph_ask_new (stream, g_steal_pointer (&c->out),
                       ph_config_get_response_timeout_ms (c->up->config), auth_check_answered, c);
}

void
ph_upstream_check_auth_async (PhUpstream *up, const char *host, PhUpstreamCheckFunc func,
                              gpointer user_data)
{
  g_autofree char *authority = NULL;
  PhAuthWaiter *w;
  PhAuthCheck *c;

  if (up->auth_rejected)
    {
      func (TRUE, user_data);
      return;
    }
  if (up->auth_confirmed_us != 0
      && g_get_monotonic_time () - up->auth_confirmed_us < AUTH_CONFIRMED_US)
    {
      func (FALSE, user_data);
      return;
    }
  w = g_new0 (PhAuthWaiter, 1);
  w->func = func;
  w->user_data = user_data;
  if (up->auth_waiters != NULL)
    {
      g_ptr_array_add (up->auth_waiters, w);
      return;
    }
  up->auth_waiters = g_ptr_array_new_with_free_func (g_free);
  g_ptr_array_add (up->auth_waiters, w);

  c = g_new0 (PhAuthCheck, 1);
  c->up = ph_upstream_ref (up);
  /* 443: the port every proxy lets CONNECT reach (Squid's SSL_ports). */
  authority = g_strdup_printf (strchr (host, ':') ? "[%s]:443" : "%s:443", host);
  c->out = build_connect (up, authority);
  c->cancellable = g_cancellable_new ();
  c->connecting = TRUE;
  c->timeout = g_timeout_source_new (ph_config_get_connect_timeout_ms (up->config)
                                     + ph_config_get_handshake_timeout_ms (up->config)
                                     + ph_config_get_response_timeout_ms (up->config));
  g_source_set_callback (c->timeout, auth_check_timeout_cb, c, NULL);
  g_source_attach (c->timeout, NULL);
  ph_upstream_connect_async (up, c->cancellable, auth_check_connected, c);
}

/* ---- tunnels over HTTP/2 ---- */

gboolean
ph_upstream_wants_h2 (PhUpstream *up)
{
#ifdef PH_HAVE_NGHTTP2
  PhProxy *p;

  if (ph_config_get_http2 (up->config) == PH_HTTP2_REQUIRE)
    return TRUE;
  if (ph_config_get_http2 (up->config) == PH_HTTP2_OFF)
    return FALSE;
  /* auto: once the proxy new connections go to has answered h2 with HTTP/1.1, its tunnels go
   * the HTTP/1.1 way (the warm pool included). */
  p = proxy_in_use (up);
  return p == NULL || ph_proxy_get_h2_state (p) != PH_PROXY_H2_NO;
#else
  /* Without libnghttp2, auto is off; require fails each tunnel with a clear error. */
  return ph_config_get_http2 (up->config) == PH_HTTP2_REQUIRE;
#endif
}

gboolean
ph_upstream_stream_is_h2 (PhStream *stream)
{
#ifdef PH_HAVE_NGHTTP2
  return ph_h2_stream_from_stream (stream) != NULL || ph_h2_exchange_get_session (stream) != NULL;
#else
  return FALSE;
#endif
}

typedef struct
{
  PhUpstream *up;
  char *authority; /* NULL for a plain request's exchange */
  GCancellable *cancellable;
  GSource *cancel_source;
  PhUpstreamTunnelFunc func;
  gpointer user_data;
  PhProxy *proxy; /* while waiting for its connection, or the one its stream went to */
  guint refused;  /* streams the proxy did not take (GOAWAY): tried again on a new one */
#ifdef PH_HAVE_NGHTTP2
  PhH2Stream *stream;
  GSource *timeout; /* the wait for the stream's answer */
#endif
} PhTunnelOpen;

static void
tunnel_open_free (PhTunnelOpen *t)
{
  if (t->cancel_source != NULL)
    {
      g_source_destroy (t->cancel_source);
      g_clear_pointer (&t->cancel_source, g_source_unref);
    }
#ifdef PH_HAVE_NGHTTP2
  if (t->timeout != NULL)
    {
      g_source_destroy (t->timeout);
      g_clear_pointer (&t->timeout, g_source_unref);
    }
#endif
  g_clear_object (&t->cancellable);
  g_free (t->authority);
  ph_upstream_unref (t->up);
  g_free (t);
}

static void
tunnel_finish (PhTunnelOpen *t, PhStream *stream, PhHttpResponse *resp, GError *error)
{
  t->func (stream, resp, error, t->user_data);
  tunnel_open_free (t);
}

#ifndef PH_HAVE_NGHTTP2
static void
tunnel_plain_connected (PhStream *stream, GError *error, gpointer data)
{
  tunnel_finish (data, stream, NULL, error);
}
#else
static gboolean tunnel_cancelled_cb (GCancellable *cancellable, gpointer data);

/* While it waits on no connect of its own (for another's connection, for its stream's head),
 * the caller's cancellation ends it. */
static void
tunnel_watch_cancel (PhTunnelOpen *t, gboolean on)
{
  if (t->cancel_source != NULL)
    {
      g_source_destroy (t->cancel_source);
      g_clear_pointer (&t->cancel_source, g_source_unref);
    }
  if (on)
    {
      t->cancel_source = g_cancellable_source_new (t->cancellable);
      g_source_set_callback (t->cancel_source, G_SOURCE_FUNC (tunnel_cancelled_cb), t, NULL);
      g_source_attach (t->cancel_source, NULL);
    }
}

static void tunnel_start (PhTunnelOpen *t);

/* The stream's final head: an HTTP/1.1 answer to read as today's (the same credential rules),
 * without a body of its own (that is the stream's DATA, read from the stream). */
static PhHttpResponse *
tunnel_answer (PhH2Stream *stream, GError **error)
{
  const GPtrArray *headers = ph_h2_stream_get_headers (stream);
  g_autoptr (GString) text = g_string_new (NULL);
  g_autofree char *reason = NULL;
  PhHttpResponse *resp = NULL;
  gsize consumed = 0;
  gboolean has_length = FALSE;

  g_string_printf (text, "HTTP/1.1 %u h2\r\n", ph_h2_stream_get_status (stream));
  for (guint i = 0; headers != NULL && i + 1 < headers->len; i += 2)
    {
      const char *name = g_ptr_array_index (headers, i);
      const char *value = g_ptr_array_index (headers, i + 1);

      /* HTTP/2 has no connection-specific fields (RFC 9113 §8.2.2); the end of the body is
       * the stream's. */
      if (g_ascii_strcasecmp (name, "transfer-encoding") == 0
          || g_ascii_strcasecmp (name, "connection") == 0
          || g_ascii_strcasecmp (name, "keep-alive") == 0)
        continue;
      if (g_ascii_strcasecmp (name, "content-length") == 0)
        has_length = TRUE;
      g_string_append_printf (text, "%s: %s\r\n", name, value);
    }
  if (!has_length)
    g_string_append (text, "Connection: close\r\n");
  g_string_append (text, "\r\n");
  if (ph_http_response_parse (text->str, text->len, NULL, &resp, &consumed, &reason)
      != PH_HTTP_PARSE_DONE)
    {
      g_set_error (error, PH_ERROR, PH_ERROR_UPSTREAM_PROTOCOL,
                   /* TRANSLATORS: why an HTTP/2 answer could not be read */
                   _ ("the cloud proxy sent a malformed HTTP/2 response: %s"),
                   reason ? reason : "?");
      return NULL;
    }
  return resp;
}

static void
tunnel_head (PhH2Stream *stream, GError *error, gpointer data)
{
  PhTunnelOpen *t = data;
  PhHttpResponse *resp;
  GError *local = NULL;
  PhStream *out;

  t->stream = NULL;
  tunnel_watch_cancel (t, FALSE);
  if (t->timeout != NULL)
    {
      g_source_destroy (t->timeout);
      g_clear_pointer (&t->timeout, g_source_unref);
    }
  if (error != NULL)
    {
      /* @error is the stream's own: copied before the stream goes. */
      GError *copy = g_error_copy (error);

      ph_h2_stream_free (stream);
      if ((g_error_matches (copy, PH_H2_ERROR, PH_H2_ERROR_REFUSED)
           || g_error_matches (copy, PH_H2_ERROR, PH_H2_ERROR_CONNECTION))
          && t->refused++ < 3 && !g_cancellable_is_cancelled (t->cancellable))
        {
          /* Not answered: nothing of the client's went beyond the proxy (only the CONNECT was
           * sent), so it goes again, on a new connection once this one is gone or going away
           * (and to the next proxy if this one cannot be reached). */
          g_debug ("%s: the cloud proxy did not take the stream (%s); trying again", t->authority,
                   copy->message);
          g_error_free (copy);
          t->up->stats.h2_retried++;
          tunnel_start (t);
          return;
        }
      tunnel_finish (t, NULL, NULL, copy);
      return;
    }
  resp = tunnel_answer (stream, &local);
  if (resp == NULL)
    {
      ph_h2_stream_free (stream);
      tunnel_finish (t, NULL, NULL, local);
      return;
    }
  out = ph_h2_stream_to_stream (stream);
  ph_stream_set_origin (out, t->proxy);
  tunnel_finish (t, out, resp, NULL);
}

static gboolean
tunnel_timeout_cb (gpointer data)
{
  PhTunnelOpen *t = data;
  PhH2Session *session = ph_h2_stream_get_session (t->stream);

  g_clear_pointer (&t->timeout, g_source_unref);
  /* A slow target or a dead connection: a PING tells them apart for the streams to come. */
  ph_h2_session_check_alive (session, PH_H2_PING_TIMEOUT_MS);
  tunnel_watch_cancel (t, FALSE);
  g_clear_pointer (&t->stream, ph_h2_stream_free);
  tunnel_finish (t, NULL, NULL,
                 g_error_new (PH_ERROR, PH_ERROR_TIMEOUT,
                              /* TRANSLATORS: %s is host:port, %u seconds */
                              _ ("the cloud proxy did not answer the CONNECT to %s within %u s"),
                              t->authority,
                              ph_config_get_response_timeout_ms (t->up->config) / 1000));
  return G_SOURCE_REMOVE;
}

static void
tunnel_open_on (PhTunnelOpen *t, PhProxy *p, PhH2Session *session)
{
  const char *auth = upstream_get_proxy_auth (t->up);
  /* The credential is the same one append_credentials writes for HTTP/1.1. */
  const char *headers[] = { auth != NULL ? "proxy-authorization" : NULL, auth, NULL };
  GError *error = NULL;
  PhStream *out;

  t->proxy = p;
  if (t->authority == NULL)
    {
      /* A plain request: its exchange opens its stream once the request is written. */
      out = ph_h2_exchange_new (session);
      ph_stream_set_origin (out, p);
      t->up->stats.h2_streams++;
      tunnel_finish (t, out, NULL, NULL);
      return;
    }
  t->stream = ph_h2_session_open_connect (session, t->authority, headers, tunnel_head, t, &error);
  if (t->stream != NULL)
    {
      t->up->stats.h2_streams++;
      tunnel_watch_cancel (t, TRUE);
      t->timeout = g_timeout_source_new (ph_config_get_response_timeout_ms (t->up->config));
      g_source_set_callback (t->timeout, tunnel_timeout_cb, t, NULL);
      g_source_attach (t->timeout, NULL);
    }
  else
    {
      if (t->refused++ < 3)
        {
          g_clear_error (&error);
          ph_proxy_remove_h2 (p, session);
          tunnel_start (t);
          return;
        }
      tunnel_finish (t, NULL, NULL, error);
    }
}

static void
tunnel_connected (PhStream *stream, GError *error, gpointer data)
{
  PhTunnelOpen *t = data;
  PhUpstream *up = t->up;
  guint64 bit = G_GUINT64_CONSTANT (1) << ph_proxy_get_index (t->proxy);
  g_autofree char *alpn = NULL;
  PhH2Session *session = NULL;
  GQueue waiting = G_QUEUE_INIT;
  PhProxy *p;

  up->h2_connecting &= ~bit;
  /* Those waiting for this proxy's connection try again, whatever came of it. */
  for (GList *l = up->h2_waiting.head; l != NULL;)
    {
      GList *next = l->next;
      PhTunnelOpen *w = l->data;

      if (w->proxy == t->proxy)
        {
          g_queue_unlink (&up->h2_waiting, l);
          g_queue_push_tail_link (&waiting, l);
        }
      l = next;
    }
  if (stream == NULL)
    {
      tunnel_finish (t, NULL, NULL, error);
      goto waiters;
    }
  p = stream_proxy (stream);
  t->proxy = p;
  alpn = ph_tls_dup_alpn (stream);
  if (g_strcmp0 (alpn, "h2") != 0)
    {
      if (ph_config_get_http2 (up->config) == PH_HTTP2_REQUIRE)
        {
          error = g_error_new (PH_ERROR, PH_ERROR_UPSTREAM_PROTOCOL,
                               /* TRANSLATORS: the cloud proxy's host:port */
                               _ ("the cloud proxy %s did not choose HTTP/2 by ALPN, and "
                                  "[upstream] http2=require"),
                               ph_proxy_get_name (p));
          ph_stream_free (stream);
          tunnel_finish (t, NULL, NULL, error);
        }
      else
        tunnel_finish (t, stream, NULL, NULL); /* HTTP/1.1, as without h2 */
      goto waiters;
    }
  if (ph_proxy_get_n_h2 (p) >= ph_config_get_h2_connections (up->config)
      && (session = h2_pick (up, p, FALSE)) != NULL)
    {
      /* Another connection became the proxy's session meanwhile (the first one made, for a
       * probe, is kept as one): that one is used, and this one is not needed. */
      ph_stream_free (stream);
      tunnel_open_on (t, p, session);
      goto waiters;
    }
  session = ph_h2_session_new (stream, 0, &error);
  if (session == NULL)
    {
      tunnel_finish (t, NULL, NULL, error);
      goto waiters;
    }
  ph_h2_session_set_notify (session, h2_session_notify, p);
  h2_make_room (up, p);
  ph_proxy_add_h2 (p, ph_h2_session_ref (session), h2_session_release);
  up->stats.h2_connections++;
  tunnel_open_on (t, p, session);
  ph_h2_session_unref (session);
waiters:
  while (!g_queue_is_empty (&waiting))
    {
      PhTunnelOpen *w = g_queue_pop_head (&waiting);

      tunnel_watch_cancel (w, FALSE);
      tunnel_start (w);
    }
}

static gboolean
tunnel_cancelled_cb (GCancellable *cancellable, gpointer data)
{
  PhTunnelOpen *t = data;

  /* Only reached while it waits for another's connection or for its stream's head. */
  g_source_destroy (t->cancel_source);
  g_clear_pointer (&t->cancel_source, g_source_unref);
  g_queue_remove (&t->up->h2_waiting, t);
  g_clear_pointer (&t->stream, ph_h2_stream_free);
  tunnel_finish (t, NULL, NULL,
                 g_error_new_literal (G_IO_ERROR, G_IO_ERROR_CANCELLED, "cancelled"));
  return G_SOURCE_REMOVE;
}

static void
tunnel_start (PhTunnelOpen *t)
{
  PhUpstream *up = t->up;
  PhProxy *p = select_proxy (up, 0, TRUE);
  PhH2Session *session;
  PhConnect *c;

  if (p == NULL || up->shut)
    {
      tunnel_finish (t, NULL, NULL,
                     g_error_new (PH_ERROR, PH_ERROR_UPSTREAM_UNREACHABLE, "%s",
                                  _ ("no cloud proxy to connect to")));
      return;
    }
  /* While one of its connections is being made, the streams go on those there are. */
  session = h2_pick (up, p,
                     (up->h2_connecting & (G_GUINT64_CONSTANT (1) << ph_proxy_get_index (p))) == 0);
  if (session != NULL)
    {
      tunnel_open_on (t, p, session);
      return;
    }
  t->proxy = p;
  if ((up->h2_connecting & (G_GUINT64_CONSTANT (1) << ph_proxy_get_index (p))) != 0)
    {
      /* Its connection is on the way: the tunnel waits for it rather than make another. */
      g_queue_push_tail (&up->h2_waiting, t);
      tunnel_watch_cancel (t, TRUE);
      return;
    }
  up->h2_connecting |= G_GUINT64_CONSTANT (1) << ph_proxy_get_index (p);
  c = g_new0 (PhConnect, 1);
  c->func = tunnel_connected;
  c->user_data = t;
  c->h2 = TRUE;
  c->up = ph_upstream_ref (up);
  c->cancellable = g_object_ref (t->cancellable);
  c->proxy = p;
  connect_attempt (c);
}
#endif

void
ph_upstream_open_tunnel_async (PhUpstream *up, const PhHttpRequest *req, GCancellable *cancellable,
                               PhUpstreamTunnelFunc func, gpointer user_data)
{
  PhTunnelOpen *t = g_new0 (PhTunnelOpen, 1);

  t->up = ph_upstream_ref (up);
  if (ph_http_request_get_kind (req) == PH_HTTP_CONNECT)
    t->authority = g_strdup (ph_http_request_get_authority (req));
  t->cancellable = cancellable != NULL ? g_object_ref (cancellable) : g_cancellable_new ();
  t->func = func;
  t->user_data = user_data;
#ifdef PH_HAVE_NGHTTP2
  tunnel_start (t);
#else
  if (ph_config_get_http2 (up->config) == PH_HTTP2_REQUIRE)
    {
      tunnel_finish (t, NULL, NULL,
                     g_error_new (PH_ERROR, PH_ERROR_UPSTREAM_PROTOCOL, "%s",
                                  _ ("[upstream] http2=require, but this agent was built "
                                     "without HTTP/2 (libnghttp2)")));
      return;
    }
  /* auto: HTTP/1.1, as with http2=off. */
  ph_upstream_connect_async (up, t->cancellable, tunnel_plain_connected, t);
#endif
}

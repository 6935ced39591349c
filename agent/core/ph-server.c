/* SPDX-License-Identifier: GPL-2.0-or-later */
/* ph-server.c: listeners, admission (allow-list, connection and tunnel
 * limits derived from the descriptor limit), the timeout sweep, reload and
 * drain. */
#define G_LOG_DOMAIN "pinhole-server"

#include "ph-server.h"
#include "ph-error.h"
#include "ph-http.h"
#include "ph-log.h"
#include "ph-netfilter.h"
#include "ph-proxy-conn.h"
#include "ph-route.h"
#include "ph-stream.h"

#include <errno.h>
#include <glib/gi18n.h>
#include <string.h>

#define SWEEP_INTERVAL_MS 250
/* Descriptors kept back from clients: log files, config monitors, the
 * bus, warm connections, and the one a refused client needs for its 503. */
#define FD_RESERVE 64
/* Assumed where the platform has no descriptor limit to tell (Windows
 * sockets are handles, bounded by memory, not by a table). */
#define FD_LIMIT_DEFAULT 16384
#define ACCEPT_BATCH 32
#define ACCEPT_PAUSE_MIN_MS 50
#define ACCEPT_PAUSE_MAX_MS 1000
/* At most one line per problem this often, however fast clients come. */
#define LIMIT_WARNING_INTERVAL_US (10 * G_USEC_PER_SEC)

static guint fd_limit = FD_LIMIT_DEFAULT;

typedef struct
{
  guint suppressed;
  gint64 last_us;
} PhRateLimit;

struct _PhServer
{
  PhConfig *config;
  PhRouter *router;
  PhRouteFallback fallback; /* the network's state, set on each new router */
  PhUpstream *upstream;
  GPtrArray *listeners;      /* of GSocket, listening and non-blocking */
  GPtrArray *accept_sources; /* of GSource, one per listener while accepting */
  GSource *accept_pause;
  guint pause_ms;
  guint max_connections;
  guint max_tunnels; /* max-tunnels, or max_connections when it is auto */
  PhRateLimit accept_warning;
  PhRateLimit full_warning;
  GHashTable *conns; /* set of PhProxyConn*, owning a ref */
  GSource *sweep;
  guint sweeps; /* sweeps run, for what is done every few of them */
  gboolean draining;
  guint tunnels;
  guint64 total_requests;
  guint64 bytes_up; /* of connections gone; open ones count in get_bytes_* */
  guint64 bytes_down;
  GPtrArray *bound;             /* of GSocketAddress, what the listeners listen on */
  GPtrArray *bound_transparent; /* of GSocketAddress, the transparent ones */
  PhUpstreamNotify notify;
  gpointer notify_data;
};

void
ph_server_set_fd_limit (guint limit)
{
  fd_limit = limit;
}

/* Each client may need two descriptors: its own and its upstream's. */
static guint
server_max_connections (PhConfig *config)
{
  guint reserve = FD_RESERVE + ph_config_get_warm (config);

  return fd_limit > reserve + 2 ? (fd_limit - reserve) / 2 : 1;
}

/* TRUE when a line may be written now; counts the ones it holds back. */
static gboolean
rate_limit_pass (PhRateLimit *rl, guint *suppressed)
{
  gint64 now = g_get_monotonic_time ();

  if (rl->last_us != 0 && now - rl->last_us < LIMIT_WARNING_INTERVAL_US)
    {
      rl->suppressed++;
      return FALSE;
    }
  rl->last_us = now;
  *suppressed = rl->suppressed;
  rl->suppressed = 0;
  return TRUE;
}

/* Over the connection limit: a fast, clear answer instead of a hang. The
 * descriptor it takes comes from the reserve and is given back at once. */
static void
server_refuse_full (PhServer *server, GSocket *socket, const char *peer)
{
  g_autoptr (GString) resp = ph_http_build_error (
      503, "too-many-connections", "the proxy has too many client connections; try again shortly");
  char drain[4096];
  guint suppressed = 0;

  /* Unread request bytes would turn the close into a reset that can
   * overtake the answer. */
  g_socket_receive_with_blocking (socket, drain, sizeof drain, FALSE, NULL, NULL);
  g_socket_send_with_blocking (socket, resp->str, resp->len, FALSE, NULL, NULL);
  g_socket_shutdown (socket, FALSE, TRUE, NULL);
  ph_log_access (peer, "-", "-", 503, 0, 0, 0, NULL, "too-many-connections", NULL, NULL, NULL, NULL,
                 NULL);
  if (rate_limit_pass (&server->full_warning, &suppressed))
    g_warning ("too many client connections (limit %u): new clients are refused with 503 "
               "(%u more refused since the last message)",
               server->max_connections, suppressed);
}

static const PhProxyConnOwner server_conn_owner;

/* The key of a transparent listener's GSocketAddress (its own, bound address) on its GSocket. */
#define TRANSPARENT_KEY "ph-transparent-listener"

/* Whether @remote may use the agent: loopback, or a network of [listener] allow=. A transparent
 * listener's client whose connection arrived on a loopback address is this machine's own too
 * (capture=local): the output hook's redirect makes the destination loopback but leaves the
 * source the route chose, an address of a network interface; no packet from the network can
 * reach a loopback address. */
static gboolean
server_allows_client (PhServer *server, GSocket *socket, GSocketAddress *remote,
                      gboolean transparent)
{
  g_autoptr (GSocketAddress) local = NULL;

  if (!G_IS_INET_SOCKET_ADDRESS (remote)
      || ph_config_allows_client (
          server->config, g_inet_socket_address_get_address (G_INET_SOCKET_ADDRESS (remote))))
    return TRUE;
  if (!transparent)
    return FALSE;
  local = g_socket_get_local_address (socket, NULL);
  return local != NULL && G_IS_INET_SOCKET_ADDRESS (local)
         && g_inet_address_get_is_loopback (
             g_inet_socket_address_get_address (G_INET_SOCKET_ADDRESS (local)));
}

static void
server_admit (PhServer *server, GSocket *listener, GSocket *socket)
{
  g_autoptr (GSocketConnection) connection = g_socket_connection_factory_create_connection (socket);
  g_autoptr (GSocketAddress) remote = g_socket_connection_get_remote_address (connection, NULL);
  GSocketAddress *transparent = g_object_get_data (G_OBJECT (listener), TRANSPARENT_KEY);
  g_autoptr (GInetSocketAddress) original = NULL;
  PhProxyConn *conn;

  if (server->draining)
    return;
  if (!server_allows_client (server, socket, remote, transparent != NULL))
    {
      g_autofree char *ip = g_inet_address_to_string (
          g_inet_socket_address_get_address (G_INET_SOCKET_ADDRESS (remote)));
      /* A transparent client did not ask a proxy: an HTTP answer would be noise to it. */
      if (transparent == NULL)
        {
          g_autoptr (GString) resp = ph_http_build_error (
              403, "forbidden", "this client's network is not in [listener] allow=");
          g_socket_send_with_blocking (socket, resp->str, resp->len, FALSE, NULL, NULL);
        }
      g_message ("refused client %s: not in [listener] allow=", ip);
      return;
    }
  if (transparent != NULL)
    {
      g_autoptr (GError) error = NULL;

      original = ph_netfilter_original_destination (socket, transparent, &error);
      if (original == NULL)
        {
          /* Nothing to tell a client that did not know it was talking to a proxy. */
          g_autofree char *peer = ph_peer_to_string (remote);
          ph_log_access (peer, "-", "-", 400, 0, 0, 0, NULL, "no-destination", "transparent", NULL,
                         NULL, NULL, NULL);
          g_debug ("%s: %s", peer, error->message);
          return;
        }
    }
  if (g_hash_table_size (server->conns) >= server->max_connections)
    {
      g_autofree char *peer = ph_peer_to_string (remote);
      if (transparent == NULL)
        server_refuse_full (server, socket, peer);
      else
        ph_log_access (peer, "-", "-", 503, 0, 0, 0, NULL, "too-many-connections", "transparent",
                       NULL, NULL, NULL, NULL);
      return;
    }
  conn = ph_proxy_conn_new (connection, server->config, server->router, server->upstream,
                            &server_conn_owner, server);
  if (original != NULL)
    ph_proxy_conn_set_transparent (conn, original);
  g_hash_table_add (server->conns, conn);
  /* Starting may close it, which drops the table's reference. */
  ph_proxy_conn_ref (conn);
  ph_proxy_conn_start (conn);
  ph_proxy_conn_unref (conn);
}

static void server_resume_accepting (PhServer *server);

static gboolean
accept_pause_done_cb (gpointer data)
{
  PhServer *server = data;

  g_clear_pointer (&server->accept_pause, g_source_unref);
  server_resume_accepting (server);
  return G_SOURCE_REMOVE;
}

static void
server_stop_accepting (PhServer *server)
{
  for (guint i = 0; server->accept_sources != NULL && i < server->accept_sources->len; i++)
    g_source_destroy (g_ptr_array_index (server->accept_sources, i));
  g_clear_pointer (&server->accept_sources, g_ptr_array_unref);
  if (server->accept_pause != NULL)
    {
      g_source_destroy (server->accept_pause);
      g_clear_pointer (&server->accept_pause, g_source_unref);
    }
}

/* accept() failed for want of descriptors (or anything else that would
 * fail again at once): stop asking for a while instead of spinning, and
 * wait longer each time it happens again. */
static void
server_pause_accepting (PhServer *server, const GError *error)
{
  guint suppressed = 0;

  server_stop_accepting (server);
  server->pause_ms = server->pause_ms == 0 ? ACCEPT_PAUSE_MIN_MS
                                           : MIN (server->pause_ms * 2, ACCEPT_PAUSE_MAX_MS);
  if (rate_limit_pass (&server->accept_warning, &suppressed))
    g_warning ("cannot accept new clients: %s; pausing for %u ms (%u more since the last "
               "message; %u clients connected)",
               error->message, server->pause_ms, suppressed, g_hash_table_size (server->conns));
  server->accept_pause = g_timeout_source_new (server->pause_ms);
  g_source_set_callback (server->accept_pause, accept_pause_done_cb, server, NULL);
  g_source_attach (server->accept_pause, NULL);
}

/* Accepts what waits on @listener, a batch at most; how many. */
static guint
server_accept_batch (PhServer *server, GSocket *listener)
{
  guint n = 0;

  for (guint i = 0; i < ACCEPT_BATCH && server->accept_sources != NULL; i++)
    {
      g_autoptr (GError) error = NULL;
      g_autoptr (GSocket) socket = g_socket_accept (listener, NULL, &error);

      if (socket == NULL)
        {
          if (!g_error_matches (error, G_IO_ERROR, G_IO_ERROR_WOULD_BLOCK))
            server_pause_accepting (server, error);
          break;
        }
      server->pause_ms = 0;
      server_admit (server, listener, socket);
      n++;
    }
  return n;
}

static gboolean
listener_ready_cb (GSocket *listener, GIOCondition cond, gpointer data)
{
  server_accept_batch (data, listener);
  return G_SOURCE_CONTINUE;
}

/* Once a second the listeners are tried without waiting for their event: on Windows a socket's
 * readiness is an edge (FD_ACCEPT, re-armed by the next accept), and under Wine one was lost
 * twice, after which the agent took no client at all (the CI's max-tunnels case, for minutes).
 * Where nothing waits this costs one accept() per listener, which fails with EWOULDBLOCK. */
static void
server_accept_unannounced (PhServer *server)
{
  for (guint i = 0; server->listeners != NULL && i < server->listeners->len; i++)
    {
      guint n = server_accept_batch (server, g_ptr_array_index (server->listeners, i));

      if (n > 0)
        g_debug ("accepted %u client(s) whose arrival the listener's event did not announce", n);
    }
}

static void
server_resume_accepting (PhServer *server)
{
  if (server->accept_sources != NULL || server->accept_pause != NULL || server->draining)
    return;
  server->accept_sources = g_ptr_array_new_with_free_func ((GDestroyNotify) g_source_unref);
  for (guint i = 0; server->listeners != NULL && i < server->listeners->len; i++)
    {
      GSource *source
          = g_socket_create_source (g_ptr_array_index (server->listeners, i), G_IO_IN, NULL);
      g_source_set_callback (source, (GSourceFunc) (void (*) (void)) listener_ready_cb, server,
                             NULL);
      g_source_attach (source, NULL);
      g_ptr_array_add (server->accept_sources, source);
    }
}

static void
server_connection_closed (gpointer owner, PhProxyConn *conn)
{
  PhServer *server = owner;

  g_hash_table_remove (server->conns, conn);
}

static gboolean
sweep_cb (gpointer data)
{
  PhServer *server = data;
  gint64 now = g_get_monotonic_time ();
  g_autoptr (GPtrArray) list
      = g_ptr_array_new_with_free_func ((GDestroyNotify) ph_proxy_conn_unref);
  GHashTableIter iter;
  gpointer key;

  g_hash_table_iter_init (&iter, server->conns);
  while (g_hash_table_iter_next (&iter, &key, NULL))
    g_ptr_array_add (list, ph_proxy_conn_ref (key));
  for (guint i = 0; i < list->len; i++)
    ph_proxy_conn_check_timeouts (g_ptr_array_index (list, i), now);
  ph_upstream_sweep (server->upstream, now);
  if (++server->sweeps % (1000 / SWEEP_INTERVAL_MS) == 0)
    server_accept_unannounced (server);
  return G_SOURCE_CONTINUE;
}

/* Binds and listens on every address of @want (transparent ones when @transparent): a GSocket
 * each, in @out; how many in @n_bound. */
static gboolean
bind_addresses (GPtrArray *want_list, gboolean transparent, GPtrArray *out, guint *n_bound,
                GError **error)
{
  for (guint i = 0; i < want_list->len; i++)
    {
      GInetSocketAddress *want = g_ptr_array_index (want_list, i);
      GSocketFamily family = g_socket_address_get_family (G_SOCKET_ADDRESS (want));
      g_autoptr (GSocket) sock = NULL;
      g_autoptr (GSocketAddress) got = NULL;
      g_autoptr (GError) local = NULL;
      g_autofree char *text = g_socket_connectable_to_string (G_SOCKET_CONNECTABLE (want));

      sock = g_socket_new (family, G_SOCKET_TYPE_STREAM, G_SOCKET_PROTOCOL_TCP, &local);
      if (sock != NULL && family == G_SOCKET_FAMILY_IPV6)
        ph_socket_set_v6only (sock);
      if (sock != NULL && transparent)
        ph_netfilter_set_transparent (sock);
      if (sock != NULL)
        {
          g_socket_set_listen_backlog (sock, 1024);
          if (!g_socket_bind (sock, G_SOCKET_ADDRESS (want), TRUE, &local)
              || !g_socket_listen (sock, &local))
            g_clear_object (&sock);
        }
      if (sock == NULL)
        {
          /* A machine without IPv6 still serves on IPv4 loopback. */
          if (family == G_SOCKET_FAMILY_IPV6 && want_list->len > 1
              && (g_error_matches (local, G_IO_ERROR, G_IO_ERROR_NOT_SUPPORTED)
                  || g_error_matches (local, G_IO_ERROR, G_IO_ERROR_CONNECTION_REFUSED)
                  || g_str_has_suffix (local->message, g_strerror (EADDRNOTAVAIL))
                  || g_str_has_suffix (local->message, g_strerror (EAFNOSUPPORT))))
            {
              g_warning ("not listening on %s: %s", text, local->message);
              continue;
            }
          /* TRANSLATORS: the first %s is an address:port, the second the system's reason. */
          g_set_error (error, PH_ERROR, PH_ERROR_FAILED, _ ("cannot listen on %s: %s"), text,
                       local->message);
          return FALSE;
        }
      g_socket_set_blocking (sock, FALSE);
      got = g_socket_get_local_address (sock, NULL);
      if (transparent)
        g_object_set_data_full (G_OBJECT (sock), TRANSPARENT_KEY, g_steal_pointer (&got),
                                g_object_unref);
      g_ptr_array_add (out, g_steal_pointer (&sock));
      (*n_bound)++;
    }
  return TRUE;
}

/* Binds and listens on every address of @config, ordinary and transparent: a GSocket each, in
 * @out. */
static gboolean
bind_listeners (PhConfig *config, GPtrArray *out, GError **error)
{
  guint n = 0, n_transparent = 0;

  if (!bind_addresses (ph_config_get_listen (config), FALSE, out, &n, error)
      || !bind_addresses (ph_config_get_transparent (config), TRUE, out, &n_transparent, error))
    return FALSE;
  if (n == 0)
    {
      g_set_error_literal (error, PH_ERROR, PH_ERROR_FAILED, _ ("no listener could be bound"));
      return FALSE;
    }
  return TRUE;
}

/* Stops listening; the ports are free again when this returns. */
static void
server_close_listeners (PhServer *server)
{
  server_stop_accepting (server);
  for (guint i = 0; server->listeners != NULL && i < server->listeners->len; i++)
    g_socket_close (g_ptr_array_index (server->listeners, i), NULL);
  g_clear_pointer (&server->listeners, g_ptr_array_unref);
}

/* Takes @listeners (logging their addresses) and accepts on them. */
static void
server_take_listeners (PhServer *server, GPtrArray *listeners)
{
  server_close_listeners (server);
  server->listeners = listeners;
  g_clear_pointer (&server->bound, g_ptr_array_unref);
  g_clear_pointer (&server->bound_transparent, g_ptr_array_unref);
  server->bound = g_ptr_array_new_with_free_func (g_object_unref);
  server->bound_transparent = g_ptr_array_new_with_free_func (g_object_unref);
  for (guint i = 0; i < listeners->len; i++)
    {
      GSocket *sock = g_ptr_array_index (listeners, i);
      gboolean transparent = g_object_get_data (G_OBJECT (sock), TRANSPARENT_KEY) != NULL;
      GSocketAddress *got = g_socket_get_local_address (sock, NULL);
      g_autofree char *text = NULL;

      if (got == NULL)
        continue;
      text = g_socket_connectable_to_string (G_SOCKET_CONNECTABLE (got));
      g_message (transparent ? "listening on %s (transparent)" : "listening on %s", text);
      g_ptr_array_add (transparent ? server->bound_transparent : server->bound, got);
    }
  server->pause_ms = 0;
  server_resume_accepting (server);
}

/* A tunnel is a client's descriptor and an upstream one, the pair the
 * connection limit is counted in, so "auto" is that limit: memory (about
 * 15 KiB a tunnel) runs out long after descriptors do. A number over it
 * is kept as written: the connection limit refuses the clients first. */
static void
server_set_limits (PhServer *server, PhConfig *config)
{
  guint max = server_max_connections (config);
  guint configured = ph_config_get_max_tunnels (config);
  guint tunnels = configured == PH_CONFIG_MAX_TUNNELS_AUTO ? max : configured;

  if (max == server->max_connections && tunnels == server->max_tunnels)
    return;
  if (configured == PH_CONFIG_MAX_TUNNELS_AUTO)
    g_message ("connection limit %u (descriptor limit %u); tunnel limit %u "
               "(max-tunnels=auto: the connection limit)",
               max, fd_limit, tunnels);
  else if (configured > max)
    g_message ("connection limit %u (descriptor limit %u); tunnel limit %u "
               "(max-tunnels=%u, of which the connection limit lets %u be used)",
               max, fd_limit, tunnels, configured, max);
  else
    g_message ("connection limit %u (descriptor limit %u); tunnel limit %u (max-tunnels=%u)", max,
               fd_limit, tunnels, configured);
  server->max_connections = max;
  server->max_tunnels = tunnels;
}

/* What the server takes from @config, at start and on every reload: the config itself, a router
 * made from it (connections keep the one they started with), the limits and the log level. */
static void
server_use_config (PhServer *server, PhConfig *config)
{
  g_clear_pointer (&server->config, ph_config_unref);
  server->config = ph_config_ref (config);
  g_clear_pointer (&server->router, ph_router_unref);
  server->router = ph_router_new (config);
  ph_router_set_fallback (server->router, server->fallback);
  server_set_limits (server, config);
  ph_log_set_level (ph_config_get_log_level (config));
}

PhServer *
ph_server_new (PhConfig *config, GError **error)
{
  PhServer *server;
  g_autoptr (GPtrArray) listeners = g_ptr_array_new_with_free_func (g_object_unref);
  g_autoptr (PhUpstream) upstream = NULL;

  if (!bind_listeners (config, listeners, error))
    return NULL;
  upstream = ph_upstream_new (config, error);
  if (upstream == NULL)
    return NULL;
  server = g_new0 (PhServer, 1);
  server->upstream = g_steal_pointer (&upstream);
  server->conns = g_hash_table_new_full (g_direct_hash, g_direct_equal,
                                         (GDestroyNotify) ph_proxy_conn_unref, NULL);
  server_use_config (server, config);
  server_take_listeners (server, g_steal_pointer (&listeners));
  server->sweep = g_timeout_source_new (SWEEP_INTERVAL_MS);
  g_source_set_callback (server->sweep, sweep_cb, server, NULL);
  g_source_attach (server->sweep, NULL);
  return server;
}

void
ph_server_free (PhServer *server)
{
  g_autoptr (GPtrArray) list
      = g_ptr_array_new_with_free_func ((GDestroyNotify) ph_proxy_conn_unref);
  GHashTableIter iter;
  gpointer key;

  g_hash_table_iter_init (&iter, server->conns);
  while (g_hash_table_iter_next (&iter, &key, NULL))
    g_ptr_array_add (list, ph_proxy_conn_ref (key));
  for (guint i = 0; i < list->len; i++)
    ph_proxy_conn_close (g_ptr_array_index (list, i));
  g_source_destroy (server->sweep);
  g_source_unref (server->sweep);
  server_close_listeners (server);
  ph_upstream_set_notify (server->upstream, NULL, NULL);
  ph_upstream_shutdown (server->upstream);
  ph_upstream_unref (server->upstream);
  ph_router_unref (server->router);
  ph_config_unref (server->config);
  g_hash_table_unref (server->conns);
  g_clear_pointer (&server->bound, g_ptr_array_unref);
  g_clear_pointer (&server->bound_transparent, g_ptr_array_unref);
  g_free (server);
}

gboolean
ph_server_reload (PhServer *server, PhConfig *config, GError **error)
{
  if (!ph_config_same_listeners (server->config, config))
    {
      g_autoptr (GPtrArray) listeners = g_ptr_array_new_with_free_func (g_object_unref);

      /* Let go of the old ports first: the new list may reuse one. */
      server_close_listeners (server);
      if (!bind_listeners (config, listeners, error))
        {
          g_autoptr (GPtrArray) old = g_ptr_array_new_with_free_func (g_object_unref);
          g_autoptr (GError) again = NULL;
          if (bind_listeners (server->config, old, &again))
            server_take_listeners (server, g_steal_pointer (&old));
          else
            g_warning ("could not listen again on the old addresses: %s", again->message);
          return FALSE;
        }
      server_take_listeners (server, g_steal_pointer (&listeners));
    }
  if (!ph_config_same_upstream (server->config, config)
      || !ph_config_same_credentials (server->config, config)
      || ph_config_get_warm (server->config) != ph_config_get_warm (config)
      || ph_config_get_idle_connections (server->config) != ph_config_get_idle_connections (config)
      || ph_config_get_idle_lifetime_ms (server->config) != ph_config_get_idle_lifetime_ms (config)
      || ph_config_get_connect_timeout_ms (server->config)
             != ph_config_get_connect_timeout_ms (config)
      || ph_config_get_handshake_timeout_ms (server->config)
             != ph_config_get_handshake_timeout_ms (config))
    {
      g_autoptr (PhUpstream) upstream = ph_upstream_new (config, error);
      if (upstream == NULL)
        return FALSE;
      ph_upstream_shutdown (server->upstream);
      ph_upstream_set_notify (server->upstream, NULL, NULL);
      ph_upstream_unref (server->upstream);
      server->upstream = g_steal_pointer (&upstream);
      ph_upstream_set_notify (server->upstream, server->notify, server->notify_data);
    }
  else
    {
      /* A reload is the operator saying "try again", e.g. after fixing the
       * account on the proxy's side; connections made under the old
       * configuration are not reused. */
      ph_upstream_clear_auth_rejected (server->upstream);
      ph_upstream_drop_idle (server->upstream);
    }
  server_use_config (server, config);
  return TRUE;
}

void
ph_server_drain (PhServer *server)
{
  g_autoptr (GPtrArray) list
      = g_ptr_array_new_with_free_func ((GDestroyNotify) ph_proxy_conn_unref);
  GHashTableIter iter;
  gpointer key;

  if (server->draining)
    return;
  server->draining = TRUE;
  server_close_listeners (server);
  g_ptr_array_set_size (server->bound, 0);
  g_ptr_array_set_size (server->bound_transparent, 0);
  ph_upstream_set_notify (server->upstream, NULL, NULL);
  ph_upstream_shutdown (server->upstream);
  g_hash_table_iter_init (&iter, server->conns);
  while (g_hash_table_iter_next (&iter, &key, NULL))
    g_ptr_array_add (list, ph_proxy_conn_ref (key));
  for (guint i = 0; i < list->len; i++)
    ph_proxy_conn_close_if_idle (g_ptr_array_index (list, i));
}

gboolean
ph_server_is_draining (PhServer *server)
{
  return server->draining;
}

guint
ph_server_get_n_connections (PhServer *server)
{
  return g_hash_table_size (server->conns);
}

guint
ph_server_get_n_tunnels (PhServer *server)
{
  return server->tunnels;
}

guint
ph_server_get_max_connections (PhServer *server)
{
  return server->max_connections;
}

guint
ph_server_get_max_tunnels (PhServer *server)
{
  return server->max_tunnels;
}

guint64
ph_server_get_total_requests (PhServer *server)
{
  return server->total_requests;
}

/* Long tunnels count as they go, not only when they end. */
static void
live_bytes (PhServer *server, guint64 *up, guint64 *down)
{
  GHashTableIter iter;
  gpointer key;

  *up = server->bytes_up;
  *down = server->bytes_down;
  g_hash_table_iter_init (&iter, server->conns);
  while (g_hash_table_iter_next (&iter, &key, NULL))
    {
      guint64 u = 0, d = 0;
      ph_proxy_conn_get_live_bytes (key, &u, &d);
      *up += u;
      *down += d;
    }
}

guint64
ph_server_get_bytes_up (PhServer *server)
{
  guint64 up, down;

  live_bytes (server, &up, &down);
  return up;
}

guint64
ph_server_get_bytes_down (PhServer *server)
{
  guint64 up, down;

  live_bytes (server, &up, &down);
  return down;
}

void
ph_server_add_connections (PhServer *server, GVariantBuilder *builder)
{
  gint64 now = g_get_monotonic_time ();
  GHashTableIter iter;
  gpointer key;

  g_hash_table_iter_init (&iter, server->conns);
  while (g_hash_table_iter_next (&iter, &key, NULL))
    g_variant_builder_add_value (builder, ph_proxy_conn_describe (key, now));
}

PhConfig *
ph_server_get_config (PhServer *server)
{
  return server->config;
}

PhRouter *
ph_server_get_router (PhServer *server)
{
  return server->router;
}

static GStrv
addresses_to_strv (GPtrArray *bound)
{
  g_autoptr (GStrvBuilder) out = g_strv_builder_new ();

  for (guint i = 0; bound != NULL && i < bound->len; i++)
    {
      g_autofree char *text = ph_peer_to_string (g_ptr_array_index (bound, i));
      g_strv_builder_add (out, text);
    }
  return g_strv_builder_end (out);
}

GStrv
ph_server_dup_addresses (PhServer *server)
{
  return addresses_to_strv (server->bound);
}

GStrv
ph_server_dup_transparent_addresses (PhServer *server)
{
  return addresses_to_strv (server->bound_transparent);
}

void
ph_server_set_upstream_notify (PhServer *server, PhUpstreamNotify notify, gpointer user_data)
{
  server->notify = notify;
  server->notify_data = user_data;
  ph_upstream_set_notify (server->upstream, notify, user_data);
}

PhUpstream *
ph_server_get_upstream (PhServer *server)
{
  return server->upstream;
}

void
ph_server_set_route_fallback (PhServer *server, PhRouteFallback fallback)
{
  server->fallback = fallback;
  ph_router_set_fallback (server->router, fallback);
}

PhRouteFallback
ph_server_get_route_fallback (PhServer *server)
{
  return server->fallback;
}

/* At the limit, the upstream connection that a client has kept idle the
 * longest (one bound to it: see ph-proxy-conn.c) is given up for a
 * request that needs one now. */
static gboolean
server_reclaim_idle_upstream (PhServer *server)
{
  PhProxyConn *oldest = NULL;
  gint64 oldest_us = G_MAXINT64;
  GHashTableIter iter;
  gpointer key;

  g_hash_table_iter_init (&iter, server->conns);
  while (g_hash_table_iter_next (&iter, &key, NULL))
    {
      gint64 since = ph_proxy_conn_get_idle_upstream_since (key);
      if (since != 0 && since < oldest_us)
        {
          oldest = key;
          oldest_us = since;
        }
    }
  if (oldest == NULL)
    return FALSE;
  ph_proxy_conn_drop_idle_upstream (oldest);
  return TRUE;
}

static gboolean
server_acquire_tunnel (gpointer owner)
{
  PhServer *server = owner;

  /* Idle connections in the shared pool hold slots too: the oldest goes
   * first, then a connection a client keeps for itself. */
  while (server->tunnels + ph_upstream_get_n_idle (server->upstream) >= server->max_tunnels
         && ph_upstream_drop_oldest_idle (server->upstream))
    ;
  if (server->tunnels >= server->max_tunnels && !server_reclaim_idle_upstream (server))
    return FALSE;
  if (server->tunnels >= server->max_tunnels)
    return FALSE;
  server->tunnels++;
  return TRUE;
}

static void
server_release_tunnel (gpointer owner)
{
  PhServer *server = owner;

  g_return_if_fail (server->tunnels > 0);
  server->tunnels--;
}

static void
server_account (gpointer owner, guint64 up, guint64 down)
{
  PhServer *server = owner;

  server->total_requests++;
  server->bytes_up += up;
  server->bytes_down += down;
}

static gboolean
server_is_draining (gpointer owner)
{
  return ph_server_is_draining (owner);
}

static const PhProxyConnOwner server_conn_owner = {
  .acquire_tunnel = server_acquire_tunnel,
  .release_tunnel = server_release_tunnel,
  .account = server_account,
  .is_draining = server_is_draining,
  .closed = server_connection_closed,
};

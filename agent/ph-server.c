/* ph-server.c: listeners, admission (allow-list, tunnel limit), the
 * timeout sweep, reload and drain. */
#define G_LOG_DOMAIN "pinhole-server"

#include "ph-server.h"
#include "ph-error.h"
#include "ph-http.h"
#include "ph-proxy-conn.h"
#include "ph-stream.h"

#include <errno.h>
#include <glib/gi18n.h>
#include <string.h>

#define SWEEP_INTERVAL_MS 250

struct _PhServer
{
  PhConfig *config;
  PhUpstream *upstream;
  GSocketService *service;
  GHashTable *conns; /* set of PhProxyConn*, owning a ref */
  GSource *sweep;
  gboolean draining;
  PhServerStats stats;
  GPtrArray *bound; /* of GSocketAddress, what the service listens on */
  PhUpstreamNotify notify;
  gpointer notify_data;
};

static gboolean
on_incoming (GSocketService *service, GSocketConnection *connection, GObject *source, gpointer data)
{
  PhServer *server = data;
  g_autoptr (GSocketAddress) remote = g_socket_connection_get_remote_address (connection, NULL);
  PhProxyConn *conn;

  if (server->draining)
    return TRUE;
  if (G_IS_INET_SOCKET_ADDRESS (remote)
      && !ph_config_allows_client (
          server->config, g_inet_socket_address_get_address (G_INET_SOCKET_ADDRESS (remote))))
    {
      g_autoptr (GString) resp = ph_http_build_error (
          403, "forbidden", "this client's network is not in [listener] allow=");
      g_autofree char *ip = g_inet_address_to_string (
          g_inet_socket_address_get_address (G_INET_SOCKET_ADDRESS (remote)));
      g_socket_send (g_socket_connection_get_socket (connection), resp->str, resp->len, NULL, NULL);
      g_message ("refused client %s: not in [listener] allow=", ip);
      return TRUE;
    }
  conn = ph_proxy_conn_new (server, connection);
  g_hash_table_add (server->conns, conn);
  ph_proxy_conn_start (conn);
  return TRUE;
}

void
ph_server_connection_closed (PhServer *server, PhProxyConn *conn)
{
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
  return G_SOURCE_CONTINUE;
}

static GSocketService *
bind_listeners (PhConfig *config, GPtrArray *bound, GError **error)
{
  g_autoptr (GSocketService) service = g_socket_service_new ();

  for (guint i = 0; i < config->listen->len; i++)
    {
      GInetSocketAddress *want = g_ptr_array_index (config->listen, i);
      GSocketFamily family = g_socket_address_get_family (G_SOCKET_ADDRESS (want));
      g_autoptr (GSocket) sock = NULL;
      g_autoptr (GSocketAddress) got = NULL;
      g_autoptr (GError) local = NULL;
      g_autofree char *text = g_socket_connectable_to_string (G_SOCKET_CONNECTABLE (want));

      sock = g_socket_new (family, G_SOCKET_TYPE_STREAM, G_SOCKET_PROTOCOL_TCP, &local);
      if (sock != NULL && family == G_SOCKET_FAMILY_IPV6)
        ph_socket_set_v6only (sock);
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
          if (family == G_SOCKET_FAMILY_IPV6 && config->listen->len > 1
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
          return NULL;
        }
      if (!g_socket_listener_add_socket (G_SOCKET_LISTENER (service), sock, NULL, error))
        return NULL;
      got = g_socket_get_local_address (sock, NULL);
      g_ptr_array_add (bound, g_steal_pointer (&got));
    }
  if (bound->len == 0)
    {
      g_set_error_literal (error, PH_ERROR, PH_ERROR_FAILED, _ ("no listener could be bound"));
      return NULL;
    }
  return g_steal_pointer (&service);
}

/* Stops listening; the ports are free again when this returns. */
static void
service_close (GSocketService *service)
{
  g_socket_service_stop (service);
  g_socket_listener_close (G_SOCKET_LISTENER (service));
}

static void
server_drop_service (PhServer *server)
{
  if (server->service == NULL)
    return;
  service_close (server->service);
  g_signal_handlers_disconnect_by_data (server->service, server);
  g_clear_object (&server->service);
}

/* Takes @service and logs the addresses in @bound, which it frees. */
static void
server_take_service (PhServer *server, GSocketService *service, GPtrArray *bound)
{
  server_drop_service (server);
  server->service = service;
  g_signal_connect (service, "incoming", G_CALLBACK (on_incoming), server);
  g_socket_service_start (service);
  for (guint i = 0; i < bound->len; i++)
    {
      g_autofree char *text
          = g_socket_connectable_to_string (G_SOCKET_CONNECTABLE (g_ptr_array_index (bound, i)));
      g_message ("listening on %s", text);
    }
  g_clear_pointer (&server->bound, g_ptr_array_unref);
  server->bound = bound;
}

PhServer *
ph_server_new (PhConfig *config, GError **error)
{
  PhServer *server;
  g_autoptr (GPtrArray) bound = g_ptr_array_new_with_free_func (g_object_unref);
  g_autoptr (GSocketService) service = bind_listeners (config, bound, error);
  g_autoptr (PhUpstream) upstream = NULL;

  if (service == NULL)
    return NULL;
  upstream = ph_upstream_new (config, error);
  if (upstream == NULL)
    return NULL;
  server = g_new0 (PhServer, 1);
  server->config = ph_config_ref (config);
  server->upstream = g_steal_pointer (&upstream);
  server->conns = g_hash_table_new_full (g_direct_hash, g_direct_equal,
                                         (GDestroyNotify) ph_proxy_conn_unref, NULL);
  server_take_service (server, g_steal_pointer (&service), g_steal_pointer (&bound));
  server->sweep = g_timeout_source_new (SWEEP_INTERVAL_MS);
  g_source_set_callback (server->sweep, sweep_cb, server, NULL);
  g_source_attach (server->sweep, NULL);
  ph_log_set_level (config->log_level);
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
  server_drop_service (server);
  ph_upstream_set_notify (server->upstream, NULL, NULL);
  ph_upstream_shutdown (server->upstream);
  ph_upstream_unref (server->upstream);
  ph_config_unref (server->config);
  g_hash_table_unref (server->conns);
  g_clear_pointer (&server->bound, g_ptr_array_unref);
  g_free (server);
}

gboolean
ph_server_reload (PhServer *server, PhConfig *config, GError **error)
{
  if (!ph_config_same_listeners (server->config, config))
    {
      g_autoptr (GPtrArray) bound = g_ptr_array_new_with_free_func (g_object_unref);
      GSocketService *service;

      /* Let go of the old ports first: the new list may reuse one. */
      service_close (server->service);
      service = bind_listeners (config, bound, error);
      if (service == NULL)
        {
          g_autoptr (GPtrArray) old = g_ptr_array_new_with_free_func (g_object_unref);
          g_autoptr (GError) again = NULL;
          GSocketService *back = bind_listeners (server->config, old, &again);
          if (back != NULL)
            server_take_service (server, back, g_steal_pointer (&old));
          else
            g_warning ("could not listen again on the old addresses: %s", again->message);
          return FALSE;
        }
      server_take_service (server, service, g_steal_pointer (&bound));
    }
  if (!ph_config_same_upstream (server->config, config)
      || !ph_config_same_credentials (server->config, config)
      || server->config->warm != config->warm
      || server->config->connect_timeout_ms != config->connect_timeout_ms
      || server->config->handshake_timeout_ms != config->handshake_timeout_ms)
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
       * account on the proxy's side. */
      ph_upstream_clear_auth_rejected (server->upstream);
    }
  ph_config_unref (server->config);
  server->config = ph_config_ref (config);
  ph_log_set_level (config->log_level);
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
  service_close (server->service);
  g_ptr_array_set_size (server->bound, 0);
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

void
ph_server_get_stats (PhServer *server, PhServerStats *stats)
{
  GHashTableIter iter;
  gpointer key;

  *stats = server->stats;
  stats->connections = g_hash_table_size (server->conns);
  /* Long tunnels count as they go, not only when they end. */
  g_hash_table_iter_init (&iter, server->conns);
  while (g_hash_table_iter_next (&iter, &key, NULL))
    {
      guint64 up = 0, down = 0;
      ph_proxy_conn_get_live_bytes (key, &up, &down);
      stats->bytes_up += up;
      stats->bytes_down += down;
    }
}

PhConfig *
ph_server_get_config (PhServer *server)
{
  return server->config;
}

GStrv
ph_server_dup_addresses (PhServer *server)
{
  g_autoptr (GStrvBuilder) out = g_strv_builder_new ();

  for (guint i = 0; server->bound != NULL && i < server->bound->len; i++)
    {
      GInetSocketAddress *sa = g_ptr_array_index (server->bound, i);
      g_autofree char *ip = g_inet_address_to_string (g_inet_socket_address_get_address (sa));
      g_autofree char *text = g_strdup_printf (strchr (ip, ':') ? "[%s]:%u" : "%s:%u", ip,
                                               g_inet_socket_address_get_port (sa));
      g_strv_builder_add (out, text);
    }
  return g_strv_builder_end (out);
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

gboolean
ph_server_acquire_tunnel (PhServer *server)
{
  if (server->stats.tunnels >= server->config->max_tunnels)
    return FALSE;
  server->stats.tunnels++;
  return TRUE;
}

void
ph_server_release_tunnel (PhServer *server)
{
  g_return_if_fail (server->stats.tunnels > 0);
  server->stats.tunnels--;
}

void
ph_server_account (PhServer *server, guint64 up, guint64 down)
{
  server->stats.total_requests++;
  server->stats.bytes_up += up;
  server->stats.bytes_down += down;
}

/* SPDX-License-Identifier: GPL-2.0-or-later */
/* ph-server.h: the listening side of the agent: listeners, the client
 * allow-list, the tunnel limit, timeouts, reload and drain. It knows nothing
 * of D-Bus, signals or services: adapters drive it. */
#pragma once

#include <gio/gio.h>

#include "ph-config.h"
#include "ph-route.h"
#include "ph-upstream.h"

G_BEGIN_DECLS

/* One owner (the daemon, a test): new and free. */
typedef struct _PhServer PhServer;

/* The process's descriptor limit, which bounds the client connections
 * served at once (each may hold two); call before ph_server_new(). */
void ph_server_set_fd_limit (guint limit);
/* Binds every listener of @config; fails if any cannot be bound. */
PhServer *ph_server_new (PhConfig *config, GError **error);
void ph_server_free (PhServer *server);
/* Applies @config to new connections; on error nothing changes. */
gboolean ph_server_reload (PhServer *server, PhConfig *config, GError **error);
/* Stops accepting and closes idle client connections; busy ones finish. */
void ph_server_drain (PhServer *server);
/* The counters: client connections and tunnels open now, requests
 * finished, and payload bytes, those of tunnels still open included. */
guint ph_server_get_n_connections (PhServer *server);
guint ph_server_get_n_tunnels (PhServer *server);
/* The limits in force: from the descriptor limit, and max-tunnels (or, when
 * it is auto, the connection limit). */
guint ph_server_get_max_connections (PhServer *server);
guint ph_server_get_max_tunnels (PhServer *server);
guint64 ph_server_get_total_requests (PhServer *server);
guint64 ph_server_get_bytes_up (PhServer *server);
guint64 ph_server_get_bytes_down (PhServer *server);
/* Adds each open client connection to @builder (of aa{sv}), as ph_proxy_conn_describe gives it. */
void ph_server_add_connections (PhServer *server, GVariantBuilder *builder);
PhConfig *ph_server_get_config (PhServer *server);
/* The rules new connections are routed by (replaced on every reload). */
PhRouter *ph_server_get_router (PhServer *server);
/* The addresses listened on now, as "127.0.0.1:3128" / "[::1]:3128". */
GStrv ph_server_dup_addresses (PhServer *server);
/* The transparent listeners' addresses, the same way. */
GStrv ph_server_dup_transparent_addresses (PhServer *server);
/* Set on the current upstream and every one a reload makes. */
void ph_server_set_upstream_notify (PhServer *server, PhUpstreamNotify notify, gpointer user_data);

/* The network's state for routing (ph_router_set_fallback): set on the current router and on
 * every one a reload makes. */
void ph_server_set_route_fallback (PhServer *server, PhRouteFallback fallback);
PhRouteFallback ph_server_get_route_fallback (PhServer *server);

/* The cloud proxy that new connections use (the control adapter watches it). */
PhUpstream *ph_server_get_upstream (PhServer *server);
gboolean ph_server_is_draining (PhServer *server);

G_END_DECLS

/* SPDX-License-Identifier: GPL-2.0-or-later */
/* ph-proxy-conn.h: one client connection: its request heads, the route
 * and the upstream exchange for each (ph-route, ph-upstream), and the
 * tunnel or forwarded messages. */
#pragma once

#include <gio/gio.h>

#include "ph-config.h"
#include "ph-route.h"
#include "ph-upstream.h"

G_BEGIN_DECLS

/* Reference-counted: the owner (the listener) holds one while it is open. */
typedef struct _PhProxyConn PhProxyConn;

/* What a connection asks of the listener that accepted it and owns it.
 * The listener hands these over at creation, so the connection never sees
 * the listener's type: the listener uses the connection, not the reverse. */
typedef struct
{
  /* A slot for one upstream connection (max-tunnels), taken from an idle
   * kept-alive connection of another client if need be. */
  gboolean (*acquire_tunnel) (gpointer owner);
  void (*release_tunnel) (gpointer owner);
  /* One exchange's or tunnel's bytes, once, as its access line is written. */
  void (*account) (gpointer owner, guint64 up, guint64 down);
  /* Whether to close after this exchange rather than wait for another. */
  gboolean (*is_draining) (gpointer owner);
  /* The connection has closed: the owner drops its reference. */
  void (*closed) (gpointer owner, PhProxyConn *conn);
} PhProxyConnOwner;

/* "ip:port" or "[ip6]:port" of a client, as access lines name it. */
char *ph_peer_to_string (GSocketAddress *address);
/* Whether a client at @address is on this machine: 127.0.0.0/8, ::1, ::ffff:127.0.0.0/104. */
gboolean ph_peer_is_loopback (GSocketAddress *address);
/* A connection served under @config, routed by @router; @upstream carries
 * its PROXY routes. @owner (static) and @owner_data outlive it. */
PhProxyConn *ph_proxy_conn_new (GSocketConnection *connection, PhConfig *config, PhRouter *router,
                                PhUpstream *upstream, const PhProxyConnOwner *owner,
                                gpointer owner_data);
/* Starts reading; the owner must hold the connection before. */
/* Makes @conn a transparent listener's: @original is where the client was going (ph-netfilter.h);
 * its name is learned from its first bytes (ph-sniff.h), and it is carried like a CONNECT to
 * name:port, its bytes untouched. Before ph_proxy_conn_start. */
void ph_proxy_conn_set_transparent (PhProxyConn *conn, GInetSocketAddress *original);
void ph_proxy_conn_start (PhProxyConn *conn);
PhProxyConn *ph_proxy_conn_ref (PhProxyConn *conn);
void ph_proxy_conn_unref (PhProxyConn *conn);
/* Called about once a second: head, response and idle timeouts. */
void ph_proxy_conn_check_timeouts (PhProxyConn *conn, gint64 now_us);
/* Closes the connection now if it waits for a request; TRUE if it did. */
gboolean ph_proxy_conn_close_if_idle (PhProxyConn *conn);
void ph_proxy_conn_close (PhProxyConn *conn);
/* When the upstream connection this client keeps between requests became
 * idle, or 0 when it keeps none; dropping it gives its tunnel slot back. */
gint64 ph_proxy_conn_get_idle_upstream_since (PhProxyConn *conn);
void ph_proxy_conn_drop_idle_upstream (PhProxyConn *conn);
/* Bytes of the exchange or tunnel under way, not yet in the owner's totals. */
void ph_proxy_conn_get_live_bytes (PhProxyConn *conn, guint64 *up, guint64 *down);

G_DEFINE_AUTOPTR_CLEANUP_FUNC (PhProxyConn, ph_proxy_conn_unref)

G_END_DECLS

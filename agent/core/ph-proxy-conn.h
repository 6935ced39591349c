/* ph-proxy-conn.h: one client connection: its request heads, the
 * upstream exchange for each, and the tunnel or forwarded messages. */
#pragma once

#include <gio/gio.h>

#include "ph-server.h"

G_BEGIN_DECLS

/* "ip:port" or "[ip6]:port" of a client, as access lines name it. */
char *ph_peer_to_string (GSocketAddress *address);
PhProxyConn *ph_proxy_conn_new (PhServer *server, GSocketConnection *connection);
/* Starts reading; the server must hold the connection before. */
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
/* Bytes of the exchange or tunnel under way, not yet in the server's totals. */
void ph_proxy_conn_get_live_bytes (PhProxyConn *conn, guint64 *up, guint64 *down);

G_DEFINE_AUTOPTR_CLEANUP_FUNC (PhProxyConn, ph_proxy_conn_unref)

G_END_DECLS

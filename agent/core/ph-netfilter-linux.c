/* SPDX-License-Identifier: GPL-2.0-or-later */
/* ph-netfilter-linux.c: original destinations, transparent listeners and socket marks with
 * Linux's netfilter (nftables' redirect keeps the original destination in conntrack, which
 * SO_ORIGINAL_DST reads back; TPROXY leaves it as the socket's local address). */
#define G_LOG_DOMAIN "pinhole-server"

#include "ph-netfilter.h"
#include "ph-error.h"

#include <errno.h>
#include <netinet/in.h>
#include <string.h>
#include <sys/socket.h>

/* From <linux/netfilter_ipv4.h> and <linux/netfilter_ipv6/ip6_tables.h>, which clash with
 * glibc's <netinet/in.h>. */
#ifndef SO_ORIGINAL_DST
#define SO_ORIGINAL_DST 80
#endif
#ifndef IP6T_SO_ORIGINAL_DST
#define IP6T_SO_ORIGINAL_DST 80
#endif
#ifndef IP_TRANSPARENT
#define IP_TRANSPARENT 19
#endif
#ifndef IPV6_TRANSPARENT
#define IPV6_TRANSPARENT 75
#endif

static gboolean
same_address (GSocketAddress *a, GSocketAddress *b)
{
  GInetSocketAddress *x, *y;

  if (!G_IS_INET_SOCKET_ADDRESS (a) || !G_IS_INET_SOCKET_ADDRESS (b))
    return FALSE;
  x = G_INET_SOCKET_ADDRESS (a);
  y = G_INET_SOCKET_ADDRESS (b);
  return g_inet_socket_address_get_port (x) == g_inet_socket_address_get_port (y)
         && (g_inet_address_equal (g_inet_socket_address_get_address (x),
                                   g_inet_socket_address_get_address (y))
             || g_inet_address_get_is_any (g_inet_socket_address_get_address (y)));
}

GInetSocketAddress *
ph_netfilter_original_destination (GSocket *socket, GSocketAddress *listener, GError **error)
{
  struct sockaddr_storage ss;
  socklen_t len = sizeof ss;
  int fd = g_socket_get_fd (socket);
  gboolean v6 = g_socket_get_family (socket) == G_SOCKET_FAMILY_IPV6;
  g_autoptr (GSocketAddress) local = NULL;
  g_autoptr (GSocketAddress) orig = NULL;

  memset (&ss, 0, sizeof ss);
  if (getsockopt (fd, v6 ? SOL_IPV6 : SOL_IP, v6 ? IP6T_SO_ORIGINAL_DST : SO_ORIGINAL_DST, &ss,
                  &len)
      == 0)
    orig = g_socket_address_new_from_native (&ss, len);
  local = g_socket_get_local_address (socket, NULL);
  /* Redirected: conntrack's original destination differs from where the socket is. Not
   * redirected (TPROXY, or no rule): the local address is the destination, unless it is the
   * listener's own, which is a client that connected to the listener on purpose. */
  if (orig != NULL && G_IS_INET_SOCKET_ADDRESS (orig) && !same_address (orig, listener))
    return G_INET_SOCKET_ADDRESS (g_steal_pointer (&orig));
  if (local != NULL && G_IS_INET_SOCKET_ADDRESS (local) && !same_address (local, listener))
    return G_INET_SOCKET_ADDRESS (g_steal_pointer (&local));
  g_set_error_literal (error, PH_ERROR, PH_ERROR_FAILED,
                       "no original destination: the client connected to the transparent "
                       "listener itself, not through a capture rule");
  return NULL;
}

gboolean
ph_netfilter_set_transparent (GSocket *listener)
{
  int one = 1;
  gboolean v6 = g_socket_get_family (listener) == G_SOCKET_FAMILY_IPV6;

  if (setsockopt (g_socket_get_fd (listener), v6 ? SOL_IPV6 : SOL_IP,
                  v6 ? IPV6_TRANSPARENT : IP_TRANSPARENT, &one, sizeof one)
      != 0)
    {
      g_debug ("transparent listener: IP_TRANSPARENT: %s (TPROXY rules cannot reach it; "
               "redirect rules can)",
               g_strerror (errno));
      return FALSE;
    }
  return TRUE;
}

static void
client_event_cb (GSocketClient *client, GSocketClientEvent event, GSocketConnectable *connectable,
                 GIOStream *connection, gpointer data)
{
  static gboolean said;
  guint32 mark = GPOINTER_TO_UINT (data);
  int value = (int) mark;
  GSocket *socket;

  if (event != G_SOCKET_CLIENT_CONNECTING || !G_IS_SOCKET_CONNECTION (connection))
    return;
  socket = g_socket_connection_get_socket (G_SOCKET_CONNECTION (connection));
  if (setsockopt (g_socket_get_fd (socket), SOL_SOCKET, SO_MARK, &value, sizeof value) != 0
      && !g_atomic_int_exchange (&said, TRUE))
    g_message ("cannot mark outgoing connections with %u: %s (the capture rules still leave "
               "out the agent's own user)",
               mark, g_strerror (errno));
}

void
ph_netfilter_mark_client (GSocketClient *client, guint32 mark)
{
  if (mark == 0)
    return;
  g_signal_connect (client, "event", G_CALLBACK (client_event_cb), GUINT_TO_POINTER (mark));
}

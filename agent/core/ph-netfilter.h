/* SPDX-License-Identifier: GPL-2.0-or-later */
/* ph-netfilter.h: what the transparent listener needs from the kernel's packet filter: the
 * destination a redirected connection was going to, a listener that may take connections for
 * addresses not its own (TPROXY), and the mark on the agent's own outgoing sockets that keeps
 * the capture rules from taking them back. One file per platform: ph-netfilter-linux.c,
 * ph-netfilter-none.c (elsewhere: there is no transparent capture). */
#pragma once

#include <gio/gio.h>

G_BEGIN_DECLS

/* The address a client of a transparent listener was connecting to: nftables' redirect
 * (SO_ORIGINAL_DST, IP6T_SO_ORIGINAL_DST), else TPROXY's (the socket's own local address, when
 * it is not @listener's, i.e. the connection was not made to the listener itself). NULL with
 * an error when neither says: a client that reached the listener directly. */
GInetSocketAddress *ph_netfilter_original_destination (GSocket *socket, GSocketAddress *listener,
                                                       GError **error);

/* Lets @listener accept connections addressed elsewhere (IP_TRANSPARENT, IPV6_TRANSPARENT), for
 * TPROXY rules. Needs CAP_NET_ADMIN; FALSE (and a debug line) when it cannot. */
gboolean ph_netfilter_set_transparent (GSocket *listener);

/* Every socket @client makes from now on carries @mark (SO_MARK; 0: none). Needs CAP_NET_ADMIN:
 * without it the socket goes unmarked, once said, and the rules' exclusion of the agent's user
 * is what keeps it out of the capture. */
void ph_netfilter_mark_client (GSocketClient *client, guint32 mark);

G_END_DECLS

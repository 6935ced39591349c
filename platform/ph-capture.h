/* SPDX-License-Identifier: GPL-2.0-or-later */
/* ph-capture.h: the nftables rules that send connections to the transparent listener
 * ([transparent] capture=), all in one table of Pinhole's own, "inet pinhole", put in and taken
 * out through nft and nothing else of nftables touched. One file per platform: nft on Linux
 * (ph-capture-nft.c); elsewhere every call fails with G_IO_ERROR_NOT_SUPPORTED
 * (ph-capture-none.c). The platform sits below the engine, so the mode comes as plain
 * arguments: a gateway's interface, or NULL for this machine's own connections. */
#pragma once

#include <gio/gio.h>

G_BEGIN_DECLS

/* Which address families the rules capture: those a transparent listener takes. Connections of
 * another family are left alone rather than sent to a port where nothing listens. */
typedef enum
{
  PH_CAPTURE_IPV4 = 1 << 0,
  PH_CAPTURE_IPV6 = 1 << 1,
} PhCaptureFamilies;

/* The one table, as nft names it. */
#define PH_CAPTURE_TABLE "inet pinhole"

/* The whole nft -f input that replaces the table in one transaction: with @gateway_iface, the
 * connections forwarded from that interface to one of @ports (prerouting); with NULL, this
 * machine's own connections to one of @ports (output), except those of @agent_uid, those
 * marked @mark (0: no mark is excluded) and those to the machine itself; both redirected to
 * @listener_port, and only those of @families (both: no family match in the rule). @gateway_iface
 * is an interface name ph_capture_interface_valid() accepted. NULL where there is no nft. */
char *ph_capture_ruleset (const char *gateway_iface, const guint16 *ports, guint n_ports,
                          guint16 listener_port, PhCaptureFamilies families, guint32 agent_uid,
                          guint32 mark);

/* Puts the rules in (ph_capture_ruleset with this process's user id), replacing the table
 * atomically if it is there. A failure carries nft's own message. */
gboolean ph_capture_apply (const char *gateway_iface, const guint16 *ports, guint n_ports,
                           guint16 listener_port, PhCaptureFamilies families, guint32 mark,
                           GError **error);
/* Removes the table; one that is not there is no error. */
gboolean ph_capture_remove (GError **error);
/* Whether the table is there now. */
gboolean ph_capture_exists (gboolean *exists, GError **error);

G_END_DECLS

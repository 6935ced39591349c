/* SPDX-License-Identifier: GPL-2.0-or-later */
/* ph-netfilter-none.c: where there is no netfilter (Windows), there is no transparent capture:
 * a transparent listener learns no destination and refuses its clients. */
#define G_LOG_DOMAIN "pinhole-server"

#include "ph-netfilter.h"

GInetSocketAddress *
ph_netfilter_original_destination (GSocket *socket, GSocketAddress *listener, GError **error)
{
  g_set_error_literal (error, G_IO_ERROR, G_IO_ERROR_NOT_SUPPORTED,
                       "transparent capture needs Linux netfilter");
  return NULL;
}

gboolean
ph_netfilter_set_transparent (GSocket *listener)
{
  return FALSE;
}

void
ph_netfilter_mark_client (GSocketClient *client, guint32 mark)
{
}

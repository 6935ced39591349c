/* SPDX-License-Identifier: GPL-2.0-or-later */
/* ph-capture-none.c: transparent capture where there is no nftables (Windows): every call says
 * so. */
#define G_LOG_DOMAIN "pinhole-capture"

#include "ph-capture.h"

#include <glib/gi18n.h>

static gboolean
not_supported (GError **error)
{
  g_set_error_literal (error, G_IO_ERROR, G_IO_ERROR_NOT_SUPPORTED,
                       /* TRANSLATORS: nftables is the name of Linux's packet filter */
                       _ ("transparent capture needs Linux nftables"));
  return FALSE;
}

char *
ph_capture_ruleset (const char *gateway_iface, const guint16 *ports, guint n_ports,
                    guint16 listener_port, PhCaptureFamilies families, guint32 agent_uid,
                    guint32 mark)
{
  return NULL;
}

gboolean
ph_capture_apply (const char *gateway_iface, const guint16 *ports, guint n_ports,
                  guint16 listener_port, PhCaptureFamilies families, guint32 mark, GError **error)
{
  return not_supported (error);
}

gboolean
ph_capture_remove (GError **error)
{
  return not_supported (error);
}

gboolean
ph_capture_exists (gboolean *exists, GError **error)
{
  *exists = FALSE;
  return not_supported (error);
}

/* SPDX-License-Identifier: GPL-2.0-or-later */
/* ph-ktls-win32.c: kernel TLS on Windows: none. GnuTLS's kTLS is Linux's
 * "tls" TCP upper layer; Windows has no such thing for GnuTLS to use. */
#define G_LOG_DOMAIN "pinhole-tls"

#include "ph-ktls.h"

#include <glib/gi18n.h>

const char *
ph_ktls_get_unavailable_reason (void)
{
  static gsize once;
  static char *reason;

  if (g_once_init_enter (&once))
    {
      reason = g_strdup (_ ("this system's kernel has no TLS layer"));
      g_once_init_leave (&once, 1);
    }
  return reason;
}

PhKtlsDirections
ph_ktls_get_directions (gnutls_session_t session)
{
  return PH_KTLS_NONE;
}

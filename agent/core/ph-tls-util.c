/* SPDX-License-Identifier: GPL-2.0-or-later */
/* ph-tls-util.c: the one place GnuTLS codes become GErrors, for every
 * part of the core that calls GnuTLS (handshakes, pins, streams). */
#define G_LOG_DOMAIN "pinhole-tls"

#include "ph-tls-util.h"

#include <glib/gi18n.h>

gboolean
ph_tls_set_error (GError **error, int ret, PhError code, const char *what)
{
  const char *detail = gnutls_strerror (ret);

  switch (ret)
    {
      case GNUTLS_E_PREMATURE_TERMINATION:
      case GNUTLS_E_PULL_ERROR:
      case GNUTLS_E_PUSH_ERROR:
        detail = _ ("the connection was closed or reset");
        break;
      case GNUTLS_E_UNSUPPORTED_VERSION_PACKET:
      case GNUTLS_E_NO_PRIORITIES_WERE_SET:
      case GNUTLS_E_INSUFFICIENT_CREDENTIALS:
        detail = _ ("no common TLS version or cipher (TLS 1.2 or newer is required)");
        break;
      case GNUTLS_E_UNEXPECTED_PACKET_LENGTH:
      case GNUTLS_E_UNEXPECTED_PACKET:
        detail = _ ("the server does not speak TLS on this port");
        break;
      default:
        break;
    }
  /* TRANSLATORS: what failed, e.g. "TLS handshake with the cloud proxy", then why, e.g. "the
   * server does not speak TLS on this port" */
  g_set_error (error, PH_ERROR, code, _ ("%s: %s"), what, detail);
  return FALSE;
}

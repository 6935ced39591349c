/* SPDX-License-Identifier: GPL-2.0-or-later */
/* ph-tls-util.h: GnuTLS glue shared by the core: cleanup functions for
 * GnuTLS handle types and the one place GnuTLS codes become GErrors. */
#pragma once

#include <glib.h>
#include <gnutls/gnutls.h>
#include <gnutls/abstract.h>
#include <gnutls/x509.h>

#include "ph-error.h"

G_BEGIN_DECLS

G_DEFINE_AUTO_CLEANUP_FREE_FUNC (gnutls_x509_crt_t, gnutls_x509_crt_deinit, NULL)
G_DEFINE_AUTO_CLEANUP_FREE_FUNC (gnutls_pubkey_t, gnutls_pubkey_deinit, NULL)
G_DEFINE_AUTO_CLEANUP_FREE_FUNC (gnutls_session_t, gnutls_deinit, NULL)
G_DEFINE_AUTO_CLEANUP_FREE_FUNC (gnutls_certificate_credentials_t,
                                 gnutls_certificate_free_credentials, NULL)

/* Sets @error from the GnuTLS code @ret with @what as context and returns
 * FALSE, so callers can `return ph_tls_set_error (...)`. */
gboolean ph_tls_set_error (GError **error, int ret, PhError code, const char *what);

G_END_DECLS

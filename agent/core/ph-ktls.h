/* SPDX-License-Identifier: GPL-2.0-or-later */
/* ph-ktls.h: whether kernel TLS can carry the connection to the cloud
 * proxy ([upstream] ktls): GnuTLS's build and configuration, the kernel.
 * One file per platform: ph-ktls-unix.c (Linux), ph-ktls-win32.c. */
#pragma once

#include <glib.h>
#include <gnutls/gnutls.h>

G_BEGIN_DECLS

/* NULL when GnuTLS will hand a connection's keys to the kernel (for the
 * ciphers the kernel has); otherwise every reason it will not, joined by
 * "; ". Looked up once per process. */
const char *ph_ktls_get_unavailable_reason (void);

/* Which directions of @session's records the kernel encrypts or decrypts,
 * after its handshake. */
typedef enum
{
  PH_KTLS_NONE = 0,
  PH_KTLS_RX = 1 << 0,
  PH_KTLS_TX = 1 << 1,
} PhKtlsDirections;

PhKtlsDirections ph_ktls_get_directions (gnutls_session_t session);

G_END_DECLS

/* SPDX-License-Identifier: GPL-2.0-or-later */
/* ph-error.h: Pinhole's error domain, shared by the core, the control
 * interface and its clients so that failures keep their kind on the wire. */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

#define PH_ERROR (ph_error_quark ())

typedef enum
{
  PH_ERROR_FAILED,
  PH_ERROR_INVALID_CONFIG,
  PH_ERROR_BAD_REQUEST,
  PH_ERROR_UPSTREAM_UNREACHABLE,
  PH_ERROR_UPSTREAM_TLS,
  PH_ERROR_PIN_MISMATCH,
  PH_ERROR_AUTH_REJECTED,
  PH_ERROR_UPSTREAM_PROTOCOL,
  PH_ERROR_TIMEOUT,
  PH_ERROR_LOCKED,
  PH_ERROR_NO_CREDENTIALS,
  PH_ERROR_INVALID_SETTING,
  PH_ERROR_PERMISSION_DENIED,
  PH_ERROR_NOT_CONFIGURED,
  PH_ERROR_BLOCKED,            /* refused by policy: a captive portal under [route] portal=block */
  PH_ERROR_UNREACHABLE_DIRECT, /* the cloud proxy cannot be reached; requests go directly */
  PH_ERROR_CERT_UNTRUSTED,     /* verify=ca: no trusted CA vouches for the certificate */
  PH_ERROR_LAST                /*< skip >*/
} PhError;

GQuark ph_error_quark (void);
const char *ph_error_to_string (PhError code);

G_END_DECLS

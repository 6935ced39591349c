/* SPDX-License-Identifier: GPL-2.0-or-later */
/* ph-error.c: the PH_ERROR domain and its D-Bus error names. */
#define G_LOG_DOMAIN "pinhole-error"

#include "ph-error.h"

#include <gio/gio.h>

/* Order follows PhError. The names are the machine-readable kinds used in
 * X-Pinhole-Error, logs and (with a prefix) D-Bus error names. */
static const char *const error_names[] = {
  "failed",
  "invalid-config",
  "bad-request",
  "upstream-tcp",
  "upstream-tls",
  "pin-mismatch",
  "auth-rejected",
  "upstream-protocol",
  "upstream-timeout",
  "locked",
  "no-credentials",
  "invalid-setting",
  "permission-denied",
  "not-configured",
  "blocked",
  "unreachable-direct",
  "cert-untrusted",
};
G_STATIC_ASSERT (G_N_ELEMENTS (error_names) == PH_ERROR_LAST);

static const GDBusErrorEntry dbus_entries[] = {
  { PH_ERROR_FAILED, "org.pinhole.Error.Failed" },
  { PH_ERROR_INVALID_CONFIG, "org.pinhole.Error.InvalidConfig" },
  { PH_ERROR_BAD_REQUEST, "org.pinhole.Error.BadRequest" },
  { PH_ERROR_UPSTREAM_UNREACHABLE, "org.pinhole.Error.UpstreamUnreachable" },
  { PH_ERROR_UPSTREAM_TLS, "org.pinhole.Error.UpstreamTls" },
  { PH_ERROR_PIN_MISMATCH, "org.pinhole.Error.PinMismatch" },
  { PH_ERROR_AUTH_REJECTED, "org.pinhole.Error.AuthRejected" },
  { PH_ERROR_UPSTREAM_PROTOCOL, "org.pinhole.Error.UpstreamProtocol" },
  { PH_ERROR_TIMEOUT, "org.pinhole.Error.Timeout" },
  { PH_ERROR_LOCKED, "org.pinhole.Error.Locked" },
  { PH_ERROR_NO_CREDENTIALS, "org.pinhole.Error.NoCredentials" },
  { PH_ERROR_INVALID_SETTING, "org.pinhole.Error.InvalidSetting" },
  { PH_ERROR_PERMISSION_DENIED, "org.pinhole.Error.PermissionDenied" },
  { PH_ERROR_NOT_CONFIGURED, "org.pinhole.Error.NotConfigured" },
  { PH_ERROR_CERT_UNTRUSTED, "org.pinhole.Error.CertUntrusted" },
  { PH_ERROR_BLOCKED, "org.pinhole.Error.Blocked" },
  { PH_ERROR_UNREACHABLE_DIRECT, "org.pinhole.Error.UnreachableDirect" },
};
G_STATIC_ASSERT (G_N_ELEMENTS (dbus_entries) == PH_ERROR_LAST);

GQuark
ph_error_quark (void)
{
  static gsize quark = 0;

  g_dbus_error_register_error_domain ("ph-error-quark", &quark, dbus_entries,
                                      G_N_ELEMENTS (dbus_entries));
  return (GQuark) quark;
}

const char *
ph_error_to_string (PhError code)
{
  if ((guint) code >= PH_ERROR_LAST)
    return "failed";
  return error_names[code];
}

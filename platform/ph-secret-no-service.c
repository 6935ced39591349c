/* SPDX-License-Identifier: GPL-2.0-or-later */
/* ph-secret-no-service.c: the Secret Service's constructors where Pinhole is built without
 * libsecret (Windows, or -Dlibsecret=disabled): they say so. meson picks this file or
 * ph-secret-libsecret.c. */
#define G_LOG_DOMAIN "pinhole-secret"

#include "ph-secret-private.h"
#include "ph-error.h"

#include <glib/gi18n.h>

PhSecretStore *
ph_secret_store_new_service_with_fallback (const char *fallback_path, GError **error)
{
  g_return_val_if_fail (fallback_path != NULL && *fallback_path != '\0', NULL);
  g_return_val_if_fail (error == NULL || *error == NULL, NULL);

  g_set_error_literal (error, PH_ERROR, PH_ERROR_FAILED,
                       /* TRANSLATORS: the Secret Service is the desktop's password store
                        * (GNOME Keyring, KWallet); libsecret is a library's name */
                       _ ("Pinhole was built without Secret Service support (libsecret)"));
  return NULL;
}

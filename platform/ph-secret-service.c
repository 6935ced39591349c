/* SPDX-License-Identifier: GPL-2.0-or-later */
/* ph-secret-service.c: the session agent's Secret Service store with its default fallback file,
 * whichever backend meson picked for ph_secret_store_new_service_with_fallback()
 * (ph-secret-libsecret.c, or ph-secret-no-service.c that says it is not built in). */
#define G_LOG_DOMAIN "pinhole-secret"

#include "ph-secret.h"

PhSecretStore *
ph_secret_store_new_service (GError **error)
{
  /* The session agent's default state directory, where it keeps the same file when there is
   * no Secret Service at all. */
  g_autofree char *path
      = g_build_filename (g_get_user_state_dir (), "pinhole", "credentials", NULL);

  return ph_secret_store_new_service_with_fallback (path, error);
}

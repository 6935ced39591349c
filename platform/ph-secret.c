/* SPDX-License-Identifier: GPL-2.0-or-later */
/* ph-secret.c: the part of the secret store that every backend shares: dispatch, argument
 * checks, and wiping passwords before their memory goes back to the allocator. */
#define G_LOG_DOMAIN "pinhole-secret"

#include "ph-secret-private.h"
#include "ph-error.h"
#include "ph-wipe.h"

#include <string.h>
#include <glib/gi18n.h>

void
ph_secret_wipe (void *buf, gsize len)
{
  if (buf == NULL || len == 0)
    return;
  ph_wipe (buf, len);
}

void
ph_secret_free (char *password)
{
  if (password == NULL)
    return;
  ph_secret_wipe (password, strlen (password));
  g_free (password);
}

void
ph_secret_store_free (PhSecretStore *store)
{
  if (store == NULL)
    return;
  store->vtable->finalize (store);
  g_free (store->description);
  g_free (store);
}

const char *
ph_secret_store_describe (PhSecretStore *store)
{
  g_return_val_if_fail (store != NULL, NULL);
  return store->description;
}

gboolean
ph_secret_store_lookup (PhSecretStore *store, const char *upstream, const char *username,
                        char **password, GError **error)
{
  g_return_val_if_fail (store != NULL, FALSE);
  g_return_val_if_fail (upstream != NULL && *upstream != '\0', FALSE);
  g_return_val_if_fail (username != NULL && *username != '\0', FALSE);
  g_return_val_if_fail (password != NULL, FALSE);
  g_return_val_if_fail (error == NULL || *error == NULL, FALSE);

  *password = NULL;
  return store->vtable->lookup (store, upstream, username, password, error);
}

gboolean
ph_secret_store_save (PhSecretStore *store, const char *upstream, const char *username,
                      const char *password, GError **error)
{
  g_return_val_if_fail (store != NULL, FALSE);
  g_return_val_if_fail (upstream != NULL && *upstream != '\0', FALSE);
  g_return_val_if_fail (username != NULL && *username != '\0', FALSE);
  g_return_val_if_fail (password != NULL, FALSE);
  g_return_val_if_fail (error == NULL || *error == NULL, FALSE);

  return store->vtable->save (store, upstream, username, password, error);
}

gboolean
ph_secret_store_clear (PhSecretStore *store, const char *upstream, GError **error)
{
  g_return_val_if_fail (store != NULL, FALSE);
  g_return_val_if_fail (upstream != NULL && *upstream != '\0', FALSE);
  g_return_val_if_fail (error == NULL || *error == NULL, FALSE);

  return store->vtable->clear (store, upstream, error);
}

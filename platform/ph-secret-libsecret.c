/* ph-secret-libsecret.c: the per-user secret store: the Secret Service (GNOME Keyring, KWallet)
 * over the session bus, through libsecret's synchronous calls. */
#define G_LOG_DOMAIN "pinhole-secret"

#include "ph-secret-private.h"
#include "ph-error.h"

#include <string.h>
#include <glib/gi18n.h>
#include <libsecret/secret.h>

/* The schema name is also stored as the item's "xdg:schema" attribute, so that our items never
 * match another program's that happen to use the same attribute names. */
static const SecretSchema password_schema = {
  "org.pinhole.Agent.Password",
  SECRET_SCHEMA_NONE,
  {
      { "upstream", SECRET_SCHEMA_ATTRIBUTE_STRING },
      { "username", SECRET_SCHEMA_ATTRIBUTE_STRING },
      { NULL, 0 },
  },
};

static gboolean
service_lookup (PhSecretStore *store, const char *upstream, const char *username, char **password,
                GError **error)
{
  g_autoptr (GError) local_error = NULL;
  char *found;

  found = secret_password_lookup_sync (&password_schema, NULL, &local_error, "upstream", upstream,
                                       "username", username, NULL);
  if (local_error != NULL)
    {
      /* libsecret's errors (D-Bus, a locked or missing collection) never carry the secret. */
      g_set_error (error, PH_ERROR, PH_ERROR_FAILED,
                   /* TRANSLATORS: the Secret Service is the desktop's password store (GNOME
                    * Keyring, KWallet); %s says why */
                   _ ("Secret Service: cannot look up the password: %s"), local_error->message);
      return FALSE;
    }
  if (found == NULL)
    return TRUE;
  /* Copied into g_malloc() memory so that one ph_secret_free() fits every store; libsecret's
   * own copy is wiped by secret_password_free(). */
  *password = g_strdup (found);
  secret_password_free (found);
  return TRUE;
}

static gboolean
service_save (PhSecretStore *store, const char *upstream, const char *username,
              const char *password, GError **error)
{
  g_autoptr (GError) local_error = NULL;
  g_autofree char *label
      = g_strdup_printf ("Pinhole proxy password for %s at %s", username, upstream);

  if (!secret_password_store_sync (&password_schema, SECRET_COLLECTION_DEFAULT, label, password,
                                   NULL, &local_error, "upstream", upstream, "username", username,
                                   NULL))
    {
      g_set_error (error, PH_ERROR, PH_ERROR_FAILED,
                   /* TRANSLATORS: %s says why */
                   _ ("Secret Service: cannot store the password: %s"), local_error->message);
      return FALSE;
    }
  return TRUE;
}

static gboolean
service_clear (PhSecretStore *store, const char *upstream, GError **error)
{
  g_autoptr (GError) local_error = NULL;

  /* FALSE without an error only means nothing matched. */
  if (!secret_password_clear_sync (&password_schema, NULL, &local_error, "upstream", upstream, NULL)
      && local_error != NULL)
    {
      g_set_error (error, PH_ERROR, PH_ERROR_FAILED,
                   /* TRANSLATORS: %s says why */
                   _ ("Secret Service: cannot remove the passwords: %s"), local_error->message);
      return FALSE;
    }
  return TRUE;
}

static void
service_finalize (PhSecretStore *store)
{
}

static const PhSecretStoreVTable service_vtable = {
  .lookup = service_lookup,
  .save = service_save,
  .clear = service_clear,
  .finalize = service_finalize,
};

/* Connects lazily: the session bus or the keyring may come up after the agent. */
PhSecretStore *
ph_secret_store_new_libsecret (void)
{
  PhSecretStore *self = g_new0 (PhSecretStore, 1);

  self->vtable = &service_vtable;
  self->description = g_strdup ("Secret Service");
  return self;
}

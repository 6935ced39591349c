/* SPDX-License-Identifier: GPL-2.0-or-later */
/* ph-secret-libsecret.c: the per-user secret store: the Secret Service (GNOME Keyring, KWallet)
 * over the session bus, through libsecret's synchronous calls, and a private file where the
 * Secret Service has no collection to keep the passwords in. */
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

typedef struct
{
  PhSecretStore parent;
  /* Stands in for a Secret Service with no collection to hold our items. Read after the
   * Secret Service whether or not this store has fallen back, since an earlier run may have. */
  PhSecretStore *fallback;
  /* Swapped with parent.description on falling back; both live as long as the store, so that
   * what ph_secret_store_describe() returned stays valid. */
  char *other_description;
  /* Set by the first save that found no usable collection, and kept: each new try costs the
   * Secret Service a prompt that fails, and the user is told once. */
  gboolean fell_back;
} PhServiceStore;

static gboolean
service_lookup (PhSecretStore *store, const char *upstream, const char *username, char **password,
                GError **error)
{
  PhServiceStore *self = (PhServiceStore *) store;
  g_autoptr (GError) local_error = NULL;
  g_autoptr (GHashTable) attributes = secret_attributes_build (
      &password_schema, "upstream", upstream, "username", username, NULL);
  const char *text = NULL;
  SecretValue *value = NULL;
  GList *items;

  /* Not secret_password_lookup_sync(): libsecret 0.20's lookup keeps a reference to the
   * GetSecrets reply, and so the password in it, until the process ends (LeakSanitizer in the
   * sanitizer build, tests/sanitizers/). A search that unlocks and loads the secret of the first
   * item, which is what that lookup does, keeps nothing. */
  items = secret_service_search_sync (NULL, &password_schema, attributes,
                                      SECRET_SEARCH_UNLOCK | SECRET_SEARCH_LOAD_SECRETS, NULL,
                                      &local_error);
  if (local_error != NULL)
    {
      g_list_free_full (items, g_object_unref);
      /* libsecret's errors (D-Bus, a locked or missing collection) never carry the secret. */
      g_set_error (error, PH_ERROR, PH_ERROR_FAILED,
                   /* TRANSLATORS: the Secret Service is the desktop's password store (GNOME
                    * Keyring, KWallet); %s says why */
                   _ ("Secret Service: cannot look up the password: %s"), local_error->message);
      return FALSE;
    }
  if (items != NULL)
    value = secret_item_get_secret (items->data);
  g_list_free_full (items, g_object_unref);
  if (value != NULL)
    text = secret_value_get_text (value);
  if (text == NULL)
    {
      g_clear_pointer (&value, secret_value_unref);
      return ph_secret_store_lookup (self->fallback, upstream, username, password, error);
    }
  /* Copied into g_malloc() memory so that one ph_secret_free() fits every store; libsecret's
   * own copy is wiped when the value goes. */
  *password = g_strdup (text);
  secret_value_unref (value);
  return TRUE;
}

/* The collection new items go to: the one the "default" alias names, or a new one given that
 * alias. *@collection NULL with *@reason set: there is none and none could be made, which is the
 * fallback file's case rather than an error. FALSE: the Secret Service could not be asked. */
static gboolean
default_collection (SecretCollection **collection, char **reason, GError **error)
{
  g_autoptr (GError) local_error = NULL;
  g_autoptr (SecretService) service = NULL;

  /* libsecret 0.20's synchronous alias lookup wants the service, though the docs allow NULL. */
  service = secret_service_get_sync (SECRET_SERVICE_NONE, NULL, error);
  if (service == NULL)
    return FALSE;
  *collection = secret_collection_for_alias_sync (service, SECRET_COLLECTION_DEFAULT,
                                                  SECRET_COLLECTION_NONE, NULL, &local_error);
  if (local_error != NULL)
    {
      g_propagate_error (error, g_steal_pointer (&local_error));
      return FALSE;
    }
  if (*collection != NULL)
    return TRUE;

  /* gnome-keyring without a login keyring: the alias names nothing, yet an item stored to it
   * is sent to the login collection, which does not exist. A new collection needs its password
   * from a prompt; where none can be shown the Secret Service dismisses it, and libsecret says
   * there is no collection at "/". (Not the "session" collection: it ends with the daemon.) */
  *collection
      = secret_collection_create_sync (service, "Default keyring", SECRET_COLLECTION_DEFAULT,
                                       SECRET_COLLECTION_CREATE_NONE, NULL, &local_error);
  if (*collection == NULL)
    *reason = g_strdup_printf ("no default collection, and creating one failed: %s",
                               local_error != NULL ? local_error->message : "no reason given");
  return TRUE;
}

static void
fall_back (PhServiceStore *self, const char *reason)
{
  char *description = self->parent.description;

  self->fell_back = TRUE;
  self->parent.description = self->other_description;
  self->other_description = description;
  /* Once per store, so once per agent: later saves go straight to the file. */
  g_message ("no usable Secret Service collection (%s); credentials go to %s", reason,
             self->parent.description);
}

static gboolean
store_failed (GError **error, const GError *why)
{
  g_set_error (error, PH_ERROR, PH_ERROR_FAILED,
               /* TRANSLATORS: %s says why */
               _ ("Secret Service: cannot store the password: %s"), why->message);
  return FALSE;
}

static gboolean
service_save (PhSecretStore *store, const char *upstream, const char *username,
              const char *password, GError **error)
{
  PhServiceStore *self = (PhServiceStore *) store;
  g_autoptr (GError) local_error = NULL;
  g_autoptr (SecretCollection) collection = NULL;
  g_autofree char *reason = NULL;
  g_autofree char *label = NULL;

  if (self->fell_back)
    return ph_secret_store_save (self->fallback, upstream, username, password, error);
  if (!default_collection (&collection, &reason, &local_error))
    return store_failed (error, local_error);
  if (collection == NULL)
    {
      fall_back (self, reason);
      return ph_secret_store_save (self->fallback, upstream, username, password, error);
    }

  /* A locked collection is unlocked here, with a prompt; where that fails the error stands
   * rather than a fallback, so that a keyring the user keeps is never bypassed. */
  label = g_strdup_printf ("Pinhole proxy password for %s at %s", username, upstream);
  if (!secret_password_store_sync (
          &password_schema, g_dbus_proxy_get_object_path (G_DBUS_PROXY (collection)), label,
          password, NULL, &local_error, "upstream", upstream, "username", username, NULL))
    return store_failed (error, local_error);
  return TRUE;
}

static gboolean
service_clear (PhSecretStore *store, const char *upstream, GError **error)
{
  PhServiceStore *self = (PhServiceStore *) store;
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
  return ph_secret_store_clear (self->fallback, upstream, error);
}

static void
service_finalize (PhSecretStore *store)
{
  PhServiceStore *self = (PhServiceStore *) store;

  ph_secret_store_free (self->fallback);
  g_free (self->other_description);
}

static const PhSecretStoreVTable service_vtable = {
  .lookup = service_lookup,
  .save = service_save,
  .clear = service_clear,
  .finalize = service_finalize,
};

/* Connects lazily: the session bus or the keyring may come up after the agent. */
static PhSecretStore *
new_libsecret (const char *fallback_path)
{
  PhServiceStore *self = g_new0 (PhServiceStore, 1);

  self->parent.vtable = &service_vtable;
  self->parent.description = g_strdup ("Secret Service");
  self->fallback = ph_secret_store_new_file (fallback_path);
  self->other_description = g_strdup (ph_secret_store_describe (self->fallback));
  return &self->parent;
}

PhSecretStore *
ph_secret_store_new_service_with_fallback (const char *fallback_path, GError **error)
{
  g_return_val_if_fail (fallback_path != NULL && *fallback_path != '\0', NULL);
  g_return_val_if_fail (error == NULL || *error == NULL, NULL);

  return new_libsecret (fallback_path);
}

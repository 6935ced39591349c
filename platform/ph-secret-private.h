/* ph-secret-private.h: what a secret-store backend implements; only platform/ sees it, so
 * that the agent can never reach past ph-secret.h into one store. */
#pragma once

#include "ph-secret.h"

G_BEGIN_DECLS

typedef struct
{
  gboolean (*lookup) (PhSecretStore *store, const char *upstream, const char *username,
                      char **password, GError **error);
  gboolean (*save) (PhSecretStore *store, const char *upstream, const char *username,
                    const char *password, GError **error);
  gboolean (*clear) (PhSecretStore *store, const char *upstream, GError **error);
  /* Frees what the backend added; the common part frees the rest. */
  void (*finalize) (PhSecretStore *store);
} PhSecretStoreVTable;

/* Backends embed this as their first member. */
struct _PhSecretStore
{
  const PhSecretStoreVTable *vtable;
  char *description;
};

/* Overwrites @len bytes at @buf in a way the compiler may not drop. */
void ph_secret_wipe (void *buf, gsize len);

#ifdef PH_HAVE_LIBSECRET
PhSecretStore *ph_secret_store_new_libsecret (void);
#endif

G_END_DECLS

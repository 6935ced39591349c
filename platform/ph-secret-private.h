/* SPDX-License-Identifier: GPL-2.0-or-later */
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

/* The key-file store (ph-secret-file.c), which other one-file stores specialise: the same
 * layout (one group per upstream, key = username, both percent-encoded, value = base64), read,
 * checked and replaced the same way. A format says what the base64 holds and may create the
 * temporary file itself, so that it is protected before anything is written to it. */
typedef struct _PhSecretFileStore PhSecretFileStore;

typedef struct
{
  /* The comment at the top of a new file, for whoever finds it. */
  const char *header;
  /* What to store for @password, base64-encoded by the caller. NULL: the password itself. */
  GBytes *(*seal) (PhSecretFileStore *store, const char *password, GError **error);
  /* Undoes seal(): the password, NUL-terminated, @password_len bytes without the NUL (a NUL
   * inside is refused by the caller, which wipes and frees the result). @username is for
   * messages. NULL when seal() is. */
  char *(*open) (PhSecretFileStore *store, const char *username, const guint8 *sealed,
                 gsize sealed_len, gsize *password_len, GError **error);
  /* Creates the temporary file named by @tmpl (ending in XXXXXX, filled in as g_mkstemp()
   * does) and returns a descriptor open for writing, or -1 with an error. NULL: a new file
   * of mode 0600. */
  int (*create_temp) (PhSecretFileStore *store, char *tmpl, GError **error);
} PhSecretFileFormat;

struct _PhSecretFileStore
{
  PhSecretStore parent;
  const PhSecretFileFormat *format;
  char *path;
};

/* A key-file store in a new zeroed block of @size bytes: a backend's struct that embeds
 * PhSecretFileStore as its first member. Takes @description. */
PhSecretFileStore *ph_secret_file_store_new (gsize size, const char *path, char *description,
                                             const PhSecretFileFormat *format);

/* Overwrites @len bytes at @buf in a way the compiler may not drop. */
void ph_secret_wipe (void *buf, gsize len);

G_END_DECLS

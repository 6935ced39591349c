/* SPDX-License-Identifier: GPL-2.0-or-later */
/* ph-secret.h: where the proxy password lives: the Secret Service (libsecret) for a
 * per-user agent, a root-only file for the system service. Never a config file. */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

typedef struct _PhSecretStore PhSecretStore;

/* The system service's store: one file (mode 0600, written atomically: temp file in the same
 * directory, fsync, rename). Its directory is created 0700 if missing. */
PhSecretStore *ph_secret_store_new_file (const char *path);

#ifdef G_OS_WIN32
/* The Windows store: the same file, each password encrypted with DPAPI for the machine
 * (@machine_scope: the service as LocalSystem) or for the user who saves it; the file's DACL
 * admits SYSTEM, Administrators and, in user scope, that user. */
PhSecretStore *ph_secret_store_new_dpapi (const char *path, gboolean machine_scope);
#endif

/* The per-user store: the Secret Service over the session bus (libsecret), in its default
 * collection. Where it has none and cannot make one, because that needs a prompt nobody can
 * answer (no login keyring in an SSH session, a minimal desktop, a test bus), the passwords go
 * to the file store at @fallback_path instead (as ph_secret_store_new_file() makes it), and the
 * log says so once. Lookups read that file after the Secret Service, so that what an earlier
 * run put there is found. NULL with an error when Pinhole was built without libsecret. */
PhSecretStore *ph_secret_store_new_service_with_fallback (const char *fallback_path,
                                                          GError **error);

/* The same, falling back to the session agent's default file,
 * $XDG_STATE_HOME/pinhole/credentials. */
PhSecretStore *ph_secret_store_new_service (GError **error);

void ph_secret_store_free (PhSecretStore *store);

/* For logs: "file /var/lib/...", "Secret Service". */
const char *ph_secret_store_describe (PhSecretStore *store);

/* Looks up the password for @username at @upstream ("host:port"). TRUE with *password NULL when
 * none is stored; FALSE only when the store itself failed. Free the result with ph_secret_free().
 */
gboolean ph_secret_store_lookup (PhSecretStore *store, const char *upstream, const char *username,
                                 char **password, GError **error);

gboolean ph_secret_store_save (PhSecretStore *store, const char *upstream, const char *username,
                               const char *password, GError **error);

/* Removes every password stored for @upstream (any username). */
gboolean ph_secret_store_clear (PhSecretStore *store, const char *upstream, GError **error);

/* Wipes then frees. */
void ph_secret_free (char *password);

G_DEFINE_AUTOPTR_CLEANUP_FUNC (PhSecretStore, ph_secret_store_free)

G_END_DECLS

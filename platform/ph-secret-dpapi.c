/* SPDX-License-Identifier: GPL-2.0-or-later */
/* ph-secret-dpapi.c: the Windows secret store: the key file of ph-secret-file.c with each
 * password encrypted by DPAPI, for the machine (the service as LocalSystem) or for the user who
 * saves it, in a file that only SYSTEM, Administrators and that user may open. */
#define G_LOG_DOMAIN "pinhole-secret"

#include "ph-secret-private.h"
#include "ph-error.h"

#include <errno.h>
#include <fcntl.h>
#include <io.h>
#include <string.h>
#include <glib/gstdio.h>
#include <glib/gi18n.h>
#include <windows.h>
#include <wincrypt.h>
#include <sddl.h>

typedef struct
{
  PhSecretFileStore parent;
  gboolean machine_scope;
} PhSecretDpapiStore;

/* Mixed into every blob, so that what another program protected for the same user or machine
 * does not open as a Pinhole password, nor ours in that program. It is not a secret; changing it
 * makes every stored password unreadable. */
#define ENTROPY "pinhole-agent/1"

/* Kept in clear in each blob, for an administrator who finds one. */
#define BLOB_DESCRIPTION L"Pinhole proxy password"

/* SYSTEM and Administrators, full access; "P": nothing inherited from the folder. User scope
 * adds the user, the only other account whose DPAPI key opens the blobs. */
#define DACL_MACHINE "D:P(A;;FA;;;SY)(A;;FA;;;BA)"

/* Memory that Windows hands out with LocalAlloc(). */
typedef void PhLocal;
G_DEFINE_AUTOPTR_CLEANUP_FUNC (PhLocal, LocalFree)

typedef HANDLE PhHandle;
G_DEFINE_AUTO_CLEANUP_FREE_FUNC (PhHandle, CloseHandle, NULL)

/* What CryptProtectData() returns: the blob, which is safe to keep. */
typedef DATA_BLOB PhSealedBlob;
static void
sealed_blob_clear (PhSealedBlob *blob)
{
  g_clear_pointer (&blob->pbData, LocalFree);
  blob->cbData = 0;
}
G_DEFINE_AUTO_CLEANUP_CLEAR_FUNC (PhSealedBlob, sealed_blob_clear)

/* What CryptUnprotectData() returns: the password, so the whole allocation is wiped. */
typedef DATA_BLOB PhOpenedBlob;
static void
opened_blob_clear (PhOpenedBlob *blob)
{
  if (blob->pbData != NULL)
    {
      SIZE_T size = LocalSize (blob->pbData);

      ph_secret_wipe (blob->pbData, MAX (size, (SIZE_T) blob->cbData));
    }
  g_clear_pointer (&blob->pbData, LocalFree);
  blob->cbData = 0;
}
G_DEFINE_AUTO_CLEANUP_CLEAR_FUNC (PhOpenedBlob, opened_blob_clear)

static DATA_BLOB
entropy_blob (void)
{
  DATA_BLOB blob = { sizeof ENTROPY - 1, (BYTE *) ENTROPY };

  return blob;
}

/* The user this process runs as, in SDDL form ("S-1-5-21-…"); NULL with *@code set. */
static char *
current_user_sid (DWORD *code)
{
  g_auto (PhHandle) token = NULL;
  g_autofree TOKEN_USER *user = NULL;
  g_autoptr (PhLocal) text = NULL;
  DWORD size = 0;

  if (!OpenProcessToken (GetCurrentProcess (), TOKEN_QUERY, &token))
    {
      *code = GetLastError ();
      return NULL;
    }
  /* The first call only tells the size. */
  if (!GetTokenInformation (token, TokenUser, NULL, 0, &size)
      && GetLastError () != ERROR_INSUFFICIENT_BUFFER)
    {
      *code = GetLastError ();
      return NULL;
    }
  user = g_malloc0 (size);
  if (!GetTokenInformation (token, TokenUser, user, size, &size)
      || !ConvertSidToStringSidW (user->User.Sid, (LPWSTR *) &text))
    {
      *code = GetLastError ();
      return NULL;
    }
  return g_utf16_to_utf8 (text, -1, NULL, NULL, NULL);
}

/* The security descriptor a new file gets; free with LocalFree(). NULL with *@code set. */
static PSECURITY_DESCRIPTOR
file_security (PhSecretDpapiStore *self, DWORD *code)
{
  g_autofree char *sid = NULL;
  g_autofree char *sddl = NULL;
  g_autofree gunichar2 *wsddl = NULL;
  PSECURITY_DESCRIPTOR sd = NULL;

  if (self->machine_scope)
    sddl = g_strdup (DACL_MACHINE);
  else
    {
      sid = current_user_sid (code);
      if (sid == NULL)
        return NULL;
      sddl = g_strdup_printf ("%s(A;;FA;;;%s)", DACL_MACHINE, sid);
    }
  wsddl = g_utf8_to_utf16 (sddl, -1, NULL, NULL, NULL);
  if (!ConvertStringSecurityDescriptorToSecurityDescriptorW (wsddl, SDDL_REVISION_1, &sd, NULL))
    {
      *code = GetLastError ();
      return NULL;
    }
  return sd;
}

/* Like g_mkstemp(), but the file has its final DACL from the start, and no one else can open it
 * while it is written: with machine scope, whoever can read the blobs can also open them. The
 * rename keeps the DACL. */
static int
dpapi_create_temp (PhSecretFileStore *store, char *tmpl, GError **error)
{
  static const char letters[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
  PhSecretDpapiStore *self = (PhSecretDpapiStore *) store;
  g_autofree char *dir = g_path_get_dirname (tmpl);
  g_autoptr (PhLocal) sd = NULL;
  SECURITY_ATTRIBUTES sa = { sizeof sa, NULL, FALSE };
  HANDLE handle = INVALID_HANDLE_VALUE;
  DWORD code = 0;
  char *x;
  int fd;

  g_return_val_if_fail (g_str_has_suffix (tmpl, "XXXXXX"), -1);

  sd = file_security (self, &code);
  if (sd == NULL)
    {
      g_autofree char *why = g_win32_error_message ((int) code);
      /* TRANSLATORS: the password file's path, then why */
      g_set_error (error, PH_ERROR, PH_ERROR_FAILED, _ ("Cannot restrict access to %s: %s"),
                   store->path, why);
      return -1;
    }
  sa.lpSecurityDescriptor = sd;

  x = tmpl + strlen (tmpl) - 6;
  for (guint attempt = 0; attempt < 100 && handle == INVALID_HANDLE_VALUE; attempt++)
    {
      g_autofree gunichar2 *wtmp = NULL;

      for (guint i = 0; i < 6; i++)
        x[i] = letters[g_random_int_range (0, sizeof letters - 1)];
      wtmp = g_utf8_to_utf16 (tmpl, -1, NULL, NULL, NULL);
      if (wtmp == NULL)
        {
          code = ERROR_INVALID_NAME;
          break;
        }
      handle = CreateFileW (wtmp, GENERIC_WRITE, 0, &sa, CREATE_NEW, FILE_ATTRIBUTE_NORMAL, NULL);
      if (handle != INVALID_HANDLE_VALUE)
        break;
      code = GetLastError ();
      if (code != ERROR_FILE_EXISTS && code != ERROR_ALREADY_EXISTS)
        break;
    }
  if (handle == INVALID_HANDLE_VALUE)
    {
      g_autofree char *why = g_win32_error_message ((int) code);
      /* TRANSLATORS: a folder's path, then why */
      g_set_error (error, PH_ERROR, PH_ERROR_FAILED, _ ("Cannot create a temporary file in %s: %s"),
                   dir, why);
      return -1;
    }

  fd = _open_osfhandle ((intptr_t) handle, _O_WRONLY | _O_BINARY);
  if (fd < 0)
    {
      int saved = errno;

      CloseHandle (handle);
      g_unlink (tmpl);
      /* TRANSLATORS: a folder's path, then why */
      g_set_error (error, PH_ERROR, PH_ERROR_FAILED, _ ("Cannot create a temporary file in %s: %s"),
                   dir, g_strerror (saved));
      return -1;
    }
  return fd;
}

static GBytes *
dpapi_seal (PhSecretFileStore *store, const char *password, GError **error)
{
  PhSecretDpapiStore *self = (PhSecretDpapiStore *) store;
  DATA_BLOB plain = { (DWORD) strlen (password), (BYTE *) password };
  DATA_BLOB entropy = entropy_blob ();
  g_auto (PhSealedBlob) sealed = { 0, NULL };
  DWORD flags = CRYPTPROTECT_UI_FORBIDDEN;

  if (self->machine_scope)
    flags |= CRYPTPROTECT_LOCAL_MACHINE;
  if (!CryptProtectData (&plain, BLOB_DESCRIPTION, &entropy, NULL, NULL, flags, &sealed))
    {
      g_autofree char *why = g_win32_error_message ((int) GetLastError ());
      g_set_error (error, PH_ERROR, PH_ERROR_FAILED,
                   /* TRANSLATORS: DPAPI is how Windows encrypts data for one computer or one
                    * user; the password file's path, then why */
                   _ ("Cannot encrypt the password for %s with DPAPI: %s"), store->path, why);
      return NULL;
    }
  return g_bytes_new (sealed.pbData, sealed.cbData);
}

/* The blob is not checked against the store's scope: it opens only for the user or the machine
 * it was made for, and with Pinhole's entropy. */
static char *
dpapi_open (PhSecretFileStore *store, const char *username, const guint8 *sealed, gsize sealed_len,
            gsize *password_len, GError **error)
{
  DATA_BLOB in = { (DWORD) sealed_len, (BYTE *) sealed };
  DATA_BLOB entropy = entropy_blob ();
  g_auto (PhOpenedBlob) opened = { 0, NULL };
  char *password;

  if (!CryptUnprotectData (&in, NULL, &entropy, NULL, NULL, CRYPTPROTECT_UI_FORBIDDEN, &opened))
    {
      g_autofree char *why = g_win32_error_message ((int) GetLastError ());
      g_set_error (error, PH_ERROR, PH_ERROR_FAILED,
                   /* TRANSLATORS: the password file's path, the proxy user name, then why
                    * Windows could not decrypt it */
                   _ ("Password file %s: the entry for “%s” cannot be decrypted (%s); it was "
                      "saved by another Windows user or on another computer, or the file was "
                      "changed: set the password again"),
                   store->path, username, why);
      return NULL;
    }
  password = g_malloc (opened.cbData + 1);
  if (opened.cbData > 0)
    memcpy (password, opened.pbData, opened.cbData);
  password[opened.cbData] = '\0';
  *password_len = opened.cbData;
  return password;
}

static const PhSecretFileFormat machine_format = {
  .header = " Pinhole proxy passwords: one group per upstream, username = base64 (the\n"
            " password encrypted with DPAPI for this computer); names are percent-encoded.\n"
            " Only SYSTEM and Administrators may open this file.",
  .seal = dpapi_seal,
  .open = dpapi_open,
  .create_temp = dpapi_create_temp,
};

static const PhSecretFileFormat user_format = {
  .header = " Pinhole proxy passwords: one group per upstream, username = base64 (the\n"
            " password encrypted with DPAPI for the user who saved it); names are\n"
            " percent-encoded. Only SYSTEM, Administrators and that user may open this file.",
  .seal = dpapi_seal,
  .open = dpapi_open,
  .create_temp = dpapi_create_temp,
};

PhSecretStore *
ph_secret_store_new_dpapi (const char *path, gboolean machine_scope)
{
  PhSecretDpapiStore *self;

  g_return_val_if_fail (path != NULL && *path != '\0', NULL);

  self = (PhSecretDpapiStore *) ph_secret_file_store_new (
      sizeof (PhSecretDpapiStore), path,
      g_strdup_printf ("DPAPI file %s (%s scope)", path, machine_scope ? "machine" : "user"),
      machine_scope ? &machine_format : &user_format);
  self->machine_scope = machine_scope;
  return &self->parent.parent;
}

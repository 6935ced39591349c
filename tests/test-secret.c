/* SPDX-License-Identifier: GPL-2.0-or-later */
/* test-secret.c: unit tests for the file store of platform/ph-secret.h: round trips, odd
 * bytes, the file's mode and atomic replacement, and refusing a file others can read; on
 * Windows, the DPAPI store too. */
#include "ph-secret.h"
#include "ph-test-secret.h"
#include "ph-error.h"

#include <string.h>
#include <sys/stat.h>
#include <glib/gstdio.h>
#include "ph-test-util.h"
#ifdef G_OS_UNIX
#include <unistd.h>
#else
#include <windows.h>
#include <wincrypt.h>
#include <aclapi.h>
#include <sddl.h>

#endif

typedef struct
{
  char *root; /* removed with everything under it */
  char *dir;  /* the store's directory, not created by the fixture */
  char *path;
  PhSecretStore *store;
} Fixture;

static void
fixture_setup (Fixture *f, gconstpointer data)
{
  g_autoptr (GError) error = NULL;

  f->root = g_dir_make_tmp ("pinhole-secret-XXXXXX", &error);
  g_assert_no_error (error);
  f->dir = g_build_filename (f->root, "lib", "pinhole", NULL);
  f->path = g_build_filename (f->dir, "secrets", NULL);
  f->store = ph_secret_store_new_file (f->path);
}

static void
fixture_teardown (Fixture *f, gconstpointer data)
{
  ph_secret_store_free (f->store);
  ph_test_remove_tree (f->root);
  g_free (f->path);
  g_free (f->dir);
  g_free (f->root);
}

static char *
read_file (const char *path)
{
  g_autoptr (GError) error = NULL;
  char *contents = NULL;

  g_file_get_contents (path, &contents, NULL, &error);
  g_assert_no_error (error);
  return contents;
}

static void
test_round_trip (Fixture *f, gconstpointer data)
{
  g_autoptr (GError) error = NULL;
  g_autoptr (PhSecretStore) again = ph_secret_store_new_file (f->path);
  g_autofree char *describe = g_strdup_printf ("file %s", f->path);

  g_assert_cmpstr (ph_secret_store_describe (f->store), ==, describe);
  save_ok (f->store, "proxy.example.com:443", "alice", "alice-pw");
  save_ok (f->store, "proxy.example.com:443", "bob", "bob-pw");
  save_ok (f->store, "[2001:db8::1]:8443", "alice", "alice-v6");
  save_ok (f->store, "[2001:db8::1]:8443", "carol = #x [y]", "carol-pw");

  /* A second store on the same file reads what the first wrote. */
  assert_lookup (again, "proxy.example.com:443", "alice", "alice-pw");
  assert_lookup (again, "proxy.example.com:443", "bob", "bob-pw");
  assert_lookup (again, "[2001:db8::1]:8443", "alice", "alice-v6");
  assert_lookup (again, "[2001:db8::1]:8443", "carol = #x [y]", "carol-pw");
  assert_lookup (again, "[2001:db8::1]:8443", "bob", NULL);

  /* Saving again replaces. */
  save_ok (f->store, "proxy.example.com:443", "alice", "alice-new");
  assert_lookup (again, "proxy.example.com:443", "alice", "alice-new");

  g_assert_true (ph_secret_store_clear (f->store, "proxy.example.com:443", &error));
  g_assert_no_error (error);
  assert_lookup (again, "proxy.example.com:443", "alice", NULL);
  assert_lookup (again, "proxy.example.com:443", "bob", NULL);
  assert_lookup (again, "[2001:db8::1]:8443", "alice", "alice-v6");
  assert_lookup (again, "[2001:db8::1]:8443", "carol = #x [y]", "carol-pw");

  /* Clearing what is not there is not an error. */
  g_assert_true (ph_secret_store_clear (f->store, "proxy.example.com:443", &error));
  g_assert_no_error (error);
}

static const char *const odd_passwords[] = {
  "with spaces",     " leading and trailing ", "user:pass:more",
  "a=b==",           "line one\nline two\r\n", "tab\there",
  "# not a comment", "[not a group]",          "back\\slash and \"quotes\" and 'single'",
  "пароль 密码 🔑",   "\x01\x7f\xff\xfe",       "",
};

static void
test_odd_bytes (Fixture *f, gconstpointer data)
{
  g_autoptr (PhSecretStore) again = ph_secret_store_new_file (f->path);

  for (guint i = 0; i < G_N_ELEMENTS (odd_passwords); i++)
    {
      g_autofree char *user = g_strdup_printf ("user%u", i);
      save_ok (f->store, "proxy.example.com:443", user, odd_passwords[i]);
    }
  for (guint i = 0; i < G_N_ELEMENTS (odd_passwords); i++)
    {
      g_autofree char *user = g_strdup_printf ("user%u", i);
      assert_lookup (again, "proxy.example.com:443", user, odd_passwords[i]);
    }
}

#ifdef G_OS_UNIX
static void
assert_mode (const char *path, guint mode)
{
  GStatBuf st;

  g_assert_cmpint (g_stat (path, &st), ==, 0);
  g_assert_cmpuint (st.st_mode & 07777, ==, mode);
}

static void
test_modes (Fixture *f, gconstpointer data)
{
  mode_t old_umask = umask (022);

  g_assert_false (g_file_test (f->dir, G_FILE_TEST_EXISTS));
  save_ok (f->store, "proxy.example.com:443", "alice", "pw");
  umask (old_umask);
  assert_mode (f->dir, 0700);
  assert_mode (f->path, 0600);
}
#endif

/* Lists the names in @dir, sorted, joined by spaces. */
static char *
list_dir (const char *dir)
{
  g_autoptr (GDir) d = g_dir_open (dir, 0, NULL);
  g_autoptr (GPtrArray) names = g_ptr_array_new_with_free_func (g_free);
  const char *name;

  g_assert_nonnull (d);
  while ((name = g_dir_read_name (d)) != NULL)
    g_ptr_array_add (names, g_strdup (name));
  g_ptr_array_sort (names, (GCompareFunc) g_strcmp0);
  g_ptr_array_add (names, NULL);
  return g_strjoinv (" ", (char **) names->pdata);
}

#ifdef G_OS_UNIX
static void
test_atomic_replace (Fixture *f, gconstpointer data)
{
  GStatBuf before, after;
  g_autofree char *names = NULL;

  save_ok (f->store, "proxy.example.com:443", "alice", "first");
  g_assert_cmpint (g_stat (f->path, &before), ==, 0);
  save_ok (f->store, "proxy.example.com:443", "alice", "second");
  g_assert_cmpint (g_stat (f->path, &after), ==, 0);

  /* A new inode: the file was renamed over, not rewritten in place. */
  g_assert_cmpuint (before.st_ino, !=, after.st_ino);
  g_assert_cmpuint (after.st_mode & 07777, ==, 0600);
  names = list_dir (f->dir);
  g_assert_cmpstr (names, ==, "secrets");
  assert_lookup (f->store, "proxy.example.com:443", "alice", "second");
}

static void
test_refuses_readable (Fixture *f, gconstpointer data)
{
  g_autoptr (GError) error = NULL;
  g_autofree char *encoded = g_base64_encode ((const guchar *) "s3cret-pw", 9);
  g_autofree char *contents = NULL;
  char *password = NULL;

  save_ok (f->store, "proxy.example.com:443", "alice", "s3cret-pw");
  contents = read_file (f->path);
  g_assert_nonnull (strstr (contents, encoded));
  g_assert_null (strstr (contents, "s3cret-pw"));
  g_assert_cmpint (g_chmod (f->path, 0644), ==, 0);

  g_assert_false (
      ph_secret_store_lookup (f->store, "proxy.example.com:443", "alice", &password, &error));
  g_assert_error (error, PH_ERROR, PH_ERROR_FAILED);
  g_assert_null (password);
  g_test_message ("refused: %s", error->message);
  g_assert_nonnull (strstr (error->message, f->path));
  g_assert_nonnull (strstr (error->message, "0644"));
  g_assert_null (strstr (error->message, "s3cret-pw"));
  g_assert_null (strstr (error->message, encoded));
  g_clear_error (&error);

  /* Nor is it silently replaced by a save. */
  g_assert_false (
      ph_secret_store_save (f->store, "proxy.example.com:443", "alice", "other", &error));
  g_assert_error (error, PH_ERROR, PH_ERROR_FAILED);
  g_assert_nonnull (strstr (error->message, f->path));
  assert_mode (f->path, 0644);
}

static void
test_refuses_foreign_owner (Fixture *f, gconstpointer data)
{
  g_autoptr (GError) error = NULL;
  char *password = NULL;

  if (geteuid () != 0)
    {
      g_test_skip ("changing a file's owner needs root");
      return;
    }
  save_ok (f->store, "proxy.example.com:443", "alice", "s3cret-pw");
  g_assert_cmpint (chown (f->path, 65534, 65534), ==, 0);

  g_assert_false (
      ph_secret_store_lookup (f->store, "proxy.example.com:443", "alice", &password, &error));
  g_assert_error (error, PH_ERROR, PH_ERROR_FAILED);
  g_test_message ("refused: %s", error->message);
  g_assert_nonnull (strstr (error->message, f->path));
  g_assert_nonnull (strstr (error->message, "owned by uid 65534"));
}
#endif

static void
test_refuses_not_base64 (Fixture *f, gconstpointer data)
{
  g_autoptr (GError) error = NULL;
  char *password = NULL;

  g_assert_cmpint (g_mkdir_with_parents (f->dir, 0700), ==, 0);
  g_assert_true (g_file_set_contents_full (f->path, "[proxy.example.com:443]\nalice=plain pw!\n",
                                           -1, G_FILE_SET_CONTENTS_CONSISTENT, 0600, &error));
  g_assert_no_error (error);

  g_assert_false (
      ph_secret_store_lookup (f->store, "proxy.example.com:443", "alice", &password, &error));
  g_assert_error (error, PH_ERROR, PH_ERROR_FAILED);
  g_test_message ("refused: %s", error->message);
  g_assert_null (strstr (error->message, "plain pw"));
  g_clear_error (&error);

  /* A line GKeyFile cannot parse is not quoted back either. */
  g_assert_true (g_file_set_contents_full (f->path, "[proxy.example.com:443]\nhunter2\n", -1,
                                           G_FILE_SET_CONTENTS_CONSISTENT, 0600, &error));
  g_assert_no_error (error);
  g_assert_false (
      ph_secret_store_lookup (f->store, "proxy.example.com:443", "alice", &password, &error));
  g_assert_error (error, PH_ERROR, PH_ERROR_FAILED);
  g_test_message ("refused: %s", error->message);
  g_assert_null (strstr (error->message, "hunter2"));
}

static void
test_missing_entry (Fixture *f, gconstpointer data)
{
  save_ok (f->store, "proxy.example.com:443", "alice", "pw");
  assert_lookup (f->store, "proxy.example.com:443", "bob", NULL);
  assert_lookup (f->store, "other.example.com:443", "alice", NULL);
}

static void
test_missing_file (Fixture *f, gconstpointer data)
{
  g_autoptr (GError) error = NULL;

  assert_lookup (f->store, "proxy.example.com:443", "alice", NULL);
  g_assert_true (ph_secret_store_clear (f->store, "proxy.example.com:443", &error));
  g_assert_no_error (error);
  /* Neither a lookup nor a clear creates anything. */
  g_assert_false (g_file_test (f->dir, G_FILE_TEST_EXISTS));
}

#ifdef G_OS_WIN32
/* DPAPI: the fixture's data is the scope, TRUE for the machine. */

static PhSecretStore *
new_dpapi (Fixture *f, gconstpointer data)
{
  return ph_secret_store_new_dpapi (f->path, GPOINTER_TO_INT (data));
}

static void
dpapi_setup (Fixture *f, gconstpointer data)
{
  fixture_setup (f, data);
  ph_secret_store_free (f->store);
  f->store = new_dpapi (f, data);
}

/* Wine's DPAPI ignores CRYPTPROTECT_LOCAL_MACHINE (every blob is keyed to the user name), so
 * there the machine-scope cases check the code path, not the binding. */
static gboolean
running_under_wine (void)
{
  HMODULE ntdll = GetModuleHandleW (L"ntdll.dll");

  return ntdll != NULL && GetProcAddress (ntdll, "wine_get_version") != NULL;
}

/* Machine scope admits SYSTEM and Administrators only: anyone else cannot even rename the
 * temporary file over the store's file. */
static gboolean
skip_unless_scope_usable (gconstpointer data)
{
  BYTE sid[SECURITY_MAX_SID_SIZE];
  DWORD size = sizeof sid;
  BOOL admin = FALSE;

  if (!GPOINTER_TO_INT (data))
    return FALSE;
  g_assert_true (CreateWellKnownSid (WinBuiltinAdministratorsSid, NULL, sid, &size));
  g_assert_true (CheckTokenMembership (NULL, sid, &admin));
  if (admin)
    return FALSE;
  g_test_skip ("machine scope needs SYSTEM or an elevated administrator");
  return TRUE;
}

/* The value stored for @username at @upstream in the key file at @path. */
static char *
stored_value (const char *path, const char *upstream, const char *username)
{
  g_autoptr (GKeyFile) keys = g_key_file_new ();
  g_autoptr (GError) error = NULL;
  char *value;

  g_key_file_load_from_file (keys, path, G_KEY_FILE_NONE, &error);
  g_assert_no_error (error);
  value = g_key_file_get_value (keys, upstream, username, &error);
  g_assert_no_error (error);
  return value;
}

/* Puts @value for @username at @upstream into the key file at @path, by hand. */
static void
put_value (const char *path, const char *upstream, const char *username, const char *value)
{
  g_autoptr (GKeyFile) keys = g_key_file_new ();
  g_autoptr (GError) error = NULL;

  g_key_file_load_from_file (keys, path, G_KEY_FILE_KEEP_COMMENTS, NULL);
  g_key_file_set_value (keys, upstream, username, value);
  g_key_file_save_to_file (keys, path, &error);
  g_assert_no_error (error);
}

/* Asserts that the lookup fails cleanly: an error naming the file and the user, no password. */
static void
assert_lookup_fails (PhSecretStore *store, const char *path, const char *upstream,
                     const char *username, const char *secret)
{
  g_autoptr (GError) error = NULL;
  char *password = (char *) "untouched";

  g_assert_false (ph_secret_store_lookup (store, upstream, username, &password, &error));
  g_assert_error (error, PH_ERROR, PH_ERROR_FAILED);
  g_assert_null (password);
  g_test_message ("refused: %s", error->message);
  g_assert_nonnull (strstr (error->message, path));
  g_assert_nonnull (strstr (error->message, username));
  g_assert_null (strstr (error->message, secret));
}

/* A blob that another program made for this user, with @entropy (or none). */
static char *
foreign_blob (const char *password, const char *entropy)
{
  DATA_BLOB in = { (DWORD) strlen (password), (BYTE *) password };
  DATA_BLOB salt = { entropy ? (DWORD) strlen (entropy) : 0, (BYTE *) entropy };
  DATA_BLOB out = { 0, NULL };
  char *encoded;

  g_assert_true (CryptProtectData (&in, L"another program", entropy ? &salt : NULL, NULL, NULL,
                                   CRYPTPROTECT_UI_FORBIDDEN, &out));
  encoded = g_base64_encode (out.pbData, out.cbData);
  LocalFree (out.pbData);
  return encoded;
}

static void
test_dpapi_round_trip (Fixture *f, gconstpointer data)
{
  g_autoptr (GError) error = NULL;
  g_autoptr (PhSecretStore) again = new_dpapi (f, data);
  g_autofree char *contents = NULL;
  g_autofree char *names = NULL;

  if (skip_unless_scope_usable (data))
    return;
  if (GPOINTER_TO_INT (data) && running_under_wine ())
    g_test_message ("Wine: machine scope is keyed to the user like user scope");
  g_assert_nonnull (strstr (ph_secret_store_describe (f->store), "DPAPI file"));
  g_assert_nonnull (strstr (ph_secret_store_describe (f->store), f->path));
  save_ok (f->store, "proxy.example.com:443", "alice", "alice-pw");
  save_ok (f->store, "proxy.example.com:443", "bob", "bob-pw");
  save_ok (f->store, "[2001:db8::1]:8443", "alice", "alice-v6");
  save_ok (f->store, "[2001:db8::1]:8443", "carol = #x [y]", "carol-pw");

  assert_lookup (again, "proxy.example.com:443", "alice", "alice-pw");
  assert_lookup (again, "proxy.example.com:443", "bob", "bob-pw");
  assert_lookup (again, "[2001:db8::1]:8443", "alice", "alice-v6");
  assert_lookup (again, "[2001:db8::1]:8443", "carol = #x [y]", "carol-pw");

  save_ok (f->store, "proxy.example.com:443", "alice", "alice-new");
  assert_lookup (again, "proxy.example.com:443", "alice", "alice-new");

  g_assert_true (ph_secret_store_clear (f->store, "proxy.example.com:443", &error));
  g_assert_no_error (error);
  assert_lookup (again, "proxy.example.com:443", "alice", NULL);
  assert_lookup (again, "proxy.example.com:443", "bob", NULL);
  assert_lookup (again, "[2001:db8::1]:8443", "alice", "alice-v6");
  assert_lookup (again, "[2001:db8::1]:8443", "carol = #x [y]", "carol-pw");

  /* The same layout as the file store; replaced by rename, no temporary file left behind. */
  contents = read_file (f->path);
  g_assert_true (g_str_has_prefix (contents, "# Pinhole proxy passwords"));
  g_assert_nonnull (strstr (contents, "[%5B2001:db8::1%5D:8443]\nalice="));
  names = list_dir (f->dir);
  g_assert_cmpstr (names, ==, "secrets");
}

static void
test_dpapi_odd_bytes (Fixture *f, gconstpointer data)
{
  g_autoptr (PhSecretStore) again = new_dpapi (f, data);

  if (skip_unless_scope_usable (data))
    return;
  for (guint i = 0; i < G_N_ELEMENTS (odd_passwords); i++)
    {
      g_autofree char *user = g_strdup_printf ("user%u", i);
      save_ok (f->store, "proxy.example.com:443", user, odd_passwords[i]);
    }
  for (guint i = 0; i < G_N_ELEMENTS (odd_passwords); i++)
    {
      g_autofree char *user = g_strdup_printf ("user%u", i);
      assert_lookup (again, "proxy.example.com:443", user, odd_passwords[i]);
    }
}

static gboolean
has_bytes (const guchar *haystack, gsize len, const void *needle, gsize needle_len)
{
  for (gsize i = 0; i + needle_len <= len; i++)
    if (memcmp (haystack + i, needle, needle_len) == 0)
      return TRUE;
  return FALSE;
}

static void
test_dpapi_no_plaintext (Fixture *f, gconstpointer data)
{
  const char *secret = "s3cret-pw-on-disk";
  g_autofree char *encoded = g_base64_encode ((const guchar *) secret, strlen (secret));
  g_autofree gunichar2 *wide = g_utf8_to_utf16 (secret, -1, NULL, NULL, NULL);
  g_autofree char *contents = NULL;
  g_autofree char *value = NULL;
  g_autofree guchar *blob = NULL;
  gsize contents_len = 0, blob_len = 0;

  if (skip_unless_scope_usable (data))
    return;
  save_ok (f->store, "proxy.example.com:443", "alice", secret);
  g_assert_true (g_file_get_contents (f->path, &contents, &contents_len, NULL));
  g_assert_null (g_strstr_len (contents, contents_len, secret));
  g_assert_null (g_strstr_len (contents, contents_len, encoded));

  /* Nor inside the blob, in either encoding. */
  value = stored_value (f->path, "proxy.example.com:443", "alice");
  blob = g_base64_decode (value, &blob_len);
  g_assert_cmpuint (blob_len, >, strlen (secret));
  g_assert_false (has_bytes (blob, blob_len, secret, strlen (secret)));
  g_assert_false (has_bytes (blob, blob_len, wide, strlen (secret) * 2));
}

static void
test_dpapi_blob_binding (Fixture *f, gconstpointer data)
{
  g_autofree char *other_path = g_build_filename (f->root, "other", "secrets", NULL);
  g_autoptr (PhSecretStore) other = ph_secret_store_new_dpapi (other_path, GPOINTER_TO_INT (data));
  g_autofree char *blob = NULL;
  g_autofree guchar *raw = NULL;
  g_autofree char *tampered = NULL;
  g_autofree char *no_entropy = NULL;
  g_autofree char *wrong_entropy = NULL;
  g_autofree char *plain = g_base64_encode ((const guchar *) "plain-pw", 8);
  gsize raw_len = 0, accepted = 0;

  if (skip_unless_scope_usable (data))
    return;
  save_ok (f->store, "proxy.example.com:443", "alice", "copied-pw");
  save_ok (other, "other.example.com:443", "dave", "dave-pw");
  blob = stored_value (f->path, "proxy.example.com:443", "alice");

  /* A blob carries no entry: copied into another store's file under another name, it opens
   * there too, as it has Pinhole's entropy and this user's (or machine's) key. */
  put_value (other_path, "elsewhere.example.com:443", "erin", blob);
  assert_lookup (other, "elsewhere.example.com:443", "erin", "copied-pw");
  assert_lookup (other, "other.example.com:443", "dave", "dave-pw");

  /* What another program protected for the same user does not open as ours. */
  no_entropy = foreign_blob ("foreign-pw", NULL);
  wrong_entropy = foreign_blob ("foreign-pw", "other-app/1");
  put_value (other_path, "elsewhere.example.com:443", "frank", no_entropy);
  put_value (other_path, "elsewhere.example.com:443", "grace", wrong_entropy);
  assert_lookup_fails (other, other_path, "elsewhere.example.com:443", "frank", "foreign-pw");
  assert_lookup_fails (other, other_path, "elsewhere.example.com:443", "grace", "foreign-pw");

  /* One byte changed in the blob's cipher text or its MAC, at the end: a clear error. */
  raw = g_base64_decode (blob, &raw_len);
  g_assert_cmpuint (raw_len, >, 64);
  for (gsize back = 1; back <= 24; back += 23)
    {
      raw[raw_len - back] ^= 0x5a;
      tampered = g_base64_encode (raw, raw_len);
      raw[raw_len - back] ^= 0x5a;
      put_value (other_path, "elsewhere.example.com:443", "heidi", tampered);
      g_clear_pointer (&tampered, g_free);
      assert_lookup_fails (other, other_path, "elsewhere.example.com:443", "heidi", "copied-pw");
    }

  /* Anywhere else, never a crash nor a wrong password. Windows authenticates the whole blob;
   * Wine leaves some header bytes unchecked, and those still give the right password. */
  for (gsize at = 0; at < raw_len; at++)
    {
      g_autoptr (GError) error = NULL;
      char *password = NULL;

      raw[at] ^= 0x5a;
      tampered = g_base64_encode (raw, raw_len);
      raw[at] ^= 0x5a;
      put_value (other_path, "elsewhere.example.com:443", "heidi", tampered);
      g_clear_pointer (&tampered, g_free);
      if (ph_secret_store_lookup (other, "elsewhere.example.com:443", "heidi", &password, &error))
        {
          g_assert_no_error (error);
          g_assert_cmpstr (password, ==, "copied-pw");
          accepted++;
        }
      else
        {
          g_assert_error (error, PH_ERROR, PH_ERROR_FAILED);
          g_assert_null (password);
        }
      ph_secret_free (password);
    }
  g_test_message ("%" G_GSIZE_FORMAT " of %" G_GSIZE_FORMAT " single-byte changes went unnoticed",
                  accepted, raw_len);
  if (!running_under_wine ())
    g_assert_cmpuint (accepted, ==, 0);

  /* The file store's plain base64 is not a blob either. */
  put_value (other_path, "elsewhere.example.com:443", "ivan", plain);
  assert_lookup_fails (other, other_path, "elsewhere.example.com:443", "ivan", "plain-pw");
  put_value (other_path, "elsewhere.example.com:443", "judy", "");
  assert_lookup_fails (other, other_path, "elsewhere.example.com:443", "judy", "judy-pw");

  /* The broken entries do not stand in the way of the good ones. */
  assert_lookup (other, "elsewhere.example.com:443", "erin", "copied-pw");
}

static void
test_dpapi_missing_entry (Fixture *f, gconstpointer data)
{
  g_autoptr (GError) error = NULL;

  if (skip_unless_scope_usable (data))
    return;
  assert_lookup (f->store, "proxy.example.com:443", "alice", NULL);
  g_assert_true (ph_secret_store_clear (f->store, "proxy.example.com:443", &error));
  g_assert_no_error (error);
  g_assert_false (g_file_test (f->dir, G_FILE_TEST_EXISTS));

  save_ok (f->store, "proxy.example.com:443", "alice", "pw");
  assert_lookup (f->store, "proxy.example.com:443", "bob", NULL);
  assert_lookup (f->store, "other.example.com:443", "alice", NULL);
}

/* The file's DACL, in SDDL. */
static char *
file_dacl (const char *path)
{
  g_autofree gunichar2 *wpath = g_utf8_to_utf16 (path, -1, NULL, NULL, NULL);
  PSECURITY_DESCRIPTOR sd = NULL;
  LPWSTR text = NULL;
  char *result;

  g_assert_cmpuint (GetNamedSecurityInfoW (wpath, SE_FILE_OBJECT, DACL_SECURITY_INFORMATION, NULL,
                                           NULL, NULL, NULL, &sd),
                    ==, ERROR_SUCCESS);
  g_assert_true (ConvertSecurityDescriptorToStringSecurityDescriptorW (
      sd, SDDL_REVISION_1, DACL_SECURITY_INFORMATION, &text, NULL));
  result = g_utf16_to_utf8 (text, -1, NULL, NULL, NULL);
  LocalFree (text);
  LocalFree (sd);
  return result;
}

static void
test_dpapi_dacl (Fixture *f, gconstpointer data)
{
  g_autofree char *dacl = NULL;
  g_autofree char *before = NULL;

  if (skip_unless_scope_usable (data))
    return;
  save_ok (f->store, "proxy.example.com:443", "alice", "pw");
  dacl = file_dacl (f->path);
  g_test_message ("DACL: %s", dacl);
  if (running_under_wine ())
    {
      /* Wine 8 stores no file DACL; it makes one up from the Unix mode, and takes a new one
       * without error while keeping only what the mode can say. */
      g_test_skip ("Wine keeps no file DACLs (it derives them from the Unix mode)");
      return;
    }
  g_assert_true (g_str_has_prefix (dacl, "D:P(A;;FA;;;SY)(A;;FA;;;BA)"));
  if (GPOINTER_TO_INT (data))
    g_assert_cmpstr (dacl, ==, "D:P(A;;FA;;;SY)(A;;FA;;;BA)");
  else
    {
      /* One more entry, the last: the user's own SID. */
      const char *user = dacl + strlen ("D:P(A;;FA;;;SY)(A;;FA;;;BA)");

      g_assert_true (g_str_has_prefix (user, "(A;;FA;;;S-1-5-"));
      g_assert_cmpuint (strchr (user, ')') - user + 1, ==, strlen (user));
    }

  /* Replacing the file keeps it narrow. */
  before = g_steal_pointer (&dacl);
  save_ok (f->store, "proxy.example.com:443", "alice", "pw2");
  dacl = file_dacl (f->path);
  g_assert_cmpstr (dacl, ==, before);
}
#endif

static void
test_free_null (void)
{
  ph_secret_free (NULL);
  ph_secret_store_free (NULL);
  ph_secret_free (g_strdup ("wiped then freed"));
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);

#define ADD(name, func)                                                                            \
  g_test_add ("/pinhole/secret/" name, Fixture, NULL, fixture_setup, func, fixture_teardown)
  ADD ("file-round-trip", test_round_trip);
  ADD ("file-odd-bytes", test_odd_bytes);
#ifdef G_OS_UNIX
  ADD ("file-modes", test_modes);
  ADD ("file-atomic-replace", test_atomic_replace);
  ADD ("file-refuses-readable", test_refuses_readable);
  ADD ("file-refuses-foreign-owner", test_refuses_foreign_owner);
#endif
  ADD ("file-refuses-not-base64", test_refuses_not_base64);
  ADD ("file-missing-entry", test_missing_entry);
  ADD ("file-missing-file", test_missing_file);
#undef ADD
#ifdef G_OS_WIN32
#define ADD_DPAPI(name, func)                                                                      \
  g_test_add ("/pinhole/secret/dpapi-user-" name, Fixture, GINT_TO_POINTER (FALSE), dpapi_setup,   \
              func, fixture_teardown);                                                             \
  g_test_add ("/pinhole/secret/dpapi-machine-" name, Fixture, GINT_TO_POINTER (TRUE), dpapi_setup, \
              func, fixture_teardown)
  ADD_DPAPI ("round-trip", test_dpapi_round_trip);
  ADD_DPAPI ("odd-bytes", test_dpapi_odd_bytes);
  ADD_DPAPI ("no-plaintext", test_dpapi_no_plaintext);
  ADD_DPAPI ("blob-binding", test_dpapi_blob_binding);
  ADD_DPAPI ("missing-entry", test_dpapi_missing_entry);
  ADD_DPAPI ("dacl", test_dpapi_dacl);
#undef ADD_DPAPI
#endif
  g_test_add_func ("/pinhole/secret/free-null", test_free_null);

  return g_test_run ();
}

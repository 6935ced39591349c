/* test-secret.c: unit tests for the file store of platform/ph-secret.h: round trips, odd
 * bytes, the file's mode and atomic replacement, and refusing a file others can read. */
#include "ph-secret.h"
#include "ph-test-util.h"
#include "ph-error.h"

#include <string.h>
#include <sys/stat.h>
#include <glib/gstdio.h>
#include <unistd.h>

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

static void
save_ok (PhSecretStore *store, const char *upstream, const char *username, const char *password)
{
  g_autoptr (GError) error = NULL;

  g_assert_true (ph_secret_store_save (store, upstream, username, password, &error));
  g_assert_no_error (error);
}

/* Asserts that @username at @upstream has @expected, or nothing when @expected is NULL. */
static void
assert_lookup (PhSecretStore *store, const char *upstream, const char *username,
               const char *expected)
{
  g_autoptr (GError) error = NULL;
  char *password = (char *) "untouched";

  g_assert_true (ph_secret_store_lookup (store, upstream, username, &password, &error));
  g_assert_no_error (error);
  g_assert_cmpstr (password, ==, expected);
  ph_secret_free (password);
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
  ADD ("file-modes", test_modes);
  ADD ("file-atomic-replace", test_atomic_replace);
  ADD ("file-refuses-readable", test_refuses_readable);
  ADD ("file-refuses-foreign-owner", test_refuses_foreign_owner);
  ADD ("file-refuses-not-base64", test_refuses_not_base64);
  ADD ("file-missing-entry", test_missing_entry);
  ADD ("file-missing-file", test_missing_file);
#undef ADD
  g_test_add_func ("/pinhole/secret/free-null", test_free_null);

  return g_test_run ();
}

/* test-secret-service.c: the Secret Service store of platform/ph-secret.h against a real
 * gnome-keyring-daemon on a private bus, with HOME and the XDG directories in a temp dir. */
#include "ph-secret.h"
#include "ph-test-secret.h"
#include "ph-error.h"
#include "ph-test-util.h"

#include <signal.h>
#include <string.h>
#include <gio/gio.h>
#include <glib/gstdio.h>

#define PROBE_PASSWORD "probe-Zq7 pw:with=odd\nbytes ключ"

/* Set up once for the whole binary by environment_up(). */
static struct
{
  gboolean tried;
  char *missing; /* a missing tool or feature: skip, or fail under CI */
  char *broken;  /* present but not working: always a failure */
  char *root;
  char *keyring_dir;
  GTestDBus *bus;
  GDBusConnection *connection;
  GSubprocess *daemon;
} env;

static gboolean
under_ci (void)
{
  return g_strcmp0 (g_getenv ("CI"), "true") == 0;
}

/* The keyring daemon gets its own directories under @root (ph_test_keyring_start); this
 * process must not reach the caller's keyring either, nor prompt on their display. */
static void
isolate_home (const char *root)
{
  g_setenv ("HOME", root, TRUE);
  g_unsetenv ("GNOME_KEYRING_CONTROL");
  g_unsetenv ("DISPLAY");
  g_unsetenv ("WAYLAND_DISPLAY");
  g_setenv ("SECRET_BACKEND", "service", TRUE);
}

static gboolean
start_keyring (void)
{
  g_autoptr (GError) error = NULL;

  env.daemon = ph_test_keyring_start (env.root, &error);
  if (env.daemon == NULL)
    env.broken = g_strdup (error->message);
  return env.daemon != NULL;
}

static gboolean
environment_up (void)
{
  g_autoptr (GError) error = NULL;
  g_autoptr (PhSecretStore) probe = NULL;
  const char *const tools[] = { "dbus-daemon", "gnome-keyring-daemon" };

  if (env.tried)
    return env.missing == NULL && env.broken == NULL;
  env.tried = TRUE;

  probe = ph_secret_store_new_service (&error);
  if (probe == NULL)
    {
      env.missing = g_strdup (error->message);
      return FALSE;
    }
  for (guint i = 0; i < G_N_ELEMENTS (tools); i++)
    {
      g_autofree char *found = g_find_program_in_path (tools[i]);
      if (found == NULL)
        {
          env.missing = g_strdup_printf ("%s is not installed", tools[i]);
          return FALSE;
        }
    }

  env.root = g_dir_make_tmp ("pinhole-keyring-XXXXXX", &error);
  g_assert_no_error (error);
  isolate_home (env.root);
  env.keyring_dir = g_build_filename (env.root, "data", "keyrings", NULL);

  env.bus = g_test_dbus_new (G_TEST_DBUS_NONE);
  g_test_dbus_up (env.bus);
  env.connection = g_bus_get_sync (G_BUS_TYPE_SESSION, NULL, &error);
  g_assert_no_error (error);
  /* The bus goes away before this process ends; that must not end it early. */
  g_dbus_connection_set_exit_on_close (env.connection, FALSE);

  return start_keyring ();
}

static void
environment_down (void)
{
  ph_test_keyring_stop (g_steal_pointer (&env.daemon));
  /* Not g_test_dbus_down(): libsecret keeps the bus connection for the life of the process, and
   * that function would wait for it to be freed. */
  if (env.bus != NULL)
    g_test_dbus_stop (env.bus);
  if (env.root != NULL)
    ph_test_remove_tree (env.root);
}

/* Each test starts with this: FALSE means it has been skipped or failed already. */
static PhSecretStore *
service_store (void)
{
  g_autoptr (GError) error = NULL;
  PhSecretStore *store;

  if (!environment_up ())
    {
      if (env.broken != NULL)
        g_test_fail_printf ("%s", env.broken);
      else if (under_ci ())
        g_test_fail_printf ("%s (required when CI=true)", env.missing);
      else
        g_test_skip (env.missing);
      return NULL;
    }
  store = ph_secret_store_new_service (&error);
  g_assert_no_error (error);
  return store;
}

static void
test_round_trip (void)
{
  g_autoptr (PhSecretStore) store = service_store ();
  g_autoptr (GError) error = NULL;

  if (store == NULL)
    return;
  g_assert_cmpstr (ph_secret_store_describe (store), ==, "Secret Service");

  assert_lookup (store, "proxy.example.com:443", "alice", NULL);
  save_ok (store, "proxy.example.com:443", "alice", "alice-pw");
  save_ok (store, "proxy.example.com:443", "bob", "bob pw:=\nзначение");
  save_ok (store, "[2001:db8::1]:8443", "alice", "alice-v6");

  assert_lookup (store, "proxy.example.com:443", "alice", "alice-pw");
  assert_lookup (store, "proxy.example.com:443", "bob", "bob pw:=\nзначение");
  assert_lookup (store, "[2001:db8::1]:8443", "alice", "alice-v6");
  /* Neither another upstream nor another user finds anything. */
  assert_lookup (store, "other.example.com:443", "alice", NULL);
  assert_lookup (store, "proxy.example.com:443", "carol", NULL);

  /* Saving again replaces rather than adding a second item. */
  save_ok (store, "proxy.example.com:443", "alice", "alice-new");
  assert_lookup (store, "proxy.example.com:443", "alice", "alice-new");

  g_assert_true (ph_secret_store_clear (store, "proxy.example.com:443", &error));
  g_assert_no_error (error);
  assert_lookup (store, "proxy.example.com:443", "alice", NULL);
  assert_lookup (store, "proxy.example.com:443", "bob", NULL);
  assert_lookup (store, "[2001:db8::1]:8443", "alice", "alice-v6");

  /* Clearing what is not there is not an error. */
  g_assert_true (ph_secret_store_clear (store, "proxy.example.com:443", &error));
  g_assert_no_error (error);
  g_assert_true (ph_secret_store_clear (store, "[2001:db8::1]:8443", &error));
  g_assert_no_error (error);
}

static gboolean
contains (const char *data, gsize len, const char *needle)
{
  gsize n = strlen (needle);

  for (gsize i = 0; n <= len && i <= len - n; i++)
    if (memcmp (data + i, needle, n) == 0)
      return TRUE;
  return FALSE;
}

/* Fails if @needle occurs in any regular file under @dir. Returns how many files were read. */
static guint
assert_not_in_files (const char *dir, const char *needle)
{
  g_autoptr (GDir) d = g_dir_open (dir, 0, NULL);
  const char *name;
  guint files = 0;

  while (d != NULL && (name = g_dir_read_name (d)) != NULL)
    {
      g_autofree char *child = g_build_filename (dir, name, NULL);
      g_autofree char *contents = NULL;
      gsize len = 0;

      if (g_file_test (child, G_FILE_TEST_IS_SYMLINK))
        continue;
      if (g_file_test (child, G_FILE_TEST_IS_DIR))
        {
          files += assert_not_in_files (child, needle);
          continue;
        }
      if (!g_file_test (child, G_FILE_TEST_IS_REGULAR)
          || !g_file_get_contents (child, &contents, &len, NULL))
        continue;
      files++;
      if (contains (contents, len, needle))
        g_test_fail_printf ("%s holds the password in clear text", child);
    }
  return files;
}

/* The login keyring's file, which is binary; NULL until it exists. */
static GBytes *
read_keyring (void)
{
  g_autofree char *path = g_build_filename (env.keyring_dir, "login.keyring", NULL);
  char *contents = NULL;
  gsize len = 0;

  if (!g_file_get_contents (path, &contents, &len, NULL))
    return NULL;
  return g_bytes_new_take (contents, len);
}

static void
test_not_in_clear (void)
{
  g_autoptr (PhSecretStore) store = service_store ();
  g_autoptr (GError) error = NULL;
  g_autoptr (GBytes) before = NULL;
  g_autoptr (GBytes) after = NULL;
  g_autofree char *encoded = NULL;
  guint files;

  if (store == NULL)
    return;
  before = read_keyring ();
  save_ok (store, "probe.example.com:443", "probe", PROBE_PASSWORD);
  assert_lookup (store, "probe.example.com:443", "probe", PROBE_PASSWORD);

  /* The item went to the login keyring on disk, not to a collection that lives in memory, so
   * the search below looks where the password is. */
  after = read_keyring ();
  g_assert_nonnull (after);
  g_assert_true (before == NULL || !g_bytes_equal (before, after));

  encoded = g_base64_encode ((const guchar *) PROBE_PASSWORD, strlen (PROBE_PASSWORD));
  files = assert_not_in_files (env.root, PROBE_PASSWORD);
  assert_not_in_files (env.root, "probe-Zq7");
  assert_not_in_files (env.root, encoded);
  g_test_message ("searched %u files under %s", files, env.root);
  g_assert_cmpuint (files, >, 0);

  g_assert_true (ph_secret_store_clear (store, "probe.example.com:443", &error));
  g_assert_no_error (error);
}

int
main (int argc, char **argv)
{
  int status;

  g_test_init (&argc, &argv, NULL);

  g_test_add_func ("/pinhole/secret/service-round-trip", test_round_trip);
  g_test_add_func ("/pinhole/secret/service-not-in-clear", test_not_in_clear);

  status = g_test_run ();
  environment_down ();
  return status;
}

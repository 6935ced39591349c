/* SPDX-License-Identifier: GPL-2.0-or-later */
/* test-secret-service.c: the Secret Service store of platform/ph-secret.h against a real
 * gnome-keyring-daemon on a private bus, with HOME and the XDG directories in a temp dir; with
 * a login keyring, and without one (where the store falls back to a private file). */
#include "ph-secret.h"
#include "ph-test-secret.h"
#include "ph-error.h"
#include "ph-test-util.h"

#include <signal.h>
#include <string.h>
#include <sys/stat.h>
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
  /* Where the store falls back to: the session agent's default, under XDG_STATE_HOME. */
  char *fallback_path;
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
  g_autofree char *state = g_build_filename (root, "state", NULL);

  g_setenv ("HOME", root, TRUE);
  g_setenv ("XDG_STATE_HOME", state, TRUE);
  g_unsetenv ("GNOME_KEYRING_CONTROL");
  g_unsetenv ("DISPLAY");
  g_unsetenv ("WAYLAND_DISPLAY");
  g_setenv ("SECRET_BACKEND", "service", TRUE);
}

static gboolean
start_keyring (gboolean login_keyring)
{
  g_autoptr (GError) error = NULL;

  env.daemon = ph_test_keyring_start_full (env.root, login_keyring, &error);
  if (env.daemon == NULL)
    env.broken = g_strdup (error->message);
  return env.daemon != NULL;
}

/* What these tests need and this machine lacks; NULL when nothing is missing. */
static char *
missing_prerequisite (void)
{
  g_autoptr (GError) error = NULL;
  g_autoptr (PhSecretStore) probe = NULL;
  const char *const tools[] = { "dbus-daemon", "gnome-keyring-daemon" };

  /* Not ph_secret_store_new_service(): its default path would fix GLib's idea of
   * XDG_STATE_HOME before isolate_home() has moved it. The path is never used. */
  probe = ph_secret_store_new_service_with_fallback ("unused", &error);
  if (probe == NULL)
    return g_strdup (error->message);
  for (guint i = 0; i < G_N_ELEMENTS (tools); i++)
    {
      g_autofree char *found = g_find_program_in_path (tools[i]);
      if (found == NULL)
        return g_strdup_printf ("%s is not installed", tools[i]);
    }
  return NULL;
}

/* A private bus and gnome-keyring-daemon, with or without a login keyring; once per process,
 * since libsecret keeps its connection to the first Secret Service it met. */
static gboolean
environment_up (gboolean login_keyring)
{
  g_autoptr (GError) error = NULL;

  if (env.tried)
    return env.missing == NULL && env.broken == NULL;
  env.tried = TRUE;

  env.missing = missing_prerequisite ();
  if (env.missing != NULL)
    return FALSE;

  env.root = g_dir_make_tmp ("pinhole-keyring-XXXXXX", &error);
  g_assert_no_error (error);
  isolate_home (env.root);
  env.keyring_dir = g_build_filename (env.root, "data", "keyrings", NULL);
  env.fallback_path = g_build_filename (env.root, "state", "pinhole", "credentials", NULL);

  env.bus = g_test_dbus_new (G_TEST_DBUS_NONE);
  g_test_dbus_up (env.bus);
  env.connection = g_bus_get_sync (G_BUS_TYPE_SESSION, NULL, &error);
  g_assert_no_error (error);
  /* The bus goes away before this process ends; that must not end it early. */
  g_dbus_connection_set_exit_on_close (env.connection, FALSE);

  return start_keyring (login_keyring);
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

/* Skips the test for @missing, or fails it under CI. */
static void
skip_unless_ci (const char *missing)
{
  if (under_ci ())
    g_test_fail_printf ("%s (required when CI=true)", missing);
  else
    g_test_skip (missing);
}

/* Where the store falls back to: the session agent's default, or its --state-dir @state_dir
 * (under the test's root). */
static char *
fallback_path (const char *state_dir)
{
  if (state_dir == NULL)
    return g_strdup (env.fallback_path);
  return g_build_filename (env.root, state_dir, "credentials", NULL);
}

/* The store as the session agent opens it, with the fallback_path() of @state_dir. */
static PhSecretStore *
open_service (const char *state_dir)
{
  g_autoptr (GError) error = NULL;
  g_autofree char *path = fallback_path (state_dir);
  PhSecretStore *store;

  if (state_dir == NULL)
    store = ph_secret_store_new_service (&error);
  else
    store = ph_secret_store_new_service_with_fallback (path, &error);
  g_assert_no_error (error);
  return store;
}

/* Each test starts with this: NULL means it has been skipped or failed already. */
static PhSecretStore *
service_store_in (gboolean login_keyring, const char *state_dir)
{
  if (!environment_up (login_keyring))
    {
      if (env.broken != NULL)
        g_test_fail_printf ("%s", env.broken);
      else
        skip_unless_ci (env.missing);
      return NULL;
    }
  return open_service (state_dir);
}

static PhSecretStore *
service_store (void)
{
  return service_store_in (TRUE, NULL);
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

  /* With a login keyring there is nothing to fall back from. */
  g_assert_false (g_file_test (env.fallback_path, G_FILE_TEST_EXISTS));
  g_assert_cmpstr (ph_secret_store_describe (store), ==, "Secret Service");
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

/* What the store logged, seen by a handler on its log domain. */
typedef struct
{
  const char *fallback_path;
  guint fallbacks; /* messages that name the fallback file */
} LogCounts;

static void
count_log (const char *domain, GLogLevelFlags level, const char *message, gpointer data)
{
  LogCounts *counts = data;

  if (strstr (message, counts->fallback_path) != NULL)
    counts->fallbacks++;
  if (strstr (message, PROBE_PASSWORD) != NULL || strstr (message, "probe-Zq7") != NULL)
    g_test_fail_printf ("a log message holds the password: %s", message);
  g_log_default_handler (domain, level, message, NULL);
}

/* Fails if a keyring file was written under @dir: the store must not have made a collection
 * on disk that the tests then miss. */
static void
assert_no_keyring_file (const char *dir)
{
  g_autoptr (GDir) d = g_dir_open (dir, 0, NULL);
  const char *name;

  while (d != NULL && (name = g_dir_read_name (d)) != NULL)
    if (g_str_has_suffix (name, ".keyring"))
      g_test_fail_printf ("%s/%s was written", dir, name);
}

/* gnome-keyring-daemon without a login keyring and nobody to prompt: an SSH session. The
 * default alias names no collection and creating one needs a prompt that cannot be shown, so
 * the store falls back to the session agent's private file, says so once, and reads from it.
 * @data: the agent's --state-dir, or NULL for its default. */
static void
no_login_keyring (gconstpointer data)
{
  const char *state_dir = data;
  g_autoptr (PhSecretStore) store = service_store_in (FALSE, state_dir);
  g_autoptr (PhSecretStore) again = NULL;
  g_autoptr (PhSecretStore) file = NULL;
  g_autoptr (GError) error = NULL;
  g_autofree char *path = NULL;
  g_autofree char *description = NULL;
  LogCounts counts = { 0 };
  GStatBuf st;
  gboolean saved;
  guint handler;

  if (store == NULL)
    return;
  path = fallback_path (state_dir);
  counts.fallback_path = path;
  handler = g_log_set_handler ("pinhole-secret", G_LOG_LEVEL_MASK | G_LOG_FLAG_FATAL, count_log,
                               &counts);

  assert_lookup (store, "proxy.example.com:443", "alice", NULL);
  /* The Secret Service's error, if any, says more than a FALSE would. */
  saved = ph_secret_store_save (store, "proxy.example.com:443", "alice", PROBE_PASSWORD, &error);
  g_assert_no_error (error);
  g_assert_true (saved);
  g_assert_cmpuint (counts.fallbacks, ==, 1);
  /* The daemon's "stored in ..." message names the file, as it does without a Secret Service. */
  description = g_strdup_printf ("file %s", path);
  g_assert_cmpstr (ph_secret_store_describe (store), ==, description);
  save_ok (store, "proxy.example.com:443", "bob", "bob-pw");
  save_ok (store, "[2001:db8::1]:8443", "alice", "alice-v6");
  save_ok (store, "proxy.example.com:443", "alice", PROBE_PASSWORD);
  assert_lookup (store, "proxy.example.com:443", "alice", PROBE_PASSWORD);
  assert_lookup (store, "proxy.example.com:443", "bob", "bob-pw");
  assert_lookup (store, "proxy.example.com:443", "carol", NULL);
  g_assert_cmpuint (counts.fallbacks, ==, 1);

  /* It went to the file, a private one, and nowhere else. */
  g_assert_cmpint (g_stat (path, &st), ==, 0);
  g_assert_cmpint (st.st_mode & 07777, ==, 0600);
  g_assert_true (S_ISREG (st.st_mode));
  if (state_dir != NULL)
    g_assert_false (g_file_test (env.fallback_path, G_FILE_TEST_EXISTS));
  file = ph_secret_store_new_file (path);
  assert_lookup (file, "proxy.example.com:443", "alice", PROBE_PASSWORD);
  assert_lookup (file, "[2001:db8::1]:8443", "alice", "alice-v6");
  assert_no_keyring_file (env.keyring_dir);

  /* The next run of the agent finds what this one stored, and clears it there. */
  again = open_service (state_dir);
  assert_lookup (again, "proxy.example.com:443", "alice", PROBE_PASSWORD);
  assert_lookup (again, "[2001:db8::1]:8443", "alice", "alice-v6");
  g_assert_true (ph_secret_store_clear (again, "proxy.example.com:443", &error));
  g_assert_no_error (error);
  assert_lookup (again, "proxy.example.com:443", "alice", NULL);
  assert_lookup (file, "proxy.example.com:443", "bob", NULL);
  assert_lookup (again, "[2001:db8::1]:8443", "alice", "alice-v6");
  g_assert_cmpuint (counts.fallbacks, ==, 1);

  g_log_remove_handler ("pinhole-secret", handler);
}

/* In a process of its own: libsecret keeps the first Secret Service it meets, and the other
 * cases' has a login keyring. */
static void
test_no_login_keyring (gconstpointer data)
{
  g_autofree char *missing = NULL;

  if (g_test_subprocess ())
    {
      no_login_keyring (data);
      return;
    }
  missing = missing_prerequisite ();
  if (missing != NULL)
    {
      skip_unless_ci (missing);
      return;
    }
  g_test_trap_subprocess (NULL, 60 * G_USEC_PER_SEC, G_TEST_SUBPROCESS_INHERIT_STDERR);
  g_test_trap_assert_passed ();
}

int
main (int argc, char **argv)
{
  int status;

  g_test_init (&argc, &argv, NULL);

  g_test_add_func ("/pinhole/secret/service-round-trip", test_round_trip);
  g_test_add_func ("/pinhole/secret/service-not-in-clear", test_not_in_clear);
  g_test_add_data_func ("/pinhole/secret/service-no-login-keyring", NULL, test_no_login_keyring);
  g_test_add_data_func ("/pinhole/secret/service-no-login-keyring-state-dir", "agent-state",
                        test_no_login_keyring);

  status = g_test_run ();
  environment_down ();
  return status;
}

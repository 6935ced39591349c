/* SPDX-License-Identifier: GPL-2.0-or-later */
/* ph-test-util.c: see ph-test-util.h. */
#include "ph-test-util.h"

#ifdef G_OS_UNIX
#include <signal.h>
#endif
#include <string.h>
#include <glib/gstdio.h>

#ifdef G_OS_UNIX
static gboolean
name_has_owner (GDBusConnection *connection, const char *name)
{
  g_autoptr (GVariant) reply = NULL;
  gboolean owned = FALSE;

  reply = g_dbus_connection_call_sync (connection, "org.freedesktop.DBus", "/org/freedesktop/DBus",
                                       "org.freedesktop.DBus", "NameHasOwner",
                                       g_variant_new ("(s)", name), G_VARIANT_TYPE ("(b)"),
                                       G_DBUS_CALL_FLAGS_NONE, -1, NULL, NULL);
  if (reply != NULL)
    g_variant_get (reply, "(b)", &owned);
  return owned;
}

GSubprocess *
ph_test_keyring_start (const char *root, GError **error)
{
  return ph_test_keyring_start_full (root, TRUE, error);
}

GSubprocess *
ph_test_keyring_start_full (const char *root, gboolean login_keyring, GError **error)
{
  static const struct
  {
    const char *var, *sub;
  } dirs[] = {
    { "HOME", "" },
    { "XDG_DATA_HOME", "data" },
    { "XDG_CONFIG_HOME", "config" },
    { "XDG_CACHE_HOME", "cache" },
    { "XDG_RUNTIME_DIR", "run" },
  };
  g_autoptr (GSubprocessLauncher) launcher = g_subprocess_launcher_new (
      G_SUBPROCESS_FLAGS_STDIN_PIPE | G_SUBPROCESS_FLAGS_STDOUT_SILENCE);
  g_autoptr (GDBusConnection) connection = NULL;
  g_autoptr (GSubprocess) daemon = NULL;
  const char *argv[]
      = { "gnome-keyring-daemon", "--foreground", "--components=secrets", NULL, NULL };
  GOutputStream *in;
  gint64 deadline;

  for (guint i = 0; i < G_N_ELEMENTS (dirs); i++)
    {
      g_autofree char *dir = g_build_filename (root, dirs[i].sub, NULL);
      g_assert_cmpint (g_mkdir_with_parents (dir, 0700), ==, 0);
      g_subprocess_launcher_setenv (launcher, dirs[i].var, dir, TRUE);
    }
  /* Nothing may reach the caller's own keyring, nor prompt on their display. */
  g_subprocess_launcher_unsetenv (launcher, "GNOME_KEYRING_CONTROL");
  g_subprocess_launcher_unsetenv (launcher, "DISPLAY");
  g_subprocess_launcher_unsetenv (launcher, "WAYLAND_DISPLAY");

  connection = g_bus_get_sync (G_BUS_TYPE_SESSION, NULL, error);
  if (connection == NULL)
    return NULL;
  /* --unlock makes the login keyring (or opens it) with the password read from stdin. */
  argv[3] = login_keyring ? "--unlock" : NULL;
  daemon = g_subprocess_launcher_spawnv (launcher, argv, error);
  if (daemon == NULL)
    return NULL;
  in = g_subprocess_get_stdin_pipe (daemon);
  if ((login_keyring
       && !g_output_stream_write_all (in, PH_TEST_KEYRING_PASSWORD,
                                      strlen (PH_TEST_KEYRING_PASSWORD), NULL, NULL, error))
      || !g_output_stream_close (in, NULL, error))
    return NULL;

  deadline = g_get_monotonic_time () + 20 * G_TIME_SPAN_SECOND;
  while (!name_has_owner (connection, "org.freedesktop.secrets"))
    {
      /* The identifier goes once the child has been reaped. */
      if (g_subprocess_get_identifier (daemon) == NULL)
        {
          g_set_error_literal (error, G_IO_ERROR, G_IO_ERROR_FAILED,
                               "gnome-keyring-daemon exited before owning "
                               "org.freedesktop.secrets (see its messages above)");
          return NULL;
        }
      if (g_get_monotonic_time () > deadline)
        {
          g_set_error_literal (error, G_IO_ERROR, G_IO_ERROR_TIMED_OUT,
                               "gnome-keyring-daemon did not own org.freedesktop.secrets "
                               "within 20 s");
          return NULL;
        }
      g_usleep (50 * 1000);
    }
  return g_steal_pointer (&daemon);
}

void
ph_test_keyring_stop (GSubprocess *daemon)
{
  if (daemon == NULL)
    return;
  g_subprocess_send_signal (daemon, SIGTERM);
  g_subprocess_wait (daemon, NULL, NULL);
  g_object_unref (daemon);
}

#endif

void
ph_test_remove_tree (const char *path)
{
  g_autoptr (GDir) dir = g_dir_open (path, 0, NULL);
  const char *name;

  while (dir != NULL && (name = g_dir_read_name (dir)) != NULL)
    {
      g_autofree char *child = g_build_filename (path, name, NULL);
      if (g_file_test (child, G_FILE_TEST_IS_DIR) && !g_file_test (child, G_FILE_TEST_IS_SYMLINK))
        ph_test_remove_tree (child);
      else
        g_unlink (child);
    }
  g_rmdir (path);
}

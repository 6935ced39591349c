/* SPDX-License-Identifier: GPL-2.0-or-later */
/* test-tray.c: pinhole-tray in a real X server (Xvfb) with a real tray host
 * (trayer) and notification server (dunst), against the real agent on a
 * private bus (GTestDBus) and real stunnel + Squid. The system proxy is
 * GNOME's real schema on GSettings' keyfile backend in a temp dir.
 * Screenshots of the menu, the settings, the diagnosis and the connections windows are saved as
 * artifacts. */
#include "ph-build-config.h"
#include "ph-agent1-generated.h"
#include "ph-connections-window.h"
#include "ph-diagnose-window.h"
#include "ph-error.h"
#include "ph-names.h"
#include "ph-settings-window.h"
#include "ph-test-cloud.h"
#include "ph-test-util.h"
#include "ph-tray-app.h"
#include "ph-tray-proxy.h"
#include "ph-tray-report.h"

#include <locale.h>
#include <signal.h>
#include <unistd.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <glib/gi18n.h>
#include <glib/gstdio.h>

#define WAIT_MS 20000

static struct
{
  gboolean skip;
  char *skip_reason;
  char *dir;
  char *lang; /* "en" or "zh_CN", for artifact names */
  char *artifacts;
  PhTestCloud *cloud;
  GTestDBus *bus;
  GPtrArray *procs; /* Xvfb, trayer, dunst, the agent */
  GSubprocess *agent;
  PhAgent1 *proxy;
  guint16 port;
  GSettings *gnome_proxy;
  PhTrayApp *app;
} env;

static void
die_with_parent (gpointer data)
{
  prctl (PR_SET_PDEATHSIG, SIGTERM);
}

static GSubprocess *
spawn (const char *log_name, const char *const *argv)
{
  g_autoptr (GSubprocessLauncher) launcher = g_subprocess_launcher_new (G_SUBPROCESS_FLAGS_NONE);

  /* The tray would abort on GTK's own GtkStatusIcon critical (see log_writer); its log is
   * checked for any other one instead. */
  if (strstr (argv[0], "pinhole-tray") != NULL)
    g_subprocess_launcher_unsetenv (launcher, "G_DEBUG");
  g_autofree char *log = g_build_filename (env.dir, log_name, NULL);
  g_autoptr (GError) error = NULL;
  GSubprocess *proc;

  g_subprocess_launcher_set_stderr_file_path (launcher, log);
  g_subprocess_launcher_set_stdout_file_path (launcher, "/dev/null");
  g_subprocess_launcher_set_child_setup (launcher, die_with_parent, NULL, NULL);
  proc = g_subprocess_launcher_spawnv (launcher, argv, &error);
  g_assert_no_error (error);
  g_ptr_array_add (env.procs, proc);
  return proc;
}

static gboolean
wait_until (gboolean (*check) (gconstpointer), gconstpointer arg)
{
  gint64 deadline = g_get_monotonic_time () + WAIT_MS * G_TIME_SPAN_MILLISECOND;

  while (!check (arg))
    {
      if (g_get_monotonic_time () > deadline)
        return FALSE;
      g_main_context_iteration (NULL, FALSE);
      g_usleep (5000);
    }
  return TRUE;
}

/* Lets GTK draw what it was asked to. */
static void
settle (guint ms)
{
  gint64 until = g_get_monotonic_time () + ms * G_TIME_SPAN_MILLISECOND;

  while (g_get_monotonic_time () < until)
    {
      while (g_main_context_iteration (NULL, FALSE))
        ;
      g_usleep (5000);
    }
}

static gboolean
agent_state_is (gconstpointer want)
{
  return g_strcmp0 (ph_agent1_get_state (env.proxy), want) == 0;
}

static gboolean
proxy_mode_is (gconstpointer want)
{
  g_autofree char *mode = NULL;

  /* Another process writes the keyfile: read it fresh. */
  g_settings_sync ();
  mode = g_settings_get_string (env.gnome_proxy, "mode");
  return g_strcmp0 (mode, want) == 0;
}

static char *
settings_get (const char *schema, const char *key)
{
  g_autoptr (GSettings) s = g_settings_new (schema);
  g_autoptr (GVariant) v = g_settings_get_value (s, key);
  return g_variant_print (v, FALSE);
}

static void
screenshot (const char *name)
{
  g_autofree char *file = g_strdup_printf ("%s-%s.png", name, env.lang);
  g_autofree char *path = g_build_filename (env.artifacts, file, NULL);
  g_autofree char *out = NULL;
  g_autoptr (GError) error = NULL;
  int status = 0;
  const char *argv[] = { "import", "-window", "root", path, NULL };

  settle (400);
  g_spawn_sync (NULL, (char **) argv, NULL, G_SPAWN_SEARCH_PATH, NULL, NULL, &out, NULL, &status,
                &error);
  g_assert_no_error (error);
  g_assert_true (g_spawn_check_wait_status (status, NULL));
  g_assert_true (g_file_test (path, G_FILE_TEST_EXISTS));
  g_test_message ("screenshot: %s", path);
}

/* TRUE once the X server on display @n accepts connections on its socket. */
static gboolean
x_server_listens (guint n)
{
  struct sockaddr_un addr = { .sun_family = AF_UNIX };
  int fd = socket (AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  gboolean ok;

  g_snprintf (addr.sun_path, sizeof addr.sun_path, "/tmp/.X11-unix/X%u", n);
  ok = fd >= 0 && connect (fd, (struct sockaddr *) &addr, sizeof addr) == 0;
  if (fd >= 0)
    close (fd);
  return ok;
}

/* A display number of our own (not the lowest free one, which the last run
 * may still be letting go of), and Xvfb on it. */
static void
start_display (void)
{
  g_autoptr (GSubprocessLauncher) launcher = g_subprocess_launcher_new (G_SUBPROCESS_FLAGS_NONE);
  g_autoptr (GError) error = NULL;
  g_autofree char *display = NULL;
  g_autofree char *xvfb_log = g_build_filename (env.dir, "xvfb.log", NULL);
  GSubprocess *xvfb;
  guint n = 0;

  for (guint tries = 0; tries < 100; tries++)
    {
      g_autofree char *lock = NULL;
      n = 100 + g_random_int_range (0, 800);
      lock = g_strdup_printf ("/tmp/.X%u-lock", n);
      if (!g_file_test (lock, G_FILE_TEST_EXISTS))
        break;
    }
  display = g_strdup_printf (":%u", n);
  g_subprocess_launcher_set_child_setup (launcher, die_with_parent, NULL, NULL);
  g_subprocess_launcher_set_stderr_file_path (launcher, xvfb_log);
  xvfb = g_subprocess_launcher_spawn (launcher, &error, "Xvfb", display, "-screen", "0",
                                      "1024x768x24", "-nolisten", "tcp", NULL);
  g_assert_no_error (error);
  g_ptr_array_add (env.procs, xvfb);
  g_setenv ("DISPLAY", display, TRUE);
  /* A client started before the server listens exits at once ("cannot open display"):
   * dunst did so on a loaded CI machine, and every notification was then lost. */
  for (gint64 deadline = g_get_monotonic_time () + WAIT_MS * G_TIME_SPAN_MILLISECOND;
       !x_server_listens (n);)
    {
      g_autofree char *log = NULL;
      if (g_get_monotonic_time () > deadline || g_subprocess_get_identifier (xvfb) == NULL)
        {
          g_file_get_contents (xvfb_log, &log, NULL, NULL);
          g_error ("Xvfb %s does not accept clients; it said:\n%s", display, log ? log : "");
        }
      g_usleep (20 * 1000);
    }
}

static gboolean
agent_on_bus (gconstpointer unused)
{
  g_autofree char *owner = g_dbus_proxy_get_name_owner (G_DBUS_PROXY (env.proxy));

  return owner != NULL && ph_agent1_get_state (env.proxy) != NULL;
}

/* A macro, so that @error is read after @call set it (arguments have no order). */
#define agent_call_ok(call, error)                                                                 \
  G_STMT_START                                                                                     \
  {                                                                                                \
    gboolean ok_ = (call);                                                                         \
    g_assert_no_error (error);                                                                     \
    g_assert_true (ok_);                                                                           \
  }                                                                                                \
  G_STMT_END

static void
setup_agent (void)
{
  g_autoptr (GError) error = NULL;
  g_autofree char *port = g_strdup_printf ("%u", env.cloud->tls_port);
  g_autofree char *listen = NULL;
  g_autofree char *system_conf = g_build_filename (env.dir, "system.conf", NULL);
  g_autofree char *managed = g_build_filename (env.dir, "managed.d", NULL);
  const char *argv[] = { g_getenv ("PH_AGENT"), "--session", "--config", system_conf,
                         "--managed-dir",       managed,     NULL };

  g_assert_cmpint (g_mkdir_with_parents (managed, 0755), ==, 0);
  env.agent = spawn ("agent.log", argv);
  env.proxy
      = ph_agent1_proxy_new_for_bus_sync (G_BUS_TYPE_SESSION, G_DBUS_PROXY_FLAGS_NONE,
                                          PH_AGENT_BUS_NAME, PH_AGENT_OBJECT_PATH, NULL, &error);
  g_assert_no_error (error);
  g_assert_true (wait_until (agent_on_bus, NULL));
  env.port = ph_test_free_port ();
  listen = g_strdup_printf ("127.0.0.1:%u", env.port);
  agent_call_ok (
      ph_agent1_call_set_setting_sync (env.proxy, "upstream.host", "127.0.0.1", NULL, &error),
      error);
  agent_call_ok (ph_agent1_call_set_setting_sync (env.proxy, "upstream.port", port, NULL, &error),
                 error);
  agent_call_ok (ph_agent1_call_set_setting_sync (env.proxy, "upstream.server-name",
                                                  env.cloud->server_name, NULL, &error),
                 error);
  agent_call_ok (
      ph_agent1_call_set_setting_sync (env.proxy, "listener.address", listen, NULL, &error), error);
  agent_call_ok (ph_agent1_call_trust_pin_sync (env.proxy, env.cloud->pin, NULL, &error), error);
  agent_call_ok (ph_agent1_call_set_credentials_sync (env.proxy, env.cloud->user,
                                                      env.cloud->password, NULL, &error),
                 error);
  agent_call_ok (ph_agent1_call_enable_sync (env.proxy, NULL, &error), error);
  g_assert_true (wait_until (agent_state_is, "on"));
}

/* The office's own proxy setting before Pinhole: a PAC file. */
static void
set_corporate_pac (void)
{
  g_settings_set_string (env.gnome_proxy, "mode", "auto");
  g_settings_set_string (env.gnome_proxy, "autoconfig-url", "http://wpad.corp.example/proxy.pac");
  g_settings_sync ();
}

static gboolean
proxy_is_corporate_pac (gconstpointer unused)
{
  g_autofree char *url = NULL;

  if (!proxy_mode_is ("auto"))
    return FALSE;
  url = g_settings_get_string (env.gnome_proxy, "autoconfig-url");
  return g_strcmp0 (url, "http://wpad.corp.example/proxy.pac") == 0;
}

static void
assert_corporate_pac (void)
{
  g_autofree char *url = NULL;

  /* Both the office's and the agent's PAC are mode 'auto': the URL tells them apart. */
  wait_until (proxy_is_corporate_pac, NULL);
  g_assert_true (proxy_mode_is ("auto"));
  url = g_settings_get_string (env.gnome_proxy, "autoconfig-url");
  g_assert_cmpstr (url, ==, "http://wpad.corp.example/proxy.pac");
}

static gboolean
notifications_owned (gconstpointer unused)
{
  g_autoptr (GDBusConnection) bus = g_bus_get_sync (G_BUS_TYPE_SESSION, NULL, NULL);
  g_autoptr (GVariant) reply = NULL;
  gboolean owned = FALSE;

  if (bus == NULL)
    return FALSE;
  reply = g_dbus_connection_call_sync (
      bus, "org.freedesktop.DBus", "/org/freedesktop/DBus", "org.freedesktop.DBus", "NameHasOwner",
      g_variant_new ("(s)", "org.freedesktop.Notifications"), G_VARIANT_TYPE ("(b)"),
      G_DBUS_CALL_FLAGS_NONE, 1000, NULL, NULL);
  if (reply != NULL)
    g_variant_get (reply, "(b)", &owned);
  return owned;
}

/* dunst, owning org.freedesktop.Notifications on the test bus: a notification sent before
 * it does is lost. A dunst that exits is started once more; a second failure shows its log. */
static void
start_dunst (const char *const *argv)
{
  for (guint attempt = 0;; attempt++)
    {
      GSubprocess *dunst = spawn ("dunst.log", argv);
      g_autofree char *log_path = g_build_filename (env.dir, "dunst.log", NULL);
      g_autofree char *log = NULL;

      if (wait_until (notifications_owned, NULL))
        return;
      g_file_get_contents (log_path, &log, NULL, NULL);
      /* g_subprocess_get_identifier() is NULL once the process has exited. */
      if (attempt > 0 || g_subprocess_get_identifier (dunst) != NULL)
        g_error ("dunst did not take org.freedesktop.Notifications on the test bus (%s); it "
                 "said:\n%s",
                 g_subprocess_get_identifier (dunst) == NULL ? "it exited" : "it runs",
                 log ? log : "");
      g_printerr ("# dunst exited before taking its name; starting it again. It said:\n%s\n",
                  log ? log : "");
    }
}

static gboolean
env_up (void)
{
  const char *tools[] = { "Xvfb", "trayer", "dunst", "import", "xwininfo" };
  g_autoptr (GError) error = NULL;
  g_autofree char *schema = NULL;
  GSettingsSchemaSource *source = g_settings_schema_source_get_default ();
  g_autoptr (GSettingsSchema) gnome = NULL;
  const char *trayer[]
      = { "trayer",  "--edge", "top",      "--align", "right",         "--widthtype", "pixel",
          "--width", "120",    "--height", "28",      "--transparent", "false",       NULL };
  const char *dunst[] = { "dunst", NULL };

  for (guint i = 0; i < G_N_ELEMENTS (tools); i++)
    {
      g_autofree char *found = g_find_program_in_path (tools[i]);
      if (found == NULL)
        {
          g_autofree char *why = g_strdup_printf ("%s is not installed", tools[i]);
          if (g_strcmp0 (g_getenv ("CI"), "true") == 0)
            g_error ("%s (a missing peer is a failure under CI=true)", why);
          env.skip_reason = g_steal_pointer (&why);
          return FALSE;
        }
    }
  if (source != NULL)
    gnome = g_settings_schema_source_lookup (source, "org.gnome.system.proxy", TRUE);
  if (gnome == NULL)
    g_error ("the org.gnome.system.proxy schema is not installed (gsettings-desktop-schemas)");
  if (!ph_test_require_tools ())
    {
      env.skip_reason = g_strdup ("stunnel, Squid or curl is missing");
      return FALSE;
    }

  env.cloud = ph_test_cloud_new ("PH_CLOUD_ORIGIN=1", NULL);
  /* In this order: g_test_dbus_up() unsets DISPLAY. */
  env.bus = g_test_dbus_new (G_TEST_DBUS_NONE);
  g_test_dbus_up (env.bus);
  start_display ();
  spawn ("trayer.log", trayer);
  start_dunst (dunst);
  env.gnome_proxy = g_settings_new ("org.gnome.system.proxy");
  set_corporate_pac ();
  setup_agent ();
  /* The X server may take a moment more to accept clients. */
  for (guint i = 0; i < 50 && !gtk_init_check (NULL, NULL); i++)
    g_usleep (100 * 1000);
  if (gdk_display_get_default () == NULL)
    {
      g_autofree char *log_path = g_build_filename (env.dir, "xvfb.log", NULL);
      g_autofree char *log = NULL;
      g_file_get_contents (log_path, &log, NULL, NULL);
      g_error ("cannot open display %s; Xvfb said:\n%s", g_getenv ("DISPLAY"), log);
    }
  return TRUE;
}

/* Stops the helpers and the agent; FALSE if the agent did not exit 0 on SIGTERM (a crash, or
 * a sanitizer's report at its exit), with its log on stderr. */
static gboolean
env_down (void)
{
  gboolean agent_ok = TRUE;

  if (env.app != NULL)
    {
      /* Runs the shutdown the main loop would. */
      g_application_quit (G_APPLICATION (env.app));
      g_clear_object (&env.app);
    }
  for (guint i = env.procs->len; i > 0; i--)
    {
      GSubprocess *p = g_ptr_array_index (env.procs, i - 1);
      g_subprocess_send_signal (p, SIGTERM);
      g_subprocess_wait (p, NULL, NULL);
      if (p == env.agent
          && !(g_subprocess_get_if_exited (p) && g_subprocess_get_exit_status (p) == 0))
        {
          g_autofree char *log_path = g_build_filename (env.dir, "agent.log", NULL);
          g_autofree char *log = NULL;

          g_file_get_contents (log_path, &log, NULL, NULL);
          g_printerr ("# pinhole-agent did not exit 0 on SIGTERM (wait status %d); its log:\n%s\n",
                      g_subprocess_get_status (p), log ? log : "");
          agent_ok = FALSE;
        }
    }
  g_clear_object (&env.proxy);
  g_clear_object (&env.gnome_proxy);
  if (env.bus != NULL)
    g_test_dbus_stop (env.bus);
  g_clear_pointer (&env.cloud, ph_test_cloud_free);
  return agent_ok;
}

/* --- the real binary: quit and kill -9 --- */

static GSubprocess *
tray_process (void)
{
  static guint n;
  const char *argv[] = { g_getenv ("PH_TRAY"), "--session", NULL };
  g_autofree char *log = g_strdup_printf ("tray-process-%u.log", ++n);
  return spawn (log, argv);
}

static void
activate_remote (const char *action)
{
  g_autoptr (GDBusConnection) bus = g_bus_get_sync (G_BUS_TYPE_SESSION, NULL, NULL);
  g_autoptr (GVariant) reply = NULL;
  g_autoptr (GError) error = NULL;

  reply = g_dbus_connection_call_sync (bus, "org.pinhole.Tray", "/org/pinhole/Tray",
                                       "org.gtk.Actions", "Activate",
                                       g_variant_new ("(sava{sv})", action, NULL, NULL), NULL,
                                       G_DBUS_CALL_FLAGS_NONE, 10000, NULL, &error);
  g_assert_no_error (error);
}

static gboolean
tray_on_bus (gconstpointer unused)
{
  g_autoptr (GDBusConnection) bus = g_bus_get_sync (G_BUS_TYPE_SESSION, NULL, NULL);
  g_autoptr (GVariant) reply = g_dbus_connection_call_sync (
      bus, "org.freedesktop.DBus", "/org/freedesktop/DBus", "org.freedesktop.DBus", "NameHasOwner",
      g_variant_new ("(s)", "org.pinhole.Tray"), G_VARIANT_TYPE ("(b)"), 0, -1, NULL, NULL);
  gboolean owned = FALSE;

  if (reply != NULL)
    g_variant_get (reply, "(b)", &owned);
  return owned;
}

static gboolean
tray_gone (gconstpointer unused)
{
  return !tray_on_bus (NULL);
}

/* No warning or critical in the tray processes' logs but GTK's own. */
static void
assert_tray_logs_clean (void)
{
  g_autoptr (GDir) dir = g_dir_open (env.dir, 0, NULL);
  const char *name;

  while ((name = g_dir_read_name (dir)) != NULL)
    {
      g_autofree char *path = NULL;
      g_autofree char *text = NULL;
      g_auto (GStrv) lines = NULL;

      if (!g_str_has_prefix (name, "tray-process-"))
        continue;
      path = g_build_filename (env.dir, name, NULL);
      g_assert_true (g_file_get_contents (path, &text, NULL, NULL));
      lines = g_strsplit (text, "\n", -1);
      for (guint i = 0; lines[i] != NULL; i++)
        if ((strstr (lines[i], "CRITICAL") || strstr (lines[i], "WARNING"))
            && !strstr (lines[i], "gdk_window_thaw_toplevel_updates"))
          g_error ("%s: %s", name, lines[i]);
    }
}

static gboolean
file_absent (gconstpointer path)
{
  return !g_file_test (path, G_FILE_TEST_EXISTS);
}

static void
test_quit_and_crash (void)
{
  g_autoptr (GSubprocess) tray = NULL;
  g_autofree char *journal
      = g_build_filename (g_get_user_state_dir (), "pinhole", "system-proxy.journal", NULL);
  g_autoptr (GError) error = NULL;

  if (env.skip)
    {
      g_test_skip (env.skip_reason);
      return;
    }
  /* On: the proxy points at the agent. Quit: the PAC comes back exactly. */
  tray = g_object_ref (tray_process ());
  g_assert_true (wait_until (proxy_mode_is, "manual"));
  g_assert_true (g_file_test (journal, G_FILE_TEST_EXISTS));
  g_assert_true (wait_until (tray_on_bus, NULL));
  activate_remote ("quit");
  g_assert_true (g_subprocess_wait (tray, NULL, &error));
  g_assert_true (g_subprocess_get_if_exited (tray));
  g_assert_cmpint (g_subprocess_get_exit_status (tray), ==, 0);
  assert_corporate_pac ();
  g_assert_false (g_file_test (journal, G_FILE_TEST_EXISTS));
  g_clear_object (&tray);

  /* kill -9 leaves the proxy set; the next start puts it back. */
  tray = g_object_ref (tray_process ());
  g_assert_true (wait_until (proxy_mode_is, "manual"));
  g_subprocess_force_exit (tray);
  g_subprocess_wait (tray, NULL, NULL);
  g_clear_object (&tray);
  g_assert_true (wait_until (tray_gone, NULL));
  g_assert_true (proxy_mode_is ("manual"));
  g_assert_true (g_file_test (journal, G_FILE_TEST_EXISTS));
  ph_agent1_call_disable_sync (env.proxy, NULL, &error);
  g_assert_no_error (error);
  g_assert_true (wait_until (agent_state_is, "off"));
  tray = g_object_ref (tray_process ());
  /* The journal goes last, once every key is back. */
  g_assert_true (wait_until (file_absent, journal));
  assert_corporate_pac ();
  g_subprocess_send_signal (tray, SIGTERM);
  g_subprocess_wait (tray, NULL, NULL);
  g_assert_true (wait_until (tray_gone, NULL));
  ph_agent1_call_enable_sync (env.proxy, NULL, &error);
  g_assert_no_error (error);
  g_assert_true (wait_until (agent_state_is, "on"));
  assert_tray_logs_clean ();
}

/* A top-level window titled @title is on the X server (xwininfo lists it). */
static gboolean
x_window_titled (gconstpointer title)
{
  const char *argv[] = { "xwininfo", "-root", "-tree", NULL };
  g_autofree char *out = NULL;
  g_autofree char *quoted = g_strdup_printf ("\"%s\"", (const char *) title);

  if (!g_spawn_sync (NULL, (char **) argv, NULL, G_SPAWN_SEARCH_PATH | G_SPAWN_STDERR_TO_DEV_NULL,
                     NULL, NULL, &out, NULL, NULL, NULL))
    return FALSE;
  return strstr (out, quoted) != NULL;
}

/* pinhole-tray --connections opens the Connections window at start, as --diagnose does its. */
static void
test_connections_option (void)
{
  const char *argv[] = { g_getenv ("PH_TRAY"), "--session", "--connections", NULL };
  g_autoptr (GSubprocess) tray = NULL;
  g_autoptr (GError) error = NULL;

  if (env.skip)
    {
      g_test_skip (env.skip_reason);
      return;
    }
  tray = g_object_ref (spawn ("tray-process-connections.log", argv));
  g_assert_true (wait_until (tray_on_bus, NULL));
  g_assert_true (wait_until (x_window_titled, _ ("Pinhole Connections")));
  activate_remote ("quit");
  g_assert_true (g_subprocess_wait (tray, NULL, &error));
  g_assert_true (g_subprocess_get_if_exited (tray));
  g_assert_cmpint (g_subprocess_get_exit_status (tray), ==, 0);
  g_assert_true (wait_until (tray_gone, NULL));
  g_assert_false (x_window_titled (_ ("Pinhole Connections")));
  assert_tray_logs_clean ();
}

/* --- in process: icon, menu, toggle, notifications, settings --- */

static gboolean
icon_is (gconstpointer want)
{
  return g_strcmp0 (ph_tray_app_get_icon_name (env.app), want) == 0;
}

static void
start_app (void)
{
  g_autoptr (GError) error = NULL;

  if (env.app != NULL)
    return;
  env.app = ph_tray_app_new_for_bus (G_BUS_TYPE_SESSION);
  g_assert_true (g_application_register (G_APPLICATION (env.app), NULL, &error));
  g_assert_no_error (error);
}

static void
test_toggle (void)
{
  g_autofree char *port = NULL;
  g_autofree char *want_port = g_strdup_printf ("%u", env.port);
  g_autofree char *ignore = NULL;

  if (env.skip)
    {
      g_test_skip (env.skip_reason);
      return;
    }
  start_app ();
  g_assert_true (wait_until (icon_is, "pinhole-on"));
  g_assert_nonnull (strstr (ph_tray_app_get_status_text (env.app), "127.0.0.1:"));
  g_assert_true (wait_until (proxy_mode_is, "manual"));
  port = settings_get ("org.gnome.system.proxy.http", "port");
  g_assert_cmpstr (port, ==, want_port);
  ignore = settings_get ("org.gnome.system.proxy", "ignore-hosts");
  g_assert_nonnull (strstr (ignore, "'localhost'"));

  /* Off from the menu's action: the agent is off and the PAC is back. */
  g_action_group_activate_action (G_ACTION_GROUP (env.app), "toggle", NULL);
  g_assert_true (wait_until (agent_state_is, "off"));
  g_assert_true (wait_until (icon_is, "pinhole-off"));
  assert_corporate_pac ();

  g_action_group_activate_action (G_ACTION_GROUP (env.app), "toggle", NULL);
  g_assert_true (wait_until (agent_state_is, "on"));
  g_assert_true (wait_until (icon_is, "pinhole-on"));
  g_assert_true (wait_until (proxy_mode_is, "manual"));
}

/* Notifications dunst has shown with @summary, from its own history. */
static guint
dunst_count (const char *summary)
{
  g_autoptr (GDBusConnection) bus = g_bus_get_sync (G_BUS_TYPE_SESSION, NULL, NULL);
  g_autoptr (GVariant) reply = NULL;
  g_autoptr (GVariant) list = NULL;
  GVariantIter iter;
  GVariant *entry;
  guint n = 0;

  reply = g_dbus_connection_call_sync (bus, "org.freedesktop.Notifications",
                                       "/org/freedesktop/Notifications", "org.dunstproject.cmd0",
                                       "NotificationListHistory", NULL, NULL,
                                       G_DBUS_CALL_FLAGS_NONE, 5000, NULL, NULL);
  if (reply == NULL)
    return 0;
  list = g_variant_get_child_value (reply, 0);
  g_variant_iter_init (&iter, list);
  while ((entry = g_variant_iter_next_value (&iter)) != NULL)
    {
      g_autoptr (GVariant) owned = entry;
      g_autoptr (GVariant) value = g_variant_lookup_value (entry, "summary", NULL);
      g_autoptr (GVariant) inner = value && g_variant_is_of_type (value, G_VARIANT_TYPE_VARIANT)
                                       ? g_variant_get_variant (value)
                                       : (value ? g_variant_ref (value) : NULL);
      if (inner != NULL && g_variant_is_of_type (inner, G_VARIANT_TYPE_STRING)
          && g_str_equal (g_variant_get_string (inner, NULL), summary))
        n++;
    }
  return n;
}

static gboolean
dunst_has (gconstpointer summary)
{
  return dunst_count (summary) > 0;
}

/* An agent error shows in the icon and once as a notification. */
static void
test_error_notifies (void)
{
  g_autoptr (GError) error = NULL;
  g_autofree char *closed = g_strdup_printf ("%u", ph_test_free_port ());
  g_autofree char *good = g_strdup_printf ("%u", env.cloud->tls_port);
  const char *title = _ ("The cloud proxy cannot be reached");
  guint sent;

  if (env.skip)
    {
      g_test_skip (env.skip_reason);
      return;
    }
  start_app ();
  agent_call_ok (ph_agent1_call_set_setting_sync (env.proxy, "upstream.port", closed, NULL, &error),
                 error);
  g_assert_true (wait_until (icon_is, "pinhole-error"));
  g_assert_true (wait_until (dunst_has, title));
  sent = ph_tray_app_get_notification_count (env.app);
  /* The agent retries with backoff; the same problem is not said again. */
  settle (4000);
  g_assert_cmpuint (dunst_count (title), ==, 1);
  g_assert_cmpuint (ph_tray_app_get_notification_count (env.app), ==, sent);
  agent_call_ok (ph_agent1_call_set_setting_sync (env.proxy, "upstream.port", good, NULL, &error),
                 error);
  g_assert_true (wait_until (icon_is, "pinhole-on"));
}

/* Under when-unreachable=direct the tray says that requests leave without the tunnel: a
 * notification of its own, not the one for a refused tunnel. */
static void
test_unreachable_direct_notifies (void)
{
  g_autoptr (GError) error = NULL;
  g_autofree char *closed = g_strdup_printf ("%u", ph_test_free_port ());
  g_autofree char *good = g_strdup_printf ("%u", env.cloud->tls_port);
  const char *title = _ ("The cloud proxy cannot be reached: requests go directly");

  if (env.skip)
    {
      g_test_skip (env.skip_reason);
      return;
    }
  start_app ();
  agent_call_ok (
      ph_agent1_call_set_setting_sync (env.proxy, "route.when-unreachable", "direct", NULL, &error),
      error);
  agent_call_ok (ph_agent1_call_set_setting_sync (env.proxy, "upstream.port", closed, NULL, &error),
                 error);
  g_assert_true (wait_until (icon_is, "pinhole-error"));
  g_assert_true (wait_until (dunst_has, title));
  g_assert_nonnull (strstr (ph_tray_app_get_status_text (env.app), "when-unreachable=direct"));
  agent_call_ok (ph_agent1_call_set_setting_sync (env.proxy, "upstream.port", good, NULL, &error),
                 error);
  agent_call_ok (
      ph_agent1_call_set_setting_sync (env.proxy, "route.when-unreachable", "block", NULL, &error),
      error);
  g_assert_true (wait_until (icon_is, "pinhole-on"));
}

static GtkWidget *
menu_item_for (const char *action)
{
  g_autoptr (GList) items
      = gtk_container_get_children (GTK_CONTAINER (ph_tray_app_get_menu (env.app)));

  for (GList *l = items; l != NULL; l = l->next)
    if (g_strcmp0 (gtk_actionable_get_action_name (l->data), action) == 0)
      return l->data;
  return NULL;
}

static gboolean
trust_item_visible (gconstpointer want)
{
  return gtk_widget_get_visible (menu_item_for ("app.trust-key")) == GPOINTER_TO_INT (want);
}

/* A key that is not trusted: the error icon, one notification naming the
 * key seen, and the "Trust Server Key…" item, which is hidden otherwise. */
static void
test_pin_mismatch (void)
{
  g_autoptr (GError) error = NULL;
  const char *title = _ ("The cloud proxy presented a different key");
  const char *other = "sha256//AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=";

  if (env.skip)
    {
      g_test_skip (env.skip_reason);
      return;
    }
  start_app ();
  g_assert_true (wait_until (icon_is, "pinhole-on"));
  g_assert_true (trust_item_visible (GINT_TO_POINTER (FALSE)));
  agent_call_ok (ph_agent1_call_set_setting_sync (env.proxy, "upstream.pins", other, NULL, &error),
                 error);
  g_assert_true (wait_until (icon_is, "pinhole-error"));
  g_assert_true (wait_until (trust_item_visible, GINT_TO_POINTER (TRUE)));
  g_assert_true (wait_until (dunst_has, title));
  g_assert_cmpuint (dunst_count (title), ==, 1);
  g_assert_nonnull (strstr (ph_tray_app_get_status_text (env.app), env.cloud->pin));

  agent_call_ok (
      ph_agent1_call_set_setting_sync (env.proxy, "upstream.pins", env.cloud->pin, NULL, &error),
      error);
  g_assert_true (wait_until (icon_is, "pinhole-on"));
  g_assert_true (wait_until (trust_item_visible, GINT_TO_POINTER (FALSE)));
}

static gboolean
key_locked (gconstpointer key)
{
  const char *const *keys = ph_agent1_get_locked_keys (env.proxy);
  return keys != NULL && g_strv_contains (keys, key);
}

static gboolean
widget_insensitive (gconstpointer widget)
{
  return !gtk_widget_get_sensitive (GTK_WIDGET (widget));
}

static gboolean
key_unlocked (gconstpointer key)
{
  return !key_locked (key);
}

static gboolean
widget_sensitive (gconstpointer widget)
{
  return gtk_widget_get_sensitive (GTK_WIDGET (widget));
}

/* The settings window's apply, waited for: TRUE when every write went through. */
static void
apply_done (GObject *source, GAsyncResult *result, gpointer data)
{
  int *outcome = data;

  *outcome = ph_settings_window_apply_finish (PH_SETTINGS_WINDOW (source), result, NULL) ? 1 : 0;
}

static gboolean
apply_settings (GtkWindow *window)
{
  int outcome = -1;

  ph_settings_window_apply (PH_SETTINGS_WINDOW (window), apply_done, &outcome);
  while (outcome < 0)
    g_main_context_iteration (NULL, TRUE);
  return outcome == 1;
}

static void
test_settings (void)
{
  g_autofree char *dropin = g_build_filename (env.dir, "managed.d", "50-it.conf", NULL);
  g_autofree char *text = g_strdup_printf ("[upstream]\nport=%u\n", env.cloud->tls_port);
  g_autoptr (GError) error = NULL;
  GtkWindow *window;
  GtkWidget *port, *host, *listener;
  g_autofree char *tooltip = NULL;

  if (env.skip)
    {
      g_test_skip (env.skip_reason);
      return;
    }
  start_app ();
  g_file_set_contents (dropin, text, -1, &error);
  g_assert_no_error (error);
  g_assert_true (wait_until (key_locked, "upstream.port"));

  g_action_group_activate_action (G_ACTION_GROUP (env.app), "settings", NULL);
  window = ph_tray_app_get_settings_window (env.app);
  g_assert_nonnull (window);
  settle (300);
  port = ph_settings_window_get_widget (PH_SETTINGS_WINDOW (window), "upstream.port");
  host = ph_settings_window_get_widget (PH_SETTINGS_WINDOW (window), "upstream.host");
  listener = ph_settings_window_get_widget (PH_SETTINGS_WINDOW (window), "listener.address");
  g_assert_true (wait_until (widget_insensitive, port));
  g_assert_true (gtk_widget_get_sensitive (host));
  tooltip = gtk_widget_get_tooltip_text (port);
  g_assert_cmpstr (tooltip, ==, _ ("Set by your administrator"));
  g_assert_cmpstr (gtk_entry_get_text (GTK_ENTRY (host)), ==, "127.0.0.1");
  screenshot ("settings");

  /* Refused in place with the agent's own message; nothing changes. */
  gtk_entry_set_text (GTK_ENTRY (listener), "99999");
  g_assert_false (apply_settings (window));
  g_assert_nonnull (ph_settings_window_get_message (PH_SETTINGS_WINDOW (window)));
  g_assert_nonnull (strstr (ph_settings_window_get_message (PH_SETTINGS_WINDOW (window)), "99999"));
  screenshot ("settings-refused");
  g_assert_true (agent_state_is ("on"));

  /* Unlocked live, in the open window too. */
  g_assert_cmpint (g_unlink (dropin), ==, 0);
  g_assert_true (wait_until (key_unlocked, "upstream.port"));
  g_assert_true (wait_until (widget_sensitive, port));
  gtk_widget_destroy (GTK_WIDGET (window));
}

/* --- routes and the system proxy's mode --- */

static char *
agent_setting (const char *key)
{
  g_autoptr (GError) error = NULL;
  char *value = NULL;
  gboolean locked = FALSE;

  ph_agent1_call_get_setting_sync (env.proxy, key, &value, &locked, NULL, &error);
  g_assert_no_error (error);
  return value;
}

static void
agent_set (const char *key, const char *value)
{
  g_autoptr (GError) error = NULL;

  agent_call_ok (ph_agent1_call_set_setting_sync (env.proxy, key, value, NULL, &error), error);
}

static gboolean
ignore_hosts_has (gconstpointer item)
{
  g_autofree char *ignore = NULL;
  g_autofree char *quoted = g_strdup_printf ("'%s'", (const char *) item);

  g_settings_sync ();
  ignore = settings_get ("org.gnome.system.proxy", "ignore-hosts");
  return strstr (ignore, quoted) != NULL;
}

static char *
agent_pac_url (void)
{
  return g_strdup_printf ("http://127.0.0.1:%u/proxy.pac", env.port);
}

/* GNOME's mode 'auto' with the agent's PAC. */
static gboolean
proxy_is_agent_pac (gconstpointer unused)
{
  g_autofree char *url = NULL;
  g_autofree char *want = agent_pac_url ();

  if (!proxy_mode_is ("auto"))
    return FALSE;
  url = g_settings_get_string (env.gnome_proxy, "autoconfig-url");
  return g_strcmp0 (url, want) == 0;
}

/* The URL the desktop is given is the agent's PAC, served on its listener. */
static void
assert_pac_served (void)
{
  g_autofree char *url = agent_pac_url ();
  g_autofree char *out = NULL;
  g_autoptr (GError) error = NULL;
  int status = 0;
  const char *argv[] = { "curl", "-sS", "--noproxy", "*", "--max-time", "10", url, NULL };

  g_spawn_sync (NULL, (char **) argv, NULL, G_SPAWN_SEARCH_PATH, NULL, NULL, &out, NULL, &status,
                &error);
  g_assert_no_error (error);
  g_assert_true (g_spawn_check_wait_status (status, NULL));
  g_assert_nonnull (strstr (out, "FindProxyForURL"));
}

/* [system-proxy] mode=pac: the tray process points GNOME at the agent's PAC, and its quit puts
 * the corporate PAC back exactly. */
static void
test_pac_quit (void)
{
  g_autoptr (GSubprocess) tray = NULL;
  g_autoptr (GError) error = NULL;

  if (env.skip)
    {
      g_test_skip (env.skip_reason);
      return;
    }
  agent_set ("system-proxy.mode", "pac");
  tray = g_object_ref (tray_process ());
  g_assert_true (wait_until (proxy_is_agent_pac, NULL));
  assert_pac_served ();
  g_assert_true (wait_until (tray_on_bus, NULL));
  activate_remote ("quit");
  g_assert_true (g_subprocess_wait (tray, NULL, &error));
  g_assert_cmpint (g_subprocess_get_exit_status (tray), ==, 0);
  assert_corporate_pac ();
  g_assert_true (wait_until (tray_gone, NULL));
  agent_set ("system-proxy.mode", "manual");
  assert_tray_logs_clean ();
}

/* An older tray.conf's bypass list moves to the agent's route.direct once. */
static void
test_migrate_bypass (void)
{
  g_autofree char *conf = g_build_filename (env.dir, "pinhole", "tray.conf", NULL);
  g_autofree char *dir = g_path_get_dirname (conf);
  g_autofree char *direct = NULL;
  g_autofree char *text = NULL;
  g_autoptr (GError) error = NULL;

  if (env.skip)
    {
      g_test_skip (env.skip_reason);
      return;
    }
  g_assert_null (env.app);
  g_assert_cmpint (g_mkdir_with_parents (dir, 0700), ==, 0);
  g_file_set_contents (
      conf, "# mine\n[tray]\nsystem-proxy=true\nbypass=.legacy.example;10.9.0.0/16;\n", -1, &error);
  g_assert_no_error (error);
  start_app ();
  g_assert_true (wait_until (ignore_hosts_has, ".legacy.example"));
  g_assert_true (ignore_hosts_has ("10.9.0.0/16"));
  direct = agent_setting ("route.direct");
  g_assert_cmpstr (direct, ==, ".legacy.example, 10.9.0.0/16");
  g_file_get_contents (conf, &text, NULL, &error);
  g_assert_no_error (error);
  g_assert_null (strstr (text, "bypass"));
  g_assert_nonnull (strstr (text, "# mine"));
  agent_set ("route.direct", "");
}

/* What the desktop is given for route.direct: never more than the agent sends direct. */
static void
test_desktop_list (void)
{
  g_auto (GStrv) list = ph_tray_proxy_desktop_list (
      "intranet.example.com, .corp.example; *.lab.example <local> 10.0.0.0/8,192.168.1.5 "
      "[fd00::1] fd00::/8");
  g_autofree char *joined = g_strjoinv (" ", list);

  g_assert_cmpstr (
      joined, ==,
      "localhost 127.0.0.0/8 ::1 .corp.example 10.0.0.0/8 192.168.1.5 fd00::1 fd00::/8");
}

static gboolean
combo_insensitive (gconstpointer widget)
{
  return !gtk_widget_get_sensitive (GTK_WIDGET (widget));
}

/* route.direct from the settings window reaches GNOME's ignore-hosts; locked by IT, it shows
 * greyed out, and IT's list is what the desktop gets. system-proxy.mode from the same window. */
static void
test_route_settings (void)
{
  g_autofree char *dropin = g_build_filename (env.dir, "managed.d", "60-route.conf", NULL);
  g_autoptr (GError) error = NULL;
  GtkWindow *window;
  GtkWidget *direct, *block, *unreachable, *portal, *mode;
  g_autofree char *value = NULL;

  if (env.skip)
    {
      g_test_skip (env.skip_reason);
      return;
    }
  start_app ();
  g_assert_true (wait_until (proxy_mode_is, "manual"));
  g_action_group_activate_action (G_ACTION_GROUP (env.app), "settings", NULL);
  window = ph_tray_app_get_settings_window (env.app);
  g_assert_nonnull (window);
  settle (300);
  direct = ph_settings_window_get_widget (PH_SETTINGS_WINDOW (window), "route.direct");
  block = ph_settings_window_get_widget (PH_SETTINGS_WINDOW (window), "route.block");
  unreachable
      = ph_settings_window_get_widget (PH_SETTINGS_WINDOW (window), "route.when-unreachable");
  portal = ph_settings_window_get_widget (PH_SETTINGS_WINDOW (window), "route.portal");
  mode = ph_settings_window_get_widget (PH_SETTINGS_WINDOW (window), "system-proxy.mode");
  g_assert_cmpstr (gtk_combo_box_get_active_id (GTK_COMBO_BOX (unreachable)), ==, "block");
  g_assert_cmpstr (gtk_combo_box_get_active_id (GTK_COMBO_BOX (portal)), ==, "allow");
  g_assert_cmpstr (gtk_combo_box_get_active_id (GTK_COMBO_BOX (mode)), ==, "manual");

  gtk_entry_set_text (GTK_ENTRY (direct), ".corp.example, 10.0.0.0/8, intranet.example.com");
  gtk_entry_set_text (GTK_ENTRY (block), "ads.example.com");
  gtk_combo_box_set_active_id (GTK_COMBO_BOX (unreachable), "direct");
  g_assert_true (apply_settings (window));
  g_assert_true (wait_until (ignore_hosts_has, ".corp.example"));
  g_assert_true (ignore_hosts_has ("10.0.0.0/8"));
  g_assert_true (ignore_hosts_has ("localhost"));
  /* A plain name would mean its subdomains too to GLib: the agent sends it direct itself. */
  g_assert_false (ignore_hosts_has ("intranet.example.com"));
  value = agent_setting ("route.direct");
  g_assert_cmpstr (value, ==, ".corp.example, 10.0.0.0/8, intranet.example.com");
  g_clear_pointer (&value, g_free);
  value = agent_setting ("route.block");
  g_assert_cmpstr (value, ==, "ads.example.com");
  g_clear_pointer (&value, g_free);
  value = agent_setting ("route.when-unreachable");
  g_assert_cmpstr (value, ==, "direct");
  g_clear_pointer (&value, g_free);

  /* Changed elsewhere (pinholectl, a file): ConfigGeneration tells the tray, which follows. */
  agent_call_ok (ph_agent1_call_set_setting_sync (env.proxy, "route.direct",
                                                  ".corp.example, 10.0.0.0/8, .lab.example", NULL,
                                                  &error),
                 error);
  g_assert_true (wait_until (ignore_hosts_has, ".lab.example"));

  /* Refused by the agent, with its message, in place. */
  gtk_entry_set_text (GTK_ENTRY (block), "not a/host/rule");
  g_assert_false (apply_settings (window));
  g_assert_nonnull (ph_settings_window_get_message (PH_SETTINGS_WINDOW (window)));
  gtk_entry_set_text (GTK_ENTRY (block), "ads.example.com");

  /* IT's list: greyed out, and it is what the desktop gets. */
  g_file_set_contents (dropin, "[route]\ndirect=.it.example\nportal=block\n", -1, &error);
  g_assert_no_error (error);
  g_assert_true (wait_until (key_locked, "route.direct"));
  g_assert_true (wait_until (widget_insensitive, direct));
  g_assert_true (wait_until (combo_insensitive, portal));
  g_assert_true (wait_until (ignore_hosts_has, ".it.example"));
  g_assert_false (ignore_hosts_has (".corp.example"));
  g_assert_cmpstr (gtk_entry_get_text (GTK_ENTRY (direct)), ==, ".it.example");
  g_assert_cmpstr (gtk_combo_box_get_active_id (GTK_COMBO_BOX (portal)), ==, "block");
  screenshot ("settings-route-locked");
  /* Apply leaves the locked ones alone. */
  g_assert_true (apply_settings (window));

  /* PAC mode from the window: GNOME asks the agent's PAC; manual again, the proxy. */
  gtk_combo_box_set_active_id (GTK_COMBO_BOX (mode), "pac");
  g_assert_true (apply_settings (window));
  g_assert_true (wait_until (proxy_is_agent_pac, NULL));
  /* Off puts the corporate PAC back exactly; on, the agent's again. */
  g_action_group_activate_action (G_ACTION_GROUP (env.app), "toggle", NULL);
  g_assert_true (wait_until (agent_state_is, "off"));
  assert_corporate_pac ();
  g_action_group_activate_action (G_ACTION_GROUP (env.app), "toggle", NULL);
  g_assert_true (wait_until (agent_state_is, "on"));
  g_assert_true (wait_until (proxy_is_agent_pac, NULL));
  gtk_combo_box_set_active_id (GTK_COMBO_BOX (mode), "manual");
  g_assert_true (apply_settings (window));
  g_assert_true (wait_until (proxy_mode_is, "manual"));

  g_assert_cmpint (g_unlink (dropin), ==, 0);
  g_assert_true (wait_until (key_unlocked, "route.direct"));
  g_assert_true (wait_until (widget_sensitive, direct));
  agent_set ("route.direct", "");
  agent_set ("route.block", "");
  agent_set ("route.when-unreachable", "block");
  gtk_widget_destroy (GTK_WIDGET (window));
}

/* The agent's "captive-portal" state (which a test machine's loopback cannot produce; shown
 * through the tray's test seam): the error look, a status that says so, one notification. */
static void
test_captive_portal (void)
{
  const char *title = _ ("Sign in to the network");
  guint sent;

  if (env.skip)
    {
      g_test_skip (env.skip_reason);
      return;
    }
  start_app ();
  g_assert_true (wait_until (icon_is, "pinhole-on"));
  ph_tray_app_show_state (env.app, "captive-portal", "http://portal.example/login");
  g_assert_cmpstr (ph_tray_app_get_icon_name (env.app), ==, "pinhole-error");
  g_assert_cmpstr (ph_tray_app_get_status_text (env.app), ==,
                   _ ("The network needs a sign-in before the tunnel can connect"));
  g_assert_true (wait_until (dunst_has, title));
  sent = ph_tray_app_get_notification_count (env.app);
  ph_tray_app_show_state (env.app, "captive-portal", "http://portal.example/login");
  settle (1000);
  g_assert_cmpuint (dunst_count (title), ==, 1);
  g_assert_cmpuint (ph_tray_app_get_notification_count (env.app), ==, sent);
  /* Back to what the agent says. */
  ph_tray_app_show_state (env.app, NULL, NULL);
  g_assert_true (wait_until (icon_is, "pinhole-on"));
}

static void
test_menu (void)
{
  GtkWidget *menu;

  if (env.skip)
    {
      g_test_skip (env.skip_reason);
      return;
    }
  start_app ();
  g_action_group_activate_action (G_ACTION_GROUP (env.app), "show-menu", NULL);
  menu = ph_tray_app_get_menu (env.app);
  settle (500);
  g_assert_true (gtk_widget_get_mapped (menu));
  /* Its items act: the toggle shows the agent's state, the others are live. */
  {
    g_autoptr (GList) items = gtk_container_get_children (GTK_CONTAINER (menu));
    guint checked = 0, live = 0;
    for (GList *l = items; l != NULL; l = l->next)
      {
        if (GTK_IS_CHECK_MENU_ITEM (l->data)
            && gtk_check_menu_item_get_active (GTK_CHECK_MENU_ITEM (l->data)))
          checked++;
        if (gtk_actionable_get_action_name (l->data) != NULL
            && gtk_widget_is_sensitive (GTK_WIDGET (l->data)))
          live++;
      }
    g_assert_cmpuint (checked, ==, 1);
    g_assert_cmpuint (live, >=, 4);
  }
  screenshot ("menu");
  gtk_menu_popdown (GTK_MENU (menu));
}

/* --- the cloud proxies' health and the diagnosis --- */

static GtkWidget *
menu_item_named (const char *name)
{
  g_autoptr (GList) items
      = gtk_container_get_children (GTK_CONTAINER (ph_tray_app_get_menu (env.app)));

  for (GList *l = items; l != NULL; l = l->next)
    if (g_strcmp0 (gtk_widget_get_name (l->data), name) == 0)
      return l->data;
  return NULL;
}

static gboolean
menu_item_says (gconstpointer want)
{
  GtkWidget *item = menu_item_named ("cloud-proxy");

  return item != NULL && gtk_widget_get_visible (item)
         && g_strcmp0 (gtk_menu_item_get_label (GTK_MENU_ITEM (item)), want) == 0;
}

static GVariant *
upstream_entry (const char *name, const char *state, gboolean in_use, gint64 retry_at,
                const char *error, const char *message)
{
  g_autoptr (GVariantDict) dict = g_variant_dict_new (NULL);
  const char *addresses[] = { "127.0.0.1", NULL };

  g_variant_dict_insert (dict, "name", "s", name);
  g_variant_dict_insert (dict, "state", "s", state);
  g_variant_dict_insert (dict, "in-use", "b", in_use);
  g_variant_dict_insert (dict, "retry-at", "x", retry_at);
  g_variant_dict_insert (dict, "error", "s", error);
  g_variant_dict_insert (dict, "error-message", "s", message);
  g_variant_dict_insert_value (dict, "addresses", g_variant_new_strv (addresses, -1));
  return g_variant_ref_sink (g_variant_dict_end (dict));
}

/* Each state of an Upstreams entry as the "Cloud proxies" submenu says it. */
static void
test_upstream_lines (void)
{
  g_autoptr (GDateTime) now = g_date_time_new_now_local ();
  g_autoptr (GDateTime) at
      = g_date_time_new_local (g_date_time_get_year (now), g_date_time_get_month (now),
                               g_date_time_get_day_of_month (now), 10, 42, 0);
  const char *name = "b.example:443";
  gint64 t = g_date_time_to_unix (at);
  struct
  {
    const char *state;
    gboolean in_use;
    gint64 retry_at;
    const char *message;
    char *want;
  } cases[] = {
    { "up", TRUE, 0, "", g_strdup_printf (_ ("%s — up (in use)"), name) },
    { "up", FALSE, 0, "", g_strdup_printf (_ ("%s — up"), name) },
    { "down", FALSE, t, "connection refused",
      g_strdup_printf (_ ("%s — down, retry at %s: %s"), name, "10:42", "connection refused") },
    { "down", FALSE, 0, "connection refused",
      g_strdup_printf (_ ("%s — down: %s"), name, "connection refused") },
    { "refused", FALSE, t, "the key is not trusted",
      g_strdup_printf (_ ("%s — refused: %s"), name, "the key is not trusted") },
    { "unknown", FALSE, 0, "", g_strdup_printf (_ ("%s — not tried yet"), name) },
  };

  for (guint i = 0; i < G_N_ELEMENTS (cases); i++)
    {
      g_autoptr (GVariant) entry = upstream_entry (name, cases[i].state, cases[i].in_use,
                                                   cases[i].retry_at, "", cases[i].message);
      g_autofree char *line = ph_tray_app_format_upstream (entry);

      g_assert_cmpstr (line, ==, cases[i].want);
      g_free (cases[i].want);
    }
}

/* The menu names the cloud proxy in use; with one, there is no "Cloud proxies" submenu. */
static void
test_cloud_proxy_menu (void)
{
  g_autofree char *want = NULL;
  GtkWidget *several;

  if (env.skip)
    {
      g_test_skip (env.skip_reason);
      return;
    }
  start_app ();
  g_assert_true (wait_until (icon_is, "pinhole-on"));
  want = g_strdup_printf (_ ("Cloud proxy: %s"), ph_agent1_get_upstream (env.proxy));
  g_assert_true (wait_until (menu_item_says, want));
  several = menu_item_named ("cloud-proxies");
  g_assert_nonnull (several);
  g_assert_false (gtk_widget_get_visible (several));
  /* Off: no cloud proxy is in use. */
  g_action_group_activate_action (G_ACTION_GROUP (env.app), "toggle", NULL);
  g_assert_true (wait_until (icon_is, "pinhole-off"));
  g_assert_false (gtk_widget_get_visible (menu_item_named ("cloud-proxy")));
  g_action_group_activate_action (G_ACTION_GROUP (env.app), "toggle", NULL);
  g_assert_true (wait_until (icon_is, "pinhole-on"));
  g_assert_true (wait_until (menu_item_says, want));
}

/* Every button inside @widget, in the order of the widget tree. */
static void
collect_buttons (GtkWidget *widget, GList **out)
{
  if (GTK_IS_BUTTON (widget))
    *out = g_list_append (*out, widget);
  if (GTK_IS_CONTAINER (widget))
    gtk_container_forall (GTK_CONTAINER (widget), (GtkCallback) collect_buttons, out);
}

static gboolean
first_upstream_tried (gconstpointer unused)
{
  g_autoptr (GVariant) upstreams = ph_agent1_dup_upstreams (env.proxy);
  g_autoptr (GVariant) first = NULL;
  const char *state = "unknown";

  if (upstreams == NULL || g_variant_n_children (upstreams) == 0)
    return TRUE;
  first = g_variant_get_child_value (upstreams, 0);
  g_variant_lookup (first, "state", "&s", &state);
  return !g_str_equal (state, "unknown");
}

/* The "Cloud proxies" submenu says what the agent's Upstreams says: one line per cloud proxy,
 * shown when there are several. */
static gboolean
proxies_menu_matches_agent (gconstpointer unused)
{
  g_autoptr (GVariant) upstreams = ph_agent1_dup_upstreams (env.proxy);
  gsize n = upstreams ? g_variant_n_children (upstreams) : 0;
  GtkWidget *item = menu_item_named ("cloud-proxies");
  GtkWidget *submenu = gtk_menu_item_get_submenu (GTK_MENU_ITEM (item));
  g_autoptr (GList) lines = submenu ? gtk_container_get_children (GTK_CONTAINER (submenu)) : NULL;

  if (gtk_widget_get_visible (item) != (n > 1) || g_list_length (lines) != n)
    return FALSE;
  for (gsize i = 0; i < n; i++)
    {
      g_autoptr (GVariant) entry = g_variant_get_child_value (upstreams, i);
      g_autofree char *want = ph_tray_app_format_upstream (entry);
      if (g_strcmp0 (gtk_menu_item_get_label (g_list_nth_data (lines, i)), want) != 0)
        return FALSE;
    }
  return TRUE;
}

static gboolean
diagnosis_done (gconstpointer window)
{
  return !ph_diagnose_window_is_running ((PhDiagnoseWindow *) window);
}

/* Runs the window's diagnosis of @url and waits for its report. */
static void
diagnose_in_window (PhDiagnoseWindow *window, const char *url)
{
  gint64 deadline = g_get_monotonic_time () + 90 * G_TIME_SPAN_SECOND;

  ph_diagnose_window_run (window, url);
  g_assert_true (ph_diagnose_window_is_running (window));
  while (!diagnosis_done (window))
    {
      g_assert_cmpint (g_get_monotonic_time (), <, deadline);
      g_main_context_iteration (NULL, FALSE);
      g_usleep (5000);
    }
  g_assert_null (ph_diagnose_window_get_message (window));
}

/* The verdict of @step of the @proxy'th cloud proxy in the agent's own Diagnose (no URL), and
 * its code in @code. */
static char *
agent_step (guint proxy, const char *step, char **code)
{
  g_autoptr (GVariant) report = NULL;
  g_autoptr (GVariant) proxies = NULL;
  g_autoptr (GVariant) entry = NULL;
  g_autoptr (GVariant) steps = NULL;
  g_autoptr (GError) error = NULL;

  agent_call_ok (ph_agent1_call_diagnose_sync (env.proxy, "", &report, NULL, &error), error);
  proxies = g_variant_lookup_value (report, "proxies", G_VARIANT_TYPE ("aa{sv}"));
  g_assert_nonnull (proxies);
  g_assert_cmpuint (g_variant_n_children (proxies), >, proxy);
  entry = g_variant_get_child_value (proxies, proxy);
  steps = g_variant_lookup_value (entry, "steps", G_VARIANT_TYPE ("aa{sv}"));
  g_assert_nonnull (steps);
  for (gsize i = 0; i < g_variant_n_children (steps); i++)
    {
      g_autoptr (GVariant) one = g_variant_get_child_value (steps, i);
      const char *name = "";
      char *verdict = NULL;

      g_variant_lookup (one, "step", "&s", &name);
      if (!g_str_equal (name, step))
        continue;
      g_assert_true (g_variant_lookup (one, "code", "s", code));
      g_assert_true (g_variant_lookup (one, "verdict", "s", &verdict));
      return verdict;
    }
  g_assert_not_reached ();
}

/* The Diagnose window from the tray's action, against the real agent: every step of a good
 * cloud end passes, with its verdict shown; a wrong pin fails the TLS step with the agent's
 * verdict and advice, and the later steps are skipped. Copy Report puts the same on the
 * clipboard. */
static void
test_diagnose (void)
{
  static const char *const steps[] = { "dns", "tcp", "tls", "auth", "target" };
  const char *other = "sha256//AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=";
  g_autofree char *url = g_strdup_printf ("http://127.0.0.1:%u/hello", env.cloud->origin_http_port);
  g_autoptr (GError) error = NULL;
  g_autofree char *text = NULL;
  g_autofree char *clip = NULL;
  g_autofree char *probe = NULL;
  g_autofree char *hosts = NULL;
  g_autofree char *want = NULL;
  g_autofree char *code = NULL;
  PhDiagnoseWindow *window;
  const char *status = NULL, *advice = NULL, *verdict;

  if (env.skip)
    {
      g_test_skip (env.skip_reason);
      return;
    }
  start_app ();
  g_assert_true (wait_until (icon_is, "pinhole-on"));
  /* The sign-in probe goes to the origin (by default it is the proxy's own name:443, where
   * nothing listens on the loopback). */
  probe = g_strdup_printf ("127.0.0.1:%u", env.cloud->origin_http_port);
  agent_set ("doctor.target", probe);
  g_action_group_activate_action (G_ACTION_GROUP (env.app), "diagnose", NULL);
  window = PH_DIAGNOSE_WINDOW (ph_tray_app_get_diagnose_window (env.app));
  g_assert_nonnull (window);
  settle (300);

  /* All good, with a URL: every step is ok, each with its verdict. */
  diagnose_in_window (window, url);
  g_assert_cmpuint (ph_diagnose_window_get_n_proxies (window), ==, 1);
  g_assert_cmpstr (ph_diagnose_window_get_summary (window), !=, "");
  for (guint i = 0; i < G_N_ELEMENTS (steps); i++)
    {
      verdict = ph_diagnose_window_get_step (window, 0, steps[i], &status, &advice);
      g_test_message ("%s: %s: %s", steps[i], status, verdict);
      g_assert_nonnull (verdict);
      /* The test cloud's certificate is short-lived: the TLS step may warn of its expiry. */
      if (g_str_equal (steps[i], "tls") && g_str_equal (status, "warning"))
        g_assert_cmpstr (advice, !=, "");
      else
        g_assert_cmpstr (status, ==, "ok");
      g_assert_cmpstr (verdict, !=, "");
    }
  text = ph_diagnose_window_get_report_text (window);
  g_test_message ("the report as copied:\n%s", text);
  g_assert_nonnull (strstr (text, ph_diagnose_window_get_summary (window)));
  g_assert_nonnull (strstr (text, ph_diagnose_window_get_step (window, 0, "tls", NULL, NULL)));
  /* Nothing secret in it. */
  ph_test_cloud_assert_redacted (env.cloud, "the diagnosis report", text, NULL);
  screenshot ("diagnose-ok");

  /* Copy Report: the same text on the clipboard. */
  {
    GtkWidget *copy = NULL;
    g_autoptr (GList) buttons = NULL;
    collect_buttons (GTK_WIDGET (window), &buttons);
    for (GList *l = buttons; l != NULL; l = l->next)
      if (g_strcmp0 (gtk_button_get_label (l->data), _ ("C_opy Report")) == 0)
        copy = l->data;
    g_assert_nonnull (copy);
    g_assert_true (gtk_widget_is_sensitive (copy));
    gtk_button_clicked (GTK_BUTTON (copy));
    clip = gtk_clipboard_wait_for_text (gtk_clipboard_get (GDK_SELECTION_CLIPBOARD));
    g_assert_cmpstr (clip, ==, text);
  }

  /* A key the agent does not trust: the TLS step fails with the agent's own verdict. */
  agent_call_ok (ph_agent1_call_set_setting_sync (env.proxy, "upstream.pins", other, NULL, &error),
                 error);
  g_assert_true (wait_until (icon_is, "pinhole-error"));
  diagnose_in_window (window, "");
  verdict = ph_diagnose_window_get_step (window, 0, "tls", &status, &advice);
  g_assert_nonnull (verdict);
  g_assert_cmpstr (status, ==, "failed");
  g_assert_cmpstr (advice, !=, "");
  for (guint i = 3; i < G_N_ELEMENTS (steps); i++)
    {
      ph_diagnose_window_get_step (window, 0, steps[i], &status, NULL);
      g_assert_cmpstr (status, ==, "skipped");
    }
  /* The agent's verdict for the same problem is what the window shows. */
  want = agent_step (0, "tls", &code);
  g_assert_cmpstr (code, ==, "pin-mismatch");
  g_assert_cmpstr (verdict, ==, want);
  g_clear_pointer (&want, g_free);
  g_clear_pointer (&code, g_free);
  screenshot ("diagnose-failed");

  agent_call_ok (
      ph_agent1_call_set_setting_sync (env.proxy, "upstream.pins", env.cloud->pin, NULL, &error),
      error);
  g_assert_true (wait_until (icon_is, "pinhole-on"));

  /* Two cloud proxies, the first on a closed port: one list of steps each, the first's
   * connection refused in the agent's words. */
  hosts = g_strdup_printf ("127.0.0.1:%u, 127.0.0.1", ph_test_free_port ());
  agent_set ("upstream.host", hosts);
  diagnose_in_window (window, "");
  g_assert_cmpuint (ph_diagnose_window_get_n_proxies (window), ==, 2);
  verdict = ph_diagnose_window_get_step (window, 0, "tcp", &status, &advice);
  g_assert_cmpstr (status, ==, "failed");
  g_assert_cmpstr (advice, !=, "");
  want = agent_step (0, "tcp", &code);
  g_assert_cmpstr (code, ==, "refused");
  g_assert_cmpstr (verdict, ==, want);
  ph_diagnose_window_get_step (window, 0, "tls", &status, NULL);
  g_assert_cmpstr (status, ==, "skipped");
  ph_diagnose_window_get_step (window, 1, "tcp", &status, NULL);
  g_assert_cmpstr (status, ==, "ok");
  ph_diagnose_window_get_step (window, 1, "auth", &status, NULL);
  g_assert_cmpstr (status, ==, "ok");
  screenshot ("diagnose-two-proxies");
  /* The menu's health lines follow Upstreams, however many it lists (once the agent has
   * tried the first, to show it down). */
  wait_until (first_upstream_tried, NULL);
  g_assert_true (wait_until (proxies_menu_matches_agent, NULL));
  {
    GtkWidget *menu = ph_tray_app_get_menu (env.app);
    GtkWidget *several = menu_item_named ("cloud-proxies");

    GtkWidget *submenu = gtk_menu_item_get_submenu (GTK_MENU_ITEM (several));

    g_action_group_activate_action (G_ACTION_GROUP (env.app), "show-menu", NULL);
    settle (300);
    /* Opened beside its item as a click would; a popup needs the event that triggered it. */
    if (gtk_widget_get_visible (several))
      {
        GdkEvent *click = gdk_event_new (GDK_BUTTON_PRESS);
        GdkSeat *seat = gdk_display_get_default_seat (gdk_display_get_default ());

        click->button.window
            = g_object_ref (gtk_widget_get_window (gtk_widget_get_toplevel (menu)));
        click->button.button = 1;
        click->button.time = GDK_CURRENT_TIME;
        gdk_event_set_device (click, gdk_seat_get_pointer (seat));
        gtk_menu_popup_at_widget (GTK_MENU (submenu), several, GDK_GRAVITY_NORTH_WEST,
                                  GDK_GRAVITY_NORTH_EAST, click);
        gdk_event_free (click);
      }
    screenshot ("menu-proxies");
    if (submenu != NULL)
      gtk_menu_popdown (GTK_MENU (submenu));
    gtk_menu_popdown (GTK_MENU (menu));
  }
  agent_set ("upstream.host", "127.0.0.1");
  g_assert_true (wait_until (icon_is, "pinhole-on"));

  gtk_widget_destroy (GTK_WIDGET (window));
  g_assert_null (ph_tray_app_get_diagnose_window (env.app));

  /* Closed while the agent works: the reply finds no window, and a new one can be opened. */
  g_action_group_activate_action (G_ACTION_GROUP (env.app), "diagnose", NULL);
  window = PH_DIAGNOSE_WINDOW (ph_tray_app_get_diagnose_window (env.app));
  ph_diagnose_window_run (window, url);
  gtk_widget_destroy (GTK_WIDGET (window));
  g_assert_null (ph_tray_app_get_diagnose_window (env.app));
  settle (1000);
  agent_set ("doctor.target", "");
}

/* --- what goes through: the Connections window and the support report --- */

typedef struct
{
  PhConnectionsWindow *window;
  const char *target;
} RowWanted;

/* The row of @want->target, or -1. */
static int
connections_row_of (PhConnectionsWindow *window, const char *target)
{
  for (guint i = 0; i < ph_connections_window_get_n_rows (window); i++)
    {
      g_autofree char *t = ph_connections_window_dup_cell (window, i, 1);

      if (g_strcmp0 (t, target) == 0)
        return (int) i;
    }
  return -1;
}

static gboolean
connections_has_row (gconstpointer data)
{
  const RowWanted *want = data;
  return connections_row_of (want->window, want->target) >= 0;
}

static gboolean
connections_lacks_row (gconstpointer data)
{
  return !connections_has_row (data);
}

static gboolean
refreshed_since (gconstpointer data)
{
  const guint *since = data;
  PhConnectionsWindow *window
      = PH_CONNECTIONS_WINDOW (ph_tray_app_get_connections_window (env.app));
  return ph_connections_window_get_n_refreshes (window) > since[0] + 1;
}

static gboolean
task_done (gconstpointer data)
{
  GAsyncResult *const *result = data;
  return *result != NULL;
}

static void
report_saved (GObject *source, GAsyncResult *result, gpointer data)
{
  GAsyncResult **out = data;
  *out = g_object_ref (result);
}

/* A message dialog is shown; it is put in *@data. */
static gboolean
message_dialog_shown (gconstpointer data)
{
  GtkWidget **dialog = (GtkWidget **) data;
  g_autoptr (GList) windows = gtk_window_list_toplevels ();

  for (GList *l = windows; l != NULL; l = l->next)
    if (GTK_IS_MESSAGE_DIALOG (l->data) && gtk_widget_get_mapped (l->data))
      {
        *dialog = l->data;
        return TRUE;
      }
  return FALSE;
}

static void
test_connections (void)
{
  g_autofree char *target = NULL;
  g_autofree char *connect = NULL;
  g_autofree char *get = NULL;
  g_autofree char *route = NULL;
  g_autofree char *proxy = NULL;
  g_autofree char *down = NULL;
  g_autofree char *report_path = NULL;
  g_autofree char *report = NULL;
  g_autoptr (GSocketClient) client = g_socket_client_new ();
  g_autoptr (GSocketConnection) tunnel = NULL;
  g_autoptr (GError) error = NULL;
  g_autoptr (GAsyncResult) result = NULL;
  GInputStream *in;
  GOutputStream *out;
  PhConnectionsWindow *window;
  GtkWidget *dialog = NULL;
  RowWanted want;
  char buf[65536];
  gsize got = 0;
  guint since[1];
  int row;

  if (env.skip)
    {
      g_test_skip (env.skip_reason);
      return;
    }
  start_app ();
  g_assert_true (wait_until (icon_is, "pinhole-on"));
  g_action_group_activate_action (G_ACTION_GROUP (env.app), "connections", NULL);
  window = PH_CONNECTIONS_WINDOW (ph_tray_app_get_connections_window (env.app));
  g_assert_nonnull (window);
  settle (300);
  g_assert_true (gtk_widget_get_mapped (GTK_WIDGET (window)));
  g_assert_true (ph_connections_window_is_refreshing (window));

  /* A CONNECT tunnel to the origin through the agent, held open after one response. */
  target = g_strdup_printf ("127.0.0.1:%u", env.cloud->origin_http_port);
  tunnel = g_socket_client_connect_to_host (client, "127.0.0.1", env.port, NULL, &error);
  g_assert_no_error (error);
  in = g_io_stream_get_input_stream (G_IO_STREAM (tunnel));
  out = g_io_stream_get_output_stream (G_IO_STREAM (tunnel));
  connect = g_strdup_printf ("CONNECT %s HTTP/1.1\r\nHost: %s\r\n\r\n", target, target);
  g_output_stream_write_all (out, connect, strlen (connect), NULL, NULL, &error);
  g_assert_no_error (error);
  g_input_stream_read (in, buf, 39, NULL,
                       &error); /* "HTTP/1.1 200 Connection established\r\n\r\n" */
  g_assert_no_error (error);
  get = g_strdup_printf ("GET /bytes/30000 HTTP/1.1\r\nHost: %s\r\n\r\n", target);
  g_output_stream_write_all (out, get, strlen (get), NULL, NULL, &error);
  g_assert_no_error (error);
  while (got < 30000)
    {
      gssize n = g_input_stream_read (in, buf, sizeof buf, NULL, &error);
      g_assert_no_error (error);
      g_assert_cmpint (n, >, 0);
      got += (gsize) n;
    }

  /* The window shows it within a refresh or two: its target, the tunnel, the cloud proxy. */
  want.window = window;
  want.target = target;
  g_assert_true (wait_until (connections_has_row, &want));
  row = connections_row_of (window, target);
  route = ph_connections_window_dup_cell (window, (guint) row, 2);
  proxy = ph_connections_window_dup_cell (window, (guint) row, 3);
  down = ph_connections_window_dup_cell (window, (guint) row, 5);
  g_test_message ("row: %s %s %s down %s", target, route, proxy, down);
  g_assert_cmpstr (route, ==, g_dpgettext2 (GETTEXT_PACKAGE, "route", "Tunnel"));
  g_assert_cmpstr (proxy, ==, ph_agent1_get_upstream (env.proxy));
  g_assert_cmpstr (down, !=, "0 bytes");
  g_assert_nonnull (strstr (ph_connections_window_get_summary (window), "1"));
  screenshot ("connections");

  /* Hidden: no timer, no calls. Shown again: it refreshes again. */
  gtk_widget_hide (GTK_WIDGET (window));
  g_assert_false (ph_connections_window_is_refreshing (window));
  since[0] = ph_connections_window_get_n_refreshes (window);
  settle (2500);
  g_assert_cmpuint (ph_connections_window_get_n_refreshes (window), ==, since[0]);
  gtk_window_present (GTK_WINDOW (window));
  g_assert_true (wait_until (refreshed_since, since));
  g_assert_true (ph_connections_window_is_refreshing (window));

  /* Closed by the client: gone from the list. */
  g_io_stream_close (G_IO_STREAM (tunnel), NULL, NULL);
  g_assert_true (wait_until (connections_lacks_row, &want));

  gtk_widget_destroy (GTK_WIDGET (window));
  g_assert_null (ph_tray_app_get_connections_window (env.app));

  /* The support report, as "Save Support Report…" writes it once a file is chosen, and the
   * dialog that says where it went. */
  report_path = g_build_filename (env.dir, "support-report.txt", NULL);
  ph_tray_report_save (ph_tray_app_get_agent (env.app), report_path);
  g_assert_true (wait_until (message_dialog_shown, &dialog));
  {
    g_autofree char *secondary = NULL;

    g_object_get (dialog, "secondary-text", &secondary, NULL);
    g_test_message ("the dialog says: %s", secondary);
    g_assert_cmpstr (secondary, ==, report_path);
  }
  screenshot ("report-saved");
  gtk_widget_destroy (dialog);
  /* The same through the task itself. */
  g_remove (report_path);
  ph_tray_report_save_async (ph_tray_app_get_agent (env.app), report_path, NULL, report_saved,
                             &result);
  g_assert_true (wait_until (task_done, &result));
  g_assert_true (ph_tray_report_save_finish (result, &error));
  g_assert_no_error (error);
  g_file_get_contents (report_path, &report, NULL, &error);
  g_assert_no_error (error);
  g_assert_nonnull (strstr (report, "== status =="));
  g_assert_nonnull (strstr (report, "== settings =="));
  g_assert_nonnull (strstr (report, "== connections =="));
  g_assert_nonnull (strstr (report, "== doctor =="));
  g_assert_nonnull (strstr (report, "== log (last 500 lines) =="));
  g_assert_nonnull (strstr (report, "CredentialsStored: true"));
  ph_test_cloud_assert_redacted (env.cloud, "the tray's support report", report, NULL);
}

/* The tray's icons from the source tree, found as an installed theme is. */
static void
install_icons (void)
{
  const char *names[]
      = { "pinhole-off", "pinhole-connecting", "pinhole-on", "pinhole-error", "org.pinhole.Tray" };
  g_autofree char *share = g_build_filename (env.dir, "share", NULL);
  g_autofree char *dirs = g_strconcat (share, ":/usr/local/share:/usr/share", NULL);

  for (guint i = 0; i < G_N_ELEMENTS (names); i++)
    {
      g_autofree char *file = g_strconcat (names[i], ".svg", NULL);
      g_autofree char *from = g_build_filename (g_getenv ("PH_SRCDIR"), "gui", "icons", file, NULL);
      g_autofree char *dir = g_build_filename (share, "icons", "hicolor", "scalable",
                                               i == 4 ? "apps" : "status", NULL);
      g_autofree char *to = g_build_filename (dir, file, NULL);
      g_autofree char *data = NULL;
      gsize len = 0;
      g_autoptr (GError) error = NULL;

      g_assert_cmpint (g_mkdir_with_parents (dir, 0755), ==, 0);
      g_file_get_contents (from, &data, &len, &error);
      g_assert_no_error (error);
      g_file_set_contents (to, data, len, &error);
      g_assert_no_error (error);
    }
  g_setenv ("XDG_DATA_DIRS", dirs, TRUE);
}

/* GTK 3's GtkStatusIcon, embedded in an XEmbed tray, trips an assertion
 * inside GDK (gdk_window_thaw_toplevel_updates) when its icon changes:
 * GTK's own bug, seen with every tray host. Every other warning or critical
 * still fails the test. */
static GLogWriterOutput
log_writer (GLogLevelFlags level, const GLogField *fields, gsize n_fields, gpointer data)
{
  if (level & (G_LOG_LEVEL_CRITICAL | G_LOG_LEVEL_WARNING))
    {
      const char *domain = NULL, *message = NULL;
      for (gsize i = 0; i < n_fields; i++)
        {
          if (g_str_equal (fields[i].key, "GLIB_DOMAIN"))
            domain = fields[i].value;
          else if (g_str_equal (fields[i].key, "MESSAGE"))
            message = fields[i].value;
        }
      if (!(g_strcmp0 (domain, "Gdk") == 0 && message != NULL
            && strstr (message, "gdk_window_thaw_toplevel_updates") != NULL))
        g_test_fail ();
    }
  return g_log_writer_default (level, fields, n_fields, data);
}

int
main (int argc, char **argv)
{
  g_autoptr (GError) error = NULL;
  const char *lang = g_getenv ("LANGUAGE");
  int ret;

  /* Before anything reads them: a private home, GNOME's keyfile backend, the
   * build's catalogues, the notification server on the test bus. */
  env.dir = g_dir_make_tmp ("pinhole-tray-XXXXXX", &error);
  g_assert_no_error (error);
  g_setenv ("HOME", env.dir, TRUE);
  g_setenv ("XDG_CONFIG_HOME", env.dir, TRUE);
  g_setenv ("XDG_STATE_HOME", env.dir, TRUE);
  g_setenv ("XDG_RUNTIME_DIR", env.dir, TRUE);
  g_setenv ("GSETTINGS_BACKEND", "keyfile", TRUE);
  g_setenv ("GNOTIFICATION_BACKEND", "freedesktop", TRUE);
  g_setenv ("PH_SECRET_STORE", "file", TRUE);
  g_setenv ("PH_TRAY_ICON", "status-icon", TRUE);
  /* No accessibility bus on the private test bus. */
  g_setenv ("NO_AT_BRIDGE", "1", TRUE);
  g_unsetenv ("DBUS_SESSION_BUS_ADDRESS");
  install_icons ();
  setlocale (LC_ALL, "");
  if (g_getenv ("PH_TEST_LOCALEDIR") != NULL)
    bindtextdomain (GETTEXT_PACKAGE, g_getenv ("PH_TEST_LOCALEDIR"));
  bind_textdomain_codeset (GETTEXT_PACKAGE, "UTF-8");
  textdomain (GETTEXT_PACKAGE);
  env.lang = g_strdup (lang && g_str_has_prefix (lang, "zh") ? "zh_CN" : "en");
  env.artifacts = g_build_filename (g_getenv ("G_TEST_BUILDDIR") ?: ".", "artifacts", NULL);
  g_mkdir_with_parents (env.artifacts, 0755);
  env.procs = g_ptr_array_new_with_free_func (g_object_unref);

  g_test_init (&argc, &argv, NULL);
  g_log_set_always_fatal (G_LOG_FATAL_MASK);
  g_log_set_writer_func (log_writer, NULL, NULL);
  ph_error_quark ();
  env.skip = !env_up ();
  g_test_add_func ("/pinhole/tray/desktop-list", test_desktop_list);
  g_test_add_func ("/pinhole/tray/quit-and-crash", test_quit_and_crash);
  g_test_add_func ("/pinhole/tray/connections-option", test_connections_option);
  /* The tray processes first: the in-process tray, once started, sets the proxy too. */
  g_test_add_func ("/pinhole/tray/pac-quit", test_pac_quit);
  g_test_add_func ("/pinhole/tray/migrate-bypass", test_migrate_bypass);
  g_test_add_func ("/pinhole/tray/toggle", test_toggle);
  g_test_add_func ("/pinhole/tray/error-notifies", test_error_notifies);
  g_test_add_func ("/pinhole/tray/unreachable-direct-notifies", test_unreachable_direct_notifies);
  g_test_add_func ("/pinhole/tray/pin-mismatch", test_pin_mismatch);
  g_test_add_func ("/pinhole/tray/settings", test_settings);
  g_test_add_func ("/pinhole/tray/route-settings", test_route_settings);
  g_test_add_func ("/pinhole/tray/captive-portal", test_captive_portal);
  g_test_add_func ("/pinhole/tray/upstream-lines", test_upstream_lines);
  g_test_add_func ("/pinhole/tray/cloud-proxy-menu", test_cloud_proxy_menu);
  g_test_add_func ("/pinhole/tray/diagnose", test_diagnose);
  g_test_add_func ("/pinhole/tray/connections", test_connections);
  g_test_add_func ("/pinhole/tray/menu", test_menu);
  ret = g_test_run ();
  if (!env_down ())
    ret = 1;
  ph_test_remove_tree (env.dir);
  return ret;
}

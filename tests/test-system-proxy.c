/* SPDX-License-Identifier: GPL-2.0-or-later */
/* test-system-proxy.c: the system-proxy shim of platform/ph-system-proxy.h against GNOME's real
 * org.gnome.system.proxy schema (GSettings' keyfile backend, which other processes see too) and
 * KDE's real kwriteconfig/kreadconfig, all in a private XDG_CONFIG_HOME: round trips back to
 * the exact previous values, someone else's change, enable twice, a journal that cannot be
 * written, and a kill -9 between enable and disable. */
#include "ph-system-proxy.h"
#include "ph-test-system-proxy.h"
#include "ph-test-util.h"
#include "ph-error.h"

#include <signal.h>
#include <string.h>
#include <sys/stat.h>
#include <glib/gstdio.h>
#include <gio/gio.h>
#include <unistd.h>

/* The test binary run as the process that enables and is then killed. */
#define CHILD_ARG "--enable-and-wait"

#define SCHEMA "org.gnome.system.proxy"
#define PAC_URL "http://wpad.corp.example/proxy.pac"
#define KDE_ABSENT "(absent)"
/* The agent's PAC, as the tray points the desktop at it with [system-proxy] mode=pac. */
#define AGENT_PAC "http://127.0.0.1:3128/proxy.pac"

static const char *const bypass[]
    = { "localhost", "127.0.0.0/8", "::1", "intranet.corp.example", NULL };

static char *test_root; /* everything the binary writes, removed at the end */
static char *config_home;
static GTestDBus *session_bus; /* NULL without dbus-daemon */
static guint fixture_serial;

typedef struct
{
  char *dir;     /* this test's, below test_root */
  char *journal; /* in a directory that does not exist yet */
} Fixture;

/* --- presence of the real parts --- */

static gboolean
have_gnome (void)
{
  GSettingsSchemaSource *source = g_settings_schema_source_get_default ();
  g_autoptr (GSettingsSchema) schema
      = source != NULL ? g_settings_schema_source_lookup (source, SCHEMA, TRUE) : NULL;

  return schema != NULL;
}

static char *
kde_tool (const char *kind)
{
  static const char *const versions[] = { "6", "5" };

  for (guint i = 0; i < G_N_ELEMENTS (versions); i++)
    {
      g_autofree char *name = g_strconcat (kind, versions[i], NULL);
      char *path = g_find_program_in_path (name);
      if (path != NULL)
        return path;
    }
  return NULL;
}

static gboolean
have_kde (void)
{
  g_autofree char *reader = kde_tool ("kreadconfig");
  g_autofree char *writer = kde_tool ("kwriteconfig");

  return reader != NULL && writer != NULL;
}

/* A missing part skips the case on a developer's machine and fails it on CI, where
 * tests/install-deps.sh has installed it. */
static gboolean
require (gboolean present, const char *what)
{
  if (present)
    return TRUE;
  if (g_strcmp0 (g_getenv ("CI"), "true") == 0)
    g_test_fail_printf ("%s is missing (tests/install-deps.sh installs it)", what);
  else
    g_test_skip_printf ("%s is missing", what);
  return FALSE;
}

/* --- GNOME: the keys as GVariant text, NULL when not set --- */

static GSettings *
gnome_settings (const char *child)
{
  g_autofree char *id = *child != '\0' ? g_strconcat (SCHEMA ".", child, NULL) : g_strdup (SCHEMA);

  return g_settings_new (id);
}

static char *
gnome_get (const char *child, const char *key)
{
  g_autoptr (GSettings) settings = gnome_settings (child);
  g_autoptr (GVariant) value = g_settings_get_user_value (settings, key);

  return value != NULL ? g_variant_print (value, FALSE) : NULL;
}

static void
gnome_set (const char *child, const char *key, const char *text)
{
  g_autoptr (GSettings) settings = gnome_settings (child);
  g_autoptr (GSettingsSchema) schema = NULL;
  g_autoptr (GSettingsSchemaKey) skey = NULL;
  g_autoptr (GVariant) value = NULL;
  g_autoptr (GError) error = NULL;

  g_object_get (settings, "settings-schema", &schema, NULL);
  skey = g_settings_schema_get_key (schema, key);
  value = g_variant_parse (g_settings_schema_key_get_value_type (skey), text, NULL, NULL, &error);
  g_assert_no_error (error);
  g_assert_true (g_settings_set_value (settings, key, value));
  g_settings_sync ();
}

static int
compare_strings (const void *a, const void *b)
{
  return strcmp (*(const char *const *) a, *(const char *const *) b);
}

/* Every key of the proxy schemas and whether the user set it: "before" and "after" must match
 * to the byte, unset keys included. */
static char *
gnome_snapshot (void)
{
  static const char *const children[] = { "", "http", "https", "ftp", "socks" };
  GString *out = g_string_new (NULL);

  for (guint i = 0; i < G_N_ELEMENTS (children); i++)
    {
      g_autoptr (GSettings) settings = gnome_settings (children[i]);
      g_autoptr (GSettingsSchema) schema = NULL;
      g_auto (GStrv) keys = NULL;

      g_object_get (settings, "settings-schema", &schema, NULL);
      keys = g_settings_schema_list_keys (schema);
      qsort (keys, g_strv_length (keys), sizeof (char *), compare_strings);
      for (guint k = 0; keys[k] != NULL; k++)
        {
          g_autofree char *value = gnome_get (children[i], keys[k]);
          g_string_append_printf (out, "%s/%s=%s\n", children[i], keys[k],
                                  value != NULL ? value : "(unset)");
        }
    }
  return g_string_free (out, FALSE);
}

static void
gnome_reset_all (void)
{
  static const char *const children[] = { "", "http", "https", "ftp", "socks" };

  for (guint i = 0; i < G_N_ELEMENTS (children); i++)
    {
      g_autoptr (GSettings) settings = gnome_settings (children[i]);
      g_autoptr (GSettingsSchema) schema = NULL;
      g_auto (GStrv) keys = NULL;

      g_object_get (settings, "settings-schema", &schema, NULL);
      keys = g_settings_schema_list_keys (schema);
      for (guint k = 0; keys[k] != NULL; k++)
        g_settings_reset (settings, keys[k]);
    }
  g_settings_sync ();
}

/* A corporate desktop: a PAC, its own ignore list, and an authenticating proxy left behind. */
static void
gnome_preset_corporate (void)
{
  gnome_set ("", "mode", "'auto'");
  gnome_set ("", "autoconfig-url", "'" PAC_URL "'");
  gnome_set ("", "ignore-hosts", "['localhost', '*.corp.example', '10.0.0.0/8']");
  gnome_set ("http", "host", "'proxy.corp.example'");
  gnome_set ("http", "port", "8080");
  gnome_set ("http", "use-authentication", "true");
  gnome_set ("http", "authentication-user", "'alice'");
}

/* Another process changed the keyfile: waits until this process's GSettings has noticed. */
static void
gnome_wait_for_mode (const char *mode)
{
  g_autoptr (GSettings) settings = gnome_settings ("");
  gint64 deadline = g_get_monotonic_time () + 20 * G_USEC_PER_SEC;

  for (;;)
    {
      g_autofree char *now = g_settings_get_string (settings, "mode");
      if (strcmp (now, mode) == 0)
        return;
      if (g_get_monotonic_time () > deadline)
        g_error ("GNOME proxy mode is still '%s', not '%s'", now, mode);
      while (g_main_context_iteration (NULL, FALSE))
        ;
      g_usleep (10 * 1000);
    }
}

static void
gnome_assert_pinhole (const char *host, const char *port)
{
  g_autofree char *mode = gnome_get ("", "mode");
  g_autofree char *http_host = gnome_get ("http", "host");
  g_autofree char *http_port = gnome_get ("http", "port");
  g_autofree char *https_host = gnome_get ("https", "host");
  g_autofree char *https_port = gnome_get ("https", "port");
  g_autofree char *ignore = gnome_get ("", "ignore-hosts");
  g_autofree char *same = gnome_get ("", "use-same-proxy");

  g_assert_cmpstr (mode, ==, "'manual'");
  g_assert_cmpstr (http_host, ==, host);
  g_assert_cmpstr (http_port, ==, port);
  g_assert_cmpstr (https_host, ==, host);
  g_assert_cmpstr (https_port, ==, port);
  g_assert_cmpstr (ignore, ==, "['localhost', '127.0.0.0/8', '::1', 'intranet.corp.example']");
  g_assert_cmpstr (same, ==, "false");
}

/* --- KDE: kioslaverc through KDE's own tools --- */

static char *
kde_get (const char *group, const char *key)
{
  g_autofree char *tool = kde_tool ("kreadconfig");
  g_autofree char *out = NULL;
  g_autoptr (GError) error = NULL;
  int status = 0;
  const char *argv[] = { tool,    "--file", "kioslaverc", "--group",  group,
                         "--key", key,      "--default",  KDE_ABSENT, NULL };

  g_spawn_sync (NULL, (char **) argv, NULL, G_SPAWN_STDERR_TO_DEV_NULL, NULL, NULL, &out, NULL,
                &status, &error);
  g_assert_no_error (error);
  g_assert_true (g_spawn_check_wait_status (status, NULL));
  g_assert_true (g_str_has_suffix (out, "\n"));
  out[strlen (out) - 1] = '\0';
  return g_steal_pointer (&out);
}

static void
kde_set (const char *group, const char *key, const char *value)
{
  g_autofree char *tool = kde_tool ("kwriteconfig");
  g_autoptr (GError) error = NULL;
  int status = 0;
  const char *argv[]
      = { tool, "--file", "kioslaverc", "--group", group, "--key", key, "--", value, NULL };

  g_spawn_sync (NULL, (char **) argv, NULL, G_SPAWN_STDERR_TO_DEV_NULL, NULL, NULL, NULL, NULL,
                &status, &error);
  g_assert_no_error (error);
  g_assert_true (g_spawn_check_wait_status (status, NULL));
}

static char *
kde_snapshot (void)
{
  static const char *const keys[]
      = { "ProxyType", "Proxy Config Script", "httpProxy",  "httpsProxy",
          "ftpProxy",  "socksProxy",          "NoProxyFor", "ReversedException" };
  GString *out = g_string_new (NULL);
  g_autofree char *other = NULL;

  for (guint i = 0; i < G_N_ELEMENTS (keys); i++)
    {
      g_autofree char *value = kde_get ("Proxy Settings", keys[i]);
      g_string_append_printf (out, "%s=%s\n", keys[i], value);
    }
  other = kde_get ("Other", "foo");
  g_string_append_printf (out, "Other/foo=%s\n", other);
  return g_string_free (out, FALSE);
}

/* A desktop whose proxy is a PAC, as KDE's settings module saves it. */
static void
kde_preset_corporate (void)
{
  kde_set ("Proxy Settings", "ProxyType", "2");
  kde_set ("Proxy Settings", "Proxy Config Script", PAC_URL);
  kde_set ("Proxy Settings", "NoProxyFor", "*.corp.example,10.0.0.0/8");
  kde_set ("Other", "foo", "bar");
}

static void
kde_assert_pinhole (const char *proxy)
{
  g_autofree char *type = kde_get ("Proxy Settings", "ProxyType");
  g_autofree char *http = kde_get ("Proxy Settings", "httpProxy");
  g_autofree char *https = kde_get ("Proxy Settings", "httpsProxy");
  g_autofree char *no_proxy = kde_get ("Proxy Settings", "NoProxyFor");
  g_autofree char *reversed = kde_get ("Proxy Settings", "ReversedException");

  g_assert_cmpstr (type, ==, "1");
  g_assert_cmpstr (http, ==, proxy);
  g_assert_cmpstr (https, ==, proxy);
  g_assert_cmpstr (no_proxy, ==, "localhost,127.0.0.0/8,::1,intranet.corp.example");
  g_assert_cmpstr (reversed, ==, "false");
}

/* --- common --- */

static void
fixture_setup (Fixture *f, gconstpointer data)
{
  g_autofree char *kioslaverc = g_build_filename (config_home, "kioslaverc", NULL);
  g_autofree char *name = g_strdup_printf ("case-%u", ++fixture_serial);

  f->dir = g_build_filename (test_root, name, NULL);
  g_assert_cmpint (g_mkdir_with_parents (f->dir, 0700), ==, 0);
  f->journal = g_build_filename (f->dir, "state", "pinhole", "system-proxy.journal", NULL);
  if (have_gnome ())
    gnome_reset_all ();
  g_unlink (kioslaverc);
}

static void
fixture_teardown (Fixture *f, gconstpointer data)
{
  g_free (f->journal);
  g_free (f->dir);
}

static gboolean
uses_backend (PhSystemProxy *sp, const char *name)
{
  return g_strv_contains (ph_system_proxy_get_backends (sp), name);
}

/* The journal is private: its directory 0700, the file 0600. */
static void
assert_journal_private (const char *journal)
{
  g_autofree char *dir = g_path_get_dirname (journal);
  GStatBuf st;

  g_assert_cmpint (g_stat (journal, &st), ==, 0);
  g_assert_cmpint (st.st_mode & 0777, ==, 0600);
  g_assert_cmpint (g_stat (dir, &st), ==, 0);
  g_assert_cmpint (st.st_mode & 0777, ==, 0700);
}

/* --- GNOME cases --- */

typedef struct
{
  const char *name;
  void (*preset) (void);
} GnomePreset;

static const GnomePreset gnome_presets[] = {
  { "defaults", NULL },
  { "corporate-pac", gnome_preset_corporate },
};

static void
test_gnome_round_trip (Fixture *f, gconstpointer data)
{
  const GnomePreset *preset = data;
  g_autoptr (PhSystemProxy) sp = NULL;
  g_autofree char *before = NULL;
  g_autofree char *after = NULL;
  g_autofree char *auth = NULL;
  g_autofree char *pac = NULL;

  if (!require (have_gnome (), "the " SCHEMA " schema (gsettings-desktop-schemas)"))
    return;
  if (preset->preset != NULL)
    preset->preset ();
  before = gnome_snapshot ();

  sp = ph_system_proxy_new (f->journal);
  g_assert_true (uses_backend (sp, "gnome"));
  g_assert_false (ph_system_proxy_is_enabled (sp));
  enable_ok (sp, "127.0.0.1", 3128, bypass);
  gnome_assert_pinhole ("'127.0.0.1'", "3128");
  /* Credentials for the old proxy are not sent to Pinhole; its PAC URL is left alone. */
  auth = gnome_get ("http", "use-authentication");
  g_assert_true (auth == NULL || strcmp (auth, "false") == 0);
  pac = gnome_get ("", "autoconfig-url");
  if (preset->preset != NULL)
    g_assert_cmpstr (pac, ==, "'" PAC_URL "'");
  assert_journal_private (f->journal);

  disable_ok (sp);
  after = gnome_snapshot ();
  g_assert_cmpstr (after, ==, before);
  g_assert_false (g_file_test (f->journal, G_FILE_TEST_EXISTS));

  /* Nothing left to put back: a second disable is a no-op. */
  disable_ok (sp);
}

static void
test_gnome_foreign_change (Fixture *f, gconstpointer data)
{
  g_autoptr (PhSystemProxy) sp = NULL;
  g_autofree char *mode = NULL;
  g_autofree char *ignore = NULL;
  g_autofree char *host = NULL;
  g_autofree char *port = NULL;

  if (!require (have_gnome (), "the " SCHEMA " schema (gsettings-desktop-schemas)"))
    return;
  gnome_preset_corporate ();
  sp = ph_system_proxy_new (f->journal);
  enable_ok (sp, "127.0.0.1", 3128, bypass);
  /* Someone edits the ignore list in GNOME Settings while Pinhole is on. */
  gnome_set ("", "ignore-hosts", "['their.example']");
  /* The tray asks again whenever the agent's state changes: the same
   * values write nothing, so their edit stays. */
  enable_ok (sp, "127.0.0.1", 3128, bypass);
  {
    g_autofree char *still = gnome_get ("", "ignore-hosts");
    g_assert_cmpstr (still, ==, "['their.example']");
  }

  g_test_expect_message ("pinhole-system-proxy", G_LOG_LEVEL_MESSAGE,
                         "*ignore-hosts was changed by someone else*");
  disable_ok (sp);
  g_test_assert_expected_messages ();

  ignore = gnome_get ("", "ignore-hosts");
  g_assert_cmpstr (ignore, ==, "['their.example']");
  mode = gnome_get ("", "mode");
  g_assert_cmpstr (mode, ==, "'auto'");
  host = gnome_get ("http", "host");
  g_assert_cmpstr (host, ==, "'proxy.corp.example'");
  port = gnome_get ("http", "port");
  g_assert_cmpstr (port, ==, "8080");
}

static void
test_gnome_enable_twice (Fixture *f, gconstpointer data)
{
  g_autoptr (PhSystemProxy) sp = NULL;
  g_autofree char *before = NULL;
  g_autofree char *after = NULL;

  if (!require (have_gnome (), "the " SCHEMA " schema (gsettings-desktop-schemas)"))
    return;
  gnome_preset_corporate ();
  before = gnome_snapshot ();
  sp = ph_system_proxy_new (f->journal);
  enable_ok (sp, "127.0.0.1", 3128, bypass);
  enable_ok (sp, "127.0.0.1", 3129, bypass);
  gnome_assert_pinhole ("'127.0.0.1'", "3129");

  /* As if a crash had come after the journal's update and before the port's: the key still
   * holds what Pinhole set the first time, which is Pinhole's to put back too. */
  gnome_set ("http", "port", "3128");

  disable_ok (sp);
  after = gnome_snapshot ();
  g_assert_cmpstr (after, ==, before);
}

/* --- the crash: a child enables and is killed with SIGKILL --- */

static int
child_main (const char *journal, gboolean pac)
{
  g_autoptr (PhSystemProxy) sp = ph_system_proxy_new (journal);
  g_autoptr (GError) error = NULL;

  if (pac ? !ph_system_proxy_enable_pac (sp, AGENT_PAC, bypass, &error)
          : !ph_system_proxy_enable (sp, "127.0.0.1", 3128, bypass, &error))
    {
      g_printerr ("child: %s\n", error->message);
      return 1;
    }
  g_print ("enabled\n");
  fflush (stdout);
  for (;;)
    g_usleep (G_USEC_PER_SEC);
}

static void
run_child_and_kill_mode (const char *journal, gboolean pac)
{
  g_autofree char *self = g_file_read_link ("/proc/self/exe", NULL);
  g_autoptr (GSubprocess) child = NULL;
  g_autoptr (GDataInputStream) lines = NULL;
  g_autofree char *line = NULL;
  g_autoptr (GError) error = NULL;

  g_assert_nonnull (self);
  child = g_subprocess_new (G_SUBPROCESS_FLAGS_STDOUT_PIPE, &error, self, CHILD_ARG, journal,
                            pac ? "pac" : NULL, NULL);
  g_assert_no_error (error);
  lines = g_data_input_stream_new (g_subprocess_get_stdout_pipe (child));
  line = g_data_input_stream_read_line_utf8 (lines, NULL, NULL, &error);
  g_assert_no_error (error);
  g_assert_cmpstr (line, ==, "enabled");

  g_subprocess_send_signal (child, SIGKILL);
  g_subprocess_wait (child, NULL, &error);
  g_assert_no_error (error);
  g_assert_true (g_subprocess_get_if_signaled (child));
  g_assert_cmpint (g_subprocess_get_term_sig (child), ==, SIGKILL);
  g_assert_true (g_file_test (journal, G_FILE_TEST_EXISTS));
}

static void
run_child_and_kill (const char *journal)
{
  run_child_and_kill_mode (journal, FALSE);
}

static void
test_gnome_crash (Fixture *f, gconstpointer data)
{
  g_autofree char *before = NULL;
  g_autofree char *after = NULL;

  if (!require (have_gnome (), "the " SCHEMA " schema (gsettings-desktop-schemas)"))
    return;
  gnome_preset_corporate ();
  before = gnome_snapshot ();

  run_child_and_kill (f->journal);
  gnome_wait_for_mode ("manual");
  gnome_assert_pinhole ("'127.0.0.1'", "3128");

  recover_ok (f->journal, TRUE);
  after = gnome_snapshot ();
  g_assert_cmpstr (after, ==, before);

  recover_ok (f->journal, FALSE);
}

static void
test_kde_crash (Fixture *f, gconstpointer data)
{
  g_autofree char *before = NULL;
  g_autofree char *after = NULL;

  if (!require (have_kde (), "kwriteconfig5/kreadconfig5 (libkf5config-bin)"))
    return;
  kde_preset_corporate ();
  before = kde_snapshot ();

  run_child_and_kill (f->journal);
  kde_assert_pinhole ("http://127.0.0.1 3128");

  recover_ok (f->journal, TRUE);
  after = kde_snapshot ();
  g_assert_cmpstr (after, ==, before);

  recover_ok (f->journal, FALSE);
}

/* --- KDE cases --- */

static void
on_reparse (GDBusConnection *connection, const char *sender, const char *path,
            const char *interface, const char *signal, GVariant *parameters, gpointer user_data)
{
  guint *count = user_data;
  (*count)++;
}

static void
test_kde_round_trip (Fixture *f, gconstpointer data)
{
  gboolean preset = GPOINTER_TO_INT (data);
  g_autoptr (PhSystemProxy) sp = NULL;
  g_autoptr (GDBusConnection) listener = NULL;
  g_autofree char *before = NULL;
  g_autofree char *after = NULL;
  guint signals = 0;
  guint subscription = 0;

  if (!require (have_kde (), "kwriteconfig5/kreadconfig5 (libkf5config-bin)"))
    return;
  if (preset)
    kde_preset_corporate ();
  before = kde_snapshot ();

  /* KIO applications are told to read kioslaverc again, as KDE's settings module tells them. */
  if (session_bus != NULL)
    {
      g_autoptr (GError) error = NULL;

      listener = g_dbus_connection_new_for_address_sync (
          g_test_dbus_get_bus_address (session_bus),
          G_DBUS_CONNECTION_FLAGS_AUTHENTICATION_CLIENT
              | G_DBUS_CONNECTION_FLAGS_MESSAGE_BUS_CONNECTION,
          NULL, NULL, &error);
      g_assert_no_error (error);
      subscription = g_dbus_connection_signal_subscribe (
          listener, NULL, "org.kde.KIO.Scheduler", "reparseSlaveConfiguration", "/KIO/Scheduler",
          NULL, G_DBUS_SIGNAL_FLAGS_NONE, on_reparse, &signals, NULL);
    }

  sp = ph_system_proxy_new (f->journal);
  g_assert_true (uses_backend (sp, "kde"));
  enable_ok (sp, "127.0.0.1", 3128, bypass);
  kde_assert_pinhole ("http://127.0.0.1 3128");
  assert_journal_private (f->journal);

  if (listener != NULL)
    {
      gint64 deadline = g_get_monotonic_time () + 10 * G_USEC_PER_SEC;
      while (signals == 0 && g_get_monotonic_time () < deadline)
        g_main_context_iteration (NULL, TRUE);
      g_assert_cmpuint (signals, >, 0);
      g_dbus_connection_signal_unsubscribe (listener, subscription);
      g_dbus_connection_close_sync (listener, NULL, NULL);
    }

  disable_ok (sp);
  after = kde_snapshot ();
  g_assert_cmpstr (after, ==, before);
  g_assert_false (g_file_test (f->journal, G_FILE_TEST_EXISTS));
}

static void
test_kde_foreign_change (Fixture *f, gconstpointer data)
{
  g_autoptr (PhSystemProxy) sp = NULL;
  g_autofree char *no_proxy = NULL;
  g_autofree char *type = NULL;
  g_autofree char *http = NULL;

  if (!require (have_kde (), "kwriteconfig5/kreadconfig5 (libkf5config-bin)"))
    return;
  kde_preset_corporate ();
  sp = ph_system_proxy_new (f->journal);
  enable_ok (sp, "127.0.0.1", 3128, bypass);
  kde_set ("Proxy Settings", "NoProxyFor", "their.example");

  g_test_expect_message ("pinhole-system-proxy", G_LOG_LEVEL_MESSAGE,
                         "*NoProxyFor was changed by someone else*");
  disable_ok (sp);
  g_test_assert_expected_messages ();

  no_proxy = kde_get ("Proxy Settings", "NoProxyFor");
  g_assert_cmpstr (no_proxy, ==, "their.example");
  type = kde_get ("Proxy Settings", "ProxyType");
  g_assert_cmpstr (type, ==, "2");
  http = kde_get ("Proxy Settings", "httpProxy");
  g_assert_cmpstr (http, ==, KDE_ABSENT);
}

static void
test_kde_enable_twice (Fixture *f, gconstpointer data)
{
  g_autoptr (PhSystemProxy) sp = NULL;
  g_autofree char *before = NULL;
  g_autofree char *after = NULL;

  if (!require (have_kde (), "kwriteconfig5/kreadconfig5 (libkf5config-bin)"))
    return;
  kde_preset_corporate ();
  before = kde_snapshot ();
  sp = ph_system_proxy_new (f->journal);
  enable_ok (sp, "127.0.0.1", 3128, bypass);
  enable_ok (sp, "127.0.0.1", 3129, bypass);
  kde_assert_pinhole ("http://127.0.0.1 3129");
  disable_ok (sp);
  after = kde_snapshot ();
  g_assert_cmpstr (after, ==, before);
}

/* --- PAC mode ([system-proxy] mode=pac) --- */

static void
gnome_assert_pac (void)
{
  g_autofree char *mode = gnome_get ("", "mode");
  g_autofree char *url = gnome_get ("", "autoconfig-url");
  g_autofree char *ignore = gnome_get ("", "ignore-hosts");

  g_assert_cmpstr (mode, ==, "'auto'");
  g_assert_cmpstr (url, ==, "'" AGENT_PAC "'");
  g_assert_cmpstr (ignore, ==, "['localhost', '127.0.0.0/8', '::1', 'intranet.corp.example']");
}

static void
test_gnome_pac (Fixture *f, gconstpointer data)
{
  const GnomePreset *preset = data;
  g_autoptr (PhSystemProxy) sp = NULL;
  g_autofree char *before = NULL;
  g_autofree char *after = NULL;
  g_autofree char *host = NULL;

  if (!require (have_gnome (), "the " SCHEMA " schema (gsettings-desktop-schemas)"))
    return;
  if (preset->preset != NULL)
    preset->preset ();
  before = gnome_snapshot ();
  sp = ph_system_proxy_new (f->journal);
  enable_pac_ok (sp, AGENT_PAC, bypass);
  gnome_assert_pac ();
  /* The manual proxy's keys are not Pinhole's business in this mode. */
  host = gnome_get ("http", "host");
  if (preset->preset != NULL)
    g_assert_cmpstr (host, ==, "'proxy.corp.example'");
  assert_journal_mode (f->journal, "pac");
  assert_journal_private (f->journal);

  disable_ok (sp);
  after = gnome_snapshot ();
  g_assert_cmpstr (after, ==, before);
  g_assert_false (g_file_test (f->journal, G_FILE_TEST_EXISTS));
}

/* The user switches the mode while the tunnel is on: the original values still come back. */
static void
test_gnome_switch_mode (Fixture *f, gconstpointer data)
{
  g_autoptr (PhSystemProxy) sp = NULL;
  g_autofree char *before = NULL;
  g_autofree char *after = NULL;

  if (!require (have_gnome (), "the " SCHEMA " schema (gsettings-desktop-schemas)"))
    return;
  gnome_preset_corporate ();
  before = gnome_snapshot ();
  sp = ph_system_proxy_new (f->journal);
  enable_ok (sp, "127.0.0.1", 3128, bypass);
  gnome_assert_pinhole ("'127.0.0.1'", "3128");
  assert_journal_mode (f->journal, "manual");
  enable_pac_ok (sp, AGENT_PAC, bypass);
  gnome_assert_pac ();
  assert_journal_mode (f->journal, "pac");
  enable_ok (sp, "127.0.0.1", 3129, bypass);
  gnome_assert_pinhole ("'127.0.0.1'", "3129");
  enable_pac_ok (sp, AGENT_PAC, bypass);
  disable_ok (sp);
  after = gnome_snapshot ();
  g_assert_cmpstr (after, ==, before);
}

static void
test_gnome_pac_crash (Fixture *f, gconstpointer data)
{
  g_autofree char *before = NULL;
  g_autofree char *after = NULL;

  if (!require (have_gnome (), "the " SCHEMA " schema (gsettings-desktop-schemas)"))
    return;
  gnome_preset_corporate ();
  before = gnome_snapshot ();
  run_child_and_kill_mode (f->journal, TRUE);
  /* The child's writes reach this process's view of the keyfile a moment later. */
  for (gint64 deadline = g_get_monotonic_time () + 10 * G_USEC_PER_SEC;;)
    {
      g_autofree char *url = gnome_get ("", "autoconfig-url");
      if (g_strcmp0 (url, "'" AGENT_PAC "'") == 0)
        break;
      g_assert_cmpint (g_get_monotonic_time (), <, deadline);
      g_main_context_iteration (NULL, FALSE);
      g_usleep (20 * 1000);
    }
  gnome_assert_pac ();
  recover_ok (f->journal, TRUE);
  after = gnome_snapshot ();
  g_assert_cmpstr (after, ==, before);
}

static void
test_kde_pac (Fixture *f, gconstpointer data)
{
  gboolean preset = GPOINTER_TO_INT (data);
  g_autoptr (PhSystemProxy) sp = NULL;
  g_autofree char *before = NULL;
  g_autofree char *after = NULL;
  g_autofree char *type = NULL;
  g_autofree char *script = NULL;

  if (!require (have_kde (), "kwriteconfig5/kreadconfig5 (libkf5config-bin)"))
    return;
  if (preset)
    kde_preset_corporate ();
  before = kde_snapshot ();
  sp = ph_system_proxy_new (f->journal);
  enable_pac_ok (sp, AGENT_PAC, bypass);
  type = kde_get ("Proxy Settings", "ProxyType");
  script = kde_get ("Proxy Settings", "Proxy Config Script");
  g_assert_cmpstr (type, ==, "2");
  g_assert_cmpstr (script, ==, AGENT_PAC);
  assert_journal_mode (f->journal, "pac");

  /* Manual and back to PAC while on; then everything as it was. */
  enable_ok (sp, "127.0.0.1", 3128, bypass);
  kde_assert_pinhole ("http://127.0.0.1 3128");
  enable_pac_ok (sp, AGENT_PAC, bypass);
  g_free (type);
  type = kde_get ("Proxy Settings", "ProxyType");
  g_assert_cmpstr (type, ==, "2");

  disable_ok (sp);
  after = kde_snapshot ();
  g_assert_cmpstr (after, ==, before);
  g_assert_false (g_file_test (f->journal, G_FILE_TEST_EXISTS));
}

/* --- both --- */

/* An IPv6 listener needs brackets: both desktops paste host and port into one URL. */
static void
test_ipv6_host (Fixture *f, gconstpointer data)
{
  g_autoptr (PhSystemProxy) sp = NULL;

  if (!require (have_gnome (), "the " SCHEMA " schema (gsettings-desktop-schemas)"))
    return;
  sp = ph_system_proxy_new (f->journal);
  enable_ok (sp, "::1", 3128, bypass);
  gnome_assert_pinhole ("'[::1]'", "3128");
  if (uses_backend (sp, "kde"))
    kde_assert_pinhole ("http://[::1] 3128");
  disable_ok (sp);
}

/* Two ways the journal cannot be written, both past reading it (there is none yet) and both
 * unstoppable by root, which ignores file modes. */
typedef enum
{
  /* Its directory is a dangling symbolic link: it cannot be created. */
  JOURNAL_NO_DIRECTORY,
  /* Its name leaves no room for the temporary file beside it (NAME_MAX is 255). */
  JOURNAL_NO_FILE,
} JournalBlock;

/* The journal goes to disk before any change: when it cannot be written, nothing changes. */
static void
test_journal_first (Fixture *f, gconstpointer data)
{
  JournalBlock block = GPOINTER_TO_INT (data);
  g_autofree char *journal = NULL;
  g_autoptr (PhSystemProxy) sp = NULL;
  g_autoptr (GError) error = NULL;
  g_autofree char *gnome_before = NULL;
  g_autofree char *gnome_after = NULL;
  g_autofree char *kde_before = NULL;
  g_autofree char *kde_after = NULL;

  if (!require (have_gnome (), "the " SCHEMA " schema (gsettings-desktop-schemas)"))
    return;
  if (block == JOURNAL_NO_DIRECTORY)
    {
      g_autofree char *link = g_build_filename (f->dir, "state", NULL);
      g_assert_cmpint (symlink ("/nonexistent/pinhole-test", link), ==, 0);
      journal = g_build_filename (link, "system-proxy.journal", NULL);
    }
  else
    {
      g_autofree char *name = g_strnfill (250, 'j');
      journal = g_build_filename (f->dir, name, NULL);
    }
  gnome_preset_corporate ();
  gnome_before = gnome_snapshot ();
  if (have_kde ())
    {
      kde_preset_corporate ();
      kde_before = kde_snapshot ();
    }

  sp = ph_system_proxy_new (journal);
  g_assert_false (ph_system_proxy_enable (sp, "127.0.0.1", 3128, bypass, &error));
  g_assert_error (error, PH_ERROR, PH_ERROR_FAILED);
  g_test_message ("expected failure: %s", error->message);
  /* It failed writing the journal, not reading it: that is the step under test. */
  g_assert_nonnull (strstr (error->message, "journal"));
  g_assert_false (g_str_has_prefix (error->message, "Cannot read"));
  g_assert_false (ph_system_proxy_is_enabled (sp));

  gnome_after = gnome_snapshot ();
  g_assert_cmpstr (gnome_after, ==, gnome_before);
  if (kde_before != NULL)
    {
      kde_after = kde_snapshot ();
      g_assert_cmpstr (kde_after, ==, kde_before);
    }
}

/* Values the desktops could not take unambiguously are refused before anything is written. */
static void
test_invalid (Fixture *f, gconstpointer data)
{
  static const char *const bad_bypass[] = { "localhost", "a.example,b.example", NULL };
  g_autoptr (PhSystemProxy) sp = NULL;
  g_autofree char *before = NULL;
  g_autofree char *after = NULL;

  if (!require (have_gnome (), "the " SCHEMA " schema (gsettings-desktop-schemas)"))
    return;
  before = gnome_snapshot ();
  sp = ph_system_proxy_new (f->journal);
  {
    g_autoptr (GError) error = NULL;
    g_assert_false (ph_system_proxy_enable (sp, "127.0.0.1", 0, bypass, &error));
    g_assert_error (error, PH_ERROR, PH_ERROR_FAILED);
  }
  {
    g_autoptr (GError) error = NULL;
    g_assert_false (ph_system_proxy_enable (sp, "127.0.0.1 x", 3128, bypass, &error));
    g_assert_error (error, PH_ERROR, PH_ERROR_FAILED);
  }
  {
    g_autoptr (GError) error = NULL;
    g_assert_false (ph_system_proxy_enable (sp, "127.0.0.1", 3128, bad_bypass, &error));
    g_assert_error (error, PH_ERROR, PH_ERROR_FAILED);
  }
  g_assert_false (ph_system_proxy_is_enabled (sp));
  g_assert_false (g_file_test (f->journal, G_FILE_TEST_EXISTS));
  after = gnome_snapshot ();
  g_assert_cmpstr (after, ==, before);
}

/* A journal that cannot be read is moved aside, so that it blocks only one start. */
static void
test_corrupt_journal (Fixture *f, gconstpointer data)
{
  g_autofree char *dir = g_path_get_dirname (f->journal);
  g_autofree char *aside = g_strconcat (f->journal, ".corrupt", NULL);
  g_autoptr (PhSystemProxy) sp = NULL;
  g_autoptr (GError) error = NULL;
  gboolean restored = TRUE;

  g_assert_cmpint (g_mkdir_with_parents (dir, 0700), ==, 0);
  g_assert_true (g_file_set_contents (f->journal, "[gnome\nnot a key file", -1, NULL));
  sp = ph_system_proxy_new (f->journal);
  g_assert_false (ph_system_proxy_recover (sp, &restored, &error));
  g_assert_error (error, PH_ERROR, PH_ERROR_FAILED);
  g_assert_false (g_file_test (f->journal, G_FILE_TEST_EXISTS));
  g_assert_true (g_file_test (aside, G_FILE_TEST_EXISTS));

  recover_ok (f->journal, FALSE);
}

static void
add_test (const char *path, gconstpointer data, void (*func) (Fixture *, gconstpointer))
{
  g_test_add (path, Fixture, data, fixture_setup, func, fixture_teardown);
}

int
main (int argc, char **argv)
{
  g_autoptr (GError) error = NULL;
  g_autofree char *settings_dir = NULL;
  g_autofree char *dbus_daemon = NULL;
  int status;

  if ((argc == 3 || argc == 4) && strcmp (argv[1], CHILD_ARG) == 0)
    return child_main (argv[2], argc == 4 && strcmp (argv[3], "pac") == 0);

  /* Before anything reads them: GLib caches the XDG directories and picks the GSettings backend
   * once. keyfile, unlike memory, is seen by the child process and survives its kill -9. */
  test_root = g_dir_make_tmp ("pinhole-system-proxy-XXXXXX", &error);
  g_assert_no_error (error);
  config_home = g_build_filename (test_root, "config", NULL);
  settings_dir = g_build_filename (config_home, "glib-2.0", "settings", NULL);
  /* The keyfile backend notices another process's writes only in a directory that exists. */
  g_assert_cmpint (g_mkdir_with_parents (settings_dir, 0700), ==, 0);
  g_setenv ("XDG_CONFIG_HOME", config_home, TRUE);
  g_setenv ("GSETTINGS_BACKEND", "keyfile", TRUE);
  g_unsetenv ("DBUS_SESSION_BUS_ADDRESS");

  g_test_init (&argc, &argv, NULL);

  /* A private session bus to hear KDE's reload signal; the real one is none of our business. */
  dbus_daemon = g_find_program_in_path ("dbus-daemon");
  if (dbus_daemon != NULL)
    {
      session_bus = g_test_dbus_new (G_TEST_DBUS_NONE);
      g_test_dbus_up (session_bus);
    }

  for (guint i = 0; i < G_N_ELEMENTS (gnome_presets); i++)
    {
      g_autofree char *path
          = g_strdup_printf ("/pinhole/system-proxy/gnome/round-trip/%s", gnome_presets[i].name);
      add_test (path, &gnome_presets[i], test_gnome_round_trip);
    }
  add_test ("/pinhole/system-proxy/gnome/foreign-change", NULL, test_gnome_foreign_change);
  add_test ("/pinhole/system-proxy/gnome/enable-twice", NULL, test_gnome_enable_twice);
  add_test ("/pinhole/system-proxy/gnome/crash", NULL, test_gnome_crash);
  add_test ("/pinhole/system-proxy/kde/round-trip/defaults", GINT_TO_POINTER (FALSE),
            test_kde_round_trip);
  add_test ("/pinhole/system-proxy/kde/round-trip/corporate-pac", GINT_TO_POINTER (TRUE),
            test_kde_round_trip);
  add_test ("/pinhole/system-proxy/kde/foreign-change", NULL, test_kde_foreign_change);
  add_test ("/pinhole/system-proxy/kde/enable-twice", NULL, test_kde_enable_twice);
  add_test ("/pinhole/system-proxy/kde/crash", NULL, test_kde_crash);
  for (guint i = 0; i < G_N_ELEMENTS (gnome_presets); i++)
    {
      g_autofree char *path
          = g_strdup_printf ("/pinhole/system-proxy/gnome/pac/%s", gnome_presets[i].name);
      add_test (path, &gnome_presets[i], test_gnome_pac);
    }
  add_test ("/pinhole/system-proxy/gnome/pac-switch-mode", NULL, test_gnome_switch_mode);
  add_test ("/pinhole/system-proxy/gnome/pac-crash", NULL, test_gnome_pac_crash);
  add_test ("/pinhole/system-proxy/kde/pac/defaults", GINT_TO_POINTER (FALSE), test_kde_pac);
  add_test ("/pinhole/system-proxy/kde/pac/corporate-pac", GINT_TO_POINTER (TRUE), test_kde_pac);
  add_test ("/pinhole/system-proxy/ipv6-host", NULL, test_ipv6_host);
  add_test ("/pinhole/system-proxy/journal-first/no-directory",
            GINT_TO_POINTER (JOURNAL_NO_DIRECTORY), test_journal_first);
  add_test ("/pinhole/system-proxy/journal-first/no-file", GINT_TO_POINTER (JOURNAL_NO_FILE),
            test_journal_first);
  add_test ("/pinhole/system-proxy/invalid", NULL, test_invalid);
  add_test ("/pinhole/system-proxy/corrupt-journal", NULL, test_corrupt_journal);

  status = g_test_run ();

  if (session_bus != NULL)
    {
      g_test_dbus_down (session_bus);
      g_clear_object (&session_bus);
    }
  ph_test_remove_tree (test_root);
  g_free (config_home);
  g_free (test_root);
  return status;
}

/* SPDX-License-Identifier: GPL-2.0-or-later */
/* test-control.c: org.pinhole.Agent1 through a real bus (GTestDBus) with
 * the real agent binary in --session mode, against real stunnel + Squid:
 * every method and property, error names, PropertiesChanged, locking by a
 * managed drop-in, stored credentials, the first-use pin flow, live reload. */
#define _GNU_SOURCE
#include "ph-agent1-generated.h"
#include "ph-error.h"
#include "ph-names.h"
#include "ph-test-cloud.h"
#include "ph-test-util.h"

#include <signal.h>
#include <sys/prctl.h>
#include <string.h>
#include <unistd.h>
#include <glib/gstdio.h>

#define WAIT_MS 15000

typedef struct
{
  PhTestCloud *cloud;
  GTestDBus *bus;
  char *dir;
  char *system_path, *user_path, *managed_dir, *state_dir, *log_path;
  GSubprocess *agent;
  PhAgent1 *proxy;
  GPtrArray *states_seen; /* State values carried by PropertiesChanged */
  guint16 port;
  gboolean skip;
} Fx;

static void
on_properties_changed (GDBusProxy *proxy, GVariant *changed, GStrv invalidated, gpointer data)
{
  Fx *fx = data;
  const char *state = NULL;

  if (g_variant_lookup (changed, "State", "&s", &state))
    g_ptr_array_add (fx->states_seen, g_strdup (state));
}

static char *
agent_log (Fx *fx)
{
  char *text = NULL;

  if (!g_file_get_contents (fx->log_path, &text, NULL, NULL))
    return g_strdup ("");
  return text;
}

/* The agent must not outlive a test that aborts. */
static void
die_with_parent (gpointer data)
{
  prctl (PR_SET_PDEATHSIG, SIGTERM);
}

static gboolean
agent_on_bus (Fx *fx)
{
  g_autofree char *owner = g_dbus_proxy_get_name_owner (G_DBUS_PROXY (fx->proxy));

  return owner != NULL && ph_agent1_get_state (fx->proxy) != NULL;
}

/* Starts the agent for this fixture's user and waits for it on the bus. */
static void
agent_start_full (Fx *fx, const char *mode, gboolean secret_service)
{
  g_autoptr (GSubprocessLauncher) launcher = g_subprocess_launcher_new (G_SUBPROCESS_FLAGS_NONE);
  g_autoptr (GError) error = NULL;
  g_autofree char *home = g_build_filename (fx->dir, "home", NULL);
  g_autofree char *config_home = g_build_filename (fx->dir, "config", NULL);
  g_autofree char *state_home = g_build_filename (fx->dir, "state", NULL);
  gint64 deadline = g_get_monotonic_time () + WAIT_MS * G_TIME_SPAN_MILLISECOND;

  g_subprocess_launcher_setenv (launcher, "HOME", home, TRUE);
  g_subprocess_launcher_setenv (launcher, "XDG_CONFIG_HOME", config_home, TRUE);
  g_subprocess_launcher_setenv (launcher, "XDG_STATE_HOME", state_home, TRUE);
  if (!secret_service)
    g_subprocess_launcher_setenv (launcher, "PH_SECRET_STORE", "file", TRUE);
  g_subprocess_launcher_unsetenv (launcher, "http_proxy");
  g_subprocess_launcher_unsetenv (launcher, "https_proxy");
  g_subprocess_launcher_set_stderr_file_path (launcher, fx->log_path);
  /* Not the test's stdout: a straggler holding it would stall the runner. */
  g_subprocess_launcher_set_stdout_file_path (launcher, "/dev/null");
  g_subprocess_launcher_set_child_setup (launcher, die_with_parent, NULL, NULL);
  fx->agent
      = g_subprocess_launcher_spawn (launcher, &error, g_getenv ("PH_AGENT"), mode, "--config",
                                     fx->system_path, "--managed-dir", fx->managed_dir, NULL);
  g_assert_no_error (error);

  fx->proxy
      = ph_agent1_proxy_new_for_bus_sync (G_BUS_TYPE_SESSION, G_DBUS_PROXY_FLAGS_NONE,
                                          PH_AGENT_BUS_NAME, PH_AGENT_OBJECT_PATH, NULL, &error);
  g_assert_no_error (error);
  while (!agent_on_bus (fx))
    {
      g_assert_cmpint (g_get_monotonic_time (), <, deadline);
      g_main_context_iteration (NULL, FALSE);
      g_usleep (10 * 1000);
    }
  g_signal_connect (fx->proxy, "g-properties-changed", G_CALLBACK (on_properties_changed), fx);
}

static void
agent_start (Fx *fx, const char *mode)
{
  agent_start_full (fx, mode, FALSE);
}

static void
agent_stop (Fx *fx)
{
  if (fx->agent == NULL)
    return;
  g_subprocess_send_signal (fx->agent, SIGTERM);
  g_subprocess_wait (fx->agent, NULL, NULL);
  g_assert_true (g_subprocess_get_if_exited (fx->agent));
  g_assert_cmpint (g_subprocess_get_exit_status (fx->agent), ==, 0);
  g_clear_object (&fx->agent);
  g_clear_object (&fx->proxy);
}

static void
fx_setup (Fx *fx, gconstpointer data)
{
  g_autoptr (GError) error = NULL;

  if (!ph_test_require_tools ())
    {
      fx->skip = TRUE;
      return;
    }
  fx->cloud = ph_test_cloud_new ("PH_CLOUD_ORIGIN=1", NULL);
  fx->dir = g_dir_make_tmp ("pinhole-control-XXXXXX", &error);
  g_assert_no_error (error);
  fx->system_path = g_build_filename (fx->dir, "system.conf", NULL);
  fx->user_path = g_build_filename (fx->dir, "config", "pinhole", "pinhole.conf", NULL);
  fx->managed_dir = g_build_filename (fx->dir, "managed.d", NULL);
  fx->state_dir = g_build_filename (fx->dir, "state", "pinhole", NULL);
  fx->log_path = g_build_filename (fx->dir, "agent.log", NULL);
  g_assert_cmpint (g_mkdir_with_parents (fx->managed_dir, 0755), ==, 0);
  fx->states_seen = g_ptr_array_new_with_free_func (g_free);
  fx->port = ph_test_free_port ();

  fx->bus = g_test_dbus_new (G_TEST_DBUS_NONE);
  g_test_dbus_up (fx->bus);
  agent_start (fx, "--session");
}

static void
fx_teardown (Fx *fx, gconstpointer data)
{
  if (fx->skip)
    return;
  if (g_test_failed ())
    {
      g_autofree char *log = agent_log (fx);
      g_test_message ("agent log:\n%s", log);
    }
  agent_stop (fx);
  g_test_dbus_down (fx->bus);
  g_clear_object (&fx->bus);
  g_clear_pointer (&fx->cloud, ph_test_cloud_free);
  ph_test_remove_tree (fx->dir);
  g_free (fx->dir);
  g_free (fx->system_path);
  g_free (fx->user_path);
  g_free (fx->managed_dir);
  g_free (fx->state_dir);
  g_free (fx->log_path);
  g_ptr_array_unref (fx->states_seen);
}

/* --- helpers --- */

static gboolean
wait_for (Fx *fx, gboolean (*check) (Fx *, gconstpointer), gconstpointer arg)
{
  gint64 deadline = g_get_monotonic_time () + WAIT_MS * G_TIME_SPAN_MILLISECOND;

  while (!check (fx, arg))
    {
      if (g_get_monotonic_time () > deadline)
        return FALSE;
      g_main_context_iteration (NULL, FALSE);
      g_usleep (5 * 1000);
    }
  return TRUE;
}

static gboolean
state_is (Fx *fx, gconstpointer want)
{
  return g_strcmp0 (ph_agent1_get_state (fx->proxy), want) == 0;
}

static void
assert_state (Fx *fx, const char *want)
{
  if (!wait_for (fx, state_is, want))
    {
      const char *name = NULL, *message = NULL;
      g_variant_get (ph_agent1_get_last_error (fx->proxy), "(&s&s)", &name, &message);
      g_error ("state is %s (%s: %s), expected %s", ph_agent1_get_state (fx->proxy), name, message,
               want);
    }
}

static gboolean
generation_is_past (Fx *fx, gconstpointer before)
{
  return ph_agent1_get_config_generation (fx->proxy) > GPOINTER_TO_UINT (before);
}

static gboolean
seen_pin_is (Fx *fx, gconstpointer want)
{
  return g_strcmp0 (ph_agent1_get_seen_pin (fx->proxy), want) == 0;
}

static gboolean
last_error_is (Fx *fx, gconstpointer want)
{
  const char *name = NULL;
  g_variant_get (ph_agent1_get_last_error (fx->proxy), "(&s&s)", &name, NULL);
  return g_strcmp0 (name, want) == 0;
}

static char *
last_error_message (Fx *fx)
{
  const char *message = NULL;
  g_variant_get (ph_agent1_get_last_error (fx->proxy), "(&s&s)", NULL, &message);
  return g_strdup (message);
}

static gboolean
strv_has (const char *const *strv, const char *s)
{
  return strv != NULL && g_strv_contains (strv, s);
}

static gboolean
pin_is_trusted (Fx *fx, gconstpointer pin)
{
  return strv_has (ph_agent1_get_trusted_pins (fx->proxy), pin);
}

static gboolean
credentials_stored (Fx *fx, gconstpointer want)
{
  return ph_agent1_get_credentials_stored (fx->proxy) == GPOINTER_TO_INT (want);
}

static gboolean
username_is (Fx *fx, gconstpointer want)
{
  return g_strcmp0 (ph_agent1_get_username (fx->proxy), want) == 0;
}

static gboolean
key_locked (Fx *fx, gconstpointer key)
{
  return strv_has (ph_agent1_get_locked_keys (fx->proxy), key);
}

static gboolean
key_unlocked (Fx *fx, gconstpointer key)
{
  return !key_locked (fx, key);
}

/* Asserts @error is the remote error @name, e.g. "org.pinhole.Error.Locked". */
static void
assert_remote_error (GError *error, const char *name, const char *needle)
{
  g_autofree char *remote = NULL;

  g_assert_nonnull (error);
  remote = g_dbus_error_get_remote_error (error);
  if (g_strcmp0 (remote, name) != 0)
    g_error ("expected %s, got %s: %s", name, remote, error->message);
  if (needle != NULL && strstr (error->message, needle) == NULL)
    g_error ("“%s” does not mention “%s”", error->message, needle);
}

static void
set_ok (Fx *fx, const char *key, const char *value)
{
  g_autoptr (GError) error = NULL;

  ph_agent1_call_set_setting_sync (fx->proxy, key, value, NULL, &error);
  g_assert_no_error (error);
}

static char *
get_value (Fx *fx, const char *key, gboolean *locked)
{
  g_autoptr (GError) error = NULL;
  char *value = NULL;
  gboolean l = FALSE;

  ph_agent1_call_get_setting_sync (fx->proxy, key, &value, &l, NULL, &error);
  g_assert_no_error (error);
  if (locked != NULL)
    *locked = l;
  return value;
}

static void
point_at_cloud (Fx *fx)
{
  g_autofree char *port = g_strdup_printf ("%u", fx->cloud->tls_port);
  g_autofree char *listen = g_strdup_printf ("127.0.0.1:%u", fx->port);

  set_ok (fx, "upstream.host", "127.0.0.1");
  set_ok (fx, "upstream.port", port);
  set_ok (fx, "upstream.server-name", fx->cloud->server_name);
  set_ok (fx, "listener.address", listen);
}

static char *
fetch_pin (Fx *fx, GVariant **chain_out, GVariant **info_out)
{
  g_autoptr (GError) error = NULL;
  g_autoptr (GVariant) chain = NULL;
  g_autoptr (GVariant) info = NULL;
  char *pin = NULL;

  ph_agent1_call_fetch_upstream_pin_sync (fx->proxy, &pin, &chain, &info, NULL, &error);
  g_assert_no_error (error);
  if (chain_out)
    *chain_out = g_steal_pointer (&chain);
  if (info_out)
    *info_out = g_steal_pointer (&info);
  return pin;
}

/* The whole first-use flow: configure, fetch the pin, trust it, store the
 * credentials, switch on. */
static void
first_use (Fx *fx)
{
  g_autoptr (GError) error = NULL;
  g_autofree char *pin = NULL;

  point_at_cloud (fx);
  pin = fetch_pin (fx, NULL, NULL);
  g_assert_cmpstr (pin, ==, fx->cloud->pin);
  ph_agent1_call_trust_pin_sync (fx->proxy, pin, NULL, &error);
  g_assert_no_error (error);
  ph_agent1_call_set_credentials_sync (fx->proxy, fx->cloud->user, fx->cloud->password, NULL,
                                       &error);
  g_assert_no_error (error);
  ph_agent1_call_enable_sync (fx->proxy, NULL, &error);
  g_assert_no_error (error);
  assert_state (fx, "on");
}

static PhTestCurl *
fetch_hello (Fx *fx)
{
  g_autofree char *proxy = g_strdup_printf ("http://127.0.0.1:%u", fx->port);
  g_autofree char *url
      = g_strdup_printf ("https://127.0.0.1:%u/hello", fx->cloud->origin_https_port);

  return ph_test_curl ("-x", proxy, "--cacert", fx->cloud->origin_ca, url, NULL);
}

static void
assert_hello (Fx *fx)
{
  g_autoptr (PhTestCurl) c = fetch_hello (fx);

  if (c->exit_status != 0)
    g_printerr ("# curl exited %d: %s\n", c->exit_status, c->err);
  g_assert_cmpint (c->exit_status, ==, 0);
  g_assert_cmpstr (c->out_str, ==, "hello\n");
}

static gboolean
port_refuses (guint16 port)
{
  g_autoptr (GSocketClient) client = g_socket_client_new ();
  g_autoptr (GSocketConnection) conn
      = g_socket_client_connect_to_host (client, "127.0.0.1", port, NULL, NULL);
  return conn == NULL;
}

static gboolean
state_seen (Fx *fx, const char *state)
{
  for (guint i = 0; i < fx->states_seen->len; i++)
    if (g_str_equal (g_ptr_array_index (fx->states_seen, i), state))
      return TRUE;
  return FALSE;
}

static gboolean
file_contains (const char *path, const char *needle)
{
  g_autofree char *data = NULL;
  gsize len = 0;

  if (!g_file_get_contents (path, &data, &len, NULL))
    return FALSE;
  return memmem (data, len, needle, strlen (needle)) != NULL;
}

/* Every regular file under @dir that contains @needle, except @allowed. */
static void
collect_files_with (const char *dir, const char *needle, const char *allowed, GPtrArray *hits)
{
  g_autoptr (GDir) d = g_dir_open (dir, 0, NULL);
  const char *name;

  while (d != NULL && (name = g_dir_read_name (d)) != NULL)
    {
      g_autofree char *path = g_build_filename (dir, name, NULL);
      if (g_file_test (path, G_FILE_TEST_IS_DIR))
        collect_files_with (path, needle, allowed, hits);
      else if (g_strcmp0 (path, allowed) != 0 && file_contains (path, needle))
        g_ptr_array_add (hits, g_strdup (path));
    }
}

static gboolean
squid_logged_connect (Fx *fx, gconstpointer unused)
{
  return ph_test_cloud_access_log_lines (fx->cloud, "CONNECT") >= 1;
}

static guint
count_newlines (const char *text)
{
  guint n = 0;
  for (; *text; text++)
    n += *text == '\n';
  return n;
}

/* --- cases --- */

/* A fresh agent: every property readable, errors named as documented. */
static void
test_unconfigured (Fx *fx, gconstpointer data)
{
  g_autoptr (GError) error = NULL;
  g_autoptr (GVariant) settings = NULL;
  g_autoptr (GVariant) stats = NULL;
  g_autofree char *pin = NULL;
  g_autoptr (GVariant) chain = NULL, info = NULL;
  g_autofree char *value = NULL;
  gboolean locked = TRUE;
  const char *state = NULL;
  guint64 n = 0;
  guint generation;

  if (fx->skip)
    return;
  g_assert_cmpstr (ph_agent1_get_version (fx->proxy), !=, "");
  g_assert_cmpstr (ph_agent1_get_mode (fx->proxy), ==, "session");
  g_assert_true (ph_agent1_get_enabled (fx->proxy));
  assert_state (fx, "error");
  g_assert_true (last_error_is (fx, "org.pinhole.Error.NotConfigured"));
  g_assert_cmpstr (ph_agent1_get_upstream (fx->proxy), ==, "");
  g_assert_cmpuint (g_strv_length ((GStrv) ph_agent1_get_listeners (fx->proxy)), ==, 0);
  g_assert_cmpuint (ph_agent1_get_active_tunnels (fx->proxy), ==, 0);
  g_assert_cmpuint (ph_agent1_get_bytes_up (fx->proxy), ==, 0);
  g_assert_cmpuint (ph_agent1_get_bytes_down (fx->proxy), ==, 0);
  g_assert_cmpstr (ph_agent1_get_seen_pin (fx->proxy), ==, "");
  g_assert_cmpuint (g_strv_length ((GStrv) ph_agent1_get_trusted_pins (fx->proxy)), ==, 0);
  g_assert_cmpstr (ph_agent1_get_username (fx->proxy), ==, "");
  g_assert_false (ph_agent1_get_credentials_stored (fx->proxy));
  g_assert_cmpuint (g_strv_length ((GStrv) ph_agent1_get_locked_keys (fx->proxy)), ==, 0);

  ph_agent1_call_enable_sync (fx->proxy, NULL, &error);
  assert_remote_error (error, "org.pinhole.Error.NotConfigured", "upstream.host");
  g_clear_error (&error);
  ph_agent1_call_fetch_upstream_pin_sync (fx->proxy, &pin, &chain, &info, NULL, &error);
  assert_remote_error (error, "org.pinhole.Error.NotConfigured", NULL);
  g_clear_error (&error);
  ph_agent1_call_set_credentials_sync (fx->proxy, "alice", "pw", NULL, &error);
  assert_remote_error (error, "org.pinhole.Error.NotConfigured", NULL);
  g_clear_error (&error);

  /* Settings: validated as the file is, unknown keys refused. */
  value = get_value (fx, "upstream.port", &locked);
  g_assert_cmpstr (value, ==, "443");
  g_assert_false (locked);
  ph_agent1_call_set_setting_sync (fx->proxy, "upstream.port", "99999", NULL, &error);
  assert_remote_error (error, "org.pinhole.Error.InvalidSetting", "upstream.port");
  g_clear_error (&error);
  ph_agent1_call_set_setting_sync (fx->proxy, "upstream.colour", "red", NULL, &error);
  assert_remote_error (error, "org.pinhole.Error.InvalidSetting", "upstream.colour");
  g_clear_error (&error);
  ph_agent1_call_set_setting_sync (fx->proxy, "upstream.password-file", "/etc/shadow", NULL,
                                   &error);
  assert_remote_error (error, "org.pinhole.Error.InvalidSetting", "SetCredentials");
  g_clear_error (&error);
  ph_agent1_call_get_setting_sync (fx->proxy, "nope", NULL, NULL, NULL, &error);
  assert_remote_error (error, "org.pinhole.Error.InvalidSetting", NULL);
  g_clear_error (&error);
  ph_agent1_call_trust_pin_sync (fx->proxy, "sha256//short", NULL, &error);
  assert_remote_error (error, "org.pinhole.Error.InvalidSetting", NULL);
  g_clear_error (&error);
  ph_agent1_call_set_setting_sync (fx->proxy, "listener.address", "192.0.2.1:3128", NULL, &error);
  assert_remote_error (error, "org.pinhole.Error.InvalidSetting", "allow=");
  g_clear_error (&error);
  g_assert_false (g_file_test (fx->user_path, G_FILE_TEST_EXISTS));

  /* A setting changed by anyone changes ConfigGeneration, so a client showing settings hears
   * of it (PropertiesChanged) and reads them again. */
  generation = ph_agent1_get_config_generation (fx->proxy);
  g_assert_cmpuint (generation, >=, 1);
  ph_agent1_call_set_setting_sync (fx->proxy, "route.direct", ".corp.example", NULL, &error);
  g_assert_no_error (error);
  g_assert_true (wait_for (fx, generation_is_past, GUINT_TO_POINTER (generation)));
  g_clear_pointer (&value, g_free);
  value = get_value (fx, "route.direct", &locked);
  g_assert_cmpstr (value, ==, ".corp.example");
  g_clear_pointer (&value, g_free);

  ph_agent1_call_list_settings_sync (fx->proxy, &settings, NULL, &error);
  g_assert_no_error (error);
  g_assert_cmpuint (g_variant_n_children (settings), >=, 18);
  ph_agent1_call_get_statistics_sync (fx->proxy, &stats, NULL, &error);
  g_assert_no_error (error);
  g_assert_true (g_variant_lookup (stats, "state", "&s", &state));
  g_assert_cmpstr (state, ==, "error");
  g_assert_true (g_variant_lookup (stats, "bytes-down", "t", &n));

  /* Off, signalled, and remembered across a restart. */
  ph_agent1_call_disable_sync (fx->proxy, NULL, &error);
  g_assert_no_error (error);
  assert_state (fx, "off");
  g_assert_false (ph_agent1_get_enabled (fx->proxy));
  g_assert_true (wait_for (fx, last_error_is, ""));
  g_assert_true (state_seen (fx, "off"));
  agent_stop (fx);
  agent_start (fx, "--session");
  g_assert_false (ph_agent1_get_enabled (fx->proxy));
  g_assert_cmpstr (ph_agent1_get_state (fx->proxy), ==, "off");
}

/* FetchUpstreamPin → TrustPin → SetCredentials → Enable: a tunnel works,
 * and the password is nowhere but the store. Disable closes the port;
 * Enable opens it again without a restart. */
static void
test_first_use (Fx *fx, gconstpointer data)
{
  g_autoptr (GError) error = NULL;
  g_autoptr (GVariant) chain = NULL, info = NULL;
  g_autoptr (GVariant) cert = NULL;
  g_autoptr (GPtrArray) hits = g_ptr_array_new_with_free_func (g_free);
  g_autofree char *pin = NULL, *log = NULL, *b64 = NULL, *pair = NULL, *store = NULL;
  g_autofree char *stored_user = NULL, *listener = NULL;
  const char *subject = NULL, *cert_pin = NULL, *server_name = NULL;
  gboolean ca_trusted = TRUE, pin_trusted = TRUE;
  gint64 not_after = 0;
  GPid pid = 0;
  const char *proc_files[] = { "cmdline", "environ" };

  if (fx->skip)
    return;
  point_at_cloud (fx);
  g_assert_true (wait_for (fx, state_is, "error"));
  pin = fetch_pin (fx, &chain, &info);
  g_assert_cmpstr (pin, ==, fx->cloud->pin);
  g_assert_cmpuint (g_variant_n_children (chain), >=, 1);
  cert = g_variant_get_child_value (chain, 0);
  g_assert_true (g_variant_lookup (cert, "pin", "&s", &cert_pin));
  g_assert_cmpstr (cert_pin, ==, pin);
  g_assert_true (g_variant_lookup (cert, "subject", "&s", &subject));
  g_assert_nonnull (strstr (subject, fx->cloud->server_name));
  g_assert_true (g_variant_lookup (cert, "not-after", "x", &not_after));
  g_assert_cmpint (not_after, >, g_get_real_time () / G_USEC_PER_SEC);
  g_assert_true (g_variant_lookup (info, "ca-trusted", "b", &ca_trusted));
  g_assert_false (ca_trusted); /* self-signed */
  g_assert_true (g_variant_lookup (info, "pin-trusted", "b", &pin_trusted));
  g_assert_false (pin_trusted);
  g_assert_true (g_variant_lookup (info, "server-name", "&s", &server_name));
  g_assert_cmpstr (server_name, ==, fx->cloud->server_name);
  /* Inspecting sent nothing: Squid saw no request. */
  g_assert_cmpuint (ph_test_cloud_access_log_lines (fx->cloud, NULL), ==, 0);
  g_assert_true (wait_for (fx, seen_pin_is, pin));

  ph_agent1_call_trust_pin_sync (fx->proxy, pin, NULL, &error);
  g_assert_no_error (error);
  g_assert_true (wait_for (fx, pin_is_trusted, pin));
  /* Trusting again changes nothing. */
  ph_agent1_call_trust_pin_sync (fx->proxy, pin, NULL, &error);
  g_assert_no_error (error);
  g_assert_cmpuint (g_strv_length ((GStrv) ph_agent1_get_trusted_pins (fx->proxy)), ==, 1);
  /* Without credentials the proxy would answer 407: the agent says so. */
  set_ok (fx, "upstream.username", fx->cloud->user);
  g_assert_true (wait_for (fx, last_error_is, "org.pinhole.Error.NoCredentials"));

  ph_agent1_call_set_credentials_sync (fx->proxy, fx->cloud->user, fx->cloud->password, NULL,
                                       &error);
  g_assert_no_error (error);
  g_assert_true (wait_for (fx, credentials_stored, GINT_TO_POINTER (TRUE)));
  g_assert_true (wait_for (fx, username_is, fx->cloud->user));
  assert_state (fx, "on");
  listener = g_strdup_printf ("127.0.0.1:%u", fx->port);
  g_assert_true (strv_has (ph_agent1_get_listeners (fx->proxy), listener));
  assert_hello (fx);
  /* Squid writes its log line after the transaction. */
  g_assert_true (wait_for (fx, squid_logged_connect, NULL));

  /* Counters reach the properties (rate-limited to once a second). */
  {
    gint64 deadline = g_get_monotonic_time () + 5 * G_USEC_PER_SEC;
    while (ph_agent1_get_bytes_down (fx->proxy) == 0 && g_get_monotonic_time () < deadline)
      {
        g_main_context_iteration (NULL, FALSE);
        g_usleep (10000);
      }
    g_assert_cmpuint (ph_agent1_get_bytes_down (fx->proxy), >, 0);
    g_assert_cmpuint (ph_agent1_get_bytes_up (fx->proxy), >, 0);
  }

  /* The password: not in the log, the config, /proc, or any file but the store. */
  pair = g_strconcat (fx->cloud->user, ":", fx->cloud->password, NULL);
  b64 = g_base64_encode ((const guchar *) pair, strlen (pair));
  log = agent_log (fx);
  g_assert_null (strstr (log, fx->cloud->password));
  g_assert_null (strstr (log, b64));
  store = g_build_filename (fx->state_dir, "credentials", NULL);
  g_assert_true (g_file_test (store, G_FILE_TEST_EXISTS));
  collect_files_with (fx->dir, fx->cloud->password, store, hits);
  collect_files_with (fx->dir, b64, NULL, hits);
  for (guint i = 0; i < hits->len; i++)
    g_printerr ("# password found in %s\n", (char *) g_ptr_array_index (hits, i));
  g_assert_cmpuint (hits->len, ==, 0);
  stored_user = get_value (fx, "upstream.username", NULL);
  g_assert_cmpstr (stored_user, ==, fx->cloud->user);
  g_assert_false (file_contains (fx->user_path, fx->cloud->password));
  pid = atoi (g_subprocess_get_identifier (fx->agent));
  for (guint i = 0; i < G_N_ELEMENTS (proc_files); i++)
    {
      g_autofree char *path = g_strdup_printf ("/proc/%d/%s", pid, proc_files[i]);
      g_assert_true (g_file_test (path, G_FILE_TEST_EXISTS));
      g_assert_false (file_contains (path, fx->cloud->password));
      g_assert_false (file_contains (path, b64));
    }

  /* Off: the port refuses; on again without a restart. */
  g_ptr_array_set_size (fx->states_seen, 0);
  ph_agent1_call_disable_sync (fx->proxy, NULL, &error);
  g_assert_no_error (error);
  assert_state (fx, "off");
  g_assert_true (state_seen (fx, "off"));
  g_assert_cmpuint (g_strv_length ((GStrv) ph_agent1_get_listeners (fx->proxy)), ==, 0);
  g_assert_true (port_refuses (fx->port));
  ph_agent1_call_enable_sync (fx->proxy, NULL, &error);
  g_assert_no_error (error);
  assert_state (fx, "on");
  g_assert_true (state_seen (fx, "connecting") || state_seen (fx, "on"));
  assert_hello (fx);

  /* Cleared credentials: the agent says what is missing. */
  ph_agent1_call_clear_credentials_sync (fx->proxy, NULL, &error);
  g_assert_no_error (error);
  g_assert_true (wait_for (fx, credentials_stored, GINT_TO_POINTER (FALSE)));
  g_assert_true (wait_for (fx, last_error_is, "org.pinhole.Error.NoCredentials"));
  g_assert_false (file_contains (store, fx->cloud->password));
}

/* A new server key after trust: PinMismatch naming the new pin; trusting
 * it brings the tunnel back. */
static void
test_pin_changed (Fx *fx, gconstpointer data)
{
  g_autofree char *old_pin = NULL;
  g_autofree char *port_env = NULL, *password_env = NULL, *message = NULL;
  g_autofree char *new_pin = NULL;
  g_autoptr (GError) error = NULL;
  g_autoptr (GVariant) info = NULL;
  g_autoptr (PhTestCurl) c = NULL;
  gboolean pin_trusted = TRUE;

  if (fx->skip)
    return;
  first_use (fx);
  assert_hello (fx);
  old_pin = g_strdup (fx->cloud->pin);

  /* The same address, a new key. */
  port_env = g_strdup_printf ("PH_CLOUD_TLS_PORT=%u", fx->cloud->tls_port);
  password_env = g_strdup_printf ("PH_CLOUD_PASSWORD=%s", fx->cloud->password);
  g_clear_pointer (&fx->cloud, ph_test_cloud_free);
  fx->cloud = ph_test_cloud_new ("PH_CLOUD_ORIGIN=1", port_env, password_env, NULL);
  g_assert_cmpstr (fx->cloud->pin, !=, old_pin);

  c = fetch_hello (fx);
  g_assert_cmpint (c->exit_status, !=, 0);
  g_assert_true (wait_for (fx, last_error_is, "org.pinhole.Error.PinMismatch"));
  g_assert_cmpstr (ph_agent1_get_state (fx->proxy), ==, "error");
  message = last_error_message (fx);
  g_assert_nonnull (strstr (message, fx->cloud->pin));
  g_assert_true (wait_for (fx, seen_pin_is, fx->cloud->pin));
  g_assert_cmpuint (ph_test_cloud_access_log_lines (fx->cloud, NULL), ==, 0);

  new_pin = fetch_pin (fx, NULL, &info);
  g_assert_cmpstr (new_pin, ==, fx->cloud->pin);
  g_assert_true (g_variant_lookup (info, "pin-trusted", "b", &pin_trusted));
  g_assert_false (pin_trusted);
  ph_agent1_call_trust_pin_sync (fx->proxy, new_pin, NULL, &error);
  g_assert_no_error (error);
  /* Rotation keeps the old pin too. */
  g_assert_true (wait_for (fx, pin_is_trusted, old_pin));
  g_assert_true (wait_for (fx, pin_is_trusted, new_pin));
  assert_state (fx, "on");
  assert_hello (fx);
}

/* IT's drop-in locks a key live; removing it unlocks it live. */
static void
test_locked (Fx *fx, gconstpointer data)
{
  g_autofree char *dropin = g_build_filename (fx->managed_dir, "50-it.conf", NULL);
  g_autoptr (GError) error = NULL;
  g_autofree char *value = NULL;
  gboolean locked = FALSE;

  if (fx->skip)
    return;
  first_use (fx);
  {
    g_autofree char *text = g_strdup_printf (
        "# from IT\n[tunnel]\nidle-timeout=10min\n[upstream]\npins=%s\n", fx->cloud->pin);
    g_file_set_contents (dropin, text, -1, &error);
    g_assert_no_error (error);
  }
  g_assert_true (wait_for (fx, key_locked, "tunnel.idle-timeout"));
  g_assert_true (key_locked (fx, "upstream.pins"));
  value = get_value (fx, "tunnel.idle-timeout", &locked);
  g_assert_cmpstr (value, ==, "10min");
  g_assert_true (locked);
  ph_agent1_call_set_setting_sync (fx->proxy, "tunnel.idle-timeout", "1min", NULL, &error);
  assert_remote_error (error, "org.pinhole.Error.Locked", "administrator");
  g_clear_error (&error);
  ph_agent1_call_trust_pin_sync (
      fx->proxy, "sha256//AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=", NULL, &error);
  assert_remote_error (error, "org.pinhole.Error.Locked", NULL);
  g_clear_error (&error);
  /* Other keys stay open, and the tunnel keeps working. */
  set_ok (fx, "tunnel.head-timeout", "20s");
  assert_state (fx, "on");
  assert_hello (fx);

  g_assert_cmpint (g_unlink (dropin), ==, 0);
  g_assert_true (wait_for (fx, key_unlocked, "tunnel.idle-timeout"));
  g_clear_pointer (&value, g_free);
  value = get_value (fx, "tunnel.idle-timeout", &locked);
  g_assert_cmpstr (value, ==, "300s");
  g_assert_false (locked);
  set_ok (fx, "tunnel.idle-timeout", "1min");
}

static gboolean
config_error_shown (Fx *fx, gconstpointer path)
{
  g_autofree char *message = last_error_message (fx);
  return last_error_is (fx, "org.pinhole.Error.InvalidConfig") && strstr (message, path) != NULL;
}

/* A broken file is reported with file, line and key while the last good
 * configuration keeps serving; a valid change applies live, and a tunnel
 * in flight survives it. */
static void
test_reload (Fx *fx, gconstpointer data)
{
  g_autofree char *good = NULL;
  g_autofree char *broken = NULL;
  g_autofree char *message = NULL;
  g_autofree char *value = NULL;
  g_autofree char *needle = NULL;
  g_autofree char *connect = NULL;
  g_autofree char *head = NULL;
  g_autoptr (GError) error = NULL;
  g_autoptr (PhTestConn) conn = NULL;
  g_autoptr (GByteArray) body = g_byte_array_new ();

  if (fx->skip)
    return;
  first_use (fx);
  g_assert_true (g_file_get_contents (fx->user_path, &good, NULL, NULL));

  /* A tunnel opened before the changes. */
  conn = ph_test_conn_new (fx->port);
  connect = g_strdup_printf ("CONNECT 127.0.0.1:%u HTTP/1.1\r\nHost: 127.0.0.1:%u\r\n\r\n",
                             fx->cloud->origin_http_port, fx->cloud->origin_http_port);
  g_assert_true (ph_test_conn_send (conn, connect, -1));
  head = ph_test_conn_read_head (conn, 5000);
  g_assert_nonnull (head);
  g_assert_cmpint (ph_test_head_status (head), ==, 200);

  /* The default: GetSetting says "auto", not the number the agent derived. */
  {
    g_autofree char *dflt = get_value (fx, "tunnel.max-tunnels", NULL);
    g_assert_cmpstr (dflt, ==, "auto");
  }

  broken = g_strconcat (good, "\n[tunnel]\nmax-tunnels=lots\n", NULL);
  g_file_set_contents (fx->user_path, broken, -1, &error);
  g_assert_no_error (error);
  g_assert_true (wait_for (fx, config_error_shown, fx->user_path));
  message = last_error_message (fx);
  /* Every line of @good ends in a newline; then a blank line and [tunnel]. */
  needle
      = g_strdup_printf ("%s:%u: [tunnel] max-tunnels:", fx->user_path, count_newlines (good) + 3);
  if (strstr (message, needle) == NULL)
    g_error ("“%s” lacks “%s”", message, needle);
  g_assert_cmpstr (ph_agent1_get_state (fx->proxy), ==, "on");
  assert_hello (fx);
  ph_agent1_call_reload_sync (fx->proxy, NULL, &error);
  assert_remote_error (error, "org.pinhole.Error.InvalidConfig", "max-tunnels");
  g_clear_error (&error);
  /* SetSetting cannot build on a broken file. */
  ph_agent1_call_set_setting_sync (fx->proxy, "tunnel.head-timeout", "5s", NULL, &error);
  assert_remote_error (error, "org.pinhole.Error.InvalidSetting", "max-tunnels");
  g_clear_error (&error);

  /* A valid edit by hand applies live and clears the error. */
  g_clear_pointer (&broken, g_free);
  broken = g_strconcat (good, "\n[tunnel]\nmax-tunnels=77\n", NULL);
  g_file_set_contents (fx->user_path, broken, -1, &error);
  g_assert_no_error (error);
  g_assert_true (wait_for (fx, last_error_is, ""));
  value = get_value (fx, "tunnel.max-tunnels", NULL);
  g_assert_cmpstr (value, ==, "77");
  assert_state (fx, "on");

  /* The old tunnel still carries a request. */
  g_assert_true (ph_test_conn_send (
      conn, "GET /hello HTTP/1.1\r\nHost: origin\r\nConnection: close\r\n\r\n", -1));
  g_clear_pointer (&head, g_free);
  head = ph_test_conn_read_head (conn, 5000);
  g_assert_nonnull (head);
  g_assert_cmpint (ph_test_head_status (head), ==, 200);
  g_assert_cmpuint (ph_test_conn_read_body (conn, 6, body, 5000), ==, 6);
  g_assert_cmpmem (body->data, body->len, "hello\n", 6);
}

/* Wrong credentials: AuthRejected, and new ones fix it without restart. */
static void
test_auth_rejected (Fx *fx, gconstpointer data)
{
  g_autoptr (GError) error = NULL;
  g_autoptr (PhTestCurl) c = NULL;

  if (fx->skip)
    return;
  first_use (fx);
  ph_agent1_call_set_credentials_sync (fx->proxy, fx->cloud->user, "not-the-password", NULL,
                                       &error);
  g_assert_no_error (error);
  c = fetch_hello (fx);
  g_assert_cmpint (c->exit_status, !=, 0);
  g_assert_true (wait_for (fx, last_error_is, "org.pinhole.Error.AuthRejected"));
  g_assert_cmpstr (ph_agent1_get_state (fx->proxy), ==, "error");
  ph_agent1_call_set_credentials_sync (fx->proxy, fx->cloud->user, fx->cloud->password, NULL,
                                       &error);
  g_assert_no_error (error);
  assert_state (fx, "on");
  assert_hello (fx);
}

static gboolean
bytes_down_at_least (Fx *fx, gconstpointer n)
{
  return ph_agent1_get_bytes_down (fx->proxy) >= GPOINTER_TO_SIZE (n);
}

static gboolean
tunnels_are (Fx *fx, gconstpointer n)
{
  return ph_agent1_get_active_tunnels (fx->proxy) == GPOINTER_TO_UINT (n);
}

/* Counters move while a tunnel is open, not only when it ends. */
static void
test_live_counters (Fx *fx, gconstpointer data)
{
  const gsize size = 1024 * 1024;
  g_autofree char *connect = NULL;
  g_autofree char *head = NULL;
  g_autoptr (PhTestConn) conn = NULL;
  g_autoptr (GByteArray) body = g_byte_array_new ();

  if (fx->skip)
    return;
  first_use (fx);
  g_assert_true (wait_for (fx, tunnels_are, GUINT_TO_POINTER (0)));
  conn = ph_test_conn_new (fx->port);
  connect = g_strdup_printf ("CONNECT 127.0.0.1:%u HTTP/1.1\r\nHost: 127.0.0.1:%u\r\n\r\n",
                             fx->cloud->origin_http_port, fx->cloud->origin_http_port);
  g_assert_true (ph_test_conn_send (conn, connect, -1));
  head = ph_test_conn_read_head (conn, 5000);
  g_assert_cmpint (ph_test_head_status (head), ==, 200);
  g_assert_true (ph_test_conn_send (conn, "GET /bytes/1048576 HTTP/1.1\r\nHost: o\r\n\r\n", -1));
  g_clear_pointer (&head, g_free);
  head = ph_test_conn_read_head (conn, 5000);
  g_assert_cmpint (ph_test_head_status (head), ==, 200);
  g_assert_cmpuint (ph_test_conn_read_body (conn, size, body, 10000), ==, size);

  /* The tunnel is still open. */
  g_assert_true (wait_for (fx, bytes_down_at_least, GSIZE_TO_POINTER (size)));
  g_assert_true (wait_for (fx, tunnels_are, GUINT_TO_POINTER (1)));
  g_clear_pointer (&conn, ph_test_conn_free);
  g_assert_true (wait_for (fx, tunnels_are, GUINT_TO_POINTER (0)));
  g_assert_cmpuint (ph_agent1_get_bytes_down (fx->proxy), >=, size);
}

/* Per user, the password goes to the Secret Service (a real gnome-keyring on the test bus):
 * no credentials file, and it is still there after a restart. */
static void
test_secret_service (Fx *fx, gconstpointer data)
{
  g_autofree char *keyring_root = NULL;
  g_autofree char *store = NULL;
  g_autofree char *log = NULL;
  g_autoptr (GSubprocess) keyring = NULL;
  g_autoptr (GError) error = NULL;
  g_autoptr (GPtrArray) hits = g_ptr_array_new_with_free_func (g_free);

  if (fx->skip)
    return;
  keyring_root = g_build_filename (fx->dir, "keyring", NULL);
  keyring = ph_test_keyring_start (keyring_root, &error);
  if (keyring == NULL)
    {
      g_autofree char *keyring_bin = g_find_program_in_path ("gnome-keyring-daemon");
      if (keyring_bin == NULL && g_strcmp0 (g_getenv ("CI"), "true") != 0)
        {
          g_test_skip ("gnome-keyring-daemon is not installed");
          return;
        }
      g_error ("no Secret Service: %s", error->message);
    }
  agent_stop (fx);
  agent_start_full (fx, "--session", TRUE);
  first_use (fx);
  assert_hello (fx);
  store = g_build_filename (fx->state_dir, "credentials", NULL);
  g_assert_false (g_file_test (store, G_FILE_TEST_EXISTS));
  log = agent_log (fx);
  g_assert_null (strstr (log, "credentials go to"));
  g_assert_nonnull (strstr (log, "Secret Service"));
  /* The keyring file holds it encrypted; nothing else holds it at all. */
  collect_files_with (fx->dir, fx->cloud->password, NULL, hits);
  g_assert_cmpuint (hits->len, ==, 0);

  agent_stop (fx);
  agent_start_full (fx, "--session", TRUE);
  g_assert_true (wait_for (fx, credentials_stored, GINT_TO_POINTER (TRUE)));
  assert_state (fx, "on");
  assert_hello (fx);
  agent_stop (fx);
  ph_test_keyring_stop (g_steal_pointer (&keyring));
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  ph_error_quark ();
#define ADD(path, func) g_test_add (path, Fx, NULL, fx_setup, func, fx_teardown)
  ADD ("/pinhole/control/unconfigured", test_unconfigured);
  ADD ("/pinhole/control/first-use", test_first_use);
  ADD ("/pinhole/control/pin-changed", test_pin_changed);
  ADD ("/pinhole/control/locked", test_locked);
  ADD ("/pinhole/control/reload", test_reload);
  ADD ("/pinhole/control/auth-rejected", test_auth_rejected);
  ADD ("/pinhole/control/secret-service", test_secret_service);
  ADD ("/pinhole/control/live-counters", test_live_counters);
  return g_test_run ();
}

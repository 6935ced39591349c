/* SPDX-License-Identifier: GPL-2.0-or-later */
/* ph-test-cloud.c: the integration-test fixture: runs pinhole-cloud.sh, the real agent binary
 * and curl as subprocesses, each case of a test binary in a subprocess of its own around one
 * shared cloud end, checks agents' logs for the password, and offers a raw HTTP client and a
 * recording TLS endpoint. */

#define _GNU_SOURCE /* memmem */

#include "ph-test-cloud.h"

#include <errno.h>
#include <glib/gstdio.h>
#include <gnutls/abstract.h>
#include <gnutls/crypto.h>
#include <gnutls/gnutls.h>
#include <gnutls/x509.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#ifndef PH_CLOUD_SCRIPT
#define PH_CLOUD_SCRIPT NULL
#endif
#ifndef PH_TEST_ORIGIN
#define PH_TEST_ORIGIN NULL
#endif

#define PH_TEST_AGENT_READY_MS 15000
#define PH_TEST_AGENT_STOP_MS 15000

/* --- small helpers --- */

char *
ph_test_pattern_sha256 (guint64 len)
{
  const gsize block_len = 1024 * 1024;
  g_autofree guint8 *block = g_malloc (block_len);
  g_autoptr (GChecksum) sum = g_checksum_new (G_CHECKSUM_SHA256);

  ph_test_pattern_fill (block, block_len, 0);
  for (guint64 done = 0; done < len;)
    {
      gsize n = (gsize) MIN ((guint64) block_len, len - done);

      g_checksum_update (sum, block, (gssize) n);
      done += n;
    }
  return g_strdup (g_checksum_get_string (sum));
}

guint16
ph_test_free_port (void)
{
  g_autoptr (GSocket) sock = NULL;
  g_autoptr (GInetAddress) lo = g_inet_address_new_loopback (G_SOCKET_FAMILY_IPV4);
  g_autoptr (GSocketAddress) any = g_inet_socket_address_new (lo, 0);
  g_autoptr (GSocketAddress) bound = NULL;
  g_autoptr (GError) error = NULL;

  sock = g_socket_new (G_SOCKET_FAMILY_IPV4, G_SOCKET_TYPE_STREAM, G_SOCKET_PROTOCOL_TCP, &error);
  g_assert_no_error (error);
  g_socket_bind (sock, any, FALSE, &error);
  g_assert_no_error (error);
  bound = g_socket_get_local_address (sock, &error);
  g_assert_no_error (error);
  return g_inet_socket_address_get_port (G_INET_SOCKET_ADDRESS (bound));
}

int
ph_test_listen_queue (guint16 port)
{
  g_autofree char *text = NULL;
  char want[16];

  /* For a listening socket the rx_queue column is its accept queue. The table can hold many
   * thousands of lines on a busy machine: scanned in place, without an allocation per line,
   * which a sanitizer build makes slow. */
  if (!g_file_get_contents ("/proc/net/tcp", &text, NULL, NULL))
    return -1;
  g_snprintf (want, sizeof want, "0100007F:%04X", port);
  for (const char *line = strchr (text, '\n'); line != NULL; line = strchr (line + 1, '\n'))
    {
      char local[32], state[8];
      unsigned int tx = 0, rx = 0;

      if (sscanf (line + 1, "%*s %31s %*s %7s %x:%x", local, state, &tx, &rx) == 4
          && strcmp (local, want) == 0 && strcmp (state, "0A") == 0)
        return (int) rx;
    }
  return -1;
}

double
ph_test_proc_cpu_seconds (GPid pid)
{
  g_autofree char *path = g_strdup_printf ("/proc/%d/stat", (int) pid);
  g_autofree char *stat = NULL;
  g_auto (GStrv) fields = NULL;
  const char *end;

  if (pid <= 0 || !g_file_get_contents (path, &stat, NULL, NULL))
    return -1;
  /* After "pid (comm) ": state is field 3, utime and stime are fields 14 and 15. */
  end = strrchr (stat, ')');
  if (end == NULL)
    return -1;
  fields = g_strsplit (end + 2, " ", -1);
  if (g_strv_length (fields) < 13)
    return -1;
  return (double) (g_ascii_strtoull (fields[11], NULL, 10)
                   + g_ascii_strtoull (fields[12], NULL, 10))
         / (double) sysconf (_SC_CLK_TCK);
}

int
ph_test_proc_fd_count (GPid pid)
{
  g_autofree char *path = g_strdup_printf ("/proc/%d/fd", (int) pid);
  g_autoptr (GDir) dir = g_dir_open (path, 0, NULL);
  int n = 0;

  if (dir == NULL)
    return -1;
  while (g_dir_read_name (dir) != NULL)
    n++;
  return n;
}

gboolean
ph_test_bytes_contain (GBytes *haystack, const char *needle)
{
  gsize len = 0;
  const guint8 *data = g_bytes_get_data (haystack, &len);

  return len > 0 && memmem (data, len, needle, strlen (needle)) != NULL;
}

static gboolean
ph_test_in_ci (void)
{
  return g_strcmp0 (g_getenv ("CI"), "true") == 0;
}

static char *
ph_test_find_tool (const char *env, const char *fallback)
{
  const char *path = g_getenv (env);

  if (path != NULL && path[0] != '\0')
    return g_file_test (path, G_FILE_TEST_IS_EXECUTABLE) ? g_strdup (path) : NULL;
  if (g_path_is_absolute (fallback))
    return g_file_test (fallback, G_FILE_TEST_IS_EXECUTABLE) ? g_strdup (fallback) : NULL;
  return g_find_program_in_path (fallback);
}

gboolean
ph_test_require_tools (void)
{
  const struct
  {
    const char *env;
    const char *fallback;
    const char *what;
  } tools[] = {
    { "PH_STUNNEL", "/usr/bin/stunnel4", "stunnel4" },
    { "PH_SQUID", "/usr/sbin/squid", "squid" },
    { "PH_SQUID_AUTH_HELPER", "/usr/lib/squid/basic_ncsa_auth", "squid's basic_ncsa_auth" },
    { "PH_CURL", "curl", "curl" },
    { "PH_OPENSSL", "openssl", "openssl" },
  };
  g_autoptr (GString) missing = g_string_new (NULL);
  const char *agent = g_getenv ("PH_AGENT");

  for (gsize i = 0; i < G_N_ELEMENTS (tools); i++)
    {
      g_autofree char *path = ph_test_find_tool (tools[i].env, tools[i].fallback);

      if (path == NULL)
        g_string_append_printf (missing, "%s%s", missing->len > 0 ? ", " : "", tools[i].what);
    }
  if (agent == NULL || !g_file_test (agent, G_FILE_TEST_IS_EXECUTABLE))
    g_string_append_printf (missing, "%sthe agent (PH_AGENT=%s)", missing->len > 0 ? ", " : "",
                            agent != NULL ? agent : "unset");
  if (missing->len == 0)
    return TRUE;
  if (ph_test_in_ci ())
    g_test_fail_printf ("CI=true and missing: %s", missing->str);
  else
    g_test_skip_printf ("missing: %s", missing->str);
  return FALSE;
}

static void
ph_test_child_setup (gpointer user_data)
{
  /* The agent and curl die with the test process, even when it aborts. */
  prctl (PR_SET_PDEATHSIG, SIGKILL);
}

static GSubprocessLauncher *
ph_test_launcher (GSubprocessFlags flags)
{
  GSubprocessLauncher *launcher = g_subprocess_launcher_new (flags);
  const char *proxy_vars[] = { "http_proxy", "HTTP_PROXY", "https_proxy", "HTTPS_PROXY",
                               "all_proxy",  "ALL_PROXY",  "no_proxy",    "NO_PROXY" };

  for (gsize i = 0; i < G_N_ELEMENTS (proxy_vars); i++)
    g_subprocess_launcher_unsetenv (launcher, proxy_vars[i]);
  g_subprocess_launcher_set_child_setup (launcher, ph_test_child_setup, NULL, NULL);
  return launcher;
}

/* --- the cloud end --- */

static char *
ph_test_cloud_script (void)
{
  const char *env = g_getenv ("PH_CLOUD_SCRIPT");
  const char *srcdir = g_getenv ("PH_SRCDIR");

  if (env != NULL)
    return g_strdup (env);
  if (PH_CLOUD_SCRIPT != NULL)
    return g_strdup (PH_CLOUD_SCRIPT);
  return g_build_filename (srcdir != NULL ? srcdir : ".", "tests", "cloud", "pinhole-cloud.sh",
                           NULL);
}

static gboolean
ph_test_cloud_load_env (PhTestCloud *cloud, GError **error)
{
  g_autofree char *path = g_build_filename (cloud->dir, "cloud.env", NULL);
  g_autofree char *text = NULL;
  g_auto (GStrv) lines = NULL;

  if (!g_file_get_contents (path, &text, NULL, error))
    return FALSE;
  cloud->env = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, g_free);
  lines = g_strsplit (text, "\n", -1);
  for (guint i = 0; lines[i] != NULL; i++)
    {
      const char *eq = strchr (lines[i], '=');

      if (lines[i][0] == '#' || eq == NULL)
        continue;
      g_hash_table_insert (cloud->env, g_strndup (lines[i], (gsize) (eq - lines[i])),
                           g_strdup (eq + 1));
    }

#define PH_ENV_PORT(key)                                                                           \
  ((guint16) g_ascii_strtoull (ph_test_cloud_get (cloud, key) ?: "0", NULL, 10))
  cloud->tls_port = PH_ENV_PORT ("PH_CLOUD_TLS_PORT");
  cloud->squid_port = PH_ENV_PORT ("PH_CLOUD_SQUID_PORT");
  cloud->origin_http_port = PH_ENV_PORT ("PH_ORIGIN_HTTP_PORT");
  cloud->origin_https_port = PH_ENV_PORT ("PH_ORIGIN_HTTPS_PORT");
#undef PH_ENV_PORT
  cloud->server_name = ph_test_cloud_get (cloud, "PH_CLOUD_SERVER_NAME");
  cloud->pin = ph_test_cloud_get (cloud, "PH_CLOUD_PIN");
  cloud->cert = ph_test_cloud_get (cloud, "PH_CLOUD_CERT");
  cloud->key = ph_test_cloud_get (cloud, "PH_CLOUD_KEY");
  cloud->user = ph_test_cloud_get (cloud, "PH_CLOUD_USER");
  cloud->password_file = ph_test_cloud_get (cloud, "PH_CLOUD_PASSWORD_FILE");
  cloud->squid_access_log = ph_test_cloud_get (cloud, "PH_CLOUD_SQUID_ACCESS_LOG");
  cloud->origin_ca = ph_test_cloud_get (cloud, "PH_ORIGIN_CA");
  if (cloud->tls_port == 0 || cloud->pin == NULL || cloud->password_file == NULL
      || cloud->user == NULL || cloud->squid_access_log == NULL)
    {
      g_set_error (error, G_IO_ERROR, G_IO_ERROR_INVALID_DATA, "%s lacks required keys", path);
      return FALSE;
    }
  if (!g_file_get_contents (cloud->password_file, &cloud->password, NULL, error))
    return FALSE;
  g_strchomp (cloud->password);
  return TRUE;
}

static PhTestCloud *
ph_test_cloud_new_valist (const char *dir, const char *first_env, va_list ap)
{
  g_autoptr (PhTestCloud) cloud = g_new0 (PhTestCloud, 1);
  g_autoptr (GSubprocessLauncher) launcher = NULL;
  g_autoptr (GSubprocess) proc = NULL;
  g_autoptr (GError) error = NULL;
  g_autofree char *out = NULL;
  g_autofree char *pid = g_strdup_printf ("%d", (int) getpid ());
  g_autofree char *origin
      = ph_test_find_tool ("PH_TEST_ORIGIN", PH_TEST_ORIGIN ?: "ph-test-origin");

  cloud->owned = TRUE;
  cloud->script = ph_test_cloud_script ();
  cloud->agent_logs = g_ptr_array_new_with_free_func (g_free);
  if (dir != NULL)
    {
      g_assert_cmpint (g_mkdir_with_parents (dir, 0700), ==, 0);
      cloud->dir = g_strdup (dir);
    }
  else
    {
      cloud->dir = g_dir_make_tmp ("pinhole-cloud-XXXXXX", &error);
      g_assert_no_error (error);
    }

  launcher = g_subprocess_launcher_new (G_SUBPROCESS_FLAGS_STDOUT_PIPE
                                        | G_SUBPROCESS_FLAGS_STDERR_MERGE);
  /* The script's watchdog stops the cloud end if this process dies without cleaning up. */
  g_subprocess_launcher_setenv (launcher, "PH_CLOUD_OWNER_PID", pid, TRUE);
  if (origin != NULL)
    g_subprocess_launcher_setenv (launcher, "PH_TEST_ORIGIN", origin, FALSE);
  for (const char *kv = first_env; kv != NULL; kv = va_arg (ap, const char *))
    {
      g_autofree char *key = g_strndup (kv, strcspn (kv, "="));
      const char *value = kv[strlen (key)] == '=' ? kv + strlen (key) + 1 : "";

      g_subprocess_launcher_setenv (launcher, key, value, TRUE);
    }

  proc = g_subprocess_launcher_spawn (launcher, &error, "bash", cloud->script, "start", cloud->dir,
                                      NULL);
  g_assert_no_error (error);
  g_subprocess_communicate_utf8 (proc, NULL, NULL, &out, NULL, &error);
  g_assert_no_error (error);
  if (!g_subprocess_get_if_exited (proc) || g_subprocess_get_exit_status (proc) != 0)
    g_error ("%s start %s failed:\n%s", cloud->script, cloud->dir, out);
  if (!ph_test_cloud_load_env (cloud, &error))
    g_error ("cannot read the cloud end's settings: %s", error->message);
  return g_steal_pointer (&cloud);
}

PhTestCloud *
ph_test_cloud_new (const char *first_env, ...)
{
  PhTestCloud *cloud;
  va_list ap;

  va_start (ap, first_env);
  cloud = ph_test_cloud_new_valist (NULL, first_env, ap);
  va_end (ap);
  return cloud;
}

PhTestCloud *
ph_test_cloud_new_in (const char *dir, const char *first_env, ...)
{
  PhTestCloud *cloud;
  va_list ap;

  va_start (ap, first_env);
  cloud = ph_test_cloud_new_valist (dir, first_env, ap);
  va_end (ap);
  return cloud;
}

PhTestCloud *
ph_test_cloud_attach (const char *dir)
{
  g_autoptr (PhTestCloud) cloud = g_new0 (PhTestCloud, 1);
  g_autoptr (GError) error = NULL;

  cloud->dir = g_strdup (dir);
  cloud->script = ph_test_cloud_script ();
  cloud->agent_logs = g_ptr_array_new_with_free_func (g_free);
  if (!ph_test_cloud_load_env (cloud, &error))
    g_error ("cannot attach to the cloud end in %s: %s", dir, error->message);
  return g_steal_pointer (&cloud);
}

const char *
ph_test_cloud_get (PhTestCloud *cloud, const char *key)
{
  return cloud->env != NULL ? g_hash_table_lookup (cloud->env, key) : NULL;
}

guint
ph_test_cloud_access_log_lines (PhTestCloud *cloud, const char *needle)
{
  g_autofree char *text = NULL;
  g_auto (GStrv) lines = NULL;
  guint n = 0;

  if (!g_file_get_contents (cloud->squid_access_log, &text, NULL, NULL))
    return 0;
  lines = g_strsplit (text, "\n", -1);
  for (guint i = 0; lines[i] != NULL; i++)
    {
      if (lines[i][0] != '\0' && (needle == NULL || strstr (lines[i], needle) != NULL))
        n++;
    }
  return n;
}

guint
ph_test_cloud_settled_access_log_lines (PhTestCloud *cloud, const char *needle)
{
  guint n = ph_test_cloud_access_log_lines (cloud, needle);
  /* Squid logs a tunnel when it ends. Behind nghttpx a tunnel whose client closed ends about a
   * second later (the agent's linger: nghttpx does not pass a client's END_STREAM on). */
  gboolean h2 = g_strcmp0 (g_getenv ("PH_CLOUD_FRONT"), "nghttpx") == 0;
  guint steady = h2 ? 15 : 3, most = h2 ? 40 : 10;

  /* Settled: the same count for 300 ms, at most a second in all (1.5 s and 4 s behind
   * nghttpx). */
  for (guint i = 0; i < most; i++)
    {
      guint now;

      g_usleep (100 * 1000);
      now = ph_test_cloud_access_log_lines (cloud, needle);
      if (now == n && i >= steady)
        break;
      n = now;
    }
  return n;
}

static void
ph_test_assert_password_absent (const char *what, const char *text, const char *user,
                                const char *password, const char *whose)
{
  g_autofree char *b64 = g_base64_encode ((const guchar *) password, strlen (password));
  g_autofree char *pair = g_strconcat (user, ":", password, NULL);
  g_autofree char *token = g_base64_encode ((const guchar *) pair, strlen (pair));
  const struct
  {
    const char *form;
    const char *what;
  } forms[] = {
    { password, "as it is" },
    { b64, "in base64" },
    { token, "in the Basic token of user:password" },
  };

  g_assert_cmpuint (strlen (password), >, 0);
  for (gsize i = 0; i < G_N_ELEMENTS (forms); i++)
    {
      /* Which form and where, never the secret itself. */
      if (strstr (text, forms[i].form) != NULL)
        g_printerr ("# %s holds %s password %s\n", what, whose, forms[i].what);
      g_assert_null (strstr (text, forms[i].form));
    }
}

void
ph_test_cloud_assert_redacted (PhTestCloud *cloud, const char *what, const char *text,
                               const char *other_password)
{
  ph_test_assert_password_absent (what, text, cloud->user, cloud->password, "the cloud's");
  if (other_password != NULL)
    ph_test_assert_password_absent (what, text, cloud->user, other_password, "the other");
}

guint
ph_test_cloud_assert_agents_redacted (PhTestCloud *cloud, const char *other_password)
{
  guint n = cloud->agent_logs->len;

  for (guint i = 0; i < n; i++)
    {
      const char *path = g_ptr_array_index (cloud->agent_logs, i);
      g_autofree char *text = NULL;
      g_autoptr (GError) error = NULL;

      g_file_get_contents (path, &text, NULL, &error);
      g_assert_no_error (error);
      ph_test_cloud_assert_redacted (cloud, path, text, other_password);
    }
  g_ptr_array_set_size (cloud->agent_logs, 0);
  return n;
}

/* FALSE for a pid that is gone or a zombie: the cloud's daemons are reparented to PID 1, which
 * may be slow to reap them. */
static gboolean
ph_test_pid_alive (GPid pid)
{
  g_autofree char *path = g_strdup_printf ("/proc/%d/stat", (int) pid);
  g_autofree char *stat = NULL;
  const char *end;

  if (pid <= 0 || !g_file_get_contents (path, &stat, NULL, NULL))
    return FALSE;
  end = strrchr (stat, ')');
  return end == NULL || end[1] == '\0' || end[2] != 'Z';
}

GPid
ph_test_cloud_stunnel_pid (PhTestCloud *cloud)
{
  g_autofree char *path = g_build_filename (cloud->dir, "stunnel.pid", NULL);
  g_autofree char *text = NULL;
  GPid pid;

  if (!g_file_get_contents (path, &text, NULL, NULL))
    return 0;
  pid = (GPid) g_ascii_strtoll (text, NULL, 10);
  return ph_test_pid_alive (pid) ? pid : 0;
}

void
ph_test_cloud_kill_stunnel (PhTestCloud *cloud, int signum)
{
  GPid pid = ph_test_cloud_stunnel_pid (cloud);
  gint64 deadline = g_get_monotonic_time () + 10 * G_USEC_PER_SEC;

  g_assert_cmpint (pid, >, 0);
  g_assert_cmpint (kill (pid, signum), ==, 0);
  while (ph_test_pid_alive (pid))
    {
      if (g_get_monotonic_time () > deadline)
        g_error ("stunnel (pid %d) still runs 10 s after signal %d", (int) pid, signum);
      g_usleep (5 * 1000);
    }
}

void
ph_test_cloud_restart_stunnel (PhTestCloud *cloud)
{
  g_autoptr (GSubprocessLauncher) launcher = ph_test_launcher (G_SUBPROCESS_FLAGS_STDERR_MERGE);
  g_autoptr (GSubprocess) proc = NULL;
  g_autoptr (GError) error = NULL;
  g_autofree char *stunnel = ph_test_find_tool ("PH_STUNNEL", "/usr/bin/stunnel4");
  g_autofree char *conf = g_build_filename (cloud->dir, "stunnel.conf", NULL);
  g_autofree char *log = g_build_filename (cloud->dir, "stunnel-restarted.log", NULL);
  g_autofree char *pid_path = g_build_filename (cloud->dir, "stunnel.pid", NULL);
  gint64 deadline = g_get_monotonic_time () + 15 * G_USEC_PER_SEC;

  g_assert_nonnull (stunnel);
  g_subprocess_launcher_set_stdout_file_path (launcher, log);
  proc = g_subprocess_launcher_spawn (launcher, &error, stunnel, conf, NULL);
  g_assert_no_error (error);
  /* Where pinhole-cloud.sh's stop looks for it. */
  g_file_set_contents (pid_path, g_subprocess_get_identifier (proc), -1, &error);
  g_assert_no_error (error);
  while (ph_test_listen_queue (cloud->tls_port) < 0)
    {
      g_autofree char *text = NULL;

      if (g_get_monotonic_time () > deadline || g_subprocess_get_identifier (proc) == NULL)
        {
          g_file_get_contents (log, &text, NULL, NULL);
          g_error ("restarted stunnel does not listen on 127.0.0.1:%u; its log:\n%s",
                   cloud->tls_port, text != NULL ? text : "");
        }
      g_usleep (10 * 1000);
    }
}

static void
ph_test_run_quietly (const char *const *argv)
{
  g_autoptr (GSubprocess) proc = NULL;
  g_autoptr (GError) error = NULL;

  proc = g_subprocess_newv (argv, G_SUBPROCESS_FLAGS_STDOUT_SILENCE, &error);
  if (proc == NULL || !g_subprocess_wait (proc, NULL, &error))
    g_printerr ("# %s: %s\n", argv[0], error->message);
}

void
ph_test_cloud_free (PhTestCloud *cloud)
{
  if (cloud == NULL)
    return;
  if (cloud->owned && cloud->dir != NULL)
    {
      const char *stop[] = { "bash", cloud->script, "stop", cloud->dir, NULL };

      ph_test_run_quietly (stop);
      /* Keep everything for a post-mortem when something failed. */
      if (cloud->keep || g_getenv ("PH_TEST_KEEP") != NULL)
        {
          g_printerr ("# cloud end files kept in %s\n", cloud->dir);
        }
      else
        {
          const char *rm[] = { "rm", "-rf", "--", cloud->dir, NULL };

          ph_test_run_quietly (rm);
        }
    }
  if (cloud->password != NULL)
    memset (cloud->password, 0, strlen (cloud->password));
  g_free (cloud->password);
  g_clear_pointer (&cloud->env, g_hash_table_unref);
  g_clear_pointer (&cloud->agent_logs, g_ptr_array_unref);
  g_free (cloud->dir);
  g_free (cloud->script);
  g_free (cloud);
}

/* --- a test binary's cases, each in a subprocess of its own, around one shared cloud end --- */

static PhTestCloud *ph_test_shared;

gboolean
ph_test_case_runs_here (void)
{
  return g_test_subprocess () || g_getenv ("PH_TEST_NO_FORK") != NULL;
}

PhTestCloud *
ph_test_shared_cloud (void)
{
  const char *dir = g_getenv ("PH_TEST_CLOUD_DIR");

  g_assert_nonnull (dir); /* ph_test_run_cases sets it */
  if (ph_test_shared == NULL)
    ph_test_shared = g_test_subprocess () ? ph_test_cloud_attach (dir)
                                          : ph_test_cloud_new_in (dir, "PH_CLOUD_ORIGIN=1", NULL);
  return ph_test_shared;
}

gboolean
ph_test_case_fork (guint timeout_s)
{
  if (ph_test_case_runs_here ())
    return TRUE;
  g_test_trap_subprocess (NULL, (guint64) timeout_s * G_USEC_PER_SEC,
                          G_TEST_SUBPROCESS_INHERIT_STDERR);
  g_test_trap_assert_passed ();
  return FALSE;
}

int
ph_test_run_cases (void)
{
  g_autofree char *dir = NULL;
  int ret;

  if (g_test_subprocess ())
    {
      ret = g_test_run ();
      g_clear_pointer (&ph_test_shared, ph_test_cloud_free);
      return ret;
    }
  /* Set before any thread exists (the cases' subprocesses inherit it); the cloud end itself
   * starts with the first case that needs it. */
  dir = g_dir_make_tmp ("pinhole-cloud-XXXXXX", NULL);
  g_assert_nonnull (dir);
  g_setenv ("PH_TEST_CLOUD_DIR", dir, TRUE);
  /* A failed case is reported and the others still run. */
  g_test_set_nonfatal_assertions ();
  ret = g_test_run ();
  if (ph_test_shared == NULL)
    g_rmdir (dir); /* no case got as far as starting the cloud end */
  else if (ret != 0)
    ph_test_shared->keep = TRUE;
  g_clear_pointer (&ph_test_shared, ph_test_cloud_free);
  return ret;
}

/* --- the agent --- */

GKeyFile *
ph_test_agent_config (PhTestCloud *cloud)
{
  GKeyFile *kf = g_key_file_new ();
  g_autofree char *listen = g_strdup_printf ("127.0.0.1:%u", ph_test_free_port ());

  g_key_file_set_string (kf, "listener", "address", listen);
  g_key_file_set_string (kf, "upstream", "host", "127.0.0.1");
  g_key_file_set_integer (kf, "upstream", "port", cloud->tls_port);
  g_key_file_set_string (kf, "upstream", "server-name", cloud->server_name);
  g_key_file_set_string (kf, "upstream", "pins", cloud->pin);
  g_key_file_set_string (kf, "upstream", "verify", "pin");
  g_key_file_set_string (kf, "upstream", "username", cloud->user);
  g_key_file_set_string (kf, "upstream", "password-file", cloud->password_file);
  g_key_file_set_string (kf, "upstream", "connect-timeout", "5s");
  g_key_file_set_string (kf, "upstream", "handshake-timeout", "5s");
  g_key_file_set_string (kf, "log", "level", "info");
  /* The HTTP/2 front (tunnel-h2): the agent offers h2, which is opt-in. */
  if (g_strcmp0 (g_getenv ("PH_CLOUD_FRONT"), "nghttpx") == 0)
    g_key_file_set_string (kf, "upstream", "http2", "auto");
  return kf;
}

void
ph_test_agent_write_config (PhTestAgent *agent, GKeyFile *config)
{
  g_autoptr (GError) error = NULL;

  g_key_file_save_to_file (config, agent->config_path, &error);
  g_assert_no_error (error);
}

static guint16
ph_test_config_port (GKeyFile *config)
{
  g_autofree char *address = g_key_file_get_string (config, "listener", "address", NULL);
  const char *colon = address != NULL ? strrchr (address, ':') : NULL;

  return colon != NULL ? (guint16) g_ascii_strtoull (colon + 1, NULL, 10) : 0;
}

static gboolean
ph_test_agent_running (PhTestAgent *agent)
{
  if (agent->proc == NULL || agent->exited)
    return FALSE;
  /* GLib reaps the child in its worker thread; the identifier goes once it has. */
  if (g_subprocess_get_identifier (agent->proc) != NULL)
    return TRUE;
  g_subprocess_wait (agent->proc, NULL, NULL);
  agent->exited = TRUE;
  agent->exit_status
      = g_subprocess_get_if_exited (agent->proc) ? g_subprocess_get_exit_status (agent->proc) : -1;
  return FALSE;
}

static void
ph_test_agent_child_setup (gpointer user_data)
{
  guint max_fds = GPOINTER_TO_UINT (user_data);

  ph_test_child_setup (NULL);
  if (max_fds > 0)
    {
      struct rlimit rl = { .rlim_cur = max_fds, .rlim_max = max_fds };

      setrlimit (RLIMIT_NOFILE, &rl);
    }
}

/* Starts the agent on agent->config_path; TRUE once it logs that it listens on agent->port. */
static gboolean
ph_test_agent_spawn (PhTestAgent *agent, const char *stdout_path, guint max_fds)
{
  g_autoptr (GSubprocessLauncher) launcher = ph_test_launcher (G_SUBPROCESS_FLAGS_NONE);
  g_autoptr (GError) error = NULL;
  g_autofree char *needle = g_strdup_printf (":%u", agent->port);
  gint64 deadline = g_get_monotonic_time () + PH_TEST_AGENT_READY_MS * G_TIME_SPAN_MILLISECOND;

  g_subprocess_launcher_set_stderr_file_path (launcher, agent->log_path);
  g_subprocess_launcher_set_stdout_file_path (launcher, stdout_path);
  if (max_fds > 0)
    g_subprocess_launcher_set_child_setup (launcher, ph_test_agent_child_setup,
                                           GUINT_TO_POINTER (max_fds), NULL);
  agent->proc = g_subprocess_launcher_spawn (launcher, &error, g_getenv ("PH_AGENT"), "--config",
                                             agent->config_path, NULL);
  g_assert_no_error (error);
  while (g_get_monotonic_time () < deadline)
    {
      g_autofree char *log = ph_test_agent_log (agent);
      const char *line = strstr (log, "listening on ");

      if (line != NULL && strstr (line, needle) != NULL)
        return TRUE;
      if (!ph_test_agent_running (agent))
        return FALSE;
      g_usleep (20 * 1000);
    }
  return FALSE;
}

static PhTestAgent *
ph_test_agent_start_full (PhTestCloud *cloud, const char *name, GKeyFile *config, guint max_fds)
{
  g_autoptr (PhTestAgent) agent = g_new0 (PhTestAgent, 1);
  g_autofree char *dir = g_build_filename (cloud->dir, "agents", NULL);

  g_assert_nonnull (g_getenv ("PH_AGENT"));
  g_assert_cmpint (g_mkdir_with_parents (dir, 0700), ==, 0);
  agent->cloud = cloud;
  for (guint i = 0;; i++)
    {
      g_autofree char *base = i == 0 ? g_strdup (name) : g_strdup_printf ("%s-%u", name, i);
      g_autofree char *log_name = g_strconcat (base, ".log", NULL);

      agent->log_path = g_build_filename (dir, log_name, NULL);
      if (!g_file_test (agent->log_path, G_FILE_TEST_EXISTS))
        {
          g_autofree char *conf_name = g_strconcat (base, ".conf", NULL);
          g_autofree char *out_name = g_strconcat (base, ".stdout", NULL);

          agent->name = g_strdup (base);
          agent->config_path = g_build_filename (dir, conf_name, NULL);
          agent->stdout_path = g_build_filename (dir, out_name, NULL);
          break;
        }
      g_clear_pointer (&agent->log_path, g_free);
    }
  /* For ph_test_cloud_assert_agents_redacted. */
  g_ptr_array_add (cloud->agent_logs, g_strdup (agent->log_path));
  g_ptr_array_add (cloud->agent_logs, g_strdup (agent->stdout_path));
  for (guint attempt = 1;; attempt++)
    {
      g_autofree char *log = NULL;

      agent->port = ph_test_config_port (config);
      ph_test_agent_write_config (agent, config);
      if (ph_test_agent_spawn (agent, agent->stdout_path, max_fds))
        return g_steal_pointer (&agent);
      log = ph_test_agent_log (agent);
      /* The free port picked for the listener may have been taken since: try another. */
      if (attempt < 3 && agent->exited && strstr (log, "in use") != NULL)
        {
          g_autofree char *listen = g_strdup_printf ("127.0.0.1:%u", ph_test_free_port ());

          g_key_file_set_string (config, "listener", "address", listen);
          g_clear_object (&agent->proc);
          agent->exited = FALSE;
          continue;
        }
      if (agent->exited)
        g_error ("agent %s exited (status %d) before listening; its log:\n%s", agent->name,
                 agent->exit_status, log);
      g_error ("agent %s did not log `listening on …:%u` within %d ms; its log:\n%s", agent->name,
               agent->port, PH_TEST_AGENT_READY_MS, log);
    }
}

PhTestAgent *
ph_test_agent_start (PhTestCloud *cloud, const char *name, GKeyFile *config)
{
  return ph_test_agent_start_full (cloud, name, config, 0);
}

PhTestAgent *
ph_test_agent_start_with_fd_limit (PhTestCloud *cloud, const char *name, GKeyFile *config,
                                   guint max_fds)
{
  g_assert_cmpuint (max_fds, >, 0);
  return ph_test_agent_start_full (cloud, name, config, max_fds);
}

gboolean
ph_test_agent_is_running (PhTestAgent *agent)
{
  return ph_test_agent_running (agent);
}

GPid
ph_test_agent_get_pid (PhTestAgent *agent)
{
  const char *id;

  if (!ph_test_agent_running (agent))
    return 0;
  id = g_subprocess_get_identifier (agent->proc);
  return id != NULL ? (GPid) g_ascii_strtoll (id, NULL, 10) : 0;
}

void
ph_test_agent_signal (PhTestAgent *agent, int signum)
{
  g_assert_true (ph_test_agent_running (agent));
  g_subprocess_send_signal (agent->proc, signum);
}

int
ph_test_agent_stop (PhTestAgent *agent)
{
  gint64 deadline = g_get_monotonic_time () + PH_TEST_AGENT_STOP_MS * G_TIME_SPAN_MILLISECOND;

  if (!ph_test_agent_running (agent))
    return agent->exit_status;
  g_subprocess_send_signal (agent->proc, SIGTERM);
  while (g_get_monotonic_time () < deadline)
    {
      if (!ph_test_agent_running (agent))
        return agent->exit_status;
      g_usleep (10 * 1000);
    }
  g_printerr ("# agent %s ignored SIGTERM for %d ms; killing it\n", agent->name,
              PH_TEST_AGENT_STOP_MS);
  g_subprocess_force_exit (agent->proc);
  g_subprocess_wait (agent->proc, NULL, NULL);
  agent->exited = TRUE;
  agent->exit_status = -1;
  return -1;
}

char *
ph_test_agent_log (PhTestAgent *agent)
{
  char *text = NULL;

  if (!g_file_get_contents (agent->log_path, &text, NULL, NULL))
    return g_strdup ("");
  return text;
}

static guint
ph_test_count (const char *haystack, const char *needle)
{
  guint n = 0;

  for (const char *p = strstr (haystack, needle); p != NULL; p = strstr (p + 1, needle))
    n++;
  return n;
}

gboolean
ph_test_agent_wait_log (PhTestAgent *agent, const char *needle, guint count, guint timeout_ms)
{
  gint64 deadline = g_get_monotonic_time () + timeout_ms * G_TIME_SPAN_MILLISECOND;

  for (;;)
    {
      g_autofree char *log = ph_test_agent_log (agent);

      if (ph_test_count (log, needle) >= count)
        return TRUE;
      if (g_get_monotonic_time () >= deadline)
        return FALSE;
      g_usleep (20 * 1000);
    }
}

char *
ph_test_agent_proxy_url (PhTestAgent *agent)
{
  return g_strdup_printf ("http://127.0.0.1:%u", agent->port);
}

void
ph_test_agent_print_log (PhTestAgent *agent, const char *why)
{
  g_autofree char *log = ph_test_agent_log (agent);
  g_autofree char *state = NULL;

  if (ph_test_agent_is_running (agent))
    state = g_strdup ("is running");
  else if (g_subprocess_get_if_signaled (agent->proc))
    state
        = g_strdup_printf ("was killed by signal %d (%s)", g_subprocess_get_term_sig (agent->proc),
                           g_strsignal (g_subprocess_get_term_sig (agent->proc)));
  else
    state = g_strdup_printf ("exited with status %d", agent->exit_status);
  g_printerr ("# %s; agent %s %s; its log:\n%s\n", why, agent->name, state, log);
}

void
ph_test_agent_stop_ok (PhTestAgent *agent)
{
  int status = ph_test_agent_stop (agent);

  if (status != 0)
    ph_test_agent_print_log (agent, "the agent did not exit 0 on SIGTERM");
  g_assert_cmpint (status, ==, 0);
}

GPtrArray *
ph_test_agent_access_lines (PhTestAgent *agent, const char *const *fields)
{
  g_autofree char *log = ph_test_agent_log (agent);
  g_auto (GStrv) lines = g_strsplit (log, "\n", -1);
  GPtrArray *out = g_ptr_array_new_with_free_func (g_free);

  for (guint i = 0; lines[i] != NULL; i++)
    {
      gboolean all;

      /* The Windows agent ends its lines with CRLF: the last field ends at the CR. */
      g_strchomp (lines[i]);
      all = strstr (lines[i], "access client=") != NULL;
      for (guint f = 0; all && fields[f] != NULL; f++)
        {
          g_autofree char *spaced = g_strconcat (" ", fields[f], NULL);
          const char *hit = strstr (lines[i], spaced);
          char after;

          while (hit != NULL && (after = hit[strlen (spaced)]) != '\0' && after != ' ')
            hit = strstr (hit + 1, spaced);
          all = hit != NULL;
        }
      if (all)
        g_ptr_array_add (out, g_strdup (lines[i]));
    }
  return out;
}

guint
ph_test_agent_wait_access (PhTestAgent *agent, const char *const *fields, guint count,
                           guint timeout_ms)
{
  gint64 deadline = g_get_monotonic_time () + timeout_ms * G_TIME_SPAN_MILLISECOND;

  for (;;)
    {
      g_autoptr (GPtrArray) lines = ph_test_agent_access_lines (agent, fields);

      if (lines->len >= count || g_get_monotonic_time () >= deadline)
        return lines->len;
      g_usleep (20 * 1000);
    }
}

void
ph_test_agent_assert_access (PhTestAgent *agent, const char *const *fields, guint count,
                             guint timeout_ms)
{
  guint n = ph_test_agent_wait_access (agent, fields, count, timeout_ms);

  if (n < count)
    {
      g_autofree char *want = g_strjoinv (" ", (char **) fields);
      g_autofree char *why = g_strdup_printf ("%u access lines with [%s], want %u", n, want, count);

      ph_test_agent_print_log (agent, why);
    }
  g_assert_cmpuint (n, >=, count);
}

void
ph_test_assert_refusal (PhTestAgent *agent, const char *head, const char *body, int status,
                        const char *kind)
{
  g_autofree char *error_kind = ph_test_head_header (head, "X-Pinhole-Error");
  g_autofree char *connection = ph_test_head_header (head, "Connection");

  if (head == NULL || ph_test_head_status (head) != status || g_strcmp0 (error_kind, kind) != 0)
    {
      g_printerr ("# expected %d %s, got:\n%s%s\n", status, kind, head ? head : "(no response)\n",
                  body ? body : "");
      ph_test_agent_print_log (agent, "unexpected answer");
    }
  g_assert_nonnull (head);
  g_assert_cmpint (ph_test_head_status (head), ==, status);
  g_assert_cmpstr (error_kind, ==, kind);
  g_assert_cmpstr (connection, ==, "close");
  if (body != NULL)
    g_assert_cmpuint (strlen (body), >, 0);
}

void
ph_test_agent_free (PhTestAgent *agent)
{
  if (agent == NULL)
    return;
  /* SIGTERM, not SIGKILL: the agent's clean exit is part of every test, and in the sanitizer
   * build it is where LeakSanitizer looks. A crash, or a report at exit (abort_on_error), fails
   * the test that was running; a test that stopped the agent itself checked the status. */
  if (agent->proc != NULL && ph_test_agent_running (agent) && ph_test_agent_stop (agent) != 0)
    {
      g_autofree char *log = ph_test_agent_log (agent);

      g_printerr ("# agent %s did not exit 0 on SIGTERM (status %d); its log:\n%s\n", agent->name,
                  agent->exit_status, log);
      g_test_fail ();
    }
  g_clear_object (&agent->proc);
  g_free (agent->name);
  g_free (agent->config_path);
  g_free (agent->log_path);
  g_free (agent->stdout_path);
  g_free (agent);
}

/* --- curl --- */

PhTestCurl *
ph_test_curlv (const char *const *args)
{
  g_autoptr (PhTestCurl) curl = g_new0 (PhTestCurl, 1);
  g_autoptr (GSubprocessLauncher) launcher = NULL;
  g_autoptr (GSubprocess) proc = NULL;
  g_autoptr (GError) error = NULL;
  g_autoptr (GBytes) err = NULL;
  g_autoptr (GPtrArray) argv = g_ptr_array_new ();
  g_autofree char *curl_bin = ph_test_find_tool ("PH_CURL", "curl");
  gsize out_len = 0;
  const char *out_data;

  g_assert_nonnull (curl_bin);
  /* -q first: ignore any ~/.curlrc. */
  g_ptr_array_add (argv, curl_bin);
  g_ptr_array_add (argv, "-q");
  g_ptr_array_add (argv, "-sS");
  g_ptr_array_add (argv, "--max-time");
  g_ptr_array_add (argv, "120");
  for (guint i = 0; args[i] != NULL; i++)
    g_ptr_array_add (argv, (gpointer) args[i]);
  g_ptr_array_add (argv, NULL);

  launcher = ph_test_launcher (G_SUBPROCESS_FLAGS_STDOUT_PIPE | G_SUBPROCESS_FLAGS_STDERR_PIPE);
  proc = g_subprocess_launcher_spawnv (launcher, (const char *const *) argv->pdata, &error);
  g_assert_no_error (error);
  g_subprocess_communicate (proc, NULL, NULL, &curl->out, &err, &error);
  g_assert_no_error (error);
  curl->exit_status = g_subprocess_get_if_exited (proc) ? g_subprocess_get_exit_status (proc) : -1;
  out_data = g_bytes_get_data (curl->out, &out_len);
  curl->out_str = g_strndup (out_data != NULL ? out_data : "", out_len);
  curl->err = g_strndup (g_bytes_get_data (err, NULL) ?: "", g_bytes_get_size (err));
  return g_steal_pointer (&curl);
}

PhTestCurl *
ph_test_curl (const char *first_arg, ...)
{
  g_autoptr (GPtrArray) args = g_ptr_array_new ();
  va_list ap;

  va_start (ap, first_arg);
  for (const char *arg = first_arg; arg != NULL; arg = va_arg (ap, const char *))
    g_ptr_array_add (args, (gpointer) arg);
  va_end (ap);
  g_ptr_array_add (args, NULL);
  return ph_test_curlv ((const char *const *) args->pdata);
}

void
ph_test_curl_free (PhTestCurl *curl)
{
  if (curl == NULL)
    return;
  g_clear_pointer (&curl->out, g_bytes_unref);
  g_free (curl->out_str);
  g_free (curl->err);
  g_free (curl);
}

/* --- raw client --- */

PhTestConn *
ph_test_conn_try_new (guint16 port, GError **error)
{
  g_autoptr (PhTestConn) conn = g_new0 (PhTestConn, 1);
  g_autoptr (GInetAddress) lo = g_inet_address_new_loopback (G_SOCKET_FAMILY_IPV4);
  g_autoptr (GSocketAddress) address = g_inet_socket_address_new (lo, port);

  conn->pending = g_byte_array_new ();
  conn->socket
      = g_socket_new (G_SOCKET_FAMILY_IPV4, G_SOCKET_TYPE_STREAM, G_SOCKET_PROTOCOL_TCP, error);
  if (conn->socket == NULL)
    return NULL;
  g_socket_set_timeout (conn->socket, 30);
  if (!g_socket_connect (conn->socket, address, NULL, error))
    return NULL;
  return g_steal_pointer (&conn);
}

PhTestConn *
ph_test_conn_new (guint16 port)
{
  g_autoptr (GError) error = NULL;
  PhTestConn *conn = ph_test_conn_try_new (port, &error);

  g_assert_no_error (error);
  return conn;
}

gboolean
ph_test_conn_send (PhTestConn *conn, const void *data, gssize len)
{
  const guint8 *p = data;
  gsize left = len < 0 ? strlen (data) : (gsize) len;

  while (left > 0)
    {
      g_autoptr (GError) error = NULL;
      gssize n = g_socket_send (conn->socket, (const char *) p, left, NULL, &error);

      if (n <= 0)
        return FALSE;
      p += n;
      left -= (gsize) n;
    }
  return TRUE;
}

/* Reads whatever arrives within @timeout_ms into pending; FALSE on EOF, error or timeout. */
static gboolean
ph_test_conn_fill (PhTestConn *conn, gint64 deadline)
{
  guint8 buf[64 * 1024];
  gint64 left_us = deadline - g_get_monotonic_time ();
  g_autoptr (GError) error = NULL;
  gssize n;

  if (conn->eof || left_us <= 0)
    return FALSE;
  if (!g_socket_condition_timed_wait (conn->socket, G_IO_IN, left_us, NULL, NULL))
    return FALSE;
  n = g_socket_receive (conn->socket, (char *) buf, sizeof buf, NULL, &error);
  if (n <= 0)
    {
      conn->eof = TRUE;
      return FALSE;
    }
  g_byte_array_append (conn->pending, buf, (guint) n);
  return TRUE;
}

char *
ph_test_conn_read_head (PhTestConn *conn, guint timeout_ms)
{
  gint64 deadline = g_get_monotonic_time () + timeout_ms * G_TIME_SPAN_MILLISECOND;

  for (;;)
    {
      /* An empty GByteArray's data is NULL, which memmem must not get. */
      const guint8 *end = conn->pending->len == 0
                              ? NULL
                              : memmem (conn->pending->data, conn->pending->len, "\r\n\r\n", 4);

      if (end != NULL)
        {
          gsize len = (gsize) (end - conn->pending->data) + 4;
          char *head = g_strndup ((const char *) conn->pending->data, len);

          g_byte_array_remove_range (conn->pending, 0, (guint) len);
          return head;
        }
      if (!ph_test_conn_fill (conn, deadline))
        return NULL;
    }
}

gsize
ph_test_conn_read_body (PhTestConn *conn, gsize len, GByteArray *into, guint timeout_ms)
{
  gint64 deadline = g_get_monotonic_time () + timeout_ms * G_TIME_SPAN_MILLISECOND;
  gsize got = 0;

  while (got < len)
    {
      gsize n;

      if (conn->pending->len == 0 && !ph_test_conn_fill (conn, deadline))
        break;
      n = MIN (len - got, conn->pending->len);
      if (into != NULL)
        g_byte_array_append (into, conn->pending->data, (guint) n);
      g_byte_array_remove_range (conn->pending, 0, (guint) n);
      got += n;
    }
  return got;
}

GBytes *
ph_test_conn_read_to_eof (PhTestConn *conn, guint timeout_ms, gboolean *closed)
{
  gint64 deadline = g_get_monotonic_time () + timeout_ms * G_TIME_SPAN_MILLISECOND;
  GBytes *all;

  while (ph_test_conn_fill (conn, deadline))
    ;
  if (closed != NULL)
    *closed = conn->eof;
  all = g_bytes_new (conn->pending->data, conn->pending->len);
  g_byte_array_set_size (conn->pending, 0);
  return all;
}

void
ph_test_conn_free (PhTestConn *conn)
{
  if (conn == NULL)
    return;
  if (conn->socket != NULL)
    g_socket_close (conn->socket, NULL);
  g_clear_object (&conn->socket);
  g_byte_array_unref (conn->pending);
  g_free (conn);
}

PhTestConnEnd
ph_test_conn_wait_end (PhTestConn *conn, guint timeout_ms, guint64 *n_read)
{
  gint64 deadline = g_get_monotonic_time () + timeout_ms * G_TIME_SPAN_MILLISECOND;
  guint8 buf[64 * 1024];
  guint64 total = 0;
  PhTestConnEnd end = PH_TEST_CONN_TIMEOUT;

  while (!conn->eof)
    {
      gint64 left_us = deadline - g_get_monotonic_time ();
      gssize n;

      if (left_us <= 0
          || !g_socket_condition_timed_wait (conn->socket, G_IO_IN, left_us, NULL, NULL))
        break;
      /* recv(2) itself, for errno: GLib folds a reset and an orderly close together. */
      n = recv (g_socket_get_fd (conn->socket), buf, sizeof buf, MSG_DONTWAIT);
      if (n > 0)
        {
          if (conn->pending->len < sizeof buf)
            g_byte_array_append (conn->pending, buf,
                                 (guint) MIN ((gsize) n, sizeof buf - conn->pending->len));
          total += (guint64) n;
          continue;
        }
      if (n < 0 && (errno == EAGAIN || errno == EINTR))
        continue;
      conn->eof = TRUE;
      end = n == 0 ? PH_TEST_CONN_EOF : PH_TEST_CONN_RESET;
    }
  if (n_read != NULL)
    *n_read = total;
  return end;
}

void
ph_test_conn_abort (PhTestConn *conn)
{
  struct linger lg = { 1, 0 };

  if (conn == NULL)
    return;
  setsockopt (g_socket_get_fd (conn->socket), SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
  ph_test_conn_free (conn);
}

int
ph_test_head_status (const char *head)
{
  if (head == NULL || !g_str_has_prefix (head, "HTTP/1.") || strlen (head) < 12)
    return -1;
  return (int) g_ascii_strtoull (head + 9, NULL, 10);
}

char *
ph_test_head_header (const char *head, const char *name)
{
  g_auto (GStrv) lines = NULL;
  gsize name_len = strlen (name);

  if (head == NULL)
    return NULL;
  lines = g_strsplit (head, "\r\n", -1);
  for (guint i = 1; lines[i] != NULL; i++)
    {
      if (g_ascii_strncasecmp (lines[i], name, name_len) == 0 && lines[i][name_len] == ':')
        return g_strdup (g_strstrip (lines[i] + name_len + 1));
    }
  return NULL;
}

/* --- requests through the agent --- */

char *
ph_test_get_request (guint16 port, const char *path)
{
  return g_strdup_printf ("GET http://127.0.0.1:%u%s HTTP/1.1\r\nHost: 127.0.0.1:%u\r\n\r\n", port,
                          path, port);
}

char *
ph_test_connect_request (guint16 port)
{
  return g_strdup_printf ("CONNECT 127.0.0.1:%u HTTP/1.1\r\nHost: 127.0.0.1:%u\r\n\r\n", port,
                          port);
}

char *
ph_test_exchange (guint16 agent_port, const char *request, char **body, gint64 *elapsed_ms,
                  guint timeout_ms)
{
  g_autoptr (PhTestConn) conn = ph_test_conn_new (agent_port);
  g_autoptr (GByteArray) data = g_byte_array_new ();
  g_autofree char *head = NULL;
  g_autofree char *length = NULL;
  gint64 start = g_get_monotonic_time ();

  ph_test_conn_send (conn, request, -1);
  head = ph_test_conn_read_head (conn, timeout_ms);
  if (elapsed_ms != NULL)
    *elapsed_ms = (g_get_monotonic_time () - start) / 1000;
  length = ph_test_head_header (head, "Content-Length");
  if (head == NULL || (g_str_has_prefix (request, "CONNECT ") && ph_test_head_status (head) == 200))
    {
      /* nothing more to read */
    }
  else if (length != NULL)
    {
      ph_test_conn_read_body (conn, g_ascii_strtoull (length, NULL, 10), data, timeout_ms);
    }
  else
    {
      g_autoptr (GBytes) rest = ph_test_conn_read_to_eof (conn, timeout_ms, NULL);

      g_byte_array_append (data, g_bytes_get_data (rest, NULL), (guint) g_bytes_get_size (rest));
    }
  if (body != NULL)
    *body = g_strndup ((const char *) data->data, data->len);
  return g_steal_pointer (&head);
}

/* --- the recording TLS endpoint --- */

struct _PhTestRecorder
{
  PhTestRecorderMode mode;
  GSocket *listener;
  guint16 port;
  char *pin;
  gnutls_certificate_credentials_t creds;
  GThread *accept_thread;
  GCancellable *cancel;

  GMutex lock;
  GByteArray *raw;
  GByteArray *plain;
  guint connections;
  guint handshakes;
  GPtrArray *threads; /* of GThread */
  GArray *fds;        /* of int, open connections (to shut down on free) */
};

typedef struct
{
  PhTestRecorder *rec;
  int fd;
} PhTestRecorderConn;

static ssize_t
ph_test_recorder_pull (gnutls_transport_ptr_t ptr, void *buf, size_t len)
{
  PhTestRecorderConn *rc = ptr;
  ssize_t n;

  do
    n = recv (rc->fd, buf, len, 0);
  while (n < 0 && errno == EINTR);
  if (n > 0)
    {
      g_mutex_lock (&rc->rec->lock);
      g_byte_array_append (rc->rec->raw, buf, (guint) n);
      g_mutex_unlock (&rc->rec->lock);
    }
  return n;
}

static int
ph_test_recorder_pull_timeout (gnutls_transport_ptr_t ptr, unsigned int ms)
{
  PhTestRecorderConn *rc = ptr;
  struct pollfd pfd = { .fd = rc->fd, .events = POLLIN };

  return poll (&pfd, 1, ms == GNUTLS_INDEFINITE_TIMEOUT ? -1 : (int) ms);
}

static ssize_t
ph_test_recorder_push (gnutls_transport_ptr_t ptr, const void *buf, size_t len)
{
  PhTestRecorderConn *rc = ptr;

  return send (rc->fd, buf, len, MSG_NOSIGNAL);
}

static void
ph_test_recorder_send (gnutls_session_t session, const char *data, gsize len)
{
  while (len > 0)
    {
      ssize_t n = gnutls_record_send (session, data, len);

      if (n == GNUTLS_E_AGAIN || n == GNUTLS_E_INTERRUPTED)
        continue;
      if (n < 0)
        return;
      data += n;
      len -= (gsize) n;
    }
}

/* As a fake upstream proxy: answers each request head with 200 and, for a plain request, the
 * head it received as the body, so a test sees exactly what the agent sent upstream. */
static void
ph_test_recorder_answer (gnutls_session_t session, GByteArray *stream, gboolean *tunneling)
{
  for (;;)
    {
      const guint8 *end;
      gsize head_len;
      g_autofree char *head = NULL;
      g_autofree char *reply = NULL;

      if (*tunneling)
        return;
      end = stream->len == 0 ? NULL : memmem (stream->data, stream->len, "\r\n\r\n", 4);
      if (end == NULL)
        return;
      head_len = (gsize) (end - stream->data) + 4;
      head = g_strndup ((const char *) stream->data, head_len);
      g_byte_array_remove_range (stream, 0, (guint) head_len);
      if (g_str_has_prefix (head, "CONNECT "))
        {
          reply = g_strdup ("HTTP/1.1 200 Connection established\r\n\r\n");
          *tunneling = TRUE;
        }
      else
        {
          reply = g_strdup_printf ("HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n"
                                   "Content-Length: %zu\r\n\r\n%s",
                                   head_len, head);
        }
      ph_test_recorder_send (session, reply, strlen (reply));
    }
}

static gpointer
ph_test_recorder_conn_thread (gpointer data)
{
  PhTestRecorderConn *rc = data;
  PhTestRecorder *rec = rc->rec;
  gnutls_session_t session = NULL;
  g_autoptr (GByteArray) stream = g_byte_array_new ();
  gboolean tunneling = FALSE;
  int ret;

  gnutls_init (&session, GNUTLS_SERVER);
  gnutls_set_default_priority (session);
  gnutls_credentials_set (session, GNUTLS_CRD_CERTIFICATE, rec->creds);
  gnutls_transport_set_ptr (session, rc);
  gnutls_transport_set_pull_function (session, ph_test_recorder_pull);
  gnutls_transport_set_pull_timeout_function (session, ph_test_recorder_pull_timeout);
  gnutls_transport_set_push_function (session, ph_test_recorder_push);
  gnutls_handshake_set_timeout (session, 20 * 1000);
  do
    ret = gnutls_handshake (session);
  while (ret < 0 && !gnutls_error_is_fatal (ret));
  if (ret >= 0)
    {
      g_mutex_lock (&rec->lock);
      rec->handshakes++;
      g_mutex_unlock (&rec->lock);
      for (;;)
        {
          char buf[16 * 1024];
          ssize_t n = gnutls_record_recv (session, buf, sizeof buf);

          if (n == GNUTLS_E_AGAIN || n == GNUTLS_E_INTERRUPTED)
            continue;
          if (n <= 0)
            break;
          g_mutex_lock (&rec->lock);
          g_byte_array_append (rec->plain, (const guint8 *) buf, (guint) n);
          g_mutex_unlock (&rec->lock);
          if (rec->mode == PH_TEST_RECORDER_PROXY_OK)
            {
              g_byte_array_append (stream, (const guint8 *) buf, (guint) n);
              ph_test_recorder_answer (session, stream, &tunneling);
            }
        }
    }
  else
    {
      /* Keep reading raw bytes until the peer gives up, so nothing it sends goes unseen. */
      char buf[4096];

      while (ph_test_recorder_pull (rc, buf, sizeof buf) > 0)
        ;
    }
  gnutls_deinit (session);
  g_mutex_lock (&rec->lock);
  for (guint i = 0; i < rec->fds->len; i++)
    {
      if (g_array_index (rec->fds, int, i) == rc->fd)
        {
          g_array_remove_index_fast (rec->fds, i);
          break;
        }
    }
  close (rc->fd);
  g_mutex_unlock (&rec->lock);
  g_free (rc);
  return NULL;
}

static gpointer
ph_test_recorder_accept_thread (gpointer data)
{
  PhTestRecorder *rec = data;

  for (;;)
    {
      g_autoptr (GError) error = NULL;
      g_autoptr (GSocket) sock = g_socket_accept (rec->listener, rec->cancel, &error);
      PhTestRecorderConn *rc;

      if (sock == NULL)
        {
          if (g_cancellable_is_cancelled (rec->cancel))
            return NULL;
          continue;
        }
      rc = g_new0 (PhTestRecorderConn, 1);
      rc->rec = rec;
      rc->fd = dup (g_socket_get_fd (sock));
      g_mutex_lock (&rec->lock);
      rec->connections++;
      g_array_append_val (rec->fds, rc->fd);
      g_ptr_array_add (rec->threads,
                       g_thread_new ("ph-recorder-conn", ph_test_recorder_conn_thread, rc));
      g_mutex_unlock (&rec->lock);
    }
}

static char *
ph_test_pin_of_crt (gnutls_x509_crt_t crt)
{
  gnutls_pubkey_t pub = NULL;
  gnutls_datum_t der = { NULL, 0 };
  guint8 digest[32];
  g_autofree char *b64 = NULL;

  g_assert_cmpint (gnutls_pubkey_init (&pub), >=, 0);
  g_assert_cmpint (gnutls_pubkey_import_x509 (pub, crt, 0), >=, 0);
  g_assert_cmpint (gnutls_pubkey_export2 (pub, GNUTLS_X509_FMT_DER, &der), >=, 0);
  g_assert_cmpint (gnutls_hash_fast (GNUTLS_DIG_SHA256, der.data, der.size, digest), >=, 0);
  gnutls_free (der.data);
  gnutls_pubkey_deinit (pub);
  b64 = g_base64_encode (digest, sizeof digest);
  return g_strconcat ("sha256//", b64, NULL);
}

/* A fresh EC P-256 key and self-signed certificate, made in-process. */
static void
ph_test_recorder_make_creds (PhTestRecorder *rec)
{
  gnutls_x509_privkey_t key = NULL;
  gnutls_x509_crt_t crt = NULL;
  guint8 serial[8];
  time_t now = time (NULL);
  const char *name = "pinhole-recorder.test";

  g_assert_cmpint (gnutls_x509_privkey_init (&key), >=, 0);
  g_assert_cmpint (gnutls_x509_privkey_generate (
                       key, GNUTLS_PK_ECDSA, GNUTLS_CURVE_TO_BITS (GNUTLS_ECC_CURVE_SECP256R1), 0),
                   >=, 0);
  g_assert_cmpint (gnutls_x509_crt_init (&crt), >=, 0);
  gnutls_rnd (GNUTLS_RND_NONCE, serial, sizeof serial);
  serial[0] &= 0x7f;
  gnutls_x509_crt_set_version (crt, 3);
  gnutls_x509_crt_set_serial (crt, serial, sizeof serial);
  gnutls_x509_crt_set_activation_time (crt, now - 3600);
  gnutls_x509_crt_set_expiration_time (crt, now + 86400);
  gnutls_x509_crt_set_dn_by_oid (crt, GNUTLS_OID_X520_COMMON_NAME, 0, name, strlen (name));
  gnutls_x509_crt_set_subject_alt_name (crt, GNUTLS_SAN_DNSNAME, name, strlen (name),
                                        GNUTLS_FSAN_SET);
  gnutls_x509_crt_set_key (crt, key);
  g_assert_cmpint (gnutls_x509_crt_sign2 (crt, crt, key, GNUTLS_DIG_SHA256, 0), >=, 0);
  rec->pin = ph_test_pin_of_crt (crt);
  g_assert_cmpint (gnutls_certificate_allocate_credentials (&rec->creds), >=, 0);
  g_assert_cmpint (gnutls_certificate_set_x509_key (rec->creds, &crt, 1, key), >=, 0);
  gnutls_x509_crt_deinit (crt);
  gnutls_x509_privkey_deinit (key);
}

PhTestRecorder *
ph_test_recorder_new (PhTestRecorderMode mode)
{
  PhTestRecorder *rec = g_new0 (PhTestRecorder, 1);
  g_autoptr (GInetAddress) lo = g_inet_address_new_loopback (G_SOCKET_FAMILY_IPV4);
  g_autoptr (GSocketAddress) any = g_inet_socket_address_new (lo, 0);
  g_autoptr (GSocketAddress) bound = NULL;
  g_autoptr (GError) error = NULL;

  rec->mode = mode;
  g_mutex_init (&rec->lock);
  rec->raw = g_byte_array_new ();
  rec->plain = g_byte_array_new ();
  rec->threads = g_ptr_array_new ();
  rec->fds = g_array_new (FALSE, FALSE, sizeof (int));
  rec->cancel = g_cancellable_new ();
  ph_test_recorder_make_creds (rec);

  rec->listener
      = g_socket_new (G_SOCKET_FAMILY_IPV4, G_SOCKET_TYPE_STREAM, G_SOCKET_PROTOCOL_TCP, &error);
  g_assert_no_error (error);
  g_socket_bind (rec->listener, any, TRUE, &error);
  g_assert_no_error (error);
  g_socket_listen (rec->listener, &error);
  g_assert_no_error (error);
  bound = g_socket_get_local_address (rec->listener, &error);
  g_assert_no_error (error);
  rec->port = g_inet_socket_address_get_port (G_INET_SOCKET_ADDRESS (bound));
  rec->accept_thread = g_thread_new ("ph-recorder", ph_test_recorder_accept_thread, rec);
  return rec;
}

guint16
ph_test_recorder_get_port (PhTestRecorder *rec)
{
  return rec->port;
}

const char *
ph_test_recorder_get_pin (PhTestRecorder *rec)
{
  return rec->pin;
}

static GBytes *
ph_test_recorder_copy (PhTestRecorder *rec, GByteArray *array)
{
  GBytes *copy;

  g_mutex_lock (&rec->lock);
  copy = g_bytes_new (array->data, array->len);
  g_mutex_unlock (&rec->lock);
  return copy;
}

GBytes *
ph_test_recorder_get_raw (PhTestRecorder *rec)
{
  return ph_test_recorder_copy (rec, rec->raw);
}

GBytes *
ph_test_recorder_get_plain (PhTestRecorder *rec)
{
  return ph_test_recorder_copy (rec, rec->plain);
}

guint
ph_test_recorder_get_connections (PhTestRecorder *rec)
{
  guint n;

  g_mutex_lock (&rec->lock);
  n = rec->connections;
  g_mutex_unlock (&rec->lock);
  return n;
}

guint
ph_test_recorder_get_handshakes (PhTestRecorder *rec)
{
  guint n;

  g_mutex_lock (&rec->lock);
  n = rec->handshakes;
  g_mutex_unlock (&rec->lock);
  return n;
}

void
ph_test_recorder_free (PhTestRecorder *rec)
{
  if (rec == NULL)
    return;
  g_cancellable_cancel (rec->cancel);
  g_thread_join (rec->accept_thread);
  g_socket_close (rec->listener, NULL);
  /* Wake the connection threads blocked in recv. */
  g_mutex_lock (&rec->lock);
  for (guint i = 0; i < rec->fds->len; i++)
    shutdown (g_array_index (rec->fds, int, i), SHUT_RDWR);
  g_mutex_unlock (&rec->lock);
  for (guint i = 0; i < rec->threads->len; i++)
    g_thread_join (g_ptr_array_index (rec->threads, i));
  g_ptr_array_unref (rec->threads);
  g_array_unref (rec->fds);
  g_object_unref (rec->listener);
  g_object_unref (rec->cancel);
  gnutls_certificate_free_credentials (rec->creds);
  g_byte_array_unref (rec->raw);
  g_byte_array_unref (rec->plain);
  g_mutex_clear (&rec->lock);
  g_free (rec->pin);
  g_free (rec);
}

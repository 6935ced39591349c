/* SPDX-License-Identifier: GPL-2.0-or-later */
/* test-daemon.c: unit tests for agent/service/ph-daemon.h without D-Bus: a system file and a
 * managed.d drop-in in a temp dir, a file secret store, and a cloud proxy that never answers (or
 * refuses). */
#include "ph-daemon.h"
#include "ph-error.h"
#include "ph-test-util.h"

#include <string.h>
#include <sys/stat.h>
#include <glib/gstdio.h>

#define PIN "sha256//AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA="
#define WAIT_US (5 * G_USEC_PER_SEC)

/* The test data of cases whose cloud proxy refuses connections. */
static const int refusing_marker;
#define REFUSING (&refusing_marker)

typedef struct
{
  char *dir;
  char *system_path, *managed_dir, *state_dir, *secrets_path;
  GSocket *upstream; /* listening and never accepting (silent), or bound only (refusing) */
  guint16 upstream_port;
  guint16 port;
  PhDaemon *daemon;
  guint changed;
  PhState changed_state; /* the state at the last "changed" */
} Fixture;

static GSocket *
bind_loopback (guint16 port, gboolean listen)
{
  g_autoptr (GInetAddress) lo = g_inet_address_new_loopback (G_SOCKET_FAMILY_IPV4);
  g_autoptr (GSocketAddress) addr = g_inet_socket_address_new (lo, port);
  g_autoptr (GError) error = NULL;
  g_autoptr (GSocket) sock
      = g_socket_new (G_SOCKET_FAMILY_IPV4, G_SOCKET_TYPE_STREAM, G_SOCKET_PROTOCOL_TCP, &error);

  g_assert_no_error (error);
  g_assert_true (g_socket_bind (sock, addr, TRUE, &error));
  if (listen)
    g_assert_true (g_socket_listen (sock, &error));
  g_assert_no_error (error);
  return g_steal_pointer (&sock);
}

static guint16
socket_port (GSocket *sock)
{
  g_autoptr (GSocketAddress) addr = g_socket_get_local_address (sock, NULL);

  return g_inet_socket_address_get_port (G_INET_SOCKET_ADDRESS (addr));
}

/* A port the kernel had free a moment ago. (The configuration does not take port 0.) */
static guint16
free_port (void)
{
  g_autoptr (GSocket) sock = bind_loopback (0, FALSE);

  return socket_port (sock);
}

static void
write_text (const char *path, const char *text)
{
  g_autoptr (GError) error = NULL;

  g_file_set_contents (path, text, -1, &error);
  g_assert_no_error (error);
}

/* The system file; %s is put at its end. Lines are numbered for the problem reports. */
static char *
system_text (Fixture *f, const char *more)
{
  return g_strdup_printf ("[listener]\n"            /* 1 */
                          "address=127.0.0.1:%u\n"  /* 2 */
                          "[upstream]\n"            /* 3 */
                          "host=127.0.0.1\n"        /* 4 */
                          "port=%u\n"               /* 5 */
                          "pins=" PIN "\n"          /* 6 */
                          "warm=0\n"                /* 7 */
                          "handshake-timeout=60s\n" /* 8 */
                          "[tunnel]\n"              /* 9 */
                          "max-tunnels=5\n"         /* 10 */
                          "%s",                     /* 11 */
                          f->port, f->upstream_port, more ? more : "");
}

static void
write_system (Fixture *f, const char *more)
{
  g_autofree char *text = system_text (f, more);

  write_text (f->system_path, text);
}

static void
fixture_setup (Fixture *f, gconstpointer data)
{
  g_autoptr (GError) error = NULL;
  g_autofree char *dropin = NULL;
  gboolean refusing = data == REFUSING;

  f->dir = g_dir_make_tmp ("pinhole-daemon-XXXXXX", &error);
  g_assert_no_error (error);
  f->system_path = g_build_filename (f->dir, "pinhole.conf", NULL);
  f->managed_dir = g_build_filename (f->dir, "managed.d", NULL);
  f->state_dir = g_build_filename (f->dir, "state", NULL);
  f->secrets_path = g_build_filename (f->dir, "secrets", "credentials", NULL);
  g_assert_cmpint (g_mkdir (f->managed_dir, 0755), ==, 0);
  dropin = g_build_filename (f->managed_dir, "10-it.conf", NULL);
  write_text (dropin, "# IT says so\n[tunnel]\nmax-tunnels=10\n");

  f->upstream = bind_loopback (0, !refusing);
  f->upstream_port = socket_port (f->upstream);
  f->port = free_port ();
  write_system (f, NULL);
}

static void
fixture_teardown (Fixture *f, gconstpointer data)
{
  g_clear_object (&f->daemon);
  g_clear_object (&f->upstream);
  /* What was in flight (the probe of a proxy that is now gone) ends. */
  for (guint i = 0; i < 50; i++)
    if (!g_main_context_iteration (NULL, FALSE))
      g_usleep (1000);
  ph_test_remove_tree (f->dir);
  g_free (f->dir);
  g_free (f->system_path);
  g_free (f->managed_dir);
  g_free (f->state_dir);
  g_free (f->secrets_path);
}

static void
changed_cb (PhDaemon *d, gpointer data)
{
  Fixture *f = data;

  f->changed++;
  f->changed_state = ph_daemon_get_state (d);
}

static PhDaemon *
daemon_new (Fixture *f, gboolean watch)
{
  PhDaemonSetup setup = {
    .mode = PH_DAEMON_MODE_SYSTEM,
    .system_path = f->system_path,
    .managed_dir = f->managed_dir,
    .state_dir = f->state_dir,
    .secrets = ph_secret_store_new_file (f->secrets_path),
    .watch = watch,
  };
  g_autoptr (GError) error = NULL;
  PhDaemon *d = ph_daemon_new (&setup, &error);

  g_assert_no_error (error);
  g_assert (d != NULL);
  return d;
}

static void
daemon_start (Fixture *f, gboolean watch)
{
  f->daemon = daemon_new (f, watch);
  g_signal_connect (f->daemon, "changed", G_CALLBACK (changed_cb), f);
}

static gboolean
wait_state (Fixture *f, PhState state)
{
  gint64 deadline = g_get_monotonic_time () + WAIT_US;

  while (ph_daemon_get_state (f->daemon) != state && g_get_monotonic_time () < deadline)
    if (!g_main_context_iteration (NULL, FALSE))
      g_usleep (1000);
  return ph_daemon_get_state (f->daemon) == state;
}

static void
assert_listening (Fixture *f, gboolean listening)
{
  g_auto (GStrv) listeners = ph_daemon_dup_listeners (f->daemon);
  g_autofree char *want = g_strdup_printf ("127.0.0.1:%u", f->port);
  g_autoptr (GInetAddress) lo = g_inet_address_new_loopback (G_SOCKET_FAMILY_IPV4);
  g_autoptr (GSocketAddress) addr = g_inet_socket_address_new (lo, f->port);
  g_autoptr (GSocket) sock
      = g_socket_new (G_SOCKET_FAMILY_IPV4, G_SOCKET_TYPE_STREAM, G_SOCKET_PROTOCOL_TCP, NULL);
  g_autoptr (GError) error = NULL;

  if (listening)
    {
      g_assert_cmpstrv (listeners, ((const char *const[]){ want, NULL }));
      g_assert_true (g_socket_connect (sock, addr, NULL, &error));
      g_assert_no_error (error);
    }
  else
    {
      g_assert_cmpstrv (listeners, ((const char *const[]){ NULL }));
      g_assert_false (g_socket_connect (sock, addr, NULL, &error));
      g_assert_error (error, G_IO_ERROR, G_IO_ERROR_CONNECTION_REFUSED);
    }
}

static gboolean
saved_enabled (Fixture *f)
{
  g_autofree char *path = g_build_filename (f->state_dir, "state", NULL);
  g_autoptr (GKeyFile) kf = g_key_file_new ();
  g_autoptr (GError) error = NULL;
  gboolean enabled;

  g_assert_true (g_key_file_load_from_file (kf, path, G_KEY_FILE_NONE, &error));
  enabled = g_key_file_get_boolean (kf, "agent", "enabled", &error);
  g_assert_no_error (error);
  return enabled;
}

/* ---- the switch and the state ---- */

/* On by default; off closes the listener, says so and is remembered; on opens it again. */
static void
test_enable_disable (Fixture *f, gconstpointer data)
{
  g_autoptr (GError) error = NULL;
  guint before;

  daemon_start (f, FALSE);
  g_assert_true (ph_daemon_get_enabled (f->daemon));
  /* The proxy takes the TCP connection and never answers the handshake. */
  g_assert_cmpint (ph_daemon_get_state (f->daemon), ==, PH_STATE_CONNECTING);
  g_assert_null (ph_daemon_get_last_error (f->daemon));
  assert_listening (f, TRUE);

  before = f->changed;
  ph_daemon_disable (f->daemon);
  g_assert_cmpuint (f->changed, >, before);
  g_assert_cmpint (f->changed_state, ==, PH_STATE_OFF);
  g_assert_false (ph_daemon_get_enabled (f->daemon));
  assert_listening (f, FALSE);
  g_assert_false (saved_enabled (f));

  before = f->changed;
  g_assert_true (ph_daemon_enable (f->daemon, &error));
  g_assert_no_error (error);
  g_assert_cmpuint (f->changed, >, before);
  g_assert_cmpint (f->changed_state, ==, PH_STATE_CONNECTING);
  g_assert_true (ph_daemon_get_enabled (f->daemon));
  g_assert_true (saved_enabled (f));
  assert_listening (f, TRUE);

  /* Off survives a restart. */
  ph_daemon_disable (f->daemon);
  g_clear_object (&f->daemon);
  daemon_start (f, FALSE);
  g_assert_false (ph_daemon_get_enabled (f->daemon));
  g_assert_cmpint (ph_daemon_get_state (f->daemon), ==, PH_STATE_OFF);
  assert_listening (f, FALSE);
}

/* A proxy that refuses: the probe's failure turns "connecting" into "error", with a
 * notification and the reason; off clears it. */
static void
test_error_state (Fixture *f, gconstpointer data)
{
  const GError *last;

  daemon_start (f, FALSE);
  g_assert_true (wait_state (f, PH_STATE_ERROR));
  g_assert_cmpint (f->changed_state, ==, PH_STATE_ERROR);
  last = ph_daemon_get_last_error (f->daemon);
  g_assert_error ((GError *) last, PH_ERROR, PH_ERROR_UPSTREAM_UNREACHABLE);
  /* The listener stays open: clients get a clear 502, not a refused connection. */
  assert_listening (f, TRUE);

  ph_daemon_disable (f->daemon);
  g_assert_cmpint (f->changed_state, ==, PH_STATE_OFF);
  g_assert_null (ph_daemon_get_last_error (f->daemon));
}

/* ---- settings ---- */

/* A key a managed drop-in sets wins over the system file and cannot be set; others can. */
static void
test_managed_key_locked (Fixture *f, gconstpointer data)
{
  g_autoptr (GError) error = NULL;
  g_auto (GStrv) locked = NULL;
  g_autofree char *text = NULL;
  guint before;

  daemon_start (f, FALSE);
  g_assert_cmpuint (ph_config_get_max_tunnels (ph_daemon_get_config (f->daemon)), ==, 10);
  locked = ph_daemon_dup_locked_keys (f->daemon);
  g_assert_cmpstrv (locked, ((const char *const[]){ "tunnel.max-tunnels", NULL }));

  before = f->changed;
  g_assert_false (ph_daemon_set_setting (f->daemon, "tunnel.max-tunnels", "20", &error));
  g_assert_error (error, PH_ERROR, PH_ERROR_LOCKED);
  g_assert_nonnull (strstr (error->message, f->managed_dir));
  g_clear_error (&error);
  g_assert_cmpuint (ph_config_get_max_tunnels (ph_daemon_get_config (f->daemon)), ==, 10);
  g_assert_true (g_file_get_contents (f->system_path, &text, NULL, NULL));
  g_assert_null (strstr (text, "max-tunnels=20"));
  g_assert_cmpuint (f->changed, ==, before);

  g_assert_true (ph_daemon_set_setting (f->daemon, "tunnel.idle-timeout", "60s", &error));
  g_assert_no_error (error);
  g_assert_cmpuint (ph_config_get_idle_timeout_ms (ph_daemon_get_config (f->daemon)), ==, 60000);
  g_assert_cmpuint (f->changed, >, before);
  g_clear_pointer (&text, g_free);
  g_assert_true (g_file_get_contents (f->system_path, &text, NULL, NULL));
  g_assert_nonnull (strstr (text, "idle-timeout=60s"));
}

/* Credentials go to the secret store, never into the configuration file, and are found again
 * by the next daemon. */
static void
test_credentials_file_store (Fixture *f, gconstpointer data)
{
  static const char password[] = "correct horse battery";
  g_autoptr (GError) error = NULL;
  g_autofree char *text = NULL;
  GStatBuf st;

  daemon_start (f, FALSE);
  g_assert_false (ph_daemon_get_credentials_stored (f->daemon));
  g_assert_true (ph_daemon_set_credentials (f->daemon, "alice", password, &error));
  g_assert_no_error (error);
  g_assert_true (ph_daemon_get_credentials_stored (f->daemon));
  g_assert_cmpstr (ph_config_get_username (ph_daemon_get_config (f->daemon)), ==, "alice");
  g_assert_true (g_file_get_contents (f->system_path, &text, NULL, NULL));
  g_assert_nonnull (strstr (text, "username=alice"));
  g_assert_null (strstr (text, password));
  g_assert_cmpint (g_stat (f->secrets_path, &st), ==, 0);
  g_assert_cmpint (st.st_mode & 0777, ==, 0600);

  g_clear_object (&f->daemon);
  daemon_start (f, FALSE);
  g_assert_true (ph_daemon_get_credentials_stored (f->daemon));
  g_assert_true (ph_daemon_clear_credentials (f->daemon, &error));
  g_assert_no_error (error);
  g_assert_false (ph_daemon_get_credentials_stored (f->daemon));
}

/* A SOCKS user's password goes to the secret store under a key of its own, its name to
 * [listener] socks-users; the engine's config carries the password (loaded again by the next
 * daemon), the file never does; a managed list cannot be grown; removing takes both away. */
static void
test_socks_users_file_store (Fixture *f, gconstpointer data)
{
  static const char password[] = "socks horse battery";
  g_autoptr (GError) error = NULL;
  g_autofree char *text = NULL;
  g_autofree char *dropin = g_build_filename (f->managed_dir, "20-socks.conf", NULL);
  const char *const *users;

  daemon_start (f, FALSE);
  g_assert_true (ph_daemon_set_socks_user (f->daemon, "alice", password, &error));
  g_assert_no_error (error);
  g_assert_true (ph_daemon_set_socks_user (f->daemon, "bob@lan", "other", &error));
  g_assert_no_error (error);
  users = ph_config_get_socks_users (ph_daemon_get_config (f->daemon));
  g_assert_cmpuint (g_strv_length ((GStrv) users), ==, 2);
  g_assert_cmpstr (ph_config_get_socks_password (ph_daemon_get_config (f->daemon), "alice"), ==,
                   password);
  g_assert_cmpstr (ph_config_get_socks_password (ph_daemon_get_config (f->daemon), "bob@lan"), ==,
                   "other");
  g_assert_null (ph_config_get_socks_password (ph_daemon_get_config (f->daemon), "carol"));
  g_assert_true (g_file_get_contents (f->system_path, &text, NULL, NULL));
  g_assert_nonnull (strstr (text, "socks-users=alice;bob@lan"));
  g_assert_null (strstr (text, password));
  g_clear_pointer (&text, g_free);
  g_assert_true (g_file_get_contents (f->secrets_path, &text, NULL, NULL));
  g_assert_null (strstr (text, password)); /* encoded, not plain */

  /* Bad names and passwords. */
  g_assert_false (ph_daemon_set_socks_user (f->daemon, "a b", password, &error));
  g_assert_error (error, PH_ERROR, PH_ERROR_INVALID_SETTING);
  g_clear_error (&error);
  g_assert_false (ph_daemon_set_socks_user (f->daemon, "carol", "", &error));
  g_assert_error (error, PH_ERROR, PH_ERROR_INVALID_SETTING);
  g_clear_error (&error);
  {
    char longer[257];

    memset (longer, 'x', 256);
    longer[256] = '\0';
    g_assert_false (ph_daemon_set_socks_user (f->daemon, "carol", longer, &error));
    g_assert_error (error, PH_ERROR, PH_ERROR_INVALID_SETTING);
    g_clear_error (&error);
  }

  /* The next daemon reads the passwords again. */
  g_clear_object (&f->daemon);
  daemon_start (f, FALSE);
  g_assert_cmpstr (ph_config_get_socks_password (ph_daemon_get_config (f->daemon), "alice"), ==,
                   password);
  g_assert_true (ph_daemon_remove_socks_user (f->daemon, "bob@lan", &error));
  g_assert_no_error (error);
  g_assert_null (ph_config_get_socks_password (ph_daemon_get_config (f->daemon), "bob@lan"));
  g_assert_false (ph_daemon_remove_socks_user (f->daemon, "bob@lan", &error));
  g_assert_error (error, PH_ERROR, PH_ERROR_INVALID_SETTING);
  g_clear_error (&error);

  /* IT's list: a listed user's password may change, a new name cannot be added. */
  g_assert_true (g_file_set_contents (dropin, "[listener]\nsocks-users=alice\n", -1, NULL));
  g_assert_true (ph_daemon_reload (f->daemon, &error));
  g_assert_no_error (error);
  g_assert_true (ph_daemon_set_socks_user (f->daemon, "alice", "new one", &error));
  g_assert_no_error (error);
  g_assert_cmpstr (ph_config_get_socks_password (ph_daemon_get_config (f->daemon), "alice"), ==,
                   "new one");
  g_assert_false (ph_daemon_set_socks_user (f->daemon, "dave", password, &error));
  g_assert_error (error, PH_ERROR, PH_ERROR_LOCKED);
  g_clear_error (&error);
  g_assert_cmpint (g_unlink (dropin), ==, 0);
  g_assert_true (ph_daemon_reload (f->daemon, &error));
  g_assert_no_error (error);
  g_assert_true (ph_daemon_remove_socks_user (f->daemon, "alice", &error));
  g_assert_no_error (error);
  users = ph_config_get_socks_users (ph_daemon_get_config (f->daemon));
  g_assert_true (users == NULL || users[0] == NULL);
}

/* ---- configuration problems ---- */

typedef struct
{
  const char *name;
  const char *dropin; /* NULL: the problem is in the system file */
  const char *text;   /* appended to the system file, or the drop-in's whole text */
  guint line;
  const char *group_key; /* "[group] key" as reported */
} BadConfigCase;

static const BadConfigCase bad_config_cases[] = {
  { "bad-system-file", NULL, "idle-timeout=soon\n", 11, "[tunnel] idle-timeout" },
  { "bad-dropin", "20-bad.conf", "[tunnel]\n\nhead-timeout=-1\n", 3, "[tunnel] head-timeout" },
  { "unknown-key", NULL, "[log]\nlevel=info\nverbose=yes\n", 13, "[log] verbose" },
};

/* A file that does not load is refused with FILE:LINE: [group] key, the last good configuration
 * keeps running, and the problem is shown until the file is fixed. */
static void
test_bad_config_reload (Fixture *f, gconstpointer data)
{
  const BadConfigCase *c = data;
  g_autoptr (GError) error = NULL;
  g_autofree char *path = NULL;
  g_autofree char *where = NULL;
  PhConfig *good;
  const GError *last;
  guint before;

  daemon_start (f, FALSE);
  good = ph_daemon_get_config (f->daemon);
  if (c->dropin != NULL)
    {
      path = g_build_filename (f->managed_dir, c->dropin, NULL);
      write_text (path, c->text);
    }
  else
    {
      path = g_strdup (f->system_path);
      write_system (f, c->text);
    }
  where = g_strdup_printf ("%s:%u: %s: ", path, c->line, c->group_key);

  before = f->changed;
  g_test_expect_message ("pinhole-daemon", G_LOG_LEVEL_WARNING, "configuration not applied*");
  g_assert_false (ph_daemon_reload (f->daemon, &error));
  g_test_assert_expected_messages ();
  g_assert_error (error, PH_ERROR, PH_ERROR_INVALID_CONFIG);
  g_test_message ("%s", error->message);
  g_assert_nonnull (strstr (error->message, where));
  g_clear_error (&error);
  g_assert_cmpuint (f->changed, >, before);

  /* Nothing of the bad file is in force. */
  g_assert_true (ph_daemon_get_config (f->daemon) == good);
  g_assert_cmpuint (ph_config_get_max_tunnels (good), ==, 10);
  g_assert_cmpint (ph_daemon_get_state (f->daemon), ==, PH_STATE_CONNECTING);
  assert_listening (f, TRUE);
  last = ph_daemon_get_last_error (f->daemon);
  g_assert_error ((GError *) last, PH_ERROR, PH_ERROR_INVALID_CONFIG);
  g_assert_nonnull (strstr (last->message, where));

  /* Fixed: applied, and the problem is gone. */
  if (c->dropin != NULL)
    g_assert_cmpint (g_unlink (path), ==, 0);
  else
    write_system (f, "idle-timeout=42s\n");
  g_assert_true (ph_daemon_reload (f->daemon, &error));
  g_assert_no_error (error);
  g_assert_null (ph_daemon_get_last_error (f->daemon));
  if (c->dropin == NULL)
    g_assert_cmpuint (ph_config_get_idle_timeout_ms (ph_daemon_get_config (f->daemon)), ==, 42000);
  assert_listening (f, TRUE);
}

/* With watch, an edit of the system file is applied without being asked, and announced. */
static void
test_watch_applies_edit (Fixture *f, gconstpointer data)
{
  gint64 deadline;
  guint before;

  daemon_start (f, TRUE);
  g_assert_cmpuint (ph_config_get_idle_timeout_ms (ph_daemon_get_config (f->daemon)), ==, 300000);
  before = f->changed;
  write_system (f, "idle-timeout=77s\n");
  deadline = g_get_monotonic_time () + WAIT_US;
  while (ph_config_get_idle_timeout_ms (ph_daemon_get_config (f->daemon)) != 77000
         && g_get_monotonic_time () < deadline)
    if (!g_main_context_iteration (NULL, FALSE))
      g_usleep (1000);
  g_assert_cmpuint (ph_config_get_idle_timeout_ms (ph_daemon_get_config (f->daemon)), ==, 77000);
  g_assert_cmpuint (f->changed, >, before);
  assert_listening (f, TRUE);
}

/* A daemon let go while a stopped server still drains leaves nothing behind: no server, no
 * timer of one running on in the main loop. */
static void
test_finalize_while_draining (Fixture *f, gconstpointer data)
{
  gint64 deadline;
  guint dispatched = 0;

  daemon_start (f, FALSE);
  ph_daemon_disable (f->daemon);
  g_clear_object (&f->daemon);
  /* The probe of the proxy ends with the proxy gone. */
  g_clear_object (&f->upstream);
  deadline = g_get_monotonic_time () + 200 * 1000;
  while (g_get_monotonic_time () < deadline)
    if (!g_main_context_iteration (NULL, FALSE))
      g_usleep (1000);
  /* A server's timeout sweep would run every 250 ms. */
  deadline = g_get_monotonic_time () + 800 * 1000;
  while (g_get_monotonic_time () < deadline)
    if (g_main_context_iteration (NULL, FALSE))
      dispatched++;
    else
      g_usleep (1000);
  g_assert_cmpuint (dispatched, ==, 0);
}

/* ---- the cloud proxy out of reach ---- */

/* when-unreachable=direct: a refusing proxy puts the agent in "error" with UnreachableDirect. */
static void
test_unreachable_direct (Fixture *f, gconstpointer data)
{
  const GError *last;

  write_system (f, "[route]\nwhen-unreachable=direct\n");
  daemon_start (f, FALSE);
  g_assert_true (wait_state (f, PH_STATE_ERROR));
  last = ph_daemon_get_last_error (f->daemon);
  g_assert_error ((GError *) last, PH_ERROR, PH_ERROR_UNREACHABLE_DIRECT);
  g_assert_nonnull (strstr (last->message, "when-unreachable=direct"));
  g_assert_cmpstr (ph_daemon_get_portal_url (f->daemon), ==, "");
  g_assert_cmpstr (ph_error_to_string (PH_ERROR_UNREACHABLE_DIRECT), ==, "unreachable-direct");
}

/* A portal of the test's own: every request is answered with a redirect to /login. */
typedef struct
{
  GSocket *listener;
  guint answered;
} Portal;

static gpointer
portal_thread (gpointer data)
{
  Portal *p = data;
  GSocket *conn;

  while ((conn = g_socket_accept (p->listener, NULL, NULL)) != NULL)
    {
      static const char reply[]
          = "HTTP/1.1 302 Found\r\nLocation: /login\r\nContent-Length: 0\r\n\r\n";
      char buf[1024];

      g_socket_receive (conn, buf, sizeof buf, NULL, NULL);
      g_socket_send (conn, reply, sizeof reply - 1, NULL, NULL);
      g_socket_close (conn, NULL);
      g_object_unref (conn);
      g_atomic_int_inc (&p->answered);
    }
  return NULL;
}

/* A refusing proxy and a portal that redirects the check: State captive-portal, PortalUrl the
 * redirect's target; portal=allow says no error, portal=block says Blocked. */
static void
test_captive_portal (Fixture *f, gconstpointer data)
{
  Portal portal = { bind_loopback (0, TRUE), 0 };
  guint16 port = socket_port (portal.listener);
  GThread *thread = g_thread_new ("portal", portal_thread, &portal);
  g_autofree char *route = g_strdup_printf (
      "[route]\nportal-check=http://127.0.0.1:%u/generate_204\nwhen-unreachable=direct\n", port);
  g_autofree char *route_block = g_strconcat (route, "portal=block\n", NULL);
  g_autofree char *login = g_strdup_printf ("http://127.0.0.1:%u/login", port);
  g_autoptr (GError) error = NULL;
  const GError *last;

  write_system (f, route);
  daemon_start (f, FALSE);
  g_assert_true (wait_state (f, PH_STATE_CAPTIVE_PORTAL));
  g_assert_cmpint (f->changed_state, ==, PH_STATE_CAPTIVE_PORTAL);
  g_assert_cmpstr (ph_state_to_string (PH_STATE_CAPTIVE_PORTAL), ==, "captive-portal");
  g_assert_cmpstr (ph_daemon_get_portal_url (f->daemon), ==, login);
  g_assert_null (ph_daemon_get_last_error (f->daemon));
  g_assert_cmpuint (g_atomic_int_get (&portal.answered), >=, 1);

  write_system (f, route_block);
  g_assert_true (ph_daemon_reload (f->daemon, &error));
  g_assert_no_error (error);
  g_assert_cmpint (ph_daemon_get_state (f->daemon), ==, PH_STATE_CAPTIVE_PORTAL);
  last = ph_daemon_get_last_error (f->daemon);
  g_assert_error ((GError *) last, PH_ERROR, PH_ERROR_BLOCKED);
  g_assert_nonnull (strstr (last->message, login));

  /* No check any more: the portal is forgotten, when-unreachable=direct applies. */
  write_system (f, "[route]\nwhen-unreachable=direct\n");
  g_assert_true (ph_daemon_reload (f->daemon, &error));
  g_assert_cmpint (ph_daemon_get_state (f->daemon), ==, PH_STATE_ERROR);
  g_assert_error ((GError *) ph_daemon_get_last_error (f->daemon), PH_ERROR,
                  PH_ERROR_UNREACHABLE_DIRECT);
  g_assert_cmpstr (ph_daemon_get_portal_url (f->daemon), ==, "");

  ph_daemon_disable (f->daemon);
  g_assert_cmpint (ph_daemon_get_state (f->daemon), ==, PH_STATE_OFF);
  g_assert_cmpstr (ph_daemon_get_portal_url (f->daemon), ==, "");
  g_socket_shutdown (portal.listener, TRUE, TRUE, NULL);
  g_socket_close (portal.listener, NULL);
  g_thread_join (thread);
  g_object_unref (portal.listener);
}

#define ADD(path, func, data)                                                                      \
  g_test_add (path, Fixture, data, fixture_setup, func, fixture_teardown)

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  /* Messages on stderr: stdout carries TAP. */
  g_log_writer_default_set_use_stderr (TRUE);

  ADD ("/pinhole/daemon/enable-disable", test_enable_disable, NULL);
  ADD ("/pinhole/daemon/error-state", test_error_state, REFUSING);
  ADD ("/pinhole/daemon/managed-key-locked", test_managed_key_locked, NULL);
  ADD ("/pinhole/daemon/credentials-file-store", test_credentials_file_store, NULL);
  ADD ("/pinhole/daemon/socks-users-file-store", test_socks_users_file_store, NULL);
  for (guint i = 0; i < G_N_ELEMENTS (bad_config_cases); i++)
    {
      g_autofree char *path = g_strdup_printf ("/pinhole/daemon/%s", bad_config_cases[i].name);
      g_test_add (path, Fixture, &bad_config_cases[i], fixture_setup, test_bad_config_reload,
                  fixture_teardown);
    }
  ADD ("/pinhole/daemon/watch-applies-edit", test_watch_applies_edit, NULL);
  ADD ("/pinhole/daemon/finalize-while-draining", test_finalize_while_draining, NULL);
  ADD ("/pinhole/daemon/unreachable-direct", test_unreachable_direct, REFUSING);
  ADD ("/pinhole/daemon/captive-portal", test_captive_portal, REFUSING);

  return g_test_run ();
}

/* SPDX-License-Identifier: GPL-2.0-or-later */
/* test-listener.c: unit tests for agent/core/ph-server.h on loopback, with no cloud proxy (its port
 * refuses): the refusals a client sees, the head timeout, the connection limit, the allow-list,
 * drain and reload. */
#include "ph-server.h"
#include "ph-config.h"
#include "ph-error.h"

#include <string.h>

#define PIN "sha256//AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA="
/* ph-server.c: descriptors kept back from clients. */
#define FD_RESERVE 64
#define FD_LIMIT_DEFAULT 16384
#define WAIT_MS 5000

typedef struct
{
  GSocket *refuser; /* bound, never listening: the cloud proxy's port refuses */
  guint16 upstream_port;
  guint16 port;
  PhServer *server;
} Fixture;

/* A port the kernel had free a moment ago. (The configuration does not take port 0.) */
static guint16
free_port (void)
{
  g_autoptr (GInetAddress) lo = g_inet_address_new_loopback (G_SOCKET_FAMILY_IPV4);
  g_autoptr (GSocketAddress) any = g_inet_socket_address_new (lo, 0);
  g_autoptr (GSocket) sock
      = g_socket_new (G_SOCKET_FAMILY_IPV4, G_SOCKET_TYPE_STREAM, G_SOCKET_PROTOCOL_TCP, NULL);
  g_autoptr (GSocketAddress) got = NULL;

  g_assert (sock != NULL);
  g_assert_true (g_socket_bind (sock, any, TRUE, NULL));
  got = g_socket_get_local_address (sock, NULL);
  return g_inet_socket_address_get_port (G_INET_SOCKET_ADDRESS (got));
}

static GSocket *
bind_loopback (guint16 port, gboolean listen, GError **error)
{
  g_autoptr (GInetAddress) lo = g_inet_address_new_loopback (G_SOCKET_FAMILY_IPV4);
  g_autoptr (GSocketAddress) addr = g_inet_socket_address_new (lo, port);
  g_autoptr (GSocket) sock
      = g_socket_new (G_SOCKET_FAMILY_IPV4, G_SOCKET_TYPE_STREAM, G_SOCKET_PROTOCOL_TCP, error);

  if (sock == NULL || !g_socket_bind (sock, addr, TRUE, error)
      || (listen && !g_socket_listen (sock, error)))
    return NULL;
  return g_steal_pointer (&sock);
}

static PhConfig *
config_new_full (Fixture *f, guint16 port, const char *listener_extra, const char *tunnel_extra)
{
  g_autoptr (GPtrArray) layers
      = g_ptr_array_new_with_free_func ((GDestroyNotify) ph_config_file_free);
  g_autoptr (GError) error = NULL;
  PhConfigFile *file = ph_config_file_new ("test-listener.conf", FALSE, FALSE);
  PhConfig *config;
  g_autofree char *data = NULL;

  data = g_strdup_printf ("[listener]\n"
                          "address=127.0.0.1:%u\n"
                          "%s\n"
                          "[upstream]\n"
                          "host=127.0.0.1\n"
                          "port=%u\n"
                          "pins=" PIN "\n"
                          "warm=0\n"
                          "[tunnel]\n"
                          "head-timeout=300ms\n"
                          "%s\n",
                          port, listener_extra ? listener_extra : "", f->upstream_port,
                          tunnel_extra ? tunnel_extra : "");
  ph_config_file_set_data (file, data);
  g_ptr_array_add (layers, file);
  config = ph_config_load_layers (layers, &error);
  g_assert_no_error (error);
  g_assert (config != NULL);
  return config;
}

static PhConfig *
config_new (Fixture *f, guint16 port, const char *listener_extra)
{
  return config_new_full (f, port, listener_extra, NULL);
}

static void
server_start (Fixture *f, const char *listener_extra)
{
  g_autoptr (PhConfig) config = NULL;
  g_autoptr (GError) error = NULL;
  g_auto (GStrv) addresses = NULL;
  g_autofree char *want = NULL;

  f->port = free_port ();
  config = config_new (f, f->port, listener_extra);
  f->server = ph_server_new (config, &error);
  g_assert_no_error (error);
  g_assert (f->server != NULL);
  addresses = ph_server_dup_addresses (f->server);
  want = g_strdup_printf ("127.0.0.1:%u", f->port);
  g_assert_cmpstrv (addresses, ((const char *const[]){ want, NULL }));
}

static void
fixture_setup (Fixture *f, gconstpointer data)
{
  g_autoptr (GError) error = NULL;
  g_autoptr (GSocketAddress) addr = NULL;

  f->refuser = bind_loopback (0, FALSE, &error);
  g_assert_no_error (error);
  addr = g_socket_get_local_address (f->refuser, NULL);
  f->upstream_port = g_inet_socket_address_get_port (G_INET_SOCKET_ADDRESS (addr));
}

static void
fixture_teardown (Fixture *f, gconstpointer data)
{
  g_clear_pointer (&f->server, ph_server_free);
  g_clear_object (&f->refuser);
  ph_server_set_fd_limit (FD_LIMIT_DEFAULT);
  while (g_main_context_iteration (NULL, FALSE))
    ;
}

/* ---- a client, in the test's own thread: the server runs while it waits ---- */

static GSocket *
client_connect (guint16 port, GError **error)
{
  g_autoptr (GInetAddress) lo = g_inet_address_new_loopback (G_SOCKET_FAMILY_IPV4);
  g_autoptr (GSocketAddress) addr = g_inet_socket_address_new (lo, port);
  g_autoptr (GSocket) sock
      = g_socket_new (G_SOCKET_FAMILY_IPV4, G_SOCKET_TYPE_STREAM, G_SOCKET_PROTOCOL_TCP, error);

  /* The kernel completes the handshake before the server accepts. */
  if (sock == NULL || !g_socket_connect (sock, addr, NULL, error))
    return NULL;
  g_socket_set_blocking (sock, FALSE);
  return g_steal_pointer (&sock);
}

static GSocket *
client_new (guint16 port)
{
  g_autoptr (GError) error = NULL;
  GSocket *sock = client_connect (port, &error);

  g_assert_no_error (error);
  return sock;
}

static void
client_send (GSocket *sock, const char *text)
{
  g_autoptr (GError) error = NULL;
  gssize n = g_socket_send_with_blocking (sock, text, strlen (text), TRUE, NULL, &error);

  g_assert_no_error (error);
  g_assert_cmpint (n, ==, strlen (text));
}

static gboolean
wake_cb (gpointer data)
{
  return G_SOURCE_REMOVE;
}

/* Runs the server for up to @timeout_ms while reading what it sends: until the end of the
 * connection (*@eof) or the time is up. */
static char *
client_read (GSocket *sock, guint timeout_ms, gboolean *eof)
{
  g_autoptr (GString) out = g_string_new (NULL);
  gint64 deadline = g_get_monotonic_time () + (gint64) timeout_ms * 1000;

  *eof = FALSE;
  for (;;)
    {
      g_autoptr (GError) error = NULL;
      g_autoptr (GSource) readable = NULL;
      g_autoptr (GSource) timer = NULL;
      char buf[4096];
      gssize n = g_socket_receive_with_blocking (sock, buf, sizeof buf, FALSE, NULL, &error);
      gint64 now = g_get_monotonic_time ();

      if (n > 0)
        {
          g_string_append_len (out, buf, n);
          continue;
        }
      if (n == 0 || !g_error_matches (error, G_IO_ERROR, G_IO_ERROR_WOULD_BLOCK))
        {
          /* A reset counts as an end too; what came before it stays. */
          *eof = TRUE;
          break;
        }
      if (now >= deadline)
        break;
      readable = g_socket_create_source (sock, G_IO_IN | G_IO_HUP | G_IO_ERR, NULL);
      g_source_set_callback (readable, wake_cb, NULL, NULL);
      g_source_attach (readable, NULL);
      timer = g_timeout_source_new (MAX ((deadline - now) / 1000, 1));
      g_source_set_callback (timer, wake_cb, NULL, NULL);
      g_source_attach (timer, NULL);
      g_main_context_iteration (NULL, TRUE);
      g_source_destroy (readable);
      g_source_destroy (timer);
    }
  return g_string_free (g_steal_pointer (&out), FALSE);
}

/* Runs the server for @ms. */
static void
run_for (guint ms)
{
  gint64 deadline = g_get_monotonic_time () + (gint64) ms * 1000;

  while (g_get_monotonic_time () < deadline)
    if (!g_main_context_iteration (NULL, FALSE))
      g_usleep (1000);
}

static guint
server_connections (Fixture *f)
{
  return ph_server_get_n_connections (f->server);
}

/* Runs the server until it holds @n client connections. */
static gboolean
wait_connections (Fixture *f, guint n)
{
  gint64 deadline = g_get_monotonic_time () + WAIT_MS * 1000;

  while (server_connections (f) != n && g_get_monotonic_time () < deadline)
    if (!g_main_context_iteration (NULL, FALSE))
      g_usleep (1000);
  return server_connections (f) == n;
}

/* The whole answer is a refusal: @status, kind @kind, and the end of the connection. */
static void
assert_refusal (const char *reply, gboolean eof, guint status, const char *kind)
{
  g_autofree char *line = g_strdup_printf ("HTTP/1.1 %u ", status);
  g_autofree char *header = g_strdup_printf ("\r\nX-Pinhole-Error: %s\r\n", kind);

  g_test_message ("reply: %s", reply);
  g_assert_true (g_str_has_prefix (reply, line));
  g_assert_nonnull (strstr (reply, header));
  g_assert_nonnull (strstr (reply, "\r\nConnection: close\r\n"));
  g_assert_true (eof);
}

/* Sends @request on a new connection and returns the whole answer. */
static char *
exchange (guint16 port, const char *request, gboolean *eof)
{
  g_autoptr (GSocket) sock = client_new (port);

  client_send (sock, request);
  return client_read (sock, WAIT_MS, eof);
}

/* ---- refusals ---- */

typedef struct
{
  const char *name;
  const char *request;
  guint status;
  const char *kind;
} RefusalCase;

static const RefusalCase refusal_cases[] = {
  { "origin-form", "GET / HTTP/1.1\r\nHost: localhost\r\n\r\n", 405, "method-not-allowed" },
  { "malformed", "GARBAGE\r\n\r\n", 400, "bad-request" },
  { "bad-version", "GET http://example.test/ HTTP/2.0\r\nHost: example.test\r\n\r\n", 505,
    "bad-request" },
  { "absolute-upstream-refused", "GET http://example.test/ HTTP/1.1\r\nHost: example.test\r\n\r\n",
    502, "upstream-tcp" },
  { "connect-upstream-refused",
    "CONNECT example.test:443 HTTP/1.1\r\nHost: example.test:443\r\n\r\n", 502, "upstream-tcp" },
};

static void
test_refusal (Fixture *f, gconstpointer data)
{
  const RefusalCase *c = data;
  g_autofree char *reply = NULL;
  gboolean eof = FALSE;

  server_start (f, NULL);
  reply = exchange (f->port, c->request, &eof);
  assert_refusal (reply, eof, c->status, c->kind);
  /* A refused client is gone from the server's table. */
  g_assert_true (wait_connections (f, 0));
}

/* ---- timeouts ---- */

/* A head begun and not finished within head-timeout (300 ms here) gets 408. */
static void
test_head_timeout (Fixture *f, gconstpointer data)
{
  g_autoptr (GSocket) sock = NULL;
  g_autofree char *reply = NULL;
  gboolean eof = FALSE;
  gint64 start;

  server_start (f, NULL);
  sock = client_new (f->port);
  start = g_get_monotonic_time ();
  client_send (sock, "GET http://example.test/ HTTP/1.1\r\nHost: exa");
  reply = client_read (sock, WAIT_MS, &eof);
  assert_refusal (reply, eof, 408, "head-timeout");
  g_assert_cmpint (g_get_monotonic_time () - start, >=, 300 * 1000);
}

/* A connection that never sends a byte is closed at the head timeout, without an answer. */
static void
test_idle_client_closed (Fixture *f, gconstpointer data)
{
  g_autoptr (GSocket) sock = NULL;
  g_autofree char *reply = NULL;
  gboolean eof = FALSE;
  gint64 start;

  server_start (f, NULL);
  start = g_get_monotonic_time ();
  sock = client_new (f->port);
  reply = client_read (sock, WAIT_MS, &eof);
  g_assert_cmpstr (reply, ==, "");
  g_assert_true (eof);
  g_assert_cmpint (g_get_monotonic_time () - start, >=, 300 * 1000);
  g_assert_true (wait_connections (f, 0));
}

/* ---- admission ---- */

/* With room for three clients, a fourth gets a fast 503; once they leave, others come in. */
static void
test_connection_limit (Fixture *f, gconstpointer data)
{
  GSocket *held[3];
  g_autoptr (GSocket) extra = NULL;
  g_autofree char *reply = NULL;
  gboolean eof = FALSE;
  gint64 start;

  /* Each client may take two descriptors. */
  ph_server_set_fd_limit (FD_RESERVE + 2 * G_N_ELEMENTS (held));
  server_start (f, NULL);
  for (guint i = 0; i < G_N_ELEMENTS (held); i++)
    held[i] = client_new (f->port);
  g_assert_true (wait_connections (f, G_N_ELEMENTS (held)));

  g_test_expect_message ("pinhole-server", G_LOG_LEVEL_WARNING, "too many client connections*");
  start = g_get_monotonic_time ();
  extra = client_new (f->port);
  client_send (extra, "GET http://example.test/ HTTP/1.1\r\nHost: example.test\r\n\r\n");
  reply = client_read (extra, WAIT_MS, &eof);
  assert_refusal (reply, eof, 503, "too-many-connections");
  g_assert_cmpint (g_get_monotonic_time () - start, <, G_USEC_PER_SEC);
  g_test_assert_expected_messages ();
  /* The ones admitted are untouched. */
  g_assert_cmpuint (server_connections (f), ==, G_N_ELEMENTS (held));

  for (guint i = 0; i < G_N_ELEMENTS (held); i++)
    g_object_unref (held[i]);
  g_assert_true (wait_connections (f, 0));
  for (guint i = 0; i < G_N_ELEMENTS (held); i++)
    {
      g_autofree char *again = exchange (f->port, "GET / HTTP/1.1\r\nHost: x\r\n\r\n", &eof);
      assert_refusal (again, eof, 405, "method-not-allowed");
    }
}

/* max-tunnels=auto (the default) is the connection limit, (descriptors - 64 - warm) / 2, so
 * it grows with the descriptor limit; a number is taken as written, also over it (then the
 * connection limit refuses the clients first), and a reload back to auto derives it again. */
static void
test_derived_limits (Fixture *f, gconstpointer data)
{
  g_autoptr (PhConfig) numbered = NULL;
  g_autoptr (PhConfig) over = NULL;
  g_autoptr (PhConfig) back = NULL;
  g_autoptr (GError) error = NULL;

  ph_server_set_fd_limit (1024);
  server_start (f, NULL);
  g_assert_cmpuint (ph_config_get_max_tunnels (ph_server_get_config (f->server)), ==,
                    PH_CONFIG_MAX_TUNNELS_AUTO);
  g_assert_cmpuint (ph_server_get_max_connections (f->server), ==, (1024 - FD_RESERVE) / 2);
  g_assert_cmpuint (ph_server_get_max_tunnels (f->server), ==, (1024 - FD_RESERVE) / 2);
  g_clear_pointer (&f->server, ph_server_free);

  /* The limit a raised RLIMIT_NOFILE gives: far past the old default of 1024 tunnels. */
  ph_server_set_fd_limit (1048576);
  server_start (f, NULL);
  g_assert_cmpuint (ph_server_get_max_connections (f->server), ==, (1048576 - FD_RESERVE) / 2);
  g_assert_cmpuint (ph_server_get_max_tunnels (f->server), ==, (1048576 - FD_RESERVE) / 2);

  numbered = config_new_full (f, f->port, NULL, "max-tunnels=5");
  g_assert_true (ph_server_reload (f->server, numbered, &error));
  g_assert_no_error (error);
  g_assert_cmpuint (ph_server_get_max_tunnels (f->server), ==, 5);
  g_assert_cmpuint (ph_server_get_max_connections (f->server), ==, (1048576 - FD_RESERVE) / 2);

  over = config_new_full (f, f->port, NULL, "max-tunnels=1000000");
  g_assert_true (ph_server_reload (f->server, over, &error));
  g_assert_no_error (error);
  g_assert_cmpuint (ph_server_get_max_tunnels (f->server), ==, 1000000);
  g_assert_cmpuint (ph_server_get_max_connections (f->server), ==, (1048576 - FD_RESERVE) / 2);

  back = config_new_full (f, f->port, NULL, "max-tunnels=auto");
  g_assert_true (ph_server_reload (f->server, back, &error));
  g_assert_no_error (error);
  g_assert_cmpuint (ph_server_get_max_tunnels (f->server), ==, (1048576 - FD_RESERVE) / 2);
}

/* Loopback clients are always served, whatever allow= lists (ph_config_allows_client), so a
 * client outside allow= cannot be made on loopback: this checks that allow= does not shut out
 * the local machine. */
static void
test_allow_keeps_loopback (Fixture *f, gconstpointer data)
{
  g_autofree char *reply = NULL;
  gboolean eof = FALSE;

  server_start (f, "allow=192.0.2.0/24");
  reply = exchange (f->port, "GET / HTTP/1.1\r\nHost: x\r\n\r\n", &eof);
  assert_refusal (reply, eof, 405, "method-not-allowed");
}

/* ---- drain and reload ---- */

static void
assert_refused (guint16 port)
{
  g_autoptr (GError) error = NULL;
  g_autoptr (GSocket) sock = client_connect (port, &error);

  g_assert_null (sock);
  g_assert_error (error, G_IO_ERROR, G_IO_ERROR_CONNECTION_REFUSED);
}

/* Drain: no more listening, idle clients closed at once, a client in the middle of a head
 * still answered. */
static void
test_drain (Fixture *f, gconstpointer data)
{
  g_autoptr (GSocket) idle = NULL;
  g_autoptr (GSocket) busy = NULL;
  g_auto (GStrv) addresses = NULL;
  g_autofree char *reply = NULL;
  gboolean eof = FALSE;

  server_start (f, NULL);
  idle = client_new (f->port);
  busy = client_new (f->port);
  client_send (busy, "GET / HTTP/1.1\r\n");
  g_assert_true (wait_connections (f, 2));
  run_for (20);

  ph_server_drain (f->server);
  g_assert_true (ph_server_is_draining (f->server));
  addresses = ph_server_dup_addresses (f->server);
  g_assert_cmpstrv (addresses, ((const char *const[]){ NULL }));
  assert_refused (f->port);
  /* Well before the head timeout: the drain closed it. */
  reply = client_read (idle, 150, &eof);
  g_assert_cmpstr (reply, ==, "");
  g_assert_true (eof);
  g_assert_cmpuint (server_connections (f), ==, 1);

  g_clear_pointer (&reply, g_free);
  client_send (busy, "Host: x\r\n\r\n");
  reply = client_read (busy, WAIT_MS, &eof);
  assert_refusal (reply, eof, 405, "method-not-allowed");
  g_assert_true (wait_connections (f, 0));
}

/* Reload onto another port: the new one serves, the old one is free. */
static void
test_reload_new_port (Fixture *f, gconstpointer data)
{
  g_autoptr (PhConfig) config = NULL;
  g_autoptr (GError) error = NULL;
  g_autoptr (GSocket) taken = NULL;
  g_auto (GStrv) addresses = NULL;
  g_autofree char *want = NULL;
  g_autofree char *reply = NULL;
  guint16 old_port, new_port;
  gboolean eof = FALSE;

  server_start (f, NULL);
  old_port = f->port;
  new_port = free_port ();
  config = config_new (f, new_port, NULL);
  g_assert_true (ph_server_reload (f->server, config, &error));
  g_assert_no_error (error);
  g_assert_true (ph_server_get_config (f->server) == config);

  addresses = ph_server_dup_addresses (f->server);
  want = g_strdup_printf ("127.0.0.1:%u", new_port);
  g_assert_cmpstrv (addresses, ((const char *const[]){ want, NULL }));
  reply = exchange (new_port, "GET / HTTP/1.1\r\nHost: x\r\n\r\n", &eof);
  assert_refusal (reply, eof, 405, "method-not-allowed");
  assert_refused (old_port);
  taken = bind_loopback (old_port, TRUE, &error);
  g_assert_no_error (error);
  g_assert_nonnull (taken);
}

/* Reload onto a port that is taken: refused, and the old port goes on serving. */
static void
test_reload_busy_port (Fixture *f, gconstpointer data)
{
  g_autoptr (PhConfig) config = NULL;
  g_autoptr (GError) error = NULL;
  g_autoptr (GSocket) taken = NULL;
  g_autofree char *reply = NULL;
  PhConfig *before;
  guint16 busy_port = free_port ();
  gboolean eof = FALSE;

  server_start (f, NULL);
  before = ph_server_get_config (f->server);
  taken = bind_loopback (busy_port, TRUE, &error);
  g_assert_no_error (error);
  config = config_new (f, busy_port, NULL);
  g_assert_false (ph_server_reload (f->server, config, &error));
  g_assert_error (error, PH_ERROR, PH_ERROR_FAILED);
  g_assert_true (ph_server_get_config (f->server) == before);
  reply = exchange (f->port, "GET / HTTP/1.1\r\nHost: x\r\n\r\n", &eof);
  assert_refusal (reply, eof, 405, "method-not-allowed");
}

#define ADD(path, func) g_test_add (path, Fixture, NULL, fixture_setup, func, fixture_teardown)

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  /* Messages on stderr: stdout carries TAP. */
  g_log_writer_default_set_use_stderr (TRUE);

  for (guint i = 0; i < G_N_ELEMENTS (refusal_cases); i++)
    {
      g_autofree char *path = g_strdup_printf ("/pinhole/listener/%s", refusal_cases[i].name);
      g_test_add (path, Fixture, &refusal_cases[i], fixture_setup, test_refusal, fixture_teardown);
    }
  ADD ("/pinhole/listener/head-timeout", test_head_timeout);
  ADD ("/pinhole/listener/idle-client-closed", test_idle_client_closed);
  ADD ("/pinhole/listener/connection-limit", test_connection_limit);
  ADD ("/pinhole/listener/derived-limits", test_derived_limits);
  ADD ("/pinhole/listener/allow-keeps-loopback", test_allow_keeps_loopback);
  ADD ("/pinhole/listener/drain", test_drain);
  ADD ("/pinhole/listener/reload-new-port", test_reload_new_port);
  ADD ("/pinhole/listener/reload-busy-port", test_reload_busy_port);

  return g_test_run ();
}

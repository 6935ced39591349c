/* SPDX-License-Identifier: GPL-2.0-or-later */
/* test-upstream.c: unit tests for agent/core/ph-upstream.h against an in-process loopback TLS
 * server: verified connections, the warm pool, backoff, health state and the credential check. */
#include "ph-upstream.h"
#include "ph-config.h"
#include "ph-error.h"
#include "ph-test-tls-server.h"

#include <string.h>
#include <glib/gstdio.h>

#define SERVER_NAME "pinhole.test"
#define USERNAME "alice"
#define PASSWORD "s3cret:pw"

static struct
{
  char *dir;
  char *password_path;
  PhTestCert *ca;
  PhTestCert *good;  /* what the server presents */
  PhTestCert *other; /* a key that is not the server's */
} t;

static guint config_serial;

typedef struct
{
  PhUpstreamEvent event;
  gint64 time_us;
} Event;

typedef struct
{
  PhTestTlsServer *server;
  PhUpstream *up;
  GArray *events; /* of Event */
} Fixture;

static void
fixture_setup (Fixture *f, gconstpointer data)
{
  f->server = ph_test_tls_server_new (t.good);
  f->events = g_array_new (FALSE, FALSE, sizeof (Event));
}

static void
fixture_teardown (Fixture *f, gconstpointer data)
{
  if (f->up != NULL)
    {
      ph_upstream_shutdown (f->up);
      g_clear_pointer (&f->up, ph_upstream_unref);
    }
  /* Cancelled connects report on the next iterations. */
  ph_test_iterate_for (100);
  ph_test_tls_server_free (f->server);
  g_array_unref (f->events);
}

static void
on_event (PhUpstream *up, PhUpstreamEvent event, gpointer data)
{
  Fixture *f = data;
  Event e = { event, g_get_monotonic_time () };

  /* The cases here count connection attempts; a proxy's health has its own. */
  if (event == PH_UPSTREAM_HEALTH_CHANGED)
    return;
  g_array_append_val (f->events, e);
}

static guint
count_events (Fixture *f, PhUpstreamEvent event)
{
  guint n = 0;

  for (guint i = 0; i < f->events->len; i++)
    if (g_array_index (f->events, Event, i).event == event)
      n++;
  return n;
}

/* An upstream for the fixture's server, configured as the agent would be by a file holding
 * the [upstream] group with @extra appended. */
static void
upstream_new (Fixture *f, const char *pin, guint warm, const char *extra)
{
  g_autoptr (GError) error = NULL;
  g_autofree char *text = NULL;
  g_autofree char *path = NULL;
  g_autoptr (PhConfig) cfg = NULL;

  text = g_strdup_printf ("[upstream]\nhost=127.0.0.1\nport=%u\nserver-name=" SERVER_NAME "\n"
                          "pins=%s\nwarm=%u\nconnect-timeout=2s\nhandshake-timeout=2s\n%s",
                          ph_test_tls_server_get_port (f->server), pin, warm, extra);
  path = g_strdup_printf ("%s/pinhole-%u.conf", t.dir, ++config_serial);
  g_file_set_contents (path, text, -1, &error);
  g_assert_no_error (error);
  cfg = ph_config_load (path, &error);
  g_assert_no_error (error);
  g_assert (cfg != NULL);
  g_unlink (path);
  f->up = ph_upstream_new (cfg, &error);
  g_assert_no_error (error);
  g_assert (f->up != NULL);
  ph_upstream_set_notify (f->up, on_event, f);
}

static PhTestTlsCounts
counts_of (Fixture *f)
{
  PhTestTlsCounts counts;

  ph_test_tls_server_get_counts (f->server, &counts);
  return counts;
}

typedef struct
{
  Fixture *f;
  guint n;
} CountWait;

static gboolean
handshakes_reached (gpointer data)
{
  CountWait *w = data;

  return counts_of (w->f).handshakes >= w->n;
}

/* Waits until the server has completed @n handshakes in all. */
static gboolean
wait_handshakes (Fixture *f, guint n)
{
  CountWait w = { f, n };

  return ph_test_iterate_until (handshakes_reached, &w, 5000);
}

typedef struct
{
  guint calls;
  PhStream *stream;
  GError *error;
} Result;

static void
connect_cb (PhStream *stream, GError *error, gpointer data)
{
  Result *r = data;

  r->calls++;
  r->stream = stream;
  r->error = error;
}

static gboolean
result_done (gpointer data)
{
  return ((Result *) data)->calls > 0;
}

static void
result_clear (Result *r)
{
  g_clear_pointer (&r->stream, ph_stream_free);
  g_clear_error (&r->error);
  r->calls = 0;
}

static void
connect_sync (Fixture *f, GCancellable *cancellable, Result *r)
{
  result_clear (r);
  ph_upstream_connect_async (f->up, cancellable, connect_cb, r);
  g_assert (ph_test_iterate_until (result_done, r, 10000));
  g_assert ((r->stream == NULL) != (r->error == NULL));
  if (r->error != NULL)
    g_test_message ("connect failed: %s", r->error->message);
}

/* Sends a CONNECT over @stream and returns the number of the server's connection that
 * answered it (X-Test-Connection), or 0. */
static guint
stream_connection_id (PhStream *stream)
{
  static const char request[] = "CONNECT origin.test:443 HTTP/1.1\r\nHost: origin.test:443\r\n\r\n";
  g_autoptr (GString) in = g_string_new (NULL);
  gint64 deadline = g_get_monotonic_time () + 5 * G_USEC_PER_SEC;
  gsize off = 0;
  const char *id;

  while (off < sizeof request - 1 && g_get_monotonic_time () < deadline)
    {
      gsize n = 0;
      PhIoStatus st = ph_stream_write (stream, (const guint8 *) request + off,
                                       sizeof request - 1 - off, &n, NULL);
      if (st == PH_IO_OK)
        off += n;
      else if (st == PH_IO_AGAIN)
        g_usleep (1000);
      else
        return 0;
    }
  while (strstr (in->str, "\r\n\r\n") == NULL && g_get_monotonic_time () < deadline)
    {
      guint8 buf[1024];
      gsize n = 0;
      PhIoStatus st = ph_stream_read (stream, buf, sizeof buf, &n, NULL);
      if (st == PH_IO_OK)
        g_string_append_len (in, (const char *) buf, n);
      else if (st == PH_IO_AGAIN)
        g_usleep (1000);
      else
        return 0;
    }
  id = strstr (in->str, "X-Test-Connection: ");
  return id ? (guint) g_ascii_strtoull (id + strlen ("X-Test-Connection: "), NULL, 10) : 0;
}

static gboolean
n_idle_is_zero (gpointer data)
{
  return ph_upstream_get_n_idle (((Fixture *) data)->up) == 0;
}

/* ---- the idle pool ---- */

static PhStream *
connect_stream (Fixture *f)
{
  Result r = { 0 };

  connect_sync (f, NULL, &r);
  g_assert_no_error (r.error);
  return g_steal_pointer (&r.stream);
}

static void
test_idle_pool (Fixture *f, gconstpointer data)
{
  PhStream *a, *b, *c, *x;
  PhUpstreamStats stats;
  g_autoptr (PhStream) taken = NULL;
  gint64 now;

  upstream_new (f, ph_test_cert_get_pin (t.good), 0, "idle-connections=2\nidle-lifetime=1s\n");
  a = connect_stream (f);
  b = connect_stream (f);
  c = connect_stream (f);
  g_assert_true (ph_upstream_put_idle (f->up, a));
  g_assert_true (ph_upstream_put_idle (f->up, b));
  /* Full: the oldest goes. */
  g_assert_true (ph_upstream_put_idle (f->up, c));
  g_assert_cmpuint (ph_upstream_get_n_idle (f->up), ==, 2);
  /* The most recent first: the likeliest to be open still. */
  taken = ph_upstream_take_idle (f->up);
  g_assert_true (taken == c);
  g_clear_pointer (&taken, ph_stream_free);
  taken = ph_upstream_take_idle (f->up);
  g_assert_true (taken == b);
  g_assert_null (ph_upstream_take_idle (f->up));
  /* A taken connection still works. */
  g_assert_cmpuint (stream_connection_id (taken), ==, 2);
  g_clear_pointer (&taken, ph_stream_free);

  /* Past idle-lifetime: the sweep closes it, and take would not hand it out. */
  x = connect_stream (f);
  g_assert_true (ph_upstream_put_idle (f->up, x));
  now = g_get_monotonic_time ();
  ph_upstream_sweep (f->up, now + 500 * 1000);
  g_assert_cmpuint (ph_upstream_get_n_idle (f->up), ==, 1);
  ph_upstream_sweep (f->up, now + 1100 * 1000);
  g_assert_cmpuint (ph_upstream_get_n_idle (f->up), ==, 0);

  /* The server closes one while it waits: the pool lets it go by itself. */
  x = connect_stream (f);
  g_assert_true (ph_upstream_put_idle (f->up, x));
  ph_test_tls_server_close_connections (f->server, FALSE);
  g_assert_true (ph_test_iterate_until (n_idle_is_zero, f, 5000));

  /* A reload or a network change empties it. */
  x = connect_stream (f);
  g_assert_true (ph_upstream_put_idle (f->up, x));
  ph_upstream_drop_idle (f->up);
  g_assert_cmpuint (ph_upstream_get_n_idle (f->up), ==, 0);
  g_assert_false (ph_upstream_drop_oldest_idle (f->up));
  x = connect_stream (f);
  g_assert_true (ph_upstream_put_idle (f->up, x));
  g_assert_true (ph_upstream_drop_oldest_idle (f->up));

  ph_upstream_get_stats (f->up, &stats);
  g_assert_cmpuint (stats.connects, ==, 7);
  g_assert_cmpuint (stats.idle_reused, ==, 2);
  g_assert_cmpuint (stats.idle_expired, ==, 1);
  g_assert_cmpuint (stats.idle_closed, ==, 1);
  g_assert_cmpuint (stats.handshakes_full + stats.handshakes_resumed, ==, 7);
  /* a, b and c were made before any ticket was read (TLS 1.3 sends it after the handshake);
   * giving a connection to the pool reads it, so every later one resumes. */
  g_assert_cmpuint (stats.handshakes_resumed, >=, 4);

  /* Shut down, nothing is kept. */
  ph_upstream_shutdown (f->up);
  x = connect_stream (f);
  g_assert_false (ph_upstream_put_idle (f->up, x));
}

/* idle-connections=0: nothing is kept. */
static void
test_idle_pool_off (Fixture *f, gconstpointer data)
{
  upstream_new (f, ph_test_cert_get_pin (t.good), 0, "idle-connections=0\n");
  g_assert_false (ph_upstream_put_idle (f->up, connect_stream (f)));
  g_assert_cmpuint (ph_upstream_get_n_idle (f->up), ==, 0);
  g_assert_null (ph_upstream_take_idle (f->up));
}

/* The warm pool follows demand: 2 when quiet, up to warm= under a burst, and back down. */
static void
test_warm_adaptive (Fixture *f, gconstpointer data)
{
  gint64 now;
  guint high;

  upstream_new (f, ph_test_cert_get_pin (t.good), 8, "");
  g_assert_true (wait_handshakes (f, 2));
  ph_test_iterate_for (200);
  now = g_get_monotonic_time ();
  g_assert_cmpuint (ph_upstream_get_warm_target (f->up, now), ==, 2);
  g_assert_cmpuint (counts_of (f).handshakes, ==, 2);
  /* A burst: 2,000 new tunnels in well under a second. */
  for (guint i = 0; i < 2000; i++)
    {
      PhStream *w = ph_upstream_take_warm (f->up);

      if (w != NULL)
        ph_stream_free (w);
    }
  high = ph_upstream_get_warm_target (f->up, g_get_monotonic_time ());
  g_test_message ("warm target during the burst: %u", high);
  g_assert_cmpuint (high, ==, 8);
  /* It refills to the new target. */
  g_assert_true (wait_handshakes (f, 2 + 8));
  /* Quiet again: the moving average halves each second. */
  now = g_get_monotonic_time ();
  g_assert_cmpuint (ph_upstream_get_warm_target (f->up, now + 20 * G_USEC_PER_SEC), ==, 2);
}

/* ---- connections ---- */

static void
test_connect (Fixture *f, gconstpointer data)
{
  g_autofree char *seen = NULL;
  g_autofree char *sni = NULL;
  g_autofree char *name = g_strdup_printf ("127.0.0.1:%u", ph_test_tls_server_get_port (f->server));
  Result r = { 0 };

  upstream_new (f, ph_test_cert_get_pin (t.good), 0, "");
  g_assert_cmpstr (ph_upstream_get_name (f->up), ==, name);
  connect_sync (f, NULL, &r);
  g_assert_no_error (r.error);
  g_assert (r.stream != NULL);
  g_assert_nonnull (ph_stream_get_session (r.stream));
  g_assert_cmpuint (stream_connection_id (r.stream), ==, 1);
  g_assert_cmpuint (counts_of (f).handshakes, ==, 1);
  sni = ph_test_tls_server_dup_last_sni (f->server);
  g_assert_cmpstr (sni, ==, SERVER_NAME);
  g_assert_true (ph_upstream_has_connected (f->up));
  g_assert_null (ph_upstream_get_last_error (f->up));
  seen = ph_upstream_dup_seen_pin (f->up);
  g_assert_cmpstr (seen, ==, ph_test_cert_get_pin (t.good));
  g_assert_cmpuint (f->events->len, ==, 1);
  g_assert_cmpuint (count_events (f, PH_UPSTREAM_CONNECTED), ==, 1);
  result_clear (&r);
}

/* ---- several proxies ---- */

/* An upstream over @hosts ("127.0.0.1:PORT; …"), sharing @pin, with @failover. */
static void
upstream_new_hosts (Fixture *f, const char *hosts, const char *pin, const char *failover)
{
  g_autoptr (GError) error = NULL;
  g_autofree char *text = NULL;
  g_autofree char *path = NULL;
  g_autoptr (PhConfig) cfg = NULL;

  text = g_strdup_printf ("[upstream]\nhost=%s\nserver-name=" SERVER_NAME "\npins=%s\nwarm=0\n"
                          "failover=%s\nconnect-timeout=2s\nhandshake-timeout=2s\n",
                          hosts, pin, failover);
  path = g_strdup_printf ("%s/pinhole-%u.conf", t.dir, ++config_serial);
  g_file_set_contents (path, text, -1, &error);
  g_assert_no_error (error);
  cfg = ph_config_load (path, &error);
  g_assert_no_error (error);
  g_unlink (path);
  f->up = ph_upstream_new (cfg, &error);
  g_assert_no_error (error);
  ph_upstream_set_notify (f->up, on_event, f);
}

/* A loopback port nothing listens on (free a moment ago). */
static guint16
closed_port (void)
{
  g_autoptr (GSocket) sock
      = g_socket_new (G_SOCKET_FAMILY_IPV4, G_SOCKET_TYPE_STREAM, G_SOCKET_PROTOCOL_TCP, NULL);
  g_autoptr (GInetAddress) lo = g_inet_address_new_loopback (G_SOCKET_FAMILY_IPV4);
  g_autoptr (GSocketAddress) any = g_inet_socket_address_new (lo, 0);
  g_autoptr (GSocketAddress) bound = NULL;

  g_assert_true (g_socket_bind (sock, any, FALSE, NULL));
  bound = g_socket_get_local_address (sock, NULL);
  return g_inet_socket_address_get_port (G_INET_SOCKET_ADDRESS (bound));
}

typedef struct
{
  PhTestTlsServer *server;
  guint n;
} ServerWait;

static gboolean
server_handshakes_reached (gpointer data)
{
  ServerWait *w = data;
  PhTestTlsCounts counts;

  ph_test_tls_server_get_counts (w->server, &counts);
  return counts.handshakes >= w->n;
}

/* The handshakes @server completed, once it has counted @expected (or 2 s passed: the server
 * counts a moment after the client is done). */
static guint
handshakes_of (PhTestTlsServer *server, guint expected)
{
  ServerWait w = { server, expected };
  PhTestTlsCounts counts;

  ph_test_iterate_until (server_handshakes_reached, &w, 2000);
  ph_test_iterate_for (50);
  ph_test_tls_server_get_counts (server, &counts);
  return counts.handshakes;
}

/* priority: a closed port is marked down and the connect moves on to the next proxy, which is
 * then in use; the one after it is not touched. A network change forgets it all. */
static void
test_proxies_priority (Fixture *f, gconstpointer data)
{
  g_autoptr (PhTestTlsServer) second = ph_test_tls_server_new (t.good);
  guint16 closed = closed_port ();
  g_autofree char *hosts = g_strdup_printf ("127.0.0.1:%u; 127.0.0.1:%u; 127.0.0.1:%u", closed,
                                            ph_test_tls_server_get_port (f->server),
                                            ph_test_tls_server_get_port (second));
  g_autofree char *in_use
      = g_strdup_printf ("127.0.0.1:%u", ph_test_tls_server_get_port (f->server));
  Result r = { 0 };

  upstream_new_hosts (f, hosts, ph_test_cert_get_pin (t.good), "priority");
  g_test_expect_message ("pinhole-upstream", G_LOG_LEVEL_WARNING, "cloud proxy * is down *");
  g_assert_cmpuint (ph_upstream_get_n_proxies (f->up), ==, 3);
  for (guint i = 0; i < 3; i++)
    g_assert_cmpint (ph_upstream_get_proxy_health (f->up, i), ==, PH_PROXY_UNKNOWN);
  for (guint i = 0; i < 2; i++)
    {
      connect_sync (f, NULL, &r);
      g_assert_no_error (r.error);
      g_assert_cmpuint (stream_connection_id (r.stream), ==, i + 1);
    }
  g_assert_cmpuint (handshakes_of (second, 0), ==, 0);
  g_assert_cmpint (ph_upstream_get_proxy_health (f->up, 0), ==, PH_PROXY_DOWN);
  g_assert_error (ph_upstream_get_proxy_error (f->up, 0), PH_ERROR, PH_ERROR_UPSTREAM_UNREACHABLE);
  g_assert_cmpint (ph_upstream_get_proxy_retry_at (f->up, 0), >, g_get_real_time ());
  g_assert_false (ph_upstream_get_proxy_in_use (f->up, 0));
  g_assert_cmpint (ph_upstream_get_proxy_health (f->up, 1), ==, PH_PROXY_UP);
  g_assert_true (ph_upstream_get_proxy_in_use (f->up, 1));
  g_assert_false (ph_upstream_get_proxy_in_use (f->up, 2));
  g_assert_cmpstr (ph_upstream_get_name (f->up), ==, in_use);
  /* One proxy down while another carries the traffic is no problem of the agent's. */
  g_assert_null (ph_upstream_get_last_error (f->up));
  g_assert_cmpuint (count_events (f, PH_UPSTREAM_FAILED), ==, 1);
  g_test_assert_expected_messages ();

  ph_upstream_network_changed (f->up, "test");
  for (guint i = 0; i < 3; i++)
    {
      g_assert_cmpint (ph_upstream_get_proxy_health (f->up, i), ==, PH_PROXY_UNKNOWN);
      g_assert_null (ph_upstream_get_proxy_error (f->up, i));
      g_assert_cmpint (ph_upstream_get_proxy_retry_at (f->up, i), ==, 0);
    }
  result_clear (&r);
}

/* round-robin: new connections take turns. */
static void
test_proxies_round_robin (Fixture *f, gconstpointer data)
{
  g_autoptr (PhTestTlsServer) second = ph_test_tls_server_new (t.good);
  g_autofree char *hosts
      = g_strdup_printf ("127.0.0.1:%u, 127.0.0.1:%u", ph_test_tls_server_get_port (f->server),
                         ph_test_tls_server_get_port (second));
  Result r = { 0 };

  upstream_new_hosts (f, hosts, ph_test_cert_get_pin (t.good), "round-robin");
  for (guint i = 0; i < 6; i++)
    {
      connect_sync (f, NULL, &r);
      g_assert_no_error (r.error);
    }
  g_assert_cmpuint (handshakes_of (f->server, 3), ==, 3);
  g_assert_cmpuint (handshakes_of (second, 3), ==, 3);
  g_assert_true (ph_upstream_get_proxy_in_use (f->up, 0));
  g_assert_true (ph_upstream_get_proxy_in_use (f->up, 1));
  result_clear (&r);
}

/* A key that is not pinned is not failed over: the connect fails with it, the proxy is refused
 * and reported even once the next one carries the traffic. */
static void
test_proxies_refused (Fixture *f, gconstpointer data)
{
  g_autoptr (PhTestTlsServer) wrong = ph_test_tls_server_new (t.other);
  g_autofree char *hosts
      = g_strdup_printf ("127.0.0.1:%u; 127.0.0.1:%u", ph_test_tls_server_get_port (wrong),
                         ph_test_tls_server_get_port (f->server));
  Result r = { 0 };

  upstream_new_hosts (f, hosts, ph_test_cert_get_pin (t.good), "priority");
  g_test_expect_message ("pinhole-upstream", G_LOG_LEVEL_WARNING, "cloud proxy * refused: *");
  connect_sync (f, NULL, &r);
  g_test_assert_expected_messages ();
  g_assert_error (r.error, PH_ERROR, PH_ERROR_PIN_MISMATCH);
  g_assert_cmpuint (handshakes_of (f->server, 0), ==, 0);
  g_assert_cmpint (ph_upstream_get_proxy_health (f->up, 0), ==, PH_PROXY_REFUSED);
  connect_sync (f, NULL, &r);
  g_assert_no_error (r.error);
  g_assert_cmpuint (handshakes_of (f->server, 1), ==, 1);
  g_assert_error (ph_upstream_get_last_error (f->up), PH_ERROR, PH_ERROR_PIN_MISMATCH);
  result_clear (&r);
}

static gboolean
first_up (gpointer data)
{
  Fixture *f = data;

  ph_upstream_sweep (f->up, g_get_monotonic_time ());
  return ph_upstream_get_proxy_health (f->up, 0) == PH_PROXY_UP;
}

/* A proxy that went down is probed in the background (a CONNECT, answered) and, under
 * priority, in use again once it answers. */
static void
test_proxies_probe (Fixture *f, gconstpointer data)
{
  g_autoptr (PhTestTlsServer) second = ph_test_tls_server_new (t.good);
  g_autofree char *hosts
      = g_strdup_printf ("127.0.0.1:%u; 127.0.0.1:%u", ph_test_tls_server_get_port (f->server),
                         ph_test_tls_server_get_port (second));
  PhTestTlsCounts before;
  Result r = { 0 };

  upstream_new_hosts (f, hosts, ph_test_cert_get_pin (t.good), "priority");
  ph_test_tls_server_stop (f->server);
  g_test_expect_message ("pinhole-upstream", G_LOG_LEVEL_WARNING, "cloud proxy * is down *");
  connect_sync (f, NULL, &r);
  g_test_assert_expected_messages ();
  g_assert_no_error (r.error);
  g_assert_cmpuint (handshakes_of (second, 1), ==, 1);
  g_assert_cmpint (ph_upstream_get_proxy_health (f->up, 0), ==, PH_PROXY_DOWN);
  g_assert_true (ph_upstream_get_proxy_in_use (f->up, 1));
  ph_test_tls_server_start (f->server);
  ph_test_tls_server_get_counts (f->server, &before);
  g_assert_true (ph_test_iterate_until (first_up, f, 5000));
  /* The probe asked for a tunnel, without credentials. */
  g_assert_cmpuint (counts_of (f).requests, ==, before.requests + 1);
  g_assert_true (ph_upstream_get_proxy_in_use (f->up, 0));
  g_assert_false (ph_upstream_get_proxy_in_use (f->up, 1));
  result_clear (&r);
}

/* ---- the warm pool ---- */

static void
test_warm_fill (Fixture *f, gconstpointer data)
{
  upstream_new (f, ph_test_cert_get_pin (t.good), 2, "");
  g_assert_true (wait_handshakes (f, 2));
  /* Filled to warm=, and no further. */
  ph_test_iterate_for (200);
  g_assert_cmpuint (counts_of (f).accepted, ==, 2);
  g_assert_cmpuint (counts_of (f).handshakes, ==, 2);
  g_assert_cmpuint (counts_of (f).open, ==, 2);
  g_assert_cmpuint (count_events (f, PH_UPSTREAM_CONNECTED), ==, 2);
}

static void
test_warm_take (Fixture *f, gconstpointer data)
{
  g_autoptr (PhStream) stream = NULL;
  guint id;

  upstream_new (f, ph_test_cert_get_pin (t.good), 2, "");
  g_assert_true (wait_handshakes (f, 2));
  stream = ph_upstream_take_warm (f->up);
  g_assert (stream != NULL);
  /* Handed out as it is: no handshake on the taker's path. */
  g_assert_cmpuint (counts_of (f).accepted, ==, 2);
  g_assert_cmpuint (counts_of (f).handshakes, ==, 2);
  id = stream_connection_id (stream);
  g_assert_true (id == 1 || id == 2);
}

static void
test_warm_refill (Fixture *f, gconstpointer data)
{
  g_autoptr (PhStream) a = NULL;
  g_autoptr (PhStream) b = NULL;
  g_autoptr (PhStream) c = NULL;
  g_autoptr (PhStream) d = NULL;
  guint id_a, id_b;

  upstream_new (f, ph_test_cert_get_pin (t.good), 2, "");
  g_assert_true (wait_handshakes (f, 2));
  a = ph_upstream_take_warm (f->up);
  g_assert (a != NULL);
  g_assert_true (wait_handshakes (f, 3));
  ph_test_iterate_for (200);
  g_assert_cmpuint (counts_of (f).accepted, ==, 3);

  /* Two more are there; a third is not (yet). */
  b = ph_upstream_take_warm (f->up);
  c = ph_upstream_take_warm (f->up);
  d = ph_upstream_take_warm (f->up);
  g_assert_nonnull (b);
  g_assert_nonnull (c);
  g_assert_null (d);
  g_assert_true (wait_handshakes (f, 5));
  ph_test_iterate_for (200);
  g_assert_cmpuint (counts_of (f).accepted, ==, 5);
  /* Each taken connection is a different, working one. */
  id_a = stream_connection_id (a);
  id_b = b ? stream_connection_id (b) : 0;
  g_assert_cmpuint (id_a, !=, 0);
  g_assert_cmpuint (id_b, !=, 0);
  g_assert_cmpuint (id_a, !=, id_b);
}

static void
test_warm_closed (Fixture *f, gconstpointer data)
{
  g_autoptr (PhStream) none = NULL;
  g_autoptr (PhStream) live = NULL;
  guint id;

  upstream_new (f, ph_test_cert_get_pin (t.good), 2, "");
  g_assert_true (wait_handshakes (f, 2));
  /* Let the pool read what the server sent after the handshakes (its tickets). */
  ph_test_iterate_for (300);

  /* The server closes both while the engine is not looking (no iteration): taking one must
   * not hand out a closed connection. */
  ph_test_tls_server_close_connections (f->server, FALSE);
  g_usleep (100 * 1000);
  none = ph_upstream_take_warm (f->up);
  g_assert_null (none);
  g_assert_true (wait_handshakes (f, 4));
  live = ph_upstream_take_warm (f->up);
  g_assert (live != NULL);
  id = stream_connection_id (live);
  g_assert_true (id == 3 || id == 4);
  g_clear_pointer (&live, ph_stream_free);
  g_assert_true (wait_handshakes (f, 5));

  /* While it is looking: the pool notices by itself, drops them and refills. */
  ph_test_tls_server_close_connections (f->server, FALSE);
  g_assert_true (wait_handshakes (f, 7));
  ph_test_iterate_for (100);
  live = ph_upstream_take_warm (f->up);
  g_assert (live != NULL);
  id = stream_connection_id (live);
  g_assert_true (id == 6 || id == 7);
}

/* As above, but the server sends a TLS 1.3 session ticket just before it closes (a server may
 * send one at any time): reading the ticket is no sign that the connection is still open. */
static void
test_warm_closed_after_ticket (Fixture *f, gconstpointer data)
{
  g_autoptr (PhStream) none = NULL;
  g_autoptr (PhStream) live = NULL;

  upstream_new (f, ph_test_cert_get_pin (t.good), 2, "");
  g_assert_true (wait_handshakes (f, 2));
  ph_test_iterate_for (300);
  ph_test_tls_server_close_connections (f->server, TRUE);
  g_usleep (100 * 1000);
  none = ph_upstream_take_warm (f->up);
  if (none != NULL)
    {
      /* The ticket was read and the close_notify behind it was not. */
      gboolean open_now = ph_stream_is_idle_open (none);
      g_test_message ("handed out a connection the server had closed; looked at again, it is "
                      "%s",
                      open_now ? "open" : "closed");
    }
  g_assert_null (none);
  /* Looking, the pool notices by itself. */
  g_assert_true (wait_handshakes (f, 4));
  ph_test_iterate_for (100);
  live = ph_upstream_take_warm (f->up);
  g_assert (live != NULL);
  g_assert_cmpuint (stream_connection_id (live), >=, 3);
}

/* The pool's connections save their TLS session (a TLS 1.3 ticket arrives after the
 * handshake), so a later connection resumes instead of a full handshake. */
static void
test_warm_resumes (Fixture *f, gconstpointer data)
{
  Result r = { 0 };

  upstream_new (f, ph_test_cert_get_pin (t.good), 1, "");
  g_assert_true (wait_handshakes (f, 1));
  ph_test_iterate_for (200);
  connect_sync (f, NULL, &r);
  g_assert_no_error (r.error);
  g_assert_true (r.stream && gnutls_session_is_resumed (ph_stream_get_session (r.stream)));
  g_assert_true (wait_handshakes (f, 2));
  g_assert_cmpuint (counts_of (f).resumed, ==, 1);
  result_clear (&r);
}

static gboolean
has_connected (gpointer data)
{
  return ph_upstream_has_connected (data);
}

static void
test_backoff (Fixture *f, gconstpointer data)
{
  g_autoptr (PhStream) stream = NULL;
  g_autofree char *seen = NULL;
  guint failed;

  ph_test_tls_server_stop (f->server);
  upstream_new (f, ph_test_cert_get_pin (t.good), 1, "");
  ph_test_iterate_for (2200);

  /* Retried, but spaced out: a loop would make thousands of attempts. */
  failed = count_events (f, PH_UPSTREAM_FAILED);
  g_test_message ("%u attempts in 2.2 s", failed);
  g_assert_cmpuint (failed, >=, 2);
  g_assert_cmpuint (failed, <=, 4);
  for (guint i = 1; i < f->events->len; i++)
    {
      gint64 gap = g_array_index (f->events, Event, i).time_us
                   - g_array_index (f->events, Event, i - 1).time_us;
      g_test_message ("attempt %u after %" G_GINT64_FORMAT " ms", i + 1, gap / 1000);
      g_assert_cmpint (gap, >=, 400 * 1000);
    }
  g_assert_false (ph_upstream_has_connected (f->up));
  g_assert_error ((GError *) ph_upstream_get_last_error (f->up), PH_ERROR,
                  PH_ERROR_UPSTREAM_UNREACHABLE);
  seen = ph_upstream_dup_seen_pin (f->up);
  g_assert_null (seen);
  g_assert_null (ph_upstream_take_warm (f->up));

  /* The proxy comes back: the pool recovers on its own. */
  ph_test_tls_server_start (f->server);
  g_assert_true (ph_test_iterate_until (has_connected, f->up, 8000));
  g_assert_true (wait_handshakes (f, 1));
  g_assert_null (ph_upstream_get_last_error (f->up));
  stream = ph_upstream_take_warm (f->up);
  g_assert_nonnull (stream);
}

/* ---- what it says of the proxy ---- */

static void
test_status_pin_mismatch (Fixture *f, gconstpointer data)
{
  g_autofree char *seen = NULL;
  const GError *last;
  Result r = { 0 };

  upstream_new (f, ph_test_cert_get_pin (t.other), 0, "");
  g_assert_false (ph_upstream_has_connected (f->up));
  g_assert_null (ph_upstream_get_last_error (f->up));
  g_assert_null (ph_upstream_dup_seen_pin (f->up));

  connect_sync (f, NULL, &r);
  g_assert_error (r.error, PH_ERROR, PH_ERROR_PIN_MISMATCH);
  last = ph_upstream_get_last_error (f->up);
  g_assert_error ((GError *) last, PH_ERROR, PH_ERROR_PIN_MISMATCH);
  g_assert_nonnull (last ? strstr (last->message, ph_test_cert_get_pin (t.good)) : NULL);
  g_assert_false (ph_upstream_has_connected (f->up));
  /* What the proxy presented, for the person who decides whether to trust it. */
  seen = ph_upstream_dup_seen_pin (f->up);
  g_assert_cmpstr (seen, ==, ph_test_cert_get_pin (t.good));
  g_assert_cmpuint (f->events->len, ==, 1);
  g_assert_cmpuint (count_events (f, PH_UPSTREAM_FAILED), ==, 1);
  result_clear (&r);
}

static void
test_status_history (Fixture *f, gconstpointer data)
{
  g_autoptr (GCancellable) cancellable = g_cancellable_new ();
  Result r = { 0 };

  upstream_new (f, ph_test_cert_get_pin (t.good), 0, "");
  connect_sync (f, NULL, &r);
  g_assert_no_error (r.error);
  g_assert_true (ph_upstream_has_connected (f->up));
  g_assert_null (ph_upstream_get_last_error (f->up));

  /* The proxy goes away: the last error says so; it has still connected once. */
  ph_test_tls_server_stop (f->server);
  connect_sync (f, NULL, &r);
  g_assert_error (r.error, PH_ERROR, PH_ERROR_UPSTREAM_UNREACHABLE);
  g_assert_error ((GError *) ph_upstream_get_last_error (f->up), PH_ERROR,
                  PH_ERROR_UPSTREAM_UNREACHABLE);
  g_assert_true (ph_upstream_has_connected (f->up));

  /* Back, but silent: a handshake that is cancelled says nothing about the proxy. */
  ph_test_tls_server_set_mode (f->server, PH_TEST_TLS_SILENT);
  ph_test_tls_server_start (f->server);
  g_cancellable_cancel (cancellable);
  connect_sync (f, cancellable, &r);
  g_assert_error (r.error, G_IO_ERROR, G_IO_ERROR_CANCELLED);
  g_assert_error ((GError *) ph_upstream_get_last_error (f->up), PH_ERROR,
                  PH_ERROR_UPSTREAM_UNREACHABLE);

  /* Serving again: the error is gone. */
  ph_test_tls_server_set_mode (f->server, PH_TEST_TLS_SERVE);
  connect_sync (f, NULL, &r);
  g_assert_no_error (r.error);
  g_assert_null (ph_upstream_get_last_error (f->up));

  g_assert_cmpuint (f->events->len, ==, 3);
  g_assert_cmpint (g_array_index (f->events, Event, 0).event, ==, PH_UPSTREAM_CONNECTED);
  g_assert_cmpint (g_array_index (f->events, Event, 1).event, ==, PH_UPSTREAM_FAILED);
  g_assert_cmpint (g_array_index (f->events, Event, 2).event, ==, PH_UPSTREAM_CONNECTED);
  result_clear (&r);
}

/* ---- the credential check ---- */

typedef struct
{
  guint calls;
  gboolean rejected;
} Check;

static void
check_cb (gboolean rejected, gpointer data)
{
  Check *c = data;

  c->calls++;
  c->rejected = rejected;
}

static gboolean
check_done (gpointer data)
{
  return ((Check *) data)->calls > 0;
}

static char *
expected_auth (void)
{
  const char *pair = USERNAME ":" PASSWORD;
  g_autofree char *b64 = g_base64_encode ((const guchar *) pair, strlen (pair));

  return g_strconcat ("Basic ", b64, NULL);
}

/* The Proxy-Authorization the upstream would send with a request now, or
 * NULL: what ph_upstream_build_request() writes, read back. */
static char *
dup_sent_auth (PhUpstream *up)
{
  static const char connect[] = "CONNECT origin.test:443 HTTP/1.1\r\nHost: origin.test:443\r\n\r\n";
  g_autoptr (PhHttpRequest) req = NULL;
  g_autoptr (PhHttpRequest) sent = NULL;
  g_autoptr (GString) head = NULL;
  gsize consumed = 0;
  guint status = 0;

  g_assert_cmpint (
      ph_http_request_parse (connect, strlen (connect), NULL, &req, &consumed, &status, NULL), ==,
      PH_HTTP_PARSE_DONE);
  head = ph_upstream_build_request (up, req);
  g_assert_true (g_str_has_prefix (head->str, "CONNECT origin.test:443 HTTP/1.1\r\n"));
  g_assert_cmpint (
      ph_http_request_parse (head->str, head->len, NULL, &sent, &consumed, &status, NULL), ==,
      PH_HTTP_PARSE_DONE);
  g_assert_cmpuint (consumed, ==, head->len);
  g_assert_cmpuint (
      ph_http_header_count (ph_http_request_get_headers (sent), "Proxy-Authorization"), <=, 1);
  return g_strdup (ph_http_header_get (ph_http_request_get_headers (sent), "Proxy-Authorization"));
}

static void
upstream_with_credentials (Fixture *f)
{
  g_autofree char *extra
      = g_strdup_printf ("username=" USERNAME "\npassword-file=%s\n", t.password_path);

  upstream_new (f, ph_test_cert_get_pin (t.good), 0, extra);
}

static PhHttpRequest *
parse_request (const char *text)
{
  PhHttpRequest *req = NULL;
  gsize consumed = 0;
  guint status = 0;

  g_assert_cmpint (
      ph_http_request_parse (text, strlen (text), NULL, &req, &consumed, &status, NULL), ==,
      PH_HTTP_PARSE_DONE);
  g_assert_cmpuint (consumed, ==, strlen (text));
  return req;
}

/* The heads the proxy is sent: a tunnel's CONNECT and an http:// request in absolute form,
 * each with our Proxy-Authorization and never the client's. */
static void
test_request_heads (Fixture *f, gconstpointer data)
{
  g_autofree char *auth = expected_auth ();
  g_autoptr (PhHttpRequest) tunnel
      = parse_request ("CONNECT [2001:db8::1]:8443 HTTP/1.1\r\nHost: [2001:db8::1]:8443\r\n"
                       "Proxy-Authorization: Basic Y2xpZW50OnNlY3JldA==\r\n\r\n");
  g_autoptr (PhHttpRequest) plain
      = parse_request ("POST http://origin.test/form HTTP/1.1\r\nHost: origin.test\r\n"
                       "Proxy-Authorization: Basic Y2xpZW50OnNlY3JldA==\r\n"
                       "Content-Length: 3\r\n\r\n");
  g_autoptr (GString) connect_head = NULL;
  g_autoptr (GString) plain_head = NULL;
  g_autoptr (PhHttpRequest) connect_sent = NULL;
  g_autoptr (PhHttpRequest) plain_sent = NULL;

  upstream_with_credentials (f);
  connect_head = ph_upstream_build_request (f->up, tunnel);
  g_assert_true (g_str_has_prefix (connect_head->str, "CONNECT [2001:db8::1]:8443 HTTP/1.1\r\n"));
  g_assert_null (strstr (connect_head->str, "Y2xpZW50OnNlY3JldA"));
  connect_sent = parse_request (connect_head->str);
  g_assert_cmpstr (ph_http_header_get (ph_http_request_get_headers (connect_sent), "Host"), ==,
                   "[2001:db8::1]:8443");
  g_assert_cmpuint (
      ph_http_header_count (ph_http_request_get_headers (connect_sent), "Proxy-Authorization"), ==,
      1);
  g_assert_cmpstr (
      ph_http_header_get (ph_http_request_get_headers (connect_sent), "Proxy-Authorization"), ==,
      auth);

  plain_head = ph_upstream_build_request (f->up, plain);
  g_assert_true (g_str_has_prefix (plain_head->str, "POST http://origin.test/form HTTP/1.1\r\n"));
  g_assert_null (strstr (plain_head->str, "Y2xpZW50OnNlY3JldA"));
  plain_sent = parse_request (plain_head->str);
  g_assert_cmpint (ph_http_request_get_content_length (plain_sent), ==, 3);
  g_assert_cmpuint (
      ph_http_header_count (ph_http_request_get_headers (plain_sent), "Proxy-Authorization"), ==,
      1);
  g_assert_cmpstr (
      ph_http_header_get (ph_http_request_get_headers (plain_sent), "Proxy-Authorization"), ==,
      auth);
}

/* Without a username, nothing is sent for credentials. */
static void
test_request_heads_anonymous (Fixture *f, gconstpointer data)
{
  upstream_new (f, ph_test_cert_get_pin (t.good), 0, "");
  g_assert_null (dup_sent_auth (f->up));
}

static void
test_auth_rejected (Fixture *f, gconstpointer data)
{
  g_autofree char *auth = expected_auth ();
  g_autofree char *header = g_strdup_printf ("\r\nProxy-Authorization: %s\r\n", auth);
  g_autofree char *request = NULL;
  g_autofree char *sent_auth = NULL;
  Check c = { 0 }, again = { 0 };

  upstream_with_credentials (f);
  g_assert_cmpstr (sent_auth = dup_sent_auth (f->up), ==, auth);
  g_clear_pointer (&sent_auth, g_free);
  g_assert_false (ph_upstream_get_auth_rejected (f->up));

  ph_test_tls_server_set_connect_status (f->server, 407);
  ph_upstream_check_auth_async (f->up, "origin.test", check_cb, &c);
  g_assert_true (ph_test_iterate_until (check_done, &c, 10000));
  g_assert_cmpuint (c.calls, ==, 1);
  g_assert_true (c.rejected);
  g_assert_true (ph_upstream_get_auth_rejected (f->up));
  /* Not sent again. */
  g_assert_null (sent_auth = dup_sent_auth (f->up));
  g_assert_cmpuint (count_events (f, PH_UPSTREAM_AUTH_CHANGED), ==, 1);
  /* The proxy itself was asked, with the configured credentials. */
  request = ph_test_tls_server_dup_last_request (f->server);
  g_assert_nonnull (request);
  g_assert_true (request && g_str_has_prefix (request, "CONNECT origin.test:443 HTTP/1.1\r\n"));
  g_assert_nonnull (request ? strstr (request, header) : NULL);
  g_assert_cmpuint (counts_of (f).accepted, ==, 1);

  /* Known rejected: answered without asking again. */
  ph_upstream_check_auth_async (f->up, "origin.test", check_cb, &again);
  ph_test_iterate_for (200);
  g_assert_cmpuint (again.calls, ==, 1);
  g_assert_true (again.rejected);
  g_assert_cmpuint (counts_of (f).accepted, ==, 1);

  /* New credentials (or configuration) may be tried again. */
  ph_upstream_clear_auth_rejected (f->up);
  g_assert_cmpstr (sent_auth = dup_sent_auth (f->up), ==, auth);
  g_clear_pointer (&sent_auth, g_free);
}

static void
test_auth_taken (Fixture *f, gconstpointer data)
{
  g_autofree char *auth = expected_auth ();
  g_autofree char *request = NULL;
  g_autofree char *sent_auth = NULL;
  Check a = { 0 }, b = { 0 }, later = { 0 };

  upstream_with_credentials (f);
  ph_test_tls_server_set_connect_status (f->server, 200);

  /* Two at once share one check. */
  ph_upstream_check_auth_async (f->up, "origin.test", check_cb, &a);
  ph_upstream_check_auth_async (f->up, "origin.test", check_cb, &b);
  g_assert_true (ph_test_iterate_until (check_done, &a, 10000));
  g_assert_true (ph_test_iterate_until (check_done, &b, 1000));
  g_assert_cmpuint (a.calls, ==, 1);
  g_assert_cmpuint (b.calls, ==, 1);
  g_assert_false (a.rejected);
  g_assert_false (b.rejected);
  g_assert_false (ph_upstream_get_auth_rejected (f->up));
  g_assert_cmpstr (sent_auth = dup_sent_auth (f->up), ==, auth);
  g_clear_pointer (&sent_auth, g_free);
  g_assert_cmpuint (counts_of (f).accepted, ==, 1);
  g_assert_cmpuint (counts_of (f).requests, ==, 1);
  request = ph_test_tls_server_dup_last_request (f->server);
  g_assert_nonnull (request ? strstr (request, auth) : NULL);

  /* Within 30 s the answer holds: no new connection. */
  ph_upstream_check_auth_async (f->up, "other.test", check_cb, &later);
  ph_test_iterate_for (200);
  g_assert_cmpuint (later.calls, ==, 1);
  g_assert_false (later.rejected);
  g_assert_cmpuint (counts_of (f).accepted, ==, 1);
  g_assert_cmpuint (counts_of (f).requests, ==, 1);
  g_assert_cmpuint (count_events (f, PH_UPSTREAM_AUTH_CHANGED), ==, 0);
}

static void
test_shutdown (Fixture *f, gconstpointer data)
{
  upstream_new (f, ph_test_cert_get_pin (t.good), 2, "");
  g_assert_true (wait_handshakes (f, 2));
  ph_upstream_shutdown (f->up);
  /* The idle connections are closed and not replaced. */
  g_assert_null (ph_upstream_take_warm (f->up));
  ph_test_iterate_for (300);
  g_assert_cmpuint (counts_of (f).open, ==, 0);
  g_assert_cmpuint (counts_of (f).accepted, ==, 2);
}

/* A warning fails the case, except one the case provokes on purpose (or one about this
 * machine's CA store rather than the code). */
static void
log_handler (const char *domain, GLogLevelFlags level, const char *message, gpointer data)
{
  static const char *const expected[] = {
    "cloud proxy unavailable: *",
    "the cloud proxy * rejected the credentials*",
    "no system CA certificates could be loaded*",
  };

  if (level & G_LOG_LEVEL_WARNING)
    {
      for (gsize i = 0; i < G_N_ELEMENTS (expected); i++)
        if (g_pattern_match_simple (expected[i], message))
          {
            g_test_message ("%s-WARNING (expected): %s", domain, message);
            return;
          }
      g_test_fail_printf ("unexpected warning: %s: %s", domain, message);
    }
  g_log_default_handler (domain, level, message, data);
}

#define ADD(path, func) g_test_add (path, Fixture, NULL, fixture_setup, func, fixture_teardown)

int
main (int argc, char **argv)
{
  g_autoptr (GError) error = NULL;
  const char *names[] = { SERVER_NAME, "127.0.0.1", NULL };
  int ret;

  g_test_init (&argc, &argv, NULL);
  g_test_set_nonfatal_assertions ();
  /* Warnings go to log_handler (criticals stay fatal). */
  g_log_set_always_fatal (G_LOG_FATAL_MASK | G_LOG_LEVEL_CRITICAL);
  g_log_set_default_handler (log_handler, NULL);

  t.dir = g_dir_make_tmp ("pinhole-upstream-XXXXXX", &error);
  g_assert_no_error (error);
  t.ca = ph_test_cert_new_ca ("Pinhole Test CA");
  t.good = ph_test_cert_new (t.ca, SERVER_NAME, names, -3600, 86400);
  t.other = ph_test_cert_new (t.ca, SERVER_NAME, names, -3600, 86400);
  t.password_path = g_build_filename (t.dir, "password", NULL);
  g_file_set_contents (t.password_path, PASSWORD "\n", -1, &error);
  g_assert_no_error (error);
  g_chmod (t.password_path, 0600);

  ADD ("/pinhole/upstream/connect", test_connect);
  ADD ("/pinhole/upstream/warm-fill", test_warm_fill);
  ADD ("/pinhole/upstream/warm-take", test_warm_take);
  ADD ("/pinhole/upstream/warm-refill", test_warm_refill);
  ADD ("/pinhole/upstream/warm-closed", test_warm_closed);
  ADD ("/pinhole/upstream/warm-closed-after-ticket", test_warm_closed_after_ticket);
  ADD ("/pinhole/upstream/warm-resumes", test_warm_resumes);
  ADD ("/pinhole/upstream/backoff", test_backoff);
  ADD ("/pinhole/upstream/idle-pool", test_idle_pool);
  ADD ("/pinhole/upstream/idle-pool-off", test_idle_pool_off);
  ADD ("/pinhole/upstream/warm-adaptive", test_warm_adaptive);
  ADD ("/pinhole/upstream/status-pin-mismatch", test_status_pin_mismatch);
  ADD ("/pinhole/upstream/status-history", test_status_history);
  ADD ("/pinhole/upstream/auth-rejected", test_auth_rejected);
  ADD ("/pinhole/upstream/auth-taken", test_auth_taken);
  ADD ("/pinhole/upstream/request-heads", test_request_heads);
  ADD ("/pinhole/upstream/request-heads-anonymous", test_request_heads_anonymous);
  ADD ("/pinhole/upstream/shutdown", test_shutdown);
  ADD ("/pinhole/upstream/proxies-priority", test_proxies_priority);
  ADD ("/pinhole/upstream/proxies-round-robin", test_proxies_round_robin);
  ADD ("/pinhole/upstream/proxies-refused", test_proxies_refused);
  ADD ("/pinhole/upstream/proxies-probe", test_proxies_probe);
  ret = g_test_run ();

  g_unlink (t.password_path);
  g_rmdir (t.dir);
  g_free (t.password_path);
  g_free (t.dir);
  ph_test_cert_free (t.ca);
  ph_test_cert_free (t.good);
  ph_test_cert_free (t.other);
  return ret;
}

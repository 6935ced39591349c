/* SPDX-License-Identifier: GPL-2.0-or-later */
/* test-stream.c: unit tests for agent/core/ph-stream.h, the byte stream under every tunnel:
 * plain streams over a loopback TCP pair (reads, writes, the idle probe, half-close, the reset
 * of an abort, waits) and TLS streams against the in-process TLS server of
 * tests/ph-test-tls-server.c (the idle probe around session tickets and a server's close,
 * records read whole, half-close). Loopback TCP only, so it also runs under Wine. */
#include "ph-stream.h"
#include "ph-config.h"
#include "ph-error.h"
#include "ph-tls.h"
#include "ph-test-tls-server.h"

#include <string.h>

#define SERVER_NAME "pinhole.test"
#define WAIT_US (5 * G_USEC_PER_SEC)

/* Made once: key generation is the slow part. */
static struct
{
  PhTestCert *cert;
} t;

/* ---- plain streams ---- */

typedef struct
{
  PhStream *stream; /* the end under test, non-blocking */
  GSocket *peer;    /* the other end, blocking with a timeout */
} Pair;

static void
pair_setup (Pair *p, gconstpointer data)
{
  g_autoptr (GInetAddress) lo = g_inet_address_new_loopback (G_SOCKET_FAMILY_IPV4);
  g_autoptr (GSocketAddress) any = g_inet_socket_address_new (lo, 0);
  g_autoptr (GSocket) listener = NULL;
  g_autoptr (GSocketAddress) bound = NULL;
  g_autoptr (GSocketClient) client = g_socket_client_new ();
  g_autoptr (GSocketConnection) conn = NULL;
  g_autoptr (GError) error = NULL;

  listener
      = g_socket_new (G_SOCKET_FAMILY_IPV4, G_SOCKET_TYPE_STREAM, G_SOCKET_PROTOCOL_TCP, &error);
  g_assert_no_error (error);
  g_assert_true (g_socket_bind (listener, any, TRUE, &error));
  g_assert_true (g_socket_listen (listener, &error));
  bound = g_socket_get_local_address (listener, &error);
  g_assert_no_error (error);
  g_socket_client_set_enable_proxy (client, FALSE);
  conn = g_socket_client_connect (client, G_SOCKET_CONNECTABLE (bound), NULL, &error);
  g_assert_no_error (error);
  p->peer = g_socket_accept (listener, NULL, &error);
  g_assert_no_error (error);
  g_socket_set_timeout (p->peer, 5);
  p->stream = ph_stream_new (conn, NULL);
}

static void
pair_teardown (Pair *p, gconstpointer data)
{
  g_clear_pointer (&p->stream, ph_stream_free);
  g_clear_object (&p->peer);
  while (g_main_context_iteration (NULL, FALSE))
    ;
}

static void
peer_send (Pair *p, const char *text)
{
  g_autoptr (GError) error = NULL;

  g_assert_cmpint (g_socket_send (p->peer, text, strlen (text), NULL, &error), ==, strlen (text));
  g_assert_no_error (error);
}

/* Waits until the stream's socket has something to say (bytes, an end, a reset). */
static void
wait_readable (PhStream *stream)
{
  g_assert_true (
      g_socket_condition_timed_wait (ph_stream_get_socket (stream), G_IO_IN, WAIT_US, NULL, NULL));
}

/* Reads what has arrived (at least one read's worth) into a string. */
static char *
read_some (PhStream *stream, PhIoStatus *last)
{
  GString *got = g_string_new (NULL);
  guint8 buf[4096];

  wait_readable (stream);
  for (;;)
    {
      g_autoptr (GError) error = NULL;
      gsize n = 0;
      PhIoStatus st = ph_stream_read (stream, buf, sizeof buf, &n, &error);

      if (st != PH_IO_OK)
        {
          *last = st;
          break;
        }
      g_string_append_len (got, (const char *) buf, n);
    }
  return g_string_free (got, FALSE);
}

static void
test_plain_read_write (Pair *p, gconstpointer data)
{
  g_autoptr (GError) error = NULL;
  g_autofree char *got = NULL;
  char buf[64] = { 0 };
  guint8 byte;
  gsize n = 0;
  PhIoStatus last = PH_IO_OK;

  g_assert_null (ph_stream_get_session (p->stream));
  /* Nothing there yet: the stream never waits. */
  g_assert_cmpint (ph_stream_read (p->stream, &byte, 1, &n, &error), ==, PH_IO_AGAIN);
  g_assert_no_error (error);
  g_assert_cmpuint (n, ==, 0);

  g_assert_cmpint (ph_stream_write (p->stream, (const guint8 *) "hello", 5, &n, &error), ==,
                   PH_IO_OK);
  g_assert_no_error (error);
  g_assert_cmpuint (n, ==, 5);
  g_assert_cmpint (g_socket_receive (p->peer, buf, sizeof buf, NULL, NULL), ==, 5);
  g_assert_cmpstr (buf, ==, "hello");

  peer_send (p, "world");
  got = read_some (p->stream, &last);
  g_assert_cmpstr (got, ==, "world");
  g_assert_cmpint (last, ==, PH_IO_AGAIN);
}

static void
test_plain_writev (Pair *p, gconstpointer data)
{
  GOutputVector vec[] = { { "GET ", 4 }, { "/ ", 2 }, { "HTTP/1.1\r\n\r\n", 12 } };
  g_autoptr (GError) error = NULL;
  GString *got = g_string_new (NULL);
  g_autofree char *text = NULL;
  char buf[64];
  gsize n = 0;

  g_assert_cmpint (ph_stream_writev (p->stream, vec, G_N_ELEMENTS (vec), &n, &error), ==, PH_IO_OK);
  g_assert_no_error (error);
  g_assert_cmpuint (n, ==, 18);
  while (got->len < 18)
    {
      gssize r = g_socket_receive (p->peer, buf, sizeof buf, NULL, NULL);
      g_assert_cmpint (r, >, 0);
      g_string_append_len (got, buf, r);
    }
  text = g_string_free (got, FALSE);
  g_assert_cmpstr (text, ==, "GET / HTTP/1.1\r\n\r\n");
}

/* The probe a kept-alive connection passes before reuse. */
typedef enum
{
  PEER_QUIET,    /* says nothing: still usable */
  PEER_SPEAKS,   /* bytes nobody asked for: not usable */
  PEER_CLOSES,   /* FIN */
  PEER_HALF_SHUT /* FIN, but its read side stays open: still an end for us */
} PeerAct;

typedef struct
{
  const char *name;
  PeerAct act;
  gboolean open;
} IdleCase;

static const IdleCase idle_cases[] = {
  { "quiet", PEER_QUIET, TRUE },
  { "unasked-bytes", PEER_SPEAKS, FALSE },
  { "closed", PEER_CLOSES, FALSE },
  { "half-shut", PEER_HALF_SHUT, FALSE },
};

static void
test_plain_idle (Pair *p, gconstpointer data)
{
  const IdleCase *c = data;

  switch (c->act)
    {
      case PEER_QUIET:
        break;
      case PEER_SPEAKS:
        peer_send (p, "HTTP/1.1 408 Request Timeout\r\n\r\n");
        wait_readable (p->stream);
        break;
      case PEER_CLOSES:
        g_assert_true (g_socket_close (p->peer, NULL));
        wait_readable (p->stream);
        break;
      case PEER_HALF_SHUT:
        g_assert_true (g_socket_shutdown (p->peer, FALSE, TRUE, NULL));
        wait_readable (p->stream);
        break;
    }
  g_assert_cmpint (ph_stream_is_idle_open (p->stream), ==, c->open);
}

static void
test_plain_half_close (Pair *p, gconstpointer data)
{
  g_autoptr (GError) error = NULL;
  g_autofree char *got = NULL;
  char buf[16];
  PhIoStatus last = PH_IO_OK;

  g_assert_false (ph_stream_is_write_shut (p->stream));
  g_assert_cmpint (ph_stream_shutdown_write (p->stream, &error), ==, PH_IO_OK);
  g_assert_no_error (error);
  g_assert_true (ph_stream_is_write_shut (p->stream));
  /* Once is enough; again is harmless. */
  g_assert_cmpint (ph_stream_shutdown_write (p->stream, &error), ==, PH_IO_OK);
  g_assert_no_error (error);
  /* The peer sees the end of our bytes... */
  g_assert_cmpint (g_socket_receive (p->peer, buf, sizeof buf, NULL, NULL), ==, 0);
  /* ...and may still answer: half-close ends one direction only. */
  peer_send (p, "late answer");
  got = read_some (p->stream, &last);
  g_assert_cmpstr (got, ==, "late answer");
  g_assert_cmpint (last, ==, PH_IO_AGAIN);
  g_assert_true (g_socket_close (p->peer, NULL));
  g_free (g_steal_pointer (&got));
  got = read_some (p->stream, &last);
  g_assert_cmpstr (got, ==, "");
  g_assert_cmpint (last, ==, PH_IO_EOF);
}

/* An aborted stream ends with a reset: the peer gets an error, not a clean end that would make
 * a truncated transfer look complete. */
static void
test_plain_abort (Pair *p, gconstpointer data)
{
  g_autoptr (GError) error = NULL;
  char buf[16];
  gssize r;

  ph_stream_abort (p->stream);
  g_clear_pointer (&p->stream, ph_stream_free);
  g_assert_true (g_socket_condition_timed_wait (p->peer, G_IO_IN, WAIT_US, NULL, NULL));
  r = g_socket_receive (p->peer, buf, sizeof buf, NULL, &error);
#ifdef G_OS_WIN32
  /* Wine 8 (where the Windows build is tested) ends such a socket with a FIN: it passes
   * SO_LINGER to the Unix socket, but the reset never shows. Not known for real Windows;
   * reported as incomplete rather than passed or hidden. */
  if (r == 0)
    {
      g_test_incomplete ("the peer saw a clean end, not a reset");
      return;
    }
#endif
  g_assert_cmpint (r, <, 0);
  g_assert_nonnull (error);
  g_test_message ("the peer saw: %s", error->message);
}

static gboolean
flag_cb (GSocket *socket, GIOCondition cond, gpointer data)
{
  *(gboolean *) data = TRUE;
  return G_SOURCE_REMOVE;
}

static gboolean
flag_set (gpointer data)
{
  return *(gboolean *) data;
}

static void
test_plain_wait (Pair *p, gconstpointer data)
{
  gboolean readable = FALSE, writable = FALSE;
  g_autoptr (GSource) rsrc = ph_stream_wait (p->stream, FALSE, flag_cb, &readable);
  g_autoptr (GSource) wsrc = ph_stream_wait (p->stream, TRUE, flag_cb, &writable);

  /* An empty send buffer is writable at once; reading waits for the peer. */
  g_assert_true (ph_test_iterate_until (flag_set, &writable, 5000));
  ph_test_iterate_for (50);
  g_assert_false (readable);
  peer_send (p, "x");
  g_assert_true (ph_test_iterate_until (flag_set, &readable, 5000));
  g_source_destroy (rsrc);
  g_source_destroy (wsrc);
}

/* ---- TLS streams ---- */

typedef struct
{
  PhTestTlsServer *server;
  PhTlsContext *ctx;
  PhStream *stream;
  GError *error;
  guint calls;
} Tls;

static PhConfig *
tls_config_new (guint16 port)
{
  g_autoptr (GPtrArray) layers
      = g_ptr_array_new_with_free_func ((GDestroyNotify) ph_config_file_free);
  g_autoptr (GError) error = NULL;
  PhConfigFile *file = ph_config_file_new ("test-stream.conf", FALSE, FALSE);
  PhConfig *config;
  g_autofree char *data = NULL;

  data = g_strdup_printf ("[upstream]\n"
                          "host=127.0.0.1\n"
                          "port=%u\n"
                          "server-name=" SERVER_NAME "\n"
                          "pins=%s\n"
                          "warm=0\n",
                          port, ph_test_cert_get_pin (t.cert));
  ph_config_file_set_data (file, data);
  g_ptr_array_add (layers, file);
  config = ph_config_load_layers (layers, &error);
  g_assert_no_error (error);
  g_assert (config != NULL);
  return config;
}

static void
handshake_cb (PhStream *stream, GError *error, gpointer data)
{
  Tls *f = data;

  f->calls++;
  f->stream = stream;
  f->error = error;
}

static gboolean
handshake_done (gpointer data)
{
  return ((Tls *) data)->calls > 0;
}

static void
tls_setup (Tls *f, gconstpointer data)
{
  g_autoptr (PhConfig) config = NULL;
  g_autoptr (GSocketClient) client = g_socket_client_new ();
  g_autoptr (GSocketConnection) conn = NULL;
  g_autoptr (GError) error = NULL;

  f->server = ph_test_tls_server_new (t.cert);
  config = tls_config_new (ph_test_tls_server_get_port (f->server));
  f->ctx = ph_tls_context_new (config, NULL, &error);
  g_assert_no_error (error);
  g_socket_client_set_enable_proxy (client, FALSE);
  conn = g_socket_client_connect_to_host (client, "127.0.0.1",
                                          ph_test_tls_server_get_port (f->server), NULL, &error);
  g_assert_no_error (error);
  ph_tls_handshake_async (f->ctx, conn, 10000, NULL, handshake_cb, f);
  g_assert_true (ph_test_iterate_until (handshake_done, f, 15000));
  g_assert_no_error (f->error);
  g_assert_nonnull (f->stream);
  g_assert_nonnull (ph_stream_get_session (f->stream));
}

static void
tls_teardown (Tls *f, gconstpointer data)
{
  g_clear_pointer (&f->stream, ph_stream_free);
  g_clear_error (&f->error);
  g_clear_pointer (&f->ctx, ph_tls_context_unref);
  g_clear_pointer (&f->server, ph_test_tls_server_free);
  while (g_main_context_iteration (NULL, FALSE))
    ;
}

/* Writes all of @text, waiting while TLS says AGAIN. */
static void
tls_write_all (PhStream *stream, const char *text)
{
  gsize len = strlen (text), off = 0;
  gint64 deadline = g_get_monotonic_time () + WAIT_US;

  while (off < len)
    {
      g_autoptr (GError) error = NULL;
      gsize n = 0;
      PhIoStatus st = ph_stream_write (stream, (const guint8 *) text + off, len - off, &n, &error);

      g_assert_no_error (error);
      g_assert_cmpint (st, !=, PH_IO_ERROR);
      off += n;
      g_assert_cmpint (g_get_monotonic_time (), <, deadline);
    }
}

/* Reads until @want has arrived whole or the stream ends; returns the last status. */
static PhIoStatus
tls_read_until (PhStream *stream, GString *got, const char *want)
{
  gint64 deadline = g_get_monotonic_time () + WAIT_US;

  while (want == NULL || strstr (got->str, want) == NULL)
    {
      g_autoptr (GError) error = NULL;
      guint8 buf[4096];
      gsize n = 0;
      PhIoStatus st = ph_stream_read (stream, buf, sizeof buf, &n, &error);

      if (st == PH_IO_OK)
        g_string_append_len (got, (const char *) buf, n);
      else if (st == PH_IO_AGAIN)
        g_socket_condition_timed_wait (ph_stream_get_socket (stream), G_IO_IN, 100000, NULL, NULL);
      else
        {
          g_assert_no_error (error);
          return st;
        }
      g_assert_cmpint (g_get_monotonic_time (), <, deadline);
    }
  return PH_IO_OK;
}

static void
test_tls_idle_open (Tls *f, gconstpointer data)
{
  g_autoptr (GString) got = g_string_new (NULL);

  /* A TLS 1.3 server sends its session tickets after the handshake: reading them is no
   * sign of life that makes the connection unusable. */
  g_socket_condition_timed_wait (ph_stream_get_socket (f->stream), G_IO_IN, G_USEC_PER_SEC, NULL,
                                 NULL);
  g_assert_true (ph_stream_is_idle_open (f->stream));
  /* Used and answered, it is idle again. */
  tls_write_all (f->stream, "CONNECT origin.test:443 HTTP/1.1\r\nHost: origin.test:443\r\n\r\n");
  g_assert_cmpint (tls_read_until (f->stream, got, "\r\n\r\n"), ==, PH_IO_OK);
  g_assert_true (g_str_has_prefix (got->str, "HTTP/1.1 200"));
  g_assert_true (ph_stream_is_idle_open (f->stream));
}

static void
test_tls_idle_closed (Tls *f, gconstpointer data)
{
  gboolean ticket_first = GPOINTER_TO_INT (data);

  g_assert_true (ph_stream_is_idle_open (f->stream));
  /* A ticket right before the close_notify must not hide the close behind it. */
  ph_test_tls_server_close_connections (f->server, ticket_first);
  wait_readable (f->stream);
  g_assert_false (ph_stream_is_idle_open (f->stream));
}

static void
test_tls_read_packet (Tls *f, gconstpointer data)
{
  g_autoptr (GString) got = g_string_new (NULL);
  gint64 deadline = g_get_monotonic_time () + WAIT_US;

  tls_write_all (f->stream, "CONNECT origin.test:443 HTTP/1.1\r\nHost: origin.test:443\r\n\r\n");
  while (strstr (got->str, "\r\n\r\n") == NULL)
    {
      g_autoptr (GError) error = NULL;
      gnutls_packet_t packet = NULL;
      PhIoStatus st = ph_stream_read_packet (f->stream, &packet, &error);

      g_assert_no_error (error);
      g_assert_cmpint (st, !=, PH_IO_ERROR);
      g_assert_cmpint (st, !=, PH_IO_EOF);
      if (st == PH_IO_OK)
        {
          gnutls_datum_t d;

          g_assert_nonnull (packet);
          gnutls_packet_get (packet, &d, NULL);
          g_assert_cmpuint (d.size, >, 0);
          g_string_append_len (got, (const char *) d.data, d.size);
          gnutls_packet_deinit (packet);
        }
      else
        {
          g_assert_null (packet);
          g_socket_condition_timed_wait (ph_stream_get_socket (f->stream), G_IO_IN, 100000, NULL,
                                         NULL);
        }
      g_assert_cmpint (g_get_monotonic_time (), <, deadline);
    }
  g_assert_true (g_str_has_prefix (got->str, "HTTP/1.1 200"));
}

static gboolean
flag_set_cb (GSocket *socket, GIOCondition cond, gpointer data)
{
  *(gboolean *) data = TRUE;
  return G_SOURCE_REMOVE;
}

static gboolean
flag_is_set (gpointer data)
{
  return *(gboolean *) data;
}

/* The stream reads ahead of GnuTLS: the server's ticket and its answer come in one receive,
 * GnuTLS stops after the ticket (AGAIN) with the answer still in the stream, and the socket
 * has nothing more to say. The wait must fire on the bytes at hand. */
static void
test_tls_wait_read_ahead (Tls *f, gconstpointer data)
{
  g_autoptr (GString) got = g_string_new (NULL);
  gint64 deadline = g_get_monotonic_time () + WAIT_US;
  guint waits = 0;

  /* Nothing read since the handshake: the server's tickets are still in the socket, and its
   * answer lands behind them. */
  tls_write_all (f->stream, "CONNECT origin.test:443 HTTP/1.1\r\nHost: origin.test:443\r\n\r\n");
  g_usleep (G_USEC_PER_SEC / 5);
  while (strstr (got->str, "\r\n\r\n") == NULL)
    {
      g_autoptr (GError) error = NULL;
      guint8 buf[4096];
      gsize n = 0;
      PhIoStatus st = ph_stream_read (f->stream, buf, sizeof buf, &n, &error);

      g_assert_no_error (error);
      g_assert_cmpint (st, !=, PH_IO_ERROR);
      g_assert_cmpint (st, !=, PH_IO_EOF);
      if (st == PH_IO_OK)
        g_string_append_len (got, (const char *) buf, n);
      else
        {
          gboolean fired = FALSE;
          g_autoptr (GSource) wait = ph_stream_wait (f->stream, FALSE, flag_set_cb, &fired);

          g_assert_true (ph_test_iterate_until (flag_is_set, &fired, 4000));
          g_source_destroy (wait);
          waits++;
        }
      g_assert_cmpint (g_get_monotonic_time (), <, deadline);
    }
  g_assert_true (g_str_has_prefix (got->str, "HTTP/1.1 200"));
  g_test_message ("%u waits", waits);
}

/* Our close_notify and FIN, then the server's end: stunnel and others close without a
 * close_notify of their own once they have ours, and that is a clean end. */
static void
test_tls_half_close (Tls *f, gconstpointer data)
{
  g_autoptr (GString) got = g_string_new (NULL);
  g_autoptr (GError) error = NULL;
  gint64 deadline = g_get_monotonic_time () + WAIT_US;
  PhIoStatus st;

  while ((st = ph_stream_shutdown_write (f->stream, &error)) == PH_IO_AGAIN)
    g_assert_cmpint (g_get_monotonic_time (), <, deadline);
  g_assert_no_error (error);
  g_assert_cmpint (st, ==, PH_IO_OK);
  g_assert_true (ph_stream_is_write_shut (f->stream));
  g_assert_cmpint (tls_read_until (f->stream, got, NULL), ==, PH_IO_EOF);
  g_assert_false (ph_stream_is_idle_open (f->stream));
}

int
main (int argc, char **argv)
{
  const char *names[] = { SERVER_NAME, "127.0.0.1", NULL };
  int ret;

  g_test_init (&argc, &argv, NULL);
  t.cert = ph_test_cert_new (NULL, SERVER_NAME, names, -3600, 86400);

  g_test_add ("/pinhole/stream/plain/read-write", Pair, NULL, pair_setup, test_plain_read_write,
              pair_teardown);
  g_test_add ("/pinhole/stream/plain/writev", Pair, NULL, pair_setup, test_plain_writev,
              pair_teardown);
  for (gsize i = 0; i < G_N_ELEMENTS (idle_cases); i++)
    {
      g_autofree char *path = g_strdup_printf ("/pinhole/stream/plain/idle/%s", idle_cases[i].name);
      g_test_add (path, Pair, &idle_cases[i], pair_setup, test_plain_idle, pair_teardown);
    }
  g_test_add ("/pinhole/stream/plain/half-close", Pair, NULL, pair_setup, test_plain_half_close,
              pair_teardown);
  g_test_add ("/pinhole/stream/plain/abort", Pair, NULL, pair_setup, test_plain_abort,
              pair_teardown);
  g_test_add ("/pinhole/stream/plain/wait", Pair, NULL, pair_setup, test_plain_wait, pair_teardown);
  g_test_add ("/pinhole/stream/tls/idle-open", Tls, NULL, tls_setup, test_tls_idle_open,
              tls_teardown);
  g_test_add ("/pinhole/stream/tls/idle-closed", Tls, GINT_TO_POINTER (FALSE), tls_setup,
              test_tls_idle_closed, tls_teardown);
  g_test_add ("/pinhole/stream/tls/idle-closed-after-ticket", Tls, GINT_TO_POINTER (TRUE),
              tls_setup, test_tls_idle_closed, tls_teardown);
  g_test_add ("/pinhole/stream/tls/read-packet", Tls, NULL, tls_setup, test_tls_read_packet,
              tls_teardown);
  g_test_add ("/pinhole/stream/tls/wait-read-ahead", Tls, NULL, tls_setup, test_tls_wait_read_ahead,
              tls_teardown);
  g_test_add ("/pinhole/stream/tls/half-close", Tls, NULL, tls_setup, test_tls_half_close,
              tls_teardown);
  ret = g_test_run ();
  ph_test_cert_free (t.cert);
  return ret;
}

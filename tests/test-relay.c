/* SPDX-License-Identifier: GPL-2.0-or-later */
/* test-relay.c: unit tests for agent/core/ph-relay.h over socket pairs, without TLS: what each mode
 * relays, half-close, back-pressure through the one buffer, framing and the byte counters. */
#include "ph-relay.h"
#include "ph-error.h"

#include <string.h>
#include <sys/socket.h>

/* The pipe's buffer (ph-relay.c): the most it may hold. */
#define PIPE_BUF_SIZE (64 * 1024)
#define WAIT_US (10 * G_USEC_PER_SEC)

typedef struct
{
  /* The pipe reads src and writes dst; the test writes into src through @writer and reads
   * what reached dst through @reader. */
  PhStream *src, *dst;
  GSocket *src_sock, *dst_sock;
  GSocket *writer, *reader;
  PhPipe *pipe;
  gboolean done;
  GError *error;
  /* A second pipe, dst to src, for the tunnel's other direction. */
  PhPipe *back;
  gboolean back_done;
  GError *back_error;
} Fixture;

static GSocket *
socket_from_fd (int fd)
{
  g_autoptr (GError) error = NULL;
  GSocket *sock = g_socket_new_from_fd (fd, &error);

  g_assert_no_error (error);
  g_assert (sock != NULL);
  return sock;
}

static PhStream *
stream_new (GSocket *sock)
{
  g_autoptr (GSocketConnection) conn = g_socket_connection_factory_create_connection (sock);

  return ph_stream_new (conn, NULL);
}

static void
fixture_setup (Fixture *f, gconstpointer data)
{
  int a[2], b[2];

  g_assert_cmpint (socketpair (AF_UNIX, SOCK_STREAM, 0, a), ==, 0);
  g_assert_cmpint (socketpair (AF_UNIX, SOCK_STREAM, 0, b), ==, 0);
  f->src_sock = socket_from_fd (a[0]);
  f->writer = socket_from_fd (a[1]);
  f->dst_sock = socket_from_fd (b[0]);
  f->reader = socket_from_fd (b[1]);
  g_socket_set_blocking (f->writer, FALSE);
  g_socket_set_blocking (f->reader, FALSE);
  f->src = stream_new (f->src_sock);
  f->dst = stream_new (f->dst_sock);
  f->pipe = ph_pipe_new ();
  f->back = ph_pipe_new ();
}

static void
fixture_teardown (Fixture *f, gconstpointer data)
{
  g_clear_pointer (&f->pipe, ph_pipe_free);
  g_clear_pointer (&f->back, ph_pipe_free);
  g_clear_pointer (&f->src, ph_stream_free);
  g_clear_pointer (&f->dst, ph_stream_free);
  g_clear_object (&f->src_sock);
  g_clear_object (&f->dst_sock);
  g_clear_object (&f->writer);
  g_clear_object (&f->reader);
  g_clear_error (&f->error);
  g_clear_error (&f->back_error);
  /* Nothing the pipes waited on may stay behind for the next case. */
  while (g_main_context_iteration (NULL, FALSE))
    ;
}

static void
pipe_done (PhPipe *pipe, GError *error, gpointer data)
{
  Fixture *f = data;

  g_assert_false (f->done);
  f->done = TRUE;
  f->error = error;
}

static void
back_done (PhPipe *pipe, GError *error, gpointer data)
{
  Fixture *f = data;

  g_assert_false (f->back_done);
  f->back_done = TRUE;
  f->back_error = error;
}

/* Runs the main loop until *@flag is set or the time is up. */
static gboolean
iterate_until (gboolean *flag)
{
  gint64 deadline = g_get_monotonic_time () + WAIT_US;

  while (!*flag && g_get_monotonic_time () < deadline)
    if (!g_main_context_iteration (NULL, FALSE))
      g_usleep (1000);
  return *flag;
}

static void
write_all (GSocket *sock, const void *data, gsize len)
{
  gsize off = 0;

  while (off < len)
    {
      g_autoptr (GError) error = NULL;
      gssize n = g_socket_send_with_blocking (sock, (const char *) data + off, len - off, TRUE,
                                              NULL, &error);
      g_assert_no_error (error);
      g_assert_cmpint (n, >, 0);
      off += n;
    }
}

/* Everything @sock has to read now; *@eof when it has ended. */
static GByteArray *
read_available (GSocket *sock, gboolean *eof)
{
  GByteArray *out = g_byte_array_new ();

  *eof = FALSE;
  for (;;)
    {
      g_autoptr (GError) error = NULL;
      guint8 buf[65536];
      gssize n
          = g_socket_receive_with_blocking (sock, (char *) buf, sizeof buf, FALSE, NULL, &error);
      if (n > 0)
        {
          g_byte_array_append (out, buf, n);
          continue;
        }
      if (n == 0)
        *eof = TRUE;
      else
        g_assert_error (error, G_IO_ERROR, G_IO_ERROR_WOULD_BLOCK);
      return out;
    }
}

static void
assert_bytes (GByteArray *got, const char *want)
{
  g_assert_cmpmem (got->data, got->len, want, strlen (want));
}

/* ---- a pattern that shows a lost, repeated or reordered block ---- */

static void
pattern_fill (guint8 *buf, guint64 offset, gsize len)
{
  for (gsize i = 0; i < len; i++)
    {
      guint64 x = offset + i;
      buf[i] = (guint8) ((((guint32) x * 2654435761u) >> 24) ^ (x >> 16));
    }
}

/* Writes the pattern into @sock from *@sent on, until @total or the socket is full. */
static gsize
pattern_write (GSocket *sock, guint64 *sent, guint64 total)
{
  guint8 buf[65536];
  gsize wrote = 0;

  while (*sent < total)
    {
      g_autoptr (GError) error = NULL;
      gsize len = MIN (sizeof buf, total - *sent);
      gssize n;

      pattern_fill (buf, *sent, len);
      n = g_socket_send_with_blocking (sock, (const char *) buf, len, FALSE, NULL, &error);
      if (n < 0)
        {
          g_assert_error (error, G_IO_ERROR, G_IO_ERROR_WOULD_BLOCK);
          break;
        }
      *sent += n;
      wrote += n;
    }
  return wrote;
}

/* Reads what @sock has, checking it against the pattern from *@received on. */
static gsize
pattern_read (GSocket *sock, guint64 *received, gboolean *eof)
{
  guint8 buf[65536], want[65536];
  gsize got = 0;

  for (;;)
    {
      g_autoptr (GError) error = NULL;
      gssize n
          = g_socket_receive_with_blocking (sock, (char *) buf, sizeof buf, FALSE, NULL, &error);
      if (n == 0)
        *eof = TRUE;
      if (n <= 0)
        {
          if (n < 0)
            g_assert_error (error, G_IO_ERROR, G_IO_ERROR_WOULD_BLOCK);
          return got;
        }
      pattern_fill (want, *received, n);
      if (memcmp (buf, want, n) != 0)
        g_error ("relayed bytes differ from the pattern near offset %" G_GUINT64_FORMAT, *received);
      *received += n;
      got += n;
    }
}

/* ---- RAW ---- */

typedef struct
{
  Fixture *f;
  guint64 total, sent, received;
  gboolean reader_eof;
} Transfer;

static gboolean
transfer_write_cb (GSocket *sock, GIOCondition cond, gpointer data)
{
  Transfer *t = data;

  pattern_write (sock, &t->sent, t->total);
  if (t->sent < t->total)
    return G_SOURCE_CONTINUE;
  /* The source's end: the pipe must carry it to the destination. */
  g_assert_true (g_socket_shutdown (sock, FALSE, TRUE, NULL));
  return G_SOURCE_REMOVE;
}

static gboolean
transfer_read_cb (GSocket *sock, GIOCondition cond, gpointer data)
{
  Transfer *t = data;

  pattern_read (sock, &t->received, &t->reader_eof);
  return t->reader_eof ? G_SOURCE_REMOVE : G_SOURCE_CONTINUE;
}

/* 64 MiB one way, exact; the source's end becomes the destination's end; the other
 * direction of the tunnel still carries a reply after that, and then ends too. */
static void
test_raw_transfer_half_close (Fixture *f, gconstpointer data)
{
  Transfer t = { f, 64 * 1024 * 1024 };
  g_autoptr (GSource) wsrc = g_socket_create_source (f->writer, G_IO_OUT, NULL);
  g_autoptr (GSource) rsrc = g_socket_create_source (f->reader, G_IO_IN | G_IO_HUP, NULL);
  g_autoptr (GByteArray) reply = NULL;
  gboolean eof = FALSE;
  gint64 start = g_get_monotonic_time ();

  ph_pipe_init (f->pipe, f->src, f->dst, pipe_done, f);
  ph_pipe_init (f->back, f->dst, f->src, back_done, f);
  g_source_set_callback (wsrc, G_SOURCE_FUNC (transfer_write_cb), &t, NULL);
  g_source_set_callback (rsrc, G_SOURCE_FUNC (transfer_read_cb), &t, NULL);
  g_source_attach (wsrc, NULL);
  g_source_attach (rsrc, NULL);
  ph_pipe_start (f->pipe, PH_PIPE_RAW);
  ph_pipe_start (f->back, PH_PIPE_RAW);

  g_assert_true (iterate_until (&t.reader_eof));
  g_assert_true (iterate_until (&f->done));
  g_source_destroy (wsrc);
  g_source_destroy (rsrc);
  g_test_message ("64 MiB relayed in %.2fs", (g_get_monotonic_time () - start) / 1e6);
  g_assert_cmpuint (t.received, ==, t.total);
  g_assert_no_error (f->error);
  g_assert_cmpuint (ph_pipe_get_bytes (f->pipe), ==, t.total);
  g_assert_false (ph_pipe_get_write_failed (f->pipe));
  /* Half-closed, not closed: the destination's side still talks back. */
  g_assert_false (f->back_done);
  write_all (f->reader, "reply", 5);
  g_assert_true (g_socket_shutdown (f->reader, FALSE, TRUE, NULL));
  g_assert_true (iterate_until (&f->back_done));
  g_assert_no_error (f->back_error);
  g_assert_cmpuint (ph_pipe_get_bytes (f->back), ==, 5);
  reply = read_available (f->writer, &eof);
  assert_bytes (reply, "reply");
  g_assert_true (eof);
}

/* Pushed bytes (the "200 Connection established" head) go first and are not counted;
 * read-ahead bytes (ph_pipe_push_body without framing) go next and are. */
static void
test_raw_pushed_head_not_counted (Fixture *f, gconstpointer data)
{
  static const char head[] = "HTTP/1.1 200 Connection established\r\n\r\n";
  g_autoptr (GByteArray) got = NULL;
  gboolean eof = FALSE;

  ph_pipe_init (f->pipe, f->src, f->dst, pipe_done, f);
  ph_pipe_push (f->pipe, head, strlen (head));
  g_assert_true (ph_pipe_push_body (f->pipe, (const guint8 *) "early", 5));
  write_all (f->writer, "later", 5);
  g_assert_true (g_socket_shutdown (f->writer, FALSE, TRUE, NULL));
  ph_pipe_start (f->pipe, PH_PIPE_RAW);
  g_assert_true (iterate_until (&f->done));
  g_assert_no_error (f->error);
  g_assert_cmpuint (ph_pipe_get_bytes (f->pipe), ==, 10);
  got = read_available (f->reader, &eof);
  assert_bytes (got, "HTTP/1.1 200 Connection established\r\n\r\nearlylater");
  g_assert_true (eof);
}

/* Runs the loop, feeding the source, until neither the test nor the pipe can move. */
static void
fill_until_stuck (Fixture *f, guint64 *sent, guint64 total)
{
  guint idle = 0;

  for (guint i = 0; i < 100000 && idle < 20; i++)
    {
      gsize wrote = pattern_write (f->writer, sent, total);
      gboolean ran = g_main_context_iteration (NULL, FALSE);
      idle = wrote == 0 && !ran ? idle + 1 : 0;
    }
}

/* A destination that does not read stops the pipe reading: the source's socket fills, the
 * pipe holds at most its one buffer, and all of it moves on once the destination reads. */
static void
test_raw_back_pressure (Fixture *f, gconstpointer data)
{
  guint64 total = 64 * 1024 * 1024, sent = 0, received = 0;
  gsize in_src, in_dst, held;
  gboolean eof = FALSE;
  gint64 deadline;

  ph_pipe_init (f->pipe, f->src, f->dst, pipe_done, f);
  ph_pipe_start (f->pipe, PH_PIPE_RAW);
  fill_until_stuck (f, &sent, total);
  g_assert_cmpuint (sent, <, total);

  in_src = g_socket_get_available_bytes (f->src_sock);
  in_dst = g_socket_get_available_bytes (f->reader);
  held = sent - in_src - in_dst;
  g_test_message ("written %" G_GUINT64_FORMAT ": %zu unread at the source, %zu held by the "
                  "pipe, %zu waiting at the destination",
                  sent, in_src, held, in_dst);
  g_assert_cmpuint (in_src, >, 0);
  g_assert_cmpuint (held, >, 0);
  g_assert_cmpuint (held, <=, PIPE_BUF_SIZE);
  g_assert_cmpuint (ph_pipe_get_bytes (f->pipe), ==, in_dst);
  g_assert_false (f->done);

  /* Stuck means stuck: time passing changes nothing. */
  deadline = g_get_monotonic_time () + 100 * 1000;
  while (g_get_monotonic_time () < deadline)
    if (!g_main_context_iteration (NULL, FALSE))
      g_usleep (1000);
  g_assert_cmpuint (g_socket_get_available_bytes (f->src_sock), ==, in_src);
  g_assert_cmpuint (ph_pipe_get_bytes (f->pipe), ==, in_dst);

  /* The destination reads: everything written arrives, in order. */
  deadline = g_get_monotonic_time () + WAIT_US;
  while (received < sent && g_get_monotonic_time () < deadline)
    {
      gsize got = pattern_read (f->reader, &received, &eof);
      if (!g_main_context_iteration (NULL, FALSE) && got == 0)
        g_usleep (1000);
    }
  g_assert_cmpuint (received, ==, sent);
  g_assert_false (eof);
  g_assert_cmpuint (g_socket_get_available_bytes (f->src_sock), ==, 0);
  g_assert_cmpuint (ph_pipe_get_bytes (f->pipe), ==, sent);
}

/* A destination that is gone fails the pipe on the write side. */
static void
test_raw_write_error (Fixture *f, gconstpointer data)
{
  g_assert_true (g_socket_close (f->reader, NULL));
  ph_pipe_init (f->pipe, f->src, f->dst, pipe_done, f);
  write_all (f->writer, "nobody reads this", 17);
  ph_pipe_start (f->pipe, PH_PIPE_RAW);
  g_assert_true (iterate_until (&f->done));
  g_assert_nonnull (f->error);
  g_assert_true (ph_pipe_get_write_failed (f->pipe));
  g_assert_true (ph_pipe_is_finished (f->pipe));
  g_assert_cmpuint (ph_pipe_get_bytes (f->pipe), ==, 0);
}

/* A source that ends with bytes still unsent: all of them go before the half-close. */
static void
test_raw_eof_after_data (Fixture *f, gconstpointer data)
{
  g_autoptr (GByteArray) got = NULL;
  gboolean eof = FALSE;

  ph_pipe_init (f->pipe, f->src, f->dst, pipe_done, f);
  write_all (f->writer, "last words", 10);
  g_assert_true (g_socket_shutdown (f->writer, FALSE, TRUE, NULL));
  ph_pipe_start (f->pipe, PH_PIPE_RAW);
  g_assert_true (iterate_until (&f->done));
  g_assert_no_error (f->error);
  g_assert_false (ph_pipe_get_write_failed (f->pipe));
  got = read_available (f->reader, &eof);
  assert_bytes (got, "last words");
  g_assert_true (eof);
  g_assert_true (ph_stream_is_write_shut (f->dst));
}

/* ---- FLUSH ---- */

/* More than the sockets hold: the pipe waits for the destination and finishes once all is out,
 * without reading a source or closing the destination. */
static void
test_flush (Fixture *f, gconstpointer data)
{
  gsize len = 4 * 1024 * 1024;
  g_autofree guint8 *buf = g_malloc (len);
  guint64 received = 0;
  gboolean eof = FALSE;
  gint64 deadline = g_get_monotonic_time () + WAIT_US;

  pattern_fill (buf, 0, len);
  ph_pipe_init (f->pipe, NULL, f->dst, pipe_done, f);
  ph_pipe_push (f->pipe, buf, len);
  ph_pipe_start (f->pipe, PH_PIPE_FLUSH);
  while ((!f->done || received < len) && g_get_monotonic_time () < deadline)
    {
      gsize got = pattern_read (f->reader, &received, &eof);
      if (!g_main_context_iteration (NULL, FALSE) && got == 0)
        g_usleep (1000);
    }
  g_assert_true (f->done);
  g_assert_no_error (f->error);
  g_assert_cmpuint (received, ==, len);
  g_assert_false (eof);
  g_assert_false (ph_stream_is_write_shut (f->dst));
  g_assert_cmpuint (ph_pipe_get_bytes (f->pipe), ==, 0);
}

/* ---- BODY ---- */

typedef struct
{
  const char *name;
  PhBodyMode mode;
  guint64 length;
  const char *ahead; /* read ahead with the head: ph_pipe_push_body() (NULL: none) */
  gboolean ahead_ok;
  const char *wire;      /* what the source sends */
  gboolean close_source; /* and then whether it ends */
  gboolean with_overflow;
  const char *out;  /* what the destination receives after the head */
  const char *rest; /* what lands in the overflow */
  gboolean overran;
  gint error_code; /* PH_ERROR code, -1: none */
} BodyCase;

static const BodyCase body_cases[] = {
  { "length", PH_BODY_LENGTH, 5, NULL, TRUE, "helloGET /next", FALSE, TRUE, "hello", "GET /next",
    FALSE, -1 },
  { "length-ahead", PH_BODY_LENGTH, 10, "hello", TRUE, "worldXYZ", FALSE, TRUE, "helloworld", "XYZ",
    FALSE, -1 },
  { "length-all-ahead", PH_BODY_LENGTH, 3, "abcdef", TRUE, "", FALSE, TRUE, "abc", "def", FALSE,
    -1 },
  { "length-overran", PH_BODY_LENGTH, 2, NULL, TRUE, "okEXTRA", FALSE, FALSE, "ok", "", TRUE, -1 },
  { "length-truncated", PH_BODY_LENGTH, 10, NULL, TRUE, "short", TRUE, TRUE, "short", "", FALSE,
    PH_ERROR_UPSTREAM_PROTOCOL },
  { "chunked", PH_BODY_CHUNKED, 0, NULL, TRUE, "5\r\nhello\r\n0\r\n\r\nNEXT", FALSE, TRUE,
    "5\r\nhello\r\n0\r\n\r\n", "NEXT", FALSE, -1 },
  { "chunked-ahead-split", PH_BODY_CHUNKED, 0, "5\r\nhel", TRUE,
    "lo\r\n3;ext=1\r\nabc\r\n0\r\nTrailer: x\r\n\r\nGET", FALSE, TRUE,
    "5\r\nhello\r\n3;ext=1\r\nabc\r\n0\r\nTrailer: x\r\n\r\n", "GET", FALSE, -1 },
  { "chunked-malformed", PH_BODY_CHUNKED, 0, NULL, TRUE, "zz\r\nhello\r\n0\r\n\r\n", FALSE, TRUE,
    "", "", FALSE, PH_ERROR_BAD_REQUEST },
  { "chunked-malformed-ahead", PH_BODY_CHUNKED, 0, "5\r\nhelloXX", FALSE, "", FALSE, TRUE, NULL,
    NULL, FALSE, -1 },
  { "chunked-truncated", PH_BODY_CHUNKED, 0, NULL, TRUE, "5\r\nhel", TRUE, TRUE, "5\r\nhel", "",
    FALSE, PH_ERROR_UPSTREAM_PROTOCOL },
  { "until-close", PH_BODY_UNTIL_CLOSE, 0, NULL, TRUE, "all of it", TRUE, TRUE, "all of it", "",
    FALSE, -1 },
};

static void
test_body (Fixture *f, gconstpointer data)
{
  const BodyCase *c = data;
  static const char head[] = "HTTP/1.1 200 OK\r\n\r\n";
  g_autoptr (GByteArray) overflow = g_byte_array_new ();
  g_autoptr (GByteArray) got = NULL;
  g_autofree char *want = NULL;
  gboolean eof = FALSE;

  ph_pipe_init (f->pipe, f->src, f->dst, pipe_done, f);
  if (c->with_overflow)
    ph_pipe_set_overflow (f->pipe, overflow);
  ph_pipe_set_body (f->pipe, c->mode, c->length);
  ph_pipe_push (f->pipe, head, strlen (head));
  if (c->ahead != NULL)
    g_assert_cmpint (ph_pipe_push_body (f->pipe, (const guint8 *) c->ahead, strlen (c->ahead)), ==,
                     c->ahead_ok);
  if (!c->ahead_ok)
    return; /* the caller answers 400/502 and never starts the pipe */
  write_all (f->writer, c->wire, strlen (c->wire));
  if (c->close_source)
    g_assert_true (g_socket_shutdown (f->writer, FALSE, TRUE, NULL));
  ph_pipe_start (f->pipe, PH_PIPE_BODY);
  g_assert_true (iterate_until (&f->done));

  if (c->error_code < 0)
    g_assert_no_error (f->error);
  else
    g_assert_error (f->error, PH_ERROR, c->error_code);
  g_assert_false (ph_pipe_get_write_failed (f->pipe));
  want = g_strconcat (head, c->out, NULL);
  got = read_available (f->reader, &eof);
  assert_bytes (got, want);
  /* A body never ends the destination: the connection may carry the next message. */
  g_assert_false (eof);
  g_assert_false (ph_stream_is_write_shut (f->dst));
  g_assert_cmpuint (ph_pipe_get_bytes (f->pipe), ==, strlen (c->out));
  g_assert_cmpmem (overflow->data, overflow->len, c->rest, strlen (c->rest));
  g_assert_cmpint (ph_pipe_get_overran (f->pipe), ==, c->overran);
}

#define ADD(path, func) g_test_add (path, Fixture, NULL, fixture_setup, func, fixture_teardown)

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  /* Messages on stderr: stdout carries TAP. */
  g_log_writer_default_set_use_stderr (TRUE);

  ADD ("/pinhole/relay/raw-transfer-half-close", test_raw_transfer_half_close);
  ADD ("/pinhole/relay/raw-pushed-head-not-counted", test_raw_pushed_head_not_counted);
  ADD ("/pinhole/relay/raw-back-pressure", test_raw_back_pressure);
  ADD ("/pinhole/relay/raw-write-error", test_raw_write_error);
  ADD ("/pinhole/relay/raw-eof-after-data", test_raw_eof_after_data);
  ADD ("/pinhole/relay/flush", test_flush);
  for (guint i = 0; i < G_N_ELEMENTS (body_cases); i++)
    {
      g_autofree char *path = g_strdup_printf ("/pinhole/relay/body-%s", body_cases[i].name);
      g_test_add (path, Fixture, &body_cases[i], fixture_setup, test_body, fixture_teardown);
    }

  return g_test_run ();
}

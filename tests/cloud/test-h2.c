/* SPDX-License-Identifier: GPL-2.0-or-later */
/* test-h2.c: agent/core/ph-h2.c against the real cloud end's HTTP/2 front (nghttpx
 * --http2-proxy before Squid, with ph-test-origin): ALPN, CONNECT streams with bytes both ways,
 * two at once on one connection, a 407 that leaves the connection usable, a plain GET, one stalled
 * reader beside a moving one, and nghttpx's graceful stop (GOAWAY). */
#include <gio/gio.h>
#include <glib/gstdio.h>
#include <signal.h>
#include <string.h>

#include "ph-config.h"
#include "ph-error.h"
#include "ph-h2.h"
#include "ph-test-cloud.h"
#include "ph-tls.h"

static PhTestCloud *cloud;
static char *origin;

static PhTlsContext *
tls_context (void)
{
  g_autoptr (GError) error = NULL;
  g_autofree char *dir = g_dir_make_tmp ("ph-h2-XXXXXX", &error);
  g_autofree char *path = g_build_filename (dir, "agent.conf", NULL);
  g_autofree char *text
      = g_strdup_printf ("[upstream]\nhost=127.0.0.1\nport=%u\nserver-name=%s\npins=%s\n",
                         cloud->tls_port, cloud->server_name, cloud->pin);
  g_autoptr (PhConfig) config = NULL;
  PhTlsContext *ctx;
  const char *alpn[] = { "h2", "http/1.1", NULL };

  g_assert_true (g_file_set_contents (path, text, -1, &error));
  config = ph_config_load (path, &error);
  g_assert_no_error (error);
  ctx = ph_tls_context_new (config, NULL, &error);
  g_assert_no_error (error);
  ph_tls_context_set_alpn (ctx, alpn);
  g_unlink (path);
  g_rmdir (dir);
  return ctx;
}

typedef struct
{
  gboolean done;
  PhStream *stream;
  GError *error;
} Handshake;

static void
handshake_cb (PhStream *stream, GError *error, gpointer data)
{
  Handshake *hs = data;

  hs->done = TRUE;
  hs->stream = stream;
  hs->error = error != NULL ? g_error_copy (error) : NULL;
}

/* A verified TLS connection to the cloud end with ALPN h2, and an HTTP/2 session on it. */
static PhH2Session *
connect_h2 (guint32 stream_window)
{
  g_autoptr (GError) error = NULL;
  g_autoptr (GSocketClient) client = g_socket_client_new ();
  g_autoptr (GSocketConnection) conn = NULL;
  g_autoptr (PhTlsContext) ctx = tls_context ();
  g_autofree char *alpn = NULL;
  Handshake hs = { 0 };
  PhH2Session *session;

  conn = g_socket_client_connect_to_host (client, "127.0.0.1", cloud->tls_port, NULL, &error);
  g_assert_no_error (error);
  ph_tls_handshake_async (ctx, conn, 10000, NULL, handshake_cb, &hs);
  while (!hs.done)
    g_main_context_iteration (NULL, TRUE);
  g_assert_no_error (hs.error);
  alpn = ph_tls_dup_alpn (hs.stream);
  g_assert_cmpstr (alpn, ==, "h2");
  session = ph_h2_session_new (hs.stream, stream_window, &error);
  g_assert_no_error (error);
  return session;
}

typedef struct
{
  gboolean done;
  GError *error;
} Head;

static void
head_cb (PhH2Stream *stream, GError *error, gpointer data)
{
  Head *head = data;

  head->done = TRUE;
  head->error = error != NULL ? g_error_copy (error) : NULL;
}

static char *
basic (const char *password)
{
  g_autofree char *pair = g_strdup_printf ("%s:%s", cloud->user, password);
  g_autofree char *b64 = g_base64_encode ((const guchar *) pair, strlen (pair));

  return g_strdup_printf ("Basic %s", b64);
}

static gboolean
deadline_cb (gpointer data)
{
  *(gboolean *) data = TRUE;
  return G_SOURCE_REMOVE;
}

static void
wait_head (Head *head)
{
  gboolean late = FALSE;
  guint id = g_timeout_add_seconds (30, deadline_cb, &late);

  while (!head->done && !late)
    g_main_context_iteration (NULL, TRUE);
  g_assert_false (late);
  g_source_remove (id);
}

/* A CONNECT to the origin, answered; @password NULL: the cloud's. */
static PhH2Stream *
open_tunnel (PhH2Session *session, const char *password, guint expect_status)
{
  g_autofree char *auth = basic (password != NULL ? password : cloud->password);
  const char *headers[] = { "proxy-authorization", auth, NULL };
  g_autoptr (GError) error = NULL;
  Head head = { 0 };
  PhH2Stream *stream
      = ph_h2_session_open_connect (session, origin, headers, head_cb, &head, &error);

  g_assert_no_error (error);
  g_assert_nonnull (stream);
  wait_head (&head);
  g_assert_no_error (head.error);
  g_assert_cmpuint (ph_h2_stream_get_status (stream), ==, expect_status);
  return stream;
}

/* One stream's traffic in a test: bytes to send (then END_STREAM when @shut), bytes received. */
typedef struct
{
  PhH2Stream *stream;
  GByteArray *out;
  gsize out_off;
  gboolean shut;
  gboolean paused; /* does not read */
  GByteArray *in;
  gboolean eof;
  GError *error;
} Job;

static Job *
job_new (PhH2Stream *stream, const char *head, gsize pattern_len, gboolean shut)
{
  Job *job = g_new0 (Job, 1);

  job->stream = stream;
  job->out = g_byte_array_new ();
  g_byte_array_append (job->out, (const guint8 *) head, strlen (head));
  if (pattern_len > 0)
    {
      gsize at = job->out->len;

      g_byte_array_set_size (job->out, at + pattern_len);
      ph_test_pattern_fill (job->out->data + at, pattern_len, 0);
    }
  job->shut = shut;
  job->in = g_byte_array_new ();
  return job;
}

static void
job_free (Job *job)
{
  g_byte_array_unref (job->out);
  g_byte_array_unref (job->in);
  g_clear_error (&job->error);
  ph_h2_stream_free (job->stream);
  g_free (job);
}

static gboolean
job_finished (Job *job)
{
  return job->eof || job->error != NULL;
}

/* Moves what can move now; TRUE when something did. */
static gboolean
job_step (Job *job)
{
  gboolean moved = FALSE;
  guint8 buf[65536];

  while (job->error == NULL && job->out_off < job->out->len)
    {
      gsize n = 0;
      PhIoStatus st = ph_h2_stream_write (job->stream, job->out->data + job->out_off,
                                          job->out->len - job->out_off, &n, &job->error);
      if (st != PH_IO_OK)
        break;
      job->out_off += n;
      moved = TRUE;
      if (job->out_off == job->out->len && job->shut)
        ph_h2_stream_shutdown_write (job->stream, &job->error);
    }
  while (!job->paused && !job_finished (job))
    {
      gsize n = 0;
      PhIoStatus st = ph_h2_stream_read (job->stream, buf, sizeof buf, &n, &job->error);

      if (st == PH_IO_OK)
        {
          g_byte_array_append (job->in, buf, n);
          moved = TRUE;
        }
      else
        {
          if (st == PH_IO_EOF)
            job->eof = moved = TRUE;
          break;
        }
    }
  return moved;
}

static gboolean
wake_cb (GSocket *socket, GIOCondition cond, gpointer data)
{
  *(gboolean *) data = TRUE;
  return G_SOURCE_REMOVE;
}

/* Runs @jobs until @until says so (NULL: every unpaused job finished) or @seconds pass. */
static gboolean
run_jobs (Job **jobs, guint n_jobs, gboolean (*until) (gpointer), gpointer data, guint seconds)
{
  gint64 end = g_get_monotonic_time () + seconds * G_USEC_PER_SEC;

  for (;;)
    {
      gboolean all = TRUE, moved = FALSE, woke = FALSE;
      GPtrArray *sources = g_ptr_array_new ();
      GSource *timeout;

      for (guint i = 0; i < n_jobs; i++)
        {
          moved |= job_step (jobs[i]);
          if (!jobs[i]->paused && !job_finished (jobs[i]))
            all = FALSE;
        }
      if (until != NULL ? until (data) : all)
        {
          g_ptr_array_unref (sources);
          return TRUE;
        }
      if (g_get_monotonic_time () > end)
        {
          g_ptr_array_unref (sources);
          return FALSE;
        }
      if (moved)
        {
          g_ptr_array_unref (sources);
          while (g_main_context_iteration (NULL, FALSE))
            ;
          continue;
        }
      for (guint i = 0; i < n_jobs; i++)
        if (!job_finished (jobs[i]))
          {
            if (!jobs[i]->paused)
              g_ptr_array_add (sources, ph_h2_stream_wait (jobs[i]->stream, FALSE, wake_cb, &woke));
            if (jobs[i]->out_off < jobs[i]->out->len)
              g_ptr_array_add (sources, ph_h2_stream_wait (jobs[i]->stream, TRUE, wake_cb, &woke));
          }
      timeout = g_timeout_source_new (100);
      g_source_set_callback (timeout, deadline_cb, &woke, NULL);
      g_source_attach (timeout, NULL);
      while (!woke)
        g_main_context_iteration (NULL, TRUE);
      g_source_destroy (timeout);
      g_source_unref (timeout);
      for (guint i = 0; i < sources->len; i++)
        {
          g_source_destroy (sources->pdata[i]);
          g_source_unref (sources->pdata[i]);
        }
      g_ptr_array_unref (sources);
    }
}

/* The body after an HTTP/1.1 head in @job's bytes; asserts the status line. */
static const guint8 *
job_body (Job *job, const char *status_line, gsize *len)
{
  const guint8 *end = NULL;

  for (gsize i = 0; i + 4 <= job->in->len && end == NULL; i++)
    if (memcmp (job->in->data + i, "\r\n\r\n", 4) == 0)
      end = job->in->data + i;
  g_assert_nonnull (end);
  g_assert_true (job->in->len >= strlen (status_line)
                 && memcmp (job->in->data, status_line, strlen (status_line)) == 0);
  *len = job->in->len - (end + 4 - job->in->data);
  return end + 4;
}

static char *
sha256_hex (const guint8 *data, gsize len)
{
  return g_compute_checksum_for_data (G_CHECKSUM_SHA256, data, len);
}

static char *
get_head (guint64 n)
{
  return g_strdup_printf ("GET /bytes/%" G_GUINT64_FORMAT " HTTP/1.1\r\nHost: %s\r\n"
                          "Connection: close\r\n\r\n",
                          n, origin);
}

static void
assert_download (Job *job, guint64 n)
{
  gsize len = 0;
  const guint8 *body;
  g_autofree char *got = NULL;
  g_autofree char *want = ph_test_pattern_sha256 (n);

  g_assert_no_error (job->error);
  g_assert_true (job->eof);
  body = job_body (job, "HTTP/1.1 200", &len);
  g_assert_cmpuint (len, ==, n);
  got = sha256_hex (body, len);
  g_assert_cmpstr (got, ==, want);
}

#define MB (1024 * 1024)

static void
test_alpn_and_two_tunnels (void)
{
  g_autoptr (PhH2Session) session = connect_h2 (0);
  g_autofree char *up_head = g_strdup_printf (
      "POST /sha256 HTTP/1.1\r\nHost: %s\r\nContent-Length: %u\r\nConnection: close\r\n\r\n",
      origin, 6 * MB);
  g_autofree char *down_head = get_head (6 * MB);
  g_autofree char *want_up = ph_test_pattern_sha256 (6 * MB);
  Job *jobs[2];
  gsize len = 0;
  const guint8 *body;

  jobs[0] = job_new (open_tunnel (session, NULL, 200), up_head, 6 * MB, FALSE);
  jobs[1] = job_new (open_tunnel (session, NULL, 200), down_head, 0, FALSE);
  /* Two streams of one connection, open at once. */
  g_assert_cmpuint (ph_h2_stream_get_id (jobs[0]->stream), ==, 1);
  g_assert_cmpuint (ph_h2_stream_get_id (jobs[1]->stream), ==, 3);
  g_assert_cmpuint (ph_h2_session_get_open_streams (session), ==, 2);
  g_assert_cmpuint (ph_h2_session_get_available_streams (session), ==, 98);
  g_assert_true (run_jobs (jobs, 2, NULL, NULL, 60));

  assert_download (jobs[1], 6 * MB);
  g_assert_no_error (jobs[0]->error);
  body = job_body (jobs[0], "HTTP/1.1 200", &len);
  g_assert_true (len > 64 && memcmp (body, want_up, 64) == 0);
  g_assert_nonnull (g_strstr_len ((const char *) body, len, " 6291456"));
  job_free (jobs[0]);
  job_free (jobs[1]);
  g_assert_false (ph_h2_session_is_closed (session));
}

static void
test_wrong_password (void)
{
  g_autoptr (PhH2Session) session = connect_h2 (0);
  PhH2Stream *refused = open_tunnel (session, "not-the-password", 407);
  g_autofree char *head = get_head (100000);
  Job *job;

  g_assert_nonnull (ph_h2_stream_get_header (refused, "proxy-authenticate"));
  g_assert_true (
      g_str_has_prefix (ph_h2_stream_get_header (refused, "proxy-authenticate"), "Basic"));
  ph_h2_stream_free (refused);
  /* The connection serves the next stream. */
  job = job_new (open_tunnel (session, NULL, 200), head, 0, FALSE);
  g_assert_true (run_jobs (&job, 1, NULL, NULL, 30));
  assert_download (job, 100000);
  job_free (job);
}

static void
test_plain_get (void)
{
  g_autoptr (PhH2Session) session = connect_h2 (0);
  g_autofree char *auth = basic (cloud->password);
  const char *headers[] = { "proxy-authorization", auth, NULL };
  g_autoptr (GError) error = NULL;
  g_autofree char *want = ph_test_pattern_sha256 (300000);
  g_autofree char *got = NULL;
  Head head = { 0 };
  PhH2Stream *stream = ph_h2_session_open_request (session, "GET", origin, "/bytes/300000", headers,
                                                   FALSE, head_cb, &head, &error);
  Job *job;

  g_assert_no_error (error);
  wait_head (&head);
  g_assert_no_error (head.error);
  g_assert_cmpuint (ph_h2_stream_get_status (stream), ==, 200);
  g_assert_cmpstr (ph_h2_stream_get_header (stream, "content-length"), ==, "300000");
  job = job_new (stream, "", 0, FALSE);
  g_assert_true (run_jobs (&job, 1, NULL, NULL, 30));
  g_assert_no_error (job->error);
  g_assert_cmpuint (job->in->len, ==, 300000);
  got = sha256_hex (job->in->data, job->in->len);
  g_assert_cmpstr (got, ==, want);
  job_free (job);
}

static void
test_back_pressure (void)
{
  /* A 1 MiB stream window, so that the stalled stream fills it soon. */
  g_autoptr (PhH2Session) session = connect_h2 (MB);
  g_autofree char *big = get_head (32 * MB);
  g_autofree char *small = get_head (4 * MB);
  Job *jobs[2];

  jobs[0] = job_new (open_tunnel (session, NULL, 200), big, 0, FALSE);
  jobs[0]->paused = TRUE;
  jobs[1] = job_new (open_tunnel (session, NULL, 200), small, 0, FALSE);
  /* The other stream's reader takes nothing; this one still gets all of its bytes. */
  g_assert_true (run_jobs (jobs, 2, NULL, NULL, 60));
  assert_download (jobs[1], 4 * MB);
  g_assert_cmpuint (jobs[0]->in->len, ==, 0);
  /* Then the stalled one reads, and nothing of it was lost. */
  jobs[0]->paused = FALSE;
  g_assert_true (run_jobs (jobs, 1, NULL, NULL, 120));
  assert_download (jobs[0], 32 * MB);
  job_free (jobs[0]);
  job_free (jobs[1]);
}

static gboolean
got_goaway (gpointer data)
{
  return ph_h2_session_got_goaway (data, NULL);
}

static void
test_goaway (void)
{
  g_autoptr (PhH2Session) session = connect_h2 (MB);
  g_autofree char *head = get_head (8 * MB);
  g_autofree char *pid_path = g_build_filename (cloud->dir, "nghttpx.pid", NULL);
  g_autofree char *pid_text = NULL;
  g_autofree char *auth = basic (cloud->password);
  const char *headers[] = { "proxy-authorization", auth, NULL };
  g_autoptr (GError) error = NULL;
  Job *job = job_new (open_tunnel (session, NULL, 200), head, 0, FALSE);

  job->paused = TRUE;
  g_assert_true (g_file_get_contents (pid_path, &pid_text, NULL, NULL));
  g_assert_cmpint (kill ((pid_t) g_ascii_strtoll (pid_text, NULL, 10), SIGQUIT), ==, 0);
  g_assert_true (run_jobs (&job, 1, got_goaway, session, 30));
  /* No new stream; the open one goes on to its end. */
  g_assert_cmpuint (ph_h2_session_get_available_streams (session), ==, 0);
  g_assert_null (ph_h2_session_open_connect (session, origin, headers, NULL, NULL, &error));
  g_assert_error (error, PH_H2_ERROR, PH_H2_ERROR_NO_STREAM);
  job->paused = FALSE;
  g_assert_true (run_jobs (&job, 1, NULL, NULL, 60));
  assert_download (job, 8 * MB);
  job_free (job);
}

static gboolean
have_nghttpx (void)
{
  const char *env = g_getenv ("PH_NGHTTPX");
  g_autofree char *path = g_find_program_in_path (env != NULL ? env : "nghttpx");

  if (path == NULL && g_file_test ("/usr/sbin/nghttpx", G_FILE_TEST_IS_EXECUTABLE))
    path = g_strdup ("/usr/sbin/nghttpx");
  return path != NULL;
}

static void
test_missing (void)
{
  if (g_strcmp0 (g_getenv ("CI"), "true") == 0)
    g_test_fail_printf ("nghttpx (Debian: nghttp2-proxy) is missing");
  else
    g_test_skip ("nghttpx (Debian: nghttp2-proxy) is missing");
}

int
main (int argc, char **argv)
{
  int ret;

  g_test_init (&argc, &argv, NULL);
  signal (SIGPIPE, SIG_IGN);
  if (!have_nghttpx ())
    {
      g_test_add_func ("/pinhole/h2/missing-peer", test_missing);
      return g_test_run ();
    }
  if (!ph_test_require_tools ())
    return 0;
  cloud = ph_test_cloud_new ("PH_CLOUD_FRONT=nghttpx", "PH_CLOUD_ORIGIN=1", NULL);
  origin = g_strdup_printf ("127.0.0.1:%u", cloud->origin_http_port);
  g_test_add_func ("/pinhole/h2/alpn-two-tunnels-both-ways", test_alpn_and_two_tunnels);
  g_test_add_func ("/pinhole/h2/wrong-password-then-next-stream", test_wrong_password);
  g_test_add_func ("/pinhole/h2/plain-get", test_plain_get);
  g_test_add_func ("/pinhole/h2/back-pressure", test_back_pressure);
  /* Last: it stops nghttpx. */
  g_test_add_func ("/pinhole/h2/goaway", test_goaway);
  ret = g_test_run ();
  ph_test_cloud_free (cloud);
  g_free (origin);
  return ret;
}

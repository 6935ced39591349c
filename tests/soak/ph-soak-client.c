/* SPDX-License-Identifier: GPL-2.0-or-later */
/* ph-soak-client.c — the mixed load of the Pinhole soak (tests/soak/run-soak.sh).
 *
 * One single-threaded epoll loop drives a fixed set of workers against one HTTP proxy for a
 * given time. Each worker runs one client connection ("session") at a time, back to back with a
 * short random pause, until the deadline; then no new session or request starts, sessions in
 * flight finish, and the program prints its counts as key=value lines and exits 0 when every
 * response was the one expected (status, X-Pinhole-Error, body or digest) and nothing else
 * failed, 1 otherwise. The kinds of worker:
 *
 *   tls-down     CONNECT to the origin's https port, TLS inside (CA-verified), 1-3 GETs of
 *                /bytes/N or /chunked/N on that TLS connection; every body byte checked
 *   tunnel-down  the same through CONNECT to the origin's http port, plain HTTP inside
 *   http-get     absolute-form GET http://origin/..., 1-20 requests per keep-alive connection
 *   http-up      absolute-form POST /sha256, 1-3 per connection; the origin's digest and length
 *                of the body must match what was sent
 *   tls-up       POST /sha256 inside a CONNECT + TLS tunnel, 1-3 per tunnel
 *   reset        an abortive close (SO_LINGER 0: RST) at a random point: right after sending
 *                CONNECT, in the middle of a request head, in the middle of the TLS handshake
 *                inside a tunnel, or after a random 0-2 MiB of a 64 MiB download or upload
 *                (tunnel with TLS, tunnel plain, absolute-form)
 *   provoke      requests whose error answer is known in advance: origin-form (405
 *                method-not-allowed), a header line without a colon (400 bad-request), a head that
 *                never ends (408 head-timeout, after the agent's head-timeout), CONNECT and GET to
 *                a closed port (Squid's 503, no X-Pinhole-Error), GET of a missing path (the
 *                origin's 404)
 *   idle         CONNECT to the http port, GET /hello, then idle 20-90 s (cut short at the
 *                deadline), GET /hello again on the same tunnel, close; closed by the proxy
 *                while idle is an error
 *
 * Request sizes: half small (0-16 KiB), 40 % medium (16-512 KiB), 10 % large (0.5-8 MiB
 * down, 0.5-4 MiB up). Everything is on loopback; the origin is ph-test-origin, whose bodies are
 * the pattern of tests/cloud/ph-test-cloud.h. */

#define _GNU_SOURCE
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <gio/gio.h>
#include <gnutls/gnutls.h>
#include <gnutls/x509.h>

#include "../cloud/ph-test-cloud.h"

#define SOAK_HEAD_MAX 16384
#define SOAK_IO_CHUNK (64 * 1024)
#define SOAK_UP_CHUNK 16384
#define SOAK_SMALL_BODY_MAX 8192
#define SOAK_TICK_MS 20
#define SOAK_BIG ((guint64) 64 << 20) /* the size of transfers a reset cuts short */
#define SOAK_ERROR_REPORTS 25

typedef enum
{
  K_TLS_DOWN,
  K_TUNNEL_DOWN,
  K_HTTP_GET,
  K_HTTP_UP,
  K_TLS_UP,
  K_RESET,
  K_PROVOKE,
  K_IDLE,
  K_LAST
} Kind;

static const char *const kind_names[]
    = { "tls-down", "tunnel-down", "http-get", "http-up", "tls-up", "reset", "provoke", "idle" };

typedef enum
{
  T_ABSOLUTE,     /* requests to the proxy in absolute form */
  T_TUNNEL_PLAIN, /* CONNECT, then plain HTTP inside */
  T_TUNNEL_TLS,   /* CONNECT, then TLS with the origin inside */
} Transport;

typedef enum
{
  V_PATTERN, /* the body is expect_len pattern bytes */
  V_DIGEST,  /* the body is "<sha256 hex of the upload> <length>\n" */
  V_HELLO,   /* the body is "hello\n" */
  V_ANY,     /* provoked: only status and X-Pinhole-Error are checked */
} Verify;

typedef enum
{
  RST_NONE,
  RST_AFTER_CONNECT_SENT,
  RST_IN_HEAD,
  RST_IN_TLS_HANDSHAKE,
  RST_MID_DOWNLOAD,
  RST_MID_UPLOAD,
} ResetAt;

typedef enum
{
  S_CONNECTING,
  S_PROXY_SEND,
  S_PROXY_HEAD,
  S_TLS,
  S_REQ_SEND,
  S_BODY_SEND,
  S_RESP_HEAD,
  S_RESP_BODY,
  S_IDLE,
  S_HOLD_HEAD, /* provoke slow-head: part of a head sent, waiting for the proxy's 408 */
} State;

static const char *const state_names[]
    = { "connecting", "proxy-send", "proxy-head", "tls",  "req-send",
        "body-send",  "resp-head",  "resp-body",  "idle", "hold-head" };

typedef enum
{
  B_LENGTH,
  B_CHUNKED,
  B_CLOSE,
} BodyKind;

typedef enum
{
  CH_SIZE,
  CH_EXT,
  CH_DATA,
  CH_DATA_END,
  CH_TRAILER,
  CH_DONE,
} ChunkState;

typedef struct
{
  gboolean active;
  const char *method;
  char *path;        /* origin-form path (absolute form is built from it) */
  char *raw;         /* provoked: these bytes instead of a built request */
  gboolean has_body; /* send Content-Length (POST) */
  guint64 body_len;  /* request body bytes */
  guint64 body_seed; /* pattern offset of the request body */
  Verify verify;
  guint64 expect_len; /* V_PATTERN */
  int expect_status;
  const char *expect_xerr; /* NULL: no X-Pinhole-Error */
  gboolean close_after;    /* Connection: close sent: the connection ends with this response */
} Req;

typedef struct _Soak Soak;
typedef struct _Worker Worker;

typedef struct
{
  Worker *w;
  int fd;
  gnutls_session_t tls;
  State state;
  guint32 events;
  Transport transport;
  const char *authority; /* the origin's host:port (or the provoked target) */
  int connect_expect;    /* status expected for CONNECT (200, or provoked) */
  const char *connect_xerr;
  ResetAt reset_at;
  guint64 reset_after;
  const char *label; /* the variant, for reset and provoke */
  guint requests_left;
  guint requests_done;
  Req req;
  GString *out;
  gsize out_off;
  /* request body */
  guint64 up_left;
  guint64 up_sent;
  GChecksum *up_sum;
  guint8 upbuf[SOAK_UP_CHUNK];
  gsize upbuf_len;
  gsize upbuf_off;
  /* response */
  char head[SOAK_HEAD_MAX + 1];
  gsize head_len;
  int status;
  char xerr[64];
  gboolean resp_close;
  BodyKind body_kind;
  guint64 body_left;
  guint64 body_bytes;
  ChunkState chunk_state;
  guint64 chunk_size;
  gsize trailer_line;
  gboolean pattern_bad;
  guint64 pattern_bad_at;
  GString *small;
  /* timing */
  gint64 t_start;
  gint64 t_last;
  gint64 idle_until;
  gboolean idle_done;
} Sess;

struct _Worker
{
  Soak *soak;
  Kind kind;
  guint index;
  Sess *cur;
  gint64 next_start;
};

struct _Soak
{
  int epfd;
  int sigfd;
  struct sockaddr_storage proxy_addr;
  socklen_t proxy_addr_len;
  char *http_origin;  /* 127.0.0.1:P */
  char *https_origin; /* 127.0.0.1:Q */
  char *closed_target;
  char *tls_name;
  gnutls_certificate_credentials_t creds;
  GRand *rand;
  GPtrArray *workers;
  guint8 *pattern2; /* two periods of the origin's pattern, for windowed compares */
  guint8 *scratch;
  double pause_ms;
  double timeout_s;
  double idle_min_s;
  double idle_max_s;
  gint64 deadline;
  gboolean stopping;
  gboolean signalled;
  guint live;

  guint64 sessions[K_LAST];
  guint64 requests[K_LAST];
  GHashTable *outcomes; /* "kind.status.xerr" -> count */
  GHashTable *resets;   /* label -> count */
  GHashTable *errors;   /* what -> count */
  guint64 error_total;
  guint error_reports;
  guint64 bytes_down;
  guint64 bytes_up;
  guint idle_open;
  guint idle_peak;
};

static gint64
now_us (void)
{
  struct timespec ts;
  clock_gettime (CLOCK_MONOTONIC, &ts);
  return (gint64) ts.tv_sec * G_USEC_PER_SEC + ts.tv_nsec / 1000;
}

static void
count (GHashTable *t, const char *key, guint64 n)
{
  gpointer old = g_hash_table_lookup (t, key);
  guint64 *v = old;
  if (v == NULL)
    {
      v = g_new0 (guint64, 1);
      g_hash_table_insert (t, g_strdup (key), v);
    }
  *v += n;
}

static void sess_end (Sess *s, gboolean graceful);
static void sess_drive (Sess *s);

/* Counts an unexpected event and says what it was (the first ones), with a UTC time stamp so
 * it can be matched with the agent's log. Does not end the session. */
static void G_GNUC_PRINTF (3, 4) note_error (Sess *s, const char *what, const char *fmt, ...)
{
  Soak *k = s->w->soak;
  count (k->errors, what, 1);
  k->error_total++;
  if (k->error_reports < SOAK_ERROR_REPORTS)
    {
      va_list ap;
      g_autofree char *msg = NULL;
      g_autoptr (GDateTime) t = g_date_time_new_now_utc ();
      g_autofree char *stamp = g_date_time_format (t, "%H:%M:%S.%f");
      va_start (ap, fmt);
      msg = g_strdup_vprintf (fmt, ap);
      va_end (ap);
      k->error_reports++;
      if (stamp != NULL && strlen (stamp) > 12)
        stamp[12] = '\0';
      g_printerr ("ph-soak-client: %sZ ERROR %s: worker %s#%u%s%s, state %s, request %u, "
                  "%.1fs in, %" G_GUINT64_FORMAT " up %" G_GUINT64_FORMAT " down: %s\n",
                  stamp ? stamp : "-", what, kind_names[s->w->kind], s->w->index,
                  s->label ? " " : "", s->label ? s->label : "", state_names[s->state],
                  s->requests_done + 1, (now_us () - s->t_start) / 1e6, s->up_sent, s->body_bytes,
                  msg);
    }
}

static void G_GNUC_PRINTF (3, 4) fail (Sess *s, const char *what, const char *fmt, ...)
{
  va_list ap;
  g_autofree char *msg = NULL;
  va_start (ap, fmt);
  msg = g_strdup_vprintf (fmt, ap);
  va_end (ap);
  note_error (s, what, "%s", msg);
  sess_end (s, FALSE);
}

static guint64
rand_range (Soak *k, guint64 lo, guint64 hi)
{
  if (hi <= lo)
    return lo;
  return lo + (guint64) (g_rand_double (k->rand) * (double) (hi - lo + 1));
}

static guint64
rand_size (Soak *k, guint64 large_max)
{
  double p = g_rand_double (k->rand);
  if (p < 0.5)
    return rand_range (k, 0, 16 << 10);
  if (p < 0.9)
    return rand_range (k, 16 << 10, 512 << 10);
  return rand_range (k, 512 << 10, large_max);
}

static gboolean
pattern_ok (Soak *k, const guint8 *data, gsize len, guint64 offset, guint64 *bad_at)
{
  while (len > 0)
    {
      gsize at = offset % PH_TEST_PATTERN_PERIOD;
      gsize n = MIN (len, (gsize) PH_TEST_PATTERN_PERIOD);
      if (memcmp (data, k->pattern2 + at, n) != 0)
        {
          for (gsize i = 0; i < n; i++)
            if (data[i] != k->pattern2[at + i])
              {
                *bad_at = offset + i;
                break;
              }
          return FALSE;
        }
      data += n;
      len -= n;
      offset += n;
    }
  return TRUE;
}

static void
want (Sess *s, guint32 events)
{
  struct epoll_event ev = { .events = events, .data.ptr = s };
  if (s->events == events)
    return;
  epoll_ctl (s->w->soak->epfd, s->events == 0 ? EPOLL_CTL_ADD : EPOLL_CTL_MOD, s->fd, &ev);
  s->events = events;
}

/* I/O on the session: >0 bytes, 0 end of stream, -EAGAIN, -1 failure (*why set). */
static gssize
io_recv (Sess *s, void *buf, gsize len, const char **why)
{
  for (;;)
    {
      gssize n;
      if (s->tls != NULL)
        {
          n = gnutls_record_recv (s->tls, buf, len);
          if (n >= 0)
            return n;
          if (n == GNUTLS_E_AGAIN)
            return -EAGAIN;
          if (n == GNUTLS_E_INTERRUPTED)
            continue;
          if (n == GNUTLS_E_PREMATURE_TERMINATION)
            return 0;
          if (!gnutls_error_is_fatal (n))
            continue;
          *why = gnutls_strerror (n);
          return -1;
        }
      n = recv (s->fd, buf, len, 0);
      if (n >= 0)
        return n;
      if (errno == EINTR)
        continue;
      if (errno == EAGAIN || errno == EWOULDBLOCK)
        return -EAGAIN;
      *why = g_strerror (errno);
      return -1;
    }
}

static gssize
io_send (Sess *s, const void *buf, gsize len, const char **why)
{
  for (;;)
    {
      gssize n;
      if (s->tls != NULL)
        {
          n = gnutls_record_send (s->tls, buf, len);
          if (n >= 0)
            return n;
          if (n == GNUTLS_E_AGAIN)
            return -EAGAIN;
          if (n == GNUTLS_E_INTERRUPTED)
            continue;
          *why = gnutls_strerror (n);
          return -1;
        }
      n = send (s->fd, buf, len, MSG_NOSIGNAL);
      if (n >= 0)
        return n;
      if (errno == EINTR)
        continue;
      if (errno == EAGAIN || errno == EWOULDBLOCK)
        return -EAGAIN;
      *why = g_strerror (errno);
      return -1;
    }
}

/* After a failed send: the first line of whatever the proxy answered, if it did (plain only). */
static char *
peek_answer (Sess *s)
{
  char buf[256];
  gssize n;
  if (s->tls != NULL)
    return g_strdup ("-");
  n = recv (s->fd, buf, sizeof buf - 1, MSG_DONTWAIT | MSG_PEEK);
  if (n <= 0)
    return g_strdup ("nothing");
  buf[n] = '\0';
  buf[strcspn (buf, "\r\n")] = '\0';
  return g_strdup (buf);
}

static void
req_clear (Req *r)
{
  g_free (r->path);
  g_free (r->raw);
  memset (r, 0, sizeof *r);
}

/* --- the session --- */

static void
sess_free (Sess *s)
{
  if (s->tls != NULL)
    gnutls_deinit (s->tls);
  if (s->fd >= 0)
    close (s->fd);
  req_clear (&s->req);
  if (s->out != NULL)
    g_string_free (s->out, TRUE);
  if (s->small != NULL)
    g_string_free (s->small, TRUE);
  if (s->up_sum != NULL)
    g_checksum_free (s->up_sum);
  g_free (s);
}

/* Ends the session: graceful (close_notify, drain, FIN) or abortive (RST). The worker starts
 * its next one after a pause. */
static void
sess_end_full (Sess *s, gboolean graceful, gboolean reset)
{
  Worker *w = s->w;
  Soak *k = w->soak;

  if (s->fd >= 0)
    {
      if (reset)
        {
          struct linger lg = { 1, 0 };
          setsockopt (s->fd, SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
        }
      else if (graceful)
        {
          char sink[4096];
          if (s->tls != NULL)
            gnutls_bye (s->tls, GNUTLS_SHUT_WR);
          shutdown (s->fd, SHUT_WR);
          /* unread bytes at close() would turn our FIN into a reset */
          for (int i = 0; i < 8 && recv (s->fd, sink, sizeof sink, MSG_DONTWAIT) > 0; i++)
            ;
        }
      epoll_ctl (k->epfd, EPOLL_CTL_DEL, s->fd, NULL);
    }
  if (w->kind == K_IDLE && s->idle_done == FALSE && s->requests_done >= 1)
    k->idle_open--;
  w->cur = NULL;
  w->next_start = now_us () + (gint64) (g_rand_double (k->rand) * k->pause_ms * 1000);
  k->live--;
  sess_free (s);
}

static void
sess_end (Sess *s, gboolean graceful)
{
  sess_end_full (s, graceful, FALSE);
}

static void
sess_reset (Sess *s)
{
  count (s->w->soak->resets, s->label, 1);
  s->w->soak->requests[K_RESET]++;
  sess_end_full (s, FALSE, TRUE);
}

static void
set_out (Sess *s, GString *text)
{
  if (s->out != NULL)
    g_string_free (s->out, TRUE);
  s->out = text;
  s->out_off = 0;
}

/* The next request of the session, by kind. */
static void
plan_request (Sess *s)
{
  Soak *k = s->w->soak;
  Req *r = &s->req;
  double p = g_rand_double (k->rand);

  req_clear (r);
  r->active = TRUE;
  r->method = "GET";
  r->expect_status = 200;
  switch (s->w->kind)
    {
      case K_TLS_DOWN:
      case K_TUNNEL_DOWN:
      case K_HTTP_GET:
        if (s->w->kind == K_HTTP_GET && p < 0.15)
          {
            r->path = g_strdup ("/hello");
            r->verify = V_HELLO;
          }
        else
          {
            r->expect_len = rand_size (k, 8 << 20);
            r->verify = V_PATTERN;
            r->path = g_strdup_printf (p < 0.4 ? "/chunked/%" G_GUINT64_FORMAT
                                               : "/bytes/%" G_GUINT64_FORMAT,
                                       r->expect_len);
          }
        break;
      case K_HTTP_UP:
      case K_TLS_UP:
        r->method = "POST";
        r->path = g_strdup ("/sha256");
        r->has_body = TRUE;
        r->body_len = rand_size (k, 4 << 20);
        r->body_seed = rand_range (k, 0, PH_TEST_PATTERN_PERIOD - 1);
        r->verify = V_DIGEST;
        break;
      case K_IDLE:
        r->path = g_strdup ("/hello");
        r->verify = V_HELLO;
        break;
      case K_RESET:
        /* what the reset interrupts */
        if (s->reset_at == RST_MID_UPLOAD)
          {
            r->method = "POST";
            r->path = g_strdup ("/sha256");
            r->has_body = TRUE;
            r->body_len = SOAK_BIG;
            r->verify = V_DIGEST;
          }
        else if (s->reset_at == RST_IN_HEAD)
          {
            r->raw = g_strdup_printf ("GET http://%s/bytes/1024 HTTP/1.1\r\nHost: %s\r\nUser-Ag",
                                      k->http_origin, k->http_origin);
          }
        else
          {
            r->path = g_strdup_printf ("/bytes/%" G_GUINT64_FORMAT, SOAK_BIG);
            r->expect_len = SOAK_BIG;
            r->verify = V_PATTERN;
          }
        break;
      case K_PROVOKE:
        r->verify = V_ANY;
        r->close_after = TRUE;
        if (g_str_equal (s->label, "origin-form"))
          {
            r->raw = g_strdup_printf ("GET /hello HTTP/1.1\r\nHost: %s\r\n\r\n", k->http_origin);
            r->expect_status = 405;
            r->expect_xerr = "method-not-allowed";
          }
        else if (g_str_equal (s->label, "no-colon"))
          {
            r->raw = g_strdup_printf ("GET http://%s/hello HTTP/1.1\r\nHost: %s\r\n"
                                      "A header line without a colon\r\n\r\n",
                                      k->http_origin, k->http_origin);
            r->expect_status = 400;
            r->expect_xerr = "bad-request";
          }
        else if (g_str_equal (s->label, "slow-head"))
          {
            r->raw = g_strdup_printf ("GET http://%s/hello HTTP/1.1\r\nHost: %s\r\n",
                                      k->http_origin, k->http_origin);
            r->expect_status = 408;
            r->expect_xerr = "head-timeout";
          }
        else if (g_str_equal (s->label, "get-closed-port"))
          {
            r->raw = g_strdup_printf ("GET http://%s/ HTTP/1.1\r\nHost: %s\r\n"
                                      "Connection: close\r\n\r\n",
                                      k->closed_target, k->closed_target);
            r->expect_status = 503;
          }
        else /* missing-path */
          {
            r->raw = g_strdup_printf ("GET http://%s/no-such-path HTTP/1.1\r\nHost: %s\r\n"
                                      "Connection: close\r\n\r\n",
                                      k->http_origin, k->http_origin);
            r->expect_status = 404;
          }
        break;
      case K_LAST:
        g_assert_not_reached ();
    }
}

static GString *
build_request (Sess *s)
{
  Soak *k = s->w->soak;
  Req *r = &s->req;
  GString *g = g_string_new (NULL);

  if (r->raw != NULL)
    {
      g_string_assign (g, r->raw);
      return g;
    }
  if (s->transport == T_ABSOLUTE)
    g_string_append_printf (g, "%s http://%s%s HTTP/1.1\r\n", r->method, s->authority, r->path);
  else
    g_string_append_printf (g, "%s %s HTTP/1.1\r\n", r->method, r->path);
  g_string_append_printf (g, "Host: %s\r\nUser-Agent: ph-soak-client/1\r\nAccept: */*\r\n",
                          s->authority);
  if (r->has_body)
    g_string_append_printf (g,
                            "Content-Type: application/octet-stream\r\n"
                            "Content-Length: %" G_GUINT64_FORMAT "\r\n",
                            r->body_len);
  g_string_append (g,
                   r->close_after ? "Connection: close\r\n\r\n" : "Connection: keep-alive\r\n\r\n");
  (void) k;
  return g;
}

static void
start_request (Sess *s)
{
  plan_request (s);
  set_out (s, build_request (s));
  s->up_left = s->req.body_len;
  s->up_sent = 0;
  s->upbuf_len = s->upbuf_off = 0;
  if (s->up_sum != NULL)
    g_checksum_reset (s->up_sum);
  else if (s->req.has_body)
    s->up_sum = g_checksum_new (G_CHECKSUM_SHA256);
  s->head_len = 0;
  s->status = 0;
  s->xerr[0] = '\0';
  s->resp_close = FALSE;
  s->body_bytes = 0;
  s->pattern_bad = FALSE;
  if (s->small != NULL)
    g_string_truncate (s->small, 0);
  s->state = S_REQ_SEND;
}

static gboolean
start_tls (Sess *s, const char **why)
{
  Soak *k = s->w->soak;
  static const gnutls_datum_t alpn = { (unsigned char *) "http/1.1", 8 };
  int rc = gnutls_init (&s->tls, GNUTLS_CLIENT | GNUTLS_NONBLOCK);
  if (rc == GNUTLS_E_SUCCESS)
    rc = gnutls_set_default_priority (s->tls);
  if (rc == GNUTLS_E_SUCCESS)
    rc = gnutls_credentials_set (s->tls, GNUTLS_CRD_CERTIFICATE, k->creds);
  if (rc != GNUTLS_E_SUCCESS)
    {
      *why = gnutls_strerror (rc);
      return FALSE;
    }
  gnutls_server_name_set (s->tls, GNUTLS_NAME_DNS, k->tls_name, strlen (k->tls_name));
  gnutls_alpn_set_protocols (s->tls, &alpn, 1, 0);
  gnutls_session_set_verify_cert (s->tls, k->tls_name, 0);
  gnutls_transport_set_int (s->tls, s->fd);
  return TRUE;
}

/* Appends to the head; returns bytes used or -1 when too large; *complete once blank line. */
static gssize
head_feed (Sess *s, const char *data, gsize len, gboolean *complete)
{
  gsize start = s->head_len > 3 ? s->head_len - 3 : 0;
  gsize room = SOAK_HEAD_MAX - s->head_len;
  gsize take = MIN (len, room);
  char *end;

  memcpy (s->head + s->head_len, data, take);
  s->head_len += take;
  s->head[s->head_len] = '\0';
  end = g_strstr_len (s->head + start, s->head_len - start, "\r\n\r\n");
  *complete = FALSE;
  if (end == NULL)
    return take == len ? (gssize) take : -1;
  {
    gsize head_end = end + 4 - s->head;
    gsize used = take - (s->head_len - head_end);
    s->head_len = head_end;
    s->head[head_end] = '\0';
    *complete = TRUE;
    return used;
  }
}

/* Status, framing, X-Pinhole-Error and Connection of a response head. */
static gboolean
parse_head (Sess *s, gboolean is_connect)
{
  g_auto (GStrv) lines = NULL;
  if (s->head_len < 12 || strncmp (s->head, "HTTP/1.", 7) != 0 || s->head[8] != ' ')
    return FALSE;
  s->status = atoi (s->head + 9);
  if (s->status < 100 || s->status > 999)
    return FALSE;
  s->xerr[0] = '\0';
  s->resp_close = FALSE;
  s->body_kind = B_CLOSE;
  s->body_left = 0;
  s->body_bytes = 0;
  lines = g_strsplit (s->head, "\r\n", -1);
  for (guint i = 1; lines[i] != NULL; i++)
    {
      const char *l = lines[i];
      if (g_ascii_strncasecmp (l, "content-length:", 15) == 0 && s->body_kind != B_CHUNKED)
        {
          s->body_kind = B_LENGTH;
          s->body_left = g_ascii_strtoull (l + 15, NULL, 10);
        }
      else if (g_ascii_strncasecmp (l, "transfer-encoding:", 18) == 0
               && strstr (l + 18, "chunked") != NULL)
        {
          s->body_kind = B_CHUNKED;
          s->chunk_state = CH_SIZE;
          s->chunk_size = 0;
        }
      else if (g_ascii_strncasecmp (l, "x-pinhole-error:", 16) == 0)
        {
          g_strlcpy (s->xerr, l + 16, sizeof s->xerr);
          g_strstrip (s->xerr);
        }
      else if (g_ascii_strncasecmp (l, "connection:", 11) == 0 && strstr (l + 11, "close") != NULL)
        s->resp_close = TRUE;
    }
  if (s->status == 204 || s->status == 304 || (s->status >= 100 && s->status < 200)
      || (is_connect && s->status / 100 == 2))
    {
      s->body_kind = B_LENGTH;
      s->body_left = 0;
    }
  if (s->body_kind == B_CLOSE)
    s->resp_close = TRUE;
  return TRUE;
}

/* Body bytes go to the checks. */
static void
body_data (Sess *s, const guint8 *data, gsize len)
{
  Soak *k = s->w->soak;
  if (len == 0)
    return;
  if (s->req.verify == V_PATTERN)
    {
      if (!s->pattern_bad && !pattern_ok (k, data, len, s->body_bytes, &s->pattern_bad_at))
        s->pattern_bad = TRUE;
    }
  else if (s->small->len < SOAK_SMALL_BODY_MAX)
    g_string_append_len (s->small, (const char *) data,
                         MIN (len, SOAK_SMALL_BODY_MAX - s->small->len));
  s->body_bytes += len;
  k->bytes_down += len;
}

/* Consumes body bytes; returns TRUE once complete; *bad on broken chunking. */
static gboolean
body_feed (Sess *s, const guint8 *data, gsize len, gsize *used, gboolean *bad)
{
  gsize i = 0;
  *used = len;
  switch (s->body_kind)
    {
      case B_CLOSE:
        body_data (s, data, len);
        return FALSE;
      case B_LENGTH:
        {
          guint64 take = MIN ((guint64) len, s->body_left);
          body_data (s, data, take);
          s->body_left -= take;
          *used = take;
          return s->body_left == 0;
        }
      case B_CHUNKED:
        while (i < len)
          {
            char ch = data[i];
            switch (s->chunk_state)
              {
                case CH_SIZE:
                  i++;
                  if (g_ascii_isxdigit (ch))
                    s->chunk_size = s->chunk_size * 16 + g_ascii_xdigit_value (ch);
                  else if (ch == ';' || ch == '\r' || ch == ' ')
                    s->chunk_state = CH_EXT;
                  else if (ch == '\n')
                    s->chunk_state = s->chunk_size == 0 ? CH_TRAILER : CH_DATA;
                  else
                    {
                      *bad = TRUE;
                      return FALSE;
                    }
                  if (s->chunk_state == CH_TRAILER)
                    s->trailer_line = 0;
                  break;
                case CH_EXT:
                  i++;
                  if (ch == '\n')
                    {
                      s->chunk_state = s->chunk_size == 0 ? CH_TRAILER : CH_DATA;
                      s->trailer_line = 0;
                    }
                  break;
                case CH_DATA:
                  {
                    guint64 take = MIN ((guint64) (len - i), s->chunk_size);
                    body_data (s, data + i, take);
                    s->chunk_size -= take;
                    i += take;
                    if (s->chunk_size == 0)
                      s->chunk_state = CH_DATA_END;
                  }
                  break;
                case CH_DATA_END:
                  i++;
                  if (ch == '\n')
                    {
                      s->chunk_state = CH_SIZE;
                      s->chunk_size = 0;
                    }
                  break;
                case CH_TRAILER:
                  i++;
                  if (ch == '\n')
                    {
                      if (s->trailer_line == 0)
                        {
                          s->chunk_state = CH_DONE;
                          *used = i;
                          return TRUE;
                        }
                      s->trailer_line = 0;
                    }
                  else if (ch != '\r')
                    s->trailer_line++;
                  break;
                case CH_DONE:
                  *used = i;
                  return TRUE;
              }
          }
        return s->chunk_state == CH_DONE;
    }
  return FALSE;
}

/* A complete response: count it by kind, status and X-Pinhole-Error; check it. Returns FALSE
 * (after ending the session) when it was not the expected one. */
static gboolean
response_done (Sess *s)
{
  Soak *k = s->w->soak;
  Req *r = &s->req;
  g_autofree char *key
      = g_strdup_printf ("%s.%d.%s", kind_names[s->w->kind], s->status, s->xerr[0] ? s->xerr : "-");
  int line_len = (int) strcspn (s->head, "\r\n");

  count (k->outcomes, key, 1);
  if (s->status != r->expect_status || g_strcmp0 (s->xerr[0] ? s->xerr : NULL, r->expect_xerr) != 0)
    {
      fail (s, "unexpected-response", "got '%.*s' X-Pinhole-Error '%s', wanted %d %s; body: %.120s",
            line_len, s->head, s->xerr, r->expect_status, r->expect_xerr ? r->expect_xerr : "-",
            s->small ? s->small->str : "");
      return FALSE;
    }
  switch (r->verify)
    {
      case V_PATTERN:
        if (s->body_bytes != r->expect_len)
          {
            fail (s, "short-body",
                  "%s: %" G_GUINT64_FORMAT " body bytes, wanted %" G_GUINT64_FORMAT, r->path,
                  s->body_bytes, r->expect_len);
            return FALSE;
          }
        if (s->pattern_bad)
          {
            fail (s, "body-mismatch", "%s: wrong byte at offset %" G_GUINT64_FORMAT, r->path,
                  s->pattern_bad_at);
            return FALSE;
          }
        break;
      case V_DIGEST:
        {
          g_autofree char *want = g_strdup_printf ("%s %" G_GUINT64_FORMAT "\n",
                                                   g_checksum_get_string (s->up_sum), r->body_len);
          if (!g_str_equal (s->small->str, want))
            {
              fail (s, "digest-mismatch", "origin says '%.80s', sent '%.80s'", s->small->str, want);
              return FALSE;
            }
        }
        break;
      case V_HELLO:
        if (!g_str_equal (s->small->str, "hello\n"))
          {
            fail (s, "body-mismatch", "/hello answered '%.40s'", s->small->str);
            return FALSE;
          }
        break;
      case V_ANY:
        break;
    }
  k->requests[s->w->kind]++;
  s->requests_done++;
  r->active = FALSE;
  return TRUE;
}

/* What follows a good response: the next request, idling, or the end. */
static void
after_response (Sess *s)
{
  Soak *k = s->w->soak;

  if (s->requests_left > 0)
    s->requests_left--;
  if (s->resp_close || s->req.close_after || s->requests_left == 0
      || (k->stopping && s->w->kind != K_IDLE))
    {
      if (s->w->kind == K_IDLE && s->requests_done >= 2)
        {
          s->idle_done = TRUE;
          k->idle_open--;
        }
      sess_end (s, TRUE);
      return;
    }
  if (s->w->kind == K_IDLE && s->requests_done == 1)
    {
      double hold = k->idle_min_s + g_rand_double (k->rand) * (k->idle_max_s - k->idle_min_s);
      s->idle_until = now_us () + (gint64) (hold * G_USEC_PER_SEC);
      s->state = S_IDLE;
      k->idle_open++;
      k->idle_peak = MAX (k->idle_peak, k->idle_open);
      want (s, EPOLLIN);
      return;
    }
  start_request (s);
}

typedef enum
{
  STEP_AGAIN,
  STEP_WAIT,
  STEP_GONE,
} Step;

static Step
step_send (Sess *s)
{
  const char *why = "?";
  while (s->out_off < s->out->len)
    {
      gssize n = io_send (s, s->out->str + s->out_off, s->out->len - s->out_off, &why);
      if (n == -EAGAIN)
        {
          want (s, EPOLLOUT);
          return STEP_WAIT;
        }
      if (n < 0)
        {
          g_autofree char *ans = peek_answer (s);
          fail (s, "send-failed", "send head: %s (proxy answered: %s)", why, ans);
          return STEP_GONE;
        }
      s->out_off += n;
      s->t_last = now_us ();
    }
  return STEP_AGAIN;
}

static Step
step (Sess *s)
{
  Soak *k = s->w->soak;
  const char *why = "?";

  switch (s->state)
    {
      case S_CONNECTING:
        {
          int err = 0;
          socklen_t elen = sizeof err;
          getsockopt (s->fd, SOL_SOCKET, SO_ERROR, &err, &elen);
          if (err == EINPROGRESS || err == EALREADY)
            {
              want (s, EPOLLOUT);
              return STEP_WAIT;
            }
          if (err != 0)
            {
              fail (s, "connect-failed", "connect to the proxy: %s", g_strerror (err));
              return STEP_GONE;
            }
          if (s->transport == T_ABSOLUTE)
            start_request (s);
          else
            {
              GString *g = g_string_new (NULL);
              g_string_printf (g,
                               "CONNECT %s HTTP/1.1\r\nHost: %s\r\n"
                               "User-Agent: ph-soak-client/1\r\n\r\n",
                               s->authority, s->authority);
              set_out (s, g);
              s->state = S_PROXY_SEND;
            }
          return STEP_AGAIN;
        }

      case S_PROXY_SEND:
        {
          Step st = step_send (s);
          if (st != STEP_AGAIN)
            return st;
          if (s->reset_at == RST_AFTER_CONNECT_SENT)
            {
              sess_reset (s);
              return STEP_GONE;
            }
          s->head_len = 0;
          s->state = S_PROXY_HEAD;
          return STEP_AGAIN;
        }

      case S_REQ_SEND:
        {
          Step st = step_send (s);
          if (st != STEP_AGAIN)
            return st;
          if (s->reset_at == RST_IN_HEAD)
            {
              sess_reset (s);
              return STEP_GONE;
            }
          if (s->w->kind == K_PROVOKE && g_str_equal (s->label, "slow-head"))
            {
              s->state = S_HOLD_HEAD;
              return STEP_AGAIN;
            }
          s->state = s->req.has_body ? S_BODY_SEND : S_RESP_HEAD;
          return STEP_AGAIN;
        }

      case S_BODY_SEND:
        for (;;)
          {
            gssize n;
            if (s->upbuf_off == s->upbuf_len)
              {
                guint64 pos;
                gsize at;
                if (s->up_left == 0)
                  break;
                if (s->reset_at == RST_MID_UPLOAD && s->up_sent >= s->reset_after)
                  {
                    sess_reset (s);
                    return STEP_GONE;
                  }
                pos = s->req.body_seed + s->up_sent;
                at = pos % PH_TEST_PATTERN_PERIOD;
                s->upbuf_len = MIN (s->up_left, (guint64) SOAK_UP_CHUNK);
                memcpy (s->upbuf, k->pattern2 + at, s->upbuf_len);
                s->upbuf_off = 0;
                g_checksum_update (s->up_sum, s->upbuf, s->upbuf_len);
              }
            /* TLS: the same buffer and length again after AGAIN, as GnuTLS wants */
            n = io_send (s, s->upbuf + s->upbuf_off, s->upbuf_len - s->upbuf_off, &why);
            if (n == -EAGAIN)
              {
                want (s, EPOLLOUT);
                return STEP_WAIT;
              }
            if (n < 0)
              {
                g_autofree char *ans = peek_answer (s);
                fail (s, "send-failed", "send body: %s (proxy answered: %s)", why, ans);
                return STEP_GONE;
              }
            s->upbuf_off += n;
            s->up_left -= n;
            s->up_sent += n;
            k->bytes_up += n;
            s->t_last = now_us ();
          }
        s->state = S_RESP_HEAD;
        return STEP_AGAIN;

      case S_TLS:
        for (;;)
          {
            int rc = gnutls_handshake (s->tls);
            if (rc == GNUTLS_E_SUCCESS)
              break;
            if (rc == GNUTLS_E_AGAIN || rc == GNUTLS_E_INTERRUPTED)
              {
                if (s->reset_at == RST_IN_TLS_HANDSHAKE)
                  {
                    sess_reset (s);
                    return STEP_GONE;
                  }
                s->t_last = now_us ();
                want (s, gnutls_record_get_direction (s->tls) ? EPOLLOUT : EPOLLIN);
                return STEP_WAIT;
              }
            if (gnutls_error_is_fatal (rc))
              {
                fail (s, "tls-failed", "TLS with the origin: %s", gnutls_strerror (rc));
                return STEP_GONE;
              }
          }
        start_request (s);
        return STEP_AGAIN;

      case S_IDLE:
      case S_HOLD_HEAD:
      case S_PROXY_HEAD:
      case S_RESP_HEAD:
      case S_RESP_BODY:
        for (;;)
          {
            gssize n = io_recv (s, k->scratch, SOAK_IO_CHUNK, &why);
            gsize off = 0;
            if (n == -EAGAIN)
              {
                want (s, EPOLLIN);
                return STEP_WAIT;
              }
            if (n <= 0)
              {
                if (n == 0 && s->state == S_RESP_BODY && s->body_kind == B_CLOSE)
                  {
                    if (response_done (s))
                      {
                        s->resp_close = TRUE;
                        after_response (s);
                      }
                    return STEP_GONE;
                  }
                fail (s,
                      s->state == S_IDLE ? "idle-tunnel-closed"
                      : n == 0           ? "eof"
                                         : "recv-failed",
                      "%s%s (head so far: %.60s)",
                      n == 0 ? "closed by the proxy" : "recv: ", n == 0 ? "" : why,
                      s->head_len ? s->head : "");
                return STEP_GONE;
              }
            s->t_last = now_us ();
            if (s->state == S_IDLE)
              {
                fail (s, "idle-tunnel-bytes", "%zd unexpected bytes on an idle tunnel", n);
                return STEP_GONE;
              }
            while (off < (gsize) n)
              {
                if (s->state == S_PROXY_HEAD || s->state == S_RESP_HEAD || s->state == S_HOLD_HEAD)
                  {
                    gboolean complete = FALSE;
                    gboolean is_connect = s->state == S_PROXY_HEAD;
                    gssize used
                        = head_feed (s, (const char *) k->scratch + off, n - off, &complete);
                    if (used < 0)
                      {
                        fail (s, "bad-response", "response head too large");
                        return STEP_GONE;
                      }
                    off += used;
                    if (!complete)
                      continue;
                    if (!parse_head (s, is_connect))
                      {
                        fail (s, "bad-response", "bad status line: %.60s", s->head);
                        return STEP_GONE;
                      }
                    if (s->status == 100)
                      {
                        s->head_len = 0;
                        continue;
                      }
                    if (is_connect)
                      {
                        g_autofree char *key
                            = g_strdup_printf ("%s.connect.%d.%s", kind_names[s->w->kind],
                                               s->status, s->xerr[0] ? s->xerr : "-");
                        if (s->status / 100 == 2)
                          count (k->outcomes, key, 1);
                        if (s->status != s->connect_expect
                            || g_strcmp0 (s->xerr[0] ? s->xerr : NULL, s->connect_xerr) != 0)
                          {
                            if (s->status / 100 != 2)
                              count (k->outcomes, key, 1);
                            fail (s, "unexpected-response",
                                  "CONNECT %s answered '%.*s' X-Pinhole-Error '%s'", s->authority,
                                  (int) strcspn (s->head, "\r\n"), s->head, s->xerr);
                            return STEP_GONE;
                          }
                        if (s->status / 100 != 2)
                          {
                            /* a provoked refusal of CONNECT: its body, then the end */
                            s->req.active = TRUE;
                            s->req.verify = V_ANY;
                            s->req.expect_status = s->connect_expect;
                            s->req.expect_xerr = s->connect_xerr;
                            s->req.close_after = TRUE;
                            s->state = S_RESP_BODY;
                            if (s->body_kind == B_LENGTH && s->body_left == 0)
                              goto body_done;
                            continue;
                          }
                        if (off != (gsize) n)
                          {
                            fail (s, "bad-response", "bytes after the CONNECT answer");
                            return STEP_GONE;
                          }
                        if (s->transport == T_TUNNEL_TLS)
                          {
                            if (!start_tls (s, &why))
                              {
                                fail (s, "tls-failed", "%s", why);
                                return STEP_GONE;
                              }
                            s->state = S_TLS;
                          }
                        else
                          start_request (s);
                        return STEP_AGAIN;
                      }
                    s->state = S_RESP_BODY;
                    if (s->reset_at != RST_NONE)
                      {
                        /* the reset cuts the body short: the head is all there is to check */
                        g_autofree char *key
                            = g_strdup_printf ("%s.%d.%s", kind_names[s->w->kind], s->status,
                                               s->xerr[0] ? s->xerr : "-");
                        count (k->outcomes, key, 1);
                        if (s->status != 200 || s->xerr[0] != '\0')
                          {
                            fail (s, "unexpected-response", "got '%.*s' X-Pinhole-Error '%s'",
                                  (int) strcspn (s->head, "\r\n"), s->head, s->xerr);
                            return STEP_GONE;
                          }
                      }
                    if (s->body_kind == B_LENGTH && s->body_left == 0)
                      goto body_done;
                    continue;
                  }
                /* S_RESP_BODY */
                {
                  gboolean bad = FALSE;
                  gsize used = 0;
                  gboolean done = body_feed (s, k->scratch + off, n - off, &used, &bad);
                  off += used;
                  if (bad)
                    {
                      fail (s, "bad-response", "bad chunked body");
                      return STEP_GONE;
                    }
                  if (s->reset_at == RST_MID_DOWNLOAD && s->body_bytes >= s->reset_after)
                    {
                      sess_reset (s);
                      return STEP_GONE;
                    }
                  if (done)
                    goto body_done;
                }
              }
            continue;
          body_done:
            if (off != (gsize) n)
              {
                fail (s, "bad-response", "%zu bytes after the response", (gsize) n - off);
                return STEP_GONE;
              }
            if (!response_done (s))
              return STEP_GONE;
            {
              gboolean ends = s->resp_close || s->req.close_after || s->requests_left <= 1
                              || (k->stopping && s->w->kind != K_IDLE);
              after_response (s);
              if (ends)
                return STEP_GONE;
              return s->state == S_IDLE ? STEP_WAIT : STEP_AGAIN;
            }
          }
    }
  return STEP_WAIT;
}

static void
sess_drive (Sess *s)
{
  while (step (s) == STEP_AGAIN)
    ;
}

/* --- workers --- */

static void
sess_start (Worker *w)
{
  Soak *k = w->soak;
  Sess *s = g_new0 (Sess, 1);
  int one = 1;
  int rc;
  double p = g_rand_double (k->rand);

  s->w = w;
  s->fd = -1;
  s->t_start = s->t_last = now_us ();
  s->connect_expect = 200;
  s->small = g_string_new (NULL);
  w->cur = s;
  k->live++;
  k->sessions[w->kind]++;
  switch (w->kind)
    {
      case K_TLS_DOWN:
      case K_TLS_UP:
        s->transport = T_TUNNEL_TLS;
        s->authority = k->https_origin;
        s->requests_left = rand_range (k, 1, 3);
        break;
      case K_TUNNEL_DOWN:
        s->transport = T_TUNNEL_PLAIN;
        s->authority = k->http_origin;
        s->requests_left = rand_range (k, 1, 3);
        break;
      case K_HTTP_GET:
        s->transport = T_ABSOLUTE;
        s->authority = k->http_origin;
        s->requests_left = rand_range (k, 1, 20);
        break;
      case K_HTTP_UP:
        s->transport = T_ABSOLUTE;
        s->authority = k->http_origin;
        s->requests_left = rand_range (k, 1, 3);
        break;
      case K_IDLE:
        s->transport = T_TUNNEL_PLAIN;
        s->authority = k->http_origin;
        s->requests_left = 2;
        break;
      case K_RESET:
        {
          static const struct
          {
            const char *label;
            ResetAt at;
            Transport t;
          } v[] = {
            { "after-connect-sent", RST_AFTER_CONNECT_SENT, T_TUNNEL_TLS },
            { "in-request-head", RST_IN_HEAD, T_ABSOLUTE },
            { "in-tls-handshake", RST_IN_TLS_HANDSHAKE, T_TUNNEL_TLS },
            { "tls-download", RST_MID_DOWNLOAD, T_TUNNEL_TLS },
            { "tunnel-download", RST_MID_DOWNLOAD, T_TUNNEL_PLAIN },
            { "http-download", RST_MID_DOWNLOAD, T_ABSOLUTE },
            { "tls-upload", RST_MID_UPLOAD, T_TUNNEL_TLS },
            { "tunnel-upload", RST_MID_UPLOAD, T_TUNNEL_PLAIN },
            { "http-upload", RST_MID_UPLOAD, T_ABSOLUTE },
          };
          guint i = (guint) (p * G_N_ELEMENTS (v)) % G_N_ELEMENTS (v);
          s->label = v[i].label;
          s->reset_at = v[i].at;
          s->transport = v[i].t;
          s->authority = s->transport == T_TUNNEL_TLS ? k->https_origin : k->http_origin;
          s->reset_after = rand_range (k, 0, 2 << 20);
          s->requests_left = 1;
        }
        break;
      case K_PROVOKE:
        {
          /* slow-head holds its worker for the agent's head-timeout: rarer */
          static const char *const v[] = { "origin-form",     "no-colon",     "connect-closed-port",
                                           "get-closed-port", "missing-path", "origin-form",
                                           "no-colon",        "missing-path", "slow-head" };
          s->label = v[(guint) (p * G_N_ELEMENTS (v)) % G_N_ELEMENTS (v)];
          s->requests_left = 1;
          s->transport = T_ABSOLUTE;
          s->authority = k->http_origin;
          if (g_str_equal (s->label, "connect-closed-port"))
            {
              s->transport = T_TUNNEL_PLAIN;
              s->authority = k->closed_target;
              s->connect_expect = 503;
            }
        }
        break;
      case K_LAST:
        g_assert_not_reached ();
    }

  s->fd = socket (k->proxy_addr.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (s->fd < 0)
    {
      fail (s, "connect-failed", "socket: %s", g_strerror (errno));
      return;
    }
  setsockopt (s->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  rc = connect (s->fd, (struct sockaddr *) &k->proxy_addr, k->proxy_addr_len);
  s->state = S_CONNECTING;
  if (rc < 0 && errno != EINPROGRESS)
    {
      fail (s, "connect-failed", "connect to the proxy: %s", g_strerror (errno));
      return;
    }
  if (rc == 0)
    sess_drive (s);
  else
    want (s, EPOLLOUT);
}

static void
tick (Soak *k)
{
  gint64 now = now_us ();
  gint64 limit = (gint64) (k->timeout_s * G_USEC_PER_SEC);

  if (!k->stopping && (now >= k->deadline || k->signalled))
    k->stopping = TRUE;
  for (guint i = 0; i < k->workers->len; i++)
    {
      Worker *w = g_ptr_array_index (k->workers, i);
      Sess *s = w->cur;
      if (s == NULL)
        {
          if (!k->stopping && now >= w->next_start)
            sess_start (w);
          continue;
        }
      if (s->state == S_IDLE)
        {
          if (now >= s->idle_until || k->stopping)
            {
              /* the tunnel must still carry a request after idling */
              start_request (s);
              sess_drive (s);
            }
          continue;
        }
      /* slow-head waits for the agent's head-timeout (10 s by default) */
      if (now - s->t_last > limit)
        fail (s, "stalled", "no progress for %.0fs", k->timeout_s);
    }
}

static gboolean
parse_host_port (const char *s, struct sockaddr_storage *ss, socklen_t *len)
{
  g_autofree char *host = NULL;
  const char *colon = strrchr (s, ':');
  struct addrinfo hints
      = { .ai_socktype = SOCK_STREAM, .ai_flags = AI_NUMERICHOST | AI_NUMERICSERV };
  struct addrinfo *res = NULL;
  if (colon == NULL)
    return FALSE;
  host = g_strndup (s, colon - s);
  if (host[0] == '[')
    {
      char *tmp = g_strndup (host + 1, strlen (host) - 2);
      g_free (host);
      host = tmp;
    }
  if (getaddrinfo (host, colon + 1, &hints, &res) != 0)
    return FALSE;
  memcpy (ss, res->ai_addr, res->ai_addrlen);
  *len = res->ai_addrlen;
  freeaddrinfo (res);
  return TRUE;
}

static void
print_table (const char *prefix, GHashTable *t)
{
  g_autoptr (GList) keys = g_list_sort (g_hash_table_get_keys (t), (GCompareFunc) strcmp);
  for (GList *l = keys; l != NULL; l = l->next)
    g_print ("%s.%s=%" G_GUINT64_FORMAT "\n", prefix, (char *) l->data,
             *(guint64 *) g_hash_table_lookup (t, l->data));
}

int
main (int argc, char **argv)
{
  g_autofree char *proxy = NULL;
  g_autofree char *ca_file = NULL;
  g_autofree char *closed = NULL;
  int http_port = 0, https_port = 0;
  double duration = 10;
  double drain = 60;
  gint64 seed = 0;
  int n[K_LAST] = { 3, 2, 5, 2, 2, 3, 2, 16 };
  Soak k = { 0 };
  g_autoptr (GOptionContext) ctx = NULL;
  g_autoptr (GError) error = NULL;
  sigset_t mask;
  struct epoll_event sev = { .events = EPOLLIN, .data.ptr = NULL };
  struct epoll_event evs[128];
  gint64 drain_deadline;
  int rc;
  GOptionEntry entries[] = {
    { "proxy", 'x', 0, G_OPTION_ARG_STRING, &proxy, "The proxy under load", "HOST:PORT" },
    { "http-port", 0, 0, G_OPTION_ARG_INT, &http_port, "The origin's plain port (127.0.0.1)", "P" },
    { "https-port", 0, 0, G_OPTION_ARG_INT, &https_port, "The origin's TLS port (127.0.0.1)", "P" },
    { "ca-file", 0, 0, G_OPTION_ARG_FILENAME, &ca_file, "The origin's CA (PEM)", "FILE" },
    { "closed-target", 0, 0, G_OPTION_ARG_STRING, &closed,
      "A host:port nothing listens on (127.0.0.1:1)", "HOST:PORT" },
    { "duration", 'd', 0, G_OPTION_ARG_DOUBLE, &duration, "Seconds of load (10)", "S" },
    { "drain", 0, 0, G_OPTION_ARG_DOUBLE, &drain,
      "Seconds sessions in flight get to finish after that (60)", "S" },
    { "timeout", 0, 0, G_OPTION_ARG_DOUBLE, &k.timeout_s,
      "A session without progress for S seconds is an error (30)", "S" },
    { "pause", 0, 0, G_OPTION_ARG_DOUBLE, &k.pause_ms,
      "Each worker waits 0..MS between sessions (10)", "MS" },
    { "idle-min", 0, 0, G_OPTION_ARG_DOUBLE, &k.idle_min_s, "Idle tunnels: shortest idle (20)",
      "S" },
    { "idle-max", 0, 0, G_OPTION_ARG_DOUBLE, &k.idle_max_s, "Idle tunnels: longest idle (90)",
      "S" },
    { "seed", 0, 0, G_OPTION_ARG_INT64, &seed, "Random seed (0: from the clock)", "N" },
    { "tls-down", 0, 0, G_OPTION_ARG_INT, &n[K_TLS_DOWN], "Workers of this kind (3)", "N" },
    { "tunnel-down", 0, 0, G_OPTION_ARG_INT, &n[K_TUNNEL_DOWN], "(2)", "N" },
    { "http-get", 0, 0, G_OPTION_ARG_INT, &n[K_HTTP_GET], "(5)", "N" },
    { "http-up", 0, 0, G_OPTION_ARG_INT, &n[K_HTTP_UP], "(2)", "N" },
    { "tls-up", 0, 0, G_OPTION_ARG_INT, &n[K_TLS_UP], "(2)", "N" },
    { "reset", 0, 0, G_OPTION_ARG_INT, &n[K_RESET], "(3)", "N" },
    { "provoke", 0, 0, G_OPTION_ARG_INT, &n[K_PROVOKE], "(2)", "N" },
    { "idle", 0, 0, G_OPTION_ARG_INT, &n[K_IDLE], "Idle tunnels held (16)", "N" },
    { NULL }
  };

  k.timeout_s = 30;
  k.pause_ms = 10;
  k.idle_min_s = 20;
  k.idle_max_s = 90;
  ctx = g_option_context_new ("- the Pinhole soak's mixed load against one proxy");
  g_option_context_add_main_entries (ctx, entries, NULL);
  if (!g_option_context_parse (ctx, &argc, &argv, &error))
    {
      g_printerr ("ph-soak-client: %s\n", error->message);
      return 2;
    }
  if (proxy == NULL || http_port <= 0 || https_port <= 0 || ca_file == NULL || argc != 1)
    {
      g_printerr ("usage: ph-soak-client -x HOST:PORT --http-port P --https-port P --ca-file CA "
                  "[-d SECONDS] (see --help)\n");
      return 2;
    }
  if (!parse_host_port (proxy, &k.proxy_addr, &k.proxy_addr_len))
    {
      g_printerr ("ph-soak-client: bad --proxy %s\n", proxy);
      return 2;
    }
  k.http_origin = g_strdup_printf ("127.0.0.1:%d", http_port);
  k.https_origin = g_strdup_printf ("127.0.0.1:%d", https_port);
  k.closed_target = g_strdup (closed ? closed : "127.0.0.1:1");
  k.tls_name = g_strdup ("localhost");
  if (seed == 0)
    seed = g_get_real_time () ^ getpid ();
  k.rand = g_rand_new_with_seed ((guint32) seed);
  gnutls_global_init ();
  gnutls_certificate_allocate_credentials (&k.creds);
  if (gnutls_certificate_set_x509_trust_file (k.creds, ca_file, GNUTLS_X509_FMT_PEM) <= 0)
    {
      g_printerr ("ph-soak-client: no CA certificate in %s\n", ca_file);
      return 2;
    }
  k.pattern2 = g_malloc (2 * PH_TEST_PATTERN_PERIOD);
  ph_test_pattern_fill (k.pattern2, 2 * PH_TEST_PATTERN_PERIOD, 0);
  k.scratch = g_malloc (SOAK_IO_CHUNK);
  k.outcomes = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, g_free);
  k.resets = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, g_free);
  k.errors = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, g_free);
  k.workers = g_ptr_array_new_with_free_func (g_free);
  for (guint kind = 0; kind < K_LAST; kind++)
    for (int i = 0; i < n[kind]; i++)
      {
        Worker *w = g_new0 (Worker, 1);
        w->soak = &k;
        w->kind = kind;
        w->index = i;
        /* idle tunnels open at once; the rest are spread over the first 100 ms */
        w->next_start = now_us () + (kind == K_IDLE ? 0 : (gint64) rand_range (&k, 0, 100000));
        g_ptr_array_add (k.workers, w);
      }

  signal (SIGPIPE, SIG_IGN);
  sigemptyset (&mask);
  sigaddset (&mask, SIGINT);
  sigaddset (&mask, SIGTERM);
  sigprocmask (SIG_BLOCK, &mask, NULL);
  k.sigfd = signalfd (-1, &mask, SFD_NONBLOCK | SFD_CLOEXEC);
  k.epfd = epoll_create1 (EPOLL_CLOEXEC);
  epoll_ctl (k.epfd, EPOLL_CTL_ADD, k.sigfd, &sev);

  g_printerr ("ph-soak-client: %.0fs against %s, seed %" G_GINT64_FORMAT ", %u workers\n", duration,
              proxy, seed, k.workers->len);
  k.deadline = now_us () + (gint64) (duration * G_USEC_PER_SEC);
  drain_deadline = k.deadline + (gint64) (drain * G_USEC_PER_SEC);
  tick (&k);
  while (!(k.stopping && k.live == 0))
    {
      int m = epoll_wait (k.epfd, evs, G_N_ELEMENTS (evs), SOAK_TICK_MS);
      if (m < 0 && errno != EINTR)
        g_error ("epoll_wait: %s", g_strerror (errno));
      for (int i = 0; i < m; i++)
        {
          if (evs[i].data.ptr == NULL)
            {
              struct signalfd_siginfo si;
              if (read (k.sigfd, &si, sizeof si) > 0)
                k.signalled = TRUE;
              continue;
            }
          sess_drive (evs[i].data.ptr);
        }
      tick (&k);
      if (now_us () > drain_deadline)
        break;
    }
  /* whatever did not finish within the drain time is an error */
  for (guint i = 0; i < k.workers->len; i++)
    {
      Worker *w = g_ptr_array_index (k.workers, i);
      if (w->cur != NULL)
        fail (w->cur, "cut-at-end", "still open %.0fs after the deadline", drain);
    }

  for (guint kind = 0; kind < K_LAST; kind++)
    g_print ("sessions.%s=%" G_GUINT64_FORMAT "\n", kind_names[kind], k.sessions[kind]);
  for (guint kind = 0; kind < K_LAST; kind++)
    g_print ("requests.%s=%" G_GUINT64_FORMAT "\n", kind_names[kind], k.requests[kind]);
  print_table ("outcome", k.outcomes);
  print_table ("reset", k.resets);
  print_table ("error", k.errors);
  g_print ("idle_peak=%u\nbytes_down=%" G_GUINT64_FORMAT "\nbytes_up=%" G_GUINT64_FORMAT "\n",
           k.idle_peak, k.bytes_down, k.bytes_up);
  g_print ("errors=%" G_GUINT64_FORMAT "\n", k.error_total);
  {
    struct rusage ru;
    getrusage (RUSAGE_SELF, &ru);
    g_print ("self_cpu_s=%.3f\n", ru.ru_utime.tv_sec + ru.ru_stime.tv_sec
                                      + (ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6);
  }
  rc = k.error_total == 0 && !k.signalled ? 0 : 1;

  g_ptr_array_unref (k.workers);
  g_hash_table_unref (k.outcomes);
  g_hash_table_unref (k.resets);
  g_hash_table_unref (k.errors);
  g_free (k.pattern2);
  g_free (k.scratch);
  g_free (k.http_origin);
  g_free (k.https_origin);
  g_free (k.closed_target);
  g_free (k.tls_name);
  g_rand_free (k.rand);
  gnutls_certificate_free_credentials (k.creds);
  close (k.epfd);
  close (k.sigfd);
  gnutls_global_deinit ();
  return rc;
}

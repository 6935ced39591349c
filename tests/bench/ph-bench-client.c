/* SPDX-License-Identifier: GPL-2.0-or-later */
/* ph-bench-client.c — load generator for the Pinhole benchmark.
 * Speaks HTTP proxy protocol (CONNECT and absolute-form) to one proxy from a single
 * non-blocking epoll loop and measures new-tunnel latency and rate, bulk throughput,
 * and holds idle tunnels so their memory cost can be read from outside. */

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
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <gio/gio.h>
#include <gnutls/gnutls.h>

#define PH_BENCH_HEAD_MAX 8192
#define PH_BENCH_SCRATCH (256 * 1024)
#define PH_BENCH_TICK_MS 50

typedef enum
{
  PH_BENCH_MODE_LATENCY,
  PH_BENCH_MODE_RATE,
  PH_BENCH_MODE_BULK,
  PH_BENCH_MODE_HOLD,
} PhBenchMode;

typedef enum
{
  PH_BENCH_TRANSPORT_CONNECT_TLS,   /* CONNECT, then TLS to the origin inside the tunnel */
  PH_BENCH_TRANSPORT_CONNECT_PLAIN, /* CONNECT, then plain HTTP inside the tunnel */
  PH_BENCH_TRANSPORT_ABSOLUTE,      /* GET http://origin/... sent to the proxy */
} PhBenchTransport;

static const char *const ph_bench_transport_names[]
    = { "connect-tls", "connect-plain", "absolute" };

typedef enum
{
  PH_BENCH_ERR_CONNECT,
  PH_BENCH_ERR_PROXY_STATUS,
  PH_BENCH_ERR_PROXY_PROTOCOL,
  PH_BENCH_ERR_TLS,
  PH_BENCH_ERR_HTTP_STATUS,
  PH_BENCH_ERR_HTTP_PROTOCOL,
  PH_BENCH_ERR_EOF,
  PH_BENCH_ERR_IO,
  PH_BENCH_ERR_TIMEOUT,
  PH_BENCH_ERR_SHORT_BODY,
  PH_BENCH_ERR_LAST
} PhBenchErr;

static const char *const ph_bench_err_names[] = {
  "connect", "proxy-status", "proxy-protocol", "tls",        "http-status", "http-protocol",
  "eof",     "io",           "timeout",        "short-body",
};

typedef enum
{
  PH_BENCH_ST_TCP_CONNECT,
  PH_BENCH_ST_PROXY_SEND,
  PH_BENCH_ST_PROXY_HEAD,
  PH_BENCH_ST_TLS_HANDSHAKE,
  PH_BENCH_ST_REQ_SEND,
  PH_BENCH_ST_BODY_SEND,
  PH_BENCH_ST_RESP_HEAD,
  PH_BENCH_ST_RESP_BODY,
  PH_BENCH_ST_IDLE,
} PhBenchState;

/* Steps of one exchange, timed from connect() for the latency breakdown. */
typedef enum
{
  PH_BENCH_PHASE_TCP,     /* TCP connection to the proxy up */
  PH_BENCH_PHASE_CONNECT, /* proxy answered the CONNECT with 2xx */
  PH_BENCH_PHASE_TLS,     /* TLS with the origin done */
  PH_BENCH_PHASE_HEAD,    /* response head from the origin complete */
  PH_BENCH_PHASE_LAST
} PhBenchPhase;

static const char *const ph_bench_phase_names[] = { "tcp", "connect200", "tls", "head" };

typedef enum
{
  PH_BENCH_BODY_LENGTH,
  PH_BENCH_BODY_CHUNKED,
  PH_BENCH_BODY_UNTIL_CLOSE,
} PhBenchBodyKind;

typedef enum
{
  PH_BENCH_CHUNK_SIZE,
  PH_BENCH_CHUNK_EXT,
  PH_BENCH_CHUNK_DATA,
  PH_BENCH_CHUNK_DATA_END,
  PH_BENCH_CHUNK_TRAILER,
  PH_BENCH_CHUNK_DONE,
} PhBenchChunkState;

/* The outcome of one step of a connection's state machine. */
typedef enum
{
  PH_BENCH_STEP_AGAIN, /* state advanced: run the next state now */
  PH_BENCH_STEP_WAIT,  /* waiting for the socket: events registered */
  PH_BENCH_STEP_GONE,  /* connection finished or failed and was freed */
} PhBenchStep;

typedef struct
{
  PhBenchMode mode;
  PhBenchTransport transport;
  char *proxy;
  char *origin;
  char *ca_file;
  char *server_name;
  char *path;
  gboolean upload;
  guint64 size;
  guint count;
  guint warmup;
  guint concurrency;
  double duration;
  double rate_warmup;
  guint streams;
  guint tunnels;
  guint open_concurrency;
  char *until_file;
  char *proxy_user;
  char *proxy_password_file;
  double max_hold;
  double timeout;
  double interval_ms;
  gboolean verbose;
} PhBenchOptions;

typedef struct _PhBench PhBench;

typedef struct
{
  PhBench *bench;
  int fd;
  guint index; /* position in bench->conns, for O(1) removal */
  PhBenchState state;
  guint32 events; /* currently registered with epoll */
  gnutls_session_t tls;
  gint64 t_start;
  gint64 t_phase[PH_BENCH_PHASE_LAST]; /* when each step was reached; 0 = not reached */
  gint64 t_last;
  char *out;
  gsize out_len;
  gsize out_off;
  guint64 upload_left;
  char head[PH_BENCH_HEAD_MAX];
  gsize head_len;
  int status;
  PhBenchBodyKind body_kind;
  guint64 body_left;
  guint64 body_bytes;
  PhBenchChunkState chunk_state;
  guint64 chunk_size;
  gsize trailer_line;
  guint64 expect_bytes; /* 0 = do not check */
  gboolean keep_alive;  /* hold mode: keep the tunnel after the response */
  gboolean graceful;    /* the exchange completed: close_notify and drain before close() */
} PhBenchConn;

struct _PhBench
{
  PhBenchOptions *opt;
  int epfd;
  int sigfd;
  struct sockaddr_storage proxy_addr;
  socklen_t proxy_addr_len;
  char *origin_authority; /* host:port as written in CONNECT and Host */
  char *origin_host;
  char *proxy_auth_header; /* "Proxy-Authorization: Basic ...\r\n" or "" */
  gnutls_certificate_credentials_t creds;
  GPtrArray *conns;
  char *scratch;
  char *pattern;
  gboolean stop; /* a signal arrived */

  guint64 errors[PH_BENCH_ERR_LAST];
  guint error_reports;
  guint completed;
  guint started;
  guint in_flight;
  GArray *samples_ms;
  GArray *phase_ms[PH_BENCH_PHASE_LAST];
  gint64 window_start;
  gint64 window_end;
  gboolean stop_starting;
  guint64 refused_seen;
  gint64 pause_until;

  guint64 bulk_bytes;
  gint64 bulk_first_start;
  gint64 bulk_last_end;

  guint held;
  guint closed_early;
  gboolean holding;
};

static void ph_bench_conn_free (PhBenchConn *c);
G_DEFINE_AUTOPTR_CLEANUP_FUNC (PhBenchConn, ph_bench_conn_free)

static gint64
ph_bench_now_us (void)
{
  struct timespec ts;
  clock_gettime (CLOCK_MONOTONIC, &ts);
  return (gint64) ts.tv_sec * G_USEC_PER_SEC + ts.tv_nsec / 1000;
}

static gboolean
ph_bench_parse_size (const char *s, guint64 *out)
{
  char *end = NULL;
  guint64 v = g_ascii_strtoull (s, &end, 10);
  if (end == s)
    return FALSE;
  switch (g_ascii_tolower (*end))
    {
      case '\0':
        break;
      case 'k':
        v <<= 10;
        break;
      case 'm':
        v <<= 20;
        break;
      case 'g':
        v <<= 30;
        break;
      default:
        return FALSE;
    }
  *out = v;
  return TRUE;
}

/* Splits "host:port" or "[v6]:port". */
static gboolean
ph_bench_split_host_port (const char *s, char **host, char **port)
{
  const char *colon;
  if (s[0] == '[')
    {
      const char *rb = strchr (s, ']');
      if (rb == NULL || rb[1] != ':')
        return FALSE;
      *host = g_strndup (s + 1, rb - s - 1);
      *port = g_strdup (rb + 2);
      return TRUE;
    }
  colon = strrchr (s, ':');
  if (colon == NULL || colon == s)
    return FALSE;
  *host = g_strndup (s, colon - s);
  *port = g_strdup (colon + 1);
  return TRUE;
}

static gboolean
ph_bench_resolve (PhBench *b, GError **error)
{
  g_autofree char *host = NULL;
  g_autofree char *port = NULL;
  g_autofree char *ohost = NULL;
  g_autofree char *oport = NULL;
  struct addrinfo hints = { 0 };
  struct addrinfo *res = NULL;
  int rc;

  if (!ph_bench_split_host_port (b->opt->proxy, &host, &port))
    {
      g_set_error (error, G_OPTION_ERROR, G_OPTION_ERROR_BAD_VALUE, "bad --proxy %s",
                   b->opt->proxy);
      return FALSE;
    }
  if (!ph_bench_split_host_port (b->opt->origin, &ohost, &oport))
    {
      g_set_error (error, G_OPTION_ERROR, G_OPTION_ERROR_BAD_VALUE, "bad --origin %s",
                   b->opt->origin);
      return FALSE;
    }
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_NUMERICSERV;
  rc = getaddrinfo (host, port, &hints, &res);
  if (rc != 0)
    {
      g_set_error (error, G_IO_ERROR, G_IO_ERROR_FAILED, "cannot resolve %s: %s", host,
                   gai_strerror (rc));
      return FALSE;
    }
  memcpy (&b->proxy_addr, res->ai_addr, res->ai_addrlen);
  b->proxy_addr_len = res->ai_addrlen;
  freeaddrinfo (res);

  b->origin_host = g_strdup (ohost);
  if (strchr (ohost, ':') != NULL)
    b->origin_authority = g_strdup_printf ("[%s]:%s", ohost, oport);
  else
    b->origin_authority = g_strdup_printf ("%s:%s", ohost, oport);
  return TRUE;
}

static void ph_bench_fail (PhBenchConn *c, PhBenchErr kind, const char *fmt, ...)
    G_GNUC_PRINTF (3, 4);

static void
ph_bench_conn_close (PhBenchConn *c)
{
  PhBench *b = c->bench;
  PhBenchConn *last;

  /* swap-remove keeps removal O(1) with thousands of held tunnels */
  last = g_ptr_array_index (b->conns, b->conns->len - 1);
  last->index = c->index;
  g_ptr_array_index (b->conns, c->index) = last;
  g_ptr_array_set_size (b->conns, b->conns->len - 1);
  ph_bench_conn_free (c);
}

static void
ph_bench_conn_free (PhBenchConn *c)
{
  if (c->graceful && c->fd >= 0)
    {
      char sink[4096];
      /* best effort and never blocking: unread bytes at close() would turn our FIN into a
       * reset, which proxies log as an error */
      if (c->tls != NULL)
        gnutls_bye (c->tls, GNUTLS_SHUT_WR);
      for (int i = 0; i < 8 && recv (c->fd, sink, sizeof sink, MSG_DONTWAIT) > 0; i++)
        ;
    }
  if (c->tls != NULL)
    gnutls_deinit (c->tls);
  if (c->fd >= 0)
    close (c->fd);
  g_free (c->out);
  g_free (c);
}

static void ph_bench_on_finished (PhBench *b, PhBenchConn *c, gboolean ok);

static void
ph_bench_fail (PhBenchConn *c, PhBenchErr kind, const char *fmt, ...)
{
  PhBench *b = c->bench;
  b->errors[kind]++;
  if (b->error_reports < 10 || b->opt->verbose)
    {
      va_list ap;
      g_autofree char *msg = NULL;
      va_start (ap, fmt);
      msg = g_strdup_vprintf (fmt, ap);
      va_end (ap);
      b->error_reports++;
      g_printerr ("ph-bench-client: %s: %s\n", ph_bench_err_names[kind], msg);
    }
  ph_bench_on_finished (b, c, FALSE);
}

static void
ph_bench_want (PhBenchConn *c, guint32 events)
{
  struct epoll_event ev = { .events = events, .data.ptr = c };
  if (c->events == events)
    return;
  epoll_ctl (c->bench->epfd, c->events == 0 ? EPOLL_CTL_ADD : EPOLL_CTL_MOD, c->fd, &ev);
  c->events = events;
}

/* Socket or TLS I/O: >0 bytes, 0 end of stream, -EAGAIN, or another -errno/-1 on failure. */
static gssize
ph_bench_io_recv (PhBenchConn *c, char *buf, gsize len, const char **why)
{
  if (c->tls != NULL)
    {
      for (;;)
        {
          gssize n = gnutls_record_recv (c->tls, buf, len);
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
    }
  for (;;)
    {
      gssize n = recv (c->fd, buf, len, 0);
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
ph_bench_io_send (PhBenchConn *c, const char *buf, gsize len, const char **why)
{
  if (c->tls != NULL)
    {
      for (;;)
        {
          /* on AGAIN GnuTLS wants the very same buffer again, which callers give it */
          gssize n = gnutls_record_send (c->tls, buf, len);
          if (n >= 0)
            return n;
          if (n == GNUTLS_E_AGAIN)
            return -EAGAIN;
          if (n == GNUTLS_E_INTERRUPTED)
            continue;
          *why = gnutls_strerror (n);
          return -1;
        }
    }
  for (;;)
    {
      gssize n = send (c->fd, buf, len, MSG_NOSIGNAL);
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

static void
ph_bench_set_out (PhBenchConn *c, char *text)
{
  g_free (c->out);
  c->out = text;
  c->out_len = strlen (text);
  c->out_off = 0;
}

static char *
ph_bench_build_request (PhBench *b, PhBenchConn *c)
{
  const PhBenchOptions *o = b->opt;
  const char *method = o->upload ? "POST" : "GET";
  g_autofree char *target = NULL;
  g_autofree char *body_headers = NULL;
  /* keep-alive even for one-shot tunnels: the client then closes first, as a browser does, and
   * no origin close races our close() into a reset */
  const char *conn_hdr = "keep-alive";
  /* the proxy sees the credentials only on an absolute-form request, never inside a tunnel */
  const char *auth = o->transport == PH_BENCH_TRANSPORT_ABSOLUTE ? b->proxy_auth_header : "";

  if (o->transport == PH_BENCH_TRANSPORT_ABSOLUTE)
    target = g_strdup_printf ("http://%s%s", b->origin_authority, o->path);
  else
    target = g_strdup (o->path);
  if (o->upload)
    body_headers = g_strdup_printf ("Content-Type: application/octet-stream\r\n"
                                    "Content-Length: %" G_GUINT64_FORMAT "\r\n",
                                    c->upload_left);
  return g_strdup_printf ("%s %s HTTP/1.1\r\n"
                          "Host: %s\r\n"
                          "User-Agent: ph-bench-client/1\r\n"
                          "Accept: */*\r\n"
                          "%s%s"
                          "Connection: %s\r\n"
                          "\r\n",
                          method, target, b->origin_authority, auth,
                          body_headers ? body_headers : "", conn_hdr);
}

/* Appends input to the head buffer; returns how many bytes were used, or -1 when the head
 * does not fit. *complete is set once the blank line has been seen. */
static gssize
ph_bench_head_feed (PhBenchConn *c, const char *data, gsize len, gboolean *complete)
{
  gsize start = c->head_len > 3 ? c->head_len - 3 : 0;
  gsize room = sizeof (c->head) - 1 - c->head_len;
  gsize take = MIN (len, room);
  char *end;

  memcpy (c->head + c->head_len, data, take);
  c->head_len += take;
  c->head[c->head_len] = '\0';
  end = g_strstr_len (c->head + start, c->head_len - start, "\r\n\r\n");
  if (end == NULL)
    {
      *complete = FALSE;
      return take == len ? (gssize) take : -1;
    }
  {
    gsize head_end = end + 4 - c->head;
    gsize used = take - (c->head_len - head_end);
    c->head_len = head_end;
    c->head[head_end] = '\0';
    *complete = TRUE;
    return used;
  }
}

static gboolean
ph_bench_parse_status (PhBenchConn *c)
{
  if (c->head_len < 12 || strncmp (c->head, "HTTP/1.", 7) != 0 || c->head[8] != ' ')
    return FALSE;
  c->status = atoi (c->head + 9);
  return c->status >= 100 && c->status <= 999;
}

/* Sets up body framing from the response head. */
static void
ph_bench_parse_framing (PhBenchConn *c)
{
  g_auto (GStrv) lines = g_strsplit (c->head, "\r\n", -1);
  c->body_kind = PH_BENCH_BODY_UNTIL_CLOSE;
  c->body_left = 0;
  c->body_bytes = 0;
  for (guint i = 1; lines[i] != NULL; i++)
    {
      const char *l = lines[i];
      if (g_ascii_strncasecmp (l, "content-length:", 15) == 0
          && c->body_kind != PH_BENCH_BODY_CHUNKED)
        {
          c->body_kind = PH_BENCH_BODY_LENGTH;
          c->body_left = g_ascii_strtoull (l + 15, NULL, 10);
        }
      else if (g_ascii_strncasecmp (l, "transfer-encoding:", 18) == 0
               && strstr (l + 18, "chunked") != NULL)
        {
          c->body_kind = PH_BENCH_BODY_CHUNKED;
          c->chunk_state = PH_BENCH_CHUNK_SIZE;
          c->chunk_size = 0;
        }
    }
  if (c->status == 204 || c->status == 304 || (c->status >= 100 && c->status < 200))
    {
      c->body_kind = PH_BENCH_BODY_LENGTH;
      c->body_left = 0;
    }
}

static void
ph_bench_chunk_size_line_done (PhBenchConn *c)
{
  if (c->chunk_size == 0)
    {
      c->chunk_state = PH_BENCH_CHUNK_TRAILER;
      c->trailer_line = 0;
    }
  else
    c->chunk_state = PH_BENCH_CHUNK_DATA;
}

/* Consumes body bytes; returns TRUE once the body is complete. *bad is set on bad chunking. */
static gboolean
ph_bench_body_feed (PhBenchConn *c, const char *data, gsize len, gboolean *bad)
{
  gsize i = 0;
  switch (c->body_kind)
    {
      case PH_BENCH_BODY_UNTIL_CLOSE:
        c->body_bytes += len;
        return FALSE;
      case PH_BENCH_BODY_LENGTH:
        {
          guint64 take = MIN ((guint64) len, c->body_left);
          c->body_left -= take;
          c->body_bytes += take;
          return c->body_left == 0;
        }
      case PH_BENCH_BODY_CHUNKED:
        while (i < len)
          {
            char ch = data[i];
            switch (c->chunk_state)
              {
                case PH_BENCH_CHUNK_SIZE:
                  i++;
                  if (g_ascii_isxdigit (ch))
                    c->chunk_size = c->chunk_size * 16 + g_ascii_xdigit_value (ch);
                  else if (ch == ';' || ch == '\r' || ch == ' ')
                    c->chunk_state = PH_BENCH_CHUNK_EXT;
                  else if (ch == '\n')
                    ph_bench_chunk_size_line_done (c);
                  else
                    {
                      *bad = TRUE;
                      return FALSE;
                    }
                  break;
                case PH_BENCH_CHUNK_EXT:
                  i++;
                  if (ch == '\n')
                    ph_bench_chunk_size_line_done (c);
                  break;
                case PH_BENCH_CHUNK_DATA:
                  {
                    guint64 take = MIN ((guint64) (len - i), c->chunk_size);
                    c->chunk_size -= take;
                    c->body_bytes += take;
                    i += take;
                    if (c->chunk_size == 0)
                      c->chunk_state = PH_BENCH_CHUNK_DATA_END;
                  }
                  break;
                case PH_BENCH_CHUNK_DATA_END:
                  i++;
                  if (ch == '\n')
                    c->chunk_state = PH_BENCH_CHUNK_SIZE;
                  break;
                case PH_BENCH_CHUNK_TRAILER:
                  i++;
                  if (ch == '\n')
                    {
                      if (c->trailer_line == 0)
                        {
                          c->chunk_state = PH_BENCH_CHUNK_DONE;
                          return TRUE;
                        }
                      c->trailer_line = 0;
                    }
                  else if (ch != '\r')
                    c->trailer_line++;
                  break;
                case PH_BENCH_CHUNK_DONE:
                  return TRUE;
              }
          }
        return c->chunk_state == PH_BENCH_CHUNK_DONE;
    }
  return FALSE;
}

static gboolean
ph_bench_start_tls (PhBenchConn *c, const char **why)
{
  PhBench *b = c->bench;
  static const gnutls_datum_t alpn = { (unsigned char *) "http/1.1", 8 };
  const char *sni = b->opt->server_name;
  int rc;

  rc = gnutls_init (&c->tls, GNUTLS_CLIENT | GNUTLS_NONBLOCK);
  if (rc == GNUTLS_E_SUCCESS)
    rc = gnutls_set_default_priority (c->tls);
  if (rc == GNUTLS_E_SUCCESS)
    rc = gnutls_credentials_set (c->tls, GNUTLS_CRD_CERTIFICATE, b->creds);
  if (rc != GNUTLS_E_SUCCESS)
    {
      *why = gnutls_strerror (rc);
      return FALSE;
    }
  /* like a browser: SNI for names only, ALPN, a fresh session every time (no resumption) */
  if (sni == NULL && !g_hostname_is_ip_address (b->origin_host))
    sni = b->origin_host;
  if (sni != NULL)
    gnutls_server_name_set (c->tls, GNUTLS_NAME_DNS, sni, strlen (sni));
  gnutls_alpn_set_protocols (c->tls, &alpn, 1, 0);
  if (b->opt->ca_file != NULL)
    gnutls_session_set_verify_cert (c->tls, sni, 0);
  gnutls_transport_set_int (c->tls, c->fd);
  return TRUE;
}

static PhBenchStep
ph_bench_step (PhBenchConn *c)
{
  PhBench *b = c->bench;
  const char *why = "?";

  switch (c->state)
    {
      case PH_BENCH_ST_TCP_CONNECT:
        {
          int err = 0;
          socklen_t elen = sizeof err;
          getsockopt (c->fd, SOL_SOCKET, SO_ERROR, &err, &elen);
          if (err == EINPROGRESS || err == EALREADY)
            {
              ph_bench_want (c, EPOLLOUT);
              return PH_BENCH_STEP_WAIT;
            }
          if (err != 0)
            {
              ph_bench_fail (c, PH_BENCH_ERR_CONNECT, "connect to %s: %s", b->opt->proxy,
                             g_strerror (err));
              return PH_BENCH_STEP_GONE;
            }
          c->t_phase[PH_BENCH_PHASE_TCP] = ph_bench_now_us ();
          if (b->opt->transport == PH_BENCH_TRANSPORT_ABSOLUTE)
            {
              ph_bench_set_out (c, ph_bench_build_request (b, c));
              c->state = PH_BENCH_ST_REQ_SEND;
            }
          else
            {
              ph_bench_set_out (c, g_strdup_printf ("CONNECT %s HTTP/1.1\r\n"
                                                    "Host: %s\r\n"
                                                    "User-Agent: ph-bench-client/1\r\n"
                                                    "%s"
                                                    "\r\n",
                                                    b->origin_authority, b->origin_authority,
                                                    b->proxy_auth_header));
              c->state = PH_BENCH_ST_PROXY_SEND;
            }
          return PH_BENCH_STEP_AGAIN;
        }

      case PH_BENCH_ST_PROXY_SEND:
      case PH_BENCH_ST_REQ_SEND:
        while (c->out_off < c->out_len)
          {
            gssize n = ph_bench_io_send (c, c->out + c->out_off, c->out_len - c->out_off, &why);
            if (n == -EAGAIN)
              {
                ph_bench_want (c, EPOLLOUT);
                return PH_BENCH_STEP_WAIT;
              }
            if (n < 0)
              {
                ph_bench_fail (c, c->tls ? PH_BENCH_ERR_TLS : PH_BENCH_ERR_IO, "send: %s", why);
                return PH_BENCH_STEP_GONE;
              }
            c->out_off += n;
            c->t_last = ph_bench_now_us ();
          }
        c->head_len = 0;
        if (c->state == PH_BENCH_ST_PROXY_SEND)
          c->state = PH_BENCH_ST_PROXY_HEAD;
        else
          c->state = c->upload_left > 0 ? PH_BENCH_ST_BODY_SEND : PH_BENCH_ST_RESP_HEAD;
        return PH_BENCH_STEP_AGAIN;

      case PH_BENCH_ST_BODY_SEND:
        while (c->upload_left > 0)
          {
            /* TLS: one record per call, so a retried AGAIN call passes the same length */
            gsize chunk = c->tls ? 16384 : PH_BENCH_SCRATCH;
            gssize n = ph_bench_io_send (c, b->pattern, MIN (c->upload_left, chunk), &why);
            if (n == -EAGAIN)
              {
                ph_bench_want (c, EPOLLOUT);
                return PH_BENCH_STEP_WAIT;
              }
            if (n < 0)
              {
                ph_bench_fail (c, c->tls ? PH_BENCH_ERR_TLS : PH_BENCH_ERR_IO, "send body: %s",
                               why);
                return PH_BENCH_STEP_GONE;
              }
            c->upload_left -= n;
            c->t_last = ph_bench_now_us ();
          }
        c->state = PH_BENCH_ST_RESP_HEAD;
        return PH_BENCH_STEP_AGAIN;

      case PH_BENCH_ST_TLS_HANDSHAKE:
        for (;;)
          {
            int rc = gnutls_handshake (c->tls);
            if (rc == GNUTLS_E_SUCCESS)
              break;
            if (rc == GNUTLS_E_AGAIN || rc == GNUTLS_E_INTERRUPTED)
              {
                c->t_last = ph_bench_now_us ();
                ph_bench_want (c, gnutls_record_get_direction (c->tls) ? EPOLLOUT : EPOLLIN);
                return PH_BENCH_STEP_WAIT;
              }
            if (gnutls_error_is_fatal (rc))
              {
                ph_bench_fail (c, PH_BENCH_ERR_TLS, "handshake with origin: %s",
                               gnutls_strerror (rc));
                return PH_BENCH_STEP_GONE;
              }
          }
        c->t_phase[PH_BENCH_PHASE_TLS] = ph_bench_now_us ();
        ph_bench_set_out (c, ph_bench_build_request (b, c));
        c->state = PH_BENCH_ST_REQ_SEND;
        return PH_BENCH_STEP_AGAIN;

      case PH_BENCH_ST_PROXY_HEAD:
      case PH_BENCH_ST_RESP_HEAD:
      case PH_BENCH_ST_RESP_BODY:
      case PH_BENCH_ST_IDLE:
        for (;;)
          {
            gssize n = ph_bench_io_recv (c, b->scratch, PH_BENCH_SCRATCH, &why);
            gsize off = 0;
            if (n == -EAGAIN)
              {
                ph_bench_want (c, EPOLLIN);
                return PH_BENCH_STEP_WAIT;
              }
            if (n < 0 || n == 0)
              {
                if (c->state == PH_BENCH_ST_IDLE)
                  {
                    b->closed_early++;
                    ph_bench_conn_close (c);
                  }
                else if (n == 0 && c->state == PH_BENCH_ST_RESP_BODY
                         && c->body_kind == PH_BENCH_BODY_UNTIL_CLOSE)
                  ph_bench_on_finished (b, c, TRUE);
                else if (n == 0)
                  ph_bench_fail (c,
                                 c->state == PH_BENCH_ST_RESP_BODY ? PH_BENCH_ERR_SHORT_BODY
                                                                   : PH_BENCH_ERR_EOF,
                                 "peer closed (state %d, %" G_GUINT64_FORMAT " body bytes)",
                                 c->state, c->body_bytes);
                else
                  ph_bench_fail (c, c->tls ? PH_BENCH_ERR_TLS : PH_BENCH_ERR_IO, "recv: %s", why);
                return PH_BENCH_STEP_GONE;
              }
            c->t_last = ph_bench_now_us ();
            while (off < (gsize) n)
              {
                if (c->state == PH_BENCH_ST_IDLE)
                  break; /* unexpected bytes on an idle tunnel: ignore */
                if (c->state == PH_BENCH_ST_PROXY_HEAD || c->state == PH_BENCH_ST_RESP_HEAD)
                  {
                    gboolean complete = FALSE;
                    gssize used = ph_bench_head_feed (c, b->scratch + off, n - off, &complete);
                    if (used < 0)
                      {
                        ph_bench_fail (c,
                                       c->state == PH_BENCH_ST_PROXY_HEAD
                                           ? PH_BENCH_ERR_PROXY_PROTOCOL
                                           : PH_BENCH_ERR_HTTP_PROTOCOL,
                                       "response head too large");
                        return PH_BENCH_STEP_GONE;
                      }
                    off += used;
                    if (!complete)
                      continue;
                    if (!ph_bench_parse_status (c))
                      {
                        ph_bench_fail (c,
                                       c->state == PH_BENCH_ST_PROXY_HEAD
                                           ? PH_BENCH_ERR_PROXY_PROTOCOL
                                           : PH_BENCH_ERR_HTTP_PROTOCOL,
                                       "bad status line: %.60s", c->head);
                        return PH_BENCH_STEP_GONE;
                      }
                    if (c->state == PH_BENCH_ST_PROXY_HEAD)
                      {
                        if (c->status / 100 != 2)
                          {
                            ph_bench_fail (c, PH_BENCH_ERR_PROXY_STATUS, "proxy said: %.*s",
                                           (int) strcspn (c->head, "\r\n"), c->head);
                            return PH_BENCH_STEP_GONE;
                          }
                        if (off != (gsize) n)
                          {
                            ph_bench_fail (c, PH_BENCH_ERR_PROXY_PROTOCOL,
                                           "bytes after the CONNECT answer");
                            return PH_BENCH_STEP_GONE;
                          }
                        c->t_phase[PH_BENCH_PHASE_CONNECT] = ph_bench_now_us ();
                        if (b->opt->transport == PH_BENCH_TRANSPORT_CONNECT_TLS)
                          {
                            if (!ph_bench_start_tls (c, &why))
                              {
                                ph_bench_fail (c, PH_BENCH_ERR_TLS, "%s", why);
                                return PH_BENCH_STEP_GONE;
                              }
                            c->state = PH_BENCH_ST_TLS_HANDSHAKE;
                          }
                        else
                          {
                            ph_bench_set_out (c, ph_bench_build_request (b, c));
                            c->state = PH_BENCH_ST_REQ_SEND;
                          }
                        return PH_BENCH_STEP_AGAIN;
                      }
                    if (c->status == 100)
                      {
                        c->head_len = 0;
                        continue;
                      }
                    if (c->status / 100 != 2)
                      {
                        ph_bench_fail (c, PH_BENCH_ERR_HTTP_STATUS, "origin said: %.*s",
                                       (int) strcspn (c->head, "\r\n"), c->head);
                        return PH_BENCH_STEP_GONE;
                      }
                    c->t_phase[PH_BENCH_PHASE_HEAD] = ph_bench_now_us ();
                    ph_bench_parse_framing (c);
                    c->state = PH_BENCH_ST_RESP_BODY;
                    if (c->body_kind == PH_BENCH_BODY_LENGTH && c->body_left == 0)
                      goto body_done;
                    continue;
                  }
                /* PH_BENCH_ST_RESP_BODY */
                {
                  gboolean bad = FALSE;
                  gboolean done = ph_bench_body_feed (c, b->scratch + off, n - off, &bad);
                  off = n;
                  if (bad)
                    {
                      ph_bench_fail (c, PH_BENCH_ERR_HTTP_PROTOCOL, "bad chunked body");
                      return PH_BENCH_STEP_GONE;
                    }
                  if (done)
                    goto body_done;
                }
              }
            continue;
          body_done:
            if (c->expect_bytes != 0 && c->body_bytes != c->expect_bytes)
              {
                ph_bench_fail (c, PH_BENCH_ERR_SHORT_BODY,
                               "got %" G_GUINT64_FORMAT " body bytes, wanted %" G_GUINT64_FORMAT,
                               c->body_bytes, c->expect_bytes);
                return PH_BENCH_STEP_GONE;
              }
            {
              /* a held tunnel lives on; anything else is freed by on_finished */
              gboolean kept = b->opt->mode == PH_BENCH_MODE_HOLD;
              ph_bench_on_finished (b, c, TRUE);
              return kept ? PH_BENCH_STEP_AGAIN : PH_BENCH_STEP_GONE;
            }
          }
    }
  return PH_BENCH_STEP_WAIT;
}

static void
ph_bench_drive (PhBenchConn *c)
{
  while (ph_bench_step (c) == PH_BENCH_STEP_AGAIN)
    ;
}

static void
ph_bench_start_one (PhBench *b)
{
  g_autoptr (PhBenchConn) c = g_new0 (PhBenchConn, 1);
  int one = 1;
  int rc;

  c->bench = b;
  c->t_start = ph_bench_now_us ();
  c->t_last = c->t_start;
  c->keep_alive = b->opt->mode == PH_BENCH_MODE_HOLD;
  b->started++;
  b->in_flight++;
  if (b->opt->mode == PH_BENCH_MODE_BULK)
    {
      guint64 share = b->opt->size / b->opt->streams;
      if (b->opt->upload)
        c->upload_left = share;
      else
        c->expect_bytes = share;
      if (b->bulk_first_start == 0)
        b->bulk_first_start = c->t_start;
    }
  else if (b->opt->upload)
    c->upload_left = b->opt->size;

  c->fd = socket (b->proxy_addr.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (c->fd < 0)
    {
      c->index = b->conns->len;
      g_ptr_array_add (b->conns, g_steal_pointer (&c));
      ph_bench_fail (g_ptr_array_index (b->conns, b->conns->len - 1), PH_BENCH_ERR_CONNECT,
                     "socket: %s", g_strerror (errno));
      return;
    }
  setsockopt (c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  rc = connect (c->fd, (struct sockaddr *) &b->proxy_addr, b->proxy_addr_len);
  c->index = b->conns->len;
  c->state = PH_BENCH_ST_TCP_CONNECT;
  if (rc < 0 && errno != EINPROGRESS)
    {
      int err = errno;
      PhBenchConn *cc = g_steal_pointer (&c);
      g_ptr_array_add (b->conns, cc);
      ph_bench_fail (cc, PH_BENCH_ERR_CONNECT, "connect to %s: %s", b->opt->proxy,
                     g_strerror (err));
      return;
    }
  {
    PhBenchConn *cc = g_steal_pointer (&c);
    g_ptr_array_add (b->conns, cc);
    if (rc == 0)
      ph_bench_drive (cc);
    else
      ph_bench_want (cc, EPOLLOUT);
  }
}

/* Called once per connection when its exchange ended, well or not. Frees it unless it is a
 * held tunnel. */
static void
ph_bench_on_finished (PhBench *b, PhBenchConn *c, gboolean ok)
{
  gint64 now = ph_bench_now_us ();
  double ms = (now - c->t_start) / 1000.0;

  b->in_flight--;
  c->graceful = ok;
  switch (b->opt->mode)
    {
      case PH_BENCH_MODE_LATENCY:
        if (ok)
          {
            if (b->completed >= b->opt->warmup)
              {
                g_array_append_val (b->samples_ms, ms);
                for (guint p = 0; p < PH_BENCH_PHASE_LAST; p++)
                  if (c->t_phase[p] != 0)
                    {
                      double pms = (c->t_phase[p] - c->t_start) / 1000.0;
                      g_array_append_val (b->phase_ms[p], pms);
                    }
              }
            b->completed++;
          }
        break;
      case PH_BENCH_MODE_RATE:
        if (ok && now >= b->window_start && now <= b->window_end)
          {
            b->completed++;
            g_array_append_val (b->samples_ms, ms);
          }
        break;
      case PH_BENCH_MODE_BULK:
        if (ok)
          {
            b->completed++;
            b->bulk_bytes += b->opt->upload ? b->opt->size / b->opt->streams : c->body_bytes;
            b->bulk_last_end = MAX (b->bulk_last_end, now);
          }
        break;
      case PH_BENCH_MODE_HOLD:
        if (ok)
          {
            b->held++;
            c->state = PH_BENCH_ST_IDLE;
            ph_bench_want (c, EPOLLIN);
            return;
          }
        break;
    }
  ph_bench_conn_close (c);
}

static void
ph_bench_sweep_timeouts (PhBench *b, gint64 now)
{
  gint64 limit = (gint64) (b->opt->timeout * G_USEC_PER_SEC);
  for (guint i = 0; i < b->conns->len;)
    {
      PhBenchConn *c = g_ptr_array_index (b->conns, i);
      if (c->state != PH_BENCH_ST_IDLE && now - c->t_last > limit)
        {
          /* the failure swap-removes c: look at index i again */
          ph_bench_fail (c, PH_BENCH_ERR_TIMEOUT, "no progress for %.1fs (state %d)",
                         b->opt->timeout, c->state);
          continue;
        }
      i++;
    }
}

/* Runs the loop until done() says so or until deadline (µs, 0 = none). */
static void
ph_bench_loop (PhBench *b, gboolean (*done) (PhBench *), void (*tick) (PhBench *), gint64 deadline)
{
  struct epoll_event evs[256];
  gint64 last_sweep = ph_bench_now_us ();

  while (!done (b) && !b->stop)
    {
      gint64 now;
      int n = epoll_wait (b->epfd, evs, G_N_ELEMENTS (evs), PH_BENCH_TICK_MS);
      if (n < 0 && errno != EINTR)
        g_error ("epoll_wait: %s", g_strerror (errno));
      for (int i = 0; i < n; i++)
        {
          if (evs[i].data.ptr == NULL)
            {
              struct signalfd_siginfo si;
              if (read (b->sigfd, &si, sizeof si) > 0)
                b->stop = TRUE;
              continue;
            }
          ph_bench_drive (evs[i].data.ptr);
        }
      now = ph_bench_now_us ();
      if (now - last_sweep >= PH_BENCH_TICK_MS * 1000)
        {
          ph_bench_sweep_timeouts (b, now);
          last_sweep = now;
        }
      if (tick != NULL)
        tick (b);
      if (deadline != 0 && now >= deadline)
        break;
    }
}

static int
ph_bench_cmp_double (gconstpointer a, gconstpointer b)
{
  double x = *(const double *) a, y = *(const double *) b;
  return x < y ? -1 : x > y;
}

/* Nearest-rank percentile of a sorted array. */
static double
ph_bench_percentile (GArray *sorted, double p)
{
  gsize rank;
  if (sorted->len == 0)
    return 0.0;
  rank = (gsize) ((p / 100.0) * sorted->len + 0.999999);
  rank = CLAMP (rank, 1, sorted->len);
  return g_array_index (sorted, double, rank - 1);
}

static guint64
ph_bench_total_errors (PhBench *b)
{
  guint64 sum = 0;
  for (guint i = 0; i < PH_BENCH_ERR_LAST; i++)
    sum += b->errors[i];
  return sum;
}

static char *
ph_bench_error_kinds (PhBench *b)
{
  GString *s = g_string_new (NULL);
  for (guint i = 0; i < PH_BENCH_ERR_LAST; i++)
    if (b->errors[i] != 0)
      g_string_append_printf (s, "%s%s:%" G_GUINT64_FORMAT, s->len ? "," : "",
                              ph_bench_err_names[i], b->errors[i]);
  if (s->len == 0)
    g_string_append (s, "none");
  return g_string_free (s, FALSE);
}

static char *
ph_bench_latency_summary (GArray *samples)
{
  double sum = 0;
  g_array_sort (samples, ph_bench_cmp_double);
  for (guint i = 0; i < samples->len; i++)
    sum += g_array_index (samples, double, i);
  if (samples->len == 0)
    return g_strdup ("p50_ms=nan p90_ms=nan p99_ms=nan mean_ms=nan min_ms=nan max_ms=nan");
  return g_strdup_printf ("p50_ms=%.3f p90_ms=%.3f p99_ms=%.3f mean_ms=%.3f min_ms=%.3f "
                          "max_ms=%.3f",
                          ph_bench_percentile (samples, 50), ph_bench_percentile (samples, 90),
                          ph_bench_percentile (samples, 99), sum / samples->len,
                          g_array_index (samples, double, 0),
                          g_array_index (samples, double, samples->len - 1));
}

/* --- latency: one fresh tunnel at a time --- */

static gboolean
ph_bench_latency_idle (PhBench *b)
{
  return b->in_flight == 0;
}

static int
ph_bench_run_latency (PhBench *b)
{
  guint total = b->opt->count + b->opt->warmup;
  g_autofree char *summary = NULL;
  g_autofree char *kinds = NULL;
  guint attempts = 0;
  g_autoptr (GString) phases = g_string_new (NULL);
  g_autoptr (GString) phases99 = g_string_new (NULL);

  /* failures do not count as samples, but bound the attempts so a broken proxy ends the run */
  while (b->samples_ms->len < b->opt->count && attempts < total * 2 && !b->stop)
    {
      gint64 next = ph_bench_now_us () + (gint64) (b->opt->interval_ms * 1000);
      attempts++;
      ph_bench_start_one (b);
      ph_bench_loop (b, ph_bench_latency_idle, NULL, 0);
      /* an idle gap lets a proxy refill whatever it keeps ready, as between user clicks */
      while (!b->stop && ph_bench_now_us () < next)
        g_usleep (MIN (next - ph_bench_now_us (), 10000));
    }
  for (guint p = 0; p < PH_BENCH_PHASE_LAST; p++)
    {
      g_array_sort (b->phase_ms[p], ph_bench_cmp_double);
      if (b->phase_ms[p]->len > 0)
        {
          g_string_append_printf (phases, "%s%s:%.3f", phases->len ? "," : "",
                                  ph_bench_phase_names[p],
                                  ph_bench_percentile (b->phase_ms[p], 50));
          g_string_append_printf (phases99, "%s%s:%.3f", phases99->len ? "," : "",
                                  ph_bench_phase_names[p],
                                  ph_bench_percentile (b->phase_ms[p], 99));
        }
    }
  summary = ph_bench_latency_summary (b->samples_ms);
  kinds = ph_bench_error_kinds (b);
  g_print ("mode=latency transport=%s samples=%u warmup=%u interval_ms=%g errors=%" G_GUINT64_FORMAT
           " %s phases_p50_ms=%s phases_p99_ms=%s error_kinds=%s\n",
           ph_bench_transport_names[b->opt->transport], b->samples_ms->len, b->opt->warmup,
           b->opt->interval_ms, ph_bench_total_errors (b), summary, phases->len ? phases->str : "-",
           phases99->len ? phases99->str : "-", kinds);
  return b->samples_ms->len == b->opt->count ? 0 : 1;
}

/* --- rate: keep C tunnels in flight for D seconds --- */

static gboolean
ph_bench_rate_done (PhBench *b)
{
  return b->stop_starting && b->in_flight == 0;
}

static void
ph_bench_rate_tick (PhBench *b)
{
  gint64 now = ph_bench_now_us ();
  guint64 refused = b->errors[PH_BENCH_ERR_CONNECT];

  if (now >= b->window_end)
    b->stop_starting = TRUE;
  /* a proxy that refuses connections would turn this into a busy loop: pause 10 ms after each
   * connect failure (other failures do not slow the load down) */
  if (refused != b->refused_seen)
    {
      b->refused_seen = refused;
      b->pause_until = now + 10000;
    }
  if (now < b->pause_until)
    return;
  while (!b->stop_starting && b->in_flight < b->opt->concurrency
         && b->errors[PH_BENCH_ERR_CONNECT] == refused)
    ph_bench_start_one (b);
}

static int
ph_bench_run_rate (PhBench *b)
{
  gint64 t0 = ph_bench_now_us ();
  gint64 drain_deadline;
  g_autofree char *summary = NULL;
  g_autofree char *kinds = NULL;
  double window_s = b->opt->duration;
  guint cut = 0;

  b->window_start = t0 + (gint64) (b->opt->rate_warmup * G_USEC_PER_SEC);
  b->window_end = b->window_start + (gint64) (b->opt->duration * G_USEC_PER_SEC);
  drain_deadline = b->window_end + (gint64) (b->opt->timeout * G_USEC_PER_SEC) + G_USEC_PER_SEC;
  ph_bench_rate_tick (b);
  ph_bench_loop (b, ph_bench_rate_done, ph_bench_rate_tick, drain_deadline);
  /* tunnels still open after the drain deadline are cut and counted as timeouts */
  while (b->conns->len > 0)
    {
      cut++;
      ph_bench_fail (g_ptr_array_index (b->conns, 0), PH_BENCH_ERR_TIMEOUT, "cut at end");
    }
  if (b->stop)
    window_s = MAX (0.001, (ph_bench_now_us () - b->window_start) / 1e6);
  summary = ph_bench_latency_summary (b->samples_ms);
  kinds = ph_bench_error_kinds (b);
  g_print ("mode=rate transport=%s concurrency=%u duration_s=%.2f completed=%u "
           "tunnels_per_s=%.1f started=%u errors=%" G_GUINT64_FORMAT " %s error_kinds=%s\n",
           ph_bench_transport_names[b->opt->transport], b->opt->concurrency, window_s, b->completed,
           b->completed / window_s, b->started, ph_bench_total_errors (b), summary, kinds);
  return b->completed > 0 ? 0 : 1;
}

/* --- bulk: one (or a few) long transfers --- */

static int
ph_bench_run_bulk (PhBench *b)
{
  double secs;
  g_autofree char *kinds = NULL;

  for (guint i = 0; i < b->opt->streams; i++)
    ph_bench_start_one (b);
  ph_bench_loop (b, ph_bench_latency_idle, NULL, 0);
  secs = b->bulk_last_end > b->bulk_first_start ? (b->bulk_last_end - b->bulk_first_start) / 1e6
                                                : 0.0;
  kinds = ph_bench_error_kinds (b);
  g_print ("mode=bulk transport=%s direction=%s streams=%u bytes=%" G_GUINT64_FORMAT
           " seconds=%.3f mb_per_s=%.1f errors=%" G_GUINT64_FORMAT " error_kinds=%s\n",
           ph_bench_transport_names[b->opt->transport], b->opt->upload ? "up" : "down",
           b->opt->streams, b->bulk_bytes, secs, secs > 0 ? b->bulk_bytes / secs / 1e6 : 0.0,
           ph_bench_total_errors (b), kinds);
  return b->completed == b->opt->streams ? 0 : 1;
}

/* --- hold: open K tunnels, make each carry one exchange, keep them idle --- */

/* in hold mode in_flight counts tunnels still being opened; held ones have left it */
static gboolean
ph_bench_hold_opened (PhBench *b)
{
  return b->started >= b->opt->tunnels && b->in_flight == 0;
}

static void
ph_bench_hold_open_tick (PhBench *b)
{
  while (b->started < b->opt->tunnels && b->in_flight < b->opt->open_concurrency)
    ph_bench_start_one (b);
}

static gboolean
ph_bench_hold_release (PhBench *b)
{
  return b->opt->until_file != NULL && g_file_test (b->opt->until_file, G_FILE_TEST_EXISTS);
}

static int
ph_bench_run_hold (PhBench *b)
{
  guint held;
  gint64 deadline;
  g_autofree char *kinds = NULL;

  ph_bench_hold_open_tick (b);
  ph_bench_loop (b, ph_bench_hold_opened, ph_bench_hold_open_tick, 0);
  held = b->held;
  kinds = ph_bench_error_kinds (b);
  g_print ("held=%u failed=%" G_GUINT64_FORMAT " closed_early=%u transport=%s error_kinds=%s\n",
           held - b->closed_early, ph_bench_total_errors (b), b->closed_early,
           ph_bench_transport_names[b->opt->transport], kinds);
  fflush (stdout);

  b->holding = TRUE;
  if (held == 0)
    return 1;
  deadline = ph_bench_now_us () + (gint64) (b->opt->max_hold * G_USEC_PER_SEC);
  ph_bench_loop (b, ph_bench_hold_release, NULL, deadline);
  g_print ("released held=%u still_open=%u closed_early=%u\n", held, b->conns->len,
           b->closed_early);
  while (b->conns->len > 0)
    ph_bench_conn_close (g_ptr_array_index (b->conns, 0));
  return held == b->opt->tunnels ? 0 : 1;
}

int
main (int argc, char **argv)
{
  PhBenchOptions o = {
    .proxy = NULL,
    .count = 200,
    .warmup = 20,
    .concurrency = 32,
    .duration = 10,
    .rate_warmup = 1,
    .streams = 1,
    .tunnels = 100,
    .open_concurrency = 64,
    .max_hold = 600,
    .timeout = 15,
  };
  g_autofree char *transport = NULL;
  g_autofree char *size = NULL;
  g_autoptr (GOptionContext) ctx = NULL;
  g_autoptr (GError) error = NULL;
  PhBench b = { 0 };
  sigset_t mask;
  struct epoll_event sev = { .events = EPOLLIN, .data.ptr = NULL };
  const char *mode;
  int rc = 2;
  GOptionEntry entries[] = {
    { "proxy", 'x', 0, G_OPTION_ARG_STRING, &o.proxy, "Proxy to load (HOST:PORT)", "HOST:PORT" },
    { "origin", 'o', 0, G_OPTION_ARG_STRING, &o.origin, "Origin behind the proxy", "HOST:PORT" },
    { "transport", 't', 0, G_OPTION_ARG_STRING, &transport,
      "connect-tls (default), connect-plain or absolute", "KIND" },
    { "ca-file", 0, 0, G_OPTION_ARG_FILENAME, &o.ca_file,
      "Verify the origin against this CA (default: no verification)", "PEM" },
    { "server-name", 0, 0, G_OPTION_ARG_STRING, &o.server_name, "SNI / name to verify", "NAME" },
    { "path", 0, 0, G_OPTION_ARG_STRING, &o.path, "Request path (default per mode)", "PATH" },
    { "count", 'n', 0, G_OPTION_ARG_INT, &o.count, "latency: samples (200)", "N" },
    { "warmup", 'w', 0, G_OPTION_ARG_INT, &o.warmup, "latency: discarded first tunnels (20)", "N" },
    { "interval", 0, 0, G_OPTION_ARG_DOUBLE, &o.interval_ms,
      "latency: at least MS between tunnel starts (0)", "MS" },
    { "concurrency", 'c', 0, G_OPTION_ARG_INT, &o.concurrency, "rate: tunnels in flight (32)",
      "C" },
    { "duration", 'd', 0, G_OPTION_ARG_DOUBLE, &o.duration, "rate: measured seconds (10)", "S" },
    { "rate-warmup", 0, 0, G_OPTION_ARG_DOUBLE, &o.rate_warmup,
      "rate: seconds before the window opens (1)", "S" },
    { "size", 's', 0, G_OPTION_ARG_STRING, &size, "bulk: bytes, K/M/G suffixes (1G)", "BYTES" },
    { "upload", 'u', 0, G_OPTION_ARG_NONE, &o.upload, "bulk: POST /sha256 instead of GET", NULL },
    { "streams", 0, 0, G_OPTION_ARG_INT, &o.streams, "bulk: parallel transfers sharing SIZE (1)",
      "N" },
    { "tunnels", 'k', 0, G_OPTION_ARG_INT, &o.tunnels, "hold: tunnels to open (100)", "K" },
    { "open-concurrency", 0, 0, G_OPTION_ARG_INT, &o.open_concurrency,
      "hold: tunnels being opened at once (64)", "N" },
    { "until-file", 0, 0, G_OPTION_ARG_FILENAME, &o.until_file,
      "hold: release when this file appears", "PATH" },
    { "max-hold", 0, 0, G_OPTION_ARG_DOUBLE, &o.max_hold, "hold: release after S seconds (600)",
      "S" },
    { "timeout", 0, 0, G_OPTION_ARG_DOUBLE, &o.timeout,
      "Fail a connection after S seconds without progress (15)", "S" },
    { "proxy-user", 0, 0, G_OPTION_ARG_STRING, &o.proxy_user,
      "Send Proxy-Authorization: Basic (needs --proxy-password-file)", "USER" },
    { "proxy-password-file", 0, 0, G_OPTION_ARG_FILENAME, &o.proxy_password_file,
      "File holding the proxy password", "FILE" },
    { "verbose", 'v', 0, G_OPTION_ARG_NONE, &o.verbose, "Report every failure", NULL },
    { NULL }
  };

  ctx = g_option_context_new ("latency|rate|bulk|hold - load an HTTP proxy");
  g_option_context_add_main_entries (ctx, entries, NULL);
  if (!g_option_context_parse (ctx, &argc, &argv, &error))
    {
      g_printerr ("ph-bench-client: %s\n", error->message);
      return 2;
    }
  if (argc != 2 || o.proxy == NULL || o.origin == NULL)
    {
      g_printerr ("usage: ph-bench-client latency|rate|bulk|hold --proxy HOST:PORT "
                  "--origin HOST:PORT [options] (see --help)\n");
      return 2;
    }
  mode = argv[1];
  if (g_str_equal (mode, "latency"))
    o.mode = PH_BENCH_MODE_LATENCY;
  else if (g_str_equal (mode, "rate"))
    o.mode = PH_BENCH_MODE_RATE;
  else if (g_str_equal (mode, "bulk"))
    o.mode = PH_BENCH_MODE_BULK;
  else if (g_str_equal (mode, "hold"))
    o.mode = PH_BENCH_MODE_HOLD;
  else
    {
      g_printerr ("ph-bench-client: unknown mode %s\n", mode);
      return 2;
    }
  o.transport = PH_BENCH_TRANSPORT_CONNECT_TLS;
  if (transport != NULL)
    {
      guint i;
      for (i = 0; i < G_N_ELEMENTS (ph_bench_transport_names); i++)
        if (g_str_equal (transport, ph_bench_transport_names[i]))
          break;
      if (i == G_N_ELEMENTS (ph_bench_transport_names))
        {
          g_printerr ("ph-bench-client: unknown transport %s\n", transport);
          return 2;
        }
      o.transport = i;
    }
  o.size = 1 << 30;
  if (size != NULL && !ph_bench_parse_size (size, &o.size))
    {
      g_printerr ("ph-bench-client: bad --size %s\n", size);
      return 2;
    }
  if (o.streams == 0 || o.concurrency == 0 || o.open_concurrency == 0 || o.timeout <= 0)
    {
      g_printerr ("ph-bench-client: counts and timeouts must be positive\n");
      return 2;
    }
  if (o.path == NULL)
    {
      if (o.mode == PH_BENCH_MODE_HOLD)
        o.path = g_strdup ("/hello");
      else if (o.upload)
        o.path = g_strdup ("/sha256");
      else if (o.mode == PH_BENCH_MODE_BULK)
        o.path = g_strdup_printf ("/bytes/%" G_GUINT64_FORMAT, o.size / o.streams);
      else
        o.path = g_strdup ("/bytes/1024");
    }

  b.opt = &o;
  b.proxy_auth_header = g_strdup ("");
  if (o.proxy_user != NULL)
    {
      g_autofree char *password = NULL;
      g_autofree char *pair = NULL;
      g_autofree char *b64 = NULL;
      if (o.proxy_password_file == NULL
          || !g_file_get_contents (o.proxy_password_file, &password, NULL, &error))
        {
          g_printerr ("ph-bench-client: --proxy-user needs a readable --proxy-password-file%s%s\n",
                      error ? ": " : "", error ? error->message : "");
          return 2;
        }
      g_strchomp (password);
      pair = g_strdup_printf ("%s:%s", o.proxy_user, password);
      b64 = g_base64_encode ((const guchar *) pair, strlen (pair));
      g_free (b.proxy_auth_header);
      b.proxy_auth_header = g_strdup_printf ("Proxy-Authorization: Basic %s\r\n", b64);
    }
  if (!ph_bench_resolve (&b, &error))
    {
      g_printerr ("ph-bench-client: %s\n", error->message);
      return 2;
    }
  gnutls_global_init ();
  gnutls_certificate_allocate_credentials (&b.creds);
  if (o.ca_file != NULL
      && gnutls_certificate_set_x509_trust_file (b.creds, o.ca_file, GNUTLS_X509_FMT_PEM) <= 0)
    {
      g_printerr ("ph-bench-client: no CA certificate in %s\n", o.ca_file);
      return 2;
    }

  signal (SIGPIPE, SIG_IGN);
  sigemptyset (&mask);
  sigaddset (&mask, SIGINT);
  sigaddset (&mask, SIGTERM);
  sigaddset (&mask, SIGUSR1);
  sigprocmask (SIG_BLOCK, &mask, NULL);
  b.sigfd = signalfd (-1, &mask, SFD_NONBLOCK | SFD_CLOEXEC);
  b.epfd = epoll_create1 (EPOLL_CLOEXEC);
  epoll_ctl (b.epfd, EPOLL_CTL_ADD, b.sigfd, &sev);

  b.conns = g_ptr_array_new ();
  b.scratch = g_malloc (PH_BENCH_SCRATCH);
  b.pattern = g_malloc (PH_BENCH_SCRATCH);
  for (gsize i = 0; i < PH_BENCH_SCRATCH; i++)
    b.pattern[i] = "pinhole-bench-upload-0123456789\n"[i % 32];
  b.samples_ms = g_array_new (FALSE, FALSE, sizeof (double));
  for (guint p = 0; p < PH_BENCH_PHASE_LAST; p++)
    b.phase_ms[p] = g_array_new (FALSE, FALSE, sizeof (double));

  switch (o.mode)
    {
      case PH_BENCH_MODE_LATENCY:
        rc = ph_bench_run_latency (&b);
        break;
      case PH_BENCH_MODE_RATE:
        rc = ph_bench_run_rate (&b);
        break;
      case PH_BENCH_MODE_BULK:
        rc = ph_bench_run_bulk (&b);
        break;
      case PH_BENCH_MODE_HOLD:
        rc = ph_bench_run_hold (&b);
        break;
    }

  while (b.conns->len > 0)
    ph_bench_conn_close (g_ptr_array_index (b.conns, 0));
  {
    /* the load generator's own cost, so a run can show it was not the bottleneck */
    struct rusage ru;
    getrusage (RUSAGE_SELF, &ru);
    g_print ("self_cpu_s=%.3f\n", ru.ru_utime.tv_sec + ru.ru_stime.tv_sec
                                      + (ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6);
  }
  g_ptr_array_unref (b.conns);
  g_array_unref (b.samples_ms);
  for (guint p = 0; p < PH_BENCH_PHASE_LAST; p++)
    g_array_unref (b.phase_ms[p]);
  g_free (b.scratch);
  g_free (b.pattern);
  g_free (b.origin_authority);
  g_free (b.origin_host);
  gnutls_certificate_free_credentials (b.creds);
  close (b.epfd);
  close (b.sigfd);
  g_free (o.proxy);
  g_free (o.origin);
  g_free (o.ca_file);
  g_free (o.server_name);
  g_free (o.path);
  g_free (o.until_file);
  g_free (o.proxy_user);
  g_free (o.proxy_password_file);
  g_free (b.proxy_auth_header);
  gnutls_global_deinit ();
  return rc;
}

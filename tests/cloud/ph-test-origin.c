/* SPDX-License-Identifier: GPL-2.0-or-later */
/* ph-test-origin.c: a small, fast HTTP/1.1 origin server (plain and TLS) for the integration
 * tests and benchmarks: bulk bytes, chunked bodies, upload hashing, header echo, resets, interim
 * responses and arbitrary statuses. */

#define _GNU_SOURCE /* accept4, MSG_MORE */

#include <arpa/inet.h>
#include <errno.h>
#include <glib.h>
#include <gnutls/crypto.h>
#include <gnutls/gnutls.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "ph-test-cloud.h"

#define PH_ORIGIN_MAX_HEAD (64 * 1024)
#define PH_ORIGIN_BLOCK (1024 * 1024) /* a multiple of the pattern period */
#define PH_ORIGIN_SCRATCH (256 * 1024)
#define PH_ORIGIN_THREAD_STACK (256 * 1024)
#define PH_ORIGIN_IDLE_TIMEOUT_S 600

typedef struct
{
  int fd;
  gnutls_session_t tls; /* NULL for plain HTTP */
  char *in;             /* received and not yet consumed: in[in_off .. in_len) */
  gsize in_off;
  gsize in_len;
  guint8 *scratch; /* allocated on first upload */
} PhOriginConn;

typedef struct
{
  char *method;
  char *path;
  char *query;
  char *head; /* the raw head, blank line included */
  gsize head_len;
  gboolean http10;
  gboolean keep_alive;
  gboolean chunked;
  gboolean has_length;
  guint64 content_length;
  gboolean expect_continue;
  gboolean bad;
} PhOriginRequest;

static guint8 *ph_origin_block; /* PH_ORIGIN_BLOCK pattern bytes, shared read-only */
static gnutls_certificate_credentials_t ph_origin_creds;
static gnutls_priority_t ph_origin_priority;
static gnutls_datum_t ph_origin_ticket_key;
static gboolean ph_origin_verbose;

static void
ph_origin_request_clear (PhOriginRequest *req)
{
  g_free (req->method);
  g_free (req->path);
  g_free (req->query);
  g_free (req->head);
  memset (req, 0, sizeof *req);
}

/* --- I/O on plain or TLS connections; blocking, retried on EINTR/EAGAIN --- */

static gssize
ph_origin_recv (PhOriginConn *conn, void *buf, gsize len)
{
  for (;;)
    {
      gssize n;

      if (conn->tls != NULL)
        {
          n = gnutls_record_recv (conn->tls, buf, len);
          if (n == GNUTLS_E_INTERRUPTED || n == GNUTLS_E_AGAIN)
            continue;
          if (n == GNUTLS_E_PREMATURE_TERMINATION)
            return 0;
          return n < 0 ? -1 : n;
        }
      n = recv (conn->fd, buf, len, 0);
      if (n < 0 && errno == EINTR)
        continue;
      return n;
    }
}

static gboolean
ph_origin_send_all (PhOriginConn *conn, const void *data, gsize len, gboolean more)
{
  const guint8 *p = data;

  while (len > 0)
    {
      gssize n;

      if (conn->tls != NULL)
        {
          n = gnutls_record_send (conn->tls, p, len);
          if (n == GNUTLS_E_INTERRUPTED || n == GNUTLS_E_AGAIN)
            continue;
          if (n < 0)
            return FALSE;
        }
      else
        {
          n = send (conn->fd, p, len, MSG_NOSIGNAL | (more ? MSG_MORE : 0));
          if (n < 0 && errno == EINTR)
            continue;
          if (n <= 0)
            return FALSE;
        }
      p += n;
      len -= (gsize) n;
    }
  return TRUE;
}

static gboolean
ph_origin_send_str (PhOriginConn *conn, const char *str, gboolean more)
{
  return ph_origin_send_all (conn, str, strlen (str), more);
}

static gsize
ph_origin_pending (PhOriginConn *conn)
{
  return conn->in_len - conn->in_off;
}

/* Reads more bytes into the input buffer; FALSE on EOF, error or a full buffer. */
static gboolean
ph_origin_fill (PhOriginConn *conn)
{
  gssize n;

  if (conn->in_off > 0)
    {
      memmove (conn->in, conn->in + conn->in_off, ph_origin_pending (conn));
      conn->in_len -= conn->in_off;
      conn->in_off = 0;
    }
  if (conn->in_len >= PH_ORIGIN_MAX_HEAD)
    return FALSE;
  n = ph_origin_recv (conn, conn->in + conn->in_len, PH_ORIGIN_MAX_HEAD - conn->in_len);
  if (n <= 0)
    return FALSE;
  conn->in_len += (gsize) n;
  return TRUE;
}

/* Returns the length of the CRLF-terminated line at the front of the input (CRLF included),
 * reading as needed; 0 on EOF or when no line fits. */
static gsize
ph_origin_line (PhOriginConn *conn)
{
  gsize scanned = 0;

  for (;;)
    {
      const char *start = conn->in + conn->in_off;
      const char *nl = memchr (start + scanned, '\n', ph_origin_pending (conn) - scanned);

      if (nl != NULL)
        return (gsize) (nl - start) + 1;
      scanned = ph_origin_pending (conn);
      if (!ph_origin_fill (conn))
        return 0;
    }
}

/* Consumes @len body bytes from the connection, feeding them to @hash when not NULL. */
static gboolean
ph_origin_consume (PhOriginConn *conn, guint64 len, gnutls_hash_hd_t hash)
{
  while (len > 0)
    {
      gsize avail = ph_origin_pending (conn);

      if (avail > 0)
        {
          gsize n = (gsize) MIN ((guint64) avail, len);

          if (hash != NULL)
            gnutls_hash (hash, conn->in + conn->in_off, n);
          conn->in_off += n;
          len -= n;
        }
      else
        {
          gssize n;

          if (conn->scratch == NULL)
            conn->scratch = g_malloc (PH_ORIGIN_SCRATCH);
          n = ph_origin_recv (conn, conn->scratch, (gsize) MIN ((guint64) PH_ORIGIN_SCRATCH, len));
          if (n <= 0)
            return FALSE;
          if (hash != NULL)
            gnutls_hash (hash, conn->scratch, (gsize) n);
          len -= (guint64) n;
        }
    }
  return TRUE;
}

/* Consumes a chunked body (trailers included); the byte count goes to @total. */
static gboolean
ph_origin_consume_chunked (PhOriginConn *conn, gnutls_hash_hd_t hash, guint64 *total)
{
  for (;;)
    {
      gsize line_len = ph_origin_line (conn);
      g_autofree char *line = NULL;
      char *end = NULL;
      guint64 size;

      if (line_len == 0)
        return FALSE;
      line = g_strndup (conn->in + conn->in_off, line_len);
      conn->in_off += line_len;
      if (!g_ascii_isxdigit (line[0]))
        return FALSE;
      size = g_ascii_strtoull (line, &end, 16);
      if (end == line || (*end != ';' && *end != '\r' && *end != '\n' && *end != ' '))
        return FALSE;
      if (size == 0)
        break;
      if (!ph_origin_consume (conn, size, hash))
        return FALSE;
      *total += size;
      line_len = ph_origin_line (conn);
      if (line_len == 0 || (conn->in[conn->in_off] != '\r' && conn->in[conn->in_off] != '\n'))
        return FALSE;
      conn->in_off += line_len;
    }
  /* Trailer section, up to the blank line. */
  for (;;)
    {
      gsize line_len = ph_origin_line (conn);
      gboolean blank;

      if (line_len == 0)
        return FALSE;
      blank = line_len <= 2;
      conn->in_off += line_len;
      if (blank)
        return TRUE;
    }
}

/* --- request parsing --- */

static gboolean
ph_origin_token_in_list (const char *value, const char *token)
{
  g_auto (GStrv) items = g_strsplit (value, ",", -1);

  for (guint i = 0; items[i] != NULL; i++)
    {
      if (g_ascii_strcasecmp (g_strstrip (items[i]), token) == 0)
        return TRUE;
    }
  return FALSE;
}

/* Reads and parses one request head; FALSE when the connection ended (or sent garbage that
 * cannot be answered). A head that is readable but wrong sets req->bad. */
static gboolean
ph_origin_read_request (PhOriginConn *conn, PhOriginRequest *req)
{
  const char *end = NULL;
  gsize scanned = 0;
  g_auto (GStrv) lines = NULL;
  g_auto (GStrv) parts = NULL;
  const char *target;
  const char *q;
  gboolean saw_close = FALSE;
  gboolean saw_keep_alive = FALSE;

  for (;;)
    {
      const char *start = conn->in + conn->in_off;
      gsize avail = ph_origin_pending (conn);

      if (avail >= 4)
        {
          end = g_strstr_len (start + scanned, (gssize) (avail - scanned), "\r\n\r\n");
          if (end != NULL)
            break;
          scanned = avail - 3;
        }
      if (!ph_origin_fill (conn))
        {
          if (conn->in_len >= PH_ORIGIN_MAX_HEAD)
            req->bad = TRUE;
          return req->bad;
        }
      scanned = MIN (scanned, ph_origin_pending (conn));
    }

  req->head_len = (gsize) (end - (conn->in + conn->in_off)) + 4;
  req->head = g_strndup (conn->in + conn->in_off, req->head_len);
  conn->in_off += req->head_len;

  lines = g_strsplit (req->head, "\r\n", -1);
  parts = g_strsplit (lines[0], " ", 4);
  if (g_strv_length (parts) != 3 || !g_str_has_prefix (parts[2], "HTTP/1."))
    {
      req->bad = TRUE;
      return TRUE;
    }
  req->method = g_strdup (parts[0]);
  req->http10 = g_strcmp0 (parts[2], "HTTP/1.0") == 0;
  target = parts[1];
  if (g_str_has_prefix (target, "http://") || g_str_has_prefix (target, "https://"))
    {
      const char *slash = strchr (strstr (target, "://") + 3, '/');

      target = slash != NULL ? slash : "/";
    }
  q = strchr (target, '?');
  req->path = q != NULL ? g_strndup (target, (gsize) (q - target)) : g_strdup (target);
  req->query = g_strdup (q != NULL ? q + 1 : "");

  for (guint i = 1; lines[i] != NULL && lines[i][0] != '\0'; i++)
    {
      char *colon = strchr (lines[i], ':');
      g_autofree char *name = NULL;
      const char *value;

      if (colon == NULL || colon == lines[i] || lines[i][0] == ' ' || lines[i][0] == '\t')
        {
          req->bad = TRUE;
          continue;
        }
      name = g_strndup (lines[i], (gsize) (colon - lines[i]));
      value = colon + 1;
      while (*value == ' ' || *value == '\t')
        value++;
      if (g_ascii_strcasecmp (name, "Content-Length") == 0)
        {
          char *num_end = NULL;

          if (req->has_length || !g_ascii_isdigit (value[0]))
            req->bad = TRUE;
          req->content_length = g_ascii_strtoull (value, &num_end, 10);
          if (*num_end != '\0' && *num_end != ' ')
            req->bad = TRUE;
          req->has_length = TRUE;
        }
      else if (g_ascii_strcasecmp (name, "Transfer-Encoding") == 0)
        {
          req->chunked = ph_origin_token_in_list (value, "chunked");
          if (!req->chunked)
            req->bad = TRUE;
        }
      else if (g_ascii_strcasecmp (name, "Expect") == 0)
        {
          req->expect_continue = g_ascii_strcasecmp (value, "100-continue") == 0;
        }
      else if (g_ascii_strcasecmp (name, "Connection") == 0)
        {
          saw_close |= ph_origin_token_in_list (value, "close");
          saw_keep_alive |= ph_origin_token_in_list (value, "keep-alive");
        }
    }
  if (req->chunked && req->has_length)
    req->bad = TRUE;
  req->keep_alive = req->http10 ? saw_keep_alive && !saw_close : !saw_close;
  return TRUE;
}

/* --- responses --- */

static gboolean
ph_origin_send_head (PhOriginConn *conn, PhOriginRequest *req, const char *status,
                     const char *extra, gboolean more)
{
  g_autofree char *head
      = g_strdup_printf ("HTTP/1.1 %s\r\nServer: ph-test-origin\r\n%s%s\r\n", status, extra,
                         !req->keep_alive ? "Connection: close\r\n"
                         : req->http10    ? "Connection: keep-alive\r\n"
                                          : "");

  return ph_origin_send_str (conn, head, more);
}

static gboolean
ph_origin_send_simple (PhOriginConn *conn, PhOriginRequest *req, const char *status,
                       const char *body)
{
  g_autofree char *extra = g_strdup_printf (
      "Content-Type: text/plain; charset=utf-8\r\nContent-Length: %zu\r\n", strlen (body));

  return ph_origin_send_head (conn, req, status, extra, TRUE)
         && ph_origin_send_str (conn, body, FALSE);
}

/* Sends pattern bytes [@offset, @offset + @len) straight from the shared block. */
static gboolean
ph_origin_send_pattern (PhOriginConn *conn, guint64 offset, guint64 len)
{
  while (len > 0)
    {
      gsize at = (gsize) (offset % PH_ORIGIN_BLOCK);
      gsize n = (gsize) MIN ((guint64) (PH_ORIGIN_BLOCK - at), len);

      if (!ph_origin_send_all (conn, ph_origin_block + at, n, FALSE))
        return FALSE;
      offset += n;
      len -= n;
    }
  return TRUE;
}

static char *
ph_origin_hex (const guint8 *data, gsize len)
{
  char *hex = g_malloc (2 * len + 1);

  for (gsize i = 0; i < len; i++)
    g_snprintf (hex + 2 * i, 3, "%02x", data[i]);
  return hex;
}

static char *
ph_origin_pattern_sha256 (guint64 len)
{
  gnutls_hash_hd_t hash;
  guint8 digest[32];
  guint64 done = 0;

  gnutls_hash_init (&hash, GNUTLS_DIG_SHA256);
  while (done < len)
    {
      gsize n = (gsize) MIN ((guint64) PH_ORIGIN_BLOCK, len - done);

      gnutls_hash (hash, ph_origin_block, n);
      done += n;
    }
  gnutls_hash_deinit (hash, digest);
  return ph_origin_hex (digest, sizeof digest);
}

static gboolean
ph_origin_parse_count (const char *path, const char *prefix, guint64 *out)
{
  const char *num = path + strlen (prefix);
  char *end = NULL;

  if (!g_str_has_prefix (path, prefix) || !g_ascii_isdigit (*num))
    return FALSE;
  *out = g_ascii_strtoull (num, &end, 10);
  return *end == '\0';
}

static gboolean
ph_origin_query_has (const char *query, const char *item)
{
  g_auto (GStrv) items = g_strsplit (query, "&", -1);

  return g_strv_contains ((const char *const *) items, item);
}

static gboolean
ph_origin_serve_bytes (PhOriginConn *conn, PhOriginRequest *req, guint64 len)
{
  g_autofree char *sha = NULL;
  g_autofree char *extra = NULL;

  if (ph_origin_query_has (req->query, "sha=1"))
    sha = ph_origin_pattern_sha256 (len);
  extra = g_strdup_printf (
      "Content-Type: application/octet-stream\r\nContent-Length: %" G_GUINT64_FORMAT "\r\n%s%s%s",
      len, sha != NULL ? "X-Body-SHA256: " : "", sha != NULL ? sha : "", sha != NULL ? "\r\n" : "");
  return ph_origin_send_head (conn, req, "200 OK", extra, len > 0)
         && ph_origin_send_pattern (conn, 0, len);
}

static gboolean
ph_origin_serve_chunked (PhOriginConn *conn, PhOriginRequest *req, guint64 len)
{
  const gsize chunk = 256 * 1024;
  guint64 offset = 0;

  if (conn->tls != NULL)
    gnutls_record_cork (conn->tls);
  if (!ph_origin_send_head (conn, req, "200 OK",
                            "Content-Type: application/octet-stream\r\n"
                            "Transfer-Encoding: chunked\r\n",
                            TRUE))
    return FALSE;
  while (offset < len)
    {
      gsize n = (gsize) MIN ((guint64) chunk, len - offset);
      char size_line[32];

      g_snprintf (size_line, sizeof size_line, "%zx\r\n", n);
      if (!ph_origin_send_str (conn, size_line, TRUE) || !ph_origin_send_pattern (conn, offset, n)
          || !ph_origin_send_str (conn, "\r\n", TRUE))
        return FALSE;
      offset += n;
      if (conn->tls != NULL && gnutls_record_uncork (conn->tls, GNUTLS_RECORD_WAIT) < 0)
        return FALSE;
      if (conn->tls != NULL)
        gnutls_record_cork (conn->tls);
    }
  if (!ph_origin_send_str (conn, "0\r\n\r\n", FALSE))
    return FALSE;
  return conn->tls == NULL || gnutls_record_uncork (conn->tls, GNUTLS_RECORD_WAIT) >= 0;
}

static gboolean
ph_origin_serve_sha256 (PhOriginConn *conn, PhOriginRequest *req)
{
  gnutls_hash_hd_t hash;
  guint8 digest[32];
  guint64 total = 0;
  gboolean ok;
  g_autofree char *hex = NULL;
  g_autofree char *body = NULL;

  if (req->expect_continue && !req->http10
      && !ph_origin_send_str (conn, "HTTP/1.1 100 Continue\r\n\r\n", FALSE))
    return FALSE;
  gnutls_hash_init (&hash, GNUTLS_DIG_SHA256);
  if (req->chunked)
    {
      ok = ph_origin_consume_chunked (conn, hash, &total);
    }
  else
    {
      total = req->content_length;
      ok = ph_origin_consume (conn, req->content_length, hash);
    }
  gnutls_hash_deinit (hash, digest);
  if (!ok)
    return FALSE;
  hex = ph_origin_hex (digest, sizeof digest);
  body = g_strdup_printf ("%s %" G_GUINT64_FORMAT "\n", hex, total);
  return ph_origin_send_simple (conn, req, "200 OK", body);
}

/* Answers with a huge Content-Length, sends @len bytes and resets the TCP connection. */
static void
ph_origin_serve_reset (PhOriginConn *conn, PhOriginRequest *req, guint64 len)
{
  struct linger lg = { 1, 0 };

  if (ph_origin_send_head (conn, req, "200 OK",
                           "Content-Type: application/octet-stream\r\n"
                           "Content-Length: 1000000000\r\n",
                           TRUE))
    ph_origin_send_pattern (conn, 0, len);
  setsockopt (conn->fd, SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
}

/* N interim heads (100 by default, ?code=102 or ?code=103), then a 200: what a server that
 * answers "still working" too often looks like to a proxy. */
static gboolean
ph_origin_serve_interim (PhOriginConn *conn, PhOriginRequest *req, guint64 n)
{
  guint code = ph_origin_query_has (req->query, "code=102")   ? 102
               : ph_origin_query_has (req->query, "code=103") ? 103
                                                              : 100;
  const char *interim = ph_test_interim_head (code);
  g_autoptr (GString) batch = g_string_new (NULL);
  g_autofree char *body = ph_test_interim_body (n);

  for (guint64 i = 0; i < n; i++)
    {
      g_string_append (batch, interim);
      /* In batches: a client that gives up early must not make this buffer it all. */
      if (batch->len >= 16 * 1024 || i + 1 == n)
        {
          if (!ph_origin_send_str (conn, batch->str, TRUE))
            return FALSE;
          g_string_truncate (batch, 0);
        }
    }
  return ph_origin_send_simple (conn, req, "200 OK", body);
}

static const char *
ph_origin_reason (guint64 status)
{
  switch (status)
    {
      case 200:
        return "OK";
      case 401:
        return "Unauthorized";
      case 403:
        return "Forbidden";
      case 407:
        return "Proxy Authentication Required";
      case 500:
        return "Internal Server Error";
      case 503:
        return "Service Unavailable";
      default:
        return "Status";
    }
}

/* Any final status, with a body naming it; ?challenge=1 adds the authentication challenge a
 * 401 or 407 usually carries, to see what a proxy on the way makes of it; ?challenge=ntlm a 401's
 * NTLM challenge (a sign-in bound to the connection). */
static gboolean
ph_origin_serve_status (PhOriginConn *conn, PhOriginRequest *req, guint64 status)
{
  gboolean challenge = ph_origin_query_has (req->query, "challenge=1");
  gboolean ntlm = ph_origin_query_has (req->query, "challenge=ntlm");
  g_autofree char *line = NULL;
  g_autofree char *extra = NULL;
  g_autofree char *body = ph_test_status_body ((guint) status);

  if (status < 200 || status > 599)
    return ph_origin_send_simple (conn, req, "400 Bad Request", "status must be 200-599\n");
  line = g_strdup_printf ("%" G_GUINT64_FORMAT " %s", status, ph_origin_reason (status));
  extra = g_strdup_printf ("X-Origin-Status: %" G_GUINT64_FORMAT "\r\n%s"
                           "Content-Type: text/plain; charset=utf-8\r\nContent-Length: %zu\r\n",
                           status,
                           ntlm && status == 401 ? "WWW-Authenticate: NTLM\r\n"
                           : !challenge          ? ""
                           : status == 407       ? "Proxy-Authenticate: Basic realm=\"origin\"\r\n"
                           : status == 401       ? "WWW-Authenticate: Basic realm=\"origin\"\r\n"
                                                 : "",
                           strlen (body));
  return ph_origin_send_head (conn, req, line, extra, TRUE)
         && ph_origin_send_str (conn, body, FALSE);
}

/* Drains a request body nobody asked for, so the next request on the connection parses. */
static gboolean
ph_origin_skip_body (PhOriginConn *conn, PhOriginRequest *req)
{
  guint64 total = 0;

  if (req->chunked)
    return ph_origin_consume_chunked (conn, NULL, &total);
  return ph_origin_consume (conn, req->has_length ? req->content_length : 0, NULL);
}

/* Serves one request; FALSE when the connection must close afterwards. */
static gboolean
ph_origin_serve (PhOriginConn *conn, PhOriginRequest *req)
{
  gboolean is_get = g_strcmp0 (req->method, "GET") == 0;
  guint64 n = 0;

  if (req->bad)
    {
      req->keep_alive = FALSE;
      ph_origin_send_simple (conn, req, "400 Bad Request", "bad request\n");
      return FALSE;
    }
  if ((g_strcmp0 (req->method, "POST") == 0 || g_strcmp0 (req->method, "PUT") == 0)
      && g_strcmp0 (req->path, "/sha256") == 0)
    return ph_origin_serve_sha256 (conn, req) && req->keep_alive;

  if (!ph_origin_skip_body (conn, req))
    return FALSE;
  if (is_get && g_strcmp0 (req->path, "/hello") == 0)
    return ph_origin_send_simple (conn, req, "200 OK", "hello\n") && req->keep_alive;
  if (is_get && g_strcmp0 (req->path, "/headers") == 0)
    return ph_origin_send_simple (conn, req, "200 OK", req->head) && req->keep_alive;
  if (is_get && ph_origin_parse_count (req->path, "/bytes/", &n))
    return ph_origin_serve_bytes (conn, req, n) && req->keep_alive;
  if (is_get && ph_origin_parse_count (req->path, "/chunked/", &n))
    return ph_origin_serve_chunked (conn, req, n) && req->keep_alive;
  if (is_get && ph_origin_parse_count (req->path, "/interim/", &n))
    return ph_origin_serve_interim (conn, req, n) && req->keep_alive;
  if (is_get && ph_origin_parse_count (req->path, "/status/", &n))
    return ph_origin_serve_status (conn, req, n) && req->keep_alive;
  if (is_get && ph_origin_parse_count (req->path, "/reset/", &n))
    {
      ph_origin_serve_reset (conn, req, n);
      return FALSE;
    }
  return ph_origin_send_simple (conn, req, "404 Not Found", "not found\n") && req->keep_alive;
}

static gboolean
ph_origin_tls_start (PhOriginConn *conn)
{
  int ret;

  if (gnutls_init (&conn->tls, GNUTLS_SERVER) < 0)
    {
      conn->tls = NULL;
      return FALSE;
    }
  gnutls_priority_set (conn->tls, ph_origin_priority);
  gnutls_credentials_set (conn->tls, GNUTLS_CRD_CERTIFICATE, ph_origin_creds);
  gnutls_session_ticket_enable_server (conn->tls, &ph_origin_ticket_key);
  gnutls_transport_set_int (conn->tls, conn->fd);
  gnutls_handshake_set_timeout (conn->tls, 30 * 1000);
  do
    ret = gnutls_handshake (conn->tls);
  while (ret < 0 && gnutls_error_is_fatal (ret) == 0);
  if (ret < 0 && ph_origin_verbose)
    g_printerr ("ph-test-origin: handshake: %s\n", gnutls_strerror (ret));
  return ret >= 0;
}

typedef struct
{
  int fd;
  gboolean tls;
} PhOriginJob;

static void *
ph_origin_conn_thread (void *data)
{
  PhOriginJob *job = data;
  PhOriginConn conn = { .fd = job->fd };
  gboolean tls = job->tls;
  gboolean reset = FALSE;

  g_free (job);
  conn.in = g_malloc (PH_ORIGIN_MAX_HEAD);
  if (!tls || ph_origin_tls_start (&conn))
    {
      for (;;)
        {
          PhOriginRequest req = { 0 };
          gboolean again;

          if (!ph_origin_read_request (&conn, &req))
            {
              ph_origin_request_clear (&req);
              break;
            }
          again = ph_origin_serve (&conn, &req);
          reset = g_str_has_prefix (req.path != NULL ? req.path : "", "/reset/");
          ph_origin_request_clear (&req);
          if (!again)
            break;
        }
    }
  if (conn.tls != NULL)
    {
      if (!reset)
        gnutls_bye (conn.tls, GNUTLS_SHUT_WR);
      gnutls_deinit (conn.tls);
    }
  close (conn.fd);
  g_free (conn.in);
  g_free (conn.scratch);
  return NULL;
}

/* --- listeners --- */

static int
ph_origin_listen (int family, guint16 port, guint16 *bound_port)
{
  int fd = socket (family, SOCK_STREAM | SOCK_CLOEXEC, 0);
  int one = 1;
  struct sockaddr_storage ss = { 0 };
  socklen_t len;

  if (fd < 0)
    return -1;
  setsockopt (fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  if (family == AF_INET6)
    {
      struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *) &ss;

      setsockopt (fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof one);
      sin6->sin6_family = AF_INET6;
      sin6->sin6_addr = in6addr_loopback;
      sin6->sin6_port = htons (port);
      len = sizeof *sin6;
    }
  else
    {
      struct sockaddr_in *sin = (struct sockaddr_in *) &ss;

      sin->sin_family = AF_INET;
      sin->sin_addr.s_addr = htonl (INADDR_LOOPBACK);
      sin->sin_port = htons (port);
      len = sizeof *sin;
    }
  if (bind (fd, (struct sockaddr *) &ss, len) < 0 || listen (fd, 4096) < 0)
    {
      close (fd);
      return -1;
    }
  len = sizeof ss;
  getsockname (fd, (struct sockaddr *) &ss, &len);
  *bound_port = ntohs (family == AF_INET6 ? ((struct sockaddr_in6 *) &ss)->sin6_port
                                          : ((struct sockaddr_in *) &ss)->sin_port);
  return fd;
}

static void
ph_origin_spawn (int fd, gboolean tls, pthread_attr_t *attr)
{
  PhOriginJob *job = g_new0 (PhOriginJob, 1);
  pthread_t thread;
  int one = 1;

  setsockopt (fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  {
    struct timeval tv = { .tv_sec = PH_ORIGIN_IDLE_TIMEOUT_S };

    setsockopt (fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  }
  job->fd = fd;
  job->tls = tls;
  if (pthread_create (&thread, attr, ph_origin_conn_thread, job) != 0)
    {
      g_printerr ("ph-test-origin: cannot start a thread: %s\n", g_strerror (errno));
      close (fd);
      g_free (job);
    }
}

static gboolean
ph_origin_setup_tls (const char *cert, const char *key, GError **error)
{
  int ret = gnutls_certificate_allocate_credentials (&ph_origin_creds);

  if (ret >= 0)
    ret = gnutls_certificate_set_x509_key_file (ph_origin_creds, cert, key, GNUTLS_X509_FMT_PEM);
  if (ret >= 0)
    ret = gnutls_priority_init (&ph_origin_priority, NULL, NULL);
  if (ret >= 0)
    ret = gnutls_session_ticket_key_generate (&ph_origin_ticket_key);
  if (ret < 0)
    {
      g_set_error (error, G_IO_ERROR, G_IO_ERROR_FAILED, "TLS setup (%s, %s): %s", cert, key,
                   gnutls_strerror (ret));
      return FALSE;
    }
  return TRUE;
}

int
main (int argc, char **argv)
{
  int http_port = 0;
  int https_port = -1;
  g_autofree char *cert = NULL;
  g_autofree char *key = NULL;
  GOptionEntry entries[] = {
    { "http-port", 0, 0, G_OPTION_ARG_INT, &http_port, "Plain HTTP port (0: a free one)", "N" },
    { "https-port", 0, 0, G_OPTION_ARG_INT, &https_port,
      "HTTPS port (0: a free one; default: none, or free with --cert)", "N" },
    { "cert", 0, 0, G_OPTION_ARG_FILENAME, &cert, "HTTPS certificate chain (PEM)", "FILE" },
    { "key", 0, 0, G_OPTION_ARG_FILENAME, &key, "HTTPS private key (PEM)", "FILE" },
    { "verbose", 'v', 0, G_OPTION_ARG_NONE, &ph_origin_verbose, "Log connection errors", NULL },
    { NULL },
  };
  g_autoptr (GOptionContext) context = g_option_context_new ("- Pinhole test origin server");
  g_autoptr (GError) error = NULL;
  struct pollfd pfds[4];
  gboolean pfd_tls[4];
  guint n_pfds = 0;
  guint16 ports[2] = { 0, 0 };
  pthread_attr_t attr;

  g_option_context_add_main_entries (context, entries, NULL);
  if (!g_option_context_parse (context, &argc, &argv, &error))
    {
      g_printerr ("ph-test-origin: %s\n", error->message);
      return 2;
    }
  if (cert != NULL && https_port < 0)
    https_port = 0;
  if (https_port >= 0 && (cert == NULL || key == NULL))
    {
      g_printerr ("ph-test-origin: --https-port needs --cert and --key\n");
      return 2;
    }
  if (http_port < 0 || http_port > 65535 || https_port > 65535)
    {
      g_printerr ("ph-test-origin: bad port\n");
      return 2;
    }

  signal (SIGPIPE, SIG_IGN);
  ph_origin_block = g_malloc (PH_ORIGIN_BLOCK);
  ph_test_pattern_fill (ph_origin_block, PH_ORIGIN_BLOCK, 0);
  if (https_port >= 0 && !ph_origin_setup_tls (cert, key, &error))
    {
      g_printerr ("ph-test-origin: %s\n", error->message);
      return 1;
    }

  for (guint i = 0; i < 2; i++)
    {
      int want = i == 0 ? http_port : https_port;
      guint16 v6_port;
      int fd;

      if (want < 0)
        continue;
      fd = ph_origin_listen (AF_INET, (guint16) want, &ports[i]);
      if (fd < 0)
        {
          g_printerr ("ph-test-origin: cannot listen on 127.0.0.1:%d: %s\n", want,
                      g_strerror (errno));
          return 1;
        }
      pfds[n_pfds] = (struct pollfd){ .fd = fd, .events = POLLIN };
      pfd_tls[n_pfds++] = i == 1;
      /* [::1] on the same port when the host has it; tests probe for it. */
      fd = ph_origin_listen (AF_INET6, ports[i], &v6_port);
      if (fd >= 0)
        {
          pfds[n_pfds] = (struct pollfd){ .fd = fd, .events = POLLIN };
          pfd_tls[n_pfds++] = i == 1;
        }
    }

  printf ("http=%u https=%u\n", ports[0], ports[1]);
  fflush (stdout);

  pthread_attr_init (&attr);
  pthread_attr_setstacksize (&attr, PH_ORIGIN_THREAD_STACK);
  pthread_attr_setdetachstate (&attr, PTHREAD_CREATE_DETACHED);
  for (;;)
    {
      if (poll (pfds, n_pfds, -1) < 0)
        {
          if (errno == EINTR)
            continue;
          g_printerr ("ph-test-origin: poll: %s\n", g_strerror (errno));
          return 1;
        }
      for (guint i = 0; i < n_pfds; i++)
        {
          int fd;

          if ((pfds[i].revents & POLLIN) == 0)
            continue;
          fd = accept4 (pfds[i].fd, NULL, NULL, SOCK_CLOEXEC);
          if (fd >= 0)
            ph_origin_spawn (fd, pfd_tls[i], &attr);
          else if (errno == EMFILE || errno == ENFILE)
            g_usleep (10 * 1000); /* out of fds: let connections finish */
        }
    }
}

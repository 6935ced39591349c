/* SPDX-License-Identifier: GPL-2.0-or-later */
/* ph-h2-exchange.c: an HTTP/1.1 exchange carried on one HTTP/2 stream (see ph-h2-exchange.h).
 * The request's head is parsed with the parser that reads clients' heads (ph-http.c, fuzzed),
 * its body's framing taken off by the body scanner (ph_body_scanner_decode); the answer is
 * written in HTTP/1.1 for the exchange's reader, which parses it as it parses any proxy's. */
#define G_LOG_DOMAIN "pinhole-h2"

#include "ph-h2-exchange.h"

#include <glib/gi18n.h>
#include <string.h>

#include "ph-error.h"
#include "ph-http.h"
#include "ph-wipe.h"

/* The request head's bytes are held until whole: no more than the client's own head may be
 * (ph_http_default_limits) and the lines the agent adds (the credentials). */
#define HEAD_EXTRA 8192
/* Bytes of the answer's body read from the stream at a time (one chunk each). */
#define READ_CHUNK 16384

typedef struct _PhH2Exchange PhH2Exchange;

typedef struct
{
  GSource source;
  PhH2Exchange *x; /* NULL once the exchange is gone */
  gboolean for_write;
} ExchangeWait;

struct _PhH2Exchange
{
  PhH2Session *session;
  PhH2Stream *stream; /* NULL until the request head is whole */
  GByteArray *head;   /* the request head's bytes until then (wiped) */
  char *method;
  PhBodyScanner *body; /* the request body's framing; NULL without a body */
  GByteArray *pending; /* body payload the stream has not taken yet */
  gboolean body_sent;  /* END_STREAM is on its way */
  gboolean head_in;    /* the final answer head has come */
  gboolean chunked;    /* its body goes to the reader chunked */
  gboolean no_body;    /* HEAD, 204, 304: the answer has no body */
  gboolean eof;        /* everything of the answer is in @out */
  GByteArray *out;     /* the answer in HTTP/1.1, not yet read */
  gsize out_off;
  GError *error;       /* the exchange failed: both ways */
  GError *write_error; /* the request could not be sent on: the answer may still come */
  GSList *waits[2];    /* ExchangeWait: [0] read, [1] write */
  GSource *inner[2];   /* [0]: the HTTP/2 stream's read wait, while one of ours needs it */
  GSource *flush_src;  /* pending payload waits for room in the stream */
};

static const PhStreamBackend exchange_backend;

static gboolean
exchange_readable (PhH2Exchange *x)
{
  return x->out->len > x->out_off || x->eof || x->error != NULL;
}

static gboolean
exchange_writable (PhH2Exchange *x)
{
  return x->pending->len == 0 || x->error != NULL || x->write_error != NULL;
}

static void
exchange_wake (PhH2Exchange *x, gboolean for_write)
{
  for (GSList *l = x->waits[for_write]; l != NULL; l = l->next)
    g_source_set_ready_time (l->data, 0);
}

static void
exchange_fail (PhH2Exchange *x, GError *error)
{
  if (x->error == NULL)
    x->error = error;
  else
    g_error_free (error);
  exchange_wake (x, FALSE);
  exchange_wake (x, TRUE);
}

/* A proxy may answer before the whole request is sent (an early 413 or 401) and end its side:
 * the writer hears of it, the reader still gets the answer. */
static void
exchange_fail_write (PhH2Exchange *x, GError *error)
{
  if (x->write_error == NULL)
    x->write_error = error;
  else
    g_error_free (error);
  g_byte_array_set_size (x->pending, 0);
  exchange_wake (x, TRUE);
}

/* ---- wait sources ---- */

static gboolean
wait_dispatch (GSource *source, GSourceFunc callback, gpointer data)
{
  ExchangeWait *w = (ExchangeWait *) source;

  g_source_set_ready_time (source, -1);
  return ((GSocketSourceFunc) (void (*) (void)) callback) (NULL, w->for_write ? G_IO_OUT : G_IO_IN,
                                                           data);
}

static void
wait_finalize (GSource *source)
{
  ExchangeWait *w = (ExchangeWait *) source;

  if (w->x != NULL)
    w->x->waits[w->for_write] = g_slist_remove (w->x->waits[w->for_write], w);
}

static GSourceFuncs wait_funcs = { NULL, NULL, wait_dispatch, wait_finalize, NULL, NULL };

static gboolean
inner_cb (GSocket *socket, GIOCondition cond, gpointer data)
{
  PhH2Exchange *x = data;
  gboolean for_write = (cond & G_IO_OUT) != 0;

  g_clear_pointer (&x->inner[for_write], g_source_unref);
  exchange_wake (x, for_write);
  return G_SOURCE_REMOVE;
}

static void
drop_source (GSource **source)
{
  if (*source != NULL)
    {
      g_source_destroy (*source);
      g_clear_pointer (source, g_source_unref);
    }
}

static GSource *
exchange_wait (gpointer object, gboolean for_write, GSocketSourceFunc func, gpointer data)
{
  PhH2Exchange *x = object;
  GSource *source = g_source_new (&wait_funcs, sizeof (ExchangeWait));
  ExchangeWait *w = (ExchangeWait *) source;

  for_write = !!for_write;
  w->x = x;
  w->for_write = for_write;
  x->waits[for_write] = g_slist_prepend (x->waits[for_write], w);
  g_source_set_callback (source, G_SOURCE_FUNC (func), data, NULL);
  g_source_set_name (source, "ph-h2-exchange-wait");
  g_source_attach (source, NULL);
  if (for_write ? exchange_writable (x) : exchange_readable (x))
    g_source_set_ready_time (source, 0);
  else if (!for_write && x->head_in && x->inner[0] == NULL)
    /* Body bytes to come: the HTTP/2 stream says when. Before the answer's head, its
     * functions wake the reader; a writer, exchange_flush once the stream took the payload. */
    x->inner[0] = ph_h2_stream_wait (x->stream, FALSE, inner_cb, x);
  return source;
}

/* ---- the answer ---- */

static void
out_append (PhH2Exchange *x, const char *text)
{
  g_byte_array_append (x->out, (const guint8 *) text, strlen (text));
}

/* A head in HTTP/1.1 from the HTTP/2 stream's :status and fields. */
static void
append_head (PhH2Exchange *x, guint status, gboolean final)
{
  const GPtrArray *headers = ph_h2_stream_get_headers (x->stream);
  g_autofree char *line
      = g_strdup_printf ("HTTP/1.1 %u %s\r\n", status, ph_http_reason_phrase (status));
  gboolean has_length = FALSE;

  out_append (x, line);
  for (guint i = 0; headers != NULL && i + 1 < headers->len; i += 2)
    {
      const char *name = g_ptr_array_index (headers, i);
      const char *value = g_ptr_array_index (headers, i + 1);

      /* No connection-specific fields in HTTP/2 (RFC 9113 §8.2.2); an answer that has one
       * anyway does not get to frame our reader's body. */
      if (g_ascii_strcasecmp (name, "transfer-encoding") == 0
          || g_ascii_strcasecmp (name, "connection") == 0
          || g_ascii_strcasecmp (name, "keep-alive") == 0
          || g_ascii_strcasecmp (name, "proxy-connection") == 0
          || g_ascii_strcasecmp (name, "upgrade") == 0)
        continue;
      if (g_ascii_strcasecmp (name, "content-length") == 0)
        has_length = TRUE;
      g_byte_array_append (x->out, (const guint8 *) name, strlen (name));
      out_append (x, ": ");
      g_byte_array_append (x->out, (const guint8 *) value, strlen (value));
      out_append (x, "\r\n");
    }
  if (final)
    {
      x->no_body = g_strcmp0 (x->method, "HEAD") == 0 || status == 204 || status == 304;
      x->chunked = !x->no_body && !has_length;
      if (x->chunked)
        out_append (x, "Transfer-Encoding: chunked\r\n");
    }
  out_append (x, "\r\n");
}

static void
exchange_interim (PhH2Stream *stream, guint status, gpointer data)
{
  PhH2Exchange *x = data;

  append_head (x, status, FALSE);
  exchange_wake (x, FALSE);
}

static void
exchange_head (PhH2Stream *stream, GError *error, gpointer data)
{
  PhH2Exchange *x = data;

  if (error != NULL)
    {
      exchange_fail (x, g_error_copy (error));
      return;
    }
  append_head (x, ph_h2_stream_get_status (stream), TRUE);
  x->head_in = TRUE;
  exchange_wake (x, FALSE);
}

/* Moves what the stream has of the body into @out, framed. */
static PhIoStatus
exchange_pull (PhH2Exchange *x, GError **error)
{
  guint8 buf[READ_CHUNK];
  gsize n = 0;
  PhIoStatus st = ph_h2_stream_read (x->stream, buf, sizeof buf, &n, error);

  switch (st)
    {
      case PH_IO_OK:
        if (x->no_body)
          return PH_IO_AGAIN; /* nothing may follow such a head: dropped */
        if (x->chunked)
          {
            g_autofree char *size = g_strdup_printf ("%zx\r\n", n);
            out_append (x, size);
          }
        g_byte_array_append (x->out, buf, n);
        if (x->chunked)
          out_append (x, "\r\n");
        return PH_IO_OK;
      case PH_IO_EOF:
        if (x->chunked)
          out_append (x, "0\r\n\r\n");
        x->eof = TRUE;
        return PH_IO_OK;
      case PH_IO_AGAIN:
      case PH_IO_ERROR:
        break;
    }
  return st;
}

static PhIoStatus
exchange_read (gpointer object, guint8 *buf, gsize len, gsize *n, GError **error)
{
  PhH2Exchange *x = object;

  *n = 0;
  while (x->out->len == x->out_off && !x->eof && x->error == NULL && x->head_in)
    {
      PhIoStatus st = exchange_pull (x, error);

      if (st != PH_IO_OK)
        return st;
    }
  if (x->out->len > x->out_off)
    {
      gsize take = MIN (len, x->out->len - x->out_off);

      memcpy (buf, x->out->data + x->out_off, take);
      x->out_off += take;
      if (x->out_off == x->out->len)
        {
          g_byte_array_set_size (x->out, 0);
          x->out_off = 0;
        }
      *n = take;
      return PH_IO_OK;
    }
  if (x->error != NULL)
    {
      g_propagate_error (error, g_error_copy (x->error));
      return PH_IO_ERROR;
    }
  return x->eof ? PH_IO_EOF : PH_IO_AGAIN;
}

/* ---- the request ---- */

static gboolean flush_cb (GSocket *socket, GIOCondition cond, gpointer data);

/* Gives the stream the payload it can take; END_STREAM after the body's last byte. */
static void
exchange_flush (PhH2Exchange *x)
{
  GError *error = NULL;

  while (x->pending->len > 0)
    {
      gsize n = 0;
      PhIoStatus st = ph_h2_stream_write (x->stream, x->pending->data, x->pending->len, &n, &error);

      if (st == PH_IO_OK)
        {
          g_byte_array_remove_range (x->pending, 0, n);
          continue;
        }
      if (st == PH_IO_AGAIN)
        {
          if (x->flush_src == NULL)
            x->flush_src = ph_h2_stream_wait (x->stream, TRUE, flush_cb, x);
          return;
        }
      exchange_fail_write (x, error);
      return;
    }
  if (x->body != NULL && ph_body_scanner_is_done (x->body) && !x->body_sent)
    {
      x->body_sent = TRUE;
      if (ph_h2_stream_shutdown_write (x->stream, &error) != PH_IO_OK)
        {
          exchange_fail_write (x, error);
          return;
        }
    }
  exchange_wake (x, TRUE);
}

static gboolean
flush_cb (GSocket *socket, GIOCondition cond, gpointer data)
{
  PhH2Exchange *x = data;

  g_clear_pointer (&x->flush_src, g_source_unref);
  exchange_flush (x);
  return G_SOURCE_REMOVE;
}

/* Takes @len bytes of the request's body: decoded, and given to the stream as it takes them. */
static gboolean
exchange_take_body (PhH2Exchange *x, const guint8 *data, gsize len, gsize *used, GError **error)
{
  gssize n = ph_body_scanner_decode (x->body, data, len, x->pending);

  if (n < 0)
    {
      g_set_error_literal (error, PH_ERROR, PH_ERROR_UPSTREAM_PROTOCOL,
                           _ ("malformed chunked request body"));
      return FALSE;
    }
  *used = n;
  exchange_flush (x);
  return TRUE;
}

/* The request head is whole: the HTTP/2 stream opens. */
static gboolean
exchange_open (PhH2Exchange *x, const PhHttpRequest *req, GError **error)
{
  const PhHttpHeaders *headers = ph_http_request_get_headers (req);
  g_autoptr (GPtrArray) fields = g_ptr_array_new_with_free_func (g_free);
  gboolean has_body
      = ph_http_request_get_chunked (req) || ph_http_request_get_content_length (req) > 0;
  const char *te;

  for (guint i = 0; i < ph_http_headers_get_len (headers); i++)
    {
      const char *name, *value;

      ph_http_headers_get_nth (headers, i, &name, &value);
      /* The proxy's own credentials are hop-by-hop to the client, not to us: they are the
       * one field of this hop that goes on. */
      if (g_ascii_strcasecmp (name, "Proxy-Authorization") != 0
          && (ph_http_header_is_hop_by_hop (headers, name) || g_ascii_strcasecmp (name, "Host") == 0
              || g_ascii_strcasecmp (name, "Content-Length") == 0))
        continue;
      g_ptr_array_add (fields, g_ascii_strdown (name, -1));
      g_ptr_array_add (fields, g_strdup (value));
    }
  /* "te: trailers" is the one TE HTTP/2 allows (§8.2.2). */
  te = ph_http_header_get (headers, "TE");
  if (te != NULL && g_ascii_strcasecmp (te, "trailers") == 0)
    {
      g_ptr_array_add (fields, g_strdup ("te"));
      g_ptr_array_add (fields, g_strdup ("trailers"));
    }
  if (ph_http_request_get_content_length (req) >= 0 && !ph_http_request_get_chunked (req))
    {
      g_ptr_array_add (fields, g_strdup ("content-length"));
      g_ptr_array_add (
          fields, g_strdup_printf ("%" G_GINT64_FORMAT, ph_http_request_get_content_length (req)));
    }
  g_ptr_array_add (fields, NULL);
  x->method = g_strdup (ph_http_request_get_method (req));
  x->stream = ph_h2_session_open_request (
      x->session, x->method, ph_http_request_get_authority (req), ph_http_request_get_path (req),
      (const char *const *) fields->pdata, has_body, exchange_head, x, error);
  for (guint i = 0; i + 1 < fields->len; i += 2)
    if (fields->pdata[i] != NULL && strcmp (fields->pdata[i], "proxy-authorization") == 0)
      ph_wipe (fields->pdata[i + 1], strlen (fields->pdata[i + 1]));
  if (x->stream == NULL)
    return FALSE;
  ph_h2_stream_set_interim_func (x->stream, exchange_interim);
  if (has_body)
    x->body
        = ph_body_scanner_new (ph_http_request_get_chunked (req) ? PH_BODY_CHUNKED : PH_BODY_LENGTH,
                               MAX (ph_http_request_get_content_length (req), 0));
  return TRUE;
}

/* Wipes the credentials' value in a parsed head before it is freed. */
static void
request_wipe_free (PhHttpRequest *req)
{
  const PhHttpHeaders *headers = ph_http_request_get_headers (req);

  for (guint i = 0; i < ph_http_headers_get_len (headers); i++)
    {
      const char *name, *value;

      ph_http_headers_get_nth (headers, i, &name, &value);
      if (g_ascii_strcasecmp (name, "Proxy-Authorization") == 0)
        ph_wipe ((char *) value, strlen (value));
    }
  ph_http_request_free (req);
}

static PhIoStatus
exchange_write (gpointer object, const guint8 *buf, gsize len, gsize *n, GError **error)
{
  PhH2Exchange *x = object;
  PhHttpRequest *req = NULL;
  g_autofree char *reason = NULL;
  gsize consumed = 0, used = 0;
  guint status = 0;
  PhHttpParseResult pr;
  PhHttpLimits limits;
  gsize before;

  *n = 0;
  if (x->error != NULL || x->write_error != NULL)
    {
      g_propagate_error (error, g_error_copy (x->error != NULL ? x->error : x->write_error));
      return PH_IO_ERROR;
    }
  if (x->stream != NULL)
    {
      if (x->body == NULL || ph_body_scanner_is_done (x->body))
        {
          g_set_error_literal (error, PH_ERROR, PH_ERROR_UPSTREAM_PROTOCOL,
                               _ ("bytes past the end of a request sent on HTTP/2"));
          return PH_IO_ERROR;
        }
      if (x->pending->len > 0)
        return PH_IO_AGAIN;
      if (!exchange_take_body (x, buf, len, &used, error))
        return PH_IO_ERROR;
      *n = used;
      return PH_IO_OK;
    }

  before = x->head->len;
  g_byte_array_append (x->head, buf, len);
  limits = ph_http_default_limits;
  limits.max_head += HEAD_EXTRA;
  limits.max_headers += 8;
  pr = ph_http_request_parse ((const char *) x->head->data, x->head->len, &limits, &req, &consumed,
                              &status, &reason);
  if (pr == PH_HTTP_PARSE_INCOMPLETE)
    {
      *n = len;
      return PH_IO_OK;
    }
  if (pr != PH_HTTP_PARSE_DONE || ph_http_request_get_kind (req) != PH_HTTP_ABSOLUTE)
    {
      g_set_error (error, PH_ERROR, PH_ERROR_UPSTREAM_PROTOCOL,
                   /* TRANSLATORS: an internal error: the agent's own request could not be put on
                    * HTTP/2; %s says why */
                   _ ("the request could not be sent on HTTP/2: %s"),
                   reason != NULL ? reason : "not an absolute-form request");
      g_clear_pointer (&req, request_wipe_free);
      ph_wipe (x->head->data, x->head->len);
      return PH_IO_ERROR;
    }
  if (!exchange_open (x, req, error))
    {
      request_wipe_free (req);
      ph_wipe (x->head->data, x->head->len);
      return PH_IO_ERROR;
    }
  request_wipe_free (req);
  /* The head ends inside these bytes; what follows it is the body's start. */
  consumed -= before;
  used = 0;
  if (consumed < len && x->body != NULL
      && !exchange_take_body (x, buf + consumed, len - consumed, &used, error))
    {
      ph_wipe (x->head->data, x->head->len);
      return PH_IO_ERROR;
    }
  ph_wipe (x->head->data, x->head->len);
  g_byte_array_set_size (x->head, 0);
  *n = consumed + used;
  return PH_IO_OK;
}

static PhIoStatus
exchange_shutdown_write (gpointer object, GError **error)
{
  PhH2Exchange *x = object;

  if (x->stream == NULL || x->body == NULL || x->body_sent)
    return PH_IO_OK;
  x->body_sent = TRUE;
  return ph_h2_stream_shutdown_write (x->stream, error);
}

static gboolean
exchange_is_write_shut (gpointer object)
{
  PhH2Exchange *x = object;

  return x->body_sent;
}

static void
exchange_abort (gpointer object)
{
  PhH2Exchange *x = object;

  if (x->stream != NULL)
    ph_h2_stream_abort (x->stream);
  exchange_fail (x, g_error_new_literal (PH_H2_ERROR, PH_H2_ERROR_RESET,
                                         _ ("the HTTP/2 exchange was cancelled")));
}

static void
exchange_free (gpointer object)
{
  PhH2Exchange *x = object;

  for (guint d = 0; d < 2; d++)
    {
      for (GSList *l = x->waits[d]; l != NULL; l = l->next)
        ((ExchangeWait *) l->data)->x = NULL;
      g_slist_free (x->waits[d]);
      drop_source (&x->inner[d]);
    }
  drop_source (&x->flush_src);
  g_clear_pointer (&x->stream, ph_h2_stream_free);
  ph_wipe (x->head->data, x->head->len);
  g_byte_array_unref (x->head);
  g_byte_array_unref (x->pending);
  g_byte_array_unref (x->out);
  g_clear_pointer (&x->body, ph_body_scanner_free);
  g_clear_error (&x->error);
  g_clear_error (&x->write_error);
  g_free (x->method);
  ph_h2_session_unref (x->session);
  g_free (x);
}

static const PhStreamBackend exchange_backend = {
  .read = exchange_read,
  .write = exchange_write,
  .shutdown_write = exchange_shutdown_write,
  .is_write_shut = exchange_is_write_shut,
  .abort = exchange_abort,
  .wait = exchange_wait,
  .free = exchange_free,
};

PhStream *
ph_h2_exchange_new (PhH2Session *session)
{
  PhH2Exchange *x = g_new0 (PhH2Exchange, 1);

  x->session = ph_h2_session_ref (session);
  x->head = g_byte_array_new ();
  x->pending = g_byte_array_new ();
  x->out = g_byte_array_new ();
  return ph_stream_new_backend (&exchange_backend, x);
}

PhH2Session *
ph_h2_exchange_get_session (PhStream *stream)
{
  PhH2Exchange *x = ph_stream_get_backend_object (stream, &exchange_backend);

  return x != NULL ? x->session : NULL;
}

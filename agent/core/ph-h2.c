/* SPDX-License-Identifier: GPL-2.0-or-later */
/* ph-h2.c: the HTTP/2 client session to a cloud proxy. libnghttp2 does the framing
 * (nghttp2_session_mem_recv / _mem_send); this file moves its bytes through the PhStream under
 * the main loop and gives each stream a receive buffer, a send buffer and wait sources.
 *
 * Flow control: the connection's window is given back as DATA arrives (the bytes are in a
 * stream's buffer, bounded by that stream's window), a stream's only as its reader takes them,
 * so a stream whose reader is slow stops only itself. */
#define G_LOG_DOMAIN "pinhole-h2"

#include "ph-h2.h"

#include <glib/gi18n.h>
#include <nghttp2/nghttp2.h>
#include <string.h>

#define READ_CHUNK 16384
/* Bytes read from the connection in one turn of the main loop before others get theirs. */
#define READ_TURN (1024 * 1024)
/* Bytes a stream's writer may queue before AGAIN. */
#define SEND_BUFFER (512 * 1024)
/* Bytes of frames gathered before they are written. */
#define WRITE_GATHER (256 * 1024)

G_DEFINE_QUARK (ph - h2 - error - quark, ph_h2_error)

struct _PhH2Session
{
  PhStream *tls;
  nghttp2_session *ng;
  GHashTable *streams; /* stream id → PhH2Stream, not owned */
  guint n_open;
  gboolean goaway;
  guint32 goaway_last_id;
  gboolean closed;
  gboolean shutting_down;
  GSource *read_source;
  GSource *write_source;
  GSource *flush_source;
  GByteArray *out; /* frames not yet written; written again as they are after AGAIN */
  PhH2SessionFunc notify;
  gpointer notify_data;
  GSource *ping_timeout; /* a PING is out: the connection ends unless a frame comes first */
};

typedef struct _PhH2Wait PhH2Wait;

struct _PhH2Stream
{
  PhH2Session *session; /* a reference */
  int32_t id;
  PhH2HeadFunc head_func;
  PhH2InterimFunc interim_func;
  gpointer head_data;
  gboolean head_done;
  guint status;
  GPtrArray *headers; /* name, value, … */
  GByteArray *in;
  gsize in_off;
  gboolean remote_ended; /* END_STREAM came */
  gboolean closed;       /* nghttp2 has closed it */
  GError *error;
  GByteArray *send;
  gboolean write_shut;
  gboolean deferred; /* the data source said DEFERRED */
  gboolean sent;     /* its HEADERS went out (nghttp2 holds them while the proxy's limit is met) */
  gboolean has_body;
  GSList *waits[2]; /* PhH2Wait sources: [0] read, [1] write */
};

struct _PhH2Wait
{
  GSource source;
  PhH2Stream *stream; /* NULL once the stream is gone */
  gboolean for_write;
};

static void session_schedule_flush (PhH2Session *session);
static void session_fail (PhH2Session *session, GError *error);
static void session_arm_read (PhH2Session *session);
static void session_refuse_unsent (PhH2Session *session);
static gboolean session_read_idle_cb (gpointer data);

/* --- wait sources --- */

static gboolean
wait_dispatch (GSource *source, GSourceFunc callback, gpointer data)
{
  PhH2Wait *w = (PhH2Wait *) source;
  GSocket *socket = NULL;

  g_source_set_ready_time (source, -1);
  if (w->stream != NULL)
    socket = ph_stream_get_socket (w->stream->session->tls);
  return ((GSocketSourceFunc) (void (*) (void)) callback) (socket,
                                                           w->for_write ? G_IO_OUT : G_IO_IN, data);
}

static void
wait_finalize (GSource *source)
{
  PhH2Wait *w = (PhH2Wait *) source;

  if (w->stream != NULL)
    w->stream->waits[w->for_write] = g_slist_remove (w->stream->waits[w->for_write], w);
}

static GSourceFuncs wait_funcs = { NULL, NULL, wait_dispatch, wait_finalize, NULL, NULL };

static gboolean
stream_can_read (PhH2Stream *s)
{
  return s->in->len > s->in_off || s->remote_ended || s->closed || s->error != NULL;
}

static gboolean
stream_can_write (PhH2Stream *s)
{
  return s->send->len < SEND_BUFFER || s->closed || s->error != NULL;
}

static void
stream_wake (PhH2Stream *s, gboolean for_write)
{
  if (for_write ? !stream_can_write (s) : !stream_can_read (s))
    return;
  for (GSList *l = s->waits[for_write]; l != NULL; l = l->next)
    g_source_set_ready_time (l->data, 0);
}

static void
stream_wake_both (PhH2Stream *s)
{
  stream_wake (s, FALSE);
  stream_wake (s, TRUE);
}

GSource *
ph_h2_stream_wait (PhH2Stream *s, gboolean for_write, GSocketSourceFunc func, gpointer data)
{
  GSource *source = g_source_new (&wait_funcs, sizeof (PhH2Wait));
  PhH2Wait *w = (PhH2Wait *) source;

  for_write = !!for_write;
  w->stream = s;
  w->for_write = for_write;
  s->waits[for_write] = g_slist_prepend (s->waits[for_write], w);
  g_source_set_callback (source, G_SOURCE_FUNC (func), data, NULL);
  g_source_set_name (source, "ph-h2-stream-wait");
  g_source_attach (source, NULL);
  stream_wake (s, for_write);
  return source;
}

/* --- streams --- */

static void
stream_set_error (PhH2Stream *s, GError *error)
{
  if (s->error == NULL)
    s->error = error;
  else
    g_error_free (error);
}

/* Calls the head function once, with @error (taken) or the head. Nothing may touch @s after. */
static void
stream_finish_head (PhH2Stream *s, const GError *error)
{
  PhH2HeadFunc func = s->head_func;

  if (s->head_done)
    return;
  s->head_done = TRUE;
  s->head_func = NULL;
  if (func != NULL)
    func (s, (GError *) error, s->head_data);
}

static void
stream_fail (PhH2Stream *s, GError *error)
{
  stream_set_error (s, error);
  stream_wake_both (s);
  if (!s->head_done)
    stream_finish_head (s, s->error);
}

void
ph_h2_stream_free (PhH2Stream *s)
{
  PhH2Session *session;

  if (s == NULL)
    return;
  session = s->session;
  for (guint d = 0; d < 2; d++)
    {
      for (GSList *l = s->waits[d]; l != NULL; l = l->next)
        ((PhH2Wait *) l->data)->stream = NULL;
      g_slist_free (s->waits[d]);
    }
  if (s->id > 0)
    {
      g_hash_table_remove (session->streams, GINT_TO_POINTER (s->id));
      if (!s->closed && !session->closed)
        {
          nghttp2_session_set_stream_user_data (session->ng, s->id, NULL);
          nghttp2_submit_rst_stream (session->ng, NGHTTP2_FLAG_NONE, s->id, NGHTTP2_CANCEL);
          session_schedule_flush (session);
        }
    }
  g_ptr_array_unref (s->headers);
  g_byte_array_unref (s->in);
  g_byte_array_unref (s->send);
  g_clear_error (&s->error);
  g_free (s);
  ph_h2_session_unref (session);
}

guint32
ph_h2_stream_get_id (PhH2Stream *s)
{
  return (guint32) s->id;
}

PhH2Session *
ph_h2_stream_get_session (PhH2Stream *s)
{
  return s->session;
}

guint
ph_h2_stream_get_status (PhH2Stream *s)
{
  return s->head_done ? s->status : 0;
}

const char *
ph_h2_stream_get_header (PhH2Stream *s, const char *name)
{
  for (guint i = 0; i + 1 < s->headers->len; i += 2)
    if (g_ascii_strcasecmp (s->headers->pdata[i], name) == 0)
      return s->headers->pdata[i + 1];
  return NULL;
}

const GPtrArray *
ph_h2_stream_get_headers (PhH2Stream *s)
{
  return s->headers;
}

void
ph_h2_stream_set_interim_func (PhH2Stream *s, PhH2InterimFunc func)
{
  s->interim_func = func;
}

PhIoStatus
ph_h2_stream_read (PhH2Stream *s, guint8 *buf, gsize len, gsize *n, GError **error)
{
  gsize have = s->in->len - s->in_off;

  *n = 0;
  if (have > 0)
    {
      gsize take = MIN (have, len);

      memcpy (buf, s->in->data + s->in_off, take);
      s->in_off += take;
      if (s->in_off == s->in->len)
        {
          g_byte_array_set_size (s->in, 0);
          s->in_off = 0;
        }
      else if (s->in_off > 256 * 1024)
        {
          g_byte_array_remove_range (s->in, 0, s->in_off);
          s->in_off = 0;
        }
      *n = take;
      /* The stream's window opens by what its reader took, and no more. */
      if (!s->closed && !s->session->closed)
        {
          nghttp2_session_consume_stream (s->session->ng, s->id, take);
          session_schedule_flush (s->session);
        }
      return PH_IO_OK;
    }
  if (s->remote_ended)
    return PH_IO_EOF;
  if (s->error != NULL)
    {
      g_propagate_error (error, g_error_copy (s->error));
      return PH_IO_ERROR;
    }
  if (s->closed)
    return PH_IO_EOF;
  return PH_IO_AGAIN;
}

static gboolean
stream_check_writable (PhH2Stream *s, GError **error)
{
  if (s->error != NULL)
    {
      g_propagate_error (error, g_error_copy (s->error));
      return FALSE;
    }
  if (s->closed || s->write_shut || !s->has_body)
    {
      g_set_error_literal (error, PH_H2_ERROR, PH_H2_ERROR_RESET,
                           _ ("the HTTP/2 stream is closed for writing"));
      return FALSE;
    }
  return TRUE;
}

static void
stream_resume (PhH2Stream *s)
{
  if (s->deferred && !s->session->closed)
    {
      s->deferred = FALSE;
      nghttp2_session_resume_data (s->session->ng, s->id);
    }
  session_schedule_flush (s->session);
}

PhIoStatus
ph_h2_stream_write (PhH2Stream *s, const guint8 *buf, gsize len, gsize *n, GError **error)
{
  gsize take;

  *n = 0;
  if (!stream_check_writable (s, error))
    return PH_IO_ERROR;
  if (s->send->len >= SEND_BUFFER)
    return PH_IO_AGAIN;
  take = MIN (len, SEND_BUFFER - s->send->len);
  g_byte_array_append (s->send, buf, take);
  *n = take;
  stream_resume (s);
  return PH_IO_OK;
}

PhIoStatus
ph_h2_stream_shutdown_write (PhH2Stream *s, GError **error)
{
  if (s->write_shut)
    return PH_IO_OK;
  if (!stream_check_writable (s, error))
    return PH_IO_ERROR;
  s->write_shut = TRUE;
  stream_resume (s);
  return PH_IO_OK;
}

gboolean
ph_h2_stream_is_write_shut (PhH2Stream *s)
{
  return s->write_shut;
}

void
ph_h2_stream_abort (PhH2Stream *s)
{
  if (!s->closed && !s->session->closed && s->id > 0)
    {
      nghttp2_submit_rst_stream (s->session->ng, NGHTTP2_FLAG_NONE, s->id, NGHTTP2_CANCEL);
      session_schedule_flush (s->session);
    }
  stream_set_error (
      s, g_error_new_literal (PH_H2_ERROR, PH_H2_ERROR_RESET, "the HTTP/2 stream was cancelled"));
  stream_wake_both (s);
}

/* --- nghttp2's callbacks --- */

static PhH2Stream *
lookup (PhH2Session *session, int32_t id)
{
  return nghttp2_session_get_stream_user_data (session->ng, id);
}

static ssize_t
data_source_read_cb (nghttp2_session *ng, int32_t stream_id, uint8_t *buf, size_t length,
                     uint32_t *data_flags, nghttp2_data_source *source, void *user_data)
{
  PhH2Stream *s = lookup (user_data, stream_id);
  gsize n;

  if (s == NULL)
    return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
  n = MIN (length, s->send->len);
  if (n > 0)
    {
      gboolean was_full = s->send->len >= SEND_BUFFER;

      memcpy (buf, s->send->data, n);
      g_byte_array_remove_range (s->send, 0, n);
      if (was_full && s->send->len < SEND_BUFFER)
        stream_wake (s, TRUE);
    }
  if (s->send->len == 0 && s->write_shut)
    *data_flags |= NGHTTP2_DATA_FLAG_EOF;
  else if (n == 0)
    {
      s->deferred = TRUE;
      return NGHTTP2_ERR_DEFERRED;
    }
  return n;
}

static int
on_begin_headers_cb (nghttp2_session *ng, const nghttp2_frame *frame, void *user_data)
{
  PhH2Stream *s = lookup (user_data, frame->hd.stream_id);

  if (s != NULL && !s->head_done)
    {
      g_ptr_array_set_size (s->headers, 0);
      s->status = 0;
    }
  return 0;
}

static int
on_header_cb (nghttp2_session *ng, const nghttp2_frame *frame, const uint8_t *name, size_t namelen,
              const uint8_t *value, size_t valuelen, uint8_t flags, void *user_data)
{
  PhH2Stream *s = lookup (user_data, frame->hd.stream_id);

  if (s == NULL || s->head_done || frame->hd.type != NGHTTP2_HEADERS)
    return 0;
  if (namelen == 7 && memcmp (name, ":status", 7) == 0)
    {
      g_autofree char *v = g_strndup ((const char *) value, valuelen);
      s->status = (guint) g_ascii_strtoull (v, NULL, 10);
      return 0;
    }
  g_ptr_array_add (s->headers, g_strndup ((const char *) name, namelen));
  g_ptr_array_add (s->headers, g_strndup ((const char *) value, valuelen));
  return 0;
}

static int
on_data_chunk_recv_cb (nghttp2_session *ng, uint8_t flags, int32_t stream_id, const uint8_t *data,
                       size_t len, void *user_data)
{
  PhH2Session *session = user_data;
  PhH2Stream *s = lookup (session, stream_id);

  /* The connection's window comes back at once: the bytes are held in the stream's buffer,
   * which the stream's own window bounds. */
  nghttp2_session_consume_connection (ng, len);
  if (s == NULL)
    return 0;
  g_byte_array_append (s->in, data, len);
  stream_wake (s, FALSE);
  return 0;
}

static int
on_frame_recv_cb (nghttp2_session *ng, const nghttp2_frame *frame, void *user_data)
{
  PhH2Session *session = user_data;
  PhH2Stream *s;

  /* Any frame says the connection is alive (a PING's ACK among them). */
  if (session->ping_timeout != NULL)
    {
      g_source_destroy (session->ping_timeout);
      g_clear_pointer (&session->ping_timeout, g_source_unref);
    }
  if (frame->hd.type == NGHTTP2_GOAWAY)
    {
      session->goaway = TRUE;
      session->goaway_last_id = frame->goaway.last_stream_id;
      g_debug ("HTTP/2: GOAWAY (%s), last stream %d",
               nghttp2_http2_strerror (frame->goaway.error_code), frame->goaway.last_stream_id);
      if (session->notify != NULL)
        session->notify (session, session->notify_data);
      return 0;
    }
  if (frame->hd.type == NGHTTP2_SETTINGS && !(frame->hd.flags & NGHTTP2_FLAG_ACK))
    {
      session_refuse_unsent (session);
      return 0;
    }
  if (frame->hd.stream_id == 0 || (s = lookup (session, frame->hd.stream_id)) == NULL)
    return 0;
  if ((frame->hd.type == NGHTTP2_DATA || frame->hd.type == NGHTTP2_HEADERS)
      && (frame->hd.flags & NGHTTP2_FLAG_END_STREAM))
    {
      s->remote_ended = TRUE;
      stream_wake (s, FALSE);
    }
  if (frame->hd.type == NGHTTP2_HEADERS && !s->head_done)
    {
      if (s->status >= 200)
        stream_finish_head (s, NULL);
      else if (s->remote_ended)
        stream_fail (s, g_error_new_literal (PH_H2_ERROR, PH_H2_ERROR_RESET,
                                             _ ("the HTTP/2 stream ended without a response")));
      else if (s->interim_func != NULL)
        s->interim_func (s, s->status, s->head_data);
    }
  return 0;
}

static int
on_frame_send_cb (nghttp2_session *ng, const nghttp2_frame *frame, void *user_data)
{
  PhH2Stream *s;

  if (frame->hd.type == NGHTTP2_HEADERS && (s = lookup (user_data, frame->hd.stream_id)) != NULL)
    s->sent = TRUE;
  return 0;
}

static gint
compare_ids (gconstpointer a, gconstpointer b)
{
  return GPOINTER_TO_INT (a) - GPOINTER_TO_INT (b);
}

/* The proxy's SETTINGS came after streams were opened (a new connection's first streams go
 * before its SETTINGS arrive): those past its MAX_CONCURRENT_STREAMS that nghttp2 has not sent
 * would wait in its queue until a stream ends, which for a tunnel may be never. They are taken
 * back (nothing of them went out) and fail as refused, so they go on another connection. */
static void
session_refuse_unsent (PhH2Session *session)
{
  guint32 max
      = nghttp2_session_get_remote_settings (session->ng, NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS);
  GList *ids = g_list_sort (g_hash_table_get_keys (session->streams), compare_ids);
  guint32 active = 0;

  for (GList *l = ids; l != NULL; l = l->next)
    {
      PhH2Stream *s = g_hash_table_lookup (session->streams, l->data);

      if (s != NULL && !s->closed && s->sent)
        active++;
    }
  for (GList *l = ids; l != NULL; l = l->next)
    {
      PhH2Stream *s = g_hash_table_lookup (session->streams, l->data);

      if (s == NULL || s->closed || s->sent || s->error != NULL)
        continue;
      if (active < max)
        {
          active++;
          continue;
        }
      /* RST_STREAM on a stream whose HEADERS are still queued cancels them. */
      nghttp2_submit_rst_stream (session->ng, NGHTTP2_FLAG_NONE, s->id, NGHTTP2_REFUSED_STREAM);
      stream_fail (s, g_error_new (PH_H2_ERROR, PH_H2_ERROR_REFUSED,
                                   _ ("the cloud proxy takes at most %u streams at once"), max));
    }
  g_list_free (ids);
  session_schedule_flush (session);
}

static int
on_stream_close_cb (nghttp2_session *ng, int32_t stream_id, uint32_t error_code, void *user_data)
{
  PhH2Session *session = user_data;
  PhH2Stream *s = lookup (session, stream_id);

  if (session->n_open > 0)
    session->n_open--;
  if (s == NULL)
    return 0;
  s->closed = TRUE;
  if (error_code == NGHTTP2_REFUSED_STREAM)
    stream_fail (s, g_error_new (PH_H2_ERROR, PH_H2_ERROR_REFUSED,
                                 _ ("the cloud proxy refused HTTP/2 stream %d"), stream_id));
  else if (error_code != NGHTTP2_NO_ERROR || !s->remote_ended)
    /* RST_STREAM(NO_ERROR) after END_STREAM is the normal end of a tunnel. */
    stream_fail (s, g_error_new (PH_H2_ERROR, PH_H2_ERROR_RESET,
                                 _ ("the cloud proxy reset HTTP/2 stream %d (%s)"), stream_id,
                                 nghttp2_http2_strerror (error_code)));
  else
    stream_wake_both (s);
  return 0;
}

/* --- the connection --- */

static void
session_check_end (PhH2Session *session)
{
  if (!session->closed && !nghttp2_session_want_read (session->ng)
      && !nghttp2_session_want_write (session->ng) && session->out->len == 0)
    session_fail (session, g_error_new_literal (PH_H2_ERROR, PH_H2_ERROR_CONNECTION,
                                                _ ("the HTTP/2 connection has ended")));
}

static void
session_fail (PhH2Session *session, GError *error)
{
  GList *streams;

  if (session->closed)
    {
      g_error_free (error);
      return;
    }
  g_debug ("HTTP/2 connection ends: %s", error->message);
  session->closed = TRUE;
  session->n_open = 0;
  if (session->read_source != NULL)
    g_source_destroy (session->read_source);
  g_clear_pointer (&session->read_source, g_source_unref);
  if (session->write_source != NULL)
    g_source_destroy (session->write_source);
  g_clear_pointer (&session->write_source, g_source_unref);
  if (session->ping_timeout != NULL)
    g_source_destroy (session->ping_timeout);
  g_clear_pointer (&session->ping_timeout, g_source_unref);
  ph_h2_session_ref (session);
  /* By id: a head function may free other streams. */
  streams = g_hash_table_get_keys (session->streams);
  for (GList *l = streams; l != NULL; l = l->next)
    {
      PhH2Stream *s = g_hash_table_lookup (session->streams, l->data);

      if (s == NULL)
        continue;
      if (!s->closed)
        {
          s->closed = TRUE;
          stream_fail (s, g_error_copy (error));
        }
      else
        stream_wake_both (s);
    }
  g_list_free (streams);
  g_error_free (error);
  if (session->notify != NULL)
    session->notify (session, session->notify_data);
  ph_h2_session_unref (session);
}

static gboolean session_write_cb (GSocket *socket, GIOCondition cond, gpointer data);

/* Writes the frames nghttp2 has, until the socket would block. */
static void
session_flush (PhH2Session *session)
{
  while (!session->closed)
    {
      GError *error = NULL;
      gsize n = 0;
      PhIoStatus st;

      while (session->out->len < WRITE_GATHER)
        {
          const uint8_t *data;
          ssize_t len = nghttp2_session_mem_send (session->ng, &data);

          if (len < 0)
            {
              session_fail (session, g_error_new (PH_H2_ERROR, PH_H2_ERROR_CONNECTION, "HTTP/2: %s",
                                                  nghttp2_strerror ((int) len)));
              return;
            }
          if (len == 0)
            break;
          g_byte_array_append (session->out, data, len);
        }
      if (session->out->len == 0)
        break;
      st = ph_stream_write (session->tls, session->out->data, session->out->len, &n, &error);
      if (st == PH_IO_OK)
        {
          g_byte_array_remove_range (session->out, 0, n);
          continue;
        }
      if (st == PH_IO_AGAIN)
        {
          if (session->write_source == NULL)
            session->write_source = ph_stream_wait (session->tls, TRUE, session_write_cb, session);
          return;
        }
      if (error == NULL)
        error = g_error_new_literal (PH_H2_ERROR, PH_H2_ERROR_CONNECTION,
                                     _ ("the HTTP/2 connection was closed"));
      session_fail (session, error);
      return;
    }
  session_check_end (session);
}

static gboolean
session_write_cb (GSocket *socket, GIOCondition cond, gpointer data)
{
  PhH2Session *session = data;

  g_clear_pointer (&session->write_source, g_source_unref);
  ph_h2_session_ref (session);
  session_flush (session);
  ph_h2_session_unref (session);
  return G_SOURCE_REMOVE;
}

static gboolean
session_flush_cb (gpointer data)
{
  PhH2Session *session = data;

  g_clear_pointer (&session->flush_source, g_source_unref);
  ph_h2_session_ref (session);
  if (session->write_source == NULL)
    session_flush (session);
  ph_h2_session_unref (session);
  return G_SOURCE_REMOVE;
}

/* Writes soon, from the main loop: never from inside nghttp2's callbacks. */
static void
session_schedule_flush (PhH2Session *session)
{
  if (session->flush_source != NULL || session->closed)
    return;
  session->flush_source = g_idle_source_new ();
  g_source_set_priority (session->flush_source, G_PRIORITY_DEFAULT);
  g_source_set_callback (session->flush_source, session_flush_cb, session, NULL);
  g_source_attach (session->flush_source, NULL);
}

static gboolean
session_read_cb (GSocket *socket, GIOCondition cond, gpointer data)
{
  PhH2Session *session = data;
  guint8 buf[READ_CHUNK];
  gsize total = 0;
  gboolean again = FALSE;

  g_clear_pointer (&session->read_source, g_source_unref);
  ph_h2_session_ref (session);
  while (!session->closed && total < READ_TURN)
    {
      GError *error = NULL;
      gsize n = 0;
      PhIoStatus st = ph_stream_read (session->tls, buf, sizeof buf, &n, &error);

      if (st == PH_IO_AGAIN)
        {
          again = TRUE;
          break;
        }
      if (st == PH_IO_OK)
        {
          ssize_t r = nghttp2_session_mem_recv (session->ng, buf, n);

          total += n;
          if (r < 0)
            session_fail (session, g_error_new (PH_H2_ERROR, PH_H2_ERROR_CONNECTION, "HTTP/2: %s",
                                                nghttp2_strerror ((int) r)));
          continue;
        }
      if (error != NULL)
        {
          GError *e = g_error_new (PH_H2_ERROR, PH_H2_ERROR_CONNECTION, "%s", error->message);
          g_error_free (error);
          session_fail (session, e);
        }
      else
        session_fail (session,
                      g_error_new_literal (PH_H2_ERROR, PH_H2_ERROR_CONNECTION,
                                           _ ("the cloud proxy closed the HTTP/2 connection")));
    }
  if (!session->closed)
    {
      session_flush (session);
      if (!session->closed && session->read_source == NULL)
        {
          if (again)
            session_arm_read (session);
          else
            {
              /* Its turn is over; the next comes after the others'. */
              session->read_source = g_idle_source_new ();
              g_source_set_priority (session->read_source, G_PRIORITY_DEFAULT);
              g_source_set_callback (session->read_source, session_read_idle_cb, session, NULL);
              g_source_attach (session->read_source, NULL);
            }
        }
    }
  ph_h2_session_unref (session);
  return G_SOURCE_REMOVE;
}

static gboolean
session_read_idle_cb (gpointer data)
{
  return session_read_cb (NULL, G_IO_IN, data);
}

static void
session_arm_read (PhH2Session *session)
{
  session->read_source = ph_stream_wait (session->tls, FALSE, session_read_cb, session);
}

PhH2Session *
ph_h2_session_new (PhStream *tls, guint32 stream_window, GError **error)
{
  PhH2Session *session = g_atomic_rc_box_new0 (PhH2Session);
  nghttp2_session_callbacks *cbs;
  nghttp2_option *opt;
  nghttp2_settings_entry settings[3];
  int ret;

  if (stream_window == 0)
    stream_window = PH_H2_DEFAULT_STREAM_WINDOW;
  stream_window = MIN (stream_window, (guint32) NGHTTP2_MAX_WINDOW_SIZE);
  session->tls = tls;
  session->streams = g_hash_table_new (NULL, NULL);
  session->out = g_byte_array_new ();

  nghttp2_session_callbacks_new (&cbs);
  nghttp2_session_callbacks_set_on_begin_headers_callback (cbs, on_begin_headers_cb);
  nghttp2_session_callbacks_set_on_header_callback (cbs, on_header_cb);
  nghttp2_session_callbacks_set_on_data_chunk_recv_callback (cbs, on_data_chunk_recv_cb);
  nghttp2_session_callbacks_set_on_frame_recv_callback (cbs, on_frame_recv_cb);
  nghttp2_session_callbacks_set_on_stream_close_callback (cbs, on_stream_close_cb);
  nghttp2_session_callbacks_set_on_frame_send_callback (cbs, on_frame_send_cb);
  nghttp2_option_new (&opt);
  nghttp2_option_set_no_auto_window_update (opt, 1);
  ret = nghttp2_session_client_new2 (&session->ng, cbs, session, opt);
  nghttp2_option_del (opt);
  nghttp2_session_callbacks_del (cbs);
  if (ret != 0)
    {
      g_set_error (error, PH_H2_ERROR, PH_H2_ERROR_CONNECTION, "HTTP/2: %s",
                   nghttp2_strerror (ret));
      session->closed = TRUE;
      ph_h2_session_unref (session);
      return NULL;
    }
  settings[0] = (nghttp2_settings_entry){ NGHTTP2_SETTINGS_ENABLE_PUSH, 0 };
  settings[1] = (nghttp2_settings_entry){ NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE, stream_window };
  settings[2] = (nghttp2_settings_entry){ NGHTTP2_SETTINGS_MAX_FRAME_SIZE, 65536 };
  if ((ret = nghttp2_submit_settings (session->ng, NGHTTP2_FLAG_NONE, settings, 3)) != 0
      || (ret = nghttp2_session_set_local_window_size (
              session->ng, NGHTTP2_FLAG_NONE, 0,
              MAX (PH_H2_DEFAULT_CONNECTION_WINDOW, stream_window)))
             != 0)
    {
      g_set_error (error, PH_H2_ERROR, PH_H2_ERROR_CONNECTION, "HTTP/2: %s",
                   nghttp2_strerror (ret));
      session->closed = TRUE;
      ph_h2_session_unref (session);
      return NULL;
    }
  session_arm_read (session);
  session_flush (session);
  return session;
}

PhH2Session *
ph_h2_session_ref (PhH2Session *session)
{
  return g_atomic_rc_box_acquire (session);
}

static void
session_clear (PhH2Session *session)
{
  GSource **sources[] = { &session->read_source, &session->write_source, &session->flush_source,
                          &session->ping_timeout };

  for (guint i = 0; i < G_N_ELEMENTS (sources); i++)
    if (*sources[i] != NULL)
      {
        g_source_destroy (*sources[i]);
        g_clear_pointer (sources[i], g_source_unref);
      }
  if (session->ng != NULL)
    nghttp2_session_del (session->ng);
  g_hash_table_unref (session->streams);
  g_byte_array_unref (session->out);
  ph_stream_free (session->tls);
}

void
ph_h2_session_unref (PhH2Session *session)
{
  if (session != NULL)
    g_atomic_rc_box_release_full (session, (GDestroyNotify) session_clear);
}

void
ph_h2_session_set_notify (PhH2Session *session, PhH2SessionFunc func, gpointer user_data)
{
  session->notify = func;
  session->notify_data = user_data;
}

guint
ph_h2_session_get_available_streams (PhH2Session *session)
{
  guint32 max;

  if (session->closed || session->goaway || session->shutting_down
      || !nghttp2_session_check_request_allowed (session->ng))
    return 0;
  max = nghttp2_session_get_remote_settings (session->ng, NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS);
  return max > session->n_open ? max - session->n_open : 0;
}

gboolean
ph_h2_session_got_goaway (PhH2Session *session, guint32 *last_stream_id)
{
  if (last_stream_id != NULL)
    *last_stream_id = session->goaway_last_id;
  return session->goaway;
}

PhStream *
ph_h2_session_get_stream (PhH2Session *session)
{
  return session->tls;
}

gboolean
ph_h2_session_is_closed (PhH2Session *session)
{
  return session->closed;
}

guint
ph_h2_session_get_open_streams (PhH2Session *session)
{
  return session->n_open;
}

static gboolean
ping_timeout_cb (gpointer data)
{
  PhH2Session *session = data;

  g_clear_pointer (&session->ping_timeout, g_source_unref);
  ph_h2_session_ref (session);
  session_fail (session, g_error_new_literal (PH_H2_ERROR, PH_H2_ERROR_CONNECTION,
                                              _ ("the cloud proxy did not answer an HTTP/2 PING; "
                                                 "the connection is taken as lost")));
  ph_h2_session_unref (session);
  return G_SOURCE_REMOVE;
}

void
ph_h2_session_check_alive (PhH2Session *session, guint timeout_ms)
{
  int ret;

  if (session->closed || session->ping_timeout != NULL)
    return;
  if ((ret = nghttp2_submit_ping (session->ng, NGHTTP2_FLAG_NONE, NULL)) != 0)
    {
      session_fail (session, g_error_new (PH_H2_ERROR, PH_H2_ERROR_CONNECTION, "HTTP/2: %s",
                                          nghttp2_strerror (ret)));
      return;
    }
  session->ping_timeout = g_timeout_source_new (timeout_ms);
  g_source_set_callback (session->ping_timeout, ping_timeout_cb, session, NULL);
  g_source_attach (session->ping_timeout, NULL);
  session_schedule_flush (session);
}

gboolean
ph_h2_session_is_checking_alive (PhH2Session *session)
{
  return session->ping_timeout != NULL;
}

void
ph_h2_session_shutdown (PhH2Session *session)
{
  if (session->closed || session->shutting_down)
    return;
  session->shutting_down = TRUE;
  nghttp2_session_terminate_session (session->ng, NGHTTP2_NO_ERROR);
  session_schedule_flush (session);
}

static PhH2Stream *
session_open (PhH2Session *session, nghttp2_nv *nva, gsize n_fixed, const char *const *headers,
              gboolean has_body, PhH2HeadFunc func, gpointer user_data, GError **error)
{
  g_autoptr (GArray) nv = g_array_new (FALSE, FALSE, sizeof (nghttp2_nv));
  nghttp2_data_provider provider = { .read_callback = data_source_read_cb };
  PhH2Stream *s;
  int32_t id;

  if (ph_h2_session_get_available_streams (session) == 0)
    {
      g_set_error_literal (error, PH_H2_ERROR, PH_H2_ERROR_NO_STREAM,
                           _ ("the HTTP/2 connection takes no more streams"));
      return NULL;
    }
  g_array_append_vals (nv, nva, n_fixed);
  for (guint i = 0; headers != NULL && headers[i] != NULL && headers[i + 1] != NULL; i += 2)
    {
      nghttp2_nv h = { (uint8_t *) headers[i], (uint8_t *) headers[i + 1], strlen (headers[i]),
                       strlen (headers[i + 1]), NGHTTP2_NV_FLAG_NONE };
      /* Credentials are never put in HPACK's table, where a later request could probe them. */
      if (g_ascii_strcasecmp (headers[i], "proxy-authorization") == 0)
        h.flags = NGHTTP2_NV_FLAG_NO_INDEX;
      g_array_append_val (nv, h);
    }
  s = g_new0 (PhH2Stream, 1);
  s->session = ph_h2_session_ref (session);
  s->head_func = func;
  s->head_data = user_data;
  s->headers = g_ptr_array_new_with_free_func (g_free);
  s->in = g_byte_array_new ();
  s->send = g_byte_array_new ();
  s->has_body = has_body;
  id = nghttp2_submit_request (session->ng, NULL, (nghttp2_nv *) nv->data, nv->len,
                               has_body ? &provider : NULL, s);
  if (id < 0)
    {
      g_set_error (error, PH_H2_ERROR, PH_H2_ERROR_NO_STREAM, "HTTP/2: %s", nghttp2_strerror (id));
      s->head_done = TRUE;
      ph_h2_stream_free (s);
      return NULL;
    }
  s->id = id;
  session->n_open++;
  g_hash_table_insert (session->streams, GINT_TO_POINTER (id), s);
  session_schedule_flush (session);
  return s;
}

#define NV(n, v)                                                                                   \
  {                                                                                                \
    (uint8_t *) (n), (uint8_t *) (v), strlen (n), strlen (v), NGHTTP2_NV_FLAG_NONE                 \
  }

PhH2Stream *
ph_h2_session_open_connect (PhH2Session *session, const char *authority, const char *const *headers,
                            PhH2HeadFunc func, gpointer user_data, GError **error)
{
  nghttp2_nv nva[] = { NV (":method", "CONNECT"), NV (":authority", authority) };

  return session_open (session, nva, G_N_ELEMENTS (nva), headers, TRUE, func, user_data, error);
}

PhH2Stream *
ph_h2_session_open_request (PhH2Session *session, const char *method, const char *authority,
                            const char *path, const char *const *headers, gboolean has_body,
                            PhH2HeadFunc func, gpointer user_data, GError **error)
{
  nghttp2_nv nva[] = { NV (":method", method), NV (":scheme", "http"), NV (":authority", authority),
                       NV (":path", path) };

  return session_open (session, nva, G_N_ELEMENTS (nva), headers, has_body, func, user_data, error);
}

/* ---- as a PhStream ---- */

static PhIoStatus
backend_read (gpointer object, guint8 *buf, gsize len, gsize *n, GError **error)
{
  return ph_h2_stream_read (object, buf, len, n, error);
}

static PhIoStatus
backend_write (gpointer object, const guint8 *buf, gsize len, gsize *n, GError **error)
{
  return ph_h2_stream_write (object, buf, len, n, error);
}

static PhIoStatus
backend_shutdown_write (gpointer object, GError **error)
{
  return ph_h2_stream_shutdown_write (object, error);
}

static gboolean
backend_is_write_shut (gpointer object)
{
  return ph_h2_stream_is_write_shut (object);
}

static void
backend_abort (gpointer object)
{
  ph_h2_stream_abort (object);
}

static GSource *
backend_wait (gpointer object, gboolean for_write, GSocketSourceFunc func, gpointer data)
{
  return ph_h2_stream_wait (object, for_write, func, data);
}

static void
backend_free (gpointer object)
{
  ph_h2_stream_free (object);
}

static const PhStreamBackend h2_backend = {
  .read = backend_read,
  .write = backend_write,
  .shutdown_write = backend_shutdown_write,
  .is_write_shut = backend_is_write_shut,
  .abort = backend_abort,
  .wait = backend_wait,
  .free = backend_free,
};

PhStream *
ph_h2_stream_to_stream (PhH2Stream *stream)
{
  return ph_stream_new_backend (&h2_backend, stream);
}

PhH2Stream *
ph_h2_stream_from_stream (PhStream *stream)
{
  return ph_stream_get_backend_object (stream, &h2_backend);
}

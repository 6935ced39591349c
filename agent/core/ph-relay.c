/* SPDX-License-Identifier: GPL-2.0-or-later */
/* ph-relay.c: the byte pump under every tunnel and forwarded message.
 * Buffers exist only while they hold bytes, so an idle tunnel costs no
 * buffer memory; the few free ones are kept for reuse. */
#define G_LOG_DOMAIN "pinhole-relay"

#include "ph-relay.h"
#include "ph-error.h"

#include <string.h>

#define PIPE_BUF_SIZE (64 * 1024)
#define FREE_BUFS_MAX 16
#define PH_PIPE_MAX_PACKETS 8

struct _PhPipe
{
  PhStream *src;
  PhStream *dst;
  PhPipeMode mode;
  PhBodyScanner *scanner; /* the pipe's own, from new to free; init resets it */
  GByteArray *overflow;   /* receives bytes read past the body (may be NULL) */

  guint8 *buf;
  gsize cap, off, len;
  /* A tunnel from TLS relays GnuTLS's decrypted records as they are,
   * without copying them into buf. */
  gnutls_packet_t packets[PH_PIPE_MAX_PACKETS];
  guint n_packets;
  gsize packet_off; /* bytes of packets[0] already written */
  GSource *wait;
  gboolean src_eof;
  gboolean running;
  gboolean finished;
  gboolean overran;      /* bytes past the body arrived and no overflow took them */
  gboolean write_failed; /* the error, if any, was on dst, not src */
  guint64 bytes;         /* payload bytes written to dst (pushed heads excluded) */
  gsize head_pending;

  PhPipeDoneFunc done;
  gpointer user_data;
};

/* Main-thread only, like everything in the core. */
static GSList *free_bufs;
static guint n_free_bufs;

static guint8 *
buf_get (void)
{
  if (free_bufs != NULL)
    {
      guint8 *b = free_bufs->data;
      free_bufs = g_slist_delete_link (free_bufs, free_bufs);
      n_free_bufs--;
      return b;
    }
  return g_malloc (PIPE_BUF_SIZE);
}

static void
buf_put (guint8 *b, gsize cap)
{
  if (cap != PIPE_BUF_SIZE || n_free_bufs >= FREE_BUFS_MAX)
    {
      g_free (b);
      return;
    }
  free_bufs = g_slist_prepend (free_bufs, b);
  n_free_bufs++;
}

static void
pipe_release_buf (PhPipe *p)
{
  if (p->buf != NULL && p->len == 0)
    {
      buf_put (p->buf, p->cap);
      p->buf = NULL;
      p->cap = p->off = 0;
    }
}

void
ph_pipe_init (PhPipe *p, PhStream *src, PhStream *dst, PhPipeDoneFunc done, gpointer user_data)
{
  PhBodyScanner *scanner = p->scanner;

  memset (p, 0, sizeof *p);
  p->scanner = scanner;
  p->src = src;
  p->dst = dst;
  p->done = done;
  p->user_data = user_data;
  ph_body_scanner_init (p->scanner, PH_BODY_NONE, 0);
}

PhPipe *
ph_pipe_new (void)
{
  PhPipe *p = g_new0 (PhPipe, 1);

  p->scanner = ph_body_scanner_new (PH_BODY_NONE, 0);
  ph_pipe_init (p, NULL, NULL, NULL, NULL);
  return p;
}

void
ph_pipe_free (PhPipe *p)
{
  if (p == NULL)
    return;
  ph_pipe_clear (p);
  ph_body_scanner_free (p->scanner);
  g_free (p);
}

void
ph_pipe_set_overflow (PhPipe *p, GByteArray *overflow)
{
  p->overflow = overflow;
}

guint64
ph_pipe_get_bytes (PhPipe *p)
{
  return p->bytes;
}

gboolean
ph_pipe_is_running (PhPipe *p)
{
  return p->running;
}

gboolean
ph_pipe_is_finished (PhPipe *p)
{
  return p->finished;
}

gboolean
ph_pipe_get_overran (PhPipe *p)
{
  return p->overran;
}

gboolean
ph_pipe_get_write_failed (PhPipe *p)
{
  return p->write_failed;
}

GBytes *
ph_pipe_dup_pending (PhPipe *p)
{
  if (p->len == 0)
    return NULL;
  return g_bytes_new (p->buf + p->off, p->len);
}

static void
pipe_append (PhPipe *p, const void *data, gsize len)
{
  if (len == 0)
    return;
  if (p->buf == NULL)
    {
      p->cap = MAX (len, PIPE_BUF_SIZE);
      p->buf = p->cap == PIPE_BUF_SIZE ? buf_get () : g_malloc (p->cap);
      p->off = p->len = 0;
    }
  else if (p->off + p->len + len > p->cap)
    {
      gsize need = p->len + len;
      guint8 *nb = g_malloc (MAX (need, PIPE_BUF_SIZE));
      memcpy (nb, p->buf + p->off, p->len);
      buf_put (p->buf, p->cap);
      p->buf = nb;
      p->cap = MAX (need, PIPE_BUF_SIZE);
      p->off = 0;
    }
  memcpy (p->buf + p->off + p->len, data, len);
  p->len += len;
}

void
ph_pipe_push (PhPipe *p, const void *data, gsize len)
{
  pipe_append (p, data, len);
  p->head_pending += len;
}

/* Splits freshly read bytes at the end of the body: the rest goes to the
 * overflow (the next request), or marks the pipe as overrun. */
static gboolean
pipe_frame (PhPipe *p, const guint8 *data, gsize len, gsize *body_len)
{
  gssize used;

  if (p->mode != PH_PIPE_BODY)
    {
      *body_len = len;
      return TRUE;
    }
  used = ph_body_scanner_feed (p->scanner, data, len);
  if (used < 0)
    return FALSE;
  if ((gsize) used < len)
    {
      if (p->overflow != NULL)
        g_byte_array_append (p->overflow, data + used, len - used);
      else
        p->overran = TRUE;
    }
  *body_len = used;
  return TRUE;
}

void
ph_pipe_set_body (PhPipe *p, PhBodyMode mode, guint64 length)
{
  p->mode = PH_PIPE_BODY;
  ph_body_scanner_init (p->scanner, mode, length);
}

gboolean
ph_pipe_push_body (PhPipe *p, const guint8 *data, gsize len)
{
  gsize body_len = 0;

  if (!pipe_frame (p, data, len, &body_len))
    return FALSE;
  pipe_append (p, data, body_len);
  return TRUE;
}

static void pipe_run (PhPipe *p);
static void pipe_wait (PhPipe *p, PhStream *stream, gboolean for_write);
static void pipe_finish (PhPipe *p, GError *error);

static void
pipe_drop_packets (PhPipe *p)
{
  for (guint i = 0; i < p->n_packets; i++)
    gnutls_packet_deinit (p->packets[i]);
  p->n_packets = 0;
  p->packet_off = 0;
}

/* Writes the queued records in one call: OK when all of them went, AGAIN
 * when some remain (a partial write), or the error. */
static PhIoStatus
pipe_write_packets (PhPipe *p, GError **error)
{
  GOutputVector vec[PH_PIPE_MAX_PACKETS];
  gsize n = 0;
  guint done = 0;
  PhIoStatus st;

  for (guint i = 0; i < p->n_packets; i++)
    {
      gnutls_datum_t d;
      gnutls_packet_get (p->packets[i], &d, NULL);
      vec[i].buffer = d.data + (i == 0 ? p->packet_off : 0);
      vec[i].size = d.size - (i == 0 ? p->packet_off : 0);
    }
  st = ph_stream_writev (p->dst, vec, p->n_packets, &n, error);
  if (st != PH_IO_OK)
    return st;
  p->bytes += n;
  while (done < p->n_packets && n >= vec[done].size)
    {
      n -= vec[done].size;
      gnutls_packet_deinit (p->packets[done++]);
    }
  memmove (p->packets, p->packets + done, (p->n_packets - done) * sizeof (gnutls_packet_t));
  p->n_packets -= done;
  p->packet_off = (done > 0 ? 0 : p->packet_off) + n;
  return p->n_packets == 0 ? PH_IO_OK : PH_IO_AGAIN;
}

/* The tunnel's TLS-to-client direction: records go out as GnuTLS
 * decrypted them, several per system call. Returns FALSE once it has
 * waited or finished; TRUE when the source ended (caller half-closes). */
static gboolean
pipe_run_packets (PhPipe *p)
{
  GError *error = NULL;

  for (;;)
    {
      PhIoStatus st;

      if (p->n_packets > 0)
        {
          st = pipe_write_packets (p, &error);
          if (st == PH_IO_OK)
            continue;
          if (st == PH_IO_AGAIN)
            {
              /* A partial write also lands here: wait until writable. */
              pipe_wait (p, p->dst, TRUE);
              return FALSE;
            }
          p->write_failed = TRUE;
          g_prefix_error (&error, "writing: ");
          pipe_finish (p, error);
          return FALSE;
        }
      if (p->src_eof)
        return TRUE;
      while (p->n_packets < PH_PIPE_MAX_PACKETS)
        {
          gnutls_packet_t packet = NULL;

          st = ph_stream_read_packet (p->src, &packet, &error);
          if (st == PH_IO_OK)
            {
              p->packets[p->n_packets++] = packet;
              continue;
            }
          if (st == PH_IO_EOF)
            p->src_eof = TRUE;
          else if (st == PH_IO_AGAIN && p->n_packets == 0)
            {
              pipe_wait (p, p->src, FALSE);
              return FALSE;
            }
          else if (st == PH_IO_ERROR)
            {
              g_prefix_error (&error, "reading: ");
              pipe_finish (p, error);
              return FALSE;
            }
          break;
        }
    }
}

static gboolean
pipe_wake (GSocket *socket, GIOCondition cond, gpointer data)
{
  PhPipe *p = data;

  g_clear_pointer (&p->wait, g_source_unref);
  pipe_run (p);
  return G_SOURCE_REMOVE;
}

static void
pipe_wait (PhPipe *p, PhStream *stream, gboolean for_write)
{
  p->wait = ph_stream_wait (stream, for_write, pipe_wake, p);
}

static void
pipe_finish (PhPipe *p, GError *error)
{
  p->running = FALSE;
  pipe_drop_packets (p);
  p->finished = TRUE;
  pipe_release_buf (p);
  p->done (p, error, p->user_data);
}

static void
pipe_run (PhPipe *p)
{
  GError *error = NULL;

  if (p->mode == PH_PIPE_RAW && ph_stream_can_read_packets (p->src) && p->len == 0 && !p->src_eof
      && !pipe_run_packets (p))
    return;

  while (p->running)
    {
      gsize n = 0;
      PhIoStatus st;

      if (p->len > 0)
        {
          st = ph_stream_write (p->dst, p->buf + p->off, p->len, &n, &error);
          if (st == PH_IO_OK)
            {
              gsize head = MIN (n, p->head_pending);
              p->head_pending -= head;
              p->bytes += n - head;
              p->off += n;
              p->len -= n;
              if (p->len == 0)
                p->off = 0;
              continue;
            }
          if (st == PH_IO_AGAIN)
            {
              pipe_wait (p, p->dst, TRUE);
              return;
            }
          p->write_failed = TRUE;
          g_prefix_error (&error, "writing: ");
          pipe_finish (p, error);
          return;
        }

      if (p->mode == PH_PIPE_FLUSH
          || (p->mode == PH_PIPE_BODY && ph_body_scanner_is_done (p->scanner)))
        {
          pipe_finish (p, NULL);
          return;
        }
      if (p->src_eof)
        {
          if (p->mode == PH_PIPE_BODY
              && ph_body_scanner_get_mode (p->scanner) != PH_BODY_UNTIL_CLOSE)
            {
              pipe_finish (p, g_error_new_literal (PH_ERROR, PH_ERROR_UPSTREAM_PROTOCOL,
                                                   "connection closed in the middle of a body"));
              return;
            }
          if (p->mode == PH_PIPE_RAW)
            {
              st = ph_stream_shutdown_write (p->dst, &error);
              if (st == PH_IO_AGAIN)
                {
                  pipe_wait (p, p->dst, TRUE);
                  return;
                }
              g_clear_error (&error); /* the peer may be gone already */
            }
          pipe_finish (p, NULL);
          return;
        }

      if (p->buf == NULL)
        {
          p->buf = buf_get ();
          p->cap = PIPE_BUF_SIZE;
          p->off = p->len = 0;
        }
      /* Read until the buffer is worth a write: TLS yields one record
       * (16 KiB at most) per read, and a write per record costs a syscall. */
      for (;;)
        {
          gsize body_len = 0;

          st = ph_stream_read (p->src, p->buf + p->len, p->cap - p->len, &n, &error);
          if (st == PH_IO_OK)
            {
              if (!pipe_frame (p, p->buf + p->len, n, &body_len))
                {
                  pipe_finish (p, g_error_new_literal (PH_ERROR, PH_ERROR_BAD_REQUEST,
                                                       "malformed chunked body"));
                  return;
                }
              p->len += body_len;
              if (ph_stream_get_session (p->src) != NULL && body_len == n
                  && p->cap - p->len >= 16384
                  && !(p->mode == PH_PIPE_BODY && ph_body_scanner_is_done (p->scanner)))
                continue;
              break;
            }
          if (st == PH_IO_EOF)
            {
              p->src_eof = TRUE;
              break;
            }
          if (st == PH_IO_AGAIN)
            {
              if (p->len > 0)
                break;
              pipe_release_buf (p);
              pipe_wait (p, p->src, FALSE);
              return;
            }
          g_prefix_error (&error, "reading: ");
          pipe_finish (p, error);
          return;
        }
    }
}

void
ph_pipe_start (PhPipe *p, PhPipeMode mode)
{
  p->mode = mode;
  p->running = TRUE;
  p->finished = FALSE;
  pipe_run (p);
}

void
ph_pipe_stop (PhPipe *p)
{
  p->running = FALSE;
  if (p->wait != NULL)
    {
      g_source_destroy (p->wait);
      g_clear_pointer (&p->wait, g_source_unref);
    }
}

void
ph_pipe_clear (PhPipe *p)
{
  ph_pipe_stop (p);
  pipe_drop_packets (p);
  if (p->buf != NULL)
    {
      if (p->cap == PIPE_BUF_SIZE)
        buf_put (p->buf, p->cap);
      else
        g_free (p->buf);
      p->buf = NULL;
    }
  p->len = p->off = p->cap = 0;
}

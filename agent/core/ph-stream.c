/* SPDX-License-Identifier: GPL-2.0-or-later */
/* ph-stream.c: non-blocking reads and writes over plain and TLS sockets,
 * with GnuTLS's "call again" rules kept in one place, and over one stream of an HTTP/2
 * connection (ph-h2.c gives its calls: a tunnel to the cloud proxy), which it passes through. */
#define G_LOG_DOMAIN "pinhole-stream"

#include "ph-stream.h"
#include "ph-ktls.h"
#include "ph-tls-util.h"

#include <errno.h>
#include <string.h>

/* The socket options below are the core's only direct socket calls, with
 * ph-ktls-unix.c's probe of the kernel; GLib's header brings the right system
 * headers on every platform. */
#include <gio/gnetworking.h>

/* GnuTLS reads a record with two receives of exactly its header and then
 * its body: a 1 GiB download through a tunnel took 131,000 recv() calls
 * of 5 and 16,401 bytes, 30% of the agent's CPU in perf. After the
 * handshake the stream reads the socket in larger pieces and hands GnuTLS
 * what it asks for: one recv() for many records (4,100 instead of 32,900
 * per 256 MiB), for one more memcpy of the ciphertext. Measured on 2 busy
 * cores, medians of 5 interleaved 512 MiB downloads: 0.80 CPU-s/GiB
 * before, 0.75 with 64 KiB, 0.71 with 256 KiB (0.81 with 512 KiB); 1 GiB
 * through fresh agents 0.81 -> 0.70 (7 runs each), after 5 s of 32 new
 * tunnels at a time 0.90 -> 0.85 (12 each): where the sender's bytes sit
 * in the caches moves the kernel's copy more than anything here. A
 * stalled tunnel may hold one such buffer; an idle one holds none. */
#define READ_AHEAD_SIZE (256 * 1024)
#define READ_AHEAD_FREE_MAX 4

struct _PhStream
{
  GSocketConnection *connection; /* keeps the socket alive */
  GSocket *socket;
  gnutls_session_t session; /* NULL for a plain stream; owned */
  gboolean kernel_rx;       /* kTLS: the kernel decrypts, GnuTLS reads plaintext */
  gboolean write_shut;
  /* Ciphertext read from the socket that GnuTLS has not taken yet; the
   * buffer exists only while it holds bytes, so idle streams have none. */
  guint8 *ahead;
  gsize ahead_off, ahead_len;
  gpointer origin; /* who made it (ph_stream_set_origin); not owned */
  /* A stream of another kind (an HTTP/2 stream: no socket, no session of its own): its calls
   * and its object, owned. */
  const PhStreamBackend *backend;
  gpointer object;
};

/* Main-thread only, like everything in the core. */
static GSList *free_ahead;
static guint n_free_ahead;

static guint8 *
ahead_get (void)
{
  if (free_ahead != NULL)
    {
      guint8 *b = free_ahead->data;
      free_ahead = g_slist_delete_link (free_ahead, free_ahead);
      n_free_ahead--;
      return b;
    }
  return g_malloc (READ_AHEAD_SIZE);
}

static void
ahead_release (PhStream *s)
{
  if (s->ahead == NULL)
    return;
  if (n_free_ahead < READ_AHEAD_FREE_MAX)
    {
      free_ahead = g_slist_prepend (free_ahead, s->ahead);
      n_free_ahead++;
    }
  else
    g_free (s->ahead);
  s->ahead = NULL;
  s->ahead_off = s->ahead_len = 0;
}

/* GnuTLS's pull function: from the read-ahead buffer, refilled by one
 * receive when empty. Errors go back as errno values, as recv() would. */
static ssize_t
stream_pull (gnutls_transport_ptr_t ptr, void *data, size_t len)
{
  PhStream *s = ptr;
  gsize n;

  if (s->ahead_len == 0)
    {
      g_autoptr (GError) error = NULL;
      gssize r;

      if (s->ahead == NULL)
        s->ahead = ahead_get ();
      r = g_socket_receive_with_blocking (s->socket, (char *) s->ahead, READ_AHEAD_SIZE, FALSE,
                                          NULL, &error);
      if (r <= 0)
        {
          ahead_release (s);
          if (r == 0)
            return 0;
          if (g_error_matches (error, G_IO_ERROR, G_IO_ERROR_WOULD_BLOCK))
            gnutls_transport_set_errno (s->session, EAGAIN);
          else if (g_error_matches (error, G_IO_ERROR, G_IO_ERROR_CONNECTION_CLOSED)
                   || g_error_matches (error, G_IO_ERROR, G_IO_ERROR_BROKEN_PIPE))
            gnutls_transport_set_errno (s->session, ECONNRESET);
          else
            gnutls_transport_set_errno (s->session, EIO);
          return -1;
        }
      s->ahead_off = 0;
      s->ahead_len = r;
    }
  n = MIN (len, s->ahead_len);
  memcpy (data, s->ahead + s->ahead_off, n);
  s->ahead_off += n;
  s->ahead_len -= n;
  if (s->ahead_len == 0)
    ahead_release (s);
  return n;
}

/* Only reached with a receive timeout, which the core never sets; kept
 * true to the buffer all the same. */
static int
stream_pull_timeout (gnutls_transport_ptr_t ptr, unsigned int ms)
{
  PhStream *s = ptr;
  gint64 us = ms == GNUTLS_INDEFINITE_TIMEOUT ? -1 : (gint64) ms * 1000;

  if (s->ahead_len > 0)
    return 1;
  return g_socket_condition_timed_wait (s->socket, G_IO_IN, us, NULL, NULL) ? 1 : 0;
}

PhStream *
ph_stream_new (GSocketConnection *connection, gnutls_session_t session)
{
  PhStream *s = g_new0 (PhStream, 1);

  s->connection = g_object_ref (connection);
  s->socket = g_socket_connection_get_socket (connection);
  s->session = session;
  /* Every call on it must return rather than wait: the main loop waits. */
  g_socket_set_blocking (s->socket, FALSE);
  /* With kernel TLS, GnuTLS reads the descriptor itself (ph-ktls-unix.c). */
  s->kernel_rx = session != NULL && (ph_ktls_get_directions (session) & PH_KTLS_RX) != 0;
  if (session != NULL && !s->kernel_rx)
    {
      /* The handshake read exactly what it needed, so nothing is lost by
       * switching the receive side here; sends stay on the descriptor. */
      gnutls_transport_set_ptr2 (session, s, GINT_TO_POINTER (g_socket_get_fd (s->socket)));
      gnutls_transport_set_pull_function (session, stream_pull);
      gnutls_transport_set_pull_timeout_function (session, stream_pull_timeout);
    }
  return s;
}

PhStream *
ph_stream_new_backend (const PhStreamBackend *backend, gpointer object)
{
  PhStream *s = g_new0 (PhStream, 1);

  s->backend = backend;
  s->object = object;
  return s;
}

gpointer
ph_stream_get_backend_object (PhStream *s, const PhStreamBackend *backend)
{
  return s->backend == backend ? s->object : NULL;
}

void
ph_stream_free (PhStream *s)
{
  if (s == NULL)
    return;
  if (s->backend != NULL)
    {
      s->backend->free (s->object);
      g_free (s);
      return;
    }
  if (s->session != NULL)
    gnutls_deinit (s->session);
  ahead_release (s);
  g_socket_close (s->socket, NULL);
  g_object_unref (s->connection);
  g_free (s);
}

GSocket *
ph_stream_get_socket (PhStream *s)
{
  /* An HTTP/2 stream has no socket of its own (its connection's is ph-h2's). */
  return s->socket;
}

gnutls_session_t
ph_stream_get_session (PhStream *s)
{
  return s->session;
}

gboolean
ph_stream_can_read_packets (PhStream *s)
{
  return s->session != NULL && !s->kernel_rx;
}

gboolean
ph_stream_is_write_shut (PhStream *s)
{
  if (s->backend != NULL)
    return s->backend->is_write_shut (s->object);
  return s->write_shut;
}

static PhIoStatus
socket_status (GError *local, GError **error)
{
  if (g_error_matches (local, G_IO_ERROR, G_IO_ERROR_WOULD_BLOCK))
    {
      g_error_free (local);
      return PH_IO_AGAIN;
    }
  g_propagate_error (error, local);
  return PH_IO_ERROR;
}

/* What the socket holds unread: AGAIN when nothing, OK when bytes, EOF at
 * the end or on an error. A peek, so GnuTLS still reads what is there. */
static PhIoStatus
socket_peek (GSocket *socket)
{
  guint8 byte;
  GInputVector vec = { &byte, 1 };
  gint flags = G_SOCKET_MSG_PEEK;
  g_autoptr (GError) error = NULL;
  gssize r = g_socket_receive_message (socket, NULL, &vec, 1, NULL, NULL, &flags, NULL, &error);

  if (r > 0)
    return PH_IO_OK;
  if (r < 0 && g_error_matches (error, G_IO_ERROR, G_IO_ERROR_WOULD_BLOCK))
    return PH_IO_AGAIN;
  return PH_IO_EOF;
}

gboolean
ph_stream_is_idle_open (PhStream *s)
{
  if (s->backend != NULL)
    return FALSE; /* a stream is never kept for a next request */
  /* GnuTLS consumes a TLS 1.3 ticket and says AGAIN, while a close_notify
   * or a FIN may wait right behind it in the socket: read on while it
   * holds more. Servers send two tickets or so; a
   * flood of records is not idle. */
  for (guint pass = 0; pass < 8; pass++)
    {
      guint8 byte;
      gsize n = 0;

      if (ph_stream_read (s, &byte, 1, &n, NULL) != PH_IO_AGAIN)
        return FALSE;
      if (s->session == NULL)
        return TRUE;
      if (gnutls_record_check_pending (s->session) > 0 || s->ahead_len > 0)
        continue;
      switch (socket_peek (s->socket))
        {
          case PH_IO_AGAIN:
            return TRUE;
          case PH_IO_OK:
            continue;
          default:
            return FALSE;
        }
    }
  return FALSE;
}

PhIoStatus
ph_stream_read (PhStream *s, guint8 *buf, gsize len, gsize *n, GError **error)
{
  *n = 0;
  if (s->backend != NULL)
    return s->backend->read (s->object, buf, len, n, error);
  if (s->session != NULL)
    {
      ssize_t r = gnutls_record_recv (s->session, buf, len);
      if (r > 0)
        {
          *n = r;
          return PH_IO_OK;
        }
      /* stunnel and others close without close_notify once we have sent
       * ours: after our half-close, that is a clean end. */
      if (r == 0 || (r == GNUTLS_E_PREMATURE_TERMINATION && s->write_shut))
        return PH_IO_EOF;
      if (r == GNUTLS_E_AGAIN || r == GNUTLS_E_INTERRUPTED)
        return PH_IO_AGAIN;
      if (r == GNUTLS_E_REHANDSHAKE || !gnutls_error_is_fatal (r))
        return PH_IO_AGAIN; /* TLS 1.3 tickets and key updates are handled inside */
      ph_tls_set_error (error, r, PH_ERROR_UPSTREAM_TLS, "reading from the cloud proxy");
      return PH_IO_ERROR;
    }
  else
    {
      GError *local = NULL;
      gssize r = g_socket_receive_with_blocking (s->socket, (char *) buf, len, FALSE, NULL, &local);
      if (r > 0)
        {
          *n = r;
          return PH_IO_OK;
        }
      if (r == 0)
        return PH_IO_EOF;
      return socket_status (local, error);
    }
}

PhIoStatus
ph_stream_write (PhStream *s, const guint8 *buf, gsize len, gsize *n, GError **error)
{
  *n = 0;
  if (s->backend != NULL)
    return s->backend->write (s->object, buf, len, n, error);
  if (s->session != NULL)
    {
      /* After AGAIN GnuTLS must be called again with the same buffer; the
       * relay keeps its buffer until the write completes, so it does. */
      ssize_t r = gnutls_record_send (s->session, buf, MIN (len, 16384));
      if (r >= 0)
        {
          *n = r;
          return PH_IO_OK;
        }
      if (r == GNUTLS_E_AGAIN || r == GNUTLS_E_INTERRUPTED)
        return PH_IO_AGAIN;
      ph_tls_set_error (error, r, PH_ERROR_UPSTREAM_TLS, "writing to the cloud proxy");
      return PH_IO_ERROR;
    }
  else
    {
      GError *local = NULL;
      gssize r
          = g_socket_send_with_blocking (s->socket, (const char *) buf, len, FALSE, NULL, &local);
      if (r >= 0)
        {
          *n = r;
          return PH_IO_OK;
        }
      return socket_status (local, error);
    }
}

PhIoStatus
ph_stream_writev (PhStream *s, GOutputVector *vectors, guint n_vectors, gsize *n, GError **error)
{
  GError *local = NULL;
  gssize r;

  g_return_val_if_fail (s->backend == NULL && s->session == NULL, PH_IO_ERROR);
  r = g_socket_send_message (s->socket, NULL, vectors, n_vectors, NULL, 0, G_SOCKET_MSG_NONE, NULL,
                             &local);

  *n = 0;
  if (r >= 0)
    {
      *n = r;
      return PH_IO_OK;
    }
  return socket_status (local, error);
}

PhIoStatus
ph_stream_read_packet (PhStream *s, gnutls_packet_t *packet, GError **error)
{
  ssize_t r = gnutls_record_recv_packet (s->session, packet);

  if (r > 0)
    return PH_IO_OK;
  if (*packet != NULL)
    g_clear_pointer (packet, gnutls_packet_deinit);
  if (r == 0 || (r == GNUTLS_E_PREMATURE_TERMINATION && s->write_shut))
    return PH_IO_EOF;
  if (r == GNUTLS_E_AGAIN || r == GNUTLS_E_INTERRUPTED || !gnutls_error_is_fatal (r))
    return PH_IO_AGAIN;
  ph_tls_set_error (error, r, PH_ERROR_UPSTREAM_TLS, "reading from the cloud proxy");
  return PH_IO_ERROR;
}

PhIoStatus
ph_stream_shutdown_write (PhStream *s, GError **error)
{
  if (s->backend != NULL)
    return s->backend->shutdown_write (s->object, error);
  if (s->write_shut)
    return PH_IO_OK;
  if (s->session != NULL)
    {
      int r = gnutls_bye (s->session, GNUTLS_SHUT_WR);
      if (r == GNUTLS_E_AGAIN || r == GNUTLS_E_INTERRUPTED)
        return PH_IO_AGAIN;
      /* A peer that already went away needs no close_notify. */
    }
  s->write_shut = TRUE;
  if (!g_socket_shutdown (s->socket, FALSE, TRUE, error))
    return PH_IO_ERROR;
  return PH_IO_OK;
}

void
ph_stream_abort (PhStream *s)
{
  /* SO_LINGER 0 makes close() send a reset. */
  struct linger lin = { 1, 0 };

  if (s->backend != NULL)
    {
      s->backend->abort (s->object); /* RST_STREAM: the connection stays for the others */
      return;
    }
  setsockopt (g_socket_get_fd (s->socket), SOL_SOCKET, SO_LINGER, (const void *) &lin, sizeof lin);
}

typedef struct
{
  GSocket *socket;
  GSocketSourceFunc func;
  gpointer data;
} PhReadyCall;

static gboolean
ready_cb (gpointer data)
{
  PhReadyCall *call = data;

  return call->func (call->socket, G_IO_IN, call->data);
}

static void
ready_call_free (gpointer data)
{
  PhReadyCall *call = data;

  g_object_unref (call->socket);
  g_free (call);
}

GSource *
ph_stream_wait (PhStream *s, gboolean for_write, GSocketSourceFunc func, gpointer data)
{
  GIOCondition cond;
  GSource *source;

  if (s->backend != NULL)
    return s->backend->wait (s->object, for_write, func, data);
  if (s->session != NULL)
    cond = gnutls_record_get_direction (s->session) ? G_IO_OUT : G_IO_IN;
  else
    cond = for_write ? G_IO_OUT : G_IO_IN;
  if (cond == G_IO_IN && s->ahead_len > 0)
    {
      /* GnuTLS stopped short of the read-ahead (after a TLS 1.3 ticket,
       * say): the socket may stay silent, so the bytes at hand wake the
       * waiter at once. */
      PhReadyCall *call = g_new (PhReadyCall, 1);

      call->socket = g_object_ref (s->socket); /* as a socket source holds it */
      call->func = func;
      call->data = data;
      source = g_idle_source_new ();
      g_source_set_priority (source, G_PRIORITY_DEFAULT);
      g_source_set_callback (source, ready_cb, call, ready_call_free);
      g_source_attach (source, NULL);
      return source;
    }
  source = g_socket_create_source (s->socket, cond | G_IO_ERR | G_IO_HUP, NULL);
  g_source_set_callback (source, G_SOURCE_FUNC (func), data, NULL);
  g_source_attach (source, NULL);
  return source;
}

void
ph_socket_set_nodelay (GSocket *socket)
{
  g_socket_set_option (socket, IPPROTO_TCP, TCP_NODELAY, 1, NULL);
}

void
ph_socket_set_v6only (GSocket *socket)
{
  g_socket_set_option (socket, IPPROTO_IPV6, IPV6_V6ONLY, 1, NULL);
}

void
ph_stream_set_origin (PhStream *stream, gpointer origin)
{
  stream->origin = origin;
}

gpointer
ph_stream_get_origin (PhStream *stream)
{
  return stream->origin;
}

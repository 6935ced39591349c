/* SPDX-License-Identifier: GPL-2.0-or-later */
/* ph-stream.c: non-blocking reads and writes over plain and TLS sockets,
 * with GnuTLS's "call again" rules kept in one place. */
#define G_LOG_DOMAIN "pinhole-stream"

#include "ph-stream.h"
#include "ph-tls-util.h"

/* The socket options below are the core's only direct socket calls;
 * GLib's header brings the right system headers on every platform. */
#include <gio/gnetworking.h>

struct _PhStream
{
  GSocketConnection *connection; /* keeps the socket alive */
  GSocket *socket;
  gnutls_session_t session; /* NULL for a plain stream; owned */
  gboolean write_shut;
};

PhStream *
ph_stream_new (GSocketConnection *connection, gnutls_session_t session)
{
  PhStream *s = g_new0 (PhStream, 1);

  s->connection = g_object_ref (connection);
  s->socket = g_socket_connection_get_socket (connection);
  s->session = session;
  /* Every call on it must return rather than wait: the main loop waits. */
  g_socket_set_blocking (s->socket, FALSE);
  return s;
}

void
ph_stream_free (PhStream *s)
{
  if (s == NULL)
    return;
  if (s->session != NULL)
    gnutls_deinit (s->session);
  g_socket_close (s->socket, NULL);
  g_object_unref (s->connection);
  g_free (s);
}

GSocket *
ph_stream_get_socket (PhStream *s)
{
  return s->socket;
}

gnutls_session_t
ph_stream_get_session (PhStream *s)
{
  return s->session;
}

gboolean
ph_stream_is_write_shut (PhStream *s)
{
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
      if (gnutls_record_check_pending (s->session) > 0)
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
  gssize r = g_socket_send_message (s->socket, NULL, vectors, n_vectors, NULL, 0, G_SOCKET_MSG_NONE,
                                    NULL, &local);

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

  setsockopt (g_socket_get_fd (s->socket), SOL_SOCKET, SO_LINGER, (const void *) &lin, sizeof lin);
}

GSource *
ph_stream_wait (PhStream *s, gboolean for_write, GSocketSourceFunc func, gpointer data)
{
  GIOCondition cond;
  GSource *source;

  if (s->session != NULL)
    cond = gnutls_record_get_direction (s->session) ? G_IO_OUT : G_IO_IN;
  else
    cond = for_write ? G_IO_OUT : G_IO_IN;
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

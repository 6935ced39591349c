/* SPDX-License-Identifier: GPL-2.0-or-later */
/* ph-stream.h: a non-blocking byte stream over a GSocket, plain or TLS,
 * driven from the main loop: the relay's view of both ends of a tunnel. */
#pragma once

#include <gio/gio.h>
#include <gnutls/gnutls.h>

G_BEGIN_DECLS

typedef enum
{
  PH_IO_OK,
  PH_IO_AGAIN, /* wait with ph_stream_wait() */
  PH_IO_EOF,
  PH_IO_ERROR,
} PhIoStatus;

/* One owner (a connection, a pool entry, a pipe's user): new and free. */
typedef struct _PhStream PhStream;

/* Takes a reference on @connection; takes ownership of @session. */
PhStream *ph_stream_new (GSocketConnection *connection, gnutls_session_t session);

/* The calls of a stream that is not a socket of its own: one stream of an HTTP/2 connection
 * (ph-h2.c gives its table). A table without behaviour, like PhHttpLimits. */
typedef struct
{
  PhIoStatus (*read) (gpointer object, guint8 *buf, gsize len, gsize *n, GError **error);
  PhIoStatus (*write) (gpointer object, const guint8 *buf, gsize len, gsize *n, GError **error);
  PhIoStatus (*shutdown_write) (gpointer object, GError **error);
  gboolean (*is_write_shut) (gpointer object);
  void (*abort) (gpointer object);
  GSource *(*wait) (gpointer object, gboolean for_write, GSocketSourceFunc func, gpointer data);
  void (*free) (gpointer object);
} PhStreamBackend;

/* A stream whose read, write, wait, half-close and abort are @backend's on @object, which it
 * takes (freed with backend->free); it has no socket (NULL) nor TLS session. */
PhStream *ph_stream_new_backend (const PhStreamBackend *backend, gpointer object);
/* @stream's object when it was made with @backend; NULL otherwise (a socket, another kind). */
gpointer ph_stream_get_backend_object (PhStream *stream, const PhStreamBackend *backend);
void ph_stream_free (PhStream *stream);

GSocket *ph_stream_get_socket (PhStream *stream);
/* The TLS session, still owned by @stream; NULL for a plain stream. */
gnutls_session_t ph_stream_get_session (PhStream *stream);
/* Whether ph_stream_read_packet() works: TLS that GnuTLS decrypts, not
 * the kernel (kTLS hands GnuTLS plaintext, which it reads by copying). */
gboolean ph_stream_can_read_packets (PhStream *stream);
/* Whether ph_stream_shutdown_write() has sent our end. */
gboolean ph_stream_is_write_shut (PhStream *stream);

PhIoStatus ph_stream_read (PhStream *stream, guint8 *buf, gsize len, gsize *n, GError **error);
/* Never waits: OK with *n bytes taken (possibly fewer than @len), or AGAIN.
 * After AGAIN on TLS, call again with the same bytes (GnuTLS's rule). */
PhIoStatus ph_stream_write (PhStream *stream, const guint8 *buf, gsize len, gsize *n,
                            GError **error);
/* Writes several buffers in one system call (plain streams only). */
PhIoStatus ph_stream_writev (PhStream *stream, GOutputVector *vectors, guint n_vectors, gsize *n,
                             GError **error);
/* Reads one decrypted TLS record without copying it (when
 * ph_stream_can_read_packets()). */
PhIoStatus ph_stream_read_packet (PhStream *stream, gnutls_packet_t *packet, GError **error);
/* Whether an idle connection is still usable: nothing to read (a TLS 1.3
 * ticket is consumed and does not count), no end, no error. A kept-alive
 * connection is checked before reuse: servers close idle ones (Apache
 * after 5 s) and a request written into a closing one is lost. */
gboolean ph_stream_is_idle_open (PhStream *stream);
/* Half-closes: close_notify for TLS, then a TCP FIN. */
PhIoStatus ph_stream_shutdown_write (PhStream *stream, GError **error);
/* Ends the connection so the peer sees a reset, not a clean end. */
void ph_stream_abort (PhStream *stream);

/* A source that fires when the last AGAIN in @for_write's direction can
 * make progress. For TLS the socket direction is GnuTLS's to decide. */
GSource *ph_stream_wait (PhStream *stream, gboolean for_write, GSocketSourceFunc func,
                         gpointer data);

void ph_socket_set_nodelay (GSocket *socket);
void ph_socket_set_v6only (GSocket *socket);

/* Which of its peers the maker of a stream connected it to (ph-upstream: the cloud proxy), for
 * the maker to read back when the stream is handed back; NULL unless set. Not owned. */
void ph_stream_set_origin (PhStream *stream, gpointer origin);
gpointer ph_stream_get_origin (PhStream *stream);

G_DEFINE_AUTOPTR_CLEANUP_FUNC (PhStream, ph_stream_free)

G_END_DECLS

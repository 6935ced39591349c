/* SPDX-License-Identifier: GPL-2.0-or-later */
/* ph-h2.h: an HTTP/2 client session (libnghttp2) over one verified TLS connection to a cloud
 * proxy, driven by the main loop: CONNECT tunnels (RFC 9113 §8.5) and plain requests as streams,
 * each with the byte-stream calls of ph-stream.h (read, write, wait, half-close, abort) and its
 * own flow control, so that one slow reader stalls only its stream. Built only with libnghttp2
 * (PH_HAVE_NGHTTP2). */
#pragma once

#include <gio/gio.h>

#include "ph-stream.h"

G_BEGIN_DECLS

#define PH_H2_ERROR (ph_h2_error_quark ())
GQuark ph_h2_error_quark (void);

typedef enum
{
  /* The proxy did not take the stream (GOAWAY below it, REFUSED_STREAM): nothing of it was
   * processed, so it may be tried again on another connection. */
  PH_H2_ERROR_REFUSED,
  /* The proxy reset the stream (the message names the HTTP/2 error code). */
  PH_H2_ERROR_RESET,
  /* The connection under the stream was lost or broke the protocol. */
  PH_H2_ERROR_CONNECTION,
  /* The session no longer takes streams (GOAWAY, closed, or no free stream slot). */
  PH_H2_ERROR_NO_STREAM,
} PhH2Error;

/* Shared (the upstream's pool and each stream hold it): ref and unref. */
typedef struct _PhH2Session PhH2Session;
/* One owner (a connection): new by ph_h2_session_open_*, ph_h2_stream_free(). */
typedef struct _PhH2Stream PhH2Stream;

/* The default window the session advertises for each stream it opens (the bytes a proxy may send
 * on one stream before its reader takes them), and for the whole connection. */
#define PH_H2_DEFAULT_STREAM_WINDOW (16u * 1024 * 1024)
#define PH_H2_DEFAULT_CONNECTION_WINDOW (64u * 1024 * 1024)
/* How long a PING of ph_h2_session_check_alive() waits for an answer by default. */
#define PH_H2_PING_TIMEOUT_MS 5000

/* Starts HTTP/2 on @tls (verified, ALPN "h2"), which it takes: writes the preface, SETTINGS and
 * the connection's WINDOW_UPDATE. @stream_window 0: PH_H2_DEFAULT_STREAM_WINDOW. */
PhH2Session *ph_h2_session_new (PhStream *tls, guint32 stream_window, GError **error);
PhH2Session *ph_h2_session_ref (PhH2Session *session);
void ph_h2_session_unref (PhH2Session *session);

/* Called (from the main loop) when the proxy sent GOAWAY and when the connection ended. */
typedef void (*PhH2SessionFunc) (PhH2Session *session, gpointer user_data);
void ph_h2_session_set_notify (PhH2Session *session, PhH2SessionFunc func, gpointer user_data);

/* How many more streams may be opened now: the proxy's SETTINGS_MAX_CONCURRENT_STREAMS less the
 * open ones; 0 after GOAWAY or the connection's end. */
guint ph_h2_session_get_available_streams (PhH2Session *session);
/* Whether the proxy sent GOAWAY; its last stream id in @last_stream_id. */
gboolean ph_h2_session_got_goaway (PhH2Session *session, guint32 *last_stream_id);
/* The verified TLS connection under the session (still the session's). */
PhStream *ph_h2_session_get_stream (PhH2Session *session);
/* Whether the connection has ended (lost, or closed after GOAWAY with no stream left). */
gboolean ph_h2_session_is_closed (PhH2Session *session);
/* Streams open now (opened and not closed by both ends). */
guint ph_h2_session_get_open_streams (PhH2Session *session);
/* Sends a PING: unless some frame comes back within @timeout_ms, the connection is taken as lost
 * (its streams fail with PH_H2_ERROR_CONNECTION, the notify function is called). For a stream
 * whose answer is late: a dead connection (a network that went away without a word) is told
 * from a slow target. Nothing when a PING is already out. */
void ph_h2_session_check_alive (PhH2Session *session, guint timeout_ms);
gboolean ph_h2_session_is_checking_alive (PhH2Session *session);
/* Sends GOAWAY(NO_ERROR) and ends the connection once the open streams have ended. */
void ph_h2_session_shutdown (PhH2Session *session);

/* Called once per stream: when its final response head has come (@error NULL; read it with
 * ph_h2_stream_get_status() and _get_header()), or with the error that ended it before. The
 * stream may be freed in it. */
typedef void (*PhH2HeadFunc) (PhH2Stream *stream, GError *error, gpointer user_data);

/* Called for each interim (1xx) response head before the final one (read its headers with
 * ph_h2_stream_get_headers()); it must not free the stream. */
typedef void (*PhH2InterimFunc) (PhH2Stream *stream, guint status, gpointer user_data);

/* Opens a CONNECT stream to @authority ("host:port"); @headers are extra header lines as
 * name, value, …, NULL (names lower-case, e.g. "proxy-authorization"). NULL with
 * PH_H2_ERROR_NO_STREAM when the session takes no more streams. */
PhH2Stream *ph_h2_session_open_connect (PhH2Session *session, const char *authority,
                                        const char *const *headers, PhH2HeadFunc func,
                                        gpointer user_data, GError **error);
/* Opens a plain request (:scheme http). With @has_body the body is what ph_h2_stream_write()
 * is given until ph_h2_stream_shutdown_write(); without, the HEADERS end the stream. */
PhH2Stream *ph_h2_session_open_request (PhH2Session *session, const char *method,
                                        const char *authority, const char *path,
                                        const char *const *headers, gboolean has_body,
                                        PhH2HeadFunc func, gpointer user_data, GError **error);

/* Resets the stream with CANCEL unless both ends have closed it already. */
void ph_h2_stream_free (PhH2Stream *stream);

/* @stream as a PhStream (ph-stream.h's backend: its calls are the ph_h2_stream_* below), which
 * takes it: the relay copies to and from it as from a socket. */
PhStream *ph_h2_stream_to_stream (PhH2Stream *stream);
/* The HTTP/2 stream under @stream, or NULL when it is something else (a socket). */
PhH2Stream *ph_h2_stream_from_stream (PhStream *stream);

guint32 ph_h2_stream_get_id (PhH2Stream *stream);
PhH2Session *ph_h2_stream_get_session (PhH2Stream *stream);
/* The final response's :status; 0 before it. */
guint ph_h2_stream_get_status (PhH2Stream *stream);
/* The value of the response header @name (lower-case), the first one; NULL when absent. */
const char *ph_h2_stream_get_header (PhH2Stream *stream, const char *name);
/* Every response header as name, value, … (not :status). */
const GPtrArray *ph_h2_stream_get_headers (PhH2Stream *stream);
/* Interim heads go to @func (with the head function's user data); without one they are
 * skipped. */
void ph_h2_stream_set_interim_func (PhH2Stream *stream, PhH2InterimFunc func);

/* As ph_stream_read(): OK with bytes, AGAIN (wait), EOF after the proxy's END_STREAM, ERROR
 * when the stream or the connection failed. */
PhIoStatus ph_h2_stream_read (PhH2Stream *stream, guint8 *buf, gsize len, gsize *n, GError **error);
/* As ph_stream_write(): takes what fits in the stream's send buffer; AGAIN when it is full. */
PhIoStatus ph_h2_stream_write (PhH2Stream *stream, const guint8 *buf, gsize len, gsize *n,
                               GError **error);
/* END_STREAM after the bytes written so far. */
PhIoStatus ph_h2_stream_shutdown_write (PhH2Stream *stream, GError **error);
gboolean ph_h2_stream_is_write_shut (PhH2Stream *stream);
/* RST_STREAM(CANCEL) now. */
void ph_h2_stream_abort (PhH2Stream *stream);
/* As ph_stream_wait(): a source that calls @func (with the connection's socket) once the last
 * AGAIN in that direction can make progress; the caller destroys and unrefs it. */
GSource *ph_h2_stream_wait (PhH2Stream *stream, gboolean for_write, GSocketSourceFunc func,
                            gpointer data);

G_DEFINE_AUTOPTR_CLEANUP_FUNC (PhH2Session, ph_h2_session_unref)
G_DEFINE_AUTOPTR_CLEANUP_FUNC (PhH2Stream, ph_h2_stream_free)

G_END_DECLS

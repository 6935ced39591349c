/* SPDX-License-Identifier: GPL-2.0-or-later */
/* ph-relay.h: a pipe moves bytes from one stream to another through one
 * bounded buffer: it reads from its source only once the destination has
 * taken everything read before. A tunnel is two pipes. */
#pragma once

#include "ph-http.h"
#include "ph-stream.h"

G_BEGIN_DECLS

typedef enum
{
  PH_PIPE_FLUSH, /* write what was pushed, then finish */
  PH_PIPE_BODY,  /* relay one message body, as the scanner frames it */
  PH_PIPE_RAW,   /* relay until the source ends, then half-close */
} PhPipeMode;

/* One owner (a connection, a test): new and free. ph_pipe_init() sets it up afresh for the
 * next message, forgetting what it held: ph_pipe_clear() first lets go of that. */
typedef struct _PhPipe PhPipe;
/* @error is NULL when the pipe finished cleanly. */
typedef void (*PhPipeDoneFunc) (PhPipe *pipe, GError *error, gpointer user_data);

/* A pipe with no streams, stopped. */
PhPipe *ph_pipe_new (void);
void ph_pipe_free (PhPipe *pipe);
void ph_pipe_init (PhPipe *pipe, PhStream *src, PhStream *dst, PhPipeDoneFunc done,
                   gpointer user_data);
/* Queues @len bytes to write before anything read from the source. */
void ph_pipe_push (PhPipe *pipe, const void *data, gsize len);
/* Makes the pipe relay one message body framed as @mode. */
void ph_pipe_set_body (PhPipe *pipe, PhBodyMode mode, guint64 length);
/* Queues bytes that were read ahead (e.g. with a head): after
 * ph_pipe_set_body() they go through its framing like bytes read now;
 * otherwise they are relayed as they are. FALSE: malformed framing. */
gboolean ph_pipe_push_body (PhPipe *pipe, const guint8 *data, gsize len);
void ph_pipe_start (PhPipe *pipe, PhPipeMode mode);
void ph_pipe_stop (PhPipe *pipe);
void ph_pipe_clear (PhPipe *pipe);

/* Receives bytes read past the body (the next pipelined request); without one they make the
 * pipe overrun. Not owned; NULL to drop. */
void ph_pipe_set_overflow (PhPipe *pipe, GByteArray *overflow);
/* Payload bytes written to the destination (pushed heads excluded). */
guint64 ph_pipe_get_bytes (PhPipe *pipe);
gboolean ph_pipe_is_running (PhPipe *pipe);
gboolean ph_pipe_is_finished (PhPipe *pipe);
/* Bytes past the body arrived and no overflow took them. */
gboolean ph_pipe_get_overran (PhPipe *pipe);
/* Whether the error, if any, was on the destination rather than the source. */
gboolean ph_pipe_get_write_failed (PhPipe *pipe);
/* The bytes queued and not yet written, or NULL when none. */
GBytes *ph_pipe_dup_pending (PhPipe *pipe);

G_DEFINE_AUTOPTR_CLEANUP_FUNC (PhPipe, ph_pipe_free)

G_END_DECLS

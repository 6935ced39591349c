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

#define PH_PIPE_MAX_PACKETS 8

typedef struct _PhPipe PhPipe;
/* @error is NULL when the pipe finished cleanly. */
typedef void (*PhPipeDoneFunc) (PhPipe *pipe, GError *error, gpointer user_data);

struct _PhPipe
{
  PhStream *src;
  PhStream *dst;
  PhPipeMode mode;
  PhBodyScanner scanner;
  GByteArray *overflow; /* receives bytes read past the body (may be NULL) */

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

G_END_DECLS

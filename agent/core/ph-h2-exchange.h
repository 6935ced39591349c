/* SPDX-License-Identifier: GPL-2.0-or-later */
/* ph-h2-exchange.h: one plain http:// request and its answer on a stream of the cloud proxy's
 * HTTP/2 connection, behind the byte-stream calls of an HTTP/1.1 connection, so that the agent's
 * HTTP/1.1 exchange (ph-proxy-conn.c: interim answers, 407 checks, body framing, keep-alive
 * with the client) runs on it unchanged. Built only with libnghttp2 (PH_HAVE_NGHTTP2). */
#pragma once

#include "ph-h2.h"

G_BEGIN_DECLS

/* A stream for one exchange on @session (a reference is taken). What is written to it is one
 * request: the head as ph_upstream_build_request() writes it (absolute-form target, the proxy's
 * credentials among its fields), then its body framed by Content-Length or chunked. The HTTP/2
 * stream opens once the head is whole: its pseudo-header fields come from the request line,
 * the fields go on lower-cased without the hop-by-hop ones (RFC 9113 §8.2.2), the body goes as
 * DATA without its chunked framing, and the request's end is END_STREAM. What is read from it is
 * the answer in HTTP/1.1: interim heads, the final head, its body framed by the proxy's
 * Content-Length or else chunked (trailers are dropped), then EOF. The stream is good for one
 * exchange: ph_stream_is_idle_open() is FALSE for it, and the next request takes a new one. */
PhStream *ph_h2_exchange_new (PhH2Session *session);

/* The session of the exchange @stream; NULL when @stream is not one of ph_h2_exchange_new(). */
PhH2Session *ph_h2_exchange_get_session (PhStream *stream);

G_END_DECLS

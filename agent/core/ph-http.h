/* SPDX-License-Identifier: GPL-2.0-or-later */
/* ph-http.h: strict HTTP/1.1 message heads (RFC 9112) and message-body
 * framing for a forwarding proxy. Pure functions over byte buffers: no I/O. */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

/* The caller's bounds for one parse: a plain value the caller fills in
 * (often a static const table) and the parser only reads, with no
 * behaviour of its own, so its fields stay public. */
typedef struct
{
  gsize max_head;    /* whole head, request line included */
  gsize max_target;  /* request-target */
  guint max_headers; /* header fields */
} PhHttpLimits;

extern const PhHttpLimits ph_http_default_limits;

/* A message's header fields in the order received. They belong to the
 * message: ph_http_request_get_headers(), ph_http_response_get_headers(). */
typedef struct _PhHttpHeaders PhHttpHeaders;

typedef enum
{
  PH_HTTP_CONNECT,  /* authority-form */
  PH_HTTP_ABSOLUTE, /* http://host[:port]/path */
  PH_HTTP_ORIGIN,   /* /path: addressed to the agent itself */
} PhHttpTargetKind;

/* A parsed request head. One owner: parse and free. */
typedef struct _PhHttpRequest PhHttpRequest;

/* A parsed response head. One owner: parse and free. */
typedef struct _PhHttpResponse PhHttpResponse;

typedef enum
{
  PH_HTTP_PARSE_INCOMPLETE,
  PH_HTTP_PARSE_DONE,
  PH_HTTP_PARSE_ERROR,
} PhHttpParseResult;

/* Parses one request head from @buf. DONE: *@consumed is the head's length
 * and *@out the request. ERROR: *@status is the HTTP status to answer with
 * and @reason a one-line explanation. INCOMPLETE: read more. */
PhHttpParseResult ph_http_request_parse (const char *buf, gsize len, const PhHttpLimits *limits,
                                         PhHttpRequest **out, gsize *consumed, guint *status,
                                         char **reason);
void ph_http_request_free (PhHttpRequest *req);

PhHttpParseResult ph_http_response_parse (const char *buf, gsize len, const PhHttpLimits *limits,
                                          PhHttpResponse **out, gsize *consumed, char **reason);
void ph_http_response_free (PhHttpResponse *resp);
/* Whether a response to @method with this status carries a body. */
gboolean ph_http_response_has_body (const PhHttpResponse *resp, const char *method);

/* Getters. Strings belong to the message. */
const char *ph_http_request_get_method (const PhHttpRequest *req);
const char *ph_http_request_get_target (const PhHttpRequest *req);
guint ph_http_request_get_minor (const PhHttpRequest *req); /* HTTP/1.<minor> */
const PhHttpHeaders *ph_http_request_get_headers (const PhHttpRequest *req);
PhHttpTargetKind ph_http_request_get_kind (const PhHttpRequest *req);
const char *ph_http_request_get_host (const PhHttpRequest *req); /* without brackets */
guint16 ph_http_request_get_port (const PhHttpRequest *req);
/* host:port as it goes on the wire ([v6]:port). */
const char *ph_http_request_get_authority (const PhHttpRequest *req);
/* Absolute-form: path and query, "/" at least. */
const char *ph_http_request_get_path (const PhHttpRequest *req);
gint64 ph_http_request_get_content_length (const PhHttpRequest *req); /* -1: none */
gboolean ph_http_request_get_chunked (const PhHttpRequest *req);
gboolean ph_http_request_get_keep_alive (const PhHttpRequest *req);

guint ph_http_response_get_minor (const PhHttpResponse *resp);
guint ph_http_response_get_status (const PhHttpResponse *resp);
const char *ph_http_response_get_reason (const PhHttpResponse *resp);
const PhHttpHeaders *ph_http_response_get_headers (const PhHttpResponse *resp);
/* As received, codings joined; NULL if none. */
const char *ph_http_response_get_transfer_encoding (const PhHttpResponse *resp);
gint64 ph_http_response_get_content_length (const PhHttpResponse *resp);
gboolean ph_http_response_get_chunked (const PhHttpResponse *resp);
/* Per version and Connection; a body that ends at close also ends the
 * connection, which only the caller can tell (HEAD, 204, 304). */
gboolean ph_http_response_get_keep_alive (const PhHttpResponse *resp);

guint ph_http_headers_get_len (const PhHttpHeaders *headers);
/* The @i-th field: no copies, for loops over every field. */
void ph_http_headers_get_nth (const PhHttpHeaders *headers, guint i, const char **name,
                              const char **value);
/* The first field named @name (case-insensitively), or NULL. */
const char *ph_http_header_get (const PhHttpHeaders *headers, const char *name);
guint ph_http_header_count (const PhHttpHeaders *headers, const char *name);
/* Whether @name is hop-by-hop for this message: the fixed list of RFC 9110
 * §7.6.1 and the reserved "Close" (§18.4), or named in @headers' Connection
 * field. */
gboolean ph_http_header_is_hop_by_hop (const PhHttpHeaders *headers, const char *name);

/* Serialises a request head for the upstream proxy: absolute-form target,
 * hop-by-hop fields dropped, @extra_fields (complete "Name: value\r\n"
 * lines of the forwarder's own, e.g. the proxy's credentials; may be NULL)
 * added after the message's fields. */
GString *ph_http_request_build_forward (const PhHttpRequest *req, const char *extra_fields);
/* The same request in origin form ("GET /path HTTP/1.1" with Host), for an origin reached
 * directly: what build_forward drops (hop-by-hop and proxy fields) is dropped too. */
GString *ph_http_request_build_direct (const PhHttpRequest *req);
/* Serialises a response head for the client, hop-by-hop fields dropped. */
GString *ph_http_response_build_forward (const PhHttpResponse *resp, gboolean keep_alive);
/* A complete refusal: status line, text body of one line, Connection: close. */
GString *ph_http_build_error (guint status, const char *kind, const char *message);
const char *ph_http_reason_phrase (guint status);

/* Finds where a message body ends, so it can be relayed verbatim. */
typedef enum
{
  PH_BODY_NONE,
  PH_BODY_LENGTH,
  PH_BODY_CHUNKED,
  PH_BODY_UNTIL_CLOSE,
} PhBodyMode;

/* One owner (a pipe, a test): new and free; init starts it afresh. */
typedef struct _PhBodyScanner PhBodyScanner;

PhBodyScanner *ph_body_scanner_new (PhBodyMode mode, guint64 length);
void ph_body_scanner_free (PhBodyScanner *s);

void ph_body_scanner_init (PhBodyScanner *s, PhBodyMode mode, guint64 length);
/* Consumes up to @len bytes of body; returns how many belong to the body
 * (the rest is the next message), or -1 on malformed chunked framing. */
gssize ph_body_scanner_feed (PhBodyScanner *s, const guint8 *data, gsize len);
/* The same, and appends the body's payload to @payload: the bytes themselves for LENGTH and
 * UNTIL_CLOSE, the chunks' data without their framing (sizes, extensions, trailers) for
 * CHUNKED. On -1 @payload may have grown by data before the error. */
gssize ph_body_scanner_decode (PhBodyScanner *s, const guint8 *data, gsize len,
                               GByteArray *payload);
/* The scanner's fields are its own; its users (the relay, the tests) ask. */
gboolean ph_body_scanner_is_done (const PhBodyScanner *s);
PhBodyMode ph_body_scanner_get_mode (const PhBodyScanner *s);
/* LENGTH: body bytes still to come; CHUNKED: bytes of the current chunk's data. */
guint64 ph_body_scanner_get_remaining (const PhBodyScanner *s);

G_DEFINE_AUTOPTR_CLEANUP_FUNC (PhHttpRequest, ph_http_request_free)
G_DEFINE_AUTOPTR_CLEANUP_FUNC (PhHttpResponse, ph_http_response_free)
G_DEFINE_AUTOPTR_CLEANUP_FUNC (PhBodyScanner, ph_body_scanner_free)

G_END_DECLS

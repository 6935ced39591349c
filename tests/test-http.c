/* SPDX-License-Identifier: GPL-2.0-or-later */
/* test-http.c: unit tests for agent/core/ph-http.h, the strict request/response
 * head parser, the forwarded-head rewriting and the body framer. */
#include "ph-http.h"

#include <string.h>

/* A literal with its length, so heads may hold NUL bytes. */
#define BYTES(s) s, sizeof (s) - 1

/* Parses from an exactly-sized heap copy, so that a read past @len is
 * caught by ASan or valgrind instead of landing in the next literal. */
static PhHttpParseResult
parse_request (const char *head, gsize len, const PhHttpLimits *limits, PhHttpRequest **req,
               gsize *consumed, guint *status, char **reason)
{
  g_autofree char *copy = g_memdup2 (head, len);

  *req = NULL;
  *consumed = 0;
  *status = 0;
  *reason = NULL;
  return ph_http_request_parse (copy, len, limits, req, consumed, status, reason);
}

static PhHttpParseResult
parse_response (const char *head, gsize len, PhHttpResponse **resp, gsize *consumed, char **reason)
{
  g_autofree char *copy = g_memdup2 (head, len);

  *resp = NULL;
  *consumed = 0;
  *reason = NULL;
  return ph_http_response_parse (copy, len, NULL, resp, consumed, reason);
}

static const char *
header_name (const PhHttpHeaders *headers, guint i)
{
  const char *name = NULL;

  ph_http_headers_get_nth (headers, i, &name, NULL);
  return name;
}

static const char *
header_value (const PhHttpHeaders *headers, guint i)
{
  const char *value = NULL;

  ph_http_headers_get_nth (headers, i, NULL, &value);
  return value;
}

/* Parses a head that must be valid, with no bytes after it. */
static PhHttpRequest *
parse_request_ok (const char *head)
{
  PhHttpRequest *req = NULL;
  g_autofree char *reason = NULL;
  gsize consumed = 0;
  guint status = 0;
  PhHttpParseResult r
      = parse_request (head, strlen (head), NULL, &req, &consumed, &status, &reason);

  if (r != PH_HTTP_PARSE_DONE)
    g_test_message ("refused with %u: %s", status, reason);
  /* Fatal even with non-fatal assertions: callers use the result. */
  g_assert (r == PH_HTTP_PARSE_DONE);
  g_assert_cmpuint (consumed, ==, strlen (head));
  return req;
}

static PhHttpResponse *
parse_response_ok (const char *head)
{
  PhHttpResponse *resp = NULL;
  g_autofree char *reason = NULL;
  gsize consumed = 0;
  PhHttpParseResult r = parse_response (head, strlen (head), &resp, &consumed, &reason);

  if (r != PH_HTTP_PARSE_DONE)
    g_test_message ("refused: %s", reason);
  g_assert (r == PH_HTTP_PARSE_DONE);
  g_assert_cmpuint (consumed, ==, strlen (head));
  return resp;
}

/* ---- valid request heads ---- */

typedef struct
{
  const char *name;
  const char *head;
  const char *method;
  PhHttpTargetKind kind;
  const char *host; /* NULL: none (origin-form) */
  guint port;
  const char *authority;
  const char *path;
  guint minor;
  gint64 content_length;
  gboolean chunked;
  gboolean keep_alive;
} ValidRequest;

static const ValidRequest valid_requests[] = {
  { "connect-name", "CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n\r\n", "CONNECT",
    PH_HTTP_CONNECT, "example.com", 443, "example.com:443", NULL, 1, -1, FALSE, TRUE },
  { "connect-ipv4", "CONNECT 1.2.3.4:443 HTTP/1.1\r\n\r\n", "CONNECT", PH_HTTP_CONNECT, "1.2.3.4",
    443, "1.2.3.4:443", NULL, 1, -1, FALSE, TRUE },
  { "connect-ipv6", "CONNECT [::1]:443 HTTP/1.1\r\nHost: [::1]:443\r\n\r\n", "CONNECT",
    PH_HTTP_CONNECT, "::1", 443, "[::1]:443", NULL, 1, -1, FALSE, TRUE },
  { "connect-http10", "CONNECT example.com:8443 HTTP/1.0\r\n\r\n", "CONNECT", PH_HTTP_CONNECT,
    "example.com", 8443, "example.com:8443", NULL, 0, -1, FALSE, FALSE },
  { "absolute-path-query",
    "GET http://example.com/path?q=1&r=2 HTTP/1.1\r\nHost: example.com\r\n\r\n", "GET",
    PH_HTTP_ABSOLUTE, "example.com", 80, "example.com", "/path?q=1&r=2", 1, -1, FALSE, TRUE },
  { "absolute-port-no-path",
    "GET http://example.com:8080 HTTP/1.1\r\nHost: example.com:8080\r\n\r\n", "GET",
    PH_HTTP_ABSOLUTE, "example.com", 8080, "example.com:8080", "/", 1, -1, FALSE, TRUE },
  { "absolute-query-no-path", "GET http://example.com?q HTTP/1.1\r\nHost: example.com\r\n\r\n",
    "GET", PH_HTTP_ABSOLUTE, "example.com", 80, "example.com", "/?q", 1, -1, FALSE, TRUE },
  { "absolute-ipv6", "GET http://[2001:db8::1]:8080/x HTTP/1.1\r\nHost: [2001:db8::1]:8080\r\n\r\n",
    "GET", PH_HTTP_ABSOLUTE, "2001:db8::1", 8080, "[2001:db8::1]:8080", "/x", 1, -1, FALSE, TRUE },
  { "absolute-scheme-case", "GET HTTP://example.com/ HTTP/1.1\r\nHost: example.com\r\n\r\n", "GET",
    PH_HTTP_ABSOLUTE, "example.com", 80, "example.com", "/", 1, -1, FALSE, TRUE },
  { "keep-alive-11-default", "GET http://h/ HTTP/1.1\r\nHost: h\r\n\r\n", "GET", PH_HTTP_ABSOLUTE,
    "h", 80, "h", "/", 1, -1, FALSE, TRUE },
  { "keep-alive-11-close", "GET http://h/ HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n", "GET",
    PH_HTTP_ABSOLUTE, "h", 80, "h", "/", 1, -1, FALSE, FALSE },
  { "keep-alive-11-close-in-list",
    "GET http://h/ HTTP/1.1\r\nHost: h\r\nConnection: X-Foo, Close\r\n\r\n", "GET",
    PH_HTTP_ABSOLUTE, "h", 80, "h", "/", 1, -1, FALSE, FALSE },
  { "keep-alive-10-default", "GET http://h/ HTTP/1.0\r\n\r\n", "GET", PH_HTTP_ABSOLUTE, "h", 80,
    "h", "/", 0, -1, FALSE, FALSE },
  { "keep-alive-10-keep-alive", "GET http://h/ HTTP/1.0\r\nConnection: keep-alive\r\n\r\n", "GET",
    PH_HTTP_ABSOLUTE, "h", 80, "h", "/", 0, -1, FALSE, TRUE },
  { "content-length", "POST http://h/f HTTP/1.1\r\nHost: h\r\nContent-Length: 42\r\n\r\n", "POST",
    PH_HTTP_ABSOLUTE, "h", 80, "h", "/f", 1, 42, FALSE, TRUE },
  { "content-length-zero", "POST http://h/f HTTP/1.1\r\nHost: h\r\nContent-Length: 0\r\n\r\n",
    "POST", PH_HTTP_ABSOLUTE, "h", 80, "h", "/f", 1, 0, FALSE, TRUE },
  { "content-length-duplicate",
    "POST http://h/f HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\nContent-Length: 5\r\n\r\n", "POST",
    PH_HTTP_ABSOLUTE, "h", 80, "h", "/f", 1, 5, FALSE, TRUE },
  { "content-length-duplicate-list",
    "POST http://h/f HTTP/1.1\r\nHost: h\r\nContent-Length: 5, 5\r\n\r\n", "POST", PH_HTTP_ABSOLUTE,
    "h", 80, "h", "/f", 1, 5, FALSE, TRUE },
  { "chunked", "POST http://h/f HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n", "POST",
    PH_HTTP_ABSOLUTE, "h", 80, "h", "/f", 1, -1, TRUE, TRUE },
  { "chunked-case", "POST http://h/f HTTP/1.1\r\nHost: h\r\ntransfer-encoding:  Chunked \r\n\r\n",
    "POST", PH_HTTP_ABSOLUTE, "h", 80, "h", "/f", 1, -1, TRUE, TRUE },
  { "origin-form", "GET /path?x HTTP/1.1\r\nHost: h\r\n\r\n", "GET", PH_HTTP_ORIGIN, NULL, 0, NULL,
    "/path?x", 1, -1, FALSE, TRUE },
  { "leading-empty-line", "\r\nGET http://h/ HTTP/1.1\r\nHost: h\r\n\r\n", "GET", PH_HTTP_ABSOLUTE,
    "h", 80, "h", "/", 1, -1, FALSE, TRUE },
  { "obs-text-in-value", "GET http://h/ HTTP/1.1\r\nHost: h\r\nX-Name: caf\xc3\xa9\r\n\r\n", "GET",
    PH_HTTP_ABSOLUTE, "h", 80, "h", "/", 1, -1, FALSE, TRUE },
};

static void
test_request_valid (gconstpointer data)
{
  const ValidRequest *c = data;
  g_autoptr (PhHttpRequest) req = parse_request_ok (c->head);

  g_assert_cmpstr (ph_http_request_get_method (req), ==, c->method);
  g_assert_cmpint (ph_http_request_get_kind (req), ==, c->kind);
  g_assert_cmpstr (ph_http_request_get_host (req), ==, c->host);
  if (c->host != NULL)
    g_assert_cmpuint (ph_http_request_get_port (req), ==, c->port);
  g_assert_cmpstr (ph_http_request_get_authority (req), ==, c->authority);
  g_assert_cmpstr (ph_http_request_get_path (req), ==, c->path);
  g_assert_cmpuint (ph_http_request_get_minor (req), ==, c->minor);
  g_assert_cmpint (ph_http_request_get_content_length (req), ==, c->content_length);
  g_assert_cmpint (ph_http_request_get_chunked (req), ==, c->chunked);
  g_assert_cmpint (ph_http_request_get_keep_alive (req), ==, c->keep_alive);
}

/* Every proper prefix of a valid head asks for more; with bytes after the
 * head (a body, a pipelined request) only the head is consumed. */
static void
test_request_incomplete (gconstpointer data)
{
  const ValidRequest *c = data;
  gsize len = strlen (c->head);
  g_autofree char *with_body = g_strconcat (c->head, "POST http://x/ HTTP/1.1\r\n", NULL);
  g_autoptr (PhHttpRequest) whole = NULL;
  g_autofree char *reason = NULL;
  gsize consumed = 0;
  guint status = 0;

  for (gsize i = 0; i < len; i++)
    {
      g_autoptr (PhHttpRequest) req = NULL;
      g_autofree char *why = NULL;
      PhHttpParseResult r = parse_request (c->head, i, NULL, &req, &consumed, &status, &why);

      if (r != PH_HTTP_PARSE_INCOMPLETE)
        g_test_message ("prefix of %zu bytes gave %d (%u %s)", i, r, status, why);
      g_assert_cmpint (r, ==, PH_HTTP_PARSE_INCOMPLETE);
      g_assert_null (req);
      g_assert_null (why);
    }
  g_assert_cmpint (
      parse_request (with_body, strlen (with_body), NULL, &whole, &consumed, &status, &reason), ==,
      PH_HTTP_PARSE_DONE);
  g_assert_cmpuint (consumed, ==, len);
}

static void
test_request_headers (void)
{
  g_autoptr (PhHttpRequest) req
      = parse_request_ok ("GET http://h/ HTTP/1.1\r\nHost: h\r\nX-Empty:\r\nX-Pad: \t a  b \t\r\n"
                          "x-pad: second\r\n\r\n");

  g_assert (ph_http_headers_get_len (ph_http_request_get_headers (req)) == 4);
  g_assert_cmpstr (header_name (ph_http_request_get_headers (req), 2), ==, "X-Pad");
  /* Surrounding whitespace goes, inner whitespace stays. */
  g_assert_cmpstr (ph_http_header_get (ph_http_request_get_headers (req), "x-pad"), ==, "a  b");
  g_assert_cmpstr (ph_http_header_get (ph_http_request_get_headers (req), "X-EMPTY"), ==, "");
  g_assert_cmpstr (header_value (ph_http_request_get_headers (req), 3), ==, "second");
  g_assert_null (ph_http_header_get (ph_http_request_get_headers (req), "X-Absent"));
}

/* ---- malformed request heads ---- */

typedef struct
{
  const char *name;
  const char *head;
  gsize len;
  guint status;
} BadRequest;

static const BadRequest bad_requests[] = {
  { "cl-and-te",
    BYTES ("POST http://h/ HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\nTransfer-Encoding: "
           "chunked\r\n\r\n"),
    400 },
  { "te-and-cl",
    BYTES ("POST http://h/ HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\nContent-Length: "
           "5\r\n\r\n"),
    400 },
  { "cl-conflicting",
    BYTES ("POST http://h/ HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\n"),
    400 },
  { "cl-conflicting-list",
    BYTES ("POST http://h/ HTTP/1.1\r\nHost: h\r\nContent-Length: 5, 6\r\n\r\n"), 400 },
  { "cl-empty-item", BYTES ("POST http://h/ HTTP/1.1\r\nHost: h\r\nContent-Length: 5,\r\n\r\n"),
    400 },
  { "cl-not-number", BYTES ("POST http://h/ HTTP/1.1\r\nHost: h\r\nContent-Length: abc\r\n\r\n"),
    400 },
  { "cl-negative", BYTES ("POST http://h/ HTTP/1.1\r\nHost: h\r\nContent-Length: -1\r\n\r\n"),
    400 },
  { "cl-plus", BYTES ("POST http://h/ HTTP/1.1\r\nHost: h\r\nContent-Length: +5\r\n\r\n"), 400 },
  { "cl-hex", BYTES ("POST http://h/ HTTP/1.1\r\nHost: h\r\nContent-Length: 0x5\r\n\r\n"), 400 },
  { "cl-overflow",
    BYTES ("POST http://h/ HTTP/1.1\r\nHost: h\r\nContent-Length: 99999999999999999999\r\n\r\n"),
    400 },
  { "cl-empty", BYTES ("POST http://h/ HTTP/1.1\r\nHost: h\r\nContent-Length:\r\n\r\n"), 400 },
  { "obs-fold-space", BYTES ("GET http://h/ HTTP/1.1\r\nHost: h\r\nX-A: a\r\n b\r\n\r\n"), 400 },
  { "obs-fold-tab", BYTES ("GET http://h/ HTTP/1.1\r\nHost: h\r\nX-A: a\r\n\tb\r\n\r\n"), 400 },
  { "obs-fold-first-line", BYTES ("GET http://h/ HTTP/1.1\r\n Host: h\r\n\r\n"), 400 },
  { "space-before-colon", BYTES ("GET http://h/ HTTP/1.1\r\nHost : h\r\n\r\n"), 400 },
  { "tab-before-colon", BYTES ("GET http://h/ HTTP/1.1\r\nHost\t: h\r\n\r\n"), 400 },
  { "name-control-byte", BYTES ("GET http://h/ HTTP/1.1\r\nHost: h\r\nFo\x01o: x\r\n\r\n"), 400 },
  { "name-space", BYTES ("GET http://h/ HTTP/1.1\r\nHost: h\r\nFo o: x\r\n\r\n"), 400 },
  { "name-nul", BYTES ("GET http://h/ HTTP/1.1\r\nHost: h\r\nFo\0o: x\r\n\r\n"), 400 },
  { "name-separator", BYTES ("GET http://h/ HTTP/1.1\r\nHost: h\r\nFo(o): x\r\n\r\n"), 400 },
  { "name-empty", BYTES ("GET http://h/ HTTP/1.1\r\nHost: h\r\n: x\r\n\r\n"), 400 },
  { "no-colon", BYTES ("GET http://h/ HTTP/1.1\r\nHost: h\r\nFoo\r\n\r\n"), 400 },
  { "value-control-byte", BYTES ("GET http://h/ HTTP/1.1\r\nHost: h\r\nX-A: a\x01z\r\n\r\n"), 400 },
  { "value-del", BYTES ("GET http://h/ HTTP/1.1\r\nHost: h\r\nX-A: a\x7fz\r\n\r\n"), 400 },
  { "value-nul", BYTES ("GET http://h/ HTTP/1.1\r\nHost: h\r\nX-A: a\0z\r\n\r\n"), 400 },
  { "value-escape", BYTES ("GET http://h/ HTTP/1.1\r\nHost: h\r\nX-A: \x1b[31m\r\n\r\n"), 400 },
  { "bare-lf-request-line", BYTES ("GET http://h/ HTTP/1.1\nHost: h\r\n\r\n"), 400 },
  { "bare-lf-header", BYTES ("GET http://h/ HTTP/1.1\r\nHost: h\nX-A: b\r\n\r\n"), 400 },
  { "bare-lf-end", BYTES ("GET http://h/ HTTP/1.1\r\nHost: h\r\n\n"), 400 },
  { "bare-cr-header", BYTES ("GET http://h/ HTTP/1.1\r\nHost: h\rX-A: b\r\n\r\n"), 400 },
  { "bare-cr-unterminated", BYTES ("GET http://h/ HTTP/1.1\r\nHost: h\rX"), 400 },
  { "te-gzip", BYTES ("POST http://h/ HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: gzip\r\n\r\n"),
    501 },
  { "te-gzip-chunked",
    BYTES ("POST http://h/ HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: gzip, chunked\r\n\r\n"), 501 },
  { "te-identity",
    BYTES ("POST http://h/ HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: identity\r\n\r\n"), 501 },
  { "te-chunked-not-last",
    BYTES ("POST http://h/ HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked, gzip\r\n\r\n"), 400 },
  { "te-chunked-twice",
    BYTES ("POST http://h/ HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n"
           "Transfer-Encoding: chunked\r\n\r\n"),
    400 },
  { "te-empty", BYTES ("POST http://h/ HTTP/1.1\r\nHost: h\r\nTransfer-Encoding:\r\n\r\n"), 400 },
  { "te-http10", BYTES ("POST http://h/ HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n"), 400 },
  { "connect-no-port", BYTES ("CONNECT example.com HTTP/1.1\r\nHost: example.com\r\n\r\n"), 400 },
  { "connect-empty-port", BYTES ("CONNECT example.com: HTTP/1.1\r\n\r\n"), 400 },
  { "connect-port-zero", BYTES ("CONNECT example.com:0 HTTP/1.1\r\n\r\n"), 400 },
  { "connect-port-too-big", BYTES ("CONNECT example.com:65536 HTTP/1.1\r\n\r\n"), 400 },
  { "connect-port-sign", BYTES ("CONNECT example.com:+443 HTTP/1.1\r\n\r\n"), 400 },
  { "connect-ipv6-no-port", BYTES ("CONNECT [::1] HTTP/1.1\r\n\r\n"), 400 },
  { "connect-ipv6-unbracketed", BYTES ("CONNECT ::1:443 HTTP/1.1\r\n\r\n"), 400 },
  { "connect-ipv4-in-brackets", BYTES ("CONNECT [1.2.3.4]:443 HTTP/1.1\r\n\r\n"), 400 },
  { "connect-url", BYTES ("CONNECT http://example.com:443/ HTTP/1.1\r\n\r\n"), 400 },
  { "connect-with-body", BYTES ("CONNECT example.com:443 HTTP/1.1\r\nContent-Length: 5\r\n\r\n"),
    400 },
  { "connect-chunked",
    BYTES ("CONNECT example.com:443 HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n"), 400 },
  { "userinfo", BYTES ("GET http://user:pw@example.com/ HTTP/1.1\r\nHost: example.com\r\n\r\n"),
    400 },
  { "userinfo-no-password",
    BYTES ("GET http://user@example.com/ HTTP/1.1\r\nHost: example.com\r\n\r\n"), 400 },
  { "https-absolute", BYTES ("GET https://example.com/ HTTP/1.1\r\nHost: example.com\r\n\r\n"),
    400 },
  { "ftp-absolute", BYTES ("GET ftp://example.com/ HTTP/1.1\r\nHost: example.com\r\n\r\n"), 400 },
  { "fragment", BYTES ("GET http://example.com/#top HTTP/1.1\r\nHost: example.com\r\n\r\n"), 400 },
  { "bad-url-host", BYTES ("GET http://exa$mple.com/ HTTP/1.1\r\nHost: example.com\r\n\r\n"), 400 },
  { "empty-url-host", BYTES ("GET http:///path HTTP/1.1\r\nHost: example.com\r\n\r\n"), 400 },
  { "url-empty-port", BYTES ("GET http://example.com:/ HTTP/1.1\r\nHost: example.com\r\n\r\n"),
    400 },
  { "not-a-url", BYTES ("GET example.com/x HTTP/1.1\r\nHost: example.com\r\n\r\n"), 400 },
  { "http-2-0", BYTES ("GET http://h/ HTTP/2.0\r\nHost: h\r\n\r\n"), 505 },
  { "http-1-2", BYTES ("GET http://h/ HTTP/1.2\r\nHost: h\r\n\r\n"), 505 },
  { "http-0-9", BYTES ("GET http://h/ HTTP/0.9\r\nHost: h\r\n\r\n"), 505 },
  { "version-lowercase", BYTES ("GET http://h/ http/1.1\r\nHost: h\r\n\r\n"), 400 },
  { "version-two-digits", BYTES ("GET http://h/ HTTP/1.10\r\nHost: h\r\n\r\n"), 400 },
  { "version-missing", BYTES ("GET http://h/\r\nHost: h\r\n\r\n"), 400 },
  { "double-space", BYTES ("GET  http://h/ HTTP/1.1\r\nHost: h\r\n\r\n"), 400 },
  { "trailing-space", BYTES ("GET http://h/ HTTP/1.1 \r\nHost: h\r\n\r\n"), 400 },
  { "method-separator", BYTES ("GE(T http://h/ HTTP/1.1\r\nHost: h\r\n\r\n"), 400 },
  { "method-too-long",
    BYTES ("AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA http://h/ HTTP/1.1\r\nHost: h\r\n\r\n"), 400 },
  { "target-control-byte", BYTES ("GET http://h/\x01 HTTP/1.1\r\nHost: h\r\n\r\n"), 400 },
  { "target-non-ascii", BYTES ("GET http://h/\xc3\xa9 HTTP/1.1\r\nHost: h\r\n\r\n"), 400 },
  { "two-host", BYTES ("GET http://h/ HTTP/1.1\r\nHost: h\r\nHost: evil\r\n\r\n"), 400 },
  { "two-host-case", BYTES ("GET http://h/ HTTP/1.1\r\nHost: h\r\nhOST: h\r\n\r\n"), 400 },
  { "two-host-connect", BYTES ("CONNECT h:443 HTTP/1.1\r\nHost: h:443\r\nHost: h:443\r\n\r\n"),
    400 },
  { "no-host-11-absolute", BYTES ("GET http://h/ HTTP/1.1\r\nAccept: */*\r\n\r\n"), 400 },
  { "only-empty-lines", BYTES ("\r\n\r\n\r\n\r\n\r\n\r\n"), 400 },
};

static void
test_request_malformed (gconstpointer data)
{
  const BadRequest *c = data;
  g_autoptr (PhHttpRequest) req = NULL;
  g_autofree char *reason = NULL;
  gsize consumed = 0;
  guint status = 0;
  PhHttpParseResult r = parse_request (c->head, c->len, NULL, &req, &consumed, &status, &reason);

  if (r == PH_HTTP_PARSE_DONE)
    g_test_message ("accepted: method %s target %s", ph_http_request_get_method (req),
                    ph_http_request_get_target (req));
  g_assert_cmpint (r, ==, PH_HTTP_PARSE_ERROR);
  if (r != PH_HTTP_PARSE_ERROR)
    return;
  g_assert_null (req);
  g_assert_cmpuint (status, ==, c->status);
  /* The reason ends up in a one-line body: it must exist and be one line. */
  g_assert (reason != NULL);
  g_assert_cmpstr (reason, !=, "");
  g_assert_null (strpbrk (reason, "\r\n"));
}

/* ---- limits ---- */

static void
test_request_target_too_long (void)
{
  const PhHttpLimits limits = { .max_head = 64 * 1024, .max_target = 64, .max_headers = 100 };
  /* "http://h/" is 9 bytes: pad the path to exactly max_target, then one more. */
  g_autofree char *path_ok = g_strnfill (64 - 9, 'a');
  g_autofree char *at_limit
      = g_strdup_printf ("GET http://h/%s HTTP/1.1\r\nHost: h\r\n\r\n", path_ok);
  g_autofree char *over = g_strdup_printf ("GET http://h/%sa HTTP/1.1\r\nHost: h\r\n\r\n", path_ok);
  g_autofree char *long_path = g_strnfill (ph_http_default_limits.max_target, 'a');
  g_autofree char *over_default
      = g_strdup_printf ("GET http://h/%s HTTP/1.1\r\nHost: h\r\n\r\n", long_path);
  g_autofree char *unterminated = g_strdup_printf ("GET http://h/%s%s", path_ok, path_ok);
  g_autoptr (PhHttpRequest) req = NULL;
  g_autofree char *reason = NULL;
  gsize consumed = 0;
  guint status = 0;

  g_assert_cmpint (
      parse_request (at_limit, strlen (at_limit), &limits, &req, &consumed, &status, &reason), ==,
      PH_HTTP_PARSE_DONE);
  g_clear_pointer (&req, ph_http_request_free);

  g_assert_cmpint (parse_request (over, strlen (over), &limits, &req, &consumed, &status, &reason),
                   ==, PH_HTTP_PARSE_ERROR);
  g_assert_cmpuint (status, ==, 414);
  g_clear_pointer (&reason, g_free);

  g_assert_cmpint (
      parse_request (over_default, strlen (over_default), NULL, &req, &consumed, &status, &reason),
      ==, PH_HTTP_PARSE_ERROR);
  g_assert_cmpuint (status, ==, 414);
  g_clear_pointer (&reason, g_free);

  /* A request line that never ends is refused once it cannot fit, not buffered forever. */
  {
    g_autofree char *endless = g_strnfill (4 * 1024, 'a');
    g_autofree char *head = g_strconcat ("GET http://h/", endless, NULL);

    g_assert_cmpint (
        parse_request (head, strlen (head), &limits, &req, &consumed, &status, &reason), ==,
        PH_HTTP_PARSE_ERROR);
    g_assert_cmpuint (status, ==, 414);
    g_clear_pointer (&reason, g_free);
  }
  g_assert_cmpint (parse_request (unterminated, strlen (unterminated), &limits, &req, &consumed,
                                  &status, &reason),
                   ==, PH_HTTP_PARSE_INCOMPLETE);
}

static void
test_request_head_too_large (void)
{
  const PhHttpLimits limits = { .max_head = 128, .max_target = 64, .max_headers = 100 };
  const char *start = "GET http://h/ HTTP/1.1\r\nHost: h\r\nX-Pad: ";
  gsize fixed = strlen (start) + strlen ("\r\n\r\n");
  g_autofree char *pad = g_strnfill (limits.max_head - fixed, 'p');
  g_autofree char *exact = g_strconcat (start, pad, "\r\n\r\n", NULL);
  g_autofree char *over = g_strconcat (start, pad, "p\r\n\r\n", NULL);
  g_autofree char *endless = g_strconcat (start, pad, "ppppp", NULL);
  g_autoptr (PhHttpRequest) req = NULL;
  g_autofree char *reason = NULL;
  gsize consumed = 0;
  guint status = 0;

  g_assert_cmpuint (strlen (exact), ==, limits.max_head);
  g_assert_cmpint (
      parse_request (exact, strlen (exact), &limits, &req, &consumed, &status, &reason), ==,
      PH_HTTP_PARSE_DONE);
  g_assert_cmpuint (consumed, ==, limits.max_head);
  g_clear_pointer (&req, ph_http_request_free);

  g_assert_cmpint (parse_request (over, strlen (over), &limits, &req, &consumed, &status, &reason),
                   ==, PH_HTTP_PARSE_ERROR);
  g_assert_cmpuint (status, ==, 431);
  g_clear_pointer (&reason, g_free);

  /* Incomplete but already over the limit: refuse now rather than wait. */
  g_assert_cmpint (
      parse_request (endless, strlen (endless), &limits, &req, &consumed, &status, &reason), ==,
      PH_HTTP_PARSE_ERROR);
  g_assert_cmpuint (status, ==, 431);
  g_clear_pointer (&reason, g_free);

  /* Many small fields add up just the same. */
  {
    g_autoptr (GString) many = g_string_new ("GET http://h/ HTTP/1.1\r\nHost: h\r\n");

    while (many->len <= limits.max_head)
      g_string_append (many, "A: b\r\n");
    g_string_append (many, "\r\n");
    g_assert_cmpint (
        parse_request (many->str, many->len, &limits, &req, &consumed, &status, &reason), ==,
        PH_HTTP_PARSE_ERROR);
    g_assert_cmpuint (status, ==, 431);
  }
}

static void
test_request_too_many_headers (void)
{
  const PhHttpLimits limits = { .max_head = 64 * 1024, .max_target = 8 * 1024, .max_headers = 4 };
  const char *four = "GET http://h/ HTTP/1.1\r\nHost: h\r\nA: 1\r\nB: 2\r\nC: 3\r\n\r\n";
  const char *five = "GET http://h/ HTTP/1.1\r\nHost: h\r\nA: 1\r\nB: 2\r\nC: 3\r\nD: 4\r\n\r\n";
  g_autoptr (PhHttpRequest) req = NULL;
  g_autofree char *reason = NULL;
  gsize consumed = 0;
  guint status = 0;
  g_autoptr (GString) defaults = g_string_new ("GET http://h/ HTTP/1.1\r\nHost: h\r\n");

  g_assert (parse_request (four, strlen (four), &limits, &req, &consumed, &status, &reason)
            == PH_HTTP_PARSE_DONE);
  g_assert_cmpuint (ph_http_headers_get_len (ph_http_request_get_headers (req)), ==, 4);
  g_clear_pointer (&req, ph_http_request_free);

  g_assert_cmpint (parse_request (five, strlen (five), &limits, &req, &consumed, &status, &reason),
                   ==, PH_HTTP_PARSE_ERROR);
  g_assert_cmpuint (status, ==, 431);
  g_clear_pointer (&reason, g_free);

  for (guint i = 0; i < ph_http_default_limits.max_headers; i++)
    g_string_append_printf (defaults, "X-%u: v\r\n", i);
  g_string_append (defaults, "\r\n");
  g_assert_cmpint (
      parse_request (defaults->str, defaults->len, NULL, &req, &consumed, &status, &reason), ==,
      PH_HTTP_PARSE_ERROR);
  g_assert_cmpuint (status, ==, 431);
}

/* ---- hop-by-hop and the forwarded request head ---- */

static void
test_hop_by_hop (void)
{
  g_autoptr (PhHttpRequest) req = parse_request_ok (
      "GET http://h/ HTTP/1.1\r\nHost: h\r\nConnection: X-Private , x-other\r\n\r\n");
  const char *fixed[] = {
    "Connection", "Keep-Alive",          "Proxy-Connection",   "TE",         "Transfer-Encoding",
    "Upgrade",    "Proxy-Authorization", "Proxy-Authenticate", "keep-alive", "PROXY-AUTHORIZATION",
    "Close",
  };

  for (gsize i = 0; i < G_N_ELEMENTS (fixed); i++)
    g_assert_true (ph_http_header_is_hop_by_hop (ph_http_request_get_headers (req), fixed[i]));
  g_assert_true (ph_http_header_is_hop_by_hop (ph_http_request_get_headers (req), "x-private"));
  g_assert_true (ph_http_header_is_hop_by_hop (ph_http_request_get_headers (req), "X-Other"));
  g_assert_false (ph_http_header_is_hop_by_hop (ph_http_request_get_headers (req), "X-Priv"));
  g_assert_false (ph_http_header_is_hop_by_hop (ph_http_request_get_headers (req), "Host"));
  g_assert_false (ph_http_header_is_hop_by_hop (ph_http_request_get_headers (req), "Content-Type"));
  g_assert_false (ph_http_header_is_hop_by_hop (ph_http_request_get_headers (req), "Trailer"));
}

/* Parses a forwarded head back; it must be one valid request on its own. */
static PhHttpRequest *
reparse_forward (const GString *fwd)
{
  PhHttpRequest *req = NULL;
  g_autofree char *reason = NULL;
  gsize consumed = 0;
  guint status = 0;
  PhHttpParseResult r = parse_request (fwd->str, fwd->len, NULL, &req, &consumed, &status, &reason);

  g_test_message ("forwarded head:\n%s", fwd->str);
  if (r != PH_HTTP_PARSE_DONE)
    g_test_message ("forwarded head refused with %u: %s", status, reason);
  g_assert (r == PH_HTTP_PARSE_DONE);
  g_assert_cmpuint (consumed, ==, fwd->len);
  return req;
}

static void
test_forward_hop_by_hop (void)
{
  g_autoptr (PhHttpRequest) req
      = parse_request_ok ("GET http://example.com:8080/p?q=1 HTTP/1.1\r\n"
                          "Host: wrong.example\r\n"
                          "Connection: keep-alive, X-Private\r\n"
                          "Keep-Alive: timeout=5\r\n"
                          "Proxy-Connection: keep-alive\r\n"
                          "TE: trailers\r\n"
                          "Upgrade: websocket\r\n"
                          "Proxy-Authorization: Basic Y2xpZW50OnNlY3JldA==\r\n"
                          "X-Private: do-not-forward\r\n"
                          "Accept: */*\r\n"
                          "X-Keep: yes\r\n"
                          "\r\n");
  g_autoptr (GString) fwd
      = ph_http_request_build_forward (req, "Proxy-Authorization: Basic dXA6c2VjcmV0\r\n");
  g_autoptr (PhHttpRequest) out = reparse_forward (fwd);
  const char *dropped[]
      = { "Connection", "Keep-Alive", "Proxy-Connection", "TE", "Upgrade", "X-Private" };

  g_assert_true (g_str_has_prefix (fwd->str, "GET http://example.com:8080/p?q=1 HTTP/1.1\r\n"));
  g_assert_true (g_str_has_suffix (fwd->str, "\r\n\r\n"));
  for (gsize i = 0; i < G_N_ELEMENTS (dropped); i++)
    {
      if (ph_http_header_count (ph_http_request_get_headers (out), dropped[i]) != 0)
        g_test_message ("%s was forwarded", dropped[i]);
      g_assert_cmpuint (ph_http_header_count (ph_http_request_get_headers (out), dropped[i]), ==,
                        0);
    }
  g_assert_null (strstr (fwd->str, "do-not-forward"));
  g_assert_null (strstr (fwd->str, "Y2xpZW50OnNlY3JldA"));
  g_assert_cmpuint (ph_http_header_count (ph_http_request_get_headers (out), "Host"), ==, 1);
  g_assert_cmpstr (ph_http_header_get (ph_http_request_get_headers (out), "Host"), ==,
                   "example.com:8080");
  g_assert_cmpuint (ph_http_header_count (ph_http_request_get_headers (out), "Proxy-Authorization"),
                    ==, 1);
  g_assert_cmpstr (ph_http_header_get (ph_http_request_get_headers (out), "Proxy-Authorization"),
                   ==, "Basic dXA6c2VjcmV0");
  g_assert_cmpstr (ph_http_header_get (ph_http_request_get_headers (out), "Accept"), ==, "*/*");
  g_assert_cmpstr (ph_http_header_get (ph_http_request_get_headers (out), "X-Keep"), ==, "yes");
  g_assert_cmpstr (ph_http_request_get_authority (out), ==, "example.com:8080");
  g_assert_cmpstr (ph_http_request_get_path (out), ==, "/p?q=1");
  g_assert_true (ph_http_request_get_keep_alive (out));
}

static void
test_forward_no_proxy_auth (void)
{
  g_autoptr (PhHttpRequest) req
      = parse_request_ok ("GET http://example.com/ HTTP/1.1\r\nHost: example.com\r\n"
                          "proxy-authorization: Basic Y2xpZW50OnNlY3JldA==\r\n\r\n");
  g_autoptr (GString) fwd = ph_http_request_build_forward (req, NULL);
  g_autoptr (PhHttpRequest) out = reparse_forward (fwd);

  g_assert_cmpuint (ph_http_header_count (ph_http_request_get_headers (out), "Proxy-Authorization"),
                    ==, 0);
  g_assert_null (strstr (fwd->str, "Y2xpZW50OnNlY3JldA"));
  /* The origin's Host comes from the URL even without one sent. */
  g_assert_cmpstr (ph_http_header_get (ph_http_request_get_headers (out), "Host"), ==,
                   "example.com");
}

static void
test_forward_http10 (void)
{
  g_autoptr (PhHttpRequest) ka
      = parse_request_ok ("GET http://[::1]:8080/x HTTP/1.0\r\nConnection: keep-alive\r\n\r\n");
  g_autoptr (PhHttpRequest) plain = parse_request_ok ("GET http://h/x HTTP/1.0\r\n\r\n");
  g_autoptr (GString) fwd_ka = ph_http_request_build_forward (ka, NULL);
  g_autoptr (GString) fwd_plain = ph_http_request_build_forward (plain, NULL);
  g_autoptr (PhHttpRequest) out_ka = reparse_forward (fwd_ka);
  g_autoptr (PhHttpRequest) out_plain = reparse_forward (fwd_plain);

  g_assert_true (g_str_has_prefix (fwd_ka->str, "GET http://[::1]:8080/x HTTP/1.0\r\n"));
  g_assert_cmpstr (ph_http_header_get (ph_http_request_get_headers (out_ka), "Host"), ==,
                   "[::1]:8080");
  g_assert_true (ph_http_request_get_keep_alive (out_ka));
  g_assert_cmpuint (ph_http_header_count (ph_http_request_get_headers (out_ka), "Connection"), ==,
                    1);
  g_assert_false (ph_http_request_get_keep_alive (out_plain));
  g_assert_cmpstr (ph_http_header_get (ph_http_request_get_headers (out_plain), "Host"), ==, "h");
}

/* The forwarded head must frame the body exactly as the agent frames it,
 * or the bytes of one request become another on the upstream connection. */
typedef struct
{
  const char *name;
  const char *head;
} FramingCase;

static const FramingCase framing_cases[] = {
  { "content-length", "POST http://h/ HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\n\r\n" },
  { "chunked", "POST http://h/ HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n" },
  { "content-length-named-in-connection", "POST http://h/ HTTP/1.1\r\nHost: h\r\nContent-Length: "
                                          "5\r\nConnection: Content-Length\r\n\r\n" },
  { "chunked-te-named-in-connection",
    "POST http://h/ HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n"
    "Connection: Transfer-Encoding\r\n\r\n" },
};

static void
test_forward_framing (gconstpointer data)
{
  const FramingCase *c = data;
  g_autoptr (PhHttpRequest) req = parse_request_ok (c->head);
  g_autoptr (GString) fwd
      = ph_http_request_build_forward (req, "Proxy-Authorization: Basic eDp5\r\n");
  g_autoptr (PhHttpRequest) out = reparse_forward (fwd);

  g_assert_cmpint (ph_http_request_get_content_length (out), ==,
                   ph_http_request_get_content_length (req));
  g_assert_cmpint (ph_http_request_get_chunked (out), ==, ph_http_request_get_chunked (req));
  g_assert_cmpuint (ph_http_header_count (ph_http_request_get_headers (out), "Transfer-Encoding"),
                    ==, ph_http_request_get_chunked (req) ? 1 : 0);
  g_assert_cmpuint (ph_http_header_count (ph_http_request_get_headers (out), "Proxy-Authorization"),
                    ==, 1);
}

/* RFC 9110 §8.6: a sender MUST NOT forward a Content-Length that is not a
 * single number; a repeated identical value may be accepted only if it is
 * reduced to one. */
static void
test_forward_duplicate_content_length (void)
{
  const char *heads[] = {
    "POST http://h/ HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\nContent-Length: 5\r\n\r\n",
    "POST http://h/ HTTP/1.1\r\nHost: h\r\nContent-Length: 5, 5\r\n\r\n",
  };

  for (gsize i = 0; i < G_N_ELEMENTS (heads); i++)
    {
      g_autoptr (PhHttpRequest) req = parse_request_ok (heads[i]);
      g_autoptr (GString) fwd = ph_http_request_build_forward (req, NULL);
      g_autoptr (PhHttpRequest) out = reparse_forward (fwd);

      g_assert_cmpuint (ph_http_header_count (ph_http_request_get_headers (out), "Content-Length"),
                        ==, 1);
      g_assert_cmpstr (ph_http_header_get (ph_http_request_get_headers (out), "Content-Length"), ==,
                       "5");
    }
}

/* ---- responses ---- */

typedef struct
{
  const char *name;
  const char *head;
  guint minor;
  guint status;
  const char *reason;
  gint64 content_length;
  gboolean chunked;
  gboolean keep_alive;
  gboolean body_for_get;
  gboolean body_for_head;
} ValidResponse;

static const ValidResponse valid_responses[] = {
  { "length", "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n", 1, 200, "OK", 5, FALSE, TRUE, TRUE,
    FALSE },
  { "chunked", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n", 1, 200, "OK", -1, TRUE,
    TRUE, TRUE, FALSE },
  { "until-close", "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\n", 1, 200, "OK", -1, FALSE,
    TRUE, TRUE, FALSE },
  { "te-wins-over-cl", "HTTP/1.1 200 OK\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n",
    1, 200, "OK", -1, TRUE, TRUE, TRUE, FALSE },
  { "te-gzip-until-close", "HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\n", 1, 200, "OK", -1,
    FALSE, TRUE, TRUE, FALSE },
  { "close", "HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n", 1, 404,
    "Not Found", 0, FALSE, FALSE, TRUE, FALSE },
  { "http10", "HTTP/1.0 200 OK\r\nContent-Length: 2\r\n\r\n", 0, 200, "OK", 2, FALSE, FALSE, TRUE,
    FALSE },
  { "http10-keep-alive", "HTTP/1.0 200 OK\r\nContent-Length: 2\r\nConnection: Keep-Alive\r\n\r\n",
    0, 200, "OK", 2, FALSE, TRUE, TRUE, FALSE },
  { "no-reason", "HTTP/1.1 200\r\nContent-Length: 0\r\n\r\n", 1, 200, "", 0, FALSE, TRUE, TRUE,
    FALSE },
  { "empty-reason", "HTTP/1.1 200 \r\nContent-Length: 0\r\n\r\n", 1, 200, "", 0, FALSE, TRUE, TRUE,
    FALSE },
  { "reason-with-spaces", "HTTP/1.1 407 Proxy Authentication Required\r\nContent-Length: 0\r\n\r\n",
    1, 407, "Proxy Authentication Required", 0, FALSE, TRUE, TRUE, FALSE },
  { "continue", "HTTP/1.1 100 Continue\r\n\r\n", 1, 100, "Continue", -1, FALSE, TRUE, FALSE,
    FALSE },
  { "early-hints", "HTTP/1.1 103 Early Hints\r\nLink: </a.css>; rel=preload\r\n\r\n", 1, 103,
    "Early Hints", -1, FALSE, TRUE, FALSE, FALSE },
  { "no-content", "HTTP/1.1 204 No Content\r\n\r\n", 1, 204, "No Content", -1, FALSE, TRUE, FALSE,
    FALSE },
  { "not-modified", "HTTP/1.1 304 Not Modified\r\nContent-Length: 10\r\n\r\n", 1, 304,
    "Not Modified", 10, FALSE, TRUE, FALSE, FALSE },
};

static void
test_response_valid (gconstpointer data)
{
  const ValidResponse *c = data;
  g_autoptr (PhHttpResponse) resp = parse_response_ok (c->head);

  g_assert_cmpuint (ph_http_response_get_minor (resp), ==, c->minor);
  g_assert_cmpuint (ph_http_response_get_status (resp), ==, c->status);
  g_assert_cmpstr (ph_http_response_get_reason (resp), ==, c->reason);
  g_assert_cmpint (ph_http_response_get_content_length (resp), ==, c->content_length);
  g_assert_cmpint (ph_http_response_get_chunked (resp), ==, c->chunked);
  /* Without a body the connection's fate is the caller's to decide. */
  if (c->body_for_get)
    g_assert_cmpint (ph_http_response_get_keep_alive (resp), ==, c->keep_alive);
  g_assert_cmpint (ph_http_response_has_body (resp, "GET"), ==, c->body_for_get);
  g_assert_cmpint (ph_http_response_has_body (resp, "HEAD"), ==, c->body_for_head);
}

static void
test_response_incomplete (gconstpointer data)
{
  const ValidResponse *c = data;
  gsize len = strlen (c->head);
  g_autofree char *with_body = g_strconcat (c->head, "hello", NULL);
  g_autoptr (PhHttpResponse) whole = NULL;
  g_autofree char *reason = NULL;
  gsize consumed = 0;

  for (gsize i = 0; i < len; i++)
    {
      g_autoptr (PhHttpResponse) resp = NULL;
      g_autofree char *why = NULL;
      PhHttpParseResult r = parse_response (c->head, i, &resp, &consumed, &why);

      if (r != PH_HTTP_PARSE_INCOMPLETE)
        g_test_message ("prefix of %zu bytes gave %d (%s)", i, r, why);
      g_assert_cmpint (r, ==, PH_HTTP_PARSE_INCOMPLETE);
      g_assert_null (resp);
    }
  g_assert_cmpint (parse_response (with_body, strlen (with_body), &whole, &consumed, &reason), ==,
                   PH_HTTP_PARSE_DONE);
  g_assert_cmpuint (consumed, ==, len);
}

typedef struct
{
  const char *name;
  const char *head;
  gsize len;
} BadMessage;

static const BadMessage bad_responses[] = {
  { "status-two-digits", BYTES ("HTTP/1.1 20 OK\r\n\r\n") },
  { "status-four-digits", BYTES ("HTTP/1.1 2000 OK\r\n\r\n") },
  { "status-below-100", BYTES ("HTTP/1.1 099 Low\r\n\r\n") },
  { "status-above-599", BYTES ("HTTP/1.1 600 High\r\n\r\n") },
  { "status-not-digits", BYTES ("HTTP/1.1 2x0 OK\r\n\r\n") },
  { "http-2-0", BYTES ("HTTP/2.0 200 OK\r\n\r\n") },
  { "http-2", BYTES ("HTTP/2 200 OK\r\n\r\n") },
  { "double-space", BYTES ("HTTP/1.1  200 OK\r\n\r\n") },
  { "not-http", BYTES ("ICY 200 OK\r\n\r\n") },
  { "bare-lf-status-line", BYTES ("HTTP/1.1 200 OK\nContent-Length: 0\r\n\r\n") },
  { "bare-lf-header", BYTES ("HTTP/1.1 200 OK\r\nContent-Length: 0\n\r\n") },
  { "reason-control-byte", BYTES ("HTTP/1.1 200 O\x01K\r\n\r\n") },
  { "reason-nul", BYTES ("HTTP/1.1 200 O\0K\r\n\r\n") },
  { "cl-conflicting", BYTES ("HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n") },
  { "cl-negative", BYTES ("HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n") },
  { "obs-fold", BYTES ("HTTP/1.1 200 OK\r\nX-A: a\r\n b\r\n\r\n") },
  { "name-space", BYTES ("HTTP/1.1 200 OK\r\nX A: b\r\n\r\n") },
  { "value-nul", BYTES ("HTTP/1.1 200 OK\r\nX-A: a\0b\r\n\r\n") },
  /* Found by fuzz-http-response: a Transfer-Encoding naming no coding. */
  { "te-empty", BYTES ("HTTP/1.1 200 OK\r\nTransfer-Encoding:\r\nContent-Length: 5\r\n\r\n") },
  { "te-only-commas", BYTES ("HTTP/1.1 200 OK\r\nTransfer-Encoding: , \r\n\r\n") },
};

static void
test_response_malformed (gconstpointer data)
{
  const BadMessage *c = data;
  g_autoptr (PhHttpResponse) resp = NULL;
  g_autofree char *reason = NULL;
  gsize consumed = 0;
  PhHttpParseResult r = parse_response (c->head, c->len, &resp, &consumed, &reason);

  if (r == PH_HTTP_PARSE_DONE)
    g_test_message ("accepted: status %u, reason “%s”", ph_http_response_get_status (resp),
                    ph_http_response_get_reason (resp));
  g_assert_cmpint (r, ==, PH_HTTP_PARSE_ERROR);
  g_assert_null (resp);
  g_assert_nonnull (reason);
}

static void
test_response_forward (void)
{
  g_autoptr (PhHttpResponse) resp
      = parse_response_ok ("HTTP/1.1 200 OK\r\nContent-Length: 5\r\nConnection: close, X-Hop\r\n"
                           "X-Hop: 1\r\nKeep-Alive: timeout=5\r\nProxy-Authenticate: Basic\r\n"
                           "Set-Cookie: a=b\r\n\r\n");
  g_autoptr (GString) ka = ph_http_response_build_forward (resp, TRUE);
  g_autoptr (GString) closing = ph_http_response_build_forward (resp, FALSE);
  g_autoptr (PhHttpResponse) out_ka = parse_response_ok (ka->str);
  g_autoptr (PhHttpResponse) out_close = parse_response_ok (closing->str);
  g_autoptr (PhHttpResponse) interim = parse_response_ok ("HTTP/1.1 100 Continue\r\n\r\n");
  g_autoptr (GString) fwd_interim = ph_http_response_build_forward (interim, TRUE);

  g_assert_true (g_str_has_prefix (ka->str, "HTTP/1.1 200 OK\r\n"));
  g_assert_cmpuint (ph_http_header_count (ph_http_response_get_headers (out_ka), "X-Hop"), ==, 0);
  g_assert_cmpuint (ph_http_header_count (ph_http_response_get_headers (out_ka), "Keep-Alive"), ==,
                    0);
  g_assert_cmpuint (
      ph_http_header_count (ph_http_response_get_headers (out_ka), "Proxy-Authenticate"), ==, 0);
  g_assert_cmpuint (ph_http_header_count (ph_http_response_get_headers (out_ka), "Connection"), ==,
                    1);
  g_assert_cmpstr (ph_http_header_get (ph_http_response_get_headers (out_ka), "Set-Cookie"), ==,
                   "a=b");
  g_assert_cmpint (ph_http_response_get_content_length (out_ka), ==, 5);
  g_assert_true (ph_http_response_get_keep_alive (out_ka));
  g_assert_false (ph_http_response_get_keep_alive (out_close));
  g_assert_cmpstr (ph_http_header_get (ph_http_response_get_headers (out_close), "Connection"), ==,
                   "close");
  g_assert_cmpstr (fwd_interim->str, ==, "HTTP/1.1 100 Continue\r\n\r\n");
}

/* Found by fuzz-http-response: a field named "close" went to the client
 * beside the agent's "Connection: close", which names it: the client, or
 * the agent reading its own head again, took it for hop-by-hop. */
static void
test_response_forward_close_field (void)
{
  g_autoptr (PhHttpResponse) resp
      = parse_response_ok ("HTTP/1.1 200 OK\r\nclose: :0h2c\r\nTE: tileep-a=5\r\n"
                           "PrUpgrade: h1c\r\nCont: etL-ne 0\r\n\r\n");

  for (int keep_alive = 0; keep_alive <= 1; keep_alive++)
    {
      g_autoptr (GString) fwd = ph_http_response_build_forward (resp, keep_alive);
      g_autoptr (PhHttpResponse) out = parse_response_ok (fwd->str);
      g_autoptr (GString) again = ph_http_response_build_forward (out, keep_alive);

      g_assert_cmpuint (ph_http_header_count (ph_http_response_get_headers (out), "Close"), ==, 0);
      g_assert_cmpuint (ph_http_header_count (ph_http_response_get_headers (out), "TE"), ==, 0);
      g_assert_cmpstr (ph_http_header_get (ph_http_response_get_headers (out), "PrUpgrade"), ==,
                       "h1c");
      /* Forwarding what was forwarded changes nothing. */
      g_assert_cmpstr (again->str, ==, fwd->str);
    }
}

/* 1000 interim heads back to back, as a cloud proxy once sent them: each
 * parses as one head of its own, forwarded whole, and the final head after
 * them is found where it starts. */
static void
test_response_interim_many (void)
{
  g_autoptr (GString) stream = g_string_new (NULL);
  gsize pos = 0;
  guint interim = 0;

  for (guint i = 0; i < 1000; i++)
    g_string_append (stream, "HTTP/1.1 100 Continue\r\n\r\n");
  g_string_append (stream, "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello");
  for (;;)
    {
      g_autoptr (PhHttpResponse) resp = NULL;
      g_autoptr (GString) fwd = NULL;
      g_autofree char *reason = NULL;
      gsize consumed = 0;

      g_assert_cmpint (
          parse_response (stream->str + pos, stream->len - pos, &resp, &consumed, &reason), ==,
          PH_HTTP_PARSE_DONE);
      if (resp == NULL)
        return;
      pos += consumed;
      if (ph_http_response_get_status (resp) >= 200)
        {
          g_assert_cmpuint (ph_http_response_get_status (resp), ==, 200);
          g_assert_cmpint (ph_http_response_get_content_length (resp), ==, 5);
          break;
        }
      g_assert_cmpuint (consumed, ==, strlen ("HTTP/1.1 100 Continue\r\n\r\n"));
      g_assert_false (ph_http_response_has_body (resp, "POST"));
      fwd = ph_http_response_build_forward (resp, TRUE);
      g_assert_cmpstr (fwd->str, ==, "HTTP/1.1 100 Continue\r\n\r\n");
      interim++;
    }
  g_assert_cmpuint (interim, ==, 1000);
  g_assert_cmpstr (stream->str + pos, ==, "hello");
}

/* The body is relayed verbatim, so the head passed to the client must frame
 * it exactly as the upstream's head did (RFC 9112 §6.1, §6.3). */
typedef struct
{
  const char *name;
  const char *head;
  gint64 content_length;
  gboolean chunked;
  const char *coding; /* a transfer coding the forwarded head must still name */
} ResponseFraming;

static const ResponseFraming response_framing[] = {
  { "content-length", "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n", 5, FALSE, NULL },
  { "chunked", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n", -1, TRUE, "chunked" },
  { "until-close", "HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n", -1, FALSE, NULL },
  /* Content-Length beside chunked: §6.3 says remove it before forwarding. */
  { "content-length-beside-chunked",
    "HTTP/1.1 200 OK\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n", -1, TRUE,
    "chunked" },
  /* Framing fields are not the Connection header's to remove. */
  { "content-length-named-in-connection",
    "HTTP/1.1 200 OK\r\nContent-Length: 5\r\nConnection: Content-Length\r\n\r\n", 5, FALSE, NULL },
  /* Other codings are part of the relayed bytes: if the head loses them the
   * client takes gzip data for the content itself. */
  { "gzip-chunked", "HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\n", -1, TRUE,
    "gzip" },
  { "gzip-until-close", "HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\nConnection: close\r\n\r\n",
    -1, FALSE, "gzip" },
  /* Found by fuzz-http-request: Content-Length must go with any coding. */
  { "content-length-beside-gzip",
    "HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\nContent-Length: 5\r\n\r\n", -1, FALSE, "gzip" },
};

static void
test_response_forward_framing (gconstpointer data)
{
  const ResponseFraming *c = data;
  g_autoptr (PhHttpResponse) resp = parse_response_ok (c->head);
  g_autoptr (GString) fwd = ph_http_response_build_forward (resp, FALSE);
  g_autoptr (PhHttpResponse) out = parse_response_ok (fwd->str);
  const char *te = ph_http_header_get (ph_http_response_get_headers (out), "Transfer-Encoding");

  g_test_message ("forwarded as:\n%s", fwd->str);
  g_assert_cmpint (ph_http_response_get_chunked (out), ==, c->chunked);
  g_assert_cmpint (ph_http_response_get_content_length (out), ==, c->content_length);
  if (c->chunked)
    g_assert_cmpuint (ph_http_header_count (ph_http_response_get_headers (out), "Content-Length"),
                      ==, 0);
  if (c->coding != NULL)
    g_assert_true (te != NULL && strstr (te, c->coding) != NULL);
  else
    g_assert_null (te);
}

/* ---- error answers ---- */

static GString *
error_body (const GString *answer, PhHttpResponse **resp)
{
  gsize consumed = 0;
  g_autofree char *reason = NULL;

  g_assert (ph_http_response_parse (answer->str, answer->len, NULL, resp, &consumed, &reason)
            == PH_HTTP_PARSE_DONE);
  return g_string_new_len (answer->str + consumed, answer->len - consumed);
}

static void
test_build_error (void)
{
  const struct
  {
    guint status;
    const char *kind;
    const char *phrase;
  } cases[] = {
    { 400, "bad-request", "Bad Request" },
    { 403, "forbidden", "Forbidden" },
    { 414, "uri-too-long", "URI Too Long" },
    { 431, "headers-too-large", "Request Header Fields Too Large" },
    { 502, "pin-mismatch", "Bad Gateway" },
    { 503, "too-many-tunnels", "Service Unavailable" },
    { 504, "upstream-timeout", "Gateway Timeout" },
    { 505, "bad-request", "HTTP Version Not Supported" },
  };

  for (gsize i = 0; i < G_N_ELEMENTS (cases); i++)
    {
      g_autoptr (GString) answer
          = ph_http_build_error (cases[i].status, cases[i].kind, "something went wrong");
      g_autoptr (PhHttpResponse) resp = NULL;
      g_autoptr (GString) body = error_body (answer, &resp);
      g_autofree char *line
          = g_strdup_printf ("HTTP/1.1 %u %s\r\n", cases[i].status, cases[i].phrase);
      g_autofree char *expected_body
          = g_strdup_printf ("%u %s: something went wrong\n", cases[i].status, cases[i].phrase);

      g_assert_true (g_str_has_prefix (answer->str, line));
      g_assert_cmpuint (ph_http_response_get_status (resp), ==, cases[i].status);
      g_assert_cmpstr (ph_http_response_get_reason (resp), ==, cases[i].phrase);
      g_assert_cmpstr (ph_http_header_get (ph_http_response_get_headers (resp), "X-Pinhole-Error"),
                       ==, cases[i].kind);
      g_assert_cmpstr (ph_http_header_get (ph_http_response_get_headers (resp), "Connection"), ==,
                       "close");
      g_assert_cmpstr (ph_http_header_get (ph_http_response_get_headers (resp), "Content-Type"), ==,
                       "text/plain; charset=utf-8");
      g_assert_cmpint (ph_http_response_get_content_length (resp), ==, (gint64) body->len);
      g_assert_cmpstr (body->str, ==, expected_body);
    }
}

static void
test_build_error_injection (void)
{
  const char *messages[] = {
    "bad\r\nSet-Cookie: session=evil\r\n\r\n<script>",
    "bad\nSet-Cookie: session=evil\n\nmore",
    "bad\rSet-Cookie: session=evil",
    "ends with a newline\n",
    "\r\n",
  };

  for (gsize i = 0; i < G_N_ELEMENTS (messages); i++)
    {
      g_autoptr (GString) answer = ph_http_build_error (502, "upstream-protocol", messages[i]);
      g_autoptr (PhHttpResponse) resp = NULL;
      g_autoptr (GString) body = error_body (answer, &resp);

      g_assert_cmpuint (ph_http_header_count (ph_http_response_get_headers (resp), "Set-Cookie"),
                        ==, 0);
      g_assert_cmpuint (ph_http_headers_get_len (ph_http_response_get_headers (resp)), ==, 5);
      g_assert_cmpint (ph_http_response_get_content_length (resp), ==, (gint64) body->len);
      /* One line, ended by its only newline, and no CR anywhere. */
      g_assert_null (strchr (body->str, '\r'));
      g_assert_cmpuint (strcspn (body->str, "\n"), ==, body->len - 1);
    }
}

/* ---- body framing ---- */

static void
test_body_length (void)
{
  g_autoptr (PhBodyScanner) s = ph_body_scanner_new (PH_BODY_NONE, 0);
  const guint8 *data = (const guint8 *) "helloGET http://next/ HTTP/1.1\r\n";

  ph_body_scanner_init (s, PH_BODY_LENGTH, 5);
  g_assert_false (ph_body_scanner_is_done (s));
  g_assert_cmpint (ph_body_scanner_feed (s, data, 3), ==, 3);
  g_assert_false (ph_body_scanner_is_done (s));
  g_assert_cmpint (ph_body_scanner_feed (s, data + 3, 20), ==, 2);
  g_assert_true (ph_body_scanner_is_done (s));
  g_assert_cmpint (ph_body_scanner_feed (s, data + 5, 10), ==, 0);

  ph_body_scanner_init (s, PH_BODY_LENGTH, 5);
  g_assert_cmpint (ph_body_scanner_feed (s, data, strlen ((const char *) data)), ==, 5);
  g_assert_true (ph_body_scanner_is_done (s));

  ph_body_scanner_init (s, PH_BODY_LENGTH, 0);
  g_assert_true (ph_body_scanner_is_done (s));
  g_assert_cmpint (ph_body_scanner_feed (s, data, 4), ==, 0);

  ph_body_scanner_init (s, PH_BODY_NONE, 0);
  g_assert_true (ph_body_scanner_is_done (s));
  g_assert_cmpint (ph_body_scanner_feed (s, data, 4), ==, 0);

  ph_body_scanner_init (s, PH_BODY_UNTIL_CLOSE, 0);
  g_assert_false (ph_body_scanner_is_done (s));
  g_assert_cmpint (ph_body_scanner_feed (s, data, 4), ==, 4);
  g_assert_cmpint (ph_body_scanner_feed (s, data, 9), ==, 9);
  g_assert_false (ph_body_scanner_is_done (s));

  /* Large lengths are not truncated to 32 bits. */
  ph_body_scanner_init (s, PH_BODY_LENGTH, G_GUINT64_CONSTANT (0x100000003));
  g_assert_cmpint (ph_body_scanner_feed (s, data, 4), ==, 4);
  g_assert_false (ph_body_scanner_is_done (s));
  g_assert_cmpuint (ph_body_scanner_get_remaining (s), ==, G_GUINT64_CONSTANT (0xFFFFFFFF));
}

typedef struct
{
  const char *name;
  const char *body; /* the whole chunked body */
} ChunkedCase;

static const ChunkedCase chunked_cases[] = {
  { "simple", "5\r\nhello\r\n0\r\n\r\n" },
  { "several", "4\r\nWiki\r\n5\r\npedia\r\nE\r\n in\r\n\r\nchunks.\r\n0\r\n\r\n" },
  { "hex-case", "a\r\n0123456789\r\nA\r\n0123456789\r\n0\r\n\r\n" },
  { "leading-zeros", "0005\r\nhello\r\n000\r\n\r\n" },
  { "extensions", "5;name=value;flag\r\nhello\r\n3 ; q=\"x;y\"\r\nabc\r\n0;last\r\n\r\n" },
  { "trailers", "5\r\nhello\r\n0\r\nExpires: never\r\nX-Sum: abc\r\n\r\n" },
  { "extensions-and-trailers", "1;a=b\r\nx\r\n0;z\r\nTrailer-One: 1\r\n\r\n" },
  { "data-looks-like-framing", "7\r\n0\r\n\r\n\r\n\r\n0\r\n\r\n" },
  { "empty", "0\r\n\r\n" },
  { "fifteen-hex-digits", "000000000000005\r\nhello\r\n0\r\n\r\n" },
};

/* A pipelined request after the body: it must not be counted as body. */
#define NEXT_MESSAGE "GET http://h/ HTTP/1.1\r\n"

/* A valid body is accepted whole, whatever the split, and not one byte of
 * the message after it. */
static void
check_chunked_accepted (const char *body)
{
  gsize body_len = strlen (body);
  g_autofree char *stream = g_strconcat (body, NEXT_MESSAGE, NULL);
  gsize len = strlen (stream);
  g_autoptr (PhBodyScanner) s = ph_body_scanner_new (PH_BODY_NONE, 0);
  gsize total = 0;

  /* All at once. */
  ph_body_scanner_init (s, PH_BODY_CHUNKED, 0);
  g_assert_cmpint (ph_body_scanner_feed (s, (const guint8 *) stream, len), ==, body_len);
  g_assert_true (ph_body_scanner_is_done (s));

  /* Byte by byte: the same boundary, and no byte of the next message. */
  ph_body_scanner_init (s, PH_BODY_CHUNKED, 0);
  for (gsize i = 0; i < len; i++)
    {
      gssize n = ph_body_scanner_feed (s, (const guint8 *) stream + i, 1);

      if (n < 0)
        {
          g_test_fail_printf ("refused at byte %zu", i);
          return;
        }
      g_assert_cmpint (n, ==, i < body_len ? 1 : 0);
      g_assert_cmpint (ph_body_scanner_is_done (s), ==, i + 1 >= body_len);
      total += n;
    }
  g_assert_cmpuint (total, ==, body_len);

  /* Random splits. */
  for (guint round = 0; round < 50; round++)
    {
      gsize pos = 0;

      ph_body_scanner_init (s, PH_BODY_CHUNKED, 0);
      while (pos < len && !ph_body_scanner_is_done (s))
        {
          gsize piece = MIN (len - pos, (gsize) g_test_rand_int_range (1, 9));
          gssize n = ph_body_scanner_feed (s, (const guint8 *) stream + pos, piece);

          g_assert_cmpint (n, >=, 0);
          if (n < 0)
            return;
          g_assert_cmpint (n, <=, piece);
          if ((gsize) n < piece)
            g_assert_true (ph_body_scanner_is_done (s));
          pos += n;
        }
      g_assert_true (ph_body_scanner_is_done (s));
      g_assert_cmpuint (pos, ==, body_len);
    }
}

static void
test_body_chunked (gconstpointer data)
{
  const ChunkedCase *c = data;

  check_chunked_accepted (c->body);
}

static const BadMessage bad_chunked[] = {
  { "not-hex", BYTES ("g\r\nhello\r\n0\r\n\r\n") },
  { "junk-after-size", BYTES ("5x\r\nhello\r\n0\r\n\r\n") },
  { "sign", BYTES ("-5\r\nhello\r\n0\r\n\r\n") },
  { "c-prefix", BYTES ("0x5\r\nhello\r\n0\r\n\r\n") },
  { "empty-size", BYTES ("\r\nhello\r\n0\r\n\r\n") },
  { "extension-without-size", BYTES (";ext\r\nhello\r\n0\r\n\r\n") },
  { "sixteen-hex-digits", BYTES ("0000000000000005\r\nhello\r\n0\r\n\r\n") },
  { "overflow", BYTES ("10000000000000000\r\nx\r\n0\r\n\r\n") },
  { "no-crlf-after-data", BYTES ("5\r\nhelloXY0\r\n\r\n") },
  { "junk-instead-of-cr", BYTES ("5\r\nhelloX\n0\r\n\r\n") },
  { "bare-lf-after-data", BYTES ("5\r\nhello\n0\r\n\r\n") },
  { "bare-cr-after-data", BYTES ("5\r\nhello\r0\r\n\r\n") },
  { "bare-lf-after-size", BYTES ("5\nhello\r\n0\r\n\r\n") },
  { "bare-cr-after-size", BYTES ("5\rhello\r\n0\r\n\r\n") },
  { "extension-control-byte", BYTES ("5;a\x01\r\nhello\r\n0\r\n\r\n") },
  { "extension-nul", BYTES ("5;a\0b\r\nhello\r\n0\r\n\r\n") },
  /* RFC 9112 §7.1.1: only BWS and then ";" may follow the size. */
  { "space-then-not-semicolon", BYTES ("5 6\r\nhello\r\n0\r\n\r\n") },
  { "trailer-bare-lf", BYTES ("0\r\nX-A: 1\n\r\n") },
  { "trailer-control-byte", BYTES ("0\r\nX-A: \x01\r\n\r\n") },
  { "trailer-folded", BYTES ("0\r\n folded\r\n\r\n") },
  { "end-cr-without-lf", BYTES ("0\r\n\rX") },
  /* strchr() took the NUL for a tchar: a field line could start with one. */
  { "trailer-nul-name", BYTES ("0\r\n\0: b\r\n\r\n") },
  { "extension-nul-name", BYTES ("5;\0\r\nhello\r\n0\r\n\r\n") },
};

/* Fed split at every position, a malformed body fails whatever the split. */
static void
check_chunked_refused (const char *body, gsize len)
{
  for (gsize split = 0; split <= len; split++)
    {
      g_autoptr (PhBodyScanner) s = ph_body_scanner_new (PH_BODY_NONE, 0);
      gssize a, b = 0;

      ph_body_scanner_init (s, PH_BODY_CHUNKED, 0);
      a = ph_body_scanner_feed (s, (const guint8 *) body, split);
      if (a >= 0 && !ph_body_scanner_is_done (s))
        b = ph_body_scanner_feed (s, (const guint8 *) body + split, len - split);
      if (a >= 0 && b >= 0)
        {
          g_test_fail_printf ("split at %zu: accepted (%zd + %zd bytes, done=%d)", split, a, b,
                              ph_body_scanner_is_done (s));
          return;
        }
      g_assert_false (ph_body_scanner_is_done (s));
    }
}

static void
test_body_chunked_malformed (gconstpointer data)
{
  const BadMessage *c = data;

  check_chunked_refused (c->head, c->len);
}

/* RFC 9112 §7.1 line by line, as strict as the cloud proxy (Squid) or
 * stricter: a line the agent lets through and the next hop reads otherwise
 * is a way to smuggle a request past one of them. */
typedef struct
{
  const char *name;
  const char *body;
  gboolean accepted;
} ChunkLine;

/* After a chunk-size line for 5 bytes. */
#define HELLO_LAST "hello\r\n0\r\n\r\n"

static const ChunkLine chunk_lines[] = {
  /* chunk-size */
  { "size-lower-hex", "a\r\n0123456789\r\n0\r\n\r\n", TRUE },
  { "size-space", "5 \r\n" HELLO_LAST, FALSE },
  { "size-tab", "5\t\r\n" HELLO_LAST, FALSE },
  { "size-spaces", "5   \r\n" HELLO_LAST, FALSE },
  { "size-leading-space", " 5\r\n" HELLO_LAST, FALSE },
  { "size-bare-lf", "5\nhello\r\n0\r\n\r\n", FALSE },
  { "size-cr-cr-lf", "5\r\r\n" HELLO_LAST, FALSE },
  { "size-vertical-tab", "5\v;a\r\n" HELLO_LAST, FALSE },
  /* chunk-ext = *( BWS ";" BWS chunk-ext-name [ BWS "=" BWS chunk-ext-val ] ) */
  { "ext-name", "5;a\r\n" HELLO_LAST, TRUE },
  { "ext-token", "5;a=b\r\n" HELLO_LAST, TRUE },
  { "ext-token-chars", "5;!#$%&'*+-.^_`|~09AZaz=!#$%&'*+-.^_`|~09AZaz\r\n" HELLO_LAST, TRUE },
  { "ext-quoted", "5;a=\"x\"\r\n" HELLO_LAST, TRUE },
  { "ext-quoted-empty", "5;a=\"\"\r\n" HELLO_LAST, TRUE },
  { "ext-quoted-pair-quote", "5;a=\"x\\\"y\"\r\n" HELLO_LAST, TRUE },
  { "ext-quoted-pair-backslash", "5;a=\"\\\\\"\r\n" HELLO_LAST, TRUE },
  { "ext-quoted-separators", "5;a=\"x;y=z, (w)\t\"\r\n" HELLO_LAST, TRUE },
  { "ext-quoted-obs-text", "5;a=\"caf\xc3\xa9\"\r\n" HELLO_LAST, TRUE },
  { "ext-several", "5;a=1;b;c=\"2\"\r\n" HELLO_LAST, TRUE },
  { "ext-bws", "5 ; a = 1 ;\tb\t=\t\"2\" ; c\r\n" HELLO_LAST, TRUE },
  { "ext-tab-after-size", "5\t;a\r\n" HELLO_LAST, TRUE },
  { "ext-unterminated-quote", "5;a=\"x\r\n" HELLO_LAST, FALSE },
  { "ext-quote-ends-in-pair", "5;a=\"x\\\"\r\n" HELLO_LAST, FALSE },
  { "ext-empty-value", "5;a=\r\n" HELLO_LAST, FALSE },
  { "ext-empty-value-then-ext", "5;a=;b\r\n" HELLO_LAST, FALSE },
  { "ext-empty", "5;\r\n" HELLO_LAST, FALSE },
  { "ext-empty-twice", "5;;\r\n" HELLO_LAST, FALSE },
  { "ext-empty-between", "5;a;;b\r\n" HELLO_LAST, FALSE },
  { "ext-no-name", "5;=b\r\n" HELLO_LAST, FALSE },
  { "ext-space-at-end", "5;a \r\n" HELLO_LAST, FALSE },
  { "ext-space-after-token", "5;a=b \r\n" HELLO_LAST, FALSE },
  { "ext-space-after-quoted", "5;a=\"b\" \r\n" HELLO_LAST, FALSE },
  { "ext-space-in-name", "5;a b\r\n" HELLO_LAST, FALSE },
  { "ext-space-in-token", "5;a=b c\r\n" HELLO_LAST, FALSE },
  { "ext-separator-in-name", "5;a/b\r\n" HELLO_LAST, FALSE },
  { "ext-separator-in-token", "5;a=b,c\r\n" HELLO_LAST, FALSE },
  { "ext-two-equals", "5;a=b=c\r\n" HELLO_LAST, FALSE },
  { "ext-junk-after-quoted", "5;a=\"b\"c\r\n" HELLO_LAST, FALSE },
  { "ext-quote-in-token", "5;a=b\"c\"\r\n" HELLO_LAST, FALSE },
  { "ext-quoted-name", "5;\"a\"=b\r\n" HELLO_LAST, FALSE },
  { "ext-obs-text-name", "5;caf\xc3\xa9\r\n" HELLO_LAST, FALSE },
  { "ext-quoted-control", "5;a=\"\x01\"\r\n" HELLO_LAST, FALSE },
  { "ext-quoted-del", "5;a=\"\x7f\"\r\n" HELLO_LAST, FALSE },
  { "ext-quoted-pair-control", "5;a=\"\\\x01\"\r\n" HELLO_LAST, FALSE },
  { "ext-quoted-pair-cr", "5;a=\"\\\r\"\r\n" HELLO_LAST, FALSE },
  { "ext-quoted-bare-lf", "5;a=\"\n\"\r\n" HELLO_LAST, FALSE },
  { "ext-bare-lf", "5;a\nhello\r\n0\r\n\r\n", FALSE },
  { "ext-bare-cr", "5;a\rb\r\n" HELLO_LAST, FALSE },
  /* last-chunk = 1*("0") [ chunk-ext ] CRLF */
  { "last-ext", "0;a=\"b\";c\r\n\r\n", TRUE },
  { "last-zeros", "000\r\n\r\n", TRUE },
  { "last-space", "0 \r\n\r\n", FALSE },
  { "last-ext-unterminated-quote", "0;a=\"\r\n\r\n", FALSE },
  { "last-ext-empty-value", "0;a=\r\n\r\n", FALSE },
  { "last-bare-lf", "0\n\r\n", FALSE },
  /* trailer-section = *( field-line CRLF ), field-line as in a head */
  { "trailer-empty-value", "0\r\nX-A:\r\n\r\n", TRUE },
  { "trailer-ows", "0\r\nX-A: \t b c \t\r\n\r\n", TRUE },
  { "trailer-obs-text", "0\r\nX-A: caf\xc3\xa9\r\n\r\n", TRUE },
  { "trailer-colon-in-value", "0\r\nX-A: b:c\r\n\r\n", TRUE },
  { "trailer-no-colon", "0\r\nX-A\r\n\r\n", FALSE },
  { "trailer-space-before-colon", "0\r\nX-A : b\r\n\r\n", FALSE },
  { "trailer-space-in-name", "0\r\nX A: b\r\n\r\n", FALSE },
  { "trailer-empty-name", "0\r\n: b\r\n\r\n", FALSE },
  { "trailer-separator-in-name", "0\r\nX(A): b\r\n\r\n", FALSE },
  { "trailer-bare-lf-end", "0\r\nX-A: b\r\n\n", FALSE },
  { "trailer-bare-cr", "0\r\nX-A: b\rc\r\n\r\n", FALSE },
  { "trailer-value-control", "0\r\nX-A: b\x01\r\n\r\n", FALSE },
};

static void
test_body_chunk_line (gconstpointer data)
{
  const ChunkLine *c = data;

  if (c->accepted)
    check_chunked_accepted (c->body);
  else
    check_chunked_refused (c->body, strlen (c->body));
}

static void
test_body_chunked_long_lines (void)
{
  g_autofree char *ext = g_strnfill (8192, 'e');
  g_autofree char *long_ext = g_strdup_printf ("5;%s\r\nhello\r\n0\r\n\r\n", ext);
  g_autofree char *long_trailer = g_strdup_printf ("0\r\nX-Long: %s\r\n\r\n", ext);
  g_autoptr (PhBodyScanner) s = ph_body_scanner_new (PH_BODY_NONE, 0);

  /* Bounded lines: the scanner does not wait forever for a CR. */
  ph_body_scanner_init (s, PH_BODY_CHUNKED, 0);
  g_assert_cmpint (ph_body_scanner_feed (s, (const guint8 *) long_ext, strlen (long_ext)), ==, -1);
  ph_body_scanner_init (s, PH_BODY_CHUNKED, 0);
  g_assert_cmpint (ph_body_scanner_feed (s, (const guint8 *) long_trailer, strlen (long_trailer)),
                   ==, -1);
}

/* Refused at byte @at exactly: fed whole, and fed one byte at a time. */
static void
check_chunked_refused_at (const char *body, gsize at)
{
  g_autoptr (PhBodyScanner) s = ph_body_scanner_new (PH_BODY_NONE, 0);
  gsize i;

  ph_body_scanner_init (s, PH_BODY_CHUNKED, 0);
  g_assert_cmpint (ph_body_scanner_feed (s, (const guint8 *) body, strlen (body)), ==, -1);
  ph_body_scanner_init (s, PH_BODY_CHUNKED, 0);
  for (i = 0; body[i] != '\0'; i++)
    if (ph_body_scanner_feed (s, (const guint8 *) body + i, 1) < 0)
      break;
  g_assert_cmpuint (i, ==, at);
}

/* The limits exactly: CHUNK_LINE_MAX bytes before a line's CR, and
 * 64 KiB for the trailer section with its final CRLF. */
static void
test_body_chunked_limits (void)
{
  g_autofree char *name_ok = g_strnfill (4096 - 2, 'e');
  g_autofree char *line_ok = g_strdup_printf ("5;%s\r\nhello\r\n0\r\n\r\n", name_ok);
  g_autofree char *line_over = g_strdup_printf ("5;%se\r\nhello\r\n0\r\n\r\n", name_ok);
  g_autofree char *value_ok = g_strnfill (4096 - 5, 'v');
  g_autofree char *trailer_ok = g_strdup_printf ("0\r\nX-A: %s\r\n\r\n", value_ok);
  g_autofree char *trailer_over = g_strdup_printf ("0\r\nX-A: %sv\r\n\r\n", value_ok);
  g_autoptr (GString) section = g_string_new ("0\r\n");
  gsize left = 64 * 1024 - 2;

  check_chunked_accepted (line_ok);
  check_chunked_refused_at (line_over, 4096);
  check_chunked_accepted (trailer_ok);
  check_chunked_refused_at (trailer_over, 3 + 4096);

  /* Lines of at most 4000 bytes filling the section to the byte. */
  while (left > 0)
    {
      gsize n = MIN (left, 4000);

      if (left - n > 0 && left - n < 8)
        n -= 8;
      g_string_append (section, "X-A: ");
      for (gsize i = 0; i < n - 7; i++)
        g_string_append_c (section, 'p');
      g_string_append (section, "\r\n");
      left -= n;
    }
  g_string_append (section, "\r\n");
  g_assert_cmpuint (section->len, ==, 3 + 64 * 1024);
  check_chunked_accepted (section->str);
  g_string_insert_c (section, 8, 'p');
  check_chunked_refused_at (section->str, 3 + 64 * 1024);
}

static void
test_reason_phrase (void)
{
  g_assert_cmpstr (ph_http_reason_phrase (200), ==, "OK");
  g_assert_cmpstr (ph_http_reason_phrase (403), ==, "Forbidden");
  g_assert_cmpstr (ph_http_reason_phrase (405), ==, "Method Not Allowed");
  g_assert_cmpstr (ph_http_reason_phrase (408), ==, "Request Timeout");
  g_assert_cmpstr (ph_http_reason_phrase (502), ==, "Bad Gateway");
  g_assert_nonnull (ph_http_reason_phrase (599));
}

static void
add_table (const char *prefix, gconstpointer table, gsize n, gsize size, GTestDataFunc func)
{
  for (gsize i = 0; i < n; i++)
    {
      gconstpointer row = (const guint8 *) table + i * size;
      /* Every table row starts with its name. */
      g_autofree char *path = g_strdup_printf ("%s/%s", prefix, *(const char *const *) row);

      g_test_add_data_func (path, row, func);
    }
}

#define ADD_TABLE(prefix, table, func)                                                             \
  add_table (prefix, table, G_N_ELEMENTS (table), sizeof (table[0]), func)

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  /* A failed check fails its case, and the other cases still run. */
  g_test_set_nonfatal_assertions ();

  ADD_TABLE ("/pinhole/http/request/valid", valid_requests, test_request_valid);
  ADD_TABLE ("/pinhole/http/request/incomplete", valid_requests, test_request_incomplete);
  ADD_TABLE ("/pinhole/http/request/malformed", bad_requests, test_request_malformed);
  g_test_add_func ("/pinhole/http/request/headers", test_request_headers);
  g_test_add_func ("/pinhole/http/request/target-too-long", test_request_target_too_long);
  g_test_add_func ("/pinhole/http/request/head-too-large", test_request_head_too_large);
  g_test_add_func ("/pinhole/http/request/too-many-headers", test_request_too_many_headers);

  g_test_add_func ("/pinhole/http/hop-by-hop", test_hop_by_hop);
  g_test_add_func ("/pinhole/http/forward/hop-by-hop", test_forward_hop_by_hop);
  g_test_add_func ("/pinhole/http/forward/no-proxy-auth", test_forward_no_proxy_auth);
  g_test_add_func ("/pinhole/http/forward/http10", test_forward_http10);
  ADD_TABLE ("/pinhole/http/forward/framing", framing_cases, test_forward_framing);
  g_test_add_func ("/pinhole/http/forward/duplicate-content-length",
                   test_forward_duplicate_content_length);

  ADD_TABLE ("/pinhole/http/response/valid", valid_responses, test_response_valid);
  ADD_TABLE ("/pinhole/http/response/incomplete", valid_responses, test_response_incomplete);
  ADD_TABLE ("/pinhole/http/response/malformed", bad_responses, test_response_malformed);
  g_test_add_func ("/pinhole/http/response/forward", test_response_forward);
  g_test_add_func ("/pinhole/http/response/forward-close-field", test_response_forward_close_field);
  g_test_add_func ("/pinhole/http/response/interim-many", test_response_interim_many);
  ADD_TABLE ("/pinhole/http/response/forward-framing", response_framing,
             test_response_forward_framing);

  g_test_add_func ("/pinhole/http/error/build", test_build_error);
  g_test_add_func ("/pinhole/http/error/injection", test_build_error_injection);
  g_test_add_func ("/pinhole/http/reason-phrase", test_reason_phrase);

  g_test_add_func ("/pinhole/http/body/length", test_body_length);
  ADD_TABLE ("/pinhole/http/body/chunked", chunked_cases, test_body_chunked);
  ADD_TABLE ("/pinhole/http/body/chunked-malformed", bad_chunked, test_body_chunked_malformed);
  ADD_TABLE ("/pinhole/http/body/chunk-line", chunk_lines, test_body_chunk_line);
  g_test_add_func ("/pinhole/http/body/chunked-long-lines", test_body_chunked_long_lines);
  g_test_add_func ("/pinhole/http/body/chunked-limits", test_body_chunked_limits);

  return g_test_run ();
}

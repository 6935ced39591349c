/* SPDX-License-Identifier: GPL-2.0-or-later */
/* fuzz-http-request.c: libFuzzer harness for the request and response head
 * parsers and for the heads the agent writes from what they accepted. */
#include "ph-http.h"

#include <stdint.h>
#include <string.h>

int LLVMFuzzerTestOneInput (const uint8_t *data, size_t size);

/* Forwarded heads may grow a little (Host, Proxy-Authorization, "/"). */
static const PhHttpLimits relaxed_limits = {
  .max_head = 128 * 1024,
  .max_target = 16 * 1024,
  .max_headers = 200,
};

/* Small enough that the fuzzer reaches every limit. */
static const PhHttpLimits tight_limits = {
  .max_head = 256,
  .max_target = 48,
  .max_headers = 6,
};

/* A refusal's reason goes into a one-line body; the answer must parse. */
static void
check_refusal (guint status, const char *reason)
{
  g_autoptr (GString) answer = NULL;
  g_autoptr (PhHttpResponse) resp = NULL;
  g_autofree char *why = NULL;
  gsize consumed = 0;

  g_assert_true (status == 400 || status == 414 || status == 431 || status == 501 || status == 505);
  g_assert_nonnull (reason);
  g_assert_null (strpbrk (reason, "\r\n"));
  answer = ph_http_build_error (status, "bad-request", reason);
  g_assert_cmpint (ph_http_response_parse (answer->str, answer->len, NULL, &resp, &consumed, &why),
                   ==, PH_HTTP_PARSE_DONE);
  g_assert_cmpint (ph_http_response_get_content_length (resp), ==,
                   (gint64) (answer->len - consumed));
  g_assert_cmpuint (ph_http_header_count (ph_http_response_get_headers (resp), "X-Pinhole-Error"),
                    ==, 1);
}

/* The head sent upstream must be one valid request that frames the body
 * exactly as the agent does: otherwise body bytes become a request. */
static void
check_forward (const PhHttpRequest *req, const char *proxy_auth)
{
  g_autofree char *extra
      = proxy_auth ? g_strdup_printf ("Proxy-Authorization: %s\r\n", proxy_auth) : NULL;
  g_autoptr (GString) fwd = ph_http_request_build_forward (req, extra);
  g_autoptr (PhHttpRequest) out = NULL;
  g_autofree char *reason = NULL;
  gsize consumed = 0;
  guint status = 0;
  PhHttpParseResult r = ph_http_request_parse (fwd->str, fwd->len, &relaxed_limits, &out, &consumed,
                                               &status, &reason);

  if (r != PH_HTTP_PARSE_DONE)
    g_error ("forwarded head refused (%u %s):\n%s", status, reason, fwd->str);
  g_assert_cmpuint (consumed, ==, fwd->len);
  g_assert_cmpint (ph_http_request_get_kind (out), ==, PH_HTTP_ABSOLUTE);
  g_assert_cmpstr (ph_http_request_get_method (out), ==, ph_http_request_get_method (req));
  g_assert_cmpstr (ph_http_request_get_host (out), ==, ph_http_request_get_host (req));
  g_assert_cmpuint (ph_http_request_get_port (out), ==, ph_http_request_get_port (req));
  g_assert_cmpstr (ph_http_request_get_authority (out), ==, ph_http_request_get_authority (req));
  g_assert_cmpstr (ph_http_request_get_path (out), ==, ph_http_request_get_path (req));
  g_assert_cmpuint (ph_http_request_get_minor (out), ==, ph_http_request_get_minor (req));
  g_assert_cmpint (ph_http_request_get_content_length (out), ==,
                   ph_http_request_get_content_length (req));
  g_assert_cmpint (ph_http_request_get_chunked (out), ==, ph_http_request_get_chunked (req));
  g_assert_cmpuint (ph_http_header_count (ph_http_request_get_headers (out), "Host"), ==, 1);
  g_assert_cmpuint (ph_http_header_count (ph_http_request_get_headers (out), "Proxy-Authorization"),
                    ==, proxy_auth != NULL ? 1 : 0);
  if (proxy_auth != NULL)
    g_assert_cmpstr (ph_http_header_get (ph_http_request_get_headers (out), "Proxy-Authorization"),
                     ==, proxy_auth);
}

static void
fuzz_request (const char *buf, gsize len, const PhHttpLimits *limits)
{
  g_autoptr (PhHttpRequest) req = NULL;
  g_autofree char *reason = NULL;
  gsize consumed = 0;
  guint status = 0;
  PhHttpParseResult r = ph_http_request_parse (buf, len, limits, &req, &consumed, &status, &reason);

  if (r == PH_HTTP_PARSE_ERROR)
    {
      g_assert_null (req);
      check_refusal (status, reason);
      return;
    }
  g_assert_null (reason);
  if (r == PH_HTTP_PARSE_INCOMPLETE)
    {
      g_assert_null (req);
      return;
    }

  g_assert_cmpint (r, ==, PH_HTTP_PARSE_DONE);
  g_assert_cmpuint (consumed, >, 0);
  g_assert_cmpuint (consumed, <=, len);
  g_assert_cmpuint (consumed, <=, limits->max_head);
  g_assert_nonnull (ph_http_request_get_method (req));
  g_assert_nonnull (ph_http_request_get_target (req));
  g_assert_cmpuint (strlen (ph_http_request_get_target (req)), <=, limits->max_target);
  g_assert_cmpuint (ph_http_request_get_minor (req), <=, 1);
  g_assert_cmpuint (ph_http_headers_get_len (ph_http_request_get_headers (req)), <=,
                    limits->max_headers);
  g_assert_cmpint (ph_http_request_get_content_length (req), >=, -1);
  g_assert_true (!ph_http_request_get_chunked (req)
                 || ph_http_request_get_content_length (req) == -1);
  switch (ph_http_request_get_kind (req))
    {
      case PH_HTTP_CONNECT:
        g_assert_nonnull (ph_http_request_get_host (req));
        g_assert_nonnull (ph_http_request_get_authority (req));
        g_assert_cmpuint (ph_http_request_get_port (req), >, 0);
        g_assert_false (ph_http_request_get_chunked (req));
        g_assert_cmpint (ph_http_request_get_content_length (req), <=, 0);
        break;
      case PH_HTTP_ABSOLUTE:
        g_assert_nonnull (ph_http_request_get_host (req));
        g_assert_nonnull (ph_http_request_get_authority (req));
        g_assert_cmpuint (ph_http_request_get_port (req), >, 0);
        g_assert_true (ph_http_request_get_path (req)[0] == '/');
        check_forward (req, "Basic cGluaG9sZTpmdXp6");
        check_forward (req, NULL);
        break;
      case PH_HTTP_ORIGIN:
        g_assert_nonnull (ph_http_request_get_path (req));
        break;
      default:
        g_assert_not_reached ();
    }

  /* The head alone parses the same, and any shorter prefix asks for more. */
  {
    g_autoptr (PhHttpRequest) again = NULL;
    g_autofree char *why = NULL;
    g_autofree char *head = g_memdup2 (buf, consumed);
    gsize n = 0;

    g_assert_cmpint (ph_http_request_parse (head, consumed, limits, &again, &n, &status, &why), ==,
                     PH_HTTP_PARSE_DONE);
    g_assert_cmpuint (n, ==, consumed);
    g_assert_cmpint (ph_http_request_get_content_length (again), ==,
                     ph_http_request_get_content_length (req));
    g_assert_cmpint (ph_http_request_get_chunked (again), ==, ph_http_request_get_chunked (req));
    g_clear_pointer (&again, ph_http_request_free);
    for (gsize cut = consumed - 1;; cut /= 2)
      {
        g_assert_cmpint (ph_http_request_parse (head, cut, limits, &again, &n, &status, &why), ==,
                         PH_HTTP_PARSE_INCOMPLETE);
        if (cut == 0)
          break;
      }
  }
}

static void
fuzz_response (const char *buf, gsize len)
{
  g_autoptr (PhHttpResponse) resp = NULL;
  g_autofree char *reason = NULL;
  gsize consumed = 0;
  PhHttpParseResult r = ph_http_response_parse (buf, len, NULL, &resp, &consumed, &reason);

  if (r == PH_HTTP_PARSE_ERROR)
    {
      g_assert_null (resp);
      g_assert_nonnull (reason);
      return;
    }
  if (r == PH_HTTP_PARSE_INCOMPLETE)
    return;
  g_assert_cmpuint (consumed, <=, len);
  g_assert_cmpuint (ph_http_response_get_status (resp), >=, 100);
  g_assert_cmpuint (ph_http_response_get_status (resp), <=, 599);
  g_assert_true (!ph_http_response_get_chunked (resp)
                 || ph_http_response_get_content_length (resp) == -1);
  (void) ph_http_response_has_body (resp, "GET");
  (void) ph_http_response_has_body (resp, "HEAD");

  /* The head passed to the client parses, with the body framed the same. */
  for (int keep_alive = 0; keep_alive <= 1; keep_alive++)
    {
      g_autoptr (GString) fwd = ph_http_response_build_forward (resp, keep_alive);
      g_autoptr (PhHttpResponse) out = NULL;
      g_autofree char *why = NULL;
      gsize n = 0;

      if (ph_http_response_parse (fwd->str, fwd->len, &relaxed_limits, &out, &n, &why)
          != PH_HTTP_PARSE_DONE)
        g_error ("forwarded response refused (%s):\n%s", why, fwd->str);
      g_assert_cmpuint (n, ==, fwd->len);
      g_assert_cmpuint (ph_http_response_get_status (out), ==, ph_http_response_get_status (resp));
      g_assert_cmpint (ph_http_response_get_chunked (out), ==, ph_http_response_get_chunked (resp));
      g_assert_cmpint (ph_http_response_get_content_length (out), ==,
                       ph_http_response_get_content_length (resp));
      /* RFC 9112 §6.3: Content-Length must go when chunked is forwarded. */
      if (ph_http_response_get_chunked (out))
        g_assert_cmpuint (
            ph_http_header_count (ph_http_response_get_headers (out), "Content-Length"), ==, 0);
    }
}

int
LLVMFuzzerTestOneInput (const uint8_t *data, size_t size)
{
  /* An exact-size copy, so ASan sees any read past the end; never NULL,
   * as the agent never parses from a NULL buffer. */
  g_autofree char *buf = g_malloc (MAX (size, 1));

  memcpy (buf, data, size);

  fuzz_request (buf, size, &ph_http_default_limits);
  fuzz_request (buf, size, &tight_limits);
  fuzz_response (buf, size);
  return 0;
}

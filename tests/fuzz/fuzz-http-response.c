/* SPDX-License-Identifier: GPL-2.0-or-later */
/* fuzz-http-response.c: libFuzzer harness for the response head parser, for
 * the head the agent passes to the client and for the body decision, on a
 * stream of heads as the agent reads them: interim heads (100 Continue, 103
 * Early Hints) one after another, then the final one. */
#include "ph-http.h"

#include <stdint.h>
#include <string.h>

int LLVMFuzzerTestOneInput (const uint8_t *data, size_t size);

/* The forwarded head may grow a little (Connection, a joined field). */
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

/* RFC 9110 §7.6.1, and "Close", reserved by §18.4 because the agent's own
 * "Connection: close" would name it. */
static const char *const hop_by_hop[] = {
  "Connection", "Proxy-Connection",    "Keep-Alive",         "TE",    "Transfer-Encoding",
  "Upgrade",    "Proxy-Authorization", "Proxy-Authenticate", "Close",
};

/* One field of a parsed head, as the parser holds it. */
typedef struct
{
  const char *name;
  const char *value;
} Field;

static Field
field_at (const PhHttpHeaders *headers, guint i)
{
  Field f;

  ph_http_headers_get_nth (headers, i, &f.name, &f.value);
  return f;
}

static const char *
header_name (const PhHttpHeaders *headers, guint i)
{
  return field_at (headers, i).name;
}

static const char *
header_value (const PhHttpHeaders *headers, guint i)
{
  return field_at (headers, i).value;
}

static gboolean
is_framing (const char *name)
{
  return g_ascii_strcasecmp (name, "Content-Length") == 0
         || g_ascii_strcasecmp (name, "Transfer-Encoding") == 0;
}

/* Whether a comma-separated list in any @name field holds @item: written
 * here again rather than borrowed from ph-http.c. */
static gboolean
list_has (const PhHttpHeaders *headers, const char *name, const char *item)
{
  for (guint i = 0; i < ph_http_headers_get_len (headers); i++)
    {
      Field h = field_at (headers, i);
      g_auto (GStrv) items = NULL;

      if (g_ascii_strcasecmp (h.name, name) != 0)
        continue;
      items = g_strsplit (h.value, ",", -1);
      for (guint j = 0; items[j] != NULL; j++)
        if (g_ascii_strcasecmp (g_strstrip (items[j]), item) == 0)
          return TRUE;
    }
  return FALSE;
}

static gboolean
is_hop_by_hop (const PhHttpHeaders *headers, const char *name)
{
  for (gsize i = 0; i < G_N_ELEMENTS (hop_by_hop); i++)
    if (g_ascii_strcasecmp (name, hop_by_hop[i]) == 0)
      return TRUE;
  return list_has (headers, "Connection", name);
}

/* What the fields say about framing, read again: -2 when Content-Length
 * values disagree or are not numbers (the parser must have refused). */
static gint64
expected_content_length (const PhHttpHeaders *headers)
{
  gint64 cl = -1;

  for (guint i = 0; i < ph_http_headers_get_len (headers); i++)
    {
      Field h = field_at (headers, i);
      g_auto (GStrv) items = NULL;

      if (g_ascii_strcasecmp (h.name, "Content-Length") != 0)
        continue;
      items = g_strsplit (h.value, ",", -1);
      for (guint j = 0; items[j] != NULL; j++)
        {
          const char *v = g_strstrip (items[j]);
          guint64 n = 0;

          if (!g_ascii_string_to_unsigned (v, 10, 0, G_MAXINT64, &n, NULL)
              || strspn (v, "0123456789") != strlen (v))
            return -2;
          if (cl >= 0 && (guint64) cl != n)
            return -2;
          cl = (gint64) n;
        }
    }
  return cl;
}

/* The last transfer coding named, or NULL with no Transfer-Encoding. */
static char *
last_coding (const PhHttpHeaders *headers, gboolean *present)
{
  char *last = NULL;

  *present = FALSE;
  for (guint i = 0; i < ph_http_headers_get_len (headers); i++)
    {
      Field h = field_at (headers, i);
      g_auto (GStrv) items = NULL;

      if (g_ascii_strcasecmp (h.name, "Transfer-Encoding") != 0)
        continue;
      *present = TRUE;
      items = g_strsplit (h.value, ",", -1);
      for (guint j = 0; items[j] != NULL; j++)
        if (*g_strstrip (items[j]) != '\0')
          {
            g_free (last);
            last = g_strdup (items[j]);
          }
    }
  return last;
}

static void
assert_same_response (const PhHttpResponse *a, const PhHttpResponse *b)
{
  g_assert_cmpuint (ph_http_response_get_minor (a), ==, ph_http_response_get_minor (b));
  g_assert_cmpuint (ph_http_response_get_status (a), ==, ph_http_response_get_status (b));
  g_assert_cmpstr (ph_http_response_get_reason (a), ==, ph_http_response_get_reason (b));
  g_assert_cmpstr (ph_http_response_get_transfer_encoding (a), ==,
                   ph_http_response_get_transfer_encoding (b));
  g_assert_cmpint (ph_http_response_get_content_length (a), ==,
                   ph_http_response_get_content_length (b));
  g_assert_cmpint (ph_http_response_get_chunked (a), ==, ph_http_response_get_chunked (b));
  g_assert_cmpint (ph_http_response_get_keep_alive (a), ==, ph_http_response_get_keep_alive (b));
  g_assert_cmpuint (ph_http_headers_get_len (ph_http_response_get_headers (a)), ==,
                    ph_http_headers_get_len (ph_http_response_get_headers (b)));
  for (guint i = 0; i < ph_http_headers_get_len (ph_http_response_get_headers (a)); i++)
    {
      g_assert_cmpstr (header_name (ph_http_response_get_headers (a), i), ==,
                       header_name (ph_http_response_get_headers (b), i));
      g_assert_cmpstr (header_value (ph_http_response_get_headers (a), i), ==,
                       header_value (ph_http_response_get_headers (b), i));
    }
}

/* A refusal becomes a 502 whose body quotes the reason on one line. */
static void
check_refusal (const char *reason)
{
  g_autofree char *msg = NULL;
  g_autoptr (GString) answer = NULL;
  g_autoptr (PhHttpResponse) resp = NULL;
  g_autofree char *why = NULL;
  gsize consumed = 0;

  g_assert_nonnull (reason);
  g_assert_cmpstr (reason, !=, "");
  g_assert_null (strpbrk (reason, "\r\n"));
  msg = g_strdup_printf ("the cloud proxy sent a malformed response: %s", reason);
  answer = ph_http_build_error (502, "upstream-protocol", msg);
  g_assert_cmpint (ph_http_response_parse (answer->str, answer->len, NULL, &resp, &consumed, &why),
                   ==, PH_HTTP_PARSE_DONE);
  g_assert_cmpint (ph_http_response_get_content_length (resp), ==,
                   (gint64) (answer->len - consumed));
}

/* The fields as parsed: tokens for names, values trimmed and one line. */
static void
check_fields (const PhHttpHeaders *headers)
{
  for (guint i = 0; i < ph_http_headers_get_len (headers); i++)
    {
      Field h = field_at (headers, i);
      gsize vlen = strlen (h.value);

      g_assert_cmpuint (strlen (h.name), >, 0);
      for (const char *c = h.name; *c; c++)
        g_assert_true (g_ascii_isalnum (*c) || strchr ("!#$%&'*+-.^_`|~", *c) != NULL);
      for (const char *c = h.value; *c; c++)
        g_assert_true (*c == '\t' || (guchar) *c >= 0x20);
      g_assert_null (strchr (h.value, 0x7f));
      if (vlen > 0)
        {
          g_assert_true (h.value[0] != ' ' && h.value[0] != '\t');
          g_assert_true (h.value[vlen - 1] != ' ' && h.value[vlen - 1] != '\t');
        }
    }
}

/* The head passed to the client: one valid response with the same status
 * and body framing, end-to-end fields in their order (@e2e: their indexes
 * in @resp), no hop-by-hop field but the Connection and Transfer-Encoding
 * it writes itself. */
static void
check_forward (const PhHttpResponse *resp, GArray *e2e, gboolean keep_alive)
{
  g_autoptr (GString) fwd = ph_http_response_build_forward (resp, keep_alive);
  g_autoptr (GString) again = NULL;
  g_autoptr (PhHttpResponse) out = NULL;
  g_autofree char *why = NULL;
  gsize n = 0;
  guint j = 0;

  if (ph_http_response_parse (fwd->str, fwd->len, &relaxed_limits, &out, &n, &why)
      != PH_HTTP_PARSE_DONE)
    g_error ("forwarded response refused (%s):\n%s", why, fwd->str);
  g_assert_cmpuint (n, ==, fwd->len);
  g_assert_cmpuint (ph_http_response_get_minor (out), ==, 1);
  g_assert_cmpuint (ph_http_response_get_status (out), ==, ph_http_response_get_status (resp));
  g_assert_cmpstr (ph_http_response_get_reason (out), ==, ph_http_response_get_reason (resp));
  g_assert_cmpint (ph_http_response_get_chunked (out), ==, ph_http_response_get_chunked (resp));
  g_assert_cmpint (ph_http_response_get_content_length (out), ==,
                   ph_http_response_get_content_length (resp));
  g_assert_cmpstr (ph_http_response_get_transfer_encoding (out), ==,
                   ph_http_response_get_transfer_encoding (resp));
  g_assert_cmpint (ph_http_response_has_body (out, "GET"), ==,
                   ph_http_response_has_body (resp, "GET"));
  /* RFC 9112 §6.3: no Content-Length beside a transfer coding. */
  g_assert_cmpuint (ph_http_header_count (ph_http_response_get_headers (out), "Transfer-Encoding"),
                    ==, ph_http_response_get_transfer_encoding (resp) != NULL ? 1 : 0);
  g_assert_cmpuint (ph_http_header_count (ph_http_response_get_headers (out), "Content-Length"), ==,
                    ph_http_response_get_transfer_encoding (resp) == NULL
                            && ph_http_response_get_content_length (resp) >= 0
                        ? 1
                        : 0);
  if (ph_http_response_get_status (resp) >= 200)
    {
      g_assert_cmpuint (ph_http_header_count (ph_http_response_get_headers (out), "Connection"), ==,
                        1);
      g_assert_cmpstr (ph_http_header_get (ph_http_response_get_headers (out), "Connection"), ==,
                       keep_alive ? "keep-alive" : "close");
      g_assert_cmpint (ph_http_response_get_keep_alive (out), ==, keep_alive);
    }
  else
    g_assert_cmpuint (ph_http_header_count (ph_http_response_get_headers (out), "Connection"), ==,
                      0);

  /* Every other field is one of @resp's end-to-end fields, all of them in
   * their order. */
  for (guint i = 0; i < ph_http_headers_get_len (ph_http_response_get_headers (out)); i++)
    {
      Field h = field_at (ph_http_response_get_headers (out), i);
      Field o;

      if (is_framing (h.name) || g_ascii_strcasecmp (h.name, "Connection") == 0)
        continue;
      g_assert_cmpuint (j, <, e2e->len);
      o = field_at (ph_http_response_get_headers (resp), g_array_index (e2e, guint, j));
      g_assert_cmpstr (h.name, ==, o.name);
      g_assert_cmpstr (h.value, ==, o.value);
      j++;
    }
  g_assert_cmpuint (j, ==, e2e->len);

  /* Forwarding is a fixed point: the client's head forwarded again is
   * the same bytes. */
  again = ph_http_response_build_forward (out, keep_alive);
  g_assert_cmpstr (again->str, ==, fwd->str);
}

/* Checks the head at the start of @buf; returns its length, 0 if none. */
static gsize
check_head (const char *buf, gsize len, const PhHttpLimits *limits, guint *status)
{
  g_autoptr (PhHttpResponse) resp = NULL;
  g_autoptr (PhHttpResponse) twice = NULL;
  g_autofree char *reason = NULL;
  g_autofree char *reason2 = NULL;
  g_autofree char *coding = NULL;
  gsize consumed = 0, consumed2 = 0;
  gboolean has_te = FALSE;
  gint64 cl;
  PhHttpParseResult r = ph_http_response_parse (buf, len, limits, &resp, &consumed, &reason);

  /* Deterministic: the same bytes, the same answer. */
  g_assert_cmpint (ph_http_response_parse (buf, len, limits, &twice, &consumed2, &reason2), ==, r);
  if (r == PH_HTTP_PARSE_ERROR)
    {
      g_assert_null (resp);
      g_assert_cmpstr (reason, ==, reason2);
      check_refusal (reason);
      return 0;
    }
  g_assert_null (reason);
  if (r == PH_HTTP_PARSE_INCOMPLETE)
    {
      g_assert_null (resp);
      /* Never buffered past the limit while waiting for more. */
      g_assert_cmpuint (len, <=, limits->max_head);
      return 0;
    }

  g_assert_cmpint (r, ==, PH_HTTP_PARSE_DONE);
  g_assert_cmpuint (consumed, ==, consumed2);
  assert_same_response (resp, twice);
  g_assert_cmpuint (consumed, >=, strlen ("HTTP/1.1 200\r\n\r\n"));
  g_assert_cmpuint (consumed, <=, len);
  g_assert_cmpuint (consumed, <=, limits->max_head);
  g_assert_true (memcmp (buf + consumed - 4, "\r\n\r\n", 4) == 0);
  g_assert_cmpuint (ph_http_response_get_status (resp), >=, 100);
  g_assert_cmpuint (ph_http_response_get_status (resp), <=, 599);
  g_assert_cmpuint (ph_http_response_get_minor (resp), <=, 9);
  g_assert_nonnull (ph_http_response_get_reason (resp));
  g_assert_null (strpbrk (ph_http_response_get_reason (resp), "\r\n"));
  g_assert_cmpuint (ph_http_headers_get_len (ph_http_response_get_headers (resp)), <=,
                    limits->max_headers);
  check_fields (ph_http_response_get_headers (resp));

  /* Framing, read again from the fields: conflicting lengths were refused,
   * and a transfer coding overrides any length. */
  cl = expected_content_length (ph_http_response_get_headers (resp));
  coding = last_coding (ph_http_response_get_headers (resp), &has_te);
  g_assert_cmpint (cl, !=, -2);
  g_assert_true (!ph_http_response_get_chunked (resp)
                 || ph_http_response_get_content_length (resp) == -1);
  if (has_te)
    {
      g_assert_cmpint (ph_http_response_get_content_length (resp), ==, -1);
      g_assert_cmpint (ph_http_response_get_chunked (resp), ==,
                       coding != NULL && g_ascii_strcasecmp (coding, "chunked") == 0);
      /* A Transfer-Encoding that names no coding is refused. */
      g_assert_nonnull (coding);
      g_assert_nonnull (ph_http_response_get_transfer_encoding (resp));
    }
  else
    {
      g_assert_false (ph_http_response_get_chunked (resp));
      g_assert_null (ph_http_response_get_transfer_encoding (resp));
      g_assert_cmpint (ph_http_response_get_content_length (resp), ==, cl);
    }
  if (ph_http_response_get_minor (resp) >= 1)
    g_assert_cmpint (ph_http_response_get_keep_alive (resp), ==,
                     !list_has (ph_http_response_get_headers (resp), "Connection", "close"));
  else
    g_assert_cmpint (ph_http_response_get_keep_alive (resp), ==,
                     list_has (ph_http_response_get_headers (resp), "Connection", "keep-alive"));

  /* RFC 9110 §6.4.1: no body for HEAD, 1xx, 204 and 304, whatever the
   * fields say. */
  {
    gboolean bodiless = ph_http_response_get_status (resp) < 200
                        || ph_http_response_get_status (resp) == 204
                        || ph_http_response_get_status (resp) == 304;

    g_assert_false (ph_http_response_has_body (resp, "HEAD"));
    g_assert_cmpint (ph_http_response_has_body (resp, "GET"), ==, !bodiless);
    g_assert_cmpint (ph_http_response_has_body (resp, "POST"), ==, !bodiless);
    g_assert_cmpint (ph_http_response_has_body (resp, "CONNECT"), ==, !bodiless);
  }

  {
    g_autoptr (GArray) e2e = g_array_new (FALSE, FALSE, sizeof (guint));

    for (guint i = 0; i < ph_http_headers_get_len (ph_http_response_get_headers (resp)); i++)
      {
        const char *name = header_name (ph_http_response_get_headers (resp), i);

        if (!is_framing (name) && !is_hop_by_hop (ph_http_response_get_headers (resp), name))
          g_array_append_val (e2e, i);
      }
    check_forward (resp, e2e, TRUE);
    check_forward (resp, e2e, FALSE);
  }

  /* The head alone parses the same, and any shorter prefix asks for more. */
  {
    g_autofree char *head = g_memdup2 (buf, consumed);
    g_autoptr (PhHttpResponse) alone = NULL;
    g_autofree char *why = NULL;
    gsize n = 0;

    g_assert_cmpint (ph_http_response_parse (head, consumed, limits, &alone, &n, &why), ==,
                     PH_HTTP_PARSE_DONE);
    g_assert_cmpuint (n, ==, consumed);
    assert_same_response (resp, alone);
    g_clear_pointer (&alone, ph_http_response_free);
    for (gsize cut = consumed - 1;; cut /= 2)
      {
        g_assert_cmpint (ph_http_response_parse (head, cut, limits, &alone, &n, &why), ==,
                         PH_HTTP_PARSE_INCOMPLETE);
        if (cut == 0)
          break;
      }
  }
  *status = ph_http_response_get_status (resp);
  return consumed;
}

int
LLVMFuzzerTestOneInput (const uint8_t *data, size_t size)
{
  /* An exact-size copy, so ASan sees any read past the end. */
  g_autofree char *buf = g_malloc (MAX (size, 1));
  gsize pos = 0;
  guint status = 0;

  memcpy (buf, data, size);

  /* As the agent reads the cloud proxy's answer: interim heads are passed
   * on and the next head read from what follows; 101 and final heads end
   * it. However many there are, each is a whole head of its own. */
  for (;;)
    {
      gsize n = check_head (buf + pos, size - pos, &ph_http_default_limits, &status);

      if (n == 0)
        break;
      g_assert_cmpuint (n, <=, size - pos);
      pos += n;
      if (status >= 200 || status == 101)
        break;
    }
  (void) check_head (buf, size, &tight_limits, &status);
  return 0;
}

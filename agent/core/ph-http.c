/* SPDX-License-Identifier: GPL-2.0-or-later */
/* ph-http.c: a strict HTTP/1.1 head parser and body framer. Strict because a
 * proxy that reads a message differently from its next hop can be used to
 * smuggle requests (RFC 9112 §6.3, §11.2): whatever is ambiguous is refused. */
#define G_LOG_DOMAIN "pinhole-http"

#include "ph-http.h"

#include <string.h>
#include <gio/gio.h>

struct _PhHttpHeaders
{
  GArray *fields; /* of PhHttpHeader */
};

typedef struct
{
  char *name;
  char *value;
} PhHttpHeader;

struct _PhHttpRequest
{
  char *method;
  char *target;
  guint minor; /* HTTP/1.<minor> */
  PhHttpHeaders headers;

  PhHttpTargetKind kind;
  char *host; /* without brackets */
  guint16 port;
  char *authority; /* host:port as it goes on the wire ([v6]:port) */
  char *path;      /* absolute-form: path and query, "/" at least */

  gint64 content_length; /* -1: none */
  gboolean chunked;
  gboolean keep_alive;
};

struct _PhHttpResponse
{
  guint minor;
  guint status;
  char *reason;
  PhHttpHeaders headers;
  char *transfer_encoding; /* as received, codings joined; NULL if none */

  gint64 content_length;
  gboolean chunked;
  gboolean keep_alive; /* per version and Connection; a body that ends at
                        * close also ends the connection, which only the
                        * caller can tell (HEAD, 204, 304) */
};

struct _PhBodyScanner
{
  PhBodyMode mode;
  guint64 remaining; /* LENGTH: body bytes; CHUNKED: bytes of current chunk data */
  int state;         /* CHUNKED: position in the chunk grammar */
  guint line_len;    /* CHUNKED: bytes in the current size/trailer line */
  guint trailer_len; /* CHUNKED: bytes of the trailer section so far */
  gboolean done;
};

const PhHttpLimits ph_http_default_limits = {
  .max_head = 64 * 1024,
  .max_target = 8 * 1024,
  .max_headers = 100,
};

/* tchar of RFC 9110 §5.6.2; strchr() would also find the terminating NUL */
static gboolean
is_tchar (guchar c)
{
  return g_ascii_isalnum (c) || (c != '\0' && strchr ("!#$%&'*+-.^_`|~", c) != NULL);
}

static gboolean
is_token (const char *s, gsize len)
{
  if (len == 0)
    return FALSE;
  for (gsize i = 0; i < len; i++)
    if (!is_tchar (s[i]))
      return FALSE;
  return TRUE;
}

/* field-vchar / SP / HTAB / obs-text */
static gboolean
is_value_char (guchar c)
{
  return c == '\t' || (c >= 0x20 && c != 0x7f);
}

static void
header_clear (gpointer p)
{
  PhHttpHeader *h = p;
  g_free (h->name);
  g_free (h->value);
}

static GArray *
headers_new (void)
{
  GArray *a = g_array_new (FALSE, FALSE, sizeof (PhHttpHeader));
  g_array_set_clear_func (a, header_clear);
  return a;
}

static const char *
header_get (GArray *headers, const char *name)
{
  for (guint i = 0; i < headers->len; i++)
    {
      PhHttpHeader *h = &g_array_index (headers, PhHttpHeader, i);
      if (g_ascii_strcasecmp (h->name, name) == 0)
        return h->value;
    }
  return NULL;
}

static guint
header_count (GArray *headers, const char *name)
{
  guint n = 0;
  for (guint i = 0; i < headers->len; i++)
    n += g_ascii_strcasecmp (g_array_index (headers, PhHttpHeader, i).name, name) == 0;
  return n;
}

/* Whether the comma-separated list in any @name field holds @token. */
static gboolean
header_list_has (GArray *headers, const char *name, const char *token)
{
  for (guint i = 0; i < headers->len; i++)
    {
      PhHttpHeader *h = &g_array_index (headers, PhHttpHeader, i);
      g_auto (GStrv) items = NULL;

      if (g_ascii_strcasecmp (h->name, name) != 0)
        continue;
      items = g_strsplit (h->value, ",", -1);
      for (guint j = 0; items[j] != NULL; j++)
        if (g_ascii_strcasecmp (g_strstrip (items[j]), token) == 0)
          return TRUE;
    }
  return FALSE;
}

/* All values of @name joined with ", ", or NULL when absent. */
static char *
joined_values (GArray *headers, const char *name)
{
  GString *out = NULL;

  for (guint i = 0; i < headers->len; i++)
    {
      PhHttpHeader *h = &g_array_index (headers, PhHttpHeader, i);
      if (g_ascii_strcasecmp (h->name, name) != 0 || *h->value == '\0')
        continue;
      if (out == NULL)
        out = g_string_new (h->value);
      else
        g_string_append_printf (out, ", %s", h->value);
    }
  return out ? g_string_free (out, FALSE) : NULL;
}

static gboolean
header_is_hop_by_hop (GArray *headers, const char *name)
{
  /* "Close" is no field but a reserved name (RFC 9110 §18.4): sent beside
   * the "Connection: close" the agent writes, it would be named by it and
   * be hop-by-hop at the next hop (found by fuzz-http-response). */
  static const char *const fixed[] = {
    "Connection", "Proxy-Connection",    "Keep-Alive",         "TE",    "Transfer-Encoding",
    "Upgrade",    "Proxy-Authorization", "Proxy-Authenticate", "Close",
  };

  for (gsize i = 0; i < G_N_ELEMENTS (fixed); i++)
    if (g_ascii_strcasecmp (name, fixed[i]) == 0)
      return TRUE;
  return header_list_has (headers, "Connection", name);
}

/* Splits off the next CRLF-terminated line at *@pos. Returns 1 with the
 * line, 0 when more bytes are needed, -1 on a bare CR or LF. */
static int
next_line (const char *buf, gsize len, gsize *pos, const char **line, gsize *line_len)
{
  const char *start, *lf, *cr;
  gsize n;

  /* Nothing yet: and memchr() is not given an empty (perhaps NULL) buffer. */
  if (*pos >= len)
    return 0;
  start = buf + *pos;
  lf = memchr (start, '\n', len - *pos);
  if (lf == NULL)
    {
      /* A CR not followed by LF is malformed as soon as we see it. */
      cr = memchr (start, '\r', len - *pos);
      if (cr != NULL && cr + 1 < buf + len)
        return -1;
      return 0;
    }
  if (lf == start || lf[-1] != '\r')
    return -1;
  n = lf - start - 1;
  if (memchr (start, '\r', n) != NULL)
    return -1;
  *line = start;
  *line_len = n;
  *pos += n + 2;
  return 1;
}

typedef struct
{
  guint status;
  char *reason;
} ParseError;

static PhHttpParseResult G_GNUC_PRINTF (3, 4)
    fail (ParseError *e, guint status, const char *fmt, ...)
{
  va_list args;
  va_start (args, fmt);
  e->status = status;
  e->reason = g_strdup_vprintf (fmt, args);
  va_end (args);
  return PH_HTTP_PARSE_ERROR;
}

/* Parses header lines from *@pos up to and including the empty line. */
static PhHttpParseResult
parse_fields (const char *buf, gsize len, gsize *pos, const PhHttpLimits *limits, GArray *headers,
              ParseError *e)
{
  for (;;)
    {
      const char *line = NULL;
      gsize n = 0;
      const char *colon;
      gsize vstart, vend;
      PhHttpHeader h;
      int r = next_line (buf, len, pos, &line, &n);

      if (r < 0)
        return fail (e, 400, "malformed line ending in the header (bare CR or LF)");
      if (r == 0)
        return *pos + (len - *pos) > limits->max_head
                   ? fail (e, 431, "request head exceeds %zu bytes", limits->max_head)
                   : PH_HTTP_PARSE_INCOMPLETE;
      if (*pos > limits->max_head)
        return fail (e, 431, "request head exceeds %zu bytes", limits->max_head);
      if (n == 0)
        return PH_HTTP_PARSE_DONE;
      if (line[0] == ' ' || line[0] == '\t')
        return fail (e, 400, "obsolete line folding (obs-fold) in a header is not accepted");
      colon = memchr (line, ':', n);
      if (colon == NULL)
        return fail (e, 400, "header line without a colon");
      if (!is_token (line, colon - line))
        return fail (e, 400, "invalid header name (only token characters, no whitespace)");
      vstart = colon - line + 1;
      vend = n;
      while (vstart < vend && (line[vstart] == ' ' || line[vstart] == '\t'))
        vstart++;
      while (vend > vstart && (line[vend - 1] == ' ' || line[vend - 1] == '\t'))
        vend--;
      for (gsize i = vstart; i < vend; i++)
        if (!is_value_char (line[i]))
          return fail (e, 400, "control character in the value of header %.*s",
                       (int) MIN (colon - line, 64), line);
      if (headers->len >= limits->max_headers)
        return fail (e, 431, "more than %u header fields", limits->max_headers);
      h.name = g_strndup (line, colon - line);
      h.value = g_strndup (line + vstart, vend - vstart);
      g_array_append_val (headers, h);
    }
}

/* Content-Length and Transfer-Encoding, with every ambiguity refused. */
static PhHttpParseResult
parse_framing (GArray *headers, guint minor, gboolean is_request, gint64 *content_length,
               gboolean *chunked, ParseError *e)
{
  gint64 cl = -1;
  gboolean has_te = FALSE;
  gboolean any_coding = FALSE;

  *chunked = FALSE;
  for (guint i = 0; i < headers->len; i++)
    {
      PhHttpHeader *h = &g_array_index (headers, PhHttpHeader, i);
      g_auto (GStrv) items = NULL;

      if (g_ascii_strcasecmp (h->name, "Transfer-Encoding") == 0)
        {
          items = g_strsplit (h->value, ",", -1);
          for (guint j = 0; items[j] != NULL; j++)
            {
              const char *coding = g_strstrip (items[j]);
              if (*coding == '\0')
                continue;
              any_coding = TRUE;
              if (*chunked)
                return fail (e, 400, "transfer coding after chunked");
              if (g_ascii_strcasecmp (coding, "chunked") == 0)
                *chunked = TRUE;
              else if (is_request)
                return fail (e, 501, "transfer coding “%s” is not supported", coding);
            }
          has_te = TRUE;
        }
      else if (g_ascii_strcasecmp (h->name, "Content-Length") == 0)
        {
          if (*h->value == '\0')
            return fail (e, 400, "empty Content-Length");
          items = g_strsplit (h->value, ",", -1);
          for (guint j = 0; items[j] != NULL; j++)
            {
              const char *v = g_strstrip (items[j]);
              guint64 n = 0;
              if (*v == '\0' || strspn (v, "0123456789") != strlen (v) || strlen (v) > 18
                  || !g_ascii_string_to_unsigned (v, 10, 0, G_MAXINT64, &n, NULL))
                return fail (e, 400, "invalid Content-Length “%s”", h->value);
              if (cl >= 0 && (guint64) cl != n)
                return fail (e, 400, "conflicting Content-Length values");
              cl = (gint64) n;
            }
        }
    }
  if (has_te && cl >= 0 && is_request)
    return fail (e, 400, "both Content-Length and Transfer-Encoding: refused (request smuggling)");
  if (has_te && minor == 0 && is_request)
    return fail (e, 400, "Transfer-Encoding in an HTTP/1.0 request");
  if (has_te && is_request && !*chunked)
    return fail (e, 400, "Transfer-Encoding without chunked as the final coding");
  /* Found by fuzz-http-response: "Transfer-Encoding: ," voided Content-Length
   * and went to the client as a coding that is none. */
  if (has_te && !any_coding)
    return fail (e, 400, "Transfer-Encoding names no transfer coding");
  /* A response with both: Transfer-Encoding wins (RFC 9112 §6.3). */
  *content_length = has_te ? -1 : cl;
  return PH_HTTP_PARSE_DONE;
}

static gboolean
parse_version (const char *s, gsize len, guint *minor, gboolean *major_ok)
{
  if (len != 8 || memcmp (s, "HTTP/", 5) != 0 || !g_ascii_isdigit (s[5]) || s[6] != '.'
      || !g_ascii_isdigit (s[7]))
    return FALSE;
  *major_ok = s[5] == '1';
  *minor = s[7] - '0';
  return TRUE;
}

static gboolean
valid_reg_name (const char *s, gsize len)
{
  if (len == 0 || len > 253)
    return FALSE;
  for (gsize i = 0; i < len; i++)
    if (!g_ascii_isalnum (s[i]) && s[i] != '-' && s[i] != '.' && s[i] != '_')
      return FALSE;
  return TRUE;
}

/* host [":" port] with IPv6 in brackets; sets host (unbracketed) and port. */
static gboolean
parse_authority (const char *s, gsize len, gboolean port_required, guint16 default_port,
                 char **host, guint16 *port)
{
  const char *host_start = s, *host_end, *port_start = NULL;
  guint64 p = default_port;

  if (len > 0 && s[0] == '[')
    {
      const char *close = memchr (s, ']', len);
      g_autofree char *literal = NULL;
      g_autoptr (GInetAddress) addr = NULL;

      if (close == NULL)
        return FALSE;
      literal = g_strndup (s + 1, close - s - 1);
      addr = g_inet_address_new_from_string (literal);
      if (addr == NULL || g_inet_address_get_family (addr) != G_SOCKET_FAMILY_IPV6)
        return FALSE;
      host_start = s + 1;
      host_end = close;
      if (close + 1 < s + len)
        {
          if (close[1] != ':')
            return FALSE;
          port_start = close + 2;
        }
    }
  else
    {
      const char *colon = memchr (s, ':', len);
      host_end = colon ? colon : s + len;
      if (colon != NULL)
        port_start = colon + 1;
      if (!valid_reg_name (host_start, host_end - host_start))
        return FALSE;
    }
  if (port_start != NULL)
    {
      g_autofree char *ps = g_strndup (port_start, s + len - port_start);
      if (*ps == '\0' || strspn (ps, "0123456789") != strlen (ps)
          || !g_ascii_string_to_unsigned (ps, 10, 1, 65535, &p, NULL))
        return FALSE;
    }
  else if (port_required)
    return FALSE;
  *host = g_strndup (host_start, host_end - host_start);
  *port = (guint16) p;
  return TRUE;
}

static PhHttpParseResult
classify_target (PhHttpRequest *req, ParseError *e)
{
  const char *t = req->target;
  gsize len = strlen (t);

  if (g_str_equal (req->method, "CONNECT"))
    {
      if (!parse_authority (t, len, TRUE, 0, &req->host, &req->port))
        return fail (e, 400, "CONNECT needs host:port, got “%.200s”", t);
      req->kind = PH_HTTP_CONNECT;
      req->authority = g_strdup (t);
      return PH_HTTP_PARSE_DONE;
    }
  if (t[0] == '/' || g_str_equal (t, "*"))
    {
      req->kind = PH_HTTP_ORIGIN;
      req->path = g_strdup (t);
      return PH_HTTP_PARSE_DONE;
    }
  if (g_ascii_strncasecmp (t, "http://", 7) == 0)
    {
      const char *auth = t + 7;
      gsize alen = strcspn (auth, "/?#");
      const char *rest = auth + alen;

      if (memchr (auth, '@', alen) != NULL)
        return fail (e, 400, "user information in the request target is not accepted");
      if (strchr (t, '#') != NULL)
        return fail (e, 400, "fragment in the request target");
      if (!parse_authority (auth, alen, FALSE, 80, &req->host, &req->port))
        return fail (e, 400, "invalid host in “%.200s”", t);
      req->kind = PH_HTTP_ABSOLUTE;
      req->authority = g_strndup (auth, alen);
      req->path = *rest == '/' ? g_strdup (rest) : g_strconcat ("/", rest, NULL);
      return PH_HTTP_PARSE_DONE;
    }
  if (strstr (t, "://") != NULL)
    return fail (e, 400, "only http:// targets are forwarded; HTTPS goes through CONNECT");
  return fail (e, 400, "request target “%.200s” is not a URL", t);
}

/* The request head without the bookkeeping: errors go to @e. */
static PhHttpParseResult
request_parse (const char *buf, gsize len, const PhHttpLimits *limits, PhHttpRequest *req,
               gsize *consumed, ParseError *e)
{
  PhHttpParseResult r;
  gsize pos = 0;
  const char *line = NULL;
  gsize n = 0;
  const char *sp1, *sp2;
  gboolean major_ok = FALSE;
  int lr;

  /* RFC 9112 §2.2: ignore at least one empty line before the request. */
  for (int skipped = 0;; skipped++)
    {
      lr = next_line (buf, len, &pos, &line, &n);
      if (lr == 0)
        return len - pos > limits->max_target + 64
                   ? fail (e, 414, "request line longer than %zu bytes", limits->max_target)
                   : PH_HTTP_PARSE_INCOMPLETE;
      if (lr < 0)
        return fail (e, 400, "malformed line ending in the request line");
      if (n > 0)
        break;
      if (skipped >= 4)
        return fail (e, 400, "empty lines instead of a request");
    }

  sp1 = memchr (line, ' ', n);
  sp2 = sp1 ? memchr (sp1 + 1, ' ', line + n - sp1 - 1) : NULL;
  if (sp1 == NULL || sp2 == NULL || memchr (sp2 + 1, ' ', line + n - sp2 - 1) != NULL)
    return fail (e, 400, "request line is not METHOD TARGET HTTP/1.1");
  if (!is_token (line, sp1 - line) || sp1 - line > 32)
    return fail (e, 400, "invalid method");
  if ((gsize) (sp2 - sp1 - 1) > limits->max_target)
    return fail (e, 414, "request target longer than %zu bytes", limits->max_target);
  for (const char *c = sp1 + 1; c < sp2; c++)
    if ((guchar) *c <= 0x20 || (guchar) *c >= 0x7f)
      return fail (e, 400, "invalid character in the request target");
  if (sp2 == sp1 + 1)
    return fail (e, 400, "empty request target");
  if (!parse_version (sp2 + 1, line + n - sp2 - 1, &req->minor, &major_ok))
    return fail (e, 400, "invalid HTTP version");
  if (!major_ok || req->minor > 1)
    return fail (e, 505, "only HTTP/1.0 and HTTP/1.1 are spoken here");
  req->method = g_strndup (line, sp1 - line);
  req->target = g_strndup (sp1 + 1, sp2 - sp1 - 1);

  r = parse_fields (buf, len, &pos, limits, req->headers.fields, e);
  if (r != PH_HTTP_PARSE_DONE)
    return r;
  if (header_count (req->headers.fields, "Host") > 1)
    return fail (e, 400, "more than one Host header");
  r = parse_framing (req->headers.fields, req->minor, TRUE, &req->content_length, &req->chunked, e);
  if (r != PH_HTTP_PARSE_DONE)
    return r;
  r = classify_target (req, e);
  if (r != PH_HTTP_PARSE_DONE)
    return r;
  if (req->kind == PH_HTTP_ABSOLUTE && req->minor == 1
      && header_count (req->headers.fields, "Host") == 0)
    return fail (e, 400, "HTTP/1.1 request without a Host header");
  if (req->kind == PH_HTTP_CONNECT && (req->chunked || req->content_length > 0))
    return fail (e, 400, "CONNECT with a body");
  if (req->minor >= 1)
    req->keep_alive = !header_list_has (req->headers.fields, "Connection", "close");
  else
    req->keep_alive = header_list_has (req->headers.fields, "Connection", "keep-alive");
  *consumed = pos;
  return PH_HTTP_PARSE_DONE;
}

PhHttpParseResult
ph_http_request_parse (const char *buf, gsize len, const PhHttpLimits *limits, PhHttpRequest **out,
                       gsize *consumed, guint *status, char **reason)
{
  g_autoptr (PhHttpRequest) req = g_new0 (PhHttpRequest, 1);
  ParseError e = { 0, NULL };
  PhHttpParseResult r;

  req->headers.fields = headers_new ();
  req->content_length = -1;
  r = request_parse (buf, len, limits ? limits : &ph_http_default_limits, req, consumed, &e);
  if (r == PH_HTTP_PARSE_DONE)
    *out = g_steal_pointer (&req);
  else if (r == PH_HTTP_PARSE_ERROR)
    {
      *status = e.status;
      *reason = e.reason;
    }
  return r;
}

void
ph_http_request_free (PhHttpRequest *req)
{
  if (req == NULL)
    return;
  g_free (req->method);
  g_free (req->target);
  g_clear_pointer (&req->headers.fields, g_array_unref);
  g_free (req->host);
  g_free (req->authority);
  g_free (req->path);
  g_free (req);
}

PhHttpParseResult
ph_http_response_parse (const char *buf, gsize len, const PhHttpLimits *limits,
                        PhHttpResponse **out, gsize *consumed, char **reason)
{
  g_autoptr (PhHttpResponse) resp = NULL;
  ParseError e = { 0, NULL };
  PhHttpParseResult r;
  gsize pos = 0;
  const char *line = NULL;
  gsize n = 0;
  gboolean major_ok = FALSE;
  guint64 code = 0;
  char digits[4];
  int lr;

  limits = limits ? limits : &ph_http_default_limits;
  lr = next_line (buf, len, &pos, &line, &n);
  if (lr == 0)
    {
      if (len <= limits->max_head)
        return PH_HTTP_PARSE_INCOMPLETE;
      *reason = g_strdup ("status line too long");
      return PH_HTTP_PARSE_ERROR;
    }
  if (lr < 0 || n < 12 || !parse_version (line, 8, &(guint){ 0 }, &major_ok) || !major_ok
      || line[8] != ' ' || (n > 12 && line[12] != ' '))
    {
      *reason = g_strdup ("malformed status line");
      return PH_HTTP_PARSE_ERROR;
    }
  memcpy (digits, line + 9, 3);
  digits[3] = '\0';
  if (strspn (digits, "0123456789") != 3
      || !g_ascii_string_to_unsigned (digits, 10, 100, 599, &code, NULL))
    {
      *reason = g_strdup ("malformed status code");
      return PH_HTTP_PARSE_ERROR;
    }
  resp = g_new0 (PhHttpResponse, 1);
  resp->headers.fields = headers_new ();
  resp->minor = line[7] - '0';
  resp->status = (guint) code;
  for (gsize i = 13; i < n; i++)
    if (!is_value_char (line[i]))
      {
        *reason = g_strdup ("control character in the reason phrase");
        return PH_HTTP_PARSE_ERROR;
      }
  resp->reason = n > 13 ? g_strndup (line + 13, n - 13) : g_strdup ("");

  r = parse_fields (buf, len, &pos, limits, resp->headers.fields, &e);
  if (r == PH_HTTP_PARSE_DONE)
    r = parse_framing (resp->headers.fields, resp->minor, FALSE, &resp->content_length,
                       &resp->chunked, &e);
  if (r == PH_HTTP_PARSE_ERROR)
    {
      *reason = e.reason;
      return r;
    }
  if (r == PH_HTTP_PARSE_INCOMPLETE)
    return r;
  resp->transfer_encoding = joined_values (resp->headers.fields, "Transfer-Encoding");
  if (resp->minor >= 1)
    resp->keep_alive = !header_list_has (resp->headers.fields, "Connection", "close");
  else
    resp->keep_alive = header_list_has (resp->headers.fields, "Connection", "keep-alive");
  *consumed = pos;
  *out = g_steal_pointer (&resp);
  return PH_HTTP_PARSE_DONE;
}

void
ph_http_response_free (PhHttpResponse *resp)
{
  if (resp == NULL)
    return;
  g_free (resp->reason);
  g_free (resp->transfer_encoding);
  g_clear_pointer (&resp->headers.fields, g_array_unref);
  g_free (resp);
}

gboolean
ph_http_response_has_body (const PhHttpResponse *resp, const char *method)
{
  if (g_strcmp0 (method, "HEAD") == 0)
    return FALSE;
  if (resp->status < 200 || resp->status == 204 || resp->status == 304)
    return FALSE;
  return TRUE;
}

/* Copies end-to-end fields. Framing fields are left out even when not
 * hop-by-hop: the caller writes them once, from what the parser decided,
 * so a message cannot leave with framing other than the one relayed. */
static void
append_fields (GString *out, GArray *headers, gboolean skip_host)
{
  for (guint i = 0; i < headers->len; i++)
    {
      PhHttpHeader *h = &g_array_index (headers, PhHttpHeader, i);
      if (g_ascii_strcasecmp (h->name, "Content-Length") == 0
          || g_ascii_strcasecmp (h->name, "Transfer-Encoding") == 0)
        continue;
      if (header_is_hop_by_hop (headers, h->name))
        continue;
      if (skip_host && g_ascii_strcasecmp (h->name, "Host") == 0)
        continue;
      g_string_append_printf (out, "%s: %s\r\n", h->name, h->value);
    }
}

static GString *
build_request (const PhHttpRequest *req, const char *extra_fields, gboolean origin_form)
{
  GString *out = g_string_sized_new (512);

  g_string_append_printf (out, "%s %s%s%s HTTP/1.%u\r\nHost: %s\r\n", req->method,
                          origin_form ? "" : "http://", origin_form ? "" : req->authority,
                          req->path, req->minor, req->authority);
  append_fields (out, req->headers.fields, TRUE);
  if (req->chunked)
    g_string_append (out, "Transfer-Encoding: chunked\r\n");
  else if (req->content_length >= 0)
    g_string_append_printf (out, "Content-Length: %" G_GINT64_FORMAT "\r\n", req->content_length);
  if (extra_fields != NULL)
    g_string_append (out, extra_fields);
  if (req->minor == 0 && req->keep_alive)
    g_string_append (out, "Connection: keep-alive\r\n");
  g_string_append (out, "\r\n");
  return out;
}

GString *
ph_http_request_build_forward (const PhHttpRequest *req, const char *extra_fields)
{
  return build_request (req, extra_fields, FALSE);
}

GString *
ph_http_request_build_direct (const PhHttpRequest *req)
{
  return build_request (req, NULL, TRUE);
}

GString *
ph_http_response_build_forward (const PhHttpResponse *resp, gboolean keep_alive)
{
  GString *out = g_string_sized_new (512);

  g_string_append_printf (out, "HTTP/1.1 %u %s\r\n", resp->status, resp->reason);
  append_fields (out, resp->headers.fields, FALSE);
  if (resp->transfer_encoding != NULL)
    g_string_append_printf (out, "Transfer-Encoding: %s\r\n", resp->transfer_encoding);
  else if (resp->content_length >= 0)
    g_string_append_printf (out, "Content-Length: %" G_GINT64_FORMAT "\r\n", resp->content_length);
  if (resp->status >= 200)
    g_string_append (out, keep_alive ? "Connection: keep-alive\r\n" : "Connection: close\r\n");
  g_string_append (out, "\r\n");
  return out;
}

const char *
ph_http_reason_phrase (guint status)
{
  /* RFC 9110 §15's phrases; HTTP/2 answers have none, and go to HTTP/1.1 clients with these. */
  switch (status)
    {
      case 100:
        return "Continue";
      case 101:
        return "Switching Protocols";
      case 103:
        return "Early Hints";
      case 200:
        return "OK";
      case 201:
        return "Created";
      case 202:
        return "Accepted";
      case 204:
        return "No Content";
      case 206:
        return "Partial Content";
      case 301:
        return "Moved Permanently";
      case 302:
        return "Found";
      case 303:
        return "See Other";
      case 304:
        return "Not Modified";
      case 307:
        return "Temporary Redirect";
      case 308:
        return "Permanent Redirect";
      case 400:
        return "Bad Request";
      case 401:
        return "Unauthorized";
      case 403:
        return "Forbidden";
      case 404:
        return "Not Found";
      case 405:
        return "Method Not Allowed";
      case 407:
        return "Proxy Authentication Required";
      case 408:
        return "Request Timeout";
      case 409:
        return "Conflict";
      case 410:
        return "Gone";
      case 411:
        return "Length Required";
      case 412:
        return "Precondition Failed";
      case 413:
        return "Content Too Large";
      case 414:
        return "URI Too Long";
      case 415:
        return "Unsupported Media Type";
      case 416:
        return "Range Not Satisfiable";
      case 429:
        return "Too Many Requests";
      case 431:
        return "Request Header Fields Too Large";
      case 500:
        return "Internal Server Error";
      case 501:
        return "Not Implemented";
      case 502:
        return "Bad Gateway";
      case 503:
        return "Service Unavailable";
      case 504:
        return "Gateway Timeout";
      case 505:
        return "HTTP Version Not Supported";
      default:
        /* An empty phrase is valid (RFC 9112 §4), and better than a wrong one. */
        return status >= 400 ? "Error" : "";
    }
}

GString *
ph_http_build_error (guint status, const char *kind, const char *message)
{
  GString *out = g_string_sized_new (256);
  g_autofree char *body
      = g_strdup_printf ("%u %s: %s\n", status, ph_http_reason_phrase (status), message);

  /* One line: a message must not inject header or body lines. */
  g_strdelimit (body, "\r", ' ');
  for (char *p = body; *p && p[1]; p++)
    if (*p == '\n')
      *p = ' ';
  g_string_append_printf (out,
                          "HTTP/1.1 %u %s\r\n"
                          "Content-Type: text/plain; charset=utf-8\r\n"
                          "Content-Length: %zu\r\n"
                          "Cache-Control: no-store\r\n"
                          "X-Pinhole-Error: %s\r\n"
                          "Connection: close\r\n"
                          "\r\n%s",
                          status, ph_http_reason_phrase (status), strlen (body), kind, body);
  return out;
}

/* The chunked framing of RFC 9112 §7.1, one state per place in the grammar:
 *
 *   chunked-body = *chunk last-chunk trailer-section CRLF
 *   chunk        = chunk-size [ chunk-ext ] CRLF chunk-data CRLF
 *   last-chunk   = 1*("0") [ chunk-ext ] CRLF
 *   chunk-ext    = *( BWS ";" BWS chunk-ext-name [ BWS "=" BWS chunk-ext-val ] )
 *   chunk-ext-name = token,  chunk-ext-val = token / quoted-string
 *
 * The body is relayed verbatim, so whatever passes here must be read the
 * same way by the cloud proxy (Squid) and the origin. Where the RFC leaves
 * room, the choice is the strict one:
 * - whitespace after the size or after an extension only as BWS before a
 *   ";" (or, after a name, before "="): "5 \r\n" and "5;a \r\n" are refused,
 *   as Squid refuses "5 \r\n";
 * - CRLF only: a bare LF or CR ends nothing and is refused, in the size line
 *   as in the trailers (§7.1 has no leniency like §2.2's for start lines);
 * - at most CHUNK_SIZE_DIGITS hex digits, leading zeros included, so the
 *   size cannot overflow 64 bits;
 * - a size line of at most CHUNK_LINE_MAX bytes before its CR, extensions
 *   included; each trailer field line the same, and the whole trailer
 *   section (its final CRLF included) at most CHUNK_TRAILER_MAX bytes;
 * - trailer fields as parse_fields() takes head fields: a token, ":", then
 *   field-value characters; no whitespace before the colon, no obs-fold. */
enum
{
  CH_SIZE,            /* 1*HEXDIG */
  CH_EXT_BWS,         /* BWS that only a ";" may end */
  CH_EXT_NAME_BWS,    /* after ";": BWS, then a name */
  CH_EXT_NAME,        /* chunk-ext-name */
  CH_EXT_NAME_END,    /* BWS after a name: "=" or ";" follows */
  CH_EXT_VAL_BWS,     /* after "=": BWS, then a value */
  CH_EXT_TOKEN,       /* chunk-ext-val as a token */
  CH_EXT_QUOTED,      /* inside a quoted-string */
  CH_EXT_QUOTED_PAIR, /* after a backslash in a quoted-string */
  CH_EXT_QUOTED_END,  /* after the closing quote */
  CH_SIZE_LF,
  CH_DATA,
  CH_DATA_CR,
  CH_DATA_LF,
  CH_TRAILER, /* a field line starts, or the final CRLF */
  CH_TRAILER_NAME,
  CH_TRAILER_VALUE,
  CH_TRAILER_LF,
  CH_END_LF,
};

/* 15 hex digits: 2^60 bytes is more than any body, and no overflow check
 * is needed while shifting. */
#define CHUNK_SIZE_DIGITS 15
/* ---- getters ---- */

const char *
ph_http_request_get_method (const PhHttpRequest *req)
{
  return req->method;
}

const char *
ph_http_request_get_target (const PhHttpRequest *req)
{
  return req->target;
}

guint
ph_http_request_get_minor (const PhHttpRequest *req)
{
  return req->minor;
}

const PhHttpHeaders *
ph_http_request_get_headers (const PhHttpRequest *req)
{
  return &req->headers;
}

PhHttpTargetKind
ph_http_request_get_kind (const PhHttpRequest *req)
{
  return req->kind;
}

const char *
ph_http_request_get_host (const PhHttpRequest *req)
{
  return req->host;
}

guint16
ph_http_request_get_port (const PhHttpRequest *req)
{
  return req->port;
}

const char *
ph_http_request_get_authority (const PhHttpRequest *req)
{
  return req->authority;
}

const char *
ph_http_request_get_path (const PhHttpRequest *req)
{
  return req->path;
}

gint64
ph_http_request_get_content_length (const PhHttpRequest *req)
{
  return req->content_length;
}

gboolean
ph_http_request_get_chunked (const PhHttpRequest *req)
{
  return req->chunked;
}

gboolean
ph_http_request_get_keep_alive (const PhHttpRequest *req)
{
  return req->keep_alive;
}

guint
ph_http_response_get_minor (const PhHttpResponse *resp)
{
  return resp->minor;
}

guint
ph_http_response_get_status (const PhHttpResponse *resp)
{
  return resp->status;
}

const char *
ph_http_response_get_reason (const PhHttpResponse *resp)
{
  return resp->reason;
}

const PhHttpHeaders *
ph_http_response_get_headers (const PhHttpResponse *resp)
{
  return &resp->headers;
}

const char *
ph_http_response_get_transfer_encoding (const PhHttpResponse *resp)
{
  return resp->transfer_encoding;
}

gint64
ph_http_response_get_content_length (const PhHttpResponse *resp)
{
  return resp->content_length;
}

gboolean
ph_http_response_get_chunked (const PhHttpResponse *resp)
{
  return resp->chunked;
}

gboolean
ph_http_response_get_keep_alive (const PhHttpResponse *resp)
{
  return resp->keep_alive;
}

guint
ph_http_headers_get_len (const PhHttpHeaders *headers)
{
  return headers->fields->len;
}

void
ph_http_headers_get_nth (const PhHttpHeaders *headers, guint i, const char **name,
                         const char **value)
{
  const PhHttpHeader *h;

  g_return_if_fail (i < headers->fields->len);
  h = &g_array_index (headers->fields, PhHttpHeader, i);
  if (name != NULL)
    *name = h->name;
  if (value != NULL)
    *value = h->value;
}

const char *
ph_http_header_get (const PhHttpHeaders *headers, const char *name)
{
  return header_get (headers->fields, name);
}

guint
ph_http_header_count (const PhHttpHeaders *headers, const char *name)
{
  return header_count (headers->fields, name);
}

gboolean
ph_http_header_is_hop_by_hop (const PhHttpHeaders *headers, const char *name)
{
  return header_is_hop_by_hop (headers->fields, name);
}

/* Extensions are ignored by everyone in practice; a line this long is an
 * attack on a buffer somewhere, not a message. */
#define CHUNK_LINE_MAX 4096
/* As much as a whole head may be (ph_http_default_limits.max_head). */
#define CHUNK_TRAILER_MAX (64 * 1024)

PhBodyScanner *
ph_body_scanner_new (PhBodyMode mode, guint64 length)
{
  PhBodyScanner *s = g_new (PhBodyScanner, 1);
  ph_body_scanner_init (s, mode, length);
  return s;
}

void
ph_body_scanner_free (PhBodyScanner *s)
{
  g_free (s);
}

void
ph_body_scanner_init (PhBodyScanner *s, PhBodyMode mode, guint64 length)
{
  memset (s, 0, sizeof *s);
  s->mode = mode;
  s->remaining = mode == PH_BODY_CHUNKED ? 0 : length;
  s->state = CH_SIZE;
  s->done = mode == PH_BODY_NONE || (mode == PH_BODY_LENGTH && length == 0);
}

static int
hex_value (guchar c)
{
  if (c >= '0' && c <= '9')
    return c - '0';
  c = g_ascii_tolower (c);
  if (c >= 'a' && c <= 'f')
    return c - 'a' + 10;
  return -1;
}

static gboolean
is_bws (guchar c)
{
  return c == ' ' || c == '\t';
}

/* One byte of a chunk-size or last-chunk line; returns the next state, or
 * -1 if @c cannot come here. */
static int
size_line_step (PhBodyScanner *s, guchar c)
{
  int v;

  switch (s->state)
    {
      case CH_SIZE:
        v = hex_value (c);
        if (v >= 0)
          {
            /* Digits come first: line_len counts them. */
            if (s->line_len >= CHUNK_SIZE_DIGITS)
              return -1;
            s->remaining = (s->remaining << 4) | (guint) v;
            return CH_SIZE;
          }
        if (s->line_len == 0)
          return -1; /* no digit yet */
        if (c == '\r')
          return CH_SIZE_LF;
        if (c == ';')
          return CH_EXT_NAME_BWS;
        return is_bws (c) ? CH_EXT_BWS : -1;
      case CH_EXT_BWS:
        if (c == ';')
          return CH_EXT_NAME_BWS;
        return is_bws (c) ? CH_EXT_BWS : -1;
      case CH_EXT_NAME_BWS:
        if (is_tchar (c))
          return CH_EXT_NAME;
        return is_bws (c) ? CH_EXT_NAME_BWS : -1;
      case CH_EXT_NAME:
        if (is_tchar (c))
          return CH_EXT_NAME;
        /* What may follow a name. */
        G_GNUC_FALLTHROUGH;
      case CH_EXT_NAME_END:
        if (c == '=')
          return CH_EXT_VAL_BWS;
        if (c == ';')
          return CH_EXT_NAME_BWS;
        if (c == '\r' && s->state == CH_EXT_NAME)
          return CH_SIZE_LF;
        return is_bws (c) ? CH_EXT_NAME_END : -1;
      case CH_EXT_VAL_BWS:
        if (c == '"')
          return CH_EXT_QUOTED;
        if (is_tchar (c))
          return CH_EXT_TOKEN;
        return is_bws (c) ? CH_EXT_VAL_BWS : -1;
      case CH_EXT_TOKEN:
        if (is_tchar (c))
          return CH_EXT_TOKEN;
        /* What may follow a value. */
        G_GNUC_FALLTHROUGH;
      case CH_EXT_QUOTED_END:
        if (c == ';')
          return CH_EXT_NAME_BWS;
        if (c == '\r')
          return CH_SIZE_LF;
        return is_bws (c) ? CH_EXT_BWS : -1;
      case CH_EXT_QUOTED:
        /* qdtext: HTAB, SP, VCHAR but DQUOTE and "\", obs-text */
        if (c == '"')
          return CH_EXT_QUOTED_END;
        if (c == '\\')
          return CH_EXT_QUOTED_PAIR;
        return is_value_char (c) ? CH_EXT_QUOTED : -1;
      case CH_EXT_QUOTED_PAIR:
        return is_value_char (c) ? CH_EXT_QUOTED : -1;
      default:
        g_assert_not_reached ();
    }
}

gssize
ph_body_scanner_feed (PhBodyScanner *s, const guint8 *data, gsize len)
{
  return ph_body_scanner_decode (s, data, len, NULL);
}

gssize
ph_body_scanner_decode (PhBodyScanner *s, const guint8 *data, gsize len, GByteArray *payload)
{
  gsize i = 0;

  if (s->done)
    return 0;
  switch (s->mode)
    {
      case PH_BODY_NONE:
        return 0;
      case PH_BODY_UNTIL_CLOSE:
        if (payload != NULL)
          g_byte_array_append (payload, data, len);
        return len;
      case PH_BODY_LENGTH:
        {
          gsize take = MIN ((guint64) len, s->remaining);
          s->remaining -= take;
          s->done = s->remaining == 0;
          if (payload != NULL)
            g_byte_array_append (payload, data, take);
          return take;
        }
      case PH_BODY_CHUNKED:
        break;
    }

  while (i < len && !s->done)
    {
      guchar c = data[i];

      if (s->state == CH_DATA)
        {
          gsize take = MIN ((guint64) (len - i), s->remaining);
          s->remaining -= take;
          if (payload != NULL)
            g_byte_array_append (payload, data + i, take);
          i += take;
          if (s->remaining == 0)
            s->state = CH_DATA_CR;
          continue;
        }
      i++;
      if (s->state >= CH_TRAILER && ++s->trailer_len > CHUNK_TRAILER_MAX)
        return -1;
      switch (s->state)
        {
          case CH_SIZE:
          case CH_EXT_BWS:
          case CH_EXT_NAME_BWS:
          case CH_EXT_NAME:
          case CH_EXT_NAME_END:
          case CH_EXT_VAL_BWS:
          case CH_EXT_TOKEN:
          case CH_EXT_QUOTED:
          case CH_EXT_QUOTED_PAIR:
          case CH_EXT_QUOTED_END:
            {
              int next = size_line_step (s, c);

              if (next < 0 || (c != '\r' && ++s->line_len > CHUNK_LINE_MAX))
                return -1;
              s->state = next;
              break;
            }
          case CH_SIZE_LF:
            if (c != '\n')
              return -1;
            s->line_len = 0;
            s->state = s->remaining == 0 ? CH_TRAILER : CH_DATA;
            break;
          case CH_DATA_CR:
            if (c != '\r')
              return -1;
            s->state = CH_DATA_LF;
            break;
          case CH_DATA_LF:
            if (c != '\n')
              return -1;
            s->state = CH_SIZE;
            s->remaining = 0;
            s->line_len = 0;
            break;
          case CH_TRAILER:
            if (c == '\r')
              s->state = CH_END_LF;
            else if (is_tchar (c))
              {
                s->line_len = 1;
                s->state = CH_TRAILER_NAME;
              }
            else
              return -1;
            break;
          case CH_TRAILER_NAME:
          case CH_TRAILER_VALUE:
            if (c == '\r' && s->state == CH_TRAILER_VALUE)
              {
                s->state = CH_TRAILER_LF;
                break;
              }
            if (++s->line_len > CHUNK_LINE_MAX)
              return -1;
            if (s->state == CH_TRAILER_VALUE)
              {
                if (!is_value_char (c))
                  return -1;
              }
            else if (c == ':')
              s->state = CH_TRAILER_VALUE;
            else if (!is_tchar (c))
              return -1;
            break;
          case CH_TRAILER_LF:
            if (c != '\n')
              return -1;
            s->line_len = 0;
            s->state = CH_TRAILER;
            break;
          case CH_END_LF:
            if (c != '\n')
              return -1;
            s->done = TRUE;
            break;
          default:
            g_assert_not_reached ();
        }
    }
  return i;
}

gboolean
ph_body_scanner_is_done (const PhBodyScanner *s)
{
  return s->done;
}

PhBodyMode
ph_body_scanner_get_mode (const PhBodyScanner *s)
{
  return s->mode;
}

guint64
ph_body_scanner_get_remaining (const PhBodyScanner *s)
{
  return s->remaining;
}

/* SPDX-License-Identifier: GPL-2.0-or-later */
/* ph-sniff.c: the name a client was going to, from the first bytes it sent:
 * a TLS ClientHello's server_name (RFC 8446 §4.1.2, RFC 6066 §3), read
 * across records, or an HTTP/1.x request head's target or Host (through the
 * strict parser of ph-http.c). Only reads, within PH_SNIFF_MAX_BYTES. */
#include "ph-sniff.h"

#include "ph-http.h"

#include <string.h>

#define TLS_CONTENT_HANDSHAKE 22
#define TLS_RECORD_HEADER 5
#define TLS_MAX_FRAGMENT 16384
#define TLS_HANDSHAKE_HEADER 4
#define TLS_CLIENT_HELLO 1
#define TLS_EXT_SERVER_NAME 0
#define TLS_SNI_HOST_NAME 0
#define TLS_RANDOM 32
#define TLS_MAX_SESSION_ID 32

#define DNS_MAX_NAME 253
#define DNS_MAX_LABEL 63

/* The longest method looked for before the first space. */
#define HTTP_MAX_METHOD 24

static const PhHttpLimits sniff_http_limits = {
  .max_head = PH_SNIFF_MAX_BYTES,
  .max_target = PH_SNIFF_MAX_BYTES,
  .max_headers = 100,
};

/* A read cursor over bytes known to be there. */
typedef struct
{
  const guint8 *p;
  gsize left;
} Reader;

static gboolean
read_skip (Reader *r, gsize n)
{
  if (r->left < n)
    return FALSE;
  r->p += n;
  r->left -= n;
  return TRUE;
}

static gboolean
read_uint (Reader *r, guint width, guint32 *out)
{
  guint32 v = 0;

  if (r->left < width)
    return FALSE;
  for (guint i = 0; i < width; i++)
    v = (v << 8) | r->p[i];
  *out = v;
  return read_skip (r, width);
}

/* A vector with a @width-byte length in front: @sub covers its contents. */
static gboolean
read_vector (Reader *r, guint width, Reader *sub)
{
  guint32 n = 0;

  if (!read_uint (r, width, &n) || r->left < n)
    return FALSE;
  sub->p = r->p;
  sub->left = n;
  return read_skip (r, n);
}

/* Letters, digits, '-' and '.', labels of 1 to 63, at most 253 without the
 * trailing dot (dropped): the name lower-cased, or NULL. */
static char *
dns_name (const char *s, gsize n)
{
  gsize label = 0;

  if (n > 0 && s[n - 1] == '.')
    n--;
  if (n == 0 || n > DNS_MAX_NAME)
    return NULL;
  for (gsize i = 0; i < n; i++)
    {
      if (s[i] == '.')
        {
          if (label == 0)
            return NULL;
          label = 0;
          continue;
        }
      if (!g_ascii_isalnum (s[i]) && s[i] != '-')
        return NULL;
      if (++label > DNS_MAX_LABEL)
        return NULL;
    }
  if (label == 0)
    return NULL;
  return g_ascii_strdown (s, n);
}

/* An IPv6 address without brackets (no zone): the address lower-cased, or NULL. */
static char *
ipv6_literal (const char *s, gsize n)
{
  g_autofree char *copy = NULL;

  if (n == 0 || n > 45 || memchr (s, ':', n) == NULL)
    return NULL;
  for (gsize i = 0; i < n; i++)
    if (!g_ascii_isxdigit (s[i]) && s[i] != ':' && s[i] != '.')
      return NULL;
  copy = g_ascii_strdown (s, n);
  if (!g_hostname_is_ip_address (copy))
    return NULL;
  return g_steal_pointer (&copy);
}

static PhSniffResult
done (PhSniffKind found, char *value, char **name, PhSniffKind *kind)
{
  *kind = value != NULL ? found : PH_SNIFF_NONE;
  *name = value;
  return PH_SNIFF_DONE;
}

/* More bytes may still bring the name, unless the bound is reached. */
static PhSniffResult
need_more (gsize len, char **name, PhSniffKind *kind)
{
  if (len >= PH_SNIFF_MAX_BYTES)
    return done (PH_SNIFF_NONE, NULL, name, kind);
  return PH_SNIFF_NEED_MORE;
}

/* The host_name of a complete ClientHello's body, or NULL. */
static char *
client_hello_sni (const guint8 *body, gsize len)
{
  Reader r = { body, len };
  Reader session_id, ciphers, compression, extensions;

  if (!read_skip (&r, 2 + TLS_RANDOM) || !read_vector (&r, 1, &session_id)
      || session_id.left > TLS_MAX_SESSION_ID || !read_vector (&r, 2, &ciphers) || ciphers.left < 2
      || ciphers.left % 2 != 0 || !read_vector (&r, 1, &compression) || compression.left < 1
      || !read_vector (&r, 2, &extensions))
    return NULL;

  while (extensions.left > 0)
    {
      guint32 type = 0;
      Reader ext, list;

      if (!read_uint (&extensions, 2, &type) || !read_vector (&extensions, 2, &ext))
        return NULL;
      if (type != TLS_EXT_SERVER_NAME)
        continue;
      /* RFC 6066 §3: one name per type; the first host_name is the one. */
      if (!read_vector (&ext, 2, &list))
        return NULL;
      while (list.left > 0)
        {
          guint32 name_type = 0;
          Reader host;

          if (!read_uint (&list, 1, &name_type) || !read_vector (&list, 2, &host))
            return NULL;
          if (name_type == TLS_SNI_HOST_NAME)
            return dns_name ((const char *) host.p, host.left);
        }
      return NULL;
    }
  return NULL;
}

/* Handshake records from the start of @data: the ClientHello reassembled
 * from their fragments, then its server_name. */
static PhSniffResult
sniff_tls (const guint8 *data, gsize len, char **name, PhSniffKind *kind)
{
  gsize limit = MIN (len, PH_SNIFF_MAX_BYTES);
  g_autofree guint8 *hello = NULL;
  gsize have = 0; /* handshake bytes gathered in @hello */
  gsize need = 0; /* the ClientHello's whole length, once known */
  gsize pos = 0;

  /* Reject what is not TLS as soon as the record header says so. */
  if ((limit > 1 && data[1] != 3) || (limit > 2 && data[2] > 4))
    return done (PH_SNIFF_NONE, NULL, name, kind);

  while (need == 0 || have < need)
    {
      gsize fragment, avail;

      if (pos + TLS_RECORD_HEADER > limit)
        return need_more (len, name, kind);
      fragment = (gsize) data[pos + 3] << 8 | data[pos + 4];
      if (data[pos] != TLS_CONTENT_HANDSHAKE || data[pos + 1] != 3 || data[pos + 2] > 4
          || fragment == 0 || fragment > TLS_MAX_FRAGMENT
          || pos + TLS_RECORD_HEADER + fragment > PH_SNIFF_MAX_BYTES)
        return done (PH_SNIFF_NONE, NULL, name, kind);
      avail = MIN (fragment, limit - pos - TLS_RECORD_HEADER);

      /* have + avail <= pos + header + fragment <= PH_SNIFF_MAX_BYTES. */
      if (hello == NULL)
        hello = g_malloc (PH_SNIFF_MAX_BYTES);
      memcpy (hello + have, data + pos + TLS_RECORD_HEADER, avail);

      /* The handshake header, as soon as its four bytes are here, even in a partial record. */
      if (need == 0 && have + avail >= TLS_HANDSHAKE_HEADER)
        {
          if (hello[0] != TLS_CLIENT_HELLO)
            return done (PH_SNIFF_NONE, NULL, name, kind);
          need = TLS_HANDSHAKE_HEADER + ((gsize) hello[1] << 16 | (gsize) hello[2] << 8 | hello[3]);
          /* What is still to come could not end within the bound. */
          if (pos + TLS_RECORD_HEADER + (need - have) > PH_SNIFF_MAX_BYTES)
            return done (PH_SNIFF_NONE, NULL, name, kind);
        }
      if (avail < fragment)
        return need_more (len, name, kind);
      have += fragment;
      pos += TLS_RECORD_HEADER + fragment;
    }

  return done (PH_SNIFF_SNI,
               client_hello_sni (hello + TLS_HANDSHAKE_HEADER, need - TLS_HANDSHAKE_HEADER), name,
               kind);
}

/* A Host field's value: host, host:port, [v6] or [v6]:port. */
static char *
host_field_name (const char *value)
{
  gsize n = strlen (value);
  const char *end;
  const char *port;

  if (value[0] == '[')
    {
      end = memchr (value, ']', n);
      if (end == NULL)
        return NULL;
      port = end + 1;
      if (*port != '\0' && *port != ':')
        return NULL;
    }
  else
    {
      end = memchr (value, ':', n);
      if (end == NULL)
        end = value + n;
      port = end;
    }
  if (*port == ':' && strspn (port + 1, "0123456789") != strlen (port + 1))
    return NULL;
  if (value[0] == '[')
    return ipv6_literal (value + 1, end - value - 1);
  return dns_name (value, end - value);
}

/* What an absolute-form or CONNECT target named (brackets already gone). */
static char *
target_name (const char *host)
{
  gsize n = strlen (host);

  if (memchr (host, ':', n) != NULL)
    return ipv6_literal (host, n);
  return dns_name (host, n);
}

/* A method (upper-case letters, '-', '_') and a space: TRUE when seen, and
 * *@maybe when the bytes so far could still begin one. */
static gboolean
starts_like_http (const guint8 *data, gsize len, gboolean *maybe)
{
  *maybe = FALSE;
  for (gsize i = 0; i < len && i <= HTTP_MAX_METHOD; i++)
    {
      if (data[i] == ' ')
        return i > 0;
      if (!g_ascii_isupper (data[i]) && data[i] != '-' && data[i] != '_')
        return FALSE;
    }
  *maybe = len <= HTTP_MAX_METHOD;
  return FALSE;
}

static PhSniffResult
sniff_http (const guint8 *data, gsize len, char **name, PhSniffKind *kind)
{
  gsize limit = MIN (len, PH_SNIFF_MAX_BYTES);
  g_autoptr (PhHttpRequest) req = NULL;
  g_autofree char *reason = NULL;
  const char *host;
  gsize consumed = 0;
  guint status = 0;
  gboolean maybe = FALSE;

  if (!starts_like_http (data, limit, &maybe))
    return maybe ? need_more (len, name, kind) : done (PH_SNIFF_NONE, NULL, name, kind);

  switch (ph_http_request_parse ((const char *) data, limit, &sniff_http_limits, &req, &consumed,
                                 &status, &reason))
    {
      case PH_HTTP_PARSE_INCOMPLETE:
        return need_more (len, name, kind);
      case PH_HTTP_PARSE_ERROR:
        return done (PH_SNIFF_NONE, NULL, name, kind);
      case PH_HTTP_PARSE_DONE:
      default:
        break;
    }

  /* RFC 9112 §3.2.2: an absolute-form target wins over Host. */
  if (ph_http_request_get_kind (req) != PH_HTTP_ORIGIN)
    return done (PH_SNIFF_HOST, target_name (ph_http_request_get_host (req)), name, kind);
  host = ph_http_header_get (ph_http_request_get_headers (req), "Host");
  return done (PH_SNIFF_HOST, host != NULL ? host_field_name (host) : NULL, name, kind);
}

PhSniffResult
ph_sniff (const guint8 *data, gsize len, char **name, PhSniffKind *kind)
{
  g_return_val_if_fail (data != NULL || len == 0, PH_SNIFF_DONE);
  g_return_val_if_fail (name != NULL && kind != NULL, PH_SNIFF_DONE);

  *name = NULL;
  *kind = PH_SNIFF_NONE;
  if (len == 0)
    return PH_SNIFF_NEED_MORE;
  if (data[0] == TLS_CONTENT_HANDSHAKE)
    return sniff_tls (data, len, name, kind);
  return sniff_http (data, len, name, kind);
}

const char *
ph_sniff_kind_to_string (PhSniffKind kind)
{
  switch (kind)
    {
      case PH_SNIFF_SNI:
        return "sni";
      case PH_SNIFF_HOST:
        return "host";
      case PH_SNIFF_NONE:
      default:
        return "none";
    }
}

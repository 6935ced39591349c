/* SPDX-License-Identifier: GPL-2.0-or-later */
/* ph-socks.c: the SOCKS5 (RFC 1928) and SOCKS4/4a parser and replies. Each parse function takes
 * all the bytes read so far and answers MORE for any valid prefix, so a client may send them a
 * byte at a time; every size is bounded by the protocol (a name, a user id, an RFC 1929 user
 * name or password is at most 255 bytes). A name is only checked to be a host name (letters,
 * digits, '-', '_', '.'): it goes to the cloud proxy as it came, in a CONNECT head, and the proxy
 * resolves it. */
#include "ph-socks.h"
#include "ph-wipe.h"

#include <gio/gio.h>
#include <string.h>

PhSocksVersion
ph_socks_detect (guint8 first_byte)
{
  if (first_byte == 5)
    return PH_SOCKS5;
  if (first_byte == 4)
    return PH_SOCKS4;
  return PH_SOCKS_NONE;
}

PhSocksResult
ph_socks5_parse_greeting (const guint8 *data, gsize len, gsize *consumed, PhSocks5Offers *offers)
{
  gsize n;

  *consumed = 0;
  *offers = 0;
  if (len < 1)
    return PH_SOCKS_MORE;
  if (data[0] != 5)
    return PH_SOCKS_ERROR;
  if (len < 2)
    return PH_SOCKS_MORE;
  n = data[1];
  if (len < 2 + n)
    return PH_SOCKS_MORE;
  for (gsize i = 0; i < n; i++)
    if (data[2 + i] == PH_SOCKS5_NO_AUTH)
      *offers |= PH_SOCKS5_OFFERS_NO_AUTH;
    else if (data[2 + i] == PH_SOCKS5_USERPASS)
      *offers |= PH_SOCKS5_OFFERS_USERPASS;
  *consumed = 2 + n;
  return PH_SOCKS_DONE;
}

gboolean
ph_socks_must_sign_in (gboolean loopback, gboolean have_users)
{
  return !loopback && have_users;
}

guint8
ph_socks5_choose_method (PhSocks5Offers offers, gboolean loopback, gboolean have_users)
{
  gboolean must_sign_in = ph_socks_must_sign_in (loopback, have_users);

  if (!must_sign_in && (offers & PH_SOCKS5_OFFERS_NO_AUTH))
    return PH_SOCKS5_NO_AUTH;
  /* A loopback client with nothing but 0x02 signs in when there is someone to check it against;
   * without users, accepting any password would tell it that it had signed in. */
  if (have_users && (offers & PH_SOCKS5_OFFERS_USERPASS))
    return PH_SOCKS5_USERPASS;
  return PH_SOCKS5_NO_ACCEPTABLE_METHODS;
}

PhSocksResult
ph_socks5_parse_auth (const guint8 *data, gsize len, gsize *consumed,
                      PhSocks5Credentials *credentials)
{
  gsize ulen, plen;

  *consumed = 0;
  memset (credentials, 0, sizeof *credentials);
  if (len < 1)
    return PH_SOCKS_MORE;
  if (data[0] != PH_SOCKS5_AUTH_VERSION)
    return PH_SOCKS_ERROR;
  if (len < 2)
    return PH_SOCKS_MORE;
  ulen = data[1];
  if (ulen == 0)
    return PH_SOCKS_ERROR;
  if (len < 2 + ulen + 1)
    return PH_SOCKS_MORE;
  /* RFC 1929 asks for a password of 1 to 255 bytes; an empty one (curl's "user:") is parsed,
   * and matches no stored password, which is never empty. */
  plen = data[2 + ulen];
  if (len < 2 + ulen + 1 + plen)
    return PH_SOCKS_MORE;
  memcpy (credentials->username, data + 2, ulen);
  credentials->username_len = ulen;
  memcpy (credentials->password, data + 3 + ulen, plen);
  credentials->password_len = plen;
  *consumed = 3 + ulen + plen;
  return PH_SOCKS_DONE;
}

gboolean
ph_socks5_check_password (const char *expected, const PhSocks5Credentials *credentials)
{
  /* Every byte up to the longest password RFC 1929 can carry is looked at, whatever the two
   * hold: the time says neither where they differ nor how long the stored one is. */
  gsize expected_len = expected != NULL ? strnlen (expected, PH_SOCKS_MAX_NAME + 1) : 0;
  volatile guint8 diff = expected == NULL || expected_len != credentials->password_len;

  for (gsize i = 0; i < PH_SOCKS_MAX_NAME; i++)
    {
      guint8 a = i < expected_len ? (guint8) expected[i] : 0;
      guint8 b = (guint8) credentials->password[i];

      diff |= a ^ b;
    }
  return diff == 0;
}

void
ph_socks5_credentials_wipe (PhSocks5Credentials *credentials)
{
  ph_wipe (credentials, sizeof *credentials);
}

/* A host name of @len bytes: 1 to 253 (a DNS name's longest text, and what an HTTP CONNECT may
 * name) of letters, digits, '-', '_' and '.'. */
static gboolean
name_is_valid (const guint8 *name, gsize len)
{
  if (len == 0 || len > 253)
    return FALSE;
  for (gsize i = 0; i < len; i++)
    if (!g_ascii_isalnum (name[i]) && name[i] != '-' && name[i] != '_' && name[i] != '.')
      return FALSE;
  return TRUE;
}

static void
address_to_text (const guint8 *bytes, GSocketFamily family, char *out)
{
  g_autoptr (GInetAddress) address = g_inet_address_new_from_bytes (bytes, family);
  g_autofree char *text = g_inet_address_to_string (address);

  g_strlcpy (out, text, PH_SOCKS_MAX_NAME + 1);
}

static PhSocksResult
fail (guint8 *reply_code, guint8 code)
{
  *reply_code = code;
  return PH_SOCKS_ERROR;
}

static PhSocksResult
parse_socks5 (const guint8 *data, gsize len, gsize *consumed, PhSocksRequest *request,
              guint8 *reply_code)
{
  gsize addr_len, total;

  if (len < 1)
    return PH_SOCKS_MORE;
  if (data[0] != 5)
    return fail (reply_code, PH_SOCKS5_GENERAL_FAILURE);
  if (len < 2)
    return PH_SOCKS_MORE;
  if (data[1] != 1) /* 2 BIND, 3 UDP ASSOCIATE, or no command at all */
    return fail (reply_code, PH_SOCKS5_COMMAND_NOT_SUPPORTED);
  if (len < 3)
    return PH_SOCKS_MORE;
  if (data[2] != 0)
    return fail (reply_code, PH_SOCKS5_GENERAL_FAILURE);
  if (len < 4)
    return PH_SOCKS_MORE;
  switch (data[3])
    {
      case 1:
        addr_len = 4;
        break;
      case 4:
        addr_len = 16;
        break;
      case 3:
        if (len < 5)
          return PH_SOCKS_MORE;
        if (data[4] == 0)
          return fail (reply_code, PH_SOCKS5_HOST_UNREACHABLE);
        addr_len = 1 + data[4];
        break;
      default:
        return fail (reply_code, PH_SOCKS5_ATYP_NOT_SUPPORTED);
    }
  total = 4 + addr_len + 2;
  if (len < total)
    return PH_SOCKS_MORE;
  request->port = (guint16) ((data[total - 2] << 8) | data[total - 1]);
  if (request->port == 0)
    return fail (reply_code, PH_SOCKS5_GENERAL_FAILURE);
  request->is_name = data[3] == 3;
  if (request->is_name)
    {
      if (!name_is_valid (data + 5, data[4]))
        return fail (reply_code, PH_SOCKS5_HOST_UNREACHABLE);
      memcpy (request->host, data + 5, data[4]);
      request->host[data[4]] = '\0';
    }
  else
    address_to_text (data + 4, data[3] == 1 ? G_SOCKET_FAMILY_IPV4 : G_SOCKET_FAMILY_IPV6,
                     request->host);
  *consumed = total;
  return PH_SOCKS_DONE;
}

/* The length of the NUL-terminated field at @data: MORE while its NUL has not come, ERROR past
 * 255 bytes. */
static PhSocksResult
field_end (const guint8 *data, gsize len, gsize *field_len)
{
  const guint8 *nul = memchr (data, 0, MIN (len, PH_SOCKS_MAX_NAME + 1));

  if (nul == NULL)
    return len > PH_SOCKS_MAX_NAME ? PH_SOCKS_ERROR : PH_SOCKS_MORE;
  *field_len = (gsize) (nul - data);
  return PH_SOCKS_DONE;
}

static PhSocksResult
parse_socks4 (const guint8 *data, gsize len, gsize *consumed, PhSocksRequest *request,
              guint8 *reply_code)
{
  gsize user_len = 0, host_len = 0;
  gboolean socks4a;
  PhSocksResult r;

  *reply_code = PH_SOCKS4_REJECTED;
  if (len < 1)
    return PH_SOCKS_MORE;
  if (data[0] != 4)
    return PH_SOCKS_ERROR;
  if (len < 2)
    return PH_SOCKS_MORE;
  if (data[1] != 1) /* 2 BIND */
    return PH_SOCKS_ERROR;
  if (len < 8)
    return PH_SOCKS_MORE;
  request->port = (guint16) ((data[2] << 8) | data[3]);
  if (request->port == 0)
    return PH_SOCKS_ERROR;
  /* 0.0.0.x, x not 0: SOCKS4a, a host name follows the user id. 0.0.0.0 is no address. */
  socks4a = data[4] == 0 && data[5] == 0 && data[6] == 0;
  if (socks4a && data[7] == 0)
    return PH_SOCKS_ERROR;
  r = field_end (data + 8, len - 8, &user_len);
  if (r != PH_SOCKS_DONE)
    return r;
  *consumed = 8 + user_len + 1;
  request->is_name = socks4a;
  if (!socks4a)
    {
      address_to_text (data + 4, G_SOCKET_FAMILY_IPV4, request->host);
      return PH_SOCKS_DONE;
    }
  r = field_end (data + *consumed, len - *consumed, &host_len);
  if (r != PH_SOCKS_DONE)
    {
      *consumed = 0;
      return r;
    }
  if (!name_is_valid (data + *consumed, host_len))
    {
      *consumed = 0;
      return PH_SOCKS_ERROR;
    }
  memcpy (request->host, data + *consumed, host_len);
  request->host[host_len] = '\0';
  *consumed += host_len + 1;
  return PH_SOCKS_DONE;
}

PhSocksResult
ph_socks_parse_request (PhSocksVersion version, const guint8 *data, gsize len, gsize *consumed,
                        PhSocksRequest *request, guint8 *reply_code)
{
  PhSocksResult r;

  *consumed = 0;
  *reply_code = version == PH_SOCKS4 ? PH_SOCKS4_REJECTED : PH_SOCKS5_GENERAL_FAILURE;
  memset (request, 0, sizeof *request);
  switch (version)
    {
      case PH_SOCKS5:
        r = parse_socks5 (data, len, consumed, request, reply_code);
        break;
      case PH_SOCKS4:
        r = parse_socks4 (data, len, consumed, request, reply_code);
        break;
      case PH_SOCKS_NONE:
      default:
        return PH_SOCKS_ERROR;
    }
  if (r != PH_SOCKS_DONE)
    *consumed = 0;
  return r;
}

char *
ph_socks_request_to_connect (const PhSocksRequest *request)
{
  g_autofree char *authority = strchr (request->host, ':') != NULL
                                   ? g_strdup_printf ("[%s]:%u", request->host, request->port)
                                   : g_strdup_printf ("%s:%u", request->host, request->port);

  return g_strdup_printf ("CONNECT %s HTTP/1.1\r\nHost: %s\r\n\r\n", authority, authority);
}

void
ph_socks5_build_method_reply (guint8 method, guint8 out[2])
{
  out[0] = 5;
  out[1] = method;
}

void
ph_socks5_build_auth_reply (gboolean ok, guint8 out[PH_SOCKS5_AUTH_REPLY_LEN])
{
  out[0] = PH_SOCKS5_AUTH_VERSION;
  out[1] = ok ? PH_SOCKS5_AUTH_SUCCESS : PH_SOCKS5_AUTH_FAILURE;
}

void
ph_socks5_build_reply (guint8 code, guint8 out[PH_SOCKS5_REPLY_LEN])
{
  memset (out, 0, PH_SOCKS5_REPLY_LEN);
  out[0] = 5;
  out[1] = code;
  out[3] = 1; /* BND.ADDR 0.0.0.0, BND.PORT 0 */
}

void
ph_socks4_build_reply (gboolean granted, guint8 out[PH_SOCKS4_REPLY_LEN])
{
  memset (out, 0, PH_SOCKS4_REPLY_LEN);
  out[1] = granted ? PH_SOCKS4_GRANTED : PH_SOCKS4_REJECTED;
}

guint8
ph_socks5_code_for (guint status, const char *kind, const char *squid_error)
{
  if (status >= 200 && status < 300 && kind == NULL)
    return PH_SOCKS5_SUCCEEDED;
  if (status == 403 || g_strcmp0 (kind, "blocked") == 0)
    return PH_SOCKS5_NOT_ALLOWED;
  if (kind != NULL)
    return g_str_equal (kind, "direct-unreachable") || g_str_equal (kind, "direct-timeout")
                   || g_str_equal (kind, "upstream-timeout")
               ? PH_SOCKS5_HOST_UNREACHABLE
               : PH_SOCKS5_GENERAL_FAILURE;
  /* The cloud proxy's own answer. Squid names its error: ERR_CONNECT_FAIL 111 is ECONNREFUSED. */
  if (squid_error != NULL && g_str_has_prefix (squid_error, "ERR_CONNECT_FAIL 111"))
    return PH_SOCKS5_CONNECTION_REFUSED;
  if (status == 502 || status == 503 || status == 504)
    return PH_SOCKS5_HOST_UNREACHABLE;
  return PH_SOCKS5_GENERAL_FAILURE;
}

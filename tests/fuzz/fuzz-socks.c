/* SPDX-License-Identifier: GPL-2.0-or-later */
/* fuzz-socks.c: libFuzzer harness for the SOCKS5 and SOCKS4/4a parser (ph-socks.c). The input is
 * what a client sends: its first byte picks the version as the listener does (else SOCKS5); a
 * SOCKS5 greeting that offers username/password is followed by RFC 1929's sub-negotiation, as
 * when the listener chooses 0x02 (input starting with 0x01 is a sub-negotiation alone). A
 * parse never reads past what it was given (ASan), never consumes more, and is decided by the
 * bytes it consumed alone: every shorter prefix asks for more, and bytes after it change
 * nothing. An accepted request names a host that becomes a CONNECT head the HTTP parser takes,
 * with the same host and port; a refusal carries a code of its version. */
#include "ph-http.h"
#include "ph-socks.h"

#include <stdint.h>
#include <string.h>

int LLVMFuzzerTestOneInput (const uint8_t *data, size_t size);

static void
check_request (PhSocksVersion version, const guint8 *data, gsize size)
{
  PhSocksRequest req, again;
  gsize consumed = 0, consumed2 = 0;
  guint8 code = 0, code2 = 0;
  PhSocksResult r = ph_socks_parse_request (version, data, size, &consumed, &req, &code);

  g_assert_cmpuint (consumed, <=, size);
  if (r == PH_SOCKS_ERROR)
    {
      if (version == PH_SOCKS4)
        g_assert_cmpuint (code, ==, PH_SOCKS4_REJECTED);
      else
        g_assert_true (code == PH_SOCKS5_GENERAL_FAILURE || code == PH_SOCKS5_HOST_UNREACHABLE
                       || code == PH_SOCKS5_COMMAND_NOT_SUPPORTED
                       || code == PH_SOCKS5_ATYP_NOT_SUPPORTED);
      g_assert_cmpuint (consumed, ==, 0);
      return;
    }
  if (r == PH_SOCKS_MORE)
    {
      g_assert_cmpuint (consumed, ==, 0);
      g_assert_cmpuint (size, <, 4 + 1 + 255 + 255 + 2 + 1);
      return;
    }
  g_assert_cmpint (r, ==, PH_SOCKS_DONE);
  g_assert_cmpuint (consumed, >, 0);
  g_assert_cmpuint (strlen (req.host), >, 0);
  g_assert_cmpuint (strlen (req.host), <=, PH_SOCKS_MAX_NAME);
  g_assert_cmpuint (req.port, !=, 0);
  /* Decided by its own bytes. */
  g_assert_cmpint (ph_socks_parse_request (version, data, consumed, &consumed2, &again, &code2), ==,
                   PH_SOCKS_DONE);
  g_assert_cmpuint (consumed2, ==, consumed);
  g_assert_cmpstr (again.host, ==, req.host);
  g_assert_cmpuint (again.port, ==, req.port);
  for (gsize n = 0; n < consumed; n++)
    g_assert_cmpint (ph_socks_parse_request (version, data, n, &consumed2, &again, &code2), ==,
                     PH_SOCKS_MORE);
  /* The CONNECT head it becomes. */
  {
    g_autofree char *head = ph_socks_request_to_connect (&req);
    g_autofree char *reason = NULL;
    g_autoptr (PhHttpRequest) http = NULL;
    gsize used = 0;
    guint status = 0;

    g_assert_cmpint (ph_http_request_parse (head, strlen (head), &ph_http_default_limits, &http,
                                            &used, &status, &reason),
                     ==, PH_HTTP_PARSE_DONE);
    g_assert_cmpuint (used, ==, strlen (head));
    g_assert_cmpint (ph_http_request_get_kind (http), ==, PH_HTTP_CONNECT);
    g_assert_cmpstr (ph_http_request_get_host (http), ==, req.host);
    g_assert_cmpuint (ph_http_request_get_port (http), ==, req.port);
  }
}

/* RFC 1929: the same rules (bounded, decided by its own bytes), and a check that takes only the
 * password it was given. Returns the bytes it consumed, 0 unless DONE. */
static gsize
check_auth (const guint8 *data, gsize size)
{
  PhSocks5Credentials cred, again;
  gsize consumed = 0, consumed2 = 0;
  PhSocksResult r = ph_socks5_parse_auth (data, size, &consumed, &cred);

  g_assert_cmpuint (consumed, <=, size);
  if (r != PH_SOCKS_DONE)
    {
      g_assert_cmpuint (consumed, ==, 0);
      if (r == PH_SOCKS_MORE)
        g_assert_cmpuint (size, <, 2 + 255 + 1 + 255);
      else
        g_assert_true (size >= 1 && (data[0] != 1 || (size >= 2 && data[1] == 0)));
      return 0;
    }
  g_assert_cmpuint (consumed, ==, 3u + data[1] + data[2 + data[1]]);
  g_assert_cmpuint (cred.username_len, ==, data[1]);
  g_assert_cmpmem (cred.username, cred.username_len, data + 2, data[1]);
  g_assert_cmpuint (cred.password_len, ==, data[2 + data[1]]);
  g_assert_cmpmem (cred.password, cred.password_len, data + 3 + data[1], cred.password_len);
  g_assert_cmpint (ph_socks5_parse_auth (data, consumed, &consumed2, &again), ==, PH_SOCKS_DONE);
  g_assert_cmpuint (consumed2, ==, consumed);
  for (gsize n = 0; n < consumed; n++)
    g_assert_cmpint (ph_socks5_parse_auth (data, n, &consumed2, &again), ==, PH_SOCKS_MORE);
  /* The password it carries matches itself when it has no NUL, and nothing else. */
  if (memchr (cred.password, 0, cred.password_len) == NULL)
    g_assert_true (ph_socks5_check_password (cred.password, &cred));
  g_assert_false (ph_socks5_check_password (NULL, &cred));
  if (cred.password_len > 0 && cred.password[0] != 'x')
    {
      char other[PH_SOCKS_MAX_NAME + 1];

      memcpy (other, cred.password, cred.password_len + 1);
      other[0] = 'x';
      g_assert_false (ph_socks5_check_password (other, &cred));
    }
  ph_socks5_credentials_wipe (&cred);
  return consumed;
}

int
LLVMFuzzerTestOneInput (const uint8_t *data, size_t size)
{
  PhSocksVersion version;
  PhSocks5Offers offers = 0;
  gsize consumed = 0;
  guint8 method = 0;
  PhSocksResult r;

  if (size == 0 || size > 1024)
    return 0;
  if (data[0] == PH_SOCKS5_AUTH_VERSION)
    {
      check_auth (data, size);
      return 0;
    }
  version = ph_socks_detect (data[0]);
  if (version == PH_SOCKS4)
    {
      check_request (PH_SOCKS4, data, size);
      return 0;
    }
  /* Not 4 or 5: the listener takes it for HTTP; here it is a SOCKS5 request on its own. */
  if (version == PH_SOCKS_NONE)
    {
      check_request (PH_SOCKS5, data, size);
      return 0;
    }
  r = ph_socks5_parse_greeting (data, size, &consumed, &offers);
  g_assert_cmpuint (consumed, <=, size);
  if (r != PH_SOCKS_DONE)
    return 0;
  g_assert_cmpuint (consumed, ==, 2u + data[1]);
  g_assert_cmpuint (offers & ~(PH_SOCKS5_OFFERS_NO_AUTH | PH_SOCKS5_OFFERS_USERPASS), ==, 0);
  g_assert_cmpint ((offers & PH_SOCKS5_OFFERS_NO_AUTH) != 0, ==,
                   memchr (data + 2, PH_SOCKS5_NO_AUTH, data[1]) != NULL);
  g_assert_cmpint ((offers & PH_SOCKS5_OFFERS_USERPASS) != 0, ==,
                   memchr (data + 2, PH_SOCKS5_USERPASS, data[1]) != NULL);
  /* The rule: 0x02 only when offered and there are users; never 0x00 for a client that must
   * sign in. */
  for (guint k = 0; k < 4; k++)
    {
      gboolean loopback = k & 1, have_users = k >> 1;

      method = ph_socks5_choose_method (offers, loopback, have_users);
      g_assert_true (method == PH_SOCKS5_NO_AUTH || method == PH_SOCKS5_USERPASS
                     || method == PH_SOCKS5_NO_ACCEPTABLE_METHODS);
      if (method == PH_SOCKS5_USERPASS)
        g_assert_true (have_users && (offers & PH_SOCKS5_OFFERS_USERPASS));
      if (method == PH_SOCKS5_NO_AUTH)
        g_assert_true ((offers & PH_SOCKS5_OFFERS_NO_AUTH) && (loopback || !have_users));
    }
  if (offers & PH_SOCKS5_OFFERS_USERPASS)
    {
      gsize used = check_auth (data + consumed, size - consumed);

      if (used == 0)
        return 0;
      consumed += used;
    }
  check_request (PH_SOCKS5, data + consumed, size - consumed);
  return 0;
}

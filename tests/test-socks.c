/* SPDX-License-Identifier: GPL-2.0-or-later */
/* test-socks.c: unit tests for agent/core/ph-socks.h: the SOCKS5 greeting and the SOCKS5 and
 * SOCKS4/4a requests, whole and fed a byte at a time (every proper prefix asks for more, never
 * decides), with bytes after them left alone; malformed input with the reply code it gets
 * (bad version, BIND and UDP ASSOCIATE, an unknown address type, bad names, over-long fields);
 * the replies' bytes; the code for each way a CONNECT fails; and the HTTP CONNECT head a request
 * becomes, which the HTTP parser takes. No sockets. */
#include "ph-http.h"
#include "ph-socks.h"

#include <string.h>

typedef struct
{
  const char *name;
  PhSocksVersion version;
  const char *bytes; /* the request */
  gsize len;
  const char *host;
  guint16 port;
  gboolean is_name;
} ValidCase;

#define B(s) s, sizeof s - 1

static const ValidCase valid_cases[] = {
  { "s5-ipv4", PH_SOCKS5, B ("\x05\x01\x00\x01\x7f\x00\x00\x01\x01\xbb"), "127.0.0.1", 443, FALSE },
  { "s5-name", PH_SOCKS5,
    B ("\x05\x01\x00\x03\x0b"
       "example.com\x00\x50"),
    "example.com", 80, TRUE },
  { "s5-name-underscore-dot", PH_SOCKS5, B ("\x05\x01\x00\x03\x0a_a-b.Cd.e.\x1f\x90"), "_a-b.Cd.e.",
    8080, TRUE },
  { "s5-ipv6", PH_SOCKS5,
    B ("\x05\x01\x00\x04\x20\x01\x0d\xb8\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x01\x00\x16"),
    "2001:db8::1", 22, FALSE },
  { "s4-ipv4", PH_SOCKS4, B ("\x04\x01\x01\xbb\x0a\x01\x02\x03user\x00"), "10.1.2.3", 443, FALSE },
  { "s4-no-user", PH_SOCKS4, B ("\x04\x01\x00\x50\xc0\xa8\x00\x01\x00"), "192.168.0.1", 80, FALSE },
  { "s4a-name", PH_SOCKS4,
    B ("\x04\x01\x01\xbb\x00\x00\x00\x01\x00"
       "example.org\x00"),
    "example.org", 443, TRUE },
  { "s4a-user-name", PH_SOCKS4,
    B ("\x04\x01\x01\xbb\x00\x00\x00\xff"
       "bob\x00h.example\x00"),
    "h.example", 443, TRUE },
};

static void
check_valid (const ValidCase *c, const guint8 *data, gsize len)
{
  PhSocksRequest req;
  gsize consumed = 99;
  guint8 code = 0;

  g_assert_cmpint (ph_socks_parse_request (c->version, data, len, &consumed, &req, &code), ==,
                   PH_SOCKS_DONE);
  g_assert_cmpuint (consumed, ==, c->len);
  g_assert_cmpstr (req.host, ==, c->host);
  g_assert_cmpuint (req.port, ==, c->port);
  g_assert_cmpint (req.is_name, ==, c->is_name);
}

static void
test_valid (gconstpointer data)
{
  const ValidCase *c = data;
  g_autoptr (GByteArray) more = g_byte_array_new ();

  g_assert_cmpint (ph_socks_detect ((guint8) c->bytes[0]), ==, c->version);
  check_valid (c, (const guint8 *) c->bytes, c->len);
  /* Byte at a time: every proper prefix asks for more and consumes nothing. */
  for (gsize i = 0; i < c->len; i++)
    {
      PhSocksRequest req;
      gsize consumed = 99;
      guint8 code = 0;

      g_assert_cmpint (
          ph_socks_parse_request (c->version, (const guint8 *) c->bytes, i, &consumed, &req, &code),
          ==, PH_SOCKS_MORE);
      g_assert_cmpuint (consumed, ==, 0);
    }
  /* The client's first tunnel bytes after the request are not the request's. */
  g_byte_array_append (more, (const guint8 *) c->bytes, c->len);
  g_byte_array_append (more, (const guint8 *) "\x16\x03\x01\x00", 4);
  check_valid (c, more->data, more->len);
}

typedef struct
{
  const char *name;
  PhSocksVersion version;
  const char *bytes;
  gsize len;
  guint8 code;
} BadCase;

static const BadCase bad_cases[] = {
  { "s5-version", PH_SOCKS5, B ("\x04\x01\x00\x01"), PH_SOCKS5_GENERAL_FAILURE },
  { "s5-bind", PH_SOCKS5, B ("\x05\x02"), PH_SOCKS5_COMMAND_NOT_SUPPORTED },
  { "s5-udp", PH_SOCKS5, B ("\x05\x03\x00\x01\x7f\x00\x00\x01\x00\x35"),
    PH_SOCKS5_COMMAND_NOT_SUPPORTED },
  { "s5-command-0", PH_SOCKS5, B ("\x05\x00"), PH_SOCKS5_COMMAND_NOT_SUPPORTED },
  { "s5-reserved", PH_SOCKS5, B ("\x05\x01\x01"), PH_SOCKS5_GENERAL_FAILURE },
  { "s5-atyp-0", PH_SOCKS5, B ("\x05\x01\x00\x00"), PH_SOCKS5_ATYP_NOT_SUPPORTED },
  { "s5-atyp-2", PH_SOCKS5, B ("\x05\x01\x00\x02"), PH_SOCKS5_ATYP_NOT_SUPPORTED },
  { "s5-atyp-5", PH_SOCKS5, B ("\x05\x01\x00\x05"), PH_SOCKS5_ATYP_NOT_SUPPORTED },
  { "s5-empty-name", PH_SOCKS5, B ("\x05\x01\x00\x03\x00"), PH_SOCKS5_HOST_UNREACHABLE },
  { "s5-name-space", PH_SOCKS5, B ("\x05\x01\x00\x03\x03\x61 b\x01\xbb"),
    PH_SOCKS5_HOST_UNREACHABLE },
  { "s5-name-crlf", PH_SOCKS5, B ("\x05\x01\x00\x03\x03\x61\r\n\x01\xbb"),
    PH_SOCKS5_HOST_UNREACHABLE },
  { "s5-name-nul", PH_SOCKS5, B ("\x05\x01\x00\x03\x03\x61\x00\x62\x01\xbb"),
    PH_SOCKS5_HOST_UNREACHABLE },
  { "s5-name-colon", PH_SOCKS5, B ("\x05\x01\x00\x03\x03::1\x01\xbb"), PH_SOCKS5_HOST_UNREACHABLE },
  { "s5-port-0", PH_SOCKS5, B ("\x05\x01\x00\x01\x7f\x00\x00\x01\x00\x00"),
    PH_SOCKS5_GENERAL_FAILURE },
  { "s4-version", PH_SOCKS4, B ("\x05"), PH_SOCKS4_REJECTED },
  { "s4-bind", PH_SOCKS4, B ("\x04\x02"), PH_SOCKS4_REJECTED },
  { "s4-port-0", PH_SOCKS4, B ("\x04\x01\x00\x00\x0a\x00\x00\x01"), PH_SOCKS4_REJECTED },
  { "s4-ip-0", PH_SOCKS4, B ("\x04\x01\x00\x50\x00\x00\x00\x00"), PH_SOCKS4_REJECTED },
  { "s4a-empty-name", PH_SOCKS4, B ("\x04\x01\x00\x50\x00\x00\x00\x01\x00\x00"),
    PH_SOCKS4_REJECTED },
  { "s4a-bad-name", PH_SOCKS4,
    B ("\x04\x01\x00\x50\x00\x00\x00\x01\x00"
       "a/b\x00"),
    PH_SOCKS4_REJECTED },
};

static void
test_bad (gconstpointer data)
{
  const BadCase *c = data;
  PhSocksRequest req;
  gsize consumed = 99;
  guint8 code = 0;

  g_assert_cmpint (ph_socks_parse_request (c->version, (const guint8 *) c->bytes, c->len, &consumed,
                                           &req, &code),
                   ==, PH_SOCKS_ERROR);
  g_assert_cmpuint (consumed, ==, 0);
  g_assert_cmpuint (code, ==, c->code);
}

/* A SOCKS4 user id or 4a name longer than 255 bytes is refused as soon as it is. */
static void
test_socks4_bounds (void)
{
  g_autoptr (GByteArray) a = g_byte_array_new ();
  PhSocksRequest req;
  gsize consumed;
  guint8 code;

  g_byte_array_append (a, (const guint8 *) "\x04\x01\x00\x50\x0a\x00\x00\x01", 8);
  for (guint i = 0; i < 255; i++)
    g_byte_array_append (a, (const guint8 *) "u", 1);
  g_assert_cmpint (ph_socks_parse_request (PH_SOCKS4, a->data, a->len, &consumed, &req, &code), ==,
                   PH_SOCKS_MORE);
  g_byte_array_append (a, (const guint8 *) "u", 1);
  g_assert_cmpint (ph_socks_parse_request (PH_SOCKS4, a->data, a->len, &consumed, &req, &code), ==,
                   PH_SOCKS_ERROR);
  g_assert_cmpuint (code, ==, PH_SOCKS4_REJECTED);

  g_byte_array_set_size (a, 0);
  g_byte_array_append (a, (const guint8 *) "\x04\x01\x00\x50\x00\x00\x00\x01\x00", 9);
  for (guint i = 0; i < 256; i++)
    g_byte_array_append (a, (const guint8 *) "h", 1);
  g_assert_cmpint (ph_socks_parse_request (PH_SOCKS4, a->data, a->len, &consumed, &req, &code), ==,
                   PH_SOCKS_ERROR);
  /* 255 bytes: the longest field, but a name is at most 253 (DNS, and an HTTP CONNECT's). */
  g_byte_array_set_size (a, 9 + 255);
  g_assert_cmpint (ph_socks_parse_request (PH_SOCKS4, a->data, a->len, &consumed, &req, &code), ==,
                   PH_SOCKS_MORE);
  g_byte_array_append (a, (const guint8 *) "", 1);
  g_assert_cmpint (ph_socks_parse_request (PH_SOCKS4, a->data, a->len, &consumed, &req, &code), ==,
                   PH_SOCKS_ERROR);
  g_byte_array_set_size (a, 9 + 253);
  g_byte_array_append (a, (const guint8 *) "", 1);
  g_assert_cmpint (ph_socks_parse_request (PH_SOCKS4, a->data, a->len, &consumed, &req, &code), ==,
                   PH_SOCKS_DONE);
  g_assert_cmpuint (strlen (req.host), ==, 253);
}

static void
test_socks5_longest_name (void)
{
  g_autoptr (GByteArray) a = g_byte_array_new ();
  PhSocksRequest req;
  gsize consumed;
  guint8 code;

  /* 255, the most ATYP 3 can carry: a host unreachable, as no host name is that long. */
  g_byte_array_append (a, (const guint8 *) "\x05\x01\x00\x03\xff", 5);
  for (guint i = 0; i < 255; i++)
    g_byte_array_append (a, (const guint8 *) "n", 1);
  g_byte_array_append (a, (const guint8 *) "\x01\xbb", 2);
  g_assert_cmpint (ph_socks_parse_request (PH_SOCKS5, a->data, a->len, &consumed, &req, &code), ==,
                   PH_SOCKS_ERROR);
  g_assert_cmpuint (code, ==, PH_SOCKS5_HOST_UNREACHABLE);
  /* 253: the longest name. */
  g_byte_array_set_size (a, 0);
  g_byte_array_append (a, (const guint8 *) "\x05\x01\x00\x03\xfd", 5);
  for (guint i = 0; i < 253; i++)
    g_byte_array_append (a, (const guint8 *) "n", 1);
  g_byte_array_append (a, (const guint8 *) "\x01\xbb", 2);
  g_assert_cmpint (ph_socks_parse_request (PH_SOCKS5, a->data, a->len, &consumed, &req, &code), ==,
                   PH_SOCKS_DONE);
  g_assert_cmpuint (consumed, ==, a->len);
  g_assert_cmpuint (strlen (req.host), ==, 253);
}

static void
test_greeting (void)
{
  static const struct
  {
    const char *bytes;
    gsize len;
    PhSocksResult result;
    gsize consumed;
    guint8 method;
  } cases[] = {
    { B ("\x05\x01\x00"), PH_SOCKS_DONE, 3, PH_SOCKS5_NO_AUTH },
    { B ("\x05\x02\x02\x00"), PH_SOCKS_DONE, 4, PH_SOCKS5_NO_AUTH },
    { B ("\x05\x01\x02"), PH_SOCKS_DONE, 3, PH_SOCKS5_NO_ACCEPTABLE_METHODS }, /* user/pass */
    { B ("\x05\x02\x01\x02"), PH_SOCKS_DONE, 4, PH_SOCKS5_NO_ACCEPTABLE_METHODS },
    { B ("\x05\x00"), PH_SOCKS_DONE, 2, PH_SOCKS5_NO_ACCEPTABLE_METHODS },
    { B ("\x05\x01\x00\x05\x01"), PH_SOCKS_DONE, 3, PH_SOCKS5_NO_AUTH }, /* the request follows */
    { B ("\x05\x03\x00"), PH_SOCKS_MORE, 0, 0 },
    { B ("\x04\x01\x00"), PH_SOCKS_ERROR, 0, 0 },
  };

  for (gsize i = 0; i < G_N_ELEMENTS (cases); i++)
    {
      gsize consumed = 99;
      guint8 method = 7;
      PhSocksResult r = ph_socks5_parse_greeting ((const guint8 *) cases[i].bytes, cases[i].len,
                                                  &consumed, &method);

      g_assert_cmpint (r, ==, cases[i].result);
      if (r == PH_SOCKS_DONE)
        {
          g_assert_cmpuint (consumed, ==, cases[i].consumed);
          g_assert_cmpuint (method, ==, cases[i].method);
          /* Byte at a time. */
          for (gsize n = 0; n < cases[i].consumed; n++)
            g_assert_cmpint (
                ph_socks5_parse_greeting ((const guint8 *) cases[i].bytes, n, &consumed, &method),
                ==, PH_SOCKS_MORE);
        }
    }
  /* 255 methods, the most there can be, the last one 0x00. */
  {
    guint8 g[257];
    gsize consumed;
    guint8 method;

    g[0] = 5;
    g[1] = 255;
    memset (g + 2, 0x80, 255);
    g[256] = 0;
    g_assert_cmpint (ph_socks5_parse_greeting (g, sizeof g, &consumed, &method), ==, PH_SOCKS_DONE);
    g_assert_cmpuint (consumed, ==, 257);
    g_assert_cmpuint (method, ==, 0);
  }
}

static void
test_detect (void)
{
  g_assert_cmpint (ph_socks_detect (5), ==, PH_SOCKS5);
  g_assert_cmpint (ph_socks_detect (4), ==, PH_SOCKS4);
  g_assert_cmpint (ph_socks_detect ('C'), ==, PH_SOCKS_NONE);
  g_assert_cmpint (ph_socks_detect ('G'), ==, PH_SOCKS_NONE);
  g_assert_cmpint (ph_socks_detect (0x16), ==, PH_SOCKS_NONE);
  g_assert_cmpint (ph_socks_detect (0), ==, PH_SOCKS_NONE);
}

static void
test_replies (void)
{
  guint8 r5[PH_SOCKS5_REPLY_LEN], r4[PH_SOCKS4_REPLY_LEN], m[2];

  ph_socks5_build_reply (PH_SOCKS5_SUCCEEDED, r5);
  g_assert_cmpmem (r5, sizeof r5, "\x05\x00\x00\x01\x00\x00\x00\x00\x00\x00", 10);
  ph_socks5_build_reply (PH_SOCKS5_NOT_ALLOWED, r5);
  g_assert_cmpmem (r5, sizeof r5, "\x05\x02\x00\x01\x00\x00\x00\x00\x00\x00", 10);
  ph_socks4_build_reply (TRUE, r4);
  g_assert_cmpmem (r4, sizeof r4, "\x00\x5a\x00\x00\x00\x00\x00\x00", 8);
  ph_socks4_build_reply (FALSE, r4);
  g_assert_cmpmem (r4, sizeof r4, "\x00\x5b\x00\x00\x00\x00\x00\x00", 8);
  ph_socks5_build_method_reply (PH_SOCKS5_NO_ACCEPTABLE_METHODS, m);
  g_assert_cmpmem (m, 2, "\x05\xff", 2);
}

static void
test_codes (void)
{
  g_assert_cmpuint (ph_socks5_code_for (200, NULL, NULL), ==, PH_SOCKS5_SUCCEEDED);
  g_assert_cmpuint (ph_socks5_code_for (403, "blocked", NULL), ==, PH_SOCKS5_NOT_ALLOWED);
  g_assert_cmpuint (ph_socks5_code_for (403, NULL, "ERR_ACCESS_DENIED 0"), ==,
                    PH_SOCKS5_NOT_ALLOWED);
  g_assert_cmpuint (ph_socks5_code_for (503, NULL, "ERR_CONNECT_FAIL 111"), ==,
                    PH_SOCKS5_CONNECTION_REFUSED);
  g_assert_cmpuint (ph_socks5_code_for (503, NULL, "ERR_DNS_FAIL 0"), ==,
                    PH_SOCKS5_HOST_UNREACHABLE);
  g_assert_cmpuint (ph_socks5_code_for (502, NULL, NULL), ==, PH_SOCKS5_HOST_UNREACHABLE);
  g_assert_cmpuint (ph_socks5_code_for (504, "upstream-timeout", NULL), ==,
                    PH_SOCKS5_HOST_UNREACHABLE);
  g_assert_cmpuint (ph_socks5_code_for (502, "direct-unreachable", NULL), ==,
                    PH_SOCKS5_HOST_UNREACHABLE);
  g_assert_cmpuint (ph_socks5_code_for (502, "upstream-tcp", NULL), ==, PH_SOCKS5_GENERAL_FAILURE);
  g_assert_cmpuint (ph_socks5_code_for (502, "pin-mismatch", NULL), ==, PH_SOCKS5_GENERAL_FAILURE);
  g_assert_cmpuint (ph_socks5_code_for (503, "too-many-tunnels", NULL), ==,
                    PH_SOCKS5_GENERAL_FAILURE);
}

/* The request becomes the CONNECT an HTTP client would send, which the HTTP parser takes. */
static void
test_to_connect (void)
{
  for (gsize i = 0; i < G_N_ELEMENTS (valid_cases); i++)
    {
      const ValidCase *c = &valid_cases[i];
      PhSocksRequest req;
      gsize consumed;
      guint8 code;
      g_autofree char *head = NULL;
      g_autofree char *reason = NULL;
      g_autoptr (PhHttpRequest) http = NULL;
      guint status = 0;

      g_assert_cmpint (ph_socks_parse_request (c->version, (const guint8 *) c->bytes, c->len,
                                               &consumed, &req, &code),
                       ==, PH_SOCKS_DONE);
      head = ph_socks_request_to_connect (&req);
      g_assert_cmpint (ph_http_request_parse (head, strlen (head), &ph_http_default_limits, &http,
                                              &consumed, &status, &reason),
                       ==, PH_HTTP_PARSE_DONE);
      g_assert_cmpuint (consumed, ==, strlen (head));
      g_assert_cmpint (ph_http_request_get_kind (http), ==, PH_HTTP_CONNECT);
      g_assert_cmpstr (ph_http_request_get_host (http), ==, c->host);
      g_assert_cmpuint (ph_http_request_get_port (http), ==, c->port);
    }
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  for (gsize i = 0; i < G_N_ELEMENTS (valid_cases); i++)
    {
      g_autofree char *path = g_strdup_printf ("/pinhole/socks/valid/%s", valid_cases[i].name);
      g_test_add_data_func (path, &valid_cases[i], test_valid);
    }
  for (gsize i = 0; i < G_N_ELEMENTS (bad_cases); i++)
    {
      g_autofree char *path = g_strdup_printf ("/pinhole/socks/bad/%s", bad_cases[i].name);
      g_test_add_data_func (path, &bad_cases[i], test_bad);
    }
  g_test_add_func ("/pinhole/socks/socks4-bounds", test_socks4_bounds);
  g_test_add_func ("/pinhole/socks/socks5-longest-name", test_socks5_longest_name);
  g_test_add_func ("/pinhole/socks/greeting", test_greeting);
  g_test_add_func ("/pinhole/socks/detect", test_detect);
  g_test_add_func ("/pinhole/socks/replies", test_replies);
  g_test_add_func ("/pinhole/socks/codes", test_codes);
  g_test_add_func ("/pinhole/socks/to-connect", test_to_connect);
  return g_test_run ();
}

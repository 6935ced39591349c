/* SPDX-License-Identifier: GPL-2.0-or-later */
/* test-socks.c: unit tests for agent/core/ph-socks.h: the SOCKS5 greeting and the SOCKS5 and
 * SOCKS4/4a requests, whole and fed a byte at a time (every proper prefix asks for more, never
 * decides), with bytes after them left alone; the method chosen for each offer, client and
 * socks-users; RFC 1929's sub-negotiation and the constant-time password check; malformed input
 * with the reply code it gets (bad version, BIND and UDP ASSOCIATE, an unknown address type, bad
 * names, over-long fields); the replies' bytes; the code for each way a CONNECT fails; and the HTTP
 * CONNECT head a request becomes, which the HTTP parser takes. No sockets. */
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

#define OFFERS_BOTH (PH_SOCKS5_OFFERS_NO_AUTH | PH_SOCKS5_OFFERS_USERPASS)

static void
test_greeting (void)
{
  static const struct
  {
    const char *bytes;
    gsize len;
    PhSocksResult result;
    gsize consumed;
    PhSocks5Offers offers;
  } cases[] = {
    { B ("\x05\x01\x00"), PH_SOCKS_DONE, 3, PH_SOCKS5_OFFERS_NO_AUTH },
    { B ("\x05\x02\x02\x00"), PH_SOCKS_DONE, 4, OFFERS_BOTH },
    { B ("\x05\x01\x02"), PH_SOCKS_DONE, 3, PH_SOCKS5_OFFERS_USERPASS },
    { B ("\x05\x02\x01\x02"), PH_SOCKS_DONE, 4, PH_SOCKS5_OFFERS_USERPASS }, /* GSS-API ignored */
    { B ("\x05\x01\x01"), PH_SOCKS_DONE, 3, 0 },
    { B ("\x05\x00"), PH_SOCKS_DONE, 2, 0 },
    { B ("\x05\x01\x00\x05\x01"), PH_SOCKS_DONE, 3, PH_SOCKS5_OFFERS_NO_AUTH }, /* request next */
    { B ("\x05\x03\x00"), PH_SOCKS_MORE, 0, 0 },
    { B ("\x04\x01\x00"), PH_SOCKS_ERROR, 0, 0 },
  };

  for (gsize i = 0; i < G_N_ELEMENTS (cases); i++)
    {
      gsize consumed = 99;
      PhSocks5Offers offers = 0x80;
      PhSocksResult r = ph_socks5_parse_greeting ((const guint8 *) cases[i].bytes, cases[i].len,
                                                  &consumed, &offers);

      g_assert_cmpint (r, ==, cases[i].result);
      if (r == PH_SOCKS_DONE)
        {
          g_assert_cmpuint (consumed, ==, cases[i].consumed);
          g_assert_cmpuint (offers, ==, cases[i].offers);
          /* Byte at a time. */
          for (gsize n = 0; n < cases[i].consumed; n++)
            g_assert_cmpint (
                ph_socks5_parse_greeting ((const guint8 *) cases[i].bytes, n, &consumed, &offers),
                ==, PH_SOCKS_MORE);
        }
    }
  /* 255 methods, the most there can be, the last one 0x00. */
  {
    guint8 g[257];
    gsize consumed;
    PhSocks5Offers offers;

    g[0] = 5;
    g[1] = 255;
    memset (g + 2, 0x80, 255);
    g[256] = 0;
    g_assert_cmpint (ph_socks5_parse_greeting (g, sizeof g, &consumed, &offers), ==, PH_SOCKS_DONE);
    g_assert_cmpuint (consumed, ==, 257);
    g_assert_cmpuint (offers, ==, PH_SOCKS5_OFFERS_NO_AUTH);
  }
}

/* Who must sign in: every combination of what is offered, where the client is, and whether
 * [listener] socks-users names anyone. */
static void
test_choose_method (void)
{
  static const struct
  {
    PhSocks5Offers offers;
    gboolean loopback;
    gboolean have_users;
    guint8 method;
  } cases[] = {
    /* Loopback: no sign-in needed; it signs in only when it offers 0x02 alone and users exist. */
    { PH_SOCKS5_OFFERS_NO_AUTH, TRUE, FALSE, PH_SOCKS5_NO_AUTH },
    { PH_SOCKS5_OFFERS_NO_AUTH, TRUE, TRUE, PH_SOCKS5_NO_AUTH },
    { OFFERS_BOTH, TRUE, FALSE, PH_SOCKS5_NO_AUTH },
    { OFFERS_BOTH, TRUE, TRUE, PH_SOCKS5_NO_AUTH },
    { PH_SOCKS5_OFFERS_USERPASS, TRUE, TRUE, PH_SOCKS5_USERPASS },
    { PH_SOCKS5_OFFERS_USERPASS, TRUE, FALSE, PH_SOCKS5_NO_ACCEPTABLE_METHODS },
    { 0, TRUE, TRUE, PH_SOCKS5_NO_ACCEPTABLE_METHODS },
    { 0, TRUE, FALSE, PH_SOCKS5_NO_ACCEPTABLE_METHODS },
    /* Not loopback, users configured: username/password or nothing. */
    { PH_SOCKS5_OFFERS_NO_AUTH, FALSE, TRUE, PH_SOCKS5_NO_ACCEPTABLE_METHODS },
    { OFFERS_BOTH, FALSE, TRUE, PH_SOCKS5_USERPASS },
    { PH_SOCKS5_OFFERS_USERPASS, FALSE, TRUE, PH_SOCKS5_USERPASS },
    { 0, FALSE, TRUE, PH_SOCKS5_NO_ACCEPTABLE_METHODS },
    /* Not loopback, no users: as before (the allow-list limits it). */
    { PH_SOCKS5_OFFERS_NO_AUTH, FALSE, FALSE, PH_SOCKS5_NO_AUTH },
    { OFFERS_BOTH, FALSE, FALSE, PH_SOCKS5_NO_AUTH },
    { PH_SOCKS5_OFFERS_USERPASS, FALSE, FALSE, PH_SOCKS5_NO_ACCEPTABLE_METHODS },
    { 0, FALSE, FALSE, PH_SOCKS5_NO_ACCEPTABLE_METHODS },
  };

  for (gsize i = 0; i < G_N_ELEMENTS (cases); i++)
    {
      g_test_message ("case %" G_GSIZE_FORMAT, i);
      g_assert_cmpuint (
          ph_socks5_choose_method (cases[i].offers, cases[i].loopback, cases[i].have_users), ==,
          cases[i].method);
    }
  /* Who must sign in (and so who may not use SOCKS4, which has no password). */
  g_assert_false (ph_socks_must_sign_in (TRUE, FALSE));
  g_assert_false (ph_socks_must_sign_in (TRUE, TRUE));
  g_assert_false (ph_socks_must_sign_in (FALSE, FALSE));
  g_assert_true (ph_socks_must_sign_in (FALSE, TRUE));
}

/* RFC 1929's sub-negotiation: whole, a byte at a time, with the request after it, and
 * malformed. */
static void
test_auth_parse (void)
{
  static const struct
  {
    const char *bytes;
    gsize len;
    PhSocksResult result;
    gsize consumed;
    const char *username;
    const char *password;
    gsize password_len;
  } cases[] = {
    { B ("\x01\x05"
         "alice\x06"
         "s3cr3t"),
      PH_SOCKS_DONE, 14, "alice", "s3cr3t", 6 },
    { B ("\x01\x01u\x01p\x05\x01\x00"), PH_SOCKS_DONE, 5, "u", "p", 1 }, /* the request follows */
    { B ("\x01\x01u\x00"), PH_SOCKS_DONE, 4, "u", "", 0 },               /* empty password */
    { B ("\x01\x03"
         "a:b\x03"
         "\x00\xff\n"),
      PH_SOCKS_DONE, 9, "a:b", "\x00\xff\n", 3 }, /* any bytes */
    { B ("\x01\x05"
         "alice\x06"
         "s3c"),
      PH_SOCKS_MORE, 0, NULL, NULL, 0 },
    { B ("\x01"), PH_SOCKS_MORE, 0, NULL, NULL, 0 },
    { B ("\x05\x01\x00"), PH_SOCKS_ERROR, 0, NULL, NULL, 0 }, /* a greeting again */
    { B ("\x02\x01u\x01p"), PH_SOCKS_ERROR, 0, NULL, NULL, 0 },
    { B ("\x00"), PH_SOCKS_ERROR, 0, NULL, NULL, 0 },
    { B ("\x01\x00\x01p"), PH_SOCKS_ERROR, 0, NULL, NULL, 0 }, /* no name */
  };

  for (gsize i = 0; i < G_N_ELEMENTS (cases); i++)
    {
      PhSocks5Credentials cred;
      gsize consumed = 99;
      PhSocksResult r
          = ph_socks5_parse_auth ((const guint8 *) cases[i].bytes, cases[i].len, &consumed, &cred);

      g_test_message ("case %" G_GSIZE_FORMAT, i);
      g_assert_cmpint (r, ==, cases[i].result);
      if (r != PH_SOCKS_DONE)
        {
          g_assert_cmpuint (consumed, ==, 0);
          continue;
        }
      g_assert_cmpuint (consumed, ==, cases[i].consumed);
      g_assert_cmpstr (cred.username, ==, cases[i].username);
      g_assert_cmpuint (cred.username_len, ==, strlen (cases[i].username));
      g_assert_cmpmem (cred.password, cred.password_len, cases[i].password, cases[i].password_len);
      for (gsize n = 0; n < cases[i].consumed; n++)
        g_assert_cmpint (
            ph_socks5_parse_auth ((const guint8 *) cases[i].bytes, n, &consumed, &cred), ==,
            PH_SOCKS_MORE);
      ph_socks5_credentials_wipe (&cred);
      g_assert_cmpuint (cred.username_len, ==, 0);
      g_assert_cmpuint (cred.password[0], ==, 0);
    }
  /* The longest: a 255-byte name and a 255-byte password. */
  {
    guint8 a[2 + 255 + 1 + 255];
    PhSocks5Credentials cred;
    gsize consumed;

    a[0] = 1;
    a[1] = 255;
    memset (a + 2, 'n', 255);
    a[257] = 255;
    memset (a + 258, 'p', 255);
    g_assert_cmpint (ph_socks5_parse_auth (a, sizeof a, &consumed, &cred), ==, PH_SOCKS_DONE);
    g_assert_cmpuint (consumed, ==, sizeof a);
    g_assert_cmpuint (strlen (cred.username), ==, 255);
    g_assert_cmpuint (cred.password_len, ==, 255);
    g_assert_true (ph_socks5_check_password (cred.password, &cred));
  }
}

static PhSocks5Credentials
credentials (const char *password, gsize len)
{
  PhSocks5Credentials c = { .username = "alice", .username_len = 5 };

  memcpy (c.password, password, len);
  c.password_len = len;
  return c;
}

static void
test_auth_check (void)
{
  PhSocks5Credentials c = credentials ("s3cr3t", 6);
  char longer[300];

  g_assert_true (ph_socks5_check_password ("s3cr3t", &c));
  g_assert_false (ph_socks5_check_password ("s3cr3u", &c));
  g_assert_false (ph_socks5_check_password ("s3cr3", &c));
  g_assert_false (ph_socks5_check_password ("s3cr3tt", &c));
  g_assert_false (ph_socks5_check_password ("", &c));
  g_assert_false (ph_socks5_check_password (NULL, &c)); /* an unknown user */
  c = credentials ("s3c\0r3t", 7);                      /* a NUL inside is no shorter password */
  g_assert_false (ph_socks5_check_password ("s3c", &c));
  c = credentials ("", 0);
  g_assert_false (ph_socks5_check_password (NULL, &c));
  /* A stored password longer than RFC 1929 can carry never matches. */
  memset (longer, 'x', sizeof longer - 1);
  longer[sizeof longer - 1] = '\0';
  c = credentials (longer, 255);
  g_assert_false (ph_socks5_check_password (longer, &c));
  longer[255] = '\0';
  g_assert_true (ph_socks5_check_password (longer, &c));
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
  ph_socks5_build_method_reply (PH_SOCKS5_USERPASS, m);
  g_assert_cmpmem (m, 2, "\x05\x02", 2);
  /* RFC 1929 §2: VER 1, STATUS 0 for success, anything else a failure. */
  ph_socks5_build_auth_reply (TRUE, m);
  g_assert_cmpmem (m, 2, "\x01\x00", 2);
  ph_socks5_build_auth_reply (FALSE, m);
  g_assert_cmpmem (m, 2, "\x01\x01", 2);
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
  g_test_add_func ("/pinhole/socks/choose-method", test_choose_method);
  g_test_add_func ("/pinhole/socks/auth-parse", test_auth_parse);
  g_test_add_func ("/pinhole/socks/auth-check", test_auth_check);
  g_test_add_func ("/pinhole/socks/detect", test_detect);
  g_test_add_func ("/pinhole/socks/replies", test_replies);
  g_test_add_func ("/pinhole/socks/codes", test_codes);
  g_test_add_func ("/pinhole/socks/to-connect", test_to_connect);
  return g_test_run ();
}

/* SPDX-License-Identifier: GPL-2.0-or-later */
/* test-sniff.c: unit tests for agent/core/ph-sniff.h: the name read from a client's first bytes.
 * Real ClientHellos written by GnuTLS client sessions into memory (TLS 1.2 and 1.3, with and
 * without SNI), fed at every length, re-framed into two records at every split, and crafted ones
 * (names that are not DNS names, too long, beyond the bound); HTTP heads with Host (port, IPv6
 * literal, absolute form), without, and other protocols. No sockets: runs under Wine too.
 * With PH_SNIFF_WRITE_CORPUS=DIR it also writes the inputs it made there, the fuzzer's seeds
 * (tests/fuzz/corpus/sniff/). */
#include "ph-sniff.h"

#include <errno.h>
#include <gnutls/gnutls.h>
#include <string.h>

/* Writes @data to $PH_SNIFF_WRITE_CORPUS/@name when that is set. */
static void
maybe_write_seed (const char *name, const guint8 *data, gsize len)
{
  const char *dir = g_getenv ("PH_SNIFF_WRITE_CORPUS");
  g_autofree char *path = NULL;
  g_autoptr (GError) error = NULL;

  if (dir == NULL)
    return;
  path = g_build_filename (dir, name, NULL);
  g_file_set_contents (path, (const char *) data, len, &error);
  g_assert_no_error (error);
}

/* ph_sniff on an exact-size copy, so the sanitizers see a read past the end. */
static PhSniffResult
sniff_copy (const guint8 *data, gsize len, char **name, PhSniffKind *kind)
{
  g_autofree guint8 *copy = g_memdup2 (data, len);

  return ph_sniff (copy, len, name, kind);
}

/* The whole input gives @want_kind and @want_name, and every shorter prefix asks for more
 * (or, when there is no name, may say so early). */
static void
assert_sniff_incremental (const guint8 *data, gsize len, PhSniffKind want_kind,
                          const char *want_name)
{
  g_autofree char *name = NULL;
  PhSniffKind kind = PH_SNIFF_NONE;

  for (gsize cut = 0; cut < len; cut++)
    {
      g_autofree char *partial = NULL;
      PhSniffKind k = PH_SNIFF_SNI;

      PhSniffResult r = sniff_copy (data, cut, &partial, &k);

      /* No name may be told early, when the bytes so far rule one out. */
      if (r == PH_SNIFF_DONE && want_name == NULL && k == PH_SNIFF_NONE && partial == NULL)
        continue;
      if (r != PH_SNIFF_NEED_MORE)
        g_error ("DONE (%s %s) after %zu of %zu bytes", ph_sniff_kind_to_string (k), partial, cut,
                 len);
      g_assert_null (partial);
    }
  g_assert_cmpint (sniff_copy (data, len, &name, &kind), ==, PH_SNIFF_DONE);
  g_assert_cmpstr (ph_sniff_kind_to_string (kind), ==, ph_sniff_kind_to_string (want_kind));
  g_assert_cmpstr (name, ==, want_name);
}

/* --- ClientHellos from GnuTLS --- */

/* The memory transport: what the client writes, and nothing to read. */
typedef struct
{
  gnutls_session_t session;
  GByteArray *out;
} MemoryTransport;

static ssize_t
push_to_array (gnutls_transport_ptr_t ptr, const void *data, size_t len)
{
  MemoryTransport *t = ptr;

  g_byte_array_append (t->out, data, len);
  return len;
}

static ssize_t
pull_nothing (gnutls_transport_ptr_t ptr, void *data, size_t len)
{
  MemoryTransport *t = ptr;

  (void) data;
  (void) len;
  /* Through GnuTLS, not errno: on Windows it would read WSAGetLastError(). */
  gnutls_transport_set_errno (t->session, EAGAIN);
  return -1;
}

/* The first flight of a GnuTLS client with @priority and @server_name (NULL: none). */
static GByteArray *
gnutls_client_hello (const char *priority, const char *server_name)
{
  GByteArray *out = g_byte_array_new ();
  gnutls_session_t session = NULL;
  gnutls_certificate_credentials_t creds = NULL;
  MemoryTransport transport;
  int r;

  g_assert_cmpint (gnutls_certificate_allocate_credentials (&creds), ==, GNUTLS_E_SUCCESS);
  g_assert_cmpint (gnutls_init (&session, GNUTLS_CLIENT | GNUTLS_NONBLOCK), ==, GNUTLS_E_SUCCESS);
  g_assert_cmpint (gnutls_priority_set_direct (session, priority, NULL), ==, GNUTLS_E_SUCCESS);
  g_assert_cmpint (gnutls_credentials_set (session, GNUTLS_CRD_CERTIFICATE, creds), ==,
                   GNUTLS_E_SUCCESS);
  if (server_name != NULL)
    g_assert_cmpint (
        gnutls_server_name_set (session, GNUTLS_NAME_DNS, server_name, strlen (server_name)), ==,
        GNUTLS_E_SUCCESS);
  transport.session = session;
  transport.out = out;
  gnutls_transport_set_ptr (session, &transport);
  gnutls_transport_set_push_function (session, push_to_array);
  gnutls_transport_set_pull_function (session, pull_nothing);
  r = gnutls_handshake (session);
  g_assert_cmpint (r, ==, GNUTLS_E_AGAIN);
  gnutls_deinit (session);
  gnutls_certificate_free_credentials (creds);
  g_assert_cmpuint (out->len, >, 5);
  g_assert_cmpuint (out->data[0], ==, 22);
  return out;
}

typedef struct
{
  const char *label;
  const char *priority;
  const char *server_name;
  const char *want; /* NULL: no name */
} HelloCase;

static const HelloCase hello_cases[] = {
  { "tls12-sni", "NORMAL:-VERS-ALL:+VERS-TLS1.2", "www.Example.COM", "www.example.com" },
  { "tls13-sni", "NORMAL:-VERS-ALL:+VERS-TLS1.3", "cloud.example.org", "cloud.example.org" },
  { "normal-sni", "NORMAL", "a-b.c1.example", "a-b.c1.example" },
  { "tls12-nosni", "NORMAL:-VERS-ALL:+VERS-TLS1.2", NULL, NULL },
  { "tls13-nosni", "NORMAL:-VERS-ALL:+VERS-TLS1.3", NULL, NULL },
};

/* The handshake messages of @records' first handshake records, joined. */
static GByteArray *
handshake_of (const GByteArray *records)
{
  GByteArray *hs = g_byte_array_new ();
  gsize pos = 0;

  while (pos + 5 <= records->len && records->data[pos] == 22)
    {
      gsize n = (gsize) records->data[pos + 3] << 8 | records->data[pos + 4];

      g_assert_cmpuint (pos + 5 + n, <=, records->len);
      g_byte_array_append (hs, records->data + pos + 5, n);
      pos += 5 + n;
    }
  return hs;
}

/* @hs framed as handshake records of at most @max bytes each, the first @first long (0: @max). */
static GByteArray *
frame_records (const guint8 *hs, gsize len, gsize first, gsize max)
{
  GByteArray *out = g_byte_array_new ();
  gsize pos = 0;

  while (pos < len)
    {
      gsize n = MIN (len - pos, pos == 0 && first > 0 ? first : max);
      guint8 header[5] = { 22, 3, 1, n >> 8, n & 0xff };

      g_byte_array_append (out, header, 5);
      g_byte_array_append (out, hs + pos, n);
      pos += n;
    }
  return out;
}

static void
test_gnutls_hello (gconstpointer data)
{
  const HelloCase *c = data;
  g_autoptr (GByteArray) hello = gnutls_client_hello (c->priority, c->server_name);
  g_autoptr (GByteArray) hs = handshake_of (hello);
  g_autofree char *seed = g_strdup_printf ("hello-%s", c->label);

  maybe_write_seed (seed, hello->data, hello->len);
  assert_sniff_incremental (hello->data, hello->len, c->want ? PH_SNIFF_SNI : PH_SNIFF_NONE,
                            c->want);

  /* Bytes after the ClientHello (early data, a second flight) change nothing. */
  {
    g_autoptr (GByteArray) more = g_byte_array_new ();
    g_autofree char *name = NULL;
    PhSniffKind kind = PH_SNIFF_NONE;

    g_byte_array_append (more, hello->data, hello->len);
    g_byte_array_append (more, (const guint8 *) "\x17\x03\x03\x00\x02xy", 7);
    g_assert_cmpint (sniff_copy (more->data, more->len, &name, &kind), ==, PH_SNIFF_DONE);
    g_assert_cmpstr (name, ==, c->want);
  }

  /* The handshake message re-framed into two records, split at every offset (inside its
   * four-byte header too), and fed at every length. */
  for (gsize split = 1; split < hs->len; split++)
    {
      g_autoptr (GByteArray) two = frame_records (hs->data, hs->len, split, 16384);

      if (split == hs->len / 2)
        {
          g_autofree char *split_seed = g_strdup_printf ("hello-%s-two-records", c->label);

          maybe_write_seed (split_seed, two->data, two->len);
          assert_sniff_incremental (two->data, two->len, c->want ? PH_SNIFF_SNI : PH_SNIFF_NONE,
                                    c->want);
        }
      else
        {
          g_autofree char *name = NULL;
          PhSniffKind kind = PH_SNIFF_NONE;

          g_assert_cmpint (sniff_copy (two->data, two->len, &name, &kind), ==, PH_SNIFF_DONE);
          g_assert_cmpstr (name, ==, c->want);
          g_clear_pointer (&name, g_free);
          g_assert_cmpint (sniff_copy (two->data, two->len - 1, &name, &kind), ==,
                           PH_SNIFF_NEED_MORE);
        }
    }

  /* One record per byte of the message. */
  {
    g_autoptr (GByteArray) many = frame_records (hs->data, hs->len, 1, 1);

    assert_sniff_incremental (many->data, many->len, c->want ? PH_SNIFF_SNI : PH_SNIFF_NONE,
                              c->want);
  }
}

/* --- crafted ClientHellos --- */

static void
put16 (GByteArray *a, gsize v)
{
  guint8 b[2] = { v >> 8, v & 0xff };

  g_byte_array_append (a, b, 2);
}

/* A ClientHello handshake message: a padding extension of @padding bytes (-1: none), then
 * server_name with @name (NULL: no such extension) of name type @name_type. */
static GByteArray *
craft_hello (const char *name, guint8 name_type, gssize padding)
{
  g_autoptr (GByteArray) body = g_byte_array_new ();
  g_autoptr (GByteArray) ext = g_byte_array_new ();
  GByteArray *msg = g_byte_array_new ();
  guint8 random[32] = { 0 };
  guint8 header[4];

  put16 (body, 0x0303);
  g_byte_array_append (body, random, sizeof random);
  g_byte_array_append (body, (const guint8 *) "\0", 1); /* session id */
  put16 (body, 2);
  put16 (body, 0x1301);                                   /* TLS_AES_128_GCM_SHA256 */
  g_byte_array_append (body, (const guint8 *) "\1\0", 2); /* compression: null */

  if (padding >= 0)
    {
      g_autofree guint8 *zeros = g_malloc0 (padding + 1);

      put16 (ext, 21);
      put16 (ext, padding);
      g_byte_array_append (ext, zeros, padding);
    }
  if (name != NULL)
    {
      gsize n = strlen (name);

      put16 (ext, 0);
      put16 (ext, n + 5);
      put16 (ext, n + 3);
      g_byte_array_append (ext, &name_type, 1);
      put16 (ext, n);
      g_byte_array_append (ext, (const guint8 *) name, n);
    }
  put16 (body, ext->len);
  g_byte_array_append (body, ext->data, ext->len);

  header[0] = 1;
  header[1] = body->len >> 16;
  header[2] = (body->len >> 8) & 0xff;
  header[3] = body->len & 0xff;
  g_byte_array_append (msg, header, 4);
  g_byte_array_append (msg, body->data, body->len);
  return msg;
}

typedef struct
{
  const char *label;
  const char *name;
  guint8 name_type;
  const char *want;
} NameCase;

static const NameCase name_cases[] = {
  { "plain", "example.com", 0, "example.com" },
  { "trailing-dot", "Example.Com.", 0, "example.com" },
  { "digits-hyphen", "0-9.x-y.example", 0, "0-9.x-y.example" },
  { "ipv4-shaped", "192.0.2.1", 0, "192.0.2.1" },
  { "underscore", "a_b.example", 0, NULL },
  { "space", "a b.example", 0, NULL },
  { "nul", "a\001b.example", 0, NULL },
  { "utf8", "caf\xc3\xa9.example", 0, NULL },
  { "empty-label", "a..example", 0, NULL },
  { "leading-dot", ".example", 0, NULL },
  { "only-dot", ".", 0, NULL },
  { "two-trailing-dots", "example.com..", 0, NULL },
  { "empty", "", 0, NULL },
  { "ipv6-shaped", "2001:db8::1", 0, NULL },
  { "not-host-name-type", "example.com", 1, NULL },
};

static void
test_crafted_name (gconstpointer data)
{
  const NameCase *c = data;
  g_autoptr (GByteArray) msg = craft_hello (c->name, c->name_type, -1);
  g_autoptr (GByteArray) records = frame_records (msg->data, msg->len, 0, 16384);

  assert_sniff_incremental (records->data, records->len, c->want ? PH_SNIFF_SNI : PH_SNIFF_NONE,
                            c->want);
}

/* 253 characters pass, 254 do not; labels of 63 pass, 64 do not. */
static void
test_name_lengths (void)
{
  struct
  {
    gsize labels, label_len, last_len;
    gboolean ok;
  } cases[] = {
    { 4, 63, 61, TRUE },  /* 63*3 + 3 dots + 61 = 253 */
    { 4, 63, 62, FALSE }, /* 254 */
    { 1, 0, 63, TRUE },   { 1, 0, 64, FALSE }, { 2, 64, 1, FALSE },
  };

  for (gsize i = 0; i < G_N_ELEMENTS (cases); i++)
    {
      g_autoptr (GString) name = g_string_new (NULL);
      g_autoptr (GByteArray) msg = NULL;
      g_autoptr (GByteArray) records = NULL;
      g_autofree char *got = NULL;
      g_autofree char *with_dot = NULL;
      PhSniffKind kind = PH_SNIFF_NONE;

      for (gsize l = 0; l + 1 < cases[i].labels; l++)
        {
          for (gsize k = 0; k < cases[i].label_len; k++)
            g_string_append_c (name, 'a');
          g_string_append_c (name, '.');
        }
      for (gsize k = 0; k < cases[i].last_len; k++)
        g_string_append_c (name, 'B');
      msg = craft_hello (name->str, 0, -1);
      records = frame_records (msg->data, msg->len, 0, 16384);
      g_assert_cmpint (sniff_copy (records->data, records->len, &got, &kind), ==, PH_SNIFF_DONE);
      if (cases[i].ok)
        {
          g_autofree char *lower = g_ascii_strdown (name->str, -1);

          g_assert_cmpint (kind, ==, PH_SNIFF_SNI);
          g_assert_cmpstr (got, ==, lower);
        }
      else
        {
          g_assert_cmpint (kind, ==, PH_SNIFF_NONE);
          g_assert_null (got);
        }

      /* A trailing dot does not count toward the 253. */
      g_clear_pointer (&got, g_free);
      g_clear_pointer (&msg, g_byte_array_unref);
      g_clear_pointer (&records, g_byte_array_unref);
      with_dot = g_strconcat (name->str, ".", NULL);
      msg = craft_hello (with_dot, 0, -1);
      records = frame_records (msg->data, msg->len, 0, 16384);
      g_assert_cmpint (sniff_copy (records->data, records->len, &got, &kind), ==, PH_SNIFF_DONE);
      g_assert_cmpint (kind, ==, cases[i].ok ? PH_SNIFF_SNI : PH_SNIFF_NONE);
    }
}

/* A ClientHello that fits the bound over several records gives its name; one that does not is
 * NONE, never NEED_MORE beyond the bound. */
static void
test_hello_bound (void)
{
  /* About 12 KiB, in records of 1000 bytes. */
  {
    g_autoptr (GByteArray) msg = craft_hello ("big.example", 0, 12000);
    g_autoptr (GByteArray) records = frame_records (msg->data, msg->len, 0, 1000);
    g_autofree char *name = NULL;
    PhSniffKind kind = PH_SNIFF_NONE;

    g_assert_cmpuint (records->len, <, PH_SNIFF_MAX_BYTES);
    maybe_write_seed ("hello-padded-records", records->data, records->len);
    g_assert_cmpint (sniff_copy (records->data, records->len, &name, &kind), ==, PH_SNIFF_DONE);
    g_assert_cmpint (kind, ==, PH_SNIFF_SNI);
    g_assert_cmpstr (name, ==, "big.example");
    g_clear_pointer (&name, g_free);
    g_assert_cmpint (sniff_copy (records->data, records->len - 1, &name, &kind), ==,
                     PH_SNIFF_NEED_MORE);
  }

  /* Over the bound: in one full record (refused at its header), in small records (refused once
   * the handshake header says it cannot fit), and fed at lengths around the bound. */
  for (gsize max = 1000; max <= 16384; max += 15384)
    {
      g_autoptr (GByteArray) msg = craft_hello ("over.example", 0, PH_SNIFF_MAX_BYTES);
      g_autoptr (GByteArray) records = frame_records (msg->data, msg->len, 0, max);
      gsize lengths[]
          = { 9,           5000, PH_SNIFF_MAX_BYTES - 1, PH_SNIFF_MAX_BYTES, PH_SNIFF_MAX_BYTES + 1,
              records->len };

      g_assert_cmpuint (records->len, >, PH_SNIFF_MAX_BYTES);
      for (gsize i = 0; i < G_N_ELEMENTS (lengths); i++)
        {
          g_autofree char *name = NULL;
          PhSniffKind kind = PH_SNIFF_SNI;

          g_assert_cmpint (sniff_copy (records->data, lengths[i], &name, &kind), ==, PH_SNIFF_DONE);
          g_assert_cmpint (kind, ==, PH_SNIFF_NONE);
          g_assert_null (name);
        }
    }

  /* A hello whose records never end (each claims more than is sent) stops at the bound. */
  {
    g_autoptr (GByteArray) msg = craft_hello ("slow.example", 0, 100);
    g_autoptr (GByteArray) records = g_byte_array_new ();
    g_autofree char *name = NULL;
    PhSniffKind kind = PH_SNIFF_SNI;

    /* Handshake header claiming 12000 bytes, then one-byte records up to past the bound. */
    g_byte_array_append (records, (const guint8 *) "\x16\x03\x01\x00\x04\x01\x00\x2e\xe0", 9);
    while (records->len <= PH_SNIFF_MAX_BYTES)
      g_byte_array_append (records, (const guint8 *) "\x16\x03\x01\x00\x01\x00", 6);
    g_assert_cmpint (sniff_copy (records->data, PH_SNIFF_MAX_BYTES - 1, &name, &kind), ==,
                     PH_SNIFF_NEED_MORE);
    g_assert_cmpint (sniff_copy (records->data, PH_SNIFF_MAX_BYTES, &name, &kind), ==,
                     PH_SNIFF_DONE);
    g_assert_cmpint (kind, ==, PH_SNIFF_NONE);
    g_assert_cmpint (sniff_copy (records->data, records->len, &name, &kind), ==, PH_SNIFF_DONE);
    g_assert_cmpint (kind, ==, PH_SNIFF_NONE);
    g_assert_null (name);
  }
}

/* TLS that is not a ClientHello, or whose records are malformed. */
static void
test_tls_not_hello (void)
{
  static const struct
  {
    const char *label;
    const char *bytes;
    gsize len;
  } cases[] = {
    { "sslv2-version", "\x16\x02\x00", 3 },
    { "version-3.9", "\x16\x03\x09", 3 },
    { "empty-record", "\x16\x03\x01\x00\x00", 5 },
    { "record-too-long", "\x16\x03\x01\x40\x01", 5 },
    { "server-hello", "\x16\x03\x03\x00\x04\x02\x00\x00\x00", 9 },
    { "then-alert", "\x16\x03\x01\x00\x02\x01\x00\x15\x03\x01\x00\x02\x02\x28", 14 },
    { "hello-truncated-body", "\x16\x03\x01\x00\x06\x01\x00\x00\x02\x03\x03", 11 },
    { "hello-empty", "\x16\x03\x01\x00\x04\x01\x00\x00\x00", 9 },
  };

  for (gsize i = 0; i < G_N_ELEMENTS (cases); i++)
    {
      g_autofree char *name = NULL;
      PhSniffKind kind = PH_SNIFF_SNI;

      if (sniff_copy ((const guint8 *) cases[i].bytes, cases[i].len, &name, &kind) != PH_SNIFF_DONE)
        g_error ("%s: NEED_MORE", cases[i].label);
      g_assert_cmpint (kind, ==, PH_SNIFF_NONE);
      g_assert_null (name);
    }

  /* A ClientHello without extensions at all. */
  {
    g_autoptr (GByteArray) msg = craft_hello (NULL, 0, -1);
    g_autoptr (GByteArray) records = NULL;

    g_byte_array_set_size (msg, msg->len - 2); /* the empty extensions vector */
    msg->data[3] -= 2;
    records = frame_records (msg->data, msg->len, 0, 16384);
    assert_sniff_incremental (records->data, records->len, PH_SNIFF_NONE, NULL);
  }
}

/* --- HTTP --- */

typedef struct
{
  const char *label;
  const char *head;
  const char *want; /* NULL: no name */
} HttpCase;

static const HttpCase http_cases[] = {
  { "host", "GET / HTTP/1.1\r\nHost: www.Example.com\r\nAccept: */*\r\n\r\n", "www.example.com" },
  { "host-port", "GET /a?b HTTP/1.1\r\nHost: example.com:8080\r\n\r\n", "example.com" },
  { "host-empty-port", "GET / HTTP/1.1\r\nHost: example.com:\r\n\r\n", "example.com" },
  { "host-trailing-dot", "GET / HTTP/1.1\r\nHost: example.com.:80\r\n\r\n", "example.com" },
  { "host-ipv4", "GET / HTTP/1.1\r\nHost: 192.0.2.7:81\r\n\r\n", "192.0.2.7" },
  { "host-ipv6", "GET / HTTP/1.1\r\nHost: [2001:DB8::1]\r\n\r\n", "2001:db8::1" },
  { "host-ipv6-port", "HEAD / HTTP/1.1\r\nHost: [::ffff:192.0.2.1]:8080\r\n\r\n",
    "::ffff:192.0.2.1" },
  { "http10-host", "GET / HTTP/1.0\r\nHost: old.example\r\n\r\n", "old.example" },
  { "absolute", "GET http://Abs.Example:8080/x HTTP/1.1\r\nHost: other.example\r\n\r\n",
    "abs.example" },
  { "absolute-ipv6", "GET http://[2001:db8::2]/ HTTP/1.1\r\nHost: [2001:db8::2]\r\n\r\n",
    "2001:db8::2" },
  { "post-body", "POST /up HTTP/1.1\r\nHost: up.example\r\nContent-Length: 5\r\n\r\n",
    "up.example" },
  { "no-host-http10", "GET / HTTP/1.0\r\nAccept: */*\r\n\r\n", NULL },
  { "no-host-http11", "GET / HTTP/1.1\r\n\r\n", NULL },
  { "host-underscore", "GET / HTTP/1.1\r\nHost: a_b.example\r\n\r\n", NULL },
  { "host-userinfo", "GET / HTTP/1.1\r\nHost: user@example.com\r\n\r\n", NULL },
  { "host-bad-port", "GET / HTTP/1.1\r\nHost: example.com:8x\r\n\r\n", NULL },
  { "host-two-colons", "GET / HTTP/1.1\r\nHost: example.com:80:80\r\n\r\n", NULL },
  { "host-ipv6-zone", "GET / HTTP/1.1\r\nHost: [fe80::1%25eth0]\r\n\r\n", NULL },
  { "host-ipv6-unclosed", "GET / HTTP/1.1\r\nHost: [2001:db8::1\r\n\r\n", NULL },
  { "host-ipv6-junk", "GET / HTTP/1.1\r\nHost: [2001:db8::1]x\r\n\r\n", NULL },
  { "host-bracketed-name", "GET / HTTP/1.1\r\nHost: [example.com]\r\n\r\n", NULL },
  { "host-empty", "GET / HTTP/1.1\r\nHost: \r\n\r\n", NULL },
  { "two-hosts", "GET / HTTP/1.1\r\nHost: a.example\r\nHost: b.example\r\n\r\n", NULL },
  { "bad-version", "GET / HTTP/2.0\r\nHost: a.example\r\n\r\n", NULL },
};

static void
test_http (gconstpointer data)
{
  const HttpCase *c = data;
  g_autofree char *seed = g_strdup_printf ("http-%s", c->label);

  maybe_write_seed (seed, (const guint8 *) c->head, strlen (c->head));
  assert_sniff_incremental ((const guint8 *) c->head, strlen (c->head),
                            c->want ? PH_SNIFF_HOST : PH_SNIFF_NONE, c->want);
}

/* A Host name over 253 characters is no name. */
static void
test_http_long_name (void)
{
  g_autoptr (GString) head = g_string_new ("GET / HTTP/1.1\r\nHost: ");
  g_autofree char *name = NULL;
  PhSniffKind kind = PH_SNIFF_SNI;

  for (int i = 0; i < 5; i++)
    g_string_append (head, "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa.");
  g_string_append (head, "example\r\n\r\n");
  g_assert_cmpint (sniff_copy ((const guint8 *) head->str, head->len, &name, &kind), ==,
                   PH_SNIFF_DONE);
  g_assert_cmpint (kind, ==, PH_SNIFF_NONE);
  g_assert_null (name);
}

/* A head that does not end within the bound has no name. */
static void
test_http_bound (void)
{
  g_autoptr (GString) head = g_string_new ("GET / HTTP/1.1\r\nHost: a.example\r\n");
  g_autofree char *name = NULL;
  PhSniffKind kind = PH_SNIFF_SNI;

  /* Long fields: the parser's limit of 100 fields is not the one reached. */
  while (head->len < PH_SNIFF_MAX_BYTES + 100)
    {
      g_string_append (head, "X-Filler: ");
      for (int i = 0; i < 50; i++)
        g_string_append (head, "0123456789");
      g_string_append (head, "\r\n");
    }
  g_assert_cmpint (sniff_copy ((const guint8 *) head->str, PH_SNIFF_MAX_BYTES - 1, &name, &kind),
                   ==, PH_SNIFF_NEED_MORE);
  g_assert_cmpint (sniff_copy ((const guint8 *) head->str, PH_SNIFF_MAX_BYTES, &name, &kind), ==,
                   PH_SNIFF_DONE);
  g_assert_cmpint (kind, ==, PH_SNIFF_NONE);
  g_assert_cmpint (sniff_copy ((const guint8 *) head->str, head->len, &name, &kind), ==,
                   PH_SNIFF_DONE);
  g_assert_cmpint (kind, ==, PH_SNIFF_NONE);
  g_assert_null (name);
}

/* Other protocols and garbage: NONE as soon as the first bytes tell; NEED_MORE only while they
 * could still begin a ClientHello or a request. */
static void
test_other (void)
{
  static const struct
  {
    const char *bytes;
    gsize len;
    PhSniffResult want;
  } cases[] = {
    { "", 0, PH_SNIFF_NEED_MORE },
    { "\x16", 1, PH_SNIFF_NEED_MORE },
    { "\x16\x03", 2, PH_SNIFF_NEED_MORE },
    { "G", 1, PH_SNIFF_NEED_MORE },
    { "GET", 3, PH_SNIFF_NEED_MORE },
    { "GET /", 5, PH_SNIFF_NEED_MORE },
    { "SSH-2.0-OpenSSH_9.2p1\r\n", 23, PH_SNIFF_DONE },
    { "get / HTTP/1.1\r\n", 16, PH_SNIFF_DONE },
    { " GET", 4, PH_SNIFF_DONE },
    { "\x05\x01\x00", 3, PH_SNIFF_DONE },         /* SOCKS5 */
    { "\x80\x2e\x01\x03\x01", 5, PH_SNIFF_DONE }, /* SSLv2-style hello */
    { "\x00\x00\x00\x00", 4, PH_SNIFF_DONE },
    { "\r\n\r\n", 4, PH_SNIFF_DONE },
    { "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", 24, PH_SNIFF_DONE },
    { "GETGETGETGETGETGETGETGETGETGET", 30, PH_SNIFF_DONE },
    { "GET / HTTP/1.1\nHost: a.example\n\n", 32, PH_SNIFF_DONE },
    { "GET / HTTP/1.1\r\nHost: a\x01.example\r\n\r\n", 35, PH_SNIFF_DONE },
  };

  for (gsize i = 0; i < G_N_ELEMENTS (cases); i++)
    {
      g_autofree char *name = NULL;
      PhSniffKind kind = PH_SNIFF_SNI;

      g_test_message ("case %zu", i);
      g_assert_cmpint (sniff_copy ((const guint8 *) cases[i].bytes, cases[i].len, &name, &kind), ==,
                       cases[i].want);
      g_assert_cmpint (kind, ==, PH_SNIFF_NONE);
      g_assert_null (name);
      if (cases[i].len > 0 && cases[i].want == PH_SNIFF_DONE)
        {
          g_autofree char *seed = g_strdup_printf ("other-%zu", i);

          maybe_write_seed (seed, (const guint8 *) cases[i].bytes, cases[i].len);
        }
    }

  /* Any input of the bound's length or more is decided. */
  {
    g_autofree guint8 *big = g_malloc (PH_SNIFF_MAX_BYTES);
    g_autofree char *name = NULL;
    PhSniffKind kind = PH_SNIFF_SNI;

    memset (big, 'A', PH_SNIFF_MAX_BYTES);
    g_assert_cmpint (sniff_copy (big, PH_SNIFF_MAX_BYTES, &name, &kind), ==, PH_SNIFF_DONE);
    g_assert_cmpint (kind, ==, PH_SNIFF_NONE);
  }
  g_assert_cmpstr (ph_sniff_kind_to_string (PH_SNIFF_SNI), ==, "sni");
  g_assert_cmpstr (ph_sniff_kind_to_string (PH_SNIFF_HOST), ==, "host");
  g_assert_cmpstr (ph_sniff_kind_to_string (PH_SNIFF_NONE), ==, "none");
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  g_assert_cmpint (gnutls_global_init (), ==, GNUTLS_E_SUCCESS);

  for (gsize i = 0; i < G_N_ELEMENTS (hello_cases); i++)
    {
      g_autofree char *path = g_strdup_printf ("/pinhole/sniff/gnutls/%s", hello_cases[i].label);
      g_test_add_data_func (path, &hello_cases[i], test_gnutls_hello);
    }
  for (gsize i = 0; i < G_N_ELEMENTS (name_cases); i++)
    {
      g_autofree char *path = g_strdup_printf ("/pinhole/sniff/sni-name/%s", name_cases[i].label);
      g_test_add_data_func (path, &name_cases[i], test_crafted_name);
    }
  g_test_add_func ("/pinhole/sniff/sni-name-lengths", test_name_lengths);
  g_test_add_func ("/pinhole/sniff/hello-bound", test_hello_bound);
  g_test_add_func ("/pinhole/sniff/tls-not-hello", test_tls_not_hello);
  for (gsize i = 0; i < G_N_ELEMENTS (http_cases); i++)
    {
      g_autofree char *path = g_strdup_printf ("/pinhole/sniff/http/%s", http_cases[i].label);
      g_test_add_data_func (path, &http_cases[i], test_http);
    }
  g_test_add_func ("/pinhole/sniff/http-long-name", test_http_long_name);
  g_test_add_func ("/pinhole/sniff/http-bound", test_http_bound);
  g_test_add_func ("/pinhole/sniff/other", test_other);
  return g_test_run ();
}

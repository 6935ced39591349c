/* SPDX-License-Identifier: GPL-2.0-or-later */
/* fuzz-body-scanner.c: libFuzzer harness for the message-body framer. The
 * end of a body must not depend on how the bytes arrive: the same input fed
 * at once, byte by byte and in random pieces must end at the same place; and
 * a chunked body must end, or be refused, exactly where a second, separate
 * reading of RFC 9112 §7.1 (the reference below) says. The payload that
 * ph_body_scanner_decode() takes out of it must not depend on the pieces
 * either, and framed again as one chunk it must decode to itself. */
#include "ph-http.h"

#include <stdint.h>
#include <string.h>

int LLVMFuzzerTestOneInput (const uint8_t *data, size_t size);

typedef struct
{
  gssize error_at; /* -1: no error; else bytes accepted before the error */
  gsize used;      /* bytes that belong to the body */
  gboolean done;
  GByteArray *payload; /* what ph_body_scanner_decode() took out */
} Outcome;

/* xorshift32: cheap splits reproducible from the input. */
static guint32
next_rand (guint32 *state)
{
  guint32 x = *state;

  x ^= x << 13;
  x ^= x >> 17;
  x ^= x << 5;
  return *state = x;
}

/* Feeds @body in pieces of at most @max_piece bytes (0: all at once). */
static Outcome
scan (PhBodyMode mode, guint64 length, const guint8 *body, gsize len, guint32 seed, gsize max_piece)
{
  g_autoptr (PhBodyScanner) s = ph_body_scanner_new (PH_BODY_NONE, 0);
  Outcome o = { -1, 0, FALSE, g_byte_array_new () };
  guint32 state = seed | 1;

  ph_body_scanner_init (s, mode, length);
  while (o.used < len && !ph_body_scanner_is_done (s))
    {
      gsize piece = max_piece == 0 ? len - o.used : 1 + next_rand (&state) % max_piece;
      gssize n;

      piece = MIN (piece, len - o.used);
      n = ph_body_scanner_decode (s, body + o.used, piece, o.payload);
      if (n < 0)
        {
          o.error_at = o.used;
          return o;
        }
      g_assert_cmpint (n, <=, piece);
      /* Short only at the end of the body. */
      if ((gsize) n < piece)
        g_assert_true (ph_body_scanner_is_done (s));
      o.used += n;
    }
  o.done = ph_body_scanner_is_done (s);
  /* Once done, nothing more is body. */
  g_assert_cmpint (ph_body_scanner_is_done (s) ? ph_body_scanner_feed (s, body, len) : 0, ==, 0);
  return o;
}

/* ---- the reference: RFC 9112 §7.1 read over the whole buffer at once ----
 *
 * Written apart from the scanner's state machine, in another shape
 * (recursive descent, limits checked after the grammar), so that a mistake
 * in one is unlikely to be repeated in the other. The limits are the ones
 * ph-http.c documents: 15 hex digits, 4096 bytes before a line's CR, 64 KiB
 * of trailer section. */

#define REF_SIZE_DIGITS 15
#define REF_LINE_MAX 4096
#define REF_TRAILER_MAX (64 * 1024)

typedef enum
{
  REF_OK,   /* a grammar piece matched */
  REF_MORE, /* the input ended inside a piece that could still match */
  REF_BAD,  /* the byte at pos cannot be there */
} RefStatus;

typedef struct
{
  const guint8 *p;
  gsize len;
  gsize pos;
} Cursor;

static int
peek (const Cursor *c)
{
  return c->pos < c->len ? c->p[c->pos] : -1;
}

static gboolean
ref_tchar (int b)
{
  static const char extra[] = "!#$%&'*+-.^_`|~";

  if ((b >= '0' && b <= '9') || (b >= 'a' && b <= 'z') || (b >= 'A' && b <= 'Z'))
    return TRUE;
  for (gsize i = 0; i < sizeof extra - 1; i++)
    if (b == extra[i])
      return TRUE;
  return FALSE;
}

/* HTAB / SP / VCHAR / obs-text */
static gboolean
ref_vchar_or_ws (int b)
{
  return b == '\t' || b == ' ' || (b >= 0x21 && b <= 0x7e) || b >= 0x80;
}

static int
ref_hex (int b)
{
  if (b >= '0' && b <= '9')
    return b - '0';
  if (b >= 'a' && b <= 'f')
    return b - 'a' + 10;
  if (b >= 'A' && b <= 'F')
    return b - 'A' + 10;
  return -1;
}

static RefStatus
ref_byte (Cursor *c, int want)
{
  if (peek (c) < 0)
    return REF_MORE;
  if (peek (c) != want)
    return REF_BAD;
  c->pos++;
  return REF_OK;
}

static gsize
ref_bws (Cursor *c)
{
  gsize n = 0;

  while (peek (c) == ' ' || peek (c) == '\t')
    c->pos++, n++;
  return n;
}

static RefStatus
ref_token (Cursor *c)
{
  gsize start = c->pos;

  while (ref_tchar (peek (c)))
    c->pos++;
  if (c->pos > start)
    return REF_OK;
  return peek (c) < 0 ? REF_MORE : REF_BAD;
}

static RefStatus
ref_quoted_string (Cursor *c)
{
  c->pos++; /* the opening DQUOTE */
  for (;;)
    {
      int b = peek (c);

      if (b < 0)
        return REF_MORE;
      if (b == '"')
        {
          c->pos++;
          return REF_OK;
        }
      if (b == '\\')
        {
          c->pos++;
          if (peek (c) < 0)
            return REF_MORE;
          if (!ref_vchar_or_ws (peek (c)))
            return REF_BAD;
        }
      else if (!ref_vchar_or_ws (b))
        return REF_BAD;
      c->pos++;
    }
}

/* chunk-size [ chunk-ext ], up to (not including) the CR; *@size set. */
static RefStatus
ref_size_line_body (Cursor *c, guint64 *size)
{
  guint digits = 0;
  RefStatus st;

  *size = 0;
  while (ref_hex (peek (c)) >= 0)
    {
      if (digits == REF_SIZE_DIGITS)
        return REF_BAD;
      *size = *size * 16 + (guint64) ref_hex (peek (c));
      digits++;
      c->pos++;
    }
  if (peek (c) < 0)
    return REF_MORE;
  if (digits == 0)
    return REF_BAD;
  for (;;)
    {
      /* *( BWS ";" BWS chunk-ext-name [ BWS "=" BWS chunk-ext-val ] ) */
      gsize ws = ref_bws (c);
      gsize after_name;

      if (peek (c) < 0)
        return REF_MORE;
      if (peek (c) == '\r' && ws == 0)
        return REF_OK;
      if (peek (c) != ';')
        return REF_BAD;
      c->pos++;
      ref_bws (c);
      if ((st = ref_token (c)) != REF_OK)
        return st;
      after_name = c->pos;
      ref_bws (c);
      if (peek (c) < 0)
        return REF_MORE;
      if (peek (c) != '=')
        {
          /* No value: the BWS belongs to the next ";" if any. */
          c->pos = after_name;
          continue;
        }
      c->pos++;
      ref_bws (c);
      if (peek (c) == '"')
        st = ref_quoted_string (c);
      else
        st = ref_token (c);
      if (st != REF_OK)
        return st;
    }
}

/* field-name ":" field-value, up to (not including) the CR. */
static RefStatus
ref_field_line_body (Cursor *c)
{
  RefStatus st;

  if ((st = ref_token (c)) != REF_OK)
    return st;
  if ((st = ref_byte (c, ':')) != REF_OK)
    return st;
  while (peek (c) >= 0 && peek (c) != '\r')
    {
      if (!ref_vchar_or_ws (peek (c)))
        return REF_BAD;
      c->pos++;
    }
  return peek (c) < 0 ? REF_MORE : REF_OK;
}

/* How far a grammar piece got: for OK, the end; for BAD, one past the byte
 * refused; for MORE, the end of the input. */
static gsize
reach (const Cursor *c, RefStatus st)
{
  return st == REF_BAD ? c->pos + 1 : c->pos;
}

/* A line body, then the length limit applied to what it covered: the scanner
 * refuses the first byte past @max, whatever comes after it. */
static RefStatus
ref_limited (Cursor *c, RefStatus st, gsize start, gsize max)
{
  if (reach (c, st) > start + max)
    {
      c->pos = start + max;
      return REF_BAD;
    }
  return st;
}

static RefStatus
ref_crlf (Cursor *c)
{
  RefStatus st = ref_byte (c, '\r');

  return st == REF_OK ? ref_byte (c, '\n') : st;
}

static RefStatus
ref_trailer_section (Cursor *c)
{
  for (;;)
    {
      gsize start = c->pos;
      RefStatus st;

      if (peek (c) == '\r')
        return ref_crlf (c);
      st = ref_limited (c, ref_field_line_body (c), start, REF_LINE_MAX);
      if (st == REF_OK)
        st = ref_crlf (c);
      if (st != REF_OK)
        return st;
    }
}

/* The whole chunked body from the start of @c. OK: it ends at c->pos;
 * BAD: c->pos is the first byte refused; MORE: every byte was valid. */
static RefStatus
ref_chunked (Cursor *c)
{
  RefStatus st;
  gsize section;

  for (;;)
    {
      gsize start = c->pos;
      guint64 size = 0;

      st = ref_limited (c, ref_size_line_body (c, &size), start, REF_LINE_MAX);
      if (st == REF_OK)
        st = ref_crlf (c);
      if (st != REF_OK)
        return st;
      if (size == 0)
        break;
      if (c->len - c->pos < size)
        {
          c->pos = c->len;
          return REF_MORE;
        }
      c->pos += size;
      if ((st = ref_crlf (c)) != REF_OK)
        return st;
    }
  section = c->pos;
  return ref_limited (c, ref_trailer_section (c), section, REF_TRAILER_MAX);
}

/* The scanner's outcomes against the reference: the same verdict, and the
 * same byte for the end of the body or for the refusal. */
static void
check_reference (const guint8 *body, gsize len, const Outcome *whole, const Outcome *bytes)
{
  Cursor c = { body, len, 0 };
  RefStatus st = ref_chunked (&c);

  switch (st)
    {
      case REF_OK:
        g_assert_cmpint (whole->error_at, ==, -1);
        g_assert_true (whole->done);
        g_assert_cmpuint (whole->used, ==, c.pos);
        break;
      case REF_MORE:
        g_assert_cmpint (whole->error_at, ==, -1);
        g_assert_false (whole->done);
        g_assert_cmpuint (whole->used, ==, len);
        break;
      case REF_BAD:
        g_assert_cmpint (whole->error_at, >=, 0);
        /* Fed one byte at a time, the refused piece is the refused byte. */
        g_assert_cmpint (bytes->error_at, ==, (gssize) c.pos);
        break;
      default:
        g_assert_not_reached ();
    }
}

static void
assert_same (const Outcome *a, const Outcome *b)
{
  g_assert_cmpint (a->error_at >= 0, ==, b->error_at >= 0);
  if (a->error_at < 0)
    {
      g_assert_cmpuint (a->used, ==, b->used);
      g_assert_cmpint (a->done, ==, b->done);
    }
}

/* The same payload, whatever the pieces. */
static void
assert_same_payload (const Outcome *a, const Outcome *b)
{
  if (a->error_at < 0 && b->error_at < 0)
    g_assert_cmpmem (a->payload->data, a->payload->len, b->payload->data, b->payload->len);
}

/* @payload framed as one chunk and the last chunk decodes to itself. */
static void
check_rechunked (const GByteArray *payload)
{
  g_autoptr (PhBodyScanner) s = ph_body_scanner_new (PH_BODY_CHUNKED, 0);
  g_autoptr (GByteArray) framed = g_byte_array_new ();
  g_autoptr (GByteArray) again = g_byte_array_new ();
  g_autofree char *size = g_strdup_printf ("%x\r\n", payload->len);

  if (payload->len > 0)
    {
      g_byte_array_append (framed, (const guint8 *) size, strlen (size));
      g_byte_array_append (framed, payload->data, payload->len);
      g_byte_array_append (framed, (const guint8 *) "\r\n", 2);
    }
  g_byte_array_append (framed, (const guint8 *) "0\r\n\r\n", 5);
  g_assert_cmpint (ph_body_scanner_decode (s, framed->data, framed->len, again), ==, framed->len);
  g_assert_true (ph_body_scanner_is_done (s));
  g_assert_cmpmem (again->data, again->len, payload->data, payload->len);
}

static void
outcome_clear (Outcome *o)
{
  g_byte_array_unref (o->payload);
}

int
LLVMFuzzerTestOneInput (const uint8_t *data, size_t size)
{
  guint32 seed;
  guint8 *body;
  gsize len;
  Outcome whole, bytes, pieces;

  if (size < 5)
    return 0;
  memcpy (&seed, data, 4);
  len = size - 5;
  body = g_malloc (MAX (len, 1));
  memcpy (body, data + 5, len);

  /* Chunked: the framing with state. */
  whole = scan (PH_BODY_CHUNKED, 0, body, len, seed, 0);
  bytes = scan (PH_BODY_CHUNKED, 0, body, len, seed, 1);
  pieces = scan (PH_BODY_CHUNKED, 0, body, len, seed, 1 + data[4] % 64);
  assert_same (&whole, &bytes);
  assert_same (&whole, &pieces);
  check_reference (body, len, &whole, &bytes);
  if (whole.error_at < 0 && !whole.done)
    g_assert_cmpuint (whole.used, ==, len);
  assert_same_payload (&whole, &bytes);
  assert_same_payload (&whole, &pieces);
  if (whole.error_at < 0)
    {
      g_assert_cmpuint (whole.payload->len, <=, whole.used);
      check_rechunked (whole.payload);
    }
  outcome_clear (&whole);
  outcome_clear (&bytes);
  outcome_clear (&pieces);

  /* Content-Length: the body ends exactly after the given length. */
  {
    guint64 length = seed % (len + 8);
    Outcome l1 = scan (PH_BODY_LENGTH, length, body, len, seed, 0);
    Outcome l2 = scan (PH_BODY_LENGTH, length, body, len, seed, 1 + data[4] % 7);

    g_assert_cmpint (l1.error_at, ==, -1);
    g_assert_cmpuint (l1.used, ==, MIN (length, len));
    g_assert_cmpint (l1.done, ==, length <= len);
    assert_same (&l1, &l2);
    assert_same_payload (&l1, &l2);
    g_assert_cmpmem (l1.payload->data, l1.payload->len, body, l1.used);
    outcome_clear (&l1);
    outcome_clear (&l2);
  }
  g_free (body);
  return 0;
}

/* fuzz-body-scanner.c: libFuzzer harness for the message-body framer. The
 * end of a body must not depend on how the bytes arrive: the same input fed
 * at once, byte by byte and in random pieces must end at the same place. */
#include "ph-http.h"

#include <stdint.h>
#include <string.h>

int LLVMFuzzerTestOneInput (const uint8_t *data, size_t size);

typedef struct
{
  gssize error_at; /* -1: no error; else bytes accepted before the error */
  gsize used;      /* bytes that belong to the body */
  gboolean done;
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
  PhBodyScanner s;
  Outcome o = { -1, 0, FALSE };
  guint32 state = seed | 1;

  ph_body_scanner_init (&s, mode, length);
  while (o.used < len && !s.done)
    {
      gsize piece = max_piece == 0 ? len - o.used : 1 + next_rand (&state) % max_piece;
      gssize n;

      piece = MIN (piece, len - o.used);
      n = ph_body_scanner_feed (&s, body + o.used, piece);
      if (n < 0)
        {
          o.error_at = o.used;
          return o;
        }
      g_assert_cmpint (n, <=, piece);
      /* Short only at the end of the body. */
      if ((gsize) n < piece)
        g_assert_true (s.done);
      o.used += n;
    }
  o.done = s.done;
  /* Once done, nothing more is body. */
  g_assert_cmpint (s.done ? ph_body_scanner_feed (&s, body, len) : 0, ==, 0);
  return o;
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
  if (whole.error_at < 0 && !whole.done)
    g_assert_cmpuint (whole.used, ==, len);

  /* Content-Length: the body ends exactly after the given length. */
  {
    guint64 length = seed % (len + 8);
    Outcome l1 = scan (PH_BODY_LENGTH, length, body, len, seed, 0);
    Outcome l2 = scan (PH_BODY_LENGTH, length, body, len, seed, 1 + data[4] % 7);

    g_assert_cmpint (l1.error_at, ==, -1);
    g_assert_cmpuint (l1.used, ==, MIN (length, len));
    g_assert_cmpint (l1.done, ==, length <= len);
    assert_same (&l1, &l2);
  }
  g_free (body);
  return 0;
}

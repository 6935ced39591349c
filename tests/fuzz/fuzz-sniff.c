/* SPDX-License-Identifier: GPL-2.0-or-later */
/* fuzz-sniff.c: libFuzzer harness for ph-sniff.c, the ClientHello and Host name recovery:
 * no read outside the bytes given, a name only when it is a DNS name or an IP literal, never
 * NEED_MORE at the bound, and a decision that more bytes never change. */
#include "ph-sniff.h"

#include <stdint.h>
#include <string.h>

int LLVMFuzzerTestOneInput (const uint8_t *data, size_t size);

static PhSniffResult
sniff_copy (const guint8 *data, gsize len, char **name, PhSniffKind *kind)
{
  /* An exact-size copy, so ASan sees any read past the end; never NULL. */
  g_autofree guint8 *copy = g_malloc (MAX (len, 1));

  memcpy (copy, data, len);
  return ph_sniff (copy, len, name, kind);
}

static void
check_name (PhSniffKind kind, const char *name)
{
  gsize n;

  if (kind == PH_SNIFF_NONE)
    {
      g_assert_null (name);
      return;
    }
  g_assert_true (kind == PH_SNIFF_SNI || kind == PH_SNIFF_HOST);
  g_assert_nonnull (name);
  n = strlen (name);
  g_assert_cmpuint (n, >, 0);
  g_assert_cmpuint (n, <=, 253);
  g_assert_true (name[n - 1] != '.');
  g_assert_true (name[0] != '.');
  g_assert_null (strstr (name, ".."));
  if (strchr (name, ':') != NULL)
    {
      /* Only an HTTP Host or target gives an IPv6 literal. */
      g_assert_cmpint (kind, ==, PH_SNIFF_HOST);
      g_assert_true (g_hostname_is_ip_address (name));
      g_assert_cmpuint (strspn (name, "0123456789abcdef:."), ==, n);
    }
  else
    g_assert_cmpuint (strspn (name, "abcdefghijklmnopqrstuvwxyz0123456789-."), ==, n);
}

/* After DONE, the same bytes with more behind them are decided the same. */
static void
check_same (const guint8 *data, gsize len, PhSniffKind kind, const char *name)
{
  g_autofree char *again = NULL;
  PhSniffKind again_kind = PH_SNIFF_NONE;

  g_assert_cmpint (sniff_copy (data, len, &again, &again_kind), ==, PH_SNIFF_DONE);
  g_assert_cmpint (again_kind, ==, kind);
  g_assert_cmpstr (again, ==, name);
}

int
LLVMFuzzerTestOneInput (const uint8_t *data, size_t size)
{
  g_autofree char *name = NULL;
  PhSniffKind kind = PH_SNIFF_SNI;
  PhSniffResult r = sniff_copy (data, size, &name, &kind);

  if (r == PH_SNIFF_NEED_MORE)
    {
      g_assert_cmpuint (size, <, PH_SNIFF_MAX_BYTES);
      g_assert_null (name);
      return 0;
    }
  g_assert_cmpint (r, ==, PH_SNIFF_DONE);
  check_name (kind, name);

  /* More bytes change nothing: some junk behind the input. */
  {
    g_autofree guint8 *longer = g_malloc (size + 7);

    memcpy (longer, data, size);
    memcpy (longer + size, "\r\n\x16\x03\x01\0\x01", 7);
    check_same (longer, size + 7, kind, name);
  }
  /* A shorter input asks for more or is decided the same. */
  for (gsize cut = size / 2; cut < size; cut += MAX ((size - cut) / 2, 1))
    {
      g_autofree char *partial = NULL;
      PhSniffKind partial_kind = PH_SNIFF_SNI;

      if (sniff_copy (data, cut, &partial, &partial_kind) == PH_SNIFF_DONE)
        {
          g_assert_cmpint (partial_kind, ==, kind);
          g_assert_cmpstr (partial, ==, name);
        }
    }
  return 0;
}

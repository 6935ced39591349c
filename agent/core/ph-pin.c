/* SPDX-License-Identifier: GPL-2.0-or-later */
/* ph-pin.c: computing and checking SPKI SHA-256 pins with GnuTLS. */
#define G_LOG_DOMAIN "pinhole-pin"

#include "ph-pin.h"
#include "ph-error.h"
#include "ph-tls-util.h"

#include <string.h>
#include <glib/gi18n.h>
#include <gnutls/abstract.h>
#include <gnutls/crypto.h>
#include <gnutls/x509.h>

#define PIN_PREFIX "sha256//"

struct _PhPin
{
  guint8 digest[PH_PIN_LEN];
};

PhPin *
ph_pin_new (const guint8 *digest)
{
  PhPin *pin = g_new (PhPin, 1);

  memcpy (pin->digest, digest, PH_PIN_LEN);
  return pin;
}

PhPin *
ph_pin_copy (const PhPin *pin)
{
  return ph_pin_new (pin->digest);
}

void
ph_pin_free (PhPin *pin)
{
  g_free (pin);
}

const guint8 *
ph_pin_get_digest (const PhPin *pin)
{
  return pin->digest;
}

gboolean
ph_pin_equal (const PhPin *a, const PhPin *b)
{
  return gnutls_memcmp (a->digest, b->digest, PH_PIN_LEN) == 0;
}

PhPin *
ph_pin_parse (const char *text, GError **error)
{
  g_autofree guint8 *raw = NULL;
  gsize len = 0;
  const char *b64;

  if (!g_str_has_prefix (text, PIN_PREFIX))
    {
      g_set_error (error, PH_ERROR, PH_ERROR_INVALID_CONFIG,
                   /* TRANSLATORS: %s is what the user wrote; sha256//BASE64 is the form of a
                    * pin (keep sha256//; BASE64 stands for the key's hash in base64) */
                   _ ("“%s” is not a pin: expected sha256//BASE64"), text);
      return NULL;
    }
  b64 = text + strlen (PIN_PREFIX);
  /* g_base64_decode accepts garbage quietly; check the alphabet first. */
  if (strlen (b64) != 44 || b64[43] != '='
      || strspn (b64, "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
                      "abcdefghijklmnopqrstuvwxyz"
                      "0123456789+/")
             != 43)
    {
      g_set_error (error, PH_ERROR, PH_ERROR_INVALID_CONFIG,
                   /* TRANSLATORS: %s is what the user wrote; keep sha256// */
                   _ ("“%s” is not a SHA-256 pin: expected 44 base64 characters after sha256//"),
                   text);
      return NULL;
    }
  raw = g_base64_decode (b64, &len);
  if (len != PH_PIN_LEN)
    {
      g_set_error (error, PH_ERROR, PH_ERROR_INVALID_CONFIG,
                   /* TRANSLATORS: the pin the user wrote, then how many bytes it decodes to */
                   _ ("“%s” decodes to %zu bytes, not 32"), text, len);
      return NULL;
    }
  return ph_pin_new (raw);
}

char *
ph_pin_to_string (const PhPin *pin)
{
  g_autofree char *b64 = g_base64_encode (pin->digest, PH_PIN_LEN);
  return g_strconcat (PIN_PREFIX, b64, NULL);
}

PhPin *
ph_pin_new_from_der_certificate (const guint8 *der, gsize len, GError **error)
{
  guint8 digest[PH_PIN_LEN];
  g_auto (gnutls_x509_crt_t) crt = NULL;
  g_auto (gnutls_pubkey_t) key = NULL;
  gnutls_datum_t in = { (unsigned char *) der, (unsigned int) len };
  gnutls_datum_t spki = { NULL, 0 };
  int ret;

  if ((ret = gnutls_x509_crt_init (&crt)) < 0
      || (ret = gnutls_x509_crt_import (crt, &in, GNUTLS_X509_FMT_DER)) < 0
      || (ret = gnutls_pubkey_init (&key)) < 0
      || (ret = gnutls_pubkey_import_x509 (key, crt, 0)) < 0
      || (ret = gnutls_pubkey_export2 (key, GNUTLS_X509_FMT_DER, &spki)) < 0)
    /* TRANSLATORS: what failed; a colon and the reason follow */
    return ph_tls_set_error (error, ret, PH_ERROR_UPSTREAM_TLS, _ ("reading the server key")), NULL;

  ret = gnutls_hash_fast (GNUTLS_DIG_SHA256, spki.data, spki.size, digest);
  gnutls_free (spki.data);
  if (ret < 0)
    /* TRANSLATORS: what failed; a colon and the reason follow */
    return ph_tls_set_error (error, ret, PH_ERROR_UPSTREAM_TLS, _ ("hashing the server key")), NULL;
  return ph_pin_new (digest);
}

gboolean
ph_pin_matches_any (const PhPin *seen, PhPin *const *pins, guint n_pins)
{
  guint found = 0;

  for (guint i = 0; i < n_pins; i++)
    found |= ph_pin_equal (seen, pins[i]);
  return found != 0;
}

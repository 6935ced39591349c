/* ph-pin.h: SPKI SHA-256 pins in the curl --pinnedpubkey form
 * ("sha256//BASE64"): parsing, computing from a certificate, matching. */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

#define PH_PIN_LEN 32

typedef struct
{
  guint8 digest[PH_PIN_LEN];
} PhPin;

gboolean ph_pin_parse (const char *text, PhPin *pin, GError **error);
char *ph_pin_to_string (const PhPin *pin);
gboolean ph_pin_from_der_certificate (const guint8 *der, gsize len, PhPin *pin, GError **error);
/* Compares against every pin, in time independent of where (or whether) it matches. */
gboolean ph_pin_matches_any (const PhPin *seen, const PhPin *pins, guint n_pins);

G_END_DECLS

/* SPDX-License-Identifier: GPL-2.0-or-later */
/* ph-pin.h: SPKI SHA-256 pins in the curl --pinnedpubkey form
 * ("sha256//BASE64"): parsing, computing from a certificate, matching. */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

#define PH_PIN_LEN 32

/* One owner: new (or parse) and free; copy for another. */
typedef struct _PhPin PhPin;

/* The pin of the SHA-256 @digest, PH_PIN_LEN bytes. */
PhPin *ph_pin_new (const guint8 *digest);
PhPin *ph_pin_copy (const PhPin *pin);
void ph_pin_free (PhPin *pin);
PhPin *ph_pin_parse (const char *text, GError **error);
PhPin *ph_pin_new_from_der_certificate (const guint8 *der, gsize len, GError **error);
char *ph_pin_to_string (const PhPin *pin);
/* PH_PIN_LEN bytes. */
const guint8 *ph_pin_get_digest (const PhPin *pin);
/* In constant time. */
gboolean ph_pin_equal (const PhPin *a, const PhPin *b);
/* Compares against every one of the @n_pins @pins, in time independent of
 * where (or whether) it matches. */
gboolean ph_pin_matches_any (const PhPin *seen, PhPin *const *pins, guint n_pins);

G_DEFINE_AUTOPTR_CLEANUP_FUNC (PhPin, ph_pin_free)

G_END_DECLS

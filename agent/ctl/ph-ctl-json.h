/* SPDX-License-Identifier: GPL-2.0-or-later */
/* ph-ctl-json.h: pinholectl's JSON writer for --json, one document at a time, printed compact on
 * one line. Over json-glib (ph-ctl-json-glib.c) where it is found, a small text writer
 * (ph-ctl-json-text.c) where it is not; both write the same bytes (tests/test-ctl-json.c). */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

typedef struct _PhJson PhJson;

PhJson *ph_json_new (void);
void ph_json_free (PhJson *json);

/* A document is one object or array. Inside an object every value follows its member name,
 * and the names of one object differ (json-glib would keep only the last value). */
void ph_json_begin_object (PhJson *json);
void ph_json_end_object (PhJson *json);
void ph_json_begin_array (PhJson *json);
void ph_json_end_array (PhJson *json);
void ph_json_set_member (PhJson *json, const char *name);

/* A NULL string is "". Strings are UTF-8 and go out as they are, but for the quote, the
 * backslash and the control characters, which are escaped. */
void ph_json_add_string (PhJson *json, const char *value);
void ph_json_add_int64 (PhJson *json, gint64 value);
/* Above G_MAXINT64 (json-glib's numbers are gint64) the value is written as G_MAXINT64 rather
 * than wrapping to a negative number; no counter gets there. */
void ph_json_add_uint64 (PhJson *json, guint64 value);
void ph_json_add_boolean (PhJson *json, gboolean value);
/* "%.17g" in the C locale, with ".0" added to a value that would read as an integer; NaN and
 * the infinities, which JSON cannot carry, are null. */
void ph_json_add_double (PhJson *json, double value);
void ph_json_add_null (PhJson *json);

/* An array of strings (NULL is []). */
void ph_json_add_strv (PhJson *json, const char *const *values);
/* Any GVariant: dictionaries with string keys become objects whose keys are snake_case (the
 * agent's are kebab-case), so that keys the agent adds later reach scripts too; other
 * containers become arrays, unknown types null. */
void ph_json_add_variant (PhJson *json, GVariant *value);

/* The finished document on one line, without a newline. */
char *ph_json_to_string (PhJson *json);
/* The finished document and a newline on standard output. */
void ph_json_print (PhJson *json);

G_DEFINE_AUTOPTR_CLEANUP_FUNC (PhJson, ph_json_free)

G_END_DECLS

/* SPDX-License-Identifier: GPL-2.0-or-later */
/* ph-ctl-json-glib.c: PhJson over json-glib, a JsonBuilder printed by a compact JsonGenerator;
 * the build where json-glib is found (Linux). */
#define G_LOG_DOMAIN "pinhole-ctl"

#include "ph-ctl-json.h"

#include <math.h>
#include <json-glib/json-glib.h>

struct _PhJson
{
  JsonBuilder *builder;
};

PhJson *
ph_json_new (void)
{
  PhJson *json = g_new0 (PhJson, 1);

  json->builder = json_builder_new ();
  return json;
}

void
ph_json_free (PhJson *json)
{
  if (json == NULL)
    return;
  g_clear_object (&json->builder);
  g_free (json);
}

void
ph_json_begin_object (PhJson *json)
{
  json_builder_begin_object (json->builder);
}

void
ph_json_end_object (PhJson *json)
{
  json_builder_end_object (json->builder);
}

void
ph_json_begin_array (PhJson *json)
{
  json_builder_begin_array (json->builder);
}

void
ph_json_end_array (PhJson *json)
{
  json_builder_end_array (json->builder);
}

void
ph_json_set_member (PhJson *json, const char *name)
{
  json_builder_set_member_name (json->builder, name);
}

void
ph_json_add_string (PhJson *json, const char *value)
{
  json_builder_add_string_value (json->builder, value != NULL ? value : "");
}

void
ph_json_add_int64 (PhJson *json, gint64 value)
{
  json_builder_add_int_value (json->builder, value);
}

void
ph_json_add_boolean (PhJson *json, gboolean value)
{
  json_builder_add_boolean_value (json->builder, value);
}

/* json-glib would write "inf.0" and "nan.0". And before 1.8 it adds ".0" after an exponent too
 * ("1e+22.0" where ph-ctl-json-text.c and json-glib 1.8 write "1e+22"), which only a value with
 * one significant digit and an exponent shows; no answer of the agent carries a double. */
void
ph_json_add_double (PhJson *json, double value)
{
  if (isfinite (value))
    json_builder_add_double_value (json->builder, value);
  else
    json_builder_add_null_value (json->builder);
}

void
ph_json_add_null (PhJson *json)
{
  json_builder_add_null_value (json->builder);
}

char *
ph_json_to_string (PhJson *json)
{
  g_autoptr (JsonNode) root = json_builder_get_root (json->builder);
  g_autoptr (JsonGenerator) generator = json_generator_new ();
  g_autofree char *text = NULL;
  GString *out;

  g_return_val_if_fail (root != NULL, NULL);
  json_generator_set_root (generator, root);
  text = json_generator_to_data (generator, NULL);

  /* json-glib before 1.10.8 leaves U+001F out raw (it escapes below 0x1f), which is not JSON.
   * As it escapes every other byte below 0x20, a raw 0x1f can only be inside a string. */
  out = g_string_new (text);
  g_string_replace (out, "\x1f", "\\u001f", 0);
  return g_string_free (out, FALSE);
}

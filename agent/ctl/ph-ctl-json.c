/* SPDX-License-Identifier: GPL-2.0-or-later */
/* ph-ctl-json.c: what both JSON writers share, built on their primitives: unsigned numbers,
 * arrays of strings, GVariants and printing. */
#define G_LOG_DOMAIN "pinhole-ctl"

#include "ph-ctl-json.h"

void
ph_json_add_uint64 (PhJson *json, guint64 value)
{
  ph_json_add_int64 (json, (gint64) MIN (value, (guint64) G_MAXINT64));
}

void
ph_json_add_strv (PhJson *json, const char *const *values)
{
  ph_json_begin_array (json);
  for (guint i = 0; values != NULL && values[i] != NULL; i++)
    ph_json_add_string (json, values[i]);
  ph_json_end_array (json);
}

/* Two keys of a dictionary can end up as one ("a-b" and "a_b", or a key given twice): the later
 * value replaces the earlier one in its place, which is what a json-glib object does, so that
 * both writers agree on any input. */
static void
add_dictionary (PhJson *json, GVariant *dict)
{
  g_autoptr (GPtrArray) names = g_ptr_array_new_with_free_func (g_free);
  g_autoptr (GPtrArray) items = g_ptr_array_new_with_free_func ((GDestroyNotify) g_variant_unref);
  g_autoptr (GHashTable) index = g_hash_table_new (g_str_hash, g_str_equal);
  GVariantIter iter;
  const char *key;
  GVariant *item;

  g_variant_iter_init (&iter, dict);
  while (g_variant_iter_next (&iter, "{&s@*}", &key, &item))
    {
      /* D-Bus dictionary keys are "kebab-case"; JSON keys are snake_case. */
      char *snake = g_strdelimit (g_strdup (key), "-", '_');
      gpointer found;

      if (g_hash_table_lookup_extended (index, snake, NULL, &found))
        {
          guint i = GPOINTER_TO_UINT (found);

          g_variant_unref (items->pdata[i]);
          items->pdata[i] = item;
          g_free (snake);
          continue;
        }
      g_hash_table_insert (index, snake, GUINT_TO_POINTER (names->len));
      g_ptr_array_add (names, snake);
      g_ptr_array_add (items, item);
    }

  ph_json_begin_object (json);
  for (guint i = 0; i < names->len; i++)
    {
      ph_json_set_member (json, names->pdata[i]);
      ph_json_add_variant (json, items->pdata[i]);
    }
  ph_json_end_object (json);
}

void
ph_json_add_variant (PhJson *json, GVariant *value)
{
  if (g_variant_is_of_type (value, G_VARIANT_TYPE_VARIANT))
    {
      g_autoptr (GVariant) inner = g_variant_get_variant (value);

      ph_json_add_variant (json, inner);
    }
  else if (g_variant_is_of_type (value, G_VARIANT_TYPE_BOOLEAN))
    ph_json_add_boolean (json, g_variant_get_boolean (value));
  else if (g_variant_is_of_type (value, G_VARIANT_TYPE_STRING)
           || g_variant_is_of_type (value, G_VARIANT_TYPE_OBJECT_PATH)
           || g_variant_is_of_type (value, G_VARIANT_TYPE_SIGNATURE))
    ph_json_add_string (json, g_variant_get_string (value, NULL));
  else if (g_variant_is_of_type (value, G_VARIANT_TYPE_BYTE))
    ph_json_add_int64 (json, g_variant_get_byte (value));
  else if (g_variant_is_of_type (value, G_VARIANT_TYPE_UINT16))
    ph_json_add_int64 (json, g_variant_get_uint16 (value));
  else if (g_variant_is_of_type (value, G_VARIANT_TYPE_UINT32))
    ph_json_add_int64 (json, g_variant_get_uint32 (value));
  else if (g_variant_is_of_type (value, G_VARIANT_TYPE_UINT64))
    ph_json_add_uint64 (json, g_variant_get_uint64 (value));
  else if (g_variant_is_of_type (value, G_VARIANT_TYPE_INT16))
    ph_json_add_int64 (json, g_variant_get_int16 (value));
  else if (g_variant_is_of_type (value, G_VARIANT_TYPE_INT32))
    ph_json_add_int64 (json, g_variant_get_int32 (value));
  else if (g_variant_is_of_type (value, G_VARIANT_TYPE_INT64))
    ph_json_add_int64 (json, g_variant_get_int64 (value));
  else if (g_variant_is_of_type (value, G_VARIANT_TYPE_DOUBLE))
    ph_json_add_double (json, g_variant_get_double (value));
  else if (g_variant_is_of_type (value, G_VARIANT_TYPE ("a{s*}")))
    add_dictionary (json, value);
  else if (g_variant_is_container (value))
    {
      GVariantIter iter;
      GVariant *item;

      ph_json_begin_array (json);
      g_variant_iter_init (&iter, value);
      while ((item = g_variant_iter_next_value (&iter)) != NULL)
        {
          ph_json_add_variant (json, item);
          g_variant_unref (item);
        }
      ph_json_end_array (json);
    }
  else
    ph_json_add_null (json);
}

void
ph_json_print (PhJson *json)
{
  g_autofree char *text = ph_json_to_string (json);

  g_print ("%s\n", text);
}

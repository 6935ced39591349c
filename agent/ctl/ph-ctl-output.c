/* SPDX-License-Identifier: GPL-2.0-or-later */
/* ph-ctl-output.c: pinholectl's printing for people: text rows and tables. */
#define G_LOG_DOMAIN "pinhole-ctl"

#include "ph-ctl-output.h"

#include <glib/gi18n.h>

/* ---- text ---- */

/* A count of characters would misalign CJK translations, which take two columns each. */
glong
ph_text_width (const char *text)
{
  glong width = 0;

  for (const char *p = text; *p != '\0'; p = g_utf8_next_char (p))
    {
      gunichar c = g_utf8_get_char (p);

      if (g_unichar_iszerowidth (c))
        continue;
      width += g_unichar_iswide (c) ? 2 : 1;
    }
  return width;
}

void
ph_end_line (GString *out, gsize start)
{
  while (out->len > start && out->str[out->len - 1] == ' ')
    g_string_truncate (out, out->len - 1);
  g_string_append_c (out, '\n');
}

void
ph_rows_init (PhRows *rows, guint indent)
{
  rows->cells = g_ptr_array_new_with_free_func (g_free);
  rows->indent = indent;
}

void
ph_rows_add (PhRows *rows, const char *label, const char *value)
{
  g_ptr_array_add (rows->cells, g_strdup (label));
  g_ptr_array_add (rows->cells, g_strdup (value != NULL ? value : ""));
}

void
ph_rows_print (PhRows *rows, GString *out)
{
  glong width = 0;

  for (guint i = 0; i < rows->cells->len; i += 2)
    width = MAX (width, ph_text_width (rows->cells->pdata[i]));
  for (guint i = 0; i < rows->cells->len; i += 2)
    {
      const char *label = rows->cells->pdata[i];
      g_auto (GStrv) lines = g_strsplit (rows->cells->pdata[i + 1], "\n", -1);

      for (guint l = 0; lines[l] != NULL; l++)
        {
          glong pad = width + 2 - (l == 0 ? ph_text_width (label) : 0);
          gsize start = out->len;

          g_string_append_printf (out, "%*s%s%*s%s", (int) rows->indent, "", l == 0 ? label : "",
                                  (int) pad, "", lines[l]);
          ph_end_line (out, start);
        }
    }
  g_ptr_array_set_size (rows->cells, 0);
}

void
ph_rows_clear (PhRows *rows)
{
  g_clear_pointer (&rows->cells, g_ptr_array_unref);
}

void
ph_table_cell (GString *out, const char *text, glong width, gboolean last)
{
  g_string_append (out, text);
  if (!last)
    g_string_append_printf (out, "%*s", (int) (width - ph_text_width (text) + 2), "");
}

const char *
ph_or_empty (const char *value)
{
  return value != NULL ? value : "";
}

const char *
ph_yes_no (gboolean value)
{
  return value ? _ ("yes") : _ ("no");
}

char *
ph_join_or_none (const char *const *values, const char *separator)
{
  if (values == NULL || values[0] == NULL)
    /* TRANSLATORS: shown for an empty list (no listeners, no locked keys) */
    return g_strdup (_ ("none"));
  return g_strjoinv (separator, (char **) values);
}

static char *
format_time (gint64 unix_time)
{
  g_autoptr (GDateTime) dt = g_date_time_new_from_unix_utc (unix_time);

  if (dt == NULL)
    return g_strdup_printf ("%" G_GINT64_FORMAT, unix_time);
  return g_date_time_format (dt, "%Y-%m-%d %H:%M:%S UTC");
}

char *
ph_format_validity (gint64 not_before, gint64 not_after)
{
  g_autofree char *from = format_time (not_before);
  g_autofree char *to = format_time (not_after);
  gint64 now = g_get_real_time () / G_USEC_PER_SEC;

  if (now > not_after)
    /* TRANSLATORS: a certificate's validity; the dates are "2025-01-31 12:00:00 UTC" */
    return g_strdup_printf (_ ("%s to %s (expired)"), from, to);
  if (now < not_before)
    return g_strdup_printf (_ ("%s to %s (not yet valid)"), from, to);
  return g_strdup_printf (_ ("%s to %s"), from, to);
}

const char *
ph_dict_string (GVariant *dict, const char *key)
{
  const char *value = NULL;

  if (dict == NULL || !g_variant_lookup (dict, key, "&s", &value))
    return "";
  return value;
}

gboolean
ph_dict_boolean (GVariant *dict, const char *key)
{
  gboolean value = FALSE;

  if (dict != NULL)
    g_variant_lookup (dict, key, "b", &value);
  return value;
}

gint64
ph_dict_int64 (GVariant *dict, const char *key)
{
  gint64 value = 0;

  if (dict != NULL)
    g_variant_lookup (dict, key, "x", &value);
  return value;
}

char *
ph_format_route_reason (const char *reason, const char *rule, const char *description)
{
  if (g_str_equal (reason, "direct-list"))
    /* TRANSLATORS: why pinholectl route says "direct"; %s is the rule of [route] direct= */
    return g_strdup_printf (_ ("direct list: %s"), rule);
  if (g_str_equal (reason, "block-list"))
    /* TRANSLATORS: why pinholectl route says "block"; %s is the rule of [route] block= */
    return g_strdup_printf (_ ("block list: %s"), rule);
  if (g_str_equal (reason, "default"))
    /* TRANSLATORS: why pinholectl route says "proxy" */
    return g_strdup (_ ("no rule matched: through the cloud proxy"));
  if (g_str_equal (reason, "unreachable"))
    return g_strdup (_ ("the cloud proxy cannot be reached and [route] when-unreachable=direct"));
  if (g_str_equal (reason, "captive-portal"))
    return g_strdup (_ ("a captive portal is in the way and [route] portal=allow"));
  return g_strdup (description);
}

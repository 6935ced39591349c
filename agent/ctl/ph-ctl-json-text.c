/* SPDX-License-Identifier: GPL-2.0-or-later */
/* ph-ctl-json-text.c: PhJson written straight into a GString, for the build without json-glib
 * (Windows: Debian has no json-glib source to cross-build). It writes what json-glib's compact
 * generator writes, byte for byte. */
#define G_LOG_DOMAIN "pinhole-ctl"

#include "ph-ctl-json.h"

#include <math.h>
#include <string.h>

struct _PhJson
{
  GString *out;
  GByteArray *open;      /* '{' or '[' for each container not yet closed */
  gboolean need_comma;   /* the innermost container has a value already */
  gboolean after_member; /* a member name is waiting for its value */
};

PhJson *
ph_json_new (void)
{
  PhJson *json = g_new0 (PhJson, 1);

  json->out = g_string_new (NULL);
  json->open = g_byte_array_new ();
  return json;
}

void
ph_json_free (PhJson *json)
{
  if (json == NULL)
    return;
  g_string_free (json->out, TRUE);
  g_byte_array_unref (json->open);
  g_free (json);
}

static gboolean
in_object (PhJson *json)
{
  return json->open->len > 0 && json->open->data[json->open->len - 1] == '{';
}

/* The comma before a value, unless it comes first or after its member name. A document is one
 * object or array, and a value in an object needs its name first, as in json-glib's builder. */
static gboolean
begin_value (PhJson *json, gboolean container)
{
  if (json->open->len == 0)
    g_return_val_if_fail (container && json->out->len == 0, FALSE);
  else
    g_return_val_if_fail (json->after_member == in_object (json), FALSE);

  if (json->after_member)
    json->after_member = FALSE;
  else if (json->need_comma)
    g_string_append_c (json->out, ',');
  json->need_comma = TRUE;
  return TRUE;
}

/* Quotes, backslashes and control characters (U+007F too) escaped as json-glib escapes them;
 * everything else, UTF-8 included, goes out as it is. */
static void
append_string (GString *out, const char *s)
{
  g_string_append_c (out, '"');
  for (const guchar *p = (const guchar *) s; *p != '\0'; p++)
    {
      switch (*p)
        {
          case '"':
          case '\\':
            g_string_append_c (out, '\\');
            g_string_append_c (out, (char) *p);
            break;
          case '\b':
            g_string_append (out, "\\b");
            break;
          case '\f':
            g_string_append (out, "\\f");
            break;
          case '\n':
            g_string_append (out, "\\n");
            break;
          case '\r':
            g_string_append (out, "\\r");
            break;
          case '\t':
            g_string_append (out, "\\t");
            break;
          default:
            if (*p < 0x20 || *p == 0x7f)
              g_string_append_printf (out, "\\u%04x", (guint) *p);
            else
              g_string_append_c (out, (char) *p);
        }
    }
  g_string_append_c (out, '"');
}

static void
begin_container (PhJson *json, guint8 bracket)
{
  if (!begin_value (json, TRUE))
    return;
  g_string_append_c (json->out, (char) bracket);
  g_byte_array_append (json->open, &bracket, 1);
  json->need_comma = FALSE;
}

static void
end_container (PhJson *json, guint8 bracket, char closing)
{
  g_return_if_fail (json->open->len > 0 && json->open->data[json->open->len - 1] == bracket);
  g_return_if_fail (!json->after_member);
  g_string_append_c (json->out, closing);
  g_byte_array_set_size (json->open, json->open->len - 1);
  json->need_comma = TRUE;
}

void
ph_json_begin_object (PhJson *json)
{
  begin_container (json, '{');
}

void
ph_json_end_object (PhJson *json)
{
  end_container (json, '{', '}');
}

void
ph_json_begin_array (PhJson *json)
{
  begin_container (json, '[');
}

void
ph_json_end_array (PhJson *json)
{
  end_container (json, '[', ']');
}

void
ph_json_set_member (PhJson *json, const char *name)
{
  g_return_if_fail (in_object (json) && !json->after_member);
  g_return_if_fail (name != NULL);
  if (json->need_comma)
    g_string_append_c (json->out, ',');
  append_string (json->out, name);
  g_string_append_c (json->out, ':');
  json->after_member = TRUE;
}

void
ph_json_add_string (PhJson *json, const char *value)
{
  if (begin_value (json, FALSE))
    append_string (json->out, value != NULL ? value : "");
}

void
ph_json_add_int64 (PhJson *json, gint64 value)
{
  if (begin_value (json, FALSE))
    g_string_append_printf (json->out, "%" G_GINT64_FORMAT, value);
}

void
ph_json_add_boolean (PhJson *json, gboolean value)
{
  if (begin_value (json, FALSE))
    g_string_append (json->out, value ? "true" : "false");
}

/* As json-glib (1.8 and later) writes a double: g_ascii_dtostr's "%.17g", and ".0" where that
 * would read as an integer. */
void
ph_json_add_double (PhJson *json, double value)
{
  char buf[G_ASCII_DTOSTR_BUF_SIZE];

  if (!isfinite (value))
    {
      ph_json_add_null (json);
      return;
    }
  if (!begin_value (json, FALSE))
    return;
  g_string_append (json->out, g_ascii_dtostr (buf, sizeof (buf), value));
  if (strpbrk (buf, ".eE") == NULL)
    g_string_append (json->out, ".0");
}

void
ph_json_add_null (PhJson *json)
{
  if (begin_value (json, FALSE))
    g_string_append (json->out, "null");
}

char *
ph_json_to_string (PhJson *json)
{
  g_return_val_if_fail (json->out->len > 0 && json->open->len == 0, NULL);
  return g_strdup (json->out->str);
}

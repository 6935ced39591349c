/* SPDX-License-Identifier: GPL-2.0-or-later */
/* ph-policy.c: the portable part of Group Policy: the registry's values, already read, written
 * as the GKeyFile text of a configuration layer. */
#define G_LOG_DOMAIN "pinhole-platform"

#include "ph-policy.h"

#include <string.h>

static gboolean
valid_name (const char *name)
{
  if (name == NULL || *name == '\0' || !g_utf8_validate (name, -1, NULL))
    return FALSE;
  if (g_ascii_isspace (name[0]) || g_ascii_isspace (name[strlen (name) - 1]))
    return FALSE;
  for (const char *c = name; *c != '\0'; c++)
    if (*c == '[' || *c == ']' || *c == '=' || *c == '#' || *c == '\n' || *c == '\r')
      return FALSE;
  return TRUE;
}

static int
compare_values (gconstpointer a, gconstpointer b)
{
  const PhPolicyValue *x = *(const PhPolicyValue *const *) a;
  const PhPolicyValue *y = *(const PhPolicyValue *const *) b;
  int c = strcmp (x->group, y->group);

  return c != 0 ? c : strcmp (x->name, y->name);
}

char *
ph_policy_text_build (const PhPolicyValue *values, gsize n_values)
{
  g_autoptr (GPtrArray) sorted = g_ptr_array_new ();
  g_autoptr (GKeyFile) kf = g_key_file_new ();

  for (gsize i = 0; i < n_values; i++)
    {
      const PhPolicyValue *v = &values[i];

      if (!valid_name (v->group) || !valid_name (v->name))
        {
          g_warning ("%s: ignoring the value %s\\%s: not a setting's name", PH_POLICY_LABEL,
                     v->group ? v->group : "", v->name ? v->name : "");
          continue;
        }
      if (v->type == PH_POLICY_VALUE_STRING
          && (v->string == NULL || !g_utf8_validate (v->string, -1, NULL)))
        {
          g_warning ("%s: ignoring the value %s\\%s: not text", PH_POLICY_LABEL, v->group, v->name);
          continue;
        }
      g_ptr_array_add (sorted, (gpointer) v);
    }
  if (sorted->len == 0)
    return NULL;
  g_ptr_array_sort (sorted, compare_values);
  for (guint i = 0; i < sorted->len; i++)
    {
      const PhPolicyValue *v = g_ptr_array_index (sorted, i);
      g_autofree char *number = NULL;

      if (v->type == PH_POLICY_VALUE_NUMBER)
        number = g_strdup_printf ("%" G_GUINT64_FORMAT, v->number);
      /* Escapes what GKeyFile would read otherwise (a backslash, a new line, leading blanks). */
      g_key_file_set_string (kf, v->group, v->name, number ? number : v->string);
    }
  return g_key_file_to_data (kf, NULL, NULL);
}

/* SPDX-License-Identifier: GPL-2.0-or-later */
/* ph-win-bypass.c: entries of a bypass list (names, suffixes, addresses, networks) in the
 * wildcard syntax WinINet and WinHTTP share (see ph-win-bypass.h). */
#include "ph-win-bypass.h"

#include <gio/gio.h>
#include <string.h>

/* Adds @pattern (taken) to @out unless it is there. */
static void
add_pattern (GPtrArray *out, char *pattern)
{
  if (g_ptr_array_find_with_equal_func (out, pattern, g_str_equal, NULL))
    g_free (pattern);
  else
    g_ptr_array_add (out, pattern);
}

static gboolean
add_ipv4_network (GPtrArray *out, const guint8 *bytes, guint prefix)
{
  guint whole = prefix / 8;
  guint rest = prefix % 8;
  g_autoptr (GString) head = g_string_new (NULL);
  guint count, first;

  if (prefix == 0)
    return FALSE;
  for (guint i = 0; i < whole; i++)
    g_string_append_printf (head, "%s%u", i > 0 ? "." : "", bytes[i]);
  if (rest == 0)
    {
      add_pattern (out, whole == 4 ? g_strdup (head->str) : g_strconcat (head->str, ".*", NULL));
      return TRUE;
    }
  count = 1u << (8 - rest);
  first = bytes[whole] & ~(count - 1) & 0xff;
  for (guint v = first; v < first + count; v++)
    add_pattern (out, g_strdup_printf ("%s%s%u%s", head->str, whole > 0 ? "." : "", v,
                                       whole + 1 < 4 ? ".*" : ""));
  return TRUE;
}

/* @item (lower case) as an address or a network: 1 added, 0 no form, -1 not an address. */
static int
add_address (GPtrArray *out, const char *item)
{
  const char *slash = strchr (item, '/');
  g_autofree char *text
      = slash != NULL ? g_strndup (item, (gsize) (slash - item)) : g_strdup (item);
  g_autoptr (GInetAddress) address = NULL;
  guint64 prefix;

  if (text[0] == '[' && g_str_has_suffix (text, "]"))
    {
      g_autofree char *inner = g_strndup (text + 1, strlen (text) - 2);
      g_free (text);
      text = g_steal_pointer (&inner);
    }
  address = g_inet_address_new_from_string (text);
  if (address == NULL)
    return -1;
  if (g_inet_address_get_family (address) == G_SOCKET_FAMILY_IPV6)
    {
      g_autofree char *canonical = g_inet_address_to_string (address);

      /* With the brackets the URL writes around it; a shorter prefix has no wildcard form. */
      if (slash != NULL
          && (!g_ascii_string_to_unsigned (slash + 1, 10, 0, 128, &prefix, NULL) || prefix != 128))
        return 0;
      add_pattern (out, g_strdup_printf ("[%s]", canonical));
      return 1;
    }
  prefix = 32;
  if (slash != NULL && !g_ascii_string_to_unsigned (slash + 1, 10, 0, 32, &prefix, NULL))
    return 0;
  return add_ipv4_network (out, g_inet_address_to_bytes (address), (guint) prefix) ? 1 : 0;
}

/* The name @name and, with PH_WIN_BYPASS_NAME_AND_BELOW, every name under it. */
static void
add_name (GPtrArray *out, const char *name, gboolean below)
{
  add_pattern (out, g_strdup (name));
  if (below)
    add_pattern (out, g_strconcat ("*.", name, NULL));
}

gboolean
ph_win_bypass_add (GPtrArray *out, const char *entry, PhWinBypassNames names)
{
  g_autofree char *item = g_ascii_strdown (entry, -1);
  int address;

  if (item[0] == '\0')
    return FALSE;
  if (item[0] == '<')
    {
      add_pattern (out, g_steal_pointer (&item));
      return TRUE;
    }
  if (g_str_has_prefix (item, "*.") && item[2] != '\0')
    {
      if (names == PH_WIN_BYPASS_NAME_AND_BELOW)
        add_name (out, item + 2, TRUE);
      else
        add_pattern (out, g_steal_pointer (&item));
      return TRUE;
    }
  if (strchr (item, '*') != NULL)
    {
      add_pattern (out, g_steal_pointer (&item));
      return TRUE;
    }
  if (item[0] == '.' && item[1] != '\0')
    {
      add_name (out, item + 1, TRUE);
      return TRUE;
    }
  address = add_address (out, item);
  if (address >= 0)
    return address == 1;
  if (strchr (item, '/') != NULL || strchr (item, ':') != NULL)
    return FALSE;
  add_name (out, item, names == PH_WIN_BYPASS_NAME_AND_BELOW);
  return TRUE;
}

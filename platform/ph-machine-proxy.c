/* SPDX-License-Identifier: GPL-2.0-or-later */
/* ph-machine-proxy.c: the portable part of ph-machine-proxy.h, built on every system beside its
 * own file (ph-machine-proxy-linux.c, ph-machine-proxy-win32.c): the consumers of every system,
 * so that one configuration serves Linux and Windows and the other system's are shown as such;
 * the journal's file and encoding; WinHTTP's bypass list made from [route] direct and its
 * stored setting read back (pure functions, unit-tested on Linux). */
#define G_LOG_DOMAIN "pinhole-machine-proxy"

#include "ph-error.h"
#include "ph-machine-proxy-private.h"
#include "ph-win-bypass.h"

#include <errno.h>
#include <string.h>
#include <gio/gio.h>
#include <glib/gstdio.h>

/* Every system's consumers (agent/core/ph-config.c's machine_words has the same words). */
static const char *const all_consumers[]
    = { "environment", "systemd", "apt", "docker", "winhttp", NULL };

GStrv
ph_machine_proxy_this_system (const char *const *consumers, GError **error)
{
  const char *const *here = ph_machine_proxy_consumers ();
  g_autoptr (GStrvBuilder) out = g_strv_builder_new ();

  for (guint i = 0; consumers != NULL && consumers[i] != NULL; i++)
    {
      if (g_strv_contains (here, consumers[i]))
        g_strv_builder_add (out, consumers[i]);
      else if (!g_strv_contains (all_consumers, consumers[i]))
        {
          g_set_error (error, PH_ERROR, PH_ERROR_INVALID_SETTING,
                       "“%s” is not a machine-wide proxy consumer", consumers[i]);
          return NULL;
        }
    }
  return g_strv_builder_end (out);
}

void
ph_machine_proxy_add_other_systems (GVariantBuilder *all, const char *const *consumers)
{
  const char *const *here = ph_machine_proxy_consumers ();

  for (guint i = 0; consumers != NULL && consumers[i] != NULL; i++)
    {
      GVariantBuilder one;

      if (g_strv_contains (here, consumers[i]) || !g_strv_contains (all_consumers, consumers[i]))
        continue;
      g_variant_builder_init (&one, G_VARIANT_TYPE_VARDICT);
      g_variant_builder_add (&one, "{sv}", "name", g_variant_new_string (consumers[i]));
      g_variant_builder_add (&one, "{sv}", "configured", g_variant_new_boolean (TRUE));
      g_variant_builder_add (&one, "{sv}", "applied", g_variant_new_boolean (FALSE));
      g_variant_builder_add (&one, "{sv}", "points-at", g_variant_new_string (""));
      g_variant_builder_add (&one, "{sv}", "files", g_variant_new_strv (NULL, 0));
      g_variant_builder_add (&one, "{sv}", "note", g_variant_new_string ("other-system"));
      g_variant_builder_add_value (all, g_variant_builder_end (&one));
    }
}

/* ---- the journal ---- */

gboolean
ph_machine_journal_load (const char *path, GKeyFile **journal, GError **error)
{
  g_autoptr (GKeyFile) kf = g_key_file_new ();
  g_autoptr (GError) local = NULL;

  *journal = NULL;
  if (!ph_machine_journal_check_owner (path, error))
    return FALSE;
  if (!g_key_file_load_from_file (kf, path, G_KEY_FILE_NONE, &local))
    {
      if (g_error_matches (local, G_FILE_ERROR, G_FILE_ERROR_NOENT))
        return TRUE;
      g_set_error (error, PH_ERROR, PH_ERROR_FAILED, "Cannot read the machine-proxy journal %s: %s",
                   path, local->message);
      return FALSE;
    }
  if (g_key_file_get_integer (kf, PH_MACHINE_JOURNAL_GROUP, "version", NULL)
      != PH_MACHINE_JOURNAL_VERSION)
    {
      g_set_error (error, PH_ERROR, PH_ERROR_FAILED,
                   "Cannot read the machine-proxy journal %s: not version %d", path,
                   PH_MACHINE_JOURNAL_VERSION);
      return FALSE;
    }
  *journal = g_steal_pointer (&kf);
  return TRUE;
}

gboolean
ph_machine_journal_load_left (const char *path, GKeyFile **journal, GError **error)
{
  g_autoptr (GError) local = NULL;

  if (ph_machine_journal_load (path, journal, &local))
    return TRUE;
  /* Unreadable: moved aside, so that it does not block every later apply, and reported. One
   * not ours is left where it is (and never read). */
  if (!g_error_matches (local, PH_ERROR, PH_ERROR_PERMISSION_DENIED))
    {
      g_autofree char *aside = g_strconcat (path, ".corrupt", NULL);

      /* Windows renames onto no existing file. */
      g_unlink (aside);
      if (g_rename (path, aside) == 0)
        g_prefix_error (&local, "moved to %s: ", aside);
    }
  g_propagate_error (error, g_steal_pointer (&local));
  return FALSE;
}

gboolean
ph_machine_journal_save (const char *path, GKeyFile *journal, GError **error)
{
  g_autofree char *dir = g_path_get_dirname (path);
  g_autofree char *data = g_key_file_to_data (journal, NULL, NULL);

  if (g_mkdir_with_parents (dir, 0700) != 0)
    {
      int saved = errno;
      g_set_error (error, PH_ERROR, PH_ERROR_FAILED, "Cannot create %s for the journal: %s", dir,
                   g_strerror (saved));
      return FALSE;
    }
  if (!g_file_set_contents_full (path, data, -1,
                                 G_FILE_SET_CONTENTS_CONSISTENT | G_FILE_SET_CONTENTS_DURABLE, 0600,
                                 error))
    {
      g_prefix_error (error, "Cannot write the machine-proxy journal: ");
      return FALSE;
    }
  return TRUE;
}

char *
ph_machine_journal_encode (const void *data, gsize len)
{
  return g_base64_encode (data, len);
}

char *
ph_machine_journal_decode (const char *text, gsize *len)
{
  gsize n = 0;
  guchar *data = g_base64_decode (text, &n);
  char *out = g_malloc (n + 1);

  memcpy (out, data, n);
  out[n] = '\0';
  g_free (data);
  if (len != NULL)
    *len = n;
  return out;
}

void
ph_machine_journal_list_add (GKeyFile *journal, const char *group, const char *key,
                             const char *value)
{
  g_auto (GStrv) list = g_key_file_get_string_list (journal, group, key, NULL, NULL);
  g_autoptr (GStrvBuilder) builder = g_strv_builder_new ();
  g_auto (GStrv) out = NULL;

  if (list != NULL && g_strv_contains ((const char *const *) list, value))
    return;
  if (list != NULL)
    g_strv_builder_addv (builder, (const char **) list);
  g_strv_builder_add (builder, value);
  out = g_strv_builder_end (builder);
  g_key_file_set_string_list (journal, group, key, (const char *const *) out, g_strv_length (out));
}

GStrv
ph_machine_journal_list_decoded (GKeyFile *journal, const char *group, const char *key)
{
  g_auto (GStrv) list = g_key_file_get_string_list (journal, group, key, NULL, NULL);
  g_autoptr (GStrvBuilder) builder = g_strv_builder_new ();

  for (guint i = 0; list != NULL && list[i] != NULL; i++)
    {
      g_autofree char *text = ph_machine_journal_decode (list[i], NULL);
      g_strv_builder_add (builder, text);
    }
  return g_strv_builder_end (builder);
}

/* ---- what goes direct ---- */

char *
ph_machine_proxy_no_proxy (const char *direct)
{
  g_auto (GStrv) items = g_strsplit_set (direct != NULL ? direct : "", ",; \t\r\n", -1);
  GString *out = g_string_new ("localhost,127.0.0.1,::1");

  for (guint i = 0; items[i] != NULL; i++)
    {
      const char *item = items[i];
      g_autofree char *bare = NULL;

      if (*item == '\0' || g_str_equal (item, "<local>"))
        continue;
      if (g_str_has_prefix (item, "*."))
        item++; /* ".suffix": the name and every name under it, for curl, wget and Go */
      if (item[0] == '[')
        {
          const char *close = strchr (item, ']');
          g_autofree char *inner
              = close != NULL ? g_strndup (item + 1, (gsize) (close - item - 1)) : NULL;

          bare = close != NULL ? g_strconcat (inner, close + 1, NULL) : g_strdup (item);
        }
      else
        bare = g_strdup (item);
      g_string_append_printf (out, ",%s", bare);
    }
  return g_string_free (out, FALSE);
}

/* ---- WinHTTP ---- */

char *
ph_machine_proxy_winhttp_bypass (const char *direct)
{
  g_auto (GStrv) items = g_strsplit_set (direct != NULL ? direct : "", ",; \t\r\n", -1);
  g_autoptr (GPtrArray) patterns = g_ptr_array_new_with_free_func (g_free);

  g_ptr_array_add (patterns, g_strdup ("localhost"));
  g_ptr_array_add (patterns, g_strdup ("127.0.0.1"));
  g_ptr_array_add (patterns, g_strdup ("[::1]"));
  for (guint i = 0; items[i] != NULL; i++)
    if (*items[i] != '\0' && !ph_win_bypass_add (patterns, items[i], PH_WIN_BYPASS_NAME_EXACT))
      g_message ("[route] direct %s has no WinHTTP form; WinHTTP's requests for it reach the "
                 "agent, which sends them direct",
                 items[i]);
  g_ptr_array_add (patterns, NULL);
  return g_strjoinv (";", (char **) patterns->pdata);
}

static guint32
le32 (const guint8 *p)
{
  return (guint32) p[0] | (guint32) p[1] << 8 | (guint32) p[2] << 16 | (guint32) p[3] << 24;
}

/* @len bytes of WinHTTP's one-byte characters, in UTF-8. */
static char *
narrow_to_utf8 (const guint8 *p, gsize len)
{
  GString *out = g_string_sized_new (len);

  for (gsize i = 0; i < len; i++)
    g_string_append_unichar (out, p[i]);
  return g_string_free (out, FALSE);
}

gboolean
ph_winhttp_settings_parse (const guint8 *data, gsize len, char **proxy, char **bypass)
{
  gsize off = 12;
  guint32 flags, proxy_len, bypass_len = 0;
  const guint8 *proxy_at, *bypass_at = NULL;

  *proxy = NULL;
  *bypass = NULL;
  if (data == NULL || len < off + 4)
    return FALSE;
  flags = le32 (data + 8);
  proxy_len = le32 (data + off);
  off += 4;
  if (proxy_len > len - off)
    return FALSE;
  proxy_at = data + off;
  off += proxy_len;
  if (len - off >= 4)
    {
      bypass_len = le32 (data + off);
      off += 4;
      if (bypass_len > len - off)
        return FALSE;
      bypass_at = data + off;
    }
  /* PROXY_TYPE_PROXY; without it (or a name) the setting is direct access. */
  if ((flags & 2) == 0 || proxy_len == 0)
    return TRUE;
  *proxy = narrow_to_utf8 (proxy_at, proxy_len);
  *bypass = narrow_to_utf8 (bypass_at, bypass_len);
  return TRUE;
}

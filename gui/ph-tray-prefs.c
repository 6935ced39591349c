/* SPDX-License-Identifier: GPL-2.0-or-later */
/* ph-tray-prefs.c: the tray's tray.conf, a GKeyFile in the user's configuration folder, group
 * [tray]: system-proxy (boolean) and bypass (list). */
#define G_LOG_DOMAIN "pinhole-tray"

#include "ph-build-config.h"
#include "ph-tray-prefs.h"

#include <errno.h>
#include <glib/gstdio.h>
#include <glib/gi18n.h>

struct _PhTrayPrefs
{
  GKeyFile *keyfile;
  char *path;
};

PhTrayPrefs *
ph_tray_prefs_new (void)
{
  PhTrayPrefs *prefs = g_new0 (PhTrayPrefs, 1);

  prefs->keyfile = g_key_file_new ();
  prefs->path = g_build_filename (g_get_user_config_dir (), "pinhole", "tray.conf", NULL);
  g_key_file_load_from_file (prefs->keyfile, prefs->path, G_KEY_FILE_KEEP_COMMENTS, NULL);
  return prefs;
}

void
ph_tray_prefs_free (PhTrayPrefs *prefs)
{
  if (prefs == NULL)
    return;
  g_key_file_unref (prefs->keyfile);
  g_free (prefs->path);
  g_free (prefs);
}

gboolean
ph_tray_prefs_get_set_system_proxy (PhTrayPrefs *prefs)
{
  g_autoptr (GError) error = NULL;
  gboolean value = g_key_file_get_boolean (prefs->keyfile, "tray", "system-proxy", &error);

  return error != NULL ? TRUE : value;
}

GStrv
ph_tray_prefs_dup_bypass (PhTrayPrefs *prefs)
{
  GStrv list = g_key_file_get_string_list (prefs->keyfile, "tray", "bypass", NULL, NULL);
  return list != NULL ? list : g_new0 (char *, 1);
}

gboolean
ph_tray_prefs_save (PhTrayPrefs *prefs, gboolean set_system_proxy, const char *const *bypass,
                    GError **error)
{
  g_autofree char *dir = g_path_get_dirname (prefs->path);

  g_key_file_set_boolean (prefs->keyfile, "tray", "system-proxy", set_system_proxy);
  g_key_file_set_string_list (prefs->keyfile, "tray", "bypass", bypass,
                              bypass ? g_strv_length ((GStrv) bypass) : 0);
  if (g_mkdir_with_parents (dir, 0700) != 0)
    {
      g_set_error (error, G_IO_ERROR, g_io_error_from_errno (errno), _ ("Cannot create %s"), dir);
      return FALSE;
    }
  return g_key_file_save_to_file (prefs->keyfile, prefs->path, error);
}

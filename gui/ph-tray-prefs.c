/* SPDX-License-Identifier: GPL-2.0-or-later */
/* ph-tray-prefs.c: the tray's tray.conf, a GKeyFile in the user's configuration folder, group
 * [tray]: system-proxy (boolean), and bypass (list) from older trays until it moves to the
 * agent's route.direct. */
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

static gboolean
prefs_write (PhTrayPrefs *prefs, GError **error)
{
  g_autofree char *dir = g_path_get_dirname (prefs->path);

  if (g_mkdir_with_parents (dir, 0700) != 0)
    {
      g_set_error (error, G_IO_ERROR, g_io_error_from_errno (errno), _ ("Cannot create %s"), dir);
      return FALSE;
    }
  return g_key_file_save_to_file (prefs->keyfile, prefs->path, error);
}

gboolean
ph_tray_prefs_save (PhTrayPrefs *prefs, gboolean set_system_proxy, GError **error)
{
  g_key_file_set_boolean (prefs->keyfile, "tray", "system-proxy", set_system_proxy);
  return prefs_write (prefs, error);
}

void
ph_tray_prefs_migrate_bypass (PhTrayPrefs *prefs, PhAgent1 *agent)
{
  g_auto (GStrv) bypass = ph_tray_prefs_dup_bypass (prefs);
  g_autofree char *value = NULL;
  g_autofree char *joined = NULL;
  g_autoptr (GError) error = NULL;
  gboolean locked = FALSE;

  if (agent == NULL || bypass[0] == NULL)
    return;
  if (!ph_agent1_call_get_setting_sync (agent, "route.direct", &value, &locked, NULL, &error))
    {
      g_message ("tray.conf's bypass list stays where it is: %s", error->message);
      return;
    }
  if (locked || *g_strstrip (value) != '\0')
    {
      g_message ("tray.conf's bypass list is not moved to the agent's [route] direct, which %s; "
                 "it is still applied to the system proxy",
                 locked ? "is locked" : "has a value");
      return;
    }
  joined = g_strjoinv (", ", bypass);
  if (!ph_agent1_call_set_setting_sync (agent, "route.direct", joined, NULL, &error))
    {
      g_message ("tray.conf's bypass list stays where it is: the agent refused it as [route] "
                 "direct: %s",
                 error->message);
      return;
    }
  g_key_file_remove_key (prefs->keyfile, "tray", "bypass", NULL);
  if (!prefs_write (prefs, &error))
    g_warning ("moved tray.conf's bypass list to [route] direct, but cannot rewrite %s: %s",
               prefs->path, error->message);
  else
    g_message ("moved tray.conf's bypass list to the agent's [route] direct: %s", joined);
}

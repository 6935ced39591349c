/* SPDX-License-Identifier: GPL-2.0-or-later */
/* ph-config-store.c: the configuration's files: the layers read in order (on Windows, Group
 * Policy's registry values last, above managed.d), the monitors that tell when they changed
 * (once an editor has finished writing), and the one edit path, which checks the whole
 * configuration with the new text before it replaces the file. */
#define G_LOG_DOMAIN "pinhole-config"

#include "ph-build-config.h"
#include "ph-config-store.h"
#include "ph-error.h"
#include "ph-policy.h"

#include <errno.h>
#include <glib/gi18n.h>

/* Editors write a file in several steps (a temporary file, a rename, a chmod): the last event
 * of one save comes well within this of the first. */
#define SETTLE_DELAY_MS 300

struct _PhConfigStore
{
  GObject parent;

  char *system_path, *user_path, *managed_dir, *writable_path;
  gboolean system_required;

  gboolean watching;
  GPtrArray *monitors; /* of GFileMonitor */
  PhPolicyWatch *policy_watch;
  char *policy_text; /* the policies' text when last seen, to ignore other vendors' changes */
  GSource *settle_source;
};

enum
{
  SIGNAL_CHANGED,
  N_SIGNALS
};
static guint signals[N_SIGNALS];

G_DEFINE_TYPE (PhConfigStore, ph_config_store, G_TYPE_OBJECT)

/* ---- layers ---- */

static GPtrArray *
layers_new (PhConfigStore *self)
{
  GPtrArray *layers = ph_config_layers_new (self->system_path, self->user_path, self->managed_dir);

  g_autofree char *policy = ph_policy_read ();

  if (self->system_required && layers->len > 0)
    ph_config_file_set_optional (g_ptr_array_index (layers, 0), FALSE);
  /* Group Policy: a managed layer above every drop-in, named by its registry key. */
  if (policy != NULL)
    {
      PhConfigFile *file = ph_config_file_new (PH_POLICY_LABEL, TRUE, TRUE);
      ph_config_file_set_data (file, policy);
      g_ptr_array_add (layers, file);
    }
  return layers;
}

PhConfig *
ph_config_store_load (PhConfigStore *self, GError **error)
{
  g_autoptr (GPtrArray) layers = layers_new (self);

  return ph_config_load_layers (layers, error);
}

/* ---- the one edit ---- */

gboolean
ph_config_store_set_value (PhConfigStore *self, const char *key, const char *value, GError **error)
{
  const char *path = self->writable_path;
  g_autofree char *old = NULL;
  g_autofree char *data = NULL;
  g_autoptr (GPtrArray) layers = NULL;
  g_autoptr (PhConfig) check = NULL;
  g_autoptr (GError) local = NULL;
  g_autofree char *dir = NULL;

  g_return_val_if_fail (path != NULL, FALSE);

  /* Also refuses an unknown key (as ph_config_edit() does when the value is empty). */
  if (*value != '\0' && !ph_config_check_value (key, value, error))
    return FALSE;
  if (!g_file_get_contents (path, &old, NULL, &local)
      && !g_error_matches (local, G_FILE_ERROR, G_FILE_ERROR_NOENT))
    {
      /* TRANSLATORS: a file's path, then why */
      g_set_error (error, PH_ERROR, PH_ERROR_FAILED, _ ("cannot read %s: %s"), path,
                   local->message);
      return FALSE;
    }
  g_clear_error (&local);
  data = ph_config_edit (old, key, *value ? value : NULL, error);
  if (data == NULL)
    return FALSE;

  /* The whole configuration, with this change, must load. */
  layers = layers_new (self);
  for (guint i = 0; i < layers->len; i++)
    {
      PhConfigFile *file = g_ptr_array_index (layers, i);
      if (g_strcmp0 (ph_config_file_get_path (file), path) == 0)
        ph_config_file_set_data (file, data);
    }
  check = ph_config_load_layers (layers, &local);
  if (check == NULL)
    {
      g_set_error (error, PH_ERROR, PH_ERROR_INVALID_SETTING, "%s", local->message);
      return FALSE;
    }

  dir = g_path_get_dirname (path);
  if (g_mkdir_with_parents (dir, 0755) != 0)
    {
      /* TRANSLATORS: a folder's path, then why */
      g_set_error (error, PH_ERROR, PH_ERROR_FAILED, _ ("cannot create %s: %s"), dir,
                   g_strerror (errno));
      return FALSE;
    }
  if (!g_file_set_contents_full (path, data, -1, G_FILE_SET_CONTENTS_CONSISTENT, 0644, &local))
    {
      /* TRANSLATORS: a file's path, then why */
      g_set_error (error, PH_ERROR, PH_ERROR_FAILED, _ ("cannot save %s: %s"), path,
                   local->message);
      return FALSE;
    }
  return TRUE;
}

/* ---- watching ---- */

static gboolean
settled_cb (gpointer data)
{
  PhConfigStore *self = data;

  g_clear_pointer (&self->settle_source, g_source_unref);
  g_signal_emit (self, signals[SIGNAL_CHANGED], 0);
  return G_SOURCE_REMOVE;
}

static void
settle (PhConfigStore *self)
{
  if (self->settle_source != NULL)
    {
      g_source_destroy (self->settle_source);
      g_source_unref (self->settle_source);
    }
  self->settle_source = g_timeout_source_new (SETTLE_DELAY_MS);
  g_source_set_callback (self->settle_source, settled_cb, self, NULL);
  g_source_attach (self->settle_source, NULL);
}

static void
on_file_changed (GFileMonitor *monitor, GFile *file, GFile *other, GFileMonitorEvent event,
                 gpointer data)
{
  PhConfigStore *self = data;

  if (event == G_FILE_MONITOR_EVENT_ATTRIBUTE_CHANGED || event == G_FILE_MONITOR_EVENT_PRE_UNMOUNT
      || event == G_FILE_MONITOR_EVENT_UNMOUNTED)
    return;
  settle (self);
}

/* Something under HKLM\Software\Policies changed: a reload if Pinhole's part did. */
static void
on_policy_changed (gpointer data)
{
  PhConfigStore *self = data;
  g_autofree char *text = ph_policy_read ();

  if (g_strcmp0 (text, self->policy_text) == 0)
    return;
  g_free (self->policy_text);
  self->policy_text = g_steal_pointer (&text);
  settle (self);
}

static void
watch_path (PhConfigStore *self, const char *path, gboolean directory)
{
  g_autoptr (GFile) file = NULL;
  g_autoptr (GError) error = NULL;
  GFileMonitor *monitor;

  if (path == NULL)
    return;
  file = g_file_new_for_path (path);
  monitor = directory ? g_file_monitor_directory (file, G_FILE_MONITOR_WATCH_MOVES, NULL, &error)
                      : g_file_monitor_file (file, G_FILE_MONITOR_WATCH_MOVES, NULL, &error);
  if (monitor == NULL)
    {
      g_warning ("changes to %s will need a reload: %s", path, error->message);
      return;
    }
  g_signal_connect (monitor, "changed", G_CALLBACK (on_file_changed), self);
  g_ptr_array_add (self->monitors, monitor);
}

void
ph_config_store_watch (PhConfigStore *self)
{
  if (self->watching)
    return;
  self->watching = TRUE;
  watch_path (self, self->system_path, FALSE);
  watch_path (self, self->user_path, FALSE);
  watch_path (self, self->managed_dir, TRUE);
  self->policy_text = ph_policy_read ();
  self->policy_watch = ph_policy_watch_new (on_policy_changed, self);
}

/* ---- object ---- */

const char *
ph_config_store_get_system_path (PhConfigStore *self)
{
  return self->system_path;
}

const char *
ph_config_store_get_managed_dir (PhConfigStore *self)
{
  return self->managed_dir;
}

const char *
ph_config_store_get_writable_path (PhConfigStore *self)
{
  return self->writable_path;
}

static void
ph_config_store_finalize (GObject *object)
{
  PhConfigStore *self = PH_CONFIG_STORE (object);

  for (guint i = 0; i < self->monitors->len; i++)
    {
      GFileMonitor *monitor = g_ptr_array_index (self->monitors, i);
      g_signal_handlers_disconnect_by_data (monitor, self);
      g_file_monitor_cancel (monitor);
    }
  g_ptr_array_unref (self->monitors);
  g_clear_pointer (&self->policy_watch, ph_policy_watch_free);
  g_free (self->policy_text);
  if (self->settle_source != NULL)
    g_source_destroy (self->settle_source);
  g_clear_pointer (&self->settle_source, g_source_unref);
  g_free (self->system_path);
  g_free (self->user_path);
  g_free (self->managed_dir);
  g_free (self->writable_path);
  G_OBJECT_CLASS (ph_config_store_parent_class)->finalize (object);
}

static void
ph_config_store_class_init (PhConfigStoreClass *klass)
{
  G_OBJECT_CLASS (klass)->finalize = ph_config_store_finalize;
  /* A watched file changed on disk and has settled: time to load it again. */
  signals[SIGNAL_CHANGED] = g_signal_new ("changed", G_TYPE_FROM_CLASS (klass), G_SIGNAL_RUN_LAST,
                                          0, NULL, NULL, NULL, G_TYPE_NONE, 0);
}

static void
ph_config_store_init (PhConfigStore *self)
{
  self->monitors = g_ptr_array_new_with_free_func (g_object_unref);
}

PhConfigStore *
ph_config_store_new (const PhConfigStoreSetup *setup)
{
  PhConfigStore *self = g_object_new (PH_TYPE_CONFIG_STORE, NULL);

  self->system_path = g_strdup (setup->system_path);
  self->user_path = g_strdup (setup->user_path);
  self->managed_dir = g_strdup (setup->managed_dir);
  self->writable_path = g_strdup (setup->writable_path);
  self->system_required = setup->system_required;
  return self;
}

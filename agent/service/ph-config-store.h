/* SPDX-License-Identifier: GPL-2.0-or-later */
/* ph-config-store.h: the files behind the agent's configuration: its layers (the system file,
 * the user's file, IT's managed.d drop-ins), watching them, and changing one key in the
 * writable file only when the whole configuration still loads with it. */
#pragma once

#include <gio/gio.h>

#include "ph-config.h"

G_BEGIN_DECLS

typedef struct
{
  const char *system_path;   /* the system file (standalone: the --config file) */
  const char *user_path;     /* the user's file (session mode), or NULL */
  const char *managed_dir;   /* IT drop-ins, or NULL */
  const char *writable_path; /* the file ph_config_store_set_value() edits, or NULL: none */
  gboolean system_required;  /* a missing system file is an error, not an empty layer */
} PhConfigStoreSetup;

#define PH_TYPE_CONFIG_STORE (ph_config_store_get_type ())
G_DECLARE_FINAL_TYPE (PhConfigStore, ph_config_store, PH, CONFIG_STORE, GObject)

PhConfigStore *ph_config_store_new (const PhConfigStoreSetup *setup);

const char *ph_config_store_get_system_path (PhConfigStore *self);
const char *ph_config_store_get_managed_dir (PhConfigStore *self);
const char *ph_config_store_get_writable_path (PhConfigStore *self);

/* Reads every layer now, over the defaults. On failure @error (PH_ERROR_INVALID_CONFIG) holds
 * every problem, one per line, as "FILE:LINE: [group] key: what is wrong". */
PhConfig *ph_config_store_load (PhConfigStore *self, GError **error);

/* Sets @key to @value (empty: removes it, so that the default or a lower layer applies) in the
 * writable file, keeping its comments. The file is written only when the whole configuration
 * loads with the change (PH_ERROR_INVALID_SETTING otherwise); it is left as it was on any
 * failure. Locks are the caller's business. */
gboolean ph_config_store_set_value (PhConfigStore *self, const char *key, const char *value,
                                    GError **error);

/* From now on, "changed" is emitted once a change to any layer's file (or a drop-in coming or
 * going) has settled. A file that cannot be watched is logged and needs an explicit reload. */
void ph_config_store_watch (PhConfigStore *self);

G_END_DECLS

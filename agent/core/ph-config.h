/* ph-config.h: the agent's configuration, an immutable reference-counted
 * snapshot built from built-in defaults and GKeyFile files, key by key. */
#pragma once

#include <gio/gio.h>

#include "ph-log.h"
#include "ph-pin.h"

G_BEGIN_DECLS

typedef enum
{
  PH_VERIFY_PIN,
  PH_VERIFY_CA,
  PH_VERIFY_PIN_AND_CA,
} PhVerifyMode;

typedef struct
{
  GPtrArray *listen; /* of GInetSocketAddress */
  GPtrArray *allow;  /* of GInetAddressMask */

  char *host;
  guint port;
  char *server_name;
  GArray *pins; /* of PhPin */
  PhVerifyMode verify;
  char *ca_file;
  char *username;
  char *password_file;
  char *password; /* read from password_file; wiped on free */
  guint connect_timeout_ms;
  guint handshake_timeout_ms;
  guint response_timeout_ms;
  guint warm;

  guint idle_timeout_ms;
  guint head_timeout_ms;
  guint max_tunnels;

  PhLogLevel log_level;

  /* Where the values came from, for the control interface. */
  GHashTable *values; /* "group.key" -> the value a file set (after layering) */
  GHashTable *locked; /* set of "group.key" set by a managed drop-in */
} PhConfig;

/* One layer of configuration. Later layers win key by key. */
typedef struct
{
  char *path;
  char *data;        /* used instead of reading @path when set */
  gboolean managed;  /* an IT drop-in: the keys it sets are locked */
  gboolean optional; /* a missing file is an empty layer */
} PhConfigFile;

void ph_config_file_free (PhConfigFile *file);
G_DEFINE_AUTOPTR_CLEANUP_FUNC (PhConfigFile, ph_config_file_free)

/* The layers of a service: @system_path, then @user_path (may be NULL),
 * then every *.conf in @managed_dir (may be NULL) in alphabetical order.
 * All optional. Returns a GPtrArray of PhConfigFile. */
GPtrArray *ph_config_layers_new (const char *system_path, const char *user_path,
                                 const char *managed_dir);

/* Loads @layers over the defaults. On failure, @error's message holds
 * every problem, one per line, as "FILE:LINE: [group] key: what is wrong". */
PhConfig *ph_config_load_layers (GPtrArray *layers, GError **error);
/* Loads the one file @path (which must exist) over the defaults. */
PhConfig *ph_config_load (const char *path, GError **error);
PhConfig *ph_config_ref (PhConfig *config);
void ph_config_unref (PhConfig *config);

gboolean ph_config_same_upstream (const PhConfig *a, const PhConfig *b);
gboolean ph_config_same_credentials (const PhConfig *a, const PhConfig *b);
gboolean ph_config_same_listeners (const PhConfig *a, const PhConfig *b);
gboolean ph_config_allows_client (const PhConfig *config, GInetAddress *address);

/* Why @config cannot carry traffic yet (no upstream host), or NULL. */
const char *ph_config_get_unready_reason (const PhConfig *config);

/* Settings by "group.key", for the control interface. */
const char *const *ph_config_list_keys (void);
gboolean ph_config_has_key (const char *key);
const char *ph_config_get_default (const char *key);
/* The value in force: a file's, else the default. */
const char *ph_config_get_value (const PhConfig *config, const char *key);
gboolean ph_config_is_locked (const PhConfig *config, const char *key);
/* Checks @value for @key as a file's value would be checked. */
gboolean ph_config_check_value (const char *key, const char *value, GError **error);
/* Sets (or with @value NULL removes) @key in the GKeyFile text @data,
 * keeping comments; returns the new text. */
char *ph_config_edit (const char *data, const char *key, const char *value, GError **error);

/* Parsing helpers shared with the tests. */
gboolean ph_config_parse_duration (const char *text, guint *ms, GError **error);
GInetSocketAddress *ph_config_parse_listen_address (const char *text, GError **error);

G_DEFINE_AUTOPTR_CLEANUP_FUNC (PhConfig, ph_config_unref)

G_END_DECLS

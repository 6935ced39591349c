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
} PhConfig;

/* Loads @path over the defaults. On failure, @error's message holds every
 * problem, one per line, as "FILE:LINE: [group] key: what is wrong". */
PhConfig *ph_config_load (const char *path, GError **error);
PhConfig *ph_config_ref (PhConfig *config);
void ph_config_unref (PhConfig *config);

gboolean ph_config_same_upstream (const PhConfig *a, const PhConfig *b);
gboolean ph_config_same_credentials (const PhConfig *a, const PhConfig *b);
gboolean ph_config_same_listeners (const PhConfig *a, const PhConfig *b);
gboolean ph_config_allows_client (const PhConfig *config, GInetAddress *address);

/* Parsing helpers shared with the tests. */
gboolean ph_config_parse_duration (const char *text, guint *ms, GError **error);
GInetSocketAddress *ph_config_parse_listen_address (const char *text, GError **error);

G_DEFINE_AUTOPTR_CLEANUP_FUNC (PhConfig, ph_config_unref)

G_END_DECLS

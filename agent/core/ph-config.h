/* SPDX-License-Identifier: GPL-2.0-or-later */
/* ph-config.h: the agent's configuration, an immutable reference-counted
 * snapshot built from built-in defaults and GKeyFile files, key by key. */
#pragma once

#include <gio/gio.h>

#include "ph-host-list.h"
#include "ph-log.h"
#include "ph-pin.h"

G_BEGIN_DECLS

typedef enum
{
  PH_VERIFY_PIN,
  PH_VERIFY_CA,
  PH_VERIFY_PIN_AND_CA,
} PhVerifyMode;

/* [upstream] ktls: whether the cipher may run in the kernel (ph-ktls.h). */
typedef enum
{
  PH_KTLS_AUTO,
  PH_KTLS_ON,
  PH_KTLS_OFF,
} PhKtlsMode;

/* [route] when-unreachable: while no cloud proxy can be reached (TCP or TLS; never on a pin
 * mismatch or rejected credentials), requests are refused (block) or go directly. */
typedef enum
{
  PH_UNREACHABLE_BLOCK,
  PH_UNREACHABLE_DIRECT,
} PhUnreachablePolicy;

/* [route] portal: behind a captive portal, requests go directly for a while (allow), so the
 * user can sign in, or stay refused (block). */
typedef enum
{
  PH_PORTAL_ALLOW,
  PH_PORTAL_BLOCK,
} PhPortalPolicy;

/* [upstream] failover: which of several cloud proxies new connections go to. */
typedef enum
{
  PH_FAILOVER_PRIORITY,    /* the first healthy one in upstream.host's order */
  PH_FAILOVER_ROUND_ROBIN, /* every healthy one in turn */
} PhFailover;

/* [upstream] http2: whether tunnels and plain requests go as streams of HTTP/2 connections to each
 * cloud proxy. */
typedef enum
{
  PH_HTTP2_AUTO,    /* offer h2 by ALPN; HTTP/1.1 when the proxy does not pick it */
  PH_HTTP2_OFF,     /* HTTP/1.1 only */
  PH_HTTP2_REQUIRE, /* a proxy that does not pick h2 fails the tunnel */
} PhHttp2;

/* [system-proxy] mode: what the tray sets the desktop's proxy to. */
typedef enum
{
  PH_SYSTEM_PROXY_MANUAL,
  PH_SYSTEM_PROXY_PAC,
} PhSystemProxyMode;

/* [transparent] capture: which connections the nftables rules send to the transparent
 * listener (ph-capture.h). */
typedef enum
{
  PH_CAPTURE_OFF,
  PH_CAPTURE_LOCAL,   /* this machine's own, except the agent's user's */
  PH_CAPTURE_GATEWAY, /* the ones a LAN interface forwards */
} PhCaptureMode;

/* An immutable snapshot, reference-counted: ref and unref. Its fields are
 * read through the getters below. */
typedef struct _PhConfig PhConfig;

/* One layer of configuration. Later layers win key by key. One owner:
 * new and free. */
typedef struct _PhConfigFile PhConfigFile;

/* A layer read from @path; @managed: an IT drop-in, whose keys are locked;
 * @optional: a missing file is an empty layer. */
PhConfigFile *ph_config_file_new (const char *path, gboolean managed, gboolean optional);
/* Uses @data instead of reading the file (the path still names it in messages). */
void ph_config_file_set_data (PhConfigFile *file, const char *data);
void ph_config_file_set_optional (PhConfigFile *file, gboolean optional);
const char *ph_config_file_get_path (const PhConfigFile *file);
const char *ph_config_file_get_data (const PhConfigFile *file);
gboolean ph_config_file_get_managed (const PhConfigFile *file);
gboolean ph_config_file_get_optional (const PhConfigFile *file);

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

/* The settings. Strings and arrays belong to @config. */
GPtrArray *ph_config_get_listen (const PhConfig *config); /* of GInetSocketAddress */
const char *const *ph_config_get_socks_users (const PhConfig *config);
/* The password of @name, one of the socks-users, that the service read from the secret store
 * (like the proxy's: never in a file); NULL when it is no such user or has none. Taken before
 * the snapshot is shared, wiped when @config is freed. */
const char *ph_config_get_socks_password (const PhConfig *config, const char *name);
void ph_config_take_socks_password (PhConfig *config, const char *name, char *password);
GPtrArray *ph_config_get_transparent (const PhConfig *config); /* of GInetSocketAddress */
guint32 ph_config_get_mark (const PhConfig *config);           /* 0: none */
const guint16 *ph_config_get_capture_ports (const PhConfig *config, guint *n_ports);
PhCaptureMode ph_config_get_capture (const PhConfig *config, const char **iface);
GPtrArray *ph_config_get_allow (const PhConfig *config); /* of GInetAddressMask */
/* The first cloud proxy of upstream.host (NULL when none): the secret store's key and the
 * one named where a single proxy is meant. */
const char *ph_config_get_host (const PhConfig *config);
/* upstream.port: the port of a proxy that names none. */
guint ph_config_get_port (const PhConfig *config);
/* The first proxy's server name (NULL when none). */
const char *ph_config_get_server_name (const PhConfig *config);
/* Every cloud proxy of upstream.host, in order: its host (a name or an address, IPv6 without
 * brackets), its port, its server name (SNI and the name checked: its own server-name=, else
 * upstream.server-name, else its host), and "host:port" ("[v6]:port") for messages. */
guint ph_config_get_n_proxies (const PhConfig *config);
const char *ph_config_get_proxy_host (const PhConfig *config, guint i);
guint ph_config_get_proxy_port (const PhConfig *config, guint i);
const char *ph_config_get_proxy_server_name (const PhConfig *config, guint i);
char *ph_config_dup_proxy_name (const PhConfig *config, guint i);
PhFailover ph_config_get_failover (const PhConfig *config);
PhHttp2 ph_config_get_http2 (const PhConfig *config);
/* [upstream] h2-connections: HTTP/2 connections per cloud proxy (1..16). */
guint ph_config_get_h2_connections (const PhConfig *config);
guint ph_config_get_n_pins (const PhConfig *config);
const PhPin *ph_config_get_pin (const PhConfig *config, guint i);
/* Whether @pin is one of the configured pins, in constant time. */
gboolean ph_config_has_pin (const PhConfig *config, const PhPin *pin);
PhVerifyMode ph_config_get_verify (const PhConfig *config);
const char *ph_config_get_ca_file (const PhConfig *config);
PhKtlsMode ph_config_get_ktls (const PhConfig *config);
const char *ph_config_get_username (const PhConfig *config);
const char *ph_config_get_password_file (const PhConfig *config);
/* Read from the password file; wiped when @config is freed. */
const char *ph_config_get_password (const PhConfig *config);
/* Gives @config a password from elsewhere (the secret store) when no
 * password file supplied one; only before the snapshot is shared. */
void ph_config_take_password (PhConfig *config, char *password);
guint ph_config_get_connect_timeout_ms (const PhConfig *config);
guint ph_config_get_handshake_timeout_ms (const PhConfig *config);
guint ph_config_get_response_timeout_ms (const PhConfig *config);
guint ph_config_get_warm (const PhConfig *config);
/* The shared pool of kept-alive connections for plain requests: how many, and for how long. */
guint ph_config_get_idle_connections (const PhConfig *config);
guint ph_config_get_idle_lifetime_ms (const PhConfig *config);
guint ph_config_get_idle_timeout_ms (const PhConfig *config);
guint ph_config_get_head_timeout_ms (const PhConfig *config);
/* max-tunnels=auto: the listener takes its connection limit, which the
 * descriptor limit sets. */
#define PH_CONFIG_MAX_TUNNELS_AUTO 0u
/* The configured number, or PH_CONFIG_MAX_TUNNELS_AUTO. */
guint ph_config_get_max_tunnels (const PhConfig *config);
PhLogLevel ph_config_get_log_level (const PhConfig *config);
/* [route]: the direct and block lists (never NULL; maybe empty), whether names are resolved to
 * match CIDR rules, the policy while the cloud proxy cannot be reached, and captive portals
 * (the check URL, NULL when none; minutes of direct access; allow or block). */
const PhHostList *ph_config_get_direct (const PhConfig *config);
const PhHostList *ph_config_get_block (const PhConfig *config);
gboolean ph_config_get_resolve_for_cidr (const PhConfig *config);
PhUnreachablePolicy ph_config_get_when_unreachable (const PhConfig *config);
const char *ph_config_get_portal_check (const PhConfig *config);
guint ph_config_get_portal_minutes (const PhConfig *config);
PhPortalPolicy ph_config_get_portal (const PhConfig *config);
PhSystemProxyMode ph_config_get_system_proxy_mode (const PhConfig *config);
/* [system-proxy] machine=: "environment", "systemd", "apt", "docker" (Linux's), "winhttp"
 * (Windows'), each at most once and in that order, whatever the system; empty (never NULL) when
 * none. */
const char *const *ph_config_get_machine_proxy (const PhConfig *config);
/* [doctor] target: where the doctor's authentication probe CONNECTs, "host:port" ("[v6]:port"),
 * or NULL for each cloud proxy's own name, port 443. */
const char *ph_config_get_doctor_target (const PhConfig *config);

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
/* How many keys managed drop-ins lock. */
guint ph_config_get_n_locked (const PhConfig *config);
/* Checks @value for @key as a file's value would be checked. */
gboolean ph_config_check_value (const char *key, const char *value, GError **error);
/* Sets (or with @value NULL removes) @key in the GKeyFile text @data,
 * keeping comments; returns the new text. */
char *ph_config_edit (const char *data, const char *key, const char *value, GError **error);

/* The key table itself, read-only, for what describes the settings to people (the Group Policy
 * templates' generator, installer/windows/policy/ph-admx-gen.c): each row in the table's order
 * with its kind, bounds, words and description. */
typedef enum
{
  PH_CONFIG_KIND_STRING,       /* one value: a name, a path, a URL, a HOST:PORT */
  PH_CONFIG_KIND_LIST,         /* items separated by ";" or "," */
  PH_CONFIG_KIND_UINT,         /* a whole number from min to max */
  PH_CONFIG_KIND_UINT_OR_AUTO, /* "auto" or a whole number from min to max */
  PH_CONFIG_KIND_DURATION,     /* "500ms", "30s", "5min", "1h" (a number alone: seconds);
                                * min and max are milliseconds */
  PH_CONFIG_KIND_BOOL,         /* "true" or "false" */
  PH_CONFIG_KIND_CHOICE,       /* one of the key's words */
} PhConfigKind;

/* A row of the key table; it lives as long as the program. */
typedef struct _PhConfigKey PhConfigKey;

guint ph_config_get_n_keys (void);
const PhConfigKey *ph_config_get_key (guint i);
const char *ph_config_key_get_group (const PhConfigKey *key);
const char *ph_config_key_get_name (const PhConfigKey *key); /* without its group */
const char *ph_config_key_get_default (const PhConfigKey *key);
PhConfigKind ph_config_key_get_kind (const PhConfigKey *key);
/* UINT, UINT_OR_AUTO and DURATION: the bounds the parser enforces; else 0. */
guint ph_config_key_get_min (const PhConfigKey *key);
guint ph_config_key_get_max (const PhConfigKey *key);
/* CHOICE: the words it takes, NULL-terminated (an empty default is none of them: it means
 * "decided by other keys"); else NULL. */
const char *const *ph_config_key_get_words (const PhConfigKey *key);
/* A short title and one or a few sentences, in English: marked N_(), translated by whoever
 * shows them (the core has no text domain). */
const char *ph_config_key_get_summary (const PhConfigKey *key);
const char *ph_config_key_get_explanation (const PhConfigKey *key);

/* Parsing helpers shared with the tests. */
gboolean ph_config_parse_duration (const char *text, guint *ms, GError **error);
/* "off", "local" or "gateway IFACE" (also pinholectl capture's words); @iface is set for
 * gateway. */
gboolean ph_capture_mode_parse (const char *text, PhCaptureMode *mode, char **iface);
gboolean ph_capture_interface_valid (const char *iface);
const char *ph_capture_mode_to_string (PhCaptureMode mode);

GInetSocketAddress *ph_config_parse_listen_address (const char *text, GError **error);

G_DEFINE_AUTOPTR_CLEANUP_FUNC (PhConfig, ph_config_unref)

G_END_DECLS

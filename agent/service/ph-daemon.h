/* SPDX-License-Identifier: GPL-2.0-or-later */
/* ph-daemon.h: the agent as a service, with no transport: on/off and its
 * state, the configuration in force (from ph-config-store.h's files),
 * stored credentials, pins. The D-Bus adapter and the mains drive it. */
#pragma once

#include <gio/gio.h>

#include "ph-config.h"
#include "ph-route.h"
#include "ph-secret.h"
#include "ph-tls.h"
#include "ph-upstream.h"

G_BEGIN_DECLS

typedef enum
{
  PH_DAEMON_MODE_STANDALONE, /* one --config file, no control interface */
  PH_DAEMON_MODE_SYSTEM,
  PH_DAEMON_MODE_SESSION,
} PhDaemonMode;

typedef enum
{
  PH_STATE_OFF,
  PH_STATE_CONNECTING,
  PH_STATE_ON,
  PH_STATE_ERROR,
  PH_STATE_CAPTIVE_PORTAL, /* the cloud proxy cannot be reached and a captive portal answered */
} PhState;

typedef struct
{
  PhDaemonMode mode;
  const char *system_path; /* the system file (standalone: the --config file) */
  const char *user_path;   /* session mode: the user's file, where settings are saved */
  const char *managed_dir; /* IT drop-ins; NULL in standalone mode */
  const char *state_dir;   /* the on/off switch survives restarts here; NULL: it does not */
  PhSecretStore *secrets;  /* taken; NULL: password-file only */
  gboolean watch;          /* apply file changes live */
} PhDaemonSetup;

typedef struct
{
  guint connections;
  guint64 requests;
  guint64 bytes_up, bytes_down;
  guint64 uptime_seconds, state_seconds;
  guint64 upstream_connects, upstream_failures;
  PhUpstreamStats pool; /* of the current upstream (since start or the last upstream change) */
} PhDaemonStats;

#define PH_TYPE_DAEMON (ph_daemon_get_type ())
G_DECLARE_FINAL_TYPE (PhDaemon, ph_daemon, PH, DAEMON, GObject)

/* In standalone mode a configuration that does not load, or a listener
 * that cannot be opened, fails here. A service starts anyway and reports
 * it in LastError, so that it can be fixed over the control interface. */
PhDaemon *ph_daemon_new (const PhDaemonSetup *setup, GError **error);

const char *ph_state_to_string (PhState state);
const char *ph_daemon_mode_to_string (PhDaemonMode mode);

PhDaemonMode ph_daemon_get_mode (PhDaemon *d);
PhState ph_daemon_get_state (PhDaemon *d);
gboolean ph_daemon_get_enabled (PhDaemon *d);
/* What put the agent in "error", else a configuration that could not be
 * applied, else NULL. */
const GError *ph_daemon_get_last_error (PhDaemon *d);
PhConfig *ph_daemon_get_config (PhDaemon *d);
/* The captive portal's page while the state is captive-portal, else "". */
const char *ph_daemon_get_portal_url (PhDaemon *d);
/* Counts the configurations put in force: changes whenever a setting may have. */
guint ph_daemon_get_config_generation (PhDaemon *d);
/* The cloud proxy in use ("host:port"), "" when none is configured. */
char *ph_daemon_dup_upstream_name (PhDaemon *d);
/* Each cloud proxy's health, as the Upstreams property gives it (aa{sv}). */
GVariant *ph_daemon_dup_upstreams (PhDaemon *d);
GStrv ph_daemon_dup_listeners (PhDaemon *d);
GStrv ph_daemon_dup_transparent_listeners (PhDaemon *d);
GStrv ph_daemon_dup_trusted_pins (PhDaemon *d);
GStrv ph_daemon_dup_locked_keys (PhDaemon *d);
const char *ph_daemon_get_seen_pin (PhDaemon *d);
gboolean ph_daemon_get_credentials_stored (PhDaemon *d);
void ph_daemon_get_stats (PhDaemon *d, PhDaemonStats *stats);
/* The route a request for @target would take now, by the rules new connections get (the
 * configuration in force when off): "http://host[:port]/path" is a plain request,
 * "https://host[:port]/…" a CONNECT to host:443 (or the port), "host:port" ("[v6]:port") a
 * CONNECT. Like a connection, it resolves no name. BAD_REQUEST for anything else. */
PhRoute *ph_daemon_explain_route (PhDaemon *d, const char *target, GError **error);

gboolean ph_daemon_enable (PhDaemon *d, GError **error);
void ph_daemon_disable (PhDaemon *d);
gboolean ph_daemon_reload (PhDaemon *d, GError **error);
gboolean ph_daemon_set_setting (PhDaemon *d, const char *key, const char *value, GError **error);
gboolean ph_daemon_trust_pin (PhDaemon *d, const char *pin, GError **error);
gboolean ph_daemon_set_credentials (PhDaemon *d, const char *username, const char *password,
                                    GError **error);
gboolean ph_daemon_clear_credentials (PhDaemon *d, GError **error);
/* Saves [transparent] capture= (@mode: "off", "local" or "gateway IFACE") like SetSetting and
 * applies it; nft's failure is returned (and kept for the Capture property). */
gboolean ph_daemon_set_capture (PhDaemon *d, const char *mode, GError **error);
/* The capture as the Capture property gives it (a{sv}): "mode" (s), "interface" (s), "ports"
 * (aq), "listener-port" (q), "active" (b: the rules are in nftables), "error" (s). */
GVariant *ph_daemon_dup_capture (PhDaemon *d);
/* A SOCKS user's password, stored in the secret store like the proxy's (never in a file), and
 * @name added to [listener] socks-users; removing takes both away. Applied at once. */
gboolean ph_daemon_set_socks_user (PhDaemon *d, const char *name, const char *password,
                                   GError **error);
gboolean ph_daemon_remove_socks_user (PhDaemon *d, const char *name, GError **error);

void ph_daemon_inspect_async (PhDaemon *d, GCancellable *cancellable, GAsyncReadyCallback callback,
                              gpointer user_data);
PhTlsInspection *ph_daemon_inspect_finish (PhDaemon *d, GAsyncResult *result, GError **error);

/* Runs the doctor (ph-doctor.h) on the configuration in force, tunnel on or off, outside the
 * tunnel's pools; NOT_CONFIGURED without a cloud proxy. The report is an a{sv}. */
void ph_daemon_diagnose_async (PhDaemon *d, const char *url, GCancellable *cancellable,
                               GAsyncReadyCallback callback, gpointer user_data);
GVariant *ph_daemon_diagnose_finish (PhDaemon *d, GAsyncResult *result, GError **error);

/* Stops accepting, lets open tunnels finish for up to @timeout_ms, then
 * calls @done. For shutdown. */
void ph_daemon_shutdown (PhDaemon *d, guint timeout_ms, GSourceFunc done, gpointer user_data);

G_END_DECLS

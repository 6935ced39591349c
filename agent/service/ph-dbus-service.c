/* SPDX-License-Identifier: GPL-2.0-or-later */
/* ph-dbus-service.c: org.pinhole.Agent1 over D-Bus. Method calls are
 * authorized (ph-dbus-auth.h: same user or polkit on a bus, the pipe's
 * role on Windows) before they reach the daemon; its errors keep their
 * org.pinhole.Error name on the wire. */
#define G_LOG_DOMAIN "pinhole-dbus"

#include "ph-build-config.h"
#include "ph-dbus-auth.h"
#include "ph-dbus-service.h"
#include "ph-error.h"

#include <glib/gi18n.h>

struct _PhDBusService
{
  PhAgent1Skeleton parent;
  PhDaemon *daemon;
  PhAuthMode auth;
  gulong changed_id;
};

static void ph_dbus_service_iface_init (PhAgent1Iface *iface);

G_DEFINE_TYPE_WITH_CODE (PhDBusService, ph_dbus_service, PH_TYPE_AGENT1_SKELETON,
                         G_IMPLEMENT_INTERFACE (PH_TYPE_AGENT1, ph_dbus_service_iface_init))

/* ---- properties ---- */

static void
sync_properties (PhDBusService *self)
{
  PhAgent1 *iface = PH_AGENT1 (self);
  PhDaemon *d = self->daemon;
  PhConfig *config = ph_daemon_get_config (d);
  const GError *error = ph_daemon_get_last_error (d);
  g_autofree char *upstream = ph_daemon_dup_upstream_name (d);
  g_autoptr (GVariant) upstreams = ph_daemon_dup_upstreams (d);
  g_auto (GStrv) listeners = ph_daemon_dup_listeners (d);
  g_auto (GStrv) transparent = ph_daemon_dup_transparent_listeners (d);
  g_auto (GStrv) pins = ph_daemon_dup_trusted_pins (d);
  g_auto (GStrv) locked = ph_daemon_dup_locked_keys (d);
  g_autoptr (GVariant) capture = ph_daemon_dup_capture (d);
  g_autofree char *error_name = NULL;
  PhDaemonStats stats;

  if (error != NULL)
    error_name = g_dbus_error_encode_gerror (error);
  ph_daemon_get_stats (d, &stats);
  ph_agent1_set_state (iface, ph_state_to_string (ph_daemon_get_state (d)));
  ph_agent1_set_enabled (iface, ph_daemon_get_enabled (d));
  ph_agent1_set_last_error (
      iface, g_variant_new ("(ss)", error_name ? error_name : "", error ? error->message : ""));
  ph_agent1_set_portal_url (iface, ph_daemon_get_portal_url (d));
  ph_agent1_set_config_generation (iface, ph_daemon_get_config_generation (d));
  ph_agent1_set_upstream (iface, upstream);
  ph_agent1_set_upstreams (iface, upstreams);
  ph_agent1_set_listeners (iface, (const char *const *) listeners);
  ph_agent1_set_transparent_listeners (iface, (const char *const *) transparent);
  ph_agent1_set_active_tunnels (iface, stats.connections);
  ph_agent1_set_bytes_up (iface, stats.bytes_up);
  ph_agent1_set_bytes_down (iface, stats.bytes_down);
  ph_agent1_set_seen_pin (iface, ph_daemon_get_seen_pin (d));
  ph_agent1_set_trusted_pins (iface, (const char *const *) pins);
  ph_agent1_set_username (iface,
                          ph_config_get_username (config) ? ph_config_get_username (config) : "");
  ph_agent1_set_credentials_stored (iface, ph_daemon_get_credentials_stored (d));
  ph_agent1_set_locked_keys (iface, (const char *const *) locked);
  ph_agent1_set_capture (iface, capture);
}

/* ---- authorization ---- */

typedef gboolean (*PhHandler) (PhDBusService *self, GDBusMethodInvocation *invocation);

typedef struct
{
  PhDBusService *self;
  GDBusMethodInvocation *invocation;
  PhHandler handler;
} PhAuthCall;

static void
auth_call_free (PhAuthCall *call)
{
  g_object_unref (call->self);
  g_object_unref (call->invocation);
  g_free (call);
}

G_DEFINE_AUTOPTR_CLEANUP_FUNC (PhAuthCall, auth_call_free)

static void
deny (PhAuthCall *call, const char *why)
{
  const char *sender = g_dbus_method_invocation_get_sender (call->invocation);

  g_message ("refused %s from %s: %s", g_dbus_method_invocation_get_method_name (call->invocation),
             sender != NULL ? sender : "a pipe client", why);
  g_dbus_method_invocation_return_error (call->invocation, PH_ERROR, PH_ERROR_PERMISSION_DENIED,
                                         /* TRANSLATORS: %s says why, e.g. "the caller
                                          * is another user" */
                                         _ ("not authorized: %s"), why);
}

static void
auth_done (const char *why, gpointer data)
{
  g_autoptr (PhAuthCall) call = data;

  if (why != NULL)
    deny (call, why);
  else
    call->handler (call->self, call->invocation);
}

/* Runs @handler once the caller may do @action. */
static gboolean
authorize (PhDBusService *self, GDBusMethodInvocation *invocation, const char *action,
           PhHandler handler)
{
  PhAuthCall *call = g_new0 (PhAuthCall, 1);

  call->self = g_object_ref (self);
  call->invocation = g_object_ref (invocation);
  call->handler = handler;
  ph_dbus_auth_check (self->auth, invocation, action, auth_done, call);
  return TRUE;
}

/* Properties are sent before the reply, so that a client sees the effect
 * of its call as soon as the call returns. */
static void
return_result (PhDBusService *self, GDBusMethodInvocation *invocation, gboolean ok, GError *error)
{
  g_dbus_interface_skeleton_flush (G_DBUS_INTERFACE_SKELETON (self));
  if (ok)
    g_dbus_method_invocation_return_value (invocation, NULL);
  else
    g_dbus_method_invocation_return_gerror (invocation, error);
}

/* ---- methods, once authorized ---- */

static gboolean
do_enable (PhDBusService *self, GDBusMethodInvocation *invocation)
{
  g_autoptr (GError) error = NULL;
  gboolean ok = ph_daemon_enable (self->daemon, &error);
  return_result (self, invocation, ok, error);
  return TRUE;
}

static gboolean
do_disable (PhDBusService *self, GDBusMethodInvocation *invocation)
{
  ph_daemon_disable (self->daemon);
  return_result (self, invocation, TRUE, NULL);
  return TRUE;
}

static gboolean
do_reload (PhDBusService *self, GDBusMethodInvocation *invocation)
{
  g_autoptr (GError) error = NULL;
  gboolean ok = ph_daemon_reload (self->daemon, &error);
  return_result (self, invocation, ok, error);
  return TRUE;
}

static gboolean
do_trust_pin (PhDBusService *self, GDBusMethodInvocation *invocation)
{
  g_autoptr (GError) error = NULL;
  const char *pin = NULL;

  g_variant_get (g_dbus_method_invocation_get_parameters (invocation), "(&s)", &pin);
  gboolean ok = ph_daemon_trust_pin (self->daemon, pin, &error);
  return_result (self, invocation, ok, error);
  return TRUE;
}

static gboolean
do_set_credentials (PhDBusService *self, GDBusMethodInvocation *invocation)
{
  g_autoptr (GError) error = NULL;
  const char *username = NULL, *password = NULL;

  g_variant_get (g_dbus_method_invocation_get_parameters (invocation), "(&s&s)", &username,
                 &password);
  gboolean ok = ph_daemon_set_credentials (self->daemon, username, password, &error);
  return_result (self, invocation, ok, error);
  return TRUE;
}

static gboolean
do_clear_credentials (PhDBusService *self, GDBusMethodInvocation *invocation)
{
  g_autoptr (GError) error = NULL;
  gboolean ok = ph_daemon_clear_credentials (self->daemon, &error);
  return_result (self, invocation, ok, error);
  return TRUE;
}

static gboolean
do_set_socks_user (PhDBusService *self, GDBusMethodInvocation *invocation)
{
  g_autoptr (GError) error = NULL;
  const char *name = NULL, *password = NULL;

  g_variant_get (g_dbus_method_invocation_get_parameters (invocation), "(&s&s)", &name, &password);
  gboolean ok = ph_daemon_set_socks_user (self->daemon, name, password, &error);
  return_result (self, invocation, ok, error);
  return TRUE;
}

static gboolean
do_remove_socks_user (PhDBusService *self, GDBusMethodInvocation *invocation)
{
  g_autoptr (GError) error = NULL;
  const char *name = NULL;

  g_variant_get (g_dbus_method_invocation_get_parameters (invocation), "(&s)", &name);
  gboolean ok = ph_daemon_remove_socks_user (self->daemon, name, &error);
  return_result (self, invocation, ok, error);
  return TRUE;
}

static gboolean
do_set_setting (PhDBusService *self, GDBusMethodInvocation *invocation)
{
  g_autoptr (GError) error = NULL;
  const char *key = NULL, *value = NULL;

  g_variant_get (g_dbus_method_invocation_get_parameters (invocation), "(&s&s)", &key, &value);
  gboolean ok = ph_daemon_set_setting (self->daemon, key, value, &error);
  return_result (self, invocation, ok, error);
  return TRUE;
}

static gboolean
do_set_capture (PhDBusService *self, GDBusMethodInvocation *invocation)
{
  g_autoptr (GError) error = NULL;
  const char *mode = NULL;

  g_variant_get (g_dbus_method_invocation_get_parameters (invocation), "(&s)", &mode);
  gboolean ok = ph_daemon_set_capture (self->daemon, mode, &error);
  return_result (self, invocation, ok, error);
  return TRUE;
}

static gboolean
do_apply_machine_proxy (PhDBusService *self, GDBusMethodInvocation *invocation)
{
  g_autoptr (GError) error = NULL;
  gboolean ok = ph_daemon_apply_machine_proxy (self->daemon, &error);

  return_result (self, invocation, ok, error);
  return TRUE;
}

static gboolean
do_restore_machine_proxy (PhDBusService *self, GDBusMethodInvocation *invocation)
{
  g_autoptr (GError) error = NULL;
  gboolean ok = ph_daemon_restore_machine_proxy (self->daemon, &error);

  return_result (self, invocation, ok, error);
  return TRUE;
}

/* ---- handlers ---- */

static gboolean
handle_enable (PhAgent1 *object, GDBusMethodInvocation *invocation)
{
  return authorize (PH_DBUS_SERVICE (object), invocation, PH_AUTH_ACTION_TOGGLE, do_enable);
}

static gboolean
handle_disable (PhAgent1 *object, GDBusMethodInvocation *invocation)
{
  return authorize (PH_DBUS_SERVICE (object), invocation, PH_AUTH_ACTION_TOGGLE, do_disable);
}

static gboolean
handle_reload (PhAgent1 *object, GDBusMethodInvocation *invocation)
{
  return authorize (PH_DBUS_SERVICE (object), invocation, PH_AUTH_ACTION_CONFIGURE, do_reload);
}

static gboolean
handle_trust_pin (PhAgent1 *object, GDBusMethodInvocation *invocation, const char *pin)
{
  return authorize (PH_DBUS_SERVICE (object), invocation, PH_AUTH_ACTION_CONFIGURE, do_trust_pin);
}

static gboolean
handle_set_credentials (PhAgent1 *object, GDBusMethodInvocation *invocation, const char *username,
                        const char *password)
{
  return authorize (PH_DBUS_SERVICE (object), invocation, PH_AUTH_ACTION_CONFIGURE,
                    do_set_credentials);
}

static gboolean
handle_clear_credentials (PhAgent1 *object, GDBusMethodInvocation *invocation)
{
  return authorize (PH_DBUS_SERVICE (object), invocation, PH_AUTH_ACTION_CONFIGURE,
                    do_clear_credentials);
}

/* Authorised like SetCredentials: a password that opens the listener to the LAN. */
static gboolean
handle_set_socks_user (PhAgent1 *object, GDBusMethodInvocation *invocation, const char *name,
                       const char *password)
{
  return authorize (PH_DBUS_SERVICE (object), invocation, PH_AUTH_ACTION_CONFIGURE,
                    do_set_socks_user);
}

static gboolean
handle_remove_socks_user (PhAgent1 *object, GDBusMethodInvocation *invocation, const char *name)
{
  return authorize (PH_DBUS_SERVICE (object), invocation, PH_AUTH_ACTION_CONFIGURE,
                    do_remove_socks_user);
}

static gboolean
handle_set_setting (PhAgent1 *object, GDBusMethodInvocation *invocation, const char *key,
                    const char *value)
{
  return authorize (PH_DBUS_SERVICE (object), invocation, PH_AUTH_ACTION_CONFIGURE, do_set_setting);
}

static gboolean
handle_set_capture (PhAgent1 *object, GDBusMethodInvocation *invocation, const char *mode)
{
  return authorize (PH_DBUS_SERVICE (object), invocation, PH_AUTH_ACTION_CONFIGURE, do_set_capture);
}

static gboolean
handle_apply_machine_proxy (PhAgent1 *object, GDBusMethodInvocation *invocation)
{
  return authorize (PH_DBUS_SERVICE (object), invocation, PH_AUTH_ACTION_CONFIGURE,
                    do_apply_machine_proxy);
}

static gboolean
handle_restore_machine_proxy (PhAgent1 *object, GDBusMethodInvocation *invocation)
{
  return authorize (PH_DBUS_SERVICE (object), invocation, PH_AUTH_ACTION_CONFIGURE,
                    do_restore_machine_proxy);
}

static gboolean
handle_get_machine_proxy (PhAgent1 *object, GDBusMethodInvocation *invocation)
{
  g_autoptr (GVariant) status = ph_daemon_dup_machine_proxy (PH_DBUS_SERVICE (object)->daemon);

  ph_agent1_complete_get_machine_proxy (object, invocation, status);
  return TRUE;
}

static gboolean
handle_get_setting (PhAgent1 *object, GDBusMethodInvocation *invocation, const char *key)
{
  PhDBusService *self = PH_DBUS_SERVICE (object);
  PhConfig *config = ph_daemon_get_config (self->daemon);

  if (!ph_config_has_key (key))
    {
      g_dbus_method_invocation_return_error (invocation, PH_ERROR, PH_ERROR_INVALID_SETTING,
                                             _ ("unknown setting “%s”"), key);
      return TRUE;
    }
  ph_agent1_complete_get_setting (object, invocation, ph_config_get_value (config, key),
                                  ph_config_is_locked (config, key));
  return TRUE;
}

static gboolean
handle_list_settings (PhAgent1 *object, GDBusMethodInvocation *invocation)
{
  PhDBusService *self = PH_DBUS_SERVICE (object);
  PhConfig *config = ph_daemon_get_config (self->daemon);
  const char *const *keys = ph_config_list_keys ();
  GVariantBuilder b;

  g_variant_builder_init (&b, G_VARIANT_TYPE ("a(ssbs)"));
  for (guint i = 0; keys[i] != NULL; i++)
    g_variant_builder_add (&b, "(ssbs)", keys[i], ph_config_get_value (config, keys[i]),
                           ph_config_is_locked (config, keys[i]), ph_config_get_default (keys[i]));
  ph_agent1_complete_list_settings (object, invocation, g_variant_builder_end (&b));
  return TRUE;
}

static gboolean
handle_get_statistics (PhAgent1 *object, GDBusMethodInvocation *invocation)
{
  PhDBusService *self = PH_DBUS_SERVICE (object);
  PhDaemonStats stats;
  GVariantDict dict;

  ph_daemon_get_stats (self->daemon, &stats);
  g_variant_dict_init (&dict, NULL);
  g_variant_dict_insert (&dict, "state", "s",
                         ph_state_to_string (ph_daemon_get_state (self->daemon)));
  g_variant_dict_insert (&dict, "active-tunnels", "u", stats.connections);
  g_variant_dict_insert (&dict, "connections", "u", stats.connections);
  g_variant_dict_insert (&dict, "requests", "t", stats.requests);
  g_variant_dict_insert (&dict, "bytes-up", "t", stats.bytes_up);
  g_variant_dict_insert (&dict, "bytes-down", "t", stats.bytes_down);
  g_variant_dict_insert (&dict, "uptime-seconds", "t", stats.uptime_seconds);
  g_variant_dict_insert (&dict, "state-seconds", "t", stats.state_seconds);
  g_variant_dict_insert (&dict, "upstream-connects", "t", stats.upstream_connects);
  g_variant_dict_insert (&dict, "upstream-failures", "t", stats.upstream_failures);
  g_variant_dict_insert (&dict, "pool-connects", "t", stats.pool.connects);
  g_variant_dict_insert (&dict, "pool-idle-reused", "t", stats.pool.idle_reused);
  g_variant_dict_insert (&dict, "pool-warm-taken", "t", stats.pool.warm_taken);
  g_variant_dict_insert (&dict, "pool-warm-missed", "t", stats.pool.warm_missed);
  g_variant_dict_insert (&dict, "pool-retries", "t", stats.pool.retries);
  g_variant_dict_insert (&dict, "handshakes-full", "t", stats.pool.handshakes_full);
  g_variant_dict_insert (&dict, "handshakes-resumed", "t", stats.pool.handshakes_resumed);
  g_variant_dict_insert (&dict, "idle-connections", "u", stats.pool.n_idle);
  g_variant_dict_insert (&dict, "warm-connections", "u", stats.pool.n_warm);
  g_variant_dict_insert (&dict, "h2-connections", "t", stats.pool.h2_connections);
  g_variant_dict_insert (&dict, "h2-streams", "t", stats.pool.h2_streams);
  g_variant_dict_insert (&dict, "h2-streams-retried", "t", stats.pool.h2_retried);
  g_variant_dict_insert (&dict, "h2-sessions-open", "u", stats.pool.n_h2_sessions);
  g_variant_dict_insert (&dict, "h2-streams-open", "u", stats.pool.n_h2_streams);
  ph_agent1_complete_get_statistics (object, invocation, g_variant_dict_end (&dict));
  return TRUE;
}

static gboolean
do_get_connections (PhDBusService *self, GDBusMethodInvocation *invocation)
{
  g_autoptr (GVariant) conns = ph_daemon_dup_connections (self->daemon);

  ph_agent1_complete_get_connections (PH_AGENT1 (self), invocation, conns);
  return TRUE;
}

/* The targets say where the machine's users (and the LAN's) go: a user at the machine may see
 * them, like the switch; a user elsewhere (ssh, another seat) needs an administrator. Never a
 * credential. */
static gboolean
handle_get_connections (PhAgent1 *object, GDBusMethodInvocation *invocation)
{
  return authorize (PH_DBUS_SERVICE (object), invocation, PH_AUTH_ACTION_MONITOR,
                    do_get_connections);
}

/* Changes nothing and sends nothing: open to every caller, like the other readers. */
static gboolean
handle_explain_route (PhAgent1 *object, GDBusMethodInvocation *invocation, const char *target)
{
  PhDBusService *self = PH_DBUS_SERVICE (object);
  g_autoptr (GError) error = NULL;
  g_autoptr (PhRoute) route = ph_daemon_explain_route (self->daemon, target, &error);
  g_autofree char *description = NULL;
  const char *rule;

  if (route == NULL)
    {
      g_dbus_method_invocation_return_gerror (invocation, error);
      return TRUE;
    }
  rule = ph_route_get_rule (route);
  description = ph_route_describe (route);
  ph_agent1_complete_explain_route (object, invocation,
                                    ph_route_kind_to_string (ph_route_get_kind (route)),
                                    ph_route_reason_to_string (ph_route_get_reason (route)),
                                    rule != NULL ? rule : "", description);
  return TRUE;
}

static void
inspect_done (GObject *source, GAsyncResult *result, gpointer data)
{
  g_autoptr (GDBusMethodInvocation) invocation = data;
  g_autoptr (GError) error = NULL;
  g_autoptr (PhTlsInspection) inspection
      = ph_daemon_inspect_finish (PH_DAEMON (source), result, &error);
  PhConfig *config = ph_daemon_get_config (PH_DAEMON (source));
  GVariantBuilder chain;
  GVariantDict info;
  const char *pin = "";
  gboolean pin_trusted = FALSE;

  if (inspection == NULL)
    {
      g_dbus_method_invocation_return_gerror (invocation, error);
      return;
    }
  g_variant_builder_init (&chain, G_VARIANT_TYPE ("aa{sv}"));
  for (guint i = 0; i < ph_tls_inspection_get_n_certs (inspection); i++)
    {
      const PhCertInfo *c = ph_tls_inspection_get_cert (inspection, i);
      GVariantDict cert;

      g_variant_dict_init (&cert, NULL);
      g_variant_dict_insert (&cert, "pin", "s", ph_cert_info_get_pin (c));
      g_variant_dict_insert (&cert, "subject", "s", ph_cert_info_get_subject (c));
      g_variant_dict_insert (&cert, "issuer", "s", ph_cert_info_get_issuer (c));
      g_variant_dict_insert (&cert, "not-before", "x", ph_cert_info_get_not_before (c));
      g_variant_dict_insert (&cert, "not-after", "x", ph_cert_info_get_not_after (c));
      g_variant_dict_insert (&cert, "sha256-fingerprint", "s", ph_cert_info_get_sha256 (c));
      g_variant_builder_add_value (&chain, g_variant_dict_end (&cert));
    }
  if (ph_tls_inspection_get_n_certs (inspection) > 0)
    {
      g_autoptr (PhPin) parsed = NULL;
      pin = ph_cert_info_get_pin (ph_tls_inspection_get_cert (inspection, 0));
      parsed = ph_pin_parse (pin, NULL);
      pin_trusted = parsed != NULL && ph_config_has_pin (config, parsed);
    }
  g_variant_dict_init (&info, NULL);
  g_variant_dict_insert (&info, "host", "s", ph_config_get_host (config));
  g_variant_dict_insert (&info, "server-name", "s", ph_config_get_server_name (config));
  g_variant_dict_insert (&info, "protocol", "s", ph_tls_inspection_get_protocol (inspection));
  g_variant_dict_insert (&info, "ca-trusted", "b", ph_tls_inspection_get_ca_trusted (inspection));
  g_variant_dict_insert (&info, "ca-problem", "s", ph_tls_inspection_get_ca_problem (inspection));
  g_variant_dict_insert (&info, "pin-trusted", "b", pin_trusted);
  g_dbus_method_invocation_return_value (invocation, g_variant_new ("(s@aa{sv}@a{sv})", pin,
                                                                    g_variant_builder_end (&chain),
                                                                    g_variant_dict_end (&info)));
}

/* Sends nothing to the proxy and changes nothing: open to every caller. */
static gboolean
handle_fetch_upstream_pin (PhAgent1 *object, GDBusMethodInvocation *invocation)
{
  PhDBusService *self = PH_DBUS_SERVICE (object);

  ph_daemon_inspect_async (self->daemon, NULL, inspect_done, g_object_ref (invocation));
  return TRUE;
}

static void
diagnose_done (GObject *source, GAsyncResult *result, gpointer data)
{
  g_autoptr (GDBusMethodInvocation) invocation = data;
  g_autoptr (GError) error = NULL;
  g_autoptr (GVariant) report = ph_daemon_diagnose_finish (PH_DAEMON (source), result, &error);

  if (report == NULL)
    {
      g_dbus_method_invocation_return_gerror (invocation, error);
      return;
    }
  g_dbus_method_invocation_return_value (invocation, g_variant_new ("(@a{sv})", report));
}

/* Changes nothing and sends no secret but the proxy's own credentials to the proxy: open to
 * every caller, like the readers, so that a user can see why the tunnel fails. */
static gboolean
handle_diagnose (PhAgent1 *object, GDBusMethodInvocation *invocation, const char *url)
{
  PhDBusService *self = PH_DBUS_SERVICE (object);

  ph_daemon_diagnose_async (self->daemon, url, NULL, diagnose_done, g_object_ref (invocation));
  return TRUE;
}

static void
ph_dbus_service_iface_init (PhAgent1Iface *iface)
{
  iface->handle_enable = handle_enable;
  iface->handle_disable = handle_disable;
  iface->handle_reload = handle_reload;
  iface->handle_fetch_upstream_pin = handle_fetch_upstream_pin;
  iface->handle_trust_pin = handle_trust_pin;
  iface->handle_set_credentials = handle_set_credentials;
  iface->handle_clear_credentials = handle_clear_credentials;
  iface->handle_set_socks_user = handle_set_socks_user;
  iface->handle_remove_socks_user = handle_remove_socks_user;
  iface->handle_get_setting = handle_get_setting;
  iface->handle_list_settings = handle_list_settings;
  iface->handle_set_setting = handle_set_setting;
  iface->handle_set_capture = handle_set_capture;
  iface->handle_apply_machine_proxy = handle_apply_machine_proxy;
  iface->handle_restore_machine_proxy = handle_restore_machine_proxy;
  iface->handle_get_machine_proxy = handle_get_machine_proxy;
  iface->handle_get_statistics = handle_get_statistics;
  iface->handle_get_connections = handle_get_connections;
  iface->handle_explain_route = handle_explain_route;
  iface->handle_diagnose = handle_diagnose;
}

static void
ph_dbus_service_dispose (GObject *object)
{
  PhDBusService *self = PH_DBUS_SERVICE (object);

  if (self->daemon != NULL)
    g_clear_signal_handler (&self->changed_id, self->daemon);
  g_clear_object (&self->daemon);
  G_OBJECT_CLASS (ph_dbus_service_parent_class)->dispose (object);
}

static void
ph_dbus_service_class_init (PhDBusServiceClass *klass)
{
  G_OBJECT_CLASS (klass)->dispose = ph_dbus_service_dispose;
}

static void
ph_dbus_service_init (PhDBusService *self)
{
}

PhDBusService *
ph_dbus_service_new (PhDaemon *daemon, PhAuthMode auth)
{
  PhDBusService *self = g_object_new (PH_TYPE_DBUS_SERVICE, NULL);

  self->daemon = g_object_ref (daemon);
  self->auth = auth;
  ph_agent1_set_version (PH_AGENT1 (self), PH_VERSION);
  ph_agent1_set_mode (PH_AGENT1 (self), ph_daemon_mode_to_string (ph_daemon_get_mode (daemon)));
  self->changed_id
      = g_signal_connect_swapped (daemon, "changed", G_CALLBACK (sync_properties), self);
  sync_properties (self);
  return self;
}

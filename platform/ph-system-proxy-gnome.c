/* SPDX-License-Identifier: GPL-2.0-or-later */
/* ph-system-proxy-gnome.c: the system proxy on GNOME (and every desktop whose applications read
 * org.gnome.system.proxy through GSettings: GIO, Chromium, Firefox's "use system proxy").
 * Journal values are GVariant text, so that any previous value, a corporate PAC included, comes
 * back exactly. */
#define G_LOG_DOMAIN "pinhole-system-proxy"

#include "ph-system-proxy-private.h"
#include "ph-error.h"

#include <string.h>
#include <gio/gio.h>

#define SCHEMA_PROXY "org.gnome.system.proxy"

typedef struct
{
  PhProxyBackend parent;
  GSettings *root;  /* mode, ignore-hosts, use-same-proxy, autoconfig-url */
  GSettings *http;  /* host, port, use-authentication */
  GSettings *https; /* host, port */
} PhProxyBackendGnome;

/* Journal keys are "mode", "http.host", "https.port": the child's name, a dot, the key. */
static GSettings *
settings_for (PhProxyBackendGnome *self, const char *key, const char **name)
{
  if (g_str_has_prefix (key, "http."))
    {
      *name = key + strlen ("http.");
      return self->http;
    }
  if (g_str_has_prefix (key, "https."))
    {
      *name = key + strlen ("https.");
      return self->https;
    }
  *name = key;
  return self->root;
}

static GSettingsSchemaKey *
schema_key (GSettings *settings, const char *name)
{
  g_autoptr (GSettingsSchema) schema = NULL;

  g_object_get (settings, "settings-schema", &schema, NULL);
  return g_settings_schema_get_key (schema, name);
}

static gboolean
check_writable (GSettings *settings, const char *name, GError **error)
{
  g_autofree char *schema_id = NULL;

  if (g_settings_is_writable (settings, name))
    return TRUE;
  g_object_get (settings, "schema-id", &schema_id, NULL);
  g_set_error (error, PH_ERROR, PH_ERROR_FAILED,
               "Cannot set the system proxy: %s %s is locked by the administrator", schema_id,
               name);
  return FALSE;
}

static void
plan_add (GPtrArray *writes, const char *key, GVariant *value)
{
  g_autoptr (GVariant) sunk = g_variant_ref_sink (value);
  g_autofree char *text = g_variant_print (sunk, FALSE);

  g_ptr_array_add (writes, ph_proxy_write_new (key, text));
}

static gboolean
check_plan_writable (PhProxyBackendGnome *self, GPtrArray *writes, GError **error)
{
  for (guint i = 0; i < writes->len; i++)
    {
      PhProxyWrite *write = g_ptr_array_index (writes, i);
      const char *name;
      GSettings *settings = settings_for (self, write->key, &name);

      if (!check_writable (settings, name, error))
        return FALSE;
    }
  return TRUE;
}

static gboolean
gnome_plan (PhProxyBackend *backend, const char *host, guint port, const char *pac_url,
            const char *const *bypass, GPtrArray *writes, GError **error)
{
  PhProxyBackendGnome *self = (PhProxyBackendGnome *) backend;

  plan_add (writes, "ignore-hosts", g_variant_new_strv (bypass, -1));
  if (pac_url != NULL)
    {
      /* GLib's resolver asks the PAC (through libproxy's pacrunner) only for hosts that
       * ignore-hosts leaves to it; the host and port keys stay as they are. */
      plan_add (writes, "autoconfig-url", g_variant_new_string (pac_url));
      plan_add (writes, "mode", g_variant_new_string ("auto"));
      return check_plan_writable (self, writes, error);
    }
  plan_add (writes, "https.host", g_variant_new_string (host));
  plan_add (writes, "https.port", g_variant_new_int32 ((gint32) port));
  plan_add (writes, "http.host", g_variant_new_string (host));
  plan_add (writes, "http.port", g_variant_new_int32 ((gint32) port));
  /* With it on, GIO sends every other scheme (ftp, ws, anything) to the http proxy, and
   * Pinhole speaks HTTP only. */
  plan_add (writes, "use-same-proxy", g_variant_new_boolean (FALSE));
  /* Credentials meant for the previous proxy must not be sent to Pinhole, which would pass the
   * header on to the cloud. Touched only when on, so that an unused key stays unset. */
  if (g_settings_get_boolean (self->http, "use-authentication"))
    plan_add (writes, "http.use-authentication", g_variant_new_boolean (FALSE));
  /* Last: applications switch to the new host and port only once those are all in place. */
  plan_add (writes, "mode", g_variant_new_string ("manual"));
  return check_plan_writable (self, writes, error);
}

static gboolean
gnome_read (PhProxyBackend *backend, const char *key, char **value, GError **error)
{
  PhProxyBackendGnome *self = (PhProxyBackendGnome *) backend;
  const char *name;
  GSettings *settings = settings_for (self, key, &name);
  g_autoptr (GSettingsSchemaKey) skey = schema_key (settings, name);
  g_autoptr (GVariant) user = NULL;

  if (skey == NULL)
    {
      g_set_error (error, PH_ERROR, PH_ERROR_FAILED, "GNOME's proxy schema has no key %s", key);
      return FALSE;
    }
  /* The user's own value, not the effective one: unset means a default (possibly one IT set
   * system-wide in dconf) applies, and putting it back means unsetting it again. */
  user = g_settings_get_user_value (settings, name);
  *value = user != NULL ? g_variant_print (user, FALSE) : NULL;
  return TRUE;
}

static gboolean
gnome_write (PhProxyBackend *backend, const char *key, const char *value, GError **error)
{
  PhProxyBackendGnome *self = (PhProxyBackendGnome *) backend;
  const char *name;
  GSettings *settings = settings_for (self, key, &name);
  g_autoptr (GSettingsSchemaKey) skey = schema_key (settings, name);
  g_autoptr (GVariant) parsed = NULL;
  g_autoptr (GError) local = NULL;

  if (skey == NULL)
    {
      g_set_error (error, PH_ERROR, PH_ERROR_FAILED, "GNOME's proxy schema has no key %s", key);
      return FALSE;
    }
  if (!check_writable (settings, name, error))
    return FALSE;
  if (value == NULL)
    {
      g_settings_reset (settings, name);
      return TRUE;
    }
  parsed = g_variant_parse (g_settings_schema_key_get_value_type (skey), value, NULL, NULL, &local);
  if (parsed == NULL)
    {
      g_set_error (error, PH_ERROR, PH_ERROR_FAILED, "Cannot parse the value %s for %s: %s", value,
                   key, local->message);
      return FALSE;
    }
  /* g_settings_set_value() would only warn about a value outside the key's range or enum. */
  if (!g_settings_schema_key_range_check (skey, parsed))
    {
      g_set_error (error, PH_ERROR, PH_ERROR_FAILED, "The value %s is not allowed for %s", value,
                   key);
      return FALSE;
    }
  if (!g_settings_set_value (settings, name, parsed))
    {
      g_set_error (error, PH_ERROR, PH_ERROR_FAILED, "GSettings refused the value %s for %s", value,
                   key);
      return FALSE;
    }
  return TRUE;
}

static gboolean
gnome_commit (PhProxyBackend *backend, GError **error)
{
  /* dconf writes asynchronously. Without waiting, a crash right after disable() removed the
   * journal could lose the restore and leave applications pointed at a Pinhole that is gone. */
  g_settings_sync ();
  return TRUE;
}

static void
gnome_finalize (PhProxyBackend *backend)
{
  PhProxyBackendGnome *self = (PhProxyBackendGnome *) backend;

  g_clear_object (&self->root);
  g_clear_object (&self->http);
  g_clear_object (&self->https);
}

static const PhProxyBackendVTable gnome_vtable = {
  .plan = gnome_plan,
  .read = gnome_read,
  .write = gnome_write,
  .commit = gnome_commit,
  .finalize = gnome_finalize,
};

/* g_settings_new() aborts on a missing schema, so each one is looked up first. */
static GSettings *
settings_new_checked (GSettingsSchemaSource *source, const char *id, const char *const *keys)
{
  g_autoptr (GSettingsSchema) schema = g_settings_schema_source_lookup (source, id, TRUE);

  if (schema == NULL)
    return NULL;
  for (guint i = 0; keys[i] != NULL; i++)
    {
      if (!g_settings_schema_has_key (schema, keys[i]))
        return NULL;
    }
  return g_settings_new_full (schema, NULL, NULL);
}

PhProxyBackend *
ph_proxy_backend_gnome_new (void)
{
  static const char *const root_keys[]
      = { "mode", "ignore-hosts", "use-same-proxy", "autoconfig-url", NULL };
  static const char *const http_keys[] = { "host", "port", "use-authentication", NULL };
  static const char *const https_keys[] = { "host", "port", NULL };
  GSettingsSchemaSource *source = g_settings_schema_source_get_default ();
  g_autoptr (GSettings) root = NULL;
  g_autoptr (GSettings) http = NULL;
  g_autoptr (GSettings) https = NULL;
  PhProxyBackendGnome *self;

  if (source == NULL)
    return NULL;
  root = settings_new_checked (source, SCHEMA_PROXY, root_keys);
  http = settings_new_checked (source, SCHEMA_PROXY ".http", http_keys);
  https = settings_new_checked (source, SCHEMA_PROXY ".https", https_keys);
  if (root == NULL || http == NULL || https == NULL)
    return NULL;

  self = g_new0 (PhProxyBackendGnome, 1);
  self->parent.vtable = &gnome_vtable;
  self->parent.name = "gnome";
  self->root = g_steal_pointer (&root);
  self->http = g_steal_pointer (&http);
  self->https = g_steal_pointer (&https);
  return &self->parent;
}

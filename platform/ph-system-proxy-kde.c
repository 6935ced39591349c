/* SPDX-License-Identifier: GPL-2.0-or-later */
/* ph-system-proxy-kde.c: the system proxy on KDE: the [Proxy Settings] group of kioslaverc,
 * read and written through KDE's own kreadconfig/kwriteconfig (5 or 6), so that KConfig's
 * escaping, cascading and locking stay KDE's business. Values are written the way KDE's proxy
 * settings module writes them. */
#define G_LOG_DOMAIN "pinhole-system-proxy"

#include "ph-system-proxy-private.h"
#include "ph-error.h"

#include <string.h>
#include <gio/gio.h>

#define KDE_FILE "kioslaverc"
#define KDE_GROUP "Proxy Settings"
/* KProtocolManager::ManualProxy. */
#define KDE_PROXY_TYPE_MANUAL "1"
/* KProtocolManager::PACProxy: the script at "Proxy Config Script". */
#define KDE_PROXY_TYPE_PAC "2"
/* kreadconfig cannot tell an absent key from an empty one, except by printing the default it
 * is given; this one no real setting holds. */
#define ABSENT "\x01pinhole: no such key\x01"

typedef struct
{
  PhProxyBackend parent;
  char *kreadconfig;
  char *kwriteconfig;
} PhProxyBackendKde;

/* Runs @argv and returns its standard output; a failure carries its standard error. */
static gboolean
run_tool (const char *const *argv, char **out, GError **error)
{
  g_autoptr (GSubprocess) proc = NULL;
  g_autofree char *stdout_text = NULL;
  g_autofree char *stderr_text = NULL;

  proc = g_subprocess_newv (argv, G_SUBPROCESS_FLAGS_STDOUT_PIPE | G_SUBPROCESS_FLAGS_STDERR_PIPE,
                            error);
  if (proc == NULL)
    return FALSE;
  if (!g_subprocess_communicate_utf8 (proc, NULL, NULL, &stdout_text, &stderr_text, error))
    return FALSE;
  if (!g_subprocess_get_if_exited (proc) || g_subprocess_get_exit_status (proc) != 0)
    {
      g_set_error (error, PH_ERROR, PH_ERROR_FAILED, "%s failed: %s", argv[0],
                   stderr_text != NULL && *stderr_text != '\0' ? g_strstrip (stderr_text)
                                                               : "no message");
      return FALSE;
    }
  if (out != NULL)
    *out = g_steal_pointer (&stdout_text);
  return TRUE;
}

static gboolean
kde_read (PhProxyBackend *backend, const char *key, char **value, GError **error)
{
  PhProxyBackendKde *self = (PhProxyBackendKde *) backend;
  const char *const argv[] = { self->kreadconfig, "--file", KDE_FILE,    "--group", KDE_GROUP,
                               "--key",           key,      "--default", ABSENT,    NULL };
  g_autofree char *out = NULL;
  gsize len;

  if (!run_tool (argv, &out, error))
    return FALSE;
  /* It ends the value with one newline of its own; anything before it is the value's. */
  len = strlen (out);
  if (len > 0 && out[len - 1] == '\n')
    out[len - 1] = '\0';
  *value = strcmp (out, ABSENT) == 0 ? NULL : g_steal_pointer (&out);
  return TRUE;
}

static gboolean
kde_write (PhProxyBackend *backend, const char *key, const char *value, GError **error)
{
  PhProxyBackendKde *self = (PhProxyBackendKde *) backend;

  if (value == NULL)
    {
      const char *const argv[]
          = { self->kwriteconfig, "--file", KDE_FILE, "--group", KDE_GROUP, "--key", key,
              "--delete",         NULL };
      return run_tool (argv, NULL, error);
    }
  else
    {
      /* "--" so that a value that starts with a dash stays a value. */
      const char *const argv[] = { self->kwriteconfig,
                                   "--file",
                                   KDE_FILE,
                                   "--group",
                                   KDE_GROUP,
                                   "--key",
                                   key,
                                   "--",
                                   value,
                                   NULL };
      g_autofree char *written = NULL;

      if (!run_tool (argv, NULL, error) || !kde_read (backend, key, &written, error))
        return FALSE;
      /* kwriteconfig succeeds on a key that the administrator made immutable ([$i]) and leaves
       * it as it was; reading back is the only way to know. */
      if (g_strcmp0 (written, value) != 0)
        {
          g_set_error (error, PH_ERROR, PH_ERROR_FAILED,
                       "%s did not change %s in %s (locked by the administrator?)",
                       self->kwriteconfig, key, KDE_FILE);
          return FALSE;
        }
      return TRUE;
    }
}

static gboolean
kde_plan (PhProxyBackend *backend, const char *host, guint port, const char *pac_url,
          const char *const *bypass, GPtrArray *writes, GError **error)
{
  /* "URL PORT", as KDE's proxy module saves it (KProtocolManager turns the last space into a
   * colon); the scheme is http for both, since Pinhole is a plain HTTP proxy that takes
   * CONNECT for https. */
  g_autofree char *proxy = g_strdup_printf ("http://%s %u", host, port);
  /* Comma-separated with no spaces: KIO splits on commas and reads each entry as a host, a
   * domain or a subnet. */
  g_autofree char *no_proxy = g_strjoinv (",", (char **) bypass);

  if (pac_url != NULL)
    {
      /* KIO reads NoProxyFor in manual mode only; the PAC says what goes direct. */
      g_ptr_array_add (writes, ph_proxy_write_new ("Proxy Config Script", pac_url));
      g_ptr_array_add (writes, ph_proxy_write_new ("ProxyType", KDE_PROXY_TYPE_PAC));
      return TRUE;
    }
  g_ptr_array_add (writes, ph_proxy_write_new ("NoProxyFor", no_proxy));
  /* false: NoProxyFor lists the exceptions, not the only hosts to proxy. */
  g_ptr_array_add (writes, ph_proxy_write_new ("ReversedException", "false"));
  g_ptr_array_add (writes, ph_proxy_write_new ("httpsProxy", proxy));
  g_ptr_array_add (writes, ph_proxy_write_new ("httpProxy", proxy));
  /* Last: KIO switches to manual only once the proxies are in place. */
  g_ptr_array_add (writes, ph_proxy_write_new ("ProxyType", KDE_PROXY_TYPE_MANUAL));
  return TRUE;
}

/* Tells running KIO applications to read kioslaverc again, as KDE's settings module does.
 * Best effort: without it they pick the change up when they next start. */
static void
notify_kio (void)
{
  g_autoptr (GDBusConnection) bus = NULL;
  g_autoptr (GError) local = NULL;

  /* Without an address GIO would try to autolaunch a bus, which helps nobody here. */
  if (g_getenv ("DBUS_SESSION_BUS_ADDRESS") == NULL)
    {
      g_debug ("no session bus: running KDE applications are not told of the proxy change");
      return;
    }
  bus = g_bus_get_sync (G_BUS_TYPE_SESSION, NULL, &local);
  if (bus == NULL
      || !g_dbus_connection_emit_signal (bus, NULL, "/KIO/Scheduler", "org.kde.KIO.Scheduler",
                                         "reparseSlaveConfiguration", g_variant_new ("(s)", ""),
                                         &local)
      || !g_dbus_connection_flush_sync (bus, NULL, &local))
    g_debug ("cannot tell KDE applications of the proxy change: %s", local->message);
}

static gboolean
kde_commit (PhProxyBackend *backend, GError **error)
{
  /* kwriteconfig has already synced kioslaverc to disk before it exited. */
  notify_kio ();
  return TRUE;
}

static void
kde_finalize (PhProxyBackend *backend)
{
  PhProxyBackendKde *self = (PhProxyBackendKde *) backend;

  g_free (self->kreadconfig);
  g_free (self->kwriteconfig);
}

static const PhProxyBackendVTable kde_vtable = {
  .plan = kde_plan,
  .read = kde_read,
  .write = kde_write,
  .commit = kde_commit,
  .finalize = kde_finalize,
};

PhProxyBackend *
ph_proxy_backend_kde_new (void)
{
  /* Plasma 6 first; the reader and writer of one version go together. */
  static const char *const versions[] = { "6", "5" };

  for (guint i = 0; i < G_N_ELEMENTS (versions); i++)
    {
      g_autofree char *read_name = g_strconcat ("kreadconfig", versions[i], NULL);
      g_autofree char *write_name = g_strconcat ("kwriteconfig", versions[i], NULL);
      g_autofree char *kreadconfig = g_find_program_in_path (read_name);
      g_autofree char *kwriteconfig = g_find_program_in_path (write_name);
      PhProxyBackendKde *self;

      if (kreadconfig == NULL || kwriteconfig == NULL)
        continue;
      self = g_new0 (PhProxyBackendKde, 1);
      self->parent.vtable = &kde_vtable;
      self->parent.name = "kde";
      self->kreadconfig = g_steal_pointer (&kreadconfig);
      self->kwriteconfig = g_steal_pointer (&kwriteconfig);
      return &self->parent;
    }
  return NULL;
}

/* SPDX-License-Identifier: GPL-2.0-or-later */
/* ph-machine-proxy-win32.c: ph-machine-proxy.h on Windows (meson picks this file). One consumer,
 * "winhttp": WinHTTP's default proxy, what `netsh winhttp set proxy` sets and what Windows
 * Update, BITS and other services read (WinHttpGetDefaultProxyConfiguration,
 * WINHTTP_ACCESS_TYPE_DEFAULT_PROXY sessions). It is set with
 * WinHttpSetDefaultProxyConfiguration, which stores it as the binary registry value
 * HKLM\SOFTWARE\Microsoft\Windows\CurrentVersion\Internet Settings\Connections\WinHttpSettings
 * of the caller's registry view. 64-bit Windows has a second view for 32-bit WinHTTP clients
 * (that key is redirected to WOW6432Node, not shared, and each netsh sets only its own view:
 * admins run System32's and SysWOW64's); the bytes the API wrote are copied there.
 *
 * The journal (a key file in the state directory, written before any change) holds each view's
 * bytes as they were (or that the value was not there, and which keys Pinhole made) and every
 * proxy and bypass list Pinhole set; a view is put back, byte for byte, only while it still
 * holds one of those. The agent is a 64-bit program (the installer refuses 32-bit Windows), so
 * the API's view is the 64-bit one. */
#define G_LOG_DOMAIN "pinhole-machine-proxy"

#include "ph-error.h"
#include "ph-machine-proxy-private.h"

#include <errno.h>
#include <string.h>
#include <glib/gstdio.h>
#include <windows.h>
#include <aclapi.h>
#include <winhttp.h>

G_STATIC_ASSERT (sizeof (void *) == 8);

#define CURRENT_VERSION L"SOFTWARE\\Microsoft\\Windows\\CurrentVersion"
#define INTERNET_SETTINGS CURRENT_VERSION L"\\Internet Settings"
#define CONNECTIONS INTERNET_SETTINGS L"\\Connections"
#define VALUE_NAME L"WinHttpSettings"

#define CONSUMER "winhttp"
/* The journal's group of what Pinhole set: "set", a list of "PROXY\nBYPASS", encoded. */
#define SET_GROUP "winhttp"

typedef struct
{
  const char *group; /* the journal's group for this view: "previous", "previous-type", "made" */
  REGSAM view;
  const char *shown; /* the value, as status and messages name it */
} PhView;

static const PhView views[] = {
  { "winhttp:64", KEY_WOW64_64KEY,
    "HKLM\\SOFTWARE\\Microsoft\\Windows\\CurrentVersion\\Internet "
    "Settings\\Connections\\WinHttpSettings" },
  { "winhttp:32", KEY_WOW64_32KEY,
    "HKLM\\SOFTWARE\\WOW6432Node\\Microsoft\\Windows\\CurrentVersion\\Internet "
    "Settings\\Connections\\WinHttpSettings" },
};

/* The keys apply() may make, the deepest first: "made" names how many of them it made. */
static const wchar_t *const made_keys[] = { CONNECTIONS, INTERNET_SETTINGS };

static const char *const consumer_names[] = { CONSUMER, NULL };

struct _PhMachineProxy
{
  char *journal_path;
  GKeyFile *journal; /* while Pinhole's setting may be in place */
  char *applied;     /* apply()'s arguments while they are in place */
};

/* ---- the registry ---- */

static void
set_registry_error (GError **error, LSTATUS code, const char *what, const PhView *view)
{
  g_autofree char *why = g_win32_error_message ((int) code);

  g_set_error (error, PH_ERROR,
               code == ERROR_ACCESS_DENIED ? PH_ERROR_PERMISSION_DENIED : PH_ERROR_FAILED,
               "Cannot %s %s: %s", what, view->shown, why);
}

/* The value's type and bytes in @view; *@data NULL when it is not there. */
static gboolean
read_value (const PhView *view, DWORD *type, GBytes **data, GError **error)
{
  HKEY key;
  DWORD size = 0;
  guint8 *buffer;
  LSTATUS code;

  *data = NULL;
  *type = REG_BINARY;
  code = RegOpenKeyExW (HKEY_LOCAL_MACHINE, CONNECTIONS, 0, KEY_QUERY_VALUE | view->view, &key);
  if (code == ERROR_FILE_NOT_FOUND)
    return TRUE;
  if (code != ERROR_SUCCESS)
    {
      set_registry_error (error, code, "read", view);
      return FALSE;
    }
  /* Asked again while it grows (someone writing it meanwhile). */
  for (;;)
    {
      code = RegQueryValueExW (key, VALUE_NAME, NULL, type, NULL, &size);
      if (code != ERROR_SUCCESS)
        break;
      buffer = g_malloc (size > 0 ? size : 1);
      code = RegQueryValueExW (key, VALUE_NAME, NULL, type, buffer, &size);
      if (code == ERROR_SUCCESS)
        {
          *data = g_bytes_new_take (buffer, size);
          break;
        }
      g_free (buffer);
      if (code != ERROR_MORE_DATA)
        break;
    }
  RegCloseKey (key);
  if (code == ERROR_FILE_NOT_FOUND)
    return TRUE;
  if (code != ERROR_SUCCESS)
    {
      set_registry_error (error, code, "read", view);
      return FALSE;
    }
  return TRUE;
}

static gboolean
write_value (const PhView *view, DWORD type, const guint8 *data, gsize len, GError **error)
{
  HKEY key;
  LSTATUS code = RegCreateKeyExW (HKEY_LOCAL_MACHINE, CONNECTIONS, 0, NULL, 0,
                                  KEY_SET_VALUE | view->view, NULL, &key, NULL);

  if (code == ERROR_SUCCESS)
    {
      code = RegSetValueExW (key, VALUE_NAME, 0, type, data, (DWORD) len);
      RegCloseKey (key);
    }
  if (code != ERROR_SUCCESS)
    {
      set_registry_error (error, code, "write", view);
      return FALSE;
    }
  return TRUE;
}

static gboolean
delete_value (const PhView *view, GError **error)
{
  HKEY key;
  LSTATUS code
      = RegOpenKeyExW (HKEY_LOCAL_MACHINE, CONNECTIONS, 0, KEY_SET_VALUE | view->view, &key);

  if (code == ERROR_SUCCESS)
    {
      code = RegDeleteValueW (key, VALUE_NAME);
      RegCloseKey (key);
    }
  if (code != ERROR_SUCCESS && code != ERROR_FILE_NOT_FOUND)
    {
      set_registry_error (error, code, "remove", view);
      return FALSE;
    }
  return TRUE;
}

static gboolean
key_exists (const PhView *view, const wchar_t *path)
{
  HKEY key;

  if (RegOpenKeyExW (HKEY_LOCAL_MACHINE, path, 0, KEY_QUERY_VALUE | view->view, &key)
      != ERROR_SUCCESS)
    return FALSE;
  RegCloseKey (key);
  return TRUE;
}

/* How many of made_keys the first write into @view will make. */
static guint
keys_to_make (const PhView *view)
{
  guint n = 0;

  while (n < G_N_ELEMENTS (made_keys) && !key_exists (view, made_keys[n]))
    n++;
  return n;
}

/* Removes the @n keys apply() made in @view, the deepest first, while they are empty. */
static void
remove_made_keys (const PhView *view, guint n)
{
  for (guint i = 0; i < n && i < G_N_ELEMENTS (made_keys); i++)
    {
      HKEY key;
      DWORD subkeys = 1, values = 1;

      if (RegOpenKeyExW (HKEY_LOCAL_MACHINE, made_keys[i], 0, KEY_QUERY_VALUE | view->view, &key)
          != ERROR_SUCCESS)
        continue;
      RegQueryInfoKeyW (key, NULL, NULL, NULL, &subkeys, NULL, NULL, &values, NULL, NULL, NULL,
                        NULL);
      RegCloseKey (key);
      if (subkeys > 0 || values > 0
          || RegDeleteKeyExW (HKEY_LOCAL_MACHINE, made_keys[i], view->view, 0) != ERROR_SUCCESS)
        break;
    }
}

/* ---- what the views hold ---- */

static char *
set_entry (const char *proxy, const char *bypass)
{
  g_autofree char *text = g_strconcat (proxy, "\n", bypass, NULL);

  return ph_machine_journal_encode (text, strlen (text));
}

/* The proxy @data names when its setting is one Pinhole set (the journal lists it), else NULL. */
static char *
pinholes_proxy (GKeyFile *journal, GBytes *data)
{
  g_autofree char *proxy = NULL;
  g_autofree char *bypass = NULL;
  g_autofree char *entry = NULL;
  g_auto (GStrv) sets = NULL;
  gsize len = 0;
  const guint8 *bytes = data != NULL ? g_bytes_get_data (data, &len) : NULL;

  if (journal == NULL || !ph_winhttp_settings_parse (bytes, len, &proxy, &bypass) || proxy == NULL)
    return NULL;
  entry = g_strconcat (proxy, "\n", bypass, NULL);
  sets = ph_machine_journal_list_decoded (journal, SET_GROUP, "set");
  return g_strv_contains ((const char *const *) sets, entry) ? g_steal_pointer (&proxy) : NULL;
}

/* WinHTTP's own call for its own (64-bit) view: the format is Windows'. */
static gboolean
set_default_proxy (const char *proxy, const char *bypass, GError **error)
{
  g_autofree gunichar2 *wproxy = g_utf8_to_utf16 (proxy, -1, NULL, NULL, NULL);
  g_autofree gunichar2 *wbypass = g_utf8_to_utf16 (bypass, -1, NULL, NULL, NULL);
  WINHTTP_PROXY_INFO info = { WINHTTP_ACCESS_TYPE_NAMED_PROXY, (LPWSTR) wproxy, (LPWSTR) wbypass };
  DWORD code;

  if (WinHttpSetDefaultProxyConfiguration (&info))
    return TRUE;
  code = GetLastError ();
  {
    g_autofree char *why = g_win32_error_message ((int) code);

    g_set_error (error, PH_ERROR,
                 code == ERROR_ACCESS_DENIED ? PH_ERROR_PERMISSION_DENIED : PH_ERROR_FAILED,
                 "WinHttpSetDefaultProxyConfiguration failed: %s (%lu)", why, (gulong) code);
  }
  return FALSE;
}

/* ---- restoring ---- */

/* Puts back one view of the journal; its group leaves the journal. */
static gboolean
restore_view (GKeyFile *journal, const PhView *view, GError **error)
{
  g_autoptr (GBytes) current = NULL;
  g_autofree char *ours = NULL;
  g_autofree char *previous_text = g_key_file_get_string (journal, view->group, "previous", NULL);
  g_autofree char *previous = NULL;
  gsize previous_len = 0;
  guint made = (guint) g_key_file_get_integer (journal, view->group, "made", NULL);
  DWORD type = (DWORD) g_key_file_get_integer (journal, view->group, "previous-type", NULL);
  DWORD current_type;

  if (!g_key_file_has_group (journal, view->group))
    return TRUE;
  if (!read_value (view, &current_type, &current, error))
    return FALSE;
  if (previous_text != NULL)
    previous = ph_machine_journal_decode (previous_text, &previous_len);
  ours = pinholes_proxy (journal, current);
  if (ours != NULL)
    {
      if (previous != NULL
              ? !write_value (view, type, (const guint8 *) previous, previous_len, error)
              : !delete_value (view, error))
        return FALSE;
      if (previous == NULL)
        remove_made_keys (view, made);
      g_message ("%s put back as it was", view->shown);
    }
  else if (current == NULL && previous == NULL)
    remove_made_keys (view, made); /* never written (a crash right after the journal) */
  else if (current == NULL)
    g_message ("%s was removed since Pinhole set it; left so", view->shown);
  else if (previous == NULL || g_bytes_get_size (current) != previous_len
           || memcmp (g_bytes_get_data (current, NULL), previous, previous_len) != 0)
    g_message ("%s was changed since Pinhole set it; left as it is", view->shown);
  g_key_file_remove_group (journal, view->group, NULL);
  return TRUE;
}

static gboolean
restore_all (PhMachineProxy *mp, GKeyFile *journal, GError **error)
{
  GError *first = NULL;

  for (gsize i = 0; i < G_N_ELEMENTS (views); i++)
    {
      GError *local = NULL;

      if (restore_view (journal, &views[i], &local))
        continue;
      if (first == NULL)
        first = local;
      else
        {
          g_warning ("%s", local->message);
          g_error_free (local);
        }
    }
  if (first != NULL)
    {
      /* What was put back leaves the journal; the rest waits for another try. */
      ph_machine_journal_save (mp->journal_path, journal, NULL);
      g_propagate_error (error, first);
      return FALSE;
    }
  if (g_unlink (mp->journal_path) != 0 && errno != ENOENT)
    {
      int saved = errno;
      g_set_error (error, PH_ERROR, PH_ERROR_FAILED, "Cannot remove the journal %s: %s",
                   mp->journal_path, g_strerror (saved));
      return FALSE;
    }
  g_clear_pointer (&mp->journal, g_key_file_unref);
  g_clear_pointer (&mp->applied, g_free);
  return TRUE;
}

/* ---- the journal's owner ---- */

/* The journal says what to write to HKLM: one that the service's user, the administrators or
 * the system did not write (a user's file in a state directory left writable) is not followed.
 * The installer's DACL on %ProgramData%\Pinhole lets users read it only. */
gboolean
ph_machine_journal_check_owner (const char *path, GError **error)
{
  g_autofree gunichar2 *wpath = g_utf8_to_utf16 (path, -1, NULL, NULL, NULL);
  PSECURITY_DESCRIPTOR sd = NULL;
  PSID owner = NULL;
  HANDLE token = NULL;
  g_autofree TOKEN_USER *user = NULL;
  DWORD size = 0, code;
  gboolean ok;

  code = GetNamedSecurityInfoW ((LPCWSTR) wpath, SE_FILE_OBJECT, OWNER_SECURITY_INFORMATION, &owner,
                                NULL, NULL, NULL, &sd);
  if (code == ERROR_FILE_NOT_FOUND || code == ERROR_PATH_NOT_FOUND)
    return TRUE;
  if (code != ERROR_SUCCESS)
    {
      g_autofree char *why = g_win32_error_message ((int) code);
      g_set_error (error, PH_ERROR, PH_ERROR_FAILED,
                   "Cannot read who owns the machine-proxy journal %s: %s", path, why);
      return FALSE;
    }
  ok = owner != NULL
       && (IsWellKnownSid (owner, WinBuiltinAdministratorsSid)
           || IsWellKnownSid (owner, WinLocalSystemSid));
  if (!ok && owner != NULL && OpenProcessToken (GetCurrentProcess (), TOKEN_QUERY, &token))
    {
      GetTokenInformation (token, TokenUser, NULL, 0, &size);
      user = g_malloc0 (size > 0 ? size : sizeof (TOKEN_USER));
      ok = size > 0 && GetTokenInformation (token, TokenUser, user, size, &size)
           && EqualSid (owner, user->User.Sid);
      CloseHandle (token);
    }
  LocalFree (sd);
  if (!ok)
    {
      g_set_error (error, PH_ERROR, PH_ERROR_PERMISSION_DENIED,
                   "Cannot use the machine-proxy journal %s: it belongs neither to this "
                   "process's user nor to the administrators or the system",
                   path);
      return FALSE;
    }
  return TRUE;
}

/* ---- the API ---- */

const char *const *
ph_machine_proxy_consumers (void)
{
  return consumer_names;
}

PhMachineProxy *
ph_machine_proxy_new (const char *journal_path)
{
  PhMachineProxy *mp = g_new0 (PhMachineProxy, 1);

  mp->journal_path = g_strdup (journal_path);
  return mp;
}

void
ph_machine_proxy_free (PhMachineProxy *mp)
{
  if (mp == NULL)
    return;
  g_clear_pointer (&mp->journal, g_key_file_unref);
  g_free (mp->journal_path);
  g_free (mp->applied);
  g_free (mp);
}

gboolean
ph_machine_proxy_is_applied (PhMachineProxy *mp)
{
  return mp->journal != NULL;
}

gboolean
ph_machine_proxy_recover (PhMachineProxy *mp, gboolean *restored, GError **error)
{
  g_autoptr (GKeyFile) journal = NULL;

  *restored = FALSE;
  if (mp->journal != NULL)
    return TRUE;
  if (!ph_machine_journal_load_left (mp->journal_path, &journal, error))
    return FALSE;
  if (journal == NULL)
    return TRUE;
  g_message ("a machine-proxy journal was left by a previous run: putting back what it lists");
  if (!restore_all (mp, journal, error))
    return FALSE;
  *restored = TRUE;
  return TRUE;
}

gboolean
ph_machine_proxy_restore (PhMachineProxy *mp, GError **error)
{
  g_autoptr (GKeyFile) journal = NULL;

  if (mp->journal != NULL)
    journal = g_key_file_ref (mp->journal);
  else if (!ph_machine_journal_load (mp->journal_path, &journal, error))
    return FALSE;
  if (journal == NULL)
    return TRUE;
  if (!restore_all (mp, journal, error))
    return FALSE;
  g_message ("machine-wide proxy settings restored");
  return TRUE;
}

gboolean
ph_machine_proxy_apply (PhMachineProxy *mp, const char *const *consumers, guint port,
                        const char *direct, GError **error)
{
  g_auto (GStrv) here = NULL;
  g_autofree char *list = NULL;
  g_autofree char *wanted = NULL;
  g_autofree char *proxy = NULL;
  g_autofree char *bypass = NULL;
  g_autofree char *entry = NULL;
  g_autoptr (GKeyFile) journal = NULL;
  g_autoptr (GBytes) written = NULL;
  g_autoptr (GError) local = NULL;
  DWORD type;

  g_return_val_if_fail (port > 0 && port <= 65535, FALSE);
  /* Linux's consumers (environment, systemd, apt, docker) are not this one's business. */
  here = ph_machine_proxy_this_system (consumers, error);
  if (here == NULL)
    return FALSE;
  list = g_strjoinv (",", here);
  wanted = g_strdup_printf ("%s\n%u\n%s", list, port, direct != NULL ? direct : "");
  if (mp->journal != NULL && g_strcmp0 (wanted, mp->applied) == 0)
    return TRUE;
  if (*list == '\0')
    return ph_machine_proxy_restore (mp, error);

  proxy = g_strdup_printf ("127.0.0.1:%u", port);
  bypass = ph_machine_proxy_winhttp_bypass (direct);
  if (mp->journal != NULL)
    journal = g_key_file_ref (mp->journal);
  else if (!ph_machine_journal_load (mp->journal_path, &journal, error))
    return FALSE;
  if (journal == NULL)
    {
      journal = g_key_file_new ();
      g_key_file_set_integer (journal, PH_MACHINE_JOURNAL_GROUP, "version",
                              PH_MACHINE_JOURNAL_VERSION);
    }

  /* What each view holds before Pinhole's first write: kept across later applies. */
  for (gsize i = 0; i < G_N_ELEMENTS (views); i++)
    {
      const PhView *view = &views[i];
      g_autoptr (GBytes) before = NULL;

      if (g_key_file_has_group (journal, view->group))
        continue;
      if (!read_value (view, &type, &before, error))
        return FALSE;
      g_key_file_set_string (journal, view->group, "consumer", CONSUMER);
      if (before != NULL)
        {
          gsize len = 0;
          const void *data = g_bytes_get_data (before, &len);
          g_autofree char *encoded = ph_machine_journal_encode (data, len);

          g_key_file_set_string (journal, view->group, "previous", encoded);
          g_key_file_set_integer (journal, view->group, "previous-type", (gint) type);
        }
      else
        g_key_file_set_integer (journal, view->group, "made", (gint) keys_to_make (view));
    }
  entry = set_entry (proxy, bypass);
  ph_machine_journal_list_add (journal, SET_GROUP, "set", entry);

  /* The one step that must come first: from here on the next start knows what to put back. */
  if (!ph_machine_journal_save (mp->journal_path, journal, error))
    return FALSE;
  g_clear_pointer (&mp->journal, g_key_file_unref);
  mp->journal = g_key_file_ref (journal);

  /* The 64-bit view through WinHTTP, then its bytes into the 32-bit one. */
  if (set_default_proxy (proxy, bypass, &local) && read_value (&views[0], &type, &written, &local))
    {
      gsize len = 0;
      const guint8 *data = written != NULL ? g_bytes_get_data (written, &len) : NULL;

      if (data == NULL)
        g_set_error (&local, PH_ERROR, PH_ERROR_FAILED, "%s is not there after WinHTTP set it",
                     views[0].shown);
      else
        write_value (&views[1], type, data, len, &local);
    }
  if (local != NULL)
    {
      g_autoptr (GError) undo = NULL;

      if (!restore_all (mp, journal, &undo))
        g_warning ("%s", undo->message);
      g_propagate_prefixed_error (error, g_steal_pointer (&local),
                                  "Cannot set the machine-wide proxy: ");
      return FALSE;
    }
  g_message ("WinHTTP's default proxy points at %s (bypass %s)", proxy, bypass);
  g_free (mp->applied);
  mp->applied = g_steal_pointer (&wanted);
  return TRUE;
}

GVariant *
ph_machine_proxy_dup_status (PhMachineProxy *mp, const char *const *consumers)
{
  GVariantBuilder all, one, files;
  g_autoptr (GKeyFile) journal = NULL;
  g_autofree char *points_at = NULL;
  gboolean applied = TRUE, changed = FALSE;

  if (mp->journal != NULL)
    journal = g_key_file_ref (mp->journal);
  else
    ph_machine_journal_load (mp->journal_path, &journal, NULL);
  g_variant_builder_init (&files, G_VARIANT_TYPE ("as"));
  for (gsize i = 0; i < G_N_ELEMENTS (views); i++)
    {
      g_autoptr (GBytes) current = NULL;
      g_autofree char *ours = NULL;
      DWORD type;

      g_variant_builder_add (&files, "s", views[i].shown);
      if (read_value (&views[i], &type, &current, NULL))
        ours = pinholes_proxy (journal, current);
      applied = applied && ours != NULL;
      if (journal != NULL && g_key_file_has_group (journal, views[i].group) && ours == NULL)
        changed = TRUE;
      if (ours != NULL && points_at == NULL)
        points_at = g_strconcat ("http://", ours, NULL);
    }
  g_variant_builder_init (&all, G_VARIANT_TYPE ("aa{sv}"));
  g_variant_builder_init (&one, G_VARIANT_TYPE_VARDICT);
  g_variant_builder_add (&one, "{sv}", "name", g_variant_new_string (CONSUMER));
  g_variant_builder_add (
      &one, "{sv}", "configured",
      g_variant_new_boolean (consumers != NULL && g_strv_contains (consumers, CONSUMER)));
  g_variant_builder_add (&one, "{sv}", "applied", g_variant_new_boolean (applied));
  g_variant_builder_add (&one, "{sv}", "points-at",
                         g_variant_new_string (applied && points_at != NULL ? points_at : ""));
  g_variant_builder_add (&one, "{sv}", "files", g_variant_builder_end (&files));
  g_variant_builder_add (&one, "{sv}", "note", g_variant_new_string (changed ? "changed" : ""));
  g_variant_builder_add_value (&all, g_variant_builder_end (&one));
  ph_machine_proxy_add_other_systems (&all, consumers);
  return g_variant_ref_sink (g_variant_builder_end (&all));
}

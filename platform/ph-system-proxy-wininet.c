/* SPDX-License-Identifier: GPL-2.0-or-later */
/* ph-system-proxy-wininet.c: the system proxy on Windows: WinINet's per-user settings (what
 * Edge, Chrome, Firefox's "use system proxy settings", WinHTTP's IE configuration and .NET read)
 * for the LAN and for every dial-up/VPN phonebook entry, each of which has settings of its own
 * that apply while it is connected. Always through InternetSetOption/InternetQueryOption, never
 * the registry, so that WinINet keeps its own copies (the Connections blobs and the older
 * ProxyEnable/ProxyServer/ProxyOverride/AutoConfigURL values) in step.
 *
 * Wine's WinINet (8.0), under which the tests run, does less: it ignores the connection's name
 * (every one is the LAN), stores only ProxyEnable and ProxyServer (no bypass list, no PAC URL, no
 * Connections blob), reads the bypass list from ProxyOverride only while a proxy is on, answers
 * the PAC URL from WPAD detection rather than the setting, reads back only the http part of a
 * "http=…;https=…" server, reports a proxy that is on without PROXY_TYPE_DIRECT, and keeps
 * PROXY_TYPE_AUTO_PROXY_URL as plain "direct" (which the journal then records as a form of
 * Pinhole's value, see ph-system-proxy.c). The code is
 * written for Windows; where it evens out an answer of Wine's, it says so. */
#define G_LOG_DOMAIN "pinhole-system-proxy"

#include "ph-system-proxy-private.h"
#include "ph-error.h"
#include "ph-win-bypass.h"

#include <string.h>
#include <gio/gio.h>
#include <windows.h>
#include <wininet.h>
#include <ras.h>
#include <raserror.h>

/* Journal keys are "lan.<field>" and "ras.<entry>.<field>", the entry's name escaped as in a
 * URI: GKeyFile keys cannot hold '=', '[' or ']', which a phonebook entry's name may. */
#define LAN_PREFIX "lan."
#define RAS_PREFIX "ras."
#define RAS_NAME_KEEP "!$&'()*+,;:@/?# "

#define POLICY_IE_CONTROL_PANEL L"Software\\Policies\\Microsoft\\Internet Explorer\\Control Panel"
#define POLICY_INTERNET_SETTINGS                                                                   \
  L"Software\\Policies\\Microsoft\\Windows\\CurrentVersion\\Internet Settings"

typedef struct
{
  const char *name;
  DWORD option;
} Field;

/* The flags travel as text (see flags_to_text()); the other fields are strings. */
static const Field fields[] = {
  { "flags", INTERNET_PER_CONN_FLAGS },
  { "server", INTERNET_PER_CONN_PROXY_SERVER },
  { "bypass", INTERNET_PER_CONN_PROXY_BYPASS },
  { "autoconfig-url", INTERNET_PER_CONN_AUTOCONFIG_URL },
};

static const struct
{
  DWORD bit;
  const char *name;
} flag_names[] = {
  { PROXY_TYPE_DIRECT, "direct" },
  { PROXY_TYPE_PROXY, "proxy" },
  { PROXY_TYPE_AUTO_PROXY_URL, "auto-proxy-url" },
  { PROXY_TYPE_AUTO_DETECT, "auto-detect" },
};

/* What Pinhole sets: the proxy, and direct for the bypass list; no PAC, no auto-detection,
 * either of which would take precedence over the proxy. The URL of a PAC stays stored, as
 * when someone unticks "Use setup script": putting the flags back turns it on again. */
#define PINHOLE_FLAGS (PROXY_TYPE_DIRECT | PROXY_TYPE_PROXY)
/* In PAC mode: the script, direct where it says so (or where it cannot be fetched); no
 * auto-detection, which would be asked first. The proxy and bypass list stay stored. */
#define PINHOLE_FLAGS_PAC (PROXY_TYPE_DIRECT | PROXY_TYPE_AUTO_PROXY_URL)

typedef struct
{
  PhProxyBackend parent;
} PhProxyBackendWininet;

/* Memory that InternetQueryOption() hands out for a string option. */
typedef WCHAR PhGlobalString;
G_DEFINE_AUTOPTR_CLEANUP_FUNC (PhGlobalString, GlobalFree)

/* WinINet's own codes (12000 and up) are described by wininet.dll, not by the system. */
static char *
error_text (DWORD code)
{
  if (code >= INTERNET_ERROR_BASE && code <= INTERNET_ERROR_LAST)
    {
      WCHAR buffer[512];
      DWORD len = FormatMessageW (FORMAT_MESSAGE_FROM_HMODULE | FORMAT_MESSAGE_IGNORE_INSERTS,
                                  GetModuleHandleW (L"wininet.dll"), code, 0, buffer,
                                  G_N_ELEMENTS (buffer), NULL);
      g_autofree char *text
          = len > 0 ? g_utf16_to_utf8 ((const gunichar2 *) buffer, len, NULL, NULL, NULL) : NULL;

      if (text != NULL)
        return g_strdup_printf ("%s (WinINet error %lu)", g_strstrip (text), (gulong) code);
      return g_strdup_printf ("WinINet error %lu", (gulong) code);
    }
  return g_win32_error_message ((int) code);
}

static void
set_error_code (GError **error, DWORD code, const char *what, const char *key)
{
  g_autofree char *why = error_text (code);

  g_set_error (error, PH_ERROR, PH_ERROR_FAILED, "Cannot %s WinINet's %s: %s", what, key, why);
}

/* --- keys --- */

char *
ph_proxy_wininet_key (const char *entry, const char *field)
{
  g_autofree char *escaped = NULL;

  if (entry == NULL)
    return g_strconcat (LAN_PREFIX, field, NULL);
  escaped = g_uri_escape_string (entry, RAS_NAME_KEEP, TRUE);
  return g_strconcat (RAS_PREFIX, escaped, ".", field, NULL);
}

gboolean
ph_proxy_wininet_split_key (const char *key, char **entry, char **field)
{
  /* The field is what follows the last dot: field names have none, an entry's name may. */
  const char *dot = strrchr (key, '.');

  *entry = NULL;
  *field = NULL;
  if (g_str_has_prefix (key, LAN_PREFIX) && dot == key + strlen (LAN_PREFIX) - 1 && dot[1] != '\0')
    {
      *field = g_strdup (dot + 1);
      return TRUE;
    }
  if (g_str_has_prefix (key, RAS_PREFIX) && dot > key + strlen (RAS_PREFIX) && dot[1] != '\0')
    {
      g_autofree char *escaped
          = g_strndup (key + strlen (RAS_PREFIX), (gsize) (dot - key) - strlen (RAS_PREFIX));

      *entry = g_uri_unescape_string (escaped, NULL);
      if (*entry == NULL)
        return FALSE;
      *field = g_strdup (dot + 1);
      return TRUE;
    }
  return FALSE;
}

/* Splits @key into the connection (NULL for the LAN, else the phonebook entry's name, for
 * WinINet's pszConnection) and the field. */
static gboolean
parse_key (const char *key, gunichar2 **connection, const Field **field, GError **error)
{
  g_autofree char *entry = NULL;
  g_autofree char *name = NULL;

  *connection = NULL;
  *field = NULL;
  if (ph_proxy_wininet_split_key (key, &entry, &name))
    {
      for (guint i = 0; i < G_N_ELEMENTS (fields); i++)
        {
          if (strcmp (name, fields[i].name) == 0)
            *field = &fields[i];
        }
    }
  if (*field == NULL)
    {
      g_set_error (error, PH_ERROR, PH_ERROR_FAILED, "WinINet has no proxy setting %s", key);
      return FALSE;
    }
  if (entry != NULL)
    *connection = g_utf8_to_utf16 (entry, -1, NULL, NULL, NULL);
  return TRUE;
}

/* --- flags as text: "direct|proxy", readable in the journal and in log messages --- */

static char *
flags_to_text (DWORD flags)
{
  g_autoptr (GString) text = g_string_new (NULL);

  for (guint i = 0; i < G_N_ELEMENTS (flag_names); i++)
    {
      if ((flags & flag_names[i].bit) == 0)
        continue;
      g_string_append_printf (text, "%s%s", text->len > 0 ? "|" : "", flag_names[i].name);
      flags &= ~flag_names[i].bit;
    }
  /* Bits this Pinhole has no name for are kept as a number, so that they come back too. */
  if (flags != 0 || text->len == 0)
    g_string_append_printf (text, "%s0x%lx", text->len > 0 ? "|" : "", (gulong) flags);
  return g_string_free (g_steal_pointer (&text), FALSE);
}

static gboolean
flags_from_text (const char *text, DWORD *flags)
{
  g_auto (GStrv) parts = g_strsplit (text, "|", -1);

  *flags = 0;
  for (guint i = 0; parts[i] != NULL; i++)
    {
      gboolean known = FALSE;
      guint64 number;

      for (guint j = 0; j < G_N_ELEMENTS (flag_names) && !known; j++)
        {
          if (strcmp (parts[i], flag_names[j].name) == 0)
            {
              *flags |= flag_names[j].bit;
              known = TRUE;
            }
        }
      if (known)
        continue;
      if (!g_str_has_prefix (parts[i], "0x")
          || !g_ascii_string_to_unsigned (parts[i] + 2, 16, 0, G_MAXUINT32, &number, NULL))
        return FALSE;
      *flags |= (DWORD) number;
    }
  return TRUE;
}

/* --- one option of one connection --- */

static gboolean
query_option (const gunichar2 *connection, INTERNET_PER_CONN_OPTIONW *option, DWORD *code)
{
  INTERNET_PER_CONN_OPTION_LISTW list = { 0 };
  DWORD size = sizeof list;

  list.dwSize = sizeof list;
  list.pszConnection = (LPWSTR) connection;
  list.dwOptionCount = 1;
  list.pOptions = option;
  if (!InternetQueryOptionW (NULL, INTERNET_OPTION_PER_CONNECTION_OPTION, &list, &size))
    {
      *code = GetLastError ();
      return FALSE;
    }
  return TRUE;
}

static gboolean
set_option (const gunichar2 *connection, INTERNET_PER_CONN_OPTIONW *option, DWORD *code)
{
  INTERNET_PER_CONN_OPTION_LISTW list = { 0 };

  list.dwSize = sizeof list;
  list.pszConnection = (LPWSTR) connection;
  list.dwOptionCount = 1;
  list.pOptions = option;
  if (!InternetSetOptionW (NULL, INTERNET_OPTION_PER_CONNECTION_OPTION, &list, sizeof list))
    {
      *code = GetLastError ();
      return FALSE;
    }
  return TRUE;
}

static gboolean
query_flags (const gunichar2 *connection, DWORD *flags, DWORD *code)
{
  INTERNET_PER_CONN_OPTIONW option = { 0 };

  /* Since IE8 the settings page shows INTERNET_PER_CONN_FLAGS_UI, which can differ from _FLAGS
   * in the auto-detect bit; Microsoft's advice is to read _FLAGS_UI, fall back to _FLAGS where
   * it is unknown (older Windows, Wine), and write _FLAGS. */
  option.dwOption = INTERNET_PER_CONN_FLAGS_UI;
  if (!query_option (connection, &option, code))
    {
      option.dwOption = INTERNET_PER_CONN_FLAGS;
      if (!query_option (connection, &option, code))
        return FALSE;
    }
  *flags = option.Value.dwValue;
  /* Windows keeps PROXY_TYPE_DIRECT set in every state that its settings pages and Pinhole
   * write; Wine reports a proxy that is on as PROXY_TYPE_PROXY alone, which would make
   * Pinhole's own value look like someone else's. */
  if (*flags & PROXY_TYPE_PROXY)
    *flags |= PROXY_TYPE_DIRECT;
  return TRUE;
}

/* --- the backend --- */

static gboolean
wininet_read (PhProxyBackend *backend, const char *key, char **value, GError **error)
{
  g_autofree gunichar2 *connection = NULL;
  const Field *field;
  INTERNET_PER_CONN_OPTIONW option = { 0 };
  g_autoptr (PhGlobalString) text = NULL;
  DWORD code = 0;

  *value = NULL;
  if (!parse_key (key, &connection, &field, error))
    return FALSE;
  if (field->option == INTERNET_PER_CONN_FLAGS)
    {
      DWORD flags;

      if (!query_flags (connection, &flags, &code))
        {
          set_error_code (error, code, "read", key);
          return FALSE;
        }
      *value = flags_to_text (flags);
      return TRUE;
    }

  option.dwOption = field->option;
  if (!query_option (connection, &option, &code))
    {
      set_error_code (error, code, "read", key);
      return FALSE;
    }
  text = option.Value.pszValue;
  /* WinINet gives no string and an empty one alike for "none"; both are unset here. */
  if (text != NULL && text[0] != L'\0')
    *value = g_utf16_to_utf8 ((const gunichar2 *) text, -1, NULL, NULL, NULL);
  return TRUE;
}

static gboolean
wininet_write (PhProxyBackend *backend, const char *key, const char *value, GError **error)
{
  g_autofree gunichar2 *connection = NULL;
  g_autofree gunichar2 *wvalue = NULL;
  const Field *field;
  INTERNET_PER_CONN_OPTIONW option = { 0 };
  DWORD code = 0;

  if (!parse_key (key, &connection, &field, error))
    return FALSE;
  option.dwOption = field->option;
  if (field->option == INTERNET_PER_CONN_FLAGS)
    {
      /* The flags are never unset; unset stands for Windows' default, no proxy. */
      if (value == NULL)
        option.Value.dwValue = PROXY_TYPE_DIRECT;
      else if (!flags_from_text (value, &option.Value.dwValue))
        {
          g_set_error (error, PH_ERROR, PH_ERROR_FAILED,
                       "Cannot parse the value %s for WinINet's %s", value, key);
          return FALSE;
        }
    }
  else if (value != NULL)
    {
      wvalue = g_utf8_to_utf16 (value, -1, NULL, NULL, NULL);
      if (wvalue == NULL)
        {
          g_set_error (error, PH_ERROR, PH_ERROR_FAILED, "The value for WinINet's %s is not UTF-8",
                       key);
          return FALSE;
        }
      option.Value.pszValue = (LPWSTR) wvalue;
    }
  if (!set_option (connection, &option, &code))
    {
      set_error_code (error, code, "set", key);
      return FALSE;
    }
  return TRUE;
}

/* A DWORD policy value, or -1 when it is not set. */
static gint64
policy_dword (HKEY root, const WCHAR *path, const WCHAR *name)
{
  DWORD value = 0;
  DWORD size = sizeof value;

  if (RegGetValueW (root, path, name, RRF_RT_REG_DWORD, NULL, &value, &size) != ERROR_SUCCESS)
    return -1;
  return value;
}

/* Internet Explorer's policies, which Windows' own settings pages obey: Pinhole would otherwise
 * override what an administrator locked, or change every user's proxy at once. */
static gboolean
check_policies (GError **error)
{
  static const struct
  {
    const WCHAR *name;
    const char *what;
  } locks[] = {
    { L"Proxy", "Prevent changing proxy settings" },
    /* Pinhole turns a PAC and auto-detection off while it is on. */
    { L"Autoconfig", "Disable changing Automatic Configuration settings" },
  };
  const HKEY roots[] = { HKEY_LOCAL_MACHINE, HKEY_CURRENT_USER };

  for (guint r = 0; r < G_N_ELEMENTS (roots); r++)
    {
      for (guint i = 0; i < G_N_ELEMENTS (locks); i++)
        {
          if (policy_dword (roots[r], POLICY_IE_CONTROL_PANEL, locks[i].name) > 0)
            {
              g_set_error (error, PH_ERROR, PH_ERROR_FAILED,
                           "Cannot set the system proxy: it is locked by the administrator (the "
                           "policy “%s”)",
                           locks[i].what);
              return FALSE;
            }
        }
    }
  if (policy_dword (HKEY_LOCAL_MACHINE, POLICY_INTERNET_SETTINGS, L"ProxySettingsPerUser") == 0)
    {
      g_set_error_literal (error, PH_ERROR, PH_ERROR_FAILED,
                           "Cannot set the system proxy: the administrator made proxy settings "
                           "per machine (the policy “Make proxy settings per-machine”)");
      return FALSE;
    }
  return TRUE;
}

/* The names of the dial-up and VPN phonebook entries, the user's and everyone's, each once. */
static GPtrArray *
ras_entries (void)
{
  GPtrArray *names = g_ptr_array_new_with_free_func (g_free);
  g_autofree RASENTRYNAMEW *entries = g_new0 (RASENTRYNAMEW, 1);
  DWORD size = sizeof (RASENTRYNAMEW);
  DWORD count = 0;
  DWORD code;

  entries[0].dwSize = sizeof (RASENTRYNAMEW);
  code = RasEnumEntriesW (NULL, NULL, entries, &size, &count);
  if (code == ERROR_BUFFER_TOO_SMALL)
    {
      g_free (entries);
      entries = g_malloc0 (size);
      entries[0].dwSize = sizeof (RASENTRYNAMEW);
      code = RasEnumEntriesW (NULL, NULL, entries, &size, &count);
    }
  if (code != ERROR_SUCCESS)
    {
      g_autofree char *why = g_win32_error_message ((int) code);

      /* The LAN's setting is the one that matters most; it is still set. */
      g_warning ("Cannot list the dial-up and VPN connections, so their proxy settings are left "
                 "as they are: %s",
                 why);
      return names;
    }
  for (DWORD i = 0; i < count; i++)
    {
      char *name
          = g_utf16_to_utf8 ((const gunichar2 *) entries[i].szEntryName, -1, NULL, NULL, NULL);

      if (name == NULL || g_ptr_array_find_with_equal_func (names, name, g_str_equal, NULL))
        g_free (name);
      else
        g_ptr_array_add (names, name);
    }
  return names;
}

/* @bypass (hosts, domains, CIDRs, as ph_system_proxy_enable() takes them) in WinINet's syntax:
 * ';'-separated wildcard patterns. Each pattern once, in the order given. */
char *
ph_proxy_wininet_bypass_list (const char *const *bypass)
{
  g_autoptr (GPtrArray) patterns = g_ptr_array_new_with_free_func (g_free);

  for (guint i = 0; bypass[i] != NULL; i++)
    {
      /* A name covers its subdomains, as GNOME (GLib's proxy resolver) reads "corp.example",
       * ".corp.example" and "*.corp.example" alike; WinINet matches only what a pattern says. */
      if (!ph_win_bypass_add (patterns, bypass[i], PH_WIN_BYPASS_NAME_AND_BELOW))
        g_message ("The bypass entry %s has no WinINet form; Windows applications send its hosts "
                   "through Pinhole",
                   bypass[i]);
    }
  g_ptr_array_add (patterns, NULL);
  return g_strjoinv (";", (char **) patterns->pdata);
}

/* @entry: NULL for the LAN. */
static void
plan_connection (GPtrArray *writes, const char *entry, const char *server, const char *bypass,
                 const char *pac_url)
{
  g_autofree char *k_bypass = ph_proxy_wininet_key (entry, "bypass");
  g_autofree char *k_server = ph_proxy_wininet_key (entry, "server");
  g_autofree char *k_flags = ph_proxy_wininet_key (entry, "flags");
  g_autofree char *k_pac = ph_proxy_wininet_key (entry, "autoconfig-url");
  g_autofree char *flags = flags_to_text (pac_url != NULL ? PINHOLE_FLAGS_PAC : PINHOLE_FLAGS);

  if (pac_url != NULL)
    {
      g_ptr_array_add (writes, ph_proxy_write_new (k_pac, pac_url));
      /* Last, as below. */
      g_ptr_array_add (writes, ph_proxy_write_new (k_flags, flags));
      return;
    }

  /* An empty list has no value of its own: unset is what putting back a key that was not set
   * writes. The previous list then still applies, which sends some hosts direct. */
  if (*bypass != '\0')
    g_ptr_array_add (writes, ph_proxy_write_new (k_bypass, bypass));
  g_ptr_array_add (writes, ph_proxy_write_new (k_server, server));
  /* Last: applications switch to the proxy only once its address is in place. */
  g_ptr_array_add (writes, ph_proxy_write_new (k_flags, flags));
}

static gboolean
wininet_plan (PhProxyBackend *backend, const char *host, guint port, const char *pac_url,
              const char *const *bypass, GPtrArray *writes, GError **error)
{
  /* One "host:port" for every protocol, as Windows' own settings page writes it: browsers send
   * both http and https to it ("http=…;https=…" would do too, but Wine's WinINet reads back
   * only the http part and so could not tell Pinhole's value from another). */
  g_autofree char *server = g_strdup_printf ("%s:%u", host, port);
  g_autofree char *bypass_list = ph_proxy_wininet_bypass_list (bypass);
  g_autoptr (GPtrArray) entries = NULL;

  if (!check_policies (error))
    return FALSE;
  /* The LAN first, then each phonebook entry, so that the one most in use is set first. */
  plan_connection (writes, NULL, server, bypass_list, pac_url);
  entries = ras_entries ();
  for (guint i = 0; i < entries->len; i++)
    plan_connection (writes, g_ptr_array_index (entries, i), server, bypass_list, pac_url);
  return TRUE;
}

static gboolean
wininet_commit (PhProxyBackend *backend, GError **error)
{
  /* The settings are stored already. Running applications keep theirs in memory until told;
   * one that misses this picks them up when it next reads them, which is no reason to undo the
   * change. Wine answers REFRESH without a handle with an error. */
  if (!InternetSetOptionW (NULL, INTERNET_OPTION_SETTINGS_CHANGED, NULL, 0))
    g_debug ("cannot announce the WinINet proxy change: WinINet error %lu",
             (gulong) GetLastError ());
  if (!InternetSetOptionW (NULL, INTERNET_OPTION_REFRESH, NULL, 0))
    g_debug ("cannot make WinINet reload its proxy settings: WinINet error %lu",
             (gulong) GetLastError ());
  return TRUE;
}

static void
wininet_finalize (PhProxyBackend *backend)
{
}

static const PhProxyBackendVTable wininet_vtable = {
  .plan = wininet_plan,
  .read = wininet_read,
  .write = wininet_write,
  .commit = wininet_commit,
  .finalize = wininet_finalize,
};

PhProxyBackend *
ph_proxy_backend_wininet_new (void)
{
  PhProxyBackendWininet *self = g_new0 (PhProxyBackendWininet, 1);

  /* WinINet is part of every Windows: there is always a setting to change. */
  self->parent.vtable = &wininet_vtable;
  self->parent.name = "wininet";
  return &self->parent;
}

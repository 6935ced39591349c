/* SPDX-License-Identifier: GPL-2.0-or-later */
/* test-system-proxy-wininet.c: the system-proxy shim of platform/ph-system-proxy.h on Windows,
 * checked where applications look: the registry under HKCU's Internet Settings (ProxyEnable,
 * ProxyServer, ProxyOverride, AutoConfigURL and the Connections blobs) and InternetQueryOption.
 * Round trips back to the exact previous values (a PAC included), in manual and in PAC mode
 * ([system-proxy] mode=pac) and switching between them, someone else's change, enable twice, a
 * policy lock, and a process killed between enable and disable. Runs under Wine (meson's
 * exe_wrapper) and on Windows; where Wine's WinINet stores less than Windows', the assertion says
 * so and checks what Wine does. The whole Internet Settings tree is put back after each case. */
#include "ph-system-proxy.h"
#include "ph-test-system-proxy.h"
#include "ph-test-util.h"
#include "ph-system-proxy-private.h"
#include "ph-error.h"

#include <signal.h>
#include <string.h>
#include <glib/gstdio.h>
#include <windows.h>
#include <wininet.h>

/* The test binary run as the process that enables and is then killed. */
#define CHILD_ARG "--enable-and-wait"

#define INTERNET_SETTINGS L"Software\\Microsoft\\Windows\\CurrentVersion\\Internet Settings"
#define CONNECTIONS INTERNET_SETTINGS L"\\Connections"
/* Written by the lock case; put back like Internet Settings, from the top key that Wine's
 * registry may lack. */
#define POLICIES L"Software\\Policies"
#define IE_CONTROL_PANEL_POLICIES POLICIES L"\\Microsoft\\Internet Explorer\\Control Panel"

#define PAC_URL "http://wpad.corp.example/proxy.pac"
#define CORP_PROXY "proxy.corp.example:8080"
#define CORP_BYPASS "*.corp.example;<local>"
/* The agent's PAC, as the tray sets it with [system-proxy] mode=pac. */
#define AGENT_PAC "http://127.0.0.1:3128/proxy.pac"

static const char *const bypass[]
    = { "localhost", "127.0.0.0/8", "::1", "intranet.corp.example", NULL };
/* What WinINet is given for it. */
#define BYPASS_WININET                                                                             \
  "localhost;*.localhost;127.*;[::1];intranet.corp.example;*.intranet.corp.example"

typedef struct
{
  char *dir;     /* this case's, removed at the end */
  char *journal; /* in a directory that does not exist yet */
} Fixture;

static gboolean
running_under_wine (void)
{
  HMODULE ntdll = GetModuleHandleW (L"ntdll.dll");

  return ntdll != NULL && GetProcAddress (ntdll, "wine_get_version") != NULL;
}

/* --- a registry tree, kept to be put back --- */

typedef struct
{
  DWORD type;
  GBytes *data;
} RegValue;

static void
reg_value_free (gpointer data)
{
  RegValue *value = data;

  g_bytes_unref (value->data);
  g_free (value);
}

static WCHAR *
to_wide (const char *text)
{
  WCHAR *wide = (WCHAR *) g_utf8_to_utf16 (text, -1, NULL, NULL, NULL);

  g_assert_nonnull (wide);
  return wide;
}

static char *
from_wide (const WCHAR *wide, gssize len)
{
  char *text = g_utf16_to_utf8 ((const gunichar2 *) wide, len, NULL, NULL, NULL);

  g_assert_nonnull (text);
  return text;
}

/* Adds @key's values and every subkey's to @tree: path below the root ("" for the root) to a
 * table of value name to RegValue. */
static void
reg_capture_key (HKEY key, const char *path, GHashTable *tree)
{
  GHashTable *values = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, reg_value_free);
  DWORD subkeys = 0, max_subkey = 0, count = 0, max_name = 0, max_data = 0;

  g_assert_cmpint (RegQueryInfoKeyW (key, NULL, NULL, NULL, &subkeys, &max_subkey, NULL, &count,
                                     &max_name, &max_data, NULL, NULL),
                   ==, ERROR_SUCCESS);
  for (DWORD i = 0; i < count; i++)
    {
      g_autofree WCHAR *name = g_new0 (WCHAR, max_name + 1);
      g_autofree guint8 *data = g_malloc0 (max_data + 1);
      DWORD name_len = max_name + 1;
      DWORD data_len = max_data;
      RegValue *value = g_new0 (RegValue, 1);

      g_assert_cmpint (RegEnumValueW (key, i, name, &name_len, NULL, &value->type, data, &data_len),
                       ==, ERROR_SUCCESS);
      value->data = g_bytes_new (data, data_len);
      g_hash_table_insert (values, from_wide (name, name_len), value);
    }
  g_hash_table_insert (tree, g_strdup (path), values);

  for (DWORD i = 0; i < subkeys; i++)
    {
      g_autofree WCHAR *name = g_new0 (WCHAR, max_subkey + 1);
      g_autofree char *name8 = NULL;
      g_autofree char *child_path = NULL;
      DWORD name_len = max_subkey + 1;
      HKEY child;

      g_assert_cmpint (RegEnumKeyExW (key, i, name, &name_len, NULL, NULL, NULL, NULL), ==,
                       ERROR_SUCCESS);
      name8 = from_wide (name, name_len);
      child_path = *path != '\0' ? g_strconcat (path, "\\", name8, NULL) : g_strdup (name8);
      g_assert_cmpint (RegOpenKeyExW (key, name, 0, KEY_READ, &child), ==, ERROR_SUCCESS);
      reg_capture_key (child, child_path, tree);
      RegCloseKey (child);
    }
}

/* NULL when @path does not exist. */
static GHashTable *
reg_capture (const WCHAR *path)
{
  GHashTable *tree;
  HKEY key;

  if (RegOpenKeyExW (HKEY_CURRENT_USER, path, 0, KEY_READ, &key) != ERROR_SUCCESS)
    return NULL;
  tree = g_hash_table_new_full (g_str_hash, g_str_equal, g_free,
                                (GDestroyNotify) g_hash_table_unref);
  reg_capture_key (key, "", tree);
  RegCloseKey (key);
  return tree;
}

static WCHAR *
reg_child_path (const WCHAR *root, const char *path)
{
  g_autofree char *root8 = from_wide (root, -1);
  g_autofree char *full = *path != '\0' ? g_strconcat (root8, "\\", path, NULL) : g_strdup (root8);

  return to_wide (full);
}

/* Puts HKCU\@root back to @saved: values and keys added since are removed, changed values are
 * written back, the rest is not touched. */
static void
reg_restore (const WCHAR *root, GHashTable *saved)
{
  g_autoptr (GHashTable) now = reg_capture (root);
  GHashTableIter iter;
  gpointer path, values;

  if (saved == NULL)
    {
      if (now != NULL)
        g_assert_cmpint (RegDeleteTreeW (HKEY_CURRENT_USER, root), ==, ERROR_SUCCESS);
      return;
    }

  /* What was added since. */
  if (now != NULL)
    {
      g_hash_table_iter_init (&iter, now);
      while (g_hash_table_iter_next (&iter, &path, &values))
        {
          GHashTable *then = g_hash_table_lookup (saved, path);
          g_autofree WCHAR *wpath = reg_child_path (root, path);
          GHashTableIter value_iter;
          gpointer name;

          if (then == NULL)
            {
              /* Its parent may have gone already. */
              RegDeleteTreeW (HKEY_CURRENT_USER, wpath);
              RegDeleteKeyW (HKEY_CURRENT_USER, wpath);
              continue;
            }
          g_hash_table_iter_init (&value_iter, values);
          while (g_hash_table_iter_next (&value_iter, &name, NULL))
            {
              g_autofree WCHAR *wname = to_wide (name);
              if (!g_hash_table_contains (then, name))
                g_assert_cmpint (RegDeleteKeyValueW (HKEY_CURRENT_USER, wpath, wname), ==,
                                 ERROR_SUCCESS);
            }
        }
    }

  /* What was changed or removed since. */
  g_hash_table_iter_init (&iter, saved);
  while (g_hash_table_iter_next (&iter, &path, &values))
    {
      GHashTable *current = now != NULL ? g_hash_table_lookup (now, path) : NULL;
      g_autofree WCHAR *wpath = reg_child_path (root, path);
      GHashTableIter value_iter;
      gpointer name, v;
      HKEY key;

      g_assert_cmpint (
          RegCreateKeyExW (HKEY_CURRENT_USER, wpath, 0, NULL, 0, KEY_WRITE, NULL, &key, NULL), ==,
          ERROR_SUCCESS);
      g_hash_table_iter_init (&value_iter, values);
      while (g_hash_table_iter_next (&value_iter, &name, &v))
        {
          RegValue *value = v;
          RegValue *was = current != NULL ? g_hash_table_lookup (current, name) : NULL;
          g_autofree WCHAR *wname = NULL;
          gsize size;
          const guint8 *bytes;

          if (was != NULL && was->type == value->type && g_bytes_equal (was->data, value->data))
            continue;
          wname = to_wide (name);
          bytes = g_bytes_get_data (value->data, &size);
          g_assert_cmpint (RegSetValueExW (key, wname, 0, value->type, bytes, (DWORD) size), ==,
                           ERROR_SUCCESS);
        }
      RegCloseKey (key);
    }
}

/* The states put back before each case and at the end: as found when the test started. */
static GHashTable *saved_settings;
static GHashTable *saved_policies;

/* --- what applications see --- */

/* A registry value as text: "(absent)", "dword:N", "sz:TEXT", else the type and the bytes. */
static char *describe_value (const WCHAR *path, DWORD type, const guint8 *data, gsize size);

static char *
reg_get (const WCHAR *path, const WCHAR *name)
{
  g_autofree guint8 *data = NULL;
  DWORD type = 0;
  DWORD size = 0;

  if (RegGetValueW (HKEY_CURRENT_USER, path, name, RRF_RT_ANY | RRF_NOEXPAND, &type, NULL, &size)
      != ERROR_SUCCESS)
    return g_strdup ("(absent)");
  data = g_malloc0 (size + sizeof (WCHAR));
  g_assert_cmpint (
      RegGetValueW (HKEY_CURRENT_USER, path, name, RRF_RT_ANY | RRF_NOEXPAND, &type, data, &size),
      ==, ERROR_SUCCESS);
  return describe_value (path, type, data, size);
}

static char *
setting (const char *name)
{
  g_autofree WCHAR *wname = to_wide (name);

  return reg_get (INTERNET_SETTINGS, wname);
}

static void
set_setting_string (const char *name, const char *value)
{
  g_autofree WCHAR *wname = to_wide (name);
  g_autofree WCHAR *wvalue = to_wide (value);

  g_assert_cmpint (RegSetKeyValueW (HKEY_CURRENT_USER, INTERNET_SETTINGS, wname, REG_SZ, wvalue,
                                    (DWORD) ((wcslen (wvalue) + 1) * sizeof (WCHAR))),
                   ==, ERROR_SUCCESS);
}

static void
set_setting_dword (const char *name, DWORD value)
{
  g_autofree WCHAR *wname = to_wide (name);

  g_assert_cmpint (RegSetKeyValueW (HKEY_CURRENT_USER, INTERNET_SETTINGS, wname, REG_DWORD, &value,
                                    sizeof value),
                   ==, ERROR_SUCCESS);
}

static void
delete_setting (const char *name)
{
  g_autofree WCHAR *wname = to_wide (name);
  LONG code = RegDeleteKeyValueW (HKEY_CURRENT_USER, INTERNET_SETTINGS, wname);

  g_assert_true (code == ERROR_SUCCESS || code == ERROR_FILE_NOT_FOUND);
}

static guint32
le32 (const guint8 *p)
{
  return (guint32) p[0] | (guint32) p[1] << 8 | (guint32) p[2] << 16 | (guint32) p[3] << 24;
}

/* A Connections blob, as WinINet writes it for each connection: a version, a counter that
 * changes on every write, the flags, then the proxy, the bypass list and the PAC URL, each a
 * length and that many bytes; then auto-detection state. FALSE when it is not that shape. */
static gboolean
parse_connection_blob (const guint8 *data, gsize size, guint32 *flags, char *strings[3],
                       gsize *rest)
{
  gsize offset = 12;

  if (size < offset)
    return FALSE;
  *flags = le32 (data + 8);
  for (guint i = 0; i < 3; i++)
    {
      guint32 len;

      if (offset + 4 > size || (len = le32 (data + offset)) > size - offset - 4)
        {
          for (guint j = 0; j < i; j++)
            g_clear_pointer (&strings[j], g_free);
          return FALSE;
        }
      strings[i] = g_strndup ((const char *) data + offset + 4, len);
      offset += 4 + len;
    }
  *rest = offset;
  return TRUE;
}

static char *
hex (const guint8 *data, gsize size)
{
  GString *out = g_string_new (NULL);

  for (gsize i = 0; i < size; i++)
    g_string_append_printf (out, "%02x", data[i]);
  return g_string_free (out, FALSE);
}

static char *
describe_value (const WCHAR *path, DWORD type, const guint8 *data, gsize size)
{
  guint32 flags;
  char *strings[3] = { NULL, NULL, NULL };
  gsize rest;

  if (type == REG_DWORD && size == 4)
    return g_strdup_printf ("dword:%u", le32 (data));
  if (type == REG_SZ || type == REG_EXPAND_SZ)
    {
      g_autofree char *text = from_wide ((const WCHAR *) data, -1);
      return g_strdup_printf ("sz:%s", text);
    }
  /* The counter is left out: it is not a setting, and WinINet moves it on every write. */
  if (type == REG_BINARY && wcscmp (path, CONNECTIONS) == 0
      && parse_connection_blob (data, size, &flags, strings, &rest))
    {
      g_autofree char *tail = hex (data + rest, size - rest);
      char *text = g_strdup_printf ("blob:version=%u flags=0x%x proxy=%s bypass=%s pac=%s rest=%s",
                                    le32 (data), flags, strings[0], strings[1], strings[2], tail);

      for (guint i = 0; i < 3; i++)
        g_free (strings[i]);
      return text;
    }
  {
    g_autofree char *bytes = hex (data, size);
    return g_strdup_printf ("type%lu:%s", (gulong) type, bytes);
  }
}

/* One option of the LAN's settings through InternetQueryOption, as an application asks. */
static gboolean
query (INTERNET_PER_CONN_OPTIONW *option)
{
  INTERNET_PER_CONN_OPTION_LISTW list = { 0 };
  DWORD size = sizeof list;

  list.dwSize = sizeof list;
  list.dwOptionCount = 1;
  list.pOptions = option;
  return InternetQueryOptionW (NULL, INTERNET_OPTION_PER_CONNECTION_OPTION, &list, &size);
}

/* The flags as WinINet reports them: unlike the backend, without evening out Wine's answer. */
static DWORD
query_flags (void)
{
  INTERNET_PER_CONN_OPTIONW option = { 0 };

  option.dwOption = INTERNET_PER_CONN_FLAGS_UI;
  if (!query (&option))
    {
      option.dwOption = INTERNET_PER_CONN_FLAGS;
      g_assert_true (query (&option));
    }
  return option.Value.dwValue;
}

/* NULL when WinINet has none. */
static char *
query_string (DWORD which)
{
  INTERNET_PER_CONN_OPTIONW option = { 0 };
  char *text = NULL;

  option.dwOption = which;
  g_assert_true (query (&option));
  if (option.Value.pszValue != NULL)
    {
      text = from_wide (option.Value.pszValue, -1);
      GlobalFree (option.Value.pszValue);
    }
  return text;
}

/* Sets the LAN's settings as another program (or Windows' settings page) does. */
static void
api_set (DWORD flags, const char *server, const char *bypass_list, const char *pac)
{
  g_autofree WCHAR *wserver = server != NULL ? to_wide (server) : NULL;
  g_autofree WCHAR *wbypass = bypass_list != NULL ? to_wide (bypass_list) : NULL;
  g_autofree WCHAR *wpac = pac != NULL ? to_wide (pac) : NULL;
  INTERNET_PER_CONN_OPTIONW options[4] = { { 0 } };
  INTERNET_PER_CONN_OPTION_LISTW list = { 0 };

  options[0].dwOption = INTERNET_PER_CONN_PROXY_SERVER;
  options[0].Value.pszValue = wserver;
  options[1].dwOption = INTERNET_PER_CONN_PROXY_BYPASS;
  options[1].Value.pszValue = wbypass;
  options[2].dwOption = INTERNET_PER_CONN_AUTOCONFIG_URL;
  options[2].Value.pszValue = wpac;
  options[3].dwOption = INTERNET_PER_CONN_FLAGS;
  options[3].Value.dwValue = flags;
  list.dwSize = sizeof list;
  list.dwOptionCount = G_N_ELEMENTS (options);
  list.pOptions = options;
  g_assert_true (
      InternetSetOptionW (NULL, INTERNET_OPTION_PER_CONNECTION_OPTION, &list, sizeof list));
  /* Wine's WinINet keeps neither the bypass list nor the PAC URL (it stores ProxyEnable and
   * ProxyServer only); it reads the bypass list from ProxyOverride, where Windows keeps a copy
   * too, so the preset puts them where Wine looks. */
  if (running_under_wine ())
    {
      if (bypass_list != NULL)
        set_setting_string ("ProxyOverride", bypass_list);
      if (pac != NULL)
        set_setting_string ("AutoConfigURL", pac);
    }
}

static void
api_set_server (const char *server)
{
  g_autofree WCHAR *wserver = to_wide (server);
  INTERNET_PER_CONN_OPTIONW option = { 0 };
  INTERNET_PER_CONN_OPTION_LISTW list = { 0 };

  option.dwOption = INTERNET_PER_CONN_PROXY_SERVER;
  option.Value.pszValue = wserver;
  list.dwSize = sizeof list;
  list.dwOptionCount = 1;
  list.pOptions = &option;
  g_assert_true (
      InternetSetOptionW (NULL, INTERNET_OPTION_PER_CONNECTION_OPTION, &list, sizeof list));
}

static int
compare_strings (const void *a, const void *b)
{
  return strcmp (*(const char *const *) a, *(const char *const *) b);
}

/* Every Connections blob (the LAN's DefaultConnectionSettings, SavedLegacySettings, one per
 * dial-up or VPN entry), sorted. */
static char *
connections_snapshot (void)
{
  g_autoptr (GHashTable) tree = reg_capture (CONNECTIONS);
  GHashTable *values = tree != NULL ? g_hash_table_lookup (tree, "") : NULL;
  g_autofree const char **names = NULL;
  GString *out = g_string_new (NULL);
  guint n = 0;

  if (values == NULL)
    return g_string_free (out, FALSE);
  names = (const char **) g_hash_table_get_keys_as_array (values, &n);
  qsort (names, n, sizeof (char *), compare_strings);
  for (guint i = 0; i < n; i++)
    {
      RegValue *value = g_hash_table_lookup (values, names[i]);
      gsize size;
      const guint8 *data = g_bytes_get_data (value->data, &size);
      g_autofree char *text = describe_value (CONNECTIONS, value->type, data, size);

      g_string_append_printf (out, "Connections\\%s=%s\n", names[i], text);
    }
  return g_string_free (out, FALSE);
}

/* The proxy setting as applications read it, through the registry and through WinINet:
 * "before" and "after" must match to the byte. */
static char *
proxy_snapshot (void)
{
  static const char *const names[]
      = { "ProxyEnable", "ProxyServer", "ProxyOverride", "AutoConfigURL", "AutoDetect" };
  GString *out = g_string_new (NULL);
  g_autofree char *connections = connections_snapshot ();
  g_autofree char *server = query_string (INTERNET_PER_CONN_PROXY_SERVER);
  g_autofree char *bypass_list = query_string (INTERNET_PER_CONN_PROXY_BYPASS);
  g_autofree char *pac = query_string (INTERNET_PER_CONN_AUTOCONFIG_URL);

  for (guint i = 0; i < G_N_ELEMENTS (names); i++)
    {
      g_autofree char *value = setting (names[i]);
      g_string_append_printf (out, "%s=%s\n", names[i], value);
    }
  g_string_append (out, connections);
  g_string_append_printf (out, "query flags=0x%lx server=%s bypass=%s pac=%s\n",
                          (gulong) query_flags (), server != NULL ? server : "(none)",
                          bypass_list != NULL ? bypass_list : "(none)",
                          pac != NULL ? pac : "(none)");
  return g_string_free (out, FALSE);
}

/* What Wine's WinINet leaves alone when Pinhole is on (see api_set()). */
static char *
wine_untouched (void)
{
  g_autofree char *override = setting ("ProxyOverride");
  g_autofree char *pac = setting ("AutoConfigURL");
  g_autofree char *connections = connections_snapshot ();

  return g_strdup_printf ("ProxyOverride=%s\nAutoConfigURL=%s\n%s", override, pac, connections);
}

/* Pinhole is on at 127.0.0.1:@port (or @host) with the test's bypass list. @untouched:
 * wine_untouched() from before enable(). */
static void
assert_pinhole (const char *host, guint port, const char *untouched)
{
  g_autofree char *server = g_strdup_printf ("%s:%u", host, port);
  g_autofree char *server_sz = g_strdup_printf ("sz:%s", server);
  g_autofree char *enable = setting ("ProxyEnable");
  g_autofree char *reg_server = setting ("ProxyServer");
  g_autofree char *q_server = query_string (INTERNET_PER_CONN_PROXY_SERVER);
  DWORD flags = query_flags ();

  g_assert_cmpstr (enable, ==, "dword:1");
  g_assert_cmpstr (reg_server, ==, server_sz);
  g_assert_cmpstr (q_server, ==, server);

  if (running_under_wine ())
    {
      g_autofree char *now = wine_untouched ();

      /* Wine's WinINet reports a proxy that is on as PROXY_TYPE_PROXY alone, and keeps no
       * bypass list, PAC URL or Connections blob of its own: those stay as they were. */
      g_assert_cmpuint (flags, ==, PROXY_TYPE_PROXY);
      g_assert_cmpstr (now, ==, untouched);
    }
  else
    {
      g_autofree char *override = setting ("ProxyOverride");
      g_autofree char *q_bypass = query_string (INTERNET_PER_CONN_PROXY_BYPASS);
      g_autofree char *blob = reg_get (CONNECTIONS, L"DefaultConnectionSettings");
      g_autofree char *expected_blob_head
          = g_strdup_printf ("flags=0x3 proxy=%s bypass=%s ", server, BYPASS_WININET);

      /* The proxy, direct for the bypass list, and neither the PAC nor auto-detection. */
      g_assert_cmpuint (flags, ==, PROXY_TYPE_DIRECT | PROXY_TYPE_PROXY);
      g_assert_cmpstr (override, ==, "sz:" BYPASS_WININET);
      g_assert_cmpstr (q_bypass, ==, BYPASS_WININET);
      g_assert_nonnull (strstr (blob, expected_blob_head));
    }
}

/* --- presets: states a user's settings may be in before Pinhole --- */

typedef struct
{
  const char *name;
  void (*apply) (void);
} Preset;

/* A PAC and auto-detection, a proxy and bypass list filled in but not used, as Windows'
 * settings page leaves them. */
static void
preset_corporate_pac (void)
{
  api_set (PROXY_TYPE_DIRECT | PROXY_TYPE_AUTO_PROXY_URL | PROXY_TYPE_AUTO_DETECT, CORP_PROXY,
           CORP_BYPASS, PAC_URL);
}

/* The same PAC pushed by a Group Policy preference into the registry values that WinINet
 * reads, without going through WinINet. */
static void
preset_corporate_gpo (void)
{
  set_setting_string ("AutoConfigURL", PAC_URL);
  set_setting_string ("ProxyServer", CORP_PROXY);
  set_setting_string ("ProxyOverride", CORP_BYPASS);
  set_setting_dword ("ProxyEnable", 0);
}

/* Another proxy on, by hand. */
static void
preset_manual (void)
{
  api_set (PROXY_TYPE_DIRECT | PROXY_TYPE_PROXY, CORP_PROXY, CORP_BYPASS, NULL);
}

static const Preset presets[] = {
  { "fresh", NULL },
  { "corporate-pac", preset_corporate_pac },
  { "corporate-gpo", preset_corporate_gpo },
  { "manual", preset_manual },
};

/* --- fixture --- */

static void
fixture_setup (Fixture *f, gconstpointer data)
{
  g_autoptr (GError) error = NULL;

  f->dir = g_dir_make_tmp ("pinhole-system-proxy-XXXXXX", &error);
  g_assert_no_error (error);
  f->journal = g_build_filename (f->dir, "state", "pinhole", "system-proxy.journal", NULL);

  /* The state the test found, then no proxy at all: each case starts from the same place. */
  reg_restore (INTERNET_SETTINGS, saved_settings);
  reg_restore (POLICIES, saved_policies);
  api_set (PROXY_TYPE_DIRECT, NULL, NULL, NULL);
  delete_setting ("ProxyOverride");
  delete_setting ("AutoConfigURL");
}

static void
fixture_teardown (Fixture *f, gconstpointer data)
{
  reg_restore (INTERNET_SETTINGS, saved_settings);
  reg_restore (POLICIES, saved_policies);
  ph_test_remove_tree (f->dir);
  g_free (f->journal);
  g_free (f->dir);
}

/* --- cases --- */

static void
test_round_trip (Fixture *f, gconstpointer data)
{
  const Preset *preset = data;
  g_autoptr (PhSystemProxy) sp = NULL;
  g_autoptr (GKeyFile) journal = g_key_file_new ();
  g_autoptr (GError) error = NULL;
  g_autofree char *before = NULL;
  g_autofree char *untouched = NULL;
  g_autofree char *after = NULL;
  g_autofree char *flags_set = NULL;
  g_autofree char *server_set = NULL;
  g_autofree char *bypass_set = NULL;
  g_autofree char *flags_previous = NULL;
  const char *const *backends;

  if (preset->apply != NULL)
    preset->apply ();
  before = proxy_snapshot ();
  untouched = wine_untouched ();
  g_test_message ("before:\n%s", before);

  sp = ph_system_proxy_new (f->journal);
  backends = ph_system_proxy_get_backends (sp);
  g_assert_cmpstr (backends[0], ==, "wininet");
  g_assert_null (backends[1]);
  enable_ok (sp, "127.0.0.1", 3128, bypass);
  assert_pinhole ("127.0.0.1", 3128, untouched);

  /* The journal names the LAN's keys (no dial-up or VPN entry here: Wine has none), the
   * flags as text. */
  g_assert_true (g_key_file_load_from_file (journal, f->journal, G_KEY_FILE_NONE, &error));
  g_assert_no_error (error);
  flags_set = g_key_file_get_string (journal, "wininet", "lan.flags.set", NULL);
  server_set = g_key_file_get_string (journal, "wininet", "lan.server.set", NULL);
  bypass_set = g_key_file_get_string (journal, "wininet", "lan.bypass.set", NULL);
  flags_previous = g_key_file_get_string (journal, "wininet", "lan.flags.previous", NULL);
  g_assert_cmpstr (flags_set, ==, "direct|proxy");
  g_assert_cmpstr (server_set, ==, "127.0.0.1:3128");
  g_assert_cmpstr (bypass_set, ==, BYPASS_WININET);
  if (preset->apply == preset_corporate_pac && !running_under_wine ())
    g_assert_cmpstr (flags_previous, ==, "direct|auto-proxy-url|auto-detect");
  else if (preset->apply == preset_manual)
    g_assert_cmpstr (flags_previous, ==, "direct|proxy");
  else
    g_assert_cmpstr (flags_previous, ==, "direct");

  disable_ok (sp);
  after = proxy_snapshot ();
  g_assert_cmpstr (after, ==, before);
  g_assert_false (g_file_test (f->journal, G_FILE_TEST_EXISTS));

  /* Nothing left to put back: a second disable is a no-op. */
  disable_ok (sp);
}

static void
test_foreign_change (Fixture *f, gconstpointer data)
{
  g_autoptr (PhSystemProxy) sp = NULL;
  g_autofree char *flags_before = NULL;
  g_autofree char *server = NULL;
  g_autofree char *reg_server = NULL;
  g_autofree char *enable = NULL;
  g_autofree char *pac = NULL;
  DWORD flags_after;

  preset_corporate_pac ();
  flags_before = g_strdup_printf ("0x%lx", (gulong) query_flags ());
  sp = ph_system_proxy_new (f->journal);
  enable_ok (sp, "127.0.0.1", 3128, bypass);
  /* Another program points the proxy elsewhere while Pinhole is on. */
  api_set_server ("their.example:3128");
  /* The tray asks again whenever the agent's state changes: the same values write nothing,
   * so their change stays. */
  enable_ok (sp, "127.0.0.1", 3128, bypass);
  {
    g_autofree char *still = query_string (INTERNET_PER_CONN_PROXY_SERVER);
    g_assert_cmpstr (still, ==, "their.example:3128");
  }

  g_test_expect_message ("pinhole-system-proxy", G_LOG_LEVEL_MESSAGE,
                         "*lan.server was changed by someone else*");
  disable_ok (sp);
  g_test_assert_expected_messages ();

  /* Theirs stays; the rest is back. */
  server = query_string (INTERNET_PER_CONN_PROXY_SERVER);
  g_assert_cmpstr (server, ==, "their.example:3128");
  reg_server = setting ("ProxyServer");
  g_assert_cmpstr (reg_server, ==, "sz:their.example:3128");
  flags_after = query_flags ();
  {
    g_autofree char *text = g_strdup_printf ("0x%lx", (gulong) flags_after);
    g_assert_cmpstr (text, ==, flags_before);
  }
  enable = setting ("ProxyEnable");
  g_assert_cmpstr (enable, ==, "dword:0");
  pac = setting ("AutoConfigURL");
  g_assert_cmpstr (pac, ==, "sz:" PAC_URL);
}

static void
test_enable_twice (Fixture *f, gconstpointer data)
{
  g_autoptr (PhSystemProxy) sp = NULL;
  g_autofree char *before = NULL;
  g_autofree char *untouched = NULL;
  g_autofree char *after = NULL;

  preset_corporate_pac ();
  before = proxy_snapshot ();
  untouched = wine_untouched ();
  sp = ph_system_proxy_new (f->journal);
  enable_ok (sp, "127.0.0.1", 3128, bypass);
  enable_ok (sp, "127.0.0.1", 3129, bypass);
  assert_pinhole ("127.0.0.1", 3129, untouched);
  disable_ok (sp);
  after = proxy_snapshot ();
  g_assert_cmpstr (after, ==, before);
}

/* An IPv6 listener: WinINet's "host:port" needs the brackets. */
static void
test_ipv6_host (Fixture *f, gconstpointer data)
{
  g_autoptr (PhSystemProxy) sp = NULL;
  g_autofree char *untouched = wine_untouched ();
  g_autofree char *before = proxy_snapshot ();
  g_autofree char *after = NULL;

  sp = ph_system_proxy_new (f->journal);
  enable_ok (sp, "::1", 3128, bypass);
  assert_pinhole ("[::1]", 3128, untouched);
  disable_ok (sp);
  after = proxy_snapshot ();
  g_assert_cmpstr (after, ==, before);
}

/* The policies Windows' own settings pages obey stop Pinhole too, before anything changes. */
static void
test_locked (Fixture *f, gconstpointer data)
{
  const WCHAR *policy = data;
  g_autoptr (PhSystemProxy) sp = NULL;
  g_autoptr (GError) error = NULL;
  g_autofree char *before = NULL;
  g_autofree char *after = NULL;
  DWORD on = 1;

  /* Windows lets only administrators write HKCU's Policies key. */
  if (RegSetKeyValueW (HKEY_CURRENT_USER, IE_CONTROL_PANEL_POLICIES, policy, REG_DWORD, &on,
                       sizeof on)
      != ERROR_SUCCESS)
    {
      g_test_skip ("cannot write the Internet Explorer policies (not an administrator)");
      return;
    }
  preset_corporate_pac ();
  before = proxy_snapshot ();
  sp = ph_system_proxy_new (f->journal);
  g_assert_false (ph_system_proxy_enable (sp, "127.0.0.1", 3128, bypass, &error));
  g_assert_error (error, PH_ERROR, PH_ERROR_FAILED);
  g_test_message ("expected failure: %s", error->message);
  g_assert_nonnull (strstr (error->message, "locked by the administrator"));
  g_assert_false (ph_system_proxy_is_enabled (sp));
  g_assert_false (g_file_test (f->journal, G_FILE_TEST_EXISTS));
  after = proxy_snapshot ();
  g_assert_cmpstr (after, ==, before);
}

/* --- the crash: a child enables and is killed with TerminateProcess() --- */

/* Waits to be killed; gives up after a minute, so that a test that failed before killing it
 * does not leave it behind. */
static int
child_main (const char *journal)
{
  g_autoptr (PhSystemProxy) sp = ph_system_proxy_new (journal);
  g_autoptr (GError) error = NULL;

  if (!ph_system_proxy_enable (sp, "127.0.0.1", 3128, bypass, &error))
    {
      g_printerr ("child: %s\n", error->message);
      return 1;
    }
  g_print ("enabled\n");
  fflush (stdout);
  g_usleep (60 * G_USEC_PER_SEC);
  return 2;
}

/* A line of its own; text mode ends it with CRLF. */
static gboolean
child_said_enabled (const char *output)
{
  g_auto (GStrv) lines = g_strsplit (output, "\n", -1);

  for (guint i = 0; lines[i] != NULL && lines[i + 1] != NULL; i++)
    {
      if (strcmp (g_strchomp (lines[i]), "enabled") == 0)
        return TRUE;
    }
  return FALSE;
}

/* The child while it runs, for the abort handler. */
static HANDLE child_process;

static void
run_child_and_kill (const char *journal)
{
  WCHAR self[MAX_PATH + 1];
  g_autofree char *self8 = NULL;
  g_autofree char *command8 = NULL;
  g_autofree WCHAR *command = NULL;
  SECURITY_ATTRIBUTES inherit = { sizeof inherit, NULL, TRUE };
  STARTUPINFOW startup = { sizeof startup };
  PROCESS_INFORMATION child = { 0 };
  HANDLE out_read, out_write;
  g_autoptr (GString) output = g_string_new (NULL);
  DWORD code = 0;

  g_assert_cmpuint (GetModuleFileNameW (NULL, self, G_N_ELEMENTS (self)), <, G_N_ELEMENTS (self));
  self8 = from_wide (self, -1);
  command8 = g_strdup_printf ("\"%s\" %s \"%s\"", self8, CHILD_ARG, journal);
  command = to_wide (command8);

  g_assert_true (CreatePipe (&out_read, &out_write, &inherit, 0));
  g_assert_true (SetHandleInformation (out_read, HANDLE_FLAG_INHERIT, 0));
  startup.dwFlags = STARTF_USESTDHANDLES;
  startup.hStdOutput = out_write;
  /* Not the test's: an inherited copy would keep meson waiting after a failure. */
  startup.hStdError = out_write;
  g_assert_true (CreateProcessW (NULL, command, NULL, NULL, TRUE, 0, NULL, NULL, &startup, &child));
  child_process = child.hProcess;
  CloseHandle (child.hThread);
  CloseHandle (out_write);

  /* "enabled" once the journal and the settings are written; its messages, or an error,
   * come on the same pipe. */
  while (!child_said_enabled (output->str) && output->len < 64 * 1024)
    {
      char buffer[512];
      DWORD got = 0;

      if (!ReadFile (out_read, buffer, sizeof buffer, &got, NULL) || got == 0)
        break;
      g_string_append_len (output, buffer, got);
    }
  CloseHandle (out_read);

  /* As Task Manager's "End task" or a crash would: no chance to clean up. */
  g_assert_true (TerminateProcess (child.hProcess, 137));
  g_assert_cmpuint (WaitForSingleObject (child.hProcess, 30000), ==, WAIT_OBJECT_0);
  g_assert_true (GetExitCodeProcess (child.hProcess, &code));
  child_process = NULL;
  CloseHandle (child.hProcess);
  g_test_message ("child:\n%s", output->str);
  g_assert_true (child_said_enabled (output->str));
  g_assert_cmpuint (code, ==, 137);
  g_assert_true (g_file_test (journal, G_FILE_TEST_EXISTS));
}

static void
test_crash (Fixture *f, gconstpointer data)
{
  const Preset *preset = data;
  g_autofree char *before = NULL;
  g_autofree char *untouched = NULL;
  g_autofree char *after = NULL;

  preset->apply ();
  before = proxy_snapshot ();
  untouched = wine_untouched ();

  run_child_and_kill (f->journal);
  assert_pinhole ("127.0.0.1", 3128, untouched);

  recover_ok (f->journal, TRUE);
  after = proxy_snapshot ();
  g_assert_cmpstr (after, ==, before);

  recover_ok (f->journal, FALSE);
}

/* --- the bypass list in WinINet's syntax --- */

typedef struct
{
  const char *in;   /* ';'-separated, as the entries ph_system_proxy_enable() takes */
  const char *out;  /* what WinINet is given */
  gboolean dropped; /* an entry has no WinINet form, with a message */
} BypassCase;

static const BypassCase bypass_cases[] = {
  { "localhost;127.0.0.0/8;::1;intranet.corp.example", BYPASS_WININET, FALSE },
  { "", "", FALSE },
  { "10.0.0.0/8;192.168.0.0/16;192.168.1.0/24;10.1.2.3/32;10.1.2.3",
    "10.*;192.168.*;192.168.1.*;10.1.2.3", FALSE },
  /* Host bits past the prefix are ignored, as a netmask would. */
  { "127.0.0.1/8", "127.*", FALSE },
  { "172.16.0.0/12",
    "172.16.*;172.17.*;172.18.*;172.19.*;172.20.*;172.21.*;172.22.*;172.23.*;172.24.*;"
    "172.25.*;172.26.*;172.27.*;172.28.*;172.29.*;172.30.*;172.31.*",
    FALSE },
  { "10.0.0.0/31", "10.0.0.0;10.0.0.1", FALSE },
  /* All of IPv4 has no form: "*" would take every name too. */
  { "0.0.0.0/0;127.0.0.1", "127.0.0.1", TRUE },
  { "[::1];::1;2001:db8::1/128", "[::1];[2001:db8::1]", FALSE },
  /* A name covers its subdomains, as on GNOME. */
  { "corp.example;.corp.example;*.corp.example", "corp.example;*.corp.example", FALSE },
  { "<local>;<-loopback>;192.168.*", "<local>;<-loopback>;192.168.*", FALSE },
  { "fe80::/10;intranet", "intranet;*.intranet", TRUE },
  { "10.0.0.0/33;127.0.0.1", "127.0.0.1", TRUE },
  { "corp.example/8", "", TRUE },
};

static void
test_bypass_syntax (void)
{
  for (guint i = 0; i < G_N_ELEMENTS (bypass_cases); i++)
    {
      const BypassCase *c = &bypass_cases[i];
      g_auto (GStrv) in = *c->in != '\0' ? g_strsplit (c->in, ";", -1) : g_new0 (char *, 1);
      g_autofree char *out = NULL;

      g_test_message ("%s", c->in);
      if (c->dropped)
        g_test_expect_message ("pinhole-system-proxy", G_LOG_LEVEL_MESSAGE,
                               "*has no WinINet form*");
      out = ph_proxy_wininet_bypass_list ((const char *const *) in);
      g_test_assert_expected_messages ();
      g_assert_cmpstr (out, ==, c->out);
    }
}

/* A failed assertion aborts the binary, past every teardown: the user's proxy setting (the
 * Wine prefix's, the developer's own on Windows) must not stay pointed at a Pinhole that is not
 * there, nor the child run on. */
static void
on_abort (int sig)
{
  if (child_process != NULL)
    TerminateProcess (child_process, 137);
  reg_restore (INTERNET_SETTINGS, saved_settings);
  reg_restore (POLICIES, saved_policies);
  InternetSetOptionW (NULL, INTERNET_OPTION_SETTINGS_CHANGED, NULL, 0);
}

/* --- journal keys: a phonebook entry's name may hold what GKeyFile keys cannot --- */

static void
test_keys (void)
{
  static const char *const entries[] = {
    "Work VPN",     "a=b [x]",           "100% up",  "dots.in.name.flags",
    "Työ VPN 工作", "tab\tand\nnewline", " padded ", "#hash;semi,comma\\back",
  };
  static const char *const fields[] = { "flags", "server", "bypass", "autoconfig-url" };
  static const char *const bad[]
      = { "lan.",   "lan",           "lan.a.flags", "ras.flags", "ras..flags",
          "ras.x.", "ras.%zz.flags", "other.flags", "" };

  for (guint i = 0; i <= G_N_ELEMENTS (entries); i++)
    {
      const char *entry = i < G_N_ELEMENTS (entries) ? entries[i] : NULL;

      for (guint j = 0; j < G_N_ELEMENTS (fields); j++)
        {
          g_autofree char *key = ph_proxy_wininet_key (entry, fields[j]);
          g_autofree char *key_set = g_strconcat (key, ".set", NULL);
          g_autoptr (GKeyFile) journal = g_key_file_new ();
          g_autoptr (GKeyFile) again = g_key_file_new ();
          g_autoptr (GError) error = NULL;
          g_autofree char *data = NULL;
          g_auto (GStrv) keys = NULL;
          g_autofree char *back_entry = NULL;
          g_autofree char *back_field = NULL;

          g_test_message ("%s", key);
          /* As the journal stores it, written to text and read again. */
          g_key_file_set_string (journal, "wininet", key_set, "x");
          data = g_key_file_to_data (journal, NULL, NULL);
          g_assert_true (
              g_key_file_load_from_data (again, data, (gsize) -1, G_KEY_FILE_NONE, &error));
          g_assert_no_error (error);
          keys = g_key_file_get_keys (again, "wininet", NULL, NULL);
          g_assert_cmpuint (g_strv_length (keys), ==, 1);
          g_assert_cmpstr (keys[0], ==, key_set);

          g_assert_true (ph_proxy_wininet_split_key (key, &back_entry, &back_field));
          g_assert_cmpstr (back_entry, ==, entry);
          g_assert_cmpstr (back_field, ==, fields[j]);
        }
    }
  for (guint i = 0; i < G_N_ELEMENTS (bad); i++)
    {
      g_autofree char *entry = NULL;
      g_autofree char *field = NULL;

      g_test_message ("%s", bad[i]);
      g_assert_false (ph_proxy_wininet_split_key (bad[i], &entry, &field));
    }
}

/* [system-proxy] mode=pac: the LAN's flags say "use the script at this URL", and the journal
 * holds what to put back. */
static void
assert_pinhole_pac (const char *journal_path, const char *untouched)
{
  g_autoptr (GKeyFile) journal = g_key_file_new ();
  g_autoptr (GError) error = NULL;
  g_autofree char *flags_set = NULL;
  g_autofree char *pac_set = NULL;
  g_autofree char *mode = NULL;
  g_autofree char *server_set = NULL;
  DWORD flags = query_flags ();

  g_assert_true (g_key_file_load_from_file (journal, journal_path, G_KEY_FILE_NONE, &error));
  g_assert_no_error (error);
  flags_set = g_key_file_get_string (journal, "wininet", "lan.flags.set", NULL);
  pac_set = g_key_file_get_string (journal, "wininet", "lan.autoconfig-url.set", NULL);
  server_set = g_key_file_get_string (journal, "wininet", "lan.server.set", NULL);
  mode = g_key_file_get_string (journal, "journal", "mode", NULL);
  g_assert_cmpstr (flags_set, ==, "direct|auto-proxy-url");
  g_assert_cmpstr (pac_set, ==, AGENT_PAC);
  g_assert_cmpstr (mode, ==, "pac");

  if (running_under_wine ())
    {
      g_autofree char *enable = setting ("ProxyEnable");
      g_autofree char *now = wine_untouched ();

      g_auto (GStrv) aliases
          = g_key_file_get_string_list (journal, "wininet", "lan.flags.set-earlier", NULL, NULL);

      /* Wine's WinINet keeps no PAC URL and no flag for it: what it stores is the proxy turned
       * off, and the rest as it was. The journal knows that "direct" read back is Pinhole's, so
       * that a manual proxy before comes back. */
      g_assert_cmpstr (enable, ==, "dword:0");
      g_assert_nonnull (aliases);
      g_assert_true (g_strv_contains ((const char *const *) aliases, "direct"));
      g_assert_cmpuint (flags & PROXY_TYPE_PROXY, ==, 0);
      g_assert_cmpstr (now, ==, untouched);
    }
  else
    {
      g_autofree char *q_pac = query_string (INTERNET_PER_CONN_AUTOCONFIG_URL);
      g_autofree char *reg_pac = setting ("AutoConfigURL");
      g_autofree char *blob = reg_get (CONNECTIONS, L"DefaultConnectionSettings");
      g_autofree char *expected_blob = g_strdup_printf ("flags=0x5 ");

      g_assert_cmpuint (flags, ==, PROXY_TYPE_DIRECT | PROXY_TYPE_AUTO_PROXY_URL);
      g_assert_cmpstr (q_pac, ==, AGENT_PAC);
      g_assert_cmpstr (reg_pac, ==, "sz:" AGENT_PAC);
      g_assert_nonnull (strstr (blob, expected_blob));
      g_assert_nonnull (strstr (blob, "pac=" AGENT_PAC));
    }
}

static void
test_pac (Fixture *f, gconstpointer data)
{
  const Preset *preset = data;
  g_autoptr (PhSystemProxy) sp = NULL;
  g_autofree char *before = NULL;
  g_autofree char *untouched = NULL;
  g_autofree char *after = NULL;

  if (preset->apply != NULL)
    preset->apply ();
  before = proxy_snapshot ();
  untouched = wine_untouched ();
  g_test_message ("before:\n%s", before);

  sp = ph_system_proxy_new (f->journal);
  enable_pac_ok (sp, AGENT_PAC, bypass);
  assert_pinhole_pac (f->journal, untouched);

  disable_ok (sp);
  after = proxy_snapshot ();
  g_assert_cmpstr (after, ==, before);
  g_assert_false (g_file_test (f->journal, G_FILE_TEST_EXISTS));
}

/* The mode changes while the tunnel is on: the previous values stay the first ones. */
static void
test_pac_switch_mode (Fixture *f, gconstpointer data)
{
  g_autoptr (PhSystemProxy) sp = NULL;
  g_autofree char *before = NULL;
  g_autofree char *untouched = NULL;
  g_autofree char *after = NULL;

  preset_manual ();
  before = proxy_snapshot ();
  untouched = wine_untouched ();
  sp = ph_system_proxy_new (f->journal);
  enable_ok (sp, "127.0.0.1", 3128, bypass);
  assert_pinhole ("127.0.0.1", 3128, untouched);
  enable_pac_ok (sp, AGENT_PAC, bypass);
  if (!running_under_wine ())
    assert_pinhole_pac (f->journal, untouched);
  enable_ok (sp, "127.0.0.1", 3129, bypass);
  assert_pinhole ("127.0.0.1", 3129, untouched);
  disable_ok (sp);
  after = proxy_snapshot ();
  g_assert_cmpstr (after, ==, before);
}

static void
add_test (const char *path, gconstpointer data, void (*func) (Fixture *, gconstpointer))
{
  g_test_add (path, Fixture, data, fixture_setup, func, fixture_teardown);
}

int
main (int argc, char **argv)
{
  int status;

  if (argc == 3 && strcmp (argv[1], CHILD_ARG) == 0)
    return child_main (argv[2]);

  /* Wine's WinINet takes these over the registry while no proxy is set (Windows' ignores
   * them); the cases are about the registry. */
  g_unsetenv ("http_proxy");
  g_unsetenv ("no_proxy");

  g_test_init (&argc, &argv, NULL);

  /* Put back at the end, before each case, and when an assertion aborts. */
  saved_settings = reg_capture (INTERNET_SETTINGS);
  g_assert_nonnull (saved_settings);
  saved_policies = reg_capture (POLICIES);
  signal (SIGABRT, on_abort);

  for (guint i = 0; i < G_N_ELEMENTS (presets); i++)
    {
      g_autofree char *path
          = g_strdup_printf ("/pinhole/system-proxy-wininet/round-trip/%s", presets[i].name);
      add_test (path, &presets[i], test_round_trip);
    }
  for (guint i = 0; i < G_N_ELEMENTS (presets); i++)
    {
      g_autofree char *path
          = g_strdup_printf ("/pinhole/system-proxy-wininet/pac/%s", presets[i].name);
      add_test (path, &presets[i], test_pac);
    }
  add_test ("/pinhole/system-proxy-wininet/pac-switch-mode", NULL, test_pac_switch_mode);
  add_test ("/pinhole/system-proxy-wininet/foreign-change", NULL, test_foreign_change);
  add_test ("/pinhole/system-proxy-wininet/enable-twice", NULL, test_enable_twice);
  add_test ("/pinhole/system-proxy-wininet/ipv6-host", NULL, test_ipv6_host);
  add_test ("/pinhole/system-proxy-wininet/crash/corporate-pac", &presets[1], test_crash);
  add_test ("/pinhole/system-proxy-wininet/crash/corporate-gpo", &presets[2], test_crash);
  add_test ("/pinhole/system-proxy-wininet/locked/proxy", L"Proxy", test_locked);
  add_test ("/pinhole/system-proxy-wininet/locked/autoconfig", L"Autoconfig", test_locked);
  g_test_add_func ("/pinhole/system-proxy-wininet/bypass-syntax", test_bypass_syntax);
  g_test_add_func ("/pinhole/system-proxy-wininet/journal-keys", test_keys);

  status = g_test_run ();

  reg_restore (INTERNET_SETTINGS, saved_settings);
  reg_restore (POLICIES, saved_policies);
  InternetSetOptionW (NULL, INTERNET_OPTION_SETTINGS_CHANGED, NULL, 0);
  g_clear_pointer (&saved_settings, g_hash_table_unref);
  g_clear_pointer (&saved_policies, g_hash_table_unref);
  return status;
}

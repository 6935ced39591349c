/* SPDX-License-Identifier: GPL-2.0-or-later */
/* ph-policy-win32.c: Group Policy on Windows: the values under HKLM\Software\Policies\Pinhole\
 * <group> (REG_SZ, REG_EXPAND_SZ unexpanded, REG_DWORD, REG_QWORD, named like the keys) read as a
 * configuration layer's text, and RegNotifyChangeKeyValue on HKLM\Software\Policies (the
 * Pinhole key itself may come and go) signalling an event the main context polls: the
 * notification is armed and re-armed in that context's thread, which outlives it. */
#define G_LOG_DOMAIN "pinhole-platform"

#include <windows.h>

#include "ph-policy.h"

#define POLICY_KEY L"Software\\Policies\\Pinhole"
#define POLICIES_KEY L"Software\\Policies"
/* Longest value and key names the registry allows, in characters, with the terminator. */
#define NAME_MAX_CHARS 16384

typedef struct
{
  char *group;
  char *name;
  char *string;
} Owned;

static void
owned_clear (gpointer data)
{
  Owned *o = data;

  g_free (o->group);
  g_free (o->name);
  g_free (o->string);
}

static void
read_group (HKEY parent, const wchar_t *wgroup, GArray *values, GArray *owned)
{
  g_autofree char *group = g_utf16_to_utf8 ((const gunichar2 *) wgroup, -1, NULL, NULL, NULL);
  g_autofree wchar_t *wname = g_new (wchar_t, NAME_MAX_CHARS);
  HKEY key;
  LSTATUS err;

  if (group == NULL)
    return;
  err = RegOpenKeyExW (parent, wgroup, 0, KEY_READ, &key);
  if (err != ERROR_SUCCESS)
    {
      g_warning ("%s\\%s: cannot open (%ld)", PH_POLICY_LABEL, group, (long) err);
      return;
    }
  for (DWORD i = 0;; i++)
    {
      DWORD name_len = NAME_MAX_CHARS, type = 0, size = 0;
      g_autofree BYTE *data = NULL;
      Owned o = { 0 };
      PhPolicyValue v = { 0 };

      err = RegEnumValueW (key, i, wname, &name_len, NULL, &type, NULL, &size);
      if (err == ERROR_NO_MORE_ITEMS)
        break;
      if (err != ERROR_SUCCESS)
        {
          g_warning ("%s\\%s: cannot list the values (%ld)", PH_POLICY_LABEL, group, (long) err);
          break;
        }
      if (name_len == 0)
        continue; /* the key's default value names no setting */
      /* Room for a terminator the registry may not have stored. */
      data = g_malloc0 (size + sizeof (wchar_t) * 2);
      name_len = NAME_MAX_CHARS;
      err = RegEnumValueW (key, i, wname, &name_len, NULL, &type, data, &size);
      if (err != ERROR_SUCCESS)
        continue; /* changed under us: the watch will say so */
      o.group = g_strdup (group);
      o.name = g_utf16_to_utf8 ((const gunichar2 *) wname, name_len, NULL, NULL, NULL);
      v.group = o.group;
      v.name = o.name;
      switch (type)
        {
          case REG_SZ:
          case REG_EXPAND_SZ:
            o.string = g_utf16_to_utf8 ((const gunichar2 *) data, size / sizeof (wchar_t), NULL,
                                        NULL, NULL);
            v.type = PH_POLICY_VALUE_STRING;
            v.string = o.string;
            break;
          case REG_DWORD:
            v.type = PH_POLICY_VALUE_NUMBER;
            v.number = size >= sizeof (DWORD) ? *(DWORD *) data : 0;
            break;
          case REG_QWORD:
            v.type = PH_POLICY_VALUE_NUMBER;
            v.number = size >= sizeof (guint64) ? *(guint64 *) data : 0;
            break;
          default:
            g_warning ("%s\\%s: ignoring the value %s: only REG_SZ, REG_EXPAND_SZ, REG_DWORD and "
                       "REG_QWORD name settings",
                       PH_POLICY_LABEL, group, o.name ? o.name : "?");
            owned_clear (&o);
            continue;
        }
      if (o.name == NULL)
        {
          owned_clear (&o);
          continue;
        }
      g_array_append_val (owned, o);
      g_array_append_val (values, v);
    }
  RegCloseKey (key);
}

char *
ph_policy_read (void)
{
  g_autoptr (GArray) values = g_array_new (FALSE, FALSE, sizeof (PhPolicyValue));
  g_autoptr (GArray) owned = g_array_new (FALSE, FALSE, sizeof (Owned));
  g_autofree wchar_t *wgroup = g_new (wchar_t, NAME_MAX_CHARS);
  HKEY root;
  LSTATUS err;

  g_array_set_clear_func (owned, owned_clear);
  /* The 64-bit view, as the Group Policy client writes it, whatever this build is. */
  err = RegOpenKeyExW (HKEY_LOCAL_MACHINE, POLICY_KEY, 0, KEY_READ | KEY_WOW64_64KEY, &root);
  if (err == ERROR_FILE_NOT_FOUND)
    return NULL;
  if (err != ERROR_SUCCESS)
    {
      g_warning ("%s: cannot open (%ld)", PH_POLICY_LABEL, (long) err);
      return NULL;
    }
  for (DWORD i = 0;; i++)
    {
      DWORD len = NAME_MAX_CHARS;

      err = RegEnumKeyExW (root, i, wgroup, &len, NULL, NULL, NULL, NULL);
      if (err == ERROR_NO_MORE_ITEMS)
        break;
      if (err != ERROR_SUCCESS)
        {
          g_warning ("%s: cannot list the groups (%ld)", PH_POLICY_LABEL, (long) err);
          break;
        }
      read_group (root, wgroup, values, owned);
    }
  RegCloseKey (root);
  return ph_policy_text_build ((const PhPolicyValue *) values->data, values->len);
}

/* ---- the watch ---- */

typedef struct
{
  GSource source;
  GPollFD pfd;
  HKEY key;
  HANDLE event;
} PolicySource;

struct _PhPolicyWatch
{
  GSource *source;
};

static gboolean
arm (PolicySource *ps)
{
  LSTATUS err = RegNotifyChangeKeyValue (
      ps->key, TRUE, REG_NOTIFY_CHANGE_NAME | REG_NOTIFY_CHANGE_LAST_SET, ps->event, TRUE);

  if (err != ERROR_SUCCESS)
    {
      g_warning ("%s: changes will need a reload: RegNotifyChangeKeyValue failed (%ld)",
                 PH_POLICY_LABEL, (long) err);
      return FALSE;
    }
  return TRUE;
}

static gboolean
policy_check (GSource *source)
{
  PolicySource *ps = (PolicySource *) source;

  return ps->pfd.revents != 0;
}

static gboolean
policy_dispatch (GSource *source, GSourceFunc callback, gpointer data)
{
  PolicySource *ps = (PolicySource *) source;

  ps->pfd.revents = 0;
  ResetEvent (ps->event);
  if (!arm (ps))
    {
      g_source_remove_poll (source, &ps->pfd);
      return G_SOURCE_REMOVE;
    }
  return callback (data);
}

static void
policy_finalize (GSource *source)
{
  PolicySource *ps = (PolicySource *) source;

  /* Closing the key ends the notification; then the event may go. */
  if (ps->key != NULL)
    RegCloseKey (ps->key);
  if (ps->event != NULL)
    CloseHandle (ps->event);
}

static GSourceFuncs policy_funcs = {
  NULL, policy_check, policy_dispatch, policy_finalize, NULL, NULL,
};

typedef struct
{
  PhPolicyChangedFunc func;
  gpointer user_data;
} Callback;

static gboolean
on_changed (gpointer data)
{
  Callback *cb = data;

  cb->func (cb->user_data);
  return G_SOURCE_CONTINUE;
}

PhPolicyWatch *
ph_policy_watch_new (PhPolicyChangedFunc func, gpointer user_data)
{
  GSource *source = g_source_new (&policy_funcs, sizeof (PolicySource));
  PolicySource *ps = (PolicySource *) source;
  Callback *cb = g_new0 (Callback, 1);
  PhPolicyWatch *watch;
  LSTATUS err;

  g_source_set_name (source, "pinhole-policy-watch");
  /* Opens the policies' parent key, creating it only where it is missing (a new Wine prefix):
   * Windows always has it. */
  err = RegCreateKeyExW (HKEY_LOCAL_MACHINE, POLICIES_KEY, 0, NULL, 0, KEY_NOTIFY | KEY_WOW64_64KEY,
                         NULL, &ps->key, NULL);
  if (err != ERROR_SUCCESS)
    {
      ps->key = NULL;
      g_warning ("%s: changes will need a reload: cannot open HKLM\\Software\\Policies (%ld)",
                 PH_POLICY_LABEL, (long) err);
      g_source_unref (source);
      g_free (cb);
      return NULL;
    }
  ps->event = CreateEventW (NULL, TRUE, FALSE, NULL);
  if (ps->event == NULL || !arm (ps))
    {
      g_source_unref (source);
      g_free (cb);
      return NULL;
    }
  ps->pfd.fd = (gintptr) ps->event;
  ps->pfd.events = G_IO_IN;
  g_source_add_poll (source, &ps->pfd);
  cb->func = func;
  cb->user_data = user_data;
  g_source_set_callback (source, on_changed, cb, g_free);
  g_source_attach (source, g_main_context_get_thread_default ());

  watch = g_new0 (PhPolicyWatch, 1);
  watch->source = source;
  return watch;
}

void
ph_policy_watch_free (PhPolicyWatch *watch)
{
  if (watch == NULL)
    return;
  g_source_destroy (watch->source);
  g_source_unref (watch->source);
  g_free (watch);
}

/* SPDX-License-Identifier: GPL-2.0-or-later */
/* ph-system-proxy.c: the part of the system-proxy shim that every desktop shares: the journal
 * of previous values, written before any change, and restoring from it on disable, on quit and
 * at the next start after a crash. The backends only read and write single keys. */
#define G_LOG_DOMAIN "pinhole-system-proxy"

#include "ph-system-proxy-private.h"
#include "ph-error.h"

#include <errno.h>
#include <string.h>
#include <glib/gstdio.h>

/* The journal's own group; every other group is one backend's. */
#define JOURNAL_GROUP "journal"
#define JOURNAL_VERSION 1

/* Suffixes of the journal's keys: "<key>.previous" is absent when the key was not set. */
#define SUFFIX_PREVIOUS ".previous"
#define SUFFIX_SET ".set"
/* Values Pinhole set earlier in the same run (enable() called again with another port): a key
 * still holding one of them is still Pinhole's, even if a crash came between the journal's
 * update and the key's. */
#define SUFFIX_SET_EARLIER ".set-earlier"

struct _PhSystemProxy
{
  char *journal_path;
  GPtrArray *backends; /* of PhProxyBackend *, owned */
  GPtrArray *names;    /* NULL-terminated, for get_backends() */
  /* What the journal file holds while Pinhole's values may be in place; NULL otherwise. Kept
   * in memory too, so that disable() works even if someone removes the file. */
  GKeyFile *journal;
  /* The host, port and bypass list enable() last put in place, while they are. */
  char *applied;
};

static void
backend_free (gpointer data)
{
  PhProxyBackend *backend = data;

  backend->vtable->finalize (backend);
  g_free (backend);
}

static void
add_backend (PhSystemProxy *sp, PhProxyBackend *backend)
{
  if (backend == NULL)
    return;
  g_debug ("system proxy backend in use: %s", backend->name);
  g_ptr_array_add (sp->backends, backend);
  /* Keep the NULL terminator last. */
  g_ptr_array_insert (sp->names, (gint) sp->names->len - 1, (gpointer) backend->name);
}

PhSystemProxy *
ph_system_proxy_new (const char *journal_path)
{
  PhSystemProxy *sp;

  g_return_val_if_fail (journal_path != NULL, NULL);

  sp = g_new0 (PhSystemProxy, 1);
  sp->journal_path = g_strdup (journal_path);
  sp->backends = g_ptr_array_new_with_free_func (backend_free);
  sp->names = g_ptr_array_new ();
  g_ptr_array_add (sp->names, NULL);
#ifdef PH_HAVE_PROXY_GNOME
  add_backend (sp, ph_proxy_backend_gnome_new ());
#endif
#ifdef PH_HAVE_PROXY_KDE
  add_backend (sp, ph_proxy_backend_kde_new ());
#endif
#ifdef PH_HAVE_PROXY_WININET
  add_backend (sp, ph_proxy_backend_wininet_new ());
#endif
  return sp;
}

void
ph_system_proxy_free (PhSystemProxy *sp)
{
  if (sp == NULL)
    return;
  g_clear_pointer (&sp->journal, g_key_file_unref);
  g_free (sp->applied);
  g_ptr_array_unref (sp->backends);
  g_ptr_array_unref (sp->names);
  g_free (sp->journal_path);
  g_free (sp);
}

const char *const *
ph_system_proxy_get_backends (PhSystemProxy *sp)
{
  g_return_val_if_fail (sp != NULL, NULL);
  return (const char *const *) sp->names->pdata;
}

gboolean
ph_system_proxy_is_enabled (PhSystemProxy *sp)
{
  g_return_val_if_fail (sp != NULL, FALSE);
  return sp->journal != NULL;
}

static PhProxyBackend *
find_backend (PhSystemProxy *sp, const char *name)
{
  for (guint i = 0; i < sp->backends->len; i++)
    {
      PhProxyBackend *backend = g_ptr_array_index (sp->backends, i);
      if (g_strcmp0 (backend->name, name) == 0)
        return backend;
    }
  return NULL;
}

static char *
journal_key (const char *key, const char *suffix)
{
  return g_strconcat (key, suffix, NULL);
}

/* Loads the journal file into *journal, or leaves it NULL when there is none. */
static gboolean
journal_load (PhSystemProxy *sp, GKeyFile **journal, GError **error)
{
  g_autoptr (GKeyFile) kf = g_key_file_new ();
  g_autoptr (GError) local = NULL;
  gint64 version;

  *journal = NULL;
  if (!g_key_file_load_from_file (kf, sp->journal_path, G_KEY_FILE_NONE, &local))
    {
      if (g_error_matches (local, G_FILE_ERROR, G_FILE_ERROR_NOENT))
        return TRUE;
      g_set_error (error, PH_ERROR, PH_ERROR_FAILED, "Cannot read the system-proxy journal %s: %s",
                   sp->journal_path, local->message);
      return FALSE;
    }
  version = g_key_file_get_int64 (kf, JOURNAL_GROUP, "version", NULL);
  if (version != JOURNAL_VERSION)
    {
      g_set_error (error, PH_ERROR, PH_ERROR_FAILED,
                   "Cannot read the system-proxy journal %s: version %" G_GINT64_FORMAT
                   " is not the %d this Pinhole writes",
                   sp->journal_path, version, JOURNAL_VERSION);
      return FALSE;
    }
  *journal = g_steal_pointer (&kf);
  return TRUE;
}

/* Replaces the journal file with @journal: the new content or the old one is there after a
 * crash or a power cut, never a mix, and it is on disk before the caller changes a setting. */
static gboolean
journal_save (PhSystemProxy *sp, GKeyFile *journal, GError **error)
{
  g_autofree char *dir = g_path_get_dirname (sp->journal_path);
  g_autofree char *data = NULL;
  gsize len = 0;
  g_autoptr (GError) local = NULL;

  /* 0700: the journal tells which proxy a user used before, which is nobody else's business. */
  if (g_mkdir_with_parents (dir, 0700) != 0)
    {
      int saved = errno;
      g_set_error (error, PH_ERROR, PH_ERROR_FAILED,
                   "Cannot create the directory %s for the system-proxy journal: %s", dir,
                   g_strerror (saved));
      return FALSE;
    }
  data = g_key_file_to_data (journal, &len, NULL);
  if (!g_file_set_contents_full (sp->journal_path, data, (gssize) len,
                                 G_FILE_SET_CONTENTS_CONSISTENT | G_FILE_SET_CONTENTS_DURABLE, 0600,
                                 &local))
    {
      g_set_error (error, PH_ERROR, PH_ERROR_FAILED, "Cannot write the system-proxy journal: %s",
                   local->message);
      return FALSE;
    }
  return TRUE;
}

static gboolean
journal_remove (PhSystemProxy *sp, GError **error)
{
  if (g_unlink (sp->journal_path) != 0 && errno != ENOENT)
    {
      int saved = errno;
      g_set_error (error, PH_ERROR, PH_ERROR_FAILED,
                   "Cannot remove the system-proxy journal %s: %s", sp->journal_path,
                   g_strerror (saved));
      return FALSE;
    }
  return TRUE;
}

/* The keys of one backend's group, in the order enable() set them. */
static GPtrArray *
journal_group_keys (GKeyFile *journal, const char *group)
{
  g_auto (GStrv) names = g_key_file_get_keys (journal, group, NULL, NULL);
  GPtrArray *keys = g_ptr_array_new_with_free_func (g_free);
  gsize suffix_len = strlen (SUFFIX_SET);

  for (guint i = 0; names != NULL && names[i] != NULL; i++)
    {
      gsize len = strlen (names[i]);
      if (len > suffix_len && g_str_has_suffix (names[i], SUFFIX_SET))
        g_ptr_array_add (keys, g_strndup (names[i], len - suffix_len));
    }
  return keys;
}

/* Keeps the first error for the caller and logs the others, so that one failing key does not
 * stop the rest from being put back. */
static void
keep_first_error (GError **first, GError *error)
{
  if (*first == NULL)
    {
      *first = error;
      return;
    }
  g_warning ("%s", error->message);
  g_error_free (error);
}

/* Puts back one backend's keys, last set first, so that the key that turned the proxy on (the
 * mode) goes back before the host and port it pointed at. */
static void
restore_group (PhSystemProxy *sp, GKeyFile *journal, const char *group, GError **first)
{
  PhProxyBackend *backend = find_backend (sp, group);
  g_autoptr (GPtrArray) keys = journal_group_keys (journal, group);
  GError *local = NULL;

  if (backend == NULL)
    {
      /* The journal stays, so that a Pinhole that has the backend again can finish the job. */
      keep_first_error (first,
                        g_error_new (PH_ERROR, PH_ERROR_FAILED,
                                     "The system-proxy journal %s holds %s settings, but %s is "
                                     "not available to put them back",
                                     sp->journal_path, group, group));
      return;
    }

  for (guint i = keys->len; i > 0; i--)
    {
      const char *key = g_ptr_array_index (keys, i - 1);
      g_autofree char *k_set = journal_key (key, SUFFIX_SET);
      g_autofree char *k_previous = journal_key (key, SUFFIX_PREVIOUS);
      g_autofree char *k_earlier = journal_key (key, SUFFIX_SET_EARLIER);
      g_autofree char *set = g_key_file_get_string (journal, group, k_set, NULL);
      g_autofree char *previous = g_key_file_get_string (journal, group, k_previous, NULL);
      g_auto (GStrv) earlier = g_key_file_get_string_list (journal, group, k_earlier, NULL, NULL);
      g_autofree char *current = NULL;

      if (!backend->vtable->read (backend, key, &current, &local))
        {
          g_prefix_error (&local, "Cannot put back %s %s: ", group, key);
          keep_first_error (first, g_steal_pointer (&local));
          continue;
        }
      if (g_strcmp0 (current, set) == 0
          || (current != NULL && earlier != NULL
              && g_strv_contains ((const char *const *) earlier, current)))
        {
          if (!backend->vtable->write (backend, key, previous, &local))
            {
              g_prefix_error (&local, "Cannot put back %s %s: ", group, key);
              keep_first_error (first, g_steal_pointer (&local));
              continue;
            }
          g_debug ("%s %s put back to %s", group, key, previous != NULL ? previous : "(unset)");
        }
      else if (g_strcmp0 (current, previous) != 0)
        {
          /* Theirs now: putting ours back over it would undo a deliberate change. */
          g_message ("%s %s was changed by someone else while Pinhole had set it (now %s); "
                     "leaving it as it is",
                     group, key, current != NULL ? current : "(unset)");
        }
    }
  if (!backend->vtable->commit (backend, &local))
    keep_first_error (first, g_steal_pointer (&local));
}

/* Puts back what @journal records and removes the journal file; keeps it on any failure. */
static gboolean
restore (PhSystemProxy *sp, GKeyFile *journal, GError **error)
{
  g_auto (GStrv) groups = g_key_file_get_groups (journal, NULL);
  GError *first = NULL;

  for (guint i = 0; groups[i] != NULL; i++)
    {
      if (strcmp (groups[i], JOURNAL_GROUP) != 0)
        restore_group (sp, journal, groups[i], &first);
    }
  if (first != NULL)
    {
      g_propagate_prefixed_error (error, first,
                                  "The system proxy setting was not fully put back (the journal "
                                  "%s is kept for the next try): ",
                                  sp->journal_path);
      return FALSE;
    }
  if (!journal_remove (sp, error))
    return FALSE;
  g_clear_pointer (&sp->journal, g_key_file_unref);
  g_clear_pointer (&sp->applied, g_free);
  return TRUE;
}

gboolean
ph_system_proxy_disable (PhSystemProxy *sp, GError **error)
{
  g_autoptr (GKeyFile) journal = NULL;

  g_return_val_if_fail (sp != NULL, FALSE);

  if (sp->journal != NULL)
    journal = g_key_file_ref (sp->journal);
  else if (!journal_load (sp, &journal, error))
    return FALSE;
  if (journal == NULL)
    return TRUE;
  if (!restore (sp, journal, error))
    return FALSE;
  g_message ("system proxy setting put back");
  return TRUE;
}

gboolean
ph_system_proxy_recover (PhSystemProxy *sp, gboolean *restored, GError **error)
{
  g_autoptr (GKeyFile) journal = NULL;
  g_autoptr (GError) local = NULL;

  g_return_val_if_fail (sp != NULL, FALSE);
  g_return_val_if_fail (restored != NULL, FALSE);

  *restored = FALSE;
  if (sp->journal != NULL)
    journal = g_key_file_ref (sp->journal);
  else if (!journal_load (sp, &journal, &local))
    {
      /* Left where it is, it would block every later enable() and recover(); kept beside, a
       * person can still read what the setting was. */
      g_autofree char *aside = g_strconcat (sp->journal_path, ".corrupt", NULL);
      if (g_rename (sp->journal_path, aside) == 0)
        g_prefix_error (&local, "Moved aside to %s: ", aside);
      g_propagate_error (error, g_steal_pointer (&local));
      return FALSE;
    }
  if (journal == NULL)
    return TRUE;
  if (!restore (sp, journal, error))
    return FALSE;
  g_message ("system proxy setting put back from the journal %s of a run that did not finish",
             sp->journal_path);
  *restored = TRUE;
  return TRUE;
}

/* Refuses what the backends could not write unambiguously: KDE separates the ignore list with
 * commas and the host from the port with a space, WinINet its lists with semicolons. */
static gboolean
check_value (const char *what, const char *value, GError **error)
{
  if (value == NULL || *value == '\0' || strlen (value) > 255)
    {
      g_set_error (error, PH_ERROR, PH_ERROR_FAILED,
                   "Cannot set the system proxy: %s is empty or too long", what);
      return FALSE;
    }
  for (const char *p = value; *p != '\0'; p++)
    {
      if (g_ascii_isspace (*p) || g_ascii_iscntrl (*p) || *p == ',' || *p == ';')
        {
          g_set_error (error, PH_ERROR, PH_ERROR_FAILED,
                       "Cannot set the system proxy: %s “%s” contains a space, comma or "
                       "semicolon",
                       what, value);
          return FALSE;
        }
    }
  return TRUE;
}

/* Adds this run's plan for one key to the journal. A key the journal already has keeps its
 * original previous value: that is what enable() called again must not lose. */
static gboolean
journal_add (GKeyFile *journal, PhProxyBackend *backend, PhProxyWrite *write, GError **error)
{
  g_autofree char *k_set = journal_key (write->key, SUFFIX_SET);
  g_autofree char *k_previous = journal_key (write->key, SUFFIX_PREVIOUS);
  g_autofree char *k_earlier = journal_key (write->key, SUFFIX_SET_EARLIER);
  g_autofree char *old_set = g_key_file_get_string (journal, backend->name, k_set, NULL);

  if (old_set != NULL)
    {
      g_auto (GStrv) earlier
          = g_key_file_get_string_list (journal, backend->name, k_earlier, NULL, NULL);
      g_autoptr (GStrvBuilder) builder = g_strv_builder_new ();
      g_auto (GStrv) list = NULL;

      if (strcmp (old_set, write->value) == 0)
        return TRUE;
      if (earlier != NULL)
        g_strv_builder_addv (builder, (const char **) earlier);
      if (earlier == NULL || !g_strv_contains ((const char *const *) earlier, old_set))
        g_strv_builder_add (builder, old_set);
      list = g_strv_builder_end (builder);
      g_key_file_set_string_list (journal, backend->name, k_earlier, (const char *const *) list,
                                  g_strv_length (list));
    }
  else
    {
      g_autofree char *previous = NULL;

      if (!backend->vtable->read (backend, write->key, &previous, error))
        return FALSE;
      if (previous != NULL)
        g_key_file_set_string (journal, backend->name, k_previous, previous);
    }
  g_key_file_set_string (journal, backend->name, k_set, write->value);
  return TRUE;
}

/* Records @stored as another form of Pinhole's value of @key: what the desktop keeps when it
 * cannot hold the value as written (Wine's WinINet turns PAC flags into plain "direct"), so
 * that restore() still knows the key for Pinhole's. */
static void
journal_add_alias (GKeyFile *journal, PhProxyBackend *backend, const char *key, const char *stored)
{
  g_autofree char *k_earlier = journal_key (key, SUFFIX_SET_EARLIER);
  g_auto (GStrv) earlier
      = g_key_file_get_string_list (journal, backend->name, k_earlier, NULL, NULL);
  g_autoptr (GStrvBuilder) builder = g_strv_builder_new ();
  g_auto (GStrv) list = NULL;

  if (earlier != NULL && g_strv_contains ((const char *const *) earlier, stored))
    return;
  if (earlier != NULL)
    g_strv_builder_addv (builder, (const char **) earlier);
  g_strv_builder_add (builder, stored);
  list = g_strv_builder_end (builder);
  g_key_file_set_string_list (journal, backend->name, k_earlier, (const char *const *) list,
                              g_strv_length (list));
}

/* Sets one backend's planned keys. A key that no longer holds what Pinhole set last time was
 * changed meanwhile; enable() was asked for Pinhole's values, so it still sets them. Each key
 * is read back: *@aliased is set when one reads back otherwise (see journal_add_alias()). */
static gboolean
apply_writes (GKeyFile *journal, PhProxyBackend *backend, GPtrArray *writes, gboolean *aliased,
              GError **error)
{
  for (guint i = 0; i < writes->len; i++)
    {
      PhProxyWrite *write = g_ptr_array_index (writes, i);
      g_autofree char *stored = NULL;

      if (!backend->vtable->write (backend, write->key, write->value, error))
        {
          g_prefix_error (error, "Cannot set %s %s: ", backend->name, write->key);
          return FALSE;
        }
      if (backend->vtable->read (backend, write->key, &stored, NULL) && stored != NULL
          && strcmp (stored, write->value) != 0)
        {
          g_debug ("%s %s set to %s reads back as %s", backend->name, write->key, write->value,
                   stored);
          journal_add_alias (journal, backend, write->key, stored);
          *aliased = TRUE;
        }
    }
  return backend->vtable->commit (backend, error);
}

/* enable() and enable_pac(): @pac_url NULL for the manual proxy at @host:@port. */
static gboolean
enable_mode (PhSystemProxy *sp, const char *host, guint port, const char *pac_url,
             const char *const *bypass, GError **error)
{
  g_autoptr (GKeyFile) journal = NULL;
  g_autoptr (GPtrArray) plans = g_ptr_array_new_with_free_func ((GDestroyNotify) g_ptr_array_unref);
  g_autofree char *url_host = NULL;
  g_autofree char *wanted = NULL;
  g_autofree char *bypass_text = NULL;
  g_autoptr (GError) local = NULL;
  const char *const empty[] = { NULL };
  gboolean aliased = FALSE;

  g_return_val_if_fail (sp != NULL, FALSE);

  if (bypass == NULL)
    bypass = empty;
  /* Already in place: writing it again would undo a change someone made
   * meanwhile, and cost a journal sync and (KDE) a process per key. */
  bypass_text = g_strjoinv ("\n", (GStrv) bypass);
  wanted = g_strdup_printf ("%s\n%u\n%s\n%s", host, port, pac_url ? pac_url : "", bypass_text);
  if (sp->journal != NULL && g_strcmp0 (wanted, sp->applied) == 0)
    return TRUE;
  if (!check_value ("the proxy host", host, error))
    return FALSE;
  if (pac_url != NULL
      && (!check_value ("the PAC URL", pac_url, error)
          || !(g_str_has_prefix (pac_url, "http://") || g_str_has_prefix (pac_url, "https://"))))
    {
      if (error != NULL && *error == NULL)
        g_set_error (error, PH_ERROR, PH_ERROR_FAILED,
                     "Cannot set the system proxy: the PAC URL “%s” is not an http:// URL",
                     pac_url);
      return FALSE;
    }
  if (port == 0 || port > 65535)
    {
      g_set_error (error, PH_ERROR, PH_ERROR_FAILED,
                   "Cannot set the system proxy: port %u is not between 1 and 65535", port);
      return FALSE;
    }
  for (guint i = 0; bypass[i] != NULL; i++)
    {
      if (!check_value ("the bypass entry", bypass[i], error))
        return FALSE;
    }
  if (sp->backends->len == 0)
    {
      g_set_error_literal (error, PH_ERROR, PH_ERROR_FAILED,
                           "Cannot set the system proxy: found neither GNOME's proxy setting "
                           "(the org.gnome.system.proxy schema) nor KDE's (kwriteconfig5 or "
                           "kwriteconfig6)");
      return FALSE;
    }
  /* Every backend pastes host and port together ("http://HOST:PORT", WinINet's "HOST:PORT"), so
   * an IPv6 literal needs brackets. */
  if (strchr (host, ':') != NULL && host[0] != '[')
    url_host = g_strdup_printf ("[%s]", host);
  else
    url_host = g_strdup (host);

  /* A journal already there is this run's (enable() again) or one a crash left that recover()
   * was not asked to put back: either way its previous values are the ones to keep, since the
   * settings now hold Pinhole's. */
  if (sp->journal != NULL)
    journal = g_key_file_ref (sp->journal);
  else if (!journal_load (sp, &journal, error))
    return FALSE;
  if (journal == NULL)
    {
      journal = g_key_file_new ();
      g_key_file_set_integer (journal, JOURNAL_GROUP, "version", JOURNAL_VERSION);
    }
  else
    {
      /* Edited in a copy: if the new journal cannot be saved, the old one still holds. */
      g_autofree char *data = g_key_file_to_data (journal, NULL, NULL);
      g_autoptr (GKeyFile) copy = g_key_file_new ();

      if (!g_key_file_load_from_data (copy, data, (gsize) -1, G_KEY_FILE_NONE, error))
        return FALSE;
      g_clear_pointer (&journal, g_key_file_unref);
      journal = g_steal_pointer (&copy);
    }

  for (guint i = 0; i < sp->backends->len; i++)
    {
      PhProxyBackend *backend = g_ptr_array_index (sp->backends, i);
      g_autoptr (GPtrArray) writes
          = g_ptr_array_new_with_free_func ((GDestroyNotify) ph_proxy_write_free);

      if (!backend->vtable->plan (backend, url_host, port, pac_url, bypass, writes, error))
        return FALSE;
      for (guint j = 0; j < writes->len; j++)
        {
          if (!journal_add (journal, backend, g_ptr_array_index (writes, j), error))
            {
              g_prefix_error (error, "Cannot read %s's proxy setting: ", backend->name);
              return FALSE;
            }
        }
      g_ptr_array_add (plans, g_steal_pointer (&writes));
    }

  /* For a person reading it: which mode Pinhole set last. What comes back is each key's
   * previous value, whatever the mode. */
  g_key_file_set_string (journal, JOURNAL_GROUP, "mode", pac_url != NULL ? "pac" : "manual");

  /* The one step that must come before any change: from here on, whatever happens to this
   * process, the next start knows what to put back. */
  if (!journal_save (sp, journal, error))
    return FALSE;
  g_clear_pointer (&sp->journal, g_key_file_unref);
  sp->journal = g_key_file_ref (journal);

  for (guint i = 0; i < sp->backends->len && local == NULL; i++)
    apply_writes (journal, g_ptr_array_index (sp->backends, i), g_ptr_array_index (plans, i),
                  &aliased, &local);
  /* The read-back forms too: without them a restart after a crash would take a key that holds
   * one for someone else's. */
  if (local == NULL && aliased)
    journal_save (sp, journal, &local);
  if (local != NULL)
    {
      g_autoptr (GError) undo = NULL;

      if (!restore (sp, journal, &undo))
        g_warning ("%s", undo->message);
      g_propagate_prefixed_error (error, g_steal_pointer (&local), "Cannot set the system proxy: ");
      return FALSE;
    }

  g_free (sp->applied);
  sp->applied = g_steal_pointer (&wanted);
  if (pac_url != NULL)
    g_message ("system proxy set to the PAC file %s", pac_url);
  else
    g_message ("system proxy set to %s:%u", url_host, port);
  return TRUE;
}

gboolean
ph_system_proxy_enable (PhSystemProxy *sp, const char *host, guint port, const char *const *bypass,
                        GError **error)
{
  return enable_mode (sp, host, port, NULL, bypass, error);
}

gboolean
ph_system_proxy_enable_pac (PhSystemProxy *sp, const char *pac_url, const char *const *bypass,
                            GError **error)
{
  g_autoptr (GUri) uri = NULL;

  g_return_val_if_fail (pac_url != NULL, FALSE);
  /* The host and port only pass enable_mode()'s checks; no backend writes them in this mode. */
  uri = g_uri_parse (pac_url, G_URI_FLAGS_NONE, NULL);
  return enable_mode (
      sp, uri != NULL && g_uri_get_host (uri) != NULL ? g_uri_get_host (uri) : "localhost",
      uri != NULL && g_uri_get_port (uri) > 0 ? (guint) g_uri_get_port (uri) : 80, pac_url, bypass,
      error);
}

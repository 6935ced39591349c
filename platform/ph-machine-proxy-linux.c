/* SPDX-License-Identifier: GPL-2.0-or-later */
/* ph-machine-proxy-linux.c: ph-machine-proxy.h on Linux (meson picks this file). One table of
 * the files each consumer writes, each with the function that makes its new content from the
 * current one; one journal (a key file in the service's state directory) of what each file held
 * before, written durably before the first change; and the running systemd manager's
 * environment (systemctl set-environment), which is all a DefaultEnvironment= drop-in cannot
 * reach before the next boot. */
#define G_LOG_DOMAIN "pinhole-machine-proxy"

#include "ph-error.h"
#include "ph-machine-proxy-private.h"

#include <errno.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <gio/gio.h>
#include <glib/gstdio.h>

#define FILE_GROUP_PREFIX "file:"
/* The running system manager's environment (systemctl set-environment). */
#define MANAGER_GROUP "manager"

/* The six variables /etc/environment and DefaultEnvironment= get; Docker reads the upper-case
 * ones. */
static const char *const proxy_vars[]
    = { "http_proxy", "https_proxy", "no_proxy", "HTTP_PROXY", "HTTPS_PROXY", "NO_PROXY", NULL };

static const char *const consumer_names[] = { "environment", "systemd", "apt", "docker", NULL };

/* Makes a file's new content from its current one (NULL: the file is not there). */
typedef char *(*PhRender) (const char *current, const char *url, const char *no_proxy);

typedef struct
{
  const char *consumer;
  const char *path; /* under $PINHOLE_MACHINE_ROOT when set */
  PhRender render;
  /* The file is not Pinhole's (only some of its lines are): when someone changed it since, the
   * lines that still hold Pinhole's values are put back one by one. */
  gboolean lines;
} PhFileDef;

static char *render_environment (const char *current, const char *url, const char *no_proxy);
static char *render_manager (const char *current, const char *url, const char *no_proxy);
static char *render_apt (const char *current, const char *url, const char *no_proxy);
static char *render_docker (const char *current, const char *url, const char *no_proxy);

static const PhFileDef file_defs[] = {
  { "environment", "/etc/environment", render_environment, TRUE },
  /* DefaultEnvironment= of the system manager and of every user manager, read when each starts:
   * the next boot, the next login. The running system manager gets set-environment. */
  { "systemd", "/etc/systemd/system.conf.d/pinhole-proxy.conf", render_manager, FALSE },
  { "systemd", "/etc/systemd/user.conf.d/pinhole-proxy.conf", render_manager, FALSE },
  { "apt", "/etc/apt/apt.conf.d/80pinhole-proxy", render_apt, FALSE },
  { "docker", "/etc/systemd/system/docker.service.d/pinhole-proxy.conf", render_docker, FALSE },
};

struct _PhMachineProxy
{
  char *journal_path;
  GKeyFile *journal; /* while Pinhole's values may be in place */
  char *applied;     /* apply()'s arguments while they are in place */
  char *url;         /* the proxy URL they hold */
};

/* ---- paths and commands ---- */

static const char *
machine_root (void)
{
  const char *root = g_getenv ("PINHOLE_MACHINE_ROOT");

  return root != NULL && *root != '\0' ? root : NULL;
}

static char *
full_path (const char *path)
{
  return machine_root () != NULL ? g_build_filename (machine_root (), path, NULL) : g_strdup (path);
}

/* systemctl, or NULL when the manager is not to be (or cannot be) asked: under a test root only
 * the stand-in $PINHOLE_SYSTEMCTL is ever run. */
static char *
systemctl_path (void)
{
  const char *override = g_getenv ("PINHOLE_SYSTEMCTL");

  if (override != NULL && *override != '\0')
    return g_strdup (override);
  if (machine_root () != NULL || !g_file_test ("/run/systemd/system", G_FILE_TEST_IS_DIR))
    return NULL;
  return g_find_program_in_path ("systemctl");
}

/* Runs systemctl with @args; *@out its standard output when asked for. */
static gboolean
systemctl (const char *const *args, char **out, GError **error)
{
  g_autofree char *path = systemctl_path ();
  g_autoptr (GPtrArray) argv = g_ptr_array_new ();
  g_autofree char *err = NULL;
  g_autofree char *stdout_text = NULL;
  int status = 0;

  if (path == NULL)
    {
      g_set_error_literal (error, PH_ERROR, PH_ERROR_FAILED, "systemd is not running");
      return FALSE;
    }
  g_ptr_array_add (argv, path);
  for (guint i = 0; args[i] != NULL; i++)
    g_ptr_array_add (argv, (gpointer) args[i]);
  g_ptr_array_add (argv, NULL);
  if (!g_spawn_sync (NULL, (char **) argv->pdata, NULL, G_SPAWN_DEFAULT, NULL, NULL, &stdout_text,
                     &err, &status, error))
    return FALSE;
  if (!g_spawn_check_wait_status (status, NULL))
    {
      g_set_error (error, PH_ERROR, PH_ERROR_FAILED, "systemctl %s failed: %s", args[0],
                   g_strstrip (err));
      return FALSE;
    }
  if (out != NULL)
    *out = g_steal_pointer (&stdout_text);
  return TRUE;
}

static gboolean
systemctl_path_usable (void)
{
  g_autofree char *path = systemctl_path ();

  return path != NULL;
}

static gboolean
docker_present (void)
{
  const char *const args[] = { "show", "-p", "LoadState", "--value", "docker.service", NULL };
  g_autofree char *out = NULL;

  return systemctl (args, &out, NULL) && g_str_equal (g_strstrip (out), "loaded");
}

/* ---- renders ---- */

static const char *
var_value (const char *var, const char *url, const char *no_proxy)
{
  return g_ascii_strcasecmp (var, "no_proxy") == 0 ? no_proxy : url;
}

/* The variable a line of /etc/environment sets ("export " allowed, as pam_env allows it), or
 * NULL. */
static char *
line_var (const char *line)
{
  const char *p = line, *start;

  while (*p == ' ' || *p == '\t')
    p++;
  if (g_str_has_prefix (p, "export ") || g_str_has_prefix (p, "export\t"))
    for (p += 7; *p == ' ' || *p == '\t'; p++)
      ;
  start = p;
  if (!(g_ascii_isalpha (*p) || *p == '_'))
    return NULL;
  while (g_ascii_isalnum (*p) || *p == '_')
    p++;
  return *p == '=' ? g_strndup (start, (gsize) (p - start)) : NULL;
}

/* @text's lines without their "\n"; *@final_newline whether the last one had one. */
static GPtrArray *
split_lines (const char *text, gboolean *final_newline)
{
  GPtrArray *lines = g_ptr_array_new_with_free_func (g_free);
  g_auto (GStrv) parts = NULL;
  guint n;

  *final_newline = text == NULL || *text == '\0' || g_str_has_suffix (text, "\n");
  if (text == NULL || *text == '\0')
    return lines;
  parts = g_strsplit (text, "\n", -1);
  n = g_strv_length (parts);
  if (*final_newline)
    n--; /* the empty string after the last "\n" */
  for (guint i = 0; i < n; i++)
    g_ptr_array_add (lines, g_strdup (parts[i]));
  return lines;
}

static char *
join_lines (GPtrArray *lines, gboolean final_newline)
{
  GString *out = g_string_new (NULL);

  for (guint i = 0; i < lines->len; i++)
    {
      if (i > 0)
        g_string_append_c (out, '\n');
      g_string_append (out, g_ptr_array_index (lines, i));
    }
  if (final_newline && lines->len > 0)
    g_string_append_c (out, '\n');
  return g_string_free (out, FALSE);
}

/* The index of the first line setting @var, -1 when none does. */
static gint
find_var (GPtrArray *lines, const char *var)
{
  for (guint i = 0; i < lines->len; i++)
    {
      g_autofree char *name = line_var (g_ptr_array_index (lines, i));
      if (g_strcmp0 (name, var) == 0)
        return (gint) i;
    }
  return -1;
}

/* /etc/environment: each variable's first line replaced (later ones for it dropped, so that
 * Pinhole's value is the one pam_env keeps), a missing one added at the end; every other line as
 * it was. */
static char *
render_environment (const char *current, const char *url, const char *no_proxy)
{
  gboolean final_newline;
  g_autoptr (GPtrArray) lines = split_lines (current, &final_newline);

  for (guint v = 0; proxy_vars[v] != NULL; v++)
    {
      char *line
          = g_strdup_printf ("%s=%s", proxy_vars[v], var_value (proxy_vars[v], url, no_proxy));
      gint first = find_var (lines, proxy_vars[v]);

      if (first < 0)
        {
          g_ptr_array_add (lines, line);
          final_newline = TRUE;
          continue;
        }
      g_free (lines->pdata[first]);
      lines->pdata[first] = line;
      for (guint i = (guint) first + 1; i < lines->len;)
        {
          g_autofree char *name = line_var (g_ptr_array_index (lines, i));
          if (g_strcmp0 (name, proxy_vars[v]) == 0)
            g_ptr_array_remove_index (lines, i);
          else
            i++;
        }
    }
  return join_lines (lines, final_newline);
}

#define WRITTEN_BY                                                                                 \
  "Written by Pinhole while its tunnel is on ([system-proxy] machine=); Pinhole removes it when "  \
  "the tunnel goes off."

static char *
quoted_assignments (const char *const *vars, const char *url, const char *no_proxy)
{
  GString *out = g_string_new (NULL);

  for (guint v = 0; vars[v] != NULL; v++)
    g_string_append_printf (out, "%s\"%s=%s\"", v > 0 ? " " : "", vars[v],
                            var_value (vars[v], url, no_proxy));
  return g_string_free (out, FALSE);
}

static char *
render_manager (const char *current, const char *url, const char *no_proxy)
{
  g_autofree char *env = quoted_assignments (proxy_vars, url, no_proxy);

  return g_strdup_printf ("# %s\n[Manager]\nDefaultEnvironment=%s\n", WRITTEN_BY, env);
}

static char *
render_docker (const char *current, const char *url, const char *no_proxy)
{
  const char *const vars[] = { "HTTP_PROXY", "HTTPS_PROXY", "NO_PROXY", NULL };
  g_autofree char *env = quoted_assignments (vars, url, no_proxy);

  return g_strdup_printf ("# %s\n[Service]\nEnvironment=%s\n", WRITTEN_BY, env);
}

static char *
render_apt (const char *current, const char *url, const char *no_proxy)
{
  return g_strdup_printf ("// %s\nAcquire::http::Proxy \"%s/\";\nAcquire::https::Proxy \"%s/\";\n",
                          WRITTEN_BY, url, url);
}

/* ---- files ---- */

static gboolean
read_file (const char *path, char **content, GError **error)
{
  g_autoptr (GError) local = NULL;

  *content = NULL;
  if (g_file_get_contents (path, content, NULL, &local))
    return TRUE;
  /* ENOTDIR: something that is not a directory where one of the file's would be. */
  if (g_error_matches (local, G_FILE_ERROR, G_FILE_ERROR_NOENT)
      || g_error_matches (local, G_FILE_ERROR, G_FILE_ERROR_NOTDIR))
    return TRUE;
  g_propagate_error (error, g_steal_pointer (&local));
  return FALSE;
}

/* Writes @content to @path, with the mode the file had (0644 when new). */
static gboolean
write_file (const char *path, const char *content, GError **error)
{
  g_autofree char *dir = g_path_get_dirname (path);
  GStatBuf st;
  int mode = g_stat (path, &st) == 0 ? (int) (st.st_mode & 07777) : 0644;

  if (g_mkdir_with_parents (dir, 0755) != 0)
    {
      int saved = errno;
      g_set_error (error, PH_ERROR, PH_ERROR_FAILED, "Cannot create %s: %s", dir,
                   g_strerror (saved));
      return FALSE;
    }
  return g_file_set_contents_full (
      path, content, -1, G_FILE_SET_CONTENTS_CONSISTENT | G_FILE_SET_CONTENTS_DURABLE, mode, error);
}

static gboolean
remove_file (const char *path, GError **error)
{
  if (g_unlink (path) != 0 && errno != ENOENT)
    {
      int saved = errno;
      g_set_error (error, PH_ERROR, PH_ERROR_FAILED, "Cannot remove %s: %s", path,
                   g_strerror (saved));
      return FALSE;
    }
  return TRUE;
}

/* The topmost missing directory above @path (full), NULL when its directory is there. */
static char *
first_missing_dir (const char *path)
{
  g_autofree char *dir = g_path_get_dirname (path);
  char *missing = NULL;

  while (!g_file_test (dir, G_FILE_TEST_EXISTS))
    {
      char *parent = g_path_get_dirname (dir);
      g_free (missing);
      missing = g_steal_pointer (&dir);
      if (g_str_equal (parent, missing))
        {
          g_free (parent);
          break;
        }
      dir = parent;
    }
  return missing;
}

/* Removes the directories apply() made for @path, up to @top, while they are empty. */
static void
remove_made_dirs (const char *path, const char *top)
{
  g_autofree char *dir = g_path_get_dirname (path);

  while (g_str_has_prefix (dir, top) && g_rmdir (dir) == 0)
    {
      char *parent;
      if (g_str_equal (dir, top))
        break;
      parent = g_path_get_dirname (dir);
      g_free (dir);
      dir = parent;
    }
}

/* ---- the journal ---- */

static char *
file_group (const PhFileDef *def)
{
  return g_strconcat (FILE_GROUP_PREFIX, def->path, NULL);
}

static char *
b64 (const char *text)
{
  return ph_machine_journal_encode (text, strlen (text));
}

static char *
unb64 (const char *text)
{
  return ph_machine_journal_decode (text, NULL);
}

/* Every content Pinhole wrote to the file of @group, decoded. */
static GStrv
journal_sets (GKeyFile *journal, const char *group)
{
  return ph_machine_journal_list_decoded (journal, group, "set");
}

static gboolean
journal_load (PhMachineProxy *mp, GKeyFile **journal, GError **error)
{
  return ph_machine_journal_load (mp->journal_path, journal, error);
}

/* The journal on disk, durably, before the caller changes a file. */
static gboolean
journal_save (PhMachineProxy *mp, GKeyFile *journal, GError **error)
{
  return ph_machine_journal_save (mp->journal_path, journal, error);
}

/* The journal says what to write to root's files: one that is not this user's own (written by
 * the unprivileged service, say, and read by root's ExecStopPost=) is not followed. */
gboolean
ph_machine_journal_check_owner (const char *path, GError **error)
{
  GStatBuf st;

  if (g_stat (path, &st) == 0 && st.st_uid != geteuid ())
    {
      g_set_error (error, PH_ERROR, PH_ERROR_PERMISSION_DENIED,
                   "Cannot use the machine-proxy journal %s: it belongs to uid %u, not to this "
                   "process's %u",
                   path, (guint) st.st_uid, (guint) geteuid ());
      return FALSE;
    }
  return TRUE;
}

static gboolean
consumer_in (const char *consumer, const char *const *consumers)
{
  return consumers != NULL && g_strv_contains (consumers, consumer);
}

static void
keep_first_error (GError **first, GError *error)
{
  if (*first == NULL)
    *first = error;
  else
    {
      g_warning ("%s", error->message);
      g_error_free (error);
    }
}

/* ---- restoring ---- */

/* /etc/environment changed by someone since Pinhole wrote it: each variable whose line still
 * holds one of Pinhole's lines gets its previous line back (or loses it); the rest stays. */
static char *
restore_lines (const char *path, const char *current, const char *previous, const char *const *sets)
{
  gboolean final_newline, prev_newline;
  g_autoptr (GPtrArray) lines = split_lines (current, &final_newline);
  g_autoptr (GPtrArray) before = split_lines (previous, &prev_newline);
  gboolean changed = FALSE;

  for (guint v = 0; proxy_vars[v] != NULL; v++)
    {
      gint at = find_var (lines, proxy_vars[v]);
      gint was = find_var (before, proxy_vars[v]);
      gboolean ours = FALSE;

      if (at < 0)
        continue;
      for (guint s = 0; sets[s] != NULL && !ours; s++)
        {
          gboolean nl;
          g_autoptr (GPtrArray) set_lines = split_lines (sets[s], &nl);
          gint mine = find_var (set_lines, proxy_vars[v]);
          ours
              = mine >= 0
                && g_str_equal (g_ptr_array_index (set_lines, mine), g_ptr_array_index (lines, at));
        }
      if (!ours)
        {
          g_message ("%s: %s was changed since Pinhole set it; left as it is", path, proxy_vars[v]);
          continue;
        }
      changed = TRUE;
      if (was >= 0)
        {
          g_free (lines->pdata[at]);
          lines->pdata[at] = g_strdup (g_ptr_array_index (before, was));
        }
      else
        g_ptr_array_remove_index (lines, (guint) at);
    }
  return changed ? join_lines (lines, final_newline) : NULL;
}

/* Puts back one file of the journal. *@changed when the file was changed. */
static gboolean
restore_file (GKeyFile *journal, const PhFileDef *def, gboolean *changed, GError **error)
{
  g_autofree char *group = file_group (def);
  g_autofree char *path = full_path (def->path);
  g_autofree char *current = NULL;
  g_autofree char *previous = NULL;
  g_autofree char *previous_b64 = g_key_file_get_string (journal, group, "previous", NULL);
  g_autofree char *made_dir = g_key_file_get_string (journal, group, "made-dir", NULL);
  g_auto (GStrv) sets = journal_sets (journal, group);

  *changed = FALSE;
  if (!read_file (path, &current, error))
    return FALSE;
  if (previous_b64 != NULL)
    previous = unb64 (previous_b64);
  if (current != NULL && g_strv_contains ((const char *const *) sets, current))
    {
      *changed = TRUE;
      if (previous != NULL)
        {
          if (!write_file (path, previous, error))
            return FALSE;
        }
      else
        {
          g_autofree char *top = made_dir != NULL ? full_path (made_dir) : NULL;

          if (!remove_file (path, error))
            return FALSE;
          if (top != NULL)
            remove_made_dirs (path, top);
        }
      g_message ("%s put back as it was", path);
      return TRUE;
    }
  if (current == NULL)
    {
      g_message ("%s was removed since Pinhole wrote it; left so", path);
      return TRUE;
    }
  if (def->lines)
    {
      g_autofree char *merged = restore_lines (path, current, previous, (const char *const *) sets);

      if (merged == NULL)
        return TRUE;
      *changed = TRUE;
      return write_file (path, merged, error);
    }
  g_message ("%s was changed since Pinhole wrote it; left as it is", path);
  return TRUE;
}

/* The running manager's environment as "VAR" -> "value". */
static GHashTable *
manager_environment (GError **error)
{
  const char *const args[] = { "show-environment", NULL };
  g_autofree char *out = NULL;
  g_auto (GStrv) lines = NULL;
  GHashTable *env;

  if (!systemctl (args, &out, error))
    return NULL;
  env = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, g_free);
  lines = g_strsplit (out, "\n", -1);
  for (guint i = 0; lines[i] != NULL; i++)
    {
      const char *eq = strchr (lines[i], '=');
      if (eq != NULL)
        g_hash_table_insert (env, g_strndup (lines[i], (gsize) (eq - lines[i])), g_strdup (eq + 1));
    }
  return env;
}

/* Runs "systemctl set-environment"/"unset-environment" with @assignments when there are any. */
static gboolean
manager_change (const char *verb, GPtrArray *assignments, GError **error)
{
  g_autoptr (GPtrArray) args = g_ptr_array_new ();

  if (assignments->len == 0)
    return TRUE;
  g_ptr_array_add (args, (gpointer) verb);
  for (guint i = 0; i < assignments->len; i++)
    g_ptr_array_add (args, g_ptr_array_index (assignments, i));
  g_ptr_array_add (args, NULL);
  return systemctl ((const char *const *) args->pdata, NULL, error);
}

static gboolean
restore_manager (GKeyFile *journal, GError **error)
{
  g_autoptr (GHashTable) env = NULL;
  g_autoptr (GPtrArray) set = g_ptr_array_new_with_free_func (g_free);
  g_autoptr (GPtrArray) unset = g_ptr_array_new_with_free_func (g_free);

  if (!g_key_file_has_group (journal, MANAGER_GROUP))
    return TRUE;
  env = manager_environment (error);
  if (env == NULL)
    return FALSE;
  for (guint v = 0; proxy_vars[v] != NULL; v++)
    {
      g_autofree char *k_set = g_strconcat (proxy_vars[v], ".set", NULL);
      g_autofree char *k_prev = g_strconcat (proxy_vars[v], ".previous", NULL);
      g_auto (GStrv) sets = g_key_file_get_string_list (journal, MANAGER_GROUP, k_set, NULL, NULL);
      g_autofree char *previous = g_key_file_get_string (journal, MANAGER_GROUP, k_prev, NULL);
      const char *now = g_hash_table_lookup (env, proxy_vars[v]);

      if (sets == NULL || now == NULL)
        continue;
      if (!g_strv_contains ((const char *const *) sets, now))
        {
          g_message ("the system manager's %s was changed since Pinhole set it; left as it is",
                     proxy_vars[v]);
          continue;
        }
      if (previous != NULL)
        g_ptr_array_add (set, g_strdup_printf ("%s=%s", proxy_vars[v], previous));
      else
        g_ptr_array_add (unset, g_strdup (proxy_vars[v]));
    }
  if (!manager_change ("set-environment", set, error)
      || !manager_change ("unset-environment", unset, error))
    return FALSE;
  if (set->len + unset->len > 0)
    g_message ("the system manager's environment put back");
  return TRUE;
}

/* After a drop-in changed: systemd reads them again. For Docker's, only when Docker is here;
 * Docker itself is not restarted: that would stop its containers (unless live-restore is on),
 * so the admin chooses when. For the manager's DefaultEnvironment= (@manager): current systemd
 * re-reads it at daemon-reload (older versions only when they start), so once the drop-ins are
 * gone a manager that read them meanwhile (anyone's daemon-reload) forgets Pinhole's values. */
static void
systemd_reload (gboolean docker, gboolean manager)
{
  const char *const args[] = { "daemon-reload", NULL };
  g_autoptr (GError) error = NULL;

  docker = docker && docker_present ();
  if (!docker && !(manager && systemctl_path_usable ()))
    {
      g_debug ("no daemon-reload: no docker.service, no manager to tell");
      return;
    }
  if (!systemctl (args, NULL, &error))
    g_warning ("could not reload systemd after its drop-ins changed: %s", error->message);
  else if (docker)
    g_message ("Docker's proxy drop-in changed; it applies when Docker restarts "
               "(systemctl restart docker)");
}

/* Puts back the files of the consumers in the journal that @keep does not list (all with @keep
 * NULL), and their groups go from the journal. */
static gboolean
restore_groups (GKeyFile *journal, const char *const *keep, GError **error)
{
  GError *first = NULL;
  gboolean docker_changed = FALSE, manager_changed = FALSE;

  for (gsize i = 0; i < G_N_ELEMENTS (file_defs); i++)
    {
      const PhFileDef *def = &file_defs[i];
      g_autofree char *group = file_group (def);
      GError *local = NULL;
      gboolean changed = FALSE;

      if (!g_key_file_has_group (journal, group) || consumer_in (def->consumer, keep))
        continue;
      if (!restore_file (journal, def, &changed, &local))
        {
          g_prefix_error (&local, "Cannot put back %s: ", def->path);
          keep_first_error (&first, local);
          continue;
        }
      if (changed && g_str_equal (def->consumer, "docker"))
        docker_changed = TRUE;
      if (changed && g_str_equal (def->consumer, "systemd"))
        manager_changed = TRUE;
      g_key_file_remove_group (journal, group, NULL);
    }
  if (!consumer_in ("systemd", keep) && g_key_file_has_group (journal, MANAGER_GROUP))
    {
      GError *local = NULL;

      if (!restore_manager (journal, &local))
        {
          g_prefix_error (&local, "Cannot put back the system manager's environment: ");
          keep_first_error (&first, local);
        }
      else
        g_key_file_remove_group (journal, MANAGER_GROUP, NULL);
    }
  if (manager_changed || docker_changed)
    systemd_reload (docker_changed, manager_changed);
  if (first != NULL)
    {
      g_propagate_error (error, first);
      return FALSE;
    }
  return TRUE;
}

static gboolean
restore_all (PhMachineProxy *mp, GKeyFile *journal, GError **error)
{
  g_autoptr (GError) local = NULL;

  if (!restore_groups (journal, NULL, &local))
    {
      /* What was put back leaves the journal; the rest waits for another try. */
      journal_save (mp, journal, NULL);
      g_propagate_error (error, g_steal_pointer (&local));
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
  g_clear_pointer (&mp->url, g_free);
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
  g_free (mp->url);
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
  else if (!journal_load (mp, &journal, error))
    return FALSE;
  if (journal == NULL)
    return TRUE;
  if (!restore_all (mp, journal, error))
    return FALSE;
  g_message ("machine-wide proxy settings restored");
  return TRUE;
}

/* The manager's previous values and Pinhole's into the journal; FALSE when there is no manager
 * to ask (then only the drop-ins apply, at the next boot). */
static gboolean
journal_manager (GKeyFile *journal, const char *url, const char *no_proxy)
{
  g_autoptr (GError) error = NULL;
  g_autoptr (GHashTable) env = manager_environment (&error);

  if (env == NULL)
    {
      g_debug ("the running manager's environment is left alone: %s", error->message);
      return FALSE;
    }
  for (guint v = 0; proxy_vars[v] != NULL; v++)
    {
      g_autofree char *k_set = g_strconcat (proxy_vars[v], ".set", NULL);
      g_autofree char *k_prev = g_strconcat (proxy_vars[v], ".previous", NULL);
      const char *now = g_hash_table_lookup (env, proxy_vars[v]);

      if (!g_key_file_has_key (journal, MANAGER_GROUP, k_set, NULL) && now != NULL)
        g_key_file_set_string (journal, MANAGER_GROUP, k_prev, now);
      ph_machine_journal_list_add (journal, MANAGER_GROUP, k_set,
                                   var_value (proxy_vars[v], url, no_proxy));
    }
  return TRUE;
}

gboolean
ph_machine_proxy_apply (PhMachineProxy *mp, const char *const *consumers, guint port,
                        const char *direct, GError **error)
{
  g_autoptr (GKeyFile) journal = NULL;
  g_autofree char *url = NULL;
  g_autofree char *no_proxy = NULL;
  g_autofree char *wanted = NULL;
  g_autofree char *list = NULL;
  g_auto (GStrv) here = NULL;
  g_autoptr (GPtrArray) contents = g_ptr_array_new_with_free_func (g_free);
  g_autoptr (GError) local = NULL;
  gboolean manager = FALSE, docker_changed = FALSE;

  g_return_val_if_fail (port > 0 && port <= 65535, FALSE);
  /* Another system's consumers (winhttp) are not this one's business. */
  here = ph_machine_proxy_this_system (consumers, error);
  if (here == NULL)
    return FALSE;
  consumers = (const char *const *) here;
  list = g_strjoinv (",", here);
  wanted = g_strdup_printf ("%s\n%u\n%s", list, port, direct != NULL ? direct : "");
  if (mp->journal != NULL && g_strcmp0 (wanted, mp->applied) == 0)
    return TRUE;
  if (*list == '\0')
    return ph_machine_proxy_restore (mp, error);

  url = g_strdup_printf ("http://127.0.0.1:%u", port);
  no_proxy = ph_machine_proxy_no_proxy (direct);
  if (mp->journal != NULL)
    journal = g_key_file_ref (mp->journal);
  else if (!journal_load (mp, &journal, error))
    return FALSE;
  if (journal == NULL)
    {
      journal = g_key_file_new ();
      g_key_file_set_integer (journal, PH_MACHINE_JOURNAL_GROUP, "version",
                              PH_MACHINE_JOURNAL_VERSION);
    }

  /* Consumers no longer asked for go back first. */
  if (!restore_groups (journal, consumers, error) || !journal_save (mp, journal, error))
    return FALSE;

  for (gsize i = 0; i < G_N_ELEMENTS (file_defs); i++)
    {
      const PhFileDef *def = &file_defs[i];
      g_autofree char *group = file_group (def);
      g_autofree char *path = full_path (def->path);
      g_autofree char *current = NULL;
      g_autofree char *encoded = NULL;
      char *content;

      if (!consumer_in (def->consumer, consumers))
        {
          g_ptr_array_add (contents, NULL);
          continue;
        }
      if (!read_file (path, &current, error))
        return FALSE;
      if (!g_key_file_has_group (journal, group))
        {
          g_autofree char *made = first_missing_dir (path);

          g_key_file_set_string (journal, group, "consumer", def->consumer);
          if (current != NULL)
            {
              g_autofree char *previous = b64 (current);
              g_key_file_set_string (journal, group, "previous", previous);
            }
          if (made != NULL)
            g_key_file_set_string (journal, group, "made-dir",
                                   made + (machine_root () != NULL ? strlen (machine_root ()) : 0));
        }
      content = def->render (current, url, no_proxy);
      encoded = b64 (content);
      ph_machine_journal_list_add (journal, group, "set", encoded);
      /* Already what Pinhole wants: not written again. */
      if (g_strcmp0 (current, content) == 0)
        {
          g_free (content);
          content = NULL;
        }
      g_ptr_array_add (contents, content);
    }
  if (consumer_in ("systemd", consumers))
    manager = journal_manager (journal, url, no_proxy);

  /* The one step that must come first: from here on the next start knows what to put back. */
  if (!journal_save (mp, journal, error))
    return FALSE;
  g_clear_pointer (&mp->journal, g_key_file_unref);
  mp->journal = g_key_file_ref (journal);

  for (gsize i = 0; i < G_N_ELEMENTS (file_defs) && local == NULL; i++)
    {
      g_autofree char *path = full_path (file_defs[i].path);
      const char *content = g_ptr_array_index (contents, i);

      if (content == NULL)
        continue;
      if (write_file (path, content, &local))
        {
          g_message ("%s points at %s", path, url);
          if (g_str_equal (file_defs[i].consumer, "docker"))
            docker_changed = TRUE;
        }
      else
        g_prefix_error (&local, "Cannot write %s: ", path);
    }
  if (local == NULL && manager)
    {
      g_autoptr (GPtrArray) assignments = g_ptr_array_new_with_free_func (g_free);

      for (guint v = 0; proxy_vars[v] != NULL; v++)
        g_ptr_array_add (assignments, g_strdup_printf ("%s=%s", proxy_vars[v],
                                                       var_value (proxy_vars[v], url, no_proxy)));
      if (manager_change ("set-environment", assignments, &local))
        g_message ("the system manager's environment points at %s", url);
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
  if (docker_changed)
    systemd_reload (TRUE, FALSE);
  g_free (mp->applied);
  mp->applied = g_steal_pointer (&wanted);
  g_free (mp->url);
  mp->url = g_steal_pointer (&url);
  return TRUE;
}

/* The proxy URL @def's file holds now when it is one Pinhole wrote, else NULL; *@changed when
 * the journal lists the file and it holds something else. */
static char *
file_points_at (GKeyFile *journal, const PhFileDef *def, gboolean *changed)
{
  g_autofree char *group = file_group (def);
  g_autofree char *path = full_path (def->path);
  g_autofree char *current = NULL;
  g_auto (GStrv) sets = NULL;
  const char *at;

  if (journal == NULL || !g_key_file_has_group (journal, group))
    return NULL;
  sets = journal_sets (journal, group);
  if (!read_file (path, &current, NULL) || current == NULL
      || !g_strv_contains ((const char *const *) sets, current))
    {
      *changed = TRUE;
      return NULL;
    }
  at = strstr (current, "http://127.0.0.1:");
  return at != NULL ? g_strndup (at, strspn (at + 17, "0123456789") + 17) : NULL;
}

GVariant *
ph_machine_proxy_dup_status (PhMachineProxy *mp, const char *const *consumers)
{
  GVariantBuilder all;
  g_autoptr (GKeyFile) journal = NULL;

  if (mp->journal != NULL)
    journal = g_key_file_ref (mp->journal);
  else
    journal_load (mp, &journal, NULL);
  g_variant_builder_init (&all, G_VARIANT_TYPE ("aa{sv}"));
  for (guint c = 0; consumer_names[c] != NULL; c++)
    {
      GVariantBuilder one, files;
      g_autofree char *points_at = NULL;
      gboolean changed = FALSE, applied = TRUE, any = FALSE;
      const char *note = "";

      g_variant_builder_init (&files, G_VARIANT_TYPE ("as"));
      for (gsize i = 0; i < G_N_ELEMENTS (file_defs); i++)
        {
          g_autofree char *at = NULL;
          g_autofree char *path = NULL;

          if (!g_str_equal (file_defs[i].consumer, consumer_names[c]))
            continue;
          path = full_path (file_defs[i].path);
          g_variant_builder_add (&files, "s", path);
          at = file_points_at (journal, &file_defs[i], &changed);
          any = TRUE;
          applied = applied && at != NULL;
          if (at != NULL && points_at == NULL)
            points_at = g_steal_pointer (&at);
        }
      applied = applied && any;
      if (changed)
        note = "changed";
      else if (applied && g_str_equal (consumer_names[c], "docker"))
        note = docker_present () ? "restart-docker" : "no-docker";
      g_variant_builder_init (&one, G_VARIANT_TYPE_VARDICT);
      g_variant_builder_add (&one, "{sv}", "name", g_variant_new_string (consumer_names[c]));
      g_variant_builder_add (&one, "{sv}", "configured",
                             g_variant_new_boolean (consumer_in (consumer_names[c], consumers)));
      g_variant_builder_add (&one, "{sv}", "applied", g_variant_new_boolean (applied));
      g_variant_builder_add (&one, "{sv}", "points-at",
                             g_variant_new_string (applied && points_at ? points_at : ""));
      g_variant_builder_add (&one, "{sv}", "files", g_variant_builder_end (&files));
      g_variant_builder_add (&one, "{sv}", "note", g_variant_new_string (note));
      g_variant_builder_add_value (&all, g_variant_builder_end (&one));
    }
  ph_machine_proxy_add_other_systems (&all, consumers);
  return g_variant_ref_sink (g_variant_builder_end (&all));
}

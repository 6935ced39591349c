/* SPDX-License-Identifier: GPL-2.0-or-later */
/* ph-ctl-connections.c: what goes through the tunnel, from pinholectl: "connections" (each open
 * client connection, from GetConnections) and "report" (the support report of ph-report.h, with
 * the agent's last log lines). */
#define G_LOG_DOMAIN "pinhole-ctl"

#include "ph-ctl.h"
#include "ph-ctl-json.h"
#include "ph-ctl-output.h"
#include "ph-report.h"
#include "ph-service.h"

#include <glib/gi18n.h>

/* The oldest first: long tunnels, what one usually looks for, head the list. */
static gint
compare_age (gconstpointer a, gconstpointer b)
{
  gint64 age_a = ph_dict_int64 (*(GVariant *const *) a, "age-seconds");
  gint64 age_b = ph_dict_int64 (*(GVariant *const *) b, "age-seconds");

  return age_a < age_b ? 1 : age_a > age_b ? -1 : 0;
}

/* "0:00:07", "1:02:03": hours need no unit to translate. */
static char *
format_age (guint64 seconds)
{
  return g_strdup_printf ("%" G_GUINT64_FORMAT ":%02u:%02u", seconds / 3600,
                          (guint) (seconds / 60 % 60), (guint) (seconds % 60));
}

gboolean
ph_ctl_cmd_connections (PhCtl *ctl, char **args, GError **error)
{
  g_autoptr (GVariant) conns = NULL;
  g_autoptr (GPtrArray) rows = g_ptr_array_new_with_free_func ((GDestroyNotify) g_variant_unref);
  GVariantIter iter;
  GVariant *conn;

  if (!ph_ctl_connect (ctl, error)
      || !ph_agent1_call_get_connections_sync (ctl->agent, &conns, NULL, error))
    return FALSE;
  g_variant_iter_init (&iter, conns);
  while ((conn = g_variant_iter_next_value (&iter)) != NULL)
    g_ptr_array_add (rows, conn);
  g_ptr_array_sort (rows, compare_age);

  if (ctl->json)
    {
      g_autoptr (PhJson) j = ph_json_new ();

      ph_json_begin_array (j);
      for (guint i = 0; i < rows->len; i++)
        ph_json_add_variant (j, g_ptr_array_index (rows, i));
      ph_json_end_array (j);
      ph_json_print (j);
      return TRUE;
    }
  else
    {
      g_autoptr (GString) out = g_string_new (NULL);
      /* TRANSLATORS: column headings of "pinholectl connections"; UP and DOWN are bytes sent
       * and received, AGE how long the connection has been open */
      const char *heading[] = { _ ("CLIENT"), _ ("TARGET"), _ ("ROUTE"), _ ("CLOUD PROXY"),
                                _ ("UP"),     _ ("DOWN"),   _ ("AGE") };
      enum
      {
        N_COLUMNS = G_N_ELEMENTS (heading)
      };
      g_autoptr (GPtrArray) cells = g_ptr_array_new_with_free_func (g_free);
      glong width[N_COLUMNS];

      if (rows->len == 0)
        {
          g_print ("%s\n", _ ("No open connections."));
          return TRUE;
        }
      for (guint c = 0; c < N_COLUMNS; c++)
        width[c] = ph_text_width (heading[c]);
      for (guint i = 0; i < rows->len; i++)
        {
          GVariant *row = g_ptr_array_index (rows, i);
          const char *target = ph_dict_string (row, "target");
          const char *proxy = ph_dict_string (row, "proxy");
          const char *route = ph_dict_string (row, "route");

          g_ptr_array_add (cells, g_strdup (ph_dict_string (row, "client")));
          g_ptr_array_add (cells, g_strdup (*target != '\0' ? target : "-"));
          g_ptr_array_add (cells, g_strdup (*route != '\0' ? route : "-"));
          g_ptr_array_add (cells, g_strdup (*proxy != '\0' ? proxy : "-"));
          g_ptr_array_add (cells, g_format_size ((guint64) ph_dict_int64 (row, "bytes-up")));
          g_ptr_array_add (cells, g_format_size ((guint64) ph_dict_int64 (row, "bytes-down")));
          g_ptr_array_add (cells, format_age ((guint64) ph_dict_int64 (row, "age-seconds")));
          for (guint c = 0; c < N_COLUMNS; c++)
            width[c] = MAX (width[c], ph_text_width (g_ptr_array_index (cells, i * N_COLUMNS + c)));
        }
      for (guint c = 0; c < N_COLUMNS; c++)
        ph_table_cell (out, heading[c], width[c], c == N_COLUMNS - 1);
      ph_end_line (out, 0);
      for (guint i = 0; i < rows->len; i++)
        {
          gsize start = out->len;

          for (guint c = 0; c < N_COLUMNS; c++)
            ph_table_cell (out, g_ptr_array_index (cells, i * N_COLUMNS + c), width[c],
                           c == N_COLUMNS - 1);
          ph_end_line (out, start);
        }
      g_print ("%s", out->str);
    }
  return TRUE;
}

/* The last @lines lines of the file at @path. */
static char *
read_tail (const char *path, guint lines, GError **error)
{
  g_autofree char *text = NULL;
  gsize len = 0;
  const char *start;

  if (!g_file_get_contents (path, &text, &len, error))
    return NULL;
  start = text + len;
  if (start > text && start[-1] == '\n')
    start--;
  while (start > text && !(start[-1] == '\n' && --lines == 0))
    start--;
  return g_strndup (start, (gsize) (text + len - start));
}

gboolean
ph_ctl_cmd_report (PhCtl *ctl, char **args, GError **error)
{
  g_autoptr (GError) log_error = NULL;
  g_autofree char *log = NULL;
  g_autofree char *note = NULL;
  const char *mode;

  if (!ph_ctl_connect (ctl, error) || !ph_ctl_load_properties (ctl, error))
    return FALSE;
  mode = ph_agent1_get_mode (ctl->agent);
  /* An agent started by hand logs where its stderr went: the caller names that file. */
  if (args[1] != NULL)
    log = read_tail (args[1], PH_REPORT_LOG_LINES, &log_error);
  else if (g_strcmp0 (mode, "system") == 0 || g_strcmp0 (mode, "session") == 0)
    log = ph_service_read_log (g_str_equal (mode, "system"), PH_REPORT_LOG_LINES, &log_error);
  else
    note = g_strdup_printf ("the agent runs in mode %s, not as a service: its log is where it "
                            "was started; name that file after the report's",
                            mode != NULL ? mode : "?");
  if (log_error != NULL)
    note = g_strdup_printf ("the log could not be read: %s", log_error->message);
  /* The report's own text stays English: it goes to a support desk. */
  if (!ph_report_write (ctl->agent, args[0], log, note, error))
    return FALSE;
  g_print (_ ("Support report written to %s\n"), args[0]);
  return TRUE;
}

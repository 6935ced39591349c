/* SPDX-License-Identifier: GPL-2.0-or-later */
/* ph-tray-report.c: the tray's support report. The agent's answers come through the same
 * proxy the tray uses (GDBus proxies may be called from any thread); the log is read where the
 * platform keeps it (ph_service_read_log); ph-report.c gathers, redacts and writes. */
#define G_LOG_DOMAIN "pinhole-tray"

#include "ph-build-config.h"
#include "ph-report.h"
#include "ph-service.h"
#include "ph-tray-report.h"

#include <glib/gi18n.h>

static void
save_in_thread (GTask *task, gpointer source, gpointer data, GCancellable *cancellable)
{
  PhAgent1 *agent = g_object_get_data (G_OBJECT (task), "agent");
  const char *path = data;
  const char *mode = ph_agent1_get_mode (agent);
  g_autoptr (GError) log_error = NULL;
  g_autoptr (GError) error = NULL;
  g_autofree char *log = NULL;
  g_autofree char *note = NULL;

  if (g_strcmp0 (mode, "system") == 0 || g_strcmp0 (mode, "session") == 0)
    log = ph_service_read_log (g_str_equal (mode, "system"), PH_REPORT_LOG_LINES, &log_error);
  else
    note = g_strdup_printf ("the agent runs in mode %s, not as a service: its log is where it "
                            "was started",
                            mode != NULL ? mode : "?");
  if (log_error != NULL)
    note = g_strdup_printf ("the log could not be read: %s", log_error->message);
  if (!ph_report_write (agent, path, log, note, &error))
    g_task_return_error (task, g_steal_pointer (&error));
  else
    g_task_return_boolean (task, TRUE);
}

void
ph_tray_report_save_async (PhAgent1 *agent, const char *path, GCancellable *cancellable,
                           GAsyncReadyCallback callback, gpointer user_data)
{
  g_autoptr (GTask) task = g_task_new (NULL, cancellable, callback, user_data);

  g_task_set_source_tag (task, ph_tray_report_save_async);
  g_object_set_data_full (G_OBJECT (task), "agent", g_object_ref (agent), g_object_unref);
  g_task_set_task_data (task, g_strdup (path), g_free);
  g_task_run_in_thread (task, save_in_thread);
}

gboolean
ph_tray_report_save_finish (GAsyncResult *result, GError **error)
{
  return g_task_propagate_boolean (G_TASK (result), error);
}

static void
tell (GtkWindow *parent, GtkMessageType type, const char *primary, const char *secondary)
{
  GtkWidget *dialog = gtk_message_dialog_new (parent, GTK_DIALOG_DESTROY_WITH_PARENT, type,
                                              GTK_BUTTONS_CLOSE, "%s", primary);

  if (secondary != NULL)
    gtk_message_dialog_format_secondary_text (GTK_MESSAGE_DIALOG (dialog), "%s", secondary);
  g_signal_connect (dialog, "response", G_CALLBACK (gtk_widget_destroy), NULL);
  gtk_widget_show (dialog);
}

static void
saved (GObject *source, GAsyncResult *result, gpointer data)
{
  g_autofree char *path = data;
  g_autoptr (GError) error = NULL;

  if (!ph_tray_report_save_finish (result, &error))
    /* TRANSLATORS: a message dialog after "Save Support Report…" failed */
    tell (NULL, GTK_MESSAGE_ERROR, _ ("The support report could not be saved"), error->message);
  else
    /* TRANSLATORS: a message dialog after "Save Support Report…"; the file's path follows */
    tell (NULL, GTK_MESSAGE_INFO, _ ("Support report saved. It holds no password."), path);
}

void
ph_tray_report_save (PhAgent1 *agent, const char *path)
{
  ph_tray_report_save_async (agent, path, NULL, saved, g_strdup (path));
}

static void
chosen (GtkNativeDialog *chooser, gint response, gpointer data)
{
  PhAgent1 *agent = g_object_get_data (G_OBJECT (chooser), "agent");

  if (response == GTK_RESPONSE_ACCEPT)
    {
      g_autofree char *path = gtk_file_chooser_get_filename (GTK_FILE_CHOOSER (chooser));

      if (path != NULL)
        ph_tray_report_save (agent, path);
    }
  g_object_unref (chooser);
}

void
ph_tray_report_choose (GtkWindow *parent, PhAgent1 *agent)
{
  GtkFileChooserNative *chooser;
  g_autoptr (GDateTime) now = g_date_time_new_now_local ();
  g_autofree char *name = g_date_time_format (now, "pinhole-report-%Y%m%d-%H%M%S.txt");

  if (agent == NULL)
    {
      tell (parent, GTK_MESSAGE_ERROR, _ ("The support report could not be saved"),
            _ ("The Pinhole agent is not running."));
      return;
    }
  /* Shown, not run: the tray's own loop goes on (no nested one) while the user picks. */
  chooser = gtk_file_chooser_native_new (_ ("Save Support Report"), parent,
                                         GTK_FILE_CHOOSER_ACTION_SAVE, _ ("_Save"), _ ("_Cancel"));
  g_object_set_data_full (G_OBJECT (chooser), "agent", g_object_ref (agent), g_object_unref);
  gtk_file_chooser_set_do_overwrite_confirmation (GTK_FILE_CHOOSER (chooser), TRUE);
  gtk_file_chooser_set_current_name (GTK_FILE_CHOOSER (chooser), name);
  g_signal_connect (chooser, "response", G_CALLBACK (chosen), NULL);
  gtk_native_dialog_show (GTK_NATIVE_DIALOG (chooser));
}

/* SPDX-License-Identifier: GPL-2.0-or-later */
/* test-settings-wait.c: the tray's settings window while polkit asks, under Xvfb, against the
 * real agent on a private system bus whose polkit authority (fake-polkit.py) answers after
 * 2 s. Run by test-settings-wait.sh as a user other than the agent's, so that the agent asks
 * polkit. While it waits, the window keeps drawing and answering, shows a spinner and "Waiting
 * for authorization…", and its buttons are insensitive; then the change is made, or the
 * refusal shown. Screenshots are saved in $PH_ARTIFACTS. */
#include "ph-build-config.h"
#include "ph-client.h"
#include "ph-error.h"
#include "ph-settings-window.h"

#include <locale.h>
#include <string.h>
#include <glib/gi18n.h>

static struct
{
  const char *dir; /* the wrapper's directory: polkit-mode */
  const char *artifacts;
  PhAgent1 *agent;
  PhTrayPrefs *prefs;
  PhSettingsWindow *window;
} env;

static void
settle (guint ms)
{
  gint64 end = g_get_monotonic_time () + ms * 1000;

  while (g_get_monotonic_time () < end)
    {
      while (g_main_context_pending (NULL))
        g_main_context_iteration (NULL, FALSE);
      g_usleep (10 * 1000);
    }
}

static void
screenshot (const char *name)
{
  g_autofree char *file = g_strdup_printf ("%s-%s.png", name, g_getenv ("PH_LANG_TAG"));
  g_autofree char *path = g_build_filename (env.artifacts, file, NULL);
  g_autoptr (GError) error = NULL;
  int status = 0;
  const char *argv[] = { "import", "-window", "root", path, NULL };

  /* Drawn first; import then runs while this process's main loop is blocked. */
  settle (300);
  g_spawn_sync (NULL, (char **) argv, NULL, G_SPAWN_SEARCH_PATH, NULL, NULL, NULL, NULL, &status,
                &error);
  g_assert_no_error (error);
  g_assert_true (g_spawn_check_wait_status (status, NULL));
  g_test_message ("screenshot: %s", path);
}

static void
set_mode (const char *mode)
{
  g_autofree char *path = g_build_filename (env.dir, "polkit-mode", NULL);
  g_autoptr (GError) error = NULL;

  g_file_set_contents (path, mode, -1, &error);
  g_assert_no_error (error);
}

static void
apply_done (GObject *source, GAsyncResult *result, gpointer data)
{
  GError **error = data;

  if (!ph_settings_window_apply_finish (PH_SETTINGS_WINDOW (source), result, error))
    g_assert_nonnull (*error);
  else
    *error = g_error_new_literal (G_IO_ERROR, G_IO_ERROR_NONE, "done");
}

static gboolean
tick (gpointer data)
{
  (*(guint *) data)++;
  return G_SOURCE_CONTINUE;
}

static char *
agent_port (void)
{
  g_autoptr (GError) error = NULL;
  char *value = NULL;
  gboolean locked = FALSE;

  g_assert_true (
      ph_agent1_call_get_setting_sync (env.agent, "upstream.port", &value, &locked, NULL, &error));
  g_assert_no_error (error);
  return value;
}

static GtkWidget *
find_button (GtkWidget *widget, const char *label)
{
  if (GTK_IS_BUTTON (widget) && g_strcmp0 (gtk_button_get_label (GTK_BUTTON (widget)), label) == 0)
    return widget;
  if (GTK_IS_CONTAINER (widget))
    {
      g_autoptr (GList) children = gtk_container_get_children (GTK_CONTAINER (widget));
      for (GList *l = children; l != NULL; l = l->next)
        {
          GtkWidget *found = find_button (l->data, label);
          if (found != NULL)
            return found;
        }
    }
  return NULL;
}

/* Applies @port and checks the window while the authority takes its 2 s; returns the outcome
 * (an error "done" for success). */
static GError *
apply_port_and_watch (const char *port, const char *shot)
{
  GtkWidget *entry = ph_settings_window_get_widget (env.window, "upstream.port");
  GtkWidget *apply = find_button (GTK_WIDGET (env.window), _ ("_Apply"));
  GtkWidget *close = find_button (GTK_WIDGET (env.window), _ ("_Close"));
  GError *outcome = NULL;
  guint ticks = 0, source;
  gint64 started;

  g_assert_nonnull (apply);
  g_assert_nonnull (close);
  gtk_entry_set_text (GTK_ENTRY (entry), port);
  source = g_timeout_add (50, tick, &ticks);
  started = g_get_monotonic_time ();
  ph_settings_window_apply (env.window, apply_done, &outcome);
  settle (1000);
  /* Still waiting for polkit, and the window still runs its main loop. */
  g_assert_null (outcome);
  g_assert_true (ph_settings_window_is_waiting (env.window));
  g_assert_cmpuint (ticks, >=, 10);
  g_assert_false (gtk_widget_get_sensitive (apply));
  g_assert_false (gtk_widget_get_sensitive (close));
  /* Typing still reaches the window. */
  g_assert_true (gtk_widget_get_sensitive (entry));
  screenshot (shot);
  while (outcome == NULL)
    g_main_context_iteration (NULL, TRUE);
  g_source_remove (source);
  /* The authority's 2 s. */
  g_assert_cmpint (g_get_monotonic_time () - started, >=, 1900 * 1000);
  g_assert_false (ph_settings_window_is_waiting (env.window));
  g_assert_true (gtk_widget_get_sensitive (apply));
  g_assert_true (gtk_widget_get_sensitive (close));
  return outcome;
}

static void
test_wait_allowed (void)
{
  g_autoptr (GError) outcome = NULL;
  g_autofree char *port = NULL;

  g_autofree char *calls_path = NULL;
  g_autofree char *calls = NULL;

  set_mode ("allow");
  outcome = apply_port_and_watch ("8443", "settings-waiting");
  g_assert_error (outcome, G_IO_ERROR, G_IO_ERROR_NONE);
  g_assert_null (ph_settings_window_get_message (env.window));
  port = agent_port ();
  g_assert_cmpstr (port, ==, "8443");
  /* The agent asked polkit with AllowUserInteraction, as the window's call allowed it. */
  calls_path = g_build_filename (env.dir, "polkit-calls", NULL);
  g_assert_true (g_file_get_contents (calls_path, &calls, NULL, NULL));
  g_assert_nonnull (strstr (calls, "org.pinhole.agent.configure interactive=1"));
  g_assert_null (strstr (calls, "interactive=0"));
  screenshot ("settings-authorized");
}

static void
test_wait_refused (void)
{
  g_autoptr (GError) outcome = NULL;
  g_autofree char *port = NULL;
  const char *message;

  set_mode ("deny");
  outcome = apply_port_and_watch ("9443", "settings-waiting-again");
  g_assert_false (g_error_matches (outcome, G_IO_ERROR, G_IO_ERROR_NONE));
  message = ph_settings_window_get_message (env.window);
  g_assert_nonnull (message);
  g_test_message ("refusal shown: %s", message);
  port = agent_port ();
  g_assert_cmpstr (port, ==, "8443");
  screenshot ("settings-refused-by-polkit");
}

int
main (int argc, char **argv)
{
  g_autoptr (GError) error = NULL;
  int status;

  setlocale (LC_ALL, "");
  bindtextdomain (GETTEXT_PACKAGE, g_getenv ("PINHOLE_LOCALEDIR"));
  bind_textdomain_codeset (GETTEXT_PACKAGE, "UTF-8");
  textdomain (GETTEXT_PACKAGE);
  g_test_init (&argc, &argv, NULL);
  env.dir = g_getenv ("PH_WAIT_DIR");
  env.artifacts = g_getenv ("PH_ARTIFACTS");
  g_assert_nonnull (env.dir);
  g_assert_nonnull (env.artifacts);
  g_assert_true (gtk_init_check (&argc, &argv));
  ph_error_quark ();

  env.agent
      = ph_client_get_agent_sync (G_BUS_TYPE_SYSTEM, NULL, G_DBUS_PROXY_FLAGS_NONE, NULL, &error);
  g_assert_no_error (error);
  env.prefs = ph_tray_prefs_new ();
  env.window = ph_settings_window_new (NULL, env.prefs);
  ph_settings_window_set_agent (env.window, env.agent);
  ph_settings_window_refresh (env.window);
  gtk_window_move (GTK_WINDOW (env.window), 40, 40);
  gtk_widget_show (GTK_WIDGET (env.window));
  settle (500);

  g_test_add_func ("/pinhole/settings-wait/allowed", test_wait_allowed);
  g_test_add_func ("/pinhole/settings-wait/refused", test_wait_refused);
  status = g_test_run ();
  gtk_widget_destroy (GTK_WIDGET (env.window));
  ph_tray_prefs_free (env.prefs);
  g_object_unref (env.agent);
  return status;
}

/* SPDX-License-Identifier: GPL-2.0-or-later */
/* ph-ctl-unix.c: what pinholectl does on Linux alone: --system and --session choose the bus,
 * polkit may ask for a password on the terminal (--no-ask-password), and "logs" shows the
 * agent's unit in the systemd journal (journalctl). */
#define G_LOG_DOMAIN "pinhole-ctl"

#include "ph-ctl.h"
#include "ph-client.h"

#include <sys/wait.h>
#include <glib/gi18n.h>

#define PH_AGENT_UNIT "pinhole-agent.service"
/* How long a call may wait while polkit asks a person, as the tray's settings window does. */
#define PH_CTL_INTERACTIVE_TIMEOUT_MS (5 * 60 * 1000)

const GOptionEntry *
ph_ctl_bus_options (PhCtl *ctl)
{
  static GOptionEntry entries[4];

  entries[0] = (GOptionEntry){
    "system", 0, 0, G_OPTION_ARG_NONE, &ctl->system, N_ ("Talk to the system service"), NULL
  };
  entries[1] = (GOptionEntry){
    "session", 0, 0, G_OPTION_ARG_NONE, &ctl->session, N_ ("Talk to the per-user agent"), NULL
  };
  entries[2] = (GOptionEntry){ "no-ask-password",
                               0,
                               0,
                               G_OPTION_ARG_NONE,
                               &ctl->no_ask_password,
                               N_ ("Do not let polkit ask for a password (system service)"),
                               NULL };
  entries[3] = (GOptionEntry){ NULL };
  return entries;
}

void
ph_ctl_allow_authorization (PhCtl *ctl)
{
  GDBusConnection *connection = g_dbus_proxy_get_connection (G_DBUS_PROXY (ctl->agent));
  g_autoptr (GDBusConnection) system_bus = NULL;

  /* polkit decides on the system bus only: the session's agent is the user's own. The system
   * bus connection is the shared one that ph-client found the agent on, if it was. */
  if (ctl->no_ask_password || ctl->session || ctl->address != NULL)
    return;
  system_bus = g_bus_get_sync (G_BUS_TYPE_SYSTEM, NULL, NULL);
  if (connection != system_bus)
    return;
  /* As systemctl: the call allows a question whether or not there is a terminal (a graphical
   * agent of the session may ask), and the terminal's agent runs when there is one. */
  ph_client_allow_interactive_authorization (ctl->agent, PH_CTL_INTERACTIVE_TIMEOUT_MS);
  ctl->auth_agent = ph_auth_agent_start ();
}

char **
ph_ctl_get_arguments (int argc, char **argv)
{
  return g_strdupv (argv);
}

/* Which journal the agent logs to: the system unit's or the user's. */
static gboolean
logs_is_system (PhCtl *ctl, gboolean *system, GError **error)
{
  const char *mode;

  if (ctl->system || ctl->session)
    {
      *system = ctl->system;
      return TRUE;
    }
  if (ctl->address != NULL)
    {
      if (!ph_ctl_connect (ctl, error) || !ph_ctl_load_properties (ctl, error))
        return FALSE;
      mode = ph_agent1_get_mode (ctl->agent);
      if (g_strcmp0 (mode, "system") != 0 && g_strcmp0 (mode, "session") != 0)
        {
          g_set_error (error, PH_CTL_ERROR, PH_CTL_ERROR_FAILED,
                       _ ("the agent runs in mode “%s”, not as a systemd unit; "
                          "its log is where it was started"),
                       mode != NULL ? mode : "");
          return FALSE;
        }
      *system = g_str_equal (mode, "system");
      return TRUE;
    }
  /* The log matters most when the agent is down, so it is not required to run: the session's
   * journal only when the agent runs there. */
  *system = ph_client_agent_on_bus (G_BUS_TYPE_SYSTEM, -1)
            || !ph_client_agent_on_bus (G_BUS_TYPE_SESSION, -1);
  return TRUE;
}

gboolean
ph_ctl_cmd_logs (PhCtl *ctl, char **args, GError **error)
{
  g_autoptr (GPtrArray) argv = g_ptr_array_new_with_free_func (g_free);
  g_autoptr (GError) spawn_error = NULL;
  gboolean system = TRUE;
  int wait_status = 0;

  if (ctl->lines < -1 || ctl->lines == 0)
    {
      g_set_error_literal (error, PH_CTL_ERROR, PH_CTL_ERROR_USAGE,
                           _ ("-n needs a number of lines greater than 0"));
      return FALSE;
    }
  if (!logs_is_system (ctl, &system, error))
    return FALSE;

  g_ptr_array_add (argv, g_strdup ("journalctl"));
  g_ptr_array_add (argv, g_strdup ("--no-pager"));
  g_ptr_array_add (argv, g_strdup ("-o"));
  g_ptr_array_add (argv, g_strdup ("short-iso"));
  g_ptr_array_add (argv, g_strdup ("-n"));
  g_ptr_array_add (argv,
                   g_strdup_printf ("%d", ctl->lines > 0 ? ctl->lines : PH_CTL_DEFAULT_LOG_LINES));
  g_ptr_array_add (argv, g_strdup (system ? "-u" : "--user-unit"));
  g_ptr_array_add (argv, g_strdup (PH_AGENT_UNIT));
  if (ctl->follow)
    g_ptr_array_add (argv, g_strdup ("-f"));
  g_ptr_array_add (argv, NULL);

  if (!g_spawn_sync (NULL, (char **) argv->pdata, NULL,
                     G_SPAWN_SEARCH_PATH | G_SPAWN_CHILD_INHERITS_STDIN, NULL, NULL, NULL, NULL,
                     &wait_status, &spawn_error))
    {
      if (g_error_matches (spawn_error, G_SPAWN_ERROR, G_SPAWN_ERROR_NOENT))
        g_set_error_literal (error, PH_CTL_ERROR, PH_CTL_ERROR_FAILED,
                             _ ("journalctl was not found: the agent logs to the systemd journal, "
                                "which this system does not seem to have"));
      else
        g_set_error (error, PH_CTL_ERROR, PH_CTL_ERROR_FAILED, _ ("could not run journalctl: %s"),
                     spawn_error->message);
      return FALSE;
    }
  if (WIFEXITED (wait_status))
    ctl->exit_status = WEXITSTATUS (wait_status);
  else if (WIFSIGNALED (wait_status))
    ctl->exit_status = 128 + WTERMSIG (wait_status);
  else
    ctl->exit_status = PH_CTL_EXIT_FAILED;
  return TRUE;
}

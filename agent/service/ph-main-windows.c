/* SPDX-License-Identifier: GPL-2.0-or-later */
/* ph-main-windows.c: pinhole-agent on Windows: standalone from one --config file, or the
 * service's work (under the SCM with --service, else in the console) with the control interface
 * on the named pipe; and the SCM commands the installer runs (--install-service and others). */
#define G_LOG_DOMAIN "pinhole-main"

#include "ph-build-config.h"
#include "ph-agent.h"
#include "ph-control-pipe.h"
#include "ph-error.h"
#include "ph-paths.h"
#include "ph-secret.h"
#include "ph-service.h"

#include <stdio.h>
#include <gnutls/gnutls.h>

/* The control interface on the named pipe: one private connection per client. */
typedef struct
{
  const PhDaemonSetup *setup;
  PhDBusService *service; /* the run's */
  PhControlPipeServer *pipe;
} PhPipeControl;

static void
on_client_closed (GDBusConnection *connection, gboolean remote_peer_vanished, GError *error,
                  gpointer data)
{
  PhPipeControl *control = data;

  g_dbus_interface_skeleton_unexport_from_connection (G_DBUS_INTERFACE_SKELETON (control->service),
                                                      connection);
  g_signal_handlers_disconnect_by_data (connection, control);
  g_object_unref (connection);
}

/* A client on the pipe, already identified: the same interface as on a bus, on a connection
 * of its own. */
static void
on_client (GDBusConnection *connection, PhPeerRole role, gpointer data)
{
  PhPipeControl *control = data;
  g_autoptr (GError) error = NULL;

  if (!g_dbus_interface_skeleton_export (G_DBUS_INTERFACE_SKELETON (control->service), connection,
                                         PH_AGENT_OBJECT_PATH, &error))
    {
      g_warning ("cannot export %s to a client: %s", PH_AGENT_OBJECT_PATH, error->message);
      g_dbus_connection_close (connection, NULL, NULL, NULL);
      return;
    }
  g_signal_connect (g_object_ref (connection), "closed", G_CALLBACK (on_client_closed), control);
}

static PhDBusService *
start_control (PhAgent *agent, PhDaemon *daemon, gpointer data, GError **error)
{
  PhPipeControl *control = data;

  control->service = ph_dbus_service_new (daemon, PH_AUTH_PEER);
  control->pipe = ph_control_pipe_server_new (ph_control_pipe_name (), on_client, control, error);
  if (control->pipe == NULL)
    {
      g_clear_object (&control->service);
      return NULL;
    }
  g_message ("control interface ready on %s", ph_control_pipe_name ());
  ph_service_notify_ready ();
  return control->service;
}

static void
stop_control (PhDBusService *service, gpointer data)
{
  PhPipeControl *control = data;
  GList *connections;

  g_clear_pointer (&control->pipe, ph_control_pipe_server_free);
  connections = g_dbus_interface_skeleton_get_connections (G_DBUS_INTERFACE_SKELETON (service));
  if (connections != NULL)
    g_dbus_interface_skeleton_unexport (G_DBUS_INTERFACE_SKELETON (service));
  g_list_free_full (connections, g_object_unref);
  control->service = NULL;
}

/* Where the service manager shows it (the Event Log), or plainly on stderr. */
static void
report_fatal (const GError *error, gpointer data)
{
  if (ph_service_is_under_scm ())
    {
      g_warning ("%s", error->message);
      return;
    }
  fprintf (stderr, "pinhole-agent: %s\n", error->message);
}

static const PhAgentPlatform platform = {
  .start_control = start_control,
  .stop_control = stop_control,
  .report_fatal = report_fatal,
};

/* On the SCM's service thread, or the main thread in the console. */
static int
run (gpointer data)
{
  PhPipeControl *control = data;

  /* The service's directory holds what decides where traffic goes (the upstream, its pin,
   * IT's drop-ins): only SYSTEM and administrators may write it, whatever ProgramData lets
   * users do (by default they may create files there). */
  if (ph_service_is_under_scm ())
    ph_service_secure_directory (ph_paths_sysconfdir (), TRUE);
  return ph_agent_run (control->setup, &platform, control);
}

/* --install-service and friends: one SCM operation, its outcome on stderr. */
static int
service_command (gboolean (*op) (GError **), const char *done)
{
  g_autoptr (GError) error = NULL;

  if (!op (&error))
    {
      fprintf (stderr, "pinhole-agent: %s\n", error->message);
      return g_error_matches (error, PH_ERROR, PH_ERROR_PERMISSION_DENIED) ? 4 : 1;
    }
  printf ("%s\n", done);
  return 0;
}

static gboolean
install_service (GError **error)
{
  return ph_service_install ("--service", error);
}

int
main (int argc, char **argv)
{
  g_auto (PhAgentOptions) options = { 0 };
  gboolean service_mode = FALSE, console_mode = FALSE;
  gboolean install = FALSE, uninstall = FALSE, start = FALSE, stop = FALSE;
  g_auto (GStrv) args = g_win32_get_command_line ();
  const GOptionEntry entries[] = {
    { "service", 0, 0, G_OPTION_ARG_NONE, &service_mode,
      "Run as the Windows service (in the console when not started by the SCM)", NULL },
    { "console", 0, 0, G_OPTION_ARG_NONE, &console_mode,
      "Run the service's work in this console, controlled over the named pipe", NULL },
    { "install-service", 0, 0, G_OPTION_ARG_NONE, &install,
      "Register the " PH_SERVICE_NAME " service (automatic start)", NULL },
    { "uninstall-service", 0, 0, G_OPTION_ARG_NONE, &uninstall,
      "Stop and remove the " PH_SERVICE_NAME " service", NULL },
    { "start-service", 0, 0, G_OPTION_ARG_NONE, &start, "Start the service and wait until it runs",
      NULL },
    { "stop-service", 0, 0, G_OPTION_ARG_NONE, &stop,
      "Stop the service and wait until it has stopped", NULL },
    { NULL },
  };
  g_autoptr (GOptionContext) ctx = g_option_context_new ("- Pinhole tunnel agent");
  g_autoptr (GError) error = NULL;
  g_autofree char *secrets_path = NULL;
  PhDaemonSetup setup = { 0 };
  PhPipeControl control = { .setup = &setup };
  gboolean system_mode;
  int code;

  ph_agent_init_locale ();
  g_option_context_add_main_entries (ctx, entries, NULL);
  ph_agent_options_add (&options, ctx);
  g_option_context_set_description (
      ctx, "With --config FILE alone the agent runs standalone from that file, with no control\n"
           "interface. Otherwise it does the service's work (in this console unless started by\n"
           "the SCM with --service): configured from %ProgramData%\\Pinhole, controlled over\n"
           "the named pipe " PH_CONTROL_PIPE_DEFAULT ".\n");
  /* The command line as UTF-16 gave it, not in the ANSI code page. */
  if (!g_option_context_parse_strv (ctx, &args, &error))
    {
      fprintf (stderr, "pinhole-agent: %s\n", error->message);
      return 2;
    }
  if (options.version)
    return ph_agent_print_version ();
  ph_agent_init_log ();
  if (install + uninstall + start + stop > 1)
    {
      fprintf (stderr, "pinhole-agent: give one of --install-service, --uninstall-service, "
                       "--start-service, --stop-service\n");
      return 2;
    }
  if (install)
    return service_command (install_service, "installed the " PH_SERVICE_NAME " service");
  if (uninstall)
    return service_command (ph_service_uninstall, "removed the " PH_SERVICE_NAME " service");
  if (start)
    return service_command (ph_service_start, "the " PH_SERVICE_NAME " service is running");
  if (stop)
    return service_command (ph_service_stop, "the " PH_SERVICE_NAME " service is stopped");

  /* Without --config the agent is the service, in the console or not. */
  system_mode = service_mode || console_mode || options.config_path == NULL;
  ph_agent_options_to_setup (
      &options, system_mode ? PH_DAEMON_MODE_SYSTEM : PH_DAEMON_MODE_STANDALONE, &setup);
  if (options.check_only)
    return ph_agent_check_config (&setup);
  if (options.restore_machine)
    return ph_agent_restore_machine_proxy (&setup);

  gnutls_global_init ();
  if (system_mode)
    {
      /* The service's credentials: DPAPI for the machine, in a file only SYSTEM and
       * administrators can read. */
      secrets_path = g_build_filename (setup.state_dir, "credentials", NULL);
      setup.secrets = ph_secret_store_new_dpapi (secrets_path, TRUE);
    }
  /* Only --service (the command the SCM is given) asks the SCM: Windows answers at once when
   * the process is not a service, but Wine's dispatcher waits forever. */
  if (service_mode && ph_service_dispatch (run, &control, &code))
    ;
  else
    code = run (&control);
  gnutls_global_deinit ();
  return code;
}

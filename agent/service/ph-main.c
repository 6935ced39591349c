/* ph-main.c: pinhole-agent: options and modes, and the main loop around the daemon.
 * Linux: standalone, the system service (system bus) or per-user (session bus), with signals
 * and systemd. Windows: standalone, or the service (under the SCM, or in the console), with
 * the control interface on a named pipe. */
#define G_LOG_DOMAIN "pinhole-main"

#include "ph-build-config.h"
#include "ph-config.h"
#include "ph-daemon.h"
#include "ph-dbus-service.h"
#include "ph-error.h"
#include "ph-log.h"
#include "ph-paths.h"
#include "ph-secret.h"
#include "ph-server.h"
#include "ph-service.h"

#include <locale.h>
#include <stdio.h>
#include <stdlib.h>
#include <glib/gi18n.h>
#include <glib/gstdio.h>
#ifdef G_OS_WIN32
#include "ph-control-pipe.h"
#include <windows.h>
#else
#include <malloc.h>
#include <signal.h>
#include <sys/resource.h>
#endif
#include <gnutls/gnutls.h>

#define DRAIN_TIMEOUT_MS 10000

typedef struct
{
  GMainLoop *loop;
  PhDaemon *daemon;
  PhDBusService *service;
  PhDaemonSetup setup;
#ifdef G_OS_WIN32
  PhControlPipeServer *pipe;
#else
  GBusType bus_type;
  guint owner_id;
  gboolean name_acquired;
#endif
  gboolean stopping;
  int exit_code;
} PhAgent;

#ifdef G_OS_UNIX
/* Each tunnel holds two descriptors and the default soft limit is often
 * 1024. The limit that results bounds the clients served at once. */
static void
raise_fd_limit (void)
{
  struct rlimit rl;

  if (getrlimit (RLIMIT_NOFILE, &rl) != 0)
    return;
  if (rl.rlim_cur < rl.rlim_max)
    {
      rlim_t want = rl.rlim_max;
      rl.rlim_cur = want;
      if (setrlimit (RLIMIT_NOFILE, &rl) != 0)
        g_debug ("could not raise the descriptor limit");
      getrlimit (RLIMIT_NOFILE, &rl);
    }
  ph_server_set_fd_limit (
      rl.rlim_cur == RLIM_INFINITY || rl.rlim_cur > G_MAXUINT ? G_MAXUINT : (guint) rl.rlim_cur);
}
#endif

static gboolean
drained_cb (gpointer data)
{
  PhAgent *agent = data;

  g_main_loop_quit (agent->loop);
  return G_SOURCE_REMOVE;
}

static gboolean
on_terminate (gpointer data)
{
  PhAgent *agent = data;

  if (agent->stopping)
    {
      g_message ("second signal: exiting now");
      g_main_loop_quit (agent->loop);
      return G_SOURCE_CONTINUE;
    }
  agent->stopping = TRUE;
  ph_service_notify_stopping ();
  g_message ("stopping: no new connections, draining open ones for up to %ds",
             DRAIN_TIMEOUT_MS / 1000);
  ph_daemon_shutdown (agent->daemon, DRAIN_TIMEOUT_MS, drained_cb, agent);
  return G_SOURCE_CONTINUE;
}

static gboolean
on_reload (gpointer data)
{
  PhAgent *agent = data;

  ph_service_notify_reloading ();
  ph_daemon_reload (agent->daemon, NULL);
  ph_service_notify_ready ();
  return G_SOURCE_CONTINUE;
}

#ifdef G_OS_UNIX
static void
on_bus_acquired (GDBusConnection *connection, const char *name, gpointer data)
{
  PhAgent *agent = data;
  g_autoptr (GError) error = NULL;

  if (!g_dbus_interface_skeleton_export (G_DBUS_INTERFACE_SKELETON (agent->service), connection,
                                         PH_AGENT_OBJECT_PATH, &error))
    {
      g_warning ("cannot export %s: %s", PH_AGENT_OBJECT_PATH, error->message);
      agent->exit_code = 1;
      g_main_loop_quit (agent->loop);
    }
}

static void
on_name_acquired (GDBusConnection *connection, const char *name, gpointer data)
{
  PhAgent *agent = data;

  agent->name_acquired = TRUE;
  g_message ("control interface ready as %s on the %s bus", name,
             agent->bus_type == G_BUS_TYPE_SYSTEM ? "system" : "session");
  ph_service_notify_ready ();
}

static void
on_name_lost (GDBusConnection *connection, const char *name, gpointer data)
{
  PhAgent *agent = data;

  if (connection == NULL)
    g_warning ("cannot connect to the %s bus",
               agent->bus_type == G_BUS_TYPE_SYSTEM ? "system" : "session");
  else if (!agent->name_acquired)
    g_warning ("%s is already owned: is another pinhole-agent running?", name);
  else
    g_warning ("lost the bus name %s", name);
  agent->exit_code = 1;
  g_main_loop_quit (agent->loop);
}

/* The secret store of a per-user agent: the Secret Service, or a private
 * file where there is none (a server session, a test). */
static PhSecretStore *
session_secrets (const char *state_dir)
{
  g_autoptr (GError) error = NULL;
  g_autofree char *path = g_build_filename (state_dir, "credentials", NULL);
  PhSecretStore *store = NULL;

  if (g_strcmp0 (g_getenv ("PH_SECRET_STORE"), "file") != 0)
    {
      /* A service without a usable collection (no login keyring, nobody to
       * prompt) falls back to the same file, and says so once. */
      store = ph_secret_store_new_service_with_fallback (path, &error);
      if (store != NULL)
        return store;
      g_message ("no Secret Service (%s); credentials go to %s", error->message, path);
    }
  return ph_secret_store_new_file (path);
}

static gboolean
start_control (PhAgent *agent, GError **error)
{
  agent->service = ph_dbus_service_new (agent->daemon, agent->setup.mode == PH_DAEMON_MODE_SYSTEM
                                                           ? PH_AUTH_POLKIT
                                                           : PH_AUTH_SAME_USER);
  agent->owner_id
      = g_bus_own_name (agent->bus_type, PH_AGENT_BUS_NAME, G_BUS_NAME_OWNER_FLAGS_DO_NOT_QUEUE,
                        on_bus_acquired, on_name_acquired, on_name_lost, agent, NULL);
  return TRUE;
}

static void
stop_control (PhAgent *agent)
{
  if (agent->owner_id != 0)
    g_bus_unown_name (agent->owner_id);
  if (agent->service != NULL
      && g_dbus_interface_skeleton_get_connection (G_DBUS_INTERFACE_SKELETON (agent->service)))
    g_dbus_interface_skeleton_unexport (G_DBUS_INTERFACE_SKELETON (agent->service));
}

#else /* G_OS_WIN32 */

static void
on_client_closed (GDBusConnection *connection, gboolean remote_peer_vanished, GError *error,
                  gpointer data)
{
  PhAgent *agent = data;

  g_dbus_interface_skeleton_unexport_from_connection (G_DBUS_INTERFACE_SKELETON (agent->service),
                                                      connection);
  g_signal_handlers_disconnect_by_data (connection, agent);
  g_object_unref (connection);
}

/* A client on the pipe, already identified: the same interface as on a bus, on a connection
 * of its own. */
static void
on_client (GDBusConnection *connection, PhPeerRole role, gpointer data)
{
  PhAgent *agent = data;
  g_autoptr (GError) error = NULL;

  if (!g_dbus_interface_skeleton_export (G_DBUS_INTERFACE_SKELETON (agent->service), connection,
                                         PH_AGENT_OBJECT_PATH, &error))
    {
      g_warning ("cannot export %s to a client: %s", PH_AGENT_OBJECT_PATH, error->message);
      g_dbus_connection_close (connection, NULL, NULL, NULL);
      return;
    }
  g_signal_connect (g_object_ref (connection), "closed", G_CALLBACK (on_client_closed), agent);
}

static gboolean
start_control (PhAgent *agent, GError **error)
{
  agent->service = ph_dbus_service_new (agent->daemon, PH_AUTH_PEER);
  agent->pipe = ph_control_pipe_server_new (ph_control_pipe_name (), on_client, agent, error);
  if (agent->pipe == NULL)
    return FALSE;
  g_message ("control interface ready on %s", ph_control_pipe_name ());
  ph_service_notify_ready ();
  return TRUE;
}

static void
stop_control (PhAgent *agent)
{
  GList *connections = NULL;

  g_clear_pointer (&agent->pipe, ph_control_pipe_server_free);
  if (agent->service != NULL)
    connections
        = g_dbus_interface_skeleton_get_connections (G_DBUS_INTERFACE_SKELETON (agent->service));
  if (connections != NULL)
    g_dbus_interface_skeleton_unexport (G_DBUS_INTERFACE_SKELETON (agent->service));
  g_list_free_full (connections, g_object_unref);
}

#endif

/* Where the service manager shows it (the Event Log), or plainly on stderr. */
static void
report_fatal (const GError *error)
{
#ifdef G_OS_WIN32
  if (ph_service_is_under_scm ())
    {
      g_warning ("%s", error->message);
      return;
    }
#endif
  fprintf (stderr, "pinhole-agent: %s\n", error->message);
}

static int
run_agent (gpointer data)
{
  PhAgent *agent = data;
  g_autoptr (GError) error = NULL;
  g_autoptr (GMainLoop) loop = g_main_loop_new (NULL, FALSE);
  int code;

  agent->loop = loop;
#ifdef G_OS_WIN32
  /* The service's directory holds what decides where traffic goes (the upstream, its pin,
   * IT's drop-ins): only SYSTEM and administrators may write it, whatever ProgramData lets
   * users do (by default they may create files there). */
  if (ph_service_is_under_scm ())
    ph_service_secure_directory (ph_paths_sysconfdir (), TRUE);
#endif
  agent->daemon = ph_daemon_new (&agent->setup, &error);
  if (agent->daemon == NULL)
    {
      report_fatal (error);
      return 1;
    }
  ph_service_watch_stop_and_reload (on_terminate, on_reload, agent);
  g_message ("pinhole-agent %s started (%s)", PH_VERSION,
             ph_daemon_mode_to_string (ph_daemon_get_mode (agent->daemon)));

  if (agent->setup.mode == PH_DAEMON_MODE_STANDALONE)
    ph_service_notify_ready ();
  else if (!start_control (agent, &error))
    {
      report_fatal (error);
      agent->exit_code = 1;
      g_main_loop_quit (loop);
    }

  if (agent->exit_code == 0)
    g_main_loop_run (loop);

  stop_control (agent);
  g_clear_object (&agent->service);
  g_clear_object (&agent->daemon);
  g_message ("stopped");
  code = agent->exit_code;
  agent->loop = NULL;
  return code;
}

static int
check_config (PhDaemonSetup *setup)
{
  g_autoptr (GPtrArray) layers
      = ph_config_layers_new (setup->system_path, setup->user_path, setup->managed_dir);
  g_autoptr (PhConfig) config = NULL;
  g_autoptr (GError) error = NULL;

  if (setup->mode == PH_DAEMON_MODE_STANDALONE)
    ((PhConfigFile *) g_ptr_array_index (layers, 0))->optional = FALSE;
  config = ph_config_load_layers (layers, &error);
  if (config == NULL)
    {
      fprintf (stderr, "%s\n", error->message);
      return 1;
    }
  if (ph_config_get_unready_reason (config) != NULL)
    {
      fprintf (stderr, "%s: %s\n", setup->system_path, ph_config_get_unready_reason (config));
      return setup->mode == PH_DAEMON_MODE_STANDALONE ? 1 : 0;
    }
  printf ("%s: configuration is valid\n", setup->system_path);
  return 0;
}

#ifdef G_OS_WIN32
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
#endif

int
main (int argc, char **argv)
{
  g_autofree char *config_path = NULL;
  g_autofree char *managed_dir = NULL;
  g_autofree char *state_dir = NULL;
  g_autofree char *user_path = NULL;
  g_autofree char *secrets_path = NULL;
  g_autofree char *config_help
      = g_strdup_printf ("Configuration file (default: %s%s)", ph_paths_sysconfdir (),
                         G_DIR_SEPARATOR_S "pinhole.conf");
  g_autofree char *managed_help = g_strdup_printf (
      "IT-managed drop-ins (default: %s%s)", ph_paths_sysconfdir (), G_DIR_SEPARATOR_S "managed.d");
  gboolean system_mode = FALSE, session_mode = FALSE;
  gboolean check_only = FALSE;
  gboolean version = FALSE;
#ifdef G_OS_WIN32
  gboolean service_mode = FALSE, console_mode = FALSE;
  gboolean install = FALSE, uninstall = FALSE, start = FALSE, stop = FALSE;
  g_auto (GStrv) args = g_win32_get_command_line ();
#endif
  const GOptionEntry entries[] = {
#ifdef G_OS_WIN32
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
#else
    { "system", 0, 0, G_OPTION_ARG_NONE, &system_mode,
      "Run as the system service, controlled over the system bus", NULL },
    { "session", 0, 0, G_OPTION_ARG_NONE, &session_mode,
      "Run for this user, controlled over the session bus", NULL },
#endif
    { "config", 'c', 0, G_OPTION_ARG_FILENAME, &config_path, config_help, "FILE" },
    { "managed-dir", 0, 0, G_OPTION_ARG_FILENAME, &managed_dir, managed_help, "DIR" },
    { "state-dir", 0, 0, G_OPTION_ARG_FILENAME, &state_dir,
      "Where the on/off state and (system mode) credentials are kept", "DIR" },
    { "check-config", 0, 0, G_OPTION_ARG_NONE, &check_only,
      "Check the configuration, print every problem, and exit", NULL },
    { "version", 0, 0, G_OPTION_ARG_NONE, &version, "Print the version and exit", NULL },
    { NULL },
  };
  g_autoptr (GOptionContext) ctx = g_option_context_new ("- Pinhole tunnel agent");
  g_autoptr (GError) error = NULL;
  PhAgent agent = { 0 };
  PhDaemonSetup *setup = &agent.setup;
  int code;

  /* Errors that reach clients (LastError, method errors) speak the agent's
   * language; numbers stay C so that access lines parse the same anywhere. */
  setlocale (LC_ALL, "");
  setlocale (LC_NUMERIC, "C");
  ph_paths_bind_textdomain (GETTEXT_PACKAGE);
  textdomain (GETTEXT_PACKAGE);

  g_option_context_add_main_entries (ctx, entries, NULL);
#ifdef G_OS_WIN32
  g_option_context_set_description (
      ctx, "With --config FILE alone the agent runs standalone from that file, with no control\n"
           "interface. Otherwise it does the service's work (in this console unless started by\n"
           "the SCM with --service): configured from %ProgramData%\\Pinhole, controlled over\n"
           "the named pipe " PH_CONTROL_PIPE_DEFAULT ".\n");
  /* The command line as UTF-16 gave it, not in the ANSI code page. */
  if (!g_option_context_parse_strv (ctx, &args, &error))
#else
  g_option_context_set_description (
      ctx, "Without --system or --session the agent runs standalone from one --config file,\n"
           "with no control interface; SIGHUP reloads it.\n");
  if (!g_option_context_parse (ctx, &argc, &argv, &error))
#endif
    {
      fprintf (stderr, "pinhole-agent: %s\n", error->message);
      return 2;
    }
  if (version)
    {
      printf ("pinhole-agent %s (GLib %u.%u.%u, GnuTLS %s)\n", PH_VERSION, glib_major_version,
              glib_minor_version, glib_micro_version, gnutls_check_version (NULL));
      return 0;
    }
  ph_log_init ();
  ph_error_quark ();
#ifdef G_OS_WIN32
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
  system_mode = service_mode || console_mode || config_path == NULL;
#endif
  if (system_mode && session_mode)
    {
      fprintf (stderr, "pinhole-agent: --system and --session exclude each other\n");
      return 2;
    }

  if (config_path == NULL)
    config_path = g_build_filename (ph_paths_sysconfdir (), "pinhole.conf", NULL);
  setup->system_path = config_path;
  if (system_mode || session_mode)
    {
      if (managed_dir == NULL)
        managed_dir = g_build_filename (ph_paths_sysconfdir (), "managed.d", NULL);
      setup->managed_dir = managed_dir;
      setup->watch = TRUE;
    }
  if (system_mode)
    {
      setup->mode = PH_DAEMON_MODE_SYSTEM;
      if (state_dir == NULL)
        state_dir = g_strdup (ph_service_get_state_directory () ?: ph_paths_localstatedir ());
      secrets_path = g_build_filename (state_dir, "credentials", NULL);
#ifdef G_OS_UNIX
      agent.bus_type = G_BUS_TYPE_SYSTEM;
#endif
    }
  else if (session_mode)
    {
#ifdef G_OS_UNIX
      setup->mode = PH_DAEMON_MODE_SESSION;
      user_path = g_build_filename (g_get_user_config_dir (), "pinhole", "pinhole.conf", NULL);
      setup->user_path = user_path;
      if (state_dir == NULL)
        state_dir = g_build_filename (g_get_user_state_dir (), "pinhole", NULL);
      agent.bus_type = G_BUS_TYPE_SESSION;
#endif
    }
  setup->state_dir = state_dir;

  if (check_only)
    return check_config (setup);

#ifdef G_OS_UNIX
  signal (SIGPIPE, SIG_IGN);
  raise_fd_limit ();
  /* The relay frees and allocates record-sized blocks all the time; without
   * a trim threshold above that churn glibc returns the heap top to the
   * kernel and takes it back, a brk() pair per batch of records. */
  mallopt (M_TRIM_THRESHOLD, 8 * 1024 * 1024);
  mallopt (M_TOP_PAD, 1024 * 1024);
#endif
  gnutls_global_init ();

#ifdef G_OS_WIN32
  if (system_mode)
    {
      /* The service's credentials: DPAPI for the machine, in a file only SYSTEM and
       * administrators can read. */
      setup->secrets = ph_secret_store_new_dpapi (secrets_path, TRUE);
    }
  /* Only --service (the command the SCM is given) asks the SCM: Windows answers at once when
   * the process is not a service, but Wine's dispatcher waits forever. */
  if (service_mode && ph_service_dispatch (run_agent, &agent, &code))
    ;
  else
    code = run_agent (&agent);
#else
  if (system_mode)
    setup->secrets = ph_secret_store_new_file (secrets_path);
  else if (session_mode)
    setup->secrets = session_secrets (state_dir);
  code = run_agent (&agent);
#endif
  gnutls_global_deinit ();
  return code;
}

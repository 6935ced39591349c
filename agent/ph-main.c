/* ph-main.c: pinhole-agent on Linux: options and modes (standalone,
 * system service, per-user), signals, the bus name, and the main loop
 * around the daemon. */
#define G_LOG_DOMAIN "pinhole-main"

#include "ph-build-config.h"
#include "ph-config.h"
#include "ph-daemon.h"
#include "ph-dbus-service.h"
#include "ph-error.h"
#include "ph-log.h"
#include "ph-secret.h"
#include "ph-service.h"

#include <locale.h>
#include <malloc.h>
#include <signal.h>
#include <sys/resource.h>
#include <stdio.h>
#include <stdlib.h>
#include <glib-unix.h>
#include <glib/gi18n.h>
#include <gnutls/gnutls.h>

#define DRAIN_TIMEOUT_MS 10000

typedef struct
{
  GMainLoop *loop;
  PhDaemon *daemon;
  PhDBusService *service;
  GBusType bus_type;
  guint owner_id;
  gboolean stopping;
  gboolean name_acquired;
  int exit_code;
} PhAgent;

/* Each tunnel holds two descriptors and the default soft limit is often
 * 1024; running out makes accept() fail over and over. */
static void
raise_fd_limit (void)
{
  struct rlimit rl;

  if (getrlimit (RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max)
    {
      rl.rlim_cur = rl.rlim_max;
      if (setrlimit (RLIMIT_NOFILE, &rl) != 0)
        g_debug ("could not raise the descriptor limit");
    }
}

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

static void
on_bus_acquired (GDBusConnection *connection, const char *name, gpointer data)
{
  PhAgent *agent = data;
  g_autoptr (GError) error = NULL;

  if (!g_dbus_interface_skeleton_export (G_DBUS_INTERFACE_SKELETON (agent->service), connection,
                                         PH_DBUS_PATH, &error))
    {
      g_warning ("cannot export %s: %s", PH_DBUS_PATH, error->message);
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
      store = ph_secret_store_new_service (&error);
      if (store != NULL)
        return store;
      g_message ("no Secret Service (%s); credentials go to %s", error->message, path);
    }
  return ph_secret_store_new_file (path);
}

int
main (int argc, char **argv)
{
  g_autofree char *config_path = NULL;
  g_autofree char *managed_dir = NULL;
  g_autofree char *state_dir = NULL;
  g_autofree char *user_path = NULL;
  g_autofree char *secrets_path = NULL;
  gboolean system_mode = FALSE, session_mode = FALSE;
  gboolean check_only = FALSE;
  gboolean version = FALSE;
  const GOptionEntry entries[] = {
    { "system", 0, 0, G_OPTION_ARG_NONE, &system_mode,
      "Run as the system service, controlled over the system bus", NULL },
    { "session", 0, 0, G_OPTION_ARG_NONE, &session_mode,
      "Run for this user, controlled over the session bus", NULL },
    { "config", 'c', 0, G_OPTION_ARG_FILENAME, &config_path,
      "Configuration file (default: " PH_SYSCONFDIR "/pinhole.conf)", "FILE" },
    { "managed-dir", 0, 0, G_OPTION_ARG_FILENAME, &managed_dir,
      "IT-managed drop-ins (default: " PH_SYSCONFDIR "/managed.d)", "DIR" },
    { "state-dir", 0, 0, G_OPTION_ARG_FILENAME, &state_dir,
      "Where the on/off state and (system mode) credentials are kept", "DIR" },
    { "check-config", 0, 0, G_OPTION_ARG_NONE, &check_only,
      "Check the configuration, print every problem, and exit", NULL },
    { "version", 0, 0, G_OPTION_ARG_NONE, &version, "Print the version and exit", NULL },
    { NULL },
  };
  g_autoptr (GOptionContext) ctx = g_option_context_new ("- Pinhole tunnel agent");
  g_autoptr (GError) error = NULL;
  g_autoptr (GMainLoop) loop = NULL;
  PhDaemonSetup setup = { 0 };
  PhAgent agent = { 0 };

  /* Errors that reach clients (LastError, method errors) speak the agent's
   * language; numbers stay C so that access lines parse the same anywhere. */
  setlocale (LC_ALL, "");
  setlocale (LC_NUMERIC, "C");
  bindtextdomain (GETTEXT_PACKAGE, PH_LOCALEDIR);
  bind_textdomain_codeset (GETTEXT_PACKAGE, "UTF-8");
  textdomain (GETTEXT_PACKAGE);

  g_option_context_set_description (
      ctx, "Without --system or --session the agent runs standalone from one --config file,\n"
           "with no control interface; SIGHUP reloads it.\n");
  g_option_context_add_main_entries (ctx, entries, NULL);
  if (!g_option_context_parse (ctx, &argc, &argv, &error))
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
  if (system_mode && session_mode)
    {
      fprintf (stderr, "pinhole-agent: --system and --session exclude each other\n");
      return 2;
    }

  ph_log_init ();
  ph_error_quark ();
  if (config_path == NULL)
    config_path = g_build_filename (PH_SYSCONFDIR, "pinhole.conf", NULL);
  setup.system_path = config_path;
  if (system_mode || session_mode)
    {
      if (managed_dir == NULL)
        managed_dir = g_build_filename (PH_SYSCONFDIR, "managed.d", NULL);
      setup.managed_dir = managed_dir;
      setup.watch = TRUE;
    }
  if (system_mode)
    {
      setup.mode = PH_DAEMON_MODE_SYSTEM;
      if (state_dir == NULL)
        state_dir = g_strdup (ph_service_get_state_directory () ?: PH_LOCALSTATEDIR);
      secrets_path = g_build_filename (state_dir, "credentials", NULL);
      agent.bus_type = G_BUS_TYPE_SYSTEM;
    }
  else if (session_mode)
    {
      setup.mode = PH_DAEMON_MODE_SESSION;
      user_path = g_build_filename (g_get_user_config_dir (), "pinhole", "pinhole.conf", NULL);
      setup.user_path = user_path;
      if (state_dir == NULL)
        state_dir = g_build_filename (g_get_user_state_dir (), "pinhole", NULL);
      agent.bus_type = G_BUS_TYPE_SESSION;
    }
  setup.state_dir = state_dir;

  if (check_only)
    {
      g_autoptr (GPtrArray) layers
          = ph_config_layers_new (setup.system_path, setup.user_path, setup.managed_dir);
      g_autoptr (PhConfig) config = NULL;

      if (setup.mode == PH_DAEMON_MODE_STANDALONE)
        ((PhConfigFile *) g_ptr_array_index (layers, 0))->optional = FALSE;
      config = ph_config_load_layers (layers, &error);
      if (config == NULL)
        {
          fprintf (stderr, "%s\n", error->message);
          return 1;
        }
      if (ph_config_get_unready_reason (config) != NULL)
        {
          fprintf (stderr, "%s: %s\n", config_path, ph_config_get_unready_reason (config));
          return setup.mode == PH_DAEMON_MODE_STANDALONE ? 1 : 0;
        }
      printf ("%s: configuration is valid\n", config_path);
      return 0;
    }

  signal (SIGPIPE, SIG_IGN);
  raise_fd_limit ();
  /* The relay frees and allocates record-sized blocks all the time; without
   * a trim threshold above that churn glibc returns the heap top to the
   * kernel and takes it back, a brk() pair per batch of records. */
  mallopt (M_TRIM_THRESHOLD, 8 * 1024 * 1024);
  mallopt (M_TOP_PAD, 1024 * 1024);
  gnutls_global_init ();

  if (system_mode)
    setup.secrets = ph_secret_store_new_file (secrets_path);
  else if (session_mode)
    setup.secrets = session_secrets (state_dir);

  loop = g_main_loop_new (NULL, FALSE);
  agent.loop = loop;
  agent.daemon = ph_daemon_new (&setup, &error);
  if (agent.daemon == NULL)
    {
      fprintf (stderr, "pinhole-agent: %s\n", error->message);
      return 1;
    }
  g_unix_signal_add (SIGTERM, on_terminate, &agent);
  g_unix_signal_add (SIGINT, on_terminate, &agent);
  g_unix_signal_add (SIGHUP, on_reload, &agent);
  g_message ("pinhole-agent %s started (%s)", PH_VERSION,
             ph_daemon_mode_to_string (ph_daemon_get_mode (agent.daemon)));

  if (setup.mode == PH_DAEMON_MODE_STANDALONE)
    ph_service_notify_ready ();
  else
    {
      agent.service
          = ph_dbus_service_new (agent.daemon, system_mode ? PH_AUTH_POLKIT : PH_AUTH_SAME_USER);
      agent.owner_id
          = g_bus_own_name (agent.bus_type, PH_DBUS_NAME, G_BUS_NAME_OWNER_FLAGS_DO_NOT_QUEUE,
                            on_bus_acquired, on_name_acquired, on_name_lost, &agent, NULL);
    }

  g_main_loop_run (loop);

  if (agent.owner_id != 0)
    g_bus_unown_name (agent.owner_id);
  if (agent.service != NULL
      && g_dbus_interface_skeleton_get_connection (G_DBUS_INTERFACE_SKELETON (agent.service)))
    g_dbus_interface_skeleton_unexport (G_DBUS_INTERFACE_SKELETON (agent.service));
  g_clear_object (&agent.service);
  g_clear_object (&agent.daemon);
  gnutls_global_deinit ();
  g_message ("stopped");
  return agent.exit_code;
}

/* SPDX-License-Identifier: GPL-2.0-or-later */
/* ph-main-unix.c: pinhole-agent on Linux: standalone from one --config file, the system service
 * (the system bus, polkit) or per-user (the session bus); signals and systemd around it, and
 * the process tuned for many tunnels (the descriptor limit, the allocator). */
#define G_LOG_DOMAIN "pinhole-main"

#include "ph-build-config.h"
#include "ph-agent.h"
#include "ph-secret.h"
#include "ph-server.h"
#include "ph-service.h"

#include <malloc.h>
#include <signal.h>
#include <stdio.h>
#include <sys/resource.h>
#include <gnutls/gnutls.h>

/* The control interface on a bus, under the agent's well-known name. */
typedef struct
{
  PhAgent *agent;
  PhDBusService *service; /* the run's */
  PhDaemonMode mode;
  GBusType bus_type;
  guint owner_id;
  gboolean name_acquired;
} PhBusControl;

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

static void
on_bus_acquired (GDBusConnection *connection, const char *name, gpointer data)
{
  PhBusControl *control = data;
  g_autoptr (GError) error = NULL;

  if (!g_dbus_interface_skeleton_export (G_DBUS_INTERFACE_SKELETON (control->service), connection,
                                         PH_AGENT_OBJECT_PATH, &error))
    {
      g_warning ("cannot export %s: %s", PH_AGENT_OBJECT_PATH, error->message);
      ph_agent_fail (control->agent);
    }
}

static void
on_name_acquired (GDBusConnection *connection, const char *name, gpointer data)
{
  PhBusControl *control = data;

  control->name_acquired = TRUE;
  g_message ("control interface ready as %s on the %s bus", name,
             control->bus_type == G_BUS_TYPE_SYSTEM ? "system" : "session");
  ph_service_notify_ready ();
}

static void
on_name_lost (GDBusConnection *connection, const char *name, gpointer data)
{
  PhBusControl *control = data;

  if (connection == NULL)
    g_warning ("cannot connect to the %s bus",
               control->bus_type == G_BUS_TYPE_SYSTEM ? "system" : "session");
  else if (!control->name_acquired)
    g_warning ("%s is already owned: is another pinhole-agent running?", name);
  else
    g_warning ("lost the bus name %s", name);
  ph_agent_fail (control->agent);
}

static PhDBusService *
start_control (PhAgent *agent, PhDaemon *daemon, gpointer data, GError **error)
{
  PhBusControl *control = data;

  control->agent = agent;
  control->service = ph_dbus_service_new (
      daemon, control->mode == PH_DAEMON_MODE_SYSTEM ? PH_AUTH_POLKIT : PH_AUTH_SAME_USER);
  control->owner_id
      = g_bus_own_name (control->bus_type, PH_AGENT_BUS_NAME, G_BUS_NAME_OWNER_FLAGS_DO_NOT_QUEUE,
                        on_bus_acquired, on_name_acquired, on_name_lost, control, NULL);
  return control->service;
}

static void
stop_control (PhDBusService *service, gpointer data)
{
  PhBusControl *control = data;

  if (control->owner_id != 0)
    g_bus_unown_name (control->owner_id);
  if (g_dbus_interface_skeleton_get_connection (G_DBUS_INTERFACE_SKELETON (service)))
    g_dbus_interface_skeleton_unexport (G_DBUS_INTERFACE_SKELETON (service));
  control->service = NULL;
}

static void
report_fatal (const GError *error, gpointer data)
{
  fprintf (stderr, "pinhole-agent: %s\n", error->message);
}

static const PhAgentPlatform platform = {
  .start_control = start_control,
  .stop_control = stop_control,
  .report_fatal = report_fatal,
};

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

int
main (int argc, char **argv)
{
  g_auto (PhAgentOptions) options = { 0 };
  gboolean system_mode = FALSE, session_mode = FALSE;
  const GOptionEntry entries[] = {
    { "system", 0, 0, G_OPTION_ARG_NONE, &system_mode,
      "Run as the system service, controlled over the system bus", NULL },
    { "session", 0, 0, G_OPTION_ARG_NONE, &session_mode,
      "Run for this user, controlled over the session bus", NULL },
    { NULL },
  };
  g_autoptr (GOptionContext) ctx = g_option_context_new ("- Pinhole tunnel agent");
  g_autoptr (GError) error = NULL;
  g_autofree char *secrets_path = NULL;
  PhBusControl control = { 0 };
  PhDaemonSetup setup = { 0 };
  PhDaemonMode mode;
  int code;

  ph_agent_init_locale ();
  g_option_context_add_main_entries (ctx, entries, NULL);
  ph_agent_options_add (&options, ctx);
  g_option_context_set_description (
      ctx, "Without --system or --session the agent runs standalone from one --config file,\n"
           "with no control interface; SIGHUP reloads it.\n");
  if (!g_option_context_parse (ctx, &argc, &argv, &error))
    {
      fprintf (stderr, "pinhole-agent: %s\n", error->message);
      return 2;
    }
  if (options.version)
    return ph_agent_print_version ();
  ph_agent_init_log ();
  if (system_mode && session_mode)
    {
      fprintf (stderr, "pinhole-agent: --system and --session exclude each other\n");
      return 2;
    }

  mode = system_mode    ? PH_DAEMON_MODE_SYSTEM
         : session_mode ? PH_DAEMON_MODE_SESSION
                        : PH_DAEMON_MODE_STANDALONE;
  ph_agent_options_to_setup (&options, mode, &setup);
  control.mode = mode;
  control.bus_type = system_mode ? G_BUS_TYPE_SYSTEM : G_BUS_TYPE_SESSION;
  if (options.check_only)
    return ph_agent_check_config (&setup);
  if (options.restore_machine)
    return ph_agent_restore_machine_proxy (&setup);

  signal (SIGPIPE, SIG_IGN);
  raise_fd_limit ();
  /* The relay frees and allocates record-sized blocks all the time; without
   * a trim threshold above that churn glibc returns the heap top to the
   * kernel and takes it back, a brk() pair per batch of records. */
  mallopt (M_TRIM_THRESHOLD, 8 * 1024 * 1024);
  mallopt (M_TOP_PAD, 1024 * 1024);
  gnutls_global_init ();

  if (system_mode)
    {
      secrets_path = g_build_filename (setup.state_dir, "credentials", NULL);
      setup.secrets = ph_secret_store_new_file (secrets_path);
    }
  else if (session_mode)
    setup.secrets = session_secrets (setup.state_dir);
  code = ph_agent_run (&setup, &platform, &control);
  gnutls_global_deinit ();
  return code;
}

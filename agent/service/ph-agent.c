/* SPDX-License-Identifier: GPL-2.0-or-later */
/* ph-agent.c: pinhole-agent whatever the platform: the options every platform has, locale and
 * logging, --check-config, and the run: the daemon, the control interface the platform's main
 * serves, and the stop that drains open tunnels first. */
#define G_LOG_DOMAIN "pinhole-main"

#include "ph-build-config.h"
#include "ph-agent.h"
#include "ph-config-store.h"
#include "ph-error.h"
#include "ph-log.h"
#include "ph-machine-proxy.h"
#include "ph-paths.h"
#include "ph-service.h"

#include <locale.h>
#include <stdio.h>
#include <glib/gi18n.h>
#include <gnutls/gnutls.h>

#define DRAIN_TIMEOUT_MS 10000

struct _PhAgent
{
  const PhAgentPlatform *platform;
  gpointer data;
  GMainLoop *loop;
  PhDaemon *daemon;
  PhDBusService *service;
  gboolean stopping;
  int exit_code;
};

/* ---- before the run ---- */

void
ph_agent_init_locale (void)
{
  setlocale (LC_ALL, "");
  setlocale (LC_NUMERIC, "C");
  ph_paths_bind_textdomain (GETTEXT_PACKAGE);
  textdomain (GETTEXT_PACKAGE);
}

void
ph_agent_options_add (PhAgentOptions *options, GOptionContext *context)
{
  /* The context copies the entries, not the strings they point to. */
  options->config_help = g_strdup_printf ("Configuration file (default: %s%s)",
                                          ph_paths_sysconfdir (), G_DIR_SEPARATOR_S "pinhole.conf");
  options->managed_help = g_strdup_printf ("IT-managed drop-ins (default: %s%s)",
                                           ph_paths_sysconfdir (), G_DIR_SEPARATOR_S "managed.d");

  const GOptionEntry entries[] = {
    { "config", 'c', 0, G_OPTION_ARG_FILENAME, &options->config_path, options->config_help,
      "FILE" },
    { "managed-dir", 0, 0, G_OPTION_ARG_FILENAME, &options->managed_dir, options->managed_help,
      "DIR" },
    { "state-dir", 0, 0, G_OPTION_ARG_FILENAME, &options->state_dir,
      "Where the on/off state and (system mode) credentials are kept", "DIR" },
    { "check-config", 0, 0, G_OPTION_ARG_NONE, &options->check_only,
      "Check the configuration, print every problem, and exit", NULL },
    { "restore-machine-proxy", 0, 0, G_OPTION_ARG_NONE, &options->restore_machine,
      "Put back the machine-wide proxy consumers a run left set, and exit (package removal)",
      NULL },
    { "version", 0, 0, G_OPTION_ARG_NONE, &options->version, "Print the version and exit", NULL },
    { NULL },
  };
  g_option_context_add_main_entries (context, entries, NULL);
}

void
ph_agent_options_to_setup (PhAgentOptions *options, PhDaemonMode mode, PhDaemonSetup *setup)
{
  if (options->config_path == NULL)
    options->config_path = g_build_filename (ph_paths_sysconfdir (), "pinhole.conf", NULL);
  setup->mode = mode;
  setup->system_path = options->config_path;
  if (mode != PH_DAEMON_MODE_STANDALONE)
    {
      if (options->managed_dir == NULL)
        options->managed_dir = g_build_filename (ph_paths_sysconfdir (), "managed.d", NULL);
      setup->managed_dir = options->managed_dir;
      setup->watch = TRUE;
    }
  if (mode == PH_DAEMON_MODE_SYSTEM)
    {
      if (options->state_dir == NULL)
        options->state_dir
            = g_strdup (ph_service_get_state_directory () ?: ph_paths_localstatedir ());
    }
  else if (mode == PH_DAEMON_MODE_SESSION)
    {
      options->user_path
          = g_build_filename (g_get_user_config_dir (), "pinhole", "pinhole.conf", NULL);
      setup->user_path = options->user_path;
      if (options->state_dir == NULL)
        options->state_dir = g_build_filename (g_get_user_state_dir (), "pinhole", NULL);
    }
  setup->state_dir = options->state_dir;
}

void
ph_agent_options_clear (PhAgentOptions *options)
{
  g_clear_pointer (&options->config_path, g_free);
  g_clear_pointer (&options->managed_dir, g_free);
  g_clear_pointer (&options->state_dir, g_free);
  g_clear_pointer (&options->user_path, g_free);
  g_clear_pointer (&options->config_help, g_free);
  g_clear_pointer (&options->managed_help, g_free);
}

int
ph_agent_print_version (void)
{
  printf ("pinhole-agent %s (GLib %u.%u.%u, GnuTLS %s)\n", PH_VERSION, glib_major_version,
          glib_minor_version, glib_micro_version, gnutls_check_version (NULL));
  return 0;
}

void
ph_agent_init_log (void)
{
  ph_log_init ();
  ph_error_quark ();
}

int
ph_agent_restore_machine_proxy (const PhDaemonSetup *setup)
{
  const char *dir = setup->state_dir != NULL
                        ? setup->state_dir
                        : (ph_service_get_state_directory () ?: ph_paths_localstatedir ());
  g_autofree char *journal = g_build_filename (dir, "machine-proxy.journal", NULL);
  g_autoptr (PhMachineProxy) machine = ph_machine_proxy_new (journal);
  g_autoptr (GError) error = NULL;
  gboolean restored = FALSE;

  if (!ph_machine_proxy_recover (machine, &restored, &error))
    {
      fprintf (stderr, "pinhole-agent: %s\n", error->message);
      return 1;
    }
  g_message (restored ? "machine-wide proxy consumers put back from %s"
                      : "nothing to put back: no machine-proxy journal at %s",
             journal);
  return 0;
}

int
ph_agent_check_config (const PhDaemonSetup *setup)
{
  gboolean standalone = setup->mode == PH_DAEMON_MODE_STANDALONE;
  PhConfigStoreSetup store_setup = {
    .system_path = setup->system_path,
    .user_path = setup->user_path,
    .managed_dir = setup->managed_dir,
    .system_required = standalone,
  };
  g_autoptr (PhConfigStore) store = ph_config_store_new (&store_setup);
  g_autoptr (PhConfig) config = NULL;
  g_autoptr (GError) error = NULL;

  config = ph_config_store_load (store, &error);
  if (config == NULL)
    {
      fprintf (stderr, "%s\n", error->message);
      return 1;
    }
  if (ph_config_get_unready_reason (config) != NULL)
    {
      fprintf (stderr, "%s: %s\n", setup->system_path, ph_config_get_unready_reason (config));
      return standalone ? 1 : 0;
    }
  printf ("%s: configuration is valid\n", setup->system_path);
  return 0;
}

/* ---- the run ---- */

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

void
ph_agent_fail (PhAgent *agent)
{
  agent->exit_code = 1;
  g_main_loop_quit (agent->loop);
}

int
ph_agent_run (const PhDaemonSetup *setup, const PhAgentPlatform *platform, gpointer data)
{
  /* The stop and reload handlers keep pointing here: nothing dispatches them once the loop
   * has ended. */
  PhAgent agent = { .platform = platform, .data = data };
  g_autoptr (GError) error = NULL;
  g_autoptr (GMainLoop) loop = g_main_loop_new (NULL, FALSE);

  agent.loop = loop;
  agent.daemon = ph_daemon_new (setup, &error);
  if (agent.daemon == NULL)
    {
      platform->report_fatal (error, data);
      return 1;
    }
  ph_service_watch_stop_and_reload (on_terminate, on_reload, &agent);
  g_message ("pinhole-agent %s started (%s)", PH_VERSION,
             ph_daemon_mode_to_string (ph_daemon_get_mode (agent.daemon)));

  if (setup->mode == PH_DAEMON_MODE_STANDALONE)
    ph_service_notify_ready ();
  else
    {
      agent.service = platform->start_control (&agent, agent.daemon, data, &error);
      if (agent.service == NULL)
        {
          platform->report_fatal (error, data);
          ph_agent_fail (&agent);
        }
    }

  if (agent.exit_code == 0)
    g_main_loop_run (loop);

  if (agent.service != NULL)
    platform->stop_control (agent.service, data);
  g_clear_object (&agent.service);
  g_clear_object (&agent.daemon);
  g_message ("stopped");
  return agent.exit_code;
}

/* SPDX-License-Identifier: GPL-2.0-or-later */
/* ph-agent.h: pinhole-agent's part that is the same on every platform: the options every
 * platform has, locale and logging, --check-config, and the daemon run in a main loop until
 * it is told to stop. Each platform's main (ph-main-unix.c, ph-main-windows.c) adds its own
 * options and serves the control interface its way, through PhAgentPlatform. */
#pragma once

#include <gio/gio.h>

#include "ph-daemon.h"
#include "ph-dbus-service.h"

G_BEGIN_DECLS

typedef struct _PhAgent PhAgent;

/* What the platform's main provides for a run; @data is the main's own. */
typedef struct
{
  /* Makes the control interface's adapter for @daemon and serves it where clients find this
   * platform's agent; tells the service manager it is ready once they can (at once, or when a
   * bus name comes). NULL and @error: the agent cannot run. */
  PhDBusService *(*start_control) (PhAgent *agent, PhDaemon *daemon, gpointer data, GError **error);
  /* Takes @service off everywhere it was served; the run then drops it. */
  void (*stop_control) (PhDBusService *service, gpointer data);
  /* Says why the agent cannot run, where its service manager shows it. */
  void (*report_fatal) (const GError *error, gpointer data);
} PhAgentPlatform;

/* Errors that reach clients (LastError, method errors) speak the agent's language; numbers
 * stay C so that access lines parse the same anywhere. */
void ph_agent_init_locale (void);

/* The options every platform has. */
typedef struct
{
  char *config_path, *managed_dir, *state_dir;
  gboolean check_only, version;
  gboolean restore_machine; /* --restore-machine-proxy */
  /* Kept for the option context and the setup that point into them. */
  char *user_path, *config_help, *managed_help;
} PhAgentOptions;

/* Adds @options' entries to @context's main group, after whatever the platform added. */
void ph_agent_options_add (PhAgentOptions *options, GOptionContext *context);
/* Fills @setup (which points into @options, and takes no secret store) for @mode, with each
 * default that no option gave: the system file and the drop-ins in the system's configuration
 * folder; the state in the service manager's directory (system), or the user's (session). */
void ph_agent_options_to_setup (PhAgentOptions *options, PhDaemonMode mode, PhDaemonSetup *setup);
void ph_agent_options_clear (PhAgentOptions *options);

G_DEFINE_AUTO_CLEANUP_CLEAR_FUNC (PhAgentOptions, ph_agent_options_clear)

/* --version: prints it; the exit code. */
int ph_agent_print_version (void);
/* The log writer, and the error domain registered before any error crosses D-Bus. */
void ph_agent_init_log (void);
/* --check-config: every problem of @setup's configuration on stderr; the exit code. */
int ph_agent_check_config (const PhDaemonSetup *setup);
/* --restore-machine-proxy: puts back the machine-wide proxy consumers from the journal in
 * @setup's state directory (the system service's when none is given), without a running
 * service, for the package's removal; exit status 0 when nothing is left to put back. */
int ph_agent_restore_machine_proxy (const PhDaemonSetup *setup);

/* Runs the daemon made from @setup (which gives it its secret store) until it is told to stop,
 * draining open tunnels first; the exit code. */
int ph_agent_run (const PhDaemonSetup *setup, const PhAgentPlatform *platform, gpointer data);
/* Ends the run with exit code 1: the control interface cannot be served. */
void ph_agent_fail (PhAgent *agent);

G_END_DECLS

/* SPDX-License-Identifier: GPL-2.0-or-later */
/* ph-ctl.h: pinholectl's state and its commands, between the entry point and command table
 * (ph-ctl-main.c), the commands (ph-ctl-commands.c) and what differs per platform (ph-ctl-unix.c,
 * ph-ctl-win32.c). */
#pragma once

#include <gio/gio.h>

#include "ph-agent1-generated.h"
#include "ph-auth-agent.h"
#include "ph-ctl-exit.h"

G_BEGIN_DECLS

/* Which options a command accepts beyond the global ones. */
typedef enum
{
  PH_CTL_OPT_JSON = 1 << 0,
  PH_CTL_OPT_YES = 1 << 1,
  PH_CTL_OPT_PASSWORD_STDIN = 1 << 2,
  PH_CTL_OPT_LINES = 1 << 3,
  PH_CTL_OPT_FOLLOW = 1 << 4,
  PH_CTL_OPT_CAPTURE = 1 << 5, /* --gateway, --local */
  /* Not an option: the command changes something (or, connections and report, sees what the
   * machine's users do), so the system service may have polkit ask (--no-ask-password). */
  PH_CTL_CHANGES = 1 << 6,
} PhCtlOpt;

typedef struct
{
  /* global options */
  gboolean system;
  gboolean session;
  char *address;
  gboolean version;
  gboolean no_ask_password;
  /* command options */
  gboolean json;
  gboolean yes;
  gboolean password_stdin;
  int lines;
  gboolean follow;
  char *gateway;
  gboolean local;

  gboolean changes; /* PH_CTL_CHANGES of the command run */
  PhAgent1 *agent;
  PhAuthAgent *auth_agent; /* the terminal's polkit agent, while the command runs */
  int exit_status;         /* set by commands that pass on another program's status */
} PhCtl;

void ph_ctl_clear (PhCtl *ctl);

G_DEFINE_AUTO_CLEANUP_CLEAR_FUNC (PhCtl, ph_ctl_clear)

/* Finds the agent as --help says (--system, --session, --address, or the default) and makes
 * ctl->agent, once. */
gboolean ph_ctl_connect (PhCtl *ctl, GError **error);
/* Fetches the agent's properties, so that a failure to read them is reported instead of
 * showing empty values. */
gboolean ph_ctl_load_properties (PhCtl *ctl, GError **error);

/* The commands: @args are the command's own arguments. */
gboolean ph_ctl_cmd_status (PhCtl *ctl, char **args, GError **error);
gboolean ph_ctl_cmd_enable (PhCtl *ctl, char **args, GError **error);
gboolean ph_ctl_cmd_disable (PhCtl *ctl, char **args, GError **error);
gboolean ph_ctl_cmd_reload (PhCtl *ctl, char **args, GError **error);
gboolean ph_ctl_cmd_pin_show (PhCtl *ctl, char **args, GError **error);
gboolean ph_ctl_cmd_pin_trust (PhCtl *ctl, char **args, GError **error);
gboolean ph_ctl_cmd_set_credentials (PhCtl *ctl, char **args, GError **error);
gboolean ph_ctl_cmd_clear_credentials (PhCtl *ctl, char **args, GError **error);
gboolean ph_ctl_cmd_socks_user_add (PhCtl *ctl, char **args, GError **error);
gboolean ph_ctl_cmd_socks_user_remove (PhCtl *ctl, char **args, GError **error);
gboolean ph_ctl_cmd_socks_user_list (PhCtl *ctl, char **args, GError **error);
gboolean ph_ctl_cmd_get (PhCtl *ctl, char **args, GError **error);
gboolean ph_ctl_cmd_set (PhCtl *ctl, char **args, GError **error);
gboolean ph_ctl_cmd_settings (PhCtl *ctl, char **args, GError **error);
/* apply-from-tray PIPE: the tray's elevated helper (ph-elevate.h): reads the changes the tray
 * hands over on PIPE, makes them through the agent, answers how many were made. */
gboolean ph_ctl_cmd_apply_from_tray (PhCtl *ctl, char **args, GError **error);
gboolean ph_ctl_cmd_route (PhCtl *ctl, char **args, GError **error);
/* capture on (--gateway IFACE or --local), off, status: SetCapture and the Capture property;
 * status exits 1 when the rules asked for could not be put in. */
gboolean ph_ctl_cmd_capture_on (PhCtl *ctl, char **args, GError **error);
gboolean ph_ctl_cmd_capture_off (PhCtl *ctl, char **args, GError **error);
gboolean ph_ctl_cmd_capture_status (PhCtl *ctl, char **args, GError **error);
/* system-proxy status [--json], apply, restore: the machine-wide consumers ([system-proxy]
 * machine=) through GetMachineProxy, ApplyMachineProxy and RestoreMachineProxy. */
gboolean ph_ctl_cmd_system_proxy_status (PhCtl *ctl, char **args, GError **error);
gboolean ph_ctl_cmd_system_proxy_apply (PhCtl *ctl, char **args, GError **error);
gboolean ph_ctl_cmd_system_proxy_restore (PhCtl *ctl, char **args, GError **error);
/* Diagnose: the report for people, or as JSON; the exit status follows its first failure. */
gboolean ph_ctl_cmd_doctor (PhCtl *ctl, char **args, GError **error);
/* GetConnections as a table, the oldest first, or as JSON (ph-ctl-connections.c). */
gboolean ph_ctl_cmd_connections (PhCtl *ctl, char **args, GError **error);
/* The support report (ph-report.h) to FILE, with the log's last lines from the journal (the
 * service's log file on Windows) or from LOGFILE. */
gboolean ph_ctl_cmd_report (PhCtl *ctl, char **args, GError **error);

/* Per platform. */

/* The agent's log: the systemd journal, or the Windows service's log file. */
gboolean ph_ctl_cmd_logs (PhCtl *ctl, char **args, GError **error);
/* The options that choose a bus (--system, --session), ended by an empty entry; none where the
 * agent has no bus. */
const GOptionEntry *ph_ctl_bus_options (PhCtl *ctl);
/* Called once ctl->agent is made, for a command that changes something: unless
 * --no-ask-password, lets the system service have polkit ask for a password, on the terminal
 * when standard input is one (ph-auth-agent.h). Nothing on Windows, where the pipe's role
 * decides. */
void ph_ctl_allow_authorization (PhCtl *ctl);
/* The command line, in UTF-8 where the platform hands it over in another encoding. */
char **ph_ctl_get_arguments (int argc, char **argv);

/* How many lines "logs" shows without -n. */
#define PH_CTL_DEFAULT_LOG_LINES 50

G_END_DECLS

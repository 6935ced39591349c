/* SPDX-License-Identifier: GPL-2.0-or-later */
/* ph-service.h: the agent and its service manager: systemd's notify protocol and Unix signals
 * on Linux; the Service Control Manager, console control events and the Event Log on Windows. */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

/* Setup succeeded: listeners and the control interface are up. Under the SCM this is when the
 * service reports RUNNING, never before. */
void ph_service_notify_ready (void);
void ph_service_notify_reloading (void);
void ph_service_notify_stopping (void);
/* A one-line status shown by "systemctl status". */
void ph_service_notify_status (const char *status);
/* The directory the service manager made for state, or NULL. */
const char *ph_service_get_state_directory (void);

/* Runs @on_stop for SIGTERM and SIGINT (Linux), or for the SCM's stop and shutdown and for
 * Ctrl-C, Ctrl-Break and the console closing (Windows); @on_reload for SIGHUP or the SCM's
 * parameter change. Both run in the default main context; each returns G_SOURCE_CONTINUE. */
void ph_service_watch_stop_and_reload (GSourceFunc on_stop, GSourceFunc on_reload, gpointer data);

/* The agent's last @lines log lines as text: the systemd journal of the system unit (@system) or
 * of the user's unit on Linux (journalctl), the service's log file on Windows. For the support
 * report; the agent's own writer has already redacted them. */
char *ph_service_read_log (gboolean system, guint lines, GError **error);

#ifdef G_OS_UNIX
/* Whether a caller with Unix user id @uid (as the bus reports it) is this
 * process's own user or root. */
gboolean ph_service_uid_is_self_or_root (guint32 uid);
#endif

#ifdef G_OS_WIN32
#define PH_SERVICE_NAME "pinhole-agent"
#define PH_SERVICE_DISPLAY_NAME "Pinhole Agent"

typedef int (*PhServiceRun) (gpointer data);

/* Hands the process to the SCM: @run runs on the service's thread and its return value is the
 * service's exit code. FALSE (and @run not called) when the process was not started by the
 * SCM, so that the caller runs in the console instead. */
gboolean ph_service_dispatch (PhServiceRun run, gpointer data, int *exit_code);
/* The service's log file, %ProgramData%\Pinhole\logs\pinhole-agent.log: everything the
 * console would show (warnings and lifecycle messages also go to the Event Log). */
const char *ph_service_log_path (void);
/* Creates @dir if needed and gives it (and what it holds) a protected DACL: SYSTEM and
 * Administrators full control, and with @users_read, Users read and execute. */
gboolean ph_service_secure_directory (const char *dir, gboolean users_read);
/* TRUE inside ph_service_dispatch's @run. */
gboolean ph_service_is_under_scm (void);

/* Registers (or, when it exists, updates) the automatic-start service running this executable
 * with @args, and the Event Log source. Needs an administrator. */
gboolean ph_service_install (const char *args, GError **error);
/* Stops the service if it runs, then removes it and the Event Log source. Absent: TRUE. */
gboolean ph_service_uninstall (GError **error);
/* Start and wait until it reports RUNNING (or fails: the error says how it ended). */
gboolean ph_service_start (GError **error);
/* Stop and wait until it is stopped. Already stopped: TRUE. */
gboolean ph_service_stop (GError **error);
#endif

G_END_DECLS

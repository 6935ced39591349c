/* SPDX-License-Identifier: GPL-2.0-or-later */
/* ph-report.h: the support report that pinholectl report and the tray's "Save support report…"
 * write: one text file of sections (status, statistics, settings with their sources and locks,
 * open connections, the doctor's result, the agent's last log lines), secrets redacted. */
#pragma once

#include <gio/gio.h>

#include "ph-agent1-generated.h"

G_BEGIN_DECLS

/* How many log lines the report carries. */
#define PH_REPORT_LOG_LINES 500

/* @text with credentials replaced by "[redacted]": the value of an Authorization or
 * Proxy-Authorization header, a "Basic"/"Bearer"/"NTLM"/"Negotiate" token, a password= or
 * password: value, and the password of a URL's user:password@. */
char *ph_report_redact (const char *text);

/* The report on @agent, redacted, as text. Blocks: it asks the agent for its settings,
 * connections and statistics and runs Diagnose (up to two minutes). @log: the agent's last log
 * lines, or NULL with @log_note saying why there are none. */
char *ph_report_build (PhAgent1 *agent, const char *log, const char *log_note);

/* ph_report_build written to @path (mode 0600, replacing it atomically). */
gboolean ph_report_write (PhAgent1 *agent, const char *path, const char *log, const char *log_note,
                          GError **error);

G_END_DECLS

/* SPDX-License-Identifier: GPL-2.0-or-later */
/* ph-tray-report.h: "Save Support Report…": the same report as pinholectl report (ph-report.h),
 * written in a worker thread so that the tray stays responsive while the agent runs its doctor,
 * to a file the user picks. */
#pragma once

#include <gtk/gtk.h>

#include "ph-agent1-generated.h"

G_BEGIN_DECLS

/* Writes the report of @agent, with the agent's last log lines (the journal of its unit on
 * Linux, the service's log file on Windows, as far as this user may read it), to @path. */
void ph_tray_report_save_async (PhAgent1 *agent, const char *path, GCancellable *cancellable,
                                GAsyncReadyCallback callback, gpointer user_data);
gboolean ph_tray_report_save_finish (GAsyncResult *result, GError **error);

/* ph_tray_report_save_async, then a message dialog that says where the report went or why it
 * could not be written: what "Save Support Report…" does once a file is chosen. */
void ph_tray_report_save (PhAgent1 *agent, const char *path);

/* Asks where to save (a native file chooser over @parent, which may be NULL), saves, and says
 * how it went in a message dialog. With no @agent, says that the agent is not running. */
void ph_tray_report_choose (GtkWindow *parent, PhAgent1 *agent);

G_END_DECLS

/* SPDX-License-Identifier: GPL-2.0-or-later */
/* ph-diagnose-window.h: the "Diagnose…" window (ph-diagnose-window.ui): runs the agent's
 * Diagnose and shows, for each cloud proxy, its steps (name lookup, connection, key, sign-in,
 * web address) with a verdict and what to do next, and copies the report as plain text. */
#pragma once

#include <gtk/gtk.h>

#include "ph-agent1-generated.h"

G_BEGIN_DECLS

#define PH_TYPE_DIAGNOSE_WINDOW (ph_diagnose_window_get_type ())
G_DECLARE_FINAL_TYPE (PhDiagnoseWindow, ph_diagnose_window, PH, DIAGNOSE_WINDOW, GtkWindow)

PhDiagnoseWindow *ph_diagnose_window_new (GtkApplication *application);
/* The agent to ask; NULL while there is none (Run is then insensitive). */
void ph_diagnose_window_set_agent (PhDiagnoseWindow *self, PhAgent1 *agent);
/* Starts a diagnosis of @url ("" or NULL: the cloud proxies only), as the Run button does. */
void ph_diagnose_window_run (PhDiagnoseWindow *self, const char *url);
/* Whether a diagnosis is running. */
gboolean ph_diagnose_window_is_running (PhDiagnoseWindow *self);
/* The report shown, as the plain text that "Copy report" puts on the clipboard; NULL before any
 * report. */
char *ph_diagnose_window_get_report_text (PhDiagnoseWindow *self);

/* For tests, read from the widgets shown: the summary line; the verdict label of @step ("dns",
 * "tcp", "tls", "auth", "target") of the @proxy'th cloud proxy (NULL when there is no such row),
 * with the status its icon shows in @status and the advice below it in @advice ("" when none);
 * the error message shown when the call itself failed (NULL when none). */
const char *ph_diagnose_window_get_summary (PhDiagnoseWindow *self);
guint ph_diagnose_window_get_n_proxies (PhDiagnoseWindow *self);
const char *ph_diagnose_window_get_step (PhDiagnoseWindow *self, guint proxy, const char *step,
                                         const char **status, const char **advice);
const char *ph_diagnose_window_get_message (PhDiagnoseWindow *self);

G_END_DECLS

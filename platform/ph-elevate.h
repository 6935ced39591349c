/* SPDX-License-Identifier: GPL-2.0-or-later */
/* ph-elevate.h: one operation done by an administrator on a standard user's behalf. On Windows
 * the control pipe lets users toggle the tunnel only; a tray whose change the agent refused
 * starts a helper through UAC (ShellExecuteEx "runas" of pinholectl.exe apply-from-tray PIPE),
 * never itself, and hands it the changes over a pipe that only SYSTEM and Administrators may
 * open: the password crosses no command line, environment or file. The helper does exactly what
 * it was handed, answers, and exits. Elsewhere (ph-elevate-none.c) there is no such path: on
 * Linux polkit asks in place (ph-auth-agent.h, the calls' interactive-authorization flag).
 *
 * The request is an a(sss) of operations (PH_ELEVATE_OP_*: "set" KEY VALUE, "credentials" USER
 * PASSWORD, "trust-pin" PIN ""); the reply a (us): how many were done, and why the next was not
 * ("" when all were). */
#pragma once

#include <gio/gio.h>

G_BEGIN_DECLS

/* The request's and the reply's types. */
#define PH_ELEVATE_REQUEST_TYPE "a(sss)"
#define PH_ELEVATE_REPLY_TYPE "(us)"
/* The operations: SetSetting (KEY, VALUE), SetCredentials (USER, PASSWORD), TrustPin (PIN). */
#define PH_ELEVATE_OP_SET "set"
#define PH_ELEVATE_OP_CREDENTIALS "credentials"
#define PH_ELEVATE_OP_TRUST_PIN "trust-pin"

/* TRUE where a refused change can be asked of an administrator this way (Windows). */
gboolean ph_elevate_supported (void);

/* The helper: pinholectl.exe beside the running program, and its command. */
char *ph_elevate_helper_path (void);
#define PH_ELEVATE_COMMAND "apply-from-tray"

/* Starts @program @command PIPE elevated, hands it @request (floating is sunk) on PIPE and waits
 * for its reply. Fails G_IO_ERROR_CANCELLED when the administrator's approval is not given (or
 * @cancellable fires), G_IO_ERROR_NOT_SUPPORTED where there is no such path, G_IO_ERROR_FAILED
 * when the helper ends without a reply. */
void ph_elevate_run_async (const char *program, const char *command, GVariant *request,
                           GCancellable *cancellable, GAsyncReadyCallback callback,
                           gpointer user_data);
/* The helper's (us) reply. */
GVariant *ph_elevate_run_finish (GAsyncResult *result, GError **error);

/* The helper's side: what the helper does with each request, returning the (us) reply. */
typedef GVariant *(*PhElevateApplyFunc) (GVariant *request, gpointer user_data);

/* Opens @pipe_name (made by ph_elevate_run_async), reads the request, calls @apply and writes
 * its reply back. FALSE when there was no such pipe or it said nothing readable. */
gboolean ph_elevate_serve (const char *pipe_name, PhElevateApplyFunc apply, gpointer user_data,
                           GError **error);

G_END_DECLS

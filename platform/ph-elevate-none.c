/* SPDX-License-Identifier: GPL-2.0-or-later */
/* ph-elevate-none.c: no elevation helper here (Linux asks polkit in place; ph-elevate.h). */
#define G_LOG_DOMAIN "pinhole-platform"

#include "ph-elevate.h"

#include <glib/gi18n.h>

gboolean
ph_elevate_supported (void)
{
  return FALSE;
}

char *
ph_elevate_helper_path (void)
{
  return NULL;
}

void
ph_elevate_run_async (const char *program, const char *command, GVariant *request,
                      GCancellable *cancellable, GAsyncReadyCallback callback, gpointer user_data)
{
  g_autoptr (GVariant) owned = g_variant_ref_sink (request);

  g_task_report_new_error (NULL, callback, user_data, ph_elevate_run_async, G_IO_ERROR,
                           G_IO_ERROR_NOT_SUPPORTED,
                           _ ("Asking an administrator through a helper is only for Windows"));
}

GVariant *
ph_elevate_run_finish (GAsyncResult *result, GError **error)
{
  return g_task_propagate_pointer (G_TASK (result), error);
}

gboolean
ph_elevate_serve (const char *pipe_name, PhElevateApplyFunc apply, gpointer user_data,
                  GError **error)
{
  g_set_error_literal (error, G_IO_ERROR, G_IO_ERROR_NOT_SUPPORTED,
                       _ ("Asking an administrator through a helper is only for Windows"));
  return FALSE;
}

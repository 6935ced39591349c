/* SPDX-License-Identifier: GPL-2.0-or-later */
/* ph-ctl-win32.c: what pinholectl does on Windows alone: there is no bus to choose (the agent
 * is on its named pipe), the command line is read as UTF-16 gave it, and "logs" reads the
 * service's log file. */
#define G_LOG_DOMAIN "pinhole-ctl"

#include "ph-ctl.h"
#include "ph-service.h"

#include <stdio.h>
#include <glib/gi18n.h>

const GOptionEntry *
ph_ctl_bus_options (PhCtl *ctl)
{
  static const GOptionEntry none[] = { { NULL } };

  return none;
}

void
ph_ctl_allow_authorization (PhCtl *ctl)
{
  /* The pipe gives each client its role when it connects: nothing to ask for per call. */
}

char **
ph_ctl_get_arguments (int argc, char **argv)
{
  /* Not in the ANSI code page that argv is in. */
  return g_win32_get_command_line ();
}

/* The service's log file (ph_service_log_path): the last lines, then with --follow what is
 * appended, read every second as `tail -f` does. Warnings are in the Event Log too. */
gboolean
ph_ctl_cmd_logs (PhCtl *ctl, char **args, GError **error)
{
  const char *path = ph_service_log_path ();
  g_autofree char *text = NULL;
  gsize len = 0;
  int want = ctl->lines > 0 ? ctl->lines : PH_CTL_DEFAULT_LOG_LINES;
  const char *start;

  if (ctl->lines < -1 || ctl->lines == 0)
    {
      g_set_error_literal (error, PH_CTL_ERROR, PH_CTL_ERROR_USAGE,
                           _ ("-n needs a number of lines greater than 0"));
      return FALSE;
    }
  if (!g_file_get_contents (path, &text, &len, error))
    {
      g_prefix_error (error, _ ("the service's log (administrators only; warnings are also in "
                                "Event Viewer, Application, source “Pinhole Agent”): "));
      return FALSE;
    }
  /* Back from the end (its own newline aside) to the start of the last @want lines. */
  start = text + len;
  if (start > text && start[-1] == '\n')
    start--;
  while (start > text && !(start[-1] == '\n' && --want == 0))
    start--;
  fwrite (start, 1, (gsize) (text + len - start), stdout);
  fflush (stdout);
  while (ctl->follow)
    {
      g_autofree char *now = NULL;
      gsize now_len = 0;

      g_usleep (G_USEC_PER_SEC);
      if (!g_file_get_contents (path, &now, &now_len, NULL))
        continue;
      /* Rotated: start again from the top of the new file. */
      if (now_len < len)
        len = 0;
      fwrite (now + len, 1, now_len - len, stdout);
      fflush (stdout);
      len = now_len;
    }
  return TRUE;
}

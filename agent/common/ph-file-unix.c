/* SPDX-License-Identifier: GPL-2.0-or-later */
/* ph-file-unix.c: ph-file.h on Linux and other Unix systems (meson picks this file): POSIX
 * permission bits. */
#include "ph-file.h"
#include "ph-error.h"

#include <glib/gi18n.h>

gboolean
ph_file_check_private (const char *path, const GStatBuf *st, GError **error)
{
  if ((st->st_mode & 077) != 0)
    {
      g_set_error (error, PH_ERROR, PH_ERROR_INVALID_CONFIG,
                   /* TRANSLATORS: the password file's path, then its mode in octal;
                    * "chmod 600" is a command: keep it */
                   _ ("“%s” is readable by group or others (mode %03o); run chmod 600 on it"), path,
                   (unsigned) (st->st_mode & 0777));
      return FALSE;
    }
  return TRUE;
}

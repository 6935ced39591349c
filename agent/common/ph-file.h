/* SPDX-License-Identifier: GPL-2.0-or-later */
/* ph-file.h: checks on files that hold secrets, one implementation per platform (meson picks
 * ph-file-unix.c or ph-file-win32.c), so that the engine holds no platform conditionals. */
#pragma once

#include <glib.h>
#include <glib/gstdio.h>

G_BEGIN_DECLS

/* Whether the file at @path, already stat()ed into @st, is private to its owner. Unix: no
 * permission bit for group or others (PH_ERROR_INVALID_CONFIG naming the mode and the chmod
 * that fixes it). Windows: always TRUE; secrets there live in DPAPI (platform/) and POSIX
 * modes say nothing of who may read a file. */
gboolean ph_file_check_private (const char *path, const GStatBuf *st, GError **error);

G_END_DECLS

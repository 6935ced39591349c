/* SPDX-License-Identifier: GPL-2.0-or-later */
/* ph-tty-private.h: between ph-tty.c (what both platforms do alike) and its per-platform half
 * (ph-tty-unix.c, ph-tty-win32.c). */
#pragma once

#include "ph-tty.h"

G_BEGIN_DECLS

struct _PhTty
{
  int in_fd;  /* read from */
  int out_fd; /* written to: the same terminal, another descriptor on Windows */
};

/* Reads one line from @fd into @buf, without its "\n" or "\r\n", byte by byte. Fails for lines
 * that do not fit, NUL bytes and empty input. */
gboolean ph_tty_read_line (int fd, char *buf, gsize size, gsize *len_out, GError **error);

gboolean ph_tty_write_fd (int fd, const char *text, GError **error);

G_END_DECLS

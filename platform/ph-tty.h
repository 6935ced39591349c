/* SPDX-License-Identifier: GPL-2.0-or-later */
/* ph-tty.h: questions on the user's terminal for a command-line program, whatever its standard
 * input and output are: a password read without echo, a yes/no confirmation; and one line read
 * from standard input without leaving a copy in a stdio buffer. Used by pinholectl. */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

#define PH_TTY_ERROR (ph_tty_error_quark ())

typedef enum
{
  PH_TTY_ERROR_FAILED,      /* reading, writing or switching echo off failed */
  PH_TTY_ERROR_NO_TERMINAL, /* nobody to ask: no controlling terminal or console */
  PH_TTY_ERROR_BAD_INPUT,   /* no input, a line too long, or a NUL byte in it */
} PhTtyError;

GQuark ph_tty_error_quark (void);

typedef struct _PhTty PhTty;

/* The controlling terminal (/dev/tty) or the console (CONIN$, CONOUT$). */
PhTty *ph_tty_open (GError **error);
void ph_tty_close (PhTty *tty);

gboolean ph_tty_write (PhTty *tty, const char *text, GError **error);

/* Asks @prompt and reads the answer without echo into @buf (@size bytes with its NUL); a
 * signal or Ctrl+C while echo is off puts echo back first. The caller wipes @buf. */
gboolean ph_tty_read_secret (PhTty *tty, const char *prompt, char *buf, gsize size, gsize *len,
                             GError **error);

/* Asks @question followed by a space; @answer is TRUE for "y" or "yes", in English or in the
 * user's language. */
gboolean ph_tty_confirm (PhTty *tty, const char *question, gboolean *answer, GError **error);

/* One line from standard input, without its "\n" or "\r\n", read byte by byte so that nothing
 * past it is consumed. */
gboolean ph_tty_read_stdin_line (char *buf, gsize size, gsize *len, GError **error);

/* Whether standard output is a terminal, which shows what a question is about already. */
gboolean ph_tty_stdout_is_terminal (void);

G_DEFINE_AUTOPTR_CLEANUP_FUNC (PhTty, ph_tty_close)

G_END_DECLS

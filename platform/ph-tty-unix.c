/* SPDX-License-Identifier: GPL-2.0-or-later */
/* ph-tty-unix.c: the controlling terminal (/dev/tty) and its echo, with termios. */
#define G_LOG_DOMAIN "pinhole-tty"

#include "ph-tty-private.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <termios.h>
#include <unistd.h>
#include <glib/gi18n.h>

/* The terminal's settings while echo is off, so that a signal does not leave the user's shell
 * without echo. */
static int tty_restore_fd = -1;
static struct termios tty_restore_termios;

static void
tty_restore_on_signal (int sig)
{
  if (tty_restore_fd >= 0)
    tcsetattr (tty_restore_fd, TCSAFLUSH, &tty_restore_termios);
  signal (sig, SIG_DFL);
  raise (sig);
}

PhTty *
ph_tty_open (GError **error)
{
  int fd = open ("/dev/tty", O_RDWR | O_NOCTTY | O_CLOEXEC);
  PhTty *tty;

  if (fd < 0)
    {
      int saved_errno = errno;

      g_set_error (error, PH_TTY_ERROR, PH_TTY_ERROR_NO_TERMINAL, _ ("no terminal to ask on: %s"),
                   g_strerror (saved_errno));
      return NULL;
    }
  tty = g_new0 (PhTty, 1);
  tty->in_fd = fd;
  tty->out_fd = fd;
  return tty;
}

void
ph_tty_close (PhTty *tty)
{
  if (tty == NULL)
    return;
  close (tty->in_fd);
  g_free (tty);
}

gboolean
ph_tty_read_secret (PhTty *tty, const char *prompt, char *buf, gsize size, gsize *len,
                    GError **error)
{
  int fd = tty->in_fd;
  struct termios quiet;
  struct sigaction action = { 0 };
  struct sigaction old_int, old_term, old_hup, old_quit;
  gboolean ok;

  if (!ph_tty_write (tty, prompt, error))
    return FALSE;
  if (tcgetattr (fd, &tty_restore_termios) != 0)
    {
      int saved_errno = errno;

      g_set_error (error, PH_TTY_ERROR, PH_TTY_ERROR_FAILED,
                   _ ("could not turn off echo on the terminal: %s"), g_strerror (saved_errno));
      return FALSE;
    }
  action.sa_handler = tty_restore_on_signal;
  sigemptyset (&action.sa_mask);
  sigaction (SIGINT, &action, &old_int);
  sigaction (SIGTERM, &action, &old_term);
  sigaction (SIGHUP, &action, &old_hup);
  sigaction (SIGQUIT, &action, &old_quit);
  tty_restore_fd = fd;

  quiet = tty_restore_termios;
  quiet.c_lflag &= ~(tcflag_t) ECHO;
  quiet.c_lflag |= ECHONL;
  if (tcsetattr (fd, TCSAFLUSH, &quiet) != 0)
    {
      int saved_errno = errno;

      g_set_error (error, PH_TTY_ERROR, PH_TTY_ERROR_FAILED,
                   _ ("could not turn off echo on the terminal: %s"), g_strerror (saved_errno));
      ok = FALSE;
    }
  else
    {
      ok = ph_tty_read_line (fd, buf, size, len, error);
      tcsetattr (fd, TCSAFLUSH, &tty_restore_termios);
    }

  tty_restore_fd = -1;
  sigaction (SIGINT, &old_int, NULL);
  sigaction (SIGTERM, &old_term, NULL);
  sigaction (SIGHUP, &old_hup, NULL);
  sigaction (SIGQUIT, &old_quit, NULL);
  return ok;
}

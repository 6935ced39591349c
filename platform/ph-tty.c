/* SPDX-License-Identifier: GPL-2.0-or-later */
/* ph-tty.c: terminal input that both platforms do alike: lines read byte by byte, writes that
 * go on after EINTR, the yes/no question. Opening the terminal and switching its echo off are
 * per platform (ph-tty-unix.c, ph-tty-win32.c). */
#define G_LOG_DOMAIN "pinhole-tty"

#include "ph-tty-private.h"

#include <errno.h>
#include <string.h>
#include <unistd.h>
#include <glib/gi18n.h>

G_DEFINE_QUARK (ph - tty - error - quark, ph_tty_error)

gboolean
ph_tty_write_fd (int fd, const char *text, GError **error)
{
  gsize len = strlen (text);

  while (len > 0)
    {
      ssize_t n = write (fd, text, len);

      if (n < 0 && errno == EINTR)
        continue;
      if (n < 0)
        {
          int saved_errno = errno;

          g_set_error (error, PH_TTY_ERROR, PH_TTY_ERROR_FAILED, _ ("could not write: %s"),
                       g_strerror (saved_errno));
          return FALSE;
        }
      text += n;
      len -= (gsize) n;
    }
  return TRUE;
}

gboolean
ph_tty_write (PhTty *tty, const char *text, GError **error)
{
  return ph_tty_write_fd (tty->out_fd, text, error);
}

/* Byte by byte so that nothing past the line is consumed and no copy is left in a stdio
 * buffer. */
gboolean
ph_tty_read_line (int fd, char *buf, gsize size, gsize *len_out, GError **error)
{
  gsize len = 0;
  gboolean too_long = FALSE;
  gboolean got_newline = FALSE;
  gboolean got_nul = FALSE;
  gboolean got_any = FALSE;

  while (TRUE)
    {
      char c;
      ssize_t n = read (fd, &c, 1);

      if (n < 0 && errno == EINTR)
        continue;
      if (n < 0)
        {
          int saved_errno = errno;

          g_set_error (error, PH_TTY_ERROR, PH_TTY_ERROR_FAILED, _ ("could not read: %s"),
                       g_strerror (saved_errno));
          return FALSE;
        }
      if (n == 0)
        break;
      got_any = TRUE;
      if (c == '\n')
        {
          got_newline = TRUE;
          break;
        }
      if (c == '\0')
        got_nul = TRUE;
      if (len + 1 < size)
        buf[len++] = c;
      else
        too_long = TRUE;
    }
  if (got_newline && len > 0 && buf[len - 1] == '\r')
    len--;
  buf[len] = '\0';
  if (!got_any)
    {
      g_set_error_literal (error, PH_TTY_ERROR, PH_TTY_ERROR_BAD_INPUT, _ ("no input"));
      return FALSE;
    }
  if (too_long)
    {
      g_set_error (error, PH_TTY_ERROR, PH_TTY_ERROR_BAD_INPUT,
                   _ ("the line is longer than %u bytes"), (guint) (size - 1));
      return FALSE;
    }
  if (got_nul)
    {
      g_set_error_literal (error, PH_TTY_ERROR, PH_TTY_ERROR_BAD_INPUT,
                           _ ("the line contains a NUL byte"));
      return FALSE;
    }
  *len_out = len;
  return TRUE;
}

gboolean
ph_tty_read_stdin_line (char *buf, gsize size, gsize *len, GError **error)
{
  return ph_tty_read_line (STDIN_FILENO, buf, size, len, error);
}

gboolean
ph_tty_stdout_is_terminal (void)
{
  return isatty (STDOUT_FILENO);
}

gboolean
ph_tty_confirm (PhTty *tty, const char *question, gboolean *answer, GError **error)
{
  char buf[64];
  gsize len = 0;
  g_autofree char *prompt = g_strdup_printf ("%s ", question);

  *answer = FALSE;
  if (!ph_tty_write (tty, prompt, error))
    return FALSE;
  if (!ph_tty_read_line (tty->in_fd, buf, sizeof buf, &len, error))
    return FALSE;
  g_strstrip (buf);
  /* English "y" and "yes" are always accepted too. */
  *answer = g_ascii_strcasecmp (buf, "y") == 0 || g_ascii_strcasecmp (buf, "yes") == 0;
  /* TRANSLATORS: the short form of "yes" accepted at a [y/N] question */
  *answer = *answer || g_utf8_collate (buf, C_ ("answer", "y")) == 0;
  /* TRANSLATORS: the long form of "yes" accepted at a [y/N] question */
  *answer = *answer || g_utf8_collate (buf, C_ ("answer", "yes")) == 0;
  return TRUE;
}

/* SPDX-License-Identifier: GPL-2.0-or-later */
/* ph-tty-win32.c: the console, opened for the question whatever stdin and stdout are: CONIN$
 * to read, CONOUT$ to write the prompt; a secret is read as UTF-16 from the console (not in its
 * code page) with echo off. */
#define G_LOG_DOMAIN "pinhole-tty"

#include "ph-tty-private.h"
#include "ph-wipe.h"

#include <fcntl.h>
#include <io.h>
#include <string.h>
#include <windows.h>
#include <glib/gi18n.h>

PhTty *
ph_tty_open (GError **error)
{
  HANDLE in = CreateFileW (L"CONIN$", GENERIC_READ | GENERIC_WRITE,
                           FILE_SHARE_READ | FILE_SHARE_WRITE, NULL, OPEN_EXISTING, 0, NULL);
  HANDLE out = CreateFileW (L"CONOUT$", GENERIC_READ | GENERIC_WRITE,
                            FILE_SHARE_READ | FILE_SHARE_WRITE, NULL, OPEN_EXISTING, 0, NULL);
  PhTty *tty;

  if (in == INVALID_HANDLE_VALUE || out == INVALID_HANDLE_VALUE)
    {
      g_autofree char *msg = g_win32_error_message (GetLastError ());

      if (in != INVALID_HANDLE_VALUE)
        CloseHandle (in);
      if (out != INVALID_HANDLE_VALUE)
        CloseHandle (out);
      g_set_error (error, PH_TTY_ERROR, PH_TTY_ERROR_NO_TERMINAL, _ ("no terminal to ask on: %s"),
                   msg);
      return NULL;
    }
  tty = g_new0 (PhTty, 1);
  tty->out_fd = _open_osfhandle ((intptr_t) out, _O_WRONLY | _O_BINARY);
  tty->in_fd = _open_osfhandle ((intptr_t) in, _O_RDONLY | _O_BINARY);
  return tty;
}

void
ph_tty_close (PhTty *tty)
{
  if (tty == NULL)
    return;
  close (tty->in_fd);
  close (tty->out_fd);
  g_free (tty);
}

/* The console's mode while echo is off, put back on Ctrl+C. */
static HANDLE tty_restore_handle = INVALID_HANDLE_VALUE;
static DWORD tty_restore_mode;

static BOOL WINAPI
tty_restore_on_ctrl (DWORD event)
{
  if (tty_restore_handle != INVALID_HANDLE_VALUE)
    SetConsoleMode (tty_restore_handle, tty_restore_mode);
  return FALSE;
}

gboolean
ph_tty_read_secret (PhTty *tty, const char *prompt, char *buf, gsize size, gsize *len,
                    GError **error)
{
  HANDLE in = (HANDLE) _get_osfhandle (tty->in_fd);
  wchar_t wbuf[1024];
  DWORD nread = 0;
  glong n8 = 0;
  g_autofree char *utf8 = NULL;
  gboolean ok = FALSE;

  if (!ph_tty_write (tty, prompt, error))
    return FALSE;
  if (!GetConsoleMode (in, &tty_restore_mode))
    {
      g_autofree char *msg = g_win32_error_message (GetLastError ());

      g_set_error (error, PH_TTY_ERROR, PH_TTY_ERROR_FAILED,
                   _ ("could not turn off echo on the terminal: %s"), msg);
      return FALSE;
    }
  tty_restore_handle = in;
  SetConsoleCtrlHandler (tty_restore_on_ctrl, TRUE);
  SetConsoleMode (in, (tty_restore_mode & ~(DWORD) ENABLE_ECHO_INPUT) | ENABLE_LINE_INPUT);
  if (ReadConsoleW (in, wbuf, G_N_ELEMENTS (wbuf) - 1, &nread, NULL))
    {
      while (nread > 0 && (wbuf[nread - 1] == L'\n' || wbuf[nread - 1] == L'\r'))
        nread--;
      utf8 = g_utf16_to_utf8 ((gunichar2 *) wbuf, nread, NULL, &n8, NULL);
      ok = utf8 != NULL && (gsize) n8 < size;
    }
  SetConsoleMode (in, tty_restore_mode);
  SetConsoleCtrlHandler (tty_restore_on_ctrl, FALSE);
  tty_restore_handle = INVALID_HANDLE_VALUE;
  ph_tty_write (tty, "\r\n", NULL);
  ph_wipe (wbuf, sizeof wbuf);
  if (!ok)
    {
      if (utf8 != NULL)
        ph_wipe (utf8, (gsize) n8);
      g_set_error (error, PH_TTY_ERROR, PH_TTY_ERROR_BAD_INPUT,
                   _ ("the line is longer than %u bytes"), (guint) (size - 1));
      return FALSE;
    }
  memcpy (buf, utf8, (gsize) n8 + 1);
  *len = (gsize) n8;
  ph_wipe (utf8, (gsize) n8);
  return TRUE;
}

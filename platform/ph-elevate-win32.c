/* SPDX-License-Identifier: GPL-2.0-or-later */
/* ph-elevate-win32.c: the UAC path of ph-elevate.h. The tray's side makes a pipe that only
 * SYSTEM and Administrators may open (so no un-elevated program of the user can read the
 * password in it), starts the helper with ShellExecuteEx "runas" (Windows asks for an
 * administrator's approval, on the secure desktop), hands the request over and reads the reply.
 * The helper's side opens the pipe, reads, applies, answers. One length-prefixed GVariant each
 * way (normal form, little-endian length), at most PH_ELEVATE_MAX bytes. */
#define G_LOG_DOMAIN "pinhole-platform"

#include "ph-elevate.h"
#include "ph-wipe.h"

#include <glib/gi18n.h>
#include <string.h>

#include <windows.h>
#include <sddl.h>
#include <shellapi.h>

#define PH_ELEVATE_PIPE_PREFIX "\\\\.\\pipe\\pinhole-elevate-"
#define PH_ELEVATE_MAX (64 * 1024)
/* Once the helper runs (the approval is given before ShellExecuteEx returns), how long it may
 * take to connect, and to apply and answer (each change goes through the agent). */
#define PH_ELEVATE_IO_TIMEOUT_MS (120 * 1000)

gboolean
ph_elevate_supported (void)
{
  return TRUE;
}

char *
ph_elevate_helper_path (void)
{
  wchar_t module[MAX_PATH];
  DWORD n = GetModuleFileNameW (NULL, module, G_N_ELEMENTS (module));
  g_autofree char *path = NULL;
  g_autofree char *dir = NULL;

  if (n == 0 || n >= G_N_ELEMENTS (module))
    return NULL;
  path = g_utf16_to_utf8 (module, n, NULL, NULL, NULL);
  if (path == NULL)
    return NULL;
  dir = g_path_get_dirname (path);
  return g_build_filename (dir, "pinholectl.exe", NULL);
}

static void
set_win32_error (GError **error, DWORD code, const char *what)
{
  g_autofree char *message = g_win32_error_message (code);

  g_set_error (error, G_IO_ERROR, g_io_error_from_win32_error (code), "%s: %s", what, message);
}

/* ---- the tray's side ---- */

typedef struct
{
  char *program;
  char *command;
  GVariant *request;
} RunData;

static void
run_data_free (RunData *rd)
{
  g_free (rd->program);
  g_free (rd->command);
  g_variant_unref (rd->request);
  g_free (rd);
}

/* Waits for the pending @ov on @pipe, or for @cancel or the end of @process. */
static gboolean
wait_pending (HANDLE pipe, OVERLAPPED *ov, HANDLE process, HANDLE cancel, DWORD *done,
              GError **error)
{
  HANDLE handles[3] = { ov->hEvent, cancel, process };
  DWORD w = WaitForMultipleObjects (3, handles, FALSE, PH_ELEVATE_IO_TIMEOUT_MS);
  DWORD code = 0;

  if (w == WAIT_OBJECT_0)
    {
      if (GetOverlappedResult (pipe, ov, done, FALSE))
        return TRUE;
      set_win32_error (error, GetLastError (), _ ("The administrator's helper"));
      return FALSE;
    }
  CancelIoEx (pipe, ov);
  GetOverlappedResult (pipe, ov, done, TRUE);
  if (w == WAIT_OBJECT_0 + 1)
    g_set_error_literal (error, G_IO_ERROR, G_IO_ERROR_CANCELLED, _ ("Cancelled"));
  else if (w == WAIT_OBJECT_0 + 2)
    {
      GetExitCodeProcess (process, &code);
      g_set_error (error, G_IO_ERROR, G_IO_ERROR_FAILED,
                   /* TRANSLATORS: %lu is a process's exit code */
                   _ ("The administrator's helper ended without an answer (exit code %lu)"),
                   (unsigned long) code);
    }
  else
    g_set_error_literal (error, G_IO_ERROR, G_IO_ERROR_TIMED_OUT,
                         _ ("The administrator's helper did not answer in time"));
  return FALSE;
}

/* Reads or writes all of @buf (@len bytes) on the overlapped @pipe. */
static gboolean
pipe_io (HANDLE pipe, gboolean writing, guint8 *buf, DWORD len, HANDLE process, HANDLE cancel,
         GError **error)
{
  OVERLAPPED ov = { 0 };
  gboolean ok = TRUE;

  ov.hEvent = CreateEventW (NULL, TRUE, FALSE, NULL);
  while (ok && len > 0)
    {
      DWORD done = 0;
      BOOL now;

      ResetEvent (ov.hEvent);
      now = writing ? WriteFile (pipe, buf, len, NULL, &ov) : ReadFile (pipe, buf, len, NULL, &ov);
      if (now)
        ok = GetOverlappedResult (pipe, &ov, &done, TRUE);
      else if (GetLastError () == ERROR_IO_PENDING)
        ok = wait_pending (pipe, &ov, process, cancel, &done, error);
      else
        {
          set_win32_error (error, GetLastError (), _ ("The administrator's helper"));
          ok = FALSE;
        }
      if (ok && done == 0)
        {
          g_set_error_literal (error, G_IO_ERROR, G_IO_ERROR_CLOSED,
                               _ ("The administrator's helper closed the pipe"));
          ok = FALSE;
        }
      buf += done;
      len -= done;
    }
  CloseHandle (ov.hEvent);
  return ok;
}

static gboolean
pipe_connect (HANDLE pipe, HANDLE process, HANDLE cancel, GError **error)
{
  OVERLAPPED ov = { 0 };
  DWORD done;
  gboolean ok = TRUE;

  ov.hEvent = CreateEventW (NULL, TRUE, FALSE, NULL);
  if (!ConnectNamedPipe (pipe, &ov))
    {
      DWORD code = GetLastError ();

      if (code == ERROR_IO_PENDING)
        ok = wait_pending (pipe, &ov, process, cancel, &done, error);
      else if (code != ERROR_PIPE_CONNECTED)
        {
          set_win32_error (error, code, _ ("The administrator's helper"));
          ok = FALSE;
        }
    }
  CloseHandle (ov.hEvent);
  return ok;
}

static void
on_cancelled (GCancellable *cancellable, gpointer event)
{
  SetEvent (event);
}

/* The exchange on the connected @pipe: the request out, the reply in. */
static GVariant *
exchange (HANDLE pipe, GVariant *request, HANDLE process, HANDLE cancel, GError **error)
{
  g_autoptr (GVariant) normal = g_variant_get_normal_form (request);
  gsize size = g_variant_get_size (normal);
  guint32 len = GUINT32_TO_LE ((guint32) size);
  guint8 *data;
  gboolean ok;
  g_autoptr (GVariant) reply = NULL;

  if (size > PH_ELEVATE_MAX)
    {
      g_set_error_literal (error, G_IO_ERROR, G_IO_ERROR_MESSAGE_TOO_LARGE,
                           _ ("Too many changes for one administrator's approval"));
      return NULL;
    }
  data = g_malloc (MAX (size, 1));
  g_variant_store (normal, data);
  ok = pipe_io (pipe, TRUE, (guint8 *) &len, sizeof len, process, cancel, error)
       && pipe_io (pipe, TRUE, data, (DWORD) size, process, cancel, error);
  /* The request may hold a password. */
  ph_wipe (data, size);
  g_free (data);
  if (!ok || !pipe_io (pipe, FALSE, (guint8 *) &len, sizeof len, process, cancel, error))
    return NULL;
  len = GUINT32_FROM_LE (len);
  if (len > PH_ELEVATE_MAX)
    {
      g_set_error_literal (error, G_IO_ERROR, G_IO_ERROR_INVALID_DATA,
                           _ ("The administrator's helper gave an unreadable answer"));
      return NULL;
    }
  data = g_malloc (MAX (len, 1));
  if (!pipe_io (pipe, FALSE, data, len, process, cancel, error))
    {
      g_free (data);
      return NULL;
    }
  reply = g_variant_new_from_data (G_VARIANT_TYPE (PH_ELEVATE_REPLY_TYPE), data, len, FALSE, g_free,
                                   data);
  return g_variant_get_normal_form (reply);
}

static void
run_thread (GTask *task, gpointer source, gpointer task_data, GCancellable *cancellable)
{
  RunData *rd = task_data;
  g_autofree char *uuid = g_uuid_string_random ();
  g_autofree char *name = g_strconcat (PH_ELEVATE_PIPE_PREFIX, uuid, NULL);
  g_autofree char *params = g_strdup_printf ("%s %s", rd->command, name);
  g_autofree wchar_t *wname = g_utf8_to_utf16 (name, -1, NULL, NULL, NULL);
  g_autofree wchar_t *wprogram = g_utf8_to_utf16 (rd->program, -1, NULL, NULL, NULL);
  g_autofree wchar_t *wparams = g_utf8_to_utf16 (params, -1, NULL, NULL, NULL);
  SECURITY_ATTRIBUTES sa = { sizeof sa, NULL, FALSE };
  SHELLEXECUTEINFOW sei = { sizeof sei };
  HANDLE pipe;
  HANDLE cancel;
  gulong handler = 0;
  GError *error = NULL;
  GVariant *reply = NULL;

  if (wprogram == NULL || wparams == NULL)
    {
      g_task_return_new_error (task, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT,
                               "not a program's name: %s", rd->program);
      return;
    }
  /* SYSTEM and Administrators only: the helper, once elevated, can open it; nothing else of
   * the user's can. One instance, made before the helper exists; local clients only. */
  if (!ConvertStringSecurityDescriptorToSecurityDescriptorW (
          L"D:P(A;;GA;;;SY)(A;;GA;;;BA)", SDDL_REVISION_1, &sa.lpSecurityDescriptor, NULL))
    {
      g_task_return_new_error (task, G_IO_ERROR, G_IO_ERROR_FAILED, "security descriptor: %lu",
                               GetLastError ());
      return;
    }
  pipe = CreateNamedPipeW (
      wname, PIPE_ACCESS_DUPLEX | FILE_FLAG_FIRST_PIPE_INSTANCE | FILE_FLAG_OVERLAPPED,
      PIPE_TYPE_BYTE | PIPE_READMODE_BYTE | PIPE_WAIT | PIPE_REJECT_REMOTE_CLIENTS, 1,
      PH_ELEVATE_MAX, PH_ELEVATE_MAX, 0, &sa);
  LocalFree (sa.lpSecurityDescriptor);
  if (pipe == INVALID_HANDLE_VALUE)
    {
      set_win32_error (&error, GetLastError (), name);
      g_task_return_error (task, error);
      return;
    }
  cancel = CreateEventW (NULL, TRUE, FALSE, NULL);
  if (cancellable != NULL)
    handler = g_cancellable_connect (cancellable, G_CALLBACK (on_cancelled), cancel, NULL);

  g_message ("asking for an administrator: %s %s", rd->program, params);
  sei.fMask = SEE_MASK_NOCLOSEPROCESS | SEE_MASK_FLAG_NO_UI | SEE_MASK_NOASYNC;
  sei.lpVerb = L"runas";
  sei.lpFile = wprogram;
  sei.lpParameters = wparams;
  sei.nShow = SW_HIDE;
  if (!ShellExecuteExW (&sei) || sei.hProcess == NULL)
    {
      DWORD code = GetLastError ();

      if (code == ERROR_CANCELLED)
        g_set_error_literal (&error, G_IO_ERROR, G_IO_ERROR_CANCELLED,
                             _ ("An administrator's approval was not given"));
      else
        set_win32_error (&error, code, rd->program);
    }
  else
    {
      if (pipe_connect (pipe, sei.hProcess, cancel, &error))
        reply = exchange (pipe, rd->request, sei.hProcess, cancel, &error);
      /* It exits once it has answered. */
      WaitForSingleObject (sei.hProcess, 10 * 1000);
      CloseHandle (sei.hProcess);
    }
  if (handler != 0)
    g_cancellable_disconnect (cancellable, handler);
  CloseHandle (cancel);
  DisconnectNamedPipe (pipe);
  CloseHandle (pipe);
  if (reply != NULL)
    g_task_return_pointer (task, reply, (GDestroyNotify) g_variant_unref);
  else
    g_task_return_error (task, error);
}

void
ph_elevate_run_async (const char *program, const char *command, GVariant *request,
                      GCancellable *cancellable, GAsyncReadyCallback callback, gpointer user_data)
{
  g_autoptr (GTask) task = g_task_new (NULL, cancellable, callback, user_data);
  RunData *rd = g_new0 (RunData, 1);

  g_return_if_fail (g_variant_is_of_type (request, G_VARIANT_TYPE (PH_ELEVATE_REQUEST_TYPE)));
  g_task_set_source_tag (task, ph_elevate_run_async);
  rd->program = g_strdup (program);
  rd->command = g_strdup (command);
  rd->request = g_variant_ref_sink (request);
  g_task_set_task_data (task, rd, (GDestroyNotify) run_data_free);
  g_task_run_in_thread (task, run_thread);
}

GVariant *
ph_elevate_run_finish (GAsyncResult *result, GError **error)
{
  return g_task_propagate_pointer (G_TASK (result), error);
}

/* ---- the helper's side ---- */

static gboolean
read_all (HANDLE pipe, guint8 *buf, DWORD len, GError **error)
{
  while (len > 0)
    {
      DWORD done = 0;

      if (!ReadFile (pipe, buf, len, &done, NULL) || done == 0)
        {
          set_win32_error (error, GetLastError (), _ ("The tray's pipe"));
          return FALSE;
        }
      buf += done;
      len -= done;
    }
  return TRUE;
}

static gboolean
write_all (HANDLE pipe, const guint8 *buf, DWORD len, GError **error)
{
  while (len > 0)
    {
      DWORD done = 0;

      if (!WriteFile (pipe, buf, len, &done, NULL))
        {
          set_win32_error (error, GetLastError (), _ ("The tray's pipe"));
          return FALSE;
        }
      buf += done;
      len -= done;
    }
  return TRUE;
}

gboolean
ph_elevate_serve (const char *pipe_name, PhElevateApplyFunc apply, gpointer user_data,
                  GError **error)
{
  g_autofree wchar_t *wname = NULL;
  HANDLE pipe;
  guint32 len;
  gsize size = 0;
  guint8 *data = NULL;
  g_autoptr (GVariant) request = NULL;
  g_autoptr (GVariant) reply = NULL;
  g_autoptr (GVariant) normal = NULL;
  gboolean ok = FALSE;

  /* Only a pipe of ours: the helper runs elevated and must not be pointed at anything else. */
  if (!g_str_has_prefix (pipe_name, PH_ELEVATE_PIPE_PREFIX)
      || strpbrk (pipe_name + strlen (PH_ELEVATE_PIPE_PREFIX), "\\/") != NULL)
    {
      g_set_error (error, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT,
                   /* TRANSLATORS: %s is a named pipe's name */
                   _ ("%s is not a Pinhole tray's pipe"), pipe_name);
      return FALSE;
    }
  wname = g_utf8_to_utf16 (pipe_name, -1, NULL, NULL, NULL);
  pipe = CreateFileW (wname, GENERIC_READ | GENERIC_WRITE, 0, NULL, OPEN_EXISTING,
                      SECURITY_SQOS_PRESENT | SECURITY_IDENTIFICATION, NULL);
  if (pipe == INVALID_HANDLE_VALUE)
    {
      set_win32_error (error, GetLastError (), pipe_name);
      return FALSE;
    }
  if (!read_all (pipe, (guint8 *) &len, sizeof len, error))
    goto out;
  size = GUINT32_FROM_LE (len);
  if (size > PH_ELEVATE_MAX)
    {
      g_set_error_literal (error, G_IO_ERROR, G_IO_ERROR_INVALID_DATA,
                           _ ("The tray's request is too large"));
      goto out;
    }
  data = g_malloc (MAX (size, 1));
  if (!read_all (pipe, data, size, error))
    goto out;
  /* GVariant reads untrusted data safely (a value not in normal form reads as defaults). */
  request = g_variant_ref_sink (g_variant_new_from_data (G_VARIANT_TYPE (PH_ELEVATE_REQUEST_TYPE),
                                                         data, size, FALSE, NULL, NULL));
  reply = g_variant_ref_sink (apply (request, user_data));
  /* @apply is ours (pinholectl's): a reply of another type is a bug, not input. */
  g_assert (g_variant_is_of_type (reply, G_VARIANT_TYPE (PH_ELEVATE_REPLY_TYPE)));
  normal = g_variant_get_normal_form (reply);
  len = GUINT32_TO_LE ((guint32) g_variant_get_size (normal));
  ok = write_all (pipe, (const guint8 *) &len, sizeof len, error)
       && write_all (pipe, g_variant_get_data (normal), (DWORD) g_variant_get_size (normal), error);
  FlushFileBuffers (pipe);
out:
  if (data != NULL)
    {
      ph_wipe (data, size);
      g_free (data);
    }
  CloseHandle (pipe);
  return ok;
}

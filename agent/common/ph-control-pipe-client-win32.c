/* SPDX-License-Identifier: GPL-2.0-or-later */
/* ph-control-pipe-client-win32.c: connects to the agent's \\.\pipe\pinhole-agent and runs the
 * D-Bus handshake on it. Here rather than beside the server in platform/, because ph-client
 * (agent/common/) is how pinholectl and the tray reach the agent, and common uses no platform
 * code. */
#define G_LOG_DOMAIN "pinhole-control"

#include "ph-control-pipe-client.h"

#include <windows.h>
#include <gio/gwin32inputstream.h>
#include <gio/gwin32outputstream.h>

/* Enough for the listener to put up its next instance when all are taken. */
#define CONNECT_TIMEOUT_MS 5000

const char *
ph_control_pipe_name (void)
{
  const char *name = g_getenv ("PINHOLE_CONTROL_PIPE");

  return name != NULL && *name != '\0' ? name : PH_CONTROL_PIPE_DEFAULT;
}

static void
set_win32_error (GError **error, DWORD code, const char *what)
{
  g_autofree char *msg = g_win32_error_message (code);

  g_set_error (error, G_IO_ERROR, g_io_error_from_win32_error (code), "%s: %s", what, msg);
}

GDBusConnection *
ph_control_pipe_connect_sync (const char *name, GCancellable *cancellable, GError **error)
{
  g_autofree gunichar2 *wname = g_utf8_to_utf16 (name, -1, NULL, NULL, NULL);
  g_autoptr (GInputStream) in = NULL;
  g_autoptr (GOutputStream) out = NULL;
  g_autoptr (GIOStream) stream = NULL;
  gint64 deadline = g_get_monotonic_time () + CONNECT_TIMEOUT_MS * G_TIME_SPAN_MILLISECOND;
  HANDLE pipe;

  for (;;)
    {
      DWORD code;

      /* Identification only: the agent may learn who we are, not act as us. */
      pipe = CreateFileW (wname, GENERIC_READ | GENERIC_WRITE, 0, NULL, OPEN_EXISTING,
                          FILE_FLAG_OVERLAPPED | SECURITY_SQOS_PRESENT | SECURITY_IDENTIFICATION,
                          NULL);
      if (pipe != INVALID_HANDLE_VALUE)
        break;
      code = GetLastError ();
      if (code == ERROR_FILE_NOT_FOUND)
        {
          g_set_error (error, G_IO_ERROR, G_IO_ERROR_NOT_FOUND,
                       "no pinhole-agent is listening on %s", name);
          return NULL;
        }
      /* Every instance is taken: the listener is making the next one. */
      if (code != ERROR_PIPE_BUSY || g_get_monotonic_time () > deadline)
        {
          set_win32_error (error, code, name);
          return NULL;
        }
      if (g_cancellable_set_error_if_cancelled (cancellable, error))
        return NULL;
      WaitNamedPipeW (wname, 200);
    }
  /* One stream over the handle; closing it closes the handle once. */
  in = g_win32_input_stream_new (pipe, TRUE);
  out = g_win32_output_stream_new (pipe, FALSE);
  stream = g_simple_io_stream_new (in, out);
  return g_dbus_connection_new_sync (stream, NULL, G_DBUS_CONNECTION_FLAGS_AUTHENTICATION_CLIENT,
                                     NULL, cancellable, error);
}

static void
connect_thread (GTask *task, gpointer source, gpointer data, GCancellable *cancellable)
{
  GError *error = NULL;
  GDBusConnection *connection = ph_control_pipe_connect_sync (data, cancellable, &error);

  if (connection != NULL)
    g_task_return_pointer (task, connection, g_object_unref);
  else
    g_task_return_error (task, error);
}

void
ph_control_pipe_connect_async (const char *name, GCancellable *cancellable,
                               GAsyncReadyCallback callback, gpointer user_data)
{
  g_autoptr (GTask) task = g_task_new (NULL, cancellable, callback, user_data);

  g_task_set_source_tag (task, ph_control_pipe_connect_async);
  g_task_set_task_data (task, g_strdup (name), g_free);
  g_task_run_in_thread (task, connect_thread);
}

GDBusConnection *
ph_control_pipe_connect_finish (GAsyncResult *result, GError **error)
{
  return g_task_propagate_pointer (G_TASK (result), error);
}

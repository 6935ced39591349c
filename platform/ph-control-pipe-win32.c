/* SPDX-License-Identifier: GPL-2.0-or-later */
/* ph-control-pipe-win32.c: org.pinhole.Agent1 over \\.\pipe\pinhole-agent, the server
 * (the client half is agent/common/ph-control-pipe-client-win32.c).
 *
 * The server keeps one pipe instance waiting in a listener thread. A client that connects is
 * handed to GDBus as a server-side, peer-to-peer connection; the D-Bus handshake accepts only
 * ANONYMOUS, because who the client is comes from the pipe itself: once the handshake has
 * read from the client, the server impersonates it (the client allows identification only)
 * and reads its token. SYSTEM, an elevated administrator and the agent's own user get
 * PH_PEER_ROLE_ADMIN; an interactive user gets USER; anyone else is refused. */
#define G_LOG_DOMAIN "pinhole-control"

#include "ph-control-pipe.h"

#include <windows.h>
#include <sddl.h>
#include <gio/gwin32inputstream.h>
#include <gio/gwin32outputstream.h>

#define PIPE_BUFFER 65536
#define ROLE_KEY "ph-peer-role"
#define HANDLE_KEY "ph-pipe-handle"
#define SERVER_KEY "ph-server"

PhPeerRole
ph_control_pipe_peer_role (GDBusConnection *connection)
{
  return GPOINTER_TO_INT (g_object_get_data (G_OBJECT (connection), ROLE_KEY));
}

void
ph_control_pipe_set_peer_role (GDBusConnection *connection, PhPeerRole role)
{
  g_object_set_data (G_OBJECT (connection), ROLE_KEY, GINT_TO_POINTER (role));
}

static void
set_win32_error (GError **error, DWORD code, const char *what)
{
  g_autofree char *msg = g_win32_error_message (code);

  g_set_error (error, G_IO_ERROR, g_io_error_from_win32_error (code), "%s: %s", what, msg);
}

/* One stream over one pipe handle; closing the stream closes the handle once. */
static GIOStream *
stream_for_handle (HANDLE pipe)
{
  g_autoptr (GInputStream) in = g_win32_input_stream_new (pipe, TRUE);
  g_autoptr (GOutputStream) out = g_win32_output_stream_new (pipe, FALSE);
  GIOStream *stream = g_simple_io_stream_new (in, out);

  g_object_set_data (G_OBJECT (stream), HANDLE_KEY, pipe);
  return stream;
}

/* --- server --- */

struct _PhControlPipeServer
{
  char *name;
  gunichar2 *wname;
  PhControlPipeAccept accept;
  gpointer user_data;
  GMainContext *context;
  char *guid;
  PSECURITY_DESCRIPTOR sd;
  HANDLE pending;    /* the instance the listener waits on */
  HANDLE stop_event; /* set by free() */
  GThread *thread;
  PSID own_sid;
  gboolean own_elevated;     /* the agent's own token is elevated (a service, an admin's console) */
  GCancellable *cancellable; /* the handshakes under way */
  gint closed;               /* free() was called: clients still arriving are turned away */
};

/* The server is reference-counted (g_atomic_rc_box): a client on its way to the main context
 * or in its handshake keeps it, so that free() may come at any time. */
static void
server_clear (PhControlPipeServer *server)
{
  g_clear_object (&server->cancellable);
  if (server->sd != NULL)
    LocalFree (server->sd);
  g_main_context_unref (server->context);
  g_free (server->own_sid);
  g_free (server->guid);
  g_free (server->wname);
  g_free (server->name);
}

static void
server_release (gpointer server)
{
  g_atomic_rc_box_release_full (server, (GDestroyNotify) server_clear);
}

typedef struct
{
  PhControlPipeServer *server;
  HANDLE pipe;
} Accepted;

/* The process's own user: the agent run from a console by a user is that user's agent. */
static PSID
current_user_sid (void)
{
  HANDLE token;
  DWORD len = 0;
  TOKEN_USER *user;
  PSID sid = NULL;

  if (!OpenProcessToken (GetCurrentProcess (), TOKEN_QUERY, &token))
    return NULL;
  GetTokenInformation (token, TokenUser, NULL, 0, &len);
  user = g_malloc (MAX (len, sizeof (TOKEN_USER)));
  if (GetTokenInformation (token, TokenUser, user, len, &len))
    {
      DWORD sid_len = GetLengthSid (user->User.Sid);
      sid = g_malloc (sid_len);
      CopySid (sid_len, sid, user->User.Sid);
    }
  g_free (user);
  CloseHandle (token);
  return sid;
}

static gboolean
token_has (HANDLE token, WELL_KNOWN_SID_TYPE type)
{
  BYTE buf[SECURITY_MAX_SID_SIZE];
  DWORD len = sizeof buf;
  BOOL member = FALSE;

  if (!CreateWellKnownSid (type, NULL, buf, &len))
    return FALSE;
  return CheckTokenMembership (token, buf, &member) && member;
}

/* TokenElevation: an administrator's full token, or any token while UAC is off. */
static gboolean
token_is_elevated (HANDLE token)
{
  TOKEN_ELEVATION elevation = { 0 };
  DWORD len = sizeof elevation;

  return GetTokenInformation (token, TokenElevation, &elevation, len, &len)
         && elevation.TokenIsElevated;
}

static gboolean
process_is_elevated (void)
{
  HANDLE token;
  gboolean elevated;

  if (!OpenProcessToken (GetCurrentProcess (), TOKEN_QUERY, &token))
    return FALSE;
  elevated = token_is_elevated (token);
  CloseHandle (token);
  return elevated;
}

/* FALSE when the client's process has a token that is not elevated. The identity a pipe's
 * server impersonates is the client thread's, and may be more than its process's (a thread
 * impersonating someone) or, under Wine, the server's own rather than the client's: a client
 * is taken as elevated only when its process is too. TRUE when the process cannot be asked. */
static gboolean
client_process_elevated (HANDLE pipe)
{
  ULONG pid = 0;
  HANDLE process;
  HANDLE token;
  gboolean elevated = TRUE;

  if (!GetNamedPipeClientProcessId (pipe, &pid))
    return TRUE;
  process = OpenProcess (PROCESS_QUERY_LIMITED_INFORMATION, FALSE, pid);
  if (process == NULL)
    return TRUE;
  if (OpenProcessToken (process, TOKEN_QUERY, &token))
    {
      elevated = token_is_elevated (token);
      CloseHandle (token);
    }
  CloseHandle (process);
  return elevated;
}

static gboolean
token_is_user (HANDLE token, PSID sid)
{
  BYTE buf[sizeof (TOKEN_USER) + SECURITY_MAX_SID_SIZE];
  DWORD len = sizeof buf;

  if (sid == NULL || !GetTokenInformation (token, TokenUser, buf, len, &len))
    return FALSE;
  return EqualSid (((TOKEN_USER *) buf)->User.Sid, sid);
}

/* The client's role, from its token while impersonating it. Runs in GDBus's handshake thread,
 * after the handshake has read from the pipe (impersonation needs that). */
static PhPeerRole
pipe_client_role (HANDLE pipe, PSID own_sid, gboolean own_elevated)
{
  HANDLE token = NULL;
  PhPeerRole role = PH_PEER_ROLE_NONE;
  gboolean elevated;
  BOOL ok;

  if (!ImpersonateNamedPipeClient (pipe))
    {
      g_warning ("cannot identify a control client: %lu", GetLastError ());
      return PH_PEER_ROLE_NONE;
    }
  ok = OpenThreadToken (GetCurrentThread (), TOKEN_QUERY, TRUE, &token);
  if (!RevertToSelf ())
    g_error ("cannot stop impersonating a control client");
  if (!ok)
    return PH_PEER_ROLE_NONE;
  /* An administrator's filtered (non-elevated) token holds Administrators for deny only, so
   * CheckTokenMembership is FALSE for it, and its TokenElevation is FALSE too (Wine's limited
   * token keeps Administrators but is not elevated): configuration needs an elevated prompt.
   * The agent's own user is an administrator of it, except that the same user's un-elevated
   * programs do not change an agent that runs elevated. */
  elevated = token_is_elevated (token) && client_process_elevated (pipe);
  if (token_has (token, WinLocalSystemSid)
      || (token_has (token, WinBuiltinAdministratorsSid) && elevated)
      || (token_is_user (token, own_sid) && (elevated || !own_elevated)))
    role = PH_PEER_ROLE_ADMIN;
  else if (token_has (token, WinInteractiveSid))
    role = PH_PEER_ROLE_USER;
  CloseHandle (token);
  return role;
}

static gboolean
allow_mechanism (GDBusAuthObserver *observer, const char *mechanism, gpointer data)
{
  return g_strcmp0 (mechanism, "ANONYMOUS") == 0;
}

static gboolean
authorize_peer (GDBusAuthObserver *observer, GIOStream *stream, GCredentials *credentials,
                gpointer data)
{
  PhControlPipeServer *server = data;
  HANDLE pipe = g_object_get_data (G_OBJECT (stream), HANDLE_KEY);
  PhPeerRole role = pipe_client_role (pipe, server->own_sid, server->own_elevated);

  g_object_set_data (G_OBJECT (stream), ROLE_KEY, GINT_TO_POINTER (role));
  if (role == PH_PEER_ROLE_NONE)
    g_message ("refused a control client that is neither interactive nor an administrator");
  return role != PH_PEER_ROLE_NONE;
}

static void
connection_ready (GObject *source, GAsyncResult *result, gpointer data)
{
  g_autoptr (GIOStream) stream = data;
  g_autoptr (GError) error = NULL;
  g_autoptr (GDBusConnection) connection = g_dbus_connection_new_finish (result, &error);
  PhControlPipeServer *server;
  PhPeerRole role;

  if (connection == NULL)
    {
      if (!g_error_matches (error, G_IO_ERROR, G_IO_ERROR_CANCELLED))
        g_message ("a control client's handshake failed: %s", error->message);
      return;
    }
  server = g_object_get_data (G_OBJECT (stream), SERVER_KEY);
  if (g_atomic_int_get (&server->closed))
    {
      g_dbus_connection_close (connection, NULL, NULL, NULL);
      return;
    }
  role = GPOINTER_TO_INT (g_object_get_data (G_OBJECT (stream), ROLE_KEY));
  ph_control_pipe_set_peer_role (connection, role);
  g_debug ("control client connected (%s)", role == PH_PEER_ROLE_ADMIN ? "admin" : "user");
  server->accept (connection, role, server->user_data);
  g_dbus_connection_start_message_processing (connection);
}

/* In the server's context: a client is on @pipe. */
static gboolean
accepted_cb (gpointer data)
{
  Accepted *accepted = data;
  PhControlPipeServer *server = accepted->server;
  g_autoptr (GDBusAuthObserver) observer = NULL;
  GIOStream *stream;

  if (g_atomic_int_get (&server->closed))
    {
      CloseHandle (accepted->pipe);
      server_release (server);
      g_free (accepted);
      return G_SOURCE_REMOVE;
    }
  observer = g_dbus_auth_observer_new ();
  stream = stream_for_handle (accepted->pipe);
  /* The stream keeps the server (Accepted's reference) for the handshake and its end. */
  g_object_set_data_full (G_OBJECT (stream), SERVER_KEY, server, server_release);
  g_signal_connect (observer, "allow-mechanism", G_CALLBACK (allow_mechanism), server);
  g_signal_connect (observer, "authorize-authenticated-peer", G_CALLBACK (authorize_peer), server);
  g_dbus_connection_new (stream, server->guid,
                         G_DBUS_CONNECTION_FLAGS_AUTHENTICATION_SERVER
                             | G_DBUS_CONNECTION_FLAGS_AUTHENTICATION_ALLOW_ANONYMOUS
                             | G_DBUS_CONNECTION_FLAGS_DELAY_MESSAGE_PROCESSING,
                         observer, server->cancellable, connection_ready, stream);
  g_free (accepted);
  return G_SOURCE_REMOVE;
}

static HANDLE
create_instance (PhControlPipeServer *server, gboolean first, GError **error)
{
  SECURITY_ATTRIBUTES sa = { sizeof sa, server->sd, FALSE };
  HANDLE pipe;

  /* FILE_FLAG_FIRST_PIPE_INSTANCE below is the guard against a second agent (or a squatter
   * that made the pipe first); Wine does not enforce it, so ask first whether the name is
   * served: only "not found" means it is free. */
  if (first && (WaitNamedPipeW (server->wname, 1) || GetLastError () != ERROR_FILE_NOT_FOUND))
    {
      g_set_error (error, G_IO_ERROR, G_IO_ERROR_ADDRESS_IN_USE,
                   "%s is in use: is another pinhole-agent running?", server->name);
      return NULL;
    }
  pipe = CreateNamedPipeW (
      server->wname,
      PIPE_ACCESS_DUPLEX | FILE_FLAG_OVERLAPPED | (first ? FILE_FLAG_FIRST_PIPE_INSTANCE : 0),
      PIPE_TYPE_BYTE | PIPE_READMODE_BYTE | PIPE_WAIT | PIPE_REJECT_REMOTE_CLIENTS,
      PIPE_UNLIMITED_INSTANCES, PIPE_BUFFER, PIPE_BUFFER, 0, &sa);

  if (pipe == INVALID_HANDLE_VALUE)
    {
      DWORD code = GetLastError ();

      if (first && (code == ERROR_ACCESS_DENIED || code == ERROR_PIPE_BUSY))
        g_set_error (error, G_IO_ERROR, G_IO_ERROR_ADDRESS_IN_USE,
                     "%s is in use: is another pinhole-agent running?", server->name);
      else
        set_win32_error (error, code, server->name);
      return NULL;
    }
  return pipe;
}

/* The listener thread: waits for a client on the pending instance, hands it over, makes the
 * next instance. Ends when stop_event is set. */
static gpointer
listen_thread (gpointer data)
{
  PhControlPipeServer *server = data;
  OVERLAPPED ov = { 0 };

  ov.hEvent = CreateEventW (NULL, TRUE, FALSE, NULL);
  for (;;)
    {
      HANDLE events[2] = { ov.hEvent, server->stop_event };
      g_autoptr (GError) error = NULL;
      gboolean connected = FALSE;
      DWORD ignored;

      ResetEvent (ov.hEvent);
      if (ConnectNamedPipe (server->pending, &ov))
        connected = TRUE;
      else if (GetLastError () == ERROR_PIPE_CONNECTED)
        connected = TRUE;
      else if (GetLastError () == ERROR_IO_PENDING)
        {
          if (WaitForMultipleObjects (2, events, FALSE, INFINITE) != WAIT_OBJECT_0)
            {
              CancelIoEx (server->pending, &ov);
              GetOverlappedResult (server->pending, &ov, &ignored, TRUE);
              break;
            }
          connected = GetOverlappedResult (server->pending, &ov, &ignored, FALSE);
        }
      if (connected)
        {
          Accepted *accepted = g_new0 (Accepted, 1);

          accepted->server = g_atomic_rc_box_acquire (server);
          accepted->pipe = server->pending;
          g_main_context_invoke (server->context, accepted_cb, accepted);
        }
      else
        {
          /* A client that went away before we saw it (ERROR_NO_DATA): the instance is reused.
           * Anything else is unexpected: pause rather than spin. */
          DWORD code = GetLastError ();

          DisconnectNamedPipe (server->pending);
          if (code != ERROR_NO_DATA && code != ERROR_BROKEN_PIPE
              && WaitForSingleObject (server->stop_event, 100) == WAIT_OBJECT_0)
            break;
          continue;
        }
      server->pending = create_instance (server, FALSE, &error);
      while (server->pending == NULL)
        {
          g_warning ("cannot make the next control pipe instance: %s", error->message);
          g_clear_error (&error);
          if (WaitForSingleObject (server->stop_event, 1000) == WAIT_OBJECT_0)
            goto out;
          server->pending = create_instance (server, FALSE, &error);
        }
    }
out:
  CloseHandle (ov.hEvent);
  return NULL;
}

PhControlPipeServer *
ph_control_pipe_server_new (const char *name, PhControlPipeAccept accept, gpointer user_data,
                            GError **error)
{
  g_autoptr (GError) local = NULL;
  PhControlPipeServer *server = g_atomic_rc_box_new0 (PhControlPipeServer);
  g_autofree char *sddl = NULL;
  g_autofree gunichar2 *wsddl = NULL;
  char *own = NULL;

  server->name = g_strdup (name);
  server->wname = g_utf8_to_utf16 (name, -1, NULL, NULL, NULL);
  server->accept = accept;
  server->user_data = user_data;
  server->context = g_main_context_ref_thread_default ();
  server->guid = g_dbus_generate_guid ();
  server->own_sid = current_user_sid ();
  server->own_elevated = process_is_elevated ();
  server->cancellable = g_cancellable_new ();

  /* SYSTEM and Administrators: full access. Interactive users and the agent's own user: read
   * and write but not FILE_CREATE_PIPE_INSTANCE (0x12019b is FILE_GENERIC_READ |
   * FILE_GENERIC_WRITE without it), so that nobody else can put up an instance of our pipe. */
  if (server->own_sid != NULL)
    ConvertSidToStringSidA (server->own_sid, &own);
  sddl = g_strdup_printf ("D:P(A;;GA;;;SY)(A;;GA;;;BA)(A;;0x12019b;;;IU)%s%s%s",
                          own != NULL ? "(A;;0x12019b;;;" : "", own != NULL ? own : "",
                          own != NULL ? ")" : "");
  LocalFree (own);
  wsddl = g_utf8_to_utf16 (sddl, -1, NULL, NULL, NULL);
  if (!ConvertStringSecurityDescriptorToSecurityDescriptorW (wsddl, SDDL_REVISION_1, &server->sd,
                                                             NULL))
    {
      set_win32_error (error, GetLastError (), "cannot build the control pipe's DACL");
      ph_control_pipe_server_free (server);
      return NULL;
    }
  server->pending = create_instance (server, TRUE, error);
  if (server->pending == NULL)
    {
      ph_control_pipe_server_free (server);
      return NULL;
    }
  server->stop_event = CreateEventW (NULL, TRUE, FALSE, NULL);
  server->thread = g_thread_new ("control-pipe", listen_thread, server);
  g_debug ("control interface listening on %s", name);
  return server;
}

void
ph_control_pipe_server_free (PhControlPipeServer *server)
{
  if (server == NULL)
    return;
  g_atomic_int_set (&server->closed, TRUE);
  if (server->thread != NULL)
    {
      SetEvent (server->stop_event);
      g_thread_join (server->thread);
    }
  /* Handshakes under way end with CANCELLED and drop their client. */
  g_cancellable_cancel (server->cancellable);
  if (server->pending != NULL)
    CloseHandle (server->pending);
  if (server->stop_event != NULL)
    CloseHandle (server->stop_event);
  server_release (server);
}

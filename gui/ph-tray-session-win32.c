/* SPDX-License-Identifier: GPL-2.0-or-later */
/* ph-tray-session-win32.c: the tray's hidden top-level window, which Windows tells when the
 * session ends (WM_QUERYENDSESSION, WM_ENDSESSION) and which taskkill and installers close
 * (WM_CLOSE); console events for a tray started from a console; one tray per session with a
 * named mutex, a second start asking the first to show its settings window; and the balloons
 * that tell the user things, from a notification-area icon of that window's. */
#define G_LOG_DOMAIN "pinhole-tray"

#include "ph-tray-session.h"

#include <windows.h>
#include <shellapi.h>

/* Installers and the second start find the running tray by this class. */
#define WINDOW_CLASS L"PinholeTray"
#define INSTANCE_MUTEX L"Local\\org.pinhole.Tray"
#define WM_PH_SHOW (WM_APP + 1)
/* The balloons' own notification-area icon tells the window about them with this message. */
#define WM_PH_BALLOON (WM_APP + 2)
#define BALLOON_ICON_ID 1

/* How long a console's close, logoff or shutdown event waits for the main thread to put things
 * back: Windows ends the process 5 seconds after CTRL_CLOSE_EVENT anyway. */
#define CONSOLE_WAIT_US (4 * G_USEC_PER_SEC)

struct _PhTraySession
{
  PhTraySessionHandlers handlers;
  gpointer user_data;
  HWND hwnd;
  gboolean ended;
  gboolean balloon_icon; /* added to the notification area */
  GApplication *balloon_app;
  char *balloon_action; /* the shown balloon's button action ("app.NAME"), run on a click */
};

/* The console handler runs on a thread of its own and has no argument: the session is global,
 * set and cleared on the main thread while the handler is not installed. */
static PhTraySession *console_session;
static GMutex console_lock;
static GCond console_cond;
static gboolean console_done;

static void balloon_withdraw (PhTraySession *session);

static void
end_session (PhTraySession *session)
{
  if (session->ended)
    return;
  session->ended = TRUE;
  g_message ("the session is ending");
  session->handlers.end_session (session->user_data);
}

static LRESULT CALLBACK
window_proc (HWND hwnd, UINT message, WPARAM wparam, LPARAM lparam)
{
  PhTraySession *session = (PhTraySession *) GetWindowLongPtrW (hwnd, GWLP_USERDATA);

  if (session == NULL)
    return DefWindowProcW (hwnd, message, wparam, lparam);
  switch (message)
    {
      case WM_QUERYENDSESSION:
        /* Never block the end of a session; the work is done at WM_ENDSESSION, once it is
         * certain (another program may still cancel it). */
        return TRUE;
      case WM_ENDSESSION:
        /* Windows may end the process as soon as this returns: restore now, synchronously. */
        if (wparam)
          end_session (session);
        return 0;
      case WM_CLOSE:
        g_message ("asked to close");
        session->handlers.quit (session->user_data);
        return 0;
      case WM_PH_SHOW:
        session->handlers.show (session->user_data);
        return 0;
      case WM_PH_BALLOON:
        switch (LOWORD (lparam))
          {
            case NIN_BALLOONUSERCLICK:
              {
                /* A balloon has no buttons: the click does what the button would. */
                g_autofree char *action = g_steal_pointer (&session->balloon_action);

                balloon_withdraw (session);
                if (action != NULL && session->balloon_app != NULL
                    && g_str_has_prefix (action, "app.")
                    && g_action_group_has_action (G_ACTION_GROUP (session->balloon_app),
                                                  action + 4))
                  g_action_group_activate_action (G_ACTION_GROUP (session->balloon_app), action + 4,
                                                  NULL);
                else
                  session->handlers.show (session->user_data);
              }
              break;
            case NIN_BALLOONTIMEOUT:
              balloon_withdraw (session);
              break;
            default:
              break;
          }
        return 0;
      default:
        return DefWindowProcW (hwnd, message, wparam, lparam);
    }
}

static gboolean
console_quit (gpointer data)
{
  if (console_session != NULL)
    console_session->handlers.quit (console_session->user_data);
  return G_SOURCE_REMOVE;
}

static gboolean
console_end (gpointer data)
{
  if (console_session != NULL)
    end_session (console_session);
  g_mutex_lock (&console_lock);
  console_done = TRUE;
  g_cond_broadcast (&console_cond);
  g_mutex_unlock (&console_lock);
  return G_SOURCE_REMOVE;
}

static BOOL WINAPI
console_handler (DWORD type)
{
  gint64 deadline;

  switch (type)
    {
      case CTRL_C_EVENT:
      case CTRL_BREAK_EVENT:
        g_idle_add_full (G_PRIORITY_HIGH, console_quit, NULL, NULL);
        return TRUE;
      case CTRL_CLOSE_EVENT:
      case CTRL_LOGOFF_EVENT:
      case CTRL_SHUTDOWN_EVENT:
        /* The process ends when this returns: wait for the main thread to restore. */
        deadline = g_get_monotonic_time () + CONSOLE_WAIT_US;
        g_idle_add_full (G_PRIORITY_HIGH, console_end, NULL, NULL);
        g_mutex_lock (&console_lock);
        while (!console_done)
          if (!g_cond_wait_until (&console_cond, &console_lock, deadline))
            break;
        g_mutex_unlock (&console_lock);
        return TRUE;
      default:
        return FALSE;
    }
}

PhTraySession *
ph_tray_session_new (const PhTraySessionHandlers *handlers, gpointer user_data)
{
  PhTraySession *session = g_new0 (PhTraySession, 1);
  WNDCLASSEXW wc = { 0 };
  HINSTANCE instance = GetModuleHandleW (NULL);

  session->handlers = *handlers;
  session->user_data = user_data;

  wc.cbSize = sizeof wc;
  wc.lpfnWndProc = window_proc;
  wc.hInstance = instance;
  wc.lpszClassName = WINDOW_CLASS;
  if (RegisterClassExW (&wc) == 0 && GetLastError () != ERROR_CLASS_ALREADY_EXISTS)
    {
      g_autofree char *why = g_win32_error_message ((gint) GetLastError ());
      g_warning ("cannot register the session window's class: %s", why);
    }
  /* Top-level, never shown: a message-only window (HWND_MESSAGE) would not be told that the
   * session ends. GDK's event source dispatches the thread's messages, this window's too. */
  session->hwnd = CreateWindowExW (0, WINDOW_CLASS, L"Pinhole", WS_OVERLAPPED, 0, 0, 0, 0, NULL,
                                   NULL, instance, NULL);
  if (session->hwnd == NULL)
    {
      g_autofree char *why = g_win32_error_message ((gint) GetLastError ());
      g_warning ("cannot create the session window; the end of the session will not be seen: "
                 "%s",
                 why);
    }
  else
    SetWindowLongPtrW (session->hwnd, GWLP_USERDATA, (LONG_PTR) session);

  console_session = session;
  SetConsoleCtrlHandler (console_handler, TRUE);
  return session;
}

/* Copies @text into a fixed NOTIFYICONDATA field of @len characters, cut if need be. */
static void
copy_utf16 (wchar_t *field, gsize len, const char *text)
{
  g_autofree gunichar2 *w = g_utf8_to_utf16 (text != NULL ? text : "", -1, NULL, NULL, NULL);

  if (w == NULL)
    {
      field[0] = 0;
      return;
    }
  wcsncpy (field, (const wchar_t *) w, len - 1);
  field[len - 1] = 0;
}

static void
balloon_show (PhTraySession *session, const char *title, const char *body, gboolean warning)
{
  NOTIFYICONDATAW nid = { 0 };

  if (session->hwnd == NULL)
    return;
  nid.cbSize = sizeof nid;
  nid.hWnd = session->hwnd;
  nid.uID = BALLOON_ICON_ID;
  nid.uFlags = NIF_MESSAGE | NIF_ICON | NIF_TIP | NIF_INFO;
  nid.uCallbackMessage = WM_PH_BALLOON;
  nid.hIcon = LoadIconW (NULL, warning ? (LPCWSTR) IDI_WARNING : (LPCWSTR) IDI_INFORMATION);
  nid.dwInfoFlags = warning ? NIIF_WARNING : NIIF_INFO;
  copy_utf16 (nid.szTip, G_N_ELEMENTS (nid.szTip), "Pinhole");
  copy_utf16 (nid.szInfoTitle, G_N_ELEMENTS (nid.szInfoTitle), title);
  copy_utf16 (nid.szInfo, G_N_ELEMENTS (nid.szInfo), body);
  if (!Shell_NotifyIconW (session->balloon_icon ? NIM_MODIFY : NIM_ADD, &nid))
    {
      g_message ("cannot show a notification: %s", title);
      return;
    }
  session->balloon_icon = TRUE;
  g_message ("notification: %s", title);
}

static void
balloon_withdraw (PhTraySession *session)
{
  NOTIFYICONDATAW nid = { 0 };

  if (!session->balloon_icon)
    return;
  nid.cbSize = sizeof nid;
  nid.hWnd = session->hwnd;
  nid.uID = BALLOON_ICON_ID;
  Shell_NotifyIconW (NIM_DELETE, &nid);
  session->balloon_icon = FALSE;
}

void
ph_tray_session_free (PhTraySession *session)
{
  if (session == NULL)
    return;
  balloon_withdraw (session);
  SetConsoleCtrlHandler (console_handler, FALSE);
  console_session = NULL;
  if (session->hwnd != NULL)
    {
      SetWindowLongPtrW (session->hwnd, GWLP_USERDATA, 0);
      DestroyWindow (session->hwnd);
    }
  g_free (session->balloon_action);
  g_free (session);
}

GApplicationFlags
ph_tray_session_get_app_flags (void)
{
  /* GApplication's uniqueness goes through the D-Bus session bus, which Windows lacks (GIO
   * would start one of its own): the mutex below does that job. */
  return G_APPLICATION_NON_UNIQUE;
}

gboolean
ph_tray_session_claim_instance (void)
{
  /* Held until the process ends. */
  static HANDLE mutex;
  HWND other;

  if (mutex != NULL)
    return TRUE;
  mutex = CreateMutexW (NULL, FALSE, INSTANCE_MUTEX);
  if (mutex == NULL)
    {
      g_autofree char *why = g_win32_error_message ((gint) GetLastError ());
      g_warning ("cannot tell whether another tray runs: %s", why);
      return TRUE;
    }
  if (GetLastError () != ERROR_ALREADY_EXISTS)
    return TRUE;
  CloseHandle (mutex);
  mutex = NULL;
  other = FindWindowW (WINDOW_CLASS, NULL);
  if (other != NULL)
    PostMessageW (other, WM_PH_SHOW, 0, 0);
  return FALSE;
}

const GOptionEntry *
ph_tray_session_get_options (void)
{
  static const GOptionEntry none[] = { { NULL } };

  return none;
}

char *
ph_tray_session_dup_state_dir (void)
{
  return g_build_filename (g_get_user_state_dir (), "Pinhole", NULL);
}

void
ph_tray_session_notify (PhTraySession *session, GApplication *app, const char *id,
                        const char *title, const char *body, gboolean urgent,
                        const char *button_label, const char *button_action)
{
  g_free (session->balloon_action);
  session->balloon_action = g_strdup (button_action);
  session->balloon_app = app;
  balloon_show (session, title, body, urgent);
}

void
ph_tray_session_withdraw (PhTraySession *session, GApplication *app, const char *id)
{
  balloon_withdraw (session);
}

/* SPDX-License-Identifier: GPL-2.0-or-later */
/* ph-service-win32.c: the agent under the Windows Service Control Manager.
 *
 * StartServiceCtrlDispatcher takes the main thread; the SCM starts ServiceMain on a second
 * thread, which runs the agent (its main loop included) and reports RUNNING only when the
 * agent says setup succeeded. The control handler runs on the dispatcher's thread and only
 * posts to the agent's main context. A process not started by the SCM gets FALSE from
 * ph_service_dispatch at once and runs in the console, where Ctrl-C, Ctrl-Break and closing
 * the window stop it the same way. Warnings and lifecycle messages go to the Event Log. */
#define G_LOG_DOMAIN "pinhole-service"

#include "ph-service.h"
#include "ph-error.h"
#include "ph-log.h"
#include "ph-paths.h"

#include <errno.h>
#include <stdio.h>
#include <windows.h>
#include <aclapi.h>
#include <sddl.h>
#include <gio/gio.h>
#include <glib/gstdio.h>

/* The service's own log file; the previous one is kept beside it as .1. */
#define LOG_ROTATE_BYTES (10 * 1024 * 1024)

#define WAIT_STATE_MS 30000
#define EVENT_LOG_KEY                                                                              \
  L"SYSTEM\\CurrentControlSet\\Services\\EventLog\\Application\\" PH_SERVICE_DISPLAY_NAME_W
#define PH_SERVICE_NAME_W L"" PH_SERVICE_NAME
#define PH_SERVICE_DISPLAY_NAME_W L"" PH_SERVICE_DISPLAY_NAME

static struct
{
  PhServiceRun run;
  gpointer data;
  int exit_code;
  SERVICE_STATUS_HANDLE handle;
  SERVICE_STATUS status;
  gboolean under_scm;
  GSourceFunc on_stop, on_reload;
  gpointer callback_data;
  HANDLE event_source;
  FILE *log_file;
} svc;

static void
set_status (DWORD state, DWORD exit_code, DWORD wait_hint)
{
  static DWORD checkpoint = 1;

  if (!svc.under_scm)
    return;
  svc.status.dwServiceType = SERVICE_WIN32_OWN_PROCESS;
  svc.status.dwCurrentState = state;
  svc.status.dwControlsAccepted
      = state == SERVICE_RUNNING
            ? SERVICE_ACCEPT_STOP | SERVICE_ACCEPT_SHUTDOWN | SERVICE_ACCEPT_PARAMCHANGE
            : 0;
  if (exit_code != 0)
    {
      svc.status.dwWin32ExitCode = ERROR_SERVICE_SPECIFIC_ERROR;
      svc.status.dwServiceSpecificExitCode = exit_code;
    }
  else
    svc.status.dwWin32ExitCode = NO_ERROR;
  svc.status.dwWaitHint = wait_hint;
  svc.status.dwCheckPoint
      = (state == SERVICE_RUNNING || state == SERVICE_STOPPED) ? 0 : checkpoint++;
  SetServiceStatus (svc.handle, &svc.status);
}

/* --- the Event Log --- */

static void
event_log_sink (GLogLevelFlags flags, const char *domain, const char *message)
{
  g_autofree char *line = NULL;
  g_autofree gunichar2 *wline = NULL;
  const gunichar2 *strings[1];
  WORD type = EVENTLOG_INFORMATION_TYPE;

  /* Access lines and debugging belong in the console, not in the system's log. */
  if (svc.event_source == NULL || g_strcmp0 (domain, "access") == 0
      || (flags
          & (G_LOG_LEVEL_ERROR | G_LOG_LEVEL_CRITICAL | G_LOG_LEVEL_WARNING | G_LOG_LEVEL_MESSAGE))
             == 0)
    return;
  if (flags & (G_LOG_LEVEL_ERROR | G_LOG_LEVEL_CRITICAL))
    type = EVENTLOG_ERROR_TYPE;
  else if (flags & G_LOG_LEVEL_WARNING)
    type = EVENTLOG_WARNING_TYPE;
  line = g_strdup_printf ("%s: %s", domain, message);
  wline = g_utf8_to_utf16 (line, -1, NULL, NULL, NULL);
  if (wline == NULL)
    return;
  strings[0] = wline;
  /* Event 1 is "%1" in the agent's message table (agent/pinhole-agent-events.mc). */
  ReportEventW (svc.event_source, type, 0, 1, NULL, 1, 0, (LPCWSTR *) strings, NULL);
}

/* --- running under the SCM --- */

static gboolean
invoke_stop (gpointer data)
{
  if (svc.on_stop != NULL)
    svc.on_stop (svc.callback_data);
  return G_SOURCE_REMOVE;
}

static gboolean
invoke_reload (gpointer data)
{
  if (svc.on_reload != NULL)
    svc.on_reload (svc.callback_data);
  return G_SOURCE_REMOVE;
}

static DWORD WINAPI
control_handler (DWORD control, DWORD event_type, LPVOID event_data, LPVOID context)
{
  switch (control)
    {
      case SERVICE_CONTROL_STOP:
      case SERVICE_CONTROL_SHUTDOWN:
        set_status (SERVICE_STOP_PENDING, 0, WAIT_STATE_MS);
        g_main_context_invoke (NULL, invoke_stop, NULL);
        return NO_ERROR;
      case SERVICE_CONTROL_PARAMCHANGE:
        g_main_context_invoke (NULL, invoke_reload, NULL);
        return NO_ERROR;
      case SERVICE_CONTROL_INTERROGATE:
        return NO_ERROR;
      default:
        return ERROR_CALL_NOT_IMPLEMENTED;
    }
}

/* Administrators own @path and everything below it. Only owners change: a DACL that protects
 * itself (the stored credentials', the log directory's) is left as it is. */
static void
reset_owners (const char *path, PSID admins)
{
  g_autofree gunichar2 *wpath = g_utf8_to_utf16 (path, -1, NULL, NULL, NULL);
  g_autoptr (GDir) dir = NULL;
  const char *name;
  DWORD rc;

  rc = SetNamedSecurityInfoW (wpath, SE_FILE_OBJECT, OWNER_SECURITY_INFORMATION, admins, NULL, NULL,
                              NULL);
  if (rc != ERROR_SUCCESS)
    g_message ("cannot give %s to Administrators: error %lu", path, rc);
  if (!g_file_test (path, G_FILE_TEST_IS_DIR) || g_file_test (path, G_FILE_TEST_IS_SYMLINK))
    return;
  dir = g_dir_open (path, 0, NULL);
  while (dir != NULL && (name = g_dir_read_name (dir)) != NULL)
    {
      g_autofree char *child = g_build_filename (path, name, NULL);
      reset_owners (child, admins);
    }
}

gboolean
ph_service_secure_directory (const char *dir, gboolean users_read)
{
  g_autofree gunichar2 *wdir = g_utf8_to_utf16 (dir, -1, NULL, NULL, NULL);
  PSECURITY_DESCRIPTOR sd = NULL;
  PACL dacl = NULL;
  BOOL present = FALSE, defaulted = FALSE;
  BYTE admins[SECURITY_MAX_SID_SIZE];
  DWORD admins_len = sizeof admins;
  DWORD rc;

  if (g_mkdir_with_parents (dir, 0700) != 0)
    {
      g_warning ("cannot create %s: %s", dir, g_strerror (errno));
      return FALSE;
    }
  if (!ConvertStringSecurityDescriptorToSecurityDescriptorW (
          users_read ? L"D:P(A;OICI;GA;;;SY)(A;OICI;GA;;;BA)(A;OICI;GRGX;;;BU)"
                     : L"D:P(A;OICI;GA;;;SY)(A;OICI;GA;;;BA)",
          SDDL_REVISION_1, &sd, NULL)
      || !GetSecurityDescriptorDacl (sd, &present, &dacl, &defaulted))
    {
      g_warning ("cannot build the DACL for %s", dir);
      return FALSE;
    }
  /* Protected: ProgramData's inherited "users may create files" no longer applies. What is
   * inside inherits it, except what protects its own DACL: the credentials (SYSTEM and
   * Administrators only) and the logs must not become readable by Users. A file a user made
   * here before would still be theirs, and an owner may always rewrite its DACL: owners are
   * reset over the whole tree. (Not TreeResetNamedSecurityInfo: it replaces protected DACLs.) */
  rc = SetNamedSecurityInfoW (wdir, SE_FILE_OBJECT,
                              DACL_SECURITY_INFORMATION | PROTECTED_DACL_SECURITY_INFORMATION, NULL,
                              NULL, dacl, NULL);
  LocalFree (sd);
  if (rc != ERROR_SUCCESS)
    {
      g_warning ("cannot restrict %s to administrators: error %lu", dir, rc);
      return FALSE;
    }
  if (CreateWellKnownSid (WinBuiltinAdministratorsSid, NULL, admins, &admins_len))
    reset_owners (dir, admins);
  return TRUE;
}

const char *
ph_service_log_path (void)
{
  static gsize path;

  if (g_once_init_enter (&path))
    g_once_init_leave (&path, (gsize) g_build_filename (ph_paths_sysconfdir (), "logs",
                                                        "pinhole-agent.log", NULL));
  return (const char *) path;
}

char *
ph_service_read_log (gboolean system, guint lines, GError **error)
{
  g_autofree char *text = NULL;
  gsize len = 0;
  const char *start;

  if (!g_file_get_contents (ph_service_log_path (), &text, &len, error))
    return NULL;
  /* Back from the end (its own newline aside) to the start of the last @lines lines. */
  start = text + len;
  if (start > text && start[-1] == '\n')
    start--;
  while (start > text && !(start[-1] == '\n' && --lines == 0))
    start--;
  return g_strndup (start, (gsize) (text + len - start));
}

/* A service has no console: stderr (every log line, access lines included) goes to the log
 * file, started afresh when it has grown past LOG_ROTATE_BYTES. */
static void
log_to_file (void)
{
  const char *path = ph_service_log_path ();
  g_autofree char *dir = g_path_get_dirname (path);
  g_autofree char *old = g_strconcat (path, ".1", NULL);
  g_autofree gunichar2 *wpath = g_utf8_to_utf16 (path, -1, NULL, NULL, NULL);
  GStatBuf st;

  /* Access lines name the hosts every user visits: administrators only. */
  ph_service_secure_directory (dir, FALSE);
  if (g_stat (path, &st) == 0 && st.st_size > LOG_ROTATE_BYTES)
    {
      g_remove (old);
      g_rename (path, old);
    }
  svc.log_file = _wfopen (wpath, L"a");
  if (svc.log_file == NULL)
    g_warning ("cannot write the log file %s: %s", path, g_strerror (errno));
  ph_log_set_stream (svc.log_file);
}

static void WINAPI
service_main (DWORD argc, LPWSTR *argv)
{
  svc.handle = RegisterServiceCtrlHandlerExW (PH_SERVICE_NAME_W, control_handler, NULL);
  if (svc.handle == NULL)
    return;
  svc.under_scm = TRUE;
  svc.event_source = RegisterEventSourceW (NULL, PH_SERVICE_DISPLAY_NAME_W);
  ph_log_set_sink (event_log_sink);
  log_to_file ();
  set_status (SERVICE_START_PENDING, 0, WAIT_STATE_MS);
  svc.exit_code = svc.run (svc.data);
  ph_log_set_sink (NULL);
  ph_log_set_stream (NULL);
  if (svc.log_file != NULL)
    fclose (svc.log_file);
  set_status (SERVICE_STOPPED, svc.exit_code, 0);
  if (svc.event_source != NULL)
    DeregisterEventSource (svc.event_source);
}

gboolean
ph_service_dispatch (PhServiceRun run, gpointer data, int *exit_code)
{
  SERVICE_TABLE_ENTRYW table[] = { { (LPWSTR) PH_SERVICE_NAME_W, service_main }, { NULL, NULL } };

  svc.run = run;
  svc.data = data;
  if (!StartServiceCtrlDispatcherW (table))
    {
      if (GetLastError () != ERROR_FAILED_SERVICE_CONTROLLER_CONNECT)
        g_warning ("cannot reach the service control manager: %lu", GetLastError ());
      return FALSE;
    }
  *exit_code = svc.exit_code;
  return TRUE;
}

gboolean
ph_service_is_under_scm (void)
{
  return svc.under_scm;
}

void
ph_service_notify_ready (void)
{
  set_status (SERVICE_RUNNING, 0, 0);
}

void
ph_service_notify_reloading (void)
{
}

void
ph_service_notify_stopping (void)
{
  set_status (SERVICE_STOP_PENDING, 0, WAIT_STATE_MS);
}

void
ph_service_notify_status (const char *status)
{
}

const char *
ph_service_get_state_directory (void)
{
  return NULL;
}

/* --- the console --- */

static BOOL WINAPI
console_handler (DWORD event)
{
  switch (event)
    {
      case CTRL_C_EVENT:
      case CTRL_BREAK_EVENT:
      case CTRL_CLOSE_EVENT:
        g_main_context_invoke (NULL, invoke_stop, NULL);
        /* For CTRL_CLOSE_EVENT the process ends when this returns: give the drain a moment. */
        if (event == CTRL_CLOSE_EVENT)
          Sleep (2000);
        return TRUE;
      default:
        return FALSE;
    }
}

void
ph_service_watch_stop_and_reload (GSourceFunc on_stop, GSourceFunc on_reload, gpointer data)
{
  svc.on_stop = on_stop;
  svc.on_reload = on_reload;
  svc.callback_data = data;
  if (!svc.under_scm)
    SetConsoleCtrlHandler (console_handler, TRUE);
}

/* --- installing and controlling the service --- */

static void
set_win32_error (GError **error, const char *what)
{
  DWORD code = GetLastError ();
  g_autofree char *msg = g_win32_error_message (code);

  g_set_error (error, PH_ERROR,
               code == ERROR_ACCESS_DENIED ? PH_ERROR_PERMISSION_DENIED : PH_ERROR_FAILED, "%s: %s",
               what, msg);
}

static SC_HANDLE
open_manager (DWORD access, GError **error)
{
  SC_HANDLE scm = OpenSCManagerW (NULL, NULL, access);

  if (scm == NULL)
    set_win32_error (error, "cannot open the service control manager (run as administrator)");
  return scm;
}

static void
register_event_source (const wchar_t *exe)
{
  HKEY key;
  DWORD types = EVENTLOG_ERROR_TYPE | EVENTLOG_WARNING_TYPE | EVENTLOG_INFORMATION_TYPE;

  if (RegCreateKeyExW (HKEY_LOCAL_MACHINE, EVENT_LOG_KEY, 0, NULL, 0, KEY_SET_VALUE, NULL, &key,
                       NULL)
      != ERROR_SUCCESS)
    {
      g_message ("cannot register the Event Log source");
      return;
    }
  RegSetValueExW (key, L"TypesSupported", 0, REG_DWORD, (const BYTE *) &types, sizeof types);
  RegSetValueExW (key, L"EventMessageFile", 0, REG_SZ, (const BYTE *) exe,
                  (DWORD) ((wcslen (exe) + 1) * sizeof (wchar_t)));
  RegCloseKey (key);
}

gboolean
ph_service_install (const char *args, GError **error)
{
  wchar_t exe[MAX_PATH + 1];
  DWORD len = GetModuleFileNameW (NULL, exe, MAX_PATH);
  g_autofree char *exe_utf8 = NULL;
  g_autofree char *command = NULL;
  g_autofree gunichar2 *wcommand = NULL;
  SERVICE_DESCRIPTIONW description
      = { (LPWSTR) L"Carries this computer's web traffic through a pinned TLS connection to "
                   L"the organisation's cloud proxy." };
  SC_ACTION restart[3]
      = { { SC_ACTION_RESTART, 5000 }, { SC_ACTION_RESTART, 30000 }, { SC_ACTION_NONE, 0 } };
  SERVICE_FAILURE_ACTIONSW failure = { 86400, NULL, NULL, 3, restart };
  SC_HANDLE scm, service;

  if (len == 0 || len >= MAX_PATH)
    {
      set_win32_error (error, "cannot find this program's path");
      return FALSE;
    }
  exe[len] = 0;
  exe_utf8 = g_utf16_to_utf8 (exe, -1, NULL, NULL, NULL);
  command = g_strdup_printf ("\"%s\"%s%s", exe_utf8, args && *args ? " " : "", args ? args : "");
  wcommand = g_utf8_to_utf16 (command, -1, NULL, NULL, NULL);

  scm = open_manager (SC_MANAGER_CREATE_SERVICE | SC_MANAGER_CONNECT, error);
  if (scm == NULL)
    return FALSE;
  service = CreateServiceW (scm, PH_SERVICE_NAME_W, PH_SERVICE_DISPLAY_NAME_W, SERVICE_ALL_ACCESS,
                            SERVICE_WIN32_OWN_PROCESS, SERVICE_AUTO_START, SERVICE_ERROR_NORMAL,
                            wcommand, NULL, NULL, NULL, NULL, NULL);
  if (service == NULL && GetLastError () == ERROR_SERVICE_EXISTS)
    {
      /* An upgrade, perhaps to another directory: the same service, the new command. */
      service = OpenServiceW (scm, PH_SERVICE_NAME_W, SERVICE_ALL_ACCESS);
      if (service != NULL
          && !ChangeServiceConfigW (service, SERVICE_WIN32_OWN_PROCESS, SERVICE_AUTO_START,
                                    SERVICE_ERROR_NORMAL, wcommand, NULL, NULL, NULL, NULL, NULL,
                                    PH_SERVICE_DISPLAY_NAME_W))
        {
          set_win32_error (error, "cannot update the service");
          CloseServiceHandle (service);
          CloseServiceHandle (scm);
          return FALSE;
        }
    }
  if (service == NULL)
    {
      set_win32_error (error, "cannot register the service");
      CloseServiceHandle (scm);
      return FALSE;
    }
  /* Nice to have: an SCM without them (Wine's, partly) still runs the service. */
  if (!ChangeServiceConfig2W (service, SERVICE_CONFIG_DESCRIPTION, &description))
    g_debug ("no service description: %lu", GetLastError ());
  if (!ChangeServiceConfig2W (service, SERVICE_CONFIG_FAILURE_ACTIONS, &failure))
    g_debug ("no restart-on-failure: %lu", GetLastError ());
  CloseServiceHandle (service);
  CloseServiceHandle (scm);
  register_event_source (exe);
  return TRUE;
}

static SC_HANDLE
open_service (DWORD access, gboolean *absent, GError **error)
{
  SC_HANDLE scm = open_manager (SC_MANAGER_CONNECT, error);
  SC_HANDLE service;

  *absent = FALSE;
  if (scm == NULL)
    return NULL;
  service = OpenServiceW (scm, PH_SERVICE_NAME_W, access);
  if (service == NULL)
    {
      *absent = GetLastError () == ERROR_SERVICE_DOES_NOT_EXIST;
      set_win32_error (error, "cannot open the service " PH_SERVICE_NAME);
    }
  CloseServiceHandle (scm);
  return service;
}

/* Waits while the service is in @pending; TRUE when it reached @target. */
static gboolean
wait_for_state (SC_HANDLE service, DWORD pending, DWORD target, SERVICE_STATUS_PROCESS *st,
                GError **error)
{
  gint64 deadline = g_get_monotonic_time () + WAIT_STATE_MS * G_TIME_SPAN_MILLISECOND;
  DWORD len;

  for (;;)
    {
      if (!QueryServiceStatusEx (service, SC_STATUS_PROCESS_INFO, (BYTE *) st, sizeof *st, &len))
        {
          set_win32_error (error, "cannot query the service");
          return FALSE;
        }
      if (st->dwCurrentState != pending)
        break;
      if (g_get_monotonic_time () > deadline)
        {
          g_set_error (error, PH_ERROR, PH_ERROR_FAILED,
                       "the service did not finish starting or stopping within %d s",
                       WAIT_STATE_MS / 1000);
          return FALSE;
        }
      g_usleep (100 * 1000);
    }
  return st->dwCurrentState == target;
}

gboolean
ph_service_start (GError **error)
{
  SERVICE_STATUS_PROCESS st = { 0 };
  gboolean absent;
  SC_HANDLE service = open_service (SERVICE_START | SERVICE_QUERY_STATUS, &absent, error);
  gboolean ok;

  if (service == NULL)
    return FALSE;
  if (!StartServiceW (service, 0, NULL) && GetLastError () != ERROR_SERVICE_ALREADY_RUNNING)
    {
      set_win32_error (error, "cannot start the service");
      CloseServiceHandle (service);
      return FALSE;
    }
  ok = wait_for_state (service, SERVICE_START_PENDING, SERVICE_RUNNING, &st, error);
  if (!ok && error != NULL && *error == NULL)
    g_set_error (error, PH_ERROR, PH_ERROR_FAILED,
                 "the service stopped while starting (exit code %lu; see the Event Log)",
                 st.dwWin32ExitCode == ERROR_SERVICE_SPECIFIC_ERROR ? st.dwServiceSpecificExitCode
                                                                    : st.dwWin32ExitCode);
  CloseServiceHandle (service);
  return ok;
}

gboolean
ph_service_stop (GError **error)
{
  SERVICE_STATUS_PROCESS st = { 0 };
  SERVICE_STATUS ignored;
  gboolean absent;
  SC_HANDLE service = open_service (SERVICE_STOP | SERVICE_QUERY_STATUS, &absent, error);
  gboolean ok;

  if (service == NULL)
    return FALSE;
  if (!ControlService (service, SERVICE_CONTROL_STOP, &ignored)
      && GetLastError () != ERROR_SERVICE_NOT_ACTIVE)
    {
      set_win32_error (error, "cannot stop the service");
      CloseServiceHandle (service);
      return FALSE;
    }
  ok = wait_for_state (service, SERVICE_STOP_PENDING, SERVICE_STOPPED, &st, error);
  if (!ok && error != NULL && *error == NULL)
    g_set_error (error, PH_ERROR, PH_ERROR_FAILED, "the service did not stop");
  CloseServiceHandle (service);
  return ok;
}

gboolean
ph_service_uninstall (GError **error)
{
  g_autoptr (GError) local = NULL;
  gboolean absent;
  SC_HANDLE service = open_service (DELETE, &absent, &local);

  if (service == NULL)
    {
      if (absent)
        return TRUE;
      g_propagate_error (error, g_steal_pointer (&local));
      return FALSE;
    }
  if (!ph_service_stop (error))
    {
      CloseServiceHandle (service);
      return FALSE;
    }
  if (!DeleteService (service) && GetLastError () != ERROR_SERVICE_MARKED_FOR_DELETE)
    {
      set_win32_error (error, "cannot remove the service");
      CloseServiceHandle (service);
      return FALSE;
    }
  CloseServiceHandle (service);
  RegDeleteKeyW (HKEY_LOCAL_MACHINE, EVENT_LOG_KEY);
  return TRUE;
}

/* SPDX-License-Identifier: GPL-2.0-or-later */
/* test-control-pipe.c (Windows, under Wine): org.pinhole.Agent1 over the named pipe, in one
 * process: the real daemon and adapter behind ph_control_pipe_server, clients through
 * ph_control_pipe_connect. What a client may do depends on the role the server reads from the
 * pipe's token: an administrator (or the agent's own user) configures; an interactive user
 * may only toggle. Wine has one user, so a USER-role client is made by demoting the role the
 * server found (ph_control_pipe_set_peer_role) before the adapter sees the connection: the
 * token-to-role mapping for another user is not exercised here. The agent's own user's filtered
 * token (TokenLinkedToken, what an administrator's programs get without UAC's approval) is: it
 * is a USER of an agent that runs elevated. The tray's elevated helper (ph-elevate.h) is the
 * real pinholectl.exe (PH_CTL) started through ShellExecuteEx "runas"; under Wine that starts
 * it with this process's token, without asking, which is an administrator's. */
#include "ph-control-pipe.h"
#include "ph-daemon.h"
#include "ph-dbus-service.h"
#include "ph-elevate.h"
#include "ph-error.h"
#include "ph-test-util.h"

#include <windows.h>
#include <glib/gstdio.h>

typedef struct
{
  char *dir;
  char *pipe;
  PhDaemon *daemon;
  PhDBusService *service;
  PhControlPipeServer *server;
  GPtrArray *roles;     /* of GINT_TO_POINTER (PhPeerRole), one per accepted client */
  PhPeerRole demote_to; /* NONE: keep the role the server found */
} Fixture;

static void
on_client (GDBusConnection *connection, PhPeerRole role, gpointer data)
{
  Fixture *f = data;
  g_autoptr (GError) error = NULL;

  g_ptr_array_add (f->roles, GINT_TO_POINTER (role));
  if (f->demote_to != PH_PEER_ROLE_NONE)
    ph_control_pipe_set_peer_role (connection, f->demote_to);
  g_assert_true (g_dbus_interface_skeleton_export (G_DBUS_INTERFACE_SKELETON (f->service),
                                                   connection, PH_AGENT_OBJECT_PATH, &error));
  g_assert_no_error (error);
}

static void
fixture_set_up (Fixture *f, gconstpointer data)
{
  g_autoptr (GError) error = NULL;
  g_autofree char *conf = NULL;
  g_autofree char *managed = NULL;
  g_autofree char *state = NULL;
  g_autofree char *text = NULL;
  g_autofree char *credentials = NULL;
  PhDaemonSetup setup = { 0 };

  f->dir = g_dir_make_tmp ("ph-control-pipe-XXXXXX", &error);
  g_assert_no_error (error);
  conf = g_build_filename (f->dir, "pinhole.conf", NULL);
  managed = g_build_filename (f->dir, "managed.d", NULL);
  state = g_build_filename (f->dir, "state", NULL);
  g_mkdir (managed, 0700);
  /* Nothing listens on the discard port: the daemon runs, in error, and takes calls. */
  text = g_strdup_printf ("[upstream]\nhost=127.0.0.1\nport=9\n[listener]\naddress=127.0.0.1:%d\n",
                          g_random_int_range (20000, 60000));
  g_file_set_contents (conf, text, -1, &error);
  g_assert_no_error (error);
  setup.mode = PH_DAEMON_MODE_SYSTEM;
  setup.system_path = conf;
  setup.managed_dir = managed;
  setup.state_dir = state;
  /* The service's store: DPAPI, machine scope, in the state directory. */
  credentials = g_build_filename (f->dir, "credentials", NULL);
  setup.secrets = ph_secret_store_new_dpapi (credentials, TRUE);
  f->daemon = ph_daemon_new (&setup, &error);
  g_assert_no_error (error);
  f->service = ph_dbus_service_new (f->daemon, PH_AUTH_PEER);
  f->roles = g_ptr_array_new ();
  f->pipe = g_strdup_printf ("\\\\.\\pipe\\pinhole-test-%lu-%u", GetCurrentProcessId (),
                             g_random_int ());
  f->server = ph_control_pipe_server_new (f->pipe, on_client, f, &error);
  g_assert_no_error (error);
}

static void
fixture_tear_down (Fixture *f, gconstpointer data)
{
  g_clear_pointer (&f->server, ph_control_pipe_server_free);
  g_clear_object (&f->service);
  g_clear_object (&f->daemon);
  while (g_main_context_iteration (NULL, FALSE))
    ;
  g_ptr_array_unref (f->roles);
  ph_test_remove_tree (f->dir);
  g_free (f->dir);
  g_free (f->pipe);
}

/* --- clients --- */

static void
connect_done (GObject *source, GAsyncResult *result, gpointer data)
{
  GAsyncResult **out = data;

  *out = g_object_ref (result);
}

/* As this process: the server's accept runs in this thread's main context, so connect
 * asynchronously and spin it. */
static GDBusConnection *
connect_as_self (Fixture *f, GError **error)
{
  GAsyncResult *result = NULL;
  GDBusConnection *connection;
  guint before = f->roles->len;

  ph_control_pipe_connect_async (f->pipe, NULL, connect_done, &result);
  while (result == NULL)
    g_main_context_iteration (NULL, TRUE);
  connection = ph_control_pipe_connect_finish (result, error);
  g_object_unref (result);
  /* The client's side of the handshake can end before the server has taken the client. */
  while (connection != NULL && f->roles->len == before)
    g_main_context_iteration (NULL, TRUE);
  return connection;
}

typedef struct
{
  const char *pipe;
  HANDLE token;
  GDBusConnection *connection;
  GError *error;
  gboolean done;
} RestrictedConnect;

/* Opens the pipe while impersonating a token with Administrators disabled: the server sees a
 * client that is not an administrator. */
static gpointer
restricted_thread (gpointer data)
{
  RestrictedConnect *rc = data;

  g_assert_true (ImpersonateLoggedOnUser (rc->token));
  rc->connection = ph_control_pipe_connect_sync (rc->pipe, NULL, &rc->error);
  RevertToSelf ();
  g_atomic_int_set (&rc->done, TRUE);
  g_main_context_wakeup (NULL);
  return NULL;
}

static HANDLE
restricted_token (void)
{
  HANDLE self = NULL, restricted = NULL;
  BYTE admins[SECURITY_MAX_SID_SIZE];
  DWORD len = sizeof admins;
  SID_AND_ATTRIBUTES disable = { admins, 0 };

  g_assert_true (CreateWellKnownSid (WinBuiltinAdministratorsSid, NULL, admins, &len));
  g_assert_true (OpenProcessToken (
      GetCurrentProcess (),
      TOKEN_DUPLICATE | TOKEN_QUERY | TOKEN_IMPERSONATE | TOKEN_ASSIGN_PRIMARY, &self));
  if (!CreateRestrictedToken (self, 0, 1, &disable, 0, NULL, 0, NULL, &restricted))
    restricted = NULL;
  CloseHandle (self);
  return restricted;
}

static gboolean
token_is_admin (HANDLE token)
{
  BYTE admins[SECURITY_MAX_SID_SIZE];
  DWORD len = sizeof admins;
  BOOL member = FALSE;
  HANDLE imp = NULL;

  CreateWellKnownSid (WinBuiltinAdministratorsSid, NULL, admins, &len);
  DuplicateToken (token, SecurityIdentification, &imp);
  CheckTokenMembership (imp, admins, &member);
  CloseHandle (imp);
  return member;
}

static void
proxy_done (GObject *source, GAsyncResult *result, gpointer data)
{
  GAsyncResult **out = data;

  *out = g_object_ref (result);
}

/* Made asynchronously: the server answers GetAll from this thread's main context. */
static PhAgent1 *
agent_on (GDBusConnection *connection)
{
  g_autoptr (GError) error = NULL;
  GAsyncResult *result = NULL;
  PhAgent1 *agent;

  ph_agent1_proxy_new (connection, G_DBUS_PROXY_FLAGS_NONE, NULL, PH_AGENT_OBJECT_PATH, NULL,
                       proxy_done, &result);
  while (result == NULL)
    g_main_context_iteration (NULL, TRUE);
  agent = ph_agent1_proxy_new_finish (result, &error);
  g_object_unref (result);
  g_assert_no_error (error);
  return agent;
}

/* The calls run in this thread; the server answers from the same main context, so each call
 * is made asynchronously and the context spun until it returns. */
typedef gboolean (*CallFinish) (PhAgent1 *proxy, GAsyncResult *res, GError **error);

static void
call_done (GObject *source, GAsyncResult *result, gpointer data)
{
  GAsyncResult **out = data;

  *out = g_object_ref (result);
}

static gboolean
wait_call (PhAgent1 *agent, GAsyncResult **result, CallFinish finish, GError **error)
{
  gboolean ok;

  while (*result == NULL)
    g_main_context_iteration (NULL, TRUE);
  ok = finish (agent, *result, error);
  g_clear_object (result);
  return ok;
}

static gboolean
set_setting (PhAgent1 *agent, const char *key, const char *value, GError **error)
{
  GAsyncResult *result = NULL;

  ph_agent1_call_set_setting (agent, key, value, NULL, call_done, &result);
  return wait_call (agent, &result, ph_agent1_call_set_setting_finish, error);
}

static gboolean
enable (PhAgent1 *agent, GError **error)
{
  GAsyncResult *result = NULL;

  ph_agent1_call_enable (agent, NULL, call_done, &result);
  return wait_call (agent, &result, ph_agent1_call_enable_finish, error);
}

static gboolean
disable (PhAgent1 *agent, GError **error)
{
  GAsyncResult *result = NULL;

  ph_agent1_call_disable (agent, NULL, call_done, &result);
  return wait_call (agent, &result, ph_agent1_call_disable_finish, error);
}

static gboolean
set_credentials (PhAgent1 *agent, GError **error)
{
  GAsyncResult *result = NULL;

  ph_agent1_call_set_credentials (agent, "mallory", "secret", NULL, call_done, &result);
  return wait_call (agent, &result, ph_agent1_call_set_credentials_finish, error);
}

/* --- cases --- */

/* This process is an administrator under Wine (and for an elevated test on Windows): every
 * method, the same properties as on the bus. */
static void
test_admin (Fixture *f, gconstpointer data)
{
  g_autoptr (GError) error = NULL;
  g_autoptr (GDBusConnection) connection = connect_as_self (f, &error);
  g_autoptr (PhAgent1) agent = NULL;

  g_assert_no_error (error);
  g_assert_cmpuint (f->roles->len, ==, 1);
  g_assert_cmpint (GPOINTER_TO_INT (f->roles->pdata[0]), ==, PH_PEER_ROLE_ADMIN);
  agent = agent_on (connection);
  g_assert_cmpstr (ph_agent1_get_mode (agent), ==, "system");
  g_assert_cmpstr (ph_agent1_get_upstream (agent), ==, "127.0.0.1:9");
  g_assert_true (set_setting (agent, "tunnel.max-tunnels", "12", &error));
  g_assert_no_error (error);
  g_assert_true (disable (agent, &error));
  g_assert_no_error (error);
  /* PropertiesChanged reaches a peer-to-peer client too. */
  while (ph_agent1_get_enabled (agent))
    g_main_context_iteration (NULL, TRUE);
  g_assert_cmpstr (ph_agent1_get_state (agent), ==, "off");
}

/* A client whose token has Administrators disabled (as a non-elevated administrator's has)
 * is still the agent's own user here: ADMIN. */
static void
test_own_user (Fixture *f, gconstpointer data)
{
  RestrictedConnect rc = { f->pipe };
  GThread *thread;

  rc.token = restricted_token ();
  if (rc.token == NULL || token_is_admin (rc.token))
    {
      g_test_skip ("this Wine cannot make a token without Administrators");
      if (rc.token != NULL)
        CloseHandle (rc.token);
      return;
    }
  thread = g_thread_new ("restricted", restricted_thread, &rc);
  while (!g_atomic_int_get (&rc.done))
    g_main_context_iteration (NULL, TRUE);
  g_thread_join (thread);
  CloseHandle (rc.token);
  g_assert_no_error (rc.error);
  while (f->roles->len == 0)
    g_main_context_iteration (NULL, TRUE);
  g_assert_cmpint (GPOINTER_TO_INT (f->roles->pdata[0]), ==, PH_PEER_ROLE_ADMIN);
  g_clear_object (&rc.connection);
}

/* An interactive user may switch the tunnel but not point it elsewhere or store credentials:
 * PermissionDenied, and the agent keeps serving with nothing changed. */
static void
test_user (Fixture *f, gconstpointer data)
{
  g_autoptr (GError) error = NULL;
  g_autoptr (PhAgent1) agent = NULL;
  g_autoptr (GDBusConnection) user = NULL;
  g_autoptr (GDBusConnection) admin = NULL;

  f->demote_to = PH_PEER_ROLE_USER;
  user = connect_as_self (f, &error);
  g_assert_no_error (error);
  agent = agent_on (user);
  g_assert_true (disable (agent, &error));
  g_assert_no_error (error);
  g_assert_true (enable (agent, &error));
  g_assert_no_error (error);
  g_assert_false (set_setting (agent, "upstream.host", "evil.example", &error));
  g_assert_error (error, PH_ERROR, PH_ERROR_PERMISSION_DENIED);
  g_clear_error (&error);
  g_assert_false (set_credentials (agent, &error));
  g_assert_error (error, PH_ERROR, PH_ERROR_PERMISSION_DENIED);
  g_clear_error (&error);
  g_clear_object (&agent);

  f->demote_to = PH_PEER_ROLE_NONE;
  admin = connect_as_self (f, &error);
  g_assert_no_error (error);
  agent = agent_on (admin);
  g_assert_cmpstr (ph_agent1_get_upstream (agent), ==, "127.0.0.1:9");
  g_assert_false (ph_agent1_get_credentials_stored (agent));
  g_assert_true (set_setting (agent, "upstream.host", "proxy.example", &error));
  g_assert_no_error (error);
}

/* Two agents never share a name: the second server fails with ADDRESS_IN_USE. */
static void
test_in_use (Fixture *f, gconstpointer data)
{
  g_autoptr (GError) error = NULL;
  g_autoptr (PhControlPipeServer) second
      = ph_control_pipe_server_new (f->pipe, on_client, f, &error);

  g_assert_null (second);
  g_assert_error (error, G_IO_ERROR, G_IO_ERROR_ADDRESS_IN_USE);
}

/* No agent: the client says so, quickly. */
static void
test_absent (Fixture *f, gconstpointer data)
{
  g_autoptr (GError) error = NULL;
  g_autoptr (GDBusConnection) connection
      = ph_control_pipe_connect_sync ("\\\\.\\pipe\\pinhole-test-nobody", NULL, &error);

  g_assert_null (connection);
  g_assert_error (error, G_IO_ERROR, G_IO_ERROR_NOT_FOUND);
}

/* Many clients one after another, each closing: instances are made and reused, and the
 * server's count of clients matches. */
static void
test_many (Fixture *f, gconstpointer data)
{
  for (guint i = 0; i < 20; i++)
    {
      g_autoptr (GError) error = NULL;
      g_autoptr (GDBusConnection) connection = connect_as_self (f, &error);
      g_autoptr (PhAgent1) agent = NULL;

      g_assert_no_error (error);
      agent = agent_on (connection);
      g_assert_cmpstr (ph_agent1_get_mode (agent), ==, "system");
    }
  g_assert_cmpuint (f->roles->len, ==, 20);
}

/* The agent's own user, through its filtered token (an administrator's un-elevated programs,
 * a standard user's): pinholectl run by ph-run-limited.exe is a USER of an agent that runs
 * elevated (as this test does under Wine), refused a change (exit 4, PH_CTL_EXIT_PERMISSION),
 * allowed a toggle. */
static void
child_exited (GPid pid, int status, gpointer data)
{
  int *out = data;

  *out = status;
  g_spawn_close_pid (pid);
}

static int
run_limited_ctl (Fixture *f, const char *a, const char *b, const char *c)
{
  g_autoptr (GError) error = NULL;
  const char *argv[] = { g_getenv ("PH_RUN_LIMITED"), g_getenv ("PH_CTL"), a, b, c, NULL };
  GPid pid;
  int status = -1;

  g_setenv ("PINHOLE_CONTROL_PIPE", f->pipe, TRUE);
  g_assert_true (g_spawn_async (NULL, (char **) argv, NULL, G_SPAWN_DO_NOT_REAP_CHILD, NULL, NULL,
                                &pid, &error));
  g_assert_no_error (error);
  g_unsetenv ("PINHOLE_CONTROL_PIPE");
  g_child_watch_add (pid, child_exited, &status);
  /* The server takes the client in this thread's main context. */
  while (status == -1)
    g_main_context_iteration (NULL, TRUE);
  return status;
}

static void
test_own_user_filtered (Fixture *f, gconstpointer data)
{
  HANDLE self = NULL;
  TOKEN_ELEVATION elevation = { 0 };
  DWORD len = sizeof elevation;

  g_assert_true (OpenProcessToken (GetCurrentProcess (), TOKEN_QUERY, &self));
  g_assert_true (GetTokenInformation (self, TokenElevation, &elevation, len, &len));
  CloseHandle (self);
  if (!elevation.TokenIsElevated)
    {
      g_test_skip ("this process is not an elevated administrator");
      return;
    }
  g_assert_cmpint (run_limited_ctl (f, "set", "upstream.port", "8443"), ==, 4);
  g_assert_cmpuint (f->roles->len, ==, 1);
  g_assert_cmpint (GPOINTER_TO_INT (f->roles->pdata[0]), ==, PH_PEER_ROLE_USER);
  g_assert_cmpint (run_limited_ctl (f, "disable", NULL, NULL), ==, 0);
  g_assert_cmpint (GPOINTER_TO_INT (f->roles->pdata[1]), ==, PH_PEER_ROLE_USER);
}

static void
elevate_done (GObject *source, GAsyncResult *result, gpointer data)
{
  GAsyncResult **out = data;

  *out = g_object_ref (result);
}

/* The tray's path to an administrator, with @request; the reply, or NULL and @error. */
static GVariant *
run_helper (Fixture *f, const char *program, GVariant *request, GError **error)
{
  GAsyncResult *result = NULL;
  GVariant *reply;

  /* The helper finds this agent as pinholectl does: $PINHOLE_CONTROL_PIPE. */
  g_setenv ("PINHOLE_CONTROL_PIPE", f->pipe, TRUE);
  ph_elevate_run_async (program, PH_ELEVATE_COMMAND, request, NULL, elevate_done, &result);
  while (result == NULL)
    g_main_context_iteration (NULL, TRUE);
  reply = ph_elevate_run_finish (result, error);
  g_object_unref (result);
  g_unsetenv ("PINHOLE_CONTROL_PIPE");
  return reply;
}

/* The helper makes each change it is handed, a setting and the credentials, through the
 * agent, and says so: (2, ""). */
static void
test_elevate_helper (Fixture *f, gconstpointer data)
{
  g_autoptr (GError) error = NULL;
  g_autoptr (GVariant) reply = NULL;
  g_autoptr (GDBusConnection) connection = NULL;
  g_autoptr (PhAgent1) agent = NULL;
  const char *message;
  guint made;

  g_assert_true (ph_elevate_supported ());
  reply = run_helper (f, g_getenv ("PH_CTL"),
                      g_variant_new_parsed ("[(%s, 'upstream.port', '8443'), (%s, 'alice', 'pw')]",
                                            PH_ELEVATE_OP_SET, PH_ELEVATE_OP_CREDENTIALS),
                      &error);
  g_assert_no_error (error);
  g_variant_get (reply, "(u&s)", &made, &message);
  g_assert_cmpstr (message, ==, "");
  g_assert_cmpuint (made, ==, 2);
  connection = connect_as_self (f, &error);
  g_assert_no_error (error);
  agent = agent_on (connection);
  g_assert_cmpstr (ph_agent1_get_upstream (agent), ==, "127.0.0.1:8443");
  g_assert_true (ph_agent1_get_credentials_stored (agent));
}

/* The helper stops at the first change the agent refuses and says which: what came before is
 * made, what comes after is not. */
static void
test_elevate_refused (Fixture *f, gconstpointer data)
{
  g_autoptr (GError) error = NULL;
  g_autoptr (GVariant) reply = NULL;
  g_autoptr (GDBusConnection) connection = NULL;
  g_autoptr (PhAgent1) agent = NULL;
  const char *message;
  guint made;

  reply
      = run_helper (f, g_getenv ("PH_CTL"),
                    g_variant_new_parsed ("[(%s, 'tunnel.max-tunnels', '12'),"
                                          " (%s, 'upstream.no-such-key', 'x'),"
                                          " (%s, 'upstream.port', '8443')]",
                                          PH_ELEVATE_OP_SET, PH_ELEVATE_OP_SET, PH_ELEVATE_OP_SET),
                    &error);
  g_assert_no_error (error);
  g_variant_get (reply, "(u&s)", &made, &message);
  g_assert_cmpuint (made, ==, 1);
  g_assert_nonnull (strstr (message, "no-such-key"));
  connection = connect_as_self (f, &error);
  g_assert_no_error (error);
  agent = agent_on (connection);
  g_assert_cmpstr (ph_agent1_get_upstream (agent), ==, "127.0.0.1:9");
}

/* No helper program: a clear error, quickly, and no pipe left behind. */
static void
test_elevate_no_helper (Fixture *f, gconstpointer data)
{
  g_autoptr (GError) error = NULL;
  g_autoptr (GVariant) reply = NULL;
  g_autofree char *missing = g_build_filename (f->dir, "no-such-helper.exe", NULL);

  reply = run_helper (f, missing, g_variant_new_parsed ("@a(sss) []"), &error);
  g_assert_null (reply);
  g_assert_nonnull (error);
  g_assert_false (g_error_matches (error, G_IO_ERROR, G_IO_ERROR_CANCELLED));
}

/* The helper opens only a tray's pipe: not the agent's, not a path. */
static void
test_elevate_other_pipe (Fixture *f, gconstpointer data)
{
  g_autoptr (GError) error = NULL;
  g_autofree char *out = NULL;
  g_autofree char *err = NULL;
  int status = 0;
  const char *argv[] = { g_getenv ("PH_CTL"), PH_ELEVATE_COMMAND, f->pipe, NULL };

  g_assert_true (g_spawn_sync (NULL, (char **) argv, NULL, G_SPAWN_DEFAULT, NULL, NULL, &out, &err,
                               &status, &error));
  g_assert_no_error (error);
  g_assert_false (g_spawn_check_wait_status (status, NULL));
  g_assert_nonnull (strstr (err, "is not a Pinhole tray's pipe"));
  g_assert_cmpuint (f->roles->len, ==, 0);
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  /* The daemon warns that its (unreachable) upstream is down: expected here; criticals are not. */
  g_log_set_always_fatal (G_LOG_FATAL_MASK | G_LOG_LEVEL_CRITICAL);
  ph_error_quark ();
  g_test_add ("/pinhole/control-pipe/admin", Fixture, NULL, fixture_set_up, test_admin,
              fixture_tear_down);
  g_test_add ("/pinhole/control-pipe/own-user", Fixture, NULL, fixture_set_up, test_own_user,
              fixture_tear_down);
  g_test_add ("/pinhole/control-pipe/own-user-filtered", Fixture, NULL, fixture_set_up,
              test_own_user_filtered, fixture_tear_down);
  g_test_add ("/pinhole/control-pipe/elevate/helper", Fixture, NULL, fixture_set_up,
              test_elevate_helper, fixture_tear_down);
  g_test_add ("/pinhole/control-pipe/elevate/refused", Fixture, NULL, fixture_set_up,
              test_elevate_refused, fixture_tear_down);
  g_test_add ("/pinhole/control-pipe/elevate/no-helper", Fixture, NULL, fixture_set_up,
              test_elevate_no_helper, fixture_tear_down);
  g_test_add ("/pinhole/control-pipe/elevate/other-pipe", Fixture, NULL, fixture_set_up,
              test_elevate_other_pipe, fixture_tear_down);
  g_test_add ("/pinhole/control-pipe/user", Fixture, NULL, fixture_set_up, test_user,
              fixture_tear_down);
  g_test_add ("/pinhole/control-pipe/in-use", Fixture, NULL, fixture_set_up, test_in_use,
              fixture_tear_down);
  g_test_add ("/pinhole/control-pipe/absent", Fixture, NULL, fixture_set_up, test_absent,
              fixture_tear_down);
  g_test_add ("/pinhole/control-pipe/many", Fixture, NULL, fixture_set_up, test_many,
              fixture_tear_down);
  return g_test_run ();
}

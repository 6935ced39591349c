/* SPDX-License-Identifier: GPL-2.0-or-later */
/* ph-auth-agent-polkit.c: polkit's textual agent, pkttyagent, registered for this process as
 * systemd's polkit_agent_open does: started with a pipe's write end as --notify-fd, it closes
 * that end once it has registered, and is stopped with SIGTERM when the calls are done. */
#define G_LOG_DOMAIN "pinhole-platform"

#include "ph-auth-agent.h"

#include <errno.h>
#include <signal.h>
#include <unistd.h>
#include <gio/gio.h>
#include <glib-unix.h>

/* Found on PATH first, so that a test can put its own there; then where Debian installs it. */
#define PH_PKTTYAGENT "pkttyagent"
#define PH_PKTTYAGENT_PATH "/usr/bin/pkttyagent"
/* The descriptor the write end has in the agent. */
#define PH_NOTIFY_FD 3

struct _PhAuthAgent
{
  GSubprocess *process;
};

static char *
find_agent (void)
{
  char *path = g_find_program_in_path (PH_PKTTYAGENT);

  if (path == NULL && g_file_test (PH_PKTTYAGENT_PATH, G_FILE_TEST_IS_EXECUTABLE))
    path = g_strdup (PH_PKTTYAGENT_PATH);
  return path;
}

PhAuthAgent *
ph_auth_agent_start (void)
{
  g_autoptr (GSubprocessLauncher) launcher = NULL;
  g_autoptr (GError) error = NULL;
  g_autofree char *path = NULL;
  g_autofree char *notify_fd = g_strdup_printf ("%d", PH_NOTIFY_FD);
  g_autofree char *process = g_strdup_printf ("%d", (int) getpid ());
  PhAuthAgent *agent;
  int fds[2];
  char byte;

  /* The answer is typed on standard input; without a terminal there, nobody could type it (a
   * graphical agent of the session may still ask). */
  if (!isatty (STDIN_FILENO))
    return NULL;
  path = find_agent ();
  if (path == NULL)
    {
      g_debug ("no %s: polkit cannot ask on the terminal", PH_PKTTYAGENT);
      return NULL;
    }
  if (!g_unix_open_pipe (fds, FD_CLOEXEC, &error))
    {
      g_debug ("cannot start %s: %s", path, error->message);
      return NULL;
    }

  /* --process: for this process exactly (a spawned program's parent may not be us); --fallback:
   * a graphical agent of the session, if there is one, goes first. */
  launcher = g_subprocess_launcher_new (G_SUBPROCESS_FLAGS_STDIN_INHERIT);
  g_subprocess_launcher_take_fd (launcher, fds[1], PH_NOTIFY_FD);
  agent = g_new0 (PhAuthAgent, 1);
  agent->process = g_subprocess_launcher_spawn (launcher, &error, path, "--notify-fd", notify_fd,
                                                "--fallback", "--process", process, NULL);
  /* Our copy of the write end goes with the launcher, so that only the agent holds it. */
  g_clear_object (&launcher);
  if (agent->process == NULL)
    {
      g_debug ("cannot start %s: %s", path, error->message);
      close (fds[0]);
      g_free (agent);
      return NULL;
    }

  /* Registered, or gone: either way the write end is closed. */
  while (read (fds[0], &byte, 1) < 0 && errno == EINTR)
    ;
  close (fds[0]);
  g_debug ("%s started for process %s", path, process);
  return agent;
}

void
ph_auth_agent_stop (PhAuthAgent *agent)
{
  if (agent == NULL)
    return;
  g_subprocess_send_signal (agent->process, SIGTERM);
  g_subprocess_wait (agent->process, NULL, NULL);
  g_object_unref (agent->process);
  g_free (agent);
}

/* ph-main.c: pinhole-agent on Linux: options, configuration, signals,
 * and the main loop around the transport-free server. */
#define G_LOG_DOMAIN "pinhole-main"

#include "ph-build-config.h"
#include "ph-config.h"
#include "ph-error.h"
#include "ph-log.h"
#include "ph-server.h"

#include <malloc.h>
#include <signal.h>
#include <sys/resource.h>
#include <stdio.h>
#include <stdlib.h>
#include <glib-unix.h>
#include <gnutls/gnutls.h>

#define DRAIN_TIMEOUT_US (10 * G_USEC_PER_SEC)

typedef struct
{
  GMainLoop *loop;
  PhServer *server;
  char *config_path;
  gint64 drain_deadline;
  GSource *drain_poll;
} PhAgent;

/* Each tunnel holds two descriptors and the default soft limit is often
 * 1024; running out makes accept() fail over and over. */
static void
raise_fd_limit (void)
{
  struct rlimit rl;

  if (getrlimit (RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max)
    {
      rl.rlim_cur = rl.rlim_max;
      if (setrlimit (RLIMIT_NOFILE, &rl) != 0)
        g_debug ("could not raise the descriptor limit");
    }
}

static gboolean
drain_poll_cb (gpointer data)
{
  PhAgent *agent = data;
  PhServerStats stats;

  ph_server_get_stats (agent->server, &stats);
  if (stats.connections == 0 || g_get_monotonic_time () > agent->drain_deadline)
    {
      if (stats.connections > 0)
        g_message ("closing %u connections still open after the drain period", stats.connections);
      g_main_loop_quit (agent->loop);
      return G_SOURCE_REMOVE;
    }
  return G_SOURCE_CONTINUE;
}

static gboolean
on_terminate (gpointer data)
{
  PhAgent *agent = data;

  if (agent->drain_deadline != 0)
    {
      g_message ("second signal: exiting now");
      g_main_loop_quit (agent->loop);
      return G_SOURCE_CONTINUE;
    }
  g_message ("stopping: no new connections, draining open ones for up to %llds",
             (long long) (DRAIN_TIMEOUT_US / G_USEC_PER_SEC));
  agent->drain_deadline = g_get_monotonic_time () + DRAIN_TIMEOUT_US;
  ph_server_drain (agent->server);
  g_timeout_add (100, drain_poll_cb, agent);
  return G_SOURCE_CONTINUE;
}

static gboolean
on_reload (gpointer data)
{
  PhAgent *agent = data;
  g_autoptr (GError) error = NULL;
  g_autoptr (PhConfig) config = ph_config_load (agent->config_path, &error);

  if (config == NULL || !ph_server_reload (agent->server, config, &error))
    {
      g_warning ("reload failed, keeping the running configuration:\n%s", error->message);
      return G_SOURCE_CONTINUE;
    }
  g_message ("configuration reloaded from %s", agent->config_path);
  return G_SOURCE_CONTINUE;
}

int
main (int argc, char **argv)
{
  g_autofree char *config_path = NULL;
  gboolean check_only = FALSE;
  gboolean version = FALSE;
  const GOptionEntry entries[] = {
    { "config", 'c', 0, G_OPTION_ARG_FILENAME, &config_path, "Configuration file", "FILE" },
    { "check-config", 0, 0, G_OPTION_ARG_NONE, &check_only,
      "Check the configuration, print every problem, and exit", NULL },
    { "version", 0, 0, G_OPTION_ARG_NONE, &version, "Print the version and exit", NULL },
    { NULL },
  };
  g_autoptr (GOptionContext) ctx = g_option_context_new ("- Pinhole tunnel agent");
  g_autoptr (GError) error = NULL;
  g_autoptr (PhConfig) config = NULL;
  g_autoptr (GMainLoop) loop = NULL;
  PhAgent agent = { 0 };

  g_option_context_add_main_entries (ctx, entries, NULL);
  if (!g_option_context_parse (ctx, &argc, &argv, &error))
    {
      fprintf (stderr, "pinhole-agent: %s\n", error->message);
      return 2;
    }
  if (version)
    {
      printf ("pinhole-agent %s (GLib %u.%u.%u, GnuTLS %s)\n", PH_VERSION, glib_major_version,
              glib_minor_version, glib_micro_version, gnutls_check_version (NULL));
      return 0;
    }
  if (config_path == NULL)
    config_path = g_build_filename (PH_SYSCONFDIR, "pinhole.conf", NULL);

  ph_log_init ();
  config = ph_config_load (config_path, &error);
  if (check_only)
    {
      if (config == NULL)
        {
          fprintf (stderr, "%s\n", error->message);
          return 1;
        }
      printf ("%s: configuration is valid\n", config_path);
      return 0;
    }
  if (config == NULL)
    {
      fprintf (stderr, "%s\n", error->message);
      return 1;
    }

  signal (SIGPIPE, SIG_IGN);
  raise_fd_limit ();
  /* The relay frees and allocates record-sized blocks all the time; without
   * a trim threshold above that churn glibc returns the heap top to the
   * kernel and takes it back, a brk() pair per batch of records. */
  mallopt (M_TRIM_THRESHOLD, 8 * 1024 * 1024);
  mallopt (M_TOP_PAD, 1024 * 1024);
  gnutls_global_init ();
  loop = g_main_loop_new (NULL, FALSE);
  agent.loop = loop;
  agent.config_path = config_path;
  agent.server = ph_server_new (config, &error);
  if (agent.server == NULL)
    {
      fprintf (stderr, "pinhole-agent: %s\n", error->message);
      return 1;
    }
  g_unix_signal_add (SIGTERM, on_terminate, &agent);
  g_unix_signal_add (SIGINT, on_terminate, &agent);
  g_unix_signal_add (SIGHUP, on_reload, &agent);
  g_message ("pinhole-agent %s started; cloud proxy %s:%u", PH_VERSION, config->host, config->port);

  g_main_loop_run (loop);

  ph_server_free (agent.server);
  gnutls_global_deinit ();
  g_message ("stopped");
  return 0;
}

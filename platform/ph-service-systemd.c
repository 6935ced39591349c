/* SPDX-License-Identifier: GPL-2.0-or-later */
/* ph-service-systemd.c: the sd_notify protocol, one datagram to
 * $NOTIFY_SOCKET, without linking libsystemd. Outside systemd it does
 * nothing. */
#define G_LOG_DOMAIN "pinhole-service"

#include "ph-service.h"

#include <errno.h>
#include <signal.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>
#include <glib-unix.h>

static void
notify (const char *text)
{
  const char *path = g_getenv ("NOTIFY_SOCKET");
  struct sockaddr_un sa = { .sun_family = AF_UNIX };
  gsize len;
  int fd;

  if (path == NULL || (path[0] != '/' && path[0] != '@') || strlen (path) >= sizeof sa.sun_path)
    return;
  memcpy (sa.sun_path, path, strlen (path));
  /* A leading @ names an abstract socket. */
  if (sa.sun_path[0] == '@')
    sa.sun_path[0] = '\0';
  len = G_STRUCT_OFFSET (struct sockaddr_un, sun_path) + strlen (path);
  fd = socket (AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (fd < 0)
    return;
  if (sendto (fd, text, strlen (text), MSG_NOSIGNAL, (struct sockaddr *) &sa, (socklen_t) len) < 0)
    g_debug ("sd_notify: %s", g_strerror (errno));
  close (fd);
}

void
ph_service_notify_ready (void)
{
  notify ("READY=1");
}

void
ph_service_notify_reloading (void)
{
  notify ("RELOADING=1");
}

void
ph_service_notify_stopping (void)
{
  notify ("STOPPING=1");
}

void
ph_service_notify_status (const char *status)
{
  g_autofree char *text = g_strdup_printf ("STATUS=%s", status);
  notify (text);
}

const char *
ph_service_get_state_directory (void)
{
  const char *dir = g_getenv ("STATE_DIRECTORY");

  /* Several directories are separated by ':'; ours is the first. */
  if (dir == NULL || *dir == '\0' || strchr (dir, ':') != NULL)
    return NULL;
  return dir;
}

gboolean
ph_service_uid_is_self_or_root (guint32 uid)
{
  return uid == (guint32) getuid () || uid == 0;
}

void
ph_service_watch_stop_and_reload (GSourceFunc on_stop, GSourceFunc on_reload, gpointer data)
{
  g_unix_signal_add (SIGTERM, on_stop, data);
  g_unix_signal_add (SIGINT, on_stop, data);
  g_unix_signal_add (SIGHUP, on_reload, data);
}

char *
ph_service_read_log (gboolean system, guint lines, GError **error)
{
  g_autofree char *n = g_strdup_printf ("%u", lines);
  const char *argv[] = { "journalctl",
                         "--no-pager",
                         "-o",
                         "short-iso",
                         "-n",
                         n,
                         system ? "-u" : "--user-unit",
                         "pinhole-agent.service",
                         NULL };
  g_autofree char *out = NULL;
  g_autofree char *err = NULL;
  int wait_status = 0;

  if (!g_spawn_sync (NULL, (char **) argv, NULL, G_SPAWN_SEARCH_PATH, NULL, NULL, &out, &err,
                     &wait_status, error))
    return NULL;
  if (!g_spawn_check_wait_status (wait_status, error))
    {
      g_prefix_error (error, "journalctl: %s: ", g_strstrip (err));
      return NULL;
    }
  return g_steal_pointer (&out);
}

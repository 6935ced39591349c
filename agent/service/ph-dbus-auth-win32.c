/* SPDX-License-Identifier: GPL-2.0-or-later */
/* ph-dbus-auth-win32.c: authorization on the named pipe, where there is no bus to ask: the pipe
 * server found the client's role from its token; users may toggle the tunnel and see its
 * connections, administrators (and SYSTEM) do the rest. */
#define G_LOG_DOMAIN "pinhole-dbus"

#include "ph-build-config.h"
#include "ph-control-pipe.h"
#include "ph-dbus-auth.h"

#include <glib/gi18n.h>

void
ph_dbus_auth_check (PhAuthMode mode, GDBusMethodInvocation *invocation, const char *action,
                    PhAuthDoneFunc done, gpointer user_data)
{
  PhPeerRole role;

  /* Windows serves the control interface on the pipe only (peer to peer: no sender). */
  g_assert (mode == PH_AUTH_PEER || g_dbus_method_invocation_get_sender (invocation) == NULL);
  if (mode != PH_AUTH_PEER)
    {
      done (NULL, user_data);
      return;
    }
  /* The pipe told who the client is: interactive users may toggle and see the connections,
   * administrators do the rest. */
  role = ph_control_pipe_peer_role (g_dbus_method_invocation_get_connection (invocation));
  if (role != PH_PEER_ROLE_ADMIN
      && !(role == PH_PEER_ROLE_USER
           && (g_strcmp0 (action, PH_AUTH_ACTION_TOGGLE) == 0
               || g_strcmp0 (action, PH_AUTH_ACTION_MONITOR) == 0)))
    {
      done (_ ("this needs an administrator"), user_data);
      return;
    }
  done (NULL, user_data);
}

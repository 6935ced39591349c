/* SPDX-License-Identifier: GPL-2.0-or-later */
/* ph-control-pipe.h: the control interface (org.pinhole.Agent1) on Windows, server side:
 * peer-to-peer D-Bus over the named pipe \\.\pipe\pinhole-agent, one private GDBusConnection
 * per client. The client half is agent/common/ph-control-pipe-client.h.
 *
 * The pipe is created with a DACL that admits SYSTEM, Administrators and interactive users
 * only, and PIPE_REJECT_REMOTE_CLIENTS. The server works out each client's role from the
 * pipe (the client's token): the agent lets users read and toggle, and only administrators
 * (and SYSTEM) change settings and credentials. */
#pragma once

#include <gio/gio.h>

/* The pipe's name and the client half (pinholectl and the tray connect through ph-client). */
#include "ph-control-pipe-client.h"

G_BEGIN_DECLS

typedef enum
{
  PH_PEER_ROLE_NONE = 0,
  PH_PEER_ROLE_USER,  /* an interactive user: may read and toggle */
  PH_PEER_ROLE_ADMIN, /* SYSTEM, an elevated administrator, or the agent's own user (a
                       * console agent's user could edit its files anyway) */
} PhPeerRole;

/* The role the server found for @connection; NONE for a connection not from a server. */
PhPeerRole ph_control_pipe_peer_role (GDBusConnection *connection);

/* The server sets it before @accept runs; a transport that vets clients another way may too. */
void ph_control_pipe_set_peer_role (GDBusConnection *connection, PhPeerRole role);

typedef void (*PhControlPipeAccept) (GDBusConnection *connection, PhPeerRole role,
                                     gpointer user_data);

typedef struct _PhControlPipeServer PhControlPipeServer;

/* Listens on @name; @accept runs in the thread-default main context of the caller, once per
 * client, with a connection that is authenticated and processing messages. Fails when the
 * pipe exists already (another agent), so two agents never share one name. */
PhControlPipeServer *ph_control_pipe_server_new (const char *name, PhControlPipeAccept accept,
                                                 gpointer user_data, GError **error);
void ph_control_pipe_server_free (PhControlPipeServer *server);

G_DEFINE_AUTOPTR_CLEANUP_FUNC (PhControlPipeServer, ph_control_pipe_server_free)

G_END_DECLS

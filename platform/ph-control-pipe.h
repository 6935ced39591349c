/* ph-control-pipe.h: the control interface (org.pinhole.Agent1) on Windows: peer-to-peer
 * D-Bus over the named pipe \\.\pipe\pinhole-agent, one private GDBusConnection per client.
 * There is no bus and no bus name: a client makes its PhAgent1Proxy with a NULL name on the
 * connection this returns.
 *
 * The pipe is created with a DACL that admits SYSTEM, Administrators and interactive users
 * only, and PIPE_REJECT_REMOTE_CLIENTS. The server works out each client's role from the
 * pipe (the client's token): the agent lets users read and toggle, and only administrators
 * (and SYSTEM) change settings and credentials. */
#pragma once

#include <gio/gio.h>

G_BEGIN_DECLS

#define PH_CONTROL_PIPE_DEFAULT "\\\\.\\pipe\\pinhole-agent"

/* The pipe's name: $PINHOLE_CONTROL_PIPE if set (tests run agents side by side), else
 * PH_CONTROL_PIPE_DEFAULT. */
const char *ph_control_pipe_name (void);

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

/* Client side. G_IO_ERROR_NOT_FOUND when no agent listens. */
GDBusConnection *ph_control_pipe_connect_sync (const char *name, GCancellable *cancellable,
                                               GError **error);
void ph_control_pipe_connect_async (const char *name, GCancellable *cancellable,
                                    GAsyncReadyCallback callback, gpointer user_data);
GDBusConnection *ph_control_pipe_connect_finish (GAsyncResult *result, GError **error);

G_DEFINE_AUTOPTR_CLEANUP_FUNC (PhControlPipeServer, ph_control_pipe_server_free)

G_END_DECLS

/* SPDX-License-Identifier: GPL-2.0-or-later */
/* ph-agent-watch.h: finds the agent and follows it coming and going, whatever the transport:
 * its bus name on the system or session bus (Linux), or its named pipe (Windows), where there
 * is no bus and the connection is peer to peer. */
#pragma once

#include <gio/gio.h>

G_BEGIN_DECLS

/* The agent is there on @connection. @name is its bus name, or NULL on a peer-to-peer
 * connection (no bus): make the PhAgent1Proxy with it as it is. */
typedef void (*PhAgentAppearedFunc) (GDBusConnection *connection, const char *name,
                                     gpointer user_data);
/* The agent is gone, or was not there at the start. */
typedef void (*PhAgentVanishedFunc) (gpointer user_data);

typedef struct _PhAgentWatch PhAgentWatch;

/* @bus_type: the bus to watch, or G_BUS_TYPE_NONE for the system service if it runs, else the
 * per-user agent on the session bus; ignored where the agent is reached by its pipe. The
 * callbacks run in the caller's thread-default main context, never from within this call. */
PhAgentWatch *ph_agent_watch_new (GBusType bus_type, PhAgentAppearedFunc appeared,
                                  PhAgentVanishedFunc vanished, gpointer user_data);
void ph_agent_watch_free (PhAgentWatch *watch);

G_DEFINE_AUTOPTR_CLEANUP_FUNC (PhAgentWatch, ph_agent_watch_free)

G_END_DECLS

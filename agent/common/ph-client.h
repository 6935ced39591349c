/* SPDX-License-Identifier: GPL-2.0-or-later */
/* ph-client.h: the one way pinholectl and the tray reach the agent. It finds the agent (on
 * Linux the system bus, where the bus may also start it, else the session bus; on Windows the
 * named pipe; or a D-Bus address given by hand), makes the PhAgent1 proxy, and turns what the
 * transport and the agent answer into PH_ERROR and PH_CLIENT_ERROR codes with messages a user
 * can read. */
#pragma once

#include <gio/gio.h>

#include "ph-agent1-generated.h"
#include "ph-names.h"

G_BEGIN_DECLS

#define PH_CLIENT_ERROR (ph_client_error_quark ())

/* The client's own failures; the agent's are PH_ERROR. */
typedef enum
{
  /* No agent there (not running, nothing listens, no bus), or the way to it broke. */
  PH_CLIENT_ERROR_UNREACHABLE,
} PhClientError;

GQuark ph_client_error_quark (void);

/* Where to look. @bus_type: G_BUS_TYPE_SYSTEM or G_BUS_TYPE_SESSION, or G_BUS_TYPE_NONE for
 * the default: the system bus if the agent runs there or the bus can start it, else the
 * session bus; on Windows, where there is no bus, the named pipe (ph_control_pipe_name), and
 * @bus_type is ignored. @address, if not NULL, wins over both: a D-Bus address that names a
 * bus (a private dbus-daemon) or the agent's own peer-to-peer server.
 *
 * Returns the connection the agent is on, and in @name its bus name, or NULL on a peer-to-peer
 * connection. Fails with PH_CLIENT_ERROR_UNREACHABLE and a message that says where the agent
 * was looked for. */
GDBusConnection *ph_client_connect_sync (GBusType bus_type, const char *address, const char **name,
                                         GCancellable *cancellable, GError **error);
/* The same in a worker thread; @callback runs in the caller's thread-default main context. */
void ph_client_connect_async (GBusType bus_type, const char *address, GCancellable *cancellable,
                              GAsyncReadyCallback callback, gpointer user_data);
GDBusConnection *ph_client_connect_finish (GAsyncResult *result, const char **name, GError **error);

/* The agent's proxy on @connection (from ph_client_connect or the tray's watch); @name as
 * ph_client_connect gave it. */
PhAgent1 *ph_client_proxy_new_sync (GDBusConnection *connection, const char *name,
                                    GDBusProxyFlags flags, GCancellable *cancellable,
                                    GError **error);
void ph_client_proxy_new (GDBusConnection *connection, const char *name, GDBusProxyFlags flags,
                          GCancellable *cancellable, GAsyncReadyCallback callback,
                          gpointer user_data);
PhAgent1 *ph_client_proxy_new_finish (GAsyncResult *result, GError **error);

/* ph_client_connect_sync and ph_client_proxy_new_sync in one. */
PhAgent1 *ph_client_get_agent_sync (GBusType bus_type, const char *address, GDBusProxyFlags flags,
                                    GCancellable *cancellable, GError **error);

/* Reads every property of @agent in one call, for a proxy made with
 * G_DBUS_PROXY_FLAGS_DO_NOT_LOAD_PROPERTIES: a failure is then an error, not empty values. */
gboolean ph_client_load_properties_sync (PhAgent1 *agent, GCancellable *cancellable,
                                         GError **error);

/* Linux: whether the agent owns its name on the bus of @bus_type or that bus can start it
 * (an activatable name); FALSE when there is no such bus. @timeout_msec as for D-Bus calls. */
gboolean ph_client_agent_on_bus (GBusType bus_type, int timeout_msec);

/* From now on, every method call on @agent's connection (but those to the bus itself) carries
 * G_DBUS_CALL_FLAGS_ALLOW_INTERACTIVE_AUTHORIZATION, so that the agent may have polkit ask
 * for a password (a graphical agent of the session, or the terminal's: ph-auth-agent.h), and
 * calls that @agent makes with the default timeout wait @timeout_msec for the answer, as
 * asking takes a person's time. For a program whose calls are made by the generated
 * functions, which take no flags (pinholectl); the tray passes the flag itself. */
void ph_client_allow_interactive_authorization (PhAgent1 *agent, int timeout_msec);

/* Turns @error, as a call to the agent failed, into what a client shows and decides on:
 * refusals (D-Bus AccessDenied, AuthFailed, polkit's NotAuthorized) become
 * PH_ERROR_PERMISSION_DENIED, a transport that fails PH_CLIENT_ERROR_UNREACHABLE, any other
 * remote error PH_ERROR_FAILED; the agent's own PH_ERROR codes and errors of other domains stay
 * as they are. The message keeps its text, without the "GDBus.Error:NAME: " prefix. */
void ph_client_error_convert (GError *error);

G_END_DECLS

/* SPDX-License-Identifier: GPL-2.0-or-later */
/* ph-names.h: where the agent is found, in one place: its bus name, object path and interface
 * (org.pinhole.Agent1), and the named pipe that carries the same interface on Windows. The
 * agent claims and serves these; pinholectl and the tray look for them through ph-client. */
#pragma once

/* The well-known name on the system bus (the system service) or the session bus (a per-user
 * agent); installer/dbus/ names it too, in the policy and the activation file. */
#define PH_AGENT_BUS_NAME "org.pinhole.Agent"
#define PH_AGENT_OBJECT_PATH "/org/pinhole/Agent1"
#define PH_AGENT_INTERFACE "org.pinhole.Agent1"

/* Windows: peer-to-peer D-Bus on this pipe, unless $PINHOLE_CONTROL_PIPE names another
 * (ph_control_pipe_name, in ph-control-pipe-client.h). */
#define PH_CONTROL_PIPE_DEFAULT "\\\\.\\pipe\\pinhole-agent"

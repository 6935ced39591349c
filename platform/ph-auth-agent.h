/* SPDX-License-Identifier: GPL-2.0-or-later */
/* ph-auth-agent.h: a textual authentication agent for this process, as systemctl has one: while
 * it runs, the system's authorization service (polkit) asks for a password on the terminal
 * when a call to the system service needs one. Used by pinholectl. */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

typedef struct _PhAuthAgent PhAuthAgent;

/* Starts the agent for this process and returns once it has registered (or given up), when
 * standard input is a terminal. NULL when there is nothing to start: no terminal, no agent
 * program, or a platform without one (Windows asks through UAC instead); a failure is
 * logged with g_debug, since the call may still go through without a question. */
PhAuthAgent *ph_auth_agent_start (void);
/* Stops it; NULL is allowed. */
void ph_auth_agent_stop (PhAuthAgent *agent);

G_DEFINE_AUTOPTR_CLEANUP_FUNC (PhAuthAgent, ph_auth_agent_stop)

G_END_DECLS

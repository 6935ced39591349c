/* SPDX-License-Identifier: GPL-2.0-or-later */
/* ph-auth-agent-none.c: no textual authentication agent where there is no polkit (Windows:
 * elevation goes through UAC). */
#include "ph-auth-agent.h"

PhAuthAgent *
ph_auth_agent_start (void)
{
  return NULL;
}

void
ph_auth_agent_stop (PhAuthAgent *agent)
{
}

/* SPDX-License-Identifier: GPL-2.0-or-later */
/* ph-policy-none.c: Group Policy where there is none (everything but Windows): no layer, nothing
 * to watch. */
#include "ph-policy.h"

char *
ph_policy_read (void)
{
  return NULL;
}

PhPolicyWatch *
ph_policy_watch_new (PhPolicyChangedFunc func, gpointer user_data)
{
  return NULL;
}

void
ph_policy_watch_free (PhPolicyWatch *watch)
{
}

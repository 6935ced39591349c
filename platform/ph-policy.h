/* SPDX-License-Identifier: GPL-2.0-or-later */
/* ph-policy.h: Group Policy: the settings IT pushes into HKLM\Software\Policies\Pinhole, read
 * as the text of one more managed configuration layer, and a watch that says when they changed.
 * Only Windows has them (ph-policy-win32.c); elsewhere there are none (ph-policy-none.c). The
 * conversion of the registry's values into text is portable (ph-policy.c). */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

/* The layer's name in messages and in a setting's source. */
#define PH_POLICY_LABEL "HKLM\\Software\\Policies\\Pinhole"

typedef enum
{
  PH_POLICY_VALUE_STRING,
  PH_POLICY_VALUE_NUMBER,
} PhPolicyValueType;

/* One registry value: HKLM\Software\Policies\Pinhole\@group, value @name. */
typedef struct
{
  const char *group;
  const char *name;
  PhPolicyValueType type;
  const char *string; /* PH_POLICY_VALUE_STRING */
  guint64 number;     /* PH_POLICY_VALUE_NUMBER */
} PhPolicyValue;

/* The GKeyFile text "[group]\nkey=value\n" of @values, groups and keys in byte order (so a
 * problem's line number is stable); values whose group or name cannot be a GKeyFile group or
 * key are left out with a warning. NULL when nothing is left. */
char *ph_policy_text_build (const PhPolicyValue *values, gsize n_values);

/* The policy layer's text now, or NULL when there is no policy (or no such thing here). */
char *ph_policy_read (void);

typedef struct _PhPolicyWatch PhPolicyWatch;
typedef void (*PhPolicyChangedFunc) (gpointer user_data);

/* Calls @func in the thread-default main context when the policies may have changed; NULL where
 * there is nothing to watch. */
PhPolicyWatch *ph_policy_watch_new (PhPolicyChangedFunc func, gpointer user_data);
void ph_policy_watch_free (PhPolicyWatch *watch);

G_END_DECLS

/* SPDX-License-Identifier: GPL-2.0-or-later */
/* ph-dbus-auth.h: who may call what on org.pinhole.Agent1. The D-Bus adapter asks; one file per
 * platform answers: the caller's Unix user, then polkit, on a bus (ph-dbus-auth-unix.c); the
 * role the named pipe found for the client on Windows (ph-dbus-auth-win32.c). */
#pragma once

#include <gio/gio.h>

G_BEGIN_DECLS

typedef enum
{
  PH_AUTH_SAME_USER, /* session bus: only the agent's own user */
  PH_AUTH_POLKIT,    /* system bus: root, else polkit per action */
  PH_AUTH_PEER,      /* a private connection the transport already vetted */
} PhAuthMode;

/* The actions, as polkit knows them (installer/polkit/). Reading the state needs none;
 * seeing the open connections (whose targets say where the machine's users go) and toggling
 * are open to a user at the machine; changing the configuration or the credentials needs an
 * administrator. */
#define PH_AUTH_ACTION_TOGGLE "org.pinhole.agent.toggle"
#define PH_AUTH_ACTION_MONITOR "org.pinhole.agent.monitor"
#define PH_AUTH_ACTION_CONFIGURE "org.pinhole.agent.configure"

/* @why: NULL when the call may go ahead, else why not, translated, for the caller. */
typedef void (*PhAuthDoneFunc) (const char *why, gpointer user_data);

/* Works out whether the caller of @invocation may do @action under @mode, and calls @done
 * exactly once with the answer: at once, or later from the main context (a bus round trip). */
void ph_dbus_auth_check (PhAuthMode mode, GDBusMethodInvocation *invocation, const char *action,
                         PhAuthDoneFunc done, gpointer user_data);

G_END_DECLS

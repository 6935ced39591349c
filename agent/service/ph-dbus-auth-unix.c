/* SPDX-License-Identifier: GPL-2.0-or-later */
/* ph-dbus-auth-unix.c: authorization on a bus: the bus daemon says which Unix user the caller
 * is; the agent's own user and root may do anything, and on the system bus everyone else is
 * up to polkit, per action. */
#define G_LOG_DOMAIN "pinhole-dbus"

#include "ph-build-config.h"
#include "ph-dbus-auth.h"
#include "ph-service.h"

#include <glib/gi18n.h>

typedef struct
{
  PhAuthMode mode;
  GDBusMethodInvocation *invocation;
  const char *action;
  PhAuthDoneFunc done;
  gpointer user_data;
  gboolean interactive; /* the caller allowed a question (ALLOW_INTERACTIVE_AUTHORIZATION) */
} PhAuthCheck;

static void
auth_check_free (PhAuthCheck *call)
{
  g_object_unref (call->invocation);
  g_free (call);
}

G_DEFINE_AUTOPTR_CLEANUP_FUNC (PhAuthCheck, auth_check_free)

static void
deny (PhAuthCheck *call, const char *why)
{
  call->done (why, call->user_data);
}

static void
polkit_done (GObject *source, GAsyncResult *result, gpointer data)
{
  g_autoptr (PhAuthCheck) call = data;
  g_autoptr (GError) error = NULL;
  g_autoptr (GVariant) reply
      = g_dbus_connection_call_finish (G_DBUS_CONNECTION (source), result, &error);
  gboolean authorized = FALSE, challenge = FALSE;

  if (reply == NULL)
    {
      g_dbus_error_strip_remote_error (error);
      /* TRANSLATORS: polkit is the name of the system's authorization service */
      g_autofree char *why = g_strdup_printf (_ ("polkit could not decide (%s)"), error->message);
      deny (call, why);
      return;
    }
  g_variant_get (reply, "((bb@a{ss}))", &authorized, &challenge, NULL);
  if (!authorized)
    {
      if (challenge && !call->interactive)
        deny (call, _ ("authentication is required, and the call did not allow asking for it"));
      else
        deny (call,
              challenge ? _ ("authentication is required") : _ ("the policy does not allow it"));
      return;
    }
  call->done (NULL, call->user_data);
}

static void
uid_done (GObject *source, GAsyncResult *result, gpointer data)
{
  g_autoptr (PhAuthCheck) call = data;
  g_autoptr (GError) error = NULL;
  g_autoptr (GVariant) reply
      = g_dbus_connection_call_finish (G_DBUS_CONNECTION (source), result, &error);
  guint32 uid = G_MAXUINT32;
  GVariantBuilder subject;
  GDBusConnection *connection;
  GVariant *args;

  if (reply == NULL)
    {
      deny (call, _ ("the caller's user could not be found"));
      return;
    }
  g_variant_get (reply, "(u)", &uid);
  if (ph_service_uid_is_self_or_root (uid))
    {
      call->done (NULL, call->user_data);
      return;
    }
  if (call->mode == PH_AUTH_SAME_USER)
    {
      deny (call, _ ("the caller is another user"));
      return;
    }
  /* Built before the call: C evaluates arguments in no set order, and the
   * last one takes @call. */
  g_variant_builder_init (&subject, G_VARIANT_TYPE ("a{sv}"));
  g_variant_builder_add (
      &subject, "{sv}", "name",
      g_variant_new_string (g_dbus_method_invocation_get_sender (call->invocation)));
  /* polkit asks a person only when the caller said it may wait for one (D-Bus's
   * ALLOW_INTERACTIVE_AUTHORIZATION), as the D-Bus specification has it. */
  args = g_variant_new ("((sa{sv})sa{ss}us)", "system-bus-name", &subject, call->action, NULL,
                        call->interactive ? 1 /* AllowUserInteraction */ : 0, "");
  connection = g_dbus_method_invocation_get_connection (call->invocation);
  g_dbus_connection_call (connection, "org.freedesktop.PolicyKit1",
                          "/org/freedesktop/PolicyKit1/Authority",
                          "org.freedesktop.PolicyKit1.Authority", "CheckAuthorization", args,
                          G_VARIANT_TYPE ("((bba{ss}))"), G_DBUS_CALL_FLAGS_NONE, G_MAXINT, NULL,
                          polkit_done, g_steal_pointer (&call));
}

void
ph_dbus_auth_check (PhAuthMode mode, GDBusMethodInvocation *invocation, const char *action,
                    PhAuthDoneFunc done, gpointer user_data)
{
  const char *sender = g_dbus_method_invocation_get_sender (invocation);
  PhAuthCheck *call;

  /* A private connection (no bus, no sender) was vetted by whoever made it. */
  if (mode == PH_AUTH_PEER || sender == NULL)
    {
      done (NULL, user_data);
      return;
    }
  call = g_new0 (PhAuthCheck, 1);
  call->mode = mode;
  call->invocation = g_object_ref (invocation);
  call->action = action;
  call->done = done;
  call->user_data = user_data;
  call->interactive = (g_dbus_message_get_flags (g_dbus_method_invocation_get_message (invocation))
                       & G_DBUS_MESSAGE_FLAGS_ALLOW_INTERACTIVE_AUTHORIZATION)
                      != 0;
  g_dbus_connection_call (g_dbus_method_invocation_get_connection (invocation),
                          "org.freedesktop.DBus", "/org/freedesktop/DBus", "org.freedesktop.DBus",
                          "GetConnectionUnixUser", g_variant_new ("(s)", sender),
                          G_VARIANT_TYPE ("(u)"), G_DBUS_CALL_FLAGS_NONE, -1, NULL, uid_done, call);
}

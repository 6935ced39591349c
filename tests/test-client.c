/* SPDX-License-Identifier: GPL-2.0-or-later */
/* test-client.c: unit tests for agent/common/ph-client.h: how the bus's and the agent's errors
 * turn into PH_ERROR / PH_CLIENT_ERROR codes (pinholectl's exit codes rest on it), and, on a
 * private bus (GTestDBus), finding the agent by address: there, not there, activatable. */
#include "ph-client.h"
#include "ph-error.h"

#include <gio/gio.h>
#include <glib/gstdio.h>

/* ---- errors ---- */

typedef struct
{
  const char *name;
  GQuark (*domain) (void); /* of the error as it arrives */
  int code;
  const char *remote; /* a D-Bus error name: the error arrives as that remote error */
  GQuark (*want_domain) (void);
  int want_code;
} ConvertCase;

static GQuark
dbus_error (void)
{
  return G_DBUS_ERROR;
}

static GQuark
io_error (void)
{
  return G_IO_ERROR;
}

static GQuark
file_error (void)
{
  return G_FILE_ERROR;
}

static const ConvertCase convert_cases[] = {
  { "access-denied", NULL, 0, "org.freedesktop.DBus.Error.AccessDenied", ph_error_quark,
    PH_ERROR_PERMISSION_DENIED },
  { "auth-failed", NULL, 0, "org.freedesktop.DBus.Error.AuthFailed", ph_error_quark,
    PH_ERROR_PERMISSION_DENIED },
  { "polkit", NULL, 0, "org.freedesktop.PolicyKit1.Error.NotAuthorized", ph_error_quark,
    PH_ERROR_PERMISSION_DENIED },
  { "service-unknown", NULL, 0, "org.freedesktop.DBus.Error.ServiceUnknown", ph_client_error_quark,
    PH_CLIENT_ERROR_UNREACHABLE },
  { "no-reply", NULL, 0, "org.freedesktop.DBus.Error.NoReply", ph_client_error_quark,
    PH_CLIENT_ERROR_UNREACHABLE },
  { "unknown-object", NULL, 0, "org.freedesktop.DBus.Error.UnknownObject", ph_client_error_quark,
    PH_CLIENT_ERROR_UNREACHABLE },
  { "invalid-args", NULL, 0, "org.freedesktop.DBus.Error.InvalidArgs", ph_error_quark,
    PH_ERROR_FAILED },
  { "unknown-remote", NULL, 0, "com.example.Error.Whatever", ph_error_quark, PH_ERROR_FAILED },
  { "agent-locked", NULL, 0, "org.pinhole.Error.Locked", ph_error_quark, PH_ERROR_LOCKED },
  { "agent-pin-mismatch", NULL, 0, "org.pinhole.Error.PinMismatch", ph_error_quark,
    PH_ERROR_PIN_MISMATCH },
  { "local-dbus-disconnected", dbus_error, G_DBUS_ERROR_DISCONNECTED, NULL, ph_client_error_quark,
    PH_CLIENT_ERROR_UNREACHABLE },
  { "transport-closed", io_error, G_IO_ERROR_CLOSED, NULL, ph_client_error_quark,
    PH_CLIENT_ERROR_UNREACHABLE },
  { "transport-broken", io_error, G_IO_ERROR_BROKEN_PIPE, NULL, ph_client_error_quark,
    PH_CLIENT_ERROR_UNREACHABLE },
  /* A caller that gave up was not refused anything. */
  { "cancelled", io_error, G_IO_ERROR_CANCELLED, NULL, io_error, G_IO_ERROR_CANCELLED },
  /* Not the client's business: left alone. */
  { "other-domain", file_error, G_FILE_ERROR_NOENT, NULL, file_error, G_FILE_ERROR_NOENT },
};

static void
test_error_convert (gconstpointer data)
{
  const ConvertCase *c = data;
  g_autoptr (GError) error = NULL;

  if (c->remote != NULL)
    error = g_dbus_error_new_for_dbus_error (c->remote, "the words for the user");
  else
    error = g_error_new_literal (c->domain (), c->code, "the words for the user");
  ph_client_error_convert (error);
  g_assert_error (error, c->want_domain (), c->want_code);
  /* The message is kept, without the "GDBus.Error:NAME: " prefix. */
  g_assert_cmpstr (error->message, ==, "the words for the user");
}

/* ---- finding the agent by address, on a private bus ---- */

#ifdef G_OS_UNIX /* GTestDBus needs dbus-daemon and unix: addresses. */
typedef struct
{
  GTestDBus *bus;
  GDBusConnection *owner; /* the connection that plays the agent, if any */
  char *address;
} BusFixture;

static void
bus_setup (BusFixture *f, gconstpointer data)
{
  f->bus = g_test_dbus_new (G_TEST_DBUS_NONE);
  g_test_dbus_up (f->bus);
  f->address = g_strdup (g_test_dbus_get_bus_address (f->bus));
}

static void
bus_teardown (BusFixture *f, gconstpointer data)
{
  if (f->owner != NULL)
    g_dbus_connection_close_sync (f->owner, NULL, NULL);
  g_clear_object (&f->owner);
  g_test_dbus_down (f->bus);
  g_clear_object (&f->bus);
  g_free (f->address);
}

static void
test_address_no_agent (BusFixture *f, gconstpointer data)
{
  g_autoptr (GError) error = NULL;
  g_autoptr (GDBusConnection) connection = NULL;
  g_autofree char *want = NULL;

  connection = ph_client_connect_sync (G_BUS_TYPE_NONE, f->address, NULL, NULL, &error);
  g_assert_null (connection);
  g_assert_error (error, PH_CLIENT_ERROR, PH_CLIENT_ERROR_UNREACHABLE);
  want = g_strdup_printf ("the Pinhole agent is not running on the bus at %s (nobody owns %s)",
                          f->address, PH_AGENT_BUS_NAME);
  g_assert_cmpstr (error->message, ==, want);
}

static void
test_address_agent (BusFixture *f, gconstpointer data)
{
  g_autoptr (GError) error = NULL;
  g_autoptr (GDBusConnection) connection = NULL;
  g_autoptr (GVariant) reply = NULL;
  const char *name = "unset";
  guint result = 0;

  f->owner = g_dbus_connection_new_for_address_sync (
      f->address,
      G_DBUS_CONNECTION_FLAGS_AUTHENTICATION_CLIENT
          | G_DBUS_CONNECTION_FLAGS_MESSAGE_BUS_CONNECTION,
      NULL, NULL, &error);
  g_assert_no_error (error);
  reply = g_dbus_connection_call_sync (
      f->owner, "org.freedesktop.DBus", "/org/freedesktop/DBus", "org.freedesktop.DBus",
      "RequestName", g_variant_new ("(su)", PH_AGENT_BUS_NAME, 4), G_VARIANT_TYPE ("(u)"),
      G_DBUS_CALL_FLAGS_NONE, -1, NULL, &error);
  g_assert_no_error (error);
  g_variant_get (reply, "(u)", &result);
  g_assert_cmpuint (result, ==, 1); /* primary owner */

  connection = ph_client_connect_sync (G_BUS_TYPE_NONE, f->address, &name, NULL, &error);
  g_assert_no_error (error);
  g_assert_nonnull (connection);
  g_assert_cmpstr (name, ==, PH_AGENT_BUS_NAME);
}

/* A name the bus can start counts as the agent there: the first call starts it. */
static void
test_address_activatable (void)
{
  g_autoptr (GTestDBus) bus = g_test_dbus_new (G_TEST_DBUS_NONE);
  g_autoptr (GError) error = NULL;
  g_autoptr (GDBusConnection) connection = NULL;
  g_autofree char *dir = g_dir_make_tmp ("ph-test-client-XXXXXX", NULL);
  g_autofree char *file = g_build_filename (dir, PH_AGENT_BUS_NAME ".service", NULL);
  const char *name = NULL;

  g_assert_true (g_file_set_contents (
      file, "[D-BUS Service]\nName=" PH_AGENT_BUS_NAME "\nExec=/bin/false\n", -1, NULL));
  g_test_dbus_add_service_dir (bus, dir);
  g_test_dbus_up (bus);
  connection = ph_client_connect_sync (G_BUS_TYPE_NONE, g_test_dbus_get_bus_address (bus), &name,
                                       NULL, &error);
  g_assert_no_error (error);
  g_assert_nonnull (connection);
  g_assert_cmpstr (name, ==, PH_AGENT_BUS_NAME);
  g_clear_object (&connection);
  g_test_dbus_down (bus);
  g_unlink (file);
  g_rmdir (dir);
}

static void
test_address_nothing_there (void)
{
  g_autoptr (GError) error = NULL;
  g_autoptr (GDBusConnection) connection = NULL;
  g_autofree char *dir = g_dir_make_tmp ("ph-test-client-XXXXXX", NULL);
  g_autofree char *address = g_strdup_printf ("unix:path=%s/none", dir);
  g_autofree char *prefix = g_strdup_printf ("cannot connect to %s: ", address);

  connection = ph_client_connect_sync (G_BUS_TYPE_NONE, address, NULL, NULL, &error);
  g_assert_null (connection);
  g_assert_error (error, PH_CLIENT_ERROR, PH_CLIENT_ERROR_UNREACHABLE);
  g_assert_true (g_str_has_prefix (error->message, prefix));
  g_rmdir (dir);
}
#endif

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  /* The agent's error names come back as PH_ERROR codes only once they are registered. */
  ph_error_quark ();

  for (guint i = 0; i < G_N_ELEMENTS (convert_cases); i++)
    {
      g_autofree char *path
          = g_strdup_printf ("/pinhole/client/error-convert/%s", convert_cases[i].name);

      g_test_add_data_func (path, &convert_cases[i], test_error_convert);
    }
#ifdef G_OS_UNIX
  /* GTestDBus runs dbus-daemon; unix: addresses. */
  g_test_add ("/pinhole/client/address/no-agent", BusFixture, NULL, bus_setup,
              test_address_no_agent, bus_teardown);
  g_test_add ("/pinhole/client/address/agent", BusFixture, NULL, bus_setup, test_address_agent,
              bus_teardown);
  g_test_add_func ("/pinhole/client/address/activatable", test_address_activatable);
  g_test_add_func ("/pinhole/client/address/nothing-there", test_address_nothing_there);
#endif
  return g_test_run ();
}

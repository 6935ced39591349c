/* SPDX-License-Identifier: GPL-2.0-or-later */
/* test-policy.c: Group Policy's portable part: registry values, given as a table, become the
 * text of a managed layer; loaded above a user's file, its keys win and are locked, and a bad
 * value is reported under the registry key's name. */
#include "ph-config.h"
#include "ph-policy.h"

#include <string.h>

static void
test_text (void)
{
  const PhPolicyValue values[] = {
    { "upstream", "port", PH_POLICY_VALUE_STRING, "8443", 0 },
    { "upstream", "host", PH_POLICY_VALUE_STRING, "proxy.example.com", 0 },
    { "listener", "port", PH_POLICY_VALUE_NUMBER, NULL, 3128 },
    { "upstream", "ca-file", PH_POLICY_VALUE_STRING, "C:\\ca\\cloud.pem", 0 },
    { "bad[group", "port", PH_POLICY_VALUE_STRING, "1", 0 },
    { "upstream", "a=b", PH_POLICY_VALUE_STRING, "1", 0 },
    { "upstream", "", PH_POLICY_VALUE_STRING, "1", 0 },
  };
  g_autofree char *text = NULL;
  g_autoptr (GKeyFile) kf = g_key_file_new ();
  g_autofree char *ca = NULL;

  g_test_expect_message ("pinhole-platform", G_LOG_LEVEL_WARNING, "*bad[group*");
  g_test_expect_message ("pinhole-platform", G_LOG_LEVEL_WARNING, "*a=b*");
  g_test_expect_message ("pinhole-platform", G_LOG_LEVEL_WARNING, "*ignoring*");
  text = ph_policy_text_build (values, G_N_ELEMENTS (values));
  g_test_assert_expected_messages ();
  g_assert_nonnull (text);
  /* Groups and keys in byte order, so line numbers are stable. */
  g_assert_cmpstr (text, ==,
                   "[listener]\nport=3128\n\n[upstream]\nca-file=C:\\\\ca\\\\cloud.pem\n"
                   "host=proxy.example.com\nport=8443\n");
  g_assert_true (g_key_file_load_from_data (kf, text, -1, G_KEY_FILE_NONE, NULL));
  ca = g_key_file_get_string (kf, "upstream", "ca-file", NULL);
  g_assert_cmpstr (ca, ==, "C:\\ca\\cloud.pem");

  g_assert_null (ph_policy_text_build (NULL, 0));
}

static GPtrArray *
layers (const char *user, const char *policy)
{
  GPtrArray *l = g_ptr_array_new_with_free_func ((GDestroyNotify) ph_config_file_free);
  PhConfigFile *f = ph_config_file_new ("/nonexistent/user.conf", FALSE, TRUE);

  ph_config_file_set_data (f, user);
  g_ptr_array_add (l, f);
  f = ph_config_file_new (PH_POLICY_LABEL, TRUE, TRUE);
  ph_config_file_set_data (f, policy);
  g_ptr_array_add (l, f);
  return l;
}

static void
test_layer (void)
{
  const PhPolicyValue values[] = {
    { "upstream", "port", PH_POLICY_VALUE_NUMBER, NULL, 8443 },
  };
  g_autofree char *text = ph_policy_text_build (values, G_N_ELEMENTS (values));
  g_autoptr (GPtrArray) l = layers ("[upstream]\nhost=proxy.example.com\nport=443\n", text);
  g_autoptr (GError) error = NULL;
  PhConfig *config = ph_config_load_layers (l, &error);

  g_assert_no_error (error);
  g_assert_cmpuint (ph_config_get_port (config), ==, 8443);
  g_assert_cmpstr (ph_config_get_value (config, "upstream.port"), ==, "8443");
  g_assert_true (ph_config_is_locked (config, "upstream.port"));
  g_assert_false (ph_config_is_locked (config, "upstream.host"));
  g_assert_cmpuint (ph_config_get_n_locked (config), ==, 1);
  ph_config_unref (config);
}

static void
test_bad_value (void)
{
  const PhPolicyValue values[] = {
    { "upstream", "port", PH_POLICY_VALUE_NUMBER, NULL, 70000 },
  };
  g_autofree char *text = ph_policy_text_build (values, G_N_ELEMENTS (values));
  g_autoptr (GPtrArray) l = layers ("[upstream]\nhost=proxy.example.com\n", text);
  g_autoptr (GError) error = NULL;
  PhConfig *config = ph_config_load_layers (l, &error);

  g_assert_null (config);
  g_assert_nonnull (error);
  g_test_message ("%s", error->message);
  g_assert_nonnull (strstr (error->message, PH_POLICY_LABEL));
  g_assert_nonnull (strstr (error->message, "port"));
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  g_test_add_func ("/pinhole/policy/text", test_text);
  g_test_add_func ("/pinhole/policy/layer", test_layer);
  g_test_add_func ("/pinhole/policy/bad-value", test_bad_value);
  return g_test_run ();
}

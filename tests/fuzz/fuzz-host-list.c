/* SPDX-License-Identifier: GPL-2.0-or-later */
/* fuzz-host-list.c: libFuzzer harness for the host list parser ([route] direct= and block=) and
 * for what is made from a list it accepts: the configuration that carries it, the PAC, and the
 * router. A list that parses must survive a round trip through its normalised texts, load as a
 * config value, give one PAC test per rule, and every rule must match the host it names. */
#include "ph-config.h"
#include "ph-host-list.h"
#include "ph-pac.h"
#include "ph-route.h"

#include <stdint.h>
#include <string.h>

int LLVMFuzzerTestOneInput (const uint8_t *data, size_t size);

static PhConfig *
config_with (const char *key, const char *list)
{
  g_autoptr (GPtrArray) layers
      = g_ptr_array_new_with_free_func ((GDestroyNotify) ph_config_file_free);
  g_autoptr (GError) error = NULL;
  PhConfigFile *file = ph_config_file_new ("fuzz.conf", FALSE, FALSE);
  g_autofree char *text
      = g_strdup_printf ("[upstream]\nhost=proxy.example\nport=443\n"
                         "pins=sha256//AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\n"
                         "[route]\n%s=%s\n",
                         key, list);
  PhConfig *config;

  ph_config_file_set_data (file, text);
  g_ptr_array_add (layers, file);
  config = ph_config_load_layers (layers, &error);
  g_assert_no_error (error);
  return config;
}

/* A host the rule at @i must match. */
static char *
host_for_rule (const PhHostList *list, guint i)
{
  const char *text = ph_host_list_get_text (list, i);

  switch (ph_host_list_get_kind (list, i))
    {
      case PH_HOST_RULE_EXACT:
        return g_ascii_strup (text, -1);
      case PH_HOST_RULE_UNDER:
        return g_strconcat ("x", text + 1, ".", NULL);
      case PH_HOST_RULE_DOMAIN:
        return g_strdup (text + 1);
      case PH_HOST_RULE_CIDR:
        return g_inet_address_to_string (
            g_inet_address_mask_get_address (ph_host_list_get_mask (list, i)));
      case PH_HOST_RULE_LOCAL:
        return g_strdup ("wiki");
    }
  g_assert_not_reached ();
}

int
LLVMFuzzerTestOneInput (const uint8_t *data, size_t size)
{
  g_autofree char *text = g_strndup ((const char *) data, size);
  g_autoptr (PhHostList) list = NULL;
  g_autoptr (PhHostList) again = NULL;
  g_autoptr (GError) error = NULL;
  g_autoptr (GString) joined = g_string_new (NULL);
  g_autoptr (PhConfig) direct = NULL;
  g_autoptr (PhConfig) block = NULL;
  g_autoptr (PhRouter) direct_router = NULL;
  g_autoptr (PhRouter) block_router = NULL;
  g_autofree char *pac = NULL;
  guint n;

  if (size > 4096 || strlen (text) != size)
    return 0;
  list = ph_host_list_parse (text, &error);
  if (list == NULL)
    {
      g_assert_nonnull (error);
      g_assert_true (g_utf8_validate (error->message, -1, NULL)
                     || !g_utf8_validate (text, -1, NULL));
      return 0;
    }
  g_assert_no_error (error);
  n = ph_host_list_get_n_rules (list);

  /* The normalised texts are rules of the same kinds, unchanged. */
  for (guint i = 0; i < n; i++)
    g_string_append_printf (joined, "%s%s", i ? " " : "", ph_host_list_get_text (list, i));
  again = ph_host_list_parse (joined->str, &error);
  g_assert_no_error (error);
  g_assert_cmpuint (ph_host_list_get_n_rules (again), ==, n);
  for (guint i = 0; i < n; i++)
    {
      g_assert_cmpint (ph_host_list_get_kind (again, i), ==, ph_host_list_get_kind (list, i));
      g_assert_cmpstr (ph_host_list_get_text (again, i), ==, ph_host_list_get_text (list, i));
    }

  /* As a config value (one line), in the PAC and in the router. */
  direct = config_with ("direct", joined->str);
  block = config_with ("block", joined->str);
  g_assert_cmpuint (ph_host_list_get_n_rules (ph_config_get_direct (direct)), ==, n);
  pac = ph_pac_build (direct, "127.0.0.1:3128");
  g_assert_nonnull (strstr (pac, "function FindProxyForURL(url, host)"));
  {
    guint tests = 0;

    for (const char *p = pac; (p = strstr (p, ") return \"DIRECT\";")) != NULL; p++)
      tests++;
    g_assert_cmpuint (tests, ==, n);
  }
  direct_router = ph_router_new (direct);
  block_router = ph_router_new (block);
  for (guint i = 0; i < n && i < 64; i++)
    {
      g_autofree char *host = host_for_rule (list, i);
      g_autoptr (PhRoute) d = ph_router_route (direct_router, NULL, host, 443, NULL);
      g_autoptr (PhRoute) b = ph_router_route (block_router, "http", host, 80, NULL);

      g_assert_nonnull (ph_host_list_match (list, host, NULL));
      g_assert_cmpint (ph_route_get_kind (d), ==, PH_ROUTE_DIRECT);
      g_assert_cmpint (ph_route_get_kind (b), ==, PH_ROUTE_BLOCK);
      g_assert_nonnull (ph_route_get_rule (d));
    }
  /* Hosts of every shape, matched or not, never crash. */
  {
    const char *hosts[]
        = { "example.com", "wiki", "10.1.2.3", "[fd00::1]", "::1", "A.B.C.", ".", "", "[", "]" };

    for (guint i = 0; i < G_N_ELEMENTS (hosts); i++)
      {
        g_autoptr (PhRoute) r = ph_router_route (direct_router, NULL, hosts[i], 443, NULL);

        (void) ph_host_list_match (list, hosts[i], NULL);
        g_assert_nonnull (r);
      }
  }
  return 0;
}

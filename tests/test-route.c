/* SPDX-License-Identifier: GPL-2.0-or-later */
/* test-route.c: unit tests for agent/core/ph-route.h: which route a request's target gets
 * (today the cloud proxy for every target, names never resolved), how a route names its
 * proxy, and a router's life beside its configuration. No sockets: runs under Wine too. */
#include "ph-route.h"
#include "ph-config.h"

#include <string.h>

#define PIN "sha256//AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA="

static PhConfig *
config_new (const char *host, guint port)
{
  g_autoptr (GPtrArray) layers
      = g_ptr_array_new_with_free_func ((GDestroyNotify) ph_config_file_free);
  g_autoptr (GError) error = NULL;
  PhConfigFile *file = ph_config_file_new ("test-route.conf", FALSE, FALSE);
  PhConfig *config;
  g_autofree char *data = NULL;

  data = g_strdup_printf ("[upstream]\n"
                          "host=%s\n"
                          "port=%u\n"
                          "pins=" PIN "\n"
                          "warm=0\n",
                          host, port);
  ph_config_file_set_data (file, data);
  g_ptr_array_add (layers, file);
  config = ph_config_load_layers (layers, &error);
  g_assert_no_error (error);
  g_assert (config != NULL);
  return config;
}

typedef struct
{
  const char *name;
  const char *scheme; /* NULL: a tunnel */
  const char *host;
  guint16 port;
} TargetCase;

/* Every kind of target a request names: a tunnel or http://, a name, an address of either
 * family, a name no resolver knows, a port of any kind. All go to the cloud proxy: there are
 * no rules yet, and a name that matches no rule is never resolved (DESIGN, route). */
static const TargetCase target_cases[] = {
  { "connect-name", NULL, "example.com", 443 },
  { "connect-ipv4", NULL, "192.0.2.7", 443 },
  { "connect-ipv6", NULL, "2001:db8::1", 8443 },
  { "connect-unresolvable", NULL, "no-such-host.invalid", 443 },
  { "connect-loopback", NULL, "127.0.0.1", 22 },
  { "http-name", "http", "example.com", 80 },
  { "http-odd-port", "http", "intranet.example", 8080 },
  { "http-ipv6", "http", "::1", 80 },
  { "http-single-label", "http", "wiki", 80 },
};

static void
test_target (gconstpointer data)
{
  const TargetCase *c = data;
  g_autoptr (PhConfig) config = config_new ("proxy.example", 443);
  g_autoptr (PhRouter) router = ph_router_new (config);
  g_autoptr (PhRoute) route = ph_router_route (router, c->scheme, c->host, c->port, NULL);

  g_assert_nonnull (route);
  g_assert_cmpint (ph_route_get_kind (route), ==, PH_ROUTE_PROXY);
  g_assert_cmpstr (ph_route_get_proxy (route), ==, "proxy.example:443");
  g_assert_cmpstr (ph_route_kind_to_string (ph_route_get_kind (route)), ==, "proxy");
}

typedef struct
{
  const char *host;
  guint port;
  const char *want;
} ProxyNameCase;

static void
test_proxy_name (void)
{
  static const ProxyNameCase cases[] = {
    { "proxy.example", 443, "proxy.example:443" },
    { "203.0.113.5", 8443, "203.0.113.5:8443" },
    { "2001:db8::443", 443, "[2001:db8::443]:443" },
  };

  for (gsize i = 0; i < G_N_ELEMENTS (cases); i++)
    {
      g_autoptr (PhConfig) config = config_new (cases[i].host, cases[i].port);
      g_autoptr (PhRouter) router = ph_router_new (config);
      g_autoptr (PhRoute) route = ph_router_route (router, NULL, "example.com", 443, NULL);

      g_assert_cmpstr (ph_route_get_proxy (route), ==, cases[i].want);
    }
}

/* Connections keep the router they began with: it holds its configuration, and a route
 * outlives its router. */
static void
test_lifetime (void)
{
  PhConfig *config = config_new ("proxy.example", 443);
  PhRouter *router = ph_router_new (config);
  PhRouter *held;
  PhRoute *route;

  ph_config_unref (config);
  held = ph_router_ref (router);
  g_assert_true (held == router);
  ph_router_unref (router);
  route = ph_router_route (held, "http", "example.com", 80, NULL);
  ph_router_unref (held);
  g_assert_cmpint (ph_route_get_kind (route), ==, PH_ROUTE_PROXY);
  g_assert_cmpstr (ph_route_get_proxy (route), ==, "proxy.example:443");
  ph_route_free (route);
  ph_route_free (NULL);
}

/* Two routers from two configurations (a reload) route each by its own. */
static void
test_reload (void)
{
  g_autoptr (PhConfig) old_config = config_new ("old.example", 443);
  g_autoptr (PhConfig) new_config = config_new ("new.example", 8443);
  g_autoptr (PhRouter) old_router = ph_router_new (old_config);
  g_autoptr (PhRouter) new_router = ph_router_new (new_config);
  g_autoptr (PhRoute) old_route = ph_router_route (old_router, NULL, "example.com", 443, NULL);
  g_autoptr (PhRoute) new_route = ph_router_route (new_router, NULL, "example.com", 443, NULL);

  g_assert_cmpstr (ph_route_get_proxy (old_route), ==, "old.example:443");
  g_assert_cmpstr (ph_route_get_proxy (new_route), ==, "new.example:8443");
}

/* The network's state: under UNREACHABLE and PORTAL unmatched requests go directly, with the
 * reason; under NONE and PORTAL_BLOCK (a portal under portal=block) to the cloud proxy. */
static void
test_fallback (void)
{
  static const struct
  {
    PhRouteFallback fallback;
    PhRouteKind kind;
    PhRouteReason reason;
  } rows[] = {
    { PH_ROUTE_FALLBACK_NONE, PH_ROUTE_PROXY, PH_ROUTE_BY_DEFAULT },
    { PH_ROUTE_FALLBACK_UNREACHABLE, PH_ROUTE_DIRECT, PH_ROUTE_BY_UNREACHABLE },
    { PH_ROUTE_FALLBACK_PORTAL, PH_ROUTE_DIRECT, PH_ROUTE_BY_PORTAL },
    { PH_ROUTE_FALLBACK_PORTAL_BLOCK, PH_ROUTE_PROXY, PH_ROUTE_BY_DEFAULT },
  };
  g_autoptr (PhConfig) config = config_new ("proxy.example", 443);
  g_autoptr (PhRouter) router = ph_router_new (config);

  for (gsize i = 0; i < G_N_ELEMENTS (rows); i++)
    {
      g_autoptr (PhRoute) route = NULL;

      ph_router_set_fallback (router, rows[i].fallback);
      g_assert_cmpint (ph_router_get_fallback (router), ==, rows[i].fallback);
      route = ph_router_route (router, "http", "www.example.com", 80, NULL);
      g_assert_cmpint (ph_route_get_kind (route), ==, rows[i].kind);
      g_assert_cmpint (ph_route_get_reason (route), ==, rows[i].reason);
    }
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);

  for (gsize i = 0; i < G_N_ELEMENTS (target_cases); i++)
    {
      g_autofree char *path = g_strdup_printf ("/pinhole/route/target/%s", target_cases[i].name);
      g_test_add_data_func (path, &target_cases[i], test_target);
    }
  g_test_add_func ("/pinhole/route/proxy-name", test_proxy_name);
  g_test_add_func ("/pinhole/route/lifetime", test_lifetime);
  g_test_add_func ("/pinhole/route/reload", test_reload);
  g_test_add_func ("/pinhole/route/fallback", test_fallback);
  return g_test_run ();
}

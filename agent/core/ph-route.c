/* SPDX-License-Identifier: GPL-2.0-or-later */
/* ph-route.c: the router. With one cloud proxy and no rules yet, every target routes to that
 * proxy; what the decision looks at (scheme, host, port) is already its input, so rules slot
 * in here without the connection changing. */
#define G_LOG_DOMAIN "pinhole-route"

#include "ph-route.h"

#include <string.h>

struct _PhRoute
{
  PhRouteKind kind;
  char *proxy; /* PROXY: "host:port" of the cloud proxy */
};

struct _PhRouter
{
  PhConfig *config;
  char *proxy; /* the one cloud proxy, as routes name it */
};

void
ph_route_free (PhRoute *route)
{
  if (route == NULL)
    return;
  g_free (route->proxy);
  g_free (route);
}

PhRouteKind
ph_route_get_kind (const PhRoute *route)
{
  return route->kind;
}

const char *
ph_route_get_proxy (const PhRoute *route)
{
  return route->proxy;
}

const char *
ph_route_kind_to_string (PhRouteKind kind)
{
  switch (kind)
    {
      case PH_ROUTE_PROXY:
        return "proxy";
    }
  g_return_val_if_reached ("?");
}

PhRouter *
ph_router_new (PhConfig *config)
{
  PhRouter *router = g_atomic_rc_box_new0 (PhRouter);

  router->config = ph_config_ref (config);
  router->proxy = g_strdup_printf (strchr (ph_config_get_host (config), ':') ? "[%s]:%u" : "%s:%u",
                                   ph_config_get_host (config), ph_config_get_port (config));
  return router;
}

PhRouter *
ph_router_ref (PhRouter *router)
{
  return g_atomic_rc_box_acquire (router);
}

static void
router_clear (PhRouter *router)
{
  ph_config_unref (router->config);
  g_free (router->proxy);
}

void
ph_router_unref (PhRouter *router)
{
  g_atomic_rc_box_release_full (router, (GDestroyNotify) router_clear);
}

PhRoute *
ph_router_route (PhRouter *router, const char *scheme, const char *host, guint16 port)
{
  PhRoute *route;

  g_return_val_if_fail (host != NULL, NULL);
  /* DESIGN's invariants hold for what comes later: a name that matches no rule goes to the
   * cloud proxy unresolved, and nothing falls back to direct on a proxy failure. */
  route = g_new0 (PhRoute, 1);
  route->kind = PH_ROUTE_PROXY;
  route->proxy = g_strdup (router->proxy);
  return route;
}

/* SPDX-License-Identifier: GPL-2.0-or-later */
/* ph-route.c: the router. The block list is read first (a blocked name stays blocked when a
 * direct rule also matches it), then the direct list, then the network's state (a captive
 * portal, or an unreachable cloud proxy under when-unreachable=direct), and what is left goes
 * to the cloud proxy by name. A pin mismatch or rejected credentials are not "unreachable":
 * the service never sets the fallback for them (DESIGN, route). */
#define G_LOG_DOMAIN "pinhole-route"

#include "ph-route.h"

#include <string.h>

struct _PhRoute
{
  PhRouteKind kind;
  PhRouteReason reason;
  char *rule;  /* the matching rule, or NULL */
  char *proxy; /* PROXY: "host:port" of the cloud proxy */
};

struct _PhRouter
{
  PhConfig *config;
  char *proxy;   /* the one cloud proxy, as routes name it */
  gint fallback; /* PhRouteFallback, atomic */
};

void
ph_route_free (PhRoute *route)
{
  if (route == NULL)
    return;
  g_free (route->rule);
  g_free (route->proxy);
  g_free (route);
}

PhRouteKind
ph_route_get_kind (const PhRoute *route)
{
  return route->kind;
}

PhRouteReason
ph_route_get_reason (const PhRoute *route)
{
  return route->reason;
}

const char *
ph_route_get_rule (const PhRoute *route)
{
  return route->rule;
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
      case PH_ROUTE_DIRECT:
        return "direct";
      case PH_ROUTE_BLOCK:
        return "block";
    }
  g_return_val_if_reached ("?");
}

const char *
ph_route_reason_to_string (PhRouteReason reason)
{
  switch (reason)
    {
      case PH_ROUTE_BY_DEFAULT:
        return "default";
      case PH_ROUTE_BY_DIRECT_LIST:
        return "direct-list";
      case PH_ROUTE_BY_BLOCK_LIST:
        return "block-list";
      case PH_ROUTE_BY_UNREACHABLE:
        return "unreachable";
      case PH_ROUTE_BY_PORTAL:
        return "captive-portal";
    }
  g_return_val_if_reached ("?");
}

char *
ph_route_describe (const PhRoute *route)
{
  switch (route->reason)
    {
      case PH_ROUTE_BY_DEFAULT:
        return g_strdup_printf ("no rule matched: through the cloud proxy %s", route->proxy);
      case PH_ROUTE_BY_DIRECT_LIST:
        return g_strdup_printf ("[route] direct matched “%s”", route->rule);
      case PH_ROUTE_BY_BLOCK_LIST:
        return g_strdup_printf ("[route] block matched “%s”", route->rule);
      case PH_ROUTE_BY_UNREACHABLE:
        return g_strdup ("the cloud proxy cannot be reached and [route] when-unreachable=direct");
      case PH_ROUTE_BY_PORTAL:
        return g_strdup ("a captive portal is in the way and [route] portal=allow");
    }
  g_return_val_if_reached (NULL);
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

PhConfig *
ph_router_get_config (PhRouter *router)
{
  return router->config;
}

void
ph_router_set_fallback (PhRouter *router, PhRouteFallback fallback)
{
  g_atomic_int_set (&router->fallback, (gint) fallback);
}

PhRouteFallback
ph_router_get_fallback (PhRouter *router)
{
  return (PhRouteFallback) g_atomic_int_get (&router->fallback);
}

static PhRoute *
route_new (PhRouteKind kind, PhRouteReason reason, const char *rule, const char *proxy)
{
  PhRoute *route = g_new0 (PhRoute, 1);

  route->kind = kind;
  route->reason = reason;
  route->rule = g_strdup (rule);
  route->proxy = g_strdup (proxy);
  return route;
}

PhRoute *
ph_router_route (PhRouter *router, const char *scheme, const char *host, guint16 port,
                 GList *resolved)
{
  const char *rule;

  g_return_val_if_fail (host != NULL, NULL);
  rule = ph_host_list_match (ph_config_get_block (router->config), host, resolved);
  if (rule != NULL)
    return route_new (PH_ROUTE_BLOCK, PH_ROUTE_BY_BLOCK_LIST, rule, NULL);
  rule = ph_host_list_match (ph_config_get_direct (router->config), host, resolved);
  if (rule != NULL)
    return route_new (PH_ROUTE_DIRECT, PH_ROUTE_BY_DIRECT_LIST, rule, NULL);
  switch (ph_router_get_fallback (router))
    {
      case PH_ROUTE_FALLBACK_UNREACHABLE:
        return route_new (PH_ROUTE_DIRECT, PH_ROUTE_BY_UNREACHABLE, NULL, NULL);
      case PH_ROUTE_FALLBACK_PORTAL:
        return route_new (PH_ROUTE_DIRECT, PH_ROUTE_BY_PORTAL, NULL, NULL);
      case PH_ROUTE_FALLBACK_NONE:
      case PH_ROUTE_FALLBACK_PORTAL_BLOCK:
        break;
    }
  return route_new (PH_ROUTE_PROXY, PH_ROUTE_BY_DEFAULT, NULL, router->proxy);
}

gboolean
ph_router_wants_addresses (PhRouter *router, const char *host)
{
  const PhHostList *block = ph_config_get_block (router->config);
  const PhHostList *direct = ph_config_get_direct (router->config);

  if (!ph_config_get_resolve_for_cidr (router->config) || ph_host_is_address (host))
    return FALSE;
  if (!ph_host_list_has_cidr (block) && !ph_host_list_has_cidr (direct))
    return FALSE;
  /* A name rule that decides already makes the lookup useless. */
  return ph_host_list_match (block, host, NULL) == NULL
         && ph_host_list_match (direct, host, NULL) == NULL;
}

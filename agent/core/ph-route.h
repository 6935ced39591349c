/* SPDX-License-Identifier: GPL-2.0-or-later */
/* ph-route.h: the route stage: for each request, what carries it, decided by a router from
 * the request's target alone (no name is resolved). Today every request goes through the one
 * cloud proxy; the direct list, the block list and several proxies come with the routing
 * rules, as more kinds of route and more state in the router. */
#pragma once

#include <glib.h>

#include "ph-config.h"

G_BEGIN_DECLS

typedef enum
{
  PH_ROUTE_PROXY, /* through a cloud proxy (ph_route_get_proxy names which) */
  /* PH_ROUTE_DIRECT and PH_ROUTE_BLOCK come with the routing rules. */
} PhRouteKind;

/* One request's route: a value with one owner (new and free). */
typedef struct _PhRoute PhRoute;

void ph_route_free (PhRoute *route);
PhRouteKind ph_route_get_kind (const PhRoute *route);
/* The cloud proxy of a PROXY route, as "host:port" ("[v6]:port"); NULL for other kinds. */
const char *ph_route_get_proxy (const PhRoute *route);
/* "proxy", for access lines and messages. */
const char *ph_route_kind_to_string (PhRouteKind kind);

/* The rules in force: made from one configuration snapshot and shared, like it, by the
 * connections that began under it (reference-counted). */
typedef struct _PhRouter PhRouter;

PhRouter *ph_router_new (PhConfig *config);
PhRouter *ph_router_ref (PhRouter *router);
void ph_router_unref (PhRouter *router);

/* The route of a request for @host (without brackets) and @port. @scheme is "http" for an
 * absolute-form request and NULL for a tunnel (CONNECT, SOCKS), whose inner protocol is the
 * client's business. Never NULL. */
PhRoute *ph_router_route (PhRouter *router, const char *scheme, const char *host, guint16 port);

G_DEFINE_AUTOPTR_CLEANUP_FUNC (PhRoute, ph_route_free)
G_DEFINE_AUTOPTR_CLEANUP_FUNC (PhRouter, ph_router_unref)

G_END_DECLS

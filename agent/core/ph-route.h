/* SPDX-License-Identifier: GPL-2.0-or-later */
/* ph-route.h: the route stage: for each request, what carries it (a cloud proxy, a direct
 * connection, or nothing: refused), decided by a router from the request's target and the
 * [route] rules. A name that matches no rule is never resolved: it goes to the cloud proxy by
 * name. Only with [route] resolve-for-cidr=true, and only when a CIDR rule could decide, does
 * the connection resolve a name and ask again with its addresses. */
#pragma once

#include <glib.h>

#include "ph-config.h"

G_BEGIN_DECLS

typedef enum
{
  PH_ROUTE_PROXY,  /* through a cloud proxy (ph_route_get_proxy names which) */
  PH_ROUTE_DIRECT, /* the agent connects to the target itself */
  PH_ROUTE_BLOCK,  /* refused: 403, X-Pinhole-Error: blocked */
} PhRouteKind;

/* Why the route is what it is. */
typedef enum
{
  PH_ROUTE_BY_DEFAULT,     /* no rule matched: the cloud proxy */
  PH_ROUTE_BY_DIRECT_LIST, /* [route] direct */
  PH_ROUTE_BY_BLOCK_LIST,  /* [route] block */
  PH_ROUTE_BY_UNREACHABLE, /* the cloud proxy cannot be reached, when-unreachable=direct */
  PH_ROUTE_BY_PORTAL,      /* behind a captive portal, portal=allow, for portal-minutes */
} PhRouteReason;

/* Beside the rules, the state of the network, which the service sets from what it sees: while
 * it is not NONE, requests no rule routes go directly. */
typedef enum
{
  PH_ROUTE_FALLBACK_NONE,
  PH_ROUTE_FALLBACK_UNREACHABLE,
  PH_ROUTE_FALLBACK_PORTAL,
  /* Behind a captive portal under [route] portal=block: requests go to the cloud proxy as under
   * NONE, and none goes directly when it fails either, when-unreachable=direct or not. */
  PH_ROUTE_FALLBACK_PORTAL_BLOCK,
} PhRouteFallback;

/* One request's route: a value with one owner (new and free). */
typedef struct _PhRoute PhRoute;

void ph_route_free (PhRoute *route);
PhRouteKind ph_route_get_kind (const PhRoute *route);
PhRouteReason ph_route_get_reason (const PhRoute *route);
/* The rule that matched, as written in the list (normalised), or NULL. */
const char *ph_route_get_rule (const PhRoute *route);
/* The cloud proxy of a PROXY route, as "host:port" ("[v6]:port"); NULL for other kinds. */
const char *ph_route_get_proxy (const PhRoute *route);
/* In words, for pinholectl route and the refusal's body: "direct list: *.corp.example". */
char *ph_route_describe (const PhRoute *route);
/* "proxy", "direct", "block": the access line's route= and the control interface's word. */
const char *ph_route_kind_to_string (PhRouteKind kind);
/* "default", "direct-list", "block-list", "unreachable", "captive-portal". */
const char *ph_route_reason_to_string (PhRouteReason reason);

/* The rules in force: made from one configuration snapshot and shared, like it, by the
 * connections that began under it (reference-counted). */
typedef struct _PhRouter PhRouter;

PhRouter *ph_router_new (PhConfig *config);
PhRouter *ph_router_ref (PhRouter *router);
void ph_router_unref (PhRouter *router);
PhConfig *ph_router_get_config (PhRouter *router);

/* The network's state (thread-safe; the listener carries it over to a new router). */
void ph_router_set_fallback (PhRouter *router, PhRouteFallback fallback);
PhRouteFallback ph_router_get_fallback (PhRouter *router);

/* The route of a request for @host (without brackets) and @port. @scheme is "http" for an
 * absolute-form request and NULL for a tunnel (CONNECT, SOCKS), whose inner protocol is the
 * client's business. @resolved (of GInetAddress) are @host's addresses when the caller
 * resolved it because ph_router_wants_addresses() said so, else NULL. Never NULL. */
PhRoute *ph_router_route (PhRouter *router, const char *scheme, const char *host, guint16 port,
                          GList *resolved);
/* Whether @host should be resolved before routing: resolve-for-cidr is on, a list has a CIDR
 * rule, @host is a name, and no name rule decides it already. */
gboolean ph_router_wants_addresses (PhRouter *router, const char *host);

G_DEFINE_AUTOPTR_CLEANUP_FUNC (PhRoute, ph_route_free)
G_DEFINE_AUTOPTR_CLEANUP_FUNC (PhRouter, ph_router_unref)

G_END_DECLS

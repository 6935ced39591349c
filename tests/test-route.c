/* SPDX-License-Identifier: GPL-2.0-or-later */
/* test-route.c: unit tests for agent/core/ph-route.h and ph-host-list.h: which route a request's
 * target gets from [route] direct= and block= (a table of targets × rules: exact names, *.suffix
 * and .suffix, IPv4 and IPv6 CIDRs, <local>, case and trailing dots, block before direct, CIDR
 * rules and names, the network's fallback state), the host list parser's errors, how a route
 * names its proxy, and a router's life beside its configuration. Names are never resolved
 * here: resolved addresses are handed in. No sockets: runs under Wine too. */
#include "ph-route.h"
#include "ph-config.h"
#include "ph-error.h"
#include "ph-host-list.h"

#include <string.h>

#define PIN "sha256//AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA="

static PhConfig *
config_new_route (const char *host, guint port, const char *route)
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
                          "warm=0\n"
                          "%s",
                          host, port, route ? route : "");
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

static PhConfig *
config_new (const char *host, guint port)
{
  return config_new_route (host, port, NULL);
}

/* Every kind of target a request names: a tunnel or http://, a name, an address of either
 * family, a name no resolver knows, a port of any kind. With no rules, all go to the
 * cloud proxy, and a name that matches no rule is never resolved (DESIGN, route). */
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
  const char *name;
  const char *direct; /* [route] direct= */
  const char *block;  /* [route] block= */
  PhRouteFallback fallback;
  const char *host;     /* as the request names it */
  const char *resolved; /* addresses handed in as resolved, space-separated; NULL: none */
  PhRouteKind kind;
  PhRouteReason reason;
  const char *rule; /* the rule the route names, normalised; NULL: none */
} RuleCase;

#define D PH_ROUTE_DIRECT
#define P PH_ROUTE_PROXY
#define B PH_ROUTE_BLOCK
#define BY_D PH_ROUTE_BY_DIRECT_LIST
#define BY_B PH_ROUTE_BY_BLOCK_LIST
#define BY_0 PH_ROUTE_BY_DEFAULT
#define NONE PH_ROUTE_FALLBACK_NONE

/* Targets × rules: what each kind of rule matches and, as much, what it does not. */
static const RuleCase rule_cases[] = {
  /* exact names */
  { "exact", "intranet.example", "", NONE, "intranet.example", NULL, D, BY_D, "intranet.example" },
  { "exact-not-under", "intranet.example", "", NONE, "www.intranet.example", NULL, P, BY_0, NULL },
  { "exact-not-suffix", "intranet.example", "", NONE, "xintranet.example", NULL, P, BY_0, NULL },
  { "exact-not-prefix", "intranet.example", "", NONE, "intranet.example.evil", NULL, P, BY_0,
    NULL },
  { "exact-case", "Intranet.EXAMPLE", "", NONE, "INTRANET.example", NULL, D, BY_D,
    "intranet.example" },
  { "exact-trailing-dot-host", "intranet.example", "", NONE, "intranet.example.", NULL, D, BY_D,
    "intranet.example" },
  { "exact-trailing-dot-rule", "intranet.example.", "", NONE, "intranet.example", NULL, D, BY_D,
    "intranet.example" },
  /* *.suffix: names under it, not itself */
  { "under-one", "*.corp.example", "", NONE, "wiki.corp.example", NULL, D, BY_D, "*.corp.example" },
  { "under-deep", "*.corp.example", "", NONE, "a.b.corp.example", NULL, D, BY_D, "*.corp.example" },
  { "under-not-itself", "*.corp.example", "", NONE, "corp.example", NULL, P, BY_0, NULL },
  { "under-not-glued", "*.corp.example", "", NONE, "xcorp.example", NULL, P, BY_0, NULL },
  { "under-case-dot", "*.corp.example", "", NONE, "WIKI.Corp.Example.", NULL, D, BY_D,
    "*.corp.example" },
  /* .suffix: itself and names under it */
  { "domain-itself", ".corp.example", "", NONE, "corp.example", NULL, D, BY_D, ".corp.example" },
  { "domain-under", ".corp.example", "", NONE, "wiki.corp.example", NULL, D, BY_D,
    ".corp.example" },
  { "domain-not-glued", ".corp.example", "", NONE, "notcorp.example", NULL, P, BY_0, NULL },
  { "domain-not-parent", ".corp.example", "", NONE, "example", NULL, P, BY_0, NULL },
  /* IPv4 */
  { "v4-cidr-in", "10.0.0.0/8", "", NONE, "10.200.3.4", NULL, D, BY_D, "10.0.0.0/8" },
  { "v4-cidr-edge", "10.0.0.0/8", "", NONE, "10.255.255.255", NULL, D, BY_D, "10.0.0.0/8" },
  { "v4-cidr-out", "10.0.0.0/8", "", NONE, "11.0.0.0", NULL, P, BY_0, NULL },
  { "v4-address", "192.0.2.7", "", NONE, "192.0.2.7", NULL, D, BY_D, "192.0.2.7" },
  { "v4-address-next", "192.0.2.7", "", NONE, "192.0.2.8", NULL, P, BY_0, NULL },
  { "v4-all", "0.0.0.0/0", "", NONE, "203.0.113.1", NULL, D, BY_D, "0.0.0.0/0" },
  { "v4-not-v6", "0.0.0.0/0", "", NONE, "2001:db8::1", NULL, P, BY_0, NULL },
  { "v4-mapped-v6", "10.0.0.0/8", "", NONE, "::ffff:10.0.0.1", NULL, P, BY_0, NULL },
  /* IPv6, rules with and without brackets, hosts with and without */
  { "v6-cidr", "fd00::/8", "", NONE, "fd12::1", NULL, D, BY_D, "fd00::/8" },
  { "v6-cidr-brackets-rule", "[fd00::]/8", "", NONE, "fd12::1", NULL, D, BY_D, "fd00::/8" },
  { "v6-cidr-brackets-host", "fd00::/8", "", NONE, "[fd12::1]", NULL, D, BY_D, "fd00::/8" },
  { "v6-cidr-out", "fd00::/8", "", NONE, "fe80::1", NULL, P, BY_0, NULL },
  { "v6-address-brackets", "[2001:db8::7]", "", NONE, "2001:DB8:0::7", NULL, D, BY_D,
    "2001:db8::7" },
  { "v6-not-v4", "::/0", "", NONE, "192.0.2.1", NULL, P, BY_0, NULL },
  /* <local>: a name without a dot */
  { "local", "<local>", "", NONE, "wiki", NULL, D, BY_D, "<local>" },
  { "local-case-dot", "<LOCAL>", "", NONE, "Wiki.", NULL, D, BY_D, "<local>" },
  { "local-not-dotted", "<local>", "", NONE, "wiki.example", NULL, P, BY_0, NULL },
  { "local-not-v6", "<local>", "", NONE, "::1", NULL, P, BY_0, NULL },
  { "local-not-v6-brackets", "<local>", "", NONE, "[fe80::1]", NULL, P, BY_0, NULL },
  /* a name never matches a CIDR rule, unless resolved addresses are handed in */
  { "name-vs-cidr", "10.0.0.0/8", "", NONE, "intranet.example", NULL, P, BY_0, NULL },
  { "name-resolved-in", "10.0.0.0/8", "", NONE, "intranet.example", "192.0.2.1 10.1.1.1", D, BY_D,
    "10.0.0.0/8" },
  { "name-resolved-out", "10.0.0.0/8", "", NONE, "intranet.example", "192.0.2.1", P, BY_0, NULL },
  { "name-resolved-v6", "fd00::/8", "", NONE, "intranet.example", "fd00::5", D, BY_D, "fd00::/8" },
  { "literal-ignores-resolved", "10.0.0.0/8", "", NONE, "192.0.2.1", "10.1.1.1", P, BY_0, NULL },
  { "address-vs-name-rule", "192.0.2.7.example", "", NONE, "192.0.2.7", NULL, P, BY_0, NULL },
  /* lists: separators, first match wins, block before direct */
  { "list-separators", "a.example,b.example; c.example\td.example", "", NONE, "d.example", NULL, D,
    BY_D, "d.example" },
  { "list-first-wins", ".corp.example wiki.corp.example", "", NONE, "wiki.corp.example", NULL, D,
    BY_D, ".corp.example" },
  { "block", "", "ads.example", NONE, "ads.example", NULL, B, BY_B, "ads.example" },
  { "block-beats-direct", ".corp.example", "secret.corp.example", NONE, "secret.corp.example", NULL,
    B, BY_B, "secret.corp.example" },
  { "block-beats-direct-cidr", "10.0.0.0/8", "10.6.6.0/24", NONE, "10.6.6.6", NULL, B, BY_B,
    "10.6.6.0/24" },
  { "block-miss-direct-hit", ".corp.example", "secret.corp.example", NONE, "wiki.corp.example",
    NULL, D, BY_D, ".corp.example" },
  /* the network's state: unmatched requests go directly, blocked ones stay blocked */
  { "portal-unmatched", "", "", PH_ROUTE_FALLBACK_PORTAL, "example.com", NULL, D,
    PH_ROUTE_BY_PORTAL, NULL },
  { "unreachable-unmatched", "", "", PH_ROUTE_FALLBACK_UNREACHABLE, "example.com", NULL, D,
    PH_ROUTE_BY_UNREACHABLE, NULL },
  { "portal-blocked", "", "ads.example", PH_ROUTE_FALLBACK_PORTAL, "ads.example", NULL, B, BY_B,
    "ads.example" },
  { "unreachable-blocked", "", "ads.example", PH_ROUTE_FALLBACK_UNREACHABLE, "ads.example", NULL, B,
    BY_B, "ads.example" },
  { "portal-direct-keeps-rule", "intranet.example", "", PH_ROUTE_FALLBACK_PORTAL,
    "intranet.example", NULL, D, BY_D, "intranet.example" },
};

static void
test_rule (gconstpointer data)
{
  const RuleCase *c = data;
  g_autofree char *route_text
      = g_strdup_printf ("[route]\ndirect=%s\nblock=%s\n", c->direct, c->block);
  g_autoptr (PhConfig) config = config_new_route ("proxy.example", 443, route_text);
  g_autoptr (PhRouter) router = ph_router_new (config);
  g_autolist (GInetAddress) resolved = NULL;
  g_autoptr (PhRoute) route = NULL;
  g_autofree char *description = NULL;

  if (c->resolved != NULL)
    {
      g_auto (GStrv) addrs = g_strsplit (c->resolved, " ", -1);

      for (guint i = 0; addrs[i] != NULL; i++)
        resolved = g_list_append (resolved, g_inet_address_new_from_string (addrs[i]));
    }
  ph_router_set_fallback (router, c->fallback);
  g_assert_cmpint (ph_router_get_fallback (router), ==, c->fallback);
  /* A tunnel and a plain request go the same way. */
  for (guint i = 0; i < 2; i++)
    {
      g_clear_pointer (&route, ph_route_free);
      route
          = ph_router_route (router, i == 0 ? NULL : "http", c->host, i == 0 ? 443 : 80, resolved);
      g_assert_cmpstr (ph_route_kind_to_string (ph_route_get_kind (route)), ==,
                       ph_route_kind_to_string (c->kind));
      g_assert_cmpstr (ph_route_reason_to_string (ph_route_get_reason (route)), ==,
                       ph_route_reason_to_string (c->reason));
      g_assert_cmpstr (ph_route_get_rule (route), ==, c->rule);
      g_assert_cmpstr (ph_route_get_proxy (route), ==,
                       c->kind == PH_ROUTE_PROXY ? "proxy.example:443" : NULL);
    }
  description = ph_route_describe (route);
  g_assert_nonnull (description);
  if (c->rule != NULL)
    g_assert_nonnull (strstr (description, c->rule));
}

/* Only with resolve-for-cidr=true, a CIDR rule, a name, and no name rule that decides already,
 * is a name worth resolving. */
static void
test_wants_addresses (void)
{
  const struct
  {
    const char *route;
    const char *host;
    gboolean want;
  } cases[] = {
    { "direct=10.0.0.0/8\n", "intranet.example", FALSE },
    { "direct=10.0.0.0/8\nresolve-for-cidr=true\n", "intranet.example", TRUE },
    { "block=fd00::/8\nresolve-for-cidr=true\n", "intranet.example", TRUE },
    { "direct=10.0.0.0/8\nresolve-for-cidr=true\n", "10.1.2.3", FALSE },
    { "direct=10.0.0.0/8\nresolve-for-cidr=true\n", "[fd00::1]", FALSE },
    { "direct=.corp.example\nresolve-for-cidr=true\n", "wiki.corp.example", FALSE },
    { "direct=.corp.example 10.0.0.0/8\nresolve-for-cidr=true\n", "wiki.corp.example", FALSE },
    { "direct=10.0.0.0/8\nblock=ads.example\nresolve-for-cidr=true\n", "ads.example", FALSE },
  };

  for (gsize i = 0; i < G_N_ELEMENTS (cases); i++)
    {
      g_autofree char *text = g_strdup_printf ("[route]\n%s", cases[i].route);
      g_autoptr (PhConfig) config = config_new_route ("proxy.example", 443, text);
      g_autoptr (PhRouter) router = ph_router_new (config);

      g_assert_cmpint (ph_router_wants_addresses (router, cases[i].host), ==, cases[i].want);
    }
}

/* The parser: what each item becomes, and an error naming the first bad item. */
static void
test_host_list_parse (void)
{
  const struct
  {
    const char *item;
    PhHostRuleKind kind;
    const char *text;
  } good[] = {
    { "Intranet.Example.", PH_HOST_RULE_EXACT, "intranet.example" },
    { "*.Corp.example", PH_HOST_RULE_UNDER, "*.corp.example" },
    { ".corp.example", PH_HOST_RULE_DOMAIN, ".corp.example" },
    { "10.0.0.0/8", PH_HOST_RULE_CIDR, "10.0.0.0/8" },
    { "192.0.2.7", PH_HOST_RULE_CIDR, "192.0.2.7" },
    { "[FD00::]/8", PH_HOST_RULE_CIDR, "fd00::/8" },
    { "[::1]", PH_HOST_RULE_CIDR, "::1" },
    { "<Local>", PH_HOST_RULE_LOCAL, "<local>" },
    { "under_score-host", PH_HOST_RULE_EXACT, "under_score-host" },
    { "10.0.0.0.", PH_HOST_RULE_CIDR, "10.0.0.0" },
  };
  const struct
  {
    const char *text;
    const char *bad; /* the item the message names */
  } bad[] = {
    { "ok.example bad!name", "bad!name" },
    { "a..b", "a..b" },
    { "*.", "*." },
    { "*", "*" },
    { ".", "." },
    { "**.example", "**.example" },
    { "*.*.example", "*.*.example" },
    { "a.*.example", "a.*.example" },
    { "ok.example,10.0.0.0/33", "10.0.0.0/33" },
    { "10.1.0.0/8", "10.1.0.0/8" },
    { "fd00::/129", "fd00::/129" },
    { "fd00::/99999999999", "fd00::/99999999999" },
    { "10.0.0.0/", "10.0.0.0/" },
    { "10.0.0.0/-1", "10.0.0.0/-1" },
    { "[fd00::1", "[fd00::1" },
    { "fd00::1]", "fd00::1]" },
    { "host:8080", "host:8080" },
    { "http://a.example/", "http://a.example/" },
    { "<lan>", "<lan>" },
    { ".10.0.0.0", ".10.0.0.0" },
    { "*.192.0.2.1", "*.192.0.2.1" },
    { "300.1.1.1", "300.1.1.1" },
    { "a.example;<local>;é.example", "é.example" },
  };

  for (gsize i = 0; i < G_N_ELEMENTS (good); i++)
    {
      g_autoptr (GError) error = NULL;
      g_autoptr (PhHostList) list = ph_host_list_parse (good[i].item, &error);

      g_assert_no_error (error);
      g_assert_cmpuint (ph_host_list_get_n_rules (list), ==, 1);
      g_assert_cmpint (ph_host_list_get_kind (list, 0), ==, good[i].kind);
      g_assert_cmpstr (ph_host_list_get_text (list, 0), ==, good[i].text);
      g_assert_cmpint (ph_host_list_has_cidr (list), ==, good[i].kind == PH_HOST_RULE_CIDR);
      g_assert_true ((ph_host_list_get_mask (list, 0) != NULL)
                     == (good[i].kind == PH_HOST_RULE_CIDR));
    }
  for (gsize i = 0; i < G_N_ELEMENTS (bad); i++)
    {
      g_autoptr (GError) error = NULL;
      g_autoptr (PhHostList) list = ph_host_list_parse (bad[i].text, &error);
      g_autofree char *quoted = g_strdup_printf ("“%s”", bad[i].bad);

      g_assert_null (list);
      g_assert_error (error, PH_ERROR, PH_ERROR_INVALID_CONFIG);
      if (strstr (error->message, quoted) == NULL)
        g_error ("“%s”: the message does not name %s: %s", bad[i].text, quoted, error->message);
    }
  /* Empty and separator-only texts are empty lists. */
  for (guint i = 0; i < 3; i++)
    {
      const char *empty[] = { NULL, "", " ,; \t\n" };
      g_autoptr (GError) error = NULL;
      g_autoptr (PhHostList) list = ph_host_list_parse (empty[i], &error);

      g_assert_no_error (error);
      g_assert_cmpuint (ph_host_list_get_n_rules (list), ==, 0);
      g_assert_null (ph_host_list_match (list, "example.com", NULL));
    }
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
  for (gsize i = 0; i < G_N_ELEMENTS (rule_cases); i++)
    {
      g_autofree char *path = g_strdup_printf ("/pinhole/route/rule/%s", rule_cases[i].name);
      g_test_add_data_func (path, &rule_cases[i], test_rule);
    }
  g_test_add_func ("/pinhole/route/wants-addresses", test_wants_addresses);
  g_test_add_func ("/pinhole/route/host-list-parse", test_host_list_parse);
  g_test_add_func ("/pinhole/route/proxy-name", test_proxy_name);
  g_test_add_func ("/pinhole/route/lifetime", test_lifetime);
  g_test_add_func ("/pinhole/route/reload", test_reload);
  g_test_add_func ("/pinhole/route/fallback", test_fallback);
  return g_test_run ();
}

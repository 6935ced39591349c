/* SPDX-License-Identifier: GPL-2.0-or-later */
/* ph-pac.c: writes the PAC (ph-pac.h). Each rule of the direct list becomes one test, in the
 * list's order, with the router's meaning:
 *
 *   name            host == "name"
 *   *.suffix        dnsDomainIs (host, ".suffix")          (names under it)
 *   .suffix         host == "suffix" || dnsDomainIs (...)  (it and names under it)
 *   <local>         a name without a dot (not an IPv6 literal, which has none either)
 *   IPv4 CIDR       an IPv4 literal in the network: isInNet on a literal resolves nothing
 *   IPv6 CIDR       an IPv6 literal in the network, compared group by group in the PAC itself
 *                   (isInNetEx is Microsoft's and Chromium's, not every engine's)
 *
 * Like the router, the PAC resolves no name unless [route] resolve-for-cidr=true, where an
 * IPv4 CIDR rule uses isInNet on the name, which resolves it (the same privacy cost). Rule
 * texts are validated names, addresses and masks (ph-host-list.c), so they need no quoting. */
#define G_LOG_DOMAIN "pinhole-route"

#include "ph-pac.h"

#include <string.h>

static const char pac_helpers[]
    = "function phV4(h) {\n"
      "  return /^[0-9]{1,3}(\\.[0-9]{1,3}){3}$/.test(h);\n"
      "}\n"
      "/* An IPv6 literal as 8 numbers, or null. */\n"
      "function phV6(h) {\n"
      "  if (h.indexOf(\":\") < 0 || !/^[0-9a-f:]+$/.test(h)) return null;\n"
      "  var halves = h.split(\"::\");\n"
      "  if (halves.length > 2) return null;\n"
      "  var head = halves[0] ? halves[0].split(\":\") : [];\n"
      "  var tail = halves.length == 2 && halves[1] ? halves[1].split(\":\") : [];\n"
      "  var n = head.length + tail.length, g = [], i;\n"
      "  if ((halves.length == 1 && n != 8) || n > 8) return null;\n"
      "  for (i = 0; i < head.length; i++) g.push(parseInt(head[i], 16));\n"
      "  for (i = n; i < 8; i++) g.push(0);\n"
      "  for (i = 0; i < tail.length; i++) g.push(parseInt(tail[i], 16));\n"
      "  for (i = 0; i < 8; i++) if (isNaN(g[i]) || g[i] > 65535) return null;\n"
      "  return g;\n"
      "}\n"
      "function phIn6(h, net, bits) {\n"
      "  var a = phV6(h), i, m;\n"
      "  if (a == null) return false;\n"
      "  for (i = 0; i < 8 && bits > 0; i++, bits -= 16) {\n"
      "    m = bits >= 16 ? 65535 : (65535 << (16 - bits)) & 65535;\n"
      "    if ((a[i] & m) != (net[i] & m)) return false;\n"
      "  }\n"
      "  return true;\n"
      "}\n";

static void
append_cidr (GString *js, GInetAddressMask *mask, gboolean resolve)
{
  GInetAddress *net = g_inet_address_mask_get_address (mask);
  guint bits = g_inet_address_mask_get_length (mask);
  const guint8 *b = g_inet_address_to_bytes (net);

  if (g_inet_address_get_family (net) == G_SOCKET_FAMILY_IPV4)
    {
      guint32 m = bits == 0 ? 0 : 0xffffffffu << (32 - bits);
      g_autofree char *addr = g_inet_address_to_string (net);

      g_string_append_printf (js, "%sisInNet(host, \"%s\", \"%u.%u.%u.%u\")",
                              resolve ? "" : "phV4(host) && ", addr, m >> 24, (m >> 16) & 255,
                              (m >> 8) & 255, m & 255);
      return;
    }
  g_string_append (js, "phIn6(host, [");
  for (guint i = 0; i < 8; i++)
    g_string_append_printf (js, "%s%u", i ? ", " : "", (guint) (b[2 * i] << 8 | b[2 * i + 1]));
  g_string_append_printf (js, "], %u)", bits);
}

char *
ph_pac_build (const PhConfig *config, const char *proxy)
{
  const PhHostList *direct = ph_config_get_direct (config);
  gboolean resolve = ph_config_get_resolve_for_cidr (config);
  GString *js = g_string_sized_new (2048);

  g_string_append (js, "// Pinhole's proxy auto-config, made from [route] direct=. Blocked names "
                       "go to Pinhole, which refuses them.\n");
  g_string_append (js, pac_helpers);
  g_string_append (js, "function FindProxyForURL(url, host) {\n"
                       "  host = host.toLowerCase();\n"
                       "  if (host.charAt(0) == \"[\") host = host.substring(1, host.length - 1);\n"
                       "  if (host.length > 1 && host.charAt(host.length - 1) == \".\")\n"
                       "    host = host.substring(0, host.length - 1);\n");
  for (guint i = 0; i < ph_host_list_get_n_rules (direct); i++)
    {
      const char *text = ph_host_list_get_text (direct, i);

      g_string_append (js, "  if (");
      switch (ph_host_list_get_kind (direct, i))
        {
          case PH_HOST_RULE_EXACT:
            g_string_append_printf (js, "host == \"%s\"", text);
            break;
          case PH_HOST_RULE_UNDER:
            g_string_append_printf (js, "dnsDomainIs(host, \"%s\")", text + 1);
            break;
          case PH_HOST_RULE_DOMAIN:
            g_string_append_printf (js, "host == \"%s\" || dnsDomainIs(host, \"%s\")", text + 1,
                                    text);
            break;
          case PH_HOST_RULE_LOCAL:
            g_string_append (js, "host.indexOf(\":\") < 0 && isPlainHostName(host)");
            break;
          case PH_HOST_RULE_CIDR:
            append_cidr (js, ph_host_list_get_mask (direct, i), resolve);
            break;
        }
      g_string_append_printf (js, ") return \"DIRECT\"; // %s\n", text);
    }
  g_string_append_printf (js, "  return \"PROXY %s\";\n}\n", proxy);
  return g_string_free (js, FALSE);
}

/* SPDX-License-Identifier: GPL-2.0-or-later */
/* ph-host-list.h: a list of host rules, as [route] direct= and block= write them: exact names,
 * "*.suffix" (names under it), ".suffix" (it and names under it), IPv4 and IPv6 addresses and
 * CIDRs, and "<local>" (names without a dot). One list drives the agent's routing, the PAC it
 * serves and the system proxy's exception list. Matching never resolves a name: an address
 * rule matches a request that names an address, or the addresses a caller resolved. */
#pragma once

#include <gio/gio.h>

G_BEGIN_DECLS

typedef enum
{
  PH_HOST_RULE_EXACT,  /* intranet.corp.example */
  PH_HOST_RULE_UNDER,  /* *.corp.example: names under it, not itself */
  PH_HOST_RULE_DOMAIN, /* .corp.example: it and names under it */
  PH_HOST_RULE_CIDR,   /* 10.0.0.0/8, fd00::/8, 192.0.2.7 */
  PH_HOST_RULE_LOCAL,  /* <local>: a name without a dot */
} PhHostRuleKind;

/* A parsed list: one owner (new and free). */
typedef struct _PhHostList PhHostList;

/* Items are separated by commas, semicolons or white space; names are compared without case
 * and without a trailing dot. NULL and an error naming the first bad item when one is not a
 * rule. An empty text is an empty list. */
PhHostList *ph_host_list_parse (const char *text, GError **error);
void ph_host_list_free (PhHostList *list);

guint ph_host_list_get_n_rules (const PhHostList *list);
PhHostRuleKind ph_host_list_get_kind (const PhHostList *list, guint i);
/* The rule as written (normalised: lower case, no trailing dot). */
const char *ph_host_list_get_text (const PhHostList *list, guint i);
/* A CIDR rule's mask; NULL for other kinds. */
GInetAddressMask *ph_host_list_get_mask (const PhHostList *list, guint i);
gboolean ph_host_list_has_cidr (const PhHostList *list);

/* The first rule matching @host (no brackets; a name or an address literal), as written, or
 * NULL. @resolved (of GInetAddress, may be NULL) are addresses the caller resolved @host to,
 * which CIDR rules are matched against as well. */
const char *ph_host_list_match (const PhHostList *list, const char *host, GList *resolved);

/* Whether @host is an address literal (IPv4, or IPv6 with or without brackets). */
gboolean ph_host_is_address (const char *host);

G_DEFINE_AUTOPTR_CLEANUP_FUNC (PhHostList, ph_host_list_free)

G_END_DECLS

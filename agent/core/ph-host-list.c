/* SPDX-License-Identifier: GPL-2.0-or-later */
/* ph-host-list.c: host rules (ph-host-list.h). The syntax is the common part of what px's and
 * cntlm's noproxy, curl's no_proxy, GNOME's ignore-hosts and Windows' proxy override accept,
 * so that one list means the same to the agent, to a PAC engine and to the desktop. It comes
 * from configuration files anyone may have written: every item is checked, and what is not a
 * rule is an error naming it, never a rule that matches by accident. */
#define G_LOG_DOMAIN "pinhole-route"

#include "ph-host-list.h"
#include "ph-error.h"

#include <glib/gi18n.h>
#include <stdlib.h>
#include <string.h>

typedef struct
{
  PhHostRuleKind kind;
  char *text;             /* as written, normalised */
  const char *suffix;     /* UNDER, DOMAIN: the part after "*." or "." (in text) */
  GInetAddressMask *mask; /* CIDR */
} PhHostRule;

struct _PhHostList
{
  GArray *rules; /* of PhHostRule */
  gboolean has_cidr;
};

static void
rule_clear (PhHostRule *rule)
{
  g_free (rule->text);
  g_clear_object (&rule->mask);
}

void
ph_host_list_free (PhHostList *list)
{
  if (list == NULL)
    return;
  g_array_unref (list->rules);
  g_free (list);
}

/* A DNS name as a rule may write it: letters, digits, '-' and '_' in labels of 1 to 63,
 * separated by single dots, 253 at most, the last label not all digits (no top-level domain
 * is: "300.1.1.1" is a mistyped address, not a name). */
static gboolean
valid_name (const char *name)
{
  gsize len = strlen (name);
  gsize label = 0;
  gboolean digits = TRUE; /* the current label is all digits */

  if (len == 0 || len > 253)
    return FALSE;
  for (const char *p = name; *p != '\0'; p++)
    {
      if (*p == '.')
        {
          if (label == 0)
            return FALSE;
          label = 0;
          digits = TRUE;
          continue;
        }
      if (!g_ascii_isalnum (*p) && *p != '-' && *p != '_')
        return FALSE;
      digits = digits && g_ascii_isdigit (*p);
      if (++label > 63)
        return FALSE;
    }
  return label > 0 && !(digits && strchr (name, '.') != NULL);
}

/* @text without brackets around an IPv6 address, in a new string. */
static char *
strip_brackets (const char *text)
{
  gsize len = strlen (text);

  if (len >= 2 && text[0] == '[' && text[len - 1] == ']')
    return g_strndup (text + 1, len - 2);
  return g_strdup (text);
}

gboolean
ph_host_is_address (const char *host)
{
  g_autofree char *bare = strip_brackets (host);

  return g_hostname_is_ip_address (bare);
}

/* The length of a CIDR as written: 1 to 3 digits, at most 128 (the family's own bound is
 * GLib's check). */
static gboolean
valid_prefix_length (const char *text)
{
  gsize n = strspn (text, "0123456789");

  return n >= 1 && n <= 3 && text[n] == '\0' && atoi (text) <= 128;
}

static gboolean
parse_rule (const char *item, PhHostRule *rule, GError **error)
{
  g_autofree char *lower = g_ascii_strdown (item, -1);
  gsize len = strlen (lower);
  const char *slash;

  memset (rule, 0, sizeof *rule);
  /* "host." is "host", before anything else: "10.0.0.0." is the address, not a name that an
   * address request would never match (and a PAC's string compare would). */
  while (len > 1 && lower[len - 1] == '.')
    lower[--len] = '\0';
  if (g_strcmp0 (lower, "<local>") == 0)
    {
      rule->kind = PH_HOST_RULE_LOCAL;
      rule->text = g_strdup ("<local>");
      return TRUE;
    }
  slash = strchr (lower, '/');
  if (slash != NULL || strchr (lower, ':') != NULL || g_hostname_is_ip_address (lower)
      || lower[0] == '[')
    {
      g_autofree char *addr = NULL;
      g_autoptr (GError) local = NULL;
      GInetAddressMask *mask;

      /* An address or a CIDR; "[v6]" and "[v6]/len" are accepted as written. */
      if (slash != NULL)
        {
          g_autofree char *written = g_strndup (lower, slash - lower);
          g_autofree char *head = strip_brackets (written);
          addr = g_strconcat (head, slash, NULL);
        }
      else
        addr = strip_brackets (lower);
      /* GLib warns (a critical under G_DEBUG=fatal-warnings) rather than fails on a length past
       * 128: only 1 to 3 digits up to that reach it. */
      mask = slash != NULL && !valid_prefix_length (slash + 1)
                 ? NULL
                 : g_inet_address_mask_new_from_string (addr, &local);
      if (mask == NULL)
        {
          g_set_error (error, PH_ERROR, PH_ERROR_INVALID_CONFIG,
                       /* TRANSLATORS: %s is one item of [route] direct= or block= */
                       _ ("“%s” is not an address or network (expected e.g. 10.0.0.0/8, "
                          "192.0.2.7 or fd00::/8)"),
                       item);
          return FALSE;
        }
      rule->kind = PH_HOST_RULE_CIDR;
      rule->mask = mask;
      rule->text = g_inet_address_mask_to_string (mask);
      return TRUE;
    }
  /* A suffix that is an address names no domain: ".10.0.0.0" would match the address itself
   * in a PAC's string compare but never in the router, which compares addresses as such. */
  if (g_str_has_prefix (lower, "*.") && valid_name (lower + 2)
      && !g_hostname_is_ip_address (lower + 2))
    {
      rule->kind = PH_HOST_RULE_UNDER;
      rule->text = g_steal_pointer (&lower);
      rule->suffix = rule->text + 2;
      return TRUE;
    }
  if (lower[0] == '.' && valid_name (lower + 1) && !g_hostname_is_ip_address (lower + 1))
    {
      rule->kind = PH_HOST_RULE_DOMAIN;
      rule->text = g_steal_pointer (&lower);
      rule->suffix = rule->text + 1;
      return TRUE;
    }
  if (valid_name (lower))
    {
      rule->kind = PH_HOST_RULE_EXACT;
      rule->text = g_steal_pointer (&lower);
      return TRUE;
    }
  g_set_error (error, PH_ERROR, PH_ERROR_INVALID_CONFIG,
               /* TRANSLATORS: %s is one item of [route] direct= or block=; keep the examples */
               _ ("“%s” is not a host rule (expected a name, *.suffix, .suffix, an address, a "
                  "CIDR such as 10.0.0.0/8, or <local>)"),
               item);
  return FALSE;
}

PhHostList *
ph_host_list_parse (const char *text, GError **error)
{
  g_autoptr (PhHostList) list = g_new0 (PhHostList, 1);
  g_auto (GStrv) items = NULL;

  list->rules = g_array_new (FALSE, TRUE, sizeof (PhHostRule));
  g_array_set_clear_func (list->rules, (GDestroyNotify) rule_clear);
  if (text == NULL)
    return g_steal_pointer (&list);
  items = g_strsplit_set (text, ",; \t\r\n", -1);
  for (guint i = 0; items[i] != NULL; i++)
    {
      PhHostRule rule;

      if (items[i][0] == '\0')
        continue;
      if (!parse_rule (items[i], &rule, error))
        return NULL;
      list->has_cidr = list->has_cidr || rule.kind == PH_HOST_RULE_CIDR;
      g_array_append_val (list->rules, rule);
    }
  return g_steal_pointer (&list);
}

static const PhHostRule *
rule_at (const PhHostList *list, guint i)
{
  g_return_val_if_fail (i < list->rules->len, NULL);
  return &g_array_index (list->rules, PhHostRule, i);
}

guint
ph_host_list_get_n_rules (const PhHostList *list)
{
  return list->rules->len;
}

PhHostRuleKind
ph_host_list_get_kind (const PhHostList *list, guint i)
{
  return rule_at (list, i)->kind;
}

const char *
ph_host_list_get_text (const PhHostList *list, guint i)
{
  return rule_at (list, i)->text;
}

GInetAddressMask *
ph_host_list_get_mask (const PhHostList *list, guint i)
{
  return rule_at (list, i)->mask;
}

gboolean
ph_host_list_has_cidr (const PhHostList *list)
{
  return list->has_cidr;
}

static gboolean
name_is_under (const char *name, gsize name_len, const char *suffix)
{
  gsize len = strlen (suffix);

  return name_len > len + 1 && name[name_len - len - 1] == '.'
         && strcmp (name + name_len - len, suffix) == 0;
}

static gboolean
mask_matches (GInetAddressMask *mask, GInetAddress *addr)
{
  return g_inet_address_get_family (addr)
             == g_inet_address_get_family (g_inet_address_mask_get_address (mask))
         && g_inet_address_mask_matches (mask, addr);
}

const char *
ph_host_list_match (const PhHostList *list, const char *host, GList *resolved)
{
  g_autofree char *name = strip_brackets (host);
  g_autoptr (GInetAddress) literal = NULL;
  gsize len;

  /* Names compare as DNS does: without case, "host." as "host". */
  for (char *p = name; *p != '\0'; p++)
    *p = g_ascii_tolower (*p);
  len = strlen (name);
  while (len > 1 && name[len - 1] == '.')
    name[--len] = '\0';
  literal = g_inet_address_new_from_string (name);

  for (guint i = 0; i < list->rules->len; i++)
    {
      const PhHostRule *rule = rule_at (list, i);

      switch (rule->kind)
        {
          case PH_HOST_RULE_CIDR:
            if (literal != NULL && mask_matches (rule->mask, literal))
              return rule->text;
            for (GList *l = resolved; l != NULL && literal == NULL; l = l->next)
              if (mask_matches (rule->mask, l->data))
                return rule->text;
            break;
          case PH_HOST_RULE_EXACT:
            if (literal == NULL && strcmp (name, rule->text) == 0)
              return rule->text;
            break;
          case PH_HOST_RULE_UNDER:
            if (literal == NULL && name_is_under (name, len, rule->suffix))
              return rule->text;
            break;
          case PH_HOST_RULE_DOMAIN:
            if (literal == NULL
                && (strcmp (name, rule->suffix) == 0 || name_is_under (name, len, rule->suffix)))
              return rule->text;
            break;
          case PH_HOST_RULE_LOCAL:
            if (literal == NULL && strchr (name, '.') == NULL)
              return rule->text;
            break;
        }
    }
  return NULL;
}

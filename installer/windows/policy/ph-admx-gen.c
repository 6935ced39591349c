/* SPDX-License-Identifier: GPL-2.0-or-later */
/* ph-admx-gen.c: writes the Group Policy templates, pinhole.admx and CULTURE/pinhole.adml for
 * English and each language of po/LINGUAS, from the configuration's one key table
 * (ph_config_get_key) and the translations in po/LANG.po, so that they cannot drift from the
 * keys the agent takes. `ninja -C BUILD pinhole-update-admx` runs it into this folder;
 * tests/policy/test-admx.sh fails when the committed files differ from what it writes now.
 *
 *   ph-admx-gen --po-dir PO --output DIR   write DIR/pinhole.admx and DIR/CULTURE/pinhole.adml
 *   ph-admx-gen --list-keys | --list-excluded
 *
 * Each policy writes what ph-policy-win32.c reads: HKLM\Software\Policies\Pinhole\GROUP, a value
 * named like the key; a whole number as REG_DWORD (read back in decimal), everything else as
 * REG_SZ in the file's own words (never REG_EXPAND_SZ: the agent does not expand it). */
#include "ph-config.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <glib/gi18n.h>

#define POLICY_KEY "Software\\Policies\\Pinhole"
#define SUPPORTED "SUPPORTED_Windows10"
/* The ADMX files' version: minRequiredRevision asks the ADML files for at least this. */
#define REVISION "1.0"

/* Keys without a policy, and why; README.md here lists them too (the test checks). */
static const struct
{
  const char *key;
  const char *why;
} excluded[] = {
  { "transparent.address", "transparent capture needs Linux netfilter" },
  { "transparent.mark", "transparent capture needs Linux netfilter" },
  { "transparent.ports", "transparent capture needs Linux netfilter" },
  { "transparent.capture", "transparent capture needs Linux nftables" },
  { "upstream.ktls", "Windows has no kernel TLS: on would stop every connection" },
};

/* The title of each group's category. A group whose every key is excluded needs none. */
static const struct
{
  const char *group;
  const char *title;
} groups[] = {
  { "listener", N_ ("Listener") },
  { "upstream", N_ ("Cloud proxy") },
  { "tunnel", N_ ("Tunnels") },
  { "route", N_ ("Routes") },
  { "system-proxy", N_ ("System proxy") },
  { "doctor", N_ ("Diagnosis") },
  { "log", N_ ("Log") },
};

/* ---- po files ---------------------------------------------------------------------------- */

typedef struct
{
  char *culture;         /* en-US, zh-CN */
  char *po;              /* po/zh_CN.po; NULL for English */
  GHashTable *catalogue; /* msgid -> msgstr; NULL for English */
  GPtrArray *missing;    /* msgids without a translation */
} Lang;

static void
lang_free (Lang *lang)
{
  g_free (lang->culture);
  g_free (lang->po);
  g_clear_pointer (&lang->catalogue, g_hash_table_unref);
  g_ptr_array_unref (lang->missing);
  g_free (lang);
}

G_DEFINE_AUTOPTR_CLEANUP_FUNC (Lang, lang_free)

typedef struct
{
  GString *msgid;
  GString *msgstr;
  GString *target; /* where a continuation line goes; NULL: nowhere */
  gboolean skip;   /* fuzzy, with a context or plural: not used here */
} PoEntry;

static void
po_flush (PoEntry *e, GHashTable *catalogue)
{
  if (!e->skip && e->msgid->len > 0 && e->msgstr->len > 0)
    g_hash_table_replace (catalogue, g_strdup (e->msgid->str), g_strdup (e->msgstr->str));
  g_string_truncate (e->msgid, 0);
  g_string_truncate (e->msgstr, 0);
  e->target = NULL;
  e->skip = FALSE;
}

/* Appends the C-escaped text between the quotes of @quoted to @to. */
static gboolean
po_append (GString *to, const char *quoted)
{
  gsize len = strlen (quoted);
  g_autofree char *inner = NULL;
  g_autofree char *text = NULL;

  if (len < 2 || quoted[0] != '"' || quoted[len - 1] != '"')
    return FALSE;
  inner = g_strndup (quoted + 1, len - 2);
  text = g_strcompress (inner);
  if (to != NULL)
    g_string_append (to, text);
  return TRUE;
}

/* The translated messages of a po file: not fuzzy, without context or plural. */
static GHashTable *
po_read (const char *path, GError **error)
{
  g_autofree char *data = NULL;
  g_auto (GStrv) lines = NULL;
  g_autoptr (GHashTable) catalogue
      = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, g_free);
  g_autoptr (GString) msgid = g_string_new (NULL);
  g_autoptr (GString) msgstr = g_string_new (NULL);
  PoEntry e = { msgid, msgstr, NULL, FALSE };

  if (!g_file_get_contents (path, &data, NULL, error))
    return NULL;
  lines = g_strsplit (data, "\n", -1);
  for (guint i = 0; lines[i] != NULL; i++)
    {
      char *line = g_strstrip (lines[i]);
      gboolean ok = TRUE;

      if (*line == '\0')
        po_flush (&e, catalogue);
      else if (g_str_has_prefix (line, "#,"))
        e.skip |= strstr (line, "fuzzy") != NULL;
      else if (*line == '#')
        continue; /* comments, and obsolete entries (#~) */
      else if (g_str_has_prefix (line, "msgctxt ") || g_str_has_prefix (line, "msgid_plural ")
               || g_str_has_prefix (line, "msgstr["))
        {
          e.skip = TRUE;
          e.target = NULL;
        }
      else if (g_str_has_prefix (line, "msgid "))
        {
          if (e.msgstr->len > 0)
            po_flush (&e, catalogue);
          e.target = e.msgid;
          ok = po_append (e.target, line + 6);
        }
      else if (g_str_has_prefix (line, "msgstr "))
        {
          e.target = e.msgstr;
          ok = po_append (e.target, line + 7);
        }
      else
        ok = po_append (e.target, line);
      if (!ok)
        {
          g_set_error (error, G_FILE_ERROR, G_FILE_ERROR_INVAL, "%s:%u: not a po line: %s", path,
                       i + 1, line);
          return NULL;
        }
    }
  po_flush (&e, catalogue);
  return g_steal_pointer (&catalogue);
}

/* @msgid in @lang; an untranslated one is noted (the run fails) and stays English. */
static const char *tr (Lang *lang, const char *msgid) G_GNUC_FORMAT (2);

static const char *
tr (Lang *lang, const char *msgid)
{
  const char *msgstr;

  if (lang->catalogue == NULL)
    return msgid;
  msgstr = g_hash_table_lookup (lang->catalogue, msgid);
  if (msgstr != NULL)
    return msgstr;
  if (!g_ptr_array_find_with_equal_func (lang->missing, msgid, g_str_equal, NULL))
    g_ptr_array_add (lang->missing, (gpointer) msgid);
  return msgid;
}

/* ---- the policies ------------------------------------------------------------------------ */

/* An ADMX name: letters, digits and "_" only (the schema's itemName). */
static char *
item_name (const char *first, const char *second)
{
  char *name = second ? g_strconcat (first, "_", second, NULL) : g_strdup (first);

  for (char *c = name; *c; c++)
    if (!g_ascii_isalnum (*c) && *c != '_')
      *c = '_';
  return name;
}

static const char *
group_title (const char *group)
{
  for (gsize i = 0; i < G_N_ELEMENTS (groups); i++)
    if (g_str_equal (groups[i].group, group))
      return groups[i].title;
  return NULL;
}

static char *
dotted (const PhConfigKey *k)
{
  return g_strconcat (ph_config_key_get_group (k), ".", ph_config_key_get_name (k), NULL);
}

static gboolean
is_excluded (const PhConfigKey *k)
{
  g_autofree char *name = dotted (k);

  for (gsize i = 0; i < G_N_ELEMENTS (excluded); i++)
    if (g_str_equal (excluded[i].key, name))
      return TRUE;
  return FALSE;
}

/* The keys that get a policy, in the table's order. */
static GPtrArray *
policy_keys (void)
{
  GPtrArray *keys = g_ptr_array_new ();

  for (guint i = 0; i < ph_config_get_n_keys (); i++)
    if (!is_excluded (ph_config_get_key (i)))
      g_ptr_array_add (keys, (gpointer) ph_config_get_key (i));
  return keys;
}

/* The groups of @keys, in order of first appearance. */
static GPtrArray *
policy_groups (GPtrArray *keys)
{
  GPtrArray *out = g_ptr_array_new ();

  for (guint i = 0; i < keys->len; i++)
    {
      const char *group = ph_config_key_get_group (g_ptr_array_index (keys, i));
      if (!g_ptr_array_find_with_equal_func (out, group, g_str_equal, NULL))
        g_ptr_array_add (out, (gpointer) group);
    }
  return out;
}

/* A whole number: the editor's number box writes REG_DWORD, which the agent reads in decimal. */
static gboolean
is_number (const PhConfigKey *k)
{
  return ph_config_key_get_kind (k) == PH_CONFIG_KIND_UINT;
}

/* Whether the value ph-policy-win32.c would hand the agent for @k is one it takes. */
static gboolean
takes (const PhConfigKey *k, const char *value)
{
  g_autofree char *name = dotted (k);
  g_autoptr (GError) error = NULL;

  return ph_config_check_value (name, value, &error);
}

/* A duration in the file's words: 100ms, 1s, 5min, 24h. */
static char *
duration_text (guint ms)
{
  if (ms % 3600000 == 0)
    return g_strdup_printf ("%uh", ms / 3600000);
  if (ms % 60000 == 0)
    return g_strdup_printf ("%umin", ms / 60000);
  if (ms % 1000 == 0)
    return g_strdup_printf ("%us", ms / 1000);
  return g_strdup_printf ("%ums", ms);
}

/* The explanation shown beside the policy: the key's own, what the value is and its default,
 * what setting it does, and where it goes. */
static char *
explain_text (Lang *lang, const PhConfigKey *k)
{
  GString *s = g_string_new (tr (lang, ph_config_key_get_explanation (k)));
  g_autoptr (GPtrArray) value = g_ptr_array_new_with_free_func (g_free);
  const char *fallback = ph_config_key_get_default (k);
  PhConfigKind kind = ph_config_key_get_kind (k);
  guint min = ph_config_key_get_min (k), max = ph_config_key_get_max (k);
  g_autofree char *key = g_strdup_printf ("HKLM\\" POLICY_KEY "\\%s", ph_config_key_get_group (k));

  switch (kind)
    {
      case PH_CONFIG_KIND_LIST:
        g_ptr_array_add (value,
                         g_strdup (tr (lang, N_ ("A list: items separated by “;” or “,”."))));
        break;
      case PH_CONFIG_KIND_UINT:
        g_ptr_array_add (
            value, g_strdup_printf (tr (lang, N_ ("A whole number from %u to %u.")), min, max));
        break;
      case PH_CONFIG_KIND_UINT_OR_AUTO:
        g_ptr_array_add (value, g_strdup_printf (tr (lang, N_ ("“auto” or a whole number from %u "
                                                               "to %u.")),
                                                 min, max));
        break;
      case PH_CONFIG_KIND_DURATION:
        {
          g_autofree char *shortest = duration_text (min);
          g_autofree char *longest = duration_text (max);
          /* TRANSLATORS: the shortest and longest durations allowed, such as 100ms and 24h;
           * ms, s, min and h are the units the configuration file takes: keep them */
          g_ptr_array_add (value, g_strdup_printf (tr (lang, N_ ("A duration from %s to %s: a "
                                                                 "number with ms, s, min or h, "
                                                                 "such as 500ms, 30s or 5min (a "
                                                                 "number alone is seconds).")),
                                                   shortest, longest));
          break;
        }
      case PH_CONFIG_KIND_BOOL:
        /* TRANSLATORS: Enabled and Disabled are the Group Policy editor's states; true and
         * false are the values written: keep them */
        g_ptr_array_add (value, g_strdup (tr (lang, N_ ("Enabled: true. Disabled: false."))));
        break;
      default:
        break;
    }
  if (*fallback != '\0')
    /* TRANSLATORS: %s is the value the agent uses when nothing sets it, as the file writes it */
    g_ptr_array_add (value, g_strdup_printf (tr (lang, N_ ("Default: %s.")), fallback));
  else if (kind != PH_CONFIG_KIND_CHOICE) /* upstream.verify: its explanation says */
    g_ptr_array_add (value, g_strdup (tr (lang, N_ ("Default: empty."))));
  g_ptr_array_add (value, NULL);
  if (value->len > 1)
    {
      g_autofree char *sentences = g_strjoinv ("\n", (char **) value->pdata);
      g_string_append_printf (s, "\n\n%s", sentences);
    }
  g_string_append (s, "\n\n");
  if (kind == PH_CONFIG_KIND_BOOL)
    /* TRANSLATORS: Enabled, Disabled and Not Configured are the Group Policy editor's states;
     * pinhole.conf and managed.d are names of files: keep them */
    g_string_append (s, tr (lang, N_ ("Enabled or Disabled, the setting is locked: the agent "
                                      "uses it whatever pinhole.conf and managed.d say, and "
                                      "pinholectl and the tray show it as set by the "
                                      "administrator. Not Configured: the configuration files "
                                      "decide.")));
  else
    /* TRANSLATORS: Enabled, Disabled and Not Configured are the Group Policy editor's states;
     * pinhole.conf and managed.d are names of files: keep them */
    g_string_append (s, tr (lang, N_ ("Enabled, the setting is locked: the agent uses it "
                                      "whatever pinhole.conf and managed.d say, and pinholectl "
                                      "and the tray show it as set by the administrator. "
                                      "Disabled or Not Configured: the configuration files "
                                      "decide.")));
  g_string_append (s, "\n\n");
  g_string_append_printf (
      s,
      tr (lang,
          /* TRANSLATORS: the registry key, the value's name and its type (REG_SZ or REG_DWORD);
           * then the same setting as the configuration file names it: its [group] and its key */
          N_ ("Registry: %s, value %s (%s). In pinhole.conf: [%s] %s.")),
      key, ph_config_key_get_name (k), is_number (k) ? "REG_DWORD" : "REG_SZ",
      ph_config_key_get_group (k), ph_config_key_get_name (k));
  return g_string_free (s, FALSE);
}

/* ---- writing ----------------------------------------------------------------------------- */

static void G_GNUC_PRINTF (2, 3) xml (GString *out, const char *fmt, ...)
{
  va_list args;
  g_autofree char *text = NULL;

  va_start (args, fmt);
  text = g_markup_vprintf_escaped (fmt, args);
  va_end (args);
  g_string_append (out, text);
}

static void
xml_header (GString *out)
{
  g_string_append (out, "<?xml version=\"1.0\" encoding=\"utf-8\"?>\n"
                        "<!-- SPDX-License-Identifier: GPL-2.0-or-later -->\n"
                        "<!-- Generated by installer/windows/policy/ph-admx-gen.c from the key "
                        "table of agent/core/ph-config.c\n"
                        "     and po/LANG.po. Do not edit: run ninja -C BUILD "
                        "pinhole-update-admx. -->\n");
}

#define PD_NAMESPACE "http://schemas.microsoft.com/GroupPolicy/2006/07/PolicyDefinitions"
#define XS_NAMESPACES                                                                              \
  "xmlns:xsd=\"http://www.w3.org/2001/XMLSchema\" "                                                \
  "xmlns:xsi=\"http://www.w3.org/2001/XMLSchema-instance\""

static char *
admx_build (GPtrArray *keys)
{
  GString *out = g_string_new (NULL);
  g_autoptr (GPtrArray) group_list = policy_groups (keys);

  xml_header (out);
  g_string_append (out, "<policyDefinitions " XS_NAMESPACES " revision=\"" REVISION
                        "\" schemaVersion=\"1.0\" xmlns=\"" PD_NAMESPACE "\">\n"
                        "  <policyNamespaces>\n"
                        "    <target prefix=\"pinhole\" namespace=\"Pinhole.Policies.Pinhole\"/>\n"
                        "  </policyNamespaces>\n"
                        "  <resources minRequiredRevision=\"" REVISION "\"/>\n"
                        "  <supportedOn>\n"
                        "    <definitions>\n"
                        "      <definition name=\"" SUPPORTED "\" displayName=\"$(string." SUPPORTED
                        ")\"/>\n"
                        "    </definitions>\n"
                        "  </supportedOn>\n"
                        "  <categories>\n"
                        "    <category name=\"Pinhole\" displayName=\"$(string.Pinhole)\"/>\n");
  for (guint g = 0; g < group_list->len; g++)
    {
      g_autofree char *cat = item_name ("Pinhole", g_ptr_array_index (group_list, g));
      xml (out,
           "    <category name=\"%s\" displayName=\"$(string.%s)\">\n"
           "      <parentCategory ref=\"Pinhole\"/>\n"
           "    </category>\n",
           cat, cat);
    }
  g_string_append (out, "  </categories>\n  <policies>\n");
  for (guint i = 0; i < keys->len; i++)
    {
      const PhConfigKey *k = g_ptr_array_index (keys, i);
      const char *group = ph_config_key_get_group (k), *key = ph_config_key_get_name (k);
      g_autofree char *name = item_name (group, key);
      g_autofree char *cat = item_name ("Pinhole", group);
      g_autofree char *id = item_name (key, NULL);
      g_autofree char *regkey = g_strdup_printf (POLICY_KEY "\\%s", group);
      PhConfigKind kind = ph_config_key_get_kind (k);

      if (kind == PH_CONFIG_KIND_BOOL)
        {
          /* The policy is the switch: Enabled writes true, Disabled false (ph-config.c's
           * parse_bool takes nothing else, so not the editor's 1 and 0). */
          xml (out,
               "    <policy name=\"%s\" class=\"Machine\" displayName=\"$(string.%s)\" "
               "explainText=\"$(string.%s_Explain)\" key=\"%s\" valueName=\"%s\">\n"
               "      <parentCategory ref=\"%s\"/>\n"
               "      <supportedOn ref=\"" SUPPORTED "\"/>\n"
               "      <enabledValue>\n"
               "        <string>true</string>\n"
               "      </enabledValue>\n"
               "      <disabledValue>\n"
               "        <string>false</string>\n"
               "      </disabledValue>\n"
               "    </policy>\n",
               name, name, name, regkey, key, cat);
          continue;
        }
      xml (out,
           "    <policy name=\"%s\" class=\"Machine\" displayName=\"$(string.%s)\" "
           "explainText=\"$(string.%s_Explain)\" presentation=\"$(presentation.%s)\" "
           "key=\"%s\">\n"
           "      <parentCategory ref=\"%s\"/>\n"
           "      <supportedOn ref=\"" SUPPORTED "\"/>\n"
           "      <elements>\n",
           name, name, name, name, regkey, cat);
      if (kind == PH_CONFIG_KIND_UINT)
        xml (out,
             "        <decimal id=\"%s\" valueName=\"%s\" required=\"true\" minValue=\"%u\" "
             "maxValue=\"%u\"/>\n",
             id, key, ph_config_key_get_min (k), ph_config_key_get_max (k));
      else if (kind == PH_CONFIG_KIND_CHOICE)
        {
          const char *const *words = ph_config_key_get_words (k);

          xml (out, "        <enum id=\"%s\" valueName=\"%s\" required=\"true\">\n", id, key);
          for (guint w = 0; words[w] != NULL; w++)
            {
              g_autofree char *item = item_name (name, words[w]);
              xml (out,
                   "          <item displayName=\"$(string.%s)\">\n"
                   "            <value>\n"
                   "              <string>%s</string>\n"
                   "            </value>\n"
                   "          </item>\n",
                   item, words[w]);
            }
          g_string_append (out, "        </enum>\n");
        }
      else
        /* Lists can be long: the direct and block lists, several cloud proxies. */
        xml (out, "        <text id=\"%s\" valueName=\"%s\" required=\"%s\" maxLength=\"%u\"/>\n",
             id, key, takes (k, "") ? "false" : "true", kind == PH_CONFIG_KIND_LIST ? 4095 : 1023);
      g_string_append (out, "      </elements>\n    </policy>\n");
    }
  g_string_append (out, "  </policies>\n</policyDefinitions>\n");
  return g_string_free (out, FALSE);
}

static void
adml_string (GString *out, const char *id, const char *text)
{
  xml (out, "      <string id=\"%s\">%s</string>\n", id, text);
}

static char *
adml_build (GPtrArray *keys, Lang *lang)
{
  GString *out = g_string_new (NULL);
  g_autoptr (GPtrArray) group_list = policy_groups (keys);

  xml_header (out);
  xml (out,
       "<policyDefinitionResources " XS_NAMESPACES " revision=\"" REVISION
       "\" schemaVersion=\"1.0\" xmlns=\"" PD_NAMESPACE "\">\n"
       "  <displayName>%s</displayName>\n"
       "  <description>%s</description>\n"
       "  <resources>\n"
       "    <stringTable>\n",
       "Pinhole", tr (lang, N_ ("The settings of the Pinhole agent that Group Policy manages.")));
  adml_string (out, "Pinhole", "Pinhole");
  adml_string (out, SUPPORTED, tr (lang, N_ ("At least Windows 10 or Windows Server 2016")));
  for (guint g = 0; g < group_list->len; g++)
    {
      g_autofree char *cat = item_name ("Pinhole", g_ptr_array_index (group_list, g));
      adml_string (out, cat, tr (lang, group_title (g_ptr_array_index (group_list, g))));
    }
  for (guint i = 0; i < keys->len; i++)
    {
      const PhConfigKey *k = g_ptr_array_index (keys, i);
      g_autofree char *name = item_name (ph_config_key_get_group (k), ph_config_key_get_name (k));
      g_autofree char *explain_id = g_strconcat (name, "_Explain", NULL);
      g_autofree char *explain = explain_text (lang, k);
      const char *const *words = ph_config_key_get_words (k);

      adml_string (out, name, tr (lang, ph_config_key_get_summary (k)));
      adml_string (out, explain_id, explain);
      /* The items show the file's own words, as pinholectl and pinhole.conf write them; the
       * explanation says what each does. */
      for (guint w = 0; words != NULL && words[w] != NULL; w++)
        {
          g_autofree char *item = item_name (name, words[w]);
          adml_string (out, item, words[w]);
        }
    }
  g_string_append (out, "    </stringTable>\n    <presentationTable>\n");
  for (guint i = 0; i < keys->len; i++)
    {
      const PhConfigKey *k = g_ptr_array_index (keys, i);
      const char *fallback = ph_config_key_get_default (k);
      g_autofree char *name = item_name (ph_config_key_get_group (k), ph_config_key_get_name (k));
      g_autofree char *id = item_name (ph_config_key_get_name (k), NULL);
      g_autofree char *label = NULL;
      const char *const *words = ph_config_key_get_words (k);

      /* TRANSLATORS: the label of a box in the Group Policy editor; %s is the setting's title */
      label = g_strdup_printf (tr (lang, N_ ("%s:")), tr (lang, ph_config_key_get_summary (k)));
      switch (ph_config_key_get_kind (k))
        {
          case PH_CONFIG_KIND_BOOL:
            continue; /* the policy itself is the switch */
          case PH_CONFIG_KIND_UINT:
            xml (out,
                 "      <presentation id=\"%s\">\n"
                 "        <decimalTextBox refId=\"%s\" defaultValue=\"%s\">%s</decimalTextBox>\n"
                 "      </presentation>\n",
                 name, id, fallback, label);
            break;
          case PH_CONFIG_KIND_CHOICE:
            xml (out,
                 "      <presentation id=\"%s\">\n        <dropdownList refId=\"%s\" "
                 "noSort=\"true\"",
                 name, id);
            for (guint w = 0; words[w] != NULL; w++)
              if (g_str_equal (words[w], fallback))
                xml (out, " defaultItem=\"%u\"", w);
            xml (out, ">%s</dropdownList>\n      </presentation>\n", label);
            break;
          default:
            xml (out,
                 "      <presentation id=\"%s\">\n        <textBox refId=\"%s\">\n"
                 "          <label>%s</label>\n",
                 name, id, label);
            if (*fallback != '\0')
              xml (out, "          <defaultValue>%s</defaultValue>\n", fallback);
            g_string_append (out, "        </textBox>\n      </presentation>\n");
            break;
        }
    }
  g_string_append (out, "    </presentationTable>\n  </resources>\n</policyDefinitionResources>\n");
  return g_string_free (out, FALSE);
}

/* ---- checks before anything is written --------------------------------------------------- */

/* What the policies can write is what the agent takes: a mistake here is this program's. */
static gboolean
check_keys (GPtrArray *keys, GError **error)
{
  g_autoptr (GHashTable) names = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, NULL);

  for (gsize i = 0; i < G_N_ELEMENTS (excluded); i++)
    {
      gboolean found = FALSE;
      for (guint k = 0; k < ph_config_get_n_keys (); k++)
        {
          g_autofree char *name = dotted (ph_config_get_key (k));
          found |= g_str_equal (name, excluded[i].key);
        }
      if (!found)
        {
          g_set_error (error, G_IO_ERROR, G_IO_ERROR_FAILED,
                       "%s is excluded but is no longer a key: drop it from excluded[]",
                       excluded[i].key);
          return FALSE;
        }
    }
  for (guint i = 0; i < keys->len; i++)
    {
      const PhConfigKey *k = g_ptr_array_index (keys, i);
      const char *const *words = ph_config_key_get_words (k);
      g_autofree char *name = item_name (ph_config_key_get_group (k), ph_config_key_get_name (k));
      g_autofree char *min = g_strdup_printf ("%u", ph_config_key_get_min (k));
      g_autofree char *max = g_strdup_printf ("%u", ph_config_key_get_max (k));
      gboolean ok = TRUE;

      if (group_title (ph_config_key_get_group (k)) == NULL)
        {
          g_set_error (error, G_IO_ERROR, G_IO_ERROR_FAILED,
                       "the group [%s] has no title: add it to groups[]",
                       ph_config_key_get_group (k));
          return FALSE;
        }
      if (!g_hash_table_add (names, g_strdup (name)))
        {
          g_set_error (error, G_IO_ERROR, G_IO_ERROR_FAILED, "two keys make the policy name %s",
                       name);
          return FALSE;
        }
      switch (ph_config_key_get_kind (k))
        {
          case PH_CONFIG_KIND_UINT:
            ok = takes (k, min) && takes (k, max) && takes (k, ph_config_key_get_default (k));
            break;
          case PH_CONFIG_KIND_BOOL:
            ok = takes (k, "true") && takes (k, "false");
            break;
          case PH_CONFIG_KIND_CHOICE:
            for (guint w = 0; words[w] != NULL; w++)
              {
                g_autofree char *item = item_name (name, words[w]);
                ok &= takes (k, words[w]) && g_hash_table_add (names, g_strdup (item));
              }
            break;
          default:
            ok = takes (k, ph_config_key_get_default (k));
            break;
        }
      if (!ok)
        {
          g_set_error (error, G_IO_ERROR, G_IO_ERROR_FAILED,
                       "[%s] %s: a value the policy writes is refused, or an item's name is "
                       "taken twice",
                       ph_config_key_get_group (k), ph_config_key_get_name (k));
          return FALSE;
        }
    }
  return TRUE;
}

/* English, then each language of @po_dir/LINGUAS as a culture (zh_CN -> zh-CN). */
static GPtrArray *
langs_read (const char *po_dir, GError **error)
{
  g_autoptr (GPtrArray) langs = g_ptr_array_new_with_free_func ((GDestroyNotify) lang_free);
  g_autofree char *linguas_path = g_build_filename (po_dir, "LINGUAS", NULL);
  g_autofree char *linguas = NULL;
  g_auto (GStrv) lines = NULL;
  Lang *en = g_new0 (Lang, 1);

  en->culture = g_strdup ("en-US");
  en->missing = g_ptr_array_new ();
  g_ptr_array_add (langs, en);
  if (!g_file_get_contents (linguas_path, &linguas, NULL, error))
    return NULL;
  lines = g_strsplit_set (linguas, "\n", -1);
  for (guint i = 0; lines[i] != NULL; i++)
    {
      g_auto (GStrv) words = NULL;
      char *hash = strchr (lines[i], '#');

      if (hash != NULL)
        *hash = '\0';
      words = g_strsplit_set (g_strstrip (lines[i]), " \t", -1);
      for (guint w = 0; words[w] != NULL; w++)
        {
          g_autoptr (Lang) lang = NULL;

          if (*words[w] == '\0')
            continue;
          if (strchr (words[w], '_') == NULL)
            {
              /* The editor looks for a culture's folder (de-DE), not a language's. */
              g_set_error (error, G_IO_ERROR, G_IO_ERROR_FAILED,
                           "%s: %s names no region; say which culture's folder it fills",
                           linguas_path, words[w]);
              return NULL;
            }
          lang = g_new0 (Lang, 1);
          lang->culture = g_strdelimit (g_strdup (words[w]), "_", '-');
          lang->missing = g_ptr_array_new ();
          lang->po = g_strdup_printf ("%s/%s.po", po_dir, words[w]);
          lang->catalogue = po_read (lang->po, error);
          if (lang->catalogue == NULL)
            return NULL;
          g_ptr_array_add (langs, g_steal_pointer (&lang));
        }
    }
  return g_steal_pointer (&langs);
}

static gboolean
write_file (const char *dir, const char *culture, const char *name, const char *text,
            GError **error)
{
  g_autofree char *folder = culture ? g_build_filename (dir, culture, NULL) : g_strdup (dir);
  g_autofree char *path = g_build_filename (folder, name, NULL);

  if (g_mkdir_with_parents (folder, 0755) != 0)
    {
      g_set_error (error, G_FILE_ERROR, g_file_error_from_errno (errno), "cannot create %s",
                   folder);
      return FALSE;
    }
  return g_file_set_contents (path, text, -1, error);
}

int
main (int argc, char **argv)
{
  g_autofree char *po_dir = NULL, *output = NULL;
  gboolean list_keys = FALSE, list_excluded = FALSE;
  GOptionEntry entries[] = {
    { "po-dir", 0, 0, G_OPTION_ARG_FILENAME, &po_dir, "po/ (LINGUAS and LANG.po)", "DIR" },
    { "output", 0, 0, G_OPTION_ARG_FILENAME, &output, "where pinhole.admx goes", "DIR" },
    { "list-keys", 0, 0, G_OPTION_ARG_NONE, &list_keys, "every key of the table", NULL },
    { "list-excluded", 0, 0, G_OPTION_ARG_NONE, &list_excluded, "the keys without a policy", NULL },
    G_OPTION_ENTRY_NULL,
  };
  g_autoptr (GOptionContext) ctx
      = g_option_context_new ("- write Pinhole's Group Policy templates");
  g_autoptr (GError) error = NULL;
  g_autoptr (GPtrArray) keys = policy_keys ();
  g_autoptr (GPtrArray) langs = NULL;
  g_autofree char *admx = NULL;
  g_autoptr (GPtrArray) admls = NULL;
  gboolean missing = FALSE;

  g_option_context_add_main_entries (ctx, entries, NULL);
  if (!g_option_context_parse (ctx, &argc, &argv, &error))
    {
      fprintf (stderr, "ph-admx-gen: %s\n", error->message);
      return 2;
    }
  if (list_keys || list_excluded)
    {
      for (guint i = 0; i < ph_config_get_n_keys (); i++)
        {
          g_autofree char *name = dotted (ph_config_get_key (i));
          if (list_keys || is_excluded (ph_config_get_key (i)))
            printf ("%s\n", name);
        }
      return 0;
    }
  if (po_dir == NULL || output == NULL)
    {
      fprintf (stderr, "ph-admx-gen: --po-dir and --output are required (try --help)\n");
      return 2;
    }
  if (!check_keys (keys, &error) || (langs = langs_read (po_dir, &error)) == NULL)
    {
      fprintf (stderr, "ph-admx-gen: %s\n", error->message);
      return 1;
    }

  admx = admx_build (keys);
  admls = g_ptr_array_new_with_free_func (g_free);
  for (guint i = 0; i < langs->len; i++)
    {
      Lang *lang = g_ptr_array_index (langs, i);

      g_ptr_array_add (admls, adml_build (keys, lang));
      for (guint m = 0; m < lang->missing->len; m++)
        fprintf (stderr, "ph-admx-gen: not translated in %s: \"%s\"\n", lang->po,
                 (const char *) g_ptr_array_index (lang->missing, m));
      missing |= lang->missing->len > 0;
    }
  if (missing)
    {
      fprintf (stderr, "ph-admx-gen: nothing written: run ninja -C BUILD pinhole-update-po and "
                       "translate what it leaves untranslated\n");
      return 1;
    }
  for (guint i = 0; i < langs->len && error == NULL; i++)
    write_file (output, ((Lang *) g_ptr_array_index (langs, i))->culture, "pinhole.adml",
                g_ptr_array_index (admls, i), &error);
  if (error == NULL)
    write_file (output, NULL, "pinhole.admx", admx, &error);
  if (error != NULL)
    {
      fprintf (stderr, "ph-admx-gen: %s\n", error->message);
      return 1;
    }
  return 0;
}

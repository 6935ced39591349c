/* SPDX-License-Identifier: GPL-2.0-or-later */
/* ph-report.c: the support report: what the agent says of itself through org.pinhole.Agent1,
 * gathered into one plain text file that a support desk can read without tools, with every
 * credential-shaped value redacted once more (the agent's log writer redacts the secrets it
 * knows; the report also catches headers and URLs that a log line may carry). */
#define G_LOG_DOMAIN "pinhole-report"

#include "ph-report.h"

#include <string.h>

/* Diagnose takes each cloud proxy's steps in turn, each bounded by the agent. */
#define REPORT_DIAGNOSE_TIMEOUT_MS (120 * 1000)

char *
ph_report_redact (const char *text)
{
  /* The patterns are applied in order; each keeps what names the secret and replaces the
   * secret. Case-insensitive: headers and keys are written in any case. */
  static const struct
  {
    const char *pattern;
    const char *replacement;
  } rules[] = {
    /* "Proxy-Authorization: Basic dXNlcjpwYXNz", "Authorization: Bearer …" */
    { "((?:proxy-)?authorization\\s*[:=]\\s*)(?:\\S+\\s+)?\\S+", "\\1[redacted]" },
    /* A token on its own, as "Basic dXNlcjpwYXNz": the schemes as they are written, so that
     * "a basic check" stays */
    { "\\b((?-i:Basic|Bearer|NTLM|Negotiate|Digest))\\s+[A-Za-z0-9+/=._~-]{4,}", "\\1 [redacted]" },
    /* password=…, password: …, "password": "…" (a JSON member), pass=… (not bypass=) */
    { "\\b((?:password|passwd|pass|secret)\"?\\s*[:=]\\s*\"?)[^\\s\",;&]+", "\\1[redacted]" },
    /* scheme://user:password@host */
    { "(://[^/\\s:@]*):[^/\\s@]*@", "\\1:[redacted]@" },
  };
  g_autofree char *out = g_strdup (text != NULL ? text : "");

  for (gsize i = 0; i < G_N_ELEMENTS (rules); i++)
    {
      g_autoptr (GRegex) re
          = g_regex_new (rules[i].pattern, G_REGEX_CASELESS | G_REGEX_OPTIMIZE, 0, NULL);
      char *next;

      g_assert (re != NULL);
      next = g_regex_replace (re, out, -1, 0, rules[i].replacement, 0, NULL);
      if (next != NULL)
        {
          g_free (out);
          out = next;
        }
    }
  return g_steal_pointer (&out);
}

static void
section (GString *out, const char *title)
{
  g_string_append_printf (out, "\n== %s ==\n", title);
}

static void append_dict (GString *out, GVariant *dict, guint indent);

/* "key: value" in GVariant text (a string as it is); a dictionary, or a list of them (the
 * doctor's proxies and steps, the cloud proxies' health), one member a line, indented below. */
static void
append_value (GString *out, guint indent, const char *key, GVariant *value)
{
  g_autoptr (GVariant) inner = NULL;

  if (g_variant_is_of_type (value, G_VARIANT_TYPE_VARIANT))
    value = inner = g_variant_get_variant (value);
  g_string_append_printf (out, "%*s%s:", (int) indent, "", key);
  if (g_variant_is_of_type (value, G_VARIANT_TYPE_VARDICT))
    {
      g_string_append_c (out, '\n');
      append_dict (out, value, indent + 2);
    }
  else if (g_variant_is_of_type (value, G_VARIANT_TYPE ("aa{sv}")))
    {
      g_string_append_c (out, '\n');
      for (gsize i = 0; i < g_variant_n_children (value); i++)
        {
          g_autoptr (GVariant) item = g_variant_get_child_value (value, i);
          g_autofree char *label = g_strdup_printf ("[%" G_GSIZE_FORMAT "]", i);

          append_value (out, indent + 2, label, item);
        }
    }
  else if (g_variant_is_of_type (value, G_VARIANT_TYPE_STRING))
    g_string_append_printf (out, " %s\n", g_variant_get_string (value, NULL));
  else
    {
      g_autofree char *text = g_variant_print (value, FALSE);

      g_string_append_printf (out, " %s\n", text);
    }
}

static gint
compare_strings (gconstpointer a, gconstpointer b)
{
  return g_strcmp0 (*(char *const *) a, *(char *const *) b);
}

/* Every member of an a{sv}, by key. */
static void
append_dict (GString *out, GVariant *dict, guint indent)
{
  g_autoptr (GPtrArray) keys = g_ptr_array_new ();
  GVariantIter iter;
  const char *key;

  g_variant_iter_init (&iter, dict);
  while (g_variant_iter_next (&iter, "{&sv}", &key, NULL))
    g_ptr_array_add (keys, (gpointer) key);
  g_ptr_array_sort (keys, compare_strings);
  for (guint i = 0; i < keys->len; i++)
    {
      g_autoptr (GVariant) value = g_variant_lookup_value (dict, keys->pdata[i], NULL);

      append_value (out, indent, keys->pdata[i], value);
    }
}

static void
append_status (GString *out, PhAgent1 *agent)
{
  g_auto (GStrv) names = g_dbus_proxy_get_cached_property_names (G_DBUS_PROXY (agent));

  section (out, "status");
  if (names == NULL)
    {
      g_string_append (out, "(the agent's properties could not be read)\n");
      return;
    }
  for (guint i = 0; names[i] != NULL; i++)
    {
      g_autoptr (GVariant) value
          = g_dbus_proxy_get_cached_property (G_DBUS_PROXY (agent), names[i]);

      if (value != NULL)
        append_value (out, 0, names[i], value);
    }
}

static void
append_error (GString *out, const GError *error)
{
  g_string_append_printf (out, "(failed: %s)\n", error->message);
}

static void
append_statistics (GString *out, PhAgent1 *agent)
{
  g_autoptr (GVariant) stats = NULL;
  g_autoptr (GError) error = NULL;

  section (out, "statistics");
  if (!ph_agent1_call_get_statistics_sync (agent, &stats, NULL, &error))
    append_error (out, error);
  else
    append_dict (out, stats, 0);
}

/* Each key's value and where it comes from: the default, a file (set), or IT's drop-in
 * (locked). */
static void
append_settings (GString *out, PhAgent1 *agent)
{
  g_autoptr (GVariant) settings = NULL;
  g_autoptr (GError) error = NULL;
  GVariantIter iter;
  const char *key, *value, *default_value;
  gboolean locked;

  section (out, "settings");
  if (!ph_agent1_call_list_settings_sync (agent, &settings, NULL, &error))
    {
      append_error (out, error);
      return;
    }
  g_string_append (out, "# key = value  [source] (default: …)\n");
  g_variant_iter_init (&iter, settings);
  while (g_variant_iter_next (&iter, "(&s&sb&s)", &key, &value, &locked, &default_value))
    g_string_append_printf (out, "%s = %s  [%s]%s%s%s\n", key, value,
                            locked                                  ? "locked"
                            : g_strcmp0 (value, default_value) == 0 ? "default"
                                                                    : "set",
                            g_strcmp0 (value, default_value) == 0 ? "" : " (default: ",
                            g_strcmp0 (value, default_value) == 0 ? "" : default_value,
                            g_strcmp0 (value, default_value) == 0 ? "" : ")");
}

static void
append_connections (GString *out, PhAgent1 *agent)
{
  g_autoptr (GVariant) conns = NULL;
  g_autoptr (GError) error = NULL;
  GVariantIter iter;
  GVariant *conn;

  section (out, "connections");
  if (!ph_agent1_call_get_connections_sync (agent, &conns, NULL, &error))
    {
      append_error (out, error);
      return;
    }
  g_string_append_printf (out, "open: %" G_GSIZE_FORMAT "\n", g_variant_n_children (conns));
  g_variant_iter_init (&iter, conns);
  for (guint i = 0; (conn = g_variant_iter_next_value (&iter)) != NULL; i++)
    {
      g_autofree char *label = g_strdup_printf ("[%u]", i);

      append_value (out, 0, label, conn);
      g_variant_unref (conn);
    }
}

static void
append_doctor (GString *out, PhAgent1 *agent)
{
  g_autoptr (GVariant) reply = NULL;
  g_autoptr (GVariant) report = NULL;
  g_autoptr (GError) error = NULL;

  section (out, "doctor");
  reply = g_dbus_proxy_call_sync (G_DBUS_PROXY (agent), "Diagnose", g_variant_new ("(s)", ""),
                                  G_DBUS_CALL_FLAGS_NONE, REPORT_DIAGNOSE_TIMEOUT_MS, NULL, &error);
  if (reply == NULL)
    {
      append_error (out, error);
      return;
    }
  g_variant_get (reply, "(@a{sv})", &report);
  append_dict (out, report, 0);
}

char *
ph_report_build (PhAgent1 *agent, const char *log, const char *log_note)
{
  g_autoptr (GString) out = g_string_new (NULL);
  g_autoptr (GDateTime) now = g_date_time_new_now_utc ();
  g_autofree char *when = g_date_time_format_iso8601 (now);
  g_autofree char *redacted = NULL;

  g_string_append_printf (out,
                          "Pinhole support report\n"
                          "written: %s\n"
                          "Credentials are redacted: no password, no Authorization or "
                          "Proxy-Authorization value, no user:password@ in a URL.\n",
                          when);
  append_status (out, agent);
  append_statistics (out, agent);
  append_settings (out, agent);
  append_connections (out, agent);
  append_doctor (out, agent);
  g_string_append_printf (out, "\n== log (last %d lines) ==\n", PH_REPORT_LOG_LINES);
  if (log != NULL)
    g_string_append (out, log);
  else
    g_string_append_printf (out, "(%s)\n", log_note != NULL ? log_note : "no log");
  if (out->len > 0 && out->str[out->len - 1] != '\n')
    g_string_append_c (out, '\n');
  redacted = ph_report_redact (out->str);
  /* The same bytes go nowhere else: wipe the unredacted text. */
  memset (out->str, 0, out->len);
  return g_steal_pointer (&redacted);
}

gboolean
ph_report_write (PhAgent1 *agent, const char *path, const char *log, const char *log_note,
                 GError **error)
{
  g_autofree char *text = ph_report_build (agent, log, log_note);

  return g_file_set_contents_full (
      path, text, -1, G_FILE_SET_CONTENTS_CONSISTENT | G_FILE_SET_CONTENTS_ONLY_EXISTING, 0600,
      error);
}
